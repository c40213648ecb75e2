//! Per-message unit tests on byte strings written down from the RFC figures (RFC 5352 §2.2,
//! RFC 5353 §2, RFC 5354 §3, RFC 5356 §4-§5). For each message: deconstruct (header fields via
//! the view), parse (bytes -> Repr), construct and emit (Repr -> bytes, into a buffer filled
//! with 0xa5 so that a field never written shows up).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use codec::asap;
use codec::enrp::{self, Servers, UpdateAction};
use codec::param::{
    AddressList, Cause, CauseInfo, OperationalError, PeChecksum, ServerInformation,
};
use codec::{
    ErrorCause, MessageView, Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId,
    SctpTransport, TransportUse, UserTransport,
};
use common::hex;

// Building blocks, each annotated with its RFC 5354 section.
/// §3.9 Pool Handle "EchoPool": type 0x9, length 12.
const POOL_HANDLE: &str = "0009 000c 4563686f 506f6f6c";
/// §3.14 PE Identifier 0x01020304.
const PE_ID: &str = "000e 0008 01020304";
/// §3.10 Pool Element: id, home registrar, life 90,000 ms, §3.4 SCTP transport (port 8080,
/// data only, §3.1 192.0.2.1), §3.8 + RFC 5356 §4.2 Weighted Round Robin weight 5. Length 44.
const POOL_ELEMENT: &str = "000a 002c 01020304 0a0b0c0d 00015f90
    0004 0010 1f90 0000 0001 0008 c0000201
    0008 000c 00000002 00000005";
/// §3.12 Operational Error with one §3.12.11 Unknown Pool Handle cause.
const ERROR_UNKNOWN_POOL: &str = "000c 0008 0009 0004";
/// §3.11 Server Information: id 0x0a0b0c0d, SCTP port 9901, 127.0.0.1.
const SERVER_INFO: &str = "000b 0018 0a0b0c0d 0004 0010 26ad 0000 0001 0008 7f000001";

fn pool_handle() -> PoolHandle {
    PoolHandle::new(b"EchoPool").unwrap()
}

fn sctp(port: u16, address: [u8; 4]) -> SctpTransport {
    SctpTransport {
        port,
        transport_use: TransportUse::DATA_ONLY,
        addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::from(address))]).unwrap(),
    }
}

fn pool_element() -> PoolElement {
    PoolElement {
        id: PoolElementId(0x0102_0304),
        home_registrar: RegistrarId(0x0a0b_0c0d),
        registration_life_ms: 90_000,
        user_transport: UserTransport::Sctp(sctp(8080, [192, 0, 2, 1])),
        policy: Policy::WeightedRoundRobin { weight: 5 },
        asap_transport: None,
    }
}

fn error_unknown_pool() -> OperationalError {
    OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE)
}

fn server_info() -> ServerInformation {
    ServerInformation { server_id: RegistrarId(0x0a0b_0c0d), transport: sctp(9901, [127, 0, 0, 1]) }
}

fn servers() -> Servers {
    Servers { sender: RegistrarId(0x0a0b_0c0d), receiver: RegistrarId(0x0101_0101) }
}

/// Checks deconstruct, parse, construct and emit for one ASAP message.
fn check_asap(bytes_hex: &str, message_type: u8, flags: u8, expected: asap::Message) {
    let bytes = hex(bytes_hex);
    // Deconstruct.
    let view = MessageView::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.message_type(), message_type);
    assert_eq!(view.flags(), flags);
    let length = usize::from(view.length());
    assert!(length <= bytes.len() && bytes.len() - length < 4, "only padding follows");
    // Parse.
    let parsed = asap::Message::parse(&bytes).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(parsed.message_type(), asap::MessageType(message_type));
    // Construct and emit.
    let mut buf = vec![0xa5; expected.buffer_len()];
    assert_eq!(expected.emit(&mut buf), bytes.len());
    assert_eq!(buf, bytes);
}

/// Same for ENRP.
fn check_enrp(bytes_hex: &str, message_type: u8, flags: u8, expected: enrp::Message) {
    let bytes = hex(bytes_hex);
    let view = MessageView::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.message_type(), message_type);
    assert_eq!(view.flags(), flags);
    let parsed = enrp::Message::parse(&bytes).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(parsed.message_type(), enrp::MessageType(message_type));
    let mut buf = vec![0xa5; expected.buffer_len()];
    assert_eq!(expected.emit(&mut buf), bytes.len());
    assert_eq!(buf, bytes);
}

// RFC 5352 §2.2.1: Pool Handle, Pool Element.
#[test]
fn asap_registration() {
    let bytes = format!("01 00 003c {POOL_HANDLE} {POOL_ELEMENT}");
    let m = asap::Registration { pool_handle: pool_handle(), pool_element: pool_element() };
    check_asap(&bytes, 0x01, 0, asap::Message::Registration(m));
}

// RFC 5352 §2.2.2: Pool Handle, PE Identifier.
#[test]
fn asap_deregistration() {
    let m = asap::Deregistration { pool_handle: pool_handle(), pe_id: PoolElementId(0x0102_0304) };
    check_asap(
        &format!("02 00 0018 {POOL_HANDLE} {PE_ID}"),
        0x02,
        0,
        asap::Message::Deregistration(m),
    );
}

// RFC 5352 §2.2.3: R flag, Pool Handle, PE Identifier, Operational Error.
#[test]
fn asap_registration_response_rejected() {
    let m = asap::RegistrationResponse {
        reject: true,
        pool_handle: pool_handle(),
        pe_id: PoolElementId(0x0102_0304),
        error: Some(error_unknown_pool()),
    };
    let bytes = format!("03 01 0020 {POOL_HANDLE} {PE_ID} {ERROR_UNKNOWN_POOL}");
    check_asap(&bytes, 0x03, 0x01, asap::Message::RegistrationResponse(m));
}

// RFC 5352 §2.2.4.
#[test]
fn asap_deregistration_response() {
    let m = asap::DeregistrationResponse {
        pool_handle: pool_handle(),
        pe_id: PoolElementId(0x0102_0304),
        error: None,
    };
    let bytes = format!("04 00 0018 {POOL_HANDLE} {PE_ID}");
    check_asap(&bytes, 0x04, 0, asap::Message::DeregistrationResponse(m));
}

// RFC 5352 §2.2.5 with the S flag, plus the Handle Resolution option (0x803f, 3 items).
#[test]
fn asap_handle_resolution() {
    let m = asap::HandleResolution {
        subscribe: true,
        pool_handle: pool_handle(),
        items_wanted: Some(3),
    };
    let bytes = format!("05 01 0018 {POOL_HANDLE} 803f 0008 00000003");
    check_asap(&bytes, 0x05, 0x01, asap::Message::HandleResolution(m));
    let view = asap::HandleResolutionView::new_checked(hex(&bytes)).unwrap();
    assert!(view.subscribe());
    assert_eq!(view.pool_handle(), pool_handle());
    assert_eq!(view.items_wanted(), Some(3));
}

// RFC 5352 §2.2.5: the option under its draft type 0x003f parses the same.
#[test]
fn asap_handle_resolution_option_draft_type() {
    let bytes = hex(&format!("05 00 0018 {POOL_HANDLE} 003f 0008 00000007"));
    let asap::Message::HandleResolution(m) = asap::Message::parse(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(m.items_wanted, Some(7));
}

// RFC 5352 §2.2.6: A flag, Pool Handle, overall policy (RFC 5356 §4.1 Round Robin), PEs.
#[test]
fn asap_handle_resolution_response() {
    let m = asap::HandleResolutionResponse {
        accept_updates: true,
        pool_handle: pool_handle(),
        overall_policy: Some(Policy::RoundRobin),
        pool_elements: vec![pool_element()],
        error: None,
    };
    let bytes = format!("06 01 0044 {POOL_HANDLE} 0008 0008 00000001 {POOL_ELEMENT}");
    check_asap(&bytes, 0x06, 0x01, asap::Message::HandleResolutionResponse(m.clone()));
    // The borrowed fast path writes the same bytes.
    let pe = pool_element();
    let r = asap::HandleResolutionResponseRef {
        accept_updates: true,
        pool_handle: &m.pool_handle,
        overall_policy: Some(&Policy::RoundRobin),
        pool_elements: &[&pe],
    };
    let mut buf = vec![0xa5; r.buffer_len()];
    r.emit(&mut buf);
    assert_eq!(buf, hex(&bytes));
}

// Goal: the registrar's answer path (PEs encoded once at registration, or encoded from their
// fields per answer; home rewritten per answer) writes exactly what the owned Repr emits.
// Method: PEs whose home and padding differ, emitted through `emit_with_encoded` both as
// stored bytes and as fields, into a dirty buffer with another home, compared with the Repr
// carrying that home; then zero PEs, and the checks `EncodedPoolElement` makes.
#[test]
fn asap_handle_resolution_response_from_encoded_elements() {
    let mut odd = pool_element();
    odd.id = codec::PoolElementId(7);
    // Registrars keep the ASAP Transport (ENRP carries it); pool users never see it.
    odd.asap_transport = Some(sctp(50_205, [192, 0, 2, 9]));
    let handle = codec::PoolHandle::new(b"abc").unwrap(); // 3 bytes: padded handle TLV
    let reprs = [pool_element(), odd.clone()];
    let stored: Vec<Vec<u8>> = reprs.iter().map(|pe| pe.encode()).collect();
    let encoded: Vec<codec::PoolElementRef<'_>> =
        stored.iter().map(|b| codec::EncodedPoolElement::new_checked(b).unwrap().into()).collect();
    let fields: Vec<codec::PoolElementRef<'_>> =
        reprs.iter().map(|pe| pe.fields().unwrap().into()).collect();
    let home = RegistrarId(0x0102_0304);
    let mut expected_elements = [pool_element(), odd];
    expected_elements.iter_mut().for_each(|pe| {
        pe.home_registrar = home;
        pe.asap_transport = None;
    });
    for count in 0..=2 {
        let owned = asap::HandleResolutionResponse {
            accept_updates: false,
            pool_handle: handle,
            overall_policy: Some(Policy::RoundRobin),
            pool_elements: expected_elements[..count].to_vec(),
            error: None,
        };
        let r = asap::HandleResolutionResponseRef {
            accept_updates: false,
            pool_handle: &handle,
            overall_policy: Some(&Policy::RoundRobin),
            pool_elements: &[],
        };
        for (form, elements) in [("encoded", &encoded), ("fields", &fields)] {
            let mut out = vec![0xa5; 300];
            r.emit_with_encoded(&mut out, elements[..count].iter().map(|e| (e, home)));
            assert_eq!(out, owned.emit_to_vec(), "{count} PEs, {form}");
            let parsed = asap::Message::parse(&out).unwrap();
            assert_eq!(parsed, asap::Message::HandleResolutionResponse(owned.clone()));
        }
    }
    let good = &stored[0];
    assert_eq!(
        codec::EncodedPoolElement::new_checked(good).unwrap().id(),
        PoolElementId(0x0102_0304)
    );
    assert!(codec::EncodedPoolElement::new_checked(&good[..good.len() - 1]).is_err());
    assert!(codec::EncodedPoolElement::new_checked(&good[..15]).is_err());
    let mut wrong_type = good.clone();
    wrong_type[1] = 0x0b;
    assert!(codec::EncodedPoolElement::new_checked(&wrong_type).is_err());
}

// RFC 5352 §2.2.7: H flag, Server Identifier, Pool Handle.
#[test]
fn asap_endpoint_keep_alive() {
    let m = asap::EndpointKeepAlive {
        home: true,
        server_id: RegistrarId(0x0a0b_0c0d),
        pool_handle: pool_handle(),
        pe_id: None,
    };
    let bytes = format!("07 01 0014 0a0b0c0d {POOL_HANDLE}");
    check_asap(&bytes, 0x07, 0x01, asap::Message::EndpointKeepAlive(m));
}

// RFC 5352 §2.2.8.
#[test]
fn asap_endpoint_keep_alive_ack() {
    let m = asap::EndpointKeepAliveAck {
        pool_handle: pool_handle(),
        pe_id: PoolElementId(0x0102_0304),
    };
    check_asap(
        &format!("08 00 0018 {POOL_HANDLE} {PE_ID}"),
        0x08,
        0,
        asap::Message::EndpointKeepAliveAck(m),
    );
}

// RFC 5352 §2.2.9.
#[test]
fn asap_endpoint_unreachable() {
    let m =
        asap::EndpointUnreachable { pool_handle: pool_handle(), pe_id: PoolElementId(0x0102_0304) };
    check_asap(
        &format!("09 00 0018 {POOL_HANDLE} {PE_ID}"),
        0x09,
        0,
        asap::Message::EndpointUnreachable(m),
    );
}

// RFC 5352 §2.2.10: Server Identifier and an SCTP transport.
#[test]
fn asap_server_announce() {
    let m = asap::ServerAnnounce {
        server_id: RegistrarId(0x0a0b_0c0d),
        transports: vec![UserTransport::Sctp(sctp(3863, [192, 0, 2, 1]))],
    };
    let bytes = "0a 00 0018 0a0b0c0d 0004 0010 0f17 0000 0001 0008 c0000201";
    check_asap(bytes, 0x0a, 0, asap::Message::ServerAnnounce(m));
}

// RFC 5352 §2.2.11: a 3-byte cookie: parameter length 7, message length 11, one padding byte
// on the wire that neither length counts (RFC 5354 §2).
#[test]
fn asap_cookie() {
    let m = asap::Cookie { cookie: b"abc".to_vec() };
    check_asap("0b 00 000b 000d 0007 616263 00", 0x0b, 0, asap::Message::Cookie(m));
}

// RFC 5352 §2.2.12.
#[test]
fn asap_cookie_echo() {
    let m = asap::CookieEcho { cookie: b"abcd".to_vec() };
    check_asap("0c 00 000c 000d 0008 61626364", 0x0c, 0, asap::Message::CookieEcho(m));
}

// RFC 5352 §2.2.13.
#[test]
fn asap_business_card() {
    let m = asap::BusinessCard { pool_handle: pool_handle(), pool_elements: vec![pool_element()] };
    check_asap(
        &format!("0d 00 003c {POOL_HANDLE} {POOL_ELEMENT}"),
        0x0d,
        0,
        asap::Message::BusinessCard(m),
    );
}

// RFC 5352 §2.2.14 with an RFC 5354 §3.12.2 Unrecognized Parameter cause quoting the TLV.
#[test]
fn asap_error() {
    let m = asap::Error {
        error: OperationalError {
            causes: vec![Cause {
                code: ErrorCause::UNRECOGNIZED_PARAMETER,
                info: CauseInfo::Parameter(hex("c123 0008 deadbeef")),
            }],
        },
    };
    check_asap(
        "0e 00 0014 000c 0010 0001 000c c123 0008 deadbeef",
        0x0e,
        0,
        asap::Message::Error(m),
    );
}

// RFC 5353 §2.1: R flag, ids, PE checksum (length 6 + 2 padding), server information.
#[test]
fn enrp_presence() {
    let m = enrp::Presence {
        reply_required: true,
        servers: Servers { sender: RegistrarId(0x0a0b_0c0d), receiver: RegistrarId(0) },
        checksum: Some(PeChecksum(0xabcd)),
        server_information: Some(server_info()),
    };
    let bytes = format!("01 01 002c 0a0b0c0d 00000000 000f 0006 abcd 0000 {SERVER_INFO}");
    check_enrp(&bytes, 0x01, 0x01, enrp::Message::Presence(m));
}

// RFC 5353 §2.2: W flag, length 0xC.
#[test]
fn enrp_handle_table_request() {
    let m = enrp::HandleTableRequest { own_children_only: true, servers: servers() };
    check_enrp("02 01 000c 0a0b0c0d 01010101", 0x02, 0x01, enrp::Message::HandleTableRequest(m));
}

// RFC 5353 §2.3: M flag (bit 1), one pool entry.
#[test]
fn enrp_handle_table_response() {
    let m = enrp::HandleTableResponse {
        more_to_send: true,
        reject: false,
        servers: servers(),
        pools: vec![enrp::PoolEntry {
            pool_handle: pool_handle(),
            pool_elements: vec![pool_element()],
        }],
    };
    let bytes = format!("03 02 0044 0a0b0c0d 01010101 {POOL_HANDLE} {POOL_ELEMENT}");
    check_enrp(&bytes, 0x03, 0x02, enrp::Message::HandleTableResponse(m));
}

// RFC 5353 §2.4 with the takeover-suggested flag, DEL_PE.
#[test]
fn enrp_handle_update() {
    let m = enrp::HandleUpdate {
        takeover_suggested: true,
        servers: servers(),
        action: UpdateAction::DEL_PE,
        pool_handle: pool_handle(),
        pool_element: pool_element(),
    };
    let bytes = format!("04 01 0048 0a0b0c0d 01010101 0001 0000 {POOL_HANDLE} {POOL_ELEMENT}");
    check_enrp(&bytes, 0x04, 0x01, enrp::Message::HandleUpdate(m));
}

// RFC 5353 §2.5.
#[test]
fn enrp_list_request() {
    check_enrp(
        "05 00 000c 0a0b0c0d 01010101",
        0x05,
        0,
        enrp::Message::ListRequest(enrp::ListRequest { servers: servers() }),
    );
}

// RFC 5353 §2.6.
#[test]
fn enrp_list_response() {
    let m = enrp::ListResponse { reject: false, servers: servers(), peers: vec![server_info()] };
    check_enrp(
        &format!("06 00 0024 0a0b0c0d 01010101 {SERVER_INFO}"),
        0x06,
        0,
        enrp::Message::ListResponse(m),
    );
}

// RFC 5353 §2.7-§2.9.
#[test]
fn enrp_takeover_messages() {
    let target = RegistrarId(0x0202_0202);
    let s = servers();
    check_enrp(
        "07 00 0010 0a0b0c0d 01010101 02020202",
        0x07,
        0,
        enrp::Message::InitTakeover(enrp::InitTakeover { servers: s, target }),
    );
    check_enrp(
        "08 00 0010 0a0b0c0d 01010101 02020202",
        0x08,
        0,
        enrp::Message::InitTakeoverAck(enrp::InitTakeoverAck { servers: s, target }),
    );
    check_enrp(
        "09 00 0010 0a0b0c0d 01010101 02020202",
        0x09,
        0,
        enrp::Message::TakeoverServer(enrp::TakeoverServer { servers: s, target }),
    );
}

// RFC 5353 §2.10.
#[test]
fn enrp_error() {
    let m = enrp::Error { servers: servers(), error: error_unknown_pool() };
    check_enrp(
        &format!("0a 00 0014 0a0b0c0d 01010101 {ERROR_UNKNOWN_POOL}"),
        0x0a,
        0,
        enrp::Message::Error(m),
    );
}

// RFC 5356 §4-§5 and RSPLIB's private range: every policy has its own value layout.
#[test]
fn every_policy_layout() {
    use codec::param::Parameter;
    let cases: Vec<(&str, Policy)> = vec![
        ("0008 0008 00000001", Policy::RoundRobin),
        ("0008 000c 00000002 00000007", Policy::WeightedRoundRobin { weight: 7 }),
        ("0008 0008 00000003", Policy::Random),
        ("0008 000c 00000004 00000007", Policy::WeightedRandom { weight: 7 }),
        ("0008 000c 00000005 00000009", Policy::Priority { priority: 9 }),
        ("0008 000c 40000001 11111111", Policy::LeastUsed { load: 0x1111_1111 }),
        (
            "0008 0010 40000002 11111111 22222222",
            Policy::LeastUsedDegradation { load: 0x1111_1111, load_degradation: 0x2222_2222 },
        ),
        (
            "0008 0010 40000003 11111111 22222222",
            Policy::PriorityLeastUsed { load: 0x1111_1111, load_degradation: 0x2222_2222 },
        ),
        ("0008 000c 40000004 11111111", Policy::RandomizedLeastUsed { load: 0x1111_1111 }),
        ("0008 000c b0001001 11111111", Policy::RandomizedPriorityLeastUsed { load: 0x1111_1111 }),
        (
            "0008 0010 b0001002 11111111 22222222",
            Policy::RandomizedLeastUsedDegradation {
                load: 0x1111_1111,
                load_degradation: 0x2222_2222,
            },
        ),
        (
            "0008 0010 b0001003 11111111 22222222",
            Policy::PriorityLeastUsedDegradation {
                load: 0x1111_1111,
                load_degradation: 0x2222_2222,
            },
        ),
        (
            "0008 0010 b0001004 11111111 22222222",
            Policy::RandomizedPriorityLeastUsedDegradation {
                load: 0x1111_1111,
                load_degradation: 0x2222_2222,
            },
        ),
        (
            "0008 0014 b0002001 00000005 33333333 00000064",
            Policy::WeightedRandomDpf { weight: 5, weight_dpf: 0x3333_3333, distance: 100 },
        ),
        (
            "0008 0014 b0002002 11111111 33333333 00000064",
            Policy::LeastUsedDpf { load: 0x1111_1111, load_dpf: 0x3333_3333, distance: 100 },
        ),
        (
            "0008 0018 b0002003 11111111 22222222 33333333 00000064",
            Policy::LeastUsedDegradationDpf {
                load: 0x1111_1111,
                load_degradation: 0x2222_2222,
                load_dpf: 0x3333_3333,
                distance: 100,
            },
        ),
        (
            "0008 000b 80000001 aabbcc 00",
            Policy::Unknown {
                policy_type: codec::PolicyType(0x8000_0001),
                value: vec![0xaa, 0xbb, 0xcc],
            },
        ),
    ];
    for (bytes, policy) in cases {
        let bytes = hex(bytes);
        assert_eq!(Parameter::parse(&bytes), Ok(Parameter::Policy(policy.clone())), "{bytes:02x?}");
        let p = Parameter::Policy(policy);
        let mut buf = vec![0xa5; p.buffer_len()];
        p.emit(&mut buf);
        assert_eq!(buf, bytes);
    }
}

// RFC 5354 §3.3, §3.5-§3.7, §3.2, §3.16: the other transports and IPv6.
#[test]
fn every_transport_layout() {
    use codec::param::Parameter;
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let v6_hex = "0002 0014 20010db8 00000000 00000000 00000001";
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let cases: Vec<(String, UserTransport)> = vec![
        (
            format!("0003 0020 0050 0000 00000abc {v6_hex}"),
            UserTransport::Dccp { port: 80, service_code: 0xabc, address: v6 },
        ),
        (
            "0005 0010 0050 0001 0001 0008 c0000201".into(),
            UserTransport::Tcp {
                port: 80,
                transport_use: TransportUse::DATA_PLUS_CONTROL,
                address: v4,
            },
        ),
        (
            "0006 0010 0050 0000 0001 0008 c0000201".into(),
            UserTransport::Udp { port: 80, address: v4 },
        ),
        (format!("0007 001c 0050 0000 {v6_hex}"), UserTransport::UdpLite { port: 80, address: v6 }),
        ("0010 0006 beef 0000".into(), UserTransport::Opaque(vec![0xbe, 0xef])),
    ];
    for (bytes, transport) in cases {
        let bytes = hex(&bytes);
        let p = Parameter::Transport(transport);
        assert_eq!(Parameter::parse(&bytes).as_ref(), Ok(&p));
        let mut buf = vec![0xa5; p.buffer_len()];
        p.emit(&mut buf);
        assert_eq!(buf, bytes);
    }
}

// Goal: every message type has a zero-copy view whose checks, fixed fields and parameter walk
// agree with the Repr. Method: for the fixed samples, open the typed view, parse the Repr
// from it, count its parameters, and check that another type's view refuses the bytes.
#[test]
fn typed_views_agree_with_reprs() {
    macro_rules! check {
        ($module:ident, $bytes:expr, $m:expr, $( $variant:ident => $view:ident ),* $(,)?) => {
            match $m {
                $( $module::Message::$variant(repr) => {
                    let view = $module::$view::new_checked(&$bytes[..]).unwrap();
                    assert_eq!(&$module::$variant::parse(&view).unwrap(), repr);
                    assert!(view.parameters().all(|p| p.is_ok()));
                    assert!(view.parameters().count() >= 1 || view.fixed().len() >= 8);
                    view.parameters().count()
                } )*
            }
        };
    }
    for m in codec::testing::sample_asap_messages() {
        let bytes = m.emit_to_vec();
        check!(asap, bytes, &m,
            Registration => RegistrationView,
            Deregistration => DeregistrationView,
            RegistrationResponse => RegistrationResponseView,
            DeregistrationResponse => DeregistrationResponseView,
            HandleResolution => HandleResolutionView,
            HandleResolutionResponse => HandleResolutionResponseView,
            EndpointKeepAlive => EndpointKeepAliveView,
            EndpointKeepAliveAck => EndpointKeepAliveAckView,
            EndpointUnreachable => EndpointUnreachableView,
            ServerAnnounce => ServerAnnounceView,
            Cookie => CookieView,
            CookieEcho => CookieEchoView,
            BusinessCard => BusinessCardView,
            Error => ErrorView,
        );
        let wrong = asap::CookieView::new_checked(&bytes[..]);
        assert_eq!(wrong.is_err(), !matches!(m, asap::Message::Cookie(_)));
    }
    for m in codec::testing::sample_enrp_messages() {
        let bytes = m.emit_to_vec();
        let count = check!(enrp, bytes, &m,
            Presence => PresenceView,
            HandleTableRequest => HandleTableRequestView,
            HandleTableResponse => HandleTableResponseView,
            HandleUpdate => HandleUpdateView,
            ListRequest => ListRequestView,
            ListResponse => ListResponseView,
            InitTakeover => InitTakeoverView,
            InitTakeoverAck => InitTakeoverAckView,
            TakeoverServer => TakeoverServerView,
            Error => ErrorView,
        );
        let _ = count;
        let presence = enrp::PresenceView::new_checked(&bytes[..]);
        assert_eq!(presence.is_err(), !matches!(m, enrp::Message::Presence(_)));
        // Every ENRP message starts with the sender id.
        assert_eq!(enrp::ListRequestView::new_unchecked(&bytes[..]).sender(), m.sender());
    }
    // Fixed-field getters, on the RFC-figure bytes.
    let eka = hex(&format!("07 01 0014 0a0b0c0d {POOL_HANDLE}"));
    assert_eq!(
        asap::EndpointKeepAliveView::new_checked(&eka[..]).unwrap().server_id(),
        RegistrarId(0x0a0b_0c0d)
    );
    let takeover = hex("07 00 0010 0a0b0c0d 01010101 02020202");
    let view = enrp::InitTakeoverView::new_checked(&takeover[..]).unwrap();
    assert_eq!(
        (view.sender(), view.receiver(), view.target()),
        (RegistrarId(0x0a0b_0c0d), RegistrarId(0x0101_0101), RegistrarId(0x0202_0202))
    );
    // Fixed fields cut short are refused by the view, not found later by an accessor.
    assert!(enrp::InitTakeoverView::new_checked(&hex("07 00 000c 0a0b0c0d 01010101")[..]).is_err());
}

// Goal: ENRP's announcement and download writers (PEs encoded once or from their fields, home
// written per message) emit exactly what the owned Reprs emit. Method: a Handle Update and
// Handle Table Responses (two pools, one pool, none, a refusal) through the owned path and
// both borrowed forms, compared byte for byte and parsed.
#[test]
fn enrp_writers_from_encoded_elements() {
    for fields in [false, true] {
        enrp_writers_from(fields);
    }
}

/// `pe` for the writers: as its `bytes`, or as its fields.
fn as_ref<'a>(fields: bool, pe: &'a PoolElement, bytes: &'a [u8]) -> codec::PoolElementRef<'a> {
    if fields {
        pe.fields().unwrap().into()
    } else {
        codec::EncodedPoolElement::new_checked(bytes).unwrap().into()
    }
}

fn enrp_writers_from(fields: bool) {
    let servers = enrp::Servers { sender: RegistrarId(5), receiver: RegistrarId(0) };
    let home = RegistrarId(9);
    let mut pe = pool_element();
    pe.home_registrar = home;
    // With an ASAP Transport, which ENRP carries.
    pe.asap_transport = Some(sctp(50_205, [192, 0, 2, 9]));
    let mut stored_pe = pe.clone();
    stored_pe.home_registrar = RegistrarId(0x0a0b_0c0d);
    let stored = stored_pe.encode();
    let encoded = as_ref(fields, &stored_pe, &stored);
    let odd = codec::PoolHandle::new(b"odd").unwrap();
    for action in [enrp::UpdateAction::ADD_PE, enrp::UpdateAction::DEL_PE] {
        let owned = enrp::HandleUpdate {
            takeover_suggested: false,
            servers,
            action,
            pool_handle: odd,
            pool_element: pe.clone(),
        };
        let r = enrp::HandleUpdateRef {
            takeover_suggested: false,
            servers,
            action,
            pool_handle: &odd,
            pool_element: encoded,
            home,
        };
        assert_eq!(r.emit_to_vec(), owned.emit_to_vec());
    }
    let other = pool_handle();
    type Case<'a> = (&'a [(&'a codec::PoolHandle, usize)], bool, bool);
    let cases: [Case<'_>; 4] = [
        (&[(&odd, 2), (&other, 1)], true, false),
        (&[(&other, 1)], false, false),
        (&[], false, false),
        (&[], false, true),
    ];
    for (pools, more_to_send, reject) in cases {
        let mut owned_pools = Vec::new();
        let mut entries = Vec::new();
        for &(handle, count) in pools {
            let mut elements = Vec::new();
            for i in 0..count {
                let mut pe = pe.clone();
                pe.id = PoolElementId(0x0102_0304 + i as u32);
                elements.push(pe);
            }
            owned_pools.push(enrp::PoolEntry { pool_handle: *handle, pool_elements: elements });
        }
        let stored: Vec<(codec::PoolHandle, &PoolElement, Vec<u8>)> = owned_pools
            .iter()
            .flat_map(|p| p.pool_elements.iter().map(move |e| (p.pool_handle, e, e.encode())))
            .collect();
        let elements: Vec<codec::PoolElementRef<'_>> =
            stored.iter().map(|(_, pe, bytes)| as_ref(fields, pe, bytes)).collect();
        for ((handle, ..), element) in stored.iter().zip(&elements) {
            entries.push((handle, element, home));
        }
        let owned =
            enrp::HandleTableResponse { more_to_send, reject, servers, pools: owned_pools.clone() };
        let r = enrp::HandleTableResponseRef { more_to_send, reject, servers };
        let mut out = vec![0xa5; 7];
        r.emit_with_encoded(&mut out, entries);
        assert_eq!(out, owned.emit_to_vec(), "{pools:?}");
        assert_eq!(enrp::Message::parse(&out).unwrap(), enrp::Message::HandleTableResponse(owned));
    }
}
