//! The agent protocol's batch: how packets travel from a device to the server (docs/protocol.md).
//!
//! A batch is a 104-byte header ([`BatchHeader`]: stream epoch, sequence number and the number of the
//! batch it follows, packet and byte counts, time range, drop counters, a hash of the body, and
//! the time up to which the stream is complete) and a
//! pcapng body holding one interface and the packets. [`BatchBuilder`] makes one from packets;
//! [`Batch::parse`] checks one that arrived — every figure in the header against the body — and
//! refuses garbage, truncation and disagreement with an error that says what and where.
//! [`judge`] is the server's rule for a batch of a stream: store it, acknowledge a duplicate, or
//! ask for what is missing.
//!
//! Pure: bytes in, values out.

use trawl_pcap::{CaptureReader, Interface, Options, OwnedOptions, PcapngWriter, Timestamp, opt};

pub const MAGIC: &[u8; 4] = b"TRWB";
pub const VERSION: u16 = 1;
/// The shortest header a batch may have: the fields up to the body hash. Batches from agents
/// before the `complete_ns` field had this header; they are still accepted.
pub const HEADER_LEN: usize = 96;
/// The header this version writes: [`HEADER_LEN`] and `complete_ns` (bytes 96..104). A reader
/// finds the body at the header length the batch states (byte 8), so fields can be added at
/// the end without breaking older readers.
pub const HEADER_LEN_V1_1: usize = 104;
/// Largest batch a server accepts by default.
pub const MAX_BATCH: usize = 16 << 20;

/// Packets the device could not deliver since the previous batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    pub kernel: u64,
    pub interface: u64,
    pub spool: u64,
}

impl Drops {
    pub fn total(&self) -> u64 {
        self.kernel + self.interface + self.spool
    }
}

/// The fixed header of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchHeader {
    pub packets: u32,
    pub epoch: u64,
    pub seq: u64,
    pub prev_seq: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes: u64,
    pub drops: Drops,
    pub body_hash: u64,
    /// The stream's watermark: every packet of the stream stamped before this time (ns) is in
    /// this batch or an earlier one; 0 when not stated. It may be before `last_ns` (packets
    /// after it may still be on their way) and it is what lets a live view release the other
    /// devices' packets while this one is quiet.
    pub complete_ns: u64,
}

impl BatchHeader {
    /// The header as this version writes it ([`HEADER_LEN_V1_1`] bytes).
    pub fn encode(&self) -> [u8; HEADER_LEN_V1_1] {
        let mut h = [0u8; HEADER_LEN_V1_1];
        h[0..4].copy_from_slice(MAGIC);
        h[4..6].copy_from_slice(&VERSION.to_le_bytes());
        h[8..12].copy_from_slice(&(HEADER_LEN_V1_1 as u32).to_le_bytes());
        h[12..16].copy_from_slice(&self.packets.to_le_bytes());
        let fields = [
            self.epoch,
            self.seq,
            self.prev_seq,
            self.first_ns,
            self.last_ns,
            self.bytes,
            self.drops.kernel,
            self.drops.interface,
            self.drops.spool,
            self.body_hash,
        ];
        for (i, v) in fields.iter().enumerate() {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        h[96..104].copy_from_slice(&self.complete_ns.to_le_bytes());
        h
    }
}

/// What is wrong with a batch, and where (a byte offset in the batch).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the batch is {0} bytes, shorter than its {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("byte 0: not a trawl batch (magic {0:02x?}, expected \"TRWB\")")]
    Magic([u8; 4]),
    #[error("byte 4: batch version {0} is not supported (this server speaks version {VERSION})")]
    Version(u16),
    #[error("byte 8: header length {0} is invalid (at least {HEADER_LEN}, within the batch)")]
    HeaderLen(u32),
    #[error("byte 24: sequence number 0 is invalid (batches are numbered from 1)")]
    ZeroSeq,
    #[error("byte 32: prev_seq {prev} is not before seq {seq}")]
    PrevSeq { prev: u64, seq: u64 },
    #[error("byte 88: body hash is {actual:#018x}, the header says {stated:#018x}")]
    Hash { stated: u64, actual: u64 },
    #[error("batch body (after the header): {0}")]
    Body(String),
    #[error("the header says {field} is {stated}, the body has {actual}")]
    Mismatch {
        field: &'static str,
        stated: u64,
        actual: u64,
    },
    #[error("the batch is {0} bytes, more than the limit of {MAX_BATCH}")]
    TooLarge(usize),
}

/// A batch that passed every check: its header, and its body (pcapng) as received.
#[derive(Debug)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    pub body: &'a [u8],
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> Batch<'a> {
    /// Checks a received batch completely: header fields, hash, and that the body is a readable
    /// pcapng stream whose packets, bytes and times are those the header states.
    pub fn parse(bytes: &'a [u8]) -> Result<Batch<'a>, WireError> {
        if bytes.len() > MAX_BATCH {
            return Err(WireError::TooLarge(bytes.len()));
        }
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Short(bytes.len()));
        }
        let magic: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
        if &magic != MAGIC {
            return Err(WireError::Magic(magic));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let header_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if (header_len as usize) < HEADER_LEN || header_len as usize > bytes.len() {
            return Err(WireError::HeaderLen(header_len));
        }
        let header = read_header(bytes).expect("magic and length checked");
        if header.seq == 0 {
            return Err(WireError::ZeroSeq);
        }
        if header.prev_seq >= header.seq {
            return Err(WireError::PrevSeq {
                prev: header.prev_seq,
                seq: header.seq,
            });
        }
        let body = &bytes[header_len as usize..];
        let actual = xxhash_rust::xxh3::xxh3_64(body);
        if actual != header.body_hash {
            return Err(WireError::Hash {
                stated: header.body_hash,
                actual,
            });
        }
        check_body(&header, body)?;
        Ok(Batch { header, body })
    }
}

impl<'a> Batch<'a> {
    /// A batch already checked by [`parse`](Self::parse) (one the server stored): its header
    /// and body, without reading the body again. `None` if it is not even shaped like a batch.
    pub fn split(bytes: &'a [u8]) -> Option<Batch<'a>> {
        let header = read_header(bytes)?;
        let body = bytes.get(stated_header_len(bytes)?..)?;
        Some(Batch { header, body })
    }
}

/// Reads the body and compares what it holds with what the header states.
fn check_body(h: &BatchHeader, body: &[u8]) -> Result<(), WireError> {
    let body_err = |e: trawl_pcap::Error| WireError::Body(e.to_string());
    let mut r = CaptureReader::new(body).map_err(body_err)?;
    let (mut packets, mut bytes) = (0u64, 0u64);
    let (mut first, mut last) = (u64::MAX, 0u64);
    while let Some(p) = r.next_packet().map_err(body_err)? {
        packets += 1;
        bytes += p.data.len() as u64;
        let ns = p.ts.as_nanos();
        first = first.min(ns);
        last = last.max(ns);
    }
    if r.interfaces().len() != 1 {
        return Err(WireError::Body(format!(
            "a batch describes exactly one interface, this one {}",
            r.interfaces().len()
        )));
    }
    if packets == 0 {
        first = 0;
    }
    for (field, stated, actual) in [
        ("packets", h.packets as u64, packets),
        ("bytes", h.bytes, bytes),
        ("first_ns", h.first_ns, first),
        ("last_ns", h.last_ns, last),
    ] {
        if stated != actual {
            return Err(WireError::Mismatch {
                field,
                stated,
                actual,
            });
        }
    }
    Ok(())
}

/// Collects packets of one interface into a batch.
pub struct BatchBuilder {
    writer: PcapngWriter<Vec<u8>>,
    header: BatchHeader,
}

impl BatchBuilder {
    /// A batch for an interface named `name` of `link_type`, with nanosecond times.
    pub fn new(name: &str, link_type: u32, snaplen: u32) -> BatchBuilder {
        BatchBuilder::with_capacity(name, link_type, snaplen, 1 << 16)
    }

    /// The same, with room for `capacity` bytes before its buffer has to grow (growing copies
    /// everything written so far; a batch that is sent at a known size should start that big).
    pub fn with_capacity(
        name: &str,
        link_type: u32,
        snaplen: u32,
        capacity: usize,
    ) -> BatchBuilder {
        let mut section = OwnedOptions::new();
        section.push_str(
            opt::SHB_USERAPPL,
            concat!("trawl ", env!("CARGO_PKG_VERSION")),
        );
        // The header goes in front of the body when the batch is finished: its place is kept.
        let mut buf = Vec::with_capacity(HEADER_LEN_V1_1 + capacity);
        buf.resize(HEADER_LEN_V1_1, 0);
        let mut writer = PcapngWriter::new(buf, &section).expect("writing to memory");
        let mut iface = Interface::new(link_type, snaplen, 1_000_000_000);
        iface.options.push_str(opt::IF_NAME, name);
        writer.add_interface(&iface).expect("writing to memory");
        BatchBuilder {
            writer,
            header: BatchHeader::default(),
        }
    }

    pub fn push(&mut self, ts: Timestamp, orig_len: u32, data: &[u8]) {
        let ns = ts.as_nanos();
        if self.header.packets == 0 || ns < self.header.first_ns {
            self.header.first_ns = ns;
        }
        self.header.last_ns = self.header.last_ns.max(ns);
        self.header.packets += 1;
        self.header.bytes += data.len() as u64;
        self.writer
            .write(0, ts, orig_len, data, Options::default())
            .expect("writing to memory");
    }

    pub fn packets(&self) -> u32 {
        self.header.packets
    }

    /// Bytes of packet data so far.
    pub fn bytes(&self) -> u64 {
        self.header.bytes
    }

    /// The time of the earliest packet so far (ns), if there is one.
    pub fn first_ns(&self) -> Option<u64> {
        (self.header.packets > 0).then_some(self.header.first_ns)
    }

    /// The size of the batch if it were finished now, header included (to decide when it is
    /// big enough to send).
    pub fn encoded_len(&self) -> usize {
        self.writer.get_ref().len()
    }

    /// States the stream's watermark (see [`BatchHeader::complete_ns`]).
    pub fn set_complete(&mut self, ns: u64) {
        self.header.complete_ns = ns;
    }

    /// The finished batch: header and body, numbered `seq` after `prev_seq` in `epoch`.
    pub fn finish(mut self, epoch: u64, seq: u64, prev_seq: u64, drops: Drops) -> Vec<u8> {
        let mut out = self.writer.finish().expect("writing to memory");
        self.header.epoch = epoch;
        self.header.seq = seq;
        self.header.prev_seq = prev_seq;
        self.header.drops = drops;
        self.header.body_hash = xxhash_rust::xxh3::xxh3_64(&out[HEADER_LEN_V1_1..]);
        out[..HEADER_LEN_V1_1].copy_from_slice(&self.header.encode());
        out
    }
}

/// What the server does with a batch of a stream whose last stored batch is `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New and in order: store it, then acknowledge.
    Store,
    /// Already stored: acknowledge again, store nothing.
    Duplicate,
    /// Something between `last` and this batch is missing: the agent must resend from `last + 1`.
    Gap { last: u64 },
}

pub fn judge(last: u64, header: &BatchHeader) -> Verdict {
    if header.seq <= last {
        Verdict::Duplicate
    } else if header.prev_seq == last {
        Verdict::Store
    } else {
        Verdict::Gap { last }
    }
}

/// The agent's side of the chain: what the server has acknowledged, and which batches the agent
/// dropped (from a full spool) before the server had them.
///
/// Before sending a batch, [`prepare`](Self::prepare) rewrites its header (the body and its hash
/// are untouched): `prev_seq` becomes the last acknowledged batch, and the packets of every
/// dropped batch after it are added to the spool drops. A dropped batch that the server turns out
/// to have stored after all (its acknowledgement was lost) is not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendState {
    /// The last batch the server is known to have.
    pub acked: u64,
    /// Batches dropped unsent or unacknowledged: (seq, packets).
    pub dropped: Vec<(u64, u32)>,
}

impl SendState {
    /// The header to send for a batch whose stored header is `h`.
    pub fn prepare(&self, h: &BatchHeader) -> BatchHeader {
        let lost: u64 = self
            .dropped
            .iter()
            .filter(|(seq, _)| *seq > self.acked && *seq < h.seq)
            .map(|(_, packets)| *packets as u64)
            .sum();
        BatchHeader {
            prev_seq: self.acked,
            drops: Drops {
                spool: h.drops.spool + lost,
                ..h.drops
            },
            ..*h
        }
    }

    /// The server has every batch up to `seq` (an acknowledgement, a duplicate, or the `last` of
    /// a gap answer).
    pub fn server_has(&mut self, seq: u64) {
        if seq > self.acked {
            self.acked = seq;
        }
        let acked = self.acked;
        self.dropped.retain(|(s, _)| *s > acked);
    }

    /// The batch `seq` with `packets` packets was discarded before the server had it.
    pub fn dropped(&mut self, seq: u64, packets: u32) {
        if seq > self.acked {
            self.dropped.push((seq, packets));
        }
    }
}

/// Rewrites the header of an encoded batch in place (the body and its hash stay as they are),
/// keeping the header length the batch has: a batch with the older 96-byte header keeps it
/// (and has no room for `complete_ns`).
pub fn rewrite_header(batch: &mut [u8], header: &BatchHeader) {
    let encoded = header.encode();
    let stated = stated_header_len(batch).unwrap_or(HEADER_LEN);
    let keep = batch.len().min(stated.min(HEADER_LEN_V1_1));
    let length_field = batch.get(8..12).map(|b| b.to_vec());
    batch[..keep].copy_from_slice(&encoded[..keep]);
    if let Some(field) = length_field {
        batch[8..12].copy_from_slice(&field);
    }
}

/// The header length a batch states (byte 8), if it has that many bytes.
fn stated_header_len(batch: &[u8]) -> Option<usize> {
    let field = batch.get(8..12)?;
    Some(u32::from_le_bytes(field.try_into().ok()?) as usize)
}

/// Reads the header of an encoded batch without checking the body (for the agent's own spool).
pub fn read_header(batch: &[u8]) -> Option<BatchHeader> {
    if batch.len() < HEADER_LEN || &batch[0..4] != MAGIC {
        return None;
    }
    Some(BatchHeader {
        packets: u32::from_le_bytes(batch[12..16].try_into().ok()?),
        epoch: u64_at(batch, 16),
        seq: u64_at(batch, 24),
        prev_seq: u64_at(batch, 32),
        first_ns: u64_at(batch, 40),
        last_ns: u64_at(batch, 48),
        bytes: u64_at(batch, 56),
        drops: Drops {
            kernel: u64_at(batch, 64),
            interface: u64_at(batch, 72),
            spool: u64_at(batch, 80),
        },
        body_hash: u64_at(batch, 88),
        complete_ns: match stated_header_len(batch) {
            Some(n) if n >= HEADER_LEN_V1_1 && batch.len() >= HEADER_LEN_V1_1 => u64_at(batch, 96),
            _ => 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64, prev: u64) -> Vec<u8> {
        let mut b = BatchBuilder::new("eth0", 1, 262_144);
        b.push(Timestamp::new(1_700_000_000, 5), 60, &[0xaa; 60]);
        b.push(Timestamp::new(1_700_000_001, 7), 1514, &[0xbb; 100]);
        b.finish(
            42,
            seq,
            prev,
            Drops {
                kernel: 1,
                interface: 2,
                spool: 3,
            },
        )
    }

    #[test]
    fn a_built_batch_parses_with_its_figures() {
        let bytes = sample(5, 4);
        let b = Batch::parse(&bytes).unwrap();
        assert_eq!(b.header.packets, 2);
        assert_eq!(b.header.bytes, 160);
        assert_eq!(b.header.first_ns, 1_700_000_000_000_000_005);
        assert_eq!(b.header.last_ns, 1_700_000_001_000_000_007);
        assert_eq!(b.header.drops.total(), 6);
        assert_eq!(
            (b.header.epoch, b.header.seq, b.header.prev_seq),
            (42, 5, 4)
        );
        // The body is an ordinary pcapng stream.
        let mut r = CaptureReader::new(b.body).unwrap();
        assert_eq!(r.next_packet().unwrap().unwrap().orig_len, 60);
        assert_eq!(r.interfaces()[0].name(), Some("eth0"));
    }

    #[test]
    fn a_checked_batch_splits_into_the_same_header_and_body() {
        let bytes = sample(5, 4);
        let (checked, split) = (Batch::parse(&bytes).unwrap(), Batch::split(&bytes).unwrap());
        assert_eq!((checked.header, checked.body), (split.header, split.body));
        assert!(Batch::split(&bytes[..50]).is_none());
    }

    #[test]
    fn the_watermark_travels_and_survives_a_header_rewrite() {
        let mut b = BatchBuilder::new("eth0", 1, 262_144);
        assert_eq!(b.first_ns(), None);
        b.push(Timestamp::new(1_700_000_000, 5), 60, &[0xaa; 60]);
        b.push(Timestamp::new(1_700_000_000, 2), 60, &[0xbb; 60]);
        assert_eq!(b.first_ns(), Some(1_700_000_000_000_000_002));
        b.set_complete(1_700_000_000_500_000_000);
        let mut bytes = b.finish(1, 7, 6, Drops::default());
        let h = Batch::parse(&bytes).unwrap().header;
        assert_eq!(h.complete_ns, 1_700_000_000_500_000_000);
        rewrite_header(&mut bytes, &BatchHeader { prev_seq: 3, ..h });
        let again = Batch::parse(&bytes).unwrap().header;
        assert_eq!((again.prev_seq, again.complete_ns), (3, h.complete_ns));
    }

    /// A batch with the 96-byte header of earlier agents (no watermark) is still read, and a
    /// rewrite of its header keeps it valid.
    #[test]
    fn a_batch_with_the_older_header_is_accepted() {
        let new = sample(5, 4);
        let mut old = new[..HEADER_LEN].to_vec();
        old[8..12].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        old.extend_from_slice(&new[HEADER_LEN_V1_1..]);
        let h = Batch::parse(&old).unwrap().header;
        assert_eq!((h.packets, h.complete_ns), (2, 0));
        rewrite_header(&mut old, &BatchHeader { prev_seq: 2, ..h });
        let again = Batch::parse(&old).unwrap();
        assert_eq!((again.header.prev_seq, again.header.packets), (2, 2));
        assert_eq!(again.body, &new[HEADER_LEN_V1_1..]);
    }

    #[test]
    fn an_empty_batch_carries_drop_counters() {
        let bytes = BatchBuilder::new("eth0", 1, 0).finish(
            1,
            1,
            0,
            Drops {
                kernel: 9,
                ..Default::default()
            },
        );
        let b = Batch::parse(&bytes).unwrap();
        assert_eq!(
            (b.header.packets, b.header.first_ns, b.header.drops.kernel),
            (0, 0, 9)
        );
    }

    #[test]
    fn garbage_truncation_and_disagreement_are_refused() {
        let good = sample(1, 0);
        assert_eq!(Batch::parse(&good[..50]).unwrap_err(), WireError::Short(50));
        assert!(matches!(
            Batch::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            WireError::Short(_)
        ));
        let mut junk = good.clone();
        junk[0] = b'X';
        assert!(matches!(
            Batch::parse(&junk).unwrap_err(),
            WireError::Magic(_)
        ));
        // Cut short: the hash no longer matches.
        assert!(matches!(
            Batch::parse(&good[..good.len() - 10]).unwrap_err(),
            WireError::Hash { .. }
        ));
        // A header that lies about the packets, with the hash left right.
        let mut lie = good.clone();
        lie[12..16].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            Batch::parse(&lie).unwrap_err(),
            WireError::Mismatch {
                field: "packets",
                stated: 3,
                actual: 2
            }
        );
        // A body that is not pcapng, with a matching hash.
        let body = b"definitely not pcapng".to_vec();
        let h = BatchHeader {
            seq: 1,
            body_hash: xxhash_rust::xxh3::xxh3_64(&body),
            ..Default::default()
        };
        let mut bad = h.encode().to_vec();
        bad.extend_from_slice(&body);
        assert!(matches!(
            Batch::parse(&bad).unwrap_err(),
            WireError::Body(_)
        ));
        let mut zero = good.clone();
        zero[24..32].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Batch::parse(&zero).unwrap_err(), WireError::ZeroSeq);
        let mut v2 = good;
        v2[4] = 2;
        assert_eq!(Batch::parse(&v2).unwrap_err(), WireError::Version(2));
    }

    /// An agent and a server exchanging batches, with a spool overflow and a lost
    /// acknowledgement: every packet is stored once or counted as dropped.
    #[test]
    fn send_state_accounts_for_every_packet() {
        let mut server_last = 0u64;
        let mut stored_packets = 0u64;
        let mut counted_drops = 0u64;
        let mut agent = SendState::default();
        let batch = |seq: u64| BatchHeader {
            seq,
            prev_seq: seq - 1,
            packets: 10,
            ..Default::default()
        };
        let mut send = |agent: &mut SendState, h: &BatchHeader| -> Verdict {
            let sent = agent.prepare(h);
            let v = judge(server_last, &sent);
            if v == Verdict::Store {
                server_last = sent.seq;
                stored_packets += sent.packets as u64;
                counted_drops += sent.drops.spool;
            }
            v
        };
        // 1 is stored and acknowledged.
        assert_eq!(send(&mut agent, &batch(1)), Verdict::Store);
        agent.server_has(1);
        // 2 is stored but the acknowledgement is lost; the agent's full spool then drops 2 and 3.
        assert_eq!(send(&mut agent, &batch(2)), Verdict::Store);
        agent.dropped(2, 10);
        agent.dropped(3, 10);
        // 4 goes out saying it follows 1 and that 20 packets were dropped: the server has 2.
        assert_eq!(send(&mut agent, &batch(4)), Verdict::Gap { last: 2 });
        agent.server_has(2);
        // Now it follows 2 and counts only batch 3's packets.
        assert_eq!(send(&mut agent, &batch(4)), Verdict::Store);
        agent.server_has(4);
        assert_eq!(agent.dropped, vec![]);
        // A resend of 4 (the acknowledgement lost again) is a duplicate.
        assert_eq!(send(&mut agent, &batch(4)), Verdict::Duplicate);
        assert_eq!(
            stored_packets + counted_drops,
            40,
            "batches 1-4, 10 packets each"
        );
        assert_eq!(counted_drops, 10);
    }

    #[test]
    fn a_header_rewrite_keeps_the_batch_valid() {
        let mut bytes = sample(7, 6);
        let h = read_header(&bytes).unwrap();
        let state = SendState {
            acked: 3,
            dropped: vec![(4, 5), (5, 6), (6, 7)],
        };
        rewrite_header(&mut bytes, &state.prepare(&h));
        let b = Batch::parse(&bytes).unwrap();
        assert_eq!(b.header.prev_seq, 3);
        assert_eq!(b.header.drops.spool, 3 + 18);
    }

    #[test]
    fn the_chain_decides_store_duplicate_or_gap() {
        let h = |seq, prev_seq| BatchHeader {
            seq,
            prev_seq,
            ..Default::default()
        };
        assert_eq!(judge(0, &h(1, 0)), Verdict::Store);
        assert_eq!(judge(1, &h(1, 0)), Verdict::Duplicate, "a replay");
        assert_eq!(
            judge(5, &h(3, 2)),
            Verdict::Duplicate,
            "an old batch resent"
        );
        assert_eq!(
            judge(1, &h(3, 2)),
            Verdict::Gap { last: 1 },
            "batch 2 is missing"
        );
        // After a spool overflow the agent skips batches 2 and 3 and says so.
        assert_eq!(judge(1, &h(4, 1)), Verdict::Store);
    }
}
