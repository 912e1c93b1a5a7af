#!/usr/bin/env bash
# Installs what building and testing trawl needs on Debian, when it is missing:
# libpcap-dev (the filter compiler), and the reference tools the tests compare against
# (tcpdump, tshark, capinfos/mergecap/editcap from wireshark-common, tcprewrite from tcpreplay,
# zstd); iproute2 for the network-namespace tests; iputils-ping, dnsutils (dig) and curl for the
# end-to-end tests (crates/trawl/tests/streaming.rs); nfcapd and nfdump from nfdump for the
# IPFIX export test (crates/trawl/tests/ipfix.rs); with --bench, hyperfine, time and python3
# (the benchmarks' helpers), and argus (argus-server; ra from argus-client counts its records)
# and softflowd, the flow exporters bench/flows.sh compares trawl flows against; chromium,
# chromium-driver and npm (Node.js) for the web UI's browser tests (tests/browser/run.sh: Debian's
# Chromium driven by playwright-core, which npm installs from tests/browser/package-lock.json).
# Safe to run again.
set -euo pipefail
need=()
[ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
command -v mergecap >/dev/null || need+=(wireshark-common)
command -v tcprewrite >/dev/null || need+=(tcpreplay)
command -v zstd >/dev/null || need+=(zstd)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v nfcapd >/dev/null || need+=(nfdump)
command -v cc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v npm >/dev/null || need+=(npm)
if [ "${1:-}" = "--bench" ]; then
  command -v hyperfine >/dev/null || need+=(hyperfine)
  [ -x /usr/bin/time ] || need+=(time)
  command -v python3 >/dev/null || need+=(python3)
  command -v argus >/dev/null || need+=(argus-server)
  command -v ra >/dev/null || need+=(argus-client)
  command -v softflowd >/dev/null || need+=(softflowd)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections || true
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust from https://rustup.rs (stable, 1.95 or later)" >&2
  exit 1
fi
