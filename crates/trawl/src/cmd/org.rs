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
    /// Make a one-time enrolment token for a device (`trawl agent --enroll TOKEN`).
    #[command(name = "enrollment-token", alias = "enrolment-token")]
    EnrollmentToken(TokenArgs),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl org enrollment-token --data ./trawl-data
      a token for the organisation \"default\" (the one the first server start made)
  trawl org enrollment-token --org acme --data /var/lib/trawl
  trawl agent --server https://HOST:8443 --ca ./trawl-data/tls/cert.pem --enroll TOKEN -i eth0
      on the device: trade it for the device's own credential (once)

The token works once; the server keeps only its hash. With a running server the same is
POST /api/v1/enrollment-tokens with the organisation's admin token.")]
pub struct TokenArgs {
    /// The organisation.
    #[arg(long, default_value = "default")]
    pub org: String,
    /// The server's data directory.
    #[arg(long, value_name = "DIR", default_value = "./trawl-data")]
    pub data: PathBuf,
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
        OrgCommand::EnrollmentToken(a) => enrolment_token(a),
    }
}

fn enrolment_token(args: TokenArgs) -> Result<()> {
    let path = args.data.join("catalogue.db");
    if !path.exists() {
        bail!(
            "no catalogue at {} (start the server once with --data {}, or give --data)",
            path.display(),
            args.data.display()
        );
    }
    let mut catalogue = Catalogue::open(&path)?;
    let Some(org) = catalogue.organisation_id(&args.org)? else {
        bail!("no organisation \"{}\" in {}", args.org, path.display());
    };
    println!("{}", catalogue.create_enrolment_token(org)?);
    eprintln!(
        "a one-time enrolment token for organisation \"{}\": the device trades it with \
         trawl agent --enroll TOKEN",
        args.org
    );
    Ok(())
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
