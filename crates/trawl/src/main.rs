//! The `trawl` command: offline tools for capture files, the server, and the client commands
//! that fetch from it (later, the agent).

mod beside;
mod client;
mod cmd;
mod files;
mod filter;
mod flows;
mod pipe;
mod progress;
mod source;
mod table;
mod timespec;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "trawl",
    version,
    about = "Packet capture for operators: read, filter, slice, merge and summarise captures; run the capture server",
    after_help = "\
Examples:
  trawl info capture.pcapng                         what is in a file (like capinfos)
  trawl read -f 'tcp port 443' capture.pcap         one line per packet (like tcpdump -nn)
  trawl slice --from +10s --to +20s -o part.pcapng capture.pcap
  trawl merge --dedup -o both.pcapng tap-a.pcap tap-b.pcap
  trawl cat -o day.pcapng 09h.pcap 10h.pcap 11h.pcap
  trawl flows --snapshot=100ms capture.pcap         flow records (JSON lines, CSV, ES bulk)
  trawl report --apps apps.toml wan-in.pcap wan-out.pcap
      15-minute traffic reports: circuits, protocols, busy and quiet seconds, top talkers,
      applications, SYNs, retransmissions (--format text, json or html with charts)
  trawl profile --session 'tcp 10.0.0.1:1234 10.0.0.2:80' --format html -o s.html cap.pcap
      one session's bandwidth per second each way and its packet sizes
  trawl demo                                        a tour on a generated capture
  trawl server --data ./trawl-data                  the central server (HTTPS on port 8443)
  trawl org create acme --data ./trawl-data         another organisation and its admin token
  trawl org enrollment-token --data ./trawl-data    a one-time token to enrol a device
  trawl user add admin --role admin --data ./trawl-data
      the first user who logs in to the server's web pages (asks for a password)
  trawl agent --server URL --enroll TOKEN -i eth0   capture on a device, stream to the server
  trawl devices                                     the devices enrolled with a server
  trawl pull --device gw-17 --from 2024-03-01T12:00:00Z --to 2024-03-01T12:00:10Z -o gw.pcapng
      ten seconds of a device's stored packets (TRAWL_SERVER, TRAWL_TOKEN, TRAWL_CA set)
  trawl capture start --devices gw-17,gw-18 -f 'icmp or tcp port 443' --duration 60 --wait
      a capture job on two devices; then: trawl capture download JOB -o job.pcapng
  trawl upload gw-17.pcap --tag incident-4711     send a capture file to the server
  tcpdump -U -w - | trawl upload - --name live    ... or one still being captured
  trawl captures list --tag incident-4711         the server's captures: list, show, tag,
                                                  notes, download, save a window, delete

Every command reads pcap, pcapng and snoop (also gzip- or zstd-compressed) and takes tcpdump
filter expressions.
`trawl COMMAND --help` shows each command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print one line per packet (tcpdump -nn style), or JSON.
    Read(cmd::read::Args),
    /// Merge captures into one, in time order, optionally removing duplicates.
    Merge(cmd::merge::Args),
    /// Cut a time window and/or filter out of captures.
    Slice(cmd::slice::Args),
    /// Concatenate captures.
    Cat(cmd::cat::Args),
    /// Summarise captures: packets, bytes, times, link types, rates.
    Info(cmd::info::Args),
    /// Flows in captures: per conversation, or every interval (snapshot flows); JSON lines,
    /// CSV or Elasticsearch bulk.
    Flows(cmd::flows::Args),
    /// Traffic reports per period and line: circuits, protocols, busy and quiet seconds, top
    /// talkers, applications, SYNs and retransmissions (text, JSON or HTML with charts).
    Report(cmd::report::Args),
    /// Profile one session: bandwidth per second each way, packet sizes, totals.
    Profile(cmd::profile::Args),
    /// Generate a synthetic capture (benchmarks, demos).
    Gen(cmd::generate::Args),
    /// A short tour of the offline tools on a generated capture.
    Demo(cmd::demo::Args),
    /// Run the central server: enrolment and ingest over HTTPS, stored in a local directory.
    Server(cmd::server::Args),
    /// Manage organisations in a server's data directory (no running server needed).
    Org(cmd::org::Args),
    /// Manage the users who log in to a server, in its data directory (no running server
    /// needed): add, list, passwd.
    User(cmd::user::Args),
    /// Run the edge agent: capture (AF_PACKET + kernel BPF) and stream to a server.
    Agent(cmd::agent::Args),
    /// Download devices' stored packets in a time window from a server, merged and filtered.
    Pull(cmd::pull::Args),
    /// List the devices enrolled with a server.
    Devices(cmd::devices::Args),
    /// Capture jobs on a server's devices: start, stop, list, show, download.
    Capture(cmd::capture::Args),
    /// Send a capture file (or one still being captured, on standard input) to a server.
    Upload(cmd::upload::Args),
    /// A server's captures (uploads, saved windows): list, search, show, tag, annotate,
    /// download, save, delete.
    Captures(cmd::captures::Args),
}

fn main() {
    let cli = Cli::parse_from(snapshot_interval_args(std::env::args_os()));
    if matches!(
        cli.command,
        Command::Devices(_) | Command::Capture(_) | Command::Captures(_)
    ) {
        // These print lists with `println!`: `trawl captures list | head` ends quietly when
        // `head` has read enough, as other command-line tools do, instead of a panic on the
        // closed pipe. (Sockets are written with MSG_NOSIGNAL, so only the output is affected.)
        // SAFETY: setting a signal's disposition to its default, before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Read(a) => cmd::read::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Slice(a) => cmd::slice::run(a),
        Command::Cat(a) => cmd::cat::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Flows(a) => cmd::flows::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::Gen(a) => cmd::generate::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Server(a) => cmd::server::run(a),
        Command::Org(a) => cmd::org::run(a),
        Command::User(a) => cmd::user::run(a),
        Command::Agent(a) => cmd::agent::run(a),
        Command::Pull(a) => cmd::pull::run(a),
        Command::Devices(a) => cmd::devices::run(a),
        Command::Capture(a) => cmd::capture::run(a),
        Command::Upload(a) => cmd::upload::run(a),
        Command::Captures(a) => cmd::captures::run(a),
    };
    if let Err(e) = result {
        eprintln!("trawl: {e:#}");
        std::process::exit(1);
    }
}

/// `--snapshot` takes an optional interval: `--snapshot 100ms`, `--snapshot=100ms`, or alone
/// (100 ms). Alone before a file name (`--snapshot capture.pcap`) the file is not an interval:
/// such a `--snapshot` is given its default here, before parsing, so the name stays a file.
fn snapshot_interval_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    for i in 0..args.len() {
        if args[i] != "--snapshot" {
            continue;
        }
        let interval = args
            .get(i + 1)
            .and_then(|next| next.to_str())
            .is_some_and(|next| timespec::parse_duration(next).is_ok());
        if !interval {
            args[i] = OsString::from("--snapshot=100ms");
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(args: &[&str]) -> Vec<String> {
        snapshot_interval_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn snapshot_takes_an_interval_or_stands_alone() {
        let given = ["trawl", "flows", "--snapshot", "50ms", "f.pcap"];
        assert_eq!(rewritten(&given), given);
        assert_eq!(
            rewritten(&["trawl", "flows", "--snapshot", "f.pcap"]),
            ["trawl", "flows", "--snapshot=100ms", "f.pcap"]
        );
        assert_eq!(
            rewritten(&["trawl", "flows", "f.pcap", "--snapshot"]),
            ["trawl", "flows", "f.pcap", "--snapshot=100ms"]
        );
        let equals = ["trawl", "flows", "--snapshot=1s", "f.pcap"];
        assert_eq!(rewritten(&equals), equals);
        for parsed in [
            &["trawl", "flows", "--snapshot", "250ms", "f.pcap"][..],
            &["trawl", "flows", "--snapshot", "f.pcap"],
            &["trawl", "flows", "--snapshot=250ms", "f.pcap"],
        ] {
            let cli =
                Cli::try_parse_from(snapshot_interval_args(parsed.iter().map(OsString::from)))
                    .unwrap();
            let Command::Flows(a) = cli.command else {
                panic!("not flows")
            };
            assert_eq!(a.source.files, [std::path::PathBuf::from("f.pcap")]);
            assert!(a.snapshot.is_some());
        }
    }
}
