//! Retrieval end to end: corpus captures uploaded as two devices' batches to a real server, then
//! downloaded through `GET /api/v1/packets` and compared, packet by packet (time, lengths, MD5 of
//! the bytes, which device), with what mergecap, tcpdump and editcap make of the same files; the
//! segments a window opens, counted by calling the planner directly; and the compile endpoint
//! against `tcpdump -dd`.

mod common;

use common::corpus;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use trawl_pcap::{CaptureReader, Timestamp};
use trawl_server::{Catalogue, Config, NewOrganisation, Plan, PullRequest, Rotation, Server, Tls};
use trawl_store::StoredPacket;
use trawl_wire::{BatchBuilder, Drops};

const EXAMPLE: &str = "pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap";

/// Runs a reference tool, which must succeed; its stdout.
fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} ({e}): install it (scripts/deps.sh)"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Harness {
    dir: tempfile::TempDir,
    config: Config,
    server: Server,
    client: reqwest::Client,
}

/// A client that trusts the server's own certificate (through the agent's trust code).
fn client_for(server: &Server) -> reqwest::Client {
    match server.certificate() {
        Some(cert) => {
            trawl_agent::http::async_client(&trawl_agent::http::Trust::Ca(cert.into())).unwrap()
        }
        None => reqwest::Client::new(),
    }
}

impl Harness {
    /// A server whose segments rotate every `rotate_bytes`, so a capture spans many segments.
    async fn start(tls: bool, rotate_bytes: u64) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        if !tls {
            config.tls = Tls::Plain;
        }
        config.rotation = Rotation {
            max_bytes: rotate_bytes,
            ..Rotation::default()
        };
        let server = Server::start(config.clone()).await.unwrap();
        let client = client_for(&server);
        Harness {
            dir,
            config,
            server,
            client,
        }
    }

    /// Stops the server, runs `meanwhile`, and starts it again on the same data directory.
    async fn restart(self, meanwhile: impl FnOnce(&Path)) -> Harness {
        self.server.shutdown().await.unwrap();
        meanwhile(self.dir.path());
        let server = Server::start(self.config.clone()).await.unwrap();
        Harness {
            client: client_for(&server),
            server,
            ..self
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

    async fn enrol(&self, admin: &str, name: &str) -> (i64, String) {
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
        (
            device["device"].as_str().unwrap().parse().unwrap(),
            device["credential"].as_str().unwrap().to_owned(),
        )
    }

    async fn send(&self, credential: &str, batch: Vec<u8>) {
        let resp = self
            .client
            .post(self.url("/api/v1/streams/eth0/batches"))
            .bearer_auth(credential)
            .header("content-type", "application/x-trawl-batch")
            .body(batch)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "stored", "{v}");
    }

    /// Sends a capture file as batches of `per_batch` packets of stream `eth0`.
    async fn upload(&self, credential: &str, capture: &Path, per_batch: usize) -> usize {
        let mut reader = CaptureReader::open(capture).unwrap();
        let (link_type, snaplen) = {
            reader.advance().unwrap();
            let i = &reader.interfaces()[0];
            (i.link_type, i.snaplen)
        };
        let mut seq = 0;
        let mut total = 0;
        let mut builder = BatchBuilder::new("eth0", link_type, snaplen);
        let mut more = reader.current().is_some();
        while more {
            let p = reader.current().unwrap();
            builder.push(p.ts, p.orig_len, p.data);
            total += 1;
            more = reader.advance().unwrap();
            if builder.packets() as usize == per_batch || !more {
                seq += 1;
                let full =
                    std::mem::replace(&mut builder, BatchBuilder::new("eth0", link_type, snaplen));
                self.send(credential, full.finish(1, seq, seq - 1, Drops::default()))
                    .await;
            }
        }
        total
    }

    /// `/api/v1/packets?QUERY`, the parameters URL-encoded.
    fn packets_url(&self, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&self.url("/api/v1/packets")).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    async fn get(&self, token: &str, query: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self
            .client
            .get(self.packets_url(query))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    async fn get_error(&self, token: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let (status, headers, body) = self.get(token, query).await;
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/json",
            "an error answer is JSON, never pcapng"
        );
        (status, serde_json::from_slice(&body).unwrap())
    }
}

/// One row per packet as tshark sees it: epoch time, wire length, captured length, MD5 of the
/// bytes, and the device the packet came from (`source` maps tshark's interface id and name).
fn rows(path: &Path, source: &dyn Fn(&str, &str) -> String) -> Vec<String> {
    let out = tool(
        "tshark",
        &[
            "-n",
            "-r",
            s(path),
            "-o",
            "frame.generate_md5_hash:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.md5_hash",
            "-e",
            "frame.interface_id",
            "-e",
            "frame.interface_name",
        ],
    );
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{} {} {} {} {}", f[0], f[1], f[2], f[3], source(f[4], f[5]))
        })
        .collect()
}

/// Our download: the device is the part of the interface name before '/'.
fn ours(path: &Path) -> Vec<String> {
    rows(path, &|_, name| {
        name.split_once('/').map_or("?", |(d, _)| d).to_owned()
    })
}

/// The reference: for each input (editcap's window, then tcpdump's filter), then mergecap with
/// one interface per input (`-I none`), the inputs named so that on equal times the device named
/// first in the request comes first (mergecap takes the later-named file first).
fn reference(
    dir: &Path,
    inputs: &[(&str, &Path)],
    window: Option<(Timestamp, Timestamp)>,
    filter: Option<&str>,
) -> Vec<String> {
    let mut prepared = Vec::new();
    for (n, (device, input)) in inputs.iter().enumerate() {
        let mut file = input.to_path_buf();
        if let Some((from, to)) = window {
            let cut = dir.join(format!("ref-{n}-window.pcap"));
            let out = Command::new("editcap")
                .env("TZ", "UTC")
                .args(["-A", &utc(from), "-B", &utc(to), s(&file), s(&cut)])
                .output()
                .expect("editcap");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            file = cut;
        }
        if let Some(expr) = filter {
            let kept = dir.join(format!("ref-{n}-filter.pcap"));
            tool("tcpdump", &["-r", s(&file), "-w", s(&kept), expr]);
            file = kept;
        }
        prepared.push((device.to_string(), file));
    }
    prepared.reverse();
    let merged = dir.join("ref-merged.pcapng");
    let mut args = vec![
        "-I".to_owned(),
        "none".into(),
        "-w".into(),
        s(&merged).into(),
    ];
    args.extend(prepared.iter().map(|(_, f)| s(f).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool("mergecap", &args);
    let names: Vec<String> = prepared.iter().map(|(d, _)| d.clone()).collect();
    rows(&merged, &|id, _| {
        names[id.parse::<usize>().unwrap()].clone()
    })
}

/// A time as editcap takes it (in UTC).
fn utc(t: Timestamp) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{}", t.secs), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    format!(
        "{}.{:09}",
        String::from_utf8(out.stdout).unwrap().trim(),
        t.nanos
    )
}

/// The times of a capture's packets, as tshark reads them.
fn times(path: &Path) -> Vec<Timestamp> {
    tool(
        "tshark",
        &["-r", s(path), "-T", "fields", "-e", "frame.time_epoch"],
    )
    .lines()
    .map(|t| {
        let (secs, frac) = t.split_once('.').unwrap();
        Timestamp::new(
            secs.parse().unwrap(),
            format!("{frac:0<9}").parse().unwrap(),
        )
    })
    .collect()
}

fn ns(t: Timestamp) -> String {
    t.as_nanos().to_string()
}

fn save(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

async fn organisation(h: &Harness, name: &str) -> NewOrganisation {
    h.server.create_organisation(name).await.unwrap()
}

#[tokio::test]
async fn two_devices_merged_windowed_and_filtered_equal_mergecap_editcap_and_tcpdump() {
    let work = tempfile::tempdir().unwrap();
    let a = corpus().join(EXAMPLE);
    // The second device saw the same traffic 517 µs later: the two interleave packet by packet.
    let b = work.path().join("b.pcap");
    tool("editcap", &["-t", "0.000517", s(&a), s(&b)]);

    let h = Harness::start(false, 64 << 10).await;
    let org = organisation(&h, "acme").await;
    let (_, cred_a) = h.enrol(&org.admin_token, "gw-a").await;
    let (dev_b, cred_b) = h.enrol(&org.admin_token, "gw-b").await;
    let n = h.upload(&cred_a, &a, 100).await;
    assert_eq!(h.upload(&cred_b, &b, 100).await, n);
    let segments = h.server.segments(org.id, dev_b).await.unwrap().len();
    assert!(
        segments >= 10,
        "only {segments} segments: rotation did not happen"
    );

    let t = times(&a);
    let everything = (
        Timestamp::default(),
        Timestamp::new(u64::MAX / 2_000_000_000, 0),
    );
    let middle = (t[1001], t[3050]);
    // (window, filter, the least the reference must keep for the case to mean something)
    type Case<'a> = (Option<(Timestamp, Timestamp)>, Option<&'a str>, usize);
    let cases: &[Case] = &[
        (None, None, 2 * n),
        (Some(middle), None, 3000),
        (Some(middle), Some("tcp port 80"), 500),
        (None, Some("udp"), 50),
    ];
    let dev_b = dev_b.to_string();
    for (i, (window, filter, at_least)) in cases.iter().enumerate() {
        let (from, to) = window.unwrap_or(everything);
        let (from, to) = (ns(from), ns(to));
        // Device b by id, a by name: the order asked for is the order on equal times.
        let mut query = vec![
            ("device", "gw-a"),
            ("device", dev_b.as_str()),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ];
        if let Some(f) = filter {
            query.push(("filter", f));
        }
        let (status, headers, body) = h.get(&org.admin_token, &query).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], "application/x-pcapng");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"trawl-")
                && disposition.ends_with(".pcapng\""),
            "{disposition}"
        );
        assert_eq!(
            headers["transfer-encoding"], "chunked",
            "streamed, not sized up front"
        );
        assert!(headers.get("content-length").is_none());

        let got = ours(&save(work.path(), &format!("got-{i}.pcapng"), &body));
        let want = reference(work.path(), &[("gw-a", &a), ("gw-b", &b)], *window, *filter);
        assert!(
            want.len() >= *at_least,
            "case {i}: the reference kept only {} packets",
            want.len()
        );
        assert_eq!(got.len(), want.len(), "case {i}: packet count");
        if let Some(k) = (0..got.len()).find(|&k| got[k] != want[k]) {
            panic!(
                "case {i}: packet {} differs: expected `{}`, got `{}`",
                k + 1,
                want[k],
                got[k]
            );
        }
    }
}

#[tokio::test]
async fn equal_times_come_in_the_order_the_devices_were_named() {
    // Two devices with the very same packets: every time is a tie.
    let work = tempfile::tempdir().unwrap();
    let a = corpus().join(EXAMPLE);
    let h = Harness::start(true, 256 << 10).await;
    let org = organisation(&h, "acme").await;
    let (_, one) = h.enrol(&org.admin_token, "one").await;
    let (_, two) = h.enrol(&org.admin_token, "two").await;
    h.upload(&one, &a, 500).await;
    h.upload(&two, &a, 300).await;
    let t = times(&a);
    let (from, to) = (ns(t[200]), ns(t[900]));
    for order in [["one", "two"], ["two", "one"]] {
        let query = [
            ("device", order[0]),
            ("device", order[1]),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ];
        let (status, _, body) = h.get(&org.admin_token, &query).await;
        assert_eq!(status, StatusCode::OK);
        let got = ours(&save(work.path(), "ties.pcapng", &body));
        let want = reference(
            work.path(),
            &[(order[0], &a), (order[1], &a)],
            Some((t[200], t[900])),
            None,
        );
        assert!(got.len() >= 1400, "{}", got.len());
        assert!(got == want, "order {order:?}");
        assert!(got[0].ends_with(order[0]) && got[1].ends_with(order[1]));
    }
}

#[tokio::test]
async fn a_window_inside_one_segment_opens_only_that_segment_and_only_its_overlapping_frames() {
    let a = corpus().join(EXAMPLE);
    let h = Harness::start(false, 64 << 10).await;
    let org = organisation(&h, "acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    // Small batches: each one is a frame of its segment.
    h.upload(&cred, &a, 20).await;
    let segments = h.server.segments(org.id, dev).await.unwrap();
    assert!(segments.len() >= 8, "{} segments", segments.len());
    let mid = &segments[segments.len() / 2];
    let (first, last) = (mid.first_ns.unwrap(), mid.last_ns.unwrap());
    let data = h.server.data_dir().to_path_buf();
    let frames_in_mid = trawl_store::SegmentReader::open(&data.join(&mid.dir), &mid.name)
        .unwrap()
        .frames()
        .len();
    assert!(frames_in_mid >= 4, "{frames_in_mid} frames");

    let catalogue = Mutex::new(Catalogue::open(&data.join("catalogue.db")).unwrap());
    let pull = |from: u64, to: u64| {
        let request = PullRequest {
            devices: vec!["gw".into()],
            from: Timestamp::from_nanos(from),
            to: Timestamp::from_nanos(to),
            filter: None,
        };
        let plan = Plan::new(&data, &catalogue, org.id, &request).unwrap();
        let planned = plan.segments();
        let mut out = Vec::new();
        let stats = plan.write(&mut out).unwrap();
        (planned, stats, out)
    };

    // The segment's whole time range: that segment, every frame, every packet.
    let (planned, stats, _) = pull(first, last + 1);
    assert_eq!((planned, stats.segments), (1, 1));
    assert_eq!(stats.frames as usize, frames_in_mid);
    assert_eq!(stats.packets, mid.packets);

    // Two packets in the middle of it: one segment, and at most the two frames holding them.
    let t: Vec<u64> = times(&a)
        .into_iter()
        .map(Timestamp::as_nanos)
        .filter(|&t| t > first && t < last)
        .collect();
    let k = t.len() / 2;
    let expected = t.iter().filter(|&&x| x >= t[k] && x < t[k + 2]).count() as u64;
    let (planned, stats, out) = pull(t[k], t[k + 2]);
    assert_eq!((planned, stats.segments), (1, 1));
    assert!(stats.frames <= 2, "{stats:?}");
    assert_eq!(stats.packets, expected);
    let mut r = CaptureReader::new(&out[..]).unwrap();
    let mut read = 0;
    while r.advance().unwrap() {
        read += 1;
    }
    assert_eq!(read, expected);

    // Between two segments' ranges: nothing is opened.
    let next = &segments[segments.len() / 2 + 1];
    if next.first_ns.unwrap() > last + 1 {
        let (planned, stats, _) = pull(last + 1, next.first_ns.unwrap());
        assert_eq!((planned, stats.segments, stats.packets), (0, 0, 0));
    }
}

#[tokio::test]
async fn another_organisations_device_is_not_found_like_a_device_that_does_not_exist() {
    let h = Harness::start(false, 256 << 20).await;
    let a = organisation(&h, "a").await;
    let b = organisation(&h, "b").await;
    let (dev_b, cred_b) = h.enrol(&b.admin_token, "gw-b").await;
    h.upload(&cred_b, &corpus().join(EXAMPLE), 1000).await;
    let whole = |key: &str| {
        vec![
            ("device".to_owned(), key.to_owned()),
            ("from".into(), "0".into()),
            ("to".into(), "9000000000000000000".into()),
        ]
    };
    let as_refs = |q: &[(String, String)]| -> Vec<(String, String)> { q.to_vec() };
    for key in [
        dev_b.to_string(),
        "gw-b".into(),
        "999999".into(),
        "nobody".into(),
    ] {
        let q = as_refs(&whole(&key));
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, err) = h.get_error(&a.admin_token, &q).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{key}: {err}");
        assert_eq!(
            err,
            json!({"error": "not_found", "detail": format!("no device \"{key}\"")})
        );
    }
    // Its own organisation gets it, by id or by name.
    for key in [dev_b.to_string(), "gw-b".into()] {
        let q = whole(&key);
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, body) = h.get(&b.admin_token, &q).await;
        assert_eq!(status, StatusCode::OK);
        let mut r = CaptureReader::new(&body[..]).unwrap();
        let mut n = 0;
        while r.advance().unwrap() {
            n += 1;
        }
        assert_eq!(n, 4631, "capinfos counts 4631 packets in {EXAMPLE}");
    }
    // A device credential is not an admin token.
    let q = whole("gw-b");
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, err) = h.get_error(&cred_b, &q).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
}

#[tokio::test]
async fn bad_filters_and_times_are_refused_with_what_is_wrong() {
    let h = Harness::start(false, 256 << 20).await;
    let org = organisation(&h, "acme").await;
    let (_, cred) = h.enrol(&org.admin_token, "gw").await;
    h.upload(&cred, &corpus().join(EXAMPLE), 1000).await;

    // libpcap's message, as tcpdump prints it for the same expression.
    let out = Command::new("tcpdump")
        .args([
            "-r",
            s(&corpus().join(EXAMPLE)),
            "-w",
            "/dev/null",
            "tcp port eighty",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tcpdump: "))
        .expect("tcpdump explains");
    let base = [
        ("device", "gw"),
        ("from", "0"),
        ("to", "9000000000000000000"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut q = base.to_vec();
        q.extend_from_slice(extra);
        q
    };
    let (status, err) = h
        .get_error(&org.admin_token, &with(&[("filter", "tcp port eighty")]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "bad_filter");
    assert!(
        err["detail"].as_str().unwrap().contains(message),
        "{err} vs {message}"
    );

    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("device", "gw"), ("from", "yesterday"), ("to", "5")],
            "from:",
        ),
        (
            &[
                ("device", "gw"),
                ("from", "5"),
                ("to", "2024-02-30T00:00:00Z"),
            ],
            "to:",
        ),
        (
            &[("device", "gw"), ("from", "9"), ("to", "5")],
            "to: the window is empty",
        ),
        (&[("from", "1"), ("to", "5")], "device:"),
        (&[("device", "gw"), ("to", "5")], "from:"),
        (
            &[("device", "gw"), ("from", "1"), ("to", "5"), ("since", "1")],
            "since: unknown",
        ),
    ];
    for (query, starts) in cases {
        let (status, err) = h.get_error(&org.admin_token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {err}");
        assert_eq!(err["error"], "bad_request", "{err}");
        assert!(
            err["detail"].as_str().unwrap().starts_with(starts),
            "{query:?}: {err}"
        );
    }
    // RFC 3339 with an offset (the + sent as %2B) is a time like any other.
    let (status, _, _) = h
        .get(
            &org.admin_token,
            &[
                ("device", "gw"),
                ("from", "2013-05-02T22:20:33+02:00"),
                ("to", "2013-05-02T20:20:40Z"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Packets that `trawl_wire` carries: `n` distinct ones from `t0` on, 1 ms apart.
fn packets(t0: u64, n: u32) -> Vec<StoredPacket> {
    (0..n)
        .map(|i| {
            let mut data = format!("packet {t0} {i} ").into_bytes();
            data.resize(60 + i as usize, i as u8);
            StoredPacket {
                ts: Timestamp::from_nanos(t0 + i as u64 * 1_000_000),
                orig_len: data.len() as u32 + 4,
                data,
            }
        })
        .collect()
}

fn batch(seq: u64, pkts: &[StoredPacket]) -> Vec<u8> {
    let mut b = BatchBuilder::new("eth0", 1, 262_144);
    for p in pkts {
        b.push(p.ts, p.orig_len, &p.data);
    }
    b.finish(7, seq, seq - 1, Drops::default())
}

fn read_packets(body: &[u8]) -> Vec<StoredPacket> {
    let mut r = CaptureReader::new(body).unwrap();
    let mut out = Vec::new();
    while r.advance().unwrap() {
        let p = r.current().unwrap();
        out.push(StoredPacket {
            ts: p.ts,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    out
}

#[tokio::test]
async fn an_acknowledged_batch_is_retrievable_at_once_from_the_open_segment() {
    let h = Harness::start(true, 256 << 20).await;
    let org = organisation(&h, "acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    let t0 = 1_800_000_000_000_000_000;
    let query = [
        ("device", "gw"),
        ("from", "1800000000000000000"),
        ("to", "1800000001000000000"),
    ];
    let mut sent = Vec::new();
    for seq in 1..=3 {
        let pkts = packets(t0 + seq * 10_000_000, 4);
        h.send(&cred, batch(seq, &pkts)).await;
        sent.extend(pkts);
        // No wait: the acknowledgement means it is in the segment and the catalogue.
        let (status, _, body) = h.get(&org.admin_token, &query).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read_packets(&body), sent, "after batch {seq}");
    }
    let segments = h.server.segments(org.id, dev).await.unwrap();
    assert!(
        segments.len() == 1 && !segments[0].closed,
        "one open segment"
    );
}

/// A batch synced to the open segment whose catalogue record never happened (the server died in
/// between): its agent will send it again, so it must not be served now.
#[tokio::test]
async fn frames_the_catalogue_never_recorded_are_not_served() {
    let h = Harness::start(false, 256 << 20).await;
    let org = organisation(&h, "acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    let t0 = 1_800_000_000_000_000_000;
    let first = packets(t0, 5);
    h.send(&cred, batch(1, &first)).await;
    let seg = h.server.segments(org.id, dev).await.unwrap().remove(0);
    let h = h
        .restart(|data| {
            let (mut w, _) = trawl_store::SegmentWriter::reopen_for_append(
                &data.join(&seg.dir),
                &seg.name,
                trawl_store::WriterOptions::default(),
            )
            .unwrap();
            for p in packets(t0 + 100_000_000, 5) {
                w.append(p.ts, p.orig_len, &p.data).unwrap();
            }
            w.sync().unwrap();
        })
        .await;
    let query = [
        ("device", "gw"),
        ("from", "1800000000000000000"),
        ("to", "1800000001000000000"),
    ];
    let (status, _, body) = h.get(&org.admin_token, &query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_packets(&body), first);
    // The agent sends it again: now it is there, once.
    let second = packets(t0 + 100_000_000, 5);
    h.send(&cred, batch(2, &second)).await;
    let (_, _, body) = h.get(&org.admin_token, &query).await;
    assert_eq!(read_packets(&body), [first, second].concat());
}

#[tokio::test]
async fn a_damaged_frame_cuts_the_download_off_instead_of_ending_it_cleanly() {
    let h = Harness::start(false, 64 << 10).await;
    let org = organisation(&h, "acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    h.upload(&cred, &corpus().join(EXAMPLE), 100).await;
    let segments = h.server.segments(org.id, dev).await.unwrap();
    let victim = &segments[segments.len() / 2];
    let path = trawl_store::segment_path(&h.server.data_dir().join(&victim.dir), &victim.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();

    let resp = h
        .client
        .get(h.packets_url(&[
            ("device", "gw"),
            ("from", "0"),
            ("to", "9000000000000000000"),
        ]))
        .bearer_auth(&org.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the damage is found while streaming"
    );
    assert!(
        resp.bytes().await.is_err(),
        "the client must see the transfer fail, not a complete-looking capture"
    );
    // The server is still there.
    let (status, _, _) = h
        .get(
            &org.admin_token,
            &[("device", "gw"), ("from", "0"), ("to", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// `tcpdump -dd` output (`{ 0x28, 0, 0, 0x0000000c },`) as `[[code, jt, jf, k], …]`.
fn tcpdump_dd(expr: &str) -> Value {
    let out = tool("tcpdump", &["-r", s(&corpus().join(EXAMPLE)), "-dd", expr]);
    let insns: Vec<Value> = out
        .lines()
        .map(|l| {
            let f: Vec<u64> = l
                .trim_matches(|c| "{ },".contains(c))
                .split(',')
                .map(|x| {
                    let x = x.trim();
                    match x.strip_prefix("0x") {
                        Some(h) => u64::from_str_radix(h, 16).unwrap(),
                        None => x.parse().unwrap(),
                    }
                })
                .collect();
            json!(f)
        })
        .collect();
    Value::Array(insns)
}

#[tokio::test]
async fn compile_gives_libpcaps_program_to_devices_and_admins() {
    let h = Harness::start(true, 256 << 20).await;
    let org = organisation(&h, "acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    // tcpdump compiles for the file's link type (Ethernet) and snap length (65535).
    let want = tcpdump_dd("tcp port 80 and not net 10.0.0.0/8");
    let request = json!({"expression": "tcp port 80 and not net 10.0.0.0/8", "link_type": 1, "snaplen": 65535});
    for token in [&cred, &org.admin_token] {
        let (status, v) = h
            .post_json("/api/v1/compile", Some(token), request.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["program"], want);
        assert_eq!(v["instructions"], want.as_array().unwrap().len());
    }

    let (status, err) = h
        .post_json(
            "/api/v1/compile",
            Some(&cred),
            json!({"expression": "tcp port eighty", "link_type": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        err,
        json!({"error": "bad_filter", "detail": "unknown port 'eighty'"})
    );

    let (status, err) = h
        .post_json(
            "/api/v1/compile",
            Some(&cred),
            json!({"expression": "tcp", "link_type": 9999}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "bad_link_type", "{err}");
    assert!(err["detail"].as_str().unwrap().contains("9999"), "{err}");

    let (status, err) = h
        .post_json(
            "/api/v1/compile",
            Some(&cred),
            json!({"expr": "tcp", "link_type": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "bad_request", "{err}");

    let (status, _) = h.post_json("/api/v1/compile", None, request.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .post_json("/api/v1/compile", Some("not-a-credential"), request.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .post_json(
            &format!("/api/v1/devices/{dev}/revoke"),
            Some(&org.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.post_json("/api/v1/compile", Some(&cred), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked device");
}
