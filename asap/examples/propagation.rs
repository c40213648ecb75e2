//! Handle Update propagation between two registrars, as a PU sees it: a PE registers at
//! registrar A (the clock starts when A's Registration Response arrives) and a PU polls
//! registrar B until B resolves it (the clock stops at that answer). Each sample is a new pool,
//! so nothing is cached anywhere. Prints p50 / p90 / p99 / max over the samples.
//!
//! `cargo run --release -p asap --example propagation -- A_IP B_IP [SAMPLES]`
//! (registrars in SCTP over UDP on port 9899 at each IP, ASAP port 3863;
//! `benches/enrp-propagation.sh` starts them and a load).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use asap::blocking::{Driver, PoolUser};
use asap::endpoint::EndpointConfig;
use asap::pe::PeConfig;
use codec::param::{AddressList, SctpTransport};
use codec::{Policy, PoolHandle, TransportUse, UserTransport};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

fn transport(local: IpAddr) -> SctpUdpTransport {
    let bind = SocketAddr::new(local, 0);
    SctpUdpTransport::bind(bind, SctpUdpConfig::default(), rand::random()).expect("bind UDP")
}

fn config(registrar: IpAddr) -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(registrar, 3863)];
    config.stale_cache = asap::time::Duration::from_micros(0);
    config.request_attempts_max = 1;
    config
}

fn main() {
    let mut args = std::env::args().skip(1);
    let a: IpAddr = args.next().expect("A_IP").parse().expect("A_IP: an IP address");
    let b: IpAddr = args.next().expect("B_IP").parse().expect("B_IP: an IP address");
    let samples: usize = args.next().map_or(200, |s| s.parse().expect("SAMPLES: a number"));
    let local: IpAddr = "127.0.0.1".parse().expect("an IP");
    let mut pe_side = Driver::new(transport(local), config(a), 1);
    let mut pu = PoolUser::new(transport(local), config(b), 2);
    let timeout = Duration::from_secs(2);
    let mut took = Vec::with_capacity(samples);
    for i in 0..samples {
        // An endpoint holds a bounded number of PEs: a fresh one every 32 samples.
        if i % 32 == 31 {
            pe_side.close(Duration::from_millis(200));
            pe_side = Driver::new(transport(local), config(a), 1 + i as u64);
        }
        let pool = PoolHandle::new(format!("prop-{i}").as_bytes()).expect("a short handle");
        let user_transport = UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[local]).expect("one address"),
        });
        let pe = PeConfig::new(pool, user_transport, Policy::RoundRobin);
        pe_side.register(pe, timeout).expect("registration at A");
        let start = Instant::now();
        loop {
            match pu.resolve(pool, timeout) {
                Ok(found) if !found.is_empty() => break,
                _ if start.elapsed() > timeout => panic!("sample {i}: not at B after {timeout:?}"),
                _ => {}
            }
        }
        took.push(start.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "Handle Update propagation A -> B over {samples} registrations: p50 {:?}, p90 {:?}, \
         p99 {:?}, max {:?}",
        at(0.5),
        at(0.9),
        at(0.99),
        took[took.len() - 1]
    );
}
