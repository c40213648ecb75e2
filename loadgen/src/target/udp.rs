//! The UDP client shared by loadgen's own targets, and the `udp-echo` server.
//!
//! The client keeps one connected, non-blocking UDP socket per association (up to
//! [`SOCKETS_MAX`] per worker; beyond that associations share sockets), a fixed slot table of
//! in-flight operations indexed by the token's low 32 bits, and waits with `ppoll`.
//!
//! The echo server is `server_threads` blocking sockets sharing one port with `SO_REUSEPORT`,
//! so the kernel spreads flows over them; each moves datagrams in batches with
//! `recvmmsg`/`sendmmsg`. It is the ceiling that registrar throughput is
//! reported against.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::client::{Client, Launcher, RunningTarget, SubmitError, Target, WorkerPlan};
use crate::op::{AssociationId, Completion, ErrorCause, Op, OpKind, Outcome};
use crate::scenario::Scenario;
use crate::wire::{Header, DATAGRAM_MAX, REQUEST, RESPONSE};

/// A target speaking loadgen's framing at `address`.
pub struct UdpTarget {
    name: &'static str,
    address: SocketAddr,
}

impl UdpTarget {
    /// A target named `name` for reports.
    pub fn new(name: &'static str, address: SocketAddr) -> UdpTarget {
        UdpTarget { name, address }
    }
}

impl Target for UdpTarget {
    fn name(&self) -> &str {
        self.name
    }

    fn connect(&self, scenario: &Scenario, plan: &WorkerPlan) -> anyhow::Result<Box<dyn Client>> {
        Ok(Box::new(UdpClient::new(scenario, plan, self.address)?))
    }
}

/// One worker's client for a UDP target.
pub struct UdpClient {
    sockets: Vec<UdpSocket>,
    pollfds: Vec<libc::pollfd>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    in_flight: u32,
    /// PE identifier → its association, to name keep-alives.
    elements: HashMap<u32, AssociationId>,
    op_timeout: Duration,
    sweep_next_at: Instant,
    send_buffer: Vec<u8>,
    recv_batch: Batch,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    op: Option<Op>,
    generation: u32,
    sent_at: Instant,
}

impl UdpClient {
    /// Opens the sockets and the slot table for `plan`.
    pub fn new(
        scenario: &Scenario,
        plan: &WorkerPlan,
        address: SocketAddr,
    ) -> anyhow::Result<UdpClient> {
        let associations = plan.associations();
        let count = associations.clamp(1, SOCKETS_MAX);
        let mut sockets = Vec::with_capacity(count);
        for _ in 0..count {
            let bind: SocketAddr =
                if address.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse()?;
            let socket = UdpSocket::bind(bind)?;
            socket.connect(address)?;
            socket.set_nonblocking(true)?;
            sockets.push(socket);
        }
        let pollfds = sockets
            .iter()
            .map(|s| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        let slots_len = plan.in_flight_max as usize;
        let now = Instant::now();
        Ok(UdpClient {
            sockets,
            pollfds,
            slots: vec![Slot { op: None, generation: 0, sent_at: now }; slots_len],
            free: (0..plan.in_flight_max).rev().collect(),
            in_flight: 0,
            elements: plan.pool_elements.iter().map(|pe| (pe.element, pe.association)).collect(),
            op_timeout: Duration::from_millis(scenario.run.op_timeout_ms),
            sweep_next_at: now,
            send_buffer: vec![0; usize::from(scenario.target.payload_bytes)],
            recv_batch: Batch::new(),
        })
    }

    fn socket_index(&self, association: AssociationId) -> usize {
        association.0 as usize % self.sockets.len()
    }

    /// Reads every datagram waiting on socket `index`, up to a batch bound.
    fn receive(
        &mut self,
        index: usize,
        now: Instant,
        completions: &mut Vec<Completion>,
    ) -> anyhow::Result<()> {
        let fd = self.sockets[index].as_raw_fd();
        let received = match self.recv_batch.receive(fd, libc::MSG_DONTWAIT) {
            Ok(received) => received,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            // ICMP port unreachable from a target that went away: ops will time out.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for i in 0..received {
            let Ok(header) = Header::parse(self.recv_batch.datagram(i)) else {
                continue; // Not ours; a target's garbage is counted by timeouts.
            };
            if header.flags == REQUEST && header.kind == OpKind::KeepAlive {
                self.answer_keep_alive(index, header, now, completions);
                continue;
            }
            self.complete(header, now, completions);
        }
        Ok(())
    }

    fn complete(&mut self, header: Header, now: Instant, completions: &mut Vec<Completion>) {
        let index = (header.token & 0xffff_ffff) as usize;
        let generation = (header.token >> 32) as u32;
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if slot.generation != generation {
            return; // A late answer to an op that already timed out.
        }
        let Some(op) = slot.op.take() else { return };
        let outcome = if header.kind != op.kind {
            Outcome::Fail(ErrorCause::Protocol)
        } else if header.status != 0 {
            Outcome::Fail(ErrorCause::Asap(header.status))
        } else {
            Outcome::Succeed
        };
        self.release(index as u32);
        completions.push(Completion { op, end: now, outcome });
    }

    fn answer_keep_alive(
        &mut self,
        index: usize,
        header: Header,
        now: Instant,
        completions: &mut Vec<Completion>,
    ) {
        let reply = Header { flags: RESPONSE, ..header };
        reply.emit(&mut self.send_buffer);
        let sent = self.sockets[index].send(&self.send_buffer);
        let association =
            self.elements.get(&header.element).copied().unwrap_or(AssociationId(u32::MAX));
        let op = Op {
            kind: OpKind::KeepAlive,
            association,
            pool: header.pool,
            element: header.element,
            issued_at: now,
        };
        let outcome =
            if sent.is_ok() { Outcome::Succeed } else { Outcome::Fail(ErrorCause::Transport) };
        completions.push(Completion { op, end: Instant::now(), outcome });
    }

    fn expire(&mut self, now: Instant, completions: &mut Vec<Completion>) {
        if now < self.sweep_next_at || self.in_flight == 0 {
            return;
        }
        self.sweep_next_at = now + SWEEP_INTERVAL;
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(op) = slot.op else { continue };
            if now.saturating_duration_since(slot.sent_at) >= self.op_timeout {
                slot.op = None;
                self.release(index as u32);
                completions.push(Completion {
                    op,
                    end: now,
                    outcome: Outcome::Fail(ErrorCause::Timeout),
                });
            }
        }
    }

    fn release(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        assert!(slot.op.is_none());
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.in_flight -= 1;
    }
}

impl Client for UdpClient {
    fn submit(&mut self, now: Instant, op: Op) -> Result<(), SubmitError> {
        let index = self.free.pop().ok_or(SubmitError::Full)?;
        let slot = &mut self.slots[index as usize];
        assert!(slot.op.is_none());
        let token = (u64::from(slot.generation) << 32) | u64::from(index);
        let header = Header {
            token,
            kind: op.kind,
            flags: REQUEST,
            status: 0,
            pool: op.pool,
            element: op.element,
        };
        header.emit(&mut self.send_buffer);
        let socket = self.socket_index(op.association);
        match self.sockets[socket].send(&self.send_buffer) {
            Ok(_) => {
                let slot = &mut self.slots[index as usize];
                *slot = Slot { op: Some(op), generation: slot.generation, sent_at: now };
                self.in_flight += 1;
                Ok(())
            }
            Err(_) => {
                // Socket buffer full (or the peer is gone): the op was not sent.
                self.free.push(index);
                Err(SubmitError::Unavailable)
            }
        }
    }

    fn poll(
        &mut self,
        mut now: Instant,
        deadline: Instant,
        completions: &mut Vec<Completion>,
    ) -> anyhow::Result<()> {
        let before = completions.len();
        loop {
            let wait = deadline.saturating_duration_since(now).min(POLL_WAIT_MAX);
            let timeout = libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(wait.subsec_nanos() as i32),
            };
            // SAFETY: pollfds is a live, correctly sized array of pollfd for the whole call.
            let ready = unsafe {
                libc::ppoll(
                    self.pollfds.as_mut_ptr(),
                    self.pollfds.len() as libc::nfds_t,
                    &timeout,
                    std::ptr::null(),
                )
            };
            if ready < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() != ErrorKind::Interrupted {
                    return Err(error.into());
                }
            }
            now = Instant::now();
            for index in 0..self.pollfds.len() {
                if ready > 0 && self.pollfds[index].revents != 0 {
                    self.receive(index, now, completions)?;
                }
            }
            self.expire(now, completions);
            if completions.len() > before || now >= deadline {
                return Ok(());
            }
        }
    }

    fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

/// Starts the embedded echo server.
pub struct EchoLauncher;

impl Launcher for EchoLauncher {
    fn launch(&self, scenario: &Scenario) -> anyhow::Result<Box<dyn RunningTarget>> {
        Ok(Box::new(EchoServer::start(scenario.target.server_threads)?))
    }
}

/// A UDP echo server on 127.0.0.1: `threads` sockets on one port with `SO_REUSEPORT`.
pub struct EchoServer {
    address: SocketAddr,
    target: UdpTarget,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds 127.0.0.1 on a free port and starts the threads.
    pub fn start(threads: u16) -> anyhow::Result<EchoServer> {
        Self::bind("127.0.0.1:0".parse()?, threads)
    }

    /// Binds `address` and starts the threads.
    pub fn bind(address: SocketAddr, threads: u16) -> anyhow::Result<EchoServer> {
        assert!(threads > 0);
        let first = reuse_port_socket(address)?;
        let address = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..threads {
            sockets.push(reuse_port_socket(address)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name(format!("udp-echo-{i}"))
                    .spawn(move || echo_loop(&socket, &stop))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EchoServer { address, target: UdpTarget::new("udp-echo", address), stop, threads })
    }
}

impl RunningTarget for EchoServer {
    fn address(&self) -> SocketAddr {
        self.address
    }
    fn target(&self) -> &dyn Target {
        &self.target
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn echo_loop(socket: &UdpSocket, stop: &AtomicBool) {
    let mut batch = Batch::new();
    let fd = socket.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        // A read timeout (or EINTR) returns an error: check `stop` again. A failed send drops
        // datagrams, as UDP may; the client counts them as timeouts.
        if let Ok(received) = batch.receive(fd, libc::MSG_WAITFORONE) {
            let _ = batch.send_back(fd, received);
        }
    }
}

/// Up to [`BATCH`] datagrams moved with one `recvmmsg` and sent back with one `sendmmsg`, so
/// that both ends of the baseline cost the kernel's batch price, not a syscall per datagram.
struct Batch {
    buffers: Box<[[u8; DATAGRAM_MAX]]>,
    peers: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

impl Batch {
    fn new() -> Batch {
        fn zeroed<T>() -> T {
            // SAFETY: only used below for sockaddr_storage, iovec and mmsghdr, for which
            // all-zero is valid (null pointers, zero lengths); `reset` sets every pointer
            // before the kernel sees one.
            unsafe { std::mem::zeroed() }
        }
        Batch {
            buffers: vec![[0u8; DATAGRAM_MAX]; BATCH].into_boxed_slice(),
            peers: (0..BATCH).map(|_| zeroed()).collect(),
            iovecs: (0..BATCH).map(|_| zeroed()).collect(),
            headers: (0..BATCH).map(|_| zeroed()).collect(),
        }
    }

    /// Points every header at its buffer and peer slot, with full lengths. The boxed slices
    /// never move or grow, so the pointers stay valid.
    fn reset(&mut self) {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.buffers[i].as_mut_ptr().cast(),
                iov_len: DATAGRAM_MAX,
            };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = std::ptr::addr_of_mut!(self.peers[i]).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = std::ptr::addr_of_mut!(self.iovecs[i]);
            header.msg_iovlen = 1;
            self.headers[i].msg_len = 0;
        }
    }

    /// Receives up to [`BATCH`] datagrams from `fd` with `flags` (`MSG_WAITFORONE` blocks for
    /// the first, `MSG_DONTWAIT` never blocks); returns how many arrived.
    fn receive(&mut self, fd: libc::c_int, flags: libc::c_int) -> std::io::Result<usize> {
        self.reset();
        // SAFETY: headers point into our own live buffers (see `reset`); BATCH entries.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let received = received as usize;
        assert!(received <= BATCH);
        Ok(received)
    }

    /// Datagram `i` of the last `receive`.
    fn datagram(&self, i: usize) -> &[u8] {
        let len = (self.headers[i].msg_len as usize).min(DATAGRAM_MAX);
        &self.buffers[i][..len]
    }

    /// Sends the first `received` datagrams back to where each came from, unchanged.
    fn send_back(&mut self, fd: libc::c_int, received: usize) -> std::io::Result<()> {
        assert!(received <= BATCH);
        for i in 0..received {
            self.iovecs[i].iov_len = self.headers[i].msg_len as usize;
        }
        let mut sent = 0;
        while sent < received {
            // SAFETY: as above; entries sent..received are filled in by recvmmsg.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[sent..].as_mut_ptr(),
                    (received - sent) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                return Err(std::io::Error::last_os_error());
            }
            sent += n as usize;
        }
        Ok(())
    }
}

/// A blocking UDP socket bound to `address` with `SO_REUSEPORT` and a short read timeout, so
/// that server threads notice `stop` promptly.
pub fn reuse_port_socket(address: SocketAddr) -> anyhow::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Bigger buffers than the default 208 KiB, so that a burst of W × N requests is not dropped
    // on the floor; the kernel caps this at net.core.rmem_max (see tuning/).
    let _ = socket.set_recv_buffer_size(SERVER_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SERVER_BUFFER_BYTES);
    socket.bind(&address.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(SERVER_READ_TIMEOUT))?;
    Ok(socket)
}

/// Sockets per worker; more associations than this share them (one `ppoll` entry each).
pub const SOCKETS_MAX: usize = 256;
/// Datagrams moved per `recvmmsg`/`sendmmsg`, by the echo server and the client.
const BATCH: usize = 64;
/// How often in-flight ops are checked for timeouts; timeouts are late by at most this.
const SWEEP_INTERVAL: Duration = Duration::from_millis(10);
/// Longest single `ppoll`, so that timeouts are swept even when nothing arrives.
const POLL_WAIT_MAX: Duration = Duration::from_millis(10);
/// Server socket buffers.
const SERVER_BUFFER_BYTES: usize = 4 << 20;
/// How long a server thread blocks before checking whether to stop.
pub const SERVER_READ_TIMEOUT: Duration = Duration::from_millis(50);
