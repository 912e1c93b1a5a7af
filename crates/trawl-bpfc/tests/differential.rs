//! Random valid programs on random packets: our interpreter must return exactly what libpcap's
//! `pcap_offline_filter` returns.

use proptest::prelude::*;
use trawl_bpf::{Insn, Program, SKF_AD_OFF, opcode};
use trawl_bpfc::libpcap_filter;

/// A k operand biased towards interesting values: small offsets (in and just past short
/// packets), shift amounts around 32, ancillary offsets, and anything.
fn operand() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..72,
        2 => any::<u32>(),
        1 => 28u32..40,
        1 => (0u32..17).prop_map(|i| SKF_AD_OFF + 4 * i),
        1 => prop_oneof![Just(0u32), Just(1), Just(0x7fff_ffff), Just(0x8000_0000), Just(u32::MAX)],
    ]
}

/// One instruction slot before it is fitted to its place in the program.
fn slot() -> impl Strategy<Value = (usize, u8, u8, u32)> {
    (0..opcode::ALL.len(), any::<u8>(), any::<u8>(), operand())
}

/// Programs that pass `validate`: slots fitted so that jumps stay in bounds, memory indexes
/// are below 16, constant divisors are non-zero; a return at the end.
///
/// Every program starts by storing random values in M[0..16] and clearing A: libpcap leaves
/// scratch memory uninitialised (the kernel refuses programs that read it before writing), so
/// reading it first would compare against garbage.
fn valid_program() -> impl Strategy<Value = Program> {
    (
        prop::collection::vec(any::<u32>(), 16),
        prop::collection::vec(slot(), 0..48),
        prop_oneof![Just(opcode::RET_K), Just(opcode::RET_A)],
        operand(),
    )
        .prop_map(|(memory, slots, last_code, last_k)| {
            let len = slots.len() + 1;
            let mut insns: Vec<Insn> = slots
                .into_iter()
                .enumerate()
                .map(|(index, (which, jt, jf, k))| {
                    let code = opcode::ALL[which];
                    // Instructions after this one: a jump may skip up to all but the last.
                    let room = (len - 1 - index) as u32;
                    use opcode::*;
                    match code {
                        JA => Insn::stmt(code, k % room),
                        JEQ_K | JEQ_X | JGT_K | JGT_X | JGE_K | JGE_X | JSET_K | JSET_X => {
                            let fit = |j: u8| (u32::from(j) % room.min(256)) as u8;
                            Insn::jump(code, k, fit(jt), fit(jf))
                        }
                        LD_MEM | LDX_MEM | ST_MEM | STX_MEM => Insn::stmt(code, k % 16),
                        DIV_K | MOD_K => Insn::stmt(code, k.max(1)),
                        _ => Insn::stmt(code, k),
                    }
                })
                .collect();
            insns.push(Insn::stmt(last_code, last_k));
            let mut prologue: Vec<Insn> = (0..16u32)
                .flat_map(|i| {
                    [
                        Insn::stmt(opcode::LD_IMM, memory[i as usize]),
                        Insn::stmt(opcode::ST_MEM, i),
                    ]
                })
                .collect();
            prologue.push(Insn::stmt(opcode::LD_IMM, 0));
            prologue.extend(insns);
            Program::new(prologue)
        })
}

fn packet() -> impl Strategy<Value = (Vec<u8>, u32)> {
    prop::collection::vec(any::<u8>(), 0..96).prop_flat_map(|data| {
        let len = data.len() as u32;
        let wire_len = prop_oneof![Just(len), len..len + 1600, any::<u32>()];
        (Just(data), wire_len)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn interpreter_agrees_with_pcap_offline_filter(
        program in valid_program(),
        packets in prop::collection::vec(packet(), 1..8),
    ) {
        prop_assert_eq!(program.validate(), Ok(()));
        for (data, wire_len) in &packets {
            let ours = program.run(data, *wire_len);
            let libpcap = libpcap_filter(&program, data, *wire_len, data.len() as u32)
                .expect("a valid program is safe for libpcap");
            prop_assert_eq!(ours, libpcap, "program:\n{}", program);
        }
    }
}

/// Hand-picked corners, each against libpcap.
#[test]
fn corner_cases_agree_with_libpcap() {
    use opcode::*;
    let x_then = |x: u32, op: u16| {
        Program::new(vec![
            Insn::stmt(LD_IMM, 0x1234_5678),
            Insn::stmt(LDX_IMM, x),
            Insn::stmt(op, 0),
            Insn::stmt(RET_A, 0),
        ])
    };
    let k_then = |op: u16, k: u32| {
        Program::new(vec![
            Insn::stmt(LD_IMM, 0x1234_5678),
            Insn::stmt(op, k),
            Insn::stmt(RET_A, 0),
        ])
    };
    let mut programs = Vec::new();
    for shift in [0, 1, 31, 32, 33, 63, 64, u32::MAX] {
        for op in [LSH_X, RSH_X] {
            programs.push(x_then(shift, op));
        }
        for op in [LSH_K, RSH_K] {
            programs.push(k_then(op, shift));
        }
    }
    for op in [DIV_X, MOD_X] {
        programs.push(x_then(0, op));
        programs.push(x_then(7, op));
    }
    programs.push(k_then(NEG, 0));
    programs.push(k_then(MUL_K, 0xffff_ffff));
    programs.push(k_then(SUB_K, 0x2000_0000));
    for k in [
        0,
        1,
        3,
        4,
        13,
        SKF_AD_OFF,
        SKF_AD_OFF + 0x2c,
        SKF_AD_OFF + 0x30,
    ] {
        for op in [LD_W_ABS, LD_H_ABS, LD_B_ABS, LDX_MSH] {
            programs.push(Program::new(vec![Insn::stmt(op, k), Insn::stmt(RET_K, 1)]));
        }
        for op in [LD_W_IND, LD_H_IND, LD_B_IND] {
            programs.push(Program::new(vec![
                Insn::stmt(LDX_IMM, 2),
                Insn::stmt(op, k),
                Insn::stmt(RET_A, 0),
            ]));
        }
    }
    programs.push(Program::new(vec![
        Insn::stmt(LD_LEN, 0),
        Insn::stmt(LDX_LEN, 0),
        Insn::stmt(ADD_X, 0),
        Insn::stmt(RET_A, 0),
    ]));
    let packets: [&[u8]; 4] = [&[], &[0xab], &[1, 2, 3, 4, 5], &[0x45; 20]];
    for program in &programs {
        for packet in packets {
            for wire_len in [packet.len() as u32, 1500] {
                let ours = program.run(packet, wire_len);
                let libpcap =
                    libpcap_filter(program, packet, wire_len, packet.len() as u32).unwrap();
                assert_eq!(ours, libpcap, "packet {packet:?}, program:\n{program}");
            }
        }
    }
}
