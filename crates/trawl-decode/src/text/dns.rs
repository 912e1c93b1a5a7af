//! DNS part of a line, as tcpdump prints it without `-v`:
//! queries `ID[+][%] [counts] TYPE? name. (len)`, responses
//! `ID[op][rcode][*][-][|][$] [Nq] an/ns/ar TYPE data, … (len)`.

use super::{Printer, fmt};
use crate::bytes::{be16, u8_at};

/// Name characters tcpdump prints at most before `<DOMAIN NAME TOO LONG>`.
const MAXCDNAME: usize = 255;

/// Prints the message `m` (captured bytes) whose length on the wire is `length`.
pub(crate) fn print(p: &mut Printer<'_, '_>, m: &[u8], length: u32, mdns: bool) {
    if length < 12 {
        p.s("domain [length ");
        p.u(length);
        p.s(" < 12] (invalid)");
        return;
    }
    let (Some(id), Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) = (
        be16(m, 0),
        be16(m, 2),
        be16(m, 4),
        be16(m, 6),
        be16(m, 8),
        be16(m, 10),
    ) else {
        return p.trunc("domain");
    };
    if body(p, m, id, flags, [qd, an, ns, ar], mdns).is_none() {
        return p.trunc("domain");
    }
    p.s(" (");
    p.u(length);
    p.s(")");
}

const OPS: [&str; 16] = [
    "",
    " iquery",
    " status",
    " op3",
    " notify",
    " update",
    " op6",
    " op7",
    " op8",
    " updateA",
    " updateD",
    " updateDA",
    " updateM",
    " updateMA",
    " zoneInit",
    " zoneRef",
];

const RCODES: [&str; 16] = [
    "",
    " FormErr",
    " ServFail",
    " NXDomain",
    " NotImp",
    " Refused",
    " YXDomain",
    " YXRRSet",
    " NXRRSet",
    " NotAuth",
    " NotZone",
    " Resp11",
    " Resp12",
    " Resp13",
    " Resp14",
    " NoChange",
];

fn body(
    p: &mut Printer<'_, '_>,
    m: &[u8],
    id: u16,
    flags: u16,
    counts: [u16; 4],
    mdns: bool,
) -> Option<()> {
    let [qd, an, ns, ar] = counts;
    let opcode = usize::from((flags >> 11) & 0xf);
    p.u(id.into());
    p.s(OPS[opcode]);
    if flags & 0x8000 != 0 {
        let rcode = extended_rcode(m, flags, counts);
        if rcode < 16 {
            p.s(RCODES[usize::from(rcode)]);
        } else {
            p.s(" Resp");
            p.u((rcode & 0xfff).into());
        }
        if flags & 0x0400 != 0 {
            p.s("*");
        }
        if flags & 0x0080 == 0 {
            p.s("-");
        }
        if flags & 0x0200 != 0 {
            p.s("|");
        }
        if flags & 0x0020 != 0 {
            p.s("$");
        }
        if qd != 1 {
            p.s(" [");
            p.u(qd.into());
            p.s("q]");
        }
        let mut cp = 12usize;
        for _ in 0..qd {
            cp = skip_name(m, cp)? + 4;
        }
        p.s(" ");
        p.u(an.into());
        p.s("/");
        p.u(ns.into());
        p.s("/");
        p.u(ar.into());
        let mut left = an;
        if left > 0 {
            cp = record(p, m, cp, mdns)?;
            left -= 1;
            while cp < m.len() && left > 0 {
                p.s(",");
                cp = record(p, m, cp, mdns)?;
                left -= 1;
            }
        }
        if left > 0 {
            return None;
        }
    } else {
        if flags & 0x0100 != 0 {
            p.s("+");
        }
        if flags & 0x0010 != 0 {
            p.s("%");
        }
        if flags & 0x6cf != 0 {
            p.s(" [b2&3=0x");
            fmt::push_hex(p.out, flags.into());
            p.s("]");
        }
        if opcode == 1 {
            if qd != 0 {
                p.s(" [");
                p.u(qd.into());
                p.s("q]");
            }
            if an != 1 {
                p.s(" [");
                p.u(an.into());
                p.s("a]");
            }
        } else {
            if an != 0 {
                p.s(" [");
                p.u(an.into());
                p.s("a]");
            }
            if qd != 1 {
                p.s(" [");
                p.u(qd.into());
                p.s("q]");
            }
        }
        if ns != 0 {
            p.s(" [");
            p.u(ns.into());
            p.s("n]");
        }
        if ar != 0 {
            p.s(" [");
            p.u(ar.into());
            p.s("au]");
        }
        let mut left = qd;
        let mut cp = 12usize;
        if left > 0 {
            cp = question(p, m, cp, mdns)?;
            left -= 1;
            while cp < m.len() && left > 0 {
                cp = question(p, m, cp, mdns)?;
                left -= 1;
            }
        }
        if left > 0 {
            return None;
        }
    }
    Some(())
}

/// The rcode with the upper 8 bits from an EDNS0 OPT record in the additional section, if one
/// can be found in the captured bytes.
fn extended_rcode(m: &[u8], flags: u16, [qd, an, ns, ar]: [u16; 4]) -> u16 {
    let rcode = flags & 0xf;
    let find = || -> Option<u16> {
        let mut cp = 12usize;
        for _ in 0..qd {
            cp = skip_name(m, cp)? + 4;
            if cp >= m.len() {
                return None;
            }
        }
        for _ in 0..u32::from(an) + u32::from(ns) {
            cp = skip_name(m, cp)? + 8;
            let rdlen = be16(m, cp)?;
            cp += 2 + usize::from(rdlen);
            if cp >= m.len() {
                return None;
            }
        }
        for _ in 0..ar {
            cp = skip_name(m, cp)?;
            let t = be16(m, cp)?;
            cp += 4;
            let ext = u8_at(m, cp)?;
            if t == 41 {
                return Some(u16::from(ext) << 4);
            }
            cp += 4;
            let rdlen = be16(m, cp)?;
            cp += 2 + usize::from(rdlen);
            if cp >= m.len() {
                return None;
            }
        }
        None
    };
    rcode | find().unwrap_or(0)
}

/// Skips a name in place (tcpdump's `ns_nskip`): a pointer ends it.
fn skip_name(m: &[u8], cp: usize) -> Option<usize> {
    crate::app::dns::skip_name(m, cp)
}

/// ` TYPE? name.` — returns the offset after the question.
fn question(p: &mut Printer<'_, '_>, m: &[u8], cp: usize, mdns: bool) -> Option<usize> {
    let end = skip_name(m, cp)?;
    let (qtype, qclass) = (be16(m, end)?, be16(m, end + 2)?);
    p.s(" ");
    push_type(p, qtype);
    let class = if mdns { qclass & 0x7fff } else { qclass };
    if class != 1 {
        p.s(" ");
        push_class(p, class);
    }
    if mdns {
        p.s(if qclass & 0x8000 != 0 {
            " (QU)"
        } else {
            " (QM)"
        });
    }
    p.s("? ");
    name(p, m, cp)?;
    Some(end + 4)
}

/// ` TYPE data` of one resource record — returns the offset after it. Like tcpdump, a record
/// whose fixed part was not captured ends the list quietly (returns the end of the message).
fn record(p: &mut Printer<'_, '_>, m: &[u8], cp: usize, mdns: bool) -> Option<usize> {
    let Some(at) = skip_name(m, cp).filter(|&e| e + 10 <= m.len()) else {
        return Some(m.len());
    };
    let rtype = be16(m, at)?;
    let raw_class = be16(m, at + 2)?;
    let class = if mdns { raw_class & 0x7fff } else { raw_class };
    if class != 1 && rtype != 41 {
        p.s(" ");
        push_class(p, class);
    }
    if mdns && raw_class & 0x8000 != 0 {
        p.s(" (Cache flush)");
    }
    let opt_flags = be16(m, at + 6)?;
    let len = usize::from(be16(m, at + 8)?);
    let rd = at + 10;
    let rp = rd + len;
    p.s(" ");
    push_type(p, rtype);
    if rp > m.len() {
        return None;
    }
    match rtype {
        1 => {
            p.s(" ");
            fmt::push_ipv4(p.out, &crate::bytes::array::<4>(m, rd)?);
        }
        2 | 5 | 12 | 39 => {
            p.s(" ");
            name(p, m, rd)?;
        }
        15 => {
            p.s(" ");
            let pref = be16(m, rd)?;
            name(p, m, rd + 2)?;
            p.s(" ");
            p.u(pref.into());
        }
        16 => {
            let mut c = rd;
            while c < rp {
                p.s(" \"");
                let l = usize::from(u8_at(m, c)?);
                let s = m.get(c + 1..c + 1 + l)?;
                fmt::push_safe(p.out, s);
                c += 1 + l;
                p.s("\"");
            }
        }
        33 => {
            p.s(" ");
            let (prio, weight, port) = (be16(m, rd)?, be16(m, rd + 2)?, be16(m, rd + 4)?);
            name(p, m, rd + 6)?;
            p.s(":");
            p.u(port.into());
            p.s(" ");
            p.u(prio.into());
            p.s(" ");
            p.u(weight.into());
        }
        28 => {
            p.s(" ");
            fmt::push_ipv6(p.out, &crate::bytes::array::<16>(m, rd)?);
        }
        41 => {
            p.s(" UDPsize=");
            p.u(class.into());
            if opt_flags & 0x8000 != 0 {
                p.s(" DO");
            }
            if rd < rp {
                // EDNS options: printed by code and length only (tcpdump names a few).
                p.s(" [");
                let mut c = rd;
                while c < rp {
                    let (code, olen) = (be16(m, c)?, usize::from(be16(m, c + 2)?));
                    edns_option(p, code, m.get(c + 4..c + 4 + olen)?);
                    c += 4 + olen;
                    if c < rp {
                        p.s(",");
                    }
                }
                p.s("]");
            }
        }
        _ => {}
    }
    Some(rp)
}

fn edns_option(p: &mut Printer<'_, '_>, code: u16, data: &[u8]) {
    match code {
        10 => {
            p.s("COOKIE ");
            for &b in data.iter().take(8) {
                fmt::push_hex2(p.out, b);
            }
            if data.len() > 8 {
                p.s(" ");
                for &b in &data[8..] {
                    fmt::push_hex2(p.out, b);
                }
            }
        }
        _ => {
            p.s("Opt");
            p.u(code.into());
        }
    }
}

/// Prints a (possibly compressed) name with tcpdump's escaping; `None` after printing a marker
/// such as `<BAD PTR>` or when the name runs past the captured bytes.
fn name(p: &mut Printer<'_, '_>, m: &[u8], cp: usize) -> Option<()> {
    let mut pos = cp;
    let mut max_offset = cp;
    let mut chars = 0usize;
    let mut len = u8_at(m, pos)?;
    if len == 0 {
        p.s(".");
        return Some(());
    }
    while len != 0 {
        match len & 0xc0 {
            0xc0 => {
                let target = (usize::from(len & 0x3f) << 8) | usize::from(u8_at(m, pos + 1)?);
                if target >= max_offset {
                    p.s("<BAD PTR>");
                    return None;
                }
                max_offset = target;
                pos = target;
                len = u8_at(m, pos)?;
                continue;
            }
            0x40 => {
                p.s("<ELT ");
                p.u((len & 0x3f).into());
                p.s(">");
                return None;
            }
            0x80 => {
                p.s("<BAD LABEL TYPE>");
                return None;
            }
            _ => {}
        }
        let l = usize::from(len);
        let start = pos + 1;
        let avail = m.len().saturating_sub(start).min(l);
        if chars + l <= MAXCDNAME {
            fmt::push_safe(p.out, &m[start..start + avail]);
            if avail < l {
                return None;
            }
        } else if chars < MAXCDNAME {
            let n = (MAXCDNAME - chars).min(avail);
            fmt::push_safe(p.out, &m[start..start + n]);
            if n < MAXCDNAME - chars {
                return None;
            }
        }
        chars += l;
        pos = start + l;
        if chars <= MAXCDNAME {
            p.s(".");
        }
        chars += 1;
        len = u8_at(m, pos)?;
        if chars > 4 * MAXCDNAME {
            // tcpdump keeps walking a name this long; stop here, the line already says why.
            break;
        }
    }
    if chars > MAXCDNAME {
        p.s("<DOMAIN NAME TOO LONG>");
    }
    Some(())
}

fn push_class(p: &mut Printer<'_, '_>, class: u16) {
    match class {
        1 => p.s("IN"),
        3 => p.s("CHAOS"),
        4 => p.s("HS"),
        255 => p.s("ANY"),
        _ => {
            p.s("(Class ");
            p.u(class.into());
            p.s(")");
        }
    }
}

fn push_type(p: &mut Printer<'_, '_>, t: u16) {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "UNSPECA",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        _ => {
            p.s("Type");
            p.u(t.into());
            return;
        }
    };
    p.s(name);
}
