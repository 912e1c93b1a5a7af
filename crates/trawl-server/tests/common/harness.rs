//! A server in this process over plain HTTP, with one organisation, and the requests the tests
//! of issue 6 (annotations, the captures list, the OpenAPI description, the access walk) make
//! of it. Included with `#[path]` by the files that use it.
#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use trawl_pcap::Timestamp;
use trawl_server::{Config, NewOrganisation, Server, Tls};

/// A temporary directory, in memory when /dev/shm exists (uploads sync their files).
pub fn temp_dir() -> tempfile::TempDir {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(d) => d,
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub client: reqwest::Client,
    /// The first organisation, `alpha`.
    pub org: NewOrganisation,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_in(temp_dir()).await
    }

    /// A server on `dir` (which may hold a catalogue already), with the organisation `alpha`.
    pub async fn start_in(dir: tempfile::TempDir) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = Config::new(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
        config.tls = Tls::Plain;
        let server = Server::start(config).await.unwrap();
        let org = match server.create_organisation("alpha").await {
            Ok(org) => org,
            Err(e) => panic!("creating the organisation: {e}"),
        };
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Harness {
            dir,
            server,
            client,
            org,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// `PATH?QUERY`, the parameters URL-encoded.
    pub fn url_with(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&self.url(path)).unwrap();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    pub fn admin(&self) -> &str {
        &self.org.admin_token
    }

    pub async fn get_bytes(&self, url: &str, token: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    /// Uploads `body` as a capture named `name` with `token`; the capture's id.
    pub async fn upload(&self, token: &str, name: &str, body: Vec<u8>) -> i64 {
        let (status, capture) = self.upload_as(token, &[("name", name)], body).await;
        assert_eq!(status, StatusCode::CREATED, "{capture}");
        capture["id"].as_i64().unwrap()
    }

    /// `PUT /api/v1/captures?QUERY` of `body` with `token`: the answer, whatever it is.
    pub async fn upload_as(
        &self,
        token: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let resp = self
            .client
            .put(self.url_with("/api/v1/captures", query))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    /// Every file under the data directory's `captures/`, relative to it.
    pub fn capture_files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        let root = self.dir.path();
        walk(&root.join("captures"), root, &mut out);
        out.sort();
        out
    }

    /// Enrols a device named `name` in the organisation of `admin_token`: its id and credential.
    pub async fn enrol(&self, admin_token: &str, name: &str) -> (i64, String) {
        let (status, token) = self
            .send_json(
                reqwest::Method::POST,
                "/api/v1/enrollment-tokens",
                admin_token,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        let resp = self
            .client
            .post(self.url("/api/v1/enroll"))
            .json(&json!({
                "token": token["token"],
                "name": name,
                "interfaces": [{"name": "eth0", "link_type": 1}],
            }))
            .send()
            .await
            .unwrap();
        let (status, device) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        (
            device["device"].as_str().unwrap().parse().unwrap(),
            device["credential"].as_str().unwrap().to_owned(),
        )
    }
}

pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// A pcap of `n` Ethernet/IPv4/UDP packets, one a second, each with its number in its payload.
pub fn small_pcap(n: u32) -> Vec<u8> {
    let mut w =
        trawl_pcap::PcapWriter::new(Vec::new(), 1, 65535, trawl_pcap::TsPrecision::Micro).unwrap();
    for i in 0..n {
        let payload = format!("packet {i}");
        let udp_len = 8 + payload.len() as u16;
        let ip_len = 20 + udp_len;
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0, 0]);
        frame.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        frame.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        frame.extend_from_slice(&[(udp_len >> 8) as u8, udp_len as u8, 0, 0]);
        frame.extend_from_slice(payload.as_bytes());
        w.write(
            Timestamp::new(1_700_000_000 + u64::from(i), 0),
            frame.len() as u32,
            &frame,
        )
        .unwrap();
    }
    w.finish().unwrap()
}
