//! A job's expression, compiled once per link type, and where each program must run to give
//! tcpdump's answer on a live Linux interface.
//!
//! The server compiles with libpcap on a dead handle ([`crate::retrieve::compile`]). Two kinds of
//! expression do not mean on a dead handle what they mean on a live Linux socket
//! (`../shared/DESIGN.md`, "Filters"):
//!
//! - **`vlan`**: the dead-handle program reads the 802.1Q tag from the frame's bytes, but the
//!   kernel strips an offloaded tag *before* the socket filter runs (it travels beside the
//!   frame), so in the kernel the program misses tagged traffic. libpcap's live form reads the
//!   tag with Linux ancillary loads, which libpcap emits only for its own live handles. The
//!   agent re-inserts offloaded tags into the frames it reads from the ring, as libpcap does, so
//!   a `vlan` expression runs **in userspace** on the re-tagged frame (trawl's interpreter,
//!   [`FilterMode::Userspace`]), with a kernel program that accepts everything.
//! - **`inbound` / `outbound` / `ifindex`**: libpcap's dead-handle compile on Linux emits the
//!   *same* ancillary loads (`SKF_AD_PKTTYPE`, `SKF_AD_IFINDEX`) as its live compile, because a
//!   dead handle is not a savefile; the kernel has that data for every packet a packet socket
//!   sees, so these programs run correctly **in the kernel** (tested against tcpdump with the
//!   same expression). Userspace has no such data (trawl's interpreter rejects ancillary loads,
//!   as libpcap's does), so an expression needing both — `vlan` and a direction — is refused
//!   with the reason.

use serde::{Deserialize, Serialize};
use trawl_bpf::{Program, SKF_AD_OFF, opcode};

use crate::retrieve::{CompileRequest, RetrieveError, compile};

/// Where an agent runs a job's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// Attached to the socket (`SO_ATTACH_FILTER`): the kernel drops what it rejects.
    Kernel,
    /// Run by the agent on each frame after re-inserting offloaded VLAN tags; the kernel program
    /// accepts everything (`ret #snaplen`).
    Userspace,
}

impl FilterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterMode::Kernel => "kernel",
            FilterMode::Userspace => "userspace",
        }
    }

    pub fn parse(s: &str) -> Option<FilterMode> {
        match s {
            "kernel" => Some(FilterMode::Kernel),
            "userspace" => Some(FilterMode::Userspace),
            _ => None,
        }
    }
}

/// A job's program for one link type, and where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFilter {
    pub mode: FilterMode,
    pub program: Program,
}

/// Whether the expression uses the `vlan` keyword (libpcap's keywords are whole words; a host
/// name such as `vlan.example.net` is one word with dots, and is not the keyword).
pub fn uses_vlan(expression: &str) -> bool {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')))
        .any(|word| word.eq_ignore_ascii_case("vlan"))
}

/// The Linux ancillary data the program loads (`SKF_AD_*`), named as the expression keyword
/// that needs it, or `None` if it reads only packet bytes.
pub fn ancillary_use(program: &Program) -> Option<&'static str> {
    program.insns().iter().find_map(|insn| {
        let absolute_load = matches!(
            insn.code,
            opcode::LD_W_ABS | opcode::LD_H_ABS | opcode::LD_B_ABS
        );
        if !absolute_load || insn.k < SKF_AD_OFF {
            return None;
        }
        Some(match insn.k - SKF_AD_OFF {
            4 => "inbound/outbound (the packet's direction)",
            8 => "ifindex (the interface index)",
            44 | 48 | 60 => "the VLAN tag",
            _ => "Linux packet metadata",
        })
    })
}

/// Compiles `expression` for a live capture of `link_type` with snap length `snaplen`, checks
/// the program, and decides where it runs.
pub fn compile_for_job(
    expression: &str,
    link_type: u32,
    snaplen: u32,
) -> Result<JobFilter, RetrieveError> {
    let program = compile(&CompileRequest {
        expression: expression.to_owned(),
        link_type,
        snaplen: Some(snaplen),
    })
    .map_err(|e| match e {
        RetrieveError::BadFilter { link_type, message } => RetrieveError::BadFilter {
            link_type,
            message: with_hint(expression, message),
        },
        other => other,
    })?;
    if !uses_vlan(expression) {
        return Ok(JobFilter {
            mode: FilterMode::Kernel,
            program,
        });
    }
    if let Some(what) = ancillary_use(&program) {
        return Err(RetrieveError::BadFilter {
            link_type,
            message: format!(
                "this expression cannot be run correctly: `vlan` must run in the agent (the \
                 kernel strips offloaded VLAN tags before a socket filter sees the frame), but \
                 it also needs {what}, which only the kernel has. Capture with the `vlan …` \
                 part alone, or leave out `vlan` (the kernel then sees frames without their \
                 offloaded tags)"
            ),
        });
    }
    Ok(JobFilter {
        mode: FilterMode::Userspace,
        program,
    })
}

/// libpcap's message, with what to do when it refuses a Linux-only keyword.
fn with_hint(expression: &str, message: String) -> String {
    let lower = expression.to_ascii_lowercase();
    let linux_only = ["inbound", "outbound", "ifindex"].iter().any(|k| {
        lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == *k)
    });
    if linux_only && message.contains("not supported") {
        format!(
            "{message} (this server's libpcap cannot compile direction or interface-index tests \
             for live Linux sockets; capture without them and select afterwards with \
             `trawl read -f`)"
        )
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_is_found_as_a_word_only() {
        assert!(uses_vlan("vlan"));
        assert!(uses_vlan("vlan 100 and icmp"));
        assert!(uses_vlan("icmp or (VLAN and udp)"));
        assert!(uses_vlan("not vlan"));
        assert!(!uses_vlan("host vlan.example.net"));
        assert!(!uses_vlan("icmp or tcp port 5001"));
        assert!(!uses_vlan("host vlan-gw"));
    }

    #[test]
    fn plain_expressions_run_in_the_kernel() {
        let f = compile_for_job("icmp or tcp port 5001", 1, 262_144).unwrap();
        assert_eq!(f.mode, FilterMode::Kernel);
        assert_eq!(ancillary_use(&f.program), None);
        assert!(f.program.insns().iter().any(|i| i.k == 262_144));
    }

    #[test]
    fn vlan_runs_in_userspace_with_the_byte_reading_program() {
        let f = compile_for_job("vlan 100 and icmp", 1, 1500).unwrap();
        assert_eq!(f.mode, FilterMode::Userspace);
        // The dead-handle form: the tag is read at offset 12 of the frame.
        assert!(
            f.program
                .insns()
                .iter()
                .any(|i| i.code == opcode::LD_H_ABS && i.k == 12),
            "{}",
            f.program.listing()
        );
        assert_eq!(ancillary_use(&f.program), None);
    }

    #[test]
    fn direction_and_ifindex_run_in_the_kernel_with_ancillary_loads() {
        // libpcap's dead-handle compile on Linux emits the live form (SKF_AD_PKTTYPE,
        // SKF_AD_IFINDEX): the kernel has that data for every packet.
        for (expr, what) in [
            ("inbound", "inbound/outbound"),
            ("outbound and icmp", "inbound/outbound"),
            ("ifindex 3", "ifindex"),
        ] {
            let f = compile_for_job(expr, 1, 262_144).unwrap();
            assert_eq!(f.mode, FilterMode::Kernel, "{expr}");
            assert!(
                ancillary_use(&f.program).is_some_and(|a| a.starts_with(what)),
                "{expr}: {}",
                f.program.listing()
            );
        }
    }

    #[test]
    fn vlan_with_a_direction_is_refused_with_a_reason() {
        let e = compile_for_job("vlan and inbound", 1, 262_144).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RetrieveError::BadFilter { .. }), "{e:?}");
        assert!(text.contains("inbound/outbound"), "{text}");
        assert!(text.contains("strips offloaded VLAN tags"), "{text}");
    }

    #[test]
    fn bad_expressions_carry_libpcaps_message() {
        let e = compile_for_job("tcp port eighty", 1, 262_144).unwrap_err();
        assert!(matches!(e, RetrieveError::BadFilter { .. }), "{e:?}");
        assert!(e.to_string().contains("eighty"), "{e}");
    }
}
