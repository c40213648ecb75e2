//! Runs a scenario against a target: one thread per worker, each owning its client, workload
//! and recorder (nothing shared but read-only config and per-worker progress counters), then
//! merges what they recorded.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use crate::client::{Target, WorkerPlan};
use crate::op::{OpKind, Outcome, OP_KINDS};
use crate::report::RunResult;
use crate::scenario::Scenario;
use crate::stats::Recorder;
use crate::workload::{plan_workers, Workload};

/// How to run, beyond the scenario.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Print a live progress line to stderr even when it is not a terminal.
    pub progress: bool,
    /// Never print the progress line.
    pub quiet: bool,
}

/// Runs `scenario` against `target` and returns the merged result. Bounded: every worker stops
/// issuing at `run.duration_ms` and gives up on in-flight ops `run.drain_ms` later.
pub fn run(
    scenario: &Scenario,
    target: &dyn Target,
    options: RunOptions,
) -> anyhow::Result<RunResult> {
    scenario.validate()?;
    let plans = plan_workers(scenario);
    let counters: Vec<LiveCounters> = plans.iter().map(|_| LiveCounters::default()).collect();
    let barrier = Barrier::new(plans.len() + 1);
    let start_cell = OnceLock::new();
    let show = !options.quiet && (options.progress || std::io::stderr().is_terminal());
    let outcomes = std::thread::scope(|scope| {
        let workers: Vec<_> = plans
            .iter()
            .zip(&counters)
            .map(|(plan, live)| {
                let (barrier, start_cell) = (&barrier, &start_cell);
                std::thread::Builder::new()
                    .name(format!("loadgen-{}", plan.worker))
                    .spawn_scoped(scope, move || {
                        worker(scenario, target, plan, live, barrier, start_cell)
                    })
                    // A host that cannot start a few threads cannot run a load test either.
                    .expect("spawning a worker thread")
            })
            .collect();
        // Every worker connects before the clock starts, then all start together.
        barrier.wait();
        let start = Instant::now();
        // Only this thread sets it, once, between the two barriers.
        start_cell.set(start).expect("start is set once");
        barrier.wait();
        let end = start + Duration::from_millis(scenario.run.duration_ms);
        let mut progress = Progress::new(start, end, show);
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(PROGRESS_INTERVAL);
            progress.update(&counters);
        }
        progress.finish();
        let results: Vec<_> = workers
            .into_iter()
            // A worker panic is a loadgen bug (an assertion); pass it on.
            .map(|w| w.join().expect("worker panicked"))
            .collect();
        (start, results)
    });
    let (start, results) = outcomes;
    let elapsed = start.elapsed();
    let mut merged: Option<Recorder> = None;
    let mut unfinished = 0;
    let mut worker_busy = Vec::with_capacity(plans.len());
    let mut associations_opened = 0;
    for result in results {
        let Finished { recorder, unfinished: left, cpu, associations_opened: opened } = result?;
        unfinished += u64::from(left);
        associations_opened += opened;
        worker_busy.push(cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9));
        match &mut merged {
            None => merged = Some(recorder),
            Some(m) => m.merge(&recorder),
        }
    }
    // Validation guarantees run.workers >= 1, so there was at least one result.
    let merged = merged.expect("at least one worker");
    let mut result = RunResult::new(scenario, target.name(), &merged, elapsed, unfinished);
    result.worker_busy = worker_busy;
    result.associations_planned = plans.iter().map(|p| p.associations() as u64).sum();
    result.associations_opened = associations_opened;
    Ok(result)
}

/// What one worker hands back.
struct Finished {
    recorder: Recorder,
    /// Operations still in flight when it stopped.
    unfinished: u32,
    /// CPU time of its thread.
    cpu: Duration,
    /// Associations its client saw come up.
    associations_opened: u64,
}

/// One worker's life: connect, wait for the common start, run the loop, drain.
fn worker(
    scenario: &Scenario,
    target: &dyn Target,
    plan: &WorkerPlan,
    live: &LiveCounters,
    barrier: &Barrier,
    start_cell: &OnceLock<Instant>,
) -> anyhow::Result<Finished> {
    if scenario.run.pin {
        if let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) {
            let core =
                (usize::from(scenario.run.pin_first_core) + usize::from(plan.worker)) % cores.len();
            core_affinity::set_for_current(cores[core]);
        }
    }
    let client = target.connect(scenario, plan);
    barrier.wait();
    barrier.wait();
    let mut client = client?;
    // The main thread sets it before it passes the second barrier.
    let start = *start_cell.get().expect("set before the second barrier");
    let run = &scenario.run;
    let buckets = ((run.duration_ms + run.drain_ms) / run.bucket_ms + 1) as usize;
    let mut recorder = Recorder::new(start, Duration::from_millis(run.bucket_ms), buckets);
    let mut workload = Workload::new(scenario, plan, start);
    let drain_end = workload.issue_end() + Duration::from_millis(run.drain_ms);
    let mut completions = Vec::with_capacity(plan.in_flight_max as usize + 1_024);
    loop {
        let now = Instant::now();
        let issuing = now < workload.issue_end();
        if !issuing && (client.in_flight() == 0 || now >= drain_end) {
            break;
        }
        workload.issue(now, client.as_mut(), &mut completions);
        let horizon = if issuing { workload.issue_end() } else { drain_end };
        let deadline =
            workload.next_deadline().unwrap_or(horizon).min(horizon).min(now + LOOP_WAIT_MAX);
        client.poll(now, deadline, &mut completions)?;
        let now = Instant::now();
        for completion in completions.drain(..) {
            recorder.record(&completion);
            live.add(completion.op.kind, completion.outcome);
            workload.complete(now, &completion);
        }
    }
    Ok(Finished {
        recorder,
        unfinished: client.in_flight(),
        cpu: thread_cpu(),
        associations_opened: client.associations_opened(),
    })
}

/// CPU time (user + system) the calling thread has used so far.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Completions so far on one worker, read by the progress line. Aligned so that two workers'
/// counters never share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct LiveCounters {
    succeeded: [AtomicU64; OP_KINDS],
    failed: AtomicU64,
}

impl LiveCounters {
    fn add(&self, kind: OpKind, outcome: Outcome) {
        match outcome {
            Outcome::Succeed => self.succeeded[kind.index()].fetch_add(1, Ordering::Relaxed),
            Outcome::Fail(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The live progress line: elapsed, current rate per op kind, errors.
struct Progress {
    /// Redraw in place on a terminal; one line per update otherwise (logs, CI).
    terminal: bool,
    start: Instant,
    end: Instant,
    show: bool,
    last_at: Instant,
    last: [u64; OP_KINDS],
}

impl Progress {
    fn new(start: Instant, end: Instant, show: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            start,
            end,
            show,
            last_at: start,
            last: [0; OP_KINDS],
        }
    }

    fn update(&mut self, counters: &[LiveCounters]) {
        let now = Instant::now();
        if !self.show || now.duration_since(self.last_at) < PROGRESS_PRINT_INTERVAL {
            return;
        }
        let mut totals = [0u64; OP_KINDS];
        let mut failed = 0;
        for c in counters {
            for (total, count) in totals.iter_mut().zip(&c.succeeded) {
                *total += count.load(Ordering::Relaxed);
            }
            failed += c.failed.load(Ordering::Relaxed);
        }
        let seconds = now.duration_since(self.last_at).as_secs_f64();
        let mut line = format!(
            "{}[{:5.1}s/{:.1}s]",
            if self.terminal { "\r" } else { "" },
            now.duration_since(self.start).as_secs_f64(),
            self.end.duration_since(self.start).as_secs_f64()
        );
        for kind in OpKind::ALL {
            let rate = (totals[kind.index()] - self.last[kind.index()]) as f64 / seconds;
            if totals[kind.index()] > 0 {
                line.push_str(&format!("  {} {}/s", kind.name(), human(rate)));
            }
        }
        line.push_str(&format!("  errors {failed}   "));
        if !self.terminal {
            line.push('\n');
        }
        let _ = std::io::stderr().write_all(line.as_bytes());
        self.last = totals;
        self.last_at = now;
    }

    fn finish(&self) {
        if self.show && self.terminal {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

/// `1234567.0` → `"1.23M"`.
pub fn human(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// Longest a worker waits in one `poll` before looking at its workload again.
const LOOP_WAIT_MAX: Duration = Duration::from_millis(5);
/// How often the main thread wakes while workers run.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(50);
/// How often the progress line is redrawn.
const PROGRESS_PRINT_INTERVAL: Duration = Duration::from_millis(500);
