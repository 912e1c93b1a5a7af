//! The spool: batches waiting for the server's acknowledgement.
//!
//! While the server keeps up, a batch waits in memory only (by default up to [`MEMORY`] bytes of
//! them):
//! writing every batch to disk and reading it back would cost the agent about a third of its
//! CPU. A batch is written to the spool directory when it has to wait: when the memory is
//! full, when a send fails or is slow ([`Spool::spill`]), and from the moment the uplink is
//! down or has ended ([`Spool::write_through`]). The directory is bounded: when it would exceed
//! its size, the oldest batches are discarded and remembered as dropped, so that the next batch
//! sent counts their packets as spool drops (docs/protocol.md).
//!
//! On disk: one file per batch (`<seq>.batch`, the batch bytes as built), written under a
//! temporary name, synced and renamed, so a crash leaves whole batches or none. A `state` file
//! (written the same way) holds the stream's epoch, the next sequence number, the [`SendState`]
//! (what the server has acknowledged and which batches were discarded before it had them), and
//! the number and packet count of every batch held only in memory: if the agent dies without
//! stopping (`kill -9`, power lost), the next start finds those batches gone and counts their
//! packets as spool drops, so even that loss reaches the server.
//!
//! Empty batches (heartbeats: a capture job's stream sends one every 250 ms while it is quiet)
//! write nothing while the server keeps up: losing one costs no packet, so it need not be
//! listed, and its acknowledgement need not be recorded (after a crash the server's answer
//! to the next batch moves the chain on). Only its number must never be used again: the state
//! file reserves [`RESERVE`] numbers at a time for them, and a start after a crash continues
//! after the reserved ones (the chain is what the server checks: `prev_seq`). Once the spool
//! goes to disk (the server is away, or the agent is stopping) the state file is brought up to
//! date and the numbers not used are given back.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use trawl_wire::{SendState, read_header, rewrite_header};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("spool {path}: the state file is corrupt at line {line}: {detail}")]
    State {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// By default, at most this many bytes of batches are held in memory.
pub const MEMORY: u64 = 64 << 20;

/// Numbers reserved in the state file for empty batches at a time (a quiet job's stream takes
/// one every 250 ms: the state file is written about once a minute for them).
pub const RESERVE: u64 = 256;

/// One batch waiting for the server.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    size: u64,
    packets: u32,
    /// The batch, while it is held in memory.
    held: Option<Bytes>,
    /// Whether its file is written.
    on_disk: bool,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    used: u64,
    entries: VecDeque<Entry>,
    /// Bytes of the batches held in memory, and the most there may be.
    held: u64,
    memory: u64,
    /// Every batch goes to disk as it comes (the server is unreachable, or the uplink ended).
    to_disk: bool,
    /// The batch numbered by [`take_seq`](Self::take_seq) and not pushed yet, with its packets.
    taken: Option<(u64, u32)>,
    epoch: u64,
    next_seq: u64,
    /// The state file says numbering goes on from here: numbers below it may have been used.
    reserved: u64,
    /// Something the state file does not say yet (an empty batch's number or acknowledgement):
    /// written when the spool goes to disk.
    unsaved: bool,
    send: SendState,
    /// Files found damaged or unreadable when opening (removed).
    pub discarded_on_open: usize,
    /// Packets of batches that were held in memory when the agent last ended without stopping
    /// (lost; counted as spool drops in the next batch sent).
    pub lost_on_open: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `max_bytes` of batches.
    pub fn open(dir: impl AsRef<Path>, max_bytes: u64) -> Result<Spool, SpoolError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the directory"))?;
        let mut spool = Spool {
            dir,
            max_bytes,
            used: 0,
            entries: VecDeque::new(),
            held: 0,
            memory: MEMORY,
            to_disk: false,
            taken: None,
            epoch: 0,
            next_seq: 1,
            reserved: 1,
            unsaved: false,
            send: SendState::default(),
            discarded_on_open: 0,
            lost_on_open: 0,
        };
        let state_path = spool.dir.join("state");
        let in_memory = match fs::read_to_string(&state_path) {
            Ok(text) => spool.load_state(&text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                spool.epoch = random_epoch().map_err(io_err(&spool.dir, "no random epoch"))?;
                spool.save_state()?;
                Vec::new()
            }
            Err(e) => return Err(io_err(&state_path, "cannot read")(e)),
        };
        spool.scan()?;
        // Batches that were only in memory when the process ended, and were not written since:
        // lost, and counted.
        for (seq, packets) in in_memory {
            if seq > spool.send.acked && !spool.entries.iter().any(|e| e.seq == seq) {
                spool.send.dropped(seq, packets);
                spool.lost_on_open += packets as u64;
            }
        }
        if spool.lost_on_open > 0 {
            spool.save_state()?;
        }
        Ok(spool)
    }

    /// Holds at most `bytes` of batches in memory (0: every batch goes to disk first).
    pub fn with_memory(mut self, bytes: u64) -> Spool {
        self.memory = bytes;
        self
    }

    /// Reads the state file; returns the batches it lists as held in memory.
    fn load_state(&mut self, text: &str) -> Result<Vec<(u64, u32)>, SpoolError> {
        let bad = |line: usize, detail: &str| SpoolError::State {
            path: self.dir.join("state"),
            line,
            detail: detail.to_string(),
        };
        let mut lines = text.lines().enumerate();
        let (_, first) = lines.next().ok_or_else(|| bad(1, "empty"))?;
        let nums: Vec<u64> = first
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad(1, "expected: epoch next_seq acked"))?;
        let [epoch, next_seq, acked] = nums[..] else {
            return Err(bad(1, "expected: epoch next_seq acked"));
        };
        self.epoch = epoch;
        self.next_seq = next_seq.max(1);
        self.reserved = self.next_seq;
        self.send.acked = acked;
        let mut in_memory = Vec::new();
        for (i, line) in lines {
            let mut f = line.split_whitespace();
            let (Some(Ok(seq)), Some(Ok(packets)), mark) = (
                f.next().map(str::parse::<u64>),
                f.next().map(str::parse::<u32>),
                f.next(),
            ) else {
                return Err(bad(i + 1, "expected: seq packets [memory]"));
            };
            match mark {
                None => self.send.dropped.push((seq, packets)),
                Some("memory") => in_memory.push((seq, packets)),
                Some(_) => return Err(bad(i + 1, "expected: seq packets [memory]")),
            }
        }
        Ok(in_memory)
    }

    fn save_state(&mut self) -> Result<(), SpoolError> {
        self.reserved = self.reserved.max(self.next_seq);
        self.unsaved = false;
        let mut text = format!("{} {} {}\n", self.epoch, self.reserved, self.send.acked);
        for (seq, packets) in &self.send.dropped {
            text.push_str(&format!("{seq} {packets}\n"));
        }
        let in_memory = self.entries.iter().filter(|e| !e.on_disk);
        for (seq, packets) in in_memory.map(|e| (e.seq, e.packets)).chain(self.taken) {
            text.push_str(&format!("{seq} {packets} memory\n"));
        }
        write_atomically(&self.dir, "state", text.as_bytes())
    }

    /// Finds the spooled batches; removes temporary files and batches already acknowledged or
    /// unreadable.
    fn scan(&mut self) -> Result<(), SpoolError> {
        let mut found = Vec::new();
        let listing = fs::read_dir(&self.dir).map_err(io_err(&self.dir, "cannot list"))?;
        for e in listing {
            let e = e.map_err(io_err(&self.dir, "cannot list"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".batch")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let header = read_head(&path);
            match header {
                Some(h) if h.seq == seq && h.epoch == self.epoch && seq > self.send.acked => {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    found.push(Entry {
                        seq,
                        size,
                        packets: h.packets,
                        held: None,
                        on_disk: true,
                    });
                }
                Some(h) if h.seq == seq && seq <= self.send.acked => {
                    let _ = fs::remove_file(&path);
                }
                _ => {
                    self.discarded_on_open += 1;
                    let _ = fs::remove_file(&path);
                }
            }
        }
        found.sort_by_key(|e| e.seq);
        self.used = found.iter().map(|e| e.size).sum();
        self.entries = found.into();
        if let Some(last) = self.entries.back() {
            self.next_seq = self.next_seq.max(last.seq + 1);
        }
        Ok(())
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The number for the next batch, of `packets` packets; persisted (with the packet count,
    /// until the batch is on disk or acknowledged), so numbers are never reused after a restart
    /// and a batch lost with the process is counted. An empty batch's number is one of those
    /// reserved in the state file, which is written only to reserve more.
    pub fn take_seq(&mut self, packets: u32) -> Result<u64, SpoolError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if packets == 0 {
            if seq < self.reserved {
                self.unsaved = true;
            } else {
                self.reserved = self.next_seq + RESERVE;
                self.save_state()?;
            }
            return Ok(seq);
        }
        self.taken = Some((seq, packets));
        self.save_state()?;
        Ok(seq)
    }

    /// Bytes of batches held.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a batch (as built, with its own seq): in memory if there is room and the uplink is
    /// not down, else on disk. If the spool is then over its size, the oldest batches are
    /// discarded and remembered as dropped; returns how many packets that cost.
    pub fn push(&mut self, batch: Vec<u8>) -> Result<u64, SpoolError> {
        let header = read_header(&batch).ok_or_else(|| SpoolError::State {
            path: self.dir.clone(),
            line: 0,
            detail: "push of something that is not a batch".into(),
        })?;
        let size = batch.len() as u64;
        let in_memory = !self.to_disk && self.held + size <= self.memory;
        if !in_memory {
            write_atomically(&self.dir, &format!("{}.batch", header.seq), &batch)?;
        }
        self.taken = None;
        let held = in_memory.then(|| Bytes::from(batch));
        if held.is_some() {
            self.held += size;
        }
        self.entries.push_back(Entry {
            seq: header.seq,
            size,
            packets: header.packets,
            held,
            on_disk: !in_memory,
        });
        self.used += size;
        let mut lost = 0;
        while self.used > self.max_bytes {
            let Some(old) = self.pop_front() else {
                break;
            };
            if old.on_disk {
                let _ = fs::remove_file(self.path_of(old.seq));
            }
            self.send.dropped(old.seq, old.packets);
            lost += old.packets as u64;
        }
        if lost > 0 {
            self.save_state()?;
        }
        Ok(lost)
    }

    /// The oldest batch, ready to send: its header rewritten to follow the last acknowledged
    /// batch and to count the packets of batches discarded since.
    pub fn next_to_send(&self) -> Result<Option<(u64, Bytes)>, SpoolError> {
        let Some(entry) = self.entries.front() else {
            return Ok(None);
        };
        if let Some(held) = &entry.held
            && let Some(h) = read_header(held)
        {
            let send = self.send.prepare(&h);
            if send == h {
                return Ok(Some((entry.seq, held.clone())));
            }
            let mut bytes = held.to_vec();
            rewrite_header(&mut bytes, &send);
            return Ok(Some((entry.seq, bytes.into())));
        }
        let path = self.path_of(entry.seq);
        let mut bytes = fs::read(&path).map_err(io_err(&path, "cannot read"))?;
        if let Some(h) = read_header(&bytes) {
            rewrite_header(&mut bytes, &self.send.prepare(&h));
        }
        Ok(Some((entry.seq, bytes.into())))
    }

    /// Writes every batch held only in memory to disk (a send failed or is slow: the batches
    /// may have to wait, and must survive the process). They stay in memory for sending.
    pub fn spill(&mut self) -> Result<(), SpoolError> {
        let mut wrote = false;
        for e in self.entries.iter_mut().filter(|e| !e.on_disk) {
            let bytes = e.held.as_ref().expect("a batch not on disk is in memory");
            write_atomically(&self.dir, &format!("{}.batch", e.seq), bytes)?;
            e.on_disk = true;
            wrote = true;
        }
        if wrote {
            self.save_state()?;
        }
        Ok(())
    }

    /// With `on`, every batch goes to disk as it comes, and those only in memory are written
    /// now (the server is unreachable, or nothing will send them before the process ends);
    /// without, batches wait in memory again while there is room.
    pub fn write_through(&mut self, on: bool) -> Result<(), SpoolError> {
        self.to_disk = on;
        if !on {
            return Ok(());
        }
        self.spill()?;
        // Says what the file does not say yet, and gives back the numbers reserved and not
        // used (a clean stop then numbers on without a gap; one taken later reserves again).
        if self.unsaved || self.reserved > self.next_seq {
            self.reserved = self.next_seq;
            self.save_state()?;
        }
        Ok(())
    }

    /// Batches held only in memory (not yet written to disk).
    pub fn in_memory_only(&self) -> usize {
        self.entries.iter().filter(|e| !e.on_disk).count()
    }

    /// Takes the oldest entry off the list (its file stays), with the accounting.
    fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.forget(&e);
        Some(e)
    }

    fn forget(&mut self, e: &Entry) {
        self.used -= e.size;
        if e.held.is_some() {
            self.held -= e.size;
        }
    }

    /// The server has every batch up to `seq` (acknowledged, a duplicate, or the `last` of a gap
    /// answer): those files go. When all it had were empty batches held in memory, the state
    /// file is left as it is (see the module documentation).
    pub fn server_has(&mut self, seq: u64) -> Result<(), SpoolError> {
        let dropped = self.send.dropped.len();
        self.send.server_has(seq);
        let mut only_empty = self.send.dropped.len() == dropped;
        let mut removed = 0;
        while let Some(seq) = self.entries.front().map(|e| e.seq) {
            if seq > self.send.acked {
                break;
            }
            if let Some(e) = self.pop_front() {
                removed += 1;
                only_empty &= e.packets == 0 && !e.on_disk;
                if e.on_disk {
                    let path = self.path_of(seq);
                    fs::remove_file(&path).map_err(io_err(&path, "cannot remove"))?;
                }
            }
        }
        if removed > 0 && only_empty {
            self.unsaved = true;
            return Ok(());
        }
        self.save_state()
    }

    pub fn acked(&self) -> u64 {
        self.send.acked
    }

    /// The server says its last batch of this epoch is `last`, below what it acknowledged
    /// before (its data was restored from an older copy or wiped): the chain continues from
    /// `last`. Batches it lost after acknowledging them are gone from the spool too; they are
    /// not the agent's drops, so they are not counted as such.
    pub fn server_rewound(&mut self, last: u64) -> Result<(), SpoolError> {
        self.send.acked = last;
        self.send.dropped.retain(|(s, _)| *s > last);
        self.save_state()
    }

    /// The server refused batch `seq` itself (not its place in the chain): it is removed and its
    /// packets are counted as spool drops of the next batch sent.
    pub fn discard(&mut self, seq: u64) -> Result<u32, SpoolError> {
        let Some(pos) = self.entries.iter().position(|e| e.seq == seq) else {
            return Ok(0);
        };
        let entry = self.entries.remove(pos).expect("found above");
        self.forget(&entry);
        if entry.on_disk {
            let path = self.path_of(seq);
            fs::remove_file(&path).map_err(io_err(&path, "cannot remove"))?;
        }
        self.send.dropped(seq, entry.packets);
        self.save_state()?;
        Ok(entry.packets)
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq}.batch"))
    }
}

fn read_head(path: &Path) -> Option<trawl_wire::BatchHeader> {
    let mut head = [0u8; trawl_wire::HEADER_LEN];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    read_header(&head)
}

/// Writes `name` in `dir` so that it is either whole or absent after a crash.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dest = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_err(&tmp, "cannot create"))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(&tmp, "cannot write")(e)
        })?;
    fs::rename(&tmp, &dest).map_err(io_err(&dest, "cannot rename into place"))
}

fn random_epoch() -> io::Result<u64> {
    let mut b = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b) | 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_pcap::Timestamp;
    use trawl_wire::{Batch, BatchBuilder, Drops};

    fn batch(spool: &mut Spool, packets: u32) -> Vec<u8> {
        let seq = spool.take_seq(packets).unwrap();
        let mut b = BatchBuilder::new("eth0", 1, 0);
        for i in 0..packets {
            b.push(Timestamp::new(1_700_000_000, i), 100, &[7u8; 100]);
        }
        b.finish(spool.epoch(), seq, seq - 1, Drops::default())
    }

    #[test]
    fn batches_survive_a_restart_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let epoch;
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            // The server is unreachable: batches go to disk.
            s.write_through(true).unwrap();
            epoch = s.epoch();
            for n in [1, 2, 3] {
                let b = batch(&mut s, n);
                s.push(b).unwrap();
            }
            s.server_has(1).unwrap();
            // A crash leaves a temporary file behind.
            fs::write(dir.path().join("9.batch.tmp"), b"half").unwrap();
        }
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.epoch(), epoch);
        assert_eq!(s.len(), 2);
        assert!(!dir.path().join("9.batch.tmp").exists());
        let (seq, bytes) = s.next_to_send().unwrap().unwrap();
        assert_eq!(seq, 2);
        let b = Batch::parse(&bytes).unwrap();
        assert_eq!((b.header.prev_seq, b.header.packets), (1, 2));
        // Numbers are not reused after the restart.
        assert_eq!(s.take_seq(1).unwrap(), 4);
    }

    #[test]
    fn batches_wait_in_memory_until_they_must_wait_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let files = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".batch"))
                .collect();
            names.sort();
            names
        };
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for n in [1, 2] {
            let b = batch(&mut s, n);
            s.push(b).unwrap();
        }
        assert!(files().is_empty(), "the server keeps up: nothing written");
        assert_eq!(s.in_memory_only(), 2);
        let (seq, bytes) = s.next_to_send().unwrap().unwrap();
        assert_eq!((seq, Batch::parse(&bytes).unwrap().header.packets), (1, 1));
        // A send failed: what waits is written, and so is what comes next.
        s.write_through(true).unwrap();
        assert_eq!(files(), ["1.batch", "2.batch"]);
        let b = batch(&mut s, 3);
        s.push(b).unwrap();
        assert_eq!(files(), ["1.batch", "2.batch", "3.batch"]);
        // Delivering again: new batches wait in memory again.
        s.write_through(false).unwrap();
        s.server_has(2).unwrap();
        let b = batch(&mut s, 4);
        s.push(b).unwrap();
        assert_eq!(files(), ["3.batch"]);
        assert_eq!(s.in_memory_only(), 1);
        // Slow: spilled.
        s.spill().unwrap();
        assert_eq!(files(), ["3.batch", "4.batch"]);
        assert_eq!(s.in_memory_only(), 0);
    }

    #[test]
    fn batches_lost_with_the_process_are_counted_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            for n in [5, 6, 7] {
                let b = batch(&mut s, n);
                s.push(b).unwrap();
            }
            s.server_has(1).unwrap();
            // Numbered, then the process dies before the batch is pushed.
            s.take_seq(8).unwrap();
            // Killed: batches 2 and 3 were only in memory, 4 was being built.
        }
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.lost_on_open, 6 + 7 + 8);
        assert!(s.is_empty());
        let b = batch(&mut s, 1);
        s.push(b).unwrap();
        let (seq, bytes) = s.next_to_send().unwrap().unwrap();
        let h = Batch::parse(&bytes).unwrap().header;
        assert_eq!(seq, 5);
        assert_eq!((h.prev_seq, h.drops.spool), (1, 6 + 7 + 8));
        // Counted once: a second start finds lost only what this one held in memory.
        drop(s);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.lost_on_open, 1);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_the_next_batch_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 3_200).unwrap();
        let mut lost = 0;
        for _ in 0..5 {
            let b = batch(&mut s, 10); // about 1.5 kB each
            lost += s.push(b).unwrap();
        }
        assert!(s.used() <= 3_200);
        assert_eq!(s.len(), 2, "two batches of about 1.5 kB fit");
        assert_eq!(lost, 10 * (5 - s.len() as u64));
        let (seq, bytes) = s.next_to_send().unwrap().unwrap();
        let h = Batch::parse(&bytes).unwrap().header;
        assert_eq!(h.prev_seq, 0, "follows the last acknowledged batch");
        assert_eq!(h.drops.spool, lost, "counts every dropped packet");
        assert_eq!(seq, 6 - s.len() as u64);
        // Acknowledged: the drops are accounted and forgotten, the file removed.
        s.server_has(seq).unwrap();
        let (_, bytes) = s.next_to_send().unwrap().unwrap();
        let h = Batch::parse(&bytes).unwrap().header;
        assert_eq!((h.prev_seq, h.drops.spool), (seq, 0));
        assert!(!dir.path().join(format!("{seq}.batch")).exists());
    }

    /// A heartbeat: an empty batch, pushed and acknowledged.
    fn heartbeat(s: &mut Spool) -> u64 {
        let b = batch(s, 0);
        s.push(b).unwrap();
        let (seq, _) = s.next_to_send().unwrap().unwrap();
        s.server_has(seq).unwrap();
        seq
    }

    #[test]
    fn heartbeats_write_nothing_while_the_server_keeps_up() {
        let dir = tempfile::tempdir().unwrap();
        let listing = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let state = || fs::read_to_string(dir.path().join("state")).unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        let b = batch(&mut s, 3);
        s.push(b).unwrap();
        s.server_has(1).unwrap();
        // The first heartbeat reserves numbers for those to come: one write.
        assert_eq!(heartbeat(&mut s), 2);
        let reserved = state();
        assert!(reserved.starts_with(&format!("{} {} 1\n", s.epoch(), 3 + RESERVE)));
        for n in 3..3 + RESERVE {
            assert_eq!(heartbeat(&mut s), n);
            assert_eq!(state(), reserved, "heartbeat {n} wrote the state file");
        }
        assert_eq!(listing(), ["state"], "no batch file");
        // Past the reservation: one more write.
        assert_eq!(heartbeat(&mut s), 3 + RESERVE);
        assert_ne!(state(), reserved);
        // A batch with packets is recorded as ever.
        let b = batch(&mut s, 2);
        s.push(b).unwrap();
        assert!(state().ends_with(&format!("{} 2 memory\n", 4 + RESERVE)));
        s.server_has(4 + RESERVE).unwrap();
        // Heartbeats, then a clean stop: the state file says what was acknowledged, and the
        // numbering goes on without a gap.
        let last = (0..3).map(|_| heartbeat(&mut s)).last().unwrap();
        s.write_through(true).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((s.acked(), s.lost_on_open), (last, 0));
        assert_eq!(s.take_seq(1).unwrap(), last + 1);
    }

    #[test]
    fn no_number_a_heartbeat_took_is_used_again_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut last = 0;
        for run in 0..3 {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            // A batch of packets, then more heartbeats than one reservation holds, none of
            // them acknowledged: then the process is killed.
            let b = batch(&mut s, 4);
            let seq = read_header(&b).unwrap().seq;
            assert!(seq > last, "run {run}: number {seq} after {last}");
            s.push(b).unwrap();
            for _ in 0..RESERVE + 10 {
                let seq = s.take_seq(0).unwrap();
                s.push(batch_numbered(&s, seq, 0)).unwrap();
                last = seq;
            }
        }
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        // The batch of packets lost is counted; the heartbeats lost cost nothing.
        assert_eq!(s.lost_on_open, 4);
        assert!(s.take_seq(0).unwrap() > last);
    }

    /// A batch numbered `seq` (already taken).
    fn batch_numbered(s: &Spool, seq: u64, packets: u32) -> Vec<u8> {
        let mut b = BatchBuilder::new("eth0", 1, 0);
        for i in 0..packets {
            b.push(Timestamp::new(1_700_000_000, i), 100, &[7u8; 100]);
        }
        b.finish(s.epoch(), seq, seq - 1, Drops::default())
    }

    #[test]
    fn damaged_files_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            s.write_through(true).unwrap();
            let b = batch(&mut s, 1);
            s.push(b).unwrap();
        }
        fs::write(dir.path().join("2.batch"), b"garbage").unwrap();
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((s.len(), s.discarded_on_open), (1, 1));
    }

    #[test]
    fn a_corrupt_state_file_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("state"), "12 3 x\n").unwrap();
        let err = Spool::open(dir.path(), 1 << 20).err().unwrap().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
