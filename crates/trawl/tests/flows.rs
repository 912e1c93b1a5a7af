//! `trawl flows` against tshark: per-conversation packets and bytes each way equal
//! `tshark -q -z conv,tcp` and `conv,udp`; SYNs equal the count of
//! `tcp.flags.syn==1 && tcp.flags.ack==0`; retransmissions equal `tcp.analysis.retransmission`
//! (within 2 %); snapshot flows add up to tshark's per-interval bytes. On corpus captures and on
//! a capture made in namespaces with 3 % loss (`tc netem`).

mod harness;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use harness::netns::{End, Netns, Tcpdump, skip_reason, static_neighbours, veth};
use harness::traffic::tcp_transfer;
use harness::{corpus, run_ok, tool};

/// Captures whose TCP and UDP traffic trawl and tshark see alike: Ethernet, VLANs, Linux cooked
/// v2, IPv6, sequence numbers wrapping, HTTP/2 and QUIC, a stream out of order, pcapng with
/// several interfaces, gzip. (Where they differ — tunnels, fragments, copies of a packet on two
/// interfaces — docs/analysis.md says why.)
const CAPTURES: &[&str] = &[
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/example2.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/4KHttpRequests.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/650HttpResponses.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/one_tcp_stream_max_seq.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/four_ipv6_http_streams.pcap",
    "pcapplusplus/Tests/Pcap++Test/PcapExamples/sll2.pcap",
    "pcap-parser/assets/wireshark_samples-test.pcapng",
    "wireshark-4.0.17/http2_follow_multistream.pcapng",
    "wireshark-4.0.17/quic_follow_multistream.pcapng",
    "wireshark-4.0.17/challenge01_ooo_stream.pcapng.gz",
    "wireshark-4.0.17/dhcp.pcap",
    "tcpdump-4.99.3/kday4.pcap",
    "tcpdump-4.99.3/ssh.pcap",
    "tcpdump-4.99.3/pptp.pcap",
];

/// A conversation: protocol and its two ends in order.
type ConvKey = (String, (IpAddr, u16), (IpAddr, u16));

/// Frames and bytes from the lower end to the higher, and back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    up_frames: u64,
    up_bytes: u64,
    down_frames: u64,
    down_bytes: u64,
}

fn endpoint(s: &str) -> (IpAddr, u16) {
    let (addr, port) = s.rsplit_once(':').expect("ADDRESS:PORT");
    (
        addr.trim_matches(['[', ']']).parse().expect("an address"),
        port.parse().expect("a port"),
    )
}

/// Orders the ends; `counts` are from `a` to `b` then back.
fn keyed(
    proto: &str,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    ab: (u64, u64),
    ba: (u64, u64),
) -> (ConvKey, Counts) {
    if a <= b {
        (
            (proto.into(), a, b),
            Counts {
                up_frames: ab.0,
                up_bytes: ab.1,
                down_frames: ba.0,
                down_bytes: ba.1,
            },
        )
    } else {
        (
            (proto.into(), b, a),
            Counts {
                up_frames: ba.0,
                up_bytes: ba.1,
                down_frames: ab.0,
                down_bytes: ab.1,
            },
        )
    }
}

/// `trawl flows` with timeouts longer than any capture, summed per conversation (tshark's
/// conversations do not care about interfaces or VLANs).
fn trawl_conversations(path: &Path) -> BTreeMap<ConvKey, Counts> {
    let (out, _) = run_ok(&[
        "flows",
        "--idle-timeout",
        "100000h",
        "--active-timeout",
        "100000h",
        path.to_str().expect("a UTF-8 path"),
    ]);
    let mut convs: BTreeMap<ConvKey, Counts> = BTreeMap::new();
    for line in out.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        let proto = match r["protocol"].as_u64() {
            Some(6) => "tcp",
            Some(17) => "udp",
            _ => continue,
        };
        let end = |addr: &str, port: &str| {
            (
                r[addr].as_str().unwrap().parse::<IpAddr>().unwrap(),
                r[port].as_u64().unwrap() as u16,
            )
        };
        let n = |f: &str| r[f].as_u64().unwrap();
        let (key, c) = keyed(
            proto,
            end("src", "src_port"),
            end("dst", "dst_port"),
            (n("fwd_packets"), n("fwd_bytes")),
            (n("rev_packets"), n("rev_bytes")),
        );
        let sum = convs.entry(key).or_default();
        sum.up_frames += c.up_frames;
        sum.up_bytes += c.up_bytes;
        sum.down_frames += c.down_frames;
        sum.down_bytes += c.down_bytes;
    }
    convs
}

/// A byte count as tshark's conversation table prints it: exact below 10 000, else whole kB,
/// MB… (SI, rounded down) from ten of them.
fn tshark_size(n: u64) -> String {
    let mut unit = 1;
    for name in ["bytes", "kB", "MB", "GB"] {
        if n / unit < 10_000 || name == "GB" {
            return format!("{} {name}", n / unit);
        }
        unit *= 1000;
    }
    unreachable!()
}

/// `tshark -q -z conv,PROTO`: per conversation, frames each way exactly and bytes as printed.
fn tshark_conversations(path: &Path, proto: &str) -> BTreeMap<ConvKey, (Counts, [String; 2])> {
    let text = tool(
        "tshark",
        &[
            "-n",
            "-q",
            "-z",
            &format!("conv,{proto}"),
            "-r",
            path.to_str().unwrap(),
        ],
    )
    .expect("tshark");
    let mut convs = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("<->")) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let (a, b) = (endpoint(t[0]), endpoint(t[2]));
        // "<-" (b to a): frames, bytes, unit; then "->" (a to b).
        let ba = (t[3].parse::<u64>().unwrap(), format!("{} {}", t[4], t[5]));
        let ab = (t[6].parse::<u64>().unwrap(), format!("{} {}", t[7], t[8]));
        let (key, c) = keyed(proto, a, b, (ab.0, 0), (ba.0, 0));
        let sizes = if key.1 == a {
            [ab.1, ba.1]
        } else {
            [ba.1, ab.1]
        };
        let prev = convs.insert(key.clone(), (c, sizes));
        assert!(
            prev.is_none(),
            "{}: {key:?} twice in tshark's table",
            path.display()
        );
    }
    convs
}

#[test]
fn conversations_equal_tshark() {
    let mut compared = 0;
    for rel in CAPTURES {
        let path = corpus().join(rel);
        let ours = trawl_conversations(&path);
        let mut theirs = tshark_conversations(&path, "tcp");
        theirs.extend(tshark_conversations(&path, "udp"));
        let mut problems = Vec::new();
        for key in ours.keys().chain(theirs.keys()) {
            let o = ours.get(key).copied().unwrap_or_default();
            let Some((t, sizes)) = theirs.get(key) else {
                problems.push(format!("{key:?}: trawl {o:?}, not in tshark's table"));
                continue;
            };
            let printed = [tshark_size(o.up_bytes), tshark_size(o.down_bytes)];
            if (o.up_frames, o.down_frames) != (t.up_frames, t.down_frames) || &printed != sizes {
                problems.push(format!(
                    "{key:?}: trawl {} frames {} / {} frames {}, tshark {} frames {} / {} frames {}",
                    o.up_frames, printed[0], o.down_frames, printed[1], t.up_frames, sizes[0],
                    t.down_frames, sizes[1]
                ));
            }
        }
        assert!(problems.is_empty(), "{rel}:\n{}", problems.join("\n"));
        assert!(!theirs.is_empty(), "{rel}: no TCP or UDP conversation");
        compared += theirs.len();
    }
    assert!(compared > 300, "only {compared} conversations compared");
}

/// Sums of a numeric field over `trawl flows` records.
fn record_sums(records: &str, fields: &[&str]) -> u64 {
    records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON record"))
        .map(|r| fields.iter().map(|f| r[f].as_u64().unwrap()).sum::<u64>())
        .sum()
}

fn tshark_count(path: &Path, filter: &str) -> u64 {
    tool(
        "tshark",
        &["-n", "-r", path.to_str().unwrap(), "-Y", filter],
    )
    .expect("tshark")
    .lines()
    .count() as u64
}

/// SYNs equal tshark's count exactly; retransmissions equal `tcp.analysis.retransmission`
/// (within 2 % over all the captures).
fn check_syns_and_retransmissions(path: &Path) -> (u64, u64) {
    let (records, _) = run_ok(&["flows", path.to_str().unwrap()]);
    let syns = record_sums(&records, &["fwd_syns", "rev_syns"]);
    let expected = tshark_count(path, "tcp.flags.syn==1 && tcp.flags.ack==0");
    assert_eq!(syns, expected, "{}: SYNs", path.display());
    let ours = record_sums(&records, &["fwd_retransmissions", "rev_retransmissions"]);
    let theirs = tshark_count(path, "tcp.analysis.retransmission");
    (ours, theirs)
}

#[test]
fn syns_and_retransmissions_equal_tshark() {
    let (mut ours, mut theirs) = (0, 0);
    let mut each = Vec::new();
    for rel in CAPTURES {
        let (o, t) = check_syns_and_retransmissions(&corpus().join(rel));
        each.push(format!("{rel}: trawl {o}, tshark {t}"));
        ours += o;
        theirs += t;
    }
    assert!(theirs >= 40, "too few retransmissions to compare: {each:?}");
    assert!(
        ours.abs_diff(theirs) * 50 <= theirs,
        "retransmissions differ by more than 2 %: trawl {ours}, tshark {theirs}\n{}",
        each.join("\n")
    );
}

/// Files with several interfaces, some named and some not: each flow names the interface it was
/// seen on (its pcapng `if_name`, else `FILE#ID`), and per interface the packets in its flows
/// equal tshark's IP packets on it (`frame.interface_id`, `frame.interface_name`).
#[test]
fn flows_name_the_interface_they_were_seen_on() {
    for rel in [
        "wireshark-4.0.17/many_interfaces.pcapng.1",
        "pcapplusplus/Tests/Packet++Test/PacketExamples/ldap.pcapng",
    ] {
        let path = corpus().join(rel);
        let path = path.to_str().expect("a UTF-8 path");
        let file = rel.rsplit('/').next().expect("a file name");
        let (records, _) = run_ok(&["flows", path]);
        let mut ours: BTreeMap<String, u64> = BTreeMap::new();
        for line in records.lines() {
            let r: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
            let name = r["interface"]
                .as_str()
                .expect("an interface name")
                .to_string();
            *ours.entry(name).or_default() += r["packets"].as_u64().expect("packets");
        }
        let fields = tool(
            "tshark",
            &[
                "-n",
                "-r",
                path,
                "-Y",
                "ip or ipv6",
                "-T",
                "fields",
                "-e",
                "frame.interface_id",
                "-e",
                "frame.interface_name",
            ],
        )
        .expect("tshark");
        let mut theirs: BTreeMap<String, u64> = BTreeMap::new();
        for line in fields.lines() {
            let (id, name) = line.split_once('\t').expect("two fields");
            // tshark says "unknown" for an interface without a name.
            let name = match name {
                "" | "unknown" => format!("{file}#{id}"),
                named => named.to_string(),
            };
            *theirs.entry(name).or_default() += 1;
        }
        assert!(theirs.len() >= 2, "{rel}: packets on one interface only");
        assert_eq!(ours, theirs, "{rel}: packets per interface");
    }
}

/// `secs.nanos` (tshark's frame.time_epoch) in nanoseconds.
fn epoch_ns(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let nanos: u64 = format!("{frac:0<9}")[..9].parse().unwrap();
    secs.parse::<u64>().unwrap() * 1_000_000_000 + nanos
}

#[test]
fn snapshot_flows_add_up_to_tshark_per_interval_bytes() {
    for rel in [
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "wireshark-4.0.17/http2_follow_multistream.pcapng",
    ] {
        let path = corpus().join(rel);
        let (records, _) = run_ok(&["flows", "--snapshot=100ms", path.to_str().unwrap()]);
        let mut ours: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for line in records.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(r["reason"], "snapshot");
            let start = r["interval_start"].as_str().unwrap();
            let end = r["interval_end"].as_str().unwrap();
            let first = r["start"].as_str().unwrap();
            assert!(
                start <= first && first < end,
                "{line}: the packets are in the interval"
            );
            let e = ours.entry(rfc3339_ns(start) / 100_000_000).or_default();
            e.0 += r["packets"].as_u64().unwrap();
            e.1 += r["bytes"].as_u64().unwrap();
        }
        let fields = tool(
            "tshark",
            &[
                "-n",
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "ip or ipv6",
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
                "-e",
                "frame.len",
            ],
        )
        .unwrap();
        let mut theirs: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for line in fields.lines() {
            let (t, len) = line.split_once('\t').unwrap();
            let e = theirs.entry(epoch_ns(t) / 100_000_000).or_default();
            e.0 += 1;
            e.1 += len.parse::<u64>().unwrap();
        }
        assert!(theirs.len() > 20, "{rel}: only {} intervals", theirs.len());
        assert_eq!(ours, theirs, "{rel}: packets and bytes per 100 ms interval");
    }
}

/// `2024-03-01T12:00:00.100000000Z` in nanoseconds since 1970 (days from the civil date, as
/// in Howard Hinnant's algorithm).
fn rfc3339_ns(t: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("a number in the time");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs as u64 * 1_000_000_000 + epoch_ns(&format!("0{}", &t[19..t.len() - 1]))
}

/// Per conversation and direction, the exact bytes (sums of `frame.len`) tshark sees.
fn tshark_exact_bytes(path: &Path) -> BTreeMap<(IpAddr, u16, IpAddr, u16), (u64, u64)> {
    let fields = tool(
        "tshark",
        &[
            "-n",
            "-r",
            path.to_str().unwrap(),
            "-Y",
            "tcp",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "tcp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "tcp.dstport",
            "-e",
            "frame.len",
        ],
    )
    .unwrap();
    let mut sums: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    for line in fields.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let key = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        let e = sums.entry(key).or_default();
        e.0 += 1;
        e.1 += f[4].parse::<u64>().unwrap();
    }
    sums
}

/// TCP transfers across a congested link that drops packets, captured by tcpdump at the
/// receiving end: conversations, exact bytes each way, SYNs and retransmissions against
/// tshark on the same file. (This machine's kernel has no `netem`; a token bucket with a short
/// queue, `tc qdisc … tbf`, drops what overflows it — real loss, and TCP's real recovery.)
#[test]
fn a_congested_link_captured_in_namespaces_agrees_with_tshark() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED a_congested_link_captured_in_namespaces_agrees_with_tshark: {reason}");
        return;
    }
    let (a, b) = (Netns::new("flowloss", "a"), Netns::new("flowloss", "b"));
    let ends = [
        End {
            ns: &a,
            name: "ab",
            mac: "02:51:00:00:00:01",
            cidr: "10.51.0.1/24",
        },
        End {
            ns: &b,
            name: "ba",
            mac: "02:51:00:00:00:02",
            cidr: "10.51.0.2/24",
        },
    ];
    veth(&ends[0], &ends[1]);
    static_neighbours(&ends[0], &ends[1]);
    a.exec_ok(&[
        "tc", "qdisc", "add", "dev", "ab", "root", "tbf", "rate", "20mbit", "burst", "16k",
        "limit", "24k",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("lossy.pcap");
    let tcpdump = Tcpdump::start(&b, "ba", &cap);
    for (i, size) in [400_000usize, 250_000, 150_000, 100_000, 60_000]
        .into_iter()
        .enumerate()
    {
        tcp_transfer(&a, &b, "10.51.0.2".parse().unwrap(), 5100 + i as u16, size);
    }
    let report = tcpdump.stop();
    assert_eq!(report.dropped_by_kernel, 0, "{}", report.text);

    let (records, _) = run_ok(&["flows", cap.to_str().unwrap()]);
    // Per conversation and direction: the same packets and exact bytes as tshark.
    let mut ours: BTreeMap<(IpAddr, u16, IpAddr, u16), (u64, u64)> = BTreeMap::new();
    for line in records.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["protocol"] != 6 {
            continue;
        }
        let (src, dst) = (
            r["src"].as_str().unwrap().parse::<IpAddr>().unwrap(),
            r["dst"].as_str().unwrap().parse::<IpAddr>().unwrap(),
        );
        let (sp, dp) = (
            r["src_port"].as_u64().unwrap() as u16,
            r["dst_port"].as_u64().unwrap() as u16,
        );
        let n = |f: &str| r[f].as_u64().unwrap();
        for (key, packets, bytes) in [
            ((src, sp, dst, dp), n("fwd_packets"), n("fwd_bytes")),
            ((dst, dp, src, sp), n("rev_packets"), n("rev_bytes")),
        ] {
            if packets > 0 {
                let e = ours.entry(key).or_default();
                e.0 += packets;
                e.1 += bytes;
            }
        }
    }
    assert_eq!(
        ours,
        tshark_exact_bytes(&cap),
        "per conversation and direction"
    );
    assert_eq!(ours.len(), 10, "five connections, both ways");
    let (o, t) = check_syns_and_retransmissions(&cap);
    assert!(
        t >= 10,
        "the loss made too few retransmissions to compare: {t}"
    );
    assert!(
        o.abs_diff(t) * 50 <= t,
        "retransmissions: trawl {o}, tshark {t} (more than 2 % apart)"
    );
    eprintln!("congested link: retransmissions trawl {o}, tshark {t}");
}
