//! Classic pcap: a 24-byte file header, then records of a 16-byte header (24 in the "modified"
//! variant) and the packet bytes.

use std::io::Read;

use crate::reader::{CaptureReader, Format, Interface, RecordLoc};
use crate::{Error, ErrorKind, MAX_PACKET, Timestamp};

pub(crate) const MAGIC_US: u32 = 0xa1b2_c3d4;
pub(crate) const MAGIC_NS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
pub(crate) const FILE_HEADER_LEN: usize = 24;

/// The link type is the low 16 bits of the header's field; the upper bits hold FCS information
/// and reserved bits that readers ignore.
const LINKTYPE_MASK: u32 = 0x0000_ffff;

/// The largest captured length a pcap record may have: 262 144 bytes, as libpcap and Wireshark
/// allow, except for link types whose records are larger by nature.
fn max_caplen(link_type: u32) -> u32 {
    match link_type {
        231 => MAX_PACKET, // D-Bus messages
        249 => 1 << 20,    // USBPcap
        279 => 8 << 20,    // EBHSCR
        _ => 262_144,
    }
}

pub(crate) fn detect(magic: &[u8]) -> Option<Format> {
    let m: [u8; 4] = magic.try_into().ok()?;
    for big_endian in [false, true] {
        let v = if big_endian {
            u32::from_be_bytes(m)
        } else {
            u32::from_le_bytes(m)
        };
        let (nanos, modified) = match v {
            MAGIC_US => (false, false),
            MAGIC_NS => (true, false),
            MAGIC_MODIFIED => (false, true),
            _ => continue,
        };
        return Some(Format::Pcap {
            nanos,
            big_endian,
            modified,
        });
    }
    None
}

struct Fields<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl Fields<'_> {
    fn u32(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.bytes[at..at + 4].try_into().expect("4 bytes");
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
    fn u16(&self, at: usize) -> u16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
}

impl<R: Read> CaptureReader<R> {
    pub(crate) fn read_pcap_header(&mut self) -> Result<(), Error> {
        let Format::Pcap {
            nanos, big_endian, ..
        } = self.format
        else {
            unreachable!("called for pcap only")
        };
        self.need(FILE_HEADER_LEN, "the pcap file header")?;
        let f = Fields {
            bytes: self.input.slice(0, FILE_HEADER_LEN),
            big_endian,
        };
        let (major, minor) = (f.u16(4), f.u16(6));
        if major != 2 {
            return Err(Error::new(
                4,
                ErrorKind::Unsupported(format!("unsupported pcap version {major}.{minor}")),
            ));
        }
        let snaplen = f.u32(16);
        let link_type = f.u32(20) & LINKTYPE_MASK;
        self.input.consume(FILE_HEADER_LEN);
        let units = if nanos { 1_000_000_000 } else { 1_000_000 };
        self.interfaces
            .push(Interface::new(link_type, snaplen, units));
        Ok(())
    }

    pub(crate) fn next_pcap(&mut self) -> Result<Option<RecordLoc>, Error> {
        let Format::Pcap {
            nanos,
            big_endian,
            modified,
        } = self.format
        else {
            unreachable!("called for pcap only")
        };
        let offset = self.input.offset();
        let hdr_len = if modified { 24 } else { 16 };
        // One look at the buffer for both the end of the input and a whole record header.
        let have = self
            .input
            .fill(hdr_len)
            .map_err(|e| Error::new(offset, e.into()))?;
        if have == 0 {
            return Ok(None);
        }
        if have < hdr_len {
            return Err(Error::new(
                offset,
                ErrorKind::Truncated {
                    what: "a packet record header",
                    needed: hdr_len as u64,
                    got: have as u64,
                },
            ));
        }
        let f = Fields {
            bytes: self.input.slice(0, hdr_len),
            big_endian,
        };
        let (secs, frac, caplen, orig_len) = (f.u32(0), f.u32(4), f.u32(8), f.u32(12));
        let max = max_caplen(self.interfaces[0].link_type);
        if caplen > max {
            return Err(Error::corrupt(
                offset + 8,
                "packet record",
                format!("captured length {caplen} is larger than the maximum of {max} bytes"),
            ));
        }
        let total = hdr_len + caplen as usize;
        self.need(total, "a packet record")?;
        self.input.consume(total);
        // Like libpcap, keep no more of a record than the file's snapshot length (a snaplen of
        // 0 or beyond the maximum means the maximum), unless asked to keep records whole.
        let snaplen = match self.interfaces[0].snaplen {
            0 => max,
            s => s.min(max),
        };
        let kept = if self.whole_records {
            caplen
        } else {
            caplen.min(snaplen)
        };
        let units: u64 = if nanos { 1_000_000_000 } else { 1_000_000 };
        let ts = if u64::from(frac) < units {
            // The usual case, without the 128-bit arithmetic below (a division per record).
            Timestamp::new(u64::from(secs), if nanos { frac } else { frac * 1000 })
        } else {
            // The fraction should be below one second; in damaged files it is not, and libpcap
            // (hence tcpdump) reads it as a signed 32-bit count added to the seconds. So do we,
            // wrapping within the 32-bit seconds of the format.
            let span = (1i128 << 32) * units as i128;
            let total = (secs as i128 * units as i128 + frac as i32 as i128).rem_euclid(span);
            Timestamp::from_units(total as u64, units)
        };
        Ok(Some(RecordLoc {
            interface: 0,
            ts,
            orig_len,
            caplen: kept as usize,
            data_back: caplen as usize,
            opts_back: 0,
            opts_len: 0,
            offset,
            has_time: true,
        }))
    }
}
