//! Handle table download to a joining peer (RFC 5353 §3.2.3), measured: a mentor registrar
//! holding N PEs (default 1 000 000, in 1 000 pools) and a joining registrar that lists its
//! peers, downloads the table page by page and applies every PE to its handlespace; both are
//! the real sans-IO `Server`s with their ENRP servers, joined by an in-memory message pump (no
//! SCTP, no sockets: the figure is the registrars' own work, which the budget is about).
//!
//! `cargo run --release -p registrar --example enrp_download [-- PES [PAGE]]`
//! Prints the download time, PEs per second and the messages exchanged; fails if any PE is
//! missing at the joiner.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant as StdInstant;

use codec::asap::{Message, Registration};
use codec::param::{AddressList, SctpTransport};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{Duration, Instant};
use registrar::proto::enrp::EnrpConfig;
use registrar::proto::{Server, ServerConfig};

const POOLS: u32 = 1_000;

fn config(id: u32, own: SocketAddr, peers: Vec<SocketAddr>, page: usize) -> ServerConfig {
    let mut handlespace = handlespace::Config::default();
    handlespace.limits.pool_elements_max = 2_000_000;
    handlespace.limits.pool_elements_per_pool_max = 2_000_000;
    let mut enrp = EnrpConfig::new(own, peers);
    enrp.table_page_elements_max = page;
    ServerConfig {
        registrar_id: RegistrarId(id),
        core: 0,
        cores: 1,
        handlespace,
        resolution_items_default: 3,
        registration_life_max: Duration::from_secs(3_600),
        remove_on_session_loss: true,
        seed: u64::from(id),
        replicas: true,
        enrp: Some(enrp),
    }
}

fn registration(i: u32) -> Vec<u8> {
    let pe = PoolElement {
        id: PoolElementId(i),
        home_registrar: RegistrarId(0),
        registration_life_ms: 3_600_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))]).unwrap(),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    };
    let pool = PoolHandle::new(format!("pool-{}", i % POOLS).as_bytes()).unwrap();
    Message::Registration(Registration { pool_handle: pool, pool_element: pe }).emit_to_vec()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let pes: u32 = args.next().map_or(1_000_000, |a| a.parse().expect("PES: a number"));
    let page: usize = args.next().map_or(256, |a| a.parse().expect("PAGE: a number"));
    let mentor_address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9901);
    let joiner_address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 9901);
    let mut mentor = Server::new(config(1, mentor_address, Vec::new(), page));
    let mut joiner = Server::new(config(2, joiner_address, vec![mentor_address], page));
    let now = Instant::from_micros(1_000);

    let fill = StdInstant::now();
    mentor.handle_up(100, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 9899));
    for i in 1..=pes {
        mentor.handle_message(now, 100, &registration(i));
        while let Some(out) = mentor.poll_transmit() {
            mentor.recycle(out.bytes);
        }
    }
    assert_eq!(mentor.handlespace().element_count(), pes, "the mentor holds every PE");
    println!("mentor filled with {pes} PEs in {:.2?}", fill.elapsed());

    // The joiner opens its association to the mentor (session 1 on both sides).
    let address = joiner.poll_connect().expect("the joiner connects to its configured peer");
    assert_eq!(address, mentor_address);
    joiner.handle_connecting(now, address, Some(1));
    let start = StdInstant::now();
    joiner.handle_up(1, mentor_address);
    mentor.handle_up(1, joiner_address);
    let (mut to_mentor, mut to_joiner, mut bytes) = (0u64, 0u64, 0u64);
    while !joiner.enrp().is_some_and(|e| e.is_ready()) {
        let mut moved = false;
        while let Some(out) = joiner.poll_transmit_enrp() {
            mentor.handle_enrp_message(now, 1, &out.bytes);
            to_mentor += 1;
            moved = true;
        }
        while let Some(out) = mentor.poll_transmit_enrp() {
            bytes += out.bytes.len() as u64;
            joiner.handle_enrp_message(now, 1, &out.bytes);
            to_joiner += 1;
            moved = true;
        }
        assert!(moved, "the download stalled");
    }
    let took = start.elapsed();
    let held = joiner.handlespace().element_count();
    println!(
        "download of {pes} PEs ({page} per page): {took:.2?}, {:.0} PEs/s, {to_mentor} requests, \
         {to_joiner} responses, {:.1} MB",
        f64::from(pes) / took.as_secs_f64(),
        bytes as f64 / 1e6
    );
    assert_eq!(held, pes, "the joiner holds every PE after the download");
}
