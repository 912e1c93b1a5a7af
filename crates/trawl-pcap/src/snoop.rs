//! Solaris snoop (RFC 1761), read-only: a 16-byte header, then big-endian records of
//! 24-byte headers and padded packet data. Read because operators still meet such files; written
//! never.

use std::io::Read;

use crate::reader::{CaptureReader, Interface, RecordLoc};
use crate::{Error, ErrorKind, MAX_PACKET, Timestamp};

pub(crate) const MAGIC: &[u8] = b"snoop\0\0\0";

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl<R: Read> CaptureReader<R> {
    pub(crate) fn read_snoop_header(&mut self) -> Result<(), Error> {
        self.need(16, "the snoop file header")?;
        let h = self.input.slice(0, 16);
        let (version, datalink) = (be32(h, 8), be32(h, 12));
        if !(2..=5).contains(&version) {
            return Err(Error::new(
                8,
                ErrorKind::Unsupported(format!("unsupported snoop version {version}")),
            ));
        }
        // Snoop's data-link codes: 0 is IEEE 802.3 and 4 Ethernet, both Ethernet framing.
        let link_type = match datalink {
            0 | 4 => 1,
            other => {
                return Err(Error::new(
                    12,
                    ErrorKind::Unsupported(format!(
                        "snoop data-link type {other} is not supported"
                    )),
                ));
            }
        };
        self.input.consume(16);
        self.interfaces
            .push(Interface::new(link_type, 0, 1_000_000));
        Ok(())
    }

    pub(crate) fn next_snoop(&mut self) -> Result<Option<RecordLoc>, Error> {
        if self.at_end()? {
            return Ok(None);
        }
        let offset = self.input.offset();
        self.need(24, "a snoop record header")?;
        let h = self.input.slice(0, 24);
        let (orig_len, caplen, rec_len) = (be32(h, 0), be32(h, 4), be32(h, 8));
        let (secs, usecs) = (be32(h, 16), be32(h, 20));
        if caplen > MAX_PACKET || rec_len as u64 > MAX_PACKET as u64 + 1024 || rec_len < 24 + caplen
        {
            return Err(Error::corrupt(
                offset,
                "snoop record",
                format!("record length {rec_len} cannot hold a 24-byte header and {caplen} bytes"),
            ));
        }
        self.need(rec_len as usize, "a snoop record")?;
        self.input.consume(rec_len as usize);
        Ok(Some(RecordLoc {
            interface: 0,
            ts: Timestamp::from_units(secs as u64 * 1_000_000 + usecs as u64, 1_000_000),
            orig_len,
            caplen: caplen as usize,
            data_back: rec_len as usize - 24,
            opts_back: 0,
            opts_len: 0,
            offset,
            has_time: true,
        }))
    }
}
