//! The pool element / pool user side of ASAP (RFC 5352): a blocking session with one
//! registrar over any [`transport::SctpTransport`].
//!
//! This crate does **not** yet do server hunting, failover between registrars, or the
//! PE↔PU data channel (the next wave); it is the thin path the end-to-end tests and tools use.
//!
//! ```text
//!  request(Message) ─▶ SCTP (PPID 11) ─▶ registrar
//!  recv() ◀─ Message ◀─ SCTP ◀─ registrar (responses, keep-alives)
//! ```
//!
//! ```
//! use codec::asap::{HandleResolution, Message};
//! let request = Message::HandleResolution(HandleResolution {
//!     subscribe: false,
//!     pool_handle: codec::PoolHandle::new(b"EchoPool").unwrap(),
//!     items_wanted: Some(3),
//! });
//! let bytes = request.emit_to_vec();
//! assert_eq!(Message::parse(&bytes).unwrap(), request);
//! ```

pub mod session;

pub use session::{Session, SessionError};
