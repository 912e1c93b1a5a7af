//! TCP part of a line, with tcpdump's relative sequence numbers and its payload printers for
//! DNS (port 53), HTTP/RTSP/FTP/SMTP first lines and SSH banners.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ip::IpCtx;
use super::{Printer, dns, fmt};
use crate::bytes::{be16, be32, clamp, u8_at};
use crate::decoded::tcp_flags::{ACK, FIN, RST, SYN, URG};

/// A connection as tcpdump keys it: both directions share one entry, ordered by port (then by
/// address when the ports are equal).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    v6: bool,
    a: [u8; 16],
    b: [u8; 16],
    ports: u32,
}

/// The sequence and acknowledgement numbers of the first ACK-bearing packet of a connection,
/// in the key's direction: what later packets are printed relative to.
#[derive(Clone, Copy)]
struct Base {
    seq: u32,
    ack: u32,
}

/// FxHash-style hasher: the keys are not attacker-chosen in a way that matters for a printer,
/// and SipHash would cost more than the rest of the TCP line.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(v)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u32(v.into());
    }
}

/// Per-connection base sequence numbers (tcpdump's `tcp_seq_hash`). Like tcpdump, entries are
/// never dropped.
#[derive(Default)]
pub(crate) struct SeqTable {
    map: HashMap<ConnKey, Base, BuildHasherDefault<FastHasher>>,
}

impl std::fmt::Debug for SeqTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeqTable({} connections)", self.map.len())
    }
}

impl SeqTable {
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

pub(crate) fn print(p: &mut Printer<'_, '_>, ctx: &IpCtx, off: usize, length: u32) {
    let data = p.d.data;
    let (Some(sport), Some(dport)) = (be16(data, off), be16(data, off + 2)) else {
        ctx.push_pair(p.out);
        p.s(":");
        p.trunc("tcp");
        return;
    };
    let direct = ctx.header_proto == crate::net::proto::TCP;
    ctx.push_ports(p.out, direct, sport, dport);
    let Some(off_byte) = u8_at(data, off + 12) else {
        return p.trunc("tcp");
    };
    let hlen = u32::from(off_byte >> 4) * 4;
    if hlen < 20 {
        p.s(" tcp ");
        p.u(length.wrapping_sub(hlen));
        p.s(" [bad hdr length ");
        p.u(hlen);
        p.s(" - too short, < 20]");
        return;
    }
    let (Some(mut seq), Some(mut ack), Some(win), Some(urp), Some(flags)) = (
        be32(data, off + 4),
        be32(data, off + 8),
        be16(data, off + 14),
        be16(data, off + 18),
        u8_at(data, off + 13),
    ) else {
        return p.trunc("tcp");
    };
    let flags = u16::from(flags);
    p.s("Flags [");
    if flags == 0 {
        p.s("none");
    } else {
        for (bit, c) in [
            (FIN, b'F'),
            (SYN, b'S'),
            (RST, b'R'),
            (0x08, b'P'),
            (ACK, b'.'),
            (URG, b'U'),
            (0x40, b'E'),
            (0x80, b'W'),
        ] {
            if flags & bit != 0 {
                p.out.push(c);
            }
        }
    }
    p.s("]");

    // Relative sequence numbers (tcpdump without -S).
    let (mut base_seq, mut base_ack, mut rev) = (0u32, 0u32, false);
    if !p.absolute_seq && flags & ACK != 0 {
        rev = sport > dport || (sport == dport && addr_gt(ctx));
        let (a, b, ports) = if rev {
            (
                ctx.dst,
                ctx.src,
                (u32::from(dport) << 16) | u32::from(sport),
            )
        } else {
            (
                ctx.src,
                ctx.dst,
                (u32::from(sport) << 16) | u32::from(dport),
            )
        };
        let key = ConnKey {
            v6: ctx.v6,
            a,
            b,
            ports,
        };
        match p.seq.map.get(&key).copied() {
            Some(base) if flags & SYN == 0 => {
                if rev {
                    seq = seq.wrapping_sub(base.ack);
                    ack = ack.wrapping_sub(base.seq);
                } else {
                    seq = seq.wrapping_sub(base.seq);
                    ack = ack.wrapping_sub(base.ack);
                }
                base_seq = base.seq;
                base_ack = base.ack;
            }
            _ => {
                let base = if rev {
                    Base {
                        seq: ack.wrapping_sub(1),
                        ack: seq,
                    }
                } else {
                    Base {
                        seq,
                        ack: ack.wrapping_sub(1),
                    }
                };
                p.seq.map.insert(key, base);
                base_seq = base.seq;
                base_ack = base.ack;
            }
        }
    }

    if hlen > length {
        p.s(" [bad hdr length ");
        p.u(hlen);
        p.s(" - too long, > ");
        p.u(length);
        p.s("]");
        return;
    }
    let payload_len = length - hlen;
    if payload_len > 0 || flags & (SYN | FIN | RST) != 0 {
        p.s(", seq ");
        p.u(seq);
        if payload_len > 0 {
            p.s(":");
            p.u(seq.wrapping_add(payload_len));
        }
    }
    if flags & ACK != 0 {
        p.s(", ack ");
        p.u(ack);
    }
    p.s(", win ");
    p.u(win.into());
    if flags & URG != 0 {
        p.s(", urg ");
        p.u(urp.into());
    }
    if hlen > 20 && !options(p, off + 20, hlen - 20, rev, base_seq, base_ack) {
        return;
    }
    p.s(", length ");
    p.u(payload_len);
    if payload_len == 0 {
        return;
    }
    let start = off + hlen as usize;
    let payload = clamp(data, start, start + payload_len as usize);
    let port = |x: u16| sport == x || dport == x;
    if port(80) || port(8080) {
        p.s(": ");
        txtproto(p, payload, "HTTP", "http", Some(HTTP_METHODS));
    } else if port(554) || port(8554) {
        p.s(": ");
        txtproto(p, payload, "RTSP", "rtsp", Some(RTSP_METHODS));
    } else if port(21) {
        p.s(": ");
        txtproto(p, payload, "FTP", "ftp", None);
    } else if port(25) {
        p.s(": ");
        txtproto(p, payload, "SMTP", "smtp", None);
    } else if port(22) {
        ssh_banner(p, payload);
    } else if port(179) {
        // tcpdump's BGP printer says no more than this without -v.
        p.s(": BGP");
    } else if port(53) && payload_len > 2 {
        p.s(" ");
        let msg = clamp(data, start + 2, start + payload_len as usize);
        dns::print(p, msg, payload_len - 2, false);
    }
}

fn addr_gt(ctx: &IpCtx) -> bool {
    let n = if ctx.v6 { 16 } else { 4 };
    ctx.src[..n] > ctx.dst[..n]
}

/// Prints `, options [...]`; false if the options were cut short (the line ends there).
fn options(
    p: &mut Printer<'_, '_>,
    off: usize,
    len: u32,
    rev: bool,
    base_seq: u32,
    base_ack: u32,
) -> bool {
    let data = p.d.data;
    let mut hlen = len as usize;
    let mut cp = off;
    let mut first = true;
    p.s(", options [");
    while hlen > 0 {
        if !first {
            p.s(",");
        }
        first = false;
        let Some(opt) = u8_at(data, cp) else {
            return opt_trunc(p);
        };
        cp += 1;
        let zero_len = opt == 0 || opt == 1;
        let len = if zero_len {
            1
        } else {
            let Some(l) = u8_at(data, cp) else {
                return opt_trunc(p);
            };
            cp += 1;
            if l < 2 || usize::from(l) > hlen {
                p.s("[bad opt]]");
                return false;
            }
            hlen -= 1;
            usize::from(l)
        };
        hlen -= 1;
        let name = match opt {
            0 => "eol",
            1 => "nop",
            2 => "mss",
            3 => "wscale",
            4 => "sackOK",
            5 => "sack",
            8 => "TS",
            6 => "echo",
            7 => "echoreply",
            11 => "cc",
            12 => "ccnew",
            13 => "ccecho",
            19 => "md5",
            27 => "qs",
            28 => "uto",
            29 => "tcp-ao",
            30 => "mptcp",
            34 => "tfo",
            253 | 254 => "exp",
            _ => "",
        };
        if name.is_empty() {
            p.s("unknown-");
            p.u(opt.into());
        } else {
            p.s(name);
        }
        let mut datalen = 0usize;
        macro_rules! need {
            ($n:expr) => {
                if $n > hlen {
                    p.s("[bad opt]]");
                    return false;
                }
                if data.len() < cp + $n {
                    return opt_trunc(p);
                }
            };
        }
        match opt {
            2 => {
                datalen = 2;
                need!(2);
                p.s(" ");
                p.u(be16(data, cp).unwrap_or(0).into());
            }
            3 => {
                datalen = 1;
                need!(1);
                p.s(" ");
                p.u(data[cp].into());
            }
            5 => {
                datalen = len - 2;
                if !datalen.is_multiple_of(8) {
                    p.s(" invalid sack");
                } else {
                    p.s(" ");
                    p.u((datalen / 8) as u32);
                    p.s(" ");
                    let mut i = 0;
                    while i < datalen {
                        need!(i + 8);
                        let mut s = be32(data, cp + i).unwrap_or(0);
                        let mut e = be32(data, cp + i + 4).unwrap_or(0);
                        let base = if rev { base_seq } else { base_ack };
                        s = s.wrapping_sub(base);
                        e = e.wrapping_sub(base);
                        p.s("{");
                        p.u(s);
                        p.s(":");
                        p.u(e);
                        p.s("}");
                        i += 8;
                    }
                }
            }
            8 => {
                datalen = 8;
                need!(8);
                p.s(" val ");
                p.u(be32(data, cp).unwrap_or(0));
                p.s(" ecr ");
                p.u(be32(data, cp + 4).unwrap_or(0));
            }
            0 | 1 | 4 => {}
            6 | 7 | 11..=13 => {
                datalen = 4;
                need!(4);
                p.s(" ");
                p.u(be32(data, cp).unwrap_or(0));
            }
            28 => {
                datalen = 2;
                need!(2);
                let v = be16(data, cp).unwrap_or(0);
                p.s(" ");
                p.u(if v & 1 != 0 {
                    u32::from(v >> 1) * 60
                } else {
                    u32::from(v >> 1)
                });
            }
            _ => {
                datalen = len.saturating_sub(2);
                if datalen > 0 {
                    p.s(" 0x");
                }
                for i in 0..datalen {
                    need!(i + 1);
                    fmt::push_hex2(p.out, data[cp + i]);
                }
            }
        }
        cp += datalen;
        hlen = hlen.saturating_sub(datalen);
        let mut expect = datalen + 1;
        if !zero_len {
            expect += 1;
        }
        if expect != len {
            p.s("[len ");
            p.u(len as u32);
            p.s("]");
        }
        if opt == 0 {
            break;
        }
    }
    p.s("]");
    true
}

fn opt_trunc(p: &mut Printer<'_, '_>) -> bool {
    p.trunc("tcp");
    p.s(">");
    false
}

const HTTP_METHODS: &[&str] = &[
    "OPTIONS",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "ORDERPATCH",
    "CHECKOUT",
    "MERGE",
    "BASELINE-CONTROL",
    "MKACTIVITY",
    "MKWORKSPACE",
    "CHECKIN",
    "LABEL",
    "MKREDIRECTREF",
    "REPORT",
    "UNCHECKOUT",
    "UPDATE",
    "VERSION-CONTROL",
    "ACL",
    "BIND",
    "MKCALENDAR",
    "MKCOL",
    "REBIND",
    "SEARCH",
    "UNBIND",
    "UPDATEREDIRECTREF",
    "PATCH",
];

const RTSP_METHODS: &[&str] = &[
    "DESCRIBE",
    "ANNOUNCE",
    "GET_PARAMETER",
    "OPTIONS",
    "PAUSE",
    "PLAY",
    "RECORD",
    "REDIRECT",
    "SETUP",
    "SET_PARAMETER",
    "TEARDOWN",
];

/// The first token of a text line (up to 127 printable non-space ASCII characters) and the
/// offset after it and any following blanks; `None` if the bytes do not look like text.
fn token(b: &[u8], mut i: usize) -> Option<(&[u8], usize)> {
    let start = i;
    while i < b.len() {
        let c = b[i];
        if !c.is_ascii() {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !(0x20..0x7f).contains(&c) || i - start + 2 > 129 {
            return None;
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    let tok = &b[start..i];
    while i < b.len() {
        let c = b[i];
        if c == b'\r' || c == b'\n' || !(0x20..0x7f).contains(&c) || (c != b' ' && c != b'\t') {
            break;
        }
        i += 1;
    }
    Some((tok, i))
}

/// tcpdump's printer for line-based protocols: the protocol name, and when the payload starts
/// like a request (a known method) or a response (3-digit status as second token), its first
/// line.
fn txtproto(
    p: &mut Printer<'_, '_>,
    payload: &[u8],
    name: &str,
    lower: &str,
    methods: Option<&[&str]>,
) {
    let print_line = match methods {
        None => true,
        Some(methods) => match token(payload, 0) {
            None => false,
            Some((tok, next)) => {
                let is_method = methods
                    .iter()
                    .any(|m| m.as_bytes().eq_ignore_ascii_case(tok));
                let is_status = token(payload, next).is_some_and(|(t, _)| {
                    t.len() == 3
                        && (b'1'..=b'9').contains(&t[0])
                        && t[1].is_ascii_digit()
                        && t[2].is_ascii_digit()
                });
                is_method || is_status
            }
        },
    };
    p.s(name);
    if !print_line {
        return;
    }
    let mut i = 0;
    while i < payload.len() {
        match payload[i] {
            b'\n' => break,
            b'\r' => {
                if i + 1 >= payload.len() || payload[i + 1] != b'\n' {
                    return;
                }
                break;
            }
            b'\t' => {}
            c if !(0x20..0x7f).contains(&c) => return,
            _ => {}
        }
        i += 1;
    }
    p.s(": ");
    p.b(&payload[..i]);
    if i >= payload.len() {
        p.trunc(lower);
    }
}

/// SSH: only the identification string (`SSH-2.0-…`) is printed.
fn ssh_banner(p: &mut Printer<'_, '_>, payload: &[u8]) {
    if !payload.starts_with(b"SSH-") {
        return;
    }
    let Some(end) = payload.windows(2).position(|w| w == b"\r\n") else {
        return;
    };
    if payload[..end].iter().any(|&c| !(0x20..0x7f).contains(&c)) {
        return;
    }
    p.s(": SSH: ");
    p.b(&payload[..end]);
}
