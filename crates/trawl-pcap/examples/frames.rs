//! Prints one line per packet as tests/formats/make_golden.py does for the reference tools:
//! `nanoseconds caplen wirelen md5`. For looking into a mismatch of the corpus test.
//! Usage: cargo run --example frames -- FILE

use md5::{Digest, Md5};
use trawl_pcap::CaptureReader;

fn main() {
    let path = std::env::args().nth(1).expect("usage: frames FILE");
    let mut r = match CaptureReader::open(&path) {
        Ok(r) => r,
        Err(e) => {
            println!("error: {e}");
            return;
        }
    };
    loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                let ns = (p.ts.secs as u128 * 1_000_000_000 + p.ts.nanos as u128)
                    % ((1u128 << 32) * 1_000_000_000);
                let md5: String = Md5::digest(p.data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                println!("{ns} {} {} {md5}", p.data.len(), p.orig_len);
            }
            Ok(None) => break,
            Err(e) => {
                println!("error: {e}");
                break;
            }
        }
    }
}
