//! Capture sources: where the agent's packets come from.
//!
//! A [`Source`] hands out packets in batches: [`Source::next_batch`] waits up to a timeout for
//! packets and calls a visitor once per packet with a [`Packet`] that borrows the source's buffer
//! (for AF_PACKET, the kernel's ring block itself: no copy per packet), then returns how many it
//! delivered. [`Source::stats`] returns cumulative counters ([`SourceStats`]) that travel with
//! the batches to the server. [`Source::complete_before`] is the source's watermark: no packet
//! it has still to hand out is stamped earlier.
//!
//! Two sources:
//! - [`afpacket::AfPacketSource`]: a live Linux interface, through an AF_PACKET socket with a
//!   TPACKET_V3 ring and a classic-BPF filter run by the kernel (docs/agent-capture.md).
//! - [`replay::ReplaySource`]: a pcap or pcapng file (`--pcap FILE`), as fast as possible or
//!   paced by the file's timestamps.

pub mod afpacket;
pub mod replay;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use trawl_pcap::Timestamp;

/// `LINKTYPE_ETHERNET`: what an AF_PACKET source yields on an Ethernet (or loopback) interface.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// One captured packet, borrowed from the source until the visitor returns.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// When the kernel (or the capture file) stamped the packet.
    pub ts: Timestamp,
    /// Length on the wire; `data.len()` is the captured length (at most the snap length).
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// Cumulative counters since the source was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets handed to the caller.
    pub received: u64,
    /// Packets that passed the filter but found no room in the ring (`tp_drops`).
    pub kernel_drops: u64,
    /// Times the kernel found the ring full and froze the queue (`tp_freeze_q_cnt`).
    pub ring_full_events: u64,
    /// Receive drops of the interface itself (the `drop` column of `/proc/net/dev`, that is
    /// `rx_dropped + rx_missed_errors`), counted from the moment the source was opened: packets
    /// the NIC or driver lost before any socket could see them. Zero when unavailable.
    pub interface_drops: u64,
}

/// What one [`Source::next_batch`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// This many packets (at least one) were handed to the visitor.
    Packets(usize),
    /// The timeout passed with no packet.
    Idle,
    /// The source has no more packets and never will (end of a replayed file).
    Finished,
}

/// A source of captured packets.
pub trait Source {
    /// The `LINKTYPE_*` of every packet this source yields.
    fn link_type(&self) -> u32;

    /// The snap length: no packet's `data` is longer.
    fn snaplen(&self) -> u32;

    /// Waits up to `timeout` for packets and hands each ready one to `visit`, in order.
    /// Returns as soon as some packets were delivered; a call may deliver many (a whole ring
    /// block or several).
    fn next_batch(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Batch, SourceError>;

    /// Counters since the source was opened.
    fn stats(&mut self) -> Result<SourceStats, SourceError>;

    /// The source's watermark: every packet it will still hand out is stamped at or after this
    /// time (ns since the epoch, the clock of the packets' stamps); 0 when it cannot say,
    /// `u64::MAX` when it will hand out nothing more. It never goes back. The agent states it
    /// (or less) in every batch as `complete_ns` (docs/protocol.md), so it must not be a guess
    /// that a later packet can contradict: such a packet would be late in a live view.
    fn complete_before(&self) -> u64;
}

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A system call failed: `eth0: setsockopt(PACKET_RX_RING): Invalid argument (os error 22)`.
    #[error("{interface}: {call}: {source}")]
    Syscall {
        interface: String,
        call: &'static str,
        source: io::Error,
    },
    /// The filter program is not one the kernel would accept.
    #[error("{interface}: the capture filter is invalid: {source}")]
    Filter {
        interface: String,
        source: trawl_bpf::ValidateError,
    },
    /// A setting is out of range, or the interface is of a kind not supported yet.
    #[error("{interface}: {detail}")]
    Config { interface: String, detail: String },
    /// The kernel's ring holds something that does not parse (should never happen).
    #[error("{interface}: ring block {block} is malformed: {detail}")]
    Ring {
        interface: String,
        block: usize,
        detail: String,
    },
    /// A replayed capture file could not be read.
    #[error("{path}: {source}")]
    Replay {
        path: PathBuf,
        source: trawl_pcap::Error,
    },
    /// A replayed capture file mixes link types, which one source cannot express.
    #[error(
        "{path}: packet at byte {offset} has link type {found}, but the file's first interface \
         has {expected}; replaying captures with mixed link types is not supported"
    )]
    MixedLinkTypes {
        path: PathBuf,
        offset: u64,
        expected: u32,
        found: u32,
    },
}
