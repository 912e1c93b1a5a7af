//! Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113): 16-byte pseudo-header.

use super::{NetProto, by_ethertype};
use crate::bytes::{array, be16};
use crate::decoded::{Decoded, Layer, LinkKind, Sll, StopReason};

pub(crate) const HEADER_LEN: usize = 16;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::LinuxSll;
    let (Some(packet_type), Some(arphrd_type), Some(addr_len), Some(addr), Some(protocol)) = (
        be16(d.data, 0),
        be16(d.data, 2),
        be16(d.data, 4),
        array::<8>(d.data, 6),
        be16(d.data, 14),
    ) else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    d.link.sll = Some(Sll {
        packet_type,
        arphrd_type,
        addr_len,
        addr,
        protocol,
        if_index: None,
    });
    after_cooked_header(d, protocol, HEADER_LEN)
}

/// The protocol field of both SLL versions: an ethertype, except for a few small values that
/// mean 802.3 / 802.2 frames without an ethertype.
pub(crate) fn after_cooked_header(
    d: &mut Decoded<'_>,
    protocol: u16,
    off: usize,
) -> Option<(NetProto, usize)> {
    d.link.payload_offset = off;
    if protocol <= 1500 {
        // 1 = Novell 802.3, 4 = 802.2 LLC, and so on: nothing this crate decodes.
        d.link.ethertype = None;
        d.set_stop(Layer::Link, off, StopReason::Unsupported);
        return None;
    }
    by_ethertype(d, protocol, off)
}
