//! Append throughput and window retrieval time of the segment store.
//!
//! `cargo run --release -p trawl-store --example bench -- [MIB] [DIR]`: writes MIB (default 1024)
//! of pcapng spread over one hour of traffic into segments rotated at 64 MiB, syncing every 1000
//! packets as the server would per batch, then reads a 10-second window in the middle the way
//! retrieval does (segments chosen by their time range, then frames by the index).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use trawl_store::{
    SegmentReader, SegmentStats, SegmentWriter, StreamInfo, Timestamp, WriterOptions,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map_or(1024, |a| a.parse().expect("MIB"));
    let tmp;
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let info = StreamInfo {
        device: "bench".into(),
        interface: "eth0".into(),
        link_type: 1,
        snaplen: 65535,
    };

    // A traffic mix: small packets (ACKs, DNS), full-size ones with incompressible payload
    // (TLS), and some text-like ones.
    let sizes = [60usize, 1514, 1514, 590, 60, 1514, 120, 1514];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pool: Vec<u8> = (0..1 << 20).map(|_| rand() as u8).collect();
    let text: Vec<u8> = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n"
        .iter()
        .copied()
        .cycle()
        .take(1514)
        .collect();
    let avg = sizes.iter().sum::<usize>() / sizes.len() + 32;
    let n = (mib << 20) / avg as u64;
    let start = Timestamp::new(1_700_000_000, 0);
    let step = 3_600_000_000_000 / n; // one hour of traffic
    let max_segment = 64 << 20;

    let t = Instant::now();
    let mut segments: Vec<(String, SegmentStats)> = Vec::new();
    let mut writer: Option<SegmentWriter> = None;
    let mut bytes = 0u64;
    for i in 0..n {
        let w = writer.get_or_insert_with(|| {
            let name = format!("seg{:04}", segments.len());
            SegmentWriter::create_with(&dir, &name, &info, WriterOptions::default(), start)
                .expect("create")
        });
        let len = sizes[i as usize % sizes.len()];
        let mut frame = [0u8; 1514];
        frame[..14].copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 8, 0]);
        frame[14..18].copy_from_slice(&(i as u32).to_be_bytes());
        if i % 5 == 0 {
            frame[18..len].copy_from_slice(&text[18..len]);
        } else {
            let at = (rand() as usize) % (pool.len() - 1514);
            frame[18..len].copy_from_slice(&pool[at..at + len - 18]);
        }
        let ts = Timestamp::from_nanos(start.as_nanos() + i * step);
        w.append(ts, len as u32, &frame[..len]).expect("append");
        bytes += len as u64;
        if i % 1000 == 999 {
            w.sync().expect("sync");
            if w.should_rotate(start, max_segment, Duration::from_secs(3600)) {
                let w = writer.take().expect("writer");
                let name = w.path().file_name().unwrap().to_string_lossy().to_string();
                let name = name.trim_end_matches(".pcapng.zst").to_owned();
                segments.push((name, w.finish().expect("finish")));
            }
        }
    }
    if let Some(w) = writer.take() {
        let name = w.path().file_name().unwrap().to_string_lossy().to_string();
        let name = name.trim_end_matches(".pcapng.zst").to_owned();
        segments.push((name, w.finish().expect("finish")));
    }
    let elapsed = t.elapsed().as_secs_f64();
    let stored: u64 = segments.iter().map(|s| s.1.stored_bytes).sum();
    let uncompressed: u64 = segments.iter().map(|s| s.1.uncompressed_bytes).sum();
    println!(
        "append: {n} packets, {:.0} MiB captured ({:.0} MiB pcapng -> {:.0} MiB stored, ratio {:.2}) \
         in {elapsed:.2} s: {:.0} MB/s, {:.0} packets/s, {} segments",
        bytes as f64 / 1048576.0,
        uncompressed as f64 / 1048576.0,
        stored as f64 / 1048576.0,
        uncompressed as f64 / stored as f64,
        bytes as f64 / 1e6 / elapsed,
        n as f64 / elapsed,
        segments.len()
    );

    // A 10-second window in the middle of the hour.
    let from = Timestamp::new(start.secs + 1800, 0);
    let to = Timestamp::new(start.secs + 1810, 0);
    for round in ["first", "second"] {
        let t = Instant::now();
        let (mut packets, mut frames, mut opened) = (0u64, 0usize, 0usize);
        for (name, s) in &segments {
            if s.last.is_none_or(|l| l < from) || s.first.is_none_or(|f| f >= to) {
                continue;
            }
            opened += 1;
            let r = SegmentReader::open(&dir, name).expect("open");
            let mut w = r.window(from, to);
            while w.advance().expect("read") {
                packets += 1;
            }
            frames += w.frames_decoded();
        }
        println!(
            "window ({round} read): 10 s out of {:.0} MiB stored: {packets} packets from {frames} \
             frames of {opened} segment(s) in {:.1} ms",
            stored as f64 / 1048576.0,
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}
