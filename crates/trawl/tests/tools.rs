//! The offline commands against the reference tools: what trawl writes, tshark and capinfos read
//! back with the same packets; `trawl merge` equals mergecap; `trawl slice` equals tcpdump and
//! editcap; `trawl info` agrees with capinfos. Inputs come from the shared corpus.

mod harness;

use harness::{Frames, corpus, frames, run_ok, tool, trawl};
use std::path::Path;

/// Captures for round trips: pcapng sections, interfaces, options and comments; pcap in both
/// precisions and byte orders; many link types; gzip.
const ROUND_TRIP: &[&str] = &[
    "wireshark-4.0.17/dhcp.pcap",
    "wireshark-4.0.17/dhcp.pcapng",
    "wireshark-4.0.17/dhcp-nanosecond.pcap",
    "wireshark-4.0.17/dhcp-nanosecond.pcapng",
    "wireshark-4.0.17/many_interfaces.pcapng.1",
    "wireshark-4.0.17/icmp.pcapng.gz",
    "wireshark-4.0.17/dmgr.pcapng",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/many_interfaces-1.pcapng",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/nanosecs_big_endian.pcap",
    "pcapplusplus/Tests/Packet++Test/PacketExamples/Sll2Packet.pcap",
    "pcap-parser/assets/wireshark_samples-test.pcapng",
    "pcap-parser/assets/modified-format.pcap",
    "tcpdump-4.99.3/HDLC.pcap",
    "tcpdump-4.99.3/OSPFv3_NBMA_adjacencies.pcap",
];

fn conformance_files() -> Vec<String> {
    let mut out = Vec::new();
    for endian in ["output_le", "output_be"] {
        for cat in ["basic", "advanced", "difficult"] {
            let dir = corpus()
                .join("pcapng-test-generator")
                .join(endian)
                .join(cat);
            for e in std::fs::read_dir(&dir).expect("conformance set") {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "pcapng") {
                    out.push(
                        p.strip_prefix(corpus())
                            .expect("under corpus")
                            .display()
                            .to_string(),
                    );
                }
            }
        }
    }
    out.sort();
    out
}

/// Writes `rel` with `trawl cat` and checks tshark and capinfos see the same packets (and
/// comments, interface names) in the copy.
fn check_round_trip(rel: &str, ext: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus().join(rel);
    let out = dir.path().join(format!("copy.{ext}"));
    trawl(&["cat", "-o", out.to_str().unwrap(), input.to_str().unwrap()])
        .map_err(|e| format!("{rel}: trawl cat failed: {e}"))?;
    let want = frames(&input);
    let got = frames(&out);
    // pcap keeps no interface names or comments: compare packets only.
    let same = if ext == "pcap" {
        want.packets == got.packets
    } else {
        want.rows == got.rows
    };
    if !same {
        return Err(format!("{rel} → {ext}: {}", want.diff(&got)));
    }
    let count = capinfos_count(&out).map_err(|e| format!("{rel} → {ext}: {e}"))?;
    if count != want.rows.len() {
        return Err(format!(
            "{rel} → {ext}: capinfos counts {count} packets, tshark {}",
            want.rows.len()
        ));
    }
    Ok(())
}

fn capinfos_count(path: &Path) -> Result<usize, String> {
    let out = tool(
        "capinfos",
        &["-M", "-T", "-r", "-c", path.to_str().unwrap()],
    )?;
    let field = out.trim().rsplit('\t').next().unwrap_or("");
    field
        .parse()
        .map_err(|_| format!("capinfos printed {out:?}"))
}

#[test]
fn cat_to_pcapng_keeps_packets_comments_and_interfaces() {
    let mut failures = Vec::new();
    let mut files: Vec<String> = ROUND_TRIP.iter().map(|s| s.to_string()).collect();
    files.extend(conformance_files());
    for rel in &files {
        // Files tshark cannot read are not round-trip cases.
        if frames(&corpus().join(rel)).failed {
            continue;
        }
        if let Err(e) = check_round_trip(rel, "pcapng") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cat_to_pcap_keeps_packets() {
    let mut failures = Vec::new();
    // Files whose interfaces differ in link type cannot become pcap (tested below).
    let mixed = ["many_interfaces.pcapng.1", "many_interfaces-1.pcapng"];
    for rel in ROUND_TRIP
        .iter()
        .filter(|r| !mixed.iter().any(|m| r.ends_with(m)))
    {
        if let Err(e) = check_round_trip(rel, "pcap") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cat_refuses_pcap_output_for_mixed_link_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.pcap");
    let input = corpus().join("wireshark-4.0.17/many_interfaces.pcapng.1");
    let err = trawl(&["cat", "-o", out.to_str().unwrap(), input.to_str().unwrap()])
        .expect_err("mixed link types cannot go to pcap");
    assert!(err.contains("write pcapng"), "{err}");
}

/// Pairs merged by both trawl and mergecap.
const MERGE_SETS: &[&[&str]] = &[
    &[
        "wireshark-4.0.17/many_interfaces.pcapng.1",
        "wireshark-4.0.17/many_interfaces.pcapng.2",
        "wireshark-4.0.17/many_interfaces.pcapng.3",
    ],
    &[
        "wireshark-4.0.17/dhcp.pcap",
        "wireshark-4.0.17/dhcp-nanosecond.pcapng",
    ],
    &[
        "wireshark-4.0.17/http.pcap",
        "wireshark-4.0.17/dns-ooo.pcap",
    ],
    &[
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "wireshark-4.0.17/http-ooo.pcap",
    ],
    &[
        "tcpdump-4.99.3/HDLC.pcap",
        "tcpdump-4.99.3/OSPFv3_NBMA_adjacencies.pcap",
    ],
];

fn check_merge(inputs: &[&Path]) -> Result<usize, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = dir.path().join("trawl.pcapng");
    let theirs = dir.path().join("mergecap.pcapng");
    let mut args = vec!["merge", "-o", ours.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    trawl(&args)?;
    let mut margs = vec!["-w", theirs.to_str().unwrap()];
    margs.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    tool("mergecap", &margs)?;
    let (a, b) = (frames(&theirs), frames(&ours));
    if a.rows != b.rows {
        return Err(format!("{inputs:?}: mergecap vs trawl: {}", a.diff(&b)));
    }
    Ok(a.rows.len())
}

#[test]
fn merge_equals_mergecap() {
    let mut failures = Vec::new();
    for set in MERGE_SETS {
        let paths: Vec<_> = set.iter().map(|r| corpus().join(r)).collect();
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        if let Err(e) = check_merge(&refs) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn merge_of_interleaved_halves_equals_mergecap_and_the_original() {
    // Split a capture into odd and even packets with tshark, merge them back: the result must
    // equal mergecap's merge, and hold the original's packets (the order of packets with equal
    // times follows mergecap: later-named file first).
    let dir = tempfile::tempdir().unwrap();
    let src = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let odd = dir.path().join("odd.pcap");
    let even = dir.path().join("even.pcap");
    for (out, rem) in [(&odd, "1"), (&even, "0")] {
        tool(
            "tshark",
            &[
                "-r",
                src.to_str().unwrap(),
                "-Y",
                &format!("frame.number % 2 == {rem}"),
                "-F",
                "pcap",
                "-w",
                out.to_str().unwrap(),
            ],
        )
        .unwrap();
    }
    let n = check_merge(&[&odd, &even]).unwrap();
    let merged = dir.path().join("m.pcap");
    trawl(&[
        "merge",
        "-o",
        merged.to_str().unwrap(),
        odd.to_str().unwrap(),
        even.to_str().unwrap(),
    ])
    .unwrap();
    let (mut a, mut b) = (frames(&src).rows, frames(&merged).rows);
    assert_eq!(a.len(), n);
    a.sort();
    b.sort();
    assert!(a == b, "the merge does not hold the original's packets");
}

#[test]
fn merge_dedup_keeps_each_packet_once() {
    // The same capture twice: every packet of the second copy is a duplicate of its twin, and
    // nothing of the first is lost, not even its own repeats (duplicate ACKs and the like).
    let dir = tempfile::tempdir().unwrap();
    let src = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let s = src.to_str().unwrap();
    let twice = dir.path().join("twice.pcap");
    let stderr = run_ok(&["merge", "--dedup", "-o", twice.to_str().unwrap(), s, s]).1;
    let (orig, merged) = (frames(&src), frames(&twice));
    assert!(orig.rows == merged.rows, "{}", orig.diff(&merged));
    let removed = format!("{} duplicates removed", orig.rows.len());
    assert!(stderr.contains(&removed), "stderr: {stderr}");
}

#[test]
fn merge_dedup_sees_through_link_layer_and_ttl() {
    // The same packets as seen one router later, made by a real tool: tcprewrite decrements
    // every TTL / hop limit, fixes the checksums, and adds a VLAN tag. (Minimum-size frames are
    // left out with tcpdump first: tcprewrite counts their Ethernet padding into the IP length,
    // which makes them different packets, not copies.)
    let dir = tempfile::tempdir().unwrap();
    let full = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let src = dir.path().join("here.pcap");
    tool(
        "tcpdump",
        &[
            "-r",
            full.to_str().unwrap(),
            "-w",
            src.to_str().unwrap(),
            "greater 61",
        ],
    )
    .unwrap();
    let hop = dir.path().join("next-hop.pcap");
    tool(
        "tcprewrite",
        &[
            "--ttl=-1",
            "--fixcsum",
            "--enet-vlan=add",
            "--enet-vlan-tag=100",
            "--enet-vlan-cfi=0",
            "--enet-vlan-pri=0",
            "-i",
            src.to_str().unwrap(),
            "-o",
            hop.to_str().unwrap(),
        ],
    )
    .unwrap();
    let (s, h) = (src.to_str().unwrap(), hop.to_str().unwrap());
    // Network mode: every packet of the first view is recognised as a copy of the second's
    // (named last, so its copy comes first on equal times, as in mergecap); the second view
    // stays whole.
    let out = dir.path().join("net.pcap");
    let stderr = run_ok(&["merge", "--dedup", "-o", out.to_str().unwrap(), h, s]).1;
    let (orig, merged) = (frames(&src), frames(&out));
    assert!(orig.packets == merged.packets, "{}", orig.diff(&merged));
    assert!(
        stderr.contains(&format!("{} duplicates removed", orig.rows.len())),
        "{stderr}"
    );
    // Exact mode compares whole frames: nothing is the same.
    let out = dir.path().join("exact.pcap");
    let stderr = run_ok(&[
        "merge",
        "--dedup",
        "--dedup-mode",
        "exact",
        "-o",
        out.to_str().unwrap(),
        s,
        h,
    ])
    .1;
    assert!(stderr.contains(" 0 duplicates removed"), "{stderr}");
}

/// (capture, filter) cases for `slice -f`, checked against `tcpdump -r -w EXPR`.
const SLICE_FILTERS: &[(&str, &str)] = &[
    (
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "tcp port 80",
    ),
    (
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "udp and not port 53",
    ),
    ("wireshark-4.0.17/dhcp.pcap", "udp port 67"),
    ("pcapplusplus/Tests/Pcap++Test/PcapExamples/sll.pcap", "tcp"),
    ("tcpdump-4.99.3/QinQpacket.pcap", "vlan"),
];

#[test]
fn slice_filter_equals_tcpdump() {
    let mut failures = Vec::new();
    for (rel, expr) in SLICE_FILTERS {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus().join(rel);
        let ours = dir.path().join("ours.pcap");
        let theirs = dir.path().join("theirs.pcap");
        trawl(&[
            "slice",
            "-f",
            expr,
            "-o",
            ours.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .unwrap();
        tool(
            "tcpdump",
            &[
                "-r",
                input.to_str().unwrap(),
                "-w",
                theirs.to_str().unwrap(),
                expr,
            ],
        )
        .unwrap();
        let (a, b) = (frames(&theirs), frames(&ours));
        if a.rows.is_empty() {
            failures.push(format!(
                "{rel} '{expr}': tcpdump kept nothing: a useless case"
            ));
        }
        if a.rows != b.rows {
            failures.push(format!("{rel} '{expr}': {}", a.diff(&b)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn slice_window_equals_editcap() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let all = frames(&input);
    // A window from the 100th packet's time to the 300th's.
    let t = |i: usize| all.rows[i].split(' ').next().unwrap().to_string();
    let (from, to) = (t(100), t(300));
    let ours = dir.path().join("ours.pcap");
    let theirs = dir.path().join("theirs.pcap");
    trawl(&[
        "slice",
        "--from",
        &from,
        "--to",
        &to,
        "-o",
        ours.to_str().unwrap(),
        input.to_str().unwrap(),
    ])
    .unwrap();
    // editcap takes local time: run it in UTC, with the window as dates.
    let date = |epoch: &str| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d %H:%M:%S.%N"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let out = std::process::Command::new("editcap")
        .env("TZ", "UTC")
        .args(["-A", &date(&from), "-B", &date(&to)])
        .args([input.to_str().unwrap(), theirs.to_str().unwrap()])
        .output()
        .expect("editcap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (frames(&theirs), frames(&ours));
    assert!(
        a.rows.len() >= 150,
        "editcap kept only {} packets",
        a.rows.len()
    );
    assert!(a.rows == b.rows, "{}", a.diff(&b));
}

#[test]
fn info_agrees_with_capinfos() {
    let mut failures = Vec::new();
    for rel in ROUND_TRIP {
        let input = corpus().join(rel);
        let p = input.to_str().unwrap();
        // packets, data bytes, start and end as epoch seconds.
        let cap = tool(
            "capinfos",
            &["-M", "-T", "-r", "-c", "-d", "-S", "-a", "-e", p],
        )
        .unwrap();
        let f: Vec<&str> = cap.trim().split('\t').collect();
        let json = run_ok(&["info", "--json", p]).0;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let ours = &v[0];
        let same_num = |ours: &serde_json::Value, theirs: &str| {
            ours.as_u64().is_some_and(|n| n.to_string() == theirs)
        };
        // capinfos prints times with the file's precision (6 or 9 decimals).
        let same_time = |ours: &serde_json::Value, theirs: &str| {
            let o = ours.as_str().unwrap_or("");
            let digits = theirs.split('.').nth(1).map_or(0, str::len);
            o.len() >= theirs.len() && o[..theirs.len()] == *theirs && digits > 0
        };
        if !(same_num(&ours["packets"], f[1])
            && same_num(&ours["data_bytes"], f[2])
            && same_time(&ours["first_epoch"], f[3])
            && same_time(&ours["last_epoch"], f[4]))
        {
            failures.push(format!("{rel}: capinfos {f:?}, trawl {ours}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn truncated_input_keeps_earlier_packets_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = corpus().join("wireshark-4.0.17/dhcp.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let out = dir.path().join("out.pcap");
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["cat", "-o", out.to_str().unwrap(), cut.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("cut.pcap") && stderr.contains("byte offset"),
        "{stderr}"
    );
    // tshark reads the cut file's whole packets: the same as trawl kept.
    let (a, b) = (frames(&cut), frames(&out));
    assert!(a.failed, "tshark should report the cut");
    assert_eq!(a.rows, b.rows);
    assert_eq!(b.rows.len(), 3);
}

#[test]
fn garbage_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = dir.path().join("out.pcapng");
    let err = trawl(&["cat", "-o", out.to_str().unwrap(), junk.to_str().unwrap()]).unwrap_err();
    assert!(
        err.contains("junk.pcap") && err.contains("not a pcap or pcapng file"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "no output is created when the input is refused"
    );
    // A 4 GiB length field: refused without trying to allocate it.
    let mut huge = std::fs::read(corpus().join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&junk, &huge).unwrap();
    let err = trawl(&["info", junk.to_str().unwrap()]).unwrap_err();
    assert!(
        err.contains("byte offset 32") && err.contains("4294967295"),
        "{err}"
    );
    let _ = Frames::default();
}

#[test]
fn a_corrupt_record_fails_the_command_and_leaves_no_output() {
    // The second record of dhcp.pcap (at byte 24 + 16 + 314) claims 4 GiB: cat must fail, name the
    // file and the offset, and leave neither the output nor a partial file behind.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(corpus().join("wireshark-4.0.17/dhcp.pcap")).unwrap();
    let second = 24 + 16 + 314;
    bytes[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let out = dir.path().join("out.pcapng");
    let err = trawl(&["cat", "-o", out.to_str().unwrap(), bad.to_str().unwrap()]).unwrap_err();
    assert!(
        err.contains("bad.pcap") && err.contains(&format!("byte offset {}", second + 8)),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("bad.pcap")],
        "left behind: {left:?}"
    );
}

#[test]
fn an_output_that_is_a_pipe_is_written_through_not_replaced() {
    // `-o /dev/null` or `-o FIFO`: the output is written in place. Writing a temporary file and
    // renaming it over the name (what a regular file gets) would replace the device or pipe.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let input = corpus().join("wireshark-4.0.17/dhcp.pcap");
    trawl(&["cat", "-o", fifo.to_str().unwrap(), input.to_str().unwrap()]).unwrap();
    use std::os::unix::fs::FileTypeExt;
    // Checked before waiting for the reader: if the FIFO was replaced, nothing ever opens it.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    let through = reader.join().unwrap();
    let direct = dir.path().join("direct.pcapng");
    trawl(&[
        "cat",
        "-o",
        direct.to_str().unwrap(),
        input.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(
        through,
        std::fs::read(&direct).unwrap(),
        "what came through the pipe"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
