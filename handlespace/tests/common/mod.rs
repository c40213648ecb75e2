//! Helpers shared by the handlespace integration tests.
#![allow(dead_code, unreachable_pub)]

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{
    Config, Duration, Handlespace, Instant, PolicySettings, Protocol, Registration, TransportInfo,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;

pub const OWN: RegistrarId = RegistrarId(0x0000_0001);
pub const PEER: RegistrarId = RegistrarId(0x0000_0002);

pub fn handle(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

pub fn at(micros: u64) -> Instant {
    Instant::from_micros(micros)
}

pub fn policy(policy_type: PolicyType) -> PolicySettings {
    PolicySettings { policy_type, ..PolicySettings::new() }
}

pub fn registration(pool: &str, id: u32, settings: PolicySettings) -> Registration {
    Registration {
        pool_handle: handle(pool),
        id: PoolElementId(id),
        home: OWN,
        policy: settings,
        transport: TransportInfo {
            protocol: Protocol::Sctp,
            port: 9,
            transport_use: TransportUse::DATA_ONLY,
            addresses: Box::new(["10.0.0.1".parse().unwrap()]),
        },
        lifetime: Duration::INFINITE,
        registrator: u64::from(id),
        wire: handlespace::Wire::from(&id.to_be_bytes()[..]),
    }
}

pub fn handlespace() -> Handlespace {
    Handlespace::new(OWN, Config::default())
}

/// A pool "p" with one PE per settings entry, ids 1, 2, 3, ...
pub fn pool_of(settings: &[PolicySettings]) -> Handlespace {
    let mut hs = handlespace();
    for (i, s) in settings.iter().enumerate() {
        hs.register(at(0), registration("p", i as u32 + 1, *s)).unwrap();
    }
    hs
}

pub fn resolve_ids(hs: &mut Handlespace, items: u32, rng: &mut SmallRng) -> Vec<u32> {
    hs.resolve(&handle("p"), items, rng).unwrap().elements().map(|pe| pe.id().0).collect()
}
