//! `trawl user`: the users who log in to a server's web pages and API, managed directly on the
//! data directory like `trawl org` (no running server needed; SQLite lets this run beside one).
//! This is how the first admin of an organisation is made.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trawl_server::auth::{Role, password};
use trawl_server::{Catalogue, CatalogueError};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user to an organisation, with a password and a role.
    Add(AddArgs),
    /// List an organisation's users.
    List(ListArgs),
    /// Set a user's password (ends the user's sessions).
    Passwd(PasswdArgs),
}

/// Where the catalogue is and which organisation.
#[derive(clap::Args, Debug)]
pub struct Place {
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
  trawl user add admin --role admin --data ./trawl-data
      the first admin of the organisation \"default\"; asks for the password twice
  printf '%s\\n' \"$PW\" | trawl user add alice --role operator --password-stdin
  trawl user add bob --role viewer --org acme --data /var/lib/trawl

Roles: viewer (reads everything of the organisation), operator (also starts and stops captures,
uploads, tags, annotates, shares), admin (also devices, enrolment, retention, users, tokens).
Then log in with the web pages at the server's address, or:
  curl -c jar -H 'Content-Type: application/json' \\
       -d '{\"org\":\"default\",\"user\":\"admin\",\"password\":\"...\"}' https://HOST:8443/api/v1/login")]
pub struct AddArgs {
    /// The user's name (unique in the organisation, whatever the case).
    pub name: String,
    /// viewer, operator or admin.
    #[arg(long)]
    pub role: Role,
    /// Read the password from the first line of standard input instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub place: Place,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl user list --data ./trawl-data
  trawl user list --org acme --data /var/lib/trawl")]
pub struct ListArgs {
    #[command(flatten)]
    pub place: Place,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  trawl user passwd admin --data ./trawl-data
      asks for the new password twice
  printf '%s\\n' \"$PW\" | trawl user passwd alice --password-stdin

The user's sessions end (they log in again with the new password); their API tokens stay.")]
pub struct PasswdArgs {
    /// The user's name.
    pub name: String,
    /// Read the password from the first line of standard input instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        UserCommand::Add(a) => add(a),
        UserCommand::List(a) => list(a),
        UserCommand::Passwd(a) => passwd(a),
    }
}

/// The catalogue of `place` and the organisation's id.
fn open(place: &Place) -> Result<(Catalogue, i64)> {
    let path = place.data.join("catalogue.db");
    if !path.exists() {
        bail!(
            "no catalogue at {} (start the server once with --data {}, or give --data)",
            path.display(),
            place.data.display()
        );
    }
    let catalogue = Catalogue::open(&path)?;
    let Some(org) = catalogue.organisation_id(&place.org)? else {
        bail!("no organisation \"{}\" in {}", place.org, path.display());
    };
    Ok((catalogue, org))
}

fn add(args: AddArgs) -> Result<()> {
    let name = args.name.trim();
    trawl_server::auth::check_name("the user's name", name, false).map_err(anyhow::Error::msg)?;
    let (mut catalogue, org) = open(&args.place)?;
    if catalogue.user_by_name(org, name)?.is_some() {
        bail!(
            "a user named \"{name}\" already exists in organisation \"{}\" (trawl user passwd \
             {name} sets a new password)",
            args.place.org
        );
    }
    let phc = password::hash(&new_password(args.password_stdin)?)?;
    let user = match catalogue.create_user(org, name, args.role, &phc) {
        Err(e @ CatalogueError::UserExists(_)) => bail!("{e}"),
        r => r?,
    };
    eprintln!(
        "added user \"{}\" (id {}, role {}) to organisation \"{}\"",
        user.name, user.id, user.role, args.place.org
    );
    Ok(())
}

fn list(args: ListArgs) -> Result<()> {
    let (catalogue, org) = open(&args.place)?;
    let users = catalogue.users(org)?;
    if users.is_empty() {
        eprintln!(
            "no users in organisation \"{}\" (add one: trawl user add NAME --role admin --data {})",
            args.place.org,
            args.place.data.display()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.name.clone(),
                u.role.to_string(),
                if u.disabled { "disabled" } else { "" }.to_owned(),
                trawl_server::captures::rfc3339(u64::try_from(u.created_ns).unwrap_or(0)),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(
            &["ID", "NAME", "ROLE", "STATE", "CREATED"],
            &[true, false, false, false, false],
            &rows
        )
    );
    Ok(())
}

fn passwd(args: PasswdArgs) -> Result<()> {
    let (mut catalogue, org) = open(&args.place)?;
    let Some(user) = catalogue.user_by_name(org, args.name.trim())? else {
        bail!(
            "no user \"{}\" in organisation \"{}\" (trawl user list shows them)",
            args.name,
            args.place.org
        );
    };
    let phc = password::hash(&new_password(args.password_stdin)?)?;
    let change = trawl_server::auth::UserChange {
        password_hash: Some(phc),
        ..Default::default()
    };
    catalogue.update_user(org, user.id, &change)?;
    eprintln!(
        "set the password of \"{}\"; their sessions have ended",
        user.name
    );
    Ok(())
}

/// A new password: the first line of standard input, or typed twice at the terminal.
fn new_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "standard input is not a terminal: give --password-stdin to read the password \
                 from it"
            );
        }
        let first = prompt_hidden("password: ")?;
        password::check(&first).map_err(anyhow::Error::msg)?;
        let second = prompt_hidden("the same again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    };
    password::check(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

/// Reads a line from the terminal on standard input without echoing it.
fn prompt_hidden(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let _echo_off = EchoOff::new(Path::new("standard input"))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    eprintln!();
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Terminal echo switched off on standard input until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new(what: &Path) -> Result<EchoOff> {
        // SAFETY: tcgetattr fills the termios it is given; fd 0 is a terminal (checked by the
        // caller), and a failure is reported, not ignored.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("reading the settings of {}", what.display()));
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above, with settings derived from the terminal's own.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("turning off the echo of {}", what.display()));
        }
        Ok(EchoOff(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}
