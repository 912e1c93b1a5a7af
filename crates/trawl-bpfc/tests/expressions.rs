//! `tests/bpf/EXPRESSIONS` (repository root): filter expressions on corpus captures, checked
//! against the real tcpdump. For each case, the packets our interpreter accepts (program from
//! `compile`, packets from `read_with_libpcap`) must be exactly the packets — timestamp and
//! bytes, in order — that `tcpdump -r CAPTURE -w OUT EXPRESSION` writes.
//!
//! The interpreter runs two programs per case: the one `compile` makes on a dead handle for the
//! capture's link type (what the server ships), and the one `compile_for_capture` makes on the
//! file's own handle (what tcpdump runs). The second must always match tcpdump; the first too,
//! except for the cases in [`DEAD_HANDLE_DIFFERS`], where libpcap itself generates different
//! code for a dead handle (and the test checks that it still does).
//!
//! Needs tcpdump (`apt-get install tcpdump`, or set `TRAWL_TCPDUMP` to its path); fails
//! without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use trawl_bpf::Program;
use trawl_bpfc::{LibpcapPacket, compile, compile_for_capture, compile_offline, read_with_libpcap};

/// Cases where libpcap compiles differently on a dead handle than on the file's handle.
/// `ip6` on DLT_NULL: a dead handle tests Linux's AF_INET6 (10), a file handle the BSD/macOS
/// values (24, 28, 30) that loopback captures carry.
const DEAD_HANDLE_DIFFERS: &[&str] = &["null-ip6"];

struct Case {
    line: usize,
    name: String,
    capture: String,
    expr: String,
}

fn cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = split_word(line) else {
            panic!(
                "{}:{}: expected NAME CAPTURE EXPRESSION",
                path.display(),
                n + 1
            );
        };
        let Some((capture, expr)) = split_word(rest) else {
            panic!(
                "{}:{}: expected NAME CAPTURE EXPRESSION",
                path.display(),
                n + 1
            );
        };
        cases.push(Case {
            line: n + 1,
            name: name.to_owned(),
            capture: capture.to_owned(),
            expr: expr.trim().to_owned(),
        });
    }
    cases
}

/// The first whitespace-delimited word and the non-empty rest, both trimmed.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let (word, rest) = text.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim();
    (!rest.is_empty()).then_some((word, rest))
}

fn tcpdump() -> PathBuf {
    let tcpdump = std::env::var_os("TRAWL_TCPDUMP").map_or_else(|| "tcpdump".into(), PathBuf::from);
    match Command::new(&tcpdump).arg("--version").output() {
        Ok(out) if out.status.success() => tcpdump,
        Ok(out) => panic!(
            "{} --version failed: {}",
            tcpdump.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run tcpdump ({}: {e}): install it (apt-get install tcpdump) or set \
             TRAWL_TCPDUMP to its path; these tests take their expected results from it",
            tcpdump.display()
        ),
    }
}

/// The packets tcpdump keeps, read back with libpcap.
fn tcpdump_selects(
    tcpdump: &Path,
    capture: &Path,
    expr: &str,
    out: &Path,
) -> Result<Vec<LibpcapPacket>, String> {
    let output = Command::new(tcpdump)
        .arg("--time-stamp-precision=nano")
        .arg("-r")
        .arg(capture)
        .arg("-w")
        .arg(out)
        .arg(expr)
        .output()
        .map_err(|e| format!("cannot run tcpdump: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tcpdump failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(read_with_libpcap(out)?.1)
}

fn describe(packets: &[&LibpcapPacket]) -> String {
    packets
        .iter()
        .take(5)
        .map(|p| format!("{}.{:09} ({} bytes)", p.secs, p.nanos, p.caplen))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn expressions_select_the_packets_tcpdump_selects() {
    let corpus = common::corpus_dir();
    let list = common::repo_root().join("tests/bpf/EXPRESSIONS");
    let cases = cases(&list);
    let tcpdump = tcpdump();
    let scratch = tempfile::tempdir().expect("temporary directory");

    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    let (mut packets_total, mut accepted_total) = (0, 0);
    for case in &cases {
        let where_ = format!("{}:{} {}", list.display(), case.line, case.name);
        if !names.insert(case.name.clone()) {
            failures.push(format!("{where_}: duplicate name"));
            continue;
        }
        let capture_path = corpus.join(&case.capture);
        let (link_type, packets) = match read_with_libpcap(&capture_path) {
            Ok(read) => read,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        // The accept value does not matter here: only accepted or not.
        let dead_program = match compile(&case.expr, link_type, 262_144, true) {
            Ok(program) => program,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        let file_program = match compile_for_capture(&case.expr, &capture_path, true) {
            Ok(program) => program,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        // What trawl's offline tools use: the savefile form, from the link type alone.
        let offline_program = match compile_offline(&case.expr, link_type, 262_144, true) {
            Ok(program) => program,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        let accepted = |program: &Program| -> Vec<&LibpcapPacket> {
            packets
                .iter()
                .filter(|p| program.run(&p.data, p.wire_len) != 0)
                .collect()
        };
        let ours = accepted(&file_program);
        let ours_dead = accepted(&dead_program);
        if accepted(&offline_program) != ours {
            failures.push(format!(
                "{where_}: compile_offline and compile_for_capture disagree"
            ));
        }
        let out = scratch.path().join(format!("{}.pcap", case.name));
        let theirs = match tcpdump_selects(&tcpdump, &capture_path, &case.expr, &out) {
            Ok(theirs) => theirs,
            Err(e) => {
                failures.push(format!("{where_}: {e}"));
                continue;
            }
        };
        packets_total += packets.len();
        accepted_total += ours.len();
        let theirs: Vec<&LibpcapPacket> = theirs.iter().collect();
        let same = |a: &LibpcapPacket, b: &LibpcapPacket| {
            (a.secs, a.nanos, a.wire_len, &a.data) == (b.secs, b.nanos, b.wire_len, &b.data)
        };
        let equal = |a: &[&LibpcapPacket], b: &[&LibpcapPacket]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        };
        if !equal(&ours, &theirs) {
            let only_ours: Vec<_> = ours
                .iter()
                .filter(|a| !theirs.iter().any(|b| same(a, b)))
                .copied()
                .collect();
            let only_theirs: Vec<_> = theirs
                .iter()
                .filter(|b| !ours.iter().any(|a| same(a, b)))
                .copied()
                .collect();
            failures.push(format!(
                "{where_} ({:?}): we accept {} packets, tcpdump {}; only ours: [{}]; \
                 only tcpdump's: [{}]",
                case.expr,
                ours.len(),
                theirs.len(),
                describe(&only_ours),
                describe(&only_theirs)
            ));
        }
        let dead_expected_to_differ = DEAD_HANDLE_DIFFERS.contains(&case.name.as_str());
        match (equal(&ours_dead, &theirs), dead_expected_to_differ) {
            (true, false) | (false, true) => {}
            (false, false) => failures.push(format!(
                "{where_} ({:?}): compiled on a dead handle, we accept {} packets, tcpdump {}",
                case.expr,
                ours_dead.len(),
                theirs.len()
            )),
            (true, true) => failures.push(format!(
                "{where_}: listed in DEAD_HANDLE_DIFFERS but the dead-handle program now agrees \
                 with tcpdump: remove it from the list"
            )),
        }
    }
    eprintln!(
        "EXPRESSIONS: {} cases, {packets_total} packets, {accepted_total} accepted, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        cases.len() >= 50,
        "{}: only {} cases",
        list.display(),
        cases.len()
    );
}
