#!/usr/bin/env bash
# Lossless capture rate, side by side in one run: tcpreplay sends a capture at rising packet
# rates from one network namespace onto a veth pair; in the other namespace either
#   (a) tcpdump -i IF -w FILE   (with a 32 MiB kernel buffer, the size of the agent's ring), or
#   (b) trawl agent -i IF  →  trawl server (HTTPS on the namespace's loopback, zstd segments,
#       SQLite catalogue)
# captures it. A trial is lossless when what was stored equals what tcpreplay says it sent.
# For each tool the highest lossless rate is reported, with the CPU time and peak memory of
# tcpdump, the agent and the server. Needs root (namespaces).
#
# Usage: bench/capture.sh [RATES…]   (packets/s; default 25000 50000 100000 150000 200000 300000)
# Env: TRAWL_BENCH_PACKETS (packets per trial, default 300000), TRAWL_BENCH_TRIALS (default 2),
# TRAWL_BENCH_CPU (e.g. 25: the capturing device — tcpdump, or the agent — gets that percentage
# of one core, through a cgroup CPU quota, as on a small device; the server is the centre and
# is not limited, unless TRAWL_BENCH_CPU_SERVER=1 puts it in the same quota as the agent; on a
# machine where tcpreplay saturates before either tool loses anything, this finds the limits).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/capture.sh needs root (network namespaces)" >&2; exit 1; }
scripts/deps.sh --bench
cargo build --release --quiet -p trawl
T=$PWD/target/release/trawl
out=$PWD/bench/out/capture
rm -rf "$out"; mkdir -p "$out"
rates=("$@"); [ ${#rates[@]} -gt 0 ] || rates=(25000 50000 100000 150000 200000 300000)
n=${TRAWL_BENCH_PACKETS:-300000}
trials=${TRAWL_BENCH_TRIALS:-2}

# The traffic: a generated capture (mixed sizes, 2000 flows), cut to n packets.
src=$out/traffic.pcap
"$T" gen -o "$out/gen.pcap" --size $(( n * 800 / 1048576 + 2 ))M --seed 7 >/dev/null
editcap -r "$out/gen.pcap" "$src" "1-$n"
rm -f "$out/gen.pcap"
sent_expected=$("$T" info --json "$src" | sed -n 's/.*"packets": \([0-9]*\).*/\1/p' | head -1)
avg_len=$("$T" info --json "$src" | sed -n 's/.*"average_packet_size": \([0-9]*\).*/\1/p' | head -1)

G=tbgen$$ C=tbcap$$
cpu_pct=${TRAWL_BENCH_CPU:-}
cg=""
if [ -n "$cpu_pct" ]; then
  if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then      # cgroup v1
    cg=/sys/fs/cgroup/cpu/trawlbench$$; mkdir "$cg"
    echo 100000 > "$cg/cpu.cfs_period_us"; echo $((cpu_pct * 1000)) > "$cg/cpu.cfs_quota_us"
  else                                                                  # cgroup v2
    cg=/sys/fs/cgroup/trawlbench$$; mkdir "$cg"
    echo "$((cpu_pct * 1000)) 100000" > "$cg/cpu.max"
  fi
fi
# limit PID…: puts processes (all their threads) under the CPU quota, if one is set.
limit() { [ -z "$cg" ] || for p in "$@"; do echo "$p" > "$cg/cgroup.procs"; done; }
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null || true
  ip netns del "$G" 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  [ -z "$cg" ] || rmdir "$cg" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$G"; ip netns add "$C"
ip link add g0 netns "$G" type veth peer name c0 netns "$C"
for ns in "$G" "$C"; do ip -n "$ns" link set lo up; done
ip -n "$G" link set g0 up; ip -n "$C" link set c0 up
# No IPv6 chatter (router solicitations, MLD) on the capture link: only tcpreplay's packets.
ip netns exec "$C" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$G" sysctl -qw net.ipv6.conf.all.disable_ipv6=1

# cpu_ticks PID: utime+stime in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm_kib() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}'; }

# replay RATE: sends the capture at RATE packets/s; sets `sent` (packets tcpreplay sent) and
# `achieved` (its measured packets/s and Mbit/s).
replay() {
  local log
  log=$(ip netns exec "$G" tcpreplay -q -i g0 --pps="$1" "$src" 2>&1)
  echo "$log" >> "$out/tcpreplay.log"
  sent=$(echo "$log" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' | head -1)
  achieved=$(echo "$log" | sed -n 's/.*Rated: [0-9.]* Bps, \([0-9.]*\) Mbps, \([0-9.]*\) pps.*/\2\t\1/p' | head -1)
}

# --- trawl: one server for all trials; the agent is enrolled once, then started for each of
# its trials only (so that it does not also capture tcpdump's trials).
D=$out/data S=$out/agent-state
ip netns exec "$C" "$T" server --data "$D" --listen 127.0.0.1:18443 > "$out/server.out" 2> "$out/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q '^stop with' "$out/server.out" 2>/dev/null && break; sleep 0.1; done
admin=$(sed -n 's/^admin token: //p' "$out/server.out")
token=$("$T" org enrollment-token --data "$D" 2>/dev/null)
ip netns exec "$C" "$T" agent --server https://127.0.0.1:18443 --ca "$D/tls/cert.pem" \
  --enroll "$token" --name bench --state "$S" 2> "$out/agent.log"
[ "${TRAWL_BENCH_CPU_SERVER:-0}" = 1 ] && limit "$server_pid"
agent_hwm=0

stored() {
  ip netns exec "$C" curl -s --cacert "$D/tls/cert.pem" -H "Authorization: Bearer $admin" \
    https://127.0.0.1:18443/api/v1/devices |
    python3 -c 'import json,sys; print(sum(d["packets"] for d in json.load(sys.stdin)["devices"]))'
}
# Waits until the stored count stops moving (batches go every 0.5 s; the spool drains).
settle() {
  local last=-1 now same=0
  while [ $same -lt 6 ]; do
    now=$(stored); if [ "$now" = "$last" ]; then same=$((same+1)); else same=0; fi
    last=$now; sleep 0.5
  done
  echo "$last"
}

results=$out/results.tsv
echo -e "tool\trate_pps\ttrial\tachieved_pps\tachieved_mbps\tsent\tstored\tlost\treported_drops\tcpu_s\tcpu_s_server" > "$results"
for rate in "${rates[@]}"; do
  for trial in $(seq "$trials"); do
    # (a) tcpdump
    ip netns exec "$C" tcpdump -i c0 -s 262144 -B 32768 -w "$out/td.pcap" 2> "$out/tcpdump.log" &
    td=$!
    limit "$td"
    for _ in $(seq 100); do grep -q 'listening on' "$out/tcpdump.log" && break; sleep 0.1; done
    c0=$(cpu_ticks $td)
    replay "$rate"
    # Until tcpdump has written what its buffer holds (the file stops growing).
    last=-1 same=0
    while [ $same -lt 4 ]; do
      now=$(stat -c %s "$out/td.pcap"); if [ "$now" = "$last" ]; then same=$((same+1)); else same=0; fi
      last=$now; sleep 0.25
    done
    c1=$(cpu_ticks $td)
    kill -INT $td; wait $td || true
    got=$(capinfos -c -M "$out/td.pcap" | awk '/Number of packets/{print $NF}')
    reported=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$out/tcpdump.log")
    echo -e "tcpdump\t$rate\t$trial\t$achieved\t$sent\t$got\t$((sent-got))\t${reported:-?}\t$(secs $((c1-c0)))\t-" >> "$results"
    rm -f "$out/td.pcap"

    # (b) trawl agent → server
    ip netns exec "$C" "$T" agent --state "$S" -i c0 --status-every 0 --json \
      > "$out/agent.json" 2> "$out/agent.log" &
    agent_pid=$!
    limit "$agent_pid"
    for _ in $(seq 100); do grep -q 'streaming' "$out/agent.log" && break; sleep 0.1; done
    before=$(stored)
    a0=$(cpu_ticks $agent_pid); s0=$(cpu_ticks $server_pid)
    replay "$rate"
    after=$(settle)
    a1=$(cpu_ticks $agent_pid); s1=$(cpu_ticks $server_pid)
    hwm=$(hwm_kib $agent_pid); [ "$hwm" -gt "$agent_hwm" ] && agent_hwm=$hwm
    kill -INT "$agent_pid"; wait "$agent_pid" || true
    # What the agent reported losing (kernel ring full, interface, spool): stored + these must
    # equal what was sent.
    reported=$(python3 -c 'import json,sys; print(sum(s["kernel_drops"]+s["interface_drops"]+s["spool_drops"] for s in json.load(open(sys.argv[1]))))' "$out/agent.json")
    got=$((after-before))
    echo -e "trawl\t$rate\t$trial\t$achieved\t$sent\t$got\t$((sent-got))\t$reported\t$(secs $((a1-a0)))\t$(secs $((s1-s0)))" >> "$results"
    column -t "$results" | tail -2 >&2
  done
done
echo "agent peak RSS: $agent_hwm KiB; server peak RSS: $(hwm_kib $server_pid) KiB" | tee "$out/memory.txt"
kill "$server_pid"; wait "$server_pid" || true
# tcpdump's peak memory, once, at the highest rate.
/usr/bin/time -f '%M' -o "$out/tcpdump-rss.txt" ip netns exec "$C" timeout 30 \
  tcpdump -i c0 -s 262144 -B 32768 -w "$out/td.pcap" 2>/dev/null &
sleep 1; replay "${rates[-1]}"; sleep 1; pkill -INT -f "tcpdump -i c0 -s 262144" || true; wait || true
echo "tcpdump peak RSS: $(cat "$out/tcpdump-rss.txt" | tail -1) KiB" | tee -a "$out/memory.txt"
echo "average packet: $avg_len bytes; packets per trial: $sent_expected; CPU quota of the capturing side: ${cpu_pct:-none}% (server in it: ${TRAWL_BENCH_CPU_SERVER:-0})" | tee -a "$out/memory.txt"
column -t "$results"
