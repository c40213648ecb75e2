//! Goal: `parse(emit(x)) == x` for generated messages and parameters of every type, and the
//! emitted length always equals `buffer_len()`. Method: proptest with the generators in
//! `codec::testing`; emit buffers are pre-filled with 0xa5 so a byte never written shows up as
//! a mismatch on re-parse.

use codec::asap::HandleResolutionResponseRef;
use codec::enrp::{HandleTableResponseRef, HandleUpdateRef, Servers, UpdateAction};
use codec::param::AddressList;
use codec::param::Parameter;
use codec::testing;
use codec::{EncodedPoolElement, Policy, PoolElement, PoolElementRef, PoolHandle, RegistrarId};
use codec::{SctpTransport, TransportUse, UserTransport};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn asap_messages_round_trip(m in testing::asap_message()) {
        let mut buf = vec![0xa5; m.buffer_len()];
        prop_assert_eq!(m.emit(&mut buf), buf.len());
        prop_assert_eq!(buf.len() % 4, 0);
        prop_assert_eq!(codec::asap::Message::parse(&buf), Ok(m));
    }

    #[test]
    fn enrp_messages_round_trip(m in testing::enrp_message()) {
        let mut buf = vec![0xa5; m.buffer_len()];
        prop_assert_eq!(m.emit(&mut buf), buf.len());
        prop_assert_eq!(codec::enrp::Message::parse(&buf), Ok(m));
    }

    #[test]
    fn parameters_round_trip(p in prop_oneof![
        testing::pool_element().prop_map(Parameter::PoolElement),
        testing::policy().prop_map(Parameter::Policy),
        testing::user_transport().prop_map(Parameter::Transport),
        testing::server_information().prop_map(Parameter::ServerInformation),
        testing::operational_error().prop_map(Parameter::OperationalError),
        testing::ip_address().prop_map(Parameter::Address),
        testing::pool_handle().prop_map(Parameter::PoolHandle),
    ]) {
        let mut buf = vec![0xa5; p.buffer_len()];
        prop_assert_eq!(p.emit(&mut buf), buf.len());
        prop_assert_eq!(Parameter::parse(&buf), Ok(p));
    }

    /// Every prefix of a valid message and every smaller message length is an error (or, for
    /// a prefix that only drops padding, the same message), never a panic.
    #[test]
    fn truncated_asap_messages_fail_cleanly(m in testing::asap_message()) {
        let buf = m.emit_to_vec();
        let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        for cut in 0..buf.len() {
            let r = codec::asap::Message::parse(&buf[..cut]);
            if cut < length {
                prop_assert!(r.is_err(), "cut {}", cut);
            } else {
                prop_assert_eq!(r.as_ref(), Ok(&m));
            }
        }
        for shorter in 0..length {
            let mut b = buf.clone();
            b[2..4].copy_from_slice(&u16::try_from(shorter).unwrap().to_be_bytes());
            prop_assert!(codec::asap::Message::parse(&b).is_err(), "length {}", shorter);
        }
    }

    #[test]
    fn truncated_enrp_messages_fail_cleanly(m in testing::enrp_message()) {
        let buf = m.emit_to_vec();
        let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        for cut in 0..buf.len() {
            let r = codec::enrp::Message::parse(&buf[..cut]);
            if cut < length {
                prop_assert!(r.is_err(), "cut {}", cut);
            } else {
                prop_assert_eq!(r.as_ref(), Ok(&m));
            }
        }
        for shorter in 0..length {
            let mut b = buf.clone();
            b[2..4].copy_from_slice(&u16::try_from(shorter).unwrap().to_be_bytes());
            prop_assert!(codec::enrp::Message::parse(&b).is_err(), "length {}", shorter);
        }
    }

    /// Goal: the field encoders (`PoolElementFields` for any shape, `CompactPoolElement` for
    /// the common one: what the registrar writes from when it keeps a PE's fields rather than
    /// its bytes) write exactly what `PoolElement::encode` writes, and every writer fed any form
    /// writes the same message. Method: generated PEs (every transport but opaque data, IPv4
    /// and IPv6, 1 to 16 addresses, every known policy, with and without an ASAP Transport; a
    /// third of them in the compact shape) encoded every way into 0xa5-filled buffers; the
    /// accessors the registrar reads a stored parameter with; then a Handle Resolution
    /// Response, a Handle Update and a Handle Table Response from each form, with another home.
    #[test]
    fn pool_element_fields_encode_as_the_repr(
        pe in prop_oneof![2 => testing::pool_element(), 1 => compact_shaped()],
        home in any::<u32>(),
        handle in testing::pool_handle(),
    ) {
        let bytes = pe.encode();
        let Some(fields) = pe.fields() else {
            let opaque = matches!(pe.user_transport, UserTransport::Opaque(_));
            let unknown = matches!(pe.policy, Policy::Unknown { .. });
            prop_assert!(opaque || unknown, "only these have no field form");
            return Ok(());
        };
        prop_assert_eq!(fields.buffer_len(), bytes.len());
        let mut buf = vec![0xa5; fields.buffer_len()];
        prop_assert_eq!(fields.emit(&mut buf), buf.len());
        prop_assert_eq!(&buf, &bytes);
        prop_assert_eq!(fields.encode(), bytes.clone());
        prop_assert!(fields.emits(&bytes));
        for at in [0, 7, bytes.len() - 1] {
            let mut other = bytes.clone();
            other[at] ^= 0x10;
            prop_assert!(!fields.emits(&other), "a changed byte {} is noticed", at);
        }
        prop_assert!(!fields.emits(&bytes[..bytes.len() - 4]));
        let encoded = EncodedPoolElement::new_checked(&bytes).unwrap();
        prop_assert_eq!(encoded.registration_life_ms(), pe.registration_life_ms);
        prop_assert_eq!(encoded.asap_transport(), pe.asap_transport);

        let compact = pe.compact();
        let [user] = sctp_addresses(&pe) else {
            prop_assert!(compact.is_none(), "one address");
            return check_forms(&pe, home, &handle, &[encoded.into(), fields.into()]);
        };
        let shaped = user.is_ipv4() && pe.asap_transport.as_ref().is_none_or(|t| {
            t.port != 0 && t.transport_use == TransportUse::DATA_ONLY
                && t.addresses.as_slice() == [*user]
        });
        prop_assert_eq!(compact.is_some(), shaped);
        if let Some(compact) = compact {
            prop_assert_eq!(compact.buffer_len(), bytes.len());
            prop_assert!(compact.emits(&bytes));
            prop_assert!(!compact.emits(&bytes[..bytes.len() - 4]));
            let mut other = bytes.clone();
            other[9] ^= 0x01;
            prop_assert!(!compact.emits(&other), "another home is noticed");
        }
        let mut forms = vec![encoded.into(), fields.into()];
        forms.extend(compact.map(PoolElementRef::from));
        check_forms(&pe, home, &handle, &forms)?;
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = codec::asap::Message::parse(&bytes);
        let _ = codec::enrp::Message::parse(&bytes);
        let _ = Parameter::parse(&bytes);
        let _ = codec::asap::HandleResolutionView::new_checked(&bytes[..]);
    }
}

/// Every writer writes the same message from each form of `pe`, and a pool user gets `pe` with
/// `home` and without its ASAP Transport.
fn check_forms(
    pe: &PoolElement,
    home: u32,
    handle: &PoolHandle,
    forms: &[PoolElementRef<'_>],
) -> Result<(), TestCaseError> {
    let bytes = pe.encode();
    let home = RegistrarId(home);
    let mut answers: Vec<[Vec<u8>; 3]> = Vec::new();
    for &element in forms {
        prop_assert_eq!(element.buffer_len(), bytes.len());
        prop_assert_eq!(element.to_vec(), bytes.clone());
        prop_assert!(element.emits(&bytes));
        let mut resolution = vec![0xa5; 5];
        let response = HandleResolutionResponseRef {
            accept_updates: false,
            pool_handle: handle,
            overall_policy: None,
            pool_elements: &[],
        };
        response.emit_with_encoded(&mut resolution, [(&element, home)]);
        let servers = Servers { sender: RegistrarId(1), receiver: RegistrarId(0) };
        let update = HandleUpdateRef {
            takeover_suggested: false,
            servers,
            action: UpdateAction::ADD_PE,
            pool_handle: handle,
            pool_element: element,
            home,
        };
        let mut table = vec![0xa5; 3];
        let page = HandleTableResponseRef { more_to_send: false, reject: false, servers };
        page.emit_with_encoded(&mut table, [(handle, &element, home)]);
        answers.push([resolution, update.emit_to_vec(), table]);
    }
    for other in &answers[1..] {
        prop_assert_eq!(&answers[0], other);
    }
    let mut for_users = pe.clone();
    for_users.home_registrar = home;
    for_users.asap_transport = None;
    let parsed = codec::asap::Message::parse(&answers[0][0]);
    let Ok(codec::asap::Message::HandleResolutionResponse(r)) = parsed else {
        panic!("{parsed:?}");
    };
    prop_assert_eq!(r.pool_elements, vec![for_users]);
    Ok(())
}

/// The addresses of `pe`'s SCTP user transport (none for another transport).
fn sctp_addresses(pe: &PoolElement) -> &[std::net::IpAddr] {
    match &pe.user_transport {
        UserTransport::Sctp(t) => t.addresses.as_slice(),
        _ => &[],
    }
}

/// PEs of the compact shape, or one step from it: an SCTP user transport with one IPv4
/// address, and no ASAP Transport or one at that address (data only, any port, 0 included);
/// a few with another address or use, which are not compact.
fn compact_shaped() -> impl Strategy<Value = PoolElement> {
    (testing::pool_element(), any::<[u8; 4]>(), any::<u16>(), 0..8u8).prop_map(
        |(mut pe, ip, port, asap)| {
            let ip = std::net::IpAddr::V4(ip.into());
            let addresses = AddressList::from_slice(&[ip]).unwrap();
            let transport_use = TransportUse(u16::from(asap == 6));
            pe.user_transport = UserTransport::Sctp(SctpTransport {
                port,
                transport_use: TransportUse(u16::from(asap % 2)),
                addresses,
            });
            let other = AddressList::from_slice(&["192.0.2.1".parse().unwrap()]).unwrap();
            pe.asap_transport = match asap {
                0 | 1 => None,
                7 => Some(SctpTransport { port: port ^ 1, transport_use, addresses: other }),
                _ => Some(SctpTransport { port: port ^ 1, transport_use, addresses }),
            };
            pe
        },
    )
}

/// Goal: the fixed samples the benches use are valid and round-trip, one per message type.
#[test]
fn samples_cover_every_type_and_round_trip() {
    let asap = testing::sample_asap_messages();
    let enrp = testing::sample_enrp_messages();
    assert_eq!(asap.len(), 14);
    assert_eq!(enrp.len(), 10);
    for (i, m) in asap.iter().enumerate() {
        assert_eq!(m.message_type().0, u8::try_from(i + 1).unwrap());
        assert_eq!(codec::asap::Message::parse(&m.emit_to_vec()).as_ref(), Ok(m));
    }
    for (i, m) in enrp.iter().enumerate() {
        assert_eq!(m.message_type().0, u8::try_from(i + 1).unwrap());
        assert_eq!(codec::enrp::Message::parse(&m.emit_to_vec()).as_ref(), Ok(m));
    }
}
