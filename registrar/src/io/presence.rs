//! The ENRP multicast channel (RFC 5353 §3.1 "group-casts"; RSPLIB's `-enrpannounce`): our
//! Presence out every PEER-HEARTBEAT-CYCLE, other registrars' Presences in. The ENRP core's
//! worker owns it. Discovery is not on the hot path: the socket is looked at every
//! [`POLL_INTERVAL`], one non-blocking receive, instead of being added to the core's wait.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use transport::multicast::{MulticastConfig, MulticastReceiver, MulticastSender};

use crate::config::Config;

/// How often the ENRP core looks for Presences on the channel.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Presences read per look; the rest wait for the next one (a flood costs at most this).
const PER_POLL_MAX: usize = 16;

/// The channel's two sockets.
pub struct PresenceChannel {
    sender: MulticastSender,
    receiver: MulticastReceiver,
    next_poll: Instant,
}

impl PresenceChannel {
    /// The channel of `config`, or `None` when ENRP or its multicast is off.
    pub fn open(config: &Config) -> io::Result<Option<Self>> {
        if !config.enrp.enabled || !config.enrp.multicast {
            return Ok(None);
        }
        let IpAddr::V4(group) = config.enrp.multicast_group.ip() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "enrp.multicast_group: IPv4"));
        };
        let cfg = MulticastConfig {
            group,
            port: config.enrp.multicast_group.port(),
            interface: config.enrp.multicast_interface,
            ..MulticastConfig::default()
        };
        let context = |e: io::Error| {
            io::Error::new(e.kind(), format!("enrp multicast {}: {e}", config.enrp.multicast_group))
        };
        let receiver = MulticastReceiver::open(&cfg).map_err(context)?;
        let sender = MulticastSender::open(&cfg).map_err(context)?;
        Ok(Some(Self { sender, receiver, next_poll: Instant::now() }))
    }

    /// Hands `f` the Presences that arrived, if a look is due.
    pub fn poll(&mut self, now: Instant, f: impl FnMut(SocketAddr, &[u8])) {
        if now < self.next_poll {
            return;
        }
        self.next_poll = now + POLL_INTERVAL;
        if let Err(e) = self.receiver.recv_batch(PER_POLL_MAX, f) {
            tracing::debug!(error = %e, "enrp multicast receive");
        }
    }

    /// Sends one Presence; a full socket buffer drops it (the next cycle repeats it).
    pub fn send(&self, bytes: &[u8]) {
        if let Err(e) = self.sender.send(bytes) {
            tracing::debug!(error = %e, "enrp multicast presence not sent");
        }
    }
}
