//! The pool element / pool user side of ASAP (RFC 5352): a sans-IO endpoint core, a
//! blocking driver over any [`transport::SctpTransport`], and (cargo feature `tokio`, off by
//! default) an async API over that driver, run in a thread of its own.
//!
//! What it does: PE registration, re-registration, keep-alive answers and deregistration
//! ([`pe`]); handle resolution with a stale-cache value, selection and Endpoint Unreachable
//! reports ([`pu`]); live pool updates with the S flag, re-sent at every new home and
//! probed so that a dead home is noticed, with polling where the registrar does not set A
//! ([`subscription`]); the server hunt with capped back-off ([`hunt`]); a PE that hears
//! nothing from its home for `home_silence` re-registers early to find out
//! ([`endpoint::HOME_SILENCE_DEFAULT`]); TCP connections to a pool's PEs with failover
//! ([`blocking::PoolUser::connect_tcp`]); SCTP user transports with the PE↔PU control channel
//! (RFC 5352 §3.8-§3.9, ASAP with PPID 11 on the user's association): a PE's
//! [`blocking::SctpService`] takes PUs' associations and sends them cookies, a PU's
//! [`blocking::SctpPoolSession`] keeps the last cookie and, when its PE fails, reports it
//! once, picks another and sends it the Cookie Echo first (the procedures, sans-IO, are
//! [`pu::Failover`] and [`control`]); a registrar's handlespace read over ENRP ([`dump`]).
//!
//! This crate does **not** run the control channel over TCP (a TCP transport is data only,
//! RFC 5354 §3.5), cannot cancel a subscription at the registrar (ASAP has no message for it;
//! the endpoint ignores what follows), does not speak ASAP over TCP, does not listen on the
//! Server Announce multicast group itself (feed datagrams to [`Endpoint::handle_announce`]),
//! does not sign or verify cookies, does not send Business Cards from a PE, tries only a
//! PE's first address, and does not pick PEs by weight or priority: a PU goes
//! round robin over the list the registrar chose, or least used where every PE carries a
//! load. Outside [`blocking`] (and the `tokio` module), nothing here reads a clock, touches
//! a socket or spawns a thread.
//!
//! ```text
//!   driver (blocking.rs, or yours)                    Endpoint (sans-IO)
//!   ───────────────────────────────                   ───────────────────────────────────
//!   Up / Data / Closed / Lost  ── handle_up/_data/_closed(now, assoc, ..) ─▶  Hunt (hunt.rs)
//!   multicast announce         ── handle_announce(now, source, bytes) ───▶  Link per assoc
//!   timer fired                ── handle_timeout(now) ──────────────────▶  (link.rs)
//!   user: register/resolve/subscribe ──────────────────────────────────▶  PE FSMs (pe.rs)
//!   send(assoc, PPID 11)       ◀── poll_transmit() ── Transmit            PU cache (pu.rs)
//!   abort(assoc)               ◀── poll_abort()
//!   connect(addr)              ◀── poll_connect() ── then handle_connect_started(addr, assoc)
//!   user                       ◀── poll_event() ── Registered, Resolved, PoolChanged, ...
//!   sleep until                ◀── poll_timeout()
//! ```
//!
//! A PE registration, byte for byte, without a network:
//!
//! ```
//! use asap::{Endpoint, EndpointConfig, Instant, PeConfig};
//! use codec::asap::Message;
//! use codec::param::{AddressList, Policy, SctpTransport, UserTransport};
//! use codec::{PoolHandle, TransportUse};
//!
//! let registrar = "127.0.0.1:3863".parse().unwrap();
//! let mut config = EndpointConfig::default();
//! config.hunt.registrars = vec![registrar];
//! let mut endpoint = Endpoint::new(config, 1);
//! let transport = UserTransport::Sctp(SctpTransport {
//!     port: 7,
//!     transport_use: TransportUse::DATA_ONLY,
//!     addresses: AddressList::from_slice(&["127.0.0.1".parse().unwrap()]).unwrap(),
//! });
//! let pool = PoolHandle::new(b"EchoPool").unwrap();
//! let now = Instant::ZERO;
//! endpoint.register(now, PeConfig::new(pool, transport, Policy::RoundRobin)).unwrap();
//! assert_eq!(endpoint.poll_connect(), Some(registrar));
//! endpoint.handle_connect_started(registrar, transport::AssocId(1));
//! endpoint.handle_up(now, transport::AssocId(1), registrar);
//! let sent = endpoint.poll_transmit().unwrap();
//! let Message::Registration(r) = Message::parse(&sent.bytes).unwrap() else { panic!() };
//! assert_eq!(r.pool_handle, pool);
//! ```

pub mod blocking;
pub mod control;
pub mod dump;
pub mod endpoint;
pub mod hunt;
pub mod link;
pub mod pe;
pub mod pu;
pub mod session;
pub mod subscription;
pub mod time;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(test)]
mod testing;

pub use endpoint::{Endpoint, EndpointConfig, Event, Failure, PeHandle, Resolution, Transmit};
pub use pe::PeConfig;
pub use session::{Session, SessionError};
pub use subscription::Updates;
pub use time::{Duration, Instant};
