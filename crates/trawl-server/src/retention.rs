//! Retention: each organisation keeps its packets for at most an age and at most a total size.
//!
//! The limits ([`RetentionPolicy`]) come from the server's configuration, the default for every
//! organisation, unless the organisation's admin has set its own (`PUT /api/v1/retention`,
//! kept in the catalogue; `DELETE` returns to the default). A pass ([`Retention::run_pass`]),
//! run by a background task every check interval and once at start, does for each
//! organisation:
//!
//! 1. **Close overdue open segments.** A segment still open longer than the rotation age is
//!    closed, as ingest would at the stream's next batch — under the stream's lock, and only if
//!    no batch of the stream is being stored at that moment (else the next pass does it). This
//!    closes the segments of streams that went quiet (an idle device, an agent that started a
//!    new epoch), so that retention can delete them. A segment left open with no batch recorded
//!    is deleted. **The open segment of a stream is never deleted**: the size limit may be
//!    exceeded by the open segments, each at most the rotation size.
//! 2. **Delete closed segments, oldest first** (by the time of their last packet, or when they
//!    were closed if they hold none): those whose last packet is older than `max_age_secs`, then
//!    more while the organisation's segments (open ones included) hold more than `max_bytes`.
//!    The catalogue rows go first, in one transaction with their batches' rows, then the files
//!    (`.pcapng.zst`, `.idx`): a crash in between leaves files without a row, never a row
//!    without its file.
//! 3. **Remove orphan files**: segment and index files in the organisation's directories that no
//!    catalogue row names. The directory is listed before the catalogue is read: a segment's
//!    row is committed before its file is created, so a segment being created is never taken
//!    for an orphan.
//!
//! The age is measured on the packets' own times, which come from the device's clock.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{ApiError, AppState, Slots};
use crate::auth::Role;
use crate::catalogue::{
    self, Catalogue, CatalogueError, DeviceId, OrgId, SegmentRecord, from_sql, now_ns, to_sql,
};
use crate::ingest::{self, Ingest, IngestError, StreamSlot};

/// The longest age limit accepted: 100 years (a longer one would not fit the nanosecond clock
/// arithmetic, and means no limit anyway).
pub const MAX_AGE_SECS_LIMIT: u64 = 100 * 365 * 86_400;

/// How long an organisation keeps its packets. `None`: no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPolicy {
    /// Segments whose last packet is older than this many seconds are deleted.
    pub max_age_secs: Option<u64>,
    /// The oldest segments are deleted while the organisation's segments hold more bytes.
    pub max_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// Checks the limits: each is at least 1 and fits the catalogue.
    pub fn check(&self) -> Result<(), String> {
        check_limit("max_age_secs", self.max_age_secs, MAX_AGE_SECS_LIMIT)?;
        check_limit("max_bytes", self.max_bytes, i64::MAX as u64)?;
        Ok(())
    }

    /// Reads `{"max_age_secs": n|null, "max_bytes": n|null}`; both keys must be present.
    pub fn from_json(v: &Value) -> Result<RetentionPolicy, String> {
        const SHAPE: &str = "{\"max_age_secs\": seconds or null, \"max_bytes\": bytes or null}";
        let Some(obj) = v.as_object() else {
            return Err(format!("the body must be a JSON object: {SHAPE}"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "max_age_secs" | "max_bytes"))
        {
            return Err(format!("unknown field \"{k}\": the body is {SHAPE}"));
        }
        let field = |name: &str, unit: &str, max: u64| -> Result<Option<u64>, String> {
            match obj.get(name) {
                None => Err(format!(
                    "{name} is missing: give a number of {unit}, or null for no limit"
                )),
                Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) => check_limit(name, Some(n), max).map(|()| Some(n)),
                    None => Err(format!(
                        "{name} must be a whole number of {unit} from 1 to {max}, or null for \
                         no limit (got {v})"
                    )),
                },
            }
        };
        Ok(RetentionPolicy {
            max_age_secs: field("max_age_secs", "seconds", MAX_AGE_SECS_LIMIT)?,
            max_bytes: field("max_bytes", "bytes", i64::MAX as u64)?,
        })
    }
}

fn check_limit(name: &str, value: Option<u64>, max: u64) -> Result<(), String> {
    match value {
        Some(n) if n == 0 || n > max => Err(format!(
            "{name} must be from 1 to {max}, or null for no limit (got {n})"
        )),
        _ => Ok(()),
    }
}

/// The server's retention settings.
#[derive(Clone, Copy, Debug)]
pub struct RetentionConfig {
    /// The limits of every organisation that has not set its own.
    pub default: RetentionPolicy,
    /// How often the background pass runs.
    pub check_interval: Duration,
}

impl Default for RetentionConfig {
    /// No limits; a pass every 60 s (which still closes overdue segments and removes orphans).
    fn default() -> Self {
        RetentionConfig {
            default: RetentionPolicy::default(),
            check_interval: Duration::from_secs(60),
        }
    }
}

/// What a retention pass did, over all organisations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Open segments closed because they were open longer than the rotation age.
    pub closed_segments: u64,
    /// Segments deleted (catalogue row and files).
    pub deleted_segments: u64,
    /// Bytes of the files of the deleted segments.
    pub deleted_bytes: u64,
    /// Files removed that no catalogue row named.
    pub orphan_files: u64,
}

/// Runs retention passes. One pass at a time.
pub(crate) struct Retention {
    pub ingest: Arc<Ingest>,
    pub slots: Arc<Slots>,
    pub config: RetentionConfig,
    pass: Mutex<()>,
}

/// A segment whose catalogue row was deleted: where its files are.
struct Deleted {
    /// Relative to the data directory.
    dir: String,
    name: String,
}

/// A closed segment that retention may delete.
struct Candidate {
    id: i64,
    stored_bytes: u64,
    /// Its last packet's time, or when it was closed if it holds none (ns since 1970).
    time_ns: i64,
}

impl Retention {
    pub(crate) fn new(ingest: Arc<Ingest>, slots: Arc<Slots>, config: RetentionConfig) -> Self {
        Retention {
            ingest,
            slots,
            config,
            pass: Mutex::new(()),
        }
    }

    fn catalogue(&self) -> std::sync::MutexGuard<'_, Catalogue> {
        self.ingest
            .catalogue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// One pass over every organisation, as of `now_ns` (ns since 1970). Blocks (file I/O,
    /// SQLite). A file that cannot be removed is logged and left for the next pass.
    pub(crate) fn run_pass(&self, now_ns: i64) -> Result<RetentionReport, CatalogueError> {
        let _one_at_a_time = self.pass.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = RetentionReport::default();
        let orgs = self.catalogue().organisation_ids()?;
        for org in orgs {
            self.close_overdue(org, now_ns, &mut report)?;
            let policy = self
                .catalogue()
                .retention(org)?
                .unwrap_or(self.config.default);
            self.apply(org, policy, now_ns, &mut report)?;
            self.sweep_orphans(org, &mut report)?;
        }
        Ok(report)
    }

    /// Closes the organisation's segments open since before the rotation age.
    fn close_overdue(
        &self,
        org: OrgId,
        now_ns: i64,
        report: &mut RetentionReport,
    ) -> Result<(), CatalogueError> {
        let max_age = i64::try_from(self.ingest.rotation.max_age.as_nanos()).unwrap_or(i64::MAX);
        let overdue = self
            .catalogue()
            .open_segments_opened_before(org, now_ns.saturating_sub(max_age))?;
        for (device, stream, segment) in overdue {
            let slot = {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                slots.entry((device, stream)).or_default().clone()
            };
            // A batch of the stream is being stored: it rotates the segment itself if due.
            let Ok(mut slot) = slot.try_lock_owned() else {
                continue;
            };
            match self.close_one(org, &mut slot, segment) {
                Ok(CloseOutcome::Closed) => report.closed_segments += 1,
                Ok(CloseOutcome::DeletedEmpty(bytes)) => {
                    report.deleted_segments += 1;
                    report.deleted_bytes += bytes;
                    self.ingest.metrics.retention_deleted(1, bytes);
                }
                Ok(CloseOutcome::NotOpen) => {}
                Err(e) => tracing::warn!(
                    "retention: could not close segment {segment} of organisation {org}: {e}"
                ),
            }
        }
        Ok(())
    }

    /// Closes one segment, with its stream's slot held: no batch can touch it meanwhile.
    fn close_one(
        &self,
        org: OrgId,
        slot: &mut StreamSlot,
        segment: i64,
    ) -> Result<CloseOutcome, IngestError> {
        // Read again under the lock: a batch may have rotated or grown it since the list.
        let Some(record) = self.catalogue().segment(org, segment)? else {
            return Ok(CloseOutcome::NotOpen);
        };
        if record.closed {
            return Ok(CloseOutcome::NotOpen);
        }
        if let Some(writer) = slot.take_writer(record.id) {
            writer.finish()?;
        } else if record.stored_bytes == 0 {
            // Never held a recorded batch (its creation failed, or a restart came first).
            self.catalogue().delete_segments(org, &[record.id])?;
            let bytes = remove_segment_files(&self.ingest.data_dir.join(&record.dir), &record.name);
            return Ok(CloseOutcome::DeletedEmpty(bytes));
        } else {
            // Left open by a restart: cut off what the catalogue never recorded, then close.
            let dir = self.ingest.data_dir.join(&record.dir);
            ingest::reopen_recorded(&dir, &record)?.finish()?;
        }
        self.catalogue().close_segment(org, record.id)?;
        Ok(CloseOutcome::Closed)
    }

    /// Deletes the organisation's closed segments beyond its limits (and closed empty ones).
    fn apply(
        &self,
        org: OrgId,
        policy: RetentionPolicy,
        now_ns: i64,
        report: &mut RetentionReport,
    ) -> Result<(), CatalogueError> {
        let (candidates, mut total) = {
            let c = self.catalogue();
            (c.retention_candidates(org)?, c.stored_bytes(org)?)
        };
        let mut doomed = Vec::new();
        let age_limit = policy.max_age_secs.map(|secs| {
            let age = i64::try_from(secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
            now_ns.saturating_sub(age)
        });
        let mut kept = Vec::new();
        for c in candidates {
            let too_old = age_limit.is_some_and(|limit| c.time_ns < limit);
            if too_old || c.stored_bytes == 0 {
                total = total.saturating_sub(c.stored_bytes);
                doomed.push(c.id);
            } else {
                kept.push(c);
            }
        }
        if let Some(max) = policy.max_bytes {
            for c in kept {
                if total <= max {
                    break;
                }
                total = total.saturating_sub(c.stored_bytes);
                doomed.push(c.id);
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }

        let deleted = self.catalogue().delete_segments(org, &doomed)?;
        let mut bytes = 0;
        for s in &deleted {
            bytes += remove_segment_files(&self.ingest.data_dir.join(&s.dir), &s.name);
        }
        let n = deleted.len() as u64;
        self.ingest.metrics.retention_deleted(n, bytes);
        report.deleted_segments += n;
        report.deleted_bytes += bytes;
        tracing::info!(
            "retention: organisation {org}: deleted {n} segment(s), {bytes} bytes (limits: \
             max_age_secs {}, max_bytes {}; {total} bytes kept)",
            show(policy.max_age_secs),
            show(policy.max_bytes),
        );
        Ok(())
    }

    /// Removes the segment and index files in the organisation's directories that no
    /// catalogue row names.
    fn sweep_orphans(
        &self,
        org: OrgId,
        report: &mut RetentionReport,
    ) -> Result<(), CatalogueError> {
        let rel_org = format!("segments/org-{org}");
        // Listed first: see the module's documentation.
        let found = list_segment_files(&self.ingest.data_dir, &rel_org);
        if found.is_empty() {
            return Ok(());
        }
        let known = self.catalogue().segment_names(org)?;
        for (rel_dir, name, path) in found {
            if known.contains(&(rel_dir, name)) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    report.orphan_files += 1;
                    tracing::info!(
                        "retention: removed {} (no segment of the catalogue)",
                        path.display()
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("retention: removing {}: {e}", path.display()),
            }
        }
        Ok(())
    }
}

fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

enum CloseOutcome {
    Closed,
    /// It held nothing and was deleted; the bytes of its files.
    DeletedEmpty(u64),
    /// Closed or deleted meanwhile.
    NotOpen,
}

/// The files of a segment: the segment, its index, and an index being rewritten.
fn segment_files(dir: &Path, name: &str) -> [PathBuf; 3] {
    let index = trawl_store::index_path(dir, name);
    let mut tmp = index.clone().into_os_string();
    tmp.push(".tmp");
    [trawl_store::segment_path(dir, name), index, tmp.into()]
}

/// Removes a segment's files; returns their bytes. A failure is logged (the file stays, an
/// orphan the next pass removes).
fn remove_segment_files(dir: &Path, name: &str) -> u64 {
    let mut bytes = 0;
    for path in segment_files(dir, name) {
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        match std::fs::remove_file(&path) {
            Ok(()) => bytes += len,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("retention: removing {}: {e}", path.display()),
        }
    }
    bytes
}

/// The segment files under `DATA/REL_ORG/dev-*/`: (directory relative to the data directory,
/// segment name, path).
fn list_segment_files(data_dir: &Path, rel_org: &str) -> Vec<(String, String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(devices) = std::fs::read_dir(data_dir.join(rel_org)) else {
        return found;
    };
    for dev in devices.flatten() {
        let dev_name = dev.file_name();
        let Some(dev_name) = dev_name.to_str().filter(|n| n.starts_with("dev-")) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dev.path()) else {
            continue;
        };
        let rel_dir = format!("{rel_org}/{dev_name}");
        for file in files.flatten() {
            let file_name = file.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let name = [".pcapng.zst", ".idx.tmp", ".idx"]
                .iter()
                .find_map(|suffix| file_name.strip_suffix(suffix));
            if let Some(name) = name {
                found.push((rel_dir.clone(), name.to_owned(), file.path()));
            }
        }
    }
    found
}

/// Runs a pass now, then every check interval, until the task is aborted.
pub(crate) fn spawn(retention: Arc<Retention>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention.config.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let r = retention.clone();
            match tokio::task::spawn_blocking(move || r.run_pass(now_ns())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("retention pass: {e}"),
                Err(e) => tracing::error!("retention pass: {e}"),
            }
        }
    })
}

/// The catalogue's queries for retention.
impl Catalogue {
    /// Every organisation's id.
    pub fn organisation_ids(&self) -> catalogue::Result<Vec<OrgId>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM organisations ORDER BY id")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    /// The organisation's own retention limits, if it set them.
    pub fn retention(&self, org: OrgId) -> catalogue::Result<Option<RetentionPolicy>> {
        Ok(self
            .conn
            .query_row(
                "SELECT max_age_secs, max_bytes FROM retention WHERE org_id = ?1",
                [org],
                |r| {
                    Ok(RetentionPolicy {
                        max_age_secs: r.get::<_, Option<i64>>(0)?.map(from_sql),
                        max_bytes: r.get::<_, Option<i64>>(1)?.map(from_sql),
                    })
                },
            )
            .optional()?)
    }

    /// Sets the organisation's own retention limits; `None`: back to the server's default.
    pub fn set_retention(
        &mut self,
        org: OrgId,
        policy: Option<RetentionPolicy>,
    ) -> catalogue::Result<()> {
        match policy {
            Some(p) => self.conn.execute(
                "INSERT INTO retention (org_id, max_age_secs, max_bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (org_id) DO UPDATE
                 SET max_age_secs = excluded.max_age_secs, max_bytes = excluded.max_bytes",
                params![org, p.max_age_secs.map(to_sql), p.max_bytes.map(to_sql)],
            )?,
            None => self
                .conn
                .execute("DELETE FROM retention WHERE org_id = ?1", [org])?,
        };
        Ok(())
    }

    /// Bytes of the organisation's segment files, as recorded (open segments included).
    pub fn stored_bytes(&self, org: OrgId) -> catalogue::Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT coalesce(sum(stored_bytes), 0) FROM segments WHERE org_id = ?1",
            [org],
            |r| r.get(0),
        )?;
        Ok(from_sql(n.max(0)))
    }

    /// One segment of the organisation.
    pub fn segment(&self, org: OrgId, id: i64) -> catalogue::Result<Option<SegmentRecord>> {
        Ok(self
            .query_segments("WHERE org_id = ?1 AND id = ?2", params![org, id])?
            .pop())
    }

    /// The organisation's closed segments, oldest first.
    fn retention_candidates(&self, org: OrgId) -> catalogue::Result<Vec<Candidate>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, stored_bytes, coalesce(last_ns, closed_ns) AS t FROM segments
             WHERE org_id = ?1 AND closed_ns IS NOT NULL ORDER BY t, id",
        )?;
        let rows = stmt.query_map([org], |r| {
            Ok(Candidate {
                id: r.get(0)?,
                stored_bytes: from_sql(r.get::<_, i64>(1)?.max(0)),
                time_ns: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The organisation's open segments opened before `before_ns`: (device, stream name,
    /// segment id).
    fn open_segments_opened_before(
        &self,
        org: OrgId,
        before_ns: i64,
    ) -> catalogue::Result<Vec<(DeviceId, String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.device_id, s.name, g.id FROM segments g
             JOIN streams s ON s.id = g.stream_id AND s.org_id = g.org_id
             WHERE g.org_id = ?1 AND g.closed_ns IS NULL AND g.opened_ns < ?2
             ORDER BY g.id",
        )?;
        let rows = stmt.query_map(params![org, before_ns], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes segments of the organisation and their batches' rows, in one transaction;
    /// returns the segments deleted (their files are the caller's to remove).
    fn delete_segments(&mut self, org: OrgId, ids: &[i64]) -> catalogue::Result<Vec<Deleted>> {
        let tx = self.conn.transaction()?;
        let mut deleted = Vec::with_capacity(ids.len());
        for &id in ids {
            let found = tx
                .query_row(
                    "SELECT dir, name FROM segments WHERE id = ?1 AND org_id = ?2",
                    params![id, org],
                    |r| {
                        Ok(Deleted {
                            dir: r.get(0)?,
                            name: r.get(1)?,
                        })
                    },
                )
                .optional()?;
            let Some(segment) = found else {
                continue;
            };
            tx.execute(
                "DELETE FROM batches WHERE segment_id = ?1
                 AND stream_id IN (SELECT id FROM streams WHERE org_id = ?2)",
                params![id, org],
            )?;
            tx.execute(
                "DELETE FROM segments WHERE id = ?1 AND org_id = ?2",
                params![id, org],
            )?;
            deleted.push(segment);
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// (directory, name) of every segment of the organisation.
    fn segment_names(&self, org: OrgId) -> catalogue::Result<HashSet<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT dir, name FROM segments WHERE org_id = ?1")?;
        let rows = stmt.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The limits in force for an organisation, and where they come from.
fn policy_answer(policy: RetentionPolicy, own: bool, config: &RetentionConfig) -> Response {
    Json(json!({
        "max_age_secs": policy.max_age_secs,
        "max_bytes": policy.max_bytes,
        "source": if own { "organisation" } else { "server" },
        "server_default": config.default,
        "check_interval_secs": config.check_interval.as_secs(),
    }))
    .into_response()
}

/// `GET /api/v1/retention`: the limits in force for the caller's organisation.
pub(crate) async fn get_policy(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let own = st.db(move |c| c.retention(org)).await?;
    let config = &st.retention.config;
    Ok(policy_answer(
        own.unwrap_or(config.default),
        own.is_some(),
        config,
    ))
}

/// `PUT /api/v1/retention`: the organisation's own limits, replacing the server's default.
pub(crate) async fn put_policy(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let bad = |detail: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail);
    let Json(body) = body.map_err(|e| bad(e.body_text()))?;
    let policy = RetentionPolicy::from_json(&body).map_err(bad)?;
    st.db(move |c| c.set_retention(org, Some(policy))).await?;
    Ok(policy_answer(policy, true, &st.retention.config))
}

/// `DELETE /api/v1/retention`: back to the server's default limits.
pub(crate) async fn delete_policy(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    st.db(move |c| c.set_retention(org, None)).await?;
    let config = &st.retention.config;
    Ok(policy_answer(config.default, false, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_read_from_json_with_clear_errors() {
        let ok = RetentionPolicy::from_json(&json!({"max_age_secs": 3600, "max_bytes": null}));
        assert_eq!(
            ok,
            Ok(RetentionPolicy {
                max_age_secs: Some(3600),
                max_bytes: None
            })
        );
        let err = |v: Value| RetentionPolicy::from_json(&v).unwrap_err();
        assert!(err(json!({"max_age_secs": 0, "max_bytes": null})).contains("from 1 to"));
        assert!(err(json!({"max_age_secs": -5, "max_bytes": null})).contains("got -5"));
        assert!(err(json!({"max_age_secs": 1.5, "max_bytes": null})).contains("whole number"));
        assert!(err(json!({"max_age_secs": "1h", "max_bytes": null})).contains("whole number"));
        assert!(err(json!({"max_bytes": 10})).contains("max_age_secs is missing"));
        assert!(
            err(json!({"max_age_secs": 1, "max_bytes": 1, "max_size": 1}))
                .contains("unknown field \"max_size\"")
        );
        assert!(err(json!([1, 2])).contains("JSON object"));
        assert!(
            err(json!({"max_age_secs": MAX_AGE_SECS_LIMIT + 1, "max_bytes": null}))
                .contains("from 1 to")
        );
        assert!(err(json!({"max_age_secs": null, "max_bytes": u64::MAX})).contains("max_bytes"));
    }
}
