//! The Prometheus endpoint of the real `registrar` binary: scraped over HTTP and parsed with a
//! Prometheus text-format parser (prometheus-parse), the counters move as the load says
//! (registrations, a rejection, resolutions, a deregistration, the PE gauge); health and
//! readiness answer; bad requests get a 4xx and the endpoint keeps serving.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asap::Session;
use codec::asap::{Deregistration, HandleResolution, Message, Registration};
use codec::{Policy, PoolElementId, PoolHandle};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

struct Registrar(Child);

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(udp_port: u16, metrics_port: u16) -> Registrar {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &format!("127.0.0.1:{udp_port}"), "--workers", "2", "--no-announce"])
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .args(["--keep-alive-interval-ms", "600000", "--run-seconds", "60", "--log", "warn"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("the registrar binary runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("registrar ready"), "registrar said: {line}");
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| eprintln!("{l}")));
    Registrar(child)
}

/// One HTTP request; the status code and the body.
fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn get(port: u16, path: &str) -> (u16, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// The sum over every series of `name` whose labels include `with`.
fn sum(scrape: &prometheus_parse::Scrape, name: &str, with: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| with.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200);
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the exposition parses")
}

/// Scrapes until `done` holds (the cores publish every 100 ms), at most 5 s.
fn scrape_until(
    port: u16,
    done: impl Fn(&prometheus_parse::Scrape) -> bool,
) -> prometheus_parse::Scrape {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = scrape(port);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pool(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

fn answer(s: &mut Session<SctpUdpTransport>) -> Message {
    s.recv(Duration::from_secs(5)).expect("an answer")
}

#[test]
fn counters_move_as_the_load_says() {
    let (udp_port, metrics_port) = (common::free_udp_port(), free_tcp_port());
    let _registrar = start(udp_port, metrics_port);
    assert_eq!(get(metrics_port, "/healthz").0, 200);
    // No peers: ready from the first published state (each core publishes as it starts).
    let deadline = Instant::now() + Duration::from_secs(2);
    while get(metrics_port, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "not ready 2 s after start with no peers");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = scrape(metrics_port);
    assert_eq!(sum(&before, "rserpool_registrar_registrations_total", &[]), 0.0);
    assert_eq!(sum(&before, "rserpool_registrar_ready", &[]), 1.0);

    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let transport = SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [7; 32]).unwrap();
    let registrar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863);
    let mut s = Session::connect(transport, registrar, Duration::from_secs(5)).unwrap();
    for id in 1..=3 {
        let m = Registration { pool_handle: pool("web"), pool_element: common::element(id) };
        s.send(&Message::Registration(m)).unwrap();
        assert!(matches!(answer(&mut s), Message::RegistrationResponse(r) if !r.reject));
    }
    // A fourth PE with another policy: refused (Inconsistent Pooling Policy).
    let mut odd = common::element(4);
    odd.policy = Policy::LeastUsed { load: 0 };
    s.send(&Message::Registration(Registration { pool_handle: pool("web"), pool_element: odd }))
        .unwrap();
    assert!(matches!(answer(&mut s), Message::RegistrationResponse(r) if r.reject));
    for _ in 0..5 {
        let h = HandleResolution { subscribe: false, pool_handle: pool("web"), items_wanted: None };
        s.send(&Message::HandleResolution(h)).unwrap();
        assert!(matches!(answer(&mut s), Message::HandleResolutionResponse(_)));
    }
    let d = Deregistration { pool_handle: pool("web"), pe_id: PoolElementId(2) };
    s.send(&Message::Deregistration(d)).unwrap();
    assert!(matches!(answer(&mut s), Message::DeregistrationResponse(_)));

    let after = scrape_until(metrics_port, |m| {
        sum(m, "rserpool_registrar_deregistrations_total", &[]) == 1.0
    });
    let accepted = [("outcome", "accepted")];
    let rejected = [("outcome", "rejected")];
    assert_eq!(sum(&after, "rserpool_registrar_registrations_total", &accepted), 3.0);
    assert_eq!(sum(&after, "rserpool_registrar_registrations_total", &rejected), 1.0);
    assert_eq!(sum(&after, "rserpool_registrar_handle_resolutions_total", &[]), 5.0);
    assert_eq!(sum(&after, "rserpool_registrar_deregistrations_total", &[]), 1.0);
    assert_eq!(sum(&after, "rserpool_registrar_pool_elements", &[]), 2.0);
    assert_eq!(sum(&after, "rserpool_registrar_pools", &[]), 1.0);
    assert_eq!(sum(&after, "rserpool_registrar_sessions_opened_total", &[]), 1.0);
    let cores: std::collections::BTreeSet<_> = after
        .samples
        .iter()
        .filter(|x| x.metric == "rserpool_registrar_pool_elements")
        .filter_map(|x| x.labels.get("core").map(str::to_owned))
        .collect();
    assert_eq!(cores.len(), 2, "one series per core: {cores:?}");

    assert_eq!(get(metrics_port, "/nothing").0, 404);
    assert_eq!(http(metrics_port, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").0, 405);
    assert_eq!(http(metrics_port, "\u{1}\u{2} garbage\r\n\r\n").0, 400);
    assert_eq!(get(metrics_port, "/metrics").0, 200, "still serving after bad requests");
}

// Goal: a packet longer than the registrar's receive buffers (a peer whose path MTU exceeds
// `sctp_mtu`) is counted where the operator looks, not dropped unseen: before, its PE timed out
// while every counter stayed at 0. Method: the real binary at the default MTU (1 200, 2 KiB
// buffers); one 9 000-byte datagram and one short one (garbage, but not too long) to its UDP
// port; the `too_long` series counts exactly the first, and the registrar still answers.
#[test]
fn packets_longer_than_the_receive_buffers_are_counted() {
    let (udp_port, metrics_port) = (common::free_udp_port(), free_tcp_port());
    let _registrar = start(udp_port, metrics_port);
    let too_long = [("reason", "too_long")];
    let before = scrape(metrics_port);
    assert_eq!(sum(&before, "rserpool_registrar_messages_discarded_total", &too_long), 0.0);

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(&[0u8; 9_000], ("127.0.0.1", udp_port)).unwrap();
    socket.send_to(&[0u8; 64], ("127.0.0.1", udp_port)).unwrap();
    let after = scrape_until(metrics_port, |m| {
        sum(m, "rserpool_registrar_messages_discarded_total", &too_long) >= 1.0
    });
    assert_eq!(sum(&after, "rserpool_registrar_messages_discarded_total", &too_long), 1.0);

    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let transport = SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [7; 32]).unwrap();
    let registrar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863);
    let mut s = Session::connect(transport, registrar, Duration::from_secs(5)).unwrap();
    let h = HandleResolution { subscribe: false, pool_handle: pool("none"), items_wanted: None };
    s.send(&Message::HandleResolution(h)).unwrap();
    assert!(matches!(answer(&mut s), Message::HandleResolutionResponse(_)));
}
