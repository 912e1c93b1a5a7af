//! Flow records into Elasticsearch through its `_bulk` API, each record exactly once.
//!
//! ```text
//! doc(id, json) ──► the bulk being filled (NDJSON: a `create` action with the record's `_id`,
//!                   then its document) ── full (bytes or count), or finish() ──►
//!   POST BASE/_bulk ─┬─ 2xx: each item: 201 indexed · 409 already there (delivered before, its
//!                    │        answer lost) · 429/503, es_rejected_execution_exception: sent
//!                    │        again, alone · anything else: refused for good (counted, the first
//!                    │        reasons kept, written to the rejects file)
//!                    ├─ 429/502/503/504, connection cut, timeout: the same bulk again, after
//!                    │        Retry-After or an exponential backoff with jitter
//!                    ├─ 413: split in halves (one record too large alone: refused)
//!                    └─ any other answer (401, 403, 404, 400 …): an error naming the URL and
//!                             Elasticsearch's reason
//! ```
//!
//! - **Exactly once.** Every record goes as `create` with its own `_id`: a bulk sent again
//!   because its answer was lost (a cut connection, a timeout) cannot index a record twice —
//!   Elasticsearch answers 409 (`version_conflict_engine_exception`) for each record it already
//!   has, and that counts as delivered (`already_present`). The ids must therefore name records
//!   uniquely (a 409 also means "indexed by an earlier run": running the same input twice indexes
//!   nothing new).
//! - **Back-pressure, bounded memory.** The bulk is sent on the caller's thread: `doc` returns
//!   only when the bulk it filled has been delivered (or refused for good), so at most one bulk
//!   (and the copy being sent) is held. A slow or overloaded cluster slows the producer down.
//! - **Nothing dropped silently.** Records Elasticsearch refuses (mapping errors …) are counted,
//!   and `finish` ends with an error saying how many and why ([`EsError`], which carries the
//!   [`EsSummary`]). A cluster that makes no progress for [`EsOptions::give_up_after`] ends the
//!   run with an error saying how many records were indexed and how many were not.

// Used by `trawl flows --es`, wired in the flows command (merged separately).

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use trawl_agent::http::{Trust, blocking_client};

#[cfg(test)]
mod tests;

/// How the sink sends.
#[derive(Clone, Debug)]
pub struct EsOptions {
    /// A bulk is sent when its body reaches this many bytes (a record larger than this alone
    /// goes in a bulk of its own).
    pub bulk_bytes: usize,
    /// ... or this many records.
    pub bulk_docs: usize,
    /// How long one request may take, sending and answering, before it counts as lost and the
    /// bulk is sent again.
    pub timeout: Duration,
    /// The first wait before sending again; doubled at each further attempt ...
    pub backoff_initial: Duration,
    /// ... up to this (each wait is between half of it and all of it, at random).
    pub backoff_max: Duration,
    /// Give up when no record has been delivered (or refused) for this long while retrying.
    pub give_up_after: Duration,
    /// Records Elasticsearch refused, one JSON line each (`_id`, `status`, `error`, `doc`).
    pub rejects: Option<PathBuf>,
    /// How to trust an `https://` cluster's certificate.
    pub trust: Trust,
    /// An API key (`Authorization: ApiKey …`, the base64 form Elasticsearch returns as
    /// `encoded`), instead of a user and password in the URL.
    pub api_key: Option<String>,
    /// Told, in a line, each time the sink waits to send again (why, how many records, how
    /// long): the command prints it, so that a long wait on a busy cluster is not silent.
    pub notify: Option<fn(&str)>,
}

impl Default for EsOptions {
    fn default() -> Self {
        EsOptions {
            bulk_bytes: 5 << 20,
            bulk_docs: 5_000,
            timeout: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(600),
            rejects: None,
            trust: Trust::System,
            api_key: None,
            notify: None,
        }
    }
}

/// What was sent and what became of it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct EsSummary {
    /// Records given to the sink.
    pub docs: u64,
    /// Records Elasticsearch indexed (201).
    pub indexed: u64,
    /// Records Elasticsearch already had (409 on `create`): sent before, by a request whose
    /// answer was lost, or by an earlier run.
    pub already_present: u64,
    /// Records Elasticsearch refused for good.
    pub failed: u64,
    /// HTTP requests made (every attempt).
    pub requests: u64,
    /// Requests sent again whole (429, 502/503/504, cut connections, timeouts, 413 splits).
    pub retried_requests: u64,
    /// Records sent again alone after Elasticsearch rejected them for the moment (429, 503).
    pub retried_items: u64,
    /// Request bodies' bytes, every attempt.
    pub bytes_sent: u64,
    /// The first refusals: `ID: STATUS TYPE: REASON`.
    pub reasons: Vec<String>,
}

impl EsSummary {
    /// Records Elasticsearch has: indexed now or already present.
    pub fn delivered(&self) -> u64 {
        self.indexed + self.already_present
    }

    /// Records given to the sink that Elasticsearch does not have (refused, or not delivered
    /// when the sink stopped).
    pub fn not_indexed(&self) -> u64 {
        self.docs - self.delivered()
    }
}

/// Why the sink stopped, or why some records were not indexed; with the counts so far.
#[derive(Debug)]
pub struct EsError {
    pub summary: EsSummary,
    message: String,
}

impl std::fmt::Display for EsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EsError {}

/// How many refusals the summary keeps.
const KEPT_REASONS: usize = 5;

enum Auth {
    None,
    Basic(String, Option<String>),
    ApiKey(String),
}

/// One record in the bulk: its id and where its two lines are in the body.
struct Item {
    id: String,
    start: usize,
    source: usize,
    end: usize,
}

#[derive(Default)]
struct Bulk {
    body: Vec<u8>,
    items: Vec<Item>,
}

/// Sends flow records to an Elasticsearch index, each exactly once.
pub struct EsSink {
    http: reqwest::blocking::Client,
    bulk_url: Url,
    /// The base URL without credentials, for messages.
    shown: String,
    auth: Auth,
    /// `{"create":{"_index":"INDEX","_id":` — each action line continues with the id.
    action_head: Vec<u8>,
    options: EsOptions,
    bulk: Bulk,
    summary: EsSummary,
    rejects: Option<(PathBuf, BufWriter<File>)>,
    /// Set when the sink stopped: every later call fails with it.
    stopped: Option<String>,
    jitter: RandomState,
    draws: u64,
}

/// What a `_bulk` request came to.
enum Answer {
    Items(Vec<ItemAnswer>),
    Retry {
        why: String,
        after: Option<Duration>,
    },
    TooLarge,
    Fatal(String),
}

#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    items: Vec<HashMap<String, ItemAnswer>>,
}

#[derive(Deserialize)]
struct ItemAnswer {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

impl EsSink {
    /// A sink to `INDEX` on the cluster at `url` (`http[s]://[USER:PASSWORD@]HOST:PORT[/PREFIX]`).
    pub fn new(url: &str, index: &str, options: EsOptions) -> Result<EsSink> {
        let mut base = Url::parse(url.trim())
            .map_err(|e| anyhow!("{url:?}: not a URL ({e}); e.g. http://localhost:9200"))?;
        if !matches!(base.scheme(), "http" | "https") {
            bail!("{url:?}: an Elasticsearch URL starts with http:// or https://");
        }
        check_index(index)?;
        ensure!(
            options.bulk_docs > 0 && options.bulk_bytes > 0,
            "a bulk must hold at least one record"
        );
        let auth = if let Some(key) = &options.api_key {
            Auth::ApiKey(key.trim().to_owned())
        } else if !base.username().is_empty() {
            Auth::Basic(
                percent_decode(base.username()),
                base.password().map(percent_decode),
            )
        } else {
            Auth::None
        };
        // Credentials go in a header, never in messages.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let mut bulk_url = base.join("_bulk").expect("a relative path");
        // Only what is read of the answer: a fifth of its size.
        bulk_url.set_query(Some(
            "filter_path=errors,items.*._id,items.*.status,items.*.error",
        ));
        let http = blocking_client(&options.trust, options.timeout)?;
        let rejects = match &options.rejects {
            Some(path) => {
                let file = File::create(path).with_context(|| {
                    format!("{}: cannot create the rejects file", path.display())
                })?;
                Some((path.clone(), BufWriter::new(file)))
            }
            None => None,
        };
        let mut action_head = br#"{"create":{"_index":"#.to_vec();
        serde_json::to_writer(&mut action_head, index)?;
        action_head.extend_from_slice(br#","_id":"#);
        Ok(EsSink {
            http,
            bulk_url,
            shown,
            auth,
            action_head,
            options,
            bulk: Bulk::default(),
            summary: EsSummary::default(),
            rejects,
            stopped: None,
            jitter: RandomState::new(),
            draws: 0,
        })
    }

    /// One record: its id (unique to the record) and its JSON document. Sends the bulk when it
    /// is full, waiting until it is delivered.
    pub fn doc(&mut self, id: &str, source_json: &str) -> Result<()> {
        if let Some(message) = &self.stopped {
            return Err(self.error(message.clone()));
        }
        ensure!(
            !id.is_empty(),
            "a record without an id cannot be indexed exactly once"
        );
        let source = source_json.trim();
        ensure!(!source.is_empty(), "record {id:?}: the document is empty");
        let mut action = self.action_head.clone();
        serde_json::to_writer(&mut action, id)?;
        action.extend_from_slice(b"}}\n");
        let size = action.len() + source.len() + 1;
        if !self.bulk.items.is_empty() && self.bulk.body.len() + size > self.options.bulk_bytes {
            self.flush_or_stop()?;
        }
        self.summary.docs += 1;
        let body = &mut self.bulk.body;
        let start = body.len();
        body.extend_from_slice(&action);
        let at = body.len();
        // A line break inside JSON can only be white space between tokens (in strings it is
        // escaped): a pretty-printed document becomes one line.
        body.extend(source.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
        body.push(b'\n');
        self.bulk.items.push(Item {
            id: id.to_owned(),
            start,
            source: at,
            end: body.len(),
        });
        if self.bulk.items.len() >= self.options.bulk_docs
            || self.bulk.body.len() >= self.options.bulk_bytes
        {
            self.flush_or_stop()?;
        }
        Ok(())
    }

    /// Sends what is left; the summary, or an error if any record was not indexed.
    pub fn finish(mut self) -> Result<EsSummary> {
        if let Some(message) = self.stopped.take() {
            return Err(self.error(message));
        }
        self.flush_or_stop()?;
        let mut written = String::new();
        if let Some((path, out)) = &mut self.rejects {
            out.flush()
                .with_context(|| format!("{}: cannot write the rejects file", path.display()))?;
            written = format!("; they are in {}", path.display());
        }
        let s = &self.summary;
        if s.failed > 0 {
            let more = if s.failed as usize > s.reasons.len() {
                " …"
            } else {
                ""
            };
            let message = format!(
                "Elasticsearch at {} refused {} of {} records, which were not indexed ({}{more}){written}; {} indexed",
                self.shown,
                s.failed,
                s.docs,
                s.reasons.join("; "),
                s.delivered()
            );
            return Err(self.error_as_is(message));
        }
        Ok(self.summary)
    }

    /// The counts so far.
    #[cfg(test)]
    pub fn summary(&self) -> &EsSummary {
        &self.summary
    }

    fn flush_or_stop(&mut self) -> Result<()> {
        if let Err(message) = self.flush() {
            self.stopped = Some(message.clone());
            return Err(self.error(message));
        }
        Ok(())
    }

    /// An error that stopped the sink, with the counts.
    fn error(&self, message: String) -> anyhow::Error {
        let s = &self.summary;
        let refused = if s.failed > 0 {
            format!(" ({} of them refused by Elasticsearch)", s.failed)
        } else {
            String::new()
        };
        self.error_as_is(format!(
            "Elasticsearch at {}: {message}; {} of {} records indexed ({} of them already there), {} not indexed{refused}",
            self.shown,
            s.delivered(),
            s.docs,
            s.already_present,
            s.not_indexed(),
        ))
    }

    fn error_as_is(&self, message: String) -> anyhow::Error {
        anyhow::Error::new(EsError {
            summary: self.summary.clone(),
            message,
        })
    }

    /// Delivers the bulk: every record indexed, already present or refused for good; or the
    /// reason the sink must stop.
    fn flush(&mut self) -> Result<(), String> {
        if self.bulk.items.is_empty() {
            return Ok(());
        }
        let bulk = std::mem::take(&mut self.bulk);
        let mut progress = Instant::now();
        // Groups of records still to send (a 413 splits one in two).
        let mut groups = vec![(0..bulk.items.len()).collect::<Vec<_>>()];
        while let Some(group) = groups.pop() {
            self.deliver(&bulk, group, &mut groups, &mut progress)?;
        }
        let Bulk {
            mut body,
            mut items,
        } = bulk;
        body.clear();
        items.clear();
        self.bulk = Bulk { body, items };
        Ok(())
    }

    fn deliver(
        &mut self,
        bulk: &Bulk,
        mut todo: Vec<usize>,
        groups: &mut Vec<Vec<usize>>,
        progress: &mut Instant,
    ) -> Result<(), String> {
        let mut attempt = 0u32;
        loop {
            let body = if todo.len() == bulk.items.len() {
                bulk.body.clone()
            } else {
                let mut body = Vec::new();
                for &i in &todo {
                    let item = &bulk.items[i];
                    body.extend_from_slice(&bulk.body[item.start..item.end]);
                }
                body
            };
            self.summary.requests += 1;
            self.summary.bytes_sent += body.len() as u64;
            let (why, after, whole) = match self.post(body) {
                Answer::Items(answers) => {
                    if answers.len() != todo.len() {
                        return Err(format!(
                            "answered {} items to a bulk of {} records",
                            answers.len(),
                            todo.len()
                        ));
                    }
                    let mut again = Vec::new();
                    let mut why = String::new();
                    let mut settled = false;
                    for (&i, answer) in todo.iter().zip(answers) {
                        let item = &bulk.items[i];
                        if let Some(id) = &answer.id
                            && *id != item.id
                        {
                            return Err(format!(
                                "answered for id {id:?} where the bulk had {:?}",
                                item.id
                            ));
                        }
                        match answer.status {
                            200 | 201 => self.summary.indexed += 1,
                            409 => self.summary.already_present += 1,
                            status if transient(status, answer.error.as_ref()) => {
                                if why.is_empty() {
                                    why = format!(
                                        "records rejected for now: {status} {}",
                                        describe(answer.error.as_ref())
                                    );
                                }
                                again.push(i);
                                continue;
                            }
                            status => self.refuse(bulk, i, status, answer.error.as_ref())?,
                        }
                        settled = true;
                    }
                    if settled {
                        *progress = Instant::now();
                    }
                    if again.is_empty() {
                        return Ok(());
                    }
                    todo = again;
                    (why, None, false)
                }
                Answer::Retry { why, after } => (why, after, true),
                Answer::TooLarge if todo.len() > 1 => {
                    self.summary.retried_requests += 1;
                    let second = todo.split_off(todo.len() / 2);
                    groups.push(second);
                    groups.push(todo);
                    return Ok(());
                }
                Answer::TooLarge => {
                    let error = serde_json::json!({
                        "type": "request_entity_too_large",
                        "reason": "the record alone is larger than the cluster accepts \
                                   (http.max_content_length)",
                    });
                    self.refuse(bulk, todo[0], 413, Some(&error))?;
                    *progress = Instant::now();
                    return Ok(());
                }
                Answer::Fatal(message) => return Err(message),
            };
            self.wait(attempt, after, *progress, &why, todo.len())?;
            if whole {
                self.summary.retried_requests += 1;
            } else {
                self.summary.retried_items += todo.len() as u64;
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// One `_bulk` request.
    fn post(&self, body: Vec<u8>) -> Answer {
        let request = self
            .http
            .post(self.bulk_url.clone())
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        let request = match &self.auth {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, password.as_ref()),
            Auth::ApiKey(key) => request.header(AUTHORIZATION, format!("ApiKey {key}")),
        };
        let response = match request.send() {
            Ok(r) => r,
            Err(e) => {
                let text = chain(&e);
                if e.is_builder() || text.contains("certificate") {
                    return Answer::Fatal(format!("cannot connect: {text}"));
                }
                let what = if e.is_timeout() {
                    "no answer in time"
                } else {
                    "connection failed"
                };
                return Answer::Retry {
                    why: format!("{what}: {text}"),
                    after: None,
                };
            }
        };
        let status = response.status();
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes() {
            Ok(b) => b,
            Err(e) => {
                return Answer::Retry {
                    why: format!("the answer was cut off: {}", chain(&e)),
                    after: None,
                };
            }
        };
        if status.is_success() {
            return match serde_json::from_slice::<BulkAnswer>(&body) {
                Ok(answer) => Answer::Items(
                    answer
                        .items
                        .into_iter()
                        .filter_map(|item| item.into_values().next())
                        .collect(),
                ),
                Err(e) => Answer::Fatal(format!(
                    "answered {status} with something that is not a _bulk answer ({e}): {}",
                    snippet(&body)
                )),
            };
        }
        match status.as_u16() {
            429 | 502 | 503 | 504 => Answer::Retry {
                why: format!("{status}: {}", es_reason(&body)),
                after,
            },
            413 => Answer::TooLarge,
            _ => Answer::Fatal(format!("answered {status}: {}", es_reason(&body))),
        }
    }

    /// Waits before sending again, or gives up when nothing has been settled for too long.
    fn wait(
        &mut self,
        attempt: u32,
        after: Option<Duration>,
        progress: Instant,
        why: &str,
        pending: usize,
    ) -> Result<(), String> {
        let stalled = progress.elapsed();
        let limit = self.options.give_up_after;
        if stalled >= limit {
            return Err(format!(
                "no progress for {:.1?}, giving up (last: {why})",
                stalled
            ));
        }
        let delay = after
            .unwrap_or_else(|| self.backoff(attempt))
            .min(limit - stalled);
        if let Some(notify) = self.options.notify {
            notify(&format!(
                "Elasticsearch at {}: {why}; sending {pending} records again in {delay:.1?}",
                self.shown
            ));
        }
        std::thread::sleep(delay);
        Ok(())
    }

    /// The wait before attempt `attempt + 1`: `backoff_initial × 2^attempt`, capped at
    /// `backoff_max`, of which a random half is waived.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let full = self
            .options
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.options.backoff_max);
        self.draws += 1;
        let unit = (self.jitter.hash_one(self.draws) >> 11) as f64 / (1u64 << 53) as f64;
        full.mul_f64(0.5 + 0.5 * unit)
    }

    /// A record refused for good: counted, its reason kept, written to the rejects file.
    fn refuse(
        &mut self,
        bulk: &Bulk,
        i: usize,
        status: u16,
        error: Option<&Value>,
    ) -> Result<(), String> {
        let item = &bulk.items[i];
        self.summary.failed += 1;
        if self.summary.reasons.len() < KEPT_REASONS {
            self.summary
                .reasons
                .push(format!("{}: {status} {}", item.id, describe(error)));
        }
        if let Some((path, out)) = &mut self.rejects {
            let doc = &bulk.body[item.source..item.end - 1];
            let mut line = br#"{"_id":"#.to_vec();
            serde_json::to_writer(&mut line, &item.id).expect("a string");
            line.extend_from_slice(format!(r#","status":{status},"error":"#).as_bytes());
            serde_json::to_writer(&mut line, &error).expect("a JSON value");
            if serde_json::from_slice::<serde::de::IgnoredAny>(doc).is_ok() {
                line.extend_from_slice(br#","doc":"#);
                line.extend_from_slice(doc);
            } else {
                line.extend_from_slice(br#","doc_text":"#);
                serde_json::to_writer(&mut line, &String::from_utf8_lossy(doc)).expect("a string");
            }
            line.extend_from_slice(b"}\n");
            out.write_all(&line).map_err(|e| {
                format!(
                    "{}: cannot write a refused record there: {e}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }
}

/// Whether an item's refusal is for the moment (the cluster busy or a shard unavailable).
fn transient(status: u16, error: Option<&Value>) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
        || error
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "es_rejected_execution_exception")
}

/// `TYPE: REASON (caused by TYPE: REASON)` of an Elasticsearch error object.
fn describe(error: Option<&Value>) -> String {
    fn one(e: &Value) -> String {
        match e {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or("error");
                match o.get("reason").and_then(Value::as_str) {
                    Some(reason) => format!("{kind}: {reason}"),
                    None => kind.to_owned(),
                }
            }
            other => other.to_string(),
        }
    }
    match error {
        None => "no reason given".to_owned(),
        Some(e) => match e.get("caused_by") {
            Some(cause) => format!("{} (caused by {})", one(e), one(cause)),
            None => one(e),
        },
    }
}

/// The reason in an Elasticsearch error answer (`{"error":{"type":…,"reason":…},"status":…}`),
/// or the start of the body.
fn es_reason(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some() => describe(v.get("error")),
        _ if body.iter().all(u8::is_ascii_whitespace) => "(no explanation)".to_owned(),
        _ => snippet(body),
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(300)
        .collect()
}

/// An error and its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Index names Elasticsearch accepts (date math, `<flows-{now/d}>`, is left to it).
fn check_index(index: &str) -> Result<()> {
    if index.starts_with('<') && index.ends_with('>') {
        return Ok(());
    }
    let bad = index.is_empty()
        || index.len() > 255
        || index == "."
        || index == ".."
        || index.starts_with(['-', '_', '+'])
        || index
            .chars()
            .any(|c| c.is_uppercase() || r#"\/*?"<>| ,#:"#.contains(c));
    if bad {
        bail!(
            "{index:?}: not an Elasticsearch index name (lower case, no spaces or any of \
             \\ / * ? \" < > | , # :, not starting with - _ +)"
        );
    }
    Ok(())
}

/// `%XX` escapes of a URL's user or password.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
