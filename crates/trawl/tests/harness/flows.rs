//! What a capture holds, as tshark sees it, in the terms two captures of the same traffic are
//! compared in: per-flow packets and bytes (`-z conv,tcp`, `-z conv,udp`), ICMP messages
//! (`-Y icmp`), every packet's length and bytes (MD5), and packets that appear twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::frames;

#[derive(Debug)]
pub struct Summary {
    pub path: PathBuf,
    pub packets: usize,
    /// The sum of the packets' captured lengths.
    pub bytes: u64,
    /// One line per TCP conversation: addresses and ports, then frames and bytes each way and
    /// in total (tshark's columns without the relative start and the duration, which depend on
    /// the capture's first packet and on timestamps).
    pub tcp: Vec<String>,
    pub udp: Vec<String>,
    /// `SRC > DST type T code C` → packets.
    pub icmp: BTreeMap<String, usize>,
    /// `wire-length captured-length MD5` → packets.
    pub contents: BTreeMap<String, usize>,
    /// Packets present more than once with the same timestamp and bytes (`time MD5 × n`).
    pub repeated: Vec<String>,
}

fn tshark(path: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(args)
        .output()
        .expect("tshark (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "tshark -r {} {args:?}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The conversation lines of `tshark -q -z conv,PROTO`, sorted.
fn conversations(path: &Path, proto: &str) -> Vec<String> {
    let text = tshark(path, &["-q", "-z", &format!("conv,{proto}")]);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains("<->"))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields[..fields.len() - 2].join(" ")
        })
        .collect();
    lines.sort();
    lines
}

pub fn summarise(path: &Path) -> Summary {
    let frames = frames(path);
    assert!(
        !frames.failed,
        "tshark could not read all of {}",
        path.display()
    );
    let mut contents = BTreeMap::new();
    let mut bytes = 0u64;
    let mut by_time_and_bytes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &frames.packets {
        // time wire-length captured-length md5 encapsulation
        let f: Vec<&str> = p.split(' ').collect();
        bytes += f[2].parse::<u64>().expect("a captured length");
        *contents
            .entry(format!("{} {} {}", f[1], f[2], f[3]))
            .or_insert(0) += 1;
        *by_time_and_bytes
            .entry((f[0].to_owned(), f[3].to_owned()))
            .or_insert(0) += 1;
    }
    let repeated = by_time_and_bytes
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((t, md5), n)| format!("{t} {md5} × {n}"))
        .collect();
    let mut icmp = BTreeMap::new();
    let text = tshark(
        path,
        &[
            "-Y",
            "icmp",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "icmp.type",
            "-e",
            "icmp.code",
        ],
    );
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let key = format!("{} > {} type {} code {}", f[0], f[1], f[2], f[3]);
        *icmp.entry(key).or_insert(0) += 1;
    }
    Summary {
        path: path.to_owned(),
        packets: frames.packets.len(),
        bytes,
        tcp: conversations(path, "tcp"),
        udp: conversations(path, "udp"),
        icmp,
        contents,
        repeated,
    }
}

/// Lines in one list and not the other (as multisets).
fn list_diff(what: &str, stored: &[String], reference: &[String], out: &mut String) {
    fn count(v: &[String]) -> BTreeMap<&str, i64> {
        let mut m: BTreeMap<&str, i64> = BTreeMap::new();
        for s in v {
            *m.entry(s).or_insert(0) += 1;
        }
        m
    }
    let (a, b) = (count(stored), count(reference));
    map_diff(what, &a, &b, out);
}

fn map_diff<K: Ord + std::fmt::Display, V: Copy + Into<i64>>(
    what: &str,
    stored: &BTreeMap<K, V>,
    reference: &BTreeMap<K, V>,
    out: &mut String,
) {
    let mut shown = 0;
    let mut differ = 0;
    for key in stored
        .keys()
        .chain(reference.keys().filter(|k| !stored.contains_key(*k)))
    {
        let s = stored.get(key).map_or(0, |v| (*v).into());
        let r = reference.get(key).map_or(0, |v| (*v).into());
        if s != r {
            differ += 1;
            if shown < 12 {
                let _ = writeln!(out, "  {what}: `{key}`: stored {s}, reference {r}");
                shown += 1;
            }
        }
    }
    if differ > shown {
        let _ = writeln!(out, "  {what}: … {} more differences", differ - shown);
    }
}

/// Where `stored` and `reference` differ, or None when they hold the same traffic: the same
/// flows with the same packets and bytes, the same ICMP messages, the same packets byte for byte.
pub fn differences(stored: &Summary, reference: &Summary) -> Option<String> {
    let mut out = String::new();
    if stored.packets != reference.packets {
        let _ = writeln!(
            out,
            "  packets: stored {}, reference {}",
            stored.packets, reference.packets
        );
    }
    list_diff("TCP conversation", &stored.tcp, &reference.tcp, &mut out);
    list_diff("UDP conversation", &stored.udp, &reference.udp, &mut out);
    let to_i64 = |m: &BTreeMap<String, usize>| -> BTreeMap<String, i64> {
        m.iter().map(|(k, v)| (k.clone(), *v as i64)).collect()
    };
    map_diff(
        "ICMP",
        &to_i64(&stored.icmp),
        &to_i64(&reference.icmp),
        &mut out,
    );
    map_diff(
        "packet (wire length, captured length, MD5)",
        &to_i64(&stored.contents),
        &to_i64(&reference.contents),
        &mut out,
    );
    (!out.is_empty()).then(|| {
        format!(
            "{} (stored) and {} (reference) differ:\n{out}",
            stored.path.display(),
            reference.path.display()
        )
    })
}

/// Merges summaries of captures of consecutive periods into one reference. No flow may span
/// two periods (tshark would count it as two conversations, the whole capture as one).
pub fn combined(parts: &[&Summary]) -> Summary {
    let mut all = Summary {
        path: PathBuf::from(
            parts
                .iter()
                .map(|p| p.path.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
        ),
        packets: 0,
        bytes: 0,
        tcp: Vec::new(),
        udp: Vec::new(),
        icmp: BTreeMap::new(),
        contents: BTreeMap::new(),
        repeated: Vec::new(),
    };
    for p in parts {
        all.packets += p.packets;
        all.bytes += p.bytes;
        all.tcp.extend(p.tcp.iter().cloned());
        all.udp.extend(p.udp.iter().cloned());
        for (k, v) in &p.icmp {
            *all.icmp.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &p.contents {
            *all.contents.entry(k.clone()).or_insert(0) += v;
        }
        all.repeated.extend(p.repeated.iter().cloned());
    }
    all.tcp.sort();
    all.udp.sort();
    all
}
