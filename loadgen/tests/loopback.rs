//! Short, bounded runs of the whole pipeline over 127.0.0.1: workers, clients, servers,
//! recorders, JSON and HTML. Each run stops by itself in about a second.

use std::path::PathBuf;

use loadgen::contract::Checked;
use loadgen::op::OpKind;
use loadgen::report::{ratio, scaling_efficiency, RunResult};
use loadgen::runner::{run, RunOptions};
use loadgen::scenario::{Overrides, Scenario, TargetKind};
use loadgen::{quickstart, target};

const QUIET: RunOptions = RunOptions { progress: false, quiet: true };

fn echo_scenario(workers: u16) -> Scenario {
    let mut s = Scenario { name: "test-echo".to_owned(), ..Scenario::default() };
    let o = Overrides {
        target: Some(TargetKind::UdpEcho),
        pe_count: Some(0),
        associations: Some(2),
        window: Some(4),
        workers: Some(workers),
        duration_ms: Some(500),
        warmup_ms: Some(0),
        drain_ms: Some(500),
        ..Overrides::default()
    };
    s.apply(&o).unwrap();
    s
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn udp_echo_short_run_completes_without_errors() {
    // Goal: the seam, workers, client and echo server work end to end, and the client keeps
    // the contract. Method: 0.5 s, 2 flows, window 4, checked; expect many completions, no
    // errors, nothing left in flight.
    let s = echo_scenario(1);
    let prepared = target::prepare(&s).unwrap();
    let result = run(&s, &Checked(prepared.target()), QUIET).unwrap();
    drop(prepared);
    let resolve = result.op(OpKind::Resolve).expect("resolutions completed");
    assert!(resolve.succeeded > 100, "{}", result.summary());
    assert_eq!(result.failed(), 0, "{}", result.summary());
    assert_eq!(result.unfinished, 0);
    assert!(resolve.latency_us.p50 > 0.0);
    assert!(resolve.latency_us.p50 <= resolve.latency_us.p99);
    assert!(resolve.latency_us.p99 <= resolve.latency_us.max);
    assert_eq!(resolve.succeeded_per_bucket.iter().sum::<u64>(), resolve.succeeded);
}

#[test]
fn reports_are_written_well_formed_and_read_back() {
    // Goal: the JSON round-trips and the HTML is a complete document with both plots.
    // Method: a short echo run, written, read back, compared; HTML checked structurally.
    let s = echo_scenario(2);
    let prepared = target::prepare(&s).unwrap();
    let result = run(&s, prepared.target(), QUIET).unwrap();
    drop(prepared);
    let dir = scratch("reports");
    let json = dir.join("r.json");
    result.write_json(&json).unwrap();
    let back = RunResult::read_json(&json).unwrap();
    assert_eq!(back.scenario, result.scenario);
    assert_eq!(back.ops.len(), result.ops.len());
    assert_eq!(
        back.op(OpKind::Resolve).unwrap().succeeded,
        result.op(OpKind::Resolve).unwrap().succeeded
    );
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(value["ops"][0]["latency_us"]["p999"].is_number());

    let html = loadgen::html::render(&result);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches("</svg>").count(), 2);
    assert_eq!(html.matches("<table").count(), html.matches("</table>").count());
    assert!(!html.contains("NaN") && !html.contains("inf"), "no broken coordinates");

    // The same run against itself is a ratio of one; two workers against one is a number.
    let r = ratio(&back, &result, OpKind::Resolve).unwrap();
    assert!((r.throughput - 1.0).abs() < 1e-9);
    assert!(scaling_efficiency(&result, &back, OpKind::Resolve).unwrap() > 0.0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn quickstart_short_run_resolves_without_errors() {
    // Goal: the README's main command works (issue 7 acceptance) against the real registrar,
    // over its own SCTP in UDP, and the registrar client keeps the seam's contract. Method:
    // the quickstart scenario with 1 s of resolutions, checked, judged as the command judges.
    let mut s = quickstart::scenario(1.0).unwrap();
    let prepared = quickstart::launch(&mut s, quickstart::Choice::Registrar).unwrap();
    assert_eq!(prepared.target().name(), "registrar");
    let result = run(&s, &Checked(prepared.target()), QUIET).unwrap();
    drop(prepared);
    quickstart::judge(&result).unwrap_or_else(|e| panic!("{e}\n{}", result.summary()));
    assert!(result.op(OpKind::Register).unwrap().succeeded >= u64::from(s.pe.count));
}

#[test]
fn open_loop_against_model_counts_unknown_pools() {
    // Goal: open loop paces to the rate and the target's error causes are counted by name.
    // Method: no PEs, so every resolution finds an empty pool; 2 000/s for 0.5 s.
    let mut s = Scenario { name: "test-open".to_owned(), ..Scenario::default() };
    let o = Overrides {
        target: Some(TargetKind::Model),
        pe_count: Some(0),
        associations: Some(2),
        mode: Some(loadgen::scenario::LoopMode::Open),
        rate_per_s: Some(2_000.0),
        duration_ms: Some(500),
        warmup_ms: Some(0),
        ..Overrides::default()
    };
    s.apply(&o).unwrap();
    let prepared = target::prepare(&s).unwrap();
    let result = run(&s, prepared.target(), QUIET).unwrap();
    drop(prepared);
    let resolve = result.op(OpKind::Resolve).unwrap();
    assert_eq!(resolve.succeeded, 0);
    assert!((600..=1_400).contains(&resolve.failed), "{}", result.summary());
    assert_eq!(
        resolve.errors_by_cause.keys().collect::<Vec<_>>(),
        ["asap-0x0009-unknown-pool-handle"]
    );
}

#[test]
fn pes_sharing_associations_register_and_deregister() {
    // Goal: with pe.per_association = 50, 200 PEs register over 4 associations (not 200),
    // each PE's registration and deregistration completing as its own op, and the registrar
    // holds all 200 at once and sees every one leave. Method: the real registrar in-process
    // on SCTP in UDP, watched through its counters while loadgen runs 2 workers of 100 PEs
    // (2 associations each), checked against the seam's contract; each PE lives 1.5 s and
    // never rejoins nor renews within the 2.5 s run.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let defaults = registrar::config::Config::default();
    let config = registrar::config::Config {
        udp_encapsulation: address,
        workers: 1,
        announce: registrar::config::Announce { enabled: false, ..defaults.announce.clone() },
        ..defaults
    };
    let running = registrar::io::start(&config).unwrap();
    let mut s = Scenario { name: "test-shared".to_owned(), ..Scenario::default() };
    let o = Overrides {
        target: Some(TargetKind::Registrar),
        address: Some(address.to_string()),
        workers: Some(2),
        pe_count: Some(200),
        pe_per_association: Some(50),
        ramp_ms: Some(200),
        reregister_ms: Some(60_000),
        rejoin_ms: Some(60_000),
        associations: Some(0),
        duration_ms: Some(2_500),
        warmup_ms: Some(0),
        drain_ms: Some(1_000),
        ..Overrides::default()
    };
    s.apply(&o).unwrap();
    s.pe.lifetime = loadgen::scenario::Lifetime::Fixed { ms: 1_500 };
    s.validate().unwrap();
    let prepared = target::prepare(&s).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (result, most) = std::thread::scope(|scope| {
        // The registrar publishes its gauges every 100 ms; the PEs are all in for ~1.3 s.
        let watcher = scope.spawn(|| {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(running.stats().shard_elements);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            most
        });
        let result = run(&s, &Checked(prepared.target()), QUIET);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (result.unwrap(), watcher.join().unwrap())
    });
    drop(prepared);
    let summary = result.summary();
    let register = result.op(OpKind::Register).expect("registrations completed");
    let deregister = result.op(OpKind::Deregister).expect("deregistrations completed");
    assert_eq!((register.succeeded, register.failed), (200, 0), "{summary}");
    assert_eq!((deregister.succeeded, deregister.failed), (200, 0), "{summary}");
    assert_eq!(result.unfinished, 0, "{summary}");
    assert_eq!(result.associations_planned, 4, "{summary}");
    assert_eq!(result.associations_opened, 4, "{summary}");
    assert!(summary.contains("200 PEs (50 per association)"), "{summary}");
    assert!(summary.contains("associations opened: 4 (4 planned"), "{summary}");
    assert_eq!(most, 200, "the registrar held every PE at once");
    let stats = running.stop().unwrap();
    assert_eq!(stats.sessions_opened, 4, "{stats:?}");
    assert_eq!(stats.registrations, 200, "{stats:?}");
    assert_eq!(stats.deregistrations, 200, "{stats:?}");
    assert_eq!(stats.session_removals, 0, "every PE left by deregistering: {stats:?}");
    assert_eq!(stats.shard_elements, 0, "{stats:?}");
}
