//! The server's counters and `GET /metrics` in the Prometheus text exposition format
//! (version 0.0.4), written by hand.
//!
//! [`Metrics`] holds server-wide atomic counters that ingest and retention bump as they work;
//! they say nothing about any organisation's devices, so every organisation's admin may read
//! them. The per-device series of a scrape come from the catalogue and only for the
//! organisation whose admin token the scrape carries.
//!
//! It also keeps, in memory, when each device last made an authenticated request: the device
//! list's `connected` (a request in the last [`CONNECTED_WITHIN`]).
//!
//! **A full disk** (or another storage failure) is an *episode*: the first refused batch is
//! logged as an error with its cause, the next ones only at debug level, and the first batch
//! stored again is logged as the recovery, with the number of batches refused in between.

use std::collections::HashMap;
use std::fmt::{Display, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::DeviceId;
use crate::ingest::IngestError;

/// A device that made an authenticated request this recently counts as connected.
pub const CONNECTED_WITHIN: Duration = Duration::from_secs(30);

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What became of a batch upload (`trawl_batches_total{outcome=…}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchOutcome {
    Stored,
    Duplicate,
    Gap,
    /// Not a valid batch, or a bad stream name.
    Bad,
    TooLarge,
    /// The disk is full or failed: `503`, to be sent again.
    StorageError,
    Unauthorized,
    /// Anything else (a catalogue error that is not a full disk).
    Internal,
}

impl BatchOutcome {
    const ALL: [BatchOutcome; 8] = [
        BatchOutcome::Stored,
        BatchOutcome::Duplicate,
        BatchOutcome::Gap,
        BatchOutcome::Bad,
        BatchOutcome::TooLarge,
        BatchOutcome::StorageError,
        BatchOutcome::Unauthorized,
        BatchOutcome::Internal,
    ];

    fn label(self) -> &'static str {
        match self {
            BatchOutcome::Stored => "stored",
            BatchOutcome::Duplicate => "duplicate",
            BatchOutcome::Gap => "gap",
            BatchOutcome::Bad => "bad",
            BatchOutcome::TooLarge => "too_large",
            BatchOutcome::StorageError => "storage_error",
            BatchOutcome::Unauthorized => "unauthorized",
            BatchOutcome::Internal => "internal",
        }
    }

    /// The outcome of a refused upload, from the kind of its error answer.
    pub(crate) fn of_error(kind: &str) -> BatchOutcome {
        match kind {
            "gap" => BatchOutcome::Gap,
            "too_large" => BatchOutcome::TooLarge,
            "storage" => BatchOutcome::StorageError,
            "unauthorized" => BatchOutcome::Unauthorized,
            "internal" => BatchOutcome::Internal,
            _ => BatchOutcome::Bad,
        }
    }
}

/// Why a batch could not be stored (`trawl_storage_errors_total{reason=…}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StorageFailure {
    /// The file system is full or over quota (ENOSPC, EDQUOT, SQLITE_FULL).
    NoSpace,
    /// Any other failure to read or write the disk.
    Io,
}

impl StorageFailure {
    fn label(self) -> &'static str {
        match self {
            StorageFailure::NoSpace => "no_space",
            StorageFailure::Io => "io",
        }
    }

    fn state(self) -> u8 {
        match self {
            StorageFailure::NoSpace => 1,
            StorageFailure::Io => 2,
        }
    }
}

const STORAGE_OK: u8 = 0;

fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

impl IngestError {
    /// The storage failure behind this error, if it is one (a refused batch is not).
    pub(crate) fn storage_failure(&self) -> Option<StorageFailure> {
        match self {
            IngestError::Store(e) => match e.kind() {
                trawl_store::ErrorKind::DiskFull => Some(StorageFailure::NoSpace),
                // The batch holds what a segment cannot: not the disk's fault.
                trawl_store::ErrorKind::InvalidInput => None,
                _ => Some(StorageFailure::Io),
            },
            IngestError::Io { source, .. } if is_no_space(source) => Some(StorageFailure::NoSpace),
            IngestError::Io { .. } => Some(StorageFailure::Io),
            IngestError::Catalogue(e) if e.is_disk_full() => Some(StorageFailure::NoSpace),
            IngestError::Catalogue(e) if e.is_io() => Some(StorageFailure::Io),
            IngestError::Catalogue(_) | IngestError::BadBatch(_) => None,
        }
    }
}

/// The server's counters. Cheap to bump from any thread.
pub struct Metrics {
    started: Instant,
    batches: [AtomicU64; BatchOutcome::ALL.len()],
    packets_stored: AtomicU64,
    bytes_stored: AtomicU64,
    /// Indexed by `StorageFailure::state() - 1`.
    storage_errors: [AtomicU64; 2],
    /// `STORAGE_OK` or the `StorageFailure::state()` of the last write.
    storage_state: AtomicU8,
    /// Batches refused for storage since the episode began.
    refused_in_episode: AtomicU64,
    segments_open: AtomicI64,
    retention_segments: AtomicU64,
    retention_bytes: AtomicU64,
    last_request: Mutex<HashMap<DeviceId, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            batches: Default::default(),
            packets_stored: AtomicU64::new(0),
            bytes_stored: AtomicU64::new(0),
            storage_errors: Default::default(),
            storage_state: AtomicU8::new(STORAGE_OK),
            refused_in_episode: AtomicU64::new(0),
            segments_open: AtomicI64::new(0),
            retention_segments: AtomicU64::new(0),
            retention_bytes: AtomicU64::new(0),
            last_request: Mutex::new(HashMap::new()),
        }
    }
}

/// Counts one open segment writer for as long as it lives (`trawl_segments_open`).
pub(crate) struct OpenSegmentGauge(Arc<Metrics>);

impl Drop for OpenSegmentGauge {
    fn drop(&mut self) {
        self.0.segments_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn batch(&self, outcome: BatchOutcome) {
        let i = BatchOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        self.batches[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A batch of `packets` packets and `bytes` captured bytes was stored. Ends a storage
    /// failure episode; returns true if there was one (and it was logged).
    pub(crate) fn stored(&self, packets: u32, bytes: u64) -> bool {
        self.packets_stored
            .fetch_add(packets as u64, Ordering::Relaxed);
        self.bytes_stored.fetch_add(bytes, Ordering::Relaxed);
        let was = self.storage_state.swap(STORAGE_OK, Ordering::Relaxed);
        if was == STORAGE_OK {
            return false;
        }
        let refused = self.refused_in_episode.swap(0, Ordering::Relaxed);
        tracing::info!(
            "storage recovered: a batch was stored again ({refused} batch(es) were refused with \
             503 meanwhile and will be sent again by their agents)"
        );
        true
    }

    /// A batch could not be stored because of `failure`. Logs the first failure of an episode
    /// (or a change of cause) as an error, the others at debug level; returns true if it
    /// logged an error.
    pub(crate) fn storage_failed(&self, failure: StorageFailure, error: &dyn Display) -> bool {
        self.storage_errors[failure.state() as usize - 1].fetch_add(1, Ordering::Relaxed);
        self.refused_in_episode.fetch_add(1, Ordering::Relaxed);
        let was = self.storage_state.swap(failure.state(), Ordering::Relaxed);
        if was == failure.state() {
            tracing::debug!("storing a batch: {error}");
            return false;
        }
        match failure {
            StorageFailure::NoSpace => tracing::error!(
                "storage: no space left on the data directory's disk; batches are refused with \
                 503 until space is freed ({error})"
            ),
            StorageFailure::Io => tracing::error!(
                "storage: cannot write the data directory; batches are refused with 503 until a \
                 write succeeds ({error})"
            ),
        }
        true
    }

    /// A segment writer was opened; it counts until the gauge is dropped.
    pub(crate) fn segment_opened(self: &Arc<Self>) -> OpenSegmentGauge {
        self.segments_open.fetch_add(1, Ordering::Relaxed);
        OpenSegmentGauge(self.clone())
    }

    pub(crate) fn retention_deleted(&self, segments: u64, bytes: u64) {
        self.retention_segments
            .fetch_add(segments, Ordering::Relaxed);
        self.retention_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Notes that `device` made an authenticated request now.
    pub(crate) fn device_seen(&self, device: DeviceId) {
        self.last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(device, Instant::now());
    }

    /// True if `device` made an authenticated request within [`CONNECTED_WITHIN`] (since this
    /// server process started).
    pub(crate) fn connected(&self, device: DeviceId) -> bool {
        self.last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&device)
            .is_some_and(|t| t.elapsed() < CONNECTED_WITHIN)
    }

    /// The server-wide part of a scrape.
    fn write_server(&self, out: &mut Exposition, data_dir: &Path) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.family(
            "trawl_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        out.sample(
            "trawl_uptime_seconds",
            &[],
            format_args!("{:.3}", self.started.elapsed().as_secs_f64()),
        );
        out.family(
            "trawl_batches_total",
            "counter",
            "Batch uploads by outcome (stored, duplicate, gap, bad, too_large, storage_error, \
             unauthorized, internal).",
        );
        for (i, o) in BatchOutcome::ALL.iter().enumerate() {
            out.sample(
                "trawl_batches_total",
                &[("outcome", o.label())],
                get(&self.batches[i]),
            );
        }
        out.counter(
            "trawl_packets_stored_total",
            "Packets stored (in batches acknowledged as stored).",
            get(&self.packets_stored),
        );
        out.counter(
            "trawl_bytes_stored_total",
            "Captured bytes of the packets stored.",
            get(&self.bytes_stored),
        );
        out.family(
            "trawl_storage_errors_total",
            "counter",
            "Batches that could not be stored, by reason (no_space: the disk is full).",
        );
        for f in [StorageFailure::NoSpace, StorageFailure::Io] {
            out.sample(
                "trawl_storage_errors_total",
                &[("reason", f.label())],
                get(&self.storage_errors[f.state() as usize - 1]),
            );
        }
        let state = self.storage_state.load(Ordering::Relaxed);
        out.gauge(
            "trawl_storage_full",
            "1 while the last attempt to store a batch failed for lack of space, 0 once one \
             succeeds.",
            u64::from(state == StorageFailure::NoSpace.state()),
        );
        out.gauge(
            "trawl_segments_open",
            "Segment files open for appending.",
            self.segments_open.load(Ordering::Relaxed).max(0),
        );
        out.counter(
            "trawl_retention_deleted_segments_total",
            "Segments deleted by retention (age or size limits).",
            get(&self.retention_segments),
        );
        out.counter(
            "trawl_retention_deleted_bytes_total",
            "Bytes of segment and index files deleted by retention.",
            get(&self.retention_bytes),
        );
        match filesystem_space(data_dir) {
            Ok(space) => {
                out.gauge(
                    "trawl_data_free_bytes",
                    "Bytes available to the server on the data directory's file system.",
                    space.available,
                );
                out.gauge(
                    "trawl_data_size_bytes",
                    "Size of the data directory's file system.",
                    space.total,
                );
            }
            Err(e) => tracing::debug!("statvfs {}: {e}", data_dir.display()),
        }
    }
}

/// Free and total space of a file system.
struct Space {
    available: u64,
    total: u64,
}

fn filesystem_space(path: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call, and `st` points to
    // writable memory of the size of `struct statvfs`, which the call fills when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    // The field types are c_ulong and fsblkcnt_t: 32 bits on some targets.
    #[allow(clippy::unnecessary_cast)]
    let (unit, bavail, blocks) = (st.f_frsize as u64, st.f_bavail as u64, st.f_blocks as u64);
    Ok(Space {
        available: bavail.saturating_mul(unit),
        total: blocks.saturating_mul(unit),
    })
}

/// A Prometheus text exposition being written.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// What a scrape shows of one device of the caller's organisation.
pub(crate) struct DeviceSeries {
    pub id: DeviceId,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub drops: [(&'static str, u64); 3],
    pub last_seen_ns: Option<u64>,
}

/// Writes the series of the caller's own devices, and its organisation's stored bytes.
fn write_devices(
    out: &mut Exposition,
    metrics: &Metrics,
    stored_bytes: u64,
    devices: &[DeviceSeries],
) {
    out.gauge(
        "trawl_organisation_stored_bytes",
        "Bytes of segment files the catalogue holds for the caller's organisation (what the \
         size limit of retention counts).",
        stored_bytes,
    );
    let families: [(&str, &str, &str); 5] = [
        (
            "trawl_device_packets_total",
            "counter",
            "Packets stored from the device.",
        ),
        (
            "trawl_device_bytes_total",
            "counter",
            "Captured bytes stored from the device.",
        ),
        (
            "trawl_device_drops_total",
            "counter",
            "Packets the device reported lost, by kind (kernel, interface, spool).",
        ),
        (
            "trawl_device_last_seen_seconds",
            "gauge",
            "When the device last made an authenticated request (seconds since 1970).",
        ),
        (
            "trawl_device_connected",
            "gauge",
            "1 if the device made an authenticated request in the last 30 seconds.",
        ),
    ];
    for (family, kind, help) in families {
        out.family(family, kind, help);
        for d in devices {
            let id = d.id.to_string();
            let labels = [("device", d.name.as_str()), ("device_id", id.as_str())];
            match family {
                "trawl_device_packets_total" => out.sample(family, &labels, d.packets),
                "trawl_device_bytes_total" => out.sample(family, &labels, d.bytes),
                "trawl_device_drops_total" => {
                    for (kind, n) in d.drops {
                        let labels = [labels[0], labels[1], ("kind", kind)];
                        out.sample(family, &labels, n);
                    }
                }
                "trawl_device_last_seen_seconds" => {
                    if let Some(ns) = d.last_seen_ns {
                        let secs = ns as f64 / 1e9;
                        out.sample(family, &labels, format_args!("{secs:.3}"));
                    }
                }
                _ => out.sample(family, &labels, u8::from(metrics.connected(d.id))),
            }
        }
    }
}

/// `GET /metrics`: the server's counters and the caller's devices, for an organisation admin.
pub(crate) async fn scrape(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let (stored_bytes, devices) = st
        .db(move |c| {
            let stored = c.stored_bytes(org)?;
            let devices = c
                .devices(org)?
                .into_iter()
                .map(|d| DeviceSeries {
                    id: d.id.parse().unwrap_or_default(),
                    name: d.name,
                    packets: d.packets,
                    bytes: d.bytes,
                    drops: [
                        ("kernel", d.drops.kernel),
                        ("interface", d.drops.interface),
                        ("spool", d.drops.spool),
                    ],
                    last_seen_ns: d.last_seen_ns,
                })
                .collect::<Vec<_>>();
            Ok((stored, devices))
        })
        .await?;
    let metrics = st.ingest.metrics.clone();
    let data_dir = st.ingest.data_dir.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = Exposition::default();
        metrics.write_server(&mut out, &data_dir);
        write_devices(&mut out, &metrics, stored_bytes, &devices);
        out.out
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_episode_is_logged_once_and_its_end_once() {
        let m = Metrics::default();
        assert!(!m.stored(1, 10), "no episode yet");
        let e = "disk full";
        assert!(m.storage_failed(StorageFailure::NoSpace, &e));
        assert!(!m.storage_failed(StorageFailure::NoSpace, &e));
        assert!(!m.storage_failed(StorageFailure::NoSpace, &e));
        assert!(
            m.storage_failed(StorageFailure::Io, &e),
            "a new cause is logged"
        );
        assert!(m.stored(1, 10), "the recovery is logged");
        assert!(!m.stored(1, 10));
        assert!(
            m.storage_failed(StorageFailure::NoSpace, &e),
            "a new episode"
        );
        assert_eq!(m.storage_errors[0].load(Ordering::Relaxed), 4);
        assert_eq!(m.storage_errors[1].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_exposition_escapes_label_values_and_names_every_family() {
        let m = Arc::new(Metrics::default());
        m.batch(BatchOutcome::Stored);
        m.batch(BatchOutcome::Stored);
        m.batch(BatchOutcome::Gap);
        let gauge = m.segment_opened();
        let mut out = Exposition::default();
        m.write_server(&mut out, Path::new("/"));
        let devices = [DeviceSeries {
            id: 3,
            name: "gw \"a\"\\\n".into(),
            packets: 5,
            bytes: 50,
            drops: [("kernel", 1), ("interface", 0), ("spool", 2)],
            last_seen_ns: Some(1_500_000_000),
        }];
        write_devices(&mut out, &m, 99, &devices);
        let text = out.out;
        assert!(
            text.contains("trawl_batches_total{outcome=\"stored\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("trawl_batches_total{outcome=\"gap\"} 1\n"));
        assert!(text.contains("trawl_segments_open 1\n"));
        assert!(text.contains(
            "trawl_device_drops_total{device=\"gw \\\"a\\\"\\\\\\n\",device_id=\"3\",kind=\"spool\"} 2\n"
        ));
        assert!(text.contains(
            "trawl_device_last_seen_seconds{device=\"gw \\\"a\\\"\\\\\\n\",device_id=\"3\"} 1.500\n"
        ));
        assert!(text.contains("trawl_organisation_stored_bytes 99\n"));
        assert!(
            text.contains("trawl_data_free_bytes "),
            "statvfs of / works"
        );
        // Every sample's family is declared before it, once.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_owned()), "{name} declared twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} has no # TYPE");
            }
        }
        drop(gauge);
        let mut out = Exposition::default();
        m.write_server(&mut out, Path::new("/"));
        assert!(out.out.contains("trawl_segments_open 0\n"));
    }
}
