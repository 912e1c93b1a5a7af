//! IPFIX export of flows to a collector over UDP (`--ipfix HOST:PORT`).
//!
//! Flows are encoded by [`trawl_flow::ipfix::IpfixEncoder`] (one unidirectional record per
//! direction with packets; templates in the first message and every 16th) and sent as one
//! datagram per message.
//!
//! **Pacing.** UDP has no flow control: a collector that reads slower than we send loses the
//! datagrams its socket buffer cannot hold, and an offline export (a capture file read at disk
//! speed) sends far faster than any collector reads. Messages are therefore sent at most
//! [`IpfixOptions::rate`] per second, evenly spaced. The default, [`DEFAULT_RATE`], was measured
//! against nfcapd 1.7 on the same host (see its documentation); raise it for a collector known to
//! keep up, lower it for a slow one or a lossy path.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use trawl_flow::Flow;
use trawl_flow::ipfix::{DEFAULT_MAX_MESSAGE, DEFAULT_TEMPLATE_EVERY, IpfixEncoder};

/// Messages per second by default: 2 000 (up to 52 000 flow records a second, about 2.8 MB/s
/// in 1400-byte messages; a million flow records in about 20 seconds).
///
/// Measured (`tests/ipfix.rs`, the ignored `*_measurement` tests) on a 2-core machine shared
/// with other work (load 3 to 5), sending 1400-byte messages over loopback to nfcapd 1.7.1 with
/// its default socket buffer (212 992 bytes): sent unpaced from a tight loop (140 000 to 180 000
/// messages a second), nfcapd received only 27 to 33 % of them; paced, it kept up without one
/// drop at every rate up to about 18 000 messages a second, and began to lose datagrams at
/// 19 000. 2 000 is a ninth of that: room for a busier collector host, a slower collector, or a
/// path with less buffering. Above about 10 000 a second, the pacing (a sleep between
/// messages) sends slower than asked.
pub const DEFAULT_RATE: u32 = 2_000;

/// How an exporter sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpfixOptions {
    /// Messages per second at most; 0 sends as fast as the socket takes them.
    pub rate: u32,
    /// The observation domain in every message header.
    pub observation_domain: u32,
    /// The largest message (one datagram), in bytes.
    pub max_message: usize,
    /// Templates again every this many messages.
    pub template_every: u32,
}

impl Default for IpfixOptions {
    fn default() -> Self {
        IpfixOptions {
            rate: DEFAULT_RATE,
            observation_domain: 0,
            max_message: DEFAULT_MAX_MESSAGE,
            template_every: DEFAULT_TEMPLATE_EVERY,
        }
    }
}

/// What an export sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IpfixSummary {
    /// Flows given to the exporter.
    pub flows: u64,
    /// Data records sent (one per direction with packets).
    pub records: u64,
    /// IPFIX messages (datagrams) sent.
    pub messages: u64,
}

/// Sends flows to an IPFIX collector over UDP.
pub struct IpfixExporter {
    socket: UdpSocket,
    /// The collector, as given and as resolved.
    target: String,
    addr: SocketAddr,
    encoder: IpfixEncoder,
    ready: Vec<Vec<u8>>,
    /// Time between messages; zero when unpaced.
    interval: Duration,
    /// When the next message may go.
    next: Option<Instant>,
    flows: u64,
    sent: u64,
}

impl IpfixExporter {
    /// An exporter to `target` (`HOST:PORT`; names are resolved, the first address is used).
    pub fn connect_with(target: &str, options: IpfixOptions) -> Result<Self> {
        let addr = target
            .to_socket_addrs()
            .with_context(|| format!("IPFIX collector {target:?}: expected HOST:PORT"))?
            .next()
            .ok_or_else(|| anyhow!("IPFIX collector {target:?}: the name has no address"))?;
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|()| s))
            .with_context(|| format!("IPFIX collector {target} ({addr}): cannot open a socket"))?;
        Ok(IpfixExporter {
            socket,
            target: target.to_owned(),
            addr,
            encoder: IpfixEncoder::new(options.observation_domain, options.max_message)
                .template_every(options.template_every),
            ready: Vec::new(),
            interval: if options.rate == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(1) / options.rate
            },
            next: None,
            flows: 0,
            sent: 0,
        })
    }

    /// Exports a flow (sent once its message is full, or at [`IpfixExporter::finish`]).
    pub fn flow(&mut self, f: &Flow) -> Result<()> {
        self.flows += 1;
        self.encoder.push(f, export_secs(), &mut self.ready);
        self.send_ready()
    }

    /// Sends what is left and says what was sent.
    pub fn finish(mut self) -> Result<IpfixSummary> {
        self.encoder.flush(export_secs(), &mut self.ready);
        self.send_ready()?;
        Ok(IpfixSummary {
            flows: self.flows,
            records: self.encoder.records(),
            messages: self.sent,
        })
    }

    fn send_ready(&mut self) -> Result<()> {
        for i in 0..self.ready.len() {
            self.pace();
            self.socket.send(&self.ready[i]).map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    " (nothing listens there: is the collector running?)"
                } else {
                    ""
                };
                anyhow!(
                    "sending IPFIX to {} ({}): {e}{hint}",
                    self.target,
                    self.addr
                )
            })?;
            self.sent += 1;
        }
        self.ready.clear();
        Ok(())
    }

    /// Waits until the next message may go: messages are `interval` apart on average; one
    /// that is late does not let the next ones go in a burst.
    fn pace(&mut self) {
        if self.interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let due = self.next.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next = Some(due.max(now) + self.interval);
    }
}

/// The export time of a message: now, in seconds since the Unix epoch (the field has 32 bits,
/// enough until 2106).
fn export_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}
