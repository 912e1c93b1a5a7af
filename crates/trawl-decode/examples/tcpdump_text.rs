//! Prints a capture the way `tcpdump -nn -tt -r FILE` does, using trawl-pcap and
//! trawl-decode. `--abs` for absolute sequence numbers (-S), `--nano` for 9 digits,
//! `--bench N` to format the file N times and report packets per second instead.
//!
//! cargo run --release -p trawl-decode --example tcpdump_text -- FILE [--abs] [--nano] [--bench N]

use std::io::Write;
use std::time::Instant;

use trawl_decode::{TextFormatter, TextOptions, TimestampPrecision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: tcpdump_text FILE [--abs] [--nano] [--bench N]")?;
    let options = TextOptions {
        absolute_seq: args.iter().any(|a| a == "--abs"),
        precision: if args.iter().any(|a| a == "--nano") {
            TimestampPrecision::Nano
        } else {
            TimestampPrecision::Micro
        },
    };
    let bench: Option<usize> = args
        .iter()
        .position(|a| a == "--bench")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());

    // Load all packets first so a benchmark measures formatting only.
    let mut packets: Vec<(u64, u32, u32, u32, Vec<u8>)> = Vec::new();
    let mut reader = trawl_pcap::CaptureReader::open(path)?;
    while let Some(p) = reader.next_packet()? {
        packets.push((
            p.ts.secs,
            p.ts.nanos,
            p.link_type,
            p.orig_len,
            p.data.to_vec(),
        ));
    }

    let mut out = Vec::with_capacity(1 << 20);
    match bench {
        None => {
            let mut f = TextFormatter::new(options);
            for (secs, nanos, lt, wire, data) in &packets {
                f.write_line(&mut out, *secs, *nanos, *lt, data, *wire);
            }
            std::io::stdout().write_all(&out)?;
        }
        Some(rounds) => {
            let start = Instant::now();
            let mut total = 0usize;
            let mut bytes = 0usize;
            for _ in 0..rounds {
                let mut f = TextFormatter::new(options);
                for (secs, nanos, lt, wire, data) in &packets {
                    f.write_line(&mut out, *secs, *nanos, *lt, data, *wire);
                    total += 1;
                }
                bytes += out.len();
                out.clear();
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{total} packets in {secs:.3}s: {:.0} packets/s, {:.1} MB/s of text",
                total as f64 / secs,
                bytes as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}
