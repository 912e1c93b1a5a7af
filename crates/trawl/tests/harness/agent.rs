//! `trawl agent` as a user runs it on a device: a subprocess in the device's network namespace,
//! with `--json --status-every 1`; ready when it says it is streaming, its status lines read
//! from stderr, its final counters from stdout after SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::{Netns, sh};
use super::read_all;

/// The final counters of one stream, as `trawl agent --json` prints them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct StreamCounters {
    pub stream: String,
    pub captured: u64,
    pub batches_spooled: u64,
    pub batches_acked: u64,
    pub packets_acked: u64,
    pub duplicates: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub spool_drops: u64,
    pub refused_batches: u64,
    pub send_failures: u64,
    pub spooled_bytes: u64,
    pub connected: bool,
}

/// One status line (`STREAM: captured N packets, server has M (B batches), spooled S bytes, …`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusLine {
    pub captured: u64,
    pub server_has: u64,
    pub spooled_bytes: u64,
    pub unreachable: bool,
}

pub fn parse_status(line: &str) -> Option<StatusLine> {
    let rest = line.strip_prefix("trawl agent: ")?;
    let (_stream, rest) = rest.split_once(": captured ")?;
    let number_after = |key: &str| -> Option<u64> {
        let at = rest.find(key)? + key.len();
        rest[at..].split_whitespace().next()?.parse().ok()
    };
    Some(StatusLine {
        captured: rest.split_whitespace().next()?.parse().ok()?,
        server_has: number_after("server has ")?,
        spooled_bytes: number_after("spooled ")?,
        unreachable: rest.ends_with("server unreachable"),
    })
}

/// A running `trawl agent`; killed when dropped. Its log is printed when the test ends, so a
/// failing test shows it.
pub struct Agent {
    pub label: String,
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
    stdout: Option<JoinHandle<String>>,
}

impl Agent {
    /// `trawl agent ARGS… --json --status-every 1` in `ns`; returns once it says it is
    /// streaming (its capture sockets are open then).
    pub fn start(label: &str, ns: &Netns, args: &[&str]) -> Agent {
        let mut child = ns
            .command(env!("CARGO_BIN_EXE_trawl"))
            .arg("agent")
            .args(args)
            .args(["--json", "--status-every", "1"])
            // The agent honours HTTPS_PROXY and the like: talk to the server directly.
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run trawl agent");
        let stdout = Some(read_all(child.stdout.take().expect("stdout")));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Agent {
            label: label.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stdout,
        };
        agent.wait_line(Duration::from_secs(60), "its \"streaming\" line", |l| {
            l.starts_with("trawl agent: device ") && l.contains(" streaming ")
        });
        agent
    }

    /// The device id it enrolled as (from its first start's "enrolled as device N" line).
    pub fn enrolled_device(&self) -> String {
        self.seen
            .iter()
            .find_map(|l| l.strip_prefix("enrolled as device "))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no \"enrolled as device\" line:\n{}",
                    self.label,
                    self.log()
                )
            })
    }

    /// Everything it said so far.
    pub fn log(&self) -> String {
        self.seen.join("\n")
    }

    /// Reads stderr until a line satisfies `want`; returns it. Panics at the deadline, or if
    /// the agent ends first.
    pub fn wait_line(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> String {
        // A line already read counts.
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        self.wait_new_line(within, what, want)
    }

    /// As [`Agent::wait_line`], but only lines not read yet count.
    pub fn wait_new_line(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no {what} within {:.0} s; it said:\n{}",
                    self.label,
                    within.as_secs_f64(),
                    self.log()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "{}: ended ({status:?}) before {what}; it said:\n{}",
                        self.label,
                        self.log()
                    )
                }
            }
        }
    }

    /// Waits for a status line satisfying `want`; returns it.
    pub fn wait_status(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&StatusLine) -> bool,
    ) -> StatusLine {
        let line = self.wait_new_line(within, what, |l| parse_status(l).is_some_and(|s| want(&s)));
        parse_status(&line).expect("a status line")
    }

    /// SIGTERM; the agent must end within `within` and successfully. Returns its final
    /// counters (`--json`) and how long it took to end.
    pub fn terminate(mut self, within: Duration) -> (Vec<StreamCounters>, Duration) {
        sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let signalled = Instant::now();
        let deadline = signalled + within;
        let (status, took) = loop {
            // Keep reading stderr, so the log is complete and the pipe never fills.
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                break (status, signalled.elapsed());
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: still running {:.0} s after SIGTERM (`trawl agent --help`: sending goes \
                     on for up to 10 s); it said:\n{}",
                    self.label,
                    within.as_secs_f64(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The rest of stderr, to its end.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stdout = self
            .stdout
            .take()
            .expect("stdout")
            .join()
            .unwrap_or_default();
        assert!(
            status.success(),
            "{}: exited with {status}; it said:\n{}",
            self.label,
            self.log()
        );
        let counters: Vec<StreamCounters> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{}: --json printed no counters ({e}): {stdout:?}; it said:\n{}",
                self.label,
                self.log()
            )
        });
        (counters, took)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        eprintln!("--- {} said:\n{}", self.label, self.log());
    }
}
