//! The agent's side of jobs: the command channel and the reports.
//!
//! - `POST /api/v1/agent/hello`: the agent's interfaces (and link types), and the jobs it still
//!   has; sent when its command channel starts and after every outage.
//! - `GET /api/v1/agent/commands?after=N[&wait=S]`: a long poll. Answered at once with the
//!   device's commands numbered above `N` that still mean something, else held until one is
//!   queued (the device's bell rings) or `S` seconds (at most 25) pass, then `[]`. While a poll
//!   is open, and for 30 s after one is answered, the device counts as reachable for jobs.
//! - `POST /api/v1/agent/jobs/{id}/started` and `…/result`: the agent's part of a job began,
//!   and how it ended.
//!
//! All with the device's credential.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::store::{AgentResult, Counts};
use crate::api::{ApiError, AppState};
use crate::catalogue::{Drops, now_ns};

/// The longest a command poll is held before it is answered with no command.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(25);
/// Commands in one answer, at most.
const MAX_COMMANDS: u32 = 100;

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct HelloInterface {
    name: String,
    /// `LINKTYPE_*` of a capture on it; absent if the agent cannot capture there.
    link_type: Option<u32>,
    /// One of the interfaces the agent streams continuously (`trawl agent -i`): the default of
    /// a job that names none.
    #[serde(default)]
    capture: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hello {
    #[serde(default)]
    interfaces: Vec<HelloInterface>,
    /// Jobs the agent still runs, or still has to report.
    #[serde(default)]
    jobs: Vec<i64>,
}

/// `POST /api/v1/agent/hello`.
pub(crate) async fn hello_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Hello>, JsonRejection>,
) -> Result<Response, ApiError> {
    let device = st.device(&headers).await?;
    let Json(hello) = body.map_err(|e| bad(e.body_text()))?;
    if hello.interfaces.len() > 4096 || hello.jobs.len() > 4096 {
        return Err(bad("at most 4096 interfaces and 4096 jobs"));
    }
    if let Some(i) = hello
        .interfaces
        .iter()
        .find(|i| i.name.is_empty() || i.name.len() > 64)
    {
        return Err(bad(format!(
            "interfaces: {:?} is not an interface name (1 to 64 bytes)",
            i.name
        )));
    }
    let interfaces = serde_json::to_string(&hello.interfaces).map_err(ApiError::internal)?;
    let (org, id) = (device.org, device.id);
    st.db(move |c| c.agent_hello(org, id, &interfaces, &hello.jobs))
        .await?;
    Ok(Json(json!({
        "server_time_ns": now_ns(),
        "poll_wait_secs": MAX_POLL_WAIT.as_secs(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollQuery {
    #[serde(default)]
    after: i64,
    /// Seconds to hold the poll open without a command (at most 25; default 25).
    wait: Option<f64>,
}

/// `GET /api/v1/agent/commands`.
pub(crate) async fn commands_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let device = st.device(&headers).await?;
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let wait = match q.wait {
        None => MAX_POLL_WAIT,
        Some(w) if w.is_finite() && w >= 0.0 => Duration::from_secs_f64(w).min(MAX_POLL_WAIT),
        Some(w) => return Err(bad(format!("wait: {w} is not a number of seconds"))),
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut guard = st.hub.poll_opened(device.id);
    let mut bell = st.hub.subscribe(device.id);
    let mut closing = st.hub.closing();
    let (org, id, after) = (device.org, device.id, q.after.max(0));
    loop {
        // Marked seen before the look, so a command queued after it rings again.
        bell.borrow_and_update();
        let commands = st
            .db(move |c| c.commands_for(org, id, after, MAX_COMMANDS))
            .await?;
        let now = tokio::time::Instant::now();
        if !commands.is_empty() || now >= deadline || *closing.borrow_and_update() {
            guard.answered();
            return Ok(Json(json!({ "commands": commands })).into_response());
        }
        tokio::select! {
            _ = bell.changed() => {}
            _ = closing.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Started {
    started_ns: u64,
}

/// `POST /api/v1/agent/jobs/{id}/started`.
pub(crate) async fn started_handler(
    State(st): State<AppState>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Started>, JsonRejection>,
) -> Result<Response, ApiError> {
    let device = st.device(&headers).await?;
    let Json(started) = body.map_err(|e| bad(e.body_text()))?;
    let job_id = super::job_id(&job)?;
    let (org, id) = (device.org, device.id);
    if !st
        .db(move |c| c.job_started(org, id, job_id, started.started_ns))
        .await?
    {
        return Err(super::not_found(&job));
    }
    Ok(Json(json!({ "job": job_id, "state": "running" })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropsBody {
    #[serde(default)]
    kernel: u64,
    #[serde(default)]
    interface: u64,
    #[serde(default)]
    spool: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultBody {
    started_ns: Option<u64>,
    ended_ns: u64,
    #[serde(default)]
    packets: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    drops: DropsBody,
    /// `max_packets`, `max_bytes`, `duration`, `stopped`, `agent_stopped`, or `error: …`.
    reason: String,
}

/// `POST /api/v1/agent/jobs/{id}/result`.
pub(crate) async fn result_handler(
    State(st): State<AppState>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ResultBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let device = st.device(&headers).await?;
    let Json(r) = body.map_err(|e| bad(e.body_text()))?;
    let job_id = super::job_id(&job)?;
    let mut reason = r.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(bad("reason: say why the job ended"));
    }
    if reason.len() > 1024 {
        let mut cut = 1024;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let result = AgentResult {
        started_ns: r.started_ns,
        ended_ns: r.ended_ns,
        counts: Counts {
            packets: r.packets,
            bytes: r.bytes,
            drops: Drops {
                kernel: r.drops.kernel,
                interface: r.drops.interface,
                spool: r.drops.spool,
            },
        },
        failed: reason.starts_with("error"),
        reason,
    };
    let (org, id) = (device.org, device.id);
    if !st
        .db(move |c| c.job_result(org, id, job_id, &result))
        .await?
    {
        return Err(super::not_found(&job));
    }
    Ok(Json(json!({ "job": job_id, "recorded": true })).into_response())
}
