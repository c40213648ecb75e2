//! The real `registrar` binary's AgentX subagent against a master played by this test on a
//! Unix socket: the Open and Register it sends, its answers in either byte order, its answers
//! to undecodable and refused PDUs, and its reconnecting after the master closes on it or
//! goes away, the registrar running on throughout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registrar::io::agentx::mib::{RSERPOOL_MIB, RSERPOOL_MIB_OBJECTS};
use registrar::io::agentx::pdu::{
    close_reason, error, Body, Oid, Pdu, PduType, SearchRange, Value,
};
use registrar::io::agentx::{Frame, Framer};

use asap::Session;
use codec::asap::{Deregistration, Message, Registration};
use codec::{PoolElementId, PoolHandle};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

/// How long the subagent may take to (re)connect: its retry period (3 s) and slack for a
/// loaded machine.
const CONNECT_WAIT: Duration = Duration::from_secs(15);

struct Registrar(Child);

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for the subagent to connect.
fn accept(listener: &UnixListener) -> UnixStream {
    let deadline = Instant::now() + CONNECT_WAIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the subagent did not connect in time");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The next PDU from the subagent, or `None` at end of stream.
fn read(stream: &mut UnixStream, framer: &mut Framer) -> Option<Pdu> {
    let mut chunk = [0u8; 4096];
    loop {
        match framer.next_frame().expect("the subagent sends good headers") {
            Some(Frame::Pdu(pdu)) => return Some(pdu),
            Some(Frame::BadPayload(h, e)) => panic!("the subagent sent a bad {:?}: {e}", h.ty),
            None => {}
        }
        let n = stream.read(&mut chunk).expect("the subagent answers within 10 s");
        if n == 0 {
            return None;
        }
        framer.push(&chunk[..n]);
    }
}

fn response(to: &Pdu, session_id: u32, error: u16) -> Vec<u8> {
    let h = &to.header;
    let body = Body::Response { sys_up_time: 0, error, index: 0, varbinds: Vec::new() };
    Pdu::new(PduType::RESPONSE, session_id, h.transaction_id, h.packet_id, body).emit()
}

/// Plays the master's side of Open and Register; returns the session's stream.
fn open_session(listener: &UnixListener, session_id: u32) -> (UnixStream, Framer) {
    let mut stream = accept(listener);
    let mut framer = Framer::default();
    let open = read(&mut stream, &mut framer).expect("an Open");
    assert_eq!(open.header.ty, PduType::OPEN);
    let Body::Open { id, descr, .. } = &open.body else { panic!("an Open body") };
    assert_eq!(id, &Oid(RSERPOOL_MIB.to_vec()), "o.id is rserpoolMIB");
    assert!(String::from_utf8_lossy(descr).contains("rserpool"), "o.descr");
    stream.write_all(&response(&open, session_id, error::NO_ERROR)).unwrap();
    let register = read(&mut stream, &mut framer).expect("a Register");
    assert_eq!(register.header.session_id, session_id, "Register in the session opened");
    let Body::Register { subtree, .. } = &register.body else { panic!("a Register body") };
    assert_eq!(subtree, &Oid(RSERPOOL_MIB_OBJECTS.to_vec()), "registers rserpoolMIBObjects");
    stream.write_all(&response(&register, session_id, error::NO_ERROR)).unwrap();
    (stream, framer)
}

/// `pdu` as a little-endian master would send it (the NETWORK_BYTE_ORDER flag clear).
fn little_endian_get_next(session_id: u32, packet_id: u32, start: &[u32]) -> Vec<u8> {
    let mut b = vec![1u8, 6, 0, 0];
    for v in [session_id, 1, packet_id, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    // start OID in full (no prefix), include 0; end: null.
    b.extend_from_slice(&[start.len() as u8, 0, 0, 0]);
    for s in start {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b.extend_from_slice(&[0, 0, 0, 0]);
    let payload = (b.len() - 20) as u32;
    b[16..20].copy_from_slice(&payload.to_le_bytes());
    b
}

// Goal: the subagent opens, registers and answers as RFC 2741 says; an undecodable payload
// gets parseError and the session goes on; a set gets notWritable; a header it cannot frame
// makes it close with reasonParseError and come back; a master that vanishes is reconnected
// to; the registrar never stops. Method: this test is the master, on a Unix socket.
#[test]
fn subagent_serves_and_survives_its_master() {
    let dir = TempDir(std::env::temp_dir().join(format!("agentx-test-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("master");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &udp.to_string(), "--workers", "2", "--no-enrp", "--no-announce"])
        .arg("--snmp-agentx")
        .arg(&socket)
        .args(["--run-seconds", "90", "--log", "warn"])
        .stderr(Stdio::null())
        .spawn()
        .expect("the registrar binary runs");
    let mut registrar = Registrar(child);

    let (mut stream, mut framer) = open_session(&listener, 42);

    // A GetNext from rserpoolMIB, little-endian: the first instance, rserpoolENRPOperationScope.1.
    stream.write_all(&little_endian_get_next(42, 7, &RSERPOOL_MIB)).unwrap();
    let answer = read(&mut stream, &mut framer).expect("a Response");
    assert_eq!((answer.header.ty, answer.header.packet_id), (PduType::RESPONSE, 7));
    let Body::Response { error: e, varbinds, .. } = &answer.body else { panic!("a Response") };
    assert_eq!(*e, error::NO_ERROR);
    let first = Oid(vec![1, 3, 6, 1, 3, 125, 1, 1, 1, 1, 2, 1]);
    assert_eq!(varbinds[0].name, first, "{varbinds:?}");

    // A GetBulk in network byte order, 5 repetitions. Without ENRP and announces the MIB
    // holds the ENRP row's columns 2-6 only: columns 3-6, then endOfMibView.
    let range = SearchRange { start: first.clone(), include: false, end: Oid::default() };
    let bulk = Body::GetBulk { non_repeaters: 0, max_repetitions: 5, ranges: vec![range] };
    stream.write_all(&Pdu::new(PduType::GET_BULK, 42, 2, 8, bulk).emit()).unwrap();
    let answer = read(&mut stream, &mut framer).expect("a Response");
    let Body::Response { varbinds, .. } = &answer.body else { panic!("a Response") };
    let names: Vec<_> = varbinds.iter().map(|v| v.name.0.get(10).copied()).collect();
    assert_eq!(names, [Some(3), Some(4), Some(5), Some(6), Some(6)], "{varbinds:?}");
    assert_eq!(varbinds[4].value, Value::EndOfMibView);

    // A good header with a payload that does not decode (n_subid runs past the end).
    let mut junk = Pdu::new(PduType::GET_NEXT, 42, 3, 9, Body::Other(vec![200, 0, 0, 0])).emit();
    junk[1] = PduType::GET_NEXT.0;
    stream.write_all(&junk).unwrap();
    let answer = read(&mut stream, &mut framer).expect("a Response");
    assert_eq!(answer.header.packet_id, 9);
    assert!(matches!(answer.body, Body::Response { error: error::PARSE_ERROR, .. }), "{answer:?}");

    // A set: refused, the MIB being served read-only.
    let set = Pdu::new(PduType::TEST_SET, 42, 4, 10, Body::Other(Vec::new()));
    stream.write_all(&set.emit()).unwrap();
    let answer = read(&mut stream, &mut framer).expect("a Response");
    assert!(matches!(answer.body, Body::Response { error: error::NOT_WRITABLE, .. }), "{answer:?}");

    // A header it cannot frame (version 9): Close(parseError), then the connection ends.
    let mut bad = Pdu::new(PduType::GET, 42, 5, 11, Body::Get(Vec::new())).emit();
    bad[0] = 9;
    stream.write_all(&bad).unwrap();
    let close = read(&mut stream, &mut framer).expect("a Close");
    assert!(matches!(close.body, Body::Close { reason: close_reason::PARSE_ERROR }), "{close:?}");
    assert!(read(&mut stream, &mut framer).is_none(), "the subagent hangs up");
    assert!(registrar.0.try_wait().unwrap().is_none(), "the registrar runs on");

    // It comes back by itself; then the master vanishes (snmpd stopped) and it comes back again.
    let (stream, _) = open_session(&listener, 43);
    drop(stream);
    let (mut stream, mut framer) = open_session(&listener, 44);
    stream.write_all(&little_endian_get_next(44, 12, &RSERPOOL_MIB)).unwrap();
    let answer = read(&mut stream, &mut framer).expect("a Response");
    let Body::Response { varbinds, .. } = &answer.body else { panic!("a Response") };
    assert_eq!(varbinds[0].name, first, "served again after reconnecting");
    assert!(registrar.0.try_wait().unwrap().is_none(), "the registrar still runs");
}

/// Every instance under `column` (a column OID), by GetNext from the column on.
fn walk_column(
    stream: &mut UnixStream,
    framer: &mut Framer,
    column: &[u32],
) -> Vec<(Vec<u32>, Value)> {
    let mut rows = Vec::new();
    let mut at = column.to_vec();
    for packet in 100.. {
        stream.write_all(&little_endian_get_next(50, packet, &at)).unwrap();
        let answer = read(stream, framer).expect("a Response");
        let Body::Response { varbinds, .. } = answer.body else { panic!("a Response") };
        let vb = varbinds.into_iter().next().expect("one varbind");
        if !vb.name.starts_with(column) {
            return rows;
        }
        at = vb.name.0.clone();
        rows.push((vb.name.0[column.len()..].to_vec(), vb.value));
        assert!(rows.len() < 100, "the walk ends");
    }
    unreachable!()
}

// Goal: what the subagent serves is what the cores hold: PEs registered over ASAP (in pools
// on either of two cores) appear in rserpoolENRPPoolTable and rserpoolENRPPoolElementTable at
// the RFC 5525 indexes, and a deregistered PE is gone from the next snapshot (after the 1 s
// cache). Method: a registrar with 2 workers, three PEs registered with an ASAP session, the
// test as the AgentX master walking the columns.
#[test]
fn tables_follow_the_handlespace() {
    let dir = TempDir(std::env::temp_dir().join(format!("agentx-tables-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("master");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp_port = common::free_udp_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &format!("127.0.0.1:{udp_port}"), "--workers", "2"])
        .args(["--no-enrp", "--no-announce", "--keep-alive-interval-ms", "600000"])
        .arg("--snmp-agentx")
        .arg(&socket)
        .args(["--run-seconds", "90", "--log", "warn"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("the registrar binary runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let _registrar = Registrar(child);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("registrar ready"), "registrar said: {line}");
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| eprintln!("{l}")));

    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let transport = SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [7; 32]).unwrap();
    let registrar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863);
    let mut pe = Session::connect(transport, registrar, Duration::from_secs(5)).unwrap();
    let pool = |name: &str| PoolHandle::new(name.as_bytes()).unwrap();
    for (name, id) in [("beta", 0x21), ("alpha", 0x12), ("alpha", 0x11)] {
        let m = Registration { pool_handle: pool(name), pool_element: common::element(id) };
        pe.send(&Message::Registration(m)).unwrap();
        let answer = pe.recv(Duration::from_secs(5)).expect("a Registration Response");
        assert!(
            matches!(answer, Message::RegistrationResponse(ref r) if r.error.is_none()),
            "{answer:?}"
        );
    }

    let (mut stream, mut framer) = open_session(&listener, 50);
    let tables = [1, 3, 6, 1, 3, 125, 1, 1];
    let column = |table: u32, column: u32| [&tables[..], &[table, 1, column]].concat();
    let handles = walk_column(&mut stream, &mut framer, &column(3, 2));
    assert_eq!(
        handles,
        [
            (vec![1, 1], Value::OctetString(b"alpha".to_vec())),
            (vec![1, 2], Value::OctetString(b"beta".to_vec())),
        ]
    );
    let ids = walk_column(&mut stream, &mut framer, &column(4, 2));
    let want = [(vec![1, 1, 1], 0x11), (vec![1, 1, 2], 0x12), (vec![1, 2, 1], 0x21)];
    assert_eq!(ids, want.map(|(i, id)| (i, Value::Gauge32(id))));
    let ports = walk_column(&mut stream, &mut framer, &column(4, 5));
    assert_eq!(ports[1], (vec![1, 1, 2], Value::Gauge32(20_000 + 0x12)), "common::element's port");

    let m = Deregistration { pool_handle: pool("alpha"), pe_id: PoolElementId(0x11) };
    pe.send(&Message::Deregistration(m)).unwrap();
    pe.recv(Duration::from_secs(5)).expect("a Deregistration Response");
    std::thread::sleep(Duration::from_millis(1_200)); // past the snapshot cache
    let ids = walk_column(&mut stream, &mut framer, &column(4, 2));
    let want = [(vec![1, 1, 1], 0x12), (vec![1, 2, 1], 0x21)];
    assert_eq!(ids, want.map(|(i, id)| (i, Value::Gauge32(id))), "0x11 is gone; 0x12 moves up");
}
