//! Transport layers: TCP, UDP, ICMP, ICMPv6.

pub(crate) mod icmp;
pub mod tcp;
pub(crate) mod udp;
