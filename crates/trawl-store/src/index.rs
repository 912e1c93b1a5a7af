//! The sidecar index file `NAME.idx`: a checksummed header, then one fixed-size, checksummed
//! record per data frame, appended as frames are written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use trawl_pcap::Timestamp;
use xxhash_rust::xxh3::xxh3_64;

use crate::FrameMeta;

pub(crate) const MAGIC: &[u8; 8] = b"TRWLIDX1";
pub(crate) const HEADER_LEN: u64 = 32;
pub(crate) const RECORD_LEN: u64 = 64;

/// What a readable index file says; records are those up to the first one that fails its
/// checksum or is cut short.
pub(crate) struct IndexFile {
    pub header_frame_len: u64,
    pub records: Vec<FrameMeta>,
    /// Bytes after the last good record (a record cut short or damaged, and what follows it).
    pub trailing_bytes: u64,
}

/// The offset of record `n` in the index file.
pub(crate) fn record_offset(n: usize) -> u64 {
    HEADER_LEN + n as u64 * RECORD_LEN
}

pub(crate) fn encode_header(header_frame_len: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&1u32.to_le_bytes()); // version
    h[12..16].copy_from_slice(&(RECORD_LEN as u32).to_le_bytes());
    h[16..24].copy_from_slice(&header_frame_len.to_le_bytes());
    let sum = xxh3_64(&h[..24]);
    h[24..32].copy_from_slice(&sum.to_le_bytes());
    h
}

pub(crate) fn encode_record(f: &FrameMeta) -> [u8; RECORD_LEN as usize] {
    let mut r = [0u8; RECORD_LEN as usize];
    r[0..8].copy_from_slice(&f.offset.to_le_bytes());
    r[8..12].copy_from_slice(&f.compressed_len.to_le_bytes());
    r[12..16].copy_from_slice(&f.uncompressed_len.to_le_bytes());
    r[16..24].copy_from_slice(&f.first.as_nanos().to_le_bytes());
    r[24..32].copy_from_slice(&f.last.as_nanos().to_le_bytes());
    r[32..36].copy_from_slice(&f.packets.to_le_bytes());
    r[36..40].copy_from_slice(&f.checksum.to_le_bytes());
    r[40..48].copy_from_slice(&f.captured_bytes.to_le_bytes());
    r[48..56].copy_from_slice(&f.wire_bytes.to_le_bytes());
    let sum = xxh3_64(&r[..56]);
    r[56..64].copy_from_slice(&sum.to_le_bytes());
    r
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes an index file; `None` if its header is missing or damaged.
pub(crate) fn decode(bytes: &[u8]) -> Option<IndexFile> {
    let h = bytes.get(..HEADER_LEN as usize)?;
    if &h[0..8] != MAGIC
        || u32_at(h, 8) != 1
        || u32_at(h, 12) as u64 != RECORD_LEN
        || u64_at(h, 24) != xxh3_64(&h[..24])
    {
        return None;
    }
    let mut records = Vec::new();
    let mut rest = &bytes[HEADER_LEN as usize..];
    while let Some(r) = rest.get(..RECORD_LEN as usize) {
        if u64_at(r, 56) != xxh3_64(&r[..56]) {
            break;
        }
        records.push(FrameMeta {
            offset: u64_at(r, 0),
            compressed_len: u32_at(r, 8),
            uncompressed_len: u32_at(r, 12),
            first: Timestamp::from_nanos(u64_at(r, 16)),
            last: Timestamp::from_nanos(u64_at(r, 24)),
            packets: u32_at(r, 32),
            checksum: u32_at(r, 36),
            captured_bytes: u64_at(r, 40),
            wire_bytes: u64_at(r, 48),
        });
        rest = &rest[RECORD_LEN as usize..];
    }
    Some(IndexFile {
        header_frame_len: u64_at(h, 16),
        records,
        trailing_bytes: rest.len() as u64,
    })
}

/// Writes a whole index next to `path` and renames it into place, so that a crash leaves either
/// the old index or the new one.
pub(crate) fn write_atomically(
    path: &Path,
    header_frame_len: u64,
    records: &[FrameMeta],
) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(record_offset(records.len()) as usize);
    bytes.extend_from_slice(&encode_header(header_frame_len));
    for r in records {
        bytes.extend_from_slice(&encode_record(r));
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a file's creation or renaming durable.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}
