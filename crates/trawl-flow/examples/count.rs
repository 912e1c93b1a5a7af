//! Flow counting speed, from memory:
//! `cargo run --release -p trawl-flow --example count -- FILE [--packets N] [--rounds R]
//! [--snap BYTES] [--snapshot]` (pin it to one core with `taskset -c 1`; `bench/flows.sh` does).
//!
//! Loads the capture's first N packets (default: all, up to 4 million) into memory — whole, or
//! only their first BYTES with `--snap` (the headers: what flow counting reads; the wire length
//! is kept) — then times, R times each (default 5; medians printed), with a fresh table every
//! round:
//!
//! - `decode`: `trawl_decode::decode_headers` of every packet (what the flow table reads, as
//!   `trawl flows` decodes it), nothing else;
//! - `decode+add` — **flow counting**: decode, then `FlowTable::add`, for every packet, then
//!   `FlowTable::finish` (every flow handed out and counted): what `trawl flows` does per packet
//!   once the file is read, less writing the records;
//! - `add`: `FlowTable::add` over packets decoded beforehand (the table alone).
//!
//! With whole packets of a large capture in memory every packet's header is a cache miss, which
//! a reader that has just filled its buffer does not pay: `--snap 128` measures the work.
//! `--snapshot`: snapshot flows of 100 ms. Prints each as millions of packets per second (Mpps),
//! and the last line as JSON for scripts.

use std::time::Instant;

use trawl_flow::{FlowTable, Timeouts};
use trawl_pcap::CaptureReader;

/// One packet, its bytes in [`Loaded::bytes`].
struct Rec {
    ts: u64,
    link_type: u32,
    orig_len: u32,
    start: usize,
    len: usize,
}

struct Loaded {
    bytes: Vec<u8>,
    recs: Vec<Rec>,
}

fn load(path: &str, limit: usize, snap: usize) -> Loaded {
    let mut r = CaptureReader::open(path).expect("open the capture");
    let mut l = Loaded {
        bytes: Vec::new(),
        recs: Vec::new(),
    };
    while l.recs.len() < limit && r.advance().expect("read") {
        let p = r.current().expect("advanced");
        l.recs.push(Rec {
            ts: p.ts.as_nanos(),
            link_type: p.link_type,
            orig_len: p.orig_len,
            start: l.bytes.len(),
            len: p.data.len().min(snap),
        });
        l.bytes.extend_from_slice(&p.data[..p.data.len().min(snap)]);
    }
    l
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn table(snapshot: bool) -> FlowTable {
    if snapshot {
        FlowTable::with_snapshots(Timeouts::default(), 100_000_000)
    } else {
        FlowTable::new(Timeouts::default())
    }
}

fn main() {
    let mut path = None;
    let mut limit = 4_000_000usize;
    let mut rounds = 5usize;
    let mut snapshot = false;
    let mut snap = usize::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--packets" => {
                limit = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--packets N")
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds R")
            }
            "--snapshot" => snapshot = true,
            "--snap" => {
                snap = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--snap BYTES")
            }
            _ => path = Some(a),
        }
    }
    let path = path.expect("usage: count FILE [--packets N] [--rounds R] [--snapshot]");
    let l = load(&path, limit, snap);
    let n = l.recs.len();
    let bytes_of = |r: &Rec| &l.bytes[r.start..r.start + r.len];

    let mut decode = Vec::new();
    let mut counting = Vec::new();
    let mut add = Vec::new();
    let mut flows = 0u64;
    let mut alive = 0usize;
    for _ in 0..rounds {
        // Decode alone.
        let start = Instant::now();
        let mut sum = 0u64;
        for r in &l.recs {
            let h = trawl_decode::decode_headers(r.link_type, bytes_of(r), r.orig_len);
            sum += u64::from(h.ip.map_or(0, |ip| ip.protocol));
        }
        std::hint::black_box(sum);
        decode.push(start.elapsed().as_secs_f64());

        // Decode and count.
        let mut t = table(snapshot);
        let mut ended = 0u64;
        let start = Instant::now();
        for r in &l.recs {
            let h = trawl_decode::decode_headers(r.link_type, bytes_of(r), r.orig_len);
            t.add(r.ts, 0, h, |f, _| {
                std::hint::black_box(&f);
                ended += 1;
            });
        }
        alive = alive.max(t.len());
        t.finish(|f, _| {
            std::hint::black_box(&f);
            ended += 1;
        });
        counting.push(start.elapsed().as_secs_f64());
        flows = ended;

        // The table alone, over packets decoded beforehand.
        let decoded: Vec<_> = l
            .recs
            .iter()
            .map(|r| {
                (
                    r.ts,
                    trawl_decode::decode_headers(r.link_type, bytes_of(r), r.orig_len),
                )
            })
            .collect();
        let mut t = table(snapshot);
        let start = Instant::now();
        for (ts, d) in &decoded {
            t.add(*ts, 0, *d, |f, _| {
                std::hint::black_box(&f);
            });
        }
        t.finish(|f, _| {
            std::hint::black_box(&f);
        });
        add.push(start.elapsed().as_secs_f64());
    }
    let mpps = |secs: f64| n as f64 / secs / 1e6;
    let (d, c, a) = (median(decode), median(counting), median(add));
    println!(
        "{n} packets ({} bytes) in memory, {flows} flow records, {alive} flows alive at the end at most, {rounds} rounds{}",
        l.bytes.len(),
        if snapshot {
            ", snapshot mode (100 ms)"
        } else {
            ""
        }
    );
    println!("decode      {:.3} s  {:.2} Mpps", d, mpps(d));
    println!(
        "decode+add  {:.3} s  {:.2} Mpps  (flow counting)",
        c,
        mpps(c)
    );
    println!("add         {:.3} s  {:.2} Mpps  (pre-decoded)", a, mpps(a));
    println!(
        "{{\"packets\":{n},\"flows\":{flows},\"snapshot\":{snapshot},\"decode_mpps\":{:.3},\"count_mpps\":{:.3},\"add_mpps\":{:.3}}}",
        mpps(d),
        mpps(c),
        mpps(a)
    );
}
