#!/usr/bin/env bash
# Upload benchmark: a capture generated on the fly (`trawl gen -F pcap --size SIZE -o -`, pcap as
# tcpdump writes it) streamed into a
# `trawl server` through `curl -T -` — chunked, of unknown length, as `tcpdump -U -w - | curl -T -`
# sends one — over HTTPS. Reports the throughput and the server's peak resident memory (VmHWM)
# before and after, then downloads the capture back and checks its packet count. Prints a
# Markdown table and leaves it in bench/out/upload-SIZE/results.md.
#
# Usage: bench/upload.sh [SIZE] (default 2G). The server's data directory is made anew each run.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2G}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p trawl
T=$target/release/trawl
out=bench/out/upload-$size
data=$out/data
rm -rf "$data"
mkdir -p "$out"
: > "$out/server.log"

"$T" server --data "$data" --listen 127.0.0.1:0 > "$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  grep -q '^stop with' "$out/server.log" && break
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$out/server.log")
token=$(sed -n 's/^admin token: //p' "$out/server.log")
cert=$data/tls/cert.pem
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server/status"; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server/status"; }

# Warm up with a small upload, so "before" includes what every upload sets up once.
"$T" gen -F pcap --size 1M --seed 1 -o - 2> /dev/null |
  curl -sS --http1.1 --cacert "$cert" -u "bench:$token" -T - "$url/api/v1/captures?name=warm-up" > /dev/null
before=$(hwm)

# The generator alone, to tell its cost from the upload's.
gen_start=$(date +%s.%N)
"$T" gen -F pcap --size "$size" --seed 31 -o - > /dev/null 2> "$out/gen.txt"
gen_end=$(date +%s.%N)

start=$(date +%s.%N)
"$T" gen -F pcap --size "$size" --seed 31 -o - 2> /dev/null |
  curl -sS --http1.1 --cacert "$cert" -u "bench:$token" -T - \
    "$url/api/v1/captures?name=bench-$size&tag=bench" > "$out/answer.json"
end=$(date +%s.%N)
after=$(hwm)
now=$(rss)

read -r id packets bytes stored <<<"$(python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
print(a["id"], a["packets"], a["bytes"], a["stored_bytes"])' "$out/answer.json")"
# The body: what the generator wrote ("wrote N packets, B bytes to -").
body=$(sed -n 's/^wrote [0-9]* packets, \([0-9]*\) bytes.*/\1/p' "$out/gen.txt")

# Back down, counted by trawl info (a check, not timed).
curl -sS --cacert "$cert" -H "Authorization: Bearer $token" -o "$out/back.pcapng" \
  "$url/api/v1/captures/$id/pcapng"
back=$("$T" info --json "$out/back.pcapng" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["packets"])')
rm -f "$out/back.pcapng"

results=$out/results.md
python3 - "$body" "$packets" "$stored" "$start" "$end" "$gen_start" "$gen_end" "$before" "$after" "$now" "$back" > "$results" <<'PY'
import sys
body, packets, stored = map(int, sys.argv[1:4])
start, end, gs, ge = map(float, sys.argv[4:8])
before, after, now = map(int, sys.argv[8:11])
back = sys.argv[11]
secs = end - start
print("| upload | body | packets | seconds | MB/s | stored (zstd) | server peak RSS before | after | RSS at the end | packets downloaded back |")
print("|---|---|---|---|---|---|---|---|---|---|")
print(f"| chunked, curl -T - over HTTPS | {body:,} B | {packets:,} | {secs:.2f} | {body / secs / 1e6:.0f} | {stored:,} B | "
      f"{before / 1024:.1f} MiB | {after / 1024:.1f} MiB | {now / 1024:.1f} MiB | {back} |")
print()
print(f"`trawl gen` alone wrote the same {body:,} bytes to /dev/null in {ge - gs:.2f} s.")
PY
{
  echo "Machine: $(nproc) cores, $(uname -r); server and client on the same machine (127.0.0.1)."
} >> "$results"
cat "$results"
