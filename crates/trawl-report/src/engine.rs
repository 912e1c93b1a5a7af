//! The report engine: packets in, per-period accumulators, [`PeriodReport`]s out.
//!
//! Per packet the work is fixed and small: the flow table (sessions, SYNs, retransmissions),
//! one lookup in a map of the period's flows, one in the line's circuits, a short list of the
//! circuit's protocols, and two per-second counters. Sources, destinations and applications are
//! counted per flow and folded into the period's tables when the flow's period is over, so the
//! endpoint maps are touched once per flow and period, not once per packet.

use std::collections::BTreeMap;
use std::net::IpAddr;

use trawl_decode::{Decoded, Headers, Net};
use trawl_flow::{FlowKey, FlowTable, Timeouts, key_of};

use crate::apps::Apps;
use crate::model::*;
use crate::{CircuitId, names};
use trawl_flow::hash::FastMap;
use trawl_flow::time;

const NS: u64 = 1_000_000_000;

/// The longest period: per-second counters take 8 bytes a second per circuit.
pub const MAX_PERIOD_SECS: u64 = 86_400;

/// How a report is made.
#[derive(Clone, Debug)]
pub struct Options {
    /// Length of a period in seconds (1 to [`MAX_PERIOD_SECS`]); periods begin at multiples of
    /// it since the Unix epoch (15 minutes: :00, :15, :30, :45 UTC).
    pub period_secs: u64,
    /// Names for applications, hosts and circuits.
    pub apps: Apps,
    /// Rows in each top list (busiest and quietest seconds, sources, destinations,
    /// retransmission destinations).
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            period_secs: 900,
            apps: Apps::default(),
            top: 10,
        }
    }
}

/// The link-layer protocol (and IP protocol) of a packet, as the protocol mix counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ProtoKey {
    /// An ethertype, with the IP protocol under IPv4 and IPv6.
    Ether(u16, Option<u8>),
    /// A Frame Relay NLPID that leads to no ethertype (Q.933 LMI, CLNP, IS-IS…).
    Nlpid(u8),
    /// 802.2 LLC without SNAP: the DSAP.
    Llc(u8),
    /// A PPP protocol that leads to no ethertype.
    Ppp(u16),
    Unknown,
}

impl ProtoKey {
    fn of(d: &Decoded<'_>) -> ProtoKey {
        let ip = d.net.protocol();
        if let Some(t) = d.link.ethertype {
            let ip = if t == 0x0800 || t == 0x86dd { ip } else { None };
            return ProtoKey::Ether(t, ip);
        }
        match d.net {
            Net::Ipv4(_) => return ProtoKey::Ether(0x0800, ip),
            Net::Ipv6(_) => return ProtoKey::Ether(0x86dd, ip),
            Net::Arp(_) => return ProtoKey::Ether(0x0806, None),
            Net::None => {}
        }
        if let Some(n) = d.link.frame_relay.and_then(|f| f.nlpid) {
            return ProtoKey::Nlpid(n);
        }
        if let Some(llc) = d.link.llc {
            return ProtoKey::Llc(llc.dsap);
        }
        if let Some(p) = d.link.ppp_protocol {
            return ProtoKey::Ppp(p);
        }
        ProtoKey::Unknown
    }

    /// `0800 06`, `8137`, `nlpid 08`…
    fn code(self) -> String {
        match self {
            ProtoKey::Ether(t, Some(p)) => format!("{t:04x} {p:02x}"),
            ProtoKey::Ether(t, None) => format!("{t:04x}"),
            ProtoKey::Nlpid(n) => format!("nlpid {n:02x}"),
            ProtoKey::Llc(s) => format!("llc {s:02x}"),
            ProtoKey::Ppp(p) => format!("ppp {p:04x}"),
            ProtoKey::Unknown => "unknown".into(),
        }
    }

    /// `IP TCP`, `IPX`, `Q.933`, `IP 8f`…
    fn name(self) -> String {
        match self {
            ProtoKey::Ether(t, p) => {
                let base = names::ethertype(t)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("ethertype {t:04x}"));
                match p {
                    Some(p) => match names::ip_protocol(p) {
                        Some(n) => format!("{base} {n}"),
                        None => format!("{base} proto {p}"),
                    },
                    None => base,
                }
            }
            ProtoKey::Nlpid(n) => names::nlpid(n)
                .map(str::to_string)
                .unwrap_or_else(|| format!("NLPID {n:02x}")),
            ProtoKey::Llc(0x42) => "STP".into(),
            ProtoKey::Llc(0xe0) => "IPX (802.2)".into(),
            ProtoKey::Llc(0xf0) => "NetBIOS".into(),
            ProtoKey::Llc(0xfe) => "OSI".into(),
            ProtoKey::Llc(s) => format!("LLC {s:02x}"),
            ProtoKey::Ppp(0xc021) => "PPP LCP".into(),
            ProtoKey::Ppp(p) => format!("PPP {p:04x}"),
            ProtoKey::Unknown => "unknown".into(),
        }
    }

    fn ethertype(self) -> Option<u16> {
        match self {
            ProtoKey::Ether(t, _) => Some(t),
            _ => None,
        }
    }

    fn ip_protocol(self) -> Option<u8> {
        match self {
            ProtoKey::Ether(_, p) => p,
            _ => None,
        }
    }

    /// The protocol word of an application row for traffic that is not IP: `IPX`, `ATALK`…
    fn app_word(self) -> String {
        match self {
            ProtoKey::Ether(t, _) => names::ethertype(t)
                .map(str::to_string)
                .unwrap_or_else(|| format!("Ethertype {t:04x}")),
            other => other.name(),
        }
    }
}

/// What a [`Report`] counts of one packet, taken from its decoding: small and owned, so that
/// packets can be decoded on one thread and counted on another.
#[derive(Clone, Copy, Debug)]
pub struct Observed {
    wire_len: u32,
    headers: Headers,
    circuit: CircuitId,
    frame_relay: Option<trawl_decode::decoded::FrameRelay>,
    protocol: ProtoKey,
    dst: Option<IpAddr>,
}

impl Observed {
    pub fn of(d: &Decoded<'_>) -> Observed {
        Observed {
            wire_len: d.wire_len,
            headers: Headers::of(d),
            circuit: circuit_of(d),
            frame_relay: d.link.frame_relay,
            protocol: ProtoKey::of(d),
            dst: d.net.dst_addr(),
        }
    }
}

/// The circuit of a packet: its Frame Relay DLCI, else its outer VLAN, else untagged.
pub fn circuit_of(d: &Decoded<'_>) -> CircuitId {
    if let Some(fr) = d.link.frame_relay {
        CircuitId::Dlci(fr.dlci)
    } else if let Some(v) = d.link.outer_vlan() {
        CircuitId::Vlan(v)
    } else {
        CircuitId::Untagged
    }
}

#[derive(Default)]
struct Counter {
    packets: u64,
    bytes: u64,
}

#[derive(Default)]
struct ProtoAcc {
    packets: u64,
    bytes: u64,
    retransmissions: u64,
}

struct CircuitAcc {
    packets: u64,
    bytes: u64,
    fecn: u64,
    becn: u64,
    de: u64,
    retrans_de: u64,
    retrans_no_de: u64,
    per_second: Vec<u64>,
    /// Few per circuit: a list beats a map.
    protocols: Vec<(ProtoKey, ProtoAcc)>,
}

/// Who an application row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AppKey {
    /// IP: the application (its index in apps.toml, or none) and the IP protocol.
    Ip(Option<u16>, u8),
    /// Not IP: the link protocol.
    Link(ProtoKey),
}

#[derive(Default)]
struct AppAcc {
    packets: u64,
    bytes: u64,
    new_sessions: u64,
    total_sessions: u64,
}

struct LineAcc {
    packets: u64,
    bytes: u64,
    per_second: Vec<u64>,
    circuits: FastMap<CircuitId, CircuitAcc>,
    /// (IP protocol, address, port).
    sources: FastMap<(u8, IpAddr, u16), Counter>,
    destinations: FastMap<(u8, IpAddr, u16), Counter>,
    apps: FastMap<AppKey, AppAcc>,
    syns: u64,
    retransmissions: u64,
    retrans_destinations: FastMap<IpAddr, u64>,
}

impl LineAcc {
    fn new(period_secs: u64) -> LineAcc {
        LineAcc {
            packets: 0,
            bytes: 0,
            per_second: vec![0; period_secs as usize],
            circuits: FastMap::default(),
            sources: FastMap::default(),
            destinations: FastMap::default(),
            apps: FastMap::default(),
            syns: 0,
            retransmissions: 0,
            retrans_destinations: FastMap::default(),
        }
    }
}

#[derive(Default)]
struct PeriodAcc {
    /// By line number.
    lines: Vec<Option<LineAcc>>,
}

impl PeriodAcc {
    fn line(&mut self, line: u32, period_secs: u64) -> &mut LineAcc {
        let i = line as usize;
        if self.lines.len() <= i {
            self.lines.resize_with(i + 1, || None);
        }
        self.lines[i].get_or_insert_with(|| LineAcc::new(period_secs))
    }
}

/// A flow's traffic in one period, folded into the period's tables when the period is over.
struct FlowAcc {
    /// Start of the period (Unix seconds).
    period: u64,
    app: Option<u16>,
    /// From the key's `lo` endpoint to `hi`, and back.
    packets: [u64; 2],
    bytes: [u64; 2],
    /// The flow began with a SYN in this period.
    new_session: bool,
}

/// Reports of many packets: see the crate documentation.
pub struct Report {
    period_secs: u64,
    top: usize,
    apps: Apps,
    flows: FlowTable,
    /// The flows with packets in the latest period (and stragglers of earlier ones).
    period_flows: FastMap<FlowKey, FlowAcc>,
    periods: BTreeMap<u64, PeriodAcc>,
    latest_period: Option<u64>,
    /// Per line: the first and last second it had a packet.
    spans: Vec<Option<Seconds>>,
    names: Vec<Option<String>>,
}

impl Report {
    /// A report with no packets yet.
    ///
    /// # Panics
    /// If `options.period_secs` is 0 or more than [`MAX_PERIOD_SECS`].
    pub fn new(options: Options) -> Report {
        assert!(
            (1..=MAX_PERIOD_SECS).contains(&options.period_secs),
            "period of {} s: it must be 1 s to 1 day",
            options.period_secs
        );
        Report {
            period_secs: options.period_secs,
            top: options.top,
            apps: options.apps,
            flows: FlowTable::new(Timeouts::default()),
            period_flows: FastMap::default(),
            periods: BTreeMap::new(),
            latest_period: None,
            spans: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Gives line `line` a name for the report (else it is `line N`).
    pub fn name_line(&mut self, line: u32, name: impl Into<String>) {
        let i = line as usize;
        if self.names.len() <= i {
            self.names.resize(i + 1, None);
        }
        self.names[i] = Some(name.into());
    }

    /// Adds a packet seen at `ts_ns` (nanoseconds since the Unix epoch, in time order) on line
    /// `line`. Its bytes are its wire length (`d.wire_len`).
    pub fn add(&mut self, ts_ns: u64, line: u32, d: &Decoded<'_>) {
        self.add_observed(ts_ns, line, &Observed::of(d));
    }

    /// [`add`](Self::add) of what was taken from a packet's decoding (on another thread,
    /// perhaps).
    pub fn add_observed(&mut self, ts_ns: u64, line: u32, d: &Observed) {
        let period_secs = self.period_secs;
        let sec = ts_ns / NS;
        let start = sec - sec % period_secs;
        if self.latest_period.is_none_or(|p| start > p) {
            self.close_flows_before(start);
            self.latest_period = Some(start);
        }
        self.observe(line, sec);
        let bytes = u64::from(d.wire_len);
        let h = d.headers;
        let seen = self.flows.add(ts_ns, line, h, |_, _| {});

        // The packet's flow, for sources, destinations and applications.
        if seen.is_some()
            && let Some((key, src)) = key_of(line, h)
        {
            let apps = &self.apps;
            let acc = self.period_flows.entry(key).or_insert_with(|| FlowAcc {
                period: start,
                app: apps.match_flow(
                    key.protocol,
                    (key.lo.addr, key.lo.port),
                    (key.hi.addr, key.hi.port),
                ),
                packets: [0; 2],
                bytes: [0; 2],
                new_session: false,
            });
            if acc.period != start {
                // A packet out of time order across a period's boundary.
                let la = self
                    .periods
                    .entry(acc.period)
                    .or_default()
                    .line(line, period_secs);
                fold_flow(&key, acc, la);
                acc.period = start;
            }
            let dir = usize::from(src != key.lo);
            acc.packets[dir] += 1;
            acc.bytes[dir] += bytes;
            if seen.is_some_and(|s| s.new_flow && s.syn) {
                acc.new_session = true;
            }
        }

        let la = self
            .periods
            .entry(start)
            .or_default()
            .line(line, period_secs);
        let i = (sec - start) as usize;
        la.packets += 1;
        la.bytes += bytes;
        la.per_second[i] += bytes;
        let ca = la.circuits.entry(d.circuit).or_insert_with(|| CircuitAcc {
            packets: 0,
            bytes: 0,
            fecn: 0,
            becn: 0,
            de: 0,
            retrans_de: 0,
            retrans_no_de: 0,
            per_second: vec![0; period_secs as usize],
            protocols: Vec::new(),
        });
        ca.packets += 1;
        ca.bytes += bytes;
        ca.per_second[i] += bytes;
        let de = d.frame_relay.is_some_and(|f| f.de);
        if let Some(fr) = d.frame_relay {
            ca.fecn += u64::from(fr.fecn);
            ca.becn += u64::from(fr.becn);
            ca.de += u64::from(fr.de);
        }
        let pk = d.protocol;
        let pi = match ca.protocols.iter().position(|(k, _)| *k == pk) {
            Some(pi) => pi,
            None => {
                ca.protocols.push((pk, ProtoAcc::default()));
                ca.protocols.len() - 1
            }
        };
        let pa = &mut ca.protocols[pi].1;
        pa.packets += 1;
        pa.bytes += bytes;
        match seen {
            Some(seen) => {
                la.syns += u64::from(seen.syn);
                if seen.retransmission {
                    la.retransmissions += 1;
                    pa.retransmissions += 1;
                    if de {
                        ca.retrans_de += 1;
                    } else {
                        ca.retrans_no_de += 1;
                    }
                    if let Some(dst) = d.dst {
                        *la.retrans_destinations.entry(dst).or_default() += 1;
                    }
                }
            }
            None => {
                // Not IP: an application row per link protocol.
                let app = la.apps.entry(AppKey::Link(pk)).or_default();
                app.packets += 1;
                app.bytes += bytes;
            }
        }
    }

    fn observe(&mut self, line: u32, sec: u64) {
        let i = line as usize;
        if self.spans.len() <= i {
            self.spans.resize(i + 1, None);
        }
        let span = self.spans[i].get_or_insert(Seconds {
            first: sec,
            last: sec,
        });
        span.first = span.first.min(sec);
        span.last = span.last.max(sec);
    }

    /// Folds the flows of periods before `start` into their periods' tables.
    fn close_flows_before(&mut self, start: u64) {
        let (periods, period_secs) = (&mut self.periods, self.period_secs);
        self.period_flows.retain(|key, acc| {
            if acc.period >= start {
                return true;
            }
            let la = periods
                .entry(acc.period)
                .or_default()
                .line(key.circuit.interface, period_secs);
            fold_flow(key, acc, la);
            false
        });
    }

    /// The reports, one per period with packets, in time order.
    pub fn finish(mut self) -> Vec<PeriodReport> {
        self.close_flows_before(u64::MAX);
        let periods = std::mem::take(&mut self.periods);
        periods
            .into_iter()
            .map(|(start, pa)| self.period_report(start, pa))
            .collect()
    }

    fn period_report(&self, start: u64, pa: PeriodAcc) -> PeriodReport {
        let end = start + self.period_secs;
        let lines = pa
            .lines
            .into_iter()
            .enumerate()
            .filter_map(|(i, la)| la.map(|la| (i as u32, la)))
            .filter(|(_, la)| la.packets > 0)
            .map(|(line, la)| self.line_report(start, line, la))
            .collect();
        PeriodReport {
            start,
            end,
            start_utc: time::rfc3339(start),
            end_utc: time::rfc3339(end),
            lines,
        }
    }

    fn line_report(&self, start: u64, line: u32, la: LineAcc) -> LineReport {
        let span = self.spans[line as usize].expect("a line with packets was observed");
        let observed = Seconds {
            first: span.first.max(start),
            last: span.last.min(start + self.period_secs - 1),
        };
        let range = (observed.first - start) as usize..=(observed.last - start) as usize;
        let top = self.top;
        let per_second = la.per_second[range.clone()].to_vec();
        let (busiest, quietest) = busy_and_quiet(observed.first, &per_second, top);

        let mut circuits: Vec<(CircuitId, CircuitAcc)> = la.circuits.into_iter().collect();
        circuits.sort_by_key(|(c, _)| *c);
        let circuits = circuits
            .into_iter()
            .map(|(c, ca)| {
                let per_second = ca.per_second[range.clone()].to_vec();
                let (busiest, quietest) = busy_and_quiet(observed.first, &per_second, top);
                let mut protocols: Vec<ProtocolRow> = ca
                    .protocols
                    .iter()
                    .map(|(k, p)| ProtocolRow {
                        code: k.code(),
                        ethertype: k.ethertype(),
                        ip_protocol: k.ip_protocol(),
                        name: k.name(),
                        packets: p.packets,
                        bytes: p.bytes,
                        share: percent(p.bytes, ca.bytes),
                        retransmissions: p.retransmissions,
                    })
                    .collect();
                protocols.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.code.cmp(&b.code)));
                CircuitReport {
                    circuit: c.to_string(),
                    name: self.apps.circuits.get(&c).cloned(),
                    packets: ca.packets,
                    bytes: ca.bytes,
                    share: percent(ca.bytes, la.bytes),
                    fecn: ca.fecn,
                    becn: ca.becn,
                    de: ca.de,
                    retransmissions_de: ca.retrans_de,
                    retransmissions_no_de: ca.retrans_no_de,
                    protocols,
                    per_second,
                    busiest,
                    quietest,
                }
            })
            .collect();

        let endpoints = |map: FastMap<(u8, IpAddr, u16), Counter>| {
            let mut v: Vec<((u8, IpAddr, u16), Counter)> = map.into_iter().collect();
            v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
            v.truncate(top);
            v.into_iter()
                .map(|((proto, addr, port), c)| EndpointRow {
                    protocol: names::ip_protocol_short(proto),
                    address: addr.to_string(),
                    port,
                    packets: c.packets,
                    bytes: c.bytes,
                    share: percent(c.bytes, la.bytes),
                    name: self.apps.endpoint_name(proto, addr, port),
                })
                .collect::<Vec<_>>()
        };
        let top_sources = endpoints(la.sources);
        let top_destinations = endpoints(la.destinations);

        let mut applications: Vec<AppRow> = la
            .apps
            .into_iter()
            .map(|(k, a)| self.app_row(k, a))
            .collect();
        applications.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.label.cmp(&b.label)));

        let mut retrans: Vec<(IpAddr, u64)> = la.retrans_destinations.into_iter().collect();
        retrans.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        retrans.truncate(top);

        LineReport {
            line,
            name: self
                .names
                .get(line as usize)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("line {line}")),
            packets: la.packets,
            bytes: la.bytes,
            observed,
            per_second,
            busiest,
            quietest,
            circuits,
            top_sources,
            top_destinations,
            applications,
            tcp_syns: la.syns,
            tcp_retransmissions: la.retransmissions,
            retransmission_destinations: retrans
                .into_iter()
                .map(|(a, n)| AddressRow {
                    address: a.to_string(),
                    count: n,
                })
                .collect(),
        }
    }

    fn app_row(&self, k: AppKey, a: AppAcc) -> AppRow {
        let (label, application, protocol, tcp) = match k {
            AppKey::Ip(app, proto) => {
                let word = names::ip_protocol_short(proto);
                let app = app.map(|i| self.apps.apps[i as usize].name.clone());
                let label = match (&app, proto) {
                    (Some(name), _) => format!("{name} {word}"),
                    (None, 1 | 6 | 17 | 58) => format!("Unknown {word}"),
                    (None, p) => match names::ip_protocol(p) {
                        Some(n) => format!("IP Protocol {p:02x} {n}"),
                        None => format!("IP Protocol {p:02x}"),
                    },
                };
                (label, app, word, proto == 6)
            }
            AppKey::Link(pk) => {
                let word = pk.app_word();
                (word.clone(), None, word, false)
            }
        };
        AppRow {
            label,
            application,
            protocol,
            new_sessions: tcp.then_some(a.new_sessions),
            total_sessions: tcp.then_some(a.total_sessions),
            packets: a.packets,
            bytes: a.bytes,
        }
    }
}

/// Adds a flow's traffic in its period to the line's tables.
fn fold_flow(key: &FlowKey, acc: &mut FlowAcc, la: &mut LineAcc) {
    let packets = acc.packets[0] + acc.packets[1];
    if packets == 0 {
        return;
    }
    let p = key.protocol;
    let lo = (p, key.lo.addr, key.lo.port);
    let hi = (p, key.hi.addr, key.hi.port);
    for (dir, (from, to)) in [(lo, hi), (hi, lo)].into_iter().enumerate() {
        if acc.packets[dir] == 0 {
            continue;
        }
        for (map, k) in [(&mut la.sources, from), (&mut la.destinations, to)] {
            let c = map.entry(k).or_default();
            c.packets += acc.packets[dir];
            c.bytes += acc.bytes[dir];
        }
    }
    let app = la.apps.entry(AppKey::Ip(acc.app, p)).or_default();
    app.packets += packets;
    app.bytes += acc.bytes[0] + acc.bytes[1];
    if p == 6 {
        app.total_sessions += 1;
        app.new_sessions += u64::from(acc.new_session);
    }
    acc.packets = [0; 2];
    acc.bytes = [0; 2];
    acc.new_session = false;
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn second_row(time: u64, bytes: u64) -> SecondRow {
    SecondRow {
        time,
        time_utc: time::rfc3339(time),
        bytes,
        kbps: bytes as f64 * 8.0 / 1000.0,
    }
}

/// The `top` busiest seconds (most bytes first) and quietest (fewest first) of `per_second`,
/// whose first element is second `first`; ties go to the earlier second.
fn busy_and_quiet(first: u64, per_second: &[u64], top: usize) -> (Vec<SecondRow>, Vec<SecondRow>) {
    let mut order: Vec<u32> = (0..per_second.len() as u32).collect();
    order.sort_by(|&a, &b| {
        per_second[b as usize]
            .cmp(&per_second[a as usize])
            .then(a.cmp(&b))
    });
    let busiest = order
        .iter()
        .take(top)
        .map(|&i| second_row(first + i as u64, per_second[i as usize]))
        .collect();
    order.sort_by(|&a, &b| {
        per_second[a as usize]
            .cmp(&per_second[b as usize])
            .then(a.cmp(&b))
    });
    let quietest = order
        .iter()
        .take(top)
        .map(|&i| second_row(first + i as u64, per_second[i as usize]))
        .collect();
    (busiest, quietest)
}
