//! `trawl gen`: a synthetic capture for benchmarks and demos.
//!
//! Ethernet frames carrying IPv4 and IPv6 TCP connections (handshake, data both ways with sliding
//! sequence numbers, FIN), UDP exchanges and ICMP/ICMPv6 echoes, across many concurrent flows, with a
//! mix of small, medium and full-size packets. Deterministic for a given seed. IPv4 header checksums
//! are correct; TCP/UDP checksums are left zero (tcpdump does not check them without -v).

use std::path::PathBuf;

use anyhow::{Context, Result};
use trawl_pcap::{
    Interface, Options, OwnedOptions, PcapWriter, PcapngWriter, Timestamp, TsPrecision, opt,
};

use crate::files::{OutFormat, create_output};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl gen -o bench.pcap --size 1G
      about 1 GiB of mixed traffic (TCP, UDP, ICMP; IPv4 and IPv6; many flows)
  trawl gen -o small.pcapng --packets 10000 --seed 7
      ten thousand packets, pcapng, a different but repeatable mix

The same seed and size always give the same file.")]
pub struct Args {
    /// Output file. Format: pcap if it ends in .pcap, else pcapng.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format, overriding the file name.
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<OutFormat>,
    /// Stop once the file holds this much (suffixes K, M, G: powers of 1024).
    #[arg(long, value_parser = parse_size, conflicts_with = "packets")]
    pub size: Option<u64>,
    /// Stop after this many packets.
    #[arg(long)]
    pub packets: Option<u64>,
    /// Concurrent flows.
    #[arg(long, default_value_t = 2000)]
    pub flows: usize,
    /// Seed of the pseudo-random mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time of the first packet, in seconds since 1970 (`now` for the present).
    #[arg(long, value_name = "SECS", default_value = "1700000000", value_parser = parse_start)]
    pub start: u64,
}

fn parse_start(s: &str) -> Result<u64, String> {
    if s == "now" {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|e| e.to_string());
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| *n <= u64::MAX / 1_000_000_000)
        .ok_or_else(|| format!("bad start time '{s}': seconds since 1970, or now"))
}

pub(crate) use trawl_agent::cli::parse_size;

/// splitmix64: small, fast, and good enough for traffic shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

struct Flow {
    v6: bool,
    proto: Proto,
    client: [u8; 16],
    server: [u8; 16],
    cport: u16,
    sport: u16,
    /// Next sequence number of client and server.
    cseq: u32,
    sseq: u32,
    /// 0: SYN next, 1: SYN-ACK next, 2: ACK next, 3: data, 4: FIN, 5: done.
    stage: u8,
    /// Packets left before the flow closes.
    left: u32,
    ip_id: u16,
    icmp_seq: u16,
}

impl Flow {
    fn new(rng: &mut Rng) -> Flow {
        let v6 = rng.chance(30);
        let r = rng.below(100);
        let proto = if r < 75 {
            Proto::Tcp
        } else if r < 95 {
            Proto::Udp
        } else {
            Proto::Icmp
        };
        let mut client = [0u8; 16];
        let mut server = [0u8; 16];
        if v6 {
            for (a, net) in [(&mut client, 0x10u8), (&mut server, 0x20)] {
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                a[4] = net;
                a[8..].copy_from_slice(&rng.next().to_be_bytes());
            }
        } else {
            client[..4].copy_from_slice(&[
                10,
                rng.below(8) as u8,
                rng.below(256) as u8,
                1 + rng.below(254) as u8,
            ]);
            server[..4].copy_from_slice(&[
                192,
                0,
                2 + rng.below(2) as u8,
                1 + rng.below(254) as u8,
            ]);
        }
        let sport = match proto {
            Proto::Tcp => [80, 443, 5001, 8080, 22][rng.below(5) as usize],
            _ => [5001, 5201, 3478, 9000][rng.below(4) as usize],
        };
        Flow {
            v6,
            proto,
            client,
            server,
            // Linux's ephemeral range, where tcpdump has no port-based printers.
            cport: 32768 + rng.below(28232) as u16,
            sport,
            cseq: rng.next() as u32,
            sseq: rng.next() as u32,
            stage: if proto == Proto::Tcp { 0 } else { 3 },
            left: 4 + rng.below(400) as u32,
            ip_id: rng.next() as u16,
            icmp_seq: 1,
        }
    }
}

/// Payload size: many pure ACKs and small packets, some medium, many full-size.
fn payload_len(rng: &mut Rng, max: usize) -> usize {
    let r = rng.below(100);
    if r < 35 {
        rng.below(64) as usize
    } else if r < 55 {
        100 + rng.below(500) as usize
    } else {
        max
    }
}

struct Builder {
    frame: Vec<u8>,
}

const MACS: [[u8; 6]; 2] = [
    [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01],
    [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02],
];

impl Builder {
    /// Builds one frame of `flow`, client to server if `up`, and advances the flow.
    fn next_frame(&mut self, rng: &mut Rng, f: &mut Flow) {
        let up = match f.stage {
            0 | 2 => true,
            1 => false,
            _ => rng.chance(45),
        };
        let (src, dst, sp, dp) = if up {
            (f.client, f.server, f.cport, f.sport)
        } else {
            (f.server, f.client, f.sport, f.cport)
        };
        let l3_len = if f.v6 { 40 } else { 20 };
        let mss = 1500 - l3_len - 32;
        let mut l4 = Vec::with_capacity(1600);
        let proto_num: u8;
        match f.proto {
            Proto::Tcp => {
                proto_num = 6;
                let (flags, payload, opts): (u8, usize, &[u8]) = match f.stage {
                    0 => (
                        0x02,
                        0,
                        &[2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1, 1, 1, 1, 1],
                    ),
                    1 => (
                        0x12,
                        0,
                        &[2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1, 1, 1, 1, 1],
                    ),
                    4 => (0x11, 0, &[]),
                    _ => (
                        if rng.chance(30) { 0x18 } else { 0x10 },
                        payload_len(rng, mss),
                        &[],
                    ),
                };
                let (seq, ack) = if up {
                    (f.cseq, f.sseq)
                } else {
                    (f.sseq, f.cseq)
                };
                let hlen = 20 + opts.len();
                l4.extend_from_slice(&sp.to_be_bytes());
                l4.extend_from_slice(&dp.to_be_bytes());
                l4.extend_from_slice(&seq.to_be_bytes());
                l4.extend_from_slice(&(if f.stage == 0 { 0 } else { ack }).to_be_bytes());
                l4.push(((hlen / 4) as u8) << 4);
                l4.push(flags);
                l4.extend_from_slice(&(64240u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0, 0, 0]);
                l4.extend_from_slice(opts);
                l4.resize(hlen + payload, 0);
                let consumed = payload as u32 + u32::from(flags & 0x03 != 0);
                if up {
                    f.cseq = f.cseq.wrapping_add(consumed);
                } else {
                    f.sseq = f.sseq.wrapping_add(consumed);
                }
                f.stage = match f.stage {
                    0..=2 => f.stage + 1,
                    3 if f.left == 0 => 4,
                    4 => 5,
                    s => s,
                };
            }
            Proto::Udp => {
                proto_num = 17;
                let payload = payload_len(rng, mss + 12);
                l4.extend_from_slice(&sp.to_be_bytes());
                l4.extend_from_slice(&dp.to_be_bytes());
                l4.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
                l4.resize(8 + payload, 0);
                if f.left == 0 {
                    f.stage = 5;
                }
            }
            Proto::Icmp => {
                proto_num = if f.v6 { 58 } else { 1 };
                let reply = !up;
                let kind = match (f.v6, reply) {
                    (false, false) => 8,
                    (false, true) => 0,
                    (true, false) => 128,
                    (true, true) => 129,
                };
                l4.extend_from_slice(&[kind, 0, 0, 0]);
                l4.extend_from_slice(&(f.cport).to_be_bytes());
                l4.extend_from_slice(&f.icmp_seq.to_be_bytes());
                l4.resize(8 + 56, 0);
                if reply {
                    f.icmp_seq = f.icmp_seq.wrapping_add(1);
                }
                if f.left == 0 {
                    f.stage = 5;
                }
            }
        }
        f.left = f.left.saturating_sub(1);
        self.frame.clear();
        let (dmac, smac) = if up {
            (MACS[1], MACS[0])
        } else {
            (MACS[0], MACS[1])
        };
        self.frame.extend_from_slice(&dmac);
        self.frame.extend_from_slice(&smac);
        if f.v6 {
            self.frame.extend_from_slice(&[0x86, 0xdd]);
            self.frame.extend_from_slice(&[0x60, 0, 0, 0]);
            self.frame
                .extend_from_slice(&(l4.len() as u16).to_be_bytes());
            self.frame.extend_from_slice(&[proto_num, 64]);
            self.frame.extend_from_slice(&src);
            self.frame.extend_from_slice(&dst);
        } else {
            f.ip_id = f.ip_id.wrapping_add(1);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&f.ip_id.to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64;
            h[9] = proto_num;
            h[12..16].copy_from_slice(&src[..4]);
            h[16..20].copy_from_slice(&dst[..4]);
            let sum = ipv4_checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            self.frame.extend_from_slice(&[0x08, 0x00]);
            self.frame.extend_from_slice(&h);
        }
        self.frame.extend_from_slice(&l4);
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

enum Out {
    Pcap(PcapWriter<Box<dyn std::io::Write>>),
    Pcapng(PcapngWriter<Box<dyn std::io::Write>>),
}

pub fn run(args: Args) -> Result<()> {
    let limit_bytes = args.size.unwrap_or(if args.packets.is_some() {
        u64::MAX
    } else {
        1 << 30
    });
    let limit_packets = args.packets.unwrap_or(u64::MAX);
    let (out, partial) = create_output(&args.output)?;
    let format = OutFormat::for_path(&args.output, args.format);
    let mut w = match format {
        OutFormat::Pcap => Out::Pcap(PcapWriter::new(out, 1, 262_144, TsPrecision::Micro)?),
        OutFormat::Pcapng => {
            let mut section = PcapngWriter::<std::io::Sink>::default_section_options();
            section.push_str(
                opt::COMMENT,
                &format!("generated by trawl gen --seed {}", args.seed),
            );
            let mut w = PcapngWriter::new(out, &section)?;
            let mut iface = Interface::new(1, 262_144, 1_000_000);
            iface.options = OwnedOptions::new();
            iface.options.push_str(opt::IF_NAME, "gen0");
            w.add_interface(&iface)?;
            Out::Pcapng(w)
        }
    };
    let mut rng = Rng(args.seed);
    let mut flows: Vec<Flow> = (0..args.flows.max(1))
        .map(|_| Flow::new(&mut rng))
        .collect();
    let mut b = Builder {
        frame: Vec::with_capacity(1600),
    };
    // 2023-11-14T22:13:20Z, then about 300 000 packets a second.
    let mut ns: u64 = args.start * 1_000_000_000;
    let (mut bytes, mut packets) = (24u64, 0u64);
    let mut progress = Progress::new(
        if limit_bytes == u64::MAX {
            0
        } else {
            limit_bytes
        },
        "gen",
    );
    while bytes < limit_bytes && packets < limit_packets {
        let k = rng.below(flows.len() as u64) as usize;
        b.next_frame(&mut rng, &mut flows[k]);
        if flows[k].stage == 5 {
            flows[k] = Flow::new(&mut rng);
        }
        ns += 500 + rng.below(6000);
        let ts = Timestamp::from_nanos(ns - ns % 1000);
        let len = b.frame.len() as u32;
        match &mut w {
            Out::Pcap(w) => {
                w.write(ts, len, &b.frame)?;
                bytes += 16 + len as u64;
            }
            Out::Pcapng(w) => {
                w.write(0, ts, len, &b.frame, Options::default())?;
                bytes += 32 + (len as u64).div_ceil(4) * 4;
            }
        }
        packets += 1;
        progress.tick(|| bytes);
    }
    progress.finish();
    match w {
        Out::Pcap(w) => w.finish().map(drop),
        Out::Pcapng(w) => w.finish().map(drop),
    }
    .with_context(|| format!("{}: write failed", args.output.display()))?;
    if let Some(p) = partial {
        p.commit()?;
    }
    eprintln!(
        "wrote {packets} packets, {bytes} bytes to {}",
        args.output.display()
    );
    Ok(())
}
