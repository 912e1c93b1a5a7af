//! Network namespaces for end-to-end tests: made with `ip netns`, joined by veth pairs, and
//! deleted by a guard even when a test fails. Commands run inside with `ip netns exec` (which
//! execs the command: the child's pid is the command's own, so it can be signalled), and test
//! threads enter one with `setns`.
//!
//! Names carry a per-test tag and the test process's pid; namespaces of an earlier run whose
//! process is gone (killed before its guards ran) are removed when a new one is made.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Every namespace these tests make starts with this.
const PREFIX: &str = "trawl-e2e-";

/// Why namespace tests cannot run here, if they cannot: not root, or no `ip netns`.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need it)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Err(e) => Some(format!("`ip` (iproute2) cannot be run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`ip netns list` fails: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Runs a command, which must succeed; returns its stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted (with whatever still runs in it) when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Makes namespace `trawl-e2e-{tag}-{pid}-{role}` with loopback up and IPv6 off (its router
    /// solicitations and address checks would put packets of their own on the links).
    pub fn new(tag: &str, role: &str) -> Netns {
        assert!(!tag.contains('-'), "a tag without '-': the pid follows it");
        remove_orphans();
        let name = format!("{PREFIX}{tag}-{}-{role}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS…`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// A command that runs `program` in this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `args` in this namespace; it must succeed. Returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Runs `f` on a new thread that has entered this namespace (sockets made there stay in it).
    pub fn thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.name);
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: `file` is an open namespace file; setns moves only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

/// Kills what still runs in namespace `name` (processes the tests started there), then deletes it.
fn delete(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).output();
}

/// Deletes namespaces of these tests whose test process no longer exists.
fn remove_orphans() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            delete(name);
        }
    }
}

/// One end of a veth pair: its namespace, name, MAC address and IPv4 address with prefix length.
pub struct End<'a> {
    pub ns: &'a Netns,
    pub name: &'a str,
    pub mac: &'a str,
    pub cidr: &'a str,
}
/// Joins device `n` (1–9) to the server namespace `srv`: `up{n}` at `10.{net}.{n}.1` in `srv`,
/// `uplink` at `10.{net}.{n}.2` in `dev`, MACs `02:{net}:00:00:0{n}:01/02`.
pub fn uplink(srv: &Netns, dev: &Netns, net: u8, n: u8) {
    veth(
        &End {
            ns: srv,
            name: &format!("up{n}"),
            mac: &format!("02:{net}:00:00:0{n}:01"),
            cidr: &format!("10.{net}.{n}.1/24"),
        },
        &End {
            ns: dev,
            name: "uplink",
            mac: &format!("02:{net}:00:00:0{n}:02"),
            cidr: &format!("10.{net}.{n}.2/24"),
        },
    );
}

/// Joins two namespaces with a veth pair, addresses both ends and brings them up.
pub fn veth(a: &End, b: &End) {
    a.ns.ip(&[
        "link", "add", a.name, "address", a.mac, "type", "veth", "peer", "name", b.name, "address",
        b.mac, "netns", &b.ns.name,
    ]);
    for end in [a, b] {
        end.ns.ip(&["addr", "add", end.cidr, "dev", end.name]);
        end.ns.ip(&["link", "set", "dev", end.name, "up"]);
    }
}

/// Makes each end know the other's MAC address for good, so that no ARP appears on the link at
/// moments of its own choosing: the link carries only the test's traffic.
pub fn static_neighbours(a: &End, b: &End) {
    for (me, other) in [(a, b), (b, a)] {
        let addr = other.cidr.split('/').next().expect("an address");
        me.ns.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            other.mac,
            "dev",
            me.name,
            "nud",
            "permanent",
        ]);
    }
}

/// `tcpdump -w` on an interface of a namespace: the reference for what was on the wire.
pub struct Tcpdump {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

/// What tcpdump said when it stopped.
#[derive(Debug)]
pub struct TcpdumpReport {
    pub captured: u64,
    pub dropped_by_kernel: u64,
    pub text: String,
}

impl Tcpdump {
    /// Starts tcpdump and returns once it says it is listening.
    pub fn start(ns: &Netns, interface: &str, out: &Path) -> Tcpdump {
        Self::start_filtered(ns, interface, out, None)
    }

    /// The same, keeping only what `filter` (a tcpdump expression) accepts.
    pub fn start_filtered(
        ns: &Netns,
        interface: &str,
        out: &Path,
        filter: Option<&str>,
    ) -> Tcpdump {
        let mut child = ns
            .command("tcpdump")
            // --immediate-mode and -U: every packet reaches the file at once, so none is left
            // in a ring block when tcpdump is stopped. -B: a buffer like the agent's.
            .args([
                "-i",
                interface,
                "-n",
                "-U",
                "--immediate-mode",
                "-B",
                "32768",
            ])
            .args(["-Z", "root", "--time-stamp-precision=nano", "-w"])
            .arg(out)
            .args(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts (scripts/deps.sh installs it)");
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
        if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
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

    /// Stops tcpdump (SIGINT: it writes the rest and closes the file) and returns its counts.
    pub fn stop(mut self) -> TcpdumpReport {
        sh(&["kill", "-INT", &self.child.id().to_string()]);
        let status = self.child.wait().expect("tcpdump exits");
        let text = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(status.success(), "tcpdump: {status}: {text}");
        let count = |what: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_suffix(what))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no \"N {what}\" in tcpdump's report: {text}"))
        };
        TcpdumpReport {
            captured: count("packets captured"),
            dropped_by_kernel: count("packets dropped by kernel"),
            text,
        }
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        // Ends tcpdump if a test failed before `stop`; harmless once it has exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
