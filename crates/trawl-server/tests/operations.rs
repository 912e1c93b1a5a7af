//! Running a server: `/metrics`, the device list, retention by age and size per organisation,
//! orphan files, and a full disk (a real tmpfs, when the tests run as root). A real server on
//! 127.0.0.1:0 over plain HTTP, batches built with `trawl_wire::BatchBuilder`, segments read
//! back with trawl-store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use trawl_server::{
    Config, NewOrganisation, RetentionConfig, RetentionPolicy, Rotation, SegmentRecord, Server, Tls,
};
use trawl_store::{SegmentReader, StoredPacket, Timestamp};
use trawl_wire::{BatchBuilder, Drops};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;

struct Harness {
    _dir: Option<tempfile::TempDir>,
    data: PathBuf,
    server: Option<Server>,
    client: reqwest::Client,
}

fn config(data: &Path) -> Config {
    let mut config = Config::new(data, SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls = Tls::Plain;
    // Passes run when a test asks for them (and once at start).
    config.retention.check_interval = Duration::from_secs(3600);
    config
}

/// A device's way to the server: its credential.
struct Device {
    id: i64,
    credential: String,
}

impl Harness {
    async fn start(adjust: impl FnOnce(Config) -> Config) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let mut h = Self::start_in(&data, adjust).await;
        h._dir = Some(dir);
        h
    }

    async fn start_in(data: &Path, adjust: impl FnOnce(Config) -> Config) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = Server::start(adjust(config(data))).await.unwrap();
        Harness {
            _dir: None,
            data: data.to_path_buf(),
            server: Some(server),
            client: reqwest::Client::new(),
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    async fn restart(&mut self, adjust: impl FnOnce(Config) -> Config) {
        self.server.take().unwrap().shutdown().await.unwrap();
        self.server = Some(Server::start(adjust(config(&self.data))).await.unwrap());
    }

    /// Any request; the answer's status, content type and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, String, String) {
        let url = format!("{}{path}", self.server().url());
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, b)) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, resp.text().await.unwrap())
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
        let (status, _, text) = self.call(method, path, token, body).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn organisation(&self, name: &str) -> NewOrganisation {
        self.server().create_organisation(name).await.unwrap()
    }

    async fn enrol(&self, admin: &str, name: &str, interfaces: Value) -> Device {
        let (status, token) = self
            .json(
                Method::POST,
                "/api/v1/enrollment-tokens",
                Some(admin),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        let (status, device) = self
            .json(
                Method::POST,
                "/api/v1/enroll",
                None,
                Some(json!({"token": token["token"], "name": name, "interfaces": interfaces})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        Device {
            id: device["device"].as_str().unwrap().parse().unwrap(),
            credential: device["credential"].as_str().unwrap().to_owned(),
        }
    }

    async fn send_to(&self, device: &Device, stream: &str, batch: Vec<u8>) -> (StatusCode, Value) {
        let path = format!("/api/v1/streams/{stream}/batches");
        let (status, _, text) = self
            .call(
                Method::POST,
                &path,
                Some(&device.credential),
                Some(("application/x-trawl-batch", batch)),
            )
            .await;
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn send(&self, device: &Device, batch: Vec<u8>) -> (StatusCode, Value) {
        self.send_to(device, "eth0", batch).await
    }

    async fn store(&self, device: &Device, batch: Vec<u8>) {
        let (status, v) = self.send(device, batch).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "stored", "{v}");
    }

    async fn segments(&self, org: &NewOrganisation, device: &Device) -> Vec<SegmentRecord> {
        self.server().segments(org.id, device.id).await.unwrap()
    }

    /// `/metrics` as the admin of `org`: sample (name and labels, as written) → value.
    async fn metrics(&self, admin: &str) -> HashMap<String, f64> {
        let (status, content_type, text) =
            self.call(Method::GET, "/metrics", Some(admin), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let mut typed = std::collections::HashSet::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap();
                assert!(matches!(parts.next(), Some("counter" | "gauge")), "{line}");
                typed.insert(name.to_owned());
                continue;
            }
            if line.starts_with('#') {
                assert!(line.starts_with("# HELP trawl_"), "{line}");
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            assert!(typed.contains(name), "{name} comes before its # TYPE");
            samples.insert(series.to_owned(), value.parse::<f64>().unwrap());
        }
        samples
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `n` distinct packets of batch `seq`, at `secs` (seconds since 1970).
fn packets_at(seq: u64, n: u32, secs: u64) -> Vec<StoredPacket> {
    (0..n)
        .map(|i| {
            let mut data = format!("batch {seq} packet {i} ").into_bytes();
            data.resize(60 + i as usize, seq as u8);
            StoredPacket {
                ts: Timestamp::new(secs, i * 1000),
                orig_len: data.len() as u32 + 4,
                data,
            }
        })
        .collect()
}

fn packets(seq: u64, n: u32) -> Vec<StoredPacket> {
    packets_at(seq, n, 1_700_000_000 + seq)
}

fn build(
    stream: &str,
    link_type: u32,
    epoch: u64,
    seq: u64,
    pkts: &[StoredPacket],
    drops: Drops,
) -> Vec<u8> {
    let mut b = BatchBuilder::new(stream, link_type, 262_144);
    for p in pkts {
        b.push(p.ts, p.orig_len, &p.data);
    }
    b.finish(epoch, seq, seq - 1, drops)
}

fn batch_of(seq: u64, pkts: &[StoredPacket]) -> Vec<u8> {
    build("eth0", LINKTYPE_ETHERNET, 7, seq, pkts, Drops::default())
}

fn batch(seq: u64) -> Vec<u8> {
    batch_of(seq, &packets(seq, 3))
}

/// Every packet of the segments, read from their files, in order.
fn read_all(data: &Path, segments: &[SegmentRecord]) -> Vec<StoredPacket> {
    let mut out = Vec::new();
    for s in segments {
        let reader = SegmentReader::open(&data.join(&s.dir), &s.name)
            .unwrap_or_else(|e| panic!("segment {}: {e}", s.name));
        out.extend(reader.packets().map(Result::unwrap));
    }
    out
}

fn rotate_every_batch(mut c: Config) -> Config {
    c.rotation = Rotation {
        max_bytes: 1,
        ..Rotation::default()
    };
    c
}

#[tokio::test]
async fn metrics_count_batches_and_show_only_the_callers_devices() {
    let h = Harness::start(|c| c).await;
    let a = h.organisation("a").await;
    let b = h.organisation("b").await;
    let gw_a = h.enrol(&a.admin_token, "gw-a", json!([])).await;
    let gw_b = h.enrol(&b.admin_token, "gw-b", json!([])).await;

    let before = h.metrics(&a.admin_token).await;
    assert_eq!(before["trawl_batches_total{outcome=\"stored\"}"], 0.0);
    assert_eq!(before["trawl_storage_full"], 0.0);
    assert!(before["trawl_data_free_bytes"] > 0.0);
    assert!(before["trawl_uptime_seconds"] >= 0.0);

    for seq in 1..=3 {
        let drops = Drops {
            kernel: 2,
            interface: 0,
            spool: 1,
        };
        let batch = build("eth0", LINKTYPE_ETHERNET, 7, seq, &packets(seq, 3), drops);
        let (status, v) = h.send(&gw_a, batch).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    h.store(&gw_b, batch(1)).await;
    assert_eq!(h.send(&gw_a, batch(3)).await.1["status"], "duplicate");
    assert_eq!(h.send(&gw_a, batch(9)).await.0, StatusCode::CONFLICT);
    assert_eq!(
        h.send(&gw_a, vec![0x55; 300]).await.0,
        StatusCode::BAD_REQUEST
    );
    let stranger = Device {
        id: 0,
        credential: "0".repeat(64),
    };
    assert_eq!(
        h.send(&stranger, batch(1)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let m = h.metrics(&a.admin_token).await;
    let outcome = |o: &str| m[&format!("trawl_batches_total{{outcome=\"{o}\"}}")];
    assert_eq!(outcome("stored"), 4.0);
    assert_eq!(outcome("duplicate"), 1.0);
    assert_eq!(outcome("gap"), 1.0);
    assert_eq!(outcome("bad"), 1.0);
    assert_eq!(outcome("unauthorized"), 1.0);
    assert_eq!(outcome("too_large"), 0.0);
    assert_eq!(outcome("storage_error"), 0.0);
    assert_eq!(m["trawl_packets_stored_total"], 12.0);
    let bytes: usize = (1..=3)
        .chain([1])
        .flat_map(|s| packets(s, 3))
        .map(|p| p.data.len())
        .sum();
    assert_eq!(m["trawl_bytes_stored_total"], bytes as f64);
    assert_eq!(m["trawl_storage_errors_total{reason=\"no_space\"}"], 0.0);
    assert_eq!(m["trawl_segments_open"], 2.0, "one per stream");
    assert!(m["trawl_organisation_stored_bytes"] > 0.0);

    let id = gw_a.id;
    let dev = |name: &str| format!("{{device=\"gw-a\",device_id=\"{id}\"{name}}}");
    assert_eq!(m[&format!("trawl_device_packets_total{}", dev(""))], 9.0);
    let a_bytes: usize = (1..=3)
        .flat_map(|s| packets(s, 3))
        .map(|p| p.data.len())
        .sum();
    assert_eq!(
        m[&format!("trawl_device_bytes_total{}", dev(""))],
        a_bytes as f64
    );
    assert_eq!(
        m[&format!("trawl_device_drops_total{}", dev(",kind=\"kernel\""))],
        6.0
    );
    assert_eq!(
        m[&format!("trawl_device_drops_total{}", dev(",kind=\"spool\""))],
        3.0
    );
    assert_eq!(m[&format!("trawl_device_connected{}", dev(""))], 1.0);
    let seen = m[&format!("trawl_device_last_seen_seconds{}", dev(""))];
    assert!((seen - now_secs() as f64).abs() < 60.0, "{seen}");
    assert!(
        !m.keys().any(|k| k.contains("gw-b")),
        "organisation a sees b's device"
    );

    // b sees its own device and not a's; the server-wide counters are the same.
    let mb = h.metrics(&b.admin_token).await;
    assert!(mb.keys().any(|k| k.contains("device=\"gw-b\"")));
    assert!(!mb.keys().any(|k| k.contains("gw-a")));
    assert_eq!(mb["trawl_batches_total{outcome=\"stored\"}"], 4.0);

    for token in [None, Some("not-a-token"), Some(gw_a.credential.as_str())] {
        let (status, _, text) = h.call(Method::GET, "/metrics", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!text.contains("trawl_"), "{text}");
    }
}

#[tokio::test]
async fn the_device_list_shows_connection_streams_link_types_and_totals() {
    let h = Harness::start(|c| c).await;
    let org = h.organisation("acme").await;
    let gw = h
        .enrol(
            &org.admin_token,
            "gw",
            json!([{"name": "eth0", "link_type": 1}]),
        )
        .await;
    let idle = h
        .enrol(
            &org.admin_token,
            "idle",
            json!([{"name": "tun0", "link_type": 12}]),
        )
        .await;

    let epoch: u64 = 0xFFFF_FFFF_FFFF_FFF0;
    let drops = Drops {
        kernel: 4,
        interface: 1,
        spool: 0,
    };
    for seq in 1..=2 {
        let b = build(
            "eth0",
            LINKTYPE_ETHERNET,
            epoch,
            seq,
            &packets(seq, 2),
            drops,
        );
        assert_eq!(h.send_to(&gw, "eth0", b).await.0, StatusCode::OK);
    }
    let b = build(
        "eth0",
        LINKTYPE_ETHERNET,
        5,
        1,
        &packets(3, 1),
        Drops::default(),
    );
    assert_eq!(h.send_to(&gw, "eth0", b).await.0, StatusCode::OK);
    let b = build("wg0", LINKTYPE_RAW, 9, 1, &packets(4, 3), Drops::default());
    assert_eq!(h.send_to(&gw, "wg0", b).await.0, StatusCode::OK);

    let (status, v) = h
        .json(Method::GET, "/api/v1/devices", Some(&org.admin_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let (d, i) = (&devices[0], &devices[1]);
    assert_eq!(d["name"], "gw");
    assert_eq!(d["connected"], true);
    let last_seen = d["last_seen"].as_str().unwrap();
    // 2026-05-06T07:08:09.123Z
    let shape: String = last_seen
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{last_seen}");
    assert!(d["last_seen_ns"].as_u64().unwrap() > 0);
    assert_eq!(d["link_types"], json!([1, 101]));
    let bytes =
        |seq: u64, n: u32| -> u64 { packets(seq, n).iter().map(|p| p.data.len() as u64).sum() };
    assert_eq!(
        d["streams"],
        json!([
            {"name": "eth0", "epoch": epoch, "last_seq": 2, "packets": 4,
             "bytes": bytes(1, 2) + bytes(2, 2),
             "drops": {"kernel": 8, "interface": 2, "spool": 0}},
            {"name": "eth0", "epoch": 5, "last_seq": 1, "packets": 1, "bytes": bytes(3, 1),
             "drops": {"kernel": 0, "interface": 0, "spool": 0}},
            {"name": "wg0", "epoch": 9, "last_seq": 1, "packets": 3, "bytes": bytes(4, 3),
             "drops": {"kernel": 0, "interface": 0, "spool": 0}},
        ])
    );
    assert_eq!(d["packets"], 8);

    assert_eq!(i["name"], "idle");
    assert_eq!(i["connected"], false);
    assert_eq!(i["last_seen"], Value::Null);
    assert_eq!(i["link_types"], json!([12]), "from its enrolment");
    assert_eq!(i["streams"], json!([]));
    assert_eq!(idle.id.to_string(), i["id"]);

    assert_eq!(
        v["totals"],
        json!({"devices": 2, "connected": 1, "packets": 8,
               "bytes": bytes(1, 2) + bytes(2, 2) + bytes(3, 1) + bytes(4, 3),
               "drops": {"kernel": 8, "interface": 2, "spool": 0}})
    );
}

#[tokio::test]
async fn retention_by_age_deletes_old_closed_segments_of_that_organisation_only() {
    let h = Harness::start(rotate_every_batch).await;
    let a = h.organisation("a").await;
    let b = h.organisation("b").await;
    let gw_a = h.enrol(&a.admin_token, "gw-a", json!([])).await;
    let gw_b = h.enrol(&b.admin_token, "gw-b", json!([])).await;

    let (old, recent) = (now_secs() - 3 * 3600, now_secs() - 600);
    // One segment per batch; the last one stays open.
    let times = [old, old, recent, old];
    let mut sent = Vec::new();
    for (i, t) in times.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let pkts = packets_at(seq, 3, t);
        h.store(&gw_a, batch_of(seq, &pkts)).await;
        sent.push(pkts);
    }
    for seq in 1..=3 {
        h.store(&gw_b, batch_of(seq, &packets_at(seq, 2, old)))
            .await;
    }
    let before = h.segments(&a, &gw_a).await;
    assert_eq!(before.len(), 4);
    let b_before = h.segments(&b, &gw_b).await;

    let (status, v) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            Some(&a.admin_token),
            Some(json!({"max_age_secs": 3600, "max_bytes": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "organisation");
    let report = h.server().enforce_retention().await.unwrap();
    assert_eq!(report.deleted_segments, 2, "{report:?}");
    assert!(report.deleted_bytes > 0);

    let after = h.segments(&a, &gw_a).await;
    assert_eq!(
        after,
        before[2..].to_vec(),
        "the recent one and the open one stay"
    );
    assert!(!after[1].closed);
    for gone in &before[..2] {
        let dir = h.data.join(&gone.dir);
        assert!(!trawl_store::segment_path(&dir, &gone.name).exists());
        assert!(!trawl_store::index_path(&dir, &gone.name).exists());
    }
    let kept: Vec<_> = sent[2..].concat();
    assert_eq!(read_all(&h.data, &after), kept);

    // The other organisation has no limit: all its old segments stay, and read back.
    assert_eq!(h.segments(&b, &gw_b).await, b_before);
    assert_eq!(
        read_all(&h.data, &b_before),
        (1..=3)
            .flat_map(|s| packets_at(s, 2, old))
            .collect::<Vec<_>>()
    );

    let m = h.metrics(&a.admin_token).await;
    assert_eq!(m["trawl_retention_deleted_segments_total"], 2.0);
    assert_eq!(
        m["trawl_retention_deleted_bytes_total"],
        report.deleted_bytes as f64
    );

    // The streams go on: a deleted batch resent is still a duplicate, the next one is stored.
    assert_eq!(h.send(&gw_a, batch(1)).await.1["status"], "duplicate");
    let recent_5 = packets_at(5, 3, recent);
    h.store(&gw_a, batch_of(5, &recent_5)).await;
    // Batch 4's segment is closed now, and old: the next pass deletes it, and only it.
    let again = h.server().enforce_retention().await.unwrap();
    assert_eq!(again.deleted_segments, 1, "{again:?}");
    let after = h.segments(&a, &gw_a).await;
    assert_eq!(after.len(), 2);
    assert_eq!(
        read_all(&h.data, &after),
        [sent[2].clone(), recent_5].concat()
    );
    let again = h.server().enforce_retention().await.unwrap();
    assert_eq!(again.deleted_segments, 0, "{again:?}");
}

#[tokio::test]
async fn retention_by_size_keeps_the_newest_up_to_the_limit_and_the_server_default_applies() {
    let default_limit = 1; // bytes: every closed segment of an organisation without its own
    let h = Harness::start(|c| {
        let mut c = rotate_every_batch(c);
        c.retention = RetentionConfig {
            default: RetentionPolicy {
                max_age_secs: None,
                max_bytes: Some(default_limit),
            },
            check_interval: Duration::from_secs(3600),
        };
        c
    })
    .await;
    let a = h.organisation("a").await;
    let b = h.organisation("b").await;
    let gw_a = h.enrol(&a.admin_token, "gw-a", json!([])).await;
    let gw_b = h.enrol(&b.admin_token, "gw-b", json!([])).await;
    // a has its own limits before anything is stored (the startup pass has run already).
    let (status, v) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            Some(&a.admin_token),
            Some(json!({"max_age_secs": null, "max_bytes": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for seq in 1..=6 {
        h.store(&gw_a, batch(seq)).await;
    }
    for seq in 1..=3 {
        h.store(&gw_b, batch(seq)).await;
    }
    let segs = h.segments(&a, &gw_a).await;
    assert_eq!(segs.len(), 6);
    let newest_three: u64 = segs[3..].iter().map(|s| s.stored_bytes).sum();

    // No limit for a: nothing of a's goes; b, on the default of 1 byte, keeps its open segment.
    let report = h.server().enforce_retention().await.unwrap();
    assert_eq!(report.deleted_segments, 2, "{report:?}");
    assert_eq!(h.segments(&a, &gw_a).await, segs);
    let b_left = h.segments(&b, &gw_b).await;
    assert_eq!(b_left.len(), 1);
    assert!(!b_left[0].closed, "the open segment is never deleted");
    assert_eq!(read_all(&h.data, &b_left), packets(3, 3));

    let (status, _) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            Some(&a.admin_token),
            Some(json!({"max_age_secs": null, "max_bytes": newest_three})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = h.server().enforce_retention().await.unwrap();
    assert_eq!(report.deleted_segments, 3, "{report:?}");
    let left = h.segments(&a, &gw_a).await;
    assert_eq!(left, segs[3..].to_vec());
    assert_eq!(
        read_all(&h.data, &left),
        (4..=6).flat_map(|s| packets(s, 3)).collect::<Vec<_>>()
    );

    // One byte under: the oldest of the three goes too.
    let (status, _) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            Some(&a.admin_token),
            Some(json!({"max_age_secs": null, "max_bytes": newest_three - 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.server().enforce_retention().await.unwrap();
    assert_eq!(h.segments(&a, &gw_a).await, segs[4..].to_vec());
}

#[tokio::test]
async fn the_retention_api_shows_the_limits_and_refuses_bad_ones() {
    let h = Harness::start(|mut c| {
        c.retention.default = RetentionPolicy {
            max_age_secs: Some(86_400),
            max_bytes: None,
        };
        c
    })
    .await;
    let org = h.organisation("acme").await;
    let token = Some(org.admin_token.as_str());

    let (status, v) = h.json(Method::GET, "/api/v1/retention", token, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "server");
    assert_eq!(v["max_age_secs"], 86_400);
    assert_eq!(v["max_bytes"], Value::Null);

    for (body, expect) in [
        (
            json!({"max_age_secs": 0, "max_bytes": null}),
            "max_age_secs must be from 1",
        ),
        (
            json!({"max_age_secs": -1, "max_bytes": null}),
            "max_age_secs must be a whole number",
        ),
        (
            json!({"max_age_secs": null, "max_bytes": "10G"}),
            "max_bytes must be a whole number",
        ),
        (json!({"max_bytes": 5}), "max_age_secs is missing"),
        (
            json!({"max_age_secs": 1, "max_bytes": 1, "maxbytes": 1}),
            "unknown field \"maxbytes\"",
        ),
        (json!("forever"), "JSON object"),
    ] {
        let (status, v) = h
            .json(Method::PUT, "/api/v1/retention", token, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"], "bad_request");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(expect), "{body}: {detail}");
    }
    // Not JSON at all.
    let (status, _, text) = h
        .call(
            Method::PUT,
            "/api/v1/retention",
            token,
            Some(("application/json", b"{max".to_vec())),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // Nothing changed.
    let (_, v) = h.json(Method::GET, "/api/v1/retention", token, None).await;
    assert_eq!(v["source"], "server");

    let (status, v) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            token,
            Some(json!({"max_age_secs": null, "max_bytes": 1_000_000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = h.json(Method::GET, "/api/v1/retention", token, None).await;
    assert_eq!(
        (&v["source"], &v["max_age_secs"], &v["max_bytes"]),
        (&json!("organisation"), &Value::Null, &json!(1_000_000))
    );
    assert_eq!(v["server_default"]["max_age_secs"], 86_400);

    let (status, v) = h
        .json(Method::DELETE, "/api/v1/retention", token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["source"], "server");
    assert_eq!(v["max_age_secs"], 86_400);

    let (status, _) = h.json(Method::GET, "/api/v1/retention", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .json(
            Method::PUT,
            "/api/v1/retention",
            Some("nope"),
            Some(json!({"max_age_secs": 1, "max_bytes": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_pass_closes_overdue_open_segments_and_removes_orphan_files() {
    // Segments rotate after an hour; the pass below runs as if two hours had gone by.
    let mut h = Harness::start(|c| c).await;
    let org = h.organisation("acme").await;
    let gw = h.enrol(&org.admin_token, "gw", json!([])).await;
    h.store(&gw, batch(1)).await;
    let wg1 = build("wg0", LINKTYPE_RAW, 3, 1, &packets(10, 2), Drops::default());
    assert_eq!(h.send_to(&gw, "wg0", wg1).await.0, StatusCode::OK);

    // The server stops (the wg0 segment stays open in the catalogue) after writing frames for
    // a batch it never recorded.
    h.restart(|c| c).await;
    let segs = h.segments(&org, &gw).await;
    let wg = segs
        .iter()
        .find(|s| s.stream_id != segs[0].stream_id)
        .unwrap();
    let (mut w, _) = trawl_store::SegmentWriter::reopen_for_append(
        &h.data.join(&wg.dir),
        &wg.name,
        trawl_store::WriterOptions::default(),
    )
    .unwrap();
    for p in packets(11, 2) {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    // eth0's segment is reopened by its next batch and held by the server.
    h.store(&gw, batch(2)).await;

    let dev_dir = h.data.join(&segs[0].dir);
    let orphans = [
        trawl_store::segment_path(&dev_dir, "s99-99"),
        trawl_store::index_path(&dev_dir, "s99-99"),
    ];
    for o in &orphans {
        std::fs::write(o, b"left behind").unwrap();
    }
    let unrelated = dev_dir.join("README");
    std::fs::write(&unrelated, b"not a segment").unwrap();

    let report = h.server().enforce_retention().await.unwrap();
    assert_eq!(report.closed_segments, 0, "not overdue yet: {report:?}");
    assert_eq!(report.orphan_files, 2, "{report:?}");
    for o in &orphans {
        assert!(!o.exists(), "{}", o.display());
    }
    assert!(unrelated.exists());

    let later = SystemTime::now() + Duration::from_secs(2 * 3600);
    let report = h.server().enforce_retention_as_of(later).await.unwrap();
    assert_eq!(report.closed_segments, 2, "{report:?}");
    assert_eq!(report.orphan_files, 0, "{report:?}");
    assert_eq!(report.deleted_segments, 0);

    let segs = h.segments(&org, &gw).await;
    assert!(segs.iter().all(|s| s.closed), "{segs:?}");
    for s in &segs {
        let len = std::fs::metadata(trawl_store::segment_path(&h.data.join(&s.dir), &s.name))
            .unwrap()
            .len();
        assert_eq!(
            len, s.stored_bytes,
            "{}: nothing unrecorded is left",
            s.name
        );
    }
    let mut all = packets(1, 3);
    all.extend(packets(2, 3));
    let eth: Vec<_> = segs
        .iter()
        .filter(|s| s.stream_id == segs[0].stream_id)
        .cloned()
        .collect();
    assert_eq!(read_all(&h.data, &eth), all);
    let wg: Vec<_> = segs
        .iter()
        .filter(|s| s.stream_id != segs[0].stream_id)
        .cloned()
        .collect();
    assert_eq!(
        read_all(&h.data, &wg),
        packets(10, 2),
        "the unrecorded batch was cut off"
    );

    // The streams go on in new segments.
    h.store(&gw, batch(3)).await;
    let segs = h.segments(&org, &gw).await;
    assert_eq!(segs.len(), 3);
    assert!(!segs[2].closed);
    let m = h.metrics(&org.admin_token).await;
    assert_eq!(m["trawl_segments_open"], 1.0);
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a file the server held): detach it now, freed when closed.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

/// `n` packets of 1000 bytes that do not compress, for batch `seq`.
fn incompressible(seq: u64, n: u32) -> Vec<StoredPacket> {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            let data: Vec<u8> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            StoredPacket {
                ts: Timestamp::new(1_700_000_000 + seq, i),
                orig_len: 1000,
                data,
            }
        })
        .collect()
}

/// Fills the file system of `path` with a file: writes until it is full.
fn fill(path: &Path) -> std::fs::File {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 16 << 10];
    for _ in 0..100_000 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.flush();
    f
}

#[tokio::test]
async fn a_full_disk_is_survived_and_leaves_no_corrupt_segment() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: mounting a tmpfs needs root");
        return;
    }
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    let tmpfs = match Tmpfs::mount(&data, "2m") {
        Ok(t) => t,
        Err(e) => {
            println!("skipped: could not mount a tmpfs: {e}");
            return;
        }
    };
    let mut h = Harness::start_in(&data, |mut c| {
        c.rotation.max_bytes = 64 << 10;
        c
    })
    .await;
    let org = h.organisation("acme").await;
    let gw = h.enrol(&org.admin_token, "gw", json!([])).await;
    h.store(&gw, batch_of(1, &incompressible(1, 20))).await;
    let mut acknowledged = incompressible(1, 20);

    // Leave about 300 KiB free: the filler fills the disk, then gives some back.
    let filler_path = data.join("filler");
    let filler = fill(&filler_path);
    let len = filler.metadata().unwrap().len();
    filler.set_len(len.saturating_sub(300 << 10)).unwrap();
    drop(filler);

    let mut seq = 2;
    let mut refused = None;
    while seq < 200 {
        let pkts = incompressible(seq, 20);
        let (status, v) = h.send(&gw, batch_of(seq, &pkts)).await;
        match status {
            StatusCode::OK => {
                assert_eq!(v["status"], "stored", "{v}");
                acknowledged.extend(pkts);
                seq += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(v);
                break;
            }
            s => panic!("batch {seq}: {s} {v}"),
        }
    }
    let refused = refused.expect("the disk fills up");
    assert!(seq > 2, "some batches were stored before the disk was full");
    assert_eq!(refused["error"], "storage", "{refused}");
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("no space left"), "{detail}");

    // The agent retries; the server goes on answering.
    for _ in 0..3 {
        let (status, v) = h.send(&gw, batch_of(seq, &incompressible(seq, 20))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    }
    let (status, health) = h.json(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let m = h.metrics(&org.admin_token).await;
    assert_eq!(m["trawl_storage_full"], 1.0);
    assert!(m["trawl_storage_errors_total{reason=\"no_space\"}"] >= 4.0);
    assert!(m["trawl_batches_total{outcome=\"storage_error\"}"] >= 4.0);
    assert!(m["trawl_data_free_bytes"] < (300 << 10) as f64);

    // Space is freed: the resent batch is stored, and the next ones.
    std::fs::remove_file(&filler_path).unwrap();
    for _ in 0..4 {
        let pkts = incompressible(seq, 20);
        h.store(&gw, batch_of(seq, &pkts)).await;
        acknowledged.extend(pkts);
        seq += 1;
    }
    let m = h.metrics(&org.admin_token).await;
    assert_eq!(m["trawl_storage_full"], 0.0);

    // The disk full to the last byte, and small batches: their frames fit in the slack of the
    // segment file's last page, so it is usually the catalogue's commit that fails first —
    // after the segment was synced. The frames it holds but the catalogue does not must be
    // cut off before the resent batch is stored again.
    drop(fill(&filler_path));
    let mut refused = None;
    for _ in 0..200 {
        let pkts = packets(seq, 3);
        let (status, v) = h.send(&gw, batch_of(seq, &pkts)).await;
        if status != StatusCode::OK {
            refused = Some((status, v));
            break;
        }
        acknowledged.extend(pkts);
        seq += 1;
    }
    let (status, v) = refused.expect("the disk fills up again");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("no space left"),
        "{v}"
    );
    std::fs::remove_file(&filler_path).unwrap();
    for _ in 0..2 {
        let pkts = packets(seq, 3);
        h.store(&gw, batch_of(seq, &pkts)).await;
        acknowledged.extend(pkts);
        seq += 1;
    }

    // Every segment opens, holds exactly what its record says, and together they hold each
    // acknowledged packet once, in order — also after a restart.
    for round in 0..2 {
        let segs = h.segments(&org, &gw).await;
        assert!(segs.len() >= 2, "{segs:?}");
        let mut stored = Vec::new();
        for s in &segs {
            let dir = data.join(&s.dir);
            let reader = SegmentReader::open(&dir, &s.name)
                .unwrap_or_else(|e| panic!("round {round}, segment {}: {e}", s.name));
            assert_eq!(reader.recovery().ignored_tail_bytes, 0, "{}", s.name);
            let len = std::fs::metadata(trawl_store::segment_path(&dir, &s.name))
                .unwrap()
                .len();
            assert_eq!(len, s.stored_bytes, "{}", s.name);
            let pkts: Vec<_> = reader.packets().map(Result::unwrap).collect();
            assert_eq!(pkts.len() as u64, s.packets, "{}", s.name);
            stored.extend(pkts);
        }
        assert_eq!(stored.len(), acknowledged.len(), "round {round}");
        assert!(stored == acknowledged, "round {round}: the packets differ");
        h.restart(|mut c| {
            c.rotation.max_bytes = 64 << 10;
            c
        })
        .await;
    }
    h.server.take().unwrap().shutdown().await.unwrap();
    drop(tmpfs);
}
