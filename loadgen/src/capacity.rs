//! Capacity planning: raise the offered open-loop resolution rate step by step until p99
//! latency passes a bound (or errors appear, or the target falls behind), then report the last
//! rate that held, per core, and the p99 at 80 % of it.

use serde::{Deserialize, Serialize};

use crate::client::Target;
use crate::op::OpKind;
use crate::runner::{run, RunOptions};
use crate::scenario::{LoopMode, Scenario};

/// How to sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOptions {
    /// First offered rate, resolutions per second.
    pub start_rate_per_s: f64,
    /// Each step offers this many times the previous rate (> 1).
    pub growth: f64,
    /// Measured length of each step (warm-up comes on top).
    pub step_ms: u64,
    /// A step fails when resolution p99 exceeds this.
    pub p99_bound_us: f64,
    /// A step fails when more than this fraction of resolutions fail.
    pub error_ratio_max: f64,
    /// A step fails when it achieves less than this fraction of what it offered.
    pub achieved_ratio_min: f64,
    /// Upper bound on steps, so that the sweep always ends.
    pub steps_max: u32,
    /// Cores the target uses, to report the rate per core.
    pub cores: u16,
}

/// One step of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Offered rate.
    pub offered_per_s: f64,
    /// Achieved successful rate.
    pub achieved_per_s: f64,
    /// Resolution p99, µs.
    pub p99_us: f64,
    /// Failed resolutions.
    pub failed: u64,
    /// Whether it held.
    pub passed: bool,
}

/// The sweep's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Every step run, in order.
    pub steps: Vec<Step>,
    /// Highest offered rate that held; `None` if even the first step failed.
    pub sustainable_per_s: Option<f64>,
    /// `sustainable_per_s / cores`.
    pub sustainable_per_core_per_s: Option<f64>,
    /// The step re-run at 80 % of the sustainable rate.
    pub at_80_percent: Option<Step>,
}

/// Runs the sweep against `target`, using `base` for everything but the PU pacing.
pub fn sweep(
    base: &Scenario,
    target: &dyn Target,
    options: &SweepOptions,
) -> anyhow::Result<Capacity> {
    assert!(options.growth > 1.0);
    assert!(options.steps_max > 0);
    let mut steps = Vec::new();
    let mut sustainable = None;
    let mut rate = options.start_rate_per_s;
    for _ in 0..options.steps_max {
        let step = run_step(base, target, options, rate)?;
        eprintln!(
            "offered {:>12.0}/s  achieved {:>12.0}/s  p99 {:>9.1} µs  failed {:>6}  {}",
            step.offered_per_s,
            step.achieved_per_s,
            step.p99_us,
            step.failed,
            if step.passed { "ok" } else { "FAIL" }
        );
        let passed = step.passed;
        steps.push(step);
        if !passed {
            break;
        }
        sustainable = Some(rate);
        rate *= options.growth;
    }
    let at_80_percent = match sustainable {
        Some(rate) => Some(run_step(base, target, options, rate * 0.8)?),
        None => None,
    };
    Ok(Capacity {
        steps,
        sustainable_per_s: sustainable,
        sustainable_per_core_per_s: sustainable.map(|r| r / f64::from(options.cores.max(1))),
        at_80_percent,
    })
}

fn run_step(
    base: &Scenario,
    target: &dyn Target,
    options: &SweepOptions,
    rate: f64,
) -> anyhow::Result<Step> {
    let mut scenario = base.clone();
    scenario.pu.mode = LoopMode::Open;
    scenario.pu.rate_per_s = rate;
    scenario.run.duration_ms = scenario.run.warmup_ms + options.step_ms;
    scenario.validate()?;
    let result = run(&scenario, target, RunOptions { quiet: true, ..RunOptions::default() })?;
    let (achieved, p99, failed, succeeded) =
        result.op(OpKind::Resolve).map_or((0.0, f64::INFINITY, 0, 0), |o| {
            (o.throughput_per_s, o.latency_us.p99, o.failed, o.succeeded)
        });
    let error_ratio = failed as f64 / (failed + succeeded).max(1) as f64;
    let passed = p99 <= options.p99_bound_us
        && error_ratio <= options.error_ratio_max
        && achieved >= rate * options.achieved_ratio_min;
    Ok(Step { offered_per_s: rate, achieved_per_s: achieved, p99_us: p99, failed, passed })
}
