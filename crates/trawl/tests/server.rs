//! `trawl server` and `trawl org` as a user runs them: the binary as a subprocess on a temporary
//! data directory, talked to with curl over HTTPS that trusts the server's own certificate file.

mod harness;

use std::path::Path;
use std::process::Command;

use harness::server::Server;
use harness::{run_ok, tool, trawl};

/// curl trusting `cert`; returns (HTTP status, body).
fn curl(cert: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(cert)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl (install it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn create_enrolment_token(cert: &Path, url: &str, admin: &str) -> (u16, String) {
    curl(
        cert,
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {admin}"),
            &format!("{url}/api/v1/enrollment-tokens"),
        ],
    )
}

#[test]
fn server_first_start_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cert = data.join("tls/cert.pem");

    // First start: a certificate and the organisation "default" are made, its token printed.
    let mut server = Server::start(&data, "127.0.0.1:0");
    let first = server.banner();
    assert!(
        first.url.starts_with("https://127.0.0.1:") && !first.url.ends_with(":0"),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("(self-signed, made now)"),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("created organisation \"default\""),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("shown only this once"),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("/api/v1/enrollment-tokens"),
        "{}",
        first.text
    );
    let admin = first.admin_token.clone().expect("an admin token line");
    assert!(admin.len() >= 20, "{admin}");

    // The fingerprint printed is the certificate file's, as openssl computes it.
    let openssl = tool(
        "openssl",
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            cert.to_str().unwrap(),
        ],
    )
    .unwrap();
    let (_, expected) = openssl.trim().split_once('=').unwrap();
    assert_eq!(first.fingerprint, expected);

    // Health over TLS, trusting the server's own certificate file.
    let (status, body) = curl(&cert, &[&format!("{}/api/v1/health", first.url)]);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    // The admin token makes enrolment tokens; without it, 401.
    let (status, body) = create_enrolment_token(&cert, &first.url, &admin);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"token\""), "{body}");
    let (status, _) = curl(
        &cert,
        &[
            "-X",
            "POST",
            &format!("{}/api/v1/enrollment-tokens", first.url),
        ],
    );
    assert_eq!(status, 401);

    server.terminate();

    // Second start on the same directory: same certificate, no new organisation, no token.
    let mut server = Server::start(&data, "127.0.0.1:0");
    let second = server.banner();
    assert_eq!(second.admin_token, None, "{}", second.text);
    assert!(
        !second.text.contains("created organisation"),
        "{}",
        second.text
    );
    assert!(second.text.contains("organisations: 1"), "{}", second.text);
    assert!(!second.text.contains("made now"), "{}", second.text);
    assert_eq!(second.fingerprint, first.fingerprint);
    let (status, _) = create_enrolment_token(&cert, &second.url, &admin);
    assert_eq!(status, 201, "the first admin token still works");

    // `trawl org create` beside the running server: a new organisation whose token works now.
    let data_arg = data.to_str().unwrap();
    let (stdout, stderr) = run_ok(&["org", "create", "acme", "--data", data_arg]);
    let acme = stdout.trim();
    assert!(!acme.is_empty() && acme != admin, "{stdout}");
    assert!(stderr.contains("shown only this once"), "{stderr}");
    let (status, _) = create_enrolment_token(&cert, &second.url, acme);
    assert_eq!(status, 201);
    let e = trawl(&["org", "create", "acme", "--data", data_arg]).unwrap_err();
    assert!(e.contains("already exists"), "{e}");
    server.terminate();
}

#[test]
fn config_file_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nretention_days = 7\n").unwrap();
    let e = trawl(&["server", "--config", config.to_str().unwrap()]).unwrap_err();
    assert!(e.contains("retention_days"), "{e}");
}
