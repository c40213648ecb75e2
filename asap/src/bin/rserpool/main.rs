//! `rserpool`: the everyday RSerPool tool, one command with subcommands (as etcdctl or
//! consul), built on the `asap` blocking driver over our userspace SCTP in UDP (RFC 6951).
//!
//! ```text
//!   rserpool pe --pool echo          a PE running an echo server, registered until Ctrl-C
//!   rserpool pe --pool echo --transport sctp   the same over SCTP, with the control channel
//!   rserpool register --pool p --port 7   a registration kept alive, no service
//!   rserpool resolve echo [--json]   one Handle Resolution, as a table or JSON
//!   rserpool terminal echo           stdin lines to a PE of the pool, replies to stdout
//!   rserpool watch echo [--json]     a line per PE added, changed or removed
//!   rserpool dump [--json]           a registrar's whole handlespace, over ENRP
//!   rserpool dump --admin H:P --admin-token-file F   ... read from its admin API instead
//!   rserpool status --admin H:P --admin-token-file F a registrar's state, counters, peers
//!   rserpool connect echo            stdin/stdout piped to a TCP PE of the pool
//! ```
//!
//! PEs serve TCP and UDP, or SCTP with the PE↔PU control channel (`--transport sctp`:
//! cookies to the PU, Cookie Echo and Business Card from it); `terminal` speaks all three and
//! echoes the last cookie to the next SCTP PE at a failover; `--backend kernel` runs on the
//! kernel's SCTP, to meet RSPLIB's tools. `connect` speaks only TCP, and the tool does not
//! listen for Server Announces: registrars come from `--registrar`. `watch` prints changes
//! as the registrar pushes them: several changes in one registrar turn are one push, so the
//! diff shows their sum; it ends when the pool is gone. `dump` asks the first `--registrar`
//! only, and a registrar still synchronising with its peers refuses it (R flag). Every
//! failure is one line on stderr, `rserpool: ...`, and a non-zero exit (2 for a bad command
//! line, from clap).

use std::fmt::Display;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

mod admin;
mod cli;
mod connect;
mod dump;
mod format;
mod net;
mod pe;
mod service;
mod terminal;
mod watch;

use cli::{Cli, Command, Global, ResolveArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Pe(cli::PeArgs { registration, .. })
    | Command::Register(cli::RegisterArgs { registration, .. }) = &cli.command
    {
        if let Err(message) = registration.policy() {
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
        }
    }
    let outcome = match &cli.command {
        Command::Pe(args) => {
            pe::run(&cli.global, &args.registration, Some(args.service), args.port)
        }
        Command::Register(args) => pe::run(&cli.global, &args.registration, None, args.port),
        Command::Resolve(args) => resolve(&cli.global, args),
        Command::Terminal(args) => terminal::run(&cli.global, args),
        Command::Watch(args) => watch::run(&cli.global, args),
        Command::Dump(args) => dump::run(&cli.global, args),
        Command::Connect(args) => connect::run(&cli.global, args),
        Command::Status(args) => status(&cli.global, args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the causes on the same line: "cannot bind UDP ...: Address in use".
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("rserpool: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `rserpool resolve`: one Handle Resolution, printed.
fn resolve(global: &Global, args: &ResolveArgs) -> anyhow::Result<()> {
    let mut config = net::endpoint_config(global);
    config.items_wanted = args.items;
    let transport = net::transport(global, false)?;
    let mut user = asap::blocking::PoolUser::new(transport, config, rand::random());
    let resolved = user.resolve(args.pool, global.timeout());
    let mut registrars = net::Registrars::new(global);
    for event in user.driver_mut().take_events() {
        registrars.observe(&event);
    }
    // End the association properly: a registrar left with an unacknowledged answer to a
    // process that is gone retransmits it until its own timers give up.
    user.driver_mut().close(std::time::Duration::from_millis(500));
    let elements =
        resolved.map_err(|e| net::resolution_error(e, &args.pool, registrars.home(), global))?;
    let text = if args.json {
        let document = format::json(&args.pool, registrars.home(), &elements);
        format!("{document:#}\n")
    } else {
        format::table(&elements)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `rserpool status`: the registrar's admin API, summarised.
fn status(global: &Global, args: &cli::StatusArgs) -> anyhow::Result<()> {
    let api = admin::Admin::new(&args.admin, global.timeout())?;
    let text = admin::status(&api, args.json)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// Prints one line on stdout. A closed stdout does not stop a PE, so errors are ignored.
fn say(line: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
