//! A PE's Pool Element parameter comes back out of the handlespace byte for byte, whether the
//! element keeps it or re-makes it from its fields.

use codec::asap::HandleResolutionResponseRef;
use codec::param::{AddressList, Policy, SctpTransport, UserTransport};
use codec::TransportUse;
use codec::{EncodedPoolElement, PoolElement, PoolElementSource, PoolHandle, RegistrarId};
use handlespace::{
    Config, Duration, Handlespace, Instant, Limits, PolicySettings, Protocol, Registration,
    TransportInfo,
};
use proptest::prelude::*;

const OWN: RegistrarId = RegistrarId(7);

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Goal: whatever parameter a registration carries, the element hands it back byte for
    // byte (for the writers, as bytes, as a `Wire`, and once removed), and keeps the bytes
    // exactly when its fields cannot re-make them, so that re-making never changes what goes
    // on the wire while the common shapes cost no block. Method: generated PEs (every
    // transport, IPv4 and IPv6, 1 to 16 addresses, every policy), half of them with the ASAP
    // Transport the registrar records (the association's peer, at the first user address),
    // made into registrations as the registrar makes them; registered, read back, re-registered
    // with the ASAP Transport changed (kept and re-made in turn), copied as a read replica
    // would be, and removed. The expected keeping is computed from the shape, independently.
    #[test]
    fn parameters_come_back_byte_for_byte(
        pe in pool_element(),
        asap in asap_transport(),
    ) {
        let mut hs = handlespace(OWN);
        let handle = PoolHandle::new(b"pool").unwrap();
        let first = pe.clone();
        let registration = registration(handle, &first);
        hs.register(Instant::from_micros(0), registration.clone()).unwrap();
        check(&hs, &handle, &first)?;

        let mut second = pe.clone();
        second.asap_transport = asap(&pe);
        hs.register(Instant::from_micros(1_000), self::registration(handle, &second)).unwrap();
        check(&hs, &handle, &second)?;

        // A read replica: another handlespace, an infinite life, no registrator.
        let mut replica = handlespace(RegistrarId(0));
        let mut copy = registration;
        copy.lifetime = Duration::INFINITE;
        copy.registrator = 0;
        replica.register(Instant::from_micros(0), copy).unwrap();
        check(&replica, &handle, &first)?;

        let removed = hs.deregister(&handle, second.id).unwrap();
        prop_assert_eq!(&removed.element.to_wire()[..], &second.encode()[..]);
        prop_assert_eq!(hs.parameters_kept(), 0);
        hs.check_invariants();
    }
}

/// The PE `pe` registered in `hs` hands back `pe.encode()` every way, and keeps it exactly
/// when its shape is not one the fields re-make.
fn check(hs: &Handlespace, handle: &PoolHandle, pe: &PoolElement) -> Result<(), TestCaseError> {
    let bytes = pe.encode();
    let element = hs.element(handle, pe.id).unwrap();
    prop_assert_eq!(&element.wire()[..], &bytes[..]);
    prop_assert_eq!(element.parameter().to_vec(), bytes.clone());
    prop_assert_eq!(element.parameter().buffer_len(), bytes.len());
    prop_assert_eq!(&element.to_wire()[..], &bytes[..]);
    prop_assert_eq!(element.registration_life_ms(), pe.registration_life_ms);
    prop_assert_eq!(element.asap_transport(), pe.asap_transport);
    let kept = !re_made(pe);
    prop_assert_eq!(element.keeps_parameter(), kept, "{:?}", pe);
    prop_assert_eq!(hs.parameters_kept(), u32::from(kept));
    hs.check_invariants();
    // What a pool user gets: the same answer from the stored bytes, from the element's
    // parameter, and from the element itself (the resolution path).
    let stored: codec::PoolElementRef<'_> = EncodedPoolElement::new_checked(&bytes).unwrap().into();
    let expected = answer(handle, &stored);
    prop_assert_eq!(answer(handle, &element.parameter()), expected.clone());
    prop_assert_eq!(answer(handle, element), expected);
    Ok(())
}

/// A Handle Resolution Response with `element` alone, homed at registrar 3.
fn answer<S: PoolElementSource + ?Sized>(handle: &PoolHandle, element: &S) -> Vec<u8> {
    let mut out = Vec::new();
    let response = HandleResolutionResponseRef {
        accept_updates: false,
        pool_handle: handle,
        overall_policy: None,
        pool_elements: &[],
    };
    response.emit_with_encoded(&mut out, [(element, RegistrarId(3))]);
    out
}

/// Whether the element's fields re-make `pe`: an ASAP Transport, if any, of a non-zero port,
/// data only, at the first user address alone; a DCCP service code of 0 (not kept).
fn re_made(pe: &PoolElement) -> bool {
    let first = match &pe.user_transport {
        UserTransport::Sctp(t) => t.addresses.as_slice()[0],
        UserTransport::Dccp { service_code, address, .. } => {
            if *service_code != 0 {
                return false;
            }
            *address
        }
        UserTransport::Tcp { address, .. }
        | UserTransport::Udp { address, .. }
        | UserTransport::UdpLite { address, .. } => *address,
        _ => unreachable!("filtered out"),
    };
    match &pe.asap_transport {
        None => true,
        Some(t) => {
            t.port != 0
                && t.transport_use == TransportUse::DATA_ONLY
                && t.addresses.as_slice() == [first]
        }
    }
}

/// PEs the registrar accepts (no opaque transport, no unknown policy), with the home filled
/// in as the registrar does; half with the ASAP Transport it records.
fn pool_element() -> impl Strategy<Value = PoolElement> {
    (codec::testing::pool_element(), any::<bool>(), any::<u16>(), any::<bool>())
        .prop_filter("accepted by the registrar", |(pe, ..)| {
            !matches!(pe.user_transport, UserTransport::Opaque(_))
                && !matches!(pe.policy, Policy::Unknown { .. })
        })
        .prop_map(|(mut pe, recorded, port, dccp_zero)| {
            pe.home_registrar = OWN;
            if recorded {
                pe.asap_transport = common(&pe, port | 1);
            }
            if let UserTransport::Dccp { service_code, .. } = &mut pe.user_transport {
                if dccp_zero {
                    *service_code = 0;
                }
            }
            pe
        })
}

type Change = fn(&PoolElement) -> Option<SctpTransport>;

/// A change of ASAP Transport for a re-registration: none, the recorded shape, or one the
/// fields do not re-make (another port of 0, control use, a second address).
fn asap_transport() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just((|_| None) as Change),
        Just((|pe| common(pe, 5_000)) as Change),
        Just((|pe| common(pe, 0)) as Change),
        Just(
            (|pe| {
                let mut t = common(pe, 5_000)?;
                t.transport_use = TransportUse::DATA_PLUS_CONTROL;
                Some(t)
            }) as Change
        ),
        Just(
            (|pe| {
                let mut t = common(pe, 5_000)?;
                t.addresses.push("192.0.2.77".parse().unwrap()).unwrap();
                Some(t)
            }) as Change
        ),
    ]
}

/// The ASAP Transport the registrar records for a PE registered from port `port` of its first
/// user address.
fn common(pe: &PoolElement, port: u16) -> Option<SctpTransport> {
    let first = match &pe.user_transport {
        UserTransport::Sctp(t) => t.addresses.as_slice()[0],
        UserTransport::Dccp { address, .. }
        | UserTransport::Tcp { address, .. }
        | UserTransport::Udp { address, .. }
        | UserTransport::UdpLite { address, .. } => *address,
        UserTransport::Opaque(_) => return None,
    };
    let addresses = AddressList::from_slice(&[first]).unwrap();
    Some(SctpTransport { port, transport_use: TransportUse::DATA_ONLY, addresses })
}

fn handlespace(own: RegistrarId) -> Handlespace {
    let limits = Limits { pools_max: 4, pool_elements_max: 4, ..Limits::default() };
    Handlespace::new(own, Config { limits, ..Config::default() })
}

/// The registration the registrar makes of `pe` (`registrar/src/proto/convert.rs`).
fn registration(pool_handle: PoolHandle, pe: &PoolElement) -> Registration {
    Registration {
        pool_handle,
        id: pe.id,
        home: pe.home_registrar,
        policy: policy_settings(&pe.policy),
        transport: transport_info(&pe.user_transport),
        lifetime: Duration::from_secs(30),
        registrator: 1,
        wire: pe.encode().into(),
    }
}

fn policy_settings(policy: &Policy) -> PolicySettings {
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
        _ => unreachable!("filtered out"),
    }
    s
}

fn transport_info(transport: &UserTransport) -> TransportInfo {
    let one = |protocol, port, transport_use, address| TransportInfo {
        protocol,
        port,
        transport_use,
        addresses: Box::new([address]),
    };
    let data_only = TransportUse::DATA_ONLY;
    match transport {
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
        _ => unreachable!("filtered out"),
    }
}
