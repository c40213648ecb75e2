//! Live pool updates (RFC 5352 §2.2.5, the S bit), byte-level through the sans-IO server: the
//! A bit on the answer, a push of the whole pool on every change of its content, one push per
//! turn, the end of a subscription with its pool or its association, and a pool owned by
//! another core followed through the read replica.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::asap::{
    Deregistration, HandleResolution, HandleResolutionResponse, Message, Registration,
};
use codec::param::{AddressList, SctpTransport};
use codec::{ErrorCause, Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId};
use codec::{TransportUse, UserTransport};
use handlespace::{shard_of, Duration, Instant};
use registrar::proto::{Server, ServerConfig};

fn server(core: u16, cores: u16) -> Server {
    Server::new(ServerConfig {
        registrar_id: RegistrarId(0x5eed),
        core,
        cores,
        handlespace: handlespace::Config::default(),
        resolution_items_default: 3,
        registration_life_max: Duration::from_micros(3_600_000_000),
        remove_on_session_loss: true,
        seed: 1,
        replicas: true,
        enrp: None,
    })
}

const NOW: Instant = Instant::from_micros(0);

fn pool(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

fn element(id: u32, load: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 300_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]).unwrap(),
        }),
        policy: Policy::LeastUsed { load },
        asap_transport: None,
    }
}

/// Associations: 1 and 2 are PUs, 10 + n the PE with id n.
fn up(server: &mut Server, assoc: u32) {
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 40_000 + assoc as u16);
    server.handle_up(assoc, peer);
}

fn register(server: &mut Server, name: &str, id: u32, load: u32) {
    let m = Registration { pool_handle: pool(name), pool_element: element(id, load) };
    server.handle_message(NOW, 10 + id, &Message::Registration(m).emit_to_vec());
}

fn deregister(server: &mut Server, name: &str, id: u32) {
    let m = Deregistration { pool_handle: pool(name), pe_id: PoolElementId(id) };
    server.handle_message(NOW, 10 + id, &Message::Deregistration(m).emit_to_vec());
}

fn resolve(server: &mut Server, assoc: u32, name: &str, subscribe: bool) {
    let m = HandleResolution { subscribe, pool_handle: pool(name), items_wanted: None };
    server.handle_message(NOW, assoc, &Message::HandleResolution(m).emit_to_vec());
}

/// The Handle Resolution Responses queued for association `assoc` (the rest is dropped).
fn responses(server: &mut Server, assoc: u32) -> Vec<HandleResolutionResponse> {
    let mut out = Vec::new();
    while let Some(o) = server.poll_transmit() {
        if o.assoc != assoc {
            continue;
        }
        match Message::parse(&o.bytes).expect("the server emits valid ASAP") {
            Message::HandleResolutionResponse(r) => out.push(r),
            other => panic!("expected a Handle Resolution Response, got {other:?}"),
        }
    }
    out
}

fn ids(response: &HandleResolutionResponse) -> Vec<u32> {
    let mut ids: Vec<u32> = response.pool_elements.iter().map(|pe| pe.id.0).collect();
    ids.sort_unstable();
    ids
}

/// One core with PUs 1 and 2 and PEs 1..=3 associated.
fn one_core() -> Server {
    let mut s = server(0, 1);
    for assoc in [1, 2, 11, 12, 13] {
        up(&mut s, assoc);
    }
    s
}

#[test]
fn a_subscription_is_accepted_with_the_a_bit_and_each_change_pushes_the_whole_pool() {
    let mut s = one_core();
    register(&mut s, "web", 1, 10);
    responses(&mut s, 1);
    resolve(&mut s, 1, "web", true);
    let answer = responses(&mut s, 1);
    assert_eq!(answer.len(), 1);
    assert!(answer[0].accept_updates, "the A bit says the subscription holds");
    assert_eq!(ids(&answer[0]), vec![1]);

    register(&mut s, "web", 2, 20);
    let push = responses(&mut s, 1);
    assert_eq!(push.len(), 1, "a new PE: one push");
    assert!(push[0].accept_updates && push[0].error.is_none());
    assert_eq!(ids(&push[0]), vec![1, 2], "the whole pool, not only the change");

    register(&mut s, "web", 2, 20);
    assert!(responses(&mut s, 1).is_empty(), "a re-registration with the same content");

    register(&mut s, "web", 2, 25);
    let push = responses(&mut s, 1);
    assert_eq!(push.len(), 1, "a re-registration with a new load is a change");
    let pe2 = push[0].pool_elements.iter().find(|pe| pe.id.0 == 2).unwrap();
    assert_eq!(pe2.policy, Policy::LeastUsed { load: 25 });

    deregister(&mut s, "web", 1);
    assert_eq!(ids(&responses(&mut s, 1)[0]), vec![2]);
    assert_eq!(s.stats().subscriptions, 1);
    assert_eq!(s.stats().subscription_pushes, 3);
}

#[test]
fn a_pool_that_disappears_gets_a_negative_push_and_no_update_after() {
    let mut s = one_core();
    register(&mut s, "web", 1, 0);
    resolve(&mut s, 1, "web", true);
    responses(&mut s, 1);
    deregister(&mut s, "web", 1);
    let push = responses(&mut s, 1);
    assert_eq!(push.len(), 1);
    let error = push[0].error.as_ref().expect("the pool is gone");
    assert_eq!(error.causes[0].code, ErrorCause::UNKNOWN_POOL_HANDLE);
    assert_eq!(s.stats().subscriptions, 0, "the negative push ends the subscription");
    register(&mut s, "web", 1, 0);
    assert!(responses(&mut s, 1).is_empty(), "no update once the pool is recreated");
}

#[test]
fn a_negative_answer_creates_no_subscription() {
    let mut s = one_core();
    resolve(&mut s, 1, "nobody", true);
    let answer = responses(&mut s, 1);
    assert!(!answer[0].accept_updates && answer[0].error.is_some());
    register(&mut s, "nobody", 1, 0);
    assert!(responses(&mut s, 1).is_empty());
    assert_eq!(s.stats().subscriptions_refused, 1);
}

#[test]
fn a_resolution_without_s_neither_subscribes_nor_cancels() {
    let mut s = one_core();
    register(&mut s, "web", 1, 0);
    resolve(&mut s, 2, "web", false);
    assert!(!responses(&mut s, 2)[0].accept_updates);
    resolve(&mut s, 1, "web", true);
    resolve(&mut s, 1, "web", false);
    let answers = responses(&mut s, 1);
    assert!(answers[0].accept_updates && !answers[1].accept_updates);
    register(&mut s, "web", 2, 0);
    let mut all = Vec::new();
    while let Some(o) = s.poll_transmit() {
        all.push(o.assoc);
    }
    assert!(all.contains(&1), "still subscribed: {all:?}");
    assert!(!all.contains(&2), "the plain resolver hears nothing: {all:?}");
}

#[test]
fn changes_in_one_turn_are_one_push_per_subscriber() {
    let mut s = one_core();
    register(&mut s, "web", 1, 0);
    resolve(&mut s, 1, "web", true);
    resolve(&mut s, 2, "web", true);
    responses(&mut s, 0);
    register(&mut s, "web", 2, 0);
    register(&mut s, "web", 3, 0);
    deregister(&mut s, "web", 1);
    let mut pushes = Vec::new();
    while let Some(o) = s.poll_transmit() {
        if let Ok(Message::HandleResolutionResponse(r)) = Message::parse(&o.bytes) {
            pushes.push((o.assoc, ids(&r)));
        }
    }
    assert_eq!(pushes, vec![(1, vec![2, 3]), (2, vec![2, 3])]);
}

#[test]
fn the_end_of_the_association_ends_its_subscriptions() {
    let mut s = one_core();
    register(&mut s, "web", 1, 0);
    resolve(&mut s, 1, "web", true);
    resolve(&mut s, 2, "web", true);
    responses(&mut s, 0);
    s.handle_closed(NOW, 1);
    assert_eq!(s.stats().subscriptions, 1);
    register(&mut s, "web", 2, 0);
    let mut to = Vec::new();
    while let Some(o) = s.poll_transmit() {
        to.push(o.assoc);
    }
    assert!(to.contains(&2) && !to.contains(&1), "{to:?}");
}

#[test]
fn a_pool_of_another_core_is_followed_through_the_replica() {
    let mut cores = [server(0, 2), server(1, 2)];
    let name = (0..).map(|i| format!("pool-{i}")).find(|n| shard_of(&pool(n), 2) == 0).unwrap();
    up(&mut cores[0], 11);
    up(&mut cores[0], 12);
    up(&mut cores[1], 1);
    let deliver = |cores: &mut [Server; 2]| {
        while let Some((to, m)) = cores[0].poll_forward() {
            cores[to as usize].handle_cross_core(NOW, m);
        }
        while let Some((to, m)) = cores[1].poll_forward() {
            cores[to as usize].handle_cross_core(NOW, m);
        }
    };
    register(&mut cores[0], &name, 1, 0);
    deliver(&mut cores);
    resolve(&mut cores[1], 1, &name, true);
    let answer = responses(&mut cores[1], 1);
    assert!(answer[0].accept_updates, "answered from core 1's replica, subscribed there");
    register(&mut cores[0], &name, 2, 0);
    assert!(responses(&mut cores[1], 1).is_empty(), "nothing before the replica hears of it");
    deliver(&mut cores);
    assert_eq!(ids(&responses(&mut cores[1], 1)[0]), vec![1, 2]);
    cores[0].handle_closed(NOW, 11);
    cores[0].handle_closed(NOW, 12);
    deliver(&mut cores);
    let push = responses(&mut cores[1], 1);
    assert_eq!(push.len(), 1, "both PEs left in one turn of core 1");
    assert!(push[0].error.is_some(), "the pool went with its PEs' associations");
}
