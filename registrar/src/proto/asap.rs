//! The ASAP server procedures (RFC 5352 §3.1-3.5) of one core, over its shard and sessions.
//! Answers go out through [`Server::reply`], which publishes the shard's changes first.

use std::net::SocketAddr;

use codec::asap::{
    Deregistration, DeregistrationResponse, EndpointKeepAlive, EndpointKeepAliveAck,
    EndpointUnreachable, HandleResolution, HandleResolutionResponse, HandleResolutionResponseRef,
    Message, Registration, RegistrationResponse,
};
use codec::error::{DecodeError, DecodeErrorKind, ErrorCause};
use codec::param::{Cause, CauseInfo, OperationalError};
use handlespace::{
    Duration, Expiry, Instant, Registered, Registration as HsRegistration, Removed, Unreachable,
};
use rand::Rng;

use super::convert::{overall_policy, policy_settings, transport_info};
use super::cross_core::SessionId;
use super::server::{Outgoing, Server};
use super::session::Sessions;

/// Capacity of a new answer buffer: a Handle Resolution Response with a few PEs fits.
const BUFFER_CAPACITY: usize = 512;

/// Timers fired per `handle_timeout` call; the rest wait for the next iteration so that a burst
/// of expiries cannot stall the loop.
pub(crate) const EXPIRIES_PER_TURN_MAX: usize = 4_096;

/// Bytes of an unrecognized message echoed back in its error cause: enough to identify it,
/// never enough to amplify a flood.
const UNRECOGNIZED_ECHO_MAX: usize = 256;

impl Server {
    pub(crate) fn handle_request(
        &mut self,
        now: Instant,
        session: SessionId,
        peer: SocketAddr,
        m: Message,
    ) {
        match m {
            Message::Registration(r) => self.register(now, session, peer, r),
            Message::Deregistration(d) => self.deregister(session, peer, d),
            Message::HandleResolution(h) => {
                self.resolve(session, &h, false);
            }
            Message::EndpointKeepAliveAck(a) => self.keep_alive_ack(now, a),
            Message::EndpointUnreachable(u) => self.unreachable(u),
            _ => unreachable!("request_pool_handle admits only the five requests above"),
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
    //# the ENRP server MUST ... add the PE to the pool ... fill in the Home ENRP server
    //# identifier
    fn register(&mut self, now: Instant, session: SessionId, peer: SocketAddr, r: Registration) {
        let Registration { pool_handle, mut pool_element } = r;
        let id = pool_element.id;
        let reject = |cause: u16| RegistrationResponse {
            reject: true,
            pool_handle,
            pe_id: id,
            error: Some(operational_error(ErrorCause(cause), CauseInfo::None)),
        };
        let (Some(policy), Some(transport)) =
            (policy_settings(&pool_element.policy), transport_info(&pool_element.user_transport))
        else {
            self.stats.registrations_rejected += 1;
            return self.reply(session, reject(ErrorCause::INVALID_VALUES.0).emit_to_vec());
        };
        let handlespace = &self.shard.handlespace;
        if !Sessions::may_modify(handlespace, session, peer, &pool_handle, id) {
            self.stats.registrations_rejected += 1;
            let cause = ErrorCause::REJECTED_SECURITY.0;
            return self.reply(session, reject(cause).emit_to_vec());
        }
        let life_ms = u64::from(pool_element.registration_life_ms);
        let lifetime = if pool_element.registration_life_ms == u32::MAX {
            self.config.registration_life_max
        } else {
            Duration::from_micros(life_ms * 1_000).min(self.config.registration_life_max)
        };
        pool_element.home_registrar = self.config.registrar_id;
        //= https://www.rfc-editor.org/rfc/rfc5354#section-3.10
        //# ASAP Transport  This indicates the ASAP transport address of the PE and MUST be an
        //# SCTP type transport parameter
        // The association's peer: where a registrar taking the PE over reaches it. ENRP carries
        // it; ASAP answers leave it out (`emit_with_encoded`), as RSPLIB's registrar does.
        pool_element.asap_transport = asap_transport(peer);
        let registration = HsRegistration {
            pool_handle,
            id,
            home: self.config.registrar_id,
            policy,
            transport,
            lifetime,
            registrator: session.to_u64(),
            wire: pool_element.encode().into(),
        };
        let previous = handlespace.element(&pool_handle, id).map(|e| e.registrator());
        match self.shard.register(now, registration) {
            Ok(outcome) => {
                self.stats.registrations += 1;
                tracing::debug!(pool = %pool_handle, pe = id.0, ?outcome, "registered");
                if let (Registered::Updated { .. }, Some(old)) = (outcome, previous) {
                    self.sessions.unlink(SessionId::from_u64(old), pool_handle, id);
                }
                self.sessions.link(session, pool_handle, id);
                let accept =
                    RegistrationResponse { reject: false, pool_handle, pe_id: id, error: None };
                // `reply` publishes the change first: the replicas hear of it before the PE.
                self.reply(session, accept.emit_to_vec());
            }
            Err(error) => {
                self.stats.registrations_rejected += 1;
                let info = self.rejection_info(&pool_handle, error);
                let cause = ErrorCause(error.cause_code());
                let response = RegistrationResponse {
                    reject: true,
                    pool_handle,
                    pe_id: id,
                    error: Some(operational_error(cause, info)),
                };
                self.reply(session, response.emit_to_vec());
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5354#section-3.12.6
    //# A Pool Member Selection Policy TLV (see Section 3.8) that indicates the overall pool
    //# policy is included as cause-specific information.
    //= https://www.rfc-editor.org/rfc/rfc5354#section-3.12.8
    //# A Transport TLV that indicates the overall pool user transport type is included as
    //# cause-specific information.
    /// What a refusal tells the PE about the pool it does not fit: its policy, or the user
    /// transport of a PE already in it.
    fn rejection_info(
        &self,
        pool_handle: &codec::PoolHandle,
        error: handlespace::RegistrationError,
    ) -> CauseInfo {
        use handlespace::RegistrationError as E;
        let Some(pool) = self.shard.handlespace.pool(pool_handle) else { return CauseInfo::None };
        match error {
            E::InconsistentPoolingPolicy => {
                overall_policy(pool.policy_type()).map_or(CauseInfo::None, CauseInfo::Policy)
            }
            E::InconsistentTransportType => {
                let member = pool.elements().next().map(|e| codec::Parameter::parse(e.wire()));
                match member {
                    Some(Ok(codec::Parameter::PoolElement(pe))) => {
                        CauseInfo::Transport(pe.user_transport)
                    }
                    _ => CauseInfo::None,
                }
            }
            _ => CauseInfo::None,
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
    //# Upon receiving the message, the ENRP server SHALL remove the PE from its handlespace.
    fn deregister(&mut self, session: SessionId, peer: SocketAddr, d: Deregistration) {
        let Deregistration { pool_handle, pe_id } = d;
        let mut error = None;
        let handlespace = &self.shard.handlespace;
        if Sessions::may_modify(handlespace, session, peer, &pool_handle, pe_id) {
            if let Some(removed) = self.shard.deregister(&pool_handle, pe_id) {
                tracing::debug!(pool = %pool_handle, pe = pe_id.0, "deregistered");
                self.stats.deregistrations += 1;
                self.forget(&removed);
            }
        } else {
            let cause = ErrorCause::REJECTED_SECURITY;
            error = Some(operational_error(cause, CauseInfo::None));
        }
        let response = DeregistrationResponse { pool_handle, pe_id, error };
        self.reply(session, response.emit_to_vec());
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
    //# If the named pool does not exist in the handlespace, the ENRP server MUST reject the
    //# handle resolution request by responding with an ASAP_HANDLE_RESOLUTION_RESPONSE message
    //# carrying an Unknown Pool Handle error.
    /// Answers from this core's shard, or from its read replica of another core's shard. A pool
    /// the replica does not hold is not answered (false): its owner answers.
    pub(crate) fn resolve(
        &mut self,
        session: SessionId,
        h: &HandleResolution,
        from_replica: bool,
    ) -> bool {
        let handlespace = match (from_replica, self.shard.replica.as_mut()) {
            (false, _) => &mut self.shard.handlespace,
            (true, Some(replica)) => replica,
            (true, None) => return false,
        };
        let items = h.items_wanted.unwrap_or(self.config.resolution_items_default);
        // A subscription (the S bit) is held by the core of the association that asked.
        let subscribe = h.subscribe
            && session.core == self.config.core
            && self.subscriptions.admits(session.assoc, &h.pool_handle);
        let mut subscribed = false;
        let bytes = match handlespace.resolve(&h.pool_handle, items, &mut self.rng) {
            Ok(resolution) => {
                subscribed = subscribe;
                let policy = overall_policy(resolution.pool().policy_type());
                let mut bytes =
                    self.spare.pop().unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY));
                let response = HandleResolutionResponseRef {
                    accept_updates: subscribe,
                    pool_handle: &h.pool_handle,
                    overall_policy: policy.as_ref(),
                    pool_elements: &[],
                };
                // As `register` (or a peer's update) encoded it: kept, or re-made from the fields.
                let elements = resolution.elements().map(|e| (e, e.home()));
                response.emit_with_encoded(&mut bytes, elements);
                bytes
            }
            Err(_) if from_replica => return false,
            Err(error) => {
                let error = operational_error(ErrorCause(error.cause_code()), CauseInfo::None);
                let response = HandleResolutionResponse {
                    accept_updates: false,
                    pool_handle: h.pool_handle,
                    overall_policy: None,
                    pool_elements: Vec::new(),
                    error: Some(error),
                };
                response.emit_to_vec()
            }
        };
        self.stats.resolutions += 1;
        self.stats.replica_resolutions += u64::from(from_replica);
        if subscribed {
            self.subscribe(session.assoc, h.pool_handle);
        } else if h.subscribe {
            self.stats.subscriptions_refused += 1;
        }
        tracing::trace!(pool = %h.pool_handle, from_replica, "handle resolution");
        self.reply(session, bytes);
        true
    }

    fn keep_alive_ack(&mut self, now: Instant, a: EndpointKeepAliveAck) {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
        //# This can be achieved by varying the time between two ASAP_ENDPOINT_KEEP_ALIVE
        //# messages to the same PE randomly by plus/minus 50 percent.
        // The handlespace arms the next keep-alive one interval after the `now` it is given, so
        // shifting `now` by a uniform offset in [-interval/2, +interval/2) spreads it.
        let interval = self.config.handlespace.keep_alive_interval.micros();
        let offset = self.rng.random_range(0..interval.max(1));
        let shifted = (now.micros() + offset).saturating_sub(interval / 2);
        let acked = self.shard.handlespace.handle_keep_alive_ack(
            Instant::from_micros(shifted),
            &a.pool_handle,
            a.pe_id,
        );
        if !acked {
            self.stats.dropped += 1;
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
    //# the ENRP server SHOULD keep a counter to record how many ASAP_ENDPOINT_UNREACHABLE
    //# messages it has received reporting reachability problem relating to this PE.
    fn unreachable(&mut self, u: EndpointUnreachable) {
        match self.shard.handlespace.report_unreachable(&u.pool_handle, u.pe_id) {
            Some(Unreachable::Removed(removed)) => {
                self.stats.unreachable_removals += 1;
                self.shard.removed(&removed);
                self.forget(&removed);
            }
            Some(Unreachable::Counted(_)) => {
                //# Upon the reception of an ASAP_ENDPOINT_UNREACHABLE message, an ENRP server
                //# MUST immediately send a point-to-point ASAP_ENDPOINT_KEEP_ALIVE message to
                //# the PE in question (the H flag in the message SHOULD be set to '0'
                let Some(element) = self.shard.handlespace.element(&u.pool_handle, u.pe_id) else {
                    return;
                };
                let target = SessionId::from_u64(element.registrator());
                let keep_alive = EndpointKeepAlive {
                    home: false,
                    server_id: self.config.registrar_id,
                    pool_handle: u.pool_handle,
                    pe_id: Some(u.pe_id),
                };
                self.stats.keep_alives_sent += 1;
                self.reply(target, keep_alive.emit_to_vec());
            }
            None => {}
        }
    }

    /// Fires due handlespace timers: keep-alives out, unanswered or expired PEs removed.
    pub(crate) fn fire_shard_timers(&mut self, now: Instant) {
        let mut expiries = std::mem::take(&mut self.expiries);
        expiries.clear();
        self.shard.handlespace.expire(now, EXPIRIES_PER_TURN_MAX, &mut expiries);
        for expiry in expiries.drain(..) {
            match expiry {
                Expiry::KeepAliveDue { pool_handle, id, registrator, home_changed } => {
                    let keep_alive = EndpointKeepAlive {
                        home: home_changed,
                        server_id: self.config.registrar_id,
                        pool_handle,
                        pe_id: Some(id),
                    };
                    self.stats.keep_alives_sent += 1;
                    let bytes = keep_alive.emit_to_vec();
                    if registrator == super::enrp::NO_SESSION {
                        self.keep_alive_over_asap_transport(&pool_handle, id, bytes);
                    } else {
                        self.reply(SessionId::from_u64(registrator), bytes);
                    }
                }
                Expiry::KeepAliveTimedOut(removed) => {
                    let (pool, pe) = (removed.pool_handle, removed.id.0);
                    tracing::debug!(%pool, pe, "keep-alive timeout");
                    self.stats.keep_alive_timeouts += 1;
                    self.shard.removed(&removed);
                    self.forget(&removed);
                }
                Expiry::LifetimeExpired(removed) => {
                    self.stats.lifetime_expiries += 1;
                    self.shard.removed(&removed);
                    self.forget(&removed);
                }
            }
        }
        self.expiries = expiries;
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.2
    //# send a point-to-point ASAP_ENDPOINT_KEEP_ALIVE message, with the 'H' flag set to '1',
    //# to each of the PEs.
    /// A keep-alive for a PE no association here registered (one taken over from a failed
    /// peer, or learned from one): sent over an association to the PE's ASAP Transport, opened
    /// for it if need be (`poll_connect_pe`); the PE's Ack then keeps it here.
    fn keep_alive_over_asap_transport(
        &mut self,
        pool_handle: &codec::PoolHandle,
        id: codec::PoolElementId,
        bytes: Vec<u8>,
    ) {
        let address =
            self.shard.handlespace.element(pool_handle, id).and_then(asap_transport_address);
        let Some(address) = address else {
            self.stats.keep_alives_unroutable += 1;
            return;
        };
        if !self.pe_links.send(address, bytes) {
            self.stats.keep_alives_unroutable += 1;
        }
    }

    /// Answers a request that could not reach its pool's core (a full queue) with Lack of
    /// Resources (RFC 5354 §3.12.7), so the peer hears of the overload instead of timing out.
    pub(crate) fn refuse_request(&mut self, session: SessionId, message: Message) {
        let error = || Some(operational_error(ErrorCause::LACK_OF_RESOURCES, CauseInfo::None));
        let bytes = match message {
            Message::Registration(r) => RegistrationResponse {
                reject: true,
                pool_handle: r.pool_handle,
                pe_id: r.pool_element.id,
                error: error(),
            }
            .emit_to_vec(),
            Message::Deregistration(d) => DeregistrationResponse {
                pool_handle: d.pool_handle,
                pe_id: d.pe_id,
                error: error(),
            }
            .emit_to_vec(),
            Message::HandleResolution(h) => HandleResolutionResponse {
                accept_updates: false,
                pool_handle: h.pool_handle,
                overall_policy: None,
                pool_elements: Vec::new(),
                error: error(),
            }
            .emit_to_vec(),
            _ => return,
        };
        self.reply(session, bytes);
    }

    /// Drops the PEs of this shard that an ended session registered.
    pub(crate) fn drop_session(&mut self, session: SessionId) {
        let Some(mut elements) = self.sessions.take(session) else { return };
        // In a fixed order, so that the removals (and what they publish) replay exactly.
        elements.sort_unstable();
        for (pool_handle, id) in elements {
            // Only if it is still this session's: a PE re-registered elsewhere since (another
            // association, or a peer registrar) is not the ended session's to remove.
            let registrator =
                self.shard.handlespace.element(&pool_handle, id).map(|e| e.registrator());
            if registrator != Some(session.to_u64()) {
                continue;
            }
            if self.shard.deregister(&pool_handle, id).is_some() {
                tracing::debug!(pool = %pool_handle, pe = id.0, "removed with its session");
                self.stats.session_removals += 1;
            }
        }
    }

    /// Bookkeeping after a PE left this core's shard: its session's list.
    fn forget(&mut self, removed: &Removed) {
        let session = SessionId::from_u64(removed.registrator);
        self.sessions.unlink(session, removed.pool_handle, removed.id);
    }

    pub(crate) fn reject_undecodable(&mut self, assoc: u32, bytes: &[u8], error: DecodeError) {
        self.stats.decode_errors += 1;
        if !error.should_report() {
            return;
        }
        let cause = ErrorCause::from(error);
        let info = if error.kind == DecodeErrorKind::UnknownMessage {
            CauseInfo::Message(bytes[..bytes.len().min(UNRECOGNIZED_ECHO_MAX)].to_vec())
        } else {
            CauseInfo::None
        };
        let message = codec::asap::Error { error: operational_error(cause, info) };
        self.transmit.push_back(Outgoing { assoc, bytes: message.emit_to_vec() });
    }
}

/// Where a PE's parameter says its ASAP endpoint is (its first address).
fn asap_transport_address(element: &handlespace::PoolElement) -> Option<SocketAddr> {
    let transport = element.asap_transport()?;
    let ip = *transport.addresses.as_slice().first()?;
    (transport.port != 0).then(|| SocketAddr::new(ip, transport.port))
}

/// The ASAP Transport of a PE registered over an association with `peer` (IP and SCTP port);
/// none when the peer is unknown.
fn asap_transport(peer: SocketAddr) -> Option<codec::SctpTransport> {
    if peer.port() == 0 || peer.ip().is_unspecified() {
        return None;
    }
    let addresses = codec::param::AddressList::from_slice(&[peer.ip()])?;
    Some(codec::SctpTransport {
        port: peer.port(),
        transport_use: codec::TransportUse::DATA_ONLY,
        addresses,
    })
}

pub(crate) fn operational_error(code: ErrorCause, info: CauseInfo) -> OperationalError {
    OperationalError { causes: vec![Cause { code, info }] }
}

/// A well-formed Handle Resolution, read through the codec's zero-copy view; anything else
/// (other messages, and malformed resolutions, which then get their error cause from the owned
/// parse) is `None`.
pub(crate) fn resolution(bytes: &[u8]) -> Option<HandleResolution> {
    if bytes.first() != Some(&codec::asap::MessageType::HANDLE_RESOLUTION.0) {
        return None;
    }
    let view = codec::asap::HandleResolutionView::new_checked(bytes).ok()?;
    Some(HandleResolution {
        subscribe: view.subscribe(),
        pool_handle: view.pool_handle(),
        items_wanted: view.items_wanted(),
    })
}

/// The pool a request is about, or `None` for messages a registrar does not serve.
pub(crate) fn request_pool_handle(message: &Message) -> Option<codec::PoolHandle> {
    Some(match message {
        Message::Registration(r) => r.pool_handle,
        Message::Deregistration(d) => d.pool_handle,
        Message::HandleResolution(h) => h.pool_handle,
        Message::EndpointKeepAliveAck(a) => a.pool_handle,
        Message::EndpointUnreachable(u) => u.pool_handle,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::PoolHandle;

    // Goal: the view fast path decodes exactly what the general parser decodes, and fails
    // exactly where it fails. Method: Handle Resolutions with and without the option and the S
    // flag, then every truncation and every shrunken length field of one of them.
    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let handle = PoolHandle::new(b"EchoPool").unwrap();
        let mut samples = Vec::new();
        for (subscribe, items_wanted) in [(false, None), (true, Some(3)), (false, Some(0))] {
            let m = HandleResolution { subscribe, pool_handle: handle, items_wanted };
            samples.push(Message::HandleResolution(m).emit_to_vec());
        }
        let full = samples[1].clone();
        for cut in 0..full.len() {
            samples.push(full[..cut].to_vec());
            let mut shrunk = full.clone();
            shrunk[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
            samples.push(shrunk);
        }
        for bytes in samples {
            // The fast path takes what parses, and leaves everything else to the parser.
            let fast = resolution(&bytes).map(Message::HandleResolution);
            assert_eq!(fast, Message::parse(&bytes).ok(), "bytes {bytes:02x?}");
        }
    }
}
