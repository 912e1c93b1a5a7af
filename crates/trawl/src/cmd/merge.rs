//! `trawl merge`: several captures into one, in time order.

use std::path::PathBuf;

use anyhow::Result;
use trawl_merge::{Dedup, Order};
use trawl_pcap::PcapngWriter;

use crate::files::{self, OutputArgs, Sink};
use crate::filter::{self, Filter};
use crate::progress::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DedupMode {
    /// What stays the same from hop to hop (addresses, IP id or flow label, transport header,
    /// first payload bytes; not TTL, checksum or link layer): the same packet seen by two taps,
    /// across a router, or with different link layers (Ethernet vs cooked, VLAN tags).
    Network,
    /// The same bytes, link layer included.
    Exact,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl merge -o both.pcapng wan-in.pcap wan-out.pcap
      the two directions of a link, interleaved in time order
  trawl merge --dedup -o site.pcapng tap-a.pcapng tap-b.pcapng
      two taps on one path: each packet once (the first copy is kept)
  trawl merge --dedup --dedup-window 20ms -f 'host 10.1.1.1' -o h.pcapng a.pcap b.pcap c.pcap

Each input keeps its own interfaces in the output (pcapng), so tools still tell the sources apart.
Packets with the same time are taken from the later-named file first, as mergecap does.
Within one input, packets stay in file order.")]
pub struct Args {
    #[command(flatten)]
    pub out: OutputArgs,
    /// Drop a packet when another input had the same packet within the window before it
    /// (identical packets within one input, such as duplicate ACKs, are all kept).
    #[arg(long)]
    pub dedup: bool,
    /// How packets are compared for --dedup.
    #[arg(long, value_enum, default_value = "network")]
    pub dedup_mode: DedupMode,
    /// The window for --dedup (ns, us, ms, s).
    #[arg(long, default_value = "5ms", value_name = "DURATION")]
    pub dedup_window: String,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = Filter::from_option(args.out.filter.as_deref())?;
    let window = crate::timespec::parse_duration(&args.dedup_window)?;
    let mut dedup = args.dedup.then(|| Dedup::new(window));
    let mut inputs = files::open_all(&args.files)?;
    let mut order = Order::new();
    let mut warnings = Vec::new();
    for (n, input) in inputs.iter_mut().enumerate() {
        prime(n, input, &mut order, &mut warnings)?;
    }
    let format = args.out.format();
    let section = PcapngWriter::<std::io::Sink>::default_section_options();
    let mut sink = Sink::create(&args.out.output, format, &inputs, section)?;
    for (n, input) in inputs.iter().enumerate() {
        let ifaces = input.reader.interfaces();
        sink.describe(n, ifaces, 0..ifaces.len())?;
    }
    let total = inputs.iter().map(|i| i.size).sum();
    let mut progress = Progress::new(total, "merge");
    let (mut written, mut dropped) = (0u64, 0u64);
    while let Some(n) = order.pop() {
        let input = &inputs[n];
        let p = input.reader.current().expect("a pending packet");
        let mut keep = filter::keep(&mut filter, p.link_type, p.data, p.orig_len)?;
        if keep && let Some(d) = dedup.as_mut() {
            let key = match args.dedup_mode {
                DedupMode::Exact => trawl_merge::exact_key(p.data, p.orig_len),
                DedupMode::Network => trawl_merge::invariant_key(
                    &trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len),
                ),
            };
            if d.is_duplicate(p.ts.as_nanos(), key, n) {
                keep = false;
                dropped += 1;
            }
        }
        if keep {
            sink.write_current(n, input)?;
            written += 1;
        }
        progress.tick(|| inputs.iter().map(|i| i.reader.offset()).sum());
        prime(n, &mut inputs[n], &mut order, &mut warnings)?;
    }
    progress.finish();
    sink.finish()?;
    if dedup.is_some() {
        eprintln!("{written} packets written, {dropped} duplicates removed");
    }
    files::report(warnings);
    Ok(())
}

/// Moves input `n` to its next packet and queues it; a file cut short just ends, with a warning.
fn prime(
    n: usize,
    input: &mut files::Input,
    order: &mut Order,
    warnings: &mut Vec<anyhow::Error>,
) -> Result<()> {
    if input.next(warnings)? {
        let ts = input.reader.current().expect("current").ts;
        // On equal times mergecap takes the later-named file first; so do we, for equal output.
        order.push(ts.as_nanos(), u64::MAX - n as u64, n);
    }
    Ok(())
}
