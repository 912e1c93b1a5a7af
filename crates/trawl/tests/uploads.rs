//! Uploads as devices and operators make them: `trawl server` as a subprocess on a temporary
//! data directory, over HTTPS trusting its own certificate; real curl (raw, multipart,
//! compressed, Basic auth after a challenge, chunked from a pipe), a real `tcpdump -U -w -`
//! piped into curl while it captures, `trawl upload` and `trawl captures`, and the server's memory
//! through a large chunked upload. Every capture that goes up is read back as tshark sees it.

mod harness;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::netns::{Netns, skip_reason};
use harness::server::Server;
use harness::{corpus, frames, run_ok, trawl};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    server: Server,
    url: String,
    cert: PathBuf,
    token: String,
}

fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, "127.0.0.1:0");
    let banner = server.banner();
    Env {
        url: banner.url,
        cert: data.join("tls/cert.pem"),
        token: banner.admin_token.expect("an admin token on first start"),
        server,
        dir,
    }
}

/// What curl got: HTTP status, headers (with -i) and body.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        let body = self.text.rsplit("\r\n\r\n").next().unwrap_or(&self.text);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Env {
    fn captures_url(&self, query: &str) -> String {
        format!("{}/api/v1/captures{query}", self.url)
    }

    /// curl trusting the server's certificate, with `args`; the status and what it printed.
    fn curl(&self, args: &[&str]) -> Answer {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(&self.cert)
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
        Answer {
            status: code.trim().parse().unwrap(),
            text: body.to_owned(),
        }
    }

    fn bearer(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    fn basic(&self) -> String {
        format!("cpe-0012ab:{}", self.token)
    }

    /// Downloads a capture with curl into the test's directory.
    fn download(&self, answer: &Value) -> PathBuf {
        let out = self
            .dir
            .path()
            .join(format!("capture-{}.pcapng", answer["id"]));
        let url = answer["url"].as_str().unwrap();
        let got = self.curl(&["-H", &self.bearer(), "-o", out.to_str().unwrap(), url]);
        assert_eq!(got.status, 200, "{}", got.text);
        out
    }

    /// `trawl ARGS --server URL --token T --ca CERT`, which must succeed: stdout.
    fn trawl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--server", &self.url, "--token", &self.token]);
        all.extend_from_slice(&["--ca", self.cert.to_str().unwrap()]);
        run_ok(&all).0
    }
}

/// The capture `answer` describes came back as tshark sees `original`: every packet's time,
/// lengths, bytes, comments, interface name and encapsulation.
fn assert_same_packets(env: &Env, what: &str, original: &Path, answer: &Value) {
    let back = env.download(answer);
    let (want, got) = (frames(original), frames(&back));
    assert!(!want.rows.is_empty(), "{what}: tshark sees no packet");
    assert_eq!(
        answer["packets"].as_u64(),
        Some(want.rows.len() as u64),
        "{what}: {answer}"
    );
    assert!(want.rows == got.rows, "{what}: {}", want.diff(&got));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn curl_uploads_raw_multipart_compressed_with_basic_auth_and_chunked_and_they_come_back_whole() {
    let env = start();
    let corpus = corpus();
    let dhcp = corpus.join("wireshark-4.0.17/dhcp.pcap");
    let dhcp_ns = corpus.join("wireshark-4.0.17/dhcp-nanosecond.pcapng");
    let many = corpus.join("wireshark-4.0.17/many_interfaces.pcapng.1");
    let sll_gz = corpus.join("wireshark-4.0.17/netperfmeter.pcapng.gz");
    let (bearer, basic) = (env.bearer(), env.basic());

    // Raw PUT (curl -T) with the token.
    let a = env.curl(&["-H", &bearer, "-T", s(&dhcp), &env.captures_url("?tag=raw")]);
    assert_eq!(a.status, 201, "{}", a.text);
    let j = a.json();
    assert_eq!(j["tags"], serde_json::json!(["raw"]), "{j}");
    assert_same_packets(&env, "curl -T", &dhcp, &j);

    // POST of the body, Basic auth with the token as the password.
    let a = env.curl(&[
        "-u",
        &basic,
        "--data-binary",
        &format!("@{}", s(&dhcp_ns)),
        "-H",
        "Content-Type: application/octet-stream",
        &env.captures_url("?name=ns&tags=a,b&comment=nanoseconds"),
    ]);
    assert_eq!(a.status, 201, "{}", a.text);
    let j = a.json();
    assert_eq!(
        (j["name"].as_str(), j["notes"].as_str()),
        (Some("ns"), Some("nanoseconds"))
    );
    assert_same_packets(&env, "curl --data-binary", &dhcp_ns, &j);

    // Multipart, CloudShark style, of 11 interfaces of several link types.
    let a = env.curl(&[
        "-u",
        &basic,
        "-F",
        &format!("file=@{}", s(&many)),
        "-F",
        "additional_tags=vendor,site-7",
        "-F",
        "comments=for the vendor",
        &env.captures_url(""),
    ]);
    assert_eq!(a.status, 201, "{}", a.text);
    let j = a.json();
    assert_eq!(j["tags"], serde_json::json!(["site-7", "vendor"]), "{j}");
    assert_eq!(j["notes"], "for the vendor");
    assert_eq!(j["interfaces"].as_array().unwrap().len(), 11);
    assert_same_packets(&env, "curl -F", &many, &j);

    // Content-Encoding gzip and zstd; a compressed file as it is.
    let gz = env.dir.path().join("dhcp.pcap.gz");
    let zst = env.dir.path().join("dhcp.pcap.zst");
    let sh = |cmd: String| {
        let st = Command::new("sh").args(["-c", &cmd]).status().unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh(format!("gzip -c {} > {}", s(&dhcp), s(&gz)));
    sh(format!("zstd -q -c {} > {}", s(&dhcp), s(&zst)));
    for (file, encoding) in [(&gz, "gzip"), (&zst, "zstd")] {
        let a = env.curl(&[
            "-H",
            &bearer,
            "-H",
            &format!("Content-Encoding: {encoding}"),
            "-T",
            s(file),
            &env.captures_url(""),
        ]);
        assert_eq!(a.status, 201, "{encoding}: {}", a.text);
        assert_same_packets(&env, encoding, &dhcp, &a.json());
    }
    let a = env.curl(&["-H", &bearer, "-T", s(&sll_gz), &env.captures_url("")]);
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json()["source"], "pcapng, gzip");
    assert_same_packets(&env, "a .pcapng.gz", &sll_gz, &a.json());

    // Chunked from a pipe (HTTP/1.1 chunked transfer, and HTTP/2 of unknown length).
    for http in ["--http1.1", "--http2"] {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "cat {} | curl -sS -v {http} --cacert {} -u {} -T - '{}'",
                    s(&dhcp),
                    s(&env.cert),
                    basic,
                    env.captures_url("?name=piped")
                ),
            ])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        if http == "--http1.1" {
            assert!(
                stderr.contains("Transfer-Encoding: chunked"),
                "not chunked: {stderr}"
            );
        }
        let j: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}"));
        assert_same_packets(&env, http, &dhcp, &j);
    }

    // A client that sends credentials only when challenged (as TR-069 CPEs may).
    let a = env.curl(&["-i", "-T", s(&dhcp), &format!("{}/api/v1/upload", env.url)]);
    assert_eq!(a.status, 401, "{}", a.text);
    assert!(
        a.text
            .to_lowercase()
            .contains("www-authenticate: basic realm=\"trawl\""),
        "{}",
        a.text
    );
    let a = env.curl(&[
        "--anyauth",
        "-u",
        &basic,
        "-T",
        s(&dhcp),
        &format!("{}/api/v1/upload/cpe-diag.pcap", env.url),
    ]);
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json()["name"], "cpe-diag.pcap");

    // Not a capture, and one cut short through a pipe: refused, saying what and where.
    let a = env.curl(&["-H", &bearer, "-T", "/etc/hostname", &env.captures_url("")]);
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.json()["error"], "not_a_capture");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "head -c 800 {} | curl -sS --cacert {} -u {} -T - '{}'",
                s(&dhcp),
                s(&env.cert),
                basic,
                env.captures_url("")
            ),
        ])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["error"], "bad_capture", "{j}");
    assert_eq!(j["offset"], 712, "{j}");
    assert!(
        j["detail"]
            .as_str()
            .unwrap()
            .contains("after 2 good packets"),
        "{j}"
    );

    let list = env.curl(&["-H", &bearer, &env.captures_url("")]).json();
    assert_eq!(list["count"], 9, "{list}");
    drop(env.server);
}

#[test]
fn tcpdump_on_a_loopback_streams_through_curl_while_it_captures() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let env = start();
    let ns = Netns::new("upload", "cap");
    let mut tcpdump = ns
        .command("tcpdump")
        .args([
            "-i",
            "lo",
            "-n",
            "-U",
            "--immediate-mode",
            "-w",
            "-",
            "icmp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump (scripts/deps.sh installs it)");
    let capture = tcpdump.stdout.take().unwrap();
    let curl = Command::new("curl")
        .args(["-sS", "--http1.1", "--cacert"])
        .arg(&env.cert)
        .args(["-u", &env.basic(), "-T", "-"])
        .arg(env.captures_url("?name=gw-live&tag=tcpdump"))
        .stdin(Stdio::from(capture))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    let tcpdump_err = harness::read_all(tcpdump.stderr.take().unwrap());
    // tcpdump says "listening" on stderr only when done; give it a moment to open the socket.
    std::thread::sleep(Duration::from_millis(1500));
    ns.exec_ok(&["ping", "-c", "20", "-i", "0.05", "127.0.0.1"]);
    std::thread::sleep(Duration::from_millis(300));
    // SIGINT: tcpdump writes what it has and exits; curl sees the end of the body.
    let rc = unsafe { libc::kill(tcpdump.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    assert!(tcpdump.wait().unwrap().success());
    let out = curl.wait_with_output().unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report = tcpdump_err.join().unwrap();
    let captured: u64 = report
        .lines()
        .find_map(|l| l.trim().strip_suffix("packets captured"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(captured, 40, "20 echo requests and 20 replies: {report}");
    assert_eq!(answer["packets"], captured, "{answer}");
    assert_eq!(answer["name"], "gw-live");
    let back = env.download(&answer);
    let f = frames(&back);
    assert_eq!(f.rows.len(), 40);
    assert!(
        f.packets.iter().all(|p| p.ends_with(" 1")),
        "Ethernet: {:?}",
        f.packets
    );
}

#[test]
fn trawl_upload_and_captures_commands() {
    let env = start();
    let corpus = corpus();
    let dhcp = corpus.join("wireshark-4.0.17/dhcp.pcap");
    let http = corpus.join("wireshark-4.0.17/http.pcap");

    let out = env.trawl(&[
        "upload",
        s(&dhcp),
        "--tag",
        "incident-4711",
        "--tag",
        "site-7",
        "--notes",
        "DHCP storm",
    ]);
    assert!(
        out.starts_with("capture 1: 4 packets, 1312 bytes (pcap)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}/api/v1/captures/1/pcapng", env.url)),
        "{out}"
    );
    // From standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args([
            "upload", "-", "--name", "piped", "--json", "--server", &env.url,
        ])
        .args(["--token", &env.token, "--ca", s(&env.cert)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&http).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let piped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (piped["id"].as_u64(), piped["name"].as_str()),
        (Some(2), Some("piped"))
    );

    let table = env.trawl(&["captures", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ID  KIND"), "{table}");
    assert!(lines[1].contains("piped"), "newest first: {table}");
    assert!(lines[2].contains("incident-4711,site-7"), "{table}");
    let found: Value =
        serde_json::from_str(&env.trawl(&["captures", "list", "--tag", "site-7", "--json"]))
            .unwrap();
    assert_eq!(found["count"], 1);
    let found: Value = serde_json::from_str(&env.trawl(&[
        "captures",
        "list",
        "--from",
        "2004-12-05T19:16:24Z",
        "--to",
        "2004-12-05T19:16:25Z",
        "--json",
    ]))
    .unwrap();
    assert_eq!(found["captures"][0]["id"], 1, "{found}");
    assert_eq!(found["count"], 1);

    let shown = env.trawl(&["captures", "show", "1"]);
    assert!(
        shown.contains("first packet 2004-12-05 19:16:24.317"),
        "{shown}"
    );
    assert!(shown.contains("notes:\n  DHCP storm"), "{shown}");
    let out = env.trawl(&["captures", "tag", "1", "vendor", "escalated"]);
    assert_eq!(
        out.trim(),
        "capture 1: tags escalated,incident-4711,site-7,vendor"
    );
    let out = env.trawl(&["captures", "untag", "1", "escalated", "site-7"]);
    assert_eq!(out.trim(), "capture 1: tags incident-4711,vendor");
    env.trawl(&["captures", "notes", "1", "sent to the vendor"]);
    let shown: Value =
        serde_json::from_str(&env.trawl(&["captures", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["notes"], "sent to the vendor");

    let out = env.dir.path().join("offer.pcapng");
    env.trawl(&[
        "captures",
        "download",
        "1",
        "-f",
        "src host 192.168.0.1",
        "-o",
        s(&out),
    ]);
    assert_eq!(frames(&out).rows.len(), 2, "the offer and the ack");

    // A window of a device with nothing stored: an empty capture, listed under the device.
    let enrol = env.curl(&[
        "-X",
        "POST",
        "-H",
        &env.bearer(),
        &format!("{}/api/v1/enrollment-tokens", env.url),
    ]);
    let token = enrol.json()["token"].as_str().unwrap().to_owned();
    let a = env.curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!(r#"{{"token": "{token}", "name": "gw-17"}}"#),
        &format!("{}/api/v1/enroll", env.url),
    ]);
    assert_eq!(a.status, 201, "{}", a.text);
    let out = env.trawl(&[
        "captures",
        "save",
        "--device",
        "gw-17",
        "--from",
        "2024-03-01T12:00:00Z",
        "--to",
        "2024-03-01T12:05:00Z",
        "--name",
        "noon",
        "--tag",
        "incident-4711",
    ]);
    assert!(
        out.starts_with("capture 3: 0 packets, 0 bytes saved as \"noon\""),
        "{out}"
    );
    let found: Value =
        serde_json::from_str(&env.trawl(&["captures", "list", "--device", "gw-17", "--json"]))
            .unwrap();
    assert_eq!(found["captures"][0]["kind"], "window", "{found}");

    let mut all = vec!["captures", "delete", "2", "--server", &env.url];
    all.extend_from_slice(&["--token", &env.token, "--ca", s(&env.cert)]);
    run_ok(&all);
    let e = trawl(&[
        "captures",
        "show",
        "2",
        "--server",
        &env.url,
        "--token",
        &env.token,
        "--ca",
        s(&env.cert),
    ])
    .unwrap_err();
    assert!(e.contains("404") && e.contains("no capture 2"), "{e}");
    let e = trawl(&[
        "upload",
        "/etc/hostname",
        "--server",
        &env.url,
        "--token",
        &env.token,
        "--ca",
        s(&env.cert),
    ])
    .unwrap_err();
    assert!(
        e.contains("not_a_capture") && e.contains("byte offset 0"),
        "{e}"
    );
}

/// The server's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn a_large_chunked_upload_keeps_the_servers_memory_flat() {
    let env = start();
    let dhcp = corpus().join("wireshark-4.0.17/dhcp.pcap");
    // Warm up: the first upload sets up what every upload uses.
    let a = env.curl(&["-u", &env.basic(), "-T", s(&dhcp), &env.captures_url("")]);
    assert_eq!(a.status, 201, "{}", a.text);
    let before = peak_rss_kib(env.server.pid());

    // 200 MB of pcap generated on the fly and streamed, chunked, as `tcpdump -U -w - | curl -T
    // -` would send it.
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "{} gen -F pcap --size 200M --seed 7 -o - 2>/dev/null | curl -sS --http1.1 --cacert {} -u {} -T - '{}'",
                env!("CARGO_BIN_EXE_trawl"),
                s(&env.cert),
                env.basic(),
                env.captures_url("?name=big")
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(answer["bytes"].as_u64().unwrap() > 180_000_000, "{answer}");
    let after = peak_rss_kib(env.server.pid());
    let grew = after.saturating_sub(before);
    eprintln!("server peak RSS: {before} KiB before, {after} KiB after a 200 MB upload");
    assert!(
        grew < 64 << 10,
        "the server's peak memory grew by {grew} KiB during a 200 MB upload ({before} → {after})"
    );
}
