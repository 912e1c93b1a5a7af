#!/usr/bin/env python3
"""Regenerates tests/formats/READERS.tsv: what the reference readers make of every capture in the corpus.

For each capture listed in the corpus's INDEX.tsv, two real readers are asked:
  - tshark (Wireshark 4.0): frames with epoch time (9 decimals), wire and captured length, and an MD5
    of each frame's bytes (`-o frame.generate_md5_hash:TRUE`);
  - libpcap (what tcpdump reads with), through ctypes: pcap_open_offline_with_tstamp_precision
    (nanoseconds) and pcap_next_ex.
Each yields: status (ok, or err), the number of packets read before the end or the error, and a
MD5 digest over one line per packet "secs.nnnnnnnnn caplen wirelen md5hex". The Rust test
crates/trawl-pcap/tests/corpus.rs computes the same digest from trawl's reader and compares.

Usage: python3 tests/formats/make_golden.py [CORPUS_DIR] > tests/formats/READERS.tsv
"""
import ctypes, ctypes.util, hashlib, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '../../../shared/corpus')
corpus = os.path.abspath(corpus)

pcap = ctypes.CDLL(ctypes.util.find_library('pcap') or 'libpcap.so.0.8')

class Timeval(ctypes.Structure):
    _fields_ = [('sec', ctypes.c_long), ('frac', ctypes.c_long)]

class Header(ctypes.Structure):
    _fields_ = [('ts', Timeval), ('caplen', ctypes.c_uint32), ('len', ctypes.c_uint32)]

pcap.pcap_open_offline_with_tstamp_precision.restype = ctypes.c_void_p
pcap.pcap_open_offline_with_tstamp_precision.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p]
pcap.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(Header)),
                              ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
pcap.pcap_close.argtypes = [ctypes.c_void_p]
pcap.pcap_geterr.restype = ctypes.c_char_p
pcap.pcap_geterr.argtypes = [ctypes.c_void_p]
PRECISION_NANO = 1


def libpcap_read(path):
    err = ctypes.create_string_buffer(256)
    h = pcap.pcap_open_offline_with_tstamp_precision(path.encode(), PRECISION_NANO, err)
    if not h:
        return 'err', [], err.value.decode(errors='replace')
    hdr = ctypes.POINTER(Header)()
    data = ctypes.POINTER(ctypes.c_ubyte)()
    lines, status, msg = [], 'ok', ''
    while True:
        r = pcap.pcap_next_ex(h, ctypes.byref(hdr), ctypes.byref(data))
        if r == 1:
            hd = hdr.contents
            raw = ctypes.string_at(data, hd.caplen)
            ns = hd.ts.sec * 10**9 + hd.ts.frac
            lines.append(line(ns, hd.caplen, hd.len, hashlib.md5(raw).hexdigest()))
        elif r == -2:
            break
        else:
            status, msg = 'err', pcap.pcap_geterr(h).decode(errors='replace')
            break
    pcap.pcap_close(h)
    return status, lines, msg


def tshark_read(path):
    p = subprocess.run(['tshark', '-n', '-r', path, '-o', 'frame.generate_md5_hash:TRUE', '-T', 'fields',
                        '-e', 'frame.time_epoch', '-e', 'frame.cap_len', '-e', 'frame.len', '-e', 'frame.md5_hash', '-e', 'frame.encap_type'],
                       capture_output=True, text=True, errors='replace')
    lines = []
    for l in p.stdout.splitlines():
        t, cap, wire, md5, encap = l.split('\t')
        if not encap:
            continue  # a pcapng custom block, which tshark lists as a record: not a packet
        sign = -1 if t.startswith('-') else 1
        secs, _, frac = t.lstrip('-').partition('.')
        # tshark prints a fraction beyond a second (fuzzed files) with more than 9 digits.
        frac_ns = int(frac) if len(frac) > 9 else int((frac + '000000000')[:9])
        ns = sign * (int(secs or 0) * 10**9 + frac_ns)
        lines.append(line(ns, int(cap), int(wire), md5))
    msg = ' '.join(l for l in p.stderr.splitlines() if 'Running as user' not in l).strip()
    return ('ok' if p.returncode == 0 else 'err'), lines, msg


# Times are compared as nanoseconds since the epoch modulo 2^32 seconds: pcap stores seconds in 32
# bits, which libpcap and tshark read as signed and trawl (like the pcap specification) as unsigned;
# and fuzzed files hold fractions of a second beyond one second, which libpcap adds as they are.
WRAP = 2**32 * 10**9


def line(ns, caplen, wirelen, md5):
    return '%d %d %d %s' % (ns % WRAP, caplen, wirelen, md5)


def digest(lines):
    return hashlib.md5(''.join(l + '\n' for l in lines).encode()).hexdigest()[:16]


def row(rel):
    path = os.path.join(corpus, rel)
    out = []
    for tool, fn in (('tshark', tshark_read), ('libpcap', libpcap_read)):
        status, lines, msg = fn(path)
        out.append('\t'.join([rel, tool, status, str(len(lines)), digest(lines), msg.replace('\t', ' ')[:200]]))
    return out


def main():
    with open(os.path.join(corpus, 'INDEX.tsv')) as f:
        paths = [l.split('\t')[0] for l in f.read().splitlines()[1:] if l]
    print('path\ttool\tstatus\tpackets\tdigest\tmessage')
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for rows in ex.map(row, paths):
            for r in rows:
                print(r)


if __name__ == '__main__':
    main()
