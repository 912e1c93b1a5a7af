//! Analyses of stored packets on the server (issue 5, item 5): the flow records, traffic reports
//! and session profiles that `trawl flows`, `trawl report` and `trawl profile` make, over a
//! window of devices' packets (`/api/v1/flows|report|profile?device=…&from=…&to=…`), a stored
//! capture (`/api/v1/captures/{id}/…`) or a capture job (`/api/v1/jobs/{id}/…`).
//!
//! The packets come from the same readers as the downloads — [`Plan::packets`] (the window's
//! merge, filtered, as `/api/v1/packets` writes it) and [`CaptureDownload::packets`] — through
//! [`PacketSource`]; the analysis runs on a blocking thread. Flow records are streamed into the
//! response body as the flow table emits them (memory: the live flows, one decompressed frame
//! per stream, a few chunks in flight); a report or profile is answered whole when the last
//! packet has been read (its size is the report's, not the window's). A client that leaves
//! stops the work: the flow body's channel closes, and a report's request future, when dropped,
//! raises a flag the reading loop checks.
//!
//! Lines of a report are the source's interfaces (`DEVICE/INTERFACE` for devices), split by
//! direction where packets record one (stored captures); interfaces of a flow record likewise.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use trawl_flow::record::{self, Record, Writer};
use trawl_flow::{EndReason, Flow, FlowTable, Timeouts};
use trawl_report::{Apps, Busiest, MAX_PERIOD_SECS, Profile, Report, SessionSpec};

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::captures::{self, CaptureDownload};
use crate::retrieve::{self, PacketSource, Plan, PullRequest, RetrieveError};

/// The parameters every window takes (the rest are the analysis's own).
const WINDOW_PARAMETERS: [&str; 4] = ["device", "from", "to", "filter"];
/// The most rows a report's top lists may ask for.
const MAX_TOP: usize = 10_000;
/// The cancel flag is looked at every this many packets.
const CHECK_EVERY: u64 = 4096;

/// Which analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Flows,
    Report,
    Profile,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Flows => "flows",
            Kind::Report => "report",
            Kind::Profile => "profile",
        }
    }

    fn parameters(self) -> &'static [&'static str] {
        match self {
            Kind::Flows => &[
                "snapshot",
                "format",
                "idle_timeout",
                "active_timeout",
                "index",
            ],
            Kind::Report => &["period", "format", "top"],
            Kind::Profile => &["session", "format"],
        }
    }
}

/// How a report or profile is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    Json,
    Text,
    Html,
}

impl TextFormat {
    fn parse(s: &str) -> Result<TextFormat, String> {
        match s {
            "json" => Ok(TextFormat::Json),
            "text" => Ok(TextFormat::Text),
            "html" => Ok(TextFormat::Html),
            _ => Err(format!("unknown format {s:?}: json, text or html")),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            TextFormat::Json => "application/json",
            TextFormat::Text => "text/plain; charset=utf-8",
            TextFormat::Html => "text/html; charset=utf-8",
        }
    }
}

/// `/flows`: the records' form and how flows end.
#[derive(Clone, Debug)]
pub struct FlowOptions {
    pub format: record::Format,
    pub timeouts: Timeouts,
    /// Snapshot flows: the interval (ns).
    pub snapshot_ns: Option<u64>,
    /// The Elasticsearch index named in the bulk form's actions.
    pub index: String,
}

/// `/report`: the period, the top lists, the names (apps.toml, from a POST body).
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub period_secs: u64,
    pub top: usize,
    pub format: TextFormat,
    pub apps: Apps,
}

/// `/profile`: the session, or none (the busiest among what the filter keeps).
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    pub session: Option<SessionSpec>,
    pub format: TextFormat,
}

/// An analysis, its parameters checked.
#[derive(Clone, Debug)]
pub enum Analysis {
    Flows(FlowOptions),
    Report(ReportOptions),
    Profile(ProfileOptions),
}

fn bad(name: &str, detail: impl Into<String>) -> RetrieveError {
    RetrieveError::BadParameter(name.into(), detail.into())
}

/// A duration as the CLI takes it (`15s`, `100ms`, `1.5m`…), more than zero.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    match trawl_flow::time::parse_duration(s)? {
        0 => Err(format!("{s:?}: must be more than zero")),
        ns => Ok(ns),
    }
}

/// Splits the query into the window's parameters (returned, for [`PullRequest::from_query`],
/// or only `filter` when `window` is false) and the analysis's own, which it checks.
pub fn parse_query(
    kind: Kind,
    params: &[(String, String)],
    window: bool,
) -> Result<(Vec<(String, String)>, Analysis), RetrieveError> {
    let mut rest = Vec::new();
    let mut own: HashMap<&str, &str> = HashMap::new();
    for (name, value) in params {
        let name = name.as_str();
        if let Some(&known) = kind.parameters().iter().find(|&&p| p == name) {
            if own.insert(known, value.as_str()).is_some() {
                return Err(bad(name, "given more than once"));
            }
        } else if WINDOW_PARAMETERS.contains(&name) && (window || name == "filter") {
            rest.push((name.to_owned(), value.clone()));
        } else {
            let mut known: Vec<&str> = if window {
                WINDOW_PARAMETERS.to_vec()
            } else {
                vec!["filter"]
            };
            known.extend(kind.parameters());
            return Err(bad(
                name,
                format!("unknown parameter (known: {})", known.join(", ")),
            ));
        }
    }
    let text_format = |own: &HashMap<&str, &str>| {
        own.get("format")
            .map_or(Ok(TextFormat::Json), |f| TextFormat::parse(f))
            .map_err(|e| bad("format", e))
    };
    let duration = |name: &str, default: &str| {
        parse_duration(own.get(name).copied().unwrap_or(default)).map_err(|e| bad(name, e))
    };
    let analysis = match kind {
        Kind::Flows => {
            let format = match own.get("format") {
                None => record::Format::Jsonl,
                Some(f) => f.parse().map_err(|e: String| bad("format", e))?,
            };
            let snapshot_ns = match own.get("snapshot") {
                None => None,
                // `snapshot` alone: the CLI's default interval.
                Some(s) if s.trim().is_empty() => Some(100_000_000),
                Some(s) => Some(parse_duration(s).map_err(|e| bad("snapshot", e))?),
            };
            let index = own.get("index").unwrap_or(&"trawl-flows").to_string();
            if index.is_empty() || index.contains(['"', '\\', '\n']) {
                return Err(bad("index", "an Elasticsearch index name is needed"));
            }
            Analysis::Flows(FlowOptions {
                format,
                timeouts: Timeouts {
                    idle_ns: duration("idle_timeout", "15s")?,
                    active_ns: duration("active_timeout", "30m")?,
                },
                snapshot_ns,
                index,
            })
        }
        Kind::Report => {
            let period_ns = duration("period", "15m")?;
            let period_secs = period_ns / 1_000_000_000;
            if !period_ns.is_multiple_of(1_000_000_000)
                || !(1..=MAX_PERIOD_SECS).contains(&period_secs)
            {
                return Err(bad(
                    "period",
                    "give whole seconds from 1s to 24h (e.g. 15m)",
                ));
            }
            let top = match own.get("top") {
                None => 10,
                Some(t) => t
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&t| t <= MAX_TOP)
                    .ok_or_else(|| bad("top", format!("{t:?}: a number from 0 to {MAX_TOP}")))?,
            };
            Analysis::Report(ReportOptions {
                period_secs,
                top,
                format: text_format(&own)?,
                apps: Apps::default(),
            })
        }
        Kind::Profile => {
            let session = match own.get("session") {
                Some(s) => Some(SessionSpec::parse(s).map_err(|e| bad("session", e))?),
                None => None,
            };
            let filtered = rest
                .iter()
                .any(|(n, v)| n == "filter" && !v.trim().is_empty());
            if session.is_none() && !filtered {
                return Err(bad(
                    "session",
                    "say which session (session=tcp A:PORT B:PORT), or give a filter to \
                     profile the busiest session it keeps",
                ));
            }
            Analysis::Profile(ProfileOptions {
                session,
                format: text_format(&own)?,
            })
        }
    };
    Ok((rest, analysis))
}

/// Opens the packets again from the start (a profile without a session reads them twice).
pub type Opener = Arc<dyn Fn() -> Result<Box<dyn PacketSource>, RetrieveError> + Send + Sync>;

/// What a flow run read and wrote.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    pub packets: u64,
    pub not_ip: u64,
    pub records: u64,
}

/// The flow records of `src`'s packets, written to `out` as `trawl flows` writes them (each
/// packet's interface is the flow's circuit; a record names it as the source does).
pub fn write_flows(
    src: &mut dyn PacketSource,
    o: &FlowOptions,
    out: impl Write,
) -> Result<FlowStats, RetrieveError> {
    let mut table = match o.snapshot_ns {
        Some(interval) => FlowTable::with_snapshots(o.timeouts, interval),
        None => FlowTable::new(o.timeouts),
    };
    let mut sink = FlowSink {
        writer: Writer::new(out, o.format, &o.index)?,
        names: HashMap::new(),
        failed: None,
        records: 0,
    };
    let mut packets = 0;
    while src.advance()? {
        let p = src.packet().expect("advanced");
        packets += 1;
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        let view: &dyn PacketSource = &*src;
        table.add(p.ts.as_nanos(), p.interface, &d, |f, reason| {
            sink.record(view, &f, reason)
        });
        if let Some(e) = sink.failed.take() {
            return Err(e.into());
        }
    }
    let view: &dyn PacketSource = &*src;
    table.finish(|f, reason| sink.record(view, &f, reason));
    if let Some(e) = sink.failed.take() {
        return Err(e.into());
    }
    sink.writer.into_inner().flush()?;
    Ok(FlowStats {
        packets,
        not_ip: table.skipped.not_ip,
        records: sink.records,
    })
}

/// Where flow records go, with the interface names already asked for.
struct FlowSink<W: Write> {
    writer: Writer<W>,
    names: HashMap<u32, String>,
    /// The first write that failed: records stop there.
    failed: Option<io::Error>,
    records: u64,
}

impl<W: Write> FlowSink<W> {
    fn record(&mut self, src: &dyn PacketSource, f: &Flow, reason: EndReason) {
        if self.failed.is_some() {
            return;
        }
        self.records += 1;
        let name = self
            .names
            .entry(f.key.circuit.interface)
            .or_insert_with(|| src.interface_name(f.key.circuit.interface))
            .clone();
        if let Err(e) = self.writer.write(&Record::new(f, reason, name)) {
            self.failed = Some(e);
        }
    }
}

/// Stops the reading loop of a report or profile when its request is dropped (the client
/// left).
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    fn check(&self, n: u64) -> Result<(), RetrieveError> {
        if n.is_multiple_of(CHECK_EVERY) && self.0.load(Ordering::Relaxed) {
            return Err(RetrieveError::Write(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )));
        }
        Ok(())
    }
}

/// Raises the flag when dropped.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Relaxed);
    }
}

/// Visits every packet of `src`: its time (ns), line (interface and direction, numbered in
/// the order first seen) and decoding. Returns the lines' names.
fn walk(
    src: &mut dyn PacketSource,
    cancel: &Cancel,
    mut each: impl FnMut(u64, u32, &trawl_decode::Decoded<'_>),
) -> Result<Vec<String>, RetrieveError> {
    let mut lines: HashMap<(u32, u8), u32> = HashMap::new();
    let mut names = Vec::new();
    let mut n = 0u64;
    while src.advance()? {
        n += 1;
        cancel.check(n)?;
        let p = src.packet().expect("advanced");
        let line = *lines.entry((p.interface, p.direction)).or_insert_with(|| {
            let mut name = src.interface_name(p.interface);
            match p.direction {
                1 => name.push_str(" inbound"),
                2 => name.push_str(" outbound"),
                _ => {}
            }
            names.push(name);
            names.len() as u32 - 1
        });
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        each(p.ts.as_nanos(), line, &d);
    }
    Ok(names)
}

/// The report of the packets `open` gives, rendered.
pub fn make_report(
    open: &Opener,
    o: &ReportOptions,
    cancel: &Cancel,
) -> Result<String, RetrieveError> {
    let mut report = Report::new(trawl_report::Options {
        period_secs: o.period_secs,
        apps: o.apps.clone(),
        top: o.top,
    });
    let names = walk(&mut *open()?, cancel, |ts, line, d| report.add(ts, line, d))?;
    for (i, name) in names.into_iter().enumerate() {
        report.name_line(i as u32, name);
    }
    let periods = report.finish();
    Ok(match o.format {
        TextFormat::Text => trawl_report::render::report_text(&periods),
        TextFormat::Html => trawl_report::render::report_html(&periods),
        TextFormat::Json => {
            serde_json::to_string_pretty(&periods).map_err(io::Error::other)? + "\n"
        }
    })
}

/// Why a profile could not be made.
#[derive(Debug)]
pub enum ProfileError {
    Retrieve(RetrieveError),
    /// No session given, and no IP packet passes the filter.
    NoSession,
}

impl From<RetrieveError> for ProfileError {
    fn from(e: RetrieveError) -> Self {
        ProfileError::Retrieve(e)
    }
}

/// The profile of the session asked for, or of the busiest one among the packets (a first
/// pass finds it), rendered.
pub fn make_profile(
    open: &Opener,
    o: &ProfileOptions,
    cancel: &Cancel,
) -> Result<String, ProfileError> {
    let spec = match o.session {
        Some(spec) => spec,
        None => {
            let mut busiest = Busiest::new();
            walk(&mut *open()?, cancel, |_, _, d| busiest.add(d))?;
            busiest.busiest().ok_or(ProfileError::NoSession)?
        }
    };
    let mut profile = Profile::new(spec);
    walk(&mut *open()?, cancel, |ts, _, d| {
        profile.add(ts, d);
    })?;
    let report = profile.finish();
    Ok(match o.format {
        TextFormat::Text => trawl_report::render::profile_text(&report),
        TextFormat::Html => trawl_report::render::profile_html(&report),
        TextFormat::Json => {
            serde_json::to_string_pretty(&report)
                .map_err(|e| RetrieveError::Write(io::Error::other(e)))?
                + "\n"
        }
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// What the packets are: a window of devices, a stored capture, a job.
enum Target {
    Window,
    Capture(String),
    Job(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Window => "window".into(),
            Target::Capture(id) => format!("capture {id}"),
            Target::Job(id) => format!("job {id}"),
        }
    }
}

/// The apps.toml of a `POST …/report` body (empty: none).
fn apps_of(body: &Bytes) -> Result<Apps, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Apps::default());
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body (apps.toml) is not UTF-8",
        )
    })?;
    Apps::from_toml(text, "apps.toml")
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_apps", e.to_string()))
}

async fn analyse(
    st: AppState,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    kind: Kind,
    target: Target,
    body: Option<Bytes>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let Query(params) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let (rest, mut analysis) = parse_query(kind, &params, matches!(target, Target::Window))?;
    if let (Analysis::Report(o), Some(body)) = (&mut analysis, &body) {
        o.apps = apps_of(body)?;
    }
    let filter = rest
        .iter()
        .find(|(n, _)| n == "filter")
        .map(|(_, v)| v.clone())
        .filter(|f| !f.trim().is_empty());
    let what = format!(
        "{} of {} for organisation {org}",
        kind.name(),
        target.describe()
    );
    let (data_dir, catalogue) = (st.ingest.data_dir.clone(), st.catalogue.clone());
    let open: Opener = match &target {
        Target::Window => {
            let request = PullRequest::from_query(&rest)?;
            let plan = tokio::task::spawn_blocking(move || {
                Plan::new(&data_dir, &catalogue, org, &request)
            })
            .await
            .map_err(ApiError::internal)??;
            Arc::new(move || Ok(Box::new(plan.packets()) as Box<dyn PacketSource>))
        }
        Target::Capture(id) => {
            let n = captures::capture_id(id)?;
            let planned = tokio::task::spawn_blocking(move || {
                CaptureDownload::new(&data_dir, &catalogue, org, n, filter)
            })
            .await
            .map_err(ApiError::internal)??;
            let plan = planned.ok_or_else(|| captures::not_found(id))?;
            Arc::new(move || Ok(Box::new(plan.packets()) as Box<dyn PacketSource>))
        }
        Target::Job(id) => {
            let plan = crate::jobs::job_plan(&st, org, id, filter).await?;
            Arc::new(move || Ok(Box::new(plan.packets()) as Box<dyn PacketSource>))
        }
    };
    match analysis {
        Analysis::Flows(o) => Ok(stream_flows(open, o, what)),
        Analysis::Report(o) => {
            let cancel = Cancel::default();
            let _guard = CancelOnDrop(cancel.clone());
            let format = o.format;
            let started = Instant::now();
            let text = tokio::task::spawn_blocking(move || make_report(&open, &o, &cancel))
                .await
                .map_err(ApiError::internal)?;
            let text = text.map_err(|e| failed(&what, e))?;
            tracing::info!("{what}: {} bytes in {:?}", text.len(), started.elapsed());
            Ok(whole(format, text))
        }
        Analysis::Profile(o) => {
            let cancel = Cancel::default();
            let _guard = CancelOnDrop(cancel.clone());
            let format = o.format;
            let started = Instant::now();
            let text = tokio::task::spawn_blocking(move || make_profile(&open, &o, &cancel))
                .await
                .map_err(ApiError::internal)?;
            let text = text.map_err(|e| match e {
                ProfileError::Retrieve(e) => failed(&what, e),
                ProfileError::NoSession => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "no_session",
                    "filter: no IP packet passes the filter, so there is no busiest session \
                     to profile",
                ),
            })?;
            tracing::info!("{what}: {} bytes in {:?}", text.len(), started.elapsed());
            Ok(whole(format, text))
        }
    }
}

/// A failure while reading (a damaged frame): logged, and a `500`.
fn failed(what: &str, e: RetrieveError) -> ApiError {
    tracing::error!("{what} failed: {e}");
    ApiError::from(e)
}

fn whole(format: TextFormat, text: String) -> Response {
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// Answers with the flow records, written on a blocking thread as the flow table emits them.
fn stream_flows(open: Opener, o: FlowOptions, what: String) -> Response {
    let content_type = match o.format {
        record::Format::Csv => "text/csv; charset=utf-8",
        record::Format::Jsonl | record::Format::EsBulk => "application/x-ndjson",
    };
    retrieve::stream_body(
        content_type,
        None,
        what,
        move |out| write_flows(&mut *open()?, &o, out),
        |s| {
            format!(
                "{} records from {} packets ({} not IP)",
                s.records, s.packets, s.not_ip
            )
        },
    )
}

pub(crate) async fn flows_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    analyse(st, headers, query, Kind::Flows, Target::Window, None).await
}

pub(crate) async fn report_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    analyse(st, headers, query, Kind::Report, Target::Window, None).await
}

pub(crate) async fn report_post_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    analyse(st, headers, query, Kind::Report, Target::Window, Some(body)).await
}

pub(crate) async fn profile_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    analyse(st, headers, query, Kind::Profile, Target::Window, None).await
}

/// `/api/v1/captures/{id}/…` and `/api/v1/jobs/{id}/…`.
async fn stored(
    st: AppState,
    id: String,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Option<Bytes>,
    kind: Kind,
    job: bool,
) -> Result<Response, ApiError> {
    let target = if job {
        Target::Job(id)
    } else {
        Target::Capture(id)
    };
    analyse(st, headers, query, kind, target, body).await
}

macro_rules! stored_handlers {
    ($($get:ident, $kind:expr, $job:expr;)*) => {$(
        pub(crate) async fn $get(
            State(st): State<AppState>,
            UrlPath(id): UrlPath<String>,
            headers: HeaderMap,
            query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        ) -> Result<Response, ApiError> {
            stored(st, id, headers, query, None, $kind, $job).await
        }
    )*};
}

stored_handlers! {
    capture_flows, Kind::Flows, false;
    capture_report, Kind::Report, false;
    capture_profile, Kind::Profile, false;
    job_flows, Kind::Flows, true;
    job_report, Kind::Report, true;
    job_profile, Kind::Profile, true;
}

/// `POST /api/v1/captures/{id}/report`: apps.toml in the body.
pub(crate) async fn capture_report_post(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    stored(st, id, headers, query, Some(body), Kind::Report, false).await
}

/// `POST /api/v1/jobs/{id}/report`: apps.toml in the body.
pub(crate) async fn job_report_post(
    State(st): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    stored(st, id, headers, query, Some(body), Kind::Report, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_as_the_cli_takes_them() {
        assert_eq!(parse_duration("15s"), Ok(15_000_000_000));
        assert_eq!(parse_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_duration("1.5m"), Ok(90_000_000_000));
        assert_eq!(parse_duration("2"), Ok(2_000_000_000));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        for bad in ["", "0s", "s", "1x", "-1s", "1..2s", "99999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parameters_are_split_checked_and_named() {
        let q = pairs(&[
            ("device", "a"),
            ("from", "1"),
            ("to", "2"),
            ("snapshot", ""),
            ("format", "csv"),
        ]);
        let (rest, a) = parse_query(Kind::Flows, &q, true).unwrap();
        assert_eq!(rest.len(), 3);
        let Analysis::Flows(o) = a else { panic!() };
        assert_eq!(o.snapshot_ns, Some(100_000_000));
        assert_eq!(o.format, record::Format::Csv);

        let err = |kind, q: &[(&str, &str)], window| {
            parse_query(kind, &pairs(q), window)
                .unwrap_err()
                .to_string()
        };
        assert!(err(Kind::Flows, &[("format", "xml")], true).starts_with("format:"));
        assert!(err(Kind::Flows, &[("idle_timeout", "soon")], true).starts_with("idle_timeout:"));
        assert!(err(Kind::Flows, &[("snapshot", "0")], true).starts_with("snapshot:"));
        assert!(err(Kind::Report, &[("period", "1500ms")], true).starts_with("period:"));
        assert!(err(Kind::Report, &[("period", "2d")], true).starts_with("period:"));
        assert!(err(Kind::Report, &[("top", "many")], true).starts_with("top:"));
        assert!(err(Kind::Report, &[("format", "pdf")], true).starts_with("format:"));
        assert!(err(Kind::Profile, &[("session", "tcp 1.2.3.4")], true).starts_with("session:"));
        assert!(err(Kind::Profile, &[], true).starts_with("session:"));
        assert!(err(Kind::Report, &[("device", "a")], false).starts_with("device: unknown"));
        assert!(err(Kind::Report, &[("snapshot", "1s")], true).starts_with("snapshot: unknown"));
        assert!(err(Kind::Report, &[("top", "1"), ("top", "2")], true).contains("more than once"));
        let (_, a) = parse_query(Kind::Profile, &pairs(&[("filter", "tcp")]), false).unwrap();
        assert!(matches!(
            a,
            Analysis::Profile(ProfileOptions { session: None, .. })
        ));
    }
}
