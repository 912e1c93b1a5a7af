//! pcapng: read every packet and, as it comes, write it again with `PcapngWriter` (sections with
//! their options and interfaces described as read, packets with their own options); then read
//! the copy back and require the same sections, interfaces and packets (times, lengths, bytes,
//! options and comments).
//!
//! Inputs the reader detects as another format are only read (no round trip).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use trawl_pcap::{CaptureReader, Format, Interface, PcapngWriter, Timestamp, opt};

/// Whether a time read with this resolution must come back exactly: the reader rounds units down
/// to nanoseconds and the writer rounds back up, which is exact for any resolution up to 1 ns;
/// finer ones lose what nanoseconds cannot hold.
fn exact(units_per_sec: u64) -> bool {
    // The writer rounds up what the reader rounded down: exact at any resolution up to 1 ns.
    units_per_sec <= 1_000_000_000
}

fn nanos(ts: Timestamp) -> u128 {
    ts.secs as u128 * 1_000_000_000 + ts.nanos as u128
}

/// Writes the sections and interfaces the reader has seen and the writer has not.
struct Mirror {
    sections: usize,
    interfaces: usize,
    /// Global index of the first interface of the section being written.
    base: u32,
}

impl Mirror {
    fn catch_up(&mut self, r: &CaptureReader<&[u8]>, w: &mut PcapngWriter<Vec<u8>>) {
        let sections = r.sections();
        let section = |m: &mut Mirror, w: &mut PcapngWriter<Vec<u8>>| {
            if m.sections > 0 {
                w.section(&sections[m.sections]).unwrap();
            }
            m.sections += 1;
            m.base = m.interfaces as u32;
        };
        for iface in &r.interfaces()[self.interfaces..] {
            while self.sections <= iface.section as usize {
                section(self, w);
            }
            let id = w.add_interface(iface).unwrap();
            assert_eq!(self.base + id, self.interfaces as u32, "interface ids");
            self.interfaces += 1;
        }
        while self.sections < sections.len() {
            section(self, w);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(data) else { return };
    if reader.format() != Format::Pcapng {
        common::drain(&mut reader);
        return;
    }
    let mut w = PcapngWriter::new(Vec::new(), &reader.sections()[0]).unwrap();
    let mut mirror = Mirror { sections: 1, interfaces: 0, base: 0 };
    let mut written: Vec<common::Owned> = Vec::new();
    let mut data_bytes = 0;
    loop {
        match reader.advance() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
        mirror.catch_up(&reader, &mut w);
        let p = reader.current().unwrap();
        let iface = &reader.interfaces()[p.interface as usize];
        assert_eq!(iface.link_type, p.link_type);
        assert_eq!(iface.section as usize + 1, reader.sections().len(), "a packet of an old section");
        assert!(p.interface >= mirror.base);
        match w.write(p.interface - mirror.base, p.ts, p.orig_len, p.data, p.options) {
            Ok(()) => {
                data_bytes += p.data.len();
                written.push(common::Owned {
                    interface: p.interface,
                    link_type: p.link_type,
                    ts: p.ts,
                    orig_len: p.orig_len,
                    data: p.data.to_vec(),
                    options: p.options.iter().map(|(c, v)| (c, v.to_vec())).collect(),
                    comments: p.comments().map(str::to_owned).collect(),
                    options_big_endian: p.options.big_endian(),
                });
            }
            // Only a time beyond what the interface's resolution counts in 64 bits may be refused.
            Err(e) => assert!(p.ts.to_units(iface.units_per_sec).is_none(), "write refused {p:?}: {e}"),
        }
        if written.len() >= common::MAX_PACKETS || data_bytes >= common::MAX_DATA {
            break;
        }
    }
    mirror.catch_up(&reader, &mut w);
    let sections = reader.sections().to_vec();
    let interfaces: Vec<Interface> = reader.interfaces().to_vec();
    let bytes = w.finish().unwrap();

    let mut back = CaptureReader::new(&bytes[..]).expect("reading back what PcapngWriter wrote");
    let (again, end) = common::drain(&mut back);
    assert_ne!(end, common::End::Error, "the copy must read without error");
    assert_eq!(back.sections(), &sections[..], "section options of the copy");
    assert_eq!(back.interfaces().len(), interfaces.len(), "interface count of the copy");
    for (i, (a, b)) in interfaces.iter().zip(back.interfaces()).enumerate() {
        assert_eq!(a.link_type, b.link_type, "interface {i}: link type");
        assert_eq!(a.snaplen, b.snaplen, "interface {i}: snaplen");
        assert_eq!(a.section, b.section, "interface {i}: section");
        assert_eq!(a.units_per_sec, b.units_per_sec, "interface {i}: resolution");
        assert_eq!(b.ts_offset, 0, "interface {i}: the writer writes absolute times");
        assert_eq!(a.options.without(opt::IF_TSOFFSET), b.options, "interface {i}: options");
    }
    assert_eq!(again.len(), written.len(), "packet count of the copy");
    for (i, (a, b)) in written.iter().zip(&again).enumerate() {
        assert_eq!(a.interface, b.interface, "packet {i}: interface");
        assert_eq!(a.link_type, b.link_type, "packet {i}: link type");
        assert_eq!(a.data, b.data, "packet {i}: bytes");
        assert_eq!(b.orig_len, a.orig_len.max(a.data.len() as u32), "packet {i}: wire length");
        assert_eq!(a.comments, b.comments, "packet {i}: comments");
        assert!(!b.options_big_endian, "the writer writes little-endian");
        if !a.options_big_endian {
            assert_eq!(a.options, b.options, "packet {i}: options");
        } else {
            // Numeric values were byte-swapped: compare codes and lengths.
            let shape = |o: &[(u16, Vec<u8>)]| o.iter().map(|(c, v)| (*c, v.len())).collect::<Vec<_>>();
            assert_eq!(shape(&a.options), shape(&b.options), "packet {i}: options");
        }
        let units = interfaces[a.interface as usize].units_per_sec;
        if exact(units) {
            assert_eq!(a.ts, b.ts, "packet {i}: timestamp ({units} units/s)");
        } else {
            // Never later, and at most one unit earlier.
            let (x, y) = (nanos(a.ts), nanos(b.ts));
            let unit = 1_000_000_000u128.div_ceil(units as u128);
            assert!(
                y <= x && x - y <= unit,
                "packet {i}: timestamp {:?} came back as {:?} ({units} units/s)",
                a.ts,
                b.ts
            );
        }
    }
});
