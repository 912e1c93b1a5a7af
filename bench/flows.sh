#!/usr/bin/env bash
# Flows and reports (issue 5), side by side in one run on a generated capture of at least 1 GiB:
# `trawl flows` (JSON lines, CSV, snapshot flows) and `trawl report` against `tshark -q -z
# conv,tcp`, `argus -r` and `softflowd -r`; flow counting in packets per second on one core
# (crates/trawl-flow/examples/count.rs); and peak memory against the number of flows alive.
#
# Every timed command runs pinned to one core (`taskset -c $TRAWL_BENCH_CPU`, default 1): the
# tools compared are single-threaded readers (argus has helper threads; pinned, they share the
# core), so this is the per-core comparison; `trawl flows`, argus and softflowd are also run
# unpinned (rows "@all": the whole machine, as an operator runs them — trawl flows then reads
# and decodes on one core and counts flows on the other). Trials are interleaved (round 1: every command,
# round 2: every command, …) so that load from other work falls on all of them alike; medians
# are taken. Wall time, user+system CPU and peak RSS come from /usr/bin/time.
#
# Usage: bench/flows.sh [TRIALS] (default 5; tshark runs in the first TRAWL_BENCH_TSHARK trials
# only, default 2: it takes minutes on 1 GiB). The capture goes to TRAWL_BENCH_DIR (default
# /var/tmp/trawl-bench), made once by `trawl gen --size $TRAWL_BENCH_SIZE --seed 1` (default 1G)
# and reused. Per-trial rows in bench/out/flows/trials.tsv; the tables in bench/out/flows/results.md.
# TRAWL_BENCH_BASELINE=DIR: also time DIR/trawl (flows, report) and DIR/count, built from an
# earlier commit, in the same rounds (before/after an optimisation).
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-5}
tshark_trials=${TRAWL_BENCH_TSHARK:-2}
cpu=${TRAWL_BENCH_CPU:-1}
size=${TRAWL_BENCH_SIZE:-1G}
dir=${TRAWL_BENCH_DIR:-/var/tmp/trawl-bench}
scripts/deps.sh --bench
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p trawl
cargo build --release --quiet -p trawl-flow --example count
T=$CARGO_TARGET_DIR/release/trawl
COUNT=$CARGO_TARGET_DIR/release/examples/count
out=bench/out/flows
mkdir -p "$out" "$dir"
F=$dir/gen-$size.pcap
if [ ! -s "$F" ]; then
  echo "generating $F ($size)…" >&2
  "$T" gen -o "$F" --size "$size" --seed 1
fi
packets=$("$T" info --json "$F" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["packets"])')
pin=(taskset -c "$cpu")

# softflowd exports over UDP: to a socket that is bound and never read, so the datagrams are
# dropped by the kernel at no cost to anyone and no ICMP error comes back.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(86400)' > "$out/sink.port" &
sink=$!
trap 'kill "$sink" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/sink.port" ] && break; sleep 0.1; done
port=$(cat "$out/sink.port")

# argus: its classic bidirectional 5-tuple flows (what /etc/argus.conf of Debian's package also
# sets), one status record per flow per minute at most (argus' built-in default; the capture
# lasts seconds, so one record per flow as trawl writes), management records every minute.
cat > "$out/argus.conf" <<'EOF'
ARGUS_FLOW_TYPE="Bidirectional"
ARGUS_FLOW_KEY="CLASSIC_5_TUPLE"
ARGUS_FLOW_STATUS_INTERVAL=60
ARGUS_MAR_STATUS_INTERVAL=60
EOF

declare -A cmds
names=(flows flows-csv snapshot report argus softflowd tshark flows@all report@all argus@all softflowd@all)
cmds[flows]="$T flows $F -o /dev/null"
cmds[flows-csv]="$T flows --format csv $F -o /dev/null"
cmds[snapshot]="$T flows --snapshot 100ms $F -o /dev/null"
cmds[report]="$T report $F -o /dev/null"
cmds[argus]="argus -F $out/argus.conf -r $F -w /dev/null"
cmds[softflowd]="softflowd -r $F -n 127.0.0.1:$port -v 10 -6"
cmds[tshark]="tshark -q -z conv,tcp -r $F"
# The same on the whole machine, as an operator runs them: trawl flows and trawl report read and
# decode on one thread and count on another; softflowd has one thread, argus several.
for n in flows report argus softflowd; do cmds[$n@all]=${cmds[$n]}; done
base=${TRAWL_BENCH_BASELINE:-}
if [ -n "$base" ]; then
  names+=(flows-before report-before)
  cmds[flows-before]="$base/trawl flows $F -o /dev/null"
  cmds[report-before]="$base/trawl report $F -o /dev/null"
fi

# One timed run: NAME TRIAL; appends "name trial wall cpu rss_kib rc" to trials.tsv.
timed() {
  local name=$1 trial=$2 rc=0 how=("${pin[@]}")
  [[ $name == *@all ]] && how=()
  # shellcheck disable=SC2086 # the commands are word lists
  /usr/bin/time -f '%e %U %S %M' -o "$out/time.txt" "${how[@]}" ${cmds[$name]} \
    > "$out/$name.stdout" 2> "$out/$name.stderr" || rc=$?
  read -r wall user sys rss < <(tail -1 "$out/time.txt")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$trial" "$wall" \
    "$(python3 -c "print(f'{$user + $sys:.2f}')")" "$rss" "$rc" >> "$out/trials.tsv"
  local note=""
  [ "$rc" = 0 ] || note=" (exit $rc)"
  echo "  $name: ${wall} s, $((rss / 1024)) MiB$note" >&2
}

cat "$F" > /dev/null # into the page cache
load_before=$(uptime)
printf 'name\ttrial\twall_s\tcpu_s\tmax_rss_kib\texit\n' > "$out/trials.tsv"
echo "warm-up" >&2
for name in flows report argus softflowd; do timed "$name" 0; done
for trial in $(seq "$trials"); do
  echo "trial $trial/$trials ($(uptime | sed 's/.*load/load/'))" >&2
  for name in "${names[@]}"; do
    [ "$name" = tshark ] && [ "$trial" -gt "$tshark_trials" ] && continue
    timed "$name" "$trial"
  done
done
load_after=$(uptime)

# What each did, to check they did comparable work (not timed).
"$T" flows --json "$F" -o /dev/null 2> "$out/flows.summary"
"$T" flows --json --snapshot 100ms "$F" -o /dev/null 2> "$out/snapshot.summary"
argus -F "$out/argus.conf" -r "$F" -w "$out/argus.out"
argus_records=$(ra -n -r "$out/argus.out" -s proto 2> /dev/null | grep -vc -e man -e Proto)
rm -f "$out/argus.out"
softflowd_flows=$(sed -n 's/^Flows exported: \([0-9]*\).*/\1/p' "$out/softflowd.stdout")
tshark_convs=$(grep -c '<->' "$out/tshark.stdout" || true)

# Flow counting on one core, from memory (see examples/count.rs): headers only (the first 128
# bytes of each packet, what a flow exporter reads), whole packets, and snapshot mode.
"${pin[@]}" "$COUNT" "$F" --snap 128 --rounds 5 | tee "$out/count-headers.txt" >&2
"${pin[@]}" "$COUNT" "$F" --rounds 5 | tee "$out/count-whole.txt" >&2
"${pin[@]}" "$COUNT" "$F" --snap 128 --rounds 5 --snapshot | tee "$out/count-snapshot.txt" >&2
rm -f "$out"/count-*-before.txt
if [ -n "$base" ]; then
  "${pin[@]}" "$base/count" "$F" --snap 128 --rounds 5 | tee "$out/count-headers-before.txt" >&2
  "${pin[@]}" "$base/count" "$F" --rounds 5 | tee "$out/count-whole-before.txt" >&2
  "${pin[@]}" "$base/count" "$F" --snap 128 --rounds 5 --snapshot |
    tee "$out/count-snapshot-before.txt" >&2
fi

# Memory against flows alive: the same generator (seed 1) on a 100 MiB prefix of the capture and
# with 10 and 100 times as many concurrent flows; default timeouts, and a 1 s idle timeout (the
# capture spans only seconds of traffic, so at the default 15 s no flow ever ends before the
# input does).
printf 'capture\tconcurrent\tidle\tpackets\trecords\tpeak_flows\tmax_rss_kib\n' > "$out/memory.tsv"
for spec in "$size 2000" "100M 2000" "100M 20000" "$size 20000" "100M 200000" "$size 200000"; do
  read -r s n <<<"$spec"
  g=$dir/gen-$s.pcap
  [ "$n" = 2000 ] || g=$dir/gen-$s-flows$n.pcap
  [ -s "$g" ] || "$T" gen -o "$g" --size "$s" --seed 1 --flows "$n" 2> /dev/null
  for idle in 15s 1s; do
    /usr/bin/time -f '%M' -o "$out/time.txt" "${pin[@]}" "$T" flows --json --idle-timeout "$idle" \
      "$g" -o /dev/null 2> "$out/mem.summary"
    python3 - "$s" "$n" "$idle" "$out/mem.summary" "$(tail -1 "$out/time.txt")" >> "$out/memory.tsv" <<'PY'
import json, sys
s, n, idle, summary, rss = sys.argv[1:]
j = json.loads(open(summary).read().strip().splitlines()[-1])
print(f"{s}\t{n}\t{idle}\t{j['packets']}\t{j['records']}\t{j['peak_flows']}\t{rss}")
PY
  done
  # Only the main capture is kept.
  [ "$g" = "$F" ] || [ -n "${TRAWL_BENCH_KEEP:-}" ] || rm -f "$g"
done

python3 - "$out" "$F" "$packets" "$cpu" "$trials" "$tshark_trials" "$argus_records" \
  "$softflowd_flows" "$tshark_convs" "$load_before" "$load_after" > "$out/results.md" <<'PY'
import csv, json, os, statistics, sys
out, F, packets, cpu, trials, tshark_trials = sys.argv[1:7]
argus_records, softflowd_flows, tshark_convs, load_before, load_after = sys.argv[7:12]
packets = int(packets)
rows = [r for r in csv.DictReader(open(f"{out}/trials.tsv"), delimiter="\t") if r["trial"] != "0"]
by = {}
for r in rows:
    by.setdefault(r["name"], []).append(r)
med = {n: statistics.median(float(r["wall_s"]) for r in rs) for n, rs in by.items()}
cpu_s = {n: statistics.median(float(r["cpu_s"]) for r in rs) for n, rs in by.items()}
rss = {n: max(int(r["max_rss_kib"]) for r in rs) for n, rs in by.items()}
fails = {n: [r["exit"] for r in rs if r["exit"] != "0"] for n, rs in by.items()}
summary = json.loads(open(f"{out}/flows.summary").read().strip().splitlines()[-1])
snap = json.loads(open(f"{out}/snapshot.summary").read().strip().splitlines()[-1])
what = {
    "flows": f"{summary['records']} flow records (JSON lines)",
    "flows-csv": f"{summary['records']} flow records (CSV)",
    "snapshot": f"{snap['records']} snapshot records (100 ms)",
    "report": "a 15-minute-period report (text)",
    "argus": f"{argus_records} flow records (ra)",
    "softflowd": f"{softflowd_flows} flows exported (IPFIX)",
    "tshark": f"{tshark_convs} TCP conversations",
    "flows-before": "(the baseline build)",
    "report-before": "(the baseline build)",
}
for n in ["flows", "report", "argus", "softflowd"]:
    what[f"{n}@all"] = what[n] + ", both cores"
cmds = {
    "flows": "trawl flows F -o /dev/null",
    "flows-csv": "trawl flows --format csv F -o /dev/null",
    "snapshot": "trawl flows --snapshot 100ms F -o /dev/null",
    "report": "trawl report F -o /dev/null",
    "argus": "argus -F argus.conf -r F -w /dev/null",
    "softflowd": "softflowd -r F -n 127.0.0.1:PORT -v 10 -6",
    "tshark": "tshark -q -z conv,tcp -r F",
    "flows-before": "BASELINE/trawl flows F -o /dev/null",
    "report-before": "BASELINE/trawl report F -o /dev/null",
}
for n in ["flows", "report", "argus", "softflowd"]:
    cmds[f"{n}@all"] = cmds[n] + " (not pinned)"
print(f"Capture: {F}, {os.path.getsize(F)} bytes, {packets} packets; pinned to CPU {cpu} "
      f"(rows marked 'not pinned': both cores); "
      f"{trials} interleaved trials (tshark: {min(int(trials), int(tshark_trials))}), medians.")
print()
print("| command | trials | median wall (s) | median CPU (s) | packets/s | peak RSS | output | trawl flows is faster by |")
print("|---|---|---|---|---|---|---|---|")
for n in ["flows", "flows-csv", "snapshot", "report", "argus", "softflowd", "tshark",
          "flows@all", "report@all", "argus@all", "softflowd@all", "flows-before", "report-before"]:
    if n not in med:
        continue
    ratio = f"{med[n] / med['flows']:.1f}×" if n in ("argus", "softflowd", "tshark") else ""
    if n == "report":
        ratio = f"(report / flows = {med[n] / med['flows']:.2f})"
    if n == "report@all":
        ratio = f"(report / flows = {med[n] / med['flows@all']:.2f}, both on the whole machine)"
    if n in ("argus@all", "softflowd@all"):
        ratio = f"{med[n] / med['flows@all']:.1f}× (both on the whole machine)"
    if n.endswith("-before"):
        now = n.removesuffix("-before")
        ratio = f"(before / after = {med[n] / med[now]:.2f})"
    fail = f" (exit {', '.join(fails[n])})" if fails[n] else ""
    print(f"| `{cmds[n]}` | {len(by[n])}{fail} | {med[n]:.3f} | {cpu_s[n]:.2f} | "
          f"{packets / med[n] / 1e6:.2f} M | {rss[n] / 1024:.0f} MiB | {what[n]} | {ratio} |")
print()
counts = [f"{n}{b}" for b in ["", "-before"] for n in ["headers", "whole", "snapshot"]]
for name in counts:
    if not os.path.exists(f"{out}/count-{name}.txt"):
        continue
    line = open(f"{out}/count-{name}.txt").read().strip().splitlines()[-1]
    j = json.loads(line)
    print(f"Flow counting from memory ({name}): decode {j['decode_mpps']:.2f} Mpps, "
          f"decode+add {j['count_mpps']:.2f} Mpps, add alone {j['add_mpps']:.2f} Mpps.")
print()
print("| capture | concurrent flows (gen) | idle timeout | packets | records | peak flows alive | peak RSS |")
print("|---|---|---|---|---|---|---|")
for r in csv.DictReader(open(f"{out}/memory.tsv"), delimiter="\t"):
    print(f"| {r['capture']} | {r['concurrent']} | {r['idle']} | {r['packets']} | {r['records']} | "
          f"{r['peak_flows']} | {int(r['max_rss_kib']) / 1024:.1f} MiB |")
print()
print(f"Load before: {load_before.strip()}")
print(f"Load after: {load_after.strip()}")
PY
rm -f "$out/time.txt" "$out/mem.summary"
cat "$out/results.md"
