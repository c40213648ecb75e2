//! The services a PE runs: echo (RFC 862), discard (RFC 863) and daytime (RFC 867), each on
//! TCP and UDP at one port, or on SCTP with the ASAP control channel (RFC 5352 §3.7-§3.9), in
//! background threads that live as long as the process.
//!
//! Over SCTP every user message is one line's worth: echo sends it back with its PPID and then
//! an ASAP Cookie `pe=0x…;lines=N` (its PE id, and the messages this PU has sent so far,
//! counting on from an echoed cookie); daytime answers each message with the time; discard
//! drops them. A new association, a Cookie Echo, a Business Card and a dropped control
//! message are one stdout line each.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asap::blocking::{SctpService, ServiceEvent};
use transport::{AssocId, Ppid, StreamId};

use crate::cli::{Global, Service};
use crate::format::id_hex;
use crate::say;

/// TCP connections served at once; one more is closed at accept, so a flood of clients
/// costs a bounded number of threads.
const CONNECTIONS_MAX: usize = 64;

/// A TCP client that sends nothing for this long is dropped, so idle clients free their slot.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest UDP datagram read (the largest IPv4 UDP payload).
const DATAGRAM_LEN_MAX: usize = 65_507;

/// Binds `service` on TCP and UDP at `address:port` (port 0: a free port, the same for both)
/// and serves it in the background. Returns the port.
pub(crate) fn start(service: Service, address: IpAddr, port: u16) -> io::Result<u16> {
    let (listener, udp) = bind_both(address, port)?;
    let port = listener.local_addr()?.port();
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("tcp-accept".to_owned())
        .spawn(move || accept_loop(&listener, service, &active))?;
    std::thread::Builder::new().name("udp".to_owned()).spawn(move || udp_loop(&udp, service))?;
    Ok(port)
}

/// Binds `service` on SCTP at `address:port` (over UDP: the UDP port is the SCTP port; 0: a
/// free one) and serves it in the background, with `pe_id` (set once registered) in its
/// cookies. Returns the port.
pub(crate) fn start_sctp(
    service: Service,
    global: &Global,
    address: IpAddr,
    port: u16,
    pe_id: Arc<AtomicU32>,
) -> anyhow::Result<u16> {
    let (bound_out, bound) = mpsc::channel();
    let global = global.clone();
    // The transport is made in its thread, which owns it for good.
    std::thread::Builder::new().name("sctp".to_owned()).spawn(move || {
        let started = crate::net::sctp_at(&global, SocketAddr::new(address, port), 0, false)
            .and_then(|transport| {
                let port = transport.local_addr().port();
                let service = SctpService::new(transport, port)
                    .map_err(|e| anyhow::anyhow!("cannot listen on SCTP port {port}: {e}"))?;
                Ok((service, port))
            });
        match started {
            Ok((sctp, port)) => {
                let _ = bound_out.send(Ok(port));
                sctp_loop(sctp, service, &pe_id);
            }
            Err(e) => {
                let _ = bound_out.send(Err(e));
            }
        }
    })?;
    bound.recv().map_err(|_| anyhow::anyhow!("the SCTP service thread ended"))?
}

/// What the SCTP service knows of one PU's association.
struct PoolUserState {
    peer: SocketAddr,
    lines: u64,
}

fn sctp_loop(mut sctp: SctpService<crate::net::Backend>, service: Service, pe_id: &AtomicU32) {
    let mut users: HashMap<AssocId, PoolUserState> = HashMap::new();
    loop {
        let until = std::time::Instant::now() + Duration::from_millis(100);
        let event = match sctp.next_event(until) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => {
                say(format_args!("SCTP service stopped: {e}"));
                return;
            }
        };
        let peer_of = |users: &HashMap<AssocId, PoolUserState>, assoc| {
            users.get(&assoc).map_or_else(|| "?".to_owned(), |u| u.peer.to_string())
        };
        match event {
            ServiceEvent::Up { assoc, peer } => {
                say(format_args!("association from PU at {peer}"));
                users.insert(assoc, PoolUserState { peer, lines: 0 });
            }
            ServiceEvent::Closed { assoc } => {
                users.remove(&assoc);
            }
            ServiceEvent::CookieEcho { assoc, cookie } => {
                let text = String::from_utf8_lossy(&cookie);
                say(format_args!("cookie echo from PU at {}: {text}", peer_of(&users, assoc)));
                if let (Some(user), Some(lines)) = (users.get_mut(&assoc), lines_in(&text)) {
                    user.lines = lines;
                }
            }
            ServiceEvent::BusinessCard { assoc, card } => say(format_args!(
                "business card from PU at {}: pool \"{}\", {} PEs",
                peer_of(&users, assoc),
                card.pool_handle,
                card.pool_elements.len()
            )),
            ServiceEvent::ControlDropped { assoc, error } => say(format_args!(
                "dropped a control message from PU at {}: {error}",
                peer_of(&users, assoc)
            )),
            ServiceEvent::Data { assoc, stream, ppid, data } => {
                // A failed send means the PU went away; its Closed event follows.
                let _ = answer(&mut sctp, service, assoc, stream, ppid, &data);
                if service == Service::Echo {
                    let Some(user) = users.get_mut(&assoc) else { continue };
                    user.lines += 1;
                    let id = id_hex(pe_id.load(Ordering::Relaxed));
                    let state = format!("pe={id};lines={}", user.lines);
                    let _ = sctp.send_cookie(assoc, state.as_bytes());
                }
            }
        }
    }
}

fn answer(
    sctp: &mut SctpService<crate::net::Backend>,
    service: Service,
    assoc: AssocId,
    stream: StreamId,
    ppid: Ppid,
    data: &[u8],
) -> Result<(), asap::blocking::BlockingError> {
    match service {
        Service::Daytime => {
            sctp.send(assoc, stream, ppid, daytime_line(SystemTime::now()).as_bytes())
        }
        Service::Discard => Ok(()),
        Service::Echo => sctp.send(assoc, stream, ppid, data),
    }
}

/// The line count of one of our cookies (`pe=…;lines=N`), if it is one.
fn lines_in(cookie: &str) -> Option<u64> {
    cookie.split(';').find_map(|field| field.strip_prefix("lines=")?.parse().ok())
}

/// The time as the daytime service sends it, one line: `2024-05-01 12:34:56 UTC\r\n`.
pub(crate) fn daytime_line(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3_600, rest % 3_600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC\r\n")
}

/// TCP and UDP on one port. With port 0, the TCP port the kernel picks may be taken in UDP;
/// a few tries find one free in both.
fn bind_both(address: IpAddr, port: u16) -> io::Result<(TcpListener, UdpSocket)> {
    let tries = if port == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let listener = TcpListener::bind(SocketAddr::new(address, port))?;
        let bound = listener.local_addr()?;
        match UdpSocket::bind(bound) {
            Ok(udp) => return Ok((listener, udp)),
            Err(e) => last = Some(e),
        }
    }
    // `tries` is at least 1 and every try that did not return stored its error.
    Err(last.expect("at least one try ran"))
}

fn accept_loop(listener: &TcpListener, service: Service, active: &Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        // A failed accept (the client gave up, or file descriptors ran out) ends only that
        // client; the next one may well succeed.
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= CONNECTIONS_MAX {
            active.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let slot = Arc::clone(active);
        let spawned = std::thread::Builder::new().name("tcp-client".to_owned()).spawn(move || {
            // Errors end this client only: it went away, or sent nothing for too long.
            let _ = serve_tcp(stream, service);
            slot.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn serve_tcp(mut stream: TcpStream, service: Service) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buffer = [0u8; 4_096];
    match service {
        Service::Daytime => stream.write_all(daytime_line(SystemTime::now()).as_bytes()),
        Service::Discard => loop {
            if stream.read(&mut buffer)? == 0 {
                return Ok(());
            }
        },
        Service::Echo => loop {
            let n = stream.read(&mut buffer)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buffer[..n])?;
        },
    }
}

fn udp_loop(socket: &UdpSocket, service: Service) {
    let mut buffer = vec![0u8; DATAGRAM_LEN_MAX];
    loop {
        // A failed receive (an ICMP error reported on the socket) concerns one peer only.
        let Ok((n, from)) = socket.recv_from(&mut buffer) else { continue };
        // A reply that cannot be sent is lost, as UDP datagrams may be.
        let _ = match service {
            Service::Daytime => socket.send_to(daytime_line(SystemTime::now()).as_bytes(), from),
            Service::Discard => Ok(0),
            Service::Echo => socket.send_to(&buffer[..n], from),
        };
    }
}

/// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};

    use super::*;

    // Goal: the line count is read back from our own cookies only. Method: ours, a foreign
    // one, and a malformed count.
    #[test]
    fn cookie_line_counts() {
        assert_eq!(lines_in("pe=0x00000001;lines=12"), Some(12));
        assert_eq!(lines_in("rsplib-state"), None);
        assert_eq!(lines_in("pe=1;lines=-3"), None);
    }

    // Goal: the daytime line is the right civil date. Method: known instants, including a
    // leap day and the epoch.
    #[test]
    fn daytime_dates() {
        let at = |secs| daytime_line(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC\r\n");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC\r\n");
        assert_eq!(at(1_714_566_896), "2024-05-01 12:34:56 UTC\r\n");
    }

    // Goal: each service answers as its RFC says on TCP and UDP. Method: start each on a
    // free loopback port and talk to it.
    #[test]
    fn services_answer_on_tcp_and_udp() {
        let localhost: IpAddr = "127.0.0.1".parse().unwrap();
        let timeout = Some(Duration::from_secs(5));

        let port = start(Service::Echo, localhost, 0).unwrap();
        let stream = TcpStream::connect((localhost, port)).unwrap();
        stream.set_read_timeout(timeout).unwrap();
        (&stream).write_all(b"hello\n").unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        assert_eq!(line, "hello\n");
        let udp = UdpSocket::bind((localhost, 0)).unwrap();
        udp.set_read_timeout(timeout).unwrap();
        udp.send_to(b"ping", (localhost, port)).unwrap();
        let mut buffer = [0u8; 16];
        let (n, _) = udp.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"ping");

        let port = start(Service::Daytime, localhost, 0).unwrap();
        let mut text = String::new();
        TcpStream::connect((localhost, port)).unwrap().read_to_string(&mut text).unwrap();
        assert!(text.ends_with(" UTC\r\n"), "{text:?}");

        let port = start(Service::Discard, localhost, 0).unwrap();
        let mut stream = TcpStream::connect((localhost, port)).unwrap();
        stream.write_all(b"gone\n").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream.set_read_timeout(timeout).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
