//! The management model (registrar/src/io/management.rs) against the sans-IO `Server`: every
//! RFC 5525 column the registrar can know has the value the protocol put there, after
//! registrations, removals and a PE learned from a peer; and a deregistration through the
//! model is published like an ASAP one (replicas, ENRP Handle Update).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::asap::{Deregistration, Message as Asap, Registration};
use codec::enrp::{HandleUpdate, Message as Enrp, Presence, Servers, UpdateAction};
use codec::param::{AddressList, PeChecksum, ServerInformation};
use codec::{
    Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, SctpTransport, TransportUse,
    UserTransport,
};
use handlespace::{Duration, Instant};
use registrar::io::management::{deregister, snapshot, Deregistered, Elements};
use registrar::proto::enrp::EnrpConfig;
use registrar::proto::{CrossCore, ReplicaUpdate, Server, ServerConfig};

const OWN: RegistrarId = RegistrarId(0x10);
const PEER: RegistrarId = RegistrarId(0x20);
const S: u64 = 1_000_000;
/// Where the peer registrar is (its association and its Server Information).
const PEER_ASSOC: u32 = 1;
/// The association our PEs register over, from 127.0.0.9:5000.
const PE_ASSOC: u32 = 2;

fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn config(core: u16, cores: u16) -> ServerConfig {
    ServerConfig {
        registrar_id: OWN,
        core,
        cores,
        handlespace: handlespace::Config::default(),
        resolution_items_default: 3,
        registration_life_max: Duration::from_secs(3_600),
        remove_on_session_loss: true,
        seed: 1,
        replicas: true,
        enrp: Some(EnrpConfig::new(SocketAddr::new(ip(1), 9901), Vec::new())),
    }
}

fn handle(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

fn sctp(port: u16, last: u8) -> SctpTransport {
    SctpTransport {
        port,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&[ip(last)]).unwrap(),
    }
}

fn element(id: u32, policy: Policy, transport: UserTransport, life_ms: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: life_ms,
        user_transport: transport,
        policy,
        asap_transport: None,
    }
}

fn register(s: &mut Server, now: u64, pool: &str, pe: PoolElement) {
    let m = Asap::Registration(Registration { pool_handle: handle(pool), pool_element: pe });
    s.handle_message(at(now), PE_ASSOC, &m.emit_to_vec());
    let answer = s.poll_transmit().expect("a Registration Response");
    let Ok(Asap::RegistrationResponse(r)) = Asap::parse(&answer.bytes) else { panic!() };
    assert!(!r.reject, "{r:?}");
}

/// A one-core server that knows `PEER` (heard at 1 s, checksum 0xbeef, at 127.0.0.2:9901)
/// and its PE 7 in pool "web", and holds our PEs: "web" 1 and 2 (round robin, SCTP), "lu" 3
/// (least used, load 0x100, TCP), "wrr" 4 (weighted round robin, weight 5, UDP).
fn populated() -> Server {
    let mut s = Server::new(config(0, 1));
    s.handle_up(PEER_ASSOC, SocketAddr::new(ip(2), 9901));
    let presence = Enrp::Presence(Presence {
        reply_required: false,
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(0xbeef)),
        server_information: Some(ServerInformation { server_id: PEER, transport: sctp(9901, 2) }),
    });
    s.handle_enrp_message(at(S), PEER_ASSOC, &presence.emit_to_vec());
    let mut learned = element(7, Policy::RoundRobin, UserTransport::Sctp(sctp(80, 7)), 30_000);
    learned.home_registrar = PEER;
    learned.asap_transport = Some(sctp(5_007, 7));
    let update = Enrp::HandleUpdate(HandleUpdate {
        takeover_suggested: false,
        servers: Servers { sender: PEER, receiver: OWN },
        action: UpdateAction::ADD_PE,
        pool_handle: handle("web"),
        pool_element: learned,
    });
    s.handle_enrp_message(at(S), PEER_ASSOC, &update.emit_to_vec());
    while s.poll_transmit_enrp().is_some() {}

    s.handle_up(PE_ASSOC, SocketAddr::new(ip(9), 5_000));
    let rr = |id| element(id, Policy::RoundRobin, UserTransport::Sctp(sctp(20_000, 9)), 600_000);
    register(&mut s, 2 * S, "web", rr(1));
    register(&mut s, 2 * S, "web", rr(2));
    let tcp = UserTransport::Tcp {
        port: 8_080,
        transport_use: TransportUse::DATA_PLUS_CONTROL,
        address: ip(9),
    };
    register(&mut s, 2 * S, "lu", element(3, Policy::LeastUsed { load: 0x100 }, tcp, 90_000));
    let udp = UserTransport::Udp { port: 5_353, address: ip(9) };
    let weighted = Policy::WeightedRoundRobin { weight: 5 };
    register(&mut s, 2 * S, "wrr", element(4, weighted, udp, 45_000));
    s
}

// Goal: every column of the pool, PE and peer tables that the registrar knows is right, for
// its own PEs and for one learned from a peer. Method: a populated server (see `populated`),
// one snapshot at 3 s, each row compared field by field.
#[test]
fn every_known_column_has_the_protocols_value() {
    let s = populated();
    let snap = snapshot(&s, 0, &Elements::All, at(3 * S));
    let pools: Vec<(&str, u32, &str, u32, u8, u16)> = snap
        .pools
        .iter()
        .map(|p| {
            let desc = p.policy_description.as_str();
            (
                p.handle.as_str(),
                p.policy_id,
                desc,
                p.members,
                p.user_transport_proto,
                p.user_transport_use,
            )
        })
        .collect();
    assert_eq!(
        pools,
        [
            ("lu", 0x4000_0001, "LeastUsed", 1, 6, 1),
            ("web", 1, "RoundRobin", 3, 132, 0),
            ("wrr", 2, "WeightedRoundRobin", 1, 17, 0),
        ]
    );
    assert_eq!(snap.pools[1].handle_hex, "776562");
    assert!(!snap.pools_truncated && !snap.elements_truncated);

    let ids: Vec<(&str, u32)> = snap.elements.iter().map(|e| (e.pool.as_str(), e.id)).collect();
    assert_eq!(ids, [("lu", 3), ("web", 1), ("web", 2), ("web", 7), ("wrr", 4)]);
    let by_id = |id: u32| snap.elements.iter().find(|e| e.id == id).unwrap();

    let web1 = by_id(1);
    assert_eq!((web1.home_enrp_server, web1.owned, web1.core), (OWN.0, true, 0));
    // The ASAP transport is the association the PE registered over (RFC 5352 §3.1 rule 4).
    assert_eq!(web1.asap_transport_port, Some(5_000));
    assert_eq!(web1.asap_addresses, [ip(9)]);
    assert_eq!((web1.user_transport_proto, web1.user_transport_port), (132, 20_000));
    assert_eq!((web1.user_transport_use, web1.user_addresses.as_slice()), (0, &[ip(9)][..]));
    assert_eq!((web1.policy_id, web1.policy_description.as_str()), (1, "RoundRobin"));
    assert_eq!((web1.policy_weight, web1.policy_load, web1.policy_load_deg), (0, 0, 0));
    assert_eq!(web1.registration_life_ms, 600_000);
    assert_eq!(web1.unreachable_reports, 0);

    let lu = by_id(3);
    assert_eq!(
        (lu.user_transport_proto, lu.user_transport_port, lu.user_transport_use),
        (6, 8_080, 1)
    );
    assert_eq!(
        (lu.policy_id, lu.policy_load, lu.registration_life_ms),
        (0x4000_0001, 0x100, 90_000)
    );
    let wrr = by_id(4);
    assert_eq!((wrr.user_transport_proto, wrr.user_transport_port), (17, 5_353));
    assert_eq!((wrr.policy_id, wrr.policy_weight, wrr.registration_life_ms), (2, 5, 45_000));

    // Learned from the peer: its home, the ASAP transport its Handle Update carried.
    let learned = by_id(7);
    assert_eq!((learned.home_enrp_server, learned.owned), (PEER.0, false));
    assert_eq!(
        (learned.asap_transport_port, learned.asap_addresses.as_slice()),
        (Some(5_007), &[ip(7)][..])
    );
    assert_eq!((learned.user_transport_port, learned.registration_life_ms), (80, 30_000));

    let peers = snap.peers.as_ref().expect("the ENRP core has the peer table");
    assert_eq!(peers.len(), 1);
    let peer = &peers[0];
    assert_eq!(peer.identifier, PEER.0);
    assert_eq!((peer.address, peer.port), (Some(ip(2)), Some(9901)));
    assert_eq!(peer.last_heard_ms, 2_000, "heard at 1 s, snapshot at 3 s");
    assert!(peer.active && peer.connected);
    assert_eq!(peer.checksum, Some(0xbeef));

    let one_pool = snapshot(&s, 0, &Elements::Pool(handle("lu")), at(3 * S));
    assert_eq!(one_pool.elements.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
    assert!(snapshot(&s, 0, &Elements::Omit, at(3 * S)).elements.is_empty());
}

// Goal: removals show in the model, and a deregistration through it is an ASAP one to the
// rest of the registrar: the peers get a Handle Update DEL_PE for our PE; a peer's PE, an
// unknown pool and an unknown id are refused without touching anything. Method: an ASAP
// Deregistration of PE 2, then `deregister` of PE 1, 7, 99 and of a pool that does not exist.
#[test]
fn removals_show_and_deregistration_is_published() {
    let mut s = populated();
    let m = Asap::Deregistration(Deregistration {
        pool_handle: handle("web"),
        pe_id: PoolElementId(2),
    });
    s.handle_message(at(3 * S), PE_ASSOC, &m.emit_to_vec());
    while s.poll_transmit().is_some() {}
    while s.poll_transmit_enrp().is_some() {}
    let web = |s: &Server| -> Vec<u32> {
        let snap = snapshot(s, 0, &Elements::Pool(handle("web")), at(4 * S));
        snap.elements.iter().map(|e| e.id).collect()
    };
    assert_eq!(web(&s), [1, 7]);

    let outcome = deregister(&mut s, 0, at(4 * S), &handle("web"), PoolElementId(1));
    let Deregistered::Removed(row) = outcome else { panic!("{outcome:?}") };
    assert_eq!((row.id, row.home_enrp_server), (1, OWN.0));
    assert_eq!(web(&s), [7]);
    let mut updates = Vec::new();
    while let Some(out) = s.poll_transmit_enrp() {
        updates.push(Enrp::parse(&out.bytes).expect("ENRP bytes"));
    }
    let del = updates.iter().find_map(|m| match m {
        Enrp::HandleUpdate(u) if u.action == UpdateAction::DEL_PE => Some(u),
        _ => None,
    });
    let del = del.expect("a Handle Update DEL_PE to the peer");
    assert_eq!((del.pool_handle, del.pool_element.id), (handle("web"), PoolElementId(1)));
    assert!(s.poll_transmit().is_none(), "nothing is sent to the PE itself");
    assert_eq!(s.stats().deregistrations, 2, "counted as a deregistration");

    let peer = deregister(&mut s, 0, at(4 * S), &handle("web"), PoolElementId(7));
    assert!(matches!(peer, Deregistered::HomedElsewhere(PEER)), "{peer:?}");
    let unknown = deregister(&mut s, 0, at(4 * S), &handle("web"), PoolElementId(99));
    assert!(matches!(unknown, Deregistered::UnknownElement), "{unknown:?}");
    let no_pool = deregister(&mut s, 0, at(4 * S), &handle("nope"), PoolElementId(1));
    assert!(matches!(no_pool, Deregistered::UnknownPool), "{no_pool:?}");
    assert_eq!(web(&s), [7], "refusals change nothing");
}

// Goal: with several cores, a deregistration through the model reaches every other core's
// read replica, as an ASAP one does. Method: core 0 of 2 registers a PE of a pool it owns;
// `deregister` it; the forwards include a replica removal for core 1.
#[test]
fn deregistration_reaches_the_other_cores_replicas() {
    let mut s = Server::new(config(0, 2));
    let pool = (0..100)
        .map(|i| format!("pool-{i}"))
        .find(|name| handlespace::shard_of(&handle(name), 2) == 0)
        .expect("some handle lands on core 0");
    s.handle_up(PE_ASSOC, SocketAddr::new(ip(9), 5_000));
    let pe = element(1, Policy::RoundRobin, UserTransport::Sctp(sctp(20_000, 9)), 600_000);
    register(&mut s, S, &pool, pe);
    while s.poll_forward().is_some() {}
    let outcome = deregister(&mut s, 0, at(2 * S), &handle(&pool), PoolElementId(1));
    assert!(matches!(outcome, Deregistered::Removed(_)), "{outcome:?}");
    let mut removals = Vec::new();
    while let Some((core, m)) = s.poll_forward() {
        if let CrossCore::Replica(ReplicaUpdate::Remove { pool_handle, id }) = m {
            removals.push((core, pool_handle, id));
        }
    }
    assert_eq!(removals, [(1, handle(&pool), PoolElementId(1))]);
}
