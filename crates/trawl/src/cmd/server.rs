//! `trawl server`: the central server (crate `trawl-server`) on embedded defaults — a local data
//! directory, a SQLite catalogue and HTTPS with a certificate made on first start.
//!
//! Settings come from the defaults, then the TOML file (`--config`), then the flags. The tokio
//! runtime is built here only, so the offline commands do not start one.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use trawl_server::{
    Config, MAX_BATCH, RetentionConfig, RetentionPolicy, Rotation, Server, Tls, TlsFiles,
};

const DEFAULT_DATA: &str = "./trawl-data";
const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// The organisation made on the first start, when the catalogue has none.
const FIRST_ORGANISATION: &str = "default";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl server
      data in ./trawl-data, HTTPS on 0.0.0.0:8443 with a self-signed certificate made on first
      start; the first start also creates the organisation \"default\" and prints its admin token
  trawl server --data /var/lib/trawl --listen 127.0.0.1:9443
  trawl server --config /etc/trawl/server.toml --listen [::]:8443
      settings from a file; flags override it

On start it prints the address, the certificate's SHA-256 fingerprint (agents can pin it) and the
command that makes an enrolment token for a device. It runs until Ctrl-C or SIGTERM, then lets
requests in progress finish (up to 5 s).

The config file (every key optional; relative paths are relative to the file; an unknown key is
an error):
  data = \"/var/lib/trawl\"         # data directory (default ./trawl-data)
  listen = \"0.0.0.0:8443\"         # address and port
  plain_http = false              # true: no TLS (tests, or behind a TLS-terminating proxy)
  tls_cert = \"/etc/trawl/cert.pem\"  # your own certificate and key (PEM), instead of the
  tls_key = \"/etc/trawl/key.pem\"    #   self-signed one in DATA/tls/
  max_batch_bytes = 16777216      # largest batch accepted (at most 16 MiB)
  [segments]
  max_bytes = 268435456           # start a new segment file at this size...
  max_age_secs = 3600             # ...or at this age
  [retention]                     # every organisation's default (an organisation's admin may
                                  #   set its own: PUT /api/v1/retention); no limit when unset
  max_age_secs = 2592000          # delete segments whose last packet is older (30 days)
  max_bytes = 107374182400        # delete the oldest segments while an organisation has more
  check_interval_secs = 60        # how often (default 60)

Retention deletes whole closed segments, oldest first; a stream's open segment is never deleted
(one open longer than segments.max_age_secs is closed first). Server status: GET /metrics
(Prometheus text format) and GET /api/v1/devices, both with the admin token.

The log goes to stderr: --log-level, or RUST_LOG (e.g. RUST_LOG=trawl_server=debug).

More organisations: trawl org create NAME --data DIR")]
pub struct Args {
    /// Data directory: catalogue, certificate, segments [default: ./trawl-data]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 0.0.0.0:8443]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Settings file (TOML); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (tests, or behind a TLS-terminating proxy).
    #[arg(long)]
    pub plain_http: bool,
    /// How much to log on stderr [default: RUST_LOG if set, else info]
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace", "off"])]
    pub log_level: Option<String>,
}

/// The config file. Every key is optional; unknown keys are refused.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    plain_http: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_batch_bytes: Option<usize>,
    segments: Option<SegmentsConfig>,
    retention: Option<RetentionFileConfig>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFileConfig {
    max_age_secs: Option<u64>,
    max_bytes: Option<u64>,
    check_interval_secs: Option<u64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SegmentsConfig {
    max_bytes: Option<u64>,
    max_age_secs: Option<u64>,
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let mut file: FileConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Relative paths in the file are relative to the file.
    let base = path.parent().unwrap_or(Path::new(""));
    for p in [&mut file.data, &mut file.tls_cert, &mut file.tls_key]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(file)
}

/// The server's configuration: defaults, then the file, then the flags.
fn resolve(args: &Args) -> Result<Config> {
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => FileConfig::default(),
    };
    let data = args
        .data
        .clone()
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address"));
    let mut config = Config::new(data, listen);

    let plain = args.plain_http || file.plain_http.unwrap_or(false);
    config.tls = match (plain, file.tls_cert, file.tls_key) {
        (true, None, None) => Tls::Plain,
        (true, _, _) => bail!("plain_http and tls_cert/tls_key contradict each other"),
        (false, Some(cert), Some(key)) => Tls::Files(TlsFiles { cert, key }),
        (false, None, None) => Tls::SelfSigned {
            names: certificate_names(listen),
        },
        (false, _, _) => bail!("tls_cert and tls_key go together: set both or neither"),
    };

    if let Some(n) = file.max_batch_bytes {
        if n == 0 || n > MAX_BATCH {
            bail!("max_batch_bytes must be between 1 and {MAX_BATCH} (the protocol's limit)");
        }
        config.max_batch = n;
    }
    let segments = file.segments.unwrap_or_default();
    let default = Rotation::default();
    config.rotation = Rotation {
        max_bytes: segments.max_bytes.unwrap_or(default.max_bytes),
        max_age: segments
            .max_age_secs
            .map(Duration::from_secs)
            .unwrap_or(default.max_age),
    };
    if config.rotation.max_bytes == 0 || config.rotation.max_age.is_zero() {
        bail!("segments.max_bytes and segments.max_age_secs must be more than 0");
    }
    let retention = file.retention.unwrap_or_default();
    let default = RetentionConfig::default();
    config.retention = RetentionConfig {
        default: RetentionPolicy {
            max_age_secs: retention.max_age_secs,
            max_bytes: retention.max_bytes,
        },
        check_interval: retention
            .check_interval_secs
            .map(Duration::from_secs)
            .unwrap_or(default.check_interval),
    };
    config
        .retention
        .default
        .check()
        .map_err(|e| anyhow::anyhow!("retention.{e}"))?;
    if config.retention.check_interval.is_zero() {
        bail!("retention.check_interval_secs must be more than 0");
    }
    Ok(config)
}

/// Names for a self-signed certificate: the loopback names, the listen address when it is a
/// specific one, and this machine's host name.
fn certificate_names(listen: SocketAddr) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let mut add = |name: String| {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    if !listen.ip().is_unspecified() {
        add(listen.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        add(host.trim().to_owned());
    }
    names
}

/// Sends the server's log (tracing events) to stderr: `level` if given, else `RUST_LOG`, else
/// info.
fn start_logging(level: Option<&str>) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match (level, std::env::var("RUST_LOG")) {
        (Some(level), _) => EnvFilter::new(level),
        (None, Ok(spec)) if !spec.trim().is_empty() => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("RUST_LOG={spec}: not a log filter: {e}"))?,
        _ => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| anyhow::anyhow!("starting the log: {e}"))
}

pub fn run(args: Args) -> Result<()> {
    let config = resolve(&args)?;
    start_logging(args.log_level.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<()> {
    let made_certificate = matches!(&config.tls, Tls::SelfSigned { .. })
        && !TlsFiles::in_dir(&config.data_dir.join("tls")).cert.exists();
    let server = Server::start(config).await?;
    let data = server.data_dir().display().to_string();

    println!("trawl server {}", env!("CARGO_PKG_VERSION"));
    println!("data directory: {data}");
    println!("listening on {}", server.url());
    if let Some(cert) = server.certificate() {
        let how = if made_certificate {
            " (self-signed, made now)"
        } else {
            ""
        };
        println!("certificate: {}{how}", cert.display());
        println!("certificate SHA-256 fingerprint: {}", fingerprint(cert)?);
    } else {
        println!("plain HTTP: no TLS (use only behind a TLS-terminating proxy, or for tests)");
    }

    let organisations = trawl_server::Catalogue::open(&server.data_dir().join("catalogue.db"))?
        .organisation_count()?;
    if organisations == 0 {
        let org = server.create_organisation(FIRST_ORGANISATION).await?;
        println!(
            "created organisation \"{FIRST_ORGANISATION}\" (id {})",
            org.id
        );
        println!("admin token: {}", org.admin_token);
        println!(
            "  ^ shown only this once and stored only as a hash: keep it now (a password manager \
             or secret store).\n    It makes enrolment tokens and manages the organisation's devices."
        );
        println!(
            "the web pages need a user to log in: trawl user add admin --role admin --data {data}"
        );
    } else {
        println!(
            "organisations: {organisations} (their admin tokens were shown when they were made; \
             another: trawl org create NAME --data {data})"
        );
    }
    println!("{}", next_steps(&server));
    println!("stop with Ctrl-C or SIGTERM");

    let why = stop_signal().await?;
    println!("stopping ({why}): finishing requests in progress");
    server.shutdown().await.context("stopping the server")?;
    println!("stopped");
    Ok(())
}

/// How to make an enrolment token: a curl command against this server.
fn next_steps(server: &Server) -> String {
    let addr = server.addr();
    // A wildcard address is not one to connect to; the certificate names localhost.
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let scheme = if server.certificate().is_some() {
        "https"
    } else {
        "http"
    };
    let cacert = match server.certificate() {
        Some(cert) => format!("--cacert {} ", cert.display()),
        None => String::new(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "next: make a one-time enrolment token for a device, with the admin token in $TRAWL_ADMIN_TOKEN:"
    );
    let _ = writeln!(
        s,
        "  curl {cacert}-X POST -H \"Authorization: Bearer $TRAWL_ADMIN_TOKEN\" \
         {scheme}://{host}:{}/api/v1/enrollment-tokens",
        addr.port()
    );
    let _ = write!(
        s,
        "  the device trades it once for its own credential (POST /api/v1/enroll, docs/protocol.md)"
    );
    s
}

/// The SHA-256 of the first certificate in a PEM file, as `AB:CD:…` (as `openssl x509
/// -fingerprint -sha256` prints it).
fn fingerprint(cert: &Path) -> Result<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    let der = CertificateDer::pem_file_iter(cert)
        .and_then(|mut certs| certs.next().transpose())
        .map_err(|e| anyhow::anyhow!("reading the certificate {}: {e}", cert.display()))?
        .with_context(|| format!("no certificate in {}", cert.display()))?;
    let digest = Sha256::digest(der.as_ref());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM; returns which.
async fn stop_signal() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            r.context("listening for Ctrl-C")?;
            Ok("interrupt")
        }
        _ = term.recv() => Ok("SIGTERM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>) -> Args {
        Args {
            data: None,
            listen: None,
            config,
            plain_http: false,
            log_level: None,
        }
    }

    #[test]
    fn defaults() {
        let c = resolve(&args(None)).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(c.tls, Tls::SelfSigned { .. }));
        assert_eq!(c.max_batch, MAX_BATCH);
        assert_eq!(c.retention.default, RetentionPolicy::default());
        assert_eq!(c.retention.check_interval, Duration::from_secs(60));
    }

    #[test]
    fn retention_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[retention]\nmax_age_secs = 86400\ncheck_interval_secs = 5\n",
        )
        .unwrap();
        let c = resolve(&args(Some(path.clone()))).unwrap();
        assert_eq!(
            c.retention.default,
            RetentionPolicy {
                max_age_secs: Some(86400),
                max_bytes: None
            }
        );
        assert_eq!(c.retention.check_interval, Duration::from_secs(5));

        for (text, expect) in [
            (
                "[retention]\nmax_bytes = 0\n",
                "retention.max_bytes must be from 1",
            ),
            (
                "[retention]\ncheck_interval_secs = 0\n",
                "check_interval_secs",
            ),
            ("[retention]\nmax_age = 1\n", "max_age"),
            ("[retention]\nmax_age_secs = -1\n", "max_age_secs"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = format!("{:#}", resolve(&args(Some(path.clone()))).unwrap_err());
            assert!(e.contains(expect), "{text}: {e}");
        }
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "data = \"d\"\nlisten = \"127.0.0.1:1\"\nplain_http = true\nmax_batch_bytes = 1024\n\
             [segments]\nmax_bytes = 4096\nmax_age_secs = 60\n",
        )
        .unwrap();
        let c = resolve(&args(Some(path.clone()))).unwrap();
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert!(matches!(c.tls, Tls::Plain));
        assert_eq!(c.max_batch, 1024);
        assert_eq!(c.rotation.max_bytes, 4096);
        assert_eq!(c.rotation.max_age, Duration::from_secs(60));

        let mut a = args(Some(path));
        a.data = Some("/x".into());
        a.listen = Some("127.0.0.1:2".parse().unwrap());
        let c = resolve(&a).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/x"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:2");
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "[segments]\nmax_size = 1\n").unwrap();
        let e = resolve(&args(Some(path))).unwrap_err().to_string();
        assert!(e.contains("max_size"), "{e}");
    }
}
