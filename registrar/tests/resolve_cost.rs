//! A fixed Handle Resolution workload for instruction counts (STYLE.md §8: a deterministic
//! signal beside wall time), and a check that its answers are right.
//!
//! Goal: the instructions the sans-IO registrar spends per answered resolution, comparable
//! across commits on a noisy shared host. Method: a one-core `Server` with `POOLS` pools of
//! `PES_PER_POOL` PEs, each registered with real ASAP Registration bytes over its own
//! association (one IPv4 address, SCTP, round robin, as in a deployment); then one PU
//! association sends `RESOLVE_COUNT` Handle Resolutions (3 items, pools in turn), and each
//! answer is polled and its buffer recycled, as the core loop does. Run under callgrind at two
//! counts; the difference of the totals over the difference of the counts is the cost of one
//! resolution with the set-up taken out:
//!
//! ```text
//! export CARGO_TARGET_DIR=/work/target-helper
//! cargo test -j2 --release -p registrar --test resolve_cost --no-run
//! for n in 10000 110000; do RESOLVE_COUNT=$n valgrind --tool=callgrind \
//!   --callgrind-out-file=/tmp/resolve.$n $(ls -t $CARGO_TARGET_DIR/release/deps/resolve_cost-* \
//!   | grep -v '\.d$' | head -1) --test-threads=1 2>&1 | grep 'Collected'; done
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use codec::asap::{HandleResolution, Message, Registration};
use codec::param::{AddressList, SctpTransport};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{Duration, Instant};
use registrar::proto::{Server, ServerConfig};

const POOLS: u32 = 16;
const PES_PER_POOL: u32 = 8;
const ITEMS: u32 = 3;
/// Resolutions answered by default; `RESOLVE_COUNT` sets another count.
const RESOLVE_COUNT_DEFAULT: u32 = 10_000;
/// The PU's association (PEs use 1..=POOLS × PES_PER_POOL).
const PU_ASSOC: u32 = 100_000;

#[test]
fn resolutions_are_answered_with_their_pool_elements() {
    let count = std::env::var("RESOLVE_COUNT")
        .ok()
        .map_or(RESOLVE_COUNT_DEFAULT, |v| v.parse().expect("RESOLVE_COUNT: a count"));
    let now = Instant::from_micros(0);
    let mut server = Server::new(config());
    let handles: Vec<PoolHandle> =
        (0..POOLS).map(|p| PoolHandle::new(format!("pool-{p:02}").as_bytes()).unwrap()).collect();
    for pe in 0..POOLS * PES_PER_POOL {
        register(&mut server, handles[(pe % POOLS) as usize], pe);
    }
    server.handle_up(PU_ASSOC, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9_000));
    let requests: Vec<Vec<u8>> = handles
        .iter()
        .map(|&pool_handle| {
            let request = HandleResolution { subscribe: false, pool_handle, items_wanted: None };
            Message::HandleResolution(request).emit_to_vec()
        })
        .collect();
    let mut bytes_total = 0u64;
    for n in 0..count {
        server.handle_message(now, PU_ASSOC, &requests[(n % POOLS) as usize]);
        let answer = server.poll_transmit().expect("a Handle Resolution Response");
        bytes_total += answer.bytes.len() as u64;
        if n < POOLS {
            check(&answer.bytes, handles[n as usize]);
        }
        server.recycle(answer.bytes);
    }
    assert!(server.poll_transmit().is_none());
    assert_eq!(server.stats().resolutions, u64::from(count));
    println!("{count} resolutions, {bytes_total} bytes answered");
}

/// The answer names the pool and carries `ITEMS` of its PEs, each as registered, without the
/// ASAP Transport (registrars' business) and with this registrar as home.
fn check(answer: &[u8], pool_handle: PoolHandle) {
    let Ok(Message::HandleResolutionResponse(response)) = Message::parse(answer) else {
        panic!("not a Handle Resolution Response: {answer:02x?}");
    };
    assert_eq!(response.pool_handle, pool_handle);
    assert!(response.error.is_none());
    assert_eq!(response.pool_elements.len(), ITEMS as usize);
    for pe in &response.pool_elements {
        let index = pe.id.0 - 0x1000_0000;
        let mut expected = element(index);
        expected.home_registrar = RegistrarId(1);
        assert_eq!(*pe, expected);
    }
}

fn register(server: &mut Server, pool_handle: PoolHandle, pe: u32) {
    let assoc = pe + 1;
    server.handle_up(assoc, peer(pe));
    let message = Message::Registration(Registration { pool_handle, pool_element: element(pe) });
    server.handle_message(Instant::from_micros(0), assoc, &message.emit_to_vec());
    let answer = server.poll_transmit().expect("a Registration Response");
    match Message::parse(&answer.bytes) {
        Ok(Message::RegistrationResponse(r)) => assert!(!r.reject, "PE {pe} refused"),
        other => panic!("PE {pe}: {other:?}"),
    }
    server.recycle(answer.bytes);
}

fn element(pe: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(0x1000_0000 + pe),
        home_registrar: RegistrarId(0),
        registration_life_ms: 60_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 7_000,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[peer(pe).ip()]).unwrap(),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    }
}

/// The PE host: one per PE, the association from an ephemeral port.
fn peer(pe: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + pe + 1)), 32_768 + pe as u16)
}

fn config() -> ServerConfig {
    ServerConfig {
        registrar_id: RegistrarId(1),
        core: 0,
        cores: 1,
        handlespace: handlespace::Config::default(),
        resolution_items_default: ITEMS,
        registration_life_max: Duration::from_micros(3_600_000_000),
        remove_on_session_loss: true,
        seed: 14,
        replicas: true,
        enrp: None,
    }
}
