//! `trawl flows`: the flows in captures — one record per bidirectional conversation, or its
//! counters every interval (snapshot flows) — as JSON lines, CSV or Elasticsearch bulk NDJSON.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use trawl_agent::http::Trust;
use trawl_decode::Headers;
use trawl_flow::{EndReason, Flow, FlowTable, Timeouts};

use crate::beside::{Emit, beside};
use crate::files::{self, TimeOrdered, create_output};
use crate::filter::{self, Filter};
use crate::flows::es::{EsOptions, EsSink, EsSummary};
use crate::flows::ipfix::{IpfixExporter, IpfixOptions, IpfixSummary};
use crate::progress::Progress;
use crate::source::SourceArgs;
use crate::timespec::parse_duration;
use trawl_flow::record::{Format, Record, Writer};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl flows capture.pcap
      one JSON line per flow: interface, VLAN, DLCI, protocol, src/dst address and port,
      packets and bytes each way, TCP flags, SYNs, retransmissions, first and last time
  trawl flows --snapshot -o snap.jsonl capture.pcapng
      every flow's counters in each 100 ms interval (snapshot flows): bandwidth over time
  trawl flows --format csv -f 'tcp' wan-in.pcap wan-out.pcap > flows.csv
      both directions of a line, in time order, TCP only, as CSV
  trawl flows --format es-bulk -o bulk.ndjson capture.pcap
  curl -H 'Content-Type: application/x-ndjson' --data-binary @bulk.ndjson localhost:9200/_bulk
      Elasticsearch bulk requests ready for curl
  trawl flows --snapshot --es http://elastic:secret@localhost:9200 --es-index flows capture.pcap
      post snapshot flows to Elasticsearch, waiting when it pushes back; prints how many were
      indexed (an API key instead: TRAWL_ES_API_KEY)
  trawl flows --ipfix 127.0.0.1:2055 capture.pcap
      export to an IPFIX collector (nfcapd -p 2055 …), paced (--ipfix-rate)
  trawl flows --device gw-17 --device gw-18 --from '2024-03-01 12:00' --to '2024-03-01 12:15'
      the flows in a server's stored packets of two devices over a quarter of an hour (server
      and credentials as for trawl pull: TRAWL_SERVER, TRAWL_TOKEN, TRAWL_CA)

A flow is keyed by where it was seen (interface, outer VLAN, Frame Relay DLCI), the IP protocol,
and its two addresses and ports; both directions are one flow. `src` sent its first packet.
Bytes are lengths on the wire (as tshark's conversations count them). A retransmission is a TCP
segment carrying data (or SYN/FIN) that ends at or before the highest sequence number already
seen that way. A flow's record is written when it has been idle for --idle-timeout, when it has
lasted --active-timeout (it goes on in a new record), or at the end of the input. Several files
are read in time order, as one capture. Packets that are not IPv4 or IPv6 make no flow; they are
counted in the summary on standard error (--json for a JSON summary).")]
pub struct Args {
    /// Keep only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Snapshot flows: each flow's counters over every interval (aligned to multiples of it);
    /// 100 ms unless given (--snapshot 50ms, --snapshot=1s).
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "100ms"
    )]
    pub snapshot: Option<String>,
    /// Output form.
    #[arg(long, default_value = "jsonl", value_name = "jsonl|csv|es-bulk")]
    pub format: Format,
    /// Output file, or `-` for standard output (the default, unless the records go to
    /// --ipfix or --es).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Export the records to an IPFIX collector (UDP), e.g. nfcapd: one IPFIX record per
    /// direction of a flow.
    #[arg(long, value_name = "HOST:PORT")]
    pub ipfix: Option<String>,
    /// IPFIX messages (datagrams) per second at most: a collector's socket buffer overflows if
    /// sent faster than it reads (0: no limit).
    #[arg(long, value_name = "N", default_value_t = crate::flows::ipfix::DEFAULT_RATE, requires = "ipfix")]
    pub ipfix_rate: u32,
    /// A flow without packets for this long ends.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub idle_timeout: String,
    /// A flow that has lasted this long is written, and goes on in a new record.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub active_timeout: String,
    /// Post the records to Elasticsearch (`http(s)://[user:password@]host:9200[/prefix]`) with
    /// the bulk API: resent on 429/503 and on records rejected for the moment, each record
    /// indexed once (a `create` with the record's id), none dropped without saying so.
    #[arg(long, value_name = "URL")]
    pub es: Option<String>,
    /// Elasticsearch: trust only the certificates in this PEM file (else the system's roots).
    #[arg(long, value_name = "FILE", requires = "es")]
    pub es_ca: Option<PathBuf>,
    /// Elasticsearch: records it refuses for good (mapping errors…) are written here, with
    /// the reason, as JSON lines.
    #[arg(long, value_name = "FILE", requires = "es")]
    pub es_rejects: Option<PathBuf>,
    /// Elasticsearch: give up after this long without progress.
    #[arg(long, value_name = "DURATION", default_value = "10m", requires = "es")]
    pub es_give_up: String,
    /// The Elasticsearch index (of the bulk form's actions, and for --es).
    #[arg(long, value_name = "NAME", default_value = "trawl-flows")]
    pub es_index: String,
    /// Print the summary (flows, packets, what made no flow) as JSON on standard error.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// What a run did.
#[derive(Serialize, Debug, Default)]
pub struct Summary {
    pub packets: u64,
    /// Packets the filter kept that were not IP.
    pub not_ip: u64,
    pub records: u64,
    /// The most flows alive at once (what memory is bounded by).
    pub peak_flows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipfix: Option<IpfixSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<EsSummary>,
}

/// Where the records go: a file (or standard output), an IPFIX collector.
struct Sinks {
    writer: Option<Writer<Box<dyn Write>>>,
    ipfix: Option<IpfixExporter>,
    es: Option<EsSink>,
    names: Names,
    records: u64,
    /// The first failure: records stop there and the command fails.
    failed: Option<anyhow::Error>,
}

impl Sinks {
    fn record(&mut self, f: &Flow, reason: EndReason) {
        if self.failed.is_some() {
            return;
        }
        self.records += 1;
        if self.writer.is_some() || self.es.is_some() {
            let r = Record::new(f, reason, self.names.get(f.key.circuit.interface));
            if let Some(w) = self.writer.as_mut()
                && let Err(e) = w.write(&r)
            {
                self.failed = Some(e.into());
                return;
            }
            if let Some(es) = self.es.as_mut()
                && let Err(e) = es.doc(&r.id(), &r.es_document().to_string())
            {
                self.failed = Some(e);
                return;
            }
        }
        if let Some(x) = self.ipfix.as_mut()
            && let Err(e) = x.flow(f)
        {
            self.failed = Some(e);
        }
    }
}

fn duration(flag: &str, s: &str) -> Result<u64> {
    let ns = parse_duration(s).with_context(|| format!("--{flag}"))?;
    if ns == 0 {
        bail!("--{flag}: must be more than zero");
    }
    Ok(ns)
}

pub fn run(args: Args) -> Result<()> {
    let timeouts = Timeouts {
        idle_ns: duration("idle-timeout", &args.idle_timeout)?,
        active_ns: duration("active-timeout", &args.active_timeout)?,
    };
    let mut table = match &args.snapshot {
        Some(interval) => FlowTable::with_snapshots(timeouts, duration("snapshot", interval)?),
        None => FlowTable::new(timeouts),
    };
    if let Some(f) = args.source.files.iter().find(|f| !f.exists())
        && let Some(s) = f.to_str()
        && parse_duration(s).is_ok()
    {
        bail!(
            "{s}: no such file (an interval for --snapshot comes right after it: --snapshot {s})"
        );
    }
    let mut filter = Filter::from_option(args.filter.as_deref())?;
    let mut input = args.source.open()?;
    let to_file = args
        .output
        .clone()
        .or_else(|| (args.ipfix.is_none() && args.es.is_none()).then(|| PathBuf::from("-")));
    let mut partial = None;
    let writer = match &to_file {
        Some(path) => {
            let (out, p) = create_output(path)?;
            partial = p;
            Some(Writer::new(out, args.format, &args.es_index)?)
        }
        None => None,
    };
    let ipfix = match &args.ipfix {
        Some(target) => Some(IpfixExporter::connect_with(
            target,
            IpfixOptions {
                rate: args.ipfix_rate,
                ..IpfixOptions::default()
            },
        )?),
        None => None,
    };
    let es = match &args.es {
        Some(url) => Some(EsSink::new(
            url,
            &args.es_index,
            EsOptions {
                rejects: args.es_rejects.clone(),
                trust: args.es_ca.clone().map_or(Trust::System, Trust::Ca),
                give_up_after: Duration::from_nanos(duration("es-give-up", &args.es_give_up)?),
                api_key: std::env::var("TRAWL_ES_API_KEY").ok(),
                notify: Some(|line| eprintln!("trawl: {line}")),
                ..EsOptions::default()
            },
        )?),
        None => None,
    };
    let mut sinks = Sinks {
        writer,
        ipfix,
        es,
        names: Names::default(),
        records: 0,
        failed: None,
    };
    let progress = Progress::new(input.total_size(), "flows");
    let mut summary = Summary::default();
    // Reading and decoding run on a thread of their own, beside the flow table and the records
    // on this one (crate::beside).
    let named = Arc::clone(&sinks.names.0);
    let (read, _) = beside(
        |emit| read_decoded(&mut input, &mut filter, progress, &named, emit),
        |(ts, circuit, h)| {
            table.add(ts, circuit, h, |f, reason| sinks.record(&f, reason));
            sinks.failed.is_none()
        },
    );
    if let Some(e) = sinks.failed.take() {
        return write_failed(e);
    }
    summary.packets = read?;
    table.finish(|f, reason| sinks.record(&f, reason));
    if let Some(e) = sinks.failed.take() {
        return write_failed(e);
    }
    summary.not_ip = table.skipped.not_ip;
    summary.peak_flows = table.peak_len() as u64;
    summary.records = sinks.records;
    if let Some(w) = sinks.writer.take()
        && let Err(e) = w.into_inner().flush()
    {
        return write_failed(e.into());
    }
    if let Some(p) = partial {
        p.commit()?;
    }
    if let Some(x) = sinks.ipfix.take() {
        summary.ipfix = Some(x.finish()?);
    }
    if let Some(es) = sinks.es.take() {
        match es.finish() {
            Ok(s) => summary.elasticsearch = Some(s),
            Err(e) => {
                // The counts so far, for scripts, then the error.
                if args.json
                    && let Some(es) = e.downcast_ref::<crate::flows::es::EsError>()
                {
                    summary.elasticsearch = Some(es.summary.clone());
                    eprintln!("{}", serde_json::to_string(&summary)?);
                }
                return Err(e);
            }
        }
    }
    if args.json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!(
            "{} flow records from {} packets ({} not IP)",
            summary.records, summary.packets, summary.not_ip
        );
        if let Some(es) = &summary.elasticsearch {
            eprintln!(
                "Elasticsearch: {} records indexed ({} of them already there), {} requests \
                 ({} sent again, {} records resent alone)",
                es.delivered(),
                es.already_present,
                es.requests,
                es.retried_requests,
                es.retried_items
            );
        }
        if let Some(x) = &summary.ipfix {
            eprintln!(
                "IPFIX: {} records in {} messages sent",
                x.records, x.messages
            );
        }
    }
    files::report(std::mem::take(&mut input.warnings));
    Ok(())
}

/// A reader that stopped reading (`trawl flows … | head`) ends the command quietly.
fn write_failed(e: anyhow::Error) -> Result<()> {
    if e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return Ok(());
    }
    Err(e).context("writing flow records")
}

/// Interface names by the flow engine's circuit number (input and interface in one `u32`),
/// shared with the reader thread: it names each circuit before its first packet is passed on,
/// and names them again when its file describes another interface (a file's several interfaces
/// are told apart as `file#N`).
#[derive(Default)]
struct Names(Arc<Mutex<HashMap<u32, String>>>);

impl Names {
    fn circuit(input: usize, interface: u32) -> u32 {
        ((input as u32) << 16) | (interface & 0xffff)
    }

    fn get(&self, circuit: u32) -> String {
        self.0
            .lock()
            .expect("the reader does not panic holding it")
            .get(&circuit)
            .cloned()
            .unwrap_or_default()
    }
}

/// The reader thread: packets read, filtered and decoded, passed on. Returns the number of
/// packets that passed the filter (or stops early, quietly, if the table's side stopped).
fn read_decoded(
    input: &mut TimeOrdered,
    filter: &mut Option<Filter>,
    mut progress: Progress,
    names: &Mutex<HashMap<u32, String>>,
    emit: &mut Emit<(u64, u32, Headers)>,
) -> Result<u64> {
    let mut packets = 0u64;
    let mut named: Vec<u32> = Vec::new();
    // Per input, how many interfaces it had described when its circuits were last named.
    let mut described = vec![0usize; input.inputs.len()];
    while input.advance()? {
        let (n, p) = input.current().expect("advanced");
        progress.tick(|| input.position());
        if !filter::keep(filter, p.link_type, p.data, p.orig_len)? {
            continue;
        }
        packets += 1;
        let circuit = Names::circuit(n, p.interface);
        let interfaces = input.inputs[n].reader.interfaces().len();
        let first = !named.contains(&circuit);
        if first {
            named.push(circuit);
        }
        if first || interfaces != described[n] {
            described[n] = interfaces;
            let mut names = names
                .lock()
                .expect("the records' side does not panic holding it");
            for &c in named.iter().filter(|&&c| (c >> 16) as usize == n) {
                names.insert(c, input.interface_name(n, c & 0xffff));
            }
        }
        // Only the fields the flow table reads (a whole decode for packets off the fast path).
        let h = trawl_decode::decode_headers(p.link_type, p.data, p.orig_len);
        if !emit.push((p.ts.as_nanos(), circuit, h)) {
            break;
        }
    }
    progress.finish();
    Ok(packets)
}
