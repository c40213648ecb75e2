//! Deterministic simulation tests of two or more endpoints (STYLE §7 item 5, issue 5
//! acceptance). Every test prints its seed; set `SCTP_SEED` to replay one.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{HashMap, HashSet};

use sctp::testing::{craft_packet, dissect, Faults, Net, Rng};
use sctp::{AssociationHandle, Endpoint, EndpointConfig, Event, Instant, SendError};

const A: usize = 0;
const B: usize = 1;
const PORT_A: u16 = 4000;
const PORT_B: u16 = 5000;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 9899))
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SCTP_SEED") {
        Ok(s) => vec![u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex seed")],
        Err(_) => default.to_vec(),
    }
}

fn fast_config() -> EndpointConfig {
    EndpointConfig {
        rto_initial: Duration::from_millis(200),
        rto_min: Duration::from_millis(50),
        rto_max: Duration::from_secs(2),
        hb_interval: Duration::from_secs(5),
        ..EndpointConfig::default()
    }
}

/// Two endpoints, A connected to listening B. Returns the handles on A and on B.
fn pair(
    seed: u64,
    faults: Faults,
    cfg: EndpointConfig,
) -> (Net, AssociationHandle, AssociationHandle) {
    pair_with(seed, faults, cfg.clone(), cfg)
}

fn pair_with(
    seed: u64,
    faults: Faults,
    cfg_a: EndpointConfig,
    cfg_b: EndpointConfig,
) -> (Net, AssociationHandle, AssociationHandle) {
    let mut net = Net::new(seed, faults);
    net.add(Endpoint::new(cfg_a, [1; 32]), addr(1));
    let mut b = Endpoint::new(cfg_b, [2; 32]);
    b.listen(PORT_B);
    net.add(b, addr(2));
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    net.run_until(20_000, |n| {
        n.has_event(A, |e| *e == Event::Connected(ha))
            && n.has_event(B, |e| matches!(e, Event::Connected(_)))
    });
    let hb = connected_handle(&net, B);
    (net, ha, hb)
}

fn connected_handle(net: &Net, node: usize) -> AssociationHandle {
    net.nodes[node]
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            Event::Connected(h) | Event::Restarted(h) => Some(*h),
            _ => None,
        })
        .expect("connected")
}

/// A message that says who sent it, where, and its place: checked byte for byte on receipt.
fn message(sender: u8, stream: u16, seq: u32, unordered: bool, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len.max(12));
    m.push(sender);
    m.push(unordered as u8);
    m.extend_from_slice(&stream.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&(len as u32).to_be_bytes());
    while m.len() < len {
        m.push((m.len() as u32).wrapping_mul(31).wrapping_add(seq) as u8);
    }
    m
}

struct Plan {
    from: usize,
    assoc: AssociationHandle,
    stream: u16,
    seq: u32,
    unordered: bool,
    len: usize,
}

/// Sends `count` messages each way with random streams, ordering and sizes up to `size_max`,
/// stepping the network when a send buffer is full, then waits for all of them.
fn exchange(
    net: &mut Net,
    ha: AssociationHandle,
    hb: AssociationHandle,
    count: u32,
    size_max: usize,
    steps: u32,
) {
    let mut rng = Rng(net.rng.0 ^ 0x5555);
    let mut plans = Vec::new();
    let mut next_seq: HashMap<(usize, u16, bool), u32> = HashMap::new();
    for i in 0..2 * count {
        let from = (i % 2) as usize;
        let stream = rng.below(4) as u16;
        let unordered = rng.chance(250);
        let len = 12 + rng.below(size_max as u64 - 11) as usize;
        let seq = next_seq.entry((from, stream, unordered)).or_insert(0);
        let assoc = if from == A { ha } else { hb };
        plans.push(Plan { from, assoc, stream, seq: *seq, unordered, len });
        *seq += 1;
    }
    let mut i = 0;
    let mut guard = 0;
    while i < plans.len() {
        let p = &plans[i];
        let m = message(p.from as u8, p.stream, p.seq, p.unordered, p.len);
        let now = net.now;
        let ppid = if p.stream % 2 == 0 { 11 } else { 12 };
        match net.nodes[p.from].endpoint.send(now, p.assoc, p.stream, ppid, p.unordered, &m) {
            Ok(()) => i += 1,
            Err(SendError::Full) => net.step(),
            Err(e) => panic!("send failed: {e:?}"),
        }
        guard += 1;
        assert!(guard < steps, "send loop step cap");
    }
    let expected = plans.len();
    net.run_until(steps, |n| n.nodes[A].received.len() + n.nodes[B].received.len() >= expected);
    check_delivery(net, &plans);
}

/// Exactly once, in order where ordered, bytes intact.
fn check_delivery(net: &Net, plans: &[Plan]) {
    for to in [A, B] {
        let from = 1 - to;
        let sent: Vec<&Plan> = plans.iter().filter(|p| p.from == from).collect();
        let got = &net.nodes[to].received;
        assert_eq!(got.len(), sent.len(), "node {to}: every message exactly once");
        let mut seen = HashSet::new();
        let mut last: HashMap<u16, u32> = HashMap::new();
        for r in got {
            let d = &r.data;
            let stream = u16::from_be_bytes([d[2], d[3]]);
            let seq = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
            let len = u32::from_be_bytes([d[8], d[9], d[10], d[11]]) as usize;
            let unordered = d[1] == 1;
            assert_eq!(d[0] as usize, from);
            assert_eq!(r.info.stream, stream);
            assert_eq!(r.info.unordered, unordered);
            assert_eq!(r.info.ppid, if stream % 2 == 0 { 11 } else { 12 });
            assert_eq!(d, &message(from as u8, stream, seq, unordered, len), "bytes intact");
            assert!(seen.insert((stream, unordered, seq)), "duplicate delivery");
            if !unordered {
                let expect = last.get(&stream).map_or(0, |s| s + 1);
                assert_eq!(seq, expect, "ordered delivery on stream {stream}");
                last.insert(stream, seq);
            }
        }
    }
}

fn shut_down(net: &mut Net, who: usize, h: AssociationHandle) {
    let now = net.now;
    net.nodes[who].endpoint.shutdown(now, h);
    net.run_until(20_000, |n| {
        n.has_event(A, |e| matches!(e, Event::Closed(_)))
            && n.has_event(B, |e| matches!(e, Event::Closed(_)))
    });
    assert_eq!(net.nodes[A].endpoint.association_count(), 0);
    assert_eq!(net.nodes[B].endpoint.association_count(), 0);
    for n in [A, B] {
        assert!(!net.has_event(n, |e| matches!(e, Event::CommunicationLost(_))));
        assert!(!net.has_event(n, |e| matches!(e, Event::SendFailed { .. })));
    }
}

// Goal: handshake, DATA/SACK both ways on several streams, ordered and unordered, and a
// graceful shutdown from A, on a clean network. Method: two endpoints, 200 messages each way.
#[test]
fn clean_exchange_and_shutdown_from_a() {
    for seed in seeds(&[1]) {
        let (mut net, ha, hb) = pair(seed, Faults::default(), fast_config());
        exchange(&mut net, ha, hb, 200, 3000, 100_000);
        shut_down(&mut net, A, ha);
    }
}

// Goal: shutdown started by the listener side works the same (§9.2).
#[test]
fn shutdown_from_b() {
    for seed in seeds(&[2]) {
        let (mut net, ha, hb) = pair(seed, Faults::default(), fast_config());
        exchange(&mut net, ha, hb, 20, 500, 100_000);
        shut_down(&mut net, B, hb);
    }
}

// Goal: associations survive 20 % loss with duplication and reordering, and every message is
// delivered exactly once, in order where ordered. Method: several seeds, messages up to 5 KB
// (fragmented), then a graceful shutdown through the same lossy network.
#[test]
fn survives_twenty_percent_loss() {
    for seed in seeds(&[0x11, 0x22, 0x33, 0x44]) {
        let faults = Faults {
            loss_per_mille: 200,
            duplicate_per_mille: 50,
            delay_min: Duration::from_millis(2),
            delay_max: Duration::from_millis(30),
        };
        let cfg = EndpointConfig { assoc_max_retrans: 20, path_max_retrans: 20, ..fast_config() };
        let (mut net, ha, hb) = pair(seed, faults, cfg);
        exchange(&mut net, ha, hb, 150, 5000, 400_000);
        for n in [A, B] {
            assert!(
                !net.has_event(n, |e| matches!(e, Event::CommunicationLost(_))),
                "seed {seed:#x}"
            );
        }
        shut_down(&mut net, A, ha);
    }
}

// Goal: 64 KiB messages both ways, the configured maximum, fragmented and reassembled, with
// loss so fragments are retransmitted out of order. One byte more is refused.
#[test]
fn max_size_messages_both_ways() {
    for seed in seeds(&[0x64]) {
        let faults = Faults { loss_per_mille: 50, ..Faults::default() };
        let (mut net, ha, hb) = pair(seed, faults, fast_config());
        let max = net.nodes[A].endpoint.config().max_message_size as usize;
        for (from, h) in [(A, ha), (B, hb)] {
            for seq in 0..3 {
                let m = message(from as u8, 0, seq, false, max);
                let now = net.now;
                net.nodes[from].endpoint.send(now, h, 0, 11, false, &m).unwrap();
            }
            let big = vec![0u8; max + 1];
            let now = net.now;
            assert_eq!(
                net.nodes[from].endpoint.send(now, h, 0, 11, false, &big),
                Err(SendError::TooLarge)
            );
        }
        net.run_until(100_000, |n| {
            n.nodes[A].received.len() == 3 && n.nodes[B].received.len() == 3
        });
        for to in [A, B] {
            for (seq, r) in net.nodes[to].received.iter().enumerate() {
                assert_eq!(r.data, message(1 - to as u8, 0, seq as u32, false, max));
            }
        }
    }
}

fn silent_config() -> EndpointConfig {
    // A fixed RTO makes the heartbeat schedule exact: one heartbeat every RTO + HB.interval.
    EndpointConfig {
        rto_initial: Duration::from_millis(200),
        rto_min: Duration::from_millis(200),
        rto_max: Duration::from_millis(200),
        hb_interval: Duration::from_secs(1),
        assoc_max_retrans: 3,
        path_max_retrans: 2,
        ..EndpointConfig::default()
    }
}

/// Runs an idle association, silences B from `t_silent` (until `heal`, if given), and returns
/// the net after running to `end`.
fn silence_run(seed: u64, heal: Option<Duration>, end: Duration) -> (Net, Instant) {
    let faults = Faults {
        delay_min: Duration::from_millis(10),
        delay_max: Duration::from_millis(10),
        ..Faults::default()
    };
    // B sends no heartbeats of its own, so only A's detection is measured (B would otherwise
    // detect the outage too and abort after it heals).
    let quiet = EndpointConfig { hb_interval: Duration::ZERO, ..silent_config() };
    let (mut net, _ha, _hb) = pair_with(seed, faults, silent_config(), quiet);
    // Let a few heartbeats go through, then silence B.
    let t_silent = net.now + Duration::from_millis(3_700);
    net.run_to(t_silent, 100_000);
    net.nodes[B].silent = Some(heal.map(|d| t_silent + d));
    net.run_to(t_silent + end, 100_000);
    (net, t_silent)
}

// Goal: when the peer goes silent, CommunicationLost fires within the configured bound, and not
// before `assoc_max_retrans + 1` heartbeats can have gone unanswered. Boundary pair: an outage
// that ends just before the last heartbeat inside the bound is sent leaves the association up;
// one that ends just after it loses the association.
#[test]
fn failure_detection_boundary() {
    let cfg = silent_config();
    let bound = cfg.failure_detection_bound();
    let period = cfg.rto_max + cfg.hb_interval;
    let (net, t_silent) = silence_run(7, None, bound + Duration::from_secs(1));
    let lost =
        net.event_time(A, |e| matches!(e, Event::CommunicationLost(_))).expect("silence detected");
    let took = lost - t_silent;
    println!("detected after {took:?}, bound {bound:?}");
    assert!(took <= bound, "within bound");
    assert!(took >= cfg.hb_interval * (cfg.assoc_max_retrans + 1), "not too early");
    assert!(net.has_event(A, |e| matches!(e, Event::PathInactive(_))));
    // The last heartbeat before the loss went out one period before it and reaches B one
    // one-way delay (10 ms) later: B must hear it for the association to survive.
    let last_heartbeat = lost - period - t_silent + Duration::from_millis(10);
    let margin = Duration::from_millis(1);
    let (net, _) = silence_run(7, Some(last_heartbeat - margin), bound + Duration::from_secs(2));
    assert!(!net.has_event(A, |e| matches!(e, Event::CommunicationLost(_))), "just within: up");
    let (net, _) = silence_run(7, Some(last_heartbeat + margin), bound + Duration::from_secs(2));
    assert!(net.has_event(A, |e| matches!(e, Event::CommunicationLost(_))), "just past: lost");
}

// Goal: ABORT from A reaches B as CommunicationLost with the "User-Initiated Abort" cause, and
// the reverse.
#[test]
fn abort_both_ways() {
    for (who, other) in [(A, B), (B, A)] {
        let (mut net, ha, hb) = pair(3, Faults::default(), fast_config());
        let h = if who == A { ha } else { hb };
        let now = net.now;
        // Unsent data on the aborting side is reported as failed.
        net.nodes[who].endpoint.abort(now, h);
        net.run_until(1000, |n| n.has_event(other, |e| matches!(e, Event::CommunicationLost(_))));
        assert!(net.has_event(who, |e| *e == Event::Closed(h)));
        assert!(net.has_event(other, |e| matches!(e, Event::PeerError { cause: 12, .. })));
        assert_eq!(net.nodes[A].endpoint.association_count(), 0);
        assert_eq!(net.nodes[B].endpoint.association_count(), 0);
    }
}

// Goal: INIT collision (§5.2.1, Table 12 B/D): both sides connect to each other at once and
// end up with exactly one association each, which carries data both ways.
#[test]
fn init_collision() {
    for seed in seeds(&[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]) {
        // Jitter and loss so the INITs, INIT ACKs and COOKIE ECHOs cross in different orders.
        let faults = Faults {
            loss_per_mille: if seed % 2 == 0 { 150 } else { 0 },
            duplicate_per_mille: 50,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(40),
        };
        let mut net = Net::new(seed, faults);
        for (i, secret) in [(1u8, [1u8; 32]), (2, [2; 32])] {
            let mut ep = Endpoint::new(fast_config(), secret);
            ep.listen(if i == 1 { PORT_A } else { PORT_B });
            net.add(ep, addr(i));
        }
        let now = net.now;
        let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
        let hb = net.nodes[B].endpoint.connect(now, addr(1), PORT_B, PORT_A).unwrap();
        net.run_until(20_000, |n| {
            n.has_event(A, |e| *e == Event::Connected(ha))
                && n.has_event(B, |e| *e == Event::Connected(hb))
        });
        assert_eq!(net.nodes[A].endpoint.association_count(), 1);
        assert_eq!(net.nodes[B].endpoint.association_count(), 1);
        exchange(&mut net, ha, hb, 20, 2000, 100_000);
        shut_down(&mut net, B, hb);
    }
}

// Goal: peer restart (§5.2.4 A): A's host comes back with a fresh endpoint and connects again
// with the same ports; B reports Restarted on its existing handle and data flows again.
#[test]
fn peer_restart() {
    let (mut net, _ha, hb) = pair(9, Faults::default(), fast_config());
    exchange(&mut net, _ha, hb, 5, 200, 100_000);
    // The restarted host also comes back from a new UDP source port.
    net.nodes[A].endpoint = Endpoint::new(fast_config(), [3; 32]);
    net.nodes[A].addr = SocketAddr::from(([10, 0, 0, 1], 40_000));
    for n in [A, B] {
        net.nodes[n].received.clear();
        net.nodes[n].events.clear();
    }
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    net.run_until(20_000, |n| {
        n.nodes[A].endpoint.association_count() == 1
            && n.has_event(A, |e| *e == Event::Connected(ha))
    });
    assert!(net.has_event(B, |e| *e == Event::Restarted(hb)));
    assert_eq!(net.nodes[B].endpoint.association_count(), 1);
    exchange(&mut net, ha, hb, 10, 1000, 100_000);
    assert_eq!(net.nodes[B].endpoint.remote(hb), Some(net.nodes[A].addr));
}

// Goal: an association closed and freed while it waits in the transmit queue leaves its slot
// usable. Regression (RELIABILITY.md bug 5, "a PU whose only registrar was paused never
// reaches it again"): a COOKIE ECHO and an ABORT read in one batch (a hunt aborting its losing
// attempt, or a registrar reading the backlog of a SIGSTOP) created an association, queued it
// for its COOKIE ACK and closed it; polling the terminal event freed the slot before
// `poll_transmit` skipped the stale queue entry, so the slot stayed marked as queued and every
// later association in it (the next one from the free list) never sent a packet: INIT ACKs
// went out, COOKIE ECHOs were never answered. Method: by hand, A's COOKIE ECHO and ABORT reach
// B together and B drains events before it transmits; then A connects again with the same
// ports and must get in and carry data.
#[test]
fn association_freed_while_queued_leaves_its_slot_usable() {
    let mut a = Endpoint::new(fast_config(), [1; 32]);
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    let now = Instant(1_000_000);
    let mut buf = vec![0u8; 65_536];
    let mut drain = |from: &mut Endpoint| -> Vec<Vec<u8>> {
        std::iter::from_fn(|| from.poll_transmit(now, &mut buf).map(|t| buf[..t.len].to_vec()))
            .collect()
    };
    let first = a.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    for p in drain(&mut a) {
        b.handle_packet(now, addr(1), addr(2), &p); // INIT
    }
    for p in drain(&mut b) {
        a.handle_packet(now, addr(2), addr(1), &p); // INIT ACK
    }
    let mut batch = drain(&mut a); // COOKIE ECHO
    a.abort(now, first);
    batch.extend(drain(&mut a)); // ABORT
    assert_eq!(batch.len(), 2, "a COOKIE ECHO and an ABORT");
    for p in &batch {
        b.handle_packet(now, addr(1), addr(2), p);
    }
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(matches!(events[..], [Event::Connected(_), .., Event::CommunicationLost(_)]));
    assert_eq!(b.association_count(), 0, "polling the terminal event freed the slot");
    drain(&mut b);
    while a.poll_event().is_some() {}

    let mut net = Net::new(0xb065, Faults::default());
    net.add(a, addr(1));
    net.add(b, addr(2));
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    net.run_until(20_000, |n| {
        n.has_event(A, |e| matches!(e, Event::Connected(_) | Event::CommunicationLost(_)))
    });
    assert!(net.has_event(A, |e| *e == Event::Connected(ha)), "B never answered the COOKIE ECHO");
    let hb = connected_handle(&net, B);
    exchange(&mut net, ha, hb, 3, 200, 10_000);
}

// Goal: a flood of 100 000 INITs from random addresses and ports creates zero associations,
// keeps the reply queue within `responses_max`, and a real client still gets in afterwards.
#[test]
fn init_flood_creates_nothing() {
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    let mut rng = Rng(0xf100d);
    let mut buf = [0u8; 2048];
    let local = addr(2);
    for i in 0..100_000u32 {
        let mut init = [0u8; 16];
        init[..4].copy_from_slice(&(rng.next_u64() as u32 | 1).to_be_bytes());
        init[4..8].copy_from_slice(&65_535u32.to_be_bytes());
        init[8..12].copy_from_slice(&[0, 10, 0, 10]);
        init[12..].copy_from_slice(&(rng.next_u64() as u32).to_be_bytes());
        let p = craft_packet(rng.below(60_000) as u16 + 1, PORT_B, 0, &[(1, 0, &init)]);
        let from = SocketAddr::from(([192, 168, (i >> 8) as u8, i as u8], 9899));
        b.handle_packet(Instant(u64::from(i)), from, local, &p);
        if i % 3 == 0 {
            // Only some replies get sent: the queue must stay bounded either way.
            b.poll_transmit(Instant(u64::from(i)), &mut buf);
        }
        assert!(b.responses_queued() <= b.config().responses_max as usize);
    }
    assert_eq!(b.association_count(), 0);
    assert!(b.poll_event().is_none());
    assert!(b.stats().init_acks_sent > 0 && b.stats().responses_dropped > 0);
    let mut net = Net::new(0xf100d, Faults::default());
    net.add(Endpoint::new(fast_config(), [1; 32]), addr(1));
    net.add(b, addr(2));
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    net.run_until(20_000, |n| n.has_event(A, |e| *e == Event::Connected(ha)));
}

// Goal: a forged or expired cookie creates nothing; an expired genuine one gets "Stale Cookie".
#[test]
fn cookie_forged_or_stale() {
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    let mut a = Endpoint::new(fast_config(), [1; 32]);
    let now = Instant(1_000_000);
    a.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    let mut buf = [0u8; 2048];
    let t = a.poll_transmit(now, &mut buf).unwrap();
    b.handle_packet(now, addr(1), addr(2), &buf[..t.len]);
    let t = b.poll_transmit(now, &mut buf).unwrap();
    let init_ack = buf[..t.len].to_vec();
    a.handle_packet(now, addr(2), addr(1), &init_ack);
    let t = a.poll_transmit(now, &mut buf).unwrap();
    let echo = buf[..t.len].to_vec();
    // Forged: flip one cookie byte and fix the CRC.
    let (tag, chunks) = dissect(&echo);
    let mut cookie = chunks[0].2.clone();
    cookie[20] ^= 1;
    let forged = craft_packet(PORT_A, PORT_B, tag, &[(10, 0, &cookie)]);
    b.handle_packet(now, addr(1), addr(2), &forged);
    assert_eq!(b.association_count(), 0);
    assert!(b.poll_transmit(now, &mut buf).is_none(), "no reply to a forged cookie");
    // Stale: the genuine cookie, one microsecond past its lifetime.
    let late = Instant(now.0 + b.config().cookie_lifetime.as_micros() as u64 + 1);
    b.handle_packet(late, addr(1), addr(2), &echo);
    assert_eq!(b.association_count(), 0);
    let t = b.poll_transmit(late, &mut buf).unwrap();
    let (_, chunks) = dissect(&buf[..t.len]);
    assert_eq!(chunks[0].0, 9, "ERROR");
    assert_eq!(&chunks[0].2[..2], &[0, 3], "Stale Cookie");
    // Just within the lifetime: accepted.
    let ok = Instant(now.0 + b.config().cookie_lifetime.as_micros() as u64);
    b.handle_packet(ok, addr(1), addr(2), &echo);
    assert_eq!(b.association_count(), 1);
}

// Goal: out-of-the-blue handling (§8.4) for each rule.
#[test]
fn out_of_the_blue() {
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    let now = Instant(1);
    let mut buf = [0u8; 2048];
    let mut reply = |b: &mut Endpoint, p: Vec<u8>| {
        b.handle_packet(now, addr(1), addr(2), &p);
        b.poll_transmit(now, &mut buf).map(|t| dissect(&buf[..t.len]))
    };
    // (8) DATA: ABORT with the T bit and the packet's tag reflected.
    let data = [0u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 11, 1, 2, 3, 4];
    let r = reply(&mut b, craft_packet(PORT_A, PORT_B, 0xabcd, &[(0, 3, &data)])).unwrap();
    assert_eq!(r.0, 0xabcd);
    assert_eq!((r.1[0].0, r.1[0].1), (6, 1));
    // (2) ABORT: silence.
    assert!(reply(&mut b, craft_packet(PORT_A, PORT_B, 0xabcd, &[(6, 0, &[])])).is_none());
    // (5) SHUTDOWN ACK: SHUTDOWN COMPLETE with the T bit.
    let r = reply(&mut b, craft_packet(PORT_A, PORT_B, 0x77, &[(8, 0, &[])])).unwrap();
    assert_eq!((r.0, r.1[0].0, r.1[0].1), (0x77, 14, 1));
    // (6), (7): SHUTDOWN COMPLETE, COOKIE ACK, ERROR: silence.
    for ty in [14u8, 11, 9] {
        assert!(reply(&mut b, craft_packet(PORT_A, PORT_B, 0x77, &[(ty, 0, &[])])).is_none());
    }
    // (3) INIT to a port nobody listens on: ABORT with the Initiate Tag, T bit clear.
    let init = [0, 0, 0x12, 0x34, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1];
    let r = reply(&mut b, craft_packet(PORT_A, 6000, 0, &[(1, 0, &init)])).unwrap();
    assert_eq!((r.0, r.1[0].0, r.1[0].1), (0x1234, 6, 0));
    // A bad checksum is dropped before anything else.
    let mut p = craft_packet(PORT_A, PORT_B, 0xabcd, &[(0, 3, &data)]);
    p[12] ^= 1;
    assert!(reply(&mut b, p).is_none());
    assert_eq!(b.association_count(), 0);
}

// Goal: unknown chunk types follow their upper two bits (§3.2): 00 stop silently, 01 stop and
// report, 10 skip, 11 skip and report; the report arrives at the sender as a PeerError event
// (ERROR chunks as events). Method: an unknown chunk followed by a HEARTBEAT, injected into an
// established association; whether a HEARTBEAT ACK and an ERROR come back tells the action.
#[test]
fn unknown_chunk_bits() {
    for (ty, processed, reported) in
        [(0x3fu8, false, false), (0x7f, false, true), (0xbf, true, false), (0xff, true, true)]
    {
        let (mut net, _ha, _hb) = pair(4, Faults::default(), fast_config());
        // Learn B's tag from a packet A sends.
        let mut buf = [0u8; 2048];
        let now = net.now;
        net.nodes[A].endpoint.send(now, _ha, 0, 11, false, b"x").unwrap();
        let t = net.nodes[A].endpoint.poll_transmit(now, &mut buf).unwrap();
        let (tag_b, _) = dissect(&buf[..t.len]);
        let hb_info = [0u8, 1, 0, 8, 9, 9, 9, 9];
        let p = craft_packet(PORT_A, PORT_B, tag_b, &[(ty, 0, &[1, 2, 3]), (4, 0, &hb_info)]);
        net.nodes[B].endpoint.handle_packet(now, addr(1), addr(2), &p);
        let mut saw_ack = false;
        let mut saw_error = false;
        while let Some(t) = net.nodes[B].endpoint.poll_transmit(now, &mut buf) {
            let (_, chunks) = dissect(&buf[..t.len]);
            for (cty, _, v) in &chunks {
                saw_ack |= *cty == 5 && v[..] == hb_info[..];
                saw_error |= *cty == 9 && v[..2] == [0, 6];
            }
            net.nodes[A].endpoint.handle_packet(now, addr(2), addr(1), &buf[..t.len]);
        }
        assert_eq!(saw_ack, processed, "type {ty:#x}");
        assert_eq!(saw_error, reported, "type {ty:#x}");
        net.step();
        assert_eq!(net.has_event(A, |e| matches!(e, Event::PeerError { cause: 6, .. })), reported);
    }
}

// Goal: each repeated arrival of a DATA chunk is reported in the next SACK's duplicate TSNs
// (§6.2, §3.3.4), and in that SACK only. Method: one DATA packet from A handed to B three times
// before B sends, then once more; B's SACKs dissected.
#[test]
fn duplicate_tsns_reported_once() {
    let (mut net, ha, _hb) = pair(5, Faults::default(), fast_config());
    let mut buf = [0u8; 2048];
    let now = net.now;
    net.nodes[A].endpoint.send(now, ha, 0, 11, false, b"dup").unwrap();
    let t = net.nodes[A].endpoint.poll_transmit(now, &mut buf).unwrap();
    let packet = buf[..t.len].to_vec();
    let (_, chunks) = dissect(&packet);
    let tsn = chunks.iter().find(|c| c.0 == 0).expect("DATA").2[..4].to_vec();
    let b = &mut net.nodes[B].endpoint;
    let mut sacks_after = |arrivals: usize| {
        for _ in 0..arrivals {
            b.handle_packet(now, addr(1), addr(2), &packet);
        }
        let mut sacks = Vec::new();
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            let (_, chunks) = dissect(&buf[..t.len]);
            sacks.extend(chunks.into_iter().filter(|c| c.0 == 3).map(|c| c.2));
        }
        sacks
    };
    for (arrivals, dups) in [(3, 2u16), (1, 1)] {
        let sacks = sacks_after(arrivals);
        assert_eq!(sacks.len(), 1, "one SACK after {arrivals} arrivals");
        let v = &sacks[0];
        assert_eq!(v[..4], tsn[..], "cumulative TSN");
        assert_eq!(u16::from_be_bytes([v[8], v[9]]), 0, "no gaps");
        assert_eq!(u16::from_be_bytes([v[10], v[11]]), dups, "duplicates");
        assert_eq!(v.len(), 12 + 4 * usize::from(dups));
        for d in v[12..].chunks(4) {
            assert_eq!(d, &tsn[..]);
        }
    }
}

// Goal: the peer's address parameters from INIT are exposed, source address first; the Linux
// INIT parameters (ECN 0x8000, Forward-TSN 0xc000, Supported Extensions 0x8008, Supported
// Address Types) do not break setup, and Forward-TSN is reported as unrecognized in INIT ACK.
#[test]
fn linux_style_init_and_peer_addresses() {
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    let now = Instant(5);
    let mut init = vec![0u8, 0, 0x43, 0x21, 0, 1, 0, 0, 0, 10, 0xff, 0xff, 0, 0, 0, 7];
    let params: [&[u8]; 6] = [
        &[0, 5, 0, 8, 10, 0, 0, 1],
        &[0, 5, 0, 8, 172, 16, 0, 1],
        &[0, 12, 0, 8, 0, 5, 0, 6],
        &[0x80, 0, 0, 4],
        &[0xc0, 0, 0, 4],
        &[0x80, 8, 0, 7, 0xc0, 0x82, 0x0f, 0],
    ];
    for p in params {
        init.extend_from_slice(p);
    }
    let p = craft_packet(PORT_A, PORT_B, 0, &[(1, 0, &init)]);
    b.handle_packet(now, addr(1), addr(2), &p);
    let mut buf = [0u8; 2048];
    let t = b.poll_transmit(now, &mut buf).unwrap();
    let (tag, chunks) = dissect(&buf[..t.len]);
    assert_eq!(tag, 0x4321);
    assert_eq!(chunks[0].0, 2, "INIT ACK");
    let v = &chunks[0].2;
    let local_tag = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    // Walk the INIT ACK parameters: a cookie, then exactly one Unrecognized Parameter (0xc000).
    let mut at = 16;
    let mut cookie = None;
    let mut unrecognized = Vec::new();
    while at + 4 <= v.len() {
        let ty = u16::from_be_bytes([v[at], v[at + 1]]);
        let len = u16::from_be_bytes([v[at + 2], v[at + 3]]) as usize;
        if ty == 7 {
            cookie = Some(v[at + 4..at + len].to_vec());
        }
        if ty == 8 {
            unrecognized.push(u16::from_be_bytes([v[at + 4], v[at + 5]]));
        }
        at += (len + 3) & !3;
    }
    assert_eq!(unrecognized, vec![0xc000]);
    let echo = craft_packet(PORT_A, PORT_B, local_tag, &[(10, 0, &cookie.unwrap())]);
    b.handle_packet(now, addr(1), addr(2), &echo);
    let Some(Event::Connected(h)) = b.poll_event() else { panic!("connected") };
    let want: Vec<core::net::IpAddr> =
        vec![addr(1).ip(), "10.0.0.1".parse().unwrap(), "172.16.0.1".parse().unwrap()];
    let got = b.remote_addresses(h);
    assert_eq!(got[0], want[0]);
    assert!(got.contains(&want[2]));
    assert_eq!(got.len(), 2, "the source address is not listed twice");
    // A packet from the peer's second address belongs to the association (not out of the
    // blue): a HEARTBEAT from 172.16.0.1 is answered, to the primary address.
    while b.poll_transmit(now, &mut buf).is_some() {} // the COOKIE ACK
    let second = SocketAddr::from(([172, 16, 0, 1], 9899));
    let hb_info = [0u8, 1, 0, 8, 1, 2, 3, 4];
    let p = craft_packet(PORT_A, PORT_B, local_tag, &[(4, 0, &hb_info)]);
    b.handle_packet(now, second, addr(2), &p);
    let t = b.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(t.remote, addr(1));
    let (tag, chunks) = dissect(&buf[..t.len]);
    assert_eq!((tag, chunks[0].0), (0x4321, 5), "HEARTBEAT ACK, not ABORT");
}

// Goal: flow control end to end. B stops reading, so its window closes and A's send buffer
// fills (`SendError::Full`); zero window probes go unanswered for longer than
// `assoc_max_retrans` T3 expiries would allow, yet the association stays up (§6.1 A: probes
// answered by SACKs are not errors). When B reads again, the window update lets everything
// through, exactly once and in order.
#[test]
fn closed_window_then_reopen() {
    let cfg = EndpointConfig {
        rwnd: 64 * 1024,
        reassembly_bytes_max: 64 * 1024,
        send_buffer_bytes_max: 64 * 1024,
        assoc_max_retrans: 3,
        ..fast_config()
    };
    let (mut net, ha, hb) = pair(0xf10, Faults::default(), cfg);
    net.nodes[B].reading = false;
    let mut sent = 0u32;
    let mut full = 0;
    while net.now.0 < 30_000_000 {
        let m = message(0, 0, sent, false, 1000);
        let now = net.now;
        match net.nodes[A].endpoint.send(now, ha, 0, 11, false, &m) {
            Ok(()) => sent += 1,
            Err(SendError::Full) => {
                full += 1;
                net.step();
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(full > 0, "A's buffer filled");
    assert!(
        !net.has_event(A, |e| matches!(e, Event::CommunicationLost(_))),
        "probing is no failure"
    );
    net.nodes[B].reading = true;
    net.read_all(hb, B);
    net.run_until(100_000, |n| n.nodes[B].received.len() == sent as usize);
    for (i, r) in net.nodes[B].received.iter().enumerate() {
        assert_eq!(r.data, message(0, 0, i as u32, false, 1000));
    }
    assert!(!net.has_event(B, |e| matches!(e, Event::CommunicationLost(_))));
}

// Goal: messages sent right after `connect`, before the handshake completes, are delivered in
// order together with those sent afterwards (their SSNs survive the INIT ACK).
#[test]
fn send_before_connected() {
    let mut net = Net::new(0x5b, Faults::default());
    net.add(Endpoint::new(fast_config(), [1; 32]), addr(1));
    let mut b = Endpoint::new(fast_config(), [2; 32]);
    b.listen(PORT_B);
    net.add(b, addr(2));
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    for seq in 0..3 {
        net.nodes[A].endpoint.send(now, ha, 1, 11, false, &message(0, 1, seq, false, 100)).unwrap();
    }
    net.run_until(1000, |n| n.has_event(A, |e| *e == Event::Connected(ha)));
    for seq in 3..6 {
        let now = net.now;
        net.nodes[A].endpoint.send(now, ha, 1, 11, false, &message(0, 1, seq, false, 100)).unwrap();
    }
    net.run_until(1000, |n| n.nodes[B].received.len() == 6);
    for (seq, r) in net.nodes[B].received.iter().enumerate() {
        assert_eq!(r.data, message(0, 1, seq as u32, false, 100));
    }
}

// Goal: a committed table of behaviour under loss (STYLE §7 item 7), so changes to
// retransmission or congestion control show in review. Method: a loss × message-size grid,
// 100 messages each way per cell, one fixed seed; the table is compared with
// `tests/snapshots/loss_sweep.txt` (set SCTP_UPDATE_SNAPSHOTS=1 to rewrite it).
#[test]
fn loss_sweep_snapshot() {
    let mut table = String::from(
        "loss_pm size_b  time_ms packets data_sent retransmitted fast_rtx t3_expired\n",
    );
    for loss in [0u32, 50, 100, 200, 300] {
        for size in [200usize, 4000] {
            let faults = Faults {
                loss_per_mille: loss,
                duplicate_per_mille: 20,
                delay_min: Duration::from_millis(5),
                delay_max: Duration::from_millis(15),
            };
            let cfg =
                EndpointConfig { assoc_max_retrans: 30, path_max_retrans: 30, ..fast_config() };
            let (mut net, ha, hb) = pair(0x5eed, faults, cfg);
            let start = net.now;
            let packets_before = net.packets_sent;
            exchange(&mut net, ha, hb, 100, size, 1_000_000);
            let sa = net.nodes[A].endpoint.association_stats(ha).unwrap();
            let sb = net.nodes[B].endpoint.association_stats(hb).unwrap();
            table.push_str(&format!(
                "{loss:7} {size:6} {:8} {:7} {:9} {:13} {:8} {:10}\n",
                (net.now - start).as_millis(),
                net.packets_sent - packets_before,
                sa.data_chunks_sent + sb.data_chunks_sent,
                sa.retransmitted_chunks + sb.retransmitted_chunks,
                sa.fast_retransmits + sb.fast_retransmits,
                sa.t3_expirations + sb.t3_expirations,
            ));
        }
    }
    println!("{table}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/loss_sweep.txt");
    if std::env::var_os("SCTP_UPDATE_SNAPSHOTS").is_some() || !std::path::Path::new(path).exists() {
        std::fs::write(path, &table).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert_eq!(committed, table, "behaviour changed: review, then SCTP_UPDATE_SNAPSHOTS=1");
}

// Goal: tiny messages cannot make a receiver hold unbounded buffers: with B not reading, A's
// 16-byte messages stop at B's buffer-count bound (the window closes by count, not bytes),
// the association survives, and after B reads everything arrives exactly once, in order.
#[test]
fn tiny_messages_bounded_by_count() {
    let (mut net, ha, hb) = pair(0x717, Faults::default(), fast_config());
    net.nodes[B].reading = false;
    let mut sent = 0u32;
    while net.now.0 < 12_000_000 {
        let now = net.now;
        match net.nodes[A].endpoint.send(now, ha, 2, 11, false, &message(0, 2, sent, false, 16)) {
            Ok(()) => sent += 1,
            Err(SendError::Full) => net.step(),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(sent > 1024, "more was sent than B may hold: {sent}");
    assert!(!net.has_event(A, |e| matches!(e, Event::CommunicationLost(_))));
    net.nodes[B].reading = true;
    net.read_all(hb, B);
    net.run_until(200_000, |n| n.nodes[B].received.len() == sent as usize);
    for (i, r) in net.nodes[B].received.iter().enumerate() {
        assert_eq!(r.data, message(0, 2, i as u32, false, 16));
    }
}

// Goal: one listening endpoint serves many peers at once (the registrar's shape): ten clients
// on a lossy network each send 30 requests, the server echoes each one, and every client gets
// exactly its own answers, in order. Method: the server's new messages are echoed after each
// step, on the association they came from.
#[test]
fn many_clients_one_server() {
    let faults = Faults {
        loss_per_mille: 100,
        duplicate_per_mille: 20,
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
    };
    let mut net = Net::new(0xc1e7, faults);
    let mut server = Endpoint::new(fast_config(), [9; 32]);
    server.listen(PORT_B);
    let s = net.add(server, addr(100));
    let clients: Vec<(usize, AssociationHandle)> = (1..=10u8)
        .map(|i| {
            let c = net.add(Endpoint::new(fast_config(), [i; 32]), addr(i));
            let now = net.now;
            let h = net.nodes[c].endpoint.connect(now, addr(100), PORT_A, PORT_B).unwrap();
            (c, h)
        })
        .collect();
    for seq in 0..30u32 {
        for &(c, h) in &clients {
            let now = net.now;
            let m = message(c as u8, 0, seq, false, 100 + 40 * seq as usize);
            net.nodes[c].endpoint.send(now, h, 0, 11, false, &m).unwrap();
        }
    }
    let mut echoed = 0;
    let done = |n: &Net| clients.iter().all(|&(c, _)| n.nodes[c].received.len() == 30);
    for _ in 0..200_000 {
        if done(&net) {
            break;
        }
        while echoed < net.nodes[s].received.len() {
            let r = net.nodes[s].received[echoed].clone();
            let now = net.now;
            let ep = &mut net.nodes[s].endpoint;
            ep.send(now, r.assoc, r.info.stream, r.info.ppid, false, &r.data).unwrap();
            echoed += 1;
        }
        net.step();
    }
    assert!(done(&net), "step cap");
    assert_eq!(net.nodes[s].endpoint.association_count(), 10);
    for &(c, _) in &clients {
        for (seq, r) in net.nodes[c].received.iter().enumerate() {
            assert_eq!(r.data, message(c as u8, 0, seq as u32, false, 100 + 40 * seq));
        }
    }
}

// Goal: no input panics an endpoint (STYLE §2 "never panic on input"). Method: record real
// packets of a lossy exchange, then feed 20 000 mutants (bit flips, byte overwrites, cuts,
// length-field rewrites; checksum fixed so they pass the CRC) to both sides of a live
// association, with time moving. A mutant may be a valid ABORT, so the association may end;
// only a panic fails the test.
#[test]
fn mutated_packets_never_panic() {
    use std::sync::Mutex;
    static CAPTURE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    fn tap(_: Instant, _: usize, p: &[u8]) {
        CAPTURE.lock().unwrap().push(p.to_vec());
    }
    let (mut net, ha, hb) = pair(0xbad, Faults::default(), fast_config());
    net.trace = Some(tap);
    exchange(&mut net, ha, hb, 20, 3000, 100_000);
    net.trace = None;
    let corpus = std::mem::take(&mut *CAPTURE.lock().unwrap());
    assert!(corpus.len() > 20);
    let mut rng = Rng(0xbad);
    for i in 0..20_000u32 {
        let mut p = corpus[rng.below(corpus.len() as u64) as usize].clone();
        match rng.below(4) {
            0 => {
                let at = 12 + rng.below(p.len() as u64 - 12) as usize;
                p[at] ^= 1 << rng.below(8);
            }
            1 => {
                let at = 12 + rng.below(p.len() as u64 - 12) as usize;
                p[at] = rng.next_u64() as u8;
            }
            2 => p.truncate(12 + rng.below(p.len() as u64 - 11) as usize),
            _ => {
                // Rewrite a 16-bit field at a 4-aligned offset past the header (lengths, counts).
                let at = 12 + 4 * rng.below((p.len() as u64 - 12) / 4) as usize + 2;
                if at + 2 <= p.len() {
                    p[at..at + 2].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes());
                }
            }
        }
        sctp::wire::seal(&mut p);
        let (to, from) = if i % 2 == 0 { (B, addr(1)) } else { (A, addr(2)) };
        let local = net.nodes[to].addr;
        let now = net.now;
        net.nodes[to].endpoint.handle_packet(now, from, local, &p);
        if i % 100 == 0 {
            net.step();
        }
    }
    println!(
        "after mutants: A events {}, B events {}",
        net.nodes[A].events.len(),
        net.nodes[B].events.len()
    );
}

// Goal: a seed sweep in the VOPR style (STYLE §7 item 5): each seed draws its own faults
// (loss 0-25 %, duplication, delay spread), connection style (plain or INIT collision),
// message mix and closing side, then checks exactly-once, in-order delivery and a clean
// shutdown. Ignored by default; run with `cargo test -p sctp --test sim soak -- --ignored`,
// `SCTP_SOAK=<count>` seeds (default 300), `SCTP_SEED=<hex>` replays one.
#[test]
#[ignore]
fn soak() {
    let count: u64 = std::env::var("SCTP_SOAK").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let list: Vec<u64> = match std::env::var("SCTP_SEED") {
        Ok(_) => seeds(&[]),
        Err(_) => (0..count).map(|i| 0x50a6_0000 + i).collect(),
    };
    for seed in list {
        let mut rng = Rng(seed);
        let faults = Faults {
            loss_per_mille: rng.below(250) as u32,
            duplicate_per_mille: rng.below(100) as u32,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(1 + rng.below(60)),
        };
        // Generous retry limits: at 25 % loss the RFC's 8 INIT retransmissions fail about once
        // in 10 000 handshakes (seed 0x50a60620 lost 9 of 11 handshake packets), and this sweep
        // looks for bugs, not for bad luck.
        let cfg = EndpointConfig {
            assoc_max_retrans: 30,
            path_max_retrans: 30,
            max_init_retransmits: 30,
            ..fast_config()
        };
        let collide = rng.chance(300);
        let (mut net, ha, hb) = if collide {
            let mut net = Net::new(seed, faults);
            for (i, secret) in [(1u8, [1u8; 32]), (2, [2; 32])] {
                let mut ep = Endpoint::new(cfg.clone(), secret);
                ep.listen(if i == 1 { PORT_A } else { PORT_B });
                net.add(ep, addr(i));
            }
            let now = net.now;
            let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
            let hb = net.nodes[B].endpoint.connect(now, addr(1), PORT_B, PORT_A).unwrap();
            net.run_until(50_000, |n| {
                n.has_event(A, |e| *e == Event::Connected(ha))
                    && n.has_event(B, |e| *e == Event::Connected(hb))
            });
            (net, ha, hb)
        } else {
            pair(seed, faults, cfg)
        };
        let size_max = [200, 2000, 20_000][rng.below(3) as usize];
        exchange(&mut net, ha, hb, 10 + rng.below(60) as u32, size_max, 1_000_000);
        if rng.chance(500) {
            shut_down(&mut net, A, ha);
        } else {
            shut_down(&mut net, B, hb);
        }
    }
}
