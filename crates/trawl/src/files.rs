//! Opening captures for reading and writing, with errors that name the file.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::pipe::WriteBehind;
use trawl_pcap::{
    CaptureReader, Interface, OwnedOptions, Packet, PcapWriter, PcapngWriter, TsPrecision,
};

pub type Reader = CaptureReader<Box<dyn Read + Send>>;

/// An input capture and its name for messages.
pub struct Input {
    pub path: PathBuf,
    pub reader: Reader,
    /// Size on disk, for progress.
    pub size: u64,
    /// A server's window: its interfaces are named `DEVICE/INTERFACE`, and those names alone
    /// say where packets were seen.
    pub window: bool,
}

impl Input {
    pub fn open(path: &Path) -> Result<Input> {
        let stdin = path == Path::new("-");
        let size = if stdin {
            0
        } else {
            std::fs::metadata(path)
                .with_context(|| format!("{}: cannot open", path.display()))?
                .len()
        };
        // Inputs are read on this thread: a read-ahead thread was measured slower (it adds a
        // copy of every byte, and the two cores are busy enough with the writer thread).
        let raw: Box<dyn Read + Send> = if stdin {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path).with_context(|| format!("{}: cannot open", path.display()))?)
        };
        let reader = CaptureReader::from_maybe_compressed(raw).map_err(|e| file_error(path, e))?;
        Ok(Input {
            path: path.to_path_buf(),
            reader,
            size,
            window: false,
        })
    }

    /// Advances to the next packet; a read error names the file.
    pub fn advance(&mut self) -> Result<bool> {
        self.reader.advance().map_err(|e| file_error(&self.path, e))
    }

    /// Advances to the next packet. A file cut short simply ends here: the warning is kept for
    /// the end of the command ([`report`]) and `Ok(false)` returned. Any other fault is an error.
    pub fn next(&mut self, warnings: &mut Vec<anyhow::Error>) -> Result<bool> {
        match self.reader.advance() {
            Ok(more) => Ok(more),
            Err(e) if e.is_truncation() => {
                warnings.push(file_error(&self.path, e));
                Ok(false)
            }
            Err(e) => Err(file_error(&self.path, e)),
        }
    }
}

pub fn open_all(paths: &[PathBuf]) -> Result<Vec<Input>> {
    paths.iter().map(|p| Input::open(p)).collect()
}

/// Describes a reader error with the file name, and whether earlier packets were kept.
pub fn file_error(path: &Path, e: trawl_pcap::Error) -> anyhow::Error {
    if e.is_truncation() {
        anyhow::anyhow!(
            "{}: {e} (the file is cut short; the packets before this point were processed)",
            path.display()
        )
    } else {
        anyhow::anyhow!("{}: {e}", path.display())
    }
}

/// The output options shared by the commands that write a capture.
#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Output file (`-` for standard output). Format: pcap if it ends in .pcap, else pcapng.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format, overriding the file name.
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<OutFormat>,
    /// Keep only packets that pass this tcpdump filter expression.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
}

impl OutputArgs {
    pub fn format(&self) -> OutFormat {
        OutFormat::for_path(&self.output, self.format)
    }
}

/// Output format of a written capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Pcap,
    Pcapng,
}

impl OutFormat {
    /// pcap if the file name ends in `.pcap`, pcapng otherwise.
    pub fn for_path(path: &Path, chosen: Option<OutFormat>) -> OutFormat {
        chosen.unwrap_or_else(|| {
            if path.extension().is_some_and(|e| e == "pcap") {
                OutFormat::Pcap
            } else {
                OutFormat::Pcapng
            }
        })
    }
}

/// An output being written under a temporary name beside its destination; it takes the final
/// name only when complete ([`commit`](Self::commit)), and is removed if dropped before that, so
/// a failed or interrupted command never leaves a capture that looks whole but is not.
pub struct Partial {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Partial {
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.temp, &self.dest).with_context(|| {
            format!(
                "{}: cannot move the finished output into place",
                self.dest.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Opens an output (`-`: standard output), buffered and written on its own thread. A file is
/// written under a temporary name until [`Partial::commit`].
pub fn create_output(path: &Path) -> Result<(Box<dyn Write>, Option<Partial>)> {
    if path == Path::new("-") {
        return Ok((Box::new(WriteBehind::new(io::stdout())), None));
    }
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".trawl-partial");
    let temp = path.with_file_name(temp_name);
    let f = File::create(&temp).with_context(|| format!("{}: cannot create", path.display()))?;
    let partial = Partial {
        temp,
        dest: path.to_path_buf(),
        committed: false,
    };
    Ok((Box::new(WriteBehind::new(f)), Some(partial)))
}

/// Where packets are written. Interfaces are identified by (input number, interface index in
/// that input) and described to the output when first needed.
pub struct Sink {
    kind: SinkKind,
    partial: Option<Partial>,
}

enum SinkKind {
    Pcap {
        w: PcapWriter<Box<dyn Write>>,
        link_type: u32,
    },
    Pcapng {
        w: PcapngWriter<Box<dyn Write>>,
        /// Output id of each (input, interface), per input.
        ids: Vec<Vec<Option<u32>>>,
    },
}

impl Sink {
    /// Opens the output for the given inputs. pcap needs one link type across all of them.
    pub fn create(
        path: &Path,
        format: OutFormat,
        inputs: &[Input],
        section: OwnedOptions,
    ) -> Result<Sink> {
        match format {
            OutFormat::Pcap => {
                let ifaces: Vec<&Interface> =
                    inputs.iter().flat_map(|i| i.reader.interfaces()).collect();
                let Some(first) = ifaces.first() else {
                    bail!(
                        "{}: no input interface to take the link type from",
                        path.display()
                    )
                };
                if let Some(other) = ifaces.iter().find(|i| i.link_type != first.link_type) {
                    bail!(
                        "the inputs have link types {} and {}, and a pcap file holds only one: \
                         write pcapng instead (an output name ending in .pcapng, or -F pcapng)",
                        first.link_type,
                        other.link_type
                    );
                }
                let snaplen = ifaces.iter().map(|i| i.snaplen).max().unwrap_or(262144);
                let precision = if ifaces.iter().any(|i| i.units_per_sec > 1_000_000) {
                    TsPrecision::Nano
                } else {
                    TsPrecision::Micro
                };
                let (out, partial) = create_output(path)?;
                let w = PcapWriter::new(out, first.link_type, snaplen, precision)
                    .with_context(|| format!("{}: write failed", path.display()))?;
                let kind = SinkKind::Pcap {
                    w,
                    link_type: first.link_type,
                };
                Ok(Sink { kind, partial })
            }
            OutFormat::Pcapng => {
                let (out, partial) = create_output(path)?;
                let w = PcapngWriter::new(out, &section)
                    .with_context(|| format!("{}: write failed", path.display()))?;
                let kind = SinkKind::Pcapng {
                    w,
                    ids: vec![Vec::new(); inputs.len()],
                };
                Ok(Sink { kind, partial })
            }
        }
    }

    /// Starts a new pcapng section (used by `cat` to keep an input's sections apart).
    pub fn new_section(&mut self, options: &OwnedOptions) -> Result<()> {
        if let SinkKind::Pcapng { w, ids } = &mut self.kind {
            w.section(options)?;
            ids.iter_mut().for_each(|v| v.clear());
        }
        Ok(())
    }

    /// Describes interfaces `which` of input `input` now, rather than when first used.
    pub fn describe(
        &mut self,
        input: usize,
        known: &[Interface],
        which: impl Iterator<Item = usize>,
    ) -> Result<()> {
        for i in which {
            self.interface_id(input, i as u32, known)?;
        }
        Ok(())
    }

    fn interface_id(&mut self, input: usize, iface: u32, known: &[Interface]) -> Result<u32> {
        let SinkKind::Pcapng { w, ids } = &mut self.kind else {
            return Ok(0);
        };
        let slot = &mut ids[input];
        if slot.len() <= iface as usize {
            slot.resize(iface as usize + 1, None);
        }
        if let Some(id) = slot[iface as usize] {
            return Ok(id);
        }
        let id = w.add_interface(&known[iface as usize])?;
        slot[iface as usize] = Some(id);
        Ok(id)
    }

    /// Writes packet `p` of input number `input`, whose interfaces are `known`.
    pub fn write(&mut self, input: usize, known: &[Interface], p: &Packet<'_>) -> Result<()> {
        match &mut self.kind {
            SinkKind::Pcap { w, link_type } => {
                if p.link_type != *link_type {
                    bail!(
                        "a packet has link type {}, but the pcap output holds link type \
                         {link_type}: write pcapng instead",
                        p.link_type
                    );
                }
                w.write(p.ts, p.orig_len, p.data)?;
            }
            SinkKind::Pcapng { .. } => {
                let id = self.interface_id(input, p.interface, known)?;
                let SinkKind::Pcapng { w, .. } = &mut self.kind else {
                    unreachable!()
                };
                // A packet from a simple packet block stays one (it has no time to write) when
                // it can: on interface 0, and whole or cut at the interface's snaplen.
                let snaplen = known[p.interface as usize].snaplen;
                let len = p.data.len() as u32;
                if !p.has_time && id == 0 && (len == p.orig_len || len == snaplen) {
                    w.write_simple(p.orig_len, p.data)?;
                } else {
                    w.write(id, p.ts, p.orig_len, p.data, p.options)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the current packet of `inputs[n]`.
    pub fn write_current(&mut self, n: usize, input: &Input) -> Result<()> {
        let p = input.reader.current().expect("a current packet");
        self.write(n, input.reader.interfaces(), &p)
    }

    /// Flushes everything and gives the output its final name.
    pub fn finish(self) -> Result<()> {
        match self.kind {
            SinkKind::Pcap { w, .. } => {
                w.finish()?;
            }
            SinkKind::Pcapng { w, .. } => {
                w.finish()?;
            }
        }
        match self.partial {
            Some(p) => p.commit(),
            None => Ok(()),
        }
    }
}

/// Prints warnings about inputs that were cut short; if there were any, exits with status 2
/// (the output is complete with every packet before the fault).
pub fn report(warnings: Vec<anyhow::Error>) {
    if warnings.is_empty() {
        return;
    }
    for w in &warnings {
        eprintln!("trawl: warning: {w:#}");
    }
    std::process::exit(2);
}

/// The packets of several captures in time order (`trawl_merge::Order`; on equal times the
/// later-named file first, as mergecap), for commands that analyse traffic seen in several places
/// — the two directions of a line, or several taps.
pub struct TimeOrdered {
    pub inputs: Vec<Input>,
    order: trawl_merge::Order,
    /// The input whose packet is current: it moves on at the next `advance`.
    current: Option<usize>,
    /// Inputs cut short (see [`report`]).
    pub warnings: Vec<anyhow::Error>,
}

impl TimeOrdered {
    pub fn open(paths: &[PathBuf]) -> Result<TimeOrdered> {
        TimeOrdered::new(open_all(paths)?)
    }

    pub fn new(inputs: Vec<Input>) -> Result<TimeOrdered> {
        let mut t = TimeOrdered {
            inputs,
            order: trawl_merge::Order::new(),
            current: None,
            warnings: Vec::new(),
        };
        if t.inputs.len() > 1 {
            for n in 0..t.inputs.len() {
                t.queue(n)?;
            }
        }
        Ok(t)
    }

    fn queue(&mut self, n: usize) -> Result<()> {
        if self.inputs[n].next(&mut self.warnings)? {
            let ts = self.inputs[n].reader.current().expect("current").ts;
            self.order.push(ts.as_nanos(), u64::MAX - n as u64, n);
        }
        Ok(())
    }

    /// Moves to the next packet in time order; false at the end of every input.
    pub fn advance(&mut self) -> Result<bool> {
        if self.inputs.len() == 1 {
            // One input is its own time order: no heap.
            self.current = None;
            if self.inputs[0].next(&mut self.warnings)? {
                self.current = Some(0);
            }
            return Ok(self.current.is_some());
        }
        if let Some(n) = self.current.take() {
            self.queue(n)?;
        }
        self.current = self.order.pop();
        Ok(self.current.is_some())
    }

    /// The current packet and the number of the input it is from.
    pub fn current(&self) -> Option<(usize, Packet<'_>)> {
        let n = self.current?;
        Some((n, self.inputs[n].reader.current()?))
    }

    /// Bytes read of all inputs, for progress.
    pub fn position(&self) -> u64 {
        self.inputs.iter().map(|i| i.reader.offset()).sum()
    }

    pub fn total_size(&self) -> u64 {
        self.inputs.iter().map(|i| i.size).sum()
    }

    /// A name for interface `interface` of input `n`: its pcapng name if it has one, else the
    /// file's name, with `#interface` when the file has several.
    pub fn interface_name(&self, n: usize, interface: u32) -> String {
        let input = &self.inputs[n];
        let ifaces = input.reader.interfaces();
        if let Some(name) = ifaces.get(interface as usize).and_then(|i| i.name()) {
            return name.to_string();
        }
        let file = input
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| input.path.display().to_string());
        if ifaces.len() > 1 {
            format!("{file}#{interface}")
        } else {
            file
        }
    }
}
