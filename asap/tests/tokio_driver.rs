//! The async driver (feature `tokio`) end to end over loopback, against a small scripted
//! registrar made of codec messages on our SCTP-in-UDP transport.
//!
//! Goal: a PE registers and deregisters, a PU resolves and subscribes, every push reaches
//! the subscription, the pool's end ends it, an unknown pool and an absent registrar are the
//! typed errors. Method: the scripted registrar (a thread) answers Registration,
//! Deregistration and Handle Resolution, accepts the S flag and pushes the whole pool after
//! each change (a negative push when the pool empties); the endpoints run under
//! `asap::tokio::AsyncEndpoint` on a current-thread runtime, each await bounded.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use asap::blocking::{BlockingError, PoolUpdate};
use asap::tokio::AsyncEndpoint;
use asap::{EndpointConfig, PeConfig, Updates};
use codec::param::{Policy, UserTransport};
use codec::{PoolElement, PoolElementId, PoolHandle, TransportUse};

mod common;
use common::LOCALHOST;
const STEP: Duration = Duration::from_secs(5);

fn endpoint(registrar_udp_port: u16, seed: u64) -> AsyncEndpoint {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)];
    config.hunt.hunt_timeout_initial = asap::Duration::from_millis(500);
    config.request_timeout = asap::Duration::from_millis(1_000);
    config.request_attempts_max = 1;
    let make = move || common::client_transport(registrar_udp_port);
    AsyncEndpoint::spawn(make, config, seed).unwrap()
}

fn pe(id: u32) -> PeConfig {
    let transport = UserTransport::Tcp {
        port: 7_000 + id as u16,
        transport_use: TransportUse::DATA_ONLY,
        address: LOCALHOST,
    };
    let mut config = PeConfig::new(pool(), transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(id));
    config
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"async").unwrap()
}

fn ids(elements: &[PoolElement]) -> Vec<u32> {
    let mut ids: Vec<u32> = elements.iter().map(|e| e.id.0).collect();
    ids.sort_unstable();
    ids
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {STEP:?}"))
}

async fn next_ids(subscription: &mut asap::tokio::Subscription) -> Vec<u32> {
    match bounded("push", subscription.changed()).await {
        Some(PoolUpdate::Changed { elements, updates }) => {
            assert_eq!(updates, Updates::Pushed);
            ids(&elements)
        }
        other => panic!("wanted a change, got {other:?}"),
    }
}

#[test]
fn register_resolve_subscribe_and_deregister() {
    let registrar = common::start();
    let port = registrar.udp_port;
    runtime().block_on(async {
        let pes = endpoint(port, 1);
        let user = endpoint(port, 2);
        let one = bounded("register 1", pes.register(pe(1), STEP)).await.unwrap();
        let resolved = bounded("resolve", user.resolve(pool(), STEP)).await.unwrap();
        assert_eq!(ids(&resolved), [1]);

        let mut followed = bounded("subscribe", user.subscribe(pool(), STEP)).await.unwrap();
        assert_eq!((ids(&followed.elements), followed.updates), (vec![1], Updates::Pushed));
        let two = bounded("register 2", pes.register(pe(2), STEP)).await.unwrap();
        assert_eq!(next_ids(&mut followed).await, [1, 2]);
        bounded("deregister 1", pes.deregister(one, STEP)).await.unwrap();
        assert_eq!(next_ids(&mut followed).await, [2]);
        bounded("deregister 2", pes.deregister(two, STEP)).await.unwrap();
        assert_eq!(bounded("gone", followed.changed()).await, Some(PoolUpdate::Gone));

        let unknown = bounded("resolve gone pool", user.resolve(pool(), STEP)).await;
        assert!(
            matches!(unknown, Err(BlockingError::UnknownPool(p)) if p == pool()),
            "{unknown:?}"
        );
        let refused = bounded("subscribe gone pool", user.subscribe(pool(), STEP)).await;
        assert!(matches!(refused, Err(BlockingError::UnknownPool(_))), "{:?}", refused.err());
        pes.close().await;
        user.close().await;
    });
    drop(registrar);
}

#[test]
fn no_registrar_is_a_typed_error() {
    // A UDP port of our own that never answers stands where the registrar would be.
    let silent = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    runtime().block_on(async {
        let user = endpoint(port, 3);
        let got = bounded("resolve", user.resolve(pool(), Duration::from_millis(700))).await;
        match got {
            Err(BlockingError::NoRegistrar { tried }) => {
                assert_eq!(tried, [SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)]);
            }
            other => panic!("wanted NoRegistrar, got {other:?}"),
        }
        user.close().await;
    });
}
