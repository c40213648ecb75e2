//! ASAP Server Announce (RFC 5352 §3.6) from the real binary, on a multicast group over lo.
//!
//! Goal: the registrar announces itself with its id and ASAP transport every interval, and
//! `--no-announce` silences it. Method: join the group on 127.0.0.1 with a private port, run
//! the binary with a 100 ms interval, decode what arrives; then again with `--no-announce`.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codec::asap::Message;
use codec::{RegistrarId, UserTransport};
use transport::multicast::{MulticastConfig, MulticastReceiver};

struct Registrar(Child);

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(group_port: u16, extra: &[&str]) -> Registrar {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("registrar-announce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join(format!("announce-{group_port}.toml"));
    let toml = format!("[announce]\ngroup = \"239.0.0.50:{group_port}\"\ninterval_ms = 100\n");
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--config", config.to_str().unwrap(), "--udp", &udp.to_string()])
        .args(["--registrar-id", "4660", "--workers", "1", "--run-seconds", "20", "--log", "warn"])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Registrar(child)
}

fn receive(rx: &mut MulticastReceiver, within: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.is_empty() && start.elapsed() < within {
        rx.recv_batch(16, |_, bytes| got.push(Message::parse(bytes).expect("valid ASAP"))).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    got
}

#[test]
fn announces_with_id_and_transport_and_can_be_silenced() {
    let mut cfg = MulticastConfig { interface: Ipv4Addr::LOCALHOST, port: 0, ..Default::default() };
    let mut rx = MulticastReceiver::open(&cfg).unwrap();
    cfg.port = rx.local_port().unwrap();

    let registrar = start(cfg.port, &[]);
    let got = receive(&mut rx, Duration::from_secs(10));
    drop(registrar);
    let Some(Message::ServerAnnounce(announce)) = got.first() else {
        panic!("expected a Server Announce, got {got:?}");
    };
    assert_eq!(announce.server_id, RegistrarId(4660));
    let [UserTransport::Sctp(sctp)] = announce.transports.as_slice() else {
        panic!("expected one SCTP transport: {announce:?}");
    };
    assert_eq!(sctp.port, 3863);
    assert_eq!(sctp.addresses.as_slice(), &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);

    // Drain anything still in flight from the first registrar, then listen to a silent one.
    std::thread::sleep(Duration::from_millis(200));
    receive(&mut rx, Duration::from_millis(100));
    let _silent = start(cfg.port, &["--no-announce"]);
    assert!(receive(&mut rx, Duration::from_secs(1)).is_empty(), "--no-announce must be silent");
}
