//! Names for the protocols a report counts: ethertypes, IP protocol numbers, Frame Relay NLPIDs.

/// The name of an ethertype, for the common ones.
pub fn ethertype(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0800 => "IP",
        0x0806 => "ARP",
        0x0842 => "Wake-on-LAN",
        0x22f0 => "AVTP",
        0x6003 => "DECnet",
        0x8035 => "RARP",
        0x809b => "ATALK",
        0x80f3 => "AARP",
        0x8100 => "VLAN",
        0x8137 => "IPX",
        0x8138 => "IPX",
        0x86dd => "IPv6",
        0x8808 => "Ethernet flow control",
        0x8809 => "Slow protocols (LACP)",
        0x8847 => "MPLS",
        0x8848 => "MPLS multicast",
        0x8863 => "PPPoE discovery",
        0x8864 => "PPPoE session",
        0x886d => "Intel ANS",
        0x888e => "EAPOL",
        0x8892 => "PROFINET",
        0x88a8 => "QinQ",
        0x88cc => "LLDP",
        0x88e5 => "MACsec",
        0x88f7 => "PTP",
        0x8906 => "FCoE",
        0x8914 => "FIP",
        0x9000 => "Loopback",
        _ => return None,
    })
}

/// The name of an IP protocol number, for the common ones.
pub fn ip_protocol(p: u8) -> Option<&'static str> {
    Some(match p {
        0 => "HOPOPT",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IP-in-IP",
        6 => "TCP",
        8 => "EGP",
        9 => "IGP",
        11 => "NVP-II",
        17 => "UDP",
        27 => "RDP",
        33 => "DCCP",
        41 => "IPv6",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "IPv6-ICMP",
        88 => "IGRP",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        115 => "L2TP",
        132 => "SCTP",
        136 => "UDPLite",
        _ => return None,
    })
}

/// The short protocol word of top-list rows: `TCP`, `UDP`, `ICMP`, else `IP 47`.
pub fn ip_protocol_short(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        _ => format!("IP {p}"),
    }
}

/// The name of a Frame Relay NLPID (RFC 2427), for the ones met on Frame Relay links.
pub fn nlpid(n: u8) -> Option<&'static str> {
    Some(match n {
        0x08 => "Q.933",
        0x80 => "SNAP",
        0x81 => "CLNP",
        0x82 => "ES-IS",
        0x83 => "IS-IS",
        0x8e => "IPv6",
        0xb0 => "FRF.9",
        0xb1 => "FRF.12",
        0xcc => "IPv4",
        0xcf => "PPP",
        _ => return None,
    })
}
