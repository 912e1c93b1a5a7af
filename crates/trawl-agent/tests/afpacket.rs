//! The AF_PACKET source against tcpdump, on real traffic between two network namespaces.
//!
//! Each test makes two namespaces joined by a veth pair (names carry the test's pid; a guard
//! deletes them even on panic), starts `tcpdump -w` and our source on the same interface in the
//! same namespace, sends pings (ICMP echo from a raw socket: the `ping` binary is not assumed),
//! UDP datagrams (some larger than the MTU, so fragmented) and a TCP transfer from the other
//! namespace, stops both, and requires every packet tcpdump wrote to be one we captured, byte for
//! byte, with the same wire length and a timestamp within a few milliseconds, and nothing else.
//!
//! The test process enters a namespace with `setns` in a dedicated thread (only that thread
//! moves; sockets made there stay in that namespace wherever they are used later). The tests are
//! skipped, with a message, only when not run as root or when `ip` is missing.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use trawl_agent::source::afpacket::{
    AfPacketConfig, AfPacketSource, DEFAULT_BLOCK_TIMEOUT, RETIRE_MARGIN,
};
use trawl_agent::source::{Batch, Source, SourceStats, Timestamp};
use trawl_pcap::CaptureReader;

const PINGS: u16 = 20;
const UDP_DATAGRAMS: usize = 200;
const TCP_BYTES: usize = 512 * 1024;
/// How far apart our timestamp and tcpdump's may be for the same packet.
const TS_TOLERANCE_NS: u64 = 5_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Captured {
    ts: Timestamp,
    orig_len: u32,
    data: Vec<u8>,
}

fn skip_reason() -> Option<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("not running as root");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` binary (iproute2) is missing");
    }
    None
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    ns_a: String,
    ns_b: String,
    /// The capture interface, in `ns_a`.
    veth_a: String,
    addr_a: String,
    addr_b: String,
}

impl Lab {
    fn new(tag: char, subnet: u8) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            ns_a: format!("trawl-{tag}a-{pid}"),
            ns_b: format!("trawl-{tag}b-{pid}"),
            veth_a: format!("tv{tag}{pid}a"),
            addr_a: format!("10.213.{subnet}.1"),
            addr_b: format!("10.213.{subnet}.2"),
        };
        let veth_b = format!("tv{tag}{pid}b");
        let (a, b) = (lab.ns_a.as_str(), lab.ns_b.as_str());
        // Leftovers of an earlier run with the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", a]).output();
        let _ = Command::new("ip").args(["netns", "del", b]).output();
        run(&["ip", "netns", "add", a]);
        run(&["ip", "netns", "add", b]);
        // No IPv6: its router solicitations and DAD would arrive at times of their own.
        for ns in [a, b] {
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        run(&[
            "ip",
            "link",
            "add",
            &lab.veth_a,
            "netns",
            a,
            "type",
            "veth",
            "peer",
            "name",
            &veth_b,
            "netns",
            b,
        ]);
        let cidr_a = format!("{}/24", lab.addr_a);
        let cidr_b = format!("{}/24", lab.addr_b);
        run(&["ip", "-n", a, "addr", "add", &cidr_a, "dev", &lab.veth_a]);
        run(&["ip", "-n", b, "addr", "add", &cidr_b, "dev", &veth_b]);
        run(&["ip", "-n", a, "link", "set", &lab.veth_a, "up"]);
        run(&["ip", "-n", b, "link", "set", &veth_b, "up"]);
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `f` in a new thread that has entered network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: `file` is an open namespace file; setns only changes this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
        f()
    })
}

/// `tcpdump -w` in namespace `ns`, running once it said it is listening.
struct Tcpdump {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Tcpdump {
    fn start(ns: &str, interface: &str, out: &Path, filter: Option<&str>) -> Tcpdump {
        let mut cmd = Command::new("ip");
        // --immediate-mode: otherwise libpcap holds packets up to 1 s in a ring block that is
        // not retired yet, and those are lost when tcpdump is stopped.
        cmd.args(["netns", "exec", ns, "tcpdump", "-i", interface, "-n", "-U"])
            .arg("--immediate-mode")
            // A 32 MiB buffer like ours: the default 2 MiB overflows under the TCP burst.
            .args(["-B", "32768"])
            .args(["-Z", "root", "--time-stamp-precision=nano", "-w"])
            .arg(out)
            .args(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("tcpdump starts");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tcpdump did not start: {}",
                stderr.join().unwrap_or_default()
            );
        }
        Tcpdump {
            child,
            stderr: Some(stderr),
        }
    }

    /// Stops tcpdump (SIGINT, so it flushes and closes the file) and returns what it said.
    fn stop(mut self) -> String {
        run(&["kill", "-INT", &self.child.id().to_string()]);
        let status = self.child.wait().expect("tcpdump exits");
        let said = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(status.success(), "tcpdump: {status}: {said}");
        said
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        // Ends tcpdump if a test panicked before `stop`; harmless once it has exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_capture(path: &Path) -> Vec<Captured> {
    let mut reader = CaptureReader::open(path).expect("tcpdump's file");
    assert_eq!(reader.interfaces()[0].link_type, 1, "tcpdump saw Ethernet");
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().expect("tcpdump's packets") {
        out.push(Captured {
            ts: p.ts,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    out
}

/// Our source on `interface` in `ns` until `stop` is set and the ring is empty; returns the
/// packets and final counters. `ready` is signalled once the socket is bound.
fn start_capture(
    ns: &str,
    config: AfPacketConfig,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(Vec<Captured>, SourceStats)> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = in_netns(ns, move || {
        let mut source = AfPacketSource::open(&config).expect("AF_PACKET source opens");
        assert_eq!(source.link_type(), 1);
        ready_tx.send(()).expect("ready");
        let mut packets = Vec::new();
        loop {
            let batch = source
                .next_batch(Duration::from_millis(200), &mut |p| {
                    packets.push(Captured {
                        ts: p.ts,
                        orig_len: p.orig_len,
                        data: p.data.to_vec(),
                    })
                })
                .expect("next_batch");
            if batch == Batch::Idle && stop.load(Ordering::SeqCst) {
                break;
            }
        }
        let stats = source.stats().expect("stats");
        (packets, stats)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("our source opened");
    handle
}

/// An ICMP echo request with identifier `id`, sequence `seq` and 56 bytes of payload.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut msg = vec![8, 0, 0, 0];
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend((0..56u8).map(|i| i.wrapping_add(seq as u8)));
    let mut sum: u32 = msg
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    msg[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    msg
}

/// `ping -c PINGS -i 0.01 to` from the calling thread's namespace.
fn ping(to: std::net::Ipv4Addr) {
    // SAFETY: plain system call with integer arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    assert!(raw >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a descriptor we just created and own.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_in is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from(to).to_be();
    for seq in 1..=PINGS {
        let msg = echo_request(0x7472, seq);
        // SAFETY: `msg` and `addr` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(
            sent,
            msg.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Pings, UDP datagrams and a TCP transfer from `lab.ns_b` to `lab.ns_a`, with receivers in
/// `ns_a`. Returns once all was received.
fn make_traffic(lab: &Lab) {
    let addr_a: std::net::Ipv4Addr = lab.addr_a.parse().expect("address");
    let (udp_rx, tcp_listener) = in_netns(&lab.ns_a, move || {
        (
            UdpSocket::bind((addr_a, 9000)).expect("udp bind"),
            TcpListener::bind((addr_a, 9001)).expect("tcp bind"),
        )
    })
    .join()
    .expect("receivers");
    udp_rx
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let udp_sizes: Vec<usize> = (0..UDP_DATAGRAMS)
        .map(|i| {
            if i % 50 == 49 {
                4000
            } else {
                1 + (i * 37) % 1400
            }
        })
        .collect();
    // The receiver only keeps A from answering "port unreachable". What is on the wire does not
    // depend on it: a datagram its socket buffer had no room for was still captured.
    let udp_reader = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        while got < UDP_DATAGRAMS && udp_rx.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        if got < UDP_DATAGRAMS {
            eprintln!("note: the UDP receiver got {got} of {UDP_DATAGRAMS} datagrams");
        }
    });
    let tcp_reader = thread::spawn(move || {
        let (mut conn, _) = tcp_listener.accept().expect("accept");
        let mut data = Vec::new();
        conn.read_to_end(&mut data).expect("tcp read");
        assert_eq!(data.len(), TCP_BYTES);
    });

    in_netns(&lab.ns_b, move || {
        ping(addr_a);
        let udp = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
        for (i, size) in udp_sizes.iter().enumerate() {
            udp.send_to(&vec![i as u8; *size], (addr_a, 9000))
                .expect("udp send");
            if i % 10 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        let mut conn = TcpStream::connect((addr_a, 9001)).expect("tcp connect");
        let payload: Vec<u8> = (0..TCP_BYTES).map(|i| (i % 251) as u8).collect();
        conn.write_all(&payload).expect("tcp write");
        conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
        // Wait for the peer to close, so the whole exchange (FINs, last ACK) is on the wire.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).expect("tcp close");
    })
    .join()
    .expect("traffic");
    udp_reader.join().expect("udp received");
    tcp_reader.join().expect("tcp received");
}

/// Every packet of `theirs` is in `ours` with the same bytes and wire length, and a timestamp
/// within [`TS_TOLERANCE_NS`], and nothing more. Order is compared too, but only reported: two
/// sockets may see packets handled on different CPUs in different orders.
fn assert_same_packets(ours: &[Captured], theirs: &[Captured]) {
    let bytes = |v: &[Captured]| v.iter().map(|p| p.data.len()).sum::<usize>();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "packet counts: ours {}, tcpdump {}",
        ours.len(),
        theirs.len()
    );
    let mut by_content: HashMap<(&[u8], u32), Vec<Timestamp>> = HashMap::new();
    for p in ours {
        by_content
            .entry((&p.data, p.orig_len))
            .or_default()
            .push(p.ts);
    }
    for (i, p) in theirs.iter().enumerate() {
        let times = by_content
            .get_mut(&(&p.data[..], p.orig_len))
            .unwrap_or_else(|| {
                panic!(
                    "tcpdump's packet {i} ({} bytes, wire {}) is not among ours",
                    p.data.len(),
                    p.orig_len
                )
            });
        let (nearest, gap) = times
            .iter()
            .enumerate()
            .map(|(j, t)| (j, t.as_nanos().abs_diff(p.ts.as_nanos())))
            .min_by_key(|(_, gap)| *gap)
            .unwrap_or_else(|| panic!("tcpdump's packet {i} is in ours fewer times"));
        assert!(
            gap <= TS_TOLERANCE_NS,
            "tcpdump's packet {i} at {}: ours is {gap} ns away",
            p.ts
        );
        times.swap_remove(nearest);
    }
    let in_order = ours
        .iter()
        .zip(theirs)
        .filter(|(a, b)| a.data == b.data)
        .count();
    let max_gap = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| a.ts.as_nanos().abs_diff(b.ts.as_nanos()))
        .max()
        .unwrap_or(0);
    eprintln!(
        "ours {} packets / {} bytes, tcpdump {} packets / {} bytes: equal; {} at the same \
         position, largest timestamp gap in order {} ns; largest packet {} bytes",
        ours.len(),
        bytes(ours),
        theirs.len(),
        bytes(theirs),
        in_order,
        max_gap,
        ours.iter().map(|p| p.data.len()).max().unwrap_or(0),
    );
}

/// Runs the whole exchange with tcpdump and our source side by side; returns (ours, tcpdump's).
fn capture_side_by_side(
    tag: char,
    subnet: u8,
    tcpdump_filter: Option<&str>,
    mut config: impl FnMut(&str) -> AfPacketConfig,
) -> (Vec<Captured>, SourceStats, Vec<Captured>) {
    let lab = Lab::new(tag, subnet);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tcpdump.pcap");
    let tcpdump = Tcpdump::start(&lab.ns_a, &lab.veth_a, &file, tcpdump_filter);
    let stop = Arc::new(AtomicBool::new(false));
    let capture = start_capture(&lab.ns_a, config(&lab.veth_a), stop.clone());

    make_traffic(&lab);

    // Let both see the last packets (our block timeout is 50 ms; tcpdump's buffer -U).
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (ours, stats) = capture.join().expect("capture thread");
    let said = tcpdump.stop();
    let theirs = read_capture(&file);
    assert!(
        said.lines()
            .any(|l| l.trim() == "0 packets dropped by kernel"),
        "tcpdump dropped packets: {said}"
    );
    drop(lab);
    (ours, stats, theirs)
}

#[test]
fn afpacket_captures_what_tcpdump_captures() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED afpacket_captures_what_tcpdump_captures: {reason}");
        return;
    }
    let (ours, stats, theirs) =
        capture_side_by_side('u', 1, None, |interface| AfPacketConfig::new(interface));
    assert_same_packets(&ours, &theirs);
    let count = |proto: u8| {
        ours.iter()
            .filter(|p| p.data.len() > 23 && p.data[12..14] == [8, 0] && p.data[23] == proto)
            .count()
    };
    // 20 requests and 20 replies; 200 datagrams, four of them in 3 fragments.
    assert_eq!(count(1), 2 * PINGS as usize, "ICMP packets");
    assert_eq!(count(17), UDP_DATAGRAMS + 4 * 2, "UDP packets");
    assert!(count(6) > 10, "TCP packets: {}", count(6));
    assert_eq!(stats.received, ours.len() as u64);
    assert_eq!(stats.kernel_drops, 0);
    assert_eq!(stats.interface_drops, 0);
}

#[test]
fn afpacket_with_a_libpcap_filter_captures_what_tcpdump_filtered() {
    if let Some(reason) = skip_reason() {
        eprintln!(
            "SKIPPED afpacket_with_a_libpcap_filter_captures_what_tcpdump_filtered: {reason}"
        );
        return;
    }
    let program = trawl_bpfc::compile("icmp", 1, 262_144, true).expect("icmp compiles");
    let (ours, stats, theirs) = capture_side_by_side('f', 2, Some("icmp"), |interface| {
        let mut config = AfPacketConfig::new(interface);
        config.filter = Some(program.clone());
        config
    });
    assert_same_packets(&ours, &theirs);
    assert_eq!(ours.len(), 2 * PINGS as usize, "20 requests and 20 replies");
    for p in &ours {
        assert_eq!(p.data[12..14], [8, 0], "IPv4");
        assert_eq!(p.data[23], 1, "ICMP");
    }
    assert_eq!(stats.received, ours.len() as u64);
    assert_eq!(stats.kernel_drops, 0);
}

#[test]
fn a_short_snaplen_truncates_but_keeps_the_wire_length() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED a_short_snaplen_truncates_but_keeps_the_wire_length: {reason}");
        return;
    }
    // The filter's own accept value (64 here) must not win over the snap length asked for
    // (96): `fix_program` rewrites it, so the kernel keeps 96 bytes, as tcpdump -s 96 would.
    let program = trawl_bpfc::compile("udp", 1, 64, true).expect("udp compiles");
    let (ours, _, theirs) = capture_side_by_side('s', 3, Some("udp"), |interface| {
        let mut config = AfPacketConfig::new(interface);
        config.snaplen = 96;
        config.filter = Some(program.clone());
        config
    });
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours.len(), UDP_DATAGRAMS + 4 * 2);
    assert!(
        ours.iter().all(|p| p.data.len() <= 96),
        "nothing longer than 96 bytes"
    );
    assert!(
        theirs.iter().any(|t| t.data.len() > 96),
        "some packets were longer"
    );
    // Same first 96 bytes and wire length for every packet, in whatever order.
    let mut ours_kept: Vec<(&[u8], u32)> = ours.iter().map(|p| (&p.data[..], p.orig_len)).collect();
    let mut theirs_cut: Vec<(&[u8], u32)> = theirs
        .iter()
        .map(|t| (&t.data[..t.data.len().min(96)], t.orig_len))
        .collect();
    ours_kept.sort();
    theirs_cut.sort();
    if let Some(i) = (0..ours_kept.len()).find(|&i| ours_kept[i] != theirs_cut[i]) {
        panic!(
            "packet {i} (sorted by content) differs: ours kept {} bytes of {}, tcpdump's first \
             96 are {} bytes of {}",
            ours_kept[i].0.len(),
            ours_kept[i].1,
            theirs_cut[i].0.len(),
            theirs_cut[i].1
        );
    }
}

/// The source's watermark (`complete_before`): it moves on while the interface is idle and
/// nothing arrives, no packet handed out is stamped before a watermark read earlier, and once
/// the pings stop the watermark passes the last packet (a quiet link holds nothing back).
#[test]
fn the_watermark_moves_on_an_idle_interface_and_no_packet_comes_before_it() {
    if let Some(reason) = skip_reason() {
        eprintln!(
            "SKIPPED the_watermark_moves_on_an_idle_interface_and_no_packet_comes_before_it: \
             {reason}"
        );
        return;
    }
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64
    };
    let margin = RETIRE_MARGIN.as_nanos() as u64;
    // How far behind the clock the watermark stays (the default retire timeout and the margin).
    let behind = (DEFAULT_BLOCK_TIMEOUT + RETIRE_MARGIN).as_nanos() as u64;
    let lab = Lab::new('w', 4);
    let interface = lab.veth_a.clone();
    let (idle_tx, idle_rx) = mpsc::channel();
    let capture = in_netns(&lab.ns_a, move || {
        let mut source = AfPacketSource::open(&AfPacketConfig::new(interface)).expect("opens");
        let bound_ns = source
            .bound_at()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64;
        let opened = source.complete_before();
        // Idle: nothing is sent for 300 ms.
        let started = std::time::Instant::now();
        let mut idle_packets = 0;
        let mut watermarks = vec![opened];
        let mut before_last_read = 0;
        while started.elapsed() < Duration::from_millis(300) {
            before_last_read = now_ns();
            source
                .next_batch(Duration::from_millis(50), &mut |_| idle_packets += 1)
                .expect("next_batch");
            watermarks.push(source.complete_before());
        }
        let after_last_read = now_ns();
        idle_tx
            .send((
                bound_ns,
                watermarks,
                idle_packets,
                before_last_read,
                after_last_read,
            ))
            .expect("idle report");
        // Pings: every packet against the watermark read before the read that handed it out.
        // Short reads, so that the watermark moves every few ms, also while a packet waits in
        // a block the kernel has not handed over yet: the closest a packet can come to it.
        let mut packets: Vec<(u64, u64, bool)> = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let watermark = source.complete_before();
            source
                .next_batch(Duration::from_millis(2), &mut |p| {
                    let icmp = p.data.len() > 23 && p.data[12..14] == [8, 0] && p.data[23] == 1;
                    packets.push((p.ts.as_nanos(), watermark, icmp));
                })
                .expect("next_batch");
            // Every request and reply, and the watermark past the newest packet.
            let newest = packets.iter().map(|p| p.0).max().unwrap_or(u64::MAX);
            let icmp = packets.iter().filter(|p| p.2).count();
            if icmp == 2 * PINGS as usize && source.complete_before() > newest {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "after 10 s: {icmp} ICMP packets of {}, watermark {} against the newest packet \
                 {newest}",
                2 * PINGS,
                source.complete_before()
            );
        }
        let passed_at = now_ns();
        (packets, passed_at)
    });
    let (bound_ns, watermarks, idle_packets, before_last_read, after_last_read) = idle_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the idle phase ends");
    assert_eq!(idle_packets, 0, "nothing arrives on the idle interface");
    assert!(
        watermarks.is_sorted(),
        "the watermark never goes back: {watermarks:?}"
    );
    let (opened, last) = (watermarks[0], *watermarks.last().expect("some"));
    assert_eq!(
        opened,
        bound_ns - margin,
        "at first: when the socket was bound, less the margin"
    );
    // The last read found the ring walked after `before_last_read`, and the watermark stays
    // the retire timeout and margin behind the clock.
    assert!(
        last >= before_last_read - behind && last <= after_last_read - behind,
        "watermark {last}: expected within [{}, {}]",
        before_last_read - behind,
        after_last_read - behind
    );
    assert!(
        last >= opened + 150_000_000,
        "the watermark moved {} ms in 300 ms of idle reads",
        (last - opened) / 1_000_000
    );

    let addr_a: std::net::Ipv4Addr = lab.addr_a.parse().expect("address");
    in_netns(&lab.ns_b, move || ping(addr_a))
        .join()
        .expect("pings");
    let (packets, passed_at) = capture.join().expect("capture thread");
    for (i, &(ts, watermark, _)) in packets.iter().enumerate() {
        assert!(
            ts >= watermark,
            "packet {i} stamped {ts}, before the watermark {watermark} read before it was read \
             ({} µs)",
            (watermark - ts) / 1000
        );
    }
    let newest = packets.iter().map(|p| p.0).max().expect("packets");
    let closest = packets.iter().map(|p| p.0 - p.1).min().expect("packets");
    eprintln!(
        "{} packets, each at or after the watermark read before it (the closest {:.1} ms \
         after); the watermark passed the last one {} ms after its stamp",
        packets.len(),
        closest as f64 / 1e6,
        (passed_at - newest) / 1_000_000
    );
    drop(lab);
}
