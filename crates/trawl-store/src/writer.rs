//! Appending packets to a segment, frame by frame, with a sync point to return to on failure.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use trawl_pcap::{Interface, MAX_PACKET, Options, OwnedOptions, PcapngWriter, Timestamp};

use crate::frame::{self, Compressor};
use crate::index;
use crate::reader::{Recovery, SegmentReader};
use crate::{FrameMeta, SegmentStats, StoreError, StreamInfo, index_path, segment_path};

/// How a writer cuts and compresses frames.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// A frame is cut once it holds this many bytes of pcapng (one packet more at most).
    /// Smaller frames make windows finer and compression worse.
    pub frame_bytes: usize,
    /// zstd compression level.
    pub level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            frame_bytes: 256 << 10,
            level: 3,
        }
    }
}

/// Totals of the packets appended since the last frame was cut.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    packets: u32,
    /// pcapng bytes of their blocks.
    bytes: usize,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    captured: u64,
    wire: u64,
}

/// Writes one segment.
///
/// Packets are appended to an in-memory frame; a frame is compressed and written when it reaches
/// [`WriterOptions::frame_bytes`] or on [`flush_frame`](Self::flush_frame) (readers see it from
/// then on), and made durable, with its index record, by [`sync`](Self::sync).
///
/// **Failure.** When writing or syncing fails (a full disk above all), the writer returns to
/// its last sync point before reporting the error: the file and index are cut back to what the
/// last successful `sync` made durable, and the packets appended since are dropped. The caller
/// must therefore acknowledge packets only after `sync` succeeds, and may simply send them
/// again later: they are never stored twice.
pub struct SegmentWriter {
    path: PathBuf,
    index_path: PathBuf,
    file: File,
    index: File,
    info: StreamInfo,
    created: Timestamp,
    options: WriterOptions,
    compressor: Compressor,
    section: OwnedOptions,
    /// The interfaces, as stored (see [`crate::stored_interface`]): one for a device's stream.
    ifaces: Vec<Interface>,
    /// Length of the section header and interface descriptions every frame buffer starts with.
    header_len: usize,
    header_frame_len: u64,
    /// The frame being filled: the header, then the pending packets' blocks.
    pcapng: Option<PcapngWriter<Vec<u8>>>,
    pending: Pending,
    frames: Vec<FrameMeta>,
    /// Where the next frame goes.
    end: u64,
    synced_frames: usize,
    synced_end: u64,
    broken: bool,
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs(), d.subsec_nanos())
}

impl SegmentWriter {
    /// Creates segment `name` in `dir` with default options, stamped with the current time.
    pub fn create(dir: &Path, name: &str, info: &StreamInfo) -> Result<Self, StoreError> {
        Self::create_with(dir, name, info, WriterOptions::default(), now())
    }

    /// Creates segment `name` in `dir`; fails if it exists. The header frame and the index
    /// header are durable when this returns.
    pub fn create_with(
        dir: &Path,
        name: &str,
        info: &StreamInfo,
        options: WriterOptions,
        created: Timestamp,
    ) -> Result<Self, StoreError> {
        Self::create_segment(
            dir,
            name,
            info.clone(),
            vec![frame::interface(info)],
            options,
            created,
        )
    }

    /// Creates segment `name` in `dir` holding packets of several interfaces — those of an
    /// uploaded file, kept apart — for `device` (a name for the section header). Each interface
    /// keeps its link type, snap length, time resolution and options, with absolute times
    /// ([`crate::stored_interface`]); packets go to one of them with
    /// [`append_to`](Self::append_to). [`info`](Self::info) describes the first.
    pub fn create_with_interfaces(
        dir: &Path,
        name: &str,
        device: &str,
        interfaces: &[Interface],
        options: WriterOptions,
        created: Timestamp,
    ) -> Result<Self, StoreError> {
        let Some(first) = interfaces.first() else {
            return Err(StoreError::InvalidInput {
                path: segment_path(dir, name),
                detail: "a segment needs at least one interface".into(),
            });
        };
        let info = StreamInfo {
            device: device.to_owned(),
            interface: first.name().unwrap_or_default().to_owned(),
            link_type: first.link_type,
            snaplen: first.snaplen,
        };
        let ifaces = interfaces.iter().map(frame::stored_interface).collect();
        Self::create_segment(dir, name, info, ifaces, options, created)
    }

    fn create_segment(
        dir: &Path,
        name: &str,
        info: StreamInfo,
        ifaces: Vec<Interface>,
        options: WriterOptions,
        created: Timestamp,
    ) -> Result<Self, StoreError> {
        let path = segment_path(dir, name);
        let index_path = index_path(dir, name);
        let section = frame::section_options(&info, created);
        let io_err = |during| {
            let path = &path;
            move |e| StoreError::io(path, during, e)
        };

        let header = frame::start_pcapng(Vec::new(), &section, &ifaces)
            .and_then(|w| w.finish())
            .map_err(io_err("encoding the section header"))?;
        let mut compressor = Compressor::new(options.level).map_err(io_err("starting zstd"))?;
        let header_frame = compressor
            .compress(&header)
            .map_err(io_err("compressing the header"))?
            .to_vec();

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("creating the segment"))?;
        let written = file
            .write_all_at(&header_frame, 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io(&path, "writing the header frame", e))
            .and_then(|()| {
                index::write_atomically(&index_path, header_frame.len() as u64, &[])
                    .map_err(|e| StoreError::io(&index_path, "writing the index", e))
            });
        if let Err(e) = written {
            // Nothing was ever synced: leave nothing behind.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let index = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&index_path)
            .map_err(|e| StoreError::io(&index_path, "opening the index", e))?;
        let end = header_frame.len() as u64;
        let pcapng = frame::start_pcapng(header, &section, &ifaces)
            .map_err(|e| StoreError::io(&path, "encoding the section header", e))?;
        Ok(SegmentWriter {
            header_len: header_len(&section, &ifaces),
            path,
            index_path,
            file,
            index,
            info,
            created,
            options,
            compressor,
            section,
            ifaces,
            header_frame_len: end,
            pcapng: Some(pcapng),
            pending: Pending::default(),
            frames: Vec::new(),
            end,
            synced_frames: 0,
            synced_end: end,
            broken: false,
        })
    }

    /// Reopens a segment left open (by a crash or a restart) to append to it: cuts the file
    /// back to its last complete, checksummed frame and rewrites the index to match, so that
    /// appending continues cleanly. Returns what recovery found.
    pub fn reopen_for_append(
        dir: &Path,
        name: &str,
        options: WriterOptions,
    ) -> Result<(Self, Recovery), StoreError> {
        let reader = SegmentReader::open(dir, name)?;
        let recovery = reader.recovery();
        let path = segment_path(dir, name);
        let index_path = index_path(dir, name);
        let frames = reader.frames().to_vec();
        let end = reader.data_end();
        let header_frame_len = reader.header_frame_len();
        let (info, created) = (reader.info().clone(), reader.created());
        let ifaces = reader.interfaces().to_vec();
        drop(reader);

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, "opening the segment", e))?;
        if recovery.ignored_tail_bytes > 0 {
            file.set_len(end)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io(&path, "cutting off an incomplete frame", e))?;
        }
        if !recovery.is_clean() {
            index::write_atomically(&index_path, header_frame_len, &frames)
                .map_err(|e| StoreError::io(&index_path, "rewriting the index", e))?;
        }
        let index = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&index_path)
            .map_err(|e| StoreError::io(&index_path, "opening the index", e))?;

        let section = frame::section_options(&info, created);
        let pcapng = frame::start_pcapng(Vec::new(), &section, &ifaces)
            .map_err(|e| StoreError::io(&path, "encoding the section header", e))?;
        let compressor = Compressor::new(options.level)
            .map_err(|e| StoreError::io(&path, "starting zstd", e))?;
        let writer = SegmentWriter {
            header_len: header_len(&section, &ifaces),
            path,
            index_path,
            file,
            index,
            info,
            created,
            options,
            compressor,
            section,
            ifaces,
            header_frame_len,
            pcapng: Some(pcapng),
            pending: Pending::default(),
            synced_frames: frames.len(),
            frames,
            end,
            synced_end: end,
            broken: false,
        };
        Ok((writer, recovery))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stream: the device and the first interface.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The interfaces, as stored: one for a device's stream.
    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// Frames written so far (the frame being filled excluded).
    pub fn frames(&self) -> &[FrameMeta] {
        &self.frames
    }

    /// Packets appended but not yet in a written frame.
    pub fn pending_packets(&self) -> u32 {
        self.pending.packets
    }

    /// Appends one packet with its time and its length on the wire (`data` is what was
    /// captured). May cut and write a frame; on failure the writer is back at its last sync
    /// point (see the type's documentation).
    pub fn append(&mut self, ts: Timestamp, orig_len: u32, data: &[u8]) -> Result<(), StoreError> {
        self.append_to(0, ts, orig_len, data, Options::from_le_bytes(&[]))
    }

    /// Appends one packet of interface `interface` (an index into
    /// [`interfaces`](Self::interfaces)), with its pcapng options (comments, flags…), kept as
    /// they are.
    pub fn append_to(
        &mut self,
        interface: u32,
        ts: Timestamp,
        orig_len: u32,
        data: &[u8],
        options: Options<'_>,
    ) -> Result<(), StoreError> {
        self.check_usable()?;
        if interface as usize >= self.ifaces.len() {
            return Err(self.invalid(format!(
                "interface {interface} is not one of the segment's {}",
                self.ifaces.len()
            )));
        }
        if data.len() > MAX_PACKET as usize {
            return Err(self.invalid(format!(
                "a packet of {} bytes is longer than the {MAX_PACKET} bytes a segment may hold",
                data.len()
            )));
        }
        let units = self.ifaces[interface as usize].units_per_sec;
        if ts.to_units(units).is_none() {
            return Err(self.invalid(if units == 1_000_000_000 {
                format!("time {ts} does not fit a pcapng nanosecond timestamp")
            } else {
                format!("time {ts} does not fit a pcapng timestamp of {units} units a second")
            }));
        }
        let pcapng = self.pcapng.as_mut().expect("a frame is being filled");
        let before = pcapng.get_ref().len();
        pcapng
            .write(interface, ts, orig_len, data, options)
            .map_err(|e| StoreError::io(&self.path, "encoding a packet", e))?;
        let block = pcapng.get_ref().len() - before;
        let p = &mut self.pending;
        p.packets += 1;
        p.bytes += block;
        p.first = Some(p.first.map_or(ts, |t| t.min(ts)));
        p.last = Some(p.last.map_or(ts, |t| t.max(ts)));
        p.captured += data.len() as u64;
        p.wire += orig_len.max(data.len() as u32) as u64;
        if p.bytes >= self.options.frame_bytes || p.packets == u32::MAX {
            self.flush_frame()?;
        }
        Ok(())
    }

    /// Compresses and writes the frame being filled, if it holds any packet, and appends its
    /// index record. Readers opening the segment see its packets from then on; it is durable
    /// after the next [`sync`](Self::sync).
    pub fn flush_frame(&mut self) -> Result<(), StoreError> {
        self.check_usable()?;
        if self.pending.packets == 0 {
            return Ok(());
        }
        let w = self.pcapng.take().expect("a frame is being filled");
        let mut buf = w
            .finish()
            .map_err(|e| StoreError::io(&self.path, "encoding a frame", e))?;
        debug_assert_eq!(buf.len(), self.header_len + self.pending.bytes);
        let content = &buf[self.header_len..];
        let compressed = match self.compressor.compress(content) {
            Ok(c) => c,
            Err(e) => return Err(self.fail("compressing a frame", e)),
        };
        let p = self.pending;
        let meta = FrameMeta {
            offset: self.end,
            compressed_len: compressed.len() as u32,
            uncompressed_len: content.len() as u32,
            first: p.first.expect("a packet"),
            last: p.last.expect("a packet"),
            packets: p.packets,
            captured_bytes: p.captured,
            wire_bytes: p.wire,
            checksum: frame::trailing_checksum(compressed),
        };
        let record = index::encode_record(&meta);
        let written = self.file.write_all_at(compressed, meta.offset);
        // The frame goes first: an index record never describes a frame not yet written.
        let written = written.map_err(|e| ("writing a frame", e)).and_then(|()| {
            self.index
                .write_all_at(&record, index::record_offset(self.frames.len()))
                .map_err(|e| ("writing an index record", e))
        });
        buf.clear();
        self.pcapng = Some(
            frame::start_pcapng(buf, &self.section, &self.ifaces)
                .map_err(|e| StoreError::io(&self.path, "encoding the section header", e))?,
        );
        self.pending = Pending::default();
        if let Err((during, e)) = written {
            return Err(self.fail(during, e));
        }
        self.end = meta.end();
        self.frames.push(meta);
        Ok(())
    }

    /// Writes the frame being filled and makes the segment and its index durable: everything
    /// appended so far survives a crash once this returns. Acknowledge packets only after it.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush_frame()?;
        if self.synced_frames == self.frames.len() && self.synced_end == self.end {
            // Nothing written since the last sync (an empty batch, a heartbeat): no disk work.
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail("syncing the segment", e));
        }
        if let Err(e) = self.index.sync_data() {
            return Err(self.fail("syncing the index", e));
        }
        self.synced_frames = self.frames.len();
        self.synced_end = self.end;
        Ok(())
    }

    /// Syncs and closes the segment; returns its totals for the catalogue.
    pub fn finish(mut self) -> Result<SegmentStats, StoreError> {
        self.sync()?;
        Ok(self.stats())
    }

    /// Totals of the frames written so far (packets still pending excluded).
    pub fn stats(&self) -> SegmentStats {
        let header_uncompressed = self.header_len as u64;
        SegmentStats::of(self.header_frame_len, header_uncompressed, &self.frames)
    }

    /// True when the segment should be closed and a new one started: its written frames reach
    /// `max_bytes`, or it was created `max_age` or more before `now` (server time).
    pub fn should_rotate(&self, now: Timestamp, max_bytes: u64, max_age: Duration) -> bool {
        let age = Duration::from_nanos(now.as_nanos().saturating_sub(self.created.as_nanos()));
        self.end >= max_bytes || age >= max_age
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Broken {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn invalid(&self, detail: String) -> StoreError {
        StoreError::InvalidInput {
            path: self.path.clone(),
            detail,
        }
    }

    /// Returns to the last sync point, then describes `e`.
    fn fail(&mut self, during: &'static str, e: io::Error) -> StoreError {
        self.frames.truncate(self.synced_frames);
        self.end = self.synced_end;
        self.pending = Pending::default();
        let restarted = frame::start_pcapng(Vec::new(), &self.section, &self.ifaces);
        let cut = self
            .file
            .set_len(self.synced_end)
            .and_then(|()| self.index.set_len(index::record_offset(self.synced_frames)));
        match restarted {
            Ok(w) if cut.is_ok() => self.pcapng = Some(w),
            _ => self.broken = true,
        }
        let path = if during.contains("index") {
            &self.index_path
        } else {
            &self.path
        };
        StoreError::io(path, during, e)
    }
}

/// The length of the section header and interface descriptions as the writer encodes them.
fn header_len(section: &OwnedOptions, ifaces: &[Interface]) -> usize {
    frame::start_pcapng(Vec::new(), section, ifaces)
        .and_then(|w| w.finish())
        .map(|b| b.len())
        .unwrap_or(0)
}
