//! Capture files: reading and writing pcap and pcapng.
//!
//! Bytes in, packets out. [`CaptureReader`] reads a pcap (microsecond or nanosecond, either byte
//! order, the "modified" variant) or pcapng file (any number of sections and interfaces; EPB, SPB and
//! the obsolete packet block), or a Solaris snoop file, each gzip- or zstd-compressed or not, streaming: memory is bounded by the largest
//! record, not by the file, and no allocation is sized by a length field before its bytes arrive.
//! Each [`Packet`] borrows the reader's buffer until the next call. [`PcapWriter`] and
//! [`PcapngWriter`] write the two formats; pcapng options (comments, interface names, timestamp
//! resolutions) travel through a read–write round trip as [`Options`].
//!
//! Bad input never panics: every failure is an [`Error`] carrying the byte offset in the (decompressed)
//! file and what was wrong there. When the last record is cut short, the packets before it have already
//! been returned and the error says so ([`Error::is_truncation`]).
//!
//! This crate does no I/O of its own beyond `std::io::Read`/`Write` on what it is given (and
//! [`CaptureReader::open`] for the common case of a path), and knows nothing of protocols.

mod input;
mod options;
mod pcap;
mod pcapng;
mod reader;
mod snoop;
mod writer;

pub use options::{Options, OwnedOptions, opt};
pub use reader::{CaptureReader, Format, Interface};
pub use writer::{PcapWriter, PcapngWriter, TsPrecision};

use std::fmt;

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
///
/// Ordered by time. Seconds are unsigned and 64-bit because capture files store them so; a pcapng
/// file can state times far beyond what an `i64` of nanoseconds holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: u64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: u64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    /// Builds a timestamp from a count of `units` per second, carrying overflowed fractions.
    #[inline]
    pub fn from_units(value: u64, units_per_sec: u64) -> Self {
        debug_assert!(units_per_sec > 0);
        let secs = value / units_per_sec;
        let rem = value % units_per_sec;
        // 64-bit arithmetic whenever it cannot overflow (any resolution up to 10^-10 s): a
        // 128-bit division costs more than the rest of reading a record.
        let nanos = if units_per_sec <= 10_000_000_000 {
            rem * 1_000_000_000 / units_per_sec
        } else {
            (rem as u128 * 1_000_000_000 / units_per_sec as u128) as u64
        };
        Timestamp {
            secs,
            nanos: nanos as u32,
        }
    }

    /// The time in `units` per second, or `None` if it does not fit in 64 bits. The fraction is
    /// rounded up, so that for any resolution up to nanoseconds a time read with
    /// [`from_units`](Self::from_units) (which rounds down) comes back to the same count.
    #[inline]
    pub fn to_units(self, units_per_sec: u64) -> Option<u64> {
        let frac = if units_per_sec <= 10_000_000_000 {
            (self.nanos as u64 * units_per_sec).div_ceil(1_000_000_000)
        } else {
            u64::try_from((self.nanos as u128 * units_per_sec as u128).div_ceil(1_000_000_000))
                .ok()?
        };
        self.secs.checked_mul(units_per_sec)?.checked_add(frac)
    }

    /// Nanoseconds since the epoch, saturating at `u64::MAX` (year 2554).
    pub fn as_nanos(self) -> u64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(self.nanos as u64)
    }

    pub fn from_nanos(ns: u64) -> Self {
        Timestamp {
            secs: ns / 1_000_000_000,
            nanos: (ns % 1_000_000_000) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn units_round_trip_for_any_resolution_up_to_nanoseconds() {
        for units in [
            1,
            10,
            1_000,
            1_024,
            1 << 20,
            1 << 29,
            1_000_000,
            1_000_000_000,
        ] {
            for raw in [0u64, 1, 2, 3, 999, 123_456_789, u32::MAX as u64 * 3 + 7] {
                let t = Timestamp::from_units(raw, units);
                assert_eq!(t.to_units(units), Some(raw), "{raw} at {units}/s");
            }
        }
    }
}

impl fmt::Display for Timestamp {
    /// `secs.nnnnnnnnn`, the form tshark's `frame.time_epoch` uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// One packet record, borrowed from the reader until its next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Index into [`CaptureReader::interfaces`]: numbered across all sections of the file.
    pub interface: u32,
    pub link_type: u32,
    pub ts: Timestamp,
    /// Length on the wire; `data.len()` is the captured length.
    pub orig_len: u32,
    pub data: &'a [u8],
    /// The record's options (pcapng EPB/OPB); empty for pcap and SPB.
    pub options: Options<'a>,
    /// Byte offset of the record in the (decompressed) file.
    pub offset: u64,
    /// False for a pcapng simple packet block, which records no time (`ts` is then zero).
    pub has_time: bool,
}

impl<'a> Packet<'a> {
    /// The record's comments (pcapng `opt_comment`).
    pub fn comments(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.options.strings(opt::COMMENT)
    }
}

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct Error {
    /// Offset in the (decompressed) input of the record or field at fault.
    pub offset: u64,
    pub kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (it begins with bytes {0:02x?})")]
    UnknownFormat(Vec<u8>),
    #[error("{0}")]
    Unsupported(String),
    #[error("the file ends in the middle of {what}: {needed} bytes needed, {got} present")]
    Truncated {
        what: &'static str,
        needed: u64,
        got: u64,
    },
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl Error {
    pub(crate) fn new(offset: u64, kind: ErrorKind) -> Self {
        Error { offset, kind }
    }

    pub(crate) fn corrupt(offset: u64, what: &'static str, detail: impl Into<String>) -> Self {
        Error::new(
            offset,
            ErrorKind::Corrupt {
                what,
                detail: detail.into(),
            },
        )
    }

    /// True when the input simply ended inside a record: everything before it was good.
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }
}

/// The largest packet a record may carry. libpcap and Wireshark refuse larger records for nearly
/// every link type (262 144 bytes); we allow more, since a record here costs only what it holds,
/// but keep a ceiling so that a corrupt length cannot make us buffer without end.
pub const MAX_PACKET: u32 = 16 << 20;
