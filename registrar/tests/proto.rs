//! The sans-IO ASAP server driven through every procedure with byte-level messages.
//!
//! Each test builds requests as codec Reprs, feeds their *bytes* to `Server::handle_message`,
//! and decodes the bytes the server queued, so the whole wire path is exercised.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::asap::{
    Deregistration, EndpointKeepAliveAck, EndpointUnreachable, HandleResolution, Message,
    Registration,
};
use codec::param::{AddressList, CauseInfo, SctpTransport};
use codec::TransportUse;
use codec::{
    ErrorCause, Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, UserTransport,
};
use handlespace::{Duration, Instant};
use registrar::proto::{CrossCore, ReplicaUpdate, Server, ServerConfig};

const INTERVAL_MS: u64 = 1_000;
const TIMEOUT_MS: u64 = 500;

fn config(core: u16, cores: u16) -> ServerConfig {
    let handlespace = handlespace::Config {
        keep_alive_interval: Duration::from_micros(INTERVAL_MS * 1_000),
        keep_alive_timeout: Duration::from_micros(TIMEOUT_MS * 1_000),
        ..handlespace::Config::default()
    };
    ServerConfig {
        registrar_id: RegistrarId(0x1234_5678),
        core,
        cores,
        handlespace,
        resolution_items_default: 3,
        registration_life_max: Duration::from_micros(3_600_000_000),
        remove_on_session_loss: true,
        seed: 7,
        replicas: true,
        enrp: None,
    }
}

fn ms(v: u64) -> Instant {
    Instant::from_micros(v * 1_000)
}

fn peer(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 40_000 + u16::from(last))
}

fn handle(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

fn element(id: u32, last: u8, policy: Policy) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 300_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))])
                .unwrap(),
        }),
        policy,
        asap_transport: None,
    }
}

fn send(server: &mut Server, now: Instant, assoc: u32, message: Message) {
    server.handle_message(now, assoc, &message.emit_to_vec());
}

/// Everything the server queued for local associations, decoded.
fn replies(server: &mut Server) -> Vec<(u32, Message)> {
    let mut out = Vec::new();
    while let Some(o) = server.poll_transmit() {
        out.push((o.assoc, Message::parse(&o.bytes).expect("the server emits valid ASAP")));
    }
    out
}

fn register(server: &mut Server, now: Instant, assoc: u32, pool: &str, pe: PoolElement) -> Message {
    let message =
        Message::Registration(Registration { pool_handle: handle(pool), pool_element: pe });
    send(server, now, assoc, message);
    let mut got = replies(server);
    assert_eq!(got.len(), 1, "one answer per registration");
    got.pop().unwrap().1
}

fn resolve(server: &mut Server, assoc: u32, pool: &str, items: Option<u32>) -> Message {
    let request =
        HandleResolution { subscribe: false, pool_handle: handle(pool), items_wanted: items };
    send(server, ms(0), assoc, Message::HandleResolution(request));
    replies(server).pop().expect("an answer").1
}

fn accepted(message: &Message) -> bool {
    match message {
        Message::RegistrationResponse(r) => !r.reject && r.error.is_none(),
        other => panic!("expected a Registration Response, got {other:?}"),
    }
}

fn reject_cause(message: &Message) -> ErrorCause {
    match message {
        Message::RegistrationResponse(r) => {
            assert!(r.reject, "R flag set on rejection");
            r.error.as_ref().expect("a cause").causes[0].code
        }
        other => panic!("expected a Registration Response, got {other:?}"),
    }
}

fn reject_info(message: &Message) -> CauseInfo {
    match message {
        Message::RegistrationResponse(r) => {
            r.error.as_ref().expect("a cause").causes[0].info.clone()
        }
        other => panic!("expected a Registration Response, got {other:?}"),
    }
}

fn resolved_ids(message: &Message) -> Vec<u32> {
    match message {
        Message::HandleResolutionResponse(r) => r.pool_elements.iter().map(|e| e.id.0).collect(),
        other => panic!("expected a Handle Resolution Response, got {other:?}"),
    }
}

// Goal: register, resolve and deregister work end to end, and the registrar fills in the home
// registrar (RFC 5352 §3.1). Method: one PE, one pool, then the pool
// disappears and a resolution answers Unknown Pool Handle (§3.3).
#[test]
fn register_resolve_deregister() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    assert!(accepted(&register(
        &mut server,
        ms(0),
        1,
        "EchoPool",
        element(11, 1, Policy::RoundRobin)
    )));
    let answer = resolve(&mut server, 1, "EchoPool", Some(3));
    let Message::HandleResolutionResponse(r) = &answer else { panic!() };
    assert_eq!(r.pool_elements.len(), 1);
    assert_eq!(r.pool_elements[0].home_registrar, RegistrarId(0x1234_5678));
    assert!(r.pool_elements[0].asap_transport.is_none(), "ASAP answers carry none, like RSPLIB");
    // RSPLIB's PUs need the overall policy even for round robin (see convert.rs).
    assert_eq!(r.overall_policy, Some(Policy::RoundRobin));

    let deregistration =
        Deregistration { pool_handle: handle("EchoPool"), pe_id: PoolElementId(11) };
    send(&mut server, ms(1), 1, Message::Deregistration(deregistration));
    let got = replies(&mut server);
    assert!(matches!(&got[0].1, Message::DeregistrationResponse(d) if d.error.is_none()));
    let answer = resolve(&mut server, 1, "EchoPool", None);
    let Message::HandleResolutionResponse(r) = &answer else { panic!() };
    assert_eq!(r.error.as_ref().unwrap().causes[0].code, ErrorCause::UNKNOWN_POOL_HANDLE);
    assert!(r.pool_elements.is_empty());
}

// Goal: the item count of the Handle Resolution option is honoured, never repeats a PE, and the
// answer names the pool's policy. Method: 5 PEs under Random; ask for 3, 1 and 10.
#[test]
fn items_wanted_and_overall_policy() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    for id in 0..5 {
        assert!(accepted(&register(&mut server, ms(0), 1, "P", element(id, 1, Policy::Random))));
    }
    for (wanted, expected) in [(3, 3), (1, 1), (10, 5)] {
        let answer = resolve(&mut server, 1, "P", Some(wanted));
        let mut ids = resolved_ids(&answer);
        assert_eq!(ids.len(), expected);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), expected, "no PE twice in one answer");
        let Message::HandleResolutionResponse(r) = &answer else { panic!() };
        assert_eq!(r.overall_policy, Some(Policy::Random));
    }
}

// Goal: every registration rejection carries its RFC 5354 cause and changes nothing.
// Method: one accepted PE, then an inconsistent policy (0x5), an inconsistent transport type
// (0x7), inconsistent data/control use (0x8), an opaque transport (0x3), a masquerading
// session (0xa), and a full table (0x6).
#[test]
fn registration_rejections() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    server.handle_up(2, peer(2));
    assert!(accepted(&register(&mut server, ms(0), 1, "P", element(1, 1, Policy::RoundRobin))));

    let policy = register(&mut server, ms(0), 1, "P", element(2, 1, Policy::Random));
    assert_eq!(reject_cause(&policy), ErrorCause::INCONSISTENT_POOLING_POLICY);
    // RFC 5354 §3.12.6 and §3.12.8: the pool's policy, and its user transport, as cause info.
    assert_eq!(reject_info(&policy), CauseInfo::Policy(Policy::RoundRobin));

    let mut udp = element(3, 1, Policy::RoundRobin);
    udp.user_transport = UserTransport::Udp { port: 7, address: peer(1).ip() };
    let transport = register(&mut server, ms(0), 1, "P", udp);
    assert_eq!(reject_cause(&transport), ErrorCause::INCONSISTENT_TRANSPORT_TYPE);
    let pool_transport = element(1, 1, Policy::RoundRobin).user_transport;
    assert_eq!(reject_info(&transport), CauseInfo::Transport(pool_transport));

    let mut control = element(4, 1, Policy::RoundRobin);
    if let UserTransport::Sctp(s) = &mut control.user_transport {
        s.transport_use = TransportUse::DATA_PLUS_CONTROL;
    }
    let cause = reject_cause(&register(&mut server, ms(0), 1, "P", control));
    assert_eq!(cause, ErrorCause::INCONSISTENT_DATA_CONTROL_CONFIGURATION);

    let mut opaque = element(5, 1, Policy::RoundRobin);
    opaque.user_transport = UserTransport::Opaque(vec![1, 2, 3, 4]);
    assert_eq!(
        reject_cause(&register(&mut server, ms(0), 1, "Q", opaque)),
        ErrorCause::INVALID_VALUES
    );

    // Session 2 on another host tries to take over PE 1, which session 1 registered.
    let masquerade = register(&mut server, ms(0), 2, "P", element(1, 1, Policy::RoundRobin));
    assert_eq!(reject_cause(&masquerade), ErrorCause::REJECTED_SECURITY);
    let deregistration = Deregistration { pool_handle: handle("P"), pe_id: PoolElementId(1) };
    send(&mut server, ms(0), 2, Message::Deregistration(deregistration));
    let got = replies(&mut server);
    assert!(matches!(&got[0].1, Message::DeregistrationResponse(d) if d.error.is_some()));
    assert_eq!(resolved_ids(&resolve(&mut server, 1, "P", Some(10))), vec![1], "PE 1 survived");

    let mut tiny = config(0, 1);
    tiny.handlespace.limits.pool_elements_max = 1;
    let mut full = Server::new(tiny);
    full.handle_up(1, peer(1));
    assert!(accepted(&register(&mut full, ms(0), 1, "P", element(1, 1, Policy::RoundRobin))));
    let cause =
        reject_cause(&register(&mut full, ms(0), 1, "P", element(2, 1, Policy::RoundRobin)));
    assert_eq!(cause, ErrorCause::LACK_OF_RESOURCES);
}

// Goal: the same session (or the same host) may re-register a PE and change its attributes.
#[test]
fn reregistration_by_owner_is_accepted() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    server.handle_up(3, peer(1));
    assert!(accepted(&register(&mut server, ms(0), 1, "P", element(1, 1, Policy::RoundRobin))));
    assert!(accepted(&register(&mut server, ms(1), 1, "P", element(1, 1, Policy::RoundRobin))));
    // A new association from the PE's own address proves the same transport.
    assert!(accepted(&register(&mut server, ms(2), 3, "P", element(1, 1, Policy::RoundRobin))));
    // The PE now belongs to session 3: closing session 1 must not remove it.
    server.handle_closed(ms(3), 1);
    assert_eq!(resolved_ids(&resolve(&mut server, 3, "P", Some(3))), vec![1]);
    server.handle_closed(ms(4), 3);
    assert_eq!(server.handlespace().element_count(), 0);
}

/// Registers one PE at t=0 and runs until its first keep-alive has been sent; returns the time.
fn until_first_keep_alive(server: &mut Server) -> Instant {
    server.handle_up(1, peer(1));
    assert!(accepted(&register(server, ms(0), 1, "P", element(1, 1, Policy::RoundRobin))));
    let due = server.poll_timeout().expect("an owned PE has a keep-alive timer");
    server.handle_timeout(due);
    let got = replies(server);
    assert_eq!(got.len(), 1);
    let Message::EndpointKeepAlive(k) = &got[0].1 else { panic!("expected a keep-alive") };
    assert_eq!(k.server_id, RegistrarId(0x1234_5678));
    assert_eq!(k.pe_id, Some(PoolElementId(1)));
    due
}

// Goal: boundary pair for the keep-alive timeout (RFC 5352 §3.5): an Ack arriving at
// timeout - 1 ms keeps the PE.
#[test]
fn keep_alive_ack_just_in_time_keeps() {
    let mut server = Server::new(config(0, 1));
    let sent = until_first_keep_alive(&mut server);
    let just_in = Instant::from_micros(sent.micros() + (TIMEOUT_MS - 1) * 1_000);
    server.handle_timeout(just_in);
    let ack = EndpointKeepAliveAck { pool_handle: handle("P"), pe_id: PoolElementId(1) };
    send(&mut server, just_in, 1, Message::EndpointKeepAliveAck(ack));
    server.handle_timeout(Instant::from_micros(sent.micros() + (TIMEOUT_MS + 1) * 1_000));
    assert_eq!(server.handlespace().element_count(), 1);
    assert_eq!(server.stats().keep_alive_timeouts, 0);
    // The next keep-alive is spread ±50 % around one interval after the Ack.
    let next = server.poll_timeout().unwrap().micros() - just_in.micros();
    assert!((INTERVAL_MS * 500..=INTERVAL_MS * 1_500).contains(&next), "next in {next} µs");
}

// Goal: the twin of the test above: no Ack by timeout + 1 ms removes the PE.
#[test]
fn keep_alive_unanswered_removes() {
    let mut server = Server::new(config(0, 1));
    let sent = until_first_keep_alive(&mut server);
    server.handle_timeout(Instant::from_micros(sent.micros() + (TIMEOUT_MS - 1) * 1_000));
    assert_eq!(server.handlespace().element_count(), 1, "still within the timeout");
    server.handle_timeout(Instant::from_micros(sent.micros() + (TIMEOUT_MS + 1) * 1_000));
    assert_eq!(server.handlespace().element_count(), 0);
    assert_eq!(server.stats().keep_alive_timeouts, 1);
}

// Goal: Endpoint Unreachable (RFC 5352 §3.5): each report up to MAX-BAD-PE-REPORT (3) triggers
// a point-to-point keep-alive with H=0; the report that makes the counter exceed it (the
// fourth) removes the PE.
//= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
//= type=test
//# If the counter exceeds the protocol threshold MAX-BAD-PE-REPORT, the ENRP server SHOULD
//# remove the PE from its handlespace.
#[test]
fn unreachable_reports_remove_at_threshold() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    server.handle_up(9, peer(9));
    assert!(accepted(&register(&mut server, ms(0), 1, "P", element(1, 1, Policy::RoundRobin))));
    for report in 1..=4 {
        let u = EndpointUnreachable { pool_handle: handle("P"), pe_id: PoolElementId(1) };
        send(&mut server, ms(report), 9, Message::EndpointUnreachable(u));
        let got = replies(&mut server);
        if report <= 3 {
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, 1, "the probe goes to the PE's own association");
            assert!(matches!(&got[0].1, Message::EndpointKeepAlive(k) if !k.home));
        } else {
            assert!(got.is_empty());
        }
    }
    assert_eq!(server.handlespace().element_count(), 0);
    assert_eq!(server.stats().unreachable_removals, 1);
}

// Goal: malformed input gets an ASAP Error with the matching cause and changes nothing.
// Method: an unknown message type (Unrecognized Message, echoing the message), a truncated
// Registration, and a Registration with a shrunken length field.
#[test]
fn malformed_input_gets_error_causes() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    server.handle_message(ms(0), 1, &[0x7f, 0, 0, 8, 1, 2, 3, 4]);
    let got = replies(&mut server);
    let Message::Error(e) = &got[0].1 else { panic!("expected ASAP Error, got {:?}", got[0].1) };
    assert_eq!(e.error.causes[0].code, ErrorCause::UNRECOGNIZED_MESSAGE);

    let good = Message::Registration(Registration {
        pool_handle: handle("P"),
        pool_element: element(1, 1, Policy::RoundRobin),
    })
    .emit_to_vec();
    for cut in [3, 4, 10, good.len() - 1] {
        let mut bad = good[..cut].to_vec();
        if bad.len() >= 4 {
            let length = u16::try_from(bad.len()).unwrap();
            bad[2..4].copy_from_slice(&length.to_be_bytes());
        }
        server.handle_message(ms(0), 1, &bad);
        let got = replies(&mut server);
        assert_eq!(got.len(), 1, "cut at {cut}");
        assert!(matches!(got[0].1, Message::Error(_)), "cut at {cut}: {:?}", got[0].1);
    }
    assert_eq!(server.handlespace().element_count(), 0);
    assert_eq!(server.stats().decode_errors, 5);
}

// Goal: sharding across cores: a request for a pool on another core is forwarded whole, handled
// there, and its answer comes back to the session's core, after the update of that core's read
// replica. Method: two servers; find a pool owned by core 1; send to core 0; move the queued
// cross-core messages by hand.
#[test]
fn cross_core_forwarding() {
    let mut cores = [Server::new(config(0, 2)), Server::new(config(1, 2))];
    let pool = pool_on(1);
    cores[0].handle_up(5, peer(5));
    let message = Message::Registration(Registration {
        pool_handle: handle(&pool),
        pool_element: element(1, 5, Policy::RoundRobin),
    });
    send(&mut cores[0], ms(0), 5, message);
    assert!(cores[0].poll_transmit().is_none(), "core 0 does not own the pool");
    let (target, request) = cores[0].poll_forward().expect("forwarded");
    assert_eq!(target, 1);
    assert!(request.is_control());
    cores[1].handle_cross_core(ms(0), request);
    assert_eq!(cores[1].handlespace().element_count(), 1);
    let (to, update) = cores[1].poll_forward().expect("the replica update goes first");
    assert_eq!(to, 0);
    assert!(matches!(update, CrossCore::Replica(ReplicaUpdate::Upsert(_))), "{update:?}");
    assert!(update.is_control() && update.must_arrive());
    let (back, reply) = cores[1].poll_forward().expect("the answer goes back");
    assert_eq!(back, 0);
    assert!(!reply.must_arrive());
    cores[0].handle_cross_core(ms(0), update);
    cores[0].handle_cross_core(ms(0), reply);
    let got = replies(&mut cores[0]);
    assert_eq!(got[0].0, 5);
    assert!(accepted(&got[0].1));

    // Closing the session on core 0 tells core 1 to drop its PEs, and core 1 tells the replica.
    cores[0].handle_closed(ms(1), 5);
    let (target, closed) = cores[0].poll_forward().expect("session end broadcast");
    assert_eq!(target, 1);
    cores[1].handle_cross_core(ms(1), closed);
    assert_eq!(cores[1].handlespace().element_count(), 0);
    let (to, update) = cores[1].poll_forward().expect("the replica hears of it");
    assert_eq!(to, 0);
    assert!(matches!(update, CrossCore::Replica(ReplicaUpdate::Remove { .. })), "{update:?}");
}

/// A pool name whose pool lives on `core` of 2.
fn pool_on(core: u16) -> String {
    (0..100)
        .map(|i| format!("pool-{i}"))
        .find(|p| handlespace::shard_of(&handle(p), 2) == core)
        .unwrap()
}

/// Hands everything `from` queued for other cores to them; returns how many messages moved.
fn deliver(cores: &mut [Server], from: usize, now: Instant) -> usize {
    let mut moved = 0;
    while let Some((target, message)) = cores[from].poll_forward() {
        cores[usize::from(target)].handle_cross_core(now, message);
        moved += 1;
    }
    moved
}

// Goal: with read replicas, a core answers a resolution for another core's pool by itself, with
// the bytes the owner would send; every way a PE leaves the owner's shard reaches the replica;
// and a pool the replica lacks (unknown, or removed) is forwarded, so Unknown Pool Handle still
// comes from the owner. Method: two servers, PEs registered at core 1 (the owner) over a
// session of core 1, resolutions on core 0; then a deregistration, a keep-alive timeout and an
// unreachable report each remove one PE.
#[test]
fn replicas_answer_resolutions_locally() {
    let mut cores = [Server::new(config(0, 2)), Server::new(config(1, 2))];
    let pool = pool_on(1);
    cores[1].handle_up(1, peer(1));
    for id in 1..=3 {
        let pe = element(id, 1, Policy::RoundRobin);
        assert!(accepted(&register(&mut cores[1], ms(0), 1, &pool, pe)));
    }
    assert_eq!(deliver(&mut cores, 1, ms(0)), 3, "one upsert per registration");
    assert_eq!(cores[0].stats().replica_updates, 3);

    // Answered on core 0 from its replica, identical to the owner's answer (round robin starts
    // at the same head on both).
    let local = resolve(&mut cores[0], 9, &pool, Some(3));
    assert!(cores[0].poll_forward().is_none(), "nothing crossed cores");
    assert_eq!(cores[0].stats().replica_resolutions, 1);
    let owner = resolve(&mut cores[1], 9, &pool, Some(3));
    assert_eq!(local, owner);
    let Message::HandleResolutionResponse(r) = &local else { panic!("{local:?}") };
    assert!(r.pool_elements.iter().all(|e| e.home_registrar == RegistrarId(0x1234_5678)));
    assert_eq!(resolved_ids(&local).len(), 3);

    // A deregistration, four unreachable reports and a keep-alive timeout: each removal
    // reaches the replica.
    let dereg = Deregistration { pool_handle: handle(&pool), pe_id: PoolElementId(1) };
    send(&mut cores[1], ms(1), 1, Message::Deregistration(dereg));
    replies(&mut cores[1]);
    deliver(&mut cores, 1, ms(1));
    let mut ids = resolved_ids(&resolve(&mut cores[0], 9, &pool, Some(3)));
    ids.sort();
    assert_eq!(ids, [2, 3]);
    for _ in 0..4 {
        let report = EndpointUnreachable { pool_handle: handle(&pool), pe_id: PoolElementId(2) };
        send(&mut cores[1], ms(2), 1, Message::EndpointUnreachable(report));
    }
    replies(&mut cores[1]);
    deliver(&mut cores, 1, ms(2));
    assert_eq!(resolved_ids(&resolve(&mut cores[0], 9, &pool, Some(3))), [3]);
    let due = cores[1].poll_timeout().expect("keep-alive timer");
    cores[1].handle_timeout(due);
    let gone = Instant::from_micros(due.micros() + (TIMEOUT_MS + 1) * 1_000);
    cores[1].handle_timeout(gone);
    assert_eq!(cores[1].handlespace().element_count(), 0);
    replies(&mut cores[1]);
    deliver(&mut cores, 1, gone);
    assert_eq!(cores[0].stats().replica_updates, 6);

    // The pool is gone from the replica: the resolution goes to the owner, which answers
    // Unknown Pool Handle back through core 0.
    let request =
        HandleResolution { subscribe: false, pool_handle: handle(&pool), items_wanted: None };
    send(&mut cores[0], gone, 9, Message::HandleResolution(request));
    assert!(cores[0].poll_transmit().is_none());
    assert_eq!(deliver(&mut cores, 0, gone), 1, "forwarded to the owner");
    assert_eq!(deliver(&mut cores, 1, gone), 1, "the answer comes back");
    let got = replies(&mut cores[0]);
    let Message::HandleResolutionResponse(r) = &got[0].1 else { panic!("{got:?}") };
    assert_eq!(r.error.as_ref().unwrap().causes[0].code, ErrorCause::UNKNOWN_POOL_HANDLE);
    assert_eq!(cores[0].stats().replica_resolutions, 3);
}

// Goal: a PE whose parameter its element's fields cannot re-make keeps the bytes it was
// registered with, and every answer carries it exactly as it carries a re-made one: which of
// the two the registrar stores is never observable. Method: two cores with replicas; on core 1
// one PE registers from the address its user transport names (its ASAP Transport, the
// association's peer, is then at that address: re-made) and one from another address (kept);
// the stored bytes are compared with the Reprs encoded, and resolutions on the owner and on
// the replica with the Reprs as pool users get them.
#[test]
fn a_parameter_the_fields_cannot_re_make_is_kept_and_answered_the_same() {
    let mut cores = [Server::new(config(0, 2)), Server::new(config(1, 2))];
    let pool = pool_on(1);
    let own = RegistrarId(0x1234_5678);
    let (same, other) = (peer(1), peer(6));
    cores[1].handle_up(1, same);
    cores[1].handle_up(2, other);
    assert!(accepted(&register(&mut cores[1], ms(0), 1, &pool, element(1, 1, Policy::RoundRobin))));
    assert!(accepted(&register(&mut cores[1], ms(0), 2, &pool, element(2, 5, Policy::RoundRobin))));
    deliver(&mut cores, 1, ms(0));
    assert_eq!(cores[1].handlespace().parameters_kept(), 1, "the second PE's");

    let stored = |id: u32, last: u8, from: SocketAddr| {
        let mut pe = element(id, last, Policy::RoundRobin);
        pe.home_registrar = own;
        pe.asap_transport = Some(SctpTransport {
            port: from.port(),
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[from.ip()]).unwrap(),
        });
        pe
    };
    let expected = [stored(1, 1, same), stored(2, 5, other)];
    for (pe, kept) in expected.iter().zip([false, true]) {
        let element = cores[1].handlespace().element(&handle(&pool), pe.id).unwrap();
        assert_eq!(element.keeps_parameter(), kept);
        assert_eq!(&element.wire()[..], &pe.encode()[..]);
        assert_eq!(element.asap_transport(), pe.asap_transport);
    }
    let for_users: Vec<PoolElement> =
        expected.iter().map(|pe| PoolElement { asap_transport: None, ..pe.clone() }).collect();
    let local = resolve(&mut cores[0], 9, &pool, Some(2));
    let owner = resolve(&mut cores[1], 9, &pool, Some(2));
    assert_eq!(local, owner);
    let Message::HandleResolutionResponse(r) = &local else { panic!("{local:?}") };
    let mut got = r.pool_elements.clone();
    got.sort_by_key(|pe| pe.id);
    assert_eq!(got, for_users);
}

// Goal: a replica that reaches its own bounds drops the whole pool rather than answer with
// part of it, and that pool's resolutions then go to its owner. Method: 3 cores with room for
// 2 PEs per handlespace; cores 1 and 2 each fill their shard with one pool of 2 PEs, so core
// 0's replica (which holds both shards) has room for only the first pool it hears of.
#[test]
fn a_full_replica_forwards_the_pool_it_cannot_hold() {
    let config = |core| {
        let mut c = config(core, 3);
        c.handlespace.limits.pool_elements_max = 2;
        c.handlespace.limits.pool_elements_per_pool_max = 2;
        c
    };
    let mut cores = [Server::new(config(0)), Server::new(config(1)), Server::new(config(2))];
    let owned_by = |core: u16| {
        (0..100)
            .map(|i| format!("pool-{i}"))
            .find(|p| handlespace::shard_of(&handle(p), 3) == core)
            .unwrap()
    };
    let pools = [owned_by(1), owned_by(2)];
    for (owner, pool) in [(1, &pools[0]), (2, &pools[1])] {
        cores[owner].handle_up(1, peer(1));
        for id in 1..=2 {
            let pe = element(id, 1, Policy::RoundRobin);
            assert!(accepted(&register(&mut cores[owner], ms(0), 1, pool, pe)));
        }
        deliver(&mut cores, owner, ms(0));
    }
    assert_eq!(cores[0].stats().replica_updates, 4);
    assert_eq!(cores[0].stats().replica_elements, 2, "one pool fits");

    // The pool that fit is answered locally; the other crosses to its owner, whole.
    assert_eq!(resolved_ids(&resolve(&mut cores[0], 9, &pools[0], Some(8))).len(), 2);
    assert!(cores[0].poll_forward().is_none());
    let request = HandleResolution {
        subscribe: false,
        pool_handle: handle(&pools[1]),
        items_wanted: Some(8),
    };
    send(&mut cores[0], ms(0), 9, Message::HandleResolution(request));
    assert_eq!(deliver(&mut cores, 0, ms(0)), 1, "forwarded to core 2");
    assert_eq!(deliver(&mut cores, 2, ms(0)), 1);
    let got = replies(&mut cores[0]);
    assert_eq!(resolved_ids(&got[0].1).len(), 2, "the owner's whole pool");

    // Later changes to the dropped pool do not bring a partial copy back.
    let dereg = Deregistration { pool_handle: handle(&pools[1]), pe_id: PoolElementId(1) };
    send(&mut cores[2], ms(1), 1, Message::Deregistration(dereg));
    replies(&mut cores[2]);
    let pe = element(3, 1, Policy::RoundRobin);
    assert!(accepted(&register(&mut cores[2], ms(1), 1, &pools[1], pe)));
    deliver(&mut cores, 2, ms(1));
    assert_eq!(cores[0].stats().replica_elements, 2);
}

// Goal: `replicas: false` keeps the forwarding design: no replica updates, every resolution for
// another core's pool crosses. Method: as above with replicas off.
#[test]
fn without_replicas_resolutions_are_forwarded() {
    let config = |core| ServerConfig { replicas: false, ..config(core, 2) };
    let mut cores = [Server::new(config(0)), Server::new(config(1))];
    let pool = pool_on(1);
    cores[1].handle_up(1, peer(1));
    assert!(accepted(&register(&mut cores[1], ms(0), 1, &pool, element(1, 1, Policy::RoundRobin))));
    assert_eq!(deliver(&mut cores, 1, ms(0)), 0, "no replica to update");
    let request =
        HandleResolution { subscribe: false, pool_handle: handle(&pool), items_wanted: None };
    send(&mut cores[0], ms(0), 9, Message::HandleResolution(request));
    assert_eq!(deliver(&mut cores, 0, ms(0)), 1);
    assert_eq!(deliver(&mut cores, 1, ms(0)), 1);
    assert_eq!(resolved_ids(&replies(&mut cores[0])[0].1), [1]);
    assert_eq!(cores[0].stats().replica_resolutions, 0);
}

// Goal: a full cross-core queue is an error cause to the peer, not a silent drop (STYLE §5).
// Method: take a request the server forwarded, hand it back as refused, and decode the answer.
#[test]
fn full_cross_core_queue_answers_lack_of_resources() {
    let mut core0 = Server::new(config(0, 2));
    let pool = pool_on(1);
    core0.handle_up(5, peer(5));
    let message = Message::Registration(Registration {
        pool_handle: handle(&pool),
        pool_element: element(1, 5, Policy::RoundRobin),
    });
    send(&mut core0, ms(0), 5, message);
    let (_, request) = core0.poll_forward().expect("forwarded");
    core0.refuse(request);
    let got = replies(&mut core0);
    assert_eq!(got[0].0, 5);
    assert_eq!(reject_cause(&got[0].1), ErrorCause::LACK_OF_RESOURCES);
    assert_eq!(core0.stats().dropped, 1);
}

// Goal: boundary pair for the registration life (RFC 5354 §3.10): a PE registered for 300 ms is
// still there at 299 ms and gone at 301 ms, without any deregistration.
#[test]
fn registration_life_expires() {
    let mut server = Server::new(config(0, 1));
    server.handle_up(1, peer(1));
    let mut pe = element(1, 1, Policy::RoundRobin);
    pe.registration_life_ms = 300;
    assert!(accepted(&register(&mut server, ms(0), 1, "P", pe)));
    server.handle_timeout(ms(299));
    assert_eq!(server.handlespace().element_count(), 1);
    server.handle_timeout(ms(301));
    assert_eq!(server.handlespace().element_count(), 0);
    assert_eq!(server.stats().lifetime_expiries, 1);
}
