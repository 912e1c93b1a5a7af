//! `trawl captures`: a server's captures — uploads and saved windows — listed, searched, shown,
//! tagged, annotated, downloaded, saved and deleted (docs/protocol.md, "Uploads and captures").

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use trawl_pcap::Timestamp;

use crate::client::{Client, Payload, ServerArgs};
use crate::cmd::pull::{absolute, receive};
use crate::files::create_output;
use crate::timespec::{self, TimeSpec, format_utc};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl captures list --tag incident-4711
  trawl captures list --device gw-17 --from 2024-03-01T00:00:00Z --to 2024-03-02T00:00:00Z
  trawl captures show 17
  trawl captures tag 17 vendor-acme escalated
  trawl captures untag 17 escalated
  trawl captures notes 17 'sent to the vendor on 2024-03-04'
  trawl captures download 17 -f 'udp port 67' -o dhcp.pcapng
  trawl captures save --device gw-17 --device gw-18 --from 2024-03-01T12:00:00Z \\
      --to 2024-03-01T12:05:00Z --name 'noon outage' --tag incident-4711
  trawl captures delete 17

A capture is an uploaded file (`trawl upload`, curl, a TR-069 CPE) or a saved window of devices'
stored packets; each has tags, notes, the devices it is about and the time range of its packets.
The server and credentials are those of `trawl pull` (--server, --token-file, --ca or
TRAWL_SERVER, TRAWL_TOKEN, TRAWL_CA).")]
pub struct Args {
    #[command(subcommand)]
    pub command: CapturesCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CapturesCommand {
    /// List captures, newest first; the options narrow the list (all must hold).
    List(ListArgs),
    /// Show one capture: name, kind, times, packets, interfaces, devices, tags, notes.
    Show(ShowArgs),
    /// Add tags to a capture.
    Tag(TagArgs),
    /// Remove tags from a capture.
    Untag(TagArgs),
    /// Replace a capture's notes.
    Notes(NotesArgs),
    /// Download a capture as pcapng, optionally filtered.
    Download(DownloadArgs),
    /// Save a window of devices' stored packets as a capture (kept even when retention deletes
    /// the packets it came from).
    Save(SaveArgs),
    /// Delete a capture and its packets.
    Delete(ShowArgs),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl captures list
  trawl captures list --tag incident-4711 --tag vendor
      captures carrying both tags
  trawl captures list --device gw-17 --kind upload --json
  trawl captures list --from 2024-03-01T12:00:00Z --to 2024-03-01T13:00:00Z
      captures with packets in that hour

--from and --to select captures whose packets overlap [from, to) (times are absolute: seconds
since the epoch, or a date and time, UTC unless it carries an offset).")]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only captures with this tag; repeat for several (all must be present).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only captures about this device (id or name): uploaded by it, or holding its packets.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Only captures with packets at or after this time.
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub from: Option<TimeSpec>,
    /// Only captures with packets before this time.
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub to: Option<TimeSpec>,
    /// Only captures of this kind: upload, window or job.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// At most this many (the newest).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The capture's id.
    pub id: u64,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The capture's id.
    pub id: u64,
    /// Tags (1 to 64 bytes, no spaces or commas).
    #[arg(required = true, value_name = "TAG")]
    pub tags: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl captures notes 17 'DHCP storm; see ticket 4711'
  trawl captures notes 17 - < notes.txt
  trawl captures notes 17 ''
      removes the notes")]
pub struct NotesArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The capture's id.
    pub id: u64,
    /// The notes (they replace the old ones), or `-` to read them from standard input.
    pub text: String,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl captures download 17 -o capture-17.pcapng
  trawl captures download 17 -f 'tcp port 443' -o tls.pcapng
  trawl captures download 17 -o - | wireshark -k -i -

The output is pcapng with the capture's interfaces as they were uploaded (names, link types,
each packet on its own) and its packets in their order. A download that fails part-way leaves
no file.")]
pub struct DownloadArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The capture's id.
    pub id: u64,
    /// Keep only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Output file (pcapng), or `-` for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl captures save --device gw-17 --from 2024-03-01T12:00:00Z --to 2024-03-01T12:05:00Z
  trawl captures save --device gw-17 --device 42 --from 1709294400 --to 1709294460 \\
      -f 'udp port 67' --name 'DHCP at noon' --tag incident-4711 --notes 'for the vendor'

The capture holds what `trawl pull` with the same devices, window and filter gives, copied at
the time of saving: it stays when retention deletes the devices' older packets.")]
pub struct SaveArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// A device, by id or name; repeat for several.
    #[arg(long = "device", value_name = "DEVICE", required = true)]
    pub devices: Vec<String>,
    /// Start of the window (inclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub from: TimeSpec,
    /// End of the window (exclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub to: TimeSpec,
    /// Keep only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// The capture's name.
    #[arg(long)]
    pub name: Option<String>,
    /// A tag; repeat for several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Notes on the capture.
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        CapturesCommand::List(a) => list(a),
        CapturesCommand::Show(a) => show(a),
        CapturesCommand::Tag(a) => tag(a),
        CapturesCommand::Untag(a) => untag(a),
        CapturesCommand::Notes(a) => notes(a),
        CapturesCommand::Download(a) => download(a),
        CapturesCommand::Save(a) => save(a),
        CapturesCommand::Delete(a) => delete(a),
    }
}

fn path(id: u64) -> String {
    format!("api/v1/captures/{id}")
}

fn ns_text(spec: TimeSpec, flag: &str) -> Result<String> {
    Ok(absolute(spec, flag)?.as_nanos().to_string())
}

fn list(args: ListArgs) -> Result<()> {
    let client = args.server.connect()?;
    let from = args.from.map(|t| ns_text(t, "--from")).transpose()?;
    let to = args.to.map(|t| ns_text(t, "--to")).transpose()?;
    let limit = args.limit.map(|n| n.to_string());
    let mut query: Vec<(&str, &str)> = args.tags.iter().map(|t| ("tag", t.as_str())).collect();
    for (key, value) in [
        ("device", &args.device),
        ("from", &from),
        ("to", &to),
        ("kind", &args.kind),
        ("limit", &limit),
    ] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    let answer = client.json(Method::GET, "api/v1/captures", &query, Payload::None)?;
    let Some(captures) = crate::table::listed(&answer, "captures", args.json, "no captures")?
    else {
        return Ok(());
    };
    print!("{}", table(captures));
    Ok(())
}

/// A time in nanoseconds from a JSON field, as UTC to the millisecond.
fn time(v: &Value, key: &str) -> Option<String> {
    v.get(key)?
        .as_u64()
        .map(|ns| format_utc(Timestamp::from_nanos(ns), 3))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn names(v: &Value, key: &str) -> String {
    let list: Vec<String> = v
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.get("name").map_or_else(|| text(x), text))
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

/// The columns: title, how a capture's JSON becomes the cell, right-aligned.
type Column = (&'static str, fn(&Value) -> String, bool);

const COLUMNS: &[Column] = &[
    ("ID", |c| text(&c["id"]), true),
    ("KIND", |c| text(&c["kind"]), false),
    ("NAME", |c| text(&c["name"]), false),
    ("PACKETS", |c| text(&c["packets"]), true),
    ("BYTES", |c| text(&c["bytes"]), true),
    (
        "FIRST PACKET",
        |c| time(c, "first_ns").unwrap_or("-".into()),
        false,
    ),
    (
        "LAST PACKET",
        |c| time(c, "last_ns").unwrap_or("-".into()),
        false,
    ),
    ("DEVICES", |c| names(c, "devices"), false),
    ("TAGS", |c| names(c, "tags"), false),
];

fn table(captures: &[Value]) -> String {
    let rows: Vec<Vec<String>> = captures
        .iter()
        .map(|c| COLUMNS.iter().map(|(_, cell, _)| cell(c)).collect())
        .collect();
    let titles: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    let right: Vec<bool> = COLUMNS.iter().map(|c| c.2).collect();
    crate::table::render(&titles, &right, &rows)
}

/// A capture as `show` prints it.
fn describe(c: &Value) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| s.push_str(&format!("{k:<13}{v}\n"));
    row("id", text(&c["id"]));
    row("name", text(&c["name"]));
    row("kind", text(&c["kind"]));
    row("created", time(c, "created_ns").unwrap_or("-".into()));
    row("packets", text(&c["packets"]));
    row(
        "bytes",
        format!(
            "{} captured, {} on the wire, {} stored",
            text(&c["bytes"]),
            text(&c["wire_bytes"]),
            text(&c["stored_bytes"])
        ),
    );
    row("first packet", time(c, "first_ns").unwrap_or("-".into()));
    row("last packet", time(c, "last_ns").unwrap_or("-".into()));
    if let Some(w) = c.get("window").filter(|w| !w.is_null()) {
        let mut v = format!(
            "{} to {}",
            time(w, "from_ns").unwrap_or("-".into()),
            time(w, "to_ns").unwrap_or("-".into())
        );
        if let Some(f) = w.get("filter").and_then(Value::as_str) {
            v.push_str(&format!(", filter {f:?}"));
        }
        row("window", v);
    }
    row("source", text(&c["source"]));
    row("devices", names(c, "devices"));
    let uploader = match &c["uploaded_by"] {
        Value::Object(o) => o
            .get("device")
            .map_or_else(|| "-".into(), |d| format!("device {}", text(&d["name"]))),
        other => text(other),
    };
    row("uploaded by", uploader);
    row("tags", names(c, "tags"));
    let interfaces: Vec<String> = c["interfaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let lt = i["link_type"].as_u64().unwrap_or(0);
                    let lt_name = u32::try_from(lt)
                        .ok()
                        .and_then(trawl_decode::linktype::name)
                        .map_or_else(|| lt.to_string(), str::to_owned);
                    match i.get("name").and_then(Value::as_str) {
                        Some(n) => format!("{n} ({lt_name})"),
                        None => lt_name,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    row(
        "interfaces",
        if interfaces.is_empty() {
            "-".into()
        } else {
            interfaces.join(", ")
        },
    );
    row("url", text(&c["url"]));
    let notes = c["notes"].as_str().unwrap_or("");
    if !notes.is_empty() {
        s.push_str("notes:\n");
        for line in notes.lines() {
            s.push_str(&format!("  {line}\n"));
        }
    }
    s
}

fn show(args: ShowArgs) -> Result<()> {
    let client = args.server.connect()?;
    let c = client.json(Method::GET, &path(args.id), &[], Payload::None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", describe(&c));
    }
    Ok(())
}

fn print_tags(answer: &Value) {
    println!(
        "capture {}: tags {}",
        text(&answer["id"]),
        names(answer, "tags")
    );
}

fn tag(args: TagArgs) -> Result<()> {
    let client = args.server.connect()?;
    let answer = client.json(
        Method::POST,
        &format!("{}/tags", path(args.id)),
        &[],
        Payload::Json(json!({ "tags": args.tags })),
    )?;
    print_tags(&answer);
    Ok(())
}

fn untag(args: TagArgs) -> Result<()> {
    let client = args.server.connect()?;
    let mut last = None;
    for t in &args.tags {
        // The tag is one path segment: escape what a URL path would read otherwise.
        let escaped: String = t
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        last = Some(client.json(
            Method::DELETE,
            &format!("{}/tags/{escaped}", path(args.id)),
            &[],
            Payload::None,
        )?);
    }
    if let Some(answer) = last {
        print_tags(&answer);
    }
    Ok(())
}

fn notes(args: NotesArgs) -> Result<()> {
    let text = if args.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the notes from standard input")?;
        s
    } else {
        args.text
    };
    let client = args.server.connect()?;
    client.json(
        Method::PUT,
        &format!("{}/notes", path(args.id)),
        &[],
        Payload::Text(text),
    )?;
    eprintln!("capture {}: notes saved", args.id);
    Ok(())
}

fn download(args: DownloadArgs) -> Result<()> {
    let stdout = args.output == std::path::Path::new("-");
    if args.output.extension().is_some_and(|e| e == "pcap") {
        bail!(
            "{}: a capture downloads as pcapng (it keeps each interface apart): name the output \
             .pcapng, or convert afterwards with trawl cat -o OUT.pcap",
            args.output.display()
        );
    }
    let client = args.server.connect()?;
    let mut query = Vec::new();
    if let Some(f) = &args.filter {
        query.push(("filter", f.as_str()));
    }
    // The output first: a file that cannot be created fails before anything is downloaded.
    let (mut out, partial) = create_output(&args.output)?;
    let name = args.output.display().to_string();
    let resp = client.get(&format!("{}/pcapng", path(args.id)), &query)?;
    let got = receive(resp, &mut out, &name, stdout)?;
    out.flush()
        .with_context(|| format!("{name}: write failed"))?;
    drop(out);
    if let Some(p) = partial {
        p.commit()?;
    }
    let packets: u64 = got.per_interface.iter().map(|p| p.0).sum();
    let bytes: u64 = got.per_interface.iter().map(|p| p.1).sum();
    let to = if stdout { "standard output" } else { &name };
    eprintln!(
        "capture {}: {packets} packets ({bytes} bytes) on {} interfaces written to {to}",
        args.id,
        got.names.len()
    );
    Ok(())
}

fn save(args: SaveArgs) -> Result<()> {
    let from = absolute(args.from, "--from")?;
    let to = absolute(args.to, "--to")?;
    if from >= to {
        bail!("the window is empty: --from is not before --to");
    }
    let client: Client = args.server.connect()?;
    let mut body = json!({
        "devices": args.devices,
        "from": from.as_nanos().to_string(),
        "to": to.as_nanos().to_string(),
        "tags": args.tags,
    });
    if let Some(f) = &args.filter {
        body["filter"] = json!(f);
    }
    if let Some(n) = &args.name {
        body["name"] = json!(n);
    }
    if let Some(n) = &args.notes {
        body["notes"] = json!(n);
    }
    let answer = client.json(Method::POST, "api/v1/captures", &[], Payload::Json(body))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "capture {}: {} packets, {} bytes saved as {:?}",
        text(&answer["id"]),
        text(&answer["packets"]),
        text(&answer["bytes"]),
        answer["name"].as_str().unwrap_or("?")
    );
    println!("{}", text(&answer["url"]));
    Ok(())
}

fn delete(args: ShowArgs) -> Result<()> {
    let client = args.server.connect()?;
    let answer = client.json(Method::DELETE, &path(args.id), &[], Payload::None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        eprintln!("capture {} deleted", args.id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_shows_its_fields_and_missing_ones_as_dashes() {
        let c = json!({"id": 17, "kind": "upload", "name": "gw-17.pcap", "packets": 4,
            "bytes": 1312, "first_ns": 1_102_274_184_317_453_000u64, "last_ns": null,
            "tags": ["a", "b"], "devices": [{"id": "3", "name": "gw-17"}],
            "interfaces": [{"id": 0, "link_type": 1, "name": "eth0"}, {"id": 1, "link_type": 113}],
            "uploaded_by": {"device": {"id": "3", "name": "gw-17"}}, "notes": "one\ntwo"});
        let t = table(std::slice::from_ref(&c));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  KIND"), "{t}");
        assert!(lines[1].contains("2004-12-05 19:16:24.317"), "{t}");
        assert!(
            lines[1].contains("gw-17.pcap") && lines[1].contains("a,b"),
            "{t}"
        );
        let d = describe(&c);
        assert!(d.contains("interfaces   eth0 (EN10MB), LINUX_SLL"), "{d}");
        assert!(d.contains("uploaded by  device gw-17"), "{d}");
        assert!(d.contains("notes:\n  one\n  two\n"), "{d}");
        assert!(d.contains("last packet  -"), "{d}");
    }
}
