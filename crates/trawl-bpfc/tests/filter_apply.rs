//! libpcap's own filter tests (`testprogs/TESTrun` "apply" table, as
//! `libpcap-filter/filter_apply.jsonl`): expression + savefile + libpcap's verdict per packet.
//! For every case the system libpcap 1.10.3 passes, our compile + interpreter must give the
//! same verdict (the accept value included) on every packet, and so must `libpcap_filter`.

mod common;

use trawl_bpfc::{compile, libpcap_filter, read_with_libpcap_lenient};

#[test]
fn filter_apply_cases_give_libpcaps_verdicts() {
    let corpus = common::corpus_dir();
    let passes = common::libpcap_1_10_3_results(&corpus);
    let cases = common::json_lines(&corpus.join("libpcap-filter/filter_apply.jsonl"));

    let mut checked = 0;
    let mut packets_checked = 0;
    let mut not_passed_by_libpcap = 0;
    let mut needs_netmask = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let expr = case["expr"].as_str().expect("expr");
        let savefile = case["savefile"].as_str().expect("savefile");
        if passes.get(&format!("apply/{name}")) != Some(&true) {
            not_passed_by_libpcap += 1;
            continue;
        }
        if case.get("netmask").is_some() {
            // `compile` always uses PCAP_NETMASK_UNKNOWN (the server never knows the netmask).
            needs_netmask += 1;
            continue;
        }
        let expected: Vec<u32> = case["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|v| v.as_u64().expect("result") as u32)
            .collect();

        let path = corpus.join("libpcap-filter/savefiles").join(savefile);
        let capture = read_with_libpcap_lenient(&path).expect("libpcap opens the savefile");
        let program = match compile(expr, capture.link_type, capture.snaplen, true) {
            Ok(program) => program,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        checked += 1;
        if capture.packets.len() != expected.len() {
            failures.push(format!(
                "{name}: {} packets read, {} verdicts expected ({:?})",
                capture.packets.len(),
                expected.len(),
                capture.error
            ));
            continue;
        }
        for (n, (packet, &want)) in capture.packets.iter().zip(&expected).enumerate() {
            packets_checked += 1;
            let ours = program.run(&packet.data, packet.wire_len);
            let libpcap = libpcap_filter(&program, &packet.data, packet.wire_len, packet.caplen)
                .expect("libpcap can run what it compiled");
            if ours != want || libpcap != want {
                failures.push(format!(
                    "{name} ({expr:?} on {savefile}) packet {}: expected {want}, \
                     interpreter {ours}, pcap_offline_filter {libpcap}",
                    n + 1
                ));
            }
        }
    }
    eprintln!(
        "filter_apply: {checked} cases, {packets_checked} packets, {} mismatches; skipped: \
         {not_passed_by_libpcap} not passed by libpcap 1.10.3, {needs_netmask} need a netmask",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 130,
        "only {checked} cases checked: is the corpus complete?"
    );
}
