//! One line of text per packet, as `tcpdump -nn -tt` (4.99.3, no `-e`, no `-v`) prints it.
//!
//! [`TextFormatter`] is stateful like tcpdump: after the first packet of a TCP connection that
//! carries an ACK it prints sequence numbers relative to that packet (`-S` turns this off, see
//! [`TextOptions::absolute_seq`]). Output goes into a caller-owned `Vec<u8>`; numbers and
//! addresses are written by hand ([`fmt`]), so formatting a packet allocates nothing (the
//! sequence-number table grows by one entry per new connection).

mod dns;
pub mod fmt;
mod icmp;
mod ip;
mod link;
mod tcp;
mod udp;

use crate::decoded::Decoded;

/// How many digits of the fraction of a second to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampPrecision {
    /// `secs.micros` (6 digits, nanoseconds truncated), as `tcpdump -tt` prints.
    #[default]
    Micro,
    /// `secs.nanos` (9 digits), as `tcpdump -tt --nano` prints.
    Nano,
}

/// Options of a [`TextFormatter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Print absolute TCP sequence numbers (tcpdump `-S`).
    pub absolute_seq: bool,
    pub precision: TimestampPrecision,
}

/// Formats packets as tcpdump-style lines. Keep one per capture (it remembers TCP connections).
#[derive(Debug, Default)]
pub struct TextFormatter {
    options: TextOptions,
    tcp_seq: tcp::SeqTable,
}

impl TextFormatter {
    pub fn new(options: TextOptions) -> Self {
        TextFormatter {
            options,
            tcp_seq: tcp::SeqTable::default(),
        }
    }

    pub fn options(&self) -> TextOptions {
        self.options
    }

    /// Forgets every TCP connection seen so far (tcpdump starts each file afresh).
    pub fn reset(&mut self) {
        self.tcp_seq.clear();
    }

    /// Appends one line, with its trailing newline, for a packet captured at `secs.nanos` with
    /// `link_type`, whose captured bytes are `data` and whose length on the wire was `wire_len`.
    /// Lines for undecodable payloads may contain a tcpdump-style hex dump over several lines.
    pub fn write_line(
        &mut self,
        out: &mut Vec<u8>,
        secs: u64,
        nanos: u32,
        link_type: u32,
        data: &[u8],
        wire_len: u32,
    ) {
        fmt::push_u64(out, secs);
        out.push(b'.');
        match self.options.precision {
            TimestampPrecision::Micro => {
                fmt::push_u32_padded(out, nanos.min(999_999_999) / 1000, 6)
            }
            TimestampPrecision::Nano => fmt::push_u32_padded(out, nanos.min(999_999_999), 9),
        }
        out.push(b' ');
        let d = crate::decode_with_wire_len(link_type, data, wire_len);
        self.write_decoded(out, &d);
        out.push(b'\n');
    }

    /// Appends the text of an already decoded packet (no timestamp, no newline).
    pub fn write_decoded(&mut self, out: &mut Vec<u8>, d: &Decoded<'_>) {
        let mut p = Printer {
            out,
            d,
            seq: &mut self.tcp_seq,
            absolute_seq: self.options.absolute_seq,
        };
        link::print(&mut p);
    }
}

/// State threaded through the printers of one packet.
pub(crate) struct Printer<'p, 'a> {
    pub out: &'p mut Vec<u8>,
    pub d: &'p Decoded<'a>,
    pub seq: &'p mut tcp::SeqTable,
    pub absolute_seq: bool,
}

impl Printer<'_, '_> {
    #[inline]
    pub fn s(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }
    #[inline]
    pub fn b(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
    }
    #[inline]
    pub fn u(&mut self, v: u32) {
        fmt::push_u32(self.out, v);
    }
    /// tcpdump's truncation marker: ` [|proto]`.
    pub fn trunc(&mut self, proto: &str) {
        self.s(" [|");
        self.s(proto);
        self.s("]");
    }
}
