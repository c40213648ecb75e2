//! End to end on this machine: the real `registrar` binary on 127.0.0.1 over our userspace
//! SCTP in UDP, driven by the PE/PU library (`asap::Endpoint`s, `common::live`).
//!
//! Goal (issue 6 acceptance): register 1 000 PEs in 10 pools, resolve each pool, let 100 PEs
//! stop answering keep-alives and see exactly those removed, deregister the rest; with 1 and
//! with 2 worker threads. Method: per pool, two endpoints hold 45 PEs each and a third the 10
//! PEs that fall silent (that endpoint stops hearing ASAP: a hung application); one more
//! endpoint is the PU. The library answers every keep-alive it hears; every phase is bounded.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use asap::{EndpointConfig, Event, PeConfig, PeHandle};
use codec::{ErrorCause, PoolElementId, PoolHandle};
use common::live::LiveEndpoints;

const POOLS: u32 = 10;
const PES_PER_POOL: u32 = 100;
const SILENT_PER_POOL: u32 = 10;
/// Endpoints per pool: two that answer (45 PEs each: an endpoint holds at most 64), and one
/// for the PEs that fall silent.
const ENDPOINTS_PER_POOL: usize = 3;
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

fn pool(i: u32) -> PoolHandle {
    PoolHandle::new(format!("pool-{i}").as_bytes()).unwrap()
}

/// PE `id` of pool `i`: the registrations of issue 6 (common::element), through the library.
fn pe_config(i: u32, id: u32) -> PeConfig {
    let element = common::element(id);
    let mut config = PeConfig::new(pool(i), element.user_transport, element.policy);
    config.id = Some(PoolElementId(id));
    config.registration_life = asap::Duration::from_millis(600_000);
    config
}

/// The endpoint PE `id` of pool `i` lives on: the silent ones together, the others alternating.
fn endpoint_of(i: u32, id: u32) -> usize {
    let slot = if id <= SILENT_PER_POOL { 2 } else { (id % 2) as usize };
    i as usize * ENDPOINTS_PER_POOL + slot
}

fn library_config() -> EndpointConfig {
    // Every resolution asks the registrar, for all of a pool's PEs.
    EndpointConfig {
        stale_cache: asap::Duration::ZERO,
        items_wanted: Some(128),
        ..EndpointConfig::default()
    }
}

/// The PE ids the registrar lists for pool `i`, or the cause it refused with.
fn resolve_ids(live: &mut LiveEndpoints, pu: usize, i: u32) -> Result<BTreeSet<u32>, ErrorCause> {
    live.resolve_ids(pu, pool(i), STEP)
}

fn run(workers: usize) {
    let (_registrar, port) = start_registrar(workers);
    let pu = POOLS as usize * ENDPOINTS_PER_POOL;
    let mut live = LiveEndpoints::connect(port, 1, pu + 1, &library_config());

    // Register: every PE at once; each endpoint pipelines its Registrations.
    let now = live.now();
    let mut handles: Vec<(u32, u32, usize, PeHandle)> = Vec::new();
    for i in 0..POOLS {
        for id in 1..=PES_PER_POOL {
            let e = endpoint_of(i, id);
            handles.push((i, id, e, live.endpoint(e).register(now, pe_config(i, id)).unwrap()));
        }
    }
    let total = (POOLS * PES_PER_POOL) as usize;
    let events = live.run_until(STEP, |events| {
        let failed = events.iter().any(|(_, e)| matches!(e, Event::RegistrationFailed { .. }));
        let registered = events.iter().filter(|(_, e)| matches!(e, Event::Registered { .. }));
        failed || registered.count() == total
    });
    let failed: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e, Event::RegistrationFailed { .. })).collect();
    assert!(failed.is_empty(), "registrations refused: {failed:?}");

    // Resolve: every pool has all its PEs.
    let all: BTreeSet<u32> = (1..=PES_PER_POOL).collect();
    for i in 0..POOLS {
        assert_eq!(resolve_ids(&mut live, pu, i).unwrap(), all, "pool {i} after registration");
    }

    // Keep-alives: the library answers for 4.5 s, except on the endpoints of PEs 1-10 of each
    // pool, which stop hearing (2 s timeout, 300 ms ± 50 % interval: a silent PE is gone
    // within ~2.5 s, an answering one never, even on a loaded host).
    for i in 0..POOLS {
        live.set_deaf(endpoint_of(i, 1));
    }
    let events = live.serve(Duration::from_millis(4_500));
    let lost: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e, Event::RegistrarLost { .. })).collect();
    assert!(lost.is_empty(), "associations failed: {lost:?}");
    let alive: BTreeSet<u32> = (SILENT_PER_POOL + 1..=PES_PER_POOL).collect();
    for i in 0..POOLS {
        let ids = resolve_ids(&mut live, pu, i).unwrap();
        assert_eq!(ids, alive, "pool {i}: exactly the silent removed");
    }

    // Deregister the rest; the pools disappear.
    let now = live.now();
    let answering = handles.iter().filter(|(_, id, ..)| *id > SILENT_PER_POOL);
    for &(_, _, e, pe) in answering {
        live.endpoint(e).deregister(now, pe).unwrap();
    }
    let leaving = (POOLS * (PES_PER_POOL - SILENT_PER_POOL)) as usize;
    live.run_until(STEP, |events| {
        events.iter().filter(|(_, e)| matches!(e, Event::Deregistered { .. })).count() == leaving
    });
    for i in 0..POOLS {
        assert_eq!(resolve_ids(&mut live, pu, i), Err(ErrorCause::UNKNOWN_POOL_HANDLE));
    }
    live.close(Duration::from_secs(1));
}

#[test]
fn one_worker() {
    run(1);
}

#[test]
fn two_workers() {
    run(2);
}
