//! pcapng: a sequence of blocks `type, total length, body, total length`, grouped in sections
//! that each begin with a section header block carrying the section's byte order.

use std::io::Read;

use crate::options::{BlockKind, Options, OwnedOptions, opt};
use crate::reader::{CaptureReader, Interface, RecordLoc};
use crate::{Error, ErrorKind, MAX_PACKET, Timestamp};

pub(crate) const SHB_TYPE: &[u8] = &[0x0a, 0x0d, 0x0d, 0x0a];
pub(crate) const BT_SHB: u32 = 0x0a0d_0d0a;
pub(crate) const BT_IDB: u32 = 1;
pub(crate) const BT_OPB: u32 = 2;
pub(crate) const BT_SPB: u32 = 3;
pub(crate) const BT_EPB: u32 = 6;
pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// No block may be larger than the largest packet plus room for its header and options.
const MAX_BLOCK: u32 = MAX_PACKET + (1 << 20);

#[derive(Default)]
pub(crate) struct State {
    pub big_endian: bool,
    /// Global index of the current section's first interface.
    pub section_base: u32,
}

fn rd32(b: &[u8], at: usize, be: bool) -> u32 {
    let a: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd16(b: &[u8], at: usize, be: bool) -> u16 {
    let a = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Units per second for an `if_tsresol` value, or `None` if it cannot be represented.
pub(crate) fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exp = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 != 0 {
        1u64.checked_shl(exp).filter(|_| exp < 64)
    } else {
        10u64.checked_pow(exp)
    }
}

/// The `if_tsresol` value for a count of units per second: `n` for 10^n, `0x80 | n` for 2^n, and
/// for anything else the power of ten at least as fine.
pub(crate) fn tsresol_for(units_per_sec: u64) -> u8 {
    if units_per_sec.is_power_of_two() && units_per_sec > 1 {
        return 0x80 | units_per_sec.trailing_zeros() as u8;
    }
    let mut n = 0u8;
    while 10u64
        .checked_pow(n as u32)
        .is_some_and(|p| p < units_per_sec)
    {
        n += 1;
    }
    n
}

impl<R: Read> CaptureReader<R> {
    /// Reads the section header block that must open the file.
    pub(crate) fn read_first_section(&mut self) -> Result<(), Error> {
        self.read_section_header()
    }

    /// Reads a section header block at the read position, setting the byte order.
    fn read_section_header(&mut self) -> Result<(), Error> {
        let offset = self.input.offset();
        self.need(12, "a section header block")?;
        let head = self.input.slice(0, 12);
        let magic = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let be = match magic {
            BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
            m => {
                return Err(Error::corrupt(
                    offset + 8,
                    "section header block",
                    format!("byte-order magic is {m:#010x}, not 0x1a2b3c4d"),
                ));
            }
        };
        let total = rd32(head, 4, be);
        let total = self.check_block_length(offset, BT_SHB, total, 28)?;
        self.need(total, "a section header block")?;
        let block = self.input.slice(0, total);
        let (major, minor) = (rd16(block, 12, be), rd16(block, 14, be));
        if major != 1 || minor != 0 {
            return Err(Error::new(
                offset + 12,
                ErrorKind::Unsupported(format!("unsupported pcapng version {major}.{minor}")),
            ));
        }
        self.check_trailer(offset, block, be)?;
        let options =
            OwnedOptions::from_options(Options::new(&block[24..total - 4], be), BlockKind::Section);
        self.input.consume(total);
        self.ng.big_endian = be;
        self.ng.section_base = self.interfaces.len() as u32;
        self.sections.push(options);
        Ok(())
    }

    fn check_block_length(
        &self,
        offset: u64,
        block_type: u32,
        total: u32,
        min: u32,
    ) -> Result<usize, Error> {
        if total < min || !total.is_multiple_of(4) || total > MAX_BLOCK {
            let why = if total < min {
                format!("is shorter than the minimum of {min}")
            } else if !total.is_multiple_of(4) {
                "is not a multiple of 4".to_string()
            } else {
                format!("is larger than the limit of {MAX_BLOCK} bytes")
            };
            return Err(Error::corrupt(
                offset + 4,
                "block",
                format!("block of type {block_type:#x} has total length {total}, which {why}"),
            ));
        }
        Ok(total as usize)
    }

    fn check_trailer(&self, offset: u64, block: &[u8], be: bool) -> Result<(), Error> {
        let total = block.len();
        let trailer = rd32(block, total - 4, be);
        if trailer as usize != total {
            return Err(Error::corrupt(
                offset + total as u64 - 4,
                "block",
                format!("trailing length {trailer} differs from the leading length {total}"),
            ));
        }
        Ok(())
    }

    /// Reads blocks until the next packet, taking note of sections and interfaces on the way.
    pub(crate) fn next_pcapng(&mut self) -> Result<Option<RecordLoc>, Error> {
        loop {
            if self.at_end()? {
                return Ok(None);
            }
            let offset = self.input.offset();
            self.need(8, "a block header")?;
            let head = self.input.slice(0, 8);
            if head[..4] == *SHB_TYPE {
                self.read_section_header()?;
                continue;
            }
            let be = self.ng.big_endian;
            let block_type = rd32(head, 0, be);
            let total = rd32(head, 4, be);
            let total = self.check_block_length(offset, block_type, total, 12)?;
            self.need(total, "a block")?;
            let block = self.input.slice(0, total);
            self.check_trailer(offset, block, be)?;
            let body = &block[8..total - 4];
            let found = match block_type {
                BT_IDB => {
                    let iface = self.parse_interface(offset, body)?;
                    self.interfaces.push(iface);
                    None
                }
                BT_EPB => Some(self.parse_epb(offset, body, total, false)?),
                BT_SPB => Some(self.parse_spb(offset, body, total)?),
                BT_OPB => Some(self.parse_epb(offset, body, total, true)?),
                // Name resolution, statistics, decryption secrets, custom blocks…: not packets.
                _ => None,
            };
            self.input.consume(total);
            if let Some(loc) = found {
                return Ok(Some(loc));
            }
        }
    }

    fn parse_interface(&self, offset: u64, body: &[u8]) -> Result<Interface, Error> {
        let be = self.ng.big_endian;
        if body.len() < 8 {
            return Err(Error::corrupt(
                offset,
                "interface description block",
                "the body is shorter than 8 bytes",
            ));
        }
        let link_type = rd16(body, 0, be) as u32;
        let snaplen = rd32(body, 4, be);
        let options = Options::new(&body[8..], be);
        let tsresol = options.u8(opt::IF_TSRESOL).unwrap_or(6);
        let Some(units) = units_per_sec(tsresol) else {
            return Err(Error::corrupt(
                offset,
                "interface description block",
                format!("if_tsresol {tsresol:#04x} is finer than 64 bits can count"),
            ));
        };
        let ts_offset = options.u64(opt::IF_TSOFFSET).unwrap_or(0) as i64;
        Ok(Interface {
            link_type,
            snaplen,
            section: self.sections.len() as u32 - 1,
            units_per_sec: units,
            ts_offset,
            options: OwnedOptions::from_options(options, BlockKind::Interface),
        })
    }

    /// Maps a section-local interface id to the global index, or fails naming the block.
    fn interface(&self, offset: u64, what: &'static str, local: u32) -> Result<u32, Error> {
        let known = self.interfaces.len() as u32 - self.ng.section_base;
        if local >= known {
            return Err(Error::corrupt(
                offset + 8,
                what,
                format!("interface id {local} refers to none of the section's {known} interfaces"),
            ));
        }
        Ok(self.ng.section_base + local)
    }

    fn timestamp(&self, interface: u32, high: u32, low: u32) -> Timestamp {
        let iface = &self.interfaces[interface as usize];
        let raw = ((high as u64) << 32) | low as u64;
        let mut ts = Timestamp::from_units(raw, iface.units_per_sec);
        ts.secs = ts.secs.saturating_add_signed(iface.ts_offset);
        ts
    }

    /// An enhanced packet block, or the obsolete packet block (type 2), which differs only in
    /// a 16-bit interface id followed by a 16-bit drop count.
    fn parse_epb(
        &self,
        offset: u64,
        body: &[u8],
        total: usize,
        obsolete: bool,
    ) -> Result<RecordLoc, Error> {
        let what = if obsolete {
            "packet block"
        } else {
            "enhanced packet block"
        };
        let be = self.ng.big_endian;
        if body.len() < 20 {
            return Err(Error::corrupt(
                offset,
                what,
                "the body is shorter than 20 bytes",
            ));
        }
        let local = if obsolete {
            rd16(body, 0, be) as u32
        } else {
            rd32(body, 0, be)
        };
        let interface = self.interface(offset, what, local)?;
        let ts = self.timestamp(interface, rd32(body, 4, be), rd32(body, 8, be));
        let caplen = rd32(body, 12, be) as usize;
        let orig_len = rd32(body, 16, be);
        self.packet_loc(
            offset, what, body, total, 20, caplen, interface, ts, orig_len,
        )
    }

    fn parse_spb(&self, offset: u64, body: &[u8], total: usize) -> Result<RecordLoc, Error> {
        const WHAT: &str = "simple packet block";
        let be = self.ng.big_endian;
        if body.len() < 4 {
            return Err(Error::corrupt(
                offset,
                WHAT,
                "the body is shorter than 4 bytes",
            ));
        }
        let interface = self.interface(offset, WHAT, 0)?;
        let orig_len = rd32(body, 0, be);
        let snaplen = self.interfaces[interface as usize].snaplen;
        let mut caplen = (orig_len as usize).min(body.len() - 4);
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        Ok(RecordLoc {
            interface,
            // A simple packet block has no time.
            ts: Timestamp::default(),
            orig_len,
            caplen,
            data_back: total - 12,
            opts_back: 0,
            opts_len: 0,
            offset,
            has_time: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn packet_loc(
        &self,
        offset: u64,
        what: &'static str,
        body: &[u8],
        total: usize,
        data_at: usize,
        caplen: usize,
        interface: u32,
        ts: Timestamp,
        orig_len: u32,
    ) -> Result<RecordLoc, Error> {
        let padded = caplen + crate::options::pad4(caplen);
        if data_at + caplen > body.len() {
            return Err(Error::corrupt(
                offset + 8 + 12,
                what,
                format!("captured length {caplen} runs past the end of a block of {total} bytes"),
            ));
        }
        let opts_at = (data_at + padded).min(body.len());
        // Positions counted back from the end of the block, which is where the reader will be.
        let block_end = 8 + body.len() + 4;
        Ok(RecordLoc {
            interface,
            ts,
            orig_len,
            caplen,
            data_back: block_end - (8 + data_at),
            opts_back: block_end - (8 + opts_at),
            opts_len: body.len() - opts_at,
            offset,
            has_time: true,
        })
    }
}
