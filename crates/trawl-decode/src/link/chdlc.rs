//! Cisco HDLC (LINKTYPE_C_HDLC, 104): address (0x0f unicast, 0x8f broadcast), control, then a
//! protocol number that is an ethertype for IPv4, IPv6 and MPLS, or 0x8035 for SLARP, Cisco's
//! serial-line address resolution and keepalive protocol (not RARP, as on Ethernet).

use super::{NetProto, by_ethertype, ethertype};
use crate::bytes::{array, be16, be32, u8_at};
use crate::decoded::{Decoded, Layer, LinkKind, Slarp, StopReason};

pub(crate) const HEADER_LEN: usize = 4;
pub(crate) const PROTO_SLARP: u16 = 0x8035;
/// The shortest SLARP message: code, two 4-byte fields and the 2-byte reliability.
pub(crate) const SLARP_MIN_LEN: usize = 14;
/// With the 4-byte link uptime.
const SLARP_UPTIME_LEN: usize = 18;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::CiscoHdlc;
    let (Some(_address), Some(protocol)) = (u8_at(d.data, 0), be16(d.data, 2)) else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    d.link.ethertype = Some(protocol);
    d.link.payload_offset = HEADER_LEN;
    match protocol {
        ethertype::IPV4 | ethertype::IPV6 | ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => {
            by_ethertype(d, protocol, HEADER_LEN)
        }
        PROTO_SLARP => {
            slarp(d, HEADER_LEN);
            None
        }
        // ARP, VLAN tags and the like do not occur on Cisco HDLC links; tcpdump does not follow
        // them either.
        _ => {
            d.set_stop(Layer::Link, HEADER_LEN, StopReason::Unsupported);
            None
        }
    }
}

fn slarp(d: &mut Decoded<'_>, off: usize) {
    let data = d.data;
    let (Some(code), Some(a), Some(b), Some(reliability)) = (
        be32(data, off),
        array::<4>(data, off + 4),
        array::<4>(data, off + 8),
        be16(data, off + 12),
    ) else {
        d.set_stop(Layer::Link, off, StopReason::Truncated);
        return;
    };
    d.link.slarp = Some(match code {
        0 => Slarp::Request {
            address: a,
            mask: b,
        },
        1 => Slarp::Reply {
            address: a,
            mask: b,
        },
        2 => Slarp::Keepalive {
            mine_seen: u32::from_be_bytes(a),
            your_seen: u32::from_be_bytes(b),
            reliability,
            uptime_ms: be32(data, off + SLARP_UPTIME_LEN - 4),
        },
        code => Slarp::Other { code },
    });
    d.set_stop(Layer::Link, off + SLARP_MIN_LEN, StopReason::Complete);
}
