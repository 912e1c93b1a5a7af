//! Per-packet annotations of a capture (issue 6): a comment on packet N, kept by the server and
//! written into the capture's pcapng download as an `opt_comment` of that packet's enhanced
//! packet block, so Wireshark and `tshark -Y frame.comment` show it.
//!
//! A packet is named by its 1-based number in the capture's download order (the stored order,
//! unfiltered: what Wireshark numbers it in the full download), so an annotation stays on its
//! packet whatever filter a later download applies. The table `capture_annotations` holds one
//! comment per (capture, packet) with its author and time; every query names the organisation,
//! and another organisation's capture is answered as one that does not exist (`404`). Deleting a
//! capture deletes its annotations (`captures.rs`).
//!
//! Routes: `GET /api/v1/captures/{id}/annotations`, `PUT` and `DELETE
//! /api/v1/captures/{id}/annotations/{packet}` (docs/protocol.md, "Annotations").

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::captures::{CaptureId, capture_id, not_found, rfc3339};
use crate::catalogue::{self, Catalogue, OrgId, from_sql, now_ns, to_sql};

/// Longest comment, in bytes of UTF-8.
pub const MAX_COMMENT_LEN: usize = 64 << 10;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS capture_annotations (
    capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES organisations(id),
    packet INTEGER NOT NULL,
    comment TEXT NOT NULL,
    author TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    PRIMARY KEY (capture_id, packet)
);
";

/// One packet's annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// 1-based, in the capture's download order.
    pub packet: u64,
    pub comment: String,
    /// Who wrote it (a user's name; `admin` for the organisation's admin token).
    pub author: String,
    pub time_ns: u64,
}

impl Annotation {
    fn json(&self) -> Value {
        json!({
            "packet": self.packet,
            "comment": self.comment,
            "author": self.author,
            "time": rfc3339(self.time_ns),
        })
    }
}

/// What setting an annotation found.
#[derive(Debug, PartialEq, Eq)]
pub enum Annotated {
    Saved(Annotation),
    /// `org` has no such capture.
    NoCapture,
    /// The capture has fewer packets: how many it has.
    NoPacket(u64),
}

impl Catalogue {
    /// The annotations of capture `id` of `org`, by packet number; `None` if `org` has no such
    /// capture.
    pub fn annotations(
        &self,
        org: OrgId,
        id: CaptureId,
    ) -> catalogue::Result<Option<Vec<Annotation>>> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM captures WHERE org_id = ?1 AND id = ?2)",
            params![org, id],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT packet, comment, author, time_ns FROM capture_annotations
             WHERE org_id = ?1 AND capture_id = ?2 ORDER BY packet",
        )?;
        let list = stmt
            .query_map(params![org, id], |r| {
                Ok(Annotation {
                    packet: from_sql(r.get(0)?),
                    comment: r.get(1)?,
                    author: r.get(2)?,
                    time_ns: from_sql(r.get(3)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(list))
    }

    /// Sets (or replaces) the comment on packet `packet` of capture `id` of `org`.
    pub fn annotate(
        &mut self,
        org: OrgId,
        id: CaptureId,
        packet: u64,
        comment: &str,
        author: &str,
    ) -> catalogue::Result<Annotated> {
        let tx = self.conn.transaction()?;
        let packets: Option<i64> = tx
            .query_row(
                "SELECT packets FROM captures WHERE org_id = ?1 AND id = ?2",
                params![org, id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(packets) = packets.map(from_sql) else {
            return Ok(Annotated::NoCapture);
        };
        if packet == 0 || packet > packets {
            return Ok(Annotated::NoPacket(packets));
        }
        let time_ns = now_ns();
        tx.execute(
            "INSERT INTO capture_annotations (capture_id, org_id, packet, comment, author, time_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (capture_id, packet) DO UPDATE SET
                comment = excluded.comment, author = excluded.author, time_ns = excluded.time_ns",
            params![id, org, to_sql(packet), comment, author, time_ns],
        )?;
        tx.commit()?;
        Ok(Annotated::Saved(Annotation {
            packet,
            comment: comment.to_owned(),
            author: author.to_owned(),
            time_ns: from_sql(time_ns),
        }))
    }

    /// Removes the comment on packet `packet` of capture `id` of `org`: `None` if `org` has no
    /// such capture, else whether there was one.
    pub fn remove_annotation(
        &mut self,
        org: OrgId,
        id: CaptureId,
        packet: u64,
    ) -> catalogue::Result<Option<bool>> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM captures WHERE org_id = ?1 AND id = ?2)",
            params![org, id],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let n = tx.execute(
            "DELETE FROM capture_annotations WHERE org_id = ?1 AND capture_id = ?2 AND packet = ?3",
            params![org, id, to_sql(packet)],
        )?;
        tx.commit()?;
        Ok(Some(n > 0))
    }
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

/// A packet number from the URL: 1 or more (anything else names no packet).
fn packet_number(id: &str, packet: &str) -> Result<u64, ApiError> {
    packet
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("capture {id} has no packet {packet:?}: packets are numbered from 1"),
            )
        })
}

/// `GET /api/v1/captures/{id}/annotations`
pub(crate) async fn list(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let n = capture_id(&id)?;
    let found = st
        .db(move |c| c.annotations(org, n))
        .await?
        .ok_or_else(|| not_found(&id))?;
    let list: Vec<Value> = found.iter().map(Annotation::json).collect();
    Ok(Json(json!({ "annotations": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    comment: String,
}

/// `PUT /api/v1/captures/{id}/annotations/{packet}` with `{"comment": "…"}`.
pub(crate) async fn put(
    State(st): State<AppState>,
    UrlPath((id, packet)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = st.auth(&headers, Role::Operator).await?;
    let org = who.org;
    // The user's name; an organisation admin token (or a token it made) writes as "admin".
    let author = who.user.map_or_else(|| "admin".to_owned(), |u| u.name);
    let n = capture_id(&id)?;
    let number = packet_number(&id, &packet)?;
    let CommentBody { comment } = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the body must be JSON {{\"comment\": \"…\"}} (UTF-8): {e}"
        ))
    })?;
    if comment.is_empty() {
        return Err(bad_request(
            "comment: empty; DELETE the annotation to remove it",
        ));
    }
    if comment.len() > MAX_COMMENT_LEN {
        return Err(bad_request(format!(
            "comment: at most {MAX_COMMENT_LEN} bytes ({} given)",
            comment.len()
        )));
    }
    match st
        .db(move |c| c.annotate(org, n, number, &comment, &author))
        .await?
    {
        Annotated::Saved(a) => Ok(Json(a.json()).into_response()),
        Annotated::NoCapture => Err(not_found(&id)),
        Annotated::NoPacket(packets) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("capture {id} has no packet {number}: it has {packets}"),
        )),
    }
}

/// `DELETE /api/v1/captures/{id}/annotations/{packet}`: `204`.
pub(crate) async fn delete(
    State(st): State<AppState>,
    UrlPath((id, packet)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    let n = capture_id(&id)?;
    let number = packet_number(&id, &packet)?;
    let had = st
        .db(move |c| c.remove_annotation(org, n, number))
        .await?
        .ok_or_else(|| not_found(&id))?;
    if !had {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("packet {number} of capture {id} has no annotation"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::{CaptureKind, CaptureStats, NewCapture};

    #[test]
    fn annotations_stay_on_their_capture_and_organisation() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalogue::open(&dir.path().join("c.db")).unwrap();
        let a = c.create_organisation("a").unwrap().id;
        let b = c.create_organisation("b").unwrap().id;
        let new = NewCapture {
            kind: CaptureKind::Upload,
            name: "x".into(),
            notes: String::new(),
            tags: vec![],
            uploader: None,
            devices: vec![],
            window: None,
            filter: None,
            source: "pcap".into(),
            interfaces: vec![],
            stats: CaptureStats {
                packets: 3,
                ..CaptureStats::default()
            },
            dir: None,
            parts: vec![],
        };
        let id = c.insert_capture(a, &new, |_| Ok(()), || {}).unwrap();
        assert!(matches!(
            c.annotate(a, id, 2, "two", "alice").unwrap(),
            Annotated::Saved(_)
        ));
        assert_eq!(
            c.annotate(a, id, 4, "x", "alice").unwrap(),
            Annotated::NoPacket(3)
        );
        assert_eq!(
            c.annotate(a, id, 0, "x", "alice").unwrap(),
            Annotated::NoPacket(3)
        );
        assert_eq!(
            c.annotate(b, id, 1, "x", "bob").unwrap(),
            Annotated::NoCapture
        );
        assert_eq!(c.annotations(b, id).unwrap(), None);
        assert_eq!(c.remove_annotation(b, id, 2).unwrap(), None);
        // Replacing keeps one annotation per packet.
        c.annotate(a, id, 2, "two again", "carol").unwrap();
        let list = c.annotations(a, id).unwrap().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].comment.as_str(), list[0].author.as_str()),
            ("two again", "carol")
        );
        assert_eq!(c.remove_annotation(a, id, 2).unwrap(), Some(true));
        assert_eq!(c.remove_annotation(a, id, 2).unwrap(), Some(false));
        // Deleting the capture takes its annotations with it.
        c.annotate(a, id, 1, "one", "alice").unwrap();
        c.delete_capture(a, id).unwrap();
        let left: i64 = c
            .conn
            .query_row("SELECT count(*) FROM capture_annotations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
