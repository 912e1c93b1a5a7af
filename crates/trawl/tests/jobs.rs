//! End to end: capture jobs (`trawl capture …`) on real agents in a chain of three devices,
//! judged against tcpdump with the same expression on the same interfaces.
//!
//! ```text
//!                        ┌──────────────────── srv ───────────────────┐
//!                        │ trawl server 0.0.0.0:8443                  │
//!                        │ up1 10.78.1.1    up2 10.78.2.1  up3 10.78.3.1
//!                        └───┬──────────────────┬──────────────┬──────┘
//!                    uplink  │          uplink  │       uplink │
//!                        ┌───┴───┐          ┌───┴───┐      ┌───┴───┐
//!                        │   a   │ab      ba│   b   │bc  cb│   c   │
//!                        │       ├──────────┤forward├──────┤       │
//!                        └───────┘10.78.10.1 .2      10.78.20.1 .2 └───────┘
//! ```
//!
//! Each device's agent streams one interface of the chain (`a: ab`, `b: ba`, `c: cb`), which a
//! job uses by default; traffic between a and c crosses b. The chain links have static
//! neighbours and no IPv6: they carry only the test's traffic. The tests skip (and pass) when
//! not root or without `ip netns`.

mod harness;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::agent::Agent;
use harness::netns::{
    End, Netns, Tcpdump, TcpdumpReport, skip_reason, static_neighbours, uplink, veth,
};
use harness::run_ok;
use harness::server::{AdminApi, Server};
use harness::traffic::{Steady, ping, tcp_transfer};
use serde_json::Value;
use trawl_pcap::CaptureReader;

const PORT: u16 = 8443;
const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 78, 10, 1);
const C_ADDR: Ipv4Addr = Ipv4Addr::new(10, 78, 20, 2);
const FILTER: &str = "icmp or tcp port 5001";

macro_rules! skip_unless_possible {
    ($name:literal) => {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIPPED {}: {reason}", $name);
            return;
        }
    };
}

/// The chain, the server, and an agent on each device.
struct Chain {
    // Fields drop in order: agents and server first, then the namespaces, then the files.
    agents: Vec<Option<Agent>>,
    _server: Server,
    api: AdminApi,
    _srv: Netns,
    devs: Vec<Netns>,
    dir: tempfile::TempDir,
    started: Instant,
    name: &'static str,
}

/// Each device's name, its chain interface, and that interface's MAC address.
const DEVICES: [(&str, &str); 3] = [("a", "ab"), ("b", "ba"), ("c", "cb")];

impl Chain {
    fn new(name: &'static str, tag: &str) -> Chain {
        let started = Instant::now();
        let srv = Netns::new(tag, "srv");
        let devs: Vec<Netns> = ["a", "b", "c"].iter().map(|d| Netns::new(tag, d)).collect();
        for (n, dev) in (1..).zip(&devs) {
            uplink(&srv, dev, 78, n);
        }
        let (ab, ba) = (
            End {
                ns: &devs[0],
                name: "ab",
                mac: "02:78:00:00:0a:01",
                cidr: "10.78.10.1/24",
            },
            End {
                ns: &devs[1],
                name: "ba",
                mac: "02:78:00:00:0a:02",
                cidr: "10.78.10.2/24",
            },
        );
        veth(&ab, &ba);
        static_neighbours(&ab, &ba);
        let (bc, cb) = (
            End {
                ns: &devs[1],
                name: "bc",
                mac: "02:78:00:00:14:01",
                cidr: "10.78.20.1/24",
            },
            End {
                ns: &devs[2],
                name: "cb",
                mac: "02:78:00:00:14:02",
                cidr: "10.78.20.2/24",
            },
        );
        veth(&bc, &cb);
        static_neighbours(&bc, &cb);
        devs[1].exec_ok(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        devs[0].ip(&[
            "route",
            "add",
            "10.78.20.0/24",
            "via",
            "10.78.10.2",
            "dev",
            "ab",
        ]);
        devs[2].ip(&[
            "route",
            "add",
            "10.78.10.0/24",
            "via",
            "10.78.20.1",
            "dev",
            "cb",
        ]);

        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        let (server, banner, api) = AdminApi::first_start_in(&srv, &data, PORT);
        let mut chain = Chain {
            agents: Vec::new(),
            _server: server,
            api,
            _srv: srv,
            devs,
            dir,
            started,
            name,
        };
        for i in 0..3 {
            let agent = chain.enrol_agent(i, &banner.fingerprint);
            chain.agents.push(Some(agent));
        }
        for (device, _) in DEVICES {
            chain.wait_polling(device, true);
        }
        chain.step("network, server and three agents up, each polling for commands");
        chain
    }

    fn step(&self, what: &str) {
        eprintln!(
            "[{} +{:5.1} s] {what}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A later start of device `i`'s agent: only its state directory and interface.
    fn restart_agent(&self, i: usize) -> Agent {
        let (device, iface) = DEVICES[i];
        let state = self.path(&format!("agent-{device}"));
        Agent::start(
            &format!("agent on {device} (restarted)"),
            &self.devs[i],
            &["--state", state.to_str().unwrap(), "-i", iface],
        )
    }

    fn enrol_agent(&self, i: usize, fingerprint: &str) -> Agent {
        let data = self.dir.path().join("data");
        let (token, _) = run_ok(&["org", "enrollment-token", "--data", data.to_str().unwrap()]);
        let (device, iface) = DEVICES[i];
        let state = self.path(&format!("agent-{device}"));
        Agent::start(
            &format!("agent on {device}"),
            &self.devs[i],
            &[
                "--server",
                &format!("https://10.78.{}.1:{PORT}", i + 1),
                "--fingerprint",
                fingerprint,
                "--enroll",
                token.trim(),
                "--name",
                device,
                "--state",
                state.to_str().unwrap(),
                "-i",
                iface,
            ],
        )
    }

    /// Waits until the device list shows the device's command channel up (or down).
    fn wait_polling(&self, device: &str, polling: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let devices = self.api.devices().unwrap_or_default();
            if devices
                .iter()
                .any(|d| d.name == device && d.polling == polling)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "device {device} polling is not {polling}: {devices:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tcpdump(&self, i: usize, filter: &str, file: &str) -> (Tcpdump, PathBuf) {
        let path = self.path(file);
        let (_, iface) = DEVICES[i];
        (
            Tcpdump::start_filtered(&self.devs[i], iface, &path, Some(filter)),
            path,
        )
    }

    /// `trawl capture start …`; the server's answer.
    fn start_job(&self, args: &[&str]) -> Value {
        let mut all = vec!["capture", "start"];
        all.extend_from_slice(args);
        self.api.client_json(&all)
    }

    fn job(&self, id: i64) -> Value {
        let (status, job) = self.api.call("GET", &format!("/api/v1/jobs/{id}"), None);
        assert_eq!(status, 200, "{job}");
        job
    }

    /// Polls the job until `done` holds; panics after `within`.
    fn wait_job(
        &self,
        id: i64,
        within: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id}: no {what} within {within:?}: {job:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `trawl capture download JOB -o FILE`.
    fn download(&self, id: i64) -> PathBuf {
        let out = self.path(&format!("job-{id}.pcapng"));
        let (ok, _, stderr) = self.api.client(&[
            "capture",
            "download",
            &id.to_string(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "trawl capture download {id}: {stderr}");
        out
    }
}

fn rows(job: &Value) -> Vec<Value> {
    job["devices"].as_array().cloned().unwrap_or_default()
}

fn row<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name} in {job:#}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// One packet as compared: wire length and bytes, with its time.
#[derive(Clone, Debug)]
struct Pkt {
    ns: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// A capture file's packets, by interface name, and where a packet is earlier than the one
/// before it.
fn read_any(path: &Path) -> (Vec<String>, BTreeMap<String, Vec<Pkt>>, Vec<String>) {
    let mut reader =
        CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut by_iface: BTreeMap<u32, Vec<Pkt>> = BTreeMap::new();
    let mut reversals = Vec::new();
    let mut last = (0u64, 0u32);
    let mut n = 0;
    while let Some(p) = reader.next_packet().unwrap() {
        let ns = p.ts.as_nanos();
        if ns < last.0 {
            reversals.push(format!(
                "packet {n} (interface {}) is {} ns earlier than the one before (interface {})",
                p.interface,
                last.0 - ns,
                last.1
            ));
        }
        n += 1;
        last = (ns, p.interface);
        by_iface.entry(p.interface).or_default().push(Pkt {
            ns,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    let names: Vec<String> = reader
        .interfaces()
        .iter()
        .map(|i| i.name().unwrap_or("").to_owned())
        .collect();
    let by_name = by_iface
        .into_iter()
        .map(|(i, p)| (names[i as usize].clone(), p))
        .collect();
    (names, by_name, reversals)
}

/// A job's download: its packets by interface name, which must be in time order.
fn read(path: &Path) -> (Vec<String>, BTreeMap<String, Vec<Pkt>>) {
    let (names, by, reversals) = read_any(path);
    assert!(
        reversals.is_empty(),
        "{}: not in time order: {reversals:?}",
        path.display()
    );
    (names, by)
}

/// The packets tcpdump wrote (in the order the kernel gave them).
fn reference(path: &Path) -> Vec<Pkt> {
    let (_, mut by, _) = read_any(path);
    assert!(by.len() <= 1);
    by.pop_first().map(|(_, p)| p).unwrap_or_default()
}

/// `job` must hold exactly `want`'s packets: the same number, and the same (wire length,
/// bytes) as a multiset (two sockets may see packets of two CPUs in different orders); each
/// pair's timestamps within 5 ms.
fn assert_same_packets(what: &str, job: &[Pkt], want: &[Pkt]) {
    assert_eq!(
        job.len(),
        want.len(),
        "{what}: the job has {} packets, tcpdump saw {}",
        job.len(),
        want.len()
    );
    let key = |p: &Pkt| (p.orig_len, p.data.clone());
    let mut a: Vec<&Pkt> = job.iter().collect();
    let mut b: Vec<&Pkt> = want.iter().collect();
    a.sort_by_key(|p| (key(p), p.ns));
    b.sort_by_key(|p| (key(p), p.ns));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            key(x),
            key(y),
            "{what}: packet {i} (sorted by content) differs: job {} bytes of {}, tcpdump {} of {}",
            x.data.len(),
            x.orig_len,
            y.data.len(),
            y.orig_len
        );
        assert!(
            x.ns.abs_diff(y.ns) < 5_000_000,
            "{what}: packet {i}: times differ by {} ns",
            x.ns.abs_diff(y.ns)
        );
    }
}

fn stop_tcpdump(chain: &Chain, t: Tcpdump, what: &str) -> TcpdumpReport {
    let report = t.stop();
    assert_eq!(report.dropped_by_kernel, 0, "{what}: {}", report.text);
    chain.step(&format!("tcpdump on {what}: {} packets", report.captured));
    report
}

/// A job on all three devices with `icmp or tcp port 5001` while pings and a TCP transfer go
/// from a to c (through b) and UDP that the filter must leave out: each device's share of the
/// job is what tcpdump with the same expression saw on the same interface, packet for packet;
/// the download has the three interfaces, named DEVICE/INTERFACE, in time order; the record's
/// totals are the sums. The job has no limit and ends with `trawl capture stop`.
#[test]
fn a_job_on_a_chain_of_three_is_what_tcpdump_saw() {
    skip_unless_possible!("a_job_on_a_chain_of_three_is_what_tcpdump_saw");
    let chain = Chain::new("chain_job", "jchain");
    let dumps: Vec<(Tcpdump, PathBuf)> = (0..3)
        .map(|i| chain.tcpdump(i, FILTER, &format!("tcpdump-{}.pcap", DEVICES[i].0)))
        .collect();

    let asked = Instant::now();
    let job = chain.start_job(&["--devices", "a,b,c", "-f", FILTER, "--name", "chain"]);
    let id = job["id"].as_i64().expect("a job id");
    assert_eq!(job["offline"], serde_json::json!([]), "{job:#}");
    let running = chain.wait_job(id, Duration::from_secs(5), "device running", |j| {
        rows(j).iter().all(|d| d["state"] == "running")
    });
    chain.step(&format!(
        "job {id} running on a, b and c {:.0} ms after `trawl capture start` was run",
        asked.elapsed().as_secs_f64() * 1e3
    ));
    for (device, iface) in DEVICES {
        let r = row(&running, device);
        assert_eq!(r["interface"], iface, "the capture interface by default");
        assert_eq!(r["filter_mode"], "kernel");
    }

    // Traffic: what the filter keeps, and UDP it must leave out.
    let udp_sink = chain.devs[2]
        .thread(|| UdpSocket::bind((C_ADDR, 6000)).expect("bind UDP 6000"))
        .join()
        .unwrap();
    chain.devs[0]
        .thread(|| {
            let s = UdpSocket::bind((A_ADDR, 0)).unwrap();
            for i in 0..50u8 {
                s.send_to(&[i; 100], (C_ADDR, 6000)).unwrap();
            }
        })
        .join()
        .unwrap();
    ping(&chain.devs[0], C_ADDR, 20, "0.02");
    ping(&chain.devs[2], A_ADDR, 10, "0.02");
    tcp_transfer(&chain.devs[0], &chain.devs[2], C_ADDR, 5001, 1 << 20);
    drop(udp_sink);
    chain.step("traffic done: 50 UDP datagrams, 30 pings a↔c, 1 MiB over TCP a→c:5001");

    let (ok, _, stderr) = chain
        .api
        .client(&["capture", "stop", &id.to_string(), "--wait"]);
    assert!(ok, "trawl capture stop: {stderr}");
    let done = chain.wait_job(id, Duration::from_secs(15), "end", |j| {
        j["state"] == "finished"
    });
    chain.step("job stopped and finished on every device");
    let references: Vec<Vec<Pkt>> = dumps
        .into_iter()
        .enumerate()
        .map(|(i, (t, path))| {
            stop_tcpdump(&chain, t, DEVICES[i].1);
            reference(&path)
        })
        .collect();

    let file = chain.download(id);
    let (names, by_iface) = read(&file);
    assert_eq!(names, ["a/ab", "b/ba", "c/cb"], "one interface per device");
    let mut total = (0u64, 0u64);
    for (i, (device, iface)) in DEVICES.iter().enumerate() {
        let want = &references[i];
        // The traffic is what the test made: echo requests and replies and the TCP flow.
        assert!(want.len() > 60, "{device}: tcpdump saw only {}", want.len());
        let got = by_iface
            .get(&format!("{device}/{iface}"))
            .cloned()
            .unwrap_or_default();
        assert_same_packets(&format!("{device}/{iface}"), &got, want);
        let r = row(&done, device);
        assert_eq!(r["state"], "finished");
        assert_eq!(r["reason"], "stopped");
        let bytes: u64 = want.iter().map(|p| p.data.len() as u64).sum();
        assert_eq!(
            (u(&r["result"]["packets"]), u(&r["result"]["bytes"])),
            (want.len() as u64, bytes),
            "{device}: the agent's result"
        );
        assert_eq!(
            (u(&r["stored"]["packets"]), u(&r["stored"]["bytes"])),
            (want.len() as u64, bytes),
            "{device}: what the server stored"
        );
        let drops = &r["result"]["drops"];
        assert_eq!(
            (
                u(&drops["kernel"]),
                u(&drops["interface"]),
                u(&drops["spool"])
            ),
            (0, 0, 0),
            "{device}: drops"
        );
        let (s, e) = (u(&r["started_ns"]), u(&r["ended_ns"]));
        assert!(
            got.iter().all(|p| p.ns >= s && p.ns <= e),
            "{device}: packets within the job's start and end"
        );
        chain.step(&format!(
            "{device}/{iface}: {} packets, {bytes} bytes, as tcpdump '{FILTER}'",
            want.len()
        ));
        total.0 += want.len() as u64;
        total.1 += bytes;
    }
    assert_eq!(
        (u(&done["totals"]["packets"]), u(&done["totals"]["bytes"])),
        total
    );
    assert_eq!(u(&done["totals"]["stored_packets"]), total.0);
    // What the table says.
    let (ok, shown, _) = chain
        .api
        .client(&["capture", "show", &id.to_string(), "--bpf"]);
    assert!(ok);
    assert!(
        shown.contains("a/ab: ") && shown.contains("(000) ldh      [12]"),
        "{shown}"
    );
    chain.step("done");
}

/// Two jobs at once under steady traffic: `--max-packets 100` ends with exactly 100 packets on
/// each device; `--duration 5` ends each device's capture five seconds after it began, within
/// a second's margin on the wall clock. Then c's agent is stopped during a job without limits
/// (its part ends as `agent_stopped`, delivered and reported), and a job on a, b and c reports
/// c offline at once and runs on a and b.
#[test]
fn job_limits_end_each_device_exactly() {
    skip_unless_possible!("job_limits_end_each_device_exactly");
    let mut chain = Chain::new("job_limits", "jlim");
    let steady = Steady::start(&chain.devs[0], &chain.devs[2], C_ADDR, 5001);
    chain.step("steady traffic a→c: pings every 10 ms, TCP to port 5001 every 20 ms");
    std::thread::sleep(Duration::from_millis(300));

    let t_duration = Instant::now();
    let by_duration = chain.start_job(&["--devices", "a,b,c", "-f", FILTER, "--duration", "5"]);
    let by_packets = chain.start_job(&["--devices", "a,b,c", "-f", FILTER, "--max-packets", "100"]);
    let (id_d, id_p) = (
        by_duration["id"].as_i64().unwrap(),
        by_packets["id"].as_i64().unwrap(),
    );
    let packets_done = chain.wait_job(id_p, Duration::from_secs(10), "end", |j| {
        j["state"] == "finished"
    });
    chain.step(&format!("job {id_p} (--max-packets 100) finished"));
    let file = chain.download(id_p);
    let (_, by_iface) = read(&file);
    for (device, iface) in DEVICES {
        let r = row(&packets_done, device);
        assert_eq!(r["reason"], "max_packets", "{packets_done:#}");
        assert_eq!(u(&r["result"]["packets"]), 100, "{device}");
        assert_eq!(u(&r["stored"]["packets"]), 100, "{device}");
        assert_eq!(
            by_iface[&format!("{device}/{iface}")].len(),
            100,
            "{device}"
        );
    }

    let duration_done = chain.wait_job(id_d, Duration::from_secs(15), "end", |j| {
        j["state"] == "finished"
    });
    let took = t_duration.elapsed();
    chain.step(&format!(
        "job {id_d} (--duration 5) finished on every device {:.2} s after it was asked for",
        took.as_secs_f64()
    ));
    assert!(
        took < Duration::from_millis(6500),
        "the duration job took {took:?} from the request to its end on every device"
    );
    let file = chain.download(id_d);
    let (_, by_iface) = read(&file);
    for (device, iface) in DEVICES {
        let r = row(&duration_done, device);
        assert_eq!(r["reason"], "duration", "{duration_done:#}");
        let (s, e) = (u(&r["started_ns"]), u(&r["ended_ns"]));
        let lasted = (e - s) as f64 / 1e9;
        assert!((4.0..=6.0).contains(&lasted), "{device}: lasted {lasted} s");
        let got = &by_iface[&format!("{device}/{iface}")];
        let (first, last) = (got.first().unwrap().ns, got.last().unwrap().ns);
        assert!(
            first >= s && last < s + 5_000_000_000,
            "{device}: packets within the 5 s"
        );
        assert!(
            last > s + 4_800_000_000,
            "{device}: capture went on to the end (last packet {:.3} s in)",
            (last - s) as f64 / 1e9
        );
        assert_eq!(u(&r["result"]["packets"]), got.len() as u64);
        assert_eq!(u(&r["stored"]["packets"]), got.len() as u64);
        chain.step(&format!(
            "{device}: {} packets between {:.3} s and {:.3} s of a window of {lasted:.3} s",
            got.len(),
            (first - s) as f64 / 1e9,
            (last - s) as f64 / 1e9
        ));
    }

    // c's agent stops (SIGTERM) in the middle of a job without limits: it ends its part
    // ("agent_stopped"), delivers and reports it within the agent's 10 s bound.
    let open_ended = chain.start_job(&["--devices", "c", "-f", FILTER]);
    let id_open = open_ended["id"].as_i64().unwrap();
    chain.wait_job(id_open, Duration::from_secs(5), "device running", |j| {
        row(j, "c")["state"] == "running"
    });
    std::thread::sleep(Duration::from_millis(500));
    let agent_c = chain.agents[2].take().unwrap();
    let (_, took) = agent_c.terminate(Duration::from_secs(30));
    chain.step(&format!(
        "c's agent stopped {:.1} s after SIGTERM, a job running",
        took.as_secs_f64()
    ));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let ended = chain.job(id_open);
    let r = row(&ended, "c");
    assert_eq!(r["state"], "finished", "{ended:#}");
    assert_eq!(r["reason"], "agent_stopped");
    assert!(u(&r["result"]["packets"]) > 0);
    assert_eq!(r["result"]["packets"], r["stored"]["packets"], "{ended:#}");

    // Then a job on a, b and c reports c offline at once.
    chain.wait_polling("c", false);
    let asked = Instant::now();
    let job = chain.start_job(&["--devices", "a,b,c", "-f", FILTER, "--duration", "1"]);
    let answered = asked.elapsed();
    chain.step(&format!(
        "job with c's agent stopped: answered in {:.0} ms",
        answered.as_secs_f64() * 1e3
    ));
    assert!(answered < Duration::from_secs(3), "{answered:?}");
    assert_eq!(job["offline"], serde_json::json!(["c"]), "{job:#}");
    assert_eq!(row(&job, "c")["state"], "offline");
    let id = job["id"].as_i64().unwrap();
    let done = chain.wait_job(id, Duration::from_secs(10), "end", |j| {
        j["state"] == "finished"
    });
    for device in ["a", "b"] {
        assert_eq!(row(&done, device)["reason"], "duration", "{done:#}");
        assert!(u(&row(&done, device)["result"]["packets"]) > 0);
    }
    assert_eq!(row(&done, "c")["state"], "offline");
    let sent = steady.stop();
    chain.step(&format!("traffic stopped: {sent:?}"));
    chain.step("done");
}

/// `count` Ethernet frames from a's `ab` to b's `ba`, tagged VLAN `vid`, each an ICMP echo
/// request 10.78.100.1 → 10.78.100.2, as a pcap file for tcpreplay.
fn tagged_pings(path: &Path, vid: u16, count: u16) {
    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
    let mut file = Vec::new();
    // pcap 2.4, microseconds; zone, accuracy, snap length, Ethernet.
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    for seq in 0..count {
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
        icmp.extend_from_slice(&seq.to_be_bytes());
        icmp.extend_from_slice(&[0x5a; 32]);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 78, 100, 1, 10, 78, 100, 2,
        ];
        ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = vec![0x02, 0x78, 0, 0, 0x0a, 0x02, 0x02, 0x78, 0, 0, 0x0a, 0x01];
        frame.extend_from_slice(&[0x81, 0x00]);
        frame.extend_from_slice(&vid.to_be_bytes());
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&icmp);
        for v in [u32::from(seq), 0, frame.len() as u32, frame.len() as u32] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&frame);
    }
    std::fs::write(path, file).unwrap();
}

/// The filter trap. `vlan 100 and icmp` runs in the agent on frames with their VLAN tag put
/// back: on b the receive path takes the tag out of the frame before any socket sees it, so the
/// same program in the kernel would miss every tagged frame there; the job must match tcpdump
/// (which uses the kernel's VLAN metadata) on the sending and the receiving side.
/// `inbound and icmp` runs in the kernel and matches tcpdump's `inbound`. `vlan and inbound`
/// is refused with the reason.
#[test]
fn vlan_runs_in_userspace_and_inbound_in_the_kernel() {
    skip_unless_possible!("vlan_runs_in_userspace_and_inbound_in_the_kernel");
    let chain = Chain::new("job_filters", "jfilt");
    let frames = chain.path("tagged.pcap");
    tagged_pings(&frames, 100, 20);

    let vlan_expr = "vlan 100 and icmp";
    let inbound_expr = "inbound and icmp";
    let (t_va, f_va) = chain.tcpdump(0, vlan_expr, "tcpdump-a-vlan.pcap");
    let (t_vb, f_vb) = chain.tcpdump(1, vlan_expr, "tcpdump-b-vlan.pcap");
    let (t_ib, f_ib) = chain.tcpdump(1, inbound_expr, "tcpdump-b-inbound.pcap");
    // libpcap filters the packets of the ring block that is current when its filter is set in
    // userspace, where `inbound` has no data: tcpdump drops them (without this, the first
    // tagged request). One reply inbound on ba goes into that block before the jobs start.
    ping(&chain.devs[1], A_ADDR, 1, "0.2");
    std::thread::sleep(Duration::from_millis(200));

    let vlan = chain.start_job(&["--devices", "a,b", "-f", vlan_expr]);
    let inbound = chain.start_job(&["--devices", "b", "-f", inbound_expr]);
    // The control: the tag read from the frame's bytes, in the kernel (no `vlan` keyword).
    let in_kernel = chain.start_job(&["--devices", "b", "-f", "ether[12:2] = 0x8100"]);
    assert_eq!(row(&in_kernel, "b")["filter_mode"], "kernel");
    for d in ["a", "b"] {
        assert_eq!(row(&vlan, d)["filter_mode"], "userspace", "{vlan:#}");
    }
    assert_eq!(row(&inbound, "b")["filter_mode"], "kernel", "{inbound:#}");
    let ids = [
        vlan["id"].as_i64().unwrap(),
        inbound["id"].as_i64().unwrap(),
        in_kernel["id"].as_i64().unwrap(),
    ];
    for id in ids {
        chain.wait_job(id, Duration::from_secs(5), "device running", |j| {
            rows(j).iter().all(|d| d["state"] == "running")
        });
    }
    // 20 tagged echo requests a→b (b has no VLAN 100: no answer), untagged pings a→c through
    // b (inbound on ba: the requests) and b→a (inbound on ba: the replies).
    chain.devs[0].exec_ok(&[
        "tcpreplay",
        "-q",
        "-i",
        "ab",
        "-p",
        "200",
        frames.to_str().unwrap(),
    ]);
    ping(&chain.devs[0], C_ADDR, 10, "0.02");
    ping(&chain.devs[1], A_ADDR, 5, "0.02");
    std::thread::sleep(Duration::from_millis(100));
    chain.step("traffic done: 20 tagged echo requests a→b, 10 untagged pings a→c, 5 b→a");
    for id in ids {
        let (ok, _, stderr) = chain
            .api
            .client(&["capture", "stop", &id.to_string(), "--wait"]);
        assert!(ok, "{stderr}");
    }
    let va = reference(&{
        stop_tcpdump(&chain, t_va, "ab (vlan)");
        f_va
    });
    let vb = reference(&{
        stop_tcpdump(&chain, t_vb, "ba (vlan)");
        f_vb
    });
    let ib = reference(&{
        stop_tcpdump(&chain, t_ib, "ba (inbound)");
        f_ib
    });
    assert_eq!(va.len(), 20, "tagged echo requests on ab");
    assert_eq!(vb.len(), 20, "tagged echo requests on ba");
    assert!(
        va.iter().all(|p| p.data[12..14] == [0x81, 0x00]),
        "tcpdump's packets carry their tag"
    );
    assert_eq!(
        ib.len(),
        20 + 10 + 5,
        "inbound ICMP on ba: the tagged requests, the requests a→c, the replies to b"
    );

    let (_, got) = read(&chain.download(ids[0]));
    assert_same_packets("a/ab vlan", &got["a/ab"], &va);
    assert_same_packets("b/ba vlan", &got["b/ba"], &vb);
    let (_, got) = read(&chain.download(ids[1]));
    assert_same_packets("b/ba inbound", &got["b/ba"], &ib);
    let control = chain.job(ids[2]);
    assert_eq!(
        u(&row(&control, "b")["result"]["packets"]),
        0,
        "on b the kernel sees the tagged frames without their tag: {control:#}"
    );
    chain.step(
        "vlan (userspace) and inbound (kernel) jobs match tcpdump; the tag test run in the \
         kernel on b saw none of the 20 tagged frames",
    );

    let (ok, _, stderr) = chain.api.client(&[
        "capture",
        "start",
        "--devices",
        "b",
        "-f",
        "vlan and inbound",
    ]);
    assert!(!ok, "vlan and inbound must be refused");
    assert!(
        stderr.contains("inbound/outbound") && stderr.contains("VLAN"),
        "{stderr}"
    );
    chain.step(&format!("`vlan and inbound` refused: {}", stderr.trim()));
}

/// An agent stopped (SIGTERM) during a job while its uplink is down keeps the job's batches
/// and result; started again with the uplink back, it sends both: the job ends with every
/// packet the agent took stored, and nothing of the job is left on the device.
#[test]
fn a_job_outlives_an_agent_restart_with_its_uplink_down() {
    skip_unless_possible!("a_job_outlives_an_agent_restart_with_its_uplink_down");
    let mut chain = Chain::new("job_restart", "jrst");
    let steady = Steady::start(&chain.devs[0], &chain.devs[2], C_ADDR, 5001);
    let job = chain.start_job(&["--devices", "a", "-f", FILTER]);
    let id = job["id"].as_i64().unwrap();
    chain.wait_job(id, Duration::from_secs(5), "device running", |j| {
        row(j, "a")["state"] == "running"
    });
    std::thread::sleep(Duration::from_secs(1));
    chain.devs[0].ip(&["link", "set", "dev", "uplink", "down"]);
    let before = u(&row(&chain.job(id), "a")["stored"]["packets"]);
    chain.step(&format!(
        "uplink of a down; the server has {before} packets of the job"
    ));
    std::thread::sleep(Duration::from_secs(1));
    let (_, took) = chain.agents[0]
        .take()
        .unwrap()
        .terminate(Duration::from_secs(30));
    chain.step(&format!(
        "a's agent stopped {:.1} s after SIGTERM, unable to send",
        took.as_secs_f64()
    ));
    assert!(took < Duration::from_secs(15), "{took:?}");
    let state = chain.path("agent-a");
    assert!(
        state.join(format!("jobs/{id}.json")).exists(),
        "the result is kept"
    );
    assert_eq!(row(&chain.job(id), "a")["state"], "running");

    let sent = steady.stop();
    chain.step(&format!("traffic stopped: {sent:?}"));
    chain.devs[0].ip(&["link", "set", "dev", "uplink", "up"]);
    chain.agents[0] = Some(chain.restart_agent(0));
    let done = chain.wait_job(id, Duration::from_secs(30), "end", |j| {
        j["state"] == "finished"
    });
    let r = row(&done, "a");
    assert_eq!(r["reason"], "agent_stopped", "{done:#}");
    let (result, stored) = (u(&r["result"]["packets"]), u(&r["stored"]["packets"]));
    assert!(
        result > before,
        "packets were taken while the uplink was down"
    );
    assert_eq!(stored, result, "every packet taken is stored: {done:#}");
    assert_eq!(u(&r["result"]["drops"]["spool"]), 0);
    let file = chain.download(id);
    assert_eq!(read(&file).1["a/ab"].len() as u64, result);
    // Nothing of the job is left on the device.
    let deadline = Instant::now() + Duration::from_secs(5);
    while state.join(format!("spool/job-{id}-ab")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!state.join(format!("jobs/{id}.json")).exists());
    assert!(!state.join(format!("spool/job-{id}-ab")).exists());
    chain.step(&format!(
        "after the restart: {result} packets reported and stored ({before} before the cut)"
    ));
}

/// What stays the same of a packet from hop to hop in this chain, computed here from the raw
/// Ethernet frame independently of trawl: the IPv4 header without TTL and header checksum, and
/// everything after it. (Forwarding by b changes only those and the link layer.)
fn hop_key(p: &Pkt) -> Vec<u8> {
    let ip = &p.data[14..];
    let mut k = ip.to_vec();
    k[8] = 0;
    k[10] = 0;
    k[11] = 0;
    k.extend_from_slice(&p.orig_len.to_le_bytes());
    k
}

/// A job on all three devices with `icmp or tcp port 5001`, watched live from its start by two
/// views at once (`trawl capture watch --json`, and `--pcap` into a file) while traffic crosses
/// the chain: a↔c packets are seen by a, b and c, a↔b packets by a and b, b→c packets by c
/// only. Each view shows every distinct packet exactly once — the union of what tcpdump saw on
/// the three interfaces, copies recognised here by their bytes without TTL and checksum — in
/// time order (a packet out of order must be flagged late and counted), each line marked with
/// its device; the duplicates removed are tcpdump's total minus the distinct packets. The
/// median time from capture to line is under a second (measured here on the lines as they
/// arrive, and printed by the view).
#[test]
fn watch_shows_every_packet_once_in_time_order_within_a_second() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};

    skip_unless_possible!("watch_shows_every_packet_once_in_time_order_within_a_second");
    let chain = Chain::new("watch", "jwatch");
    let dumps: Vec<(Tcpdump, PathBuf)> = (0..3)
        .map(|i| chain.tcpdump(i, FILTER, &format!("tcpdump-{}.pcap", DEVICES[i].0)))
        .collect();
    let job = chain.start_job(&["--devices", "a,b,c", "-f", FILTER, "--name", "watched"]);
    let id = job["id"].as_i64().expect("a job id");
    chain.wait_job(id, Duration::from_secs(5), "device running", |j| {
        rows(j).iter().all(|d| d["state"] == "running")
    });
    let wall_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let watching_since = wall_ns();

    // The JSON view: each line with the time it reached us.
    let mut json_view = chain
        .api
        .client_command(&["capture", "watch", &id.to_string(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trawl capture watch --json");
    let lines: Arc<Mutex<Vec<(u64, Value)>>> = Arc::default();
    let reader = {
        let stdout = json_view.stdout.take().unwrap();
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("a line from the view");
                let at = wall_ns();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                lines.lock().unwrap().push((at, v));
            }
        })
    };
    // The pcapng view, into a file.
    let pcap_path = chain.path("watch.pcapng");
    let mut pcap_view = chain
        .api
        .client_command(&["capture", "watch", &id.to_string(), "--pcap"])
        .stdout(Stdio::from(std::fs::File::create(&pcap_path).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trawl capture watch --pcap");
    chain.step(&format!("job {id} running; two views watching"));

    const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 78, 10, 2);
    ping(&chain.devs[0], C_ADDR, 100, "0.01");
    ping(&chain.devs[2], A_ADDR, 10, "0.05");
    ping(&chain.devs[0], B_ADDR, 10, "0.05");
    ping(&chain.devs[1], C_ADDR, 5, "0.05");
    tcp_transfer(&chain.devs[0], &chain.devs[2], C_ADDR, 5001, 256 << 10);
    ping(&chain.devs[2], A_ADDR, 5, "0.2");
    chain.step("traffic done: pings a↔c, a→b, b→c, 256 KiB over TCP a→c:5001");

    let (ok, _, stderr) = chain
        .api
        .client(&["capture", "stop", &id.to_string(), "--wait"]);
    assert!(ok, "trawl capture stop: {stderr}");
    let wait_exit = |child: &mut std::process::Child, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "{what}: {status}: {err}");
                return err;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{what} did not end within 20 s of the job's end");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let summary = wait_exit(&mut json_view, "trawl capture watch --json");
    wait_exit(&mut pcap_view, "trawl capture watch --pcap");
    reader.join().unwrap();
    chain.step(&format!(
        "both views ended with the job: {}",
        summary.trim()
    ));

    // The reference: what tcpdump saw on the three interfaces; distinct packets by hop key.
    let mut seen: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
    let mut total = 0usize;
    for (i, (t, path)) in dumps.into_iter().enumerate() {
        stop_tcpdump(&chain, t, DEVICES[i].1);
        let mut per: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for p in reference(&path) {
            *per.entry(hop_key(&p)).or_default() += 1;
            total += 1;
        }
        for (k, n) in per {
            let counts = seen.entry(k).or_insert_with(|| vec![0; 3]);
            counts[i] = n;
        }
    }
    let distinct: usize = seen.values().map(|c| *c.iter().max().unwrap()).sum();
    let on_all_three = seen.values().filter(|c| c.iter().all(|&n| n > 0)).count();
    assert!(
        on_all_three > 50,
        "a↔c traffic is seen by all three: only {on_all_three} packets"
    );
    chain.step(&format!(
        "tcpdump: {total} packets on the three interfaces, {distinct} distinct ({on_all_three} seen by all three)"
    ));

    // The pcapng view: the distinct packets, once each.
    let (names, by_iface, reversals) = read_any(&pcap_path);
    let reversals = reversals.len();
    assert_eq!(names, ["a/ab", "b/ba", "c/cb"], "one interface per device");
    let mut got: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for p in by_iface.values().flatten() {
        *got.entry(hop_key(p)).or_default() += 1;
    }
    let want: BTreeMap<Vec<u8>, usize> = seen
        .iter()
        .map(|(k, c)| (k.clone(), *c.iter().max().unwrap()))
        .collect();
    let missing = want.iter().filter(|(k, n)| got.get(*k) != Some(n)).count();
    let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
    assert_eq!(
        (missing, extra, got.values().sum::<usize>()),
        (0, 0, distinct),
        "the pcapng view: every distinct packet once"
    );

    // The JSON view: the same number of packets, in time order but for those marked late,
    // each marked with its device; the counts it reports are what it showed.
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    assert_eq!(
        lines.len(),
        distinct,
        "the JSON view shows each packet once"
    );
    let mut last = 0u64;
    let mut late = 0u64;
    let mut latencies = Vec::new();
    for (at, v) in &lines {
        let ts = u(&v["ts_ns"]);
        if v["late"] == true {
            late += 1;
        } else {
            assert!(ts >= last, "out of time order and not marked late: {v}");
            last = ts;
        }
        let device = v["device"].as_str().unwrap();
        let label = format!(" {device}/{} ", v["interface"].as_str().unwrap());
        assert!(
            v["text"].as_str().unwrap().contains(&label),
            "each line names its device: {v}"
        );
        if ts >= watching_since {
            latencies.push(at.saturating_sub(ts));
        }
    }
    // In the pcapng view, a packet earlier than the one before must carry the late comment.
    let mut r = CaptureReader::open(&pcap_path).unwrap();
    let (mut last, mut unmarked) = (0u64, Vec::new());
    while let Some(p) = r.next_packet().unwrap() {
        let ns = p.ts.as_nanos();
        if p.comments().any(|c| c.starts_with("late")) {
            continue;
        }
        if ns < last {
            unmarked.push(ns);
        }
        last = ns;
    }
    assert!(
        unmarked.is_empty(),
        "pcapng view out of order, unmarked: {unmarked:?}"
    );
    assert!(
        summary.contains(&format!("{} packets shown", lines.len()))
            && summary.contains(&format!("{} duplicates removed", total - distinct))
            && summary.contains(&format!("{late} late")),
        "the view's counts: {summary}"
    );
    latencies.sort_unstable();
    assert!(latencies.len() > 100, "packets captured while watching");
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(
        median < 1_000_000_000,
        "median capture to line {} ms",
        median / 1_000_000
    );
    chain.step(&format!(
        "capture to line over {} packets: median {} ms, 99th percentile {} ms; {} duplicates removed, {late} late; pcapng view reversals {}",
        latencies.len(),
        median / 1_000_000,
        p99 / 1_000_000,
        total - distinct,
        reversals
    ));
}
