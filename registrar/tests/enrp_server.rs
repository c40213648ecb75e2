//! ENRP through the registrar's per-core `Server` (sans-IO): what a takeover does to the PEs.
//!
//! Goal: RFC 5353 §3.5.2 end to end on one core: after we win the takeover of a failed peer,
//! each of its PEs gets an Endpoint Keep Alive with the H flag over an association we open to
//! the PE's ASAP Transport; a PE that answers stays, homed here, and one that does not is
//! removed after the keep-alive timeout. Method: a peer announces a PE (Handle Update with an
//! ASAP Transport) and falls silent; time passes MAX-TIME-LAST-HEARD and MAX-TIME-NO-RESPONSE;
//! the test plays the transport (connect, up) and the PE.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::asap::{EndpointKeepAliveAck, Message as Asap};
use codec::enrp::{HandleUpdate, Message as Enrp, Presence, Servers, UpdateAction};
use codec::param::{AddressList, PeChecksum, SctpTransport};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{Duration, Instant};
use registrar::proto::enrp::EnrpConfig;
use registrar::proto::{Server, ServerConfig};

const OWN: RegistrarId = RegistrarId(0x10);
const PEER: RegistrarId = RegistrarId(0x20);
const S: u64 = 1_000_000;

fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

fn pe_asap_address() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 5_000)
}

fn config(core: u16, cores: u16) -> ServerConfig {
    let own = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9901);
    let handlespace = handlespace::Config {
        keep_alive_interval: Duration::from_secs(5),
        keep_alive_timeout: Duration::from_secs(5),
        ..handlespace::Config::default()
    };
    ServerConfig {
        registrar_id: OWN,
        core,
        cores,
        handlespace,
        resolution_items_default: 3,
        registration_life_max: Duration::from_secs(3_600),
        remove_on_session_loss: true,
        seed: 1,
        replicas: true,
        enrp: Some(EnrpConfig::new(own, Vec::new())),
    }
}

fn server() -> Server {
    Server::new(config(0, 1))
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"P").unwrap()
}

/// The peer's PE, with the ASAP Transport a home registrar puts in its Handle Updates.
fn peer_pe() -> PoolElement {
    let address = |ip: IpAddr| AddressList::from_slice(&[ip]).unwrap();
    PoolElement {
        id: PoolElementId(7),
        home_registrar: PEER,
        registration_life_ms: 3_600_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 80,
            transport_use: TransportUse::DATA_ONLY,
            addresses: address(pe_asap_address().ip()),
        }),
        policy: Policy::RoundRobin,
        asap_transport: Some(SctpTransport {
            port: pe_asap_address().port(),
            transport_use: TransportUse::DATA_ONLY,
            addresses: address(pe_asap_address().ip()),
        }),
    }
}

/// A server that learned the peer's PE on session 1, then the peer fell silent at 0 and we
/// won its takeover (alone with it): returns the server and the time after the win.
fn after_takeover() -> (Server, u64) {
    let mut s = server();
    s.handle_up(1, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 9901));
    let presence = Enrp::Presence(Presence {
        reply_required: false,
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(0xffff)),
        server_information: None,
    });
    s.handle_enrp_message(at(0), 1, &presence.emit_to_vec());
    let update = Enrp::HandleUpdate(HandleUpdate {
        takeover_suggested: false,
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        action: UpdateAction::ADD_PE,
        pool_handle: pool(),
        pool_element: peer_pe(),
    });
    s.handle_enrp_message(at(1), 1, &update.emit_to_vec());
    assert_eq!(s.handlespace().element(&pool(), PoolElementId(7)).unwrap().home(), PEER);
    // MAX-TIME-LAST-HEARD (61 s) passes: a probe; MAX-TIME-NO-RESPONSE (5 s) passes: dead.
    let mut now = 0;
    while s.enrp().unwrap().takeovers_won().next().is_none() {
        now += S / 2;
        assert!(now < 100 * S, "no takeover after 100 s");
        s.handle_timeout(at(now));
        while s.poll_transmit_enrp().is_some() {}
    }
    assert_eq!(s.handlespace().element(&pool(), PoolElementId(7)).unwrap().home(), OWN);
    (s, now)
}

/// Runs timers until the keep-alive for the taken PE is asked to open an association.
fn keep_alive_association(s: &mut Server, mut now: u64) -> (u32, u64) {
    s.handle_timeout(at(now));
    let address = s.poll_connect_pe().expect("an association to the PE's ASAP Transport");
    assert_eq!(address, pe_asap_address());
    s.handle_connecting_pe(address, Some(42));
    assert!(s.poll_transmit().is_none(), "nothing before the association is up");
    now += 1_000;
    s.handle_up(42, address);
    (42, now)
}

#[test]
fn a_taken_pe_that_answers_the_h_flagged_keep_alive_stays() {
    let (mut s, now) = after_takeover();
    let (assoc, now) = keep_alive_association(&mut s, now);
    let out = s.poll_transmit().expect("the keep-alive, once up");
    assert_eq!(out.assoc, assoc);
    let Ok(Asap::EndpointKeepAlive(k)) = Asap::parse(&out.bytes) else { panic!() };
    assert!(k.home, "H flag: we are the new home (RFC 5353 §3.5.2)");
    assert_eq!((k.server_id, k.pe_id), (OWN, Some(PoolElementId(7))));
    let ack = Asap::EndpointKeepAliveAck(EndpointKeepAliveAck {
        pool_handle: pool(),
        pe_id: PoolElementId(7),
    });
    s.handle_message(at(now + 1_000), assoc, &ack.emit_to_vec());
    // Past the keep-alive timeout: still here, and the next keep-alive reuses the association.
    s.handle_timeout(at(now + 6 * S));
    assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_some());
    assert_eq!(s.stats().keep_alive_timeouts, 0);
    s.handle_timeout(at(now + 12 * S));
    assert!(s.poll_connect_pe().is_none(), "one association per PE address");
}

// Goal: a keep-alive lost with its association (a link kept from an earlier takeover that the
// PE's restarted process aborts as out of the blue, the soak's bug 12) goes again, once, on a
// new association, and the PE that answers there stays; a second unanswered end is not retried.
// Method: the first link comes up, carries the keep-alive and ends unanswered; the retry link
// carries the same keep-alive; its ack keeps the PE past the keep-alive timeout. Then a later
// keep-alive's link ends unanswered twice: one retry, no third association.
#[test]
fn a_keep_alive_lost_with_its_association_goes_again_on_a_new_one() {
    let (mut s, now) = after_takeover();
    let (first, now) = keep_alive_association(&mut s, now);
    let sent = s.poll_transmit().expect("the keep-alive on the first link");
    assert_eq!(sent.assoc, first);
    s.handle_closed(at(now), first);
    let address = s.poll_connect_pe().expect("a second association for the unanswered keep-alive");
    assert_eq!(address, pe_asap_address());
    s.handle_connecting_pe(address, Some(43));
    s.handle_up(43, address);
    let again = s.poll_transmit().expect("the keep-alive again, on the new link");
    assert_eq!((again.assoc, &again.bytes), (43, &sent.bytes));
    let ack = Asap::EndpointKeepAliveAck(EndpointKeepAliveAck {
        pool_handle: pool(),
        pe_id: PoolElementId(7),
    });
    s.handle_message(at(now + 1_000), 43, &ack.emit_to_vec());
    s.handle_timeout(at(now + 6 * S));
    assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_some(), "answered: stays");
    assert_eq!(s.stats().keep_alive_timeouts, 0);
    // The next keep-alive reuses link 43; it ends unanswered, and so does its retry.
    s.handle_timeout(at(now + 12 * S));
    assert!(s.poll_connect_pe().is_none(), "link 43 is up: reused");
    assert_eq!(s.poll_transmit().map(|o| o.assoc), Some(43));
    s.handle_closed(at(now + 12 * S + 1), 43);
    let address = s.poll_connect_pe().expect("one retry for the unanswered keep-alive");
    s.handle_connecting_pe(address, Some(44));
    s.handle_up(44, address);
    assert_eq!(s.poll_transmit().map(|o| o.assoc), Some(44));
    s.handle_closed(at(now + 12 * S + 2), 44);
    assert!(s.poll_connect_pe().is_none(), "a retry that ends unanswered is not retried");
}

#[test]
fn a_taken_pe_that_stays_silent_is_removed_after_the_timeout() {
    let (mut s, now) = after_takeover();
    let (_, now) = keep_alive_association(&mut s, now);
    assert!(s.poll_transmit().is_some());
    s.handle_timeout(at(now + 5 * S - 2_000));
    assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_some(), "timeout - 1 ms");
    s.handle_timeout(at(now + 5 * S + 1_000));
    assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_none(), "timeout + 1 ms");
    assert_eq!(s.stats().keep_alive_timeouts, 1);
}

// Regression (Handle Updates lost between a 2-worker and a 1-worker registrar, found by
// enrp-three.sh with the RFC timers): ENRP-port-to-ENRP-port associations opened by both sides
// at once collide on one 4-tuple across cores. With one worker ENRP associations leave from
// the ENRP port (RSPLIB wants that); with several, from the transport's own port. Regression
// (found by lab/guest-enrp-mixed.sh once the kernel backend ran on every worker: RSPLIB's
// registrar ignored ours, whose associations left from the ASAP port): on the kernel's SCTP,
// whose one association table meets a crossing INIT on any socket, from the ENRP port on any
// number of workers.
#[test]
fn enrp_associations_leave_from_the_enrp_port_with_one_worker_or_one_association_table() {
    assert_eq!(server().enrp_local_port(), Some(9901));
    assert_eq!(Server::new(config(0, 2)).enrp_local_port(), None);
    let mut kernel = config(0, 2);
    kernel.enrp.as_mut().expect("ENRP on").one_association_table = true;
    assert_eq!(Server::new(kernel).enrp_local_port(), Some(9901));
}

// Found by the fault lab (registrar-sigstop): a registrar resumed after SIGSTOP announced the
// queued re-registrations of PEs that had meanwhile moved to the takeover winner (ADD_PE, home
// itself), then dropped them with their associations (DEL_PE). The winner applied both and lost
// the PEs until their next re-registration. Goal: the winner keeps the PE homed where it is.
// Method: we take PEER over (its PE 7 is now ours); PEER speaks again with ADD_PE then DEL_PE
// for PE 7; PE 7 stays, homed here, and the refused claim is counted.
#[test]
fn a_registrar_resumed_after_a_takeover_cannot_replay_its_pes_away() {
    let (mut s, now) = after_takeover();
    let update = |action| {
        Enrp::HandleUpdate(HandleUpdate {
            takeover_suggested: false,
            servers: Servers { sender: PEER, receiver: RegistrarId(0) },
            action,
            pool_handle: pool(),
            pool_element: peer_pe(),
        })
        .emit_to_vec()
    };
    s.handle_enrp_message(at(now + S), 1, &update(UpdateAction::ADD_PE));
    s.handle_enrp_message(at(now + S + 1_000), 1, &update(UpdateAction::DEL_PE));
    let element = s.handlespace().element(&pool(), PoolElementId(7)).expect("PE 7 stays");
    assert_eq!(element.home(), OWN);
    assert_eq!(s.stats().peer_claims_refused, 1);
}

// Found by the one-hour soak (bug 11 in RELIABILITY.md): r2 had just re-homed PEs to r3 on
// r3's claims; r1, which had not heard the claims yet, re-synchronised with r2, found the PEs
// unlisted, swept them at once and lost live PEs for a second. Goal: a PE that another
// registrar claims between the re-synchronisation and its sweep stays; one nobody claims goes
// after MAX-TIME-LAST-HEARD, not before. Method: PE 7 homed at PEER; PEER's checksum differs;
// its table lists nothing; THIRD then claims PE 7 (or nobody does); time passes.
#[test]
fn a_pe_claimed_elsewhere_before_the_resync_sweep_stays() {
    const THIRD: RegistrarId = RegistrarId(0x30);
    for claimed in [true, false] {
        let mut s = server();
        s.handle_up(1, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 9901));
        s.handle_up(2, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 9901));
        let presence = |sender, checksum| {
            Enrp::Presence(Presence {
                reply_required: false,
                servers: Servers { sender, receiver: RegistrarId(0) },
                checksum: Some(PeChecksum(checksum)),
                server_information: None,
            })
            .emit_to_vec()
        };
        let add = |sender, home| {
            let pool_element = PoolElement { home_registrar: home, ..peer_pe() };
            Enrp::HandleUpdate(HandleUpdate {
                takeover_suggested: false,
                servers: Servers { sender, receiver: RegistrarId(0) },
                action: UpdateAction::ADD_PE,
                pool_handle: pool(),
                pool_element,
            })
            .emit_to_vec()
        };
        s.handle_enrp_message(at(0), 1, &presence(PEER, 0xffff));
        s.handle_enrp_message(at(0), 2, &presence(THIRD, 0xffff));
        s.handle_enrp_message(at(1), 1, &add(PEER, PEER));
        s.handle_enrp_message(at(2), 1, &presence(PEER, 0x1234));
        let mut asked = false;
        while let Some(out) = s.poll_transmit_enrp() {
            asked |= out.assoc == 1
                && matches!(Enrp::parse(&out.bytes), Ok(Enrp::HandleTableRequest(_)));
        }
        assert!(asked, "a checksum mismatch asks PEER for its table");
        let empty = Enrp::HandleTableResponse(codec::enrp::HandleTableResponse {
            more_to_send: false,
            reject: false,
            servers: Servers { sender: PEER, receiver: OWN },
            pools: Vec::new(),
        });
        s.handle_enrp_message(at(3), 1, &empty.emit_to_vec());
        assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_some(), "not swept at once");
        if claimed {
            s.handle_enrp_message(at(S), 2, &add(THIRD, THIRD));
        }
        // Both peers keep talking; MAX-TIME-LAST-HEARD (61 s) after the table, the sweep.
        for t in [30 * S, 60 * S] {
            s.handle_enrp_message(at(t), 1, &presence(PEER, 0x1234));
            s.handle_enrp_message(at(t), 2, &presence(THIRD, 0xffff));
            s.handle_timeout(at(t));
            while s.poll_transmit_enrp().is_some() {}
        }
        assert!(s.handlespace().element(&pool(), PoolElementId(7)).is_some(), "not before");
        s.handle_timeout(at(3 + 61 * S));
        while s.poll_transmit_enrp().is_some() {}
        let element = s.handlespace().element(&pool(), PoolElementId(7));
        if claimed {
            assert_eq!(element.map(|e| e.home()), Some(THIRD), "claimed by THIRD: it stays");
        } else {
            assert!(element.is_none(), "unclaimed: swept after MAX-TIME-LAST-HEARD");
        }
    }
}
