//! A small harness for tests that run `trawl` and the reference tools side by side.
//!
//! For the end-to-end tests: `netns` (namespaces, veth links, tcpdump), `server` and `agent`
//! (the `trawl server` and `trawl agent` subprocesses, the admin API, what was stored),
//! `traffic` (ping, DNS, TCP), `flows` (captures compared as tshark sees them).
#![allow(dead_code)]

pub mod agent;
#[path = "../../../../tests/support/corpus.rs"]
mod corpus_dir;
pub mod flows;
pub mod netns;
pub mod server;
pub mod traffic;
#[allow(unused_imports)]
pub use corpus_dir::corpus;

use std::io::Read;
use std::path::Path;
use std::process::Command;

/// Runs a reference tool; its absence fails the test with what to install.
pub fn tool(name: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {name} ({e}): install it (scripts/deps.sh installs the reference tools)")
    });
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Reads all of a child's pipe on a thread.
pub fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Runs trawl; Ok(stdout) on success, Err(stderr) otherwise.
pub fn trawl(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .output()
        .expect("run trawl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs trawl, which must succeed; returns (stdout, stderr).
pub fn run_ok(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .output()
        .expect("run trawl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "trawl {args:?} failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// What tshark sees in a capture: one row per packet with time, lengths, an MD5 of the bytes,
/// the packet's comments and its interface's name.
#[derive(Default, Debug)]
pub struct Frames {
    pub rows: Vec<String>,
    /// Time, lengths, MD5 and link type only: what a pcap file can carry.
    pub packets: Vec<String>,
    /// tshark reported an error (e.g. a file cut short) after these rows.
    pub failed: bool,
}

pub fn frames(path: &Path) -> Frames {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-o", "frame.generate_md5_hash:TRUE", "-T", "fields"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .args([
            "-e",
            "frame.md5_hash",
            "-e",
            "frame.comment",
            "-e",
            "frame.interface_name",
        ])
        .args(["-e", "frame.encap_type"])
        .output()
        .expect("tshark (install it: scripts/deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let packets = stdout
        .lines()
        .filter(|l| !l.ends_with('\t'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            [f[0], f[1], f[2], f[3], f[6]].join(" ")
        })
        .collect();
    let rows = stdout
        .lines()
        // pcapng custom blocks are listed as records with no encapsulation: not packets.
        .filter(|l| !l.ends_with('\t'))
        .map(|l| {
            // A file without interface names shows "unknown" or, after mergecap, "-".
            let f: Vec<&str> = l
                .split('\t')
                .map(|x| if x == "unknown" || x == "-" { "" } else { x })
                .collect();
            f.join(" ")
        })
        .collect();
    Frames {
        rows,
        packets,
        failed: !out.status.success(),
    }
}

impl Frames {
    /// Where two packet lists first differ.
    pub fn diff(&self, other: &Frames) -> String {
        if self.rows.len() != other.rows.len() {
            return format!(
                "{} packets expected, {} found{}",
                self.rows.len(),
                other.rows.len(),
                self.first_difference(other)
            );
        }
        self.first_difference(other)
    }

    fn first_difference(&self, other: &Frames) -> String {
        for (i, (a, b)) in self.rows.iter().zip(&other.rows).enumerate() {
            if a != b {
                return format!("; packet {}: expected `{a}`, found `{b}`", i + 1);
            }
        }
        String::new()
    }
}
