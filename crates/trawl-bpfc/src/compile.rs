//! `compile`: tcpdump expression → classic BPF, by libpcap.

use std::ffi::{CString, c_int};

use trawl_bpf::Program;

use crate::ffi;

/// Why an expression did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// libpcap refused the expression (syntax, unknown name, not valid for this link type, …).
    #[error("cannot compile filter {expr:?} for link type {link_type}: {message}")]
    Libpcap {
        /// The expression as given.
        expr: String,
        /// The link type it was compiled for (LINKTYPE_ value).
        link_type: u32,
        /// libpcap's error message.
        message: String,
    },
    /// The expression contains a NUL byte, which cannot be passed to C.
    #[error("filter {expr:?} contains a NUL byte at offset {offset}")]
    NulByte {
        /// The expression as given.
        expr: String,
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The link type or snap length does not fit libpcap's `int`, or libpcap could not
    /// allocate a handle.
    #[error("cannot compile filter {expr:?}: {message}")]
    Setup {
        /// The expression as given.
        expr: String,
        /// What went wrong.
        message: String,
    },
}

impl CompileError {
    /// The expression that failed to compile.
    pub fn expr(&self) -> &str {
        match self {
            CompileError::Libpcap { expr, .. }
            | CompileError::NulByte { expr, .. }
            | CompileError::Setup { expr, .. } => expr,
        }
    }

    /// The reason, without the expression (libpcap's message where it gave one).
    pub fn message(&self) -> String {
        match self {
            CompileError::Libpcap { message, .. } | CompileError::Setup { message, .. } => {
                message.clone()
            }
            CompileError::NulByte { offset, .. } => format!("NUL byte at offset {offset}"),
        }
    }
}

/// Compiles a tcpdump filter expression for captures of `link_type` (a `LINKTYPE_*` value as
/// stored in pcap/pcapng files: 1 Ethernet, 113 Linux cooked, 101 raw IP, …) with libpcap's
/// `pcap_compile` on a dead handle; `snaplen` is the accept value of the program's returns;
/// `optimize` as in `tcpdump` (off with `-O`). The netmask is unknown, so `ip broadcast` does
/// not compile.
///
/// The result is what libpcap produced, unchecked: call [`Program::validate`] before sending it
/// to a kernel (libpcap emits backward jumps for `protochain`, which the kernel refuses). Calls
/// are serialised process-wide.
pub fn compile(
    expr: &str,
    link_type: u32,
    snaplen: u32,
    optimize: bool,
) -> Result<Program, CompileError> {
    let setup_error = |message: String| CompileError::Setup {
        expr: expr.to_owned(),
        message,
    };
    let c_expr = CString::new(expr).map_err(|e| CompileError::NulByte {
        expr: expr.to_owned(),
        offset: e.nul_position(),
    })?;
    let dlt = c_int::try_from(linktype_to_dlt(link_type))
        .map_err(|_| setup_error(format!("link type {link_type} is out of range")))?;
    let snaplen = c_int::try_from(snaplen)
        .map_err(|_| setup_error(format!("snap length {snaplen} is out of range")))?;
    match ffi::compile(&c_expr, dlt, snaplen, optimize) {
        Ok(insns) => Ok(Program::new(insns)),
        Err(Some(message)) => Err(CompileError::Libpcap {
            expr: expr.to_owned(),
            link_type,
            message,
        }),
        Err(None) => Err(setup_error(format!(
            "libpcap could not open a handle for link type {link_type}"
        ))),
    }
}

/// The `LINKTYPE_*` value for one of libpcap's link-type names (`"EN10MB"`, `"LINUX_SLL"`,
/// `"RAW"`: the `DLT_` names without the prefix, any case), as `tcpdump -y` takes them.
pub fn linktype_from_name(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let dlt = ffi::dlt_from_name(&c_name)?;
    Some(dlt_to_linktype(dlt as u32))
}

/// Compiles a filter expression for one capture file exactly as `tcpdump -r FILE EXPR` does:
/// on libpcap's handle for that file (its link type and snap length) rather than a dead handle.
///
/// The two differ where libpcap's code generator asks whether it is reading a file: for
/// `DLT_NULL`/`DLT_LOOP` captures, `ip6` on a dead handle tests the running system's `AF_INET6`
/// (10 on Linux) while on a file it tests the BSD and macOS values (24, 28, 30) that such
/// captures carry. Use this for offline filtering that must agree with tcpdump.
pub fn compile_for_capture(
    expr: &str,
    path: &std::path::Path,
    optimize: bool,
) -> Result<Program, CompileError> {
    use std::os::unix::ffi::OsStrExt;
    let c_expr = CString::new(expr).map_err(|e| CompileError::NulByte {
        expr: expr.to_owned(),
        offset: e.nul_position(),
    })?;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| CompileError::Setup {
        expr: expr.to_owned(),
        message: format!("{}: path contains a NUL byte", path.display()),
    })?;
    ffi::compile_for_file(&c_path, &c_expr, optimize)
        .map(Program::new)
        .map_err(|message| CompileError::Setup {
            expr: expr.to_owned(),
            message: format!("{}: {message}", path.display()),
        })
}

/// Compiles a filter expression for packets of `link_type` exactly as `tcpdump -r` does for a
/// capture of that link type (see [`compile_for_capture`]), without needing the file: libpcap
/// opens an in-memory capture header instead. This is the form for offline filtering of files and
/// stored captures; [`compile`] (a dead handle) is the form for live Linux sockets.
pub fn compile_offline(
    expr: &str,
    link_type: u32,
    snaplen: u32,
    optimize: bool,
) -> Result<Program, CompileError> {
    let c_expr = CString::new(expr).map_err(|e| CompileError::NulByte {
        expr: expr.to_owned(),
        offset: e.nul_position(),
    })?;
    // The header holds the file's LINKTYPE value; libpcap maps it to its DLT itself.
    ffi::compile_as_savefile(link_type, snaplen, &c_expr, optimize)
        .map(Program::new)
        .map_err(|message| CompileError::Libpcap {
            expr: expr.to_owned(),
            link_type,
            message,
        })
}

/// `LINKTYPE_*` values (in files) whose `DLT_*` value (in libpcap's API) differs on Linux.
/// All other link types use the same number for both.
const LINKTYPE_DLT: [(u32, u32); 5] = [
    (100, 11), // ATM_RFC1483
    (101, 12), // RAW
    (102, 15), // SLIP_BSDOS
    (103, 16), // PPP_BSDOS
    (106, 19), // ATM_CLIP
];

pub(crate) fn linktype_to_dlt(link_type: u32) -> u32 {
    LINKTYPE_DLT
        .iter()
        .find(|(lt, _)| *lt == link_type)
        .map_or(link_type, |(_, dlt)| *dlt)
}

pub(crate) fn dlt_to_linktype(dlt: u32) -> u32 {
    LINKTYPE_DLT
        .iter()
        .find(|(_, d)| *d == dlt)
        .map_or(dlt, |(lt, _)| *lt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_type_mapping_round_trips() {
        for lt in [0, 1, 9, 100, 101, 104, 107, 113, 228, 276] {
            assert_eq!(dlt_to_linktype(linktype_to_dlt(lt)), lt);
        }
        assert_eq!(linktype_to_dlt(101), 12);
        assert_eq!(linktype_to_dlt(1), 1);
    }
}
