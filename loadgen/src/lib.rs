//! Synthetic RSerPool pool elements (PEs) and pool users (PUs) that drive a target and report
//! what they saw.
//!
//! What this crate does **not** do: it does not implement ASAP, SCTP or a handlespace. It drives
//! a [`Target`] through the [`Client`] seam. The real registrar target runs every synthetic PE
//! and PU association on the `asap` crate's sans-IO endpoint core over our SCTP in UDP
//! (`target::registrar`); two more targets measure the pipeline itself: `udp-echo`, the raw UDP
//! request/response ceiling on this host, and `model`, a tiny single-threaded stand-in
//! registrar over UDP that keeps pools in a hash map.
//!
//! ```text
//!  Scenario (TOML + flags)
//!        │
//!        ▼
//!  runner ── one thread per worker ──────────────────────────────────────┐
//!  │  Workload (sans-IO: PEs register/re-register/churn, PUs resolve)     │
//!  │     │ Op { kind, association, pool, element, issued_at }             │
//!  │     ▼                                                                │
//!  │  dyn Client  (per worker; from Target::connect)  ── datagrams ──▶ target
//!  │     │ Completion { op, end, outcome }                                │
//!  │     ▼                                                                │
//!  │  Recorder (HDR histogram per op kind, errors by cause, timeline)     │
//!  └──────────────────────────────────────────────────────────────────────┘
//!        │ merged
//!        ▼
//!  RunResult ──▶ text table, JSON file, HTML report (inline SVG), ratios
//! ```
//!
//! The workload is deterministic for a given seed and clock: it never reads the clock itself,
//! so its tests drive it with made-up instants.
//!
//! A scenario is TOML; a typo names its field, and a run needs only a [`Target`]:
//!
//! ```
//! use loadgen::scenario::{Scenario, ScenarioError};
//!
//! let s = Scenario::from_toml("[pu]\nmode = \"open\"\nrate_per_s = 5000.0").unwrap();
//! assert_eq!(s.pu.rate_per_s, 5000.0);
//! match Scenario::from_toml("[pu]\nmode = \"open\"\nrate_per_s = 0.0") {
//!     Err(ScenarioError::Invalid { field, .. }) => assert_eq!(field, "pu.rate_per_s"),
//!     other => panic!("{other:?}"),
//! }
//! // Then: let prepared = loadgen::target::prepare(&s)?;
//! //       let result = loadgen::runner::run(&s, prepared.target(), Default::default())?;
//! ```

pub mod capacity;
pub mod client;
pub mod contract;
pub mod html;
pub mod op;
pub mod quickstart;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod target;
pub mod wire;
pub mod workload;

pub use client::{Client, Launcher, RunningTarget, SubmitError, Target, WorkerPlan};
pub use op::{AssociationId, Completion, ErrorCause, Op, OpKind, Outcome};
pub use report::RunResult;
pub use scenario::Scenario;
