//! The ENRP server of a registrar (RFC 5353 §3), sans-IO: ENRP messages, association events,
//! shard changes and time in; ENRP messages, connection requests and changes for the shards
//! out. One core owns it (the ENRP core, core 0): the peer table, the start-up state, the
//! takeover arbitrations and the download sessions live here and nowhere else, so no lock and
//! no agreement between cores is needed for any of them (ARCHITECTURE.md, "ENRP").
//!
//! ```text
//!  handle_message (PPID 12) ─┐                       ┌─▶ poll_action: Send (PPID 12 bytes)
//!  handle_up / handle_closed ┤                       ├─▶            Connect (a peer address)
//!  announce (Handle Update)  ┼─▶ Enrp (peers, init, ─┤
//!  handle_timeout            ┘    takeover, sync)    └─▶            Apply (to the pool's shard)
//! ```
//!
//! The handlespace is read through a [`View`] of the ENRP core's shard and its read replica of
//! the other cores' shards (together, the whole handlespace); it is written only by the shards,
//! through [`PeerOp`]s routed to the pool's core.

mod peers;
mod sync;
mod takeover;

// Ordered maps throughout: what ENRP sends follows from its inputs alone (no per-process hash
// seed), so a simulation seed replays exactly; the tables are small (peers ≤ PEERS_MAX).
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use codec::enrp::{
    Error as EnrpError, HandleTableRequest, HandleUpdateRef, ListRequest, ListResponse, Message,
    Presence, Servers, UpdateAction,
};
use codec::error::{DecodeError, ErrorCause};
use codec::param::{CauseInfo, PeChecksum, ServerInformation};
use codec::{EncodedPoolElement, PoolElementId, PoolHandle, RegistrarId};
use handlespace::{Duration, Instant, Registration as HsRegistration};

pub use peers::{Peer, Peers, PEERS_MAX};
pub use sync::View;

use self::sync::{Download, Resync};
use self::takeover::Takeover;
use super::SessionId;

/// ENRP settings (RFC 5353 §4.2 thresholds and our own bounds).
#[derive(Clone, Debug)]
pub struct EnrpConfig {
    /// Our ENRP transport as peers should reach it, for our Server Information.
    pub own_address: SocketAddr,
    /// Peers given by configuration (§3.2.2.1): the first that answers is the mentor, the
    /// others are backups.
    pub peers: Vec<SocketAddr>,
    /// PEER-HEARTBEAT-CYCLE (default 30 s).
    pub heartbeat_cycle: Duration,
    /// MAX-TIME-LAST-HEARD (default 61 s).
    pub max_time_last_heard: Duration,
    /// MAX-TIME-NO-RESPONSE (default 5 s).
    pub max_time_no_response: Duration,
    /// PEs per Handle Table Response page.
    pub table_page_elements_max: usize,
    /// How long a starting registrar looks for a mentor that is ready before it serves alone
    /// (so that registrars started together, each the other's mentor, do not wait forever).
    pub mentor_hunt_timeout: Duration,
    /// Also announce our Presence on the ENRP multicast channel every PEER-HEARTBEAT-CYCLE
    /// (and at start), and connect to registrars heard there (§3.1 "group-casts").
    pub multicast: bool,
    /// The transport's associations are in one table for every core (the kernel's SCTP: an
    /// INIT is matched to an existing association before any socket is picked), so two
    /// registrars' crossing INITs collide where the RFC resolves them even with several
    /// cores, and associations to peers may leave from the ENRP port on any number of cores.
    pub one_association_table: bool,
}

impl EnrpConfig {
    /// RFC 5353 §4.2 defaults, for `own_address` and the configured `peers`.
    pub fn new(own_address: SocketAddr, peers: Vec<SocketAddr>) -> Self {
        Self {
            own_address,
            peers,
            heartbeat_cycle: Duration::from_micros(30_000_000),
            max_time_last_heard: Duration::from_micros(61_000_000),
            max_time_no_response: Duration::from_micros(5_000_000),
            table_page_elements_max: TABLE_PAGE_ELEMENTS_DEFAULT,
            mentor_hunt_timeout: Duration::from_micros(15_000_000),
            multicast: false,
            one_association_table: false,
        }
    }
}

/// PEs per Handle Table Response by default: with the codec's largest PE parameter (8 IPv6
/// addresses, about 200 bytes) a page stays below 64 KiB, the largest message our SCTP
/// reassembles.
pub const TABLE_PAGE_ELEMENTS_DEFAULT: usize = 256;
const _: () = assert!(TABLE_PAGE_ELEMENTS_DEFAULT <= codec::POOL_ELEMENTS_PER_MESSAGE_MAX);

/// Registrator value of PEs learned from peers: no local association registered them.
pub const NO_SESSION: u64 = u64::MAX;

/// A change to the handlespace that ENRP asks of the shard owning the pool.
#[derive(Debug)]
pub enum PeerOp {
    /// Add or replace a PE homed at a peer (Handle Update ADD_PE, table download).
    Upsert {
        /// The PE as the peer describes it.
        registration: Box<HsRegistration>,
        /// Whether the claim may move a PE the shard holds with another home. False for a
        /// registrar back from a takeover (paused, or cut off from its peers), during its
        /// rejoin window: what it says of PEs that have since re-registered elsewhere is
        /// stale (found by the fault lab: registrar-sigstop, partition-heal).
        may_rehome: bool,
    },
    /// Remove a PE if it is still homed at `home` (Handle Update DEL_PE, resync sweep).
    Remove {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        id: PoolElementId,
        /// The home the remover speaks for; a PE since re-homed elsewhere stays.
        home: RegistrarId,
    },
    /// Every PE homed at `source` moves to `target` (§3.5.2); for every shard.
    TakeOver {
        /// The registrar taken over.
        source: RegistrarId,
        /// Its successor.
        target: RegistrarId,
    },
}

/// What ENRP asks of the rest of the registrar.
#[derive(Debug)]
pub enum EnrpAction {
    /// ENRP bytes (PPID 12) for an association.
    Send {
        /// The association.
        session: SessionId,
        /// The message.
        bytes: Arc<[u8]>,
    },
    /// Open an association to a peer's ENRP transport; answer with
    /// [`Enrp::handle_connecting`] (or [`Enrp::handle_closed`] if it cannot be opened).
    Connect(SocketAddr),
    /// A change for the shard that owns the pool (or for every shard).
    Apply(PeerOp),
    /// An ENRP Presence for the multicast channel (only with [`EnrpConfig::multicast`]).
    Multicast(Arc<[u8]>),
}

/// A change of one of this registrar's own PEs, for the peers (§3.3): what a Handle Update
/// carries, with the PE as the shard stored it.
#[derive(Clone, Debug)]
pub struct Announcement {
    /// ADD_PE (registration or re-registration) or DEL_PE (any removal).
    pub action: UpdateAction,
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE parameter as stored at registration.
    pub wire: handlespace::Wire,
}

/// Counters of the ENRP core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnrpStats {
    /// ENRP messages received.
    pub received: u64,
    /// ENRP messages sent.
    pub sent: u64,
    /// Handle Updates sent (counted once per peer).
    pub updates_sent: u64,
    /// Handle Updates applied from peers.
    pub updates_received: u64,
    /// Peers declared dead (§3.4.3).
    pub peers_failed: u64,
    /// Takeovers won (§3.5.2).
    pub takeovers_won: u64,
    /// Init Takeovers not acknowledged because we still heard their target.
    pub takeover_acks_withheld: u64,
    /// Re-synchronisations started after a checksum mismatch (§3.6.3).
    pub resyncs: u64,
    /// Messages answered with an ENRP Error, or dropped as undecodable.
    pub decode_errors: u64,
    /// Presences heard on the multicast channel (ours included).
    pub multicast_heard: u64,
    /// Registrar addresses first learned from a multicast Presence.
    pub multicast_learned: u64,
}

/// Start-up (§3.2): finding a mentor, its peer list, then its handlespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Init {
    /// Waiting for a configured peer's association; serve alone after `until`.
    Hunting { until: Instant },
    /// List Request sent to the mentor.
    Listing { mentor: RegistrarId, deadline: Instant },
    /// Handle Table Request (W = 0) sent to the mentor.
    Downloading { mentor: RegistrarId, deadline: Instant },
    /// Serving.
    Ready,
}

/// A configured or learned peer address and our association to it.
#[derive(Clone, Debug)]
struct Link {
    address: SocketAddr,
    session: Option<SessionId>,
    connecting: bool,
    retry_at: Instant,
}

/// The ENRP server of one registrar.
pub struct Enrp {
    own: RegistrarId,
    config: EnrpConfig,
    peers: Peers,
    links: Vec<Link>,
    /// ENRP associations (any core) and the peer speaking on each, once known.
    sessions: BTreeMap<SessionId, Option<RegistrarId>>,
    init: Init,
    /// When start-up stops looking for a ready mentor and serves alone, fixed at start so
    /// that mentors refusing each other (all starting at once) cannot postpone it forever.
    hunt_until: Instant,
    heartbeat_at: Instant,
    takeovers: BTreeMap<RegistrarId, Takeover>,
    downloads: BTreeMap<SessionId, Download>,
    resyncs: BTreeMap<RegistrarId, Resync>,
    /// PEs a re-synchronisation left marked, removed when due unless claimed meanwhile (in
    /// due order: every entry waits the same MAX-TIME-LAST-HEARD).
    sweeps: VecDeque<sync::Sweep>,
    actions: VecDeque<EnrpAction>,
    stats: EnrpStats,
    /// The registrars this one took over, oldest first (the last `WON_LOG_MAX`).
    won: VecDeque<RegistrarId>,
    /// The registrars this one started an arbitration for (the last `WON_LOG_MAX`).
    started: VecDeque<RegistrarId>,
    /// Peers declared dead while this registrar heard fewer than half of the registrars it
    /// knows: not taken over (it may be the one cut off), until a majority is heard again.
    lost: BTreeSet<RegistrarId>,
    /// Registrars taken over (by us or a peer), with the end of their rejoin window once
    /// heard again (`None` until then): until it ends, their claims move no PE that has a
    /// home here ([`PeerOp::Upsert`]'s `may_rehome`).
    displaced: BTreeMap<RegistrarId, Option<Instant>>,
}

/// Takeovers remembered for [`Enrp::takeovers_won`].
const WON_LOG_MAX: usize = 64;

impl Enrp {
    /// The ENRP server of registrar `own`, starting at `now` (§3.2).
    pub fn new(now: Instant, own: RegistrarId, config: EnrpConfig) -> Self {
        assert_ne!(own.0, 0, "RFC 5353 §3.2.1: a non-zero server id");
        assert!(config.table_page_elements_max > 0);
        assert!(config.table_page_elements_max <= codec::POOL_ELEMENTS_PER_MESSAGE_MAX);
        let links: Vec<Link> = config
            .peers
            .iter()
            .map(|&address| Link { address, session: None, connecting: false, retry_at: now })
            .collect();
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.1
        //# If no existing peer server is specified, the initiating server MUST assume that it
        //# is alone in the operational scope, and MUST skip the procedures in Section 3.2.2.2
        //# and Section 3.2.3 and MUST consider its initialization completed
        let init = if links.is_empty() {
            Init::Ready
        } else {
            Init::Hunting { until: now + config.mentor_hunt_timeout }
        };
        // With multicast, the first Presence goes out at once, so that peers find us without
        // waiting a whole cycle.
        let first_heartbeat = if config.multicast { now } else { now + config.heartbeat_cycle };
        let mut enrp = Self {
            own,
            heartbeat_at: first_heartbeat,
            hunt_until: now + config.mentor_hunt_timeout,
            config,
            peers: Peers::default(),
            links,
            sessions: BTreeMap::new(),
            init,
            takeovers: BTreeMap::new(),
            downloads: BTreeMap::new(),
            resyncs: BTreeMap::new(),
            sweeps: VecDeque::new(),
            actions: VecDeque::new(),
            stats: EnrpStats::default(),
            won: VecDeque::new(),
            started: VecDeque::new(),
            lost: BTreeSet::new(),
            displaced: BTreeMap::new(),
        };
        enrp.connect_links(now);
        enrp
    }

    /// Whether start-up is complete (the mentor's handlespace is in, or we are alone).
    pub fn is_ready(&self) -> bool {
        self.init == Init::Ready
    }

    /// Counters.
    pub fn stats(&self) -> EnrpStats {
        self.stats
    }

    /// The registrars this one took over (the latest 64), oldest first.
    pub fn takeovers_won(&self) -> impl Iterator<Item = RegistrarId> + '_ {
        self.won.iter().copied()
    }

    /// The registrars this one started a takeover arbitration for (the latest 64).
    pub fn takeovers_started(&self) -> impl Iterator<Item = RegistrarId> + '_ {
        self.started.iter().copied()
    }

    /// The peer list (read-only, for dumps and tests).
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The driver started an association for a [`EnrpAction::Connect`].
    pub fn handle_connecting(&mut self, address: SocketAddr, session: SessionId) {
        if let Some(link) = self.links.iter_mut().find(|l| l.address == address) {
            link.session = Some(session);
            link.connecting = true;
        }
        self.sessions.insert(session, None);
    }

    /// An association came up. For one we opened, the peer is asked who it is (§3.4.1: a
    /// Presence with the reply-required flag); an unknown incoming one is ENRP once it speaks.
    pub fn handle_up(&mut self, _now: Instant, session: SessionId, view: &View<'_>) {
        let Some(link) = self.links.iter_mut().find(|l| l.session == Some(session)) else {
            return;
        };
        link.connecting = false;
        // The mentor is whoever answers first (`on_presence`); its id comes with the reply.
        let presence = self.presence(true, RegistrarId(0), view);
        self.send(session, presence);
    }

    /// An association closed or failed (or could not be opened).
    pub fn handle_closed(&mut self, now: Instant, session: SessionId) {
        if self.sessions.remove(&session).is_none() {
            return;
        }
        self.downloads.remove(&session);
        for link in self.links.iter_mut().filter(|l| l.session == Some(session)) {
            link.session = None;
            link.connecting = false;
            link.retry_at = now + self.config.max_time_no_response;
        }
        for (_, peer) in self.peers.iter_mut().filter(|(_, p)| p.session == Some(session)) {
            // Not dead yet: §3.4.3 decides that from silence; a probe without an association
            // fails at once.
            peer.session = None;
        }
    }

    /// One ENRP message (PPID 12) on an association.
    pub fn handle_message(
        &mut self,
        now: Instant,
        session: SessionId,
        bytes: &[u8],
        view: &View<'_>,
    ) {
        self.stats.received += 1;
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => return self.reject_undecodable(session, error),
        };
        let sender = message.sender();
        tracing::debug!(peer = sender.0, message = ?message.message_type(), "ENRP in");
        if sender.0 == 0 || sender == self.own {
            // No registrar has id 0 (§2.1), and our own id means a loop or a clash.
            self.stats.decode_errors += 1;
            return;
        }
        self.sessions.insert(session, Some(sender));
        let Some((peer, new)) = self.peers.hear(now, sender) else {
            tracing::warn!(peer = sender.0, "peer table full; message dropped");
            return;
        };
        if peer.session.is_none() {
            peer.session = Some(session);
        }
        if let Some(link) = self.links.iter().find(|l| l.session == Some(session)) {
            peer.address.get_or_insert(link.address);
        }
        if self.lost.remove(&sender) {
            tracing::info!(peer = sender.0, "peer lost without a majority is heard again");
            peer.active = true;
        }
        if let Some(window @ None) = self.displaced.get_mut(&sender) {
            let until = now + self.config.max_time_last_heard + self.config.max_time_no_response;
            *window = Some(until);
            tracing::info!(
                peer = sender.0,
                "a registrar taken over is heard again: \
                its claims move no PE homed elsewhere during its rejoin window"
            );
        }
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.1
        //# The ENRP server MUST send an ENRP_PRESENCE message with the Reply-required flag set
        //# to '1' to the source address found in the arrived message.
        let asks = matches!(&message, Message::Presence(p) if p.reply_required);
        if new {
            tracing::info!(peer = sender.0, "new peer");
        }
        if new && !asks {
            let presence = self.presence(true, sender, view);
            self.send(session, presence);
        }
        self.dispatch(now, session, sender, message, view);
    }

    fn dispatch(
        &mut self,
        now: Instant,
        session: SessionId,
        sender: RegistrarId,
        message: Message,
        view: &View<'_>,
    ) {
        match message {
            Message::Presence(p) => self.on_presence(now, session, sender, p, view),
            Message::ListRequest(_) => self.on_list_request(session, sender),
            Message::ListResponse(r) => self.on_list_response(now, sender, r),
            Message::HandleTableRequest(r) => self.on_table_request(now, session, sender, r, view),
            Message::HandleTableResponse(r) => self.on_table_response(now, session, sender, r),
            Message::HandleUpdate(u) => self.on_handle_update(sender, u),
            Message::InitTakeover(m) => {
                self.on_init_takeover(now, session, sender, m.target, view);
            }
            Message::InitTakeoverAck(m) => self.on_init_takeover_ack(now, sender, m.target, view),
            Message::TakeoverServer(m) => self.on_takeover_server(sender, m.target),
            Message::Error(e) => {
                tracing::info!(peer = sender.0, error = ?e.error, "ENRP Error from a peer");
            }
        }
    }

    /// A change of one of our own PEs, for every peer we have an association with (§3.3):
    /// encoded here once, as one Handle Update shared by all of them, and not at all while we
    /// have no peer.
    pub fn announce(&mut self, announcement: &Announcement) {
        let sessions: Vec<SessionId> =
            self.peers.iter().filter(|(_, p)| p.active).filter_map(|(_, p)| p.session).collect();
        if sessions.is_empty() {
            return;
        }
        let pool_element = EncodedPoolElement::new_checked(&announcement.wire)
            .expect("stored PE parameters are whole");
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.3.1
        //# The Home ENRP server SHOULD fill in its server ID in the Sending Server's ID field
        //# and leave the Receiving Server's ID blank (i.e., all 0s).
        let update = HandleUpdateRef {
            takeover_suggested: false,
            servers: Servers { sender: self.own, receiver: RegistrarId(0) },
            action: announcement.action,
            pool_handle: &announcement.pool_handle,
            pool_element: pool_element.into(),
            home: self.own,
        };
        let bytes: Arc<[u8]> = update.emit_to_vec().into();
        for session in sessions {
            self.stats.updates_sent += 1;
            self.send(session, Arc::clone(&bytes));
        }
    }

    /// A datagram heard on the ENRP multicast channel from `source`. A Presence of a
    /// registrar we have no address for adds its ENRP address (its Server Information, or the
    /// datagram's source IP with our ENRP port when that names none) to the addresses we
    /// connect to; from then on it is a peer like a configured one. Nothing else is taken
    /// from the channel: RFC 5353 §6 gives it no security, so it never keeps a peer alive,
    /// cancels a takeover or moves an address we already know.
    pub fn handle_multicast(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        if !self.config.multicast {
            return;
        }
        let Ok(Message::Presence(p)) = Message::parse(bytes) else {
            self.stats.decode_errors += 1;
            return;
        };
        self.stats.multicast_heard += 1;
        let sender = p.servers.sender;
        if sender.0 == 0 || sender == self.own {
            return;
        }
        if self.peers.get(sender).is_some_and(|peer| peer.session.is_some()) {
            return;
        }
        let advertised = p.server_information.and_then(|info| {
            let ip = *info.transport.addresses.as_slice().first()?;
            Some(SocketAddr::new(ip, info.transport.port))
        });
        let address = match advertised {
            Some(a) if !a.ip().is_unspecified() => a,
            Some(a) => SocketAddr::new(source.ip(), a.port()),
            None => SocketAddr::new(source.ip(), self.config.own_address.port()),
        };
        let links = self.links.len();
        self.learn_address(now, address);
        if self.links.len() > links {
            self.stats.multicast_learned += 1;
            tracing::info!(peer = sender.0, %address, "registrar heard on the multicast channel");
            self.connect_links(now);
        }
    }

    /// Fires what is due: heartbeats, peer probes and failures, start-up and takeover
    /// timeouts, reconnections.
    pub fn handle_timeout(&mut self, now: Instant, view: &View<'_>) {
        if now >= self.heartbeat_at {
            self.heartbeat(view);
            self.heartbeat_at = now + self.config.heartbeat_cycle;
        }
        self.check_peers(now, view);
        self.check_lost(now);
        self.check_init(now);
        self.check_takeovers(now, view);
        self.check_syncs(now);
        self.connect_links(now);
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.heartbeat_at;
        for (_, peer) in self.peers.iter().filter(|(_, p)| p.active) {
            next = next.min(peer.probe_deadline.unwrap_or_else(|| self.probe_due(peer)));
        }
        match self.init {
            Init::Hunting { until } => next = next.min(until),
            Init::Listing { deadline, .. } | Init::Downloading { deadline, .. } => {
                next = next.min(deadline);
            }
            Init::Ready => {}
        }
        for takeover in self.takeovers.values() {
            next = next.min(takeover.deadline);
        }
        for link in self.links.iter().filter(|l| l.session.is_none()) {
            next = next.min(link.retry_at);
        }
        for resync in self.resyncs.values() {
            next = next.min(resync.deadline);
        }
        if let Some(sweep) = self.sweeps.front() {
            next = next.min(sweep.due);
        }
        Some(next)
    }

    /// The next thing ENRP asks for.
    pub fn poll_action(&mut self) -> Option<EnrpAction> {
        self.actions.pop_front()
    }

    // ---- §3.4: presence, heartbeats, failure detection ----

    fn presence(&self, reply_required: bool, receiver: RegistrarId, view: &View<'_>) -> Arc<[u8]> {
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.6.1
        //# Each time an ENRP server sends out an ENRP_PRESENCE, it MUST include in the
        //# message its current PE checksum
        let presence = Presence {
            reply_required,
            servers: Servers { sender: self.own, receiver },
            checksum: Some(PeChecksum(view.checksum(self.own))),
            server_information: Some(self.own_information()),
        };
        presence.emit_to_vec().into()
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.2
    //# Every PEER-HEARTBEAT-CYCLE seconds, an ENRP server MUST announce its continued presence
    //# to all its peer with a ENRP_PRESENCE message.  In the ENRP_PRESENCE message, the ENRP
    //# server MUST set the 'Replay_required' flag to '0'
    fn heartbeat(&mut self, view: &View<'_>) {
        let bytes = self.presence(false, RegistrarId(0), view);
        if self.config.multicast {
            self.actions.push_back(EnrpAction::Multicast(Arc::clone(&bytes)));
        }
        let sessions: Vec<SessionId> = self.peers.iter().filter_map(|(_, p)| p.session).collect();
        for session in sessions {
            self.send(session, Arc::clone(&bytes));
        }
    }

    /// When a silent peer is to be probed: strictly more than MAX-TIME-LAST-HEARD after it
    /// was last heard.
    fn probe_due(&self, peer: &Peer) -> Instant {
        peer.last_heard + self.config.max_time_last_heard + Duration::from_micros(1)
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.3
    //# If a peer has not been heard for more than MAX-TIME-LAST-HEARD seconds, the ENRP server
    //# MUST immediately send a point-to-point ENRP_PRESENCE with the Reply_request flag set to
    //# '1' to that peer.  If the send fails or the peer does not reply after MAX-TIME-NO-
    //# RESPONSE seconds, the ENRP server MUST consider the peer server dead and SHOULD
    //# initiate the takeover procedure defined in Section 3.5.
    fn check_peers(&mut self, now: Instant, view: &View<'_>) {
        let mut dead = Vec::new();
        let mut probes = Vec::new();
        for id in self.peers.active_ids() {
            let peer = self.peers.get(id).expect("listed ids exist");
            match peer.probe_deadline {
                Some(deadline) if now >= deadline => dead.push(id),
                Some(_) => {}
                None if now >= self.probe_due(peer) => match peer.session {
                    Some(session) => probes.push((id, session)),
                    None => dead.push(id),
                },
                None => {}
            }
        }
        for (id, session) in probes {
            let bytes = self.presence(true, id, view);
            self.send(session, bytes);
            let deadline = now + self.config.max_time_no_response;
            self.peers.get_mut(id).expect("listed ids exist").probe_deadline = Some(deadline);
        }
        let mut failed = Vec::new();
        for id in dead {
            tracing::warn!(peer = id.0, "peer failed (RFC 5353 §3.4.3)");
            self.stats.peers_failed += 1;
            let peer = self.peers.get_mut(id).expect("listed ids exist");
            peer.active = false;
            peer.probe_deadline = None;
            self.peer_gone(id);
            failed.push(id);
        }
        // Judged once every failure of this round is counted: peers lost together are the
        // sign of this registrar being the one cut off. A failed peer stays on the list until
        // then, PEs or not: removing one first shrank the majority it is judged against (the
        // soak: r2, cut off from r1 and r3, dropped PE-less r1, then was "half of two" and
        // took r3's PEs).
        let quorum = self.has_quorum(now);
        for id in failed {
            if quorum && view.owned_count(id) == 0 {
                // Nothing to take over (a registrar without PEs, or a tool such as RSPLIB's
                // hsdump that spoke ENRP once): it leaves the peer list, as in RSPLIB.
                tracing::info!(peer = id.0, "failed peer owned no PEs: removed");
                self.peers.remove(id);
            } else if quorum {
                self.start_takeover(now, id, view);
            } else {
                self.lost.insert(id);
            }
        }
    }

    /// Whether this registrar and the peers it still monitors are at least half of the
    /// registrars it knows (itself and its whole peer list, failed peers not yet taken over
    /// included). RFC 5353 §3.5 lets any survivor take a failed peer over; a registrar cut
    /// off from the others by a partition would then take every peer's PEs, and the H-flagged
    /// keep-alives would move them away from the majority that still serves them (the fault
    /// lab's partition-heal and partition-oneway). With two registrars, one alone is half:
    /// the survivor still takes over, as the RFC has it.
    ///
    /// A peer counts as heard while it is monitored, not probed (§3.4.3) and heard within
    /// MAX-TIME-LAST-HEARD: peers cut off together are not found dead in the same instant,
    /// and the first failure must not be judged while the others are only overdue (the fault
    /// lab's partition-heal: r1 took r3 over 0.5 s before r2's failure came due).
    /// Whether `peer` counts as heard now: monitored, not being probed, and heard within
    /// MAX-TIME-LAST-HEARD (the majority rule and the withheld takeover ack both ask this).
    pub(super) fn hears(&self, peer: &Peer, now: Instant) -> bool {
        peer.active && peer.probe_deadline.is_none() && now < self.probe_due(peer)
    }

    fn has_quorum(&self, now: Instant) -> bool {
        let known = 1 + self.peers.len();
        let heard = 1 + self.peers.iter().filter(|(_, p)| self.hears(p, now)).count();
        2 * heard >= known
    }

    /// Once a majority is heard again, the peers lost without one are monitored again, as if
    /// just heard: one still silent after MAX-TIME-LAST-HEARD is probed (§3.4.3) and, failing
    /// with a majority behind the decision, taken over. Not probed at once: after a heal the
    /// registrars come back one by one, each association after its own SCTP back-off, and
    /// the first one heard must not make the others look dead (found by the ENRP
    /// simulation, partition seed 0xf000035: a live registrar was taken over).
    fn check_lost(&mut self, now: Instant) {
        if self.lost.is_empty() || !self.has_quorum(now) {
            return;
        }
        for id in std::mem::take(&mut self.lost) {
            let Some(peer) = self.peers.get_mut(id) else { continue };
            if !peer.active {
                tracing::info!(peer = id.0, "a majority is heard again: monitoring a lost peer");
                peer.active = true;
                peer.last_heard = now;
                peer.probe_deadline = None;
            }
        }
    }

    fn on_presence(
        &mut self,
        now: Instant,
        session: SessionId,
        sender: RegistrarId,
        p: Presence,
        view: &View<'_>,
    ) {
        let peer = self.peers.get_mut(sender).expect("heard above");
        peer.active = true;
        if let Some(info) = p.server_information {
            if let Some(&ip) = info.transport.addresses.as_slice().first() {
                peer.address = Some(SocketAddr::new(ip, info.transport.port));
            }
        }
        peer.checksum = p.checksum.map(|c| c.0);
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.1
        //# if it receives an ENRP_PRESENCE from the target server at any point in the
        //# arbitration process, the initiating server MUST immediately stop the takeover
        //# process and mark the status of the target server as "active".
        if self.takeovers.remove(&sender).is_some() {
            tracing::info!(peer = sender.0, "takeover cancelled: the target is alive");
        }
        if p.reply_required {
            let bytes = self.presence(false, sender, view);
            self.send(session, bytes);
        }
        if let Init::Hunting { .. } = self.init {
            self.start_listing(now, sender, session);
        }
        self.audit(now, sender, view);
    }

    // ---- §3.2.2: the peer list ----

    fn start_listing(&mut self, now: Instant, mentor: RegistrarId, session: SessionId) {
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.2
        //# the initiating server MUST send an ENRP_LIST_REQUEST message to the mentor peer
        //# server to request a copy of the complete server list maintained by the mentor peer
        let request = ListRequest { servers: Servers { sender: self.own, receiver: mentor } };
        self.send(session, request.emit_to_vec().into());
        let deadline = now + self.config.max_time_no_response;
        self.init = Init::Listing { mentor, deadline };
    }

    fn on_list_request(&mut self, session: SessionId, sender: RegistrarId) {
        let servers = Servers { sender: self.own, receiver: sender };
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.2
        //# if the mentor itself is in the process of startup and not ready to provide a peer
        //# server list ... it MUST reject the request by the initiating server and respond
        //# with an ENRP_LIST_RESPONSE message with the R flag set to '1', and with no server
        //# information included in the response.
        let response = if self.is_ready() {
            let mut peers = vec![self.own_information()];
            for (id, peer) in self.peers.iter().filter(|(id, p)| p.active && *id != sender) {
                if let Some(address) = peer.address {
                    peers.push(server_information(id, address));
                }
            }
            peers.truncate(codec::SERVERS_PER_MESSAGE_MAX);
            ListResponse { reject: false, servers, peers }
        } else {
            ListResponse { reject: true, servers, peers: Vec::new() }
        };
        self.send(session, response.emit_to_vec().into());
    }

    fn on_list_response(&mut self, now: Instant, sender: RegistrarId, r: ListResponse) {
        let Init::Listing { mentor, .. } = self.init else { return };
        if mentor != sender {
            return;
        }
        if r.reject {
            // §3.2.2.2: wait and ask again (any mentor that answers then).
            self.init = Init::Hunting { until: self.hunt_until };
            return;
        }
        //# Upon the reception of the ENRP_LIST_RESPONSE message from the mentor peer, the
        //# initiating server MUST use the server information carried in the message to
        //# initialize its own peer list.
        let own = self.own;
        for info in r.peers.iter().filter(|i| i.server_id != own) {
            let Some(&ip) = info.transport.addresses.as_slice().first() else { continue };
            let address = SocketAddr::new(ip, info.transport.port);
            self.learn_address(now, address);
        }
        self.connect_links(now);
        let Some(session) = self.peers.get(mentor).and_then(|p| p.session) else {
            self.init = Init::Hunting { until: self.hunt_until };
            return;
        };
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.3
        //# The initiating server MUST first send an ENRP_HANDLE_TABLE_REQUEST message to the
        //# mentor peer, with the W flag set to '0', indicating that the entire handlespace is
        //# requested.
        self.request_table(session, mentor, false);
        let deadline = now + self.config.max_time_no_response;
        self.init = Init::Downloading { mentor, deadline };
    }

    fn check_init(&mut self, now: Instant) {
        match self.init {
            Init::Hunting { until } if now >= until => {
                tracing::info!("no mentor ready: serving alone until peers appear");
                self.init = Init::Ready;
            }
            Init::Listing { deadline, mentor } | Init::Downloading { deadline, mentor }
                if now >= deadline =>
            {
                //# If the timer expires before receiving a response from the mentor peer, the
                //# initiating server SHOULD abandon the interaction with the current mentor
                //# server and send a new server list request to a backup mentor peer
                tracing::info!(mentor = mentor.0, "mentor did not answer; trying another");
                self.init = Init::Hunting { until: self.hunt_until };
                let backup = self
                    .peers
                    .active_ids()
                    .into_iter()
                    .filter(|&id| id != mentor)
                    .find_map(|id| self.peers.get(id).and_then(|p| p.session).map(|s| (id, s)));
                if let Some((id, session)) = backup {
                    self.start_listing(now, id, session);
                }
            }
            _ => {}
        }
    }

    fn own_information(&self) -> ServerInformation {
        server_information(self.own, self.config.own_address)
    }

    fn learn_address(&mut self, now: Instant, address: SocketAddr) {
        if self.links.iter().any(|l| l.address == address) || address == self.config.own_address {
            return;
        }
        if self.links.len() >= PEERS_MAX {
            return;
        }
        self.links.push(Link { address, session: None, connecting: false, retry_at: now });
    }

    /// Opens associations to known addresses that have none (each at most once per
    /// MAX-TIME-NO-RESPONSE), except to peers already reached over an association they opened.
    fn connect_links(&mut self, now: Instant) {
        for i in 0..self.links.len() {
            let link = &self.links[i];
            if link.session.is_some() || link.connecting || now < link.retry_at {
                continue;
            }
            let address = link.address;
            let reached =
                self.peers.iter().any(|(_, p)| p.address == Some(address) && p.session.is_some());
            let link = &mut self.links[i];
            link.retry_at = now + self.config.max_time_no_response;
            if reached {
                continue;
            }
            link.connecting = true;
            self.actions.push_back(EnrpAction::Connect(address));
        }
    }

    // ---- helpers ----

    fn send(&mut self, session: SessionId, bytes: Arc<[u8]>) {
        self.stats.sent += 1;
        self.actions.push_back(EnrpAction::Send { session, bytes });
    }

    fn apply(&mut self, op: PeerOp) {
        self.actions.push_back(EnrpAction::Apply(op));
    }

    fn request_table(&mut self, session: SessionId, peer: RegistrarId, own_children_only: bool) {
        let servers = Servers { sender: self.own, receiver: peer };
        let request = HandleTableRequest { own_children_only, servers };
        self.send(session, request.emit_to_vec().into());
    }

    /// A peer left the list of the living: nothing of ours waits for it any more.
    fn peer_gone(&mut self, id: RegistrarId) {
        self.resyncs.remove(&id);
        self.lost.remove(&id);
        for takeover in self.takeovers.values_mut() {
            takeover.pending.remove(&id);
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.7
    //# if an error report to the message sender is needed, the ENRP server that discovered
    //# the error SHOULD send back an ENRP_ERROR message with a proper error cause code.
    fn reject_undecodable(&mut self, session: SessionId, error: DecodeError) {
        self.stats.decode_errors += 1;
        if !error.should_report() {
            return;
        }
        let receiver = self.sessions.get(&session).copied().flatten().unwrap_or(RegistrarId(0));
        let message = EnrpError {
            servers: Servers { sender: self.own, receiver },
            error: super::asap::operational_error(ErrorCause::from(error), CauseInfo::None),
        };
        self.send(session, message.emit_to_vec().into());
    }
}

fn server_information(id: RegistrarId, address: SocketAddr) -> ServerInformation {
    let addresses = codec::param::AddressList::from_slice(&[address.ip()])
        .expect("one address fits any address list");
    let transport = codec::SctpTransport {
        port: address.port(),
        transport_use: codec::TransportUse::DATA_ONLY,
        addresses,
    };
    ServerInformation { server_id: id, transport }
}
