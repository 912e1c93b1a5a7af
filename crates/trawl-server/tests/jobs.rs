//! Capture jobs through the REST API: a real server on 127.0.0.1:0, and agents played by an
//! HTTP client — hello, the command poll, the reports, batches on the job's stream — so that
//! every answer of the contract (docs/protocol.md, "Commands and capture jobs") is checked:
//! the commands and their timing, the job record, the merged download, organisation
//! isolation and the errors. The real agent against tcpdump is `crates/trawl/tests/jobs.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_pcap::{CaptureReader, Timestamp};
use trawl_server::retrieve::{CompileRequest, compile};
use trawl_server::{Config, Server, Tls};
use trawl_wire::{BatchBuilder, Drops};

struct Harness {
    _dir: tempfile::TempDir,
    server: Option<Server>,
    client: reqwest::Client,
}

impl Harness {
    async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        config.tls = Tls::Plain;
        let server = Server::start(config).await.unwrap();
        Harness {
            _dir: dir,
            server: Some(server),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.as_ref().unwrap().url())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = match method {
            "GET" => self.client.get(self.url(path)),
            _ => self.client.post(self.url(path)),
        };
        req = req.bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, token, Some(body)).await
    }

    async fn organisation(&self, name: &str) -> String {
        let org = self
            .server
            .as_ref()
            .unwrap()
            .create_organisation(name)
            .await
            .unwrap();
        org.admin_token
    }

    /// Enrols a device; returns (id, credential).
    async fn enrol(&self, admin: &str, name: &str) -> (String, String) {
        let (status, token) = self
            .post("/api/v1/enrollment-tokens", admin, json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        let resp = self
            .client
            .post(self.url("/api/v1/enroll"))
            .json(
                &json!({"token": token["token"], "name": name, "hostname": "h",
                          "interfaces": [{"name": "eth0", "link_type": 1}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let device: Value = resp.json().await.unwrap();
        (
            device["device"].as_str().unwrap().to_owned(),
            device["credential"].as_str().unwrap().to_owned(),
        )
    }

    /// An agent's hello: capture interface eth0, and lo.
    async fn hello(&self, credential: &str, jobs: &[i64]) {
        let (status, v) = self
            .post(
                "/api/v1/agent/hello",
                credential,
                json!({"interfaces": [{"name": "eth0", "link_type": 1, "capture": true},
                                      {"name": "lo", "link_type": 1}],
                       "jobs": jobs}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    /// A command poll, run in the background.
    fn poll(&self, credential: &str, after: i64, wait: f64) -> tokio::task::JoinHandle<Value> {
        let (client, url, credential) = (
            self.client.clone(),
            self.url(&format!("/api/v1/agent/commands?after={after}&wait={wait}")),
            credential.to_owned(),
        );
        tokio::spawn(async move {
            let resp = client
                .get(url)
                .bearer_auth(credential)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        })
    }

    /// Waits until the device list shows the device polling.
    async fn wait_polling(&self, admin: &str, device: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, v) = self.get("/api/v1/devices", admin).await;
            let polling = v["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["id"] == device && d["polling"] == true);
            if polling {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "device {device} never polls: {v}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn send_batch(&self, credential: &str, stream: &str, batch: Vec<u8>) {
        let resp = self
            .client
            .post(self.url(&format!("/api/v1/streams/{stream}/batches")))
            .bearer_auth(credential)
            .header("content-type", "application/x-trawl-batch")
            .body(batch)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
    }
}

/// A batch of packets stamped at `times` (ns since 1970) on interface `iface`.
fn batch(iface: &str, seq: u64, times: &[u64], tag: u8) -> Vec<u8> {
    let mut b = BatchBuilder::new(iface, 1, 262_144);
    for (i, t) in times.iter().enumerate() {
        let mut data = vec![tag; 60];
        data[0] = i as u8;
        b.push(Timestamp::from_nanos(*t), 60, &data);
    }
    b.finish(0x5eed, seq, seq - 1, Drops::default())
}

fn rows(job: &Value) -> Vec<Value> {
    job["devices"].as_array().unwrap().clone()
}

fn row<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no device {name} in {job}"))
}

/// Three devices, two polling: the job reaches each polling agent at once with the program the
/// server compiled, the third is offline at once; the agents' reports and batches make the
/// record, and the download merges the devices' packets in time order, one interface each.
#[tokio::test]
async fn a_job_reaches_polling_agents_at_once_and_is_recorded_and_downloaded() {
    let h = Harness::start().await;
    let admin = h.organisation("acme").await;
    let (a, cred_a) = h.enrol(&admin, "a").await;
    let (b, cred_b) = h.enrol(&admin, "b").await;
    let (_c, _) = h.enrol(&admin, "c").await;
    h.hello(&cred_a, &[]).await;
    h.hello(&cred_b, &[]).await;
    let poll_a = h.poll(&cred_a, 0, 25.0);
    let poll_b = h.poll(&cred_b, 0, 25.0);
    h.wait_polling(&admin, &a).await;
    h.wait_polling(&admin, &b).await;

    let asked = Instant::now();
    let (status, job) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a", b.parse::<u64>().unwrap(), "c"],
                   "expression": "icmp or tcp port 5001", "max_packets": 100,
                   "name": "chain", "notes": "a test"}),
        )
        .await;
    let created_in = asked.elapsed();
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    assert_eq!(job["state"], "running");
    assert_eq!(job["offline"], json!(["c"]));
    assert_eq!(row(&job, "c")["state"], "offline", "{job}");
    assert!(
        row(&job, "c")["reason"]
            .as_str()
            .unwrap()
            .contains("not connected")
    );
    for d in ["a", "b"] {
        let r = row(&job, d);
        assert_eq!(r["state"], "pending", "{job}");
        assert_eq!(
            r["interface"], "eth0",
            "the capture interface by default: {job}"
        );
        assert_eq!(r["stream"], format!("job-{id}-eth0"));
        assert_eq!(r["filter_mode"], "kernel");
    }

    // The commands arrive within a second of the request (they are answered as soon as the
    // job is recorded).
    let expected = compile(&CompileRequest {
        expression: "icmp or tcp port 5001".into(),
        link_type: 1,
        snaplen: Some(262_144),
    })
    .unwrap();
    let mut last_command = 0;
    for poll in [poll_a, poll_b] {
        let answer = tokio::time::timeout(Duration::from_secs(1), poll)
            .await
            .expect("the command within a second")
            .unwrap();
        let commands = answer["commands"].as_array().unwrap();
        assert_eq!(commands.len(), 1, "{answer}");
        let c = &commands[0];
        assert_eq!(c["kind"], "start_job");
        assert_eq!(c["job"], id);
        assert_eq!(c["stream"], format!("job-{id}-eth0"));
        assert_eq!(c["interface"], "eth0");
        assert_eq!(c["link_type"], 1);
        assert_eq!(c["snaplen"], 262_144);
        assert_eq!(c["filter_mode"], "kernel");
        assert_eq!(c["max_packets"], 100);
        assert_eq!(c["duration_ms"], Value::Null);
        assert_eq!(c["program"], serde_json::to_value(&expected).unwrap());
        last_command = c["id"].as_i64().unwrap();
    }
    eprintln!(
        "job created in {:.1} ms; both commands delivered within {:.1} ms of the request",
        created_in.as_secs_f64() * 1e3,
        asked.elapsed().as_secs_f64() * 1e3
    );

    // Until the agent says it started, a poll from the start (an agent that restarted) gets
    // the start again; a poll after it does not. The stored program is the one sent.
    let again = h.poll(&cred_a, 0, 0.0).await.unwrap();
    assert_eq!(again["commands"][0]["job"], id, "{again}");
    let after = h.poll(&cred_a, last_command, 0.0).await.unwrap();
    assert_eq!(after["commands"], json!([]), "{after}");
    let (_, shown) = h.get(&format!("/api/v1/jobs/{id}"), &admin).await;
    assert_eq!(
        row(&shown, "a")["program"],
        serde_json::to_value(&expected).unwrap()
    );
    assert_eq!(row(&shown, "a")["instructions"], expected.len());

    // The agents start, send their packets (interleaved in time) and report.
    let t0 = 1_700_000_000_000_000_000u64;
    for (cred, started) in [(&cred_a, t0), (&cred_b, t0 + 1000)] {
        let (status, v) = h
            .post(
                &format!("/api/v1/agent/jobs/{id}/started"),
                cred,
                json!({"started_ns": started}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (_, running) = h.get(&format!("/api/v1/jobs/{id}"), &admin).await;
    assert_eq!(row(&running, "a")["state"], "running");
    assert_eq!(running["state"], "running");
    let stream = format!("job-{id}-eth0");
    h.send_batch(
        &cred_a,
        &stream,
        batch("eth0", 1, &[t0 + 10, t0 + 30, t0 + 50], 0xa),
    )
    .await;
    h.send_batch(&cred_b, &stream, batch("eth0", 1, &[t0 + 20, t0 + 40], 0xb))
        .await;
    for (cred, packets, ended) in [(&cred_a, 3, t0 + 60), (&cred_b, 2, t0 + 70)] {
        let (status, v) = h
            .post(
                &format!("/api/v1/agent/jobs/{id}/result"),
                cred,
                json!({"started_ns": null, "ended_ns": ended, "packets": packets,
                       "bytes": packets * 60, "drops": {"kernel": 1, "interface": 0, "spool": 0},
                       "reason": "max_packets"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (_, done) = h.get(&format!("/api/v1/jobs/{id}"), &admin).await;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(done["ended_ns"], t0 + 70, "the last device's end: {done}");
    let ra = row(&done, "a");
    assert_eq!(ra["state"], "finished");
    assert_eq!(ra["reason"], "max_packets");
    assert_eq!(ra["started_ns"], t0, "the start reported earlier is kept");
    assert_eq!(ra["ended_ns"], t0 + 60);
    assert_eq!(ra["result"]["packets"], 3);
    assert_eq!(ra["result"]["drops"]["kernel"], 1);
    assert_eq!(ra["stored"]["packets"], 3, "what the server stored: {done}");
    assert_eq!(ra["stored"]["bytes"], 180);
    assert_eq!(row(&done, "b")["stored"]["packets"], 2);
    assert_eq!(done["totals"]["packets"], 5);
    assert_eq!(done["totals"]["stored_packets"], 5);
    assert_eq!(done["totals"]["drops"]["kernel"], 2);
    assert_eq!(done["name"], "chain");
    assert_eq!(done["notes"], "a test");

    // The download: one interface per device, named DEVICE/INTERFACE, packets in time order.
    let resp = h
        .client
        .get(h.url(&format!("/api/v1/jobs/{id}/pcapng")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-pcapng");
    let body = resp.bytes().await.unwrap();
    let mut reader = CaptureReader::new(&body[..]).unwrap();
    let mut got = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        got.push((p.ts.as_nanos() - t0, p.interface, p.data[59]));
    }
    let names: Vec<String> = reader
        .interfaces()
        .iter()
        .map(|i| i.name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a/eth0", "b/eth0"]);
    assert_eq!(
        got,
        [
            (10, 0, 0xa),
            (20, 1, 0xb),
            (30, 0, 0xa),
            (40, 1, 0xb),
            (50, 0, 0xa)
        ]
    );

    // The job's report (issue 5): one line per device, from the same merge as the download.
    let (status, periods) = h
        .get(&format!("/api/v1/jobs/{id}/report?period=1h"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{periods}");
    let lines: Vec<(String, u64, u64)> = periods[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["packets"].as_u64().unwrap(),
                l["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("a/eth0".to_owned(), 3, 180), ("b/eth0".to_owned(), 2, 120)]
    );

    // The job's packets are not among the device's own stored packets (`/api/v1/packets`).
    let (status, _) = h
        .get(
            &format!("/api/v1/packets?device={a}&from=0&to=4000000000000000000"),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pulled = h
        .client
        .get(h.url(&format!(
            "/api/v1/packets?device={a}&from=0&to=4000000000000000000"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut reader = CaptureReader::new(&pulled[..]).unwrap();
    assert!(reader.next_packet().unwrap().is_none());

    // The list shows it; a poll after the last command gets nothing new.
    let (_, list) = h.get("/api/v1/jobs", &admin).await;
    assert_eq!(list["jobs"][0]["id"], id);
    assert!(list["jobs"][0]["devices"][0].get("program").is_none());
    let quiet = Instant::now();
    let none = h.poll(&cred_a, last_command, 0.3).await.unwrap();
    assert_eq!(none["commands"], json!([]));
    assert!(
        quiet.elapsed() >= Duration::from_millis(250),
        "held until the wait"
    );
}

/// `stop`: a device whose start was never handed out ends at once; a running one gets a
/// `stop_job` command at once, and ends with its report. A hello that no longer lists a
/// running job fails it.
#[tokio::test]
async fn stop_reaches_running_agents_and_ends_the_rest_at_once() {
    let h = Harness::start().await;
    let admin = h.organisation("acme").await;
    let (a, cred_a) = h.enrol(&admin, "a").await;
    let (_b, cred_b) = h.enrol(&admin, "b").await;
    h.hello(&cred_a, &[]).await;
    h.hello(&cred_b, &[]).await;
    // b polled a moment ago (connected) but holds no poll open: its start waits.
    h.poll(&cred_b, 0, 0.0).await.unwrap();
    let poll_a = h.poll(&cred_a, 0, 25.0);
    h.wait_polling(&admin, &a).await;

    let (status, job) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a", "b"], "filter": "udp"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    let start = poll_a.await.unwrap()["commands"][0].clone();
    assert_eq!(start["kind"], "start_job");
    assert_eq!(start["max_packets"], Value::Null, "no limit");
    let (status, _) = h
        .post(
            &format!("/api/v1/agent/jobs/{id}/started"),
            &cred_a,
            json!({"started_ns": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let poll_a = h.poll(&cred_a, start["id"].as_i64().unwrap(), 25.0);
    h.wait_polling(&admin, &a).await;
    let asked = Instant::now();
    let (status, stopped) = h
        .post(&format!("/api/v1/jobs/{id}/stop"), &admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["stop_requested"], true);
    let rb = row(&stopped, "b");
    assert_eq!(rb["state"], "finished", "b never got its start: {stopped}");
    assert_eq!(rb["reason"], "stopped");
    assert_eq!(row(&stopped, "a")["state"], "running");
    let stop = tokio::time::timeout(Duration::from_secs(1), poll_a)
        .await
        .expect("the stop within a second")
        .unwrap();
    eprintln!(
        "stop delivered {:.1} ms after the request",
        asked.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(stop["commands"][0]["kind"], "stop_job", "{stop}");
    assert_eq!(stop["commands"][0]["job"], id);
    // b's start is no longer handed out.
    assert_eq!(
        h.poll(&cred_b, 0, 0.0).await.unwrap()["commands"],
        json!([])
    );

    let (status, _) = h
        .post(
            &format!("/api/v1/agent/jobs/{id}/result"),
            &cred_a,
            json!({"ended_ns": 9, "packets": 0, "bytes": 0, "reason": "stopped"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, done) = h.get(&format!("/api/v1/jobs/{id}"), &admin).await;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(row(&done, "a")["reason"], "stopped");

    // A second job; the agent restarts and says hello without it: it failed.
    let (_, job2) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "filter": "udp"}),
        )
        .await;
    let id2 = job2["id"].as_i64().unwrap();
    h.post(
        &format!("/api/v1/agent/jobs/{id2}/started"),
        &cred_a,
        json!({"started_ns": 5}),
    )
    .await;
    h.hello(&cred_a, &[]).await;
    let (_, failed) = h.get(&format!("/api/v1/jobs/{id2}"), &admin).await;
    assert_eq!(row(&failed, "a")["state"], "failed", "{failed}");
    assert!(
        row(&failed, "a")["reason"]
            .as_str()
            .unwrap()
            .contains("restarted")
    );
    assert_eq!(failed["state"], "finished");
    // An agent error is a failed device too.
    let (_, job3) = h
        .post("/api/v1/jobs", &admin, json!({"devices": ["a"]}))
        .await;
    let id3 = job3["id"].as_i64().unwrap();
    h.post(
        &format!("/api/v1/agent/jobs/{id3}/result"),
        &cred_a,
        json!({"ended_ns": 9, "reason": "error: eth0: if_nametoindex: No such device"}),
    )
    .await;
    let (_, errored) = h.get(&format!("/api/v1/jobs/{id3}"), &admin).await;
    assert_eq!(row(&errored, "a")["state"], "failed", "{errored}");
}

/// Everything the server refuses, and how: another organisation's job is not found, an
/// unknown device is named, libpcap's message comes back, `vlan` runs in userspace and `vlan`
/// with a direction is refused with the reason.
#[tokio::test]
async fn jobs_are_scoped_and_bad_requests_say_what_is_wrong() {
    let h = Harness::start().await;
    let admin = h.organisation("acme").await;
    let other = h.organisation("other").await;
    let (a, cred_a) = h.enrol(&admin, "a").await;
    let (_x, cred_x) = h.enrol(&other, "x").await;
    h.hello(&cred_a, &[]).await;
    h.poll(&cred_a, 0, 0.0).await.unwrap();

    let (status, job) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "expression": "vlan 100 and icmp", "snaplen": 128}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    assert_eq!(row(&job, "a")["filter_mode"], "userspace", "{job}");
    let (_, shown) = h.get(&format!("/api/v1/jobs/{id}"), &admin).await;
    let vlan = compile(&CompileRequest {
        expression: "vlan 100 and icmp".into(),
        link_type: 1,
        snaplen: Some(128),
    })
    .unwrap();
    assert_eq!(
        row(&shown, "a")["program"],
        serde_json::to_value(&vlan).unwrap()
    );
    let cmd = h.poll(&cred_a, 0, 0.0).await.unwrap();
    assert_eq!(cmd["commands"][0]["filter_mode"], "userspace", "{cmd}");

    let (status, job) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "expression": "inbound and icmp"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(row(&job, "a")["filter_mode"], "kernel", "{job}");

    let refused = |status: StatusCode, v: &Value, kind: &str, words: &[&str]| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], kind, "{v}");
        let detail = v["detail"].as_str().unwrap();
        for w in words {
            assert!(detail.contains(w), "{w:?} not in {detail:?}");
        }
    };
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "expression": "vlan and inbound"}),
        )
        .await;
    refused(s, &v, "bad_filter", &["inbound/outbound", "VLAN"]);
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "expression": "tcp port eighty"}),
        )
        .await;
    refused(s, &v, "bad_filter", &["eighty"]);
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a", "nosuch"], "expression": "icmp"}),
        )
        .await;
    refused(s, &v, "unknown_device", &["\"nosuch\""]);
    // Another organisation's device does not exist here.
    let (s, v) = h
        .post("/api/v1/jobs", &other, json!({"devices": [a.clone()]}))
        .await;
    refused(s, &v, "unknown_device", &[&a]);
    let (s, v) = h.post("/api/v1/jobs", &admin, json!({"devices": []})).await;
    refused(s, &v, "bad_request", &["devices"]);
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "max_packets": 0}),
        )
        .await;
    refused(s, &v, "bad_request", &["max_packets"]);
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "duration": "soon"}),
        )
        .await;
    refused(s, &v, "bad_request", &["duration"]);
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "colour": "red"}),
        )
        .await;
    refused(s, &v, "bad_request", &["colour"]);

    // An interface the device does not have: the job is recorded, that device failed.
    let (s, v) = h
        .post(
            "/api/v1/jobs",
            &admin,
            json!({"devices": ["a"], "interface": "wlan9"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = row(&v, "a");
    assert_eq!(r["state"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("wlan9"), "{v}");
    assert!(r["reason"].as_str().unwrap().contains("eth0, lo"), "{v}");

    // Another organisation's job is answered as one that does not exist.
    for (method, path) in [
        ("GET", format!("/api/v1/jobs/{id}")),
        ("POST", format!("/api/v1/jobs/{id}/stop")),
        ("GET", format!("/api/v1/jobs/{id}/pcapng")),
        ("GET", format!("/api/v1/jobs/{id}/flows")),
        ("GET", format!("/api/v1/jobs/{id}/report")),
        ("GET", format!("/api/v1/jobs/{id}/profile?filter=tcp")),
        ("GET", "/api/v1/jobs/999999".to_owned()),
        ("GET", "/api/v1/jobs/abc".to_owned()),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (s, v) = h.call(method, &path, &other, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["error"], "not_found");
    }
    let (_, theirs) = h.get("/api/v1/jobs", &other).await;
    assert_eq!(theirs["jobs"], json!([]));
    // Another organisation's device cannot report on the job.
    let (s, _) = h
        .post(
            &format!("/api/v1/agent/jobs/{id}/started"),
            &cred_x,
            json!({"started_ns": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A device credential is not an admin token, and the agent routes need a device.
    let (s, _) = h.get("/api/v1/jobs", &cred_a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h.get("/api/v1/agent/commands", &admin).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = h
        .post(
            &format!("/api/v1/agent/jobs/{id}/result"),
            &cred_a,
            json!({"ended_ns": 1, "reason": ""}),
        )
        .await;
    refused(s, &v, "bad_request", &["reason"]);
}

/// A poll with nothing to say is held for its wait, then answered `[]`; a server that stops
/// answers its open polls at once instead of waiting for them.
#[tokio::test]
async fn an_idle_poll_is_held_and_a_stopping_server_releases_it() {
    let mut h = Harness::start().await;
    let admin = h.organisation("acme").await;
    let (a, cred_a) = h.enrol(&admin, "a").await;
    let t = Instant::now();
    let idle = h.poll(&cred_a, 0, 1.0).await.unwrap();
    let held = t.elapsed();
    assert_eq!(idle["commands"], json!([]));
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(3),
        "{held:?}"
    );
    let open = h.poll(&cred_a, 0, 25.0);
    h.wait_polling(&admin, &a).await;
    let t = Instant::now();
    h.server.take().unwrap().shutdown().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for the poll",
        t.elapsed()
    );
    let answer = open.await.unwrap();
    assert_eq!(answer["commands"], json!([]));
    let _ = rows;
}

/// The events of a live view, read in the background: (event, data) as they come.
fn read_events(resp: reqwest::Response) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut resp = resp;
        let mut text = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = Value::Null;
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).unwrap();
                    }
                }
                if tx.send((event, data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The next `packet` event (stats events are skipped), or `end`.
async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
) -> (String, Value) {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .expect("the view is still open");
        if e.0 != "stats" {
            return e;
        }
    }
}

/// The live view of a job with two scripted agents, `max_hold` long enough that only
/// watermarks release packets: what was stored before the view opened comes first; a packet
/// waits until every other device is past its time — by a later packet, or by an empty batch
/// whose `complete_ns` says so; a packet older than what was shown is shown at once, marked
/// late and counted; the same packet from the other device is removed and counted; the view
/// ends when the job has ended on both devices, with the counts. Bad requests are refused.
#[tokio::test]
async fn the_live_view_merges_by_watermark_and_shows_each_packet_once() {
    let h = Harness::start().await;
    let admin = h.organisation("acme").await;
    let other = h.organisation("umbrella").await;
    let (a, cred_a) = h.enrol(&admin, "a").await;
    let (b, cred_b) = h.enrol(&admin, "b").await;
    for (cred, dev) in [(&cred_a, &a), (&cred_b, &b)] {
        h.hello(cred, &[]).await;
        let _poll = h.poll(cred, 0, 25.0);
        h.wait_polling(&admin, dev).await;
    }
    let (status, job) = h
        .post("/api/v1/jobs", &admin, json!({"devices": ["a", "b"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_i64().unwrap();
    let t0 = 1_700_000_000_000_000_000u64;
    for cred in [&cred_a, &cred_b] {
        let (status, v) = h
            .post(
                &format!("/api/v1/agent/jobs/{id}/started"),
                cred,
                json!({"started_ns": t0}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let stream = format!("job-{id}-eth0");

    // Bad requests.
    let watch = format!("/api/v1/jobs/{id}/watch");
    for (path, token, want) in [
        (watch.clone(), "", StatusCode::UNAUTHORIZED),
        (watch.clone(), other.as_str(), StatusCode::NOT_FOUND),
        (
            "/api/v1/jobs/999/watch".into(),
            admin.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("{watch}?format=json"),
            admin.as_str(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{watch}?max_hold=2h"),
            admin.as_str(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{watch}?dedup=fuzzy"),
            admin.as_str(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{watch}?colour=red"),
            admin.as_str(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, v) = h.get(&path, token).await;
        assert_eq!(status, want, "{path}: {v}");
    }

    // Stored before the view opens.
    h.send_batch(&cred_a, &stream, batch("eth0", 1, &[t0 + 10, t0 + 30], 0xa))
        .await;
    let resp = h
        .client
        .get(h.url(&format!("{watch}?format=events&max_hold=60s")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = read_events(resp);
    let (kind, start) = next_event(&mut events).await;
    assert_eq!(kind, "start", "{start}");
    assert_eq!(start["sources"].as_array().unwrap().len(), 2);

    // b says nothing yet: a's packets wait.
    h.send_batch(&cred_a, &stream, batch("eth0", 2, &[t0 + 50], 0xa))
        .await;
    h.send_batch(&cred_b, &stream, batch("eth0", 1, &[t0 + 20, t0 + 40], 0xb))
        .await;
    let mut shown = Vec::new();
    for _ in 0..4 {
        let (kind, p) = next_event(&mut events).await;
        assert_eq!(kind, "packet", "{p}");
        shown.push((
            p["device"].as_str().unwrap().to_owned(),
            u64_of(&p["ts_ns"]) - t0,
        ));
        assert_eq!(p["late"], false);
        assert!(
            p["text"]
                .as_str()
                .unwrap()
                .contains(&format!(" {}/eth0 ", p["device"].as_str().unwrap()))
        );
    }
    let pairs: Vec<(&str, u64)> = shown.iter().map(|(d, t)| (d.as_str(), *t)).collect();
    assert_eq!(pairs, [("a", 10), ("b", 20), ("a", 30), ("b", 40)]);
    // a's packet at 50 waits for b, which is only at 40 …
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        events.try_recv().map_or(true, |(k, _)| k == "stats"),
        "nothing more until b is past 50"
    );
    // … until b's empty batch says it is complete up to 60.
    let mut heartbeat = BatchBuilder::new("eth0", 1, 262_144);
    heartbeat.set_complete(t0 + 60);
    h.send_batch(
        &cred_b,
        &stream,
        heartbeat.finish(0x5eed, 2, 1, Drops::default()),
    )
    .await;
    let (kind, p) = next_event(&mut events).await;
    assert_eq!(
        (
            kind.as_str(),
            p["device"].as_str(),
            u64_of(&p["ts_ns"]) - t0
        ),
        ("packet", Some("a"), 50)
    );

    // The same packet from b (the bytes a sent at 50, 2 µs later) is removed; a packet older
    // than what was shown comes at once, late.
    let mut dup = BatchBuilder::new("eth0", 1, 262_144);
    let mut data = vec![0xa; 60];
    data[0] = 0;
    dup.push(Timestamp::from_nanos(t0 + 2050), 60, &data);
    dup.push(Timestamp::from_nanos(t0 + 90), 60, &[0xb; 60]);
    h.send_batch(&cred_b, &stream, dup.finish(0x5eed, 3, 2, Drops::default()))
        .await;
    h.send_batch(&cred_a, &stream, batch("eth0", 3, &[t0 + 45], 0xc))
        .await;
    let (kind, p) = next_event(&mut events).await;
    assert_eq!(
        (kind.as_str(), u64_of(&p["ts_ns"]) - t0, &p["late"]),
        ("packet", 45, &json!(true)),
        "{p}"
    );

    // Both parts end: the rest is shown, then the counts.
    for cred in [&cred_a, &cred_b] {
        let (status, v) = h
            .post(
                &format!("/api/v1/agent/jobs/{id}/result"),
                cred,
                json!({"started_ns": null, "ended_ns": t0 + 100, "packets": 1,
                       "bytes": 60, "drops": {"kernel": 0, "interface": 0, "spool": 0},
                       "reason": "stopped"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (kind, p) = next_event(&mut events).await;
    assert_eq!(
        (
            kind.as_str(),
            p["device"].as_str(),
            u64_of(&p["ts_ns"]) - t0
        ),
        ("packet", Some("b"), 90)
    );
    let (kind, end) = next_event(&mut events).await;
    assert_eq!(kind, "end", "{end}");
    assert_eq!(
        (
            &end["packets"],
            &end["duplicates"],
            &end["late"],
            &end["skipped_batches"]
        ),
        (&json!(7), &json!(1), &json!(1), &json!(0)),
        "{end}"
    );
    assert!(events.recv().await.is_none(), "the view ends with the job");

    // Opened after the job, a view shows what was stored, once, in time order.
    let text = h
        .client
        .get(h.url(&watch))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (Lines of a frame that does not decode are followed by a hex dump, indented.)
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('\t')).collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(
        lines[7].starts_with(
            "# the job has ended on every device: 7 packets shown, 1 duplicates removed"
        ),
        "{text}"
    );
    let devices: Vec<&str> = lines[..7]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        devices.iter().filter(|d| **d == "a/eth0").count(),
        4,
        "{text}"
    );
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}
