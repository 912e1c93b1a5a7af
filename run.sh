#!/usr/bin/env bash
# The README's "run" command: builds trawl and runs its main job on embedded defaults.
# Until the server exists, that is the offline tour: `trawl demo` on a capture it generates.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
cargo build --release --quiet -p trawl
exec target/release/trawl demo "$@"
