//! A TCP pool with the blocking API: a PE runs a line-echo TCP server and registers it in
//! pool "tcp-example"; a PU then gets a connected `TcpStream` to a PE of that pool with
//! `PoolUser::connect_tcp`, sends a line and prints the reply. A second PE registered at a
//! port where nothing listens shows the failover when the registrar lists it first: the PU
//! reports it unreachable and moves on.
//!
//! `cargo run -p asap --example tcp_pool -- [REGISTRAR_IP]` with a registrar in SCTP over UDP
//! on REGISTRAR_IP:9899 (default 127.0.0.1), e.g.
//! `target/debug/registrar --udp 127.0.0.1:9899 --workers 1 --no-enrp`.
//! Prints `reply: hello from the PU` and exits 0; any failure is one line and exit 1.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use asap::blocking::{PoolElement, PoolUser};
use asap::{EndpointConfig, PeConfig};
use codec::param::{Policy, UserTransport};
use codec::{PoolElementId, PoolHandle, TransportUse};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

const TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    if let Err(e) = run() {
        eprintln!("tcp_pool: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let registrar: IpAddr = match std::env::args().nth(1) {
        Some(ip) => ip.parse().map_err(|_| format!("REGISTRAR_IP: not an IP address: {ip}"))?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let pool = pool();
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);

    // The service: one line in, the same line out, per connection.
    let listener = TcpListener::bind((localhost, 0))?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() {
                let _ = (&stream).write_all(line.as_bytes());
            }
        }
    });

    // Two PEs, each with its own SCTP stack, kept registered on threads until `stop`: PE 1
    // at a port where nothing listens, PE 2 the echo server. When the registrar lists PE 1
    // first, the PU reports it and fails over; either way it ends up at PE 2.
    let stop = Arc::new(AtomicBool::new(false));
    let (registered, wait) = mpsc::channel();
    let mut pes = Vec::new();
    for (id, port) in [(1, closed_port()?), (2, port)] {
        let (stop, registered) = (Arc::clone(&stop), registered.clone());
        pes.push(std::thread::spawn(move || run_pe(id, port, registrar, &stop, &registered)));
    }
    // Only the threads' senders are left: a thread that ends early ends the wait too.
    drop(registered);
    for _ in 0..2 {
        wait.recv().map_err(|_| "a PE thread ended before it registered")??;
    }

    // The PU.
    let mut user = PoolUser::new(bind()?, config(registrar), 3);
    let connected = user.connect_tcp_observed(pool, TIMEOUT, |pe, why| {
        println!("PE {} unreachable ({why}); reported, trying the next", pe.id.0);
    });
    let (mut stream, pe) = connected?;
    println!("connected to PE {}", pe.id.0);
    stream.write_all(b"hello from the PU\n")?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    println!("reply: {}", reply.trim_end());
    user.driver_mut().close(Duration::from_millis(500));

    stop.store(true, Ordering::Relaxed);
    for pe in pes {
        pe.join().map_err(|_| "a PE thread panicked")??;
    }
    Ok(())
}

/// One PE, registered until `stop`; says on `registered` whether its registration worked.
fn run_pe(
    id: u32,
    port: u16,
    registrar: IpAddr,
    stop: &AtomicBool,
    registered: &mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let transport = UserTransport::Tcp { port, transport_use: TransportUse::DATA_ONLY, address };
    let mut pe_config = PeConfig::new(pool(), transport, Policy::RoundRobin);
    pe_config.id = Some(PoolElementId(id));
    let pe = bind().and_then(|t| {
        PoolElement::register(t, config(registrar), pe_config, id.into(), TIMEOUT)
            .map_err(|e| format!("PE {id}: {e}"))
    });
    let mut pe = match pe {
        Ok(pe) => pe,
        Err(e) => {
            let _ = registered.send(Err(e));
            return Ok(());
        }
    };
    let _ = registered.send(Ok(()));
    while !stop.load(Ordering::Relaxed) {
        pe.serve(Duration::from_millis(20)).map_err(|e| e.to_string())?;
    }
    pe.deregister(TIMEOUT).map_err(|e| e.to_string())
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"tcp-example").expect("a short name is a valid pool handle")
}

fn config(registrar: IpAddr) -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(registrar, asap::hunt::ASAP_PORT)];
    config
}

fn bind() -> Result<SctpUdpTransport, String> {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    SctpUdpTransport::bind(any, SctpUdpConfig::default(), rand::random())
        .map_err(|e| format!("cannot bind UDP for SCTP: {e}"))
}

/// A TCP port with nothing listening: bound, then released.
fn closed_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}
