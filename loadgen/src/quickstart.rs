//! `loadgen quickstart`: start a registrar on loopback, register PEs, resolve for ~10 s, and
//! judge the run. Kept in the library so that a test runs exactly what the command runs.
//!
//! The registrar comes from [`crate::target::registrar::RegistrarLauncher`]: the real one,
//! in-process, over its own SCTP in UDP on 127.0.0.1. [`Choice::Model`] drives the stand-in
//! model instead (for comparing the load generator against itself).

use crate::op::OpKind;
use crate::report::RunResult;
use crate::scenario::{Scenario, ScenarioError, TargetKind};
use crate::target::{launcher, Prepared};

/// Which registrar to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// The real registrar (the default; kept apart from `Registrar` so that scripts written
    /// when the registrar could be missing still run).
    Auto,
    /// The model registrar.
    Model,
    /// The real registrar.
    Registrar,
}

/// The committed quickstart scenario with `seconds` of resolutions after its warm-up.
pub fn scenario(seconds: f64) -> Result<Scenario, ScenarioError> {
    let mut s = Scenario::from_toml(SCENARIO)?;
    s.run.duration_ms = s.run.warmup_ms + (seconds * 1e3).round().max(1.0) as u64;
    s.validate()?;
    Ok(s)
}

/// Starts the chosen registrar and points `scenario` at it.
pub fn launch(scenario: &mut Scenario, choice: Choice) -> anyhow::Result<Prepared> {
    match choice {
        Choice::Model => launch_kind(scenario, TargetKind::Model),
        Choice::Auto | Choice::Registrar => launch_kind(scenario, TargetKind::Registrar),
    }
}

/// The quickstart's acceptance: some resolutions completed, and nothing failed.
pub fn judge(result: &RunResult) -> Result<(), String> {
    let resolved = result.op(OpKind::Resolve).map_or(0, |o| o.succeeded);
    if resolved == 0 || result.failed() > 0 || result.unfinished > 0 {
        return Err(format!(
            "quickstart expected resolutions and no errors: {resolved} resolved, \
            {} failed, {} unfinished",
            result.failed(),
            result.unfinished
        ));
    }
    Ok(())
}

fn launch_kind(scenario: &mut Scenario, kind: TargetKind) -> anyhow::Result<Prepared> {
    scenario.target.kind = kind;
    scenario.target.address = None;
    Ok(Prepared::Owned(launcher(kind).launch(scenario)?))
}

/// The quickstart scenario, compiled in so that `quickstart` runs from any directory.
pub const SCENARIO: &str = include_str!("../scenarios/quickstart.toml");
