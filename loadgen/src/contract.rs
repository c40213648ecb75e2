//! A checker for the [`Client`] contract, for the integrator's tests: wrap any target in
//! [`Checked`] and run a scenario; every client call is checked against the contract and the
//! first breach panics with what was wrong.
//!
//! The contract: each `Ok` from `submit` yields exactly one completion carrying the same `Op`;
//! a refused op yields none; `in_flight` equals ops submitted and not yet completed;
//! `KeepAlive` completions come only from the client, never for a submitted op; `poll` returns
//! by its deadline (within a slack, since syscalls are not instant).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::client::{Client, SubmitError, Target, WorkerPlan};
use crate::op::{Completion, Op, OpKind};
use crate::scenario::Scenario;

/// A target whose clients are wrapped in a contract checker.
pub struct Checked<'a>(pub &'a dyn Target);

impl Target for Checked<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn connect(&self, scenario: &Scenario, plan: &WorkerPlan) -> anyhow::Result<Box<dyn Client>> {
        let inner = self.0.connect(scenario, plan)?;
        Ok(Box::new(CheckedClient {
            inner,
            pending: HashMap::new(),
            in_flight_max: plan.in_flight_max,
        }))
    }
}

struct CheckedClient {
    inner: Box<dyn Client>,
    /// Submitted and not completed, with multiplicity (two identical ops may be in flight).
    pending: HashMap<Op, u32>,
    in_flight_max: u32,
}

impl Client for CheckedClient {
    fn submit(&mut self, now: Instant, op: Op) -> Result<(), SubmitError> {
        assert_ne!(op.kind, OpKind::KeepAlive, "loadgen never submits keep-alives");
        let result = self.inner.submit(now, op);
        if result.is_ok() {
            *self.pending.entry(op).or_insert(0) += 1;
        }
        self.check_in_flight();
        result
    }

    fn poll(
        &mut self,
        now: Instant,
        deadline: Instant,
        completions: &mut Vec<Completion>,
    ) -> anyhow::Result<()> {
        let before = completions.len();
        self.inner.poll(now, deadline, completions)?;
        let late = Instant::now().saturating_duration_since(deadline);
        assert!(late <= POLL_LATE_MAX, "poll returned {late:?} after its deadline");
        for completion in &completions[before..] {
            if completion.op.kind == OpKind::KeepAlive {
                assert!(
                    !self.pending.contains_key(&completion.op),
                    "keep-alive for a submitted op"
                );
                continue;
            }
            let count = self
                .pending
                .get_mut(&completion.op)
                .unwrap_or_else(|| panic!("completion for an op never submitted: {completion:?}"));
            *count -= 1;
            if *count == 0 {
                self.pending.remove(&completion.op);
            }
            assert!(completion.end >= completion.op.issued_at, "completion ends before it began");
        }
        self.check_in_flight();
        Ok(())
    }

    fn in_flight(&self) -> u32 {
        self.inner.in_flight()
    }

    fn associations_opened(&self) -> u64 {
        self.inner.associations_opened()
    }
}

impl CheckedClient {
    fn check_in_flight(&self) {
        let pending: u32 = self.pending.values().sum();
        assert_eq!(self.inner.in_flight(), pending, "in_flight() disagrees with submissions");
        assert!(pending <= self.in_flight_max, "more than in_flight_max in flight");
    }
}

/// How late `poll` may return past its deadline before the checker calls it a breach: a
/// scheduling hiccup on a busy host, not a client that ignores deadlines.
const POLL_LATE_MAX: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{AssociationId, Outcome};
    use crate::workload::plan_workers;

    /// A client that answers every op twice: a breach the checker must catch.
    struct Doubling(Vec<Op>);

    impl Client for Doubling {
        fn submit(&mut self, _now: Instant, op: Op) -> Result<(), SubmitError> {
            self.0.push(op);
            Ok(())
        }
        fn poll(
            &mut self,
            now: Instant,
            _: Instant,
            out: &mut Vec<Completion>,
        ) -> anyhow::Result<()> {
            for op in self.0.drain(..) {
                let c = Completion { op, end: now, outcome: Outcome::Succeed };
                out.extend([c, c]);
            }
            Ok(())
        }
        fn in_flight(&self) -> u32 {
            self.0.len() as u32
        }
    }

    struct DoublingTarget;

    impl Target for DoublingTarget {
        fn name(&self) -> &str {
            "doubling"
        }
        fn connect(&self, _: &Scenario, _: &WorkerPlan) -> anyhow::Result<Box<dyn Client>> {
            Ok(Box::new(Doubling(Vec::new())))
        }
    }

    #[test]
    #[should_panic(expected = "never submitted")]
    fn checker_catches_a_double_completion() {
        // Goal: the checker is not vacuous. Method: a client that completes each op twice.
        let s = Scenario::default();
        let mut client = Checked(&DoublingTarget).connect(&s, &plan_workers(&s)[0]).unwrap();
        let now = Instant::now();
        let op = Op {
            kind: OpKind::Resolve,
            association: AssociationId(0),
            pool: 0,
            element: 0,
            issued_at: now,
        };
        client.submit(now, op).unwrap();
        client.poll(now, now, &mut Vec::new()).unwrap();
    }
}
