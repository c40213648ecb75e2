//! Property tests over random operation sequences (STYLE.md §7.3). Every failure prints the
//! shrunk operation list and reproduces from proptest's persisted seed.

mod common;

use std::collections::HashSet;

use codec::{PolicyType, PoolElementId, RegistrarId};
use common::*;
use handlespace::{Config, Duration, Expiry, PolicySettings, ShardedHandlespace, Unreachable};
use proptest::prelude::*;

const POLICIES: [PolicyType; 18] = handlespace::policy::SUPPORTED;

const POOLS: [&str; 4] = ["a", "bb", "ccc", "dddd"];
const HOMES: [RegistrarId; 3] = [OWN, PEER, RegistrarId(3)];

#[derive(Clone, Debug)]
enum Op {
    Register { pool: usize, id: u32, home: usize, weight: u32, load: u32, life_ms: u64 },
    Deregister { pool: usize, id: u32 },
    Resolve { pool: usize, items: u32 },
    Advance { ms: u64 },
    Ack { pool: usize, id: u32 },
    Unreachable { pool: usize, id: u32 },
    TakeOver { source: usize, target: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let pool = 0..POOLS.len();
    let id = 0..12u32;
    prop_oneof![
        4 => (pool.clone(), id.clone(), 0..HOMES.len(), 0..4u32, any::<u32>(), 1..20_000u64)
            .prop_map(|(pool, id, home, weight, load, life_ms)| {
                Op::Register { pool, id, home, weight, load, life_ms }
            }),
        1 => (pool.clone(), id.clone()).prop_map(|(pool, id)| Op::Deregister { pool, id }),
        4 => (pool.clone(), 0..6u32).prop_map(|(pool, items)| Op::Resolve { pool, items }),
        1 => (0..8_000u64).prop_map(|ms| Op::Advance { ms }),
        1 => (pool.clone(), id.clone()).prop_map(|(pool, id)| Op::Ack { pool, id }),
        1 => (pool, id).prop_map(|(pool, id)| Op::Unreachable { pool, id }),
        1 => (0..HOMES.len(), 0..HOMES.len())
            .prop_map(|(source, target)| Op::TakeOver { source, target }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Goal: no deregistered, expired, timed-out or unreachable-removed PE is ever selected; the
    // incremental PE checksum of every registrar equals the from-scratch computation after every
    // step; per-shard counts sum to the total.
    // Method: random operation sequences against four pools with random policies, mirrored in a
    // model set of live (pool, id) pairs and in a 3-shard copy.
    #[test]
    fn random_operations_keep_the_invariants(
        policies in proptest::array::uniform4(0..POLICIES.len()),
        ops in proptest::collection::vec(op(), 1..120),
        seed in any::<u64>(),
    ) {
        let mut hs = handlespace();
        let mut sharded = ShardedHandlespace::new(OWN, Config::default(), 3);
        let mut live: HashSet<(usize, u32)> = HashSet::new();
        let mut r = rng(seed);
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Register { pool, id, home, weight, load, life_ms } => {
                    let settings = PolicySettings {
                        weight,
                        priority: weight,
                        load,
                        load_degradation: load / 3,
                        load_dpf: weight,
                        weight_dpf: load,
                        distance: weight,
                        ..policy(POLICIES[policies[pool]])
                    };
                    let mut reg = registration(POOLS[pool], id, settings);
                    reg.home = HOMES[home];
                    reg.lifetime = Duration::from_millis(life_ms);
                    let a = hs.register(at(now), reg.clone()).is_ok();
                    let b = sharded.for_handle_mut(&reg.pool_handle).register(at(now), reg).is_ok();
                    prop_assert!(a && b, "consistent registrations are accepted");
                    live.insert((pool, id));
                }
                Op::Deregister { pool, id } => {
                    let removed = hs.deregister(&handle(POOLS[pool]), PoolElementId(id));
                    let h = handle(POOLS[pool]);
                    sharded.for_handle_mut(&h).deregister(&h, PoolElementId(id));
                    prop_assert_eq!(removed.is_some(), live.remove(&(pool, id)));
                }
                Op::Resolve { pool, items } => {
                    match hs.resolve(&handle(POOLS[pool]), items, &mut r) {
                        Ok(answer) => {
                            let ids: Vec<u32> = answer.elements().map(|pe| pe.id().0).collect();
                            let unique: HashSet<u32> = ids.iter().copied().collect();
                            prop_assert_eq!(unique.len(), ids.len(), "no PE twice");
                            prop_assert!(ids.len() <= items as usize);
                            for id in ids {
                                prop_assert!(live.contains(&(pool, id)), "selected a dead PE");
                            }
                        }
                        Err(_) => prop_assert!(!live.iter().any(|&(p, _)| p == pool)),
                    }
                }
                Op::Advance { ms } => {
                    now += ms * 1_000;
                    for expired in expire_all(&mut hs, now) {
                        prop_assert!(live.remove(&expired), "expired a PE twice or unknown");
                    }
                    let mut out = Vec::new();
                    for shard in 0..3 {
                        sharded.shard_mut(shard).expire(at(now), usize::MAX, &mut out);
                    }
                }
                Op::Ack { pool, id } => {
                    let h = handle(POOLS[pool]);
                    hs.handle_keep_alive_ack(at(now), &h, PoolElementId(id));
                    let shard = sharded.for_handle_mut(&h);
                    shard.handle_keep_alive_ack(at(now), &h, PoolElementId(id));
                }
                Op::Unreachable { pool, id } => {
                    let h = handle(POOLS[pool]);
                    let outcome = hs.report_unreachable(&h, PoolElementId(id));
                    sharded.for_handle_mut(&h).report_unreachable(&h, PoolElementId(id));
                    if let Some(Unreachable::Removed(_)) = outcome {
                        live.remove(&(pool, id));
                    }
                }
                Op::TakeOver { source, target } => {
                    hs.take_over(at(now), HOMES[source], HOMES[target]);
                    for shard in 0..3 {
                        sharded.shard_mut(shard).take_over(at(now), HOMES[source], HOMES[target]);
                    }
                }
            }
            hs.check_invariants();
            prop_assert_eq!(hs.element_count() as usize, live.len());
            for home in HOMES {
                prop_assert_eq!(hs.pe_checksum(home), hs.pe_checksum_from_scratch(home));
                prop_assert_eq!(sharded.pe_checksum(home), hs.pe_checksum(home));
            }
            let per_shard: u64 = (0..3).map(|s| u64::from(sharded.shard(s).element_count())).sum();
            prop_assert_eq!(per_shard, u64::from(hs.element_count()));
            prop_assert_eq!(sharded.element_count(), u64::from(hs.element_count()));
        }
    }
}

/// Fires every due timer and returns the (pool, id) of each PE removed.
fn expire_all(hs: &mut handlespace::Handlespace, now: u64) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    hs.expire(at(now), usize::MAX, &mut out);
    out.into_iter()
        .filter_map(|expiry| match expiry {
            Expiry::KeepAliveDue { .. } => None,
            Expiry::KeepAliveTimedOut(removed) | Expiry::LifetimeExpired(removed) => {
                let pool =
                    POOLS.iter().position(|p| p.as_bytes() == removed.pool_handle.as_bytes());
                Some((pool.expect("one of ours"), removed.id.0))
            }
        })
        .collect()
}

const SELECTIONS: u32 = 100_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    // Goal: over 100 000 one-item resolutions, each PE's share of WRR heads is within 0.001 of
    // weight / total weight, and of WRAND picks within 0.008.
    // Bounds: WRR is deterministic stride scheduling, off by at most one turn per PE (n / 100 000
    // <= 0.0001 here) plus the 2^-40 stride rounding; 0.001 leaves margin. WRAND is a binomial
    // with standard deviation sqrt(p (1 - p) / N) <= 0.0016, and 0.008 is five of those.
    // Method: 2-8 PEs with weights 0-20 (at least one positive), a seeded RNG.
    #[test]
    fn weighted_shares_converge(
        weights in proptest::collection::vec(0..20u32, 2..8),
        seed in any::<u64>(),
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let total: u32 = weights.iter().sum();
        for (policy_type, bound) in
            [(PolicyType::WEIGHTED_ROUND_ROBIN, 0.001), (PolicyType::WEIGHTED_RANDOM, 0.008)]
        {
            let settings: Vec<PolicySettings> = weights
                .iter()
                .map(|&weight| PolicySettings { weight, ..policy(policy_type) })
                .collect();
            let mut hs = pool_of(&settings);
            let mut r = rng(seed);
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..SELECTIONS {
                let answer = hs.resolve(&handle("p"), 1, &mut r).unwrap();
                let id = answer.elements().next().unwrap().id().0;
                counts[id as usize - 1] += 1;
            }
            for (count, weight) in counts.iter().zip(&weights) {
                let share = f64::from(*count) / f64::from(SELECTIONS);
                let expected = f64::from(*weight) / f64::from(total);
                prop_assert!(
                    (share - expected).abs() <= bound,
                    "{:?}: share {} expected {} counts {:?}", policy_type, share, expected, counts
                );
            }
        }
    }
}
