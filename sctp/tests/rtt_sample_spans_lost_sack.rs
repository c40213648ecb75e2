//! Regression: an RTT sample that spans a lost SACK stalls loss recovery for many seconds.
//!
//! Low-rate request/response, as an ASAP keep-alive and its ack: A asks every 0.5 to 5 s and B
//! answers at once. When the SACK for B's answer is lost and the RTO is longer than the pause
//! before the next request (before the first RTT measurement, or after a T3-rtx back-off),
//! the answer is still outstanding when the next one goes out, and the SACK for that one acks
//! both. The stack used to time only the first chunk sent since its last sample, so it took
//! the application's pause between two messages (seconds) for a round trip; §6.3.1 C2/C3 then
//! made the RTO up to three times that, and self-sustaining (a long RTO lets the next lost
//! SACK span a pause again). The next lost DATA chunk waited out that RTO: 8.5 s for one loss
//! in the registrar simulation, seed 0x5eed0001. The sample now comes from the newest chunk a
//! SACK newly acknowledges, which the SACK answers within the delayed-ack bound.
//!
//! Bounds. The path RTT is 2 to 40 ms and a delayed SACK adds at most 200 ms, so no smoothed
//! RTT above `SRTT_MAX` is a round trip. RTO.Initial is 3 s (RFC 4960's value) so that the
//! window before the first measurement is long, as after the registrar's start-up back-offs;
//! one loss there costs 3 s. Once measured, the RTO is 0.2 to 0.7 s, so `DELAY_MAX` allows
//! one loss at RTO.Initial plus two more at the measured RTO; five consecutive losses of one
//! chunk at RTO.Min alone take 0.2 s × 31 = 6.2 s, and before the fix single losses took up
//! to 17 s here.

use core::net::SocketAddr;
use core::time::Duration;

use sctp::testing::{Faults, Net, Rng};
use sctp::{AssociationHandle, Endpoint, EndpointConfig, Event, Instant};

const A: usize = 0;
const B: usize = 1;
const PORT_A: u16 = 4000;
const PORT_B: u16 = 5000;
const PPID: u32 = 11;
/// A asks every 0.5 to 5 s (jittered, as keep-alives on many associations).
const INTERVAL_MS: (u64, u64) = (500, 5_000);
const EXCHANGES: u32 = 200;
const SEEDS: u64 = 64;
/// Worst delay allowed from a send to its delivery, over every message of every seed.
const DELAY_MAX: Duration = Duration::from_secs(5);
/// Largest smoothed RTT that is still a round trip (40 ms path + 200 ms delayed SACK, and
/// margin).
const SRTT_MAX_US: u64 = 1_000_000;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 9899))
}

fn seeds() -> Vec<u64> {
    match std::env::var("SCTP_SEED") {
        Ok(s) => vec![u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex seed")],
        Err(_) => (0x5eed_0001..0x5eed_0001 + SEEDS).collect(),
    }
}

/// A message carrying its sequence number and send time, so the receiver can time it.
fn stamped(seq: u32, now: Instant) -> Vec<u8> {
    let mut m = seq.to_be_bytes().to_vec();
    m.extend_from_slice(&now.0.to_be_bytes());
    m.resize(28, 0x5a); // about an ASAP keep-alive
    m
}

fn stamp(m: &[u8]) -> (u32, Instant) {
    let seq = u32::from_be_bytes(m[..4].try_into().expect("4 bytes"));
    (seq, Instant(u64::from_be_bytes(m[4..12].try_into().expect("8 bytes"))))
}

struct Worst {
    delay: Duration,
    what: &'static str,
    seq: u32,
    srtt_us: u64,
}

/// Runs `EXCHANGES` request/response rounds under 5 % loss.
fn run(seed: u64) -> Worst {
    let faults = Faults {
        loss_per_mille: 50,
        duplicate_per_mille: 20,
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
    };
    // The bounds below were set with a 200 ms RTO.Min (the default before it became RFC 9260's
    // 1 s); the bug this pins is in the RTT sample, not the floor, so the floor stays 200 ms.
    let cfg = EndpointConfig {
        rto_initial: Duration::from_secs(3),
        rto_min: Duration::from_millis(200),
        ..EndpointConfig::default()
    };
    let mut net = Net::new(seed, faults);
    net.add(Endpoint::new(cfg.clone(), [1; 32]), addr(1));
    let mut b = Endpoint::new(cfg, [2; 32]);
    b.listen(PORT_B);
    net.add(b, addr(2));
    let now = net.now;
    let ha = net.nodes[A].endpoint.connect(now, addr(2), PORT_A, PORT_B).unwrap();
    net.run_until(100_000, |n| n.has_event(B, |e| matches!(e, Event::Connected(_))));
    let hb: AssociationHandle = net.nodes[B]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Connected(h) => Some(*h),
            _ => None,
        })
        .unwrap();

    let mut rng = Rng(seed ^ 0xa5a5);
    let mut worst = Worst { delay: Duration::ZERO, what: "", seq: 0, srtt_us: 0 };
    let (mut seen_a, mut seen_b, mut replies) = (0, 0, 0);
    for seq in 0..EXCHANGES {
        let now = net.now;
        net.nodes[A].endpoint.send(now, ha, 0, PPID, false, &stamped(seq, now)).unwrap();
        let gap = INTERVAL_MS.0 + rng.below(INTERVAL_MS.1 - INTERVAL_MS.0 + 1);
        let until = now + Duration::from_millis(gap);
        let mut steps = 0u32;
        while net.now < until {
            steps += 1;
            assert!(steps < 1_000_000, "step cap: livelock at {:?}", net.now);
            net.step();
            let now = net.now;
            let mut note = |m: &[u8], what| {
                let (s, at) = stamp(m);
                let delay = now.saturating_since(at);
                if delay > worst.delay {
                    (worst.delay, worst.what, worst.seq) = (delay, what, s);
                }
                s
            };
            let requests: Vec<u32> =
                net.nodes[B].received[seen_b..].iter().map(|m| note(&m.data, "request")).collect();
            seen_b = net.nodes[B].received.len();
            for m in &net.nodes[A].received[seen_a..] {
                note(&m.data, "reply");
                replies += 1;
            }
            seen_a = net.nodes[A].received.len();
            for s in requests {
                // B answers at once, as a PE answers a keep-alive.
                net.nodes[B].endpoint.send(now, hb, 0, PPID, false, &stamped(s, now)).unwrap();
            }
            for (n, h) in [(A, ha), (B, hb)] {
                let stats = net.nodes[n].endpoint.association_stats(h).expect("alive");
                worst.srtt_us = worst.srtt_us.max(stats.srtt_us.unwrap_or(0));
            }
        }
    }
    assert!(!net.has_event(A, |e| matches!(e, Event::CommunicationLost(_))));
    assert!(replies >= EXCHANGES - 1, "{replies} replies of {EXCHANGES}");
    worst
}

#[test]
fn low_rate_request_response_recovers_within_a_few_rto() {
    let mut failures = Vec::new();
    for seed in seeds() {
        let w = run(seed);
        println!(
            "seed {seed:#x}: worst delay {:?} ({} {}), largest SRTT {} us",
            w.delay, w.what, w.seq, w.srtt_us
        );
        if w.delay > DELAY_MAX || w.srtt_us > SRTT_MAX_US {
            failures.push(format!(
                "{seed:#x}: {:?} ({} {}), SRTT {} us",
                w.delay, w.what, w.seq, w.srtt_us
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "delay above {DELAY_MAX:?} or SRTT above {SRTT_MAX_US} us: {failures:#?}"
    );
}
