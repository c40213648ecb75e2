//! The RSerPool registrar: ASAP server procedures and an ENRP server (RFC 5353, on core 0)
//! on a thread-per-core core.
//!
//! What this crate does **not** do (yet): ENRP peers learned from multicast Presence, handle
//! resolution subscriptions, ASAP over TCP, or the kernel SCTP backend on more than one worker.
//! It does not parse bytes itself (`codec`), select PEs (`handlespace`) or speak SCTP (`sctp`,
//! `transport`).
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
//!
//! The sans-IO server answers a resolution with bytes:
//!
//! ```
//! use codec::asap::{HandleResolution, Message};
//! use registrar::proto::{Server, ServerConfig};
//!
//! let mut server = Server::new(ServerConfig {
//!     registrar_id: codec::RegistrarId(1),
//!     core: 0,
//!     cores: 1,
//!     handlespace: handlespace::Config::default(),
//!     resolution_items_default: 3,
//!     registration_life_max: handlespace::Duration::from_micros(3_600_000_000),
//!     remove_on_session_loss: true,
//!     seed: 1,
//!     replicas: true,
//!     enrp: None,
//! });
//! let request = Message::HandleResolution(HandleResolution {
//!     subscribe: false,
//!     pool_handle: codec::PoolHandle::new(b"EchoPool").unwrap(),
//!     items_wanted: Some(3),
//! });
//! server.handle_message(handlespace::Instant::from_micros(0), 7, &request.emit_to_vec());
//! let answer = server.poll_transmit().unwrap();
//! assert_eq!(answer.assoc, 7);
//! let Message::HandleResolutionResponse(r) = Message::parse(&answer.bytes).unwrap() else {
//!     panic!("a Handle Resolution Response")
//! };
//! assert_eq!(r.error.unwrap().causes[0].code, codec::ErrorCause::UNKNOWN_POOL_HANDLE);
//! ```

pub mod config;
pub mod core;
pub mod io;
pub mod proto;
pub mod report;
