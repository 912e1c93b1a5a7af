//! Seeds for the fuzz targets whose inputs are not capture files (run by fuzz/seed.sh).
//!
//! `seedgen decoder OUT_DIR MAX FILE...`: every packet of the captures (any format trawl-pcap
//! reads, compressed or not) as `link type (u16 LE), wire length - captured length (u16 LE,
//! saturated), bytes`, the layout of the `decoder` target; only link types the decoder supports,
//! duplicates dropped, at most MAX seeds, taken evenly across the files.
//!
//! `seedgen bpf OUT_DIR PACKET_CAPTURE FILTER_ACCEPT_JSONL`: the programs listed (as `tcpdump -d`
//! prints them) in libpcap's filter tests, turned back into instructions (each line is checked
//! by printing the instruction again with trawl-bpf), in the `bpf` target's layout, each with the
//! first packet of PACKET_CAPTURE.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use trawl_bpf::{Insn, Program, opcode};
use trawl_pcap::CaptureReader;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decoder") if args.len() >= 3 => {
            let max: usize = args[2].parse().expect("MAX is a number");
            decoder(Path::new(&args[1]), max, &args[3..]);
        }
        Some("bpf") if args.len() == 4 => bpf(Path::new(&args[1]), &args[2], &args[3]),
        _ => {
            eprintln!("usage: seedgen decoder OUT_DIR MAX FILE... | seedgen bpf OUT_DIR CAPTURE FILTER_ACCEPT_JSONL");
            std::process::exit(2);
        }
    }
}

fn write_seed(dir: &Path, seen: &mut HashSet<u64>, bytes: &[u8]) -> bool {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let key = h.finish();
    if !seen.insert(key) {
        return false;
    }
    fs::write(dir.join(format!("{key:016x}")), bytes).expect("writing a seed");
    true
}

/// The link types trawl-decode supports (the `decoder` target's list): packets of others are
/// not seeds.
const DECODER_LINK_TYPES: [u32; 15] = [0, 1, 9, 12, 14, 50, 51, 101, 104, 107, 108, 113, 228, 229, 276];

fn decoder(out: &Path, max: usize, files: &[String]) {
    fs::create_dir_all(out).unwrap();
    // Packets of each file, read up to a per-file share so that no one big capture fills the set.
    let per_file = (max / files.len().max(1)).max(20);
    let mut seen = HashSet::new();
    let mut written = 0usize;
    let mut leftovers: Vec<Vec<u8>> = Vec::new();
    for file in files {
        let Ok(mut r) = CaptureReader::open(file) else { continue };
        let mut n = 0;
        while let Ok(Some(p)) = r.next_packet() {
            let extra = p.orig_len.saturating_sub(p.data.len() as u32).min(u16::MAX as u32) as u16;
            if !DECODER_LINK_TYPES.contains(&p.link_type) {
                continue;
            }
            let lt = p.link_type as u16;
            let mut seed = Vec::with_capacity(4 + p.data.len());
            seed.extend_from_slice(&lt.to_le_bytes());
            seed.extend_from_slice(&extra.to_le_bytes());
            seed.extend_from_slice(p.data);
            if n < per_file {
                if write_seed(out, &mut seen, &seed) {
                    n += 1;
                    written += 1;
                }
            } else if leftovers.len() < max {
                leftovers.push(seed);
            } else {
                break;
            }
            if written >= max {
                break;
            }
        }
        if written >= max {
            break;
        }
    }
    for seed in leftovers {
        if written >= max {
            break;
        }
        if write_seed(out, &mut seen, &seed) {
            written += 1;
        }
    }
    eprintln!("seedgen decoder: {written} seeds in {}", out.display());
}

fn bpf(out: &Path, capture: &str, jsonl: &str) {
    fs::create_dir_all(out).unwrap();
    let packet = CaptureReader::open(capture)
        .ok()
        .and_then(|mut r| r.next_packet().ok().flatten().map(|p| (p.data.to_vec(), p.orig_len)))
        .unwrap_or_default();
    // Opcodes by mnemonic.
    let mut codes: HashMap<&'static str, Vec<u16>> = HashMap::new();
    for code in 0..=u16::MAX {
        if let Some(m) = opcode::mnemonic(code) {
            codes.entry(m).or_default().push(code);
        }
    }
    let text = fs::read_to_string(jsonl).expect("reading the filter tests");
    let mut seen = HashSet::new();
    let (mut written, mut failed) = (0, 0);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        for key in ["opt", "unopt", "optunopt"] {
            let Some(listing) = v.get(key).and_then(|l| l.as_str()) else { continue };
            match parse_listing(listing, &codes) {
                Some(program) => {
                    let mut seed = Vec::new();
                    seed.extend_from_slice(&(program.len() as u16).to_le_bytes());
                    seed.extend_from_slice(&packet.1.to_le_bytes());
                    for i in program.insns() {
                        seed.extend_from_slice(&i.code.to_le_bytes());
                        seed.extend_from_slice(&[i.jt, i.jf]);
                        seed.extend_from_slice(&i.k.to_le_bytes());
                    }
                    seed.extend_from_slice(&packet.0);
                    if write_seed(out, &mut seen, &seed) {
                        written += 1;
                    }
                }
                None => failed += 1,
            }
        }
    }
    eprintln!("seedgen bpf: {written} seeds in {} ({failed} listings not understood)", out.display());
}

/// A `tcpdump -d` listing back into a program, or `None` if a line is not understood.
fn parse_listing(listing: &str, codes: &HashMap<&'static str, Vec<u16>>) -> Option<Program> {
    let mut insns = Vec::new();
    for (index, line) in listing.lines().enumerate() {
        // "(001) jeq      #0x800           jt 2\tjf 5" [; comment]
        let line = line.split(" ;").next()?.trim_end();
        let rest = line.strip_prefix(&format!("({index:03}) "))?;
        let mnemonic = rest.split_whitespace().next()?;
        let operand_text = rest[mnemonic.len()..].trim();
        let (operand, jt, jf) = match operand_text.find("jt ") {
            Some(at) => {
                let targets: Vec<&str> = operand_text[at..].split_whitespace().collect();
                let jt: usize = targets.get(1)?.parse().ok()?;
                let jf: usize = targets.get(3)?.parse().ok()?;
                (operand_text[..at].trim(), rel(index, jt)?, rel(index, jf)?)
            }
            None => (operand_text, 0, 0),
        };
        let k = if mnemonic == "ja" {
            let target: i64 = operand.parse().ok()?;
            (target - index as i64 - 1) as i32 as u32
        } else {
            first_number(operand).unwrap_or(0)
        };
        let candidates = codes.get(mnemonic)?;
        let insn = candidates.iter().map(|&code| Insn { code, jt, jf, k }).find(|insn| {
            insn.listing_line(index).to_string().split_whitespace().collect::<Vec<_>>()
                == line.split_whitespace().collect::<Vec<_>>()
        })?;
        insns.push(insn);
    }
    (!insns.is_empty()).then(|| Program::new(insns))
}

fn rel(index: usize, target: usize) -> Option<u8> {
    u8::try_from(target.checked_sub(index + 1)?).ok()
}

/// The first number in an operand: `#0x800`, `[12]`, `M[3]`, `4*([14]&0xf)`, `#-1`, `[x + 14]`.
fn first_number(s: &str) -> Option<u32> {
    let s = s.strip_prefix("4*(").unwrap_or(s);
    let start = s.find(|c: char| c.is_ascii_digit() || c == '-')?;
    let t = &s[start..];
    if let Some(hex) = t.strip_prefix("0x") {
        let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
        return u32::from_str_radix(&hex[..end], 16).ok();
    }
    let end = t[1..].find(|c: char| !c.is_ascii_digit()).map_or(t.len(), |e| e + 1);
    let v: i64 = t[..end].parse().ok()?;
    Some(v as i32 as u32)
}
