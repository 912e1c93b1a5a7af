//! Who is asking, and what they may do: roles, principals, sessions, API tokens and passwords
//! (docs/protocol.md, "Users, roles, sessions and share links").
//!
//! Every handler starts with [`AppState::auth`]`(&headers, minimum role)`, which finds the
//! request's credential, in this order:
//! 1. `Authorization: Bearer TOKEN`: an organisation's admin token (role admin, no user), or a
//!    user's API token (its role, never above the user's present role; a disabled user's tokens
//!    are unknown);
//! 2. the cookie `trawl_session` that `POST /api/v1/login` sets (the user's present role);
//!
//! and answers `401` when there is none or it is unknown, `403 forbidden` when its role is
//! below the minimum. Objects of other organisations are the handlers' business: they look
//! everything up by the principal's organisation, so those are `404`.
//!
//! A request authenticated by the session cookie with an unsafe method must carry
//! `X-Requested-With: trawl` ([`csrf`], a layer over every route): a page of another site can make
//! a browser send the cookie, but not that header without the server's consent (CORS).
//!
//! The pieces: `password` (Argon2id), `store` (the catalogue's users, sessions and tokens),
//! `handlers` (login, logout, me, users, tokens).

pub(crate) mod handlers;
pub mod password;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};

use crate::api::{ApiError, AppState};
use crate::catalogue::OrgId;
use crate::clock::Clock;

pub(crate) use store::SCHEMA;
pub use store::{ApiTokenRecord, User, UserChange};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "trawl_session";
/// The header (and its one value) that unsafe requests authenticated by the cookie carry.
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "trawl";

/// What a principal may do in its organisation; each role may do all that the one before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything of the organisation.
    Viewer,
    /// Also starts and stops jobs, uploads, tags, writes notes and annotations, shares.
    Operator,
    /// Also devices, enrolment, retention, deleting captures, users and every token.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| format!("unknown role {s:?} (known: viewer, operator, admin)"))
    }
}

/// A role from a request body: `field` names it in the error.
pub(crate) fn role_field(field: &str, text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        bad_request(format!(
            "{field}: unknown role {text:?} (known: viewer, operator, admin)"
        ))
    })
}

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Token,
    Session,
}

/// A user, as credentials name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub name: String,
}

/// Who a request acts as.
#[derive(Clone, Debug)]
pub struct Principal {
    pub org: OrgId,
    pub role: Role,
    /// `None` for an organisation admin token (and API tokens it made).
    pub user: Option<UserRef>,
    pub via: Via,
    /// The session's or API token's row, to end it (logout) or to tell one's own.
    pub credential_id: Option<i64>,
}

impl Principal {
    /// `403 forbidden` unless the principal's role is at least `min`.
    pub(crate) fn require(&self, min: Role) -> Result<(), ApiError> {
        if self.role >= min {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the {min} role; this credential has {}",
                self.role
            ),
        ))
    }

    /// The user's name, or what made the request when there is none.
    pub(crate) fn who(&self) -> String {
        match &self.user {
            Some(u) => u.name.clone(),
            None => "admin token".to_owned(),
        }
    }

    pub(crate) fn user_id(&self) -> Option<i64> {
        self.user.as_ref().map(|u| u.id)
    }
}

/// How long a session lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Since the session's last use.
    pub idle: Duration,
    /// Since the login, however often it is used.
    pub max: Duration,
}

impl Default for SessionLimits {
    /// 12 hours idle, 7 days at most.
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(12 * 3600),
            max: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl SessionLimits {
    /// How stale a session's or token's `last_used` may be before a use writes it again: a write
    /// per request would be an fsync per request.
    pub(crate) fn touch_every(&self) -> Duration {
        (self.idle / 10).min(Duration::from_secs(60))
    }
}

/// The server's authentication state.
pub(crate) struct Auth {
    pub sessions: SessionLimits,
    pub clock: Clock,
    pub throttle: Throttle,
    /// Argon2 hashes computed at once (see `password`).
    pub hashing: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(sessions: SessionLimits, clock: Clock) -> Auth {
        Auth {
            sessions,
            clock,
            throttle: Throttle::default(),
            hashing: tokio::sync::Semaphore::new(password::CONCURRENT),
        }
    }
}

impl AppState {
    /// The request's principal, if its role is at least `min`: `401` without a known
    /// credential, `403` with a lower role.
    pub(crate) async fn auth(&self, headers: &HeaderMap, min: Role) -> Result<Principal, ApiError> {
        let principal = self.principal(headers).await?;
        principal.require(min)?;
        Ok(principal)
    }

    /// The request's principal, whatever its role.
    pub(crate) async fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if headers.contains_key(header::AUTHORIZATION) {
            let token = crate::api::bearer(headers)?;
            return self
                .principal_by_token(token)
                .await?
                .ok_or_else(|| ApiError::unauthorized("unknown token"));
        }
        if let Some(cookie) = session_cookie(headers) {
            let (now, limits) = (self.auth.clock.now_ns(), self.auth.sessions);
            return self
                .db(move |c| c.session(&cookie, now, limits))
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized("the session has expired or ended: log in again")
                });
        }
        Err(ApiError::unauthorized(
            "log in (POST /api/v1/login) or send Authorization: Bearer <token>",
        ))
    }

    /// The principal an admin token or API token acts as; `None` if it is neither.
    pub(crate) async fn principal_by_token(
        &self,
        token: String,
    ) -> Result<Option<Principal>, ApiError> {
        let (now, every) = (self.auth.clock.now_ns(), self.auth.sessions.touch_every());
        self.db(move |c| c.principal_by_token(&token, now, every))
            .await
    }

    /// Runs `f` (an Argon2 hash or verification) on a blocking thread, at most
    /// `password::CONCURRENT` at once.
    pub(crate) async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .auth
            .hashing
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(ApiError::internal)
    }
}

/// The value of the `trawl_session` cookie, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Routes anyone may call: a stale cookie must not stand in their way.
fn is_public(path: &str) -> bool {
    matches!(path, "/api/v1/login" | "/api/v1/enroll" | "/api/v1/health")
        || path.starts_with("/api/v1/shared/")
}

/// The most of a refused request's body that is read before the `403 csrf` answer.
const CSRF_DRAIN: usize = 1 << 20;

/// The CSRF rule, over every route: an unsafe request that would be authenticated by the session
/// cookie (it has the cookie and no `Authorization` header) and lacks `X-Requested-With: trawl`
/// is refused with `403 {"error":"csrf"}` before its handler runs.
pub(crate) async fn csrf(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let headers = request.headers();
    let by_cookie =
        !headers.contains_key(header::AUTHORIZATION) && session_cookie(headers).is_some();
    let marked = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(CSRF_VALUE.as_bytes()));
    if unsafe_method && by_cookie && !marked && !is_public(request.uri().path()) {
        // Read (up to a bound) what the client is sending before answering: over HTTP/2 an
        // answer to a request whose body is left unread goes with a stream reset, which some
        // clients (curl) report as a framing error instead of showing the 403.
        let _ = axum::body::to_bytes(request.into_body(), CSRF_DRAIN).await;
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a request authenticated by the session cookie that changes something must carry \
             the header X-Requested-With: trawl",
        )
        .into_response();
    }
    next.run(request).await
}

/// The `Set-Cookie` value that gives a browser `value` for `max_age`, or (with `None`) takes the
/// cookie away.
pub(crate) fn set_cookie(value: Option<&str>, max_age: Duration, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{SESSION_COOKIE}={v}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            max_age.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

/// Failed logins per (organisation, user name), whether or not either exists (so that being
/// throttled tells nothing): after [`Throttle::FREE`] failures in a row, each further attempt
/// must wait 1 s, then 2 s, 4 s… up to 5 minutes after the last failure. A success forgets them.
#[derive(Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<(String, String), (u32, Instant)>>,
}

impl Throttle {
    const FREE: u32 = 5;
    const MAX_WAIT: Duration = Duration::from_secs(300);
    /// Names remembered at most (beyond, those whose wait is over are forgotten first).
    const CAPACITY: usize = 10_000;

    fn key(org: &str, user: &str) -> (String, String) {
        (org.to_lowercase(), user.to_lowercase())
    }

    fn wait_after(failures: u32) -> Duration {
        if failures < Self::FREE {
            return Duration::ZERO;
        }
        let doublings = (failures - Self::FREE).min(16);
        Duration::from_secs(1u64 << doublings).min(Self::MAX_WAIT)
    }

    /// How long this (organisation, user) must still wait before another attempt, if at all.
    pub fn must_wait(&self, org: &str, user: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, last) = failures.get(&Self::key(org, user))?;
        let wait = Self::wait_after(*n).checked_sub(last.elapsed())?;
        (!wait.is_zero()).then_some(wait)
    }

    pub fn failed(&self, org: &str, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= Self::CAPACITY {
            failures.retain(|_, (n, last)| last.elapsed() < Self::wait_after(*n));
            if failures.len() >= Self::CAPACITY {
                failures.clear();
            }
        }
        let entry = failures
            .entry(Self::key(org, user))
            .or_insert((0, Instant::now()));
        *entry = (entry.0.saturating_add(1), Instant::now());
    }

    pub fn succeeded(&self, org: &str, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&Self::key(org, user));
    }
}

/// A user's or token's name: 1 to 64 characters, no control characters; a user's also no
/// spaces (it is typed at a login prompt and on command lines).
pub fn check_name(field: &str, name: &str, spaces: bool) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(format!("{field}: 1 to 64 characters are needed"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || (!spaces && c.is_whitespace()))
    {
        let what = if spaces {
            "control characters"
        } else {
            "spaces or control characters"
        };
        return Err(format!("{field}: {what} are not allowed"));
    }
    Ok(())
}

pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(
            serde_json::to_string(&Role::Operator).unwrap(),
            "\"operator\""
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; trawl_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1".parse().unwrap());
        h.append(header::COOKIE, "trawl_session=xyz".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("xyz"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "trawl_sessionx=1; trawl_session=".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn logins_are_throttled_after_five_failures_and_a_success_forgets() {
        let t = Throttle::default();
        for _ in 0..Throttle::FREE {
            assert_eq!(t.must_wait("default", "alice"), None);
            t.failed("default", "Alice");
        }
        let wait = t.must_wait("DEFAULT", "alice").expect("throttled");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(500));
        assert_eq!(t.must_wait("default", "bob"), None, "per user");
        t.failed("default", "alice");
        assert!(t.must_wait("default", "alice").unwrap() > Duration::from_secs(1));
        t.succeeded("default", "alice");
        assert_eq!(t.must_wait("default", "alice"), None);
        assert_eq!(Throttle::wait_after(100), Throttle::MAX_WAIT);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let c = set_cookie(Some("v"), Duration::from_secs(60), true);
        assert_eq!(
            c,
            "trawl_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=60; Secure"
        );
        assert!(set_cookie(None, Duration::ZERO, false).contains("Max-Age=0"));
    }
}
