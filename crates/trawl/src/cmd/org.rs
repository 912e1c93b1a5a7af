//! `trawl org`: organisations in a server's catalogue, managed directly on the data directory
//! (no running server needed; SQLite lets this run beside one).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use trawl_server::{Catalogue, CatalogueError};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: OrgCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organisation and print its admin token (shown only this once).
    Create(CreateArgs),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl org create acme --data /var/lib/trawl
      prints acme's admin token on stdout (and a reminder to keep it on stderr)
  TRAWL_ADMIN_TOKEN=$(trawl org create acme --data ./trawl-data)
      the same, into a variable

The token is stored only as a hash: it cannot be shown again. Every organisation's devices,
tokens and captures are kept apart from every other's.")]
pub struct CreateArgs {
    /// The organisation's name (unique in this catalogue).
    pub name: String,
    /// The server's data directory.
    #[arg(long, value_name = "DIR", default_value = "./trawl-data")]
    pub data: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        OrgCommand::Create(a) => create(a),
    }
}

fn create(args: CreateArgs) -> Result<()> {
    let name = args.name.trim();
    if name.is_empty() {
        bail!("the organisation needs a name");
    }
    if !args.data.exists() {
        std::fs::create_dir_all(&args.data)
            .with_context(|| format!("creating {}", args.data.display()))?;
        eprintln!("created the data directory {}", args.data.display());
    }
    let path = args.data.join("catalogue.db");
    let mut catalogue = Catalogue::open(&path)?;
    let org = match catalogue.create_organisation(name) {
        Err(e @ CatalogueError::OrganisationExists(_)) => bail!("{e} in {}", path.display()),
        r => r?,
    };
    println!("{}", org.admin_token);
    eprintln!(
        "created organisation \"{name}\" (id {}). Above is its admin token, shown only this once \
         and stored only as a hash: keep it now.",
        org.id
    );
    Ok(())
}
