//! Share links: signed, expiring, revocable, read-only links to one capture (or the packets of it
//! a filter keeps) that anyone holding the link may open and download, without an account.
//!
//! A link's token is `base64url(share_id u64 BE ‖ expires_ns i64 BE ‖ HMAC-SHA256(key, share_id ‖
//! capture_id ‖ org_id ‖ expires_ns ‖ filter))` (integers big-endian, the filter's UTF-8 bytes,
//! none without a filter). The key is 32 random bytes made on the server's first start and kept in
//! `DATA/share.key` (mode 0600). The catalogue keeps the share (capture, filter, expiry, who made
//! it, whether it was revoked), not the token: the token can be made again from the row for the
//! list, and a token is honoured only while its row says it is live, so revoking takes effect at
//! once. A token that does not verify, or names an unknown or revoked share, is `404`; one past
//! its expiry `410`.
//!
//! The public routes (`GET /api/v1/shared/{token}` and `…/pcapng`) reach only the share's capture,
//! and only to read it; the download is the capture download of `captures`, with the share's
//! filter compiled as any download filter.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::captures::{self, CaptureDownload, capture_id, rfc3339};
use crate::catalogue::{self, Catalogue, OrgId};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    filter TEXT,
    expires_ns INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ns INTEGER
);
CREATE INDEX IF NOT EXISTS shares_by_capture ON shares (org_id, capture_id);
";

/// How long a link lives when the request does not say, and at most.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 86_400);
const MAX_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

// ---------------------------------------------------------------------------------------------
// The key and the token.

/// The key share tokens are signed with.
pub(crate) struct ShareKey([u8; 32]);

impl ShareKey {
    const FILE: &'static str = "share.key";

    /// The key in `DATA/share.key`, made (32 random bytes, mode 0600) if there is none.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<ShareKey> {
        let path = data_dir.join(Self::FILE);
        let mut key = [0u8; 32];
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)?;
                if bytes.len() != key.len() {
                    return Err(std::io::Error::other(format!(
                        "{} holds {} bytes, not the 32 of a key (delete it to make a new key; \
                         links shared so far then stop working)",
                        path.display(),
                        bytes.len()
                    )));
                }
                key.copy_from_slice(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                let tmp = data_dir.join(format!("{}.tmp", Self::FILE));
                let mut f = open_private(&tmp)?;
                f.write_all(&key)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                std::fs::File::open(data_dir)?.sync_all()?;
                tracing::info!("made the key that signs share links: {}", path.display());
            }
            Err(e) => return Err(e),
        }
        Ok(ShareKey(key))
    }

    #[cfg(test)]
    pub fn from_bytes(key: [u8; 32]) -> ShareKey {
        ShareKey(key)
    }

    fn mac(&self, s: &Signed<'_>) -> [u8; 32] {
        hmac_sha256(
            &self.0,
            &[
                &s.id.to_be_bytes(),
                &s.capture.to_be_bytes(),
                &s.org.to_be_bytes(),
                &s.expires_ns.to_be_bytes(),
                s.filter.unwrap_or("").as_bytes(),
            ],
        )
    }

    /// The token of a share.
    pub fn token(&self, s: &Signed<'_>) -> String {
        let mut bytes = Vec::with_capacity(48);
        bytes.extend_from_slice(&s.id.to_be_bytes());
        bytes.extend_from_slice(&s.expires_ns.to_be_bytes());
        bytes.extend_from_slice(&self.mac(s));
        base64url(&bytes)
    }

    /// Whether `mac` is this key's signature of `s`, compared in constant time.
    fn verifies(&self, s: &Signed<'_>, mac: &[u8; 32]) -> bool {
        let expected = self.mac(s);
        expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// What a token signs.
pub(crate) struct Signed<'a> {
    pub id: u64,
    pub capture: i64,
    pub org: OrgId,
    pub expires_ns: i64,
    pub filter: Option<&'a str>,
}

/// The parts of a token: the share's id, its expiry, the signature.
fn parse_token(token: &str) -> Option<(u64, i64, [u8; 32])> {
    let bytes = base64url_decode(token)?;
    if bytes.len() != 48 {
        return None;
    }
    let id = u64::from_be_bytes(bytes[0..8].try_into().ok()?);
    let expires = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
    Some((id, expires, bytes[16..48].try_into().ok()?))
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `message`, for a key of at most 64 bytes.
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    debug_assert!(
        key.len() <= 64,
        "longer keys are hashed first; ours are 32 bytes"
    );
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(acc >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = BASE64URL.iter().position(|b| b == c)? as u32;
            acc |= v << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// A share as the catalogue keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub id: i64,
    pub org: OrgId,
    pub capture: i64,
    pub filter: Option<String>,
    pub expires_ns: i64,
    pub created_ns: i64,
    pub created_by: String,
    pub revoked: bool,
}

impl Share {
    fn signed(&self) -> Signed<'_> {
        Signed {
            id: self.id as u64,
            capture: self.capture,
            org: self.org,
            expires_ns: self.expires_ns,
            filter: self.filter.as_deref(),
        }
    }
}

const SHARE_COLUMNS: &str =
    "id, org_id, capture_id, filter, expires_ns, created_ns, created_by, revoked_ns IS NOT NULL";

fn share_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Share> {
    Ok(Share {
        id: r.get(0)?,
        org: r.get(1)?,
        capture: r.get(2)?,
        filter: r.get(3)?,
        expires_ns: r.get(4)?,
        created_ns: r.get(5)?,
        created_by: r.get(6)?,
        revoked: r.get(7)?,
    })
}

impl Catalogue {
    /// Records a share of capture `capture` of `org`; `None` if `org` has no such capture.
    pub(crate) fn create_share(
        &mut self,
        org: OrgId,
        capture: i64,
        filter: Option<&str>,
        expires_ns: i64,
        created_by: &str,
        now: i64,
    ) -> catalogue::Result<Option<Share>> {
        let inserted = self.conn.execute(
            "INSERT INTO shares (org_id, capture_id, filter, expires_ns, created_ns, created_by)
             SELECT ?1, id, ?3, ?4, ?5, ?6 FROM captures WHERE org_id = ?1 AND id = ?2",
            params![org, capture, filter, expires_ns, now, created_by],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = self.conn.last_insert_rowid();
        Ok(Some(Share {
            id,
            org,
            capture,
            filter: filter.map(str::to_owned),
            expires_ns,
            created_ns: now,
            created_by: created_by.to_owned(),
            revoked: false,
        }))
    }

    /// The shares of capture `capture` of `org`, newest first.
    pub(crate) fn shares(&self, org: OrgId, capture: i64) -> catalogue::Result<Vec<Share>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SHARE_COLUMNS} FROM shares WHERE org_id = ?1 AND capture_id = ?2
             ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map(params![org, capture], share_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes share `id` of `org` (again: no change); false if `org` has no such share.
    pub(crate) fn revoke_share(
        &mut self,
        org: OrgId,
        id: i64,
        now: i64,
    ) -> catalogue::Result<bool> {
        let changed = self.conn.execute(
            "UPDATE shares SET revoked_ns = coalesce(revoked_ns, ?1) WHERE org_id = ?2 AND id = ?3",
            params![now, org, id],
        )?;
        Ok(changed == 1)
    }

    /// Share `id`, whatever its organisation: only for a token whose signature is then checked
    /// against the row (the signature covers the organisation).
    fn share_for_token(&self, id: i64) -> catalogue::Result<Option<Share>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = ?1"),
                [id],
                share_row,
            )
            .optional()?)
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

/// `expires_in`: a number of seconds, or a number and a unit (`90s`, `30m`, `12h`, `7d`, `2w`),
/// above 0 and at most 90 days.
fn lifetime(v: Option<&Value>) -> Result<Duration, ApiError> {
    let field = "expires_in";
    let secs = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_LIFETIME),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (digits, unit) = s.split_at(split);
            let scale = match unit.trim() {
                "" | "s" => Some(1),
                "m" => Some(60),
                "h" => Some(3600),
                "d" => Some(86_400),
                "w" => Some(7 * 86_400),
                _ => None,
            };
            digits
                .parse::<u64>()
                .ok()
                .zip(scale)
                .and_then(|(n, k)| n.checked_mul(k))
        }
        Some(_) => None,
    };
    let secs = secs.ok_or_else(|| {
        bad_request(format!(
            "{field}: a duration is needed, such as \"7d\", \"12h\", \"30m\" or a number of seconds"
        ))
    })?;
    let d = Duration::from_secs(secs);
    if d.is_zero() || d > MAX_LIFETIME {
        return Err(bad_request(format!(
            "{field}: above 0 and at most 90 days (\"90d\")"
        )));
    }
    Ok(d)
}

fn share_json(key: &ShareKey, s: &Share) -> Value {
    let token = key.token(&s.signed());
    json!({
        "id": s.id,
        "url": format!("/s/{token}"),
        "expires": rfc3339(s.expires_ns.max(0) as u64),
        "filter": s.filter,
        "created_by": s.created_by,
        "created": rfc3339(s.created_ns.max(0) as u64),
        "revoked": s.revoked,
    })
}

/// `POST /api/v1/captures/{id}/shares` (operator) with `{"expires_in": "7d", "filter": "…"}`
/// (both optional): `201` with the link.
pub(crate) async fn create(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p = st.auth(&headers, Role::Operator).await?;
    let n = capture_id(&id)?;
    let Json(body) = body.map_err(|e| bad_request(e.body_text()))?;
    let Value::Object(fields) = &body else {
        return Err(bad_request("the body must be a JSON object"));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "expires_in" | "filter"))
    {
        return Err(bad_request(format!(
            "{unknown}: unknown field (known: expires_in, filter)"
        )));
    }
    let lifetime = lifetime(fields.get("expires_in"))?;
    let filter = match fields.get("filter") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => Some(f.trim().to_owned()).filter(|f| !f.is_empty()),
        Some(_) => {
            return Err(bad_request(
                "filter: a tcpdump expression (a string) is needed",
            ));
        }
    };
    // The filter is compiled now, for the capture's link types, as a download would compile it:
    // a link that could never be opened is refused when it is made.
    let (data_dir, catalogue, org, check) = (
        st.ingest.data_dir.clone(),
        st.catalogue.clone(),
        p.org,
        filter.clone(),
    );
    let found = tokio::task::spawn_blocking(move || {
        CaptureDownload::new(&data_dir, &catalogue, org, n, check).map(|d| d.is_some())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| {
        let e = ApiError::from(e);
        if e.kind == "bad_filter" {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_filter",
                format!("filter: {}", e.detail()),
            )
        } else {
            e
        }
    })?;
    if !found {
        return Err(captures::not_found(&id));
    }
    let now = st.auth.clock.now_ns();
    let expires = now.saturating_add(lifetime.as_nanos() as i64);
    let who = p.who();
    let share = st
        .db(move |c| c.create_share(org, n, filter.as_deref(), expires, &who, now))
        .await?
        .ok_or_else(|| captures::not_found(&id))?;
    let token = st.share_key.token(&share.signed());
    let mut answer = share_json(&st.share_key, &share);
    answer["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /api/v1/captures/{id}/shares` (operator): the capture's links, newest first, revoked and
/// expired ones too.
pub(crate) async fn list(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let n = capture_id(&id)?;
    let found = st
        .db(move |c| {
            if c.capture(org, n)?.is_none() {
                return Ok(None);
            }
            c.shares(org, n).map(Some)
        })
        .await?
        .ok_or_else(|| captures::not_found(&id))?;
    let list: Vec<Value> = found.iter().map(|s| share_json(&st.share_key, s)).collect();
    Ok(Json(json!({ "shares": list })).into_response())
}

/// `DELETE /api/v1/shares/{id}` (operator): the link stops working at once.
pub(crate) async fn revoke(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no share {id}"));
    let n = id
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(not_found)?;
    let now = st.auth.clock.now_ns();
    if !st.db(move |c| c.revoke_share(org, n, now)).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The live share a token names: `404` if it does not verify, is unknown or revoked, `410` if
/// it has expired.
async fn resolve(st: &AppState, token: &str) -> Result<Share, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such share link");
    let (id, expires_ns, mac) = parse_token(token).ok_or_else(not_found)?;
    let id = i64::try_from(id).map_err(|_| not_found())?;
    let share = st
        .db(move |c| c.share_for_token(id))
        .await?
        .ok_or_else(not_found)?;
    if share.expires_ns != expires_ns || !st.share_key.verifies(&share.signed(), &mac) {
        return Err(not_found());
    }
    if share.revoked {
        return Err(not_found());
    }
    if st.auth.clock.now_ns() >= share.expires_ns {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            format!(
                "this share link expired at {}",
                rfc3339(share.expires_ns.max(0) as u64)
            ),
        ));
    }
    Ok(share)
}

/// `GET /api/v1/shared/{token}` (public): what the link shares.
pub(crate) async fn shared(
    State(st): State<AppState>,
    UrlPath(token): UrlPath<String>,
) -> Result<Response, ApiError> {
    let share = resolve(&st, &token).await?;
    let (org, n) = (share.org, share.capture);
    let capture = st
        .db(move |c| c.capture(org, n))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such share link"))?;
    let time = |ns: Option<u64>| ns.map(rfc3339);
    let devices: Vec<&str> = capture.devices.iter().map(|d| d.name.as_str()).collect();
    Ok(Json(json!({
        "capture": {
            "name": capture.name,
            "packets": capture.stats.packets,
            "bytes": capture.stats.bytes,
            "first": time(capture.stats.first_ns),
            "last": time(capture.stats.last_ns),
            "devices": devices,
        },
        "filter": share.filter,
        "expires": rfc3339(share.expires_ns.max(0) as u64),
    }))
    .into_response())
}

/// `GET /api/v1/shared/{token}/pcapng` (public): the capture's packets that the share's filter
/// keeps, as the capture download gives them.
pub(crate) async fn download(
    State(st): State<AppState>,
    UrlPath(token): UrlPath<String>,
) -> Result<Response, ApiError> {
    let share = resolve(&st, &token).await?;
    captures::serve_download(&st, share.org, share.capture, share.filter)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such share link"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_is_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 1: twenty 0x0b bytes.
        let mac = hmac_sha256(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255).collect();
        for n in 0..40 {
            let text = base64url(&data[n..n + 20 + n % 3]);
            assert!(!text.contains(['+', '/', '=']));
            assert_eq!(base64url_decode(&text).unwrap(), &data[n..n + 20 + n % 3]);
        }
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("ab+/"), None);
    }

    #[test]
    fn a_token_verifies_only_for_what_it_signed() {
        let key = ShareKey::from_bytes([7; 32]);
        let s = Signed {
            id: 3,
            capture: 9,
            org: 1,
            expires_ns: 1_700_000_000_000_000_000,
            filter: Some("tcp port 80"),
        };
        let token = key.token(&s);
        assert_eq!(token.len(), 64);
        let (id, expires, mac) = parse_token(&token).unwrap();
        assert_eq!((id, expires), (3, s.expires_ns));
        assert!(key.verifies(&s, &mac));
        for other in [
            Signed { capture: 8, ..s },
            Signed { org: 2, ..s },
            Signed {
                expires_ns: s.expires_ns + 1,
                ..s
            },
            Signed { filter: None, ..s },
            Signed {
                filter: Some("tcp"),
                ..s
            },
        ] {
            assert!(!key.verifies(&other, &mac));
        }
        assert!(!ShareKey::from_bytes([8; 32]).verifies(&s, &mac));
        assert_eq!(parse_token(&token[..60]), None);
    }

    #[test]
    fn lifetimes_are_read_with_units_and_bounded() {
        let l = |v: Value| lifetime(Some(&v)).map_err(|e| e.detail().to_owned());
        assert_eq!(lifetime(None).unwrap(), DEFAULT_LIFETIME);
        assert_eq!(l(json!("12h")).unwrap(), Duration::from_secs(43_200));
        assert_eq!(l(json!("90d")).unwrap(), MAX_LIFETIME);
        assert_eq!(l(json!(60)).unwrap(), Duration::from_secs(60));
        for bad in [
            json!("91d"),
            json!("0s"),
            json!("7x"),
            json!("d"),
            json!(-1),
            json!([]),
        ] {
            assert!(
                l(bad.clone()).unwrap_err().starts_with("expires_in:"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ShareKey::load_or_create(dir.path()).unwrap();
        let b = ShareKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("share.key"))
                .unwrap()
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("share.key"), b"short").unwrap();
        assert!(ShareKey::load_or_create(dir.path()).is_err());
    }
}
