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
# The reference OpenAPI validator for crates/trawl-server/tests/openapi.rs, in a virtualenv of
# its own under target/ (best effort: without it that test runs only its own structural checks).
if [ -z "${TRAWL_OPENAPI_PYTHON:-}" ]; then
  venv=${CARGO_TARGET_DIR:-$PWD/target}/oasv
  if ! "$venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
    python3 -m venv "$venv" >/dev/null 2>&1 \
      && "$venv/bin/pip" install --quiet 'openapi-spec-validator==0.7.1' >/dev/null 2>&1 \
      || echo "test.sh: openapi-spec-validator could not be installed; the OpenAPI test checks structure only" >&2
  fi
  [ -x "$venv/bin/python" ] && export TRAWL_OPENAPI_PYTHON=$venv/bin/python
fi
cargo test --workspace --release "$@"
# The web UI in headless Chromium (as root; skipped otherwise): the scenario of issue 6 and the
# scale checks. Screenshots go to artifacts/screenshots/.
TRAWL_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/trawl tests/browser/run.sh
