//! Proptest generators for every parameter and message, written once and shared by the
//! property tests, the benches and anything else that needs arbitrary valid Reprs. Behind the
//! `testing` feature (always on for this crate's own tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use crate::asap;
use crate::enrp;
use crate::error::ErrorCause;
use crate::param::{
    AddressList, Cause, CauseInfo, OperationalError, PeChecksum, Policy, PoolElement,
    SctpTransport, ServerInformation, UserTransport, ADDRESSES_PER_TRANSPORT_MAX,
};
use crate::types::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};

/// A pool handle of 1 to 64 arbitrary bytes.
pub fn pool_handle() -> impl Strategy<Value = PoolHandle> {
    vec(any::<u8>(), 1..=crate::POOL_HANDLE_LENGTH_MAX)
        .prop_map(|b| PoolHandle::new(&b).expect("length in bounds"))
}

/// An IPv4 or IPv6 address.
pub fn ip_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

/// An SCTP transport with 1 to the cap addresses.
pub fn sctp_transport() -> impl Strategy<Value = SctpTransport> {
    (any::<u16>(), any::<u16>(), vec(ip_address(), 1..=ADDRESSES_PER_TRANSPORT_MAX)).prop_map(
        |(port, transport_use, addresses)| SctpTransport {
            port,
            transport_use: TransportUse(transport_use),
            addresses: AddressList::from_slice(&addresses).expect("within the cap"),
        },
    )
}

/// Any user transport.
pub fn user_transport() -> impl Strategy<Value = UserTransport> {
    prop_oneof![
        (any::<u16>(), any::<u32>(), ip_address()).prop_map(|(port, service_code, address)| {
            UserTransport::Dccp { port, service_code, address }
        }),
        vec(any::<u8>(), 0..24).prop_map(UserTransport::Opaque),
        sctp_transport().prop_map(UserTransport::Sctp),
        (any::<u16>(), any::<u16>(), ip_address()).prop_map(|(port, u, address)| {
            UserTransport::Tcp { port, transport_use: TransportUse(u), address }
        }),
        (any::<u16>(), ip_address())
            .prop_map(|(port, address)| UserTransport::Udp { port, address }),
        (any::<u16>(), ip_address())
            .prop_map(|(port, address)| UserTransport::UdpLite { port, address }),
    ]
}

/// Any policy, known or not.
pub fn policy() -> impl Strategy<Value = Policy> {
    let u = any::<u32>;
    prop_oneof![
        Just(Policy::RoundRobin),
        u().prop_map(|weight| Policy::WeightedRoundRobin { weight }),
        Just(Policy::Random),
        u().prop_map(|weight| Policy::WeightedRandom { weight }),
        u().prop_map(|priority| Policy::Priority { priority }),
        u().prop_map(|load| Policy::LeastUsed { load }),
        (u(), u()).prop_map(|(load, load_degradation)| Policy::LeastUsedDegradation {
            load,
            load_degradation
        }),
        (u(), u()).prop_map(|(load, load_degradation)| Policy::PriorityLeastUsed {
            load,
            load_degradation
        }),
        u().prop_map(|load| Policy::RandomizedLeastUsed { load }),
        u().prop_map(|load| Policy::RandomizedPriorityLeastUsed { load }),
        (u(), u()).prop_map(|(load, load_degradation)| Policy::RandomizedLeastUsedDegradation {
            load,
            load_degradation
        }),
        (u(), u()).prop_map(|(load, load_degradation)| Policy::PriorityLeastUsedDegradation {
            load,
            load_degradation
        }),
        (u(), u()).prop_map(|(load, load_degradation)| {
            Policy::RandomizedPriorityLeastUsedDegradation { load, load_degradation }
        }),
        (u(), u(), u()).prop_map(|(weight, weight_dpf, distance)| Policy::WeightedRandomDpf {
            weight,
            weight_dpf,
            distance
        }),
        (u(), u(), u()).prop_map(|(load, load_dpf, distance)| Policy::LeastUsedDpf {
            load,
            load_dpf,
            distance
        }),
        (u(), u(), u(), u()).prop_map(|(load, load_degradation, load_dpf, distance)| {
            Policy::LeastUsedDegradationDpf { load, load_degradation, load_dpf, distance }
        }),
        (
            u().prop_filter("unknown policy type", |t| !Policy::is_known_type(PolicyType(*t))),
            vec(any::<u8>(), 0..16)
        )
            .prop_map(|(t, value)| Policy::Unknown { policy_type: PolicyType(t), value }),
    ]
}

/// A pool element.
pub fn pool_element() -> impl Strategy<Value = PoolElement> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        user_transport(),
        policy(),
        proptest::option::of(sctp_transport()),
    )
        .prop_map(|(id, home, life, user_transport, policy, asap_transport)| PoolElement {
            id: PoolElementId(id),
            home_registrar: RegistrarId(home),
            registration_life_ms: life,
            user_transport,
            policy,
            asap_transport,
        })
}

/// Server information.
pub fn server_information() -> impl Strategy<Value = ServerInformation> {
    (any::<u32>(), sctp_transport())
        .prop_map(|(id, transport)| ServerInformation { server_id: RegistrarId(id), transport })
}

/// One error cause, with the information its code carries.
pub fn cause() -> impl Strategy<Value = Cause> {
    let bytes = || vec(any::<u8>(), 1..24);
    let c = |code| ErrorCause(code);
    let plain = prop_oneof![Just(0u16), Just(4), Just(6), Just(8), Just(9), Just(0xa), 0x000bu16..];
    prop_oneof![
        plain.clone().prop_map(move |code| Cause { code: c(code), info: CauseInfo::None }),
        plain.prop_flat_map(move |code| bytes()
            .prop_map(move |b| Cause { code: c(code), info: CauseInfo::Opaque(b) })),
        (prop_oneof![Just(1u16), Just(3)], bytes())
            .prop_map(move |(code, b)| Cause { code: c(code), info: CauseInfo::Parameter(b) }),
        bytes().prop_map(move |b| Cause {
            code: ErrorCause::UNRECOGNIZED_MESSAGE,
            info: CauseInfo::Message(b)
        }),
        policy().prop_map(|p| Cause {
            code: ErrorCause::INCONSISTENT_POOLING_POLICY,
            info: CauseInfo::Policy(p)
        }),
        user_transport().prop_map(|t| Cause {
            code: ErrorCause::INCONSISTENT_TRANSPORT_TYPE,
            info: CauseInfo::Transport(t)
        }),
    ]
}

/// An operational error with one to four causes.
pub fn operational_error() -> impl Strategy<Value = OperationalError> {
    vec(cause(), 1..4).prop_map(|causes| OperationalError { causes })
}

fn pool_elements() -> impl Strategy<Value = Vec<PoolElement>> {
    vec(pool_element(), 0..4)
}

/// Any ASAP message.
pub fn asap_message() -> impl Strategy<Value = asap::Message> {
    use asap::Message as M;
    let id = || any::<u32>().prop_map(PoolElementId);
    let error = || proptest::option::of(operational_error());
    prop_oneof![
        (pool_handle(), pool_element()).prop_map(|(pool_handle, pool_element)| M::Registration(
            asap::Registration { pool_handle, pool_element }
        )),
        (pool_handle(), id()).prop_map(|(pool_handle, pe_id)| M::Deregistration(
            asap::Deregistration { pool_handle, pe_id }
        )),
        (any::<bool>(), pool_handle(), id(), error()).prop_map(
            |(reject, pool_handle, pe_id, error)| {
                M::RegistrationResponse(asap::RegistrationResponse {
                    reject,
                    pool_handle,
                    pe_id,
                    error,
                })
            }
        ),
        (pool_handle(), id(), error()).prop_map(|(pool_handle, pe_id, error)| {
            M::DeregistrationResponse(asap::DeregistrationResponse { pool_handle, pe_id, error })
        }),
        (any::<bool>(), pool_handle(), proptest::option::of(any::<u32>())).prop_map(
            |(subscribe, pool_handle, items_wanted)| {
                M::HandleResolution(asap::HandleResolution { subscribe, pool_handle, items_wanted })
            }
        ),
        (any::<bool>(), pool_handle(), proptest::option::of(policy()), pool_elements(), error())
            .prop_map(|(accept_updates, pool_handle, overall_policy, pool_elements, error)| {
                M::HandleResolutionResponse(asap::HandleResolutionResponse {
                    accept_updates,
                    pool_handle,
                    overall_policy,
                    pool_elements,
                    error,
                })
            }),
        (any::<bool>(), any::<u32>(), pool_handle(), proptest::option::of(id())).prop_map(
            |(home, server_id, pool_handle, pe_id)| M::EndpointKeepAlive(asap::EndpointKeepAlive {
                home,
                server_id: RegistrarId(server_id),
                pool_handle,
                pe_id
            })
        ),
        (pool_handle(), id()).prop_map(|(pool_handle, pe_id)| {
            M::EndpointKeepAliveAck(asap::EndpointKeepAliveAck { pool_handle, pe_id })
        }),
        (pool_handle(), id()).prop_map(|(pool_handle, pe_id)| {
            M::EndpointUnreachable(asap::EndpointUnreachable { pool_handle, pe_id })
        }),
        (any::<u32>(), vec(user_transport(), 0..3)).prop_map(|(id, transports)| {
            M::ServerAnnounce(asap::ServerAnnounce { server_id: RegistrarId(id), transports })
        }),
        vec(any::<u8>(), 0..40).prop_map(|cookie| M::Cookie(asap::Cookie { cookie })),
        vec(any::<u8>(), 0..40).prop_map(|cookie| M::CookieEcho(asap::CookieEcho { cookie })),
        (pool_handle(), pool_elements()).prop_map(|(pool_handle, pool_elements)| {
            M::BusinessCard(asap::BusinessCard { pool_handle, pool_elements })
        }),
        operational_error().prop_map(|error| M::Error(asap::Error { error })),
    ]
}

fn servers() -> impl Strategy<Value = enrp::Servers> {
    (any::<u32>(), any::<u32>())
        .prop_map(|(s, r)| enrp::Servers { sender: RegistrarId(s), receiver: RegistrarId(r) })
}

/// Any ENRP message.
pub fn enrp_message() -> impl Strategy<Value = enrp::Message> {
    use enrp::Message as M;
    let target = || any::<u32>().prop_map(RegistrarId);
    let pool_entry = (pool_handle(), vec(pool_element(), 1..3))
        .prop_map(|(pool_handle, pool_elements)| enrp::PoolEntry { pool_handle, pool_elements });
    prop_oneof![
        (
            any::<bool>(),
            servers(),
            proptest::option::of(any::<u16>().prop_map(PeChecksum)),
            proptest::option::of(server_information())
        )
            .prop_map(|(reply_required, servers, checksum, server_information)| {
                M::Presence(enrp::Presence {
                    reply_required,
                    servers,
                    checksum,
                    server_information,
                })
            }),
        (any::<bool>(), servers()).prop_map(|(own_children_only, servers)| {
            M::HandleTableRequest(enrp::HandleTableRequest { own_children_only, servers })
        }),
        (any::<bool>(), any::<bool>(), servers(), vec(pool_entry, 0..3)).prop_map(
            |(more_to_send, reject, servers, pools)| M::HandleTableResponse(
                enrp::HandleTableResponse { more_to_send, reject, servers, pools }
            )
        ),
        (any::<bool>(), servers(), any::<u16>(), pool_handle(), pool_element()).prop_map(
            |(takeover_suggested, servers, action, pool_handle, pool_element)| M::HandleUpdate(
                enrp::HandleUpdate {
                    takeover_suggested,
                    servers,
                    action: enrp::UpdateAction(action),
                    pool_handle,
                    pool_element
                }
            )
        ),
        servers().prop_map(|servers| M::ListRequest(enrp::ListRequest { servers })),
        (any::<bool>(), servers(), vec(server_information(), 0..3)).prop_map(
            |(reject, servers, peers)| M::ListResponse(enrp::ListResponse {
                reject,
                servers,
                peers
            })
        ),
        (servers(), target())
            .prop_map(|(servers, target)| M::InitTakeover(enrp::InitTakeover { servers, target })),
        (servers(), target()).prop_map(|(servers, target)| M::InitTakeoverAck(
            enrp::InitTakeoverAck { servers, target }
        )),
        (servers(), target()).prop_map(|(servers, target)| M::TakeoverServer(
            enrp::TakeoverServer { servers, target }
        )),
        (servers(), operational_error())
            .prop_map(|(servers, error)| M::Error(enrp::Error { servers, error })),
    ]
}

/// A fixed, plausible pool element (SCTP with two addresses, Least Used): for examples and
/// benches, where a generated one would make numbers noisy.
pub fn sample_pool_element(id: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0x0a0b_0c0d),
        registration_life_ms: 30_000,
        user_transport: UserTransport::Sctp(sample_sctp(8080)),
        policy: Policy::LeastUsed { load: id },
        asap_transport: Some(sample_sctp(3863)),
    }
}

fn sample_sctp(port: u16) -> SctpTransport {
    let addresses = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    SctpTransport {
        port,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&addresses).expect("two addresses fit"),
    }
}

/// One fixed example of every ASAP message type, in type order.
pub fn sample_asap_messages() -> Vec<asap::Message> {
    use asap::Message as M;
    let ph = PoolHandle::new(b"EchoPool").expect("valid handle");
    let id = PoolElementId(0x0102_0304);
    let server_id = RegistrarId(0x0a0b_0c0d);
    let error = OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE);
    vec![
        M::Registration(asap::Registration {
            pool_handle: ph,
            pool_element: sample_pool_element(1),
        }),
        M::Deregistration(asap::Deregistration { pool_handle: ph, pe_id: id }),
        M::RegistrationResponse(asap::RegistrationResponse {
            reject: false,
            pool_handle: ph,
            pe_id: id,
            error: None,
        }),
        M::DeregistrationResponse(asap::DeregistrationResponse {
            pool_handle: ph,
            pe_id: id,
            error: None,
        }),
        M::HandleResolution(asap::HandleResolution {
            subscribe: false,
            pool_handle: ph,
            items_wanted: Some(3),
        }),
        M::HandleResolutionResponse(asap::HandleResolutionResponse {
            accept_updates: false,
            pool_handle: ph,
            overall_policy: Some(Policy::LeastUsed { load: 0 }),
            pool_elements: (1..=3).map(sample_pool_element).collect(),
            error: None,
        }),
        M::EndpointKeepAlive(asap::EndpointKeepAlive {
            home: false,
            server_id,
            pool_handle: ph,
            pe_id: Some(id),
        }),
        M::EndpointKeepAliveAck(asap::EndpointKeepAliveAck { pool_handle: ph, pe_id: id }),
        M::EndpointUnreachable(asap::EndpointUnreachable { pool_handle: ph, pe_id: id }),
        M::ServerAnnounce(asap::ServerAnnounce {
            server_id,
            transports: vec![UserTransport::Sctp(sample_sctp(3863))],
        }),
        M::Cookie(asap::Cookie { cookie: vec![0x5a; 32] }),
        M::CookieEcho(asap::CookieEcho { cookie: vec![0x5a; 32] }),
        M::BusinessCard(asap::BusinessCard {
            pool_handle: ph,
            pool_elements: vec![sample_pool_element(1)],
        }),
        M::Error(asap::Error { error }),
    ]
}

/// One fixed example of every ENRP message type, in type order.
pub fn sample_enrp_messages() -> Vec<enrp::Message> {
    use enrp::Message as M;
    let ph = PoolHandle::new(b"EchoPool").expect("valid handle");
    let servers =
        enrp::Servers { sender: RegistrarId(0x0a0b_0c0d), receiver: RegistrarId(0x0101_0101) };
    let info =
        ServerInformation { server_id: RegistrarId(0x0a0b_0c0d), transport: sample_sctp(9901) };
    let target = RegistrarId(0x0202_0202);
    vec![
        M::Presence(enrp::Presence {
            reply_required: false,
            servers,
            checksum: Some(PeChecksum(0xabcd)),
            server_information: Some(info),
        }),
        M::HandleTableRequest(enrp::HandleTableRequest { own_children_only: false, servers }),
        M::HandleTableResponse(enrp::HandleTableResponse {
            more_to_send: false,
            reject: false,
            servers,
            pools: vec![enrp::PoolEntry {
                pool_handle: ph,
                pool_elements: (1..=3).map(sample_pool_element).collect(),
            }],
        }),
        M::HandleUpdate(enrp::HandleUpdate {
            takeover_suggested: false,
            servers,
            action: enrp::UpdateAction::ADD_PE,
            pool_handle: ph,
            pool_element: sample_pool_element(1),
        }),
        M::ListRequest(enrp::ListRequest { servers }),
        M::ListResponse(enrp::ListResponse { reject: false, servers, peers: vec![info] }),
        M::InitTakeover(enrp::InitTakeover { servers, target }),
        M::InitTakeoverAck(enrp::InitTakeoverAck { servers, target }),
        M::TakeoverServer(enrp::TakeoverServer { servers, target }),
        M::Error(enrp::Error {
            servers,
            error: OperationalError::single(ErrorCause::LACK_OF_RESOURCES),
        }),
    ]
}
