//! The catalogue's job tables and their queries (every one scoped to an organisation).
//!
//! - `jobs`: what was asked — expression, interface, snap length, limits, name, notes — and the
//!   job's state (`running` while any device is `pending` or `running`, then `finished`).
//! - `job_devices`: per device, the interface and link type, the stream the agent sends the
//!   job's packets on (`job-ID-INTERFACE`), the exact program pushed and where it runs, the
//!   state (`pending` → `running` → `finished` | `failed`; `offline` when the device could not
//!   be reached), the reason, and the agent's result: start, end, packets, bytes, drops (the
//!   figures of TR-181's `PacketCaptureResult`). What the server *stored* for the row comes
//!   from the `streams` table of the job's stream, so the two can be compared.
//! - `agent_commands`: the commands queued for devices (`start_job`, `stop_job`), numbered
//!   across the server so that an agent can ask for those after the last it saw. A command is
//!   handed out only while it still means something: a start while the row is `pending`, a
//!   stop while it is `pending` or `running`.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use trawl_bpf::Program;

use super::filter::{FilterMode, JobFilter};
use crate::catalogue::{
    Catalogue, DeviceId, DeviceRef, Drops, OrgId, Result, WindowSegment, from_sql, now_ns, to_sql,
};
use crate::devices::rfc3339;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    name TEXT,
    notes TEXT,
    expression TEXT NOT NULL,
    interface TEXT,
    snaplen INTEGER NOT NULL,
    duration_ms INTEGER,
    max_packets INTEGER,
    max_bytes INTEGER,
    created_ns INTEGER NOT NULL,
    stop_requested_ns INTEGER,
    state TEXT NOT NULL,
    ended_ns INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_org ON jobs (org_id, id);
CREATE TABLE IF NOT EXISTS job_devices (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    position INTEGER NOT NULL,
    interface TEXT,
    link_type INTEGER,
    stream TEXT NOT NULL,
    bytecode TEXT,
    filter_mode TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    sent_ns INTEGER,
    started_ns INTEGER,
    ended_ns INTEGER,
    packets INTEGER,
    bytes INTEGER,
    kernel_drops INTEGER,
    interface_drops INTEGER,
    spool_drops INTEGER,
    PRIMARY KEY (job_id, device_id)
);
CREATE INDEX IF NOT EXISTS job_devices_by_device ON job_devices (device_id, state);
CREATE TABLE IF NOT EXISTS agent_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    kind TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_commands_by_device ON agent_commands (device_id, id);
";

/// A row that has not started this long after the job was created is marked `offline`: its
/// device took the command channel's presence with it.
pub const START_WITHIN_NS: i64 = 60_000_000_000;

/// Where one device stands in a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowState {
    /// The start command is queued (or handed out) and the agent has not said it started.
    Pending,
    Running,
    Finished,
    /// The device could not be reached when the job started (or never started it).
    Offline,
    /// The job could not run there (no such interface, the agent failed or restarted).
    Failed,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Running => "running",
            RowState::Finished => "finished",
            RowState::Offline => "offline",
            RowState::Failed => "failed",
        }
    }
}

/// A job as asked for, checked, with what each device will run.
pub struct NewJob {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub expression: String,
    pub interface: Option<String>,
    pub snaplen: u32,
    pub duration_ms: Option<u64>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
    pub devices: Vec<NewJobDevice>,
}

pub struct NewJobDevice {
    pub device: DeviceId,
    pub interface: Option<String>,
    pub link_type: Option<u32>,
    pub filter: Option<JobFilter>,
    /// `Pending` (a start command is queued), `Offline` or `Failed`.
    pub state: RowState,
    pub reason: Option<String>,
}

/// A device that a job names, as the catalogue knows it.
pub struct JobCandidate {
    pub device: DeviceRef,
    pub revoked: bool,
    /// The interfaces it declared (`[{"name", "link_type", "capture"?}]`).
    pub interfaces_json: String,
}

/// Packet and drop counts.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
    pub drops: Drops,
}

/// One device of a job.
#[derive(Clone, Debug, Serialize)]
pub struct JobDeviceRecord {
    pub device: String,
    pub name: String,
    pub interface: Option<String>,
    pub link_type: Option<u32>,
    pub stream: String,
    /// `kernel` or `userspace` (see `filter_mode` in docs/protocol.md).
    pub filter_mode: Option<String>,
    pub instructions: Option<usize>,
    /// The program pushed to the device (only when one job is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<Program>,
    pub state: String,
    pub reason: Option<String>,
    pub started_ns: Option<u64>,
    pub started: Option<String>,
    pub ended_ns: Option<u64>,
    pub ended: Option<String>,
    /// What the agent reported at the end (`null` until then).
    pub result: Option<Counts>,
    /// What the server stored of the job's stream from this device.
    pub stored: Counts,
}

/// A job and its devices.
#[derive(Clone, Debug, Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub name: Option<String>,
    pub notes: Option<String>,
    pub expression: String,
    pub interface: Option<String>,
    pub snaplen: u32,
    pub duration_secs: Option<f64>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
    pub created_ns: u64,
    pub created: String,
    /// `running` or `finished`.
    pub state: String,
    pub stop_requested: bool,
    pub ended_ns: Option<u64>,
    pub ended: Option<String>,
    /// Sums over the devices: what the agents reported, and what the server stored.
    pub totals: JobTotals,
    pub devices: Vec<JobDeviceRecord>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct JobTotals {
    pub packets: u64,
    pub bytes: u64,
    pub drops: Drops,
    pub stored_packets: u64,
    pub stored_bytes: u64,
}

/// A command as an agent receives it.
#[derive(Clone, Debug, Serialize)]
pub struct Command {
    pub id: i64,
    pub kind: &'static str,
    pub job: i64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartJob>,
}

/// What a `start_job` command carries.
#[derive(Clone, Debug, Serialize)]
pub struct StartJob {
    pub stream: String,
    pub interface: String,
    pub link_type: u32,
    pub snaplen: u32,
    pub program: Program,
    pub filter_mode: FilterMode,
    pub duration_ms: Option<u64>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// What an agent reports when its part of a job has ended.
#[derive(Clone, Debug)]
pub struct AgentResult {
    pub started_ns: Option<u64>,
    pub ended_ns: u64,
    pub counts: Counts,
    pub reason: String,
    pub failed: bool,
}

/// The stream name a job's packets travel on from one interface: `job-ID-INTERFACE`, the
/// interface made plain (the characters the batch endpoint accepts).
pub fn job_stream(job: i64, interface: Option<&str>) -> String {
    let iface: String = interface
        .unwrap_or("none")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut s = format!("job-{job}-{iface}");
    s.truncate(64);
    s
}

/// A device of a job and the segments of its job stream.
pub type JobDeviceSegments = (DeviceRef, Vec<WindowSegment>);

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.map(from_sql)
}

impl Catalogue {
    /// The devices of `org` that `key` names (by id, else by name), with what a job needs.
    pub fn job_candidates(&self, org: OrgId, key: &str) -> Result<Vec<JobCandidate>> {
        let found = self.find_devices(org, key)?;
        let mut out = Vec::with_capacity(found.len());
        for device in found {
            let (revoked, interfaces_json) = self.conn.query_row(
                "SELECT revoked_ns IS NOT NULL, interfaces FROM devices
                 WHERE org_id = ?1 AND id = ?2",
                params![org, device.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            out.push(JobCandidate {
                device,
                revoked,
                interfaces_json,
            });
        }
        Ok(out)
    }

    /// Records a job, its devices and the start commands of its pending devices, in one
    /// transaction; returns the job's id.
    pub fn create_job(&mut self, org: OrgId, job: &NewJob) -> Result<i64> {
        let now = now_ns();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO jobs (org_id, name, notes, expression, interface, snaplen, duration_ms,
                max_packets, max_bytes, created_ns, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running')",
            params![
                org,
                job.name,
                job.notes,
                job.expression,
                job.interface,
                job.snaplen,
                job.duration_ms.map(to_sql),
                job.max_packets.map(to_sql),
                job.max_bytes.map(to_sql),
                now,
            ],
        )?;
        let id = tx.last_insert_rowid();
        for (position, d) in job.devices.iter().enumerate() {
            let bytecode = d
                .filter
                .as_ref()
                .map(|f| serde_json::to_string(&f.program).expect("a program serialises"));
            tx.execute(
                "INSERT INTO job_devices (job_id, org_id, device_id, position, interface,
                    link_type, stream, bytecode, filter_mode, state, reason, ended_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    id,
                    org,
                    d.device,
                    position as i64,
                    d.interface,
                    d.link_type,
                    job_stream(id, d.interface.as_deref()),
                    bytecode,
                    d.filter.as_ref().map(|f| f.mode.as_str()),
                    d.state.as_str(),
                    d.reason,
                    (d.state != RowState::Pending).then_some(now),
                ],
            )?;
            if d.state == RowState::Pending {
                tx.execute(
                    "INSERT INTO agent_commands (org_id, device_id, job_id, kind, created_ns)
                     VALUES (?1, ?2, ?3, 'start_job', ?4)",
                    params![org, d.device, id, now],
                )?;
            }
        }
        settle(&tx, org, id)?;
        tx.commit()?;
        Ok(id)
    }

    /// A job of `org` with its devices (and their programs if `programs`).
    pub fn job(&mut self, org: OrgId, id: i64, programs: bool) -> Result<Option<JobRecord>> {
        self.expire_pending(org)?;
        let Some(mut job) = self
            .conn
            .query_row(
                &format!("{JOB_COLUMNS} WHERE org_id = ?1 AND id = ?2"),
                params![org, id],
                job_from_row,
            )
            .optional()?
        else {
            return Ok(None);
        };
        job.devices = self.job_rows(org, id, programs)?;
        job.totals = totals(&job.devices);
        Ok(Some(job))
    }

    /// The organisation's jobs, newest first, at most `limit`, without programs.
    pub fn jobs(&mut self, org: OrgId, limit: u32) -> Result<Vec<JobRecord>> {
        self.expire_pending(org)?;
        let mut stmt = self.conn.prepare(&format!(
            "{JOB_COLUMNS} WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let mut jobs: Vec<JobRecord> = stmt
            .query_map(params![org, limit], job_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        for job in &mut jobs {
            job.devices = self.job_rows(org, job.id, false)?;
            job.totals = totals(&job.devices);
        }
        Ok(jobs)
    }

    fn job_rows(&self, org: OrgId, job: i64, programs: bool) -> Result<Vec<JobDeviceRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.device_id, d.name, r.interface, r.link_type, r.stream, r.filter_mode,
                    r.bytecode, r.state, r.reason, r.started_ns, r.ended_ns, r.packets, r.bytes,
                    r.kernel_drops, r.interface_drops, r.spool_drops,
                    coalesce(sum(s.packets), 0), coalesce(sum(s.bytes), 0),
                    coalesce(sum(s.kernel_drops), 0), coalesce(sum(s.interface_drops), 0),
                    coalesce(sum(s.spool_drops), 0)
             FROM job_devices r
             JOIN devices d ON d.id = r.device_id AND d.org_id = r.org_id
             LEFT JOIN streams s ON s.org_id = r.org_id AND s.device_id = r.device_id
                                AND s.name = r.stream
             WHERE r.org_id = ?1 AND r.job_id = ?2
             GROUP BY r.device_id ORDER BY r.position",
        )?;
        let rows = stmt.query_map(params![org, job], |r| {
            let bytecode: Option<String> = r.get(6)?;
            let program: Option<Program> = bytecode.and_then(|b| serde_json::from_str(&b).ok());
            let started_ns = opt_u64(r.get(9)?);
            let ended_ns = opt_u64(r.get(10)?);
            let packets: Option<i64> = r.get(11)?;
            let result = match packets {
                None => None,
                Some(p) => Some(Counts {
                    packets: from_sql(p),
                    bytes: from_sql(r.get::<_, Option<i64>>(12)?.unwrap_or(0)),
                    drops: Drops {
                        kernel: from_sql(r.get::<_, Option<i64>>(13)?.unwrap_or(0)),
                        interface: from_sql(r.get::<_, Option<i64>>(14)?.unwrap_or(0)),
                        spool: from_sql(r.get::<_, Option<i64>>(15)?.unwrap_or(0)),
                    },
                }),
            };
            Ok(JobDeviceRecord {
                device: r.get::<_, i64>(0)?.to_string(),
                name: r.get(1)?,
                interface: r.get(2)?,
                link_type: r.get(3)?,
                stream: r.get(4)?,
                filter_mode: r.get(5)?,
                instructions: program.as_ref().map(Program::len),
                program: if programs { program } else { None },
                state: r.get(7)?,
                reason: r.get(8)?,
                started_ns,
                started: started_ns.map(rfc3339),
                ended_ns,
                ended: ended_ns.map(rfc3339),
                result,
                stored: Counts {
                    packets: from_sql(r.get(16)?),
                    bytes: from_sql(r.get(17)?),
                    drops: Drops::from_row(r, 18)?,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Rows whose start has waited too long are `offline`.
    fn expire_pending(&mut self, org: OrgId) -> Result<()> {
        let now = now_ns();
        let tx = self.conn.transaction()?;
        let jobs: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT r.job_id FROM job_devices r JOIN jobs j ON j.id = r.job_id
                 WHERE r.org_id = ?1 AND r.state = 'pending' AND j.created_ns < ?2",
            )?;
            stmt.query_map(params![org, now - START_WITHIN_NS], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for job in &jobs {
            tx.execute(
                "UPDATE job_devices SET state = 'offline', ended_ns = ?3,
                    reason = 'the device did not start the job within 60 s of it being queued \
                              (its agent stopped polling for commands?)'
                 WHERE org_id = ?1 AND job_id = ?2 AND state = 'pending'",
                params![org, job, now],
            )?;
            settle(&tx, org, *job)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Asks for a job to stop: rows not yet handed to their agent end now; the others get a
    /// stop command. `None` if `org` has no such job; else the devices to wake.
    pub fn stop_job(&mut self, org: OrgId, job: i64) -> Result<Option<Vec<DeviceId>>> {
        let now = now_ns();
        let tx = self.conn.transaction()?;
        let found = tx.execute(
            "UPDATE jobs SET stop_requested_ns = coalesce(stop_requested_ns, ?3)
             WHERE org_id = ?1 AND id = ?2",
            params![org, job, now],
        )?;
        if found == 0 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE job_devices SET state = 'finished', reason = 'stopped', ended_ns = ?3,
                packets = 0, bytes = 0, kernel_drops = 0, interface_drops = 0, spool_drops = 0
             WHERE org_id = ?1 AND job_id = ?2 AND state = 'pending' AND sent_ns IS NULL",
            params![org, job, now],
        )?;
        let devices: Vec<DeviceId> = {
            let mut stmt = tx.prepare(
                "SELECT device_id FROM job_devices
                 WHERE org_id = ?1 AND job_id = ?2 AND state IN ('pending', 'running')",
            )?;
            stmt.query_map(params![org, job], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for device in &devices {
            tx.execute(
                "INSERT INTO agent_commands (org_id, device_id, job_id, kind, created_ns)
                 VALUES (?1, ?2, ?3, 'stop_job', ?4)",
                params![org, device, job, now],
            )?;
        }
        settle(&tx, org, job)?;
        tx.commit()?;
        Ok(Some(devices))
    }

    /// The commands for `device` numbered above `after` that still mean something, oldest
    /// first; the starts among them are noted as handed out.
    pub fn commands_for(
        &mut self,
        org: OrgId,
        device: DeviceId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Command>> {
        let tx = self.conn.transaction()?;
        let listed: Vec<(i64, String, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT c.id, c.kind, c.job_id FROM agent_commands c
                 JOIN job_devices r ON r.job_id = c.job_id AND r.device_id = c.device_id
                                   AND r.org_id = c.org_id
                 WHERE c.org_id = ?1 AND c.device_id = ?2 AND c.id > ?3
                   AND ((c.kind = 'start_job' AND r.state = 'pending')
                        OR (c.kind = 'stop_job' AND r.state IN ('pending', 'running')))
                 ORDER BY c.id LIMIT ?4",
            )?;
            stmt.query_map(params![org, device, after, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut commands = Vec::with_capacity(listed.len());
        for (id, kind, job) in listed {
            if kind == "stop_job" {
                commands.push(Command {
                    id,
                    kind: "stop_job",
                    job,
                    start: None,
                });
                continue;
            }
            let start = tx.query_row(
                "SELECT r.stream, r.interface, r.link_type, r.bytecode, r.filter_mode,
                        j.snaplen, j.duration_ms, j.max_packets, j.max_bytes
                 FROM job_devices r JOIN jobs j ON j.id = r.job_id AND j.org_id = r.org_id
                 WHERE r.org_id = ?1 AND r.job_id = ?2 AND r.device_id = ?3",
                params![org, job, device],
                |r| {
                    let bytecode: Option<String> = r.get(3)?;
                    let mode: Option<String> = r.get(4)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<u32>>(2)?,
                        bytecode.and_then(|b| serde_json::from_str::<Program>(&b).ok()),
                        mode.as_deref().and_then(FilterMode::parse),
                        r.get::<_, u32>(5)?,
                        opt_u64(r.get(6)?),
                        opt_u64(r.get(7)?),
                        opt_u64(r.get(8)?),
                    ))
                },
            )?;
            let (stream, interface, link_type, program, mode, snaplen, duration, packets, bytes) =
                start;
            // A pending row always has all of these (see `create_job`).
            let (Some(interface), Some(link_type), Some(program), Some(filter_mode)) =
                (interface, link_type, program, mode)
            else {
                continue;
            };
            tx.execute(
                "UPDATE job_devices SET sent_ns = coalesce(sent_ns, ?4)
                 WHERE org_id = ?1 AND job_id = ?2 AND device_id = ?3",
                params![org, job, device, now_ns()],
            )?;
            commands.push(Command {
                id,
                kind: "start_job",
                job,
                start: Some(StartJob {
                    stream,
                    interface,
                    link_type,
                    snaplen,
                    program,
                    filter_mode,
                    duration_ms: duration,
                    max_packets: packets,
                    max_bytes: bytes,
                }),
            });
        }
        tx.commit()?;
        Ok(commands)
    }

    /// The agent says its part of `job` has started; false if it has no part in such a job.
    pub fn job_started(
        &mut self,
        org: OrgId,
        device: DeviceId,
        job: i64,
        started_ns: u64,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM job_devices
                            WHERE org_id = ?1 AND job_id = ?2 AND device_id = ?3)",
            params![org, job, device],
            |r| r.get(0),
        )?;
        if exists {
            // A row marked offline because the start took long is running after all.
            tx.execute(
                "UPDATE job_devices SET state = 'running', reason = NULL, ended_ns = NULL,
                    started_ns = ?4
                 WHERE org_id = ?1 AND job_id = ?2 AND device_id = ?3
                   AND state IN ('pending', 'offline')",
                params![org, job, device, to_sql(started_ns)],
            )?;
            settle(&tx, org, job)?;
        }
        tx.commit()?;
        Ok(exists)
    }

    /// The agent's result for its part of `job`; false if it has no part in such a job.
    pub fn job_result(
        &mut self,
        org: OrgId,
        device: DeviceId,
        job: i64,
        result: &AgentResult,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let c = &result.counts;
        let changed = tx.execute(
            "UPDATE job_devices SET state = ?4, reason = ?5,
                started_ns = coalesce(?6, started_ns), ended_ns = ?7, packets = ?8, bytes = ?9,
                kernel_drops = ?10, interface_drops = ?11, spool_drops = ?12
             WHERE org_id = ?1 AND job_id = ?2 AND device_id = ?3",
            params![
                org,
                job,
                device,
                if result.failed { "failed" } else { "finished" },
                result.reason,
                result.started_ns.map(to_sql),
                to_sql(result.ended_ns),
                to_sql(c.packets),
                to_sql(c.bytes),
                to_sql(c.drops.kernel),
                to_sql(c.drops.interface),
                to_sql(c.drops.spool),
            ],
        )?;
        if changed == 1 {
            settle(&tx, org, job)?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    /// An agent (re)started its command channel: it declares its interfaces, and the jobs it
    /// still has. Its rows `running` that it does not list ended with its previous run.
    pub fn agent_hello(
        &mut self,
        org: OrgId,
        device: DeviceId,
        interfaces_json: &str,
        jobs: &[i64],
    ) -> Result<()> {
        let now = now_ns();
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE devices SET interfaces = ?3 WHERE org_id = ?1 AND id = ?2",
            params![org, device, interfaces_json],
        )?;
        let running: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT job_id FROM job_devices
                 WHERE org_id = ?1 AND device_id = ?2 AND state = 'running'",
            )?;
            stmt.query_map(params![org, device], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for job in running.into_iter().filter(|j| !jobs.contains(j)) {
            tx.execute(
                "UPDATE job_devices SET state = 'failed', ended_ns = ?4,
                    reason = 'the agent restarted during the job and no longer runs it'
                 WHERE org_id = ?1 AND job_id = ?2 AND device_id = ?3",
                params![org, job, device, now],
            )?;
            settle(&tx, org, job)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The devices of a job (in the order it named them) and the segments of each one's job
    /// stream, for the download; `None` if `org` has no such job.
    pub fn job_segments(&self, org: OrgId, job: i64) -> Result<Option<Vec<JobDeviceSegments>>> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE org_id = ?1 AND id = ?2)",
            params![org, job],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let devices: Vec<(DeviceRef, String)> = {
            let mut stmt = self.conn.prepare(
                "SELECT r.device_id, d.name, r.stream FROM job_devices r
                 JOIN devices d ON d.id = r.device_id AND d.org_id = r.org_id
                 WHERE r.org_id = ?1 AND r.job_id = ?2 ORDER BY r.position",
            )?;
            stmt.query_map(params![org, job], |r| {
                Ok((
                    DeviceRef {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    },
                    r.get(2)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::with_capacity(devices.len());
        for (device, stream) in devices {
            let mut stmt = self.conn.prepare(
                "SELECT st.device_id, s.stream_id, st.name, s.id, s.dir, s.name, s.stored_bytes
                 FROM segments s JOIN streams st ON st.id = s.stream_id AND st.org_id = s.org_id
                 WHERE s.org_id = ?1 AND st.device_id = ?2 AND st.name = ?3
                   AND s.first_ns IS NOT NULL
                 ORDER BY s.stream_id, s.id",
            )?;
            let segments = stmt
                .query_map(params![org, device.id, stream], |r| {
                    Ok(WindowSegment {
                        device: r.get(0)?,
                        stream_id: r.get(1)?,
                        stream: r.get(2)?,
                        segment_id: r.get(3)?,
                        dir: r.get(4)?,
                        name: r.get(5)?,
                        stored_bytes: from_sql(r.get(6)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            out.push((device, segments));
        }
        Ok(Some(out))
    }
}

/// One device's part of a job, as a live view starts from it: the stream, and (consistently
/// with each other, read under one lock) what is stored of it and up to which batch.
#[derive(Clone, Debug)]
pub struct WatchSource {
    pub device: DeviceRef,
    pub stream: String,
    pub interface: Option<String>,
    pub link_type: Option<u32>,
    /// The part's state when the view started (`RowState::as_str`).
    pub state: String,
    /// Per epoch of the stream, the last batch stored.
    pub stored_until: Vec<(u64, u64)>,
    /// The stored segments, oldest first; each to be read only up to its `stored_bytes`.
    pub segments: Vec<WindowSegment>,
}

impl Catalogue {
    /// Each device's part of job `id` of `org`, for a live view; `None` if there is no such job.
    pub fn watch_sources(&self, org: OrgId, job: i64) -> Result<Option<Vec<WatchSource>>> {
        let Some(segments) = self.job_segments(org, job)? else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT r.stream, r.interface, r.link_type, r.state FROM job_devices r
             WHERE r.org_id = ?1 AND r.job_id = ?2 ORDER BY r.position",
        )?;
        let parts: Vec<(String, Option<String>, Option<i64>, String)> = stmt
            .query_map(params![org, job], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut epochs = self.conn.prepare(
            "SELECT epoch, last_seq FROM streams WHERE org_id = ?1 AND device_id = ?2 AND name = ?3",
        )?;
        let mut out = Vec::with_capacity(parts.len());
        for ((device, segments), (stream, interface, link_type, state)) in
            segments.into_iter().zip(parts)
        {
            let stored_until = epochs
                .query_map(params![org, device.id, stream], |r| {
                    Ok((from_sql(r.get(0)?), from_sql(r.get(1)?)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            out.push(WatchSource {
                device,
                stream,
                interface,
                link_type: link_type.and_then(|n| u32::try_from(n).ok()),
                state,
                stored_until,
                segments,
            });
        }
        Ok(Some(out))
    }

    /// The job's state and each device part's, in the job's device order.
    pub fn job_states(&self, org: OrgId, job: i64) -> Result<Option<(String, Vec<String>)>> {
        let state: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM jobs WHERE org_id = ?1 AND id = ?2",
                params![org, job],
                |r| r.get(0),
            )
            .optional()?;
        let Some(state) = state else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT state FROM job_devices WHERE org_id = ?1 AND job_id = ?2 ORDER BY position",
        )?;
        let parts = stmt
            .query_map(params![org, job], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some((state, parts)))
    }
}

const JOB_COLUMNS: &str = "SELECT id, name, notes, expression, interface, snaplen, duration_ms,
    max_packets, max_bytes, created_ns, state, stop_requested_ns IS NOT NULL, ended_ns FROM jobs";

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let created_ns = from_sql(r.get(9)?);
    let ended_ns = opt_u64(r.get(12)?);
    Ok(JobRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        notes: r.get(2)?,
        expression: r.get(3)?,
        interface: r.get(4)?,
        snaplen: r.get(5)?,
        duration_secs: opt_u64(r.get(6)?).map(|ms| ms as f64 / 1000.0),
        max_packets: opt_u64(r.get(7)?),
        max_bytes: opt_u64(r.get(8)?),
        created_ns,
        created: rfc3339(created_ns),
        state: r.get(10)?,
        stop_requested: r.get(11)?,
        ended_ns,
        ended: ended_ns.map(rfc3339),
        totals: JobTotals::default(),
        devices: Vec::new(),
    })
}

fn totals(rows: &[JobDeviceRecord]) -> JobTotals {
    let mut t = JobTotals::default();
    for r in rows {
        if let Some(c) = &r.result {
            t.packets += c.packets;
            t.bytes += c.bytes;
            t.drops.kernel += c.drops.kernel;
            t.drops.interface += c.drops.interface;
            t.drops.spool += c.drops.spool;
        }
        t.stored_packets += r.stored.packets;
        t.stored_bytes += r.stored.bytes;
    }
    t
}

/// The job is `finished` once no device is pending or running, else `running`. It ended when
/// the last device that ran it did (or, if none ran it, when the last was given up).
fn settle(tx: &Transaction<'_>, org: OrgId, job: i64) -> Result<()> {
    let (open, last_end): (bool, Option<i64>) = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM job_devices WHERE org_id = ?1 AND job_id = ?2
                          AND state IN ('pending', 'running')),
                coalesce((SELECT max(ended_ns) FROM job_devices
                          WHERE org_id = ?1 AND job_id = ?2 AND started_ns IS NOT NULL),
                         (SELECT max(ended_ns) FROM job_devices
                          WHERE org_id = ?1 AND job_id = ?2))",
        params![org, job],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if open {
        tx.execute(
            "UPDATE jobs SET state = 'running', ended_ns = NULL WHERE org_id = ?1 AND id = ?2",
            params![org, job],
        )?;
    } else {
        tx.execute(
            "UPDATE jobs SET state = 'finished', ended_ns = coalesce(?3, ?4)
             WHERE org_id = ?1 AND id = ?2",
            params![org, job, last_end, now_ns()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_streams_are_plain_names() {
        assert_eq!(job_stream(7, Some("eth0")), "job-7-eth0");
        assert_eq!(job_stream(7, Some("br 0/x")), "job-7-br_0_x");
        assert_eq!(job_stream(7, None), "job-7-none");
        assert!(job_stream(1, Some(&"x".repeat(100))).len() <= 64);
    }
}
