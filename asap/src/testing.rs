//! Test helpers: pools, PEs and registrar answers built with the codec.

use std::net::SocketAddr;

use codec::asap::{HandleResolution, HandleResolutionResponse, Message, RegistrationResponse};
use codec::param::{AddressList, OperationalError, Policy, SctpTransport, UserTransport};
use codec::{ErrorCause, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};

/// A registrar's address.
pub(crate) const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)), 3863);

pub(crate) fn pool(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

pub(crate) fn user_transport() -> UserTransport {
    UserTransport::Sctp(SctpTransport {
        port: 7,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&["10.0.0.9".parse().unwrap()]).unwrap(),
    })
}

pub(crate) fn pool_element(id: u32) -> PoolElement {
    pool_element_with(id, Policy::RoundRobin)
}

pub(crate) fn pool_element_with(id: u32, policy: Policy) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 90_000,
        user_transport: user_transport(),
        policy,
        asap_transport: None,
    }
}

pub(crate) fn registration_response(name: &str, id: u32, refused: Option<ErrorCause>) -> Message {
    Message::RegistrationResponse(RegistrationResponse {
        reject: refused.is_some(),
        pool_handle: pool(name),
        pe_id: PoolElementId(id),
        error: refused.map(OperationalError::single),
    })
}

/// A Handle Resolution of pool `name` as an endpoint sends it (no subscription, no count).
pub(crate) fn resolution(name: &str) -> Message {
    Message::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: pool(name),
        items_wanted: None,
    })
}

pub(crate) fn resolution_response(name: &str, ids: &[u32]) -> Message {
    Message::HandleResolutionResponse(HandleResolutionResponse {
        accept_updates: false,
        pool_handle: pool(name),
        overall_policy: None,
        pool_elements: ids.iter().map(|&id| pool_element(id)).collect(),
        error: None,
    })
}
