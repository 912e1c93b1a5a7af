//! pcapng options: a borrowed, lazily parsed view, and their encoding.
//!
//! Options are kept as the bytes of the block they came from, with the byte order of their section.
//! Writers always write little-endian, so numeric option values from a big-endian section are
//! byte-swapped on the way out; which options are numeric depends on the block ([`BlockKind`]).

/// Option codes used by this crate and its callers.
pub mod opt {
    pub const END: u16 = 0;
    pub const COMMENT: u16 = 1;
    // Section header block.
    pub const SHB_HARDWARE: u16 = 2;
    pub const SHB_OS: u16 = 3;
    pub const SHB_USERAPPL: u16 = 4;
    // Interface description block.
    pub const IF_NAME: u16 = 2;
    pub const IF_DESCRIPTION: u16 = 3;
    pub const IF_SPEED: u16 = 8;
    pub const IF_TSRESOL: u16 = 9;
    pub const IF_TZONE: u16 = 10;
    pub const IF_FILTER: u16 = 11;
    pub const IF_OS: u16 = 12;
    pub const IF_FCSLEN: u16 = 13;
    pub const IF_TSOFFSET: u16 = 14;
    pub const IF_TXSPEED: u16 = 16;
    pub const IF_RXSPEED: u16 = 17;
    // Enhanced packet block.
    pub const EPB_FLAGS: u16 = 2;
    pub const EPB_HASH: u16 = 3;
    pub const EPB_DROPCOUNT: u16 = 4;
    pub const EPB_PACKETID: u16 = 5;
    pub const EPB_QUEUE: u16 = 6;
    // Custom options carry a private enterprise number first.
    pub const CUSTOM: [u16; 4] = [2988, 2989, 19372, 19373];
}

/// Which block the options belong to: it decides which option values are numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Section,
    Interface,
    Packet,
}

impl BlockKind {
    /// The width of a numeric option's value (to be byte-swapped), or 0 for bytes and strings.
    fn numeric_width(self, code: u16) -> usize {
        if opt::CUSTOM.contains(&code) {
            return 4; // the private enterprise number that leads the value
        }
        match (self, code) {
            (BlockKind::Interface, opt::IF_SPEED | opt::IF_TXSPEED | opt::IF_RXSPEED) => 8,
            (BlockKind::Interface, opt::IF_TSOFFSET) => 8,
            (BlockKind::Interface, opt::IF_TZONE) => 4,
            (BlockKind::Packet, opt::EPB_FLAGS | opt::EPB_QUEUE) => 4,
            (BlockKind::Packet, opt::EPB_DROPCOUNT | opt::EPB_PACKETID) => 8,
            _ => 0,
        }
    }
}

/// The options of one block, as stored (possibly big-endian).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    raw: &'a [u8],
    big_endian: bool,
}

impl<'a> Options<'a> {
    pub(crate) fn new(raw: &'a [u8], big_endian: bool) -> Self {
        Options { raw, big_endian }
    }

    /// Options written by this crate's own encoder (little-endian).
    pub fn from_le_bytes(raw: &'a [u8]) -> Self {
        Options {
            raw,
            big_endian: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// `(code, value)` pairs in order, up to `opt_endofopt` or the first malformed option (a
    /// value that would run past the block: the rest is ignored, as Wireshark does).
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter {
            raw: self.raw,
            big_endian: self.big_endian,
        }
    }

    /// The first value with this code.
    pub fn get(&self, code: u16) -> Option<&'a [u8]> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// Every value with this code that is valid UTF-8 (trailing NULs removed).
    pub fn strings(&self, code: u16) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(c, _)| *c == code)
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .map(|s| s.trim_end_matches('\0'))
    }

    pub fn u8(&self, code: u16) -> Option<u8> {
        self.get(code).and_then(|v| v.first().copied())
    }

    pub fn u64(&self, code: u16) -> Option<u64> {
        let v: [u8; 8] = self.get(code)?.get(..8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        })
    }

    pub fn u32(&self, code: u16) -> Option<u32> {
        let v: [u8; 4] = self.get(code)?.get(..4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }

    /// Appends these options, little-endian, to `out` (without the end-of-options marker).
    pub(crate) fn encode_le(&self, kind: BlockKind, out: &mut Vec<u8>) {
        for (code, value) in self.iter() {
            let start = out.len();
            push_option(out, code, value);
            let width = kind.numeric_width(code);
            if self.big_endian && width > 0 && value.len() >= width {
                out[start + 4..start + 4 + width].reverse();
            }
        }
    }
}

pub struct OptionIter<'a> {
    raw: &'a [u8],
    big_endian: bool,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.raw.get(..4)?;
        let (code, len) = if self.big_endian {
            (
                u16::from_be_bytes([head[0], head[1]]),
                u16::from_be_bytes([head[2], head[3]]),
            )
        } else {
            (
                u16::from_le_bytes([head[0], head[1]]),
                u16::from_le_bytes([head[2], head[3]]),
            )
        };
        if code == opt::END {
            self.raw = &[];
            return None;
        }
        let len = len as usize;
        let padded = (len + 3) & !3;
        let Some(value) = self.raw.get(4..4 + len) else {
            self.raw = &[];
            return None;
        };
        self.raw = self.raw.get(4 + padded..).unwrap_or(&[]);
        Some((code, value))
    }
}

/// Appends one option, little-endian and padded to 32 bits. Values longer than 65 535 bytes cannot
/// be expressed and are cut at that length.
pub(crate) fn push_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + pad4(value.len()), 0);
}

pub(crate) fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// An owned list of options, little-endian encoded; for building blocks to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedOptions {
    bytes: Vec<u8>,
}

impl OwnedOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn from_options(options: Options<'_>, kind: BlockKind) -> Self {
        let mut bytes = Vec::new();
        options.encode_le(kind, &mut bytes);
        OwnedOptions { bytes }
    }

    /// A packet block's options, owned (little-endian): to add options to before writing the
    /// packet again.
    pub fn of_packet(options: Options<'_>) -> Self {
        Self::from_options(options, BlockKind::Packet)
    }

    pub fn push(&mut self, code: u16, value: &[u8]) -> &mut Self {
        push_option(&mut self.bytes, code, value);
        self
    }

    pub fn push_str(&mut self, code: u16, value: &str) -> &mut Self {
        self.push(code, value.as_bytes())
    }

    pub fn view(&self) -> Options<'_> {
        Options::from_le_bytes(&self.bytes)
    }

    /// A copy without the options of the given code.
    pub fn without(&self, code: u16) -> Self {
        let mut out = OwnedOptions::new();
        for (c, v) in self.view().iter().filter(|(c, _)| *c != code) {
            out.push(c, v);
        }
        out
    }

    pub(crate) fn as_le_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_numbers_are_swapped_on_encode() {
        // if_tsoffset = 5 (8 bytes BE), if_name "a"
        let mut raw = vec![0, 14, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5];
        raw.extend_from_slice(&[0, 2, 0, 1, b'a', 0, 0, 0, 0, 0, 0, 0]);
        let o = Options::new(&raw, true);
        assert_eq!(o.u64(opt::IF_TSOFFSET), Some(5));
        let owned = OwnedOptions::from_options(o, BlockKind::Interface);
        assert_eq!(owned.view().u64(opt::IF_TSOFFSET), Some(5));
        assert_eq!(owned.view().strings(opt::IF_NAME).next(), Some("a"));
    }

    #[test]
    fn an_option_running_past_the_block_ends_the_list() {
        let raw = [1, 0, 200, 0, b'x', 0, 0, 0];
        assert_eq!(Options::new(&raw, false).iter().count(), 0);
    }
}
