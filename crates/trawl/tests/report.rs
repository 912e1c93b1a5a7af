//! `trawl report` and `trawl profile` against tshark and capinfos: every figure compared is
//! computed here from what the reference tools print, never pasted from trawl's own output.
//!
//! - Frame Relay (two corpus captures, DLT 107, and one made here with FECN, BECN and DE set on
//!   some frames): per DLCI, packets, bytes and FECN/BECN/DE counts equal tshark's `fr.dlci`,
//!   `fr.fecn`, `fr.becn`, `fr.de` and `frame.len`; retransmissions with and without DE equal
//!   tshark's retransmission analysis split by `fr.de`.
//! - Per-second bytes: for corpus TCP captures, every second's bytes equal the sum of tshark's
//!   `frame.len` over the packets whose `frame.time_epoch` falls in that whole second. Not
//!   `-z io,stat,1` there: its intervals start at the first packet (20:20:33.491822 in
//!   example.pcap), so its "seconds" straddle wall-clock seconds, while the report's seconds are
//!   wall-clock ones (periods are aligned to the clock, as the paper's were). The made capture's
//!   first packet is at a whole second, so for it `-z io,stat,1` itself is the reference.
//! - SYNs equal the count of `tcp.flags.syn==1 && tcp.flags.ack==0`; each line's packets and
//!   bytes equal capinfos' packet count and tshark's sum of `frame.len`; the busiest and
//!   quietest seconds are the extremes of those per-second sums over the observed range.
//! - A pcapng whose packets record their direction makes two lines, each equal to tshark's
//!   `frame.packet_flags_direction` selection.
//! - `trawl profile`: per-second bytes each way of one TCP stream equal tshark's
//!   `tcp.stream eq N` rows summed per second and per sender.
//! - The HTML forms reference nothing outside themselves and their tags balance.

mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness::{corpus, run_ok, tool, trawl};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Reference tools.

/// tshark's fields, one row per packet (optionally with a display filter).
fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-n", "-r", file.to_str().unwrap(), "-T", "fields"];
    if let Some(f) = filter {
        args.extend(["-Y", f]);
    }
    for f in fields {
        args.extend(["-e", f]);
    }
    tool("tshark", &args)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Bytes per whole wall-clock second, from tshark's `frame.time_epoch` and `frame.len`.
fn tshark_per_second(file: &Path) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in tshark_fields(file, None, &["frame.time_epoch", "frame.len"]) {
        let sec: u64 = r[0].split('.').next().unwrap().parse().unwrap();
        *out.entry(sec).or_default() += r[1].parse::<u64>().unwrap();
    }
    out
}

fn flag(s: &str) -> u64 {
    u64::from(matches!(s, "1" | "True" | "true"))
}

fn capinfos_packets(file: &Path) -> u64 {
    let out = tool("capinfos", &["-M", "-c", file.to_str().unwrap()]).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("Number of packets"))
        .expect("capinfos packet count");
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// trawl.

fn report_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["report", "--format", "json"];
    all.extend(args);
    let (out, _) = run_ok(&all);
    serde_json::from_str::<Value>(&out)
        .expect("report JSON")
        .as_array()
        .unwrap()
        .clone()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every line of every period, with its period.
fn lines(periods: &[Value]) -> Vec<&Value> {
    periods
        .iter()
        .flat_map(|p| p["lines"].as_array().unwrap())
        .collect()
}

/// Bytes per second over all periods of one line (by name), zeros included.
fn report_per_second(periods: &[Value], line: Option<&str>) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for l in lines(periods) {
        if line.is_some_and(|n| l["name"] != n) {
            continue;
        }
        let first = u(&l["observed"]["first"]);
        for (i, b) in l["per_second"].as_array().unwrap().iter().enumerate() {
            let prev = out.insert(first + i as u64, u(b));
            assert!(prev.is_none(), "second {} reported twice", first + i as u64);
        }
    }
    out
}

/// Per DLCI from the report: (packets, bytes, fecn, becn, de).
fn report_dlcis(periods: &[Value]) -> BTreeMap<String, [u64; 5]> {
    let mut out: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for l in lines(periods) {
        for c in l["circuits"].as_array().unwrap() {
            let name = c["circuit"].as_str().unwrap();
            let e = out
                .entry(name.trim_start_matches("dlci ").to_string())
                .or_default();
            for (i, k) in ["packets", "bytes", "fecn", "becn", "de"]
                .iter()
                .enumerate()
            {
                e[i] += u(&c[k]);
            }
        }
    }
    out
}

fn tshark_dlcis(file: &Path) -> BTreeMap<String, [u64; 5]> {
    let mut out: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let rows = tshark_fields(
        file,
        None,
        &["fr.dlci", "frame.len", "fr.fecn", "fr.becn", "fr.de"],
    );
    for r in rows {
        let e = out.entry(r[0].clone()).or_default();
        e[0] += 1;
        e[1] += r[1].parse::<u64>().unwrap();
        e[2] += flag(&r[2]);
        e[3] += flag(&r[3]);
        e[4] += flag(&r[4]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Made captures.

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20 + len];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t
}

fn udp(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut x = vec![0u8; 8 + len];
    x[0..2].copy_from_slice(&sport.to_be_bytes());
    x[2..4].copy_from_slice(&dport.to_be_bytes());
    x[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    x
}

/// A Frame Relay frame (RFC 2427: Q.922 address, UI, NLPID) around an IPv4 packet.
fn fr(dlci: u16, fecn: bool, becn: bool, de: bool, ip: &[u8]) -> Vec<u8> {
    let a0 = ((dlci >> 4) as u8) << 2;
    let a1 = ((dlci & 0xf) as u8) << 4
        | u8::from(fecn) << 3
        | u8::from(becn) << 2
        | u8::from(de) << 1
        | 1;
    let mut f = vec![a0, a1, 0x03, 0xcc];
    f.extend_from_slice(ip);
    f
}

fn eth(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(ip);
    f
}

/// A microsecond pcap of `frames` (time in µs since the epoch).
fn write_pcap(path: &Path, link_type: u32, frames: &[(u64, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&link_type.to_le_bytes());
    for (us, f) in frames {
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

const T0: u64 = 1_700_000_100; // a whole second, 100 s into a 15-minute period
const S: u64 = 1_000_000;

/// Frame Relay traffic with congestion bits, DE, TCP retransmissions, quiet seconds, LMI.
fn made_frame_relay(path: &Path) {
    let (c, s) = ([10, 1, 0, 1], [10, 2, 0, 1]);
    let seg = |from_client: bool, seq: u32, ack: u32, flags: u8, len: usize| {
        if from_client {
            ipv4(6, c, s, &tcp(40000, 80, seq, ack, flags, len))
        } else {
            ipv4(6, s, c, &tcp(80, 40000, seq, ack, flags, len))
        }
    };
    let t = T0 * S;
    let mut f: Vec<(u64, Vec<u8>)> = vec![
        (
            t,
            fr(100, false, false, false, &seg(true, 1000, 0, 0x02, 0)),
        ),
        (
            t + S / 10,
            fr(100, false, true, false, &seg(false, 5000, 1001, 0x12, 0)),
        ),
        (
            t + S / 5,
            fr(100, false, false, false, &seg(true, 1001, 5001, 0x10, 0)),
        ),
        (
            t + S,
            fr(100, false, false, true, &seg(true, 1001, 5001, 0x18, 500)),
        ),
        (
            t + 3 * S / 2,
            fr(100, true, false, false, &seg(true, 1501, 5001, 0x18, 500)),
        ),
        // Both segments again: the first with DE, the second without.
        (
            t + 3 * S + S / 5,
            fr(100, false, false, true, &seg(true, 1001, 5001, 0x18, 500)),
        ),
        (
            t + 3 * S + S / 2,
            fr(100, false, false, false, &seg(true, 1501, 5001, 0x18, 500)),
        ),
        (
            t + 4 * S,
            fr(100, false, true, false, &seg(false, 5001, 2001, 0x10, 0)),
        ),
    ];
    // DLCI 200: UDP every second but 5 to 7 (quiet on the whole line), with bits here and there;
    // another host's SYN; an ICMP echo.
    for i in 0..12u64 {
        if (5..=7).contains(&i) {
            continue;
        }
        let ip = ipv4(
            17,
            [10, 3, 0, 1],
            [10, 4, 0, 1],
            &udp(5000, 53, 40 + 10 * i as usize),
        );
        f.push((
            t + i * S + S / 3,
            fr(200, i % 3 == 0, i % 4 == 0, i % 2 == 0, &ip),
        ));
    }
    let syn = ipv4(
        6,
        [10, 3, 0, 2],
        [10, 4, 0, 2],
        &tcp(41000, 443, 77, 0, 0x02, 0),
    );
    f.push((t + 9 * S, fr(200, false, false, false, &syn)));
    let mut echo = vec![8, 0, 0, 0, 0, 1, 0, 1];
    echo.extend_from_slice(&[0x55; 24]);
    f.push((
        t + 10 * S + 1,
        fr(
            200,
            false,
            false,
            true,
            &ipv4(1, [10, 3, 0, 1], [10, 4, 0, 1], &echo),
        ),
    ));
    // An LMI status enquiry on DLCI 0 (Q.933, NLPID 08).
    let lmi = vec![
        0x00, 0x01, 0x03, 0x08, 0x00, 0x75, 0x95, 0x01, 0x01, 0x01, 0x03, 0x02, 0x01, 0x00,
    ];
    f.push((t + 11 * S + 7, lmi));
    f.sort_by_key(|(ts, _)| *ts);
    write_pcap(path, 107, &f);
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the captures.

/// Per-second bytes, totals, SYNs, busiest and quietest seconds of a one-line capture against
/// tshark and capinfos.
fn check_against_tshark(file: &Path) {
    let name = file.display().to_string();
    let periods = report_json(&["--period", "15m", file.to_str().unwrap()]);
    let want = tshark_per_second(file);
    let got = report_per_second(&periods, None);

    // Every second with packets, and the report's seconds cover first to last packet.
    let nonzero: BTreeMap<u64, u64> = got
        .iter()
        .filter(|(_, b)| **b > 0)
        .map(|(s, b)| (*s, *b))
        .collect();
    assert_eq!(nonzero, want, "{name}: bytes per second");
    // Periods with packets are reported, each from the first packet's second to the last's
    // (clipped to the period).
    let (first, last) = (*want.keys().next().unwrap(), *want.keys().last().unwrap());
    let periods_with_packets: std::collections::BTreeSet<u64> =
        want.keys().map(|s| s - s % 900).collect();
    let covered: u64 = periods_with_packets
        .iter()
        .map(|&p| (p + 899).min(last) - p.max(first) + 1)
        .sum();
    assert_eq!(
        got.len() as u64,
        covered,
        "{name}: every second from the first packet to the last is reported, in periods with packets"
    );

    // Totals.
    let packets: u64 = lines(&periods).iter().map(|l| u(&l["packets"])).sum();
    let bytes: u64 = lines(&periods).iter().map(|l| u(&l["bytes"])).sum();
    assert_eq!(
        packets,
        capinfos_packets(file),
        "{name}: packets (capinfos)"
    );
    assert_eq!(
        bytes,
        want.values().sum::<u64>(),
        "{name}: bytes (tshark frame.len)"
    );

    // SYNs.
    let syns: u64 = lines(&periods).iter().map(|l| u(&l["tcp_syns"])).sum();
    let want_syns = tshark_fields(
        file,
        Some("tcp.flags.syn==1 && tcp.flags.ack==0"),
        &["frame.number"],
    )
    .len();
    assert_eq!(syns, want_syns as u64, "{name}: SYNs");

    // Busiest and quietest seconds: the extremes of tshark's sums over each observed range.
    for l in lines(&periods) {
        let (a, b) = (u(&l["observed"]["first"]), u(&l["observed"]["last"]));
        let sums: Vec<(u64, u64)> = (a..=b)
            .map(|s| (s, want.get(&s).copied().unwrap_or(0)))
            .collect();
        let mut busiest = sums.clone();
        busiest.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        let mut quietest = sums.clone();
        quietest.sort_by(|x, y| x.1.cmp(&y.1).then(x.0.cmp(&y.0)));
        for (key, expected) in [("busiest", busiest), ("quietest", quietest)] {
            let rows: Vec<(u64, u64)> = l[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (u(&r["time"]), u(&r["bytes"])))
                .collect();
            let n = rows.len();
            assert_eq!(n, expected.len().min(10), "{name}: {key} rows");
            assert_eq!(rows, expected[..n], "{name}: {key} seconds");
            for r in l[key].as_array().unwrap() {
                let kbps = r["kbps"].as_f64().unwrap();
                assert!((kbps - u(&r["bytes"]) as f64 * 8.0 / 1000.0).abs() < 1e-9);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn frame_relay_corpus_dlcis_equal_tshark() {
    for rel in [
        "tcpdump-4.99.3/OSPFv3_NBMA_adjacencies.pcap",
        "tcpdump-4.99.3/OSPFv3_multipoint_adjacencies.pcap",
    ] {
        let file = corpus().join(rel);
        let periods = report_json(&[file.to_str().unwrap()]);
        let want = tshark_dlcis(&file);
        assert!(
            want.len() >= 2,
            "{rel}: two DLCIs expected in tshark's reading"
        );
        assert_eq!(
            report_dlcis(&periods),
            want,
            "{rel}: per DLCI [packets, bytes, FECN, BECN, DE]"
        );
        check_against_tshark(&file);
    }
}

#[test]
fn made_frame_relay_capture_equals_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fr.pcap");
    made_frame_relay(&file);
    let periods = report_json(&[file.to_str().unwrap()]);

    let want = tshark_dlcis(&file);
    assert_eq!(want.len(), 3, "tshark sees DLCIs 0, 100 and 200: {want:?}");
    assert!(
        want.values().any(|v| v[2] > 0)
            && want.values().any(|v| v[3] > 0)
            && want.values().any(|v| v[4] > 0)
    );
    assert_eq!(
        report_dlcis(&periods),
        want,
        "per DLCI [packets, bytes, FECN, BECN, DE]"
    );

    // Retransmissions with and without DE, as tshark's analysis finds them.
    let mut want_retrans: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    let rows = tshark_fields(
        &file,
        Some(
            "tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission",
        ),
        &["fr.dlci", "fr.de"],
    );
    for r in rows {
        want_retrans.entry(r[0].clone()).or_default()[usize::from(flag(&r[1]) == 0)] += 1;
    }
    assert_eq!(
        want_retrans.get("100"),
        Some(&[1, 1]),
        "the made capture's two retransmissions"
    );
    let l = &periods[0]["lines"][0];
    for c in l["circuits"].as_array().unwrap() {
        let dlci = c["circuit"].as_str().unwrap().trim_start_matches("dlci ");
        let w = want_retrans.get(dlci).copied().unwrap_or_default();
        assert_eq!(
            [u(&c["retransmissions_de"]), u(&c["retransmissions_no_de"])],
            w,
            "DLCI {dlci}: retransmissions with DE, without"
        );
    }

    // The first packet is at a whole second: tshark's io,stat intervals are wall-clock seconds.
    let io = tool(
        "tshark",
        &["-n", "-r", file.to_str().unwrap(), "-q", "-z", "io,stat,1"],
    )
    .unwrap();
    let mut want_seconds = BTreeMap::new();
    for row in io.lines().filter(|r| r.contains("<>")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let start: u64 = cells[1].split("<>").next().unwrap().trim().parse().unwrap();
        want_seconds.insert(T0 + start, cells[3].parse::<u64>().unwrap());
    }
    assert_eq!(
        report_per_second(&periods, None),
        want_seconds,
        "bytes per second (io,stat,1)"
    );
    assert_eq!(u(&l["observed"]["first"]), T0);
    // Seconds 5 to 7 had no packet: the quietest seconds, with 0 bytes.
    let quiet: Vec<u64> = l["quietest"].as_array().unwrap()[..3]
        .iter()
        .map(|r| u(&r["time"]))
        .collect();
    assert_eq!(quiet, [T0 + 5, T0 + 6, T0 + 7]);

    check_against_tshark(&file);

    // The LMI frame is counted under DLCI 0 by its NLPID.
    let dlci0 = l["circuits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["circuit"] == "dlci 0")
        .unwrap();
    assert_eq!(dlci0["protocols"][0]["code"], "nlpid 08");
    assert_eq!(dlci0["protocols"][0]["name"], "Q.933");
}

#[test]
fn tcp_captures_per_second_bytes_syns_and_totals_equal_tshark() {
    for rel in [
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example2.pcap",
    ] {
        check_against_tshark(&corpus().join(rel));
    }
}

#[test]
fn vlans_are_circuits_as_tshark_sees_them() {
    let file = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example2.pcap");
    let periods = report_json(&[file.to_str().unwrap()]);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in tshark_fields(&file, None, &["vlan.id"]) {
        let outer = r[0].split(',').next().unwrap();
        let key = if outer.is_empty() {
            "untagged".to_string()
        } else {
            format!("vlan {outer}")
        };
        *want.entry(key).or_default() += 1;
    }
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines(&periods) {
        for c in l["circuits"].as_array().unwrap() {
            *got.entry(c["circuit"].as_str().unwrap().to_string())
                .or_default() += u(&c["packets"]);
        }
    }
    assert!(
        want.len() >= 2,
        "tagged and untagged frames expected: {want:?}"
    );
    assert_eq!(got, want, "packets per circuit");
}

#[test]
fn pcapng_directions_make_two_lines() {
    use trawl_pcap::{Interface, OwnedOptions, PcapngWriter, Timestamp, opt};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dirs.pcapng");
    let mut w = PcapngWriter::new(
        std::fs::File::create(&file).unwrap(),
        &PcapngWriter::<std::fs::File>::default_section_options(),
    )
    .unwrap();
    let id = w
        .add_interface(&Interface::new(1, 65535, 1_000_000))
        .unwrap();
    for i in 0..30u64 {
        let inbound = i % 3 != 0;
        let ip = if inbound {
            ipv4(
                17,
                [192, 0, 2, 1],
                [198, 51, 100, 1],
                &udp(53, 5353, 20 + i as usize),
            )
        } else {
            ipv4(17, [198, 51, 100, 1], [192, 0, 2, 1], &udp(5353, 53, 10))
        };
        let mut o = OwnedOptions::new();
        o.push(
            opt::EPB_FLAGS,
            &(if inbound { 1u32 } else { 2 }).to_le_bytes(),
        );
        let frame = eth(&ip);
        let ts = Timestamp::new(T0 + i / 4, (i % 4) as u32 * 200_000_000);
        w.write(id, ts, frame.len() as u32, &frame, o.view())
            .unwrap();
    }
    w.finish().unwrap();

    let periods = report_json(&[file.to_str().unwrap()]);
    let ls = lines(&periods);
    assert_eq!(ls.len(), 2, "one line per direction");
    for (dir_value, suffix) in [(1, "inbound"), (2, "outbound")] {
        let l = ls
            .iter()
            .find(|l| l["name"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("a line named … {suffix}"));
        let rows = tshark_fields(
            &file,
            Some(&format!("frame.packet_flags_direction == {dir_value}")),
            &["frame.len"],
        );
        let bytes: u64 = rows.iter().map(|r| r[0].parse::<u64>().unwrap()).sum();
        assert_eq!(
            (u(&l["packets"]), u(&l["bytes"])),
            (rows.len() as u64, bytes),
            "{suffix}"
        );
    }
}

#[test]
fn profile_per_second_each_way_equals_tshark_stream() {
    let file = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    // The TCP stream with the most bytes, as tshark numbers streams.
    let mut per_stream: BTreeMap<u64, u64> = BTreeMap::new();
    for r in tshark_fields(&file, Some("tcp"), &["tcp.stream", "frame.len"]) {
        *per_stream.entry(r[0].parse().unwrap()).or_default() += r[1].parse::<u64>().unwrap();
    }
    let (&stream, _) = per_stream
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .unwrap();
    let rows = tshark_fields(
        &file,
        Some(&format!("tcp.stream eq {stream}")),
        &[
            "frame.time_epoch",
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "frame.len",
        ],
    );
    let (a, a_port, b, b_port) = (&rows[0][1], &rows[0][2], &rows[0][3], &rows[0][4]);
    let mut want: [BTreeMap<u64, u64>; 2] = Default::default();
    for r in &rows {
        let sec: u64 = r[0].split('.').next().unwrap().parse().unwrap();
        let dir = usize::from(&r[1] != a || &r[2] != a_port);
        *want[dir].entry(sec).or_default() += r[5].parse::<u64>().unwrap();
    }

    let session = format!("tcp {a}:{a_port} {b}:{b_port}");
    let check = |p: &Value, what: &str| {
        let first = u(&p["observed"]["first"]);
        for (dir, key) in ["a_to_b_bytes", "b_to_a_bytes"].iter().enumerate() {
            let got: BTreeMap<u64, u64> = p["per_second"][key]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .filter(|(_, v)| u(v) > 0)
                .map(|(i, v)| (first + i as u64, u(v)))
                .collect();
            assert_eq!(got, want[dir], "{what}: {key} per second");
        }
        let packets = u(&p["a_to_b"]["packets"]) + u(&p["b_to_a"]["packets"]);
        assert_eq!(packets, rows.len() as u64, "{what}: packets");
        let sizes: u64 = ["a_to_b", "b_to_a"]
            .iter()
            .flat_map(|d| {
                p[d]["sizes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| u(&b["packets"]))
            })
            .sum();
        assert_eq!(sizes, packets, "{what}: the size bins hold every packet");
    };
    let (out, _) = run_ok(&[
        "profile",
        "--session",
        &session,
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["session"], session.as_str());
    check(&p, "--session");

    // -f alone: the busiest session among the filtered packets is the same stream.
    let (out, err) = run_ok(&[
        "profile",
        "-f",
        "tcp",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("busiest"), "{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        p["session"],
        session.as_str(),
        "-f tcp picks tshark's busiest stream"
    );
    check(&p, "-f tcp");
}

/// Tags balance (void elements and `/>` aside), and nothing is fetched from elsewhere.
fn check_self_contained_html(html: &str, what: &str) {
    for bad in [
        "http://", "https://", "src=", "href=", "@import", "url(", "<script",
    ] {
        assert!(!html.contains(bad), "{what}: contains {bad}");
    }
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest
            .find('>')
            .unwrap_or_else(|| panic!("{what}: an unclosed tag"));
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("{what}: </{name}> closes nothing"));
            assert_eq!(open, name.trim(), "{what}: tags cross");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if tag.ends_with('/')
            || matches!(
                name.as_str(),
                "meta" | "br" | "hr" | "img" | "link" | "input"
            )
        {
            continue;
        }
        stack.push(name);
    }
    assert!(stack.is_empty(), "{what}: left open: {stack:?}");
    assert!(html.contains("<svg"), "{what}: no chart");
}

#[test]
fn html_is_self_contained_with_charts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fr.pcap");
    made_frame_relay(&file);
    let apps = dir.path().join("apps.toml");
    std::fs::write(
        &apps,
        "[[app]]\nname = \"Web <&> \\\"x\\\"\"\nservers = [\"10.2.0.0/16\"]\nports = [80]\nprotocol = \"tcp\"\n\n\
         [circuits]\n\"dlci 100\" = \"London\"\n",
    )
    .unwrap();
    let html_path = dir.path().join("r.html");
    run_ok(&[
        "report",
        "--format",
        "html",
        "--apps",
        apps.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    check_self_contained_html(&html, "report");
    assert!(html.contains("dlci 100 London"));
    assert!(
        html.contains("Web &lt;&amp;&gt; &quot;x&quot; TCP"),
        "names are escaped"
    );
    assert!(
        html.matches("<svg").count() >= 2,
        "bandwidth and busiest seconds"
    );
    assert!(html.contains("<polyline"), "a line per circuit");

    let text = run_ok(&[
        "report",
        "--apps",
        apps.to_str().unwrap(),
        file.to_str().unwrap(),
    ])
    .0;
    assert!(text.contains("Application summary"));
    assert!(text.contains("TCP SYNs (connection requests): 2"), "{text}");

    let session = "tcp 10.1.0.1:40000 10.2.0.1:80";
    let (html, _) = run_ok(&[
        "profile",
        "--session",
        session,
        "--format",
        "html",
        file.to_str().unwrap(),
    ]);
    check_self_contained_html(&html, "profile");
    assert_eq!(html.matches("<svg").count(), 2, "bandwidth each way, sizes");
}

#[test]
fn bad_input_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fr.pcap");
    made_frame_relay(&file);
    let apps = dir.path().join("bad.toml");
    std::fs::write(
        &apps,
        "[[app]]\nname = \"X\"\nservers = [\"10.0.0.0/40\"]\n",
    )
    .unwrap();
    let err = trawl(&[
        "report",
        "--apps",
        apps.to_str().unwrap(),
        file.to_str().unwrap(),
    ])
    .unwrap_err();
    let want = format!("{}:3: app \"X\": servers:", apps.display());
    assert!(err.contains(&want), "{err}");

    let err = trawl(&["report", "--period", "90ms", file.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("bad period"), "{err}");
    let err = trawl(&[
        "profile",
        "--session",
        "tcp 10.0.0.1 10.0.0.2:80",
        file.to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(err.contains("needs a port"), "{err}");
    let err = trawl(&["profile", file.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("--session"), "{err}");
}

#[test]
fn the_example_apps_file_is_accepted() {
    let apps: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps.toml");
    let file = corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let periods = report_json(&["--apps", apps.to_str().unwrap(), file.to_str().unwrap()]);
    let apps_rows = periods[0]["lines"][0]["applications"].as_array().unwrap();
    // Every flow has a 10.x end: the example's "Internal" application takes them all.
    assert!(
        apps_rows.iter().any(|a| a["label"] == "Internal TCP"),
        "{apps_rows:?}"
    );
}
