//! [`dump_handlespace`]: the blocking driver of [`crate::dump::TableDump`], over one
//! association of any [`SctpTransport`] to a registrar's ENRP port.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use crate::dump::{DumpError, Step, TableDump};

/// How long one wait for the transport lasts before the deadline is looked at.
const SLICE: Duration = Duration::from_millis(10);

/// How long the association's graceful shutdown may take before the dump returns anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(500);

/// Why a dump failed, naming the step.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpFailure {
    /// The registrar said no, or sent something wrong.
    Dump(DumpError),
    /// The OS refused.
    Io(io::Error),
    /// The registrar ended the association during the download.
    Lost,
    /// The association did not come up before the deadline (no registrar, or no ENRP there).
    NotUp,
    /// The table was not complete before the deadline; `pages` had arrived.
    TimedOut {
        /// Pages read.
        pages: u32,
    },
    /// The transport refused (starting the association, or sending).
    Transport(TransportError),
}

impl fmt::Display for DumpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dump(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Lost => f.write_str("the registrar ended the ENRP association"),
            Self::NotUp => f.write_str("no ENRP association came up"),
            Self::TimedOut { pages } => {
                write!(f, "the handle table was not complete in time ({pages} pages read)")
            }
            Self::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for DumpFailure {}

/// Reads `registrar`'s handlespace (IP and ENRP SCTP port) into `dump` within `timeout`:
/// starts an association, sends the requests [`TableDump`] asks for, and shuts the association
/// down gracefully whatever the outcome, so that the registrar is not left retransmitting.
pub fn dump_handlespace<T: SctpTransport>(
    transport: &mut T,
    registrar: SocketAddr,
    mut dump: TableDump,
    timeout: Duration,
) -> Result<TableDump, DumpFailure> {
    let deadline = Instant::now() + timeout;
    let assoc = transport.connect(Instant::now(), registrar).map_err(DumpFailure::Transport)?;
    let outcome = download(transport, assoc, &mut dump, deadline);
    close(transport, assoc);
    outcome.map(|()| dump)
}

/// Waits for the association, sends the first request, and answers each page with the next
/// request until the table is complete or `deadline` passes.
fn download<T: SctpTransport>(
    transport: &mut T,
    assoc: AssocId,
    dump: &mut TableDump,
    deadline: Instant,
) -> Result<(), DumpFailure> {
    let mut up = false;
    let mut outbox: Vec<Vec<u8>> = Vec::new();
    loop {
        for bytes in outbox.drain(..) {
            transport
                .send(Instant::now(), assoc, StreamId(0), Ppid::ENRP, &bytes)
                .map_err(DumpFailure::Transport)?;
        }
        let mut received: Vec<Vec<u8>> = Vec::new();
        let (mut lost, mut came_up) = (false, false);
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
            .map_err(DumpFailure::Io)?;
        if came_up && !up {
            up = true;
            outbox.push(dump.start());
        }
        for bytes in &received {
            match dump.handle_data(bytes).map_err(DumpFailure::Dump)? {
                Step::Done => return Ok(()),
                Step::More(next) => outbox.push(next),
                Step::Ignored => {}
            }
        }
        if lost {
            return Err(if up { DumpFailure::Lost } else { DumpFailure::NotUp });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(if up {
                DumpFailure::TimedOut { pages: dump.pages() }
            } else {
                DumpFailure::NotUp
            });
        }
        if outbox.is_empty() {
            transport.wait(now, Some(deadline.min(now + SLICE))).map_err(DumpFailure::Io)?;
        }
    }
}

/// Shuts the association down and waits briefly for it to end.
fn close<T: SctpTransport>(transport: &mut T, assoc: AssocId) {
    let now = Instant::now();
    if transport.shutdown(now, assoc).is_err() {
        return;
    }
    let until = now + SHUTDOWN_WAIT;
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
