//! `trawl info`: what is in a capture file, as `capinfos` tells it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use trawl_pcap::Timestamp;

use crate::files::Input;
use crate::progress::Progress;
use crate::timespec::format_utc;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl info capture.pcapng
      packets, bytes, first and last packet time, duration, link types, average rates
  trawl info --json *.pcap | jq '.[] | {file, packets, duration_secs}'
      the same as JSON, one object per file

Times are UTC. Rates are over the capture's duration (last packet time minus first), as capinfos
computes them. Packets out of time order are counted; duration still spans earliest to latest.")]
pub struct Args {
    /// Print JSON (an array with one object per file).
    #[arg(long)]
    pub json: bool,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Serialize, Debug, Default)]
pub struct Summary {
    pub file: String,
    pub format: String,
    pub file_size: u64,
    pub packets: u64,
    /// Sum of captured lengths.
    pub data_bytes: u64,
    /// Sum of lengths on the wire.
    pub wire_bytes: u64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub first_epoch: Option<String>,
    pub last_epoch: Option<String>,
    pub duration_secs: f64,
    pub link_types: Vec<LinkTypeInfo>,
    pub interfaces: usize,
    pub sections: usize,
    pub snaplen: Option<u32>,
    pub timestamp_resolution: String,
    pub data_byte_rate: Option<f64>,
    pub data_bit_rate: Option<f64>,
    pub average_packet_size: Option<f64>,
    pub average_packet_rate: Option<f64>,
    pub out_of_order: u64,
    /// Set when the file is cut short or corrupt: the figures cover the packets before it.
    pub error: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct LinkTypeInfo {
    pub link_type: u32,
    pub name: &'static str,
    pub packets: u64,
}

pub fn summarise(input: &mut Input, progress: &mut Progress, done: u64) -> Summary {
    let mut s = Summary {
        file: input.path.display().to_string(),
        format: input.reader.format().name().to_string(),
        file_size: input.size,
        ..Default::default()
    };
    let mut first: Option<Timestamp> = None;
    let (mut min, mut max, mut prev) = (Timestamp::new(u64::MAX, 0), Timestamp::default(), None);
    let mut per_lt: BTreeMap<u32, u64> = BTreeMap::new();
    loop {
        match input.advance() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                s.error = Some(e.to_string());
                break;
            }
        }
        let p = input.reader.current().expect("current packet");
        s.packets += 1;
        s.data_bytes += p.data.len() as u64;
        s.wire_bytes += p.orig_len as u64;
        *per_lt.entry(p.link_type).or_default() += 1;
        first.get_or_insert(p.ts);
        min = min.min(p.ts);
        max = max.max(p.ts);
        if prev.is_some_and(|t| p.ts < t) {
            s.out_of_order += 1;
        }
        prev = Some(p.ts);
        progress.tick(|| done + input.reader.offset());
    }
    let ifaces = input.reader.interfaces();
    s.interfaces = ifaces.len();
    s.sections = input.reader.sections().len().max(1);
    s.snaplen = ifaces.iter().map(|i| i.snaplen).max();
    let finest = ifaces
        .iter()
        .map(|i| i.units_per_sec)
        .max()
        .unwrap_or(1_000_000);
    s.timestamp_resolution = match finest {
        1_000_000 => "microseconds (6)".into(),
        1_000_000_000 => "nanoseconds (9)".into(),
        u => format!("1/{u} s"),
    };
    for i in ifaces {
        per_lt.entry(i.link_type).or_insert(0);
    }
    s.link_types = per_lt
        .into_iter()
        .map(|(lt, n)| LinkTypeInfo {
            link_type: lt,
            name: trawl_decode::linktype::name(lt).unwrap_or("unknown"),
            packets: n,
        })
        .collect();
    if s.packets > 0 {
        let decimals = if finest > 1_000_000 { 9 } else { 6 };
        s.first_time = Some(format_utc(min, decimals));
        s.last_time = Some(format_utc(max, decimals));
        s.first_epoch = Some(min.to_string());
        s.last_epoch = Some(max.to_string());
        let d = (max.secs - min.secs) as f64 + (max.nanos as f64 - min.nanos as f64) / 1e9;
        s.duration_secs = d;
        s.average_packet_size = Some(s.data_bytes as f64 / s.packets as f64);
        if d > 0.0 {
            s.data_byte_rate = Some(s.data_bytes as f64 / d);
            s.data_bit_rate = Some(s.data_bytes as f64 * 8.0 / d);
            s.average_packet_rate = Some(s.packets as f64 / d);
        }
    }
    s
}

pub fn run(args: Args) -> Result<()> {
    let total = args
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut progress = Progress::new(total, "info");
    let mut done = 0;
    let mut summaries = Vec::new();
    let mut failed = false;
    for path in &args.files {
        match Input::open(path) {
            Ok(mut input) => {
                let s = summarise(&mut input, &mut progress, done);
                done += input.size;
                if let Some(e) = &s.error {
                    eprintln!("trawl info: {e}");
                    failed = true;
                }
                summaries.push(s);
            }
            Err(e) => {
                failed = true;
                eprintln!("trawl info: {e:#}");
            }
        }
    }
    progress.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    } else {
        for (k, s) in summaries.iter().enumerate() {
            if k > 0 {
                println!();
            }
            print_text(s);
        }
    }
    if failed {
        std::process::exit(2);
    }
    Ok(())
}

fn print_text(s: &Summary) {
    let lt: Vec<String> = s
        .link_types
        .iter()
        .map(|l| format!("{} ({}), {} packets", l.name, l.link_type, l.packets))
        .collect();
    let opt = |v: Option<f64>, unit: &str| match v {
        Some(v) => format!("{v:.2} {unit}"),
        None => "n/a".to_string(),
    };
    println!("File name:           {}", s.file);
    println!("File type:           {}", s.format);
    println!("Link types:          {}", lt.join("; "));
    println!(
        "Interfaces:          {} in {} section(s)",
        s.interfaces, s.sections
    );
    println!("Timestamp precision: {}", s.timestamp_resolution);
    if let Some(n) = s.snaplen {
        println!("Packet size limit:   {n} bytes");
    }
    println!("Number of packets:   {}", s.packets);
    println!("File size:           {} bytes", s.file_size);
    println!("Data size:           {} bytes", s.data_bytes);
    println!("Bytes on the wire:   {} bytes", s.wire_bytes);
    println!("Capture duration:    {:.9} seconds", s.duration_secs);
    println!(
        "First packet time:   {}",
        s.first_time.as_deref().unwrap_or("n/a")
    );
    println!(
        "Last packet time:    {}",
        s.last_time.as_deref().unwrap_or("n/a")
    );
    println!("Data byte rate:      {}", opt(s.data_byte_rate, "bytes/s"));
    println!("Data bit rate:       {}", opt(s.data_bit_rate, "bits/s"));
    println!(
        "Average packet size: {}",
        opt(s.average_packet_size, "bytes")
    );
    println!(
        "Average packet rate: {}",
        opt(s.average_packet_rate, "packets/s")
    );
    println!(
        "Strict time order:   {}",
        if s.out_of_order == 0 {
            "True".to_string()
        } else {
            format!(
                "False ({} packets earlier than the one before)",
                s.out_of_order
            )
        }
    );
    if let Some(e) = &s.error {
        println!("Error:               {e}");
    }
}
