//! A tcpdump filter expression, compiled by libpcap once per link type (as `tcpdump -r` compiles it
//! for a file of that link type: `compile_offline`) and run by trawl's own
//! BPF interpreter on each packet.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use trawl_bpf::Program;

/// The snap length the programs are compiled with; any non-zero verdict means "keep".
const SNAPLEN: u32 = 262_144;

pub struct Filter {
    expr: String,
    programs: HashMap<u32, Program>,
}

impl Filter {
    /// Checks the expression now (for Ethernet), so a typo fails before any file is read.
    pub fn new(expr: &str) -> Result<Filter> {
        let mut f = Filter {
            expr: expr.to_string(),
            programs: HashMap::new(),
        };
        f.program(1)?;
        Ok(f)
    }

    pub fn from_option(expr: Option<&str>) -> Result<Option<Filter>> {
        expr.map(Filter::new).transpose()
    }

    fn program(&mut self, link_type: u32) -> Result<&Program> {
        if !self.programs.contains_key(&link_type) {
            let p =
                trawl_bpfc::compile_offline(&self.expr, link_type, SNAPLEN, true).map_err(|e| {
                    anyhow!(
                        "bad filter: {} (filter '{}', link type {})",
                        e.message(),
                        self.expr,
                        trawl_decode::linktype::name(link_type).unwrap_or("unknown")
                    )
                })?;
            // No `validate` here: libpcap emits backward jumps for `protochain`, which a kernel
            // refuses but the interpreter runs (with a bound), and `run` is total on any program.
            self.programs.insert(link_type, p);
        }
        Ok(&self.programs[&link_type])
    }

    /// True if the packet passes.
    pub fn matches(&mut self, link_type: u32, data: &[u8], wire_len: u32) -> Result<bool> {
        Ok(self.program(link_type)?.run(data, wire_len) != 0)
    }
}

/// True if there is no filter or the packet passes it.
pub fn keep(
    filter: &mut Option<Filter>,
    link_type: u32,
    data: &[u8],
    wire_len: u32,
) -> Result<bool> {
    match filter {
        None => Ok(true),
        Some(f) => f.matches(link_type, data, wire_len),
    }
}
