//! `Driver::subscribe` / `Driver::next_update` over loopback against the scripted registrar
//! (tests/common), with the registrar pushing and with one that never sets the A flag.
//!
//! Goal: where the registrar accepts the subscription, a registration elsewhere reaches the
//! watcher as a push well before the stale-cache interval; where it does not (RSPLIB), the
//! watcher still sees it, by polling at the stale-cache interval, and says `Polled`.
//! Method: a PE endpoint and a watcher endpoint; the second PE registers after the watch
//! started; the time to the update is compared with the stale-cache value (2 s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use asap::blocking::{Driver, PoolUpdate};
use asap::{EndpointConfig, PeConfig, Updates};
use codec::param::{Policy, UserTransport};
use codec::{PoolElementId, PoolHandle, TransportUse};

mod common;
use common::LOCALHOST;

const TIMEOUT: Duration = Duration::from_secs(5);
const STALE: Duration = Duration::from_secs(2);

fn config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)];
    config.stale_cache = STALE.into();
    config
}

fn pe(id: u32) -> PeConfig {
    let transport = UserTransport::Tcp {
        port: 7_000 + id as u16,
        transport_use: TransportUse::DATA_ONLY,
        address: LOCALHOST,
    };
    let mut config = PeConfig::new(PoolHandle::new(b"w").unwrap(), transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(id));
    config
}

/// Subscribes, registers PE 2, and returns how the update came and how long it took.
fn second_registration_seen(subscriptions: bool) -> (Updates, Duration) {
    let registrar = common::start_with(subscriptions);
    let transport = || common::client_transport(registrar.udp_port).unwrap();
    let mut pes = Driver::new(transport(), config(), 1);
    pes.register(pe(1), TIMEOUT).unwrap();
    let mut watcher = Driver::new(transport(), config(), 2);
    let pool = PoolHandle::new(b"w").unwrap();
    let (first, updates) = watcher.subscribe(pool, TIMEOUT).unwrap();
    assert_eq!(first.iter().map(|e| e.id.0).collect::<Vec<_>>(), [1]);
    let expected = if subscriptions { Updates::Pushed } else { Updates::Polled };
    assert_eq!(updates, expected);
    pes.register(pe(2), TIMEOUT).unwrap();
    let registered = Instant::now();
    let deadline = registered + STALE * 2;
    loop {
        match watcher.next_update(&pool, deadline).unwrap() {
            Some(PoolUpdate::Changed { elements, updates }) => {
                if elements.len() == 2 {
                    return (updates, registered.elapsed());
                }
            }
            Some(PoolUpdate::Gone) => panic!("the pool is not gone"),
            None => panic!("PE 2 not seen within {:?}", STALE * 2),
        }
    }
}

#[test]
fn pushes_arrive_at_once() {
    let (updates, took) = second_registration_seen(true);
    assert_eq!(updates, Updates::Pushed);
    assert!(took < STALE / 2, "a push took {took:?}");
}

#[test]
fn without_the_a_flag_the_watcher_polls() {
    let (updates, took) = second_registration_seen(false);
    assert_eq!(updates, Updates::Polled);
    // The poll after the subscription's answer is due one stale interval after it.
    assert!(took <= STALE + Duration::from_millis(500), "a poll took {took:?}");
}
