//! Classic pcap: read every packet, write them again with `PcapWriter`, read that back, and
//! require the same packets (timestamps, lengths, bytes) and header fields.
//!
//! The input goes to `CaptureReader::new` as it is; the corpus is seeded with pcap files, and
//! inputs the reader detects as another format are only read (no round trip).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use trawl_pcap::{CaptureReader, Format, PcapWriter, TsPrecision};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(data) else { return };
    let (packets, _end) = common::drain(&mut reader);
    let Format::Pcap { nanos, .. } = reader.format() else { return };
    let iface = reader.interfaces()[0].clone();
    assert_eq!(reader.interfaces().len(), 1, "a pcap file has one interface");
    assert!(iface.link_type <= 0xffff, "the link type is the low 16 bits of the field");

    let precision = if nanos { TsPrecision::Nano } else { TsPrecision::Micro };
    let mut w = PcapWriter::new(Vec::new(), iface.link_type, iface.snaplen, precision).unwrap();
    let mut written = Vec::new();
    for p in &packets {
        assert_eq!(p.interface, 0);
        if !nanos {
            assert_eq!(p.ts.nanos % 1000, 0, "a microsecond file gave nanoseconds: {:?}", p.ts);
        }
        if p.ts.secs > u32::MAX as u64 {
            // pcap counts seconds in 32 bits; a microsecond field of 4 billion can carry past that
            // on reading. The writer must refuse such a time, not wrap it.
            assert!(w.write(p.ts, p.orig_len, &p.data).is_err(), "wrote {:?} into pcap", p.ts);
            continue;
        }
        w.write(p.ts, p.orig_len, &p.data).expect("writing into a Vec");
        written.push(p);
    }
    let bytes = w.finish().unwrap();

    let mut back = CaptureReader::new(&bytes[..]).expect("reading back what PcapWriter wrote");
    assert_eq!(
        back.format(),
        Format::Pcap { nanos, big_endian: false, modified: false },
        "format of the copy"
    );
    assert_eq!(back.interfaces()[0].link_type, iface.link_type);
    assert_eq!(back.interfaces()[0].snaplen, iface.snaplen);
    assert_eq!(back.interfaces()[0].units_per_sec, iface.units_per_sec);
    let (again, end) = common::drain(&mut back);
    assert_ne!(end, common::End::Error, "the copy must read without error");
    assert_eq!(again.len(), written.len(), "packet count of the copy");
    for (i, (a, b)) in written.iter().zip(&again).enumerate() {
        assert_eq!(a.ts, b.ts, "packet {i}: timestamp");
        assert_eq!(a.data, b.data, "packet {i}: bytes");
        assert_eq!(
            b.orig_len,
            a.orig_len.max(a.data.len() as u32),
            "packet {i}: wire length (raised to the captured length on writing)"
        );
        assert_eq!(b.link_type, a.link_type, "packet {i}: link type");
    }
});
