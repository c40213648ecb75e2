//! What every subcommand needs to reach registrars: the SCTP-over-UDP transport, the endpoint
//! configuration, the registrar addresses the driver's events reveal, and errors in words.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context as _;
use asap::blocking::{in_words, BlockingError};
use asap::{Duration, EndpointConfig, Event};
use codec::PoolHandle;
use transport::kernel_sctp::{KernelSctp, KernelSctpConfig};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use crate::cli::{BackendName, Global};

/// Binds our SCTP stack on `--udp` (the kernel's on its IP, with `--backend kernel`). A PE
/// (`listen`) also accepts associations on its SCTP port, so that a registrar taking it over
/// (RFC 5352 §3.4, KA2.4) can reach it.
pub(crate) fn transport(global: &Global, listen: bool) -> anyhow::Result<Backend> {
    let bind = match global.backend {
        BackendName::Kernel => SocketAddr::new(global.udp.ip(), 0),
        BackendName::Userspace => global.udp,
    };
    sctp_at(global, bind, global.registrar_udp_port, listen)
}

/// An SCTP endpoint of the `--backend` at `bind`; over UDP, peers are reached at their UDP
/// port `remote_udp_port` (0: their SCTP port). With `listen`, it accepts associations on
/// its own port (over UDP, SCTP port = UDP port).
pub(crate) fn sctp_at(
    global: &Global,
    bind: SocketAddr,
    remote_udp_port: u16,
    listen: bool,
) -> anyhow::Result<Backend> {
    let mut transport = match global.backend {
        BackendName::Kernel => {
            let config = KernelSctpConfig { local_addrs: vec![bind], ..Default::default() };
            let kernel = KernelSctp::open(config)
                .with_context(|| format!("cannot open kernel SCTP on {bind}"))?;
            Backend::Kernel(kernel)
        }
        BackendName::Userspace => {
            let config = SctpUdpConfig { remote_udp_port, ..Default::default() };
            let udp = SctpUdpTransport::bind(bind, config, rand::random())
                .with_context(|| format!("cannot bind UDP {bind} for SCTP"))?;
            Backend::Userspace(udp)
        }
    };
    if listen {
        let port = transport.local_addr().port();
        transport
            .listen(port)
            .map_err(|e| anyhow::anyhow!("cannot listen on SCTP port {port}: {e}"))?;
    }
    Ok(transport)
}

/// The SCTP backend `--backend` chose: ours in UDP (RFC 6951), or the kernel's.
// One per process part (registrar side, PE side), made once: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    /// RFC 6951 SCTP in UDP, our own stack.
    Userspace(SctpUdpTransport),
    /// The kernel's SCTP (RFC 6458 sockets).
    Kernel(KernelSctp),
}

impl Backend {
    /// The bound address: the UDP socket's, or the kernel socket's (its SCTP port).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Userspace(t) => t.local_addr(),
            Self::Kernel(t) => t.local_addr(),
        }
    }
}

/// Forwards each call to the backend in use.
macro_rules! forward {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            Backend::Userspace($t) => $call,
            Backend::Kernel($t) => $call,
        }
    };
}

impl SctpTransport for Backend {
    fn listen(&mut self, port: u16) -> Result<(), TransportError> {
        forward!(self, t => t.listen(port))
    }

    fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<AssocId, TransportError> {
        forward!(self, t => t.connect(now, remote))
    }

    fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddr,
    ) -> Result<AssocId, TransportError> {
        forward!(self, t => t.connect_from(now, local_port, remote))
    }

    fn send(
        &mut self,
        now: Instant,
        assoc: AssocId,
        stream: StreamId,
        ppid: Ppid,
        data: &[u8],
    ) -> Result<(), TransportError> {
        forward!(self, t => t.send(now, assoc, stream, ppid, data))
    }

    fn shutdown(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        forward!(self, t => t.shutdown(now, assoc))
    }

    fn abort(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        forward!(self, t => t.abort(now, assoc))
    }

    fn peer_addresses(
        &mut self,
        assoc: AssocId,
        out: &mut [SocketAddr],
    ) -> Result<usize, TransportError> {
        forward!(self, t => t.peer_addresses(assoc, out))
    }

    fn poll(
        &mut self,
        now: Instant,
        budget: usize,
        on_event: impl FnMut(TransportEvent<'_>),
    ) -> std::io::Result<usize> {
        forward!(self, t => t.poll(now, budget, on_event))
    }

    fn wait(&mut self, now: Instant, until: Option<Instant>) -> std::io::Result<()> {
        forward!(self, t => t.wait(now, until))
    }

    fn next_deadline(&self) -> Option<Instant> {
        forward!(self, t => t.next_deadline())
    }

    fn doorbell(&mut self) -> std::io::Result<Option<transport::Doorbell>> {
        forward!(self, t => t.doorbell())
    }
}

/// The RFC 5352 §7 defaults, with every request and hunt round bounded by `--timeout-ms`:
/// a tool answers in seconds, not after T1's 15 s times two; subscriptions are probed every
/// two timeouts (at most every 30 s).
pub(crate) fn endpoint_config(global: &Global) -> EndpointConfig {
    let timeout = Duration::from_millis(global.timeout_ms);
    let mut config = EndpointConfig::default();
    config.hunt.registrars = global.registrars();
    config.hunt.parallel_max = usize::from(global.hunt_parallel);
    config.hunt.hunt_timeout_initial = timeout.min(config.hunt.hunt_timeout_initial);
    config.request_timeout = timeout;
    config.registration_timeout = timeout;
    config.deregistration_timeout = timeout;
    config.request_attempts_max = 1;
    // A watcher notices a dead home within three timeouts (probe, then its answer's wait).
    config.subscription_probe = timeout.saturating_mul(2).min(config.subscription_probe);
    config.home_silence = Duration::from_millis(global.home_silence_ms);
    config
}

/// The registrars the endpoint reached, learned from the driver's events (the endpoint keeps
/// its links private), by their ASAP address as configured.
#[derive(Debug, Default)]
pub(crate) struct Registrars {
    configured: Vec<SocketAddr>,
    peers: HashMap<AssocId, SocketAddr>,
    home: Option<SocketAddr>,
    found_once: bool,
}

impl Registrars {
    /// Registrars of `global` (to name them as the user did).
    pub(crate) fn new(global: &Global) -> Self {
        Self { configured: global.registrars(), ..Self::default() }
    }

    /// Notes what `event` says about registrars.
    pub(crate) fn observe(&mut self, event: &Event) {
        match event {
            Event::RegistrarFound { assoc, peer } => {
                // Over SCTP in UDP the peer shows its UDP port (9899); the user knows the
                // registrar by its IP and ASAP port.
                let known = self.configured.iter().find(|c| c.ip() == peer.ip());
                let peer = known.copied().unwrap_or(*peer);
                self.peers.insert(*assoc, peer);
                self.home = Some(peer);
                self.found_once = true;
            }
            Event::RegistrarLost { assoc } => {
                let lost = self.peers.remove(assoc);
                self.home = self.home.filter(|home| Some(*home) != lost);
            }
            Event::HomeChanged { assoc, .. } => self.home = self.peers.get(assoc).copied(),
            _ => {}
        }
    }

    /// The address behind `assoc`, if the hunt opened it.
    pub(crate) fn peer(&self, assoc: AssocId) -> Option<SocketAddr> {
        self.peers.get(&assoc).copied()
    }

    /// Whether a home was found once and is lost now (a hunt for another runs).
    pub(crate) fn lost_home(&self) -> bool {
        self.home.is_none() && self.found_once
    }

    /// The home registrar's address, if known.
    pub(crate) fn home(&self) -> Option<SocketAddr> {
        self.home
    }
}

/// A list of addresses for a message: `127.0.0.1:3863, 127.0.0.2:3863`.
pub(crate) fn list(addresses: &[SocketAddr]) -> String {
    addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A failed Handle Resolution in one line naming the pool and the registrar.
pub(crate) fn resolution_error(
    error: BlockingError,
    pool: &PoolHandle,
    home: Option<SocketAddr>,
    global: &Global,
) -> anyhow::Error {
    let at = home.map_or_else(|| "the home registrar".to_owned(), |h| h.to_string());
    anyhow::anyhow!(match error {
        BlockingError::UnknownPool(_) => format!("pool \"{pool}\" is unknown at {at}"),
        BlockingError::NoRegistrar { .. } => no_registrar(global),
        BlockingError::TimedOut => format!(
            "registrar {at} did not answer the handle resolution of pool \"{pool}\" within {} ms",
            global.timeout_ms
        ),
        BlockingError::ResolutionRefused { cause, .. } => format!(
            "registrar {at} refused the handle resolution of pool \"{pool}\": {}",
            in_words(cause)
        ),
        BlockingError::Unreachable { tried, last, .. } =>
            format!("no PE of pool \"{pool}\" took a TCP connection ({tried} tried, last: {last})"),
        BlockingError::NoTcpPoolElement(_) => {
            format!("no PE of pool \"{pool}\" offers TCP (resolved at {at})")
        }
        BlockingError::NoReachablePoolElement(_) => {
            format!("no reachable PE left in pool \"{pool}\" (resolved at {at})")
        }
        other => format!("handle resolution of pool \"{pool}\" failed: {other}"),
    })
}

/// No registrar answered the hunt.
pub(crate) fn no_registrar(global: &Global) -> String {
    format!("no registrar reachable (tried {})", list(&global.registrars()))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Cli;

    fn global(args: &[&str]) -> Global {
        let all = ["rserpool"].into_iter().chain(args.iter().copied()).chain(["resolve", "p"]);
        Cli::try_parse_from(all).unwrap().global
    }

    // Goal: each failure names what failed, in one line. Method: format every variant.
    #[test]
    fn resolution_errors_in_one_line() {
        let g = global(&["--registrar", "127.0.0.1", "--registrar", "127.0.0.2:3863"]);
        let pool = PoolHandle::new(b"X").unwrap();
        let home = Some("127.0.0.1:3863".parse().unwrap());
        let text = |e| resolution_error(e, &pool, home, &g).to_string();
        assert_eq!(
            text(BlockingError::UnknownPool(pool)),
            "pool \"X\" is unknown at 127.0.0.1:3863"
        );
        assert_eq!(
            text(BlockingError::NoRegistrar { tried: vec![] }),
            "no registrar reachable (tried 127.0.0.1:3863, 127.0.0.2:3863)"
        );
        assert!(text(BlockingError::TimedOut).contains("within 5000 ms"));
        let cause = codec::ErrorCause(0x8);
        let refused = text(BlockingError::ResolutionRefused { pool_handle: pool, cause });
        assert!(refused.starts_with("registrar 127.0.0.1:3863 refused"), "{refused}");
        assert!(refused.ends_with("(cause 0x0008)"), "{refused}");
        for e in [
            BlockingError::UnknownPool(pool),
            BlockingError::NoRegistrar { tried: vec![] },
            BlockingError::TimedOut,
            BlockingError::NoReachablePoolElement(pool),
            BlockingError::Io(std::io::Error::other("boom")),
        ] {
            assert!(!text(e).contains('\n'));
        }
    }

    // Goal: the tool's timeouts bound every request and a hunt round.
    #[test]
    fn config_uses_the_timeout() {
        let c = endpoint_config(&global(&["--timeout-ms", "250"]));
        assert_eq!(c.request_timeout, Duration::from_millis(250));
        assert_eq!(c.registration_timeout, Duration::from_millis(250));
        assert_eq!(c.hunt.hunt_timeout_initial, Duration::from_millis(250));
        assert_eq!(c.subscription_probe, Duration::from_millis(500));
        assert_eq!(c.home_silence, asap::endpoint::HOME_SILENCE_DEFAULT);
        let quick = endpoint_config(&global(&["--home-silence-ms", "3000"]));
        assert_eq!(quick.home_silence, Duration::from_millis(3_000));
        let slow = endpoint_config(&global(&["--timeout-ms", "60000"]));
        assert_eq!(slow.subscription_probe, asap::endpoint::SUBSCRIPTION_PROBE_DEFAULT);
        assert_eq!(c.hunt.registrars, ["127.0.0.1:3863".parse::<SocketAddr>().unwrap()]);
    }

    // Goal: the home follows the hunt's finds and losses, named by its ASAP address.
    #[test]
    fn registrars_follow_events() {
        let mut r = Registrars::new(&global(&["--registrar", "127.0.0.1:3863"]));
        let a: SocketAddr = "127.0.0.1:3863".parse().unwrap();
        let udp: SocketAddr = "127.0.0.1:9899".parse().unwrap();
        r.observe(&Event::RegistrarFound { assoc: AssocId(1), peer: udp });
        assert_eq!((r.home(), r.peer(AssocId(1))), (Some(a), Some(a)));
        r.observe(&Event::RegistrarLost { assoc: AssocId(1) });
        assert_eq!((r.home(), r.peer(AssocId(1))), (None, None));
    }
}
