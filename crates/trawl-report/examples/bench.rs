//! Report cost against a flow pass over the same capture:
//! `cargo run --release -p trawl-report --example bench -- FILE.pcap`.
//!
//! Three passes over the file: read and decode; that and the flow table (what a flow export
//! costs); that and the report. The report is meant to stay within twice the flow pass.

use std::fs::File;
use std::io::Read;
use std::time::Instant;

use trawl_flow::{FlowTable, Timeouts};
use trawl_pcap::CaptureReader;
use trawl_report::{Options, Report};

fn pass(path: &str, mut each: impl FnMut(u64, &trawl_decode::Decoded<'_>)) -> (f64, u64) {
    let file: Box<dyn Read + Send> = Box::new(File::open(path).expect("open"));
    let mut r = CaptureReader::from_maybe_compressed(file).expect("capture");
    let start = Instant::now();
    let mut n = 0;
    while r.advance().expect("read") {
        let p = r.current().expect("current");
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        each(p.ts.as_nanos(), &d);
        n += 1;
    }
    (start.elapsed().as_secs_f64(), n)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: bench FILE");
    let (decode, n) = pass(&path, |_, _| {});
    let mut flows = FlowTable::new(Timeouts::default());
    let mut ended = 0u64;
    let (flow, _) = pass(&path, |ts, d| {
        flows.add(ts, 0, d, |_, _| ended += 1);
    });
    flows.finish(|_, _| ended += 1);
    let mut report = Report::new(Options::default());
    let (rep, _) = pass(&path, |ts, d| report.add(ts, 0, d));
    let t = Instant::now();
    let periods = report.finish();
    let fin = t.elapsed().as_secs_f64();
    println!(
        "{n} packets, {ended} flows, {} periods\nread+decode {decode:.3} s\nflow pass   {flow:.3} s\nreport pass {rep:.3} s + finish {fin:.3} s\nreport / flow = {:.2}",
        periods.len(),
        (rep + fin) / flow
    );
}
