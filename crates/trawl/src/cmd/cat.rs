//! `trawl cat`: concatenate captures.

use std::path::PathBuf;

use anyhow::Result;
use trawl_pcap::{Format, PcapngWriter};

use crate::files::{self, OutputArgs, Sink};
use crate::filter::{self, Filter};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl cat -o all.pcapng mon-0900.pcap mon-0915.pcap mon-0930.pcap
      one file from several, in the order given (for time order use `trawl merge`)
  trawl cat -o day.pcap part-*.pcap
      pcap output, because the name ends in .pcap (all inputs must share one link type)
  trawl cat -o web.pcapng -f 'tcp port 80 or tcp port 443' capture.pcapng.gz
      only the packets that pass the filter; gzip input is read directly

pcapng inputs keep their sections, interfaces, comments and packet options; pcap inputs become
interfaces of the current section. A file cut short ends with a warning after its last whole
packet, and the next file follows.")]
pub struct Args {
    #[command(flatten)]
    pub out: OutputArgs,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = Filter::from_option(args.out.filter.as_deref())?;
    let mut inputs = files::open_all(&args.files)?;
    let format = args.out.format();
    let first_section = inputs[0]
        .reader
        .sections()
        .first()
        .cloned()
        .unwrap_or_else(PcapngWriter::<std::io::Sink>::default_section_options);
    let mut sink = Sink::create(&args.out.output, format, &inputs, first_section)?;
    let total = inputs.iter().map(|i| i.size).sum();
    let mut progress = Progress::new(total, "cat");
    let mut done_bytes = 0;
    let mut truncated = Vec::new();
    // The (input, section) whose packets are being written.
    let mut current: Option<(usize, u32)> = None;
    for (n, input) in inputs.iter_mut().enumerate() {
        let is_ng = input.reader.format() == Format::Pcapng;
        loop {
            if !input.next(&mut truncated)? {
                break;
            }
            let p = input.reader.current().expect("current packet");
            let ifaces = input.reader.interfaces();
            let section = ifaces[p.interface as usize].section;
            if current != Some((n, section)) {
                // A pcapng section starts a section of its own (the output's first section was
                // opened with the first input's header); a pcap file joins the current one.
                if is_ng && current.is_some() {
                    sink.new_section(&input.reader.sections()[section as usize])?;
                }
                let in_section = ifaces
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.section == section);
                sink.describe(n, ifaces, in_section.map(|(k, _)| k))?;
                current = Some((n, section));
            }
            if filter::keep(&mut filter, p.link_type, p.data, p.orig_len)? {
                sink.write_current(n, input)?;
            }
            progress.tick(|| done_bytes + input.reader.offset());
        }
        done_bytes += input.size;
    }
    progress.finish();
    sink.finish()?;
    files::report(truncated);
    Ok(())
}
