//! Golden tests: every case in `tests/decode/TESTLIST` is read with trawl-pcap, formatted with
//! [`TextFormatter`], and compared with the output of the real tcpdump in
//! `tests/decode/expected/` (see `tests/decode/regen.sh`). On a mismatch the first differing
//! lines are shown.
//!
//! A case may name a filter (a tcpdump expression, the rest of its TESTLIST line): regen.sh
//! hands it to tcpdump, and here the same expression, compiled by libpcap (trawl-bpfc) and run
//! by trawl's own BPF interpreter, picks the packets the formatter sees. Only those: tcpdump's
//! relative TCP sequence numbers depend on which packets it printed before.
//!
//! The captures live in the shared corpus (`../shared/corpus`, or `$TRAWL_CORPUS`); without it
//! the test says so and passes, so the crate still tests on machines that lack the corpus.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use trawl_decode::{TextFormatter, TextOptions, TimestampPrecision, linktype};

struct Case {
    name: String,
    capture: String,
    expected: String,
    options: TextOptions,
    /// A tcpdump filter expression; only the packets it accepts are formatted.
    filter: Option<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("TRAWL_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared/corpus"),
    }
}

fn cases() -> Vec<Case> {
    let list = repo_root().join("tests/decode/TESTLIST");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(
                f.len() >= 3,
                "TESTLIST line {}: want NAME CAPTURE EXPECTED [FLAGS [FILTER]]",
                n + 1
            );
            let mut options = TextOptions::default();
            match f.get(3).copied() {
                None | Some("-") => {}
                Some("-S") => options.absolute_seq = true,
                Some("--nano") => options.precision = TimestampPrecision::Nano,
                Some(other) => panic!("TESTLIST line {}: unknown flag {other}", n + 1),
            }
            let filter = (f.len() > 4).then(|| f[4..].join(" "));
            Case {
                name: f[0].into(),
                capture: f[1].into(),
                expected: f[2].into(),
                options,
                filter,
            }
        })
        .collect()
}

/// A filter expression compiled once per link type, as `tcpdump -r FILE EXPR` compiles it.
struct Filter<'e> {
    expr: &'e str,
    path: &'e Path,
    programs: HashMap<u32, trawl_bpf::Program>,
}

impl Filter<'_> {
    fn accepts(&mut self, link_type: u32, data: &[u8], wire_len: u32) -> Result<bool, String> {
        if !self.programs.contains_key(&link_type) {
            // On DLT_NULL/LOOP files libpcap's `ip6` tests the BSD AF_INET6 values the capture
            // carries, not the running system's; only compiling on the file itself does that.
            let program = if matches!(link_type, linktype::NULL | linktype::LOOP) {
                trawl_bpfc::compile_for_capture(self.expr, self.path, true)
            } else {
                trawl_bpfc::compile(self.expr, link_type, 262_144, true)
            };
            let program = program.map_err(|e| format!("filter {:?}: {e}", self.expr))?;
            self.programs.insert(link_type, program);
        }
        Ok(self.programs[&link_type].run(data, wire_len) != 0)
    }
}

/// Formats every packet of a capture that `filter` accepts (all without one); returns the text
/// and the number of packets formatted.
fn format_capture(
    path: &Path,
    options: TextOptions,
    filter: Option<&str>,
) -> Result<(String, usize), String> {
    let mut reader =
        trawl_pcap::CaptureReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut filter = filter.map(|expr| Filter {
        expr,
        path,
        programs: HashMap::new(),
    });
    let mut formatter = TextFormatter::new(options);
    let mut out = Vec::new();
    let mut packets = 0;
    while let Some(p) = reader
        .next_packet()
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        if let Some(f) = filter.as_mut()
            && !f.accepts(p.link_type, p.data, p.orig_len)?
        {
            continue;
        }
        formatter.write_line(
            &mut out,
            p.ts.secs,
            p.ts.nanos,
            p.link_type,
            p.data,
            p.orig_len,
        );
        packets += 1;
    }
    Ok((String::from_utf8_lossy(&out).into_owned(), packets))
}

/// A readable report of where two outputs first differ: a few lines of context, then up to five
/// differing lines of each.
fn first_difference(expected: &str, got: &str) -> Option<String> {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let first = (0..e.len().max(g.len())).find(|&i| e.get(i) != g.get(i))?;
    let mut report = format!("first difference at line {}:\n", first + 1);
    for line in &e[first.saturating_sub(2)..first] {
        report += &format!("    {line}\n");
    }
    for i in first..(first + 5).min(e.len().max(g.len())) {
        if e.get(i) == g.get(i) {
            continue;
        }
        report += &format!(
            "  - {}\n  + {}\n",
            e.get(i).unwrap_or(&"<end of file>"),
            g.get(i).unwrap_or(&"<end of output>")
        );
    }
    Some(report)
}

#[test]
fn tcpdump_golden_outputs() {
    let corpus = corpus_dir();
    if !corpus.is_dir() {
        eprintln!(
            "golden: corpus not found at {} (set TRAWL_CORPUS); skipped",
            corpus.display()
        );
        return;
    }
    let expected_dir = repo_root().join("tests/decode/expected");
    let mut failures = Vec::new();
    let (mut total_cases, mut total_packets) = (0, 0);
    for case in cases() {
        let expected_path = expected_dir.join(&case.expected);
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: {}: {e}", case.name, expected_path.display()));
                continue;
            }
        };
        let capture = corpus.join(&case.capture);
        match format_capture(&capture, case.options, case.filter.as_deref()) {
            Err(e) => failures.push(format!("{}: {e}", case.name)),
            Ok((got, packets)) => {
                total_cases += 1;
                total_packets += packets;
                if let Some(diff) = first_difference(&expected, &got) {
                    failures.push(format!("{} ({}):\n{diff}", case.name, case.capture));
                }
            }
        }
    }
    eprintln!("golden: {total_cases} cases, {total_packets} packets formatted");
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ from tcpdump:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
