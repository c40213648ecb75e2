//! What the handlespace stores about a pool element, and what the registrar hands in.

use std::net::{IpAddr, Ipv4Addr};

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};

use crate::policy::Policy;
use crate::time::Duration;
use crate::wire::Wire;

/// The policy parameters of one PE (RFC 5356 §4-5 and RSPLIB's private policies), converted by the
/// registrar from the Member Selection Policy parameter. Fields a policy does not use are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicySettings {
    /// The policy type; must equal the pool's (RFC 5352 §3.1 rule 2).
    pub policy_type: PolicyType,
    /// Weight (WRR, WRAND, WRAND-DPF). 0 means "not capable of any service" (RFC 5356 §3.2).
    pub weight: u32,
    /// Priority (Priority policy); larger is preferred.
    pub priority: u32,
    /// Load, 0 (idle) to 0xffffffff (full) (RFC 5356 §3.1).
    pub load: u32,
    /// Load degradation (LUD, PLU and their variants).
    pub load_degradation: u32,
    /// Load distance penalty factor (LU-DPF, LUD-DPF), scaled so that 0xffffffff is 1.0 per unit of
    /// distance.
    pub load_dpf: u32,
    /// Weight distance penalty factor (WRAND-DPF), same scale as `load_dpf`.
    pub weight_dpf: u32,
    /// Distance to the PE, supplied by the registrar (e.g. measured round-trip time in ms, rounded
    /// to RSPLIB's distance step). Only the DPF policies read it.
    pub distance: u32,
}

/// The transport protocol of a PE's user transport (RFC 5354 §3.3-3.6, plus RSPLIB's UDP-Lite and
/// DCCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// DCCP (RSPLIB extension).
    Dccp,
    /// SCTP (RFC 5354 §3.3).
    Sctp,
    /// TCP (RFC 5354 §3.4).
    Tcp,
    /// UDP (RFC 5354 §3.5).
    Udp,
    /// UDP-Lite (RSPLIB extension).
    UdpLite,
}

/// A PE's user transport, as the handlespace needs it for consistency checks and dumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportInfo {
    /// Transport protocol; must equal the pool's.
    pub protocol: Protocol,
    /// Port.
    pub port: u16,
    /// Transport use (data only, or data plus control); must equal the pool's. UDP carries
    /// [`TransportUse::DATA_ONLY`].
    pub transport_use: TransportUse,
    /// The PE's addresses, 1 to [`Limits::addresses_per_transport_max`](crate::Limits).
    pub addresses: Box<[IpAddr]>,
}

/// One (re-)registration, from ASAP (home = this registrar) or from an ENRP Handle Update or Handle
/// Table Response (home = the peer).
#[derive(Clone, Debug)]
pub struct Registration {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE identifier, unique in the pool.
    pub id: PoolElementId,
    /// The registrar that owns the PE after this registration (RFC 5352 §3.1 rule 4).
    pub home: RegistrarId,
    /// Policy and its parameters.
    pub policy: PolicySettings,
    /// User transport.
    pub transport: TransportInfo,
    /// Registration Life (RFC 5354 §3.13); [`Duration::INFINITE`] arms no expiry timer.
    pub lifetime: Duration,
    /// Opaque to the handlespace: the registrar's handle of the association the registration
    /// came on (e.g. its `SessionHandle`), returned with keep-alive events.
    pub registrator: u64,
    /// Opaque to the handlespace: the Pool Element parameter as the registrar will emit it
    /// (including the ASAP Transport of rule 4). Resolutions and table pages hand it back, so a
    /// response is a memcpy. The Home ENRP Server Identifier inside it goes stale on takeover:
    /// the registrar overwrites those 4 bytes from [`PoolElement::home`] when emitting.
    pub wire: Wire,
}

/// A pool element as stored. Read-only for the registrar.
///
/// Kept to 112 bytes (plus its wire blob on the heap, and an address list other than one IPv4
/// address): fields are ordered by alignment and the transport is flattened so that the small
/// fields share one word.
#[derive(Debug)]
pub struct PoolElement {
    pub(crate) order_key: u64,
    pub(crate) sequence: u64,
    pub(crate) lifetime_at: u64,
    pub(crate) keep_alive_at: u64,
    pub(crate) registrator: u64,
    pub(crate) wire: Wire,
    pub(crate) addresses: Addresses,
    pub(crate) id: PoolElementId,
    pub(crate) home: RegistrarId,
    pub(crate) pool: u32,
    pub(crate) member_position: u32,
    pub(crate) settings: Settings,
    pub(crate) degradation: u32,
    pub(crate) port: u16,
    pub(crate) transport_use: TransportUse,
    pub(crate) protocol: Protocol,
    pub(crate) policy: Policy,
    pub(crate) unreachable_reports: u8,
    pub(crate) keep_alive: KeepAlive,
}

impl PoolElement {
    /// The PE identifier.
    pub fn id(&self) -> PoolElementId {
        self.id
    }

    /// The home registrar (owner).
    pub fn home(&self) -> RegistrarId {
        self.home
    }

    /// The policy settings as registered, with `distance` as last supplied.
    pub fn policy(&self) -> PolicySettings {
        self.settings.expand(self.policy.policy_type())
    }

    /// The degradation counter of RFC 5356 §5.2.2: selections since the last (re-)registration,
    /// saturating at `u32::MAX`.
    pub fn degradation_counter(&self) -> u32 {
        self.degradation
    }

    /// Endpoint Unreachable reports received since the last (re-)registration.
    pub fn unreachable_reports(&self) -> u8 {
        self.unreachable_reports
    }

    /// User transport protocol (the pool's).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// User transport port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// User transport use (the pool's).
    pub fn transport_use(&self) -> TransportUse {
        self.transport_use
    }

    /// User transport addresses.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// The opaque registrator handle given at registration.
    pub fn registrator(&self) -> u64 {
        self.registrator
    }

    /// The opaque encoded Pool Element parameter given at registration.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// The single timer-table deadline of this PE: the earlier of its two timers.
    pub(crate) fn deadline(&self) -> u64 {
        self.lifetime_at.min(self.keep_alive_at)
    }
}

/// A PE's user transport addresses as stored: one IPv4 address (nearly every PE) in the
/// element itself, anything else in a block of its own behind a thin pointer. The list is in
/// the element table and in every read replica, so the common case allocating nothing saves a
/// 17-byte block (32 with malloc's header) per PE per copy; either way the field is 16 bytes,
/// the size of the `Box<[IpAddr]>` it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addresses(Stored);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stored {
    /// Exactly one address, IPv4.
    V4(Ipv4Addr),
    /// Any other list (two or more, or IPv6), in registration order. Boxed twice so that the
    /// pointer is thin and the enum stays 16 bytes.
    Other(Box<List>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct List(Box<[IpAddr]>);

impl Addresses {
    /// The stored form of `list`, kept in its order.
    pub fn new(list: &[IpAddr]) -> Self {
        Self(match list {
            [IpAddr::V4(one)] => Stored::V4(*one),
            _ => Stored::Other(Box::new(List(list.into()))),
        })
    }

    /// The addresses, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (one, rest) = match &self.0 {
            Stored::V4(one) => (Some(IpAddr::V4(*one)), &[][..]),
            Stored::Other(list) => (None, &list.0[..]),
        };
        one.into_iter().chain(rest.iter().copied())
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        match &self.0 {
            Stored::V4(_) => 1,
            Stored::Other(list) => list.0.len(),
        }
    }

    /// Whether the list is empty (the handlespace never stores one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match &self.0 {
            Stored::V4(one) => *ip == IpAddr::V4(*one),
            Stored::Other(list) => list.0.contains(ip),
        }
    }

    /// The addresses as a vector, in registration order.
    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.iter().collect()
    }
}

/// A PE that left the handlespace, with what an ENRP Handle Update (DEL_PE) needs.
#[derive(Clone, Debug)]
pub struct Removed {
    /// The pool it was in.
    pub pool_handle: PoolHandle,
    /// Its identifier.
    pub id: PoolElementId,
    /// Its home registrar at removal.
    pub home: RegistrarId,
    /// The opaque registrator handle.
    pub registrator: u64,
    /// The opaque encoded Pool Element parameter.
    pub wire: Wire,
}

/// Keep-alive state of an owned PE: which keep-alive timer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Not owned here: no keep-alive timer.
    Idle,
    /// An Endpoint Keep Alive is due at `keep_alive_at`.
    Due,
    /// As `Due`, and the home registrar changed (takeover): the keep-alive carries the H bit.
    DueHomeChanged,
    /// An Endpoint Keep Alive was sent; the PE is removed at `keep_alive_at` without an ack.
    Waiting,
}

/// Compact per-PE policy parameters: the pool fixes the policy, so each PE keeps only the numbers
/// its policy reads. `value` is the weight or the priority; `dpf` the load or weight DPF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) value: u32,
    pub(crate) load: u32,
    pub(crate) load_degradation: u32,
    pub(crate) dpf: u32,
    pub(crate) distance: u32,
}

impl Settings {
    pub(crate) fn compact(policy: &PolicySettings) -> Self {
        let priority = policy.policy_type == PolicyType::PRIORITY;
        let weight_dpf = policy.policy_type == PolicyType::WEIGHTED_RANDOM_DPF;
        Self {
            value: if priority { policy.priority } else { policy.weight },
            load: policy.load,
            load_degradation: policy.load_degradation,
            dpf: if weight_dpf { policy.weight_dpf } else { policy.load_dpf },
            distance: policy.distance,
        }
    }

    pub(crate) fn expand(self, policy_type: PolicyType) -> PolicySettings {
        let priority = policy_type == PolicyType::PRIORITY;
        let weight_dpf = policy_type == PolicyType::WEIGHTED_RANDOM_DPF;
        PolicySettings {
            policy_type,
            weight: if priority { 0 } else { self.value },
            priority: if priority { self.value } else { 0 },
            load: self.load,
            load_degradation: self.load_degradation,
            load_dpf: if weight_dpf { 0 } else { self.dpf },
            weight_dpf: if weight_dpf { self.dpf } else { 0 },
            distance: self.distance,
        }
    }
}

impl PolicySettings {
    /// All parameters zero and the (invalid) policy type 0, for struct-update syntax; the same as
    /// `Default::default()`.
    pub const fn new() -> Self {
        Self {
            policy_type: PolicyType(0),
            weight: 0,
            priority: 0,
            load: 0,
            load_degradation: 0,
            load_dpf: 0,
            weight_dpf: 0,
            distance: 0,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self::new()
    }
}
