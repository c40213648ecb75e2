//! One core's ASAP server: its sessions (associations) and its handlespace shard.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use codec::asap::{
    Deregistration, DeregistrationResponse, EndpointKeepAlive, EndpointKeepAliveAck,
    EndpointUnreachable, HandleResolution, HandleResolutionResponse, Message, Registration,
    RegistrationResponse,
};
use codec::error::{DecodeError, DecodeErrorKind, ErrorCause};
use codec::param::{Cause, CauseInfo, OperationalError};
use codec::{PoolElementId, PoolHandle, RegistrarId};
use handlespace::{
    shard_of, ChecksumAccumulator, Duration, Expiry, Handlespace, Instant, Registered,
    Registration as HsRegistration, Removed, Unreachable,
};
use hashbrown::{HashMap, HashSet};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::convert::{overall_policy, policy_settings, transport_info};

/// A session (SCTP association) anywhere in the registrar: the core that owns it and the
/// transport's association id there. Packed into the handlespace's opaque `registrator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionId {
    /// The core whose transport holds the association.
    pub core: u16,
    /// The association id on that core.
    pub assoc: u32,
}

impl SessionId {
    fn to_u64(self) -> u64 {
        u64::from(self.core) << 32 | u64::from(self.assoc)
    }

    fn from_u64(v: u64) -> Self {
        Self { core: (v >> 32) as u16, assoc: v as u32 }
    }
}

/// A message between cores. It owns everything it carries (STYLE.md §4).
#[derive(Debug)]
pub enum CrossCore {
    /// A parsed request for a pool on the target core's shard.
    Request {
        /// Where the request came from (and where the answer goes).
        session: SessionId,
        /// The association's primary peer address (for the masquerade rule).
        peer: SocketAddr,
        /// The request.
        message: Box<Message>,
    },
    /// A Handle Resolution for a pool on the target core's shard: the hot request, carried by
    /// value (no allocation, no 400-byte `Message`), answered with `Transmit`.
    Resolve {
        /// Where the answer goes.
        session: SessionId,
        /// The request.
        request: HandleResolution,
    },
    /// ASAP bytes to send on one of the target core's associations.
    Transmit {
        /// The association on the target core.
        assoc: u32,
        /// The whole ASAP message.
        bytes: Vec<u8>,
    },
    /// A session ended: every shard drops the PEs registered over it.
    SessionClosed {
        /// The session.
        session: SessionId,
    },
    /// A change to the sender's shard, for the target core's read replica. It must arrive: a
    /// queue with no room keeps it for the next turn instead of refusing it.
    Replica(ReplicaUpdate),
}

/// A change to one core's shard, applied to every other core's read replica so that a handle
/// resolution is answered on the core that received it (ARCHITECTURE.md, "Read replicas").
#[derive(Debug)]
pub enum ReplicaUpdate {
    /// A PE was registered or re-registered; boxed, since it is rare and large.
    Upsert(Box<HsRegistration>),
    /// A PE left the shard (deregistration, timeout, expiry, report or session end).
    Remove {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        id: PoolElementId,
    },
}

impl CrossCore {
    /// Whether this message belongs to the control plane (registrations, keep-alives, session
    /// ends) rather than the data plane (handle resolutions and their answers).
    pub fn is_control(&self) -> bool {
        match self {
            Self::Request { message, .. } => !matches!(**message, Message::HandleResolution(_)),
            Self::Resolve { .. } => false,
            Self::Transmit { bytes, .. } => {
                bytes.first() != Some(&codec::asap::MessageType::HANDLE_RESOLUTION_RESPONSE.0)
            }
            Self::SessionClosed { .. } | Self::Replica(_) => true,
        }
    }

    /// Whether a full queue must keep this message for later instead of refusing it: a lost
    /// replica update would leave a core answering from a stale copy.
    pub fn must_arrive(&self) -> bool {
        matches!(self, Self::Replica(_))
    }
}

/// ASAP bytes to send on a local association (PPID 11).
#[derive(Debug)]
pub struct Outgoing {
    /// The association on this core.
    pub assoc: u32,
    /// The whole ASAP message.
    pub bytes: Vec<u8>,
}

/// What one core's server needs to know.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This registrar's id.
    pub registrar_id: RegistrarId,
    /// This core's index.
    pub core: u16,
    /// Number of cores (= shards).
    pub cores: u16,
    /// The handlespace shard's bounds and timers.
    pub handlespace: handlespace::Config,
    /// Items in a Handle Resolution Response when the request names none.
    pub resolution_items_default: u32,
    /// Upper bound on a requested registration life.
    pub registration_life_max: Duration,
    /// Drop a session's PEs when its association closes or fails (RSPLIB does the same).
    pub remove_on_session_loss: bool,
    /// Seed for policy randomness and keep-alive spreading.
    pub seed: u64,
    /// Keep a read replica of the other cores' shards and answer handle resolutions from it
    /// instead of forwarding them to the owning core. Writes always go to the owner.
    pub replicas: bool,
}

/// Per-core counters, summed by the reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Registrations accepted (new and re-registrations).
    pub registrations: u64,
    /// Registrations rejected.
    pub registrations_rejected: u64,
    /// Deregistrations handled.
    pub deregistrations: u64,
    /// Handle resolutions answered (including Unknown Pool Handle answers).
    pub resolutions: u64,
    /// Endpoint Keep Alives sent.
    pub keep_alives_sent: u64,
    /// PEs removed because a keep-alive went unanswered.
    pub keep_alive_timeouts: u64,
    /// PEs removed because their registration life ran out.
    pub lifetime_expiries: u64,
    /// PEs removed by unreachable reports.
    pub unreachable_removals: u64,
    /// PEs removed because their session ended.
    pub session_removals: u64,
    /// Messages answered with an ASAP Error.
    pub decode_errors: u64,
    /// Messages dropped because a queue was full.
    pub dropped: u64,
    /// Associations (sessions) that came up on this core.
    pub sessions_opened: u64,
    /// Handle resolutions answered from this core's read replica (also in `resolutions`).
    pub replica_resolutions: u64,
    /// Replica updates applied from other cores.
    pub replica_updates: u64,
    /// Gauge: PEs in this core's shard (summed over cores: the registrar's PEs).
    pub shard_elements: u64,
    /// Gauge: PEs in this core's read replica of the other shards.
    pub replica_elements: u64,
    /// Gauge: the RFC 5353 PE checksum sum of this core's shard (merged over cores: the
    /// registrar's own checksum).
    pub shard_sum: ChecksumAccumulator,
    /// Gauge: the same over this core's read replica; once the cores are quiet it equals the
    /// other cores' `shard_sum` merged, the check that no replica update was lost.
    pub replica_sum: ChecksumAccumulator,
}

/// The sans-IO ASAP server of one core.
pub struct Server {
    config: ServerConfig,
    handlespace: Handlespace,
    /// Read replica of every other core's shard (`ServerConfig::replicas` with several cores):
    /// no timers, no sessions; written only by [`ReplicaUpdate`]s from the owners.
    replica: Option<Handlespace>,
    /// Pools the replica could not hold in full (its limits): their resolutions are forwarded.
    replica_skipped: HashSet<PoolHandle>,
    /// Primary peer address of each live local association.
    sessions: HashMap<u32, SocketAddr>,
    /// PEs of this shard by the session that registered them, to drop them when it ends.
    by_session: HashMap<SessionId, HashSet<(PoolHandle, PoolElementId)>>,
    transmit: VecDeque<Outgoing>,
    forward: VecDeque<(u16, CrossCore)>,
    expiries: Vec<Expiry>,
    /// Message buffers handed back by the caller after sending, reused for answers so that the
    /// resolution path does not allocate once warm.
    spare: Vec<Vec<u8>>,
    rng: SmallRng,
    stats: Stats,
}

/// Spare answer buffers kept per core; beyond this a returned buffer is freed. Enough for a
/// full turn of answers (`EVENTS_PER_TURN_MAX` in the core loop) with room to spare.
const SPARE_BUFFERS_MAX: usize = 2_048;
/// Capacity of a new answer buffer: a Handle Resolution Response with a few PEs fits.
const BUFFER_CAPACITY: usize = 512;

/// Timers fired per `handle_timeout` call; the rest wait for the next iteration so that a burst
/// of expiries cannot stall the loop.
const EXPIRIES_PER_TURN_MAX: usize = 4_096;

impl Server {
    /// A server with an empty shard.
    pub fn new(config: ServerConfig) -> Self {
        assert!(config.cores > 0);
        assert!(config.core < config.cores);
        assert_ne!(config.registrar_id.0, 0, "RFC 5353 §2.1: the id is non-zero");
        // The replica's PEs are homed at this registrar, but its `own` is the id no registrar
        // has (RFC 5353 §2.1), so that it arms no keep-alive; and replicated PEs have an
        // infinite life, so that it arms no timer at all: only the owner expires them.
        let replica = (config.replicas && config.cores > 1)
            .then(|| Handlespace::new(RegistrarId(0), config.handlespace));
        Self {
            handlespace: Handlespace::new(config.registrar_id, config.handlespace),
            replica,
            replica_skipped: HashSet::new(),
            rng: SmallRng::seed_from_u64(config.seed ^ u64::from(config.core)),
            config,
            sessions: HashMap::new(),
            by_session: HashMap::new(),
            transmit: VecDeque::new(),
            forward: VecDeque::new(),
            expiries: Vec::new(),
            spare: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// This core's counters and gauges.
    pub fn stats(&self) -> Stats {
        let id = self.config.registrar_id;
        let replica = self.replica.as_ref();
        Stats {
            shard_elements: u64::from(self.handlespace.element_count()),
            replica_elements: replica.map_or(0, |r| u64::from(r.element_count())),
            shard_sum: self.handlespace.checksum_accumulator(id),
            replica_sum: replica.map_or(ChecksumAccumulator::EMPTY, |r| r.checksum_accumulator(id)),
            ..self.stats
        }
    }

    /// This core's handlespace shard (read-only, for dumps and tests).
    pub fn handlespace(&self) -> &Handlespace {
        &self.handlespace
    }

    /// A local association came up.
    pub fn handle_up(&mut self, assoc: u32, peer: SocketAddr) {
        self.stats.sessions_opened += 1;
        self.sessions.insert(assoc, peer);
    }

    /// A local association closed or failed: every shard drops the PEs registered over it.
    pub fn handle_closed(&mut self, _now: Instant, assoc: u32) {
        if self.sessions.remove(&assoc).is_none() {
            return;
        }
        let session = SessionId { core: self.config.core, assoc };
        if !self.config.remove_on_session_loss {
            return;
        }
        for core in 0..self.config.cores {
            if core == self.config.core {
                self.drop_session(session);
            } else {
                self.forward.push_back((core, CrossCore::SessionClosed { session }));
            }
        }
    }

    /// One ASAP message (PPID 11) arrived on a local association.
    pub fn handle_message(&mut self, now: Instant, assoc: u32, bytes: &[u8]) {
        let session = SessionId { core: self.config.core, assoc };
        if let Some(request) = resolution(bytes) {
            // The hot path: routed and answered without building a `Message`.
            let shard = shard_of(&request.pool_handle, self.config.cores);
            if shard == self.config.core {
                self.resolve(session, &request, false);
            } else if !self.resolve(session, &request, true) {
                // Not (yet) in the replica: the owner answers, Unknown Pool Handle included.
                self.forward.push_back((shard, CrossCore::Resolve { session, request }));
            }
            return;
        }
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => return self.reject_undecodable(assoc, bytes, error),
        };
        // The masquerade rule (registrations) needs the peer's address; resolutions do not.
        let peer = match self.sessions.get(&assoc) {
            Some(peer) => *peer,
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let Some(pool_handle) = request_pool_handle(&message) else {
            // A message a registrar never receives (a response, an announce, a cookie):
            // RFC 5352 gives it no meaning here, so it is dropped and counted.
            self.stats.dropped += 1;
            return;
        };
        let shard = shard_of(&pool_handle, self.config.cores);
        if shard == self.config.core {
            self.handle_request(now, session, peer, message);
        } else {
            let request = CrossCore::Request { session, peer, message: Box::new(message) };
            self.forward.push_back((shard, request));
        }
    }

    /// A message from another core.
    pub fn handle_cross_core(&mut self, now: Instant, message: CrossCore) {
        match message {
            CrossCore::Request { session, peer, message } => {
                self.handle_request(now, session, peer, *message);
            }
            CrossCore::Resolve { session, request } => {
                self.resolve(session, &request, false);
            }
            CrossCore::Transmit { assoc, bytes } => {
                self.transmit.push_back(Outgoing { assoc, bytes });
            }
            CrossCore::SessionClosed { session } => self.drop_session(session),
            CrossCore::Replica(update) => self.apply_replica(now, update),
        }
    }

    /// Applies another core's change to the read replica. The owner applied the same changes
    /// in the same order, so each one succeeds unless the replica's own limits are reached;
    /// then the pool leaves the replica for good and its resolutions go to the owner.
    fn apply_replica(&mut self, now: Instant, update: ReplicaUpdate) {
        let Some(replica) = self.replica.as_mut() else {
            return;
        };
        self.stats.replica_updates += 1;
        match update {
            ReplicaUpdate::Upsert(registration) => {
                let pool_handle = registration.pool_handle;
                if self.replica_skipped.contains(&pool_handle) {
                    return;
                }
                if let Err(error) = replica.register(now, *registration) {
                    tracing::warn!(pool = %pool_handle, ?error, "pool left the read replica");
                    let ids: Vec<PoolElementId> = replica
                        .pool(&pool_handle)
                        .map(|pool| pool.elements().map(|e| e.id()).collect())
                        .unwrap_or_default();
                    for id in ids {
                        replica.deregister(&pool_handle, id);
                    }
                    self.replica_skipped.insert(pool_handle);
                }
            }
            ReplicaUpdate::Remove { pool_handle, id } => {
                replica.deregister(&pool_handle, id);
            }
        }
    }

    /// Sends a change of this core's shard to every other core's replica (the cores share one
    /// configuration, so they keep replicas exactly when this one does).
    fn replicate(&mut self, update: impl Fn() -> ReplicaUpdate) {
        if self.replica.is_none() {
            return;
        }
        for core in (0..self.config.cores).filter(|&core| core != self.config.core) {
            self.forward.push_back((core, CrossCore::Replica(update())));
        }
    }

    /// Fires due handlespace timers: keep-alives out, unanswered or expired PEs removed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expiries = std::mem::take(&mut self.expiries);
        expiries.clear();
        self.handlespace.expire(now, EXPIRIES_PER_TURN_MAX, &mut expiries);
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
                    self.reply(SessionId::from_u64(registrator), bytes);
                }
                Expiry::KeepAliveTimedOut(removed) => {
                    let (pool, pe) = (removed.pool_handle, removed.id.0);
                    tracing::debug!(%pool, pe, "keep-alive timeout");
                    self.stats.keep_alive_timeouts += 1;
                    self.forget(&removed);
                }
                Expiry::LifetimeExpired(removed) => {
                    self.stats.lifetime_expiries += 1;
                    self.forget(&removed);
                }
            }
        }
        self.expiries = expiries;
    }

    /// The earliest deadline of this core's shard.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.handlespace.next_timeout()
    }

    /// The next message to send on a local association.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.transmit.pop_front()
    }

    /// The next message for another core.
    pub fn poll_forward(&mut self) -> Option<(u16, CrossCore)> {
        self.forward.pop_front()
    }

    /// Hands back the buffer of an [`Outgoing`] once it has been sent, for reuse.
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS_MAX {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Counts a message the caller had to drop (a full queue).
    pub fn count_dropped(&mut self) {
        self.stats.dropped += 1;
    }

    /// A cross-core message from [`poll_forward`](Self::poll_forward) that its queue had no
    /// room for. A request is answered here with Lack of Resources (RFC 5354 §3.12.7), so the
    /// peer hears of the overload instead of timing out; anything else is counted and dropped
    /// (a lost session-end is covered by the keep-alive timeout of the session's PEs).
    pub fn refuse(&mut self, message: CrossCore) {
        self.stats.dropped += 1;
        let (session, message) = match message {
            CrossCore::Request { session, message, .. } => (session, *message),
            CrossCore::Resolve { session, request } => {
                (session, Message::HandleResolution(request))
            }
            CrossCore::Transmit { .. } | CrossCore::SessionClosed { .. } => return,
            CrossCore::Replica(_) => unreachable!("replica updates are never refused"),
        };
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

    fn handle_request(&mut self, now: Instant, session: SessionId, peer: SocketAddr, m: Message) {
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
        if !self.may_modify(session, peer, &pool_handle, id) {
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
        // The ASAP transport (RFC 5354 §3.10) serves ENRP peers; ASAP answers carry none, as
        // RSPLIB's registrar sends them (RSPLIB's PUs parse either form).
        pool_element.asap_transport = None;
        let wire = stored_parameter(pool_handle, pool_element);
        let registration = HsRegistration {
            pool_handle,
            id,
            home: self.config.registrar_id,
            policy,
            transport,
            lifetime,
            registrator: session.to_u64(),
            wire,
        };
        let previous = self.handlespace.element(&pool_handle, id).map(|e| e.registrator());
        let replicated = self.replica.is_some().then(|| HsRegistration {
            lifetime: Duration::INFINITE,
            registrator: 0,
            ..registration.clone()
        });
        match self.handlespace.register(now, registration) {
            Ok(outcome) => {
                self.stats.registrations += 1;
                if let Some(replicated) = replicated {
                    // Queued before the answer: the session's core applies it first.
                    self.replicate(|| ReplicaUpdate::Upsert(Box::new(replicated.clone())));
                }
                tracing::debug!(pool = %pool_handle, pe = id.0, ?outcome, "registered");
                if let (Registered::Updated { .. }, Some(old)) = (outcome, previous) {
                    self.unlink(SessionId::from_u64(old), pool_handle, id);
                }
                self.by_session.entry(session).or_default().insert((pool_handle, id));
                let accept =
                    RegistrationResponse { reject: false, pool_handle, pe_id: id, error: None };
                self.reply(session, accept.emit_to_vec());
            }
            Err(error) => {
                self.stats.registrations_rejected += 1;
                self.reply(session, reject(error.cause_code()).emit_to_vec());
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
    //# Upon receiving the message, the ENRP server SHALL remove the PE from its handlespace.
    fn deregister(&mut self, session: SessionId, peer: SocketAddr, d: Deregistration) {
        let Deregistration { pool_handle, pe_id } = d;
        let mut error = None;
        if self.may_modify(session, peer, &pool_handle, pe_id) {
            if let Some(removed) = self.handlespace.deregister(&pool_handle, pe_id) {
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
    fn resolve(&mut self, session: SessionId, h: &HandleResolution, from_replica: bool) -> bool {
        let handlespace = match (from_replica, self.replica.as_mut()) {
            (false, _) => &mut self.handlespace,
            (true, Some(replica)) => replica,
            (true, None) => return false,
        };
        let items = h.items_wanted.unwrap_or(self.config.resolution_items_default);
        let bytes = match handlespace.resolve(&h.pool_handle, items, &mut self.rng) {
            Ok(resolution) => {
                let policy_type = resolution.pool().policy_type();
                let mut bytes =
                    self.spare.pop().unwrap_or_else(|| Vec::with_capacity(BUFFER_CAPACITY));
                response_prefix(&mut bytes, &h.pool_handle, overall_policy(policy_type));
                append_elements(&mut bytes, resolution.elements().map(|e| (e.wire(), e.home())));
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
        tracing::trace!(pool = %h.pool_handle, items = ?h.items_wanted, from_replica, "handle resolution");
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
        let acked = self.handlespace.handle_keep_alive_ack(
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
        match self.handlespace.report_unreachable(&u.pool_handle, u.pe_id) {
            Some(Unreachable::Removed(removed)) => {
                self.stats.unreachable_removals += 1;
                self.forget(&removed);
            }
            Some(Unreachable::Counted(_)) => {
                //# Upon the reception of an ASAP_ENDPOINT_UNREACHABLE message, an ENRP server
                //# MUST immediately send a point-to-point ASAP_ENDPOINT_KEEP_ALIVE message to
                //# the PE in question (the H flag in the message SHOULD be set to '0'
                let Some(element) = self.handlespace.element(&u.pool_handle, u.pe_id) else {
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

    /// The masquerade rule (RFC 5355 §3.1): only the session that registered a PE may change
    /// it, or a session whose peer address is one of the PE's registered transport addresses
    /// (the same host, e.g. after its association restarted).
    fn may_modify(
        &self,
        session: SessionId,
        peer: SocketAddr,
        pool_handle: &PoolHandle,
        id: PoolElementId,
    ) -> bool {
        let Some(element) = self.handlespace.element(pool_handle, id) else { return true };
        element.registrator() == session.to_u64() || element.addresses().contains(&peer.ip())
    }

    fn drop_session(&mut self, session: SessionId) {
        let Some(elements) = self.by_session.remove(&session) else { return };
        for (pool_handle, id) in elements {
            if self.handlespace.deregister(&pool_handle, id).is_some() {
                tracing::debug!(pool = %pool_handle, pe = id.0, "removed with its session");
                self.stats.session_removals += 1;
                self.replicate(|| ReplicaUpdate::Remove { pool_handle, id });
            }
        }
    }

    /// Bookkeeping after a PE left this core's shard: its session's list and the replicas.
    fn forget(&mut self, removed: &Removed) {
        let (pool_handle, id) = (removed.pool_handle, removed.id);
        self.unlink(SessionId::from_u64(removed.registrator), pool_handle, id);
        self.replicate(|| ReplicaUpdate::Remove { pool_handle, id });
    }

    fn unlink(&mut self, session: SessionId, pool_handle: PoolHandle, id: PoolElementId) {
        if let Some(set) = self.by_session.get_mut(&session) {
            set.remove(&(pool_handle, id));
            if set.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    fn reply(&mut self, session: SessionId, bytes: Vec<u8>) {
        if session.core == self.config.core {
            self.transmit.push_back(Outgoing { assoc: session.assoc, bytes });
        } else {
            let message = CrossCore::Transmit { assoc: session.assoc, bytes };
            self.forward.push_back((session.core, message));
        }
    }

    fn reject_undecodable(&mut self, assoc: u32, bytes: &[u8], error: DecodeError) {
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

/// Bytes of an unrecognized message echoed back in its error cause: enough to identify it,
/// never enough to amplify a flood.
const UNRECOGNIZED_ECHO_MAX: usize = 256;

fn operational_error(code: ErrorCause, info: CauseInfo) -> OperationalError {
    OperationalError { causes: vec![Cause { code, info }] }
}

/// A well-formed Handle Resolution, read through the codec's zero-copy view; anything else
/// (other messages, and malformed resolutions, which then get their error cause from the owned
/// parse) is `None`.
fn resolution(bytes: &[u8]) -> Option<HandleResolution> {
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
fn request_pool_handle(message: &Message) -> Option<PoolHandle> {
    Some(match message {
        Message::Registration(r) => r.pool_handle,
        Message::Deregistration(d) => d.pool_handle,
        Message::HandleResolution(h) => h.pool_handle,
        Message::EndpointKeepAliveAck(a) => a.pool_handle,
        Message::EndpointUnreachable(u) => u.pool_handle,
        _ => return None,
    })
}

/// The Pool Element parameter as responses will carry it, padded to 4 bytes: emitted once, at
/// registration, so that every later resolution copies bytes instead of encoding.
fn stored_parameter(pool_handle: PoolHandle, pool_element: codec::PoolElement) -> Arc<[u8]> {
    // The codec emits parameters only inside messages, so emit the Registration that carries
    // the PE and keep what follows its header and pool handle parameter.
    let message = Registration { pool_handle, pool_element };
    let bytes = message.emit_to_vec();
    let handle_tlv = (4 + pool_handle.as_bytes().len()).next_multiple_of(4);
    Arc::from(&bytes[4 + handle_tlv..])
}

/// Writes into the empty `bytes` a Handle Resolution Response with no PEs yet: header, pool
/// handle and overall policy.
fn response_prefix(
    bytes: &mut Vec<u8>,
    pool_handle: &PoolHandle,
    policy: Option<codec::param::Policy>,
) {
    assert!(bytes.is_empty());
    let response = HandleResolutionResponse {
        accept_updates: false,
        pool_handle: *pool_handle,
        overall_policy: policy,
        pool_elements: Vec::new(),
        error: None,
    };
    // Everything appended later starts on a 4-byte boundary (RFC 5354 §2 padding).
    bytes.resize(response.buffer_len().next_multiple_of(4), 0);
    response.emit(bytes);
}

/// Appends stored Pool Element parameters (emitted at registration) to a response begun by
/// [`response_prefix`] and fixes the message length. The home registrar inside each stored
/// parameter is rewritten, since it changes on takeover.
fn append_elements<'a>(
    bytes: &mut Vec<u8>,
    elements: impl Iterator<Item = (&'a Arc<[u8]>, RegistrarId)>,
) {
    /// Offset of the Home ENRP Server Identifier in a Pool Element parameter (RFC 5354 §3.10):
    /// after the 4-byte TLV header and the 4-byte PE identifier.
    const HOME_OFFSET: usize = 8;
    let mut unpadded_end = None;
    for (wire, home) in elements {
        assert!(wire.len() >= HOME_OFFSET + 4, "stored PE parameters are whole");
        let start = bytes.len();
        bytes.extend_from_slice(wire);
        bytes[start + HOME_OFFSET..start + HOME_OFFSET + 4].copy_from_slice(&home.0.to_be_bytes());
        let tlv_length = usize::from(u16::from_be_bytes([wire[2], wire[3]]));
        unpadded_end = Some(start + tlv_length);
    }
    // RFC 5352 §2.1: the message length excludes the padding of the last parameter. With no
    // element appended, the prefix's own length field is already right.
    if let Some(end) = unpadded_end {
        let length = u16::try_from(end).expect("responses are bounded by items_max");
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
