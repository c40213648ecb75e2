//! Register, re-register, deregister and resolve for each policy, swept over pool sizes
//! 1, 100, 10 000 and 1 000 000 PEs.
//!
//! Run briefly: `cargo bench -p handlespace -- --quick` or, for one slice,
//! `cargo bench -p handlespace -- 'resolve/LeastUsed/'`.
//! The 1 000 000-PE pools share one `Wire` blob and one single-address transport shape, so
//! setting one up costs about a second per policy.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration as WallDuration, Instant as WallInstant};

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use handlespace::{
    Config, Duration, Handlespace, Instant, Limits, PolicySettings, Protocol, Registration,
    TransportInfo,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;

const SIZES: [u32; 4] = [1, 100, 10_000, 1_000_000];
const BATCH: u32 = 1_000;

const POLICIES: [PolicyType; 18] = handlespace::policy::SUPPORTED;

struct Fixture {
    hs: Handlespace,
    handle: PoolHandle,
    wire: handlespace::Wire,
    policy_type: PolicyType,
}

impl Fixture {
    fn new(policy_type: PolicyType, size: u32) -> Self {
        let limits = Limits {
            pool_elements_max: 2_000_000,
            pool_elements_per_pool_max: 2_000_000,
            ..Limits::default()
        };
        let config = Config { limits, ..Config::default() };
        let mut fixture = Self {
            hs: Handlespace::new(RegistrarId(1), config),
            handle: PoolHandle::new(b"BenchPool").unwrap(),
            wire: handlespace::Wire::from(&[0u8; 64][..]),
            policy_type,
        };
        for id in 0..size {
            fixture.hs.register(Instant::from_micros(0), fixture.registration(id)).unwrap();
        }
        fixture
    }

    fn registration(&self, id: u32) -> Registration {
        make_registration(self.handle, &self.wire, self.policy_type, id)
    }
}

fn make_registration(
    handle: PoolHandle,
    wire: &handlespace::Wire,
    policy_type: PolicyType,
    id: u32,
) -> Registration {
    // Spread loads and weights so that LU-style keys are mostly distinct.
    let mix = id.wrapping_mul(0x9e37_79b9);
    Registration {
        pool_handle: handle,
        id: PoolElementId(id),
        home: RegistrarId(1),
        policy: PolicySettings {
            policy_type,
            weight: 1 + mix % 16,
            priority: mix % 8,
            load: mix >> 4,
            load_degradation: 1 << 16,
            load_dpf: 1 << 8,
            weight_dpf: 1 << 20,
            distance: mix % 100,
        },
        transport: TransportInfo {
            protocol: Protocol::Sctp,
            port: 9,
            transport_use: TransportUse::DATA_ONLY,
            addresses: Box::new(["10.0.0.1".parse().unwrap()]),
        },
        lifetime: Duration::from_secs(30),
        registrator: u64::from(id),
        wire: wire.clone(),
    }
}

fn name(policy_type: PolicyType) -> String {
    format!("{policy_type:?}")
}

fn resolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve");
    group.warm_up_time(WallDuration::from_millis(300));
    group.measurement_time(WallDuration::from_secs(1));
    for policy_type in POLICIES {
        for size in SIZES {
            let mut fixture = Fixture::new(policy_type, size);
            let mut rng = SmallRng::seed_from_u64(1);
            let id = BenchmarkId::new(name(policy_type), size);
            group.bench_function(id, |b| {
                b.iter(|| fixture.hs.resolve(&fixture.handle, 1, &mut rng).unwrap().len())
            });
        }
    }
    group.finish();
}

/// Registers BATCH fresh PEs per timed round, deregistering them untimed, so the pool stays at
/// `size`.
fn register(c: &mut Criterion) {
    let mut group = c.benchmark_group("register");
    group.warm_up_time(WallDuration::from_millis(300));
    group.measurement_time(WallDuration::from_secs(1));
    for policy_type in POLICIES {
        for size in SIZES {
            let mut fixture = Fixture::new(policy_type, size);
            group.bench_function(BenchmarkId::new(name(policy_type), size), |b| {
                b.iter_custom(|iters| {
                    let mut total = WallDuration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = BATCH.min(u32::try_from(iters - done).unwrap_or(BATCH));
                        let batch: Vec<_> =
                            (0..n).map(|i| fixture.registration(size + i)).collect();
                        let start = WallInstant::now();
                        for registration in batch {
                            black_box(fixture.hs.register(Instant::from_micros(1), registration))
                                .unwrap();
                        }
                        total += start.elapsed();
                        for i in 0..n {
                            fixture.hs.deregister(&fixture.handle, PoolElementId(size + i));
                        }
                        done += u64::from(n);
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

/// Deregisters BATCH PEs per timed round, re-registering them untimed.
fn deregister(c: &mut Criterion) {
    let mut group = c.benchmark_group("deregister");
    group.warm_up_time(WallDuration::from_millis(300));
    group.measurement_time(WallDuration::from_secs(1));
    for policy_type in POLICIES {
        for size in SIZES {
            let mut fixture = Fixture::new(policy_type, size);
            group.bench_function(BenchmarkId::new(name(policy_type), size), |b| {
                b.iter_custom(|iters| {
                    let mut total = WallDuration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = BATCH.min(u32::try_from(iters - done).unwrap_or(BATCH));
                        for i in 0..n {
                            let registration = fixture.registration(size + i);
                            fixture.hs.register(Instant::from_micros(1), registration).unwrap();
                        }
                        let start = WallInstant::now();
                        for i in 0..n {
                            black_box(
                                fixture.hs.deregister(&fixture.handle, PoolElementId(size + i)),
                            )
                            .unwrap();
                        }
                        total += start.elapsed();
                        done += u64::from(n);
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

/// Re-registers existing PEs (the steady state of a live pool: every PE re-registers each
/// Registration Life).
fn reregister(c: &mut Criterion) {
    let mut group = c.benchmark_group("reregister");
    group.warm_up_time(WallDuration::from_millis(300));
    group.measurement_time(WallDuration::from_secs(1));
    for policy_type in POLICIES {
        for size in SIZES {
            let Fixture { mut hs, handle, wire, .. } = Fixture::new(policy_type, size);
            let mut next = 0;
            group.bench_function(BenchmarkId::new(name(policy_type), size), |b| {
                b.iter_batched(
                    || {
                        next = (next + 1) % size;
                        make_registration(handle, &wire, policy_type, next)
                    },
                    |registration| hs.register(Instant::from_micros(2), registration),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, resolve, register, deregister, reregister);
criterion_main!(benches);
