//! Segments written, read back, cut short, stripped of their index, filled up — and read by the
//! real `zstd`, `tshark` and `capinfos`.

use std::fs::{self, OpenOptions};
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use trawl_pcap::{CaptureReader, Interface, PcapngWriter};
use trawl_store::{
    ErrorKind, SegmentReader, SegmentWriter, StoredPacket, StreamInfo, Timestamp, WriterOptions,
    index_path, segment_path,
};

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn info() -> StreamInfo {
    StreamInfo {
        device: "edge-7".into(),
        interface: "eth1".into(),
        link_type: 1,
        snaplen: 65535,
    }
}

const START: Timestamp = Timestamp::new(1_700_000_000, 123_456_789);

/// `n` packets of mixed sizes (empty to jumbo, some cut short of their wire length), roughly
/// 1 ms apart, a few slightly out of time order as a real stream is.
fn packets(n: usize, seed: u64) -> Vec<StoredPacket> {
    let mut rng = Rng(seed | 1);
    let mut t = START.as_nanos();
    (0..n)
        .map(|i| {
            t += rng.below(2_000_000);
            let ts = if i % 97 == 5 { t - 300_000 } else { t };
            let len = match rng.below(20) {
                0 => 0,
                1 => 9000,
                2..=6 => 60,
                7..=12 => 1514,
                _ => rng.below(1500) as usize,
            };
            let data: Vec<u8> = (0..len)
                .map(|j| {
                    if j < 54 {
                        (j as u8) ^ (i as u8 & 3)
                    } else {
                        rng.next() as u8 & 0x3f
                    }
                })
                .collect();
            let orig_len = if rng.below(10) == 0 {
                len as u32 + 100
            } else {
                len as u32
            };
            StoredPacket {
                ts: Timestamp::from_nanos(ts),
                orig_len,
                data,
            }
        })
        .collect()
}

fn options(frame_bytes: usize) -> WriterOptions {
    WriterOptions {
        frame_bytes,
        ..WriterOptions::default()
    }
}

fn write_segment(dir: &Path, name: &str, pkts: &[StoredPacket], frame_bytes: usize) {
    let mut w = SegmentWriter::create_with(dir, name, &info(), options(frame_bytes), START)
        .expect("create");
    for p in pkts {
        w.append(p.ts, p.orig_len, &p.data).expect("append");
    }
    let stats = w.finish().expect("finish");
    assert_eq!(stats.packets, pkts.len() as u64);
}

fn read_all(r: &SegmentReader) -> Vec<StoredPacket> {
    r.packets().collect::<Result<_, _>>().expect("read")
}

fn in_window(p: &StoredPacket, from: Timestamp, to: Timestamp) -> bool {
    p.ts >= from && p.ts < to
}

#[test]
fn round_trip_of_many_packets_over_many_frames() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(30_000, 1);
    write_segment(dir.path(), "s", &pkts, 64 << 10);

    let r = SegmentReader::open(dir.path(), "s").unwrap();
    assert!(r.recovery().is_clean(), "{:?}", r.recovery());
    assert_eq!(r.info(), &info());
    assert_eq!(r.created(), START);
    assert!(r.frames().len() >= 100, "{} frames", r.frames().len());
    assert_eq!(read_all(&r), pkts);

    let stats = r.stats();
    assert_eq!(stats.packets, 30_000);
    assert_eq!(stats.first, pkts.iter().map(|p| p.ts).min());
    assert_eq!(stats.last, pkts.iter().map(|p| p.ts).max());
    let captured: u64 = pkts.iter().map(|p| p.data.len() as u64).sum();
    let wire: u64 = pkts.iter().map(|p| p.orig_len as u64).sum();
    assert_eq!((stats.captured_bytes, stats.wire_bytes), (captured, wire));
    let file_len = fs::metadata(segment_path(dir.path(), "s")).unwrap().len();
    assert_eq!(stats.stored_bytes, file_len);
    assert!(stats.stored_bytes < stats.uncompressed_bytes);

    // Frames tile the file, and each one decodes alone behind the header the reader keeps.
    let mut offset = r.header_frame_len();
    for (i, f) in r.frames().iter().enumerate() {
        assert_eq!(f.offset, offset);
        offset = f.end();
        let content = zstd::bulk::decompress(&r.compressed_frame(i).unwrap(), 1 << 24).unwrap();
        let mut alone = r.header_bytes().to_vec();
        alone.extend_from_slice(&content);
        let mut c = CaptureReader::new(Cursor::new(alone)).unwrap();
        let mut n = 0;
        while c.advance().unwrap() {
            n += 1;
        }
        assert_eq!(n, f.packets, "frame {i}");
    }
    assert_eq!(offset, file_len);
}

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIPPED part of the test: `{name}` is not installed (apt-get install {name})");
    }
    found
}

/// What tshark sees: time, lengths, MD5 of the bytes, interface name, link type.
fn tshark_rows(path: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-o", "frame.generate_md5_hash:TRUE", "-T", "fields"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .args(["-e", "frame.md5_hash", "-e", "frame.interface_name"])
        .args(["-e", "frame.encap_type"])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn zstd_decompresses_the_segment_to_pcapng_that_tshark_and_capinfos_read() {
    if !tool("zstd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(3_000, 2);
    write_segment(dir.path(), "s", &pkts, 16 << 10);
    let seg = segment_path(dir.path(), "s");
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    assert!(r.frames().len() > 20);

    run(Command::new("zstd").arg("-q").arg("-t").arg(&seg));
    let out = dir.path().join("out.pcapng");
    run(Command::new("zstd")
        .args(["-q", "-d", "-f", "-o"])
        .arg(&out)
        .arg(&seg));
    // Our own reader agrees with itself on the plain file.
    let mut c = CaptureReader::open(&out).unwrap();
    let mut n = 0;
    while let Some(p) = c.next_packet().unwrap() {
        assert_eq!(
            (p.ts, p.orig_len, p.data),
            (pkts[n].ts, pkts[n].orig_len, &pkts[n].data[..])
        );
        n += 1;
    }
    assert_eq!(n, pkts.len());

    if !tool("tshark") || !tool("capinfos") {
        return;
    }
    // The same packets written straight to pcapng by trawl-pcap.
    let reference = dir.path().join("ref.pcapng");
    let mut w = PcapngWriter::new(
        fs::File::create(&reference).unwrap(),
        &PcapngWriter::<fs::File>::default_section_options(),
    )
    .unwrap();
    let mut iface = Interface::new(1, 65535, 1_000_000_000);
    iface.options.push_str(trawl_pcap::opt::IF_NAME, "eth1");
    w.add_interface(&iface).unwrap();
    for p in &pkts {
        w.write(
            0,
            p.ts,
            p.orig_len,
            &p.data,
            trawl_pcap::Options::from_le_bytes(&[]),
        )
        .unwrap();
    }
    w.finish().unwrap();
    let rows = tshark_rows(&out);
    assert_eq!(rows.len(), 3_000);
    assert_eq!(rows, tshark_rows(&reference));
    assert!(rows[0].contains("eth1"), "{}", rows[0]);

    let capinfos = run(Command::new("capinfos").args(["-c", "-M"]).arg(&out));
    let capinfos = String::from_utf8_lossy(&capinfos);
    assert!(
        capinfos.contains("Number of packets:   3000")
            || capinfos.contains("Number of packets: 3000"),
        "{capinfos}"
    );
    let all = run(Command::new("capinfos").arg(&out));
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("trawl-device: edge-7"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("Capture hardware:") && l.ends_with(" edge-7")),
        "{all}"
    );

    // Any single data frame, behind the header frame, is a valid .zst of a valid pcapng file.
    let bytes = fs::read(&seg).unwrap();
    let header_frame = &bytes[..r.header_frame_len() as usize];
    for k in [0, 7, r.frames().len() - 1] {
        let f = r.frames()[k];
        let one = dir.path().join(format!("frame{k}.pcapng.zst"));
        let mut b = header_frame.to_vec();
        b.extend_from_slice(&bytes[f.offset as usize..f.end() as usize]);
        fs::write(&one, b).unwrap();
        let plain = dir.path().join(format!("frame{k}.pcapng"));
        run(Command::new("zstd")
            .args(["-q", "-d", "-f", "-o"])
            .arg(&plain)
            .arg(&one));
        assert_eq!(tshark_rows(&plain).len(), f.packets as usize, "frame {k}");
    }
}

#[test]
fn windows_match_a_brute_force_filter_and_decode_only_overlapping_frames() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(8_000, 3);
    write_segment(dir.path(), "s", &pkts, 16 << 10);
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    let frames = r.frames();
    assert!(frames.len() > 100, "{} frames", frames.len());

    let t0 = START.as_nanos();
    let span = pkts.iter().map(|p| p.ts.as_nanos()).max().unwrap() - t0;
    let mut rng = Rng(99);
    let mut narrow_checked = 0;
    for i in 0..150 {
        let (from, to) = match i {
            0 => (Timestamp::default(), Timestamp::new(u64::MAX, 0)),
            1 => (Timestamp::default(), START),
            2 => (pkts[500].ts, pkts[500].ts), // empty
            3 => (
                pkts[500].ts,
                Timestamp::from_nanos(pkts[500].ts.as_nanos() + 1),
            ),
            4 => (frames[10].first, frames[10].last),
            _ => {
                let a = t0 - 1_000_000 + rng.below(span + 2_000_000);
                let len = if i % 3 != 0 {
                    rng.below(2_000_000)
                } else {
                    rng.below(span / 10)
                };
                (Timestamp::from_nanos(a), Timestamp::from_nanos(a + len))
            }
        };
        let expected: Vec<&StoredPacket> = pkts.iter().filter(|p| in_window(p, from, to)).collect();
        let mut w = r.window(from, to);
        let mut got = Vec::new();
        while w.advance().unwrap() {
            let p = w.packet().unwrap();
            got.push(StoredPacket {
                ts: p.ts,
                orig_len: p.orig_len,
                data: p.data.to_vec(),
            });
        }
        assert_eq!(got.len(), expected.len(), "window {i} [{from}, {to})");
        assert!(
            got.iter().zip(&expected).all(|(a, b)| a == *b),
            "window {i}"
        );
        let overlapping = frames.iter().filter(|f| f.overlaps(from, to)).count();
        assert_eq!(w.frames_decoded(), overlapping, "window {i}");
        if to.as_nanos().saturating_sub(from.as_nanos()) < 2_000_000 {
            // A window much shorter than a frame (about 20 ms here) touches at most a frame or
            // two (three where an out-of-order packet makes neighbours' ranges overlap).
            assert!(
                w.frames_decoded() <= 3,
                "window {i}: {}",
                w.frames_decoded()
            );
            narrow_checked += 1;
        }
    }
    assert!(narrow_checked > 80, "{narrow_checked}");

    // The owned form gives the same.
    let (from, to) = (pkts[1000].ts, pkts[1300].ts);
    let owned: Vec<StoredPacket> = r.window(from, to).collect::<Result<_, _>>().unwrap();
    let expected: Vec<StoredPacket> = pkts
        .iter()
        .filter(|p| in_window(p, from, to))
        .cloned()
        .collect();
    assert_eq!(owned, expected);
}

fn frames_of(r: &SegmentReader) -> Vec<trawl_store::FrameMeta> {
    r.frames().to_vec()
}

#[test]
fn a_segment_cut_at_every_offset_of_its_last_frame_opens_with_the_frames_before() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(400, 4);
    write_segment(dir.path(), "s", &pkts, 8 << 10);
    let full = SegmentReader::open(dir.path(), "s").unwrap();
    let all_frames = frames_of(&full);
    let last = *all_frames.last().unwrap();
    let kept = &all_frames[..all_frames.len() - 1];
    let kept_packets: usize = kept.iter().map(|f| f.packets as usize).sum();
    drop(full);

    let seg = segment_path(dir.path(), "s");
    let idx = index_path(dir.path(), "s");
    let aside = dir.path().join("aside.idx");
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    let mut cuts = 0;
    for cut in (last.offset..last.end()).rev() {
        file.set_len(cut).unwrap();
        let without_index = cut % 31 == 0;
        if without_index {
            fs::rename(&idx, &aside).unwrap();
        }
        let r = SegmentReader::open(dir.path(), "s").unwrap();
        let rec = r.recovery();
        assert_eq!(r.frames(), kept, "cut at {cut}");
        assert_eq!(rec.ignored_tail_bytes, cut - last.offset, "cut at {cut}");
        if without_index {
            assert!(!rec.index_found);
            assert_eq!(rec.scanned_frames, kept.len());
            fs::rename(&aside, &idx).unwrap();
        } else {
            assert_eq!(rec.indexed_frames, kept.len());
            assert_eq!(rec.dropped_index_records, 1, "cut at {cut}");
            assert_eq!(rec.scanned_frames, 0);
        }
        if cut % 211 == 0 {
            assert_eq!(read_all(&r), pkts[..kept_packets], "cut at {cut}");
        }
        cuts += 1;
    }
    assert!(cuts > 500, "{cuts} cuts");
    eprintln!("{cuts} cuts of the last frame checked");

    // Cut inside the last frame, then reopened: appending continues cleanly.
    file.set_len(last.offset + last.compressed_len as u64 / 2)
        .unwrap();
    drop(file);
    let (mut w, rec) = SegmentWriter::reopen_for_append(dir.path(), "s", options(8 << 10)).unwrap();
    assert!(rec.ignored_tail_bytes > 0);
    assert_eq!(w.frames(), kept);
    let more = packets(400, 5);
    let more: Vec<StoredPacket> = more
        .into_iter()
        .map(|mut p| {
            p.ts = Timestamp::from_nanos(p.ts.as_nanos() + 3_600_000_000_000);
            p
        })
        .collect();
    for p in &more {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.finish().unwrap();
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    assert!(r.recovery().is_clean(), "{:?}", r.recovery());
    let mut expected = pkts[..kept_packets].to_vec();
    expected.extend(more);
    assert_eq!(read_all(&r), expected);
    if tool("zstd") {
        run(Command::new("zstd").arg("-q").arg("-t").arg(&seg));
    }
}

#[test]
fn a_missing_or_stale_index_is_recovered_by_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(3_000, 6);
    write_segment(dir.path(), "s", &pkts, 16 << 10);
    let idx = index_path(dir.path(), "s");
    let good_index = fs::read(&idx).unwrap();
    let good = SegmentReader::open(dir.path(), "s").unwrap();
    let frames = frames_of(&good);
    let n = frames.len();
    assert!(n > 20);
    let open = || SegmentReader::open(dir.path(), "s").unwrap();
    let check = |r: &SegmentReader| {
        assert_eq!(r.frames(), &frames[..]);
        assert_eq!(read_all(r), pkts);
        assert_eq!(r.recovery().ignored_tail_bytes, 0);
    };

    // Missing.
    fs::remove_file(&idx).unwrap();
    let r = open();
    check(&r);
    assert!(!r.recovery().index_found);
    assert_eq!(r.recovery().scanned_frames, n);

    // Behind the file by three frames (a crash before the last records reached the disk).
    fs::write(&idx, &good_index[..good_index.len() - 3 * 64]).unwrap();
    let r = open();
    check(&r);
    assert_eq!(
        (r.recovery().indexed_frames, r.recovery().scanned_frames),
        (n - 3, 3)
    );

    // A record cut short.
    fs::write(&idx, &good_index[..good_index.len() - 20]).unwrap();
    let r = open();
    check(&r);
    assert_eq!(r.recovery().dropped_index_records, 1);
    assert_eq!(r.recovery().scanned_frames, 1);

    // A damaged record in the middle: it and those after it are not trusted.
    let mut bad = good_index.clone();
    bad[32 + 64 * 5 + 20] ^= 0x40;
    fs::write(&idx, &bad).unwrap();
    let r = open();
    check(&r);
    assert_eq!(
        (r.recovery().indexed_frames, r.recovery().scanned_frames),
        (5, n - 5)
    );

    // A record that checks out but describes another frame (an index of an older file).
    let mut other = good_index.clone();
    let mut f = frames[3];
    f.checksum ^= 1;
    let rec = 32 + 64 * 3;
    other[rec..rec + 64].copy_from_slice(&index_record(&f));
    fs::write(&idx, &other).unwrap();
    let r = open();
    check(&r);
    assert_eq!(r.recovery().indexed_frames, 3);

    // A damaged header.
    let mut bad = good_index.clone();
    bad[3] ^= 1;
    fs::write(&idx, &bad).unwrap();
    let r = open();
    check(&r);
    assert!(!r.recovery().index_found);

    // Reopening for append rewrites the index; the segment is clean again.
    drop(r);
    let (w, rec) = SegmentWriter::reopen_for_append(dir.path(), "s", options(16 << 10)).unwrap();
    assert!(!rec.is_clean());
    w.finish().unwrap();
    let r = open();
    assert!(r.recovery().is_clean());
    assert_eq!(fs::read(&idx).unwrap(), good_index);
}

/// An index record as the writer encodes it (see docs/segment-format.md).
fn index_record(f: &trawl_store::FrameMeta) -> [u8; 64] {
    let mut r = [0u8; 64];
    r[0..8].copy_from_slice(&f.offset.to_le_bytes());
    r[8..12].copy_from_slice(&f.compressed_len.to_le_bytes());
    r[12..16].copy_from_slice(&f.uncompressed_len.to_le_bytes());
    r[16..24].copy_from_slice(&f.first.as_nanos().to_le_bytes());
    r[24..32].copy_from_slice(&f.last.as_nanos().to_le_bytes());
    r[32..36].copy_from_slice(&f.packets.to_le_bytes());
    r[36..40].copy_from_slice(&f.checksum.to_le_bytes());
    r[40..48].copy_from_slice(&f.captured_bytes.to_le_bytes());
    r[48..56].copy_from_slice(&f.wire_bytes.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&r[..56]);
    r[56..64].copy_from_slice(&sum.to_le_bytes());
    r
}

#[test]
fn a_damaged_frame_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(3_000, 7);
    write_segment(dir.path(), "s", &pkts, 16 << 10);
    let seg = segment_path(dir.path(), "s");
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    let frames = frames_of(&r);
    drop(r);
    let before: usize = frames[..2].iter().map(|f| f.packets as usize).sum();

    // A flipped bit inside an indexed frame: reading stops with an error at that frame.
    let mut bytes = fs::read(&seg).unwrap();
    let at = (frames[2].offset + frames[2].compressed_len as u64 / 2) as usize;
    bytes[at] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    let mut got = Vec::new();
    let mut error = None;
    for p in r.packets() {
        match p {
            Ok(p) => got.push(p),
            Err(e) => error = Some(e),
        }
    }
    assert_eq!(got, pkts[..before]);
    let error = error.expect("an error for the damaged frame");
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
    assert!(
        error.to_string().contains(&frames[2].offset.to_string()),
        "{error}"
    );

    // The same damage to the last frame of a segment without index: the frame is left out.
    bytes[at] ^= 0x10;
    let last = frames.last().unwrap();
    bytes[(last.offset + last.compressed_len as u64 / 2) as usize] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    fs::remove_file(index_path(dir.path(), "s")).unwrap();
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    assert_eq!(r.frames(), &frames[..frames.len() - 1]);
    assert_eq!(r.recovery().ignored_tail_bytes, last.compressed_len as u64);
    let kept: usize = pkts.len() - last.packets as usize;
    assert_eq!(read_all(&r), pkts[..kept]);
}

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs to fill up (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_a_typed_error_and_keeps_every_synced_packet() {
    let Some(fs_) = Tmpfs::mount("1m") else {
        return;
    };
    let dir = fs_.0.path();
    // Room to free later, so that appending can resume.
    let filler = dir.join("filler");
    fs::write(&filler, vec![0u8; 256 << 10]).unwrap();

    // Incompressible packets, synced in batches of 40 as the server acknowledges them.
    let mut rng = Rng(8);
    let batch = |rng: &mut Rng, b: u64| -> Vec<StoredPacket> {
        (0..40)
            .map(|i| StoredPacket {
                ts: Timestamp::from_nanos(START.as_nanos() + b * 1_000_000_000 + i * 1000),
                orig_len: 1200,
                data: (0..1200).map(|_| rng.next() as u8).collect(),
            })
            .collect()
    };
    let mut w = SegmentWriter::create_with(dir, "s", &info(), options(32 << 10), START).unwrap();
    let mut synced: Vec<StoredPacket> = Vec::new();
    let mut failed_batch = None;
    for b in 0..1000 {
        let pkts = batch(&mut rng, b);
        let result = pkts
            .iter()
            .try_for_each(|p| w.append(p.ts, p.orig_len, &p.data))
            .and_then(|()| w.sync());
        match result {
            Ok(()) => synced.extend(pkts),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::DiskFull, "{e}");
                assert!(e.to_string().contains("disk is full"), "{e}");
                failed_batch = Some(pkts);
                break;
            }
        }
    }
    let failed_batch = failed_batch.expect("the disk never filled up");
    assert!(synced.len() >= 400, "{} packets synced", synced.len());
    assert_eq!(w.stats().packets, synced.len() as u64);

    // The segment holds exactly what was synced, and nothing else.
    let r = SegmentReader::open(dir, "s").unwrap();
    assert!(r.recovery().is_clean(), "{:?}", r.recovery());
    assert_eq!(read_all(&r), synced);
    drop(r);

    // Space freed: the unacknowledged batch is sent again and stored once.
    fs::remove_file(&filler).unwrap();
    for p in &failed_batch {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    synced.extend(failed_batch);
    let r = SegmentReader::open(dir, "s").unwrap();
    assert!(r.recovery().is_clean());
    assert_eq!(read_all(&r), synced);
}

#[test]
fn rotation_is_due_on_size_or_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create_with(dir.path(), "s", &info(), options(4096), START).unwrap();
    let later = |s| Timestamp::new(START.secs + s, START.nanos);
    let hour = Duration::from_secs(3600);
    assert!(!w.should_rotate(later(10), 1 << 20, hour));
    assert!(w.should_rotate(later(3600), 1 << 20, hour));
    assert!(!w.should_rotate(Timestamp::new(0, 0), 1 << 20, hour));
    for p in packets(200, 9) {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    assert!(w.stats().stored_bytes > 20_000);
    assert!(w.should_rotate(later(10), 20_000, hour));
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(dir.path(), "s", &info()).unwrap();
    let again = SegmentWriter::create(dir.path(), "s", &info());
    assert_eq!(again.err().map(|e| e.kind()), Some(ErrorKind::Io));
    let huge = vec![0u8; trawl_pcap::MAX_PACKET as usize + 1];
    let e = w.append(START, 0, &huge).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = w
        .append(Timestamp::new(u64::MAX / 2, 0), 1, &[1])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    w.append(START, 3, &[1, 2, 3]).unwrap();
    w.finish().unwrap();
    let r = SegmentReader::open(dir.path(), "s").unwrap();
    assert_eq!(read_all(&r).len(), 1);

    // A file that never got its header frame is not a segment.
    fs::write(segment_path(dir.path(), "empty"), b"").unwrap();
    let e = SegmentReader::open(dir.path(), "empty").err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
}

/// What retrieval relies on: the stream description from the header frame alone, a reader held
/// to the length a catalogue vouches for while the writer goes on appending, and the owned window
/// giving what the borrowed one gives.
#[test]
fn header_only_info_a_length_limit_and_an_owned_window() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = packets(3_000, 7);
    let mut w =
        SegmentWriter::create_with(dir.path(), "live", &info(), options(16 << 10), START).unwrap();
    for p in &pkts[..1_000] {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.sync().unwrap();
    let vouched = w.stats().stored_bytes;
    // The writer goes on: synced frames the catalogue does not know of yet.
    for p in &pkts[1_000..2_000] {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.sync().unwrap();
    assert!(w.stats().stored_bytes > vouched);

    assert_eq!(
        SegmentReader::read_info(dir.path(), "live").unwrap(),
        info()
    );
    let mut r = SegmentReader::open(dir.path(), "live").unwrap();
    assert_eq!(read_all(&r), pkts[..2_000]);
    r.limit_to(vouched);
    assert_eq!(r.data_end(), vouched);
    assert_eq!(read_all(&r), pkts[..1_000]);

    let (from, to) = (pkts[200].ts, pkts[700].ts);
    let borrowed: Vec<StoredPacket> = r.window(from, to).collect::<Result<_, _>>().unwrap();
    let owned: Vec<StoredPacket> = r.into_window(from, to).collect::<Result<_, _>>().unwrap();
    let expected: Vec<StoredPacket> = pkts[..1_000]
        .iter()
        .filter(|p| in_window(p, from, to))
        .cloned()
        .collect();
    assert!(expected.len() > 300);
    assert_eq!(borrowed, expected);
    assert_eq!(owned, expected);

    // Not a segment: a clear error, no panic.
    fs::write(segment_path(dir.path(), "junk"), b"not zstd at all").unwrap();
    let e = SegmentReader::read_info(dir.path(), "junk").unwrap_err();
    assert!(e.to_string().contains("zstd frame"), "{e}");
    drop(w);
}

/// An uploaded file's segment: several interfaces of different link types and time
/// resolutions, each packet on its own with its options, times a nanosecond interface could not
/// count, and the same after reopening.
#[test]
fn a_segment_of_several_interfaces_keeps_each_packets_interface_options_and_resolution() {
    use trawl_pcap::{OwnedOptions, opt};
    let dir = tempfile::tempdir().unwrap();
    let mut eth = Interface::new(1, 65535, 1_000_000);
    eth.options
        .push_str(opt::IF_NAME, "eth0")
        .push_str(opt::IF_DESCRIPTION, "uplink");
    let mut tun = Interface::new(101, 0, 1_000_000_000);
    tun.options
        .push_str(opt::IF_NAME, "tun0")
        .push(opt::IF_TSOFFSET, &5u64.to_le_bytes());
    tun.ts_offset = 5;
    let mut w = SegmentWriter::create_with_interfaces(
        dir.path(),
        "u",
        "upload",
        &[eth, tun],
        options(300),
        START,
    )
    .unwrap();
    // Year 3000 on the microsecond interface: past what nanoseconds count in 64 bits.
    let times = [
        Timestamp::new(1_700_000_000, 1_000),
        Timestamp::new(1_700_000_000, 5),
        Timestamp::new(32_503_680_000, 7_000),
    ];
    let mut sent = Vec::new();
    for i in 0..30u32 {
        let interface = i % 2;
        let ts = if interface == 0 && i % 3 == 0 {
            times[2]
        } else {
            times[interface as usize]
        };
        let mut o = OwnedOptions::new();
        if i % 5 == 0 {
            o.push_str(opt::COMMENT, &format!("packet {i}"));
        }
        let data = vec![i as u8; 20 + i as usize];
        w.append_to(interface, ts, 100 + i, &data, o.view())
            .unwrap();
        sent.push((interface, ts, 100 + i, data, o));
    }
    let e = w
        .append_to(2, times[0], 1, &[0], OwnedOptions::new().view())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = w
        .append_to(1, times[2], 1, &[0], OwnedOptions::new().view())
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidInput,
        "nanoseconds cannot count it: {e}"
    );
    let stats = w.finish().unwrap();
    assert_eq!(stats.packets, 30);

    let check = |r: &SegmentReader, expected: &[(u32, Timestamp, u32, Vec<u8>, OwnedOptions)]| {
        let ifaces = r.interfaces();
        assert_eq!(ifaces.len(), 2);
        assert_eq!(ifaces[0].name(), Some("eth0"));
        let desc = ifaces[0].options.view().strings(opt::IF_DESCRIPTION).next();
        assert_eq!(desc, Some("uplink"));
        assert_eq!(
            (ifaces[0].link_type, ifaces[0].units_per_sec),
            (1, 1_000_000)
        );
        assert_eq!(
            (ifaces[1].link_type, ifaces[1].units_per_sec),
            (101, 1_000_000_000)
        );
        assert_eq!(ifaces[1].ts_offset, 0, "times are stored absolute");
        let mut window = r.packets();
        let mut n = 0;
        while window.advance().unwrap() {
            let p = window.packet().unwrap();
            let (interface, ts, orig_len, data, o) = &expected[n];
            assert_eq!(
                (p.interface, p.ts, p.orig_len, p.data),
                (*interface, *ts, *orig_len, &data[..]),
                "packet {n}"
            );
            let want: Vec<&str> = o.view().strings(opt::COMMENT).collect();
            assert_eq!(p.comments().collect::<Vec<_>>(), want, "packet {n}");
            n += 1;
        }
        assert_eq!(n, expected.len());
    };
    let r = SegmentReader::open(dir.path(), "u").unwrap();
    assert!(r.recovery().is_clean());
    check(&r, &sent);
    assert_eq!(
        SegmentReader::read_interfaces(dir.path(), "u").unwrap(),
        r.interfaces()
    );
    drop(r);

    // Reopened (as after a crash), it goes on with the same interfaces.
    let (mut w, _) = SegmentWriter::reopen_for_append(dir.path(), "u", options(300)).unwrap();
    w.append_to(1, times[1], 9, b"late", OwnedOptions::new().view())
        .unwrap();
    w.finish().unwrap();
    sent.push((1, times[1], 9, b"late".to_vec(), OwnedOptions::new()));
    check(&SegmentReader::open(dir.path(), "u").unwrap(), &sent);
}
