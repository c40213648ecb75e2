//! `PoolUser::connect_tcp` over loopback against the scripted registrar (tests/common).
//!
//! Goal: the PU gets a connected `TcpStream` to a PE of the pool, failing over past a PE
//! whose port refuses; each failure is reported to the registrar as Endpoint Unreachable
//! exactly once (RFC 5352 §3.5), a reported PE is skipped until the next resolution, and a
//! new failure after it is a new report. Method: two PEs registered in order (a closed port,
//! then a listening one), three connects (fresh, from the cache, after the cache went
//! stale), counting the reports the registrar received.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use asap::blocking::{BlockingError, Driver, PoolUser};
use asap::{EndpointConfig, PeConfig};
use codec::param::{Policy, UserTransport};
use codec::{PoolElementId, PoolHandle, TransportUse};

mod common;
use common::LOCALHOST;

const TIMEOUT: Duration = Duration::from_secs(5);
const STALE: Duration = Duration::from_millis(300);

fn config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)];
    config.stale_cache = STALE.into();
    config
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"tcp").unwrap()
}

fn pe(id: u32, port: u16) -> PeConfig {
    let transport =
        UserTransport::Tcp { port, transport_use: TransportUse::DATA_ONLY, address: LOCALHOST };
    let mut config = PeConfig::new(pool(), transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(id));
    config
}

/// Waits up to `wait` for the registrar to hold `n` reports; returns the PE ids reported.
fn reports(registrar: &common::Scripted, n: usize, wait: Duration) -> Vec<u32> {
    let until = Instant::now() + wait;
    loop {
        let got: Vec<u32> =
            registrar.unreachable.lock().unwrap().iter().map(|u| u.pe_id.0).collect();
        if got.len() >= n || Instant::now() >= until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn connect_tcp_fails_over_and_reports_each_failure_once() {
    let registrar = common::start();
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = TcpListener::bind((LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let mut pes = Driver::new(common::client_transport(registrar.udp_port).unwrap(), config(), 1);
    pes.register(pe(1, closed), TIMEOUT).unwrap();
    pes.register(pe(2, open), TIMEOUT).unwrap();
    let transport = common::client_transport(registrar.udp_port).unwrap();
    let mut user = PoolUser::new(transport, config(), 2);

    let mut failed = Vec::new();
    let (stream, chosen) =
        user.connect_tcp_observed(pool(), TIMEOUT, |pe, _| failed.push(pe.id.0)).unwrap();
    assert_eq!((chosen.id.0, failed.as_slice()), (2, &[1][..]));
    assert_eq!(stream.peer_addr().unwrap().port(), open);
    assert_eq!(reports(&registrar, 1, Duration::from_secs(2)), [1]);

    // From the cache: PE 1 was reported, so it is not tried (nor reported) again.
    let (_, chosen) = user.connect_tcp(pool(), TIMEOUT).unwrap();
    assert_eq!(chosen.id.0, 2);
    let settled = reports(&registrar, 2, Duration::from_millis(200));
    assert_eq!(settled, [1], "one failure, one report");

    // A new resolution lists PE 1 again: its next failure is a new event and a new report.
    std::thread::sleep(STALE);
    let (_, chosen) = user.connect_tcp(pool(), TIMEOUT).unwrap();
    assert_eq!(chosen.id.0, 2);
    assert_eq!(reports(&registrar, 2, Duration::from_secs(2)), [1, 1]);
}

#[test]
fn a_pool_without_a_taker_is_a_typed_error() {
    let registrar = common::start();
    let closed = TcpListener::bind((LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let mut pes = Driver::new(common::client_transport(registrar.udp_port).unwrap(), config(), 3);
    pes.register(pe(1, closed), TIMEOUT).unwrap();
    let transport = common::client_transport(registrar.udp_port).unwrap();
    let mut user = PoolUser::new(transport, config(), 4);
    match user.connect_tcp(pool(), TIMEOUT) {
        Err(BlockingError::Unreachable { pool_handle, tried: 1, last }) => {
            assert_eq!(pool_handle, pool());
            assert_eq!(last.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("wanted Unreachable, got {:?}", other.map(|(_, pe)| pe)),
    }
    let unknown = PoolHandle::new(b"none").unwrap();
    let got = user.connect_tcp(unknown, TIMEOUT).map(|(_, pe)| pe);
    assert!(matches!(got, Err(BlockingError::UnknownPool(p)) if p == unknown), "{got:?}");
}
