//! Shared by the integration tests: where the corpus is and what libpcap 1.10.3 passes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The repository root (`/work/main`), from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test corpus: `$TRAWL_CORPUS`, else `../shared/corpus` next to the repository root.
/// Panics (fails the test) if it is not there: these tests must not pass without their data.
pub fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("TRAWL_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared/corpus"),
    };
    assert!(
        dir.join("libpcap-filter").is_dir(),
        "test corpus not found at {}: set TRAWL_CORPUS to the corpus directory",
        dir.display()
    );
    dir
}

/// `oracle/results/libpcap-filter_on_debian_libpcap-1.10.3.tsv`: case name → PASS/FAIL for the
/// system libpcap. Cases it fails are version drift, not ours to pass.
pub fn libpcap_1_10_3_results(corpus: &Path) -> HashMap<String, bool> {
    let path = corpus.join("oracle/results/libpcap-filter_on_debian_libpcap-1.10.3.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?;
            let verdict = fields.next()?;
            Some((name.to_owned(), verdict == "PASS"))
        })
        .collect()
}

/// The JSON lines of a corpus file.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: bad JSON: {e}", path.display(), n + 1))
        })
        .collect()
}
