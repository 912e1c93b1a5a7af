//! Capture jobs on the agent (docs/protocol.md, "Commands and capture jobs").
//!
//! ```text
//! commands thread: hello ─▶ GET /api/v1/agent/commands (held ≤ 25 s) ─▶ start_job / stop_job
//!                                                                         │
//! one thread per job: open AF_PACKET (the job's program, snap length) ◀───┘
//!     └▶ a stream of its own (job-ID-IF): capture (limits) → spooler → uplink, as any stream
//!     └▶ POST …/started; at the end, once its batches are delivered, POST …/result
//! ```
//!
//! The command thread holds one long poll open at a time, so a command reaches the agent as
//! soon as the server queues it. It says hello (interfaces, unfinished jobs) when it starts and
//! after every outage. It is never waited for when the agent stops: it holds nothing to save.
//!
//! A job's stream sends a batch at least every `job_heartbeat` (250 ms), empty if nothing was
//! captured, so that a live view of the job sees its watermark move while it is quiet; its
//! last batch states `u64::MAX`: nothing more comes on it.
//!
//! A job's thread captures until the first of its limits, its stop command, or the agent's
//! stop; then the stream's uplink sends what is left (for at most the drain time if the agent
//! is stopping) and the result is reported. The result is also written to `STATE/jobs/ID.json`
//! until the server has it and every batch is delivered: if the agent stops first, the next
//! start sends the batches left in the job's spool and then the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use trawl_bpf::Program;

use crate::agent::{
    AgentConfig, AgentError, CaptureControl, Limits, Shared, SourceSpec, Stream, ns_since_epoch,
    plain_stream_name, spawn_drain, spawn_stream,
};
use crate::source::LINKTYPE_ETHERNET;
use crate::source::afpacket::{AfPacketConfig, AfPacketSource, MAX_SNAPLEN};
use crate::spool::Spool;
use crate::uplink::{ApiError, Command, DeclaredInterface, JobDrops, JobResult, ServerApi};

/// How long the server may hold a command poll.
const POLL_WAIT: Duration = Duration::from_secs(25);

/// A job's packets are put in time order (see `agent::Reorder`): the kernel's ring can hold
/// packets of two CPUs a few microseconds out of order. Each waits until the source's
/// watermark has passed it, or until a packet stamped this much later has been seen.
const REORDER_HOLD: Duration = Duration::from_millis(20);

/// A `start_job` command, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub job: u64,
    pub stream: String,
    pub interface: String,
    pub snaplen: u32,
    pub program: Program,
    /// Run the program in userspace on re-tagged frames, with an accept-all kernel program.
    pub userspace: bool,
    pub limits: Limits,
}

impl JobSpec {
    /// Checks a `start_job` command; the error says what is wrong with it.
    pub fn from_command(c: &Command) -> Result<JobSpec, String> {
        let missing = |field: &str| format!("the start_job command has no {field}");
        let stream = c.stream.clone().ok_or_else(|| missing("stream"))?;
        if plain_stream_name(&stream) != stream || !stream.starts_with("job-") {
            return Err(format!("stream {stream:?} is not a job stream name"));
        }
        let interface = c.interface.clone().ok_or_else(|| missing("interface"))?;
        let link_type = c.link_type.ok_or_else(|| missing("link_type"))?;
        if link_type != LINKTYPE_ETHERNET {
            return Err(format!(
                "link type {link_type}: this agent captures Ethernet (1) only"
            ));
        }
        let snaplen = c.snaplen.unwrap_or(MAX_SNAPLEN);
        if snaplen == 0 || snaplen > MAX_SNAPLEN {
            return Err(format!("snap length {snaplen} is out of range"));
        }
        let program = c.program.clone().ok_or_else(|| missing("program"))?;
        program
            .validate()
            .map_err(|e| format!("the program is not valid: {e}"))?;
        let userspace = match c.filter_mode.as_deref() {
            None | Some("kernel") => false,
            Some("userspace") => true,
            Some(other) => return Err(format!("unknown filter mode {other:?}")),
        };
        Ok(JobSpec {
            job: c.job,
            stream,
            interface,
            snaplen,
            program,
            userspace,
            limits: Limits {
                max_packets: c.max_packets.filter(|n| *n > 0),
                max_bytes: c.max_bytes.filter(|n| *n > 0),
                duration: c.duration_ms.map(Duration::from_millis),
            },
        })
    }
}

/// What is written to `STATE/jobs/ID.json` until the server has the result.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Pending {
    job: u64,
    stream: String,
    result: JobResult,
}

#[derive(Default)]
struct Table {
    /// Every job this process has started (a start seen again is ignored).
    seen: BTreeSet<u64>,
    /// The stop flags of jobs still capturing.
    stops: BTreeMap<u64, Arc<AtomicBool>>,
    /// Jobs whose result the server does not have yet.
    unfinished: BTreeSet<u64>,
}

/// The capture jobs of a running agent.
pub(crate) struct Jobs {
    api: Arc<ServerApi>,
    config: AgentConfig,
    shared: Arc<Shared>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
    table: Mutex<Table>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Jobs {
    /// Resumes the jobs an earlier run left unreported, and starts the command channel.
    pub(crate) fn start(
        api: Arc<ServerApi>,
        config: AgentConfig,
        shared: Arc<Shared>,
        log: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Arc<Jobs> {
        let jobs = Arc::new(Jobs {
            api,
            config,
            shared,
            log,
            table: Mutex::new(Table::default()),
            threads: Mutex::new(Vec::new()),
        });
        for pending in jobs.saved() {
            let me = jobs.clone();
            {
                let mut table = jobs.lock();
                table.seen.insert(pending.job);
                table.unfinished.insert(pending.job);
            }
            jobs.keep(crate::agent::spawn(
                &format!("job {}", pending.job),
                move || me.resume(pending),
            ));
        }
        let me = jobs.clone();
        // Not kept: the agent never waits for it (a poll may be held for 25 s).
        crate::agent::spawn("commands", move || me.command_loop());
        jobs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep(&self, thread: JoinHandle<()>) {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }

    /// Waits for every job's thread (the agent is stopping: each ends by the drain deadline).
    pub(crate) fn wait(&self) {
        loop {
            let thread = self.threads.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match thread {
                Some(t) => {
                    let _ = t.join();
                }
                None => return,
            }
        }
    }

    fn log(&self, message: &str) {
        (self.log)(message)
    }

    fn jobs_dir(&self) -> PathBuf {
        self.config.state_dir.join("jobs")
    }

    fn spool_dir(&self, stream: &str) -> PathBuf {
        self.config.state_dir.join("spool").join(stream)
    }

    /// The interfaces this device can capture on: its `-i` interfaces first.
    fn interfaces(&self) -> Vec<DeclaredInterface> {
        let capture: Vec<String> = self
            .config
            .sources
            .iter()
            .filter_map(|s| match s {
                SourceSpec::Interface(name) => Some(name.clone()),
                SourceSpec::Pcap { .. } => None,
            })
            .collect();
        local_interfaces(&capture)
    }

    /// The command channel: hello, then one long poll after another, until the agent stops.
    fn command_loop(self: Arc<Self>) {
        let mut after = 0i64;
        let mut said_hello = false;
        let mut backoff = Duration::from_millis(500);
        let mut outage: Option<Instant> = None;
        while !self.shared.stopping() {
            let result = if said_hello {
                self.api.poll_commands(after, POLL_WAIT).map(Some)
            } else {
                let unfinished: Vec<u64> = self.lock().unfinished.iter().copied().collect();
                self.api
                    .hello(&self.interfaces(), &unfinished)
                    .map(|()| None)
            };
            match result {
                Ok(commands) => {
                    if let Some(since) = outage.take() {
                        self.log(&format!(
                            "command channel: back after {:.1} s",
                            since.elapsed().as_secs_f64()
                        ));
                    }
                    backoff = Duration::from_millis(500);
                    match commands {
                        None => {
                            said_hello = true;
                            // A fresh cursor: the server hands out only commands that still
                            // mean something, and this process ignores a start it has seen.
                            after = 0;
                        }
                        Some(commands) => {
                            for c in commands {
                                after = after.max(c.id);
                                self.handle(c);
                            }
                        }
                    }
                }
                Err(ApiError::Unauthorized(detail)) => {
                    self.shared.fail(AgentError::Refused(detail));
                    return;
                }
                Err(ApiError::Refused { status: 404, .. }) if !said_hello => {
                    self.log(&format!(
                        "command channel: {} takes no capture jobs (no /api/v1/agent/hello); \
                         jobs are off",
                        self.api.base()
                    ));
                    return;
                }
                Err(e) => {
                    said_hello = false;
                    if outage.is_none() {
                        self.log(&format!(
                            "command channel: cannot reach {}: {e}; trying again",
                            self.api.base()
                        ));
                        outage = Some(Instant::now());
                    }
                    if sleep_unless(&self.shared, backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, c: Command) {
        match c.kind.as_str() {
            "start_job" => {
                if self.shared.stopping() || !self.lock().seen.insert(c.job) {
                    return;
                }
                let stop = Arc::new(AtomicBool::new(false));
                {
                    let mut table = self.lock();
                    table.stops.insert(c.job, stop.clone());
                    table.unfinished.insert(c.job);
                }
                let me = self.clone();
                self.keep(crate::agent::spawn(&format!("job {}", c.job), move || {
                    me.run(&c, stop)
                }));
            }
            "stop_job" => {
                if let Some(stop) = self.lock().stops.get(&c.job) {
                    stop.store(true, Relaxed);
                }
            }
            other => self.log(&format!(
                "command channel: command {} of an unknown kind {other:?} ignored",
                c.id
            )),
        }
    }

    /// Runs one job: capture, deliver, report.
    fn run(self: Arc<Self>, command: &Command, stop: Arc<AtomicBool>) {
        let job = command.job;
        let opened = JobSpec::from_command(command).and_then(|spec| {
            let spool = Spool::open(self.spool_dir(&spec.stream), self.config.spool_max_bytes)
                .map_err(|e| e.to_string())?
                .with_memory(self.config.spool_memory_bytes);
            let (source, soft, started) = self.open_source(&spec)?;
            Ok((spec, source, soft, spool, started))
        });
        let (spec, source, soft, spool, started) = match opened {
            Ok(o) => o,
            Err(e) => {
                self.log(&format!("job {job}: cannot start: {e}"));
                self.lock().stops.remove(&job);
                let result = JobResult {
                    started_ns: None,
                    ended_ns: ns_since_epoch(SystemTime::now()),
                    packets: 0,
                    bytes: 0,
                    drops: JobDrops::default(),
                    reason: format!("error: {e}"),
                };
                let stream = command.stream.clone().unwrap_or_default();
                self.conclude(job, &stream, result, true);
                return;
            }
        };
        let started_ns = ns_since_epoch(started);
        let label = format!("job {job} on {}", spec.interface);
        self.log(&format!(
            "{label}: capturing ({} filter of {} instructions{})",
            if spec.userspace {
                "userspace"
            } else {
                "kernel"
            },
            spec.program.len(),
            describe_limits(&spec.limits)
        ));
        let control = CaptureControl {
            stop: Some(stop),
            limits: spec.limits,
            started,
            batch_delay: self.config.job_batch_delay,
            // Someone may be watching the job live: its watermark must keep moving.
            heartbeat: self.config.job_heartbeat,
            interface: spec.interface.clone(),
            reorder: Some(REORDER_HOLD),
        };
        let stream = spawn_stream(
            spec.stream.clone(),
            (source, soft, spool, control),
            &self.shared,
            &self.api,
            &self.config,
            &self.log,
        );
        if !self.report(&Report::Started(job, started_ns)) {
            self.log(&format!(
                "{label}: could not tell the server the job started (the result will)"
            ));
        }
        while !stream.threads[0].is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lock().stops.remove(&job);
        let end = stream
            .end
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("the capture thread says how it ended");
        self.log(&format!(
            "{label}: capture ended ({}): {} packets, {} bytes",
            end.reason.as_wire(),
            end.packets,
            end.bytes
        ));
        let (delivered, spool_drops) = wait_delivered(stream);
        let result = JobResult {
            started_ns: Some(started_ns),
            ended_ns: end.ended_ns,
            packets: end.packets,
            bytes: end.bytes,
            drops: JobDrops {
                kernel: end.kernel_drops,
                interface: end.interface_drops,
                spool: spool_drops,
            },
            reason: end.reason.as_wire(),
        };
        self.conclude(job, &spec.stream, result, delivered);
    }

    /// Opens the job's socket: its program in the kernel, or (userspace) an accept-all kernel
    /// program and the job's program run by the capture thread. Also when it began receiving:
    /// the job's start.
    #[allow(clippy::type_complexity)]
    fn open_source(
        &self,
        spec: &JobSpec,
    ) -> Result<
        (
            Box<dyn crate::source::Source + Send>,
            Option<Program>,
            SystemTime,
        ),
        String,
    > {
        let mut c = AfPacketConfig::new(spec.interface.clone());
        c.snaplen = spec.snaplen;
        if let Some((size, count)) = self.config.ring {
            c.block_size = size;
            c.block_count = count;
        }
        let soft = if spec.userspace {
            Some(spec.program.clone())
        } else {
            c.filter = Some(spec.program.clone());
            None
        };
        let source = AfPacketSource::open(&c).map_err(|e| e.to_string())?;
        let started = source.bound_at();
        Ok((Box::new(source), soft, started))
    }

    /// Saves the result until the server has it, reports it, and cleans up once the server
    /// has both the result and every batch.
    fn conclude(&self, job: u64, stream: &str, result: JobResult, delivered: bool) {
        let pending = Pending {
            job,
            stream: stream.to_owned(),
            result: result.clone(),
        };
        if let Err(e) = self.save(&pending) {
            self.log(&format!("job {job}: cannot save its result: {e}"));
        }
        let reported = self.report(&Report::Result(job, result.clone()));
        let d = &result.drops;
        self.log(&format!(
            "job {job}: ended ({}): {} packets, {} bytes, drops kernel {} interface {} spool {}; {}",
            result.reason,
            result.packets,
            result.bytes,
            d.kernel,
            d.interface,
            d.spool,
            match (reported, delivered) {
                (true, true) => "the server has everything",
                (true, false) => "batches are left in the spool for the next start",
                (false, _) => "the result is sent at the next start",
            }
        ));
        if reported && delivered {
            self.forget(job, stream);
        }
    }

    /// The job is done: its record and its spool go.
    fn forget(&self, job: u64, stream: &str) {
        let _ = std::fs::remove_file(self.jobs_dir().join(format!("{job}.json")));
        if !stream.is_empty() {
            let _ = std::fs::remove_dir_all(self.spool_dir(stream));
        }
        self.lock().unfinished.remove(&job);
    }

    fn save(&self, pending: &Pending) -> std::io::Result<()> {
        let dir = self.jobs_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", pending.job));
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(pending).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }

    /// The results an earlier run could not report.
    fn saved(&self) -> Vec<Pending> {
        let Ok(listing) = std::fs::read_dir(self.jobs_dir()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in listing.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
            {
                Some(p) => out.push(p),
                None => {
                    self.log(&format!("{}: damaged, removed", path.display()));
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        out.sort_by_key(|p| p.job);
        out
    }

    /// Sends what an earlier run left of a job (batches, then the result).
    fn resume(self: Arc<Self>, pending: Pending) {
        let job = pending.job;
        let dir = self.spool_dir(&pending.stream);
        let mut delivered = true;
        if dir.is_dir() && !pending.stream.is_empty() {
            match Spool::open(&dir, self.config.spool_max_bytes) {
                Ok(spool) if !spool.is_empty() => {
                    self.log(&format!(
                        "job {job}: sending {} batches left from before",
                        spool.len()
                    ));
                    let stream = spawn_drain(
                        pending.stream.clone(),
                        spool,
                        &self.shared,
                        &self.api,
                        &self.config,
                        &self.log,
                    );
                    delivered = wait_delivered(stream).0;
                }
                Ok(_) => {}
                Err(e) => self.log(&format!("job {job}: its spool cannot be opened: {e}")),
            }
        }
        let reported = self.report(&Report::Result(job, pending.result.clone()));
        if reported && delivered {
            self.log(&format!(
                "job {job}: the result left from before is reported"
            ));
            self.forget(job, &pending.stream);
        }
    }

    /// Sends a report, again and again while the server cannot be reached; once the agent is
    /// stopping, only until the drain deadline. True once the server has it (or refused it for
    /// good: there is no point sending it again).
    fn report(&self, report: &Report) -> bool {
        let mut backoff = Duration::from_millis(200);
        loop {
            if let Some(deadline) = self.shared.stop_deadline(self.config.drain_timeout) {
                return self.report_before(report, deadline);
            }
            match report.send(&self.api) {
                Ok(()) => return true,
                Err(ApiError::Refused { status, detail }) => {
                    self.log(&format!(
                        "job {}: the server refused the report ({status}: {detail})",
                        report.job()
                    ));
                    return true;
                }
                Err(ApiError::Unauthorized(detail)) => {
                    self.shared.fail(AgentError::Refused(detail));
                    return false;
                }
                Err(_) => {
                    if matches!(report, Report::Started(..)) && backoff > Duration::from_secs(2) {
                        return false;
                    }
                    if sleep_unless(&self.shared, backoff) {
                        continue;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One attempt, abandoned at `deadline` (a request hanging on a dead path must not hold the
    /// agent's stop up).
    fn report_before(&self, report: &Report, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (api, report) = (self.api.clone(), report.clone());
        crate::agent::spawn("report", move || {
            let _ = tx.send(report.send(&api));
        });
        matches!(rx.recv_timeout(left), Ok(Ok(())))
    }
}

/// Waits until the stream's threads have ended; whether its spool is empty (every batch
/// delivered), and its spool drops.
fn wait_delivered(stream: Stream) -> (bool, u64) {
    while !stream.finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = stream.cell.lock().is_empty();
    let spool_drops = stream.counters.status(&stream.name).spool_drops;
    for t in stream.threads {
        let _ = t.join();
    }
    (delivered, spool_drops)
}

/// What the agent tells the server about a job.
#[derive(Clone, Debug)]
enum Report {
    Started(u64, u64),
    Result(u64, JobResult),
}

impl Report {
    fn job(&self) -> u64 {
        match self {
            Report::Started(job, _) | Report::Result(job, _) => *job,
        }
    }

    fn send(&self, api: &ServerApi) -> Result<(), ApiError> {
        match self {
            Report::Started(job, ns) => api.job_started(*job, *ns),
            Report::Result(job, result) => api.job_result(*job, result),
        }
    }
}

fn describe_limits(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = limits.max_packets {
        parts.push(format!("{n} packets"));
    }
    if let Some(n) = limits.max_bytes {
        parts.push(format!("{n} bytes"));
    }
    if let Some(d) = limits.duration {
        parts.push(format!("{:.3} s", d.as_secs_f64()));
    }
    if parts.is_empty() {
        "; until stopped".into()
    } else {
        format!("; until the first of {}", parts.join(", "))
    }
}

/// Sleeps for `d` in short steps; true at once if the agent is stopping.
fn sleep_unless(shared: &Shared, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if shared.stopping() {
            return true;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    shared.stopping()
}

/// The interfaces of this network namespace that AF_PACKET captures here (Ethernet and
/// loopback), the `capture` ones first (as given, marked), then the others by name.
pub fn local_interfaces(capture: &[String]) -> Vec<DeclaredInterface> {
    let names = std::fs::read_to_string("/proc/self/net/dev")
        .map(|text| proc_net_dev_names(&text))
        .unwrap_or_default();
    let mut out: Vec<DeclaredInterface> = capture
        .iter()
        .map(|name| DeclaredInterface {
            name: name.clone(),
            link_type: LINKTYPE_ETHERNET,
            capture: true,
        })
        .collect();
    let mut others: Vec<String> = names.into_iter().filter(|n| !capture.contains(n)).collect();
    others.sort();
    for name in others {
        // ARPHRD_ETHER (1) and ARPHRD_LOOPBACK (772); unknown (no sysfs for this namespace):
        // listed, and the source says at open time if it cannot capture there.
        if matches!(
            hardware_type(Path::new("/sys/class/net"), &name),
            None | Some(1 | 772)
        ) {
            out.push(DeclaredInterface {
                name,
                link_type: LINKTYPE_ETHERNET,
                capture: false,
            });
        }
    }
    out
}

/// The interface names of a `/proc/net/dev` text.
pub fn proc_net_dev_names(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

fn hardware_type(sys_class_net: &Path, name: &str) -> Option<u16> {
    std::fs::read_to_string(sys_class_net.join(name).join("type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_bpf::{Insn, opcode};

    fn command() -> Command {
        Command {
            id: 3,
            kind: "start_job".into(),
            job: 7,
            stream: Some("job-7-eth0".into()),
            interface: Some("eth0".into()),
            link_type: Some(1),
            snaplen: Some(1500),
            program: Some(Program::new(vec![Insn {
                code: opcode::RET_K,
                jt: 0,
                jf: 0,
                k: 1500,
            }])),
            filter_mode: Some("kernel".into()),
            duration_ms: Some(5000),
            max_packets: Some(100),
            max_bytes: None,
        }
    }

    #[test]
    fn a_start_command_is_checked() {
        let spec = JobSpec::from_command(&command()).unwrap();
        assert_eq!(spec.stream, "job-7-eth0");
        assert!(!spec.userspace);
        assert_eq!(spec.limits.duration, Some(Duration::from_secs(5)));
        assert_eq!(spec.limits.max_packets, Some(100));

        let bad = |f: fn(&mut Command), want: &str| {
            let mut c = command();
            f(&mut c);
            let e = JobSpec::from_command(&c).unwrap_err();
            assert!(e.contains(want), "{e}");
        };
        bad(|c| c.program = None, "program");
        bad(
            |c| c.program = Some(Program::new(vec![])),
            "program is not valid",
        );
        bad(|c| c.link_type = Some(113), "link type 113");
        bad(|c| c.stream = Some("eth0".into()), "not a job stream");
        bad(|c| c.stream = Some("job-7/x".into()), "not a job stream");
        bad(|c| c.filter_mode = Some("gpu".into()), "filter mode");
        bad(|c| c.snaplen = Some(0), "snap length");
    }

    #[test]
    fn interface_names_come_from_proc_net_dev() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 1 2 3\n  eth0: 4 5 6\nveth-a@x: 1\n";
        assert_eq!(proc_net_dev_names(text), ["lo", "eth0", "veth-a@x"]);
    }
}
