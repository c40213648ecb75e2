//! The RSerPool registrar: ASAP server procedures on a thread-per-core core.
//!
//! ```text
//!             ┌──────────── core k (pinned thread) ────────────┐
//!  UDP/SCTP ─▶│ io: transport ─▶ proto::Server ─▶ handlespace  │
//!  packets    │        ▲            │   ▲  shard k              │
//!             │        └─ replies ◀─┘   │                       │
//!             └─────────────────────────┼───────────────────────┘
//!                        cross-core SPSC queues (N × N, bounded)
//! ```
//!
//! `proto` is sans-IO (no sockets, no clock); `core` owns threads, the clock and the queues;
//! `io` glues `proto` to the `transport` crate.

pub mod config;
pub mod core;
pub mod io;
pub mod proto;
