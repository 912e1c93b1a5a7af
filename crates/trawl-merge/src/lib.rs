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
//! Pure: no I/O, no clock. Timestamps are nanoseconds since the epoch.

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

/// Forgets keys older than a time window; reports keys seen within it.
pub struct Dedup {
    window_ns: u64,
    recent: VecDeque<(u64, u64)>,
    counts: HashMap<u64, u32>,
    removed: u64,
}

impl Dedup {
    pub fn new(window_ns: u64) -> Self {
        Dedup {
            window_ns,
            recent: VecDeque::new(),
            counts: HashMap::new(),
            removed: 0,
        }
    }

    /// True if a packet with this key was kept within the window before `ts`: the caller should
    /// drop it. Otherwise the key is remembered and the packet should be kept. Call in time order.
    pub fn is_duplicate(&mut self, ts: u64, key: u64) -> bool {
        let horizon = ts.saturating_sub(self.window_ns);
        while let Some(&(t, k)) = self.recent.front() {
            if t >= horizon {
                break;
            }
            self.recent.pop_front();
            if let Some(c) = self.counts.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&k);
                }
            }
        }
        if self.counts.contains_key(&key) {
            self.removed += 1;
            return true;
        }
        self.recent.push_back((ts, key));
        *self.counts.entry(key).or_insert(0) += 1;
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
/// headers; then the first [`INVARIANT_PAYLOAD`] bytes after the IP headers. Packets that are not IP
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
    let take = if matches!(d.net, Net::Ipv4(_) | Net::Ipv6(_)) {
        INVARIANT_PAYLOAD
    } else {
        usize::MAX
    };
    h.update(&data[upper..upper + (data.len() - upper).min(take)]);
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
    fn dedup_forgets_after_the_window() {
        let mut d = Dedup::new(1000);
        assert!(!d.is_duplicate(0, 7));
        assert!(d.is_duplicate(500, 7));
        assert!(d.is_duplicate(1000, 7));
        // 1001 ns after the first copy: it is outside the window, so a new packet.
        assert!(!d.is_duplicate(1001, 7));
        assert!(!d.is_duplicate(1001, 8));
        assert_eq!(d.removed(), 2);
    }
}
