//! `trawl upload`: a capture file (or standard input, while it is still being captured) sent to
//! a trawl server, which stores it as a capture and answers with its id and URL.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;

use crate::client::{Payload, ServerArgs};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl upload gw-17.pcap --tag incident-4711 --tag site-7 --notes 'DHCP storm at noon'
      prints the capture's id and download URL
  tcpdump -U -w - -i eth0 'port 67' | trawl upload - --name gw-17-dhcp
      streams a capture still being made; stop tcpdump (Ctrl-C) to end it
  trawl upload day.pcapng.gz --json
      compressed files (gzip, zstd) are sent as they are; the server's answer as JSON

The server takes pcap (microsecond or nanosecond, either byte order) and pcapng (any number of
sections and interfaces), gzip- or zstd-compressed or not. It reads the capture as it arrives
and stores it only if all of it is good: a file that is not a capture, or is corrupt anywhere,
is refused with what was wrong and at which byte, and nothing is kept. A capture from standard
input is sent chunked, with no time limit.

Without trawl, any device with curl does the same (docs/protocol.md, \"Uploads and captures\"):
  curl --cacert cert.pem -H \"Authorization: Bearer $TOKEN\" -T gw-17.pcap \\
      'https://trawl.example.org:8443/api/v1/captures?tag=incident-4711'
  tcpdump -U -w - -i eth0 | curl --cacert cert.pem -u cpe:$TOKEN -T - \\
      'https://trawl.example.org:8443/api/v1/captures?name=gw-17-live'
  curl -u cpe:$TOKEN -F file=@gw-17.pcap -F tags=site-7,vendor -F comments='for the vendor' \\
      https://trawl.example.org:8443/api/v1/captures
and a TR-069/USP CPE's PacketCaptureDiagnostics uploads to a FileTarget such as
  https://trawl.example.org:8443/api/v1/upload?tag=tr069&tag=site-7
with any user name and, as the password, the organisation's admin token or a device's
credential (the capture is then attributed to that device).

The server and credentials: --server (or TRAWL_SERVER), the organisation's admin token with
--token-file, --token or TRAWL_TOKEN (a device's credential works too: the capture is then
attributed to the device), and the server's certificate with --ca (TRAWL_CA) or --fingerprint
(TRAWL_FINGERPRINT), else the system's roots.")]
pub struct Args {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The capture file, or `-` for standard input.
    pub file: PathBuf,
    /// A tag for the capture; repeat for several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Notes on the capture.
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,
    /// The capture's name (default: the file's name; from standard input, the server's).
    #[arg(long)]
    pub name: Option<String>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Passes reads through, moving a progress bar.
struct Counted<R> {
    inner: R,
    read: u64,
    progress: Progress,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.progress.set_position(self.read);
        if n == 0 && !buf.is_empty() {
            self.progress.clear();
        }
        Ok(n)
    }
}

pub fn run(args: Args) -> Result<()> {
    let stdin = args.file == std::path::Path::new("-");
    let name = args.name.clone().or_else(|| {
        (!stdin)
            .then(|| args.file.file_name())
            .flatten()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let body = if stdin {
        reqwest::blocking::Body::new(io::stdin())
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("{}: cannot open", args.file.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", args.file.display()))?
            .len();
        let counted = Counted {
            inner: file,
            read: 0,
            progress: Progress::new(len, "uploading"),
        };
        reqwest::blocking::Body::sized(counted, len)
    };
    let client = args.server.connect_unbounded()?;
    let mut query: Vec<(&str, &str)> = args.tags.iter().map(|t| ("tag", t.as_str())).collect();
    if let Some(n) = &name {
        query.push(("name", n));
    }
    if let Some(n) = &args.notes {
        query.push(("notes", n));
    }
    let answer = client
        .json(
            Method::PUT,
            "api/v1/captures",
            &query,
            Payload::Stream(body),
        )
        .with_context(|| format!("uploading {}", args.file.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let field = |k: &str| answer.get(k).cloned().unwrap_or(Value::Null);
    println!(
        "capture {}: {} packets, {} bytes ({}) stored as {:?}",
        field("id"),
        field("packets"),
        field("bytes"),
        field("source").as_str().unwrap_or("?"),
        field("name").as_str().unwrap_or("?"),
    );
    println!("{}", field("url").as_str().unwrap_or("?"));
    Ok(())
}
