//! Creating captures: a capture file sent in a request body (an upload), or a window of devices'
//! stored packets (saved). docs/protocol.md, "Uploads and captures".
//!
//! **An upload** is `PUT` or `POST` of a pcap or pcapng file to `/api/v1/captures` (or the alias
//! `/api/v1/upload[/FILENAME]`), as a raw body, as the file part of a `multipart/form-data` body
//! (CloudShark style), gzip- or zstd-encoded (`Content-Encoding`, or a compressed file detected by
//! its magic bytes), of a known length or chunked while it is still being captured
//! (`tcpdump -U -w - | curl -T - URL`). Its path, along the data:
//!
//! ```text
//! request body ──► pump (async: body frames, or the multipart file part's chunks)
//!   ──► bounded channel (16 chunks) ──► ChannelReader (blocking thread: std::io::Read)
//!   ──► Content-Encoding decoder ──► gzip/zstd by magic ──► CaptureReader (trawl-pcap)
//!   ──► Staging: packets appended to trawl-store segments in captures/.staging/RANDOM/
//!   ──► all good: the directory renamed to captures/org-N/RANDOM and the capture recorded,
//!       in one catalogue transaction ──► 201 {"id", "url", …}
//! ```
//!
//! Nothing is buffered beyond the channel, the reader's buffer (the largest record) and the frame
//! being compressed, so memory stays the same for a 2 GB upload as for a small one; the channel
//! being bounded, a client sending faster than the disk slows down. A body that is not a capture,
//! or is corrupt anywhere (a bad magic, a truncated record, a bad block), is refused with `400`
//! saying what and at which byte offset: the staging directory is removed and the catalogue never
//! hears of it. A server that dies mid-upload leaves only a staging directory, removed at the next
//! start ([`crate::captures::sweep`]).
//!
//! **Credentials.** `Authorization: Bearer TOKEN`, or HTTP Basic with the token as the password
//! and any user name (TR-069 `PacketCaptureDiagnostics` `FileTarget` uploads are configured with a
//! user name and password); the organisation's admin token, or a device's credential (the capture
//! is then attributed to the device). Without one, `401` with a `WWW-Authenticate: Basic`
//! challenge, for clients that send credentials only when asked.
//!
//! **A saved window** is `POST /api/v1/captures` with a JSON body naming devices and a window:
//! its retrieval (`retrieve::Plan`, as `GET /api/v1/packets` streams it) is written into the same
//! staging path through a pipe, so the capture holds exactly those packets, and keeps them when
//! retention later deletes the segments they came from.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use trawl_pcap::{CaptureReader, Interface, Packet};
use trawl_store::{SegmentWriter, StoreError, WriterOptions};

use crate::api::{ApiError, AppState};
use crate::auth::{self, Role};
use crate::captures::{
    self, CAPTURES_DIR, CaptureId, CaptureKind, CaptureStats, InterfaceSummary, NewCapture,
    PartRecord, STAGING_DIR,
};
use crate::catalogue::{Catalogue, CatalogueError, DeviceAuth, OrgId, now_ns};
use crate::retrieve::{Plan, PullRequest, RetrieveError};

/// Body chunks waiting between the request and the parser.
const CHANNEL_CHUNKS: usize = 16;
/// After refusing an upload, the rest of the body is read and thrown away, up to this much and
/// for up to [`DRAIN_TIME`], so that a client still sending receives the answer (closing a
/// connection with unread data makes the kernel reset it, and the answer can be lost).
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// A text field of a multipart body (tags, notes…) may be this long at most.
const MAX_FIELD: usize = captures::MAX_NOTES_LEN + 1024;
/// A capture whose pcapng describes new interfaces after packets is stored in parts (see
/// `captures`); at most this many parts, and this many interface descriptions over all parts.
const MAX_PARTS: usize = 1024;
const MAX_STORED_INTERFACES: usize = 1 << 20;
/// The challenge sent with a `401` from the upload endpoints.
const CHALLENGE: &str = "Basic realm=\"trawl\", charset=\"UTF-8\"";

// ---------------------------------------------------------------------------------------------
// Credentials.

/// Who is uploading.
#[derive(Debug)]
pub(crate) enum Uploader {
    /// A person's credential (see [`uploader`]), of this organisation.
    Person(OrgId),
    Device(DeviceAuth),
}

impl Uploader {
    fn org(&self) -> OrgId {
        match self {
            Uploader::Person(org) => *org,
            Uploader::Device(d) => d.org,
        }
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::unauthorized(detail).with_challenge(CHALLENGE)
}

/// The token of an `Authorization` header: `Bearer TOKEN`, or `Basic` with the token as the
/// password (any user name) — or as the user name with an empty password.
fn credential(headers: &HeaderMap) -> Result<String, ApiError> {
    let needed = "a token (an admin token, an operator's API token) or a device credential is \
                  needed: Authorization: Bearer TOKEN, or HTTP Basic with the token as the \
                  password (curl -u any:TOKEN); or a login session's cookie";
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized(needed))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthorized("the Basic credentials are not base64 of user:password"))?;
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        if password.is_empty() { user } else { password }.to_owned()
    } else {
        return Err(unauthorized(needed));
    };
    if token.is_empty() {
        return Err(unauthorized(needed));
    }
    Ok(token)
}

/// Standard base64 (RFC 4648, padding optional); `None` if it is not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The uploader a request's credential names: a person's (an organisation's admin token, a
/// user's API token or login session) with the operator role, or a device's credential (not
/// revoked). Without an `Authorization` header, the session cookie.
async fn uploader(st: &AppState, headers: &HeaderMap) -> Result<Uploader, ApiError> {
    if !headers.contains_key(header::AUTHORIZATION) && auth::session_cookie(headers).is_some() {
        // No challenge: a browser would answer it with a password dialog.
        let p = st.auth(headers, Role::Operator).await?;
        return Ok(Uploader::Person(p.org));
    }
    let token = credential(headers)?;
    if let Some(p) = st.principal_by_token(token.clone()).await? {
        p.require(Role::Operator)?;
        return Ok(Uploader::Person(p.org));
    }
    match st.db(move |c| c.device_by_credential(&token)).await? {
        None => Err(unauthorized("unknown token or credential")),
        Some(d) if d.revoked => Err(unauthorized("this device's credential was revoked")),
        Some(d) => {
            st.ingest.metrics.device_seen(d.id);
            Ok(Uploader::Device(d))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters.

/// What an upload says about itself, from the query string and multipart fields.
#[derive(Debug, Default)]
pub(crate) struct CaptureParams {
    name: Option<String>,
    tags: Vec<String>,
    notes: Option<String>,
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
}

impl CaptureParams {
    /// Takes one parameter: `name` (or `filename`), `tag` (repeatable) or `tags` (or
    /// `additional_tags`; comma-separated), `notes` (or `comment`, `comments`, `description`).
    fn apply(&mut self, key: &str, value: &str) -> Result<(), ApiError> {
        let twice = || bad_request(format!("{key}: given more than once"));
        match key {
            "name" | "filename" => {
                if self.name.is_some() {
                    return Err(twice());
                }
                let name = value.trim();
                captures::check_name(name).map_err(bad_request)?;
                self.name = Some(name.to_owned()).filter(|n| !n.is_empty());
            }
            "tag" | "tags" | "additional_tags" => {
                for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    captures::check_tag(tag).map_err(bad_request)?;
                    if !self.tags.iter().any(|t| t == tag) {
                        self.tags.push(tag.to_owned());
                    }
                }
                if self.tags.len() > captures::MAX_TAGS {
                    return Err(bad_request(format!(
                        "tags: a capture carries at most {} tags",
                        captures::MAX_TAGS
                    )));
                }
            }
            "notes" | "comment" | "comments" | "description" => {
                if self.notes.is_some() {
                    return Err(twice());
                }
                captures::check_notes(value).map_err(bad_request)?;
                self.notes = Some(value.to_owned());
            }
            _ => {
                return Err(bad_request(format!(
                    "{key}: unknown parameter (known: name, tag, tags, notes; also filename, \
                     additional_tags, comment, comments, description)"
                )));
            }
        }
        Ok(())
    }
}

/// `Content-Encoding` of an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let v = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!(
                "Content-Encoding {v:?} is not supported: send the capture as it is, gzip or zstd"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The body is not a capture, or the capture is corrupt: nothing is stored.
    #[error("{detail}")]
    Capture {
        /// Nothing in it was recognised as a capture (rather than a capture gone bad).
        not_a_capture: bool,
        /// Offset in the capture (decompressed, if it was compressed).
        offset: u64,
        /// Good packets before the fault.
        packets: u64,
        detail: String,
    },
    /// Its gzip or zstd compression is corrupt.
    #[error("{0}")]
    Encoding(String),
    /// The request body itself failed: the client went away, or its chunked encoding is broken.
    #[error("the request body ended abnormally: {0}")]
    Body(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(28)
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let storage =
            |detail: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", detail);
        match e {
            UploadError::Capture {
                not_a_capture,
                offset,
                packets,
                detail,
            } => ApiError::new(
                StatusCode::BAD_REQUEST,
                if not_a_capture {
                    "not_a_capture"
                } else {
                    "bad_capture"
                },
                format!("{detail}; nothing was stored"),
            )
            .with("offset", offset)
            .with("packets_read", packets),
            UploadError::Encoding(d) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_encoding",
                format!("{d}; nothing was stored"),
            ),
            UploadError::Body(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("{e}; nothing was stored"),
            ),
            UploadError::Store(s) if s.kind() == trawl_store::ErrorKind::DiskFull => storage(
                format!("no space left on the server's disk: nothing was stored ({s})"),
            ),
            UploadError::Io { ref source, .. } if is_no_space(source) => storage(format!(
                "no space left on the server's disk: nothing was stored ({e})"
            )),
            UploadError::Catalogue(ref c) if c.is_disk_full() => storage(format!(
                "no space left on the server's disk: nothing was stored ({e})"
            )),
            other => ApiError::internal(other),
        }
    }
}

/// The body stopped: the client went away or broke the chunked encoding.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BodyFailed(String);

/// A pcap reader error as an upload error: a fault of the body itself (it stopped), of its
/// compression, or of the capture.
fn capture_error(e: trawl_pcap::Error, packets: u64, compressed: bool) -> UploadError {
    use trawl_pcap::ErrorKind as K;
    if let K::Io(io) = &e.kind {
        if let Some(b) = io.get_ref().and_then(|i| i.downcast_ref::<BodyFailed>()) {
            return UploadError::Body(b.0.clone());
        }
        return UploadError::Encoding(format!(
            "the body's compression is corrupt after {} bytes of capture: {io}",
            e.offset
        ));
    }
    let not_a_capture = packets == 0 && matches!(e.kind, K::Empty | K::UnknownFormat(_));
    let what = if not_a_capture {
        "the body is not a pcap or pcapng capture".to_owned()
    } else if packets == 0 {
        "the capture is corrupt".to_owned()
    } else {
        format!("the capture is corrupt after {packets} good packets")
    };
    let whose = if compressed {
        " (offsets count the decompressed capture)"
    } else {
        ""
    };
    UploadError::Capture {
        not_a_capture,
        offset: e.offset,
        packets,
        detail: format!("{what}: {e}{whose}"),
    }
}

// ---------------------------------------------------------------------------------------------
// From the request to a blocking reader.

/// What the request side hands the parser.
enum Chunk {
    Data(Bytes),
    /// The body (or the file part) ended normally.
    End,
    /// The body failed.
    Failed(String),
}

/// The request body as `std::io::Read`, on a blocking thread. A channel closed without an
/// explicit end (the request was dropped: the client went away) is an error, never a clean end:
/// a capture cut at a record boundary is not mistaken for a whole one.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.current = b,
                Some(Chunk::End) => self.ended = true,
                Some(Chunk::Failed(e)) => return Err(io::Error::other(BodyFailed(e))),
                None => {
                    return Err(io::Error::other(BodyFailed(
                        "the upload stopped before its end".into(),
                    )));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// How the pump ended.
enum Pumped {
    /// The whole body went to the parser.
    Done,
    /// The parser stopped taking it (it found a fault): the rest is still unread.
    ParserStopped,
    /// The body failed.
    Failed,
}

/// Sends the request body to the parser.
async fn pump_body(body: &mut Body, tx: &mpsc::Sender<Chunk>) -> Pumped {
    loop {
        match body.frame().await {
            None => {
                let _ = tx.send(Chunk::End).await;
                return Pumped::Done;
            }
            Some(Err(e)) => {
                let _ = tx.send(Chunk::Failed(e.to_string())).await;
                return Pumped::Failed;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                    && tx.send(Chunk::Data(data)).await.is_err()
                {
                    return Pumped::ParserStopped;
                }
            }
        }
    }
}

/// Reads and throws away the rest of a body, within [`DRAIN_LIMIT`] and [`DRAIN_TIME`].
async fn drain(body: &mut Body) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                n += d.len() as u64;
                if n > DRAIN_LIMIT {
                    break;
                }
            }
        }
    })
    .await;
}

/// Whether the client waits for an interim `100 Continue` before sending its body: then it
/// has sent nothing yet, and there is nothing to drain.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

// ---------------------------------------------------------------------------------------------
// Staging: packets into segments, nothing recorded yet.

/// An upload being stored: segments in `captures/.staging/RANDOM/`, removed when dropped unless
/// [`commit`] moved them into place.
pub(crate) struct Staging {
    data_dir: PathBuf,
    /// The directory's name (random), kept when it moves into place.
    name: String,
    dir: PathBuf,
    /// Named in the segments' section headers.
    device: String,
    writer: Option<SegmentWriter>,
    /// Interfaces described by the part being written.
    described: usize,
    stored_interfaces: usize,
    parts: Vec<PartRecord>,
    interfaces: Vec<InterfaceSummary>,
    stats: CaptureStats,
    kept: bool,
}

impl Staging {
    fn new(data_dir: &Path, device: &str) -> Result<Staging, UploadError> {
        let name = crate::secret::generate()
            .map_err(|source| UploadError::Io {
                what: "making a name for",
                path: data_dir.join(CAPTURES_DIR),
                source,
            })?
            .split_off(48);
        let dir = data_dir.join(CAPTURES_DIR).join(STAGING_DIR).join(&name);
        std::fs::create_dir_all(&dir).map_err(|source| UploadError::Io {
            what: "creating",
            path: dir.clone(),
            source,
        })?;
        Ok(Staging {
            data_dir: data_dir.to_owned(),
            name,
            dir,
            device: device.to_owned(),
            writer: None,
            described: 0,
            stored_interfaces: 0,
            parts: Vec::new(),
            interfaces: Vec::new(),
            stats: CaptureStats::default(),
            kept: false,
        })
    }

    /// Closes the part being written (synced) and notes it.
    fn close_part(&mut self) -> Result<(), UploadError> {
        if let Some(w) = self.writer.take() {
            let stats = w.finish()?;
            let part = self.parts.last_mut().expect("a part is open");
            part.packets = stats.packets;
            part.stored_bytes = stats.stored_bytes;
            self.stats.stored_bytes += stats.stored_bytes;
        }
        Ok(())
    }

    /// Starts a new part describing `interfaces` (every interface known so far).
    fn start_part(&mut self, interfaces: &[Interface]) -> Result<(), UploadError> {
        self.close_part()?;
        self.stored_interfaces += interfaces.len();
        if self.parts.len() >= MAX_PARTS || self.stored_interfaces > MAX_STORED_INTERFACES {
            return Err(UploadError::Capture {
                not_a_capture: false,
                offset: 0,
                packets: self.stats.packets,
                detail: format!(
                    "the capture describes new interfaces after its packets too often (more \
                     than {MAX_PARTS} times, or {MAX_STORED_INTERFACES} interface descriptions \
                     in all): the server does not store it"
                ),
            });
        }
        let seq = self.parts.len() as u32;
        let name = format!("p{seq}");
        let writer = SegmentWriter::create_with_interfaces(
            &self.dir,
            &name,
            &self.device,
            interfaces,
            WriterOptions::default(),
            trawl_pcap::Timestamp::from_nanos(now_ns() as u64),
        )?;
        self.writer = Some(writer);
        self.described = interfaces.len();
        self.interfaces = interfaces
            .iter()
            .enumerate()
            .map(|(i, iface)| InterfaceSummary::of(i, iface))
            .collect();
        self.parts.push(PartRecord {
            seq,
            name,
            interfaces: interfaces.len() as u32,
            packets: 0,
            stored_bytes: 0,
        });
        Ok(())
    }

    /// Stores one packet. A packet from a pcapng simple packet block, which has no time, is
    /// stored with time 0, as Wireshark shows it.
    fn append(&mut self, p: &Packet<'_>) -> Result<(), StoreError> {
        let w = self
            .writer
            .as_mut()
            .expect("a part is open for every packet");
        w.append_to(p.interface, p.ts, p.orig_len, p.data, p.options)?;
        let s = &mut self.stats;
        let ns = p.ts.as_nanos();
        s.first_ns = Some(s.first_ns.map_or(ns, |t| t.min(ns)));
        s.last_ns = Some(s.last_ns.map_or(ns, |t| t.max(ns)));
        s.packets += 1;
        s.bytes += p.data.len() as u64;
        s.wire_bytes += p.orig_len.max(p.data.len() as u32) as u64;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.kept {
            self.writer = None;
            if let Err(e) = std::fs::remove_dir_all(&self.dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(
                    "{}: could not remove a refused upload: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// `n` bytes from the start of `r` (fewer at its end), and a reader that gives them again.
fn peek(mut r: Box<dyn Read + Send>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    let again: Box<dyn Read + Send> = Box::new(io::Cursor::new(head.clone()).chain(r));
    Ok((head, again))
}

/// What a body held, besides its packets.
pub(crate) struct Received {
    /// Its format and compression: `pcapng`, `pcap (nanosecond), gzip`, …
    pub source: String,
}

/// Reads a capture from `body` (decoded as `encoding` says, then decompressed if its magic
/// bytes say gzip or zstd) and stores its packets in `staging`.
fn receive(
    body: impl Read + Send + 'static,
    encoding: Encoding,
    staging: &mut Staging,
) -> Result<Received, UploadError> {
    let body_error = |e: io::Error| match e.get_ref().and_then(|i| i.downcast_ref::<BodyFailed>()) {
        Some(b) => UploadError::Body(b.0.clone()),
        None => UploadError::Encoding(format!("the body's compression is corrupt: {e}")),
    };
    let mut source = Vec::new();
    let decoded: Box<dyn Read + Send> = match encoding {
        Encoding::Identity => Box::new(body),
        Encoding::Gzip => {
            source.push("gzip (Content-Encoding)");
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(body)))
        }
        Encoding::Zstd => {
            source.push("zstd (Content-Encoding)");
            Box::new(zstd::stream::read::Decoder::new(body).map_err(body_error)?)
        }
    };
    let (magic, decoded) = peek(decoded, 4).map_err(body_error)?;
    let plain: Box<dyn Read + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
        source.push("gzip");
        Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
            decoded,
        )))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        source.push("zstd");
        Box::new(zstd::stream::read::Decoder::new(decoded).map_err(body_error)?)
    } else {
        decoded
    };
    let compressed = !source.is_empty();
    let (head, plain) = peek(plain, 24).map_err(body_error)?;
    check_pcap_header(&head)?;

    let mut reader = CaptureReader::new(plain).map_err(|e| capture_error(e, 0, compressed))?;
    // Stored as sent: a record longer than the file's snapshot length stays whole.
    reader.keep_whole_records(true);
    source.insert(0, reader.format().name());
    if !reader.interfaces().is_empty() {
        staging.start_part(reader.interfaces())?;
    }
    let mut packets = 0u64;
    while reader
        .advance()
        .map_err(|e| capture_error(e, packets, compressed))?
    {
        let p = reader.current().expect("advanced");
        if p.interface as usize >= staging.described {
            staging.start_part(reader.interfaces())?;
        }
        staging.append(&p).map_err(|e| match e {
            StoreError::InvalidInput { detail, .. } => UploadError::Capture {
                not_a_capture: false,
                offset: p.offset,
                packets,
                detail: format!(
                    "packet {} (at byte offset {}) cannot be stored: {detail}",
                    packets + 1,
                    p.offset
                ),
            },
            e => UploadError::Store(e),
        })?;
        packets += 1;
    }
    staging.close_part()?;
    Ok(Received {
        source: source.join(", "),
    })
}

/// Refuses a pcap file header whose link-type field has reserved bits set (bits 16–25; the
/// upper bits 26–31 say how long an FCS is): libpcap and Wireshark refuse such a file, and so does
/// an upload, though trawl's reader, like older libpcap, would ignore them.
fn check_pcap_header(head: &[u8]) -> Result<(), UploadError> {
    let Some(magic) = head.get(..4) else {
        return Ok(());
    };
    let magics = [0xa1b2_c3d4u32, 0xa1b2_3c4d, 0xa1b2_cd34];
    let m: [u8; 4] = magic.try_into().expect("4 bytes");
    let big_endian = if magics.contains(&u32::from_le_bytes(m)) {
        false
    } else if magics.contains(&u32::from_be_bytes(m)) {
        true
    } else {
        return Ok(());
    };
    let Some(field) = head.get(20..24) else {
        return Ok(());
    };
    let f: [u8; 4] = field.try_into().expect("4 bytes");
    let v = if big_endian {
        u32::from_be_bytes(f)
    } else {
        u32::from_le_bytes(f)
    };
    let reserved = v & 0x03ff_0000;
    if reserved != 0 {
        return Err(UploadError::Capture {
            not_a_capture: false,
            offset: 20,
            packets: 0,
            detail: format!(
                "the capture is corrupt: at byte offset 20: the pcap link-type field {v:#010x} \
                 has reserved bits set ({reserved:#010x}); libpcap and Wireshark refuse such a \
                 file"
            ),
        });
    }
    Ok(())
}

/// Records a staged capture: its directory moves to `captures/org-N/` and its row is committed,
/// in one transaction (see [`Catalogue::insert_capture`]).
fn commit(
    mut staging: Staging,
    catalogue: &Mutex<Catalogue>,
    org: OrgId,
    mut new: NewCapture,
) -> Result<CaptureId, UploadError> {
    let org_dir = staging
        .data_dir
        .join(CAPTURES_DIR)
        .join(format!("org-{org}"));
    std::fs::create_dir_all(&org_dir).map_err(|source| UploadError::Io {
        what: "creating",
        path: org_dir.clone(),
        source,
    })?;
    let rel = format!("{CAPTURES_DIR}/org-{org}/{}", staging.name);
    let target = staging.data_dir.join(&rel);
    new.dir = Some(rel);
    new.parts = std::mem::take(&mut staging.parts);
    new.interfaces = std::mem::take(&mut staging.interfaces);
    new.stats = staging.stats;
    let from = staging.dir.clone();
    let result = catalogue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert_capture(
            org,
            &new,
            |_| {
                std::fs::rename(&from, &target)?;
                sync_dir(&org_dir)?;
                sync_dir(from.parent().unwrap_or(&org_dir))
            },
            || {
                let _ = std::fs::remove_dir_all(&target);
            },
        );
    let id = result?;
    staging.kept = true;
    Ok(id)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------------------------
// The routes.

/// Query parameters as pairs, or a `400`.
fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| bad_request(e.body_text()))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `PUT` or `POST /api/v1/captures`: an upload; or, `POST` with a JSON body, a saved window.
pub(crate) async fn create(
    State(st): State<AppState>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Response {
    if method == axum::http::Method::POST && content_type(&headers).starts_with("application/json")
    {
        return save_window(st, uri, headers, query, body)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    upload_request(st, uri, headers, query, None, body).await
}

/// `PUT` or `POST /api/v1/upload`: an upload only.
pub(crate) async fn upload(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Response {
    upload_request(st, uri, headers, query, None, body).await
}

/// `PUT` or `POST /api/v1/upload/FILENAME`: an upload whose name, unless `name=` says
/// otherwise, is FILENAME (for clients that append a file name to the URL they are given).
pub(crate) async fn upload_named(
    State(st): State<AppState>,
    UrlPath(filename): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Response {
    upload_request(st, uri, headers, query, Some(filename), body).await
}

async fn upload_request(
    st: AppState,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    default_name: Option<String>,
    mut body: Body,
) -> Response {
    let result = receive_upload(&st, &uri, &headers, query, default_name, &mut body).await;
    match result {
        Ok(response) => response,
        Err(e) => {
            // Let a client still sending read the answer (see DRAIN_LIMIT).
            if !expects_continue(&headers) {
                drain(&mut body).await;
            }
            e.into_response()
        }
    }
}

/// The staged upload and what it said about itself.
type Staged = (Staging, Received);

/// Starts the parser on a blocking thread; returns the channel to feed it.
fn start_receiver(
    st: &AppState,
    encoding: Encoding,
    device: String,
) -> (
    mpsc::Sender<Chunk>,
    tokio::task::JoinHandle<Result<Staged, UploadError>>,
) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let data_dir = st.ingest.data_dir.clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut staging = Staging::new(&data_dir, &device)?;
        let reader = ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
        };
        let received = receive(reader, encoding, &mut staging)?;
        Ok((staging, received))
    });
    (tx, job)
}

async fn receive_upload(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    default_name: Option<String>,
    body: &mut Body,
) -> Result<Response, ApiError> {
    let who = uploader(st, headers).await?;
    let mut params = CaptureParams::default();
    for (k, v) in query_pairs(query)? {
        params.apply(&k, &v)?;
    }
    let device = match &who {
        Uploader::Device(d) => d.name.clone(),
        Uploader::Person(_) => "upload".to_owned(),
    };
    let ctype = content_type(headers);
    let mut default_name = default_name;
    let staged = if ctype.starts_with("multipart/form-data") {
        if content_encoding(headers)? != Encoding::Identity {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                "a multipart body cannot have a Content-Encoding: compress the file in it instead",
            ));
        }
        let boundary = multer::parse_boundary(&ctype)
            .map_err(|e| bad_request(format!("Content-Type {ctype:?}: {e}")))?;
        receive_multipart(
            st,
            device,
            boundary,
            std::mem::take(body),
            &mut params,
            &mut default_name,
        )
        .await?
    } else {
        let encoding = content_encoding(headers)?;
        let (tx, job) = start_receiver(st, encoding, device);
        let pumped = pump_body(body, &tx).await;
        drop(tx);
        let staged = job.await.map_err(ApiError::internal)?;
        match (pumped, staged) {
            (_, Err(e)) => return Err(e.into()),
            (Pumped::Failed, Ok(_)) => {
                return Err(UploadError::Body("the client's body failed".into()).into());
            }
            (_, Ok(staged)) => staged,
        }
    };

    let (staging, received) = staged;
    let org = who.org();
    let name = params
        .name
        .take()
        .or(default_name.filter(|n| captures::check_name(n).is_ok() && !n.is_empty()))
        .unwrap_or_else(|| format!("upload {}", captures::rfc3339(now_ns() as u64)));
    let uploader_device = match &who {
        Uploader::Device(d) => Some(d.id),
        Uploader::Person(_) => None,
    };
    let new = NewCapture {
        kind: CaptureKind::Upload,
        name,
        notes: params.notes.take().unwrap_or_default(),
        tags: std::mem::take(&mut params.tags),
        uploader: uploader_device,
        devices: uploader_device.into_iter().collect(),
        window: None,
        filter: None,
        source: received.source,
        interfaces: Vec::new(),
        stats: CaptureStats::default(),
        dir: None,
        parts: Vec::new(),
    };
    created(st, uri, headers, staging, org, new).await
}

/// Commits a staged capture and answers `201` with it.
async fn created(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    staging: Staging,
    org: OrgId,
    new: NewCapture,
) -> Result<Response, ApiError> {
    let catalogue = st.catalogue.clone();
    let id = tokio::task::spawn_blocking(move || commit(staging, &catalogue, org, new))
        .await
        .map_err(ApiError::internal)??;
    let record = st
        .db(move |c| c.capture(org, id))
        .await?
        .ok_or_else(|| ApiError::internal(format!("capture {id} vanished once recorded")))?;
    let base = captures::base_url(st, headers, uri);
    tracing::info!(
        "capture {id} of organisation {org} stored: {} ({}), {} packets, {} bytes",
        record.name,
        record.source,
        record.stats.packets,
        record.stats.bytes
    );
    let mut answer = captures::capture_json(&record, &base);
    // CloudShark-style clients read these.
    answer["filename"] = json!(record.name);
    let location = answer["metadata_url"].as_str().unwrap_or("").to_owned();
    let mut response = (StatusCode::CREATED, Json(answer)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// A multipart body: text fields are parameters; the part with a file name (or named `file`)
/// is the capture, streamed to the parser as it arrives.
async fn receive_multipart(
    st: &AppState,
    device: String,
    boundary: String,
    body: Body,
    params: &mut CaptureParams,
    default_name: &mut Option<String>,
) -> Result<Staged, ApiError> {
    let bad_multipart = |e: multer::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_multipart",
            format!("the multipart body is malformed: {e}; nothing was stored"),
        )
    };
    let mut mp = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut staged: Option<Staged> = None;
    while let Some(mut field) = mp.next_field().await.map_err(bad_multipart)? {
        let field_name = field.name().unwrap_or("").to_owned();
        let is_file = field.file_name().is_some() || field_name == "file";
        if !is_file {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                text.extend_from_slice(&chunk);
                if text.len() > MAX_FIELD {
                    return Err(bad_request(format!(
                        "field {field_name:?} is longer than {MAX_FIELD} bytes (only the \
                         capture may be large)"
                    )));
                }
            }
            let text = String::from_utf8(text)
                .map_err(|_| bad_request(format!("field {field_name:?} is not UTF-8 text")))?;
            params.apply(&field_name, &text)?;
            continue;
        }
        if staged.is_some() {
            return Err(bad_request(
                "the body holds more than one file: upload one capture per request",
            ));
        }
        if default_name.is_none() {
            *default_name = field.file_name().map(str::to_owned);
        }
        let (tx, job) = start_receiver(st, Encoding::Identity, device.clone());
        let mut failed = None;
        loop {
            match field.chunk().await {
                Ok(Some(data)) => {
                    if tx.send(Chunk::Data(data)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => {
                    let _ = tx.send(Chunk::End).await;
                    break;
                }
                Err(e) => {
                    let _ = tx.send(Chunk::Failed(e.to_string())).await;
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let result = job.await.map_err(ApiError::internal)?;
        match (result, failed) {
            (Err(e), _) => {
                // Read on within limits, so that the client reads the answer.
                let _ = tokio::time::timeout(DRAIN_TIME, async {
                    let mut n = 0u64;
                    while let Ok(Some(c)) = field.chunk().await {
                        n += c.len() as u64;
                        if n > DRAIN_LIMIT {
                            break;
                        }
                    }
                })
                .await;
                return Err(e.into());
            }
            (Ok(_), Some(e)) => return Err(bad_multipart(e)),
            (Ok(s), None) => staged = Some(s),
        }
    }
    staged.ok_or_else(|| {
        bad_request(
            "the multipart body holds no file: send the capture as a part with a file name \
             (curl -F file=@capture.pcap)",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Saving a window.

/// A JSON value as a parameter value: a string as it is, a number as its digits.
fn json_text(key: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad_request(format!(
            "{key}: a string or a number is needed"
        ))),
    }
}

/// `POST /api/v1/captures` with `{"devices": [...], "from", "to", "filter", "name", "tags",
/// "notes"}`: the window's packets, as `GET /api/v1/packets` gives them, saved as a capture.
async fn save_window(
    st: AppState,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Operator).await?.org;
    if !query_pairs(query)?.is_empty() {
        return Err(bad_request(
            "a window is described in the JSON body, not in the query string",
        ));
    }
    let bytes = http_body_util::Limited::new(body, 1 << 20)
        .collect()
        .await
        .map_err(|e| bad_request(format!("the body: {e}")))?
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = v else {
        return Err(bad_request("the body must be a JSON object"));
    };
    let mut pairs = Vec::new();
    let mut params = CaptureParams::default();
    for (key, value) in &fields {
        match key.as_str() {
            "devices" | "device" => {
                let list = match value {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                for d in &list {
                    pairs.push(("device".to_owned(), json_text(key, d)?));
                }
            }
            "from" | "to" => pairs.push((key.clone(), json_text(key, value)?)),
            "filter" => match value {
                Value::Null => {}
                Value::String(f) => pairs.push(("filter".into(), f.clone())),
                _ => return Err(bad_request("filter: a string is needed")),
            },
            "name" | "notes" => match value {
                Value::Null => {}
                Value::String(s) => params.apply(key, s)?,
                _ => return Err(bad_request(format!("{key}: a string is needed"))),
            },
            "tags" => {
                let list = match value {
                    Value::Array(a) => a.clone(),
                    Value::Null => Vec::new(),
                    other => vec![other.clone()],
                };
                for t in &list {
                    let Value::String(t) = t else {
                        return Err(bad_request("tags: a list of strings is needed"));
                    };
                    params.apply("tag", t)?;
                }
            }
            _ => {
                return Err(bad_request(format!(
                    "{key}: unknown field (known: devices, from, to, filter, name, tags, notes)"
                )));
            }
        }
    }
    let request = PullRequest::from_query(&pairs).map_err(ApiError::from)?;
    let (data_dir, catalogue) = (st.ingest.data_dir.clone(), st.catalogue.clone());
    let plan = tokio::task::spawn_blocking(move || Plan::new(&data_dir, &catalogue, org, &request))
        .await
        .map_err(ApiError::internal)??;

    let devices: Vec<_> = plan.devices().to_vec();
    let (from, to, filter) = plan.window();
    let (from_ns, to_ns) = (from.as_nanos(), to.as_nanos());
    let filter = filter.map(str::to_owned);
    let name = params.name.take().unwrap_or_else(|| {
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        format!(
            "{} {}/{}",
            names.join(","),
            captures::rfc3339(from_ns),
            captures::rfc3339(to_ns)
        )
    });
    let data_dir = st.ingest.data_dir.clone();
    let staged = tokio::task::spawn_blocking(move || materialise(&data_dir, plan))
        .await
        .map_err(ApiError::internal)??;
    let new = NewCapture {
        kind: CaptureKind::Window,
        name,
        notes: params.notes.take().unwrap_or_default(),
        tags: std::mem::take(&mut params.tags),
        uploader: None,
        devices: devices.iter().map(|d| d.id).collect(),
        window: Some((from_ns, to_ns)),
        filter,
        source: "trawl retrieval".into(),
        interfaces: Vec::new(),
        stats: CaptureStats::default(),
        dir: None,
        parts: Vec::new(),
    };
    created(&st, &uri, &headers, staged, org, new).await
}

/// Writes a window's retrieval through a pipe into a staging directory.
fn materialise(data_dir: &Path, plan: Plan) -> Result<Staging, ApiError> {
    let (pipe_in, pipe_out) = io::pipe().map_err(ApiError::internal)?;
    let writer =
        std::thread::spawn(move || plan.write(io::BufWriter::with_capacity(256 << 10, pipe_out)));
    let mut staging = Staging::new(data_dir, "window")?;
    let received = receive(pipe_in, Encoding::Identity, &mut staging);
    let written = writer
        .join()
        .map_err(|_| ApiError::internal("the window's reader panicked"))?;
    match (written, received) {
        (Ok(_), Ok(_)) => Ok(staging),
        // The store stopped reading (a full disk…): its error says why.
        (Ok(_) | Err(RetrieveError::Write(_)), Err(e)) => Err(e.into()),
        (Err(e), _) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc4648() {
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ=").unwrap(), b"user:secret");
        assert_eq!(base64_decode("dXNlcjpzZWNyZXQ").unwrap(), b"user:secret");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("a b").is_none());
    }

    #[test]
    fn credentials_from_bearer_or_basic() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            credential(&h).ok()
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        // cpe:tok, and tok: (the token as the user name).
        assert_eq!(with("Basic Y3BlOnRvaw==").as_deref(), Some("tok"));
        assert_eq!(with("basic dG9rOg==").as_deref(), Some("tok"));
        assert_eq!(with("Digest x"), None);
        assert_eq!(with("Bearer "), None);
        let e = credential(&HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn parameters_and_their_aliases() {
        let mut p = CaptureParams::default();
        p.apply("tag", "a").unwrap();
        p.apply("tags", "b, c,,a").unwrap();
        p.apply("additional_tags", "d").unwrap();
        p.apply("comments", "seen at noon").unwrap();
        p.apply("filename", "gw.pcap").unwrap();
        assert_eq!(p.tags, ["a", "b", "c", "d"]);
        assert_eq!(p.notes.as_deref(), Some("seen at noon"));
        assert_eq!(p.name.as_deref(), Some("gw.pcap"));
        assert!(p.apply("notes", "again").is_err());
        assert!(p.apply("tag", "a b").is_err());
        assert!(p.apply("colour", "red").is_err());
    }

    #[test]
    fn reserved_link_type_bits_are_refused_and_fcs_bits_are_not() {
        let header = |field: u32| {
            let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&65535u32.to_le_bytes());
            h.extend_from_slice(&field.to_le_bytes());
            h
        };
        assert!(check_pcap_header(&header(1)).is_ok());
        assert!(check_pcap_header(&header(0x3000_0001)).is_ok());
        assert!(check_pcap_header(&header(0x0030_0001)).is_err());
        assert!(check_pcap_header(b"\x0a\x0d\x0d\x0a").is_ok());
    }
}
