//! `rserpool dump`: a registrar's whole handlespace, read over ENRP as RSPLIB's `hsdump`
//! does (see [`asap::dump`]): an association to the registrar's ENRP port (PPID 12), Handle
//! Table Requests until a response without the M flag, then a graceful shutdown. With
//! `--admin` it reads the registrar's admin API instead (`admin.rs`).

use std::io::Write as _;
use std::net::SocketAddr;

use asap::blocking::{dump_handlespace, DumpFailure};
use asap::dump::TableDump;
use codec::RegistrarId;

use crate::admin;
use crate::cli::{DumpArgs, Global};
use crate::format;
use crate::net;

/// Dumps the first `--registrar`'s handlespace and prints it.
pub(crate) fn run(global: &Global, args: &DumpArgs) -> anyhow::Result<()> {
    if args.admin.admin.is_some() {
        let api = admin::Admin::new(&args.admin, global.timeout())?;
        let text = admin::dump(&api, args.json)?;
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    }
    let registrar = SocketAddr::new(global.registrars()[0].ip(), args.enrp_port);
    let mut transport = net::transport(global, false)?;
    // A random non-zero server id, as a peer has; zero is no registrar's (RFC 5353 §2.1).
    let own = RegistrarId(rand::random::<u32>().max(1));
    let dumped = dump_handlespace(&mut transport, registrar, TableDump::new(own), global.timeout());
    let dump = dumped.map_err(|e| match e {
        DumpFailure::NotUp => anyhow::anyhow!(
            "no ENRP association to registrar {registrar} within {} ms (is ENRP on? --enrp-port)",
            global.timeout_ms
        ),
        DumpFailure::TimedOut { pages } => anyhow::anyhow!(
            "registrar {registrar} did not send its whole handle table within {} ms ({pages} \
             pages)",
            global.timeout_ms
        ),
        other => anyhow::anyhow!("handle table dump from {registrar} failed: {other}"),
    })?;
    let registrar_id = dump.registrar().map(|r| r.0);
    let pools = dump.into_pools();
    let text = if args.json {
        format!("{:#}\n", format::dump_json(registrar, registrar_id, &pools))
    } else {
        format::dump_table(&pools)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
