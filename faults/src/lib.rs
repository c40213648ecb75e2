//! The fault lab's logic (issue #16): what a run records ([`history`]) and what must hold of
//! the record afterwards ([`check`]).
//!
//! The lab (`faults/lab.sh`) runs registrars, PEs, PUs and probes as real processes, each in
//! its own network namespace, injects faults with real kernel mechanisms (nftables, signals),
//! and has every client and every fault append one JSON line to a history. The checker then
//! proves the properties from the history alone, in the style of Jepsen's checkers: it never
//! asks the system under test anything. This module does no I/O; `faultcheck` reads files.

pub mod check;
pub mod history;

pub use check::{check, Bounds, Verdict};
pub use history::{Entry, Fault, Kind, Outcome};
