//! `trawl agent` (and the stand-alone `trawl-agent` binary): the command line of the edge agent: enrols once, then captures on
//! interfaces (AF_PACKET, kernel BPF) or replays files, and streams to the server, spooling to
//! disk while the server is away.
//!
//! Settings: defaults, then the TOML file (`--config`), then the flags. What enrolment gives
//! (the server's URL, how to trust it, the device id and credential) is kept in
//! `STATE/agent.json` (mode 0600), so later starts need only the sources.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::agent::{Agent, AgentConfig, SourceSpec, StreamStatus};
use crate::http::Trust;
use crate::source::LINKTYPE_ETHERNET;
use crate::source::replay::Pacing;
use crate::uplink::{InterfaceInfo, ServerApi};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

const DEFAULT_STATE: &str = "./trawl-agent";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl agent --server https://trawl.example.net:8443 --fingerprint AB:CD:… --enroll TOKEN -i eth0
      first start: trade the one-time enrolment token for this device's credential (kept in
      ./trawl-agent/agent.json), then capture on eth0 and stream to the server
  trawl agent -i eth0 -i eth1 -f 'not port 8443'
      later starts: the server and credential come from the state directory; the server compiles
      the filter (the agent has no libpcap) and the kernel runs it
  trawl agent --pcap capture.pcapng
      replay a file as if captured (tests, demos); ends when the server has every packet
  trawl agent --config /etc/trawl/agent.toml

While the server cannot be reached, batches wait on disk in STATE/spool/ (at most --spool-max per
stream; when full the oldest are dropped and counted) and are sent when it is back. Every drop —
kernel, interface, spool — travels to the server with the next batch. Capturing needs root or
CAP_NET_RAW. Stop with Ctrl-C or SIGTERM: what is captured is spooled, and sending goes on for up
to 10 s.

The config file (every key optional; flags override it; an unknown key is an error):
  server = \"https://trawl.example.net:8443\"
  ca = \"/etc/trawl/server-cert.pem\"   # or: fingerprint = \"AB:CD:…\"
  state = \"/var/lib/trawl-agent\"
  name = \"gw-17\"                      # the device's name at enrolment (default: host name)
  user = \"trawl\"                      # drop root once the sockets are open
  interfaces = [\"eth0\", \"eth1\"]
  filter = \"not port 8443\"
  snaplen = 262144
  spool_max = \"1G\"
  spool_memory = \"64M\"                # batches wait in memory while the server keeps up
  batch_max = \"4M\"                    # send a batch at this size...
  batch_delay_ms = 500                # ...or when its first packet is this old
  heartbeat_secs = 10                 # an empty batch carries drop counters at least this often
  job_heartbeat_ms = 250              # a capture job's stream sends a batch at least this often
                                      # (empty if need be: its watermark, for live views)
  jobs = true                         # take capture jobs from the server (--no-jobs: false)

Capture jobs: unless --no-jobs, the agent holds a request to the server open to receive commands
(`trawl capture start` on the server's side): each job opens its own socket on the interface it
names, with the program the server compiled, and streams back until its limits. Started with no
-i, the agent only takes jobs.")]
pub struct Args {
    /// The server's URL, e.g. https://trawl.example.net:8443 (kept after enrolment).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Trust only the certificate(s) in this PEM file (e.g. the server's DATA/tls/cert.pem).
    #[arg(long, value_name = "FILE.pem", conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// Trust only the certificate with this SHA-256 fingerprint (printed by `trawl server`).
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// A one-time enrolment token: trade it for this device's credential (first start only).
    #[arg(long, value_name = "TOKEN")]
    pub enroll: Option<String>,
    /// The device's name at enrolment [default: the host name].
    #[arg(long)]
    pub name: Option<String>,
    /// State directory: credential, spool, compiled filters [default: ./trawl-agent]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Capture on this interface (repeat for several).
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Replay this capture file as a source (repeat for several).
    #[arg(long = "pcap", value_name = "FILE")]
    pub pcaps: Vec<PathBuf>,
    /// Replay --pcap files at the pace of their timestamps (default: as fast as possible).
    #[arg(long)]
    pub realtime: bool,
    /// The stream name of a single --pcap source [default: the file's name].
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
    /// Capture filter (tcpdump syntax), compiled by the server.
    #[arg(short = 'f', long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Bytes kept of each packet [default: 262144].
    #[arg(short = 's', long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// Most bytes of batches spooled per stream, e.g. 500M [default: 1G].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub spool_max: Option<u64>,
    /// Most bytes of batches per stream that wait for the server in memory rather than on disk
    /// while it keeps up [default: 64M]; 0 writes every batch to disk before sending it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub spool_memory: Option<u64>,
    /// Seconds between status lines on stderr (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub status_every: u64,
    /// Once the sockets are open, become this user (name, or UID:GID), keeping only
    /// CAP_NET_RAW; the state directory is handed to it.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Take no capture jobs from the server (no command channel).
    #[arg(long)]
    pub no_jobs: bool,
    /// Print the final counters as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Settings file (TOML); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    ca: Option<PathBuf>,
    fingerprint: Option<String>,
    state: Option<PathBuf>,
    name: Option<String>,
    user: Option<String>,
    #[serde(default)]
    interfaces: Vec<String>,
    filter: Option<String>,
    snaplen: Option<u32>,
    spool_max: Option<String>,
    spool_memory: Option<String>,
    batch_max: Option<String>,
    batch_delay_ms: Option<u64>,
    heartbeat_secs: Option<u64>,
    job_heartbeat_ms: Option<u64>,
    jobs: Option<bool>,
}

/// What enrolment gave this device, kept in `STATE/agent.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Identity {
    server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    device: String,
    name: String,
    credential: String,
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let mut file: FileConfig =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new(""));
    for p in [&mut file.ca, &mut file.state].into_iter().flatten() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(file)
}

fn trust_of(ca: &Option<PathBuf>, fingerprint: &Option<String>) -> Result<Trust> {
    Ok(match (ca, fingerprint) {
        (Some(_), Some(_)) => bail!("give either a CA file or a fingerprint, not both"),
        (Some(ca), None) => Trust::Ca(ca.clone()),
        (None, Some(fp)) => Trust::fingerprint(fp)?,
        (None, None) => Trust::System,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Set by SIGINT / SIGTERM.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// The agent's stop flag, which the handler sets too (so a wait for the server ends at once).
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
    if let Some(stop) = STOP.get() {
        stop.store(true, Ordering::SeqCst);
    }
}

/// Installs the handlers; they set `stop`.
fn install_signal_handlers(stop: Arc<AtomicBool>) {
    let _ = STOP.set(stop);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only loads an initialised OnceLock and stores to atomics, which
        // is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn write_identity(path: &Path, identity: &Identity) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(identity)?)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

pub fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = match &args.config {
        Some(path) => read_config_file(path)?,
        None => FileConfig::default(),
    };
    let state = args
        .state
        .clone()
        .or(file.state.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE));
    std::fs::create_dir_all(&state)
        .with_context(|| format!("creating the state directory {}", state.display()))?;
    let identity_path = state.join("agent.json");
    let known: Option<Identity> = match std::fs::read(&identity_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", identity_path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(format!("reading {}", identity_path.display())),
    };

    let mut config = AgentConfig::new(&state);
    let interfaces = if args.interfaces.is_empty() {
        file.interfaces.clone()
    } else {
        args.interfaces.clone()
    };
    config.sources = interfaces
        .iter()
        .map(|i| SourceSpec::Interface(i.clone()))
        .collect();
    if args.stream.is_some() && args.pcaps.len() != 1 {
        bail!("--stream names a single --pcap source");
    }
    for path in &args.pcaps {
        config.sources.push(SourceSpec::Pcap {
            path: path.clone(),
            pacing: if args.realtime {
                Pacing::RealTime
            } else {
                Pacing::AsFastAsPossible
            },
            stream: args.stream.clone(),
        });
    }
    config.filter = args.filter.clone().or(file.filter.clone());
    if let Some(s) = args.snaplen.or(file.snaplen) {
        if s == 0 || s > config.snaplen {
            bail!("the snap length must be between 1 and {}", config.snaplen);
        }
        config.snaplen = s;
    }
    if let Some(n) = args.spool_max {
        config.spool_max_bytes = n;
    } else if let Some(s) = &file.spool_max {
        config.spool_max_bytes = parse_size(s).map_err(|e| anyhow::anyhow!("spool_max: {e}"))?;
    }
    if let Some(n) = args.spool_memory {
        config.spool_memory_bytes = n;
    } else if let Some(s) = &file.spool_memory {
        config.spool_memory_bytes =
            parse_size(s).map_err(|e| anyhow::anyhow!("spool_memory: {e}"))?;
    }
    if let Some(s) = &file.batch_max {
        config.batch_max_bytes = parse_size(s).map_err(|e| anyhow::anyhow!("batch_max: {e}"))?;
    }
    if let Some(ms) = file.batch_delay_ms {
        config.batch_max_delay = Duration::from_millis(ms.max(1));
    }
    if let Some(s) = file.heartbeat_secs {
        config.heartbeat = Duration::from_secs(s.max(1));
    }
    if let Some(ms) = file.job_heartbeat_ms {
        config.job_heartbeat = Duration::from_millis(ms.max(1));
    }

    // Who we are, and where the server is.
    let identity = match (&known, &args.enroll) {
        (Some(id), Some(_)) => bail!(
            "this state directory is already enrolled (device {} \"{}\" at {}); to enrol again, \
             remove {} or use another --state",
            id.device,
            id.name,
            id.server,
            identity_path.display()
        ),
        (Some(id), None) => id.clone(),
        (None, None) => bail!(
            "not enrolled yet: start once with --server URL --enroll TOKEN (an admin makes the \
             token: trawl org enrollment-token)"
        ),
        (None, Some(token)) => {
            let server =
                args.server.clone().or(file.server.clone()).context(
                    "--server URL is needed to enrol (e.g. https://trawl.example.net:8443)",
                )?;
            let ca = args.ca.clone().or(file.ca.clone());
            let fingerprint = args.fingerprint.clone().or(file.fingerprint.clone());
            let trust = trust_of(&ca, &fingerprint)?;
            let name = args
                .name
                .clone()
                .or(file.name.clone())
                .unwrap_or_else(hostname);
            let api = ServerApi::new(&server, &trust, None)?;
            let infos: Vec<InterfaceInfo> = interfaces
                .iter()
                .map(|i| InterfaceInfo {
                    name: i.clone(),
                    link_type: LINKTYPE_ETHERNET,
                })
                .collect();
            let enrolled = api
                .enrol(token, &name, &hostname(), &infos)
                .with_context(|| format!("enrolling at {server}"))?;
            let identity = Identity {
                server,
                ca: ca.map(|p| std::path::absolute(&p).unwrap_or(p)),
                fingerprint,
                device: enrolled.device,
                name,
                credential: enrolled.credential,
            };
            write_identity(&identity_path, &identity)?;
            eprintln!(
                "enrolled as device {} \"{}\"; credential kept in {}",
                identity.device,
                identity.name,
                identity_path.display()
            );
            identity
        }
    };
    // A flag may point an enrolled device at a moved server.
    let server = args.server.clone().unwrap_or(identity.server.clone());
    let trust = match (&args.ca, &args.fingerprint) {
        (None, None) => trust_of(&identity.ca, &identity.fingerprint)?,
        (ca, fp) => trust_of(ca, fp)?,
    };
    // Jobs capture live: an agent replaying files only takes none.
    let replay_only = !config.sources.is_empty() && interfaces.is_empty();
    config.commands = !args.no_jobs && file.jobs != Some(false) && !replay_only;
    if config.sources.is_empty() && !config.commands {
        eprintln!("no source given: capture with -i IF (or --pcap FILE) to stream");
        return Ok(());
    }

    let api = Arc::new(ServerApi::new(
        &server,
        &trust,
        Some(identity.credential.clone()),
    )?);
    let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|m: &str| eprintln!("trawl agent: {m}"));
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(stop.clone());
    // Opening may wait for the server (to compile the filter): a signal ends the wait.
    let opened = Agent::open(api, &config, stop.clone(), log.clone()).and_then(|o| {
        if let Some(user) = args.user.as_ref().or(file.user.as_ref()) {
            drop_privileges(user, &state)?;
        }
        Ok(o)
    })?;
    let agent = opened.start();
    let streams: Vec<String> = config.sources.iter().map(|s| s.stream()).collect();
    eprintln!(
        "trawl agent: device {} \"{}\" streaming {} to {server}{}",
        identity.device,
        identity.name,
        if streams.is_empty() {
            "nothing of its own".to_owned()
        } else {
            streams.join(", ")
        },
        if config.commands {
            "; taking capture jobs"
        } else {
            ""
        }
    );

    let mut last_status = Instant::now();
    while !agent.finished() {
        std::thread::sleep(Duration::from_millis(100));
        if args.status_every > 0 && last_status.elapsed().as_secs() >= args.status_every {
            last_status = Instant::now();
            for s in agent.status() {
                eprintln!("trawl agent: {}", status_line(&s));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let result = agent.join();
    let status = match result {
        Ok(s) => s,
        Err(e) => bail!(e),
    };
    for s in &status {
        eprintln!("trawl agent: {}", status_line(s));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    }
    let left: u64 = status
        .iter()
        .map(|s| s.batches_spooled - s.batches_acked.min(s.batches_spooled))
        .sum();
    if SIGNALLED.load(Ordering::Relaxed) && left > 0 {
        eprintln!(
            "trawl agent: stopped with batches still in the spool; they are sent at the next start"
        );
    }
    Ok(())
}

/// Becomes `user`, keeping CAP_NET_RAW, and checks the state directory is still writable.
fn drop_privileges(user: &str, state: &Path) -> Result<(), crate::agent::AgentError> {
    use crate::agent::AgentError;
    use crate::privilege;
    let other = |e: String| AgentError::Other(e);
    let ids = privilege::lookup(user).map_err(|e| other(e.to_string()))?;
    privilege::drop_to(user, ids, state).map_err(|e| other(e.to_string()))?;
    let probe = state.join(".write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            other(format!(
                "after becoming {user}, the state directory {} is not writable ({e}): every \
                 directory above it must be searchable by {user}",
                state.display()
            ))
        })?;
    eprintln!(
        "trawl agent: running as {user} (uid {}), with CAP_NET_RAW only",
        ids.uid
    );
    Ok(())
}

fn status_line(s: &StreamStatus) -> String {
    format!(
        "{}: captured {} packets, server has {} ({} batches), spooled {} bytes, drops kernel {} \
         interface {} spool {}{}",
        s.stream,
        s.captured,
        s.packets_acked,
        s.batches_acked,
        s.spooled_bytes,
        s.kernel_drops,
        s.interface_drops,
        s.spool_drops,
        if s.connected {
            ""
        } else {
            ", server unreachable"
        }
    )
}

/// A size such as `500M` or `1G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size '{s}' (try 500M or 1G)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size(" 2g "), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
