//! SCTP (RFC 9260) as a sans-IO state machine, for UDP encapsulation (RFC 6951).
//!
//! **What this crate does not do:** it opens no sockets, reads no clock, spawns no threads and
//! draws no randomness of its own. Packets and the current [`Instant`] come in as arguments;
//! packets, events and the next deadline go out through `poll_*` calls. The `transport` crate
//! owns the UDP sockets (port 9899) and the clock. Not implemented yet: multi-homing (one path per
//! association; peer addresses are kept and exposed), partial reliability (FORWARD-TSN), AUTH,
//! ASCONF, ECN, stream reconfiguration, I-DATA, PMTU discovery.
//!
//! ```text
//!              handle_packet(now, remote, local, bytes)      send / shutdown / abort
//!                              │                                     │
//!                              ▼                                     ▼
//!   handle_timeout(now) ──► ┌──────────────────────────────────────────────┐
//!                           │ Endpoint: slab of Associations, timer heap,  │
//!                           │ stateless INIT ACK / OOTB replies, pools     │
//!                           └──────────────────────────────────────────────┘
//!                              │              │                 │
//!                              ▼              ▼                 ▼
//!               poll_transmit(now, buf)   poll_event()    poll_timeout()
//!               → Transmit{remote,len}    → Event         → Option<Instant>
//! ```
//!
//! A minimal exchange between two endpoints, moved by hand:
//!
//! ```
//! use sctp::{Endpoint, EndpointConfig, Event, Instant};
//! let (a_addr, b_addr) = ("10.0.0.1:9899".parse().unwrap(), "10.0.0.2:9899".parse().unwrap());
//! let mut a = Endpoint::new(EndpointConfig::default(), [1; 32]);
//! let mut b = Endpoint::new(EndpointConfig::default(), [2; 32]);
//! b.listen(5000);
//! let now = Instant(0);
//! let h = a.connect(now, b_addr, 4000, 5000).unwrap();
//! a.send(now, h, 0, 11, false, b"hello").unwrap();
//! let mut buf = [0u8; 1500];
//! for _ in 0..10 {
//!     while let Some(t) = a.poll_transmit(now, &mut buf) {
//!         b.handle_packet(now, a_addr, b_addr, &buf[..t.len]);
//!     }
//!     while let Some(t) = b.poll_transmit(now, &mut buf) {
//!         a.handle_packet(now, b_addr, a_addr, &buf[..t.len]);
//!     }
//! }
//! let mut got = Vec::new();
//! while let Some(e) = b.poll_event() {
//!     if let Event::DataReadable(hb) = e {
//!         while b.read_message(hb, |m, info| {
//!             assert_eq!(info.ppid, 11);
//!             got.extend_from_slice(m);
//!         }) {}
//!     }
//! }
//! assert_eq!(got, b"hello");
//! ```

mod assoc;
pub mod config;
mod cookie;
pub mod endpoint;
pub mod testing;
pub mod time;
pub mod wire;

pub use assoc::AssociationStats;
pub use config::EndpointConfig;
pub use endpoint::{
    AssociationHandle, ConnectError, Endpoint, Event, MessageInfo, SendError, Stats, Transmit,
};
pub use time::Instant;

/// Hard ceiling on `associations_max`: the slab index takes 20 bits of a handle.
pub const ASSOCIATIONS_LIMIT: u32 = 1 << 20;
