//! Replaying a capture file (`--pcap FILE`) as if it were a live interface: for tests and demos.
//!
//! Any file [`trawl_pcap::CaptureReader`] reads (pcap, pcapng, snoop, compressed or not). Packets
//! come out either as fast as the caller takes them, or paced by the file's timestamps: the
//! first packet at once, each next one when as much time has passed as separates it from the
//! first in the file. Timestamps are the file's, not the time of replay.
//!
//! The watermark ([`Source::complete_before`]) holds also for a file whose packets are not
//! quite in time order (a capture on two CPUs can have packets a few microseconds out of
//! order): opening reads the file once to find its largest step back in time, its
//! `disorder`, and no packet still to come is stamped more than that before the latest one
//! read. (A pipe cannot be read twice: it has no watermark until it ends.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trawl_pcap::CaptureReader;

use super::afpacket::MAX_SNAPLEN;
use super::{Batch, Packet, Source, SourceError, SourceStats, Timestamp};

/// How fast a [`ReplaySource`] hands out packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pacing {
    /// As fast as the caller takes them.
    #[default]
    AsFastAsPossible,
    /// At the pace of the file's timestamps.
    RealTime,
}

/// Most packets handed out by one [`ReplaySource::next_batch`] call.
const MAX_BATCH: usize = 1024;

/// A capture file as a [`Source`].
pub struct ReplaySource {
    path: PathBuf,
    reader: CaptureReader<Box<dyn Read + Send>>,
    link_type: u32,
    snaplen: u32,
    pacing: Pacing,
    /// When the first packet was handed out, and its timestamp.
    clock: Option<(Instant, Timestamp)>,
    /// The reader's current packet has been read but not handed out yet (it was not due).
    holding: bool,
    /// An error met after some packets of a batch were handed out, reported by the next call.
    pending_error: Option<SourceError>,
    finished: bool,
    received: u64,
    /// The most by which a packet of the file is stamped before a packet ahead of it (0 for a
    /// file in time order), ns.
    disorder_ns: u64,
    /// The latest time among the packets read so far (handed out or held), ns.
    newest_ns: Option<u64>,
}

impl ReplaySource {
    /// Opens `path`. The link type and snap length are those of the file's first interface.
    pub fn open(path: impl AsRef<Path>, pacing: Pacing) -> Result<Self, SourceError> {
        let path = path.as_ref().to_path_buf();
        let reader = CaptureReader::open(&path).map_err(|source| SourceError::Replay {
            path: path.clone(),
            source,
        })?;
        let (link_type, snaplen) = match reader.interfaces().first() {
            Some(interface) => (interface.link_type, interface.snaplen),
            // A pcapng file with no interface has no packets either.
            None => (super::LINKTYPE_ETHERNET, 0),
        };
        let snaplen = if snaplen == 0 { MAX_SNAPLEN } else { snaplen };
        let disorder_ns = disorder(&path);
        Ok(ReplaySource {
            path,
            reader,
            link_type,
            snaplen,
            pacing,
            clock: None,
            holding: false,
            pending_error: None,
            finished: false,
            received: 0,
            disorder_ns,
            newest_ns: None,
        })
    }

    /// When the reader's current packet is due, `None` for at once.
    fn due(&mut self, ts: Timestamp) -> Option<Instant> {
        if self.pacing == Pacing::AsFastAsPossible {
            return None;
        }
        let (start, first) = *self.clock.get_or_insert((Instant::now(), ts));
        let offset = ts.as_nanos().saturating_sub(first.as_nanos());
        Some(start + Duration::from_nanos(offset))
    }
}

impl Source for ReplaySource {
    fn link_type(&self) -> u32 {
        self.link_type
    }

    fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn next_batch(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Batch, SourceError> {
        if let Some(err) = self.pending_error.take() {
            return Err(err);
        }
        let deadline = Instant::now() + timeout;
        let mut delivered = 0;
        while delivered < MAX_BATCH {
            if self.finished {
                break;
            }
            if !self.holding {
                match self.reader.advance() {
                    Ok(true) => self.holding = true,
                    Ok(false) => {
                        self.finished = true;
                        break;
                    }
                    Err(source) => {
                        self.finished = true;
                        let err = SourceError::Replay {
                            path: self.path.clone(),
                            source,
                        };
                        if delivered == 0 {
                            return Err(err);
                        }
                        self.pending_error = Some(err);
                        break;
                    }
                }
            }
            let Some(packet) = self.reader.current() else {
                self.holding = false;
                continue;
            };
            let (ts, found, offset) = (packet.ts, packet.link_type, packet.offset);
            self.newest_ns = self.newest_ns.max(Some(ts.as_nanos()));
            if found != self.link_type {
                self.finished = true;
                let err = SourceError::MixedLinkTypes {
                    path: self.path.clone(),
                    offset,
                    expected: self.link_type,
                    found,
                };
                if delivered == 0 {
                    return Err(err);
                }
                self.pending_error = Some(err);
                break;
            }
            if let Some(due) = self.due(ts) {
                let now = Instant::now();
                if due > now {
                    if delivered > 0 {
                        break;
                    }
                    if due > deadline {
                        std::thread::sleep(deadline.saturating_duration_since(now));
                        return Ok(Batch::Idle);
                    }
                    std::thread::sleep(due - now);
                }
            }
            let Some(packet) = self.reader.current() else {
                continue;
            };
            let keep = packet.data.len().min(self.snaplen as usize);
            visit(Packet {
                ts: packet.ts,
                orig_len: packet.orig_len,
                data: &packet.data[..keep],
            });
            self.holding = false;
            delivered += 1;
        }
        self.received += delivered as u64;
        Ok(match delivered {
            0 if self.finished => Batch::Finished,
            0 => Batch::Idle,
            n => Batch::Packets(n),
        })
    }

    fn stats(&mut self) -> Result<SourceStats, SourceError> {
        Ok(SourceStats {
            received: self.received,
            ..SourceStats::default()
        })
    }

    /// Every packet still to come (the one held back, not due yet, and those not read) is
    /// stamped at least `newest - disorder`: were one stamped earlier, it would be more than
    /// `disorder` before a packet ahead of it in the file. For a file in time order that is
    /// the time of the packet held back, or of the last one handed out. Nothing read yet: 0;
    /// the file ended (or failed: nothing more is handed out): `u64::MAX`.
    fn complete_before(&self) -> u64 {
        if self.finished {
            return u64::MAX;
        }
        self.newest_ns
            .map_or(0, |newest| newest.saturating_sub(self.disorder_ns))
    }
}

/// The largest step back in time between a packet of the file at `path` and the latest one
/// before it (ns; 0 if the file is in time order), over the packets read before the end or the
/// first error (which is where a replay ends too). `u64::MAX` (no watermark until the end) for
/// what cannot be read twice (a pipe) or opened again.
fn disorder(path: &Path) -> u64 {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return u64::MAX;
    }
    let Ok(mut reader) = CaptureReader::open(path) else {
        return u64::MAX;
    };
    let (mut newest, mut most) = (0u64, 0u64);
    while let Ok(Some(p)) = reader.next_packet() {
        let ns = p.ts.as_nanos();
        most = most.max(newest.saturating_sub(ns));
        newest = newest.max(ns);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_pcap::{PcapWriter, TsPrecision};

    fn write_capture(dir: &Path, times_ms: &[u64]) -> PathBuf {
        let path = dir.join("in.pcap");
        let file = std::fs::File::create(&path).expect("create");
        let mut writer = PcapWriter::new(file, 1, 65535, TsPrecision::Nano).expect("writer");
        for (i, ms) in times_ms.iter().enumerate() {
            let data = vec![i as u8; 60 + i];
            writer
                .write(
                    Timestamp::from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000),
                    100 + i as u32,
                    &data,
                )
                .expect("write");
        }
        writer.finish().expect("finish");
        path
    }

    fn drain(source: &mut ReplaySource) -> Vec<(Timestamp, u32, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let batch = source
                .next_batch(Duration::from_secs(1), &mut |p| {
                    out.push((p.ts, p.orig_len, p.data.to_vec()))
                })
                .expect("batch");
            if batch == Batch::Finished {
                return out;
            }
        }
    }

    #[test]
    fn replays_every_packet_with_its_time_and_lengths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_capture(dir.path(), &[0, 1, 2, 3, 4]);
        let mut source = ReplaySource::open(&path, Pacing::AsFastAsPossible).expect("open");
        assert_eq!(source.link_type(), 1);
        assert_eq!(source.snaplen(), 65535);
        let packets = drain(&mut source);
        assert_eq!(packets.len(), 5);
        for (i, (ts, orig_len, data)) in packets.iter().enumerate() {
            assert_eq!(
                ts.as_nanos(),
                1_700_000_000_000_000_000 + i as u64 * 1_000_000
            );
            assert_eq!(*orig_len, 100 + i as u32);
            assert_eq!(data, &vec![i as u8; 60 + i]);
        }
        assert_eq!(source.stats().expect("stats").received, 5);
        // Finished stays finished.
        let batch = source
            .next_batch(Duration::ZERO, &mut |_| panic!("no more packets"))
            .expect("batch");
        assert_eq!(batch, Batch::Finished);
    }

    #[test]
    fn real_time_pacing_follows_the_timestamps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_capture(dir.path(), &[0, 100, 200, 300]);
        let mut source = ReplaySource::open(&path, Pacing::RealTime).expect("open");
        let start = Instant::now();
        // A short timeout returns Idle while the next packet is not due yet.
        let mut first = 0;
        let batch = source
            .next_batch(Duration::from_millis(10), &mut |_| first += 1)
            .expect("batch");
        assert_eq!((batch, first), (Batch::Packets(1), 1));
        let batch = source
            .next_batch(Duration::from_millis(10), &mut |_| panic!("not due yet"))
            .expect("batch");
        assert_eq!(batch, Batch::Idle);
        let packets = drain(&mut source);
        let elapsed = start.elapsed();
        assert_eq!(packets.len(), 3);
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[test]
    fn the_watermark_is_the_packet_held_back_then_the_end() {
        let base = 1_700_000_000_000_000_000u64;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_capture(dir.path(), &[0, 10_000]);
        let mut source = ReplaySource::open(&path, Pacing::RealTime).expect("open");
        assert_eq!(source.complete_before(), 0, "nothing read yet: cannot say");
        let mut got = Vec::new();
        let batch = source
            .next_batch(Duration::from_millis(1), &mut |p| got.push(p.ts.as_nanos()))
            .expect("batch");
        assert_eq!((batch, &got[..]), (Batch::Packets(1), &[base][..]));
        // The second packet is due in 10 s: held back, and nothing comes before it.
        assert_eq!(source.complete_before(), base + 10_000 * 1_000_000);

        let path = write_capture(dir.path(), &[0, 1, 2]);
        let mut source = ReplaySource::open(&path, Pacing::AsFastAsPossible).expect("open");
        assert_eq!(drain(&mut source).len(), 3);
        assert_eq!(source.complete_before(), u64::MAX, "finished: nothing more");
    }

    #[test]
    fn the_watermark_allows_for_the_files_own_disorder() {
        let ms = 1_000_000u64;
        let base = 1_700_000_000_000_000_000u64;
        // More than one call's worth (MAX_BATCH: up to 1023 ms), then a step back of 9 ms to
        // before the last packet of the first call.
        let mut times: Vec<u64> = (0..MAX_BATCH as u64).collect();
        times.extend([1030, 1021, 1031, 1032]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_capture(dir.path(), &times);
        let mut source = ReplaySource::open(&path, Pacing::AsFastAsPossible).expect("open");
        let mut first = Vec::new();
        let batch = source
            .next_batch(Duration::from_secs(1), &mut |p| first.push(p.ts.as_nanos()))
            .expect("batch");
        assert_eq!(batch, Batch::Packets(MAX_BATCH));
        let watermark = source.complete_before();
        // The newest packet read (1023 ms) less the file's largest step back (9 ms).
        assert_eq!(watermark, base + 1014 * ms);
        let rest: Vec<u64> = drain(&mut source)
            .iter()
            .map(|(ts, _, _)| ts.as_nanos())
            .collect();
        assert_eq!(rest.len(), 4);
        assert!(
            rest.iter().all(|&ns| ns >= watermark),
            "{rest:?} against {watermark}"
        );
        assert_eq!(source.complete_before(), u64::MAX);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = ReplaySource::open("/nonexistent/trawl.pcap", Pacing::AsFastAsPossible)
            .err()
            .expect("error");
        assert!(err.to_string().contains("/nonexistent/trawl.pcap"), "{err}");
    }
}
