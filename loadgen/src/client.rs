//! The seam: what a target must provide for loadgen to drive it.
//!
//! A [`Target`] hands each worker thread one [`Client`]. The worker owns that client for the
//! whole run, on its own thread, and drives it in a loop:
//!
//! ```text
//! loop {
//!     now = clock();
//!     workload.issue(now, client)        // client.submit(now, op) for each due op
//!     client.poll(now, deadline, &mut completions)   // I/O; waits at most until deadline
//!     for c in completions { record(c); workload.complete(c) }
//! }
//! ```
//!
//! So a client is a per-worker, single-threaded object (the registrar client owns one UDP
//! socket carrying all the worker's SCTP associations, and one `asap::Endpoint` per
//! association). It never calls back into loadgen: results go out only through `poll`'s
//! `completions`, one per submitted op, plus one per server-initiated exchange it answered
//! (keep-alives).
//!
//! A [`Launcher`] starts a target that loadgen owns (the embedded echo server, the model
//! registrar, and later the real registrar for `quickstart`) and stops it again when the
//! [`RunningTarget`] is dropped.

use std::net::SocketAddr;
use std::time::Instant;

use crate::op::{AssociationId, Completion, Op};
use crate::scenario::Scenario;

/// Which associations one worker owns, and what each is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    /// Index of the worker thread, `0..run.workers`.
    pub worker: u16,
    /// Pool elements this worker simulates, in order: `pe.per_association` consecutive
    /// entries share an association (one each by default).
    pub pool_elements: Vec<PoolElementPlan>,
    /// Pool-user associations this worker drives resolutions over.
    pub pool_users: Vec<AssociationId>,
    /// Upper bound on operations in flight at once on this worker's client. The client may
    /// preallocate for exactly this many and return [`SubmitError::Full`] beyond it.
    pub in_flight_max: u32,
}

impl WorkerPlan {
    /// The associations this worker's PEs are on (its PEs share them in runs).
    pub fn pe_associations(&self) -> usize {
        let mut previous = None;
        let mut count = 0;
        for pe in &self.pool_elements {
            if previous != Some(pe.association) {
                count += 1;
                previous = Some(pe.association);
            }
        }
        count
    }

    /// Associations this worker opens at the start: its PEs' and its PU associations.
    pub fn associations(&self) -> usize {
        self.pe_associations() + self.pool_users.len()
    }
}

/// One synthetic pool element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolElementPlan {
    /// The association it is on, its own or shared with the PEs next to it in the plan.
    pub association: AssociationId,
    /// Pool index it registers into.
    pub pool: u32,
    /// Its pool element identifier (RFC 5352 §2.2.1), unique across the run.
    pub element: u32,
}

/// Why [`Client::submit`] refused an operation. The op was not sent and will not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The association is not usable (not yet up, or failed); try again later.
    Unavailable,
    /// `in_flight_max` operations are already in flight.
    Full,
}

/// One worker's connection to the target. Implemented by `udp-echo`, `model` and the
/// registrar client.
pub trait Client {
    /// Sends `op` (or queues it to send in the next `poll`). On `Ok`, exactly one
    /// [`Completion`] for it comes out of a later `poll`, carrying `op` unchanged: a success,
    /// an error cause from the target, or [`crate::ErrorCause::Timeout`] once `op_timeout` has
    /// passed.
    fn submit(&mut self, now: Instant, op: Op) -> Result<(), SubmitError>;

    /// Does I/O: sends what is queued, receives responses, answers server-initiated messages
    /// (keep-alives, reported as [`crate::OpKind::KeepAlive`] completions) and expires
    /// timeouts. Appends completions to `completions`. Returns as soon as there is at least one
    /// completion, and never later than `deadline` (unless a syscall is slow). An `Err` is fatal
    /// for the run; per-operation failures are completions, not errors.
    fn poll(
        &mut self,
        now: Instant,
        deadline: Instant,
        completions: &mut Vec<Completion>,
    ) -> anyhow::Result<()>;

    /// Operations submitted and not yet completed.
    fn in_flight(&self) -> u32;

    /// Associations to the target that came up so far, each counted once (one opened again
    /// after a failure counts again). Targets without associations (the UDP ones) say 0.
    fn associations_opened(&self) -> u64 {
        0
    }
}

/// A thing loadgen can drive: makes one [`Client`] per worker. Shared read-only across worker
/// threads.
pub trait Target: Send + Sync {
    /// Short name for reports, e.g. `"udp-echo"`, `"model"`, `"registrar"`.
    fn name(&self) -> &str;

    /// Builds the client for one worker. Called on that worker's thread, before the run's clock
    /// starts, so it may open sockets and set up associations (and should wait until they are
    /// up).
    fn connect(&self, scenario: &Scenario, plan: &WorkerPlan) -> anyhow::Result<Box<dyn Client>>;
}

/// Starts a target that loadgen owns for the length of a run.
pub trait Launcher {
    /// Starts it (a thread, a child process) and returns once it accepts traffic. `scenario`
    /// says how many pools, PEs and server threads to size it for.
    fn launch(&self, scenario: &Scenario) -> anyhow::Result<Box<dyn RunningTarget>>;
}

/// A started target. Dropping it stops everything the launcher started, and waits for it.
pub trait RunningTarget {
    /// Where it listens.
    fn address(&self) -> SocketAddr;
    /// The target to drive.
    fn target(&self) -> &dyn Target;
}
