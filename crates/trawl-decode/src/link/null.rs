//! BSD loopback (LINKTYPE_NULL, 0: family in the capturing host's byte order) and OpenBSD
//! loopback (LINKTYPE_LOOP, 108: family in network byte order).

use super::NetProto;
use crate::bytes::{be32, le32};
use crate::decoded::{Decoded, Layer, LinkKind, StopReason};
use crate::linktype;

pub(crate) const HEADER_LEN: usize = 4;

/// BSD address-family values that mean IPv4 or IPv6.
pub(crate) const AF_INET: u32 = 2;
/// AF_INET6 differs between BSDs: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
pub(crate) const AF_INET6: [u32; 3] = [24, 28, 30];

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::Null;
    let raw = if d.link_type == linktype::LOOP {
        be32(d.data, 0)
    } else {
        le32(d.data, 0)
    };
    let Some(mut family) = raw else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    // A NULL capture written on a host of the other byte order: families are small numbers, so
    // non-zero upper bits mean the value is byte-swapped.
    if family & 0xffff_0000 != 0 {
        family = family.swap_bytes();
    }
    d.link.null_family = Some(family);
    d.link.payload_offset = HEADER_LEN;
    match family {
        AF_INET => Some((NetProto::Ipv4, HEADER_LEN)),
        f if AF_INET6.contains(&f) => Some((NetProto::Ipv6, HEADER_LEN)),
        _ => {
            d.set_stop(Layer::Link, HEADER_LEN, StopReason::Unsupported);
            None
        }
    }
}
