#!/usr/bin/env bash
# The README's "run" command: trawl's main job on its embedded defaults.
#   1. builds trawl (installing libpcap-dev and the like when missing);
#   2. starts the server: data in ./trawl-data (SQLite catalogue, zstd segments), HTTPS on
#      127.0.0.1:8443 with a certificate it makes on first start;
#   3. enrols a local agent (state in ./trawl-agent) and streams a freshly generated capture
#      through it, as a device would stream what it captures;
#   4. lists the devices, pulls 50 ms of its HTTPS packets back from the server, and shows them;
#   5. leaves the server running until Ctrl-C, with the web pages at its address (user admin,
#      password in ./trawl-data/web-password).
# Env: TRAWL_LISTEN (default 127.0.0.1:8443), TRAWL_DATA (./trawl-data), TRAWL_AGENT (./trawl-agent).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
cargo build --release --quiet -p trawl
T=$PWD/target/release/trawl
listen=${TRAWL_LISTEN:-127.0.0.1:8443}
data=${TRAWL_DATA:-./trawl-data}
agent_state=${TRAWL_AGENT:-./trawl-agent}
url=https://$listen
mkdir -p "$data"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the server: trawl server --data $data --listen $listen"
"$T" server --data "$data" --listen "$listen" > "$data/server.out" 2> "$data/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 300); do
  grep -q '^stop with' "$data/server.out" 2>/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$data/server.out" "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
sed -n '1,/^stop with/p' "$data/server.out" | grep -v '^admin token:'
# The admin token is printed once, on the first start; the demo keeps it (mode 0600) so the
# later steps and later runs can use it. Keep yours somewhere safer.
if grep -q '^admin token: ' "$data/server.out"; then
  (umask 077; sed -n 's/^admin token: //p' "$data/server.out" > "$data/admin-token")
  echo "(the admin token is in $data/admin-token for this demo)"
fi
# A web user for the pages at $url: made once, its password kept (mode 0600) beside the token.
if [ ! -s "$data/web-password" ]; then
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$data/web-password")
  if ! "$T" user add admin --role admin --data "$data" --password-stdin < "$data/web-password" >/dev/null 2>&1; then
    echo "(a web user named admin exists already: its password is not in $data/web-password)"
    rm -f "$data/web-password"
  fi
fi
export TRAWL_SERVER=$url TRAWL_CA=$data/tls/cert.pem
if [ -s "$data/admin-token" ]; then
  TRAWL_TOKEN=$(cat "$data/admin-token"); export TRAWL_TOKEN
fi

step "a capture to stream: trawl gen --start now (20 MB of mixed traffic, time-stamped now)"
start=$(date +%s)
"$T" gen -o "$data/demo-traffic.pcap" --size 20M --seed "$start" --start "$start" 2>/dev/null
"$T" info "$data/demo-traffic.pcap" | sed -n '1,/Number of packets/p'

step "the agent: enrol once, then stream (trawl agent --pcap FILE replays a file as if captured)"
if [ ! -s "$agent_state/agent.json" ]; then
  token=$("$T" org enrollment-token --data "$data" 2>/dev/null)
  echo "trawl org enrollment-token --data $data  →  a one-time token"
  echo "trawl agent --server $url --ca $data/tls/cert.pem --enroll TOKEN --name demo-device --state $agent_state --pcap …"
  "$T" agent --server "$url" --ca "$data/tls/cert.pem" --enroll "$token" --name demo-device \
    --state "$agent_state" --pcap "$data/demo-traffic.pcap" --stream demo
else
  echo "trawl agent --state $agent_state --pcap …   (already enrolled)"
  "$T" agent --state "$agent_state" --pcap "$data/demo-traffic.pcap" --stream demo
fi

if [ -z "${TRAWL_TOKEN:-}" ]; then
  echo "no admin token at hand ($data/admin-token is missing): skipping the steps that need it"
else
  step "the devices: trawl devices"
  "$T" devices

  step "pull a window back: trawl pull --device demo-device --from $start --to $start.05 -f 'tcp port 443'"
  "$T" pull --device demo-device --from "$start" --to "$start.05" -f 'tcp port 443' -o "$data/window.pcapng"
  "$T" info "$data/window.pcapng" | sed -n '1,/Number of packets/p'
  echo "its first packets:"
  "$T" read "$data/window.pcapng" | head -5
fi

step "the server keeps running at $url (Ctrl-C stops it)"
cat <<EOF
  web pages:                          $url/  (organisation default, user admin, password in $data/web-password;
                                      the certificate is self-signed: $data/tls/cert.pem)
  capture on this machine (as root):  $T agent --state $agent_state -i eth0
  enrol another device:               $T org enrollment-token --data $data
  status:                             $T devices    (with TRAWL_SERVER, TRAWL_CA, TRAWL_TOKEN set as above)
  metrics:                            curl --cacert $data/tls/cert.pem -H "Authorization: Bearer \$TRAWL_TOKEN" $url/metrics
EOF
wait $server
