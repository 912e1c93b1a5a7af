#!/usr/bin/env bash
# Runs the fuzz targets one after another, each for SECONDS (default 600), on stable Rust
# (cargo-fuzz with --sanitizer none), niced, one fuzzing process at a time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: every target)
#
# Seeds fuzz/corpus/<target>/ first if it is empty (fuzz/seed.sh). Corpus growth stays in
# fuzz/corpus/<target>/, crashes go to fuzz/artifacts/<target>/, and each run's libFuzzer output
# to fuzz/artifacts/logs/<target>.log. Exits 1 if any target crashed (printing the artifact and
# the panic), 2 on a setup or build failure.
set -uo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz_dir/.." && pwd)
secs=${1:-600}
shift || true
all=(pcap_reader pcapng_reader compressed_reader decoder bpf)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# Largest input per target. Readers: 1 MiB. compressed_reader: 64 KiB of *compressed* input, so
# that a zstd bomb (a few bytes per 128 KiB RLE block) stays within a few GiB of output and the
# 10 s timeout; the reader bounds nothing while it skips non-packet pcapng blocks.
max_len() {
    case $1 in
        pcap_reader | pcapng_reader) echo 1048576 ;;
        compressed_reader) echo 65536 ;;
        decoder | bpf) echo 65536 ;;
        *) echo "run.sh: unknown target $1" >&2; return 1 ;;
    esac
}

if ! command -v cargo-fuzz >/dev/null; then
    echo "run.sh: installing cargo-fuzz" >&2
    nice cargo install cargo-fuzz --locked || exit 2
fi

cd "$root"
for t in "${targets[@]}"; do
    max_len "$t" >/dev/null || exit 2
    if [ -z "$(ls -A "fuzz/corpus/$t" 2>/dev/null)" ]; then
        nice "$fuzz_dir/seed.sh" || exit 2
    fi
done

mkdir -p fuzz/artifacts/logs
# Build every target first, so that build failures are told apart from crashes.
for t in "${targets[@]}"; do
    nice cargo fuzz build --sanitizer none --debug-assertions "$t" || { echo "run.sh: build of $t failed" >&2; exit 2; }
done

failed=()
for t in "${targets[@]}"; do
    log="fuzz/artifacts/logs/$t.log"
    echo "== $t: ${secs}s, -max_len=$(max_len "$t") (log: $log)"
    nice cargo fuzz run --sanitizer none --debug-assertions "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    grep -E "#[0-9]+\s+DONE" "$log" | sed "s/^/   /"
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb):' "$log" | sed 's/^/   /'
    echo "   corpus: $(ls "fuzz/corpus/$t" | wc -l) files"
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        echo "!! $t FAILED (exit $rc)"
        grep -m1 -A12 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/   /'
        artifact=$(grep -oE 'Test unit written to \S+' "$log" | tail -1 | cut -d' ' -f5)
        [ -n "$artifact" ] && echo "   artifact: $artifact" && \
            echo "   reproduce: cargo fuzz run --sanitizer none --debug-assertions $t $artifact"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "no crashes"
