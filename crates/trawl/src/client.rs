//! Talking to a trawl server from the command line: where it is, the token, and how to trust its
//! certificate — the options the client commands (`pull`, `devices`, `capture`, `upload`,
//! `captures`) share. Flags win over the environment (`TRAWL_SERVER`, `TRAWL_TOKEN`, `TRAWL_CA`,
//! `TRAWL_FINGERPRINT`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::blocking::Response;
use reqwest::{Method, Url};
use trawl_agent::http::{Trust, blocking_client, error_detail};

/// How long the server may stay silent (before answering, or between two reads of a download)
/// before the command gives up. A selective filter over a long window can take a while to find
/// its first packet.
const STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// An upload or a live view has no practical time limit (see [`ServerArgs::connect_unbounded`]).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// The server, e.g. https://trawl.example.org:8443 [env: TRAWL_SERVER]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The organisation's admin token [env: TRAWL_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the admin token from this file instead (kept out of the shell history and `ps`)
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Trust only the certificates in this PEM file, e.g. a copy of the server's
    /// DATA/tls/cert.pem [env: TRAWL_CA]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Trust only the certificate with this SHA-256 fingerprint, as `trawl server` prints it
    /// [env: TRAWL_FINGERPRINT]. Without --ca or --fingerprint, the system's roots are trusted.
    #[arg(long, value_name = "SHA256", conflicts_with = "ca")]
    pub fingerprint: Option<String>,
}

/// A connection to a server, with its token.
pub struct Client {
    http: reqwest::blocking::Client,
    base: Url,
    token: String,
}

/// An environment variable, if set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the token file", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("{}: the token file is empty", path.display());
    }
    Ok(token)
}

impl ServerArgs {
    pub fn connect(&self) -> Result<Client> {
        self.connect_with(STALL_TIMEOUT)
    }

    /// A connection with no time limit: for sending a capture (the body may be a capture still
    /// being made, `tcpdump -w - | trawl upload -`, and the whole of it is sent before the
    /// server answers), and for a live view (it lasts as long as the job).
    pub fn connect_unbounded(&self) -> Result<Client> {
        self.connect_with(UPLOAD_TIMEOUT)
    }

    fn connect_with(&self, timeout: Duration) -> Result<Client> {
        let server = self
            .server
            .clone()
            .or_else(|| env("TRAWL_SERVER"))
            .ok_or_else(|| {
                anyhow!("which server? give --server https://HOST:8443 or set TRAWL_SERVER")
            })?;
        let mut base = Url::parse(server.trim())
            .map_err(|e| anyhow!("--server {server:?}: not a URL ({e}); e.g. https://HOST:8443"))?;
        if !matches!(base.scheme(), "https" | "http") {
            bail!("--server {server:?}: the URL must start with https:// (or http://)");
        }
        // Paths of the API are joined below the server's URL (which may have a path prefix,
        // behind a proxy).
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(file)) => read_token(file)?,
            (None, None) => env("TRAWL_TOKEN")
                .map(|t| t.trim().to_owned())
                .ok_or_else(|| {
                    anyhow!(
                        "an admin token is needed: --token-file FILE, --token TOKEN or TRAWL_TOKEN"
                    )
                })?,
        };
        let trust = match (&self.ca, &self.fingerprint) {
            (Some(ca), _) => Trust::Ca(ca.clone()),
            (None, Some(f)) => Trust::fingerprint(f)?,
            (None, None) => match (env("TRAWL_CA"), env("TRAWL_FINGERPRINT")) {
                (Some(_), Some(_)) => {
                    bail!("TRAWL_CA and TRAWL_FINGERPRINT are both set: unset one of them")
                }
                (Some(ca), None) => Trust::Ca(ca.into()),
                (None, Some(f)) => Trust::fingerprint(&f)?,
                (None, None) => Trust::System,
            },
        };
        let http = blocking_client(&trust, timeout)?;
        Ok(Client { http, base, token })
    }
}

/// What a request sends.
pub enum Payload {
    None,
    Json(serde_json::Value),
    Text(String),
    /// A capture: a body of unknown length is sent chunked.
    Stream(reqwest::blocking::Body),
}

impl Client {
    /// `GET` of an API path (`api/v1/…`) with query parameters. An error answer becomes an error
    /// carrying the server's own explanation.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Response> {
        self.send(Method::GET, path, query, Payload::None)
    }

    /// A request to an API path (`api/v1/…`, with query parameters) with the token; an error
    /// answer becomes an error carrying the server's own explanation.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        payload: Payload,
    ) -> Result<Response> {
        let mut url = self.base.join(path).expect("a relative API path");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let shown = self.base.as_str().trim_end_matches('/').to_owned();
        let request = self.http.request(method, url).bearer_auth(&self.token);
        let request = match payload {
            Payload::None => request,
            Payload::Json(v) => request.json(&v),
            Payload::Text(t) => request
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(t),
            Payload::Stream(body) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body),
        };
        let resp = request.send().map_err(|e| {
            let mut cause: Option<&dyn std::error::Error> = Some(&e);
            let mut about_certificate = false;
            while let Some(c) = cause {
                about_certificate |= c.to_string().contains("certificate");
                cause = c.source();
            }
            let hint = if about_certificate {
                " (trust its certificate with --ca FILE or --fingerprint SHA256)"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!("cannot reach {shown}{hint}"))
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().unwrap_or_default();
        bail!("{shown} answered {status}: {}", error_detail(&body));
    }

    /// A `GET` whose answer is JSON.
    pub fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value> {
        self.json(Method::GET, path, query, Payload::None)
    }

    /// A `POST` of JSON whose answer is JSON.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.json(Method::POST, path, &[], Payload::Json(body.clone()))
    }

    /// [`send`](Self::send), and the JSON answer.
    pub fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        payload: Payload,
    ) -> Result<serde_json::Value> {
        let text = self
            .send(method, path, query, payload)?
            .text()
            .context("reading the server's answer")?;
        serde_json::from_str(&text)
            .with_context(|| format!("the server's answer is not JSON: {text:.200}"))
    }
}
