//! Network-layer part of a line: `IP`, `IP6` (with extension headers as tcpdump shows them:
//! `HBH`, `DSTOPT`, `RT6 (…)`, `frag (off|len)`, `AH(…)`) and `ARP`, then the transport demux.

use super::{Printer, fmt, icmp, tcp, udp};
use crate::bytes::{array, be16, be32, u8_at};
use crate::decoded::{Arp, Ipv4, Ipv6, Layer, Net, StopReason};
use crate::net::{proto, wire_left};

/// The addresses of the IP header a transport header sits in, and whether that IP header names
/// the transport protocol directly (then tcpdump prints `addr.port > addr.port`, otherwise
/// only `port > port`, e.g. after IPv6 extension headers or AH).
#[derive(Clone, Copy)]
pub(crate) struct IpCtx {
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The protocol field of the fixed header (IPv4 protocol, IPv6 first next-header).
    pub header_proto: u8,
    /// IPv4 MF flag, or an IPv6 fragment header present.
    pub fragmented: bool,
}

impl IpCtx {
    pub fn push_src(&self, out: &mut Vec<u8>) {
        push_addr(out, self.v6, &self.src);
    }
    pub fn push_dst(&self, out: &mut Vec<u8>) {
        push_addr(out, self.v6, &self.dst);
    }
    /// `src.sport > dst.dport: ` when the IP header names the transport protocol directly
    /// (`direct`), else `sport > dport: `, as tcpdump begins a TCP or UDP line.
    pub fn push_ports(&self, out: &mut Vec<u8>, direct: bool, sport: u16, dport: u16) {
        if direct {
            self.push_src(out);
            out.push(b'.');
        }
        fmt::push_u32(out, sport.into());
        out.extend_from_slice(b" > ");
        if direct {
            self.push_dst(out);
            out.push(b'.');
        }
        fmt::push_u32(out, dport.into());
        out.extend_from_slice(b": ");
    }

    /// `src > dst` as tcpdump prints it for the IP layer.
    pub fn push_pair(&self, out: &mut Vec<u8>) {
        self.push_src(out);
        out.extend_from_slice(b" > ");
        self.push_dst(out);
    }
}

fn push_addr(out: &mut Vec<u8>, v6: bool, a: &[u8; 16]) {
    if v6 {
        fmt::push_ipv6(out, a);
    } else {
        fmt::push_ipv4(out, &[a[0], a[1], a[2], a[3]]);
    }
}

fn widen(a: [u8; 4]) -> [u8; 16] {
    let mut w = [0u8; 16];
    w[..4].copy_from_slice(&a);
    w
}

pub(crate) fn print_net(p: &mut Printer<'_, '_>) {
    let d = p.d;
    match d.net {
        Net::Ipv4(ip) => ipv4(p, &ip),
        Net::Ipv6(ip) => ipv6(p, &ip),
        Net::Arp(arp) => print_arp(p, &arp),
        Net::None => match d.stop.layer {
            Layer::Ipv4 => match d.stop.reason {
                // tcpdump checks the version before the header length.
                StopReason::Malformed(_) => {
                    let v = u8_at(d.data, d.stop.offset).unwrap_or(0) >> 4;
                    if v == 6 {
                        p.s("IP6, wrong link-layer encapsulation (invalid)");
                    } else {
                        p.s("IP");
                        p.u(v.into());
                        p.s(" (invalid)");
                    }
                }
                _ => {
                    p.s("IP ");
                    p.trunc("ip");
                }
            },
            Layer::Ipv6 => match d.stop.reason {
                // tcpdump checks the version only once the fixed header is all there.
                StopReason::Malformed(_) if d.data.len() >= d.stop.offset + 40 => {
                    p.s("IP6 version error: ");
                    p.u((u8_at(d.data, d.stop.offset).unwrap_or(0) >> 4).into());
                    p.s(" != 6");
                }
                // A cut fixed header: tcpdump has not printed "IP6" yet.
                _ => p.trunc("ip6"),
            },
            _ => {
                p.s("ARP, ");
                p.s("[|arp]");
            }
        },
    }
}

fn ipv4(p: &mut Printer<'_, '_>, ip: &Ipv4<'_>) {
    let d = p.d;
    p.s("IP ");
    let hlen = u32::from(ip.header_len);
    if hlen < 20 {
        p.s("bad-hlen ");
        p.u(hlen);
        return;
    }
    let left = wire_left(d.wire_len, ip.offset);
    let total = u32::from(ip.total_len);
    if left < total {
        p.s("truncated-ip - ");
        p.u(total - left);
        p.s(" bytes missing! ");
    }
    // Debian's tcpdump is built without GUESS_TSO: a total length of 0 (left by TCP
    // segmentation offload) is reported as bad like any other too-small length.
    if total < hlen {
        p.s("bad-len ");
        p.u(total);
        return;
    }
    let len = total;
    let ctx = IpCtx {
        v6: false,
        src: widen(ip.src),
        dst: widen(ip.dst),
        header_proto: ip.protocol,
        fragmented: ip.fragment.more_fragments,
    };
    if ip.fragment.offset != 0 {
        ctx.push_pair(p.out);
        p.s(": ip-proto-");
        p.u(ip.protocol.into());
        return;
    }
    // TCP and UDP print `addr.port > addr.port` themselves; everything else, including SCTP
    // and DCCP in their generic form here, gets the address pair first.
    if !matches!(ip.protocol, proto::TCP | proto::UDP) {
        ctx.push_pair(p.out);
        p.s(": ");
    }
    if d.data.len() < ip.offset + hlen as usize {
        p.s(" [remaining caplen(");
        p.u(d.data.len().saturating_sub(ip.offset) as u32);
        p.s(") < header length(");
        p.u(hlen);
        p.s(")] [|ip]");
        return;
    }
    demux(p, &ctx, ip.protocol, ip.offset + hlen as usize, len - hlen);
}

fn ipv6(p: &mut Printer<'_, '_>, ip: &Ipv6<'_>) {
    let d = p.d;
    p.s("IP6 ");
    let left = wire_left(d.wire_len, ip.offset);
    // Payload length 0 is a jumbogram: tcpdump takes the length from the wire.
    let mut len = if ip.payload_len == 0 {
        left
    } else {
        40 + u32::from(ip.payload_len)
    };
    if ip.payload_len != 0 && left < len {
        p.s("truncated-ip6 - ");
        p.u(len - left);
        p.s(" bytes missing!");
    }
    let ctx = IpCtx {
        v6: true,
        src: ip.src,
        dst: ip.dst,
        header_proto: ip.next_header,
        fragmented: ip.fragment.is_some(),
    };
    if !matches!(ip.next_header, proto::TCP | proto::UDP) {
        ctx.push_pair(p.out);
        p.s(": ");
    }
    len -= 40;
    let mut chain = crate::net::ipv6::ExtChain::new(d.data, ip.offset + 40, ip.next_header);
    for ext in chain.by_ref() {
        let (ext_offset, ext_len) = (ext.offset as usize, ext.len as usize);
        match ext.kind {
            proto::HOPOPTS => p.s("HBH "),
            proto::DSTOPTS => p.s("DSTOPT "),
            proto::ROUTING => routing(p, ext_offset),
            proto::FRAGMENT => {
                let offlg = be16(d.data, ext_offset + 2).unwrap_or(0);
                let consumed = (ext_offset - ip.offset) as u32;
                let remaining = (40 + u32::from(ip.payload_len))
                    .wrapping_sub(consumed)
                    .wrapping_sub(8);
                p.s("frag (");
                p.u(u32::from(offlg & 0xfff8));
                p.s("|");
                p.u(remaining);
                p.s(")");
                if offlg & 0xfff8 != 0 {
                    return;
                }
                p.s(" ");
            }
            proto::AH => {
                ah(p, ext_offset, ext_len);
            }
            _ => {}
        }
        len = len.saturating_sub(ext.len);
    }
    match chain.end {
        Some(StopReason::Encrypted) => esp(p, chain.pos, len),
        Some(StopReason::NoNextHeader) | Some(StopReason::Fragment) => {}
        Some(StopReason::Truncated) if chain.next_header == proto::HOPOPTS => p.trunc("hbhopt"),
        Some(_) => p.trunc("ip6"),
        None => demux(p, &ctx, chain.next_header, chain.pos, len),
    }
}

/// IPv6 routing header: `RT6 (len=N, type=T[ [Deprecated]], segleft=S[, [i]addr…]) `.
fn routing(p: &mut Printer<'_, '_>, off: usize) {
    let data = p.d.data;
    let len = u8_at(data, off + 1).unwrap_or(0);
    let rtype = u8_at(data, off + 2).unwrap_or(0);
    let segleft = u8_at(data, off + 3).unwrap_or(0);
    p.s("RT6 (len=");
    p.u(len.into());
    p.s(", type=");
    p.u(rtype.into());
    if rtype == 0 {
        p.s(" [Deprecated]");
    }
    p.s(", segleft=");
    p.u(segleft.into());
    match rtype {
        0 | 2 => {
            for i in 0..usize::from(len / 2) {
                let Some(a) = array::<16>(data, off + 8 + 16 * i) else {
                    break;
                };
                p.s(", [");
                p.u(i as u32);
                p.s("]");
                fmt::push_ipv6(p.out, &a);
            }
        }
        4 => {
            let last = u8_at(data, off + 4).unwrap_or(0);
            p.s(", last-entry=");
            p.u(last.into());
            p.s(", flags=0x");
            fmt::push_hex(p.out, u8_at(data, off + 5).unwrap_or(0).into());
            p.s(", tag=");
            fmt::push_hex(p.out, be16(data, off + 6).unwrap_or(0).into());
            for i in 0..=usize::from(last) {
                let Some(a) = array::<16>(data, off + 8 + 16 * i) else {
                    break;
                };
                p.s(", [");
                p.u(i as u32);
                p.s("]");
                fmt::push_ipv6(p.out, &a);
            }
        }
        _ => {}
    }
    p.s(") ");
}

/// `AH(spi=0x…,seq=0x…,icv=0x…): `
fn ah(p: &mut Printer<'_, '_>, off: usize, len: usize) {
    let data = p.d.data;
    p.s("AH(spi=0x");
    fmt::push_hex_padded(p.out, be32(data, off + 4).unwrap_or(0), 8);
    p.s(",seq=0x");
    fmt::push_hex(p.out, be32(data, off + 8).unwrap_or(0));
    p.s(",icv=0x");
    for &b in crate::bytes::clamp(data, off + 12, off + len) {
        fmt::push_hex2(p.out, b);
    }
    p.s("): ");
}

fn esp(p: &mut Printer<'_, '_>, off: usize, len: u32) {
    let data = p.d.data;
    match (be32(data, off), be32(data, off + 4)) {
        (Some(spi), Some(seq)) => {
            p.s("ESP(spi=0x");
            fmt::push_hex_padded(p.out, spi, 8);
            p.s(",seq=0x");
            fmt::push_hex(p.out, seq);
            p.s("), length ");
            p.u(len);
        }
        _ => p.trunc("esp"),
    }
}

/// Hands the IP payload at `off` (`len` bytes on the wire) to the transport printers.
pub(crate) fn demux(p: &mut Printer<'_, '_>, ctx: &IpCtx, protocol: u8, off: usize, len: u32) {
    let d = p.d;
    match protocol {
        proto::TCP => tcp::print(p, ctx, off, len),
        proto::UDP => udp::print(p, ctx, off, len),
        proto::ICMP if !ctx.v6 => icmp::print_icmp(p, off, len),
        proto::ICMPV6 => icmp::print_icmp6(p, off, len),
        proto::IPIP | proto::IPV6 => {
            // IP in IP: decode the inner datagram on its own and print it in line.
            let inner_link = if protocol == proto::IPIP {
                crate::linktype::IPV4
            } else {
                crate::linktype::IPV6
            };
            let rest = crate::bytes::clamp(d.data, off, d.data.len());
            let inner = crate::decode_with_wire_len(inner_link, rest, len);
            let mut q = Printer {
                out: p.out,
                d: &inner,
                seq: p.seq,
                absolute_seq: p.absolute_seq,
            };
            print_net(&mut q);
        }
        proto::ESP => esp(p, off, len),
        proto::NONE if ctx.v6 => p.s("no next header"),
        _ => {
            p.s(" ip-proto-");
            p.u(protocol.into());
            p.s(" ");
            p.u(len);
        }
    }
}

fn print_arp(p: &mut Printer<'_, '_>, arp: &Arp<'_>) {
    let d = p.d;
    if d.stop.reason == StopReason::Truncated {
        p.trunc("arp");
        return;
    }
    if arp.hardware_type == 19 {
        return atm_arp(p, arp.offset);
    }
    p.s("ARP, ");
    let ip_like =
        (arp.protocol_type == 0x0800 || arp.protocol_type == 0x1000) && arp.protocol_len == 4;
    if !ip_like || arp.hardware_len == 0 {
        match arp.hardware_type {
            1 => p.s("Ethernet"),
            6 => p.s("TokenRing"),
            15 => p.s("FrameRelay"),
            19 => p.s("ATM"),
            _ => {
                p.s("Unknown Hardware (");
                p.u(arp.hardware_type.into());
                p.s(")");
            }
        }
        p.s(" (len ");
        p.u(arp.hardware_len.into());
        p.s("), ");
        match super::link::ethertype_known_name(arp.protocol_type) {
            Some(n) => p.s(n),
            None => {
                p.s("Unknown Protocol (0x");
                fmt::push_hex_padded(p.out, arp.protocol_type.into(), 4);
                p.s(")");
            }
        }
        p.s(" (len ");
        p.u(arp.protocol_len.into());
        p.s("), length ");
        p.u(wire_left(d.wire_len, arp.offset));
        return;
    }
    let op = arp.operation;
    match op {
        1 => p.s("Request who-has "),
        2 => p.s("Reply "),
        3 => p.s("Reverse Request who-is "),
        4 => p.s("Reverse Reply "),
        8 => p.s("Inverse Request who-is "),
        9 => p.s("Inverse Reply "),
        10 => p.s("NACK Reply "),
        _ => {
            p.s("Unknown (");
            p.u(op.into());
            p.s(") ");
            fmt::push_hexdump(p.out, crate::bytes::clamp(d.data, arp.offset, d.data.len()));
            return;
        }
    }
    let proto_addr = |p: &mut Printer<'_, '_>, a: &[u8]| {
        if a.len() == 4 {
            fmt::push_ipv4(p.out, &[a[0], a[1], a[2], a[3]]);
        } else {
            p.s("<wrong len>");
        }
    };
    match op {
        1 => {
            proto_addr(p, arp.target_proto);
            if arp.target_hw.iter().any(|&b| b != 0) {
                p.s(" (");
                fmt::push_mac(p.out, arp.target_hw);
                p.s(")");
            }
            p.s(" tell ");
            proto_addr(p, arp.sender_proto);
        }
        2 => {
            proto_addr(p, arp.sender_proto);
            p.s(" is-at ");
            fmt::push_mac(p.out, arp.sender_hw);
        }
        // RARP and InARP requests read the same: who has this hardware address.
        3 | 8 => {
            fmt::push_mac(p.out, arp.target_hw);
            p.s(" tell ");
            fmt::push_mac(p.out, arp.sender_hw);
        }
        4 => {
            fmt::push_mac(p.out, arp.target_hw);
            p.s(" at ");
            proto_addr(p, arp.target_proto);
        }
        9 => {
            fmt::push_mac(p.out, arp.sender_hw);
            p.s(" at ");
            proto_addr(p, arp.sender_proto);
        }
        _ => {}
    }
    p.s(", length ");
    p.u(wire_left(d.wire_len, arp.offset));
}

/// ATM ARP (RFC 2225, hardware type 19) lays its addresses out differently; tcpdump decodes it
/// with its own printer. Here only its length check is reproduced, then a short summary.
fn atm_arp(p: &mut Printer<'_, '_>, off: usize) {
    let d = p.d.data;
    let l = |i: usize| usize::from(u8_at(d, off + i).unwrap_or(0) & 0x3f);
    let tpa = off + 12 + l(4) + l(5) + l(8) + l(9) + l(10);
    if d.len() < tpa + l(11) || d.len() < off + 12 {
        return p.trunc("arp");
    }
    p.s("ARP, ATM (RFC 2225), op ");
    p.u(be16(d, off + 6).unwrap_or(0).into());
    p.s(", length ");
    p.u(wire_left(p.d.wire_len, off));
}
