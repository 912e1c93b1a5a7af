//! The edge agent: capture sources, batching, the spool and the uplink to the server.
//!
//! So far: [`spool::Spool`], the bounded on-disk queue of batches that are not yet acknowledged,
//! which survives restarts and counts every batch it has to discard. The capture source
//! (AF_PACKET) and the uplink (HTTPS) come with the rest of issue 3.

pub mod spool;
