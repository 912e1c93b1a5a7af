//! The edge agent: capture sources, batching, the spool and the uplink to the server.
//!
//! - [`source`]: where packets come from: a live interface through AF_PACKET with a TPACKET_V3
//!   ring and a kernel-run classic-BPF filter ([`source::afpacket`]), or a replayed capture file
//!   ([`source::replay`]), both behind the [`source::Source`] trait with drop counters;
//! - [`spool::Spool`], the bounded queue of batches that are not yet acknowledged (in memory
//!   while the server keeps up, on disk when they must wait), which survives restarts and
//!   counts every batch it has to discard;
//! - [`uplink`] and [`http`]: the server's API over HTTPS, and how its certificate is trusted;
//! - [`agent`]: the runtime, capture → spooler → uplink threads per stream;
//! - [`jobs`]: capture jobs pushed by the server over a long-poll command channel, each run
//!   as a stream of its own with exact limits.

pub mod agent;
#[cfg(feature = "cli")]
pub mod cli;
pub mod http;
pub mod jobs;
pub mod privilege;
pub mod source;
pub mod spool;
pub mod uplink;
