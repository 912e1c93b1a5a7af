//! The on-disk segment format of the trawl packet store.
//!
//! A *segment* holds one stream's packets (one device, one interface) as a standard pcapng file,
//! compressed with zstd in independently decodable frames, next to a small sparse index
//! (`NAME.idx`) that maps time ranges to frame offsets. [`SegmentWriter`] appends packets, cuts a
//! frame every [`WriterOptions::frame_bytes`] of pcapng (or on [`SegmentWriter::flush_frame`]),
//! and makes everything appended durable on [`SegmentWriter::sync`]. [`SegmentReader`] opens a
//! segment — finished, still being written, or left behind by a crash — using only complete,
//! checksummed frames, and reads a time window by decompressing only the frames that overlap it.
//!
//! The byte layout is specified in `docs/segment-format.md`. In short: frame 0 holds the pcapng
//! section header and interface description, every later frame holds whole enhanced packet blocks,
//! and `zstd -d` of the whole file is one valid pcapng file.
//!
//! A segment may also describe several interfaces
//! ([`SegmentWriter::create_with_interfaces`]): the server stores an uploaded capture file so,
//! keeping each packet on its own interface (of its own link type) and its packet options.

mod error;
mod frame;
mod index;
mod reader;
mod writer;

use std::path::{Path, PathBuf};

pub use error::{ErrorKind, StoreError};
pub use frame::stored_interface;
pub use reader::{Recovery, SegmentReader, StoredPacket, Window, WindowOf};
pub use trawl_pcap::{Interface, Packet, Timestamp};
pub use writer::{SegmentWriter, WriterOptions};

/// What a segment holds: the stream of one interface of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The device's name, written in the section header (`opt_comment` and `shb_hardware`).
    pub device: String,
    /// The interface's name (`if_name`).
    pub interface: String,
    /// The interface's link type (LINKTYPE_*).
    pub link_type: u32,
    /// The interface's snapshot length; 0 means no limit.
    pub snaplen: u32,
}

/// Where one compressed frame lies and what it holds: one entry of the sparse index.
///
/// `first` and `last` are the earliest and latest packet times in the frame (a stream is nearly
/// but not strictly in time order, so they are a minimum and a maximum, not the first and last
/// records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Byte offset of the zstd frame in the segment file.
    pub offset: u64,
    /// Length of the zstd frame in the file.
    pub compressed_len: u32,
    /// Length of the pcapng bytes it decompresses to.
    pub uncompressed_len: u32,
    pub first: Timestamp,
    pub last: Timestamp,
    pub packets: u32,
    /// Sum of the packets' captured lengths.
    pub captured_bytes: u64,
    /// Sum of the packets' lengths on the wire.
    pub wire_bytes: u64,
    /// The frame's zstd content checksum (low 32 bits of XXH64 of its content).
    pub checksum: u32,
}

impl FrameMeta {
    /// The offset just past the frame.
    pub fn end(&self) -> u64 {
        self.offset + self.compressed_len as u64
    }

    /// True if some packet time of the frame may lie in `[from, to)`.
    pub fn overlaps(&self, from: Timestamp, to: Timestamp) -> bool {
        self.last >= from && self.first < to
    }
}

/// A segment's totals, as the catalogue records them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Earliest packet time, `None` while the segment holds no packet.
    pub first: Option<Timestamp>,
    /// Latest packet time.
    pub last: Option<Timestamp>,
    pub packets: u64,
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    /// Sum of lengths on the wire.
    pub wire_bytes: u64,
    /// Bytes of pcapng the segment decompresses to (section header included).
    pub uncompressed_bytes: u64,
    /// Bytes of the segment file (what the disk holds, the index excluded).
    pub stored_bytes: u64,
    /// Data frames (the header frame excluded).
    pub frames: u64,
}

impl SegmentStats {
    fn add_frame(&mut self, f: &FrameMeta) {
        self.first = Some(self.first.map_or(f.first, |t| t.min(f.first)));
        self.last = Some(self.last.map_or(f.last, |t| t.max(f.last)));
        self.packets += f.packets as u64;
        self.captured_bytes += f.captured_bytes;
        self.wire_bytes += f.wire_bytes;
        self.uncompressed_bytes += f.uncompressed_len as u64;
        self.stored_bytes += f.compressed_len as u64;
        self.frames += 1;
    }

    /// Totals of a header frame of `header` bytes (`header_uncompressed` decompressed) and `frames`.
    fn of(header: u64, header_uncompressed: u64, frames: &[FrameMeta]) -> Self {
        let mut s = SegmentStats {
            stored_bytes: header,
            uncompressed_bytes: header_uncompressed,
            ..Default::default()
        };
        for f in frames {
            s.add_frame(f);
        }
        s
    }
}

/// The segment file of segment `name` in `dir`: `dir/NAME.pcapng.zst`.
pub fn segment_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pcapng.zst"))
}

/// The index file of segment `name` in `dir`: `dir/NAME.idx`.
pub fn index_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.idx"))
}
