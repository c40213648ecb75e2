//! [`KernelSctpPorts`]: one kernel one-to-many socket per local SCTP port, behind one
//! [`SctpTransport`]. A registrar serves ASAP on one port (3863) and ENRP on another (9901);
//! a one-to-many socket is bound to one port, so the backend needs one socket for each.
//!
//! Association ids: the kernel numbers associations per socket, so ids are tagged with their
//! socket's index in the top bits ([`PORT_BITS`]); the kernel's own ids stay far below that.
//! `connect` leaves from the first socket, `connect_from(port)` from the socket of `port`
//! (peers match an ENRP association's port against the registrar's ENRP address).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use super::{KernelSctp, KernelSctpConfig};
use crate::api::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};
use crate::wake_timer::WakeTimer;

/// Bits of an association id that name the socket.
pub const PORT_BITS: u32 = 2;
const SHIFT: u32 = 32 - PORT_BITS;
const LOCAL_MASK: u32 = (1 << SHIFT) - 1;
/// Sockets at most.
pub const PORTS_MAX: usize = 1 << PORT_BITS;

/// Kernel SCTP sockets, one per port, as one transport.
pub struct KernelSctpPorts {
    sockets: Vec<KernelSctp>,
    /// The socket `poll` starts with, turned each call so that none starves the others.
    first: usize,
    /// The sockets the last `wait` found readable (bit per socket): the next `poll` reads only
    /// those, so that a quiet ENRP socket costs no empty read per ASAP request. `None` (no
    /// wait since the last poll): read them all.
    ready: Option<u32>,
    /// The eventfd behind [`SctpTransport::doorbell`], watched by `wait` beside the sockets.
    bell: Option<Arc<OwnedFd>>,
    /// `wait`'s deadline, kept set across waits (see [`WakeTimer`]).
    timer: WakeTimer,
}

impl KernelSctpPorts {
    /// One socket per port in `ports`, each bound to `cfg.local_addrs` with that port.
    pub fn open(cfg: &KernelSctpConfig, ports: &[u16]) -> io::Result<Self> {
        if ports.is_empty() || ports.len() > PORTS_MAX {
            let message = format!("kernel SCTP: 1 to {PORTS_MAX} ports, not {}", ports.len());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let mut sockets = Vec::with_capacity(ports.len());
        for &port in ports {
            let mut one = cfg.clone();
            for address in &mut one.local_addrs {
                address.set_port(port);
            }
            let socket = KernelSctp::open(one)
                .map_err(|e| io::Error::new(e.kind(), format!("SCTP port {port}: {e}")))?;
            sockets.push(socket);
        }
        Ok(Self { sockets, first: 0, ready: None, bell: None, timer: WakeTimer::new(true)? })
    }

    /// The first socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets[0].local_addr()
    }

    fn split(&self, assoc: AssocId) -> Result<(usize, AssocId), TransportError> {
        let index = (assoc.0 >> SHIFT) as usize;
        if index >= self.sockets.len() {
            return Err(TransportError::UnknownAssoc);
        }
        Ok((index, AssocId(assoc.0 & LOCAL_MASK)))
    }

    fn socket_of_port(&mut self, port: u16) -> Option<(usize, &mut KernelSctp)> {
        self.sockets.iter_mut().enumerate().find(|(_, s)| s.local_addr().port() == port)
    }
}

/// The tagged id of association `assoc` of socket `index`.
fn join(index: usize, assoc: AssocId) -> Result<AssocId, TransportError> {
    if assoc.0 > LOCAL_MASK {
        // A kernel id this large would collide with another socket's: refuse it.
        return Err(TransportError::Full);
    }
    Ok(AssocId(((index as u32) << SHIFT) | assoc.0))
}

fn tag(index: usize, event: TransportEvent<'_>) -> Option<TransportEvent<'_>> {
    let t = |assoc: AssocId| join(index, assoc).ok();
    Some(match event {
        TransportEvent::Up { assoc, peer } => TransportEvent::Up { assoc: t(assoc)?, peer },
        TransportEvent::Data { assoc, stream, ppid, data } => {
            TransportEvent::Data { assoc: t(assoc)?, stream, ppid, data }
        }
        TransportEvent::Closed { assoc } => TransportEvent::Closed { assoc: t(assoc)? },
        TransportEvent::Lost { assoc } => TransportEvent::Lost { assoc: t(assoc)? },
        TransportEvent::SendFailed { assoc, stream, ppid, data } => {
            TransportEvent::SendFailed { assoc: t(assoc)?, stream, ppid, data }
        }
    })
}

impl SctpTransport for KernelSctpPorts {
    fn listen(&mut self, port: u16) -> Result<(), TransportError> {
        match self.socket_of_port(port) {
            Some((_, socket)) => socket.listen(port),
            None => Err(TransportError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("kernel SCTP: no socket was opened for port {port}"),
            ))),
        }
    }

    fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<AssocId, TransportError> {
        let assoc = self.sockets[0].connect(now, remote)?;
        join(0, assoc)
    }

    fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddr,
    ) -> Result<AssocId, TransportError> {
        match self.socket_of_port(local_port) {
            Some((index, socket)) => {
                let assoc = socket.connect(now, remote)?;
                join(index, assoc)
            }
            None => self.connect(now, remote),
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
        let (index, local) = self.split(assoc)?;
        self.sockets[index].send(now, local, stream, ppid, data)
    }

    fn shutdown(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        let (index, local) = self.split(assoc)?;
        self.sockets[index].shutdown(now, local)
    }

    fn abort(&mut self, now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        let (index, local) = self.split(assoc)?;
        self.sockets[index].abort(now, local)
    }

    fn peer_addresses(
        &mut self,
        assoc: AssocId,
        out: &mut [SocketAddr],
    ) -> Result<usize, TransportError> {
        let (index, local) = self.split(assoc)?;
        self.sockets[index].peer_addresses(local, out)
    }

    fn poll(
        &mut self,
        now: Instant,
        budget: usize,
        mut on_event: impl FnMut(TransportEvent<'_>),
    ) -> io::Result<usize> {
        let count = self.sockets.len();
        let ready = self.ready.take().unwrap_or(u32::MAX);
        let mut delivered = 0;
        for step in 0..count {
            let index = (self.first + step) % count;
            let left = budget - delivered;
            if left == 0 {
                break;
            }
            if ready & (1 << index) == 0 {
                continue;
            }
            delivered += self.sockets[index].poll(now, left, |event| {
                if let Some(event) = tag(index, event) {
                    on_event(event);
                }
            })?;
        }
        self.first = (self.first + 1) % count;
        Ok(delivered)
    }

    fn wait(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        let mut fds = [-1; PORTS_MAX + 1];
        for (slot, socket) in fds.iter_mut().zip(&self.sockets) {
            *slot = socket.fd.as_raw_fd();
        }
        let count = self.sockets.len();
        let mut watched = count;
        if let Some(bell) = &self.bell {
            fds[count] = bell.as_raw_fd();
            watched += 1;
        }
        let ready = super::wait_readable(&fds[..watched], now, until, Some(&mut self.timer))?;
        if ready & (1 << count) != 0 {
            if let Some(bell) = &self.bell {
                // Rung: reset the counter so that the next wait sleeps again.
                let mut sink = 0u64;
                // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
                let _ = unsafe {
                    libc::read(bell.as_raw_fd(), (&mut sink as *mut u64).cast::<libc::c_void>(), 8)
                };
            }
        }
        self.ready = Some(ready & ((1 << count) - 1));
        Ok(())
    }

    fn input_dropped(&self) -> u64 {
        self.sockets.iter().map(SctpTransport::input_dropped).sum()
    }

    fn doorbell(&mut self) -> io::Result<Option<crate::Doorbell>> {
        if let Some(bell) = &self.bell {
            return Ok(Some(crate::Doorbell::new(bell.clone())));
        }
        // SAFETY: eventfd takes no pointers; a negative result is an error we report.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let bell = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        self.bell = Some(bell.clone());
        Ok(Some(crate::Doorbell::new(bell)))
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_socket_and_come_apart_again() {
        let ports = KernelSctpPorts {
            sockets: Vec::new(),
            first: 0,
            ready: None,
            bell: None,
            timer: WakeTimer::new(true).unwrap(),
        };
        let tagged = join(1, AssocId(41)).unwrap();
        assert_ne!(tagged, AssocId(41));
        // `split` checks the index against the sockets opened: none here.
        assert!(matches!(ports.split(tagged), Err(TransportError::UnknownAssoc)));
        assert_eq!(tagged.0 & LOCAL_MASK, 41);
        assert_eq!((tagged.0 >> SHIFT) as usize, 1);
        assert!(matches!(join(0, AssocId(LOCAL_MASK + 1)), Err(TransportError::Full)));
        assert_eq!(join(0, AssocId(7)).unwrap(), AssocId(7), "socket 0 keeps the kernel's ids");
    }
}
