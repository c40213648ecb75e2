//! The workload of one worker, sans-IO: which operations are due when, and how each
//! completion changes the synthetic PEs and PUs. It never reads the clock and never does I/O;
//! time comes in as `now`, operations go out through [`Client::submit`].
//!
//! Pool elements (RFC 5352 §2.2.1, §3.1): each registers, re-registers every
//! `pe.reregister_ms`, and after a lifetime drawn from `pe.lifetime` deregisters, waits
//! `pe.rejoin_ms` and registers again (churn). Keep-alives are answered inside the client.
//!
//! Pool users (RFC 5352 §2.2.3): closed loop keeps `pu.window` resolutions in flight on each
//! association; open loop sends Poisson arrivals at the worker's share of `pu.rate_per_s`,
//! stamped with the time they were due, whatever the target does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::client::{Client, PoolElementPlan, SubmitError, WorkerPlan};
use crate::op::{AssociationId, Completion, ErrorCause, Op, OpKind, Outcome};
use crate::rng::Rng;
use crate::scenario::{Lifetime, LoopMode, PoolChoice, Scenario};

/// Splits the scenario's PEs and PU associations over its workers, round-robin.
/// PE `i` is worker `w = i % workers`'s PE `n = i / workers`, with element `i` and pool
/// `i % pools.count`; it is on that worker's association `g = n / pe.per_association`,
/// numbered `g * workers + w` (so PE `i` on association `i` when each PE has its own). Those
/// numbers are below `pe.count`, and PU association `j` is numbered `pe.count + j`.
pub fn plan_workers(scenario: &Scenario) -> Vec<WorkerPlan> {
    let workers = u32::from(scenario.run.workers);
    let per_association = scenario.pe.per_association;
    assert!(per_association >= 1, "validated: pe.per_association >= 1");
    let mut plans: Vec<WorkerPlan> = (0..scenario.run.workers)
        .map(|worker| WorkerPlan {
            worker,
            pool_elements: Vec::new(),
            pool_users: Vec::new(),
            in_flight_max: scenario.run.in_flight_max,
        })
        .collect();
    for i in 0..scenario.pe.count {
        let (worker, n) = (i % workers, i / workers);
        let association = (n / per_association) * workers + worker;
        // The group's number is at most its first PE's, `n * workers + worker = i`.
        assert!(association <= i);
        plans[worker as usize].pool_elements.push(PoolElementPlan {
            association: AssociationId(association),
            pool: i % scenario.pools.count,
            element: i,
        });
    }
    for j in 0..scenario.pu.associations {
        plans[(j % workers) as usize].pool_users.push(AssociationId(scenario.pe.count + j));
    }
    plans
}

/// One worker's PEs and PUs.
#[derive(Debug)]
pub struct Workload {
    pes: Vec<Pe>,
    /// PE timers: (due, local PE index). A PE has at most one timer and none while an
    /// operation of its own is in flight, so no cancellation is needed.
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    pus: Vec<AssociationId>,
    /// Closed loop: PU indices owed one more resolution.
    refill: VecDeque<u32>,
    mode: LoopMode,
    window: u32,
    /// Open loop: mean seconds between arrivals on this worker; infinite if it has no PUs.
    interarrival_s: f64,
    open_next_at: Instant,
    open_cursor: u32,
    pus_started: bool,
    pu_start: Instant,
    issue_end: Instant,
    pe_base: u32,
    workers: u32,
    pools: u32,
    zipf_cdf: Vec<f64>,
    lifetime: Lifetime,
    reregister: Duration,
    rejoin: Duration,
    rng: Rng,
}

#[derive(Clone, Copy, Debug)]
struct Pe {
    plan: PoolElementPlan,
    phase: PePhase,
    /// When a registered PE deregisters; `None` while unregistered or living forever.
    expires_at: Option<Instant>,
}

/// Where a synthetic PE is in its life; alphabetical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PePhase {
    Deregistering,
    Idle,
    Registered,
    Registering,
}

impl Workload {
    /// The workload for `plan`, starting at `start`. Allocates everything it needs now.
    pub fn new(scenario: &Scenario, plan: &WorkerPlan, start: Instant) -> Workload {
        let run = &scenario.run;
        let seed = run.seed ^ (u64::from(plan.worker) << 48) ^ 0x5eed;
        let mut rng = Rng::new(seed);
        let ramp_us = scenario.pe.ramp_ms.saturating_mul(1_000).max(1);
        let mut timers = BinaryHeap::with_capacity(plan.pool_elements.len());
        let pes: Vec<Pe> = plan
            .pool_elements
            .iter()
            .enumerate()
            .map(|(local, &plan)| {
                let due = start + Duration::from_micros(rng.below(ramp_us));
                timers.push(Reverse((due, local as u32)));
                Pe { plan, phase: PePhase::Idle, expires_at: None }
            })
            .collect();
        let total_pus = f64::from(scenario.pu.associations.max(1));
        let share = plan.pool_users.len() as f64 / total_pus;
        let rate = scenario.pu.rate_per_s * share;
        let pu_start = start + Duration::from_millis(run.warmup_ms);
        let zipf_cdf = match scenario.pools.choice {
            PoolChoice::Uniform => Vec::new(),
            PoolChoice::Zipf { exponent } => zipf_cdf(scenario.pools.count, exponent),
        };
        let window = scenario.pu.window;
        Workload {
            pes,
            timers,
            refill: VecDeque::with_capacity(plan.pool_users.len() * window as usize),
            pus: plan.pool_users.clone(),
            mode: scenario.pu.mode,
            window,
            interarrival_s: if rate > 0.0 { 1.0 / rate } else { f64::INFINITY },
            open_next_at: pu_start,
            open_cursor: 0,
            pus_started: false,
            pu_start,
            issue_end: start + Duration::from_millis(run.duration_ms),
            pe_base: scenario.pe.count,
            workers: u32::from(run.workers),
            pools: scenario.pools.count,
            zipf_cdf,
            lifetime: scenario.pe.lifetime.clone(),
            reregister: Duration::from_millis(scenario.pe.reregister_ms),
            rejoin: Duration::from_millis(scenario.pe.rejoin_ms),
            rng,
        }
    }

    /// Submits every operation due at `now`. Open-loop arrivals the client refuses become
    /// [`ErrorCause::Backpressure`] completions in `completions`.
    pub fn issue(
        &mut self,
        now: Instant,
        client: &mut dyn Client,
        completions: &mut Vec<Completion>,
    ) {
        if now >= self.issue_end {
            return;
        }
        self.issue_pool_elements(now, client);
        if now < self.pu_start || self.pus.is_empty() {
            return;
        }
        match self.mode {
            LoopMode::Closed => self.issue_closed(now, client),
            LoopMode::Open => self.issue_open(now, client, completions),
        }
    }

    /// Updates the PE or PU that `completion` belongs to.
    pub fn complete(&mut self, now: Instant, completion: &Completion) {
        let op = &completion.op;
        match op.kind {
            OpKind::KeepAlive => {}
            OpKind::Register | OpKind::Deregister => self.complete_pool_element(now, completion),
            OpKind::Resolve => {
                if self.mode == LoopMode::Closed
                    && completion.outcome != Outcome::Fail(ErrorCause::Backpressure)
                {
                    // Resolutions are only issued on PU associations, numbered from pe_base.
                    let global =
                        op.association.0.checked_sub(self.pe_base).expect("PU association");
                    let local = global / self.workers;
                    assert_eq!(self.pus[local as usize], op.association);
                    self.refill.push_back(local);
                }
            }
        }
    }

    /// The next instant something is due, so the worker can wait until then; `None` if only
    /// completions can make anything due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.timers.peek().map(|Reverse((due, _))| *due);
        if !self.pus.is_empty() {
            let pu_due = match self.mode {
                LoopMode::Closed if !self.pus_started => Some(self.pu_start),
                LoopMode::Closed => None,
                LoopMode::Open => Some(self.open_next_at),
            };
            next = match (next, pu_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next.map(|due| due.min(self.issue_end))
    }

    /// When this workload stops issuing.
    pub fn issue_end(&self) -> Instant {
        self.issue_end
    }

    /// PEs registered right now.
    pub fn pool_elements_registered(&self) -> usize {
        self.pes.iter().filter(|pe| pe.phase == PePhase::Registered).count()
    }

    fn issue_pool_elements(&mut self, now: Instant, client: &mut dyn Client) {
        while let Some(&Reverse((due, local))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let pe = &mut self.pes[local as usize];
            let kind = match pe.phase {
                PePhase::Idle => OpKind::Register,
                PePhase::Registered if pe.expires_at.is_some_and(|at| at <= now) => {
                    OpKind::Deregister
                }
                PePhase::Registered => OpKind::Register,
                PePhase::Deregistering | PePhase::Registering => {
                    unreachable!("timer while in flight")
                }
            };
            let op = Op {
                kind,
                association: pe.plan.association,
                pool: pe.plan.pool,
                element: pe.plan.element,
                issued_at: now,
            };
            match client.submit(now, op) {
                Ok(()) => {
                    pe.phase = if kind == OpKind::Register {
                        PePhase::Registering
                    } else {
                        PePhase::Deregistering
                    };
                }
                Err(SubmitError::Full | SubmitError::Unavailable) => {
                    // Not sent: try again shortly, and stop for this round since the client
                    // is saturated.
                    self.timers.push(Reverse((now + SUBMIT_RETRY, local)));
                    break;
                }
            }
        }
    }

    fn issue_closed(&mut self, now: Instant, client: &mut dyn Client) {
        if !self.pus_started {
            self.pus_started = true;
            for _ in 0..self.window {
                self.refill.extend(0..self.pus.len() as u32);
            }
        }
        while let Some(&local) = self.refill.front() {
            let op = self.resolve_op(local, now);
            if client.submit(now, op).is_err() {
                break; // Full or not yet up: completions will make room.
            }
            self.refill.pop_front();
        }
    }

    fn issue_open(
        &mut self,
        now: Instant,
        client: &mut dyn Client,
        completions: &mut Vec<Completion>,
    ) {
        self.pus_started = true;
        let mut burst = 0;
        while self.open_next_at <= now
            && self.open_next_at < self.issue_end
            && burst < OPEN_BURST_MAX
        {
            let local = self.open_cursor;
            self.open_cursor = (self.open_cursor + 1) % self.pus.len() as u32;
            let op = self.resolve_op(local, self.open_next_at);
            if client.submit(now, op).is_err() {
                completions.push(Completion {
                    op,
                    end: now,
                    outcome: Outcome::Fail(ErrorCause::Backpressure),
                });
            }
            let gap = self.rng.exponential(self.interarrival_s);
            self.open_next_at += Duration::from_secs_f64(gap.min(3_600.0));
            burst += 1;
        }
    }

    fn resolve_op(&mut self, local: u32, issued_at: Instant) -> Op {
        let pool = self.choose_pool();
        Op {
            kind: OpKind::Resolve,
            association: self.pus[local as usize],
            pool,
            element: 0,
            issued_at,
        }
    }

    fn choose_pool(&mut self) -> u32 {
        if self.zipf_cdf.is_empty() {
            return self.rng.below(u64::from(self.pools)) as u32;
        }
        let u = self.rng.unit() * self.zipf_cdf[self.zipf_cdf.len() - 1];
        let pool = self.zipf_cdf.partition_point(|&c| c < u);
        pool.min(self.zipf_cdf.len() - 1) as u32
    }

    fn complete_pool_element(&mut self, now: Instant, completion: &Completion) {
        let op = &completion.op;
        let local = op.element / self.workers;
        let lifetime = self.draw_lifetime();
        let pe = &mut self.pes[local as usize];
        assert_eq!(pe.plan.element, op.element);
        let due = match (op.kind, completion.outcome) {
            (OpKind::Register, Outcome::Succeed) => {
                assert_eq!(pe.phase, PePhase::Registering);
                pe.phase = PePhase::Registered;
                if pe.expires_at.is_none() {
                    pe.expires_at = lifetime.map(|l| now + l);
                }
                let refresh = now + self.reregister;
                pe.expires_at.map_or(refresh, |at| at.min(refresh))
            }
            _ => {
                // A deregistration, or a failed registration: start over after rejoin_ms.
                pe.phase = PePhase::Idle;
                pe.expires_at = None;
                now + self.rejoin
            }
        };
        self.timers.push(Reverse((due, local)));
    }

    fn draw_lifetime(&mut self) -> Option<Duration> {
        match self.lifetime {
            Lifetime::Exponential { mean_ms } => {
                Some(Duration::from_secs_f64(self.rng.exponential(mean_ms as f64 / 1e3).min(1e6)))
            }
            Lifetime::Fixed { ms } => Some(Duration::from_millis(ms)),
            Lifetime::Forever => None,
            Lifetime::Uniform { min_ms, max_ms } => {
                Some(Duration::from_millis(min_ms + self.rng.below(max_ms - min_ms + 1)))
            }
        }
    }
}

/// Cumulative (unnormalised) Zipf weights of pools 1..=count.
fn zipf_cdf(count: u32, exponent: f64) -> Vec<f64> {
    let mut sum = 0.0;
    (1..=count)
        .map(|k| {
            sum += 1.0 / f64::from(k).powf(exponent);
            sum
        })
        .collect()
}

/// A PE whose operation the client refused tries again after this.
const SUBMIT_RETRY: Duration = Duration::from_millis(1);
/// Open-loop arrivals issued per `issue` call, so that a worker that fell behind still polls
/// for completions between bursts.
const OPEN_BURST_MAX: u32 = 1_024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    /// A client that accepts up to `capacity` ops and keeps them for the test to complete.
    struct Script {
        submitted: Vec<Op>,
        capacity: usize,
    }

    impl Client for Script {
        fn submit(&mut self, _now: Instant, op: Op) -> Result<(), SubmitError> {
            if self.submitted.len() >= self.capacity {
                return Err(SubmitError::Full);
            }
            self.submitted.push(op);
            Ok(())
        }
        fn poll(&mut self, _: Instant, _: Instant, _: &mut Vec<Completion>) -> anyhow::Result<()> {
            Ok(())
        }
        fn in_flight(&self) -> u32 {
            self.submitted.len() as u32
        }
    }

    fn scenario(text: &str) -> Scenario {
        Scenario::from_toml(text).unwrap()
    }

    #[test]
    fn plan_spreads_round_robin() {
        // Goal: every PE and PU lands on exactly one worker with consistent numbering.
        let s = scenario("[run]\nworkers = 3\n[pe]\ncount = 7\n[pu]\nassociations = 5");
        let plans = plan_workers(&s);
        assert_eq!(plans.iter().map(|p| p.pool_elements.len()).sum::<usize>(), 7);
        assert_eq!(plans.iter().map(|p| p.pool_users.len()).sum::<usize>(), 5);
        assert_eq!(plans[1].pool_elements[1].element, 4);
        assert_eq!(plans[1].pool_users[0], AssociationId(7 + 1));
    }

    #[test]
    fn plan_groups_pes_per_association() {
        // Goal: with pe.per_association = K a worker's PEs share associations K at a time, in
        // order, every number unique to one worker and below pe.count; K = 1 is the plan of
        // one association per PE (PE i on association i). Method: 2 workers, 7 PEs, K = 3 and
        // K = 1, PU numbering checked for both.
        let s = scenario(
            "[run]\nworkers = 2\n[pe]\ncount = 7\nper_association = 3\n[pu]\nassociations = 1",
        );
        let plans = plan_workers(&s);
        let assocs = |p: &WorkerPlan| -> Vec<u32> {
            p.pool_elements.iter().map(|e| e.association.0).collect()
        };
        let elements =
            |p: &WorkerPlan| -> Vec<u32> { p.pool_elements.iter().map(|e| e.element).collect() };
        assert_eq!(elements(&plans[0]), vec![0, 2, 4, 6]);
        assert_eq!(assocs(&plans[0]), vec![0, 0, 0, 2]);
        assert_eq!(elements(&plans[1]), vec![1, 3, 5]);
        assert_eq!(assocs(&plans[1]), vec![1, 1, 1]);
        assert_eq!((plans[0].pe_associations(), plans[1].pe_associations()), (2, 1));
        assert_eq!(plans[0].pool_users, vec![AssociationId(7)]);
        let s = scenario("[run]\nworkers = 2\n[pe]\ncount = 7\n[pu]\nassociations = 1");
        let plans = plan_workers(&s);
        assert_eq!(assocs(&plans[0]), elements(&plans[0]));
        assert_eq!(assocs(&plans[1]), elements(&plans[1]));
        assert_eq!((plans[0].pe_associations(), plans[1].pe_associations()), (4, 3));
    }

    #[test]
    fn pe_life_cycle_with_churn() {
        // Goal: a PE registers, re-registers, deregisters at the end of its lifetime and
        // rejoins. Method: one PE, fixed 250 ms lifetime, re-register every 100 ms; complete
        // each op at once and step a made-up clock.
        let s = scenario(
            "[run]\nduration_ms = 10000\n[pe]\ncount = 1\nramp_ms = 0\n\
            reregister_ms = 100\nrejoin_ms = 50\nlifetime = { dist = \"fixed\", ms = 250 }\n\
            [pu]\nassociations = 0",
        );
        let plan = &plan_workers(&s)[0];
        let t0 = Instant::now();
        let mut w = Workload::new(&s, plan, t0);
        let mut c = Script { submitted: Vec::new(), capacity: 10 };
        let mut kinds = Vec::new();
        let mut now = t0;
        for _ in 0..5 {
            now = w.next_deadline().unwrap().max(now);
            w.issue(now, &mut c, &mut Vec::new());
            let op = c.submitted.pop().expect("an op is due");
            kinds.push((op.kind, (now - t0).as_millis()));
            w.complete(now, &Completion { op, end: now, outcome: Outcome::Succeed });
        }
        use OpKind::*;
        assert_eq!(
            kinds,
            vec![
                (Register, 0),
                (Register, 100),
                (Register, 200),
                (Deregister, 250),
                (Register, 300)
            ]
        );
        assert_eq!(w.pool_elements_registered(), 1);
    }

    #[test]
    fn closed_loop_keeps_window_and_open_loop_reports_backpressure() {
        // Goal: closed loop fills exactly window × associations and refills one per
        // completion; open loop turns refused arrivals into backpressure failures stamped with
        // their due time. Method: a Script client with a small capacity.
        let s =
            scenario("[pe]\ncount = 0\n[pu]\nassociations = 2\nwindow = 3\n[run]\nwarmup_ms = 0");
        let t0 = Instant::now();
        let mut w = Workload::new(&s, &plan_workers(&s)[0], t0);
        let mut c = Script { submitted: Vec::new(), capacity: 100 };
        w.issue(t0, &mut c, &mut Vec::new());
        assert_eq!(c.submitted.len(), 6);
        let op = c.submitted[0];
        w.complete(t0, &Completion { op, end: t0, outcome: Outcome::Succeed });
        w.issue(t0, &mut c, &mut Vec::new());
        assert_eq!(c.submitted.len(), 7);
        assert_eq!(c.submitted[6].association, op.association);

        let s = scenario(
            "[pe]\ncount = 0\n[pu]\nassociations = 1\nmode = \"open\"\n\
            rate_per_s = 1000.0\n[run]\nwarmup_ms = 0",
        );
        let mut w = Workload::new(&s, &plan_workers(&s)[0], t0);
        let mut c = Script { submitted: Vec::new(), capacity: 10 };
        let mut refused = Vec::new();
        let now = t0 + Duration::from_millis(100);
        w.issue(now, &mut c, &mut refused);
        let offered = c.submitted.len() + refused.len();
        assert_eq!(c.submitted.len(), 10);
        assert!((60..=140).contains(&offered), "about 100 arrivals in 100 ms, got {offered}");
        assert!(refused.iter().all(|r| r.outcome == Outcome::Fail(ErrorCause::Backpressure)));
        assert!(refused.iter().all(|r| r.op.issued_at <= now));
    }

    #[test]
    fn zipf_prefers_low_pools() {
        // Goal: with exponent 1.2 pool 0 is chosen far more often than the last pool.
        let s = scenario("[pools]\ncount = 100\nchoice = { dist = \"zipf\", exponent = 1.2 }");
        let mut w = Workload::new(&s, &plan_workers(&s)[0], Instant::now());
        let mut counts = [0u32; 100];
        for _ in 0..20_000 {
            counts[w.choose_pool() as usize] += 1;
        }
        assert!(counts[0] > 20 * counts[99].max(1), "{} vs {}", counts[0], counts[99]);
    }
}
