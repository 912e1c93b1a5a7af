//! Link-layer part of a line: what tcpdump prints without `-e` (usually nothing), the shims it
//! does show (MPLS labels, PPPoE session, SLL2 interface and direction), and the fallbacks for
//! payloads it cannot decode.

use super::{Printer, fmt, ip};
use crate::bytes::{be16, u8_at};
use crate::decoded::{FrameRelay, Layer, LinkKind, Net, Slarp, StopReason};
use crate::link::{chdlc, ethertype, frelay, ppp};
use crate::net::wire_left;

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
    if let Some(fr) = link.frame_relay {
        frame_relay_prefix(p, &fr);
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
        // tcpdump prints the PPPoE code name after "PPPoE "; for session data it is empty.
        p.s("PPPoE  [ses 0x");
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
        Layer::Pppoe => {
            return match (stop.reason, link.ppp_protocol) {
                (StopReason::Unsupported, Some(proto)) => {
                    ppp_protocol(p, proto, link.payload_offset)
                }
                _ => p.trunc("pppoe"),
            };
        }
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
        LinkKind::Ppp | LinkKind::PppHdlc | LinkKind::PppEther => match link.ppp_protocol {
            Some(proto) => ppp_protocol(p, proto, link.payload_offset),
            None => {
                p.s("PPP, length ");
                p.u(d.wire_len);
            }
        },
        LinkKind::CiscoHdlc => return chdlc(p),
        LinkKind::FrameRelay => return frame_relay(p),
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

/// What tcpdump prints before the payload of a Frame Relay frame whose header is irregular: a
/// control byte other than UI, a pad byte where the address length does not call for one, or
/// none where it does.
fn frame_relay_prefix(p: &mut Printer<'_, '_>, fr: &FrameRelay) {
    let Some(control) = fr.control else {
        return;
    };
    if control != frelay::CONTROL_UI {
        p.s("UI ");
        fmt::push_hex2(p.out, control);
        p.s("! ");
    }
    if fr.nlpid.is_none() {
        return;
    }
    match (fr.pad, fr.address_len == 3) {
        (true, false) => p.s("Pad! "),
        (false, true) => p.s("No pad! "),
        _ => {}
    }
}

/// A Frame Relay frame whose payload is not IP, ARP or MPLS: tcpdump's Q.922 header summary
/// (what it prints for NLPIDs it has no printer for), then the rest as a hex dump.
fn frame_relay(p: &mut Printer<'_, '_>) {
    let d = p.d;
    let stop = d.stop;
    let Some(fr) = d.link.frame_relay else {
        match stop.reason {
            StopReason::Malformed(_) => p.s("Q.922, invalid address"),
            _ => p.trunc("fr"),
        }
        return;
    };
    let payload = d.link.payload_offset;
    match (stop.reason, fr.nlpid) {
        (StopReason::Truncated, Some(frelay::NLPID_SNAP)) => return p.trunc("snap"),
        (StopReason::Truncated, Some(frelay::NLPID_PPP)) => return p.trunc("ppp"),
        (StopReason::Truncated, _) => return p.trunc("fr"),
        (_, Some(frelay::NLPID_PPP)) => {
            if let Some(proto) = d.link.ppp_protocol {
                ppp_protocol(p, proto, payload);
            }
            return;
        }
        _ => {}
    }
    let nlpid = fr.nlpid.unwrap_or(0);
    let snap_ethertype =
        if nlpid == frelay::NLPID_SNAP && d.data.get(payload..payload + 3) == Some(&[0, 0, 0]) {
            be16(d.data, payload + 3)
        } else {
            None
        };
    let Some(t) = snap_ethertype else {
        frame_relay_header(p, &fr, fr.address_len.into());
        fmt::push_hexdump(p.out, &d.data[payload.min(d.data.len())..]);
        return;
    };
    // SNAP with an ethertype tcpdump has no printer for: the SNAP summary, the Q.922 header
    // (now with the full header length), and the whole frame in hex.
    p.s("SNAP, ethertype ");
    p.s(ethertype_name(t));
    p.s(" (0x");
    fmt::push_hex_padded(p.out, t.into(), 4);
    p.s("), length ");
    p.u(wire_left(d.wire_len, payload + 5));
    p.s(": ");
    frame_relay_header(p, &fr, payload as u32);
    fmt::push_hexdump(p.out, d.data);
}

/// `Q.922, hdr-len N, DLCI N, Flags [...], NLPID NAME (0x..), length N: `
fn frame_relay_header(p: &mut Printer<'_, '_>, fr: &FrameRelay, hdr_len: u32) {
    p.s("Q.922, hdr-len ");
    p.u(hdr_len);
    p.s(", DLCI ");
    p.u(fr.dlci);
    p.s(", Flags [");
    let mut any = false;
    for (set, name) in [
        (fr.cr, "C!"),
        (fr.de, "DE"),
        (fr.becn, "BECN"),
        (fr.fecn, "FECN"),
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
    p.s("], NLPID ");
    let nlpid = fr.nlpid.unwrap_or(0);
    p.s(match nlpid {
        0x00 => "NULL",
        0x08 => "Q.933",
        0x80 => "SNAP",
        0x81 => "CLNP",
        0x82 => "ES-IS",
        0x83 => "IS-IS",
        0x8e => "IPv6",
        0xb1 => "FRF.15",
        0xcc => "IPv4",
        0xcf => "PPP",
        _ => "unknown",
    });
    p.s(" (0x");
    fmt::push_hex2(p.out, nlpid);
    p.s("), length ");
    p.u(p.d.wire_len);
    p.s(": ");
}

/// Cisco HDLC payloads other than IP and MPLS: SLARP, or tcpdump's line for the rest.
fn chdlc(p: &mut Printer<'_, '_>) {
    let d = p.d;
    let protocol = d.link.ethertype.unwrap_or(0);
    if protocol != chdlc::PROTO_SLARP {
        p.s("unknown CHDLC protocol (0x");
        fmt::push_hex_padded(p.out, protocol.into(), 4);
        p.s(")");
        return;
    }
    p.s("SLARP (length: ");
    p.u(wire_left(d.wire_len, chdlc::HEADER_LEN));
    p.s("), ");
    match d.link.slarp {
        None => p.trunc("chdlc_slarp"),
        Some(Slarp::Request { .. }) => p.s("request"),
        Some(Slarp::Reply { address, mask }) => {
            p.s("reply ");
            fmt::push_ipv4(p.out, &address);
            p.s("/");
            fmt::push_ipv4(p.out, &mask);
        }
        Some(Slarp::Keepalive {
            mine_seen,
            your_seen,
            reliability,
            uptime_ms,
        }) => {
            p.s("keepalive: mineseen=0x");
            fmt::push_hex_padded(p.out, mine_seen, 8);
            p.s(", yourseen=0x");
            fmt::push_hex_padded(p.out, your_seen, 8);
            p.s(", reliability=0x");
            fmt::push_hex_padded(p.out, reliability.into(), 4);
            if let Some(ms) = uptime_ms {
                let secs = ms / 1000;
                p.s(", link uptime=");
                p.u(secs / 86_400);
                p.s("d");
                p.u(secs % 86_400 / 3600);
                p.s("h");
                p.u(secs % 3600 / 60);
                p.s("m");
                p.u(secs % 60);
                p.s("s");
            }
        }
        Some(Slarp::Other { code }) => {
            p.s("0x");
            fmt::push_hex_padded(p.out, code, 2);
            p.s(" unknown");
            let rest = chdlc::HEADER_LEN + 4;
            fmt::push_hexdump_plain(p.out, &d.data[rest.min(d.data.len())..]);
        }
    }
}

/// A PPP payload that is not IP or MPLS: the summary line of a control protocol (LCP, IPCP…),
/// or tcpdump's `unknown PPP protocol (0x….)` and a hex dump.
fn ppp_protocol(p: &mut Printer<'_, '_>, protocol: u16, payload: usize) {
    let d = p.d;
    let Some(name) = ppp::control_protocol_name(protocol) else {
        p.s("unknown PPP protocol (0x");
        fmt::push_hex_padded(p.out, protocol.into(), 4);
        p.s(") ");
        fmt::push_hexdump_plain(p.out, &d.data[payload.min(d.data.len())..]);
        return;
    };
    p.s(name);
    p.s(", ");
    let (Some(code), Some(id), Some(_length)) = (
        u8_at(d.data, payload),
        u8_at(d.data, payload + 1),
        be16(d.data, payload + 2),
    ) else {
        p.s("[|");
        p.s(name);
        p.s("]");
        return;
    };
    match ppp::control_code_name(code) {
        Some(c) => p.s(c),
        None => p.s("Unknown Opcode"),
    }
    p.s(" (0x");
    fmt::push_hex2(p.out, code);
    p.s("), id ");
    p.u(id.into());
    p.s(", length ");
    // tcpdump counts the protocol field in this length.
    p.u(wire_left(d.wire_len, payload) + 2);
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
