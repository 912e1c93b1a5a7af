//! Classic BPF, the packet-filter bytecode of tcpdump and the Linux kernel, as plain data and a
//! pure interpreter: no I/O, no FFI, no clock.
//!
//! A [`Program`] is a list of [`Insn`]s (`code`, `jt`, `jf`, `k`, as in `struct bpf_insn`); it
//! travels as JSON `[[code, jt, jf, k], ...]` from the server, which compiles tcpdump
//! expressions with libpcap (crate `trawl-bpfc`), to agents and offline tools.
//! [`Program::validate`] checks a program that came from elsewhere against the rules the Linux
//! kernel applies before attaching it (known opcodes, forward in-bounds jumps, `M[0..16]`,
//! no constant division by zero, a final return, at most [`MAX_INSNS`] instructions) and names
//! the instruction at fault ([`ValidateError`]). [`Program::run`] runs a program on one packet's
//! captured bytes and returns what libpcap's `pcap_offline_filter` returns: the snap length to
//! keep, 0 to reject; it allocates nothing and never panics, valid program or not.
//! [`Program::listing`] (or `Display`) prints the program as `tcpdump -d` does.
//! The opcode table is in [`opcode`].

mod insn;
mod interp;
mod listing;
mod validate;

pub use insn::{Insn, MAX_INSNS, MEM_WORDS, Program, SKF_AD_OFF, opcode};
pub use listing::ListingLine;
pub use validate::{InsnProblem, ValidateError};
