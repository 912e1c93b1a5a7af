//! Writers for pcap and pcapng. Both write little-endian and buffer nothing themselves: give them a
//! `BufWriter` (or any `Write`), and call `finish` (or flush the writer) at the end.

use std::io::{self, Write};

use crate::options::{BlockKind, Options, OwnedOptions, opt, pad4};
use crate::pcapng::{BT_EPB, BT_IDB, BT_SHB, BT_SPB, BYTE_ORDER_MAGIC};
use crate::reader::Interface;
use crate::{Packet, Timestamp};

/// Timestamp precision of a pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsPrecision {
    Micro,
    Nano,
}

/// Writes a classic pcap file: one link type, one snaplen.
pub struct PcapWriter<W: Write> {
    out: W,
    precision: TsPrecision,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(
        mut out: W,
        link_type: u32,
        snaplen: u32,
        precision: TsPrecision,
    ) -> io::Result<Self> {
        let magic = match precision {
            TsPrecision::Micro => crate::pcap::MAGIC_US,
            TsPrecision::Nano => crate::pcap::MAGIC_NS,
        };
        let mut h = [0u8; crate::pcap::FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, precision })
    }

    /// Writes one record. pcap counts seconds in 32 bits: later times are refused.
    pub fn write(&mut self, ts: Timestamp, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(ts.secs).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {ts} is past what pcap can store (year 2106); write pcapng"),
            )
        })?;
        let frac = match self.precision {
            TsPrecision::Micro => ts.nanos / 1000,
            TsPrecision::Nano => ts.nanos,
        };
        let caplen = u32::try_from(data.len()).map_err(|_| too_long(data.len()))?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn write_packet(&mut self, p: &Packet<'_>) -> io::Result<()> {
        self.write(p.ts, p.orig_len, p.data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn too_long(n: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a packet of {n} bytes is too long for a capture file"),
    )
}

/// Writes a pcapng file: sections, interfaces, and enhanced packet blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Units per second of each interface of the current section.
    units: Vec<u64>,
    scratch: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts the file with a section header carrying `options` (comments, `shb_userappl`…).
    pub fn new(out: W, section_options: &OwnedOptions) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            units: Vec::new(),
            scratch: Vec::with_capacity(1 << 16),
        };
        w.section(section_options)?;
        Ok(w)
    }

    /// Options naming trawl as the writing application.
    pub fn default_section_options() -> OwnedOptions {
        let mut o = OwnedOptions::new();
        o.push_str(
            opt::SHB_USERAPPL,
            concat!("trawl ", env!("CARGO_PKG_VERSION")),
        );
        o
    }

    /// Begins a new section; interface ids start again at 0.
    pub fn section(&mut self, options: &OwnedOptions) -> io::Result<()> {
        let mut body = Vec::with_capacity(16 + options.as_le_bytes().len() + 4);
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length not known
        end_options(&mut body, options.as_le_bytes());
        self.units.clear();
        self.block(BT_SHB, &body)
    }

    /// Describes an interface; returns its id in the current section. Its `if_tsresol` (absent:
    /// microseconds) decides how timestamps of its packets are written; `if_tsoffset` is not
    /// written, since packet times given to this writer are absolute.
    pub fn add_interface(&mut self, iface: &Interface) -> io::Result<u32> {
        let options = iface.options.without(opt::IF_TSOFFSET);
        let mut body = Vec::with_capacity(8 + options.as_le_bytes().len() + 4);
        body.extend_from_slice(&(iface.link_type as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&iface.snaplen.to_le_bytes());
        end_options(&mut body, options.as_le_bytes());
        let tsresol = options.view().u8(opt::IF_TSRESOL).unwrap_or(6);
        let units = crate::pcapng::units_per_sec(tsresol).unwrap_or(1_000_000);
        self.block(BT_IDB, &body)?;
        self.units.push(units);
        Ok(self.units.len() as u32 - 1)
    }

    /// Writes an enhanced packet block for interface `id` of the current section, with the
    /// packet's own options (comments, flags…) carried over.
    pub fn write(
        &mut self,
        id: u32,
        ts: Timestamp,
        orig_len: u32,
        data: &[u8],
        options: Options<'_>,
    ) -> io::Result<()> {
        let Some(&units) = self.units.get(id as usize) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface {id} has not been described in this section"),
            ));
        };
        let raw = ts.to_units(units).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {ts} does not fit the interface's resolution"),
            )
        })?;
        let caplen = u32::try_from(data.len()).map_err(|_| too_long(data.len()))?;
        self.scratch.clear();
        if !options.is_empty() {
            options.encode_le(BlockKind::Packet, &mut self.scratch);
            self.scratch.extend_from_slice(&[0, 0, 0, 0]);
        }
        let pad = pad4(data.len());
        let total = 12 + 20 + data.len() + pad + self.scratch.len();
        let total = u32::try_from(total).map_err(|_| too_long(data.len()))?;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&BT_EPB.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&id.to_le_bytes());
        h[12..16].copy_from_slice(&((raw >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(raw as u32).to_le_bytes());
        h[20..24].copy_from_slice(&caplen.to_le_bytes());
        // The original length as given, even below the captured length (a damaged record):
        // Wireshark shows it so, and a copy should say what the original said.
        h[24..28].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&self.scratch)?;
        self.out.write_all(&total.to_le_bytes())
    }

    /// Writes a simple packet block: no time, no options, always interface 0 of the section.
    pub fn write_simple(&mut self, orig_len: u32, data: &[u8]) -> io::Result<()> {
        if self.units.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a simple packet block needs an interface described in this section",
            ));
        }
        let caplen = u32::try_from(data.len()).map_err(|_| too_long(data.len()))?;
        let pad = pad4(data.len());
        let total = u32::try_from(16 + data.len() + pad).map_err(|_| too_long(data.len()))?;
        self.out.write_all(&BT_SPB.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(&orig_len.max(caplen).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&total.to_le_bytes())
    }

    fn block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let total = (12 + body.len()) as u32;
        self.out.write_all(&block_type.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        self.out.write_all(body)?;
        self.out.write_all(&total.to_le_bytes())
    }

    /// The underlying writer (to see how much a `Vec` holds so far).
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, to take what was written so far (a live stream sends it on).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends encoded options and, if there were any, the end-of-options marker.
fn end_options(body: &mut Vec<u8>, encoded: &[u8]) {
    if !encoded.is_empty() {
        body.extend_from_slice(encoded);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
}
