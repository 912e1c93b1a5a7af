//! Loads a capture file into a running trawl server as one device, the way an agent sends it:
//! enrols a device with an admin token, then posts the packets as numbered batches of stream
//! `eth0` (waiting for each acknowledgement). For benchmarks (`bench/pull.sh`).
//!
//! ```text
//! cargo run --release -p trawl-server --example load -- \
//!     --server https://127.0.0.1:8443 --ca DATA/tls/cert.pem --token ADMIN \
//!     --device gw-1 [--stretch K] [--batch-bytes N] FILE
//! ```
//!
//! `--stretch K` multiplies the time between each packet and the first by K: a capture of a
//! few seconds then spans K times as long (e.g. `trawl gen`'s 300 000 packets a second become a
//! realistic rate). Prints the device's id on standard output, progress on standard error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trawl_agent::http::{Trust, blocking_client, error_detail};
use trawl_pcap::{CaptureReader, Timestamp};
use trawl_wire::{BatchBuilder, Drops};

struct Args {
    server: String,
    ca: Option<PathBuf>,
    token: String,
    device: String,
    stretch: u64,
    batch_bytes: u64,
    file: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: load --server URL [--ca CERT.pem] --token ADMIN_TOKEN --device NAME \
         [--stretch K] [--batch-bytes N] FILE"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut server, mut ca, mut token, mut device) = (None, None, None, None);
    let (mut stretch, mut batch_bytes, mut file) = (1, 1 << 20, None);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--server" => server = Some(value()),
            "--ca" => ca = Some(PathBuf::from(value())),
            "--token" => token = Some(value()),
            "--device" => device = Some(value()),
            "--stretch" => stretch = value().parse().unwrap_or_else(|_| usage()),
            "--batch-bytes" => batch_bytes = value().parse().unwrap_or_else(|_| usage()),
            _ if a.starts_with("--") => usage(),
            _ => file = Some(PathBuf::from(a)),
        }
    }
    match (server, token, device, file) {
        (Some(server), Some(token), Some(device), Some(file)) => Args {
            server: server.trim_end_matches('/').to_owned(),
            ca,
            token,
            device,
            stretch,
            batch_bytes,
            file,
        },
        _ => usage(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let trust = args.ca.clone().map_or(Trust::System, Trust::Ca);
    let client = blocking_client(&trust, Duration::from_secs(120))?;
    let post = |path: &str, token: Option<&str>, body: Value| -> Result<Value, String> {
        let mut req = client.post(format!("{}{path}", args.server)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let bytes = resp.bytes().map_err(|e| e.to_string())?;
        if !ok {
            return Err(error_detail(&bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let token = post("/api/v1/enrollment-tokens", Some(&args.token), json!({}))?;
    let enrolled = post(
        "/api/v1/enroll",
        None,
        json!({"token": token["token"], "name": args.device, "hostname": "load"}),
    )?;
    let credential = enrolled["credential"].as_str().ok_or("no credential")?;
    println!("{}", enrolled["device"].as_str().unwrap_or("?"));

    let mut reader = CaptureReader::open(&args.file)?;
    let mut more = reader.advance()?;
    let Some(first) = reader.current().map(|p| p.ts.as_nanos()) else {
        return Err("the capture holds no packet".into());
    };
    let (link_type, snaplen) = {
        let i = &reader.interfaces()[0];
        (i.link_type, i.snaplen)
    };
    let started = Instant::now();
    let (mut seq, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    let url = format!("{}/api/v1/streams/eth0/batches", args.server);
    while more {
        let mut b = BatchBuilder::new("eth0", link_type, snaplen);
        while more && b.bytes() < args.batch_bytes {
            let p = reader.current().expect("advanced");
            let t = first + (p.ts.as_nanos() - first) * args.stretch;
            b.push(Timestamp::from_nanos(t), p.orig_len, p.data);
            more = reader.advance()?;
        }
        seq += 1;
        packets += b.packets() as u64;
        bytes += b.bytes();
        let body = b.finish(1, seq, seq - 1, Drops::default());
        let resp = client
            .post(&url)
            .bearer_auth(credential)
            .header("content-type", "application/x-trawl-batch")
            .body(body)
            .send()?;
        if !resp.status().is_success() {
            let status = resp.status();
            return Err(format!("batch {seq}: {status}: {}", error_detail(&resp.bytes()?)).into());
        }
        if seq % 200 == 0 {
            eprintln!("{}: {packets} packets, {} MiB", args.device, bytes >> 20);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {packets} packets, {bytes} bytes in {seq} batches, {secs:.1} s ({:.0} MB/s)",
        args.device,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
