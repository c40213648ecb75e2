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
use crate::subscription::SubscriptionState;
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
    // Off except where a test is about it: silence probes would interleave with every timer.
    c.home_silence = Duration::MAX;
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
    let cause = ErrorCause::NON_UNIQUE_PE_IDENTIFIER;
    let words =
        crate::blocking::BlockingError::RegistrationRefused { pool_handle: pool("p"), cause }
            .to_string();
    assert_eq!(
        words,
        "registration in pool \"p\" refused by the registrar: Non-unique PE Identifier \
         (cause 0x0004)"
    );
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

// ---- Live pool updates (S and A bits) ----

fn subscribing(name: &str) -> Message {
    Message::HandleResolution(HandleResolution {
        subscribe: true,
        pool_handle: pool(name),
        items_wanted: Some(SUBSCRIPTION_ITEMS_WANTED),
    })
}

/// The registrar's answer or push for pool `name`: `ids` listed, A flag `accept`.
fn push(name: &str, ids: &[u32], accept: bool) -> Message {
    let Message::HandleResolutionResponse(mut r) = resolution_response(name, ids) else {
        unreachable!("resolution_response builds a Handle Resolution Response")
    };
    r.accept_updates = accept;
    Message::HandleResolutionResponse(r)
}

/// The negative push that ends a subscription: Unknown Pool Handle.
fn gone(name: &str) -> Message {
    Message::HandleResolutionResponse(HandleResolutionResponse {
        accept_updates: true,
        pool_handle: pool(name),
        overall_policy: None,
        pool_elements: vec![],
        error: Some(OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE)),
    })
}

fn changed(name: &str, ids: &[u32], updates: Updates) -> Event {
    let elements = ids.iter().map(|&id| crate::testing::pool_element(id)).collect();
    Event::PoolChanged { pool_handle: pool(name), elements, updates }
}

/// A PU over association 1 whose subscription to "q" the registrar accepted at 20 µs with
/// PEs 1 and 2.
fn subscribed() -> Endpoint {
    let mut ep = pool_user();
    ep.subscribe(at(10), pool("q")).unwrap();
    assert_eq!(sent(&mut ep), [(1, subscribing("q"))]);
    reply(&mut ep, at(20), 1, &push("q", &[1, 2], true));
    assert_eq!(events(&mut ep), [changed("q", &[1, 2], Updates::Pushed)]);
    ep
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
//= type=test
//# The 'S' bit, if set to '1', requests the Home ENRP server to send
//# updates to this Pool dynamically when the Pool changes for the
//# lifetime of the SCTP association.
// Goal: subscribing sends exactly one Handle Resolution with the S flag (asking for the whole
// pool), an answer with A starts the subscription, and a second subscribe sends nothing.
// Method: `subscribed()` compares the bytes and the events; then subscribe again.
#[test]
fn subscription_starts_with_the_s_flag() {
    let mut ep = subscribed();
    let state = ep.subscriptions().state(&pool("q"));
    let probe_at = at(20) + SUBSCRIPTION_PROBE_DEFAULT;
    assert_eq!(state, Some(SubscriptionState::Accepted { assoc: AssocId(1), probe_at }));
    ep.subscribe(at(30), pool("q")).unwrap();
    assert_eq!(sent(&mut ep), []);
    let bytes = subscribing("q").emit_to_vec();
    assert_eq!(bytes[1] & 0x01, 0x01, "the S flag is the low bit of the flags byte");
}

// Goal: each push is one PoolChanged with the pool's whole list, replaces the cached list
// and makes it fresh again. Method: accepted at 20 µs (stale 1 000 µs); a push at 900 µs
// with PEs 1 and 3; boundary pair at 900 + 1 000 µs.
#[test]
fn push_replaces_the_cache_and_resets_its_staleness() {
    let mut ep = subscribed();
    reply(&mut ep, at(900), 1, &push("q", &[1, 3], true));
    assert_eq!(events(&mut ep), [changed("q", &[1, 3], Updates::Pushed)]);
    let ids = |r: Resolution| match r {
        Resolution::Cached(e) => e.iter().map(|pe| pe.id.0).collect::<Vec<_>>(),
        Resolution::Pending => vec![],
    };
    assert_eq!(ids(ep.resolve(at(1_020), pool("q")).unwrap()), [1, 3], "fresh from the push");
    assert_eq!(ids(ep.resolve(at(1_899), pool("q")).unwrap()), [1, 3]);
    assert_eq!(ep.resolve(at(1_900), pool("q")), Ok(Resolution::Pending));
    assert_eq!(sent(&mut ep), [(1, resolution_request_for("q"))], "a resolve has no S flag");
}

fn resolution_request_for(name: &str) -> Message {
    Message::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: pool(name),
        items_wanted: None,
    })
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
//= type=test
//# If a negative
//# response is returned, no further updates to the Pool (when it is
//# created) will occur.
// Goal: a negative push ends the subscription with PoolGone, the cache entry goes, and later
// pushes for the pool are dropped. Method: Unknown Pool Handle push, then a positive one.
#[test]
fn subscription_ends_when_the_pool_is_gone() {
    let mut ep = subscribed();
    reply(&mut ep, at(30), 1, &gone("q"));
    assert_eq!(events(&mut ep), [Event::PoolGone { pool_handle: pool("q") }]);
    assert_eq!(ep.subscriptions().state(&pool("q")), None);
    assert!(!ep.cache().is_fresh(at(31), &pool("q")));
    reply(&mut ep, at(40), 1, &push("q", &[7], true));
    assert_eq!(events(&mut ep), []);
    assert!(!ep.cache().is_fresh(at(41), &pool("q")), "an unfollowed push is not cached");
}

// Goal: a negative answer to the subscribing request creates no subscription and says why.
// Method: answer the S request with Unknown Pool Handle; a later push is dropped.
#[test]
fn negative_first_answer_creates_no_subscription() {
    let mut ep = pool_user();
    ep.subscribe(at(10), pool("q")).unwrap();
    sent(&mut ep);
    reply(&mut ep, at(20), 1, &gone("q"));
    let failure = Failure::Refused(ErrorCause::UNKNOWN_POOL_HANDLE);
    assert_eq!(events(&mut ep), [Event::SubscriptionFailed { pool_handle: pool("q"), failure }]);
    assert!(ep.subscriptions().is_empty());
    reply(&mut ep, at(30), 1, &push("q", &[1], true));
    assert_eq!(events(&mut ep), []);
}

// Goal: a subscription ends with its association and is sent again, with the S flag, to the
// next home the hunt finds. Method: association 1 closes; association 2 comes up; accept.
#[test]
fn association_lost_resubscribes_at_the_next_home() {
    let mut ep = subscribed();
    ep.handle_closed(at(100), AssocId(1));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    assert_eq!(ep.subscriptions().state(&pool("q")), Some(SubscriptionState::Waiting));
    assert_eq!(bring_up(&mut ep, at(101), 2), addr(2));
    assert_eq!(sent(&mut ep), [(2, subscribing("q"))]);
    reply(&mut ep, at(102), 2, &push("q", &[2], true));
    let found = Event::RegistrarFound { assoc: AssocId(2), peer: addr(2) };
    assert_eq!(events(&mut ep), [found, changed("q", &[2], Updates::Pushed)]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
//= type=test
//# Thus, upon change of Home ENRP
//# server, the PU will need to re-send an ASAP_HANDLE_RESOLUTION message
//# with the 'S' bit set to '1'.
// Goal: when a registrar takes the endpoint over (keep-alive with H), the subscription is
// sent again there, and the old home's pushes are dropped from then on. Method: a PE and a
// subscription on association 1; registrar 12 takes over on association 2.
#[test]
fn home_change_resubscribes_at_the_new_home() {
    let (mut ep, pe) = registered();
    ep.subscribe(at(10), pool("q")).unwrap();
    assert_eq!(sent(&mut ep), [(1, subscribing("q"))]);
    reply(&mut ep, at(20), 1, &push("q", &[1], true));
    events(&mut ep);
    ep.handle_up(at(30), AssocId(2), addr(3));
    reply(&mut ep, at(31), 2, &keep_alive(12, 5, true));
    assert_eq!(sent(&mut ep), [(2, ack(5)), (2, subscribing("q"))]);
    let home = Event::HomeChanged { pe, registrar: RegistrarId(12), assoc: AssocId(2) };
    assert_eq!(events(&mut ep), [home]);
    reply(&mut ep, at(40), 1, &push("q", &[9], true));
    assert_eq!(events(&mut ep), [], "the old home's push is not ours any more");
    reply(&mut ep, at(41), 2, &push("q", &[1, 4], true));
    assert_eq!(events(&mut ep), [changed("q", &[1, 4], Updates::Pushed)]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.6
//= type=test
//# If
//# this bit is set to '0', either the ENRP server does NOT support
//# automatic updates, it has resource issues and cannot supply this
//# feature, or the user did not request it.
// Goal: without the A flag the endpoint polls at the stale-cache interval (each poll with
// the S flag again), and switches to pushes when an answer carries A. Method: answer without
// A at 20 µs; boundary pair at 1 019 / 1 020 µs; the poll's answer has A.
#[test]
fn no_a_flag_falls_back_to_polling() {
    let mut ep = pool_user();
    ep.subscribe(at(10), pool("q")).unwrap();
    sent(&mut ep);
    reply(&mut ep, at(20), 1, &push("q", &[1], false));
    assert_eq!(events(&mut ep), [changed("q", &[1], Updates::Polled)]);
    assert_eq!(ep.poll_timeout(), Some(at(1_020)));
    ep.handle_timeout(at(1_019));
    assert_eq!(sent(&mut ep), []);
    ep.handle_timeout(at(1_020));
    assert_eq!(sent(&mut ep), [(1, subscribing("q"))]);
    reply(&mut ep, at(1_030), 1, &push("q", &[1, 2], false));
    assert_eq!(events(&mut ep), [changed("q", &[1, 2], Updates::Polled)]);
    ep.handle_timeout(at(2_030));
    assert_eq!(sent(&mut ep), [(1, subscribing("q"))]);
    reply(&mut ep, at(2_040), 1, &push("q", &[2], true));
    assert_eq!(events(&mut ep), [changed("q", &[2], Updates::Pushed)]);
    let probe = at(2_040) + SUBSCRIPTION_PROBE_DEFAULT;
    assert_eq!(ep.poll_timeout(), Some(probe), "pushed: no more polls, only the probe");
}

// Goal: a resolve without S for a subscribed pool does not cancel the subscription, and its
// answer serves both the resolve and the subscription. Method: resolve after the stale time.
#[test]
fn plain_resolution_keeps_the_subscription() {
    let mut ep = subscribed();
    assert_eq!(ep.resolve(at(2_000), pool("q")), Ok(Resolution::Pending));
    assert_eq!(sent(&mut ep), [(1, resolution_request_for("q"))]);
    reply(&mut ep, at(2_010), 1, &push("q", &[2], true));
    let elements = vec![crate::testing::pool_element(2)];
    let resolved = Event::Resolved { pool_handle: pool("q"), elements };
    assert_eq!(events(&mut ep), [changed("q", &[2], Updates::Pushed), resolved]);
    reply(&mut ep, at(2_020), 1, &push("q", &[3], true));
    assert_eq!(events(&mut ep), [changed("q", &[3], Updates::Pushed)]);
}

// Goal: an unanswered subscribing request is sent again at the next home however often it
// times out (a subscription has no attempt limit). Method: T1 passes twice, two homes.
#[test]
fn subscribing_request_timeout_resubscribes_elsewhere() {
    let mut ep = pool_user();
    ep.subscribe(at(0), pool("q")).unwrap();
    sent(&mut ep);
    let t1 = Duration::from_secs(15).as_micros();
    ep.handle_timeout(at(t1));
    assert_eq!(ep.poll_abort(), Some(AssocId(1)));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    bring_up(&mut ep, at(t1 + 1), 2);
    assert_eq!(sent(&mut ep), [(2, subscribing("q"))]);
    ep.handle_timeout(at(2 * t1 + 1));
    assert_eq!(ep.poll_abort(), Some(AssocId(2)));
    bring_up(&mut ep, at(2 * t1 + 2), 3);
    assert_eq!(sent(&mut ep), [(3, subscribing("q"))]);
}

// ---- Boundary pairs the issue asks for ----

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
//= type=test
//# SH5.1)  The ASAP Endpoint MUST double the value of the T5-
//# Serverhunt timer.  Note that this doubling is capped at the
//# value RETRAN.max.
// Goal: through the endpoint, with millisecond timers, hunt rounds start 100, 200, 400 ms
// apart and then stay at the 500 ms cap; the round at the cap starts at exactly the cap
// (cap - 1 ms: no connect). Method: no registrar ever answers (each INIT fails at once);
// record the gaps between the rounds' connects.
#[test]
fn hunt_back_off_sequence_and_cap() {
    let mut c = config(&[addr(1)]);
    c.hunt.hunt_timeout_initial = Duration::from_millis(100);
    c.hunt.hunt_timeout_max = Duration::from_millis(500);
    let mut ep = Endpoint::new(c, 7);
    ep.start(at(0));
    let ms = |n: u64| Duration::from_millis(n).as_micros();
    let mut round_start = 0;
    let mut gaps = Vec::new();
    for round in 0..6u32 {
        assert_eq!(ep.poll_connect(), Some(addr(1)), "round {round}");
        ep.handle_connect_failed(at(round_start), addr(1));
        let next = ep.poll_timeout().expect("T5 runs").as_micros();
        gaps.push((next - round_start) / 1_000);
        ep.handle_timeout(at(next - ms(1)));
        assert_eq!(ep.poll_connect(), None, "round {} must not start 1 ms early", round + 1);
        ep.handle_timeout(at(next));
        round_start = next;
    }
    assert_eq!(gaps, [100, 200, 400, 500, 500, 500]);
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
//= type=test
//# C4)  If the cache entry is NOT stale, the endpoint SHOULD NOT send a
//# handle resolution request but instead SHOULD use the entry from
//# the cache.
// Goal: with the default stale-cache value (1 s), a resolve 1 ms before the stale time is
// answered from the cache and one 1 ms after goes to the registrar. Method: two endpoints,
// one per side of the boundary, each answered at t = 5 ms.
#[test]
fn stale_cache_boundary_pair_in_milliseconds() {
    let stale = crate::pu::STALE_CACHE_DEFAULT.as_micros();
    let answered = Duration::from_millis(5).as_micros();
    let one_ms = Duration::from_millis(1).as_micros();
    for (offset, from_cache) in [(stale - one_ms, true), (stale + one_ms, false)] {
        let mut c = config(&[addr(1)]);
        c.stale_cache = crate::pu::STALE_CACHE_DEFAULT;
        let mut ep = Endpoint::new(c, 7);
        ep.start(at(0));
        bring_up(&mut ep, at(0), 1);
        ep.resolve(at(0), pool("p")).unwrap();
        sent(&mut ep);
        reply(&mut ep, at(answered), 1, &resolution_response("p", &[1]));
        let got = ep.resolve(at(answered + offset), pool("p")).unwrap();
        assert_eq!(matches!(got, Resolution::Cached(_)), from_cache, "offset {offset} µs");
        assert_eq!(sent(&mut ep).len(), usize::from(!from_cache));
    }
}

// Regression: a PU that only follows a pool sends nothing, so a home killed -9 went unnoticed
// (no request to time out, SCTP heartbeats take minutes) and the watch showed a dead
// registrar's last list for ever. Goal: the subscription is probed every probe interval, an
// unanswered probe hunts at T1, and the subscription moves to the next home. Method: accept
// at 20 µs; the probe leaves at exactly 20 µs + 30 s (not 1 µs before); nobody answers.
#[test]
fn silent_home_of_a_subscription_is_noticed_by_its_probe() {
    let mut ep = subscribed();
    let probe = at(20) + SUBSCRIPTION_PROBE_DEFAULT;
    assert_eq!(ep.poll_timeout(), Some(probe));
    ep.handle_timeout(at(probe.as_micros() - 1));
    assert_eq!(sent(&mut ep), []);
    ep.handle_timeout(probe);
    assert_eq!(sent(&mut ep), [(1, subscribing("q"))]);
    let t1 = probe + Duration::from_secs(15);
    ep.handle_timeout(t1);
    assert_eq!(ep.poll_abort(), Some(AssocId(1)));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    bring_up(&mut ep, t1, 2);
    assert_eq!(sent(&mut ep), [(2, subscribing("q"))]);
}

// Regression: "a PE hunting A and B didn't re-register at B within 15 s after A was killed".
// Reproduced with the tool (default 90 s life, A killed -9, B up): the PE sends nothing until
// T4 (70 s), the dead A sends no keep-alives, SCTP heartbeats take minutes, so the PE stayed
// at A. Goal: after `home_silence` without a word from the home the PE re-registers there,
// and when that times out it hunts and registers at B, long before T4. Method: PE 5 at A
// (association 1) with life 90 s, a keep-alive at 5 s, then silence; boundary pair at
// 5 s + 15 s - 1 µs and 5 s + 15 s; T2 later the hunt reaches B (association 2).
#[test]
fn pe_hunting_a_and_b_reregisters_at_b_after_a_is_killed() {
    let mut c = config(&[addr(1), addr(2)]);
    c.home_silence = HOME_SILENCE_DEFAULT;
    let mut ep = Endpoint::new(c, 7);
    let mut pe_c = pe_config(5);
    pe_c.registration_life = Duration::from_secs(90);
    let pe = ep.register(at(0), pe_c).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    reply(&mut ep, at(0), 1, &registration_response("p", 5, None));
    events(&mut ep);
    let s = |n: u64| Duration::from_secs(n).as_micros();
    reply(&mut ep, at(s(5)), 1, &keep_alive(9, 5, false));
    assert_eq!(sent(&mut ep), [(1, ack(5))]);
    assert_eq!(ep.poll_timeout(), Some(at(s(20))), "the silence deadline, not T4 at 70 s");
    ep.handle_timeout(at(s(20) - 1));
    assert_eq!(sent(&mut ep), []);
    ep.handle_timeout(at(s(20)));
    let life90 = |m: Message| match m {
        Message::Registration(mut r) => {
            r.pool_element.registration_life_ms = 90_000;
            Message::Registration(r)
        }
        other => other,
    };
    assert_eq!(sent(&mut ep), [(1, life90(registration(5, Policy::RoundRobin)))]);
    assert_eq!(ep.poll_timeout(), Some(at(s(20)) + T2), "the probe waits T2, no second probe");
    ep.handle_timeout(at(s(20)) + T2);
    assert_eq!(ep.poll_abort(), Some(AssocId(1)));
    assert_eq!(events(&mut ep), [Event::RegistrarLost { assoc: AssocId(1) }]);
    let t = at(s(20)) + T2;
    assert_eq!(bring_up(&mut ep, t, 2), addr(2));
    assert_eq!(sent(&mut ep), [(2, life90(registration(5, Policy::RoundRobin)))]);
    reply(&mut ep, t, 2, &registration_response("p", 5, None));
    let found = Event::RegistrarFound { assoc: AssocId(2), peer: addr(2) };
    assert_eq!(events(&mut ep), [found, Event::Registered { pe, id: PoolElementId(5) }]);
}

// Regression: "registration storm after a takeover" (fault lab, registrar-sigstop.scn: two
// PEs sent ~190 000 Registrations in 30 s to the registrar that had taken them over). The
// answer to a home-silence probe is a plain Registration Response, read on the zero-copy path,
// which did not note the home as heard: the silence deadline stayed in the past and every
// answer triggered the next probe at once. Goal: a probe's answer moves the silence deadline
// like any message. Method: PE 5 at A, a keep-alive at 5 s, the probe at 20 s answered 1 ms
// later; nothing may leave until 15 s after that answer.
#[test]
fn registration_storm_after_a_takeover() {
    let mut c = config(&[addr(1)]);
    c.home_silence = HOME_SILENCE_DEFAULT;
    let mut ep = Endpoint::new(c, 7);
    let mut pe_c = pe_config(5);
    pe_c.registration_life = Duration::from_secs(90);
    ep.register(at(0), pe_c).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    reply(&mut ep, at(0), 1, &registration_response("p", 5, None));
    let s = |n: u64| Duration::from_secs(n).as_micros();
    reply(&mut ep, at(s(5)), 1, &keep_alive(9, 5, false));
    assert_eq!(sent(&mut ep), [(1, ack(5))]);
    ep.handle_timeout(at(s(20)));
    assert_eq!(sent(&mut ep).len(), 1, "the probe");
    let answered = at(s(20) + 1_000);
    reply(&mut ep, answered, 1, &registration_response("p", 5, None));
    assert_eq!(ep.poll_timeout(), Some(answered + HOME_SILENCE_DEFAULT), "silence from the answer");
    ep.handle_timeout(answered + Duration::from_micros(1_000));
    assert_eq!(sent(&mut ep), [], "no second probe right after the answer");
}

// Goal: a home that keeps speaking is never probed: each keep-alive moves the deadline.
// Method: keep-alives every 10 s for a minute; nothing but Acks leaves before T4 (70 s).
#[test]
fn a_home_that_speaks_is_not_probed() {
    let mut c = config(&[addr(1)]);
    c.home_silence = HOME_SILENCE_DEFAULT;
    let mut ep = Endpoint::new(c, 7);
    let mut pe_c = pe_config(5);
    pe_c.registration_life = Duration::from_secs(90);
    ep.register(at(0), pe_c).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    reply(&mut ep, at(0), 1, &registration_response("p", 5, None));
    for t in (10..=60).step_by(10) {
        let now = at(Duration::from_secs(t).as_micros());
        ep.handle_timeout(now);
        reply(&mut ep, now, 1, &keep_alive(9, 5, false));
        assert_eq!(sent(&mut ep), [(1, ack(5))], "at {t} s");
    }
}

// Goal: a home that refuses a registration with Lack of Resources (a draining or full
// registrar, RFC 5354 §3.12.7) sends the PE to another registrar: no failure reaches the
// user, the association to the busy one is aborted, the PE registers at the next home, and
// the busy one is left out of the hunts of the next RETRAN-MAX even when it is next in
// turn; afterwards it is a candidate again. With no other registrar known the refusal is the
// user's, as any other. Method: two registrars, a refusal at the first; the second then
// fails too (the hunt would rotate back to the first), at RETRAN-MAX - 1 µs and again after.
#[test]
fn lack_of_resources_sends_the_pe_to_another_registrar() {
    let mut ep = Endpoint::new(config(&[addr(1), addr(2)]), 7);
    let pe = ep.register(at(0), pe_config(5)).unwrap();
    assert_eq!(bring_up(&mut ep, at(0), 1), addr(1));
    sent(&mut ep);
    let busy = registration_response("p", 5, Some(ErrorCause::LACK_OF_RESOURCES));
    reply(&mut ep, at(10), 1, &busy);
    let found = Event::RegistrarFound { assoc: AssocId(1), peer: addr(1) };
    assert_eq!(events(&mut ep), [found, Event::RegistrarLost { assoc: AssocId(1) }]);
    assert_eq!(ep.poll_abort(), Some(AssocId(1)));
    assert_eq!(bring_up(&mut ep, at(20), 2), addr(2));
    assert_eq!(sent(&mut ep), [(2, registration(5, Policy::RoundRobin))]);
    reply(&mut ep, at(30), 2, &registration_response("p", 5, None));
    let found = Event::RegistrarFound { assoc: AssocId(2), peer: addr(2) };
    assert_eq!(events(&mut ep), [found, Event::Registered { pe, id: PoolElementId(5) }]);

    // The second home fails within RETRAN-MAX of the refusal: the first is still avoided.
    let retran_max = ep.config.hunt.hunt_timeout_max;
    let last_avoided = at(10) + retran_max.saturating_sub(Duration::from_micros(1));
    ep.handle_closed(last_avoided, AssocId(2));
    events(&mut ep);
    assert_eq!(bring_up(&mut ep, last_avoided, 3), addr(2), "the busy one stays out");
    reply(&mut ep, last_avoided, 3, &registration_response("p", 5, None));
    // Once RETRAN-MAX has passed it is in turn again.
    let free = at(10) + retran_max;
    ep.handle_timeout(free);
    let mut tried = Vec::new();
    for assoc in 3..5 {
        ep.handle_closed(free, AssocId(assoc));
        events(&mut ep);
        tried.push(bring_up(&mut ep, free, assoc + 1));
        reply(&mut ep, free, assoc + 1, &registration_response("p", 5, None));
    }
    assert_eq!(tried, [addr(2), addr(1)], "in turn again, no longer avoided");

    // Alone, a busy registrar's refusal is the user's.
    let mut alone = Endpoint::new(config(&[addr(1)]), 7);
    let pe = alone.register(at(0), pe_config(5)).unwrap();
    bring_up(&mut alone, at(0), 1);
    sent(&mut alone);
    reply(&mut alone, at(10), 1, &busy);
    let failure = Failure::Refused(ErrorCause::LACK_OF_RESOURCES);
    assert_eq!(events(&mut alone)[1], Event::RegistrationFailed { pe, failure });
    assert_eq!(alone.poll_abort(), None);
}

// Regression: "two PEs didn't leave a killed home within 15 s" (tool-smoke.sh, two peered
// registrars). The registration's answer is read on the zero-copy path, which did not count
// as hearing from the home; a PE that heard nothing else before its home died had no
// silence deadline and stayed until T4 or SCTP's own failure detection. Goal: the answer
// starts the silence clock. Method: a registration answered at 1 s and nothing after; the
// probe leaves at 1 s + home_silence, not before.
#[test]
fn a_registration_answer_starts_the_home_silence_clock() {
    let mut c = config(&[addr(1)]);
    c.home_silence = HOME_SILENCE_DEFAULT;
    let mut ep = Endpoint::new(c, 7);
    ep.register(at(0), pe_config(5)).unwrap();
    bring_up(&mut ep, at(0), 1);
    sent(&mut ep);
    let answered = at(Duration::from_secs(1).as_micros());
    reply(&mut ep, answered, 1, &registration_response("p", 5, None));
    let probe = answered + HOME_SILENCE_DEFAULT;
    assert_eq!(ep.poll_timeout(), Some(probe), "the silence deadline, before T4");
    ep.handle_timeout(at(probe.as_micros() - 1));
    assert_eq!(sent(&mut ep), []);
    ep.handle_timeout(probe);
    assert_eq!(sent(&mut ep), [(1, registration(5, Policy::RoundRobin))]);
}
