//! Our userspace SCTP over UDP on loopback, through the `SctpTransport` interface, on both
//! datagram endpoints (io_uring and recvmmsg). Every phase is bounded in time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{
    AssocId, DatagramEndpoint, Ppid, SctpTransport, StreamId, TransportEvent, UdpRingConfig,
    UdpSocketBatch,
};

const PHASE_TIMEOUT: Duration = Duration::from_secs(10);
const SERVER_PORT: u16 = 5000;

#[derive(Debug, PartialEq)]
enum Seen {
    Closed(AssocId),
    Data(AssocId, StreamId, Ppid, Vec<u8>),
    Lost(AssocId),
    SendFailed(AssocId),
    Up(AssocId),
}

/// Two transports on one thread: the server echoes every message it receives.
struct Pair<C: SctpTransport, S: SctpTransport> {
    client: C,
    server: S,
    client_seen: Vec<Seen>,
    server_seen: Vec<Seen>,
}

impl<C: SctpTransport, S: SctpTransport> Pair<C, S> {
    /// Steps both sides until `done(client_seen, server_seen)` or the phase times out.
    fn drive(&mut self, mut done: impl FnMut(&[Seen], &[Seen]) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < PHASE_TIMEOUT {
            let now = Instant::now();
            let seen = &mut self.client_seen;
            self.client.poll(now, 256, |ev| seen.push(own(ev))).unwrap();
            let mut echo = Vec::new();
            let seen = &mut self.server_seen;
            self.server
                .poll(now, 256, |ev| {
                    if let TransportEvent::Data { assoc, stream, ppid, data } = &ev {
                        echo.push((*assoc, *stream, *ppid, data.to_vec()));
                    }
                    seen.push(own(ev));
                })
                .unwrap();
            for (assoc, stream, ppid, data) in echo {
                self.server.send(now, assoc, stream, ppid, &data).unwrap();
            }
            if done(&self.client_seen, &self.server_seen) {
                return true;
            }
            let until = Some(now + Duration::from_millis(1));
            self.server.wait(now, Some(now)).unwrap();
            self.client.wait(now, until).unwrap();
        }
        false
    }
}

fn own(ev: TransportEvent<'_>) -> Seen {
    match ev {
        TransportEvent::Closed { assoc } => Seen::Closed(assoc),
        TransportEvent::Data { assoc, stream, ppid, data } => {
            Seen::Data(assoc, stream, ppid, data.to_vec())
        }
        TransportEvent::Lost { assoc } => Seen::Lost(assoc),
        TransportEvent::SendFailed { assoc, .. } => Seen::SendFailed(assoc),
        TransportEvent::Up { assoc, .. } => Seen::Up(assoc),
        other => panic!("unexpected event {other:?}"),
    }
}

fn config(server_udp: Option<SocketAddr>) -> SctpUdpConfig {
    let mut cfg = SctpUdpConfig::default();
    if let Some(server) = server_udp {
        cfg.remote_udp_port = server.port();
    }
    cfg
}

/// The whole conversation: up, PPID 11 and 12 both ways, 64 KiB, a window of 32 messages,
/// graceful shutdown seen by both sides, then a second association aborted by the client.
fn run_echo<C: SctpTransport, S: SctpTransport>(mut pair: Pair<C, S>) {
    pair.server.listen(SERVER_PORT).unwrap();
    let target: SocketAddr = format!("127.0.0.1:{SERVER_PORT}").parse().unwrap();
    let assoc = pair.client.connect(Instant::now(), target).unwrap();
    assert!(pair
        .drive(|c, s| c.contains(&Seen::Up(assoc)) && s.iter().any(|e| matches!(e, Seen::Up(_)))));
    let mut peers = [target; 2];
    assert_eq!(pair.client.peer_addresses(assoc, &mut peers).unwrap(), 1);
    assert_eq!(peers[0].ip(), target.ip());

    let large: Vec<u8> = (0..65_536).map(|i| (i % 251) as u8).collect();
    let mut messages = vec![
        (StreamId(0), Ppid::ASAP, b"asap".to_vec()),
        (StreamId(1), Ppid::ENRP, b"enrp".to_vec()),
        (StreamId(0), Ppid::ENRP, large),
    ];
    for i in 0..32u32 {
        messages.push((StreamId((i % 4) as u16), Ppid::ASAP, i.to_be_bytes().repeat(25)));
    }
    for (stream, ppid, data) in &messages {
        pair.client.send(Instant::now(), assoc, *stream, *ppid, data).unwrap();
    }
    let want = messages.len();
    let data_count = |c: &[Seen]| c.iter().filter(|e| matches!(e, Seen::Data(..))).count();
    assert!(pair.drive(|c, _| data_count(c) == want), "echoes: {}", data_count(&pair.client_seen));
    let echoed: Vec<_> = pair
        .client_seen
        .iter()
        .filter_map(|e| match e {
            Seen::Data(a, s, p, d) => Some((*a, *s, *p, d.clone())),
            _ => None,
        })
        .collect();
    // Ordered per stream: each stream's echoes come back in the order they were sent.
    for stream in 0..4u16 {
        let sent: Vec<_> =
            messages.iter().filter(|m| m.0 .0 == stream).map(|m| (m.1, m.2.clone())).collect();
        let got: Vec<_> =
            echoed.iter().filter(|m| m.1 .0 == stream).map(|m| (m.2, m.3.clone())).collect();
        assert_eq!(sent, got, "stream {stream}");
    }
    assert!(echoed.iter().all(|m| m.0 == assoc));

    pair.client.shutdown(Instant::now(), assoc).unwrap();
    assert!(pair
        .drive(|c, s| c.contains(&Seen::Closed(assoc))
            && s.iter().any(|e| matches!(e, Seen::Closed(_)))));

    let second = pair.client.connect(Instant::now(), target).unwrap();
    assert!(pair.drive(|c, _| c.contains(&Seen::Up(second))));
    pair.client.abort(Instant::now(), second).unwrap();
    assert!(pair.drive(|_, s| s.iter().any(|e| matches!(e, Seen::Lost(_)))));
}

// Goal: the userspace SCTP backend works end to end over the io_uring endpoint. Method: the
// conversation in `run_echo`, client and server on 127.0.0.1 with kernel-chosen UDP ports.
#[test]
fn sctp_udp_echo_over_io_uring() {
    let server =
        SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), config(None), [7; 32]).unwrap();
    let cfg = config(Some(server.local_addr()));
    let client = SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [9; 32]).unwrap();
    run_echo(Pair { client, server, client_seen: Vec::new(), server_seen: Vec::new() });
}

// Goal: the same over the recvmmsg/sendmmsg fallback, and mixed with io_uring. Method: as above.
#[test]
fn sctp_udp_echo_over_socket_batch() {
    let udp =
        UdpSocketBatch::bind("127.0.0.1:0".parse().unwrap(), UdpRingConfig::default()).unwrap();
    let server_addr = udp.local_addr();
    let server = SctpUdpTransport::with_datagram_endpoint(udp, config(None), [7; 32]);
    let client =
        SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), config(Some(server_addr)), [9; 32])
            .unwrap();
    run_echo(Pair { client, server, client_seen: Vec::new(), server_seen: Vec::new() });
}
