//! The edge agent: capture sources, batching, the spool and the uplink to the server.
//!
//! So far:
//! - [`source`]: where packets come from: a live interface through AF_PACKET with a TPACKET_V3
//!   ring and a kernel-run classic-BPF filter ([`source::afpacket`]), or a replayed capture file
//!   ([`source::replay`]), both behind the [`source::Source`] trait with drop counters;
//! - [`spool::Spool`], the bounded on-disk queue of batches that are not yet acknowledged,
//!   which survives restarts and counts every batch it has to discard.
//!
//! The uplink (HTTPS) comes with the rest of issue 3.

pub mod agent;
#[cfg(feature = "cli")]
pub mod cli;
pub mod http;
pub mod privilege;
pub mod source;
pub mod spool;
pub mod uplink;
