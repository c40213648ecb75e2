//! [`SctpUdpTransport`]: our sans-IO `sctp::Endpoint` carried in UDP (RFC 6951) over one
//! [`DatagramEndpoint`] (the io_uring [`UdpRing`] by default), behind [`SctpTransport`].
//!
//! ```text
//!  poll(now):  recv_batch ──handle_packet(now, from, local, bytes)──► sctp::Endpoint
//!              handle_timeout(now)                                       │
//!              poll_event / read_message ──► on_event(TransportEvent)    │
//!              poll_transmit(now, send buffer in place) ◄────────────────┘
//!  wait(now, until):  poll_transmit into send buffers, then one submit_and_wait that sleeps
//!                     until a datagram, or min(until, endpoint.poll_timeout())
//! ```
//!
//! RFC 6951 §5.4: the UDP source port of each received packet is the peer's encapsulation
//! port; `sctp::Endpoint` keeps it per association (`Transmit::remote` carries it back), so
//! this glue passes `from` through unchanged and sends each packet where the endpoint says.
//! `connect(remote)` takes the peer IP and **SCTP** port, like the kernel backend; the UDP
//! destination is `remote_udp_port` (default 9899) until the peer's packets say otherwise.
//!
//! Not done: the local address passed to `handle_packet` is the bound address (no
//! `IP_PKTINFO`), so a wildcard-bound socket reports 0.0.0.0; `peer_addresses` reports IPs
//! with the UDP encapsulation port of the association (the userspace stack keeps no per-address
//! SCTP port).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::api::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};
use crate::datagram::{DatagramEndpoint, SendError as DatagramSendError, UdpRingConfig};
use crate::udp::UdpRing;

/// The IANA port for SCTP over UDP (RFC 6951 §5.1).
pub const SCTP_UDP_PORT: u16 = 9899;

/// Options of the userspace SCTP backend.
#[derive(Debug, Clone)]
pub struct SctpUdpConfig {
    /// SCTP limits and timers (see `sctp::EndpointConfig` for each default).
    pub endpoint: sctp::EndpointConfig,
    /// UDP endpoint bounds. `send_buffer_size` must be at least `endpoint.mtu`.
    pub udp: UdpRingConfig,
    /// UDP port of a peer we connect to, until its packets show another. Default 9899; 0
    /// means the peer's SCTP port, for peers that bind their UDP port to their SCTP port (as
    /// `rserpool`'s pool elements do, so that several share one host).
    pub remote_udp_port: u16,
    /// SCTP source port for `connect`. Default 0: the first listened port, else the UDP port.
    pub local_sctp_port: u16,
    /// Origin of the SCTP stack's clock. Endpoints that open each other's cookies (one per
    /// core under `sctp::TagSteering`) must share it, or a cookie's creation time reads as
    /// future or stale on the other core. Default `None`: the instant of `bind`.
    pub epoch: Option<Instant>,
}

impl Default for SctpUdpConfig {
    fn default() -> Self {
        Self {
            endpoint: sctp::EndpointConfig::default(),
            udp: UdpRingConfig::default(),
            remote_udp_port: SCTP_UDP_PORT,
            local_sctp_port: 0,
            epoch: None,
        }
    }
}

impl SctpUdpConfig {
    /// The defaults with a packet budget of `mtu` bytes (the UDP payload, RFC 6951 §5.6), and
    /// UDP buffers large enough to carry it. A larger budget bundles more messages into one
    /// datagram, so fewer packets (and system calls) per message where the path allows it:
    /// loopback (64 KiB) or a jumbo-frame LAN. `mtu` must lie in [`MTU_RANGE`].
    pub fn with_mtu(mtu: u16) -> Self {
        assert!(MTU_RANGE.contains(&mtu), "mtu {mtu} outside {MTU_RANGE:?}");
        let mut cfg = Self::default();
        cfg.endpoint.mtu = mtu;
        cfg.udp.send_buffer_size = cfg.udp.send_buffer_size.max(u32::from(mtu));
        cfg.udp.recv_buffer_size = cfg.udp.recv_buffer_size.max(u32::from(mtu));
        cfg
    }
}

/// Packet budgets [`SctpUdpConfig::with_mtu`] accepts: from the smallest that fits our INIT ACK
/// to the largest UDP payload over IPv4.
pub const MTU_RANGE: core::ops::RangeInclusive<u16> = sctp::MTU_MIN..=65_507;

/// One core's userspace SCTP endpoint over UDP.
pub struct SctpUdpTransport<D: DatagramEndpoint = UdpRing> {
    endpoint: sctp::Endpoint,
    udp: D,
    local: SocketAddr,
    remote_udp_port: u16,
    local_sctp_port: u16,
    /// The clock origin of `sctp::Instant` (µs since this instant).
    epoch: Instant,
    /// Association whose messages are being read; events wait until it is drained, because
    /// polling a terminal event frees the association (and its unread messages).
    reading: Option<sctp::AssociationHandle>,
    /// Packets the datagram endpoint had no send buffer for, and so were not yet pulled.
    transmit_blocked: u64,
}

/// Local SCTP ports handed out for second and later associations to one peer: the IANA
/// dynamic range (RFC 6335 §6), as kernels use for ephemeral ports.
const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49_152..=65_535;

/// The next ephemeral SCTP port, shared by every endpoint of the process. A peer names an
/// association by IP address and SCTP ports only (the UDP port is encapsulation, RFC 6951 §5),
/// so two endpoints of one host must not hand out the same SCTP port to the same peer. Starts
/// at a per-process offset so that two processes on one host rarely meet.
static NEXT_EPHEMERAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

fn next_ephemeral_port() -> u16 {
    use std::sync::atomic::Ordering;
    let span = u32::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
    let _ = NEXT_EPHEMERAL.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(2_654_435_761) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let n = NEXT_EPHEMERAL.fetch_add(1, Ordering::Relaxed) % span;
    EPHEMERAL_PORTS.start() + u16::try_from(n).expect("below the span of u16 ports")
}

impl SctpUdpTransport<UdpRing> {
    /// Binds an io_uring UDP endpoint at `udp_addr` (port 9899 by default for a server) and
    /// creates the SCTP endpoint. `cookie_secret` must be random and secret (RFC 9260 §5.1.3).
    pub fn bind(
        udp_addr: SocketAddr,
        cfg: SctpUdpConfig,
        cookie_secret: [u8; 32],
    ) -> io::Result<Self> {
        let udp = UdpRing::bind(udp_addr, cfg.udp.clone())?;
        Ok(Self::with_datagram_endpoint(udp, cfg, cookie_secret))
    }
}

impl<D: DatagramEndpoint> SctpUdpTransport<D> {
    /// Wraps any datagram endpoint (e.g. [`crate::UdpSocketBatch`] where io_uring is missing).
    pub fn with_datagram_endpoint(udp: D, cfg: SctpUdpConfig, cookie_secret: [u8; 32]) -> Self {
        assert!(cfg.udp.send_buffer_size >= u32::from(cfg.endpoint.mtu));
        assert!(cfg.udp.recv_buffer_size >= u32::from(cfg.endpoint.mtu));
        let local = udp.local_addr();
        Self {
            endpoint: sctp::Endpoint::new(cfg.endpoint, cookie_secret),
            udp,
            local,
            remote_udp_port: cfg.remote_udp_port,
            local_sctp_port: cfg.local_sctp_port,
            epoch: cfg.epoch.unwrap_or_else(Instant::now),
            reading: None,
            transmit_blocked: 0,
        }
    }

    /// The UDP address we are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The SCTP endpoint, for its counters and limits.
    pub fn endpoint(&self) -> &sctp::Endpoint {
        &self.endpoint
    }

    /// The datagram endpoint, for its counters.
    pub fn datagram_endpoint(&self) -> &D {
        &self.udp
    }

    /// Times a packet waited because every send buffer was in use.
    pub fn transmit_blocked(&self) -> u64 {
        self.transmit_blocked
    }

    fn sctp_now(&self, now: Instant) -> sctp::Instant {
        let us = now.saturating_duration_since(self.epoch).as_micros();
        sctp::Instant(u64::try_from(us).unwrap_or(u64::MAX))
    }

    fn std_instant(&self, t: sctp::Instant) -> Instant {
        self.epoch + Duration::from_micros(t.micros())
    }

    /// Pulls packets from the endpoint straight into send buffers until either runs out.
    fn flush_transmits(&mut self, now: sctp::Instant) {
        let endpoint = &mut self.endpoint;
        loop {
            let queued = self
                .udp
                .send_in_place(|buf| endpoint.poll_transmit(now, buf).map(|t| (t.remote, t.len)));
            match queued {
                Ok(true) => {}
                Ok(false) => break,
                Err(DatagramSendError::QueueFull) => {
                    self.transmit_blocked += 1;
                    break;
                }
                Err(DatagramSendError::TooLong) => {
                    unreachable!("send_in_place never reports TooLong")
                }
            }
        }
    }

    /// Delivers events and messages, at most `budget`; see `reading` for the order.
    fn deliver(&mut self, budget: usize, on_event: &mut impl FnMut(TransportEvent<'_>)) -> usize {
        let mut delivered = 0;
        while delivered < budget {
            if let Some(h) = self.reading {
                let assoc = AssocId(h.0);
                let read = self.endpoint.read_message(h, |data, info| {
                    let (stream, ppid) = (StreamId(info.stream), Ppid(info.ppid));
                    on_event(TransportEvent::Data { assoc, stream, ppid, data });
                });
                if read {
                    delivered += 1;
                    continue;
                }
                self.reading = None;
            }
            let Some(event) = self.endpoint.poll_event() else {
                break;
            };
            let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
            let mapped = match event {
                sctp::Event::DataReadable(h) => {
                    self.reading = Some(h);
                    None
                }
                sctp::Event::Connected(h) | sctp::Event::Restarted(h) => {
                    // The peer's IP and SCTP port, as the kernel backend reports them (its
                    // UDP port is encapsulation, RFC 6951).
                    let ip = self.endpoint.remote(h).map_or(unspecified.ip(), |r| r.ip());
                    let port = self.endpoint.remote_port(h).unwrap_or(0);
                    let peer = SocketAddr::new(ip, port);
                    Some(TransportEvent::Up { assoc: AssocId(h.0), peer })
                }
                sctp::Event::Closed(h) => Some(TransportEvent::Closed { assoc: AssocId(h.0) }),
                sctp::Event::CommunicationLost(h) => {
                    Some(TransportEvent::Lost { assoc: AssocId(h.0) })
                }
                sctp::Event::SendFailed { assoc, .. } => Some(TransportEvent::SendFailed {
                    assoc: AssocId(assoc.0),
                    stream: StreamId(0),
                    ppid: Ppid(0),
                    data: &[],
                }),
                // Path state and peer error causes are counters' business, not the protocol's.
                _ => None,
            };
            if let Some(event) = mapped {
                on_event(event);
                delivered += 1;
            }
        }
        delivered
    }
}

impl<D: DatagramEndpoint> SctpTransport for SctpUdpTransport<D> {
    fn doorbell(&mut self) -> io::Result<Option<crate::Doorbell>> {
        self.udp.doorbell()
    }

    fn input_dropped(&self) -> u64 {
        self.udp.receive_truncated()
    }

    fn listen(&mut self, port: u16) -> Result<(), TransportError> {
        self.endpoint.listen(port);
        if self.local_sctp_port == 0 {
            self.local_sctp_port = port;
        }
        Ok(())
    }

    fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<AssocId, TransportError> {
        let local_port =
            if self.local_sctp_port != 0 { self.local_sctp_port } else { self.local.port() };
        self.connect_from(now, local_port, remote)
    }

    fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddr,
    ) -> Result<AssocId, TransportError> {
        let udp_port = if self.remote_udp_port == 0 { remote.port() } else { self.remote_udp_port };
        let udp_remote = SocketAddr::new(remote.ip(), udp_port);
        let now = self.sctp_now(now);
        let mut attempt = self.endpoint.connect(now, udp_remote, local_port, remote.port());
        // An association is named by its ports and addresses, so a further association to the
        // same peer needs another local port: walk the ephemeral range once at most.
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start();
        for _ in 0..=span {
            if attempt != Err(sctp::ConnectError::Exists) {
                break;
            }
            let port = next_ephemeral_port();
            attempt = self.endpoint.connect(now, udp_remote, port, remote.port());
        }
        match attempt {
            Ok(h) => Ok(AssocId(h.0)),
            Err(sctp::ConnectError::TooMany) => Err(TransportError::Full),
            Err(e) => Err(TransportError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{e:?}"),
            ))),
        }
    }

    fn send(
        &mut self,
        now: Instant,
        assoc: AssocId,
        stream: StreamId,
        ppid: Ppid,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let now = self.sctp_now(now);
        let h = sctp::AssociationHandle(assoc.0);
        self.endpoint.send(now, h, stream.0, ppid.0, false, data).map_err(|e| match e {
            sctp::SendError::Closed => TransportError::UnknownAssoc,
            sctp::SendError::Full => TransportError::Full,
            sctp::SendError::TooLarge => TransportError::TooLong,
            sctp::SendError::InvalidStream => TransportError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream not negotiated",
            )),
        })
    }

    fn shutdown(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        let h = sctp::AssociationHandle(assoc.0);
        self.endpoint.remote(h).ok_or(TransportError::UnknownAssoc)?;
        self.endpoint.shutdown(self.sctp_now(now), h);
        Ok(())
    }

    fn abort(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        let h = sctp::AssociationHandle(assoc.0);
        self.endpoint.remote(h).ok_or(TransportError::UnknownAssoc)?;
        self.endpoint.abort(self.sctp_now(now), h);
        Ok(())
    }

    fn peer_addresses(
        &mut self,
        assoc: AssocId,
        out: &mut [SocketAddr],
    ) -> Result<usize, TransportError> {
        let h = sctp::AssociationHandle(assoc.0);
        let remote = self.endpoint.remote(h).ok_or(TransportError::UnknownAssoc)?;
        let ips = self.endpoint.remote_addresses(h);
        for (slot, ip) in out.iter_mut().zip(ips) {
            *slot = SocketAddr::new(*ip, remote.port());
        }
        Ok(ips.len())
    }

    fn poll(
        &mut self,
        now: Instant,
        budget: usize,
        mut on_event: impl FnMut(TransportEvent<'_>),
    ) -> io::Result<usize> {
        let sctp_now = self.sctp_now(now);
        let (endpoint, local) = (&mut self.endpoint, self.local);
        self.udp
            .recv_batch(budget, |from, bytes| endpoint.handle_packet(sctp_now, from, local, bytes));
        self.endpoint.handle_timeout(sctp_now);
        let delivered = self.deliver(budget, &mut on_event);
        // Packets are pulled at `wait`, not here: the caller answers the messages just
        // delivered before it waits, so a SACK that is due rides with the answer's DATA instead
        // of leaving alone (a quarter of all packets at window 32 before this).
        Ok(delivered)
    }

    fn wait(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        self.flush_transmits(self.sctp_now(now));
        let deadline = match (until, self.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.udp.submit_and_wait_until(now, deadline)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.endpoint.poll_timeout().map(|t| self.std_instant(t))
    }
}
