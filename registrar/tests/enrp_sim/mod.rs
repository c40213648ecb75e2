//! The ENRP simulation harness (STYLE.md §7.5): N registrars (each `sctp::Endpoint` +
//! `proto::Server` with ENRP), M PEs and one PU, all on one thread over `sctp::testing::Net`
//! (loss, duplication, reordering by delay spread, a node cut off), from one printed seed.
//!
//! The PEs behave as the asap library's do: register at a registrar, answer keep-alives,
//! re-register every T4, follow a keep-alive's H flag, and move to the next registrar when
//! their home does not answer within the request timeout or their association fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use codec::asap::{EndpointKeepAliveAck, HandleResolution, Message, Registration};
use codec::param::{AddressList, SctpTransport as SctpParam};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use registrar::proto::enrp::EnrpConfig;
use registrar::proto::{Server, ServerConfig};
use sctp::testing::{Faults, Net};
use sctp::{AssociationHandle, Endpoint, EndpointConfig, Event, Instant};

const ASAP_PPID: u32 = 11;
const ENRP_PPID: u32 = 12;
const ASAP_PORT: u16 = 3863;
const ENRP_PORT: u16 = 9901;

/// PE re-registration interval (T4) and how long a PE waits for an answer before it moves on.
const T4: Duration = Duration::from_millis(3_000);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(2_000);

/// One simulated run's shape.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    /// Registrars.
    pub(crate) registrars: usize,
    /// PEs.
    pub(crate) pes: usize,
    /// Network faults.
    pub(crate) faults: Faults,
}

fn ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, 1 + (i % 250) as u8))
}

fn udp(i: usize) -> SocketAddr {
    SocketAddr::new(ip(i), 9899)
}

fn hs(t: Instant) -> handlespace::Instant {
    handlespace::Instant::from_micros(t.micros())
}

fn since(now: Instant, then: Instant) -> Duration {
    Duration::from_micros(now.micros().saturating_sub(then.micros()))
}

/// The pool of every simulated PE.
pub(crate) fn pool() -> PoolHandle {
    PoolHandle::new(b"SimPool").unwrap()
}

/// ENRP timers short enough for a fast run and long enough for loss recovery: heartbeats
/// every 1 s, a probe after 2.5 s of silence, 1 s to answer it.
pub(crate) fn enrp_config(own: SocketAddr, peers: Vec<SocketAddr>) -> EnrpConfig {
    let ms = handlespace::Duration::from_millis;
    let mut c = EnrpConfig::new(own, peers);
    c.heartbeat_cycle = ms(1_000);
    c.max_time_last_heard = ms(2_500);
    c.max_time_no_response = ms(1_000);
    c.mentor_hunt_timeout = ms(3_000);
    c.table_page_elements_max = 4;
    c
}

fn sctp_config() -> EndpointConfig {
    // A LAN: 100 ms RTO floor, heartbeats every 1 s, so that a dead peer's associations fail
    // within seconds (as the fault tests in the lab do with the kernel's settings).
    EndpointConfig {
        rto_initial: Duration::from_millis(200),
        rto_min: Duration::from_millis(100),
        rto_max: Duration::from_millis(1_000),
        hb_interval: Duration::from_millis(1_000),
        assoc_max_retrans: 5,
        path_max_retrans: 5,
        ..EndpointConfig::default()
    }
}

struct RegistrarNode {
    server: Server,
    alive: bool,
    events_seen: usize,
    seen: usize,
}

#[derive(Debug)]
struct PeNode {
    id: u32,
    /// The registrar it talks to now.
    target: usize,
    assoc: Option<AssociationHandle>,
    /// When its outstanding registration was sent.
    pending_since: Option<Instant>,
    next_register: Instant,
    acknowledged: bool,
    events_seen: usize,
    seen: usize,
}

/// The simulation.
pub(crate) struct Sim {
    /// The network.
    pub(crate) net: Net,
    shape: Shape,
    registrars: Vec<RegistrarNode>,
    pes: Vec<PeNode>,
    pu_assoc: Option<AssociationHandle>,
    /// The registrar the PU talks to, and when its oldest unanswered resolution was sent.
    pu_target: usize,
    pu_waiting_since: Option<Instant>,
    pu_seen: usize,
    answered: u64,
    /// (registrar, PE) -> since when the PE is missing there while it answers.
    absent_since: BTreeMap<(usize, u32), Instant>,
    longest_absence: Duration,
    /// Checks of absence start after this (everyone registered once).
    settled_at: Option<Instant>,
    /// Registrars cut off until the instant (partition).
    cut_until: BTreeMap<usize, Instant>,
}

impl Sim {
    /// A network of `shape`, from `seed`.
    pub(crate) fn new(seed: u64, shape: Shape) -> Sim {
        let mut net = Net::new(seed, shape.faults.clone());
        let n = shape.registrars;
        let mut registrars = Vec::new();
        for r in 0..n {
            let mut endpoint = Endpoint::new(sctp_config(), [r as u8 + 1; 32]);
            endpoint.listen(ASAP_PORT);
            endpoint.listen(ENRP_PORT);
            net.add(endpoint, udp(r));
            let peers = (0..n).filter(|&p| p != r).map(|p| SocketAddr::new(ip(p), ENRP_PORT));
            let mut handlespace = handlespace::Config::default();
            handlespace.keep_alive_interval = handlespace::Duration::from_millis(2_000);
            handlespace.keep_alive_timeout = handlespace::Duration::from_millis(2_000);
            let config = ServerConfig {
                registrar_id: RegistrarId(0x100 + r as u32),
                core: 0,
                cores: 1,
                handlespace,
                resolution_items_default: 3,
                registration_life_max: handlespace::Duration::from_secs(3_600),
                remove_on_session_loss: true,
                seed: seed ^ r as u64,
                replicas: true,
                enrp: Some(enrp_config(SocketAddr::new(ip(r), ENRP_PORT), peers.collect())),
            };
            registrars.push(RegistrarNode {
                server: Server::new(config),
                alive: true,
                events_seen: 0,
                seen: 0,
            });
        }
        let mut pes = Vec::new();
        for p in 0..shape.pes {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&(p as u64 + 1000).to_le_bytes());
            net.add(Endpoint::new(sctp_config(), secret), udp(n + p));
            pes.push(PeNode {
                id: 1 + p as u32,
                target: p % n,
                assoc: None,
                pending_since: None,
                next_register: net.now,
                acknowledged: false,
                events_seen: 0,
                seen: 0,
            });
        }
        net.add(Endpoint::new(sctp_config(), [0xaa; 32]), udp(n + shape.pes));
        Sim {
            net,
            shape,
            registrars,
            pes,
            pu_assoc: None,
            pu_target: 0,
            pu_waiting_since: None,
            pu_seen: 0,
            answered: 0,
            absent_since: BTreeMap::new(),
            longest_absence: Duration::ZERO,
            settled_at: None,
            cut_until: BTreeMap::new(),
        }
    }

    fn pu_node(&self) -> usize {
        self.shape.registrars + self.shape.pes
    }

    /// Kills registrar `r` (as kill -9: silent from now on, its state gone).
    pub(crate) fn crash(&mut self, r: usize) {
        self.registrars[r].alive = false;
        self.net.nodes[r].silent = Some(None);
    }

    /// Cuts registrar `r` off from everyone for `span` (its process keeps running).
    pub(crate) fn partition(&mut self, r: usize, span: Duration) {
        let until = self.net.now + span;
        self.net.nodes[r].silent = Some(Some(until));
        self.cut_until.insert(r, until);
    }

    fn reachable(&self, r: usize) -> bool {
        self.registrars[r].alive && self.cut_until.get(&r).is_none_or(|&t| self.net.now >= t)
    }

    /// The network heals: no more loss from now on (duplication and reordering stay).
    pub(crate) fn heal(&mut self) {
        self.net.faults.loss_per_mille = 0;
    }

    /// Runs `span` of simulated time, checking after every step.
    pub(crate) fn run_for(&mut self, span: Duration) {
        let end = self.net.now + span;
        let mut next_resolve = self.net.now;
        let mut steps = 0u32;
        while self.net.now < end {
            steps += 1;
            assert!(steps < 4_000_000, "step cap: livelock at {:?}", self.net.now);
            if self.net.now >= next_resolve {
                self.resolve();
                next_resolve = self.net.now + Duration::from_millis(100);
            }
            self.net.step();
            self.registrar_apps();
            self.pe_apps();
            self.pu_app();
            self.check_step();
        }
    }

    fn registrar_apps(&mut self) {
        let now = self.net.now;
        for r in 0..self.registrars.len() {
            if !self.registrars[r].alive {
                continue;
            }
            let node = &self.net.nodes[r];
            let events: Vec<Event> =
                node.events[self.registrars[r].events_seen..].iter().map(|(_, e)| *e).collect();
            let received: Vec<_> = node.received[self.registrars[r].seen..].to_vec();
            self.registrars[r].events_seen += events.len();
            self.registrars[r].seen += received.len();
            for e in events {
                match e {
                    Event::Connected(h) => {
                        let peer = self.net.nodes[r].endpoint.remote(h).unwrap_or(udp(0));
                        self.registrars[r].server.handle_up(h.0, peer);
                    }
                    Event::CommunicationLost(h) | Event::Closed(h) => {
                        self.registrars[r].server.handle_closed(hs(now), h.0);
                    }
                    _ => {}
                }
            }
            for m in received {
                let server = &mut self.registrars[r].server;
                match m.info.ppid {
                    ASAP_PPID => server.handle_message(hs(now), m.assoc.0, &m.data),
                    ENRP_PPID => server.handle_enrp_message(hs(now), m.assoc.0, &m.data),
                    _ => {}
                }
            }
            if self.registrars[r].server.poll_timeout().is_some_and(|t| t <= hs(now)) {
                self.registrars[r].server.handle_timeout(hs(now));
            }
            self.flush(r);
        }
    }

    fn flush(&mut self, r: usize) {
        let now = self.net.now;
        let server = &mut self.registrars[r].server;
        let endpoint = &mut self.net.nodes[r].endpoint;
        while let Some(out) = server.poll_transmit() {
            let h = AssociationHandle(out.assoc);
            let _ = endpoint.send(now, h, 0, ASAP_PPID, false, &out.bytes);
        }
        while let Some(out) = server.poll_transmit_enrp() {
            let h = AssociationHandle(out.assoc);
            let _ = endpoint.send(now, h, 0, ENRP_PPID, false, &out.bytes);
        }
        while let Some(address) = server.poll_connect() {
            let IpAddr::V4(v4) = address.ip() else { unreachable!("simulated IPv4 only") };
            let udp_remote = SocketAddr::new(IpAddr::V4(v4), 9899);
            let h = endpoint.connect(now, udp_remote, ENRP_PORT, address.port()).ok();
            server.handle_connecting(hs(now), address, h.map(|h| h.0));
        }
    }

    fn pe_apps(&mut self) {
        let now = self.net.now;
        let n = self.shape.registrars;
        for p in 0..self.pes.len() {
            let node = n + p;
            let events: Vec<Event> = self.net.nodes[node].events[self.pes[p].events_seen..]
                .iter()
                .map(|(_, e)| *e)
                .collect();
            self.pes[p].events_seen += events.len();
            for e in events {
                if let Event::CommunicationLost(h) | Event::Closed(h) = e {
                    if self.pes[p].assoc == Some(h) {
                        self.move_on(p);
                    }
                }
            }
            let received: Vec<_> = self.net.nodes[node].received[self.pes[p].seen..].to_vec();
            self.pes[p].seen += received.len();
            for m in received {
                match Message::parse(&m.data).expect("registrars send valid ASAP") {
                    Message::RegistrationResponse(r) if !r.reject => {
                        self.pes[p].acknowledged = true;
                        self.pes[p].pending_since = None;
                        self.pes[p].next_register = now + T4;
                    }
                    Message::RegistrationResponse(r) => {
                        panic!("PE {} refused: {:?}", self.pes[p].id, r.error)
                    }
                    Message::EndpointKeepAlive(k) => {
                        let ack = EndpointKeepAliveAck {
                            pool_handle: k.pool_handle,
                            pe_id: k.pe_id.unwrap_or(PoolElementId(self.pes[p].id)),
                        };
                        let bytes = Message::EndpointKeepAliveAck(ack).emit_to_vec();
                        let endpoint = &mut self.net.nodes[node].endpoint;
                        let _ = endpoint.send(now, m.assoc, 0, ASAP_PPID, false, &bytes);
                        if k.home {
                            // RFC 5352 §3.5: the sender is the new home.
                            self.pes[p].assoc = Some(m.assoc);
                        }
                    }
                    _ => {}
                }
            }
            self.pe_timers(p);
        }
    }

    /// The PE's home did not answer or its association failed: the next registrar.
    fn move_on(&mut self, p: usize) {
        let now = self.net.now;
        let node = self.shape.registrars + p;
        if let Some(h) = self.pes[p].assoc.take() {
            self.net.nodes[node].endpoint.abort(now, h);
        }
        self.pes[p].target = (self.pes[p].target + 1) % self.shape.registrars;
        self.pes[p].pending_since = None;
        self.pes[p].next_register = now;
    }

    fn pe_timers(&mut self, p: usize) {
        let now = self.net.now;
        let node = self.shape.registrars + p;
        if self.pes[p].pending_since.is_some_and(|t| since(now, t) > REQUEST_TIMEOUT) {
            self.move_on(p);
        }
        if now < self.pes[p].next_register || self.pes[p].pending_since.is_some() {
            return;
        }
        let assoc = match self.pes[p].assoc {
            Some(h) => h,
            None => {
                let target = udp(self.pes[p].target);
                let local_port = 5_000 + (p as u16) * 16 + (self.net.rng.below(16) as u16);
                let endpoint = &mut self.net.nodes[node].endpoint;
                let Ok(h) = endpoint.connect(now, target, local_port, ASAP_PORT) else {
                    self.pes[p].next_register = now + Duration::from_millis(100);
                    return;
                };
                self.pes[p].assoc = Some(h);
                h
            }
        };
        let bytes = registration(self.pes[p].id, ip(node));
        let _ = self.net.nodes[node].endpoint.send(now, assoc, 0, ASAP_PPID, false, &bytes);
        self.pes[p].pending_since = Some(now);
    }

    fn resolve(&mut self) {
        let pu = self.pu_node();
        let now = self.net.now;
        // A PU whose registrar stays silent past the request timeout moves to the next one.
        if self.pu_waiting_since.is_some_and(|t| since(now, t) > REQUEST_TIMEOUT) {
            if let Some(h) = self.pu_assoc.take() {
                self.net.nodes[pu].endpoint.abort(now, h);
            }
            self.pu_target = (self.pu_target + 1) % self.shape.registrars;
            self.pu_waiting_since = None;
        }
        if self.pu_assoc.is_none() {
            let port = 6_000 + self.net.rng.below(1_000) as u16;
            let target = udp(self.pu_target);
            self.pu_assoc = self.net.nodes[pu].endpoint.connect(now, target, port, ASAP_PORT).ok();
        }
        self.pu_waiting_since.get_or_insert(now);
        let Some(h) = self.pu_assoc else { return };
        let request =
            HandleResolution { subscribe: false, pool_handle: pool(), items_wanted: Some(64) };
        let bytes = Message::HandleResolution(request).emit_to_vec();
        let _ = self.net.nodes[pu].endpoint.send(now, h, 0, ASAP_PPID, false, &bytes);
    }

    fn pu_app(&mut self) {
        let pu = self.pu_node();
        let events: Vec<Event> = self.net.nodes[pu].events.iter().map(|(_, e)| *e).collect();
        for e in events {
            if let Event::CommunicationLost(h) | Event::Closed(h) = e {
                if self.pu_assoc == Some(h) {
                    self.pu_assoc = None;
                    self.pu_target = (self.pu_target + 1) % self.shape.registrars;
                }
            }
        }
        self.net.nodes[pu].events.clear();
        let received: Vec<_> = self.net.nodes[pu].received[self.pu_seen..].to_vec();
        self.pu_seen += received.len();
        for m in received {
            if let Ok(Message::HandleResolutionResponse(r)) = Message::parse(&m.data) {
                for pe in &r.pool_elements {
                    // Only PEs that exist are ever named.
                    assert!((1..=self.pes.len() as u32).contains(&pe.id.0), "{:?}", pe.id);
                }
                self.answered += 1;
                self.pu_waiting_since = None;
            }
        }
    }

    /// After every step: no PE with two entries in one handlespace (by construction of the
    /// handlespace, checked anyway), and absence tracking for every answering PE.
    fn check_step(&mut self) {
        let now = self.net.now;
        if self.settled_at.is_none() && self.pes.iter().all(|p| p.acknowledged) {
            self.settled_at = Some(now);
        }
        let Some(settled) = self.settled_at else { return };
        // Give the handlespaces one heartbeat cycle after everyone registered once.
        if since(now, settled) < Duration::from_secs(2) {
            return;
        }
        for r in 0..self.registrars.len() {
            let reachable = self.reachable(r);
            for pe in &self.pes {
                let key = (r, pe.id);
                let present = self.registrars[r]
                    .server
                    .handlespace()
                    .element(&pool(), PoolElementId(pe.id))
                    .is_some();
                if present || !reachable {
                    if let Some(start) = self.absent_since.remove(&key) {
                        self.longest_absence = self.longest_absence.max(since(now, start));
                    }
                    continue;
                }
                self.absent_since.entry(key).or_insert(now);
            }
        }
    }

    /// The longest absence so far, counting those still running.
    pub(crate) fn longest_absence(&self) -> Duration {
        let now = self.net.now;
        self.absent_since.values().map(|&t| since(now, t)).fold(self.longest_absence, Duration::max)
    }

    /// Whether every living registrar holds exactly the same PEs with the same homes, and the
    /// same PE checksum for every home.
    pub(crate) fn converged(&self) -> bool {
        let dead: BTreeSet<u32> = (0..self.registrars.len())
            .filter(|&r| !self.registrars[r].alive)
            .map(|r| 0x100 + r as u32)
            .collect();
        let mut contents = Vec::new();
        for r in (0..self.registrars.len()).filter(|&r| self.registrars[r].alive) {
            let hs = self.registrars[r].server.handlespace();
            let mut entries: BTreeSet<(u32, u32)> = BTreeSet::new();
            if let Some(pool) = hs.pool(&pool()) {
                entries.extend(pool.elements().map(|e| (e.id().0, e.home().0)));
            }
            contents.push(entries);
        }
        let all_present = contents.first().is_some_and(|c| c.len() == self.pes.len());
        let homed_alive = contents.iter().flatten().all(|(_, home)| !dead.contains(home));
        all_present && homed_alive && contents.windows(2).all(|w| w[0] == w[1])
    }

    /// Runs until converged (checked every 100 ms of simulated time), at most `limit`; the time
    /// it took.
    pub(crate) fn run_until_converged(&mut self, limit: Duration) -> Option<Duration> {
        let start = self.net.now;
        while since(self.net.now, start) < limit {
            if self.converged() {
                return Some(since(self.net.now, start));
            }
            self.run_for(Duration::from_millis(100));
        }
        self.converged().then(|| since(self.net.now, start))
    }

    /// Takeovers won so far, per target registrar index.
    pub(crate) fn winners(&self) -> BTreeMap<usize, usize> {
        let mut out = BTreeMap::new();
        for r in 0..self.registrars.len() {
            let Some(enrp) = self.registrars[r].server.enrp() else { continue };
            for target in enrp.takeovers_won() {
                *out.entry((target.0 - 0x100) as usize).or_default() += 1;
            }
        }
        out
    }

    /// Takeover arbitrations started so far, per target registrar index.
    pub(crate) fn arbitrations(&self) -> BTreeMap<usize, usize> {
        let mut out = BTreeMap::new();
        for r in 0..self.registrars.len() {
            let Some(enrp) = self.registrars[r].server.enrp() else { continue };
            for target in enrp.takeovers_started() {
                *out.entry((target.0 - 0x100) as usize).or_default() += 1;
            }
        }
        out
    }

    /// Resolutions answered so far.
    pub(crate) fn answered(&self) -> u64 {
        self.answered
    }

    /// A readable dump of every registrar's view, for failure messages.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for (r, node) in self.registrars.iter().enumerate() {
            let hs = node.server.handlespace();
            let entries: Vec<(u32, u32)> = hs
                .pool(&pool())
                .map(|p| p.elements().map(|e| (e.id().0, e.home().0)).collect())
                .unwrap_or_default();
            let peers = node.server.enrp().map(|e| e.peers().ids()).unwrap_or_default();
            out += &format!(
                "registrar {r} alive {} ready {:?} peers {peers:?} PEs {entries:x?}\n",
                node.alive,
                node.server.enrp().map(|e| e.is_ready())
            );
        }
        for pe in &self.pes {
            out += &format!("PE {} -> registrar {} acked {}\n", pe.id, pe.target, pe.acknowledged);
        }
        out
    }
}

fn registration(id: u32, address: IpAddr) -> Vec<u8> {
    let pe = PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 3_600_000,
        user_transport: UserTransport::Sctp(SctpParam {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[address]).unwrap(),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    };
    Message::Registration(Registration { pool_handle: pool(), pool_element: pe }).emit_to_vec()
}
