//! `Program::validate`: each rule, with the message a user sees.

use trawl_bpf::{Insn, InsnProblem, MAX_INSNS, Program, ValidateError, opcode::*};

fn ret() -> Insn {
    Insn::stmt(RET_K, 262_144)
}

/// `ip` on Ethernet, as `tcpdump -d ip` prints it.
fn ip_filter() -> Program {
    Program::new(vec![
        Insn::stmt(LD_H_ABS, 12),
        Insn::jump(JEQ_K, 0x800, 0, 1),
        Insn::stmt(RET_K, 262_144),
        Insn::stmt(RET_K, 0),
    ])
}

fn message(program: &Program) -> String {
    program.validate().expect_err("must be refused").to_string()
}

#[test]
fn accepts_a_compiled_filter() {
    assert_eq!(ip_filter().validate(), Ok(()));
}

#[test]
fn refuses_a_jump_past_the_end() {
    let mut insns = vec![Insn::stmt(LD_IMM, 1); 11];
    insns[7] = Insn::jump(JEQ_K, 1, 32, 0);
    insns.push(ret());
    let program = Program::new(insns);
    assert_eq!(
        message(&program),
        "instruction 7 (jeq): jump target 40 is past the end of a 12-instruction program"
    );
    let err = program.validate().unwrap_err();
    assert_eq!(err.index(), Some(7));
    assert_eq!(
        err.problem(),
        Some(InsnProblem::JumpPastEnd {
            target: 40,
            len: 12
        })
    );
}

#[test]
fn refuses_a_false_branch_past_the_end_and_a_ja_past_the_end() {
    let program = Program::new(vec![Insn::jump(JGT_X, 0, 0, 2), ret()]);
    assert_eq!(
        message(&program),
        "instruction 0 (jgt): jump target 3 is past the end of a 2-instruction program"
    );
    let program = Program::new(vec![Insn::stmt(JA, 1), ret()]);
    assert_eq!(
        message(&program),
        "instruction 0 (ja): jump target 2 is past the end of a 2-instruction program"
    );
    let program = Program::new(vec![Insn::stmt(JA, u32::MAX >> 1), ret()]);
    assert!(message(&program).contains("jump target 2147483648 is past the end"));
}

#[test]
fn refuses_a_jump_to_the_last_instruction_only_when_it_is_past_it() {
    let program = Program::new(vec![Insn::jump(JEQ_K, 0, 1, 0), Insn::stmt(TAX, 0), ret()]);
    assert_eq!(program.validate(), Ok(()));
}

#[test]
fn refuses_a_backward_jump() {
    let program = Program::new(vec![ret(), Insn::stmt(JA, (-2i32) as u32), ret()]);
    let text = message(&program);
    assert!(
        text.starts_with("instruction 1 (ja): backward jump (offset -2)"),
        "{text}"
    );
}

#[test]
fn refuses_a_program_without_a_final_return() {
    let program = Program::new(vec![Insn::stmt(LD_H_ABS, 12), Insn::stmt(TAX, 0)]);
    assert_eq!(
        message(&program),
        "instruction 1 (tax): the last instruction must be a return (ret)"
    );
}

#[test]
fn refuses_an_empty_program() {
    assert_eq!(Program::default().validate(), Err(ValidateError::Empty));
}

#[test]
fn refuses_more_than_4096_instructions() {
    let mut insns = vec![Insn::stmt(LD_IMM, 0); MAX_INSNS];
    insns.push(ret());
    let program = Program::new(insns);
    assert_eq!(
        message(&program),
        "program has 4097 instructions; the limit is 4096 (BPF_MAXINSNS)"
    );
    let mut insns = vec![Insn::stmt(LD_IMM, 0); MAX_INSNS - 1];
    insns.push(ret());
    assert_eq!(Program::new(insns).validate(), Ok(()));
}

#[test]
fn refuses_unknown_opcodes() {
    // LD|H|IMM, RET|X, NEG|X, JA|X, LDX|B|ABS, a code with high bits set.
    for (code, hex) in [
        (0x08, "0x0008"),
        (0x0e, "0x000e"),
        (0x8c, "0x008c"),
        (0x0d, "0x000d"),
        (0x31, "0x0031"),
        (0x1006, "0x1006"),
    ] {
        let program = Program::new(vec![Insn::stmt(code, 0), ret()]);
        assert_eq!(
            message(&program),
            format!("instruction 0 (unimp): unknown opcode {hex}")
        );
    }
}

#[test]
fn refuses_scratch_memory_index_16() {
    for code in [ST_MEM, STX_MEM, LD_MEM, LDX_MEM] {
        let program = Program::new(vec![Insn::stmt(LD_IMM, 0), Insn::stmt(code, 16), ret()]);
        let mnemonic = Insn::stmt(code, 16).mnemonic();
        assert_eq!(
            message(&program),
            format!(
                "instruction 1 ({mnemonic}): scratch memory index 16 is out of range (M[0] to M[15])"
            )
        );
        let program = Program::new(vec![Insn::stmt(ST_MEM, 15), Insn::stmt(code, 15), ret()]);
        assert_eq!(program.validate(), Ok(()));
    }
}

#[test]
fn refuses_reading_scratch_memory_before_storing_it() {
    let program = Program::new(vec![Insn::stmt(LD_MEM, 3), ret()]);
    assert_eq!(
        message(&program),
        "instruction 0 (ld): reads M[3] before it is stored on every path to here \
         (the Linux kernel refuses reads of uninitialised scratch memory)"
    );
    // Stored on one branch only.
    let program = Program::new(vec![
        Insn::jump(JEQ_K, 0, 0, 1),
        Insn::stmt(ST_MEM, 3),
        Insn::stmt(LDX_MEM, 3),
        ret(),
    ]);
    assert_eq!(program.validate().unwrap_err().index(), Some(2));
    // Stored on both branches.
    let program = Program::new(vec![
        Insn::jump(JEQ_K, 0, 0, 2),
        Insn::stmt(ST_MEM, 3),
        Insn::stmt(JA, 1),
        Insn::stmt(STX_MEM, 3),
        Insn::stmt(LD_MEM, 3),
        ret(),
    ]);
    assert_eq!(program.validate(), Ok(()));
}

#[test]
fn refuses_constant_division_and_modulo_by_zero() {
    let program = Program::new(vec![Insn::stmt(DIV_K, 0), ret()]);
    assert_eq!(
        message(&program),
        "instruction 0 (div): division by the constant 0"
    );
    let program = Program::new(vec![Insn::stmt(MOD_K, 0), ret()]);
    assert_eq!(
        message(&program),
        "instruction 0 (mod): modulo by the constant 0"
    );
    // By X is a run-time matter (the packet is rejected).
    let program = Program::new(vec![Insn::stmt(DIV_X, 0), Insn::stmt(MOD_X, 0), ret()]);
    assert_eq!(program.validate(), Ok(()));
}

#[test]
fn accepts_every_known_opcode() {
    for code in ALL {
        let k = if matches!(code, DIV_K | MOD_K) { 1 } else { 0 };
        let program = Program::new(vec![
            Insn::stmt(ST_MEM, 0),
            Insn::jump(code, k, 0, 0),
            ret(),
        ]);
        assert_eq!(program.validate(), Ok(()), "{code:#x}");
    }
}
