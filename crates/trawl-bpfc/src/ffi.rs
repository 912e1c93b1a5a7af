//! Every call into libpcap, and the only `unsafe` code of the crate.
//!
//! Hand-written declarations for the few libpcap 1.x functions we use (their C signatures are
//! in `pcap/pcap.h` and `pcap/bpf.h`). Rules kept here: no pointer owned by libpcap outlives the
//! function that obtained it (everything is copied into Rust values before the handle is closed
//! or the next packet is read), every handle is closed by a guard's `Drop`, and calls into
//! libpcap's non-reentrant parts (the filter compiler, `bpf_image`'s static buffer) hold
//! [`LIBPCAP_LOCK`].

use std::ffi::{CStr, c_char, c_int, c_long, c_uint, c_void};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use trawl_bpf::Insn;

/// libpcap's compiler used global state (lexer, parser) before 1.8 and `bpf_image` still
/// formats into a static buffer: one call at a time, process-wide.
static LIBPCAP_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // A panic while holding the lock leaves no libpcap state half-changed that we rely on.
    LIBPCAP_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

mod sys {
    use super::*;

    /// `pcap_t`, opaque.
    #[repr(C)]
    pub struct Pcap {
        _private: [u8; 0],
    }

    /// `struct bpf_insn`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct BpfInsn {
        pub code: u16,
        pub jt: u8,
        pub jf: u8,
        pub k: u32,
    }

    /// `struct bpf_program`.
    #[repr(C)]
    pub struct BpfProgram {
        pub bf_len: c_uint,
        pub bf_insns: *mut BpfInsn,
    }

    /// `struct timeval` (glibc/musl on Linux: two longs).
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct Timeval {
        pub tv_sec: c_long,
        pub tv_usec: c_long,
    }

    /// `struct pcap_pkthdr`.
    #[repr(C)]
    pub struct PktHdr {
        pub ts: Timeval,
        pub caplen: u32,
        pub len: u32,
    }

    pub const PCAP_ERRBUF_SIZE: usize = 256;
    pub const PCAP_TSTAMP_PRECISION_NANO: c_uint = 1;
    pub const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

    #[link(name = "pcap")]
    unsafe extern "C" {
        pub fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut Pcap;
        pub fn pcap_compile(
            p: *mut Pcap,
            fp: *mut BpfProgram,
            expr: *const c_char,
            optimize: c_int,
            netmask: u32,
        ) -> c_int;
        pub fn pcap_geterr(p: *mut Pcap) -> *mut c_char;
        pub fn pcap_freecode(fp: *mut BpfProgram);
        pub fn pcap_close(p: *mut Pcap);
        pub fn pcap_offline_filter(
            fp: *const BpfProgram,
            h: *const PktHdr,
            pkt: *const u8,
        ) -> c_int;
        pub fn pcap_open_offline_with_tstamp_precision(
            fname: *const c_char,
            precision: c_uint,
            errbuf: *mut c_char,
        ) -> *mut Pcap;
        pub fn pcap_next_ex(p: *mut Pcap, h: *mut *mut PktHdr, data: *mut *const u8) -> c_int;
        pub fn pcap_datalink(p: *mut Pcap) -> c_int;
        pub fn pcap_snapshot(p: *mut Pcap) -> c_int;
        pub fn pcap_datalink_name_to_val(name: *const c_char) -> c_int;
        pub fn bpf_image(insn: *const BpfInsn, n: c_int) -> *mut c_char;
        pub fn pcap_fopen_offline(fp: *mut c_void, errbuf: *mut c_char) -> *mut Pcap;
        // From the C library: a read-only FILE over a memory buffer.
        pub fn fmemopen(buf: *mut c_void, size: usize, mode: *const c_char) -> *mut c_void;
    }
}

/// An open `pcap_t`, closed on drop.
struct Handle(NonNull<sys::Pcap>);

impl Handle {
    fn as_ptr(&self) -> *mut sys::Pcap {
        self.0.as_ptr()
    }

    /// libpcap's last error message for this handle, copied.
    fn last_error(&self) -> String {
        // SAFETY: the handle is open; pcap_geterr returns a pointer to a NUL-terminated buffer
        // inside the handle, which we copy before anything else touches the handle.
        unsafe { CStr::from_ptr(sys::pcap_geterr(self.as_ptr())) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from pcap_open_* and is closed exactly once, here.
        unsafe { sys::pcap_close(self.as_ptr()) }
    }
}

/// Compiles `expr` on a dead handle of link type `dlt` (a DLT_ value): the instructions, or
/// libpcap's error message. `None` as the error means libpcap could not allocate a handle.
pub(crate) fn compile(
    expr: &CStr,
    dlt: c_int,
    snaplen: c_int,
    optimize: bool,
) -> Result<Vec<Insn>, Option<String>> {
    let _guard = lock();
    // SAFETY: pcap_open_dead takes plain integers and returns an owned handle or NULL.
    let raw = unsafe { sys::pcap_open_dead(dlt, snaplen) };
    let handle = Handle(NonNull::new(raw).ok_or(None)?);
    compile_on(&handle, expr, optimize).map_err(Some)
}

/// Compiles `expr` on libpcap's handle for a capture file, as `tcpdump -r FILE EXPR` does.
pub(crate) fn compile_for_file(
    path: &CStr,
    expr: &CStr,
    optimize: bool,
) -> Result<Vec<Insn>, String> {
    let reader = OfflineReader::open(path)?;
    let _guard = lock();
    compile_on(&reader.handle, expr, optimize)
}

/// Compiles as `tcpdump -r` would for a capture of `dlt` and `snaplen`: on a savefile handle,
/// opened over an in-memory pcap file header (no packets), rather than a dead handle.
pub(crate) fn compile_as_savefile(
    dlt: u32,
    snaplen: u32,
    expr: &CStr,
    optimize: bool,
) -> Result<Vec<Insn>, String> {
    let mut header = [0u8; 24];
    header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    header[4..6].copy_from_slice(&2u16.to_ne_bytes());
    header[6..8].copy_from_slice(&4u16.to_ne_bytes());
    header[16..20].copy_from_slice(&snaplen.to_ne_bytes());
    header[20..24].copy_from_slice(&dlt.to_ne_bytes());
    let mut errbuf = [0 as c_char; sys::PCAP_ERRBUF_SIZE];
    let _guard = lock();
    // SAFETY: `header` outlives the FILE and the handle (both are closed by pcap_close when
    // `handle` drops at the end of this function, before `header`); the mode string is
    // NUL-terminated; errbuf has PCAP_ERRBUF_SIZE bytes.
    let handle = unsafe {
        let fp = sys::fmemopen(header.as_mut_ptr().cast(), header.len(), c"r".as_ptr());
        if fp.is_null() {
            return Err("fmemopen failed".into());
        }
        let raw = sys::pcap_fopen_offline(fp, errbuf.as_mut_ptr());
        match NonNull::new(raw) {
            Some(h) => Handle(h),
            None => {
                // pcap_fopen_offline leaves the FILE open on failure; it is a memory stream
                // with nothing to flush, and leaking it is the safe choice here.
                let bytes: Vec<u8> = errbuf
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                return Err(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    };
    compile_on(&handle, expr, optimize)
}

/// `pcap_compile` on an open handle; the caller holds LIBPCAP_LOCK.
fn compile_on(handle: &Handle, expr: &CStr, optimize: bool) -> Result<Vec<Insn>, String> {
    let mut program = sys::BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: the handle is open, `program` is a valid out-parameter, `expr` is NUL-terminated
    // and outlives the call; the caller holds LIBPCAP_LOCK.
    let status = unsafe {
        sys::pcap_compile(
            handle.as_ptr(),
            &mut program,
            expr.as_ptr(),
            c_int::from(optimize),
            sys::PCAP_NETMASK_UNKNOWN,
        )
    };
    if status != 0 {
        return Err(handle.last_error());
    }
    let insns = if program.bf_insns.is_null() || program.bf_len == 0 {
        Vec::new()
    } else {
        // SAFETY: on success libpcap filled bf_insns with bf_len instructions it owns until
        // pcap_freecode; we copy them out before freeing.
        let raw = unsafe { std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize) };
        raw.iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect()
    };
    // SAFETY: `program` was filled by a successful pcap_compile and is freed once.
    unsafe { sys::pcap_freecode(&mut program) };
    Ok(insns)
}

fn to_sys(insns: &[Insn]) -> Vec<sys::BpfInsn> {
    insns
        .iter()
        .map(|i| sys::BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// `pcap_offline_filter` on `packet[..caplen]`.
///
/// The caller guarantees what libpcap does not check: `caplen <= packet.len()`, and the program
/// is one libpcap's interpreter can run without reading outside it (see
/// `crate::check_for_libpcap`): known opcodes, jump targets inside the program, memory
/// indexes < 16, no constant division by zero, no falling off the end.
pub(crate) fn offline_filter(insns: &[Insn], packet: &[u8], wire_len: u32, caplen: u32) -> u32 {
    debug_assert!(caplen as usize <= packet.len());
    let mut code = to_sys(insns);
    let program = sys::BpfProgram {
        bf_len: code.len() as c_uint,
        bf_insns: code.as_mut_ptr(),
    };
    let header = sys::PktHdr {
        ts: sys::Timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        caplen,
        len: wire_len,
    };
    // SAFETY: `program` points at `code`, alive for the call; the checked program only reads
    // its own instructions, M[0..16] and packet[..caplen] (libpcap bounds-checks loads against
    // caplen, which is within `packet`). pcap_offline_filter keeps no pointer after returning.
    let verdict = unsafe { sys::pcap_offline_filter(&program, &header, packet.as_ptr()) };
    verdict as u32
}

/// libpcap's own listing line for one instruction (`bpf_image`), for tests of ours.
pub(crate) fn image(insn: &Insn, index: usize) -> String {
    let raw = to_sys(std::slice::from_ref(insn));
    let index = c_int::try_from(index).unwrap_or(c_int::MAX);
    let _guard = lock();
    // SAFETY: bpf_image reads one instruction and returns a static NUL-terminated buffer,
    // which we copy while holding the lock that serialises every bpf_image call.
    unsafe { CStr::from_ptr(sys::bpf_image(raw.as_ptr(), index)) }
        .to_string_lossy()
        .into_owned()
}

/// libpcap's DLT_ value for a link-type name (`"EN10MB"`, `"LINUX_SLL"`), if it knows it.
pub(crate) fn dlt_from_name(name: &CStr) -> Option<c_int> {
    // SAFETY: `name` is NUL-terminated; the function only reads it (a table lookup).
    let value = unsafe { sys::pcap_datalink_name_to_val(name.as_ptr()) };
    (value >= 0).then_some(value)
}

/// One record as libpcap returned it, copied.
pub(crate) struct RawRecord {
    pub secs: i64,
    pub nanos: i64,
    pub caplen: u32,
    pub wire_len: u32,
    pub data: Vec<u8>,
}

/// A capture file opened by libpcap with nanosecond timestamps.
pub(crate) struct OfflineReader {
    handle: Handle,
}

impl OfflineReader {
    pub fn open(path: &CStr) -> Result<Self, String> {
        let mut errbuf = [0 as c_char; sys::PCAP_ERRBUF_SIZE];
        // SAFETY: `path` is NUL-terminated; errbuf has PCAP_ERRBUF_SIZE bytes as required.
        let raw = unsafe {
            sys::pcap_open_offline_with_tstamp_precision(
                path.as_ptr(),
                sys::PCAP_TSTAMP_PRECISION_NANO,
                errbuf.as_mut_ptr(),
            )
        };
        match NonNull::new(raw) {
            Some(handle) => Ok(OfflineReader {
                handle: Handle(handle),
            }),
            None => {
                // libpcap NUL-terminates errbuf; be safe if it did not.
                let bytes: Vec<u8> = errbuf
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                Err(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }

    /// The handle's link type (a DLT_ value).
    pub fn datalink(&self) -> c_int {
        // SAFETY: the handle is open.
        unsafe { sys::pcap_datalink(self.handle.as_ptr()) }
    }

    /// The handle's snapshot length (from the file header or first interface).
    pub fn snapshot(&self) -> c_int {
        // SAFETY: the handle is open.
        unsafe { sys::pcap_snapshot(self.handle.as_ptr()) }
    }

    /// The next record, `Ok(None)` at the end of the file, or libpcap's error message.
    // `c_long` is i64 here but i32 on 32-bit targets, where the conversions are needed.
    #[allow(clippy::useless_conversion)]
    pub fn next_record(&mut self) -> Result<Option<RawRecord>, String> {
        let mut header: *mut sys::PktHdr = std::ptr::null_mut();
        let mut data: *const u8 = std::ptr::null();
        // SAFETY: the handle is open; both out-pointers are valid for writes.
        let status = unsafe { sys::pcap_next_ex(self.handle.as_ptr(), &mut header, &mut data) };
        match status {
            1 if !header.is_null() => {
                // SAFETY: on success libpcap's header and data stay valid until the next call
                // on this handle; we copy both now (caplen bytes of data).
                let header = unsafe { &*header };
                let bytes = if data.is_null() || header.caplen == 0 {
                    Vec::new()
                } else {
                    // SAFETY: as above: `data` holds caplen bytes.
                    unsafe { std::slice::from_raw_parts(data, header.caplen as usize) }.to_vec()
                };
                Ok(Some(RawRecord {
                    secs: i64::from(header.ts.tv_sec),
                    nanos: i64::from(header.ts.tv_usec),
                    caplen: header.caplen,
                    wire_len: header.len,
                    data: bytes,
                }))
            }
            -2 => Ok(None),
            -1 => Err(self.handle.last_error()),
            other => Err(format!("pcap_next_ex returned {other}")),
        }
    }
}
