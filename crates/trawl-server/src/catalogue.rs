//! The catalogue: what the server knows besides the packets, in SQLite.
//!
//! Organisations, their admin tokens and one-time enrolment tokens, devices (with the hash of
//! their credential), streams (per device, stream name and epoch: the last stored batch),
//! segments (file, time range, packets, bytes, drops), and captures with their tags, devices and
//! stored parts (queries in `captures.rs`), users, sessions and API tokens (`auth/store.rs`),
//! share links (`shares.rs`). Every method that reads or changes
//! something an organisation owns takes that organisation's id and puts it in its `WHERE`
//! clause, so no query crosses organisations.
//!
//! The database runs in WAL mode with `synchronous = FULL`: a committed transaction is on disk
//! when `commit` returns, which is what lets the server acknowledge a batch right after.
//!
//! `Catalogue` is synchronous (rusqlite); the server calls it from blocking threads.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use trawl_store::SegmentStats;
use trawl_wire::BatchHeader;

use crate::secret;

pub type Result<T> = std::result::Result<T, CatalogueError>;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalogue: could not make a secret: {0}")]
    Random(#[from] std::io::Error),
    #[error("catalogue: stream {stream} was expected at batch {expected}, it is not")]
    Raced { stream: i64, expected: u64 },
    #[error("an organisation named \"{0}\" already exists")]
    OrganisationExists(String),
    #[error("a user named \"{0}\" already exists in this organisation")]
    UserExists(String),
    #[error("putting a capture's files in place: {0}")]
    Files(std::io::Error),
}

impl CatalogueError {
    /// True when SQLite could not write because the disk is full (`SQLITE_FULL`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CatalogueError::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
    }

    /// True when SQLite reported an I/O error (`SQLITE_IOERR`) other than a full disk.
    pub fn is_io(&self) -> bool {
        matches!(self, CatalogueError::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::SystemIoFailure))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS admin_tokens (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    hash TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrolment_tokens (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    hash TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    used_ns INTEGER,
    device_id INTEGER REFERENCES devices(id)
);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    interfaces TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    enrolled_ns INTEGER NOT NULL,
    revoked_ns INTEGER,
    last_seen_ns INTEGER
);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    name TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    packets INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    kernel_drops INTEGER NOT NULL DEFAULT 0,
    interface_drops INTEGER NOT NULL DEFAULT 0,
    spool_drops INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device_id, name, epoch)
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    dir TEXT NOT NULL,
    name TEXT NOT NULL,
    first_ns INTEGER,
    last_ns INTEGER,
    packets INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    kernel_drops INTEGER NOT NULL DEFAULT 0,
    interface_drops INTEGER NOT NULL DEFAULT 0,
    spool_drops INTEGER NOT NULL DEFAULT 0,
    opened_ns INTEGER NOT NULL,
    closed_ns INTEGER
);
CREATE INDEX IF NOT EXISTS segments_by_stream ON segments (stream_id);
CREATE INDEX IF NOT EXISTS segments_by_org ON segments (org_id, closed_ns);
CREATE TABLE IF NOT EXISTS batches (
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    seq INTEGER NOT NULL,
    segment_id INTEGER NOT NULL REFERENCES segments(id),
    packets INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    kernel_drops INTEGER NOT NULL,
    interface_drops INTEGER NOT NULL,
    spool_drops INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (stream_id, seq)
);
CREATE INDEX IF NOT EXISTS batches_by_segment ON batches (segment_id);
CREATE TABLE IF NOT EXISTS retention (
    org_id INTEGER PRIMARY KEY REFERENCES organisations(id),
    max_age_secs INTEGER,
    max_bytes INTEGER
);
-- Captures (captures.rs): uploads, saved windows, and (later) capture jobs. AUTOINCREMENT: an
-- id is never given twice, so a capture's URL never comes to mean another capture.
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    uploader_device_id INTEGER REFERENCES devices(id),
    window_from_ns INTEGER,
    window_to_ns INTEGER,
    filter TEXT,
    first_ns INTEGER,
    last_ns INTEGER,
    packets INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    wire_bytes INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    dir TEXT,
    source TEXT NOT NULL DEFAULT '',
    interfaces TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS captures_by_org ON captures (org_id, id);
CREATE TABLE IF NOT EXISTS capture_tags (
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    tag TEXT NOT NULL,
    PRIMARY KEY (capture_id, tag)
);
-- A capture's tags and devices are read by (org_id, capture_id) through the primary keys, which
-- lead with capture_id. An index leading with org_id would be taken for those reads instead and
-- walk every row of the organisation: listing 50 of 10 000 captures took 0.4 s. So the indexes
-- by tag and by device lead with the tag and the device (catalogues made before are changed).
DROP INDEX IF EXISTS capture_tags_by_tag;
CREATE INDEX IF NOT EXISTS capture_tags_by_tag_name ON capture_tags (tag, org_id, capture_id);
CREATE TABLE IF NOT EXISTS capture_devices (
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (capture_id, device_id)
);
DROP INDEX IF EXISTS capture_devices_by_device;
CREATE INDEX IF NOT EXISTS capture_devices_by_device_id
    ON capture_devices (device_id, org_id, capture_id);
CREATE TABLE IF NOT EXISTS capture_parts (
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    interfaces INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    PRIMARY KEY (capture_id, seq)
);
";

/// Columns added after the first release of the schema: (table, column, declaration). A
/// catalogue made before gets them on open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("segments", "link_type", "INTEGER")];

pub type OrgId = i64;
pub type DeviceId = i64;

/// A new organisation and the admin token that acts for it (shown once, stored hashed).
#[derive(Clone, Debug)]
pub struct NewOrganisation {
    pub id: OrgId,
    pub admin_token: String,
}

/// A device as its credential identifies it.
#[derive(Clone, Debug)]
pub struct DeviceAuth {
    pub id: DeviceId,
    pub org: OrgId,
    pub name: String,
    pub revoked: bool,
}

/// What the device list shows of one device.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeviceSummary {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub revoked: bool,
    /// When the device last sent an authenticated request (ns since 1970), if ever.
    pub last_seen_ns: Option<u64>,
    pub packets: u64,
    pub bytes: u64,
    pub drops: Drops,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Drops {
    pub kernel: u64,
    pub interface: u64,
    pub spool: u64,
}

impl Drops {
    /// The three counters from columns `first`, `first + 1` and `first + 2` of a row (kernel,
    /// interface, spool).
    pub(crate) fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Drops> {
        Ok(Drops {
            kernel: from_sql(r.get(first)?),
            interface: from_sql(r.get(first + 1)?),
            spool: from_sql(r.get(first + 2)?),
        })
    }
}

/// A stream of a device in one epoch: the last batch stored.
#[derive(Clone, Copy, Debug)]
pub struct StreamRow {
    pub id: i64,
    pub last_seq: u64,
}

/// A segment as the catalogue records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRecord {
    pub id: i64,
    pub stream_id: i64,
    /// Directory of the segment, relative to the data directory.
    pub dir: String,
    pub name: String,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub packets: u64,
    pub bytes: u64,
    /// Length of the segment file that the catalogue vouches for: bytes past it were written
    /// but never acknowledged, and are cut off when the segment is reopened.
    pub stored_bytes: u64,
    pub drops: Drops,
    pub closed: bool,
}

/// A batch that was appended to a segment and synced, to be recorded.
pub struct StoredBatch<'a> {
    pub stream: StreamRow,
    pub segment_id: i64,
    pub header: &'a BatchHeader,
    /// The segment's totals after the batch.
    pub segment: SegmentStats,
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// SQLite integers are signed; sequence numbers, epochs and counters are stored bit for bit.
pub(crate) fn to_sql(v: u64) -> i64 {
    v as i64
}

pub(crate) fn from_sql(v: i64) -> u64 {
    v as u64
}

pub struct Catalogue {
    /// Open to the crate so that the queries of retention and of the device status can live
    /// beside the code that uses them (`retention.rs`, `devices.rs`).
    pub(crate) conn: Connection,
}

impl Catalogue {
    /// Opens (creating if needed) the catalogue at `path`.
    pub fn open(path: &Path) -> Result<Catalogue> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Transactions take the write lock when they begin: one that reads and then writes
        // waits for another process's writer (the busy timeout) instead of failing when that
        // writer commits between its read and its write (WAL mode cannot wait then).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::jobs::SCHEMA)?;
        conn.execute_batch(crate::annotations::SCHEMA)?;
        conn.execute_batch(crate::auth::SCHEMA)?;
        conn.execute_batch(crate::shares::SCHEMA)?;
        for (table, column, declaration) in ADDED_COLUMNS {
            let present: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                [table, column],
                |r| r.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
                ))?;
            }
        }
        Ok(Catalogue { conn })
    }

    /// How many organisations there are.
    pub fn organisation_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM organisations", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The id of the organisation named `name`.
    pub fn organisation_id(&self, name: &str) -> Result<Option<OrgId>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM organisations WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The name of organisation `id`.
    pub fn organisation_name(&self, id: OrgId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name FROM organisations WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Creates an organisation and its first admin token.
    pub fn create_organisation(&mut self, name: &str) -> Result<NewOrganisation> {
        let token = secret::generate()?;
        let tx = self.conn.transaction()?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM organisations WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(CatalogueError::OrganisationExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO organisations (name, created_ns) VALUES (?1, ?2)",
            params![name, now_ns()],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO admin_tokens (org_id, hash, created_ns) VALUES (?1, ?2, ?3)",
            params![id, secret::hash(&token), now_ns()],
        )?;
        tx.commit()?;
        Ok(NewOrganisation {
            id,
            admin_token: token,
        })
    }

    /// The organisation an admin token acts for.
    pub fn admin_org(&self, token: &str) -> Result<Option<OrgId>> {
        Ok(self
            .conn
            .query_row(
                "SELECT org_id FROM admin_tokens WHERE hash = ?1",
                [secret::hash(token)],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A new one-time enrolment token for `org`.
    pub fn create_enrolment_token(&mut self, org: OrgId) -> Result<String> {
        let token = secret::generate()?;
        self.conn.execute(
            "INSERT INTO enrolment_tokens (org_id, hash, created_ns) VALUES (?1, ?2, ?3)",
            params![org, secret::hash(&token), now_ns()],
        )?;
        Ok(token)
    }

    /// Trades an unused enrolment token for a new device and its credential; `None` if the
    /// token is unknown or already used. Marking the token used and creating the device happen
    /// in one transaction, so a token makes at most one device.
    pub fn enrol(
        &mut self,
        token: &str,
        name: &str,
        hostname: &str,
        interfaces_json: &str,
    ) -> Result<Option<(DeviceId, String)>> {
        let credential = secret::generate()?;
        let tx = self.conn.transaction()?;
        let found: Option<(i64, OrgId)> = tx
            .query_row(
                "SELECT id, org_id FROM enrolment_tokens WHERE hash = ?1 AND used_ns IS NULL",
                [secret::hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((token_id, org)) = found else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO devices (org_id, name, hostname, interfaces, credential_hash, enrolled_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                org,
                name,
                hostname,
                interfaces_json,
                secret::hash(&credential),
                now_ns()
            ],
        )?;
        let device = tx.last_insert_rowid();
        tx.execute(
            "UPDATE enrolment_tokens SET used_ns = ?1, device_id = ?2 WHERE id = ?3",
            params![now_ns(), device, token_id],
        )?;
        tx.commit()?;
        Ok(Some((device, credential)))
    }

    /// The device a credential belongs to (revoked or not); notes that it was seen. Noting it
    /// is best effort: on a full disk the device is still recognised (the server also keeps
    /// the time of each device's last request in memory).
    pub fn device_by_credential(&mut self, credential: &str) -> Result<Option<DeviceAuth>> {
        let device = self
            .conn
            .query_row(
                "SELECT id, org_id, name, revoked_ns IS NOT NULL FROM devices
                 WHERE credential_hash = ?1",
                [secret::hash(credential)],
                |r| {
                    Ok(DeviceAuth {
                        id: r.get(0)?,
                        org: r.get(1)?,
                        name: r.get(2)?,
                        revoked: r.get(3)?,
                    })
                },
            )
            .optional()?;
        if let Some(d) = &device
            && !d.revoked
            && let Err(e) = self.conn.execute(
                "UPDATE devices SET last_seen_ns = ?1 WHERE id = ?2 AND org_id = ?3",
                params![now_ns(), d.id, d.org],
            )
        {
            tracing::debug!("could not note when device {} was last seen: {e}", d.id);
        }
        Ok(device)
    }

    /// Revokes a device of `org`; false if `org` has no such device.
    pub fn revoke(&mut self, org: OrgId, device: DeviceId) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE devices SET revoked_ns = coalesce(revoked_ns, ?1) WHERE id = ?2 AND org_id = ?3",
            params![now_ns(), device, org],
        )?;
        Ok(changed == 1)
    }

    /// The devices of `org` with their totals over all streams.
    pub fn devices(&self, org: OrgId) -> Result<Vec<DeviceSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.id, d.name, d.hostname, d.revoked_ns IS NOT NULL, d.last_seen_ns,
                    coalesce(sum(s.packets), 0), coalesce(sum(s.bytes), 0),
                    coalesce(sum(s.kernel_drops), 0), coalesce(sum(s.interface_drops), 0),
                    coalesce(sum(s.spool_drops), 0)
             FROM devices d LEFT JOIN streams s ON s.device_id = d.id AND s.org_id = d.org_id
             WHERE d.org_id = ?1
             GROUP BY d.id ORDER BY d.id",
        )?;
        let rows = stmt.query_map([org], |r| {
            Ok(DeviceSummary {
                id: r.get::<_, i64>(0)?.to_string(),
                name: r.get(1)?,
                hostname: r.get(2)?,
                revoked: r.get(3)?,
                last_seen_ns: r.get::<_, Option<i64>>(4)?.map(from_sql),
                packets: from_sql(r.get(5)?),
                bytes: from_sql(r.get(6)?),
                drops: Drops::from_row(r, 7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The stream `name` of a device in `epoch`, creating it (at batch 0) if new.
    pub fn stream(
        &mut self,
        org: OrgId,
        device: DeviceId,
        name: &str,
        epoch: u64,
    ) -> Result<StreamRow> {
        self.conn.execute(
            "INSERT INTO streams (org_id, device_id, name, epoch) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, name, epoch) DO NOTHING",
            params![org, device, name, to_sql(epoch)],
        )?;
        Ok(self.conn.query_row(
            "SELECT id, last_seq FROM streams
             WHERE org_id = ?1 AND device_id = ?2 AND name = ?3 AND epoch = ?4",
            params![org, device, name, to_sql(epoch)],
            |r| {
                Ok(StreamRow {
                    id: r.get(0)?,
                    last_seq: from_sql(r.get(1)?),
                })
            },
        )?)
    }

    /// Adds a segment for a stream, whose packets have link type `link_type`; its file name is
    /// derived from its id.
    pub fn create_segment(
        &mut self,
        org: OrgId,
        stream: i64,
        dir: &str,
        link_type: u32,
    ) -> Result<SegmentRecord> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO segments (org_id, stream_id, dir, name, opened_ns, link_type)
             VALUES (?1, ?2, ?3, '', ?4, ?5)",
            params![org, stream, dir, now_ns(), link_type],
        )?;
        let id = tx.last_insert_rowid();
        let name = format!("s{stream}-{id}");
        tx.execute(
            "UPDATE segments SET name = ?1 WHERE id = ?2 AND org_id = ?3",
            params![name, id, org],
        )?;
        tx.commit()?;
        Ok(SegmentRecord {
            id,
            stream_id: stream,
            dir: dir.to_owned(),
            name,
            first_ns: None,
            last_ns: None,
            packets: 0,
            bytes: 0,
            stored_bytes: 0,
            drops: Drops::default(),
            closed: false,
        })
    }

    /// The segment of a stream still open (after a restart), if any.
    pub fn open_segment(&self, org: OrgId, stream: i64) -> Result<Option<SegmentRecord>> {
        Ok(self
            .query_segments(
                "WHERE org_id = ?1 AND stream_id = ?2 AND closed_ns IS NULL ORDER BY id DESC LIMIT 1",
                params![org, stream],
            )?
            .pop())
    }

    /// Marks a segment closed.
    pub fn close_segment(&mut self, org: OrgId, segment: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE segments SET closed_ns = ?1 WHERE id = ?2 AND org_id = ?3",
            params![now_ns(), segment, org],
        )?;
        Ok(())
    }

    /// The segments of a device of `org`, oldest first.
    pub fn segments(&self, org: OrgId, device: DeviceId) -> Result<Vec<SegmentRecord>> {
        self.query_segments(
            "WHERE org_id = ?1 AND stream_id IN
                (SELECT id FROM streams WHERE org_id = ?1 AND device_id = ?2)
             ORDER BY id",
            params![org, device],
        )
    }

    pub(crate) fn query_segments(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<SegmentRecord>> {
        let sql = format!(
            "SELECT id, stream_id, dir, name, first_ns, last_ns, packets, bytes, stored_bytes,
                    kernel_drops, interface_drops, spool_drops, closed_ns IS NOT NULL
             FROM segments {condition}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok(SegmentRecord {
                id: r.get(0)?,
                stream_id: r.get(1)?,
                dir: r.get(2)?,
                name: r.get(3)?,
                first_ns: r.get::<_, Option<i64>>(4)?.map(from_sql),
                last_ns: r.get::<_, Option<i64>>(5)?.map(from_sql),
                packets: from_sql(r.get(6)?),
                bytes: from_sql(r.get(7)?),
                stored_bytes: from_sql(r.get(8)?),
                drops: Drops::from_row(r, 9)?,
                closed: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a batch that is durably in its segment, in one transaction: the stream moves to
    /// the batch's number (only if it is still where the caller found it), the batch and the
    /// segment's new totals are recorded, and the drops are added to stream and segment.
    pub fn record_batch(&mut self, org: OrgId, b: &StoredBatch<'_>) -> Result<()> {
        let h = b.header;
        let tx = self.conn.transaction()?;
        let moved = tx.execute(
            "UPDATE streams SET last_seq = ?1, packets = packets + ?2, bytes = bytes + ?3,
                kernel_drops = kernel_drops + ?4, interface_drops = interface_drops + ?5,
                spool_drops = spool_drops + ?6
             WHERE id = ?7 AND org_id = ?8 AND last_seq = ?9",
            params![
                to_sql(h.seq),
                h.packets,
                to_sql(h.bytes),
                to_sql(h.drops.kernel),
                to_sql(h.drops.interface),
                to_sql(h.drops.spool),
                b.stream.id,
                org,
                to_sql(b.stream.last_seq),
            ],
        )?;
        if moved != 1 {
            return Err(CatalogueError::Raced {
                stream: b.stream.id,
                expected: b.stream.last_seq,
            });
        }
        tx.execute(
            "INSERT INTO batches (stream_id, seq, segment_id, packets, bytes, kernel_drops,
                interface_drops, spool_drops, received_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                b.stream.id,
                to_sql(h.seq),
                b.segment_id,
                h.packets,
                to_sql(h.bytes),
                to_sql(h.drops.kernel),
                to_sql(h.drops.interface),
                to_sql(h.drops.spool),
                now_ns(),
            ],
        )?;
        let s = &b.segment;
        tx.execute(
            "UPDATE segments SET first_ns = ?1, last_ns = ?2, packets = ?3, bytes = ?4,
                stored_bytes = ?5, kernel_drops = kernel_drops + ?6,
                interface_drops = interface_drops + ?7, spool_drops = spool_drops + ?8
             WHERE id = ?9 AND org_id = ?10",
            params![
                s.first.map(|t| to_sql(t.as_nanos())),
                s.last.map(|t| to_sql(t.as_nanos())),
                to_sql(s.packets),
                to_sql(s.captured_bytes),
                to_sql(s.stored_bytes),
                to_sql(h.drops.kernel),
                to_sql(h.drops.interface),
                to_sql(h.drops.spool),
                b.segment_id,
                org,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// A device as retrieval names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRef {
    pub id: DeviceId,
    pub name: String,
}

/// A segment whose time range overlaps a window, with the stream it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSegment {
    pub device: DeviceId,
    /// The catalogue's stream row (one stream name in one epoch).
    pub stream_id: i64,
    /// The stream's name (`eth0`).
    pub stream: String,
    pub segment_id: i64,
    /// Directory of the segment, relative to the data directory.
    pub dir: String,
    pub name: String,
    /// The length of the segment file the catalogue vouches for.
    pub stored_bytes: u64,
}

// Retrieval.
impl Catalogue {
    /// The devices of `org` that `key` names: the device with that id if `key` is one, else
    /// every device with that name (names need not be unique). Empty if none.
    pub fn find_devices(&self, org: OrgId, key: &str) -> Result<Vec<DeviceRef>> {
        let row = |r: &rusqlite::Row<'_>| {
            Ok(DeviceRef {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        };
        if let Ok(id) = key.parse::<DeviceId>() {
            let by_id = self
                .conn
                .query_row(
                    "SELECT id, name FROM devices WHERE org_id = ?1 AND id = ?2",
                    params![org, id],
                    row,
                )
                .optional()?;
            if let Some(d) = by_id {
                return Ok(vec![d]);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, name FROM devices WHERE org_id = ?1 AND name = ?2 ORDER BY id")?;
        let rows = stmt.query_map(params![org, key], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The segments of a device of `org` holding packets whose time may lie in `[from_ns,
    /// to_ns)` (their earliest packet before `to_ns`, their latest at or after `from_ns`), by
    /// stream name, stream row and segment, oldest first. Segments without a packet are left out,
    /// and so are the streams of capture jobs (`job-…`): their packets are downloaded through
    /// the job (beside the device's own stream of the same interface they would come twice).
    pub fn segments_in_window(
        &self,
        org: OrgId,
        device: DeviceId,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<Vec<WindowSegment>> {
        // Times are stored as signed integers; no packet time reaches 2^63 ns (year 2262).
        let clamp = |t: u64| t.min(i64::MAX as u64) as i64;
        let mut stmt = self.conn.prepare(
            "SELECT st.device_id, s.stream_id, st.name, s.id, s.dir, s.name, s.stored_bytes
             FROM segments s JOIN streams st ON st.id = s.stream_id AND st.org_id = s.org_id
             WHERE s.org_id = ?1 AND s.stream_id IN
                   (SELECT id FROM streams WHERE org_id = ?1 AND device_id = ?2)
               AND s.first_ns IS NOT NULL AND s.first_ns < ?4 AND s.last_ns >= ?3
               AND substr(st.name, 1, 4) <> 'job-'
             ORDER BY st.name, s.stream_id, s.id",
        )?;
        let rows = stmt.query_map(params![org, device, clamp(from_ns), clamp(to_ns)], |r| {
            Ok(WindowSegment {
                device: r.get(0)?,
                stream_id: r.get(1)?,
                stream: r.get(2)?,
                segment_id: r.get(3)?,
                dir: r.get(4)?,
                name: r.get(5)?,
                stored_bytes: from_sql(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_token_makes_one_device_and_queries_stay_in_their_organisation() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalogue::open(&dir.path().join("c.db")).unwrap();
        let a = c.create_organisation("a").unwrap();
        let b = c.create_organisation("b").unwrap();
        assert_eq!(c.admin_org(&a.admin_token).unwrap(), Some(a.id));
        assert_eq!(c.admin_org("nope").unwrap(), None);

        let token = c.create_enrolment_token(b.id).unwrap();
        let (dev, cred) = c.enrol(&token, "gw", "gw.lan", "[]").unwrap().unwrap();
        assert!(c.enrol(&token, "gw2", "gw.lan", "[]").unwrap().is_none());
        assert_eq!(c.device_by_credential(&cred).unwrap().unwrap().org, b.id);

        assert!(c.devices(a.id).unwrap().is_empty());
        assert!(!c.revoke(a.id, dev).unwrap(), "a cannot revoke b's device");
        assert!(c.revoke(b.id, dev).unwrap());
        assert!(c.device_by_credential(&cred).unwrap().unwrap().revoked);
    }

    /// Two processes share the catalogue (the server, and `trawl org … --data`): a transaction
    /// that reads and then writes must make the other writer wait, not fail with "database is
    /// locked" when the other commits in between (what a deferred transaction does in WAL mode,
    /// where waiting cannot help: its snapshot is stale). Seen in bench/watch.sh: an agent's
    /// enrolment failed while the next enrolment token was being made.
    #[test]
    fn a_read_then_write_transaction_is_not_undone_by_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut c = Catalogue::open(&path).unwrap();
        let org = c.create_organisation("o").unwrap().id;
        let mut c2 = Catalogue::open(&path).unwrap();
        let tx = c.conn.transaction().unwrap();
        let n: i64 = tx
            .query_row("SELECT count(*) FROM enrolment_tokens", [], |r| r.get(0))
            .unwrap();
        // The other connection writes meanwhile: it must wait for this transaction.
        let other = std::thread::spawn(move || c2.create_enrolment_token(org).map(|_| ()));
        std::thread::sleep(std::time::Duration::from_millis(200));
        tx.execute(
            "INSERT INTO enrolment_tokens (org_id, hash, created_ns) VALUES (?1, 'x', ?2)",
            params![org, n],
        )
        .expect("the write of a transaction that read first");
        tx.commit().unwrap();
        other
            .join()
            .unwrap()
            .expect("the other writer, after waiting");
    }
}
