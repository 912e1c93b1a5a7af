//! Opening a segment (recovering from a crash or a stale index) and reading time windows.

use std::borrow::Borrow;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trawl_pcap::{Interface, Packet, Timestamp};

use crate::frame::{self, FrameCapture, ZSTD_MAGIC};
use crate::index;
use crate::{FrameMeta, SegmentStats, StoreError, StreamInfo, index_path, segment_path};

/// How a segment was opened: what the index gave, what had to be scanned, what was left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// An index file with a valid header for this segment was found.
    pub index_found: bool,
    /// Frames taken from the index.
    pub indexed_frames: usize,
    /// Index records not used: they point past the end of the file or at bytes that are not the
    /// frame they describe, or are damaged (a record cut short counts as one).
    pub dropped_index_records: usize,
    /// Frames found by scanning the file after the last indexed frame.
    pub scanned_frames: usize,
    /// Bytes at the end of the file that are not a complete, checksummed frame (a frame cut
    /// short by a crash): never read, and cut off by `SegmentWriter::reopen_for_append`.
    pub ignored_tail_bytes: u64,
}

impl Recovery {
    /// True when the index described the whole file exactly.
    pub fn is_clean(&self) -> bool {
        self.index_found
            && self.dropped_index_records == 0
            && self.scanned_frames == 0
            && self.ignored_tail_bytes == 0
    }
}

/// One packet read from a segment, owning its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPacket {
    pub ts: Timestamp,
    /// Length on the wire; `data.len()` is the captured length.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// An open segment: its stream, its frames, and the bytes of its section header.
pub struct SegmentReader {
    path: PathBuf,
    file: File,
    info: StreamInfo,
    created: Timestamp,
    interfaces: Vec<Interface>,
    /// The decompressed section header and interface descriptions (SHB + IDBs).
    header: Arc<[u8]>,
    header_frame_len: u64,
    frames: Vec<FrameMeta>,
    recovery: Recovery,
}

impl SegmentReader {
    /// Opens segment `name` in `dir`, finished or not. Uses the index for every frame it
    /// describes correctly, scans the file for frames after those, and ignores a last frame
    /// that is incomplete or fails its checksum. Fails only if the header frame itself is not
    /// intact (a segment whose creation did not complete).
    pub fn open(dir: &Path, name: &str) -> Result<Self, StoreError> {
        let path = segment_path(dir, name);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, "opening", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| StoreError::io(&path, "reading the size", e))?
            .len();

        let (header_frame_len, header) = read_header(&file, &path, file_len)?;
        let frame::Header {
            info,
            created,
            interfaces,
        } = frame::parse_header(&path, &header)?;
        let header: Arc<[u8]> = header.into();

        let mut recovery = Recovery::default();
        let mut frames = Vec::new();
        let mut end = header_frame_len;
        let idx_bytes = fs::read(index_path(dir, name)).ok();
        let idx = idx_bytes
            .as_deref()
            .and_then(index::decode)
            .filter(|i| i.header_frame_len == header_frame_len);
        if let Some(idx) = idx {
            recovery.index_found = true;
            let total = idx.records.len();
            for r in idx.records {
                if !record_matches_file(&file, &r, end, file_len) {
                    break;
                }
                end = r.end();
                frames.push(r);
            }
            recovery.indexed_frames = frames.len();
            recovery.dropped_index_records =
                total - frames.len() + usize::from(idx.trailing_bytes > 0);
        }

        // Frames written after the last index record reached the disk.
        while let Some(bytes) = frame::read_frame_at(&file, &path, end, file_len)? {
            match frame::summarize(&path, end, &header, &bytes) {
                Ok(meta) => {
                    end = meta.end();
                    frames.push(meta);
                    recovery.scanned_frames += 1;
                }
                Err(_) => break,
            }
        }
        recovery.ignored_tail_bytes = file_len - end;

        Ok(SegmentReader {
            path,
            file,
            info,
            created,
            interfaces,
            header,
            header_frame_len,
            frames,
            recovery,
        })
    }

    /// The stream a segment holds, read from its header frame alone (no index, no scan): what
    /// a reader needs to know before deciding to read the segment.
    pub fn read_info(dir: &Path, name: &str) -> Result<StreamInfo, StoreError> {
        let path = segment_path(dir, name);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, "opening", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| StoreError::io(&path, "reading the size", e))?
            .len();
        let (_, header) = read_header(&file, &path, file_len)?;
        Ok(frame::parse_header(&path, &header)?.info)
    }

    /// Every interface a segment describes, from its header frame alone: one for a device's
    /// stream, as many as the original file had for an upload.
    pub fn read_interfaces(dir: &Path, name: &str) -> Result<Vec<Interface>, StoreError> {
        let path = segment_path(dir, name);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, "opening", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| StoreError::io(&path, "reading the size", e))?
            .len();
        let (_, header) = read_header(&file, &path, file_len)?;
        Ok(frame::parse_header(&path, &header)?.interfaces)
    }

    /// Forgets the frames that end past byte `end` of the segment file, so that reads see the
    /// segment as it was when it was `end` bytes long (a segment still being written, read up
    /// to the length its owner vouches for). A frame is kept only whole.
    pub fn limit_to(&mut self, end: u64) {
        let keep = self.frames.partition_point(|f| f.end() <= end);
        self.frames.truncate(keep);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stream: the device and the first interface.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The interfaces, as stored: a packet's `interface` indexes this.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// When the writer created the segment (server time).
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The data frames, in file order (the header frame excluded).
    pub fn frames(&self) -> &[FrameMeta] {
        &self.frames
    }

    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The section header and interface description, decompressed: prepended to any frame's
    /// content they make a complete pcapng file.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header
    }

    /// The length of the header frame (frame 0) in the file.
    pub fn header_frame_len(&self) -> u64 {
        self.header_frame_len
    }

    /// The offset just past the last good frame: where the next frame goes.
    pub fn data_end(&self) -> u64 {
        self.frames
            .last()
            .map_or(self.header_frame_len, FrameMeta::end)
    }

    pub fn stats(&self) -> SegmentStats {
        SegmentStats::of(
            self.header_frame_len,
            self.header.len() as u64,
            &self.frames,
        )
    }

    /// The compressed bytes of data frame `i`, checked against its index entry.
    pub fn compressed_frame(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        let meta = &self.frames[i];
        let mut buf = vec![0u8; meta.compressed_len as usize];
        self.file
            .read_exact_at(&mut buf, meta.offset)
            .map_err(|e| StoreError::io(&self.path, "reading a frame", e))?;
        if buf.len() < 8
            || buf[..4] != ZSTD_MAGIC
            || frame::trailing_checksum(&buf) != meta.checksum
        {
            return Err(StoreError::corrupt(
                &self.path,
                meta.offset,
                "the bytes at this offset are not the frame the index describes",
            ));
        }
        Ok(buf)
    }

    /// Packets whose time is in `[from, to)`, in file order, decompressing only the frames whose
    /// time range overlaps the window.
    pub fn window(&self, from: Timestamp, to: Timestamp) -> Window<'_> {
        WindowOf::new(self, from, to)
    }

    /// [`window`](Self::window), owning the reader: for a caller that keeps several segments'
    /// windows side by side (a merge) and opens the next segment when one ends.
    pub fn into_window(self, from: Timestamp, to: Timestamp) -> WindowOf<SegmentReader> {
        WindowOf::new(self, from, to)
    }

    /// Every packet of the segment.
    pub fn packets(&self) -> Window<'_> {
        self.window(Timestamp::default(), Timestamp::new(u64::MAX, 0))
    }

    fn open_frame(&self, i: usize) -> Result<FrameCapture, StoreError> {
        let meta = &self.frames[i];
        let compressed = self.compressed_frame(i)?;
        let content = frame::decompress(&compressed)
            .map_err(|e| StoreError::corrupt(&self.path, meta.offset, e.to_string()))?;
        if content.len() != meta.uncompressed_len as usize {
            return Err(StoreError::corrupt(
                &self.path,
                meta.offset,
                "the frame's content is not the length the index gives",
            ));
        }
        frame::capture(&self.path, meta.offset, &self.header, content)
    }
}

/// The header frame at the start of a segment file: its compressed length and its content.
fn read_header(file: &File, path: &Path, file_len: u64) -> Result<(u64, Vec<u8>), StoreError> {
    let header_frame = frame::read_frame_at(file, path, 0, file_len)?.ok_or_else(|| {
        StoreError::corrupt(
            path,
            0,
            "the file does not start with a complete zstd frame (its creation did not finish)",
        )
    })?;
    let header = frame::decompress(&header_frame)
        .map_err(|e| StoreError::corrupt(path, 0, format!("the header frame: {e}")))?;
    Ok((header_frame.len() as u64, header))
}

/// Whether index record `r` describes the frame that follows `expected_offset` in the file:
/// contiguous, inside the file, and starting and ending with the bytes a zstd frame with its
/// checksum would. (The content itself is checked when the frame is decompressed.)
fn record_matches_file(file: &File, r: &FrameMeta, expected_offset: u64, file_len: u64) -> bool {
    if r.offset != expected_offset
        || r.compressed_len < 8
        || r.end() > file_len
        || r.packets == 0
        || r.first > r.last
    {
        return false;
    }
    let mut magic = [0u8; 4];
    let mut checksum = [0u8; 4];
    file.read_exact_at(&mut magic, r.offset).is_ok()
        && file.read_exact_at(&mut checksum, r.end() - 4).is_ok()
        && magic == ZSTD_MAGIC
        && u32::from_le_bytes(checksum) == r.checksum
}

struct Cursor {
    frame: usize,
    capture: FrameCapture,
    seen: u32,
}

/// The packets of a time window, frame by frame, reading through a borrowed segment reader.
pub type Window<'r> = WindowOf<&'r SegmentReader>;

/// The packets of a time window, frame by frame, reading through `R`: a borrowed
/// [`SegmentReader`] ([`Window`]) or an owned one ([`SegmentReader::into_window`]).
///
/// Use [`advance`](Self::advance) and [`packet`](Self::packet) to borrow each packet without
/// copying, or iterate to get owned [`StoredPacket`]s. An error ends the window: a frame that
/// fails its checksum or disagrees with its index entry yields an error, never its packets.
pub struct WindowOf<R> {
    reader: R,
    from: Timestamp,
    to: Timestamp,
    next_frame: usize,
    cursor: Option<Cursor>,
    frames_decoded: usize,
    failed: bool,
}

impl<R: Borrow<SegmentReader>> WindowOf<R> {
    fn new(reader: R, from: Timestamp, to: Timestamp) -> Self {
        WindowOf {
            reader,
            from,
            to,
            next_frame: 0,
            cursor: None,
            frames_decoded: 0,
            failed: false,
        }
    }

    /// The segment being read.
    pub fn reader(&self) -> &SegmentReader {
        self.reader.borrow()
    }

    /// Moves to the next packet of the window; `Ok(false)` at the end.
    pub fn advance(&mut self) -> Result<bool, StoreError> {
        if self.failed {
            return Ok(false);
        }
        let result = self.step();
        if result.is_err() {
            self.failed = true;
            self.cursor = None;
        }
        result
    }

    fn step(&mut self) -> Result<bool, StoreError> {
        let reader: &SegmentReader = self.reader.borrow();
        loop {
            let Some(cur) = &mut self.cursor else {
                let frames = &reader.frames;
                while self.next_frame < frames.len()
                    && !frames[self.next_frame].overlaps(self.from, self.to)
                {
                    self.next_frame += 1;
                }
                if self.next_frame == frames.len() {
                    return Ok(false);
                }
                let frame = self.next_frame;
                self.next_frame += 1;
                self.frames_decoded += 1;
                self.cursor = Some(Cursor {
                    frame,
                    capture: reader.open_frame(frame)?,
                    seen: 0,
                });
                continue;
            };
            let meta = &reader.frames[cur.frame];
            let corrupt = |detail: &str| StoreError::corrupt(&reader.path, meta.offset, detail);
            let more = cur
                .capture
                .advance()
                .map_err(|e| frame::frame_corrupt(&reader.path, meta.offset, &e))?;
            if !more {
                if cur.seen != meta.packets {
                    return Err(corrupt(
                        "the frame holds a different number of packets than its index entry",
                    ));
                }
                self.cursor = None;
                continue;
            }
            cur.seen += 1;
            let p = cur.capture.current().expect("advanced");
            // The index holds times as nanoseconds, saturated (an upload may state times past
            // 2554): compare in the same terms.
            let ns = p.ts.as_nanos();
            if !p.has_time || ns < meta.first.as_nanos() || ns > meta.last.as_nanos() {
                return Err(corrupt(
                    "the frame holds a record outside the time range of its index entry",
                ));
            }
            if p.ts >= self.from && p.ts < self.to {
                return Ok(true);
            }
        }
    }

    /// The packet [`advance`](Self::advance) moved to.
    pub fn packet(&self) -> Option<Packet<'_>> {
        self.cursor.as_ref().and_then(|c| c.capture.current())
    }

    /// How many frames have been decompressed so far.
    pub fn frames_decoded(&self) -> usize {
        self.frames_decoded
    }
}

impl<R: Borrow<SegmentReader>> Iterator for WindowOf<R> {
    type Item = Result<StoredPacket, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(true) => {
                let p = self.packet().expect("advanced");
                Some(Ok(StoredPacket {
                    ts: p.ts,
                    orig_len: p.orig_len,
                    data: p.data.to_vec(),
                }))
            }
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
