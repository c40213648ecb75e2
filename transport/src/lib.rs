//! transport: the only crate that touches sockets and io_uring.
//!
//! What it does **not** do: no protocol logic (SCTP lives in the sans-IO `sctp` crate, ASAP and
//! ENRP in `registrar`), no threads, no clock reads beyond bounded waits inside a system call, no
//! allocation after setup on the hot path.
//!
//! ```text
//!                 ┌───────────── registrar / loadgen (per core) ─────────────┐
//!                 │         api::SctpTransport  (events: Up, Data, ...)       │
//!                 └──────────────┬──────────────────────────┬────────────────┘
//!              sctp_udp (sctp::Endpoint over UDP)     kernel_sctp (RFC 6458)
//!                                │                          │
//!              udp::UdpRing (io_uring) / udp_batch    SOCK_SEQPACKET, IPPROTO_SCTP
//!                                │                          │
//!                       UDP port 9899 (RFC 6951)      kernel SCTP
//!   multicast: plain UDP sockets for ASAP Server Announces (239.0.0.50:3863)
//! ```
//!
//! Choosing a backend, per core:
//! - no kernel SCTP (our hosts): `SctpUdpTransport::<AnyDatagramEndpoint>` (io_uring when it can
//!   be set up, else `recvmmsg`/`sendmmsg`), every core bound to the same UDP port 9899 with
//!   `SO_REUSEPORT`; optionally [`reuseport`] steering by verification tag;
//! - kernel SCTP present and wanted: [`kernel_sctp::KernelSctp`] (`open` fails with
//!   `ErrorKind::Unsupported` and says "kernel has no SCTP" where it is missing).
//!
//! The per-core loop, the same for both (see [`api`] for the order and why):
//! `poll(now, budget, on_event)` → protocol work, which calls `send`/`connect`/`shutdown` →
//! `wait(now, min(own deadline, next_deadline()))`, which flushes and then sleeps in one system
//! call.
//!
//! A loop over one datagram endpoint (here the io_uring UDP one):
//!
//! ```
//! use std::time::Duration;
//! use transport::{DatagramEndpoint, UdpRing, UdpRingConfig};
//! let mut a = UdpRing::bind("127.0.0.1:0".parse().unwrap(), UdpRingConfig::default()).unwrap();
//! let to = a.local_addr();
//! a.send_to(to, b"ping").unwrap();
//! let mut got = Vec::new();
//! for _ in 0..100 {
//!     a.submit_and_wait(Some(Duration::from_millis(10))).unwrap();
//!     a.recv_batch(64, |_from, bytes| got.extend_from_slice(bytes));
//!     if !got.is_empty() { break; }
//! }
//! assert_eq!(got, b"ping");
//! ```

pub mod api;
pub mod datagram;
pub mod kernel_sctp;
pub mod multicast;
pub mod reuseport;
pub mod sctp_udp;
mod sockaddr;
pub mod udp;
pub mod udp_batch;
mod wake_timer;

pub use api::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};
pub use datagram::{
    AnyDatagramEndpoint, DatagramEndpoint, DatagramStats, Doorbell, RecvMode, SendError,
    UdpRingConfig, GSO_SEGMENTS_MAX,
};
pub use sctp_udp::{SctpUdpConfig, SctpUdpTransport};
pub use udp::UdpRing;
pub use udp_batch::UdpSocketBatch;
