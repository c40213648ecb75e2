//! What the handlespace stores about a pool element, and what the registrar hands in.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use codec::param::{AddressList, PolicyValues, SctpTransportRef, UserTransportRef};
use codec::{CompactPoolElement, EncodedPoolElement, PoolElementFields, PoolElementRef};
use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use codec::{PoolElementSource, SctpTransport};

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
    /// The Pool Element parameter as the registrar will emit it (including the ASAP Transport
    /// of rule 4). Resolutions and table pages hand it back byte for byte
    /// ([`PoolElement::parameter`]), except its Home ENRP Server Identifier, which goes stale
    /// on takeover: the writers put in [`PoolElement::home`]. The bytes are kept only when the
    /// element's fields do not re-make them exactly (see [`PoolElement`]).
    pub wire: Wire,
}

/// A pool element as stored. Read-only for the registrar.
///
/// Kept to 88 bytes: fields are ordered by alignment and the transport is flattened so that
/// the small fields share one word; an ordered policy's key and sequence are its pool's
/// (`policy::Ordered`). Nearly every PE has one IPv4 address and a parameter its
/// fields re-make byte for byte (the registration life and the ASAP Transport's port are kept
/// for that); such a PE has nothing on the heap. Any other keeps a block of its own with its
/// address list and, if the fields do not re-make its parameter, the parameter as registered.
/// The check is made at each registration, against the bytes given, so what the registrar
/// emits is the same either way.
#[derive(Clone, Debug)]
pub struct PoolElement {
    pub(crate) lifetime_at: u64,
    pub(crate) keep_alive_at: u64,
    pub(crate) registrator: u64,
    pub(crate) stored: Stored,
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
    pub fn addresses(&self) -> Addresses<'_> {
        Addresses(match &self.stored {
            Stored::Compact { address, .. } => Lent::V4(*address),
            Stored::Spilled(spilled) => Lent::List(&spilled.addresses),
        })
    }

    /// The opaque registrator handle given at registration.
    pub fn registrator(&self) -> u64 {
        self.registrator
    }

    /// The Registration Life in the parameter, as the PE registered it (0 if the registration's
    /// bytes were not a Pool Element parameter).
    pub fn registration_life_ms(&self) -> u32 {
        match &self.stored {
            Stored::Compact { life_ms, .. } => *life_ms,
            Stored::Spilled(spilled) => spilled.life_ms,
        }
    }

    /// The ASAP Transport in the parameter: where the PE's ASAP endpoint is.
    pub fn asap_transport(&self) -> Option<SctpTransport> {
        if let Some(wire) = self.kept() {
            return EncodedPoolElement::new_checked(wire).ok()?.asap_transport();
        }
        let transport = self.fields()?.asap_transport?;
        Some(SctpTransport {
            port: transport.port,
            transport_use: transport.transport_use,
            addresses: AddressList::from_slice(&[transport.first]).expect("one address"),
        })
    }

    /// The PE's Pool Element parameter for the codec's writers: the bytes given at registration,
    /// or the fields that re-make them byte for byte. Either way the writers put in the PE's
    /// current home.
    ///
    /// # Panics
    /// If the registration's bytes were kept and are not a Pool Element parameter (the
    /// registrar always gives one; only this crate's tests give other bytes).
    #[inline]
    pub fn parameter(&self) -> PoolElementRef<'_> {
        match self.compact() {
            Some(compact) => PoolElementRef::Compact(compact),
            None => self.parameter_otherwise(),
        }
    }

    /// The parameter in the compact layout, for an element of that shape (one IPv4 address,
    /// SCTP, stored as fields: the ASAP Transport, if any, is at that address).
    #[inline]
    fn compact(&self) -> Option<CompactPoolElement> {
        let Stored::Compact { address, life_ms, asap_port } = self.stored else { return None };
        if self.protocol != Protocol::Sctp {
            return None;
        }
        Some(CompactPoolElement {
            id: self.id,
            home_registrar: self.home,
            registration_life_ms: life_ms,
            port: self.port,
            transport_use: self.transport_use,
            address,
            policy: self.policy_values()?,
            asap_port,
        })
    }

    /// [`Self::parameter`] for any but the compact shape: out of line, so that the common
    /// case stays small enough to inline into the writers' loops.
    #[inline(never)]
    fn parameter_otherwise(&self) -> PoolElementRef<'_> {
        match self.kept() {
            Some(wire) => {
                let encoded = EncodedPoolElement::new_checked(wire);
                PoolElementRef::Encoded(encoded.expect("a Pool Element parameter"))
            }
            None => PoolElementRef::Fields(
                self.fields().expect("a parameter is dropped only when the fields re-make it"),
            ),
        }
    }

    /// The parameter's bytes: those given at registration, or re-made (in a new vector) with
    /// the current home. For the admin API and checks; the writers take [`Self::parameter`].
    pub fn wire(&self) -> Cow<'_, [u8]> {
        match self.kept() {
            Some(wire) => Cow::Borrowed(wire),
            None => Cow::Owned(self.parameter().to_vec()),
        }
    }

    /// The parameter as a [`Wire`]: the block given at registration, shared, or the re-made
    /// bytes in a new one (for a change that outlives the element, e.g. an ENRP DEL_PE).
    pub fn to_wire(&self) -> Wire {
        match self.kept() {
            Some(wire) => wire.clone(),
            None => Wire::from(self.parameter().to_vec()),
        }
    }

    /// Whether the bytes given at registration are kept because the fields do not re-make them.
    pub fn keeps_parameter(&self) -> bool {
        self.kept().is_some()
    }

    fn kept(&self) -> Option<&Wire> {
        match &self.stored {
            Stored::Spilled(spilled) => spilled.wire.as_ref(),
            Stored::Compact { .. } => None,
        }
    }

    /// Stores the addresses and the parameter of a (re-)registration: as fields when they
    /// re-make `wire` byte for byte, else with `wire` kept. Called once every other field is
    /// set, because the check reads them.
    pub(crate) fn store(&mut self, addresses: &[IpAddr], wire: Wire) {
        let (life_ms, asap_port) = hints(&wire, addresses.first().copied());
        self.stored = match addresses {
            [IpAddr::V4(address)] => Stored::Compact { address: *address, life_ms, asap_port },
            _ => Stored::Spilled(Box::new(Spilled {
                addresses: addresses.into(),
                life_ms,
                asap_port,
                wire: None,
            })),
        };
        // The form `parameter` hands out (with nothing kept yet, the fields where the compact
        // layout does not fit), compared with the bytes given.
        let remade = match self.compact() {
            Some(compact) => compact.emits(&wire),
            None => self.fields().is_some_and(|fields| fields.emits(&wire)),
        };
        if remade {
            // What every writer is handed from now on (debug builds: it is the check again).
            debug_assert!(self.parameter().emits(&wire));
            return;
        }
        match &mut self.stored {
            Stored::Spilled(spilled) => spilled.wire = Some(wire),
            Stored::Compact { .. } => {
                let addresses = addresses.into();
                let spilled = Spilled { addresses, life_ms, asap_port, wire: Some(wire) };
                self.stored = Stored::Spilled(Box::new(spilled));
            }
        }
        assert!(self.keeps_parameter());
    }

    /// The fields the parameter is re-made from; `None` where they cannot say it (a policy
    /// the codec does not know, several addresses on a one-address transport).
    pub(crate) fn fields(&self) -> Option<PoolElementFields<'_>> {
        let (first, rest, life_ms, asap_port) = match &self.stored {
            Stored::Compact { address, life_ms, asap_port } => {
                (IpAddr::V4(*address), &[][..], *life_ms, *asap_port)
            }
            Stored::Spilled(spilled) => {
                let (first, rest) = spilled.addresses.split_first()?;
                (*first, rest, spilled.life_ms, spilled.asap_port)
            }
        };
        let (port, transport_use, address) = (self.port, self.transport_use, first);
        let user_transport = match self.protocol {
            Protocol::Sctp => {
                UserTransportRef::Sctp(SctpTransportRef { port, transport_use, first, rest })
            }
            // Only SCTP names several addresses (RFC 5354 §3.3-3.7).
            _ if !rest.is_empty() => return None,
            // The service code is not kept: 0 re-makes the usual parameter, and the check at
            // registration keeps any other.
            Protocol::Dccp => UserTransportRef::Dccp { port, service_code: 0, address },
            Protocol::Tcp => UserTransportRef::Tcp { port, transport_use, address },
            Protocol::Udp => UserTransportRef::Udp { port, address },
            Protocol::UdpLite => UserTransportRef::UdpLite { port, address },
        };
        let asap_transport = (asap_port != 0).then_some(SctpTransportRef {
            port: asap_port,
            transport_use: TransportUse::DATA_ONLY,
            first,
            rest: &[],
        });
        Some(PoolElementFields {
            id: self.id,
            home_registrar: self.home,
            registration_life_ms: life_ms,
            user_transport,
            policy: self.policy_values()?,
            asap_transport,
        })
    }

    /// The policy parameter as the codec writes it, each policy's values in the order of its
    /// `codec::Policy` variant; `None` for the RSPLIB policies the codec has no name for.
    #[inline]
    fn policy_values(&self) -> Option<PolicyValues> {
        let Settings { value, load, load_degradation, dpf, distance } = self.settings;
        let (values, count) = match self.policy {
            Policy::RoundRobin | Policy::Random => ([0; 4], 0),
            Policy::WeightedRoundRobin | Policy::WeightedRandom | Policy::Priority => {
                ([value, 0, 0, 0], 1)
            }
            Policy::LeastUsed
            | Policy::RandomizedLeastUsed
            | Policy::RandomizedPriorityLeastUsed => ([load, 0, 0, 0], 1),
            Policy::LeastUsedDegradation
            | Policy::PriorityLeastUsed
            | Policy::RandomizedLeastUsedDegradation
            | Policy::PriorityLeastUsedDegradation
            | Policy::RandomizedPriorityLeastUsedDegradation => ([load, load_degradation, 0, 0], 2),
            Policy::WeightedRandomDpf => ([value, dpf, distance, 0], 3),
            Policy::LeastUsedDpf => ([load, dpf, distance, 0], 3),
            Policy::LeastUsedDegradationDpf => ([load, load_degradation, dpf, distance], 4),
            Policy::PriorityLeastUsedDpf | Policy::PriorityLeastUsedDegradationDpf => return None,
        };
        PolicyValues::with_values(self.policy.policy_type(), values, count)
    }

    /// The single timer-table deadline of this PE: the earlier of its two timers.
    pub(crate) fn deadline(&self) -> u64 {
        self.lifetime_at.min(self.keep_alive_at)
    }
}

impl PoolElementSource for PoolElement {
    #[inline]
    fn pool_element(&self) -> PoolElementRef<'_> {
        self.parameter()
    }

    /// The resolution path: the compact shape made and written in one place.
    fn append_for_pool_users(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        match self.compact() {
            Some(compact) => compact.append_for_pool_users(out, home),
            None => self.parameter_otherwise().append_for_pool_users(out, home),
        }
    }
}

/// A PE's user transport addresses, in registration order, as the element lends them: one IPv4
/// address from the element itself (nearly every PE), any other list from its block.
#[derive(Clone, Copy, Debug)]
pub struct Addresses<'a>(Lent<'a>);

#[derive(Clone, Copy, Debug)]
enum Lent<'a> {
    /// Exactly one address, IPv4.
    V4(Ipv4Addr),
    /// Any other list (two or more, or IPv6).
    List(&'a [IpAddr]),
}

impl<'a> Addresses<'a> {
    /// The addresses, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + 'a {
        let (one, rest) = match self.0 {
            Lent::V4(one) => (Some(IpAddr::V4(one)), &[][..]),
            Lent::List(list) => (None, list),
        };
        one.into_iter().chain(rest.iter().copied())
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        match self.0 {
            Lent::V4(_) => 1,
            Lent::List(list) => list.len(),
        }
    }

    /// Whether the list is empty (the handlespace never stores one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match self.0 {
            Lent::V4(one) => *ip == IpAddr::V4(one),
            Lent::List(list) => list.contains(ip),
        }
    }

    /// The addresses as a vector, in registration order.
    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.iter().collect()
    }
}

impl PartialEq for Addresses<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Addresses<'_> {}

/// What an element keeps of its addresses and of its parameter beyond its flat fields. The
/// element table and every read replica hold one per PE, so the common case is inline: no
/// address block (17 bytes, 32 with malloc's header) and no parameter block (64 bytes for the
/// common 56-byte parameter, BENCHMARKS.md "Memory per PE") per PE per copy.
#[derive(Clone, Debug)]
pub(crate) enum Stored {
    /// One IPv4 address, and the parameter re-made from the fields.
    Compact {
        address: Ipv4Addr,
        /// Registration life in the parameter.
        life_ms: u32,
        /// The ASAP Transport's port, 0 for none (see [`Spilled::asap_port`]).
        asap_port: u16,
    },
    /// Anything else, in a block of its own (a thin pointer, so that the enum stays 16 bytes).
    Spilled(Box<Spilled>),
}

impl Stored {
    /// What a new element holds until [`PoolElement::store`] decides.
    pub(crate) const PLACEHOLDER: Self =
        Self::Compact { address: Ipv4Addr::UNSPECIFIED, life_ms: 0, asap_port: 0 };
}

#[derive(Clone, Debug)]
pub(crate) struct Spilled {
    /// The addresses, in registration order.
    addresses: Box<[IpAddr]>,
    /// Registration life in the parameter.
    life_ms: u32,
    /// The ASAP Transport's port, 0 for none. The transport re-made is this port, data only,
    /// and the first user address: what the registrar records for a PE registered over an
    /// association (`registrar/src/proto/asap.rs`, `asap_transport`), and what a peer running
    /// this registrar sends. Any other shape keeps the parameter.
    asap_port: u16,
    /// The parameter as registered, when the fields do not re-make it byte for byte.
    wire: Option<Wire>,
}

/// What the fields cannot know but the parameter says: its Registration Life and, if its ASAP
/// Transport has the shape the fields re-make (see [`Spilled::asap_port`]), that transport's
/// port. Zeros for bytes that are not a Pool Element parameter: the check keeps those.
fn hints(wire: &[u8], first: Option<IpAddr>) -> (u32, u16) {
    let Ok(encoded) = EncodedPoolElement::new_checked(wire) else { return (0, 0) };
    let asap_port = match (encoded.asap_transport(), first) {
        (Some(transport), Some(first))
            if transport.transport_use == TransportUse::DATA_ONLY
                && transport.addresses.as_slice() == [first] =>
        {
            transport.port
        }
        _ => 0,
    };
    (encoded.registration_life_ms(), asap_port)
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
    /// The element as it left, for its parameter ([`PoolElement::parameter`],
    /// [`PoolElement::to_wire`]).
    pub element: PoolElement,
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
