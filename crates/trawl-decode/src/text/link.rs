//! Link-layer part of a line: what tcpdump prints without `-e` (usually nothing), the shims it
//! does show (MPLS labels, PPPoE session, SLL2 interface and direction), and the fallbacks for
//! payloads it cannot decode.

use super::{Printer, fmt, ip};
use crate::decoded::{Layer, LinkKind, Net, StopReason};
use crate::link::ethertype;

pub(crate) fn print(p: &mut Printer<'_, '_>) {
    let d = p.d;
    let link = &d.link;
    // Link headers shorter than their fixed size.
    if d.stop.layer == Layer::Link && d.stop.reason == StopReason::Truncated && d.stop.offset == 0 {
        let name = match link.kind {
            LinkKind::Ethernet => "ether",
            LinkKind::LinuxSll => "sll",
            LinkKind::LinuxSll2 => "sll2",
            LinkKind::Null => "null",
            LinkKind::CiscoHdlc => "chdlc",
            LinkKind::FrameRelay => "fr",
            LinkKind::Ppp | LinkKind::PppHdlc => "ppp",
            _ => "link",
        };
        p.trunc(name);
        return;
    }
    if let (LinkKind::LinuxSll2, Some(sll)) = (link.kind, link.sll) {
        {
            // tcpdump prints the interface name from if_indextoname() on the reading host, which
            // a pure decoder cannot know; "?" is what it prints for an unknown index.
            p.s("?     ");
            let dir = match sll.packet_type {
                0 => "In ",
                1 => "B  ",
                2 => "M  ",
                3 => "P  ",
                4 => "Out",
                _ => "?  ",
            };
            p.s(dir);
            p.s(" ");
        }
    }
    if let Some(session) = link.pppoe_session {
        p.s("PPPoE [ses 0x");
        fmt::push_hex(p.out, session.into());
        p.s("] ");
    }
    if link.mpls_count > 0 {
        p.s("MPLS");
        for l in link.mpls() {
            p.s(" (label ");
            p.u(l.label);
            p.s(", tc ");
            p.u(l.tc.into());
            if l.bottom_of_stack {
                p.s(", [S]");
            }
            p.s(", ttl ");
            p.u(l.ttl.into());
            p.s(")");
        }
        if d.stop.layer == Layer::Mpls {
            match d.stop.reason {
                StopReason::Truncated => p.trunc("mpls"),
                StopReason::Unsupported => {
                    fmt::push_hexdump(p.out, &d.data[d.stop.offset.min(d.data.len())..])
                }
                _ => {}
            }
            return;
        }
        p.s(" ");
    }
    match d.net {
        Net::Ipv4(_) | Net::Ipv6(_) | Net::Arp(_) => ip::print_net(p),
        Net::None => unsupported(p),
    }
}

/// Nothing decodable after the link layer: say what was there.
fn unsupported(p: &mut Printer<'_, '_>) {
    let d = p.d;
    let link = &d.link;
    let stop = d.stop;
    match stop.layer {
        Layer::Ipv4 | Layer::Ipv6 | Layer::Arp => return ip::print_net(p),
        Layer::Vlan => return p.trunc("vlan"),
        Layer::Pppoe => return p.trunc("pppoe"),
        _ => {}
    }
    let rest = &d.data[link.payload_offset.min(d.data.len())..];
    match link.kind {
        LinkKind::Ethernet | LinkKind::LinuxSll | LinkKind::LinuxSll2 => {
            if let (Some(src), Some(dst)) = (link.src_mac, link.dst_mac) {
                fmt::push_mac(p.out, &src.0);
                p.s(" > ");
                fmt::push_mac(p.out, &dst.0);
                p.s(", ");
            }
            if let Some(llc) = link.llc {
                p.s("802.3, length ");
                p.u(d.wire_len);
                p.s(": LLC, dsap 0x");
                fmt::push_hex2(p.out, llc.dsap);
                p.s(", ssap 0x");
                fmt::push_hex2(p.out, llc.ssap);
                p.s(", ctrl 0x");
                fmt::push_hex2(p.out, llc.control);
                if let Some(oui) = llc.snap_oui {
                    p.s(", oui 0x");
                    fmt::push_hex_padded(p.out, oui, 6);
                }
                return;
            }
            match link.ethertype {
                Some(t) => {
                    p.s("ethertype ");
                    p.s(ethertype_name(t));
                    p.s(" (0x");
                    fmt::push_hex_padded(p.out, t.into(), 4);
                    p.s("), length ");
                }
                None => {
                    p.s("protocol 0x");
                    fmt::push_hex_padded(p.out, link.sll.map_or(0, |s| s.protocol).into(), 4);
                    p.s(", length ");
                }
            }
            p.u(d.wire_len);
            p.s(": ");
            fmt::push_hexdump(p.out, rest);
        }
        LinkKind::Null => {
            p.s("AF Unknown (");
            p.u(link.null_family.unwrap_or(0));
            p.s("), length ");
            p.u(d.wire_len);
            p.s(": ");
            fmt::push_hexdump(p.out, rest);
        }
        LinkKind::Raw => {
            p.s("ip version ");
            p.u(d.data.first().map_or(0, |b| b >> 4).into());
        }
        LinkKind::Ppp | LinkKind::PppHdlc | LinkKind::PppEther => {
            match link.ppp_protocol {
                Some(proto) => {
                    p.s("unknown PPP protocol (0x");
                    fmt::push_hex_padded(p.out, proto.into(), 4);
                    p.s(")");
                }
                None => p.s("PPP"),
            }
            p.s(", length ");
            p.u(d.wire_len);
        }
        LinkKind::CiscoHdlc => {
            p.s("CHDLC, ethertype ");
            let t = link.ethertype.unwrap_or(0);
            p.s(ethertype_name(t));
            p.s(" (0x");
            fmt::push_hex_padded(p.out, t.into(), 4);
            p.s("), length ");
            p.u(d.wire_len);
        }
        LinkKind::FrameRelay => {
            p.s("Q.922");
            if let Some(fr) = link.frame_relay {
                p.s(", DLCI ");
                p.u(fr.dlci);
                p.s(", flags [");
                let mut any = false;
                for (set, name) in [
                    (fr.cr, "Command"),
                    (fr.fecn, "FECN"),
                    (fr.becn, "BECN"),
                    (fr.de, "DE"),
                ] {
                    if set {
                        if any {
                            p.s(", ");
                        }
                        p.s(name);
                        any = true;
                    }
                }
                if !any {
                    p.s("none");
                }
                p.s("]");
                if let Some(nlpid) = fr.nlpid {
                    p.s(", NLPID 0x");
                    fmt::push_hex2(p.out, nlpid);
                }
            }
            p.s(", length ");
            p.u(d.wire_len);
        }
        LinkKind::Unknown => {
            p.s("unsupported link-type ");
            p.u(d.link_type);
            p.s(", length ");
            p.u(d.wire_len);
        }
    }
    if stop.reason == StopReason::Truncated && stop.layer == Layer::Link {
        p.trunc("link");
    }
}

/// Names tcpdump gives ethertypes in "ethertype NAME (0x….)".
pub(crate) fn ethertype_name(t: u16) -> &'static str {
    ethertype_known_name(t).unwrap_or("Unknown")
}

pub(crate) fn ethertype_known_name(t: u16) -> Option<&'static str> {
    Some(match t {
        ethertype::IPV4 => "IPv4",
        ethertype::ARP => "ARP",
        ethertype::IPV6 => "IPv6",
        ethertype::RARP => "Reverse ARP",
        ethertype::VLAN => "802.1Q",
        ethertype::QINQ => "802.1Q-QinQ",
        ethertype::QINQ_OLD => "802.1Q-9100",
        ethertype::QINQ_OLD2 => "802.1Q-9200",
        ethertype::MPLS_UNICAST => "MPLS unicast",
        ethertype::MPLS_MULTICAST => "MPLS multicast",
        ethertype::PPPOE_DISCOVERY => "PPPoE D",
        ethertype::PPPOE_SESSION => "PPPoE S",
        0x0200 => "PUP",
        0x6002 => "MOP RC",
        0x6003 => "DN",
        0x6004 => "LAT",
        0x8137 => "IPX",
        0x809b => "Appletalk",
        0x80f3 => "Appletalk ARP",
        0x8809 => "Slow Protocols",
        0x880b => "PPP",
        0x888e => "EAPOL",
        0x88cc => "LLDP",
        0x8902 => "CFM",
        0x88e5 => "MACsec",
        0x88f7 => "PTP",
        0x9000 => "Loopback",
        0x8906 => "FCoE",
        0x8914 => "FIP",
        0x22f3 => "TRILL",
        _ => return None,
    })
}
