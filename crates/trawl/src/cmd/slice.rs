//! `trawl slice`: the packets within a time window that pass a filter.

use std::path::PathBuf;

use anyhow::{Result, bail};
use trawl_pcap::{PcapngWriter, Timestamp};

use crate::files::{self, OutputArgs, Sink};
use crate::filter::{self, Filter};
use crate::progress::Progress;
use crate::timespec::{self, TimeSpec};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl slice --from 2024-03-01T12:00:00Z --to 2024-03-01T12:05:00Z -o noon.pcapng day.pcapng
      five minutes of a long capture (times are UTC unless they carry an offset)
  trawl slice --from +30s --to +45s -o bit.pcap capture.pcap
      from 30 to 45 seconds after the first packet
  trawl slice -f 'tcp port 80' -o web.pcapng capture.pcap
      every HTTP packet
  trawl slice --from 1709294400 -f 'host 192.0.2.7 and icmp' -o x.pcapng a.pcap b.pcap

The window includes --from and excludes --to. Several inputs are read one after another (use
`trawl merge` first to interleave them). Time forms: seconds since the epoch, an ISO date and
time, or +DURATION after the first packet (ns, us, ms, s, m, h).")]
pub struct Args {
    #[command(flatten)]
    pub out: OutputArgs,
    /// Start of the window (inclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub from: Option<TimeSpec>,
    /// End of the window (exclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub to: Option<TimeSpec>,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = Filter::from_option(args.out.filter.as_deref())?;
    let mut inputs = files::open_all(&args.files)?;
    let format = args.out.format();
    let section = PcapngWriter::<std::io::Sink>::default_section_options();
    let mut sink = Sink::create(&args.out.output, format, &inputs, section)?;
    let total = inputs.iter().map(|i| i.size).sum();
    let mut progress = Progress::new(total, "slice");
    let mut window: Option<(Timestamp, Timestamp)> = None;
    let mut done = 0;
    let mut warnings = Vec::new();
    for (n, input) in inputs.iter_mut().enumerate() {
        loop {
            if !input.next(&mut warnings)? {
                break;
            }
            let p = input.reader.current().expect("current");
            let (from, to) = *window.get_or_insert_with(|| {
                let from = args.from.map_or(Timestamp::default(), |f| f.resolve(p.ts));
                let to = args
                    .to
                    .map_or(Timestamp::new(u64::MAX, 0), |t| t.resolve(p.ts));
                (from, to)
            });
            if from >= to {
                bail!("the window is empty: --from is not before --to");
            }
            if p.ts >= from
                && p.ts < to
                && filter::keep(&mut filter, p.link_type, p.data, p.orig_len)?
            {
                sink.write_current(n, input)?;
            }
            progress.tick(|| done + input.reader.offset());
        }
        done += input.size;
    }
    progress.finish();
    sink.finish()?;
    files::report(warnings);
    Ok(())
}
