//! The JSON wire form: `[[code, jt, jf, k], ...]`.

use trawl_bpf::{Insn, Program, opcode::*};

#[test]
fn serialises_as_an_array_of_four_tuples() {
    let program = Program::new(vec![
        Insn::stmt(LD_H_ABS, 12),
        Insn::jump(JEQ_K, 0x800, 0, 1),
        Insn::stmt(RET_K, 262_144),
        Insn::stmt(RET_K, 0),
    ]);
    let json = serde_json::to_string(&program).unwrap();
    assert_eq!(json, "[[40,0,0,12],[21,0,1,2048],[6,0,0,262144],[6,0,0,0]]");
    let back: Program = serde_json::from_str(&json).unwrap();
    assert_eq!(back, program);
}

#[test]
fn refuses_malformed_wire_forms() {
    for bad in [
        "[[40,0,0]]",
        "[[40,0,0,12,1]]",
        "[[70000,0,0,0]]",
        "[[6,256,0,0]]",
        "[[6,0,0,-1]]",
        "[[6,0,0,4294967296]]",
        "[{\"code\":6,\"jt\":0,\"jf\":0,\"k\":0}]",
        "{}",
    ] {
        assert!(serde_json::from_str::<Program>(bad).is_err(), "{bad}");
    }
    let empty: Program = serde_json::from_str("[]").unwrap();
    assert!(empty.is_empty());
}
