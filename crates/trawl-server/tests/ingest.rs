//! The ingest path end to end: a real server on 127.0.0.1:0, a real HTTP client, batches built
//! with `trawl_wire::BatchBuilder`, and the stored segments read back with trawl-store.

use std::net::SocketAddr;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_server::{Config, NewOrganisation, Rotation, Server, Tls};
use trawl_store::{SegmentReader, StoredPacket, Timestamp};
use trawl_wire::{BatchBuilder, Drops};

const LINKTYPE_ETHERNET: u32 = 1;

/// A server on a temporary data directory and a client that trusts its certificate.
struct Harness {
    dir: tempfile::TempDir,
    server: Option<Server>,
    client: reqwest::Client,
    tls: bool,
}

fn config(data: &Path, tls: bool) -> Config {
    let mut config = Config::new(data, SocketAddr::from(([127, 0, 0, 1], 0)));
    if !tls {
        config.tls = Tls::Plain;
    }
    config
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
    async fn start(tls: bool) -> Harness {
        Self::start_with(tls, |c| c).await
    }

    async fn start_with(tls: bool, adjust: impl FnOnce(Config) -> Config) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(adjust(config(dir.path(), tls)))
            .await
            .unwrap();
        let client = client_for(&server);
        Harness {
            dir,
            server: Some(server),
            client,
            tls,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Stops the server and starts a new one on the same data directory.
    async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await.unwrap();
        let server = Server::start(config(self.dir.path(), self.tls))
            .await
            .unwrap();
        self.client = client_for(&server);
        self.server = Some(server);
    }

    async fn request(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        self.request_as(path, token, body, "application/x-trawl-batch")
            .await
    }

    async fn request_as(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.server().url());
        let mut req = match &body {
            Some(_) => self.client.post(url),
            None => self.client.get(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let value = resp.json::<Value>().await.unwrap();
        (status, value)
    }

    async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&body).unwrap();
        self.request_as(path, token, Some(body), "application/json")
            .await
    }

    async fn organisation(&self, name: &str) -> NewOrganisation {
        self.server().create_organisation(name).await.unwrap()
    }

    /// Makes an enrolment token with `admin` and trades it: (device id, credential).
    async fn enrol(&self, admin: &str, name: &str) -> (i64, String) {
        let (status, token) = self
            .post_json("/api/v1/enrollment-tokens", Some(admin), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        let (status, device) = self
            .post_json(
                "/api/v1/enroll",
                None,
                json!({"token": token["token"], "name": name, "hostname": "h",
                       "interfaces": [{"name": "eth0", "link_type": 1}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        (
            device["device"].as_str().unwrap().parse().unwrap(),
            device["credential"].as_str().unwrap().to_owned(),
        )
    }

    async fn send(&self, credential: &str, batch: Vec<u8>) -> (StatusCode, Value) {
        self.request(
            "/api/v1/streams/eth0/batches",
            Some(credential),
            Some(batch),
        )
        .await
    }

    /// Every packet stored for a device, segment after segment.
    async fn stored(&self, org: i64, device: i64) -> Vec<StoredPacket> {
        let mut out = Vec::new();
        for seg in self.server().segments(org, device).await.unwrap() {
            let reader =
                SegmentReader::open(&self.server().data_dir().join(&seg.dir), &seg.name).unwrap();
            out.extend(reader.packets().map(Result::unwrap));
        }
        out
    }

    async fn devices(&self, admin: &str) -> Vec<Value> {
        let (status, v) = self.request("/api/v1/devices", Some(admin), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["devices"].as_array().unwrap().clone()
    }
}

/// The packets of batch `seq`: `n` distinct packets.
fn packets(seq: u64, n: u32) -> Vec<StoredPacket> {
    (0..n)
        .map(|i| {
            let mut data = format!("batch {seq} packet {i} ").into_bytes();
            data.resize(60 + i as usize, seq as u8);
            StoredPacket {
                ts: Timestamp::new(1_700_000_000 + seq, i * 1000),
                orig_len: data.len() as u32 + 4,
                data,
            }
        })
        .collect()
}

fn batch_of(epoch: u64, seq: u64, prev: u64, pkts: &[StoredPacket], drops: Drops) -> Vec<u8> {
    let mut b = BatchBuilder::new("eth0", LINKTYPE_ETHERNET, 262_144);
    for p in pkts {
        b.push(p.ts, p.orig_len, &p.data);
    }
    b.finish(epoch, seq, prev, drops)
}

fn batch(seq: u64, prev: u64) -> Vec<u8> {
    batch_of(7, seq, prev, &packets(seq, 3), Drops::default())
}

fn expect_stored(resp: &(StatusCode, Value), seq: u64) {
    assert_eq!(resp.0, StatusCode::OK, "{}", resp.1);
    assert_eq!(resp.1, json!({"seq": seq, "status": "stored"}));
}

#[tokio::test]
async fn a_device_streams_batches_over_tls_and_its_segment_holds_exactly_them() {
    let h = Harness::start(true).await;
    assert!(h.server().url().starts_with("https://"));
    let (status, health) = h.request("/api/v1/health", None, None).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));

    let org = h.organisation("acme").await;
    let (device, cred) = h.enrol(&org.admin_token, "gw-17").await;
    let mut sent = Vec::new();
    for seq in 1..=4 {
        let pkts = packets(seq, seq as u32 + 1);
        let drops = Drops {
            kernel: seq,
            interface: 1,
            spool: 0,
        };
        expect_stored(
            &h.send(&cred, batch_of(7, seq, seq - 1, &pkts, drops)).await,
            seq,
        );
        sent.extend(pkts);
    }
    // A heartbeat: no packets, only drop counters.
    let heartbeat = batch_of(
        7,
        5,
        4,
        &[],
        Drops {
            spool: 2,
            ..Drops::default()
        },
    );
    expect_stored(&h.send(&cred, heartbeat).await, 5);

    assert_eq!(h.stored(org.id, device).await, sent);
    let segments = h.server().segments(org.id, device).await.unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].packets, sent.len() as u64);
    assert_eq!(segments[0].drops.kernel, 1 + 2 + 3 + 4);
    assert_eq!(segments[0].drops.spool, 2);

    let devices = h.devices(&org.admin_token).await;
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d["id"], device.to_string());
    assert_eq!(d["name"], "gw-17");
    assert_eq!(d["packets"], sent.len());
    let bytes: usize = sent.iter().map(|p| p.data.len()).sum();
    assert_eq!(d["bytes"], bytes);
    assert_eq!(
        d["drops"],
        json!({"kernel": 10, "interface": 4, "spool": 2})
    );
    assert!(d["last_seen_ns"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_enrolment_token_works_once() {
    let h = Harness::start(false).await;
    let org = h.organisation("acme").await;
    let (_, token) = h
        .post_json(
            "/api/v1/enrollment-tokens",
            Some(&org.admin_token),
            json!({}),
        )
        .await;
    let enrol = json!({"token": token["token"], "name": "gw"});
    assert_eq!(
        h.post_json("/api/v1/enroll", None, enrol.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, err) = h.post_json("/api/v1/enroll", None, enrol).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"], "unauthorized");
    assert_eq!(h.devices(&org.admin_token).await.len(), 1);

    let (status, _) = h
        .post_json("/api/v1/enrollment-tokens", Some("not-a-token"), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, err) = h
        .post_json("/api/v1/enroll", None, json!({"name": 3}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "bad_request");
}

/// Sends seq 1, runs `bad`, and checks that afterwards exactly batch 1 is stored and batch 2
/// still follows it.
async fn refused_and_nothing_changed(
    h: &Harness,
    org: &NewOrganisation,
    device: i64,
    cred: &str,
    expect_status: StatusCode,
    expect_error: &str,
    bad: Vec<u8>,
) -> Value {
    expect_stored(&h.send(cred, batch(1, 0)).await, 1);
    let (status, err) = h.send(cred, bad).await;
    assert_eq!(status, expect_status, "{err}");
    assert_eq!(err["error"], expect_error, "{err}");
    assert_eq!(h.stored(org.id, device).await, packets(1, 3));
    expect_stored(&h.send(cred, batch(2, 1)).await, 2);
    err
}

async fn enrolled() -> (Harness, NewOrganisation, i64, String) {
    let h = Harness::start(false).await;
    let org = h.organisation("acme").await;
    let (device, cred) = h.enrol(&org.admin_token, "gw").await;
    (h, org, device, cred)
}

#[tokio::test]
async fn garbage_is_refused_with_what_is_wrong() {
    let (h, org, dev, cred) = enrolled().await;
    let err = refused_and_nothing_changed(
        &h,
        &org,
        dev,
        &cred,
        StatusCode::BAD_REQUEST,
        "bad_batch",
        vec![0x55; 500],
    )
    .await;
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("not a trawl batch"),
        "{err}"
    );
}

#[tokio::test]
async fn a_truncated_batch_is_refused() {
    let (h, org, dev, cred) = enrolled().await;
    let mut cut = batch(2, 1);
    cut.truncate(cut.len() - 20);
    let err = refused_and_nothing_changed(
        &h,
        &org,
        dev,
        &cred,
        StatusCode::BAD_REQUEST,
        "bad_batch",
        cut,
    )
    .await;
    assert!(
        err["detail"].as_str().unwrap().contains("body hash"),
        "{err}"
    );

    let (status, err) = h.send(&cred, batch(3, 2)[..50].to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("shorter than its 96-byte header")
    );
}

#[tokio::test]
async fn a_replayed_batch_is_acknowledged_as_duplicate_and_not_stored_twice() {
    let (h, org, dev, cred) = enrolled().await;
    expect_stored(&h.send(&cred, batch(1, 0)).await, 1);
    for _ in 0..2 {
        let (status, v) = h.send(&cred, batch(1, 0)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v, json!({"seq": 1, "status": "duplicate"}));
    }
    assert_eq!(h.stored(org.id, dev).await, packets(1, 3));
}

#[tokio::test]
async fn an_out_of_order_batch_gets_409_with_the_last_stored() {
    let (h, org, dev, cred) = enrolled().await;
    let err = refused_and_nothing_changed(
        &h,
        &org,
        dev,
        &cred,
        StatusCode::CONFLICT,
        "gap",
        batch(3, 2),
    )
    .await;
    assert_eq!(err["last"], 1);
    // Batch 2 arrived since (in the helper): now 3 follows.
    expect_stored(&h.send(&cred, batch(3, 2)).await, 3);
}

#[tokio::test]
async fn a_new_epoch_starts_again_at_one() {
    let (h, org, dev, cred) = enrolled().await;
    expect_stored(&h.send(&cred, batch(1, 0)).await, 1);
    let other_epoch = batch_of(8, 1, 0, &packets(9, 2), Drops::default());
    expect_stored(&h.send(&cred, other_epoch).await, 1);
    let mut both = packets(1, 3);
    both.extend(packets(9, 2));
    assert_eq!(h.stored(org.id, dev).await, both);
}

#[tokio::test]
async fn unknown_and_missing_credentials_get_401() {
    let (h, org, dev, _) = enrolled().await;
    let (status, err) = h.send(&"0".repeat(64), batch(1, 0)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"], "unauthorized");
    let (status, _) = h
        .request("/api/v1/streams/eth0/batches", None, Some(batch(1, 0)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.request("/api/v1/devices", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.stored(org.id, dev).await.is_empty());
}

#[tokio::test]
async fn a_revoked_device_is_refused() {
    let (h, org, dev, cred) = enrolled().await;
    expect_stored(&h.send(&cred, batch(1, 0)).await, 1);
    let (status, v) = h
        .post_json(
            &format!("/api/v1/devices/{dev}/revoke"),
            Some(&org.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, err) = h.send(&cred, batch(2, 1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(err["detail"].as_str().unwrap().contains("revoked"), "{err}");
    assert_eq!(h.stored(org.id, dev).await, packets(1, 3));
    assert_eq!(h.devices(&org.admin_token).await[0]["revoked"], true);
}

#[tokio::test]
async fn an_oversized_batch_gets_413() {
    let (h, org, dev, cred) = enrolled().await;
    let big = vec![0u8; trawl_server::MAX_BATCH + 1];
    refused_and_nothing_changed(
        &h,
        &org,
        dev,
        &cred,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        big,
    )
    .await;
}

#[tokio::test]
async fn another_organisations_device_is_not_found_and_not_listed() {
    let h = Harness::start(false).await;
    let a = h.organisation("a").await;
    let b = h.organisation("b").await;
    let (dev_b, cred_b) = h.enrol(&b.admin_token, "gw-b").await;

    let (status, err) = h
        .post_json(
            &format!("/api/v1/devices/{dev_b}/revoke"),
            Some(&a.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"], "not_found");
    assert!(h.devices(&a.admin_token).await.is_empty());
    assert_eq!(h.devices(&b.admin_token).await.len(), 1);
    // Still enrolled and working.
    expect_stored(&h.send(&cred_b, batch(1, 0)).await, 1);
    assert!(h.server().segments(a.id, dev_b).await.unwrap().is_empty());
    assert_eq!(h.stored(b.id, dev_b).await, packets(1, 3));
}

#[tokio::test]
async fn a_restart_keeps_the_last_batch_so_a_resent_one_is_a_duplicate() {
    let mut h = Harness::start(true).await;
    let org = h.organisation("acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    expect_stored(&h.send(&cred, batch(1, 0)).await, 1);
    expect_stored(&h.send(&cred, batch(2, 1)).await, 2);

    h.restart().await;
    let (status, v) = h.send(&cred, batch(2, 1)).await;
    assert_eq!(
        (status, v),
        (StatusCode::OK, json!({"seq": 2, "status": "duplicate"}))
    );
    expect_stored(&h.send(&cred, batch(3, 2)).await, 3);

    let mut all = packets(1, 3);
    all.extend(packets(2, 3));
    all.extend(packets(3, 3));
    assert_eq!(h.stored(org.id, dev).await, all);
    // The open segment was reopened, not replaced.
    assert_eq!(h.server().segments(org.id, dev).await.unwrap().len(), 1);
}

/// A batch written and synced to the segment whose catalogue record never happened (a crash
/// between the two): the agent resends it, and it must not end up in the segment twice.
#[tokio::test]
async fn frames_the_catalogue_never_recorded_are_cut_off_before_a_resend() {
    let mut h = Harness::start(false).await;
    let org = h.organisation("acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    expect_stored(&h.send(&cred, batch(1, 0)).await, 1);
    let seg = h.server().segments(org.id, dev).await.unwrap().remove(0);
    let seg_dir = h.server().data_dir().join(&seg.dir);
    h.server.take().unwrap().shutdown().await.unwrap();

    // What the server would have done for batch 2 before dying.
    let (mut w, _) = trawl_store::SegmentWriter::reopen_for_append(
        &seg_dir,
        &seg.name,
        trawl_store::WriterOptions::default(),
    )
    .unwrap();
    for p in packets(2, 3) {
        w.append(p.ts, p.orig_len, &p.data).unwrap();
    }
    w.sync().unwrap();
    drop(w);

    let server = Server::start(config(h.dir.path(), false)).await.unwrap();
    h.server = Some(server);
    expect_stored(&h.send(&cred, batch(2, 1)).await, 2);
    let mut all = packets(1, 3);
    all.extend(packets(2, 3));
    assert_eq!(h.stored(org.id, dev).await, all);
}

#[tokio::test]
async fn two_uploads_of_the_same_batch_at_once_store_it_once() {
    let (h, org, dev, cred) = enrolled().await;
    for seq in 1..=5 {
        let (a, b) = tokio::join!(
            h.send(&cred, batch(seq, seq - 1)),
            h.send(&cred, batch(seq, seq - 1))
        );
        let mut statuses = [a.1["status"].clone(), b.1["status"].clone()];
        statuses.sort_by_key(|v| v.to_string());
        assert_eq!(statuses, [json!("duplicate"), json!("stored")]);
    }
    let all: Vec<_> = (1..=5).flat_map(|s| packets(s, 3)).collect();
    assert_eq!(h.stored(org.id, dev).await, all);
}

#[tokio::test]
async fn segments_rotate_on_size_and_keep_every_packet() {
    let h = Harness::start_with(false, |mut c| {
        c.rotation = Rotation {
            max_bytes: 1,
            ..Rotation::default()
        };
        c
    })
    .await;
    let org = h.organisation("acme").await;
    let (dev, cred) = h.enrol(&org.admin_token, "gw").await;
    for seq in 1..=3 {
        expect_stored(&h.send(&cred, batch(seq, seq - 1)).await, seq);
    }
    let segments = h.server().segments(org.id, dev).await.unwrap();
    assert_eq!(segments.len(), 3);
    assert!(segments[0].closed && segments[1].closed && !segments[2].closed);
    assert!(segments.iter().all(|s| s.packets == 3));
    let all: Vec<_> = (1..=3).flat_map(|s| packets(s, 3)).collect();
    assert_eq!(h.stored(org.id, dev).await, all);
}

#[tokio::test]
async fn a_bad_stream_name_is_refused() {
    let (h, _, _, cred) = enrolled().await;
    let (status, err) = h
        .request(
            "/api/v1/streams/..%2Fetc/batches",
            Some(&cred),
            Some(batch(1, 0)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "bad_stream");
}
