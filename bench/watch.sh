#!/usr/bin/env bash
# The live view of a capture job under load: the time from capture to printed line of
# `trawl capture watch JOB --json`, side by side in one run with `tcpdump -l` on one of the
# job's interfaces (a local capture tool printing lines as it captures them).
#
#                  ┌─────────────────── srv ───────────────────┐
#                  │ trawl server, trawl capture watch JOB     │
#                  │ up1 10.78.1.1   up2 10.78.2.1  up3 10.78.3.1
#                  └───┬───────────────┬───────────────┬───────┘
#                  ┌───┴───┐ab      ba┌─┴─────┐bc   cb┌─┴─────┐
#                  │   a   ├──────────┤forward├────────┤   c   │
#                  └───────┘10.78.10.1 .2     10.78.20.1 .2   └───────┘
#
# Four network namespaces as in crates/trawl/tests/jobs.rs: the chain a—b—c (b forwards; static
# neighbours, no IPv6: the chain carries only the benchmark's traffic), the server in srv with an
# uplink veth to each device, and an agent on each device (a on ab, b on ba, c on cb), enrolled
# with a one-time token. For each rate and trial: a job on a, b and c with FILTER; `trawl capture
# watch JOB --json` in srv and `tcpdump -l -n -tt -i ab FILTER` in a, each piped into a small
# reader that stamps every line with the wall-clock time it arrived (CLOCK_REALTIME, the clock
# packets are stamped with); then a paced UDP sender in a (python3, a connected socket, each
# datagram numbered so that no two are alike) sends to port 5001 of c for SECONDS at RATE
# packets/s, through b. c has a socket bound to the port that never reads (no ICMP comes back).
# Every packet crosses a, b and c, so the view shows each once and removes two copies.
#
# Capture to line is (arrival of the line − the packet's capture time): for trawl from the JSON
# lines' ts_ns (and, independently, the view's own summary, which measures in the client before
# printing), for tcpdump from its -tt time.
#
# Usage: bench/watch.sh [RATES…]   (packets/s; default 1000 10000 50000). Needs root.
# Env: TRAWL_BENCH_SECONDS (traffic per trial, default 10), TRAWL_BENCH_TRIALS (default 3),
# TRAWL_BENCH_AGENT_FILTER (a filter for the agents' own continuous streams, e.g.
# 'not udp port 5001': by default they stream everything on their interface, as deployed, and
# the job's traffic is captured and stored twice per device).
# Output: bench/out/watch/ (results.tsv per trial, results.md the medians per rate, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/watch.sh needs root (network namespaces)" >&2; exit 1; }
scripts/deps.sh --bench
cargo build --release --quiet -p trawl
T=$PWD/target/release/trawl
out=$PWD/bench/out/watch
rm -rf "$out"; mkdir -p "$out"
rates=("$@"); [ ${#rates[@]} -gt 0 ] || rates=(1000 10000 50000)
seconds=${TRAWL_BENCH_SECONDS:-10}
trials=${TRAWL_BENCH_TRIALS:-3}
agent_filter=${TRAWL_BENCH_AGENT_FILTER:-}
FILTER='udp port 5001 or icmp'
PORT=18445
# The agents and clients talk to the server directly.
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy

# --- Helpers, in python3 ---------------------------------------------------------------------
# stamp.py MODE OUT: reads lines (MODE json: `trawl capture watch --json`; tcpdump: `tcpdump -tt`)
# and stamps each with the time the read that completed it returned. At the end writes to OUT
# one JSON object: lines, lines measured (captured after the reader started), median, p99 and
# max capture-to-line in ms, late (json), and the median of each second of capture time.
cat > "$out/stamp.py" <<'PY'
import json, os, re, sys, time
mode, path = sys.argv[1], sys.argv[2]
fd = sys.stdin.fileno()
start = time.time_ns()
pat = re.compile(rb'"ts_ns":(\d+)') if mode == 'json' else re.compile(rb'(?m)^(\d+)\.(\d+) ')
pairs = []          # (capture ns, arrival ns)
rest, lines, late = b'', 0, 0
odd = []            # the first lines without a packet time
while True:
    chunk = os.read(fd, 1 << 16)
    if not chunk:
        break
    now = time.time_ns()
    buf = rest + chunk
    cut = buf.rfind(b'\n') + 1
    whole, rest = buf[:cut], buf[cut:]
    if not whole:
        continue
    lines += whole.count(b'\n')
    if len(odd) < 5:
        odd += [l.decode(errors='replace') for l in whole.splitlines()
                if not pat.search(l)][:5 - len(odd)]
    if mode == 'json':
        late += whole.count(b'"late":true')
        for m in pat.finditer(whole):
            pairs.append((int(m.group(1)), now))
    else:
        for m in pat.finditer(whole):
            s, f = m.groups()
            pairs.append((int(s) * 1_000_000_000 + int(f) * 10 ** (9 - len(f)), now))
lat = sorted(a - ts for ts, a in pairs if ts >= start)
def q(x):
    if not lat:
        return None
    i = max(1, -(-len(lat) * x // 1)) - 1
    return round(lat[int(min(i, len(lat) - 1))] / 1e6, 1)
per_second = []
if pairs:
    first = min(ts for ts, _ in pairs)
    secs = {}
    for ts, a in pairs:
        if ts >= start:
            secs.setdefault((ts - first) // 1_000_000_000, []).append(a - ts)
    for k in sorted(secs):
        v = sorted(secs[k])
        per_second.append(round(v[len(v) // 2] / 1e6, 1))
json.dump({'lines': lines, 'parsed': len(pairs), 'measured': len(lat), 'median_ms': q(0.5), 'p99_ms': q(0.99),
           'max_ms': round(lat[-1] / 1e6, 1) if lat else None, 'late': late,
           'median_per_second_ms': per_second, 'odd_lines': odd}, open(path, 'w'))
PY
# send.py ADDR PORT RATE SECONDS: numbered UDP datagrams (64 bytes of payload) at RATE a second,
# paced by the monotonic clock (at most 0.5 ms between wake-ups: bursts of RATE/2000 at high
# rates); prints the count, the time taken and send errors.
cat > "$out/send.py" <<'PY'
import socket, struct, sys, time
addr, port, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((addr, port))
send, pack, pad = s.send, struct.Struct('!Q').pack, bytes(56)
total = int(rate * secs)
n = errors = 0
t0 = time.monotonic()
while n < total:
    now = time.monotonic()
    due = min(total, int((now - t0) * rate) + 1)
    while n < due:
        try:
            send(pack(n) + pad)
        except OSError:
            errors += 1
        n += 1
    wait = t0 + n / rate - time.monotonic()
    if wait > 0:
        time.sleep(max(wait, 0.0005))
print(n, round(time.monotonic() - t0, 3), errors)
PY

# --- The network -----------------------------------------------------------------------------
P=tbw$$
SRV=$P-srv A=$P-a B=$P-b C=$P-c
# wait_gone PID SECONDS: waits for a process of ours to end; 1 if it did not.
wait_gone() {
  local i
  for i in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
pids=()
cleanup() {
  local ns p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait_gone "$p" 5 || true; done
  for ns in "$SRV" "$A" "$B" "$C"; do
    # What still runs in the benchmark's namespaces was started by it.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "$out"/*.fifo
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for ns in "$SRV" "$A" "$B" "$C"; do
  ip netns add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
# veth NS1 IF1 MAC1 CIDR1 NS2 IF2 MAC2 CIDR2
veth() {
  ip -n "$1" link add "$2" address "$3" type veth peer name "$6" address "$7" netns "$5"
  ip -n "$1" addr add "$4" dev "$2"; ip -n "$5" addr add "$8" dev "$6"
  ip -n "$1" link set "$2" up; ip -n "$5" link set "$6" up
}
n=1
for d in "$A" "$B" "$C"; do
  veth "$SRV" up$n 02:78:00:00:0$n:01 10.78.$n.1/24 "$d" uplink 02:78:00:00:0$n:02 10.78.$n.2/24
  n=$((n + 1))
done
veth "$A" ab 02:78:00:00:0a:01 10.78.10.1/24 "$B" ba 02:78:00:00:0a:02 10.78.10.2/24
veth "$B" bc 02:78:00:00:14:01 10.78.20.1/24 "$C" cb 02:78:00:00:14:02 10.78.20.2/24
ip -n "$A" neigh replace 10.78.10.2 lladdr 02:78:00:00:0a:02 dev ab nud permanent
ip -n "$B" neigh replace 10.78.10.1 lladdr 02:78:00:00:0a:01 dev ba nud permanent
ip -n "$B" neigh replace 10.78.20.2 lladdr 02:78:00:00:14:02 dev bc nud permanent
ip -n "$C" neigh replace 10.78.20.1 lladdr 02:78:00:00:14:01 dev cb nud permanent
ip netns exec "$B" sysctl -qw net.ipv4.ip_forward=1
ip -n "$A" route add 10.78.20.0/24 via 10.78.10.2 dev ab
ip -n "$C" route add 10.78.10.0/24 via 10.78.20.1 dev cb

# The sink on c: bound, never read (a full socket drops quietly; an unbound port would answer
# with ICMP, which the filter keeps).
ip netns exec "$C" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("10.78.20.2", 5001))
time.sleep(1e9)' &
pids+=($!)

# --- Server and agents -----------------------------------------------------------------------
D=$out/data
ip netns exec "$SRV" "$T" server --data "$D" --listen 0.0.0.0:$PORT > "$out/server.out" 2> "$out/server.log" &
server_pid=$!; pids+=($server_pid)
for _ in $(seq 100); do grep -q '^stop with' "$out/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^stop with' "$out/server.out" || { echo "the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
fingerprint=$(sed -n 's/^certificate SHA-256 fingerprint: //p' "$out/server.out")
export TRAWL_SERVER=https://127.0.0.1:$PORT TRAWL_CA=$D/tls/cert.pem
TRAWL_TOKEN=$(sed -n 's/^admin token: //p' "$out/server.out"); export TRAWL_TOKEN
# In srv: the clients.
client() { ip netns exec "$SRV" "$T" "$@"; }
devs=(a b c) nss=("$A" "$B" "$C") ifs=(ab ba cb)
agent_pids=()
for i in 0 1 2; do
  token=$("$T" org enrollment-token --data "$D" 2>/dev/null)
  ip netns exec "${nss[i]}" "$T" agent --server "https://10.78.$((i + 1)).1:$PORT" \
    --fingerprint "$fingerprint" --enroll "$token" --name "${devs[i]}" --state "$out/agent-${devs[i]}" \
    -i "${ifs[i]}" ${agent_filter:+-f "$agent_filter"} --status-every 0 \
    > /dev/null 2> "$out/agent-${devs[i]}.log" &
  agent_pids+=($!); pids+=($!)
  # One at a time, as in the tests: an enrolment while the next token is written can find the
  # catalogue locked.
  for _ in $(seq 300); do grep -q ' streaming ' "$out/agent-${devs[i]}.log" && break; sleep 0.1; done
  grep -q ' streaming ' "$out/agent-${devs[i]}.log" || { echo "agent ${devs[i]} did not start:" >&2; cat "$out/agent-${devs[i]}.log" >&2; exit 1; }
done
# Until every device's command channel is up.
for _ in $(seq 200); do
  polling=$(client devices --json 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for d in json.load(sys.stdin)["devices"] if d.get("polling")))' 2>/dev/null || echo 0)
  [ "$polling" = 3 ] && break; sleep 0.1
done
[ "$polling" = 3 ] || { echo "the agents did not connect:" >&2; tail -n 5 "$out"/agent-*.log >&2; exit 1; }
echo "network, server and three agents up (agents' own streams: ${agent_filter:-every packet})" >&2

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
agents_ticks() { local s=0 p; for p in "${agent_pids[@]}"; do s=$((s + $(cpu_ticks "$p"))); done; echo $s; }
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}'; }

results=$out/results.tsv
echo -e "rate_pps\ttrial\tjob\tsent\tsend_s\tachieved_pps\tsend_errors\ttcpdump_lines\ttcpdump_dropped\ttcpdump_median_ms\ttcpdump_p99_ms\tshown\tper_device\tduplicates\tlate\tskipped_batches\tcli_median_ms\tcli_p99_ms\tcli_measured\treader_median_ms\treader_p99_ms\treader_max_ms\treader_lines\tcpu_server_s\tcpu_agents_s\tcpu_watch_s\twatch_rss_kib" > "$results"

trial() {
  local rate=$1 t=$2 tag=$1-$2
  rm -f "$out"/*.fifo; mkfifo "$out/td.fifo" "$out/w.fifo"
  # The reference: tcpdump -l on a's interface.
  python3 "$out/stamp.py" tcpdump "$out/tcpdump-$tag.json" < "$out/td.fifo" &
  local td_reader=$!; pids+=($td_reader)
  ip netns exec "$A" tcpdump -l -n -tt -i ab "$FILTER" > "$out/td.fifo" 2> "$out/tcpdump-$tag.log" &
  local td=$!; pids+=($td)
  for _ in $(seq 100); do grep -q 'listening on' "$out/tcpdump-$tag.log" && break; sleep 0.1; done

  local id
  id=$(client capture start --devices a,b,c -f "$FILTER" --name "watch $rate pps #$t" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 100); do
    client capture show "$id" --json | python3 -c '
import json, sys
sys.exit(0 if all(d["state"] == "running" for d in json.load(sys.stdin)["devices"]) else 1)' && break
    sleep 0.1
  done
  python3 "$out/stamp.py" json "$out/watch-$tag.json" < "$out/w.fifo" &
  local w_reader=$!; pids+=($w_reader)
  ip netns exec "$SRV" /usr/bin/time -f '%U %S %M' -o "$out/watch-$tag.time" \
    "$T" capture watch "$id" --json > "$out/w.fifo" 2> "$out/watch-$tag.log" &
  local w=$!; pids+=($w)
  sleep 1   # the view is connected and has shown the job's (empty) stored part

  local s0 a0 sent send_s errors
  s0=$(cpu_ticks "$server_pid"); a0=$(agents_ticks)
  read -r sent send_s errors < <(ip netns exec "$A" python3 "$out/send.py" 10.78.20.2 5001 "$rate" "$seconds")
  sleep 2   # everything captured reaches the view (the longest hold is 0.5 s)
  local s1 a1
  s1=$(cpu_ticks "$server_pid"); a1=$(agents_ticks)
  client capture stop "$id" --wait > "$out/job-$tag.txt"
  wait_gone "$w" 30 || { echo "job $id: the view did not end with the job" >&2; kill "$w" 2>/dev/null || true; }
  wait "$w_reader" || true
  kill -INT "$td" 2>/dev/null || true
  wait_gone "$td" 10 || kill "$td" 2>/dev/null || true
  wait "$td_reader" || true

  python3 - "$out" "$tag" "$rate" "$t" "$id" "$sent" "$send_s" "$errors" "$(secs $((s1 - s0)))" "$(secs $((a1 - a0)))" >> "$results" <<'PY'
import json, re, sys
out, tag, rate, trial, job, sent, send_s, errors, cpu_s, cpu_a = sys.argv[1:]
td = json.load(open(f'{out}/tcpdump-{tag}.json'))
rd = json.load(open(f'{out}/watch-{tag}.json'))
td_log = open(f'{out}/tcpdump-{tag}.log').read()
dropped = re.search(r'(\d+) packets? dropped by kernel', td_log)
log = open(f'{out}/watch-{tag}.log').read()
m = re.search(r'(\d+) packets shown \(([^)]*)\), (\d+) duplicates removed, (\d+) late', log)
lat = re.search(r'median (\d+) ms, 99th percentile (\d+) ms \((\d+) packets', log)
skipped = re.search(r'(\d+) batches not shown', log)
try:
    u, s, rss = open(f'{out}/watch-{tag}.time').read().split()[-3:]
    cpu_w = f'{float(u) + float(s):.2f}'
except Exception:
    cpu_w, rss = '-', '-'
g = lambda x, i: x.group(i) if x else '-'
row = [rate, trial, job, sent, send_s, f'{int(sent) / float(send_s):.0f}', errors,
       td['parsed'], g(dropped, 1), td['median_ms'], td['p99_ms'],
       g(m, 1), g(m, 2).replace(' ', ':').replace(',:', ','), g(m, 3), g(m, 4),
       skipped.group(1) if skipped else 0,
       g(lat, 1), g(lat, 2), g(lat, 3),
       rd['median_ms'], rd['p99_ms'], rd['max_ms'], rd['parsed'], cpu_s, cpu_a, cpu_w, rss]
print('\t'.join(str(x) for x in row))
PY
  tail -1 "$results" | awk -F'\t' '{printf "rate %s #%s: sent %s in %s s (%s pps); trawl watch median %s ms p99 %s ms (reader %s / %s), shown %s (%s), %s duplicates, %s late; tcpdump -l median %s ms p99 %s ms, %s lines\n", $1,$2,$4,$5,$6,$17,$18,$20,$21,$12,$13,$14,$15,$10,$11,$8}' >&2
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  view: median per second of capture (ms):", d["median_per_second_ms"])' "$out/watch-$tag.json" >&2
}

for rate in "${rates[@]}"; do
  for t in $(seq "$trials"); do trial "$rate" "$t"; done
done
# The agents first (they send what they hold), then the server.
kill -INT "${agent_pids[@]}" 2>/dev/null || true
for p in "${agent_pids[@]}"; do wait_gone "$p" 15 || true; done
kill "$server_pid" 2>/dev/null || true

# Medians over the trials, per rate.
python3 - "$results" "$out/results.md" "$seconds" "$trials" <<'PY'
import csv, statistics, sys
path, md, seconds, trials = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter='\t'))
def med(rs, k):
    v = [float(r[k]) for r in rs if r[k] not in ('-', 'None', '')]
    return statistics.median(v) if v else float('nan')
def every(rs, k):
    return ', '.join(r[k] for r in rs)
lines = [
    f'| rate asked (pps) | achieved (pps) | trawl watch median (ms) | trawl p99 (ms) | reader median / p99 (ms) | tcpdump -l median (ms) | tcpdump -l p99 (ms) | median ratio trawl / tcpdump | shown / tcpdump lines on a | duplicates removed | late | CPU s server / agents / watch |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
]
for rate in dict.fromkeys(r['rate_pps'] for r in rows):
    rs = [r for r in rows if r['rate_pps'] == rate]
    tm, tp, rm, rp = med(rs, 'cli_median_ms'), med(rs, 'cli_p99_ms'), med(rs, 'reader_median_ms'), med(rs, 'reader_p99_ms')
    dm, dp = med(rs, 'tcpdump_median_ms'), med(rs, 'tcpdump_p99_ms')
    shown = ', '.join(f"{r['shown']}/{r['tcpdump_lines']}" for r in rs)
    lines.append(
        f"| {rate} | {med(rs, 'achieved_pps'):.0f} | {tm:.0f} | {tp:.0f} | {rm:.0f} / {rp:.0f} | {dm:.1f} | {dp:.1f} | "
        f"{tm / dm if dm else float('inf'):.1f}× | {shown} | {every(rs, 'duplicates')} | {every(rs, 'late')} | "
        f"{med(rs, 'cpu_server_s'):.2f} / {med(rs, 'cpu_agents_s'):.2f} / {med(rs, 'cpu_watch_s'):.2f} |")
lines.append('')
lines.append(f'Medians over {trials} trials of {seconds} s each (latencies: each trial\'s median and 99th percentile, then the median of those); '
             'shown, duplicates and late per trial. CPU: server and the three agents during the traffic (+2 s), the view for its whole run.')
open(md, 'w').write('\n'.join(lines) + '\n')
PY
{
  echo
  echo "Machine: $(nproc) cores, $(uname -r); load average before the run's end: $(cut -d' ' -f1-3 /proc/loadavg); $(tcpdump --version 2>&1 | head -1); $(python3 --version)"
} >> "$out/results.md"
column -t -s $'\t' "$results"
echo
cat "$out/results.md"
