//! `trawl profile`: one session's bandwidth per second each way, its packet sizes and totals
//! (the paper's Figures 8 and 9), as text, JSON or an HTML page with charts.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use trawl_report::{Busiest, Profile, SessionSpec};

use super::report::{Format, Lines, walk, write_output};
use crate::source::SourceArgs;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl profile --session 'tcp 10.0.0.1:1234 10.0.0.2:80' wan-in.pcap wan-out.pcap
      both directions of one TCP connection: per-second bytes each way, sizes, totals
  trawl profile -f 'host 10.0.0.1 and tcp port 1494' --format html -o erp.html day.pcapng
      the busiest session among the packets the filter keeps, as a page with charts
  trawl profile --session 'udp [2001:db8::1]:5060 [2001:db8::2]:5060' --format json cap.pcap

A session is a protocol and two ends (ADDRESS:PORT, or ADDRESS for protocols without ports),
in both directions and on any circuit; → is from the first end named to the second. With -f
alone, the session with the most bytes among the matching packets is profiled (its initiator
first) and named on standard error; this reads the input twice (a server window is
downloaded twice), so standard input cannot be used then. Bytes are lengths on the wire; seconds are whole UTC seconds.")]
pub struct Args {
    /// The session: 'PROTO ADDR:PORT ADDR:PORT' (e.g. 'tcp 10.0.0.1:1234 10.0.0.2:80').
    #[arg(long, value_name = "SESSION")]
    pub session: Option<String>,
    /// Only packets that pass this tcpdump filter expression; without --session, the busiest
    /// session among them is profiled.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Where to write the profile (`-`: standard output).
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let filter = args.filter.as_deref();
    let spec = match (&args.session, filter) {
        (Some(s), _) => SessionSpec::parse(s).map_err(anyhow::Error::msg)?,
        (None, None) => bail!("say which session: --session 'tcp A:PORT B:PORT', or -f FILTER"),
        (None, Some(f)) => {
            if args.source.files.iter().any(|p| p == Path::new("-")) {
                bail!(
                    "-f without --session reads the input twice (to find the busiest session, \
                     then to profile it): give files, not standard input"
                );
            }
            let mut busiest = Busiest::new();
            let warnings = walk(
                &mut args.source.open()?,
                Some(f),
                "find session",
                &mut Lines::default(),
                |_, _, d| busiest.add(d),
            )?;
            drop(warnings); // reported by the second pass
            let Some(spec) = busiest.busiest() else {
                bail!("no IP packets pass the filter '{f}'");
            };
            eprintln!(
                "profiling {spec}: the busiest of {} sessions passing the filter",
                busiest.len()
            );
            spec
        }
    };
    let mut profile = Profile::new(spec);
    let warnings = walk(
        &mut args.source.open()?,
        filter,
        "profile",
        &mut Lines::default(),
        |ts, _, d| {
            profile.add(ts, d);
        },
    )?;
    let report = profile.finish();
    let text = match args.format {
        Format::Text => trawl_report::render::profile_text(&report),
        Format::Html => trawl_report::render::profile_html(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    write_output(&args.output, text.as_bytes())?;
    crate::files::report(warnings);
    Ok(())
}
