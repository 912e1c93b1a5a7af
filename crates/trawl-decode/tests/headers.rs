//! `decode_headers`' fast path against the full decoder: on every packet of every capture in
//! the shared corpus (`$TRAWL_CORPUS`, else `../shared/corpus` beside the repository), and on
//! every prefix of the first bytes of each (captures cut short at every possible place), the
//! fast path either defers to `decode` or gives exactly the `Headers` that `decode` gives.

#[path = "../../../tests/support/corpus.rs"]
mod corpus;

use trawl_decode::{Headers, decode_headers, decode_headers_fast, decode_with_wire_len};
use trawl_pcap::CaptureReader;

/// How many packets the fast path took, and how many it deferred.
#[derive(Default)]
struct Tally {
    fast: u64,
    deferred: u64,
}

fn check(what: &str, link_type: u32, data: &[u8], wire_len: u32, tally: &mut Tally) {
    let full = Headers::of(&decode_with_wire_len(link_type, data, wire_len));
    match decode_headers_fast(link_type, data, wire_len) {
        Some(fast) => {
            assert_eq!(fast, full, "{what}: the fast path differs from decode");
            tally.fast += 1;
        }
        None => tally.deferred += 1,
    }
    assert_eq!(decode_headers(link_type, data, wire_len), full, "{what}");
}

#[test]
fn the_fast_path_gives_what_decode_gives_on_the_whole_corpus() {
    let dir = corpus::corpus();
    let (mut whole, mut cut) = (Tally::default(), Tally::default());
    let mut files = 0;
    for path in corpus::indexed_captures(&dir) {
        let Ok(mut r) = CaptureReader::open(&path) else {
            continue;
        };
        files += 1;
        let mut n = 0u64;
        // Stops at the first reading error: the packets before it are checked.
        while let Ok(Some(p)) = r.next_packet() {
            n += 1;
            let what = format!("{} packet {n}", path.display());
            check(&what, p.link_type, p.data, p.orig_len, &mut whole);
            // The first packets again, cut short after every byte of their headers.
            if n <= 50 {
                for len in 0..p.data.len().min(160) {
                    let what = format!("{what} cut to {len} bytes");
                    check(&what, p.link_type, &p.data[..len], p.orig_len, &mut cut);
                }
            }
        }
    }
    eprintln!(
        "{files} captures: {} packets on the fast path, {} deferred; cut short: {} fast, {} deferred",
        whole.fast, whole.deferred, cut.fast, cut.deferred
    );
    assert!(files > 1000, "only {files} captures read");
    assert!(whole.fast > 20_000, "the fast path took too few packets");
}

/// Hand-made shapes the corpus may lack: odd IPv4/TCP lengths, deep VLAN stacks, IPv6 chains.
#[test]
fn the_fast_path_gives_what_decode_gives_on_edge_shapes() {
    let mut tally = Tally::default();
    let eth = |ty: u16, rest: &[u8]| {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(rest);
        f
    };
    let mut ipv4 = vec![
        0x45, 0, 0, 60, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let mut tcp = vec![0u8; 20];
    tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
    tcp[12] = 0x50;
    tcp[13] = 0x12;
    ipv4.extend_from_slice(&tcp);
    let mut frames = Vec::new();
    for ihl in [0x40u8, 0x44, 0x45, 0x46, 0x4f, 0x55] {
        for total in [0u16, 10, 20, 40, 60, 1500] {
            for data_off in [0x00u8, 0x40, 0x50, 0x60, 0xf0] {
                for frag in [0u16, 0x2000, 0x0001, 0x4000] {
                    for proto in [1u8, 6, 17, 47] {
                        let mut ip = ipv4.clone();
                        ip[0] = ihl;
                        ip[2..4].copy_from_slice(&total.to_be_bytes());
                        ip[6..8].copy_from_slice(&frag.to_be_bytes());
                        ip[9] = proto;
                        ip[32] = data_off;
                        frames.push((1, eth(0x0800, &ip)));
                        frames.push((101, ip.clone()));
                        frames.push((228, ip.clone()));
                        frames.push((229, ip));
                    }
                }
            }
        }
    }
    // VLAN stacks of every depth up to 6, of each tag type.
    for tpid in [0x8100u16, 0x88a8, 0x9100, 0x9200] {
        for depth in 0..6 {
            let mut rest = Vec::new();
            for i in 0..depth {
                rest.extend_from_slice(&(100 + i as u16).to_be_bytes());
                rest.extend_from_slice(&(if i + 1 == depth { 0x0800 } else { tpid }).to_be_bytes());
            }
            rest.extend_from_slice(&ipv4);
            let ty = if depth == 0 { 0x0800 } else { tpid };
            frames.push((1, eth(ty, &rest)));
        }
    }
    // IPv6 with extension-header chains: hop-by-hop, routing, fragments (first and not),
    // destination options, AH, ESP, no next header.
    let v6 = |next: u8, payload_len: u16, rest: &[u8]| {
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&payload_len.to_be_bytes());
        ip.push(next);
        ip.push(64);
        ip.extend_from_slice(&[0x20; 16]);
        ip.extend_from_slice(&[0x30; 16]);
        ip.extend_from_slice(rest);
        ip
    };
    for first in [0u8, 43, 44, 60, 51, 50, 59, 6, 17, 58, 1, 132] {
        for second in [6u8, 17, 44, 59] {
            for frag_off in [0u16, 8] {
                let mut ext = vec![second, 0, 0, 0, 0, 0, 0, 0];
                if first == 44 {
                    ext[2..4].copy_from_slice(&frag_off.to_be_bytes());
                }
                if first == 51 {
                    ext[1] = 0; // (0 + 2) * 4 = 8 bytes
                }
                ext.extend_from_slice(&tcp);
                for pl in [0u16, 8, 28, 100] {
                    let ip = v6(first, pl, &ext);
                    frames.push((1, eth(0x86dd, &ip)));
                    frames.push((101, ip.clone()));
                    frames.push((229, ip.clone()));
                    let mut sll = vec![0u8; 14];
                    sll.extend_from_slice(&0x86ddu16.to_be_bytes());
                    sll.extend_from_slice(&ip);
                    frames.push((113, sll));
                    let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
                    sll2.extend_from_slice(&[0u8; 18]);
                    sll2.extend_from_slice(&ip);
                    frames.push((276, sll2));
                }
            }
        }
    }
    for (i, (link_type, f)) in frames.iter().enumerate() {
        for wire in [f.len() as u32, f.len() as u32 + 1000, 0] {
            for len in 0..=f.len() {
                let what = format!("frame {i} (link type {link_type}) cut to {len}, wire {wire}");
                check(&what, *link_type, &f[..len], wire, &mut tally);
            }
        }
    }
    assert!(tally.fast > 1000 && tally.deferred > 1000);
}
