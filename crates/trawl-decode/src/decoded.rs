//! The structured result of [`crate::decode`]: one value per layer, all plain data borrowing the
//! packet bytes, plus [`Stop`], which says where and why decoding ended.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::app::dns::Dns;

/// Most VLAN tags kept per packet; deeper stacks are still walked, the extra tags are not kept.
pub const MAX_VLAN_TAGS: usize = 4;
/// Most MPLS label stack entries kept per packet; deeper stacks are still walked.
pub const MAX_MPLS_LABELS: usize = 8;
/// Most IPv6 extension headers walked before giving up (a packet can chain them endlessly).
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// A decoded packet. Fields of layers that were not reached are `None`; [`Decoded::stop`] says why.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded<'a> {
    pub link_type: u32,
    /// Captured length (`data.len()`).
    pub caplen: u32,
    /// Length of the packet on the wire (`orig_len`); at least `caplen` unless the caller lied.
    pub wire_len: u32,
    #[serde(skip)]
    pub data: &'a [u8],
    pub link: Link,
    pub net: Net<'a>,
    pub transport: Transport<'a>,
    pub app: App<'a>,
    pub stop: Stop,
}

/// Which layer a [`Stop`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Link,
    Vlan,
    Mpls,
    Pppoe,
    Arp,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Dns,
    Payload,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Vlan => "vlan",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmp6 => "icmp6",
            Layer::Dns => "dns",
            Layer::Payload => "payload",
        }
    }
}

/// Why decoding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum StopReason {
    /// Every layer this crate knows was decoded; what follows (if anything) is payload.
    Complete,
    /// The captured bytes end inside a header of this layer.
    Truncated,
    /// A header field makes no sense (length too small, bad version, pointer loop…).
    Malformed(&'static str),
    /// The next protocol is one this crate does not decode (its number is in the layer above).
    Unsupported,
    /// A non-first IP fragment: the transport header is in another packet.
    Fragment,
    /// IPv6 "no next header" (59).
    NoNextHeader,
    /// ESP: the rest is encrypted.
    Encrypted,
}

/// Where decoding ended: in which layer, at which byte offset of the packet, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub layer: Layer,
    pub offset: usize,
    pub reason: StopReason,
}

impl Stop {
    pub fn is_complete(&self) -> bool {
        self.reason == StopReason::Complete
    }
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(17);
        crate::text::fmt::push_mac(&mut buf, &self.0);
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or(""))
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// One 802.1Q / 802.1ad tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct VlanTag {
    /// The tag protocol identifier that introduced it (0x8100, 0x88a8, 0x9100, 0x9200).
    pub tpid: u16,
    pub vid: u16,
    pub pcp: u8,
    pub dei: bool,
}

/// One MPLS label stack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MplsLabel {
    pub label: u32,
    pub tc: u8,
    pub bottom_of_stack: bool,
    pub ttl: u8,
}

/// The Linux cooked-capture header (SLL or SLL2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Sll {
    /// 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing.
    pub packet_type: u16,
    pub arphrd_type: u16,
    pub addr_len: u16,
    #[serde(skip)]
    pub addr: [u8; 8],
    pub protocol: u16,
    /// SLL2 only.
    pub if_index: Option<u32>,
}

impl Sll {
    /// The link-layer source address (up to 8 bytes).
    pub fn addr(&self) -> &[u8] {
        &self.addr[..(self.addr_len as usize).min(8)]
    }
}

/// Frame Relay Q.922 address fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FrameRelay {
    pub dlci: u32,
    pub fecn: bool,
    pub becn: bool,
    pub de: bool,
    /// Command/response bit.
    pub cr: bool,
    /// 2, 3 or 4 bytes.
    pub address_len: u8,
    /// The control byte after the address (0x03, UI, in RFC 2427 encapsulation), if read.
    /// `None` also for Cisco encapsulation, where an ethertype follows the address directly.
    pub control: Option<u8>,
    /// A 0x00 pad byte sits between the control byte and the NLPID.
    pub pad: bool,
    /// The NLPID of the RFC 2427 encapsulation (0xcc IPv4, 0x8e IPv6, 0x80 SNAP…), if read.
    pub nlpid: Option<u8>,
    /// The ethertype of Cisco's Frame Relay encapsulation (2-byte address, then an ethertype).
    pub cisco_ethertype: Option<u16>,
}

/// A Cisco SLARP message (Cisco HDLC protocol 0x8035: serial line address resolution and
/// keepalives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Slarp {
    /// Code 0: asks the peer for its address.
    Request {
        #[serde(serialize_with = "crate::json::ser_ipv4")]
        address: [u8; 4],
        #[serde(serialize_with = "crate::json::ser_ipv4")]
        mask: [u8; 4],
    },
    /// Code 1: the sender's address and netmask.
    Reply {
        #[serde(serialize_with = "crate::json::ser_ipv4")]
        address: [u8; 4],
        #[serde(serialize_with = "crate::json::ser_ipv4")]
        mask: [u8; 4],
    },
    /// Code 2: keepalive sequence numbers, and the sender's uptime when the message carries it.
    Keepalive {
        mine_seen: u32,
        your_seen: u32,
        reliability: u16,
        /// Link uptime in milliseconds (absent in 14- to 17-byte messages).
        uptime_ms: Option<u32>,
    },
    /// Any other code.
    Other { code: u32 },
}

/// The 802.2 LLC header of an 802.3 (length-framed) Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Llc {
    pub dsap: u8,
    pub ssap: u8,
    pub control: u8,
    /// OUI of a SNAP header, if there is one.
    pub snap_oui: Option<u32>,
}

/// Which kind of link layer the packet started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    #[default]
    Unknown,
    Ethernet,
    LinuxSll,
    LinuxSll2,
    Null,
    Ppp,
    PppHdlc,
    PppEther,
    CiscoHdlc,
    FrameRelay,
    Raw,
}

/// The link layer and whatever shims (VLAN, MPLS, PPPoE) sit between it and the network layer.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(into = "crate::json::LinkJson")]
pub struct Link {
    pub kind: LinkKind,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// Number of VLAN tags seen (may exceed [`MAX_VLAN_TAGS`]; only that many are kept).
    pub vlan_count: u8,
    #[serde(skip)]
    pub vlan_tags: [VlanTag; MAX_VLAN_TAGS],
    /// Number of MPLS labels seen (may exceed [`MAX_MPLS_LABELS`]).
    pub mpls_count: u8,
    #[serde(skip)]
    pub mpls_labels: [MplsLabel; MAX_MPLS_LABELS],
    /// Ethertype (or equivalent, e.g. SLL protocol, Cisco HDLC protocol) of the payload, after
    /// all tags.
    pub ethertype: Option<u16>,
    /// 802.3 frames: the length field and LLC header.
    pub length_field: Option<u16>,
    pub llc: Option<Llc>,
    pub sll: Option<Sll>,
    /// BSD loopback address family, already in host terms (byte-swapped if needed).
    pub null_family: Option<u32>,
    /// PPP protocol number.
    pub ppp_protocol: Option<u16>,
    pub pppoe_session: Option<u16>,
    pub frame_relay: Option<FrameRelay>,
    /// Cisco HDLC SLARP message (then there is no network layer).
    pub slarp: Option<Slarp>,
    /// Offset of the network-layer header in the packet.
    pub payload_offset: usize,
}

impl Link {
    /// The VLAN tags, outermost first.
    pub fn vlans(&self) -> &[VlanTag] {
        &self.vlan_tags[..(self.vlan_count as usize).min(MAX_VLAN_TAGS)]
    }

    /// The MPLS label stack, top first.
    pub fn mpls(&self) -> &[MplsLabel] {
        &self.mpls_labels[..(self.mpls_count as usize).min(MAX_MPLS_LABELS)]
    }

    /// The outermost VLAN id, if any.
    pub fn outer_vlan(&self) -> Option<u16> {
        self.vlans().first().map(|t| t.vid)
    }
}

/// IP fragmentation state, for IPv4 and IPv6 alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Fragment {
    /// Byte offset of this fragment in the original datagram.
    pub offset: u32,
    pub more_fragments: bool,
    /// IPv4 DF bit (always false for IPv6).
    pub dont_fragment: bool,
    /// IPv4 id (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
}

impl Fragment {
    /// True for every fragment of a fragmented datagram (not for an unfragmented one).
    pub fn is_fragmented(&self) -> bool {
        self.offset != 0 || self.more_fragments
    }
}

/// The network layer.
// One `Net` lives in each `Decoded` on the stack; boxing the IPv6 variant would put an
// allocation on the hot path to save stack space nobody is short of.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, Serialize, Default)]
#[serde(tag = "proto", rename_all = "lowercase")]
pub enum Net<'a> {
    #[default]
    None,
    Ipv4(Ipv4<'a>),
    Ipv6(Ipv6<'a>),
    Arp(Arp<'a>),
}

impl<'a> Net<'a> {
    pub fn src_addr(&self) -> Option<IpAddr> {
        match self {
            Net::Ipv4(ip) => Some(IpAddr::V4(Ipv4Addr::from(ip.src))),
            Net::Ipv6(ip) => Some(IpAddr::V6(Ipv6Addr::from(ip.src))),
            _ => None,
        }
    }

    pub fn dst_addr(&self) -> Option<IpAddr> {
        match self {
            Net::Ipv4(ip) => Some(IpAddr::V4(Ipv4Addr::from(ip.dst))),
            Net::Ipv6(ip) => Some(IpAddr::V6(Ipv6Addr::from(ip.dst))),
            _ => None,
        }
    }

    /// The upper-layer protocol number (after IPv6 extension headers).
    pub fn protocol(&self) -> Option<u8> {
        match self {
            Net::Ipv4(ip) => Some(ip.protocol),
            Net::Ipv6(ip) => Some(ip.protocol),
            _ => None,
        }
    }

    /// TTL or hop limit.
    pub fn ttl(&self) -> Option<u8> {
        match self {
            Net::Ipv4(ip) => Some(ip.ttl),
            Net::Ipv6(ip) => Some(ip.hop_limit),
            _ => None,
        }
    }

    /// Offset of the network-layer header (IPv4, IPv6 or ARP) in the packet.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Net::Ipv4(ip) => Some(ip.offset),
            Net::Ipv6(ip) => Some(ip.offset),
            Net::Arp(arp) => Some(arp.offset),
            Net::None => None,
        }
    }

    pub fn fragment(&self) -> Option<Fragment> {
        match self {
            Net::Ipv4(ip) => Some(ip.fragment),
            Net::Ipv6(ip) => ip.fragment,
            _ => None,
        }
    }
}

/// An IPv4 header.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ipv4<'a> {
    /// Offset of the header in the packet.
    pub offset: usize,
    pub header_len: u8,
    pub tos: u8,
    pub total_len: u16,
    pub id: u16,
    pub fragment: Fragment,
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: u16,
    #[serde(serialize_with = "crate::json::ser_ipv4")]
    pub src: [u8; 4],
    #[serde(serialize_with = "crate::json::ser_ipv4")]
    pub dst: [u8; 4],
    #[serde(serialize_with = "crate::json::ser_hex")]
    pub options: &'a [u8],
    /// Bytes of the datagram present on the wire: `min(total_len, wire bytes left)`.
    pub wire_len: u32,
}

/// One IPv6 extension header in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Ipv6Ext {
    /// Its protocol number (0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, 51 AH).
    pub kind: u8,
    /// Offset in the packet.
    pub offset: u32,
    pub len: u32,
}

/// An IPv6 header and its extension-header chain.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ipv6<'a> {
    pub offset: usize,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: u16,
    /// The next-header field of the fixed header.
    pub next_header: u8,
    pub hop_limit: u8,
    #[serde(serialize_with = "crate::json::ser_ipv6")]
    pub src: [u8; 16],
    #[serde(serialize_with = "crate::json::ser_ipv6")]
    pub dst: [u8; 16],
    pub ext_count: u8,
    #[serde(skip)]
    pub ext_headers: [Ipv6Ext; MAX_IPV6_EXT_HEADERS],
    /// Upper-layer protocol after the extension headers (or the header where the walk stopped).
    pub protocol: u8,
    pub fragment: Option<Fragment>,
    /// Offset of the upper-layer header in the packet.
    pub upper_offset: usize,
    /// Bytes of the datagram present on the wire: `min(40 + payload_len, wire bytes left)`.
    pub wire_len: u32,
    /// Captured bytes of the fixed header and the extension headers walked.
    #[serde(skip)]
    pub header: &'a [u8],
}

impl Ipv6<'_> {
    pub fn ext_headers(&self) -> &[Ipv6Ext] {
        &self.ext_headers[..(self.ext_count as usize).min(MAX_IPV6_EXT_HEADERS)]
    }
}

/// An ARP (or RARP) packet.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Arp<'a> {
    pub offset: usize,
    pub hardware_type: u16,
    pub protocol_type: u16,
    pub hardware_len: u8,
    pub protocol_len: u8,
    pub operation: u16,
    #[serde(serialize_with = "crate::json::ser_hex")]
    pub sender_hw: &'a [u8],
    #[serde(serialize_with = "crate::json::ser_hex")]
    pub sender_proto: &'a [u8],
    #[serde(serialize_with = "crate::json::ser_hex")]
    pub target_hw: &'a [u8],
    #[serde(serialize_with = "crate::json::ser_hex")]
    pub target_proto: &'a [u8],
}

/// The transport layer.
#[derive(Debug, Clone, Copy, Serialize, Default)]
#[serde(tag = "proto", rename_all = "lowercase")]
pub enum Transport<'a> {
    #[default]
    None,
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    Icmp(Icmp<'a>),
    Icmp6(Icmp<'a>),
}

impl Transport<'_> {
    pub fn src_port(&self) -> Option<u16> {
        match self {
            Transport::Tcp(t) => Some(t.src_port),
            Transport::Udp(u) => Some(u.src_port),
            _ => None,
        }
    }

    pub fn dst_port(&self) -> Option<u16> {
        match self {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp(u) => Some(u.dst_port),
            _ => None,
        }
    }
}

/// TCP flag bits as they appear in the 16-bit data-offset/flags word (low 9 bits).
pub mod tcp_flags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    /// Accurate-ECN / former ECN-nonce bit.
    pub const AE: u16 = 0x100;
}

/// tcpdump's letters for the TCP flags, in the order it prints them.
const TCP_FLAG_LETTERS: [(u16, char); 8] = [
    (tcp_flags::FIN, 'F'),
    (tcp_flags::SYN, 'S'),
    (tcp_flags::RST, 'R'),
    (tcp_flags::PSH, 'P'),
    (tcp_flags::ACK, '.'),
    (tcp_flags::URG, 'U'),
    (tcp_flags::ECE, 'E'),
    (tcp_flags::CWR, 'W'),
];

/// A TCP header. Its JSON form adds `flag_names` (see [`Tcp::flag_names`]) next to `flags`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(into = "crate::json::TcpJson<'a>")]
pub struct Tcp<'a> {
    pub offset: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub header_len: u8,
    /// See [`tcp_flags`].
    pub flags: u16,
    pub window: u16,
    pub checksum: u16,
    pub urgent: u16,
    #[serde(serialize_with = "crate::json::ser_tcp_options")]
    pub options: &'a [u8],
    /// Captured payload bytes.
    #[serde(skip)]
    pub payload: &'a [u8],
    /// Payload length as the IP header claims it (may exceed `payload.len()`).
    pub payload_len: u32,
}

impl<'a> Tcp<'a> {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The flags as tcpdump writes them between `Flags [` and `]`: `S`, `S.`, `P.`, `F.`, `R`…
    /// (F S R P . U E W, in that order), or `none`.
    pub fn flag_names(&self) -> String {
        let names: String = TCP_FLAG_LETTERS
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|&(_, c)| c)
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names
        }
    }

    /// The options, parsed lazily.
    pub fn option_iter(&self) -> crate::transport::tcp::Options<'a> {
        crate::transport::tcp::Options::new(self.options)
    }
}

/// A UDP header.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Udp<'a> {
    pub offset: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub length: u16,
    pub checksum: u16,
    #[serde(skip)]
    pub payload: &'a [u8],
    /// Payload length: the UDP length field minus 8, limited to what IP carried.
    pub payload_len: u32,
}

/// An ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Icmp<'a> {
    pub offset: usize,
    pub icmp_type: u8,
    pub code: u8,
    pub checksum: u16,
    /// Captured message bytes from the type byte on.
    #[serde(skip)]
    pub message: &'a [u8],
    /// Message length as the IP layer gives it.
    pub length: u32,
}

impl Icmp<'_> {
    /// Identifier and sequence number of an echo request/reply (both ICMP and ICMPv6).
    pub fn echo_id_seq(&self) -> Option<(u16, u16)> {
        Some((
            crate::bytes::be16(self.message, 4)?,
            crate::bytes::be16(self.message, 6)?,
        ))
    }

    /// Target address of an ICMPv6 neighbour solicitation / advertisement (types 135, 136).
    pub fn nd_target(&self) -> Option<[u8; 16]> {
        match self.icmp_type {
            135 | 136 => crate::bytes::array(self.message, 8),
            _ => None,
        }
    }
}

/// An application-layer protocol this crate decodes.
#[derive(Debug, Clone, Copy, Serialize, Default)]
#[serde(tag = "proto", rename_all = "lowercase")]
pub enum App<'a> {
    #[default]
    None,
    Dns(Dns<'a>),
}
