//! `trawl read`: one line per packet, in the style of `tcpdump -nn`, or JSON.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use trawl_decode::{TextFormatter, TextOptions, TimestampPrecision};

use crate::files::{self, Input};
use crate::filter::{self, Filter};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl read capture.pcap
      one line per packet: time, addresses and ports, protocol, TCP flags, seq/ack/win, length
  trawl read -f 'tcp port 443 and host 192.0.2.7' capture.pcapng
      only the packets that pass a tcpdump filter expression
  trawl read --json capture.pcap | jq 'select(.transport.proto == \"tcp\" and .transport.flags == 2)'
      one JSON object per packet with the decoded fields
  trawl read -c 20 --nano big.pcapng.gz
      the first 20 packets, with nanosecond times

The text equals `tcpdump -nn -tt` for Ethernet, IPv4/IPv6, TCP, UDP, ICMP, ARP and DNS (see
docs/decoder.md for deliberate differences). TCP sequence numbers are relative to the first packet
of each connection, as tcpdump prints them; -S prints them absolute.")]
pub struct Args {
    /// Only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Absolute TCP sequence numbers.
    #[arg(short = 'S', long)]
    pub absolute_seq: bool,
    /// Times with nanoseconds (9 digits) instead of microseconds.
    #[arg(long)]
    pub nano: bool,
    /// Stop after this many packets (after filtering).
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not); read one after another.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = Filter::from_option(args.filter.as_deref())?;
    let total = args
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut progress = Progress::new(total, "read");
    let mut out = crate::pipe::WriteBehind::new(io::stdout());
    let mut formatter = TextFormatter::new(TextOptions {
        absolute_seq: args.absolute_seq,
        precision: if args.nano {
            TimestampPrecision::Nano
        } else {
            TimestampPrecision::Micro
        },
    });
    let mut line = Vec::with_capacity(1 << 12);
    let mut printed = 0u64;
    let mut done = 0;
    let mut warnings = Vec::new();
    'files: for path in &args.files {
        let mut input = Input::open(path)?;
        loop {
            if args.count.is_some_and(|c| printed >= c) {
                break 'files;
            }
            if !input.next(&mut warnings)? {
                break;
            }
            let p = input.reader.current().expect("current");
            if !filter::keep(&mut filter, p.link_type, p.data, p.orig_len)? {
                continue;
            }
            line.clear();
            if args.json {
                let decoded = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
                let mut v = trawl_decode::json::to_value(&decoded);
                if let Some(o) = v.as_object_mut() {
                    o.insert("time".into(), p.ts.to_string().into());
                    o.insert("interface".into(), p.interface.into());
                }
                serde_json::to_writer(&mut line, &v)?;
                line.push(b'\n');
            } else {
                formatter.write_line(
                    &mut line,
                    p.ts.secs,
                    p.ts.nanos,
                    p.link_type,
                    p.data,
                    p.orig_len,
                );
            }
            if let Err(e) = out.write_all(&line) {
                return broken_pipe_is_fine(e);
            }
            printed += 1;
            progress.tick(|| done + input.reader.offset());
        }
        done += input.size;
    }
    progress.finish();
    if let Err(e) = out.flush() {
        return broken_pipe_is_fine(e);
    }
    files::report(warnings);
    Ok(())
}

/// `trawl read … | head` closes the pipe early: that is not an error.
fn broken_pipe_is_fine(e: io::Error) -> Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e.into())
    }
}
