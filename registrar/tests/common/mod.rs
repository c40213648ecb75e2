//! Helpers shared by the registrar's end-to-end tests (each test file uses some of them).
#![allow(dead_code)]

pub(crate) mod live;
pub(crate) mod sim_endpoint;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use codec::param::{AddressList, SctpTransport as SctpParam};
use codec::{Policy, PoolElement, PoolElementId, RegistrarId, TransportUse, UserTransport};
use registrar::config::{Announce, Config};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, SctpTransport, TransportEvent};

/// How long `pump` waits for what it is told to wait for.
const PUMP_DEADLINE: Duration = Duration::from_secs(20);

/// A round-robin PE on 127.0.0.1, port `20 000 + id`, registered for 10 minutes.
pub(crate) fn element(id: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 600_000,
        user_transport: UserTransport::Sctp(SctpParam {
            port: 20_000 + id as u16,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap(),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    }
}

/// A UDP port that was free a moment ago.
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An in-process registrar's configuration: `workers` workers, userspace SCTP in UDP on
/// 127.0.0.1:`udp_port`, no Server Announces.
pub(crate) fn in_process(workers: usize, udp_port: u16) -> Config {
    let defaults = Config::default();
    Config {
        workers,
        udp_encapsulation: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), udp_port),
        announce: Announce { enabled: false, ..defaults.announce.clone() },
        ..defaults
    }
}

/// Polls the client until `done` says so (or the deadline fails the test).
pub(crate) fn pump(
    client: &mut SctpUdpTransport,
    mut done: impl FnMut(&TransportEvent<'_>) -> bool,
) {
    let start = Instant::now();
    let mut finished = false;
    while !finished {
        assert!(start.elapsed() < PUMP_DEADLINE, "timed out");
        let now = Instant::now();
        client.poll(now, 1_024, |e| finished |= done(&e)).unwrap();
        client.wait(now, Some(now + Duration::from_millis(5))).unwrap();
    }
}

/// One client UDP socket (secret byte `secret`) with `count` associations to the registrar at
/// 127.0.0.1 whose userspace SCTP listens on UDP `udp_port`, all up.
pub(crate) fn client_with_associations(
    udp_port: u16,
    secret: u8,
    count: usize,
) -> (SctpUdpTransport, Vec<AssocId>) {
    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let mut client =
        SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [secret; 32]).expect("client");
    let registrar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863);
    let start = Instant::now();
    let assocs: Vec<AssocId> =
        (0..count).map(|_| client.connect(start, registrar).unwrap()).collect();
    let mut up = std::collections::HashSet::new();
    pump(&mut client, |e| {
        if let TransportEvent::Up { assoc, .. } = e {
            up.insert(*assoc);
        }
        up.len() == count
    });
    (client, assocs)
}
