//! ARP and RARP (RFC 826, RFC 903).

use crate::bytes::{be16, clamp, u8_at};
use crate::decoded::{Arp, Decoded, Layer, Net, StopReason};

pub(crate) const FIXED_LEN: usize = 8;

pub(crate) fn decode(d: &mut Decoded<'_>, off: usize) {
    let data = d.data;
    let (
        Some(hardware_type),
        Some(protocol_type),
        Some(hardware_len),
        Some(protocol_len),
        Some(operation),
    ) = (
        be16(data, off),
        be16(data, off + 2),
        u8_at(data, off + 4),
        u8_at(data, off + 5),
        be16(data, off + 6),
    )
    else {
        d.set_stop(Layer::Arp, off, StopReason::Truncated);
        return;
    };
    let (hl, pl) = (usize::from(hardware_len), usize::from(protocol_len));
    let sha = off + FIXED_LEN;
    let spa = sha + hl;
    let tha = spa + pl;
    let tpa = tha + hl;
    let end = tpa + pl;
    d.net = Net::Arp(Arp {
        offset: off,
        hardware_type,
        protocol_type,
        hardware_len,
        protocol_len,
        operation,
        sender_hw: clamp(data, sha, spa),
        sender_proto: clamp(data, spa, tha),
        target_hw: clamp(data, tha, tpa),
        target_proto: clamp(data, tpa, end),
    });
    if data.len() < end {
        d.set_stop(Layer::Arp, off, StopReason::Truncated);
    } else {
        d.set_stop(Layer::Arp, end, StopReason::Complete);
    }
}
