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

/// POSTs JSON with curl; (status, parsed body).
fn post_json(cert: &Path, url: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
    ];
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    args.push(url);
    let (status, body) = curl(cert, &args);
    (status, serde_json::from_str(&body).unwrap())
}

/// Enrols a device named `name` with the admin token; its credential.
fn enrol(cert: &Path, url: &str, admin: &str, name: &str) -> String {
    let (status, token) = post_json(
        cert,
        &format!("{url}/api/v1/enrollment-tokens"),
        Some(admin),
        "{}",
    );
    assert_eq!(status, 201, "{token}");
    let body = serde_json::json!({"token": token["token"], "name": name}).to_string();
    let (status, device) = post_json(cert, &format!("{url}/api/v1/enroll"), None, &body);
    assert_eq!(status, 201, "{device}");
    device["credential"].as_str().unwrap().to_owned()
}

/// Uploads a capture as batches of stream eth0, the way an agent would, with curl.
fn upload(cert: &Path, url: &str, credential: &str, capture: &Path, work: &Path) {
    let mut reader = trawl_pcap::CaptureReader::open(capture).unwrap();
    let mut more = reader.advance().unwrap();
    let (lt, snaplen) = (
        reader.interfaces()[0].link_type,
        reader.interfaces()[0].snaplen,
    );
    let mut seq = 0;
    while more {
        let mut b = trawl_wire::BatchBuilder::new("eth0", lt, snaplen);
        while more && b.packets() < 1000 {
            let p = reader.current().unwrap();
            b.push(p.ts, p.orig_len, p.data);
            more = reader.advance().unwrap();
        }
        seq += 1;
        let file = work.join("batch");
        std::fs::write(
            &file,
            b.finish(3, seq, seq - 1, trawl_wire::Drops::default()),
        )
        .unwrap();
        let (status, body) = curl(
            cert,
            &[
                "-X",
                "POST",
                "-H",
                &format!("Authorization: Bearer {credential}"),
                "-H",
                "Content-Type: application/x-trawl-batch",
                "--data-binary",
                &format!("@{}", file.display()),
                &format!("{url}/api/v1/streams/eth0/batches"),
            ],
        );
        assert_eq!(status, 200, "{body}");
    }
}

/// trawl with extra environment variables; (success, stdout bytes, stderr).
fn trawl_env(args: &[&str], env: &[(&str, &str)]) -> (bool, Vec<u8>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
    cmd.args(args);
    for var in [
        "TRAWL_SERVER",
        "TRAWL_TOKEN",
        "TRAWL_CA",
        "TRAWL_FINGERPRINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run trawl");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pull_and_devices_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let data = work.join("data");
    let cert = data.join("tls/cert.pem");
    let mut server = Server::start(&data, "127.0.0.1:0");
    let banner = server.banner();
    let url = banner.url.clone();
    let admin = banner.admin_token.clone().expect("an admin token");
    let token_file = work.join("token");
    std::fs::write(&token_file, format!("{admin}\n")).unwrap();

    // Two devices: a corpus capture, and the same traffic seen 517 µs later.
    let a = harness::corpus().join("pcapplusplus/Tests/Pcap++Test/PcapExamples/example.pcap");
    let b = work.join("b.pcap");
    tool(
        "editcap",
        &["-t", "0.000517", a.to_str().unwrap(), b.to_str().unwrap()],
    )
    .unwrap();
    for (name, capture) in [("gw-a", &a), ("gw-b", &b)] {
        let credential = enrol(&cert, &url, &admin, name);
        upload(&cert, &url, &credential, capture, work);
    }

    let tls = [
        "--server",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    let ca = ["--ca", cert.to_str().unwrap()];

    // The device table: both devices, with what capinfos counts in each file (4631 packets).
    let (ok, stdout, stderr) = trawl_env(&[&["devices"][..], &tls, &ca].concat(), &[]);
    assert!(ok, "{stderr}");
    let table = String::from_utf8(stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].contains("NAME") && lines[0].contains("PACKETS"),
        "{table}"
    );
    for (line, name) in lines[1..].iter().zip(["gw-a", "gw-b"]) {
        assert!(line.contains(name) && line.contains(" 4631 "), "{table}");
    }
    let (ok, stdout, stderr) = trawl_env(&[&["devices", "--json"][..], &tls, &ca].concat(), &[]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(json["devices"].as_array().unwrap().len(), 2);

    // A window of both devices with a filter, pinned by fingerprint; the reference is editcap's
    // window and tcpdump's filter of each file, merged by mergecap.
    let times: Vec<String> = tool(
        "tshark",
        &[
            "-r",
            a.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ],
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect();
    let (from, to) = (times[1001].as_str(), times[3050].as_str());
    let date = |epoch: &str| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d %H:%M:%S.%N"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let mut expected_inputs = Vec::new();
    for (n, input) in [&b, &a].iter().enumerate() {
        let cut = work.join(format!("cut-{n}.pcap"));
        let out = Command::new("editcap")
            .env("TZ", "UTC")
            .args(["-A", &date(from), "-B", &date(to)])
            .args([input.to_str().unwrap(), cut.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let kept = work.join(format!("kept-{n}.pcap"));
        tool(
            "tcpdump",
            &[
                "-r",
                cut.to_str().unwrap(),
                "-w",
                kept.to_str().unwrap(),
                "tcp port 80",
            ],
        )
        .unwrap();
        expected_inputs.push(kept);
    }
    let expected = work.join("expected.pcapng");
    let mut margs = vec!["-I", "none", "-w", expected.to_str().unwrap()];
    margs.extend(expected_inputs.iter().map(|p| p.to_str().unwrap()));
    tool("mergecap", &margs).unwrap();
    let want = harness::frames(&expected);
    assert!(want.packets.len() > 500, "{}", want.packets.len());

    let out = work.join("pulled.pcapng");
    let pull = [
        "pull",
        "--device",
        "gw-a",
        "--device",
        "gw-b",
        "--from",
        from,
        "--to",
        to,
        "-f",
        "tcp port 80",
    ];
    let fingerprint = ["--fingerprint", banner.fingerprint.as_str()];
    let (ok, _, stderr) = trawl_env(
        &[
            &pull[..],
            &tls,
            &fingerprint,
            &["-o", out.to_str().unwrap()],
        ]
        .concat(),
        &[],
    );
    assert!(ok, "{stderr}");
    let got = harness::frames(&out);
    assert!(want.packets == got.packets, "{}", want.diff(&got));
    assert!(
        stderr.starts_with(&format!("{} packets (", want.packets.len())),
        "{stderr}"
    );
    assert!(stderr.contains("from 2 of 2 devices"), "{stderr}");

    // The analysis commands read the same window from the server: the flow records equal those
    // of the downloaded file (interfaces named DEVICE/INTERFACE in both), and the report's
    // lines are the devices' interfaces.
    let window = &pull[..pull.len() - 2];
    let (ok, from_server, stderr) = trawl_env(
        &[
            &["flows"][..],
            &window[1..],
            &["-f", "tcp port 80"],
            &tls,
            &ca,
        ]
        .concat(),
        &[],
    );
    assert!(ok, "{stderr}");
    let (ok, from_file, stderr) =
        trawl_env(&["flows", "-f", "tcp port 80", out.to_str().unwrap()], &[]);
    assert!(ok, "{stderr}");
    assert!(
        from_server == from_file,
        "flows of the window differ from those of its download"
    );
    assert!(from_file.split(|b| *b == b'\n').count() > 20);
    let (ok, report, stderr) = trawl_env(
        &[&["report", "--format", "json"][..], &window[1..], &tls, &ca].concat(),
        &[],
    );
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let mut lines: Vec<String> = report[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("gw-a/") && lines[1].starts_with("gw-b/"),
        "{lines:?}"
    );

    // To standard output, everything from the environment: the same bytes; --json summary.
    let env = [
        ("TRAWL_SERVER", url.as_str()),
        ("TRAWL_TOKEN", admin.as_str()),
        ("TRAWL_CA", cert.to_str().unwrap()),
    ];
    let (ok, stdout, stderr) = trawl_env(&[&pull[..], &["-o", "-", "--json"]].concat(), &env);
    assert!(ok, "{stderr}");
    assert!(
        stdout == std::fs::read(&out).unwrap(),
        "stdout differs from the file"
    );
    let summary: serde_json::Value = serde_json::from_str(&stderr).unwrap();
    assert_eq!(summary["packets"], want.packets.len());
    assert_eq!(summary["file_bytes"], stdout.len());

    // Mistakes: said clearly, and no output file left behind.
    let missing = work.join("missing.pcapng");
    let o = ["-o", missing.to_str().unwrap()];
    // (arguments, environment, what the error must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["pull", "--device", "nope", "--from", from, "--to", to],
            &env,
            "not_found: no device \"nope\"",
        ),
        (
            &[
                "pull",
                "--device",
                "gw-a",
                "--from",
                from,
                "--to",
                to,
                "-f",
                "tcp port eighty",
            ],
            &env,
            "bad_filter: unknown port 'eighty'",
        ),
        (
            &["pull", "--device", "gw-a", "--from", "+10s", "--to", to],
            &env,
            "absolute time",
        ),
        (
            &["pull", "--device", "gw-a", "--from", to, "--to", from],
            &env,
            "the window is empty",
        ),
        (
            &[
                "pull", "--device", "gw-a", "--from", from, "--to", to, "--token", "wrong",
            ],
            &env,
            "unauthorized",
        ),
        (
            &["pull", "--device", "gw-a", "--from", from, "--to", to],
            &[
                ("TRAWL_SERVER", url.as_str()),
                ("TRAWL_TOKEN", admin.as_str()),
                ("TRAWL_FINGERPRINT", &"AB:".repeat(31)),
            ],
            "fingerprint",
        ),
        (
            &["pull", "--device", "gw-a", "--from", from, "--to", to],
            &[("TRAWL_TOKEN", admin.as_str())],
            "TRAWL_SERVER",
        ),
        (&["devices", "--server", "not a url"], &env, "not a URL"),
    ];
    for (args, env, says) in cases {
        let extra: &[&str] = if args[0] == "pull" { &o } else { &[] };
        let (ok, _, stderr) = trawl_env(&[args, extra].concat(), env);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!missing.exists(), "{args:?} left an output file");
    }
    let leftovers: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    server.terminate();
}
