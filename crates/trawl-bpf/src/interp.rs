//! The interpreter: libpcap's `bpf_filter` semantics, in safe Rust, on any program.

use crate::insn::{Insn, MAX_INSNS, MEM_WORDS, Program, SKF_AD_OFF, opcode::*};

impl Program {
    /// Runs the filter on one packet and returns what libpcap's `bpf_filter` /
    /// `pcap_offline_filter` would: the number of bytes to keep, 0 to reject.
    ///
    /// `packet` is the captured bytes (its length is libpcap's `caplen`), `wire_len` the length
    /// on the wire (what `BPF_LEN` loads).
    ///
    /// Semantics, as libpcap 1.10 runs them: A, X and `M[0..16]` start at 0; arithmetic is
    /// unsigned 32-bit and wraps; a load past the captured bytes ends the run with 0, and so does
    /// division or modulo by a zero X; a shift by X ≥ 32 gives 0, while a shift by a constant
    /// uses its low 5 bits (what libpcap's C code does on x86 and ARM); Linux ancillary loads
    /// (offsets from [`SKF_AD_OFF`]) have no data offline and reject. An unconditional jump's
    /// offset is signed, as in libpcap, which compiles `protochain` with backward jumps.
    ///
    /// The run never panics and always ends, even on a program that [`Program::validate`]
    /// refuses: an unknown opcode, a jump out of the program, falling off its end, a
    /// scratch-memory index ≥ 16 or a constant divisor of 0 rejects the packet (libpcap's
    /// behaviour there is undefined), and a run that takes more than
    /// `packet.len() + 4096` backward jumps is cut short with 0 (libpcap's `protochain` loops
    /// advance at least 8 bytes per jump, so they never get near that).
    ///
    /// No allocation; the cost is one pass over the executed instructions.
    #[inline]
    pub fn run(&self, packet: &[u8], wire_len: u32) -> u32 {
        run_insns(&self.0, packet, wire_len)
    }
}

/// The interpreter loop, on a slice so that other owners of instructions can share it.
pub(crate) fn run_insns(insns: &[Insn], packet: &[u8], wire_len: u32) -> u32 {
    // libpcap's buffer length is 32 bits; capping it below SKF_AD_OFF also makes every
    // ancillary offset an out-of-bounds load, which is what userland libpcap does with them.
    let packet = &packet[..packet.len().min(SKF_AD_OFF as usize)];
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; MEM_WORDS];
    let mut backward_jumps_left = packet.len() + MAX_INSNS;
    let mut pc: usize = 0;

    // `reject!()` ends the run with 0: out-of-bounds load, division by zero, invalid program.
    macro_rules! reject {
        () => {
            return 0
        };
    }
    macro_rules! load {
        ($value:expr) => {
            match $value {
                Some(v) => v,
                None => reject!(),
            }
        };
    }

    loop {
        let Some(insn) = insns.get(pc) else { reject!() };
        pc = pc.wrapping_add(1);
        let k = insn.k;
        match insn.code {
            RET_K => return k,
            RET_A => return a,

            LD_IMM => a = k,
            LD_W_ABS => a = load!(word(packet, k as usize)),
            LD_H_ABS => a = load!(half(packet, k as usize)),
            LD_B_ABS => a = load!(byte(packet, k as usize)),
            LD_W_IND => a = load!(indexed(x, k).and_then(|at| word(packet, at))),
            LD_H_IND => a = load!(indexed(x, k).and_then(|at| half(packet, at))),
            LD_B_IND => a = load!(indexed(x, k).and_then(|at| byte(packet, at))),
            LD_MEM => a = load!(mem.get(k as usize).copied()),
            LD_LEN => a = wire_len,

            LDX_IMM => x = k,
            LDX_MEM => x = load!(mem.get(k as usize).copied()),
            LDX_LEN => x = wire_len,
            LDX_MSH => x = (load!(byte(packet, k as usize)) & 0xf) << 2,

            ST_MEM => *load!(mem.get_mut(k as usize)) = a,
            STX_MEM => *load!(mem.get_mut(k as usize)) = x,

            ADD_K => a = a.wrapping_add(k),
            ADD_X => a = a.wrapping_add(x),
            SUB_K => a = a.wrapping_sub(k),
            SUB_X => a = a.wrapping_sub(x),
            MUL_K => a = a.wrapping_mul(k),
            MUL_X => a = a.wrapping_mul(x),
            DIV_K => a = load!(a.checked_div(k)),
            DIV_X => a = load!(a.checked_div(x)),
            MOD_K => a = load!(a.checked_rem(k)),
            MOD_X => a = load!(a.checked_rem(x)),
            OR_K => a |= k,
            OR_X => a |= x,
            AND_K => a &= k,
            AND_X => a &= x,
            XOR_K => a ^= k,
            XOR_X => a ^= x,
            // libpcap shifts by a constant with C's `<<`, which x86 and ARM reduce mod 32.
            LSH_K => a = a.wrapping_shl(k),
            RSH_K => a = a.wrapping_shr(k),
            // ... but checks a shift by X: 32 or more gives 0.
            LSH_X => a = a.checked_shl(x).unwrap_or(0),
            RSH_X => a = a.checked_shr(x).unwrap_or(0),
            NEG => a = a.wrapping_neg(),

            JA => {
                let offset = k as i32;
                if offset < 0 {
                    if backward_jumps_left == 0 {
                        reject!()
                    }
                    backward_jumps_left -= 1;
                }
                // A target before the start wraps to a huge index, which the fetch rejects.
                pc = pc.wrapping_add_signed(offset as isize);
            }
            JEQ_K => pc = branch(pc, insn, a == k),
            JEQ_X => pc = branch(pc, insn, a == x),
            JGT_K => pc = branch(pc, insn, a > k),
            JGT_X => pc = branch(pc, insn, a > x),
            JGE_K => pc = branch(pc, insn, a >= k),
            JGE_X => pc = branch(pc, insn, a >= x),
            JSET_K => pc = branch(pc, insn, a & k != 0),
            JSET_X => pc = branch(pc, insn, a & x != 0),

            TAX => x = a,
            TXA => a = x,

            _ => reject!(),
        }
    }
}

#[inline(always)]
fn branch(pc: usize, insn: &Insn, taken: bool) -> usize {
    let skip = if taken { insn.jt } else { insn.jf };
    pc.wrapping_add(usize::from(skip))
}

/// `X + k`, the offset of an indexed load (never wraps: an overflow is out of bounds).
#[inline(always)]
fn indexed(x: u32, k: u32) -> Option<usize> {
    (x as usize).checked_add(k as usize)
}

#[inline(always)]
fn word(packet: &[u8], at: usize) -> Option<u32> {
    let bytes = packet.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_be_bytes(*bytes))
}

#[inline(always)]
fn half(packet: &[u8], at: usize) -> Option<u32> {
    let bytes = packet.get(at..)?.first_chunk::<2>()?;
    Some(u32::from(u16::from_be_bytes(*bytes)))
}

#[inline(always)]
fn byte(packet: &[u8], at: usize) -> Option<u32> {
    packet.get(at).map(|&b| u32::from(b))
}
