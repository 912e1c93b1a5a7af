//! What a report says: the values [`crate::Report::finish`] returns, in their JSON form
//! (`serde`). The renderers (`render`) draw these and nothing else.

use serde::Serialize;

/// One period (15 minutes by default) of one or more lines.
#[derive(Clone, Debug, Serialize)]
pub struct PeriodReport {
    /// Unix seconds; a multiple of the period.
    pub start: u64,
    /// Unix seconds, exclusive.
    pub end: u64,
    pub start_utc: String,
    pub end_utc: String,
    /// The lines with packets in this period, by line number.
    pub lines: Vec<LineReport>,
}

/// One line (an interface, or one direction of one) in one period.
#[derive(Clone, Debug, Serialize)]
pub struct LineReport {
    pub line: u32,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// The seconds of the period the line was observed in (between its first and last packet
    /// in the whole input, clipped to the period): the range the per-second figures and the
    /// busy and quiet seconds cover.
    pub observed: Seconds,
    /// Bytes in each second of `observed`, in order.
    pub per_second: Vec<u64>,
    pub busiest: Vec<SecondRow>,
    pub quietest: Vec<SecondRow>,
    pub circuits: Vec<CircuitReport>,
    pub top_sources: Vec<EndpointRow>,
    pub top_destinations: Vec<EndpointRow>,
    pub applications: Vec<AppRow>,
    /// TCP segments with SYN and without ACK.
    pub tcp_syns: u64,
    pub tcp_retransmissions: u64,
    /// Where retransmitted segments went, most first.
    pub retransmission_destinations: Vec<AddressRow>,
}

/// A range of whole seconds, both ends included (Unix seconds).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Seconds {
    pub first: u64,
    pub last: u64,
}

impl Seconds {
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One second's traffic.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SecondRow {
    /// Unix seconds.
    pub time: u64,
    pub time_utc: String,
    pub bytes: u64,
    /// Bytes × 8 / 1000.
    pub kbps: f64,
}

/// A circuit (Frame Relay DLCI, outer VLAN, or untagged) on one line.
#[derive(Clone, Debug, Serialize)]
pub struct CircuitReport {
    /// `dlci 460`, `vlan 100`, `untagged`.
    pub circuit: String,
    /// Its name from apps.toml.
    pub name: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    /// Percent of the line's bytes.
    pub share: f64,
    /// Frames with the Frame Relay FECN, BECN and DE bits set.
    pub fecn: u64,
    pub becn: u64,
    pub de: u64,
    /// TCP retransmissions in frames with and without DE.
    pub retransmissions_de: u64,
    pub retransmissions_no_de: u64,
    pub protocols: Vec<ProtocolRow>,
    /// Bytes in each second of the line's `observed` range.
    pub per_second: Vec<u64>,
    pub busiest: Vec<SecondRow>,
    pub quietest: Vec<SecondRow>,
}

/// One protocol on a circuit.
#[derive(Clone, Debug, Serialize)]
pub struct ProtocolRow {
    /// `0800 06` (ethertype, IP protocol in hex, as the paper prints them), `8137`, `nlpid 08`,
    /// `llc 42`, `ppp c021`, or `unknown`.
    pub code: String,
    pub ethertype: Option<u16>,
    pub ip_protocol: Option<u8>,
    /// `IP TCP`, `IPX`, `Q.933`…
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// Percent of the circuit's bytes.
    pub share: f64,
    pub retransmissions: u64,
}

/// A source or destination: protocol, address, port.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointRow {
    /// `TCP`, `UDP`, `ICMP`, `IP 47`…
    pub protocol: String,
    pub address: String,
    /// 0 for protocols without ports.
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
    /// Percent of the line's bytes.
    pub share: f64,
    /// Host and application names from apps.toml.
    pub name: Option<String>,
}

/// An application on one line.
#[derive(Clone, Debug, Serialize)]
pub struct AppRow {
    /// `GroupWise TCP`, `Unknown UDP`, `IP Protocol 2f GRE`, `IPX`…
    pub label: String,
    /// The application's name from apps.toml, if it matched one.
    pub application: Option<String>,
    /// `TCP`, `UDP`, `ICMP`, … or a link protocol's name for traffic that is not IP.
    pub protocol: String,
    /// TCP only: flows that began with a SYN in the period, and flows with packets in it.
    pub new_sessions: Option<u64>,
    pub total_sessions: Option<u64>,
    pub packets: u64,
    pub bytes: u64,
}

/// An address and a count.
#[derive(Clone, Debug, Serialize)]
pub struct AddressRow {
    pub address: String,
    pub count: u64,
}

/// The profile of one session: see [`crate::Profile`].
#[derive(Clone, Debug, Serialize)]
pub struct ProfileReport {
    /// `tcp 10.0.0.1:1234 10.0.0.2:80`
    pub session: String,
    pub protocol: String,
    /// The two ends: `a` is the first one named (or the session's initiator).
    pub a: String,
    pub b: String,
    /// Nanoseconds since the Unix epoch of the first and last packet; 0 with no packets.
    pub first_ns: u64,
    pub last_ns: u64,
    pub duration_secs: f64,
    pub a_to_b: DirectionProfile,
    pub b_to_a: DirectionProfile,
    /// The seconds from the first packet's to the last packet's.
    pub observed: Option<Seconds>,
    /// Per second of `observed`: bytes and packets each way.
    pub per_second: PerSecondEachWay,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PerSecondEachWay {
    pub a_to_b_bytes: Vec<u64>,
    pub b_to_a_bytes: Vec<u64>,
    pub a_to_b_packets: Vec<u64>,
    pub b_to_a_packets: Vec<u64>,
}

/// One direction of a profiled session.
#[derive(Clone, Debug, Serialize)]
pub struct DirectionProfile {
    pub packets: u64,
    pub bytes: u64,
    /// The busiest second: kbit/s and when (Unix seconds).
    pub max_kbps: f64,
    pub max_second: Option<u64>,
    /// Packets by wire length.
    pub sizes: Vec<SizeBin>,
}

/// Packets of wire length `from..=to`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SizeBin {
    pub from: u32,
    /// `None`: no upper bound.
    pub to: Option<u32>,
    pub packets: u64,
}
