//! `rserpool connect POOL`: a TCP connection to a PE of the pool through
//! [`asap::blocking::PoolUser::connect_tcp`] (failover on connect errors, each failed PE
//! reported once), then stdin copied to the PE and the PE's bytes to stdout. When stdin ends,
//! the write side is shut down and the tool waits for the PE to close its side.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use asap::blocking::PoolUser;

use crate::cli::{ConnectArgs, Global};
use crate::format::{endpoints, id_hex};
use crate::net::{self, Registrars};

/// Bytes copied per read.
const CHUNK_LEN: usize = 16_384;

/// Connects and pipes until the PE closes the connection.
pub(crate) fn run(global: &Global, args: &ConnectArgs) -> anyhow::Result<()> {
    let transport = net::transport(global, false)?;
    let mut user = PoolUser::new(transport, net::endpoint_config(global), rand::random());
    let connected = user.connect_tcp_observed(args.pool, global.timeout(), |pe, why| {
        let at = endpoints(&pe.user_transport);
        eprintln!("PE {} at {at} unreachable: {why}; reported, trying the next", id_hex(pe.id.0));
    });
    let mut registrars = Registrars::new(global);
    for event in user.driver_mut().take_events() {
        registrars.observe(&event);
    }
    // The registrar is not needed while the bytes flow: end the association properly now
    // rather than leave it unanswered for as long as the connection lasts.
    user.driver_mut().close(Duration::from_millis(500));
    let (stream, pe) =
        connected.map_err(|e| net::resolution_error(e, &args.pool, registrars.home(), global))?;
    eprintln!("connected to PE {} at {}", id_hex(pe.id.0), endpoints(&pe.user_transport));
    pipe(stream).map_err(|e| anyhow::anyhow!("connection to PE {} failed: {e}", id_hex(pe.id.0)))
}

/// stdin to `stream` on a thread, `stream` to stdout here, until the PE closes.
fn pipe(stream: TcpStream) -> io::Result<()> {
    let mut upstream = stream.try_clone()?;
    std::thread::spawn(move || {
        // A failed copy (the PE went away) ends this direction only; the reading side sees it.
        let _ = io::copy(&mut io::stdin().lock(), &mut upstream);
        let _ = upstream.shutdown(Shutdown::Write);
    });
    let mut downstream = stream;
    let mut buffer = vec![0u8; CHUNK_LEN];
    let mut stdout = io::stdout().lock();
    loop {
        let n = downstream.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buffer[..n])?;
        stdout.flush()?;
    }
}
