//! Frame Relay (LINKTYPE_FRELAY, 107): a Q.922 address (2–4 bytes, DLCI and the FECN/BECN/DE
//! congestion bits), then RFC 2427 multiprotocol encapsulation: control 0x03 (UI), an optional
//! 0x00 pad, and an NLPID (0xcc IPv4, 0x8e IPv6, 0x80 SNAP, 0xcf PPP); or Cisco's encapsulation,
//! where an ethertype follows a 2-byte address directly.

use super::{NetProto, by_ethertype, ethertype};
use crate::bytes::{array, be16, u8_at};
use crate::decoded::{Decoded, FrameRelay, Layer, LinkKind, StopReason};

pub(crate) const NLPID_IPV4: u8 = 0xcc;
pub(crate) const NLPID_IPV6: u8 = 0x8e;
pub(crate) const NLPID_SNAP: u8 = 0x80;
pub(crate) const NLPID_PPP: u8 = 0xcf;
/// The HDLC unnumbered-information control byte.
pub(crate) const CONTROL_UI: u8 = 0x03;

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
        ..FrameRelay::default()
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
    let addr_len = usize::from(fr.address_len);
    d.link.frame_relay = Some(fr);
    d.link.payload_offset = addr_len;
    let Some(control) = u8_at(d.data, addr_len) else {
        d.set_stop(Layer::Link, addr_len, StopReason::Truncated);
        return None;
    };
    // Cisco encapsulation: no UI control byte, an ethertype right after a 2-byte address. A
    // value that is not an ethertype we follow is read as RFC 2427 with a bad control byte, as
    // tcpdump does.
    if control != CONTROL_UI
        && addr_len == 2
        && let Some(t) = be16(d.data, addr_len).filter(|&t| follows_ethertype(t))
    {
        fr.cisco_ethertype = Some(t);
        d.link.frame_relay = Some(fr);
        return by_ethertype(d, t, addr_len + 2);
    }
    fr.control = Some(control);
    let mut off = addr_len + 1;
    // A pad byte keeps the NLPID at an even offset; only 3-byte addresses should need it.
    if u8_at(d.data, off) == Some(0x00) {
        fr.pad = true;
        off += 1;
    }
    let Some(nlpid) = u8_at(d.data, off) else {
        d.link.frame_relay = Some(fr);
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
        NLPID_PPP => super::ppp::ppp_payload(d, off, Layer::Link),
        NLPID_SNAP => {
            let (Some(oui), Some(pid)) = (array::<3>(d.data, off), be16(d.data, off + 3)) else {
                d.set_stop(Layer::Link, off, StopReason::Truncated);
                return None;
            };
            if oui == [0, 0, 0] && follows_ethertype(pid) {
                by_ethertype(d, pid, off + 5)
            } else {
                d.set_stop(Layer::Link, off, StopReason::Unsupported);
                None
            }
        }
        _ => {
            d.set_stop(Layer::Link, off, StopReason::Unsupported);
            None
        }
    }
}

/// Ethertypes [`by_ethertype`] leads to a network layer (possibly through tags or labels).
fn follows_ethertype(t: u16) -> bool {
    matches!(
        t,
        ethertype::IPV4
            | ethertype::IPV6
            | ethertype::ARP
            | ethertype::RARP
            | ethertype::VLAN
            | ethertype::QINQ
            | ethertype::QINQ_OLD
            | ethertype::QINQ_OLD2
            | ethertype::MPLS_UNICAST
            | ethertype::MPLS_MULTICAST
            | ethertype::PPPOE_SESSION
    )
}
