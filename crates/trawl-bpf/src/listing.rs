//! The program listing `tcpdump -d` prints (libpcap's `bpf_image` format, 1.10).
//!
//! ```text
//! (000) ldh      [12]
//! (001) jeq      #0x800           jt 2<TAB>jf 5
//! ```
//! (a tab between the two jump targets, as libpcap prints it)
//!
//! Numbers follow libpcap's choices, quirks included, so a listing can be compared with
//! `tcpdump -d` byte for byte: immediate loads, logical operations and comparisons print k in
//! hex; offsets, memory indexes, arithmetic constants and return values print it as a *signed*
//! decimal (`ret #-1` for 0xffffffff); jump targets are absolute instruction numbers.
//! One deliberate difference: `ldx #pktlen` (0x81), which libpcap 1.10's `bpf_image` does not
//! know and prints as `unimp 0x81`; newer libpcap prints `ldx #pktlen` too.

use std::fmt;

use crate::insn::{Insn, Program, SKF_AD_OFF, opcode::*};

/// Names libpcap gives the Linux ancillary loads, by offset from [`SKF_AD_OFF`] / 4.
const ANCILLARY_NAMES: [&str; 16] = [
    "proto",
    "type",
    "ifidx",
    "nla",
    "nlan",
    "mark",
    "queue",
    "hatype",
    "rxhash",
    "cpu",
    "xor_x",
    "vlan_tci",
    "vlanp",
    "poff",
    "random",
    "vlan_tpid",
];

/// One line of a listing: an instruction and its index. Made by [`Insn::listing_line`].
#[derive(Debug, Clone, Copy)]
pub struct ListingLine<'a> {
    insn: &'a Insn,
    index: usize,
}

impl Insn {
    /// This instruction as line `index` of a `tcpdump -d` listing (no newline).
    pub fn listing_line(&self, index: usize) -> ListingLine<'_> {
        ListingLine { insn: self, index }
    }
}

impl Program {
    /// The whole listing, as `tcpdump -d` prints it: one line per instruction, each ending in
    /// a newline. The same text as `format!("{program}")`.
    pub fn listing(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, insn) in self.insns().iter().enumerate() {
            writeln!(f, "{}", insn.listing_line(index))?;
        }
        Ok(())
    }
}

impl fmt::Display for ListingLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let insn = self.insn;
        let n = self.index;
        let k = insn.k;
        let signed = k as i32;
        let operand = match insn.code {
            LD_IMM | LDX_IMM => format!("#{k:#x}"),
            LD_LEN | LDX_LEN => "#pktlen".to_owned(),
            LD_W_ABS | LD_H_ABS | LD_B_ABS => match ancillary_name(k) {
                Some(name) => format!("[{name}]"),
                None => format!("[{signed}]"),
            },
            LD_W_IND | LD_H_IND | LD_B_IND => format!("[x + {signed}]"),
            LD_MEM | LDX_MEM | ST_MEM | STX_MEM => format!("M[{signed}]"),
            LDX_MSH => format!("4*([{signed}]&0xf)"),
            ADD_K | SUB_K | MUL_K | DIV_K | MOD_K | LSH_K | RSH_K | RET_K => format!("#{signed}"),
            OR_K | AND_K | XOR_K => format!("#{k:#x}"),
            JEQ_K | JGT_K | JGE_K | JSET_K => format!("#{k:#x}"),
            ADD_X | SUB_X | MUL_X | DIV_X | MOD_X | LSH_X | RSH_X | OR_X | AND_X | XOR_X
            | JEQ_X | JGT_X | JGE_X | JSET_X => "x".to_owned(),
            JA => {
                // libpcap computes the target in 32 bits and prints it signed.
                let target = (n as u32).wrapping_add(1).wrapping_add(k) as i32;
                target.to_string()
            }
            RET_A | TAX | TXA | NEG => String::new(),
            code => format!("{code:#x}"),
        };
        // Like libpcap: any jump-class opcode but `ja`, known or not, shows its two targets.
        let shows_targets = insn.code & 0x07 == JMP && insn.code & 0xf0 != 0;
        if shows_targets {
            let jt = n.wrapping_add(1).wrapping_add(usize::from(insn.jt));
            let jf = n.wrapping_add(1).wrapping_add(usize::from(insn.jf));
            write!(
                f,
                "({n:03}) {:<8} {operand:<16} jt {jt}\tjf {jf}",
                insn.mnemonic()
            )
        } else {
            write!(f, "({n:03}) {:<8} {operand}", insn.mnemonic())
        }
    }
}

fn ancillary_name(k: u32) -> Option<&'static str> {
    let offset = k.checked_sub(SKF_AD_OFF)?;
    if offset % 4 != 0 {
        return None;
    }
    ANCILLARY_NAMES.get((offset / 4) as usize).copied()
}
