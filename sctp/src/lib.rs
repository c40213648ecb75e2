//! SCTP (RFC 9260) as a sans-IO state machine, for UDP encapsulation (RFC 6951).
//!
//! **What this crate does not do:** it opens no sockets, reads no clock, spawns no threads and
//! draws no randomness of its own. Packets and the current [`Instant`] come in as arguments;
//! packets, events and the next deadline go out through `poll_*` calls. The `transport` crate
//! owns the UDP sockets (port 9899) and the clock.
//!
//! **Implemented (RFC 9260):** the four-way handshake with a stateless HMAC-SHA-256 State Cookie
//! (§5.1, lifetime checked, "Stale Cookie" reply), INIT collision, duplicate INIT and peer restart
//! with tie-tags (§5.2, Table 12), DATA with PPID, stream, ordered and unordered delivery,
//! fragmentation and reassembly up to `max_message_size` (§6.9), SACK with gap blocks and
//! duplicate TSNs, delayed ack at every second packet or `delayed_ack`, bundled with DATA (§6.2),
//! RTO estimation with Karn's rule (§6.3), T3 retransmission, fast retransmit and fast recovery,
//! slow start and congestion avoidance (§7), zero window probing (§6.1), HEARTBEAT with path and
//! association failure detection (§8), graceful SHUTDOWN and ABORT both ways (§9),
//! out-of-the-blue handling (§8.4), verification tag rules (§8.5), unknown chunks and parameters
//! by their upper two bits (§3.2), ERROR chunks as events, IPv4/IPv6 address parameters
//! (exposed; every peer address finds its association), CRC32c (§6.8), and per RFC 6951 the
//! peer's UDP encapsulation port tracked per association.
//!
//! **Not implemented, and why:** multi-homed path selection and failover (§6.4; one path per
//! association for now, but addresses are kept and looked up, so it can be added); PMTU discovery
//! (the packet budget is the configured `mtu`); T5-shutdown-guard (T2 expirations already count
//! toward `assoc_max_retrans`); Cookie Preservative (§5.2.6; a stale cookie restarts with a new
//! INIT); the "Restart with New Addresses" check of §5.2.2; ABORT on INIT with new addresses;
//! heartbeat jitter (§8.3; determinism makes the failure bound exact); cwnd decay after idle
//! (§7.2.1); extensions: PR-SCTP (FORWARD-TSN), AUTH, ASCONF, ECN, stream reconfiguration,
//! I-DATA. We never advertise them, so peers never use them.
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
pub use config::{EndpointConfig, TagSteering, MTU_MIN};
pub use endpoint::{
    AssociationHandle, ConnectError, Endpoint, Event, MessageInfo, SendError, Stats, Transmit,
};
pub use time::Instant;

/// Hard ceiling on `associations_max`: the slab index takes 20 bits of a handle.
pub const ASSOCIATIONS_LIMIT: u32 = 1 << 20;
