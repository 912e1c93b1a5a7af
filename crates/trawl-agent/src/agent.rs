//! The agent at work: for each stream (one interface, or one replayed file), three threads.
//!
//! ```text
//! capture ──(bounded channel of batches)──▶ spooler ──▶ Spool (memory/disk) ──▶ uplink ──HTTPS──▶ server
//! ```
//!
//! - **capture** reads the [`Source`], fills a [`BatchBuilder`] and hands it over when it is
//!   `batch_max_bytes` long (even in the middle of one read from the source), when its first packet is `batch_max_delay` old, or every
//!   `heartbeat` even when empty (a heartbeat carries the drop counters). It never touches the
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use trawl_bpf::Program;
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
    /// After a stop, how long the uplinks go on sending what is spooled.
    pub drain_timeout: Duration,
    /// AF_PACKET ring: block size and count (`None`: the source's defaults).
    pub ring: Option<(u32, u32)>,
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
            drain_timeout: Duration::from_secs(10),
            ring: None,
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
struct Counters {
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
    fn status(&self, stream: &str) -> StreamStatus {
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
struct Shared {
    /// Stop capturing (set by the caller, or after a fatal error).
    stop: Arc<AtomicBool>,
    /// The reason the agent must stop, if it must.
    fatal: Mutex<Option<AgentError>>,
}

impl Shared {
    fn fail(&self, e: AgentError) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(e);
        }
        self.stop.store(true, Relaxed);
    }
}

/// A stream's spool and the bell the uplink waits on.
struct SpoolCell {
    spool: Mutex<Spool>,
    bell: Condvar,
    /// The spooler has written its last batch.
    done: AtomicBool,
}

impl SpoolCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
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

/// A running stream: its name, counters and threads.
struct Stream {
    name: String,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

/// A running agent.
pub struct Agent {
    streams: Vec<Stream>,
    shared: Arc<Shared>,
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
    /// Starts the threads of every stream.
    pub fn start(self) -> Agent {
        let Opened {
            api,
            config,
            stop,
            log,
            streams: opened,
        } = self;
        let shared = Arc::new(Shared {
            stop,
            fatal: Mutex::new(None),
        });
        let mut streams = Vec::new();
        for OpenStream {
            name,
            source,
            soft_filter,
            spool,
        } in opened
        {
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
            let (tx, rx) = sync_channel::<Filled>(8);
            let mut threads = Vec::new();
            {
                let (shared, counters, config, name) = (
                    shared.clone(),
                    counters.clone(),
                    config.clone(),
                    name.clone(),
                );
                threads.push(spawn(&format!("capture {name}"), move || {
                    capture(source, soft_filter, &name, &config, tx, &counters, &shared)
                }));
            }
            {
                let (shared, counters, cell, log) =
                    (shared.clone(), counters.clone(), cell.clone(), log.clone());
                threads.push(spawn(&format!("spool {name}"), move || {
                    spooler(rx, &cell, &counters, &shared, &*log)
                }));
            }
            {
                let (shared, counters, cell, api, log, name) = (
                    shared.clone(),
                    counters.clone(),
                    cell.clone(),
                    api.clone(),
                    log.clone(),
                    name.clone(),
                );
                let drain = config.drain_timeout;
                threads.push(spawn(&format!("uplink {name}"), move || {
                    lower_priority(SENDER_NICE);
                    uplink(&api, &name, &cell, &counters, &shared, drain, &*log);
                    // Nothing sends from here on: what waits in memory, and whatever the
                    // spooler still hands over, goes to disk for the next start.
                    if let Err(e) = cell.lock().write_through(true) {
                        shared.fail(AgentError::Spool(e));
                    }
                }));
            }
            streams.push(Stream {
                name,
                counters,
                threads,
            });
        }
        Agent { streams, shared }
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

    /// Whether every thread has ended (a replayed file fully sent, or stopped and drained).
    pub fn finished(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.threads.iter().all(|t| t.is_finished()))
    }

    /// Waits for every thread; returns the final counters, or why the agent had to stop.
    pub fn join(self) -> Result<Vec<StreamStatus>, AgentError> {
        let status = {
            for s in &self.streams {
                for t in &s.threads {
                    while !t.is_finished() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            self.status()
        };
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

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(f)
        .expect("starting a thread")
}

/// The capture thread: packets into batches, batches to the spooler.
fn capture(
    mut source: Box<dyn Source + Send>,
    soft_filter: Option<Program>,
    name: &str,
    config: &AgentConfig,
    tx: SyncSender<Filled>,
    counters: &Counters,
    shared: &Shared,
) {
    let (link_type, snaplen) = (source.link_type(), source.snaplen());
    // A batch is handed over as soon as it reaches `batch_max_bytes`, even in the middle of
    // what one read from the source delivered; its buffer has room for that plus one packet, so
    // it never grows (growing copies everything written so far).
    let max = config.batch_max_bytes as usize;
    let capacity = max + snaplen as usize + 64;
    let new_builder = || BatchBuilder::with_capacity(name, link_type, snaplen, capacity);
    let mut builder = new_builder();
    // Batches filled during the current read, to hand over once it returns.
    let mut full: Vec<BatchBuilder> = Vec::new();
    let mut first_at: Option<Instant> = None;
    let mut last_flush = Instant::now();
    let mut reported = crate::source::SourceStats::default();
    let tick = Duration::from_millis(50);

    // Hands over the batches filled during the last read and, with `current`, the one being
    // filled; the drops counted since the last hand-over travel with the last of them.
    let mut flush = |full: &mut Vec<BatchBuilder>,
                     current: Option<(&mut BatchBuilder, &mut Option<Instant>)>,
                     source: &mut Box<dyn Source + Send>|
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
        if let Some((builder, first_at)) = current {
            full.push(std::mem::replace(builder, new_builder()));
            *first_at = None;
        }
        let last = full.len().saturating_sub(1);
        full.drain(..).enumerate().all(|(i, builder)| {
            let drops = if i == last { drops } else { Drops::default() };
            tx.send(Filled { builder, drops }).is_ok()
        })
    };

    loop {
        if shared.stop.load(Relaxed) {
            flush(&mut full, Some((&mut builder, &mut first_at)), &mut source);
            break;
        }
        let mut got = 0u64;
        let mut rejected = 0u64;
        let result = source.next_batch(tick, &mut |p| {
            if let Some(prog) = &soft_filter
                && prog.run(p.data, p.orig_len) == 0
            {
                rejected += 1;
                return;
            }
            builder.push(p.ts, p.orig_len, p.data);
            got += 1;
            if builder.encoded_len() >= max {
                full.push(std::mem::replace(&mut builder, new_builder()));
                first_at = None;
            }
        });
        counters.captured.fetch_add(got, Relaxed);
        counters.filtered_out.fetch_add(rejected, Relaxed);
        match result {
            Ok(Batch::Finished) => {
                flush(&mut full, Some((&mut builder, &mut first_at)), &mut source);
                break;
            }
            Ok(_) => {}
            Err(e) => {
                flush(&mut full, Some((&mut builder, &mut first_at)), &mut source);
                shared.fail(AgentError::Source(e));
                break;
            }
        }
        if first_at.is_none() && builder.packets() > 0 {
            first_at = Some(Instant::now());
        }
        let current_due = first_at.is_some_and(|t| t.elapsed() >= config.batch_max_delay)
            || last_flush.elapsed() >= config.heartbeat;
        if current_due || !full.is_empty() {
            last_flush = Instant::now();
            let current = current_due.then_some((&mut builder, &mut first_at));
            if !flush(&mut full, current, &mut source) {
                break;
            }
        }
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
