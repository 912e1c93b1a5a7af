//! `trawl report`: the fifteen-minute traffic report of the Frame Relay WAN monitor paper, per
//! period and line, as text, JSON or one self-contained HTML page.
//!
//! Also the input side shared with `trawl profile`: files read in time order (one merge over
//! all inputs, as `trawl merge` does), filtered, decoded, and each packet given its **line** —
//! one per input interface, or per direction of one when pcapng records directions.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trawl_decode::Decoded;
use trawl_report::{Apps, MAX_PERIOD_SECS, Observed, Options, Report};

use crate::beside::beside;
use crate::files::{self, Input, TimeOrdered};
use crate::filter::{self, Filter};
use crate::progress::Progress;
use crate::source::SourceArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables (the paper's Figure 2).
    Text,
    /// The report's values, for other programs.
    Json,
    /// One self-contained page with charts (no network needed to view it).
    Html,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl report wan-in.pcap wan-out.pcap
      one report per 15 minutes (at :00, :15, :30, :45 UTC) and per direction: circuits
      (Frame Relay DLCI or VLAN) with FECN/BECN/DE and retransmissions, protocol mix, busiest
      and quietest seconds, top sources and destinations, applications, SYNs, retransmissions
  trawl report --apps examples/apps.toml --format html -o report.html day.pcapng
      the same as one HTML page with charts, applications and hosts named by apps.toml
  trawl report --period 1m --format json capture.pcap | jq '.[].lines[].busiest'
  trawl report -f 'not port 22' --top 20 capture.pcapng.zst
  trawl report --device wan-gw --from '2024-03-01 11:00' --to '2024-03-01 12:00' --format html \\
      -o wan.html
      four quarter-hour reports of a device's packets stored on a server (TRAWL_SERVER,
      TRAWL_TOKEN, TRAWL_CA as for trawl pull)

Lines: each input interface is a line; a pcapng interface whose packets record their direction
(inbound/outbound) is two lines. Several files are read as one, in time order (the paper kept
one file per direction). Circuits: the Frame Relay DLCI, else the outer VLAN, else untagged.
Busy and quiet seconds cover the seconds from a line's first packet to its last (within the
period): a second without packets in that range is a quiet second with 0 bytes; periods with
no packets are left out. Bytes are lengths on the wire. Times are UTC. Sessions, SYNs and
retransmissions are counted where trawl decodes TCP (not inside tunnels such as GRE).
apps.toml: see examples/apps.toml.")]
pub struct Args {
    /// Length of a report period (s, m, h); periods start at multiples of it since the epoch.
    #[arg(long, default_value = "15m", value_name = "DURATION")]
    pub period: String,
    /// Names for applications, hosts and circuits (see examples/apps.toml).
    #[arg(long, value_name = "FILE.toml")]
    pub apps: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Where to write the report (`-`: standard output).
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,
    /// Only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Rows in each top list (seconds, sources, destinations).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub source: SourceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let period_ns = crate::timespec::parse_duration(&args.period)?;
    let period_secs = period_ns / 1_000_000_000;
    if period_ns % 1_000_000_000 != 0 || !(1..=MAX_PERIOD_SECS).contains(&period_secs) {
        bail!(
            "bad period '{}': give whole seconds from 1s to 24h (e.g. 15m)",
            args.period
        );
    }
    let apps = match &args.apps {
        Some(path) => load_apps(path)?,
        None => Apps::default(),
    };
    let mut report = Report::new(Options {
        period_secs,
        apps,
        top: args.top,
    });
    let mut lines = Lines::default();
    let warnings = walk_beside(
        &mut args.source.open()?,
        args.filter.as_deref(),
        "report",
        &mut lines,
        |ts, line, d| (ts, line, Observed::of(d)),
        |(ts, line, o)| report.add_observed(ts, line, &o),
    )?;
    for (i, name) in lines.names().into_iter().enumerate() {
        report.name_line(i as u32, name);
    }
    let periods = report.finish();
    let text = match args.format {
        Format::Text => trawl_report::render::report_text(&periods),
        Format::Html => trawl_report::render::report_html(&periods),
        Format::Json => serde_json::to_string_pretty(&periods)? + "\n",
    };
    write_output(&args.output, text.as_bytes())?;
    files::report(warnings);
    Ok(())
}

pub(crate) fn load_apps(path: &Path) -> Result<Apps> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Apps::from_toml(&text, &path.display().to_string())?)
}

/// Writes a finished report to a file (under a temporary name until complete) or stdout.
pub(crate) fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    let (mut out, partial) = files::create_output(path)?;
    let done = out.write_all(bytes).and_then(|_| out.flush());
    drop(out);
    match done {
        Ok(()) => {}
        // `trawl report | head` closes the pipe early: that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && partial.is_none() => {}
        Err(e) => return Err(e).with_context(|| format!("{}: write failed", path.display())),
    }
    match partial {
        Some(p) => p.commit(),
        None => Ok(()),
    }
}

/// The lines packets were seen on: (input, interface, direction) → line number, and what to
/// call each.
#[derive(Default)]
pub(crate) struct Lines {
    ids: HashMap<(usize, u32, u8), u32>,
    /// Per line: input path, interface, its name in the file, direction (0 unknown, 1 inbound,
    /// 2 outbound).
    seen: Vec<(PathBuf, u32, Option<String>, u8)>,
    /// Lines of a server window: named `DEVICE/INTERFACE` alone.
    window: Vec<bool>,
}

impl Lines {
    fn line(&mut self, n: usize, input: &Input, interface: u32, direction: u8) -> u32 {
        if let Some(&id) = self.ids.get(&(n, interface, direction)) {
            return id;
        }
        let id = self.seen.len() as u32;
        let ifname = input
            .reader
            .interfaces()
            .get(interface as usize)
            .and_then(|i| i.name())
            .map(str::to_string);
        self.seen
            .push((input.path.clone(), interface, ifname, direction));
        self.window.push(input.window);
        self.ids.insert((n, interface, direction), id);
        id
    }

    /// `wan-out.pcap`; `both.pcapng:eth0` when a file has several interfaces; `gw-17/eth0`
    /// for a server window (as the server's own reports name lines); `… inbound` /
    /// `… outbound` when its packets record their direction.
    pub(crate) fn names(&self) -> Vec<String> {
        self.seen
            .iter()
            .zip(&self.window)
            .map(|((path, iface, ifname, dir), window)| {
                let several = self.seen.iter().any(|(p, i, _, _)| p == path && i != iface);
                let mut name = path.display().to_string();
                if *window && let Some(n) = ifname {
                    name = n.clone();
                } else if several {
                    match ifname {
                        Some(n) => name.push_str(&format!(":{n}")),
                        None => name.push_str(&format!(":{iface}")),
                    }
                }
                match dir {
                    1 => name.push_str(" inbound"),
                    2 => name.push_str(" outbound"),
                    _ => {}
                }
                name
            })
            .collect()
    }
}

/// [`walk`] on a thread of its own ([`crate::beside`]): `take` runs there on each packet kept
/// (its time, line and decoding), and what it returns comes back to this thread, in order, to
/// `each`.
pub(crate) fn walk_beside<T: Send>(
    input: &mut TimeOrdered,
    filter: Option<&str>,
    what: &str,
    lines: &mut Lines,
    take: impl Fn(u64, u32, &Decoded<'_>) -> T + Send,
    mut each: impl FnMut(T),
) -> Result<Vec<anyhow::Error>> {
    let (warnings, _) = beside(
        move |emit| {
            walk(input, filter, what, lines, |ts, line, d| {
                emit.push(take(ts, line, d));
            })
        },
        |item| {
            each(item);
            true
        },
    );
    warnings
}

/// Reads the input (files in time order, or a server window), keeps what passes `filter`, and
/// gives each packet to `each` with its time (ns), line and decoding. Returns the warnings of
/// files cut short (for [`files::report`] once the output is written).
pub(crate) fn walk(
    input: &mut TimeOrdered,
    filter: Option<&str>,
    what: &str,
    lines: &mut Lines,
    mut each: impl FnMut(u64, u32, &Decoded<'_>),
) -> Result<Vec<anyhow::Error>> {
    let mut filter = Filter::from_option(filter)?;
    let mut progress = Progress::new(input.total_size(), what);
    while input.advance()? {
        let (n, p) = input.current().expect("advanced");
        if filter::keep(&mut filter, p.link_type, p.data, p.orig_len)? {
            let direction = p
                .options
                .u32(trawl_pcap::opt::EPB_FLAGS)
                .map_or(0, |f| (f & 3) as u8);
            let direction = if direction == 3 { 0 } else { direction };
            let line = lines.line(n, &input.inputs[n], p.interface, direction);
            let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
            each(p.ts.as_nanos(), line, &d);
        }
        progress.tick(|| input.position());
    }
    progress.finish();
    Ok(std::mem::take(&mut input.warnings))
}
