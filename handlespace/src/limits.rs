//! Every bound and tunable of a handlespace, with its default, in one place (STYLE.md §5).

use crate::time::Duration;

/// Size bounds of one handlespace (one shard). A registration that would exceed one is rejected
/// with [`RegistrationError::LackOfResources`](crate::RegistrationError::LackOfResources) or
/// [`RegistrationError::InvalidValues`](crate::RegistrationError::InvalidValues); nothing grows
/// past these numbers and nothing panics when they are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pools in this handlespace. Default 65 536: far more pools than any deployment we know of
    /// (RSPLIB's scenarios use tens), while a pool without members costs only a few hundred bytes.
    pub pools_max: u32,
    /// Pool elements in this handlespace, all pools together. Default 1 048 576: the issue's
    /// 1 000 000-PE target with headroom; about 250 MB resident at the measured bytes per PE.
    pub pool_elements_max: u32,
    /// Pool elements in one pool. Default 1 048 576, i.e. one pool may hold the whole table.
    pub pool_elements_per_pool_max: u32,
    /// IP addresses in one user transport. Default 16, RSPLIB's `MAX_NS_TRANSPORTADDRESSES`:
    /// an SCTP endpoint with more addresses than that is not a configuration we have seen.
    pub addresses_per_transport_max: u8,
    /// Pool handle length in bytes. Default 64, [`codec::types::POOL_HANDLE_LENGTH_MAX`]; RSPLIB
    /// itself caps handles at 32 bytes.
    pub pool_handle_length_max: u8,
    /// Distinct home registrars (owners) with PEs in this handlespace. Default 1 024: an
    /// operational scope has a handful of registrars; the bound only stops a peer from
    /// inventing identifiers.
    pub registrars_max: u32,
    /// Items returned by one handle resolution. Default 128: larger answers do not fit a typical
    /// 64 KiB message with 16-address PEs, and RSPLIB's default request is 3.
    pub items_per_resolution_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pools_max: 65_536,
            pool_elements_max: 1_048_576,
            pool_elements_per_pool_max: 1_048_576,
            addresses_per_transport_max: 16,
            pool_handle_length_max: 64,
            registrars_max: 1_024,
            items_per_resolution_max: 128,
        }
    }
}

// A configured handle length can never exceed what the codec newtype can hold.
const _: () = assert!(codec::types::POOL_HANDLE_LENGTH_MAX <= u8::MAX as usize);

/// Behaviour knobs of one handlespace, with RSPLIB's registrar defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Size bounds.
    pub limits: Limits,
    /// MAX-BAD-PE-REPORT (RFC 5352 §3.5): a PE is removed when its Endpoint Unreachable count
    /// exceeds this. Default 3, RSPLIB's `REGISTRAR_DEFAULT_MAX_BAD_PE_REPORTS` (RSPLIB removes at
    /// 3 reports, the RFC's "exceeds" at 4).
    pub max_bad_pe_reports: u8,
    /// Time between a successful keep-alive exchange (or registration) and the next Endpoint
    /// Keep Alive to an owned PE. Default 5 s, RSPLIB's
    /// `REGISTRAR_DEFAULT_ENDPOINT_KEEP_ALIVE_TRANSMISSION_INTERVAL`.
    pub keep_alive_interval: Duration,
    /// Time an owned PE has to answer an Endpoint Keep Alive before it is removed. Default 5 s,
    /// RSPLIB's `REGISTRAR_DEFAULT_ENDPOINT_KEEP_ALIVE_TIMEOUT_INTERVAL`.
    pub keep_alive_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_bad_pe_reports: 3,
            keep_alive_interval: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(5),
        }
    }
}
