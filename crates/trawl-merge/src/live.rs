//! Merging live streams: packets from several sources arrive in bursts (a device's batch every
//! 100 ms or so), each source in its own time order; [`Live`] puts them in one time order
//! without waiting forever for a source that is slow or has nothing to say.
//!
//! Each source has a **watermark**: the time up to which it has delivered everything (the last
//! packet of its newest batch, or what a heartbeat says). The earliest packet held is released
//! once every other source either holds an earlier-or-equal packet or has a watermark at or past
//! it — then nothing earlier can still come from anyone. So that one silent source cannot hold
//! the view back, a packet is also released once it has been held for `max_hold` (wall-clock
//! time, given by the caller). A packet that arrives older than what was already released is
//! **late**: it is released at once, out of order, and counted. Duplicates (the same packet seen
//! by two sources, by the caller's key — [`crate::invariant_key`]) are removed at release, with
//! [`Dedup`], and counted.
//!
//! Pure: no clock, no I/O. Times are nanoseconds: packet times on the devices' clocks, `now` on
//! the caller's wall clock.

use std::collections::VecDeque;

use crate::{Dedup, Order};

/// A packet on its way through [`Live`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held<P> {
    pub source: usize,
    /// Packet time (ns).
    pub ts: u64,
    /// What identifies the packet across sources (for duplicate removal).
    pub key: u64,
    /// Wall-clock time it was pushed (ns).
    pub arrived: u64,
    /// Released out of time order: it came after later packets had been released.
    pub late: bool,
    pub packet: P,
}

/// What the merge has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub released: u64,
    pub duplicates: u64,
    pub late: u64,
}

struct Source<P> {
    queue: VecDeque<Held<P>>,
    watermark: u64,
}

/// The live merge of `n` sources.
pub struct Live<P> {
    sources: Vec<Source<P>>,
    max_hold: u64,
    /// Time of the latest packet released in order.
    released_until: u64,
    late: VecDeque<Held<P>>,
    dedup: Dedup,
    stats: LiveStats,
}

impl<P> Live<P> {
    /// `max_hold`: the longest a packet waits for slower sources; `dedup_window`: how far apart
    /// in time two copies of one packet may be (both ns).
    pub fn new(sources: usize, max_hold: u64, dedup_window: u64) -> Live<P> {
        Live {
            sources: (0..sources)
                .map(|_| Source {
                    queue: VecDeque::new(),
                    watermark: 0,
                })
                .collect(),
            max_hold,
            released_until: 0,
            late: VecDeque::new(),
            dedup: Dedup::new(dedup_window),
            stats: LiveStats::default(),
        }
    }

    /// Adds a source (a device that joined); returns its number.
    pub fn add_source(&mut self) -> usize {
        self.sources.push(Source {
            queue: VecDeque::new(),
            watermark: 0,
        });
        self.sources.len() - 1
    }

    /// A packet of `source`, in that source's time order, pushed at wall-clock time `now`.
    /// Also moves the source's watermark to the packet's time.
    pub fn push(&mut self, source: usize, ts: u64, key: u64, packet: P, now: u64) {
        let late = self.stats.released > 0 && ts < self.released_until;
        let held = Held {
            source,
            ts,
            key,
            arrived: now,
            late,
            packet,
        };
        if late {
            self.late.push_back(held);
            return;
        }
        let s = &mut self.sources[source];
        s.watermark = s.watermark.max(ts);
        s.queue.push_back(held);
    }

    /// `source` has delivered everything up to `ts` (a heartbeat, or the end of a batch).
    pub fn advance(&mut self, source: usize, ts: u64) {
        let s = &mut self.sources[source];
        s.watermark = s.watermark.max(ts);
    }

    /// `source` will send nothing more: it no longer holds the others back.
    pub fn close(&mut self, source: usize) {
        self.sources[source].watermark = u64::MAX;
    }

    /// Releases, to `out`, every packet that may go at wall-clock time `now`: late ones first,
    /// then in time order those that nothing earlier can still precede, or that were held for
    /// `max_hold`. Duplicates are dropped and counted.
    pub fn release(&mut self, now: u64, mut out: impl FnMut(Held<P>)) {
        while let Some(h) = self.late.pop_front() {
            self.emit(h, &mut out);
        }
        let mut order = Order::new();
        for (i, s) in self.sources.iter().enumerate() {
            if let Some(h) = s.queue.front() {
                order.push(h.ts, i as u64, i);
            }
        }
        while let Some(i) = order.pop() {
            let head = self.sources[i]
                .queue
                .front()
                .expect("a source in the order has a head");
            let (ts, arrived) = (head.ts, head.arrived);
            let others_past = self.sources.iter().enumerate().all(|(j, s)| {
                j == i || s.watermark >= ts || s.queue.front().is_some_and(|h| h.ts >= ts)
            });
            if !others_past && now.saturating_sub(arrived) < self.max_hold {
                break;
            }
            let h = self.sources[i].queue.pop_front().expect("the head");
            self.released_until = self.released_until.max(h.ts);
            self.emit(h, &mut out);
            if let Some(next) = self.sources[i].queue.front() {
                order.push(next.ts, i as u64, i);
            }
        }
    }

    /// Releases everything held, in time order (the view is ending).
    pub fn flush(&mut self, out: impl FnMut(Held<P>)) {
        for i in 0..self.sources.len() {
            self.close(i);
        }
        self.release(u64::MAX, out);
    }

    fn emit(&mut self, h: Held<P>, out: &mut impl FnMut(Held<P>)) {
        if self.dedup.is_duplicate(h.ts, h.key, h.source) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.released += 1;
        if h.late {
            self.stats.late += 1;
        }
        out(h);
    }

    /// Packets held now (not yet released).
    pub fn held(&self) -> usize {
        self.late.len() + self.sources.iter().map(|s| s.queue.len()).sum::<usize>()
    }

    pub fn stats(&self) -> LiveStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn drain(live: &mut Live<&'static str>, now: u64) -> Vec<(usize, u64, &'static str)> {
        let mut v = Vec::new();
        live.release(now, |h| v.push((h.source, h.ts, h.packet)));
        v
    }

    #[test]
    fn waits_for_every_source_then_releases_in_time_order() {
        let mut live = Live::new(2, 1000 * MS, 10 * MS);
        live.push(0, 10, 1, "a10", 0);
        live.push(0, 30, 2, "a30", 0);
        // Source 1 has said nothing: nothing can go yet.
        assert!(drain(&mut live, 5 * MS).is_empty());
        live.push(1, 20, 3, "b20", 6 * MS);
        // a10 and b20 are safe; a30 waits until source 1 is past 30.
        assert_eq!(drain(&mut live, 7 * MS), [(0, 10, "a10"), (1, 20, "b20")]);
        live.advance(1, 40);
        assert_eq!(drain(&mut live, 8 * MS), [(0, 30, "a30")]);
        assert_eq!(live.held(), 0);
    }

    #[test]
    fn a_silent_source_holds_the_view_back_only_for_max_hold() {
        let mut live = Live::new(2, 500 * MS, 10 * MS);
        live.push(0, 100, 1, "a", 1000 * MS);
        assert!(drain(&mut live, 1400 * MS).is_empty());
        assert_eq!(drain(&mut live, 1500 * MS), [(0, 100, "a")]);
    }

    #[test]
    fn a_late_packet_is_delivered_and_counted() {
        let mut live = Live::new(2, 100 * MS, 10 * MS);
        live.push(0, 1000, 1, "a", 0);
        live.close(1);
        assert_eq!(drain(&mut live, 0), [(0, 1000, "a")]);
        live.push(1, 900, 2, "b-late", 0);
        assert_eq!(drain(&mut live, 0), [(1, 900, "b-late")]);
        assert_eq!(live.stats().late, 1);
    }

    #[test]
    fn the_same_packet_from_two_sources_goes_once() {
        let mut live = Live::new(2, 100 * MS, 10 * MS);
        live.push(0, 1000, 42, "at a", 0);
        live.push(1, 1000 + 3 * MS / 100, 42, "at b", 0);
        live.push(1, 2000, 43, "other", 0);
        let mut v = Vec::new();
        live.flush(|h| v.push(h.packet));
        assert_eq!(v, ["at a", "other"]);
        assert_eq!(live.stats().duplicates, 1);
        assert_eq!(live.stats().released, 2);
    }

    /// Three sources deliver interleaved bursts of their own time-ordered packets, with
    /// watermarks at each burst's end; released as they come, the output is every packet once,
    /// in time order, none late.
    #[test]
    fn bursts_from_several_sources_come_out_in_order() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut live = Live::new(3, u64::MAX, 0);
        let mut next = [0u64; 3];
        let mut key = 0;
        let mut out = Vec::new();
        for round in 0..300u64 {
            let s = rand(3) as usize;
            for _ in 0..rand(20) {
                next[s] += 1 + rand(1000);
                key += 1;
                live.push(s, next[s], key, key, round);
            }
            live.advance(s, next[s]);
            live.release(round, |h| out.push((h.ts, h.late)));
        }
        live.flush(|h| out.push((h.ts, h.late)));
        assert_eq!(out.len() as u64, key);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        assert!(out.iter().all(|(_, late)| !late));
        assert_eq!(live.stats().late, 0);
    }

    #[test]
    fn equal_times_do_not_hold_each_other_back() {
        let mut live = Live::new(2, 1000 * MS, 0);
        live.push(0, 50, 1, "a", 0);
        live.push(1, 50, 2, "b", 0);
        assert_eq!(drain(&mut live, 0), [(0, 50, "a"), (1, 50, "b")]);
    }
}
