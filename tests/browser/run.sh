#!/usr/bin/env bash
# The web UI's browser tests (docs/web.md): headless Debian Chromium driven by playwright-core.
#
#   tests/browser/run.sh [scenario|scale|all]      (default: all)
#
# Starts `trawl server` (plain HTTP on a free loopback port, a temporary data directory),
# creates the first admin with `trawl user add`, makes two network namespaces joined to this
# one by veth links (the devices' links: agents capture on them, pings and a UDP source make
# traffic), then runs scenario.mjs (issue 6's walk through the pages) and scale.mjs (10 000
# captures; a live view at 5 000 lines/s). Everything it starts is stopped on exit.
# Screenshots: artifacts/screenshots/ (set TRAWL_SCREENSHOTS to change); logs of the server and
# agents: artifacts/browser-logs/.
#
# Env: TRAWL_BIN (default target/release/trawl, built if missing), TRAWL_CORPUS (the shared
# corpus), CHROMIUM (default /usr/bin/chromium). Needs root (namespaces, capture).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
what=${1:-all}

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "tests/browser: SKIPPED (needs root and ip netns for the devices' links)" >&2
  exit 0
fi
for tool in node npm tshark "${CHROMIUM:-/usr/bin/chromium}"; do
  command -v "$tool" >/dev/null || { echo "tests/browser: $tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done

bin=${TRAWL_BIN:-$root/target/release/trawl}
if [ -z "${TRAWL_BIN:-}" ]; then
  (cd "$root" && cargo build --release --quiet -p trawl)
fi
[ -x "$bin" ] || { echo "tests/browser: no trawl binary at $bin" >&2; exit 1; }
if [ -z "${TRAWL_CORPUS:-}" ]; then
  for c in "$root/../shared/corpus" /work/shared/corpus; do
    [ -f "$c/INDEX.tsv" ] && TRAWL_CORPUS=$(cd "$c" && pwd) && break
  done
fi
[ -n "${TRAWL_CORPUS:-}" ] || { echo "tests/browser: set TRAWL_CORPUS to the shared corpus" >&2; exit 1; }

if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

shots=${TRAWL_SCREENSHOTS:-$root/artifacts/screenshots}
logs=$root/artifacts/browser-logs
mkdir -p "$shots" "$logs"
rm -f "$shots"/*.png "$logs"/*.log
# The server's data, agents' state and browser profiles: in memory where possible (10 000
# captures are 20 000 files, which a slow disk takes minutes to create and remove; durability is
# not what these tests judge).
tmp=${TRAWL_BROWSER_TMP:-/dev/shm}
[ -d "$tmp" ] && [ -w "$tmp" ] || tmp=/tmp
work=$(mktemp -d "$tmp/trawl-browser.XXXXXX")
data=$work/data
id=$$
server=""
namespaces=()

cleanup() {
  local rc=$?
  # What the tests started and left (a test that crashed), then the server, then the links.
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$work/pids"
  fi
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  cp "$work"/*.log "$logs"/ 2>/dev/null || true
  rm -rf "$work"
  echo "tests/browser: screenshots in $shots, logs in $logs"
  exit $rc
}
trap cleanup EXIT INT TERM

# The devices' links: namespace NS with PEER (PEER_ADDR), joined to IFACE (ADDR) here.
net='{"devices":['
for d in a b; do
  n=$([ $d = a ] && echo 1 || echo 2)
  ns=twweb-$id-$d
  iface=tw$((id % 100000))$d
  peer=tw$((id % 100000))${d}p
  ip netns add "$ns"
  namespaces+=("$ns")
  ip link add "$iface" type veth peer name "$peer"
  ip link set "$peer" netns "$ns"
  # No IPv6 on the links: its addresses arrive seconds after the link is up, and Chromium
  # aborts the page's requests (ERR_NETWORK_CHANGED) when this host's addresses change.
  sysctl -qw "net.ipv6.conf.$iface.disable_ipv6=1"
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
  ip addr add "10.231.$n.1/24" dev "$iface"
  ip link set "$iface" up
  ip netns exec "$ns" ip addr add "10.231.$n.2/24" dev "$peer"
  ip netns exec "$ns" ip link set "$peer" up
  ip netns exec "$ns" ip link set lo up
  # A neighbour that does not exist, for the UDP source: its frames cross the link unanswered.
  ip netns exec "$ns" ip neigh add "10.231.$n.99" lladdr 02:00:00:00:0$n:99 dev "$peer"
  [ $d = b ] && net+=','
  net+="{\"name\":\"edge-$d\",\"ns\":\"$ns\",\"iface\":\"$iface\",\"peer\":\"$peer\",\"addr\":\"10.231.$n.1\",\"peerAddr\":\"10.231.$n.2\",\"sink\":\"10.231.$n.99\"}"
done
net+=']}'
# The links settled (carrier up, as Chromium will see them) before the browser starts.
for _ in $(seq 100); do
  up=0
  for d in a b; do
    [ "$(cat "/sys/class/net/tw$((id % 100000))$d/operstate" 2>/dev/null)" = up ] && up=$((up + 1))
  done
  [ $up = 2 ] && break
  sleep 0.1
done

"$bin" server --data "$data" --listen 127.0.0.1:0 --plain-http --log-level warn \
  > "$work/server.log" 2> "$work/server-stderr.log" &
server=$!
for _ in $(seq 300); do
  grep -q '^stop with' "$work/server.log" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work"/server*.log >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/server.log")
token=$(sed -n 's/^admin token: //p' "$work/server.log")
[ -n "$url" ] && [ -n "$token" ] || { echo "tests/browser: the server did not start" >&2; cat "$work"/server*.log >&2; exit 1; }

# The first admin, made by the CLI on the data directory (issue 6's users).
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
auth=0
if "$bin" user --help >/dev/null 2>&1; then
  printf '%s\n' "$password" | "$bin" user add admin --role admin --data "$data" --password-stdin
  auth=1
else
  echo "tests/browser: this trawl has no 'user' command yet: login, logout and share links are skipped" >&2
fi

export TRAWL_URL=$url TRAWL_BIN=$bin TRAWL_DATA=$data TRAWL_WORK=$work TRAWL_ADMIN_TOKEN=$token \
  TRAWL_AUTH=$auth TRAWL_USER=admin TRAWL_PASSWORD=$password TRAWL_CORPUS TRAWL_SCREENSHOTS=$shots \
  TRAWL_NET=$net
cd "$here"
case $what in
  scenario) nice -n 10 node scenario.mjs ;;
  scale) nice -n 10 node scale.mjs ;;
  all) nice -n 10 node scenario.mjs && nice -n 10 node scale.mjs ;;
  *) echo "usage: $0 [scenario|scale|all]" >&2; exit 2 ;;
esac
