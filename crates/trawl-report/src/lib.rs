//! Traffic reports and session profiles, after the Frame Relay WAN monitor's fifteen-minute
//! report (Meek, LISA 2000): decoded packets in, per-period tables out, and renderers that turn
//! them into text, HTML with inline SVG charts, or (through `serde`) JSON.
//!
//! [`Report`] takes packets in time order with the **line** each was seen on — the caller's
//! number for an input interface, or one direction of it when the capture records directions
//! (the paper had one file per direction) — and [`Report::finish`] gives one [`PeriodReport`]
//! per period (15 minutes by default, aligned to multiples of the period since the Unix epoch)
//! with, for every line:
//!
//! - **circuits**: the Frame Relay DLCI on Frame Relay links, else the outer VLAN, else
//!   `untagged`: packets, bytes, share of the line, FECN/BECN/DE frames, TCP retransmissions in
//!   frames with DE and without;
//! - the **protocol mix** of each circuit: ethertype (and IP protocol under IPv4/IPv6; NLPID,
//!   LLC or PPP protocol when there is no ethertype): packets, bytes, share, retransmissions;
//! - the **busiest and quietest seconds** of the line and of each circuit (bytes, kbit/s) over
//!   the seconds the line was *observed*: from its first packet to its last in the whole input,
//!   clipped to the period. A second in that range without a packet counts, with 0 bytes, as a
//!   quiet second (a circuit falling silent on a busy line is what quiet seconds are for); the
//!   seconds before a line's first packet or after its last are not known to be quiet and are
//!   left out;
//! - the **top sources and destinations** by (IP protocol, address, port) bytes, with names from
//!   `apps.toml` ([`Apps`]);
//! - **applications** named by server address (or prefix), port and protocol: new TCP sessions
//!   (flows that began with a SYN in the period), total TCP sessions (flows with packets in it),
//!   packets, bytes; unmatched traffic as `Unknown TCP`, `Unknown UDP`, `Unknown ICMP`,
//!   `IP Protocol 2f GRE`, and non-IP by its protocol (`IPX`, `ARP`);
//! - **TCP SYNs** (SYN without ACK), **TCP retransmissions**, and where retransmissions went.
//!
//! Sessions, SYNs and retransmissions come from `trawl-flow`'s flow table (keyed by line, so a
//! line that holds one direction sees only that direction's half of each session: a session
//! counts as new on the line its SYN went out on, and in the total of every line it used).
//!
//! [`Profile`] is the profile of one session (a protocol and two endpoints, any circuit):
//! per-second bytes and packets each way, packet sizes each way in 64-byte bins, totals.
//!
//! [`render`] draws both as text (aligned tables, thousands separators) and as one
//! self-contained HTML file (inline CSS and SVG, no external references).
//!
//! Pure: no I/O and no clock (times are the packets'). Memory: per period, 8 bytes a second for
//! each line and circuit, the flows with packets in the latest period, and the period's
//! endpoint tables.

mod apps;
mod engine;
mod model;
mod names;
mod profile;
pub mod render;

use std::fmt;

pub use apps::{App, Apps, AppsError, Prefix};
pub use engine::{MAX_PERIOD_SECS, Observed, Options, Report, circuit_of};
pub use model::*;
pub use profile::{Busiest, Profile, SessionSpec};

/// A circuit on a line: a Frame Relay DLCI, an outer VLAN, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CircuitId {
    Untagged,
    Vlan(u16),
    Dlci(u32),
}

impl CircuitId {
    /// Parses `dlci 460`, `vlan 100`, `untagged`.
    pub fn parse(s: &str) -> Option<CircuitId> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("untagged") {
            return Some(CircuitId::Untagged);
        }
        let (kind, n) = s.split_once(char::is_whitespace)?;
        match kind.to_ascii_lowercase().as_str() {
            "dlci" => n.trim().parse().ok().map(CircuitId::Dlci),
            "vlan" => n
                .trim()
                .parse()
                .ok()
                .filter(|&v: &u16| v < 4096)
                .map(CircuitId::Vlan),
            _ => None,
        }
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CircuitId::Untagged => f.write_str("untagged"),
            CircuitId::Vlan(v) => write!(f, "vlan {v}"),
            CircuitId::Dlci(d) => write!(f, "dlci {d}"),
        }
    }
}
