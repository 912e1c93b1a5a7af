//! A quick interpreter microbenchmark: `cargo run --release -p trawl-bpf --example bench`.
//! Prints programs run per second on one core for a short and a typical filter.

use std::hint::black_box;
use std::time::Instant;

use trawl_bpf::{Insn, Program, opcode::*};

/// `ip` on Ethernet (`tcpdump -d ip`).
fn ip() -> Program {
    Program::new(vec![
        Insn::stmt(LD_H_ABS, 12),
        Insn::jump(JEQ_K, 0x800, 0, 1),
        Insn::stmt(RET_K, 262_144),
        Insn::stmt(RET_K, 0),
    ])
}

/// `tcp port 80` on Ethernet (`tcpdump -d 'tcp port 80'`, libpcap 1.10.3).
fn tcp_port_80() -> Program {
    let raw: [(u16, u8, u8, u32); 20] = [
        (40, 0, 0, 12),
        (21, 0, 6, 34525),
        (48, 0, 0, 20),
        (21, 0, 15, 6),
        (40, 0, 0, 54),
        (21, 12, 0, 80),
        (40, 0, 0, 56),
        (21, 10, 11, 80),
        (21, 0, 10, 2048),
        (48, 0, 0, 23),
        (21, 0, 8, 6),
        (40, 0, 0, 20),
        (69, 6, 0, 8191),
        (177, 0, 0, 14),
        (72, 0, 0, 14),
        (21, 2, 0, 80),
        (72, 0, 0, 16),
        (21, 0, 1, 80),
        (6, 0, 0, 262_144),
        (6, 0, 0, 0),
    ];
    raw.iter()
        .map(|&(code, jt, jf, k)| Insn { code, jt, jf, k })
        .collect()
}

/// An Ethernet / IPv4 / TCP packet from port 43210 to `dst_port`, 74 bytes.
fn tcp_packet(dst_port: u16) -> Vec<u8> {
    let mut p = vec![0u8; 74];
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    p[14] = 0x45;
    p[16..18].copy_from_slice(&60u16.to_be_bytes());
    p[23] = 6;
    p[34..36].copy_from_slice(&43210u16.to_be_bytes());
    p[36..38].copy_from_slice(&dst_port.to_be_bytes());
    p
}

fn measure(name: &str, program: &Program, packet: &[u8]) {
    let runs: u32 = 50_000_000;
    let start = Instant::now();
    let mut accepted = 0u64;
    for _ in 0..runs {
        accepted += u64::from(black_box(program).run(black_box(packet), 74) != 0);
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name:<28} {:>6.1} M runs/s  ({:.1} ns/run, accepted {accepted})",
        f64::from(runs) / seconds / 1e6,
        seconds * 1e9 / f64::from(runs)
    );
}

fn main() {
    measure("ip (4 insns)", &ip(), &tcp_packet(80));
    measure("tcp port 80, match", &tcp_port_80(), &tcp_packet(80));
    measure("tcp port 80, no match", &tcp_port_80(), &tcp_packet(443));
}
