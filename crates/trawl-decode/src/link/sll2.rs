//! Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276): 20-byte pseudo-header with the interface
//! index.

use super::NetProto;
use crate::bytes::{array, be16, be32, u8_at};
use crate::decoded::{Decoded, Layer, LinkKind, Sll, StopReason};

pub(crate) const HEADER_LEN: usize = 20;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::LinuxSll2;
    let (
        Some(protocol),
        Some(if_index),
        Some(arphrd_type),
        Some(packet_type),
        Some(addr_len),
        Some(addr),
    ) = (
        be16(d.data, 0),
        be32(d.data, 4),
        be16(d.data, 8),
        u8_at(d.data, 10),
        u8_at(d.data, 11),
        array::<8>(d.data, 12),
    )
    else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    d.link.sll = Some(Sll {
        packet_type: packet_type.into(),
        arphrd_type,
        addr_len: addr_len.into(),
        addr,
        protocol,
        if_index: Some(if_index),
    });
    super::sll::after_cooked_header(d, protocol, HEADER_LEN)
}
