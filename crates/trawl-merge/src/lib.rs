//! Merging packet streams: time order across sources, and removal of the same packet seen twice.
//!
//! [`Order`] is a k-way merge over the heads of several time-ordered sources: give it each
//! source's next timestamp and a tie-breaker, and it says which source goes next (the earliest;
//! on a tie, the lower tie-breaker). [`Dedup`] remembers the keys of packets released in
//! the last `window` of time and says whether a packet is one already seen; [`exact_key`] hashes a
//! packet's bytes; [`invariant_key`] hashes only what stays the same from hop to hop (IP addresses,
//! protocol, IP id or flow label, lengths, the transport header and the first payload bytes), so the
//! same packet is recognised at two taps even across a router (TTL, header checksum and link layer
//! differ) or with different link layers (Ethernet vs Linux cooked, tagged vs untagged).
//!
//! [`Live`] merges streams as they arrive: per-source watermarks, a bound on how long a packet
//! is held, late packets delivered and counted, duplicates removed.
//!
//! Pure: no I/O, no clock. Timestamps are nanoseconds since the epoch.

pub mod live;

pub use live::{Held, Live, LiveStats};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Picks, among sources each with a pending packet, the one whose packet is earliest.
#[derive(Default)]
pub struct Order {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
}

impl Order {
    pub fn new() -> Self {
        Self::default()
    }

    /// Source `source`'s next packet has time `ts`; `tie` breaks ties (lower goes first).
    pub fn push(&mut self, ts: u64, tie: u64, source: usize) {
        self.heap.push(Reverse((ts, tie, source)));
    }

    /// The source whose pending packet is earliest; push it again once it has a new head.
    pub fn pop(&mut self) -> Option<usize> {
        self.heap.pop().map(|Reverse((_, _, s))| s)
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Recognises the same packet seen by several sources within a time window.
///
/// Two identical packets from the *same* source are two packets (a duplicate ACK, a repeated
/// probe), so a packet is a duplicate only of a copy that another source saw within the window
/// and that this source has not yet matched. Sources are numbered; with more than 64, source
/// numbers share bits (modulo 64) and a few true repeats may be taken for copies.
pub struct Dedup {
    window_ns: u64,
    /// Copies kept, oldest first: (time, key).
    recent: VecDeque<(u64, u64)>,
    /// Per key, the copies within the window: (time, bit mask of the sources that saw it).
    copies: HashMap<u64, VecDeque<(u64, u64)>>,
    removed: u64,
}

impl Dedup {
    pub fn new(window_ns: u64) -> Self {
        Dedup {
            window_ns,
            recent: VecDeque::new(),
            copies: HashMap::new(),
            removed: 0,
        }
    }

    /// True if `source` sees a packet that another source saw within the window before `ts`: the
    /// caller should drop it. Otherwise the packet is remembered and should be kept. Call in time
    /// order.
    pub fn is_duplicate(&mut self, ts: u64, key: u64, source: usize) -> bool {
        let horizon = ts.saturating_sub(self.window_ns);
        while let Some(&(t, k)) = self.recent.front() {
            if t >= horizon {
                break;
            }
            self.recent.pop_front();
            if let Some(list) = self.copies.get_mut(&k) {
                list.pop_front();
                if list.is_empty() {
                    self.copies.remove(&k);
                }
            }
        }
        let bit = 1u64 << (source % 64);
        let list = self.copies.entry(key).or_default();
        if let Some(copy) = list.iter_mut().find(|(_, seen)| seen & bit == 0) {
            copy.1 |= bit;
            self.removed += 1;
            return true;
        }
        list.push_back((ts, bit));
        self.recent.push_back((ts, key));
        false
    }

    /// How many packets were reported as duplicates.
    pub fn removed(&self) -> u64 {
        self.removed
    }
}

/// A 64-bit hash of a packet's bytes and length on the wire.
pub fn exact_key(data: &[u8], wire_len: u32) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(data, wire_len as u64)
}

/// How many bytes after the IP header take part in [`invariant_key`]: the transport header and
/// the start of the payload, enough to tell apart packets of one flow.
const INVARIANT_PAYLOAD: usize = 64;

/// A hash of what does not change as a packet crosses routers and link layers. IPv4: the header
/// without TTL and header checksum; IPv6: the fixed header without hop limit, and the extension
/// headers; then the first [`INVARIANT_PAYLOAD`] bytes after the IP headers, without the TCP, UDP
/// or ICMP checksum. Packets that are not IP
/// hash from the ARP header on, or whole when no network layer was found.
pub fn invariant_key(d: &trawl_decode::Decoded<'_>) -> u64 {
    use trawl_decode::Net;
    use xxhash_rust::xxh3::Xxh3;
    let data = d.data;
    let mut h = Xxh3::new();
    let (upper, wire): (usize, u32) = match &d.net {
        Net::Ipv4(ip) => {
            let end = (ip.offset + ip.header_len as usize).min(data.len());
            let mut header = [0u8; 60];
            let n = end - ip.offset;
            header[..n].copy_from_slice(&data[ip.offset..end]);
            if n >= 12 {
                header[8] = 0; // TTL
                header[10] = 0; // header checksum
                header[11] = 0;
            }
            h.update(&header[..n]);
            (end, ip.wire_len)
        }
        Net::Ipv6(ip) => {
            let end = ip.upper_offset.min(data.len()).max(ip.offset);
            let mut fixed = [0u8; 40];
            let n = (end - ip.offset).min(40);
            fixed[..n].copy_from_slice(&data[ip.offset..ip.offset + n]);
            if n >= 8 {
                fixed[7] = 0; // hop limit
            }
            h.update(&fixed[..n]);
            h.update(&data[ip.offset + n..end]);
            (end, ip.wire_len)
        }
        Net::Arp(a) => (a.offset, d.wire_len - a.offset as u32),
        Net::None => (0, d.wire_len),
    };
    let upper = upper.min(data.len());
    let rest = &data[upper..];
    if matches!(d.net, Net::Ipv4(_) | Net::Ipv6(_)) {
        // The transport checksum may be rewritten on the way (NAT, offload, a checksum fixed by
        // a tap): leave it out, in the first fragment only (later ones carry no header).
        let mut head = [0u8; INVARIANT_PAYLOAD];
        let n = rest.len().min(INVARIANT_PAYLOAD);
        head[..n].copy_from_slice(&rest[..n]);
        let first = d.net.fragment().is_none_or(|f| f.offset == 0);
        let checksum_at = match d.net.protocol() {
            Some(6) => Some(16),           // TCP
            Some(17) => Some(6),           // UDP
            Some(1) | Some(58) => Some(2), // ICMP, ICMPv6
            _ => None,
        };
        if let Some(at) = checksum_at.filter(|&at| first && at + 2 <= n) {
            head[at] = 0;
            head[at + 1] = 0;
        }
        h.update(&head[..n]);
    } else {
        h.update(rest);
    }
    h.update(&wire.to_le_bytes());
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_by_time_then_tie() {
        let mut o = Order::new();
        o.push(5, 0, 0);
        o.push(3, 1, 1);
        o.push(5, 0, 2);
        o.push(3, 0, 3);
        let got: Vec<usize> = std::iter::from_fn(|| o.pop()).collect();
        assert_eq!(got, [3, 1, 0, 2]);
    }

    #[test]
    fn dedup_matches_copies_across_sources_within_the_window() {
        let mut d = Dedup::new(1000);
        assert!(!d.is_duplicate(0, 7, 0));
        assert!(d.is_duplicate(500, 7, 1), "source 1 sees source 0's packet");
        assert!(d.is_duplicate(1000, 7, 2), "and so does source 2");
        assert!(
            !d.is_duplicate(1000, 7, 1),
            "a second one at source 1 is a new packet"
        );
        // The first copy is now out of the window, the second is not: source 2 matches it.
        assert!(d.is_duplicate(1001, 7, 2));
        assert!(!d.is_duplicate(1001, 8, 1));
        // Both copies are out of the window: a new packet.
        assert!(!d.is_duplicate(2500, 7, 2));
        assert_eq!(d.removed(), 3);
    }

    #[test]
    fn identical_packets_from_one_source_are_all_kept() {
        let mut d = Dedup::new(1_000_000);
        for t in 0..10 {
            assert!(!d.is_duplicate(t, 42, 3));
        }
        // Two copies at another source match two of them.
        assert!(d.is_duplicate(20, 42, 4));
        assert!(d.is_duplicate(21, 42, 4));
        assert_eq!(d.removed(), 2);
    }
}
