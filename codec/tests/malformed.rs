//! Malformed input (STYLE §7.2): unknown parameters under all four action bits, duplicates,
//! missing parameters, bad padding, trailing bytes, caps at their boundary, and the one
//! mapping from decode errors to RFC 5354 error causes.

mod common;

use codec::asap::{self, Message};
use codec::param::{ParameterType, UnknownParameterAction};
use codec::{DecodeErrorKind, ErrorCause, PoolElementId, PoolHandle};
use common::hex;

const POOL_HANDLE: &str = "0009 000c 4563686f 506f6f6c";
const PE_ID: &str = "000e 0008 01020304";

/// Builds a message of `ty` from hex parameters, computing the message length.
fn message(ty: u8, params: &str) -> Vec<u8> {
    let body = hex(params);
    let mut m = vec![ty, 0];
    m.extend_from_slice(&u16::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend(body);
    m
}

fn deregistration() -> Message {
    Message::Deregistration(asap::Deregistration {
        pool_handle: PoolHandle::new(b"EchoPool").unwrap(),
        pe_id: PoolElementId(0x0102_0304),
    })
}

//= https://www.rfc-editor.org/rfc/rfc5354#section-3
//= type=test
//# the two bits of the highest-order specify the action that must be taken if the
//# processing endpoint does not recognize the Parameter Type.
// Goal: all four actions, through the one function and through a whole message.
// Method: append an unknown parameter (low bits 0x0040) under each action to a valid
// Deregistration.
#[test]
fn unknown_parameter_action_bits() {
    let cases = [
        (0x0040u16, UnknownParameterAction::Stop),
        (0x4040, UnknownParameterAction::StopAndReport),
        (0x8040, UnknownParameterAction::Skip),
        (0xc040, UnknownParameterAction::SkipAndReport),
    ];
    for (ty, action) in cases {
        assert_eq!(ParameterType(ty).unknown_action(), action);
        let bytes = message(2, &format!("{POOL_HANDLE} {ty:04x} 0008 deadbeef {PE_ID}"));
        let result = Message::parse(&bytes);
        match action {
            UnknownParameterAction::Stop | UnknownParameterAction::StopAndReport => {
                let e = result.unwrap_err();
                let report = action == UnknownParameterAction::StopAndReport;
                assert_eq!(e.kind, DecodeErrorKind::UnknownParameter { report });
                assert_eq!(e.offset, 16, "offset of the unknown parameter");
                assert_eq!(e.should_report(), report);
                assert_eq!(ErrorCause::from(e), ErrorCause::UNRECOGNIZED_PARAMETER);
            }
            _ => assert_eq!(result, Ok(deregistration())),
        }
    }
}

// Goal: unknown parameters nested in a transport follow the same rule.
#[test]
fn unknown_parameter_inside_transport() {
    let skip = "0004 0018 1f90 0000 8123 0008 00000000 0001 0008 c0000201";
    let stop = "0004 0018 1f90 0000 0123 0008 00000000 0001 0008 c0000201";
    assert!(codec::param::Parameter::parse(hex(skip)).is_ok());
    let e = codec::param::Parameter::parse(hex(stop)).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownParameter { report: false });
}

// Goal: a once-only parameter twice is an error naming it.
#[test]
fn duplicate_pool_handle_is_rejected() {
    let e =
        Message::parse(&message(2, &format!("{POOL_HANDLE} {POOL_HANDLE} {PE_ID}"))).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Duplicate);
    assert_eq!(e.field, "PoolHandle");
    assert_eq!(e.offset, 16);
    let e = Message::parse(&message(2, &format!("{POOL_HANDLE} {PE_ID} {PE_ID}"))).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Duplicate);
    assert_eq!(ErrorCause::from(e), ErrorCause::INVALID_VALUES);
}

// Goal: missing mandatory parameters and known parameters in the wrong message are errors.
#[test]
fn missing_and_unexpected_parameters() {
    let e = Message::parse(&message(2, POOL_HANDLE)).unwrap_err();
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Missing, "PeIdentifier"));
    let e = Message::parse(&message(2, &format!("{POOL_HANDLE} {PE_ID} 000d 0008 00000000")))
        .unwrap_err();
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Unexpected, "Cookie"));
}

//= https://www.rfc-editor.org/rfc/rfc5354#section-3
//= type=test
//# the sender MUST pad the parameter at the end (i.e., after the Parameter Value field)
//# with all zero bytes.
// Goal: non-zero padding and padding cut short before the next parameter are rejected.
// Method: pool handle "abc" (length 7, one padding byte) followed by a PE identifier.
#[test]
fn bad_padding_is_rejected() {
    let good = message(2, &format!("0009 0007 616263 00 {PE_ID}"));
    assert!(Message::parse(&good).is_ok());
    let bad = message(2, &format!("0009 0007 616263 ff {PE_ID}"));
    let e = Message::parse(&bad).unwrap_err();
    assert_eq!((e.kind, e.offset), (DecodeErrorKind::BadPadding, 11));
    // The last parameter may omit its padding: the message length does not cover it.
    let last = message(2, &format!("{PE_ID} 0009 0007 616263"));
    assert!(Message::parse(&last).is_ok());
    // Non-zero bytes after the message length are trailing garbage, not padding.
    let mut trailing = last.clone();
    trailing.push(0xff);
    assert_eq!(Message::parse(&trailing).unwrap_err().kind, DecodeErrorKind::Trailing);
    let mut four_zeros = last;
    four_zeros.extend([0, 0, 0, 0]);
    assert_eq!(Message::parse(&four_zeros).unwrap_err().kind, DecodeErrorKind::Trailing);
}

// Goal: length fields below their minimum and fixed-size values with the wrong size.
#[test]
fn bad_lengths_are_rejected() {
    assert_eq!(Message::parse(&hex("02 00 0003")).unwrap_err().kind, DecodeErrorKind::BadLength);
    let e = Message::parse(&message(2, &format!("{POOL_HANDLE} 000e 0003"))).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadLength);
    let e = Message::parse(&message(2, &format!("{POOL_HANDLE} 000e 000c 01020304 05060708")))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadLength);
    // A known policy with the wrong length (RSPLIB's Least Used carries exactly one field).
    let e =
        codec::param::Parameter::parse(hex("0008 0010 40000001 00000001 00000002")).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadLength);
}

// Goal: unknown message types map to Unrecognized Message.
#[test]
fn unknown_message_type() {
    let e = Message::parse(&hex("0f 00 0004")).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownMessage);
    assert_eq!(ErrorCause::from(e), ErrorCause::UNRECOGNIZED_MESSAGE);
    let e = codec::enrp::Message::parse(&hex("0b 00 0004")).unwrap_err();
    assert_eq!(ErrorCause::from(e), ErrorCause::UNRECOGNIZED_MESSAGE);
}

// Goal: the pool handle cap is a boundary pair: 64 bytes pass, 65 fail as a resource limit.
#[test]
fn pool_handle_cap_boundary() {
    let at = |n: usize| {
        let padding = "00".repeat((4 - n % 4) % 4);
        message(2, &format!("0009 {:04x} {} {padding} {PE_ID}", n + 4, "61".repeat(n)))
    };
    assert!(Message::parse(&at(codec::POOL_HANDLE_LENGTH_MAX)).is_ok());
    let e = Message::parse(&at(codec::POOL_HANDLE_LENGTH_MAX + 1)).unwrap_err();
    assert_eq!((e.kind, e.field), (DecodeErrorKind::TooMany, "PoolHandle"));
    assert_eq!(ErrorCause::from(e), ErrorCause::LACK_OF_RESOURCES);
    let e = Message::parse(&message(2, &format!("0009 0004 {PE_ID}"))).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadValue, "empty pool handle");
}

// Goal: the address cap is a boundary pair: 16 addresses are kept, a 17th is skipped and the
// transport still parses (regression: an RSPLIB PE with 11 addresses was refused whole); past
// the walk bound the parameter fails; none is missing.
#[test]
fn addresses_per_transport_cap_boundary() {
    let at = |n: usize| {
        let addresses: String =
            (0..n).map(|i| format!("0001 0008 c00002{:02x} ", i % 256)).collect();
        hex(&format!("0004 {:04x} 1f90 0000 {addresses}", 8 + 8 * n))
    };
    let addresses = |n: usize| match codec::param::Parameter::parse(at(n)).unwrap() {
        codec::param::Parameter::Transport(codec::UserTransport::Sctp(t)) => t.addresses,
        other => panic!("expected an SCTP transport, got {other:?}"),
    };
    let max = codec::param::ADDRESSES_PER_TRANSPORT_MAX;
    assert_eq!(addresses(max).len(), max);
    let one_more = addresses(max + 1);
    assert_eq!(one_more.len(), max, "the address past the cap is skipped");
    assert_eq!(one_more.as_slice()[max - 1], addresses(max).as_slice()[max - 1]);
    assert_eq!(addresses(11).len(), 11, "the lab's RSPLIB PE");
    let walked = codec::param::ADDRESSES_WALKED_MAX;
    assert_eq!(addresses(walked).len(), max);
    assert_eq!(
        codec::param::Parameter::parse(at(walked + 1)).unwrap_err().kind,
        DecodeErrorKind::TooMany
    );
    assert_eq!(codec::param::Parameter::parse(at(0)).unwrap_err().kind, DecodeErrorKind::Missing);
}

// Goal: the PEs-per-message cap is a boundary pair on a Business Card.
#[test]
fn pool_elements_per_message_cap_boundary() {
    let pe = "000a 0028 01020304 00000000 00015f90 \
              0004 0010 1f90 0000 0001 0008 c0000201 0008 0008 00000001 ";
    let at = |n: usize| message(0x0d, &format!("{POOL_HANDLE} {}", pe.repeat(n)));
    let max = codec::POOL_ELEMENTS_PER_MESSAGE_MAX;
    let Message::BusinessCard(card) = Message::parse(&at(max)).unwrap() else { panic!() };
    assert_eq!(card.pool_elements.len(), max);
    assert_eq!(Message::parse(&at(max + 1)).unwrap_err().kind, DecodeErrorKind::TooMany);
}

// Goal: shrinking any TLV length field (not only the message's) never panics.
// Method: for every RSPLIB vector and every 2-byte position, write each smaller value.
#[test]
fn shrunken_inner_lengths_never_panic() {
    for (protocol, _, bytes) in common::rsplib_vectors() {
        for at in (4..bytes.len().saturating_sub(1)).step_by(2) {
            let original = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            for smaller in (0..original).step_by(usize::from(original / 64).max(1)) {
                let mut b = bytes.clone();
                b[at..at + 2].copy_from_slice(&smaller.to_be_bytes());
                if protocol == "asap" {
                    let _ = Message::parse(&b);
                } else {
                    let _ = codec::enrp::Message::parse(&b);
                }
            }
        }
    }
}

// Goal: a skip-and-report unknown parameter is skipped by the Repr and surfaced by the view.
#[test]
fn skip_and_report_parameters_are_surfaced_by_views() {
    let bytes = message(2, &format!("{POOL_HANDLE} c040 0008 deadbeef 8040 0008 00000000 {PE_ID}"));
    assert_eq!(Message::parse(&bytes), Ok(deregistration()));
    let view = asap::DeregistrationView::new_checked(&bytes[..]).unwrap();
    let reports: Vec<&[u8]> = view.unrecognized_to_report().collect();
    assert_eq!(reports, vec![&hex("c040 0008 deadbeef")[..]]);
}

// Goal: both truncation loops, deterministic, on every sample message and every RSPLIB
// vector (the property tests cover generated messages; these reproduce from fixed bytes).
// Method: cut at every length (outer), and rewrite the length field to every smaller value
// (inner); each must be an error, except cuts that drop only trailing padding.
#[test]
fn truncation_loops_on_fixed_messages() {
    fn loops(bytes: &[u8], parse: &dyn Fn(&[u8]) -> bool) {
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        assert!(parse(bytes));
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), cut >= length, "cut at {cut} of {bytes:02x?}");
        }
        for shorter in 0..length {
            let mut b = bytes.to_vec();
            b[2..4].copy_from_slice(&u16::try_from(shorter).unwrap().to_be_bytes());
            assert!(!parse(&b), "length {shorter} of {bytes:02x?}");
        }
    }
    let asap = |b: &[u8]| Message::parse(b).is_ok();
    let enrp = |b: &[u8]| codec::enrp::Message::parse(b).is_ok();
    for m in codec::testing::sample_asap_messages() {
        loops(&m.emit_to_vec(), &asap);
    }
    for m in codec::testing::sample_enrp_messages() {
        loops(&m.emit_to_vec(), &enrp);
    }
    for (protocol, _, bytes) in common::rsplib_vectors() {
        loops(&bytes, if protocol == "asap" { &asap } else { &enrp });
    }
}

// Goal: RSPLIB's short Priority Least Used (load only, 12 bytes) is accepted as degradation 0,
// and we re-emit the RFC 5356 §5.3.4 form (16 bytes). Other lengths stay errors.
#[test]
fn rsplib_short_priority_least_used_is_accepted() {
    use codec::param::Parameter;
    let short = Parameter::parse(hex("0008 000c 40000003 00001000")).unwrap();
    let p = codec::Policy::PriorityLeastUsed { load: 0x1000, load_degradation: 0 };
    assert_eq!(short, Parameter::Policy(p));
    let mut buf = vec![0xa5; short.buffer_len()];
    short.emit(&mut buf);
    assert_eq!(buf, hex("0008 0010 40000003 00001000 00000000"));
    let odd = Parameter::parse(hex("0008 0014 40000003 00001000 00000000 00000000"));
    assert_eq!(odd.unwrap_err().kind, DecodeErrorKind::BadLength);
}

// Goal: a message whose canonical re-emission would outgrow the 16-bit length is refused at
// parse time, so that emit never panics on a parsed Repr. Method: 244 PEs with a 236-byte
// opaque transport and RSPLIB's short PLU (each grows by 4 bytes on re-emission) make a
// 65,408-byte Business Card that would re-emit as 66,384 bytes; one PE fewer still fits.
#[test]
fn messages_that_cannot_be_re_emitted_are_refused() {
    let pe = format!(
        "000a 010c 01020304 00000000 00015f90 0010 00f0 {} 0008 000c 40000003 00000001 ",
        "ab".repeat(236)
    );
    let card = |n: usize| message(0x0d, &format!("{POOL_HANDLE} {}", pe.repeat(n)));
    let too_big = card(244);
    assert_eq!(too_big.len(), 65_408);
    let e = Message::parse(&too_big).unwrap_err();
    assert_eq!((e.kind, e.field), (DecodeErrorKind::TooMany, "MessageLength"));
    let fits = Message::parse(&card(240)).unwrap();
    assert!(fits.buffer_len() <= usize::from(u16::MAX));
}
