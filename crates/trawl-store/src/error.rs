use std::io;
use std::path::{Path, PathBuf};

/// What went wrong with a segment, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system is full (ENOSPC) or over quota. The writer has gone back to its last
    /// sync point: the segment holds exactly what was synced, and can be appended to again once
    /// space is freed.
    #[error(
        "{path}: the disk is full while {during}; the segment keeps every packet synced before, \
         the packets appended since were not stored (free space, then send them again)"
    )]
    DiskFull {
        path: PathBuf,
        during: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {during}: {source}")]
    Io {
        path: PathBuf,
        during: &'static str,
        #[source]
        source: io::Error,
    },
    /// The bytes on disk are not a segment, or a frame fails its checksum. Nothing from the
    /// faulty part is returned.
    #[error("{path}: corrupt segment at byte {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// The caller asked for something the format cannot hold (a packet too long, a time the
    /// nanosecond clock cannot write).
    #[error("{path}: {detail}")]
    InvalidInput { path: PathBuf, detail: String },
    /// A previous failure left the writer unable to restore its last sync point.
    #[error(
        "{path}: the writer failed earlier and could not roll back; reopen the segment with \
         SegmentWriter::reopen_for_append to repair it"
    )]
    Broken { path: PathBuf },
}

/// The class of a [`StoreError`], for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    DiskFull,
    Io,
    Corrupt,
    InvalidInput,
    Broken,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::DiskFull { .. } => ErrorKind::DiskFull,
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::InvalidInput { .. } => ErrorKind::InvalidInput,
            StoreError::Broken { .. } => ErrorKind::Broken,
        }
    }

    /// Wraps an I/O error, telling a full disk apart from other failures.
    pub(crate) fn io(path: &Path, during: &'static str, source: io::Error) -> Self {
        let path = path.to_path_buf();
        if is_disk_full(&source) {
            StoreError::DiskFull {
                path,
                during,
                source,
            }
        } else {
            StoreError::Io {
                path,
                during,
                source,
            }
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            offset,
            detail: detail.into(),
        }
    }
}

const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;

fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}
