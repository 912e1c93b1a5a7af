//! What several of the server's test files share.

use std::path::{Path, PathBuf};

/// The shared test corpus: `$TRAWL_CORPUS`, else `../shared/corpus` beside the repository.
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("TRAWL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.join("INDEX.tsv").exists(),
        "the test corpus is not at {} (set TRAWL_CORPUS)",
        dir.display()
    );
    dir
}
