//! Link layers: each file strips one link-layer header and says which network protocol follows.
//! The ethertype chain (VLAN tags, MPLS, PPPoE) shared by several of them lives here.

pub(crate) mod chdlc;
pub(crate) mod ethernet;
pub(crate) mod frelay;
pub(crate) mod null;
pub(crate) mod ppp;
pub(crate) mod raw;
pub(crate) mod sll;
pub(crate) mod sll2;

use crate::bytes::{be16, be32, u8_at};
use crate::decoded::{
    Decoded, Layer, MAX_MPLS_LABELS, MAX_VLAN_TAGS, MplsLabel, StopReason, VlanTag,
};
use crate::linktype;

/// The network protocol found after the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetProto {
    Ipv4,
    Ipv6,
    Arp,
}

/// Ethertypes this crate treats specially.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const QINQ_OLD2: u16 = 0x9200;
}

/// Strips the link layer of `d.data`; returns the network protocol and its offset, or `None`
/// after recording in `d.stop` why there is none.
pub(crate) fn decode(d: &mut Decoded<'_>) -> Option<(NetProto, usize)> {
    match d.link_type {
        linktype::ETHERNET => ethernet::decode(d),
        linktype::LINUX_SLL => sll::decode(d),
        linktype::LINUX_SLL2 => sll2::decode(d),
        linktype::NULL | linktype::LOOP => null::decode(d),
        linktype::RAW
        | linktype::RAW_BSD12
        | linktype::RAW_BSD14
        | linktype::IPV4
        | linktype::IPV6 => raw::decode(d),
        linktype::PPP | linktype::PPP_HDLC => ppp::decode(d),
        linktype::PPP_ETHER => ppp::decode_pppoe_link(d),
        linktype::C_HDLC => chdlc::decode(d),
        linktype::FRELAY => frelay::decode(d),
        _ => {
            d.set_stop(Layer::Link, 0, StopReason::Unsupported);
            None
        }
    }
}

/// Follows an ethertype through VLAN tags, MPLS labels and PPPoE sessions to a network protocol.
pub(crate) fn by_ethertype(
    d: &mut Decoded<'_>,
    mut ethertype: u16,
    mut off: usize,
) -> Option<(NetProto, usize)> {
    loop {
        d.link.ethertype = Some(ethertype);
        d.link.payload_offset = off;
        match ethertype {
            ethertype::IPV4 => return Some((NetProto::Ipv4, off)),
            ethertype::IPV6 => return Some((NetProto::Ipv6, off)),
            ethertype::ARP | ethertype::RARP => return Some((NetProto::Arp, off)),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2 => {
                let (Some(tci), Some(inner)) = (be16(d.data, off), be16(d.data, off + 2)) else {
                    d.set_stop(Layer::Vlan, off, StopReason::Truncated);
                    return None;
                };
                let n = d.link.vlan_count as usize;
                if n < MAX_VLAN_TAGS {
                    d.link.vlan_tags[n] = VlanTag {
                        tpid: ethertype,
                        vid: tci & 0x0fff,
                        pcp: (tci >> 13) as u8,
                        dei: tci & 0x1000 != 0,
                    };
                }
                d.link.vlan_count = d.link.vlan_count.saturating_add(1);
                ethertype = inner;
                off += 4;
            }
            ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => return mpls(d, off),
            ethertype::PPPOE_SESSION => return ppp::pppoe_session(d, off),
            _ => {
                d.set_stop(Layer::Link, off, StopReason::Unsupported);
                return None;
            }
        }
    }
}

/// Walks an MPLS label stack; after bottom of stack, reserved labels 0/3 (IPv4) and 2 (IPv6)
/// decide, otherwise the first payload byte is taken as the IP version nibble.
pub(crate) fn mpls(d: &mut Decoded<'_>, mut off: usize) -> Option<(NetProto, usize)> {
    loop {
        let Some(entry) = be32(d.data, off) else {
            d.set_stop(Layer::Mpls, off, StopReason::Truncated);
            return None;
        };
        let label = MplsLabel {
            label: entry >> 12,
            tc: ((entry >> 9) & 7) as u8,
            bottom_of_stack: entry & 0x100 != 0,
            ttl: entry as u8,
        };
        let n = d.link.mpls_count as usize;
        if n < MAX_MPLS_LABELS {
            d.link.mpls_labels[n] = label;
        }
        d.link.mpls_count = d.link.mpls_count.saturating_add(1);
        off += 4;
        d.link.payload_offset = off;
        if !label.bottom_of_stack {
            continue;
        }
        let proto = match label.label {
            0 | 3 => Some(NetProto::Ipv4),
            2 => Some(NetProto::Ipv6),
            _ => match u8_at(d.data, off) {
                Some(0x45..=0x4f) => Some(NetProto::Ipv4),
                Some(0x60..=0x6f) => Some(NetProto::Ipv6),
                Some(_) => None,
                None => {
                    d.set_stop(Layer::Mpls, off, StopReason::Complete);
                    return None;
                }
            },
        };
        return match proto {
            Some(p) => Some((p, off)),
            None => {
                d.set_stop(Layer::Mpls, off, StopReason::Unsupported);
                None
            }
        };
    }
}
