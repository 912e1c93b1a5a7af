//! Checking a program that came from elsewhere before it is trusted.
//!
//! The rules are the Linux kernel's for `SO_ATTACH_FILTER` (which the agent must satisfy anyway),
//! and they are stricter than libpcap's own `bpf_validate`: only the exact classic-BPF opcodes,
//! jumps forward only, and the program must end in a return. libpcap compiles `protochain` with a
//! backward jump; such a program runs in [`Program::run`] but is refused here, as the kernel
//! refuses it.

use crate::insn::{Insn, MAX_INSNS, MEM_WORDS, Program, opcode};

/// Why a program is not a valid classic-BPF filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// No instructions at all.
    #[error("empty program: a filter needs at least one instruction, ending in a return (ret)")]
    Empty,
    /// More than [`MAX_INSNS`] instructions.
    #[error("program has {len} instructions; the limit is {max} (BPF_MAXINSNS)")]
    TooLong {
        /// Instructions in the program.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// One instruction is wrong.
    #[error("instruction {index} ({mnemonic}): {problem}")]
    Insn {
        /// Zero-based index of the instruction, as `tcpdump -d` numbers them.
        index: usize,
        /// Its mnemonic (`"unimp"` for an unknown opcode).
        mnemonic: &'static str,
        /// What is wrong with it.
        problem: InsnProblem,
    },
}

/// What is wrong with one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsnProblem {
    /// The opcode is not a classic-BPF opcode.
    #[error("unknown opcode {code:#06x}")]
    UnknownOpcode {
        /// The opcode.
        code: u16,
    },
    /// A jump leads past the last instruction.
    #[error("jump target {target} is past the end of a {len}-instruction program")]
    JumpPastEnd {
        /// The instruction the jump leads to.
        target: u64,
        /// Instructions in the program.
        len: usize,
    },
    /// An unconditional jump with a negative offset (k ≥ 2³¹).
    #[error(
        "backward jump (offset {offset}): classic BPF allows forward jumps only \
         (libpcap emits these for `protochain`, which the Linux kernel refuses)"
    )]
    BackwardJump {
        /// The offset as libpcap reads it (k sign-extended).
        offset: i32,
    },
    /// A scratch-memory index of 16 or more.
    #[error("scratch memory index {index} is out of range (M[0] to M[15])")]
    MemIndex {
        /// The index (k).
        index: u32,
    },
    /// A load from scratch memory that no earlier instruction on some path has stored to.
    #[error(
        "reads M[{index}] before it is stored on every path to here \
         (the Linux kernel refuses reads of uninitialised scratch memory)"
    )]
    UninitialisedMemory {
        /// The index (k).
        index: u32,
    },
    /// `div #0`.
    #[error("division by the constant 0")]
    DivisionByZero,
    /// `mod #0`.
    #[error("modulo by the constant 0")]
    ModuloByZero,
    /// The last instruction is not a return.
    #[error("the last instruction must be a return (ret)")]
    NoFinalReturn,
}

impl ValidateError {
    /// The index of the offending instruction, if the error is about one instruction.
    pub fn index(&self) -> Option<usize> {
        match self {
            ValidateError::Insn { index, .. } => Some(*index),
            ValidateError::Empty | ValidateError::TooLong { .. } => None,
        }
    }

    /// What is wrong with the instruction, if the error is about one instruction.
    pub fn problem(&self) -> Option<InsnProblem> {
        match self {
            ValidateError::Insn { problem, .. } => Some(*problem),
            ValidateError::Empty | ValidateError::TooLong { .. } => None,
        }
    }
}

impl Program {
    /// Checks that the program is a classic-BPF filter the Linux kernel would accept and that
    /// [`Program::run`] runs to a return on every packet: non-empty, at most [`MAX_INSNS`]
    /// instructions, known opcodes only, jumps forward and in bounds, scratch-memory indexes below
    /// 16, no constant division or modulo by zero, a return as the last instruction, and (as the
    /// kernel's `check_load_and_stores` demands) no read of `M[k]` that some path reaches
    /// without storing to it first.
    ///
    /// The first problem found (in instruction order) is reported.
    pub fn validate(&self) -> Result<(), ValidateError> {
        let insns = self.insns();
        let len = insns.len();
        if len == 0 {
            return Err(ValidateError::Empty);
        }
        if len > MAX_INSNS {
            return Err(ValidateError::TooLong {
                len,
                max: MAX_INSNS,
            });
        }
        for (index, insn) in insns.iter().enumerate() {
            if let Err(problem) = check_insn(insn, index, len) {
                return Err(ValidateError::Insn {
                    index,
                    mnemonic: insn.mnemonic(),
                    problem,
                });
            }
        }
        check_memory_initialised(insns)?;
        let last_index = len - 1;
        let last = &insns[last_index];
        if opcode::class(last.code) != opcode::RET {
            return Err(ValidateError::Insn {
                index: last_index,
                mnemonic: last.mnemonic(),
                problem: InsnProblem::NoFinalReturn,
            });
        }
        Ok(())
    }
}

fn check_insn(insn: &Insn, index: usize, len: usize) -> Result<(), InsnProblem> {
    use opcode::*;
    let k = insn.k;
    match insn.code {
        LD_MEM | LDX_MEM | ST_MEM | STX_MEM if k as usize >= MEM_WORDS => {
            Err(InsnProblem::MemIndex { index: k })
        }
        DIV_K if k == 0 => Err(InsnProblem::DivisionByZero),
        MOD_K if k == 0 => Err(InsnProblem::ModuloByZero),
        JA => {
            if k as i32 >= 0 {
                check_target(index as u64 + 1 + u64::from(k), len)
            } else {
                Err(InsnProblem::BackwardJump { offset: k as i32 })
            }
        }
        JEQ_K | JEQ_X | JGT_K | JGT_X | JGE_K | JGE_X | JSET_K | JSET_X => {
            check_target(index as u64 + 1 + u64::from(insn.jt), len)?;
            check_target(index as u64 + 1 + u64::from(insn.jf), len)
        }
        code if !is_known(code) => Err(InsnProblem::UnknownOpcode { code }),
        _ => Ok(()),
    }
}

fn check_target(target: u64, len: usize) -> Result<(), InsnProblem> {
    if target < len as u64 {
        Ok(())
    } else {
        Err(InsnProblem::JumpPastEnd { target, len })
    }
}

/// Walks the (forward-only, in-bounds) program once, tracking which `M[k]` are stored on every
/// path to each instruction, as the Linux kernel does before attaching a filter.
fn check_memory_initialised(insns: &[Insn]) -> Result<(), ValidateError> {
    use opcode::*;
    // Bit k set: M[k] is stored on every path seen so far. Unreached: all set.
    let mut stored_before = vec![u16::MAX; insns.len()];
    stored_before[0] = 0;
    for (index, insn) in insns.iter().enumerate() {
        let stored = stored_before[index];
        let bit = 1u16 << (insn.k & 0xf);
        let successors: [Option<usize>; 2] = match insn.code {
            LD_MEM | LDX_MEM if stored & bit == 0 => {
                return Err(ValidateError::Insn {
                    index,
                    mnemonic: insn.mnemonic(),
                    problem: InsnProblem::UninitialisedMemory { index: insn.k },
                });
            }
            JA => [Some(index + 1 + insn.k as usize), None],
            JEQ_K | JEQ_X | JGT_K | JGT_X | JGE_K | JGE_X | JSET_K | JSET_X => [
                Some(index + 1 + usize::from(insn.jt)),
                Some(index + 1 + usize::from(insn.jf)),
            ],
            RET_K | RET_A => [None, None],
            _ => [Some(index + 1), None],
        };
        let stored_after = match insn.code {
            ST_MEM | STX_MEM => stored | bit,
            _ => stored,
        };
        for target in successors.into_iter().flatten() {
            if let Some(mask) = stored_before.get_mut(target) {
                *mask &= stored_after;
            }
        }
    }
    Ok(())
}
