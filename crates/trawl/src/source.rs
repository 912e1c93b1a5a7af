//! Where analysis commands (`flows`, `report`, `profile`) read packets from: capture files, or a
//! time window of devices' stored packets on a server.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::client::ServerArgs;
use crate::cmd::pull::{absolute, request_window};
use crate::files::{Input, TimeOrdered, file_error};
use crate::timespec::{self, TimeSpec};

#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Read a server's stored packets of this device (id or name; repeat for several, merged in
    /// time order) in the window --from .. --to, instead of files.
    #[arg(long = "device", value_name = "DEVICE", requires_all = ["from", "to"])]
    pub devices: Vec<String>,
    /// Start of the server window (inclusive): seconds since the epoch or a date and time.
    #[arg(long, value_name = "TIME", value_parser = timespec::parse, requires = "devices")]
    pub from: Option<TimeSpec>,
    /// End of the server window (exclusive).
    #[arg(long, value_name = "TIME", value_parser = timespec::parse, requires = "devices")]
    pub to: Option<TimeSpec>,
    /// Capture files (pcap, pcapng or snoop; gzip- or zstd-compressed or not), read in time
    /// order as one capture.
    #[arg(required_unless_present = "devices", conflicts_with = "devices")]
    pub files: Vec<PathBuf>,
}

impl SourceArgs {
    /// Opens the files, or starts the server's download of the window (pcapng, one interface per
    /// device and interface, named `DEVICE/INTERFACE`).
    pub fn open(&self) -> Result<TimeOrdered> {
        if self.devices.is_empty() {
            return TimeOrdered::open(&self.files);
        }
        let (Some(from), Some(to)) = (self.from, self.to) else {
            bail!("--device needs --from and --to");
        };
        let (from, to) = (absolute(from, "--from")?, absolute(to, "--to")?);
        if from >= to {
            bail!("the window is empty: --from is not before --to");
        }
        let client = self.server.connect_unbounded()?;
        let resp = request_window(&client, &self.devices, from, to, None)?;
        let path = PathBuf::from(format!("{} (server window)", self.devices.join(",")));
        let reader = trawl_pcap::CaptureReader::from_maybe_compressed(Box::new(resp))
            .map_err(|e| file_error(&path, e))?;
        TimeOrdered::new(vec![Input {
            path,
            reader,
            size: 0,
            window: true,
        }])
    }
}
