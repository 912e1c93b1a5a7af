#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from the shared test corpus.
#
#   fuzz/seed.sh            (from anywhere; TRAWL_CORPUS overrides the corpus location, which
#                            defaults to ../shared/corpus relative to the repository root)
#
# pcap_reader: pcap files (classic, nanosecond, modified, either byte order) and snoop;
# pcapng_reader: pcapng files; compressed_reader: the .gz/.zst captures, plus gzip and zstd
# copies of small captures; decoder: packets of the captures, one per seed, with the link type
# prefix (`seedgen decoder`, at most DECODER_SEEDS, default 20000); bpf: libpcap's test
# programs with a packet (`seedgen bpf`). Files are named by content hash, so running it again
# adds nothing twice. Idempotent; it never deletes seeds.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz_dir/.." && pwd)
corpus_src=${TRAWL_CORPUS:-../shared/corpus}
case $corpus_src in /*) ;; *) corpus_src="$root/$corpus_src" ;; esac
if [ ! -d "$corpus_src" ]; then
    echo "seed.sh: no test corpus at $corpus_src (set TRAWL_CORPUS)" >&2
    exit 1
fi
out="$fuzz_dir/corpus"
decoder_max=${DECODER_SEEDS:-20000}
mkdir -p "$out"/{pcap_reader,pcapng_reader,compressed_reader,decoder,bpf}

# Copies a file into a target's corpus under the hash of its content.
add() { # target file
    local h
    h=$(sha1sum < "$2" | cut -c1-40)
    [ -e "$out/$1/$h" ] || cp "$2" "$out/$1/$h"
}

captures=()   # every uncompressed capture, for the decoder seeds
small=()      # small ones, to compress for compressed_reader
while IFS= read -r -d '' f; do
    magic=$(od -An -tx1 -N8 "$f" | tr -d ' \n')
    case $magic in
        a1b2c3d4*|d4c3b2a1*|a1b23c4d*|4d3cb2a1*|a1b2cd34*|34cdb2a1*|736e6f6f70000000)
            add pcap_reader "$f"; captures+=("$f") ;;
        0a0d0d0a*)
            add pcapng_reader "$f"; captures+=("$f") ;;
        1f8b*|28b52ffd*)
            add compressed_reader "$f"; captures+=("$f"); continue ;;
        *) continue ;;
    esac
    if [ "$(stat -c %s "$f")" -le 16384 ] && [ ${#small[@]} -lt 200 ]; then
        small+=("$f")
    fi
done < <(find "$corpus_src" -type f ! -name '*.out' ! -name '*.txt' ! -name '*.tsv' \
    ! -name '*.jsonl' ! -name '*.py' ! -name '*.sh' ! -name '*.md' -print0 | sort -z)

# Compressed copies of small captures (every 4th gzip, every 4th zstd, some left plain).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for f in "${small[@]}"; do
    case $((i % 4)) in
        0) gzip -c -n "$f" > "$tmp/x" && add compressed_reader "$tmp/x" ;;
        1) if command -v zstd >/dev/null; then zstd -q -c "$f" > "$tmp/x" && add compressed_reader "$tmp/x"; fi ;;
        2) add compressed_reader "$f" ;;
    esac
    i=$((i + 1))
done

# decoder and bpf seeds come from the helper (a plain build, not instrumented).
cargo build --quiet --release --manifest-path "$fuzz_dir/Cargo.toml" -p trawl-fuzz-seedgen
seedgen="$fuzz_dir/target/release/seedgen"
if [ -z "$(ls -A "$out/decoder")" ]; then
    "$seedgen" decoder "$out/decoder" "$decoder_max" "${captures[@]}"
fi
if [ -z "$(ls -A "$out/bpf")" ] && [ -f "$corpus_src/libpcap-filter/filter_accept.jsonl" ]; then
    # An Ethernet/IPv4/TCP packet to run the programs on.
    pkt=$(find "$corpus_src" -name 'tcp-handshake-micro.pcap' -o -name 'http.pcap' | head -1)
    "$seedgen" bpf "$out/bpf" "${pkt:-/dev/null}" "$corpus_src/libpcap-filter/filter_accept.jsonl"
fi

for t in pcap_reader pcapng_reader compressed_reader decoder bpf; do
    printf '%-18s %6d seeds\n' "$t" "$(ls "$out/$t" | wc -l)"
done
