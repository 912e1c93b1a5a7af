//! Oracles for tests: libpcap's interpreter, reader and listing.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use trawl_bpf::{Insn, MEM_WORDS, Program, opcode};

use crate::compile::dlt_to_linktype;
use crate::ffi;

/// Why a program or packet cannot be handed to libpcap's interpreter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OracleError {
    /// The program would make libpcap read outside it, abort or divide by zero (libpcap's
    /// interpreter trusts its input).
    #[error("libpcap cannot run this program safely: instruction {index}: {reason}")]
    UnsafeProgram {
        /// Index of the offending instruction.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An empty program.
    #[error("libpcap cannot run an empty program")]
    EmptyProgram,
    /// `caplen` is larger than the bytes given.
    #[error("caplen {caplen} is larger than the {available} bytes of the packet")]
    CaplenTooLarge {
        /// The caplen asked for.
        caplen: u32,
        /// Bytes in the packet slice.
        available: usize,
    },
}

/// Runs `program` on a packet with libpcap's own interpreter (`pcap_offline_filter`), the
/// reference for [`Program::run`]: the filter sees `packet[..caplen]`, and `wire_len` as the
/// packet length. Returns the snap length to keep, 0 to reject.
///
/// Unlike [`Program::validate`], backward jumps are allowed (libpcap compiles `protochain`
/// with them), so a hand-made program can loop forever here as it would in libpcap. Programs
/// that would make libpcap read out of bounds are refused instead of run.
pub fn libpcap_filter(
    program: &Program,
    packet: &[u8],
    wire_len: u32,
    caplen: u32,
) -> Result<u32, OracleError> {
    if caplen as usize > packet.len() {
        return Err(OracleError::CaplenTooLarge {
            caplen,
            available: packet.len(),
        });
    }
    check_for_libpcap(program)?;
    Ok(ffi::offline_filter(
        program.insns(),
        packet,
        wire_len,
        caplen,
    ))
}

/// What libpcap's interpreter needs to stay inside its buffers: known opcodes (others abort),
/// jump targets inside the program, `M[0..16]`, no constant division by zero, and no falling
/// off the end.
fn check_for_libpcap(program: &Program) -> Result<(), OracleError> {
    use opcode::*;
    let insns = program.insns();
    let len = insns.len() as i64;
    if insns.is_empty() {
        return Err(OracleError::EmptyProgram);
    }
    let unsafe_at = |index: usize, reason: String| OracleError::UnsafeProgram { index, reason };
    let in_program = |target: i64| (0..len).contains(&target);
    for (index, insn) in insns.iter().enumerate() {
        let next = index as i64 + 1;
        let k = insn.k;
        match insn.code {
            code if !is_known(code) => {
                return Err(unsafe_at(index, format!("unknown opcode {code:#x}")));
            }
            LD_MEM | LDX_MEM | ST_MEM | STX_MEM if k as usize >= MEM_WORDS => {
                return Err(unsafe_at(index, format!("memory index {k}")));
            }
            DIV_K | MOD_K if k == 0 => {
                return Err(unsafe_at(index, "constant divisor 0".to_owned()));
            }
            JA if !in_program(next + i64::from(k as i32)) => {
                return Err(unsafe_at(index, "jump out of the program".to_owned()));
            }
            JEQ_K | JEQ_X | JGT_K | JGT_X | JGE_K | JGE_X | JSET_K | JSET_X
                if !in_program(next + i64::from(insn.jt))
                    || !in_program(next + i64::from(insn.jf)) =>
            {
                return Err(unsafe_at(index, "jump out of the program".to_owned()));
            }
            _ => {}
        }
    }
    let last = insns.len() - 1;
    if !matches!(insns[last].code, RET_K | RET_A | JA) {
        return Err(unsafe_at(last, "falls off the end".to_owned()));
    }
    Ok(())
}

/// The program as libpcap's `bpf_image` prints it (`tcpdump -d`), one line per instruction,
/// each ending in a newline: the reference for [`Program::listing`].
pub fn libpcap_listing(program: &Program) -> String {
    let mut out = String::new();
    for (index, insn) in program.insns().iter().enumerate() {
        out.push_str(&ffi::image(insn, index));
        out.push('\n');
    }
    out
}

/// One instruction as libpcap's `bpf_image` prints it as line `index` of a listing (no
/// newline): the reference for [`trawl_bpf::Insn::listing_line`].
pub fn libpcap_listing_line(insn: &Insn, index: usize) -> String {
    ffi::image(insn, index)
}

/// One packet as libpcap read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LibpcapPacket {
    /// Seconds since the epoch.
    pub secs: u64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Captured length (= `data.len()`).
    pub caplen: u32,
    /// Length on the wire.
    pub wire_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Everything libpcap could read from a file, including the error that stopped it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibpcapCapture {
    /// The link type (`LINKTYPE_*`, as in the file; libpcap's `DLT_*` value mapped back).
    pub link_type: u32,
    /// The snapshot length libpcap reports for the file (`pcap_snapshot`).
    pub snaplen: u32,
    /// The packets read before the end or the error.
    pub packets: Vec<LibpcapPacket>,
    /// libpcap's message if reading stopped on an error (truncated record, bad block, …).
    pub error: Option<String>,
}

/// Reads a pcap or pcapng file with libpcap (`pcap_open_offline_with_tstamp_precision`,
/// nanosecond precision; `pcap_next_ex`): the link type (`LINKTYPE_*`) and every packet. An
/// independent reader to check other readers against. Any error, including one after some
/// packets (a truncated file), is returned as libpcap's message with the file name; see
/// [`read_with_libpcap_lenient`] to keep the packets before it.
pub fn read_with_libpcap(path: impl AsRef<Path>) -> Result<(u32, Vec<LibpcapPacket>), String> {
    let path = path.as_ref();
    let capture = read_with_libpcap_lenient(path)?;
    match capture.error {
        None => Ok((capture.link_type, capture.packets)),
        Some(error) => Err(format!(
            "{}: libpcap stopped after {} packets: {error}",
            path.display(),
            capture.packets.len()
        )),
    }
}

/// Like [`read_with_libpcap`], but a read error after the file opened is returned in
/// [`LibpcapCapture::error`] with the packets read before it. `Err` only if libpcap cannot open
/// the file.
pub fn read_with_libpcap_lenient(path: impl AsRef<Path>) -> Result<LibpcapCapture, String> {
    let path = path.as_ref();
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: path contains a NUL byte", path.display()))?;
    let mut reader = ffi::OfflineReader::open(&c_path)
        .map_err(|message| format!("{}: libpcap cannot open it: {message}", path.display()))?;
    let link_type = dlt_to_linktype(reader.datalink() as u32);
    let snaplen = u32::try_from(reader.snapshot()).unwrap_or(0);
    let mut packets = Vec::new();
    let mut error = None;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                let (Ok(secs), Ok(nanos)) =
                    (u64::try_from(record.secs), u32::try_from(record.nanos))
                else {
                    error = Some(format!(
                        "packet {}: timestamp {}.{:09} is out of range",
                        packets.len() + 1,
                        record.secs,
                        record.nanos
                    ));
                    break;
                };
                packets.push(LibpcapPacket {
                    secs,
                    nanos,
                    caplen: record.caplen,
                    wire_len: record.wire_len,
                    data: record.data,
                });
            }
            Ok(None) => break,
            Err(message) => {
                error = Some(message);
                break;
            }
        }
    }
    Ok(LibpcapCapture {
        link_type,
        snaplen,
        packets,
        error,
    })
}
