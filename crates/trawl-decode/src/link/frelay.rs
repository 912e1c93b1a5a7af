//! Frame Relay (LINKTYPE_FRELAY, 107): a Q.922 address (2–4 bytes, DLCI and the FECN/BECN/DE
//! congestion bits), then RFC 2427 multiprotocol encapsulation: control 0x03 (UI), an optional
//! 0x00 pad, and an NLPID (0xcc IPv4, 0x8e IPv6, 0x80 SNAP).

use super::{NetProto, by_ethertype, ethertype};
use crate::bytes::{array, be16, u8_at};
use crate::decoded::{Decoded, FrameRelay, Layer, LinkKind, StopReason};

pub(crate) const NLPID_IPV4: u8 = 0xcc;
pub(crate) const NLPID_IPV6: u8 = 0x8e;
pub(crate) const NLPID_SNAP: u8 = 0x80;

/// Parses the Q.922 address at the start of `data`.
pub fn parse_address(data: &[u8]) -> Result<FrameRelay, StopReason> {
    let (Some(b0), Some(b1)) = (u8_at(data, 0), u8_at(data, 1)) else {
        return Err(StopReason::Truncated);
    };
    if b0 & 0x01 != 0 {
        return Err(StopReason::Malformed(
            "Q.922 address: EA bit set in the first byte",
        ));
    }
    let mut fr = FrameRelay {
        dlci: (u32::from(b0 >> 2) << 4) | u32::from(b1 >> 4),
        cr: b0 & 0x02 != 0,
        fecn: b1 & 0x08 != 0,
        becn: b1 & 0x04 != 0,
        de: b1 & 0x02 != 0,
        address_len: 2,
        nlpid: None,
    };
    if b1 & 0x01 == 1 {
        return Ok(fr);
    }
    // Three- and four-byte addresses: each extra byte carries more DLCI bits (the D/C bit of the
    // last byte, when set, means it carries control information instead; those bits are kept
    // as DLCI bits here, which is what the common 10-bit case needs).
    let Some(b2) = u8_at(data, 2) else {
        return Err(StopReason::Truncated);
    };
    if b2 & 0x01 == 1 {
        fr.dlci = (fr.dlci << 6) | u32::from(b2 >> 2);
        fr.address_len = 3;
        return Ok(fr);
    }
    let Some(b3) = u8_at(data, 3) else {
        return Err(StopReason::Truncated);
    };
    if b3 & 0x01 == 0 {
        return Err(StopReason::Malformed("Q.922 address longer than 4 bytes"));
    }
    fr.dlci = (fr.dlci << 13) | (u32::from(b2 >> 1) << 6) | u32::from(b3 >> 2);
    fr.address_len = 4;
    Ok(fr)
}

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::FrameRelay;
    let mut fr = match parse_address(d.data) {
        Ok(fr) => fr,
        Err(reason) => {
            d.set_stop(Layer::Link, 0, reason);
            return None;
        }
    };
    let mut off = usize::from(fr.address_len);
    d.link.frame_relay = Some(fr);
    d.link.payload_offset = off;
    let Some(control) = u8_at(d.data, off) else {
        d.set_stop(Layer::Link, off, StopReason::Truncated);
        return None;
    };
    if control != 0x03 {
        d.set_stop(Layer::Link, off, StopReason::Unsupported);
        return None;
    }
    off += 1;
    if u8_at(d.data, off) == Some(0x00) {
        off += 1;
    }
    let Some(nlpid) = u8_at(d.data, off) else {
        d.set_stop(Layer::Link, off, StopReason::Truncated);
        return None;
    };
    fr.nlpid = Some(nlpid);
    d.link.frame_relay = Some(fr);
    off += 1;
    d.link.payload_offset = off;
    match nlpid {
        NLPID_IPV4 => by_ethertype(d, ethertype::IPV4, off),
        NLPID_IPV6 => by_ethertype(d, ethertype::IPV6, off),
        NLPID_SNAP => {
            let (Some(oui), Some(pid)) = (array::<3>(d.data, off), be16(d.data, off + 3)) else {
                d.set_stop(Layer::Link, off, StopReason::Truncated);
                return None;
            };
            if oui == [0, 0, 0] {
                by_ethertype(d, pid, off + 5)
            } else {
                d.set_stop(Layer::Link, off, StopReason::Unsupported);
                None
            }
        }
        _ => {
            d.set_stop(Layer::Link, off - 1, StopReason::Unsupported);
            None
        }
    }
}
