//! `trawl capture`: capture jobs on a server's devices — start, stop, list, show, download.
//!
//! The server compiles the expression once per link type and pushes the program to each device;
//! each agent captures on an interface with it until the first of the job's limits (or `trawl
//! capture stop`). These commands are clients of `/api/v1/jobs` (docs/protocol.md, "Commands
//! and capture jobs"); tables show whichever fields the server gives.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use trawl_bpf::Program;
use trawl_pcap::Timestamp;

use crate::client::{Client, ServerArgs};
use crate::cmd::pull::receive;
use crate::files::create_output;
use crate::timespec::format_utc;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Start a capture job on devices: the server compiles the filter once per link type and
    /// pushes the program to each device.
    Start(StartArgs),
    /// Stop a job on every device.
    Stop(JobArgs),
    /// The organisation's jobs, newest first.
    List(ListArgs),
    /// One job: per device its interface, filter, state, packets, bytes, drops, start and end.
    Show(ShowArgs),
    /// Download a job's packets as one pcapng, merged in time order, one interface per device.
    Download(DownloadArgs),
    /// Watch a job live: every device's packets merged in time order, one line each marked
    /// with its device, the same packet seen at several devices shown once.
    Watch(WatchArgs),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl capture watch 12
      every packet of job 12 so far, then live, until the job ends on every device
  trawl capture watch 12 --new --max-hold 200ms
      only what arrives from now on, waiting at most 200 ms for a quiet device
  trawl capture watch 12 --pcap | wireshark -k -i -
      the merged stream as pcapng, one interface per device named DEVICE/INTERFACE

Each line is `TIME DEVICE/INTERFACE SUMMARY` (the summary as `tcpdump -nn` prints it). The
server merges the devices' packets in time order: it waits for a device until that device has
said it has nothing older (agents say so several times a second), or for --max-hold. A packet
that comes after later ones were shown is still shown, and counted as late (`--json` marks it).
The same packet seen at several devices (a router and the hosts on either side) is shown once,
as first seen; --dedup exact compares whole bytes, --dedup off shows every copy. At the end the
counts go to standard error: packets shown per device, duplicates removed, late packets, and
the time from capture to line for packets captured while watching (median and 99th percentile).
Interrupt with Ctrl-C; `trawl capture stop JOB` ends the job itself.")]
pub struct WatchArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id.
    pub job: u64,
    /// Write the merged stream as pcapng to standard output (e.g. into `wireshark -k -i -`).
    #[arg(long, conflicts_with = "json")]
    pub pcap: bool,
    /// One JSON object per packet (time, device, interface, lengths, late, the line).
    #[arg(long)]
    pub json: bool,
    /// Only packets that arrive from now on (default: the job's packets from its start).
    #[arg(long)]
    pub new: bool,
    /// How copies of one packet at several devices are recognised: network (addresses, IP id,
    /// transport header and first payload bytes; TTL, checksums and link layer ignored),
    /// exact (identical bytes), off (show every copy).
    #[arg(long, value_name = "MODE", default_value = "network", value_parser = ["network", "exact", "off"])]
    pub dedup: String,
    /// How far apart in time two copies may be.
    #[arg(long, value_name = "DURATION", default_value = "5ms")]
    pub dedup_window: String,
    /// The longest a packet waits for a device that has said nothing.
    #[arg(long, value_name = "DURATION", default_value = "500ms")]
    pub max_hold: String,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl capture start --devices gw-a,gw-b,core -f 'icmp or tcp port 5001' --duration 60
      one minute of matching packets from three devices (by name or id)
  trawl capture start --devices 7 -f 'tcp port 443' -i eth1 --max-packets 10000 --wait
      until 10 000 packets (or `trawl capture stop`), then print the result
  trawl capture start --devices gw-a -f 'vlan 100 and udp' --max-bytes 50M --name 'voip check'

Limits end the job on each device at the first one reached: --duration counts from the moment
the device starts capturing, --max-packets and --max-bytes (captured bytes) are exact. Without a
limit the job runs until `trawl capture stop JOB`. A device that is not connected is reported
offline at once; the job runs on the others. --interface defaults to each device's first
capture interface (`trawl agent -i`). Expressions with `vlan` are run by the agent on frames
with their VLAN tags put back (the kernel strips offloaded tags before its filter runs).")]
pub struct StartArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Devices by id or name, separated by commas (or repeat the option).
    #[arg(
        short = 'd',
        long = "devices",
        value_name = "DEVICES",
        value_delimiter = ',',
        required = true
    )]
    pub devices: Vec<String>,
    /// The capture filter, a tcpdump expression [default: every packet].
    #[arg(short = 'f', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// The interface to capture on, on every device.
    #[arg(short = 'i', long, value_name = "IF")]
    pub interface: Option<String>,
    /// End after this long: seconds, or with a unit (500ms, 90s, 5m, 2h).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// End after this many packets on each device.
    #[arg(long, value_name = "N")]
    pub max_packets: Option<u64>,
    /// End before more than this many bytes of packets on each device (e.g. 50M).
    #[arg(long, value_name = "SIZE", value_parser = trawl_agent::cli::parse_size)]
    pub max_bytes: Option<u64>,
    /// Bytes kept of each packet [default: 262144].
    #[arg(short = 's', long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// A name for the job.
    #[arg(long)]
    pub name: Option<String>,
    /// Notes kept with the job.
    #[arg(long)]
    pub notes: Option<String>,
    /// Wait until the job has ended on every device, then print the result.
    #[arg(long)]
    pub wait: bool,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct JobArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id.
    pub job: u64,
    /// Wait until the job has ended on every device.
    #[arg(long)]
    pub wait: bool,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// At most this many jobs.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id.
    pub job: u64,
    /// Print each device's program, as `tcpdump -d` lists it.
    #[arg(long)]
    pub bpf: bool,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
The file is pcapng: one interface per device and interface, named DEVICE/INTERFACE, packets
merged in time order. A job still running downloads what the server has so far. A download that
fails part-way leaves no file.")]
pub struct DownloadArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id.
    pub job: u64,
    /// Output file (pcapng), or `-` for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Sub::Start(a) => start(a),
        Sub::Stop(a) => stop(a),
        Sub::List(a) => list(a),
        Sub::Show(a) => show(a),
        Sub::Download(a) => download(a),
        Sub::Watch(a) => watch(a),
    }
}

/// Seconds, or a number with a unit: `ms`, `s`, `m`, `h`.
fn parse_duration(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v * scale),
        _ => Err(format!(
            "{s:?} is not a duration: seconds (5, 0.5) or with a unit (500ms, 90s, 5m, 2h)"
        )),
    }
}

fn start(args: StartArgs) -> Result<()> {
    let client = args.server.connect()?;
    let mut body = json!({
        "devices": args.devices,
        "expression": args.filter.clone().unwrap_or_default(),
    });
    let optional = [
        ("interface", args.interface.clone().map(Value::from)),
        ("duration", args.duration.map(Value::from)),
        ("max_packets", args.max_packets.map(Value::from)),
        ("max_bytes", args.max_bytes.map(Value::from)),
        ("snaplen", args.snaplen.map(Value::from)),
        ("name", args.name.clone().map(Value::from)),
        ("notes", args.notes.clone().map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            body[key] = v;
        }
    }
    let job = client.post_json("api/v1/jobs", &body)?;
    let id = job.get("id").and_then(Value::as_i64).unwrap_or(0);
    let runs_somewhere = devices(&job).iter().any(|d| {
        matches!(
            str_of(d, "state").as_str(),
            "pending" | "running" | "finished"
        )
    });
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&job)?);
        } else {
            print_started(&job);
        }
    } else {
        if !args.json {
            print_started(&job);
            eprintln!("waiting for job {id} to end…");
        }
        let done = wait_for(&client, id)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&done)?);
        } else {
            print_job(&done);
        }
    }
    if !runs_somewhere {
        bail!("job {id} runs on no device: see the reasons above");
    }
    Ok(())
}

fn stop(args: JobArgs) -> Result<()> {
    let client = args.server.connect()?;
    let mut job = client.post_json(&format!("api/v1/jobs/{}/stop", args.job), &json!({}))?;
    if args.wait {
        job = wait_for(&client, args.job as i64)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print_job(&job);
    }
    Ok(())
}

/// Polls the job until it has ended on every device.
fn wait_for(client: &Client, id: i64) -> Result<Value> {
    let started = Instant::now();
    loop {
        let job = client.get_json(&format!("api/v1/jobs/{id}"), &[])?;
        if str_of(&job, "state") != "running" {
            return Ok(job);
        }
        // Fast at first (short jobs), then at an easy pace.
        let pause = if started.elapsed() < Duration::from_secs(10) {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        std::thread::sleep(pause);
    }
}

fn list(args: ListArgs) -> Result<()> {
    let client = args.server.connect()?;
    let limit = args.limit.to_string();
    let answer = client.get_json("api/v1/jobs", &[("limit", &limit)])?;
    let Some(jobs) = crate::table::listed(&answer, "jobs", args.json, "no capture jobs yet")?
    else {
        return Ok(());
    };
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let devices = devices(j);
            let mut states: Vec<(String, usize)> = Vec::new();
            for d in &devices {
                let s = str_of(d, "state");
                match states.iter_mut().find(|(k, _)| *k == s) {
                    Some((_, n)) => *n += 1,
                    None => states.push((s, 1)),
                }
            }
            let totals = j.get("totals").cloned().unwrap_or(Value::Null);
            vec![
                num(j, "id"),
                opt_str(j, "name"),
                str_of(j, "state"),
                time_of(j, "created_ns"),
                states
                    .iter()
                    .map(|(s, n)| format!("{n} {s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                num(&totals, "packets"),
                format!("{:?}", str_of(j, "expression")),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(
            &[
                "ID", "NAME", "STATE", "CREATED", "DEVICES", "PACKETS", "FILTER"
            ],
            &[true, false, false, false, false, true, false],
            &rows
        )
    );
    Ok(())
}

fn show(args: ShowArgs) -> Result<()> {
    let client = args.server.connect()?;
    let job = client.get_json(&format!("api/v1/jobs/{}", args.job), &[])?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(());
    }
    print_job(&job);
    if args.bpf {
        let snaplen = job
            .get("snaplen")
            .and_then(Value::as_u64)
            .unwrap_or(262_144);
        for d in devices(&job) {
            println!();
            let title = format!(
                "{}/{}",
                str_of(&d, "name"),
                d.get("interface").and_then(Value::as_str).unwrap_or("-")
            );
            let Some(program) = d
                .get("program")
                .and_then(|p| serde_json::from_value::<Program>(p.clone()).ok())
            else {
                println!("{title}: no program ({})", str_of(&d, "state"));
                continue;
            };
            match str_of(&d, "filter_mode").as_str() {
                "userspace" => println!(
                    "{title}: {} instructions, run by the agent on each frame with its VLAN \
                     tag put back; the kernel program accepts everything (ret #{snaplen})",
                    program.len()
                ),
                _ => println!(
                    "{title}: {} instructions, attached to the socket (run by the kernel)",
                    program.len()
                ),
            }
            print!("{}", program.listing());
        }
    }
    Ok(())
}

fn download(args: DownloadArgs) -> Result<()> {
    let stdout = args.output == std::path::Path::new("-");
    if args.output.extension().is_some_and(|e| e == "pcap") {
        bail!(
            "{}: a job downloads as pcapng (it keeps each device's interface apart): name the \
             output .pcapng, or convert afterwards with trawl cat -o OUT.pcap",
            args.output.display()
        );
    }
    let client = args.server.connect()?;
    let (mut out, partial) = create_output(&args.output)?;
    let name = args.output.display().to_string();
    let resp = client.get(&format!("api/v1/jobs/{}/pcapng", args.job), &[])?;
    let got = receive(resp, &mut out, &name, stdout)?;
    out.flush()
        .with_context(|| format!("{name}: write failed"))?;
    drop(out);
    if let Some(p) = partial {
        p.commit()?;
    }
    let per: Vec<(String, u64, u64)> = got
        .names
        .iter()
        .enumerate()
        .map(|(n, iface)| {
            let (p, b) = got.per_interface.get(n).copied().unwrap_or((0, 0));
            (iface.clone(), p, b)
        })
        .collect();
    let packets: u64 = per.iter().map(|x| x.1).sum();
    let bytes: u64 = per.iter().map(|x| x.2).sum();
    if args.json {
        let summary = json!({
            "output": name,
            "packets": packets,
            "bytes": bytes,
            "file_bytes": got.file_bytes,
            "interfaces": per.iter().map(|(i, p, b)| json!({"interface": i, "packets": p, "bytes": b})).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&summary)?;
        if stdout {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    } else {
        let parts: Vec<String> = per.iter().map(|(i, p, _)| format!("{i}: {p}")).collect();
        eprintln!(
            "job {}: {packets} packets ({bytes} bytes) written to {} ({})",
            args.job,
            if stdout { "standard output" } else { &name },
            if parts.is_empty() {
                "no interface".to_owned()
            } else {
                parts.join(", ")
            }
        );
    }
    Ok(())
}

fn watch(args: WatchArgs) -> Result<()> {
    use std::io::{BufRead, IsTerminal};
    if args.pcap && std::io::stdout().is_terminal() {
        bail!(
            "--pcap writes pcapng to standard output: pipe it (| wireshark -k -i -) or redirect it \
             to a file"
        );
    }
    let client = args.server.connect_unbounded()?;
    let format = if args.pcap { "pcapng" } else { "events" };
    let mut query = vec![
        ("format", format),
        ("dedup", args.dedup.as_str()),
        ("dedup_window", args.dedup_window.as_str()),
        ("max_hold", args.max_hold.as_str()),
    ];
    if args.new {
        query.push(("from", "now"));
    }
    let path = format!("api/v1/jobs/{}/watch", args.job);
    let mut resp = client.get(&path, &query)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.pcap {
        let n = copy_live(&mut resp, &mut out)?;
        eprintln!("job {}: {n} bytes of pcapng written", args.job);
        return Ok(());
    }
    let since_ns = wall_ns();
    let mut latency = Latency::default();
    let mut reader = std::io::BufReader::new(resp);
    let (mut event, mut line) = (String::new(), String::new());
    let mut end: Option<Value> = None;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .context("reading the live view from the server")?;
        if n == 0 {
            break;
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some(name) = l.strip_prefix("event: ") {
            event = name.to_owned();
        } else if let Some(data) = l.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).with_context(|| {
                format!("the server sent an event that is not JSON: {data:.200}")
            })?;
            match event.as_str() {
                "packet" => {
                    let ts = v.get("ts_ns").and_then(Value::as_u64).unwrap_or(0);
                    if ts >= since_ns {
                        let now = wall_ns();
                        latency.add(now.saturating_sub(ts));
                    }
                    if args.json {
                        writeln!(out, "{v}")?;
                    } else {
                        writeln!(out, "{}", str_of(&v, "text"))?;
                    }
                }
                "end" => end = Some(v),
                _ => {}
            }
        }
        if reader.buffer().is_empty() {
            out.flush()?;
        }
    }
    out.flush()?;
    let Some(end) = end else {
        bail!(
            "the server ended the live view of job {} before the job ended",
            args.job
        );
    };
    let shown: Vec<String> = end
        .get("sources")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| format!("{} {}", str_of(s, "device"), num(s, "shown")))
                .collect()
        })
        .unwrap_or_default();
    let mut summary = format!(
        "job {}: {} packets shown ({}), {} duplicates removed, {} late",
        args.job,
        num(&end, "packets"),
        shown.join(", "),
        num(&end, "duplicates"),
        num(&end, "late"),
    );
    let skipped = end
        .get("skipped_batches")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if skipped > 0 {
        summary.push_str(&format!(
            "; {skipped} batches not shown (the view fell behind: `trawl capture download` has them)"
        ));
    }
    if let Some((median, p99, n)) = latency.summary() {
        summary.push_str(&format!(
            "; capture to line: median {:.0} ms, 99th percentile {:.0} ms ({n} packets captured while watching)",
            median as f64 / 1e6,
            p99 as f64 / 1e6
        ));
    }
    eprintln!("{summary}");
    Ok(())
}

/// Now, in nanoseconds since 1970 (the clock packets are stamped with).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Copies a live body to `out`, flushing whenever the server has nothing more for now.
fn copy_live(from: &mut impl std::io::Read, out: &mut impl Write) -> Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = from
            .read(&mut buf)
            .context("reading the live view from the server")?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
        total += n as u64;
    }
}

/// Times from capture to line, in 1 ms steps up to a minute.
#[derive(Default)]
struct Latency {
    buckets: Vec<u64>,
    count: u64,
}

impl Latency {
    const STEP_NS: u64 = 1_000_000;
    const BUCKETS: usize = 60_000;

    fn add(&mut self, ns: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::BUCKETS + 1];
        }
        let i = ((ns / Self::STEP_NS) as usize).min(Self::BUCKETS);
        self.buckets[i] += 1;
        self.count += 1;
    }

    /// The median and 99th percentile (ns, to the millisecond above), and how many.
    fn summary(&self) -> Option<(u64, u64, u64)> {
        if self.count == 0 {
            return None;
        }
        let at = |q: f64| {
            let rank = ((self.count as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, n) in self.buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return (i as u64 + 1) * Self::STEP_NS;
                }
            }
            (Self::BUCKETS as u64 + 1) * Self::STEP_NS
        };
        Some((at(0.5), at(0.99), self.count))
    }
}

fn devices(job: &Value) -> Vec<Value> {
    job.get("devices")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn opt_str(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("-")
        .to_owned()
}

fn num(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "-".into(),
    }
}

fn time_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_u64)
        .map_or("-".into(), |ns| format_utc(Timestamp::from_nanos(ns), 3))
}

fn print_started(job: &Value) {
    let rows = devices(job);
    let offline: Vec<String> = rows
        .iter()
        .filter(|d| str_of(d, "state") == "offline")
        .map(|d| str_of(d, "name"))
        .collect();
    println!(
        "job {} started: filter {:?} on {} device{}",
        num(job, "id"),
        str_of(job, "expression"),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    print_devices(&rows, false);
    if !offline.is_empty() {
        println!(
            "offline (the job does not run there): {}",
            offline.join(", ")
        );
    }
}

fn print_job(job: &Value) {
    let mut limits = Vec::new();
    if let Some(d) = job.get("duration_secs").and_then(Value::as_f64) {
        limits.push(format!("duration {d} s"));
    }
    if let Some(n) = job.get("max_packets").and_then(Value::as_u64) {
        limits.push(format!("{n} packets"));
    }
    if let Some(n) = job.get("max_bytes").and_then(Value::as_u64) {
        limits.push(format!("{n} bytes"));
    }
    println!(
        "job {}{}: {} — filter {:?}, snaplen {}, {}",
        num(job, "id"),
        job.get("name")
            .and_then(Value::as_str)
            .map_or(String::new(), |n| format!(" ({n})")),
        str_of(job, "state"),
        str_of(job, "expression"),
        num(job, "snaplen"),
        if limits.is_empty() {
            "no limit".to_owned()
        } else {
            limits.join(", ")
        }
    );
    if let Some(notes) = job.get("notes").and_then(Value::as_str) {
        println!("notes: {notes}");
    }
    print_devices(&devices(job), true);
    if let Some(t) = job.get("totals") {
        println!(
            "total: {} packets, {} bytes reported; {} packets, {} bytes stored",
            num(t, "packets"),
            num(t, "bytes"),
            num(t, "stored_packets"),
            num(t, "stored_bytes")
        );
    }
}

fn print_devices(rows: &[Value], results: bool) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            let state = match d.get("reason").and_then(Value::as_str) {
                Some(r) => format!("{} ({r})", str_of(d, "state")),
                None => str_of(d, "state"),
            };
            let mut row = vec![
                str_of(d, "name"),
                opt_str(d, "interface"),
                opt_str(d, "filter_mode"),
                state,
            ];
            if results {
                let result = d.get("result").cloned().unwrap_or(Value::Null);
                let drops =
                    result
                        .get("drops")
                        .and_then(Value::as_object)
                        .map_or("-".into(), |m| {
                            m.values()
                                .filter_map(Value::as_u64)
                                .sum::<u64>()
                                .to_string()
                        });
                let duration = match (
                    d.get("started_ns").and_then(Value::as_u64),
                    d.get("ended_ns").and_then(Value::as_u64),
                ) {
                    (Some(a), Some(b)) if b >= a => {
                        format!("{:.3} s", (b - a) as f64 / 1e9)
                    }
                    _ => "-".into(),
                };
                let stored = d.get("stored").cloned().unwrap_or(Value::Null);
                row.extend([
                    num(&result, "packets"),
                    num(&result, "bytes"),
                    drops,
                    num(&stored, "packets"),
                    time_of(d, "started_ns"),
                    duration,
                ]);
            }
            row
        })
        .collect();
    if results {
        print!(
            "{}",
            crate::table::render(
                &[
                    "DEVICE",
                    "INTERFACE",
                    "FILTER",
                    "STATE",
                    "PACKETS",
                    "BYTES",
                    "DROPS",
                    "STORED",
                    "STARTED",
                    "LASTED"
                ],
                &[
                    false, false, false, false, true, true, true, true, false, true
                ],
                &cells
            )
        );
    } else {
        print!(
            "{}",
            crate::table::render(
                &["DEVICE", "INTERFACE", "FILTER", "STATE"],
                &[false; 4],
                &cells
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_are_to_the_millisecond_above() {
        let mut l = Latency::default();
        assert_eq!(l.summary(), None);
        for ms in 1..=100u64 {
            l.add(ms * 1_000_000 - 1);
        }
        let (median, p99, n) = l.summary().unwrap();
        assert_eq!((median, p99, n), (50_000_000, 99_000_000, 100));
        l.add(3_600_000_000_000);
        assert_eq!(l.summary().unwrap().2, 101);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("5"), Ok(5.0));
        assert_eq!(parse_duration("1.5s"), Ok(1.5));
        assert_eq!(parse_duration("500ms"), Ok(0.5));
        assert_eq!(parse_duration("2m"), Ok(120.0));
        assert_eq!(parse_duration("1h"), Ok(3600.0));
        for bad in ["", "0", "-1", "soon", "5d", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_finished_job_prints_its_devices() {
        let job = json!({"id": 4, "state": "finished", "expression": "icmp", "snaplen": 262144,
            "max_packets": 100,
            "devices": [
                {"name": "a", "interface": "eth0", "filter_mode": "kernel", "state": "finished",
                 "reason": "max_packets", "started_ns": 1_000_000_000u64, "ended_ns": 3_500_000_000u64,
                 "result": {"packets": 100, "bytes": 9800, "drops": {"kernel": 1, "interface": 0, "spool": 2}},
                 "stored": {"packets": 100}},
                {"name": "b", "state": "offline", "reason": "not connected"}
            ],
            "totals": {"packets": 100, "bytes": 9800, "stored_packets": 100, "stored_bytes": 9800}});
        let rows = devices(&job);
        assert_eq!(rows.len(), 2);
        // The table has a header and a line per device; missing values are dashes.
        let cells: Vec<Vec<String>> = vec![vec!["a".into(), "-".into()]];
        let t = crate::table::render(&["X", "Y"], &[false, true], &cells);
        assert_eq!(t, "X  Y\na  -\n");
        print_job(&job);
    }
}
