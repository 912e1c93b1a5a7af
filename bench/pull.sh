#!/usr/bin/env bash
# Retrieval benchmark: about 5 GB of packets stored in a trawl server as two devices, each
# spread over one hour, then `trawl pull` of a 10-second window of both devices (and a filtered
# one, and a 2-minute one) over HTTPS, timed with hyperfine. Prints a Markdown table and leaves
# it in bench/out/pull-SIZE/results.md.
#
# Usage: bench/pull.sh [RUNS] (default 5). TRAWL_PULL_SIZE sets each device's capture (default
# 2560M: 2 × 2.5 GiB). The loaded data directory is kept in bench/out/pull-SIZE/data and reused by
# the next run (delete it to load again).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
size=${TRAWL_PULL_SIZE:-2560M}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p trawl
cargo build --release --quiet -p trawl-server --example load
T=$target/release/trawl
LOAD=$target/release/examples/load
out=bench/out/pull-$size
data=$out/data
mkdir -p "$out"

a=$out/gen-a-$size.pcap
b=$out/gen-b-$size.pcap
[ -s "$a" ] || "$T" gen -o "$a" --size "$size" --seed 21
[ -s "$b" ] || "$T" gen -o "$b" --size "$size" --seed 22

fresh=no
if [ ! -s "$out/admin-token" ]; then
  rm -rf "$data"
  fresh=yes
fi
"$T" server --data "$data" --listen 127.0.0.1:0 > "$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  grep -q '^stop with' "$out/server.log" && break
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$out/server.log")
if [ "$fresh" = yes ]; then
  sed -n 's/^admin token: //p' "$out/server.log" > "$out/admin-token"
fi
admin=$(cat "$out/admin-token")
cert=$data/tls/cert.pem

# trawl gen writes about 300 000 packets a second: stretch each capture to one hour.
duration=$("$T" info --json "$a" | sed -n 's/.*"duration_secs": \([0-9.]*\).*/\1/p' | head -1)
stretch=$(python3 -c "print(max(1, round(3600 / $duration)))")
first=$("$T" info --json "$a" | sed -n 's/.*"first_epoch": "\([0-9]*\)\..*/\1/p' | head -1)
if [ "$fresh" = yes ]; then
  echo "loading $a and $b as devices gw-a and gw-b (times stretched ×$stretch)…" >&2
  start=$(date +%s.%N)
  "$LOAD" --server "$url" --ca "$cert" --token "$admin" --device gw-a --stretch "$stretch" "$a" \
    > "$out/load-a.txt" 2> "$out/load-a.log" &
  la=$!
  "$LOAD" --server "$url" --ca "$cert" --token "$admin" --device gw-b --stretch "$stretch" "$b" \
    > "$out/load-b.txt" 2> "$out/load-b.log" &
  lb=$!
  wait "$la"
  wait "$lb"
  end=$(date +%s.%N)
  python3 -c "print(f'load: {$end - $start:.1f} s')" > "$out/load-time.txt"
fi

export TRAWL_SERVER=$url TRAWL_TOKEN=$admin TRAWL_CA=$cert
from=$((first + 1800))
pull="$T pull --device gw-a --device gw-b --from $from"
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out/pull.json" \
  -n "10 s" "$pull --to $((from + 10)) -o $out/w10.pcapng" \
  -n "10 s, -f 'tcp port 80'" "$pull --to $((from + 10)) -f 'tcp port 80' -o $out/w10f.pcapng" \
  -n "120 s" "$pull --to $((from + 120)) -o $out/w120.pcapng" >&2

results=$out/results.md
{
  echo "| window | command | median (s) | min (s) | max (s) | packets | bytes | peak RSS trawl pull |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$results"
row() {
  local name=$1 cmd=$2
  local times summary rss
  times=$(python3 - "$out/pull.json" "$name" <<'PY'
import json, sys
r = {x['command']: x for x in json.load(open(sys.argv[1]))['results']}[sys.argv[2]]
print(f"{r['median']:.3f} {min(r['times']):.3f} {max(r['times']):.3f}")
PY
)
  summary=$(bash -c "$cmd --json" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["packets"], s["bytes"])')
  /usr/bin/time -f '%M' -o "$out/rss" bash -c "$cmd" 2>/dev/null
  rss=$(tail -1 "$out/rss")
  read -r med lo hi <<<"$times"
  read -r packets bytes <<<"$summary"
  echo "| $name | \`${cmd//$T/trawl}\` | $med | $lo | $hi | $packets | $bytes | $((rss / 1024)) MiB |" >> "$results"
}
row "10 s" "$pull --to $((from + 10)) -o $out/w10.pcapng"
row "10 s, -f 'tcp port 80'" "$pull --to $((from + 10)) -f 'tcp port 80' -o $out/w10f.pcapng"
row "120 s" "$pull --to $((from + 120)) -o $out/w120.pcapng"

stored=$(du -sb "$data/segments" | cut -f1)
segments=$(find "$data/segments" -name '*.pcapng.zst' | wc -l)
{
  echo
  echo "Stored: $(stat -c %s "$a") + $(stat -c %s "$b") bytes of pcap (trawl gen --size $size, seeds 21 and 22), times stretched ×$stretch to one hour per device; $stored bytes in $segments segments on disk (zstd)."
  [ -s "$out/load-time.txt" ] && echo "Loaded with crates/trawl-server/examples/load.rs over HTTPS, both devices at once: $(cat "$out/load-time.txt")."
  echo "Window: from $from (30 min into the hour), both devices, over HTTPS (self-signed certificate, --ca); output on the same disk."
  echo "Machine: $(nproc) cores, $(uname -r). Medians of $runs runs after 1 warm-up (hyperfine); segment files in the page cache."
} >> "$results"
cat "$results"
