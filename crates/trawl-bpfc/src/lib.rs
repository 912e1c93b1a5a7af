//! The tcpdump filter compiler, borrowed from libpcap: the only trawl crate that links it.
//!
//! [`compile`] turns a tcpdump expression (`"tcp port 80 and not src net 10.0.0.0/8"`) into a
//! [`trawl_bpf::Program`] for one link type, by calling `pcap_compile` on a dead handle; the
//! server does this once per device link type and ships the bytecode, which agents and offline
//! tools run without libpcap. The rest of the crate is test oracles for the pure crates:
//! [`libpcap_filter`] runs a program with libpcap's own interpreter (`pcap_offline_filter`),
//! [`compile_for_capture`] compiles for one capture file exactly as `tcpdump -r` does,
//! [`read_with_libpcap`] reads a pcap or pcapng file with libpcap (nanosecond timestamps), and
//! [`libpcap_listing`] prints a program with libpcap's `bpf_image`. Link types are `LINKTYPE_*`
//! values, the numbers stored in capture files; the few that differ from libpcap's `DLT_*`
//! values on Linux (101 raw IP and other legacy numbers) are mapped both ways. All `unsafe` code
//! is in the private `ffi` module.

mod compile;
mod ffi;
mod oracle;

pub use compile::{
    CompileError, compile, compile_for_capture, compile_offline, linktype_from_name,
};
pub use oracle::{
    LibpcapCapture, LibpcapPacket, OracleError, libpcap_filter, libpcap_listing,
    libpcap_listing_line, read_with_libpcap, read_with_libpcap_lenient,
};
