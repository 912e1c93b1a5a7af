//! The REST API (docs/protocol.md): routes, credentials, and errors as JSON.
//!
//! Every error answer is `{"error": kind, "detail": what was wrong}`; a gap also carries
//! `"last"`. Handlers are thin: they check the credential, read the request, and hand the work
//! to the catalogue or to [`Ingest`] on a blocking thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use trawl_wire::WireError;

use crate::auth::{Auth, Role, handlers as auth_api};
use crate::catalogue::{self, Catalogue, DeviceAuth, DeviceId};
use crate::fanout::{Fanout, StoredBatch};
use crate::ingest::{Ingest, IngestError, Outcome, StreamSlot};
use crate::jobs::{self, CommandHub};
use crate::metrics::{BatchOutcome, StorageFailure};
use crate::retention::Retention;
use crate::shares::{self, ShareKey};
use crate::{analysis, annotations, captures, devices, metrics, retention, upload};

/// A request body larger than this is not even read to the end: the connection is dropped.
/// Up to it, an oversized batch is read and thrown away so that the client gets its `413`.
const DRAIN_FACTOR: usize = 4;

/// Each stream's slot, locked while one of its batches is handled.
pub(crate) type Slots = Mutex<HashMap<(DeviceId, String), Arc<tokio::sync::Mutex<StreamSlot>>>>;

#[derive(Clone)]
pub(crate) struct AppState {
    pub catalogue: Arc<Mutex<Catalogue>>,
    pub ingest: Arc<Ingest>,
    pub slots: Arc<Slots>,
    pub max_batch: usize,
    pub retention: Arc<Retention>,
    /// The devices' command polls.
    pub hub: Arc<CommandHub>,
    /// Stored batches, offered to listeners.
    pub fanout: Arc<Fanout>,
    /// `https` or `http`: how clients reach the server, for URLs in answers.
    pub scheme: &'static str,
    /// Sessions, login throttling, password hashing.
    pub auth: Arc<Auth>,
    /// The key share links are signed with.
    pub share_key: Arc<ShareKey>,
}

/// Declares the API's routes once: [`ROUTES`] lists every (method, path) and `api_routes` adds
/// them to a router, from the same lines, so the list cannot drift from what is served. The
/// OpenAPI description (`openapi.json`) is held equal to the list by `tests/openapi.rs`.
macro_rules! routes {
    ($($path:literal => { $($method:ident($handler:expr)),+ $(,)? }),* $(,)?) => {
        /// Every (method, path) of the API, as the router serves them.
        pub const ROUTES: &[(&str, &str)] = &[$($((method_name!($method), $path)),+),*];

        fn api_routes(router: Router<AppState>) -> Router<AppState> {
            router$(.route($path, MethodRouter::new()$(.$method($handler))+))*
        }
    };
}

macro_rules! method_name {
    (get) => {
        "GET"
    };
    (post) => {
        "POST"
    };
    (put) => {
        "PUT"
    };
    (patch) => {
        "PATCH"
    };
    (delete) => {
        "DELETE"
    };
}

routes! {
    "/api/v1/health" => { get(health) },
    "/api/v1/openapi.json" => { get(openapi) },
    "/api/v1/enrollment-tokens" => { post(create_enrolment_token) },
    "/api/v1/enroll" => { post(enrol) },
    "/api/v1/streams/{stream}/batches" => { post(post_batch) },
    "/api/v1/devices" => { get(devices::list) },
    "/api/v1/retention" => {
        get(retention::get_policy),
        put(retention::put_policy),
        delete(retention::delete_policy),
    },
    "/metrics" => { get(metrics::scrape) },
    "/api/v1/devices/{id}/revoke" => { post(revoke_device) },
    "/api/v1/compile" => { post(crate::retrieve::compile_handler) },
    "/api/v1/packets" => { get(crate::retrieve::packets_handler) },
    "/api/v1/flows" => { get(analysis::flows_handler) },
    "/api/v1/report" => {
        get(analysis::report_handler),
        post(analysis::report_post_handler),
    },
    "/api/v1/profile" => { get(analysis::profile_handler) },
    "/api/v1/jobs/{id}/flows" => { get(analysis::job_flows) },
    "/api/v1/jobs/{id}/report" => {
        get(analysis::job_report),
        post(analysis::job_report_post),
    },
    "/api/v1/jobs/{id}/profile" => { get(analysis::job_profile) },
    "/api/v1/captures/{id}/flows" => { get(analysis::capture_flows) },
    "/api/v1/captures/{id}/report" => {
        get(analysis::capture_report),
        post(analysis::capture_report_post),
    },
    "/api/v1/captures/{id}/profile" => { get(analysis::capture_profile) },
    "/api/v1/jobs" => { get(jobs::list_handler), post(jobs::create_handler) },
    "/api/v1/jobs/{id}" => { get(jobs::show_handler) },
    "/api/v1/jobs/{id}/stop" => { post(jobs::stop_handler) },
    "/api/v1/jobs/{id}/pcapng" => { get(jobs::download_handler) },
    "/api/v1/jobs/{id}/watch" => { get(jobs::watch::watch_handler) },
    "/api/v1/agent/hello" => { post(jobs::agent::hello_handler) },
    "/api/v1/agent/commands" => { get(jobs::agent::commands_handler) },
    "/api/v1/agent/jobs/{id}/started" => { post(jobs::agent::started_handler) },
    "/api/v1/agent/jobs/{id}/result" => { post(jobs::agent::result_handler) },
    "/api/v1/captures" => {
        get(captures::list),
        post(upload::create),
        put(upload::create),
    },
    "/api/v1/upload" => { put(upload::upload), post(upload::upload) },
    "/api/v1/upload/{filename}" => {
        put(upload::upload_named),
        post(upload::upload_named),
    },
    "/api/v1/captures/{id}" => { get(captures::show), delete(captures::delete) },
    "/api/v1/captures/{id}/pcapng" => { get(captures::download) },
    "/api/v1/captures/{id}/tags" => { post(captures::add_tags) },
    "/api/v1/captures/{id}/tags/{tag}" => { delete(captures::remove_tag) },
    "/api/v1/captures/{id}/notes" => { put(captures::put_notes) },
    "/api/v1/captures/{id}/annotations" => { get(annotations::list) },
    "/api/v1/captures/{id}/annotations/{packet}" => {
        put(annotations::put),
        delete(annotations::delete),
    },
    "/api/v1/login" => { post(auth_api::login) },
    "/api/v1/logout" => { post(auth_api::logout) },
    "/api/v1/me" => { get(auth_api::me) },
    "/api/v1/users" => { get(auth_api::list_users), post(auth_api::create_user) },
    "/api/v1/users/{id}" => {
        patch(auth_api::change_user),
        delete(auth_api::delete_user),
    },
    "/api/v1/tokens" => { get(auth_api::list_tokens), post(auth_api::create_token) },
    "/api/v1/tokens/{id}" => { delete(auth_api::delete_token) },
    "/api/v1/captures/{id}/shares" => { get(shares::list), post(shares::create) },
    "/api/v1/shares/{id}" => { delete(shares::revoke) },
    "/api/v1/shared/{token}" => { get(shares::shared) },
    "/api/v1/shared/{token}/pcapng" => { get(shares::download) },
}

pub(crate) fn router(state: AppState) -> Router {
    api_routes(Router::new())
        .merge(crate::web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn(crate::auth::csrf))
        .with_state(state)
}

/// The OpenAPI 3.1 description of the API, as served by `GET /api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    detail: String,
    /// More fields of the answer (`last` of a gap, `offset` of a bad capture…).
    extra: Vec<(&'static str, serde_json::Value)>,
    /// A `WWW-Authenticate` challenge to send with a `401`.
    challenge: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            extra: Vec::new(),
            challenge: None,
        }
    }

    /// The answer with one more field.
    pub(crate) fn with(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// The answer with a `WWW-Authenticate` challenge (for clients that send credentials only
    /// when asked, as some TR-069 devices do).
    pub(crate) fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// What was wrong, as the answer's `detail` says it.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    pub(crate) fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.kind, "detail": self.detail });
        for (key, value) in self.extra {
            body[key] = value;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::BadBatch(WireError::TooLarge(_)) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            IngestError::BadBatch(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_batch", e.to_string())
            }
            // Logged once per episode by the metrics (see `metrics`).
            _ if e.storage_failure() == Some(StorageFailure::NoSpace) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                format!(
                    "no space left on the server's disk: the batch was not stored, send it \
                     again later ({e})"
                ),
            ),
            _ if e.storage_failure().is_some() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                format!("the batch could not be stored, send it again later: {e}"),
            ),
            IngestError::Store(e) if e.kind() == trawl_store::ErrorKind::InvalidInput => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_batch", e.to_string())
            }
            IngestError::Catalogue(e) => ApiError::internal(e),
            IngestError::Store(e) => ApiError::internal(e),
            IngestError::Io { .. } => ApiError::internal(e),
        }
    }
}

impl AppState {
    /// Runs `f` on the catalogue on a blocking thread.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Catalogue) -> catalogue::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let catalogue = self.catalogue.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut c)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
    }

    /// The device whose credential the request carries; a revoked device is refused.
    pub(crate) async fn device(&self, headers: &HeaderMap) -> Result<DeviceAuth, ApiError> {
        let credential = bearer(headers)?;
        let device = self
            .db(move |c| c.device_by_credential(&credential))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown device credential"))?;
        if device.revoked {
            return Err(ApiError::unauthorized(
                "this device's credential was revoked",
            ));
        }
        self.ingest.metrics.device_seen(device.id);
        Ok(device)
    }

    fn slot(&self, device: DeviceId, stream: &str) -> Arc<tokio::sync::Mutex<StreamSlot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((device, stream.to_owned()))
            .or_default()
            .clone()
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer <token> header is needed"))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn create_enrolment_token(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let token = st.db(move |c| c.create_enrolment_token(org)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))).into_response())
}

#[derive(Deserialize)]
struct EnrolRequest {
    token: String,
    name: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    interfaces: Vec<EnrolInterface>,
}

#[derive(Deserialize, serde::Serialize)]
struct EnrolInterface {
    name: String,
    link_type: u32,
}

async fn enrol(
    State(st): State<AppState>,
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    if req.name.is_empty() || req.name.len() > 128 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "name: a device name of 1 to 128 bytes is needed",
        ));
    }
    let interfaces = serde_json::to_string(&req.interfaces).map_err(ApiError::internal)?;
    let enrolled = st
        .db(move |c| c.enrol(&req.token, &req.name, &req.hostname, &interfaces))
        .await?;
    let Some((device, credential)) = enrolled else {
        return Err(ApiError::unauthorized(
            "unknown or already used enrolment token",
        ));
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "device": device.to_string(), "credential": credential })),
    )
        .into_response())
}

/// A stream name becomes part of file and catalogue names: keep it plain.
fn check_stream_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_stream",
            "a stream name is 1 to 64 characters of letters, digits and . _ - : @",
        ))
    }
}

/// Reads a request body of at most `limit` bytes. A larger body is read on (and discarded) up
/// to `DRAIN_FACTOR × limit` so the client, still sending, receives the `413` cleanly.
async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let too_large = |n: usize| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the batch is {n} bytes or more, more than the limit of {limit}"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared
        && n > limit * DRAIN_FACTOR
    {
        return Err(too_large(n));
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total <= limit {
            buf.extend_from_slice(&data);
        } else if total > limit * DRAIN_FACTOR {
            break;
        } else if !buf.is_empty() {
            buf = Vec::new();
        }
    }
    if total > limit {
        return Err(too_large(total));
    }
    Ok(buf)
}

async fn post_batch(
    State(st): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let outcome = store_batch(&st, stream, headers, body).await;
    st.ingest.metrics.batch(match &outcome {
        Ok(Outcome::Stored { .. }) => BatchOutcome::Stored,
        Ok(Outcome::Duplicate { .. }) => BatchOutcome::Duplicate,
        Ok(Outcome::Gap { .. }) => BatchOutcome::Gap,
        Err(e) => BatchOutcome::of_error(e.kind),
    });
    match outcome? {
        Outcome::Stored { seq } => {
            Ok(Json(json!({ "seq": seq, "status": "stored" })).into_response())
        }
        Outcome::Duplicate { seq } => {
            Ok(Json(json!({ "seq": seq, "status": "duplicate" })).into_response())
        }
        Outcome::Gap { last } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "gap",
            format!(
                "the last batch stored in this epoch is {last}: send from {} on",
                last + 1
            ),
        )
        .with("last", last)),
    }
}

/// Checks and stores one batch: what [`post_batch`] answers and counts.
async fn store_batch(
    st: &AppState,
    stream: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Outcome, ApiError> {
    let device = st.device(&headers).await?;
    check_stream_name(&stream)?;
    let bytes = axum::body::Bytes::from(read_body(&headers, body, st.max_batch).await?);

    // One batch of a stream at a time, from the judgement to the catalogue commit.
    let mut slot = st.slot(device.id, &stream).lock_owned().await;
    let ingest = st.ingest.clone();
    let (batch, name) = (bytes.clone(), stream.clone());
    let (org, device_id) = (device.org, device.id);
    let outcome =
        tokio::task::spawn_blocking(move || ingest.accept(&mut slot, &device, &stream, &bytes))
            .await
            .map_err(ApiError::internal)??;
    if let Outcome::Stored { seq } = outcome {
        st.fanout.publish(|| StoredBatch {
            org,
            device: device_id,
            stream: name,
            seq,
            batch,
        });
    }
    Ok(outcome)
}

async fn revoke_device(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Admin).await?.org;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no device {id}"),
        )
    };
    let Ok(device) = id.parse::<DeviceId>() else {
        return Err(not_found());
    };
    // Another organisation's device is answered exactly like a device that does not exist.
    if !st.db(move |c| c.revoke(org, device)).await? {
        return Err(not_found());
    }
    Ok(Json(json!({ "device": id, "revoked": true })).into_response())
}
