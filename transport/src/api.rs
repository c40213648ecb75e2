//! [`SctpTransport`]: the one interface both SCTP backends sit behind. The registrar and
//! loadgen are generic over it and never know which backend runs:
//! [`crate::kernel_sctp::KernelSctp`] (RFC 6458 sockets) or the userspace `sctp` crate over UDP
//! (RFC 6951, `crate::sctp_udp`).
//!
//! Batching without allocation: `send` only queues (into the SCTP stack's send queue, or one
//! `sendmsg` for the kernel), `poll` does one batch of I/O and hands each event to a callback as
//! a [`TransportEvent`] that borrows the backend's receive buffer, and `wait` blocks in one
//! system call until I/O or the deadline. The per-core loop, with `now` read once:
//!
//! ```text
//! loop {
//!     let now = clock.now();                       // registrar/src/core reads the clock
//!     t.poll(now, budget, |event| proto.handle(event));   // drains up to `budget` events
//!     /* proto queues replies with t.send(...) */
//!     t.wait(now, deadline.min(t.next_deadline()))?;      // flushes sends, then sleeps
//! }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// An association, as numbered by the backend (the kernel's `sctp_assoc_t`, or the userspace
/// stack's handle). Unique among live associations of one transport; may be reused later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssocId(pub u32);

/// SCTP payload protocol identifier, in host order (IANA registry: open, so a newtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ppid(pub u32);

impl Ppid {
    /// ASAP, RFC 5352 §3.
    pub const ASAP: Self = Self(0x0b);
    /// ENRP, RFC 5353 §3.
    pub const ENRP: Self = Self(0x0c);
}

impl fmt::Debug for Ppid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ASAP => f.write_str("Ppid::ASAP"),
            Self::ENRP => f.write_str("Ppid::ENRP"),
            Self(other) => write!(f, "Ppid({other:#x})"),
        }
    }
}

/// An SCTP stream identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamId(pub u16);

/// What happened on the transport. Borrowed data is valid for the callback only.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportEvent<'a> {
    /// The association shut down gracefully (either side started it).
    Closed {
        /// The association.
        assoc: AssocId,
    },
    /// One whole user message.
    Data {
        /// The association.
        assoc: AssocId,
        /// Stream it arrived on.
        stream: StreamId,
        /// Its payload protocol identifier.
        ppid: Ppid,
        /// The message.
        data: &'a [u8],
    },
    /// The association failed: aborted by the peer, lost (retransmissions exhausted), or it could
    /// not be started. Its id is no longer valid.
    Lost {
        /// The association.
        assoc: AssocId,
    },
    /// A message the backend accepted was not delivered (RFC 6458 §6.1.11, SCTP_SEND_FAILED_EVENT).
    SendFailed {
        /// The association.
        assoc: AssocId,
        /// Stream it was sent on.
        stream: StreamId,
        /// Its payload protocol identifier.
        ppid: Ppid,
        /// The message (or its undelivered part), when the backend has it.
        data: &'a [u8],
    },
    /// A new association is up (we connected, or a peer connected to our listening port), or
    /// the peer restarted it.
    Up {
        /// The association.
        assoc: AssocId,
        /// The peer's primary IP address and its SCTP port.
        peer: SocketAddr,
    },
}

/// Why a request was refused. Never fatal to the transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// No such association (never existed, or already closed or lost).
    UnknownAssoc,
    /// A bound was hit (associations per core, send queue, message size); retry later or drop.
    Full,
    /// The message is longer than the configured maximum.
    TooLong,
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAssoc => f.write_str("unknown association"),
            Self::Full => f.write_str("transport queue or table full"),
            Self::TooLong => f.write_str("message too long"),
            Self::Io(e) => write!(f, "transport I/O: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// One SCTP endpoint (one per core): associations, messages with stream and PPID, events.
///
/// Every association that was reported `Up`, or whose `connect` returned an id, ends with
/// exactly one terminal event, `Closed` or `Lost`; its id is invalid afterwards (and may be
/// reused).
pub trait SctpTransport {
    /// Accepts associations to `port` from now on (the backend's bound port for the kernel).
    fn listen(&mut self, port: u16) -> Result<(), TransportError>;

    /// Starts an association to `remote`; `Up` or `Lost` follows from `poll`.
    fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<AssocId, TransportError>;

    /// Like [`connect`](Self::connect), from local SCTP port `local_port` where the backend
    /// can choose it (peers check the port an ENRP association comes from against the
    /// registrar's ENRP address). The default ignores `local_port`.
    fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddr,
    ) -> Result<AssocId, TransportError> {
        let _ = local_port;
        self.connect(now, remote)
    }

    /// Queues one message; it leaves at the next `wait` (or earlier, for the kernel).
    fn send(
        &mut self,
        now: Instant,
        assoc: AssocId,
        stream: StreamId,
        ppid: Ppid,
        data: &[u8],
    ) -> Result<(), TransportError>;

    /// Starts a graceful shutdown; `Closed` follows.
    fn shutdown(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError>;

    /// Aborts the association at once (queued data is dropped). Like every association, it
    /// still ends with exactly one terminal event: `Lost` from the kernel backend (its
    /// `SCTP_COMM_LOST`), `Closed` from the userspace one. Treat either as the end.
    fn abort(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError>;

    /// Writes up to `out.len()` peer addresses of `assoc` (primary first when known) and
    /// returns how many there are in total (may exceed `out.len()`).
    fn peer_addresses(
        &mut self,
        assoc: AssocId,
        out: &mut [SocketAddr],
    ) -> Result<usize, TransportError>;

    /// Does one batch of non-blocking work: reads what has arrived, runs expired timers, and
    /// calls `on_event` for up to `budget` events. Returns how many events were delivered.
    fn poll(
        &mut self,
        now: Instant,
        budget: usize,
        on_event: impl FnMut(TransportEvent<'_>),
    ) -> io::Result<usize>;

    /// Flushes queued output, then blocks in one system call until input is ready or `until`.
    fn wait(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()>;

    /// The backend's own next timer deadline (retransmission, heartbeat, delayed SACK), if any.
    fn next_deadline(&self) -> Option<Instant>;

    /// A [`crate::Doorbell`] that ends this transport's `wait` from another thread, if the
    /// backend has one. Without it, a caller that must hear from other threads bounds its waits.
    fn doorbell(&mut self) -> io::Result<Option<crate::Doorbell>> {
        Ok(None)
    }

    /// Input the backend received and dropped before it made an event, since it started:
    /// datagrams longer than its receive buffers (SCTP in UDP: a peer whose packets exceed
    /// the configured MTU), messages longer than its maximum (kernel SCTP). Each one is a
    /// peer's message lost with no answer, so callers count it where an operator looks. The
    /// default, for a backend that drops nothing unseen, is 0.
    fn input_dropped(&self) -> u64 {
        0
    }
}
