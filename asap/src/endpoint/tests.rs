//! The endpoint's procedures, byte for byte: every message the endpoint sends is compared
//! with codec's encoding of the message the RFC asks for, and every registrar answer is built
//! with codec. Time is a value; nothing sleeps.

use std::net::SocketAddr;

use codec::asap::{
    Deregistration, DeregistrationResponse, EndpointKeepAlive, EndpointKeepAliveAck,
    HandleResolution, HandleResolutionResponse, Message, Registration,
};
use codec::param::{OperationalError, Policy};
use codec::{ErrorCause, PoolElement, PoolElementId, RegistrarId};
use transport::AssocId;

use super::*;
use crate::testing::{pool, registration_response, resolution_response, user_transport};

const T2: Duration = Duration::from_secs(30);

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 3863))
}

fn config(registrars: &[SocketAddr]) -> EndpointConfig {
    let mut c = EndpointConfig::default();
    c.hunt.registrars = registrars.to_vec();
    c.hunt.parallel_max = 1;
    c.stale_cache = Duration::from_micros(1_000);
    c
}

fn at(us: u64) -> Instant {
    Instant::from_micros(us)
}

fn pe_config(id: u32) -> PeConfig {
    let mut c = PeConfig::new(pool("p"), user_transport(), Policy::RoundRobin);
    c.id = Some(PoolElementId(id));
    c.registration_life = Duration::from_secs(60);
    c
}

/// Answers the endpoint's next connect with association `assoc`, and brings it up.
fn bring_up(ep: &mut Endpoint, now: Instant, assoc: u32) -> SocketAddr {
    let remote = ep.poll_connect().expect("the endpoint hunts");
    ep.handle_connect_started(remote, AssocId(assoc));
    ep.handle_up(now, AssocId(assoc), remote);
    remote
}

fn sent(ep: &mut Endpoint) -> Vec<(u32, Message)> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| (t.assoc.0, Message::parse(&t.bytes).expect("we send valid ASAP")))
        .collect()
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn reply(ep: &mut Endpoint, now: Instant, assoc: u32, m: &Message) {
    ep.handle_data(now, AssocId(assoc), &m.emit_to_vec());
}

fn registration(id: u32, policy: Policy) -> Message {
    let pool_element = PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 60_000,
        user_transport: user_transport(),
        policy,
        asap_transport: None,
    };
    Message::Registration(Registration { pool_handle: pool("p"), pool_element })
}

fn keep_alive(server: u32, id: u32, home: bool) -> Message {
    Message::EndpointKeepAlive(EndpointKeepAlive {
        home,
        server_id: RegistrarId(server),
        pool_handle: pool("p"),
        pe_id: Some(PoolElementId(id)),
    })
}

fn ack(id: u32) -> Message {
    Message::EndpointKeepAliveAck(EndpointKeepAliveAck {
        pool_handle: pool("p"),
        pe_id: PoolElementId(id),
    })
}

/// An endpoint with PE 5 registered over association 1 at time 0.
fn registered() -> (Endpoint, PeHandle) {
    let mut ep = Endpoint::new(config(&[addr(1), addr(2)]), 7);
    let pe = ep.register(at(0), pe_config(5)).unwrap();
    bring_up(&mut ep, at(0), 1);
    assert_eq!(sent(&mut ep), [(1, registration(5, Policy::RoundRobin))]);
    reply(&mut ep, at(0), 1, &registration_response("p", 5, None));
    let found = Event::RegistrarFound { assoc: AssocId(1), peer: addr(1) };
    assert_eq!(events(&mut ep), [found, Event::Registered { pe, id: PoolElementId(5) }]);
    (ep, pe)
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# If the PE has
//# not established its Home ENRP server, it MUST follow the procedures
//# specified in Section 3.6.
// Goal: a PE with no home hunts first, then sends exactly the Registration R2 asks for (pool
// handle, fixed id, life, user transport, policy; no ASAP transport) and hears Registered.
// Method: `registered()` compares the bytes and events.
#[test]
fn registers_after_the_hunt() {
    let (ep, pe) = registered();
    let fsm = ep.pool_element(pe).unwrap();
    assert_eq!(*fsm.state(), PeState::Registered { assoc: AssocId(1) });
    assert_eq!(ep.home(), Some(AssocId(1)));
}

// Goal: a random PE id comes from the injected seed, so runs replay. Method: two endpoints
// with one seed agree, a third with another seed differs.
#[test]
fn random_pe_id_is_seeded() {
    let id = |seed| {
        let mut ep = Endpoint::new(config(&[addr(1)]), seed);
        let mut c = pe_config(0);
        c.id = None;
        let pe = ep.register(at(0), c).unwrap();
        ep.pool_element(pe).unwrap().id()
    };
    assert_eq!(id(1), id(1));
    assert_ne!(id(1), id(2));
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# The PE MUST NOT re-
//# attempt registration without correcting the error condition.
// Goal: a refusal surfaces its RFC 5354 cause (in words through the blocking error), the PE
// does not retry by itself, and retries once its policy changed. Method: refuse with
// Non-unique PE Identifier, run timers far ahead, then change the policy.
#[test]
fn refusal_names_the_cause_and_waits_for_a_change() {
    let mut ep = Endpoint::new(config(&[addr(1)]), 7);
    let pe = ep.register(at(0), pe_config(5)).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    let refusal = registration_response("p", 5, Some(ErrorCause::NON_UNIQUE_PE_IDENTIFIER));
    reply(&mut ep, at(1), 1, &refusal);
    let failure = Failure::Refused(ErrorCause::NON_UNIQUE_PE_IDENTIFIER);
    assert_eq!(events(&mut ep)[1], Event::RegistrationFailed { pe, failure });
    let words =
        crate::blocking::BlockingError::RegistrationRefused(ErrorCause::NON_UNIQUE_PE_IDENTIFIER)
            .to_string();
    assert!(words.contains("NonUniquePeIdentifier (cause 0x0004)"), "{words}");
    ep.handle_timeout(at(3_600_000_000));
    assert_eq!(sent(&mut ep), []);
    ep.set_policy(at(2), pe, Policy::WeightedRoundRobin { weight: 3 }).unwrap();
    assert_eq!(sent(&mut ep), [(1, registration(5, Policy::WeightedRoundRobin { weight: 3 }))]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# After successful registration, the PE MUST start a T4-reregistration
//# timer.  At its expiration, a re-registration SHOULD be made
// Goal: the PE re-registers, with the same id, at exactly T4 and not before; renewals are
// quiet. Method: life 60 s gives T4 = 40 s; boundary pair at 40 s - 1 µs and 40 s.
#[test]
fn reregisters_at_t4() {
    let (mut ep, _) = registered();
    let t4 = Duration::from_secs(40).as_micros();
    assert_eq!(ep.poll_timeout(), Some(at(t4)));
    ep.handle_timeout(at(t4 - 1));
    assert_eq!(sent(&mut ep), []);
    ep.handle_timeout(at(t4));
    assert_eq!(sent(&mut ep), [(1, registration(5, Policy::RoundRobin))]);
    reply(&mut ep, at(t4 + 1), 1, &registration_response("p", 5, None));
    assert_eq!(events(&mut ep), []);
    assert_eq!(ep.poll_timeout(), Some(at(2 * t4 + 1)));
}

// Goal: a configured re-registration interval wins over the RFC default. Method: 5 s.
#[test]
fn configured_reregistration_interval() {
    let mut c = pe_config(5);
    c.reregistration = Some(Duration::from_secs(5));
    assert_eq!(c.reregistration_interval(), Duration::from_secs(5));
    c.reregistration = None;
    c.registration_life = Duration::from_secs(3_600);
    assert_eq!(c.reregistration_interval(), Duration::from_secs(600));
    c.registration_life = Duration::from_secs(10);
    assert_eq!(c.reregistration_interval(), Duration::from_secs(5));
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# At any time, a registered PE MAY wish to re-register to either update
//# its member selection Policy Value or registration expiration time.
//# When re-registering, the PE MUST use the same PE identifier.
// Goal: a new load value re-registers at once with the same id. Method: Least Used load 7.
#[test]
fn policy_value_change_reregisters() {
    let (mut ep, pe) = registered();
    ep.set_policy(at(10), pe, Policy::LeastUsed { load: 7 }).unwrap();
    assert_eq!(sent(&mut ep), [(1, registration(5, Policy::LeastUsed { load: 7 }))]);
    reply(&mut ep, at(11), 1, &registration_response("p", 5, None));
    assert_eq!(events(&mut ep), [], "a renewal is quiet");
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.7
//= type=test
//# Regardless of
//# the setting of the 'H' bit, an ASAP Endpoint MUST respond with an
//# ASAP_ENDPOINT_KEEP_ALIVE_ACK to any ASAP_ENDPOINT_KEEP_ALIVE messages
//# that arrive.
// Goal: keep-alives are answered on their association without the user, and one for a PE
// we do not have is dropped (KA1). Method: two keep-alives over association 1.
#[test]
fn keep_alive_answered_automatically() {
    let (mut ep, _) = registered();
    reply(&mut ep, at(5), 1, &keep_alive(9, 5, false));
    reply(&mut ep, at(5), 1, &keep_alive(9, 6, false));
    assert_eq!(sent(&mut ep), [(1, ack(5))]);
    assert_eq!(events(&mut ep), []);
    assert_eq!(ep.pool_element(PeHandle(0)).unwrap().home_registrar(), Some(RegistrarId(9)));
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.4
//= type=test
//# KA2.4)  If the H flag in the received ASAP_ENDPOINT_KEEP_ALIVE
//# message is set, and the Server Identifier in the message is NOT
//# the identity of your Home ENRP server (or it is not set, e.g.,
//# you have a no Home ENRP server) adopt the sender of the
//# ASAP_ENDPOINT_KEEP_ALIVE message as the new Home ENRP server.
// Goal: a keep-alive with H from a registrar that took the PE over is answered on its own
// association, surfaces HomeChanged once, and moves the PE's re-registrations there.
// Method: registrar 9 is home over association 1; registrar 12 connects as association 2.
#[test]
fn keep_alive_with_h_flag_changes_home() {
    let (mut ep, pe) = registered();
    reply(&mut ep, at(5), 1, &keep_alive(9, 5, false));
    sent(&mut ep);
    ep.handle_up(at(6), AssocId(2), addr(3));
    reply(&mut ep, at(7), 2, &keep_alive(12, 5, true));
    assert_eq!(sent(&mut ep), [(2, ack(5))]);
    let changed = Event::HomeChanged { pe, registrar: RegistrarId(12), assoc: AssocId(2) };
    assert_eq!(events(&mut ep), [changed]);
    reply(&mut ep, at(8), 2, &keep_alive(12, 5, true));
    assert_eq!(sent(&mut ep), [(2, ack(5))]);
    assert_eq!(events(&mut ep), [], "the same home twice is no change");
    assert_eq!(ep.home(), Some(AssocId(2)));
    ep.handle_timeout(at(Duration::from_secs(40).as_micros()));
    assert_eq!(sent(&mut ep), [(2, registration(5, Policy::RoundRobin))]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
//= type=test
//# D3)  Send the ASAP_DEREGISTRATION message to the Home ENRP server
//# using the PE's SCTP association.
// Goal: deregistration sends D1-D2's message, hears Deregistered, and stops answering
// keep-alives and re-registering. Method: deregister PE 5, answer, probe it afterwards.
#[test]
fn deregisters() {
    let (mut ep, pe) = registered();
    ep.deregister(at(10), pe).unwrap();
    let d = Deregistration { pool_handle: pool("p"), pe_id: PoolElementId(5) };
    assert_eq!(sent(&mut ep), [(1, Message::Deregistration(d))]);
    let r = DeregistrationResponse { pool_handle: pool("p"), pe_id: PoolElementId(5), error: None };
    reply(&mut ep, at(11), 1, &Message::DeregistrationResponse(r));
    assert_eq!(events(&mut ep), [Event::Deregistered { pe }]);
    reply(&mut ep, at(12), 1, &keep_alive(9, 5, false));
    assert_eq!(sent(&mut ep), []);
    assert_eq!(ep.poll_timeout(), None);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
//= type=test
//# At its startup, or when it fails to communicate with its Home ENRP
//# server (i.e., timed out on an ENRP request), a PE or PU MUST
//# establish a new Home ENRP server
// Goal: when the home's association fails, the PE hunts and registers again, with the same
// id, at the next registrar. Method: association 1 closes; association 2 to the second
// configured registrar comes up.
#[test]
fn registers_again_after_home_failure() {
    let (mut ep, pe) = registered();
    ep.handle_closed(at(100), AssocId(1));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    assert_eq!(bring_up(&mut ep, at(101), 2), addr(2));
    assert_eq!(sent(&mut ep), [(2, registration(5, Policy::RoundRobin))]);
    reply(&mut ep, at(102), 2, &registration_response("p", 5, None));
    let found = Event::RegistrarFound { assoc: AssocId(2), peer: addr(2) };
    assert_eq!(events(&mut ep), [found, Event::Registered { pe, id: PoolElementId(5) }]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# If the T2-registration timer expires before receiving an
//# ASAP_REGISTRATION_RESPONSE message, or a SEND.FAILURE notification is
//# received from the SCTP layer, the PE shall start the Server Hunt
//# procedure (see Section 3.6) in an attempt to get service from a
//# different ENRP server.
// Goal: an unanswered Registration aborts that registrar at exactly T2 and hunts; after
// MAX-REG-ATTEMPT timeouts the user hears TimedOut. Method: boundary pair at T2 - 1 µs and
// T2, then a second registrar that stays silent too.
#[test]
fn registration_timeout_hunts_then_gives_up() {
    let mut ep = Endpoint::new(config(&[addr(1), addr(2)]), 7);
    let pe = ep.register(at(0), pe_config(5)).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    events(&mut ep);
    ep.handle_timeout(at(T2.as_micros() - 1));
    assert_eq!(ep.poll_abort(), None);
    ep.handle_timeout(at(T2.as_micros()));
    assert_eq!(ep.poll_abort(), Some(AssocId(1)));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    bring_up(&mut ep, at(T2.as_micros() + 1), 2);
    assert_eq!(sent(&mut ep), [(2, registration(5, Policy::RoundRobin))]);
    events(&mut ep);
    ep.handle_timeout(at(2 * T2.as_micros() + 1));
    let failure = Failure::TimedOut;
    assert_eq!(events(&mut ep), [Event::RegistrationFailed { pe, failure }]);
}

fn resolution_request() -> Message {
    Message::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: pool("p"),
        items_wanted: None,
    })
}

/// A PU endpoint with a home over association 1.
fn pool_user() -> Endpoint {
    let mut ep = Endpoint::new(config(&[addr(1), addr(2)]), 7);
    ep.start(at(0));
    bring_up(&mut ep, at(0), 1);
    events(&mut ep);
    ep
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
//= type=test
//# C2)  Have a stale timeout timer associated with each cache entry.  If
//# the cache entry is determined to be stale upon a cache hit, a
//# handle resolution message SHOULD be sent so the cache can be
//# updated.
// Goal: a resolution is answered from the cache until, and not at, the stale time; at the
// stale time a new Handle Resolution goes out. Method: stale value 1 000 µs, boundary pair.
#[test]
fn resolution_cached_until_stale() {
    let mut ep = pool_user();
    assert_eq!(ep.resolve(at(10), pool("p")), Ok(Resolution::Pending));
    assert_eq!(ep.resolve(at(11), pool("p")), Ok(Resolution::Pending));
    assert_eq!(sent(&mut ep), [(1, resolution_request())], "one request for both");
    reply(&mut ep, at(20), 1, &resolution_response("p", &[1, 2]));
    let Message::HandleResolutionResponse(r) = resolution_response("p", &[1, 2]) else {
        unreachable!()
    };
    let resolved = Event::Resolved { pool_handle: pool("p"), elements: r.pool_elements.clone() };
    assert_eq!(events(&mut ep), [resolved]);
    let cached = Resolution::Cached(r.pool_elements);
    assert_eq!(ep.resolve(at(1_019), pool("p")), Ok(cached));
    assert_eq!(sent(&mut ep), []);
    assert_eq!(ep.resolve(at(1_020), pool("p")), Ok(Resolution::Pending));
    assert_eq!(sent(&mut ep), [(1, resolution_request())]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
//= type=test
//# If the named pool does not exist in the handlespace, the ENRP server
//# MUST reject the handle resolution request by responding with an
//# ASAP_HANDLE_RESOLUTION_RESPONSE message carrying an Unknown Pool
//# Handle error.
// Goal: Unknown Pool Handle reaches the user as a failure with that cause. Method: answer
// a resolution with the error.
#[test]
fn unknown_pool_fails_the_resolution() {
    let mut ep = pool_user();
    ep.resolve(at(10), pool("p")).unwrap();
    sent(&mut ep);
    let r = HandleResolutionResponse {
        accept_updates: false,
        pool_handle: pool("p"),
        overall_policy: None,
        pool_elements: vec![],
        error: Some(OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE)),
    };
    reply(&mut ep, at(11), 1, &Message::HandleResolutionResponse(r));
    let failure = Failure::Refused(ErrorCause::UNKNOWN_POOL_HANDLE);
    assert_eq!(events(&mut ep), [Event::ResolutionFailed { pool_handle: pool("p"), failure }]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.2
//= type=test
//# When the T1-ENRPrequest timer expires, the ASAP Endpoint should re-
//# send the original request to the ENRP server and restart the T1-
//# ENRPrequest timer.  In parallel, the ASAP Endpoint should begin the
//# ENRP server hunt procedures described in Section 3.6.
// Goal: an unanswered resolution hunts and is sent again at the new home; after
// MAX-REQUEST-RETRANSMIT timeouts the user hears TimedOut. Method: boundary pair at T1.
#[test]
fn resolution_timeout_hunts_and_resends() {
    let mut ep = pool_user();
    ep.resolve(at(0), pool("p")).unwrap();
    sent(&mut ep);
    let t1 = Duration::from_secs(15).as_micros();
    ep.handle_timeout(at(t1 - 1));
    assert_eq!(events(&mut ep), []);
    ep.handle_timeout(at(t1));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    bring_up(&mut ep, at(t1 + 1), 2);
    assert_eq!(sent(&mut ep), [(2, resolution_request())]);
    events(&mut ep);
    ep.handle_timeout(at(2 * t1 + 1));
    let failure = Failure::TimedOut;
    let events = events(&mut ep);
    assert_eq!(events[0], Event::ResolutionFailed { pool_handle: pool("p"), failure });
}

// Goal: the PU reports a PE it could not reach to its home once per failure (§3.5).
// Method: resolve, select, report twice; compare the Endpoint Unreachable bytes.
#[test]
fn endpoint_unreachable_sent_once() {
    let mut ep = pool_user();
    ep.resolve(at(0), pool("p")).unwrap();
    sent(&mut ep);
    reply(&mut ep, at(1), 1, &resolution_response("p", &[3, 4]));
    assert!(!ep.report_unreachable(&pool("p"), PoolElementId(3)), "not handed out yet");
    assert_eq!(ep.select(at(2), &pool("p")).unwrap().id, PoolElementId(3));
    assert!(ep.report_unreachable(&pool("p"), PoolElementId(3)));
    assert!(!ep.report_unreachable(&pool("p"), PoolElementId(3)));
    let report =
        codec::asap::EndpointUnreachable { pool_handle: pool("p"), pe_id: PoolElementId(3) };
    assert_eq!(sent(&mut ep), [(1, Message::EndpointUnreachable(report))]);
    assert_eq!(ep.select(at(3), &pool("p")).unwrap().id, PoolElementId(4));
}
