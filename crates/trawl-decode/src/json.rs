//! The JSON form of a [`Decoded`] packet (via serde). Addresses are strings in their usual
//! notation, byte strings are lowercase hex, TCP options and DNS records are listed.
//!
//! ```
//! let d = trawl_decode::decode(trawl_decode::linktype::RAW, &[0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
//! let v = trawl_decode::json::to_value(&d);
//! assert_eq!(v["net"]["src"], "10.0.0.1");
//! ```

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::app::dns::{Dns, RData};
use crate::decoded::{
    Decoded, FrameRelay, Link, LinkKind, Llc, Mac, MplsLabel, Slarp, Sll, Tcp, VlanTag,
};
use crate::text::fmt as tfmt;
use crate::transport::tcp::{Options, TcpOption};

/// The packet as a JSON value.
pub fn to_value(d: &Decoded<'_>) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

/// Appends the packet as one line of compact JSON (no newline).
pub fn write_json(out: &mut Vec<u8>, d: &Decoded<'_>) {
    // Serialising plain data into a Vec cannot fail; if it ever did, write `null`.
    if serde_json::to_writer(&mut *out, d).is_err() {
        out.extend_from_slice(b"null");
    }
}

fn buf_str<S: Serializer>(s: S, f: impl FnOnce(&mut Vec<u8>)) -> Result<S::Ok, S::Error> {
    let mut buf = Vec::with_capacity(48);
    f(&mut buf);
    s.serialize_str(&String::from_utf8_lossy(&buf))
}

pub(crate) fn ser_ipv4<S: Serializer>(a: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
    buf_str(s, |b| tfmt::push_ipv4(b, a))
}

pub(crate) fn ser_ipv6<S: Serializer>(a: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    buf_str(s, |b| tfmt::push_ipv6(b, a))
}

pub(crate) fn ser_hex<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    buf_str(s, |b| {
        for &x in bytes.iter() {
            tfmt::push_hex2(b, x);
        }
    })
}

pub(crate) fn ser_tcp_options<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(None)?;
    for opt in Options::new(bytes) {
        match opt {
            TcpOption::Eol => seq.serialize_element(&serde_json::json!({"kind": "eol"}))?,
            TcpOption::Nop => seq.serialize_element(&serde_json::json!({"kind": "nop"}))?,
            TcpOption::Mss(v) => {
                seq.serialize_element(&serde_json::json!({"kind": "mss", "value": v}))?
            }
            TcpOption::WindowScale(v) => {
                seq.serialize_element(&serde_json::json!({"kind": "wscale", "value": v}))?
            }
            TcpOption::SackPermitted => {
                seq.serialize_element(&serde_json::json!({"kind": "sackOK"}))?
            }
            TcpOption::Sack(blocks) => {
                let edges: Vec<[u32; 2]> = blocks
                    .chunks_exact(8)
                    .map(|c| {
                        [
                            u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        ]
                    })
                    .collect();
                seq.serialize_element(&serde_json::json!({"kind": "sack", "blocks": edges}))?
            }
            TcpOption::Timestamp { val, ecr } => {
                seq.serialize_element(&serde_json::json!({"kind": "ts", "val": val, "ecr": ecr}))?
            }
            TcpOption::Other { kind, data } => {
                let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                seq.serialize_element(&serde_json::json!({"kind": kind, "data": hex}))?
            }
            TcpOption::Malformed { kind } => {
                seq.serialize_element(&serde_json::json!({"kind": kind, "malformed": true}))?
            }
        }
    }
    seq.end()
}

impl Serialize for Dns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("offset", &self.offset)?;
        m.serialize_entry("over_tcp", &self.over_tcp)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("response", &self.is_response())?;
        m.serialize_entry("opcode", &self.opcode())?;
        m.serialize_entry("rcode", &self.rcode())?;
        m.serialize_entry("flags", &self.flags)?;
        m.serialize_entry("qdcount", &self.qdcount)?;
        m.serialize_entry("ancount", &self.ancount)?;
        m.serialize_entry("nscount", &self.nscount)?;
        m.serialize_entry("arcount", &self.arcount)?;
        let questions: Vec<serde_json::Value> = self
            .questions()
            .map(|q| serde_json::json!({"name": q.name.to_string(), "type": q.qtype, "class": q.qclass}))
            .collect();
        m.serialize_entry("questions", &questions)?;
        let records: Vec<serde_json::Value> = self
            .records()
            .map(|r| {
                let data = match r.data() {
                    RData::A(a) => serde_json::json!(std::net::Ipv4Addr::from(a).to_string()),
                    RData::Aaaa(a) => serde_json::json!(std::net::Ipv6Addr::from(a).to_string()),
                    RData::Name(n) => serde_json::json!(n.to_string()),
                    RData::Mx { preference, exchange } => {
                        serde_json::json!({"preference": preference, "exchange": exchange.to_string()})
                    }
                    RData::Srv { priority, weight, port, target } => serde_json::json!({
                        "priority": priority, "weight": weight, "port": port, "target": target.to_string()
                    }),
                    RData::Txt(t) => serde_json::json!(String::from_utf8_lossy(t)),
                    RData::Other(b) => serde_json::json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
                };
                serde_json::json!({
                    "section": r.section, "name": r.name.to_string(), "type": r.rtype,
                    "class": r.class, "ttl": r.ttl, "data": data,
                })
            })
            .collect();
        m.serialize_entry("records", &records)?;
        m.end()
    }
}

/// The JSON shape of a [`Tcp`] header: its fields, with `flag_names` (tcpdump's letters) after
/// the numeric `flags`.
#[derive(Serialize)]
pub(crate) struct TcpJson<'a> {
    offset: usize,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    header_len: u8,
    flags: u16,
    flag_names: String,
    window: u16,
    checksum: u16,
    urgent: u16,
    #[serde(serialize_with = "ser_tcp_options")]
    options: &'a [u8],
    payload_len: u32,
}

impl<'a> From<Tcp<'a>> for TcpJson<'a> {
    fn from(t: Tcp<'a>) -> Self {
        TcpJson {
            offset: t.offset,
            src_port: t.src_port,
            dst_port: t.dst_port,
            seq: t.seq,
            ack: t.ack,
            header_len: t.header_len,
            flags: t.flags,
            flag_names: t.flag_names(),
            window: t.window,
            checksum: t.checksum,
            urgent: t.urgent,
            options: t.options,
            payload_len: t.payload_len,
        }
    }
}

/// The JSON shape of a [`Link`]: the VLAN and MPLS stacks as lists, absent fields left out.
#[derive(Serialize)]
pub(crate) struct LinkJson {
    kind: LinkKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vlans: Vec<VlanTag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mpls: Vec<MplsLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ethertype: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length_field: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    llc: Option<Llc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sll: Option<Sll>,
    #[serde(skip_serializing_if = "Option::is_none")]
    null_family: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ppp_protocol: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pppoe_session: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_relay: Option<FrameRelay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slarp: Option<Slarp>,
    payload_offset: usize,
}

impl From<Link> for LinkJson {
    fn from(l: Link) -> Self {
        LinkJson {
            kind: l.kind,
            src_mac: l.src_mac,
            dst_mac: l.dst_mac,
            vlans: l.vlans().to_vec(),
            mpls: l.mpls().to_vec(),
            ethertype: l.ethertype,
            length_field: l.length_field,
            llc: l.llc,
            sll: l.sll,
            null_family: l.null_family,
            ppp_protocol: l.ppp_protocol,
            pppoe_session: l.pppoe_session,
            frame_relay: l.frame_relay,
            slarp: l.slarp,
            payload_offset: l.payload_offset,
        }
    }
}
