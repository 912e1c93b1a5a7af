//! One flow record as trawl writes it: JSON lines, CSV, Elasticsearch bulk NDJSON.
//!
//! The same fields in every form. `src` is the endpoint that sent the flow's first packet (its
//! initiator), `dst` the other; `fwd_*` counts what `src` sent, `rev_*` what it received; `bytes`
//! are lengths on the wire. Times are UTC with nanoseconds. In snapshot mode each record covers
//! one interval (`interval_start`, `interval_end`) and counts only that interval's packets.

use std::io::{self, Write};

use serde::Serialize;

use crate::{EndReason, Flow};

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Record {
    /// The first and last packet of the record.
    pub start: String,
    pub end: String,
    /// Where the flow was seen: interface (device/interface on a server), outer VLAN, DLCI.
    pub interface: String,
    pub vlan: Option<u16>,
    pub dlci: Option<u32>,
    /// IP protocol number, and its name when it has a common one.
    pub protocol: u8,
    pub protocol_name: &'static str,
    pub src: String,
    pub src_port: u16,
    pub dst: String,
    pub dst_port: u16,
    pub packets: u64,
    pub bytes: u64,
    pub fwd_packets: u64,
    pub fwd_bytes: u64,
    pub rev_packets: u64,
    pub rev_bytes: u64,
    /// OR of the TCP flags each way (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128).
    pub fwd_tcp_flags: u16,
    pub rev_tcp_flags: u16,
    /// TCP segments with SYN and without ACK (connection attempts), each way.
    pub fwd_syns: u64,
    pub rev_syns: u64,
    /// TCP segments sent again (sequence tracking), each way.
    pub fwd_retransmissions: u64,
    pub rev_retransmissions: u64,
    /// Why the record was written: idle, active (timeout; the flow goes on), end (of input),
    /// snapshot.
    pub reason: &'static str,
    pub interval_start: Option<String>,
    pub interval_end: Option<String>,
}

use crate::time::rfc3339_ns as rfc3339;

pub fn protocol_name(p: u8) -> &'static str {
    match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        58 => "icmpv6",
        89 => "ospf",
        132 => "sctp",
        _ => "",
    }
}

impl Record {
    pub fn new(f: &Flow, reason: EndReason, interface: String) -> Record {
        let (reason, interval) = match reason {
            EndReason::Idle => ("idle", None),
            EndReason::Active => ("active", None),
            EndReason::End => ("end", None),
            EndReason::Snapshot { start_ns, end_ns } => ("snapshot", Some((start_ns, end_ns))),
        };
        let (src, dst) = (f.initiator, f.responder());
        Record {
            start: rfc3339(f.first_ns()),
            end: rfc3339(f.last_ns()),
            interface,
            vlan: f.key.circuit.vlan,
            dlci: f.key.circuit.dlci,
            protocol: f.key.protocol,
            protocol_name: protocol_name(f.key.protocol),
            src: src.addr.to_string(),
            src_port: src.port,
            dst: dst.addr.to_string(),
            dst_port: dst.port,
            packets: f.fwd.packets + f.rev.packets,
            bytes: f.fwd.bytes + f.rev.bytes,
            fwd_packets: f.fwd.packets,
            fwd_bytes: f.fwd.bytes,
            rev_packets: f.rev.packets,
            rev_bytes: f.rev.bytes,
            fwd_tcp_flags: f.fwd.tcp_flags,
            rev_tcp_flags: f.rev.tcp_flags,
            fwd_syns: f.fwd.syns,
            rev_syns: f.rev.syns,
            fwd_retransmissions: f.fwd.retransmissions,
            rev_retransmissions: f.rev.retransmissions,
            reason,
            interval_start: interval.map(|(s, _)| rfc3339(s)),
            interval_end: interval.map(|(_, e)| rfc3339(e)),
        }
    }

    /// A stable identifier: the same flow record from the same packets always has the same id
    /// (so a bulk sent twice to Elasticsearch indexes it once).
    pub fn id(&self) -> String {
        let key = format!(
            "{}|{:?}|{:?}|{}|{}|{}|{}|{}|{}|{:?}",
            self.interface,
            self.vlan,
            self.dlci,
            self.protocol,
            self.src,
            self.src_port,
            self.dst,
            self.dst_port,
            self.start,
            self.interval_start
        );
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
    }

    /// The document as Elasticsearch gets it: the record and `@timestamp` (the interval's start
    /// in snapshot mode, else the first packet's time).
    pub fn es_document(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a record is plain data");
        let ts = self
            .interval_start
            .clone()
            .unwrap_or_else(|| self.start.clone());
        v.as_object_mut()
            .expect("a record is an object")
            .insert("@timestamp".into(), ts.into());
        v
    }
}

/// The forms flow records are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one line per record.
    Csv,
    /// Elasticsearch bulk NDJSON: an `index` action with the record's id, then the document.
    EsBulk,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "es-bulk" => Ok(Format::EsBulk),
            _ => Err(format!("unknown format '{s}': jsonl, csv or es-bulk")),
        }
    }
}

pub const CSV_HEADER: &str = "start,end,interface,vlan,dlci,protocol,protocol_name,src,src_port,\
dst,dst_port,packets,bytes,fwd_packets,fwd_bytes,rev_packets,rev_bytes,fwd_tcp_flags,\
rev_tcp_flags,fwd_syns,rev_syns,fwd_retransmissions,rev_retransmissions,reason,interval_start,\
interval_end";

/// Writes records in one form.
pub struct Writer<W: Write> {
    out: W,
    format: Format,
    index: String,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// `index` names the Elasticsearch index of the bulk form.
    pub fn new(mut out: W, format: Format, index: &str) -> io::Result<Writer<W>> {
        if format == Format::Csv {
            writeln!(out, "{CSV_HEADER}")?;
        }
        Ok(Writer {
            out,
            format,
            index: index.to_string(),
            line: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        self.line.clear();
        match self.format {
            Format::Jsonl => {
                json_line(&mut self.line, r)?;
                self.line.push(b'\n');
            }
            Format::EsBulk => {
                let action = serde_json::json!({"index": {"_index": self.index, "_id": r.id()}});
                serde_json::to_writer(&mut self.line, &action)?;
                self.line.push(b'\n');
                serde_json::to_writer(&mut self.line, &r.es_document())?;
                self.line.push(b'\n');
            }
            Format::Csv => csv_line(&mut self.line, r)?,
        }
        self.out.write_all(&self.line)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The record as one JSON object, byte for byte what `serde_json::to_writer` writes of it (a
/// test holds them equal), without serde's per-field machinery: flow records are written by
/// the hundred thousand. Only the interface name can need escaping; it goes through serde_json.
fn json_line(out: &mut Vec<u8>, r: &Record) -> io::Result<()> {
    /// `,"NAME":`
    fn key(out: &mut Vec<u8>, name: &str) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }
    fn text(out: &mut Vec<u8>, name: &str, v: &str) {
        key(out, name);
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    }
    fn number(out: &mut Vec<u8>, name: &str, v: u64) {
        key(out, name);
        trawl_decode::text::fmt::push_u64(out, v);
    }
    /// `v` written by `some`, or `null`.
    fn maybe<T>(out: &mut Vec<u8>, name: &str, v: Option<T>, some: fn(&mut Vec<u8>, &str, T)) {
        match v {
            Some(v) => some(out, name, v),
            None => {
                key(out, name);
                out.extend_from_slice(b"null");
            }
        }
    }
    // Times, addresses and the static names hold nothing JSON escapes.
    out.extend_from_slice(b"{\"start\":\"");
    out.extend_from_slice(r.start.as_bytes());
    out.push(b'"');
    text(out, "end", &r.end);
    key(out, "interface");
    serde_json::to_writer(&mut *out, &r.interface)?;
    maybe(out, "vlan", r.vlan.map(u64::from), number);
    maybe(out, "dlci", r.dlci.map(u64::from), number);
    number(out, "protocol", u64::from(r.protocol));
    text(out, "protocol_name", r.protocol_name);
    text(out, "src", &r.src);
    number(out, "src_port", u64::from(r.src_port));
    text(out, "dst", &r.dst);
    number(out, "dst_port", u64::from(r.dst_port));
    for (name, v) in [
        ("packets", r.packets),
        ("bytes", r.bytes),
        ("fwd_packets", r.fwd_packets),
        ("fwd_bytes", r.fwd_bytes),
        ("rev_packets", r.rev_packets),
        ("rev_bytes", r.rev_bytes),
        ("fwd_tcp_flags", u64::from(r.fwd_tcp_flags)),
        ("rev_tcp_flags", u64::from(r.rev_tcp_flags)),
        ("fwd_syns", r.fwd_syns),
        ("rev_syns", r.rev_syns),
        ("fwd_retransmissions", r.fwd_retransmissions),
        ("rev_retransmissions", r.rev_retransmissions),
    ] {
        number(out, name, v);
    }
    text(out, "reason", r.reason);
    maybe(out, "interval_start", r.interval_start.as_deref(), text);
    maybe(out, "interval_end", r.interval_end.as_deref(), text);
    out.push(b'}');
    Ok(())
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (interface names can).
fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn csv_line(out: &mut Vec<u8>, r: &Record) -> io::Result<()> {
    let fields: [&str; 7] = [
        &r.start,
        &r.end,
        &r.interface,
        &opt(&r.vlan),
        &opt(&r.dlci),
        &r.protocol.to_string(),
        r.protocol_name,
    ];
    for f in fields {
        csv_field(out, f);
        out.push(b',');
    }
    write!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},",
        r.src,
        r.src_port,
        r.dst,
        r.dst_port,
        r.packets,
        r.bytes,
        r.fwd_packets,
        r.fwd_bytes,
        r.rev_packets,
        r.rev_bytes,
        r.fwd_tcp_flags,
        r.rev_tcp_flags,
        r.fwd_syns,
        r.rev_syns,
        r.fwd_retransmissions,
        r.rev_retransmissions,
        r.reason
    )?;
    writeln!(out, "{},{}", opt(&r.interval_start), opt(&r.interval_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_what_serde_writes() {
        let base = Record {
            start: "2026-11-23T01:02:03.000000001Z".into(),
            end: "2026-11-23T01:02:04.5Z".into(),
            interface: "eth0".into(),
            vlan: None,
            dlci: None,
            protocol: 6,
            protocol_name: "tcp",
            src: "10.0.0.1".into(),
            src_port: 0,
            dst: "2001:db8::1".into(),
            dst_port: 65535,
            packets: u64::MAX,
            bytes: 0,
            fwd_packets: 1,
            fwd_bytes: 10,
            rev_packets: 99,
            rev_bytes: 1_000_000_007,
            fwd_tcp_flags: 0x1ff,
            rev_tcp_flags: 0,
            fwd_syns: 3,
            rev_syns: 0,
            fwd_retransmissions: 12,
            rev_retransmissions: 0,
            reason: "snapshot",
            interval_start: None,
            interval_end: None,
        };
        let mut records = vec![base.clone()];
        for interface in ["a \"quoted\" \\ name", "tab\there\u{1}", "ünïcode/eth0", ""] {
            records.push(Record {
                interface: interface.into(),
                vlan: Some(4095),
                dlci: Some(0),
                interval_start: Some("2026-11-23T01:02:03.1Z".into()),
                interval_end: Some("2026-11-23T01:02:03.2Z".into()),
                ..base.clone()
            });
        }
        for r in records {
            let mut ours = Vec::new();
            json_line(&mut ours, &r).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }
}
