//! Every capture in the shared corpus, read by trawl and compared with what tshark and libpcap
//! (tcpdump's reader) made of it. Their results are in tests/formats/READERS.tsv, made by
//! tests/formats/make_golden.py from the real tools.
//!
//! The rule: if either tool reads a file without error, trawl must too, with the same packets
//! (count, timestamps to the nanosecond, lengths and bytes) as one of the tools that did. If both
//! refuse it, trawl must refuse it too, with an error, without panicking, and keep the packets
//! before the fault as one of them did.

use std::collections::BTreeMap;
use std::fmt::Write as _;
#[path = "../../../tests/support/corpus.rs"]
mod corpus;

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use trawl_pcap::CaptureReader;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    ok: bool,
    packets: usize,
    digest: String,
    message: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn read_with_trawl(path: &Path) -> Outcome {
    let mut lines = Md5::new();
    let mut packets = 0;
    let result = (|| {
        let mut r = CaptureReader::open(path)?;
        while let Some(p) = r.next_packet()? {
            // As make_golden.py: nanoseconds since the epoch modulo 2^32 seconds.
            let ns = (p.ts.secs as u128 * 1_000_000_000 + p.ts.nanos as u128)
                % ((1u128 << 32) * 1_000_000_000);
            let line = format!(
                "{} {} {} {}\n",
                ns,
                p.data.len(),
                p.orig_len,
                hex(&Md5::digest(p.data))
            );
            lines.update(line.as_bytes());
            packets += 1;
        }
        Ok::<_, trawl_pcap::Error>(())
    })();
    Outcome {
        ok: result.is_ok(),
        packets,
        digest: hex(&lines.finalize())[..16].to_string(),
        message: result.err().map(|e| e.to_string()).unwrap_or_default(),
    }
}

#[test]
fn corpus_reads_like_tshark_and_libpcap() {
    let corpus = corpus::corpus();
    let golden = std::fs::read_to_string(repo_root().join("tests/formats/READERS.tsv"))
        .expect("tests/formats/READERS.tsv");
    let mut expected: BTreeMap<String, Vec<(String, Outcome)>> = BTreeMap::new();
    for line in golden.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let outcome = Outcome {
            ok: f[2] == "ok",
            packets: f[3].parse().expect("packet count"),
            digest: f[4].to_string(),
            message: f.get(5).unwrap_or(&"").to_string(),
        };
        expected
            .entry(f[0].to_string())
            .or_default()
            .push((f[1].to_string(), outcome));
    }
    assert!(expected.len() > 1800, "READERS.tsv lists too few files");

    let mut failures = Vec::new();
    let (mut read_ok, mut refused) = (0, 0);
    for (rel, tools) in &expected {
        let path = corpus.join(rel);
        let ours = match std::panic::catch_unwind(|| read_with_trawl(&path)) {
            Ok(o) => o,
            Err(_) => {
                failures.push(format!("{rel}: PANIC"));
                continue;
            }
        };
        let readers: Vec<&(String, Outcome)> = tools.iter().filter(|(_, o)| o.ok).collect();
        let same = |o: &Outcome| o.packets == ours.packets && o.digest == ours.digest;
        if !readers.is_empty() {
            if !ours.ok || !readers.iter().any(|(_, o)| same(o)) {
                failures.push(format!(
                    "{rel}: trawl {} {} packets ({}) {}; expected as {}",
                    if ours.ok { "read" } else { "failed after" },
                    ours.packets,
                    ours.digest,
                    ours.message,
                    describe(&readers)
                ));
            }
            read_ok += 1;
        } else {
            let all: Vec<&(String, Outcome)> = tools.iter().collect();
            if ours.ok || !tools.iter().any(|(_, o)| same(o)) {
                failures.push(format!(
                    "{rel}: both tools refuse it; trawl {} {} packets ({}) {}; tools: {}",
                    if ours.ok { "read" } else { "failed after" },
                    ours.packets,
                    ours.digest,
                    ours.message,
                    describe(&all)
                ));
            }
            refused += 1;
        }
    }
    eprintln!(
        "{} files: {read_ok} read by a reference tool, {refused} refused by both; {} mismatches",
        expected.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn describe(tools: &[&(String, Outcome)]) -> String {
    tools
        .iter()
        .map(|(t, o)| {
            format!(
                "{t} {} {} ({}) {}",
                if o.ok { "ok" } else { "err" },
                o.packets,
                o.digest,
                o.message
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
