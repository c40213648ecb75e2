//! Glue from the per-core loops to the `transport` crate: which backend each core opens.

pub mod admin;
pub mod agentx;
pub mod http;
pub mod management;
pub mod metrics;
pub mod presence;
pub mod systemd;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};

use sctp::TagSteering;

use transport::kernel_sctp::{KernelSctpConfig, KernelSctpPorts};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::SctpTransport;

use crate::config::{Backend, Config};
use crate::core::{self, Running};

/// Starts the registrar on the configured backend.
///
/// Userspace: every core binds the same UDP address with SO_REUSEPORT, so the kernel steers
/// each peer's packets (and thus each association) to one core. Kernel: one one-to-many socket
/// per port (ASAP, ENRP), so one worker; the handlespace still shards, but within that core.
pub fn start(config: &Config) -> io::Result<Running> {
    match config.backend {
        Backend::Userspace => {
            let udp = config.udp_encapsulation;
            let asap_port = config.asap_port;
            let enrp_port = config.enrp.enabled.then_some(config.enrp_port);
            let sessions = config.limits.sessions_per_core_max;
            let mtu = config.sctp_mtu;
            let rto_max = std::time::Duration::from_millis(u64::from(config.sctp_rto_max_ms));
            let gso = config.udp_gso;
            let cores = u32::try_from(config.worker_count()).unwrap_or(u32::MAX);
            // One secret for every core: a cookie issued by the core an INIT reached is opened
            // by the core its tag names (sctp::TagSteering). Each core derives its own tags.
            let secret: [u8; 32] = rand::random();
            let order = Arc::new(BindOrder::default());
            let epoch = std::time::Instant::now();
            core::start(config, move |core| {
                // The steering program names sockets by their index in the reuseport group,
                // which is bind order: bind core by core.
                let _turn = order.wait_for(core);
                let core = u32::try_from(core).expect("fewer cores than u32::MAX");
                let mut cfg = SctpUdpConfig::with_mtu(mtu);
                if gso {
                    cfg.udp.gso_segments_max = transport::GSO_SEGMENTS_MAX;
                }
                cfg.endpoint.associations_max = sessions.min(sctp::ASSOCIATIONS_LIMIT);
                cfg.endpoint.rto_max = rto_max.max(cfg.endpoint.rto_initial);
                cfg.endpoint.tag_steering = (cores > 1).then_some(TagSteering { cores, core });
                cfg.epoch = Some(epoch);
                let mut transport = SctpUdpTransport::bind(udp, cfg, secret)
                    .map_err(|e| io::Error::new(e.kind(), format!("udp {udp}: {e}")))?;
                transport.listen(asap_port).map_err(io::Error::other)?;
                if let Some(port) = enrp_port {
                    transport.listen(port).map_err(io::Error::other)?;
                }
                if cores > 1 && core == cores - 1 {
                    // Without the program the kernel hashes the 4-tuple: every association
                    // still works (its cookie opens on any core), only the spreading is lost.
                    if let Err(e) = transport.datagram_endpoint().steer_by_verification_tag(cores) {
                        tracing::warn!(error = %e, "no steering by SCTP tag; by 4-tuple hash");
                    }
                }
                Ok(transport)
            })
        }
        Backend::Kernel => {
            let asap_port = config.asap_port;
            // ASAP and ENRP on their own ports: one one-to-many socket each, per core. With
            // several cores every core's sockets share the ports (SO_REUSEPORT): the kernel
            // gives each new association to one of them, and it stays there; ENRP messages
            // that reach another core than the ENRP core are forwarded to it, as on the
            // userspace backend.
            let mut ports = vec![asap_port];
            ports.extend(config.enrp.enabled.then_some(config.enrp_port));
            let local_addrs: Vec<SocketAddr> =
                config.kernel_addresses.iter().map(|ip| SocketAddr::new(*ip, asap_port)).collect();
            let reuse_port = config.worker_count() > 1;
            core::start(config, move |_core| {
                let cfg = KernelSctpConfig {
                    local_addrs: local_addrs.clone(),
                    reuse_port,
                    ..Default::default()
                };
                let mut transport = KernelSctpPorts::open(&cfg, &ports)?;
                for &port in &ports {
                    transport.listen(port).map_err(io::Error::other)?;
                }
                Ok(transport)
            })
        }
    }
}

/// Makes the cores bind their sockets one after another, in core order.
#[derive(Default)]
struct BindOrder {
    next: Mutex<usize>,
    turn: Condvar,
}

impl BindOrder {
    /// Blocks until every lower core has bound (or failed); the guard passes the turn on when
    /// dropped, also on an error, so that one failure never hangs the others.
    fn wait_for(&self, core: usize) -> BindTurn<'_> {
        let mut next = self.next.lock().expect("no thread panics holding it");
        while *next < core {
            next = self.turn.wait(next).expect("no thread panics holding it");
        }
        BindTurn(self)
    }
}

struct BindTurn<'a>(&'a BindOrder);

impl Drop for BindTurn<'_> {
    fn drop(&mut self) {
        *self.0.next.lock().expect("no thread panics holding it") += 1;
        self.0.turn.notify_all();
    }
}
