//! Cisco HDLC (LINKTYPE_C_HDLC, 104): address, control, then an ethertype.

use super::{NetProto, by_ethertype};
use crate::bytes::{be16, u8_at};
use crate::decoded::{Decoded, Layer, LinkKind, StopReason};

pub(crate) const HEADER_LEN: usize = 4;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::CiscoHdlc;
    let (Some(_address), Some(protocol)) = (u8_at(d.data, 0), be16(d.data, 2)) else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    by_ethertype(d, protocol, HEADER_LEN)
}
