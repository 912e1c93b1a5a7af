//! Overlapping output with work: a writer thread that writes behind. The time the kernel spends
//! copying a multi-gigabyte output into the page cache is then spent beside the parsing and
//! formatting, not in between (measured: `trawl merge` of two 512 MiB files, median 0.43 s with
//! it against 0.57 s without).
//!
//! It hands 1 MiB blocks over a bounded channel (a few blocks in flight, so memory stays a few
//! MiB) and recycles them, so nothing is allocated per block once running.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const BLOCK: usize = 1 << 20;
const IN_FLIGHT: usize = 4;

/// Writes to `inner` on its own thread; errors surface on a later `write` or on `flush`.
pub struct WriteBehind {
    buf: Vec<u8>,
    blocks: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl WriteBehind {
    pub fn new(mut inner: impl Write + Send + 'static) -> WriteBehind {
        let (blocks, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, spare) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let thread = std::thread::spawn(move || {
            for mut block in rx {
                inner.write_all(&block)?;
                block.clear();
                let _ = give_back.try_send(block);
            }
            inner.flush()
        });
        WriteBehind {
            buf: Vec::with_capacity(BLOCK),
            blocks: Some(blocks),
            spare,
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.blocks.as_ref().is_some_and(|tx| tx.send(full).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self.finish_thread())
        }
    }

    /// Stops the writer thread and returns why it stopped early.
    fn finish_thread(&mut self) -> io::Error {
        self.blocks = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the writer thread stopped"),
        }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > BLOCK && !self.buf.is_empty() {
            self.send()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    /// Hands over what is buffered and waits until everything is written.
    fn flush(&mut self) -> io::Result<()> {
        self.send()?;
        self.blocks = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_behind_writes_every_byte_in_order() {
        let path = std::env::temp_dir().join(format!("trawl-wb-{}", std::process::id()));
        let data: Vec<u8> = (0..2 * BLOCK + 999).map(|i| (i % 253) as u8).collect();
        {
            let mut w = WriteBehind::new(std::fs::File::create(&path).unwrap());
            for piece in data.chunks(12_345) {
                w.write_all(piece).unwrap();
            }
            w.flush().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), data);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn write_errors_are_reported() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut w = WriteBehind::new(full);
        let r = w.write_all(&vec![0u8; 3 * BLOCK]).and_then(|()| w.flush());
        assert!(r.is_err());
    }
}
