//! IPFIX export judged by a real collector: flows of capture files from the shared corpus (IPv4
//! TCP/UDP, IPv6, 802.1ad-tagged), exported by `IpfixExporter` over loopback UDP to nfcapd
//! (Debian's nfdump package; scripts/deps.sh installs it); `nfdump -r` must show the same
//! unidirectional flows with the same packets, bytes and times, and no sequence failures.

mod harness;

// The exporter lives in the binary crate; the test compiles its one file.
#[allow(dead_code)]
#[path = "../src/flows/ipfix.rs"]
mod ipfix;

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipfix::{IpfixExporter, IpfixOptions};
use trawl_flow::{Flow, FlowTable, Timeouts};
use trawl_pcap::CaptureReader;

/// The flows of a capture, every packet counted on interface `interface`; also the number of
/// IP packets (those that made flows).
fn flows_of(path: &Path, interface: u32) -> (Vec<Flow>, u64) {
    let mut reader =
        CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut table = FlowTable::new(Timeouts::default());
    let mut flows = Vec::new();
    let mut ip = 0;
    while let Some(p) = reader.next_packet().expect("a readable capture") {
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        if table
            .add(p.ts.as_nanos(), interface, &d, |f, _| flows.push(f))
            .is_some()
        {
            ip += 1;
        }
    }
    table.finish(|f, _| flows.push(f));
    (flows, ip)
}

/// One unidirectional flow as nfdump shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    interface: u32,
    vlan: u16,
    packets: u64,
    bytes: u64,
    /// First and last packet, ms since the epoch.
    first_ms: u64,
    last_ms: u64,
    /// TCP flags (nfdump keeps the low 8 bits).
    flags: u8,
}

/// What nfdump should show for these flows, computed from the flows directly (not through the
/// encoder): one row per direction with packets.
fn expected(flows: &[Flow]) -> Vec<Row> {
    let mut rows = Vec::new();
    for f in flows {
        let (a, b) = (f.initiator, f.responder());
        for (src, dst, d) in [(a, b, &f.fwd), (b, a, &f.rev)] {
            if d.packets == 0 {
                continue;
            }
            rows.push(Row {
                src: src.addr,
                dst: dst.addr,
                sport: src.port,
                dport: dst.port,
                proto: f.key.protocol,
                interface: f.key.circuit.interface,
                vlan: f.key.circuit.vlan.unwrap_or(0),
                packets: d.packets,
                bytes: d.bytes,
                first_ms: d.first_ns / 1_000_000,
                last_ms: d.last_ns / 1_000_000,
                flags: d.tcp_flags as u8,
            });
        }
    }
    rows.sort();
    rows
}

/// nfcapd listening on 127.0.0.1, writing to a temporary directory.
struct Nfcapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

/// The state of a UDP socket bound to 127.0.0.1:`port`, from /proc/net/udp: (bytes waiting to
/// be read, datagrams dropped).
fn udp_socket(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str())).then(|| {
            let rx = f[4].split(':').nth(1).expect("tx:rx");
            (
                u64::from_str_radix(rx, 16).expect("rx_queue"),
                f[12].parse().expect("drops"),
            )
        })
    })
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Nfcapd {
    fn start() -> Nfcapd {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).expect("the flow directory");
        // A free port: the kernel's choice, released for nfcapd.
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let log = std::fs::File::create(dir.path().join("nfcapd.log")).expect("a log file");
        let child = Command::new("nfcapd")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "3600",
                "-w",
            ])
            .arg(&flows)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("nfcapd (the nfdump package; scripts/deps.sh installs it)");
        let mut n = Nfcapd {
            child: Some(child),
            dir,
            port,
        };
        wait_for("nfcapd listening", Duration::from_secs(10), || {
            if let Some(status) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("nfcapd exited ({status}): {}", n.log());
            }
            udp_socket(port).is_some()
        });
        n
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nfcapd.log")).unwrap_or_default()
    }

    /// Waits until nfcapd has read every datagram sent (its socket's queue is empty: over
    /// loopback a datagram is queued, or dropped and counted, before `send` returns), and stops
    /// it: on SIGTERM nfcapd finishes the datagram in hand, writes its file and exits (no
    /// sleeps: the file is complete once the process is gone). The files it wrote (kept while
    /// `self` lives), and the datagrams its socket dropped.
    fn stop(&mut self) -> (Vec<PathBuf>, u64) {
        wait_for("nfcapd reading everything", Duration::from_secs(60), || {
            udp_socket(self.port).is_some_and(|(queued, _)| queued == 0)
        });
        let (_, drops) = udp_socket(self.port).expect("nfcapd's socket");
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the process this test started, still unwaited (so not reused).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to nfcapd");
        let status = child.wait().expect("nfcapd's exit");
        assert!(status.success(), "nfcapd: {status}: {}", self.log());
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("flows"))
            .expect("the flow directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        assert!(
            files.iter().all(|f| {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("nfcapd.2") && !name.contains("current")
            }),
            "nfcapd left only finished files: {files:?}"
        );
        assert!(!files.is_empty(), "nfcapd wrote no file: {}", self.log());
        (files, drops)
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn nfdump(args: &[&str], file: &Path) -> String {
    let out = Command::new("nfdump")
        .env("TZ", "UTC")
        .args(args)
        .arg("-r")
        .arg(file)
        .output()
        .expect("nfdump");
    assert!(
        out.status.success(),
        "nfdump {args:?} -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 from nfdump")
}

/// The records of nfcapd's files, as nfdump prints them (`-o json`: every field, times to the
/// millisecond; the `fmt:` form's `%ter` prints wrong milliseconds in nfdump 1.7.1).
fn rows_of(files: &[PathBuf]) -> Vec<Row> {
    let mut rows = Vec::new();
    for file in files {
        let text = nfdump(&["-o", "json"], file);
        let records: Vec<serde_json::Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("nfdump's JSON: {e}: {text:.2000}"));
        rows.extend(records.iter().map(parse_row));
    }
    rows.sort();
    rows
}

fn parse_row(r: &serde_json::Value) -> Row {
    let n = |key: &str| -> u64 {
        r[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in nfdump's record {r}"))
    };
    let s = |key: &str| -> &str {
        r[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in nfdump's record {r}"))
    };
    let addr = |v4: &str, v6: &str| -> IpAddr {
        let text = r[v4].as_str().or(r[v6].as_str());
        text.and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{v4} or {v6} in nfdump's record {r}"))
    };
    assert_eq!(s("type"), "FLOW", "{r}");
    Row {
        src: addr("src4_addr", "src6_addr"),
        dst: addr("dst4_addr", "dst6_addr"),
        // ICMP rows have no ports (nfdump shows a type and code there; the export says 0).
        sport: r["src_port"].as_u64().unwrap_or(0) as u16,
        dport: r["dst_port"].as_u64().unwrap_or(0) as u16,
        proto: n("proto") as u8,
        interface: n("input_snmp") as u32,
        vlan: n("src_vlan") as u16,
        packets: n("in_packets"),
        bytes: n("in_bytes"),
        first_ms: utc_ms(s("first")),
        last_ms: utc_ms(s("last")),
        // Not shown for ICMP.
        flags: r["tcp_flags"].as_str().map_or(0, flags),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmm` (UTC) as milliseconds since the epoch.
fn utc_ms(t: &str) -> u64 {
    let num = |a: usize, b: usize| -> i64 {
        t.get(a..b)
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("a time: {t:?}"))
    };
    assert_eq!(t.len(), 23, "a time to the millisecond: {t:?}");
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    // Days from 1970-01-01 to the date (proleptic Gregorian; March-based years).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19);
    (secs * 1000 + num(20, 23)) as u64
}

/// nfdump's flag letters ("...AP.S.": CWR ECE URG ACK PSH RST SYN FIN) as bits.
fn flags(s: &str) -> u8 {
    let names = b"CEUAPRSF";
    assert_eq!(s.len(), 8, "TCP flags: {s:?}");
    let mut bits = 0;
    for (i, c) in s.bytes().enumerate() {
        if c != b'.' {
            assert_eq!(c, names[i], "a flag letter in {s:?}");
            bits |= 0x80 >> i;
        }
    }
    bits
}

/// What `nfdump -I` says of nfcapd's files, added up.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stat {
    flows: u64,
    packets: u64,
    bytes: u64,
    first_ms: u64,
    last_ms: u64,
    sequence_failures: u64,
}

fn nfdump_stat(files: &[PathBuf]) -> Stat {
    let mut stat = Stat {
        first_ms: u64::MAX,
        ..Stat::default()
    };
    for file in files {
        let text = nfdump(&["-I"], file);
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in nfdump -I:\n{text}"))
        };
        stat.flows += field("Flows");
        stat.packets += field("Packets");
        stat.bytes += field("Bytes");
        stat.sequence_failures += field("Sequence failures");
        if field("Flows") > 0 {
            let first = field("First") * 1000 + field("msec_first");
            let last = field("Last") * 1000 + field("msec_last");
            stat.first_ms = stat.first_ms.min(first);
            stat.last_ms = stat.last_ms.max(last);
        }
    }
    stat
}

/// The flows of the test captures: IPv4 TCP and UDP (interface 1), IPv6 TCP over raw IP
/// (interface 2), IPv4 UDP in 802.1ad frames (interface 3, outer VLAN). Also the number of IP
/// packets in them.
fn test_flows() -> (Vec<Flow>, u64) {
    let corpus = harness::corpus();
    let mut all = Vec::new();
    let mut packets = 0;
    for (i, file) in [
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap",
        "pcapplusplus/Tests/Pcap++Test/PcapExamples/four_ipv6_http_streams.pcap",
        "tcpdump-4.99.3/QinQpacket.pcap",
    ]
    .iter()
    .enumerate()
    {
        let (flows, ip) = flows_of(&corpus.join(file), i as u32 + 1);
        assert!(!flows.is_empty(), "{file} has flows");
        all.extend(flows);
        packets += ip;
    }
    (all, packets)
}

/// Differences between two sorted row lists, for a readable failure.
fn differences(want: &[Row], got: &[Row]) -> String {
    let count = |rows: &[Row]| {
        let mut m: BTreeMap<Row, i64> = BTreeMap::new();
        for r in rows {
            *m.entry(r.clone()).or_default() += 1;
        }
        m
    };
    let (w, g) = (count(want), count(got));
    let mut out = String::new();
    for (r, n) in &w {
        let m = g.get(r).copied().unwrap_or(0);
        if m != *n {
            out += &format!("  expected {n}, nfdump has {m}: {r:?}\n");
        }
    }
    for (r, m) in &g {
        if !w.contains_key(r) {
            out += &format!("  not expected, nfdump has {m}: {r:?}\n");
        }
    }
    out
}

#[test]
fn nfdump_shows_the_exported_flows() {
    let (flows, ip_packets) = test_flows();
    let want = expected(&flows);
    assert!(want.iter().any(|r| r.src.is_ipv6()) && want.iter().any(|r| r.vlan != 0));
    assert_eq!(
        want.iter().map(|r| r.packets).sum::<u64>(),
        ip_packets,
        "every IP packet is in one flow direction"
    );

    let mut collector = Nfcapd::start();
    let mut exporter = IpfixExporter::connect_with(
        &format!("127.0.0.1:{}", collector.port),
        IpfixOptions {
            observation_domain: 7,
            // Templates again every 4 messages: nfcapd must take them again.
            template_every: 4,
            ..IpfixOptions::default()
        },
    )
    .expect("an exporter");
    for f in &flows {
        exporter.flow(f).expect("export");
    }
    let summary = exporter.finish().expect("export");
    assert_eq!(summary.flows, flows.len() as u64);
    assert_eq!(summary.records, want.len() as u64);
    let (files, drops) = collector.stop();
    assert_eq!(
        drops, 0,
        "datagrams nfcapd's socket dropped (pacing too fast?)"
    );

    let got = rows_of(&files);
    let diff = differences(&want, &got);
    assert!(
        diff.is_empty(),
        "nfdump's flows differ ({} expected, {} in nfdump):\n{diff}",
        want.len(),
        got.len()
    );
    let totals = |rows: &[Row]| {
        (
            rows.len(),
            rows.iter().map(|r| r.packets).sum::<u64>(),
            rows.iter().map(|r| r.bytes).sum::<u64>(),
        )
    };
    assert_eq!(totals(&got), totals(&want));

    // nfcapd's own count of what it received, the first and last packet's times, and the
    // messages whose sequence number did not follow the records before.
    let first = want.iter().map(|r| r.first_ms).min();
    let last = want.iter().map(|r| r.last_ms).max();
    let (n, packets, bytes) = totals(&want);
    assert_eq!(
        nfdump_stat(&files),
        Stat {
            flows: n as u64,
            packets,
            bytes,
            first_ms: first.unwrap(),
            last_ms: last.unwrap(),
            sequence_failures: 0
        },
        "nfdump -I"
    );
    eprintln!(
        "{} flows, {} records in {} messages; nfdump: {n} flows, {packets} packets, {bytes} bytes",
        summary.flows, summary.records, summary.messages
    );
}

/// Not a check but a measurement (`cargo test -p trawl --test ipfix -- --ignored --nocapture`):
/// how fast a local nfcapd keeps up. Sends `TRAWL_IPFIX_MESSAGES` (default 20 000) full
/// messages at each rate of `TRAWL_IPFIX_RATES` (messages per second, 0 unpaced) and prints
/// what nfcapd's socket dropped and how many records nfdump counted.
#[test]
#[ignore]
fn pacing_measurement() {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
    let rates: Vec<u32> = var("TRAWL_IPFIX_RATES", "0,1000,2000,5000,10000,20000,50000")
        .split(',')
        .map(|r| r.trim().parse().expect("a rate"))
        .collect();
    let messages: u64 = var("TRAWL_IPFIX_MESSAGES", "20000")
        .parse()
        .expect("a count");
    let per_message = ((trawl_flow::ipfix::DEFAULT_MAX_MESSAGE - 16 - 4)
        / trawl_flow::ipfix::RECORD_LEN_IPV4) as u64;
    for rate in rates {
        let mut collector = Nfcapd::start();
        let mut exporter = IpfixExporter::connect_with(
            &format!("127.0.0.1:{}", collector.port),
            IpfixOptions {
                rate,
                ..IpfixOptions::default()
            },
        )
        .expect("an exporter");
        let start = Instant::now();
        for i in 0..messages * per_message {
            exporter.flow(&synthetic(i)).expect("export");
        }
        let summary = exporter.finish().expect("export");
        let took = start.elapsed().as_secs_f64();
        let (files, drops) = collector.stop();
        let stat = nfdump_stat(&files);
        eprintln!(
            "rate {rate:>6}/s: {} messages in {took:.2} s ({:.0}/s); socket drops {drops}; \
             nfdump {} of {} records ({:.1}% lost)",
            summary.messages,
            summary.messages as f64 / took,
            stat.flows,
            summary.records,
            100.0 * (summary.records - stat.flows) as f64 / summary.records as f64
        );
    }
}

/// Not a check but a measurement, as above, of nfcapd alone: messages encoded beforehand, then
/// sent from a tight loop (as fast as an optimised exporter) at each rate of
/// `TRAWL_IPFIX_RATES`; sleeping between messages, as the exporter does.
#[test]
#[ignore]
fn collector_capacity_measurement() {
    use trawl_flow::ipfix::{DEFAULT_MAX_MESSAGE, IpfixEncoder};
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
    let rates: Vec<u32> = var("TRAWL_IPFIX_RATES", "0,5000,10000,20000,50000")
        .split(',')
        .map(|r| r.trim().parse().expect("a rate"))
        .collect();
    let messages: u64 = var("TRAWL_IPFIX_MESSAGES", "20000")
        .parse()
        .expect("a count");
    let mut encoder = IpfixEncoder::new(0, DEFAULT_MAX_MESSAGE);
    let mut encoded = Vec::new();
    let mut i = 0;
    while (encoded.len() as u64) < messages {
        encoder.push(&synthetic(i), 0, &mut encoded);
        i += 1;
    }
    encoder.flush(0, &mut encoded);
    let records = encoder.records();
    for rate in rates {
        let mut collector = Nfcapd::start();
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a socket");
        socket
            .connect(("127.0.0.1", collector.port))
            .expect("connect");
        let interval = if rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / rate
        };
        let start = Instant::now();
        let mut next = start;
        for m in &encoded {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next = next.max(now) + interval;
            socket.send(m).expect("send");
        }
        let took = start.elapsed().as_secs_f64();
        let (files, drops) = collector.stop();
        let stat = nfdump_stat(&files);
        eprintln!(
            "rate {rate:>6}/s: {} messages in {took:.2} s ({:.0}/s); socket drops {drops}; \
             nfdump {} of {records} records",
            encoded.len(),
            encoded.len() as f64 / took,
            stat.flows,
        );
    }
}

/// A one-way IPv4 UDP flow, different for every `i`.
fn synthetic(i: u64) -> Flow {
    use trawl_flow::{Circuit, Direction, Endpoint, FlowKey};
    let a = Endpoint {
        addr: std::net::Ipv4Addr::from(0x0a00_0000 + (i >> 16) as u32).into(),
        port: i as u16,
    };
    let b = Endpoint {
        addr: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
        port: 53,
    };
    let mut fwd = Direction::default();
    (fwd.packets, fwd.bytes) = (1 + i % 10, 100 + i % 1000);
    fwd.first_ns = 1_700_000_000_000_000_000 + i * 1_000_000;
    fwd.last_ns = fwd.first_ns;
    Flow {
        key: FlowKey {
            circuit: Circuit::default(),
            protocol: 17,
            lo: a.min(b),
            hi: a.max(b),
        },
        initiator: a,
        fwd,
        rev: Direction::default(),
    }
}

#[test]
fn bad_collector_addresses_are_named_in_the_error() {
    for (target, says) in [
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:99999", "expected HOST:PORT"),
    ] {
        let e = IpfixExporter::connect_with(target, IpfixOptions::default())
            .err()
            .expect("an error");
        let text = format!("{e:#}");
        assert!(
            text.contains(target) && text.contains(says),
            "{target}: {text}"
        );
    }
}

#[test]
fn nothing_listening_is_an_error() {
    // A port nobody listens on: the kernel's choice, released.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port();
    let target = format!("127.0.0.1:{port}");
    let mut exporter = IpfixExporter::connect_with(
        &target,
        IpfixOptions {
            rate: 0,
            ..IpfixOptions::default()
        },
    )
    .expect("an exporter");
    // Enough for a few messages: the port unreachable answer to one fails the next send.
    let result = (0..200)
        .try_for_each(|i| exporter.flow(&synthetic(i)))
        .and_then(|()| exporter.finish().map(drop));
    let text = format!("{:#}", result.expect_err("an error"));
    assert!(
        text.contains(&target) && text.contains("is the collector running?"),
        "{text}"
    );
}

/// The command: `trawl flows --ipfix` sends what `trawl flows` writes. nfdump shows one row per
/// direction of each record with packets, with the same addresses, ports, protocol, VLAN,
/// packets and bytes.
#[test]
fn trawl_flows_ipfix_sends_what_it_writes() {
    let capture =
        harness::corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example2.pcap");
    let mut collector = Nfcapd::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let records = dir.path().join("flows.jsonl");
    let target = format!("127.0.0.1:{}", collector.port);
    let (_, summary) = harness::run_ok(&[
        "flows",
        "--ipfix",
        &target,
        "--json",
        "-o",
        records.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    let (files, drops) = collector.stop();
    assert_eq!(drops, 0, "the collector's socket dropped datagrams");
    let summary: serde_json::Value = serde_json::from_str(summary.trim()).expect("--json summary");

    // (src, dst, sport, dport, proto, vlan, packets, bytes)
    type Key = (IpAddr, IpAddr, u16, u16, u8, u16, u64, u64);
    let mut expected: Vec<Key> = Vec::new();
    for line in std::fs::read_to_string(&records).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let addr = |k: &str| r[k].as_str().unwrap().parse::<IpAddr>().unwrap();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let (a, b) = (addr("src"), addr("dst"));
        let (pa, pb) = (n("src_port") as u16, n("dst_port") as u16);
        let (proto, vlan) = (n("protocol") as u8, n("vlan") as u16);
        for (s, d, sp, dp, p, bytes) in [
            (a, b, pa, pb, n("fwd_packets"), n("fwd_bytes")),
            (b, a, pb, pa, n("rev_packets"), n("rev_bytes")),
        ] {
            if p > 0 {
                expected.push((s, d, sp, dp, proto, vlan, p, bytes));
            }
        }
    }
    expected.sort();
    let mut shown: Vec<Key> = rows_of(&files)
        .into_iter()
        .map(|r| {
            (
                r.src, r.dst, r.sport, r.dport, r.proto, r.vlan, r.packets, r.bytes,
            )
        })
        .collect();
    shown.sort();
    assert!(expected.len() > 200, "{} rows", expected.len());
    assert_eq!(shown, expected, "nfdump's rows against the records written");
    assert_eq!(summary["ipfix"]["records"], expected.len());
}
