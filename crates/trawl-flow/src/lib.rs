//! Flows: packets grouped into bidirectional conversations, with per-direction counters.
//!
//! A flow is keyed by its **circuit** (the interface it was seen on, its outer VLAN, its Frame
//! Relay DLCI), the IP protocol, and its two endpoints (address and port; ports are 0 for
//! protocols without them) in a canonical order, so both directions of a conversation land in
//! one flow. The endpoint that sent the flow's first packet is its **initiator**; counters are
//! kept per direction: from the initiator (`fwd`) and towards it (`rev`).
//!
//! [`FlowTable`] takes decoded packets in time order and ends flows on an **idle timeout** (no
//! packet for that long) or an **active timeout** (the flow has lasted that long: it is exported
//! and a new record goes on), handing each ended flow to the caller; memory is bounded by the
//! number of flows alive at once, not by the input.
//!
//! TCP: the flags seen (OR of every segment's), SYNs (SYN without ACK: connection attempts), and
//! retransmissions by **sequence tracking**: a segment that carries data (or SYN/FIN, which take
//! a sequence number) and begins before the end of what was already seen in its direction is a
//! retransmission, also when it carries some new data past it; a keep-alive (at most one byte,
//! one before what was seen) is not. This is the rule of tshark's `tcp.analysis.retransmission`
//! without its timing guesses (docs/analysis.md says where the two differ).
//!
//! Pure: decoded packets in, flow records out; no I/O, no clock (times are the packets').

pub mod hash;
pub mod ipfix;
pub mod record;
pub mod time;

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use trawl_decode::{Headers, TcpHeader};

use crate::hash::SeededMap;

/// Where a flow was seen: interface, outer VLAN, Frame Relay DLCI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Circuit {
    /// The caller's number for the interface (a capture file's interface index).
    pub interface: u32,
    pub vlan: Option<u16>,
    pub dlci: Option<u32>,
}

/// One end of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    /// 0 for protocols without ports.
    pub port: u16,
}

/// What identifies a flow, the same for both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub circuit: Circuit,
    pub protocol: u8,
    /// The lower endpoint (addresses, then ports, compared).
    pub lo: Endpoint,
    pub hi: Endpoint,
}

/// Hashed as a few packed words (4 for IPv4, 6 for IPv6) rather than field by field as derived
/// (15 or more writes): the flow table hashes a key for every packet. Equal keys pack the same.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        let c = &self.circuit;
        h.write_u64(
            u64::from(c.interface)
                | c.vlan.map_or(0, |v| (u64::from(v) | 0x1_0000) << 32)
                | u64::from(self.protocol) << 56,
        );
        h.write_u64(
            u64::from(self.lo.port)
                | u64::from(self.hi.port) << 16
                | c.dlci
                    .map_or(0, |d| (u64::from(d) & 0xff_ffff | 0x100_0000) << 32),
        );
        for a in [&self.lo.addr, &self.hi.addr] {
            match a {
                IpAddr::V4(a) => h.write_u64(u64::from(a.to_bits()) | 1 << 32),
                IpAddr::V6(a) => {
                    let b = a.to_bits();
                    h.write_u64(b as u64);
                    h.write_u64((b >> 64) as u64);
                }
            }
        }
    }
}

/// A flow's key as the table hashes and compares it for every packet: a few words made straight
/// from the packet's headers (no `IpAddr` comparisons), equal exactly when the [`FlowKey`]s are.
/// The `FlowKey` itself is made once, when a flow begins.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Packed {
    /// Interface, VLAN, which addresses are IPv6, whether there is a DLCI, protocol.
    meta: u64,
    /// DLCI, then the lower endpoint's port, then the higher's.
    ports: u64,
    lo: u128,
    hi: u128,
}

const PACKED_VLAN: u64 = 1 << 48;
const PACKED_LO_V6: u64 = 1 << 49;
const PACKED_HI_V6: u64 = 1 << 50;
const PACKED_DLCI: u64 = 1 << 51;

impl Hash for Packed {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.meta);
        h.write_u64(self.ports);
        if self.meta & (PACKED_LO_V6 | PACKED_HI_V6) == 0 {
            // Two IPv4 addresses fill one word.
            h.write_u64((self.lo as u64) << 32 | self.hi as u64);
        } else {
            h.write_u64(self.lo as u64);
            h.write_u64((self.lo >> 64) as u64);
            h.write_u64(self.hi as u64);
            h.write_u64((self.hi >> 64) as u64);
        }
    }
}

/// An address as 128 bits, and whether it is IPv6.
#[inline]
fn addr_bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u128::from(a.to_bits())),
        IpAddr::V6(a) => (true, a.to_bits()),
    }
}

/// The packed key of a packet's flow (its endpoints in the order [`FlowKey`] puts them: IPv4
/// before IPv6, then address, then port); `None` if it is not IP.
#[inline]
fn packed_of(interface: u32, h: &Headers) -> Option<Packed> {
    let ip = h.ip.as_ref()?;
    let a = addr_bits(ip.src);
    let b = addr_bits(ip.dst);
    let src_lo = (a.0, a.1, h.src_port) <= (b.0, b.1, h.dst_port);
    let ((lo_v6, lo), lo_port, (hi_v6, hi), hi_port) = if src_lo {
        (a, h.src_port, b, h.dst_port)
    } else {
        (b, h.dst_port, a, h.src_port)
    };
    let mut meta = u64::from(interface) | u64::from(ip.protocol) << 56;
    if let Some(v) = h.outer_vlan {
        meta |= u64::from(v) << 32 | PACKED_VLAN;
    }
    if lo_v6 {
        meta |= PACKED_LO_V6;
    }
    if hi_v6 {
        meta |= PACKED_HI_V6;
    }
    let mut ports = u64::from(lo_port) << 16 | u64::from(hi_port);
    if let Some(d) = h.dlci {
        meta |= PACKED_DLCI;
        ports |= u64::from(d) << 32;
    }
    Some(Packed {
        meta,
        ports,
        lo,
        hi,
    })
}

/// Counters of one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Direction {
    pub packets: u64,
    /// Bytes on the wire (each packet's original length, as tshark's conversations count).
    pub bytes: u64,
    /// Time of the first and last packet (ns); 0 when there was none.
    pub first_ns: u64,
    pub last_ns: u64,
    /// The OR of the TCP flags of every segment.
    pub tcp_flags: u16,
    /// Segments with SYN and without ACK.
    pub syns: u64,
    /// Segments found to be retransmissions (see the crate documentation).
    pub retransmissions: u64,
    /// The sequence number after the highest byte seen (TCP), once one was, and when.
    next_seq: Option<u32>,
    next_seq_ns: u64,
    /// When this side last sent a SYN (without ACK: it began the connection), and the round
    /// trip from it to this side's first ACK (the handshake's third segment), once known.
    syn_ns: u64,
    rtt_ns: u64,
    /// The last acknowledgement number and window this side sent, and how many duplicate
    /// ACKs of it followed.
    last_ack: Option<u32>,
    last_window: u16,
    dup_acks: u32,
}

impl Direction {
    /// A new record's counters for a flow that goes on: only the TCP tracking carries over.
    fn carry_over(&self) -> Direction {
        Direction {
            next_seq: self.next_seq,
            next_seq_ns: self.next_seq_ns,
            syn_ns: self.syn_ns,
            rtt_ns: self.rtt_ns,
            last_ack: self.last_ack,
            last_window: self.last_window,
            dup_acks: self.dup_acks,
            ..Direction::default()
        }
    }
}

impl Direction {
    fn add(&mut self, ts: u64, wire_len: u32) {
        if self.packets == 0 {
            self.first_ns = ts;
        }
        self.packets += 1;
        self.bytes += wire_len as u64;
        self.last_ns = self.last_ns.max(ts);
    }
}

/// Why a flow record was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// No packet for the idle timeout.
    Idle,
    /// It lasted the active timeout; the flow goes on in a new record.
    Active,
    /// The input ended.
    End,
    /// Snapshot mode: the flow's counters during one interval, `[start_ns, end_ns)`.
    Snapshot { start_ns: u64, end_ns: u64 },
}

/// A flow, or the part of it one record covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub key: FlowKey,
    /// The endpoint that sent the first packet.
    pub initiator: Endpoint,
    /// From the initiator, and towards it.
    pub fwd: Direction,
    pub rev: Direction,
}

impl Flow {
    pub fn first_ns(&self) -> u64 {
        match (self.fwd.packets, self.rev.packets) {
            (0, _) => self.rev.first_ns,
            (_, 0) => self.fwd.first_ns,
            _ => self.fwd.first_ns.min(self.rev.first_ns),
        }
    }

    pub fn last_ns(&self) -> u64 {
        self.fwd.last_ns.max(self.rev.last_ns)
    }

    /// The other endpoint.
    pub fn responder(&self) -> Endpoint {
        if self.initiator == self.key.lo {
            self.key.hi
        } else {
            self.key.lo
        }
    }
}

/// How a [`FlowTable`] ends flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A flow without a packet for this long ends (ns).
    pub idle_ns: u64,
    /// A flow is exported after this long, and goes on in a new record (ns).
    pub active_ns: u64,
}

impl Default for Timeouts {
    /// 15 s idle and 30 min active, as common exporters do.
    fn default() -> Self {
        Timeouts {
            idle_ns: 15_000_000_000,
            active_ns: 1_800_000_000_000,
        }
    }
}

/// What [`FlowTable::add`] found out about one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// It began a flow (or a new record of one after an idle timeout).
    pub new_flow: bool,
    /// It went from the flow's initiator (else towards it).
    pub forward: bool,
    /// A TCP segment with SYN and without ACK.
    pub syn: bool,
    /// A TCP segment found to be a retransmission.
    pub retransmission: bool,
}

/// Packets that made no flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    pub not_ip: u64,
}

/// Snapshot mode: the flows' counters over the current interval.
struct Snapshots {
    interval_ns: u64,
    /// Start of the current interval (a multiple of the interval).
    start_ns: u64,
    flows: SeededMap<Packed, Flow>,
}

/// The flows alive, and the rules that end them.
pub struct FlowTable {
    timeouts: Timeouts,
    snapshots: Option<Snapshots>,
    flows: SeededMap<Packed, Flow>,
    /// Time of the latest packet.
    now: u64,
    /// When the table was last swept for idle flows.
    swept: u64,
    /// The most flows alive at once so far.
    peak: usize,
    pub skipped: Skipped,
}

/// The circuit and flow endpoints of a packet (its [`Headers`], or a [`trawl_decode::Decoded`]
/// they are taken from): `None` if it is not IP.
pub fn key_of(circuit_interface: u32, h: impl Into<Headers>) -> Option<(FlowKey, Endpoint)> {
    key_of_headers(circuit_interface, &h.into())
}

#[inline]
fn key_of_headers(circuit_interface: u32, h: &Headers) -> Option<(FlowKey, Endpoint)> {
    let ip = h.ip?;
    let protocol = ip.protocol;
    let circuit = Circuit {
        interface: circuit_interface,
        vlan: h.outer_vlan,
        dlci: h.dlci,
    };
    let a = Endpoint {
        addr: ip.src,
        port: h.src_port,
    };
    let b = Endpoint {
        addr: ip.dst,
        port: h.dst_port,
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some((
        FlowKey {
            circuit,
            protocol,
            lo,
            hi,
        },
        a,
    ))
}

impl FlowTable {
    pub fn new(timeouts: Timeouts) -> FlowTable {
        FlowTable {
            timeouts,
            snapshots: None,
            flows: SeededMap::default(),
            now: 0,
            swept: 0,
            peak: 0,
            skipped: Skipped::default(),
        }
    }

    /// Snapshot mode: instead of one record per flow, the counters of every flow that had
    /// packets in each interval of `interval_ns` (intervals aligned to multiples of it), handed
    /// out when the interval is over ([`EndReason::Snapshot`]). Flows still end on the timeouts
    /// (which only matters for who began them and their sequence tracking); their records are
    /// the snapshots.
    pub fn with_snapshots(timeouts: Timeouts, interval_ns: u64) -> FlowTable {
        let mut t = FlowTable::new(timeouts);
        t.snapshots = Some(Snapshots {
            interval_ns: interval_ns.max(1),
            start_ns: 0,
            flows: SeededMap::default(),
        });
        t
    }

    /// Flows alive now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The most flows alive at once so far: what the table's memory is bounded by.
    pub fn peak_len(&self) -> usize {
        self.peak
    }

    /// Adds a packet seen at `ts` (ns, in time order) on interface `interface` — its
    /// [`Headers`] ([`trawl_decode::decode_headers`]), or a [`trawl_decode::Decoded`] they are
    /// taken from; flows that end (idle, or at the active timeout) go to `out`. Says what the
    /// packet was to its flow, or `None` when it is not IP (counted in [`FlowTable::skipped`]).
    #[inline]
    pub fn add(
        &mut self,
        ts: u64,
        interface: u32,
        packet: impl Into<Headers>,
        out: impl FnMut(Flow, EndReason),
    ) -> Option<Seen> {
        self.add_headers(ts, interface, &packet.into(), out)
    }

    fn add_headers(
        &mut self,
        ts: u64,
        interface: u32,
        d: &Headers,
        mut out: impl FnMut(Flow, EndReason),
    ) -> Option<Seen> {
        self.now = self.now.max(ts);
        // Idle flows are looked for once per second of packet time: a flow ends at most a
        // second after its idle timeout (the record's times are its packets').
        if self.now.saturating_sub(self.swept) >= 1_000_000_000 {
            if self.snapshots.is_some() {
                // The flows' own records are replaced by the snapshots.
                self.sweep(&mut |_, _| {});
            } else {
                self.sweep(&mut out);
            }
        }
        if let Some(snap) = self.snapshots.as_mut()
            && ts >= snap.start_ns.saturating_add(snap.interval_ns)
        {
            snap.emit(&mut out);
            snap.start_ns = ts - ts % snap.interval_ns;
        }
        let Some(packed) = packed_of(interface, d) else {
            self.skipped.not_ip += 1;
            return None;
        };
        let p = Packet {
            ts,
            interface,
            packed,
            headers: d,
        };
        let Some(snap) = self.snapshots.as_mut() else {
            let (seen, _) = track(&mut self.flows, self.timeouts, &p, out);
            if seen.new_flow {
                self.peak = self.peak.max(self.flows.len());
            }
            return Some(seen);
        };
        let (seen, flow) = track(&mut self.flows, self.timeouts, &p, |_, _| {});
        let (key, initiator) = (flow.key, flow.initiator);
        if seen.new_flow {
            self.peak = self.peak.max(self.flows.len());
        }
        let src = p.src();
        let flow = snap.flows.entry(packed).or_insert_with(|| Flow {
            key,
            initiator,
            fwd: Direction::default(),
            rev: Direction::default(),
        });
        let dir = if src == flow.initiator {
            &mut flow.fwd
        } else {
            &mut flow.rev
        };
        dir.add(ts, d.wire_len);
        if let Some(t) = &d.tcp {
            dir.tcp_flags |= t.flags;
        }
        dir.syns += u64::from(seen.syn);
        dir.retransmissions += u64::from(seen.retransmission);
        Some(seen)
    }

    /// Ends the flows idle at the latest packet's time.
    fn sweep(&mut self, out: &mut impl FnMut(Flow, EndReason)) {
        self.swept = self.now;
        let (now, idle) = (self.now, self.timeouts.idle_ns);
        let mut ended: Vec<(u64, FlowKey, Packed)> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.last_ns()) >= idle)
            .map(|(p, f)| (f.first_ns(), f.key, *p))
            .collect();
        ended.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (_, _, p) in ended {
            let f = self.flows.remove(&p).expect("listed above");
            out(f, EndReason::Idle);
        }
    }

    /// The input has ended: every flow still alive, in order of its first packet (in snapshot
    /// mode, the last interval's snapshots).
    pub fn finish(&mut self, mut out: impl FnMut(Flow, EndReason)) {
        if let Some(snap) = self.snapshots.as_mut() {
            snap.emit(&mut out);
            self.flows.clear();
            return;
        }
        let rest: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        for f in sorted_by_first_packet(rest) {
            out(f, EndReason::End);
        }
    }
}

/// A packet as the table takes it: its time, interface, packed key, and headers.
struct Packet<'a> {
    ts: u64,
    interface: u32,
    packed: Packed,
    headers: &'a Headers,
}

impl Packet<'_> {
    fn src(&self) -> Endpoint {
        let ip = self.headers.ip.as_ref().expect("an IP packet");
        Endpoint {
            addr: ip.src,
            port: self.headers.src_port,
        }
    }
}

/// Counts a packet in `flows`, one hash lookup: ends its flow first if it has been idle or has
/// lasted the active timeout (to `out`). Says what the packet was, and gives its flow.
fn track<'f>(
    flows: &'f mut SeededMap<Packed, Flow>,
    timeouts: Timeouts,
    p: &Packet<'_>,
    mut out: impl FnMut(Flow, EndReason),
) -> (Seen, &'f Flow) {
    let mut seen = Seen::default();
    let ts = p.ts;
    let src = p.src();
    let fresh = |key: FlowKey| Flow {
        key,
        initiator: src,
        fwd: Direction::default(),
        rev: Direction::default(),
    };
    let flow = match flows.entry(p.packed) {
        Entry::Occupied(e) => {
            let flow = e.into_mut();
            let idle = ts.saturating_sub(flow.last_ns()) >= timeouts.idle_ns;
            let active = ts.saturating_sub(flow.first_ns()) >= timeouts.active_ns;
            if idle {
                // A new flow, begun by this packet.
                seen.new_flow = true;
                let key = flow.key;
                out(std::mem::replace(flow, fresh(key)), EndReason::Idle);
            } else if active {
                // The flow goes on: its next record keeps who began it, and its sequence
                // tracking.
                let next = Flow {
                    key: flow.key,
                    initiator: flow.initiator,
                    fwd: flow.fwd.carry_over(),
                    rev: flow.rev.carry_over(),
                };
                out(std::mem::replace(flow, next), EndReason::Active);
            }
            flow
        }
        Entry::Vacant(e) => {
            seen.new_flow = true;
            let (key, _) = key_of_headers(p.interface, p.headers).expect("an IP packet");
            e.insert(fresh(key))
        }
    };
    seen.forward = src == flow.initiator;
    let (dir, other) = if seen.forward {
        (&mut flow.fwd, &flow.rev)
    } else {
        (&mut flow.rev, &flow.fwd)
    };
    dir.add(ts, p.headers.wire_len);
    if let Some(t) = &p.headers.tcp {
        (seen.syn, seen.retransmission) = track_tcp(dir, other, t, ts);
    }
    (seen, flow)
}

/// Flows in order of their first packet, then of their keys: the order records are written in.
/// The keys are compared only when the times are equal (copying them out for every comparison,
/// as a sort by a `(time, key)` tuple does, cost more than the rest of the sort).
fn sorted_by_first_packet(flows: Vec<Flow>) -> Vec<Flow> {
    let mut order: Vec<(u64, usize)> = flows
        .iter()
        .enumerate()
        .map(|(i, f)| (f.first_ns(), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| flows[a.1].key.cmp(&flows[b.1].key))
    });
    let mut slots: Vec<Option<Flow>> = flows.into_iter().map(Some).collect();
    order
        .iter()
        .map(|&(_, i)| slots[i].take().expect("each once"))
        .collect()
}

impl Snapshots {
    /// Hands out the current interval's flows, in order of their first packet in it.
    fn emit(&mut self, out: &mut impl FnMut(Flow, EndReason)) {
        let reason = EndReason::Snapshot {
            start_ns: self.start_ns,
            end_ns: self.start_ns.saturating_add(self.interval_ns),
        };
        let flows: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        for f in sorted_by_first_packet(flows) {
            out(f, reason);
        }
    }
}

const SYN: u16 = 0x02;
const FIN: u16 = 0x01;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

/// Without a measured round trip, a segment that fills a gap this soon after the newest data
/// is taken to be out of order, not sent again (tshark's default).
const OUT_OF_ORDER_NS: u64 = 3_000_000;

/// TCP flags, SYNs, and retransmissions by sequence tracking: (a SYN, a retransmission).
///
/// A segment that takes sequence space (data, SYN or FIN) and begins before the end of what
/// was already seen that way is a retransmission — also when it carries some new data past it
/// — unless it is a keep-alive (at most one byte, one before what was seen) or came out of
/// order: within a round trip (`rtt_ns`, the handshake's; 3 ms when unknown) of the newest data,
/// and not ending where it does. This is how tshark's analysis tells them apart.
fn track_tcp(dir: &mut Direction, other: &Direction, t: &TcpHeader, ts: u64) -> (bool, bool) {
    dir.tcp_flags |= t.flags;
    // Duplicate ACKs: no data, no SYN/FIN/RST, the same acknowledgement and window again.
    if t.flags & ACK != 0 {
        let plain = t.payload_len == 0 && t.flags & (SYN | FIN | RST) == 0;
        if plain && dir.last_ack == Some(t.ack) && dir.last_window == t.window {
            dir.dup_acks += 1;
        } else if dir.last_ack != Some(t.ack) {
            dir.dup_acks = 0;
        }
        dir.last_ack = Some(t.ack);
        dir.last_window = t.window;
    }
    let syn = t.flags & SYN != 0 && t.flags & ACK == 0;
    if syn {
        dir.syns += 1;
    }
    if syn {
        dir.syn_ns = ts;
    } else if t.flags & SYN == 0 && t.flags & ACK != 0 && dir.syn_ns != 0 && dir.rtt_ns == 0 {
        dir.rtt_ns = ts.saturating_sub(dir.syn_ns).max(1);
    }
    let control = t.flags & (SYN | FIN) != 0;
    // SYN and FIN take one sequence number each.
    let len = t.payload_len + u32::from(t.flags & SYN != 0) + u32::from(t.flags & FIN != 0);
    if len == 0 {
        // An ACK alone sent from beyond what was seen (the segments before it were not
        // captured, or come later): the sender has been there.
        if let Some(next) = dir.next_seq
            && seq_lt(next, t.seq)
        {
            dir.next_seq = Some(t.seq);
            dir.next_seq_ns = ts;
        }
        return (syn, false);
    }
    let end = t.seq.wrapping_add(len);
    let Some(next) = dir.next_seq else {
        dir.next_seq = Some(end);
        dir.next_seq_ns = ts;
        return (syn, false);
    };
    if !control && t.payload_len <= 1 && t.seq == next.wrapping_sub(1) {
        // A keep-alive: one byte (or none) already acknowledged, to get an ACK back.
        return (syn, false);
    }
    let mut retransmission = seq_lt(t.seq, next);
    // What the other side asked for again (two duplicate ACKs or more): a fast retransmission,
    // however soon it comes.
    let fast = other.dup_acks >= 2 && other.last_ack == Some(t.seq);
    if retransmission && !fast {
        // The round trip measured by the handshake, by whichever side began it.
        let rtt_ns = dir.rtt_ns.max(other.rtt_ns);
        let threshold = if rtt_ns > 0 { rtt_ns } else { OUT_OF_ORDER_NS };
        let out_of_order = ts.saturating_sub(dir.next_seq_ns) < threshold && end != next;
        retransmission = !out_of_order;
    }
    if retransmission {
        dir.retransmissions += 1;
    }
    if seq_lt(next, end) {
        dir.next_seq = Some(end);
        dir.next_seq_ns = ts;
    }
    (syn, retransmission)
}

/// `a < b` in sequence-number space (RFC 1982 style, 32 bits).
fn seq_lt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed keys are equal exactly when the flow keys are, and put the endpoints in the
    /// flow key's order: over addresses of both families (an IPv4 address and the IPv6 one
    /// holding the same bits apart), ports, VLANs and DLCIs present or not (0 apart from none).
    #[test]
    fn packed_keys_are_equal_exactly_when_flow_keys_are() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let addrs: Vec<IpAddr> = vec![
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
            Ipv6Addr::from_bits(0x0a00_0001).into(),
            "2001:db8::1".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
        ];
        let mut cases = Vec::new();
        for &src in &addrs {
            for &dst in &addrs {
                if src.is_ipv4() != dst.is_ipv4() {
                    continue;
                }
                for (sp, dp) in [(0, 0), (1, 2), (2, 1), (80, 80)] {
                    for vlan in [None, Some(0), Some(7)] {
                        for dlci in [None, Some(0), Some(16)] {
                            for interface in [0, 1] {
                                let h = Headers {
                                    wire_len: 60,
                                    outer_vlan: vlan,
                                    dlci,
                                    ip: Some(trawl_decode::IpHeader {
                                        src,
                                        dst,
                                        protocol: 6,
                                    }),
                                    src_port: sp,
                                    dst_port: dp,
                                    tcp: None,
                                };
                                cases.push((interface, h));
                            }
                        }
                    }
                }
            }
        }
        let keyed: Vec<(FlowKey, Packed)> = cases
            .iter()
            .map(|(i, h)| (key_of_headers(*i, h).unwrap().0, packed_of(*i, h).unwrap()))
            .collect();
        for (k1, p1) in &keyed {
            let lo_v6 = p1.meta & PACKED_LO_V6 != 0;
            assert_eq!(lo_v6, k1.lo.addr.is_ipv6());
            assert_eq!(p1.lo, addr_bits(k1.lo.addr).1);
            assert_eq!(p1.hi, addr_bits(k1.hi.addr).1);
            for (k2, p2) in &keyed {
                assert_eq!(k1 == k2, p1 == p2, "{k1:?} / {k2:?}");
            }
        }
    }

    const S: u64 = 1_000_000_000;
    /// Packets further apart than a segment out of order would be (3 ms).
    const T: u64 = 10_000_000;

    /// An Ethernet/IPv4/TCP frame.
    fn tcp(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        seq: u32,
        flags: u8,
        payload: usize,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12] = 0x08;
        let ip = &mut f[14..];
        ip[0] = 0x45;
        let total = (20 + 20 + payload) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let t = &mut ip[20..];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        f
    }

    /// An Ethernet/IPv4/UDP frame.
    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + payload];
        f[12] = 0x08;
        let ip = &mut f[14..];
        ip[0] = 0x45;
        let total = (20 + 8 + payload) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let u = &mut ip[20..];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        f
    }

    fn run(table: &mut FlowTable, packets: &[(u64, Vec<u8>)]) -> Vec<(Flow, EndReason)> {
        let mut out = Vec::new();
        for (ts, frame) in packets {
            let d = trawl_decode::decode(1, frame);
            table.add(*ts, 0, &d, |f, r| out.push((f, r)));
        }
        table.finish(|f, r| out.push((f, r)));
        out
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn both_directions_make_one_flow_counted_per_direction() {
        let mut t = FlowTable::new(Timeouts::default());
        let flows = run(
            &mut t,
            &[
                (S, tcp(B, 40000, A, 80, 100, 0x02, 0)),
                (S + 1, tcp(A, 80, B, 40000, 500, 0x12, 0)),
                (S + 2, tcp(B, 40000, A, 80, 101, 0x18, 10)),
                (S + 3, udp(A, 53, B, 5353, 4)),
            ],
        );
        assert_eq!(flows.len(), 2);
        let (f, reason) = &flows[0];
        assert_eq!(*reason, EndReason::End);
        assert_eq!(
            f.initiator.addr,
            IpAddr::from(B),
            "the first packet's sender"
        );
        assert_eq!(f.responder().port, 80);
        assert_eq!((f.fwd.packets, f.rev.packets), (2, 1));
        assert_eq!((f.fwd.bytes, f.rev.bytes), (54 + 64, 54));
        assert_eq!((f.fwd.syns, f.rev.syns), (1, 0), "SYN/ACK is not a SYN");
        assert_eq!(f.fwd.tcp_flags, 0x1a);
        assert_eq!((f.first_ns(), f.last_ns()), (S, S + 2));
        assert_eq!(flows[1].0.key.protocol, 17);
    }

    #[test]
    fn data_sent_again_is_a_retransmission_and_new_data_is_not() {
        let mut t = FlowTable::new(Timeouts::default());
        let flows = run(
            &mut t,
            &[
                (S, tcp(A, 1, B, 2, 1000, 0x02, 0)),
                (S + T, tcp(A, 1, B, 2, 1001, 0x10, 100)),
                (S + 2 * T, tcp(A, 1, B, 2, 1101, 0x10, 100)),
                // The first segment again, then part of the second, then new data.
                (S + 3 * T, tcp(A, 1, B, 2, 1001, 0x10, 100)),
                (S + 4 * T, tcp(A, 1, B, 2, 1101, 0x10, 50)),
                (S + 5 * T, tcp(A, 1, B, 2, 1201, 0x10, 100)),
                // A pure ACK repeats no data: not a retransmission.
                (S + 6 * T, tcp(A, 1, B, 2, 1301, 0x10, 0)),
                // The SYN again.
                (S + 7 * T, tcp(A, 1, B, 2, 1000, 0x02, 0)),
                // A keep-alive: one byte before what was seen.
                (S + 8 * T, tcp(A, 1, B, 2, 1300, 0x10, 1)),
                // Old and new data in one segment: sent again (and 1301..1351 is now seen).
                (S + 9 * T, tcp(A, 1, B, 2, 1251, 0x10, 100)),
                (S + 10 * T, tcp(A, 1, B, 2, 1351, 0x10, 10)),
            ],
        );
        assert_eq!(flows[0].0.fwd.retransmissions, 4);
        assert_eq!(flows[0].0.fwd.syns, 2);
    }

    #[test]
    fn a_gap_filled_within_a_round_trip_is_out_of_order_not_sent_again() {
        const MS: u64 = 1_000_000;
        let mut t = FlowTable::new(Timeouts::default());
        let flows = run(
            &mut t,
            &[
                // Handshake: 20 ms round trip.
                (S, tcp(A, 1, B, 2, 1000, 0x02, 0)),
                (S + 10 * MS, tcp(B, 2, A, 1, 5000, 0x12, 0)),
                (S + 20 * MS, tcp(A, 1, B, 2, 1001, 0x10, 0)),
                // 1001..1101 overtaken by 1101..1201; it comes 5 ms later: out of order.
                (S + 30 * MS, tcp(A, 1, B, 2, 1101, 0x10, 100)),
                (S + 35 * MS, tcp(A, 1, B, 2, 1001, 0x10, 100)),
                // 1201..1301 lost, 1301..1401 seen; 1201 again 100 ms later: sent again.
                (S + 40 * MS, tcp(A, 1, B, 2, 1301, 0x10, 100)),
                (S + 140 * MS, tcp(A, 1, B, 2, 1201, 0x10, 100)),
            ],
        );
        assert_eq!(flows[0].0.fwd.retransmissions, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = FlowTable::new(Timeouts::default());
        let flows = run(
            &mut t,
            &[
                (S, tcp(A, 1, B, 2, u32::MAX - 49, 0x10, 100)),
                (S + T, tcp(A, 1, B, 2, 50, 0x10, 100)),
                (S + 2 * T, tcp(A, 1, B, 2, u32::MAX - 49, 0x10, 100)),
            ],
        );
        assert_eq!(flows[0].0.fwd.retransmissions, 1);
    }

    #[test]
    fn idle_and_active_timeouts_end_records() {
        let mut t = FlowTable::new(Timeouts {
            idle_ns: 5 * S,
            active_ns: 20 * S,
        });
        let mut packets = Vec::new();
        // A flow with a packet every second for 30 s, and one that goes quiet after 1 s.
        for i in 0..30 {
            packets.push((S * (i + 1), udp(A, 1, B, 2, 10)));
            if i < 2 {
                packets.push((S * (i + 1) + 1, udp(A, 7, B, 8, 10)));
            }
        }
        let flows = run(&mut t, &packets);
        let summary: Vec<(u16, EndReason, u64)> = flows
            .iter()
            .map(|(f, r)| (f.initiator.port, *r, f.fwd.packets))
            .collect();
        assert_eq!(
            summary,
            [
                (7, EndReason::Idle, 2),
                (1, EndReason::Active, 20),
                (1, EndReason::End, 10)
            ]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn a_record_after_the_active_timeout_keeps_sequence_tracking() {
        let mut t = FlowTable::new(Timeouts {
            idle_ns: 10 * S,
            active_ns: 5 * S,
        });
        let flows = run(
            &mut t,
            &[
                (S, tcp(A, 1, B, 2, 1000, 0x10, 100)),
                (S + 1, udp(A, 7, B, 8, 10)),
                // Past the active timeout: a new record, which knows the first segment.
                (7 * S, tcp(A, 1, B, 2, 1000, 0x10, 100)),
                (7 * S + 1, tcp(A, 1, B, 2, 1100, 0x10, 100)),
            ],
        );
        let tcp: Vec<(EndReason, u64, u64)> = flows
            .iter()
            .filter(|(f, _)| f.key.protocol == 6)
            .map(|(f, r)| (*r, f.fwd.packets, f.fwd.retransmissions))
            .collect();
        assert_eq!(
            tcp,
            [(EndReason::Active, 1, 0), (EndReason::End, 2, 1)],
            "the repeat in the second record is a retransmission"
        );
        assert_eq!(t.peak_len(), 2, "two flows alive at once at most");
    }

    #[test]
    fn snapshots_count_each_interval_and_keep_sequence_tracking() {
        const MS: u64 = 1_000_000;
        let mut t = FlowTable::with_snapshots(Timeouts::default(), 100 * MS);
        let flows = run(
            &mut t,
            &[
                (S + 10 * MS, tcp(A, 1, B, 2, 1000, 0x02, 0)),
                (S + 20 * MS, tcp(B, 2, A, 1, 9, 0x12, 0)),
                (S + 30 * MS, udp(A, 5, B, 6, 10)),
                // Nothing in the second interval; data, then the same data again in the third.
                (S + 210 * MS, tcp(A, 1, B, 2, 1001, 0x18, 100)),
                (S + 250 * MS, tcp(A, 1, B, 2, 1001, 0x18, 100)),
                (S + 299 * MS, tcp(B, 2, A, 1, 10, 0x10, 0)),
            ],
        );
        let got: Vec<(u64, u16, u64, u64, u64, u64)> = flows
            .iter()
            .map(|(f, r)| {
                let EndReason::Snapshot { start_ns, end_ns } = *r else {
                    panic!("not a snapshot: {r:?}")
                };
                assert_eq!(end_ns - start_ns, 100 * MS);
                (
                    (start_ns - S) / MS,
                    f.initiator.port,
                    f.fwd.packets,
                    f.rev.packets,
                    f.fwd.retransmissions,
                    f.fwd.syns,
                )
            })
            .collect();
        assert_eq!(
            got,
            [(0, 1, 1, 1, 0, 1), (0, 5, 1, 0, 0, 0), (200, 1, 2, 1, 1, 0)],
            "the third interval's flow keeps its initiator and knows the repeat"
        );
        assert_eq!(flows[2].0.fwd.bytes, 2 * 154);
    }

    #[test]
    fn circuits_keep_flows_apart_and_non_ip_is_counted() {
        let mut t = FlowTable::new(Timeouts::default());
        let mut out = Vec::new();
        let frame = udp(A, 1, B, 2, 10);
        let d = trawl_decode::decode(1, &frame);
        t.add(S, 0, &d, |f, _| out.push(f));
        t.add(S, 1, &d, |f, _| out.push(f));
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        t.add(S, 0, &trawl_decode::decode(1, &arp), |f, _| out.push(f));
        assert_eq!(t.len(), 2);
        assert_eq!(t.skipped.not_ip, 1);
    }
}
