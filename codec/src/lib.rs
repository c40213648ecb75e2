//! ASAP (RFC 5352) and ENRP (RFC 5353) messages with their RFC 5354 parameters.
//!
//! This crate does **not** do I/O, read a clock, spawn threads or allocate on the view path.
//! Bytes come in, typed views and owned representations come out, and back again.
//!
//! ```text
//!   &[u8] ──new_checked──▶ FooView ──parse──▶ Foo (Repr)
//!   Foo ──buffer_len/emit──▶ &mut [u8]
//! ```

pub mod types;

pub use types::{PoolElementId, PoolHandle, PolicyType, RegistrarId, TransportUse};
