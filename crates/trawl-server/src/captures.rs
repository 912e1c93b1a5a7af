//! Captures: packets kept as one named thing — an uploaded file, a saved window of devices'
//! stored packets, (later) a capture job — with tags and notes (docs/protocol.md, "Uploads and
//! captures").
//!
//! The model lives in the catalogue (`captures`, `capture_tags`, `capture_devices`,
//! `capture_parts`); every row carries its organisation and every query here names it, so no
//! query crosses organisations and another organisation's capture is answered exactly as one that
//! does not exist. A capture has a kind (`upload`, `window`, and `job` for the jobs work: its
//! devices, time range and filter fit the same columns), a name, notes, tags, the devices it is
//! about (who uploaded it, or whose packets a window or job holds), the time range and totals of
//! its packets, and where its data lives.
//!
//! **Data.** An upload or a saved window owns a directory `DATA/captures/org-N/RANDOM/` of
//! trawl-store segments `p0`, `p1`, … (parts), written by [`crate::upload`]. Each part describes
//! every interface known when it was started (a pcapng may describe more interfaces as it goes:
//! a packet of a new one starts a new part), numbered as the original file numbers them across its
//! sections; so parts are read one after the other, in order, and each packet keeps its
//! interface. A window is materialised (its packets are copied when it is saved), so it stays
//! the same evidence when retention deletes the segments it came from.
//!
//! Here: the catalogue queries, the JSON a capture is shown as, and the routes that read and
//! change captures (list and search, show, delete, tags, notes, download). Creating one is in
//! [`crate::upload`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trawl_bpf::Program;
use trawl_pcap::{Interface, PcapngWriter, Timestamp, opt};
use trawl_store::SegmentReader;

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::{self, Catalogue, DeviceId, DeviceRef, OrgId, from_sql, now_ns, to_sql};
use crate::retrieve::{self, RetrieveError};

pub type CaptureId = i64;

/// Where captures' directories live, under the data directory.
pub(crate) const CAPTURES_DIR: &str = "captures";
/// Uploads being received, under [`CAPTURES_DIR`]: emptied when the server starts.
pub(crate) const STAGING_DIR: &str = ".staging";

/// Most tags one capture may have.
pub const MAX_TAGS: usize = 64;
/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 64;
/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest notes, in bytes.
pub const MAX_NOTES_LEN: usize = 64 << 10;
/// Most captures one list answers (`limit` may ask for fewer).
const MAX_LIST: u32 = 10_000;
const DEFAULT_LIST: u32 = 1_000;

/// What a capture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureKind {
    /// A capture file sent to the server.
    Upload,
    /// Devices' stored packets in a time window, saved.
    Window,
    /// A capture job's packets (the jobs work).
    Job,
}

impl CaptureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureKind::Upload => "upload",
            CaptureKind::Window => "window",
            CaptureKind::Job => "job",
        }
    }

    pub fn parse(s: &str) -> Option<CaptureKind> {
        match s {
            "upload" => Some(CaptureKind::Upload),
            "window" => Some(CaptureKind::Window),
            "job" => Some(CaptureKind::Job),
            _ => None,
        }
    }
}

/// An interface of a capture, as listed (the full description is in its parts' headers).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceSummary {
    /// Numbered across the original file's sections, as trawl reads it.
    pub id: u32,
    /// The pcapng section of the original file it belongs to (0 for pcap).
    #[serde(default)]
    pub section: u32,
    pub link_type: u32,
    pub snaplen: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

impl InterfaceSummary {
    pub fn of(id: usize, iface: &Interface) -> Self {
        InterfaceSummary {
            id: id as u32,
            section: iface.section,
            link_type: iface.link_type,
            snaplen: iface.snaplen,
            name: iface.name().map(str::to_owned),
        }
    }
}

/// The packets of a capture, in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub packets: u64,
    /// Sum of captured lengths.
    pub bytes: u64,
    /// Sum of lengths on the wire.
    pub wire_bytes: u64,
    /// Bytes of its files on disk.
    pub stored_bytes: u64,
}

/// One segment of a capture's data (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub seq: u32,
    /// Segment name in the capture's directory.
    pub name: String,
    /// How many of the capture's interfaces it describes (the first ones).
    pub interfaces: u32,
    pub packets: u64,
    /// Length of its segment file.
    pub stored_bytes: u64,
}

/// A capture to record.
#[derive(Clone, Debug)]
pub struct NewCapture {
    pub kind: CaptureKind,
    pub name: String,
    pub notes: String,
    pub tags: Vec<String>,
    /// The device whose credential uploaded it (none: an admin token).
    pub uploader: Option<DeviceId>,
    /// The devices it is about, in order (a window's or job's; an upload's uploader).
    pub devices: Vec<DeviceId>,
    /// The window asked for, `[from, to)` (windows and jobs).
    pub window: Option<(u64, u64)>,
    pub filter: Option<String>,
    /// What was received: `pcapng`, `pcap (nanosecond), gzip`, …
    pub source: String,
    pub interfaces: Vec<InterfaceSummary>,
    pub stats: CaptureStats,
    /// Its directory, relative to the data directory.
    pub dir: Option<String>,
    pub parts: Vec<PartRecord>,
}

/// A capture as the catalogue records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureRecord {
    pub id: CaptureId,
    pub kind: CaptureKind,
    pub name: String,
    pub notes: String,
    pub created_ns: u64,
    pub uploader: Option<DeviceRef>,
    pub devices: Vec<DeviceRef>,
    pub window: Option<(u64, u64)>,
    pub filter: Option<String>,
    pub stats: CaptureStats,
    pub dir: Option<String>,
    pub source: String,
    pub interfaces: Vec<InterfaceSummary>,
    pub tags: Vec<String>,
}

/// A search of captures: all conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureQuery {
    /// Captures carrying every one of these tags.
    pub tags: Vec<String>,
    /// Captures about this device (uploaded by it, or holding its packets).
    pub device: Option<DeviceId>,
    /// Captures with a packet whose time may be at or after this (their last packet is).
    pub from_ns: Option<u64>,
    /// Captures with a packet before this (their first packet is).
    pub to_ns: Option<u64>,
    pub kind: Option<CaptureKind>,
    /// Captures with a smaller id than this: the cursor of the next page.
    pub before: Option<CaptureId>,
    /// Captures whose name or notes hold this text (ASCII letters in either case).
    pub text: Option<String>,
    pub limit: Option<u32>,
}

/// One page of a search, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturePage {
    pub captures: Vec<CaptureRecord>,
    /// The `before` of the next page, when there are more captures.
    pub next: Option<CaptureId>,
}

/// Checks a tag: 1 to 64 bytes, no spaces, commas or control characters (a comma separates
/// tags in `tags=a,b`).
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag {tag:?}: a tag is 1 to {MAX_TAG_LEN} bytes long"
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == ',')
    {
        return Err(format!(
            "tag {tag:?}: a tag holds no spaces, commas or control characters (found {c:?})"
        ));
    }
    Ok(())
}

pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!(
            "name: at most {MAX_NAME_LEN} bytes, without control characters"
        ));
    }
    Ok(())
}

pub fn check_notes(notes: &str) -> Result<(), String> {
    if notes.len() > MAX_NOTES_LEN {
        return Err(format!(
            "notes: at most {MAX_NOTES_LEN} bytes ({} given)",
            notes.len()
        ));
    }
    Ok(())
}

/// Clamps a time to what SQLite's signed integers hold (no packet time reaches 2^63 ns).
fn clamp(t: u64) -> i64 {
    t.min(i64::MAX as u64) as i64
}

const CAPTURE_COLUMNS: &str = "c.id, c.kind, c.name, c.notes, c.created_ns, c.uploader_device_id,
    c.window_from_ns, c.window_to_ns, c.filter, c.first_ns, c.last_ns, c.packets, c.bytes,
    c.wire_bytes, c.stored_bytes, c.dir, c.source, c.interfaces";

fn capture_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CaptureRecord, Option<DeviceId>)> {
    let kind: String = r.get(1)?;
    let interfaces: String = r.get(17)?;
    let window = match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?) {
        (Some(f), Some(t)) => Some((from_sql(f), from_sql(t))),
        _ => None,
    };
    let record = CaptureRecord {
        id: r.get(0)?,
        kind: CaptureKind::parse(&kind).unwrap_or(CaptureKind::Upload),
        name: r.get(2)?,
        notes: r.get(3)?,
        created_ns: from_sql(r.get(4)?),
        uploader: None,
        devices: Vec::new(),
        window,
        filter: r.get(8)?,
        stats: CaptureStats {
            first_ns: r.get::<_, Option<i64>>(9)?.map(from_sql),
            last_ns: r.get::<_, Option<i64>>(10)?.map(from_sql),
            packets: from_sql(r.get(11)?),
            bytes: from_sql(r.get(12)?),
            wire_bytes: from_sql(r.get(13)?),
            stored_bytes: from_sql(r.get(14)?),
        },
        dir: r.get(15)?,
        source: r.get(16)?,
        interfaces: serde_json::from_str(&interfaces).unwrap_or_default(),
        tags: Vec::new(),
    };
    Ok((record, r.get(5)?))
}

// The capture queries. Every one names the organisation.
impl Catalogue {
    /// Records a new capture with its tags, devices and parts in one transaction. `place` runs
    /// inside it, before the commit, with the new id: it puts the capture's files where the
    /// record says (a rename). If it fails nothing is recorded; if the commit fails after it,
    /// `unplace` takes the files away again.
    pub fn insert_capture(
        &mut self,
        org: OrgId,
        new: &NewCapture,
        place: impl FnOnce(CaptureId) -> io::Result<()>,
        unplace: impl FnOnce(),
    ) -> catalogue::Result<CaptureId> {
        let tx = self.conn.transaction()?;
        let s = &new.stats;
        tx.execute(
            "INSERT INTO captures (org_id, kind, name, notes, created_ns, uploader_device_id,
                window_from_ns, window_to_ns, filter, first_ns, last_ns, packets, bytes,
                wire_bytes, stored_bytes, dir, source, interfaces)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18)",
            params![
                org,
                new.kind.as_str(),
                new.name,
                new.notes,
                now_ns(),
                new.uploader,
                new.window.map(|w| clamp(w.0)),
                new.window.map(|w| clamp(w.1)),
                new.filter,
                s.first_ns.map(to_sql),
                s.last_ns.map(to_sql),
                to_sql(s.packets),
                to_sql(s.bytes),
                to_sql(s.wire_bytes),
                to_sql(s.stored_bytes),
                new.dir,
                new.source,
                serde_json::to_string(&new.interfaces).unwrap_or_else(|_| "[]".into()),
            ],
        )?;
        let id = tx.last_insert_rowid();
        insert_tags(&tx, org, id, &new.tags)?;
        for (position, device) in new.devices.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO capture_devices (capture_id, org_id, device_id, position)
                 SELECT ?1, ?2, id, ?4 FROM devices WHERE id = ?3 AND org_id = ?2",
                params![id, org, device, position as i64],
            )?;
        }
        for p in &new.parts {
            tx.execute(
                "INSERT INTO capture_parts (capture_id, org_id, seq, name, interfaces, packets,
                    stored_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    org,
                    p.seq,
                    p.name,
                    p.interfaces,
                    to_sql(p.packets),
                    to_sql(p.stored_bytes)
                ],
            )?;
        }
        place(id).map_err(catalogue::CatalogueError::Files)?;
        if let Err(e) = tx.commit() {
            unplace();
            return Err(e.into());
        }
        Ok(id)
    }

    /// Capture `id` of `org`, with its tags and devices.
    pub fn capture(&self, org: OrgId, id: CaptureId) -> catalogue::Result<Option<CaptureRecord>> {
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT {CAPTURE_COLUMNS} FROM captures c WHERE c.org_id = ?1 AND c.id = ?2"
                ),
                params![org, id],
                capture_row,
            )
            .optional()?;
        match found {
            Some((record, uploader)) => Ok(Some(self.complete(org, record, uploader)?)),
            None => Ok(None),
        }
    }

    /// The captures of `org` that match `q`, newest first (one page).
    pub fn captures(&self, org: OrgId, q: &CaptureQuery) -> catalogue::Result<Vec<CaptureRecord>> {
        Ok(self.capture_page(org, q)?.captures)
    }

    /// A page of the captures of `org` that match `q`, newest first, and the cursor of the
    /// next. The page is walked down the primary key (`captures_by_org`), each condition
    /// checked per row through an index (tags, devices) or on the row itself; one row more than
    /// the page is read to know whether another page follows.
    pub fn capture_page(&self, org: OrgId, q: &CaptureQuery) -> catalogue::Result<CapturePage> {
        let mut sql = format!("SELECT {CAPTURE_COLUMNS} FROM captures c WHERE c.org_id = ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![org.into()];
        fn arg(v: rusqlite::types::Value, args: &mut Vec<rusqlite::types::Value>) -> String {
            args.push(v);
            format!("?{}", args.len())
        }
        for tag in &q.tags {
            let n = arg(tag.clone().into(), &mut args);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM capture_tags t WHERE t.capture_id = c.id
                    AND t.org_id = c.org_id AND t.tag = {n})"
            ));
        }
        if let Some(device) = q.device {
            let n = arg(device.into(), &mut args);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM capture_devices d WHERE d.capture_id = c.id
                    AND d.org_id = c.org_id AND d.device_id = {n})"
            ));
        }
        if let Some(from) = q.from_ns {
            let n = arg(clamp(from).into(), &mut args);
            sql.push_str(&format!(" AND c.last_ns IS NOT NULL AND c.last_ns >= {n}"));
        }
        if let Some(to) = q.to_ns {
            let n = arg(clamp(to).into(), &mut args);
            sql.push_str(&format!(" AND c.first_ns IS NOT NULL AND c.first_ns < {n}"));
        }
        if let Some(kind) = q.kind {
            let n = arg(kind.as_str().to_owned().into(), &mut args);
            sql.push_str(&format!(" AND c.kind = {n}"));
        }
        if let Some(before) = q.before {
            let n = arg(before.into(), &mut args);
            sql.push_str(&format!(" AND c.id < {n}"));
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
            // LIKE, its wildcards escaped: a substring, ASCII letters matched in either case.
            let mut pattern = String::from("%");
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            let n = arg(pattern.into(), &mut args);
            sql.push_str(&format!(
                " AND (c.name LIKE {n} ESCAPE '\\' OR c.notes LIKE {n} ESCAPE '\\')"
            ));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIST).min(MAX_LIST) as usize;
        sql.push_str(&format!(" ORDER BY c.id DESC LIMIT {}", limit + 1));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt
            .query_map(rusqlite::params_from_iter(args), capture_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let captures = rows
            .into_iter()
            .map(|(record, uploader)| self.complete(org, record, uploader))
            .collect::<catalogue::Result<Vec<_>>>()?;
        let next = if more {
            captures.last().map(|c| c.id)
        } else {
            None
        };
        Ok(CapturePage { captures, next })
    }

    /// Adds a capture's tags, devices and uploader.
    fn complete(
        &self,
        org: OrgId,
        mut record: CaptureRecord,
        uploader: Option<DeviceId>,
    ) -> catalogue::Result<CaptureRecord> {
        record.tags = self.capture_tags(org, record.id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.name FROM capture_devices cd
             JOIN devices d ON d.id = cd.device_id AND d.org_id = cd.org_id
             WHERE cd.org_id = ?1 AND cd.capture_id = ?2 ORDER BY cd.position",
        )?;
        record.devices = stmt
            .query_map(params![org, record.id], |r| {
                Ok(DeviceRef {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(id) = uploader {
            record.uploader = self
                .conn
                .query_row(
                    "SELECT id, name FROM devices WHERE org_id = ?1 AND id = ?2",
                    params![org, id],
                    |r| {
                        Ok(DeviceRef {
                            id: r.get(0)?,
                            name: r.get(1)?,
                        })
                    },
                )
                .optional()?;
        }
        Ok(record)
    }

    fn capture_tags(&self, org: OrgId, id: CaptureId) -> catalogue::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT tag FROM capture_tags WHERE org_id = ?1 AND capture_id = ?2 ORDER BY tag",
        )?;
        let tags = stmt
            .query_map(params![org, id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(tags)
    }

    fn capture_exists(&self, org: OrgId, id: CaptureId) -> catalogue::Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM captures WHERE org_id = ?1 AND id = ?2)",
            params![org, id],
            |r| r.get(0),
        )?)
    }

    /// Adds tags to capture `id` (those it has already are kept once); its tags after, or `None`
    /// if `org` has no such capture. `Err` text if it would carry more than [`MAX_TAGS`].
    pub fn add_capture_tags(
        &mut self,
        org: OrgId,
        id: CaptureId,
        tags: &[String],
    ) -> catalogue::Result<Option<Result<Vec<String>, String>>> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM captures WHERE org_id = ?1 AND id = ?2)",
            params![org, id],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        insert_tags(&tx, org, id, tags)?;
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM capture_tags WHERE org_id = ?1 AND capture_id = ?2",
            params![org, id],
            |r| r.get(0),
        )?;
        if count as usize > MAX_TAGS {
            return Ok(Some(Err(format!(
                "tags: a capture carries at most {MAX_TAGS} tags ({count} with these)"
            ))));
        }
        tx.commit()?;
        Ok(Some(Ok(self.capture_tags(org, id)?)))
    }

    /// Removes a tag from capture `id`; whether it had it, or `None` if `org` has no such capture.
    pub fn remove_capture_tag(
        &mut self,
        org: OrgId,
        id: CaptureId,
        tag: &str,
    ) -> catalogue::Result<Option<bool>> {
        if !self.capture_exists(org, id)? {
            return Ok(None);
        }
        let n = self.conn.execute(
            "DELETE FROM capture_tags WHERE org_id = ?1 AND capture_id = ?2 AND tag = ?3",
            params![org, id, tag],
        )?;
        Ok(Some(n > 0))
    }

    /// Replaces the notes of capture `id`; false if `org` has no such capture.
    pub fn set_capture_notes(
        &mut self,
        org: OrgId,
        id: CaptureId,
        notes: &str,
    ) -> catalogue::Result<bool> {
        let n = self.conn.execute(
            "UPDATE captures SET notes = ?3 WHERE org_id = ?1 AND id = ?2",
            params![org, id, notes],
        )?;
        Ok(n == 1)
    }

    /// Deletes capture `id` of `org` from the catalogue; `Some(its directory)` (to be removed by
    /// the caller, after) if there was one, `None` if `org` has no such capture.
    pub fn delete_capture(
        &mut self,
        org: OrgId,
        id: CaptureId,
    ) -> catalogue::Result<Option<Option<String>>> {
        let tx = self.conn.transaction()?;
        let dir: Option<Option<String>> = tx
            .query_row(
                "SELECT dir FROM captures WHERE org_id = ?1 AND id = ?2",
                params![org, id],
                |r| r.get(0),
            )
            .optional()?;
        if dir.is_none() {
            return Ok(None);
        }
        for table in [
            "capture_tags",
            "capture_devices",
            "capture_parts",
            "capture_annotations",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE org_id = ?1 AND capture_id = ?2"),
                params![org, id],
            )?;
        }
        tx.execute(
            "DELETE FROM captures WHERE org_id = ?1 AND id = ?2",
            params![org, id],
        )?;
        tx.commit()?;
        Ok(dir)
    }

    /// The stored parts of capture `id` of `org`, in order.
    pub fn capture_parts(&self, org: OrgId, id: CaptureId) -> catalogue::Result<Vec<PartRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, name, interfaces, packets, stored_bytes FROM capture_parts
             WHERE org_id = ?1 AND capture_id = ?2 ORDER BY seq",
        )?;
        let parts = stmt
            .query_map(params![org, id], |r| {
                Ok(PartRecord {
                    seq: r.get(0)?,
                    name: r.get(1)?,
                    interfaces: r.get(2)?,
                    packets: from_sql(r.get(3)?),
                    stored_bytes: from_sql(r.get(4)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(parts)
    }

    /// Every capture directory the catalogue knows, of every organisation: for the sweep at
    /// start, which removes the others.
    pub(crate) fn all_capture_dirs(&self) -> catalogue::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT dir FROM captures WHERE dir IS NOT NULL")?;
        let dirs = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(dirs)
    }
}

fn insert_tags(
    tx: &Transaction<'_>,
    org: OrgId,
    id: CaptureId,
    tags: &[String],
) -> rusqlite::Result<()> {
    for tag in tags {
        tx.execute(
            "INSERT OR IGNORE INTO capture_tags (capture_id, org_id, tag) VALUES (?1, ?2, ?3)",
            params![id, org, tag],
        )?;
    }
    Ok(())
}

/// Removes what a crash may leave in `DATA/captures`: uploads being received (staging) and
/// capture directories the catalogue does not know (moved into place, but the transaction that
/// records them never committed; or recorded as deleted, but not yet removed). Runs at start,
/// before any request. Returns how many directories it removed.
pub(crate) fn sweep(data_dir: &Path, catalogue: &Catalogue) -> catalogue::Result<usize> {
    let root = data_dir.join(CAPTURES_DIR);
    let known: std::collections::HashSet<String> =
        catalogue.all_capture_dirs()?.into_iter().collect();
    let mut removed = 0;
    let Ok(orgs) = std::fs::read_dir(&root) else {
        return Ok(0);
    };
    for org in orgs.flatten() {
        let org_name = org.file_name().to_string_lossy().into_owned();
        if org_name == STAGING_DIR {
            for d in std::fs::read_dir(org.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if std::fs::remove_dir_all(d.path()).is_ok() {
                    removed += 1;
                }
            }
            continue;
        }
        if !org_name.starts_with("org-") {
            continue;
        }
        for d in std::fs::read_dir(org.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = format!(
                "{CAPTURES_DIR}/{org_name}/{}",
                d.file_name().to_string_lossy()
            );
            if !known.contains(&rel) && std::fs::remove_dir_all(d.path()).is_ok() {
                tracing::info!("removed {rel}: a capture the catalogue does not record");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

// ---------------------------------------------------------------------------------------------
// Showing captures.

/// `secs` since 1970 as RFC 3339 UTC, with nanoseconds when there are any.
pub fn rfc3339(ns: u64) -> String {
    let t = Timestamp::from_nanos(ns);
    let days = (t.secs / 86_400) as i64;
    let rem = t.secs % 86_400;
    let (y, m, d) = trawl_flow::time::civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if t.nanos == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{:09}Z", t.nanos)
    }
}

/// The server's address as the client reached it (`https://host:port`), for URLs in answers:
/// the request's authority (HTTP/2) or `Host` header (HTTP/1.1), or what a proxy in front says
/// (`X-Forwarded-Host`, `X-Forwarded-Proto`); empty (relative URLs) if none is known.
pub(crate) fn base_url(st: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .or_else(|| header(header::HOST.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        });
    let scheme = header("x-forwarded-proto")
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or(st.scheme);
    host.map_or_else(String::new, |h| format!("{scheme}://{h}"))
}

fn device_json(d: &DeviceRef) -> Value {
    json!({ "id": d.id.to_string(), "name": d.name })
}

/// A capture as the API shows it.
pub(crate) fn capture_json(c: &CaptureRecord, base: &str) -> Value {
    let time = |ns: Option<u64>| ns.map(rfc3339);
    let mut v = json!({
        "id": c.id,
        "kind": c.kind.as_str(),
        "name": c.name,
        "notes": c.notes,
        "tags": c.tags,
        "created": rfc3339(c.created_ns),
        "created_ns": c.created_ns,
        "first": time(c.stats.first_ns),
        "first_ns": c.stats.first_ns,
        "last": time(c.stats.last_ns),
        "last_ns": c.stats.last_ns,
        "packets": c.stats.packets,
        "bytes": c.stats.bytes,
        "wire_bytes": c.stats.wire_bytes,
        "stored_bytes": c.stats.stored_bytes,
        "interfaces": c.interfaces,
        "devices": c.devices.iter().map(device_json).collect::<Vec<_>>(),
        "uploaded_by": match (&c.uploader, c.kind) {
            (Some(d), _) => json!({ "device": device_json(d) }),
            (None, CaptureKind::Upload) => json!("admin"),
            (None, _) => Value::Null,
        },
        "source": c.source,
        "url": format!("{base}/api/v1/captures/{}/pcapng", c.id),
        "metadata_url": format!("{base}/api/v1/captures/{}", c.id),
    });
    if let Some((from, to)) = c.window {
        v["window"] = json!({
            "from": rfc3339(from),
            "from_ns": from,
            "to": rfc3339(to),
            "to_ns": to,
            "filter": c.filter,
        });
    }
    v
}

pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no capture {id}"),
    )
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

/// A capture id from the URL; anything else is a capture that does not exist.
pub(crate) fn capture_id(id: &str) -> Result<CaptureId, ApiError> {
    id.parse::<CaptureId>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| not_found(id))
}

/// `GET /api/v1/captures?tag=&device=&from=&to=&kind=&q=&before=&limit=`
pub(crate) async fn list(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let Query(params) = query.map_err(|e| bad_request(e.body_text()))?;
    let mut q = CaptureQuery::default();
    let mut device_key = None;
    for (name, value) in &params {
        let once = |set: bool| {
            if set {
                Err(bad_request(format!("{name}: given more than once")))
            } else {
                Ok(())
            }
        };
        let time = |v: &str| {
            retrieve::parse_time(v)
                .map(Timestamp::as_nanos)
                .map_err(|e| bad_request(format!("{name}: {e}")))
        };
        match name.as_str() {
            "tag" | "tags" => {
                for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    check_tag(tag).map_err(bad_request)?;
                    q.tags.push(tag.to_owned());
                }
            }
            "device" => {
                once(device_key.is_some())?;
                device_key = Some(value.clone());
            }
            "from" => {
                once(q.from_ns.is_some())?;
                q.from_ns = Some(time(value)?);
            }
            "to" => {
                once(q.to_ns.is_some())?;
                q.to_ns = Some(time(value)?);
            }
            "kind" => {
                once(q.kind.is_some())?;
                q.kind = Some(CaptureKind::parse(value).ok_or_else(|| {
                    bad_request(format!(
                        "kind: {value:?} is not a kind of capture (upload, window, job)"
                    ))
                })?);
            }
            "before" => {
                once(q.before.is_some())?;
                q.before = Some(
                    value
                        .parse::<CaptureId>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            bad_request(format!(
                                "before: {value:?} is not a capture id (1 or more)"
                            ))
                        })?,
                );
            }
            "q" => {
                once(q.text.is_some())?;
                if value.len() > MAX_NAME_LEN {
                    return Err(bad_request(format!(
                        "q: at most {MAX_NAME_LEN} bytes ({} given)",
                        value.len()
                    )));
                }
                q.text = Some(value.clone());
            }
            "limit" => {
                once(q.limit.is_some())?;
                q.limit = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|&n| (1..=MAX_LIST).contains(&n))
                        .ok_or_else(|| {
                            bad_request(format!("limit: a number from 1 to {MAX_LIST}"))
                        })?,
                );
            }
            _ => {
                return Err(bad_request(format!(
                    "{name}: unknown parameter (known: tag, device, from, to, kind, q, before, limit)"
                )));
            }
        }
    }
    if let (Some(from), Some(to)) = (q.from_ns, q.to_ns)
        && from >= to
    {
        return Err(bad_request(
            "to: the time range is empty (to must be after from)",
        ));
    }
    let base = base_url(&st, &headers, &uri);
    let found = st
        .db(move |c| {
            if let Some(key) = &device_key {
                let mut devices = c.find_devices(org, key)?;
                match devices.len() {
                    0 => return Ok(Err(RetrieveError::NotFound(key.clone()))),
                    1 => q.device = Some(devices.remove(0).id),
                    _ => {
                        return Ok(Err(RetrieveError::Ambiguous {
                            key: key.clone(),
                            ids: devices.iter().map(|d| d.id).collect(),
                        }));
                    }
                }
            }
            c.capture_page(org, &q).map(Ok)
        })
        .await??;
    let list: Vec<Value> = found
        .captures
        .iter()
        .map(|c| capture_json(c, &base))
        .collect();
    Ok(Json(json!({ "count": list.len(), "captures": list, "next": found.next })).into_response())
}

/// `GET /api/v1/captures/{id}`
pub(crate) async fn show(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let n = capture_id(&id)?;
    let found = st.db(move |c| c.capture(org, n)).await?;
    let capture = found.ok_or_else(|| not_found(&id))?;
    Ok(Json(capture_json(&capture, &base_url(&st, &headers, &uri))).into_response())
}

/// `DELETE /api/v1/captures/{id}`: the catalogue first, then the files (a crash in between
/// leaves a directory the next start removes).
pub(crate) async fn delete(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let n = capture_id(&id)?;
    let dir = st
        .db(move |c| c.delete_capture(org, n))
        .await?
        .ok_or_else(|| not_found(&id))?;
    if let Some(dir) = dir {
        let path = st.ingest.data_dir.join(dir);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = std::fs::remove_dir_all(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(
                    "{}: could not remove a deleted capture: {e}",
                    path.display()
                );
            }
        })
        .await
        .map_err(ApiError::internal)?;
    }
    Ok(Json(json!({ "id": n, "deleted": true })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    tags: Vec<String>,
}

/// `POST /api/v1/captures/{id}/tags` with `{"tags": [...]}`: adds them.
pub(crate) async fn add_tags(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let n = capture_id(&id)?;
    let TagsBody { tags } = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the body must be JSON {{\"tags\": [\"tag\", …]}}: {e}"
        ))
    })?;
    let mut clean = Vec::new();
    for tag in &tags {
        let tag = tag.trim();
        check_tag(tag).map_err(bad_request)?;
        clean.push(tag.to_owned());
    }
    let result = st
        .db(move |c| c.add_capture_tags(org, n, &clean))
        .await?
        .ok_or_else(|| not_found(&id))?;
    let tags = result.map_err(bad_request)?;
    Ok(Json(json!({ "id": n, "tags": tags })).into_response())
}

/// `DELETE /api/v1/captures/{id}/tags/{tag}`
pub(crate) async fn remove_tag(
    State(st): State<AppState>,
    UrlPath((id, tag)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let n = capture_id(&id)?;
    let t = tag.clone();
    let had = st
        .db(move |c| c.remove_capture_tag(org, n, &t))
        .await?
        .ok_or_else(|| not_found(&id))?;
    if !had {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("capture {id} has no tag {tag:?}"),
        ));
    }
    let tags = st.db(move |c| c.capture_tags(org, n)).await?;
    Ok(Json(json!({ "id": n, "tags": tags })).into_response())
}

/// `PUT /api/v1/captures/{id}/notes`: the body is the notes as text, or JSON `{"notes": "…"}`
/// when sent as `application/json`.
pub(crate) async fn put_notes(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let n = capture_id(&id)?;
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let notes = if json_body {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NotesBody {
            notes: String,
        }
        let NotesBody { notes } = serde_json::from_slice(&body)
            .map_err(|e| bad_request(format!("the body must be JSON {{\"notes\": \"…\"}}: {e}")))?;
        notes
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| bad_request("the notes must be UTF-8 text"))?
    };
    check_notes(&notes).map_err(bad_request)?;
    let saved = notes.clone();
    if !st.db(move |c| c.set_capture_notes(org, n, &saved)).await? {
        return Err(not_found(&id));
    }
    Ok(Json(json!({ "id": n, "notes": notes })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Downloading a capture.

/// A capture's download, checked and ready to write: its parts, its interfaces, the filter
/// compiled for each of their link types.
pub struct CaptureDownload {
    id: CaptureId,
    name: String,
    /// Each part: directory, segment name, length vouched for, interfaces described.
    parts: Vec<(PathBuf, PartRecord)>,
    /// Every interface, as the last part describes them (each part describes a prefix).
    interfaces: Vec<Interface>,
    /// The original file's section of each interface (from the catalogue).
    sections: Vec<u32>,
    /// Per interface, the index of its program in `programs`, when there is a filter.
    program_of: Vec<usize>,
    programs: Vec<Program>,
    filter: Option<String>,
    /// The capture's annotations, by packet number (1-based, in stored order): each becomes a
    /// comment of its packet.
    annotations: Vec<(u64, String)>,
}

/// What a capture download wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownloadStats {
    pub packets_read: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl CaptureDownload {
    /// Finds capture `id` of `org` and its parts, reads their interfaces (headers only) and
    /// compiles the filter for their link types; `Ok(None)` if `org` has no such capture.
    pub fn new(
        data_dir: &Path,
        catalogue: &Mutex<Catalogue>,
        org: OrgId,
        id: CaptureId,
        filter: Option<String>,
    ) -> Result<Option<CaptureDownload>, RetrieveError> {
        let (record, parts, annotations) = {
            let c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
            let Some(record) = c.capture(org, id)? else {
                return Ok(None);
            };
            let parts = c.capture_parts(org, id)?;
            let annotations = c.annotations(org, id)?.unwrap_or_default();
            (record, parts, annotations)
        };
        let annotations = annotations
            .into_iter()
            .map(|a| (a.packet, a.comment))
            .collect();
        let dir = record.dir.as_deref().map(|d| data_dir.join(d));
        let mut interfaces: Vec<Interface> = Vec::new();
        let mut located = Vec::new();
        for part in parts {
            let Some(dir) = &dir else { break };
            let found = SegmentReader::read_interfaces(dir, &part.name)?;
            if found.len() > interfaces.len() {
                interfaces = found;
            }
            located.push((dir.clone(), part));
        }
        let mut link_types: Vec<u32> = Vec::new();
        for i in &interfaces {
            if !link_types.contains(&i.link_type) {
                link_types.push(i.link_type);
            }
        }
        let mut programs = Vec::new();
        if let Some(expr) = &filter {
            // With no packet to filter, still check the expression (as for Ethernet).
            let check = if link_types.is_empty() {
                vec![1]
            } else {
                link_types.clone()
            };
            for lt in check {
                programs.push(retrieve::compile_stored(expr, lt)?);
            }
        }
        let program_of = interfaces
            .iter()
            .map(|i| {
                link_types
                    .iter()
                    .position(|&l| l == i.link_type)
                    .unwrap_or(0)
            })
            .collect();
        let sections = (0..interfaces.len())
            .map(|i| record.interfaces.get(i).map_or(0, |s| s.section))
            .collect();
        Ok(Some(CaptureDownload {
            id,
            name: record.name,
            parts: located,
            interfaces,
            sections,
            program_of,
            programs,
            filter,
            annotations,
        }))
    }

    /// A file name for the download: the capture's name made safe, or `capture-ID`.
    pub fn file_name(&self) -> String {
        let safe: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stem = safe.trim_matches(['_', '.']);
        let stem = stem
            .strip_suffix(".pcapng")
            .or_else(|| stem.strip_suffix(".pcap"))
            .unwrap_or(stem);
        if stem.is_empty() {
            format!("capture-{}.pcapng", self.id)
        } else {
            format!("{stem}.pcapng")
        }
    }

    /// Writes the capture as pcapng: a section header naming trawl and the capture, its
    /// interfaces as stored (each described before its first packet), then its packets in their
    /// stored order, filtered, with their options, and each annotation (`annotations.rs`) as one
    /// more comment of its packet. A file of several sections comes back in as
    /// many sections, each with its own interfaces in their own order, so every packet keeps the
    /// interface number it had in its section.
    pub fn write<W: io::Write>(self, out: W) -> Result<DownloadStats, RetrieveError> {
        let mut section = PcapngWriter::<io::Sink>::default_section_options();
        let mut comment = format!("trawl capture {}: {}", self.id, self.name);
        if let Some(f) = &self.filter {
            comment.push_str(&format!("; filter {f:?}"));
        }
        section.push_str(opt::COMMENT, &comment);
        let mut out = SectionedWriter {
            w: PcapngWriter::new(out, &section)?,
            section_options: section,
            interfaces: &self.interfaces,
            sections: &self.sections,
            local: vec![None; self.interfaces.len()],
            known: 0,
            current: 0,
        };
        let mut stats = DownloadStats::default();
        let mut annotations = self.annotations.iter().peekable();
        for (dir, part) in &self.parts {
            let mut reader = SegmentReader::open(dir, &part.name)?;
            reader.limit_to(part.stored_bytes);
            out.learn(reader.interfaces().len())?;
            let mut packets = reader.packets();
            while packets.advance()? {
                let p = packets.packet().expect("advanced");
                stats.packets_read += 1;
                let keep = self.programs.is_empty()
                    || self.programs[self.program_of[p.interface as usize]].run(p.data, p.orig_len)
                        != 0;
                // The packet's number in the unfiltered download, which annotations name.
                let number = stats.packets_read;
                let mut comment = None;
                while let Some((n, text)) = annotations.next_if(|(n, _)| *n <= number) {
                    if *n == number {
                        comment = Some(text);
                    }
                }
                if keep {
                    let id = out.local_id(p.interface)?;
                    let with_comment;
                    let options = match comment {
                        Some(text) => {
                            let mut owned = trawl_pcap::OwnedOptions::of_packet(p.options);
                            owned.push_str(opt::COMMENT, text);
                            with_comment = owned;
                            with_comment.view()
                        }
                        None => p.options,
                    };
                    out.w.write(id, p.ts, p.orig_len, p.data, options)?;
                    stats.packets += 1;
                    stats.bytes += p.data.len() as u64;
                }
            }
        }
        // Interfaces without packets (and their sections) are still shown.
        out.learn(self.interfaces.len())?;
        if let Some(&last) = self.sections.iter().max() {
            out.enter(last)?;
        }
        out.w.finish()?.flush()?;
        Ok(stats)
    }
}

impl CaptureDownload {
    /// The capture's packets in their stored order, filtered, one at a time (for flows,
    /// reports and profiles). Interfaces keep their stored numbers; a packet's direction comes
    /// from its pcapng flags, as a reader of the download would see it.
    pub fn packets(&self) -> CapturePackets {
        let stem = self.file_name();
        let several = self.interfaces.len() > 1;
        let interfaces = self
            .interfaces
            .iter()
            .enumerate()
            .map(|(n, i)| match i.name() {
                Some(name) => name.to_string(),
                None if several => format!("{stem}#{n}"),
                None => stem.clone(),
            })
            .collect();
        CapturePackets {
            parts: self
                .parts
                .iter()
                .map(|(dir, part)| (dir.clone(), part.name.clone(), part.stored_bytes))
                .collect::<Vec<_>>()
                .into_iter(),
            window: None,
            interfaces,
            program_of: self.program_of.clone(),
            programs: self.programs.clone(),
            stats: DownloadStats::default(),
        }
    }
}

/// A capture's packets, one at a time: see [`CaptureDownload::packets`].
pub struct CapturePackets {
    parts: std::vec::IntoIter<(PathBuf, String, u64)>,
    window: Option<trawl_store::WindowOf<SegmentReader>>,
    interfaces: Vec<String>,
    program_of: Vec<usize>,
    programs: Vec<Program>,
    stats: DownloadStats,
}

impl CapturePackets {
    /// What has been read and kept so far.
    pub fn stats(&self) -> DownloadStats {
        self.stats
    }
}

impl retrieve::PacketSource for CapturePackets {
    fn advance(&mut self) -> Result<bool, RetrieveError> {
        loop {
            if let Some(w) = &mut self.window {
                while w.advance()? {
                    let p = w.packet().expect("advanced");
                    self.stats.packets_read += 1;
                    let keep = self.programs.is_empty()
                        || self
                            .program_of
                            .get(p.interface as usize)
                            .is_some_and(|&i| self.programs[i].run(p.data, p.orig_len) != 0);
                    if keep {
                        self.stats.packets += 1;
                        self.stats.bytes += p.data.len() as u64;
                        return Ok(true);
                    }
                }
                self.window = None;
            }
            let Some((dir, name, stored_bytes)) = self.parts.next() else {
                return Ok(false);
            };
            let mut reader = SegmentReader::open(&dir, &name)?;
            reader.limit_to(stored_bytes);
            self.window =
                Some(reader.into_window(Timestamp::default(), Timestamp::new(u64::MAX, 0)));
        }
    }

    fn packet(&self) -> Option<retrieve::SourcePacket<'_>> {
        let p = self.window.as_ref()?.packet()?;
        let flags = p.options.u32(opt::EPB_FLAGS).map_or(0, |f| (f & 3) as u8);
        Some(retrieve::SourcePacket {
            ts: p.ts,
            interface: p.interface,
            link_type: p.link_type,
            orig_len: p.orig_len,
            data: p.data,
            direction: if flags == 3 { 0 } else { flags },
        })
    }

    fn interface_name(&self, interface: u32) -> String {
        self.interfaces
            .get(interface as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{interface}"))
    }
}

/// The download's pcapng writer, reproducing the original file's sections: an interface is
/// described in its own section, in the order the original described them.
struct SectionedWriter<'a, W: io::Write> {
    w: PcapngWriter<W>,
    section_options: trawl_pcap::OwnedOptions,
    interfaces: &'a [Interface],
    sections: &'a [u32],
    /// Each interface's id in the section being written, once described.
    local: Vec<Option<u32>>,
    /// How many interfaces (the first ones) the parts read so far describe.
    known: usize,
    current: u32,
}

impl<W: io::Write> SectionedWriter<'_, W> {
    /// The first `known` interfaces are known now: describes those of the current section.
    fn learn(&mut self, known: usize) -> io::Result<()> {
        self.known = self.known.max(known.min(self.interfaces.len()));
        for g in 0..self.known {
            if self.sections[g] == self.current && self.local[g].is_none() {
                self.local[g] = Some(self.w.add_interface(&self.interfaces[g])?);
            }
        }
        Ok(())
    }

    /// Moves on to section `to`, writing the sections in between that describe interfaces.
    fn enter(&mut self, to: u32) -> io::Result<()> {
        while self.current < to {
            let next = self.current + 1;
            let described = self.sections[..self.known].contains(&next);
            if described || next == to {
                self.w.section(&self.section_options)?;
                self.local.iter_mut().for_each(|l| *l = None);
            }
            self.current = next;
            self.learn(self.known)?;
        }
        Ok(())
    }

    /// The id in the section being written of stored interface `g`, moving to its section.
    fn local_id(&mut self, g: u32) -> Result<u32, RetrieveError> {
        let g = g as usize;
        let section = self.sections.get(g).copied().unwrap_or(0);
        if section < self.current {
            return Err(RetrieveError::Write(io::Error::other(format!(
                "a packet of interface {g} (section {section}) after section {}: the capture's \
                 record of its sections is damaged",
                self.current
            ))));
        }
        self.enter(section)?;
        self.local[g].ok_or_else(|| {
            RetrieveError::Write(io::Error::other(format!(
                "interface {g} is not described before its packet"
            )))
        })
    }
}

/// `GET /api/v1/captures/{id}/pcapng[?filter=EXPR]`: the capture, streamed.
pub(crate) async fn download(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let n = capture_id(&id)?;
    let Query(params) = query.map_err(|e| bad_request(e.body_text()))?;
    let mut filter = None;
    for (name, value) in params {
        match name.as_str() {
            "filter" if filter.is_some() => {
                return Err(bad_request("filter: given more than once"));
            }
            "filter" => filter = Some(value).filter(|f| !f.trim().is_empty()),
            _ => {
                return Err(bad_request(format!(
                    "{name}: unknown parameter (known: filter)"
                )));
            }
        }
    }
    serve_download(&st, org, n, filter)
        .await?
        .ok_or_else(|| not_found(&id))
}

/// Capture `n` of `org` streamed as a pcapng attachment, only the packets `filter` keeps (if
/// any); `None` if `org` has no such capture. Also what a share link downloads.
pub(crate) async fn serve_download(
    st: &AppState,
    org: OrgId,
    n: CaptureId,
    filter: Option<String>,
) -> Result<Option<Response>, ApiError> {
    let (data_dir, catalogue) = (st.ingest.data_dir.clone(), st.catalogue.clone());
    let planned = tokio::task::spawn_blocking(move || {
        CaptureDownload::new(&data_dir, &catalogue, org, n, filter)
    })
    .await
    .map_err(ApiError::internal)??;
    let Some(plan) = planned else {
        return Ok(None);
    };
    let file_name = plan.file_name().to_owned();
    Ok(Some(retrieve::stream_pcapng(
        &file_name,
        format!("download of capture {n} of organisation {org}"),
        move |out| plan.write(out),
        |s| {
            format!(
                "{} of {} packets ({} bytes)",
                s.packets, s.packets_read, s.bytes
            )
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_rfc3339_and_read_back() {
        for ns in [
            0u64,
            1_709_294_400_000_000_000,
            1_709_164_800_500_000_000,
            951_782_400_000_000_001, // 2000-02-29
            4_102_444_799_999_999_999,
        ] {
            let text = rfc3339(ns);
            assert_eq!(
                retrieve::parse_time(&text).map(Timestamp::as_nanos),
                Ok(ns),
                "{text}"
            );
        }
        assert_eq!(rfc3339(1_709_294_400_000_000_000), "2024-03-01T12:00:00Z");
    }

    #[test]
    fn tags_are_checked() {
        assert!(check_tag("incident-42").is_ok());
        assert!(check_tag("vendor:acme/ticket=7").is_ok());
        for bad in ["", "a b", "a,b", "tab\t", &"x".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn captures_stay_in_their_organisation() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalogue::open(&dir.path().join("c.db")).unwrap();
        let a = c.create_organisation("a").unwrap().id;
        let b = c.create_organisation("b").unwrap().id;
        let new = NewCapture {
            kind: CaptureKind::Upload,
            name: "x".into(),
            notes: String::new(),
            tags: vec!["t".into()],
            uploader: None,
            devices: vec![],
            window: None,
            filter: None,
            source: "pcap".into(),
            interfaces: vec![],
            stats: CaptureStats {
                first_ns: Some(10),
                last_ns: Some(20),
                ..CaptureStats::default()
            },
            dir: None,
            parts: vec![],
        };
        let id = c.insert_capture(a, &new, |_| Ok(()), || {}).unwrap();
        assert!(c.capture(b, id).unwrap().is_none());
        assert!(c.captures(b, &CaptureQuery::default()).unwrap().is_empty());
        assert!(c.add_capture_tags(b, id, &["u".into()]).unwrap().is_none());
        assert!(c.remove_capture_tag(b, id, "t").unwrap().is_none());
        assert!(!c.set_capture_notes(b, id, "n").unwrap());
        assert!(c.delete_capture(b, id).unwrap().is_none());
        assert_eq!(c.capture(a, id).unwrap().unwrap().tags, ["t"]);

        let q = |tags: &[&str], from, to| CaptureQuery {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            from_ns: from,
            to_ns: to,
            ..CaptureQuery::default()
        };
        assert_eq!(c.captures(a, &q(&["t"], None, None)).unwrap().len(), 1);
        assert_eq!(c.captures(a, &q(&["t", "u"], None, None)).unwrap().len(), 0);
        assert_eq!(c.captures(a, &q(&[], Some(20), Some(21))).unwrap().len(), 1);
        assert_eq!(c.captures(a, &q(&[], Some(21), None)).unwrap().len(), 0);
        assert_eq!(c.captures(a, &q(&[], None, Some(10))).unwrap().len(), 0);

        // A failed placement records nothing.
        let failed = c.insert_capture(a, &new, |_| Err(io::Error::other("no")), || {});
        assert!(failed.is_err());
        assert_eq!(c.captures(a, &CaptureQuery::default()).unwrap().len(), 1);
    }
}
