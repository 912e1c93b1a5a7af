//! IPFIX (RFC 7011): flow records encoded as IPFIX messages for a collector.
//!
//! Each direction of a [`Flow`] that has packets becomes one **unidirectional** data record:
//! the forward one from the initiator to the responder, the reverse one the other way (as
//! collectors such as nfdump show flows). IPv4 and IPv6 flows have their own templates:
//!
//! | element (IANA id) | bytes | from |
//! |---|---|---|
//! | sourceIPv4Address (8) / sourceIPv6Address (27) | 4 / 16 | the direction's sender |
//! | destinationIPv4Address (12) / destinationIPv6Address (28) | 4 / 16 | its receiver |
//! | sourceTransportPort (7), destinationTransportPort (11) | 2 + 2 | 0 without ports |
//! | protocolIdentifier (4) | 1 | the IP protocol |
//! | tcpControlBits (6) | 2 | the OR of the direction's TCP flags |
//! | packetDeltaCount (2), octetDeltaCount (1) | 8 + 8 | packets, bytes on the wire |
//! | flowStartMilliseconds (152), flowEndMilliseconds (153) | 8 + 8 | first and last packet |
//! | ingressInterface (10) | 4 | the circuit's interface number |
//! | vlanId (58) | 2 | the circuit's outer VLAN, 0 without one |
//!
//! (nfdump 1.7 reads all of these.) The Frame Relay DLCI of a circuit has no element here.
//!
//! Messages are at most `max_message` bytes (1400 keeps them in one Ethernet frame with room
//! for tunnels). The templates go in the first message and again every `template_every`
//! messages, for collectors that start (or restart) after the exporter: over UDP nothing tells
//! the exporter. Each message's sequence number is the number of data records in the messages
//! before it (modulo 2^32), as RFC 7011 section 3.1 defines it.
//!
//! Pure: flows in, message bytes out; no sockets, no clock (the export time is the caller's).

use std::net::{IpAddr, Ipv6Addr};

use crate::{Direction, Endpoint, Flow};

/// The IPFIX version number in every message header.
pub const VERSION: u16 = 10;
/// Bytes of a message header.
pub const MESSAGE_HEADER_LEN: usize = 16;
/// Bytes of a set header.
pub const SET_HEADER_LEN: usize = 4;
/// The set ID of template sets.
pub const TEMPLATE_SET_ID: u16 = 2;
/// Template IDs (data set IDs) of the two record layouts.
pub const TEMPLATE_IPV4: u16 = 256;
pub const TEMPLATE_IPV6: u16 = 257;
/// The default largest message: fits one Ethernet frame, with room for tunnels.
pub const DEFAULT_MAX_MESSAGE: usize = 1400;
/// By default the templates are sent again every this many messages.
pub const DEFAULT_TEMPLATE_EVERY: u32 = 16;

/// IANA information element identifiers used by the templates.
pub mod ie {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL_IDENTIFIER: u16 = 4;
    pub const TCP_CONTROL_BITS: u16 = 6;
    pub const SOURCE_TRANSPORT_PORT: u16 = 7;
    pub const SOURCE_IPV4_ADDRESS: u16 = 8;
    pub const INGRESS_INTERFACE: u16 = 10;
    pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
    pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
    pub const SOURCE_IPV6_ADDRESS: u16 = 27;
    pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
    pub const VLAN_ID: u16 = 58;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
}

/// The IPv4 template's fields (element, length), in record order.
pub const FIELDS_IPV4: [(u16, u16); 12] =
    fields(ie::SOURCE_IPV4_ADDRESS, ie::DESTINATION_IPV4_ADDRESS, 4);
/// The IPv6 template's fields.
pub const FIELDS_IPV6: [(u16, u16); 12] =
    fields(ie::SOURCE_IPV6_ADDRESS, ie::DESTINATION_IPV6_ADDRESS, 16);

const fn fields(src: u16, dst: u16, addr_len: u16) -> [(u16, u16); 12] {
    [
        (src, addr_len),
        (dst, addr_len),
        (ie::SOURCE_TRANSPORT_PORT, 2),
        (ie::DESTINATION_TRANSPORT_PORT, 2),
        (ie::PROTOCOL_IDENTIFIER, 1),
        (ie::TCP_CONTROL_BITS, 2),
        (ie::PACKET_DELTA_COUNT, 8),
        (ie::OCTET_DELTA_COUNT, 8),
        (ie::FLOW_START_MILLISECONDS, 8),
        (ie::FLOW_END_MILLISECONDS, 8),
        (ie::INGRESS_INTERFACE, 4),
        (ie::VLAN_ID, 2),
    ]
}

const fn record_len(fields: &[(u16, u16); 12]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < fields.len() {
        n += fields[i].1 as usize;
        i += 1;
    }
    n
}

/// Bytes of one data record of each template.
pub const RECORD_LEN_IPV4: usize = record_len(&FIELDS_IPV4);
pub const RECORD_LEN_IPV6: usize = record_len(&FIELDS_IPV6);

/// Bytes of the template set (both templates).
pub const TEMPLATE_SET_LEN: usize =
    SET_HEADER_LEN + 2 * 4 + 4 * FIELDS_IPV4.len() + 4 * FIELDS_IPV6.len();

/// The smallest `max_message` that holds a header, the templates and one record of each kind.
pub const MIN_MAX_MESSAGE: usize = MESSAGE_HEADER_LEN
    + TEMPLATE_SET_LEN
    + 2 * SET_HEADER_LEN
    + RECORD_LEN_IPV4.next_multiple_of(4)
    + RECORD_LEN_IPV6.next_multiple_of(4);

/// One direction of a flow, as one data record carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub protocol: u8,
    pub tcp_flags: u16,
    pub packets: u64,
    pub bytes: u64,
    /// First and last packet, milliseconds since the Unix epoch (truncated).
    pub start_ms: u64,
    pub end_ms: u64,
    pub interface: u32,
    /// The outer VLAN, 0 without one.
    pub vlan: u16,
}

/// The data records of a flow: the forward direction (initiator → responder) and then the
/// reverse one, each only if it had packets.
pub fn records(flow: &Flow) -> impl Iterator<Item = Record> + '_ {
    let initiator = flow.initiator;
    let responder = flow.responder();
    [
        (initiator, responder, &flow.fwd),
        (responder, initiator, &flow.rev),
    ]
    .into_iter()
    .filter(|(_, _, d)| d.packets > 0)
    .map(
        move |(src, dst, d): (Endpoint, Endpoint, &Direction)| Record {
            src,
            dst,
            protocol: flow.key.protocol,
            tcp_flags: d.tcp_flags,
            packets: d.packets,
            bytes: d.bytes,
            start_ms: d.first_ns / 1_000_000,
            end_ms: d.last_ns / 1_000_000,
            interface: flow.key.circuit.interface,
            vlan: flow.key.circuit.vlan.unwrap_or(0),
        },
    )
}

impl Record {
    /// The template that carries this record: IPv4 when both addresses are, else IPv6 (an
    /// IPv4 address then as IPv4-mapped).
    pub fn template(&self) -> u16 {
        match (self.src.addr, self.dst.addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) => TEMPLATE_IPV4,
            _ => TEMPLATE_IPV6,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match (self.src.addr, self.dst.addr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            (s, d) => {
                out.extend_from_slice(&v6(s).octets());
                out.extend_from_slice(&v6(d).octets());
            }
        }
        out.extend_from_slice(&self.src.port.to_be_bytes());
        out.extend_from_slice(&self.dst.port.to_be_bytes());
        out.push(self.protocol);
        out.extend_from_slice(&self.tcp_flags.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.bytes.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        out.extend_from_slice(&self.end_ms.to_be_bytes());
        out.extend_from_slice(&self.interface.to_be_bytes());
        out.extend_from_slice(&self.vlan.to_be_bytes());
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn record_len_of(template: u16) -> usize {
    if template == TEMPLATE_IPV4 {
        RECORD_LEN_IPV4
    } else {
        RECORD_LEN_IPV6
    }
}

/// Builds IPFIX messages from flows, for one observation domain over one transport session.
pub struct IpfixEncoder {
    domain: u32,
    max_message: usize,
    template_every: u32,
    /// The message being built; empty when there is none.
    msg: Vec<u8>,
    /// The open data set: its template and where its header is in `msg`.
    open_set: Option<(u16, usize)>,
    /// Data records in `msg`.
    msg_records: u32,
    /// Data records in the messages handed out (modulo 2^32): the next message's sequence
    /// number.
    sequence: u32,
    messages: u64,
    records: u64,
}

impl IpfixEncoder {
    /// An encoder for `observation_domain`, making messages of at most `max_message` bytes
    /// (raised to [`MIN_MAX_MESSAGE`], lowered to 65535, the most a message header can say),
    /// with the templates every [`DEFAULT_TEMPLATE_EVERY`] messages.
    pub fn new(observation_domain: u32, max_message: usize) -> IpfixEncoder {
        IpfixEncoder {
            domain: observation_domain,
            max_message: max_message.clamp(MIN_MAX_MESSAGE, u16::MAX as usize),
            template_every: DEFAULT_TEMPLATE_EVERY,
            msg: Vec::new(),
            open_set: None,
            msg_records: 0,
            sequence: 0,
            messages: 0,
            records: 0,
        }
    }

    /// Sends the templates in the first message and then in every `n`-th (at least 1: every
    /// message).
    pub fn template_every(mut self, n: u32) -> IpfixEncoder {
        self.template_every = n.max(1);
        self
    }

    /// Messages handed out so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Data records added so far (in messages handed out or still being built).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Adds the data records of `flow`. Messages that are full go to `out`, stamped with
    /// `export_secs` (seconds since the Unix epoch) as their export time.
    pub fn push(&mut self, flow: &Flow, export_secs: u32, out: &mut Vec<Vec<u8>>) {
        for r in records(flow) {
            self.push_record(&r, export_secs, out);
        }
    }

    /// Adds one data record.
    pub fn push_record(&mut self, r: &Record, export_secs: u32, out: &mut Vec<Vec<u8>>) {
        let template = r.template();
        let len = record_len_of(template);
        if !self.msg.is_empty() {
            let same_set = matches!(self.open_set, Some((t, _)) if t == template);
            let before = if same_set {
                self.msg.len()
            } else {
                self.msg.len().next_multiple_of(4) + SET_HEADER_LEN
            };
            if (before + len).next_multiple_of(4) > self.max_message {
                self.finish(export_secs, out);
            }
        }
        if self.msg.is_empty() {
            self.start();
        }
        if !matches!(self.open_set, Some((t, _)) if t == template) {
            self.close_set();
            self.open_set = Some((template, self.msg.len()));
            self.msg.extend_from_slice(&template.to_be_bytes());
            self.msg.extend_from_slice(&[0, 0]);
        }
        r.encode(&mut self.msg);
        self.msg_records += 1;
        self.records += 1;
    }

    /// Hands out the message being built, if there is one.
    pub fn flush(&mut self, export_secs: u32, out: &mut Vec<Vec<u8>>) {
        if !self.msg.is_empty() {
            self.finish(export_secs, out);
        }
    }

    /// Begins a message: its header (completed by `finish`), and the templates when due.
    fn start(&mut self) {
        self.msg.reserve(self.max_message);
        self.msg.extend_from_slice(&[0; MESSAGE_HEADER_LEN]);
        if self.messages.is_multiple_of(u64::from(self.template_every)) {
            self.msg.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
            self.msg
                .extend_from_slice(&(TEMPLATE_SET_LEN as u16).to_be_bytes());
            for (id, fields) in [(TEMPLATE_IPV4, &FIELDS_IPV4), (TEMPLATE_IPV6, &FIELDS_IPV6)] {
                self.msg.extend_from_slice(&id.to_be_bytes());
                self.msg
                    .extend_from_slice(&(fields.len() as u16).to_be_bytes());
                for (element, len) in fields {
                    self.msg.extend_from_slice(&element.to_be_bytes());
                    self.msg.extend_from_slice(&len.to_be_bytes());
                }
            }
        }
    }

    /// Ends the open data set: zero padding to a multiple of 4 bytes (shorter than a record,
    /// as RFC 7011 section 3.3.1 requires), and its length, padding included.
    fn close_set(&mut self) {
        if let Some((_, at)) = self.open_set.take() {
            self.msg.resize(self.msg.len().next_multiple_of(4), 0);
            let len = (self.msg.len() - at) as u16;
            self.msg[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    fn finish(&mut self, export_secs: u32, out: &mut Vec<Vec<u8>>) {
        self.close_set();
        let len = self.msg.len() as u16;
        let h = &mut self.msg[..MESSAGE_HEADER_LEN];
        h[0..2].copy_from_slice(&VERSION.to_be_bytes());
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h[4..8].copy_from_slice(&export_secs.to_be_bytes());
        h[8..12].copy_from_slice(&self.sequence.to_be_bytes());
        h[12..16].copy_from_slice(&self.domain.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(self.msg_records);
        self.msg_records = 0;
        self.messages += 1;
        out.push(std::mem::take(&mut self.msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Circuit, FlowKey};
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    /// What a collector makes of one message.
    #[derive(Debug, Default)]
    struct Decoded {
        export_secs: u32,
        sequence: u32,
        domain: u32,
        /// (set ID, length) of every set, in order.
        sets: Vec<(u16, usize)>,
        templates: Vec<(u16, Vec<(u16, u16)>)>,
        records: Vec<Record>,
    }

    fn be16(b: &[u8]) -> u16 {
        u16::from_be_bytes([b[0], b[1]])
    }

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes(b[..4].try_into().unwrap())
    }

    fn be64(b: &[u8]) -> u64 {
        u64::from_be_bytes(b[..8].try_into().unwrap())
    }

    /// Decodes a message as a collector would, with the templates learnt so far, checking
    /// every length and the padding rules on the way.
    fn decode(msg: &[u8], known: &mut HashMap<u16, Vec<(u16, u16)>>) -> Decoded {
        assert!(msg.len() >= MESSAGE_HEADER_LEN);
        assert_eq!(be16(&msg[0..]), VERSION);
        assert_eq!(be16(&msg[2..]) as usize, msg.len(), "header length");
        let mut d = Decoded {
            export_secs: be32(&msg[4..]),
            sequence: be32(&msg[8..]),
            domain: be32(&msg[12..]),
            ..Decoded::default()
        };
        let mut at = MESSAGE_HEADER_LEN;
        while at < msg.len() {
            assert!(at + SET_HEADER_LEN <= msg.len(), "a set header at {at}");
            let (id, len) = (be16(&msg[at..]), be16(&msg[at + 2..]) as usize);
            assert!(
                len >= SET_HEADER_LEN && at + len <= msg.len(),
                "set length {len}"
            );
            assert_eq!(len % 4, 0, "sets are padded to 4 bytes");
            d.sets.push((id, len));
            let body = &msg[at + SET_HEADER_LEN..at + len];
            if id == TEMPLATE_SET_ID {
                let mut p = 0;
                while p + 4 <= body.len() {
                    let (tid, count) = (be16(&body[p..]), be16(&body[p + 2..]) as usize);
                    p += 4;
                    let fields: Vec<(u16, u16)> = (0..count)
                        .map(|i| (be16(&body[p + 4 * i..]), be16(&body[p + 4 * i + 2..])))
                        .collect();
                    p += 4 * count;
                    known.insert(tid, fields.clone());
                    d.templates.push((tid, fields));
                }
                assert_eq!(p, body.len(), "no padding after templates of this size");
            } else {
                assert!(id >= 256, "a data set's ID is a template ID");
                let fields = known.get(&id).expect("a data set after its template");
                let rlen: usize = fields.iter().map(|f| f.1 as usize).sum();
                let n = body.len() / rlen;
                let pad = &body[n * rlen..];
                assert!(pad.len() < rlen && pad.len() < 4, "padding {}", pad.len());
                assert!(pad.iter().all(|&b| b == 0), "padding is zeros");
                for rec in body.chunks_exact(rlen) {
                    d.records.push(decode_record(fields, rec));
                }
            }
            at += len;
        }
        assert_eq!(at, msg.len(), "the sets fill the message");
        d
    }

    fn decode_record(fields: &[(u16, u16)], rec: &[u8]) -> Record {
        let mut r = Record {
            src: Endpoint {
                addr: Ipv4Addr::UNSPECIFIED.into(),
                port: 0,
            },
            dst: Endpoint {
                addr: Ipv4Addr::UNSPECIFIED.into(),
                port: 0,
            },
            protocol: 0,
            tcp_flags: 0,
            packets: 0,
            bytes: 0,
            start_ms: 0,
            end_ms: 0,
            interface: 0,
            vlan: 0,
        };
        let mut p = 0;
        for &(id, len) in fields {
            let v = &rec[p..p + len as usize];
            p += len as usize;
            match id {
                ie::SOURCE_IPV4_ADDRESS => r.src.addr = Ipv4Addr::from(be32(v)).into(),
                ie::DESTINATION_IPV4_ADDRESS => r.dst.addr = Ipv4Addr::from(be32(v)).into(),
                ie::SOURCE_IPV6_ADDRESS => {
                    r.src.addr = Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap()).into()
                }
                ie::DESTINATION_IPV6_ADDRESS => {
                    r.dst.addr = Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap()).into()
                }
                ie::SOURCE_TRANSPORT_PORT => r.src.port = be16(v),
                ie::DESTINATION_TRANSPORT_PORT => r.dst.port = be16(v),
                ie::PROTOCOL_IDENTIFIER => r.protocol = v[0],
                ie::TCP_CONTROL_BITS => r.tcp_flags = be16(v),
                ie::PACKET_DELTA_COUNT => r.packets = be64(v),
                ie::OCTET_DELTA_COUNT => r.bytes = be64(v),
                ie::FLOW_START_MILLISECONDS => r.start_ms = be64(v),
                ie::FLOW_END_MILLISECONDS => r.end_ms = be64(v),
                ie::INGRESS_INTERFACE => r.interface = be32(v),
                ie::VLAN_ID => r.vlan = be16(v),
                other => panic!("unexpected element {other}"),
            }
        }
        r
    }

    fn dir(packets: u64, bytes: u64, first_ns: u64, last_ns: u64, flags: u16) -> Direction {
        let mut d = Direction::default();
        (d.packets, d.bytes, d.first_ns, d.last_ns, d.tcp_flags) =
            (packets, bytes, first_ns, last_ns, flags);
        d
    }

    fn ep(addr: impl Into<IpAddr>, port: u16) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            port,
        }
    }

    fn flow(a: Endpoint, b: Endpoint, protocol: u8, fwd: Direction, rev: Direction) -> Flow {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Flow {
            key: FlowKey {
                circuit: Circuit {
                    interface: 3,
                    vlan: Some(42),
                    dlci: None,
                },
                protocol,
                lo,
                hi,
            },
            initiator: a,
            fwd,
            rev,
        }
    }

    const T: u64 = 1_700_000_000_123_456_789;

    fn tcp_flow(i: u32) -> Flow {
        flow(
            ep(Ipv4Addr::from(0x0a00_0000 + i), 40000),
            ep(Ipv4Addr::new(192, 0, 2, 1), 443),
            6,
            dir(10, 1000 + u64::from(i), T, T + 5_000_000, 0x1b),
            dir(8, 9000, T + 1_000_000, T + 4_999_999, 0x12),
        )
    }

    fn udp6_flow(i: u16) -> Flow {
        flow(
            ep("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 5353 + i),
            ep("ff02::fb".parse::<Ipv6Addr>().unwrap(), 5353),
            17,
            dir(3, 300, T, T + 2_000_000_000, 0),
            Direction::default(),
        )
    }

    fn decode_all(messages: &[Vec<u8>]) -> Vec<Decoded> {
        let mut known = HashMap::new();
        messages.iter().map(|m| decode(m, &mut known)).collect()
    }

    #[test]
    fn a_flow_is_one_record_per_direction_after_the_templates() {
        let mut e = IpfixEncoder::new(7, DEFAULT_MAX_MESSAGE);
        let mut out = Vec::new();
        let f = tcp_flow(1);
        e.push(&f, 1_700_000_100, &mut out);
        assert!(out.is_empty(), "the message is not full yet");
        e.flush(1_700_000_101, &mut out);
        assert_eq!(out.len(), 1);
        let d = &decode_all(&out)[0];
        assert_eq!((d.export_secs, d.sequence, d.domain), (1_700_000_101, 0, 7));
        // Templates, then one data set of two 53-byte records padded to 108.
        assert_eq!(RECORD_LEN_IPV4, 53);
        assert_eq!(RECORD_LEN_IPV6, 77);
        assert_eq!(d.sets, [(2, TEMPLATE_SET_LEN), (256, 4 + 108)]);
        assert_eq!(out[0].len(), 16 + 108 + 112);
        assert_eq!(
            d.templates,
            [
                (TEMPLATE_IPV4, FIELDS_IPV4.to_vec()),
                (TEMPLATE_IPV6, FIELDS_IPV6.to_vec())
            ]
        );
        let (client, server) = (f.initiator, f.responder());
        assert_eq!(
            d.records,
            [
                Record {
                    src: client,
                    dst: server,
                    protocol: 6,
                    tcp_flags: 0x1b,
                    packets: 10,
                    bytes: 1001,
                    start_ms: 1_700_000_000_123,
                    end_ms: 1_700_000_000_128,
                    interface: 3,
                    vlan: 42,
                },
                Record {
                    src: server,
                    dst: client,
                    protocol: 6,
                    tcp_flags: 0x12,
                    packets: 8,
                    bytes: 9000,
                    start_ms: 1_700_000_000_124,
                    end_ms: 1_700_000_000_128,
                    interface: 3,
                    vlan: 42,
                }
            ]
        );
        assert_eq!((e.messages(), e.records()), (1, 2));
        e.flush(1_700_000_102, &mut out);
        assert_eq!(out.len(), 1, "nothing more to send");
    }

    #[test]
    fn a_direction_without_packets_has_no_record_and_ipv6_has_its_template() {
        let mut e = IpfixEncoder::new(1, DEFAULT_MAX_MESSAGE);
        let mut out = Vec::new();
        let mut only_reverse = tcp_flow(2);
        only_reverse.fwd = Direction::default();
        e.push(&udp6_flow(0), 1, &mut out);
        e.push(&only_reverse, 1, &mut out);
        e.push(&udp6_flow(1), 1, &mut out);
        e.flush(1, &mut out);
        let d = &decode_all(&out)[0];
        // One IPv6 record (77 bytes, padded to 80), one IPv4 (53, padded to 56), one IPv6.
        assert_eq!(
            d.sets,
            [(2, TEMPLATE_SET_LEN), (257, 84), (256, 60), (257, 84)]
        );
        let summary: Vec<(u16, u16, u64)> = d
            .records
            .iter()
            .map(|r| (r.src.port, r.dst.port, r.packets))
            .collect();
        assert_eq!(summary, [(5353, 5353, 3), (443, 40000, 8), (5354, 5353, 3)]);
        assert_eq!(d.records[0].dst.addr, "ff02::fb".parse::<IpAddr>().unwrap());
        assert_eq!(d.records[0].end_ms - d.records[0].start_ms, 2000);
    }

    #[test]
    fn messages_are_bounded_numbered_by_records_and_carry_templates_again() {
        let mut e = IpfixEncoder::new(9, 600).template_every(3);
        let mut out = Vec::new();
        let mut pushed = Vec::new();
        for i in 0..200u32 {
            let f = if i % 7 == 0 {
                udp6_flow(i as u16)
            } else {
                tcp_flow(i)
            };
            pushed.extend(records(&f));
            e.push(&f, 1000 + i, &mut out);
        }
        e.flush(5000, &mut out);
        assert!(out.len() > 10);
        assert_eq!(e.messages(), out.len() as u64);
        assert_eq!(e.records(), pushed.len() as u64);
        let decoded = decode_all(&out);
        let mut sequence = 0u32;
        let mut got = Vec::new();
        for (i, (m, d)) in out.iter().zip(&decoded).enumerate() {
            assert!(m.len() <= 600, "message {i} is {} bytes", m.len());
            assert_eq!(d.sequence, sequence, "message {i}: records before it");
            assert_eq!(d.domain, 9);
            assert_eq!(
                d.templates.len(),
                if i % 3 == 0 { 2 } else { 0 },
                "message {i}"
            );
            assert!(!d.records.is_empty(), "message {i} has data");
            // A message is handed out when the next record would not fit.
            if i + 1 < out.len() {
                assert!(
                    m.len() + 4 + RECORD_LEN_IPV6 > 600 - 3,
                    "message {i} is full"
                );
            }
            sequence += d.records.len() as u32;
            got.extend(d.records.iter().copied());
        }
        assert_eq!(got, pushed, "every record once, in order");
        assert_eq!(decoded.last().unwrap().export_secs, 5000);
    }

    #[test]
    fn sequence_numbers_wrap_and_sizes_are_clamped() {
        let mut e = IpfixEncoder::new(0, 0);
        assert_eq!(e.max_message, MIN_MAX_MESSAGE);
        e.sequence = u32::MAX;
        let mut out = Vec::new();
        let mut one_way = tcp_flow(1);
        one_way.rev = Direction::default();
        e.push(&one_way, 0, &mut out);
        e.push(&udp6_flow(1), 0, &mut out);
        e.flush(0, &mut out);
        e.push(&tcp_flow(2), 0, &mut out);
        e.flush(0, &mut out);
        let d = decode_all(&out);
        assert_eq!(
            d.len(),
            2,
            "a header, the templates and a record of each kind fit"
        );
        assert_eq!((d[0].sequence, d[1].sequence), (u32::MAX, 1));
        assert_eq!(IpfixEncoder::new(0, 1 << 20).max_message, 65535);
    }
}
