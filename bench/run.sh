#!/usr/bin/env bash
# Side-by-side benchmarks of trawl against the reference tools, in one run, on a generated
# capture of at least 1 GiB. Prints a Markdown table (medians of hyperfine runs, ratios, peak
# memory) and leaves it in bench/out/results.md. Usage: bench/run.sh [RUNS] (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/deps.sh --bench
cargo build --release --quiet -p trawl
T=$PWD/target/release/trawl
out=bench/out
mkdir -p "$out"
big=$out/big.pcap
if [ ! -s "$big" ]; then
  echo "generating $big (1 GiB)…" >&2
  "$T" gen -o "$big" --size 1G --seed 1
fi
# Two captures over the same time span, whose packets interleave, for merge.
for s in 2 3; do
  [ -s "$out/half$s.pcap" ] || "$T" gen -o "$out/half$s.pcap" --size 512M --seed $s
done
packets=$("$T" info --json "$big" | sed -n 's/.*"packets": \([0-9]*\).*/\1/p' | head -1)

results=$out/results.md
{
  echo "| job | trawl | reference | median trawl (s) | median reference (s) | speed-up | peak RSS trawl | peak RSS reference |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$results"

# bench NAME TRAWL_CMD REF_CMD
bench() {
  local name=$1 ours=$2 ref=$3
  hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out/$name.json" \
    -n trawl "$ours" -n reference "$ref" >&2
  local m
  m=$(python3 - "$out/$name.json" <<'PY'
import json, sys
r = {x['command']: x for x in json.load(open(sys.argv[1]))['results']}
a, b = r['trawl']['median'], r['reference']['median']
print(f"{a:.3f} {b:.3f} {b / a:.2f}")
PY
)
  read -r ta tb ratio <<<"$m"
  local ra rb
  ra=$( { /usr/bin/time -f '%M' bash -c "$ours" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
  rb=$( { /usr/bin/time -f '%M' bash -c "$ref" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
  echo "| $name | \`$ours\` | \`$ref\` | $ta | $tb | ${ratio}× | $((ra / 1024)) MiB | $((rb / 1024)) MiB |" >> "$results"
}

bench cat "$T cat -o $out/cat-trawl.pcap $big" "tcpdump -r $big -w $out/cat-tcpdump.pcap 2>/dev/null"
bench read "$T read $big > $out/read-trawl.txt" "tcpdump -nn -r $big > $out/read-tcpdump.txt 2>/dev/null"
bench slice "$T slice -f 'tcp port 80' -o $out/slice-trawl.pcap $big" \
  "tcpdump -r $big -w $out/slice-tcpdump.pcap 'tcp port 80' 2>/dev/null"
bench merge "$T merge -o $out/merge-trawl.pcapng $out/half2.pcap $out/half3.pcap" \
  "mergecap -w $out/merge-mergecap.pcapng $out/half2.pcap $out/half3.pcap"
bench info "$T info $big > /dev/null" "capinfos $big > /dev/null"

{
  echo
  echo "Input: $big, $(stat -c %s "$big") bytes, $packets packets; halves for merge: $(stat -c %s $out/half2.pcap) + $(stat -c %s $out/half3.pcap) bytes."
  echo "Machine: $(nproc) cores, $(uname -r); tcpdump $(tcpdump --version 2>&1 | head -1 | awk '{print $3}'), $(mergecap -v | head -1)."
  echo "Medians of $runs runs after 1 warm-up (hyperfine); files in the page cache; outputs on the same disk."
} >> "$results"
cat "$results"
