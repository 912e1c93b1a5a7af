//! The agent at work: for each stream (one interface, or one replayed file), three threads.
//!
//! ```text
//! capture ──(bounded channel of batches)──▶ spooler ──▶ Spool (memory/disk) ──▶ uplink ──HTTPS──▶ server
//! ```
//!
//! - **capture** reads the [`Source`], fills a [`BatchBuilder`] and hands it over when it is
//!   `batch_max_bytes` long (even in the middle of one read from the source), when its first packet is `batch_max_delay` old, or every
//!   `heartbeat` even when empty (a heartbeat carries the drop counters; a job's stream has one
//!   every `job_heartbeat`, for its watermark). Every batch states the stream's watermark
//!   (`complete_ns`): the source's [`Source::complete_before`], or the earliest packet the
//!   thread still holds if that is earlier. It never touches the
//!   disk, so an fsync cannot stall the kernel ring; when the channel is full it waits, and the
//!   kernel counts what the ring could not hold.
//! - **spooler** numbers each batch and puts it in the [`Spool`]: in memory while the server
//!   keeps up, on disk (synced) when it has to wait; the oldest batches are dropped, counted,
//!   when the spool is full.
//! - **uplink** sends the oldest waiting batch, and removes it once the server has it; a send
//!   that takes over a second has the batches in memory written to disk; after a failure it
//!   puts the spool in write-through, waits (backing off up to 5 s) and sends again. A gap answer moves the chain to
//!   the server's `last`. A refused credential stops the agent.
//!
//! Stopping (the `stop` flag): the capture threads send what they hold and end; the uplinks go
//! on sending for up to `drain_timeout`; whatever is left is written to the spool directory for
//! the next start.
//! A replayed file ends by itself: the agent returns once every batch is acknowledged.
//!
//! Capture jobs ([`crate::jobs`]) run the same three threads per job, with a stop of their
//! own, exact limits ([`Limits`]: packets, bytes, duration) and a short hold that puts packets
//! in time order (`Reorder`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use trawl_bpf::Program;
use trawl_pcap::Timestamp;
use trawl_wire::{BatchBuilder, Drops, read_header};

use crate::source::afpacket::{AfPacketConfig, AfPacketSource, MAX_SNAPLEN};
use crate::source::replay::{Pacing, ReplaySource};
use crate::source::{Batch, LINKTYPE_ETHERNET, Source, SourceError};
use crate::spool::{Spool, SpoolError};
use crate::uplink::{ApiError, BatchAnswer, SENDER_NICE, ServerApi, lower_priority};

/// Where one stream's packets come from.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// A live interface (AF_PACKET).
    Interface(String),
    /// A capture file replayed (tests, demos); `stream` names it, by default after the file.
    Pcap {
        path: PathBuf,
        pacing: Pacing,
        stream: Option<String>,
    },
}

impl SourceSpec {
    /// The stream name: the interface, or the file's name made plain.
    pub fn stream(&self) -> String {
        match self {
            SourceSpec::Interface(name) => name.clone(),
            SourceSpec::Pcap {
                stream: Some(s), ..
            } => s.clone(),
            SourceSpec::Pcap { path, .. } => {
                let stem = path
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "pcap".into());
                plain_stream_name(&stem)
            }
        }
    }
}

/// A stream name as the server accepts it: 1 to 64 of letters, digits and `. _ - : @`.
pub fn plain_stream_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        s.push_str("stream");
    }
    s
}

/// How the agent runs; see [`AgentConfig::new`] for the defaults.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The device's state: credential, spools, compiled filters.
    pub state_dir: PathBuf,
    pub sources: Vec<SourceSpec>,
    /// A tcpdump filter expression, compiled by the server.
    pub filter: Option<String>,
    pub snaplen: u32,
    /// Most bytes of batches each stream's spool holds.
    pub spool_max_bytes: u64,
    /// Most bytes of batches per stream held in memory while the server keeps up.
    pub spool_memory_bytes: u64,
    /// A batch is sent when it holds this many bytes of packets…
    pub batch_max_bytes: u64,
    /// …or when its first packet is this old.
    pub batch_max_delay: Duration,
    /// An empty batch (carrying drop counters) goes at least this often.
    pub heartbeat: Duration,
    /// A capture job's stream sends a batch at least this often, empty if nothing was
    /// captured, so that its watermark (`complete_ns`) keeps moving: a live view of the job
    /// merges the devices' streams and waits for the quiet ones' watermarks.
    pub job_heartbeat: Duration,
    /// After a stop, how long the uplinks go on sending what is spooled.
    pub drain_timeout: Duration,
    /// AF_PACKET ring: block size and count (`None`: the source's defaults).
    pub ring: Option<(u32, u32)>,
    /// Run the command channel: take capture jobs from the server ([`crate::jobs`]).
    pub commands: bool,
    /// A job's batches are sent when their first packet is this old (shorter than
    /// `batch_max_delay`: someone is watching a job).
    pub job_batch_delay: Duration,
}

impl AgentConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> AgentConfig {
        AgentConfig {
            state_dir: state_dir.into(),
            sources: Vec::new(),
            filter: None,
            snaplen: MAX_SNAPLEN,
            spool_max_bytes: 1 << 30,
            spool_memory_bytes: crate::spool::MEMORY,
            batch_max_bytes: 4 << 20,
            batch_max_delay: Duration::from_millis(500),
            heartbeat: Duration::from_secs(10),
            job_heartbeat: Duration::from_millis(250),
            drain_timeout: Duration::from_secs(10),
            ring: None,
            commands: false,
            job_batch_delay: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("the server refused this device: {0}")]
    Refused(String),
    #[error("the filter {expression:?} does not compile: {detail}")]
    Filter { expression: String, detail: String },
    #[error("{0}")]
    Other(String),
}

/// Counters of one stream, shared by its threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    captured: AtomicU64,
    filtered_out: AtomicU64,
    batches_spooled: AtomicU64,
    batches_acked: AtomicU64,
    packets_acked: AtomicU64,
    duplicates: AtomicU64,
    kernel_drops: AtomicU64,
    interface_drops: AtomicU64,
    spool_drops: AtomicU64,
    refused_batches: AtomicU64,
    send_failures: AtomicU64,
    spooled_bytes: AtomicU64,
    connected: AtomicBool,
}

/// A stream's counters at one moment (for status lines and the final summary).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StreamStatus {
    pub stream: String,
    /// Packets the source delivered (after the kernel's filter).
    pub captured: u64,
    /// Packets of a replayed file that the filter rejected.
    pub filtered_out: u64,
    pub batches_spooled: u64,
    pub batches_acked: u64,
    /// Packets the server has (stored now or before).
    pub packets_acked: u64,
    pub duplicates: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub spool_drops: u64,
    /// Batches the server refused as malformed (their packets count as spool drops).
    pub refused_batches: u64,
    pub send_failures: u64,
    /// Bytes waiting in the spool.
    pub spooled_bytes: u64,
    /// Whether the last attempt to reach the server succeeded.
    pub connected: bool,
}

impl Counters {
    pub(crate) fn status(&self, stream: &str) -> StreamStatus {
        StreamStatus {
            stream: stream.to_owned(),
            captured: self.captured.load(Relaxed),
            filtered_out: self.filtered_out.load(Relaxed),
            batches_spooled: self.batches_spooled.load(Relaxed),
            batches_acked: self.batches_acked.load(Relaxed),
            packets_acked: self.packets_acked.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            kernel_drops: self.kernel_drops.load(Relaxed),
            interface_drops: self.interface_drops.load(Relaxed),
            spool_drops: self.spool_drops.load(Relaxed),
            refused_batches: self.refused_batches.load(Relaxed),
            send_failures: self.send_failures.load(Relaxed),
            spooled_bytes: self.spooled_bytes.load(Relaxed),
            connected: self.connected.load(Relaxed),
        }
    }
}

/// What the agent's threads share.
pub(crate) struct Shared {
    /// Stop capturing (set by the caller, or after a fatal error).
    pub(crate) stop: Arc<AtomicBool>,
    /// The reason the agent must stop, if it must.
    fatal: Mutex<Option<AgentError>>,
    /// When a thread first saw `stop` set.
    stop_seen: OnceLock<Instant>,
}

impl Shared {
    pub(crate) fn new(stop: Arc<AtomicBool>) -> Shared {
        Shared {
            stop,
            fatal: Mutex::new(None),
            stop_seen: OnceLock::new(),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// When the agent must have ended, once it is stopping: what the uplinks may still send,
    /// and what is said to the server, happens before then.
    pub(crate) fn stop_deadline(&self, drain: Duration) -> Option<Instant> {
        self.stopping()
            .then(|| *self.stop_seen.get_or_init(Instant::now) + drain)
    }

    pub(crate) fn fail(&self, e: AgentError) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(e);
        }
        self.stop.store(true, Relaxed);
    }
}

/// A stream's spool and the bell the uplink waits on.
pub(crate) struct SpoolCell {
    spool: Mutex<Spool>,
    bell: Condvar,
    /// The spooler has written its last batch.
    done: AtomicBool,
}

impl SpoolCell {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A filter program compiled by the server, cached so that a restart without the server still
/// captures with the same filter.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct CachedFilter {
    expression: String,
    link_type: u32,
    snaplen: u32,
    program: Program,
}

/// Gets the program for `expression` from the server, or from the cache when the server cannot
/// be reached; waits for the server (until `stop`) when there is neither.
fn obtain_program(
    api: &ServerApi,
    cache_dir: &Path,
    stream: &str,
    (expression, link_type, snaplen): (&str, u32, u32),
    stop: &AtomicBool,
    log: &dyn Fn(&str),
) -> Result<Program, AgentError> {
    let cache_path = cache_dir.join(format!("{stream}.json"));
    let mut waited = None::<Instant>;
    loop {
        match api.compile(expression, link_type, snaplen) {
            Ok(program) => {
                let cached = CachedFilter {
                    expression: expression.to_owned(),
                    link_type,
                    snaplen,
                    program,
                };
                let _ = std::fs::create_dir_all(cache_dir);
                if let Ok(text) = serde_json::to_vec(&cached) {
                    let tmp = cache_path.with_extension("tmp");
                    if std::fs::write(&tmp, text).is_ok() {
                        let _ = std::fs::rename(&tmp, &cache_path);
                    }
                }
                return Ok(cached.program);
            }
            Err(ApiError::Unavailable(why)) => {
                let cached = std::fs::read(&cache_path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<CachedFilter>(&b).ok());
                if let Some(c) = cached
                    && c.expression == expression
                    && c.link_type == link_type
                    && c.snaplen == snaplen
                {
                    log(&format!(
                        "{stream}: the server cannot compile the filter now ({why}); using the \
                         program it compiled before"
                    ));
                    return Ok(c.program);
                }
                if waited.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    log(&format!(
                        "{stream}: waiting for the server to compile the filter: {why}"
                    ));
                    waited = Some(Instant::now());
                }
                if sleep_unless(stop, Duration::from_secs(2)) {
                    return Err(AgentError::Other(
                        "stopped while waiting for the server to compile the filter".into(),
                    ));
                }
            }
            Err(ApiError::Unauthorized(d)) => return Err(AgentError::Refused(d)),
            Err(e) => {
                return Err(AgentError::Filter {
                    expression: expression.to_owned(),
                    detail: e.to_string(),
                });
            }
        }
    }
}

/// Sleeps for `d` in short steps; returns true at once if `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Relaxed) {
            return true;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    stop.load(Relaxed)
}

/// A running stream: its name, counters, threads, spool, and how its capture ended.
pub(crate) struct Stream {
    pub(crate) name: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) cell: Arc<SpoolCell>,
    /// Set by the capture thread when it ends.
    pub(crate) end: Arc<Mutex<Option<CaptureEnd>>>,
}

impl Stream {
    pub(crate) fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }
}

/// A running agent.
pub struct Agent {
    streams: Vec<Stream>,
    shared: Arc<Shared>,
    /// The capture jobs' runner, when the command channel is on.
    jobs: Option<Arc<crate::jobs::Jobs>>,
}

/// A batch in the making, handed from capture to spooler.
struct Filled {
    builder: BatchBuilder,
    drops: Drops,
}

/// The sources and spools, open, with no thread started yet: the moment to drop privileges
/// ([`crate::privilege`]).
pub struct Opened {
    api: Arc<ServerApi>,
    config: AgentConfig,
    stop: Arc<AtomicBool>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
    streams: Vec<OpenStream>,
}

/// One stream, opened: its source, the filter the agent runs itself (for replayed files), and
/// its spool.
struct OpenStream {
    name: String,
    source: Box<dyn Source + Send>,
    soft_filter: Option<Program>,
    spool: Spool,
}

impl Agent {
    /// [`Agent::open`], then [`Opened::start`].
    pub fn start(
        api: Arc<ServerApi>,
        config: &AgentConfig,
        stop: Arc<AtomicBool>,
        log: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Agent, AgentError> {
        Ok(Agent::open(api, config, stop, log)?.start())
    }

    /// Opens every source (compiling the filter through the server) and its spool. `log`
    /// receives human-readable events (it may be called from any thread). Setting `stop` stops
    /// the agent (and a wait for the server to compile the filter).
    pub fn open(
        api: Arc<ServerApi>,
        config: &AgentConfig,
        stop: Arc<AtomicBool>,
        log: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Opened, AgentError> {
        let mut opened: Vec<(String, Box<dyn Source + Send>, Option<Program>)> = Vec::new();
        let mut names = BTreeMap::new();
        for spec in &config.sources {
            let stream = spec.stream();
            if let Some(other) = names.insert(stream.clone(), spec.clone()) {
                return Err(AgentError::Other(format!(
                    "two sources would be stream {stream:?} ({other:?} and {spec:?}): name them \
                     apart"
                )));
            }
            let compile = |link_type: u32| -> Result<Option<Program>, AgentError> {
                match &config.filter {
                    None => Ok(None),
                    Some(expr) => obtain_program(
                        &api,
                        &config.state_dir.join("filters"),
                        &stream,
                        (expr, link_type, config.snaplen),
                        &stop,
                        &*log,
                    )
                    .map(Some),
                }
            };
            match spec {
                SourceSpec::Interface(name) => {
                    let program = compile(LINKTYPE_ETHERNET)?;
                    let mut c = AfPacketConfig::new(name.clone());
                    c.snaplen = config.snaplen;
                    c.filter = program;
                    if let Some((size, count)) = config.ring {
                        c.block_size = size;
                        c.block_count = count;
                    }
                    let source = AfPacketSource::open(&c)?;
                    // The kernel runs the filter.
                    opened.push((stream, Box::new(source), None));
                }
                SourceSpec::Pcap { path, pacing, .. } => {
                    let source = ReplaySource::open(path, *pacing)?;
                    let program = compile(source.link_type())?;
                    opened.push((stream, Box::new(source), program));
                }
            }
        }

        let mut streams = Vec::new();
        for (name, source, soft_filter) in opened {
            let spool = Spool::open(
                config.state_dir.join("spool").join(&name),
                config.spool_max_bytes,
            )?
            .with_memory(config.spool_memory_bytes);
            streams.push(OpenStream {
                name,
                source,
                soft_filter,
                spool,
            });
        }
        Ok(Opened {
            api,
            config: config.clone(),
            stop,
            log,
            streams,
        })
    }
}

impl Opened {
    /// Starts the threads of every stream, and the command channel if configured.
    pub fn start(self) -> Agent {
        let Opened {
            api,
            config,
            stop,
            log,
            streams: opened,
        } = self;
        let shared = Arc::new(Shared::new(stop));
        let mut streams = Vec::new();
        for OpenStream {
            name,
            source,
            soft_filter,
            spool,
        } in opened
        {
            let control = CaptureControl {
                stop: None,
                limits: Limits::default(),
                started: SystemTime::now(),
                batch_delay: config.batch_max_delay,
                heartbeat: config.heartbeat,
                interface: name.clone(),
                reorder: None,
            };
            streams.push(spawn_stream(
                name,
                (source, soft_filter, spool, control),
                &shared,
                &api,
                &config,
                &log,
            ));
        }
        let jobs = config.commands.then(|| {
            crate::jobs::Jobs::start(api.clone(), config.clone(), shared.clone(), log.clone())
        });
        Agent {
            streams,
            shared,
            jobs,
        }
    }
}

/// Starts the threads of one stream: capture, spooler, uplink.
pub(crate) fn spawn_stream(
    name: String,
    (source, soft_filter, spool, control): (
        Box<dyn Source + Send>,
        Option<Program>,
        Spool,
        CaptureControl,
    ),
    shared: &Arc<Shared>,
    api: &Arc<ServerApi>,
    config: &AgentConfig,
    log: &Arc<dyn Fn(&str) + Send + Sync>,
) -> Stream {
    if spool.discarded_on_open > 0 {
        log(&format!(
            "{name}: {} damaged spool files removed",
            spool.discarded_on_open
        ));
    }
    if spool.lost_on_open > 0 {
        log(&format!(
            "{name}: {} packets were waiting in memory when the agent last ended \
             without stopping (killed?); they are lost, and counted as spool drops",
            spool.lost_on_open
        ));
    }
    if !spool.is_empty() {
        log(&format!(
            "{name}: {} batches ({} bytes) waiting in the spool from before",
            spool.len(),
            spool.used()
        ));
    }
    let counters = Arc::new(Counters::default());
    counters.spooled_bytes.store(spool.used(), Relaxed);
    counters.spool_drops.store(spool.lost_on_open, Relaxed);
    let cell = Arc::new(SpoolCell {
        spool: Mutex::new(spool),
        bell: Condvar::new(),
        done: AtomicBool::new(false),
    });
    let end = Arc::new(Mutex::new(None));
    let (tx, rx) = sync_channel::<Filled>(8);
    let mut threads = Vec::new();
    {
        let (shared, counters, config, end) = (
            shared.clone(),
            counters.clone(),
            config.clone(),
            end.clone(),
        );
        threads.push(spawn(&format!("capture {name}"), move || {
            let ended = capture(
                source,
                soft_filter,
                &control,
                &config,
                tx,
                &counters,
                &shared,
            );
            *end.lock().unwrap_or_else(|p| p.into_inner()) = Some(ended);
        }));
    }
    {
        let (shared, counters, cell, log) =
            (shared.clone(), counters.clone(), cell.clone(), log.clone());
        threads.push(spawn(&format!("spool {name}"), move || {
            spooler(rx, &cell, &counters, &shared, &*log)
        }));
    }
    threads.push(spawn_uplink(
        &name, &cell, &counters, shared, api, config, log,
    ));
    Stream {
        name,
        counters,
        threads,
        cell,
        end,
    }
}

/// Starts the uplink thread of a stream.
pub(crate) fn spawn_uplink(
    name: &str,
    cell: &Arc<SpoolCell>,
    counters: &Arc<Counters>,
    shared: &Arc<Shared>,
    api: &Arc<ServerApi>,
    config: &AgentConfig,
    log: &Arc<dyn Fn(&str) + Send + Sync>,
) -> JoinHandle<()> {
    let (shared, counters, cell, api, log, name) = (
        shared.clone(),
        counters.clone(),
        cell.clone(),
        api.clone(),
        log.clone(),
        name.to_owned(),
    );
    let drain = config.drain_timeout;
    spawn(&format!("uplink {name}"), move || {
        lower_priority(SENDER_NICE);
        uplink(&api, &name, &cell, &counters, &shared, drain, &*log);
        // Nothing sends from here on: what waits in memory, and whatever the
        // spooler still hands over, goes to disk for the next start.
        if let Err(e) = cell.lock().write_through(true) {
            shared.fail(AgentError::Spool(e));
        }
    })
}

/// A stream that only sends what its spool holds (a job's batches left from an earlier run):
/// an uplink thread and no capture.
pub(crate) fn spawn_drain(
    name: String,
    spool: Spool,
    shared: &Arc<Shared>,
    api: &Arc<ServerApi>,
    config: &AgentConfig,
    log: &Arc<dyn Fn(&str) + Send + Sync>,
) -> Stream {
    let counters = Arc::new(Counters::default());
    counters.spooled_bytes.store(spool.used(), Relaxed);
    let cell = Arc::new(SpoolCell {
        spool: Mutex::new(spool),
        bell: Condvar::new(),
        done: AtomicBool::new(true),
    });
    let uplink = spawn_uplink(&name, &cell, &counters, shared, api, config, log);
    Stream {
        name,
        counters,
        threads: vec![uplink],
        cell,
        end: Arc::new(Mutex::new(None)),
    }
}

impl Agent {
    /// Every stream's counters now.
    pub fn status(&self) -> Vec<StreamStatus> {
        self.streams
            .iter()
            .map(|s| s.counters.status(&s.name))
            .collect()
    }

    /// Whether every thread has ended (a replayed file fully sent, or stopped and drained). An
    /// agent with no stream of its own (capture jobs only) is finished once it is stopping.
    pub fn finished(&self) -> bool {
        if self.streams.is_empty() {
            return self.shared.stopping();
        }
        self.streams.iter().all(Stream::finished)
    }

    /// Waits for every thread; returns the final counters, or why the agent had to stop.
    pub fn join(self) -> Result<Vec<StreamStatus>, AgentError> {
        let status = {
            for s in &self.streams {
                while !s.finished() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            self.status()
        };
        if let Some(jobs) = &self.jobs {
            // Ends with the drain deadline: the jobs' uplinks and reports keep to it.
            jobs.wait();
        }
        for s in self.streams {
            for t in s.threads {
                let _ = t.join();
            }
        }
        let fatal = self
            .shared
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match fatal {
            Some(e) => Err(e),
            None => Ok(status),
        }
    }
}

pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(f)
        .expect("starting a thread")
}

/// The limits of a capture job; none for the agent's own streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many packets.
    pub max_packets: Option<u64>,
    /// At most this many bytes of packet data (the sum of the captured lengths).
    pub max_bytes: Option<u64>,
    /// Packets stamped this long after the start, or later, are not taken.
    pub duration: Option<Duration>,
}

/// Why a stream's capture ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    MaxPackets,
    MaxBytes,
    Duration,
    /// Its own stop (a job's `stop_job`).
    Stopped,
    /// The agent is stopping.
    AgentStopped,
    /// A replayed file ended.
    SourceEnded,
    /// The source failed (or the spooler is gone).
    Error(String),
}

impl EndReason {
    /// As the protocol's job result says it (`max_packets`, …, `error: …`).
    pub fn as_wire(&self) -> String {
        match self {
            EndReason::MaxPackets => "max_packets".into(),
            EndReason::MaxBytes => "max_bytes".into(),
            EndReason::Duration => "duration".into(),
            EndReason::Stopped => "stopped".into(),
            EndReason::AgentStopped => "agent_stopped".into(),
            EndReason::SourceEnded => "source_ended".into(),
            EndReason::Error(e) => format!("error: {e}"),
        }
    }
}

/// How one stream's capture runs and ends, beyond the agent's settings.
pub(crate) struct CaptureControl {
    /// Ends this stream alone (a job's stop command).
    pub stop: Option<Arc<AtomicBool>>,
    pub limits: Limits,
    /// When the capture began (before its socket was bound): `limits.duration` counts from it.
    pub started: SystemTime,
    /// A batch is handed over when its first packet is this old.
    pub batch_delay: Duration,
    /// A batch, empty if need be, is handed over at least this often.
    pub heartbeat: Duration,
    /// The interface the batches describe (`if_name` of their interface block).
    pub interface: String,
    /// Put packets in time order, holding each this long past the newest packet seen (see
    /// [`Reorder`]); `None`: the kernel's order.
    pub reorder: Option<Duration>,
}

/// Puts a stream's packets in time order. The kernel's ring is in the order packets reached
/// the socket, which on several CPUs is not quite the order of their timestamps (a forwarding
/// device stamps a packet it receives on one CPU and one it sends on another: a few
/// microseconds apart, the later-stamped one can come first). A packet waits here until
/// nothing stamped before it can still come — the source's watermark
/// ([`Source::complete_before`]) has passed it — or until one stamped `hold` later has been
/// seen, then goes out in time order; one that comes later than that goes out at once, out of
/// order. The watermark bounds the wait of a packet on a quiet link (a single ping) to about
/// the source's (for AF_PACKET some 70 ms past its stamp, plus one read); the hold releases
/// packets sooner under steady traffic.
pub(crate) struct Reorder {
    hold_ns: u64,
    /// The waiting packets' bytes, and (time, arrival, wire length, offset, length) of each.
    arena: Vec<u8>,
    waiting: Vec<(u64, u64, u32, usize, usize)>,
    arrivals: u64,
    newest_ns: u64,
}

impl Reorder {
    pub(crate) fn new(hold: Duration) -> Reorder {
        Reorder {
            hold_ns: u64::try_from(hold.as_nanos()).unwrap_or(u64::MAX),
            arena: Vec::new(),
            waiting: Vec::new(),
            arrivals: 0,
            newest_ns: 0,
        }
    }

    pub(crate) fn add(&mut self, ns: u64, orig_len: u32, data: &[u8]) {
        let at = self.arena.len();
        self.arena.extend_from_slice(data);
        self.waiting
            .push((ns, self.arrivals, orig_len, at, data.len()));
        self.arrivals += 1;
        self.newest_ns = self.newest_ns.max(ns);
    }

    /// The time of the earliest packet waiting.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.waiting.iter().map(|w| w.0).min()
    }

    /// Hands out, in time order, the packets that have waited long enough (`all`: every one):
    /// those stamped before `complete_before` (the source's watermark: nothing earlier can
    /// still come) and those `hold` older than the newest packet.
    pub(crate) fn release(
        &mut self,
        all: bool,
        complete_before: u64,
        mut out: impl FnMut(u64, u32, &[u8]),
    ) {
        if self.waiting.is_empty() {
            return;
        }
        self.waiting.sort_unstable_by_key(|w| (w.0, w.1));
        let ready = if all {
            self.waiting.len()
        } else {
            // Both conditions hold for a prefix of the sorted list.
            self.waiting.partition_point(|w| {
                w.0 < complete_before || w.0.saturating_add(self.hold_ns) <= self.newest_ns
            })
        };
        for &(ns, _, orig_len, at, len) in &self.waiting[..ready] {
            out(ns, orig_len, &self.arena[at..at + len]);
        }
        if ready == self.waiting.len() {
            self.waiting.clear();
            self.arena.clear();
            return;
        }
        // Keep the rest, packed.
        let mut arena = Vec::with_capacity(self.arena.len());
        let rest: Vec<_> = self.waiting[ready..]
            .iter()
            .map(|&(ns, n, orig_len, at, len)| {
                let new_at = arena.len();
                arena.extend_from_slice(&self.arena[at..at + len]);
                (ns, n, orig_len, new_at, len)
            })
            .collect();
        self.arena = arena;
        self.waiting = rest;
    }
}

/// What the capture thread hands over to the spooler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandOver {
    /// The batches filled during the last read.
    Filled,
    /// Those and the batch being filled.
    All,
    /// Everything: the capture has ended (what the reorder buffer held is in the batches).
    Last,
}

/// How a stream's capture ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CaptureEnd {
    pub reason: EndReason,
    /// Packets and bytes taken (handed to the spooler).
    pub packets: u64,
    pub bytes: u64,
    /// When the capture's window closed: the end of the duration, or when it stopped.
    pub ended_ns: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

/// After a job's duration is over, packets stamped within it may still sit in a ring block the
/// kernel has not handed over (it retires a block after at most 50 ms): they are read for this
/// much longer.
const LATE_BLOCKS: Duration = Duration::from_millis(150);

pub(crate) fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The capture thread: packets into batches, batches to the spooler, until the agent stops,
/// the source ends, or (for a job) its own stop or a limit.
///
/// Limits are exact: the packet that would pass `max_packets` or `max_bytes` is not taken,
/// even in the middle of a ring block, and neither is any packet stamped at or after the end
/// of `duration`.
fn capture(
    mut source: Box<dyn Source + Send>,
    soft_filter: Option<Program>,
    control: &CaptureControl,
    config: &AgentConfig,
    tx: SyncSender<Filled>,
    counters: &Counters,
    shared: &Shared,
) -> CaptureEnd {
    let (link_type, snaplen) = (source.link_type(), source.snaplen());
    let limits = control.limits;
    // A batch is handed over as soon as it reaches `batch_max_bytes`, even in the middle of
    // what one read from the source delivered; its buffer has room for that plus one packet, so
    // it never grows (growing copies everything written so far).
    let max = config.batch_max_bytes as usize;
    let capacity = max + snaplen as usize + 64;
    let iface = control.interface.as_str();
    let new_builder = || BatchBuilder::with_capacity(iface, link_type, snaplen, capacity);
    let mut builder = new_builder();
    // Batches filled during the current read, to hand over once it returns.
    let mut full: Vec<BatchBuilder> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut last_flush = Instant::now();
    let mut reported = crate::source::SourceStats::default();
    let tick = Duration::from_millis(50);

    // The duration's end, in packet time and on this machine's monotonic clock.
    let started_ns = ns_since_epoch(control.started);
    let window_end_ns = limits
        .duration
        .map(|d| started_ns.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
    let read_until = limits.duration.map(|d| {
        let elapsed = control.started.elapsed().unwrap_or_default();
        Instant::now() + d.saturating_sub(elapsed) + LATE_BLOCKS
    });
    let (mut taken, mut taken_bytes) = (0u64, 0u64);
    let mut limit_hit: Option<EndReason> = None;
    let mut reorder = control.reorder.map(Reorder::new);
    // Puts a packet in the batch being built; a batch that is full joins `full`.
    let emit = |builder: &mut BatchBuilder,
                full: &mut Vec<BatchBuilder>,
                first_at: &mut Option<Instant>,
                (ts, orig_len, data): (Timestamp, u32, &[u8])| {
        builder.push(ts, orig_len, data);
        if builder.encoded_len() >= max {
            full.push(std::mem::replace(builder, new_builder()));
            *first_at = None;
        }
    };
    // Moves what the reorder buffer may release (`all`: everything; else what the source's
    // watermark `complete_before` or the hold lets go) into the batches.
    const EVERYTHING: (bool, u64) = (true, u64::MAX);
    let release = |reorder: &mut Option<Reorder>,
                   (all, complete_before): (bool, u64),
                   builder: &mut BatchBuilder,
                   full: &mut Vec<BatchBuilder>,
                   first_at: &mut Option<Instant>| {
        if let Some(r) = reorder {
            r.release(all, complete_before, |ns, orig_len, data| {
                emit(
                    builder,
                    full,
                    first_at,
                    (Timestamp::from_nanos(ns), orig_len, data),
                )
            });
        }
    };

    // A job's stream ends with its capture: nothing comes on it after its last batch.
    let stream_ends = control.stop.is_some();
    // Hands over the batches filled during the last read and (unless `Filled`) the one being
    // filled; the drops counted since the last hand-over travel with the last of them. Each
    // states the stream's watermark: no packet still to come on the stream — from the source,
    // the reorder buffer (whose earliest packet is `held`), the batch still being filled, or
    // a batch handed over after it — is stamped before it.
    let mut flush = |full: &mut Vec<BatchBuilder>,
                     (builder, first_at): (&mut BatchBuilder, &mut Option<Instant>),
                     what: HandOver,
                     source: &mut Box<dyn Source + Send>,
                     held: Option<u64>|
     -> bool {
        let stats = source.stats().unwrap_or(reported);
        let drops = Drops {
            kernel: stats.kernel_drops.saturating_sub(reported.kernel_drops),
            interface: stats
                .interface_drops
                .saturating_sub(reported.interface_drops),
            spool: 0,
        };
        counters.kernel_drops.store(stats.kernel_drops, Relaxed);
        counters
            .interface_drops
            .store(stats.interface_drops, Relaxed);
        reported = stats;
        let mut complete = if what == HandOver::Last && stream_ends {
            u64::MAX
        } else {
            source.complete_before()
        };
        if what == HandOver::Filled {
            if let Some(ns) = builder.first_ns() {
                complete = complete.min(ns);
            }
        } else {
            full.push(std::mem::replace(builder, new_builder()));
            *first_at = None;
        }
        if let Some(ns) = held {
            complete = complete.min(ns);
        }
        for batch in full.iter_mut().rev() {
            batch.set_complete(complete);
            if let Some(ns) = batch.first_ns() {
                complete = complete.min(ns);
            }
        }
        let last = full.len().saturating_sub(1);
        full.drain(..).enumerate().all(|(i, builder)| {
            let drops = if i == last { drops } else { Drops::default() };
            tx.send(Filled { builder, drops }).is_ok()
        })
    };

    let reason = loop {
        let own_stop = control.stop.as_ref().is_some_and(|s| s.load(Relaxed));
        if own_stop || shared.stop.load(Relaxed) {
            release(
                &mut reorder,
                EVERYTHING,
                &mut builder,
                &mut full,
                &mut first_at,
            );
            let all = (&mut builder, &mut first_at);
            flush(&mut full, all, HandOver::Last, &mut source, None);
            break if own_stop {
                EndReason::Stopped
            } else {
                EndReason::AgentStopped
            };
        }
        let now = Instant::now();
        if read_until.is_some_and(|until| now >= until) {
            release(
                &mut reorder,
                EVERYTHING,
                &mut builder,
                &mut full,
                &mut first_at,
            );
            let all = (&mut builder, &mut first_at);
            flush(&mut full, all, HandOver::Last, &mut source, None);
            break EndReason::Duration;
        }
        let wait = read_until.map_or(tick, |until| {
            tick.min(until - now).max(Duration::from_millis(1))
        });
        let mut got = 0u64;
        let mut rejected = 0u64;
        let result = source.next_batch(wait, &mut |p| {
            if limit_hit.is_some() {
                return;
            }
            if let Some(prog) = &soft_filter
                && prog.run(p.data, p.orig_len) == 0
            {
                rejected += 1;
                return;
            }
            if window_end_ns.is_some_and(|end| p.ts.as_nanos() >= end) {
                return;
            }
            let len = p.data.len() as u64;
            if limits.max_bytes.is_some_and(|m| taken_bytes + len > m) {
                limit_hit = Some(EndReason::MaxBytes);
                return;
            }
            match &mut reorder {
                Some(r) => r.add(p.ts.as_nanos(), p.orig_len, p.data),
                None => emit(
                    &mut builder,
                    &mut full,
                    &mut first_at,
                    (p.ts, p.orig_len, p.data),
                ),
            }
            got += 1;
            taken += 1;
            taken_bytes += len;
            if limits.max_packets == Some(taken) {
                limit_hit = Some(EndReason::MaxPackets);
            } else if limits.max_bytes == Some(taken_bytes) {
                limit_hit = Some(EndReason::MaxBytes);
            }
        });
        counters.captured.fetch_add(got, Relaxed);
        counters.filtered_out.fetch_add(rejected, Relaxed);
        let ending = !matches!(result, Ok(Batch::Packets(_) | Batch::Idle)) || limit_hit.is_some();
        let complete_before = source.complete_before();
        release(
            &mut reorder,
            (ending, complete_before),
            &mut builder,
            &mut full,
            &mut first_at,
        );
        match result {
            Ok(Batch::Finished) => {
                let all = (&mut builder, &mut first_at);
                flush(&mut full, all, HandOver::Last, &mut source, None);
                break EndReason::SourceEnded;
            }
            Ok(_) => {}
            Err(e) => {
                let all = (&mut builder, &mut first_at);
                flush(&mut full, all, HandOver::Last, &mut source, None);
                let reason = EndReason::Error(e.to_string());
                if control.stop.is_none() {
                    // One of the agent's own streams: the agent cannot go on without it.
                    shared.fail(AgentError::Source(e));
                }
                break reason;
            }
        }
        if let Some(reason) = limit_hit.take() {
            let all = (&mut builder, &mut first_at);
            flush(&mut full, all, HandOver::Last, &mut source, None);
            break reason;
        }
        if first_at.is_none() && builder.packets() > 0 {
            first_at = Some(Instant::now());
        }
        // A heartbeat is the batch being filled, handed over even if it is empty.
        let current_due = first_at.is_some_and(|t| t.elapsed() >= control.batch_delay)
            || last_flush.elapsed() >= control.heartbeat;
        if current_due || !full.is_empty() {
            last_flush = Instant::now();
            let what = if current_due {
                HandOver::All
            } else {
                HandOver::Filled
            };
            let held = reorder.as_ref().and_then(Reorder::earliest);
            let building = (&mut builder, &mut first_at);
            if !flush(&mut full, building, what, &mut source, held) {
                break EndReason::Error("the spooler has stopped".into());
            }
        }
    };
    let ended_ns = match (&reason, window_end_ns) {
        (EndReason::Duration, Some(end)) => end,
        _ => ns_since_epoch(SystemTime::now()),
    };
    CaptureEnd {
        reason,
        packets: taken,
        bytes: taken_bytes,
        ended_ns,
        kernel_drops: reported.kernel_drops,
        interface_drops: reported.interface_drops,
    }
}

/// The spooler thread: numbers batches and writes them to the spool.
fn spooler(
    rx: Receiver<Filled>,
    cell: &SpoolCell,
    counters: &Counters,
    shared: &Shared,
    log: &dyn Fn(&str),
) {
    let mut dropped_total = 0u64;
    for filled in rx {
        let result = (|| -> Result<u64, SpoolError> {
            let mut spool = cell.lock();
            let seq = spool.take_seq(filled.builder.packets())?;
            let batch = filled
                .builder
                .finish(spool.epoch(), seq, seq - 1, filled.drops);
            let lost = spool.push(batch)?;
            counters.spooled_bytes.store(spool.used(), Relaxed);
            Ok(lost)
        })();
        match result {
            Ok(lost) => {
                counters.batches_spooled.fetch_add(1, Relaxed);
                if lost > 0 {
                    if dropped_total == 0 {
                        log("the spool is full: dropping the oldest batches (counted)");
                    }
                    dropped_total += lost;
                    counters.spool_drops.fetch_add(lost, Relaxed);
                }
                cell.bell.notify_all();
            }
            Err(e) => {
                shared.fail(AgentError::Spool(e));
                break;
            }
        }
    }
    cell.done.store(true, Relaxed);
    cell.bell.notify_all();
}

/// When the agent was asked to stop, as the uplink sees it.
struct StopClock<'a> {
    stop: &'a AtomicBool,
    drain: Duration,
    since: Option<Instant>,
}

impl StopClock<'_> {
    /// Whether stopping was asked for more than `drain` ago (the clock starts the first time
    /// this sees the stop flag; it is looked at every 50 ms or so).
    fn drained(&mut self) -> bool {
        if self.stop.load(Relaxed) {
            self.since.get_or_insert_with(Instant::now).elapsed() >= self.drain
        } else {
            false
        }
    }

    fn stopping(&self) -> bool {
        self.since.is_some()
    }
}

/// A request that has taken this long makes the stream count as not connected.
const SLOW_REQUEST: Duration = Duration::from_secs(5);

/// A request that has taken this long has the batches held in memory written to disk: the
/// server is slow, and they may have to wait.
const HOLD: Duration = Duration::from_secs(1);

/// Sends a batch on a thread of its own and waits for the answer, giving up (leaving the batch
/// in the spool) once the stop clock's drain time has passed: a request hanging on a dead path
/// must not hold the agent up for a TCP timeout.
fn send_abandonable(
    api: &Arc<ServerApi>,
    stream: &str,
    bytes: bytes::Bytes,
    clock: &mut StopClock<'_>,
    counters: &Counters,
    cell: &SpoolCell,
    shared: &Shared,
) -> Option<Result<BatchAnswer, ApiError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (api, stream_name) = (api.clone(), stream.to_owned());
    spawn(&format!("send {stream}"), move || {
        lower_priority(SENDER_NICE);
        let _ = tx.send(api.send_batch(&stream_name, bytes));
    });
    let started = Instant::now();
    let mut spilled = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(answer) => return Some(answer),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Some(Err(ApiError::Unavailable("the sending thread died".into())));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if clock.drained() {
                    return None;
                }
                if !spilled && started.elapsed() >= HOLD {
                    spilled = true;
                    if let Err(e) = cell.lock().spill() {
                        shared.fail(AgentError::Spool(e));
                    }
                }
                if started.elapsed() >= SLOW_REQUEST {
                    counters.connected.store(false, Relaxed);
                }
            }
        }
    }
}

/// The uplink thread: sends spooled batches in order until there are none and no more will come.
fn uplink(
    api: &Arc<ServerApi>,
    stream: &str,
    cell: &SpoolCell,
    counters: &Counters,
    shared: &Shared,
    drain: Duration,
    log: &dyn Fn(&str),
) {
    let mut backoff = Duration::from_millis(100);
    let mut clock = StopClock {
        stop: &shared.stop,
        drain,
        since: None,
    };
    // When the server last had a batch of ours, and whether the outage since is reported.
    let mut last_delivery = Instant::now();
    let mut outage_reported = false;
    loop {
        if clock.drained() {
            break;
        }
        let next = {
            let mut spool = cell.lock();
            loop {
                match spool.next_to_send() {
                    Ok(Some(next)) => break Some(next),
                    Ok(None) if cell.done.load(Relaxed) => break None,
                    Ok(None) => {
                        spool = cell
                            .bell
                            .wait_timeout(spool, Duration::from_millis(200))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    Err(e) => {
                        drop(spool);
                        shared.fail(AgentError::Spool(e));
                        return;
                    }
                }
            }
        };
        let Some((seq, bytes)) = next else {
            break;
        };
        let packets = read_header(&bytes).map_or(0, |h| h.packets) as u64;
        let Some(answer) = send_abandonable(api, stream, bytes, &mut clock, counters, cell, shared)
        else {
            break;
        };
        let outcome = match answer {
            Ok(BatchAnswer::Has { duplicate, .. }) => {
                counters.batches_acked.fetch_add(1, Relaxed);
                counters.packets_acked.fetch_add(packets, Relaxed);
                if duplicate {
                    counters.duplicates.fetch_add(1, Relaxed);
                }
                cell.lock().server_has(seq)
            }
            Ok(BatchAnswer::Gap { last }) => {
                let mut spool = cell.lock();
                if last >= spool.acked() {
                    spool.server_has(last)
                } else {
                    log(&format!(
                        "{stream}: the server has batches only up to {last}, fewer than it \
                         acknowledged ({}): continuing from there",
                        spool.acked()
                    ));
                    spool.server_rewound(last)
                }
            }
            Err(ApiError::Unauthorized(detail)) => {
                shared.fail(AgentError::Refused(detail));
                return;
            }
            Err(ApiError::Refused { status, detail }) => {
                log(&format!(
                    "{stream}: the server refused batch {seq} ({status}: {detail}); its \
                     {packets} packets are counted as dropped"
                ));
                counters.refused_batches.fetch_add(1, Relaxed);
                counters.spool_drops.fetch_add(packets, Relaxed);
                cell.lock().discard(seq).map(|_| ())
            }
            Err(e @ (ApiError::Unavailable(_) | ApiError::Protocol(_))) => {
                counters.send_failures.fetch_add(1, Relaxed);
                // Batches wait on disk until the server is back.
                if let Err(e) = cell.lock().write_through(true) {
                    shared.fail(AgentError::Spool(e));
                    return;
                }
                counters.connected.store(false, Relaxed);
                if !outage_reported {
                    log(&format!(
                        "{stream}: cannot deliver to {}: {e}; spooling and retrying",
                        api.base()
                    ));
                    outage_reported = true;
                }
                let wait = if clock.stopping() {
                    backoff.min(Duration::from_millis(500))
                } else {
                    backoff
                };
                let until = Instant::now() + wait;
                while Instant::now() < until && !clock.drained() {
                    std::thread::sleep(Duration::from_millis(50).min(wait));
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = outcome {
            shared.fail(AgentError::Spool(e));
            return;
        }
        counters.connected.store(true, Relaxed);
        if outage_reported {
            log(&format!(
                "{stream}: delivering again; the last delivery before was {:.1} s ago",
                last_delivery.elapsed().as_secs_f64()
            ));
            outage_reported = false;
            // New batches may wait in memory again.
            if let Err(e) = cell.lock().write_through(false) {
                shared.fail(AgentError::Spool(e));
                return;
            }
        }
        last_delivery = Instant::now();
        backoff = Duration::from_millis(100);
        counters.spooled_bytes.store(cell.lock().used(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(r: &mut Reorder, all: bool) -> Vec<(u64, u32, Vec<u8>)> {
        released_before(r, all, 0)
    }

    fn released_before(
        r: &mut Reorder,
        all: bool,
        complete_before: u64,
    ) -> Vec<(u64, u32, Vec<u8>)> {
        let mut out = Vec::new();
        r.release(all, complete_before, |ns, len, data| {
            out.push((ns, len, data.to_vec()))
        });
        out
    }

    #[test]
    fn reorder_puts_packets_in_time_order_after_the_hold() {
        let ms = 1_000_000;
        let mut r = Reorder::new(Duration::from_millis(10));
        r.add(5 * ms, 60, b"b");
        r.add(5 * ms - 3_000, 61, b"a");
        r.add(5 * ms, 62, b"c");
        // Nothing has waited 10 ms past the newest packet yet.
        assert!(released(&mut r, false).is_empty());
        r.add(15 * ms + 1, 63, b"d");
        assert_eq!(
            released(&mut r, false),
            [
                (5 * ms - 3_000, 61, b"a".to_vec()),
                (5 * ms, 60, b"b".to_vec()),
                (5 * ms, 62, b"c".to_vec())
            ],
            "in time order; equal times in arrival order"
        );
        // What is left keeps its bytes after packing; a late packet goes out at once.
        r.add(2 * ms, 64, b"late");
        r.add(40 * ms, 65, b"e");
        assert_eq!(
            released(&mut r, false),
            [
                (2 * ms, 64, b"late".to_vec()),
                (15 * ms + 1, 63, b"d".to_vec())
            ]
        );
        assert_eq!(released(&mut r, true), [(40 * ms, 65, b"e".to_vec())]);
        assert!(released(&mut r, true).is_empty());
    }

    #[test]
    fn an_isolated_packet_goes_once_the_sources_watermark_has_passed_it() {
        let ms = 1_000_000;
        let mut r = Reorder::new(Duration::from_millis(20));
        r.add(5 * ms, 60, b"ping");
        assert_eq!(r.earliest(), Some(5 * ms));
        // No packet 20 ms newer will come, and the source cannot say (0), or has not passed
        // it: the ping waits.
        assert!(released_before(&mut r, false, 0).is_empty());
        assert!(released_before(&mut r, false, 5 * ms).is_empty());
        // Nothing stamped before 5 ms + 1 ns can still come: it goes.
        assert_eq!(
            released_before(&mut r, false, 5 * ms + 1),
            [(5 * ms, 60, b"ping".to_vec())]
        );
        assert_eq!(r.earliest(), None);
    }

    #[test]
    fn the_watermark_releases_in_time_order_and_keeps_what_may_still_be_preceded() {
        let ms = 1_000_000;
        let mut r = Reorder::new(Duration::from_secs(3600));
        r.add(30 * ms, 60, b"a");
        r.add(28 * ms, 61, b"b");
        r.add(31 * ms, 62, b"c");
        r.add(30 * ms, 63, b"d");
        assert_eq!(
            r.earliest(),
            Some(28 * ms),
            "the earliest, not the first added"
        );
        assert_eq!(
            released_before(&mut r, false, 31 * ms),
            [
                (28 * ms, 61, b"b".to_vec()),
                (30 * ms, 60, b"a".to_vec()),
                (30 * ms, 63, b"d".to_vec())
            ],
            "in time order, equal times in arrival order; 31 ms may still be preceded"
        );
        assert_eq!(r.earliest(), Some(31 * ms));
        // What the source hands out next is stamped at or after its watermark (31 ms).
        r.add(31 * ms, 64, b"e");
        r.add(45 * ms, 65, b"f");
        assert_eq!(
            released_before(&mut r, false, 40 * ms),
            [(31 * ms, 62, b"c".to_vec()), (31 * ms, 64, b"e".to_vec())]
        );
        assert_eq!(r.earliest(), Some(45 * ms));
        assert_eq!(released(&mut r, true), [(45 * ms, 65, b"f".to_vec())]);
    }

    /// A source that plays a script: each step takes `read` and hands out its packets (none:
    /// idle), then states its watermark; after the last step it is finished.
    struct Script {
        steps: std::collections::VecDeque<(Vec<u64>, u64)>,
        complete: u64,
        finished: bool,
        read: Duration,
    }

    impl Script {
        fn new(steps: Vec<(Vec<u64>, u64)>, read: Duration) -> Script {
            Script {
                steps: steps.into(),
                complete: 0,
                finished: false,
                read,
            }
        }
    }

    impl Source for Script {
        fn link_type(&self) -> u32 {
            LINKTYPE_ETHERNET
        }

        fn snaplen(&self) -> u32 {
            1500
        }

        fn next_batch(
            &mut self,
            _timeout: Duration,
            visit: &mut dyn FnMut(crate::source::Packet<'_>),
        ) -> Result<Batch, SourceError> {
            let Some((packets, complete)) = self.steps.pop_front() else {
                self.finished = true;
                return Ok(Batch::Finished);
            };
            std::thread::sleep(self.read);
            for &ns in &packets {
                visit(crate::source::Packet {
                    ts: Timestamp::from_nanos(ns),
                    orig_len: 60,
                    data: &[0x5a; 60],
                });
            }
            self.complete = complete;
            Ok(match packets.len() {
                0 => Batch::Idle,
                n => Batch::Packets(n),
            })
        }

        fn stats(&mut self) -> Result<crate::source::SourceStats, SourceError> {
            Ok(Default::default())
        }

        fn complete_before(&self) -> u64 {
            if self.finished {
                u64::MAX
            } else {
                self.complete
            }
        }
    }

    /// Runs the capture thread over `source` to its end; the batches handed over, as
    /// (complete_ns, packet times).
    fn capture_batches(
        source: Script,
        job: bool,
        (batch_max_bytes, batch_delay, heartbeat): (u64, Duration, Duration),
    ) -> Vec<(u64, Vec<u64>)> {
        let control = CaptureControl {
            stop: job.then(|| Arc::new(AtomicBool::new(false))),
            limits: Limits::default(),
            started: SystemTime::now(),
            batch_delay,
            heartbeat,
            interface: "eth0".into(),
            reorder: job.then_some(Duration::from_secs(3600)),
        };
        let mut config = AgentConfig::new("/nonexistent");
        config.batch_max_bytes = batch_max_bytes;
        let (tx, rx) = sync_channel(1 << 12);
        let shared = Shared::new(Arc::new(AtomicBool::new(false)));
        let end = capture(
            Box::new(source),
            None,
            &control,
            &config,
            tx,
            &Counters::default(),
            &shared,
        );
        assert_eq!(end.reason, EndReason::SourceEnded);
        rx.try_iter()
            .map(|filled| {
                let bytes = filled.builder.finish(1, 1, 0, filled.drops);
                let header = read_header(&bytes).expect("a batch");
                let body = &bytes[trawl_wire::HEADER_LEN_V1_1..];
                let mut reader = trawl_pcap::CaptureReader::new(body).expect("pcapng");
                let mut times = Vec::new();
                while let Some(p) = reader.next_packet().expect("a packet") {
                    times.push(p.ts.as_nanos());
                }
                assert_eq!(times.len(), header.packets as usize);
                (header.complete_ns, times)
            })
            .collect()
    }

    #[test]
    fn a_quiet_job_stream_sends_heartbeats_and_an_isolated_packet_without_waiting_for_another() {
        let ms = 1_000_000;
        let t0 = 1_700_000_000_000 * ms;
        // One ping at t0 + 100 ms, then silence; the source's watermark moves on.
        let steps = vec![
            (vec![], t0),
            (vec![t0 + 100 * ms], t0 + 50 * ms),
            (vec![], t0 + 90 * ms),
            (vec![], t0 + 150 * ms),
            (vec![], t0 + 200 * ms),
        ];
        // Every read takes 5 ms, longer than the heartbeat: a batch after every read.
        let batches = capture_batches(
            Script::new(steps, Duration::from_millis(5)),
            true,
            (1 << 20, Duration::ZERO, Duration::from_millis(1)),
        );
        assert_eq!(
            batches,
            [
                (t0, vec![]),
                // The ping waits in the reorder buffer: the watermark stops before it.
                (t0 + 50 * ms, vec![]),
                (t0 + 90 * ms, vec![]),
                // The source has passed it: it goes, with no later packet to push it out.
                (t0 + 150 * ms, vec![t0 + 100 * ms]),
                (t0 + 200 * ms, vec![]),
                // The job's stream ends: nothing more comes on it.
                (u64::MAX, vec![]),
            ]
        );
    }

    /// Random scripts that keep the source's promise (nothing handed out is stamped before the
    /// watermark stated earlier): every batch's `complete_ns` holds (no packet of a later batch
    /// is stamped before it), never goes back, and a job's packets come out in time order.
    #[test]
    fn every_batch_states_a_watermark_that_later_packets_keep() {
        let ms = 1_000_000;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..16 {
            let job = round % 2 == 0;
            let mut complete = 1_700_000_000_000 * ms;
            let mut steps = Vec::new();
            let mut sent = 0;
            for _ in 0..60 {
                let packets: Vec<u64> = (0..next(4) * next(8))
                    .map(|_| complete + next(40 * ms))
                    .collect();
                sent += packets.len();
                complete += next(20 * ms);
                steps.push((packets, complete));
            }
            // Small batches (a few packets), cut within a read; some handed over only by their
            // size, with the one being filled kept back.
            let settings = match round % 4 {
                0 | 1 => (700, Duration::from_secs(3600), Duration::from_secs(3600)),
                _ => (1500, Duration::ZERO, Duration::from_millis(1)),
            };
            let batches = capture_batches(Script::new(steps, Duration::ZERO), job, settings);
            let times: Vec<u64> = batches.iter().flat_map(|(_, t)| t.clone()).collect();
            assert_eq!(times.len(), sent, "round {round}: every packet, once");
            if job {
                assert!(
                    times.is_sorted(),
                    "round {round}: a job's packets in time order"
                );
                assert_eq!(batches.last().map(|b| b.0), Some(u64::MAX));
            }
            let mut stated = 0;
            for (i, (complete, _)) in batches.iter().enumerate() {
                assert!(*complete >= stated, "round {round}: batch {i} goes back");
                stated = *complete;
                let later = batches[i + 1..].iter().flat_map(|(_, t)| t.iter());
                if let Some(early) = later.filter(|&&ns| ns < *complete).min() {
                    panic!("round {round}: batch {i} states {complete}, a later one has {early}");
                }
            }
        }
    }

    #[test]
    fn end_reasons_are_the_protocols_words() {
        assert_eq!(EndReason::MaxPackets.as_wire(), "max_packets");
        assert_eq!(EndReason::Duration.as_wire(), "duration");
        assert_eq!(
            EndReason::Error("eth0: poll: EBADF".into()).as_wire(),
            "error: eth0: poll: EBADF"
        );
    }
}
