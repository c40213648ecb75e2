//! The registrar's handlespace: pools, pool elements, RFC 5356 selection, ownership and PE
//! checksums (RFC 5353), and timers, all as plain data.
//!
//! # What this crate does not do
//!
//! It does **not** do I/O, read a clock, spawn threads, parse or emit messages, or talk to peers.
//! It does not decide *when* to send anything: it says what is due. Time comes in as
//! [`Instant`], randomness as `&mut impl rand::Rng`, registrations as already-decoded
//! [`Registration`]s with each PE's encoded Pool Element parameter ([`Registration::wire`]),
//! which comes back byte for byte ([`PoolElement::parameter`]): re-made from the element's
//! fields by `codec`'s field encoder when they make exactly those bytes (nearly always; checked
//! at each registration), kept as given otherwise. It does not share state between cores: one
//! [`Handlespace`] per shard, [`shard_of`] says which.
//!
//! # Inputs and outputs
//!
//! ```text
//!  registrar (ASAP / ENRP FSMs)                         Handlespace (one shard)
//!  ────────────────────────────                         ───────────────────────
//!  Registration (ASAP, ENRP update) ──register(now)──▶  pools ─┬─ policy, transport, use
//!  deregistration, DEL_PE ─────────────deregister──▶          ├─ members + selector
//!  Handle Resolution ──────────resolve(items, rng)──▶          │   (cursor / Fenwick / B-tree)
//!                         ◀── Resolution: &PoolElement… (parameters, best first)
//!  Endpoint Keep Alive Ack ─handle_keep_alive_ack(now)─▶ timers: BTreeSet<ms deadline | slot>
//!  Endpoint Unreachable ──────report_unreachable──▶    counters ──▶ Unreachable::{Counted,Removed}
//!  core loop ───────next_timeout() / expire(now)──▶    ◀── Expiry::{KeepAliveDue, …TimedOut,
//!                                                                LifetimeExpired}
//!  ENRP presence ───────────────pe_checksum(id)──▶     owners: count + checksum sum (O(1))
//!  takeover ────────────take_over(now, from, to)──▶
//!  Handle Table Request ──table_page(owner, cursor)──▶ ◀── TableEntry… + next cursor (M bit)
//! ```
//!
//! # Choices and deviations (each also commented where it is implemented)
//!
//! - WRR is stride scheduling over an ordered index, not a materialised circular list: same
//!   shares, turns spread evenly, O(log n) per selection (RFC 5356 §4.2.2).
//! - Degradation counts every returned entry (RFC 5356 §5.2.2 "When an entry is selected");
//!   RSPLIB counts only the first `MaxIncrement` entries.
//! - RLU and its randomized variants give a fully loaded PE weight 0 (never selected), as the
//!   definition says; RSPLIB floors the weight at 1.
//! - LUD-DPF scales both sides of its comparison the same way; RSPLIB scales them differently.
//! - Unreachable reports remove a PE when the count *exceeds* MAX-BAD-PE-REPORT (RFC 5352
//!   §3.5); RSPLIB removes on reaching it.
//! - Timers have millisecond resolution: a deadline fires at the end of its millisecond, never
//!   before it (one-word timer keys halve the table, BENCHMARKS.md "Memory per PE"). RFC 5354's
//!   Registration Life is in milliseconds; RSPLIB's timers are in microseconds.
//! - A PE's parameter is not stored when its fields re-make it: its bytes were 64 of the
//!   registrar's 268 heap bytes per PE (BENCHMARKS.md, "Memory per PE"). The element keeps the
//!   two things the other fields do not say, the Registration Life and the ASAP Transport's
//!   port (the transport re-made is that port, data only, at the first user address: what the
//!   registrar records); any other shape keeps the bytes ([`Handlespace::parameters_kept`]).
//! - The PE checksum is the RFC 1071 value over big-endian words; see [`checksum`] for how that
//!   relates to RSPLIB's host-order sum.
//! - Not here: removing every PE of a broken ASAP association (the registrar knows its sessions),
//!   and a fuzz target over operation sequences (the `fuzz` crate can drive the public API as the
//!   property tests do).
//!
//! # Example
//!
//! ```
//! use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
//! use handlespace::{Config, Duration, Handlespace, Instant, PolicySettings, Protocol,
//!                   Registration, TransportInfo};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let own = RegistrarId(1);
//! let mut hs = Handlespace::new(own, Config::default());
//! let pool = PoolHandle::new(b"EchoPool").unwrap();
//! let registration = Registration {
//!     pool_handle: pool,
//!     id: PoolElementId(7),
//!     home: own,
//!     policy: PolicySettings { policy_type: PolicyType::ROUND_ROBIN, ..PolicySettings::new() },
//!     transport: TransportInfo {
//!         protocol: Protocol::Sctp,
//!         port: 7,
//!         transport_use: TransportUse::DATA_ONLY,
//!         addresses: Box::new(["127.0.0.1".parse().unwrap()]),
//!     },
//!     lifetime: Duration::from_secs(30),
//!     registrator: 0,
//!     wire: handlespace::Wire::from(&b"encoded PE parameter"[..]),
//! };
//! hs.register(Instant::from_micros(0), registration).unwrap();
//! let mut rng = SmallRng::seed_from_u64(1);
//! let answer = hs.resolve(&pool, 3, &mut rng).unwrap();
//! assert_eq!(answer.elements().map(|pe| pe.id()).collect::<Vec<_>>(), [PoolElementId(7)]);
//! assert_eq!(hs.next_timeout(), Some(Instant::from_micros(5_000_000))); // keep-alive due
//! ```

pub mod checksum;
pub mod element;
pub mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod handlespace;
pub mod limits;
pub mod policy;
pub mod shard;
pub mod time;
mod timers;
pub mod wire;

pub use checksum::ChecksumAccumulator;
pub use element::{
    Addresses, PolicySettings, PoolElement, Protocol, Registration, Removed, TransportInfo,
};
pub use error::{RegistrationError, ResolveError};
pub use handlespace::{
    Expiry, Handlespace, PoolView, Registered, Resolution, TableCursor, TableEntry, Unreachable,
};
pub use limits::{Config, Limits};
pub use shard::{shard_of, ShardedHandlespace};
pub use time::{Duration, Instant};
pub use wire::Wire;
