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
# TRAWL_BENCH_SIZE (default 1G) sets the size of the main capture; each merge half is half of it.
size=${TRAWL_BENCH_SIZE:-1G}
half=$(( $(numfmt --from=iec "$size") / 2 ))
big=$out/big-$size.pcap
if [ ! -s "$big" ]; then
  echo "generating $big ($size)…" >&2
  "$T" gen -o "$big" --size "$size" --seed 1
fi
# Two captures over the same time span, whose packets interleave, for merge.
for s in 2 3; do
  [ -s "$out/half$s-$size.pcap" ] || "$T" gen -o "$out/half$s-$size.pcap" --size "$half" --seed $s
done
packets=$("$T" info --json "$big" | sed -n 's/.*"packets": \([0-9]*\).*/\1/p' | head -1)

results=$out/results.md
{
  echo "| job | trawl | reference | median trawl (s) | median reference (s) | speed-up | peak RSS trawl | peak RSS reference |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$results"

# bench NAME TRAWL_CMD REF_CMD: both write into $out/NAME-*, removed before every run so that
# neither pays for truncating the other's (or its own) earlier output.
bench() {
  local name=$1 ours=$2 ref=$3
  hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out/$name.json" \
    --prepare "rm -f $out/$name-*" -n trawl "$ours" -n reference "$ref" >&2
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
  rm -f "$out/$name-"*
  /usr/bin/time -f '%M' -o "$out/rss" bash -c "$ours" >/dev/null 2>&1
  rm -f "$out/$name-"*
  ra=$(tail -1 "$out/rss")
  /usr/bin/time -f '%M' -o "$out/rss" bash -c "$ref" >/dev/null 2>&1
  rb=$(tail -1 "$out/rss")
  echo "| $name | \`$ours\` | \`$ref\` | $ta | $tb | ${ratio}× | $((ra / 1024)) MiB | $((rb / 1024)) MiB |" >> "$results"
}

bench cat "$T cat -o $out/cat-trawl.pcap $big" "tcpdump -r $big -w $out/cat-tcpdump.pcap 2>/dev/null"
bench read "$T read $big > $out/read-trawl.txt" "tcpdump -nn -r $big > $out/read-tcpdump.txt 2>/dev/null"
bench slice "$T slice -f 'tcp port 80' -o $out/slice-trawl.pcap $big" \
  "tcpdump -r $big -w $out/slice-tcpdump.pcap 'tcp port 80' 2>/dev/null"
bench merge "$T merge -o $out/merge-trawl.pcapng $out/half2-$size.pcap $out/half3-$size.pcap" \
  "mergecap -w $out/merge-mergecap.pcapng $out/half2-$size.pcap $out/half3-$size.pcap"
bench info "$T info $big > $out/info-trawl.txt" "capinfos $big > $out/info-capinfos.txt"

# The text must be the same, or the comparison means nothing.
"$T" read "$big" > "$out/read-trawl.txt"
tcpdump -nn -tt -r "$big" > "$out/read-tcpdump.txt" 2>/dev/null
if cmp -s "$out/read-trawl.txt" "$out/read-tcpdump.txt"; then same=identical; else same=DIFFERENT; fi
rm -f "$out/read-trawl.txt" "$out/read-tcpdump.txt"

{
  echo
  echo "trawl read's output is $same to tcpdump -nn -tt's on this input (plain -nn differs only in printing times as HH:MM:SS)."
  echo "Input: $big, $(stat -c %s "$big") bytes, $packets packets; halves for merge: $(stat -c %s $out/half2-$size.pcap) + $(stat -c %s $out/half3-$size.pcap) bytes."
  echo "Machine: $(nproc) cores, $(uname -r); tcpdump $(tcpdump --version 2>&1 | head -1 | awk '{print $3}'), $(mergecap -v | head -1)."
  echo "Medians of $runs runs after 1 warm-up (hyperfine); files in the page cache; outputs on the same disk."
} >> "$results"
cat "$results"
