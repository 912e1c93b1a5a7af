//! TCP (RFC 9293): header and options.

use crate::bytes::{be16, be32, clamp, u8_at};
use crate::decoded::{Decoded, Layer, StopReason, Tcp, Transport};

pub(crate) const MIN_HEADER_LEN: usize = 20;

/// Option kinds.
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

pub(crate) fn decode<'a>(d: &mut Decoded<'a>, off: usize, wire_len: u32) -> Option<Tcp<'a>> {
    let data = d.data;
    let (
        Some(src_port),
        Some(dst_port),
        Some(seq),
        Some(ack),
        Some(off_flags),
        Some(window),
        Some(checksum),
        Some(urgent),
    ) = (
        be16(data, off),
        be16(data, off + 2),
        be32(data, off + 4),
        be32(data, off + 8),
        be16(data, off + 12),
        be16(data, off + 14),
        be16(data, off + 16),
        be16(data, off + 18),
    )
    else {
        d.set_stop(Layer::Tcp, off, StopReason::Truncated);
        return None;
    };
    let header_len = usize::from(off_flags >> 12) * 4;
    let mut tcp = Tcp {
        offset: off,
        src_port,
        dst_port,
        seq,
        ack,
        header_len: header_len as u8,
        flags: off_flags & 0x01ff,
        window,
        checksum,
        urgent,
        options: &[],
        payload: &[],
        payload_len: 0,
    };
    if header_len < MIN_HEADER_LEN {
        d.transport = Transport::Tcp(tcp);
        d.set_stop(Layer::Tcp, off, StopReason::Malformed("data offset < 5"));
        return None;
    }
    tcp.options = clamp(data, off + MIN_HEADER_LEN, off + header_len);
    tcp.payload_len = wire_len.saturating_sub(header_len as u32);
    let payload_end = (off + header_len).saturating_add(tcp.payload_len as usize);
    tcp.payload = clamp(data, off + header_len, payload_end);
    d.transport = Transport::Tcp(tcp);
    if data.len() < off + header_len {
        d.set_stop(Layer::Tcp, off, StopReason::Truncated);
        return None;
    }
    if header_len as u32 > wire_len {
        d.set_stop(
            Layer::Tcp,
            off,
            StopReason::Malformed("header longer than the IP payload"),
        );
        return None;
    }
    Some(tcp)
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    Eol,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// SACK blocks as raw bytes: 8 per block (left edge, right edge).
    Sack(&'a [u8]),
    Timestamp {
        val: u32,
        ecr: u32,
    },
    /// Any other option: its kind and data (without kind and length bytes).
    Other {
        kind: u8,
        data: &'a [u8],
    },
    /// An option whose length byte is missing, < 2, or runs past the header.
    Malformed {
        kind: u8,
    },
}

/// Iterator over TCP options; stops after EOL or a malformed option.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Options<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Options {
            bytes,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        if self.done {
            return None;
        }
        let kind = u8_at(self.bytes, self.pos)?;
        if kind == kind::EOL {
            self.done = true;
            return Some(TcpOption::Eol);
        }
        if kind == kind::NOP {
            self.pos += 1;
            return Some(TcpOption::Nop);
        }
        let len = match u8_at(self.bytes, self.pos + 1) {
            Some(l) if l >= 2 && self.pos + usize::from(l) <= self.bytes.len() => usize::from(l),
            _ => {
                self.done = true;
                return Some(TcpOption::Malformed { kind });
            }
        };
        let body = &self.bytes[self.pos + 2..self.pos + len];
        self.pos += len;
        Some(match (kind, body.len()) {
            (kind::MSS, 2) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            (kind::WSCALE, 1) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (kind::SACK, n) if n % 8 == 0 => TcpOption::Sack(body),
            (kind::TIMESTAMP, 8) => TcpOption::Timestamp {
                val: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                ecr: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            },
            _ => TcpOption::Other { kind, data: body },
        })
    }
}
