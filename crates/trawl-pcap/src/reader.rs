//! [`CaptureReader`]: one reader for both formats, chosen by the file's first bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::input::Input;
use crate::options::OwnedOptions;
use crate::{Error, ErrorKind, Packet, pcap, pcapng, snoop};

/// The file format, as detected from the magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap {
        nanos: bool,
        big_endian: bool,
        /// The "modified" (Kuznetzov) variant: 24-byte record headers.
        modified: bool,
    },
    Pcapng,
    /// Solaris snoop, read-only.
    Snoop,
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::Pcap { modified: true, .. } => "pcap (modified)",
            Format::Pcap { nanos: true, .. } => "pcap (nanosecond)",
            Format::Pcap { .. } => "pcap",
            Format::Pcapng => "pcapng",
            Format::Snoop => "snoop",
        }
    }
}

/// One capture interface. A pcap file has exactly one; a pcapng file one per interface
/// description block, numbered across its sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub link_type: u32,
    /// 0 means no limit.
    pub snaplen: u32,
    /// Which section of the file (0 for pcap).
    pub section: u32,
    /// Timestamp units per second (1 000 000 for microseconds).
    pub units_per_sec: u64,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    pub ts_offset: i64,
    /// The interface's options, little-endian (pcapng `if_name`, `if_tsresol`, comments…).
    pub options: OwnedOptions,
}

impl Interface {
    /// A plain interface counting time in `units_per_sec` (`if_tsresol` is set when it is not
    /// microseconds: a power of ten or of two, else the nearest finer power of ten) and no other
    /// options.
    pub fn new(link_type: u32, snaplen: u32, units_per_sec: u64) -> Self {
        let mut options = OwnedOptions::new();
        if units_per_sec != 1_000_000 {
            options.push(
                crate::opt::IF_TSRESOL,
                &[crate::pcapng::tsresol_for(units_per_sec)],
            );
        }
        Interface {
            link_type,
            snaplen,
            section: 0,
            units_per_sec,
            ts_offset: 0,
            options,
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.options.view().strings(crate::opt::IF_NAME).next()
    }
}

/// Reads packets from a pcap or pcapng stream.
pub struct CaptureReader<R> {
    pub(crate) input: Input<R>,
    pub(crate) format: Format,
    pub(crate) interfaces: Vec<Interface>,
    /// Options of each section header block seen so far (pcapng).
    pub(crate) sections: Vec<OwnedOptions>,
    pub(crate) ng: pcapng::State,
    pub(crate) finished: bool,
    /// The record [`advance`](Self::advance) moved to, if any.
    current: Option<RecordLoc>,
    /// A pcapng file is read up to its first packet when opened, so that the interfaces described
    /// before it are known at once; that first result waits here for the first `advance`.
    pending: Option<Result<Option<RecordLoc>, Error>>,
    /// Keep a pcap record's bytes beyond the file's snapshot length (see
    /// [`keep_whole_records`](CaptureReader::keep_whole_records)).
    pub(crate) whole_records: bool,
}

impl CaptureReader<Box<dyn Read + Send>> {
    /// Opens a capture file, decompressing gzip and zstd transparently.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let file = File::open(path.as_ref()).map_err(|e| Error::new(0, ErrorKind::Io(e)))?;
        Self::from_maybe_compressed(Box::new(file))
    }

    /// Reads from any stream, decompressing gzip and zstd transparently.
    pub fn from_maybe_compressed(inner: Box<dyn Read + Send>) -> Result<Self, Error> {
        let mut head = [0u8; 4];
        let mut inner = inner;
        let n = read_up_to(&mut inner, &mut head).map_err(|e| Error::new(0, e.into()))?;
        let rest = io::Cursor::new(head[..n].to_vec()).chain(inner);
        let stream: Box<dyn Read + Send> = if n >= 2 && head[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(rest))
        } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
            let decoder = zstd::stream::read::Decoder::new(rest)
                .map_err(|e| Error::new(0, ErrorKind::Io(e)))?;
            Box::new(decoder)
        } else {
            Box::new(rest)
        };
        CaptureReader::new(stream)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header; the format is detected from its magic number.
    pub fn new(inner: R) -> Result<Self, Error> {
        let mut input = Input::new(inner);
        let have = input.fill(4).map_err(|e| Error::new(0, e.into()))?;
        if have == 0 {
            return Err(Error::new(0, ErrorKind::Empty));
        }
        let have = input.fill(8).map_err(|e| Error::new(0, e.into()))?;
        let head = input.available()[..have.min(8)].to_vec();
        let magic = &head[..have.min(4)];
        let mut reader = CaptureReader {
            input,
            format: Format::Pcapng,
            interfaces: Vec::new(),
            sections: Vec::new(),
            ng: pcapng::State::default(),
            finished: false,
            current: None,
            pending: None,
            whole_records: false,
        };
        if magic == pcapng::SHB_TYPE {
            reader.read_first_section()?;
            // The bytes of the packet found stay in the buffer until the next read.
            reader.pending = Some(reader.next_pcapng());
        } else if head.starts_with(snoop::MAGIC) {
            reader.format = Format::Snoop;
            reader.read_snoop_header()?;
        } else if let Some(format) = pcap::detect(magic) {
            reader.format = format;
            reader.read_pcap_header()?;
        } else {
            return Err(Error::new(0, ErrorKind::UnknownFormat(head)));
        }
        Ok(reader)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Keeps every pcap record's bytes as the file holds them, even beyond the file's snapshot
    /// length, as Wireshark reads them. By default such a record is cut to the snapshot length,
    /// as libpcap (hence tcpdump) reads it. Only damaged files differ; a server storing a file
    /// as it was sent keeps them whole.
    pub fn keep_whole_records(&mut self, yes: bool) {
        self.whole_records = yes;
    }

    /// Interfaces seen so far: for pcapng, at least those described before the first packet
    /// (a file may describe more as it goes).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Options of each pcapng section header seen so far (empty for pcap).
    pub fn sections(&self) -> &[OwnedOptions] {
        &self.sections
    }

    /// Byte offset of the next record in the (decompressed) input.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// The next packet, `Ok(None)` at the end. After an error the reader is finished.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Error> {
        self.advance()?;
        Ok(self.current())
    }

    /// Moves to the next packet; `Ok(false)` at the end. The packet is then [`current`](Self::current)
    /// until the next call: this is the form to use when several readers are open at once.
    pub fn advance(&mut self) -> Result<bool, Error> {
        self.current = None;
        if self.finished {
            return Ok(false);
        }
        let result = match self.format {
            _ if self.pending.is_some() => self.pending.take().expect("pending"),
            Format::Pcap { .. } => self.next_pcap(),
            Format::Pcapng => self.next_pcapng(),
            Format::Snoop => self.next_snoop(),
        };
        match result {
            Ok(Some(loc)) => {
                self.current = Some(loc);
                Ok(true)
            }
            Ok(None) => {
                self.finished = true;
                Ok(false)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    /// The packet the last [`advance`](Self::advance) moved to.
    pub fn current(&self) -> Option<Packet<'_>> {
        self.current.as_ref().map(|loc| self.packet_at(loc))
    }

    fn packet_at(&self, loc: &RecordLoc) -> Packet<'_> {
        let data = self.input.behind(loc.data_back, loc.caplen);
        let options = crate::Options::new(
            self.input.behind(loc.opts_back, loc.opts_len),
            self.ng.big_endian,
        );
        Packet {
            interface: loc.interface,
            link_type: self.interfaces[loc.interface as usize].link_type,
            ts: loc.ts,
            orig_len: loc.orig_len,
            data,
            options,
            offset: loc.offset,
            has_time: loc.has_time,
        }
    }

    /// Makes `n` bytes available or reports a truncated `what` that began at the read position.
    pub(crate) fn need(&mut self, n: usize, what: &'static str) -> Result<(), Error> {
        let offset = self.input.offset();
        let have = self
            .input
            .fill(n)
            .map_err(|e| Error::new(offset, e.into()))?;
        if have < n {
            return Err(Error::new(
                offset,
                ErrorKind::Truncated {
                    what,
                    needed: n as u64,
                    got: have as u64,
                },
            ));
        }
        Ok(())
    }

    /// True at a clean end of input (nothing more to read).
    pub(crate) fn at_end(&mut self) -> Result<bool, Error> {
        let offset = self.input.offset();
        let have = self
            .input
            .fill(1)
            .map_err(|e| Error::new(offset, e.into()))?;
        Ok(have == 0)
    }
}

/// Where the packet just consumed lies, counted back from the read position.
pub(crate) struct RecordLoc {
    pub interface: u32,
    pub ts: crate::Timestamp,
    pub orig_len: u32,
    pub caplen: usize,
    pub data_back: usize,
    pub opts_back: usize,
    pub opts_len: usize,
    pub offset: u64,
    pub has_time: bool,
}
