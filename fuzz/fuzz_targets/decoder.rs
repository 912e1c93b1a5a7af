//! trawl-decode on one packet: `decode_with_wire_len`, its JSON form, and the tcpdump-style text
//! line with absolute and with relative TCP sequence numbers. Must not panic; the JSON must parse
//! back and the text must be one line (or a line and its hex dump) ending in a newline.
//!
//! Input layout: bytes 0..2 (u16 LE) choose the link type: itself if it is one the decoder
//! supports, else `SUPPORTED[v % len]`; bytes 2..4 (u16 LE) are how much longer the packet was on
//! the wire than captured; the rest is the packet. `seedgen decoder` writes seeds in this layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_decode::{TextFormatter, TextOptions, TimestampPrecision};

const SUPPORTED: [u32; 15] = [0, 1, 9, 12, 14, 50, 51, 101, 104, 107, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let selector = u16::from_le_bytes([data[0], data[1]]) as u32;
    let link_type = if SUPPORTED.contains(&selector) {
        selector
    } else {
        SUPPORTED[selector as usize % SUPPORTED.len()]
    };
    let extra = u16::from_le_bytes([data[2], data[3]]) as u32;
    let packet = &data[4..];
    let wire_len = (packet.len() as u32).saturating_add(extra);

    let d = trawl_decode::decode_with_wire_len(link_type, packet, wire_len);
    assert_eq!(d.caplen as usize, packet.len());
    assert_eq!(d.wire_len, wire_len);
    let _ = format!("{d:?}");

    let json = serde_json::to_vec(&d).expect("a Decoded serialises");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("the JSON parses back");
    assert!(value.is_object());
    let mut line = Vec::new();
    trawl_decode::json::write_json(&mut line, &d);
    assert_eq!(line, json, "json::write_json and serde_json::to_vec agree");

    for absolute_seq in [true, false] {
        for precision in [TimestampPrecision::Micro, TimestampPrecision::Nano] {
            let mut f = TextFormatter::new(TextOptions { absolute_seq, precision });
            let mut out = Vec::new();
            // Twice: the second line of a TCP connection is the one printed relative to the first.
            for i in 0..2u32 {
                let start = out.len();
                f.write_line(&mut out, 1_700_000_000 + i as u64, 123_456_789, link_type, packet, wire_len);
                assert_eq!(out.last(), Some(&b'\n'), "a line ends in a newline");
                assert!(out.len() > start + 1);
            }
            // Extreme times must format too.
            f.write_line(&mut out, u64::MAX, u32::MAX, link_type, packet, wire_len);
            f.reset();
            f.write_decoded(&mut out, &d);
        }
    }
});
