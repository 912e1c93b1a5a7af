//! The flow records of every capture in the shared corpus (`$TRAWL_CORPUS`, else
//! `../shared/corpus` beside the repository) are the same whether the flow table is given the
//! fast path's headers (`decode_headers`, as `trawl flows` does) or whole decoded packets.

#[path = "../../../tests/support/corpus.rs"]
mod corpus;

use std::path::Path;

use trawl_flow::{EndReason, Flow, FlowTable, Timeouts};
use trawl_pcap::CaptureReader;

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
    let dir = corpus::corpus();
    let (mut files, mut records) = (0, 0);
    for path in corpus::indexed_captures(&dir) {
        let rel = path.strip_prefix(&dir).unwrap().display();
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
