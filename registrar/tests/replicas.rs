//! Read replicas under real traffic: every core answers resolutions for every pool, and no
//! replica update is lost.
//!
//! Goal: with 2 workers, a PU answers from its own core's replica exactly what the pool's owner
//! holds, through registrations, deregistrations and a PE session that closes (its PEs removed
//! on their owners' cores, and from the replicas); and once the cores are quiet, each core's
//! replica holds exactly the PEs of the other core's shard (counts, and the RFC 5353 checksum
//! sums over pool handle and PE id). Method: the registrar in-process over userspace SCTP in
//! UDP; 4 PE sessions and 2 PU sessions, each an `asap::Endpoint` on its own socket
//! (`common::live`), spread over the cores by tag steering; 8 pools, which shard over both
//! cores; every phase bounded in time.

use std::collections::BTreeSet;
mod common;

use std::time::{Duration, Instant};

use asap::{EndpointConfig, Event, PeConfig};
use codec::{ErrorCause, PoolElementId, PoolHandle};
use common::live::LiveEndpoints;
use handlespace::ChecksumAccumulator;
use registrar::proto::Stats;

const POOLS: u32 = 8;
const PE_SESSIONS: u32 = 4;
/// PEs each PE session registers in each pool.
const PES_PER_SESSION_AND_POOL: u32 = 6;
const STEP: Duration = Duration::from_secs(10);

fn pool(i: u32) -> PoolHandle {
    PoolHandle::new(format!("replica-pool-{i}").as_bytes()).unwrap()
}

// PE ids are unique per pool: session `s` owns ids `s * 100 + 1 ..`.

/// One session: an endpoint on a socket of its own (cookie secret byte `secret`, which with
/// tag steering decides the core its association lands on).
fn session(udp_port: u16, secret: u8) -> LiveEndpoints {
    // Every resolution asks the registrar, for all of a pool's PEs.
    let config = EndpointConfig {
        stale_cache: asap::Duration::ZERO,
        items_wanted: Some(128),
        ..EndpointConfig::default()
    };
    LiveEndpoints::connect(udp_port, secret, 1, &config)
}

fn pe_config(i: u32, id: u32) -> PeConfig {
    let element = common::element(id);
    let mut config = PeConfig::new(pool(i), element.user_transport, element.policy);
    config.id = Some(PoolElementId(id));
    config.registration_life = asap::Duration::from_millis(600_000);
    config
}

/// Waits until `count` events of `kind` arrived, none of them a failure.
fn wait_for(s: &mut LiveEndpoints, count: usize, kind: fn(&Event) -> bool) {
    let failed = |e: &Event| matches!(e, Event::RegistrationFailed { .. });
    let events = s.run_until(STEP, |events| {
        events.iter().any(|(_, e)| failed(e))
            || events.iter().filter(|(_, e)| kind(e)).count() >= count
    });
    let failures: Vec<_> = events.iter().filter(|(_, e)| failed(e)).collect();
    assert!(failures.is_empty(), "{failures:?}");
}

fn resolve(s: &mut LiveEndpoints, i: u32) -> Result<BTreeSet<u32>, ErrorCause> {
    s.resolve_ids(0, pool(i), STEP)
}

/// Every PU resolves every pool and must get `expected[pool]` (empty: Unknown Pool Handle).
/// A core applies replica updates at the start of each loop iteration, so an answer may be one
/// iteration stale (README, "Not implemented"): a mismatch is retried for up to a second.
fn check_resolutions(pus: &mut [LiveEndpoints], expected: &[BTreeSet<u32>]) {
    for pu in pus.iter_mut() {
        for (i, want) in expected.iter().enumerate() {
            let want = if want.is_empty() {
                Err(ErrorCause::UNKNOWN_POOL_HANDLE)
            } else {
                Ok(want.clone())
            };
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut got = resolve(pu, i as u32);
            while got != want && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                got = resolve(pu, i as u32);
            }
            assert_eq!(got, want, "pool {i}");
        }
    }
}

/// Waits until each core's replica mirrors the other core's shard; returns the per-core stats.
fn quiet_and_consistent(running: &registrar::core::Running, total: u64) -> Vec<Stats> {
    let deadline = Instant::now() + STEP;
    loop {
        let cores = running.stats_per_core();
        let shards: u64 = cores.iter().map(|s| s.shard_elements).sum();
        let mirrored = cores.iter().enumerate().all(|(c, s)| {
            let others = cores.iter().enumerate().filter(|&(d, _)| d != c);
            let sum =
                others.clone().fold(ChecksumAccumulator::EMPTY, |a, (_, o)| a.merge(o.shard_sum));
            let count: u64 = others.map(|(_, o)| o.shard_elements).sum();
            s.replica_elements == count && s.replica_sum == sum
        });
        if shards == total && mirrored {
            return cores;
        }
        assert!(Instant::now() < deadline, "replicas never matched the shards: {cores:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_follow_their_owners() {
    let port = common::free_udp_port();
    let config = common::in_process(2, port);
    assert!(config.replicas, "replicas are on by default");
    let running = registrar::io::start(&config).expect("registrar starts");
    let mut pes: Vec<_> = (0..PE_SESSIONS).map(|s| session(port, 10 + s as u8)).collect();
    let mut pus: Vec<_> = (0..2).map(|s| session(port, 20 + s as u8)).collect();

    // Register: every PE session puts its PEs in every pool.
    let mut expected = vec![BTreeSet::new(); POOLS as usize];
    let mut handles = Vec::new();
    for (s, pe) in pes.iter_mut().enumerate() {
        let now = pe.now();
        for i in 0..POOLS {
            for k in 1..=PES_PER_SESSION_AND_POOL {
                let id = s as u32 * 100 + k;
                handles.push((s, i, k, pe.endpoint(0).register(now, pe_config(i, id)).unwrap()));
                expected[i as usize].insert(id);
            }
        }
        let count = (POOLS * PES_PER_SESSION_AND_POOL) as usize;
        wait_for(pe, count, |e| matches!(e, Event::Registered { .. }));
    }
    let total = u64::from(POOLS * PE_SESSIONS * PES_PER_SESSION_AND_POOL);
    check_resolutions(&mut pus, &expected);
    quiet_and_consistent(&running, total);

    // Deregister half of the first session's PEs, and all of them in pool 0: pool 0 keeps the
    // other sessions' PEs, and a pool emptied below disappears.
    let mut removed = 0;
    let now = pes[0].now();
    for &(_, i, k, pe) in handles.iter().filter(|(s, ..)| *s == 0) {
        if i == 0 || k % 2 == 0 {
            pes[0].endpoint(0).deregister(now, pe).unwrap();
            expected[i as usize].remove(&k);
            removed += 1;
        }
    }
    wait_for(&mut pes[0], removed as usize, |e| matches!(e, Event::Deregistered { .. }));
    check_resolutions(&mut pus, &expected);

    // The second PE session ends: its PEs leave their owners' shards and every replica.
    pes.remove(1).close(Duration::from_secs(2));
    for want in expected.iter_mut() {
        want.retain(|id| id / 100 != 1);
    }
    let left = total - removed - u64::from(POOLS * PES_PER_SESSION_AND_POOL);
    check_resolutions(&mut pus, &expected);
    let cores = quiet_and_consistent(&running, left);

    // Both cores held shards and answered from their replicas.
    assert!(cores.iter().all(|s| s.shard_elements > 0), "pools on both cores: {cores:#?}");
    assert!(cores.iter().all(|s| s.replica_resolutions > 0), "replica answers: {cores:#?}");
    assert_eq!(running.stats().dropped, 0);

    // The last PEs go with their sessions: everything is empty, replicas included.
    for pe in pes {
        pe.close(Duration::from_secs(2));
    }
    let cores = quiet_and_consistent(&running, 0);
    assert!(cores.iter().all(|s| s.replica_elements == 0), "{cores:#?}");
    check_resolutions(&mut pus, &vec![BTreeSet::new(); POOLS as usize]);
    running.stop().unwrap();
}
