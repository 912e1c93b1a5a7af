//! The profile of one session (the paper's Figures 8 and 9): per-second bandwidth each way,
//! the distribution of packet sizes each way, and totals.
//!
//! A session is an IP protocol and two endpoints ([`SessionSpec`]), in either direction and on
//! any circuit; `a` is the end named first. [`Busiest`] finds the session with the most bytes
//! among packets a caller already filtered, with its initiator as `a`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use trawl_decode::{Decoded, Transport};

use crate::model::*;
use crate::names;
use trawl_flow::hash::FastMap;

const NS: u64 = 1_000_000_000;

/// An IP protocol and two endpoints (ports are 0 for protocols without them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionSpec {
    pub protocol: u8,
    pub a: (IpAddr, u16),
    pub b: (IpAddr, u16),
}

impl SessionSpec {
    /// Parses `tcp 10.0.0.1:1234 10.0.0.2:80`, `udp [2001:db8::1]:53 [2001:db8::2]:5353`,
    /// `icmp 10.0.0.1 10.0.0.2`, `47 10.0.0.1 10.0.0.2` (a `>` or `<>` between the ends is
    /// allowed).
    pub fn parse(s: &str) -> Result<SessionSpec, String> {
        let words: Vec<&str> = s
            .split_whitespace()
            .filter(|w| !matches!(*w, ">" | "<>" | "<->" | "-"))
            .collect();
        let [proto, a, b] = words[..] else {
            return Err(format!(
                "session '{s}': give a protocol and two ends, e.g. 'tcp 10.0.0.1:1234 10.0.0.2:80'"
            ));
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "icmpv6" | "icmp6" => 58,
            "sctp" => 132,
            "gre" => 47,
            "esp" => 50,
            other => other
                .parse()
                .map_err(|_| format!("session '{s}': unknown protocol '{proto}'"))?,
        };
        let with_ports = matches!(protocol, 6 | 17 | 132);
        let end = |w: &str| -> Result<(IpAddr, u16), String> {
            if let Ok(addr) = w.parse::<IpAddr>() {
                if with_ports {
                    return Err(format!("session '{s}': '{w}' needs a port (ADDRESS:PORT)"));
                }
                return Ok((addr, 0));
            }
            let (addr, port) = w
                .rsplit_once(':')
                .ok_or_else(|| format!("session '{s}': '{w}' is not ADDRESS or ADDRESS:PORT"))?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("session '{s}': '{addr}' is not an IP address"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("session '{s}': '{port}' is not a port"))?;
            Ok((addr, port))
        };
        Ok(SessionSpec {
            protocol,
            a: end(a)?,
            b: end(b)?,
        })
    }

    /// Which way a packet goes in this session: 0 from `a` to `b`, 1 back, `None` if it is not
    /// the session's.
    pub fn direction(&self, d: &Decoded<'_>) -> Option<usize> {
        let (src, dst, proto) = (d.net.src_addr()?, d.net.dst_addr()?, d.net.protocol()?);
        if proto != self.protocol {
            return None;
        }
        let (sp, dp) = ports(d);
        if (src, sp) == self.a && (dst, dp) == self.b {
            Some(0)
        } else if (src, sp) == self.b && (dst, dp) == self.a {
            Some(1)
        } else {
            None
        }
    }
}

fn ports(d: &Decoded<'_>) -> (u16, u16) {
    match &d.transport {
        Transport::Tcp(t) => (t.src_port, t.dst_port),
        Transport::Udp(u) => (u.src_port, u.dst_port),
        _ => (0, 0),
    }
}

fn end_text((addr, port): (IpAddr, u16), with_port: bool) -> String {
    match (addr, with_port) {
        (IpAddr::V6(a), true) => format!("[{a}]:{port}"),
        (a, true) => format!("{a}:{port}"),
        (a, false) => a.to_string(),
    }
}

impl fmt::Display for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_port = self.a.1 != 0 || self.b.1 != 0 || matches!(self.protocol, 6 | 17 | 132);
        let proto = match self.protocol {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            58 => "icmpv6".to_string(),
            p => p.to_string(),
        };
        write!(
            f,
            "{proto} {} {}",
            end_text(self.a, with_port),
            end_text(self.b, with_port)
        )
    }
}

/// Upper bounds of the packet-size bins (wire length): 64-byte steps to 1535, then one bin
/// for anything longer (jumbo frames, reassembled captures).
const BIN: u32 = 64;
const BINS: usize = 24;

#[derive(Default, Clone, Copy)]
struct Way {
    packets: u64,
    bytes: u64,
}

/// A session's profile being built.
pub struct Profile {
    spec: SessionSpec,
    first_ns: Option<u64>,
    last_ns: u64,
    ways: [Way; 2],
    sizes: [[u64; BINS + 1]; 2],
    /// Second → (bytes, packets) each way.
    seconds: BTreeMap<u64, [[u64; 2]; 2]>,
}

impl Profile {
    pub fn new(spec: SessionSpec) -> Profile {
        Profile {
            spec,
            first_ns: None,
            last_ns: 0,
            ways: [Way::default(); 2],
            sizes: [[0; BINS + 1]; 2],
            seconds: BTreeMap::new(),
        }
    }

    pub fn spec(&self) -> &SessionSpec {
        &self.spec
    }

    /// Adds a packet if it belongs to the session; says whether it did.
    pub fn add(&mut self, ts_ns: u64, d: &Decoded<'_>) -> bool {
        let Some(dir) = self.spec.direction(d) else {
            return false;
        };
        let len = d.wire_len;
        self.first_ns = Some(self.first_ns.map_or(ts_ns, |f| f.min(ts_ns)));
        self.last_ns = self.last_ns.max(ts_ns);
        let w = &mut self.ways[dir];
        w.packets += 1;
        w.bytes += u64::from(len);
        self.sizes[dir][((len / BIN) as usize).min(BINS)] += 1;
        let s = self.seconds.entry(ts_ns / NS).or_default();
        s[0][dir] += u64::from(len);
        s[1][dir] += 1;
        true
    }

    pub fn finish(self) -> ProfileReport {
        let spec = self.spec;
        let first_ns = self.first_ns.unwrap_or(0);
        let observed = match (
            self.seconds.first_key_value(),
            self.seconds.last_key_value(),
        ) {
            (Some((&first, _)), Some((&last, _))) => Some(Seconds { first, last }),
            _ => None,
        };
        let mut per_second = PerSecondEachWay::default();
        if let Some(o) = observed {
            let n = o.len();
            per_second = PerSecondEachWay {
                a_to_b_bytes: vec![0; n],
                b_to_a_bytes: vec![0; n],
                a_to_b_packets: vec![0; n],
                b_to_a_packets: vec![0; n],
            };
            for (&sec, v) in &self.seconds {
                let i = (sec - o.first) as usize;
                per_second.a_to_b_bytes[i] = v[0][0];
                per_second.b_to_a_bytes[i] = v[0][1];
                per_second.a_to_b_packets[i] = v[1][0];
                per_second.b_to_a_packets[i] = v[1][1];
            }
        }
        let direction = |dir: usize, series: &[u64]| {
            let max = series
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
                .filter(|(_, b)| **b > 0);
            DirectionProfile {
                packets: self.ways[dir].packets,
                bytes: self.ways[dir].bytes,
                max_kbps: max.map_or(0.0, |(_, &b)| b as f64 * 8.0 / 1000.0),
                max_second: max.and_then(|(i, _)| observed.map(|o| o.first + i as u64)),
                sizes: (0..=BINS)
                    .map(|i| SizeBin {
                        from: i as u32 * BIN,
                        to: (i < BINS).then(|| (i as u32 + 1) * BIN - 1),
                        packets: self.sizes[dir][i],
                    })
                    .collect(),
            }
        };
        let a_to_b = direction(0, &per_second.a_to_b_bytes);
        let b_to_a = direction(1, &per_second.b_to_a_bytes);
        let with_port = spec.a.1 != 0 || spec.b.1 != 0 || matches!(spec.protocol, 6 | 17 | 132);
        ProfileReport {
            session: spec.to_string(),
            protocol: names::ip_protocol_short(spec.protocol),
            a: end_text(spec.a, with_port),
            b: end_text(spec.b, with_port),
            first_ns,
            last_ns: self.last_ns,
            duration_secs: self.last_ns.saturating_sub(first_ns) as f64 / 1e9,
            a_to_b,
            b_to_a,
            observed,
            per_second,
        }
    }
}

/// An address and port.
type End = (IpAddr, u16);

/// Finds the busiest session (most bytes both ways) among the packets given.
#[derive(Default)]
pub struct Busiest {
    /// (protocol, lower end, higher end) → (bytes, initiator = the first packet's sender).
    sessions: FastMap<(u8, End, End), (u64, End)>,
}

impl Busiest {
    pub fn new() -> Busiest {
        Busiest::default()
    }

    pub fn add(&mut self, d: &Decoded<'_>) {
        let (Some(src), Some(dst), Some(proto)) =
            (d.net.src_addr(), d.net.dst_addr(), d.net.protocol())
        else {
            return;
        };
        let (sp, dp) = ports(d);
        let (a, b) = ((src, sp), (dst, dp));
        let key = if a <= b { (proto, a, b) } else { (proto, b, a) };
        let e = self.sessions.entry(key).or_insert((0, a));
        e.0 += u64::from(d.wire_len);
    }

    /// How many sessions were seen.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The session with the most bytes (ties: the lowest key), its initiator as `a`.
    pub fn busiest(&self) -> Option<SessionSpec> {
        let ((proto, lo, hi), (_, initiator)) = self
            .sessions
            .iter()
            .max_by(|x, y| x.1.0.cmp(&y.1.0).then(y.0.cmp(x.0)))?;
        let (a, b) = if *initiator == *lo {
            (*lo, *hi)
        } else {
            (*hi, *lo)
        };
        Some(SessionSpec {
            protocol: *proto,
            a,
            b,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_specs() {
        let s = SessionSpec::parse("tcp 10.0.0.1:1234 10.0.0.2:80").unwrap();
        assert_eq!(s.protocol, 6);
        assert_eq!(s.a, ("10.0.0.1".parse().unwrap(), 1234));
        assert_eq!(s.to_string(), "tcp 10.0.0.1:1234 10.0.0.2:80");
        let s = SessionSpec::parse("udp [2001:db8::1]:53 > [2001:db8::2]:5353").unwrap();
        assert_eq!(s.to_string(), "udp [2001:db8::1]:53 [2001:db8::2]:5353");
        let s = SessionSpec::parse("icmp 10.0.0.1 10.0.0.2").unwrap();
        assert_eq!((s.protocol, s.a.1), (1, 0));
        assert!(SessionSpec::parse("tcp 10.0.0.1 10.0.0.2:80").is_err());
        assert!(SessionSpec::parse("tcp 10.0.0.1:1").is_err());
        assert!(SessionSpec::parse("xyz 10.0.0.1 10.0.0.2").is_err());
    }
}
