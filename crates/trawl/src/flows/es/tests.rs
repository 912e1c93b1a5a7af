//! The sink against a fake `_bulk` endpoint: a real HTTP/1.1 server on 127.0.0.1 that reads the
//! NDJSON as Elasticsearch does (an action line, then the document), keeps the documents by id
//! with `create` semantics (409 for an id it has), maps `bytes` as a number (anything else is a
//! 400 `mapper_parsing_exception`), and can be scripted to fail requests and items.

use super::*;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

/// What the endpoint does with one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// As Elasticsearch would.
    None,
    /// The whole request answered with this status (and `Retry-After` seconds); nothing indexed.
    Status(u16, Option<u64>),
    /// Everything indexed, then the connection closed without an answer.
    LoseAnswer,
    /// Everything indexed, then no answer for this long (past the client's timeout), then closed.
    Stall(Duration),
    /// The request read, nothing indexed, the connection closed.
    Hangup,
    /// The records at positions 0, `every`, 2×`every` … of the request rejected for the moment
    /// with this status (429 `es_rejected_execution_exception`, 503
    /// `unavailable_shards_exception`); the others as usual.
    RejectItems { every: usize, status: u16 },
}

#[derive(Default)]
struct State {
    /// What Elasticsearch has: id → document.
    docs: HashMap<String, String>,
    /// How often each id came in a `create`.
    sent: HashMap<String, u32>,
    /// Faults for the next requests, in order; then `otherwise`.
    script: VecDeque<Fault>,
    otherwise: Option<Fault>,
    /// Requests read whole, with when they arrived and what was done with them.
    requests: Vec<(Instant, Fault)>,
    /// Counts over the answers actually written back.
    created_answered: u64,
    conflicts_answered: u64,
    transient_items_answered: u64,
    refused_answered: u64,
    /// Requests not answered as Elasticsearch would (scripted whole-request faults).
    whole_faults: u64,
    /// The largest request, in records and bytes.
    most_records: usize,
    most_bytes: usize,
    /// Anything the client sent that Elasticsearch would not take.
    violations: Vec<String>,
    /// `Authorization` required, if any.
    auth: Option<String>,
    /// The path of `_bulk` (a prefix behind a proxy).
    path: String,
    /// Bodies larger than this are answered 413.
    max_body: Option<usize>,
}

struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn start(script: Vec<Fault>) -> Fake {
        Fake::serve(script, None)
    }

    /// Over TLS with this configuration (HTTP/1.1 only).
    fn serve(script: Vec<Fault>, tls: Option<Arc<rustls::ServerConfig>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            path: "/_bulk".into(),
            ..State::default()
        }));
        let shared = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => connection(conn, &state),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        connection(rustls::StreamOwned::new(session, conn), &state)
                    }
                });
            }
        });
        Fake { url, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

enum Reply {
    Answer(u16, Vec<(&'static str, String)>, String),
    Close,
    CloseAfter(Duration),
}

/// One connection: HTTP/1.1 requests with a `Content-Length`, kept alive.
fn connection<S: Read + Write>(stream: S, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let target = words.next().unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        match handle(state, &method, &target, &headers, &body) {
            Reply::Answer(status, extra, text) => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    text.len()
                );
                for (name, value) in extra {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&text);
                let writer = reader.get_mut();
                if writer.write_all(out.as_bytes()).is_err() || writer.flush().is_err() {
                    return;
                }
            }
            Reply::Close => return,
            Reply::CloseAfter(pause) => {
                thread::sleep(pause);
                return;
            }
        }
    }
}

fn es_error(status: u16, kind: &str, reason: &str) -> String {
    serde_json::json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    })
    .to_string()
}

fn handle(
    state: &Mutex<State>,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Reply {
    let mut s = state.lock().unwrap();
    let path = target.split('?').next().unwrap_or("");
    if method != "POST" || path != s.path {
        let reason = format!("no handler found for uri [{target}] and method [{method}]");
        return Reply::Answer(
            404,
            vec![],
            es_error(404, "illegal_argument_exception", &reason),
        );
    }
    if s.auth.is_some() && headers.get("authorization") != s.auth.as_ref() {
        let reason = "unable to authenticate user [elastic] for REST request [/_bulk]";
        return Reply::Answer(
            401,
            vec![("www-authenticate", "Basic realm=\"security\"".into())],
            es_error(401, "security_exception", reason),
        );
    }
    if s.max_body.is_some_and(|max| body.len() > max) {
        s.requests.push((Instant::now(), Fault::None));
        return Reply::Answer(413, vec![], String::new());
    }
    let fault = s.script.pop_front().or(s.otherwise).unwrap_or(Fault::None);
    s.requests.push((Instant::now(), fault));
    match headers.get("content-type").map(String::as_str) {
        Some("application/x-ndjson") | Some("application/json") => {}
        other => s.violations.push(format!("content type {other:?}")),
    }
    match fault {
        Fault::Status(status, retry_after) => {
            s.whole_faults += 1;
            let extra = retry_after
                .map(|secs| vec![("retry-after", secs.to_string())])
                .unwrap_or_default();
            let (kind, reason) = if status == 429 {
                (
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation",
                )
            } else {
                ("unavailable", "the cluster is not available")
            };
            return Reply::Answer(status, extra, es_error(status, kind, reason));
        }
        Fault::Hangup => {
            s.whole_faults += 1;
            return Reply::Close;
        }
        _ => {}
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) if t.ends_with('\n') => t,
        _ => {
            s.violations
                .push("a body not ending with a line break".into());
            let reason = "The bulk request must be terminated by a newline [\\n]";
            return Reply::Answer(
                400,
                vec![],
                es_error(400, "illegal_argument_exception", reason),
            );
        }
    };
    let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
    if !lines.len().is_multiple_of(2) {
        s.violations.push("an action without a document".into());
        return Reply::Answer(
            400,
            vec![],
            es_error(400, "illegal_argument_exception", "odd"),
        );
    }
    s.most_records = s.most_records.max(lines.len() / 2);
    s.most_bytes = s.most_bytes.max(body.len());
    let mut items = Vec::new();
    let mut created = 0;
    let mut conflicts = 0;
    let mut transient = 0;
    let mut refused = 0;
    for (k, pair) in lines.chunks(2).enumerate() {
        let action: Value = serde_json::from_str(pair[0]).unwrap_or(Value::Null);
        let Some(create) = action
            .get("create")
            .filter(|_| action.as_object().unwrap().len() == 1)
        else {
            s.violations
                .push(format!("not a create action: {}", pair[0]));
            continue;
        };
        let index = create.get("_index").and_then(Value::as_str).unwrap_or("");
        if index != "flows" {
            s.violations.push(format!("index {index:?}"));
        }
        let Some(id) = create.get("_id").and_then(Value::as_str) else {
            s.violations.push(format!("no _id: {}", pair[0]));
            continue;
        };
        *s.sent.entry(id.to_owned()).or_default() += 1;
        let item = |status: u16, error: Option<Value>| {
            let mut item = serde_json::json!({"_index": "flows", "_id": id, "status": status});
            match error {
                Some(e) => item["error"] = e,
                None => {
                    item["result"] = "created".into();
                    item["_version"] = 1.into();
                }
            }
            serde_json::json!({ "create": item })
        };
        if let Fault::RejectItems { every, status } = fault
            && k.is_multiple_of(every)
        {
            transient += 1;
            let kind = if status == 429 {
                "es_rejected_execution_exception"
            } else {
                "unavailable_shards_exception"
            };
            let reason = "rejected execution of primary operation [queue capacity = 200]";
            items.push(item(
                status,
                Some(serde_json::json!({"type": kind, "reason": reason})),
            ));
            continue;
        }
        if s.docs.contains_key(id) {
            conflicts += 1;
            let reason =
                format!("[{id}]: version conflict, document already exists (current version [1])");
            let error =
                serde_json::json!({"type": "version_conflict_engine_exception", "reason": reason});
            items.push(item(409, Some(error)));
            continue;
        }
        let doc: Result<Value, _> = serde_json::from_str(pair[1]);
        let bad_bytes = doc
            .as_ref()
            .ok()
            .and_then(|d| d.get("bytes"))
            .filter(|b| !b.is_number());
        if doc.as_ref().map_or(true, |d| !d.is_object()) || bad_bytes.is_some() {
            refused += 1;
            let preview = bad_bytes.map(|b| b.to_string()).unwrap_or_default();
            let error = serde_json::json!({
                "type": "mapper_parsing_exception",
                "reason": format!("failed to parse field [bytes] of type [long] in document with id '{id}'. Preview of field's value: '{preview}'"),
                "caused_by": {"type": "illegal_argument_exception", "reason": format!("For input string: {preview}")},
            });
            items.push(item(400, Some(error)));
            continue;
        }
        created += 1;
        s.docs.insert(id.to_owned(), pair[1].to_owned());
        items.push(item(201, None));
    }
    match fault {
        Fault::LoseAnswer => {
            s.whole_faults += 1;
            return Reply::Close;
        }
        Fault::Stall(pause) => {
            s.whole_faults += 1;
            return Reply::CloseAfter(pause);
        }
        _ => {}
    }
    s.created_answered += created;
    s.conflicts_answered += conflicts;
    s.transient_items_answered += transient;
    s.refused_answered += refused;
    let errors = conflicts + transient + refused > 0;
    Reply::Answer(
        200,
        vec![],
        serde_json::json!({"took": 3, "errors": errors, "items": items}).to_string(),
    )
}

/// Options for tests: short waits.
fn quick() -> EsOptions {
    EsOptions {
        bulk_bytes: 64 << 10,
        bulk_docs: 400,
        timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(20),
        give_up_after: Duration::from_secs(30),
        ..EsOptions::default()
    }
}

/// Record `i`: a flow-like document; `bad` ones have a `bytes` that is not a number.
fn record(i: usize, bad: bool) -> (String, String) {
    let id = format!("flow-{i:06}");
    let bytes = if bad {
        r#""lots""#.to_owned()
    } else {
        (i * 1_517 % 100_000).to_string()
    };
    let doc = format!(
        r#"{{"src":"10.{}.{}.{}","dst":"192.0.2.{}","proto":"tcp","sport":{},"dport":443,"packets":{},"bytes":{bytes},"first":"2024-03-01T12:00:{:02}Z","note":"µ \"quoted\" {i}"}}"#,
        i % 200,
        i / 200 % 250,
        i % 251,
        i % 254,
        1024 + i % 60_000,
        1 + i % 97,
        i % 60
    );
    (id, doc)
}

/// Every transient fault, twice, among requests answered normally.
fn every_transient_fault() -> Vec<Fault> {
    use Fault::*;
    let round = |retry_after: Option<u64>| {
        vec![
            None,
            Status(429, Option::None),
            Status(429, retry_after),
            None,
            Status(503, Option::None),
            LoseAnswer,
            RejectItems {
                every: 7,
                status: 429,
            },
            None,
            Status(502, Option::None),
            Status(504, Option::None),
            Hangup,
            RejectItems {
                every: 5,
                status: 503,
            },
            // Rejections on the retry of rejected records too.
            RejectItems {
                every: 2,
                status: 429,
            },
            RejectItems {
                every: 3,
                status: 429,
            },
            None,
            LoseAnswer,
            RejectItems {
                every: 1,
                status: 429,
            },
            None,
        ]
    };
    let mut script = round(Some(1));
    script.push(Stall(Duration::from_secs(4)));
    script.extend(round(Option::None));
    script
}

#[test]
fn every_record_once_through_every_transient_fault() {
    const N: usize = 12_000;
    let script = every_transient_fault();
    let scripted = script.len();
    let whole = script
        .iter()
        .filter(|f| !matches!(f, Fault::None | Fault::RejectItems { .. }))
        .count() as u64;
    let fake = Fake::start(script);
    let mut sink = EsSink::new(&fake.url, "flows", quick()).unwrap();
    for i in 0..N {
        let (id, doc) = record(i, false);
        sink.doc(&id, &doc).unwrap();
    }
    let summary = sink.finish().unwrap();

    let s = fake.state();
    assert!(s.violations.is_empty(), "{:?}", s.violations);
    assert!(s.script.is_empty(), "every scripted fault was met");
    assert_eq!(s.docs.len(), N, "every record in the index");
    for i in 0..N {
        let (id, doc) = record(i, false);
        assert_eq!(s.docs.get(&id), Some(&doc), "{id}");
    }
    // Sent more than once: the lost answers' records (answered 409 afterwards) and the rejected.
    assert!(s.sent.values().any(|&n| n > 1));

    assert_eq!(summary.docs, N as u64);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.delivered(), N as u64);
    assert_eq!(summary.indexed, s.created_answered);
    assert_eq!(summary.already_present, s.conflicts_answered);
    assert!(summary.already_present > 0, "answers were lost");
    assert_eq!(summary.requests, s.requests.len() as u64);
    assert_eq!(summary.retried_requests, s.whole_faults);
    assert_eq!(summary.retried_items, s.transient_items_answered);
    assert_eq!(s.whole_faults, whole);
    assert_eq!(
        whole, 17,
        "429 ×4, 503 ×2, 502 ×2, 504 ×2, hang-ups ×2, lost ×4, stalled ×1"
    );
    assert!(summary.requests as usize > scripted);

    // Bulks stay within their bounds (the byte bound is the one reached with these records).
    assert!(s.most_bytes <= 64 << 10, "{}", s.most_bytes);
    assert!(s.most_records <= 400);
    assert!(s.most_records > 100, "bulks are filled");

    // Retry-After: 1 was honoured.
    let at = s
        .requests
        .iter()
        .position(|(_, f)| *f == Fault::Status(429, Some(1)))
        .unwrap();
    let waited = s.requests[at + 1].0 - s.requests[at].0;
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
}

#[test]
fn refused_records_are_counted_named_and_kept_and_nothing_else_is_lost() {
    const N: usize = 3_000;
    let bad = |i: usize| i % 250 == 7;
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    use Fault::*;
    let fake = Fake::start(vec![
        Status(429, Option::None),
        None,
        LoseAnswer,
        RejectItems {
            every: 4,
            status: 429,
        },
        None,
        LoseAnswer,
    ]);
    let options = EsOptions {
        rejects: Some(rejects.clone()),
        ..quick()
    };
    let mut sink = EsSink::new(&fake.url, "flows", options).unwrap();
    for i in 0..N {
        let (id, doc) = record(i, bad(i));
        sink.doc(&id, &doc).unwrap();
    }
    let error = sink.finish().unwrap_err();
    let text = error.to_string();
    let refused = (0..N).filter(|&i| bad(i)).count();
    assert_eq!(refused, 12);
    assert!(text.contains("refused 12 of 3000 records"), "{text}");
    assert!(
        text.contains("flow-000007: 400 mapper_parsing_exception: failed to parse field [bytes]"),
        "{text}"
    );
    assert!(
        text.contains("caused by illegal_argument_exception"),
        "{text}"
    );
    assert!(text.contains(&*rejects.to_string_lossy()), "{text}");
    assert!(text.contains("2988 indexed"), "{text}");
    let summary = &error.downcast_ref::<EsError>().unwrap().summary;

    let s = fake.state();
    assert!(s.violations.is_empty(), "{:?}", s.violations);
    assert!(s.script.is_empty());
    assert_eq!(s.docs.len(), N - refused);
    for i in 0..N {
        let (id, doc) = record(i, bad(i));
        assert_eq!(s.docs.get(&id), (!bad(i)).then_some(&doc), "{id}");
    }
    assert_eq!(summary.failed, refused as u64);
    assert_eq!(summary.delivered(), (N - refused) as u64);
    assert_eq!(summary.not_indexed(), refused as u64);
    assert_eq!(summary.indexed, s.created_answered);
    assert_eq!(summary.already_present, s.conflicts_answered);
    // Each refusal reached the client once (one lost with an answer was refused again).
    assert_eq!(s.refused_answered, refused as u64);
    assert_eq!(summary.reasons.len(), 5);

    let kept = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<Value> = kept
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), refused);
    for (line, i) in lines.iter().zip((0..N).filter(|&i| bad(i))) {
        let (id, doc) = record(i, true);
        assert_eq!(line["_id"], id.as_str());
        assert_eq!(line["status"], 400);
        assert_eq!(line["error"]["type"], "mapper_parsing_exception");
        assert_eq!(line["doc"], serde_json::from_str::<Value>(&doc).unwrap());
    }
}

#[test]
fn credentials_prefix_and_pretty_documents() {
    let fake = Fake::start(vec![]);
    {
        let mut s = fake.state();
        s.auth = Some("Basic ZWxhc3RpYzpzZWNyZXQ=".into()); // elastic:secret
        s.path = "/es/_bulk".into();
    }
    let port = fake.url.rsplit(':').next().unwrap();
    // The password percent-encoded in the URL, as it must be when it has reserved characters.
    let url = format!("http://elastic:s%65cret@127.0.0.1:{port}/es");
    let mut sink = EsSink::new(&url, "flows", quick()).unwrap();
    sink.doc("a", "{\n  \"bytes\": 1,\n  \"note\": \"two\\nlines\"\n}\n")
        .unwrap();
    sink.doc("b", r#"{"bytes":2}"#).unwrap();
    let summary = sink.finish().unwrap();
    assert_eq!((summary.indexed, summary.requests), (2, 1));
    let s = fake.state();
    assert!(s.violations.is_empty(), "{:?}", s.violations);
    let a: Value = serde_json::from_str(&s.docs["a"]).unwrap();
    assert_eq!(a["note"], "two\nlines");
}

#[test]
fn whole_request_refusals_fail_at_once_with_the_reason() {
    let fake = Fake::start(vec![]);
    fake.state().auth = Some("Basic ZWxhc3RpYzpzZWNyZXQ=".into());
    let port = fake.url.rsplit(':').next().unwrap();

    let started = Instant::now();
    let url = format!("http://elastic:wrong@127.0.0.1:{port}");
    let mut sink = EsSink::new(&url, "flows", quick()).unwrap();
    for i in 0..10 {
        let (id, doc) = record(i, false);
        sink.doc(&id, &doc).unwrap();
    }
    let text = sink.finish().unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        text,
        format!(
            "Elasticsearch at http://127.0.0.1:{port}: answered 401 Unauthorized: \
             security_exception: unable to authenticate user [elastic] for REST request \
             [/_bulk]; 0 of 10 records indexed (0 of them already there), 10 not indexed"
        )
    );
    assert!(!text.contains("wrong"), "no password in messages");

    // Not Elasticsearch's path (a wrong prefix): 404. Once stopped, the sink stays stopped.
    let options = EsOptions {
        bulk_docs: 5,
        ..quick()
    };
    let mut sink = EsSink::new(&format!("{}/nowhere", fake.url), "flows", options).unwrap();
    for i in 0..4 {
        let (id, doc) = record(i, false);
        sink.doc(&id, &doc).unwrap();
    }
    let (id, doc) = record(4, false);
    let text = sink.doc(&id, &doc).unwrap_err().to_string();
    assert!(
        text.contains(&format!("{}/nowhere: answered 404 Not Found", fake.url)),
        "{text}"
    );
    assert!(
        text.contains("no handler found for uri [/nowhere/_bulk"),
        "{text}"
    );
    assert!(sink.doc("x", "{}").is_err());
    assert!(sink.finish().unwrap_err().to_string().contains("404"));
    assert_eq!(
        fake.state().requests.len(),
        0,
        "no request reached the scripted part"
    );
    assert!(fake.state().docs.is_empty());
}

#[test]
fn no_progress_ends_with_the_counts() {
    static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let fake = Fake::start(vec![Fault::None]);
    fake.state().otherwise = Some(Fault::Status(503, Option::None));
    let options = EsOptions {
        bulk_docs: 3,
        give_up_after: Duration::from_millis(300),
        notify: Some(|line| NOTICES.lock().unwrap().push(line.to_owned())),
        ..quick()
    };
    let mut sink = EsSink::new(&fake.url, "flows", options).unwrap();
    let started = Instant::now();
    let mut stopped = None;
    for i in 0..5 {
        let (id, doc) = record(i, false);
        if let Err(e) = sink.doc(&id, &doc) {
            stopped = Some(e);
        }
    }
    // The first bulk (3) went through; the second waits until finish, and never goes.
    assert!(stopped.is_none());
    assert_eq!(sink.summary().indexed, 3);
    let error = sink.finish().unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3));
    let text = error.to_string();
    assert!(text.contains("no progress for"), "{text}");
    assert!(
        text.contains("503 Service Unavailable: unavailable"),
        "{text}"
    );
    assert!(text.contains("3 of 5 records indexed"), "{text}");
    assert!(text.contains("2 not indexed"), "{text}");
    let summary = &error.downcast_ref::<EsError>().unwrap().summary;
    assert_eq!(summary.not_indexed(), 2);
    assert_eq!(fake.state().docs.len(), 3);
    let notices = NOTICES.lock().unwrap();
    // Every wait was told; the last failure was not followed by one.
    assert_eq!(notices.len() as u64, summary.retried_requests);
    assert_eq!(summary.requests, summary.retried_requests + 2);
    assert!(
        notices[0].starts_with(&format!(
            "Elasticsearch at {}: 503 Service Unavailable: unavailable: the cluster is not \
             available; sending 2 records again in ",
            fake.url
        )),
        "{}",
        notices[0]
    );
}

#[test]
fn too_large_bulks_are_split_and_a_record_too_large_alone_refused() {
    let fake = Fake::start(vec![]);
    fake.state().max_body = Some(2_000);
    let options = EsOptions {
        bulk_bytes: 1 << 20,
        ..quick()
    };
    let mut sink = EsSink::new(&fake.url, "flows", options).unwrap();
    for i in 0..100 {
        let (id, doc) = record(i, false);
        sink.doc(&id, &doc).unwrap();
    }
    let huge = format!(r#"{{"bytes":1,"note":"{}"}}"#, "x".repeat(3_000));
    sink.doc("huge", &huge).unwrap();
    let error = sink.finish().unwrap_err();
    let text = error.to_string();
    assert!(text.contains("refused 1 of 101 records"), "{text}");
    assert!(
        text.contains("huge: 413 request_entity_too_large"),
        "{text}"
    );
    let summary = &error.downcast_ref::<EsError>().unwrap().summary;
    assert_eq!(summary.indexed, 100);
    let s = fake.state();
    assert_eq!(s.docs.len(), 100);
    assert!(s.most_bytes <= 2_000);
}

#[test]
fn options_and_names_are_checked() {
    assert!(EsSink::new("localhost:9200", "flows", quick()).is_err());
    assert!(EsSink::new("ftp://h", "flows", quick()).is_err());
    for bad in ["", "Flows", "_flows", "a b", "a/b", "a,b"] {
        assert!(
            EsSink::new("http://h:9200", bad, quick()).is_err(),
            "{bad:?}"
        );
    }
    assert!(EsSink::new("http://h:9200", "<flows-{now/d}>", quick()).is_ok());
    assert_eq!(percent_decode("p%40ss%3Aw%zz%4"), "p@ss:w%zz%4");
}

#[test]
fn backoff_doubles_within_its_cap_with_jitter() {
    let options = EsOptions {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(30),
        ..EsOptions::default()
    };
    let mut sink = EsSink::new("http://127.0.0.1:9", "flows", options).unwrap();
    for attempt in 0..40 {
        let full = Duration::from_millis(100u64 << attempt.min(20)).min(Duration::from_secs(30));
        let wait = sink.backoff(attempt);
        assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
    }
    let waits: Vec<_> = (0..8).map(|_| sink.backoff(10)).collect();
    assert!(waits.windows(2).any(|w| w[0] != w[1]), "jittered");
}

#[test]
fn https_with_the_clusters_certificate_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let files = trawl_server::tls::TlsFiles::in_dir(dir.path());
    trawl_server::tls::ensure_self_signed(&files, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = (*trawl_server::tls::server_config(&files).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let fake = Fake::serve(vec![Fault::LoseAnswer], Some(Arc::new(config)));

    let options = EsOptions {
        trust: Trust::Ca(files.cert.clone()),
        ..quick()
    };
    let mut sink = EsSink::new(&fake.url, "flows", options).unwrap();
    for i in 0..50 {
        let (id, doc) = record(i, false);
        sink.doc(&id, &doc).unwrap();
    }
    let summary = sink.finish().unwrap();
    assert_eq!((summary.indexed, summary.already_present), (0, 50));
    assert_eq!(summary.retried_requests, 1);
    assert_eq!(fake.state().docs.len(), 50);

    // The system's roots do not vouch for it: an error at once, not retries.
    let started = Instant::now();
    let mut sink = EsSink::new(&fake.url, "flows", quick()).unwrap();
    sink.doc("x", r#"{"bytes":1}"#).unwrap();
    let text = sink.finish().unwrap_err().to_string();
    assert!(
        text.contains("cannot connect") && text.contains("certificate"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.state().docs.len(), 50);
}
