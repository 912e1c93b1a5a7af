//! Shared by the reader targets: drain a reader into owned packets, checking what every packet
//! must satisfy whatever the input.
#![allow(dead_code)]

use std::io::Read;

use trawl_pcap::{CaptureReader, Timestamp};

/// Stop reading after this many packets or bytes of packet data, so that one input cannot keep
/// the fuzzer busy for long (a decompression bomb, say).
pub const MAX_PACKETS: usize = 10_000;
pub const MAX_DATA: usize = 16 << 20;

/// One packet, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub interface: u32,
    pub link_type: u32,
    pub ts: Timestamp,
    pub orig_len: u32,
    pub data: Vec<u8>,
    /// `(code, value)` of every option, in order (pcapng only).
    pub options: Vec<(u16, Vec<u8>)>,
    pub comments: Vec<String>,
    pub options_big_endian: bool,
}

/// How reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Clean,
    Error,
    Limit,
}

/// Reads packets until the end, an error or the limits.
pub fn drain<R: Read>(reader: &mut CaptureReader<R>) -> (Vec<Owned>, End) {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    loop {
        match reader.advance() {
            Ok(true) => {
                let p = reader.current().expect("advance said there is a packet");
                let iface = reader.interfaces().get(p.interface as usize);
                assert_eq!(iface.map(|i| i.link_type), Some(p.link_type), "the packet's interface");
                assert!(p.ts.nanos < 1_000_000_000, "nanoseconds out of range: {:?}", p.ts);
                assert!(p.data.len() <= trawl_pcap::MAX_PACKET as usize);
                assert!(p.offset < reader.offset(), "record offset {} not before the read position", p.offset);
                bytes += p.data.len();
                out.push(Owned {
                    interface: p.interface,
                    link_type: p.link_type,
                    ts: p.ts,
                    orig_len: p.orig_len,
                    data: p.data.to_vec(),
                    options: p.options.iter().map(|(c, v)| (c, v.to_vec())).collect(),
                    comments: p.comments().map(str::to_owned).collect(),
                    options_big_endian: p.options.big_endian(),
                });
                if out.len() >= MAX_PACKETS || bytes >= MAX_DATA {
                    return (out, End::Limit);
                }
            }
            Ok(false) => {
                // After the end, the reader stays at the end.
                assert!(matches!(reader.next_packet(), Ok(None)));
                return (out, End::Clean);
            }
            Err(e) => {
                let _ = e.to_string();
                let _ = e.is_truncation();
                // After an error, the reader is finished.
                assert!(matches!(reader.next_packet(), Ok(None)));
                return (out, End::Error);
            }
        }
    }
}
