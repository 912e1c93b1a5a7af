//! `trawl user` as an operator runs it: the first admin made on the data directory of a server
//! that is running, then logging in over HTTPS with curl (a cookie jar, as a browser keeps it).

mod harness;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use harness::run_ok;
use harness::server::Server;

/// trawl with `stdin` on its standard input; (success, stdout, stderr).
fn trawl_with_input(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trawl");
    // trawl may refuse and exit before reading its input: a closed pipe is not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `POST /api/v1/login` with curl, keeping the cookie in `jar`; (HTTP status, body).
fn login(cert: &Path, url: &str, jar: &Path, user: &str, password: &str) -> (u16, String) {
    let body = serde_json::json!({"user": user, "password": password}).to_string();
    curl(
        cert,
        &[
            "-c",
            jar.to_str().unwrap(),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            &format!("{url}/api/v1/login"),
        ],
    )
}

fn curl(cert: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(cert)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl (install it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

#[test]
fn the_first_admin_is_made_with_the_cli_and_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let cert = data.join("tls/cert.pem");
    let jar = dir.path().join("cookies");

    let mut server = Server::start(&data, "127.0.0.1:0");
    let banner = server.banner();
    assert!(
        banner.text.contains("trawl user add admin --role admin"),
        "the first start says how to make a web user: {}",
        banner.text
    );
    let url = banner.url.clone();

    // Not on a terminal and without --password-stdin: refused, nothing made.
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user", "add", "admin", "--role", "admin", "--data", data_arg,
        ],
        "a password\n",
    );
    assert!(!ok && stderr.contains("--password-stdin"), "{stderr}");
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "short\n",
    );
    assert!(!ok && stderr.contains("at least 8 characters"), "{stderr}");
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "root",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "long enough\n",
    );
    assert!(!ok && stderr.contains("unknown role"), "{stderr}");

    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "first admin's password\n",
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("added user \"admin\""), "{stderr}");
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "add",
            "Admin",
            "--role",
            "viewer",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "another password\n",
    );
    assert!(!ok && stderr.contains("already exists"), "{stderr}");

    let (list, _) = run_ok(&["user", "list", "--data", data_arg]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["ID", "NAME", "ROLE", "STATE", "CREATED"],
        "{list}"
    );
    assert_eq!(rows[1][..3], ["1", "admin", "admin"], "{list}");

    // The running server knows the user at once.
    let (status, body) = login(&cert, &url, &jar, "admin", "wrong password");
    assert_eq!(status, 401, "{body}");
    let (status, body) = login(&cert, &url, &jar, "admin", "first admin's password");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"user": "admin", "org": "default", "role": "admin"})
    );
    let cookies = std::fs::read_to_string(&jar).unwrap();
    assert!(
        cookies.contains("#HttpOnly_127.0.0.1") && cookies.contains("trawl_session"),
        "{cookies}"
    );
    let jar_arg = jar.to_str().unwrap();
    let (status, body) = curl(&cert, &["-b", jar_arg, &format!("{url}/api/v1/me")]);
    assert_eq!(
        (status, body.contains("\"via\":\"session\"")),
        (200, true),
        "{body}"
    );
    // With the cookie, an unsafe request needs the CSRF header.
    let tokens = format!("{url}/api/v1/tokens");
    let new_token = r#"{"name":"ci","role":"viewer"}"#;
    let json = "Content-Type: application/json";
    let (status, _) = curl(
        &cert,
        &["-b", jar_arg, "-H", json, "-d", new_token, &tokens],
    );
    assert_eq!(status, 403);
    let csrf = "X-Requested-With: trawl";
    let (status, body) = curl(
        &cert,
        &[
            "-b", jar_arg, "-H", json, "-H", csrf, "-d", new_token, &tokens,
        ],
    );
    assert_eq!(status, 201, "{body}");

    // A new password: the old one and the session stop working.
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "passwd",
            "admin",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "the second password\n",
    );
    assert!(ok, "{stderr}");
    let (status, _) = curl(&cert, &["-b", jar_arg, &format!("{url}/api/v1/me")]);
    assert_eq!(status, 401);
    let other_jar = dir.path().join("cookies2");
    assert_eq!(
        login(&cert, &url, &other_jar, "admin", "first admin's password").0,
        401
    );
    assert_eq!(
        login(&cert, &url, &other_jar, "admin", "the second password").0,
        200
    );
    let (ok, _, stderr) = trawl_with_input(
        &[
            "user",
            "passwd",
            "nobody",
            "--password-stdin",
            "--data",
            data_arg,
        ],
        "the second password\n",
    );
    assert!(!ok && stderr.contains("no user \"nobody\""), "{stderr}");
    server.terminate();
}
