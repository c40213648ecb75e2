//! From codec Reprs to what the handlespace stores. The only place the two vocabularies meet.

use codec::param::{Policy, UserTransport};
use handlespace::{PolicySettings, Protocol, TransportInfo};

/// The handlespace form of a PE's policy parameter; `None` for a policy type we cannot select
/// with (the caller answers Invalid Values).
pub(crate) fn policy_settings(policy: &Policy) -> Option<PolicySettings> {
    let mut s = PolicySettings { policy_type: policy.policy_type(), ..PolicySettings::new() };
    match *policy {
        Policy::RoundRobin | Policy::Random => {}
        Policy::WeightedRoundRobin { weight } | Policy::WeightedRandom { weight } => {
            s.weight = weight;
        }
        Policy::Priority { priority } => s.priority = priority,
        Policy::LeastUsed { load }
        | Policy::RandomizedLeastUsed { load }
        | Policy::RandomizedPriorityLeastUsed { load } => s.load = load,
        Policy::LeastUsedDegradation { load, load_degradation }
        | Policy::PriorityLeastUsed { load, load_degradation }
        | Policy::RandomizedLeastUsedDegradation { load, load_degradation }
        | Policy::PriorityLeastUsedDegradation { load, load_degradation }
        | Policy::RandomizedPriorityLeastUsedDegradation { load, load_degradation } => {
            s.load = load;
            s.load_degradation = load_degradation;
        }
        Policy::WeightedRandomDpf { weight, weight_dpf, distance } => {
            s.weight = weight;
            s.weight_dpf = weight_dpf;
            s.distance = distance;
        }
        Policy::LeastUsedDpf { load, load_dpf, distance } => {
            s.load = load;
            s.load_dpf = load_dpf;
            s.distance = distance;
        }
        Policy::LeastUsedDegradationDpf { load, load_degradation, load_dpf, distance } => {
            s.load = load;
            s.load_degradation = load_degradation;
            s.load_dpf = load_dpf;
            s.distance = distance;
        }
        Policy::Unknown { .. } => return None,
        #[allow(unreachable_patterns)]
        _ => return None,
    }
    Some(s)
}

/// The handlespace form of a PE's user transport; `None` for opaque transport data, which a
/// pool cannot be checked for consistency against (the caller answers Invalid Values).
pub(crate) fn transport_info(transport: &UserTransport) -> Option<TransportInfo> {
    let one = |protocol, port, transport_use, address| TransportInfo {
        protocol,
        port,
        transport_use,
        addresses: Box::new([address]),
    };
    let data_only = codec::TransportUse::DATA_ONLY;
    Some(match transport {
        UserTransport::Sctp(sctp) => TransportInfo {
            protocol: Protocol::Sctp,
            port: sctp.port,
            transport_use: sctp.transport_use,
            addresses: sctp.addresses.as_slice().into(),
        },
        UserTransport::Tcp { port, transport_use, address } => {
            one(Protocol::Tcp, *port, *transport_use, *address)
        }
        UserTransport::Udp { port, address } => one(Protocol::Udp, *port, data_only, *address),
        UserTransport::UdpLite { port, address } => {
            one(Protocol::UdpLite, *port, data_only, *address)
        }
        UserTransport::Dccp { port, address, .. } => {
            one(Protocol::Dccp, *port, data_only, *address)
        }
        UserTransport::Opaque(_) => return None,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// The overall policy parameter of a Handle Resolution Response: the pool's policy type with
/// its per-PE values zeroed. RFC 5352 §3.3 requires it only "if the current pool member
/// selection policy is not Round-Robin", but RSPLIB 3.4.4's PUs reject a response without it
/// (their parser expects it right after the pool handle), and RSPLIB's registrar always sends
/// it, so we always do.
pub(crate) fn overall_policy(policy_type: codec::PolicyType) -> Option<Policy> {
    use codec::PolicyType as T;
    Some(match policy_type {
        T::ROUND_ROBIN => Policy::RoundRobin,
        T::WEIGHTED_ROUND_ROBIN => Policy::WeightedRoundRobin { weight: 0 },
        T::RANDOM => Policy::Random,
        T::WEIGHTED_RANDOM => Policy::WeightedRandom { weight: 0 },
        T::PRIORITY => Policy::Priority { priority: 0 },
        T::LEAST_USED => Policy::LeastUsed { load: 0 },
        T::LEAST_USED_DEGRADATION => Policy::LeastUsedDegradation { load: 0, load_degradation: 0 },
        T::PRIORITY_LEAST_USED => Policy::PriorityLeastUsed { load: 0, load_degradation: 0 },
        T::RANDOMIZED_LEAST_USED => Policy::RandomizedLeastUsed { load: 0 },
        T::RANDOMIZED_PRIORITY_LEAST_USED => Policy::RandomizedPriorityLeastUsed { load: 0 },
        T::RANDOMIZED_LEAST_USED_DEGRADATION => {
            Policy::RandomizedLeastUsedDegradation { load: 0, load_degradation: 0 }
        }
        T::PRIORITY_LEAST_USED_DEGRADATION => {
            Policy::PriorityLeastUsedDegradation { load: 0, load_degradation: 0 }
        }
        T::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => {
            Policy::RandomizedPriorityLeastUsedDegradation { load: 0, load_degradation: 0 }
        }
        T::WEIGHTED_RANDOM_DPF => {
            Policy::WeightedRandomDpf { weight: 0, weight_dpf: 0, distance: 0 }
        }
        T::LEAST_USED_DPF => Policy::LeastUsedDpf { load: 0, load_dpf: 0, distance: 0 },
        T::LEAST_USED_DEGRADATION_DPF => Policy::LeastUsedDegradationDpf {
            load: 0,
            load_degradation: 0,
            load_dpf: 0,
            distance: 0,
        },
        _ => return None,
    })
}
