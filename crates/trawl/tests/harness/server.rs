//! `trawl server` as a user runs it: the binary as a subprocess on a data directory (here, or in
//! a network namespace), its start-up banner read from stdout; the admin API through curl; and
//! what it stored, read back as one capture file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::netns::Netns;
use super::tool;

/// A running `trawl server`; killed when dropped, so a failing test leaves no process behind.
pub struct Server {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    /// Everything it wrote on stderr (its log), shown when the test fails.
    log: Arc<Mutex<Vec<String>>>,
}

/// What the server printed on start.
pub struct Banner {
    pub url: String,
    pub fingerprint: String,
    /// Only on the first start of a data directory.
    pub admin_token: Option<String>,
    pub text: String,
}

impl Server {
    /// `trawl server --listen LISTEN --data DATA` on this machine.
    pub fn start(data: &Path, listen: &str) -> Server {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_trawl")), data, listen)
    }

    /// The same, in network namespace `ns`.
    pub fn start_in(ns: &Netns, data: &Path, listen: &str) -> Server {
        Self::spawn(ns.command(env!("CARGO_BIN_EXE_trawl")), data, listen)
    }

    fn spawn(mut cmd: Command, data: &Path, listen: &str) -> Server {
        let mut child = cmd
            .args(["server", "--listen", listen, "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run trawl server");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads stdout until a line starting with `prefix`; returns the rest of that line.
    pub fn until(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(e) => panic!(
                    "no line starting {prefix:?} ({e}); the server printed:\n{}\nand logged:\n{}",
                    self.seen.join("\n"),
                    self.log.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// Reads the start-up banner, up to the line saying how to stop.
    pub fn banner(&mut self) -> Banner {
        let url = self.until("listening on ");
        let fingerprint = self.until("certificate SHA-256 fingerprint: ");
        self.until("stop with Ctrl-C");
        let admin_token = self
            .seen
            .iter()
            .find_map(|l| l.strip_prefix("admin token: "))
            .map(str::to_owned);
        Banner {
            url,
            fingerprint,
            admin_token,
            text: self.seen.join("\n"),
        }
    }

    /// SIGTERM, then the server must say it stopped and exit with success.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        tool("kill", &["-TERM", &pid]).unwrap();
        self.until("stopped");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "trawl server exited with {status}");
    }

    /// SIGKILL: the server dies at whatever it was doing, as in a crash or a power cut.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("the server ends");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.log.lock().unwrap();
        if !log.is_empty() {
            eprintln!(
                "--- trawl server (pid {}) logged:\n{}",
                self.child.id(),
                log.join("\n")
            );
        }
    }
}

/// The admin API of a server, reached with curl (in the server's namespace, if it has one),
/// trusting the server's own certificate.
static PULLS: AtomicUsize = AtomicUsize::new(0);

pub struct AdminApi {
    pub ns: Option<String>,
    /// e.g. `https://127.0.0.1:8443`
    pub url: String,
    pub cert: PathBuf,
    pub token: String,
}

/// One device as `GET /api/v1/devices` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub drops: DropsRow,
    /// Its agent holds a command poll open (capture jobs can start there).
    #[serde(default)]
    pub polling: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DropsRow {
    pub kernel: u64,
    pub interface: u64,
    pub spool: u64,
}

impl AdminApi {
    /// The first start of a server in `ns` on `0.0.0.0:PORT` with its data in `data`: the
    /// server, its banner, and the admin API as an operator in that namespace reaches it (the
    /// token the banner printed).
    pub fn first_start_in(ns: &Netns, data: &Path, port: u16) -> (Server, Banner, AdminApi) {
        let mut server = Server::start_in(ns, data, &format!("0.0.0.0:{port}"));
        let banner = server.banner();
        let token = banner
            .admin_token
            .clone()
            .unwrap_or_else(|| panic!("no admin token on first start:\n{}", banner.text));
        let api = AdminApi {
            ns: Some(ns.name.clone()),
            url: format!("https://127.0.0.1:{port}"),
            cert: data.join("tls/cert.pem"),
            token,
        };
        (server, banner, api)
    }

    /// `GET /api/v1/devices`; Err when the server cannot be reached or answers other than 200.
    pub fn devices(&self) -> Result<Vec<DeviceRow>, String> {
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => Command::new("curl"),
        };
        let out = cmd
            .args(["-sS", "--max-time", "10", "--fail-with-body", "--cacert"])
            .arg(&self.cert)
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .arg(format!("{}/api/v1/devices", self.url))
            .output()
            .expect("curl (install it)");
        if !out.status.success() {
            return Err(format!(
                "GET /api/v1/devices: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        #[derive(serde::Deserialize)]
        struct Devices {
            devices: Vec<DeviceRow>,
        }
        serde_json::from_slice::<Devices>(&out.stdout)
            .map(|d| d.devices)
            .map_err(|e| {
                format!(
                    "GET /api/v1/devices: {e}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
    }

    /// Everything the server stored for device `id`, downloaded with `trawl pull` (run in the
    /// server's namespace) into one pcapng file in `dir`: the ONE place the tests read stored
    /// packets, through the same API and catalogue an operator uses.
    pub fn pull(&self, id: &str, dir: &Path) -> PathBuf {
        let n = PULLS.fetch_add(1, Ordering::Relaxed);
        let out = dir.join(format!("stored-dev-{id}-{n}.pcapng"));
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_trawl")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_trawl")),
        };
        let result = cmd
            .args([
                "pull",
                "--server",
                &self.url,
                "--token",
                &self.token,
                "--ca",
            ])
            .arg(&self.cert)
            .args(["--device", id, "--from", "0", "--to", "4000000000", "-o"])
            .arg(&out)
            .output()
            .expect("run trawl pull");
        assert!(
            result.status.success(),
            "trawl pull of device {id} failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    }

    /// A program run where the server is reachable: in its namespace, if it has one.
    fn command(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// `trawl ARGS… --server URL --token TOKEN --ca CERT`: a client command (`capture …`) as an
    /// operator runs it. Returns (success, stdout, stderr).
    pub fn client(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.client_command(args).output().expect("run trawl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The command line of [`client`](Self::client), to be spawned (a command that lasts, such
    /// as `capture watch`).
    pub fn client_command(&self, args: &[&str]) -> Command {
        let mut c = self.command(env!("CARGO_BIN_EXE_trawl"));
        c.args(args)
            .args(["--server", &self.url, "--token", &self.token, "--ca"])
            .arg(&self.cert);
        c
    }

    /// A client command that must succeed, with `--json`: its JSON answer.
    pub fn client_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, stdout, stderr) = self.client(&all);
        assert!(ok, "trawl {args:?} failed: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "trawl {args:?}: not JSON ({e}): {stdout}
{stderr}"
            )
        })
    }

    /// A request to the API with curl: the HTTP status and the JSON answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut cmd = self.command("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method, "--cacert"])
            .arg(&self.cert)
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl (install it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code = code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{method} {path}: no status from curl: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (
            code,
            serde_json::from_str(json).unwrap_or(serde_json::Value::String(json.to_owned())),
        )
    }

    /// The device with this id; Err as [`AdminApi::devices`], or when it is not listed.
    pub fn device(&self, id: &str) -> Result<DeviceRow, String> {
        self.devices()?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| format!("device {id} is not in GET /api/v1/devices"))
    }

    /// Polls the device until `done` holds for it; panics at the deadline saying `what` was
    /// awaited and what the API showed last.
    pub fn wait_device(
        &self,
        id: &str,
        within: Duration,
        what: &str,
        done: impl Fn(&DeviceRow) -> bool,
    ) -> DeviceRow {
        let deadline = Instant::now() + within;
        let mut last = Err(String::from("not asked yet"));
        while Instant::now() < deadline {
            last = self.device(id);
            if let Ok(d) = &last
                && done(d)
            {
                return d.clone();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "after {:.0} s the server still does not show {what} for device {id}; last answer: \
             {last:?}",
            within.as_secs_f64()
        );
    }
}
