//! A read buffer that hands out borrowed records.
//!
//! Records are returned as slices of one growable buffer, so reading costs one copy (from the
//! kernel into the buffer) and no allocation per record. The buffer grows only to the size of the
//! largest record actually present in the file: a length field is never used to size an allocation
//! before the bytes it promises have arrived.

use std::io::{self, Read};

/// How much is asked of the underlying reader at a time.
const CHUNK: usize = 1 << 20;

pub(crate) struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R) -> Self {
        Input {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// File offset of the first unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes at least `n` bytes available unless the input ends first; returns how many are
    /// available (which is less than `n` only at end of input).
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        self.read_more(n)
    }

    #[cold]
    fn read_more(&mut self, n: usize) -> io::Result<usize> {
        if self.start + n > self.buf.len() {
            // Move what is left to the front, and grow only if the record itself needs it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let want = n.max(CHUNK);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
        }
        while self.end - self.start < n && !self.eof {
            // Read in whole chunks where there is room: fewer system calls.
            let room = &mut self.buf[self.end..];
            match self.inner.read(room) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// The bytes at `[from, from+len)` of the available region, after a successful `fill`.
    pub(crate) fn slice(&self, from: usize, len: usize) -> &[u8] {
        &self.buf[self.start + from..self.start + from + len]
    }

    /// Bytes that were consumed most recently remain valid until the next `fill`; this returns
    /// `len` bytes ending `back` bytes before the read position.
    pub(crate) fn behind(&self, back: usize, len: usize) -> &[u8] {
        let s = self.start - back;
        &self.buf[s..s + len]
    }
}
