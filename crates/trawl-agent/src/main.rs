//! `trawl-agent`: the edge agent alone, for devices — the same as `trawl agent`, without the
//! server, the offline tools or libpcap.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "trawl-agent",
    version,
    about = "The trawl edge agent: capture with kernel BPF and stream to a trawl server"
)]
struct Cli {
    #[command(flatten)]
    args: trawl_agent::cli::Args,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = trawl_agent::cli::run(cli.args) {
        eprintln!("trawl-agent: {e:#}");
        std::process::exit(1);
    }
}
