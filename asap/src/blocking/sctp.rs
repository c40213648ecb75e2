//! SCTP user transports with the PE↔PU control channel (RFC 5352 §3.7-§3.9), blocking:
//! [`SctpService`] is the PE's side (associations accepted on its registered SCTP port),
//! [`SctpPoolSession`] the PU's (a pool, one PE at a time, failover with Cookie Echo).
//!
//! Each runs its own [`SctpTransport`], apart from the registrar's: the associations of users
//! never reach the ASAP [`crate::Endpoint`], and an application's messages (any PPID but 11)
//! never meet the registrar's. On the association, ASAP control messages go with PPID 11 and
//! user messages with the application's PPID, as RSPLIB does for a PE that registered its
//! transport with transport use "data plus control".

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant as OsInstant};

use codec::asap::{BusinessCard, Message};
use codec::param::UserTransport;
use codec::{PoolElement, PoolElementId, PoolHandle};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use super::{BlockingError, PeFailure, PoolUser, POLL_BUDGET, WAIT_SLICE};
use crate::control::{self, ControlError, FromPoolUser};
use crate::pu::{self, Control, Failover};

/// Associations an [`SctpService`] keeps at once; one more is aborted as it comes up, so a
/// flood of PUs costs bounded memory. A PE serves a handful of PUs in a tool, and a few
/// hundred in a real service; 256 leaves room.
pub const SERVICE_ASSOCIATIONS_MAX: usize = 256;

/// User messages an [`SctpPoolSession`] holds before the caller reads them; past it the
/// newest are dropped (a PE that floods its PU loses its own messages, not the PU's memory).
pub const SESSION_INBOX_MAX: usize = 1_024;

/// Notes an [`SctpPoolSession`] keeps for [`SctpPoolSession::take_notes`]; the oldest go.
pub const SESSION_NOTES_MAX: usize = 64;

/// What happened on an [`SctpService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A PU's Business Card (§3.9).
    BusinessCard {
        /// The association.
        assoc: AssocId,
        /// The card.
        card: BusinessCard,
    },
    /// The association ended (shut down, aborted or lost).
    Closed {
        /// The association.
        assoc: AssocId,
    },
    /// A control message (PPID 11) was dropped: not ASAP, or not one a PU sends.
    ControlDropped {
        /// The association.
        assoc: AssocId,
        /// Why.
        error: ControlError,
    },
    /// A PU failed over to us and echoed the cookie of its former PE (§3.8).
    CookieEcho {
        /// The association.
        assoc: AssocId,
        /// The cookie, unmodified.
        cookie: Vec<u8>,
    },
    /// A user message (any PPID but ASAP's).
    Data {
        /// The association.
        assoc: AssocId,
        /// Its stream.
        stream: StreamId,
        /// Its PPID.
        ppid: Ppid,
        /// The message.
        data: Vec<u8>,
    },
    /// A PU opened an association.
    Up {
        /// The association.
        assoc: AssocId,
        /// The PU's address and SCTP port.
        peer: SocketAddr,
    },
}

/// A PE's SCTP user transport: accepts PUs' associations on its port and hands out their
/// messages, with control messages decoded ([`ServiceEvent`]).
pub struct SctpService<U: SctpTransport> {
    transport: U,
    associations: Vec<AssocId>,
    events: VecDeque<ServiceEvent>,
}

impl<U: SctpTransport> SctpService<U> {
    /// Listens on SCTP port `port` of `transport` (the port the PE registers).
    pub fn new(mut transport: U, port: u16) -> Result<Self, BlockingError> {
        transport.listen(port).map_err(BlockingError::Transport)?;
        Ok(Self { transport, associations: Vec::new(), events: VecDeque::new() })
    }

    /// The next event, waiting until `until`; `Ok(None)` when nothing happened by then.
    /// Sends queued by [`Self::send`] leave during this call.
    pub fn next_event(&mut self, until: OsInstant) -> Result<Option<ServiceEvent>, BlockingError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            let now = OsInstant::now();
            if now >= until {
                self.transport.wait(now, Some(now))?;
                return Ok(None);
            }
            let mut wake = until.min(now + WAIT_SLICE);
            if let Some(at) = self.transport.next_deadline() {
                wake = wake.min(at);
            }
            self.transport.wait(now, Some(wake.max(now)))?;
            self.poll()?;
        }
    }

    /// Queues a user message to a PU.
    pub fn send(
        &mut self,
        assoc: AssocId,
        stream: StreamId,
        ppid: Ppid,
        data: &[u8],
    ) -> Result<(), BlockingError> {
        self.transport.send(OsInstant::now(), assoc, stream, ppid, data)?;
        Ok(())
    }

    /// Queues an ASAP Cookie carrying `state` to a PU (§3.8, PPID 11): the PU echoes it to
    /// the PE it fails over to.
    pub fn send_cookie(&mut self, assoc: AssocId, state: &[u8]) -> Result<(), BlockingError> {
        let bytes = control::cookie(state).map_err(BlockingError::Control)?;
        self.send(assoc, StreamId(0), Ppid::ASAP, &bytes)
    }

    /// Starts a graceful shutdown of one association.
    pub fn shutdown(&mut self, assoc: AssocId) -> Result<(), BlockingError> {
        self.transport.shutdown(OsInstant::now(), assoc)?;
        Ok(())
    }

    /// The associations up now.
    pub fn associations(&self) -> &[AssocId] {
        &self.associations
    }

    /// The transport, e.g. for its local address.
    pub fn transport(&self) -> &U {
        &self.transport
    }

    fn poll(&mut self) -> Result<(), BlockingError> {
        let now = OsInstant::now();
        let mut refused = Vec::new();
        let (associations, events) = (&mut self.associations, &mut self.events);
        self.transport.poll(now, POLL_BUDGET, |event| match event {
            TransportEvent::Up { assoc, peer } => {
                if associations.contains(&assoc) {
                    return; // A restart of one we have.
                }
                if associations.len() >= SERVICE_ASSOCIATIONS_MAX {
                    refused.push(assoc);
                    return;
                }
                associations.push(assoc);
                events.push_back(ServiceEvent::Up { assoc, peer });
            }
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                events.push_back(match control::handle_from_pool_user(data) {
                    Ok(FromPoolUser::CookieEcho(cookie)) => {
                        ServiceEvent::CookieEcho { assoc, cookie }
                    }
                    Ok(FromPoolUser::BusinessCard(card)) => {
                        ServiceEvent::BusinessCard { assoc, card }
                    }
                    Err(error) => ServiceEvent::ControlDropped { assoc, error },
                });
            }
            TransportEvent::Data { assoc, stream, ppid, data } => {
                events.push_back(ServiceEvent::Data { assoc, stream, ppid, data: data.to_vec() });
            }
            TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc }
                if associations.contains(&assoc) =>
            {
                associations.retain(|&a| a != assoc);
                events.push_back(ServiceEvent::Closed { assoc });
            }
            _ => {}
        })?;
        for assoc in refused {
            // Already gone is fine: it is to end either way.
            let _ = self.transport.abort(now, assoc);
        }
        assert!(self.associations.len() <= SERVICE_ASSOCIATIONS_MAX);
        Ok(())
    }
}

/// What an [`SctpPoolSession`] did or received besides user messages, for the caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionNote {
    /// The PE sent a Business Card (§3.9); its order is the preferred failover order now.
    BusinessCard(BusinessCard),
    /// The PE sent a cookie (§3.8), now the one to echo.
    Cookie(Vec<u8>),
    /// A Cookie Echo went to `pe` as the first message of the new association.
    CookieEchoed {
        /// The PE failed over to.
        pe: PoolElementId,
    },
    /// A control message from the PE was dropped.
    ControlDropped(ControlError),
    /// A user message was dropped: [`SESSION_INBOX_MAX`] were waiting.
    InboxFull,
}

/// A PU's session with a pool over SCTP user transports: one association to one PE at a
/// time; the PE's cookies are kept and the last one echoed to the next PE after a failure.
///
/// The registrar side is a [`PoolUser`] the caller passes in (resolution, selection and
/// Endpoint Unreachable reports), so one PU may run several sessions; its driver runs while
/// the session waits, so keep-alives are answered.
pub struct SctpPoolSession<U: SctpTransport> {
    transport: U,
    failover: Failover,
    ppid: Ppid,
    current: Option<(AssocId, PoolElement)>,
    /// The PE of an association that failed, until [`Self::fail_over`] reports it.
    failed: Option<PoolElement>,
    inbox: VecDeque<Vec<u8>>,
    notes: VecDeque<SessionNote>,
}

impl<U: SctpTransport> SctpPoolSession<U> {
    /// A session with `pool_handle` whose user messages go with `ppid`, over `transport`.
    pub fn new(transport: U, pool_handle: PoolHandle, ppid: Ppid) -> Self {
        assert!(ppid != Ppid::ASAP, "PPID 11 is the control channel's");
        Self {
            transport,
            failover: Failover::new(pool_handle),
            ppid,
            current: None,
            failed: None,
            inbox: VecDeque::new(),
            notes: VecDeque::new(),
        }
    }

    /// Picks a PE of the pool and opens an association to it: PEs in selection order, each
    /// at most once per call; one that cannot be reached is reported (Endpoint Unreachable,
    /// at most once per failure) and the next tried. PEs without an SCTP transport are
    /// skipped, not reported. `timeout` bounds the whole call.
    pub fn connect<T: SctpTransport>(
        &mut self,
        user: &mut PoolUser<T>,
        timeout: Duration,
    ) -> Result<PoolElement, BlockingError> {
        let pool_handle = self.failover.pool_handle();
        let deadline = OsInstant::now() + timeout;
        let mut seen: Vec<PoolElementId> = Vec::new();
        let mut last: Option<BlockingError> = None;
        // Each pass hands out a PE not seen in this call, so the loop ends within the
        // resolution's length plus one.
        loop {
            let remaining = deadline.saturating_duration_since(OsInstant::now());
            if remaining.is_zero() {
                return Err(last.unwrap_or(BlockingError::TimedOut));
            }
            let pe = match user.select(pool_handle, remaining) {
                Ok(pe) if !seen.contains(&pe.id) => pe,
                Ok(_) | Err(BlockingError::NoReachablePoolElement(_)) => {
                    return Err(last.unwrap_or(BlockingError::NoSctpPoolElement(pool_handle)));
                }
                Err(e) => return Err(e),
            };
            seen.push(pe.id);
            if !matches!(pe.user_transport, UserTransport::Sctp(_)) {
                continue;
            }
            match self.open(user, pe.clone(), remaining) {
                Ok(()) => return Ok(pe),
                Err(e @ BlockingError::PoolElementFailed { .. }) => {
                    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
                    //# In either case, the ASAP Endpoint SHOULD report the
                    //# unavailability of the PE by sending an ASAP_ENDPOINT_UNREACHABLE
                    //# message to any ENRP server.
                    user.report_unreachable(&pool_handle, pe.id)?;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens an association to `pe` (its first SCTP address) and makes it the session's,
    /// waiting up to `timeout` for it to come up. At a failover the Cookie Echo goes first
    /// ([`Failover::open`]). Nothing is reported here; [`Self::connect`] reports.
    pub fn open<T: SctpTransport>(
        &mut self,
        user: &mut PoolUser<T>,
        pe: PoolElement,
        timeout: Duration,
    ) -> Result<(), BlockingError> {
        let UserTransport::Sctp(sctp) = &pe.user_transport else {
            return Err(BlockingError::NoSctpPoolElement(self.failover.pool_handle()));
        };
        let Some(&address) = sctp.addresses.as_slice().first() else {
            return Err(BlockingError::PoolElementFailed { pe: pe.id, why: PeFailure::Refused });
        };
        self.abort_current();
        let remote = SocketAddr::new(address, sctp.port);
        let assoc = self.transport.connect(OsInstant::now(), remote)?;
        let deadline = OsInstant::now() + timeout;
        let mut state = Opening::Pending;
        while state == Opening::Pending {
            if OsInstant::now() >= deadline {
                let _ = self.transport.abort(OsInstant::now(), assoc);
                let why = PeFailure::NoAnswer;
                return Err(BlockingError::PoolElementFailed { pe: pe.id, why });
            }
            state = self.turn(user, deadline, Some(assoc))?;
        }
        if state == Opening::Failed {
            return Err(BlockingError::PoolElementFailed { pe: pe.id, why: PeFailure::Refused });
        }
        if let Some(echo) = self.failover.open(&pe) {
            self.transport.send(OsInstant::now(), assoc, StreamId(0), Ppid::ASAP, &echo)?;
            self.note(SessionNote::CookieEchoed { pe: pe.id });
        }
        self.current = Some((assoc, pe));
        self.failed = None;
        Ok(())
    }

    /// Sends one user message to the PE in use.
    pub fn send(&mut self, data: &[u8]) -> Result<(), BlockingError> {
        let Some((assoc, pe)) = &self.current else { return Err(BlockingError::NotConnected) };
        let (assoc, id) = (*assoc, pe.id);
        match self.transport.send(OsInstant::now(), assoc, StreamId(0), self.ppid, data) {
            Ok(()) => Ok(()),
            Err(TransportError::UnknownAssoc) => {
                self.lose_current();
                Err(BlockingError::PoolElementFailed { pe: id, why: PeFailure::Lost })
            }
            Err(e) => Err(BlockingError::Transport(e)),
        }
    }

    /// Sends our Business Card (§3.9, PPID 11): `pool_handle` (our own pool, when we are a
    /// PE too) and the failover order we recommend.
    pub fn send_business_card(
        &mut self,
        pool_handle: PoolHandle,
        failover_order: &[PoolElement],
    ) -> Result<(), BlockingError> {
        let Some((assoc, _)) = &self.current else { return Err(BlockingError::NotConnected) };
        let bytes = pu::business_card(pool_handle, failover_order);
        self.transport.send(OsInstant::now(), *assoc, StreamId(0), Ppid::ASAP, &bytes)?;
        Ok(())
    }

    /// The next user message from the PE in use, waiting until `until` (`Ok(None)` then).
    /// Control messages are handled on the way (see [`Self::take_notes`]). A failed
    /// association is [`BlockingError::PoolElementFailed`]; [`Self::fail_over`] moves on.
    pub fn receive<T: SctpTransport>(
        &mut self,
        user: &mut PoolUser<T>,
        until: OsInstant,
    ) -> Result<Option<Vec<u8>>, BlockingError> {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return Ok(Some(message));
            }
            if let Some(failed) = &self.failed {
                if self.current.is_none() {
                    let why = PeFailure::Lost;
                    return Err(BlockingError::PoolElementFailed { pe: failed.id, why });
                }
            }
            if self.current.is_none() {
                return Err(BlockingError::NotConnected);
            }
            if OsInstant::now() >= until {
                self.transport.wait(OsInstant::now(), Some(OsInstant::now()))?;
                return Ok(None);
            }
            self.turn(user, until, None)?;
        }
    }

    /// Leaves the PE in use (or the one whose association failed): reports it unreachable
    /// (at most once per failure, §3.5), then [`Self::connect`]s to another, which gets the
    /// last cookie first.
    pub fn fail_over<T: SctpTransport>(
        &mut self,
        user: &mut PoolUser<T>,
        timeout: Duration,
    ) -> Result<PoolElement, BlockingError> {
        let pool_handle = self.failover.pool_handle();
        if let Some((_, pe)) = &self.current {
            self.failed = Some(pe.clone());
        }
        self.abort_current();
        if let Some(failed) = self.failed.take() {
            user.report_unreachable(&pool_handle, failed.id)?;
        }
        self.connect(user, timeout)
    }

    /// Aborts the association in use, if any, without reporting its PE.
    pub fn abort_current(&mut self) {
        if let Some((assoc, _)) = self.current.take() {
            let _ = self.transport.abort(OsInstant::now(), assoc);
        }
    }

    /// Shuts the association in use down gracefully and waits up to `timeout` for its end.
    pub fn close(&mut self, timeout: Duration) {
        let Some((assoc, _)) = self.current.take() else { return };
        let until = OsInstant::now() + timeout;
        if self.transport.shutdown(OsInstant::now(), assoc).is_err() {
            return;
        }
        let mut open = true;
        while open && OsInstant::now() < until {
            let now = OsInstant::now();
            if self.transport.wait(now, Some((now + WAIT_SLICE).min(until))).is_err() {
                return;
            }
            let polled = self.transport.poll(OsInstant::now(), POLL_BUDGET, |e| {
                if let TransportEvent::Closed { assoc: a } | TransportEvent::Lost { assoc: a } = e {
                    open &= a != assoc;
                }
            });
            if polled.is_err() {
                return;
            }
        }
    }

    /// The PE in use.
    pub fn current(&self) -> Option<&PoolElement> {
        self.current.as_ref().map(|(_, pe)| pe)
    }

    /// The cookie that the next PE will get.
    pub fn cookie(&self) -> Option<&[u8]> {
        self.failover.cookie()
    }

    /// The failover order of the PE's last Business Card, best first.
    pub fn preferred(&self) -> &[PoolElementId] {
        self.failover.preferred()
    }

    /// What happened besides user messages since the last call, oldest first.
    pub fn take_notes(&mut self) -> Vec<SessionNote> {
        self.notes.drain(..).collect()
    }

    /// The transport.
    pub fn transport(&self) -> &U {
        &self.transport
    }

    /// Waits a little (at most until `until`) for the PE, runs the registrar's driver once,
    /// and files what arrived. With `opening`, reports how that association fares.
    fn turn<T: SctpTransport>(
        &mut self,
        user: &mut PoolUser<T>,
        until: OsInstant,
        opening: Option<AssocId>,
    ) -> Result<Opening, BlockingError> {
        let now = OsInstant::now();
        let mut wake = until.min(now + WAIT_SLICE / 2);
        if let Some(at) = self.transport.next_deadline() {
            wake = wake.min(at);
        }
        self.transport.wait(now, Some(wake.max(now)))?;
        let current = self.current.as_ref().map(|(a, _)| *a);
        let mut state = Opening::Pending;
        let mut lost = false;
        let mut control: Vec<Vec<u8>> = Vec::new();
        let mut data: Vec<Vec<u8>> = Vec::new();
        self.transport.poll(OsInstant::now(), POLL_BUDGET, |event| match event {
            TransportEvent::Up { assoc, .. } if Some(assoc) == opening => state = Opening::Up,
            TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                if Some(assoc) == opening {
                    state = Opening::Failed;
                }
                lost |= Some(assoc) == current;
            }
            TransportEvent::Data { assoc, ppid, data: bytes, .. }
                if Some(assoc) == current || Some(assoc) == opening =>
            {
                if ppid == Ppid::ASAP {
                    control.push(bytes.to_vec());
                } else {
                    data.push(bytes.to_vec());
                }
            }
            _ => {}
        })?;
        for bytes in control {
            self.handle_control(&bytes);
        }
        for message in data {
            if self.inbox.len() >= SESSION_INBOX_MAX {
                self.note(SessionNote::InboxFull);
            } else {
                self.inbox.push_back(message);
            }
        }
        if lost {
            self.lose_current();
        }
        // Keep-alives from the registrar, without waiting: the wait above was the session's.
        user.driver_mut().run_once(OsInstant::now())?;
        Ok(state)
    }

    fn handle_control(&mut self, bytes: &[u8]) {
        let note = match self.failover.handle_control(bytes) {
            Ok(Control::Cookie(cookie)) => SessionNote::Cookie(cookie),
            Ok(Control::BusinessCard(card)) => SessionNote::BusinessCard(card),
            Ok(Control::Other(message)) => {
                SessionNote::ControlDropped(ControlError::Unexpected(message_type(&message)))
            }
            Err(e) => SessionNote::ControlDropped(ControlError::Decode(e)),
        };
        self.note(note);
    }

    fn lose_current(&mut self) {
        if let Some((_, pe)) = self.current.take() {
            self.failed = Some(pe);
        }
    }

    fn note(&mut self, note: SessionNote) {
        if self.notes.len() >= SESSION_NOTES_MAX {
            self.notes.pop_front();
        }
        self.notes.push_back(note);
    }
}

/// How an association being opened fares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    Failed,
    Pending,
    Up,
}

fn message_type(message: &Message) -> codec::asap::MessageType {
    message.message_type()
}
