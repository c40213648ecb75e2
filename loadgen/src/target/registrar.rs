//! Where the real registrar plugs in. **The integrator fills this file in**; nothing else in
//! loadgen needs to change.
//!
//! What to implement:
//!
//! 1. `RegistrarClient: Client` — one per worker thread. It opens one userspace-SCTP
//!    association (RFC 9260 over UDP, RFC 6951) per PE in `WorkerPlan::pool_elements` and per
//!    PU in `WorkerPlan::pool_users`, all to the registrar's ASAP port, over the `transport`
//!    crate. `submit` encodes with `codec`: `Register` → ASAP_REGISTRATION with the PE's
//!    identifier `op.element` in pool `op::pool_handle(prefix, op.pool)`, `Deregister` →
//!    ASAP_DEREGISTRATION, `Resolve` → ASAP_HANDLE_RESOLUTION; it remembers `op` until the
//!    matching response (a response carries the pool handle and PE id, so match on those and on
//!    the association, FIFO per association). `poll` drives the `sctp` state machines and the
//!    socket(s), answers ASAP_ENDPOINT_KEEP_ALIVE with ASAP_ENDPOINT_KEEP_ALIVE_ACK and reports
//!    each as an `OpKind::KeepAlive` completion, maps an Operation Error parameter to
//!    `ErrorCause::Asap(code)`, and expires ops older than `run.op_timeout_ms` as
//!    `ErrorCause::Timeout`.
//! 2. `RegistrarTarget: Target` — holds the address; `connect` builds a `RegistrarClient` and
//!    waits until its associations are established (this happens before the clock starts).
//! 3. `RegistrarLauncher: Launcher` — starts the real registrar on 127.0.0.1 with an ephemeral
//!    port (in-process via the `registrar` crate, or as a child process of the `registrar`
//!    binary next to `std::env::current_exe()`), waits until it answers, and returns a
//!    `RunningTarget` whose `Drop` stops it.
//!
//! Until then, [`RegistrarLauncher::launch`] and [`connect`] return [`NotWired`], and
//! `loadgen quickstart` says so and drives the model registrar instead.

use std::fmt;
use std::net::SocketAddr;

use crate::client::{Launcher, RunningTarget, Target};
use crate::scenario::Scenario;

/// Starts the real registrar for a run.
pub struct RegistrarLauncher;

impl Launcher for RegistrarLauncher {
    fn launch(&self, _scenario: &Scenario) -> anyhow::Result<Box<dyn RunningTarget>> {
        Err(NotWired.into())
    }
}

/// A client for a registrar that is already listening at `address`.
pub fn connect(_address: SocketAddr) -> anyhow::Result<Box<dyn Target>> {
    Err(NotWired.into())
}

/// The registrar target is not implemented yet (see the module docs for what to write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotWired;

impl fmt::Display for NotWired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the registrar target is not wired yet: the ASAP/SCTP client plugs in at \
             loadgen/src/target/registrar.rs",
        )
    }
}

impl std::error::Error for NotWired {}
