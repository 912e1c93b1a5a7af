//! The trawl server's ingest path: devices enrol, then stream batches of packets over HTTPS;
//! each batch is checked, written durably to a segment file, recorded in the catalogue, and only
//! then acknowledged (docs/protocol.md).
//!
//! [`Server::start`] takes a [`Config`] (data directory, listen address, TLS) and serves the API
//! in [`api`] on tokio and axum. Its pieces, along the data path:
//! - `api`: routes (one table, [`ROUTES`], described by `openapi.json`: [`OPENAPI`]),
//!   credentials, JSON errors;
//! - `ingest`: `Batch::parse` → `judge` → segment append and `sync` (trawl-store) → catalogue,
//!   one batch of a stream at a time;
//! - [`retrieve`]: devices' packets in a time window, merged, filtered, streamed as pcapng; the
//!   filter compiler for agents;
//! - [`analysis`]: flow records, reports and profiles of a window, a capture or a job (the
//!   packets from the same readers as the downloads), flows streamed;
//! - `upload`: a capture file in a request body (raw, compressed, multipart, chunked while it is
//!   still being captured) parsed as it arrives into staged segments, committed as a capture only
//!   once all of it is good; a window of stored packets saved as a capture the same way;
//! - [`captures`]: the captures model (uploads, saved windows, later jobs) with tags and notes,
//!   its search, and the download of a capture; [`annotations`]: per-packet comments, carried
//!   into the download as pcapng packet comments;
//! - [`catalogue`]: SQLite (WAL): organisations, tokens, devices, streams, segments — every
//!   query scoped to one organisation;
//! - [`tls`]: the certificate, self-signed on first start.
//! - [`auth`]: who a request acts as (an organisation admin token, a user's API token or login
//!   session) and its role (viewer < operator < admin), checked by every handler; users and
//!   passwords (Argon2id);
//! - `shares`: signed, expiring, revocable read-only links to a capture;
//! - `web`: the web UI's pages and scripts, embedded and served at `/`, `/ui/…` and `/s/…`.
//!
//! Beside the data path: `metrics` (counters, `GET /metrics`), `retention` (a background pass
//! deleting old segments per organisation's age and size limits, `/api/v1/retention`),
//! `devices` (the device status, `GET /api/v1/devices`), [`jobs`] (capture jobs: compiled once
//! per link type, pushed to agents over a long-poll command channel, downloaded merged) and
//! [`fanout`] (every stored batch offered to listeners, for the live views to come).
//!
//! The data directory holds `catalogue.db`, `share.key`, `tls/{cert,key}.pem`,
//! `segments/org-N/dev-M/sS-G.pcapng.zst` (+ `.idx`) and `captures/org-N/RANDOM/pK.pcapng.zst`
//! (+ `.idx`; uploads being received in `captures/.staging/`).

pub mod analysis;
pub mod annotations;
mod api;
pub mod auth;
pub mod captures;
pub mod catalogue;
mod clock;
mod devices;
pub mod fanout;
mod ingest;
pub mod jobs;
mod metrics;
mod retention;
pub mod retrieve;
mod secret;
mod shares;
pub mod tls;
mod upload;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use api::{OPENAPI, ROUTES};
pub use auth::{Role, SessionLimits};
pub use catalogue::{Catalogue, CatalogueError, DeviceSummary, NewOrganisation, SegmentRecord};
pub use clock::Clock;
pub use devices::StreamStatus;
pub use ingest::Rotation;
pub use retention::{MAX_AGE_SECS_LIMIT, RetentionConfig, RetentionPolicy, RetentionReport};
pub use retrieve::{PacketSource, Plan, PullRequest, PullStats, RetrieveError, SourcePacket};
pub use tls::TlsFiles;
pub use trawl_wire::MAX_BATCH;

/// How the server speaks on its port.
#[derive(Clone, Debug)]
pub enum Tls {
    /// HTTPS with the certificate in `DATA/tls/`, made self-signed for these names (host names
    /// or IP addresses) on first start.
    SelfSigned { names: Vec<String> },
    /// HTTPS with a certificate and key the operator provides.
    Files(TlsFiles),
    /// Plain HTTP: for tests, or behind a TLS-terminating proxy.
    Plain,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls: Tls,
    /// Largest batch accepted, in bytes (larger: `413`).
    pub max_batch: usize,
    pub rotation: Rotation,
    /// Default retention limits and how often they are enforced.
    pub retention: RetentionConfig,
    /// How long a login's session lasts.
    pub sessions: SessionLimits,
    /// The clock sessions and share links expire by (tests move a manual one).
    pub clock: Clock,
}

impl Config {
    /// HTTPS with a self-signed certificate for localhost, 16 MiB batches, default rotation,
    /// no retention limits, sessions of 12 hours idle and 7 days at most.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen,
            tls: Tls::SelfSigned {
                names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            },
            max_batch: MAX_BATCH,
            rotation: Rotation::default(),
            retention: RetentionConfig::default(),
            sessions: SessionLimits::default(),
            clock: Clock::system(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

/// A running server. Dropping it stops it; [`shutdown`](Self::shutdown) stops it and waits.
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    certificate: Option<PathBuf>,
    data_dir: PathBuf,
    catalogue: Arc<Mutex<Catalogue>>,
    retention: Arc<retention::Retention>,
    retention_task: tokio::task::JoinHandle<()>,
    hub: Arc<jobs::CommandHub>,
    fanout: Arc<fanout::Fanout>,
    handle: axum_server::Handle<SocketAddr>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Opens (or creates) the data directory and catalogue, makes the certificate if needed,
    /// binds `config.listen` and serves until shut down.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let io_err = |what, path: &Path| {
            let path = path.display().to_string();
            move |source| StartError::Io { what, path, source }
        };
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(io_err("creating", &data_dir))?;
        let catalogue_path = data_dir.join("catalogue.db");
        let catalogue = Catalogue::open(&catalogue_path)?;
        // Before any request: what a crash left of uploads being received or deleted.
        let swept = captures::sweep(&data_dir, &catalogue)?;
        if swept > 0 {
            tracing::info!("removed {swept} unfinished or unrecorded capture directories");
        }
        let catalogue = Arc::new(Mutex::new(catalogue));
        let share_key = shares::ShareKey::load_or_create(&data_dir)
            .map_err(io_err("making or reading the share link key in", &data_dir))?;

        let tls_files = match &config.tls {
            Tls::Plain => None,
            Tls::Files(files) => Some(files.clone()),
            Tls::SelfSigned { names } => {
                let dir = data_dir.join("tls");
                std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
                let files = TlsFiles::in_dir(&dir);
                if tls::ensure_self_signed(&files, names)? {
                    tracing::info!("made a self-signed certificate: {}", files.cert.display());
                }
                Some(files)
            }
        };

        let listener = std::net::TcpListener::bind(config.listen).map_err(io_err(
            "listening on",
            Path::new(&config.listen.to_string()),
        ))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("configuring", Path::new(&config.listen.to_string())))?;
        let addr = listener
            .local_addr()
            .map_err(io_err("reading the address of", Path::new("the listener")))?;

        let ingest = Arc::new(ingest::Ingest {
            data_dir: data_dir.clone(),
            catalogue: catalogue.clone(),
            rotation: config.rotation,
            metrics: Arc::new(metrics::Metrics::default()),
        });
        let slots: Arc<api::Slots> = Arc::new(Mutex::new(HashMap::new()));
        let retention = Arc::new(retention::Retention::new(
            ingest.clone(),
            slots.clone(),
            config.retention,
        ));
        let hub = Arc::new(jobs::CommandHub::default());
        let fanout = Arc::new(fanout::Fanout::default());
        let state = api::AppState {
            catalogue: catalogue.clone(),
            ingest,
            slots,
            max_batch: config.max_batch,
            retention: retention.clone(),
            hub: hub.clone(),
            fanout: fanout.clone(),
            scheme: if tls_files.is_some() { "https" } else { "http" },
            auth: Arc::new(auth::Auth::new(config.sessions, config.clock.clone())),
            share_key: Arc::new(share_key),
        };
        let app = api::router(state).into_make_service();
        let handle = axum_server::Handle::new();
        let listen_err = io_err("serving on", Path::new("the listener"));
        let task = match &tls_files {
            // TCP_NODELAY: a response's last small write (the end of a download, an
            // acknowledgement) goes out at once, not after the peer's delayed ACK (~40 ms).
            None => {
                let server = axum_server::from_tcp(listener)
                    .map_err(listen_err)?
                    .acceptor(axum_server::accept::NoDelayAcceptor::new())
                    .handle(handle.clone());
                tokio::spawn(server.serve(app))
            }
            Some(files) => {
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_config(tls::server_config(files)?);
                let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
                    .map_err(listen_err)?
                    .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
                    .handle(handle.clone());
                tokio::spawn(server.serve(app))
            }
        };
        let retention_task = retention::spawn(retention.clone());
        // The decoy hash that logins of unknown users are checked against, made now rather
        // than during the first such login (which would then take twice as long as others).
        tokio::task::spawn_blocking(|| {
            auth::password::decoy();
        });
        Ok(Server {
            addr,
            scheme: if tls_files.is_some() { "https" } else { "http" },
            certificate: tls_files.map(|f| f.cert),
            data_dir,
            catalogue,
            retention,
            retention_task,
            hub,
            fanout,
            handle,
            task: Some(task),
        })
    }

    /// The address the server listens on (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` (or `http://` without TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The certificate (PEM) clients should trust, when serving HTTPS.
    pub fn certificate(&self) -> Option<&Path> {
        self.certificate.as_deref()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Creates an organisation; returns its id and its admin token (shown only now).
    pub async fn create_organisation(&self, name: &str) -> Result<NewOrganisation, CatalogueError> {
        let (catalogue, name) = (self.catalogue.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            catalogue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .create_organisation(&name)
        })
        .await
        .expect("the catalogue task does not panic")
    }

    /// The segments of a device of organisation `org`, as the catalogue records them.
    pub async fn segments(
        &self,
        org: catalogue::OrgId,
        device: catalogue::DeviceId,
    ) -> Result<Vec<SegmentRecord>, CatalogueError> {
        let catalogue = self.catalogue.clone();
        tokio::task::spawn_blocking(move || {
            catalogue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .segments(org, device)
        })
        .await
        .expect("the catalogue task does not panic")
    }

    /// Runs a retention pass now (as the background task does every check interval): closes
    /// overdue open segments, deletes segments beyond each organisation's limits, removes
    /// orphan files.
    pub async fn enforce_retention(&self) -> Result<RetentionReport, CatalogueError> {
        self.enforce_retention_as_of(std::time::SystemTime::now())
            .await
    }

    /// A retention pass as if the time were `now`: ages (of packets and of open segments) are
    /// measured from it. For tests and tools; the server's own passes use the clock.
    pub async fn enforce_retention_as_of(
        &self,
        now: std::time::SystemTime,
    ) -> Result<RetentionReport, CatalogueError> {
        let now_ns = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let retention = self.retention.clone();
        tokio::task::spawn_blocking(move || retention.run_pass(now_ns))
            .await
            .expect("the retention pass does not panic")
    }

    /// Listens to every batch stored from now on (see [`fanout`]).
    pub fn subscribe_stored(&self) -> tokio::sync::broadcast::Receiver<Arc<fanout::StoredBatch>> {
        self.fanout.subscribe()
    }

    /// Stops accepting, lets requests in progress finish (for up to 5 s; waiting command polls
    /// are answered at once), and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.retention_task.abort();
        self.hub.close();
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.retention_task.abort();
        if self.task.is_some() {
            self.handle.shutdown();
        }
    }
}
