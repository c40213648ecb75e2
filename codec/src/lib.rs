//! ASAP (RFC 5352) and ENRP (RFC 5353) messages with their RFC 5354 parameters and the
//! RFC 5356 policy parameters.
//!
//! This crate does **not** do I/O, read a clock, spawn threads, pick PEs or keep any state
//! between calls. It does not know SCTP (PPIDs 11 and 12 are the caller's business) and does not
//! validate semantics across messages (e.g. whether a PE id is unique). Bytes come in, typed
//! views and owned representations come out, and back again. The view path (header views,
//! [`asap::HandleResolutionView`], [`asap::HandleResolutionResponseRef`]) never allocates. A
//! Pool Element parameter can also be written from borrowed fields ([`PoolElementFields`], or
//! [`CompactPoolElement`] for the common shape) byte for byte as [`PoolElement::encode`] writes
//! it, so that a registrar need not keep the encoded bytes.
//!
//! ```text
//!                      new_checked                 parse
//!   &[u8] ─────────────▶ MessageView / ─────────────▶ asap::Message / enrp::Message
//!     ▲                  HandleResolutionView          (owned Reprs: Registration, ...)
//!     │                                                    │
//!     └──────────── emit(&mut [u8]) ◀── buffer_len() ◀──────┘
//!   DecodeError { kind, field, offset } ──From──▶ ErrorCause (RFC 5354 §3.12)
//! ```
//!
//! Emit then parse a Handle Resolution:
//!
//! ```
//! use codec::asap::{HandleResolution, Message};
//! use codec::PoolHandle;
//!
//! let request = Message::HandleResolution(HandleResolution {
//!     subscribe: false,
//!     pool_handle: PoolHandle::new(b"EchoPool").unwrap(),
//!     items_wanted: Some(3),
//! });
//! let bytes = request.emit_to_vec();
//! assert_eq!(bytes.len(), request.buffer_len());
//! assert_eq!(Message::parse(&bytes), Ok(request));
//! ```
//!
//! Limits, each justified where it is defined: [`POOL_HANDLE_LENGTH_MAX`],
//! [`param::ADDRESSES_PER_TRANSPORT_MAX`], [`param::ERROR_CAUSES_MAX`],
//! [`POOL_ELEMENTS_PER_MESSAGE_MAX`], [`PARAMETERS_PER_MESSAGE_MAX`],
//! [`SERVERS_PER_MESSAGE_MAX`].
//!
//! ## Where we depart from the RFC text, and why
//!
//! - Registration life is in milliseconds, as RSPLIB 3.4.4 sends it (RFC 5354 §3.10 says
//!   seconds); the field is `PoolElement::registration_life_ms`.
//! - The Handle Resolution option (0x003f, draft-dreibholz-rserpool-asap-hropt) is emitted as
//!   0x803f like RSPLIB and Wireshark, so registrars without it skip it; both are parsed.
//! - ASAP Endpoint Keep Alive may carry a PE Identifier (RSPLIB does); ENRP Handle Update's
//!   flag bit 0 is takeover-suggested and Presence's is reply-required (RSPLIB, Wireshark).
//! - RFC 5353 defines 10 ENRP messages; the "Ownership Change" of early drafts is not in it.
//! - TCP transports keep the transport-use field RSPLIB and Wireshark read where RFC 5354 §3.5
//!   says reserved. Server Announce accepts any transport, not only SCTP and TCP.
//! - Reserved flag bits and reserved fields are ignored on input and written as zero.
//! - Skip-and-report unknown parameters are skipped by the Reprs; the typed views'
//!   `unrecognized_to_report()` yields the top-level ones to quote back. Nested ones (inside a
//!   transport or PE) are skipped without a report.

pub mod asap;
pub mod enrp;
pub mod error;
pub mod message;
pub mod param;
pub mod types;
mod wire;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(fuzzing)]
pub mod fuzzing;

pub use error::{DecodeError, DecodeErrorKind, ErrorCause};
pub use message::{
    MessageView, PARAMETERS_PER_MESSAGE_MAX, POOL_ELEMENTS_PER_MESSAGE_MAX, SERVERS_PER_MESSAGE_MAX,
};
pub use param::{
    CompactPoolElement, EncodedPoolElement, Parameter, Policy, PoolElement, PoolElementFields,
    PoolElementRef, PoolElementSource, SctpTransport, UserTransport,
};
pub use types::{
    PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse, POOL_HANDLE_LENGTH_MAX,
};

// A maximal pool handle parameter and one PE must fit a message; the caps must fit u16 lengths.
const _: () = assert!(POOL_HANDLE_LENGTH_MAX + 4 <= u16::MAX as usize);
const _: () = assert!(PARAMETERS_PER_MESSAGE_MAX >= 2 * POOL_ELEMENTS_PER_MESSAGE_MAX);
