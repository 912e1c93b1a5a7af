#!/usr/bin/env bash
# The README's "test" command: the whole test suite, against the real reference tools.
# The shared test corpus is read in place: TRAWL_CORPUS, else ../shared/corpus next to this clone.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
if [ -z "${TRAWL_CORPUS:-}" ]; then
  for c in ../shared/corpus /work/shared/corpus; do
    if [ -f "$c/INDEX.tsv" ]; then TRAWL_CORPUS=$(cd "$c" && pwd); break; fi
  done
fi
if [ -z "${TRAWL_CORPUS:-}" ]; then
  echo "test.sh: the shared test corpus was not found; set TRAWL_CORPUS to its path" >&2
  exit 1
fi
export TRAWL_CORPUS
cargo test --workspace --release "$@"
# The web UI in headless Chromium (as root; skipped otherwise): the scenario of issue 6 and the
# scale checks. Screenshots go to artifacts/screenshots/.
TRAWL_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/trawl tests/browser/run.sh
