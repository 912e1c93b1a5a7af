#!/bin/sh
# Regenerates tests/decode/expected/*.out from the real tcpdump, for every case in TESTLIST.
#   tests/decode/regen.sh            (from anywhere; corpus at ../shared/corpus or $TRAWL_CORPUS)
# Needs tcpdump 4.99.3 (Debian 12) for the outputs to match the checked-in ones.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${TRAWL_CORPUS:-$(cd "$here/../../.." && pwd)/shared/corpus}
[ -d "$corpus" ] || { echo "regen.sh: corpus not found at $corpus (set TRAWL_CORPUS)" >&2; exit 1; }
tcpdump --version 2>&1 | head -1 >&2
mkdir -p "$here/expected"
grep -v '^[[:space:]]*#' "$here/TESTLIST" | grep -v '^[[:space:]]*$' |
while read -r name capture expected flags filter; do
    set --
    case "${flags:--}" in
        -) ;;
        -S) set -- -S ;;
        --nano) set -- --time-stamp-precision=nano ;;
        *) echo "regen.sh: $name: unknown flags '$flags'" >&2; exit 1 ;;
    esac
    # The filter (the rest of the line) is one argument: tcpdump joins its arguments anyway.
    [ -n "$filter" ] && set -- "$@" -- "$filter"
    TZ=GMT0 tcpdump -nn -tt -r "$corpus/$capture" "$@" > "$here/expected/$expected" 2>/dev/null ||
        { echo "regen.sh: tcpdump failed on $capture" >&2; exit 1; }
    echo "$name: $(grep -c '^[0-9]' "$here/expected/$expected") packets${filter:+ ($filter)}" >&2
done
