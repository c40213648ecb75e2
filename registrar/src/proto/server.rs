//! One core's node: routes each input to its job (sessions, the ASAP procedures, the shard and
//! its replica, the other cores), publishes every shard change once, and hands out what is to
//! be sent, in one documented poll order.

use std::collections::VecDeque;
use std::net::SocketAddr;

use codec::asap::Message;
use codec::RegistrarId;
use handlespace::{shard_of, ChecksumAccumulator, Duration, Expiry, Handlespace, Instant};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::asap::{request_pool_handle, resolution};
use super::cross_core::{CrossCore, SessionId};
use super::session::Sessions;
use super::shard::{Shard, ShardChange};

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

/// The sans-IO node of one core: its sessions, its shard, its read replica, and the ASAP
/// procedures over them (in `asap.rs`).
pub struct Server {
    pub(crate) config: ServerConfig,
    pub(crate) shard: Shard,
    pub(crate) sessions: Sessions,
    pub(crate) transmit: VecDeque<Outgoing>,
    forward: VecDeque<(u16, CrossCore)>,
    pub(crate) expiries: Vec<Expiry>,
    /// Message buffers handed back by the caller after sending, reused for answers so that the
    /// resolution path does not allocate once warm.
    pub(crate) spare: Vec<Vec<u8>>,
    pub(crate) rng: SmallRng,
    pub(crate) stats: Stats,
}

/// Spare answer buffers kept per core; beyond this a returned buffer is freed. Enough for a
/// full turn of answers (`EVENTS_PER_TURN_MAX` in the core loop) with room to spare.
const SPARE_BUFFERS_MAX: usize = 2_048;

impl Server {
    /// A server with an empty shard.
    pub fn new(config: ServerConfig) -> Self {
        assert!(config.cores > 0);
        assert!(config.core < config.cores);
        assert_ne!(config.registrar_id.0, 0, "RFC 5353 §2.1: the id is non-zero");
        let replica = config.replicas && config.cores > 1;
        Self {
            shard: Shard::new(config.registrar_id, config.handlespace, replica, false),
            rng: SmallRng::seed_from_u64(config.seed ^ u64::from(config.core)),
            config,
            sessions: Sessions::default(),
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
        let replica = self.shard.replica.as_ref();
        let shard = &self.shard.handlespace;
        Stats {
            shard_elements: u64::from(shard.element_count()),
            replica_elements: replica.map_or(0, |r| u64::from(r.element_count())),
            shard_sum: shard.checksum_accumulator(id),
            replica_sum: replica.map_or(ChecksumAccumulator::EMPTY, |r| r.checksum_accumulator(id)),
            ..self.stats
        }
    }

    /// This core's handlespace shard (read-only, for dumps and tests).
    pub fn handlespace(&self) -> &Handlespace {
        &self.shard.handlespace
    }

    /// A local association came up.
    pub fn handle_up(&mut self, assoc: u32, peer: SocketAddr) {
        self.stats.sessions_opened += 1;
        self.sessions.open(assoc, peer);
    }

    /// A local association closed or failed: every shard drops the PEs registered over it.
    pub fn handle_closed(&mut self, _now: Instant, assoc: u32) {
        if !self.sessions.close(assoc) {
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
        self.publish();
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
        let peer = self.sessions.peer(assoc);
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
        self.publish();
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
            CrossCore::Replica(update) => {
                self.stats.replica_updates += u64::from(self.shard.replica.is_some());
                self.shard.apply_replica(now, update);
            }
        }
        self.publish();
    }

    /// Fires due handlespace timers: keep-alives out, unanswered or expired PEs removed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fire_shard_timers(now);
        self.publish();
    }

    /// The earliest deadline of this core's shard.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.shard.handlespace.next_timeout()
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
        match message {
            CrossCore::Request { session, message, .. } => self.refuse_request(session, *message),
            CrossCore::Resolve { session, request } => {
                self.refuse_request(session, Message::HandleResolution(request));
            }
            CrossCore::Transmit { .. } | CrossCore::SessionClosed { .. } => {}
            CrossCore::Replica(_) => unreachable!("replica updates are never refused"),
        }
    }

    /// Queues an answer for a session on any core. The shard's changes so far are published
    /// first, so that every other core hears of a change before the answer that follows it.
    pub(crate) fn reply(&mut self, session: SessionId, bytes: Vec<u8>) {
        self.publish();
        if session.core == self.config.core {
            self.transmit.push_back(Outgoing { assoc: session.assoc, bytes });
        } else {
            let message = CrossCore::Transmit { assoc: session.assoc, bytes };
            self.forward.push_back((session.core, message));
        }
    }

    /// Hands each recorded shard change to its consumers: the other cores' read replicas (the
    /// cores share one configuration, so they keep replicas exactly when this one does).
    fn publish(&mut self) {
        while let Some(change) = self.shard.poll_change() {
            self.publish_to_replicas(&change);
        }
    }

    fn publish_to_replicas(&mut self, change: &ShardChange) {
        if self.shard.replica.is_none() {
            return;
        }
        for core in (0..self.config.cores).filter(|&core| core != self.config.core) {
            self.forward.push_back((core, CrossCore::Replica(change.to_replica())));
        }
    }
}
