//! Raw IP: LINKTYPE_RAW (101, and 12/14 as libpcap maps them) guesses the version from the first
//! nibble; LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229) fix it.

use super::NetProto;
use crate::bytes::u8_at;
use crate::decoded::{Decoded, Layer, LinkKind, StopReason};
use crate::linktype;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::Raw;
    d.link.payload_offset = 0;
    match d.link_type {
        linktype::IPV4 => return Some((NetProto::Ipv4, 0)),
        linktype::IPV6 => return Some((NetProto::Ipv6, 0)),
        _ => {}
    }
    match u8_at(d.data, 0).map(|b| b >> 4) {
        Some(4) => Some((NetProto::Ipv4, 0)),
        Some(6) => Some((NetProto::Ipv6, 0)),
        Some(_) => {
            d.set_stop(
                Layer::Link,
                0,
                StopReason::Malformed("IP version is neither 4 nor 6"),
            );
            None
        }
        None => {
            d.set_stop(Layer::Link, 0, StopReason::Truncated);
            None
        }
    }
}
