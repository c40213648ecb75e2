//! [`Link`]: the sans-IO ASAP conversation over one association to one registrar.
//!
//! A link matches responses to the requests it sent, times requests out, and answers Endpoint
//! Keep Alives for the PEs it was told about. It does not decide what a timeout or a refusal
//! means; the [`crate::Endpoint`] does.
//!
//! ```text
//!  request(now, Message, timeout) ─▶ outbox ─▶ poll_transmit() ─▶ bytes (PPID 11)
//!  handle_data(now, bytes) ─▶ LinkEvent (answers, keep-alives) + Acks into the outbox
//!  handle_timeout(now) ─▶ LinkEvent::TimedOut
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;

use codec::asap::{
    DeregistrationResponse, EndpointKeepAlive, EndpointKeepAliveAck, HandleResolutionResponse,
    Message, RegistrationResponse,
};
use codec::param::OperationalError;
use codec::{DecodeError, PoolElementId, PoolHandle, RegistrarId};
use transport::AssocId;

use crate::time::{Duration, Instant};

/// Requests one link keeps waiting for an answer at a time. A PE endpoint has a handful in
/// flight (one per PE) and a PU one per pool it resolves; 1 024 leaves room for bursts while
/// bounding the linear scans of matching and timing out.
pub const PENDING_REQUESTS_MAX: usize = 1_024;

/// PEs one link answers keep-alives for; equal to the endpoint's PE cap.
pub const ANSWERED_PES_MAX: usize = crate::endpoint::POOL_ELEMENTS_MAX;

/// Sent buffers a link keeps to emit its next messages into ([`Link::recycle`]): enough for
/// a burst of requests, few enough that an idle link holds little.
pub const SPARE_BUFFERS_MAX: usize = 64;

/// What a request was, kept to match its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// A Deregistration of this PE.
    Deregistration {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        pe_id: PoolElementId,
    },
    /// A Registration (or re-registration) of this PE.
    Registration {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        pe_id: PoolElementId,
    },
    /// A Handle Resolution of this pool.
    Resolution {
        /// The pool.
        pool_handle: PoolHandle,
    },
}

/// What a link saw.
// Inline like codec's `Message`: events are drained at once, boxing would allocate per answer.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// A Deregistration Response matched a pending Deregistration.
    Deregistered(DeregistrationResponse),
    /// The registrar sent an ASAP Error (§2.2.14).
    Errored(OperationalError),
    /// A keep-alive for one of our PEs was answered with an Ack.
    KeptAlive {
        /// The registrar that sent it.
        server_id: RegistrarId,
        /// The pool.
        pool_handle: PoolHandle,
        /// Our PE.
        pe_id: PoolElementId,
        /// H flag: the sender is now this PE's home registrar.
        home: bool,
    },
    /// A Registration Response matched a pending Registration.
    Registered(RegistrationResponse),
    /// A Handle Resolution Response matched a pending Handle Resolution.
    Resolved(HandleResolutionResponse),
    /// A request got no answer before its deadline.
    TimedOut(Request),
    /// The registrar sent bytes that are not ASAP.
    Undecodable(DecodeError),
    /// A message that answers nothing we asked (e.g. a Deregistration Response after the
    /// registration life ran out, §3.2).
    Unsolicited(Message),
}

/// Why a link refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// [`PENDING_REQUESTS_MAX`] requests wait already.
    Full,
    /// The message is not a request (use [`Link::send`]).
    NotARequest,
}

/// One association to one registrar.
#[derive(Debug)]
pub struct Link {
    assoc: AssocId,
    peer: SocketAddr,
    registrar_id: Option<RegistrarId>,
    pending: VecDeque<Pending>,
    answered: Vec<(PoolHandle, PoolElementId)>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    last_heard: Option<Instant>,
    /// Buffers the driver handed back after sending, reused by [`Self::request`].
    spare: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Pending {
    request: Request,
    deadline: Instant,
}

impl Link {
    /// A link over `assoc`, which is up, to the registrar at `peer`.
    pub fn new(assoc: AssocId, peer: SocketAddr) -> Self {
        Self {
            assoc,
            peer,
            registrar_id: None,
            pending: VecDeque::new(),
            answered: Vec::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            last_heard: None,
            spare: Vec::new(),
        }
    }

    /// When the registrar last sent anything on this link.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    /// Whether any request waits for its answer.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The association.
    pub fn assoc(&self) -> AssocId {
        self.assoc
    }

    /// The registrar's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The registrar's id, once a keep-alive told it.
    pub fn registrar_id(&self) -> Option<RegistrarId> {
        self.registrar_id
    }

    /// Sends a Registration, Deregistration or Handle Resolution and waits `timeout` for its
    /// answer.
    pub fn request(
        &mut self,
        now: Instant,
        message: &Message,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        let request = match message {
            Message::Registration(r) => {
                Request::Registration { pool_handle: r.pool_handle, pe_id: r.pool_element.id }
            }
            Message::Deregistration(d) => {
                Request::Deregistration { pool_handle: d.pool_handle, pe_id: d.pe_id }
            }
            Message::HandleResolution(h) => Request::Resolution { pool_handle: h.pool_handle },
            _ => return Err(LinkError::NotARequest),
        };
        if self.pending.len() >= PENDING_REQUESTS_MAX {
            return Err(LinkError::Full);
        }
        self.pending.push_back(Pending { request, deadline: now + timeout });
        let bytes = self.emit_into_spare(message);
        self.outbox.push_back(bytes);
        Ok(())
    }

    /// Takes back a buffer [`Self::poll_transmit`] handed out and the driver has sent, so the
    /// next request is emitted into it instead of a new allocation.
    pub fn recycle(&mut self, bytes: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS_MAX {
            self.spare.push(bytes);
        }
        assert!(self.spare.len() <= SPARE_BUFFERS_MAX);
    }

    fn emit_into_spare(&mut self, message: &Message) -> Vec<u8> {
        let Some(mut bytes) = self.spare.pop() else { return message.emit_to_vec() };
        bytes.clear();
        bytes.resize(message.buffer_len(), 0);
        let written = message.emit(&mut bytes);
        assert_eq!(written, bytes.len(), "emit writes buffer_len bytes");
        bytes
    }

    /// Sends a message that expects no answer (Endpoint Unreachable, say).
    pub fn send(&mut self, message: &Message) {
        self.outbox.push_back(message.emit_to_vec());
    }

    /// From now on, answers keep-alives for this PE.
    pub fn answer_for(&mut self, pool_handle: PoolHandle, pe_id: PoolElementId) {
        let key = (pool_handle, pe_id);
        if !self.answered.contains(&key) && self.answered.len() < ANSWERED_PES_MAX {
            self.answered.push(key);
        }
        assert!(self.answered.len() <= ANSWERED_PES_MAX);
    }

    /// Stops answering keep-alives for this PE.
    pub fn forget(&mut self, pool_handle: PoolHandle, pe_id: PoolElementId) {
        self.answered.retain(|&key| key != (pool_handle, pe_id));
    }

    /// Whether a request for this key still waits for its answer.
    pub fn is_pending(&self, request: &Request) -> bool {
        self.pending.iter().any(|p| p.request == *request)
    }

    /// Ends the oldest pending request with this key, for an answer the caller read itself
    /// (the endpoint's zero-copy paths, `endpoint/driven.rs`); whether one was pending.
    pub fn take_pending(&mut self, request: &Request) -> bool {
        let Some(at) = self.pending.iter().position(|p| p.request == *request) else {
            return false;
        };
        // Answers mostly come in order, and pop_front is cheaper than remove.
        let taken = if at == 0 { self.pending.pop_front() } else { self.pending.remove(at) };
        taken.is_some()
    }

    /// Notes that the registrar spoke at `now`, for an answer the caller read itself (the
    /// endpoint's zero-copy paths): the home-silence probe must see every answer.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
    }

    /// One ASAP message from the registrar.
    pub fn handle_data(&mut self, now: Instant, bytes: &[u8]) {
        self.last_heard = Some(now);
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.events.push_back(LinkEvent::Undecodable(e));
                return;
            }
        };
        let event = match message {
            Message::RegistrationResponse(r) => {
                let key = Request::Registration { pool_handle: r.pool_handle, pe_id: r.pe_id };
                self.answer(key, Message::RegistrationResponse(r))
            }
            Message::DeregistrationResponse(r) => {
                let key = Request::Deregistration { pool_handle: r.pool_handle, pe_id: r.pe_id };
                self.answer(key, Message::DeregistrationResponse(r))
            }
            Message::HandleResolutionResponse(r) => {
                let key = Request::Resolution { pool_handle: r.pool_handle };
                self.answer(key, Message::HandleResolutionResponse(r))
            }
            Message::EndpointKeepAlive(k) => return self.handle_keep_alive(&k),
            Message::Error(e) => LinkEvent::Errored(e.error),
            other => LinkEvent::Unsolicited(other),
        };
        self.events.push_back(event);
    }

    /// Times out every request whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = &mut self.events;
        self.pending.retain(|p| {
            let expired = p.deadline <= now;
            if expired {
                events.push_back(LinkEvent::TimedOut(p.request));
            }
            !expired
        });
    }

    /// The earliest request deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// The next message to send on this association.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The next thing the link saw.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Ends the link: every pending request, oldest first, for the caller to send again
    /// elsewhere (§3.7.1: "the ASAP Endpoint should re-send the request").
    pub fn into_pending(self) -> Vec<Request> {
        self.pending.into_iter().map(|p| p.request).collect()
    }

    /// Matches an answer to the oldest pending request with its key (FIFO for resolutions).
    fn answer(&mut self, key: Request, message: Message) -> LinkEvent {
        let Some(at) = self.pending.iter().position(|p| p.request == key) else {
            return LinkEvent::Unsolicited(message);
        };
        let removed = self.pending.remove(at);
        assert!(removed.is_some(), "position came from this deque");
        match message {
            Message::RegistrationResponse(r) => LinkEvent::Registered(r),
            Message::DeregistrationResponse(r) => LinkEvent::Deregistered(r),
            Message::HandleResolutionResponse(r) => LinkEvent::Resolved(r),
            other => unreachable!("answer() is called for responses only, got {other:?}"),
        }
    }

    fn handle_keep_alive(&mut self, k: &EndpointKeepAlive) {
        self.registrar_id = Some(k.server_id);
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.4
        //# KA1)  The PE must verify that the Pool Handle is correct and matches
        //# the Pool Handle sent in its earlier ASAP_REGISTRATION message.  If
        //# the Pool Handle does not match, the PE MUST silently discard the
        //# message.
        // RSPLIB (and our registrar) also name the PE probed; then only that PE answers.
        let ours = self.answered.iter().filter(|(pool, id)| {
            *pool == k.pool_handle && (k.pe_id.is_none() || k.pe_id == Some(*id))
        });
        for &(pool_handle, pe_id) in ours {
            //# KA2)  Send an ASAP_ENDPOINT_KEEP_ALIVE_ACK (Section 2.2.8) as
            //# follows:
            //# KA2.1)  Fill in the Pool Handle parameter with the PE's Pool
            //# Handle.
            //# KA2.2)  Fill in the PE Identifier parameter using the PE
            //# identifier used by this PE for registration.
            //# KA2.3)  Send the ASAP_ENDPOINT_KEEP_ALIVE_ACK message via the
            //# appropriate SCTP association for the ENRP server that sent the
            //# ASAP_ENDPOINT_KEEP_ALIVE message.
            let ack = EndpointKeepAliveAck { pool_handle, pe_id };
            self.outbox.push_back(Message::EndpointKeepAliveAck(ack).emit_to_vec());
            let server_id = k.server_id;
            let home = k.home;
            self.events.push_back(LinkEvent::KeptAlive { server_id, pool_handle, pe_id, home });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, registration_response, resolution, resolution_response, PEER};
    use codec::asap::Registration;

    fn link() -> Link {
        Link::new(AssocId(7), PEER)
    }

    // Goal: Handle Resolution Responses match their requests by pool handle, first in first
    // out, whatever order the pools are answered in. Method: three requests for two pools,
    // answers in another order; unmatched answers come out as Unsolicited.
    #[test]
    fn resolutions_match_by_pool_fifo() {
        let mut l = link();
        let now = Instant::ZERO;
        for name in ["a", "b", "a"] {
            l.request(now, &resolution(name), Duration::from_secs(1)).unwrap();
        }
        assert_eq!(l.poll_transmit(), Some(resolution("a").emit_to_vec()));
        for name in ["b", "a", "a", "a"] {
            l.handle_data(now, &resolution_response(name, &[1]).emit_to_vec());
        }
        let kinds: Vec<_> = std::iter::from_fn(|| l.poll_event())
            .map(|e| match e {
                LinkEvent::Resolved(r) => format!("resolved {}", r.pool_handle),
                LinkEvent::Unsolicited(_) => "unsolicited".to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["resolved b", "resolved a", "resolved a", "unsolicited"]);
        assert_eq!(l.poll_timeout(), None);
    }

    // Goal: a Registration Response matches its Registration by (pool handle, PE id) only.
    // Method: two PEs pending; the response for the second PE id resolves only that one.
    #[test]
    fn registration_matches_by_pool_and_id() {
        let mut l = link();
        let now = Instant::ZERO;
        for id in [1, 2] {
            let pe = crate::testing::pool_element(id);
            let m =
                Message::Registration(Registration { pool_handle: pool("p"), pool_element: pe });
            l.request(now, &m, Duration::from_secs(1)).unwrap();
        }
        l.handle_data(now, &registration_response("p", 2, None).emit_to_vec());
        assert!(matches!(l.poll_event(), Some(LinkEvent::Registered(r)) if r.pe_id.0 == 2));
        let one = Request::Registration { pool_handle: pool("p"), pe_id: PoolElementId(1) };
        assert!(l.is_pending(&one));
        l.handle_data(now, &registration_response("q", 1, None).emit_to_vec());
        assert!(matches!(l.poll_event(), Some(LinkEvent::Unsolicited(_))));
    }

    // Goal: a request times out at exactly its deadline and not a microsecond earlier.
    // Method: boundary pair at deadline - 1 µs and deadline.
    #[test]
    fn request_times_out_at_deadline() {
        let mut l = link();
        let start = Instant::from_micros(1_000);
        l.request(start, &resolution("a"), Duration::from_micros(500)).unwrap();
        l.handle_timeout(Instant::from_micros(1_499));
        assert_eq!(l.poll_event(), None);
        l.handle_timeout(Instant::from_micros(1_500));
        let want = Request::Resolution { pool_handle: pool("a") };
        assert_eq!(l.poll_event(), Some(LinkEvent::TimedOut(want)));
        assert_eq!(l.poll_timeout(), None);
    }

    // Goal: keep-alives are answered automatically for our PEs only (KA1, KA2), and the H
    // flag is reported. Method: keep-alives for our PE (with H), another pool, and another
    // PE id; compare the Ack bytes with codec's encoding.
    #[test]
    fn keep_alive_answered_for_our_pes_only() {
        let mut l = link();
        l.answer_for(pool("p"), PoolElementId(5));
        let ka = |name: &str, id: u32, home: bool| {
            Message::EndpointKeepAlive(EndpointKeepAlive {
                home,
                server_id: RegistrarId(9),
                pool_handle: pool(name),
                pe_id: Some(PoolElementId(id)),
            })
            .emit_to_vec()
        };
        l.handle_data(Instant::ZERO, &ka("p", 5, true));
        l.handle_data(Instant::ZERO, &ka("other", 5, false));
        l.handle_data(Instant::ZERO, &ka("p", 6, false));
        let ack = EndpointKeepAliveAck { pool_handle: pool("p"), pe_id: PoolElementId(5) };
        assert_eq!(l.poll_transmit(), Some(Message::EndpointKeepAliveAck(ack).emit_to_vec()));
        assert_eq!(l.poll_transmit(), None);
        let seen = LinkEvent::KeptAlive {
            server_id: RegistrarId(9),
            pool_handle: pool("p"),
            pe_id: PoolElementId(5),
            home: true,
        };
        assert_eq!(l.poll_event(), Some(seen));
        assert_eq!(l.poll_event(), None);
        assert_eq!(l.registrar_id(), Some(RegistrarId(9)));
    }
}
