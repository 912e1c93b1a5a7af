//! Retrieval: the stored packets of chosen devices in a time window, merged in time order and
//! filtered, as one pcapng stream; and the filter compiler agents use (docs/protocol.md,
//! "Retrieval").
//!
//! A download is planned, then written. [`Plan::new`] resolves the devices (within the
//! organisation only), asks the catalogue for the segments whose time range overlaps the window,
//! reads each one's stream description from its header frame, and compiles the filter for every
//! link type among them, so that every mistake (an unknown device, a bad filter) is an error
//! answer before the first byte. [`Plan::write`] then reads the segments one stream at a time —
//! only the frames that overlap the window ([`SegmentReader::window`]), and of a segment still
//! being written only the frames the catalogue vouches for — merges the streams with
//! [`trawl_merge::Order`], runs the filter with trawl's BPF interpreter, and writes pcapng.
//!
//! Over HTTP the writing runs on a blocking thread into a bounded channel that feeds the
//! response body, so memory stays the same whatever the window: a few 256 KiB chunks, and one
//! decompressed frame per stream. Everything in [`Plan`] blocks (files, SQLite).
//!
//! **Order.** Packets by time; packets with equal times by the order the devices were named in,
//! then by stream name (then epoch); within one stream, in stored (arrival) order.
//! **Window.** `[from, to)`: `from` included, `to` excluded, as `trawl slice` and `editcap -A -B`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use trawl_bpf::Program;
use trawl_merge::Order;
use trawl_pcap::{Interface, Options, PcapngWriter, Timestamp, opt};
use trawl_store::{SegmentReader, StoreError, StreamInfo, WindowOf};

use crate::api::{ApiError, AppState};
use crate::auth::Role;
use crate::catalogue::{Catalogue, CatalogueError, DeviceRef, OrgId, WindowSegment};

/// The snap length filters are compiled with for stored packets (any non-zero verdict keeps the
/// packet), as `trawl slice` does.
const FILTER_SNAPLEN: u32 = 262_144;
/// The snap length `POST /api/v1/compile` uses when none (or 0) is given.
const DEFAULT_SNAPLEN: u32 = 262_144;
/// At most this many `device` parameters in one request.
const MAX_DEVICES: usize = 256;
/// The response body is sent in chunks of about this size...
const CHUNK: usize = 256 << 10;
/// ...with at most this many waiting for the client.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 4;
/// A chunk that has waited this long is sent even if not full, so a slow, selective filter
/// still delivers what it found (and `| wireshark -k -i -` shows packets as they come).
const SEND_AFTER: Duration = Duration::from_secs(1);

/// What went wrong with a retrieval or a compilation.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// A query parameter is missing, repeated, unknown or malformed; `.0` names it.
    #[error("{0}: {1}")]
    BadParameter(String, String),
    /// No device of the organisation has this id or name (another organisation's devices are
    /// not told apart from devices that do not exist).
    #[error("no device {0:?}")]
    NotFound(String),
    /// Several devices of the organisation have this name.
    #[error("{key:?} names {} devices (ids {}): give the id", ids.len(), join(ids))]
    Ambiguous { key: String, ids: Vec<i64> },
    /// libpcap refused the filter expression for a link type.
    #[error("{message}")]
    BadFilter { link_type: u32, message: String },
    /// libpcap knows no such link type.
    #[error("{message}")]
    BadLinkType { link_type: u32, message: String },
    #[error("{0}")]
    Catalogue(#[from] CatalogueError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Writing the output failed (over HTTP: the client went away).
    #[error("writing the capture: {0}")]
    Write(#[from] io::Error),
}

fn join(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<RetrieveError> for ApiError {
    fn from(e: RetrieveError) -> Self {
        let bad = |kind| ApiError::new(StatusCode::BAD_REQUEST, kind, e.to_string());
        match &e {
            RetrieveError::BadParameter(..) => bad("bad_request"),
            RetrieveError::Ambiguous { .. } => bad("ambiguous_device"),
            RetrieveError::BadFilter { .. } => bad("bad_filter"),
            RetrieveError::BadLinkType { .. } => bad("bad_link_type"),
            RetrieveError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            RetrieveError::Catalogue(_) | RetrieveError::Store(_) | RetrieveError::Write(_) => {
                ApiError::internal(&e)
            }
        }
    }
}

/// What to retrieve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// Device ids or names, in the order that breaks ties between equal times.
    pub devices: Vec<String>,
    /// Start of the window, included.
    pub from: Timestamp,
    /// End of the window, excluded.
    pub to: Timestamp,
    /// A tcpdump filter expression.
    pub filter: Option<String>,
}

impl PullRequest {
    /// Reads `device=…&device=…&from=T&to=T[&filter=EXPR]` (already URL-decoded).
    pub fn from_query(params: &[(String, String)]) -> Result<PullRequest, RetrieveError> {
        let bad = |name: &str, detail: String| RetrieveError::BadParameter(name.into(), detail);
        let (mut devices, mut from, mut to, mut filter) = (Vec::new(), None, None, None);
        for (name, value) in params {
            let twice = || bad(name, "given more than once".into());
            match name.as_str() {
                "device" => devices.push(value.clone()),
                "from" if from.is_some() => return Err(twice()),
                "to" if to.is_some() => return Err(twice()),
                "filter" if filter.is_some() => return Err(twice()),
                "from" => from = Some(parse_time(value).map_err(|d| bad(name, d))?),
                "to" => to = Some(parse_time(value).map_err(|d| bad(name, d))?),
                "filter" => filter = Some(value.clone()),
                _ => {
                    return Err(bad(
                        name,
                        "unknown parameter (known: device, from, to, filter)".into(),
                    ));
                }
            }
        }
        if devices.is_empty() {
            return Err(bad(
                "device",
                "at least one device=ID_OR_NAME is needed".into(),
            ));
        }
        if devices.len() > MAX_DEVICES {
            return Err(bad(
                "device",
                format!("at most {MAX_DEVICES} devices at once"),
            ));
        }
        let from = from.ok_or_else(|| bad("from", "the start of the window is needed".into()))?;
        let to = to.ok_or_else(|| bad("to", "the end of the window is needed".into()))?;
        if from >= to {
            return Err(bad(
                "to",
                format!(
                    "the window is empty: to ({to}) must be after from ({from}); to is excluded"
                ),
            ));
        }
        Ok(PullRequest {
            devices,
            from,
            to,
            filter: filter.filter(|f| !f.trim().is_empty()),
        })
    }
}

/// A time as the API takes it: nanoseconds since 1970 (`1709294400000000000`), or RFC 3339
/// (`2024-03-01T12:00:00Z`, `2024-03-01T13:00:00.5+01:00`).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    let help = "nanoseconds since 1970 (1709294400000000000) or an RFC 3339 time \
                (2024-03-01T12:00:00Z; in a URL, write a + offset as %2B)";
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Timestamp::from_nanos)
            .map_err(|_| format!("{s:?} is too large: {help}"));
    }
    parse_rfc3339(s).ok_or_else(|| format!("{s:?} is not a time: {help}"))
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    // A leap second (:60) is read as the second after :59, as most systems store it.
    if sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs).ok().map(|s| Timestamp::new(s, nanos))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a download read and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Segments opened (each overlaps the window by the catalogue's time range).
    pub segments: u64,
    /// Frames decompressed (each overlaps the window by the segment's index).
    pub frames: u64,
    /// Packets in the window, before the filter.
    pub packets_in_window: u64,
    /// Packets written.
    pub packets: u64,
    /// Sum of the captured lengths of the packets written.
    pub bytes: u64,
}

/// One interface of the output: a (device, interface, link type, snap length).
#[derive(Debug)]
struct OutInterface {
    device: usize,
    name: String,
    link_type: u32,
    snaplen: u32,
}

/// A segment to read: where, how much of it, and what its packets become.
#[derive(Clone, Debug)]
struct PlannedSegment {
    dir: PathBuf,
    name: String,
    stored_bytes: u64,
    interface: u32,
    /// Index into `Plan::programs`, when there is a filter.
    program: Option<usize>,
}

/// A download, checked and ready to write.
#[derive(Debug)]
pub struct Plan {
    from: Timestamp,
    to: Timestamp,
    filter: Option<String>,
    /// The section comment: what was asked for.
    comment: String,
    file_name: String,
    devices: Vec<DeviceRef>,
    interfaces: Vec<OutInterface>,
    /// One per stream (a stream name of a device in one epoch), in tie-break order; each one's
    /// segments oldest first.
    sources: Vec<Vec<PlannedSegment>>,
    programs: Vec<Program>,
}

impl Plan {
    /// Resolves the devices of `org`, finds the segments overlapping the window and compiles the
    /// filter for their link types. Reads only segment headers.
    pub fn new(
        data_dir: &Path,
        catalogue: &Mutex<Catalogue>,
        org: OrgId,
        request: &PullRequest,
    ) -> Result<Plan, RetrieveError> {
        let (from_ns, to_ns) = (request.from.as_nanos(), request.to.as_nanos());
        let mut devices: Vec<DeviceRef> = Vec::new();
        let mut segments: Vec<(usize, Vec<WindowSegment>)> = Vec::new();
        {
            let c = catalogue.lock().unwrap_or_else(|e| e.into_inner());
            for key in &request.devices {
                let mut found = c.find_devices(org, key)?;
                let device = match found.len() {
                    0 => return Err(RetrieveError::NotFound(key.clone())),
                    1 => found.remove(0),
                    _ => {
                        return Err(RetrieveError::Ambiguous {
                            key: key.clone(),
                            ids: found.iter().map(|d| d.id).collect(),
                        });
                    }
                };
                if devices.iter().any(|d| d.id == device.id) {
                    continue;
                }
                let in_window = c.segments_in_window(org, device.id, from_ns, to_ns)?;
                segments.push((devices.len(), in_window));
                devices.push(device);
            }
        }
        let comment = describe(&devices, request);
        let file_name = format!("trawl-{}-{}.pcapng", request.from.secs, request.to.secs);
        Plan::of_segments(
            data_dir,
            devices,
            segments,
            (request.from, request.to),
            request.filter.as_deref(),
            comment,
            file_name,
        )
    }

    /// The download of chosen segments: `segments` lists, per device (an index into
    /// `devices`, whose order breaks ties), its segments by stream and age. Reads only segment
    /// headers; compiles `filter` for the link types among them.
    pub fn of_segments(
        data_dir: &Path,
        devices: Vec<DeviceRef>,
        segments: Vec<(usize, Vec<WindowSegment>)>,
        (from, to): (Timestamp, Timestamp),
        filter: Option<&str>,
        comment: String,
        file_name: String,
    ) -> Result<Plan, RetrieveError> {
        let mut interfaces: Vec<OutInterface> = Vec::new();
        let mut sources: Vec<Vec<PlannedSegment>> = Vec::new();
        let mut link_types: Vec<u32> = Vec::new();
        for (device, list) in segments {
            let mut stream_id = None;
            for seg in list {
                let dir = data_dir.join(&seg.dir);
                let info = match SegmentReader::read_info(&dir, &seg.name) {
                    Ok(info) => info,
                    // Removed since the catalogue was asked (retention): nothing to read.
                    Err(e) if is_gone(&e) => continue,
                    Err(e) => return Err(e.into()),
                };
                if stream_id != Some(seg.stream_id) {
                    stream_id = Some(seg.stream_id);
                    sources.push(Vec::new());
                }
                let interface = interface_for(&mut interfaces, device, &info);
                if !link_types.contains(&info.link_type) {
                    link_types.push(info.link_type);
                }
                sources
                    .last_mut()
                    .expect("pushed above")
                    .push(PlannedSegment {
                        dir,
                        name: seg.name,
                        stored_bytes: seg.stored_bytes,
                        interface,
                        program: None,
                    });
            }
        }

        let mut programs = Vec::new();
        if let Some(expr) = filter {
            // With no packet to filter, still check the expression (as for Ethernet).
            let check = if link_types.is_empty() {
                vec![1]
            } else {
                link_types.clone()
            };
            for lt in check {
                programs.push(compile_stored(expr, lt)?);
            }
            for seg in sources.iter_mut().flatten() {
                let lt = interfaces[seg.interface as usize].link_type;
                seg.program = link_types.iter().position(|&l| l == lt);
            }
        }
        Ok(Plan {
            from,
            to,
            filter: filter.map(str::to_owned),
            comment,
            file_name,
            devices,
            interfaces,
            sources,
            programs,
        })
    }

    /// The devices, resolved, in the order asked for.
    pub fn devices(&self) -> &[DeviceRef] {
        &self.devices
    }

    /// The window, `[from, to)`, and the filter.
    pub fn window(&self) -> (Timestamp, Timestamp, Option<&str>) {
        (self.from, self.to, self.filter.as_deref())
    }

    /// How many segments the download will open (those whose catalogue time range overlaps the
    /// window).
    pub fn segments(&self) -> usize {
        self.sources.iter().map(Vec::len).sum()
    }

    /// A file name for the download: `trawl-FROM-TO.pcapng` (seconds since 1970), or the job's.
    pub fn file_name(&self) -> String {
        self.file_name.clone()
    }

    /// Writes the pcapng stream: a section header, one interface per (device, interface), then
    /// the packets in time order.
    pub fn write<W: Write>(self, out: W) -> Result<PullStats, RetrieveError> {
        let mut section = PcapngWriter::<io::Sink>::default_section_options();
        section.push_str(opt::COMMENT, &self.comment);
        let mut w = PcapngWriter::new(out, &section)?;
        for iface in &self.interfaces {
            let device = &self.devices[iface.device];
            let mut i = Interface::new(iface.link_type, iface.snaplen, 1_000_000_000);
            i.options
                .push_str(opt::IF_NAME, &format!("{}/{}", device.name, iface.name));
            i.options.push_str(
                opt::IF_DESCRIPTION,
                &format!("trawl device {} ({})", device.id, device.name),
            );
            w.add_interface(&i)?;
        }

        let mut packets = self.packets();
        while packets.advance()? {
            let p = packets.packet().expect("advanced");
            w.write(p.interface, p.ts, p.orig_len, p.data, Options::default())?;
        }
        w.finish()?.flush()?;
        Ok(packets.stats())
    }

    /// The window's packets, merged in time order and filtered, one at a time: what
    /// [`write`](Self::write) writes, for other consumers (flows, reports). Each call starts
    /// again from the first packet.
    pub fn packets(&self) -> WindowPackets {
        let cursors = self
            .sources
            .iter()
            .map(|segments| Cursor {
                segments: segments.clone().into_iter(),
                window: None,
                interface: 0,
                program: None,
            })
            .collect();
        WindowPackets {
            from: self.from,
            to: self.to,
            cursors,
            order: Order::new(),
            programs: self.programs.clone(),
            interfaces: self
                .interfaces
                .iter()
                .map(|i| {
                    let device = &self.devices[i.device];
                    (format!("{}/{}", device.name, i.name), i.link_type)
                })
                .collect(),
            current: None,
            started: false,
            stats: PullStats::default(),
        }
    }
}

/// One packet of a stored sequence (a window, a job, a capture), borrowed until the next
/// `advance`.
#[derive(Clone, Copy, Debug)]
pub struct SourcePacket<'a> {
    pub ts: Timestamp,
    /// The output interface: an index into the source's interfaces.
    pub interface: u32,
    pub link_type: u32,
    /// Length on the wire; `data.len()` is the captured length.
    pub orig_len: u32,
    pub data: &'a [u8],
    /// From the pcapng packet flags: 0 unknown, 1 inbound, 2 outbound. A window's packets have
    /// none (as its download).
    pub direction: u8,
}

/// Stored packets, one at a time, for the analyses (flows, reports, profiles): a window's or a
/// job's merge ([`WindowPackets`]), or a capture's packets in their stored order.
pub trait PacketSource: Send {
    /// Moves to the next packet; `Ok(false)` at the end.
    fn advance(&mut self) -> Result<bool, RetrieveError>;
    /// The packet `advance` moved to.
    fn packet(&self) -> Option<SourcePacket<'_>>;
    /// The name of an interface: `DEVICE/INTERFACE` for devices' packets.
    fn interface_name(&self, interface: u32) -> String;
}

/// A window's packets: the streams merged by time ([`trawl_merge::Order`]; ties as the
/// download breaks them), filtered. Memory: one decompressed frame per stream.
pub struct WindowPackets {
    from: Timestamp,
    to: Timestamp,
    cursors: Vec<Cursor>,
    order: Order,
    programs: Vec<Program>,
    /// Per output interface: `DEVICE/INTERFACE` and link type.
    interfaces: Vec<(String, u32)>,
    /// The cursor whose packet is current.
    current: Option<usize>,
    started: bool,
    stats: PullStats,
}

impl WindowPackets {
    /// What has been read and kept so far (all of it once `advance` has said `false`).
    pub fn stats(&self) -> PullStats {
        self.stats
    }

    /// Moves to the next packet that passes the filter; `Ok(false)` at the end.
    pub fn advance(&mut self) -> Result<bool, RetrieveError> {
        if !self.started {
            self.started = true;
            for n in 0..self.cursors.len() {
                if let Some(ts) = self.cursors[n].next(self.from, self.to, &mut self.stats)? {
                    self.order.push(ts, n as u64, n);
                }
            }
        }
        if let Some(n) = self.current.take() {
            self.step(n)?;
        }
        while let Some(n) = self.order.pop() {
            let c = &self.cursors[n];
            let p = c
                .window
                .as_ref()
                .and_then(|w| w.packet())
                .expect("a source in the order has a packet");
            self.stats.packets_in_window += 1;
            let keep = c
                .program
                .is_none_or(|i| self.programs[i].run(p.data, p.orig_len) != 0);
            if keep {
                self.stats.packets += 1;
                self.stats.bytes += p.data.len() as u64;
                self.current = Some(n);
                return Ok(true);
            }
            self.step(n)?;
        }
        Ok(false)
    }

    /// Moves cursor `n` on and puts it back in the order if it has another packet.
    fn step(&mut self, n: usize) -> Result<(), RetrieveError> {
        if let Some(ts) = self.cursors[n].next(self.from, self.to, &mut self.stats)? {
            self.order.push(ts, n as u64, n);
        }
        Ok(())
    }

    /// The packet `advance` moved to.
    pub fn packet(&self) -> Option<SourcePacket<'_>> {
        let c = &self.cursors[self.current?];
        let p = c.window.as_ref()?.packet()?;
        Some(SourcePacket {
            ts: p.ts,
            interface: c.interface,
            link_type: self.interfaces[c.interface as usize].1,
            orig_len: p.orig_len,
            data: p.data,
            direction: 0,
        })
    }
}

impl PacketSource for WindowPackets {
    fn advance(&mut self) -> Result<bool, RetrieveError> {
        WindowPackets::advance(self)
    }

    fn packet(&self) -> Option<SourcePacket<'_>> {
        WindowPackets::packet(self)
    }

    fn interface_name(&self, interface: u32) -> String {
        self.interfaces
            .get(interface as usize)
            .map_or_else(|| format!("#{interface}"), |i| i.0.clone())
    }
}

/// The section comment of a retrieval: what was asked for.
fn describe(devices: &[DeviceRef], request: &PullRequest) -> String {
    let devices: Vec<String> = devices
        .iter()
        .map(|d| format!("{} (id {})", d.name, d.id))
        .collect();
    let mut s = format!(
        "trawl retrieval: devices {}; window [{}, {})",
        devices.join(", "),
        request.from,
        request.to
    );
    if let Some(f) = &request.filter {
        s.push_str(&format!("; filter {f:?}"));
    }
    s
}

/// The output interface for a stream of `device` described by `info`, added if new.
fn interface_for(interfaces: &mut Vec<OutInterface>, device: usize, info: &StreamInfo) -> u32 {
    let found = interfaces.iter().position(|i| {
        i.device == device
            && i.name == info.interface
            && i.link_type == info.link_type
            && i.snaplen == info.snaplen
    });
    let n = found.unwrap_or_else(|| {
        interfaces.push(OutInterface {
            device,
            name: info.interface.clone(),
            link_type: info.link_type,
            snaplen: info.snaplen,
        });
        interfaces.len() - 1
    });
    n as u32
}

fn is_gone(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Opens a stored segment to read what the catalogue vouches for (`stored_bytes`: of a
/// segment still being written, frames past it belong to a batch not yet acknowledged);
/// `None` if retention has removed it since it was listed.
pub(crate) fn open_stored(
    dir: &Path,
    name: &str,
    stored_bytes: u64,
) -> Result<Option<SegmentReader>, StoreError> {
    match SegmentReader::open(dir, name) {
        Ok(mut r) => {
            r.limit_to(stored_bytes);
            Ok(Some(r))
        }
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where one stream is: its segments still to read and the window being read.
struct Cursor {
    segments: std::vec::IntoIter<PlannedSegment>,
    window: Option<WindowOf<SegmentReader>>,
    interface: u32,
    program: Option<usize>,
}

impl Cursor {
    /// Moves to the stream's next packet in the window, opening its next segment when one ends;
    /// its time, or `None` at the end of the stream.
    fn next(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        stats: &mut PullStats,
    ) -> Result<Option<u64>, RetrieveError> {
        loop {
            if let Some(win) = &mut self.window {
                if win.advance()? {
                    return Ok(Some(win.packet().expect("advanced").ts.as_nanos()));
                }
                stats.frames += win.frames_decoded() as u64;
                self.window = None;
            }
            let Some(seg) = self.segments.next() else {
                return Ok(None);
            };
            let Some(reader) = open_stored(&seg.dir, &seg.name, seg.stored_bytes)? else {
                continue;
            };
            stats.segments += 1;
            self.interface = seg.interface;
            self.program = seg.program;
            self.window = Some(reader.into_window(from, to));
        }
    }
}

/// Compiles a filter for stored packets of `link_type` as `tcpdump -r` would for a file.
pub(crate) fn compile_stored(expr: &str, link_type: u32) -> Result<Program, RetrieveError> {
    trawl_bpfc::compile_offline(expr, link_type, FILTER_SNAPLEN, true).map_err(|e| {
        RetrieveError::BadFilter {
            link_type,
            message: format!("{} (link type {link_type})", e.message()),
        }
    })
}

/// `POST /api/v1/compile`: a tcpdump expression for a live capture of a link type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileRequest {
    pub expression: String,
    /// A `LINKTYPE_*` value (1 Ethernet, 113 Linux cooked, …).
    pub link_type: u32,
    /// The capture's snap length: the accept value of the program's returns; absent or 0:
    /// 262144.
    #[serde(default)]
    pub snaplen: Option<u32>,
}

/// Compiles as for a live Linux socket (libpcap on a dead handle), and checks the program
/// against the kernel's rules, since that is where it goes.
pub fn compile(req: &CompileRequest) -> Result<Program, RetrieveError> {
    let snaplen = req.snaplen.filter(|&s| s != 0).unwrap_or(DEFAULT_SNAPLEN);
    let lt = req.link_type;
    let program = trawl_bpfc::compile(&req.expression, lt, snaplen, true).map_err(|e| {
        // libpcap refuses even the empty expression for a link type it does not know.
        match trawl_bpfc::compile("", lt, snaplen, true) {
            Err(unknown) => RetrieveError::BadLinkType {
                link_type: lt,
                message: unknown.message(),
            },
            Ok(_) => RetrieveError::BadFilter {
                link_type: lt,
                message: e.message(),
            },
        }
    })?;
    program.validate().map_err(|e| RetrieveError::BadFilter {
        link_type: lt,
        message: format!("libpcap compiled it, but the Linux kernel would refuse the program: {e}"),
    })?;
    Ok(program)
}

/// `POST /api/v1/compile`, for a viewer or above (to check a filter as it is typed) or a device
/// credential.
pub(crate) async fn compile_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CompileRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let token = crate::api::bearer(&headers)?;
        let person = st.principal_by_token(token.clone()).await?;
        let known = person.is_some()
            || st
                .db(move |c| Ok(c.device_by_credential(&token)?.is_some_and(|d| !d.revoked)))
                .await?;
        if !known {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a token or a device credential is needed",
            ));
        }
    } else {
        st.auth(&headers, Role::Viewer).await?;
    }
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let program = tokio::task::spawn_blocking(move || compile(&req))
        .await
        .map_err(ApiError::internal)??;
    let n = program.len();
    Ok(Json(json!({ "program": program, "instructions": n })).into_response())
}

/// `GET /api/v1/packets`: the download, streamed.
pub(crate) async fn packets_handler(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let org = st.auth(&headers, Role::Viewer).await?.org;
    let Query(params) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let request = PullRequest::from_query(&params)?;
    let (data_dir, catalogue) = (st.ingest.data_dir.clone(), st.catalogue.clone());
    let plan = tokio::task::spawn_blocking(move || {
        Plan::new(&data_dir, &catalogue, org, &request).map(|p| (p, request))
    })
    .await
    .map_err(ApiError::internal)??;
    let (plan, request) = plan;
    let what = format!(
        "retrieval for organisation {org}, devices {}, [{}, {})",
        request.devices.join(","),
        request.from,
        request.to
    );
    Ok(stream_plan(plan, what))
}

/// Answers with the plan's pcapng, written on a blocking thread into the response body as it
/// is read; `what` names the download in the log.
pub(crate) fn stream_plan(plan: Plan, what: String) -> Response {
    let file_name = plan.file_name().to_owned();
    stream_pcapng(
        &file_name,
        what,
        move |out| plan.write(out),
        |s| {
            format!(
                "{} segments opened, {} frames decoded, {} packets in the window, {} sent ({} bytes)",
                s.segments, s.frames, s.packets_in_window, s.packets, s.bytes
            )
        },
    )
}

/// Answers with a pcapng download named `file_name`: `write` produces it on a blocking thread
/// into the response body as it is read (a slow client slows the writer). The log says what
/// was sent (`summary`) or why it stopped; a failure mid-stream cuts the transfer off, so the
/// client never sees a capture that looks complete.
pub(crate) fn stream_pcapng<S>(
    file_name: &str,
    what: String,
    write: impl FnOnce(&mut BodyWriter) -> Result<S, RetrieveError> + Send + 'static,
    summary: impl FnOnce(&S) -> String + Send + 'static,
) -> Response {
    stream_body(
        "application/x-pcapng",
        Some(file_name),
        what,
        write,
        summary,
    )
}

/// Answers with a body of `content_type` (an attachment named `file_name`, if given) that
/// `write` produces on a blocking thread as it is read, as [`stream_pcapng`].
pub(crate) fn stream_body<S>(
    content_type: &'static str,
    file_name: Option<&str>,
    what: String,
    write: impl FnOnce(&mut BodyWriter) -> Result<S, RetrieveError> + Send + 'static,
    summary: impl FnOnce(&S) -> String + Send + 'static,
) -> Response {
    let disposition = file_name.map(|f| format!("attachment; filename=\"{f}\""));
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut out = BodyWriter::new(tx, runtime);
        let result = write(&mut out);
        match result.and_then(|stats| out.finish().map(|()| stats).map_err(Into::into)) {
            Ok(s) => tracing::info!("{what}: {} in {:?}", summary(&s), started.elapsed()),
            Err(RetrieveError::Write(e)) if out.closed => {
                tracing::info!("{what} stopped: {e}");
            }
            Err(e) => {
                tracing::error!("{what} failed mid-stream: {e}");
                out.abort(io::Error::other(e.to_string()));
            }
        }
    });
    let mut response = Body::from_stream(Chunks::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(Ok(v)) = disposition.map(|d| HeaderValue::from_str(&d)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// What a streamed body's writer sends, in order: chunks, then the end or an error.
pub(crate) enum Piece {
    Chunk(Bytes),
    /// The body is whole.
    End,
    /// The body breaks off: the client sees an error, never a complete response.
    Fail(io::Error),
}

/// A streamed response body: the pieces a blocking writer sends. One queue carries chunks, the
/// end and the error, so the end is seen only after every chunk sent before it (http-body-util's
/// `Channel`, used before, looked at its chunk queue and then, separately, at whether its
/// sender was gone: a writer that sent its only chunk and finished between those two looks
/// ended the body empty but complete — a small capture's download once came back as a 200 with
/// no bytes). A writer gone without saying `End` (it panicked, the server is stopping) breaks
/// the body off: a cut response is never passed off as a whole one.
pub(crate) struct Chunks {
    rx: mpsc::Receiver<Piece>,
    over: bool,
}

impl Chunks {
    pub(crate) fn new(rx: mpsc::Receiver<Piece>) -> Chunks {
        Chunks { rx, over: false }
    }
}

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.over {
            return std::task::Poll::Ready(None);
        }
        let piece = std::task::ready!(self.rx.poll_recv(cx));
        std::task::Poll::Ready(match piece {
            Some(Piece::Chunk(b)) => Some(Ok(b)),
            Some(Piece::End) => {
                self.over = true;
                None
            }
            Some(Piece::Fail(e)) => {
                self.over = true;
                Some(Err(e))
            }
            None => {
                self.over = true;
                Some(Err(io::Error::other(
                    "the response's writer stopped before the end",
                )))
            }
        })
    }
}

fn client_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}

/// The response body as a `Write`: chunks of about [`CHUNK`] bytes into a bounded channel, sent
/// from a blocking thread (the writer waits while the client is slow).
pub(crate) struct BodyWriter {
    tx: Option<mpsc::Sender<Piece>>,
    runtime: tokio::runtime::Handle,
    buf: Vec<u8>,
    last_send: Instant,
    writes: u32,
    /// The client went away.
    pub(crate) closed: bool,
}

impl BodyWriter {
    pub(crate) fn new(tx: mpsc::Sender<Piece>, runtime: tokio::runtime::Handle) -> Self {
        BodyWriter {
            tx: Some(tx),
            runtime,
            buf: Vec::with_capacity(CHUNK + (64 << 10)),
            last_send: Instant::now(),
            writes: 0,
            closed: false,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(client_gone());
        };
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + (64 << 10)));
        if self
            .runtime
            .block_on(tx.send(Piece::Chunk(Bytes::from(chunk))))
            .is_err()
        {
            self.closed = true;
            self.tx = None;
            return Err(client_gone());
        }
        self.last_send = Instant::now();
        Ok(())
    }

    /// Sends what is left; the body then ends normally.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        if let Some(tx) = self.tx.take()
            && self.runtime.block_on(tx.send(Piece::End)).is_err()
        {
            self.closed = true;
            return Err(client_gone());
        }
        Ok(())
    }

    /// Ends the body with an error after what was sent.
    pub(crate) fn abort(&mut self, e: io::Error) {
        if let Some(tx) = self.tx.take() {
            // Only fails when the client is gone, who then needs no error.
            let _ = self.runtime.block_on(tx.send(Piece::Fail(e)));
        }
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.writes = self.writes.wrapping_add(1);
        let waited = self.writes.is_multiple_of(1024) && self.last_send.elapsed() >= SEND_AFTER;
        if self.buf.len() >= CHUNK || waited {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times_as_nanoseconds_or_rfc3339() {
        // date -u -d 2024-03-01T12:00:00Z +%s == 1709294400
        let noon = Timestamp::new(1_709_294_400, 0);
        assert_eq!(parse_time("1709294400000000000"), Ok(noon));
        assert_eq!(parse_time("2024-03-01T12:00:00Z"), Ok(noon));
        assert_eq!(parse_time("2024-03-01t12:00:00z"), Ok(noon));
        assert_eq!(
            parse_time("2024-03-01T13:00:00.5+01:00"),
            Ok(Timestamp::new(1_709_294_400, 500_000_000))
        );
        assert_eq!(
            parse_time("2024-03-01T11:00:00.000000001-01:00"),
            Ok(Timestamp::new(1_709_294_400, 1))
        );
        // date -u -d 2024-02-29T00:00:00Z +%s == 1709164800
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z"),
            Ok(Timestamp::new(1_709_164_800, 0))
        );
        for bad in [
            "",
            "yesterday",
            "2023-02-29T00:00:00Z",
            "2024-03-01T12:00:00",
            "2024-03-01T12:00:00 01:00",
            "2024-03-01T24:00:00Z",
            "2024-03-01T12:00:00.Z",
            "2024-03-01T12:00:00.1234567890Z",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
            "-5",
            "2024-03-01T12:00:00Zjunk",
            "2024-०३-01T12:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn query_parameters_are_checked_and_named() {
        let ok = PullRequest::from_query(&pairs(&[
            ("device", "gw-a"),
            ("device", "7"),
            ("from", "1000"),
            ("to", "2024-03-01T12:00:00Z"),
            ("filter", "tcp"),
        ]))
        .unwrap();
        assert_eq!(ok.devices, ["gw-a", "7"]);
        assert_eq!(ok.from, Timestamp::new(0, 1000));
        assert_eq!(ok.filter.as_deref(), Some("tcp"));

        let err = |q: &[(&str, &str)]| PullRequest::from_query(&pairs(q)).unwrap_err().to_string();
        assert!(err(&[("from", "1"), ("to", "2")]).starts_with("device:"));
        assert!(err(&[("device", "a"), ("to", "2")]).starts_with("from:"));
        assert!(err(&[("device", "a"), ("from", "2")]).starts_with("to:"));
        assert!(err(&[("device", "a"), ("from", "x"), ("to", "2")]).starts_with("from:"));
        assert!(err(&[("device", "a"), ("from", "2"), ("to", "2")]).contains("empty"));
        assert!(err(&[("device", "a"), ("from", "3"), ("to", "2")]).contains("empty"));
        assert!(
            err(&[("device", "a"), ("from", "1"), ("from", "1"), ("to", "2")])
                .contains("more than once")
        );
        assert!(err(&[("devices", "a")]).starts_with("devices: unknown parameter"));
    }

    #[test]
    fn compile_answers_libpcap_and_tells_an_unknown_link_type_apart() {
        let p = compile(&CompileRequest {
            expression: "tcp port 80".into(),
            link_type: 1,
            snaplen: None,
        })
        .unwrap();
        assert_eq!(p.insns().last().unwrap().k, 0);
        assert!(p.insns().iter().any(|i| i.k == DEFAULT_SNAPLEN));
        let bad = compile(&CompileRequest {
            expression: "tcp port eighty".into(),
            link_type: 1,
            snaplen: Some(1500),
        })
        .unwrap_err();
        assert!(matches!(bad, RetrieveError::BadFilter { .. }), "{bad:?}");
        let unknown = compile(&CompileRequest {
            expression: "tcp".into(),
            link_type: 9999,
            snaplen: None,
        })
        .unwrap_err();
        assert!(
            matches!(unknown, RetrieveError::BadLinkType { .. }),
            "{unknown:?}"
        );
        assert!(unknown.to_string().contains("9999"), "{unknown}");
    }

    /// A writer that has sent its only chunk and finished, read by a task that tokio has just
    /// told "not ready" (its budget used up): the body waits, then delivers the chunk, and
    /// only then ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_read_out_of_budget_still_delivers_what_was_sent() {
        use axum::body::HttpBody;
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut out = BodyWriter::new(tx, runtime);
            out.write_all(b"pcap")?;
            out.finish()
        })
        .await
        .unwrap()
        .unwrap();
        let mut body = Body::from_stream(Chunks::new(rx));
        let (busy_tx, mut busy) = mpsc::channel(1_000);
        for _ in 0..1_000 {
            busy_tx.try_send(()).unwrap();
        }
        let first = std::future::poll_fn(|cx| {
            // Receiving until tokio says "not ready" uses up this task's budget.
            while busy.poll_recv(cx).is_ready() {}
            std::task::Poll::Ready(std::pin::Pin::new(&mut body).poll_frame(cx))
        })
        .await;
        assert!(
            !matches!(first, std::task::Poll::Ready(None)),
            "the body ended before its data"
        );
        let rest = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let got = match first {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                [frame.into_data().unwrap_or_default(), rest].concat()
            }
            _ => rest.to_vec(),
        };
        assert_eq!(got, b"pcap");
    }

    /// Streams the body `write` produces and reads it as a client would: the bytes that
    /// arrived, and the error that broke it off, if any.
    async fn read_streamed(
        write: impl FnOnce(&mut BodyWriter) -> Result<(), RetrieveError> + Send + 'static,
    ) -> (usize, Option<String>) {
        let response = stream_body(
            "application/octet-stream",
            None,
            "test body".into(),
            write,
            |_| String::new(),
        );
        let mut stream = response.into_body().into_data_stream();
        let mut got = 0;
        while let Some(item) = futures_util_next(&mut stream).await {
            match item {
                Ok(b) => got += b.len(),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, None)
    }

    /// A writer that fails after sending some chunks breaks the body off with an error: what
    /// was sent arrives, and the reader sees the body did not end normally.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_fails_breaks_the_body_off() {
        let (got, error) = read_streamed(|out| {
            out.write_all(&vec![7u8; CHUNK * 2])?;
            Err(RetrieveError::NotFound("gone".into()))
        })
        .await;
        assert_eq!(got, CHUNK * 2);
        assert!(
            error.as_deref().is_some_and(|e| e.contains("gone")),
            "{error:?}"
        );
    }

    /// A writer that panics after sending a chunk breaks the body off: the reader gets the
    /// chunk and then an error, not a body that looks whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_panics_breaks_the_body_off() {
        let (got, error) = read_streamed(|out| {
            out.write_all(&vec![7u8; CHUNK])?;
            panic!("a writer's bug");
        })
        .await;
        assert_eq!(got, CHUNK);
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("before the end")),
            "{error:?}"
        );
    }

    /// A writer that finishes gives the whole body and no error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_finishes_gives_the_whole_body() {
        let (got, error) = read_streamed(|out| {
            out.write_all(&vec![7u8; CHUNK * 3 + 5])?;
            Ok(())
        })
        .await;
        assert_eq!((got, error), (CHUNK * 3 + 5, None));
    }

    async fn futures_util_next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
    }
}
