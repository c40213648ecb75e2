//! Glue from the per-core loops to the `transport` crate: which backend each core opens.

use std::io;
use std::net::SocketAddr;

use transport::kernel_sctp::{KernelSctp, KernelSctpConfig};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::SctpTransport;

use crate::config::{Backend, Config};
use crate::core::{self, Running};

/// Starts the registrar on the configured backend.
///
/// Userspace: every core binds the same UDP address with SO_REUSEPORT, so the kernel steers
/// each peer's packets (and thus each association) to one core. Kernel: one one-to-many socket,
/// so one worker; the handlespace still shards, but within that core.
pub fn start(config: &Config) -> io::Result<Running> {
    match config.backend {
        Backend::Userspace => {
            let udp = config.udp_encapsulation;
            let asap_port = config.asap_port;
            let sessions = config.limits.sessions_per_core_max;
            let mtu = config.sctp_mtu;
            core::start(config, move |_core| {
                // One secret per core: it signs cookies and seeds verification tags, and
                // SO_REUSEPORT keeps an INIT and its COOKIE ECHO on the same core.
                let secret: [u8; 32] = rand::random();
                let mut cfg = SctpUdpConfig::with_mtu(mtu);
                cfg.endpoint.associations_max = sessions.min(sctp::ASSOCIATIONS_LIMIT);
                let mut transport = SctpUdpTransport::bind(udp, cfg, secret)
                    .map_err(|e| io::Error::new(e.kind(), format!("udp {udp}: {e}")))?;
                transport.listen(asap_port).map_err(io::Error::other)?;
                Ok(transport)
            })
        }
        Backend::Kernel => {
            let mut single = config.clone();
            if single.workers != 1 {
                tracing::info!("the kernel backend runs one worker (one one-to-many socket)");
                single.workers = 1;
            }
            let asap_port = config.asap_port;
            let local_addrs: Vec<SocketAddr> =
                config.kernel_addresses.iter().map(|ip| SocketAddr::new(*ip, asap_port)).collect();
            core::start(&single, move |_core| {
                let cfg =
                    KernelSctpConfig { local_addrs: local_addrs.clone(), ..Default::default() };
                let mut transport = KernelSctp::open(cfg)?;
                transport.listen(asap_port).map_err(io::Error::other)?;
                Ok(transport)
            })
        }
    }
}
