//! Deterministic simulation (STYLE §7.5): the sans-IO registrar server on a simulated SCTP
//! network with loss, duplication and reordering, driven by simulated PEs and PUs, all on one
//! thread from one printed seed.
//!
//! Goal: under 10 % loss every registration is acknowledged, resolutions only ever name
//! registered PEs, a PE that falls silent is removed, and no other PE is removed unless SCTP
//! took longer than the keep-alive timeout to carry one of its exchanges. Method: node 0 runs
//! `sctp::Endpoint` + `proto::Server`; nodes 1..=PES are PEs and the last node is a PU
//! resolving every simulated 100 ms, each an `asap::Endpoint` (`common::sim_endpoint`: the
//! library registers, answers keep-alives and hunts). Every answer is checked against the
//! handlespace when the registrar emits it; a step cap makes livelock fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use asap::{EndpointConfig as AsapConfig, Event as AsapEvent, PeConfig};
use codec::asap::Message;
use codec::param::{AddressList, SctpTransport as SctpParam};
use codec::UserTransport;
use codec::{Policy, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use common::sim_endpoint::{SimEndpoint, SIM_UDP_PORT};
use registrar::proto::{Server, ServerConfig};
use sctp::testing::{Faults, Net};
use sctp::{AssociationHandle, Endpoint, EndpointConfig, Event, Instant};

const PES: usize = 8;
/// Seeds per run. Over 300 seeds, one (0x5eed00dc) has a PE whose SCTP handshake does not
/// complete within 120 s at 10 % loss (INIT back-off per RFC 9260 §5.1: ~6 failed attempts),
/// and the simulated PE, unlike a real one, does not hunt for another registrar; the run
/// length and seed count are chosen to keep the default run fast, not to hide that.
const SEEDS: u64 = 20;
const ASAP_PPID: u32 = 11;
const ASAP_PORT: u16 = 3863;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8)), SIM_UDP_PORT)
}

fn hs_now(t: Instant) -> handlespace::Instant {
    handlespace::Instant::from_micros(t.micros())
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"SimPool").unwrap()
}

/// PE `i`: pool `SimPool`, id `i`, registered for an hour (so no T4 within a run).
fn pe_config(i: usize) -> PeConfig {
    let user_transport = UserTransport::Sctp(SctpParam {
        port: 7,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&[addr(i).ip()]).unwrap(),
    });
    let mut config = PeConfig::new(pool(), user_transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(i as u32));
    config.registration_life = asap::Duration::from_secs(3_600);
    config
}

/// Every simulated endpoint's: the one registrar, the library's default timers.
fn asap_config() -> AsapConfig {
    let mut config = AsapConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(addr(0).ip(), ASAP_PORT)];
    config.hunt.parallel_max = 1;
    config.items_wanted = Some(64);
    config
}

struct Sim {
    net: Net,
    server: Server,
    /// Messages of each node already handled (index into `received`).
    seen: Vec<usize>,
    /// Events of the registrar node already handled.
    events_seen: usize,
    /// The PEs (nodes 1..=PES) and the PU (the last node).
    pes: Vec<SimEndpoint>,
    pu: SimEndpoint,
    /// PEs whose registration was acknowledged.
    acknowledged: BTreeSet<u32>,
    /// Handle Resolution Responses the registrar sent.
    answered: u64,
    /// Per PE: when the registrar sent the keep-alive still waiting for its Ack.
    probe_sent: BTreeMap<u32, Instant>,
    /// Per PE: the slowest keep-alive round trip seen at the registrar.
    slowest: BTreeMap<u32, Duration>,
}

impl Sim {
    fn new(seed: u64, faults: Faults) -> Sim {
        // The default keep-alive timers: every 5 s (±50 %), 5 s to answer (as RSPLIB).
        let handlespace = handlespace::Config::default();
        let server = Server::new(ServerConfig {
            registrar_id: RegistrarId(7),
            core: 0,
            cores: 1,
            handlespace,
            resolution_items_default: 3,
            registration_life_max: handlespace::Duration::from_micros(3_600_000_000),
            remove_on_session_loss: true,
            seed,
            replicas: true,
            enrp: None,
        });
        let mut net = Net::new(seed, faults);
        let mut registrar = Endpoint::new(EndpointConfig::default(), [7; 32]);
        registrar.listen(ASAP_PORT);
        net.add(registrar, addr(0));
        for i in 1..=PES + 1 {
            let mut secret = [0u8; 32];
            secret[0] = i as u8;
            net.add(Endpoint::new(EndpointConfig::default(), secret), addr(i));
        }
        let nodes = net.nodes.len();
        let pes = (1..=PES).map(|i| SimEndpoint::new(i, asap_config(), i as u64, 5_000)).collect();
        let pu = SimEndpoint::new(PES + 1, asap_config(), 0, 6_000);
        Sim {
            net,
            server,
            seen: vec![0; nodes],
            events_seen: 0,
            pes,
            pu,
            acknowledged: BTreeSet::new(),
            answered: 0,
            probe_sent: BTreeMap::new(),
            slowest: BTreeMap::new(),
        }
    }

    /// Every PE registers (the endpoint hunts for the registrar first); the PU hunts too.
    fn connect_all(&mut self) {
        let now = SimEndpoint::instant(self.net.now);
        for (i, pe) in self.pes.iter_mut().enumerate() {
            pe.endpoint_mut().register(now, pe_config(i + 1)).unwrap();
            pe.turn(&mut self.net);
        }
        self.pu.endpoint_mut().start(now);
        self.pu.turn(&mut self.net);
    }

    /// One Handle Resolution, once the PU has its registrar.
    fn resolve(&mut self) {
        let now = SimEndpoint::instant(self.net.now);
        if self.pu.endpoint_mut().resolve_uncached(now, pool()).is_ok() {
            self.pu.turn(&mut self.net);
        }
    }

    /// Sends what the server queued, checking each answer against the handlespace as it is
    /// now (before any timer changes it).
    fn flush_server(&mut self, now: Instant) {
        while let Some(out) = self.server.poll_transmit() {
            let h = AssociationHandle(out.assoc);
            match Message::parse(&out.bytes).expect("the server emits valid ASAP") {
                Message::EndpointKeepAlive(k) => {
                    self.probe_sent.entry(k.pe_id.unwrap().0).or_insert(now);
                }
                // Checked where it is made: an answer names only PEs registered right now.
                Message::HandleResolutionResponse(r) => {
                    let hs = self.server.handlespace();
                    for pe in &r.pool_elements {
                        assert!(hs.element(&pool(), pe.id).is_some(), "answer names {:?}", pe.id);
                    }
                    self.answered += 1;
                }
                _ => {}
            }
            let _ = self.net.nodes[0].endpoint.send(now, h, 0, ASAP_PPID, false, &out.bytes);
        }
    }

    /// The application layer of every node: the registrar server and the PE/PU logic.
    fn apps(&mut self) {
        let now = self.net.now;
        // Registrar: association events first, then messages, then timers.
        let events: Vec<Event> =
            self.net.nodes[0].events[self.events_seen..].iter().map(|(_, e)| *e).collect();
        self.events_seen += events.len();
        for e in events {
            match e {
                Event::Connected(h) => self.server.handle_up(h.0, addr(1)),
                Event::CommunicationLost(h) | Event::Closed(h) => {
                    self.server.handle_closed(hs_now(now), h.0)
                }
                _ => {}
            }
        }
        let received: Vec<_> = self.net.nodes[0].received[self.seen[0]..].to_vec();
        self.seen[0] += received.len();
        for m in received {
            if let Ok(Message::EndpointKeepAliveAck(a)) = Message::parse(&m.data) {
                if let Some(sent) = self.probe_sent.remove(&a.pe_id.0) {
                    let took = Duration::from_micros(now.micros() - sent.micros());
                    let slowest = self.slowest.entry(a.pe_id.0).or_default();
                    *slowest = (*slowest).max(took);
                }
            }
            self.server.handle_message(hs_now(now), m.assoc.0, &m.data);
        }
        self.flush_server(now);
        if self.server.poll_timeout().is_some_and(|t| t <= hs_now(now)) {
            self.server.handle_timeout(hs_now(now));
        }
        self.flush_server(now);
        // PEs and the PU: the library's endpoints.
        for pe in &mut self.pes {
            pe.turn(&mut self.net);
            for event in pe.events.drain(..) {
                match event {
                    AsapEvent::Registered { id, .. } => {
                        self.acknowledged.insert(id.0);
                    }
                    AsapEvent::RegistrationFailed { failure, .. } => {
                        panic!("PE on node {} not registered: {failure:?}", pe.node)
                    }
                    _ => {}
                }
            }
        }
        self.pu.turn(&mut self.net);
        self.pu.events.clear();
    }

    /// Runs for `span` of simulated time, resolving every 100 ms.
    fn run_for(&mut self, span: Duration) {
        let end = self.net.now + span;
        let mut next_resolve = self.net.now;
        let mut steps = 0u32;
        while self.net.now < end {
            steps += 1;
            assert!(steps < 2_000_000, "step cap: livelock");
            if self.net.now >= next_resolve {
                self.resolve();
                next_resolve = self.net.now + Duration::from_millis(100);
            }
            self.net.step();
            self.apps();
        }
    }
}

fn scenario(seed: u64) -> u32 {
    let faults = Faults {
        loss_per_mille: 100,
        duplicate_per_mille: 20,
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
    };
    let mut sim = Sim::new(seed, faults);
    sim.connect_all();
    // Every PE gets acknowledged despite the loss (SCTP's back-off can make a handshake take
    // tens of seconds at 10 % loss), and none is lost over 30 s of keep-alives after that.
    let all: BTreeSet<u32> = (1..=PES as u32).collect();
    for _ in 0..12 {
        if sim.acknowledged == all {
            break;
        }
        sim.run_for(Duration::from_secs(10));
    }
    if let Some(id) = all.difference(&sim.acknowledged).next() {
        let events: Vec<_> = sim.net.nodes[*id as usize].events.iter().map(|(_, e)| e).collect();
        panic!("seed {seed:#x}: PE {id} not acknowledged within 120 s; its events: {events:?}");
    }
    sim.run_for(Duration::from_secs(30));

    // PE 3 hangs (its SCTP still acknowledges, its application hears nothing, so nothing
    // answers the keep-alives): it goes within 1.5 intervals + the timeout (12.5 s).
    sim.pes[3 - 1].deaf = true;
    sim.run_for(Duration::from_millis(13_000));
    assert!(sim.server.handlespace().element(&pool(), PoolElementId(3)).is_none());
    sim.run_for(Duration::from_secs(20));
    assert!(sim.answered > 300, "the PU kept resolving: {}", sim.answered);
    // Every other PE is still registered, unless SCTP took longer than the keep-alive timeout
    // to carry one of its exchanges (loss recovery backs the RTO off to seconds): then, and
    // only then, the registrar may remove it.
    let timeout = Duration::from_secs(5);
    let now = sim.net.now;
    let mut stalled = 0;
    for id in (1..=PES as u32).filter(|id| *id != 3) {
        if sim.server.handlespace().element(&pool(), PoolElementId(id)).is_some() {
            continue;
        }
        let slowest = sim.slowest.get(&id).copied().unwrap_or_default();
        let pending =
            sim.probe_sent.get(&id).map(|t| Duration::from_micros(now.micros() - t.micros()));
        assert!(
            slowest > timeout || pending.is_some_and(|p| p > timeout),
            "seed {seed:#x}: PE {id} removed though every exchange beat the timeout ({slowest:?})"
        );
        stalled += 1;
    }
    stalled
}

#[test]
fn registrations_survive_loss_and_only_the_silent_pe_goes() {
    let mut stalled = 0;
    for seed in 0x5eed_0001..0x5eed_0001 + SEEDS {
        stalled += scenario(seed);
    }
    println!("{SEEDS} seeds: {stalled} PEs removed after an SCTP stall longer than the timeout");
}
