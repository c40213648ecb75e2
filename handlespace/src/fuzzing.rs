//! Fuzzing entry point (compiled only under `cfg(fuzzing)`): random operation sequences.
//!
//! Each 8-byte record of the input is one operation on a small handlespace (4 pools, 64 PE ids,
//! tight limits so that full tables are hit). After every operation the handlespace checks its
//! own invariants, the incremental PE checksum must equal a from-scratch one, and every PE a
//! resolution returns must be registered. Any panic is a finding.

use std::net::{IpAddr, Ipv4Addr};

use codec::{PoolElementId, PoolHandle, RegistrarId, TransportUse};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::{
    policy, Config, Duration, Handlespace, Instant, Limits, PolicySettings, Protocol, Registration,
    TransportInfo,
};

const OWN: RegistrarId = RegistrarId(1);

/// Runs the operation sequence encoded in `data`.
pub fn ops(data: &[u8]) {
    let limits = Limits { pools_max: 3, pool_elements_max: 48, ..Limits::default() };
    let config = Config {
        limits,
        keep_alive_interval: Duration::from_micros(5_000),
        keep_alive_timeout: Duration::from_micros(5_000),
        ..Config::default()
    };
    let mut hs = Handlespace::new(OWN, config);
    let mut rng = SmallRng::seed_from_u64(0);
    let mut now = 0u64;
    let mut expired = Vec::new();
    let wire = crate::Wire::from(&[0u8; 24][..]);
    for record in data.chunks_exact(8) {
        let pool = PoolHandle::new(&[b'p', record[1] % 4]).expect("two bytes");
        let id = PoolElementId(u32::from(record[2] % 64));
        let value = u32::from_be_bytes([0, record[5], record[6], record[7]]);
        now += u64::from(record[7]) * 100;
        let at = Instant::from_micros(now);
        match record[0] % 6 {
            0 => {
                let policy_type =
                    policy::SUPPORTED[usize::from(record[4]) % policy::SUPPORTED.len()];
                let registration = Registration {
                    pool_handle: pool,
                    id,
                    home: RegistrarId(u32::from(record[3] % 3)),
                    policy: PolicySettings {
                        policy_type,
                        weight: value % 8,
                        priority: value % 5,
                        load: value.wrapping_mul(2_654_435_761),
                        load_degradation: value,
                        ..PolicySettings::new()
                    },
                    transport: TransportInfo {
                        protocol: if record[3] & 0x80 == 0 {
                            Protocol::Sctp
                        } else {
                            Protocol::Tcp
                        },
                        port: 7,
                        transport_use: TransportUse::DATA_ONLY,
                        addresses: Box::new([IpAddr::V4(Ipv4Addr::LOCALHOST)]),
                    },
                    lifetime: match record[6] {
                        0 => Duration::INFINITE,
                        n => Duration::from_micros(u64::from(n) * 1_000),
                    },
                    registrator: u64::from(record[3]),
                    wire: wire.clone(),
                };
                let _ = hs.register(at, registration);
            }
            1 => {
                let _ = hs.deregister(&pool, id);
            }
            2 => {
                let items = u32::from(record[5] % 8);
                let picked: Vec<PoolElementId> = match hs.resolve(&pool, items, &mut rng) {
                    Ok(resolution) => resolution.elements().map(|e| e.id()).collect(),
                    Err(_) => Vec::new(),
                };
                let mut unique = picked.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), picked.len(), "a PE twice in one answer");
                for pe in picked {
                    assert!(hs.element(&pool, pe).is_some(), "an unregistered PE was selected");
                }
            }
            3 => {
                expired.clear();
                hs.expire(at, 64, &mut expired);
            }
            4 => {
                let _ = hs.report_unreachable(&pool, id);
            }
            _ => {
                let _ = hs.handle_keep_alive_ack(at, &pool, id);
            }
        }
        hs.check_invariants();
        for owner in [RegistrarId(0), OWN, RegistrarId(2)] {
            assert_eq!(hs.pe_checksum(owner), hs.pe_checksum_from_scratch(owner));
        }
    }
}
