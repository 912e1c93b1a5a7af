//! Capture jobs (docs/protocol.md, "Commands and capture jobs"): an operator asks for packets
//! matching an expression from chosen devices, with limits; the server compiles the expression
//! once per link type ([`filter`]), records the job ([`store`]), queues a `start_job` command
//! for each device it can reach and wakes the device's waiting command poll (`hub`, `agent`).
//! Each agent captures on a stream of its own (`job-ID-INTERFACE`) through the ordinary batch
//! ingest, and reports its result when its part has ended. The job's packets download as one
//! pcapng, merged in time order, one interface per device (`download_handler`).
//!
//! Routes for an organisation's admin: `POST /api/v1/jobs`, `GET /api/v1/jobs`,
//! `GET /api/v1/jobs/{id}`, `POST /api/v1/jobs/{id}/stop`, `GET /api/v1/jobs/{id}/pcapng`,
//! `GET /api/v1/jobs/{id}/watch` (the live merged view, [`watch`]).

pub(crate) mod agent;
pub mod filter;
pub(crate) mod hub;
pub mod store;
pub(crate) mod watch;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use trawl_pcap::Timestamp;

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::{DeviceId, OrgId};
use crate::retrieve::{Plan, RetrieveError, stream_plan};
use filter::{JobFilter, compile_for_job};
pub use hub::CommandHub;
pub use store::SCHEMA;
use store::{JobRecord, NewJob, NewJobDevice, RowState};

/// The link type of an AF_PACKET capture on an Ethernet or loopback interface.
const LINKTYPE_ETHERNET: u32 = 1;
/// libpcap's largest snap length, the default.
const MAX_SNAPLEN: u32 = 262_144;
/// At most this many devices in one job.
const MAX_DEVICES: usize = 256;
/// The longest duration a job may ask for: 30 days.
const MAX_DURATION_SECS: f64 = 30.0 * 86_400.0;

/// `POST /api/v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// Devices by id (a number or a string of digits) or by name.
    pub devices: Vec<DeviceKey>,
    /// A tcpdump expression (empty: every packet).
    #[serde(default, alias = "filter")]
    pub expression: String,
    /// The interface to capture on (default: each device's first capture interface).
    pub interface: Option<String>,
    /// Seconds (a fraction allowed).
    pub duration: Option<f64>,
    pub max_packets: Option<u64>,
    /// Most bytes of packet data (the sum of the captured lengths).
    pub max_bytes: Option<u64>,
    pub snaplen: Option<u32>,
    pub name: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DeviceKey {
    Id(u64),
    Name(String),
}

impl DeviceKey {
    fn text(&self) -> String {
        match self {
            DeviceKey::Id(n) => n.to_string(),
            DeviceKey::Name(s) => s.clone(),
        }
    }
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no job {id:?} in this organisation"),
    )
}

/// The request's settings, checked: everything but the devices.
#[derive(Debug)]
struct Settings {
    expression: String,
    interface: Option<String>,
    snaplen: u32,
    duration_ms: Option<u64>,
    max_packets: Option<u64>,
    max_bytes: Option<u64>,
    name: Option<String>,
    notes: Option<String>,
}

fn check_settings(req: &CreateJob) -> Result<Settings, ApiError> {
    if req.devices.is_empty() {
        return Err(bad("devices: name at least one device (by id or name)"));
    }
    if req.devices.len() > MAX_DEVICES {
        return Err(bad(format!(
            "devices: at most {MAX_DEVICES} devices in one job"
        )));
    }
    if req.expression.len() > 16 << 10 {
        return Err(bad("expression: longer than 16 KiB"));
    }
    let interface = match &req.interface {
        None => None,
        Some(i)
            if i.is_empty()
                || i.len() >= 16
                || i.contains('/')
                || i.contains(char::is_whitespace)
                || i == "."
                || i == ".." =>
        {
            return Err(bad(format!(
                "interface: {i:?} is not a Linux interface name (1 to 15 bytes, no '/' or \
                 spaces)"
            )));
        }
        Some(i) => Some(i.clone()),
    };
    let snaplen = req.snaplen.unwrap_or(MAX_SNAPLEN);
    if snaplen == 0 || snaplen > MAX_SNAPLEN {
        return Err(bad(format!(
            "snaplen: {snaplen} is not between 1 and {MAX_SNAPLEN}"
        )));
    }
    let duration_ms = match req.duration {
        None => None,
        Some(d) if !d.is_finite() || d <= 0.0 || d > MAX_DURATION_SECS => {
            return Err(bad(format!(
                "duration: {d} is not a number of seconds above 0 and at most {MAX_DURATION_SECS}"
            )));
        }
        Some(d) => Some(((d * 1000.0).round() as u64).max(1)),
    };
    if req.max_packets == Some(0) {
        return Err(bad("max_packets: at least 1 (leave it out for no limit)"));
    }
    if req.max_bytes == Some(0) {
        return Err(bad("max_bytes: at least 1 (leave it out for no limit)"));
    }
    let text = |field: &str, v: &Option<String>, max: usize| -> Result<Option<String>, ApiError> {
        match v {
            Some(s) if s.len() > max => Err(bad(format!("{field}: longer than {max} bytes"))),
            Some(s) if s.trim().is_empty() => Ok(None),
            other => Ok(other.clone()),
        }
    };
    Ok(Settings {
        expression: req.expression.trim().to_owned(),
        interface,
        snaplen,
        duration_ms,
        max_packets: req.max_packets,
        max_bytes: req.max_bytes,
        name: text("name", &req.name, 128)?,
        notes: text("notes", &req.notes, 4096)?,
    })
}

/// An interface a device declared (at enrolment, or in its command channel's hello).
#[derive(Debug, Deserialize)]
struct Declared {
    name: String,
    link_type: Option<u32>,
    #[serde(default)]
    capture: bool,
}

fn declared(interfaces_json: &str) -> Vec<Declared> {
    serde_json::from_str(interfaces_json).unwrap_or_default()
}

/// The interface a job runs on when it names none: the device's first capture interface
/// (`trawl agent -i`), else its first interface other than loopback.
fn default_interface(list: &[Declared]) -> Option<&Declared> {
    list.iter()
        .find(|d| d.capture)
        .or_else(|| list.iter().find(|d| d.name != "lo"))
        .or_else(|| list.first())
}

/// One device of the request before compilation: where it will capture, or why it will not.
struct Resolved {
    device: DeviceId,
    name: String,
    interface: Option<String>,
    link_type: Option<u32>,
    /// `Pending` (to start), `Offline` or `Failed`.
    state: RowState,
    reason: Option<String>,
}

/// Finds the request's devices in `org` and decides each one's interface.
fn resolve(
    st: &AppState,
    c: &crate::catalogue::Catalogue,
    org: OrgId,
    keys: &[DeviceKey],
    interface: Option<&str>,
) -> Result<Vec<Resolved>, ApiError> {
    let mut out: Vec<Resolved> = Vec::new();
    for key in keys {
        let key = key.text();
        let mut found = c.job_candidates(org, &key).map_err(ApiError::internal)?;
        let candidate = match found.len() {
            0 => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_device",
                    format!("devices: no device {key:?} in this organisation"),
                ));
            }
            1 => found.remove(0),
            _ => {
                let ids: Vec<String> = found.iter().map(|d| d.device.id.to_string()).collect();
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ambiguous_device",
                    format!(
                        "devices: {key:?} names {} devices (ids {}): give the id",
                        ids.len(),
                        ids.join(", ")
                    ),
                ));
            }
        };
        if candidate.revoked {
            return Err(bad(format!(
                "devices: device {key:?} (id {}) is revoked",
                candidate.device.id
            )));
        }
        if out.iter().any(|r| r.device == candidate.device.id) {
            continue;
        }
        let list = declared(&candidate.interfaces_json);
        let connected = st.hub.connected(candidate.device.id);
        let chosen = match interface {
            Some(name) => Some(name.to_owned()),
            None => default_interface(&list).map(|d| d.name.clone()),
        };
        let link_type = chosen.as_deref().and_then(|name| {
            list.iter()
                .find(|d| d.name == name)
                .map(|d| d.link_type.unwrap_or(LINKTYPE_ETHERNET))
        });
        let (state, reason) = if !connected {
            (
                RowState::Offline,
                Some("not connected: no command poll from its agent in the last 30 s".to_owned()),
            )
        } else if chosen.is_none() {
            (
                RowState::Failed,
                Some("the device declared no interface: name one (interface)".to_owned()),
            )
        } else if link_type.is_none() {
            let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
            (
                RowState::Failed,
                Some(format!(
                    "the device has no interface {:?} it can capture on (it has: {})",
                    chosen.as_deref().unwrap_or(""),
                    names.join(", ")
                )),
            )
        } else {
            (RowState::Pending, None)
        };
        out.push(Resolved {
            device: candidate.device.id,
            name: candidate.device.name,
            interface: chosen,
            link_type,
            state,
            reason,
        });
    }
    Ok(out)
}

/// `POST /api/v1/jobs`: `201` with the job and each device's state.
pub(crate) async fn create_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateJob>, JsonRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let Json(req) = body.map_err(|e| bad(e.body_text()))?;
    let settings = check_settings(&req)?;

    let resolved = {
        let st2 = st.clone();
        let interface = settings.interface.clone();
        let catalogue = st.catalogue.clone();
        tokio::task::spawn_blocking(move || {
            let c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
            resolve(&st2, &c, org, &req.devices, interface.as_deref())
        })
        .await
        .map_err(ApiError::internal)??
    };

    // Once per link type among the devices that will run it; for Ethernet when none will, so
    // that a bad expression is always refused.
    let mut link_types: Vec<u32> = resolved
        .iter()
        .filter(|r| r.state == RowState::Pending)
        .filter_map(|r| r.link_type)
        .collect();
    link_types.sort_unstable();
    link_types.dedup();
    if link_types.is_empty() {
        link_types.push(LINKTYPE_ETHERNET);
    }
    let (expression, snaplen) = (settings.expression.clone(), settings.snaplen);
    let filters: BTreeMap<u32, JobFilter> = tokio::task::spawn_blocking(move || {
        link_types
            .into_iter()
            .map(|lt| compile_for_job(&expression, lt, snaplen).map(|f| (lt, f)))
            .collect::<Result<BTreeMap<_, _>, RetrieveError>>()
    })
    .await
    .map_err(ApiError::internal)??;

    let mut to_wake = Vec::new();
    let mut offline = Vec::new();
    let devices = resolved
        .into_iter()
        .map(|r| {
            if r.state == RowState::Pending {
                to_wake.push(r.device);
            }
            if r.state == RowState::Offline {
                offline.push(r.name.clone());
            }
            NewJobDevice {
                device: r.device,
                // Only a device that will run it gets a program.
                filter: r
                    .link_type
                    .filter(|_| r.state == RowState::Pending)
                    .and_then(|lt| filters.get(&lt).cloned()),
                interface: r.interface,
                link_type: r.link_type,
                state: r.state,
                reason: r.reason,
            }
        })
        .collect();
    let job = NewJob {
        name: settings.name,
        notes: settings.notes,
        expression: settings.expression,
        interface: settings.interface,
        snaplen: settings.snaplen,
        duration_ms: settings.duration_ms,
        max_packets: settings.max_packets,
        max_bytes: settings.max_bytes,
        devices,
    };
    let id = st.db(move |c| c.create_job(org, &job)).await?;
    for device in to_wake {
        st.hub.ring(device);
    }
    tracing::info!(
        "job {id} of organisation {org} created; offline: {}",
        if offline.is_empty() {
            "none".to_owned()
        } else {
            offline.join(", ")
        }
    );
    let record = fetch(&st, org, id, false).await?;
    let mut answer = serde_json::to_value(&record).map_err(ApiError::internal)?;
    answer["offline"] = json!(offline);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn fetch(st: &AppState, org: OrgId, id: i64, programs: bool) -> Result<JobRecord, ApiError> {
    st.db(move |c| c.job(org, id, programs))
        .await?
        .ok_or_else(|| not_found(&id.to_string()))
}

/// A job id from the path; anything else is a job that does not exist.
fn job_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| not_found(text))
}

/// `GET /api/v1/jobs/{id}`: the job, with each device's program.
pub(crate) async fn show_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let id = job_id(&id)?;
    Ok(Json(fetch(&st, org, id, true).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

/// `GET /api/v1/jobs[?limit=N]`: newest first (default 100, at most 1000).
pub(crate) async fn list_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let jobs = st.db(move |c| c.jobs(org, limit)).await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

/// `POST /api/v1/jobs/{id}/stop`: devices not yet started end now, the others are told to stop.
pub(crate) async fn stop_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let job = job_id(&id)?;
    let devices = st
        .db(move |c| c.stop_job(org, job))
        .await?
        .ok_or_else(|| not_found(&id))?;
    for device in devices {
        st.hub.ring(device);
    }
    Ok(Json(fetch(&st, org, job, false).await?).into_response())
}

/// `GET /api/v1/jobs/{id}/pcapng`: every device's packets of the job, merged in time order, one
/// interface block per device and interface named `DEVICE/INTERFACE`. What is stored so far, if
/// the job is still running.
pub(crate) async fn download_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let job = job_id(&id)?;
    let plan = job_plan(&st, org, &id, None).await?;
    Ok(stream_plan(
        plan,
        format!("download of job {job} of organisation {org}"),
    ))
}

/// The merge of a job's streams (all of their packets, filtered by `filter` if given), as
/// its download writes it; `404` if `org` has no such job.
pub(crate) async fn job_plan(
    st: &AppState,
    org: OrgId,
    id: &str,
    filter: Option<String>,
) -> Result<Plan, ApiError> {
    let job = job_id(id)?;
    let record = fetch(st, org, job, false).await?;
    let (data_dir, catalogue) = (st.ingest.data_dir.clone(), st.catalogue.clone());
    tokio::task::spawn_blocking(move || -> Result<Plan, ApiError> {
        let listed = {
            let c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
            c.job_segments(org, job).map_err(ApiError::internal)?
        };
        let listed = listed.ok_or_else(|| not_found(&job.to_string()))?;
        let mut devices = Vec::with_capacity(listed.len());
        let mut segments = Vec::with_capacity(listed.len());
        for (n, (device, list)) in listed.into_iter().enumerate() {
            devices.push(device);
            segments.push((n, list));
        }
        let comment = describe(&record);
        Ok(Plan::of_segments(
            &data_dir,
            devices,
            segments,
            (Timestamp::default(), Timestamp::new(u64::MAX, 0)),
            filter.as_deref(),
            comment,
            format!("trawl-job-{job}.pcapng"),
        )?)
    })
    .await
    .map_err(ApiError::internal)?
}

/// The section comment of a job's download.
fn describe(job: &JobRecord) -> String {
    let devices: Vec<String> = job
        .devices
        .iter()
        .map(|d| {
            format!(
                "{}/{} {}",
                d.name,
                d.interface.as_deref().unwrap_or("-"),
                d.state
            )
        })
        .collect();
    let mut s = format!(
        "trawl capture job {}: filter {:?}; devices {}",
        job.id,
        job.expression,
        devices.join(", ")
    );
    if let Some(name) = &job.name {
        s.push_str(&format!("; name {name:?}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> Result<Settings, String> {
        let req: CreateJob = serde_json::from_value(json).map_err(|e| e.to_string())?;
        check_settings(&req).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn settings_are_checked_and_named() {
        let ok = request(
            json!({"devices": ["a", 7], "filter": " icmp ", "duration": 0.25,
                                "max_packets": 100, "snaplen": 96}),
        )
        .unwrap();
        assert_eq!(ok.expression, "icmp");
        assert_eq!(ok.duration_ms, Some(250));
        assert_eq!(ok.snaplen, 96);
        for (body, field) in [
            (json!({"devices": []}), "devices"),
            (json!({"devices": ["a"], "duration": 0}), "duration"),
            (json!({"devices": ["a"], "duration": -1}), "duration"),
            (json!({"devices": ["a"], "max_packets": 0}), "max_packets"),
            (json!({"devices": ["a"], "max_bytes": 0}), "max_bytes"),
            (json!({"devices": ["a"], "snaplen": 0}), "snaplen"),
            (json!({"devices": ["a"], "snaplen": 300000}), "snaplen"),
            (json!({"devices": ["a"], "interface": "a/b"}), "interface"),
            (
                json!({"devices": ["a"], "interface": "0123456789abcdef"}),
                "interface",
            ),
        ] {
            let e = request(body.clone()).unwrap_err();
            assert!(e.contains(field), "{body}: {e}");
        }
        assert!(request(json!({"devices": ["a"], "colour": "red"})).is_err());
        assert!(request(json!({"devices": ["a"], "max_packets": -5})).is_err());
    }

    #[test]
    fn the_default_interface_is_the_first_capture_interface() {
        let list = declared(
            r#"[{"name":"lo","link_type":1},{"name":"eth1","link_type":1},
                {"name":"eth0","link_type":1,"capture":true}]"#,
        );
        assert_eq!(default_interface(&list).unwrap().name, "eth0");
        let list = declared(r#"[{"name":"lo","link_type":1},{"name":"eth1","link_type":1}]"#);
        assert_eq!(default_interface(&list).unwrap().name, "eth1");
        assert!(default_interface(&declared("not json")).is_none());
    }
}
