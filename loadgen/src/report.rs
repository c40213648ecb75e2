//! What a run saw, as a person and a script want to read it: a summary table, a JSON file
//! (parsed back by `compare`), and ratios between two runs for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::op::OpKind;
use crate::runner::human;
use crate::scenario::{LoopMode, Scenario};
use crate::stats::{CdfPoint, Percentiles, Recorder};

/// One run's result; the JSON file is this, serialized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Bumped when a field changes meaning.
    pub schema: u32,
    /// `loadgen` version that wrote it.
    pub loadgen_version: String,
    /// The scenario as run (after flags).
    pub scenario: Scenario,
    /// Target name: `udp-echo`, `model`, `registrar`.
    pub target: String,
    /// Wall-clock start, for telling files apart.
    pub started_unix_ms: u64,
    /// From the common start to the last worker's end, drain included.
    pub elapsed_s: f64,
    /// Where it ran.
    pub host: Host,
    /// Width of a timeline bucket.
    pub bucket_ms: u64,
    /// One entry per op kind that completed at least once, in `OpKind` order.
    pub ops: Vec<OpResult>,
    /// Operations still in flight when the drain time ran out.
    pub unfinished: u64,
    /// CPU time of each worker thread over the run's wall time, `0..=1`. A worker near 1 was
    /// saturated: the figures then measure loadgen, not the target.
    #[serde(default)]
    pub worker_busy: Vec<f64>,
    /// Associations the workers were planned to open at the start: one per
    /// `pe.per_association` PEs of a worker, plus the PU associations (not one per PE).
    #[serde(default)]
    pub associations_planned: u64,
    /// Associations to the target that came up over the run, each counted once, including
    /// those opened again after one failed (a new home); 0 for the UDP targets, which have
    /// none.
    #[serde(default)]
    pub associations_opened: u64,
}

/// The host, so that results from different machines are never compared by accident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Online CPUs.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
}

/// Results for one op kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpResult {
    /// Which operation.
    pub kind: OpKind,
    /// Successful completions.
    pub succeeded: u64,
    /// Failed completions.
    pub failed: u64,
    /// Window the throughput is measured over: the run less warm-up for resolutions (PUs start
    /// after it), the whole run for PE operations.
    pub window_s: f64,
    /// `succeeded / window_s`.
    pub throughput_per_s: f64,
    /// Latency of successes, microseconds.
    pub latency_us: Percentiles,
    /// Failures by cause name.
    pub errors_by_cause: BTreeMap<String, u64>,
    /// Latency CDF, log-spaced points.
    pub cdf: Vec<CdfPoint>,
    /// Successes per timeline bucket.
    pub succeeded_per_bucket: Vec<u64>,
    /// Failures per timeline bucket.
    pub failed_per_bucket: Vec<u64>,
}

/// `new` relative to `baseline` for one op kind. Throughput above 1 is better; latency below 1
/// is better.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// The op kind compared.
    pub kind: OpKind,
    /// Target names, new then baseline.
    pub targets: (String, String),
    /// Throughputs, new then baseline.
    pub throughput_per_s: (f64, f64),
    /// new / baseline throughput.
    pub throughput: f64,
    /// new / baseline p50 latency.
    pub latency_p50: f64,
    /// new / baseline p99 latency.
    pub latency_p99: f64,
}

impl RunResult {
    /// Summarizes a merged recorder.
    pub fn new(
        scenario: &Scenario,
        target: &str,
        recorder: &Recorder,
        elapsed: Duration,
        unfinished: u64,
    ) -> RunResult {
        let duration_s = scenario.run.duration_ms as f64 / 1e3;
        let warmup_s = scenario.run.warmup_ms as f64 / 1e3;
        let ops = OpKind::ALL
            .iter()
            .filter_map(|&kind| {
                let k = recorder.kind(kind);
                if k.succeeded + k.failed == 0 {
                    return None;
                }
                let window_s =
                    if kind == OpKind::Resolve { duration_s - warmup_s } else { duration_s };
                assert!(window_s > 0.0);
                Some(OpResult {
                    kind,
                    succeeded: k.succeeded,
                    failed: k.failed,
                    window_s,
                    throughput_per_s: k.succeeded as f64 / window_s,
                    latency_us: k.percentiles(),
                    errors_by_cause: k.errors.iter().map(|(c, n)| (c.name(), *n)).collect(),
                    cdf: k.cdf(CDF_POINTS),
                    succeeded_per_bucket: k.succeeded_per_bucket.clone(),
                    failed_per_bucket: k.failed_per_bucket.clone(),
                })
            })
            .collect();
        let started = SystemTime::now().checked_sub(elapsed).unwrap_or(UNIX_EPOCH);
        RunResult {
            schema: SCHEMA,
            loadgen_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.clone(),
            target: target.to_owned(),
            started_unix_ms: started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            elapsed_s: elapsed.as_secs_f64(),
            host: Host::this(),
            bucket_ms: recorder.bucket().as_millis() as u64,
            ops,
            unfinished,
            worker_busy: Vec::new(),
            associations_planned: 0,
            associations_opened: 0,
        }
    }

    /// Results for `kind`, if it completed at all.
    pub fn op(&self, kind: OpKind) -> Option<&OpResult> {
        self.ops.iter().find(|o| o.kind == kind)
    }

    /// Failures over all kinds.
    pub fn failed(&self) -> u64 {
        self.ops.iter().map(|o| o.failed).sum()
    }

    /// Successes over all kinds.
    pub fn succeeded(&self) -> u64 {
        self.ops.iter().map(|o| o.succeeded).sum()
    }

    /// Writes the JSON file.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text)?;
        Ok(())
    }

    /// Reads a JSON file written by [`RunResult::write_json`].
    pub fn read_json(path: &Path) -> anyhow::Result<RunResult> {
        let text = std::fs::read_to_string(path)?;
        let result: RunResult = serde_json::from_str(&text)?;
        anyhow::ensure!(
            result.schema == SCHEMA,
            "{}: schema {} is not {SCHEMA}",
            path.display(),
            result.schema
        );
        Ok(result)
    }

    /// The summary table printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let s = &self.scenario;
        let pacing = match s.pu.mode {
            LoopMode::Closed => format!("closed loop, window {}", s.pu.window),
            LoopMode::Open => format!("open loop at {}/s", human(s.pu.rate_per_s)),
        };
        let shared = match s.pe.per_association {
            1 => String::new(),
            k => format!(" ({k} per association)"),
        };
        let _ = writeln!(
            out,
            "scenario {:?} against {} ({} workers, {:.1} s, {} PEs{shared} in {} pools, \
             {} PU associations, {pacing})",
            s.name,
            self.target,
            s.run.workers,
            self.elapsed_s,
            s.pe.count,
            s.pools.count,
            s.pu.associations,
        );
        if self.associations_opened > 0 {
            let _ = writeln!(
                out,
                "  associations opened: {} ({} planned at the start)",
                self.associations_opened, self.associations_planned
            );
        }
        let _ = writeln!(
            out,
            "{:<11} {:>10} {:>8} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "ok", "errors", "ops/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
        );
        for o in &self.ops {
            let l = &o.latency_us;
            let _ = writeln!(
                out,
                "{:<11} {:>10} {:>8} {:>11} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                o.kind.name(),
                o.succeeded,
                o.failed,
                human(o.throughput_per_s),
                l.p50,
                l.p90,
                l.p99,
                l.p999,
                l.max
            );
        }
        for o in self.ops.iter().filter(|o| o.failed > 0) {
            for (cause, count) in &o.errors_by_cause {
                let _ = writeln!(out, "  {} error {cause}: {count}", o.kind.name());
            }
        }
        if !self.worker_busy.is_empty() {
            let busy: Vec<String> =
                self.worker_busy.iter().map(|b| format!("{:.0} %", b * 100.0)).collect();
            let saturated = self.worker_busy.iter().any(|&b| b > WORKER_SATURATED);
            let _ = writeln!(
                out,
                "  loadgen workers busy: {}{}",
                busy.join(", "),
                if saturated {
                    " (saturated: add workers before trusting the figures)"
                } else {
                    ""
                }
            );
        }
        if self.unfinished > 0 {
            let _ = writeln!(out, "  unfinished at the end of the drain: {}", self.unfinished);
        }
        out
    }
}

impl Host {
    /// This host.
    pub fn this() -> Host {
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// `new` against `baseline` for `kind`; `None` if either has no successes of that kind.
pub fn ratio(new: &RunResult, baseline: &RunResult, kind: OpKind) -> Option<Ratio> {
    let (a, b) = (new.op(kind)?, baseline.op(kind)?);
    if a.succeeded == 0 || b.succeeded == 0 {
        return None;
    }
    let divide = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
    Some(Ratio {
        kind,
        targets: (new.target.clone(), baseline.target.clone()),
        throughput_per_s: (a.throughput_per_s, b.throughput_per_s),
        throughput: divide(a.throughput_per_s, b.throughput_per_s),
        latency_p50: divide(a.latency_us.p50, b.latency_us.p50),
        latency_p99: divide(a.latency_us.p99, b.latency_us.p99),
    })
}

/// Scaling efficiency `throughput(N) / (N × throughput(1))`, N being the ratio of worker
/// counts (STYLE.md §8). 1.0 is perfect scaling.
pub fn scaling_efficiency(one: &RunResult, many: &RunResult, kind: OpKind) -> Option<f64> {
    let n = f64::from(many.scenario.run.workers) / f64::from(one.scenario.run.workers);
    let r = ratio(many, one, kind)?;
    Some(r.throughput / n)
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} vs {}: throughput {:.3}× ({}/s vs {}/s), p50 latency {:.2}×, \
             p99 latency {:.2}×",
            self.kind.name(),
            self.targets.0,
            self.targets.1,
            self.throughput,
            human(self.throughput_per_s.0),
            human(self.throughput_per_s.1),
            self.latency_p50,
            self.latency_p99
        )
    }
}

/// Sorts `values` and returns their median; `None` when empty. NaNs sort last.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Greater));
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// A worker busier than this fraction of a core is the bottleneck, not the target.
const WORKER_SATURATED: f64 = 0.9;

/// JSON schema version.
pub const SCHEMA: u32 = 1;
/// Points kept of each latency CDF.
const CDF_POINTS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{AssociationId, Completion, Op, Outcome};

    /// A result with `count` resolutions of `latency_us` each, from `workers` workers.
    fn result(count: u32, latency_us: u64, workers: u16) -> RunResult {
        let mut scenario = Scenario::default();
        scenario.run.workers = workers;
        scenario.run.duration_ms = 2_000;
        scenario.run.warmup_ms = 1_000;
        let start = std::time::Instant::now();
        let mut recorder = Recorder::new(start, Duration::from_millis(100), 30);
        let op = Op {
            kind: OpKind::Resolve,
            association: AssociationId(0),
            pool: 0,
            element: 0,
            issued_at: start,
        };
        let end = start + Duration::from_micros(latency_us);
        for _ in 0..count {
            recorder.record(&Completion { op, end, outcome: Outcome::Succeed });
        }
        RunResult::new(&scenario, "t", &recorder, Duration::from_secs(2), 0)
    }

    #[test]
    fn throughput_ratio_and_scaling_from_known_counts() {
        // Goal: the BENCHMARKS.md arithmetic. Method: 3 000 vs 1 000 resolutions over the same
        // 1 s window (duration less warm-up), latencies 50 µs vs 100 µs.
        let (new, baseline) = (result(3_000, 50, 2), result(1_000, 100, 1));
        let resolve = new.op(OpKind::Resolve).unwrap();
        assert_eq!(resolve.window_s, 1.0);
        assert_eq!(resolve.throughput_per_s, 3_000.0);
        let r = ratio(&new, &baseline, OpKind::Resolve).unwrap();
        assert_eq!(r.throughput, 3.0);
        assert!((r.latency_p50 - 0.5).abs() < 0.001, "{r}");
        assert!((r.latency_p99 - 0.5).abs() < 0.001, "{r}");
        // Two workers doing 3× one worker's work: efficiency 3 / 2.
        assert_eq!(scaling_efficiency(&baseline, &new, OpKind::Resolve), Some(1.5));
        assert!(ratio(&new, &baseline, OpKind::Register).is_none());
        assert!(new.summary().contains("resolve"));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
