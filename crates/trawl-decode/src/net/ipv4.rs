//! IPv4 (RFC 791): header, options, fragmentation. Only the first fragment carries the
//! transport header.

use crate::bytes::{array, be16, clamp, u8_at};
use crate::decoded::{Decoded, Fragment, Ipv4, Layer, Net, StopReason};

/// Decodes the IPv4 header at `off`; returns the offset of the payload, its protocol and its
/// wire length, or `None` (after setting `d.stop`) if there is nothing more to decode.
pub(crate) fn decode<'a>(d: &mut Decoded<'a>, off: usize) -> Option<(u8, usize, u32)> {
    let data = d.data;
    let Some(vihl) = u8_at(data, off) else {
        d.set_stop(Layer::Ipv4, off, StopReason::Truncated);
        return None;
    };
    if vihl >> 4 != 4 {
        d.set_stop(
            Layer::Ipv4,
            off,
            StopReason::Malformed("IP version is not 4"),
        );
        return None;
    }
    let header_len = usize::from(vihl & 0x0f) * 4;
    let (
        Some(tos),
        Some(total_len),
        Some(id),
        Some(frag),
        Some(ttl),
        Some(protocol),
        Some(checksum),
        Some(src),
        Some(dst),
    ) = (
        u8_at(data, off + 1),
        be16(data, off + 2),
        be16(data, off + 4),
        be16(data, off + 6),
        u8_at(data, off + 8),
        u8_at(data, off + 9),
        be16(data, off + 10),
        array::<4>(data, off + 12),
        array::<4>(data, off + 16),
    )
    else {
        d.set_stop(Layer::Ipv4, off, StopReason::Truncated);
        return None;
    };
    let wire_left = super::wire_left(d.wire_len, off);
    let fragment = Fragment {
        offset: u32::from(frag & 0x1fff) * 8,
        more_fragments: frag & 0x2000 != 0,
        dont_fragment: frag & 0x4000 != 0,
        id: u32::from(id),
    };
    let mut ip = Ipv4 {
        offset: off,
        header_len: header_len as u8,
        tos,
        total_len,
        id,
        fragment,
        ttl,
        protocol,
        checksum,
        src,
        dst,
        options: &[],
        wire_len: wire_left.min(u32::from(total_len)),
    };
    if header_len < 20 {
        d.net = Net::Ipv4(ip);
        d.set_stop(
            Layer::Ipv4,
            off,
            StopReason::Malformed("header length < 20"),
        );
        return None;
    }
    if usize::from(total_len) < header_len {
        // total length 0 is what TCP segmentation offload leaves behind: use the wire length.
        if total_len == 0 {
            ip.wire_len = wire_left;
        } else {
            d.net = Net::Ipv4(ip);
            d.set_stop(
                Layer::Ipv4,
                off,
                StopReason::Malformed("total length < header length"),
            );
            return None;
        }
    }
    ip.options = clamp(data, off + 20, off + header_len);
    d.net = Net::Ipv4(ip);
    if data.len() < off + header_len {
        d.set_stop(Layer::Ipv4, off, StopReason::Truncated);
        return None;
    }
    if fragment.offset != 0 {
        d.set_stop(Layer::Ipv4, off + header_len, StopReason::Fragment);
        return None;
    }
    let payload_wire = ip.wire_len.saturating_sub(header_len as u32);
    Some((protocol, off + header_len, payload_wire))
}
