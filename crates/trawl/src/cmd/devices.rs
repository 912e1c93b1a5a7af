//! `trawl devices`: the organisation's devices, as the server lists them.
//!
//! The table shows whichever fields the server gives (servers of other versions give more or
//! fewer); a field it does not give is shown as `-`.

use anyhow::{Context, Result};
use serde_json::Value;
use trawl_pcap::Timestamp;

use crate::client::ServerArgs;
use crate::timespec::format_utc;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl devices --server https://trawl.example.org:8443 --ca cert.pem --token-file ~/.trawl
      a table: id, name, connected, last seen, packets, bytes, drops, link types, streams
  TRAWL_SERVER=https://localhost:8443 TRAWL_FINGERPRINT=AB:CD:… TRAWL_TOKEN=… trawl devices --json
      the server's answer as it is, for scripts

Drops are the sum of what the kernel, the interface and the agent's spool dropped; times are
UTC. A device's id or name is what `trawl pull --device` takes.")]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let client = args.server.connect()?;
    let resp = client.get("api/v1/devices", &[])?;
    let text = resp.text().context("reading the device list")?;
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("the device list is not JSON: {:.200}", text))?;
    let Some(devices) =
        crate::table::listed(&answer, "devices", args.json, "no devices enrolled yet")?
    else {
        return Ok(());
    };
    print!("{}", table(devices));
    Ok(())
}

/// The columns: title, how a device's JSON becomes the cell, right-aligned.
type Column = (&'static str, fn(&Value) -> Option<String>, bool);

const COLUMNS: &[Column] = &[
    ("ID", |d| text(d.get("id")?), true),
    ("NAME", name, false),
    ("CONNECTED", |d| yes_no(d.get("connected")?), false),
    ("LAST SEEN", last_seen, false),
    ("PACKETS", |d| text(d.get("packets")?), true),
    ("BYTES", |d| text(d.get("bytes")?), true),
    ("DROPS", |d| drops(d.get("drops")?), true),
    ("LINK TYPES", |d| link_types(d.get("link_types")?), false),
    ("STREAMS", |d| streams(d.get("streams")?), false),
];

fn table(devices: &[Value]) -> String {
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            COLUMNS
                .iter()
                .map(|(_, cell, _)| cell(d).unwrap_or_else(|| "-".into()))
                .collect()
        })
        .collect();
    let titles: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    let right: Vec<bool> = COLUMNS.iter().map(|c| c.2).collect();
    crate::table::render(&titles, &right, &rows)
}

/// A string as is; a number or boolean as JSON writes it.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn name(d: &Value) -> Option<String> {
    let name = text(d.get("name")?)?;
    if d.get("revoked").and_then(Value::as_bool) == Some(true) {
        Some(format!("{name} (revoked)"))
    } else {
        Some(name)
    }
}

fn yes_no(v: &Value) -> Option<String> {
    v.as_bool().map(|b| if b { "yes" } else { "no" }.into())
}

fn last_seen(d: &Value) -> Option<String> {
    match d.get("last_seen_ns") {
        Some(Value::Null) => Some("never".into()),
        Some(v) => v
            .as_u64()
            .map(|ns| format_utc(Timestamp::from_nanos(ns), 0)),
        None => d.get("last_seen").and_then(text),
    }
}

/// A total, or the sum of the counters of an object (`{"kernel": 1, "interface": 0, …}`).
fn drops(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => Some(
            m.values()
                .filter_map(Value::as_u64)
                .sum::<u64>()
                .to_string(),
        ),
        other => text(other),
    }
}

/// Link types by libpcap's name where known (`EN10MB`), else their number.
fn link_types(v: &Value) -> Option<String> {
    let names: Vec<String> = v
        .as_array()?
        .iter()
        .filter_map(|lt| match lt.as_u64() {
            Some(n) => Some(
                u32::try_from(n)
                    .ok()
                    .and_then(trawl_decode::linktype::name)
                    .map_or_else(|| n.to_string(), str::to_owned),
            ),
            None => text(lt),
        })
        .collect();
    Some(if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    })
}

/// Stream names: a list of names, or of objects with a `name`.
fn streams(v: &Value) -> Option<String> {
    let names: Vec<String> = v
        .as_array()?
        .iter()
        .filter_map(|s| match s {
            Value::Object(m) => m.get("name").and_then(text),
            other => text(other),
        })
        .collect();
    Some(if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_are_dashes_and_known_ones_are_shown() {
        let devices = [
            json!({"id": "1", "name": "gw-17", "revoked": false, "last_seen_ns": 1_102_274_184_317_453_000u64,
                   "packets": 12, "bytes": 3400, "drops": {"kernel": 2, "interface": 1, "spool": 0},
                   "connected": true, "link_types": [1, 113], "streams": [{"name": "eth0"}, {"name": "eth1"}]}),
            json!({"id": 22, "name": "old", "revoked": true, "last_seen_ns": null}),
        ];
        let t = table(&devices);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("ID  NAME"), "{t}");
        assert!(lines[1].contains("gw-17"), "{t}");
        assert!(lines[1].contains("2004-12-05 19:16:24"), "{t}");
        assert!(lines[1].contains("EN10MB,LINUX_SLL"), "{t}");
        assert!(lines[1].contains("eth0,eth1"), "{t}");
        assert!(lines[1].contains(" 3 "), "drops summed: {t}");
        assert!(lines[2].contains("old (revoked)"), "{t}");
        assert!(lines[2].contains("never"), "{t}");
        let dashes = lines[2].split_whitespace().filter(|c| *c == "-").count();
        assert_eq!(dashes, 6, "{t}");
    }
}
