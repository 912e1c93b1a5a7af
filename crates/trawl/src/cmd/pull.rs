//! `trawl pull`: stored packets of one or more devices in a time window, from a trawl server.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use trawl_pcap::{CaptureReader, Timestamp};

use crate::client::ServerArgs;
use crate::files::create_output;
use crate::timespec::{self, TimeSpec};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl pull --device gw-17 --from '2024-03-01 12:00' --to '2024-03-01 12:05' -o noon.pcapng
      five minutes of one device's packets
  trawl pull --device gw-17 --device 42 --from 1709294400 --to 1709294410 -f 'port 443' -o t.pcapng
      ten seconds of two devices (by name and by id), merged in time order, port 443 only
  trawl pull --device gw-17 --from 1709294400 --to 1709294460 -o - | wireshark -k -i -
      a minute, straight into Wireshark

The window includes --from and excludes --to, as in `trawl slice`. Times are absolute: seconds
since the epoch (1709294400.5) or a date and time (UTC unless it carries an offset); a time
after the first packet (+90s) has no meaning here. The filter is a tcpdump expression, compiled
by the server for each device's link type. The output is pcapng with one interface per device
and interface, named DEVICE/INTERFACE; packets with equal times come in the order the devices
were given. A download that fails part-way leaves no file.

The server and credentials: --server (or TRAWL_SERVER), the organisation's admin token with
--token-file, --token or TRAWL_TOKEN, and the server's certificate with --ca (TRAWL_CA) or
--fingerprint (TRAWL_FINGERPRINT), else the system's roots:
  export TRAWL_SERVER=https://trawl.example.org:8443 TRAWL_CA=server-cert.pem
  trawl pull --token-file ~/.trawl-token --device gw-17 --from … --to … -o out.pcapng")]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// A device, by id or name; repeat for several (they are merged in time order).
    #[arg(long = "device", value_name = "DEVICE", required = true)]
    pub devices: Vec<String>,
    /// Start of the window (inclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub from: TimeSpec,
    /// End of the window (exclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse)]
    pub to: TimeSpec,
    /// Keep only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Output file (pcapng), or `-` for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print the summary as JSON (on standard error with `-o -`, else on standard output).
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn absolute(spec: TimeSpec, flag: &str) -> Result<Timestamp> {
    match spec {
        TimeSpec::Absolute(t) => Ok(t),
        TimeSpec::AfterStart(_) => bail!(
            "{flag}: a time after the first packet (+…) has no meaning for stored packets: give \
             an absolute time, seconds since the epoch (1709294400) or a date \
             (2024-03-01T12:00:00Z)"
        ),
    }
}

/// Asks the server for devices' stored packets in `[from, to)`, merged, optionally filtered:
/// a pcapng stream.
pub(crate) fn request_window(
    client: &crate::client::Client,
    devices: &[String],
    from: Timestamp,
    to: Timestamp,
    filter: Option<&str>,
) -> Result<reqwest::blocking::Response> {
    let (from_ns, to_ns) = (from.as_nanos().to_string(), to.as_nanos().to_string());
    let mut query: Vec<(&str, &str)> = devices.iter().map(|d| ("device", d.as_str())).collect();
    query.push(("from", &from_ns));
    query.push(("to", &to_ns));
    if let Some(f) = filter {
        query.push(("filter", f));
    }
    client.get("api/v1/packets", &query)
}

/// Passes every byte read from the download on to the output.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut dyn Write,
    bytes: &'a Cell<u64>,
    /// Writing the output failed (rather than reading the download).
    write_failed: &'a Cell<bool>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.write_failed.set(true);
            return Err(e);
        }
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

/// What a download held: packets and captured bytes per interface, and the interfaces' names.
pub(crate) struct Received {
    pub per_interface: Vec<(u64, u64)>,
    pub names: Vec<String>,
    pub file_bytes: u64,
}

/// Reads the pcapng download through to the end, writing it to `out` as it comes.
pub(crate) fn receive(
    resp: impl Read,
    out: &mut dyn Write,
    name: &str,
    stdout: bool,
) -> Result<Received> {
    let (bytes, write_failed) = (Cell::new(0), Cell::new(false));
    let tee = Tee {
        inner: resp,
        out,
        bytes: &bytes,
        write_failed: &write_failed,
    };
    let fail = |e: trawl_pcap::Error| {
        if write_failed.get() {
            anyhow::anyhow!("{name}: write failed: {e}")
        } else {
            download_error(name, stdout, e)
        }
    };
    let mut reader = CaptureReader::new(tee).map_err(fail)?;
    let mut per_interface: Vec<(u64, u64)> = Vec::new();
    while reader.advance().map_err(fail)? {
        let p = reader.current().expect("advanced");
        let i = p.interface as usize;
        if per_interface.len() <= i {
            per_interface.resize(i + 1, (0, 0));
        }
        per_interface[i].0 += 1;
        per_interface[i].1 += p.data.len() as u64;
    }
    let names = reader
        .interfaces()
        .iter()
        .map(|i| i.name().unwrap_or("?").to_owned())
        .collect();
    Ok(Received {
        per_interface,
        names,
        file_bytes: bytes.get(),
    })
}

pub fn run(args: Args) -> Result<()> {
    let from = absolute(args.from, "--from")?;
    let to = absolute(args.to, "--to")?;
    if from >= to {
        bail!("the window is empty: --from is not before --to");
    }
    let stdout = args.output == std::path::Path::new("-");
    if args.output.extension().is_some_and(|e| e == "pcap") {
        bail!(
            "{}: trawl pull writes pcapng (it keeps each device's interfaces apart): name the \
             output .pcapng, or convert afterwards with trawl cat -o OUT.pcap",
            args.output.display()
        );
    }
    let client = args.server.connect()?;

    // The output first: a file that cannot be created fails before anything is downloaded.
    let (mut out, partial) = create_output(&args.output)?;
    let name = args.output.display().to_string();
    let resp = request_window(&client, &args.devices, from, to, args.filter.as_deref())?;
    let got = receive(resp, &mut out, &name, stdout)?;
    out.flush()
        .with_context(|| format!("{name}: write failed"))?;
    drop(out);
    if let Some(p) = partial {
        p.commit()?;
    }

    // Per device (the part of the interface name before '/'), in the server's order.
    let mut devices: Vec<(String, u64, u64)> = Vec::new();
    for (n, iface) in got.names.iter().enumerate() {
        let device = iface.rsplit_once('/').map_or(iface.as_str(), |(d, _)| d);
        let (packets, bytes) = got.per_interface.get(n).copied().unwrap_or((0, 0));
        match devices.iter_mut().find(|d| d.0 == device) {
            Some(d) => {
                d.1 += packets;
                d.2 += bytes;
            }
            None => devices.push((device.to_owned(), packets, bytes)),
        }
    }
    let file_bytes = got.file_bytes;
    let packets: u64 = devices.iter().map(|d| d.1).sum();
    let bytes: u64 = devices.iter().map(|d| d.2).sum();
    if args.json {
        let per_device: BTreeMap<&str, serde_json::Value> = devices
            .iter()
            .map(|(d, p, b)| (d.as_str(), serde_json::json!({"packets": p, "bytes": b})))
            .collect();
        let summary = serde_json::json!({
            "output": name,
            "packets": packets,
            "bytes": bytes,
            "file_bytes": file_bytes,
            "devices": per_device,
        });
        let text = serde_json::to_string_pretty(&summary)?;
        if stdout {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    } else {
        let with_packets: Vec<String> = devices
            .iter()
            .filter(|d| d.1 > 0)
            .map(|(d, p, _)| format!("{d}: {p}"))
            .collect();
        let from_devices = if with_packets.is_empty() {
            String::new()
        } else {
            format!(" ({})", with_packets.join(", "))
        };
        let to = if stdout {
            "standard output".to_owned()
        } else {
            name
        };
        eprintln!(
            "{packets} packets ({bytes} bytes) from {} of {} devices{from_devices} written to {to}",
            with_packets.len(),
            args.devices.len(),
        );
    }
    Ok(())
}

fn download_error(name: &str, stdout: bool, e: trawl_pcap::Error) -> anyhow::Error {
    let left = if stdout {
        "what was written to standard output is incomplete".to_owned()
    } else {
        format!("nothing was written to {name}")
    };
    if matches!(e.kind, trawl_pcap::ErrorKind::Io(_)) || e.is_truncation() {
        anyhow::anyhow!(
            "the download was cut short ({e}); the server's log says why. {}{}",
            left[..1].to_uppercase(),
            &left[1..]
        )
    } else {
        anyhow::anyhow!("the server sent something that is not pcapng ({e}); {left}")
    }
}
