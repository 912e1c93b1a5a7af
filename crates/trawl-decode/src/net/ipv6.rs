//! IPv6 (RFC 8200) and its extension headers: hop-by-hop, routing, fragment, destination
//! options and AH are walked; the walk stops at ESP, "no next header", a non-first fragment, or
//! the first protocol that is not an extension header.

use super::proto;
use crate::bytes::{array, be16, be32, clamp, u8_at};
use crate::decoded::{
    Decoded, Fragment, Ipv6, Ipv6Ext, Layer, MAX_IPV6_EXT_HEADERS, Net, StopReason,
};

pub(crate) const HEADER_LEN: usize = 40;

pub(crate) fn decode<'a>(d: &mut Decoded<'a>, off: usize) -> Option<(u8, usize, u32)> {
    let data = d.data;
    let Some(first) = u8_at(data, off) else {
        d.set_stop(Layer::Ipv6, off, StopReason::Truncated);
        return None;
    };
    if first >> 4 != 6 {
        d.set_stop(
            Layer::Ipv6,
            off,
            StopReason::Malformed("IP version is not 6"),
        );
        return None;
    }
    let (Some(vtf), Some(payload_len), Some(next_header), Some(hop_limit), Some(src), Some(dst)) = (
        be32(data, off),
        be16(data, off + 4),
        u8_at(data, off + 6),
        u8_at(data, off + 7),
        array::<16>(data, off + 8),
        array::<16>(data, off + 24),
    ) else {
        d.set_stop(Layer::Ipv6, off, StopReason::Truncated);
        return None;
    };
    let wire_left = super::wire_left(d.wire_len, off);
    // Payload length 0 means a jumbogram (RFC 2675): take what the wire has.
    let wire_len = if payload_len == 0 {
        wire_left
    } else {
        wire_left.min(HEADER_LEN as u32 + u32::from(payload_len))
    };
    let mut ip = Ipv6 {
        offset: off,
        traffic_class: (vtf >> 20) as u8,
        flow_label: vtf & 0x000f_ffff,
        payload_len,
        next_header,
        hop_limit,
        src,
        dst,
        ext_count: 0,
        ext_headers: [Ipv6Ext::default(); MAX_IPV6_EXT_HEADERS],
        protocol: next_header,
        fragment: None,
        upper_offset: off + HEADER_LEN,
        wire_len,
        header: clamp(data, off, off + HEADER_LEN),
    };
    let mut chain = ExtChain::new(data, off + HEADER_LEN, next_header);
    for ext in chain.by_ref() {
        if usize::from(ip.ext_count) < MAX_IPV6_EXT_HEADERS {
            ip.ext_headers[usize::from(ip.ext_count)] = ext;
        }
        ip.ext_count += 1;
        if ext.kind == proto::FRAGMENT {
            let offlg = be16(data, ext.offset as usize + 2).unwrap_or(0);
            ip.fragment = Some(Fragment {
                offset: u32::from(offlg & 0xfff8),
                more_fragments: offlg & 1 != 0,
                dont_fragment: false,
                id: be32(data, ext.offset as usize + 4).unwrap_or(0),
            });
        }
    }
    ip.protocol = chain.next_header;
    ip.upper_offset = chain.pos;
    let result = match chain.end {
        None => Ok(()),
        Some(reason) => Err((chain.pos, reason)),
    };
    ip.header = clamp(data, off, ip.upper_offset);
    let upper_wire = wire_len.saturating_sub((ip.upper_offset - off) as u32);
    d.net = Net::Ipv6(ip);
    match result {
        Ok(()) => Some((ip.protocol, ip.upper_offset, upper_wire)),
        Err((at, reason)) => {
            d.set_stop(Layer::Ipv6, at, reason);
            None
        }
    }
}

/// Most extension headers walked (each is at least 8 bytes, so a 64 KiB packet holds fewer).
pub const MAX_EXT_WALK: usize = 8192;

/// Walks an IPv6 extension-header chain. Each call to [`ExtChain::next`] yields one complete
/// extension header; when it returns `None`, `next_header`/`pos` are the upper-layer protocol
/// and its offset (or where the walk stopped) and `end` says why it stopped (`None`: an
/// upper-layer protocol was reached).
#[derive(Debug, Clone)]
pub struct ExtChain<'a> {
    data: &'a [u8],
    pub next_header: u8,
    pub pos: usize,
    pub end: Option<StopReason>,
    walked: usize,
    done: bool,
}

impl<'a> ExtChain<'a> {
    pub fn new(data: &'a [u8], pos: usize, next_header: u8) -> Self {
        ExtChain {
            data,
            next_header,
            pos,
            end: None,
            walked: 0,
            done: false,
        }
    }
}

impl Iterator for ExtChain<'_> {
    type Item = Ipv6Ext;

    fn next(&mut self) -> Option<Ipv6Ext> {
        if self.done {
            return None;
        }
        let (data, cur, nh) = (self.data, self.pos, self.next_header);
        let ext_len = match nh {
            proto::HOPOPTS | proto::ROUTING | proto::DSTOPTS => {
                u8_at(data, cur + 1).map(|l| (usize::from(l) + 1) * 8)
            }
            proto::FRAGMENT => Some(8),
            proto::AH => u8_at(data, cur + 1).map(|l| (usize::from(l) + 2) * 4),
            proto::ESP => return self.finish(Some(StopReason::Encrypted)),
            proto::NONE => return self.finish(Some(StopReason::NoNextHeader)),
            _ => return self.finish(None),
        };
        if self.walked >= MAX_EXT_WALK {
            return self.finish(Some(StopReason::Malformed(
                "too many IPv6 extension headers",
            )));
        }
        let (Some(ext_len), Some(next)) = (ext_len, u8_at(data, cur)) else {
            return self.finish(Some(StopReason::Truncated));
        };
        if data.len() < cur + ext_len {
            return self.finish(Some(StopReason::Truncated));
        }
        self.walked += 1;
        self.next_header = next;
        self.pos = cur + ext_len;
        if nh == proto::FRAGMENT && be16(data, cur + 2).unwrap_or(0) & 0xfff8 != 0 {
            // A non-first fragment: what follows is the middle of some upper-layer packet.
            self.end = Some(StopReason::Fragment);
            self.done = true;
        }
        Some(Ipv6Ext {
            kind: nh,
            offset: cur as u32,
            len: ext_len as u32,
        })
    }
}

impl ExtChain<'_> {
    fn finish(&mut self, end: Option<StopReason>) -> Option<Ipv6Ext> {
        self.end = end;
        self.done = true;
        None
    }
}
