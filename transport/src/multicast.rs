//! Plain UDP sockets for the ASAP Server Announce multicast (RFC 5352 §3.1, §5.1: a registrar
//! announces itself to a multicast group; PEs and PUs listen). Not on the hot path: one
//! non-blocking socket each, no io_uring.
//!
//! Loopback: with `interface = 127.0.0.1` and `IP_MULTICAST_LOOP` on, announces reach
//! receivers on the same host through `lo` (tested in `multicast_announce_over_loopback`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Default ASAP announce group (RFC 5352 does not fix one; RSPLIB and our lab use this).
pub const ASAP_ANNOUNCE_GROUP: Ipv4Addr = Ipv4Addr::new(239, 0, 0, 50);
/// Default ASAP announce port (IANA "asap-udp", RFC 5352 §3.1).
pub const ASAP_ANNOUNCE_PORT: u16 = 3863;

/// Group, port and interface of one announce channel.
#[derive(Debug, Clone)]
pub struct MulticastConfig {
    /// Multicast group. Default 239.0.0.50.
    pub group: Ipv4Addr,
    /// UDP port. Default 3863.
    pub port: u16,
    /// Local interface address to join and send on. Default 0.0.0.0 (the kernel's choice).
    pub interface: Ipv4Addr,
    /// `IP_MULTICAST_TTL`. Default 1 (link-local scope).
    pub ttl: u32,
    /// `IP_MULTICAST_LOOP`: deliver our own announces to receivers on this host. Default true.
    pub loopback: bool,
    /// Largest announce received. Default 1 472 (fits one 1 500-byte Ethernet frame).
    pub datagram_len_max: usize,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            group: ASAP_ANNOUNCE_GROUP,
            port: ASAP_ANNOUNCE_PORT,
            interface: Ipv4Addr::UNSPECIFIED,
            ttl: 1,
            loopback: true,
            datagram_len_max: 1_472,
        }
    }
}

/// Sends announces to the group.
pub struct MulticastSender {
    socket: UdpSocket,
    group: SocketAddr,
}

impl MulticastSender {
    /// Opens a non-blocking socket with the configured interface, TTL and loopback.
    pub fn open(cfg: &MulticastConfig) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_multicast_if_v4(&cfg.interface)?;
        socket.set_multicast_ttl_v4(cfg.ttl)?;
        socket.set_multicast_loop_v4(cfg.loopback)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::from((cfg.interface, 0)).into())?;
        let group = SocketAddr::V4(SocketAddrV4::new(cfg.group, cfg.port));
        Ok(Self { socket: socket.into(), group })
    }

    /// Sends one announce; `WouldBlock` means the socket buffer is full (drop it: the next
    /// announce interval repeats it).
    pub fn send(&self, announce: &[u8]) -> io::Result<()> {
        self.socket.send_to(announce, self.group).map(drop)
    }
}

/// Receives announces from the group.
pub struct MulticastReceiver {
    socket: UdpSocket,
    buffer: Vec<u8>,
}

impl MulticastReceiver {
    /// Binds the group port with `SO_REUSEADDR`/`SO_REUSEPORT` (several listeners per host may
    /// share it) and joins the group on the configured interface.
    pub fn open(cfg: &MulticastConfig) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.port)).into())?;
        socket.join_multicast_v4(&cfg.group, &cfg.interface)?;
        Ok(Self { socket: socket.into(), buffer: vec![0u8; cfg.datagram_len_max] })
    }

    /// The bound port (useful when `port` was 0).
    pub fn local_port(&self) -> io::Result<u16> {
        Ok(self.socket.local_addr()?.port())
    }

    /// Calls `f(from, announce)` for up to `budget` waiting announces; never blocks.
    pub fn recv_batch(
        &mut self,
        budget: usize,
        mut f: impl FnMut(SocketAddr, &[u8]),
    ) -> io::Result<usize> {
        let mut delivered = 0;
        while delivered < budget {
            match self.socket.recv_from(&mut self.buffer) {
                Ok((len, from)) => {
                    f(from, &self.buffer[..len]);
                    delivered += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    // Goal: announces reach a receiver on the same host over lo (IP_MULTICAST_LOOP). Method:
    // join 239.0.0.50 on 127.0.0.1 with a kernel-chosen port (no clash with other tests or
    // a running registrar), send 3 announces, receive them within 2 s.
    #[test]
    fn multicast_announce_over_loopback() {
        let mut cfg =
            MulticastConfig { interface: Ipv4Addr::LOCALHOST, port: 0, ..Default::default() };
        let mut rx = MulticastReceiver::open(&cfg).unwrap();
        cfg.port = rx.local_port().unwrap();
        let tx = MulticastSender::open(&cfg).unwrap();
        for i in 0..3u8 {
            tx.send(&[0x0b, i]).unwrap();
        }
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 3 && start.elapsed() < Duration::from_secs(2) {
            rx.recv_batch(16, |_, bytes| got.push(bytes.to_vec())).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got, vec![vec![0x0b, 0], vec![0x0b, 1], vec![0x0b, 2]]);
    }
}
