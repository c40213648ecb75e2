//! `rserpool dump`: a registrar's whole handlespace, read over ENRP as RSPLIB's `hsdump`
//! does (see [`asap::dump`]): an association to the registrar's ENRP port (PPID 12), Handle
//! Table Requests until a response without the M flag, then a graceful shutdown.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use asap::dump::{Step, TableDump};
use codec::RegistrarId;
use transport::sctp_udp::SctpUdpTransport;
use transport::{AssocId, Ppid, SctpTransport as _, StreamId, TransportEvent};

use crate::cli::{DumpArgs, Global};
use crate::format;
use crate::net;

/// How long one wait for the transport lasts before the deadline is looked at.
const SLICE: Duration = Duration::from_millis(10);

/// Dumps the first `--registrar`'s handlespace and prints it.
pub(crate) fn run(global: &Global, args: &DumpArgs) -> anyhow::Result<()> {
    let registrar = SocketAddr::new(global.registrars()[0].ip(), args.enrp_port);
    let mut transport = net::transport(global, false)?;
    // A random non-zero server id, as a peer has; zero is no registrar's (RFC 5353 §2.1).
    let own = RegistrarId(rand::random::<u32>().max(1));
    let mut dump = TableDump::new(own);
    let deadline = Instant::now() + global.timeout();
    let assoc = transport
        .connect(Instant::now(), registrar)
        .map_err(|e| anyhow::anyhow!("cannot start an association to {registrar}: {e}"))?;
    let outcome = download(&mut transport, assoc, &mut dump, deadline);
    close(&mut transport, assoc);
    match outcome {
        Ok(()) => {}
        Err(Failed::NotUp) => anyhow::bail!(
            "no ENRP association to registrar {registrar} within {} ms (is ENRP on? --enrp-port)",
            global.timeout_ms
        ),
        Err(Failed::Lost) => anyhow::bail!("registrar {registrar} ended the ENRP association"),
        Err(Failed::Late) => anyhow::bail!(
            "registrar {registrar} did not send its whole handle table within {} ms ({} pages)",
            global.timeout_ms,
            dump.pages()
        ),
        Err(Failed::Dump(e)) => anyhow::bail!("handle table dump from {registrar} failed: {e}"),
        Err(Failed::Io(e)) => {
            return Err(e).with_context(|| format!("handle table dump from {registrar} failed"))
        }
    }
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

enum Failed {
    NotUp,
    Lost,
    Late,
    Dump(asap::dump::DumpError),
    Io(anyhow::Error),
}

/// Waits for the association, sends the first request, and answers each page with the next
/// request until the table is complete or `deadline` passes.
fn download(
    transport: &mut SctpUdpTransport,
    assoc: AssocId,
    dump: &mut TableDump,
    deadline: Instant,
) -> Result<(), Failed> {
    let mut up = false;
    let mut outbox: Vec<Vec<u8>> = Vec::new();
    loop {
        for bytes in outbox.drain(..) {
            transport
                .send(Instant::now(), assoc, StreamId(0), Ppid::ENRP, &bytes)
                .map_err(|e| Failed::Io(anyhow::anyhow!("send: {e}")))?;
        }
        let mut received: Vec<Vec<u8>> = Vec::new();
        let mut lost = false;
        let mut came_up = false;
        transport
            .poll(Instant::now(), 256, |event| match event {
                TransportEvent::Up { assoc: a, .. } if a == assoc => came_up = true,
                TransportEvent::Lost { assoc: a } | TransportEvent::Closed { assoc: a }
                    if a == assoc =>
                {
                    lost = true;
                }
                TransportEvent::Data { assoc: a, ppid, data, .. }
                    if a == assoc && ppid == Ppid::ENRP =>
                {
                    received.push(data.to_vec());
                }
                _ => {}
            })
            .map_err(|e| Failed::Io(e.into()))?;
        if came_up && !up {
            up = true;
            outbox.push(dump.start());
        }
        for bytes in &received {
            match dump.handle_data(bytes).map_err(Failed::Dump)? {
                Step::Done => return Ok(()),
                Step::More(next) => outbox.push(next),
                Step::Ignored => {}
            }
        }
        if lost {
            return Err(if up { Failed::Lost } else { Failed::NotUp });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(if up { Failed::Late } else { Failed::NotUp });
        }
        if outbox.is_empty() {
            transport
                .wait(now, Some(deadline.min(now + SLICE)))
                .map_err(|e| Failed::Io(e.into()))?;
        }
    }
}

/// Shuts the association down and waits briefly for the registrar's SHUTDOWN ACK, so that the
/// registrar is not left retransmitting to a process that is gone.
fn close(transport: &mut SctpUdpTransport, assoc: AssocId) {
    let now = Instant::now();
    if transport.shutdown(now, assoc).is_err() {
        return;
    }
    let until = now + Duration::from_millis(500);
    let mut closed = false;
    while !closed && Instant::now() < until {
        let now = Instant::now();
        if transport.wait(now, Some(until.min(now + SLICE))).is_err() {
            return;
        }
        let polled = transport.poll(Instant::now(), 256, |event| {
            if let TransportEvent::Closed { assoc: a } | TransportEvent::Lost { assoc: a } = event {
                closed |= a == assoc;
            }
        });
        if polled.is_err() {
            return;
        }
    }
}
