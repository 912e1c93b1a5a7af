//! The live view of a job (`GET /api/v1/jobs/{id}/watch`): every device's packets merged into
//! one time order as they arrive, the same packet seen at several devices shown once.
//!
//! The view subscribes to the batches ingest stores ([`crate::fanout`]) *before* it looks at
//! what is stored, then reads, under the catalogue lock, each device stream's stored segments
//! and the number of the last batch they hold. It shows the stored packets first (unless asked
//! for `from=now`), then the batches that arrive, skipping those the stored part already had: so
//! every packet of the job appears exactly once, whenever the view was opened.
//!
//! Packets go through [`trawl_merge::Live`]: one source per device; a source's watermark is
//! the time of its latest packet or what its batches state in `complete_ns` (a quiet device's
//! agent sends an empty batch every 250 ms, docs/protocol.md); a packet waits at most
//! `max_hold` for a source that says nothing; late packets are shown, marked and counted;
//! duplicates (by the hop-invariant key, or exact bytes, or not at all) are removed and counted.
//! The view ends once the job has ended on every device and everything the devices delivered has
//! been shown — or when the client goes away.
//!
//! Formats: `text` (one line per packet: time, `device/interface`, tcpdump-style summary; a
//! last line beginning `#` with the counts), `events` (server-sent events: `packet` with that
//! line and its fields as JSON, `stats` every second, `end`), `pcapng` (one interface per
//! device, named `device/interface`, for `wireshark -k -i -`; a late packet carries a comment
//! saying so).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::mpsc;
use trawl_decode::{TextFormatter, TextOptions};
use trawl_merge::{Held, Live, LiveStats, Order};
use trawl_pcap::{CaptureReader, Interface, Options, OwnedOptions, PcapngWriter, Timestamp, opt};
use trawl_store::{SegmentReader, WindowOf};
use trawl_wire::Batch;

use super::store::WatchSource;
use super::{bad, job_id, not_found};
use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::{Catalogue, OrgId};
use crate::fanout::StoredBatch;
use crate::retrieve::{Chunks, Piece};

/// How long a packet waits for a device that says nothing, by default.
const MAX_HOLD: Duration = Duration::from_millis(500);
/// How far apart in time two copies of one packet may be, by default.
const DEDUP_WINDOW: Duration = Duration::from_millis(5);
/// At most this many packets wait in the merge: beyond, the earliest go regardless.
const MAX_HELD: usize = 100_000;
/// Arrived batches waiting while the stored part is shown: beyond this many bytes they are
/// skipped (and counted) — the view then says so; the download has everything.
const MAX_PENDING_BYTES: usize = 256 << 20;
/// How often the job's state is looked at.
const STATE_EVERY: Duration = Duration::from_millis(200);
/// How often the `events` format sends the counts (and finds out that the client left).
const STATS_EVERY: Duration = Duration::from_secs(1);
/// The comment a late packet carries in the pcapng view.
const LATE_COMMENT: &str = "late: shown after later packets of the merged view";
/// Chunks in flight to the client before the view waits for it.
const CHUNKS_IN_FLIGHT: usize = 64;

/// The query of `GET /api/v1/jobs/{id}/watch`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// `text` (default), `events`, or `pcapng`.
    pub format: Option<String>,
    /// `start` (default): the job's packets from its beginning; `now`: only those stored from
    /// now on.
    pub from: Option<String>,
    /// `network` (default: the hop-invariant key), `exact` (identical bytes), or `off`.
    pub dedup: Option<String>,
    /// How far apart two copies may be: `5ms` by default (units ns, us, ms, s).
    pub dedup_window: Option<String>,
    /// The longest a packet waits for a quiet device: `500ms` by default.
    pub max_hold: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Events,
    Pcapng,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyMode {
    Network,
    Exact,
    Off,
}

#[derive(Debug)]
struct Settings {
    format: Format,
    from_start: bool,
    key: KeyMode,
    dedup_window: Duration,
    max_hold: Duration,
}

/// `5ms`, `200us`, `1s`, `0.5s`, `250ns`; a bare number is milliseconds.
fn parse_duration(field: &str, text: &str) -> Result<Duration, ApiError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "" | "ms" => 1e-3,
        "s" => 1.0,
        _ => 0.0,
    };
    match number.parse::<f64>() {
        Ok(n) if scale > 0.0 && n.is_finite() && n >= 0.0 && n * scale <= 3600.0 => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(bad(format!(
            "{field}: {text:?} is not a duration (a number with ns, us, ms or s; at most an hour)"
        ))),
    }
}

impl Settings {
    fn new(q: &WatchQuery, headers: &HeaderMap) -> Result<Settings, ApiError> {
        let wants_events = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        let format = match q.format.as_deref() {
            None if wants_events => Format::Events,
            None | Some("text") => Format::Text,
            Some("events") => Format::Events,
            Some("pcapng") => Format::Pcapng,
            Some(other) => {
                return Err(bad(format!(
                    "format: {other:?} is not one of text, events, pcapng"
                )));
            }
        };
        let from_start = match q.from.as_deref() {
            None | Some("start") => true,
            Some("now") => false,
            Some(other) => return Err(bad(format!("from: {other:?} is not start or now"))),
        };
        let key = match q.dedup.as_deref() {
            None | Some("network") => KeyMode::Network,
            Some("exact") => KeyMode::Exact,
            Some("off") => KeyMode::Off,
            Some(other) => {
                return Err(bad(format!(
                    "dedup: {other:?} is not one of network, exact, off"
                )));
            }
        };
        let dedup_window = match &q.dedup_window {
            Some(t) => parse_duration("dedup_window", t)?,
            None => DEDUP_WINDOW,
        };
        let max_hold = match &q.max_hold {
            Some(t) => parse_duration("max_hold", t)?,
            None => MAX_HOLD,
        };
        Ok(Settings {
            format,
            from_start,
            key,
            dedup_window,
            max_hold,
        })
    }
}

/// `GET /api/v1/jobs/{id}/watch`.
pub(crate) async fn watch_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WatchQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let job = job_id(&id)?;
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let settings = Settings::new(&query, &headers)?;
    // Listening first, then reading what is stored: a batch stored in between is in both, and
    // the batch numbers tell which.
    let arrivals = st.fanout.subscribe();
    let sources = st
        .db(move |c| c.watch_sources(org, job))
        .await?
        .ok_or_else(|| not_found(&id))?;
    let (tx, rx) = mpsc::channel::<Piece>(CHUNKS_IN_FLIGHT);
    let content_type = match settings.format {
        Format::Text => "text/plain; charset=utf-8",
        Format::Events => "text/event-stream",
        Format::Pcapng => "application/x-pcapng",
    };
    let view = View::new(org, job, settings, sources, arrivals, tx);
    let catalogue = st.catalogue.clone();
    let data_dir = st.ingest.data_dir.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || view.run(&catalogue, &data_dir, &runtime));
    let mut response = Body::from_stream(Chunks::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A packet waiting in the merge.
struct Pkt {
    orig_len: u32,
    data: Vec<u8>,
}

/// One device's part of the job, as the view follows it.
struct Source {
    part: WatchSource,
    label: String,
    link_type: u32,
    /// No more packets will come (its part ended and what it delivered was taken in).
    closed: bool,
    shown: u64,
}

/// Why the view ended.
enum End {
    /// The job ended on every device.
    JobEnded,
    /// The job no longer exists.
    Gone,
    /// The client went away, or the server is stopping (the client's stream breaks off).
    ClientGone,
}

struct View {
    org: OrgId,
    job: i64,
    settings: Settings,
    sources: Vec<Source>,
    live: Live<Pkt>,
    arrivals: broadcast::Receiver<Arc<StoredBatch>>,
    pending: VecDeque<Arc<StoredBatch>>,
    pending_bytes: usize,
    /// Batches the view could not keep up with: their number, and packets where known.
    skipped_batches: u64,
    skipped_packets: u64,
    clock: Instant,
    out: Output,
    serial: u64,
}

/// Where the view writes: a buffer sent to the client as one chunk at a time.
struct Output {
    format: Format,
    tx: mpsc::Sender<Piece>,
    buf: Vec<u8>,
    pcap: Option<PcapngWriter<Vec<u8>>>,
    formatters: Vec<TextFormatter>,
    line: Vec<u8>,
}

impl Output {
    /// Sends what is buffered; false when the client has gone.
    fn send(&mut self) -> bool {
        if let Some(w) = &mut self.pcap {
            self.buf.append(w.get_mut());
        }
        if self.buf.is_empty() {
            return !self.tx.is_closed();
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Piece::Chunk(chunk)).is_ok()
    }

    fn event(&mut self, name: &str, data: &serde_json::Value) {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\ndata: ");
        self.buf.extend_from_slice(data.to_string().as_bytes());
        self.buf.extend_from_slice(b"\n\n");
    }
}

fn stats_json(stats: LiveStats, held: usize, skipped: (u64, u64)) -> serde_json::Value {
    json!({
        "packets": stats.released,
        "duplicates": stats.duplicates,
        "late": stats.late,
        "held": held,
        "skipped_batches": skipped.0,
        "skipped_packets": skipped.1,
    })
}

impl View {
    fn new(
        org: OrgId,
        job: i64,
        settings: Settings,
        parts: Vec<WatchSource>,
        arrivals: broadcast::Receiver<Arc<StoredBatch>>,
        tx: mpsc::Sender<Piece>,
    ) -> View {
        let sources: Vec<Source> = parts
            .into_iter()
            .map(|part| {
                let label = format!(
                    "{}/{}",
                    part.device.name,
                    part.interface.as_deref().unwrap_or("-")
                );
                Source {
                    link_type: part.link_type.unwrap_or(1),
                    label,
                    part,
                    closed: false,
                    shown: 0,
                }
            })
            .collect();
        let mut live = Live::new(
            sources.len(),
            nanos(settings.max_hold),
            nanos(settings.dedup_window),
        );
        for (i, s) in sources.iter().enumerate() {
            // A device that never started has nothing to send.
            if matches!(s.part.state.as_str(), "offline" | "failed") {
                live.close(i);
            }
        }
        let formatters = sources
            .iter()
            .map(|_| TextFormatter::new(TextOptions::default()))
            .collect();
        View {
            org,
            job,
            out: Output {
                format: settings.format,
                tx,
                buf: Vec::new(),
                pcap: None,
                formatters,
                line: Vec::new(),
            },
            settings,
            sources,
            live,
            arrivals,
            pending: VecDeque::new(),
            pending_bytes: 0,
            skipped_batches: 0,
            skipped_packets: 0,
            clock: Instant::now(),
            serial: 0,
        }
    }

    fn now(&self) -> u64 {
        nanos(self.clock.elapsed())
    }

    fn run(
        mut self,
        catalogue: &std::sync::Mutex<Catalogue>,
        data_dir: &std::path::Path,
        runtime: &tokio::runtime::Handle,
    ) {
        let what = format!("live view of job {} of organisation {}", self.job, self.org);
        self.start();
        let end = match self.show_stored(data_dir) {
            Ok(()) => self.follow(catalogue, runtime),
            Err(e) => {
                tracing::error!("{what}: reading the stored packets: {e}");
                let e = io::Error::other(format!("reading the stored packets: {e}"));
                let _ = self.out.tx.blocking_send(Piece::Fail(e));
                return;
            }
        };
        let stats = self.live.stats();
        let reason = match end {
            End::JobEnded => "the job has ended on every device",
            End::Gone => "the job no longer exists",
            End::ClientGone => "the client went away",
        };
        tracing::info!(
            "{what} ended ({reason}): {} packets shown, {} duplicates removed, {} late, {} batches skipped",
            stats.released,
            stats.duplicates,
            stats.late,
            self.skipped_batches
        );
        if !matches!(end, End::ClientGone) {
            self.finish(reason);
            let _ = self.out.tx.blocking_send(Piece::End);
        }
    }

    /// What comes before the packets: the pcapng section and interfaces, or the sources.
    fn start(&mut self) {
        match self.out.format {
            Format::Pcapng => {
                let mut section = PcapngWriter::<io::Sink>::default_section_options();
                section.push_str(
                    opt::COMMENT,
                    &format!("trawl live view of capture job {}", self.job),
                );
                let mut w = PcapngWriter::new(Vec::new(), &section).expect("writing to memory");
                for s in &self.sources {
                    let snaplen = 262_144;
                    let mut i = Interface::new(s.link_type, snaplen, 1_000_000_000);
                    i.options.push_str(opt::IF_NAME, &s.label);
                    i.options.push_str(
                        opt::IF_DESCRIPTION,
                        &format!("trawl device {} ({})", s.part.device.id, s.part.device.name),
                    );
                    w.add_interface(&i).expect("writing to memory");
                }
                self.out.pcap = Some(w);
            }
            Format::Events => {
                let sources: Vec<serde_json::Value> = self
                    .sources
                    .iter()
                    .map(|s| {
                        json!({
                            "device": s.part.device.name,
                            "device_id": s.part.device.id,
                            "interface": s.part.interface,
                            "link_type": s.link_type,
                            "state": s.part.state,
                        })
                    })
                    .collect();
                let data = json!({ "job": self.job, "sources": sources });
                self.out.event("start", &data);
            }
            Format::Text => {}
        }
        self.out.send();
    }

    /// Shows the stored packets of every device in time order (through the merge, which also
    /// holds back those that arrived batches may still precede).
    fn show_stored(&mut self, data_dir: &std::path::Path) -> Result<(), trawl_store::StoreError> {
        if !self.settings.from_start {
            for s in &mut self.sources {
                s.part.stored_until.clear();
            }
            return Ok(());
        }
        let mut cursors: Vec<StoredCursor> = self
            .sources
            .iter()
            .map(|s| StoredCursor {
                segments: s.part.segments.clone().into_iter(),
                window: None,
            })
            .collect();
        let mut order = Order::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(ts) = c.next(data_dir)? {
                order.push(ts, i as u64, i);
            }
        }
        let mut n = 0u64;
        while let Some(i) = order.pop() {
            let (ts, packet) = {
                let win = cursors[i].window.as_ref().expect("a cursor with a packet");
                let p = win.packet().expect("a cursor with a packet");
                (
                    p.ts.as_nanos(),
                    Pkt {
                        orig_len: p.orig_len,
                        data: p.data.to_vec(),
                    },
                )
            };
            self.push(i, ts, packet);
            n += 1;
            if n.is_multiple_of(1024) {
                self.take_arrivals();
                if !self.release() {
                    return Ok(());
                }
            }
            if let Some(ts) = cursors[i].next(data_dir)? {
                order.push(ts, i as u64, i);
            }
        }
        self.release();
        Ok(())
    }

    /// Follows the arriving batches until the job has ended everywhere.
    fn follow(
        &mut self,
        catalogue: &std::sync::Mutex<Catalogue>,
        runtime: &tokio::runtime::Handle,
    ) -> End {
        let mut last_state = Instant::now() - STATE_EVERY;
        let mut last_stats = Instant::now();
        loop {
            if let Some(batch) = self.pending.pop_front() {
                self.pending_bytes -= batch.batch.len();
                self.take(&batch);
            } else {
                let wait = Duration::from_millis(50);
                match runtime
                    .block_on(async { tokio::time::timeout(wait, self.arrivals.recv()).await })
                {
                    Ok(Ok(batch)) => self.take(&batch),
                    Ok(Err(RecvError::Lagged(n))) => self.skipped_batches += n,
                    Ok(Err(RecvError::Closed)) => return End::ClientGone,
                    Err(_) => {}
                }
            }
            if !self.release() {
                return End::ClientGone;
            }
            if last_state.elapsed() >= STATE_EVERY {
                last_state = Instant::now();
                let states = {
                    let c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
                    c.job_states(self.org, self.job)
                };
                match states {
                    Ok(Some((job, parts))) => {
                        if self.ended(&job, &parts) {
                            return End::JobEnded;
                        }
                    }
                    Ok(None) => return End::Gone,
                    Err(e) => tracing::warn!("live view of job {}: {e}", self.job),
                }
            }
            if self.out.format == Format::Events && last_stats.elapsed() >= STATS_EVERY {
                last_stats = Instant::now();
                let data = stats_json(
                    self.live.stats(),
                    self.live.held(),
                    (self.skipped_batches, self.skipped_packets),
                );
                self.out.event("stats", &data);
                if !self.out.send() {
                    return End::ClientGone;
                }
            } else if self.out.tx.is_closed() {
                return End::ClientGone;
            }
        }
    }

    /// Closes the sources whose part has ended, after taking in every batch stored before the
    /// part's end was recorded (an agent reports its result only once its batches are stored);
    /// whether the whole job has ended.
    fn ended(&mut self, job: &str, parts: &[String]) -> bool {
        let newly: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(i, state)| {
                self.sources.get(*i).is_some_and(|s| !s.closed)
                    && matches!(state.as_str(), "finished" | "offline" | "failed")
            })
            .map(|(i, _)| i)
            .collect();
        if newly.is_empty() && job != "finished" {
            return false;
        }
        self.take_arrivals();
        while let Some(batch) = self.pending.pop_front() {
            self.pending_bytes -= batch.batch.len();
            self.take(&batch);
        }
        for i in newly {
            self.sources[i].closed = true;
            self.live.close(i);
        }
        job == "finished"
    }

    /// Moves the batches that have arrived into `pending` without waiting.
    fn take_arrivals(&mut self) {
        loop {
            match self.arrivals.try_recv() {
                Ok(batch) => {
                    if !self.wanted(&batch) {
                        continue;
                    }
                    if self.pending_bytes + batch.batch.len() > MAX_PENDING_BYTES {
                        self.skipped_batches += 1;
                        self.skipped_packets +=
                            trawl_wire::read_header(&batch.batch).map_or(0, |h| h.packets as u64);
                        continue;
                    }
                    self.pending_bytes += batch.batch.len();
                    self.pending.push_back(batch);
                }
                Err(TryRecvError::Lagged(n)) => self.skipped_batches += n,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    /// The source a stored batch belongs to, if it is one of this job's streams.
    fn source_of(&self, b: &StoredBatch) -> Option<usize> {
        if b.org != self.org {
            return None;
        }
        self.sources
            .iter()
            .position(|s| s.part.device.id == b.device && s.part.stream == b.stream)
    }

    fn wanted(&self, b: &StoredBatch) -> bool {
        self.source_of(b).is_some()
    }

    /// Takes in one arrived batch: its packets, then its watermark.
    fn take(&mut self, b: &StoredBatch) {
        let Some(i) = self.source_of(b) else {
            return;
        };
        // Ingest checked it completely before storing it.
        let Some(batch) = Batch::split(&b.batch) else {
            tracing::error!(
                "live view of job {}: a stored batch has no header",
                self.job
            );
            return;
        };
        let h = batch.header;
        let already = self.sources[i]
            .part
            .stored_until
            .iter()
            .any(|&(epoch, last)| epoch == h.epoch && h.seq <= last);
        if already {
            return;
        }
        match CaptureReader::new(batch.body) {
            Ok(mut r) => loop {
                match r.next_packet() {
                    Ok(Some(p)) => {
                        let packet = Pkt {
                            orig_len: p.orig_len,
                            data: p.data.to_vec(),
                        };
                        self.push(i, p.ts.as_nanos(), packet);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("live view of job {}: a stored batch: {e}", self.job);
                        break;
                    }
                }
            },
            Err(e) => tracing::error!("live view of job {}: a stored batch: {e}", self.job),
        }
        if h.complete_ns > 0 {
            self.live.advance(i, h.complete_ns);
        }
    }

    fn push(&mut self, source: usize, ts: u64, packet: Pkt) {
        let link_type = self.sources[source].link_type;
        let key =
            match self.settings.key {
                KeyMode::Network => trawl_merge::invariant_key(
                    &trawl_decode::decode_with_wire_len(link_type, &packet.data, packet.orig_len),
                ),
                KeyMode::Exact => trawl_merge::exact_key(&packet.data, packet.orig_len),
                KeyMode::Off => {
                    self.serial += 1;
                    self.serial
                }
            };
        let now = self.now();
        self.live.push(source, ts, key, packet, now);
    }

    /// Shows what the merge lets go now; false when the client has gone.
    fn release(&mut self) -> bool {
        let now = self.now();
        let mut released = Vec::new();
        self.live.release(now, |h| released.push(h));
        while self.live.held() > MAX_HELD {
            // Too much waiting for a quiet device: the earliest go as if held long enough.
            self.live.release(u64::MAX, |h| released.push(h));
        }
        if released.is_empty() {
            return !self.out.tx.is_closed();
        }
        for h in &released {
            self.show(h);
        }
        self.out.send()
    }

    fn show(&mut self, h: &Held<Pkt>) {
        let s = &mut self.sources[h.source];
        s.shown += 1;
        let ts = Timestamp::from_nanos(h.ts);
        let out = &mut self.out;
        if let Some(w) = &mut out.pcap {
            let mut late = OwnedOptions::new();
            if h.late {
                late.push_str(opt::COMMENT, LATE_COMMENT);
            }
            w.write(
                h.source as u32,
                ts,
                h.packet.orig_len,
                &h.packet.data,
                if h.late {
                    late.view()
                } else {
                    Options::default()
                },
            )
            .expect("writing to memory");
            return;
        }
        out.line.clear();
        out.formatters[h.source].write_line(
            &mut out.line,
            ts.secs,
            ts.nanos,
            s.link_type,
            &h.packet.data,
            h.packet.orig_len,
        );
        // `TIME rest` becomes `TIME device/interface rest`.
        let at = out
            .line
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(out.line.len());
        let mut text = Vec::with_capacity(out.line.len() + s.label.len() + 1);
        text.extend_from_slice(&out.line[..at]);
        text.push(b' ');
        text.extend_from_slice(s.label.as_bytes());
        text.extend_from_slice(&out.line[at..]);
        match out.format {
            Format::Text => out.buf.extend_from_slice(&text),
            Format::Events => {
                while text.last() == Some(&b'\n') {
                    text.pop();
                }
                let data = json!({
                    "ts_ns": h.ts,
                    "device": s.part.device.name,
                    "interface": s.part.interface,
                    "source": h.source,
                    "len": h.packet.orig_len,
                    "caplen": h.packet.data.len(),
                    "late": h.late,
                    "text": String::from_utf8_lossy(&text),
                });
                out.event("packet", &data);
            }
            Format::Pcapng => unreachable!("pcapng is written above"),
        }
    }

    /// Shows what is still held, then the counts.
    fn finish(&mut self, reason: &str) {
        let mut released = Vec::new();
        self.live.flush(|h| released.push(h));
        for h in &released {
            self.show(h);
        }
        let stats = self.live.stats();
        match self.out.format {
            Format::Text => {
                self.out.buf.extend_from_slice(
                    format!(
                        "# {reason}: {} packets shown, {} duplicates removed, {} late, {} batches skipped\n",
                        stats.released, stats.duplicates, stats.late, self.skipped_batches
                    )
                    .as_bytes(),
                );
            }
            Format::Events => {
                let mut data = stats_json(
                    stats,
                    self.live.held(),
                    (self.skipped_batches, self.skipped_packets),
                );
                data["reason"] = json!(reason);
                let per_source: Vec<serde_json::Value> = self
                    .sources
                    .iter()
                    .map(|s| json!({ "device": s.part.device.name, "shown": s.shown }))
                    .collect();
                data["sources"] = json!(per_source);
                self.out.event("end", &data);
            }
            Format::Pcapng => {}
        }
        self.out.send();
    }
}

/// Where one device's stored packets are being read.
struct StoredCursor {
    segments: std::vec::IntoIter<crate::catalogue::WindowSegment>,
    window: Option<WindowOf<SegmentReader>>,
}

impl StoredCursor {
    /// Moves to the next stored packet; its time, or `None` when there is no more.
    fn next(&mut self, data_dir: &std::path::Path) -> Result<Option<u64>, trawl_store::StoreError> {
        loop {
            if let Some(win) = &mut self.window {
                if win.advance()? {
                    return Ok(Some(win.packet().expect("advanced").ts.as_nanos()));
                }
                self.window = None;
            }
            let Some(seg) = self.segments.next() else {
                return Ok(None);
            };
            let dir = data_dir.join(&seg.dir);
            let Some(reader) = crate::retrieve::open_stored(&dir, &seg.name, seg.stored_bytes)?
            else {
                // Removed by retention since: nothing to show of it.
                continue;
            };
            self.window =
                Some(reader.into_window(Timestamp::default(), Timestamp::new(u64::MAX, 0)));
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        let d = |t| parse_duration("x", t);
        assert_eq!(d("5ms").unwrap(), Duration::from_millis(5));
        assert_eq!(d("250").unwrap(), Duration::from_millis(250));
        assert_eq!(d("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(d("200us").unwrap(), Duration::from_micros(200));
        for bad in ["", "ms", "5 minutes", "-1ms", "2h", "1e9s"] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_come_from_the_query_and_the_accept_header() {
        let mut h = HeaderMap::new();
        let s = Settings::new(&WatchQuery::default(), &h).unwrap();
        assert_eq!(
            (s.format, s.from_start, s.key),
            (Format::Text, true, KeyMode::Network)
        );
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        assert_eq!(
            Settings::new(&WatchQuery::default(), &h).unwrap().format,
            Format::Events
        );
        let q = WatchQuery {
            format: Some("json".into()),
            ..WatchQuery::default()
        };
        let e = Settings::new(&q, &h).unwrap_err();
        assert!(format!("{e:?}").contains("not one of text, events, pcapng"));
    }
}
