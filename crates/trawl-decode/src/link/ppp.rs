//! PPP (LINKTYPE_PPP 9, LINKTYPE_PPP_HDLC 50) and PPPoE (ethertype 0x8864, LINKTYPE_PPP_ETHER 51).

use super::{NetProto, by_ethertype};
use crate::bytes::{be16, u8_at};
use crate::decoded::{Decoded, Layer, LinkKind, StopReason};
use crate::linktype;

pub(crate) const PROTO_IPV4: u16 = 0x0021;
pub(crate) const PROTO_IPV6: u16 = 0x0057;
pub(crate) const PROTO_MPLS_UNICAST: u16 = 0x0281;
pub(crate) const PROTO_MPLS_MULTICAST: u16 = 0x0283;

/// Cisco HDLC address bytes, which LINKTYPE_PPP_HDLC captures may carry instead of PPP.
const CHDLC_UNICAST: u8 = 0x0f;
const CHDLC_BROADCAST: u8 = 0x8f;

pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = if d.link_type == linktype::PPP_HDLC {
        LinkKind::PppHdlc
    } else {
        LinkKind::Ppp
    };
    if d.link_type == linktype::PPP_HDLC
        && matches!(u8_at(d.data, 0), Some(CHDLC_UNICAST | CHDLC_BROADCAST))
    {
        return super::chdlc::decode(d);
    }
    ppp_payload(d, 0, Layer::Link)
}

/// A PPP frame at `off`: optional 0xff 0x03 address/control, then a 1- or 2-byte protocol.
pub(crate) fn ppp_payload(
    d: &mut Decoded<'_>,
    mut off: usize,
    layer: Layer,
) -> Option<(NetProto, usize)> {
    if u8_at(d.data, off) == Some(0xff) && u8_at(d.data, off + 1) == Some(0x03) {
        off += 2;
    }
    let Some(first) = u8_at(d.data, off) else {
        d.set_stop(layer, off, StopReason::Truncated);
        return None;
    };
    // Protocol-field compression: an odd first byte is a complete 1-byte protocol.
    let protocol = if first & 1 == 1 {
        off += 1;
        u16::from(first)
    } else {
        let Some(p) = be16(d.data, off) else {
            d.set_stop(layer, off, StopReason::Truncated);
            return None;
        };
        off += 2;
        p
    };
    d.link.ppp_protocol = Some(protocol);
    d.link.payload_offset = off;
    match protocol {
        PROTO_IPV4 => by_ethertype(d, super::ethertype::IPV4, off),
        PROTO_IPV6 => by_ethertype(d, super::ethertype::IPV6, off),
        PROTO_MPLS_UNICAST | PROTO_MPLS_MULTICAST => super::mpls(d, off),
        _ => {
            d.set_stop(layer, off, StopReason::Unsupported);
            None
        }
    }
}

/// PPPoE session stage (RFC 2516): version/type, code, session id, length, then PPP.
pub(crate) fn pppoe_session(d: &mut Decoded<'_>, off: usize) -> Option<(NetProto, usize)> {
    let (Some(ver_type), Some(_code), Some(session), Some(_len)) = (
        u8_at(d.data, off),
        u8_at(d.data, off + 1),
        be16(d.data, off + 2),
        be16(d.data, off + 4),
    ) else {
        d.set_stop(Layer::Pppoe, off, StopReason::Truncated);
        return None;
    };
    if ver_type != 0x11 {
        d.set_stop(
            Layer::Pppoe,
            off,
            StopReason::Malformed("PPPoE version/type is not 1/1"),
        );
        return None;
    }
    d.link.pppoe_session = Some(session);
    // The PPP protocol field in PPPoE is never compressed and has no address/control bytes.
    let Some(protocol) = be16(d.data, off + 6) else {
        d.set_stop(Layer::Pppoe, off + 6, StopReason::Truncated);
        return None;
    };
    d.link.ppp_protocol = Some(protocol);
    let payload = off + 8;
    d.link.payload_offset = payload;
    match protocol {
        PROTO_IPV4 => by_ethertype(d, super::ethertype::IPV4, payload),
        PROTO_IPV6 => by_ethertype(d, super::ethertype::IPV6, payload),
        PROTO_MPLS_UNICAST | PROTO_MPLS_MULTICAST => super::mpls(d, payload),
        _ => {
            d.set_stop(Layer::Pppoe, payload, StopReason::Unsupported);
            None
        }
    }
}

/// LINKTYPE_PPP_ETHER: a PPPoE header without the Ethernet header in front.
pub(crate) fn decode_pppoe_link(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    d.link.kind = LinkKind::PppEther;
    d.link.ethertype = Some(super::ethertype::PPPOE_SESSION);
    pppoe_session(d, 0)
}

/// Names of the PPP control protocols that share LCP's packet format (code, id, length), as
/// tcpdump prints them.
pub(crate) fn control_protocol_name(protocol: u16) -> Option<&'static str> {
    Some(match protocol {
        0xc021 => "LCP",
        0x8021 => "IPCP",
        0x8023 => "OSICP",
        0x8057 => "IP6CP",
        0x80fd => "CCP",
        0x8281 => "MPLSCP",
        0xc02b => "BACP",
        _ => return None,
    })
}

/// Names of the LCP packet codes (RFC 1661, RFC 1570, RFC 1962), shared by the protocols above.
pub(crate) fn control_code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "Vendor-Extension",
        1 => "Conf-Request",
        2 => "Conf-Ack",
        3 => "Conf-Nack",
        4 => "Conf-Reject",
        5 => "Term-Request",
        6 => "Term-Ack",
        7 => "Code-Reject",
        8 => "Prot-Reject",
        9 => "Echo-Request",
        10 => "Echo-Reply",
        11 => "Disc-Req",
        12 => "Ident",
        13 => "Time-Rem",
        14 => "Reset-Req",
        15 => "Reset-Ack",
        _ => return None,
    })
}
