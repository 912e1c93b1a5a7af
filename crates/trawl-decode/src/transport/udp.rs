//! UDP (RFC 768).

use crate::bytes::{be16, clamp};
use crate::decoded::{Decoded, Layer, StopReason, Transport, Udp};

pub(crate) const HEADER_LEN: usize = 8;

pub(crate) fn decode<'a>(d: &mut Decoded<'a>, off: usize, wire_len: u32) -> Option<Udp<'a>> {
    let data = d.data;
    let (Some(src_port), Some(dst_port), Some(length), Some(checksum)) = (
        be16(data, off),
        be16(data, off + 2),
        be16(data, off + 4),
        be16(data, off + 6),
    ) else {
        d.set_stop(Layer::Udp, off, StopReason::Truncated);
        return None;
    };
    // Length 0 over IPv6 marks a jumbogram (RFC 2675): the IP layer has the length.
    let claimed = if length == 0 && wire_len > 65535 {
        wire_len
    } else {
        u32::from(length)
    };
    let payload_len = claimed
        .saturating_sub(HEADER_LEN as u32)
        .min(wire_len.saturating_sub(HEADER_LEN as u32));
    let udp = Udp {
        offset: off,
        src_port,
        dst_port,
        length,
        checksum,
        payload: clamp(
            data,
            off + HEADER_LEN,
            off + HEADER_LEN + payload_len as usize,
        ),
        payload_len,
    };
    d.transport = Transport::Udp(udp);
    if usize::from(length) < HEADER_LEN && claimed == u32::from(length) {
        d.set_stop(Layer::Udp, off, StopReason::Malformed("length < 8"));
        return None;
    }
    Some(udp)
}
