//! ICMP and ICMPv6 parts of a line, as tcpdump prints them without `-v`.

use super::{Printer, fmt};
use crate::bytes::{array, be16, be32, clamp, u8_at};

/// `ICMP <what>, length N`. The message text is built up in `out` after `ICMP `; a field that
/// was not captured ends the line with ` [|icmp]` like tcpdump.
pub(crate) fn print_icmp(p: &mut Printer<'_, '_>, off: usize, length: u32) {
    let data = p.d.data;
    let m = clamp(data, off, data.len());
    let (Some(t), Some(code)) = (u8_at(m, 0), u8_at(m, 1)) else {
        return p.trunc("icmp");
    };
    p.s("ICMP ");
    if icmp_body(p, m, t, code).is_none() {
        return p.trunc("icmp");
    }
    p.s(", length ");
    p.u(length);
}

fn icmp_body(p: &mut Printer<'_, '_>, m: &[u8], t: u8, code: u8) -> Option<()> {
    // Offset of the quoted IP header in error messages.
    const INNER: usize = 8;
    match t {
        0 | 8 => {
            let (id, seq) = (be16(m, 4)?, be16(m, 6)?);
            p.s(if t == 8 {
                "echo request, id "
            } else {
                "echo reply, id "
            });
            p.u(id.into());
            p.s(", seq ");
            p.u(seq.into());
        }
        3 => {
            let dst = array::<4>(m, INNER + 16)?;
            match code {
                0 | 1 => {
                    p.s(if code == 0 { "net " } else { "host " });
                    fmt::push_ipv4(p.out, &dst);
                    p.s(" unreachable");
                }
                2 => {
                    fmt::push_ipv4(p.out, &dst);
                    p.s(" protocol ");
                    p.u(u8_at(m, INNER + 9)?.into());
                    p.s(" unreachable");
                }
                3 => {
                    let proto = u8_at(m, INNER + 9)?;
                    let hlen = usize::from(u8_at(m, INNER)? & 0x0f) * 4;
                    let dport = be16(m, INNER + hlen + 2)?;
                    fmt::push_ipv4(p.out, &dst);
                    match proto {
                        6 => p.s(" tcp port "),
                        17 => p.s(" udp port "),
                        _ => {
                            p.s(" protocol ");
                            p.u(proto.into());
                            p.s(" port ");
                        }
                    }
                    p.u(dport.into());
                    p.s(" unreachable");
                }
                4 => {
                    let mtu = be16(m, 6)?;
                    fmt::push_ipv4(p.out, &dst);
                    p.s(" unreachable - need to frag");
                    if mtu != 0 {
                        p.s(" (mtu ");
                        p.u(mtu.into());
                        p.s(")");
                    }
                }
                _ => {
                    let (pre, post) = match code {
                        5 => ("", " unreachable - source route failed"),
                        6 => ("net ", " unreachable - unknown"),
                        7 => ("host ", " unreachable - unknown"),
                        8 => ("", " unreachable - source host isolated"),
                        9 => ("net ", " unreachable - admin prohibited"),
                        10 => ("host ", " unreachable - admin prohibited"),
                        11 => ("net ", " unreachable - tos prohibited"),
                        12 => ("host ", " unreachable - tos prohibited"),
                        13 => ("host ", " unreachable - admin prohibited filter"),
                        14 => ("host ", " unreachable - host precedence violation"),
                        15 => ("host ", " unreachable - precedence cutoff"),
                        _ => ("", ""),
                    };
                    if post.is_empty() {
                        p.s("#");
                        p.u(code.into());
                        p.s(" ");
                        fmt::push_ipv4(p.out, &dst);
                        p.s(" unreachable");
                    } else {
                        p.s(pre);
                        fmt::push_ipv4(p.out, &dst);
                        p.s(post);
                    }
                }
            }
        }
        5 => {
            let dst = array::<4>(m, INNER + 16)?;
            let gw = array::<4>(m, 4)?;
            let (pre, mid) = match code {
                0 => ("redirect ", " to net "),
                1 => ("redirect ", " to host "),
                2 => ("redirect-tos ", " to net "),
                3 => ("redirect-tos ", " to host "),
                _ => ("", ""),
            };
            if pre.is_empty() {
                p.s("redirect-#");
                p.u(code.into());
                p.s(" ");
                fmt::push_ipv4(p.out, &dst);
                p.s(" to ");
            } else {
                p.s(pre);
                fmt::push_ipv4(p.out, &dst);
                p.s(mid);
            }
            fmt::push_ipv4(p.out, &gw);
        }
        9 => {
            let num = u8_at(m, 4)?;
            let size = u8_at(m, 5)?;
            let lifetime = u32::from(be16(m, 6)?);
            p.s("router advertisement lifetime ");
            if lifetime < 60 {
                p.u(lifetime);
            } else if lifetime < 3600 {
                p.u(lifetime / 60);
                p.s(":");
                fmt::push_u32_padded(p.out, lifetime % 60, 2);
            } else {
                p.u(lifetime / 3600);
                p.s(":");
                fmt::push_u32_padded(p.out, (lifetime % 3600) / 60, 2);
                p.s(":");
                fmt::push_u32_padded(p.out, lifetime % 60, 2);
            }
            p.s(" ");
            p.u(num.into());
            p.s(":");
            if size != 2 {
                p.s(" [size ");
                p.u(size.into());
                p.s("]");
            } else {
                for i in 0..usize::from(num) {
                    let at = 8 + 8 * i;
                    let addr = array::<4>(m, at)?;
                    let pref = be32(m, at + 4)?;
                    p.s(" {");
                    fmt::push_ipv4(p.out, &addr);
                    p.s(" ");
                    p.u(pref);
                    p.s("}");
                }
            }
        }
        11 => match code {
            0 => p.s("time exceeded in-transit"),
            1 => p.s("ip reassembly time exceeded"),
            _ => {
                p.s("time exceeded-#");
                p.u(code.into());
            }
        },
        12 => {
            if code != 0 {
                p.s("parameter problem - code ");
                p.u(code.into());
            } else {
                p.s("parameter problem - octet ");
                p.u(u8_at(m, 4)?.into());
            }
        }
        13 | 14 => {
            let (id, seq) = (be16(m, 4)?, be16(m, 6)?);
            if t == 13 {
                p.s("time stamp query id ");
                p.u(id.into());
                p.s(" seq ");
                p.u(seq.into());
            } else {
                let (o, r, x) = (be32(m, 8)?, be32(m, 12)?, be32(m, 16)?);
                p.s("time stamp reply id ");
                p.u(id.into());
                p.s(" seq ");
                p.u(seq.into());
                p.s(": org ");
                tstamp(p, o);
                p.s(", recv ");
                tstamp(p, r);
                p.s(", xmit ");
                tstamp(p, x);
            }
        }
        18 => {
            p.s("address mask is 0x");
            fmt::push_hex_padded(p.out, be32(m, 8)?, 8);
        }
        4 => p.s("source quench"),
        10 => p.s("router solicitation"),
        15 => p.s("information request"),
        16 => p.s("information reply"),
        17 => p.s("address mask request"),
        _ => {
            p.s("type-#");
            p.u(t.into());
        }
    }
    Some(())
}

/// Milliseconds since midnight as `HH:MM:SS.mmm`.
fn tstamp(p: &mut Printer<'_, '_>, ms: u32) {
    let (msec, sec) = (ms % 1000, ms / 1000);
    let (min, sec) = (sec / 60, sec % 60);
    let (hrs, min) = (min / 60, min % 60);
    fmt::push_u32_padded(p.out, hrs, 2);
    p.s(":");
    fmt::push_u32_padded(p.out, min, 2);
    p.s(":");
    fmt::push_u32_padded(p.out, sec, 2);
    p.s(".");
    fmt::push_u32_padded(p.out, msec, 3);
}

fn icmp6_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        139 => "node information query",
        140 => "node information reply",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        144 => "ha discovery request",
        145 => "ha discovery reply",
        146 => "mobile router solicitation",
        147 => "mobile router advertisement",
        151 => "multicast router advertisement",
        152 => "multicast router solicitation",
        153 => "multicast router termination",
        _ => return None,
    })
}

/// `ICMP6, <type>[, details], length N`.
pub(crate) fn print_icmp6(p: &mut Printer<'_, '_>, off: usize, length: u32) {
    let data = p.d.data;
    let m = clamp(data, off, data.len());
    let (Some(t), Some(code)) = (u8_at(m, 0), u8_at(m, 1)) else {
        return p.trunc("icmp6");
    };
    p.s("ICMP6, ");
    let Some(name) = icmp6_type_name(t) else {
        p.s("unknown icmp6 type (");
        p.u(t.into());
        p.s("), length ");
        p.u(length);
        return;
    };
    p.s(name);
    if icmp6_body(p, m, t, code, length).is_none() {
        return p.trunc("icmp6");
    }
    p.s(", length ");
    p.u(length);
}

fn icmp6_body(p: &mut Printer<'_, '_>, m: &[u8], t: u8, code: u8, length: u32) -> Option<()> {
    const INNER: usize = 8;
    match t {
        1 => {
            p.s(match code {
                0 => ", unreachable route",
                1 => ", unreachable prohibited",
                2 => ", beyond scope",
                3 => ", unreachable address",
                4 => ", unreachable port",
                _ => ", unknown unreach code",
            });
            match code {
                0 | 1 | 3 => {
                    p.s(" ");
                    fmt::push_ipv6(p.out, &array::<16>(m, INNER + 24)?);
                }
                2 => {
                    p.s(" ");
                    fmt::push_ipv6(p.out, &array::<16>(m, INNER + 24)?);
                    p.s(", source address ");
                    fmt::push_ipv6(p.out, &array::<16>(m, INNER + 8)?);
                }
                4 => {
                    let dst = array::<16>(m, INNER + 24)?;
                    let (proto, uoff) = inner_upper(m, INNER)?;
                    let dport = be16(m, uoff + 2)?;
                    p.s(", ");
                    fmt::push_ipv6(p.out, &dst);
                    match proto {
                        6 => p.s(" tcp port "),
                        17 => p.s(" udp port "),
                        _ => {
                            p.s(" protocol ");
                            p.u(proto.into());
                            p.s(" port ");
                        }
                    }
                    p.u(dport.into());
                    if proto != 6 && proto != 17 {
                        p.s(" unreachable");
                    }
                }
                _ => {}
            }
        }
        2 => {
            p.s(", mtu ");
            p.u(be32(m, 4)?);
        }
        3 => match code {
            0 => {
                p.s(" for ");
                fmt::push_ipv6(p.out, &array::<16>(m, INNER + 24)?);
            }
            1 => p.s(" (reassembly)"),
            _ => {
                p.s(", unknown code (");
                p.u(code.into());
                p.s(")");
            }
        },
        4 => {
            array::<16>(m, INNER + 24)?;
            let ptr = be32(m, 4)?;
            match code {
                0 => p.s(", erroneous - octet "),
                1 => p.s(", next header - octet "),
                2 => p.s(", option - octet "),
                3 => p.s(", incomplete header chain - octet "),
                _ => {
                    p.s(", code-#");
                    p.u(code.into());
                    return Some(());
                }
            }
            p.u(ptr);
        }
        128 | 129 => {
            let (id, seq) = (be16(m, 4)?, be16(m, 6)?);
            p.s(", id ");
            p.u(id.into());
            p.s(", seq ");
            p.u(seq.into());
        }
        130 => {
            if length == 24 {
                p.s(" v1");
            } else if length >= 28 {
                p.s(" v2 [gaddr ");
                fmt::push_ipv6(p.out, &array::<16>(m, 8)?);
                let nsrcs = be16(m, 26)?;
                if nsrcs > 0 {
                    p.s(", ");
                    p.u(nsrcs.into());
                    p.s(" source(s)");
                }
                p.s("]");
            } else {
                p.s(" unknown-version (len ");
                p.u(length);
                p.s(") ");
            }
        }
        131 | 132 => {
            p.s(" ");
            fmt::push_ipv6(p.out, &array::<16>(m, 8)?);
        }
        135 => {
            p.s(", who has ");
            fmt::push_ipv6(p.out, &array::<16>(m, 8)?);
        }
        136 => {
            p.s(", tgt is ");
            fmt::push_ipv6(p.out, &array::<16>(m, 8)?);
        }
        137 => {
            p.s(", ");
            fmt::push_ipv6(p.out, &array::<16>(m, 24)?);
            p.s(" to ");
            fmt::push_ipv6(p.out, &array::<16>(m, 8)?);
        }
        143 => {
            p.s(", ");
            p.u(be16(m, 6)?.into());
            p.s(" group record(s)");
        }
        144 | 146 => {
            p.s(", id 0x");
            fmt::push_hex_padded(p.out, be16(m, 4)?.into(), 4);
        }
        _ => {}
    }
    Some(())
}

/// Protocol and offset of the upper-layer header of the IPv6 packet quoted at `off` in an
/// ICMPv6 error, skipping its extension headers.
fn inner_upper(m: &[u8], off: usize) -> Option<(u8, usize)> {
    let mut nh = u8_at(m, off + 6)?;
    let mut cur = off + 40;
    for _ in 0..8 {
        match nh {
            0 | 43 | 60 => {
                let len = (usize::from(u8_at(m, cur + 1)?) + 1) * 8;
                nh = u8_at(m, cur)?;
                cur += len;
            }
            44 => {
                nh = u8_at(m, cur)?;
                cur += 8;
            }
            51 => {
                let len = (usize::from(u8_at(m, cur + 1)?) + 2) * 4;
                nh = u8_at(m, cur)?;
                cur += len;
            }
            _ => return Some((nh, cur)),
        }
    }
    None
}
