//! The HTTPS client the agent (and the `trawl` client commands) use to reach a server, and how
//! it decides to trust the server's certificate.
//!
//! Three ways ([`Trust`]):
//! - `Ca(FILE)`: the certificates in a PEM file are the only roots (the server's self-signed
//!   certificate, copied from `DATA/tls/cert.pem`, or a private CA);
//! - `Fingerprint(SHA-256)`: exactly the certificate whose SHA-256 the server printed at start
//!   (pinning; its signature on the handshake is still checked, its name and dates are not);
//! - `System`: the machine's usual roots (a certificate from a public CA).
//!
//! A `http://` URL needs none of them (tests, or behind a TLS-terminating proxy). Proxies named
//! by `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` are used.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// How the client trusts the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Only the certificates in this PEM file.
    Ca(PathBuf),
    /// Only the certificate with this SHA-256.
    Fingerprint([u8; 32]),
    /// The system's roots.
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{path}: {detail}")]
    Ca { path: PathBuf, detail: String },
    #[error(
        "fingerprint {0:?}: expected the 64 hex digits of a SHA-256, with or without colons \
         (as `trawl server` prints it)"
    )]
    Fingerprint(String),
    #[error("building the HTTP client: {0}")]
    Client(String),
}

impl Trust {
    /// Parses a fingerprint as `trawl server` and `openssl x509 -fingerprint -sha256` print it
    /// (`AB:CD:…`), or as 64 plain hex digits.
    pub fn fingerprint(text: &str) -> Result<Trust, HttpError> {
        let hex: String = text
            .trim()
            .trim_start_matches("sha256:")
            .trim_start_matches("SHA256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let bad = || HttpError::Fingerprint(text.to_owned());
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Trust::Fingerprint(out))
    }
}

/// The SHA-256 of a certificate, as `AB:CD:…`.
pub fn fingerprint_of(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_roots(path: &Path) -> Result<rustls::RootCertStore, HttpError> {
    let bad = |detail: String| HttpError::Ca {
        path: path.to_owned(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a usable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(roots)
}

/// A blocking client for `trust`, with a whole-request `timeout`.
pub fn blocking_client(
    trust: &Trust,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, HttpError> {
    let builder = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")));
    let builder = match tls_config(trust)? {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    };
    builder
        .build()
        .map_err(|e| HttpError::Client(e.to_string()))
}

/// An async client for `trust` (for commands that stream large downloads).
pub fn async_client(trust: &Trust) -> Result<reqwest::Client, HttpError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")));
    let builder = match tls_config(trust)? {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    };
    builder
        .build()
        .map_err(|e| HttpError::Client(e.to_string()))
}

/// The rustls configuration for `trust`; `None` for the system roots (reqwest's default, with
/// the ring provider installed as the process default).
fn tls_config(trust: &Trust) -> Result<Option<rustls::ClientConfig>, HttpError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Client(e.to_string()))?;
    let config = match trust {
        Trust::System => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            return Ok(None);
        }
        Trust::Ca(path) => builder
            .with_root_certificates(read_roots(path)?)
            .with_no_client_auth(),
        Trust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(Some(config))
}

/// Accepts exactly the certificate with the pinned SHA-256; handshake signatures are verified
/// against it as usual.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has SHA-256 fingerprint {}, not the pinned one",
                fingerprint_of(end_entity.as_ref())
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The `{"error": …, "detail": …}` of a server's error answer, or the body as text.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        detail: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("{}: {}", e.error, e.detail),
        Err(_) => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(500)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let colons = "AB:".repeat(31) + "CD";
        let Trust::Fingerprint(a) = Trust::fingerprint(&colons).unwrap() else {
            panic!()
        };
        assert_eq!(a[0], 0xAB);
        assert_eq!(a[31], 0xCD);
        let plain = "ab".repeat(31) + "cd";
        assert_eq!(
            Trust::fingerprint(&plain).unwrap(),
            Trust::Fingerprint(a),
            "case and colons do not matter"
        );
        assert!(Trust::fingerprint("AB:CD").is_err());
        assert!(Trust::fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn error_bodies_read_as_kind_and_detail() {
        assert_eq!(
            error_detail(br#"{"error":"gap","detail":"send from 4 on","last":3}"#),
            "gap: send from 4 on"
        );
        assert_eq!(error_detail(b"plain text\n"), "plain text");
    }
}
