//! The agent against a real trawl server (in this process, HTTPS on loopback): a replayed
//! capture arrives whole; a server that is away at first gets everything once it is back; a
//! full spool drops the oldest batches and the server learns how many packets that cost; a
//! revoked device stops; a wrong pinned fingerprint is refused with a message that says so.

use std::net::SocketAddr;
#[path = "../../../tests/support/corpus.rs"]
mod corpus;
use corpus::corpus;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use trawl_agent::agent::{Agent, AgentConfig, AgentError, SourceSpec, StreamStatus};
use trawl_agent::http::Trust;
use trawl_agent::source::replay::Pacing;
use trawl_agent::uplink::{ApiError, ServerApi};
use trawl_pcap::CaptureReader;
use trawl_server::catalogue::{Catalogue, DeviceId, OrgId};
use trawl_server::{Config, Server};
use trawl_store::SegmentReader;

/// (time ns, wire length, bytes) of every packet.
type Packets = Vec<(u64, u32, Vec<u8>)>;

fn read_file(path: &Path) -> Packets {
    let mut r = CaptureReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        out.push((p.ts.as_nanos(), p.orig_len, p.data.to_vec()));
    }
    out
}

/// A server on loopback with its own runtime, restartable on the same port and data.
struct Harness {
    rt: tokio::runtime::Runtime,
    data: tempfile::TempDir,
    addr: SocketAddr,
    server: Option<Server>,
    org: OrgId,
}

impl Harness {
    fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = Config::new(data.path(), "127.0.0.1:0".parse().unwrap());
        let server = rt.block_on(Server::start(config)).unwrap();
        let org = rt.block_on(server.create_organisation("acme")).unwrap();
        Harness {
            addr: server.addr(),
            rt,
            data,
            server: Some(server),
            org: org.id,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn trust(&self) -> Trust {
        Trust::Ca(self.data.path().join("tls/cert.pem"))
    }

    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown()).unwrap();
        }
    }

    fn restart(&mut self) {
        self.stop();
        let config = Config::new(self.data.path(), self.addr);
        self.server = Some(self.rt.block_on(Server::start(config)).unwrap());
    }

    fn catalogue(&self) -> Catalogue {
        Catalogue::open(&self.data.path().join("catalogue.db")).unwrap()
    }

    /// Enrols a device; returns its id and an API client with its credential.
    fn enrol(&self, name: &str) -> (DeviceId, ServerApi) {
        let token = self.catalogue().create_enrolment_token(self.org).unwrap();
        let api = ServerApi::new(&self.url(), &self.trust(), None).unwrap();
        let e = api.enrol(&token, name, "host", &[]).unwrap();
        let api = ServerApi::new(&self.url(), &self.trust(), Some(e.credential)).unwrap();
        (e.device.parse().unwrap(), api)
    }

    /// Every packet stored for `device`, in segment order, and the drops the catalogue holds.
    fn stored(&self, device: DeviceId) -> (Packets, u64) {
        let segments = self
            .rt
            .block_on(
                self.server
                    .as_ref()
                    .expect("running")
                    .segments(self.org, device),
            )
            .unwrap();
        let mut out = Vec::new();
        let mut drops = 0;
        for s in segments {
            drops += s.drops.kernel + s.drops.interface + s.drops.spool;
            let r = SegmentReader::open(&self.data.path().join(&s.dir), &s.name).unwrap();
            for p in r.packets() {
                let p = p.unwrap();
                out.push((p.ts.as_nanos(), p.orig_len, p.data));
            }
        }
        (out, drops)
    }
}

fn config(state: &Path, file: &Path) -> AgentConfig {
    let mut c = AgentConfig::new(state);
    c.sources = vec![SourceSpec::Pcap {
        path: file.to_owned(),
        pacing: Pacing::AsFastAsPossible,
        stream: Some("eth0".into()),
    }];
    // Small batches, so that every test crosses many of them.
    c.batch_max_bytes = 64 << 10;
    c.drain_timeout = Duration::from_secs(30);
    c
}

fn quiet() -> Arc<dyn Fn(&str) + Send + Sync> {
    Arc::new(|m: &str| eprintln!("agent: {m}"))
}

fn run(api: ServerApi, c: &AgentConfig) -> Result<Vec<StreamStatus>, AgentError> {
    let agent = Agent::start(Arc::new(api), c, Arc::new(AtomicBool::new(false)), quiet())?;
    agent.join()
}

#[test]
fn a_replayed_capture_arrives_whole_and_in_order() {
    let h = Harness::start();
    let (device, api) = h.enrol("gw-1");
    let state = tempfile::tempdir().unwrap();
    let file = biggish();
    let expected = read_file(&file);
    assert!(!expected.is_empty());

    let status = run(api, &config(state.path(), &file)).unwrap();
    assert_eq!(status[0].captured, expected.len() as u64);
    assert_eq!(status[0].packets_acked, expected.len() as u64);
    // The replay source hands over the whole file in one read; batches are cut at their size
    // all the same (a batch over the server's limit would be refused).
    let data: u64 = expected.iter().map(|p| p.2.len() as u64).sum();
    assert!(
        status[0].batches_acked > data / (64 << 10),
        "{} bytes of packets in {} batches of at most 64 KiB",
        data,
        status[0].batches_acked
    );
    let (stored, drops) = h.stored(device);
    assert_eq!(drops, 0);
    assert_eq!(stored.len(), expected.len());
    assert!(
        stored == expected,
        "the stored packets differ from the file's"
    );
}

/// A capture of 601 packets in 0.5 MB: many 64 KiB batches, quick to send.
fn biggish() -> PathBuf {
    corpus().join("tcpdump-4.99.3/afs.pcap")
}

#[test]
fn while_the_server_is_away_batches_wait_in_the_spool_then_all_arrive_once() {
    let mut h = Harness::start();
    let (device, api) = h.enrol("gw-2");
    h.stop();
    let state = tempfile::tempdir().unwrap();
    let file = biggish();
    let expected = read_file(&file);

    let agent = Agent::start(
        Arc::new(api),
        &config(state.path(), &file),
        Arc::new(AtomicBool::new(false)),
        quiet(),
    )
    .unwrap();
    // Wait until the whole file is captured and spooled, unsent.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = &agent.status()[0];
        if s.captured == expected.len() as u64 && s.spooled_bytes > 0 && s.send_failures > 0 {
            assert_eq!(s.packets_acked, 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stuck: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    h.restart();
    let status = agent.join().unwrap();
    assert_eq!(status[0].packets_acked, expected.len() as u64);
    assert_eq!(status[0].spool_drops, 0);
    let (stored, drops) = h.stored(device);
    assert_eq!(drops, 0);
    assert!(
        stored == expected,
        "stored {} of {}",
        stored.len(),
        expected.len()
    );
}

#[test]
fn a_full_spool_drops_the_oldest_batches_and_the_server_is_told_how_many_packets() {
    let mut h = Harness::start();
    let (device, api) = h.enrol("gw-3");
    h.stop();
    let state = tempfile::tempdir().unwrap();
    let file = biggish();
    let expected = read_file(&file);
    let mut c = config(state.path(), &file);
    c.spool_max_bytes = 200_000;

    let agent = Agent::start(Arc::new(api), &c, Arc::new(AtomicBool::new(false)), quiet()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while agent.status()[0].captured < expected.len() as u64 || agent.status()[0].spool_drops == 0 {
        assert!(std::time::Instant::now() < deadline, "{:?}", agent.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    h.restart();
    let status = agent.join().unwrap();
    let s = &status[0];
    assert!(s.spool_drops > 0);
    let (stored, drops) = h.stored(device);
    assert_eq!(
        stored.len() as u64 + drops,
        expected.len() as u64,
        "stored + drops the server was told of = captured"
    );
    assert_eq!(drops, s.spool_drops);
    // What was kept is the newest part of the file, in order, with nothing twice.
    assert!(stored == expected[expected.len() - stored.len()..]);
}

#[test]
fn a_revoked_device_stops_with_the_servers_reason() {
    let h = Harness::start();
    let (device, api) = h.enrol("gw-4");
    assert!(h.catalogue().revoke(h.org, device).unwrap());
    let state = tempfile::tempdir().unwrap();
    let file = corpus().join("tcpdump-4.99.3/print-flags.pcap");
    let err = run(api, &config(state.path(), &file)).unwrap_err();
    match err {
        AgentError::Refused(detail) => assert!(detail.contains("revoked"), "{detail}"),
        e => panic!("expected a refusal, got {e}"),
    }
    let (stored, _) = h.stored(device);
    assert!(stored.is_empty());
}

#[test]
fn a_wrong_pinned_fingerprint_is_refused_and_says_why() {
    let h = Harness::start();
    let token = h.catalogue().create_enrolment_token(h.org).unwrap();
    let wrong = Trust::fingerprint(&"00".repeat(32)).unwrap();
    let api = ServerApi::new(&h.url(), &wrong, None).unwrap();
    match api.enrol(&token, "gw-5", "host", &[]) {
        Err(ApiError::Unavailable(detail)) => {
            assert!(detail.contains("fingerprint"), "{detail}")
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    // The right one works, with the token unused by the failed attempt.
    let der = std::fs::read_to_string(h.data.path().join("tls/cert.pem")).unwrap();
    let der = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(der.as_bytes()).unwrap()
    };
    let right = Trust::fingerprint(&trawl_agent::http::fingerprint_of(&der)).unwrap();
    let api = ServerApi::new(&h.url(), &right, None).unwrap();
    api.enrol(&token, "gw-5", "host", &[]).unwrap();
}
