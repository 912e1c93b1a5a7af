//! ICMP (RFC 792) and ICMPv6 (RFC 4443, neighbour discovery RFC 4861): type, code, checksum and
//! the message bytes; the text printer and [`crate::decoded::Icmp`] helpers read the rest.

use crate::bytes::{be16, clamp, u8_at};
use crate::decoded::{Decoded, Icmp, Layer, StopReason, Transport};

pub(crate) fn decode(d: &mut Decoded<'_>, off: usize, wire_len: u32, v6: bool) {
    let data = d.data;
    let layer = if v6 { Layer::Icmp6 } else { Layer::Icmp };
    let (Some(icmp_type), Some(code), Some(checksum)) =
        (u8_at(data, off), u8_at(data, off + 1), be16(data, off + 2))
    else {
        d.set_stop(layer, off, StopReason::Truncated);
        return;
    };
    let icmp = Icmp {
        offset: off,
        icmp_type,
        code,
        checksum,
        message: clamp(data, off, off + wire_len as usize),
        length: wire_len,
    };
    d.transport = if v6 {
        Transport::Icmp6(icmp)
    } else {
        Transport::Icmp(icmp)
    };
    d.set_stop(layer, off + 4, StopReason::Complete);
}
