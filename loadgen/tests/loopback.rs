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
