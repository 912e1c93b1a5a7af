//! Classic BPF: bytes → a program and a packet; `validate()`, then `run()` (on every program: the
//! crate promises `run` never panics and always ends, valid or not), the listing, and the JSON
//! round trip of the program.
//!
//! Input layout: bytes 0..2 = instruction count n (u16 LE, cut to what the input holds), bytes
//! 2..6 = wire length (u32 LE), then n instructions of 8 bytes (`code` u16 LE, `jt`, `jf`,
//! `k` u32 LE, as `struct bpf_insn` on a little-endian machine), then the packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_bpf::{Insn, Program};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let n = u16::from_le_bytes([data[0], data[1]]) as usize;
    let wire_len = u32::from_le_bytes(data[2..6].try_into().unwrap());
    let rest = &data[6..];
    let n = n.min(rest.len() / 8);
    let (code, packet) = rest.split_at(n * 8);
    let program: Program = code
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();

    let valid = program.validate();
    if let Err(e) = &valid {
        let _ = e.to_string();
        let _ = (e.index(), e.problem());
        if let Some(i) = e.index() {
            assert!(i < program.len(), "validate named instruction {i} of {}", program.len());
        }
    }
    let verdict = program.run(packet, wire_len);
    // The same input gives the same verdict (no hidden state).
    assert_eq!(verdict, program.run(packet, wire_len));
    if valid.is_ok() {
        // A valid program also runs on an empty packet and on the packet cut short.
        let _ = program.run(&[], wire_len);
        let _ = program.run(&packet[..packet.len() / 2], wire_len);
    }
    let listing = program.listing();
    assert_eq!(listing.lines().count(), program.len(), "one listing line per instruction");
    let json = serde_json::to_vec(&program).unwrap();
    let back: Program = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, program, "JSON round trip");
});
