//! zstd frames and the pcapng inside them: building the section header, compressing a frame,
//! finding and checking a frame in a file, and summarising what a frame holds.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use trawl_pcap::{CaptureReader, Interface, OwnedOptions, PcapngWriter, Timestamp, opt};
use zstd::zstd_safe;

use crate::{FrameMeta, StoreError, StreamInfo};

/// The first four bytes of every zstd frame (0xFD2FB528, little-endian).
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Prefixes of the section header comments that carry what the reader needs back.
const DEVICE_PREFIX: &str = "trawl-device: ";
const CREATED_PREFIX: &str = "trawl-created: ";

/// Frames are bounded by the writer's frame size plus one packet; anything claiming more than
/// this is not ours, and is not worth allocating for.
const MAX_FRAME_CONTENT: u64 = 1 << 30;

/// A reader over the section header followed by one frame's blocks.
pub(crate) type FrameCapture = CaptureReader<io::Chain<Cursor<Arc<[u8]>>, Cursor<Vec<u8>>>>;

pub(crate) fn section_options(info: &StreamInfo, created: Timestamp) -> OwnedOptions {
    let mut o = PcapngWriter::<Vec<u8>>::default_section_options();
    o.push_str(opt::SHB_HARDWARE, &info.device);
    o.push_str(opt::COMMENT, &format!("{DEVICE_PREFIX}{}", info.device));
    o.push_str(opt::COMMENT, &format!("{CREATED_PREFIX}{created}"));
    o
}

pub(crate) fn interface(info: &StreamInfo) -> Interface {
    let mut iface = Interface::new(info.link_type, info.snaplen, 1_000_000_000);
    iface.options.push_str(opt::IF_NAME, &info.interface);
    iface
}

/// An interface as a segment stores it: its link type, snap length, time resolution
/// (`if_tsresol`) and other options, but no `if_tsoffset`, since the packet times a writer is
/// given are absolute. Keeping the resolution keeps every time the file could state (a
/// microsecond interface counts 584 542 years, a nanosecond one only to 2554) and shows the
/// times as the original did.
pub fn stored_interface(iface: &Interface) -> Interface {
    let mut out = Interface::new(iface.link_type, iface.snaplen, iface.units_per_sec);
    for (code, value) in iface.options.view().iter() {
        if code != opt::IF_TSRESOL && code != opt::IF_TSOFFSET {
            out.options.push(code, value);
        }
    }
    out
}

/// Starts a pcapng stream in `buf` (cleared first) with the segment's section header and its
/// interfaces: the bytes every frame is logically preceded by.
pub(crate) fn start_pcapng(
    mut buf: Vec<u8>,
    section: &OwnedOptions,
    ifaces: &[Interface],
) -> io::Result<PcapngWriter<Vec<u8>>> {
    buf.clear();
    let mut w = PcapngWriter::new(buf, section)?;
    for iface in ifaces {
        w.add_interface(iface)?;
    }
    Ok(w)
}

/// What a header frame says: the stream (interface 0), when the segment was created, and every
/// interface.
pub(crate) struct Header {
    pub info: StreamInfo,
    pub created: Timestamp,
    pub interfaces: Vec<Interface>,
}

/// Reads the stream description back from the header frame's content.
pub(crate) fn parse_header(path: &Path, header: &[u8]) -> Result<Header, StoreError> {
    let bad = |detail: String| StoreError::corrupt(path, 0, detail);
    let mut capture = CaptureReader::new(Cursor::new(header))
        .map_err(|e| bad(format!("the header frame is not pcapng: {e}")))?;
    match capture.advance() {
        Ok(false) => {}
        Ok(true) => return Err(bad("the header frame holds packets".into())),
        Err(e) => return Err(bad(format!("the header frame is not pcapng: {e}"))),
    }
    let Some(iface) = capture.interfaces().first() else {
        return Err(bad("the header frame describes no interface".into()));
    };
    // A device's stream counts nanoseconds; an upload's interfaces keep their own resolution
    // (`stored_interface`): the reader takes any.
    let section = capture.sections()[0].view();
    let comment = |prefix: &str| {
        section
            .strings(opt::COMMENT)
            .find_map(|c| c.strip_prefix(prefix).map(str::to_owned))
    };
    let device = comment(DEVICE_PREFIX)
        .ok_or_else(|| bad("the section header does not name the device".into()))?;
    let created = comment(CREATED_PREFIX)
        .and_then(|t| parse_time(&t))
        .ok_or_else(|| bad("the section header has no creation time".into()))?;
    let info = StreamInfo {
        device,
        interface: iface.name().unwrap_or_default().to_owned(),
        link_type: iface.link_type,
        snaplen: iface.snaplen,
    };
    Ok(Header {
        info,
        created,
        interfaces: capture.interfaces().to_vec(),
    })
}

/// Parses `secs.nnnnnnnnn`, the form `Timestamp` displays.
fn parse_time(s: &str) -> Option<Timestamp> {
    let (secs, nanos) = s.split_once('.')?;
    if nanos.len() != 9 {
        return None;
    }
    Some(Timestamp::new(secs.parse().ok()?, nanos.parse().ok()?))
}

/// A zstd compressor that writes content checksums and sizes into every frame.
pub(crate) struct Compressor {
    inner: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Compressor {
    pub(crate) fn new(level: i32) -> io::Result<Self> {
        let mut inner = zstd::bulk::Compressor::new(level)?;
        inner.set_parameter(zstd_safe::CParameter::ChecksumFlag(true))?;
        inner.set_parameter(zstd_safe::CParameter::ContentSizeFlag(true))?;
        Ok(Compressor {
            inner,
            out: Vec::new(),
        })
    }

    /// One complete zstd frame holding `content`.
    pub(crate) fn compress(&mut self, content: &[u8]) -> io::Result<&[u8]> {
        self.out.clear();
        self.out.reserve(zstd_safe::compress_bound(content.len()));
        self.inner.compress_to_buffer(content, &mut self.out)?;
        Ok(&self.out)
    }
}

/// The content checksum a zstd frame ends with (its frames always carry one here).
pub(crate) fn trailing_checksum(frame: &[u8]) -> u32 {
    let tail: [u8; 4] = frame[frame.len() - 4..].try_into().expect("4 bytes");
    u32::from_le_bytes(tail)
}

/// The complete zstd frame starting at `offset`, or `None` if the bytes up to `file_len` do not
/// hold one (a frame cut short by a crash, or not a zstd frame at all).
pub(crate) fn read_frame_at(
    file: &File,
    path: &Path,
    offset: u64,
    file_len: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let remaining = file_len.saturating_sub(offset);
    // Enough for most frames at once; a larger one is read again, whole.
    let mut want = remaining.min(64 << 10);
    loop {
        if want < 4 + 4 {
            return Ok(None);
        }
        let mut buf = vec![0u8; want as usize];
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| StoreError::io(path, "reading a frame", e))?;
        if buf[..4] != ZSTD_MAGIC {
            return Ok(None);
        }
        match zstd_safe::find_frame_compressed_size(&buf) {
            Ok(n) if n <= buf.len() => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            _ if want == remaining => return Ok(None),
            // The frame header states the content size; the compressed size is rarely more.
            _ => {
                let hint = zstd_safe::get_frame_content_size(&buf)
                    .ok()
                    .flatten()
                    .map_or(0, |n| n.saturating_add(n / 64 + 1024));
                want = hint.max(want * 2).min(remaining);
            }
        }
    }
}

/// Decompresses one frame, checking its content checksum and its declared size.
pub(crate) fn decompress(compressed: &[u8]) -> io::Result<Vec<u8>> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let size = match zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(n)) if n <= MAX_FRAME_CONTENT => n as usize,
        Ok(Some(n)) => return Err(invalid(format!("the frame claims {n} bytes of content"))),
        _ => return Err(invalid("the frame does not state its content size".into())),
    };
    let mut out = Vec::with_capacity(size);
    let mut dctx = zstd::bulk::Decompressor::new()?;
    let n = dctx.decompress_to_buffer(compressed, &mut out)?;
    if n != size {
        return Err(invalid(format!(
            "the frame decompressed to {n} bytes, {size} declared"
        )));
    }
    Ok(out)
}

/// A pcapng reader over the section header followed by a frame's content.
pub(crate) fn capture(
    path: &Path,
    offset: u64,
    header: &Arc<[u8]>,
    content: Vec<u8>,
) -> Result<FrameCapture, StoreError> {
    let stream = Cursor::new(header.clone()).chain(Cursor::new(content));
    CaptureReader::new(stream).map_err(|e| frame_corrupt(path, offset, &e))
}

pub(crate) fn frame_corrupt(path: &Path, offset: u64, e: &trawl_pcap::Error) -> StoreError {
    StoreError::corrupt(
        path,
        offset,
        format!("the frame's pcapng is invalid (decompressed, with its header): {e}"),
    )
}

/// Decodes a frame found by scanning and describes it, checking that it holds only whole
/// packet blocks with times (of the interfaces of the header: the pcapng reader refuses others).
pub(crate) fn summarize(
    path: &Path,
    offset: u64,
    header: &Arc<[u8]>,
    compressed: &[u8],
) -> Result<FrameMeta, StoreError> {
    let content =
        decompress(compressed).map_err(|e| StoreError::corrupt(path, offset, e.to_string()))?;
    let uncompressed_len = content.len() as u32;
    let mut capture = capture(path, offset, header, content)?;
    let mut meta = FrameMeta {
        offset,
        compressed_len: compressed.len() as u32,
        uncompressed_len,
        first: Timestamp::new(u64::MAX, 0),
        last: Timestamp::default(),
        packets: 0,
        captured_bytes: 0,
        wire_bytes: 0,
        checksum: trailing_checksum(compressed),
    };
    while capture
        .advance()
        .map_err(|e| frame_corrupt(path, offset, &e))?
    {
        let p = capture.current().expect("advanced");
        if !p.has_time {
            return Err(StoreError::corrupt(
                path,
                offset,
                "the frame holds a record that is not an enhanced packet block",
            ));
        }
        meta.first = meta.first.min(p.ts);
        meta.last = meta.last.max(p.ts);
        meta.packets += 1;
        meta.captured_bytes += p.data.len() as u64;
        meta.wire_bytes += p.orig_len as u64;
    }
    if meta.packets == 0 {
        return Err(StoreError::corrupt(
            path,
            offset,
            "the frame holds no packet",
        ));
    }
    Ok(meta)
}
