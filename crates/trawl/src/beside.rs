//! Reading beside counting: a producer (reading, filtering, decoding a capture) on a thread of its
//! own, a consumer (a flow table, a report) on the calling thread, joined by a channel of
//! batches.
//!
//! The capture's bytes stay with the thread whose buffer the kernel copied them into; only what
//! the producer keeps of each packet crosses cores, a batch at a time (BENCHMARKS.md, issue 5's
//! fourth pass: threads that handed the capture's bytes across were slower).

use std::sync::mpsc;

/// How many items a batch holds, and how many batches may wait for the consumer.
const BATCH: usize = 1024;
const IN_FLIGHT: usize = 4;

/// The producer's end: [`push`](Self::push) items in order.
pub struct Emit<T> {
    batch: Vec<T>,
    to: mpsc::SyncSender<Vec<T>>,
    spare: mpsc::Receiver<Vec<T>>,
    gone: bool,
}

impl<T> Emit<T> {
    /// Passes `item` on; false once the consumer has stopped (the producer should stop too).
    pub fn push(&mut self, item: T) -> bool {
        if self.gone {
            return false;
        }
        self.batch.push(item);
        if self.batch.len() == BATCH {
            let next = self
                .spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            self.gone = self
                .to
                .send(std::mem::replace(&mut self.batch, next))
                .is_err();
        }
        !self.gone
    }

    fn flush(self) {
        if !self.gone && !self.batch.is_empty() {
            let _ = self.to.send(self.batch);
        }
    }
}

/// Runs `produce` on a new thread and hands what it emits, in order, to `consume` on this one,
/// until the producer returns or `consume` returns false. Returns the producer's result and
/// whether the consumer stopped early. If `consume` panics, the channel closes as the panic
/// unwinds and the producer's next `push` says so.
pub fn beside<T: Send, R: Send>(
    produce: impl FnOnce(&mut Emit<T>) -> R + Send,
    mut consume: impl FnMut(T) -> bool,
) -> (R, bool) {
    std::thread::scope(|scope| {
        let (to, from) = mpsc::sync_channel::<Vec<T>>(IN_FLIGHT);
        let (spare_to, spare) = mpsc::channel::<Vec<T>>();
        let producer = scope.spawn(move || {
            let mut emit = Emit {
                batch: Vec::with_capacity(BATCH),
                to,
                spare,
                gone: false,
            };
            let result = produce(&mut emit);
            emit.flush();
            result
        });
        let mut stopped = false;
        'batches: for mut batch in from.iter() {
            for item in batch.drain(..) {
                if !consume(item) {
                    stopped = true;
                    break 'batches;
                }
            }
            // Back to the producer, to be filled again.
            let _ = spare_to.send(batch);
        }
        // Closes the channel: a producer still running learns the consumer stopped.
        drop(from);
        let result = producer.join().expect("the producer thread does not panic");
        (result, stopped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_arrives_once_in_order() {
        let mut got = Vec::new();
        let (sent, stopped) = beside(
            |emit| {
                let mut n = 0u64;
                for i in 0..(BATCH as u64 * 10 + 7) {
                    emit.push(i);
                    n += 1;
                }
                n
            },
            |i| {
                got.push(i);
                true
            },
        );
        assert!(!stopped);
        assert_eq!(got.len() as u64, sent);
        assert!(got.iter().enumerate().all(|(i, &v)| i as u64 == v));
    }

    #[test]
    fn a_consumer_that_stops_stops_the_producer() {
        let (pushed, stopped) = beside(
            |emit| {
                let mut n = 0u64;
                // Would never end if the consumer's stop were not seen.
                while emit.push(n) {
                    n += 1;
                }
                n
            },
            |i| i < 5000,
        );
        assert!(stopped);
        assert!(pushed >= 5000, "pushed {pushed}");
    }
}
