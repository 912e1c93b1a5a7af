//! Live capture on one Linux interface: an AF_PACKET socket with a TPACKET_V3 receive ring and a
//! classic-BPF filter run by the kernel.
//!
//! Opening ([`AfPacketSource::open`]) goes in this order, so that no packet the filter would
//! refuse ever reaches the ring:
//! 1. `socket(AF_PACKET, SOCK_RAW, 0)`: protocol 0, so the socket receives nothing at all yet;
//! 2. `PACKET_VERSION` = TPACKET_V3, optionally `PACKET_IGNORE_OUTGOING`;
//! 3. `SO_ATTACH_FILTER` with the program after [`fix_program`] (or `ret #snaplen` when there
//!    is no filter, so that the kernel truncates to the snap length in every case);
//! 4. `PACKET_RX_RING` and `mmap` of the ring;
//! 5. `bind` to the interface with protocol `ETH_P_ALL`: only now do packets arrive, and they
//!    have all been through the filter.
//!
//! Packets are read by walking the ring's blocks in order: a block belongs to us once the
//! kernel sets `TP_STATUS_USER` in its header (it does so when the block is full or after the
//! retire timeout), we visit its packets in place, and hand it back by writing
//! `TP_STATUS_KERNEL`. Offloaded VLAN tags are put back into the frame ([`insert_vlan_tag`]), as
//! libpcap does. The same order, and the retire timeout, give the source's watermark
//! ([`Source::complete_before`]; the reasoning is at `AfPacketSource::caught_up`). See
//! docs/agent-capture.md.
//!
//! All of the agent's `unsafe` code is in this file.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant, SystemTime};

use trawl_bpf::{Insn, Program, opcode};

use super::{Batch, LINKTYPE_ETHERNET, Packet, Source, SourceError, SourceStats, Timestamp};

/// The largest snap length, libpcap's `MAXIMUM_SNAPLEN`: enough for any GSO/GRO super-packet.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Default size of one ring block: 4 MiB (the largest block the kernel allocates in one piece
/// with 4 KiB pages; bigger blocks fall back to vmalloc).
pub const DEFAULT_BLOCK_SIZE: u32 = 4 << 20;
/// Default number of ring blocks: 8, a 32 MiB ring, about 0.25 s of a saturated 1 Gbit/s link.
pub const DEFAULT_BLOCK_COUNT: u32 = 8;
/// Default block retire timeout: a block that is not full is handed over after 50 ms, so that
/// packets on a quiet link arrive promptly.
pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_millis(50);

/// How much later than its retire timeout the kernel may hand over a block, plus how long before
/// it reaches the ring a packet may have been stamped: the margin of the source's watermark
/// ([`Source::complete_before`]), which runs the retire timeout and this behind the clock.
pub const RETIRE_MARGIN: Duration = Duration::from_millis(20);

/// The 802.1Q tag protocol identifier, used when the kernel does not say which TPID it removed.
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_ALL: u16 = 0x0003;
const TPACKET_V3: libc::c_int = 2;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
/// Two MAC addresses: where an 802.1Q tag goes in an Ethernet frame.
const MAC_ADDRS_LEN: usize = 12;

/// How to open an [`AfPacketSource`].
#[derive(Clone, Debug)]
pub struct AfPacketConfig {
    /// Interface name, e.g. `eth0`.
    pub interface: String,
    /// Longest packet prefix kept; longer packets are truncated (their `orig_len` is kept).
    pub snaplen: u32,
    /// Size of one ring block in bytes: a multiple of the page size.
    pub block_size: u32,
    /// Number of ring blocks.
    pub block_count: u32,
    /// How long the kernel keeps filling a block that is not full before handing it over.
    pub block_timeout: Duration,
    /// Skip packets the host sends (`PACKET_IGNORE_OUTGOING`, Linux 4.20+). On `lo` this avoids
    /// seeing every packet twice; elsewhere it captures the inbound direction only.
    pub ignore_outgoing: bool,
    /// Classic-BPF filter for the interface's link type (Ethernet), as the server compiled it;
    /// `None` captures everything. It is validated and rewritten by [`fix_program`].
    pub filter: Option<Program>,
}

impl AfPacketConfig {
    /// The defaults: snap length [`MAX_SNAPLEN`], [`DEFAULT_BLOCK_COUNT`] blocks of
    /// [`DEFAULT_BLOCK_SIZE`], [`DEFAULT_BLOCK_TIMEOUT`], outgoing packets kept, no filter.
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            snaplen: MAX_SNAPLEN,
            block_size: DEFAULT_BLOCK_SIZE,
            block_count: DEFAULT_BLOCK_COUNT,
            block_timeout: DEFAULT_BLOCK_TIMEOUT,
            ignore_outgoing: false,
            filter: None,
        }
    }
}

/// Rewrites a program for attaching to a socket, as libpcap's `fix_program` does on Linux:
/// every `ret #k` with `k != 0` becomes `ret #snaplen`.
///
/// The accept value of a classic-BPF program is the number of bytes the kernel keeps. A program
/// compiled on a dead handle returns whatever snap length it was compiled with (65535 in old
/// tools, 262144 now), which would silently cut GSO/GRO super-packets or disagree with the
/// snap length the agent was asked for. `ret #0` (reject) and `ret a` are left alone.
pub fn fix_program(program: &Program, snaplen: u32) -> Program {
    program
        .insns()
        .iter()
        .map(|insn| match *insn {
            Insn {
                code: opcode::RET_K,
                k,
                ..
            } if k != 0 => Insn {
                k: snaplen,
                ..*insn
            },
            other => other,
        })
        .collect()
}

/// The program attached when there is no filter: accept everything, keeping `snaplen` bytes.
pub fn accept_all(snaplen: u32) -> Program {
    Program::new(vec![Insn {
        code: opcode::RET_K,
        jt: 0,
        jf: 0,
        k: snaplen,
    }])
}

/// Puts an 802.1Q tag (`tpid`, then `tci`, big-endian) back between the MAC addresses and the
/// EtherType of an Ethernet `frame`, writing the result to `out`, as libpcap does for tags the
/// kernel removed (VLAN offload): the tagged frame is what was on the wire.
///
/// Returns `false` and leaves `out` alone when the frame is too short to hold two MAC
/// addresses (libpcap does not insert the tag then either).
pub fn insert_vlan_tag(frame: &[u8], tpid: u16, tci: u16, out: &mut Vec<u8>) -> bool {
    if frame.len() < MAC_ADDRS_LEN {
        return false;
    }
    out.clear();
    out.reserve(frame.len() + 4);
    out.extend_from_slice(&frame[..MAC_ADDRS_LEN]);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&frame[MAC_ADDRS_LEN..]);
    true
}

/// The receive `drop` count of `interface` in the text of `/proc/net/dev` (the kernel's
/// `rx_dropped + rx_missed_errors`), or `None` if the interface is not listed.
pub fn proc_net_dev_rx_drops(text: &str, interface: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != interface {
            return None;
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast.
        counters.split_whitespace().nth(3)?.parse().ok()
    })
}

/// A live capture on one interface; see the module documentation.
pub struct AfPacketSource {
    interface: String,
    snaplen: u32,
    link_type: u32,
    // Field order matters: the mapping goes before the socket it belongs to.
    ring: Ring,
    fd: OwnedFd,
    /// The block to look at next.
    next_block: usize,
    /// Where a frame with a re-inserted VLAN tag is built.
    vlan_scratch: Vec<u8>,
    stats: SourceStats,
    /// `/proc/thread-self/net/dev` as opened in the socket's network namespace, re-read for
    /// the interface's drop counter; with its value at open time.
    net_dev: Option<(File, u64)>,
    /// See [`AfPacketSource::bound_at`].
    bound_at: SystemTime,
    /// The blocks' retire timeout plus [`RETIRE_MARGIN`], in ns.
    retire_within_ns: u64,
    /// The watermark ([`Source::complete_before`]), ns since the epoch.
    complete_before: u64,
}

/// The mmap'ed ring.
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    block_count: usize,
}

// SAFETY: the mapping is owned by one `Ring` only and is accessed through `&mut self`; nothing
// in it is tied to the thread that created it.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned, and no slice into the ring
        // outlives `&mut self` borrows of the source, so nothing refers to it any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

impl AfPacketSource {
    /// Opens a capture on `config.interface`. Needs `CAP_NET_RAW`. The socket lives in the
    /// network namespace of the calling thread.
    pub fn open(config: &AfPacketConfig) -> Result<Self, SourceError> {
        let interface = config.interface.clone();
        let config_err = |detail: String| SourceError::Config {
            interface: interface.clone(),
            detail,
        };
        let page = page_size();
        if config.block_size == 0 || !(config.block_size as usize).is_multiple_of(page) {
            return Err(config_err(format!(
                "ring block size {} is not a positive multiple of the page size ({page})",
                config.block_size
            )));
        }
        if config.block_count == 0 {
            return Err(config_err("ring block count must be at least 1".into()));
        }
        if config.snaplen == 0 {
            return Err(config_err("snap length must be at least 1".into()));
        }
        let timeout_ms = u32::try_from(config.block_timeout.as_millis())
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                config_err(format!(
                    "block timeout {:?} must be between 1 ms and 2^32 ms",
                    config.block_timeout
                ))
            })?;
        let ring_len = config.block_size as usize * config.block_count as usize;
        // TPACKET_V3 packets are laid out freely in a block; the frame size only has to divide
        // the block and be big enough for a header. The kernel still checks the count.
        let frame_size: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: (config.block_size / frame_size) * config.block_count,
            tp_retire_blk_tov: timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };

        let program = match &config.filter {
            Some(filter) => {
                filter.validate().map_err(|source| SourceError::Filter {
                    interface: interface.clone(),
                    source,
                })?;
                fix_program(filter, config.snaplen)
            }
            None => accept_all(config.snaplen),
        };

        let c_name = CString::new(interface.as_str())
            .ok()
            .filter(|name| name.as_bytes().len() < libc::IFNAMSIZ)
            .ok_or_else(|| config_err("not a valid interface name".into()))?;
        // SAFETY: `c_name` is a NUL-terminated string that lives across the call.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(syscall_err(&interface, "if_nametoindex"));
        }

        // Protocol 0: the socket is not hooked into the receive path until `bind` names a
        // protocol, so nothing arrives before the filter is in place.
        // SAFETY: plain system call with integer arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(syscall_err(&interface, "socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a descriptor we just created and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_raw_fd();

        setsockopt(
            sock,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &TPACKET_V3,
            &interface,
            "setsockopt(PACKET_VERSION)",
        )?;
        if config.ignore_outgoing {
            setsockopt(
                sock,
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                &(1 as libc::c_int),
                &interface,
                "setsockopt(PACKET_IGNORE_OUTGOING)",
            )?;
        }
        attach_filter(sock, &program, &interface)?;
        setsockopt(
            sock,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            &interface,
            "setsockopt(PACKET_RX_RING)",
        )?;

        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for `sock`;
        // the result is checked against MAP_FAILED before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                sock,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(syscall_err(&interface, "mmap(PACKET_RX_RING)"));
        }
        let ring = Ring {
            base: NonNull::new(base.cast()).ok_or_else(|| SourceError::Syscall {
                interface: interface.clone(),
                call: "mmap(PACKET_RX_RING)",
                source: io::Error::other("mmap returned a null pointer"),
            })?,
            len: ring_len,
            block_size: config.block_size as usize,
            block_count: config.block_count as usize,
        };

        // The network namespace's interface counters, opened now (in the socket's namespace);
        // `/proc/thread-self` because the caller may have entered a namespace in this thread only.
        let net_dev = File::open("/proc/thread-self/net/dev")
            .ok()
            .and_then(|mut file| {
                let base = read_rx_drops(&mut file, &interface)?;
                Some((file, base))
            });

        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as libc::c_int;
        // Just before packets can arrive: every packet of this socket is stamped later.
        let bound_at = SystemTime::now();
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                sock,
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(syscall_err(&interface, "bind"));
        }

        // The interface's hardware type, from the bound address.
        // SAFETY: as above, all-zero is a valid sockaddr_ll.
        let mut bound: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut bound_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `bound` has room for `bound_len` bytes, which the kernel updates.
        let rc = unsafe {
            libc::getsockname(
                sock,
                (&mut bound as *mut libc::sockaddr_ll).cast(),
                &mut bound_len,
            )
        };
        if rc != 0 {
            return Err(syscall_err(&interface, "getsockname"));
        }
        let link_type = match bound.sll_hatype {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => LINKTYPE_ETHERNET,
            other => {
                return Err(config_err(format!(
                    "hardware type ARPHRD {other} is not supported yet (only Ethernet and \
                     loopback interfaces; cooked capture is to come)"
                )));
            }
        };

        Ok(AfPacketSource {
            interface,
            snaplen: config.snaplen,
            link_type,
            ring,
            fd,
            next_block: 0,
            vlan_scratch: Vec::new(),
            stats: SourceStats::default(),
            net_dev,
            bound_at,
            retire_within_ns: nanos(config.block_timeout).saturating_add(nanos(RETIRE_MARGIN)),
            // Nothing is in the ring yet: whatever comes is written after `bind`, and stamped
            // at most the margin before it was written (see `caught_up`).
            complete_before: ns_since_epoch(bound_at).saturating_sub(nanos(RETIRE_MARGIN)),
        })
    }

    /// When the socket began receiving (just before `bind`): no packet of this source is
    /// stamped earlier. A capture job's duration counts from here.
    pub fn bound_at(&self) -> SystemTime {
        self.bound_at
    }

    /// At `at`, every block the kernel had handed over was walked: `drain_ready` read the clock,
    /// then found the next block in ring order still the kernel's. Moves the watermark to
    /// `at - block_timeout - RETIRE_MARGIN`. Why that is one:
    ///
    /// 1. The kernel fills the ring's blocks in ring order and hands them over
    ///    (`TP_STATUS_USER`) in that order: it retires only its current block, then opens the
    ///    next (`prb_retire_current_block`, `prb_dispatch_next_block` in net/packet/af_packet.c),
    ///    and we walk them in the same order from `next_block`. So if the block after the last
    ///    one walked was still the kernel's when looked at, no block handed over before that
    ///    moment — before `at`, which was read first — is left unwalked: every packet in one was
    ///    handed out. (The clock is read before the status word: read after, a block retired in
    ///    between would be counted as walked.)
    /// 2. A block that holds a packet is handed over at the latest one retire timeout after the
    ///    packet was written into it: a full block at once, else when the retire timer fires
    ///    (`prb_retire_rx_blk_timer_expired`: a timer that fires every `tp_retire_blk_tov`
    ///    while the ring is not frozen — re-armed when a block is opened and each time it fires
    ///    on an empty block, or an hrtimer forwarded every period in recent kernels — and
    ///    retires the current block as soon as it holds a packet). The timer fires a little
    ///    late: jiffy rounding, softirq latency; a few ms with HZ=100..1000. A frozen ring
    ///    (every block ours, not walked yet) takes no packet at all (they are counted as
    ///    kernel drops), and we are not caught up then anyway.
    /// 3. A packet is stamped (`skb->tstamp`, set when the packet was received or handed to the
    ///    taps, or the clock in `tpacket_rcv`) before it is written into the ring: normally
    ///    microseconds before, at worst the time it waited in a backlog queue.
    ///
    /// So a packet not handed out by `at` is in the block being filled, written after
    /// `at - block_timeout - lateness`, or is written after `at`; either way it is stamped after
    /// `at - block_timeout - lateness - stamp-to-ring delay`, which is after the watermark as
    /// long as lateness and delay together stay under [`RETIRE_MARGIN`]. Past that (softirqs
    /// starved for tens of milliseconds), a packet can come stamped before the watermark: a
    /// live view counts it as late, nothing is lost. The clock is `SystemTime`, the one the
    /// kernel stamps packets with (`CLOCK_REALTIME`); if it is stepped back, the watermark
    /// stays where it was (it never goes back) and packets stamped before it are late too.
    fn caught_up(&mut self, at: SystemTime) {
        let ns = ns_since_epoch(at).saturating_sub(self.retire_within_ns);
        self.complete_before = self.complete_before.max(ns);
    }

    /// The interface this source captures on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Visits the packets of every block the kernel has handed over, in ring order, returning
    /// each block as soon as it has been walked.
    fn drain_ready(&mut self, visit: &mut dyn FnMut(Packet<'_>)) -> Result<usize, SourceError> {
        let mut delivered = 0;
        for _ in 0..self.ring.block_count {
            let index = self.next_block;
            let block = self.ring.block(index);
            // Before the status word, not after: see `caught_up`.
            let looked_at = SystemTime::now();
            if !block_is_ours(block) {
                self.caught_up(looked_at);
                break;
            }
            let walked = self.walk_block(index, block, visit);
            release_block(block);
            self.next_block = (index + 1) % self.ring.block_count;
            delivered += walked?;
        }
        self.stats.received += delivered as u64;
        Ok(delivered)
    }

    /// Visits the packets of one block we own.
    fn walk_block(
        &mut self,
        index: usize,
        block: NonNull<u8>,
        visit: &mut dyn FnMut(Packet<'_>),
    ) -> Result<usize, SourceError> {
        let block_size = self.ring.block_size;
        let malformed = |detail: String| SourceError::Ring {
            interface: self.interface.clone(),
            block: index,
            detail,
        };
        // SAFETY: the block is `block_size` bytes of our mapping, starts with a
        // tpacket_block_desc (the kernel writes one at the start of every block) and is ours
        // (TP_STATUS_USER) until released, so the kernel does not write to it meanwhile.
        let desc = unsafe { std::ptr::read(block.as_ptr().cast::<libc::tpacket_block_desc>()) };
        // SAFETY: TPACKET_V3 blocks always carry the version-1 header (the union's only member).
        let header = unsafe { desc.hdr.bh1 };
        // SAFETY: the same bytes as a byte slice, valid and unaliased by writers while we own
        // the block; it does not outlive this call.
        let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), block_size) };

        let hdr_len = size_of::<libc::tpacket3_hdr>();
        let mut offset = header.offset_to_first_pkt as usize;
        for n in 0..header.num_pkts {
            if offset
                .checked_add(hdr_len)
                .is_none_or(|end| end > block_size)
            {
                return Err(malformed(format!(
                    "packet {n} header at offset {offset} is past the block end"
                )));
            }
            // SAFETY: in bounds (checked just above); the kernel aligns packet headers to
            // TPACKET_ALIGNMENT (16), but read_unaligned does not rely on it.
            let hdr = unsafe {
                std::ptr::read_unaligned(bytes.as_ptr().add(offset).cast::<libc::tpacket3_hdr>())
            };
            let data_start = offset + hdr.tp_mac as usize;
            let data_end = data_start + hdr.tp_snaplen as usize;
            if data_end > block_size {
                return Err(malformed(format!(
                    "packet {n} data {data_start}..{data_end} is past the block end"
                )));
            }
            let frame = &bytes[data_start..data_end];
            let ts = Timestamp::new(u64::from(hdr.tp_sec), hdr.tp_nsec);
            let vlan = hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || hdr.hv1.tp_vlan_tci != 0;
            let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                hdr.hv1.tp_vlan_tpid
            } else {
                ETH_P_8021Q
            };
            let snaplen = self.snaplen as usize;
            if vlan
                && insert_vlan_tag(
                    frame,
                    tpid,
                    hdr.hv1.tp_vlan_tci as u16,
                    &mut self.vlan_scratch,
                )
            {
                let data = &self.vlan_scratch[..self.vlan_scratch.len().min(snaplen)];
                visit(Packet {
                    ts,
                    orig_len: hdr.tp_len.saturating_add(4),
                    data,
                });
            } else {
                visit(Packet {
                    ts,
                    orig_len: hdr.tp_len,
                    data: &frame[..frame.len().min(snaplen)],
                });
            }
            if n + 1 < header.num_pkts {
                if hdr.tp_next_offset == 0 {
                    return Err(malformed(format!("packet {n} has no next offset")));
                }
                offset += hdr.tp_next_offset as usize;
            }
        }
        Ok(header.num_pkts as usize)
    }

    /// Waits for the socket to become readable, up to `timeout`. Returns early on a signal.
    fn wait(&mut self, timeout: Duration) -> Result<(), SourceError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // Round up, so that a sub-millisecond remainder still waits rather than spinning.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd and we pass a count of 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(SourceError::Syscall {
                interface: self.interface.clone(),
                call: "poll",
                source: err,
            });
        }
        if pfd.revents & libc::POLLNVAL != 0 {
            return Err(SourceError::Syscall {
                interface: self.interface.clone(),
                call: "poll",
                source: io::Error::from_raw_os_error(libc::EBADF),
            });
        }
        if pfd.revents & libc::POLLERR != 0 {
            // Reading SO_ERROR clears it. ENETDOWN (the link went down) is not fatal: the
            // socket receives again when the interface comes back up.
            let mut so_error: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `so_error` has room for `len` bytes.
            let rc = unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut so_error as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(syscall_err(&self.interface, "getsockopt(SO_ERROR)"));
            }
            if so_error != 0 && so_error != libc::ENETDOWN {
                return Err(SourceError::Syscall {
                    interface: self.interface.clone(),
                    call: "poll",
                    source: io::Error::from_raw_os_error(so_error),
                });
            }
            if so_error == libc::ENETDOWN {
                // Do not spin while the link is down.
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
            }
        }
        Ok(())
    }
}

impl Source for AfPacketSource {
    fn link_type(&self) -> u32 {
        self.link_type
    }

    fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn next_batch(
        &mut self,
        timeout: Duration,
        visit: &mut dyn FnMut(Packet<'_>),
    ) -> Result<Batch, SourceError> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.drain_ready(visit)?;
            if delivered > 0 {
                return Ok(Batch::Packets(delivered));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Batch::Idle);
            }
            self.wait(deadline - now)?;
        }
    }

    fn stats(&mut self) -> Result<SourceStats, SourceError> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes, which the kernel fills. The kernel resets its
        // counters on each read, so they are accumulated here.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(syscall_err(
                &self.interface,
                "getsockopt(PACKET_STATISTICS)",
            ));
        }
        self.stats.kernel_drops += u64::from(st.tp_drops);
        self.stats.ring_full_events += u64::from(st.tp_freeze_q_cnt);
        if let Some((file, base)) = &mut self.net_dev
            && let Some(now) = read_rx_drops(file, &self.interface)
        {
            self.stats.interface_drops = now.saturating_sub(*base);
        }
        Ok(self.stats)
    }

    /// See `AfPacketSource::caught_up` for why this is a watermark; it moves every time
    /// `next_batch` finds the ring walked, that is at every call while the link is quiet.
    fn complete_before(&self) -> u64 {
        self.complete_before
    }
}

impl Ring {
    fn block(&self, index: usize) -> NonNull<u8> {
        debug_assert!(index < self.block_count);
        // SAFETY: index < block_count, so the offset stays inside the mapping.
        unsafe { self.base.add(index * self.block_size) }
    }
}

/// The block status word: the first field of tpacket_hdr_v1, 8 bytes into the block.
fn block_status(block: NonNull<u8>) -> *mut u32 {
    let offset = std::mem::offset_of!(libc::tpacket_block_desc, hdr);
    // SAFETY: the block starts with a tpacket_block_desc, so `hdr` (whose first field is
    // `block_status`) is inside it and 4-byte aligned (blocks are page aligned).
    unsafe { block.as_ptr().add(offset).cast::<u32>() }
}

fn block_is_ours(block: NonNull<u8>) -> bool {
    // SAFETY: a valid, aligned pointer into the mapping (see `block_status`). Volatile because
    // the kernel writes this word concurrently.
    let status = unsafe { std::ptr::read_volatile(block_status(block)) };
    // Pairs with the kernel's barrier before it sets TP_STATUS_USER: the packets written before
    // are visible after this.
    fence(Ordering::Acquire);
    status & libc::TP_STATUS_USER != 0
}

fn release_block(block: NonNull<u8>) {
    // Our reads of the block happen before the kernel may reuse it.
    fence(Ordering::Release);
    // SAFETY: as in `block_is_ours`; writing TP_STATUS_KERNEL hands the block back.
    unsafe { std::ptr::write_volatile(block_status(block), libc::TP_STATUS_KERNEL) };
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, nanos)
}

fn syscall_err(interface: &str, call: &'static str) -> SourceError {
    SourceError::Syscall {
        interface: interface.to_owned(),
        call,
        source: io::Error::last_os_error(),
    }
}

fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    interface: &str,
    call: &'static str,
) -> Result<(), SourceError> {
    // SAFETY: `value` points to `size_of::<T>()` readable bytes for the duration of the call;
    // the kernel only reads them.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(syscall_err(interface, call));
    }
    Ok(())
}

fn attach_filter(fd: RawFd, program: &Program, interface: &str) -> Result<(), SourceError> {
    let mut insns: Vec<libc::sock_filter> = program
        .insns()
        .iter()
        .map(|insn| libc::sock_filter {
            code: insn.code,
            jt: insn.jt,
            jf: insn.jf,
            k: insn.k,
        })
        .collect();
    let len = u16::try_from(insns.len()).map_err(|_| SourceError::Config {
        interface: interface.to_owned(),
        detail: format!("filter of {} instructions is too long", insns.len()),
    })?;
    let fprog = libc::sock_fprog {
        len,
        filter: insns.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `insns` outlives it.
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &fprog,
        interface,
        "setsockopt(SO_ATTACH_FILTER)",
    )
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

/// Re-reads an open `/proc/.../net/dev` from the start and returns the interface's drops.
fn read_rx_drops(file: &mut File, interface: &str) -> Option<u64> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    proc_net_dev_rx_drops(&text, interface)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn fix_program_sets_every_accepting_return_to_the_snaplen() {
        // `tcpdump -d icmp` on a dead handle with snaplen 65535.
        let compiled = Program::new(vec![
            insn(opcode::LD_H_ABS, 0, 0, 12),
            insn(opcode::JEQ_K, 0, 3, 0x0800),
            insn(opcode::LD_B_ABS, 0, 0, 23),
            insn(opcode::JEQ_K, 0, 1, 1),
            insn(opcode::RET_K, 0, 0, 65535),
            insn(opcode::RET_K, 0, 0, 0),
        ]);
        let fixed = fix_program(&compiled, 262_144);
        let mut expected = compiled.clone();
        expected.0[4].k = 262_144;
        assert_eq!(fixed, expected);
    }

    #[test]
    fn fix_program_leaves_rejects_accumulator_returns_and_other_insns() {
        let program = Program::new(vec![
            insn(opcode::LD_IMM, 0, 0, 65535),
            insn(opcode::JEQ_K, 1, 0, 65535),
            insn(opcode::RET_A, 0, 0, 0),
            insn(opcode::RET_K, 0, 0, 0),
        ]);
        assert_eq!(fix_program(&program, 96), program);
    }

    #[test]
    fn fix_program_truncates_to_a_smaller_snaplen() {
        let program = Program::new(vec![insn(opcode::RET_K, 0, 0, 262_144)]);
        assert_eq!(fix_program(&program, 128).0[0].k, 128);
        // And the result runs as the kernel would: it keeps 128 bytes of a long packet.
        assert_eq!(fix_program(&program, 128).run(&[0u8; 1500], 1500), 128);
    }

    #[test]
    fn accept_all_is_valid_and_keeps_snaplen() {
        let program = accept_all(1000);
        program.validate().expect("valid");
        assert_eq!(program.run(&[0u8; 60], 60), 1000);
    }

    #[test]
    fn vlan_tag_goes_between_the_mac_addresses_and_the_ethertype() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // destination
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // source
        frame.extend_from_slice(&[0x08, 0x00]); // IPv4
        frame.extend_from_slice(&[0x45, 0, 0, 20]);
        let mut out = Vec::new();
        // Priority 5, VLAN 100.
        assert!(insert_vlan_tag(&frame, 0x8100, (5 << 13) | 100, &mut out));
        let mut expected = frame[..12].to_vec();
        expected.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64]);
        expected.extend_from_slice(&frame[12..]);
        assert_eq!(out, expected);
        assert_eq!(out.len(), frame.len() + 4);
    }

    #[test]
    fn vlan_tag_uses_the_given_tpid_for_802_1ad() {
        let frame = [0xffu8; 14];
        let mut out = Vec::new();
        assert!(insert_vlan_tag(&frame, 0x88a8, 7, &mut out));
        assert_eq!(&out[12..16], &[0x88, 0xa8, 0x00, 0x07]);
        assert_eq!(&out[16..], &[0xff, 0xff]);
    }

    #[test]
    fn vlan_tag_is_not_inserted_into_a_runt() {
        let mut out = vec![9];
        assert!(!insert_vlan_tag(&[1, 2, 3], 0x8100, 1, &mut out));
        assert_eq!(out, vec![9]);
        // Exactly two MAC addresses: the tag goes at the end.
        assert!(insert_vlan_tag(&[0; 12], 0x8100, 1, &mut out));
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn proc_net_dev_drops_are_the_fourth_receive_column() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:   12345      67    0    0    0     0          0         0    12345      67    0    0    0     0       0          0\n  \
             eth0: 999 10 1 42 0 0 0 0 5 5 0 7 0 0 0 0\n";
        assert_eq!(proc_net_dev_rx_drops(text, "eth0"), Some(42));
        assert_eq!(proc_net_dev_rx_drops(text, "lo"), Some(0));
        assert_eq!(proc_net_dev_rx_drops(text, "eth1"), None);
        assert_eq!(proc_net_dev_rx_drops(text, "eth"), None);
    }

    #[test]
    fn open_names_the_interface_and_the_failing_call() {
        let err = AfPacketSource::open(&AfPacketConfig::new("trawl-nosuch0"))
            .err()
            .expect("no such interface");
        let text = err.to_string();
        assert!(text.starts_with("trawl-nosuch0: "), "{text}");
        // Root gets as far as the interface lookup; others fail creating the socket.
        assert!(
            text.contains("if_nametoindex") || text.contains("socket(AF_PACKET)"),
            "{text}"
        );
    }

    #[test]
    fn open_refuses_a_block_size_that_is_not_page_aligned() {
        let mut config = AfPacketConfig::new("lo");
        config.block_size = 1000;
        let err = AfPacketSource::open(&config).err().expect("refused");
        assert!(err.to_string().contains("page size"), "{err}");
    }

    #[test]
    fn open_refuses_an_invalid_filter() {
        let mut config = AfPacketConfig::new("lo");
        config.filter = Some(Program::new(vec![insn(opcode::LD_IMM, 0, 0, 0)]));
        let err = AfPacketSource::open(&config).err().expect("refused");
        assert!(
            matches!(err, SourceError::Filter { .. }),
            "{err}: expected a filter error"
        );
    }
}
