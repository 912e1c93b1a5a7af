//! UDP part of a line, with the payload printers tcpdump applies by port that this crate
//! implements: DNS (53), mDNS (5353), BOOTP/DHCP (67/68), NTP (123), RIP (520). Other ports get
//! `UDP, length N`.

use super::ip::IpCtx;
use super::{Printer, dns, fmt};
use crate::bytes::{be16, clamp, u8_at};

pub(crate) fn print(p: &mut Printer<'_, '_>, ctx: &IpCtx, off: usize, length: u32) {
    let data = p.d.data;
    let direct = ctx.header_proto == crate::net::proto::UDP;
    let addrs_only = |p: &mut Printer<'_, '_>| {
        if direct {
            ctx.push_pair(p.out);
            p.s(": ");
        }
    };
    if length < 8 {
        addrs_only(p);
        p.s("truncated-udp ");
        p.u(length);
        return;
    }
    let (Some(sport), Some(dport)) = (be16(data, off), be16(data, off + 2)) else {
        addrs_only(p);
        return p.trunc("udp");
    };
    let ports = |p: &mut Printer<'_, '_>| ctx.push_ports(p.out, direct, sport, dport);
    let Some(ulen16) = be16(data, off + 4) else {
        ports(p);
        return p.trunc("udp");
    };
    let mut ulen = u32::from(ulen16);
    if ulen == 0 && length > 65535 {
        ulen = length;
    }
    if ulen < 8 {
        ports(p);
        p.s("truncated-udplength ");
        p.u(ulen);
        return;
    }
    ulen -= 8;
    let length = (length - 8).min(ulen);
    if data.len() < off + 8 {
        ports(p);
        return p.trunc("udp");
    }
    ports(p);
    let payload = clamp(data, off + 8, data.len());
    let port = |x: u16| sport == x || dport == x;
    if port(53) {
        dns::print(p, clamp(payload, 0, length as usize), length, false);
    } else if port(5353) {
        dns::print(p, clamp(payload, 0, length as usize), length, true);
    } else if port(67) || port(68) {
        bootp(p, payload, length);
    } else if port(520) {
        rip(p, payload, length);
    } else if port(123) {
        ntp(p, payload, length);
    } else if ulen > length && !ctx.fragmented {
        p.s("UDP, bad length ");
        p.u(ulen);
        p.s(" > ");
        p.u(length);
    } else {
        p.s("UDP, length ");
        p.u(ulen);
    }
}

/// `BOOTP/DHCP, Request from MAC, length N`
fn bootp(p: &mut Printer<'_, '_>, b: &[u8], length: u32) {
    let Some(op) = u8_at(b, 0) else {
        return p.trunc("bootp");
    };
    p.s("BOOTP/DHCP, ");
    match op {
        1 => p.s("Request"),
        2 => p.s("Reply"),
        _ => {
            p.s("unknown (0x");
            fmt::push_hex2(p.out, op);
            p.s(")");
        }
    }
    let (Some(htype), Some(hlen)) = (u8_at(b, 1), u8_at(b, 2)) else {
        return p.trunc("bootp");
    };
    if htype == 1 && hlen == 6 && op == 1 {
        let Some(mac) = b.get(28..34) else {
            return p.trunc("bootp");
        };
        p.s(" from ");
        fmt::push_mac(p.out, mac);
    }
    p.s(", length ");
    p.u(length);
}

/// `RIPv2, Response, length: N`
fn rip(p: &mut Printer<'_, '_>, b: &[u8], length: u32) {
    let (Some(cmd), Some(vers)) = (u8_at(b, 0), u8_at(b, 1)) else {
        return p.trunc("rip");
    };
    p.s("RIPv");
    p.u(vers.into());
    p.s(", ");
    match cmd {
        1 => p.s("Request"),
        2 => p.s("Response"),
        3 => p.s("Trace on"),
        4 => p.s("Trace off"),
        5 => p.s("Poll"),
        6 => p.s("Poll Entry"),
        _ => {
            p.s("unknown command (");
            p.u(cmd.into());
            p.s(")");
        }
    }
    p.s(", length: ");
    p.u(length);
}

/// `NTPv4, Client, length N`
fn ntp(p: &mut Printer<'_, '_>, b: &[u8], length: u32) {
    let Some(status) = u8_at(b, 0) else {
        return p.trunc("ntp");
    };
    p.s("NTPv");
    p.u(((status >> 3) & 7).into());
    p.s(", ");
    p.s(match status & 7 {
        0 => "unspecified",
        1 => "symmetric active",
        2 => "symmetric passive",
        3 => "Client",
        4 => "Server",
        5 => "Broadcast",
        6 => "Control Message",
        _ => "Reserved",
    });
    p.s(", length ");
    p.u(length);
}
