//! The flow records of every capture in the shared corpus (`$TRAWL_CORPUS`, else
//! `../shared/corpus` beside the repository) are the same whether the flow table is given the
//! fast path's headers (`decode_headers`, as `trawl flows` does) or whole decoded packets.

use std::path::{Path, PathBuf};

use trawl_flow::{EndReason, Flow, FlowTable, Timeouts};
use trawl_pcap::CaptureReader;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("TRAWL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.join("INDEX.tsv").exists(),
        "the test corpus is not at {} (set TRAWL_CORPUS)",
        dir.display()
    );
    dir
}

/// The records of one capture, and what made no flow; `fast`: through `decode_headers`.
fn flows(path: &Path, fast: bool, snapshots: bool) -> Option<(Vec<(Flow, EndReason)>, u64)> {
    let mut r = CaptureReader::open(path).ok()?;
    // Short timeouts, so that idle and active records happen within the small captures too.
    let timeouts = Timeouts {
        idle_ns: 2_000_000_000,
        active_ns: 10_000_000_000,
    };
    let mut table = if snapshots {
        FlowTable::with_snapshots(timeouts, 100_000_000)
    } else {
        FlowTable::new(timeouts)
    };
    let mut out = Vec::new();
    while let Ok(Some(p)) = r.next_packet() {
        let record = |f, reason| out.push((f, reason));
        if fast {
            let h = trawl_decode::decode_headers(p.link_type, p.data, p.orig_len);
            table.add(p.ts.as_nanos(), p.interface, h, record);
        } else {
            let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
            table.add(p.ts.as_nanos(), p.interface, &d, record);
        }
    }
    table.finish(|f, reason| out.push((f, reason)));
    Some((out, table.skipped.not_ip))
}

#[test]
fn records_are_the_same_through_the_fast_path_on_the_whole_corpus() {
    let dir = corpus_dir();
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let (mut files, mut records) = (0, 0);
    for rel in index.lines().skip(1).filter_map(|l| l.split('\t').next()) {
        let path = dir.join(rel);
        for snapshots in [false, true] {
            let Some(full) = flows(&path, false, snapshots) else {
                continue;
            };
            let fast = flows(&path, true, snapshots).expect("opened once already");
            assert_eq!(fast, full, "{rel} (snapshots: {snapshots})");
            if !snapshots {
                files += 1;
                records += full.0.len();
            }
        }
    }
    eprintln!("{files} captures, {records} flow records, the same both ways");
    assert!(files > 1000 && records > 5_000);
}
