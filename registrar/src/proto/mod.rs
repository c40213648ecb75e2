//! Sans-IO registrar procedures: bytes, time and randomness in; replies, cross-core messages
//! and deadlines out. Nothing here opens a socket or reads a clock.
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
//! Outputs are pulled in that order after every batch of inputs. The jobs live apart:
//!
//! | module | job |
//! |---|---|
//! | `server` | the per-core node: routing, the poll order, publishing shard changes |
//! | `session` | the core's associations, the PEs registered over each, the masquerade rule |
//! | `shard` | the handlespace shard and read replica; every change becomes a [`ShardChange`] |
//! | `cross_core` | what cores send each other |
//! | `asap` | the ASAP server procedures (RFC 5352 §3.1-3.5) |
//! | `subscriptions` | live pool updates (the S bit): who follows which pool, and the pushes |

mod asap;
mod convert;
mod cross_core;
pub mod enrp;
mod server;
mod session;
mod shard;
mod subscriptions;

pub use cross_core::{CrossCore, ReplicaUpdate, SessionId};
pub use server::{Outgoing, OutgoingEnrp, Server, ServerConfig, Stats, ENRP_CORE};
pub use shard::ShardChange;
