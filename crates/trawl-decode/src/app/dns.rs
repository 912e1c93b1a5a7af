//! DNS messages (RFC 1035): header, questions and resource records, read lazily from the
//! borrowed message. Compressed names are followed safely: every pointer must point strictly
//! before the previous one (as BIND and tcpdump require), so a name can never loop, and the
//! number of labels is bounded.

use std::fmt;

use serde::Serialize;

use crate::bytes::{be16, be32, u8_at};

/// DNS server port.
pub const PORT: u16 = 53;
/// Multicast DNS port (decoded with the same code; the class top bit has mDNS meanings).
pub const MDNS_PORT: u16 = 5353;
/// Most labels a name may have before it is called malformed (255 bytes / 2 bytes per label).
const MAX_LABELS: usize = 128;
pub(crate) const HEADER_LEN: usize = 12;

/// Record types.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
}

/// A DNS message header, borrowing the message. Serialised (see [`crate::json`]) with its
/// questions and records.
#[derive(Debug, Clone, Copy)]
pub struct Dns<'a> {
    /// Offset of the message (after the TCP length prefix) in the packet.
    pub offset: usize,
    pub message: &'a [u8],
    /// Message length from the transport layer (UDP payload, or TCP payload minus the prefix).
    pub length: u32,
    pub over_tcp: bool,
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl<'a> Dns<'a> {
    /// Parses the header of `message`; `None` if it is shorter than 12 bytes.
    pub fn parse(message: &'a [u8], offset: usize, length: u32, over_tcp: bool) -> Option<Dns<'a>> {
        Some(Dns {
            offset,
            message,
            length,
            over_tcp,
            id: be16(message, 0)?,
            flags: be16(message, 2)?,
            qdcount: be16(message, 4)?,
            ancount: be16(message, 6)?,
            nscount: be16(message, 8)?,
            arcount: be16(message, 10)?,
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
    pub fn authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    pub fn recursion_available(&self) -> bool {
        self.flags & 0x0080 != 0
    }

    /// The question section.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            message: self.message,
            pos: Some(HEADER_LEN),
            left: self.qdcount,
        }
    }

    /// The answer, authority and additional records, in order; stops at the first record that
    /// does not fit in the captured bytes.
    pub fn records(&self) -> Records<'a> {
        let mut pos = Some(HEADER_LEN);
        let mut q = self.questions();
        while q.next().is_some() {}
        if q.left > 0 {
            pos = None;
        } else if let Some(p) = q.pos {
            pos = Some(p);
        }
        Records {
            message: self.message,
            pos,
            counts: [self.ancount, self.nscount, self.arcount],
            section: 0,
        }
    }
}

/// Why a name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The message ends inside the name.
    Truncated,
    /// A compression pointer that does not point strictly backwards.
    BadPointer,
    /// A label type other than normal (00) or pointer (11); the value is the label byte.
    BadLabelType(u8),
    /// More than 128 labels.
    TooLong,
}

/// A domain name at some offset of a message.
#[derive(Debug, Clone, Copy)]
pub struct Name<'a> {
    pub message: &'a [u8],
    pub offset: usize,
}

impl<'a> Name<'a> {
    /// The labels, following compression pointers.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            message: self.message,
            pos: self.offset,
            max_offset: self.offset,
            count: 0,
            done: false,
        }
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for label in self.labels() {
            match label {
                Ok(l) => {
                    for &c in l {
                        if c.is_ascii_graphic() {
                            write!(f, "{}", c as char)?;
                        } else {
                            write!(f, "\\{c:03}")?;
                        }
                    }
                    f.write_str(".")?;
                    any = true;
                }
                Err(_) => return f.write_str("<bad name>"),
            }
        }
        if !any {
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Iterator over the labels of a [`Name`].
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    message: &'a [u8],
    pos: usize,
    max_offset: usize,
    count: usize,
    done: bool,
}

impl<'a> Iterator for Labels<'a> {
    type Item = Result<&'a [u8], NameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let Some(len) = u8_at(self.message, self.pos) else {
                self.done = true;
                return Some(Err(NameError::Truncated));
            };
            match len & 0xc0 {
                0xc0 => {
                    let Some(low) = u8_at(self.message, self.pos + 1) else {
                        self.done = true;
                        return Some(Err(NameError::Truncated));
                    };
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    if target >= self.max_offset {
                        self.done = true;
                        return Some(Err(NameError::BadPointer));
                    }
                    self.max_offset = target;
                    self.pos = target;
                }
                0x00 => {
                    if len == 0 {
                        self.done = true;
                        return None;
                    }
                    self.count += 1;
                    if self.count > MAX_LABELS {
                        self.done = true;
                        return Some(Err(NameError::TooLong));
                    }
                    let start = self.pos + 1;
                    let end = start + usize::from(len);
                    let Some(label) = self.message.get(start..end) else {
                        self.done = true;
                        return Some(Err(NameError::Truncated));
                    };
                    self.pos = end;
                    return Some(Ok(label));
                }
                _ => {
                    self.done = true;
                    return Some(Err(NameError::BadLabelType(len)));
                }
            }
        }
    }
}

/// Offset just after the name that starts at `pos` (not following pointers), or `None` if the
/// message ends first or the label type is unknown.
pub fn skip_name(message: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = u8_at(message, pos)?;
        match len & 0xc0 {
            0xc0 => return (pos + 2 <= message.len()).then_some(pos + 2),
            0x00 if len == 0 => return Some(pos + 1),
            0x00 | 0x80 => pos += 1 + usize::from(len),
            _ => {
                // EDNS0 extended label: only bit-string labels (0x41) have a known size.
                if len != 0x41 {
                    return None;
                }
                let bits = u8_at(message, pos + 1)?;
                let bits = if bits == 0 { 256 } else { usize::from(bits) };
                pos += 2 + bits.div_ceil(8);
            }
        }
    }
}

/// A question.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Iterator over the question section.
#[derive(Debug, Clone)]
pub struct Questions<'a> {
    message: &'a [u8],
    pos: Option<usize>,
    left: u16,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Question<'a>;

    fn next(&mut self) -> Option<Question<'a>> {
        if self.left == 0 {
            return None;
        }
        let start = self.pos?;
        let end = skip_name(self.message, start);
        let parsed =
            end.and_then(|e| Some((e, be16(self.message, e)?, be16(self.message, e + 2)?)));
        let Some((end, qtype, qclass)) = parsed else {
            self.pos = None;
            return None;
        };
        self.left -= 1;
        self.pos = Some(end + 4);
        Some(Question {
            name: Name {
                message: self.message,
                offset: start,
            },
            qtype,
            qclass,
        })
    }
}

/// Which section a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// A resource record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub section: Section,
    pub name: Name<'a>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Offset of the record data in the message.
    pub rdata_offset: usize,
    pub rdata: &'a [u8],
}

/// Record data this crate interprets.
#[derive(Debug, Clone, Copy)]
pub enum RData<'a> {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// NS, CNAME, PTR, DNAME.
    Name(Name<'a>),
    Mx {
        preference: u16,
        exchange: Name<'a>,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name<'a>,
    },
    /// TXT: length-prefixed strings, raw.
    Txt(&'a [u8]),
    Other(&'a [u8]),
}

impl<'a> Record<'a> {
    pub fn data(&self) -> RData<'a> {
        let m = self.name.message;
        let at = |delta: usize| Name {
            message: m,
            offset: self.rdata_offset + delta,
        };
        match self.rtype {
            rtype::A if self.rdata.len() == 4 => {
                RData::A([self.rdata[0], self.rdata[1], self.rdata[2], self.rdata[3]])
            }
            rtype::AAAA if self.rdata.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.rdata);
                RData::Aaaa(a)
            }
            rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => RData::Name(at(0)),
            rtype::MX if self.rdata.len() >= 3 => RData::Mx {
                preference: be16(self.rdata, 0).unwrap_or(0),
                exchange: at(2),
            },
            rtype::SRV if self.rdata.len() >= 7 => RData::Srv {
                priority: be16(self.rdata, 0).unwrap_or(0),
                weight: be16(self.rdata, 2).unwrap_or(0),
                port: be16(self.rdata, 4).unwrap_or(0),
                target: at(6),
            },
            rtype::TXT => RData::Txt(self.rdata),
            _ => RData::Other(self.rdata),
        }
    }
}

/// Iterator over answer, authority and additional records.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    message: &'a [u8],
    pos: Option<usize>,
    counts: [u16; 3],
    section: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        while self.section < 3 && self.counts[self.section] == 0 {
            self.section += 1;
        }
        if self.section >= 3 {
            return None;
        }
        let start = self.pos?;
        let m = self.message;
        let parsed = skip_name(m, start).and_then(|e| {
            let rtype = be16(m, e)?;
            let class = be16(m, e + 2)?;
            let ttl = be32(m, e + 4)?;
            let rdlen = usize::from(be16(m, e + 8)?);
            let rdata = m.get(e + 10..e + 10 + rdlen)?;
            Some((rtype, class, ttl, e + 10, rdata))
        });
        let Some((rtype, class, ttl, rdata_offset, rdata)) = parsed else {
            self.pos = None;
            return None;
        };
        let section = [Section::Answer, Section::Authority, Section::Additional][self.section];
        self.counts[self.section] -= 1;
        self.pos = Some(rdata_offset + rdata.len());
        Some(Record {
            section,
            name: Name {
                message: m,
                offset: start,
            },
            rtype,
            class,
            ttl,
            rdata_offset,
            rdata,
        })
    }
}
