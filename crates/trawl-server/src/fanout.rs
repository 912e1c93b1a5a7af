//! Fan-out: every batch that ingest has stored (durably, and acknowledged) is offered to
//! whoever listens — later the live view of a job, its merger, the flow engine. With no
//! listener nothing is done; a listener that falls behind loses the oldest events (it is told
//! how many, by `broadcast`'s `Lagged`) and can read them back from the store.

use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::broadcast;

use crate::catalogue::{DeviceId, OrgId};

/// Events kept for a slow listener before it starts losing them.
const BACKLOG: usize = 1024;

/// A batch that is stored.
#[derive(Debug)]
pub struct StoredBatch {
    pub org: OrgId,
    pub device: DeviceId,
    /// The stream it belongs to (`eth0`, or a job's `job-ID-INTERFACE`).
    pub stream: String,
    pub seq: u64,
    /// The batch as the agent sent it: its header and the pcapng body
    /// (`trawl_wire::Batch::parse` reads it).
    pub batch: Bytes,
}

/// Where stored batches are offered.
pub struct Fanout {
    tx: broadcast::Sender<Arc<StoredBatch>>,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Fanout {
    /// Listens to every batch stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredBatch>> {
        self.tx.subscribe()
    }

    /// Offers a stored batch; builds the event only when someone listens.
    pub(crate) fn publish(&self, event: impl FnOnce() -> StoredBatch) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event()));
        }
    }
}
