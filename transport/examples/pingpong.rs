//! pingpong: request/response pairs per second on loopback, raw UDP (`UdpRing`) against our
//! SCTP over UDP (`SctpUdpTransport`), client and server in one thread, so the figure is the CPU
//! cost of one pair on both sides. A quick signal, not the project's benchmark (see benches/).
//!
//! ```text
//! cargo run --release -p transport --example pingpong [PAIRS] [WINDOW]
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{Ppid, SctpTransport, StreamId, TransportEvent};
use transport::{UdpRing, UdpRingConfig};

const REQUEST_LEN: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pairs: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let window: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let raw = raw_udp(pairs, window);
    let sctp = sctp_udp(pairs, window);
    println!("pairs {pairs}, window {window}, {REQUEST_LEN}-byte messages, one thread");
    println!("raw UDP (io_uring):      {raw:>10.0} pairs/s");
    println!("SCTP over UDP (ours):    {sctp:>10.0} pairs/s");
    println!("ratio SCTP / raw:        {:>10.2}", sctp / raw);
}

fn raw_udp(pairs: u32, window: u32) -> f64 {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut client = UdpRing::bind(addr, UdpRingConfig::default()).unwrap();
    let mut server = UdpRing::bind(addr, UdpRingConfig::default()).unwrap();
    let to = server.local_addr();
    let request = [0x5au8; REQUEST_LEN];
    let (mut sent, mut answered) = (0u32, 0u32);
    let start = Instant::now();
    while answered < pairs {
        while sent < pairs && sent - answered < window {
            client.send_to(to, &request).unwrap();
            sent += 1;
        }
        client.submit_and_wait(Some(Duration::ZERO)).unwrap();
        server.submit_and_wait(Some(Duration::from_millis(1))).unwrap();
        let mut replies = [SocketAddr::from(([0, 0, 0, 0], 0)); 256];
        let mut n = 0;
        server.recv_batch(256, |from, _| {
            replies[n] = from;
            n += 1;
        });
        for from in &replies[..n] {
            server.send_to(*from, &request).unwrap();
        }
        server.submit_and_wait(Some(Duration::ZERO)).unwrap();
        client.submit_and_wait(Some(Duration::from_millis(1))).unwrap();
        answered += client.recv_batch(256, |_, _| {}) as u32;
    }
    f64::from(pairs) / start.elapsed().as_secs_f64()
}

fn sctp_udp(pairs: u32, window: u32) -> f64 {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut server = SctpUdpTransport::bind(addr, SctpUdpConfig::default(), [1; 32]).unwrap();
    let port = server.local_addr().port();
    let cfg = SctpUdpConfig { remote_udp_port: port, ..Default::default() };
    let mut client = SctpUdpTransport::bind(addr, cfg, [2; 32]).unwrap();
    server.listen(5000).unwrap();
    let assoc = client.connect(Instant::now(), "127.0.0.1:5000".parse().unwrap()).unwrap();
    let mut up = false;
    while !up {
        let now = Instant::now();
        client.poll(now, 64, |e| up |= matches!(e, TransportEvent::Up { .. })).unwrap();
        server.poll(now, 64, |_| {}).unwrap();
        server.wait(now, Some(now)).unwrap();
        client.wait(now, Some(now + Duration::from_millis(1))).unwrap();
    }
    let request = [0x5au8; REQUEST_LEN];
    let (mut sent, mut answered) = (0u32, 0u32);
    let mut replies = [transport::AssocId(0); 256];
    let start = Instant::now();
    while answered < pairs {
        let now = Instant::now();
        while sent < pairs && sent - answered < window {
            client.send(now, assoc, StreamId(0), Ppid::ASAP, &request).unwrap();
            sent += 1;
        }
        client.wait(now, Some(now)).unwrap();
        let mut n = 0;
        server
            .poll(now, 256, |e| {
                if let TransportEvent::Data { assoc, .. } = e {
                    replies[n] = assoc;
                    n += 1;
                }
            })
            .unwrap();
        for a in &replies[..n] {
            server.send(now, *a, StreamId(0), Ppid::ASAP, &request).unwrap();
        }
        server.wait(now, Some(now)).unwrap();
        client
            .poll(now, 256, |e| answered += u32::from(matches!(e, TransportEvent::Data { .. })))
            .unwrap();
    }
    f64::from(pairs) / start.elapsed().as_secs_f64()
}
