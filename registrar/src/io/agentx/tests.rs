//! The AgentX encoding byte by byte, and the MIB walk over a snapshot made here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::mib::{Data, Mib, RSERPOOL_MIB, RSERPOOL_MIB_OBJECTS};
use super::pdu::*;
use super::{answer, Frame, Framer, Master};
use crate::io::management::{EnrpServerEntry, PeerEntry, PoolElementEntry, PoolEntry};

fn oid(s: &[u32]) -> Oid {
    Oid(s.to_vec())
}

/// `rserpoolENRPServers.table.1.column` + index.
fn name(table: u32, column: u32, index: &[u32]) -> Oid {
    let mut v = vec![1, 3, 6, 1, 3, 125, 1, 1, table, 1, column];
    v.extend_from_slice(index);
    Oid(v)
}

/// `a` as it reads back after emitting: the header's payload length and flags filled in.
fn emitted(a: &Pdu) -> Pdu {
    let bytes = a.emit();
    let mut want = a.clone();
    want.header.payload_length = (bytes.len() - HEADER_LEN) as u32;
    want.header.flags = bytes[2];
    want
}

fn range(start: Oid, include: bool) -> SearchRange {
    SearchRange { start, include, end: Oid::default() }
}

// Goal: the header reads the same in both byte orders, as its NETWORK_BYTE_ORDER flag says,
// and we always write network byte order. Method: one GetNext written by hand twice, once
// big-endian (flag set) and once little-endian (flag clear).
#[test]
fn header_and_body_read_in_either_byte_order() {
    let big: Vec<u8> = [
        &[1u8, 6, 0x10, 0][..],
        &[0, 0, 0, 7],                           // session 7
        &[0, 0, 1, 0],                           // transaction 256
        &[0, 0, 0, 9],                           // packet 9
        &[0, 0, 0, 16],                          // payload: one range, two OIDs
        &[2, 3, 1, 0, 0, 0, 0, 125, 0, 0, 0, 1], // 1.3.6.1.3.125.1, include
        &[0, 0, 0, 0],                           // end: null
    ]
    .concat();
    let little: Vec<u8> = [
        &[1u8, 6, 0x00, 0][..],
        &[7, 0, 0, 0],
        &[0, 1, 0, 0],
        &[9, 0, 0, 0],
        &[16, 0, 0, 0],
        &[2, 3, 1, 0, 125, 0, 0, 0, 1, 0, 0, 0],
        &[0, 0, 0, 0],
    ]
    .concat();
    let a = Pdu::parse(&big).expect("big-endian");
    let b = Pdu::parse(&little).expect("little-endian");
    assert_eq!(a.header.session_id, 7);
    assert_eq!(a.header.transaction_id, 256);
    assert_eq!(a.header.packet_id, 9);
    assert!(a.header.network_byte_order() && !b.header.network_byte_order());
    assert_eq!(a.body, b.body, "the same request either way");
    let want = Body::GetNext(vec![range(oid(&RSERPOOL_MIB_OBJECTS), true)]);
    assert_eq!(a.body, want);
    // Emitting the little-endian one gives the big-endian bytes: we write network order.
    assert_eq!(b.emit(), big);
}

// Goal: OIDs under 1.3.6.1.x (x in 1..=255) go out prefix-compressed, everything else in
// full, and both forms read back the same. Method: the bytes of each boundary case.
#[test]
fn oid_prefix_compression_boundaries() {
    let emit = |o: &Oid| {
        let vb = VarBind { name: o.clone(), value: Value::Null };
        let pdu = Pdu::new(
            PduType::RESPONSE,
            0,
            0,
            0,
            Body::Response { sys_up_time: 0, error: 0, index: 0, varbinds: vec![vb] },
        );
        // header 20, response fields 8, varbind type 4: the OID starts at 32.
        pdu.emit()[32..].to_vec()
    };
    // Compressible: prefix 3, two sub-identifiers left.
    assert_eq!(emit(&oid(&[1, 3, 6, 1, 3, 125, 1])), [2, 3, 0, 0, 0, 0, 0, 125, 0, 0, 0, 1]);
    // Exactly 1.3.6.1.x: prefix only, no sub-identifiers.
    assert_eq!(emit(&oid(&[1, 3, 6, 1, 255])), [0, 255, 0, 0]);
    // x = 0 and x = 256 cannot be a prefix byte; 1.3.6.1 alone and 1.3.6.2.x are not under it.
    assert_eq!(emit(&oid(&[1, 3, 6, 1, 0]))[..4], [5, 0, 0, 0]);
    assert_eq!(emit(&oid(&[1, 3, 6, 1, 256]))[..4], [5, 0, 0, 0]);
    assert_eq!(emit(&oid(&[1, 3, 6, 1]))[..4], [4, 0, 0, 0]);
    assert_eq!(emit(&oid(&[1, 3, 6, 2, 1]))[..4], [5, 0, 0, 0]);
    // The null OID.
    assert_eq!(emit(&Oid::default()), [0, 0, 0, 0]);
    // Read back: the full and the compressed form of one OID parse equal.
    for o in [
        oid(&[1, 3, 6, 1, 3, 125, 1]),
        oid(&[1, 3, 6, 1, 0]),
        oid(&[1, 3, 6, 1, 255]),
        Oid::default(),
    ] {
        let pdu = Pdu::new(
            PduType::RESPONSE,
            0,
            0,
            0,
            Body::Response {
                sys_up_time: 0,
                error: 0,
                index: 0,
                varbinds: vec![VarBind { name: o.clone(), value: Value::Null }],
            },
        );
        let back = Pdu::parse(&pdu.emit()).expect("parses");
        assert_eq!(back, emitted(&pdu), "{o}");
    }
    let full: Vec<u8> = [
        &[1u8, 18, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 44][..],
        &[0; 8],
        &[0, 5, 0, 0],
        &[7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 125],
        &[0, 0, 0, 1],
    ]
    .concat();
    let Body::Response { varbinds, .. } = Pdu::parse(&full).expect("full form").body else {
        panic!("a response")
    };
    assert_eq!(varbinds[0].name, oid(&RSERPOOL_MIB_OBJECTS));
}

// Goal: octet strings carry their length without the padding and are padded with zeros to
// 4 bytes, skipped on input; a length past the payload is an error naming the string.
// Method: lengths 0 to 5.
#[test]
fn octet_strings_pad_to_four_bytes() {
    for len in 0..=5usize {
        let descr: Vec<u8> = (b'a'..).take(len).collect();
        let open = Pdu::new(
            PduType::OPEN,
            0,
            0,
            1,
            Body::Open { timeout: 5, id: Oid::default(), descr: descr.clone() },
        );
        let bytes = open.emit();
        let padded = len.div_ceil(4) * 4;
        // header, timeout + reserved, null OID, length, string, padding
        assert_eq!(bytes.len(), 20 + 4 + 4 + 4 + padded, "length {len}");
        assert_eq!(bytes[28..32], (len as u32).to_be_bytes(), "the length excludes padding");
        assert_eq!(&bytes[32..32 + len], descr.as_slice());
        assert!(bytes[32 + len..].iter().all(|&b| b == 0), "zero padding");
        assert_eq!(Pdu::parse(&bytes).expect("parses"), emitted(&open));
        // A length one past what the payload holds: truncated, named after the string.
        let mut long = bytes.clone();
        long[28..32].copy_from_slice(&(padded as u32 + 1).to_be_bytes());
        let err = Pdu::parse(&long).expect_err("string past the end");
        assert_eq!((err.kind, err.field), (DecodeErrorKind::Truncated, "o.descr"), "length {len}");
        // Padding is skipped on input, whatever it holds.
        if padded > len {
            let mut dirty = bytes.clone();
            let last = dirty.len() - 1;
            dirty[last] = 0xff;
            assert_eq!(Pdu::parse(&dirty).expect("parses").body, open.body, "length {len}");
        }
    }
}

// Goal: a Response with each value type has exactly the bytes RFC 2741 §5.4 gives them.
// Method: the expected bytes written out by hand.
#[test]
fn response_varbinds_byte_exact() {
    let n = |x: u32| oid(&[1, 3, 6, 1, 3, x]);
    let pdu = Pdu::new(
        PduType::RESPONSE,
        1,
        2,
        3,
        Body::Response {
            sys_up_time: 0x0102_0304,
            error: error::NO_ERROR,
            index: 0,
            varbinds: vec![
                VarBind { name: n(1), value: Value::Integer(-2) },
                VarBind { name: n(2), value: Value::OctetString(b"abc".to_vec()) },
                VarBind { name: n(3), value: Value::Gauge32(9) },
                VarBind { name: n(4), value: Value::TimeTicks(100) },
                VarBind { name: n(5), value: Value::Counter64(0x1_0000_0002) },
                VarBind { name: n(6), value: Value::EndOfMibView },
            ],
        },
    );
    let want: Vec<u8> = [
        &[1u8, 18, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 108][..],
        &[1, 2, 3, 4, 0, 0, 0, 0],
        &[0, 2, 0, 0, 1, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe],
        &[0, 4, 0, 0, 1, 3, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, b'a', b'b', b'c', 0],
        &[0, 66, 0, 0, 1, 3, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9],
        &[0, 67, 0, 0, 1, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 100],
        &[0, 70, 0, 0, 1, 3, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2],
        &[0, 130, 0, 0, 1, 3, 0, 0, 0, 0, 0, 6],
    ]
    .concat();
    assert_eq!(pdu.emit(), want);
    assert_eq!(Pdu::parse(&want).expect("parses"), emitted(&pdu));
}

// Goal: every malformed input is an error naming its field, never a panic. Method: one
// defect at a time on a valid GetNext.
#[test]
fn malformed_pdus_are_named_errors() {
    let good =
        Pdu::new(PduType::GET_NEXT, 1, 1, 1, Body::GetNext(vec![range(oid(&RSERPOOL_MIB), false)]))
            .emit();
    assert!(Pdu::parse(&good).is_ok());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        Pdu::parse(&b).expect_err("malformed")
    };
    let e = with(&|b| b[0] = 2);
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Unknown, "h.version"));
    let e = with(&|b| b[19] += 2);
    assert_eq!((e.kind, e.field), (DecodeErrorKind::BadLength, "h.payload_length"));
    let e = with(&|b| b[16..20].copy_from_slice(&(PAYLOAD_MAX as u32 + 4).to_be_bytes()));
    assert_eq!((e.kind, e.field), (DecodeErrorKind::BadLength, "h.payload_length"));
    let e = with(&|b| b.truncate(b.len() - 4));
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Truncated, "payload"));
    let e = with(&|b| b.extend_from_slice(&[0; 4]));
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Trailing, "payload"));
    // n_subid says 4 sub-identifiers (16 bytes) where 1 is.
    let e = with(&|b| b[20] = 4);
    assert_eq!(e.kind, DecodeErrorKind::Truncated, "{e}");
    assert_eq!(Header::parse(&good[..10]).expect_err("short").field, "h.transactionID");
    // 129 sub-identifiers: over SNMP's 128.
    let long = Pdu::new(PduType::GET, 1, 1, 1, Body::Get(vec![range(Oid(vec![7; 129]), false)]));
    let e = Pdu::parse(&long.emit()).expect_err("too long");
    assert_eq!((e.kind, e.field), (DecodeErrorKind::BadLength, "n_subid"));
    // An unknown varbind type in a Response.
    let mut response = Pdu::new(
        PduType::RESPONSE,
        0,
        0,
        0,
        Body::Response {
            sys_up_time: 0,
            error: 0,
            index: 0,
            varbinds: vec![VarBind { name: Oid::default(), value: Value::Null }],
        },
    )
    .emit();
    response[29] = 99;
    let e = Pdu::parse(&response).expect_err("type 99");
    assert_eq!((e.kind, e.field), (DecodeErrorKind::Unknown, "v.type"));
}

// Goal: no input panics the decoder or the framer. Method: 200 000 mutations (1-4 random
// bytes changed, or a random cut) of valid PDUs from a seeded generator; each is parsed and
// fed to a framer; counting what parsed keeps the loop honest (some must, some must not).
#[test]
fn mutated_pdus_never_panic() {
    let seeds = [
        Pdu::new(
            PduType::GET_BULK,
            1,
            2,
            3,
            Body::GetBulk {
                non_repeaters: 1,
                max_repetitions: 10,
                ranges: vec![range(oid(&RSERPOOL_MIB), true), range(name(3, 2, &[1]), false)],
            },
        ),
        Pdu::new(
            PduType::RESPONSE,
            1,
            2,
            3,
            Body::Response {
                sys_up_time: 5,
                error: 0,
                index: 0,
                varbinds: vec![
                    VarBind { name: oid(&RSERPOOL_MIB), value: Value::OctetString(b"x".to_vec()) },
                    VarBind { name: oid(&[1, 2]), value: Value::IpAddress([127, 0, 0, 1]) },
                    VarBind {
                        name: oid(&[1, 2]),
                        value: Value::ObjectIdentifier(oid(&[1, 3, 6, 1, 4])),
                    },
                ],
            },
        ),
    ]
    .map(|p| p.emit());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut bad) = (0, 0);
    for i in 0..200_000 {
        let mut b = seeds[i % seeds.len()].clone();
        if rand() % 8 == 0 {
            b.truncate((rand() as usize) % (b.len() + 1));
        } else {
            for _ in 0..=(rand() % 4) {
                let at = (rand() as usize) % b.len();
                b[at] = rand() as u8;
            }
        }
        match Pdu::parse(&b) {
            Ok(_) => ok += 1,
            Err(_) => bad += 1,
        }
        let mut framer = Framer::default();
        framer.push(&b);
        while let Ok(Some(_)) = framer.next_frame() {}
    }
    assert!(ok > 1_000 && bad > 1_000, "ok {ok}, bad {bad}");
}

// Goal: the framer cuts a stream into PDUs whatever the read sizes, and gives a bad payload
// with its header (so that it can be answered) but a bad header as an error.
#[test]
fn framer_splits_a_stream() {
    let a = Pdu::new(
        PduType::GET,
        1,
        1,
        1,
        Body::Get(vec![range(oid(&[1, 3, 6, 1, 3, 125, 1, 1]), false)]),
    );
    let b = Pdu::new(PduType::PING, 1, 1, 2, Body::Other(Vec::new()));
    let mut bad = a.emit();
    bad[20] = 9; // n_subid 9: runs past the payload
    let stream = [a.emit(), b.emit(), bad.clone()].concat();
    let mut framer = Framer::default();
    let mut got = Vec::new();
    for chunk in stream.chunks(3) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame().expect("headers are fine") {
            got.push(frame);
        }
    }
    assert_eq!(got.len(), 3);
    assert!(matches!(&got[0], Frame::Pdu(p) if *p == emitted(&a)));
    assert!(matches!(&got[1], Frame::Pdu(p) if p.header.ty == PduType::PING));
    assert!(matches!(&got[2], Frame::BadPayload(h, _) if h.packet_id == 1));
    let mut framer = Framer::default();
    let mut wrong_version = bad;
    wrong_version[0] = 3;
    framer.push(&wrong_version);
    assert_eq!(framer.next_frame().err().map(|e| e.field), Some("h.version"));
}

fn data() -> Data {
    let pool = |handle: &str| PoolEntry {
        handle: handle.into(),
        handle_hex: handle.bytes().map(|b| format!("{b:02x}")).collect(),
        handle_url: handle.into(),
        core: 0,
        policy_id: 1,
        policy_description: "RoundRobin".into(),
        members: 0,
        user_transport_proto: 6,
        user_transport_use: 0,
    };
    let pe = |pool: &str, id: u32, port: u16| PoolElementEntry {
        pool: pool.into(),
        pool_url: pool.into(),
        id,
        home_enrp_server: 0xabc,
        owned: true,
        core: 1,
        asap_transport_port: Some(40_000),
        asap_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        user_transport_proto: 6,
        user_transport_port: port,
        user_transport_use: 0,
        user_addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), "::1".parse().unwrap()],
        policy_id: 1,
        policy_description: "RoundRobin".into(),
        policy_weight: 0,
        policy_priority: 0,
        policy_load: 0,
        policy_load_deg: 0,
        registration_life_ms: 30_000,
        unreachable_reports: 0,
    };
    Data {
        server: Some(EnrpServerEntry {
            identifier: 0xabc,
            uptime_ms: 12_340,
            enrp_port: Some(9901),
            asap_announce: None,
            enrp_announce: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 51)), 9901)),
        }),
        enrp_addresses: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))],
        // Given out of order, as cores answer: the MIB sorts.
        pools: vec![pool("beta"), pool("alpha")],
        elements: vec![pe("beta", 0x21, 7003), pe("alpha", 0x12, 7002), pe("alpha", 0x11, 7001)],
        peers: vec![PeerEntry {
            identifier: 0xdef,
            address: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
            port: Some(9901),
            last_heard_ms: 1_500,
            active: true,
            connected: true,
            checksum: None,
        }],
    }
}

// Goal: a GetNext walk from rserpoolMIB visits every instance once, in strictly increasing
// order, with the RFC 5525 indexes (pools by handle, PEs by id within their pool) and ends
// in endOfMibView. Method: walk the MIB built from `data()` and look up chosen rows.
#[test]
fn getnext_walks_the_tables_in_order() {
    let mib = Mib::build(&data());
    let mut at = range(oid(&RSERPOOL_MIB), false);
    let mut walked = Vec::new();
    loop {
        let vb = mib.next(&at);
        if vb.value == Value::EndOfMibView {
            assert_eq!(vb.name, at.start, "endOfMibView is named after the range's start");
            break;
        }
        assert!(vb.name > at.start, "{} after {}", vb.name, at.start);
        at = range(vb.name.clone(), false);
        walked.push(vb);
    }
    assert_eq!(walked.len(), mib.len());
    // ENRP row: 10 columns (no ASAP announce, so 7-9 are absent).
    let server: Vec<_> =
        walked.iter().filter(|v| v.name.starts_with(&name(1, 0, &[]).0[..10])).collect();
    assert_eq!(server.len(), 8, "{server:?}");
    assert_eq!(mib.get(&name(1, 3, &[1])).value, Value::Gauge32(0xabc));
    assert_eq!(mib.get(&name(1, 5, &[1])).value, Value::TimeTicks(1_234));
    assert_eq!(mib.get(&name(1, 7, &[1])).value, Value::NoSuchInstance);
    assert_eq!(mib.get(&name(1, 12, &[1])).value, Value::OctetString(vec![239, 0, 0, 51]));
    // Pools by handle: alpha is 1, beta 2.
    assert_eq!(mib.get(&name(3, 2, &[1, 1])).value, Value::OctetString(b"alpha".to_vec()));
    assert_eq!(mib.get(&name(3, 2, &[1, 2])).value, Value::OctetString(b"beta".to_vec()));
    // PEs by id within their pool.
    assert_eq!(mib.get(&name(4, 2, &[1, 1, 1])).value, Value::Gauge32(0x11));
    assert_eq!(mib.get(&name(4, 2, &[1, 1, 2])).value, Value::Gauge32(0x12));
    assert_eq!(mib.get(&name(4, 2, &[1, 2, 1])).value, Value::Gauge32(0x21));
    assert_eq!(mib.get(&name(4, 5, &[1, 1, 2])).value, Value::Gauge32(7002));
    assert_eq!(mib.get(&name(4, 12, &[1, 2, 1])).value, Value::TimeTicks(3_000));
    assert_eq!(mib.get(&name(4, 13, &[1, 2, 1])).value, Value::Gauge32(0xabc));
    // Address tables: ASAP (one address), user (IPv4 then IPv6).
    assert_eq!(mib.get(&name(5, 3, &[1, 1, 1, 1])).value, Value::OctetString(vec![127, 0, 0, 1]));
    assert_eq!(mib.get(&name(6, 2, &[1, 2, 1, 2])).value, Value::Integer(2));
    assert_eq!(mib.get(&name(6, 3, &[1, 2, 1, 1])).value, Value::OctetString(vec![10, 0, 0, 1]));
    // Our ENRP endpoint's address.
    assert_eq!(mib.get(&name(7, 2, &[1, 1])).value, Value::Integer(1));
    assert_eq!(mib.get(&name(7, 3, &[1, 1])).value, Value::OctetString(vec![127, 0, 0, 9]));
    // The peer.
    assert_eq!(mib.get(&name(8, 2, &[1])).value, Value::Gauge32(0xdef));
    assert_eq!(mib.get(&name(8, 4, &[1])).value, Value::TimeTicks(150));
    assert_eq!(mib.get(&name(9, 3, &[1, 1])).value, Value::OctetString(vec![127, 0, 0, 2]));
    // The column walk of rserpoolENRPPoolElementID: three rows, then the next column.
    let ids: Vec<_> = walked.iter().filter(|v| v.name.starts_with(&name(4, 2, &[]).0)).collect();
    assert_eq!(ids.len(), 3);
    let after = mib.next(&range(name(4, 2, &[1, 2, 1]), false));
    assert_eq!(after.name, name(4, 3, &[1, 1, 1]));
}

// Goal: search ranges bound GetNext (an end at or before the next instance gives
// endOfMibView), `include` returns the start itself, and Get tells noSuchInstance (a served
// column) from noSuchObject (anything else).
#[test]
fn search_range_bounds_and_get_errors() {
    let mib = Mib::build(&data());
    let first_pool = name(3, 2, &[1, 1]);
    assert_eq!(mib.next(&range(first_pool.clone(), true)).name, first_pool, "include");
    assert_eq!(mib.next(&range(first_pool.clone(), false)).name, name(3, 2, &[1, 2]));
    let bounded =
        SearchRange { start: first_pool.clone(), include: false, end: name(3, 2, &[1, 2]) };
    assert_eq!(mib.next(&bounded).value, Value::EndOfMibView, "the end is exclusive");
    let wider = SearchRange { start: first_pool.clone(), include: false, end: name(3, 2, &[1, 3]) };
    assert_eq!(mib.next(&wider).name, name(3, 2, &[1, 2]));
    assert_eq!(mib.get(&name(3, 2, &[1, 99])).value, Value::NoSuchInstance);
    assert_eq!(mib.get(&name(3, 3, &[1, 1])).value, Value::NoSuchObject, "no column 3");
    assert_eq!(mib.get(&name(7, 2, &[1, 2])).value, Value::NoSuchInstance, "one ENRP address");
    assert_eq!(mib.get(&name(7, 4, &[1, 1])).value, Value::NoSuchObject, "no column 4");
    assert_eq!(mib.get(&oid(&[1, 3, 6, 1, 2, 1, 1, 3, 0])).value, Value::NoSuchObject);
    assert!(Mib::build(&Data::default()).is_empty());
}

// Goal: GetBulk answers the non-repeaters once and the repeaters round by round, stops when
// every repeater has run off the end, and never answers more than RANGES_MAX varbinds.
#[test]
fn getbulk_rounds_and_cap() {
    let mib = Mib::build(&data());
    let ranges = [range(oid(&RSERPOOL_MIB), false), range(name(4, 2, &[]), false)];
    let out = mib.bulk(1, 3, &ranges);
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].name, name(1, 2, &[1]), "the non-repeater: the first instance");
    assert_eq!(out[1].name, name(4, 2, &[1, 1, 1]));
    assert_eq!(out[3].name, name(4, 2, &[1, 2, 1]));
    // Near the end: one round reaches the last instance, the next is all endOfMibView.
    let last = name(9, 2, &[1, 1]);
    let out = mib.bulk(0, 10, &[range(last.clone(), false)]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].name, name(9, 3, &[1, 1]));
    assert_eq!(out[1].value, Value::EndOfMibView);
    let many = vec![range(oid(&RSERPOOL_MIB), false); 300];
    assert!(mib.bulk(0, u16::MAX, &many).len() <= RANGES_MAX);
}

// Goal: what the subagent answers the master: reads from the MIB with the request's ids, sets
// refused, other contexts refused, genErr when no snapshot came, nothing for CleanupSet.
#[test]
fn answers_to_the_master() {
    let mib = Arc::new(Mib::build(&data()));
    let mut have = || Some(mib.clone());
    let get = Pdu::new(PduType::GET, 4, 5, 6, Body::Get(vec![range(name(3, 2, &[1, 2]), false)]));
    let reply = answer(&get, 77, &mut have).expect("a response");
    assert_eq!(
        (reply.header.session_id, reply.header.transaction_id, reply.header.packet_id),
        (4, 5, 6)
    );
    let Body::Response { sys_up_time, error, varbinds, .. } = reply.body else {
        panic!("response")
    };
    assert_eq!((sys_up_time, error), (77, error::NO_ERROR));
    assert_eq!(varbinds[0].value, Value::OctetString(b"beta".to_vec()));
    let set = Pdu::new(PduType::TEST_SET, 4, 5, 7, Body::Other(vec![0; 4]));
    let reply = answer(&set, 0, &mut have).expect("a response");
    assert!(matches!(reply.body, Body::Response { error: error::NOT_WRITABLE, .. }));
    let cleanup = Pdu::new(PduType::CLEANUP_SET, 4, 5, 8, Body::Other(Vec::new()));
    assert!(answer(&cleanup, 0, &mut have).is_none());
    let mut other_context = get.clone();
    other_context.context = Some(b"ctx".to_vec());
    let reply = answer(&other_context, 0, &mut have).expect("a response");
    assert!(matches!(reply.body, Body::Response { error: error::UNSUPPORTED_CONTEXT, .. }));
    let reply = answer(&get, 0, &mut || None).expect("a response");
    assert!(matches!(reply.body, Body::Response { error: error::GEN_ERR, index: 1, .. }));
    // A context survives the round trip (flag and octet string).
    let back = Pdu::parse(&other_context.emit()).expect("parses");
    assert_eq!(back, emitted(&other_context));
    assert_eq!(back.header.flags, flags::NETWORK_BYTE_ORDER | flags::NON_DEFAULT_CONTEXT);
}

// Goal: `--snmp-agentx` tells a Unix socket path from a TCP address as net-snmp writes them.
#[test]
fn master_addresses() {
    assert_eq!(Master::parse("/var/agentx/master"), Master::Unix("/var/agentx/master".into()));
    assert_eq!(Master::parse("tcp:127.0.0.1:705"), Master::Tcp("127.0.0.1:705".into()));
    assert_eq!(Master::parse("127.0.0.1:705"), Master::Tcp("127.0.0.1:705".into()));
    assert_eq!(Master::parse("unix:/tmp/a:b"), Master::Unix("/tmp/a:b".into()));
    assert_eq!(Master::parse("./rel/socket"), Master::Unix("./rel/socket".into()));
}
