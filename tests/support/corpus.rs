//! Where the shared test corpus is, for every crate's tests: included with
//! `#[path = "../../../tests/support/corpus.rs"] mod corpus;` (each crate sits at `crates/NAME`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared test corpus: `$TRAWL_CORPUS`, else `../shared/corpus` beside the repository.
/// Fails the test when it is not there: these tests must not pass without their data.
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("TRAWL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.join("INDEX.tsv").exists(),
        "the test corpus is not at {} (set TRAWL_CORPUS to its path)",
        dir.display()
    );
    dir
}

/// Every capture the corpus index (`INDEX.tsv`, first column) lists, as paths under `dir`.
pub fn indexed_captures(dir: &Path) -> Vec<PathBuf> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|p| dir.join(p))
        .collect()
}
