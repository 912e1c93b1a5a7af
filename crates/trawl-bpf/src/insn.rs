//! Instructions, programs and the classic-BPF opcode table.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most instructions a program may have: `BPF_MAXINSNS` in Linux and libpcap.
pub const MAX_INSNS: usize = 4096;

/// Words of scratch memory (`M[0]` … `M[15]`): `BPF_MEMWORDS`.
pub const MEM_WORDS: usize = 16;

/// First offset of the Linux ancillary-data area (`SKF_AD_OFF`, i.e. -0x1000 as a 32-bit value).
/// Loads from there read socket metadata in the kernel; offline they reject the packet.
pub const SKF_AD_OFF: u32 = 0xffff_f000;

/// The opcodes that classic BPF defines, as Linux and libpcap spell them (`class | size | mode`,
/// `class | op | src`). Only these exact 16-bit values are valid instructions.
pub mod opcode {
    // Classes.
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;

    // Loads into A.
    pub const LD_IMM: u16 = 0x00;
    pub const LD_W_ABS: u16 = 0x20;
    pub const LD_H_ABS: u16 = 0x28;
    pub const LD_B_ABS: u16 = 0x30;
    pub const LD_W_IND: u16 = 0x40;
    pub const LD_H_IND: u16 = 0x48;
    pub const LD_B_IND: u16 = 0x50;
    pub const LD_MEM: u16 = 0x60;
    pub const LD_LEN: u16 = 0x80;

    // Loads into X.
    pub const LDX_IMM: u16 = 0x01;
    pub const LDX_MEM: u16 = 0x61;
    pub const LDX_LEN: u16 = 0x81;
    pub const LDX_MSH: u16 = 0xb1;

    // Stores.
    pub const ST_MEM: u16 = 0x02;
    pub const STX_MEM: u16 = 0x03;

    // Arithmetic on A, with a constant (`_K`) or with X (`_X`).
    pub const ADD_K: u16 = 0x04;
    pub const ADD_X: u16 = 0x0c;
    pub const SUB_K: u16 = 0x14;
    pub const SUB_X: u16 = 0x1c;
    pub const MUL_K: u16 = 0x24;
    pub const MUL_X: u16 = 0x2c;
    pub const DIV_K: u16 = 0x34;
    pub const DIV_X: u16 = 0x3c;
    pub const OR_K: u16 = 0x44;
    pub const OR_X: u16 = 0x4c;
    pub const AND_K: u16 = 0x54;
    pub const AND_X: u16 = 0x5c;
    pub const LSH_K: u16 = 0x64;
    pub const LSH_X: u16 = 0x6c;
    pub const RSH_K: u16 = 0x74;
    pub const RSH_X: u16 = 0x7c;
    pub const NEG: u16 = 0x84;
    pub const MOD_K: u16 = 0x94;
    pub const MOD_X: u16 = 0x9c;
    pub const XOR_K: u16 = 0xa4;
    pub const XOR_X: u16 = 0xac;

    // Jumps: `JA` is unconditional (offset in k); the others go to jt or jf.
    pub const JA: u16 = 0x05;
    pub const JEQ_K: u16 = 0x15;
    pub const JEQ_X: u16 = 0x1d;
    pub const JGT_K: u16 = 0x25;
    pub const JGT_X: u16 = 0x2d;
    pub const JGE_K: u16 = 0x35;
    pub const JGE_X: u16 = 0x3d;
    pub const JSET_K: u16 = 0x45;
    pub const JSET_X: u16 = 0x4d;

    // Returns.
    pub const RET_K: u16 = 0x06;
    pub const RET_A: u16 = 0x16;

    // Register transfers.
    pub const TAX: u16 = 0x07;
    pub const TXA: u16 = 0x87;

    /// The class bits of an opcode (`BPF_CLASS`).
    pub const fn class(code: u16) -> u16 {
        code & 0x07
    }

    /// The mnemonic `tcpdump -d` prints for a valid opcode, `None` for anything else.
    pub const fn mnemonic(code: u16) -> Option<&'static str> {
        Some(match code {
            LD_IMM | LD_W_ABS | LD_W_IND | LD_MEM | LD_LEN => "ld",
            LD_H_ABS | LD_H_IND => "ldh",
            LD_B_ABS | LD_B_IND => "ldb",
            LDX_IMM | LDX_MEM | LDX_LEN => "ldx",
            LDX_MSH => "ldxb",
            ST_MEM => "st",
            STX_MEM => "stx",
            ADD_K | ADD_X => "add",
            SUB_K | SUB_X => "sub",
            MUL_K | MUL_X => "mul",
            DIV_K | DIV_X => "div",
            OR_K | OR_X => "or",
            AND_K | AND_X => "and",
            LSH_K | LSH_X => "lsh",
            RSH_K | RSH_X => "rsh",
            NEG => "neg",
            MOD_K | MOD_X => "mod",
            XOR_K | XOR_X => "xor",
            JA => "ja",
            JEQ_K | JEQ_X => "jeq",
            JGT_K | JGT_X => "jgt",
            JGE_K | JGE_X => "jge",
            JSET_K | JSET_X => "jset",
            RET_K | RET_A => "ret",
            TAX => "tax",
            TXA => "txa",
            _ => return None,
        })
    }

    /// Whether `code` is one of the classic-BPF opcodes above.
    pub const fn is_known(code: u16) -> bool {
        mnemonic(code).is_some()
    }

    /// Every valid opcode, in numeric order (for tests and generators).
    pub const ALL: [u16; 49] = [
        LD_IMM, LDX_IMM, ST_MEM, STX_MEM, ADD_K, JA, RET_K, TAX, ADD_X, SUB_K, JEQ_K, RET_A, SUB_X,
        JEQ_X, LD_W_ABS, MUL_K, JGT_K, LD_H_ABS, MUL_X, JGT_X, LD_B_ABS, DIV_K, JGE_K, DIV_X,
        JGE_X, LD_W_IND, OR_K, JSET_K, LD_H_IND, OR_X, JSET_X, LD_B_IND, AND_K, AND_X, LD_MEM,
        LDX_MEM, LSH_K, LSH_X, RSH_K, RSH_X, LD_LEN, LDX_LEN, NEG, TXA, MOD_K, MOD_X, XOR_K, XOR_X,
        LDX_MSH,
    ];
}

/// One classic-BPF instruction, laid out like `struct bpf_insn`.
///
/// On the wire (JSON) it is the 4-tuple `[code, jt, jf, k]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Insn {
    /// Opcode: class, size/operation, mode/source (see [`opcode`]).
    pub code: u16,
    /// Conditional jumps: instructions to skip when the condition holds.
    pub jt: u8,
    /// Conditional jumps: instructions to skip when it does not.
    pub jf: u8,
    /// Constant operand: offset, immediate value, memory index or jump offset.
    pub k: u32,
}

impl Insn {
    /// An instruction without jump offsets (`BPF_STMT`).
    pub const fn stmt(code: u16, k: u32) -> Self {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A conditional jump (`BPF_JUMP`).
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Insn { code, jt, jf, k }
    }

    /// The mnemonic `tcpdump -d` prints, or `"unimp"` for an unknown opcode.
    pub fn mnemonic(&self) -> &'static str {
        opcode::mnemonic(self.code).unwrap_or("unimp")
    }
}

impl Serialize for Insn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.code, self.jt, self.jf, self.k).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Insn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (code, jt, jf, k) = <(u16, u8, u8, u32)>::deserialize(deserializer)?;
        Ok(Insn { code, jt, jf, k })
    }
}

/// A classic-BPF program: the instructions in order. On the wire (JSON) it is
/// `[[code, jt, jf, k], ...]`.
///
/// A `Program` may come from anywhere and is not checked on construction: call
/// [`Program::validate`] before trusting it. [`Program::run`] is safe on any program.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Program(pub Vec<Insn>);

impl Program {
    /// A program from its instructions (unchecked; see [`Program::validate`]).
    pub fn new(insns: Vec<Insn>) -> Self {
        Program(insns)
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.0
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the program has no instructions (such a program is invalid).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Insn>> for Program {
    fn from(insns: Vec<Insn>) -> Self {
        Program(insns)
    }
}

impl FromIterator<Insn> for Program {
    fn from_iter<I: IntoIterator<Item = Insn>>(iter: I) -> Self {
        Program(iter.into_iter().collect())
    }
}
