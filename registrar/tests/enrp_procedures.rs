//! Sans-IO tests of every ENRP procedure (RFC 5353 §3) on `proto::enrp::Enrp`: messages in as
//! bytes, messages out compared as bytes with what the codec emits for the expected Repr, and a
//! boundary pair for every timer (the last instant that keeps the old state and the first that
//! changes it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::enrp::{
    HandleTableRequest, HandleTableResponse, HandleUpdate, InitTakeover, InitTakeoverAck,
    ListRequest, ListResponse, Message, Presence, Servers, TakeoverServer, UpdateAction,
};
use codec::param::{AddressList, PeChecksum, SctpTransport, ServerInformation};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{Duration, Handlespace, Instant, PolicySettings, Protocol, TransportInfo};
use registrar::proto::enrp::{Announcement, Enrp, EnrpAction, EnrpConfig, PeerOp, View};
use registrar::proto::SessionId;

const OWN: RegistrarId = RegistrarId(0x10);
const PEER: RegistrarId = RegistrarId(0x20);
const THIRD: RegistrarId = RegistrarId(0x30);
const MS: u64 = 1_000;
const HEARTBEAT: u64 = 30_000 * MS;
const LAST_HEARD: u64 = 61_000 * MS;
const NO_RESPONSE: u64 = 5_000 * MS;

fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

fn address(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 9901)
}

fn session(assoc: u32) -> SessionId {
    SessionId { core: 0, assoc }
}

fn info(id: RegistrarId, last: u8) -> ServerInformation {
    let transport = SctpTransport {
        port: 9901,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&[address(last).ip()]).unwrap(),
    };
    ServerInformation { server_id: id, transport }
}

/// A registrar with the RFC 5353 §4.2 default timers and `peers` configured.
fn enrp(peers: Vec<SocketAddr>) -> Enrp {
    Enrp::new(at(0), OWN, EnrpConfig::new(address(1), peers))
}

fn hs() -> Handlespace {
    Handlespace::new(OWN, handlespace::Config::default())
}

/// A handlespace holding one PE of each peer: a failed peer with PEs is taken over.
fn hs_peers() -> Handlespace {
    let mut h = hs();
    register(&mut h, "T", 0x99, PEER);
    register(&mut h, "T", 0x98, THIRD);
    h
}

/// What the ENRP server asked for, in order, messages parsed.
#[derive(Debug, PartialEq)]
enum Out {
    Send(SessionId, Message),
    Connect(SocketAddr),
    Apply(String),
    Multicast(Message),
}

fn drain(e: &mut Enrp) -> Vec<Out> {
    let mut out = Vec::new();
    while let Some(action) = e.poll_action() {
        out.push(match action {
            EnrpAction::Send { session, bytes } => {
                Out::Send(session, Message::parse(&bytes).expect("ENRP emits valid messages"))
            }
            EnrpAction::Connect(a) => Out::Connect(a),
            EnrpAction::Apply(op) => Out::Apply(describe(&op)),
            EnrpAction::Multicast(bytes) => {
                Out::Multicast(Message::parse(&bytes).expect("ENRP emits valid messages"))
            }
        });
    }
    out
}

fn describe(op: &PeerOp) -> String {
    match op {
        PeerOp::Upsert { registration: r, may_rehome } => format!(
            "upsert {} {:#x} home {:#x}{}",
            r.pool_handle,
            r.id.0,
            r.home.0,
            if *may_rehome { "" } else { " (no re-homing)" }
        ),
        PeerOp::Remove { pool_handle, id, home } => {
            format!("remove {pool_handle} {:#x} home {:#x}", id.0, home.0)
        }
        PeerOp::TakeOver { source, target } => {
            format!("take over {:#x} -> {:#x}", source.0, target.0)
        }
    }
}

fn presence(sender: RegistrarId, reply_required: bool, checksum: u16) -> Message {
    Message::Presence(Presence {
        reply_required,
        servers: Servers { sender, receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(checksum)),
        server_information: Some(info(sender, 2)),
    })
}

fn deliver(e: &mut Enrp, now: u64, s: SessionId, m: &Message, view: &View<'_>) {
    e.handle_message(at(now), s, &m.emit_to_vec(), view);
}

/// Our Presence as the codec emits it (the bytes every test compares against).
fn our_presence(reply_required: bool, receiver: RegistrarId, checksum: u16) -> Message {
    Message::Presence(Presence {
        reply_required,
        servers: Servers { sender: OWN, receiver },
        checksum: Some(PeChecksum(checksum)),
        server_information: Some(info(OWN, 1)),
    })
}

/// An ENRP server that knows `PEER` (heard at `now`) on session 1.
fn with_peer(now: u64, view: &View<'_>) -> Enrp {
    let mut e = enrp(Vec::new());
    deliver(&mut e, now, session(1), &presence(PEER, false, 0xffff), view);
    drain(&mut e);
    e
}

fn pool_element(id: u32, home: RegistrarId) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: home,
        registration_life_ms: 30_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))]).unwrap(),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    }
}

/// A Handle Update from `sender` for PE `id` of pool "P", homed at `sender`.
fn update_from(sender: RegistrarId, action: UpdateAction, id: u32) -> Message {
    Message::HandleUpdate(HandleUpdate {
        takeover_suggested: false,
        servers: Servers { sender, receiver: RegistrarId(0) },
        action,
        pool_handle: PoolHandle::new(b"P").unwrap(),
        pool_element: pool_element(id, sender),
    })
}

fn register(h: &mut Handlespace, pool: &str, id: u32, home: RegistrarId) {
    register_element(h, pool, pool_element(id, home));
}

/// Registers `pe` as the shard stores it: its encoded parameter and its user transport.
fn register_element(h: &mut Handlespace, pool: &str, pe: PoolElement) {
    let UserTransport::Sctp(transport) = pe.user_transport else { panic!("SCTP PEs only") };
    let registration = handlespace::Registration {
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        id: pe.id,
        home: pe.home_registrar,
        policy: PolicySettings {
            policy_type: codec::PolicyType::ROUND_ROBIN,
            ..PolicySettings::new()
        },
        transport: TransportInfo {
            protocol: Protocol::Sctp,
            port: transport.port,
            transport_use: transport.transport_use,
            addresses: transport.addresses.as_slice().into(),
        },
        lifetime: Duration::INFINITE,
        registrator: u64::MAX,
        wire: pe.encode().into(),
    };
    h.register(at(0), registration).unwrap();
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.1
//= type=test
//# If no existing peer server is specified, the initiating server MUST assume that it is alone
//# in the operational scope ... and MUST consider its initialization completed
#[test]
fn alone_is_ready_at_start_and_asks_for_nothing() {
    let mut e = enrp(Vec::new());
    assert!(e.is_ready());
    assert_eq!(drain(&mut e), []);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.1
//= type=test
//# The ENRP server MUST send an ENRP_PRESENCE message with the Reply-required flag set to '1'
//# to the source address found in the arrived message.
// Goal: an unknown peer's first message makes it a peer and draws a reply-required Presence
// with our checksum and Server Information; a Presence asking for a reply gets one without
// the flag (no ping-pong).
#[test]
fn a_new_peer_is_asked_who_it_is() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = enrp(Vec::new());
    let update = update_from(PEER, UpdateAction::ADD_PE, 7);
    deliver(&mut e, 0, session(1), &update, &view);
    let out = drain(&mut e);
    let empty = h.pe_checksum(OWN);
    assert_eq!(out[0], Out::Send(session(1), our_presence(true, PEER, empty)));
    assert_eq!(out[1], Out::Apply(format!("upsert P {:#x} home {:#x}", 7, PEER.0)));
    assert_eq!(e.peers().ids(), [PEER]);
    // A reply-required Presence from a known peer: answered, flag clear.
    deliver(&mut e, 10, session(1), &presence(PEER, true, 0xffff), &view);
    assert_eq!(drain(&mut e), [Out::Send(session(1), our_presence(false, PEER, empty))]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.2
//= type=test
//# Every PEER-HEARTBEAT-CYCLE seconds, an ENRP server MUST announce its continued presence to
//# all its peer with a ENRP_PRESENCE message.
#[test]
fn heartbeat_at_the_cycle_not_before() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    e.handle_timeout(at(HEARTBEAT - MS), &view);
    assert_eq!(drain(&mut e), [], "1 ms before PEER-HEARTBEAT-CYCLE");
    assert_eq!(e.poll_timeout(), Some(at(HEARTBEAT)));
    e.handle_timeout(at(HEARTBEAT), &view);
    let beat = our_presence(false, RegistrarId(0), h.pe_checksum(OWN));
    assert_eq!(drain(&mut e), [Out::Send(session(1), beat)]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.3
//= type=test
//# If a peer has not been heard for more than MAX-TIME-LAST-HEARD seconds, the ENRP server
//# MUST immediately send a point-to-point ENRP_PRESENCE with the Reply_request flag set to '1'
//# to that peer.  If the send fails or the peer does not reply after MAX-TIME-NO-RESPONSE
//# seconds, the ENRP server MUST consider the peer server dead
// Goal: both thresholds as boundary pairs. Method: heartbeats stretched out of the way; the
// peer heard at 0; probe at MAX-TIME-LAST-HEARD − 1 ms (none) and + 1 ms (a reply-required
// Presence); death at probe + MAX-TIME-NO-RESPONSE − 1 ms (alive) and + 0 (dead: with no other
// peer, the two-registrar takeover follows at once).
#[test]
fn last_heard_and_no_response_boundaries() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut config = EnrpConfig::new(address(1), Vec::new());
    config.heartbeat_cycle = Duration::from_secs(1_000);
    config.max_time_last_heard = Duration::from_micros(LAST_HEARD + HEARTBEAT);
    let mut e = Enrp::new(at(0), OWN, config);
    deliver(&mut e, 0, session(1), &presence(PEER, false, 0xffff), &view);
    drain(&mut e);
    let last_heard = LAST_HEARD + HEARTBEAT;
    e.handle_timeout(at(last_heard - MS), &view);
    assert_eq!(drain(&mut e), [], "MAX-TIME-LAST-HEARD - 1 ms keeps the peer");
    e.handle_timeout(at(last_heard), &view);
    assert_eq!(drain(&mut e), [], "exactly MAX-TIME-LAST-HEARD is not 'more than'");
    let probe_at = last_heard + MS;
    e.handle_timeout(at(probe_at), &view);
    let probe = our_presence(true, PEER, h.pe_checksum(OWN));
    assert_eq!(drain(&mut e), [Out::Send(session(1), probe)], "+1 ms starts the probe");
    e.handle_timeout(at(probe_at + NO_RESPONSE - MS), &view);
    assert_eq!(drain(&mut e), [], "MAX-TIME-NO-RESPONSE - 1 ms: still alive");
    assert!(e.peers().get(PEER).unwrap().active);
    e.handle_timeout(at(probe_at + NO_RESPONSE), &view);
    let out = drain(&mut e);
    assert!(
        out.contains(&Out::Apply(format!("take over {:#x} -> {:#x}", PEER.0, OWN.0))),
        "{out:?}"
    );
    assert_eq!(e.stats().peers_failed, 1);
}

// Goal: a probe answered in time keeps the peer. Method: probe, then any message from the
// peer 1 ms before the deadline; the deadline passes without a failure.
#[test]
fn an_answered_probe_keeps_the_peer() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    let probe_at = LAST_HEARD + MS;
    e.handle_timeout(at(probe_at), &view);
    drain(&mut e);
    deliver(&mut e, probe_at + NO_RESPONSE - MS, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(probe_at + NO_RESPONSE), &view);
    assert!(drain(&mut e).iter().all(|o| matches!(o, Out::Send(_, Message::Presence(_)))));
    assert_eq!(e.stats().peers_failed, 0);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.1
//= type=test
//# Once the initiating server has received the ENRP_INIT_TAKEOVER_ACK message from all of its
//# currently known peers (except for the target server), it MUST consider that it has won the
//# arbitration
// Goal: the two-registrar case: the survivor has nobody to wait for and wins at once. Method:
// one peer, which dies; the Init Takeover goes to the target (its Presence could still cancel),
// the Takeover Server to nobody, and the shards re-home the target's PEs.
#[test]
fn two_registrars_the_survivor_wins_alone() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + MS + NO_RESPONSE), &view);
    let out = drain(&mut e);
    let init = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: OWN, receiver: RegistrarId(0) },
        target: PEER,
    });
    assert_eq!(
        out,
        [
            Out::Send(session(1), init),
            Out::Apply(format!("take over {:#x} -> {:#x}", PEER.0, OWN.0)),
        ]
    );
    assert_eq!(e.takeovers_won().collect::<Vec<_>>(), [PEER]);
    assert!(e.peers().get(PEER).is_none(), "§3.5.2: the target leaves the peer list");
}

/// An ENRP server knowing `PEER` (session 1) and `THIRD` (session 2), both heard at 0.
fn with_two_peers(view: &View<'_>) -> Enrp {
    let mut e = with_peer(0, view);
    let third = Message::Presence(Presence {
        reply_required: false,
        servers: Servers { sender: THIRD, receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(0xffff)),
        server_information: Some(info(THIRD, 3)),
    });
    deliver(&mut e, 0, session(2), &third, view);
    drain(&mut e);
    e
}

/// Makes `e` (knowing PEER and THIRD) declare THIRD dead: PEER keeps talking.
fn third_dies(e: &mut Enrp, view: &View<'_>) -> Vec<Out> {
    let probe_at = LAST_HEARD + MS;
    deliver(e, probe_at, session(1), &presence(PEER, false, 0xffff), view);
    e.handle_timeout(at(probe_at), view);
    drain(e);
    deliver(e, probe_at + NO_RESPONSE, session(1), &presence(PEER, false, 0xffff), view);
    e.handle_timeout(at(probe_at + NO_RESPONSE), view);
    drain(e)
}

// Goal: with three registrars the initiator waits for the other survivor's ack, then announces
// the takeover to it and re-homes. Method: THIRD dies; Init Takeover to both; no win before
// PEER's ack; after it, Takeover Server to PEER and the re-homing.
#[test]
fn three_registrars_the_initiator_wins_on_the_ack() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    let out = third_dies(&mut e, &view);
    let init = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: OWN, receiver: RegistrarId(0) },
        target: THIRD,
    });
    assert!(out.contains(&Out::Send(session(1), init.clone())), "{out:?}");
    assert!(out.contains(&Out::Send(session(2), init)), "to the target too: {out:?}");
    assert!(!out.iter().any(|o| matches!(o, Out::Apply(_))), "no win before the ack");
    let ack = Message::InitTakeoverAck(InitTakeoverAck {
        servers: Servers { sender: PEER, receiver: OWN },
        target: THIRD,
    });
    deliver(&mut e, LAST_HEARD + NO_RESPONSE + 2 * MS, session(1), &ack, &view);
    let takeover = Message::TakeoverServer(TakeoverServer {
        servers: Servers { sender: OWN, receiver: RegistrarId(0) },
        target: THIRD,
    });
    let apply = Out::Apply(format!("take over {:#x} -> {:#x}", THIRD.0, OWN.0));
    assert_eq!(drain(&mut e), [Out::Send(session(1), takeover), apply]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.1
//= type=test
//# If the peer's server ID is smaller in value than the Sending Server's ID in the arrived
//# ENRP_INIT_TAKEOVER message, the peer server MUST immediately abort its own take-over attempt
// Goal: both outcomes of concurrent arbitration. Method: we (0x10) arbitrate for THIRD; an
// Init Takeover from PEER (0x20, larger) makes us yield and ack; an Init Takeover from a
// smaller id (0x05) while we arbitrate is ignored.
#[test]
fn concurrent_arbitration_the_larger_id_wins() {
    let h = hs_peers();
    let view = View::new(&h, None);
    // Outcome 1: the other initiator's id is larger: we yield.
    let mut e = with_two_peers(&view);
    third_dies(&mut e, &view);
    let theirs = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        target: THIRD,
    });
    deliver(&mut e, LAST_HEARD + NO_RESPONSE + 2 * MS, session(1), &theirs, &view);
    let ack = Message::InitTakeoverAck(InitTakeoverAck {
        servers: Servers { sender: OWN, receiver: PEER },
        target: THIRD,
    });
    assert_eq!(drain(&mut e), [Out::Send(session(1), ack)]);
    // Our own arbitration is gone: a late ack from PEER wins nothing.
    let late = Message::InitTakeoverAck(InitTakeoverAck {
        servers: Servers { sender: PEER, receiver: OWN },
        target: THIRD,
    });
    deliver(&mut e, LAST_HEARD + NO_RESPONSE + 3 * MS, session(1), &late, &view);
    assert!(!drain(&mut e).iter().any(|o| matches!(o, Out::Apply(_))));
    assert_eq!(e.stats().takeovers_won, 0);

    // Outcome 2: the other initiator's id is smaller: ignored, we keep going and win.
    let small = RegistrarId(0x05);
    let mut e = with_two_peers(&view);
    deliver(&mut e, 0, session(3), &presence(small, false, 0xffff), &view);
    drain(&mut e);
    let probe_at = LAST_HEARD + MS;
    for (s, id) in [(1, PEER), (3, small)] {
        deliver(&mut e, probe_at, session(s), &presence(id, false, 0xffff), &view);
    }
    e.handle_timeout(at(probe_at), &view);
    for (s, id) in [(1, PEER), (3, small)] {
        deliver(&mut e, probe_at + NO_RESPONSE, session(s), &presence(id, false, 0xffff), &view);
    }
    e.handle_timeout(at(probe_at + NO_RESPONSE), &view);
    drain(&mut e);
    let theirs = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: small, receiver: RegistrarId(0) },
        target: THIRD,
    });
    deliver(&mut e, probe_at + NO_RESPONSE + MS, session(3), &theirs, &view);
    assert_eq!(drain(&mut e), [], "ignored: our id is larger");
    for (s, id) in [(1, PEER), (3, small)] {
        let ack = Message::InitTakeoverAck(InitTakeoverAck {
            servers: Servers { sender: id, receiver: OWN },
            target: THIRD,
        });
        deliver(&mut e, probe_at + NO_RESPONSE + 2 * MS, session(s), &ack, &view);
    }
    assert_eq!(e.takeovers_won().collect::<Vec<_>>(), [THIRD]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.1
//= type=test
//# if it receives an ENRP_PRESENCE from the target server at any point in the arbitration
//# process, the initiating server MUST immediately stop the takeover process
#[test]
fn a_presence_from_the_target_cancels_the_takeover() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    third_dies(&mut e, &view);
    let t = LAST_HEARD + NO_RESPONSE + MS;
    let alive = Message::Presence(Presence {
        reply_required: false,
        servers: Servers { sender: THIRD, receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(0xffff)),
        server_information: None,
    });
    deliver(&mut e, t, session(2), &alive, &view);
    let ack = Message::InitTakeoverAck(InitTakeoverAck {
        servers: Servers { sender: PEER, receiver: OWN },
        target: THIRD,
    });
    deliver(&mut e, t + MS, session(1), &ack, &view);
    assert!(!drain(&mut e).iter().any(|o| matches!(o, Out::Apply(_))), "cancelled");
    assert!(e.peers().get(THIRD).unwrap().active, "the target is active again");
}

// Found by the fault lab (partition-nontransitive, 52 missing judgements): r1 and r2 cut from
// each other while r3 reached both; each heard a majority (itself and r3), took the other over
// with r3's acks, and each then dropped the PEs the other's keep-alives had moved. Goal: a
// peer that still hears the target does not acknowledge its takeover; once the target has been
// silent here past MAX-TIME-LAST-HEARD, the initiator's next Init Takeover is acknowledged.
// Method: THIRD heard at 10 ms; PEER's Init Takeover of THIRD at 20 ms, and again after
// THIRD's silence.
#[test]
fn a_peer_that_still_hears_the_target_withholds_its_takeover_ack() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    deliver(&mut e, 10 * MS, session(2), &presence(THIRD, false, 0xffff), &view);
    drain(&mut e);
    let theirs = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        target: THIRD,
    });
    deliver(&mut e, 20 * MS, session(1), &theirs, &view);
    assert_eq!(drain(&mut e), [], "THIRD was heard 10 ms ago: no ack");
    assert!(e.peers().get(THIRD).unwrap().active, "THIRD is still monitored");
    assert_eq!(e.stats().takeover_acks_withheld, 1);
    // THIRD silent past MAX-TIME-LAST-HEARD: PEER asks again and gets the ack.
    deliver(&mut e, 10 * MS + LAST_HEARD + 2 * MS, session(1), &theirs, &view);
    let ack = Message::InitTakeoverAck(InitTakeoverAck {
        servers: Servers { sender: OWN, receiver: PEER },
        target: THIRD,
    });
    assert_eq!(drain(&mut e), [Out::Send(session(1), ack)]);
    assert!(!e.peers().get(THIRD).unwrap().active, "marked not active (§3.5.1)");
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.1
//= type=test
//# If the peer server determines that it (itself) is the target server indicated in the
//# ENRP_INIT_TAKEOVER message, it MUST immediately announce an ENRP_PRESENCE message to all
//# its peer ENRP servers
#[test]
fn the_target_answers_an_init_takeover_with_presence_to_all() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    let about_us = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        target: OWN,
    });
    deliver(&mut e, 10, session(1), &about_us, &view);
    let out = drain(&mut e);
    let beat = our_presence(false, RegistrarId(0), h.pe_checksum(OWN));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.contains(&Out::Send(session(1), beat.clone())));
    assert!(out.contains(&Out::Send(session(2), beat)));
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.5.2
//= type=test
//# remove the target server from its internal peer list; update the Home ENRP server of each
//# PE in its local copy of the handlespace to be the sender of the message
#[test]
fn takeover_server_rehomes_to_the_sender() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    let done = Message::TakeoverServer(TakeoverServer {
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        target: THIRD,
    });
    deliver(&mut e, 10, session(1), &done, &view);
    assert_eq!(drain(&mut e), [Out::Apply(format!("take over {:#x} -> {:#x}", THIRD.0, PEER.0))]);
    assert_eq!(e.peers().ids(), [PEER]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.3.2
//= type=test
//# it MUST first find the pool and the PE in its own handlespace, and then remove the PE
#[test]
fn handle_updates_go_to_the_shards() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    for (action, expected) in [
        (UpdateAction::ADD_PE, format!("upsert P {:#x} home {:#x}", 7, PEER.0)),
        (UpdateAction::DEL_PE, format!("remove P {:#x} home {:#x}", 7, PEER.0)),
    ] {
        let update = update_from(PEER, action, 7);
        deliver(&mut e, 10, session(1), &update, &view);
        assert_eq!(drain(&mut e), [Out::Apply(expected)]);
    }
    assert_eq!(e.stats().updates_received, 2);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.3.1
//= type=test
//# An ENRP server MUST announce this update to all its peers in a ENRP_HANDLE_UPDATE message
// Goal: one of our changes becomes one Handle Update, the same bytes to every peer, and none
// while there is no peer.
#[test]
fn announcements_reach_every_peer_once() {
    let h = hs();
    let view = View::new(&h, None);
    let pe = pool_element(9, OWN);
    let announcement = Announcement {
        action: UpdateAction::ADD_PE,
        pool_handle: PoolHandle::new(b"P").unwrap(),
        wire: handlespace::Wire::from(pe.encode()),
    };
    let mut alone = enrp(Vec::new());
    alone.announce(&announcement);
    assert_eq!(drain(&mut alone), []);
    let mut e = with_two_peers(&view);
    e.announce(&announcement);
    let update = Message::HandleUpdate(HandleUpdate {
        takeover_suggested: false,
        servers: Servers { sender: OWN, receiver: RegistrarId(0) },
        action: UpdateAction::ADD_PE,
        pool_handle: PoolHandle::new(b"P").unwrap(),
        pool_element: pe,
    });
    let out = drain(&mut e);
    assert_eq!(out.len(), 2);
    assert!(out.contains(&Out::Send(session(1), update.clone())));
    assert!(out.contains(&Out::Send(session(2), update)));
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.2
//= type=test
//# Upon the reception of this request, the mentor peer SHOULD reply with an
//# ENRP_LIST_RESPONSE message and include in the message body all existing ENRP servers known
//# by the mentor peer.
#[test]
fn list_request_answered_with_every_known_server() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    let request =
        Message::ListRequest(ListRequest { servers: Servers { sender: PEER, receiver: OWN } });
    deliver(&mut e, 10, session(1), &request, &view);
    let Out::Send(s, Message::ListResponse(r)) = &drain(&mut e)[0] else { panic!() };
    assert_eq!(*s, session(1));
    assert!(!r.reject);
    let ids: Vec<RegistrarId> = r.peers.iter().map(|p| p.server_id).collect();
    assert_eq!(ids, [OWN, THIRD], "ourselves and the others, not the asker");
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.2.2
//= type=test
//# it MUST reject the request by the initiating server and respond with an
//# ENRP_LIST_RESPONSE message with the R flag set to '1', and with no server information
#[test]
fn a_starting_mentor_refuses_lists_and_tables() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = enrp(vec![address(9)]);
    assert!(!e.is_ready());
    assert_eq!(drain(&mut e), [Out::Connect(address(9))]);
    deliver(&mut e, 0, session(1), &presence(PEER, false, 0xffff), &view);
    drain(&mut e);
    let request =
        Message::ListRequest(ListRequest { servers: Servers { sender: PEER, receiver: OWN } });
    deliver(&mut e, 10, session(1), &request, &view);
    let refusal = ListResponse {
        reject: true,
        servers: Servers { sender: OWN, receiver: PEER },
        peers: vec![],
    };
    assert_eq!(drain(&mut e), [Out::Send(session(1), Message::ListResponse(refusal))]);
    let table = Message::HandleTableRequest(HandleTableRequest {
        own_children_only: false,
        servers: Servers { sender: PEER, receiver: OWN },
    });
    deliver(&mut e, 20, session(1), &table, &view);
    let refusal = HandleTableResponse {
        more_to_send: false,
        reject: true,
        servers: Servers { sender: OWN, receiver: PEER },
        pools: vec![],
    };
    assert_eq!(drain(&mut e), [Out::Send(session(1), Message::HandleTableResponse(refusal))]);
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.3
//= type=test
//# the mentor peer MUST set the M flag to '1' in the outbound ENRP_HANDLE_TABLE_RESPONSE if
//# there is more data to be transferred and MUST keep track of the progress of the current
//# download session.  The mentor peer MUST set the M flag to '0' in the last
// Goal: a download in pages with the M flag, each PE once, grouped by pool; with W only our
// own PEs. Method: 10 PEs (7 ours, 3 the peer's) in two pools, pages of 4.
#[test]
fn table_download_pages_with_the_m_flag() {
    let mut h = hs();
    for id in 1..=7 {
        register(&mut h, if id % 2 == 0 { "A" } else { "B" }, id, OWN);
    }
    for id in 8..=10 {
        register(&mut h, "A", id, PEER);
    }
    let view = View::new(&h, None);
    let mut config = EnrpConfig::new(address(1), Vec::new());
    config.table_page_elements_max = 4;
    let mut e = Enrp::new(at(0), OWN, config);
    deliver(&mut e, 0, session(1), &presence(PEER, false, h.pe_checksum(PEER)), &view);
    drain(&mut e);
    for (w, expected) in [(false, vec![4, 4, 2]), (true, vec![4, 3])] {
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        loop {
            let request = Message::HandleTableRequest(HandleTableRequest {
                own_children_only: w,
                servers: Servers { sender: PEER, receiver: OWN },
            });
            deliver(&mut e, 10, session(1), &request, &view);
            let out = drain(&mut e);
            let [Out::Send(_, Message::HandleTableResponse(r))] = &out[..] else {
                panic!("{out:?}")
            };
            pages.push(r.pools.iter().map(|p| p.pool_elements.len()).sum::<usize>());
            for pool in &r.pools {
                for pe in &pool.pool_elements {
                    assert!(!w || pe.home_registrar == OWN, "W: own PEs only");
                    seen.push(pe.id.0);
                }
            }
            if !r.more_to_send {
                break;
            }
        }
        assert_eq!(pages, expected, "W = {w}");
        seen.sort_unstable();
        let all: Vec<u32> = if w { (1..=7).collect() } else { (1..=10).collect() };
        assert_eq!(seen, all, "each PE exactly once");
    }
}

// Goal: start-up end to end (§3.2.2-3.2.3): connect to the configured peer, ask who it is,
// take it as mentor, List Request, learn and connect to the third registrar, download the
// table (W = 0, two pages), apply each PE, then ready.
#[test]
fn startup_through_a_mentor() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = enrp(vec![address(2)]);
    assert_eq!(drain(&mut e), [Out::Connect(address(2))]);
    e.handle_connecting(address(2), session(1));
    e.handle_up(at(1), session(1), &view);
    let hello = our_presence(true, RegistrarId(0), h.pe_checksum(OWN));
    assert_eq!(drain(&mut e), [Out::Send(session(1), hello)]);
    deliver(&mut e, 2, session(1), &presence(PEER, false, 0xffff), &view);
    let list =
        Message::ListRequest(ListRequest { servers: Servers { sender: OWN, receiver: PEER } });
    assert!(drain(&mut e).contains(&Out::Send(session(1), list)));
    let response = Message::ListResponse(ListResponse {
        reject: false,
        servers: Servers { sender: PEER, receiver: OWN },
        peers: vec![info(PEER, 2), info(THIRD, 3), info(OWN, 1)],
    });
    deliver(&mut e, 3, session(1), &response, &view);
    let table = Message::HandleTableRequest(HandleTableRequest {
        own_children_only: false,
        servers: Servers { sender: OWN, receiver: PEER },
    });
    assert_eq!(drain(&mut e), [Out::Connect(address(3)), Out::Send(session(1), table.clone())]);
    let page = |more, id| {
        Message::HandleTableResponse(HandleTableResponse {
            more_to_send: more,
            reject: false,
            servers: Servers { sender: PEER, receiver: OWN },
            pools: vec![codec::enrp::PoolEntry {
                pool_handle: PoolHandle::new(b"P").unwrap(),
                pool_elements: vec![pool_element(id, THIRD)],
            }],
        })
    };
    deliver(&mut e, 4, session(1), &page(true, 1), &view);
    let upsert = |id: u32| Out::Apply(format!("upsert P {id:#x} home {:#x}", THIRD.0));
    assert_eq!(drain(&mut e), [upsert(1), Out::Send(session(1), table)]);
    assert!(!e.is_ready());
    deliver(&mut e, 5, session(1), &page(false, 2), &view);
    assert_eq!(drain(&mut e), [upsert(2)]);
    assert!(e.is_ready());
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.6.3
//= type=test
//# If so, the ENRP server SHOULD silently remove those "marked" entries.
// Goal: audit and mark-and-sweep. Method: we hold PEs 1 and 2 of PEER; its Presence announces
// another checksum; we ask for its own PEs (W = 1); its answer lists 2 and 3: 3 is applied, 2
// unmarked, 1 swept, MAX-TIME-LAST-HEARD later (found by the one-hour soak: "not PEER's" is
// not "gone"; a PE another registrar claims meanwhile has moved, and the removal, which names
// PEER as the home, leaves it). A matching checksum asks for nothing.
#[test]
fn checksum_mismatch_resynchronises_and_sweeps() {
    let mut h = hs();
    register(&mut h, "P", 1, PEER);
    register(&mut h, "P", 2, PEER);
    let view = View::new(&h, None);
    let mut e = enrp(Vec::new());
    deliver(&mut e, 0, session(1), &presence(PEER, false, h.pe_checksum(PEER)), &view);
    let out = drain(&mut e);
    assert!(!out.iter().any(|o| matches!(o, Out::Send(_, Message::HandleTableRequest(_)))));
    deliver(&mut e, 10, session(1), &presence(PEER, false, 0x1234), &view);
    let request = Message::HandleTableRequest(HandleTableRequest {
        own_children_only: true,
        servers: Servers { sender: OWN, receiver: PEER },
    });
    assert_eq!(drain(&mut e), [Out::Send(session(1), request)]);
    assert_eq!(e.stats().resyncs, 1);
    let answer = Message::HandleTableResponse(HandleTableResponse {
        more_to_send: false,
        reject: false,
        servers: Servers { sender: PEER, receiver: OWN },
        pools: vec![codec::enrp::PoolEntry {
            pool_handle: PoolHandle::new(b"P").unwrap(),
            pool_elements: vec![pool_element(2, PEER), pool_element(3, PEER)],
        }],
    });
    deliver(&mut e, 20, session(1), &answer, &view);
    let upsert = |id: u32| Out::Apply(format!("upsert P {id:#x} home {:#x}", PEER.0));
    let sweep = Out::Apply(format!("remove P {:#x} home {:#x}", 1, PEER.0));
    assert_eq!(drain(&mut e), [upsert(2), upsert(3)], "nothing removed yet");
    // PEER's next Presence, still mismatching (our view still counts PE 1): no second table.
    deliver(&mut e, 30, session(1), &presence(PEER, false, 0x1234), &view);
    assert!(!drain(&mut e)
        .iter()
        .any(|o| matches!(o, Out::Send(_, Message::HandleTableRequest(_)))));
    let due = 20 + LAST_HEARD;
    assert!(e.poll_timeout().is_some_and(|t| t <= at(due)), "the sweep is a timer");
    e.handle_timeout(at(due - 1), &view);
    assert!(!drain(&mut e).contains(&sweep), "not before MAX-TIME-LAST-HEARD");
    e.handle_timeout(at(due), &view);
    assert!(drain(&mut e).contains(&sweep));
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.7
//= type=test
//# if an error report to the message sender is needed, the ENRP server that discovered the
//# error SHOULD send back an ENRP_ERROR message with a proper error cause code.
// Goal: an unknown message type gets an ENRP Error with Unrecognized Message; a truncated one
// is counted; neither changes the peer table.
#[test]
fn undecodable_messages_get_an_enrp_error() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    e.handle_message(at(5), session(1), &[0x7f, 0, 0, 4], &view);
    let out = drain(&mut e);
    let [Out::Send(s, Message::Error(err))] = &out[..] else { panic!("{out:?}") };
    assert_eq!(*s, session(1));
    assert_eq!(err.error.causes[0].code, codec::ErrorCause::UNRECOGNIZED_MESSAGE);
    assert_eq!(err.servers, Servers { sender: OWN, receiver: PEER });
    e.handle_message(at(6), session(1), &[0x01, 0, 0], &view);
    assert_eq!(e.stats().decode_errors, 2);
    assert_eq!(e.peers().ids(), [PEER]);
}

// Goal: a failed peer that owns no PE (a registrar without PEs, or RSPLIB's hsdump, which
// speaks ENRP once) leaves the peer list without a takeover, as in RSPLIB. Method: the peer
// dies with an empty handlespace; no Init Takeover, no re-homing, and it is gone.
#[test]
fn a_failed_peer_without_pes_is_just_removed() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_peer(0, &view);
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + MS + NO_RESPONSE), &view);
    assert_eq!(drain(&mut e), []);
    assert!(e.peers().get(PEER).is_none());
    assert_eq!(e.stats().peers_failed, 1);
}

/// A registrar that uses the multicast channel, with the RFC default timers.
fn multicast_enrp() -> Enrp {
    let mut config = EnrpConfig::new(address(1), Vec::new());
    config.multicast = true;
    Enrp::new(at(0), OWN, config)
}

//= https://www.rfc-editor.org/rfc/rfc5353#section-3.1
//= type=test
//# Announcements are sent out via "group-casts" over the ENRP server channel.
// Goal: with multicast on, our Presence (checksum, Server Information, no receiver) goes to
// the channel at start and then every PEER-HEARTBEAT-CYCLE, the boundary pair included; with
// it off, never.
#[test]
fn multicast_presence_at_start_and_every_cycle() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = multicast_enrp();
    assert_eq!(e.poll_timeout(), Some(at(0)), "the first Presence is due at once");
    e.handle_timeout(at(0), &view);
    let beat = our_presence(false, RegistrarId(0), h.pe_checksum(OWN));
    assert_eq!(drain(&mut e), [Out::Multicast(beat.clone())]);
    e.handle_timeout(at(HEARTBEAT - MS), &view);
    assert_eq!(drain(&mut e), [], "1 ms before the cycle");
    e.handle_timeout(at(HEARTBEAT), &view);
    assert_eq!(drain(&mut e), [Out::Multicast(beat)]);
    let mut off = enrp(Vec::new());
    off.handle_timeout(at(HEARTBEAT), &view);
    assert_eq!(drain(&mut off), [], "multicast off: nothing to the channel");
}

// Goal: a registrar heard on the channel becomes an address we connect to, once; its Server
// Information is preferred, the datagram's source (with our ENRP port) stands in when there is
// none or it is a wildcard; our own Presence, id 0, other messages, garbage, a peer we already
// have an association with, and everything when multicast is off, change nothing.
#[test]
fn a_registrar_heard_on_the_channel_is_connected_to_once() {
    let mut e = multicast_enrp();
    drain(&mut e);
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 40_000);
    let heard = presence(PEER, false, 0x1234).emit_to_vec();
    e.handle_multicast(at(5), source, &heard);
    assert_eq!(drain(&mut e), [Out::Connect(address(2))], "to its Server Information");
    e.handle_multicast(at(6), source, &heard);
    assert_eq!(drain(&mut e), [], "an address already known is not connected to again");
    assert_eq!(e.stats().multicast_learned, 1);

    let bare = Message::Presence(Presence {
        reply_required: false,
        servers: Servers { sender: THIRD, receiver: RegistrarId(0) },
        checksum: None,
        server_information: None,
    });
    let third = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 40_000);
    e.handle_multicast(at(7), third, &bare.emit_to_vec());
    assert_eq!(drain(&mut e), [Out::Connect(address(3))], "source IP, our ENRP port");

    let ignored = [
        our_presence(false, RegistrarId(0), 0).emit_to_vec(),
        presence(RegistrarId(0), false, 0).emit_to_vec(),
        Message::ListRequest(ListRequest { servers: Servers { sender: PEER, receiver: OWN } })
            .emit_to_vec(),
        vec![0xff, 0, 0, 4],
    ];
    let fourth = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)), 40_000);
    for bytes in &ignored {
        e.handle_multicast(at(8), fourth, bytes);
    }
    assert_eq!(drain(&mut e), []);
    assert_eq!(e.stats().decode_errors, 2, "the List Request and the garbage");

    let mut off = enrp(Vec::new());
    off.handle_multicast(at(5), source, &heard);
    assert_eq!(drain(&mut off), [], "multicast off: the channel is not listened to");
}

// Goal: the channel has no security (RFC 5353 §6), so a multicast Presence never keeps a
// peer alive. Method: a peer heard over its association at 0, then Presences of it on the
// channel; the probe still starts 1 ms after MAX-TIME-LAST-HEARD.
#[test]
fn a_multicast_presence_does_not_keep_a_peer_alive() {
    let h = hs();
    let view = View::new(&h, None);
    let mut config = EnrpConfig::new(address(1), Vec::new());
    config.multicast = true;
    config.heartbeat_cycle = Duration::from_secs(1_000);
    let mut e = Enrp::new(at(0), OWN, config);
    deliver(&mut e, 0, session(1), &presence(PEER, false, 0xffff), &view);
    drain(&mut e);
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 40_000);
    for t in [LAST_HEARD / 2, LAST_HEARD - MS] {
        e.handle_multicast(at(t), source, &presence(PEER, false, 0xffff).emit_to_vec());
    }
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    let probe = our_presence(true, PEER, h.pe_checksum(OWN));
    let out = drain(&mut e);
    assert!(out.contains(&Out::Send(session(1), probe)), "{out:?}");
}

// Regression, found in the lab (a joiner applied each PE of its mentor twice): the first
// Presence of the mentor carries a checksum we cannot match yet, and the audit used to start a
// W-flagged re-synchronisation beside the download that brings the same PEs. Goal: while
// listing and downloading there is no audit; once ready, a mismatch re-synchronises.
#[test]
fn a_joiner_fetches_its_mentors_table_once() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = enrp(vec![address(2)]);
    drain(&mut e);
    e.handle_connecting(address(2), session(1));
    e.handle_up(at(1), session(1), &view);
    drain(&mut e);
    deliver(&mut e, 2, session(1), &presence(PEER, false, 0x1234), &view);
    let list =
        Message::ListRequest(ListRequest { servers: Servers { sender: OWN, receiver: PEER } });
    let hello = our_presence(true, PEER, h.pe_checksum(OWN));
    assert_eq!(
        drain(&mut e),
        [Out::Send(session(1), hello), Out::Send(session(1), list)],
        "a List Request and no resync"
    );
    let response = Message::ListResponse(ListResponse {
        reject: false,
        servers: Servers { sender: PEER, receiver: OWN },
        peers: vec![info(PEER, 2)],
    });
    deliver(&mut e, 3, session(1), &response, &view);
    let table = |w| {
        Message::HandleTableRequest(HandleTableRequest {
            own_children_only: w,
            servers: Servers { sender: OWN, receiver: PEER },
        })
    };
    assert_eq!(drain(&mut e), [Out::Send(session(1), table(false))]);
    deliver(&mut e, 4, session(1), &presence(PEER, false, 0x1234), &view);
    assert_eq!(drain(&mut e), [], "downloading: no audit");
    assert_eq!(e.stats().resyncs, 0);
    let last = Message::HandleTableResponse(HandleTableResponse {
        more_to_send: false,
        reject: false,
        servers: Servers { sender: PEER, receiver: OWN },
        pools: Vec::new(),
    });
    deliver(&mut e, 5, session(1), &last, &view);
    assert!(e.is_ready());
    drain(&mut e);
    deliver(&mut e, 6, session(1), &presence(PEER, false, 0x1234), &view);
    assert_eq!(drain(&mut e), [Out::Send(session(1), table(true))], "ready: a mismatch resyncs");
}

// Goal: a page stays one message under 64 KiB however many addresses its PEs name (the lab's
// RSPLIB PEs name 11; the codec keeps 16). Method: 256 PEs whose user and ASAP transports
// each carry 16 IPv6 addresses (about 700 bytes a PE, 180 KB in one page of 256); every page
// must be under 64 KiB, and together they must carry every PE exactly once.
#[test]
fn pages_of_pes_with_many_addresses_stay_under_64_kib() {
    let mut h = hs();
    let many: Vec<IpAddr> = (0..16u16)
        .map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i + 1)))
        .collect();
    let transport = SctpTransport {
        port: 7,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&many).unwrap(),
    };
    for id in 1..=256u32 {
        let pe = PoolElement {
            id: PoolElementId(id),
            home_registrar: OWN,
            registration_life_ms: 30_000,
            user_transport: UserTransport::Sctp(transport),
            policy: Policy::RoundRobin,
            asap_transport: Some(transport),
        };
        register_element(&mut h, "many", pe);
    }
    let view = View::new(&h, None);
    let mut e = enrp(Vec::new());
    deliver(&mut e, 0, session(1), &presence(PEER, false, 0xffff), &view);
    drain(&mut e);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let request = Message::HandleTableRequest(HandleTableRequest {
            own_children_only: false,
            servers: Servers { sender: PEER, receiver: OWN },
        });
        e.handle_message(at(10), session(1), &request.emit_to_vec(), &view);
        let Some(EnrpAction::Send { bytes, .. }) = e.poll_action() else { panic!("no answer") };
        assert!(bytes.len() < 65_536, "page {pages}: {} bytes", bytes.len());
        let Ok(Message::HandleTableResponse(r)) = Message::parse(&bytes) else { panic!() };
        pages += 1;
        for pool in &r.pools {
            for pe in &pool.pool_elements {
                assert_eq!(pe.user_transport, UserTransport::Sctp(transport), "all 16 addresses");
                seen.push(pe.id.0);
            }
        }
        if !r.more_to_send {
            break;
        }
    }
    assert!(pages >= 3, "{pages} pages for 180 KB");
    seen.sort_unstable();
    assert_eq!(seen, (1..=256).collect::<Vec<_>>(), "each PE exactly once");
}

// Found by the fault lab (partition-heal, partition-oneway): r1, cut off from r2 and r3 but not
// from the PEs, declared both dead, won both takeovers with nobody left to object, and its
// H-flagged keep-alives moved their PEs away from the majority that still served them.
// Goal: a registrar that loses most of the registrars it knows takes none over; once a
// majority is heard again, a peer still silent is probed again and taken over then. Method: we
// know PEER and THIRD (both with PEs); both fall silent; no Init Takeover, no re-homing; PEER
// speaks again; THIRD, still silent, fails MAX-TIME-LAST-HEARD + MAX-TIME-NO-RESPONSE later
// and its arbitration starts.
#[test]
fn a_registrar_cut_off_from_its_peers_takes_none_over() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + MS + NO_RESPONSE), &view);
    let out = drain(&mut e);
    let takes_over = |out: &[Out]| {
        out.iter().any(|o| {
            matches!(o, Out::Send(_, Message::InitTakeover(_)))
                || matches!(o, Out::Apply(a) if a.starts_with("take over"))
        })
    };
    assert!(!takes_over(&out), "one of three registrars alone takes nobody over: {out:?}");
    assert!(e.takeovers_started().next().is_none());
    assert_eq!(e.peers().ids(), [PEER, THIRD], "both stay on the list");
    // The heal: PEER is heard again; THIRD is monitored afresh, not failed on the spot.
    let healed = LAST_HEARD + NO_RESPONSE + 10 * MS;
    deliver(&mut e, healed, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(healed), &view);
    assert!(!takes_over(&drain(&mut e)), "THIRD gets its MAX-TIME-LAST-HEARD first");
    // THIRD stays silent (PEER keeps talking): probed, then failed, with a majority now.
    let probe_at = healed + LAST_HEARD + MS;
    deliver(&mut e, probe_at, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(probe_at), &view);
    drain(&mut e);
    deliver(&mut e, probe_at + NO_RESPONSE, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(probe_at + NO_RESPONSE), &view);
    let init = Message::InitTakeover(InitTakeover {
        servers: Servers { sender: OWN, receiver: RegistrarId(0) },
        target: THIRD,
    });
    assert!(drain(&mut e).contains(&Out::Send(session(1), init)));
}

// Found by the one-hour soak (no-lost-registration, 1 201 judgements; a 10-minute soak: 262):
// r2, partitioned from r1 and r3, found both dead in one round. r1 owned no PEs at that moment
// and was removed from the list at once, so r2 was "half of two" and took r3 over; r3's PEs
// followed r2's H-flagged keep-alives and left r1 and r3 for 6 s. Goal: a failed peer without
// PEs still counts among the registrars known until the round's majority is judged. Method:
// PEER owns nothing, THIRD owns a PE; both go silent together.
#[test]
fn a_failed_peer_without_pes_still_counts_against_a_lone_registrars_majority() {
    let mut h = hs();
    register(&mut h, "T", 0x98, THIRD);
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + MS + NO_RESPONSE), &view);
    let out = drain(&mut e);
    assert!(
        !out.iter().any(|o| matches!(o, Out::Send(_, Message::InitTakeover(_)))
            || matches!(o, Out::Apply(a) if a.starts_with("take over"))),
        "one of three registrars alone takes nobody over: {out:?}"
    );
    assert!(e.takeovers_started().next().is_none());
    assert_eq!(e.peers().ids(), [PEER, THIRD], "both stay on the list while cut off");
    // The heal: PEER is heard again, THIRD stays silent and is taken over, with a majority.
    let healed = LAST_HEARD + NO_RESPONSE + 10 * MS;
    deliver(&mut e, healed, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(healed), &view);
    drain(&mut e);
    let probe_at = healed + LAST_HEARD + MS;
    deliver(&mut e, probe_at, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(probe_at), &view);
    drain(&mut e);
    deliver(&mut e, probe_at + NO_RESPONSE, session(1), &presence(PEER, false, 0xffff), &view);
    e.handle_timeout(at(probe_at + NO_RESPONSE), &view);
    let out = drain(&mut e);
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Send(_, Message::InitTakeover(t)) if t.target == THIRD)),
        "with PEER heard, THIRD is taken over: {out:?}"
    );
}

// Found by the fault lab (partition-heal, after the first fix): peers cut off together do not
// come due in the same instant. r1 found r3 dead 0.5 s before r2's failure came due, counted
// r2 as heard, and took r3 over. Goal: a peer whose probe is unanswered does not count towards
// the majority. Method: THIRD is probed first (PEER quiet, and overdue at THIRD's failure).
#[test]
fn a_peer_being_probed_does_not_count_towards_the_majority() {
    let h = hs_peers();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    // PEER last heard at 2 ms: its probe comes due 2 ms after THIRD's.
    deliver(&mut e, 2 * MS, session(1), &presence(PEER, false, 0xffff), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + MS), &view);
    drain(&mut e);
    e.handle_timeout(at(LAST_HEARD + 3 * MS), &view);
    drain(&mut e);
    // THIRD fails; PEER's probe is still unanswered.
    e.handle_timeout(at(LAST_HEARD + MS + NO_RESPONSE), &view);
    let out = drain(&mut e);
    assert!(
        !out.iter().any(|o| matches!(o, Out::Send(_, Message::InitTakeover(_)))),
        "an unanswered probe is no majority: {out:?}"
    );
    assert!(e.takeovers_started().next().is_none());
}

// Found by the fault lab (registrar-sigstop): r1, resumed after SIGSTOP, first served its PEs'
// queued re-registrations and announced them (ADD_PE, home r1), then dropped them with their
// associations (DEL_PE): the takeover winner, where the PEs had re-registered meanwhile,
// applied both and lost them until their next re-registration. The same happens after a
// partition, when SCTP delivers what the cut-off registrar sent meanwhile. Goal: during its
// rejoin window (MAX-TIME-LAST-HEARD + MAX-TIME-NO-RESPONSE after it is heard again), what a
// registrar taken over says moves no PE homed elsewhere; after it, claims apply as before.
// Method: PEER takes THIRD over (Takeover Server); THIRD speaks again with an ADD_PE; the
// upsert is marked "no re-homing"; after the window an ADD_PE is an ordinary upsert.
#[test]
fn claims_of_a_registrar_taken_over_move_no_pe_during_its_rejoin_window() {
    let h = hs();
    let view = View::new(&h, None);
    let mut e = with_two_peers(&view);
    let done = Message::TakeoverServer(TakeoverServer {
        servers: Servers { sender: PEER, receiver: RegistrarId(0) },
        target: THIRD,
    });
    deliver(&mut e, 10, session(1), &done, &view);
    drain(&mut e);
    let update = update_from(THIRD, UpdateAction::ADD_PE, 7);
    let back = 20 * MS;
    deliver(&mut e, back, session(2), &update, &view);
    let stale = format!("upsert P {:#x} home {:#x} (no re-homing)", 7, THIRD.0);
    assert!(drain(&mut e).contains(&Out::Apply(stale)));
    // The last instant of the window, then the first after it (the timeout ends it).
    let end = back + LAST_HEARD + NO_RESPONSE;
    deliver(&mut e, end - 1, session(2), &update, &view);
    assert!(drain(&mut e)
        .iter()
        .any(|o| matches!(o, Out::Apply(a) if a.ends_with("(no re-homing)"))));
    e.handle_timeout(at(end), &view);
    drain(&mut e);
    deliver(&mut e, end, session(2), &update, &view);
    let fresh = format!("upsert P {:#x} home {:#x}", 7, THIRD.0);
    assert!(drain(&mut e).contains(&Out::Apply(fresh)));
}

// Found while chasing the fault lab's crossing re-synchronisations (flapping-link): a Handle
// Update that arrives while a re-synchronisation with its sender is under way is newer than the
// table being downloaded, but the PE stayed marked and the sweep removed what the update had
// just added. Goal: a PE the peer announces during the resync is not swept. Method: we hold PE
// 1 of PEER; a checksum mismatch starts the resync (1 marked); PEER's ADD_PE for 1 arrives;
// the table (cut before it) lists only 2: 2 is applied, 1 is not swept.
#[test]
fn a_handle_update_during_a_resync_is_not_swept() {
    let mut h = hs();
    register(&mut h, "P", 1, PEER);
    let view = View::new(&h, None);
    let mut e = enrp(Vec::new());
    deliver(&mut e, 0, session(1), &presence(PEER, false, 0x1234), &view);
    drain(&mut e);
    assert_eq!(e.stats().resyncs, 1);
    let update = update_from(PEER, UpdateAction::ADD_PE, 1);
    deliver(&mut e, 10, session(1), &update, &view);
    drain(&mut e);
    let answer = Message::HandleTableResponse(HandleTableResponse {
        more_to_send: false,
        reject: false,
        servers: Servers { sender: PEER, receiver: OWN },
        pools: vec![codec::enrp::PoolEntry {
            pool_handle: PoolHandle::new(b"P").unwrap(),
            pool_elements: vec![pool_element(2, PEER)],
        }],
    });
    deliver(&mut e, 20, session(1), &answer, &view);
    let upsert = Out::Apply(format!("upsert P {:#x} home {:#x}", 2, PEER.0));
    assert_eq!(drain(&mut e), [upsert], "PE 1, announced meanwhile, stays");
}
