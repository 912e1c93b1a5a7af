//! `Program::run` on programs `validate` refuses: never a panic, never an endless loop, and 0.
//! (Agreement with libpcap on valid programs is tested in trawl-bpfc, against libpcap itself.)

use proptest::prelude::*;
use trawl_bpf::{Insn, Program, opcode::*};

fn any_insn() -> impl Strategy<Value = Insn> {
    let code = prop_oneof![
        3 => proptest::sample::select(ALL.to_vec()),
        1 => any::<u16>(),
    ];
    let k = prop_oneof![
        0u32..64,
        any::<u32>(),
        (0u32..8).prop_map(|b| 0u32.wrapping_sub(b))
    ];
    (code, any::<u8>(), any::<u8>(), k).prop_map(|(code, jt, jf, k)| Insn { code, jt, jf, k })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_program_ends_without_panicking(
        insns in prop::collection::vec(any_insn(), 0..64),
        packet in prop::collection::vec(any::<u8>(), 0..64),
        wire_len in any::<u32>(),
    ) {
        let program = Program::new(insns);
        let _ = program.run(&packet, wire_len);
    }
}

#[test]
fn invalid_constructs_reject() {
    let cases = [
        vec![],
        vec![Insn::stmt(LD_IMM, 1)],
        vec![Insn::stmt(0x08, 0), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(ST_MEM, 16), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(LD_MEM, 99), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(DIV_K, 0), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(MOD_K, 0), Insn::stmt(RET_K, 1)],
        vec![Insn::jump(JEQ_K, 0, 5, 5), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(JA, 7), Insn::stmt(RET_K, 1)],
        vec![Insn::stmt(JA, (-5i32) as u32), Insn::stmt(RET_K, 1)],
    ];
    for insns in cases {
        let program = Program::new(insns);
        assert_eq!(program.run(&[1, 2, 3], 3), 0, "{program}");
    }
}

#[test]
fn an_endless_backward_loop_is_cut_short() {
    // ja -1: jumps to itself for ever in libpcap.
    let program = Program::new(vec![Insn::stmt(JA, u32::MAX), Insn::stmt(RET_K, 1)]);
    assert_eq!(program.run(&[0; 100], 100), 0);
}

#[test]
fn a_bounded_backward_loop_runs_like_protochain() {
    // Counts X down from 5 to 0 with a backward jump, adding 1 to M[0] each time; returns M[0].
    let program = Program::new(vec![
        Insn::stmt(LDX_IMM, 5),         // 0: X = 5 (A = 0)
        Insn::stmt(ST_MEM, 0),          // 1: M[0] = A
        Insn::stmt(TXA, 0),             // 2: A = X
        Insn::jump(JEQ_K, 0, 5, 0),     // 3: A == 0 → 9
        Insn::stmt(SUB_K, 1),           // 4: A -= 1
        Insn::stmt(TAX, 0),             // 5: X = A
        Insn::stmt(LD_MEM, 0),          // 6: A = M[0]
        Insn::stmt(ADD_K, 1),           // 7: A += 1
        Insn::stmt(JA, (-8i32) as u32), // 8: → 1
        Insn::stmt(LD_MEM, 0),          // 9: A = M[0]
        Insn::stmt(RET_A, 0),           // 10
    ]);
    assert_eq!(program.run(&[], 0), 5);
}
