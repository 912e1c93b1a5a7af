//! Flows, reports and profiles on the server (`/api/v1/flows|report|profile`, and the same over
//! a stored capture and a job): example.pcap split packet by packet across two devices, stored
//! as their batches, then analysed over windows. Oracles: the flow library run on the
//! `/api/v1/packets` download of the same window (what `trawl flows --device …` does), and sums
//! computed here from the input frames for reports and profiles.

mod common;

use common::corpus;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_flow::record::{CSV_HEADER, Format, Record, Writer};
use trawl_flow::{FlowTable, Timeouts};
use trawl_pcap::{CaptureReader, Timestamp};
use trawl_report::{Busiest, SessionSpec};
use trawl_server::{Config, NewOrganisation, Rotation, Server, Tls};
use trawl_wire::{BatchBuilder, Drops};

const EXAMPLE: &str = "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap";

/// One input frame, and the device it was given to.
#[derive(Clone)]
struct Frame {
    device: usize,
    ts: Timestamp,
    orig_len: u32,
    data: Vec<u8>,
}

struct Harness {
    _dir: tempfile::TempDir,
    server: Server,
    client: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        config.tls = Tls::Plain;
        // Small segments: a window spans several of each device's.
        config.rotation = Rotation {
            max_bytes: 128 << 10,
            ..Rotation::default()
        };
        let server = Server::start(config).await.unwrap();
        Harness {
            _dir: dir,
            server,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn enrol(&self, admin: &str, name: &str) -> String {
        let (status, token) = self
            .post_json("/api/v1/enrollment-tokens", Some(admin), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        let (status, device) = self
            .post_json(
                "/api/v1/enroll",
                None,
                json!({"token": token["token"], "name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        device["credential"].as_str().unwrap().to_owned()
    }

    /// Sends frames as batches of 200 packets of stream `eth0`.
    async fn store(&self, credential: &str, frames: &[&Frame]) {
        for (n, chunk) in frames.chunks(200).enumerate() {
            let seq = n as u64 + 1;
            let mut b = BatchBuilder::new("eth0", 1, 65_535);
            for f in chunk {
                b.push(f.ts, f.orig_len, &f.data);
            }
            let resp = self
                .client
                .post(self.url("/api/v1/streams/eth0/batches"))
                .bearer_auth(credential)
                .header("content-type", "application/x-trawl-batch")
                .body(b.finish(1, seq, seq - 1, Drops::default()))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let v: Value = resp.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{v}");
        }
    }

    /// `GET PATH?QUERY`: status, content type, body.
    async fn get(
        &self,
        token: Option<&str>,
        path: &str,
        query: &[(&str, &str)],
    ) -> (StatusCode, String, Vec<u8>) {
        let mut url = reqwest::Url::parse(&self.url(path)).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        let mut req = self.client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ct, resp.bytes().await.unwrap().to_vec())
    }

    async fn get_ok(&self, token: &str, path: &str, query: &[(&str, &str)]) -> (String, Vec<u8>) {
        let (status, ct, body) = self.get(Some(token), path, query).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} {query:?}: {}",
            String::from_utf8_lossy(&body)
        );
        (ct, body)
    }

    async fn get_json(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
        let (ct, body) = self.get_ok(token, path, query).await;
        assert_eq!(ct, "application/json");
        serde_json::from_slice(&body).unwrap()
    }
}

/// example.pcap, packet i given to device i % 2.
fn frames() -> Vec<Frame> {
    let mut r = CaptureReader::open(corpus().join(EXAMPLE)).unwrap();
    let mut out = Vec::new();
    while r.advance().unwrap() {
        let p = r.current().unwrap();
        out.push(Frame {
            device: out.len() % 2,
            ts: p.ts,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    out
}

/// The oracle for `/flows`: trawl_flow run on a pcapng download as `trawl flows` runs on it
/// (the circuit is the interface number, the record's interface its `if_name`).
fn flows_of(
    pcapng: &[u8],
    timeouts: Timeouts,
    snapshot_ns: Option<u64>,
    format: Format,
) -> Vec<u8> {
    let mut r = CaptureReader::new(pcapng).unwrap();
    let mut table = match snapshot_ns {
        Some(i) => FlowTable::with_snapshots(timeouts, i),
        None => FlowTable::new(timeouts),
    };
    let mut w = Writer::new(Vec::new(), format, "trawl-flows").unwrap();
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut emit = |names: &HashMap<u32, String>, f: trawl_flow::Flow, reason| {
        let name = names[&f.key.circuit.interface].clone();
        w.write(&Record::new(&f, reason, name)).unwrap();
    };
    while r.advance().unwrap() {
        let p = r.current().unwrap();
        let name = r.interfaces()[p.interface as usize]
            .name()
            .unwrap()
            .to_owned();
        names.entry(p.interface).or_insert(name);
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        table.add(p.ts.as_nanos(), p.interface, &d, |f, reason| {
            emit(&names, f, reason)
        });
    }
    table.finish(|f, reason| emit(&names, f, reason));
    w.into_inner()
}

fn ns(t: Timestamp) -> String {
    t.as_nanos().to_string()
}

async fn organisation(h: &Harness, name: &str) -> NewOrganisation {
    h.server.create_organisation(name).await.unwrap()
}

/// Two devices with example.pcap split between them; the organisation and the frames.
async fn stored() -> (Harness, NewOrganisation, Vec<Frame>) {
    let h = Harness::start().await;
    let org = organisation(&h, "acme").await;
    let all = frames();
    for (device, name) in ["gw-a", "gw-b"].into_iter().enumerate() {
        let cred = h.enrol(&org.admin_token, name).await;
        let mine: Vec<&Frame> = all.iter().filter(|f| f.device == device).collect();
        h.store(&cred, &mine).await;
    }
    (h, org, all)
}

#[tokio::test]
async fn flows_of_a_window_are_the_librarys_flows_of_its_download() {
    let (h, org, all) = stored().await;
    let token = org.admin_token.as_str();
    let everything = (Timestamp::default(), Timestamp::new(4_000_000_000, 0));
    let middle = (all[1001].ts, all[3050].ts);
    let long = Timeouts::default();
    let short = Timeouts {
        idle_ns: 2_000_000_000,
        active_ns: 5_000_000_000,
    };
    // (window, filter, extra parameters, timeouts, snapshot, format, at least this many records)
    type Case<'a> = (
        (Timestamp, Timestamp),
        Option<&'a str>,
        Vec<(&'a str, &'a str)>,
        Timeouts,
        Option<u64>,
        Format,
        usize,
    );
    let cases: Vec<Case> = vec![
        (everything, None, vec![], long, None, Format::Jsonl, 100),
        (
            middle,
            Some("tcp"),
            vec![("idle_timeout", "2s"), ("active_timeout", "5s")],
            short,
            None,
            Format::Jsonl,
            20,
        ),
        (
            everything,
            None,
            vec![("snapshot", "1s"), ("format", "csv")],
            long,
            Some(1_000_000_000),
            Format::Csv,
            200,
        ),
        (
            everything,
            Some("udp"),
            vec![("snapshot", ""), ("format", "es-bulk")],
            long,
            Some(100_000_000),
            Format::EsBulk,
            4,
        ),
    ];
    for (i, (window, filter, extra, timeouts, snapshot, format, at_least)) in
        cases.into_iter().enumerate()
    {
        let (from, to) = (ns(window.0), ns(window.1));
        let mut query = vec![
            ("device", "gw-a"),
            ("device", "gw-b"),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ];
        if let Some(f) = filter {
            query.push(("filter", f));
        }
        let (_, download) = h.get_ok(token, "/api/v1/packets", &query).await;
        query.extend(extra);
        let (ct, body) = h.get_ok(token, "/api/v1/flows", &query).await;
        let want = flows_of(&download, timeouts, snapshot, format);
        let text = String::from_utf8(body).unwrap();
        let lines = text.lines().count();
        let records = match format {
            Format::Csv => {
                assert_eq!(ct, "text/csv; charset=utf-8");
                assert_eq!(text.lines().next(), Some(CSV_HEADER), "case {i}");
                lines - 1
            }
            Format::EsBulk => lines / 2,
            Format::Jsonl => {
                assert_eq!(ct, "application/x-ndjson");
                lines
            }
        };
        assert!(records >= at_least, "case {i}: only {records} records");
        eprintln!("case {i}: {records} records equal");
        if let Some(k) = text
            .lines()
            .zip(std::str::from_utf8(&want).unwrap().lines())
            .position(|(a, b)| a != b)
        {
            panic!(
                "case {i}: line {k} differs:\n got  {}\n want {}",
                text.lines().nth(k).unwrap(),
                std::str::from_utf8(&want).unwrap().lines().nth(k).unwrap()
            );
        }
        assert_eq!(text.as_bytes(), want, "case {i}");
        if i == 0 {
            // Both devices' interfaces, named DEVICE/INTERFACE; every IP packet counted once.
            let mut packets = 0;
            let mut seen = std::collections::BTreeSet::new();
            for l in text.lines() {
                let r: Value = serde_json::from_str(l).unwrap();
                packets += r["packets"].as_u64().unwrap();
                seen.insert(r["interface"].as_str().unwrap().to_owned());
            }
            assert_eq!(
                seen.into_iter().collect::<Vec<_>>(),
                ["gw-a/eth0", "gw-b/eth0"]
            );
            let ip = all
                .iter()
                .filter(|f| {
                    let d = trawl_decode::decode_with_wire_len(1, &f.data, f.orig_len);
                    trawl_flow::key_of(0, &d).is_some()
                })
                .count() as u64;
            assert_eq!(packets, ip);
        }
    }
}

/// Bytes (wire lengths) per (line, second) and totals per line, from the input frames.
fn per_second(frames: &[&Frame]) -> BTreeMap<(String, u64), u64> {
    let mut out = BTreeMap::new();
    for f in frames {
        let line = ["gw-a/eth0", "gw-b/eth0"][f.device].to_owned();
        *out.entry((line, f.ts.secs)).or_default() += u64::from(f.orig_len);
    }
    out
}

#[tokio::test]
async fn report_and_profile_of_a_window_add_up_to_the_input() {
    let (h, org, all) = stored().await;
    let token = org.admin_token.as_str();
    let (from, to) = (all[500].ts, all[4000].ts);
    let (from_s, to_s) = (ns(from), ns(to));
    let window: Vec<&Frame> = all.iter().filter(|f| f.ts >= from && f.ts < to).collect();
    let base = [
        ("device", "gw-a"),
        ("device", "gw-b"),
        ("from", from_s.as_str()),
        ("to", to_s.as_str()),
    ];

    // The report, by 10-second periods: per line and second, the input's bytes.
    let mut q = base.to_vec();
    q.extend([("period", "10s"), ("top", "3")]);
    let periods = h.get_json(token, "/api/v1/report", &q).await;
    let periods = periods.as_array().unwrap();
    assert!(periods.len() >= 2, "{} periods", periods.len());
    let mut got: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in periods {
        for l in p["lines"].as_array().unwrap() {
            let name = l["name"].as_str().unwrap().to_owned();
            let t = totals.entry(name.clone()).or_default();
            t.0 += l["packets"].as_u64().unwrap();
            t.1 += l["bytes"].as_u64().unwrap();
            let first = l["observed"]["first"].as_u64().unwrap();
            for (k, b) in l["per_second"].as_array().unwrap().iter().enumerate() {
                let b = b.as_u64().unwrap();
                if b > 0 {
                    got.insert((name.clone(), first + k as u64), b);
                }
            }
            assert!(l["busiest"].as_array().unwrap().len() <= 3);
        }
    }
    let want = per_second(&window);
    assert!(want.len() > 10, "{} seconds", want.len());
    assert_eq!(got, want, "bytes per line and second");
    eprintln!("report: {} (line, second) byte counts equal", want.len());
    for (device, name) in ["gw-a/eth0", "gw-b/eth0"].into_iter().enumerate() {
        let mine = window.iter().filter(|f| f.device == device);
        let packets = mine.clone().count() as u64;
        let bytes: u64 = mine.map(|f| u64::from(f.orig_len)).sum();
        assert_eq!(totals[name], (packets, bytes), "{name}");
    }

    // Text and HTML are the same report rendered.
    q.push(("format", "text"));
    let (ct, text) = h.get_ok(token, "/api/v1/report", &q).await;
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert!(String::from_utf8(text).unwrap().contains("gw-b/eth0"));
    q.pop();
    q.push(("format", "html"));
    let (ct, html) = h.get_ok(token, "/api/v1/report", &q).await;
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(
        String::from_utf8(html)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );

    // apps.toml in a POST body names applications.
    let mut url = reqwest::Url::parse(&h.url("/api/v1/report")).unwrap();
    url.query_pairs_mut()
        .extend_pairs(&base)
        .append_pair("period", "1h");
    let resp = h
        .client
        .post(url.clone())
        .bearer_auth(token)
        .body("[[app]]\nname = \"Web\"\nservers = [\"0.0.0.0/0\"]\nports = [80]\nprotocol = \"tcp\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let with_apps: Value = resp.json().await.unwrap();
    assert!(
        with_apps.to_string().contains("\"Web\""),
        "apps.toml not applied"
    );
    let resp = h
        .client
        .post(url)
        .bearer_auth(token)
        .body("[[app]]\nname = 5\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "bad_apps", "{err}");

    // The profile of the busiest TCP session (two passes), then of that session by name.
    let mut busiest = Busiest::new();
    for f in window.iter() {
        let d = trawl_decode::decode_with_wire_len(1, &f.data, f.orig_len);
        if matches!(d.transport, trawl_decode::Transport::Tcp(_)) {
            busiest.add(&d);
        }
    }
    let spec = busiest.busiest().unwrap();
    let mut q = base.to_vec();
    q.push(("filter", "tcp"));
    let by_filter = h.get_json(token, "/api/v1/profile", &q).await;
    assert_eq!(by_filter["session"], spec.to_string());
    let session = spec.to_string();
    let mut q = base.to_vec();
    q.push(("session", session.as_str()));
    let profile = h.get_json(token, "/api/v1/profile", &q).await;
    assert_eq!(profile, by_filter);
    let spec = SessionSpec::parse(&session).unwrap();
    let mut ways: [BTreeMap<u64, u64>; 2] = Default::default();
    for f in window.iter() {
        let d = trawl_decode::decode_with_wire_len(1, &f.data, f.orig_len);
        if let Some(way) = spec.direction(&d) {
            *ways[way].entry(f.ts.secs).or_default() += u64::from(f.orig_len);
        }
    }
    let first = profile["observed"]["first"].as_u64().unwrap();
    for (way, key) in ["a_to_b_bytes", "b_to_a_bytes"].into_iter().enumerate() {
        let got: BTreeMap<u64, u64> = profile["per_second"][key]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, b)| b.as_u64().unwrap() > 0)
            .map(|(k, b)| (first + k as u64, b.as_u64().unwrap()))
            .collect();
        assert!(!ways[way].is_empty());
        assert_eq!(got, ways[way], "{key}");
        eprintln!("profile {session}: {key} over {} seconds equal", got.len());
    }
    let (ct, html) = h
        .get_ok(
            token,
            "/api/v1/profile",
            &[&q[..], &[("format", "html")]].concat(),
        )
        .await;
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(String::from_utf8(html).unwrap().contains(&session));
}

#[tokio::test]
async fn a_stored_capture_is_analysed_as_its_download() {
    let h = Harness::start().await;
    let org = organisation(&h, "acme").await;
    let token = org.admin_token.as_str();
    let file = std::fs::read(corpus().join(EXAMPLE)).unwrap();
    let resp = h
        .client
        .put(h.url("/api/v1/upload/example.pcap"))
        .bearer_auth(token)
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let capture: Value = resp.json().await.unwrap();
    let id = capture["id"].as_i64().unwrap();
    let base = format!("/api/v1/captures/{id}");

    let (_, download) = h
        .get_ok(token, &format!("{base}/pcapng"), &[("filter", "tcp")])
        .await;
    let (_, body) = h
        .get_ok(
            token,
            &format!("{base}/flows"),
            &[("filter", "tcp"), ("idle_timeout", "3s")],
        )
        .await;
    // The stored file's one interface has no name: it is called after the capture.
    let want = flows_of_unnamed(&download, "example.pcapng");
    assert!(want.len() > 1000);
    assert_eq!(String::from_utf8(body).unwrap(), want);

    let all = frames();
    let periods = h
        .get_json(token, &format!("{base}/report"), &[("period", "1h")])
        .await;
    let (mut packets, mut bytes) = (0, 0);
    for p in periods.as_array().unwrap() {
        for l in p["lines"].as_array().unwrap() {
            assert_eq!(l["name"], "example.pcapng");
            packets += l["packets"].as_u64().unwrap();
            bytes += l["bytes"].as_u64().unwrap();
        }
    }
    assert_eq!(packets, all.len() as u64);
    assert_eq!(
        bytes,
        all.iter().map(|f| u64::from(f.orig_len)).sum::<u64>()
    );
    let p = h
        .get_json(token, &format!("{base}/profile"), &[("filter", "udp")])
        .await;
    assert!(p["session"].as_str().unwrap().starts_with("udp "), "{p}");

    // Another organisation's capture and job, and a job that does not exist: 404.
    let other = organisation(&h, "other").await;
    for path in [
        format!("{base}/flows"),
        format!("{base}/report"),
        "/api/v1/jobs/999/flows".to_owned(),
        "/api/v1/jobs/999/report".to_owned(),
    ] {
        let (status, _, body) = h.get(Some(&other.admin_token), &path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body:?}");
    }
    // A capture takes no window.
    let (status, _, body) = h
        .get(Some(token), &format!("{base}/flows"), &[("device", "gw-a")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .starts_with("device: unknown parameter")
    );
}

/// [`flows_of`] for a download whose interface has no name (the record is called `name`), with
/// a 3 s idle timeout, as JSON lines.
fn flows_of_unnamed(pcapng: &[u8], name: &str) -> String {
    let mut r = CaptureReader::new(pcapng).unwrap();
    let mut table = FlowTable::new(Timeouts {
        idle_ns: 3_000_000_000,
        ..Timeouts::default()
    });
    let mut w = Writer::new(Vec::new(), Format::Jsonl, "trawl-flows").unwrap();
    while r.advance().unwrap() {
        let p = r.current().unwrap();
        assert!(r.interfaces()[0].name().is_none());
        let d = trawl_decode::decode_with_wire_len(p.link_type, p.data, p.orig_len);
        table.add(p.ts.as_nanos(), p.interface, &d, |f, reason| {
            w.write(&Record::new(&f, reason, name.into())).unwrap()
        });
    }
    table.finish(|f, reason| w.write(&Record::new(&f, reason, name.into())).unwrap());
    String::from_utf8(w.into_inner()).unwrap()
}

#[tokio::test]
async fn credentials_organisations_and_bad_parameters() {
    let (h, org, _) = stored().await;
    let token = org.admin_token.as_str();
    let other = organisation(&h, "other").await;
    let window = [
        ("device", "gw-a"),
        ("from", "1"),
        ("to", "4000000000000000000"),
    ];
    for path in ["/api/v1/flows", "/api/v1/report", "/api/v1/profile"] {
        let mut q = window.to_vec();
        if path.ends_with("profile") {
            q.push(("filter", "tcp"));
        }
        let (status, _, _) = h.get(None, path, &q).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = h.get(Some("not-a-token"), path, &q).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        // gw-a belongs to acme: to another organisation it does not exist.
        let (status, ct, body) = h.get(Some(&other.admin_token), path, &q).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(ct, "application/json");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["error"], "not_found");
        let (status, _, _) = h.get(Some(token), path, &q).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    // (path, extra parameters, error, what the detail starts with)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "flows",
            &[("idle_timeout", "soon")],
            "bad_request",
            "idle_timeout:",
        ),
        (
            "flows",
            &[("active_timeout", "0s")],
            "bad_request",
            "active_timeout:",
        ),
        (
            "flows",
            &[("snapshot", "5 parsecs")],
            "bad_request",
            "snapshot:",
        ),
        ("flows", &[("format", "xml")], "bad_request", "format:"),
        ("flows", &[("filter", "tcp port eighty")], "bad_filter", ""),
        (
            "flows",
            &[("colour", "red")],
            "bad_request",
            "colour: unknown parameter",
        ),
        ("report", &[("format", "pdf")], "bad_request", "format:"),
        ("report", &[("period", "90ms")], "bad_request", "period:"),
        ("report", &[("top", "-1")], "bad_request", "top:"),
        (
            "report",
            &[("filter", "ip proto nonsense")],
            "bad_filter",
            "",
        ),
        (
            "profile",
            &[("session", "tcp 10.0.0.1:1")],
            "bad_request",
            "session:",
        ),
        ("profile", &[], "bad_request", "session:"),
        ("profile", &[("filter", "arp")], "no_session", "filter:"),
    ];
    for (path, extra, error, detail) in cases {
        let q = [&window[..], extra].concat();
        let (status, ct, body) = h.get(Some(token), &format!("/api/v1/{path}"), &q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {extra:?}");
        assert_eq!(ct, "application/json");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["error"], *error, "{path} {extra:?}: {err}");
        assert!(
            err["detail"].as_str().unwrap().starts_with(detail),
            "{path} {extra:?}: {err}"
        );
    }
    // An empty window, and one without its end.
    for q in [
        vec![("device", "gw-a"), ("from", "5"), ("to", "5")],
        vec![("device", "gw-a"), ("from", "5")],
    ] {
        let (status, _, body) = h.get(Some(token), "/api/v1/flows", &q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert!(err["detail"].as_str().unwrap().starts_with("to:"), "{err}");
    }
}
