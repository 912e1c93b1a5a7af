//! Ethernet II and 802.3 (LINKTYPE_ETHERNET, 1).

use super::{NetProto, by_ethertype};
use crate::bytes::{array, be16, u8_at};
use crate::decoded::{Decoded, Layer, LinkKind, Llc, Mac, StopReason};

pub(crate) const HEADER_LEN: usize = 14;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::Ethernet;
    let (Some(dst), Some(src), Some(type_or_len)) = (
        array::<6>(d.data, 0),
        array::<6>(d.data, 6),
        be16(d.data, 12),
    ) else {
        d.set_stop(Layer::Link, 0, StopReason::Truncated);
        return None;
    };
    d.link.dst_mac = Some(Mac(dst));
    d.link.src_mac = Some(Mac(src));
    if type_or_len <= 1500 {
        return llc(d, type_or_len, HEADER_LEN);
    }
    by_ethertype(d, type_or_len, HEADER_LEN)
}

/// An 802.3 frame: the type field is a length and an 802.2 LLC header follows; SNAP with OUI 0
/// carries an ethertype.
fn llc(d: &mut Decoded<'_>, length: u16, off: usize) -> Option<(NetProto, usize)> {
    d.link.length_field = Some(length);
    d.link.payload_offset = off;
    let (Some(dsap), Some(ssap), Some(control)) = (
        u8_at(d.data, off),
        u8_at(d.data, off + 1),
        u8_at(d.data, off + 2),
    ) else {
        d.set_stop(Layer::Link, off, StopReason::Truncated);
        return None;
    };
    let mut llc = Llc {
        dsap,
        ssap,
        control,
        snap_oui: None,
    };
    if dsap == 0xaa && ssap == 0xaa && control == 0x03 {
        let (Some(oui), Some(pid)) = (array::<3>(d.data, off + 3), be16(d.data, off + 6)) else {
            d.link.llc = Some(llc);
            d.set_stop(Layer::Link, off, StopReason::Truncated);
            return None;
        };
        let oui = u32::from_be_bytes([0, oui[0], oui[1], oui[2]]);
        llc.snap_oui = Some(oui);
        d.link.llc = Some(llc);
        if oui == 0 {
            return by_ethertype(d, pid, off + 8);
        }
    } else {
        d.link.llc = Some(llc);
    }
    d.set_stop(Layer::Link, off, StopReason::Unsupported);
    None
}
