//! End to end on this machine: the real `registrar` binary on 127.0.0.1 over our userspace
//! SCTP in UDP, driven by ASAP sessions from this test.
//!
//! Goal (issue 6 acceptance): register 1 000 PEs in 10 pools, resolve each pool, let 100 PEs
//! stop answering keep-alives and see exactly those removed, deregister the rest; with 1 and
//! with 2 worker threads. Method: one association per pool; keep-alives are answered for every
//! PE except ids 1-10 of each pool; every phase is bounded in time.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use asap::Session;
use codec::asap::{Deregistration, EndpointKeepAliveAck, HandleResolution, Message, Registration};
use codec::{ErrorCause, PoolElementId, PoolHandle};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

const POOLS: u32 = 10;
const PES_PER_POOL: u32 = 100;
const SILENT_PER_POOL: u32 = 10;
const STEP: Duration = Duration::from_secs(10);

struct Registrar(Child);

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_registrar(workers: usize) -> (Registrar, u16) {
    let port = common::free_udp_port();
    let dir = std::env::temp_dir().join(format!("registrar-e2e-{}-{workers}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("registrar.toml");
    std::fs::write(&config, "[limits]\nresolution_items_max = 128\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--udp", &format!("127.0.0.1:{port}"), "--workers", &workers.to_string()])
        .args([
            "--no-announce",
            "--keep-alive-interval-ms",
            "300",
            "--keep-alive-timeout-ms",
            "2000",
        ])
        .args(["--run-seconds", "120", "--log", "warn"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("the registrar binary runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("registrar ready"), "registrar said: {line}");
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            eprintln!("[registrar] {l}")
        }
    });
    (Registrar(child), port)
}

fn session(udp_port: u16) -> Session<SctpUdpTransport> {
    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let transport =
        SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, rand_secret()).unwrap();
    let registrar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863);
    Session::connect(transport, registrar, STEP).expect("association to the registrar")
}

fn rand_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    for (i, b) in s.iter_mut().enumerate() {
        *b = (seed >> (i % 8)) as u8 ^ i as u8;
    }
    s
}

fn pool(i: u32) -> PoolHandle {
    PoolHandle::new(format!("pool-{i}").as_bytes()).unwrap()
}

/// Receives until `want` says done, answering keep-alives of non-silent PEs on the way.
fn serve_until(
    s: &mut Session<SctpUdpTransport>,
    pool_index: u32,
    deadline: Instant,
    mut want: impl FnMut(Message) -> bool,
) {
    loop {
        assert!(Instant::now() < deadline, "pool {pool_index}: timed out");
        let Ok(m) = s.recv(Duration::from_millis(20)) else { continue };
        if let Message::EndpointKeepAlive(k) = &m {
            answer_keep_alive(s, k);
            continue;
        }
        if want(m) {
            return;
        }
    }
}

fn answer_keep_alive(s: &mut Session<SctpUdpTransport>, k: &codec::asap::EndpointKeepAlive) {
    let id = k.pe_id.expect("our registrar names the PE it probes").0;
    if id > SILENT_PER_POOL {
        let ack = EndpointKeepAliveAck { pool_handle: k.pool_handle, pe_id: PoolElementId(id) };
        s.send(&Message::EndpointKeepAliveAck(ack)).unwrap();
    }
}

fn resolve_ids(s: &mut Session<SctpUdpTransport>, i: u32) -> Result<BTreeSet<u32>, ErrorCause> {
    let request =
        HandleResolution { subscribe: false, pool_handle: pool(i), items_wanted: Some(128) };
    s.send(&Message::HandleResolution(request)).unwrap();
    let mut out = None;
    serve_until(s, i, Instant::now() + STEP, |m| match m {
        Message::HandleResolutionResponse(r) => {
            out = Some(match r.error {
                Some(e) => Err(e.causes[0].code),
                None => Ok(r.pool_elements.iter().map(|e| e.id.0).collect()),
            });
            true
        }
        _ => false,
    });
    out.unwrap()
}

fn run(workers: usize) {
    let (_registrar, port) = start_registrar(workers);
    let mut sessions: Vec<_> = (0..POOLS).map(|_| session(port)).collect();

    // Register: pipelined, 100 requests per association, then 100 responses.
    for (i, s) in sessions.iter_mut().enumerate() {
        for id in 1..=PES_PER_POOL {
            let r = Registration { pool_handle: pool(i as u32), pool_element: common::element(id) };
            s.send(&Message::Registration(r)).unwrap();
        }
        let mut accepted = 0;
        serve_until(s, i as u32, Instant::now() + STEP, |m| {
            let Message::RegistrationResponse(r) = m else { return false };
            assert!(!r.reject, "registration rejected: {:?}", r.error);
            accepted += 1;
            accepted == PES_PER_POOL
        });
    }

    // Resolve: every pool has all its PEs.
    let all: BTreeSet<u32> = (1..=PES_PER_POOL).collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        assert_eq!(resolve_ids(s, i as u32).unwrap(), all, "pool {i} after registration");
    }

    // Keep-alives: answer for 4.5 s except PEs 1-10 of each pool (2 s timeout, 300 ms ± 50 %
    // interval: a silent PE is gone within ~2.5 s, an answering one never, even on a loaded host).
    let until = Instant::now() + Duration::from_millis(4_500);
    while Instant::now() < until {
        for s in sessions.iter_mut() {
            while let Ok(Some(m)) = s.try_recv() {
                if let Message::EndpointKeepAlive(k) = &m {
                    answer_keep_alive(s, k);
                }
            }
            s.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let alive: BTreeSet<u32> = (SILENT_PER_POOL + 1..=PES_PER_POOL).collect();
    for (i, s) in sessions.iter_mut().enumerate() {
        assert_eq!(
            resolve_ids(s, i as u32).unwrap(),
            alive,
            "pool {i}: exactly the silent removed"
        );
    }

    // Deregister the rest; the pools disappear.
    for (i, s) in sessions.iter_mut().enumerate() {
        for id in SILENT_PER_POOL + 1..=PES_PER_POOL {
            let d = Deregistration { pool_handle: pool(i as u32), pe_id: PoolElementId(id) };
            s.send(&Message::Deregistration(d)).unwrap();
        }
        let mut done = 0;
        serve_until(s, i as u32, Instant::now() + STEP, |m| {
            let Message::DeregistrationResponse(r) = m else { return false };
            assert!(r.error.is_none(), "deregistration failed: {:?}", r.error);
            done += 1;
            done == PES_PER_POOL - SILENT_PER_POOL
        });
        assert_eq!(resolve_ids(s, i as u32), Err(ErrorCause::UNKNOWN_POOL_HANDLE));
    }
    for s in sessions {
        s.close(Duration::from_secs(1)).unwrap();
    }
}

#[test]
fn one_worker() {
    run(1);
}

#[test]
fn two_workers() {
    run(2);
}
