//! [`Headers`]: the few fields of a packet that flow accounting reads — where it was seen (outer
//! VLAN, Frame Relay DLCI), its IP addresses and protocol, ports, the TCP sequence fields — in a
//! small `Copy` value, and [`decode_headers`], which reads them without building a whole
//! [`Decoded`].
//!
//! [`decode_headers`] has a fast path for the common shapes (Ethernet with or without VLAN tags,
//! Linux cooked v1/v2, raw IP; IPv4 and IPv6 with its extension headers; TCP, UDP, anything
//! else) and hands every other packet — other link types, ARP, MPLS, PPPoE, 802.3/LLC, a
//! header cut short, a malformed length — to [`crate::decode_with_wire_len`], taking the
//! fields from its result ([`Headers::of`]). Both give the same [`Headers`] for every packet:
//! the fast path follows the same rules (`tests/headers.rs` checks it on every packet of the
//! test corpus, and on every prefix of their first bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::decoded::{Decoded, Net, Transport};
use crate::link::ethertype;
use crate::linktype;
use crate::net::ipv6::ExtChain;
use crate::net::{proto, wire_left};

/// What flow accounting reads of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    /// Length on the wire (at least the captured length, as [`Decoded::wire_len`]).
    pub wire_len: u32,
    /// The outermost VLAN id, if any.
    pub outer_vlan: Option<u16>,
    /// The Frame Relay DLCI, if any.
    pub dlci: Option<u32>,
    /// The IP layer; `None` when the packet is not IPv4 or IPv6.
    pub ip: Option<IpHeader>,
    /// TCP or UDP ports (else 0).
    pub src_port: u16,
    pub dst_port: u16,
    /// The TCP header's sequence fields, for a TCP segment.
    pub tcp: Option<TcpHeader>,
}

/// Addresses and upper-layer protocol of an IPv4 or IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers, or where their walk stopped).
    pub protocol: u8,
}

/// The TCP fields flow accounting tracks (see [`crate::Tcp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    pub seq: u32,
    pub ack: u32,
    /// See [`crate::decoded::tcp_flags`].
    pub flags: u16,
    pub window: u16,
    /// Payload length as the IP header claims it.
    pub payload_len: u32,
}

impl Headers {
    /// The fields of a fully decoded packet.
    pub fn of(d: &Decoded<'_>) -> Headers {
        let ip = match &d.net {
            Net::Ipv4(ip) => Some(IpHeader {
                src: IpAddr::V4(Ipv4Addr::from(ip.src)),
                dst: IpAddr::V4(Ipv4Addr::from(ip.dst)),
                protocol: ip.protocol,
            }),
            Net::Ipv6(ip) => Some(IpHeader {
                src: IpAddr::V6(Ipv6Addr::from(ip.src)),
                dst: IpAddr::V6(Ipv6Addr::from(ip.dst)),
                protocol: ip.protocol,
            }),
            _ => None,
        };
        let (src_port, dst_port, tcp) = match &d.transport {
            Transport::Tcp(t) => (
                t.src_port,
                t.dst_port,
                Some(TcpHeader {
                    seq: t.seq,
                    ack: t.ack,
                    flags: t.flags,
                    window: t.window,
                    payload_len: t.payload_len,
                }),
            ),
            Transport::Udp(u) => (u.src_port, u.dst_port, None),
            _ => (0, 0, None),
        };
        Headers {
            wire_len: d.wire_len,
            outer_vlan: d.link.outer_vlan(),
            dlci: d.link.frame_relay.as_ref().map(|f| f.dlci),
            ip,
            src_port,
            dst_port,
            tcp,
        }
    }
}

impl From<&Decoded<'_>> for Headers {
    fn from(d: &Decoded<'_>) -> Headers {
        Headers::of(d)
    }
}

/// The [`Headers`] of one packet (`wire_len` as for [`crate::decode_with_wire_len`]): what
/// `Headers::of(&decode_with_wire_len(link_type, data, wire_len))` gives, mostly without
/// decoding the rest.
#[inline]
pub fn decode_headers(link_type: u32, data: &[u8], wire_len: u32) -> Headers {
    match decode_headers_fast(link_type, data, wire_len) {
        Some(h) => h,
        None => Headers::of(&crate::decode_with_wire_len(link_type, data, wire_len)),
    }
}

/// The fast path of [`decode_headers`] alone: `None` for a packet it leaves to the full decoder.
/// Public so that tests and benchmarks can tell the two paths apart.
#[inline]
pub fn decode_headers_fast(link_type: u32, data: &[u8], wire_len: u32) -> Option<Headers> {
    let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = Headers {
        wire_len: wire_len.max(caplen),
        outer_vlan: None,
        dlci: None,
        ip: None,
        src_port: 0,
        dst_port: 0,
        tcp: None,
    };
    let (version, off) = match link_type {
        linktype::ETHERNET => {
            let ty = be16(data, 12)?;
            ip_after_ethertype(data, ty, 14, &mut h)?
        }
        linktype::LINUX_SLL => {
            let ty = be16(data, 14)?;
            ip_after_ethertype(data, ty, 16, &mut h)?
        }
        linktype::LINUX_SLL2 => {
            // The full decoder needs the whole 20-byte header, although the type comes first.
            if data.len() < 20 {
                return None;
            }
            ip_after_ethertype(data, be16(data, 0)?, 20, &mut h)?
        }
        linktype::IPV4 => (4, 0),
        linktype::IPV6 => (6, 0),
        linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => (*data.first()? >> 4, 0),
        _ => return None,
    };
    let (protocol, upper, upper_wire) = match version {
        4 => ipv4(data, off, h.wire_len, &mut h)?,
        6 => ipv6(data, off, h.wire_len, &mut h)?,
        _ => return None,
    };
    let Some(upper) = upper else {
        // A non-first fragment, or an IPv6 chain that ends before an upper layer.
        return Some(h);
    };
    match protocol {
        proto::TCP => {
            // As the full decoder: the header is taken once its fixed 20 bytes are there, even
            // with a data offset below 5 (then without a payload length).
            let Some(b) = data.get(upper..upper + 20) else {
                return Some(h);
            };
            let off_flags = u16::from_be_bytes([b[12], b[13]]);
            let header_len = u32::from(off_flags >> 12) * 4;
            h.src_port = u16::from_be_bytes([b[0], b[1]]);
            h.dst_port = u16::from_be_bytes([b[2], b[3]]);
            h.tcp = Some(TcpHeader {
                seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                flags: off_flags & 0x01ff,
                window: u16::from_be_bytes([b[14], b[15]]),
                payload_len: if header_len < 20 {
                    0
                } else {
                    upper_wire.saturating_sub(header_len)
                },
            });
        }
        proto::UDP => {
            if let Some(b) = data.get(upper..upper + 8) {
                h.src_port = u16::from_be_bytes([b[0], b[1]]);
                h.dst_port = u16::from_be_bytes([b[2], b[3]]);
            }
        }
        // ICMP, ICMPv6 and the rest: no ports.
        _ => {}
    }
    Some(h)
}

#[inline]
fn be16(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Follows an ethertype through VLAN tags to IPv4 or IPv6: (IP version, offset), or `None` for
/// anything else (802.3 lengths, ARP, MPLS, PPPoE, a tag cut short).
#[inline]
fn ip_after_ethertype(
    data: &[u8],
    mut ty: u16,
    mut off: usize,
    h: &mut Headers,
) -> Option<(u8, usize)> {
    loop {
        match ty {
            ethertype::IPV4 => return Some((4, off)),
            ethertype::IPV6 => return Some((6, off)),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2 => {
                let b = data.get(off..off + 4)?;
                if h.outer_vlan.is_none() {
                    h.outer_vlan = Some(u16::from_be_bytes([b[0], b[1]]) & 0x0fff);
                }
                ty = u16::from_be_bytes([b[2], b[3]]);
                off += 4;
            }
            _ => return None,
        }
    }
}

/// The upper layer of an IP packet: its protocol, its offset (`None` when there is no upper
/// layer header in this packet), and its length on the wire.
type Upper = (u8, Option<usize>, u32);

/// An IPv4 header at `off` as the full decoder reads it, for the usual shapes only.
#[inline]
fn ipv4(data: &[u8], off: usize, wire_len: u32, h: &mut Headers) -> Option<Upper> {
    let b = data.get(off..off + 20)?;
    if b[0] >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(b[0] & 0x0f) * 4;
    let total_len = u16::from_be_bytes([b[2], b[3]]);
    // Options cut short, or odd lengths (below 20, or a total length below the header's: the
    // full decoder has rules for those).
    if header_len < 20 || usize::from(total_len) < header_len || data.len() < off + header_len {
        return None;
    }
    h.ip = Some(IpHeader {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        protocol: b[9],
    });
    let frag_offset = u16::from_be_bytes([b[6], b[7]]) & 0x1fff;
    if frag_offset != 0 {
        return Some((b[9], None, 0));
    }
    let ip_wire = wire_left(wire_len, off).min(u32::from(total_len));
    Some((
        b[9],
        Some(off + header_len),
        ip_wire.saturating_sub(header_len as u32),
    ))
}

/// An IPv6 header at `off` and its extension-header chain, as the full decoder walks it.
#[inline]
fn ipv6(data: &[u8], off: usize, wire_len: u32, h: &mut Headers) -> Option<Upper> {
    let b = data.get(off..off + 40)?;
    if b[0] >> 4 != 6 {
        return None;
    }
    let payload_len = u16::from_be_bytes([b[4], b[5]]);
    let next_header = b[6];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    dst.copy_from_slice(&b[24..40]);
    let wire_left = wire_left(wire_len, off);
    let ip_wire = if payload_len == 0 {
        wire_left
    } else {
        wire_left.min(40 + u32::from(payload_len))
    };
    let (protocol, upper, end) = match next_header {
        proto::TCP | proto::UDP | proto::ICMPV6 | proto::ICMP => (next_header, off + 40, false),
        _ => {
            let mut chain = ExtChain::new(data, off + 40, next_header);
            chain.by_ref().for_each(drop);
            (chain.next_header, chain.pos, chain.end.is_some())
        }
    };
    h.ip = Some(IpHeader {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol,
    });
    if end {
        return Some((protocol, None, 0));
    }
    Some((
        protocol,
        Some(upper),
        ip_wire.saturating_sub((upper - off) as u32),
    ))
}
