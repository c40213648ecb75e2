//! sctp_echo: an echo client and server over [`transport::SctpTransport`], used by
//! `transport/lab/kernel-sctp-echo.sh` inside the lab VM (kernel SCTP there; none here).
//!
//! ```text
//! sctp_echo kernel-selftest            kernel client <-> kernel server in one process
//! sctp_echo udp-selftest               the same for our userspace SCTP over UDP (any host)
//! sctp_echo collide                    INIT collision: kernel SCTP and ours connect to each other
//!                                      at once (kernel on 127.0.0.1:9916, ours on UDP 9900)
//! sctp_echo kernel-server ADDR SECS    echo on ADDR (kernel SCTP) for SECS seconds
//! sctp_echo kernel-client ADDR         run the client checks against an echo server at ADDR
//! sctp_echo one-to-one-selftest        one-to-one kernel client sockets (loadgen's kernel
//!                                      clients) <-> the one-to-many kernel server, in one
//!                                      process, and a connect to a closed port (Lost)
//! sctp_echo one-to-one-client ADDR     the client checks from one-to-one sockets against ADDR
//! sctp_echo udp-server PORT UDP SECS   userspace SCTP (RFC 6951) echo on SCTP PORT, UDP addr UDP
//! sctp_echo udp-client ADDR UDP RPORT  userspace client from UDP addr UDP to SCTP ADDR,
//!                                      whose UDP port is RPORT (the kernel's net.sctp.udp_port)
//! ```
//! Client checks: PPID 11 and 12 both ways, a 64 KiB message, peer addresses, graceful
//! shutdown (Closed on both sides), and ABORT (Lost on the server). Prints `PASS`/`FAIL` lines
//! and ends with `N passed, M failed`; exit status 1 on any failure.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use transport::kernel_sctp::{KernelSctp, KernelSctpConfig, KernelSctpOneToOne};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport, SCTP_UDP_PORT};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportEvent, UdpRingConfig};

/// Bound on every phase: the VM runs under slow software emulation.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);
const LARGE_LEN: usize = 65_536;
/// Asks the echo server to shut the association down gracefully instead of echoing.
const SHUTDOWN_REQUEST: &[u8] = b"please shutdown";
/// Asks the echo server to abort the association instead of echoing.
const ABORT_REQUEST: &[u8] = b"please abort";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let result = match mode {
        "kernel-selftest" => kernel_selftest(),
        "udp-selftest" => udp_selftest(),
        "collide" => collide(),
        "kernel-server" => {
            let addr = parse_addr(args.get(2));
            let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60);
            let mut server = kernel(addr);
            server.listen(server.local_addr().port()).expect("listen");
            serve_for(&mut server, Duration::from_secs(secs));
            return ExitCode::SUCCESS;
        }
        "kernel-client" => {
            let mut client = kernel("0.0.0.0:0".parse().unwrap());
            let mut report = Report::default();
            run_client_checks(
                &mut client,
                None::<&mut KernelSctp>,
                parse_addr(args.get(2)),
                &mut report,
            );
            report
        }
        "one-to-one-selftest" => one_to_one_selftest(),
        "one-to-one-client" => {
            let mut client = one_to_one("0.0.0.0:0".parse().unwrap());
            let mut report = Report::default();
            run_client_checks(
                &mut client,
                None::<&mut KernelSctp>,
                parse_addr(args.get(2)),
                &mut report,
            );
            report
        }
        "udp-server" => {
            let port: u16 = args.get(2).and_then(|s| s.parse().ok()).expect("SCTP port");
            let mut server = userspace(parse_addr(args.get(3)), SCTP_UDP_PORT);
            server.listen(port).expect("listen");
            let secs = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);
            serve_for(&mut server, Duration::from_secs(secs));
            return ExitCode::SUCCESS;
        }
        "udp-client" => {
            let target = parse_addr(args.get(2));
            let rport = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(SCTP_UDP_PORT);
            let mut client = userspace(parse_addr(args.get(3)), rport);
            let mut report = Report::default();
            run_client_checks(&mut client, None::<&mut KernelSctp>, target, &mut report);
            report
        }
        _ => {
            eprintln!("usage: see the doc comment at the top of examples/sctp_echo.rs");
            return ExitCode::from(2);
        }
    };
    println!("{} passed, {} failed", result.passed, result.failed);
    if result.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// RFC 9260 §5.2.1 INIT collision between kernel SCTP (over UDP, so run after the sysctl) and
/// ours: both connect before either polls; each side must end with one association, up, that
/// carries a message both ways.
fn collide() -> Report {
    let mut report = Report::default();
    let mut kernel_side = kernel("127.0.0.1:9916".parse().unwrap());
    let mut ours = userspace("127.0.0.1:9900".parse().unwrap(), SCTP_UDP_PORT);
    let ok = kernel_side.listen(9916).is_ok() && ours.listen(9917).is_ok();
    report.check("collide: listen", ok);
    let now = Instant::now();
    let k = kernel_side.connect(now, "127.0.0.1:9917".parse().unwrap());
    let u = ours.connect(now, "127.0.0.1:9916".parse().unwrap());
    report.check("collide: both connect", k.is_ok() && u.is_ok());
    let (mut k_up, mut u_up) = (Vec::new(), Vec::new());
    let (mut k_data, mut u_data) = (0u32, 0u32);
    let start = Instant::now();
    let mut sent = false;
    while start.elapsed() < PHASE_TIMEOUT && (k_data == 0 || u_data == 0) {
        let now = Instant::now();
        kernel_side
            .poll(now, 64, |ev| match ev {
                TransportEvent::Up { assoc, .. } => k_up.push(assoc),
                TransportEvent::Data { .. } => k_data += 1,
                _ => {}
            })
            .expect("kernel poll");
        ours.poll(now, 64, |ev| match ev {
            TransportEvent::Up { assoc, .. } => u_up.push(assoc),
            TransportEvent::Data { .. } => u_data += 1,
            _ => {}
        })
        .expect("userspace poll");
        if !sent && !k_up.is_empty() && !u_up.is_empty() {
            let (ka, ua) = (*k_up.last().unwrap(), *u_up.last().unwrap());
            let a = kernel_side.send(now, ka, StreamId(0), Ppid::ENRP, b"from kernel");
            let b = ours.send(now, ua, StreamId(0), Ppid::ENRP, b"from userspace");
            report.check("collide: send both ways", a.is_ok() && b.is_ok());
            sent = true;
        }
        ours.wait(now, Some(now + Duration::from_millis(2))).expect("userspace wait");
    }
    println!("collide: kernel saw Up {k_up:?}, userspace saw Up {u_up:?}");
    report.check("collide: one association each side", k_up.len() == 1 && u_up.len() == 1);
    report.check("collide: message delivered both ways", k_data >= 1 && u_data >= 1);
    report
}

/// The userspace backend against itself in one process (runs on any host).
fn udp_selftest() -> Report {
    let mut report = Report::default();
    let mut server = userspace("127.0.0.1:0".parse().unwrap(), SCTP_UDP_PORT);
    report.check("userspace listen", server.listen(9912).is_ok());
    let server_udp_port = server.local_addr().port();
    let mut client = userspace("127.0.0.1:0".parse().unwrap(), server_udp_port);
    let target = "127.0.0.1:9912".parse().unwrap();
    run_client_checks(&mut client, Some(&mut server), target, &mut report);
    report
}

fn kernel_selftest() -> Report {
    let mut report = Report::default();
    // A multi-address (bindx) server when the lab's TEST-NET addresses exist, else loopback.
    let mut addrs: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
    addrs.push("192.0.2.1:0".parse().unwrap());
    let cfg = KernelSctpConfig { local_addrs: addrs, ..Default::default() };
    let mut server = match KernelSctp::open(cfg) {
        Ok(s) => s,
        Err(e) => {
            println!("note: multi-address bind failed ({e}); single address");
            kernel("127.0.0.1:0".parse().unwrap())
        }
    };
    let port = server.local_addr().port();
    report.check("kernel listen", server.listen(port).is_ok());
    let mut client = kernel("127.0.0.1:0".parse().unwrap());
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    run_client_checks(&mut client, Some(&mut server), target, &mut report);
    report
}

/// One-to-one client sockets against the one-to-many server, then a connect to a port nobody
/// listens on, which must end in `Lost` (the kernel answers INIT with ABORT).
fn one_to_one_selftest() -> Report {
    let mut report = Report::default();
    let mut server = kernel("127.0.0.1:0".parse().unwrap());
    let port = server.local_addr().port();
    report.check("kernel listen", server.listen(port).is_ok());
    let mut client = one_to_one("127.0.0.1:0".parse().unwrap());
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    run_client_checks(&mut client, Some(&mut server), target, &mut report);
    report.check("every association ended and its socket closed", client.associations() == 0);
    let mut echo = EchoState::default();
    let closed: SocketAddr = "127.0.0.1:9".parse().unwrap();
    match client.connect(Instant::now(), closed) {
        Ok(assoc) => {
            let lost = drive(
                &mut client,
                &mut Some(&mut server),
                &mut echo,
                |ev| matches!(ev, Seen::Lost(a) if *a == assoc),
            );
            report.check("connect to a closed port ends in Lost", lost);
        }
        Err(e) => report.check(&format!("connect to a closed port: {e}"), false),
    }
    report.check("its socket is closed too", client.associations() == 0);
    report
}

/// Drives `client` (and `server`, when in-process) through the checks.
fn run_client_checks<C: SctpTransport, S: SctpTransport>(
    client: &mut C,
    mut server: Option<&mut S>,
    target: SocketAddr,
    report: &mut Report,
) {
    let mut echo = EchoState::default();
    let assoc = match client.connect(Instant::now(), target) {
        Ok(a) => a,
        Err(e) => {
            report.check(&format!("connect: {e}"), false);
            return;
        }
    };
    let up = drive(client, &mut server, &mut echo, |ev| matches!(ev, Seen::Up(a) if *a == assoc));
    report.check("association up (client sees Up)", up);
    let mut peers = ["0.0.0.0:0".parse().unwrap(); 4];
    let n = client.peer_addresses(assoc, &mut peers).unwrap_or(0);
    report.check(&format!("peer addresses ({n}: {:?})", &peers[..n.min(4)]), n >= 1);

    let messages: [(Ppid, StreamId, Vec<u8>); 3] = [
        (Ppid::ASAP, StreamId(0), b"asap hello".to_vec()),
        (Ppid::ENRP, StreamId(1), b"enrp hello".to_vec()),
        (Ppid::ENRP, StreamId(0), (0..LARGE_LEN).map(|i| i as u8).collect()),
    ];
    for (ppid, stream, data) in &messages {
        let sent = client.send(Instant::now(), assoc, *stream, *ppid, data).is_ok();
        let want = data.clone();
        let ok = sent
            && drive(client, &mut server, &mut echo, |ev| match ev {
                Seen::Data(a, s, p, d) => (*a, s, p, d) == (assoc, stream, ppid, &want),
                _ => false,
            });
        report.check(&format!("echo {ppid:?} stream {} {} bytes", stream.0, data.len()), ok);
    }

    let shut = client.shutdown(Instant::now(), assoc).is_ok();
    let closed = shut
        && drive(client, &mut server, &mut echo, |ev| matches!(ev, Seen::Closed(a) if *a == assoc));
    report.check("graceful shutdown (client sees Closed)", closed);

    let second = client.connect(Instant::now(), target);
    let Ok(second) = second else {
        report.check("second connect", false);
        return;
    };
    let up = drive(client, &mut server, &mut echo, |ev| matches!(ev, Seen::Up(a) if *a == second));
    let aborted = up && client.abort(Instant::now(), second).is_ok();
    report.check("abort accepted", aborted);
    if server.is_some() {
        let lost_before = echo.server_lost;
        let lost = drive_until(client, &mut server, &mut echo, &mut |_| false, |e| {
            e.server_lost > lost_before
        });
        report.check("server sees Lost after ABORT", lost);
    }
    server_initiated(client, &mut server, &mut echo, target, report);
}

/// Shutdown and ABORT started by the server (on request), seen by the client.
fn server_initiated<C: SctpTransport, S: SctpTransport>(
    client: &mut C,
    server: &mut Option<&mut S>,
    echo: &mut EchoState,
    target: SocketAddr,
    report: &mut Report,
) {
    for (request, name) in [
        (SHUTDOWN_REQUEST, "server-initiated shutdown (client sees Closed)"),
        (ABORT_REQUEST, "server-initiated ABORT (client sees Lost)"),
    ] {
        let Ok(assoc) = client.connect(Instant::now(), target) else {
            report.check(name, false);
            continue;
        };
        let up = drive(client, server, echo, |ev| matches!(ev, Seen::Up(a) if *a == assoc));
        let asked =
            up && client.send(Instant::now(), assoc, StreamId(0), Ppid::ASAP, request).is_ok();
        let ended = asked
            && drive(client, server, echo, |ev| match ev {
                Seen::Closed(a) => *a == assoc && request == SHUTDOWN_REQUEST,
                Seen::Lost(a) => *a == assoc && request == ABORT_REQUEST,
                _ => false,
            });
        report.check(name, ended);
    }
}

/// What the client saw, owned, so the predicate can outlive the borrowed event.
enum Seen {
    Closed(AssocId),
    Data(AssocId, StreamId, Ppid, Vec<u8>),
    Lost(AssocId),
    Up(AssocId),
    Other,
}

#[derive(Default)]
struct EchoState {
    /// Messages the server received and must echo (example code: allocation is fine here).
    pending: Vec<(AssocId, StreamId, Ppid, Vec<u8>)>,
    server_lost: u32,
    server_closed: u32,
}

/// Runs both endpoints until the client sees an event matching `done`, or the phase times out.
fn drive<C: SctpTransport, S: SctpTransport>(
    client: &mut C,
    server: &mut Option<&mut S>,
    echo: &mut EchoState,
    mut done: impl FnMut(&Seen) -> bool,
) -> bool {
    drive_until(client, server, echo, &mut done, |_| false)
}

/// `drive`, also stopping when `server_done` holds for the in-process server's state.
fn drive_until<C: SctpTransport, S: SctpTransport>(
    client: &mut C,
    server: &mut Option<&mut S>,
    echo: &mut EchoState,
    done: &mut impl FnMut(&Seen) -> bool,
    server_done: impl Fn(&EchoState) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < PHASE_TIMEOUT {
        let now = Instant::now();
        let mut hit = false;
        client
            .poll(now, 64, |ev| {
                let seen = match ev {
                    TransportEvent::Closed { assoc } => Seen::Closed(assoc),
                    TransportEvent::Data { assoc, stream, ppid, data } => {
                        Seen::Data(assoc, stream, ppid, data.to_vec())
                    }
                    TransportEvent::Lost { assoc } => Seen::Lost(assoc),
                    TransportEvent::Up { assoc, .. } => Seen::Up(assoc),
                    _ => Seen::Other,
                };
                if let Seen::Lost(a) = &seen {
                    println!("client: association {a:?} lost");
                }
                hit |= done(&seen);
            })
            .expect("client poll");
        if let Some(server) = server.as_deref_mut() {
            serve_once(server, echo, now);
            // Userspace backends send only when they submit: flush without sleeping.
            server.wait(now, Some(now)).expect("server wait");
            hit |= server_done(echo);
        }
        if hit {
            return true;
        }
        let until = now + Duration::from_millis(if server.is_some() { 2 } else { 20 });
        client.wait(now, Some(until)).expect("client wait");
    }
    false
}

fn serve_for<S: SctpTransport>(server: &mut S, duration: Duration) {
    let mut echo = EchoState::default();
    let start = Instant::now();
    while start.elapsed() < duration {
        let now = Instant::now();
        serve_once(server, &mut echo, now);
        server.wait(now, Some(now + Duration::from_millis(50))).expect("server wait");
    }
    println!("server: {} closed, {} lost", echo.server_closed, echo.server_lost);
}

fn serve_once<S: SctpTransport>(server: &mut S, echo: &mut EchoState, now: Instant) {
    let EchoState { pending, server_lost, server_closed } = echo;
    server
        .poll(now, 64, |ev| match ev {
            TransportEvent::Data { assoc, stream, ppid, data } => {
                pending.push((assoc, stream, ppid, data.to_vec()))
            }
            TransportEvent::Lost { .. } => *server_lost += 1,
            TransportEvent::Closed { .. } => *server_closed += 1,
            _ => {}
        })
        .expect("server poll");
    for (assoc, stream, ppid, data) in pending.drain(..) {
        // Two requests let a remote client test shutdown and ABORT started by the server.
        let result = match data.as_slice() {
            SHUTDOWN_REQUEST => server.shutdown(now, assoc),
            ABORT_REQUEST => server.abort(now, assoc),
            _ => server.send(now, assoc, stream, ppid, &data),
        };
        if let Err(e) = result {
            println!("server: reply failed: {e}");
        }
    }
}

fn kernel(addr: SocketAddr) -> KernelSctp {
    let cfg = KernelSctpConfig { local_addrs: vec![addr], ..Default::default() };
    match KernelSctp::open(cfg) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sctp_echo: {e}");
            std::process::exit(3);
        }
    }
}

fn one_to_one(addr: SocketAddr) -> KernelSctpOneToOne {
    let cfg = KernelSctpConfig { local_addrs: vec![addr], ..Default::default() };
    match KernelSctpOneToOne::open(cfg) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sctp_echo: {e}");
            std::process::exit(3);
        }
    }
}

fn userspace(udp_addr: SocketAddr, remote_udp_port: u16) -> SctpUdpTransport {
    // A kernel peer on loopback sizes packets to lo's 64 KiB MTU, so every receive buffer must
    // hold a maximal UDP payload (65 507 bytes); fewer of them keep memory at 8 MiB.
    let udp =
        UdpRingConfig { recv_buffers_count: 128, recv_buffer_size: 65_507, ..Default::default() };
    let cfg = SctpUdpConfig { remote_udp_port, udp, ..Default::default() };
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
        .expect("cookie secret from /dev/urandom");
    match SctpUdpTransport::bind(udp_addr, cfg, secret) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sctp_echo: bind {udp_addr}: {e}");
            std::process::exit(3);
        }
    }
}

fn parse_addr(arg: Option<&String>) -> SocketAddr {
    arg.and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        eprintln!("sctp_echo: need an address like 127.0.0.1:9900");
        std::process::exit(2);
    })
}

#[derive(Default)]
struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool) {
        println!("{} {name}", if ok { "PASS" } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}
