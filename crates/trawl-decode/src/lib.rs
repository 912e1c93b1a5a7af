//! Packet decoding for trawl: bytes in, values out.
//!
//! [`decode`] takes a link type (the pcap `LINKTYPE_*` number, see [`linktype`]) and the captured
//! bytes of one packet and returns a [`Decoded`] that borrows them: the link layer ([`Link`]:
//! MACs, VLAN tags, MPLS labels, Frame Relay DLCI and congestion bits, Cisco SLARP…), the
//! network layer ([`Net`]: IPv4, IPv6 with
//! its extension headers, ARP), the transport layer ([`Transport`]: TCP, UDP, ICMP, ICMPv6), DNS
//! when it is on port 53 ([`App`]), and a [`Stop`] saying where decoding ended and why. Nothing is
//! allocated; a truncated or malformed packet decodes as far as its bytes allow and never panics.
//!
//! [`TextFormatter`] renders packets as one line each, byte for byte as `tcpdump -nn -tt` 4.99.3
//! prints them for the protocols above (with tcpdump's relative TCP sequence numbers, or absolute
//! ones like `-S`). It writes into a caller-owned `Vec<u8>` with hand-written number formatting,
//! for millions of packets per second. Payloads outside that subset get tcpdump's own generic
//! forms (` ip-proto-N LEN`, `unknown PPP protocol`, Frame Relay's `Q.922, hdr-len …`). [`json`]
//! gives the serde form of a [`Decoded`] (TCP flags as a number and as tcpdump's letters).
//!
//! [`decode_headers`] reads only what flow accounting needs ([`Headers`]: addresses, ports, TCP
//! sequence fields, outer VLAN), with a fast path for the common shapes and [`decode`] for the
//! rest; both give the same values.
//!
//! The text is pinned by golden cases (`tests/decode/TESTLIST`, outputs of the real tcpdump
//! 4.99.3, optionally restricted by a tcpdump filter expression).
//!
//! Layout: `link/` (one file per link type), `net/` (IPv4, IPv6, ARP), `transport/` (TCP, UDP,
//! ICMP), `app/` (DNS), `headers.rs` (the flow fields' fast path), `text/` (the tcpdump-style
//! printer), `json.rs`. The crate does no I/O and reads no clock; `docs/decoder.md` lists where
//! the text output deliberately differs from tcpdump.

pub mod app;
mod bytes;
pub mod decoded;
pub mod headers;
pub mod json;
pub mod link;
pub mod linktype;
pub mod net;
pub mod text;
pub mod transport;

pub use app::dns::Dns;
pub use decoded::{
    App, Arp, Decoded, Fragment, Icmp, Ipv4, Ipv6, Ipv6Ext, Layer, Link, LinkKind, Mac, MplsLabel,
    Net, Slarp, Sll, Stop, StopReason, Tcp, Transport, Udp, VlanTag,
};
pub use headers::{Headers, IpHeader, TcpHeader, decode_headers, decode_headers_fast};
pub use text::{TextFormatter, TextOptions, TimestampPrecision};

use link::NetProto;
use net::proto;

impl<'a> Decoded<'a> {
    fn new(link_type: u32, data: &'a [u8], wire_len: u32) -> Self {
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        Decoded {
            link_type,
            caplen,
            wire_len: wire_len.max(caplen),
            data,
            link: Link::default(),
            net: Net::None,
            transport: Transport::None,
            app: App::None,
            stop: Stop {
                layer: Layer::Link,
                offset: 0,
                reason: StopReason::Complete,
            },
        }
    }

    pub(crate) fn set_stop(&mut self, layer: Layer, offset: usize, reason: StopReason) {
        self.stop = Stop {
            layer,
            offset,
            reason,
        };
    }
}

/// Decodes one packet whose wire length equals its captured length.
pub fn decode(link_type: u32, data: &[u8]) -> Decoded<'_> {
    decode_with_wire_len(
        link_type,
        data,
        u32::try_from(data.len()).unwrap_or(u32::MAX),
    )
}

/// Decodes one packet; `wire_len` is its length on the wire (`orig_len`), which decides the
/// lengths tcpdump prints when the capture was cut short by the snapshot length.
pub fn decode_with_wire_len(link_type: u32, data: &[u8], wire_len: u32) -> Decoded<'_> {
    // Built in place and returned once: with early returns of `d` itself the whole value
    // (hundreds of bytes) was copied out on every packet.
    let mut d = Decoded::new(link_type, data, wire_len);
    decode_layers(&mut d);
    d
}

/// Every layer after the link's, into `d`.
fn decode_layers(d: &mut Decoded<'_>) {
    let Some((net, off)) = link::decode(d) else {
        return;
    };
    let (protocol, off, wire) = match net {
        NetProto::Arp => {
            net::arp::decode(d, off);
            return;
        }
        NetProto::Ipv4 => match net::ipv4::decode(d, off) {
            Some(next) => next,
            None => return,
        },
        NetProto::Ipv6 => match net::ipv6::decode(d, off) {
            Some(next) => next,
            None => return,
        },
    };
    let ip_layer = if matches!(d.net, Net::Ipv4(_)) {
        Layer::Ipv4
    } else {
        Layer::Ipv6
    };
    match protocol {
        proto::TCP => {
            if let Some(tcp) = transport::tcp::decode(d, off, wire) {
                let payload_off = off + usize::from(tcp.header_len);
                if tcp.payload_len > 2
                    && (tcp.src_port == app::dns::PORT || tcp.dst_port == app::dns::PORT)
                {
                    // DNS over TCP: a 2-byte length prefix, then the message.
                    dns(d, payload_off + 2, tcp.payload_len - 2, true);
                } else {
                    d.set_stop(Layer::Tcp, payload_off, StopReason::Complete);
                }
            }
        }
        proto::UDP => {
            if let Some(udp) = transport::udp::decode(d, off, wire) {
                let payload_off = off + transport::udp::HEADER_LEN;
                let is_dns = [app::dns::PORT, app::dns::MDNS_PORT]
                    .iter()
                    .any(|&p| udp.src_port == p || udp.dst_port == p);
                if is_dns {
                    dns(d, payload_off, udp.payload_len, false);
                } else {
                    d.set_stop(Layer::Udp, payload_off, StopReason::Complete);
                }
            }
        }
        proto::ICMP => transport::icmp::decode(d, off, wire, false),
        proto::ICMPV6 => transport::icmp::decode(d, off, wire, true),
        _ => d.set_stop(ip_layer, off, StopReason::Unsupported),
    }
}

fn dns(d: &mut Decoded<'_>, off: usize, length: u32, over_tcp: bool) {
    let message = bytes::clamp(d.data, off, off.saturating_add(length as usize));
    match Dns::parse(message, off, length, over_tcp) {
        Some(dns) => {
            d.app = App::Dns(dns);
            d.set_stop(Layer::Dns, off, StopReason::Complete);
        }
        None if length < app::dns::HEADER_LEN as u32 => d.set_stop(
            Layer::Dns,
            off,
            StopReason::Malformed("shorter than a DNS header"),
        ),
        None => d.set_stop(Layer::Dns, off, StopReason::Truncated),
    }
}
