//! Link-layer header types: the numbers found in pcap and pcapng files (`LINKTYPE_*`), with the
//! names libpcap and tcpdump give them (`pcap_datalink_val_to_name`, e.g. `"EN10MB"`).

/// BSD loopback: 4-byte address family in the byte order of the capturing host.
pub const NULL: u32 = 0;
/// Ethernet II / 802.3.
pub const ETHERNET: u32 = 1;
/// PPP, with optional HDLC-like address/control bytes.
pub const PPP: u32 = 9;
/// Raw IP as some BSDs number `DLT_RAW`; libpcap maps it to [`RAW`].
pub const RAW_BSD12: u32 = 12;
/// Raw IP as OpenBSD numbers `DLT_RAW`; libpcap maps it to [`RAW`].
pub const RAW_BSD14: u32 = 14;
/// PPP in HDLC-like framing (RFC 1662), also used for Cisco HDLC on some systems.
pub const PPP_HDLC: u32 = 50;
/// PPPoE session payload without the Ethernet header.
pub const PPP_ETHER: u32 = 51;
/// Raw IPv4 or IPv6; the version nibble tells which.
pub const RAW: u32 = 101;
/// Cisco HDLC.
pub const C_HDLC: u32 = 104;
/// Frame Relay with a Q.922 address.
pub const FRELAY: u32 = 107;
/// OpenBSD loopback: 4-byte address family in network byte order.
pub const LOOP: u32 = 108;
/// Linux cooked capture, version 1.
pub const LINUX_SLL: u32 = 113;
/// Raw IPv4 only.
pub const IPV4: u32 = 228;
/// Raw IPv6 only.
pub const IPV6: u32 = 229;
/// Linux cooked capture, version 2.
pub const LINUX_SLL2: u32 = 276;

/// The libpcap name of a link type (`"EN10MB"`, `"LINUX_SLL"`), or `None` if this crate does not
/// know it.
pub fn name(link_type: u32) -> Option<&'static str> {
    Some(match link_type {
        NULL => "NULL",
        ETHERNET => "EN10MB",
        PPP => "PPP",
        RAW_BSD12 | RAW_BSD14 | RAW => "RAW",
        PPP_HDLC => "PPP_SERIAL",
        PPP_ETHER => "PPP_ETHER",
        C_HDLC => "C_HDLC",
        FRELAY => "FRELAY",
        LOOP => "LOOP",
        LINUX_SLL => "LINUX_SLL",
        IPV4 => "IPV4",
        IPV6 => "IPV6",
        LINUX_SLL2 => "LINUX_SLL2",
        _ => return None,
    })
}

/// The description tcpdump prints in "reading from file …, link-type NAME (DESCRIPTION)".
pub fn description(link_type: u32) -> Option<&'static str> {
    Some(match link_type {
        NULL => "BSD loopback",
        ETHERNET => "Ethernet",
        PPP => "PPP",
        RAW_BSD12 | RAW_BSD14 | RAW => "Raw IP",
        PPP_HDLC => "PPP over serial",
        PPP_ETHER => "PPPoE",
        C_HDLC => "Cisco HDLC",
        FRELAY => "Frame Relay",
        LOOP => "OpenBSD loopback",
        LINUX_SLL => "Linux cooked v1",
        IPV4 => "Raw IPv4",
        IPV6 => "Raw IPv6",
        LINUX_SLL2 => "Linux cooked v2",
        _ => return None,
    })
}

/// The link type for a libpcap name (case-insensitive), the inverse of [`name`].
pub fn from_name(name: &str) -> Option<u32> {
    const ALL: [u32; 13] = [
        NULL, ETHERNET, PPP, PPP_HDLC, PPP_ETHER, RAW, C_HDLC, FRELAY, LOOP, LINUX_SLL, IPV4, IPV6,
        LINUX_SLL2,
    ];
    ALL.into_iter()
        .find(|&lt| self::name(lt).is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// Whether [`crate::decode`] understands this link type.
pub fn is_supported(link_type: u32) -> bool {
    name(link_type).is_some()
}
