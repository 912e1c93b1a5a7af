//! `CaptureReader::from_maybe_compressed`: gzip, zstd or plain bytes, any capture format.
//! Bounded (common::MAX_PACKETS packets, common::MAX_DATA bytes of packet data) so that a
//! decompression bomb made of packets does not time the fuzzer out. The reader checks no limit of
//! its own between packets: a bomb of non-packet pcapng blocks is bounded only by the input size
//! that run.sh allows this target (-max_len).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use trawl_pcap::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_maybe_compressed(input) else { return };
    let _ = reader.format().name();
    let _ = common::drain(&mut reader);
    for iface in reader.interfaces() {
        let _ = iface.name();
    }
});
