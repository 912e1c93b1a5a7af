//! Real traffic between network namespaces: ping (iputils), DNS (dig against a small responder
//! run here), TCP transfers, and a steady mix of pings and TCP that runs until stopped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::netns::{Netns, sh};
use super::read_all;

/// `ping -c COUNT -i INTERVAL TO` in `ns`; every echo must be answered.
pub fn ping(ns: &Netns, to: Ipv4Addr, count: u32, interval: &str) {
    let out = ns.exec_ok(&[
        "ping",
        "-n",
        "-q",
        "-c",
        &count.to_string(),
        "-i",
        interval,
        "-W",
        "2",
        &to.to_string(),
    ]);
    assert!(
        out.contains(&format!("{count} packets transmitted, {count} received")),
        "ping {to} from {}: {out}",
        ns.name
    );
}

/// The address the responder gives every name: 192.0.2.x, x from the name's bytes.
pub fn dns_answer(name: &str) -> Ipv4Addr {
    let sum: u32 = name
        .trim_end_matches('.')
        .bytes()
        .map(|b| u32::from(b.to_ascii_lowercase()))
        .sum();
    Ipv4Addr::new(192, 0, 2, (sum % 254 + 1) as u8)
}

/// A DNS responder on UDP port 53 of `addr` in a namespace: answers every A query with
/// [`dns_answer`], anything else with NOTIMP.
pub struct DnsResponder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl DnsResponder {
    pub fn start(ns: &Netns, addr: Ipv4Addr) -> DnsResponder {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = ns.thread(move || {
            let socket = UdpSocket::bind((addr, 53)).expect("bind UDP port 53");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("read timeout");
            ready_tx.send(()).expect("ready");
            let mut answered = 0;
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = dns_reply(&buf[..n]) {
                    socket.send_to(&reply, peer).expect("send a DNS answer");
                    answered += 1;
                }
            }
            answered
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS responder is listening");
        DnsResponder {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns how many queries it answered.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("the responder")
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The answer to one query: the question echoed, one A record (or NOTIMP), no EDNS.
fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    query.get(..question_end)?;
    let is_a = qtype == 1;

    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[0..2]); // id
    // QR, the query's opcode and RD, RA; rcode NOERROR or NOTIMP.
    reply.push(0x80 | (query[2] & 0x79));
    reply.push(0x80 | if is_a { 0 } else { 4 });
    reply.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..question_end]);
    if is_a {
        let name = labels.join(".");
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&dns_answer(&name).octets());
    }
    Some(reply)
}

/// `dig @SERVER NAME A +short` in `ns`: the addresses answered.
pub fn dig(ns: &Netns, server: Ipv4Addr, name: &str) -> String {
    ns.exec_ok(&[
        "dig",
        &format!("@{server}"),
        name,
        "A",
        "+short",
        "+tries=1",
        "+time=3",
    ])
    .trim()
    .to_owned()
}

/// Sends `bytes` over TCP from namespace `from` to `to_addr:port` in namespace `to`, and
/// returns once the connection is closed on both sides (FINs and last ACK on the wire).
pub fn tcp_transfer(from: &Netns, to: &Netns, to_addr: Ipv4Addr, port: u16, bytes: usize) {
    let listener = to
        .thread(move || TcpListener::bind((to_addr, port)).expect("bind the TCP receiver"))
        .join()
        .expect("the TCP receiver");
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("receive");
        got.len()
    });
    from.thread(move || {
        let mut conn = TcpStream::connect((to_addr, port)).expect("connect");
        let payload: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        conn.write_all(&payload).expect("send");
        conn.shutdown(Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).expect("the peer closes");
    })
    .join()
    .expect("the TCP sender");
    assert_eq!(receiver.join().expect("the TCP receiver"), bytes);
    wait_closed(&to.name, port);
}

/// Waits until the receiving side's socket on `port` in namespace `ns` has left LAST-ACK: the
/// side that closes second leaves it only when the final ACK has crossed the link, so after this
/// the connection's last packet is on the wire (the sender's `read_to_end` returns on the peer's
/// FIN, possibly before its kernel has sent that ACK).
fn wait_closed(ns: &str, port: u16) {
    let filter = format!("( sport = :{port} )");
    let started = std::time::Instant::now();
    loop {
        let out = sh(&[
            "ip", "netns", "exec", ns, "ss", "-Htan", "state", "last-ack", "state", "closing",
            &filter,
        ]);
        if out.trim().is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a TCP connection on port {port} in {ns} is still closing after 10 s: {out}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Pings every 10 ms and a TCP stream of 8 KiB every 20 ms, from one namespace to another,
/// until stopped.
pub struct Steady {
    ping: Child,
    ping_out: Option<JoinHandle<String>>,
    stop: Arc<AtomicBool>,
    sender: Option<JoinHandle<u64>>,
    receiver: Option<JoinHandle<u64>>,
    /// The receiving namespace and port, to wait for the connection's last packet.
    to: String,
    port: u16,
}

/// What steady traffic sent.
#[derive(Debug)]
pub struct SteadyReport {
    pub pings_sent: u64,
    pub pings_answered: u64,
    pub tcp_bytes: u64,
}

impl Steady {
    pub fn start(from: &Netns, to: &Netns, to_addr: Ipv4Addr, port: u16) -> Steady {
        let listener = to
            .thread(move || TcpListener::bind((to_addr, port)).expect("bind the TCP receiver"))
            .join()
            .expect("the TCP receiver");
        let receiver = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 65536];
            let mut total = 0u64;
            loop {
                match conn.read(&mut buf).expect("receive") {
                    0 => break total,
                    n => total += n as u64,
                }
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sender = from.thread(move || {
            let mut conn = TcpStream::connect((to_addr, port)).expect("connect");
            let chunk: Vec<u8> = (0..8192).map(|i| (i % 253) as u8).collect();
            let mut sent = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                conn.write_all(&chunk).expect("send");
                sent += chunk.len() as u64;
                std::thread::sleep(Duration::from_millis(20));
            }
            conn.shutdown(Shutdown::Write).expect("shutdown");
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).expect("the peer closes");
            sent
        });
        let mut ping = from
            .command("ping")
            .args(["-n", "-q", "-i", "0.01", "-W", "2"])
            .arg(to_addr.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping (iputils-ping: scripts/deps.sh installs it)");
        let ping_out = Some(read_all(ping.stdout.take().expect("stdout")));
        Steady {
            ping,
            ping_out,
            stop,
            sender: Some(sender),
            receiver: Some(receiver),
            to: to.name.clone(),
            port,
        }
    }

    /// Stops both and waits until they are done on the wire.
    pub fn stop(mut self) -> SteadyReport {
        // SIGINT: ping stops sending, waits for the replies outstanding, and prints a summary.
        sh(&["kill", "-INT", &self.ping.id().to_string()]);
        let status = self.ping.wait().expect("ping ends");
        let out = self.ping_out.take().unwrap().join().unwrap_or_default();
        let (sent, answered) = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .and_then(|l| {
                let n: Vec<u64> = l
                    .split(',')
                    .filter_map(|f| f.split_whitespace().next()?.parse().ok())
                    .collect();
                Some((*n.first()?, *n.get(1)?))
            })
            .unwrap_or_else(|| panic!("ping ({status}) printed no summary: {out}"));
        self.stop.store(true, Ordering::Relaxed);
        let sent_tcp = self.sender.take().unwrap().join().expect("the TCP sender");
        let got_tcp = self
            .receiver
            .take()
            .unwrap()
            .join()
            .expect("the TCP receiver");
        assert_eq!(sent_tcp, got_tcp, "TCP bytes sent and received");
        wait_closed(&self.to, self.port);
        SteadyReport {
            pings_sent: sent,
            pings_answered: answered,
            tcp_bytes: got_tcp,
        }
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        let _ = self.ping.kill();
        let _ = self.ping.wait();
        self.stop.store(true, Ordering::Relaxed);
    }
}
