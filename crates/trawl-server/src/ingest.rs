//! Ingest: a batch from a device becomes packets in a segment and a record in the catalogue.
//!
//! For one batch of one stream: check it completely ([`Batch::parse`]), judge it against the last
//! batch stored for its (stream, epoch) ([`judge`]), and if it is new and in order append its
//! packets to the stream's open segment, `sync` the segment, and record the batch in the
//! catalogue in one transaction. Only then is it acknowledged. The caller holds the stream's
//! [`StreamSlot`] for the whole of it, so two uploads of the same batch cannot both store.
//!
//! **Failures between the two writes.** If the segment is synced but the catalogue transaction
//! fails (or the server dies in between), the segment holds frames the catalogue does not
//! vouch for, and the agent will resend the batch. So the open writer is dropped on any error,
//! and a segment is only ever reopened after cutting its file back to the length the catalogue
//! recorded ([`reopen`]): nothing is stored twice.
//!
//! Everything here blocks (file I/O, fsync, SQLite); the server runs it on a blocking thread.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trawl_pcap::{CaptureReader, Timestamp};
use trawl_store::{SegmentWriter, StoreError, StreamInfo, WriterOptions};
use trawl_wire::{Batch, Verdict, WireError, judge};

use crate::catalogue::{Catalogue, CatalogueError, DeviceAuth, SegmentRecord, StoredBatch, now_ns};
use crate::metrics::{Metrics, OpenSegmentGauge};

/// When a stream's open segment is closed and a new one started.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    /// Size of the segment file.
    pub max_bytes: u64,
    /// Time since the segment was created.
    pub max_age: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// What happened to a batch that was not refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored { seq: u64 },
    Duplicate { seq: u64 },
    Gap { last: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    BadBatch(#[from] WireError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The state of one stream (one device, one stream name) between batches: its open segment.
/// A stream's slot is locked for the whole handling of a batch.
#[derive(Default)]
pub struct StreamSlot {
    open: Option<OpenSegment>,
}

impl StreamSlot {
    /// The writer of segment `segment`, if this slot holds it open; the slot no longer does.
    pub(crate) fn take_writer(&mut self, segment: i64) -> Option<SegmentWriter> {
        if self.open.as_ref()?.record.id != segment {
            return None;
        }
        self.open.take().map(|o| o.writer)
    }
}

struct OpenSegment {
    /// The catalogue's stream row (a stream in one epoch) the segment belongs to.
    stream_id: i64,
    record: SegmentRecord,
    writer: SegmentWriter,
    _gauge: OpenSegmentGauge,
}

/// What ingest needs besides the batch: where segments go, the catalogue, the rotation rule.
pub struct Ingest {
    pub data_dir: PathBuf,
    pub catalogue: Arc<Mutex<Catalogue>>,
    pub rotation: Rotation,
    pub metrics: Arc<Metrics>,
}

fn now() -> Timestamp {
    Timestamp::from_nanos(now_ns() as u64)
}

impl Ingest {
    fn catalogue(&self) -> std::sync::MutexGuard<'_, Catalogue> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.catalogue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one batch of stream `stream` of `device`.
    pub fn accept(
        &self,
        slot: &mut StreamSlot,
        device: &DeviceAuth,
        stream: &str,
        bytes: &[u8],
    ) -> Result<Outcome, IngestError> {
        let batch = Batch::parse(bytes)?;
        let header = batch.header;
        let row = self
            .catalogue()
            .stream(device.org, device.id, stream, header.epoch)?;
        match judge(row.last_seq, &header) {
            Verdict::Duplicate => return Ok(Outcome::Duplicate { seq: header.seq }),
            Verdict::Gap { last } => return Ok(Outcome::Gap { last }),
            Verdict::Store => {}
        }

        let result = self.store(slot, device, stream, row, &batch);
        if let Err(e) = &result {
            // The writer may hold frames the catalogue does not know: start again from what
            // the catalogue vouches for.
            slot.open = None;
            if let Some(failure) = e.storage_failure() {
                self.metrics.storage_failed(failure, e);
            }
        }
        result?;
        self.metrics.stored(header.packets, header.bytes);
        Ok(Outcome::Stored { seq: header.seq })
    }

    fn store(
        &self,
        slot: &mut StreamSlot,
        device: &DeviceAuth,
        stream: &str,
        row: crate::catalogue::StreamRow,
        batch: &Batch<'_>,
    ) -> Result<(), IngestError> {
        let mut reader = CaptureReader::new(batch.body)
            .map_err(|e| IngestError::BadBatch(WireError::Body(e.to_string())))?;
        let iface = &reader.interfaces()[0];
        let info = StreamInfo {
            device: device.name.clone(),
            interface: iface.name().unwrap_or(stream).to_owned(),
            link_type: iface.link_type,
            snaplen: iface.snaplen,
        };

        let keep_open = slot.open.as_ref().is_some_and(|o| {
            o.stream_id == row.id
                && o.writer.info() == &info
                && !o
                    .writer
                    .should_rotate(now(), self.rotation.max_bytes, self.rotation.max_age)
        });
        if !keep_open && let Some(old) = slot.open.take() {
            old.writer.finish()?;
            self.catalogue().close_segment(device.org, old.record.id)?;
        }
        if slot.open.is_none() {
            slot.open = Some(self.open_segment(device, row.id, &info)?);
        }
        let open = slot.open.as_mut().expect("opened above");

        while let Some(p) = reader
            .next_packet()
            .map_err(|e| IngestError::BadBatch(WireError::Body(e.to_string())))?
        {
            open.writer.append(p.ts, p.orig_len, p.data)?;
        }
        open.writer.sync()?;
        let segment = open.writer.stats();
        self.catalogue().record_batch(
            device.org,
            &StoredBatch {
                stream: row,
                segment_id: open.record.id,
                header: &batch.header,
                segment,
            },
        )?;
        open.record.stored_bytes = segment.stored_bytes;
        Ok(())
    }

    /// The segment to append to: the stream's segment left open (by a restart or an error),
    /// reopened, if it still describes the same interface; otherwise a new one.
    fn open_segment(
        &self,
        device: &DeviceAuth,
        stream_id: i64,
        info: &StreamInfo,
    ) -> Result<OpenSegment, IngestError> {
        let left_open = self.catalogue().open_segment(device.org, stream_id)?;
        if let Some(record) = left_open {
            let dir = self.data_dir.join(&record.dir);
            let writer = reopen(&dir, &record, info)?;
            if writer.info() == info {
                return Ok(OpenSegment {
                    stream_id,
                    record,
                    writer,
                    _gauge: self.metrics.segment_opened(),
                });
            }
            writer.finish()?;
            self.catalogue().close_segment(device.org, record.id)?;
        }
        let rel_dir = format!("segments/org-{}/dev-{}", device.org, device.id);
        let dir = self.data_dir.join(&rel_dir);
        std::fs::create_dir_all(&dir).map_err(|source| IngestError::Io {
            what: "creating the segment directory",
            path: dir.clone(),
            source,
        })?;
        let record =
            self.catalogue()
                .create_segment(device.org, stream_id, &rel_dir, info.link_type)?;
        let writer = SegmentWriter::create(&dir, &record.name, info)?;
        Ok(OpenSegment {
            stream_id,
            record,
            writer,
            _gauge: self.metrics.segment_opened(),
        })
    }
}

/// Reopens a segment for appending after cutting its file back to the length the catalogue
/// recorded: frames past it were synced but never acknowledged (the catalogue transaction did
/// not happen), and their batch will come again. The store's recovery then drops the index
/// records that point past the new end. A segment with no batch recorded is made anew.
fn reopen(
    dir: &Path,
    record: &SegmentRecord,
    info: &StreamInfo,
) -> Result<SegmentWriter, IngestError> {
    let path = trawl_store::segment_path(dir, &record.name);
    let io_err = |what| {
        let path = path.clone();
        move |source| IngestError::Io { what, path, source }
    };
    if record.stored_bytes == 0 {
        for file in [&path, &trawl_store::index_path(dir, &record.name)] {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err("removing an unused segment")(e));
                }
                _ => {}
            }
        }
        return Ok(SegmentWriter::create(dir, &record.name, info)?);
    }
    reopen_recorded(dir, record)
}

/// Reopens a segment holding at least one recorded batch, cut back to the length the
/// catalogue recorded (see [`reopen`]).
pub(crate) fn reopen_recorded(
    dir: &Path,
    record: &SegmentRecord,
) -> Result<SegmentWriter, IngestError> {
    let path = trawl_store::segment_path(dir, &record.name);
    let io_err = |what| {
        let path = path.clone();
        move |source| IngestError::Io { what, path, source }
    };
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("opening the segment"))?;
    let len = file
        .metadata()
        .map_err(io_err("reading the length of"))?
        .len();
    if len > record.stored_bytes {
        file.set_len(record.stored_bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_err("cutting unacknowledged frames off"))?;
    }
    drop(file);
    let (writer, _recovery) =
        SegmentWriter::reopen_for_append(dir, &record.name, WriterOptions::default())?;
    Ok(writer)
}
