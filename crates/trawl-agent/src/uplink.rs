//! The agent's side of the REST API (docs/protocol.md): enrolment, filter compilation, sending
//! batches, and the command channel of capture jobs (hello, the command poll, the job reports),
//! each answer sorted into what the agent must do next.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};
use trawl_bpf::Program;

use crate::http::{HttpError, Trust, blocking_client, error_detail};

/// One batch can take long on a slow link; the server answers only after an fsync.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The nice value of the threads that send (TLS, HTTP — reqwest's own runtime thread among
/// them): on a busy device the capture and the spool come first, and sending catches up from
/// the spool when there is time.
pub const SENDER_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority to `nice` (Linux: per thread, inherited by the threads
/// it starts). Best effort.
pub fn lower_priority(nice: libc::c_int) {
    // SAFETY: gettid and setpriority on the calling thread have no memory effects.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

/// A server as the agent talks to it.
pub struct ServerApi {
    base: String,
    client: Client,
    credential: Option<String>,
}

/// What became of a request that did not get the answer hoped for.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached, or answered 5xx: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The server refused the credential (unknown, used, or revoked): trying again is useless.
    #[error("refused: {0}")]
    Unauthorized(String),
    /// The server refused the request itself (4xx other than 401).
    #[error("refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("the server's answer is not what the protocol says: {0}")]
    Protocol(String),
}

/// The server's answer to a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchAnswer {
    /// Stored now, or stored before: the server has every batch up to `seq`.
    Has { seq: u64, duplicate: bool },
    /// The chain is broken: the last batch the server has of this epoch is `last`.
    Gap { last: u64 },
}

/// What enrolment gives the device.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    pub device: String,
    pub credential: String,
}

/// An interface as enrolment describes it.
#[derive(Clone, Debug, Serialize)]
pub struct InterfaceInfo {
    pub name: String,
    pub link_type: u32,
}

/// An interface as the command channel's hello describes it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeclaredInterface {
    pub name: String,
    /// `LINKTYPE_*` of a capture on it.
    pub link_type: u32,
    /// One of the interfaces the agent streams continuously (`-i`).
    pub capture: bool,
}

/// A command from the server (docs/protocol.md, "Commands and capture jobs"). Fields a kind
/// does not use are absent.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Command {
    pub id: i64,
    /// `start_job` or `stop_job` (others may come from a newer server: ignored).
    pub kind: String,
    pub job: u64,
    pub stream: Option<String>,
    pub interface: Option<String>,
    pub link_type: Option<u32>,
    pub snaplen: Option<u32>,
    pub program: Option<Program>,
    /// `kernel` or `userspace`.
    pub filter_mode: Option<String>,
    pub duration_ms: Option<u64>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// How the agent's part of a job ended, as it tells the server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobResult {
    pub started_ns: Option<u64>,
    pub ended_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub drops: JobDrops,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobDrops {
    pub kernel: u64,
    pub interface: u64,
    pub spool: u64,
}

/// A report or a hello is small: it is answered quickly or not at all.
const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

impl ServerApi {
    /// `base` is the server's URL (`https://host:8443`); `credential` the device's, once enrolled.
    pub fn new(base: &str, trust: &Trust, credential: Option<String>) -> Result<Self, HttpError> {
        // The client's runtime thread is started by the thread that builds it and inherits its
        // priority: build it on a thread of low priority.
        let trust = trust.clone();
        let client = std::thread::spawn(move || {
            lower_priority(SENDER_NICE);
            blocking_client(&trust, REQUEST_TIMEOUT)
        })
        .join()
        .map_err(|_| HttpError::Client("building the client panicked".into()))??;
        Ok(ServerApi {
            base: base.trim_end_matches('/').to_owned(),
            client,
            credential,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.credential {
            Some(c) => req.bearer_auth(c),
            None => req,
        }
    }

    /// Sends a request; a success answer's body is returned, anything else sorted.
    fn call(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let resp = self.authed(req).send().map_err(|e| {
            // reqwest's top-level message hides the cause (refused, TLS, timeout).
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail = format!("{detail}: {s}");
                source = s.source();
            }
            ApiError::Unavailable(detail)
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .map_err(|e| ApiError::Unavailable(format!("reading the answer: {e}")))?
            .to_vec();
        Ok((status, body))
    }

    fn sort(status: StatusCode, body: &[u8]) -> ApiError {
        let detail = error_detail(body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized(detail),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                ApiError::Unavailable(format!("{s}: {detail}"))
            }
            s => ApiError::Refused {
                status: s.as_u16(),
                detail,
            },
        }
    }

    /// Trades a one-time enrolment token for the device's own credential.
    pub fn enrol(
        &self,
        token: &str,
        name: &str,
        hostname: &str,
        interfaces: &[InterfaceInfo],
    ) -> Result<Enrolment, ApiError> {
        let body = serde_json::json!({
            "token": token, "name": name, "hostname": hostname, "interfaces": interfaces,
        });
        let (status, bytes) =
            self.call(self.client.post(self.url("/api/v1/enroll")).json(&body))?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(Self::sort(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol(e.to_string()))
    }

    /// Has the server compile `expression` for packets of `link_type`.
    pub fn compile(
        &self,
        expression: &str,
        link_type: u32,
        snaplen: u32,
    ) -> Result<Program, ApiError> {
        #[derive(Deserialize)]
        struct Compiled {
            program: Program,
        }
        let body = serde_json::json!({
            "expression": expression, "link_type": link_type, "snaplen": snaplen,
        });
        let (status, bytes) =
            self.call(self.client.post(self.url("/api/v1/compile")).json(&body))?;
        if status != StatusCode::OK {
            return Err(Self::sort(status, &bytes));
        }
        let compiled: Compiled =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol(e.to_string()))?;
        Ok(compiled.program)
    }

    /// Posts JSON to `path`; the answer's body if it is a success.
    fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Vec<u8>, ApiError> {
        let req = self.client.post(self.url(path)).timeout(timeout).json(body);
        let (status, bytes) = self.call(req)?;
        if !status.is_success() {
            return Err(Self::sort(status, &bytes));
        }
        Ok(bytes)
    }

    /// Starts (or restarts) the command channel: the interfaces this device can capture on,
    /// and the jobs it still has.
    pub fn hello(&self, interfaces: &[DeclaredInterface], jobs: &[u64]) -> Result<(), ApiError> {
        let body = serde_json::json!({ "interfaces": interfaces, "jobs": jobs });
        self.post_json("/api/v1/agent/hello", &body, REPORT_TIMEOUT)
            .map(|_| ())
    }

    /// The commands numbered above `after`; the server holds the request up to `wait` when
    /// there are none.
    pub fn poll_commands(&self, after: i64, wait: Duration) -> Result<Vec<Command>, ApiError> {
        #[derive(Deserialize)]
        struct Commands {
            commands: Vec<Command>,
        }
        let req = self
            .client
            .get(self.url(&format!(
                "/api/v1/agent/commands?after={after}&wait={}",
                wait.as_secs_f64()
            )))
            // The server answers after `wait` at the latest; more means the path is dead.
            .timeout(wait + Duration::from_secs(10));
        let (status, bytes) = self.call(req)?;
        if status != StatusCode::OK {
            return Err(Self::sort(status, &bytes));
        }
        let answer: Commands = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Protocol(format!("commands: {e}")))?;
        Ok(answer.commands)
    }

    /// Says the agent's part of `job` has started (its socket was opened at `started_ns`).
    pub fn job_started(&self, job: u64, started_ns: u64) -> Result<(), ApiError> {
        let body = serde_json::json!({ "started_ns": started_ns });
        self.post_json(
            &format!("/api/v1/agent/jobs/{job}/started"),
            &body,
            REPORT_TIMEOUT,
        )
        .map(|_| ())
    }

    /// Reports how the agent's part of `job` ended.
    pub fn job_result(&self, job: u64, result: &JobResult) -> Result<(), ApiError> {
        let body = serde_json::to_value(result).map_err(|e| ApiError::Protocol(e.to_string()))?;
        self.post_json(
            &format!("/api/v1/agent/jobs/{job}/result"),
            &body,
            REPORT_TIMEOUT,
        )
        .map(|_| ())
    }

    /// Sends one batch of `stream`.
    pub fn send_batch(&self, stream: &str, batch: bytes::Bytes) -> Result<BatchAnswer, ApiError> {
        #[derive(Deserialize)]
        struct Ack {
            seq: u64,
            status: String,
        }
        #[derive(Deserialize)]
        struct Gap {
            last: u64,
        }
        let req = self
            .client
            .post(self.url(&format!("/api/v1/streams/{stream}/batches")))
            .header(reqwest::header::CONTENT_TYPE, "application/x-trawl-batch")
            .body(batch);
        let (status, bytes) = self.call(req)?;
        match status {
            StatusCode::OK => {
                let ack: Ack = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Protocol(format!("acknowledgement: {e}")))?;
                Ok(BatchAnswer::Has {
                    seq: ack.seq,
                    duplicate: ack.status == "duplicate",
                })
            }
            StatusCode::CONFLICT => {
                let gap: Gap = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Protocol(format!("gap answer: {e}")))?;
                Ok(BatchAnswer::Gap { last: gap.last })
            }
            s => Err(Self::sort(s, &bytes)),
        }
    }
}
