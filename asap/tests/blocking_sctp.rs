//! `SctpService` and `SctpPoolSession` over loopback (SCTP in UDP) against the scripted
//! registrar (tests/common).
//!
//! Goal: the PE↔PU control channel works end to end (RFC 5352 §3.7-§3.9): the PU keeps the
//! last cookie its PE sent, and when that PE dies it reports it unreachable exactly once,
//! fails over to the next PE and sends it the Cookie Echo before any user message; a
//! Business Card reaches the PE; a PE that never existed is a typed error, not a hang.
//! Method: two echo PEs, each an `SctpService` in a thread that sends a cookie after every
//! message and records what it receives; the PU's session talks to the first, the first is
//! stopped (its socket closed, so it never answers), the PU fails over.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use asap::blocking::{
    BlockingError, Driver, PeFailure, PoolUser, SctpPoolSession, SctpService, ServiceEvent,
    SessionNote,
};
use asap::control::ControlError;
use asap::{EndpointConfig, PeConfig};
use codec::param::{AddressList, Policy, SctpTransport, UserTransport};
use codec::{PoolElementId, PoolHandle, TransportUse};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{Ppid, StreamId};

mod common;
use common::LOCALHOST;

const TIMEOUT: Duration = Duration::from_secs(5);
const APP: Ppid = Ppid(0x0100);

fn config() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)];
    config
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"sctp").unwrap()
}

fn sctp(port: u16) -> UserTransport {
    UserTransport::Sctp(SctpTransport {
        port,
        transport_use: TransportUse::DATA_PLUS_CONTROL,
        addresses: AddressList::from_slice(&[LOCALHOST]).unwrap(),
    })
}

/// An echo PE's service in a thread: what it received goes to `seen`, in order.
struct EchoPe {
    port: u16,
    seen: mpsc::Receiver<ServiceEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoPe {
    fn start(id: u32) -> Self {
        let (port_out, port_in) = mpsc::channel();
        let (seen_out, seen) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            // SCTP port = UDP port, so a PU reaches it with remote_udp_port 0.
            let udp = SocketAddr::new(LOCALHOST, 0);
            let transport = SctpUdpTransport::bind(udp, SctpUdpConfig::default(), [id as u8; 32]);
            let transport = transport.unwrap();
            let port = transport.local_addr().port();
            let mut service = SctpService::new(transport, port).unwrap();
            port_out.send(port).unwrap();
            let mut lines = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let until = Instant::now() + Duration::from_millis(20);
                let Some(event) = service.next_event(until).unwrap() else { continue };
                if let ServiceEvent::Data { assoc, stream, ppid, data } = &event {
                    lines += 1;
                    service.send(*assoc, *stream, *ppid, data).unwrap();
                    service
                        .send_cookie(*assoc, format!("pe={id};lines={lines}").as_bytes())
                        .unwrap();
                }
                let _ = seen_out.send(event);
            }
        });
        let port = port_in.recv_timeout(TIMEOUT).unwrap();
        Self { port, seen, stop, thread: Some(thread) }
    }

    /// Ends the service; its socket closes, so the PU hears nothing more from it.
    fn kill(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// The events it saw, up to and including the first `Data`, waiting up to `TIMEOUT`.
    fn until_data(&self) -> Vec<ServiceEvent> {
        let mut got = Vec::new();
        while let Ok(event) = self.seen.recv_timeout(TIMEOUT) {
            let data = matches!(event, ServiceEvent::Data { .. });
            got.push(event);
            if data {
                break;
            }
        }
        got
    }
}

impl Drop for EchoPe {
    fn drop(&mut self) {
        self.kill();
    }
}

fn session_transport() -> SctpUdpTransport {
    let cfg = SctpUdpConfig { remote_udp_port: 0, ..Default::default() };
    SctpUdpTransport::bind(SocketAddr::new(LOCALHOST, 0), cfg, [9; 32]).unwrap()
}

fn exchange<T: transport::SctpTransport>(
    session: &mut SctpPoolSession<SctpUdpTransport>,
    user: &mut PoolUser<T>,
    line: &[u8],
    wait: Duration,
) -> Result<Option<Vec<u8>>, BlockingError> {
    session.send(line)?;
    session.receive(user, Instant::now() + wait)
}

#[test]
fn failover_reports_once_and_echoes_the_last_cookie_first() {
    let registrar = common::start();
    let mut first = EchoPe::start(1);
    let second = EchoPe::start(2);
    let mut pes = Driver::new(common::client_transport(registrar.udp_port).unwrap(), config(), 1);
    for (id, port) in [(1, first.port), (2, second.port)] {
        let mut pe = PeConfig::new(pool(), sctp(port), Policy::RoundRobin);
        pe.id = Some(PoolElementId(id));
        pes.register(pe, TIMEOUT).unwrap();
    }
    let mut user =
        PoolUser::new(common::client_transport(registrar.udp_port).unwrap(), config(), 2);
    let mut session = SctpPoolSession::new(session_transport(), pool(), APP);

    let pe = session.connect(&mut user, TIMEOUT).unwrap();
    assert_eq!(pe.id, PoolElementId(1));
    for (line, cookie) in [(&b"one"[..], &b"pe=1;lines=1"[..]), (b"two", b"pe=1;lines=2")] {
        assert_eq!(exchange(&mut session, &mut user, line, TIMEOUT).unwrap(), Some(line.into()));
        // The cookie follows the echo on the same stream, so one more turn brings it.
        let _ = session.receive(&mut user, Instant::now() + Duration::from_millis(200));
        assert_eq!(session.cookie(), Some(cookie));
    }
    let notes = session.take_notes();
    assert_eq!(notes.iter().filter(|n| matches!(n, SessionNote::Cookie(_))).count(), 2);
    let events = first.until_data();
    assert!(matches!(events[..], [ServiceEvent::Up { .. }, ServiceEvent::Data { .. }]));

    first.kill();
    let silent = exchange(&mut session, &mut user, b"three", Duration::from_millis(500));
    assert!(matches!(silent, Ok(None)), "{silent:?}");
    let pe = session.fail_over(&mut user, TIMEOUT).unwrap();
    assert_eq!(pe.id, PoolElementId(2));
    assert!(session.take_notes().contains(&SessionNote::CookieEchoed { pe: pe.id }));
    let reply = exchange(&mut session, &mut user, b"three", TIMEOUT).unwrap();
    assert_eq!(reply.as_deref(), Some(&b"three"[..]));
    // The Cookie Echo came first on the new association, before any user message.
    let events = second.until_data();
    let order: Vec<&str> = events
        .iter()
        .map(|e| match e {
            ServiceEvent::Up { .. } => "up",
            ServiceEvent::CookieEcho { cookie, .. } if cookie == b"pe=1;lines=2" => "echo",
            ServiceEvent::Data { data, .. } if data == b"three" => "data",
            _ => "other",
        })
        .collect();
    assert_eq!(order, ["up", "echo", "data"]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while registrar.unreachable.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let reports: Vec<u32> =
        registrar.unreachable.lock().unwrap().iter().map(|u| u.pe_id.0).collect();
    assert_eq!(reports, [1], "one failure, one Endpoint Unreachable");

    // §3.9: a PU's Business Card reaches the PE as such.
    session.send_business_card(pool(), std::slice::from_ref(&pe)).unwrap();
    let _ = exchange(&mut session, &mut user, b"four", TIMEOUT).unwrap();
    let events = second.until_data();
    assert!(
        events.iter().any(|e| matches!(e, ServiceEvent::BusinessCard { card, .. }
            if card.pool_handle == pool() && card.pool_elements[0].id == pe.id)),
        "{events:?}"
    );
    session.close(Duration::from_millis(500));
}

// Goal: a PE that does not answer the association setup is a typed error within the
// timeout, and a session without an association says so. Method: open a PE whose port
// nobody listens on; send before any open.
#[test]
fn an_unreachable_pe_is_a_typed_error() {
    let registrar = common::start();
    let mut user =
        PoolUser::new(common::client_transport(registrar.udp_port).unwrap(), config(), 3);
    let mut session = SctpPoolSession::new(session_transport(), pool(), APP);
    assert!(matches!(session.send(b"x"), Err(BlockingError::NotConnected)));
    let closed = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let mut pe = codec::PoolElement {
        id: PoolElementId(7),
        home_registrar: codec::RegistrarId(1),
        registration_life_ms: 1_000,
        user_transport: sctp(closed),
        policy: Policy::RoundRobin,
        asap_transport: None,
    };
    let started = Instant::now();
    let got = session.open(&mut user, pe.clone(), Duration::from_millis(300));
    assert!(
        matches!(got, Err(BlockingError::PoolElementFailed { pe: PoolElementId(7), why })
            if why == PeFailure::NoAnswer || why == PeFailure::Refused),
        "{got:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    pe.user_transport = UserTransport::Udp { port: closed, address: LOCALHOST };
    let got = session.open(&mut user, pe, TIMEOUT);
    assert!(matches!(got, Err(BlockingError::NoSctpPoolElement(_))), "{got:?}");
}

// Goal: bytes from a PU that are not ASAP, on the control channel (PPID 11), are a typed
// event and leave the association working; a Cookie Echo is handed over unmodified. Method:
// a raw SCTP client sends garbage with PPID 11, then a Cookie Echo, then a line.
#[test]
fn garbage_on_the_control_channel_is_dropped_with_a_typed_error() {
    use transport::{SctpTransport as _, TransportEvent};
    let pe = EchoPe::start(5);
    let mut client = session_transport();
    let assoc = client.connect(Instant::now(), SocketAddr::new(LOCALHOST, pe.port)).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut up = false;
    let mut echoed = false;
    let mut sent = false;
    while !echoed && Instant::now() < deadline {
        let now = Instant::now();
        client.wait(now, Some(now + Duration::from_millis(10))).unwrap();
        client
            .poll(Instant::now(), 64, |e| match e {
                TransportEvent::Up { .. } => up = true,
                TransportEvent::Data { ppid, data, .. } if ppid == APP => {
                    echoed = data == b"after";
                }
                _ => {}
            })
            .unwrap();
        if up && !sent {
            let echo = codec::asap::Message::CookieEcho(codec::asap::CookieEcho {
                cookie: b"state".to_vec(),
            });
            let now = Instant::now();
            client.send(now, assoc, StreamId(0), Ppid::ASAP, b"\x0b\x00\xff\xffjunk").unwrap();
            client.send(now, assoc, StreamId(0), Ppid::ASAP, &echo.emit_to_vec()).unwrap();
            client.send(now, assoc, StreamId(0), APP, b"after").unwrap();
            sent = true;
        }
    }
    assert!(echoed, "the line after the garbage was echoed");
    let events = pe.until_data();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            ServiceEvent::Up { .. } => "up",
            ServiceEvent::ControlDropped { error: ControlError::Decode(_), .. } => "dropped",
            ServiceEvent::CookieEcho { cookie, .. } if cookie == b"state" => "echo",
            ServiceEvent::Data { .. } => "data",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["up", "dropped", "echo", "data"]);
}
