//! `trawl demo`: runs the offline tools on a capture it generates, showing each command.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Generates a capture of mixed traffic in DIR (default: ./trawl-demo), then runs info, read, slice,
merge and cat on it, printing each command before its output. The files stay for you to explore.")]
pub struct Args {
    /// Where to put the demo's files.
    #[arg(long, default_value = "trawl-demo")]
    pub dir: PathBuf,
    /// Packets to generate.
    #[arg(long, default_value_t = 200_000)]
    pub packets: u64,
}

pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("{}: cannot create", args.dir.display()))?;
    let exe = std::env::current_exe().context("cannot find the trawl executable")?;
    let d = |name: &str| args.dir.join(name).display().to_string();
    let n = args.packets.to_string();
    let steps: Vec<(&str, Vec<String>)> = vec![
        (
            "Generate a capture of mixed traffic (TCP, UDP, ICMP; IPv4 and IPv6)",
            vec![
                "gen".into(),
                "-o".into(),
                d("demo.pcap"),
                "--packets".into(),
                n,
            ],
        ),
        ("What is in it", vec!["info".into(), d("demo.pcap")]),
        (
            "The first packets, one line each, as tcpdump -nn prints them",
            vec!["read".into(), "-c".into(), "8".into(), d("demo.pcap")],
        ),
        (
            "Only TCP handshakes (a tcpdump filter, run by trawl's own BPF interpreter)",
            vec![
                "read".into(),
                "-c".into(),
                "6".into(),
                "-f".into(),
                "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn".into(),
                d("demo.pcap"),
            ],
        ),
        (
            "Cut out seconds 0.2 to 0.4 of IPv6 traffic",
            vec![
                "slice".into(),
                "--from".into(),
                "+200ms".into(),
                "--to".into(),
                "+400ms".into(),
                "-f".into(),
                "ip6".into(),
                "-o".into(),
                d("v6-window.pcapng"),
                d("demo.pcap"),
            ],
        ),
        (
            "Split by protocol, then merge the parts back in time order",
            vec![
                "slice".into(),
                "-f".into(),
                "tcp".into(),
                "-o".into(),
                d("tcp.pcap"),
                d("demo.pcap"),
            ],
        ),
        (
            "",
            vec![
                "slice".into(),
                "-f".into(),
                "not tcp".into(),
                "-o".into(),
                d("other.pcap"),
                d("demo.pcap"),
            ],
        ),
        (
            "",
            vec![
                "merge".into(),
                "-o".into(),
                d("merged.pcapng"),
                d("tcp.pcap"),
                d("other.pcap"),
            ],
        ),
        ("", vec!["info".into(), d("merged.pcapng")]),
        (
            "Merging a capture with itself, --dedup keeps each packet once",
            vec![
                "merge".into(),
                "--dedup".into(),
                "-o".into(),
                d("dedup.pcapng"),
                d("demo.pcap"),
                d("demo.pcap"),
            ],
        ),
    ];
    for (title, argv) in steps {
        if !title.is_empty() {
            println!("\n== {title}");
        }
        println!("$ trawl {}", argv.join(" "));
        let status = Command::new(&exe)
            .args(&argv)
            .status()
            .context("cannot run trawl")?;
        if !status.success() {
            bail!("`trawl {}` failed", argv.join(" "));
        }
    }
    println!(
        "\nDone. The files are in {}; try `trawl read --json -c 1 {}`.",
        args.dir.display(),
        d("demo.pcap")
    );
    Ok(())
}
