//! One association to one registrar, driven in the caller's thread.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use codec::asap::Message;
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportEvent};

/// Messages received but not yet taken by the caller. A registrar sends at most a handful
/// unasked (keep-alives), so a small bound suffices; past it the oldest are dropped.
pub const INBOX_MAX: usize = 4_096;

/// Why a session call failed.
#[derive(Debug)]
pub enum SessionError {
    /// The association did not come up, or went down.
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// The registrar sent bytes that are not ASAP.
    Decode(codec::DecodeError),
    /// The transport refused.
    Transport(String),
    /// The OS refused.
    Io(io::Error),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("association closed"),
            Self::Timeout => f.write_str("timed out"),
            Self::Decode(e) => write!(f, "undecodable ASAP from the registrar: {e}"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A blocking ASAP session over one association.
pub struct Session<T: SctpTransport> {
    transport: T,
    assoc: AssocId,
    inbox: VecDeque<Message>,
    closed: bool,
    decode_error: Option<codec::DecodeError>,
}

impl<T: SctpTransport> Session<T> {
    /// Connects to the registrar's ASAP endpoint (IP and SCTP port) and waits until the
    /// association is up.
    pub fn connect(
        mut transport: T,
        registrar: SocketAddr,
        timeout: Duration,
    ) -> Result<Self, SessionError> {
        let now = Instant::now();
        let assoc = transport
            .connect(now, registrar)
            .map_err(|e| SessionError::Transport(e.to_string()))?;
        let mut session =
            Self { transport, assoc, inbox: VecDeque::new(), closed: false, decode_error: None };
        let deadline = now + timeout;
        let mut up = false;
        while !up {
            if Instant::now() >= deadline {
                return Err(SessionError::Timeout);
            }
            let mine = session.assoc;
            session.transport.poll(Instant::now(), 64, |e| match e {
                TransportEvent::Up { assoc, .. } if assoc == mine => up = true,
                TransportEvent::Lost { assoc } | TransportEvent::Closed { assoc }
                    if assoc == mine =>
                {
                    up = false;
                }
                _ => {}
            })?;
            if !up {
                session.transport.wait(
                    Instant::now(),
                    Some(deadline.min(Instant::now() + Duration::from_millis(10))),
                )?;
            }
        }
        Ok(session)
    }

    /// Queues one ASAP message; it leaves at the next `recv`/`flush`.
    pub fn send(&mut self, message: &Message) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let bytes = message.emit_to_vec();
        self.transport
            .send(Instant::now(), self.assoc, StreamId(0), Ppid::ASAP, &bytes)
            .map_err(|e| SessionError::Transport(e.to_string()))
    }

    /// Sends what is queued without waiting for input.
    pub fn flush(&mut self) -> Result<(), SessionError> {
        let now = Instant::now();
        self.transport.wait(now, Some(now))?;
        Ok(())
    }

    /// The next message from the registrar, waiting up to `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Message, SessionError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            if let Some(e) = self.decode_error.take() {
                return Err(SessionError::Decode(e));
            }
            if self.closed {
                return Err(SessionError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SessionError::Timeout);
            }
            self.pump(now)?;
            if self.inbox.is_empty() && !self.closed {
                let until = deadline.min(now + Duration::from_millis(5));
                self.transport.wait(now, Some(until))?;
            }
        }
    }

    /// Takes whatever has arrived without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Message>, SessionError> {
        if self.inbox.is_empty() {
            let now = Instant::now();
            self.transport.wait(now, Some(now))?;
            self.pump(now)?;
        }
        Ok(self.inbox.pop_front())
    }

    /// Gracefully shuts the association down and waits briefly for it to close.
    pub fn close(mut self, timeout: Duration) -> Result<(), SessionError> {
        let now = Instant::now();
        let _ = self.transport.shutdown(now, self.assoc);
        let deadline = now + timeout;
        while !self.closed && Instant::now() < deadline {
            self.pump(Instant::now())?;
            self.inbox.clear();
            self.transport.wait(Instant::now(), Some(Instant::now() + Duration::from_millis(5)))?;
        }
        Ok(())
    }

    /// The transport, e.g. for its counters.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn pump(&mut self, now: Instant) -> Result<(), SessionError> {
        let mine = self.assoc;
        let (inbox, closed, decode_error) =
            (&mut self.inbox, &mut self.closed, &mut self.decode_error);
        self.transport.poll(now, 256, |e| match e {
            TransportEvent::Data { assoc, ppid, data, .. }
                if assoc == mine && ppid == Ppid::ASAP =>
            {
                match Message::parse(data) {
                    Ok(m) => {
                        if inbox.len() == INBOX_MAX {
                            inbox.pop_front();
                        }
                        inbox.push_back(m);
                    }
                    Err(err) => *decode_error = Some(err),
                }
            }
            TransportEvent::Lost { assoc } | TransportEvent::Closed { assoc } if assoc == mine => {
                *closed = true;
            }
            _ => {}
        })?;
        Ok(())
    }
}
