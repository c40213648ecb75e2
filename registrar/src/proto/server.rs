//! One core's node: routes each input to its job (sessions, the ASAP procedures, the shard and
//! its replica, the other cores), publishes every shard change once, and hands out what is to
//! be sent, in one documented poll order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use codec::asap::Message;
use codec::enrp::UpdateAction;
use codec::RegistrarId;
use handlespace::{shard_of, ChecksumAccumulator, Duration, Expiry, Handlespace, Instant};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::asap::{request_pool_handle, resolution};
use super::cross_core::{CrossCore, SessionId};
use super::enrp::{Announcement, Enrp, EnrpAction, EnrpConfig, PeerOp, View};
use super::session::{PeLinks, Sessions};
use super::shard::{Shard, ShardChange};
use super::subscriptions::Subscriptions;

/// The core that owns ENRP (the peer table, start-up, takeovers, downloads): it opens the
/// associations to peers, and every other core hands it what ENRP traffic reaches them.
pub const ENRP_CORE: u16 = 0;

/// ASAP bytes to send on a local association (PPID 11).
#[derive(Debug)]
pub struct Outgoing {
    /// The association on this core.
    pub assoc: u32,
    /// The whole ASAP message.
    pub bytes: Vec<u8>,
}

/// ENRP bytes to send on a local association (PPID 12), shared by every peer they go to.
#[derive(Debug)]
pub struct OutgoingEnrp {
    /// The association on this core.
    pub assoc: u32,
    /// The whole ENRP message.
    pub bytes: Arc<[u8]>,
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
    /// instead of forwarding them to the owning core. Writes always go to the owner. ENRP
    /// needs the whole handlespace on its core, so with ENRP on several cores it is forced on.
    pub replicas: bool,
    /// ENRP (RFC 5353) with peers; `None`: a registrar alone, which drops PPID 12. Every core
    /// gets the same value; only [`ENRP_CORE`] runs the ENRP server.
    pub enrp: Option<EnrpConfig>,
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
    /// PE associations a drain shut down so that their PEs register at a peer.
    pub handed_off: u64,
    /// Messages answered with an ASAP Error.
    pub decode_errors: u64,
    /// Messages dropped: a full queue, a send the transport refused (the association is
    /// gone), a payload protocol that is not ours, or an ASAP message a registrar never takes.
    pub dropped: u64,
    /// Datagrams or messages the transport dropped for their length before anything read
    /// them: SCTP packets longer than the userspace backend's receive buffers (a peer whose
    /// path MTU exceeds `sctp_mtu`), kernel SCTP messages longer than the message maximum.
    pub too_long: u64,
    /// Associations (sessions) that came up on this core.
    pub sessions_opened: u64,
    /// Handle resolutions answered from this core's read replica (also in `resolutions`).
    pub replica_resolutions: u64,
    /// Replica updates applied from other cores.
    pub replica_updates: u64,
    /// Gauge: PEs in this core's shard (summed over cores: the registrar's PEs).
    pub shard_elements: u64,
    /// Gauge: pools in this core's shard (summed over cores: the registrar's pools).
    pub shard_pools: u64,
    /// Gauge: PEs in this core's read replica of the other shards.
    pub replica_elements: u64,
    /// Gauge: the RFC 5353 PE checksum sum of this core's shard (merged over cores: the
    /// registrar's own checksum).
    pub shard_sum: ChecksumAccumulator,
    /// Gauge: the same over this core's read replica; once the cores are quiet it equals the
    /// other cores' `shard_sum` merged, the check that no replica update was lost.
    pub replica_sum: ChecksumAccumulator,
    /// PEs of peers applied to this core's shard (Handle Updates, downloads).
    pub peer_upserts: u64,
    /// PEs of peers removed from this core's shard (Handle Updates, resync sweeps).
    pub peer_removals: u64,
    /// PE changes of peers this core's shard could not hold (its limits).
    pub peer_rejected: u64,
    /// Claims of a registrar just back from a takeover (paused, partitioned) that would have
    /// moved a PE homed elsewhere to it, not applied (`PeerOp::Upsert::may_rehome`).
    pub peer_claims_refused: u64,
    /// Keep-alives for PEs with no association here (taken over from a failed peer), not
    /// sent: such a PE stays if it re-registers before its keep-alive timeout.
    pub keep_alives_unroutable: u64,
    /// The ENRP core's counters (zero on the others).
    pub enrp: super::enrp::EnrpStats,
    /// Gauge on the ENRP core: peers in the peer table.
    pub enrp_peers: u64,
    /// Gauge on the ENRP core: 1 once start-up (mentor download) is complete.
    pub enrp_ready: u64,
    /// Gauge: live pool update subscriptions (S bit) of this core's associations.
    pub subscriptions: u64,
    /// Handle Resolution Responses pushed to subscribers because their pool changed.
    pub subscription_pushes: u64,
    /// Subscriptions refused (the per-association bound, or a pool this core cannot follow).
    pub subscriptions_refused: u64,
}

/// The sans-IO node of one core: its sessions, its shard, its read replica, and the ASAP
/// procedures over them (in `asap.rs`).
pub struct Server {
    pub(crate) config: ServerConfig,
    pub(crate) shard: Shard,
    pub(crate) sessions: Sessions,
    /// Associations this core opened to PEs for keep-alives after a takeover.
    pub(crate) pe_links: PeLinks,
    /// Live pool update subscriptions of this core's associations.
    pub(crate) subscriptions: Subscriptions,
    pub(crate) transmit: VecDeque<Outgoing>,
    forward: VecDeque<(u16, CrossCore)>,
    pub(crate) expiries: Vec<Expiry>,
    /// Message buffers handed back by the caller after sending, reused for answers so that the
    /// resolution path does not allocate once warm.
    pub(crate) spare: Vec<Vec<u8>>,
    pub(crate) rng: SmallRng,
    pub(crate) stats: Stats,
    /// The ENRP server, on [`ENRP_CORE`] when ENRP is on.
    enrp: Option<Enrp>,
    enrp_transmit: VecDeque<OutgoingEnrp>,
    /// ENRP Presences for the multicast channel.
    multicast: VecDeque<Arc<[u8]>>,
    connects: VecDeque<SocketAddr>,
    /// The latest `now` an input carried, for inputs that carry none (`handle_up`).
    last_now: Instant,
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
        let replica = (config.replicas || config.enrp.is_some()) && config.cores > 1;
        // Handlespace time 0 is the registrar's start (the core loop's epoch).
        let enrp = config
            .enrp
            .clone()
            .filter(|_| config.core == ENRP_CORE)
            .map(|c| Enrp::new(Instant::from_micros(0), config.registrar_id, c));
        let mut server = Self {
            // Every core announces its own PEs' changes when ENRP runs (to the ENRP core).
            shard: Shard::new(
                config.registrar_id,
                config.handlespace,
                replica,
                config.enrp.is_some(),
            ),
            enrp,
            enrp_transmit: VecDeque::new(),
            multicast: VecDeque::new(),
            connects: VecDeque::new(),
            last_now: Instant::from_micros(0),
            rng: SmallRng::seed_from_u64(config.seed ^ u64::from(config.core)),
            config,
            sessions: Sessions::default(),
            pe_links: PeLinks::default(),
            subscriptions: Subscriptions::default(),
            transmit: VecDeque::new(),
            forward: VecDeque::new(),
            expiries: Vec::new(),
            spare: Vec::new(),
            stats: Stats::default(),
        };
        // ENRP's first requests (connections to the configured peers) are due at once.
        server.drain_enrp(Instant::from_micros(0));
        server
    }

    /// This core's counters and gauges.
    pub fn stats(&self) -> Stats {
        let id = self.config.registrar_id;
        let replica = self.shard.replica.as_ref();
        let shard = &self.shard.handlespace;
        Stats {
            shard_elements: u64::from(shard.element_count()),
            shard_pools: u64::from(shard.pool_count()),
            replica_elements: replica.map_or(0, |r| u64::from(r.element_count())),
            shard_sum: shard.checksum_accumulator(id),
            replica_sum: replica.map_or(ChecksumAccumulator::EMPTY, |r| r.checksum_accumulator(id)),
            enrp: self.enrp.as_ref().map(Enrp::stats).unwrap_or_default(),
            enrp_peers: self.enrp.as_ref().map_or(0, |e| e.peers().len() as u64),
            enrp_ready: u64::from(self.enrp.as_ref().is_some_and(Enrp::is_ready)),
            subscriptions: self.subscriptions.len() as u64,
            ..self.stats
        }
    }

    /// This core's handlespace shard (read-only, for dumps and tests).
    pub fn handlespace(&self) -> &Handlespace {
        &self.shard.handlespace
    }

    /// The ENRP server, on the ENRP core (read-only, for dumps and tests).
    pub fn enrp(&self) -> Option<&Enrp> {
        self.enrp.as_ref()
    }

    /// A local association came up.
    pub fn handle_up(&mut self, assoc: u32, peer: SocketAddr) {
        self.stats.sessions_opened += 1;
        self.sessions.open(assoc, peer);
        for bytes in self.pe_links.up(assoc) {
            self.transmit.push_back(Outgoing { assoc, bytes });
        }
        let session = SessionId { core: self.config.core, assoc };
        let view = View::new(&self.shard.handlespace, self.shard.replica.as_ref());
        if let Some(enrp) = self.enrp.as_mut() {
            enrp.handle_up(self.last_now, session, &view);
            self.drain_enrp(self.last_now);
        }
    }

    /// An association the caller opened for [`poll_connect`](Self::poll_connect) (its `Up` or
    /// its end follows), or `None` if it could not be started.
    pub fn handle_connecting(&mut self, _now: Instant, address: SocketAddr, assoc: Option<u32>) {
        let Some(enrp) = self.enrp.as_mut() else { return };
        match assoc {
            Some(assoc) => {
                let session = SessionId { core: self.config.core, assoc };
                self.sessions.mark_enrp(assoc);
                enrp.handle_connecting(address, session);
            }
            None => tracing::debug!(%address, "could not start an association to a peer"),
        }
    }

    /// One ENRP message (PPID 12) arrived on a local association.
    pub fn handle_enrp_message(&mut self, now: Instant, assoc: u32, bytes: &[u8]) {
        self.last_now = self.last_now.max(now);
        let session = SessionId { core: self.config.core, assoc };
        if self.config.enrp.is_none() {
            // A registrar alone does not speak ENRP.
            self.stats.dropped += 1;
            return;
        }
        self.sessions.mark_enrp(assoc);
        if self.enrp.is_none() {
            let message = CrossCore::EnrpMessage { session, bytes: bytes.to_vec() };
            self.forward.push_back((ENRP_CORE, message));
            return;
        }
        self.enrp_input(now, session, bytes);
    }

    fn enrp_input(&mut self, now: Instant, session: SessionId, bytes: &[u8]) {
        let view = View::new(&self.shard.handlespace, self.shard.replica.as_ref());
        let enrp = self.enrp.as_mut().expect("only the ENRP core takes ENRP input");
        enrp.handle_message(now, session, bytes, &view);
        self.drain_enrp(now);
    }

    /// A local association closed or failed: every shard drops the PEs registered over it.
    pub fn handle_closed(&mut self, now: Instant, assoc: u32) {
        if self.pe_links.closed(assoc) {
            tracing::debug!(assoc, "association to a PE ended unanswered: keep-alives go again");
        }
        self.unsubscribe(assoc);
        let (known, enrp) = self.sessions.close(assoc);
        let session = SessionId { core: self.config.core, assoc };
        if enrp {
            self.enrp_closed(now, session);
        }
        // A drain closed it so that its PEs register at a peer: they stay meanwhile.
        let handed_off = self.sessions.take_handed_off(assoc);
        if !known || handed_off {
            return;
        }
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

    /// A drain hands this core's PEs to the ENRP peers: the local associations that carried
    /// a Registration (and no ENRP), for the caller to shut down. Their PEs are not removed
    /// when they end: each PE hunts, registers at a peer (this registrar refuses it while it
    /// drains), and the peer's Handle Update re-homes it here too; one that does not come
    /// back anywhere is removed when its keep-alives fail, as any PE that went silent.
    pub fn hand_off(&mut self) -> Vec<u32> {
        let assocs = self.sessions.hand_off();
        self.stats.handed_off += assocs.len() as u64;
        assocs
    }

    /// One ASAP message (PPID 11) arrived on a local association.
    pub fn handle_message(&mut self, now: Instant, assoc: u32, bytes: &[u8]) {
        self.last_now = self.last_now.max(now);
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
        if !self.pe_links.is_empty() {
            // A PE answering on an association we opened to it (a keep-alive's ack).
            self.pe_links.heard(assoc);
        }
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => return self.reject_undecodable(assoc, bytes, error),
        };
        // The masquerade rule (registrations) needs the peer's address; resolutions do not.
        let peer = self.sessions.peer(assoc);
        if matches!(message, Message::Registration(_)) {
            self.sessions.mark_registering(assoc);
        }
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
        self.last_now = self.last_now.max(now);
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
            CrossCore::EnrpMessage { session, bytes } => self.enrp_input(now, session, &bytes),
            CrossCore::EnrpClosed { session } => self.enrp_closed(now, session),
            CrossCore::TransmitEnrp { assoc, bytes } => {
                self.enrp_transmit.push_back(OutgoingEnrp { assoc, bytes });
            }
            CrossCore::Peer(op) => self.apply_peer_op(now, op),
            CrossCore::Announce(announcement) => {
                if let Some(enrp) = self.enrp.as_mut() {
                    enrp.announce(&announcement);
                    self.drain_enrp(now);
                }
            }
        }
        self.publish();
    }

    /// Fires due timers: the shard's (keep-alives out, unanswered or expired PEs removed) and,
    /// on the ENRP core, ENRP's.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        if self.shard.handlespace.next_timeout().is_some_and(|t| t <= now) {
            self.fire_shard_timers(now);
            let mut ready = Vec::new();
            self.pe_links.drain_ready(&mut ready);
            for (assoc, bytes) in ready {
                self.transmit.push_back(Outgoing { assoc, bytes });
            }
        }
        let view = View::new(&self.shard.handlespace, self.shard.replica.as_ref());
        if let Some(enrp) = self.enrp.as_mut() {
            if enrp.poll_timeout().is_some_and(|t| t <= now) {
                enrp.handle_timeout(now, &view);
            }
        }
        self.drain_enrp(now);
        self.publish();
    }

    /// The earliest deadline of this core: its shard's and, on the ENRP core, ENRP's.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let shard = self.shard.handlespace.next_timeout();
        let enrp = self.enrp.as_ref().and_then(Enrp::poll_timeout);
        [shard, enrp].into_iter().flatten().min()
    }

    /// The next peer address the caller is to open an association to (ENRP), then report with
    /// [`handle_connecting`](Self::handle_connecting).
    pub fn poll_connect(&mut self) -> Option<SocketAddr> {
        self.connects.pop_front()
    }

    /// The local SCTP port associations to peers leave from: the ENRP port of our ENRP
    /// address (RSPLIB matches a peer's Server Information against the association's ports),
    /// with one worker or on the kernel's SCTP. With several workers on our own SCTP, `None`
    /// (the transport's own port): two registrars that open ENRP-port-to-ENRP-port
    /// associations to each other at once collide on one 4-tuple (RFC 9260 §5.2.1), and when
    /// the two INITs reach different cores no core sees the collision, so one side is left with
    /// an association the other replaced (README, "Not implemented": SCTP restart detection
    /// across cores). The kernel keeps one association table for all its sockets, so there
    /// the collision meets the association wherever the INIT arrives.
    pub fn enrp_local_port(&self) -> Option<u16> {
        let enrp = self.config.enrp.as_ref()?;
        let port = enrp.own_address.port();
        (self.config.cores == 1 || enrp.one_association_table).then_some(port)
    }

    /// The next PE ASAP endpoint the caller is to open an association to (keep-alives to PEs
    /// taken over from a failed peer), then report with
    /// [`handle_connecting_pe`](Self::handle_connecting_pe).
    pub fn poll_connect_pe(&mut self) -> Option<SocketAddr> {
        self.pe_links.poll_connect()
    }

    /// The association the caller started for [`poll_connect_pe`](Self::poll_connect_pe),
    /// or `None` if it could not be started.
    pub fn handle_connecting_pe(&mut self, address: SocketAddr, assoc: Option<u32>) {
        let dropped = self.pe_links.connecting(address, assoc);
        self.stats.keep_alives_unroutable += dropped as u64;
    }

    /// A datagram from the ENRP multicast channel (ENRP core only; elsewhere ignored).
    pub fn handle_enrp_multicast(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        self.last_now = self.last_now.max(now);
        if let Some(enrp) = self.enrp.as_mut() {
            enrp.handle_multicast(now, source, bytes);
            self.drain_enrp(now);
        }
    }

    /// The next ENRP Presence to send to the multicast channel.
    pub fn poll_multicast(&mut self) -> Option<Arc<[u8]>> {
        self.multicast.pop_front()
    }

    /// The next ENRP message to send on a local association.
    pub fn poll_transmit_enrp(&mut self) -> Option<OutgoingEnrp> {
        self.enrp_transmit.pop_front()
    }

    /// The next message to send on a local association. Pushes to subscribers of the pools
    /// that changed since the last call are made here, one per pool and subscriber.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        if !self.shard.touched.is_empty() {
            self.push_pool_updates();
        }
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

    /// Counts `count` more inputs the transport dropped for their length (`Stats::too_long`).
    pub fn count_too_long(&mut self, count: u64) {
        self.stats.too_long += count;
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
            CrossCore::Transmit { .. }
            | CrossCore::SessionClosed { .. }
            | CrossCore::TransmitEnrp { .. } => {}
            CrossCore::Replica(_)
            | CrossCore::EnrpMessage { .. }
            | CrossCore::EnrpClosed { .. }
            | CrossCore::Peer(_)
            | CrossCore::Announce(_) => unreachable!("messages that must arrive are never refused"),
        }
    }

    /// Queues an answer for a session on any core. The shard's changes so far are published
    /// first, so that every other core hears of a change before the answer that follows it.
    pub(crate) fn reply(&mut self, session: SessionId, bytes: Vec<u8>) {
        self.publish();
        if session.core >= self.config.cores {
            // A PE learned from a peer (`enrp::NO_SESSION`): no association here reaches it.
            self.stats.keep_alives_unroutable += 1;
            return;
        }
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
            self.publish_to_peers(&change);
        }
    }

    /// A change of one of our own PEs goes to the ENRP core, which announces it to the peers
    /// as one Handle Update (§3.3).
    fn publish_to_peers(&mut self, change: &ShardChange) {
        if self.config.enrp.is_none() {
            return;
        }
        let own = self.config.registrar_id;
        let (action, pool_handle, wire) = match change {
            ShardChange::Upserted(r) if r.home == own => {
                (UpdateAction::ADD_PE, r.pool_handle, &r.wire)
            }
            ShardChange::Removed { home, pool_handle, wire: Some(wire), .. } if *home == own => {
                (UpdateAction::DEL_PE, *pool_handle, wire)
            }
            _ => return,
        };
        let announcement = Announcement { action, pool_handle, wire: wire.clone() };
        if let Some(enrp) = self.enrp.as_mut() {
            enrp.announce(&announcement);
            self.drain_enrp(self.last_now);
        } else {
            self.forward.push_back((ENRP_CORE, CrossCore::Announce(announcement)));
        }
    }

    fn enrp_closed(&mut self, now: Instant, session: SessionId) {
        if let Some(enrp) = self.enrp.as_mut() {
            enrp.handle_closed(now, session);
            self.drain_enrp(now);
        } else if self.config.enrp.is_some() {
            self.forward.push_back((ENRP_CORE, CrossCore::EnrpClosed { session }));
        }
    }

    /// Carries out what the ENRP server asked for.
    fn drain_enrp(&mut self, now: Instant) {
        loop {
            let Some(action) = self.enrp.as_mut().and_then(Enrp::poll_action) else { return };
            match action {
                EnrpAction::Send { session, bytes } if session.core == self.config.core => {
                    self.enrp_transmit.push_back(OutgoingEnrp { assoc: session.assoc, bytes });
                }
                EnrpAction::Send { session, bytes } => {
                    let message = CrossCore::TransmitEnrp { assoc: session.assoc, bytes };
                    self.forward.push_back((session.core, message));
                }
                EnrpAction::Connect(address) => self.connects.push_back(address),
                EnrpAction::Multicast(bytes) => self.multicast.push_back(bytes),
                EnrpAction::Apply(op) => self.route_peer_op(now, op),
            }
        }
    }

    /// Sends a change from ENRP to the shard of its pool, or to every shard.
    fn route_peer_op(&mut self, now: Instant, op: PeerOp) {
        let shard = match &op {
            PeerOp::Upsert { registration, .. } => {
                shard_of(&registration.pool_handle, self.config.cores)
            }
            PeerOp::Remove { pool_handle, .. } => shard_of(pool_handle, self.config.cores),
            PeerOp::TakeOver { source, target } => {
                for core in (0..self.config.cores).filter(|&c| c != self.config.core) {
                    let op = PeerOp::TakeOver { source: *source, target: *target };
                    self.forward.push_back((core, CrossCore::Peer(op)));
                }
                self.config.core
            }
        };
        if shard == self.config.core {
            self.apply_peer_op(now, op);
        } else {
            self.forward.push_back((shard, CrossCore::Peer(op)));
        }
    }

    /// Applies a change from ENRP to this core's shard; the shard publishes it to the replicas
    /// like any other change.
    fn apply_peer_op(&mut self, now: Instant, op: PeerOp) {
        match op {
            PeerOp::Upsert { registration, may_rehome } => {
                let (pool_handle, id) = (registration.pool_handle, registration.id);
                let existing = self.shard.handlespace.element(&pool_handle, id);
                if !may_rehome && existing.is_some_and(|e| e.home() != registration.home) {
                    // A stale claim of a registrar back from a takeover: the PE has a home.
                    tracing::info!(pool = %pool_handle, pe = id.0, claimed = registration.home.0,
                        "stale claim of a registrar taken over: refused");
                    self.stats.peer_claims_refused += 1;
                    return;
                }
                let previous = existing.map(|e| e.registrator());
                match self.shard.register(now, *registration) {
                    Ok(outcome) => {
                        tracing::debug!(pool = %pool_handle, pe = id.0, ?outcome, "peer PE applied");
                        self.stats.peer_upserts += 1;
                        // Re-homed at a peer: our association no longer speaks for it.
                        if let Some(old) = previous {
                            self.sessions.unlink(SessionId::from_u64(old), pool_handle, id);
                        }
                    }
                    Err(error) => {
                        self.stats.peer_rejected += 1;
                        tracing::warn!(pool = %pool_handle, pe = id.0, ?error, "peer PE refused");
                    }
                }
            }
            PeerOp::Remove { pool_handle, id, home } => {
                let element = self.shard.handlespace.element(&pool_handle, id);
                if element.is_none_or(|e| e.home() != home) {
                    return;
                }
                if let Some(removed) = self.shard.deregister(&pool_handle, id) {
                    tracing::debug!(pool = %pool_handle, pe = id.0, "peer PE removed");
                    self.stats.peer_removals += 1;
                    let session = SessionId::from_u64(removed.registrator);
                    self.sessions.unlink(session, pool_handle, id);
                }
            }
            PeerOp::TakeOver { source, target } => {
                let moved = self.shard.take_over(now, source, target);
                tracing::info!(source = source.0, target = target.0, moved, "PEs re-homed");
            }
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
