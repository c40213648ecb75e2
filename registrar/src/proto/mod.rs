//! Sans-IO ASAP server procedures (RFC 5352 §3.1-3.5): bytes, time and randomness in; replies,
//! cross-core messages and deadlines out. Nothing here opens a socket or reads a clock.
//!
//! The per-core loop drives one [`Server`] per core:
//!
//! ```text
//!  transport event ─▶ handle_up / handle_message / handle_closed ─┐
//!  cross-core msg  ─▶ handle_cross_core ──────────────────────────┤
//!  deadline        ─▶ handle_timeout ─────────────────────────────┤
//!                                                                 ▼
//!           poll_transmit (to a local association) · poll_forward (to another core)
//!           poll_timeout (next deadline)
//! ```
//!
//! Outputs are pulled in that order after every batch of inputs.

mod convert;
mod server;

pub use server::{CrossCore, Outgoing, ReplicaUpdate, Server, ServerConfig, SessionId, Stats};
