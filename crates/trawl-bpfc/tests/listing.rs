//! `Program::listing` against libpcap: the `tcpdump -d` listings in libpcap's own filter tests
//! (`libpcap-filter/filter_accept.jsonl`), and libpcap's `bpf_image` on every opcode.

mod common;

use trawl_bpf::{Insn, InsnProblem, Program, SKF_AD_OFF, opcode};
use trawl_bpfc::{compile, libpcap_listing, libpcap_listing_line, linktype_from_name};

/// For every (expression, DLT) whose optimised or unoptimised listing the system libpcap
/// 1.10.3 reproduces, our listing of the program `compile` returns is that text.
#[test]
fn listings_match_libpcaps_filter_tests() {
    let corpus = common::corpus_dir();
    let passes = common::libpcap_1_10_3_results(&corpus);
    let blocks = common::json_lines(&corpus.join("libpcap-filter/filter_accept.jsonl"));
    let mut checked = [0usize; 2];
    let (mut validated, mut backward) = (0, 0);
    let mut failures = Vec::new();
    for block in &blocks {
        let name = block["name"].as_str().expect("name");
        if name == "bpf_image" || block.get("netmask").is_some() {
            continue;
        }
        let dlt = block["DLT"].as_str().expect("DLT");
        let snaplen = block
            .get("snaplen")
            .and_then(|v| v.as_u64())
            .unwrap_or(262_144) as u32;
        let aliases = block["aliases"].as_array().expect("aliases");
        for (kind, optimize) in [("opt", true), ("unopt", false)] {
            let Some(expected) = block
                .get("optunopt")
                .or_else(|| block.get(kind))
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            for (i, alias) in aliases.iter().enumerate() {
                if passes.get(&format!("accept/{name}/{kind}/{i}")) != Some(&true) {
                    continue;
                }
                let expr = alias.as_str().expect("alias");
                let Some(link_type) = linktype_from_name(dlt) else {
                    failures.push(format!("{name}: libpcap does not know DLT {dlt}"));
                    continue;
                };
                checked[usize::from(!optimize)] += 1;
                match compile(expr, link_type, snaplen, optimize) {
                    Ok(program) => {
                        match program.validate() {
                            Ok(()) => validated += 1,
                            Err(e)
                                if matches!(
                                    e.problem(),
                                    Some(InsnProblem::BackwardJump { .. })
                                ) =>
                            {
                                backward += 1
                            }
                            Err(e) => failures.push(format!("{name}/{kind}/{i} ({expr:?}): {e}")),
                        }
                        let ours = program.listing();
                        if ours.trim_end() != expected {
                            failures.push(format!(
                                "{name}/{kind}/{i} ({expr:?} on {dlt}):\n--- expected\n{expected}\n--- ours\n{ours}"
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("{name}/{kind}/{i}: {e}")),
                }
            }
        }
    }
    eprintln!(
        "filter_accept listings: {} optimised, {} unoptimised, {} mismatches; {validated} \
         programs pass validate, {backward} have protochain's backward jumps",
        checked[0],
        checked[1],
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked[0] >= 1000 && checked[1] >= 1000,
        "too few cases: {checked:?}"
    );
}

/// Every 8-bit opcode (and a few wider ones), with operands that hit each of libpcap's
/// formatting choices, prints as `bpf_image` prints it. One deliberate difference: `ldx
/// #pktlen` (0x81), which libpcap 1.10 does not know (it prints `unimp 0x81`).
#[test]
fn every_opcode_lists_as_bpf_image_does() {
    let operands = [
        0,
        3,
        15,
        16,
        255,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
        SKF_AD_OFF,
        SKF_AD_OFF + 2,
        SKF_AD_OFF + 0x2c,
        SKF_AD_OFF + 0x3c,
        SKF_AD_OFF + 0x40,
    ];
    let codes = (0u16..0x100).chain([0x0100, 0x0115, 0x1005, 0x8006, 0xffff]);
    let mut checked = 0;
    for code in codes {
        for k in operands {
            for (jt, jf) in [(0, 0), (3, 250)] {
                for index in [0usize, 7, 999, 1234] {
                    let insn = Insn { code, jt, jf, k };
                    let ours = insn.listing_line(index).to_string();
                    if code == opcode::LDX_LEN {
                        assert_eq!(ours, format!("({index:03}) ldx      #pktlen"));
                        continue;
                    }
                    let theirs = libpcap_listing_line(&insn, index);
                    assert_eq!(ours, theirs, "code {code:#x} k {k:#x}");
                    if index == 0 {
                        let program = Program::new(vec![insn]);
                        assert_eq!(program.listing(), libpcap_listing(&program));
                    }
                    checked += 1;
                }
            }
        }
    }
    eprintln!("bpf_image: {checked} instructions compared");
}
