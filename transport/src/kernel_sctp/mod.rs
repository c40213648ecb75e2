//! [`KernelSctp`]: the kernel SCTP backend (RFC 6458 sockets API), for hosts that have it.
//!
//! One one-to-many socket (`SOCK_SEQPACKET`, `IPPROTO_SCTP`, RFC 6458 §3) per core, bound to
//! one or more local addresses (`sctp_bindx`, §9.1), non-blocking, with `SCTP_NODELAY`,
//! `SCTP_RECVRCVINFO` (§8.1.29) and `SCTP_EVENT` subscriptions (§6.2.2) for association change,
//! shutdown and send-failed notifications. Messages go out with one `sendmsg` carrying an
//! `SCTP_SNDINFO` cmsg (§5.3.4: association, stream, PPID); they come in with `SCTP_RCVINFO`.
//!
//! Reads take up to [`RECV_BATCH`] messages per `recvmmsg`, and a batch that comes back short
//! ends the turn's reading: at one request in flight that is one receive call per request
//! instead of two (the second only to learn the socket is empty; issue 14).
//!
//! Bounds: `message_len_max` bytes of receive buffer per slot (a larger message is dropped and
//! counted, since the kernel then delivers it in parts); `peer_addresses_max` addresses per
//! query.
//!
//! Not done: `SCTP_REUSE_PORT` across cores (each core may open its own port instead), partial
//! delivery of messages larger than the receive buffer, and PR-SCTP.

pub mod one_to_one;
pub mod ports;
pub mod wire;

pub use one_to_one::KernelSctpOneToOne;
pub use ports::KernelSctpPorts;

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use crate::api::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};
use crate::sockaddr;
use crate::wake_timer::{Timeout, WakeTimer};
use wire::{AssocState, MessageInfo, Notification};

/// Bounds and options of a kernel SCTP endpoint.
#[derive(Debug, Clone)]
pub struct KernelSctpConfig {
    /// Local addresses, all with the same port (port 0: the kernel picks one). The first is
    /// `bind`ed, the rest added with `sctp_bindx`. An unspecified address binds all (wildcard).
    pub local_addrs: Vec<SocketAddr>,
    /// Largest message received whole. Default 65 536 + 1 024 (a 64 KiB ASAP/ENRP message).
    pub message_len_max: usize,
    /// Outbound streams requested in INIT (`SCTP_INITMSG`). Default 16.
    pub streams_out: u16,
    /// Inbound streams accepted. Default 16.
    pub streams_in_max: u16,
    /// Peer addresses read by one `peer_addresses` call. Default 16.
    pub peer_addresses_max: usize,
    /// `listen` backlog (associations being accepted). Default 1 024.
    pub listen_backlog: i32,
    /// `SO_REUSEPORT` before binding, so that one socket per core shares the port and the
    /// kernel spreads new associations over them (an association stays on the socket it
    /// started on). Default off.
    pub reuse_port: bool,
    /// `SO_SNDBUF` and `SO_RCVBUF` of the one-to-many socket (forced past `wmem_max` and
    /// `rmem_max` where the process has CAP_NET_ADMIN). Default 4 MiB. With the kernel's
    /// default `sndbuf_policy` and `rcvbuf_policy` (0) every association of the socket shares
    /// them: at the default 208 KiB a registrar with 20 000 PEs' associations in the lab VM
    /// had sends refused (EAGAIN) and received chunks dropped, so answers were lost and the
    /// PEs' requests waited out retransmissions.
    pub socket_buffer_bytes: usize,
}

impl Default for KernelSctpConfig {
    fn default() -> Self {
        Self {
            local_addrs: vec!["0.0.0.0:0".parse().expect("constant address")],
            message_len_max: 65_536 + 1_024,
            streams_out: 16,
            streams_in_max: 16,
            peer_addresses_max: 16,
            listen_backlog: 1_024,
            reuse_port: false,
            socket_buffer_bytes: 4 << 20,
        }
    }
}

/// Counters of one kernel endpoint.
#[derive(Debug, Clone, Default)]
pub struct KernelSctpStats {
    /// Messages delivered as `Data`.
    pub messages_received: u64,
    /// Messages accepted by `sendmsg`.
    pub messages_sent: u64,
    /// Messages dropped because they were larger than `message_len_max`.
    pub messages_too_long: u64,
    /// Notifications that failed to parse or that we do not map.
    pub notifications_ignored: u64,
}

/// A kernel one-to-many SCTP socket behind [`SctpTransport`].
pub struct KernelSctp {
    fd: OwnedFd,
    local: SocketAddr,
    cfg: KernelSctpConfig,
    /// [`RECV_BATCH`] receive slots of `message_len_max` bytes each, one per message of a
    /// `recvmmsg` (untouched slots cost no resident memory).
    recv_buffer: Vec<u8>,
    /// Room for the cmsgs we enable (SCTP_RCVINFO) per slot, 8-byte aligned as cmsghdr needs.
    control: [[u64; CONTROL_WORDS]; RECV_BATCH],
    /// What the last `recvmmsg` put in each slot.
    received: [Received; RECV_BATCH],
    peer_buffer: Vec<u8>,
    /// True while skipping the rest of a message larger than the receive buffer.
    discarding: bool,
    stats: KernelSctpStats,
}

/// Control buffer: SCTP_RCVINFO, plus room for one more cmsg a kernel might add.
const CONTROL_WORDS: usize = 16;
const _: () = assert!(wire::cmsg_space(wire::RCVINFO_LEN) * 2 <= CONTROL_WORDS * 8);

impl KernelSctp {
    /// Opens and configures the socket. On a kernel without SCTP this fails with
    /// `ErrorKind::Unsupported` and a message saying so (never a panic).
    pub fn open(cfg: KernelSctpConfig) -> io::Result<Self> {
        let first = *cfg.local_addrs.first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "kernel SCTP: no local address")
        })?;
        let fd =
            sctp_socket(first, libc::SOCK_SEQPACKET, "use the UDP-encapsulated userspace backend")?;
        configure(&fd, &cfg)?;
        set_buffers(&fd, cfg.socket_buffer_bytes)?;
        if cfg.reuse_port {
            set_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, &1i32.to_ne_bytes())?;
        }
        bind_all(&fd, &cfg.local_addrs)?;
        let local = local_addr(&fd)?;
        Ok(Self {
            fd,
            local,
            recv_buffer: vec![0u8; cfg.message_len_max * RECV_BATCH],
            control: [[0; CONTROL_WORDS]; RECV_BATCH],
            received: [Received { len: 0, flags: 0, control_len: 0, from: first }; RECV_BATCH],
            peer_buffer: vec![
                0u8;
                8 + cfg.peer_addresses_max * mem::size_of::<libc::sockaddr_in6>()
            ],
            discarding: false,
            stats: KernelSctpStats::default(),
            cfg,
        })
    }

    /// The first bound address (with the kernel-chosen port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Counters since `open`.
    pub fn stats(&self) -> &KernelSctpStats {
        &self.stats
    }

    /// Sends `data` with the given send flags (`SCTP_EOF`, `SCTP_ABORT`, `SCTP_UNORDERED`).
    fn send_flags(&mut self, info: MessageInfo, data: &[u8]) -> Result<(), TransportError> {
        send_with_info(self.fd.as_raw_fd(), &info, data).map_err(|e| match e {
            TransportError::Io(e)
                if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EPIPE | libc::ENOENT)) =>
            {
                TransportError::UnknownAssoc
            }
            other => other,
        })?;
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Receives up to `max` (at most [`RECV_BATCH`]) messages or notifications with one
    /// `recvmmsg` into `received`; returns how many (0 when nothing is waiting). Fewer than
    /// `max` means the socket was read dry: the kernel stops the batch at the first empty read.
    fn recv_batch(&mut self, max: usize) -> io::Result<usize> {
        let max = max.min(RECV_BATCH);
        let slot_len = self.cfg.message_len_max;
        // SAFETY: all-zero values are valid for these C structs.
        let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; RECV_BATCH];
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { mem::zeroed() };
        let buffers = self.recv_buffer.chunks_exact_mut(slot_len);
        for (i, (buffer, control)) in buffers.zip(self.control.iter_mut()).take(max).enumerate() {
            iovs[i] = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: slot_len };
            let msg = &mut msgs[i].msg_hdr;
            msg.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_iov = &mut iovs[i];
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = CONTROL_WORDS * 8;
        }
        let n = loop {
            // SAFETY: the first `max` entries point at live buffers owned by self or this frame.
            let n = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    max as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(0),
                _ => return Err(e),
            }
        };
        for (i, msg) in msgs.iter().take(n).enumerate() {
            let hdr = &msg.msg_hdr;
            let from = sockaddr::parse(sockaddr::storage_bytes(&names[i], hdr.msg_namelen))
                .unwrap_or(self.local);
            self.received[i] = Received {
                len: msg.msg_len as usize,
                flags: hdr.msg_flags,
                control_len: hdr.msg_controllen.min(CONTROL_WORDS * 8),
                from,
            };
        }
        Ok(n)
    }
}

/// Messages (or notifications) read by one `recvmmsg`: one receive slot each.
const RECV_BATCH: usize = 8;

/// One received message: payload length, `msg_flags`, control length and source.
#[derive(Clone, Copy)]
struct Received {
    len: usize,
    flags: i32,
    control_len: usize,
    from: SocketAddr,
}

impl SctpTransport for KernelSctp {
    fn listen(&mut self, port: u16) -> Result<(), TransportError> {
        if port != self.local.port() {
            return Err(TransportError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "kernel SCTP listens on the port given in KernelSctpConfig::local_addrs",
            )));
        }
        // SAFETY: listen(2) on our socket.
        if unsafe { libc::listen(self.fd.as_raw_fd(), self.cfg.listen_backlog) } < 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    fn connect(&mut self, _now: Instant, remote: SocketAddr) -> Result<AssocId, TransportError> {
        // RFC 6458 §9.9 sctp_connectx, as lksctp implements it: getsockopt CONNECTX3 with
        // struct sctp_getaddrs_old { assoc_id i32, addr_num i32, addrs *sockaddr }, where
        // addr_num is, despite its name, the byte length of the packed addresses.
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let addr_len = sockaddr::write(&remote, &mut storage);
        #[repr(C)]
        struct GetAddrsOld {
            assoc_id: i32,
            addr_num: i32,
            addrs: *mut libc::sockaddr,
        }
        let mut param = GetAddrsOld {
            assoc_id: 0,
            addr_num: addr_len as i32,
            addrs: (&mut storage as *mut libc::sockaddr_storage).cast(),
        };
        let mut len = mem::size_of::<GetAddrsOld>() as libc::socklen_t;
        // SAFETY: param and storage live across the call; len is param's size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                wire::SOL_SCTP,
                wire::SCTP_SOCKOPT_CONNECTX3,
                (&mut param as *mut GetAddrsOld).cast(),
                &mut len,
            )
        };
        let e = io::Error::last_os_error();
        if rc == 0 || e.raw_os_error() == Some(libc::EINPROGRESS) {
            // The kernel wrote the new association id over the start of `param`.
            return Ok(AssocId(param.assoc_id as u32));
        }
        Err(TransportError::Io(e))
    }

    fn send(
        &mut self,
        _now: Instant,
        assoc: AssocId,
        stream: StreamId,
        ppid: Ppid,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.send_flags(MessageInfo { assoc, stream, ppid, flags: 0 }, data)
    }

    fn shutdown(&mut self, _now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        // RFC 6458 §5.3.4: SCTP_EOF starts a graceful shutdown.
        let info = MessageInfo { assoc, stream: StreamId(0), ppid: Ppid(0), flags: wire::SCTP_EOF };
        self.send_flags(info, &[])
    }

    fn abort(&mut self, _now: Instant, assoc: AssocId) -> Result<(), TransportError> {
        // RFC 6458 §5.3.4: SCTP_ABORT aborts the association.
        let info =
            MessageInfo { assoc, stream: StreamId(0), ppid: Ppid(0), flags: wire::SCTP_ABORT };
        self.send_flags(info, &[])
    }

    fn peer_addresses(
        &mut self,
        assoc: AssocId,
        out: &mut [SocketAddr],
    ) -> Result<usize, TransportError> {
        read_peer_addresses(self.fd.as_raw_fd(), assoc, &mut self.peer_buffer, out)
    }

    fn poll(
        &mut self,
        _now: Instant,
        budget: usize,
        mut on_event: impl FnMut(TransportEvent<'_>),
    ) -> io::Result<usize> {
        let mut delivered = 0;
        let slot_len = self.cfg.message_len_max;
        while delivered < budget {
            let want = (budget - delivered).min(RECV_BATCH);
            let got = self.recv_batch(want)?;
            for i in 0..got {
                let Received { len, flags, control_len, from } = self.received[i];
                let complete = flags & libc::MSG_EOR != 0;
                if self.discarding || !complete {
                    // A message larger than the buffer arrives in parts: drop it whole.
                    if !self.discarding {
                        self.stats.messages_too_long += 1;
                    }
                    self.discarding = !complete;
                    continue;
                }
                let data = &self.recv_buffer[i * slot_len..i * slot_len + len];
                if flags & MSG_NOTIFICATION != 0 {
                    let event = match wire::parse_notification(data) {
                        Ok(n) => notification_event(n, from),
                        Err(_) => None,
                    };
                    match event {
                        Some(event) => on_event(event),
                        None => {
                            self.stats.notifications_ignored += 1;
                            continue;
                        }
                    }
                } else {
                    // SAFETY: viewing a u64 control array as bytes, clamped to its size.
                    let control = unsafe {
                        std::slice::from_raw_parts(
                            self.control[i].as_ptr().cast::<u8>(),
                            control_len.min(CONTROL_WORDS * 8),
                        )
                    };
                    let Some(info) = wire::find_rcvinfo(control) else {
                        self.stats.notifications_ignored += 1;
                        continue;
                    };
                    self.stats.messages_received += 1;
                    on_event(TransportEvent::Data {
                        assoc: info.assoc,
                        stream: info.stream,
                        ppid: info.ppid,
                        data,
                    });
                }
                delivered += 1;
            }
            if got < want {
                // Read dry (or nothing at all): no second, empty read to find that out.
                break;
            }
        }
        Ok(delivered)
    }

    fn wait(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        wait_readable(&[self.fd.as_raw_fd()], now, until, None).map(|_| ())
    }

    fn next_deadline(&self) -> Option<Instant> {
        // The kernel runs SCTP's timers itself.
        None
    }

    fn input_dropped(&self) -> u64 {
        self.stats.messages_too_long
    }
}

/// `SCTP_GET_PEER_ADDRS` of `assoc` on `fd` (struct sctp_getaddrs { assoc_id i32, addr_num
/// u32, addrs[] }, RFC 6458 §9.3) through `buffer`: writes up to `out.len()` addresses and
/// returns how many there are.
fn read_peer_addresses(
    fd: std::os::fd::RawFd,
    assoc: AssocId,
    buffer: &mut [u8],
    out: &mut [SocketAddr],
) -> Result<usize, TransportError> {
    buffer.fill(0);
    buffer[0..4].copy_from_slice(&assoc.0.to_ne_bytes());
    let mut len = buffer.len() as libc::socklen_t;
    // SAFETY: buffer is valid for len bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            wire::SOL_SCTP,
            wire::SCTP_GET_PEER_ADDRS,
            buffer.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => TransportError::UnknownAssoc,
            _ => TransportError::Io(e),
        });
    }
    let count = u32::from_ne_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]) as usize;
    let mut rest = &buffer[8..(len as usize).min(buffer.len())];
    let mut written = 0;
    while written < out.len() {
        let Some(addr) = sockaddr::parse(rest) else {
            break;
        };
        out[written] = addr;
        written += 1;
        let step = if addr.is_ipv4() {
            mem::size_of::<libc::sockaddr_in>()
        } else {
            mem::size_of::<libc::sockaddr_in6>()
        };
        rest = rest.get(step..).unwrap_or(&[]);
    }
    Ok(count.max(written))
}

/// Blocks until one of `fds` is readable or `until` passes (never, if `None`); a signal ends
/// the wait early, as readiness would. Returns which were readable, bit `i` for `fds[i]` (all
/// bits after a signal, since nothing is known then).
///
/// With a `timer`, the deadline is the timer's (set only when it moves earlier, see
/// [`WakeTimer`]) and the wait itself has none; the timer's fd is watched after `fds`, and read
/// when it fired.
pub(crate) fn wait_readable(
    fds: &[std::os::fd::RawFd],
    now: Instant,
    until: Option<Instant>,
    mut timer: Option<&mut WakeTimer>,
) -> io::Result<u32> {
    // On the stack: this runs every loop turn, and allocates nothing.
    let mut pollfds =
        [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; ports::PORTS_MAX + 2];
    assert!(fds.len() < pollfds.len(), "at most PORTS_MAX sockets and a doorbell");
    for (slot, &fd) in pollfds.iter_mut().zip(fds) {
        slot.fd = fd;
    }
    let mut watched = fds.len();
    let timeout_ms = match timer.as_deref_mut() {
        Some(timer) => match timer.arm(now, until)? {
            Timeout::Now => 0,
            Timeout::Fd => {
                pollfds[watched].fd = timer.fd();
                watched += 1;
                -1
            }
        },
        None => match until {
            None => -1,
            // Rounded up: a sub-millisecond wait must sleep, not spin on poll(0) until it passes.
            Some(t) => {
                let d = t.saturating_duration_since(now);
                d.as_micros().div_ceil(1_000).min(i32::MAX as u128) as i32
            }
        },
    };
    // SAFETY: the first `watched` entries of `pollfds` are valid pollfds.
    if unsafe { libc::poll(pollfds.as_mut_ptr(), watched as libc::nfds_t, timeout_ms) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
        return Ok(u32::MAX);
    }
    if let Some(timer) = timer {
        if watched > fds.len() && pollfds[fds.len()].revents != 0 {
            timer.expired();
        }
    }
    // Errors and hang-ups count as readable: the read reports them.
    let mut ready = 0;
    for (i, slot) in pollfds.iter().take(fds.len()).enumerate() {
        if slot.revents != 0 {
            ready |= 1 << i;
        }
    }
    Ok(ready)
}

/// `MSG_NOTIFICATION` (linux/socket.h: 0x8000).
const MSG_NOTIFICATION: i32 = 0x8000;

/// Maps a notification to the event the protocol code sees, or `None` if it has none.
fn notification_event(n: Notification<'_>, from: SocketAddr) -> Option<TransportEvent<'_>> {
    match n {
        Notification::AssocChange { assoc, state, .. } => match state {
            AssocState::CommUp | AssocState::Restart => {
                Some(TransportEvent::Up { assoc, peer: from })
            }
            AssocState::CommLost | AssocState::CantStart => Some(TransportEvent::Lost { assoc }),
            AssocState::ShutdownComplete => Some(TransportEvent::Closed { assoc }),
            AssocState::Unknown(_) => None,
        },
        Notification::SendFailed { info, data, .. } => Some(TransportEvent::SendFailed {
            assoc: info.assoc,
            stream: info.stream,
            ppid: info.ppid,
            data,
        }),
        // The peer started a shutdown; `Closed` follows with SHUTDOWN_COMP.
        Notification::Shutdown { .. } | Notification::Unknown { .. } => None,
    }
}

/// A fresh non-blocking SCTP socket of `addr`'s family and `kind` (`SOCK_SEQPACKET`:
/// one-to-many, `SOCK_STREAM`: one-to-one). On a kernel without SCTP the error says so, and
/// what to use instead (`instead`).
fn sctp_socket(addr: SocketAddr, kind: i32, instead: &str) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = unsafe {
        libc::socket(family, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, libc::IPPROTO_SCTP)
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        if is_no_sctp(&e) {
            let style = if kind == libc::SOCK_STREAM { "SOCK_STREAM" } else { "SOCK_SEQPACKET" };
            let msg = format!("kernel has no SCTP (socket({style}, IPPROTO_SCTP): {e}); {instead}");
            return Err(io::Error::new(io::ErrorKind::Unsupported, msg));
        }
        return Err(e);
    }
    // SAFETY: `raw` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The options every socket of ours has: `SCTP_NODELAY`, `SCTP_RECVRCVINFO`, the association
/// change, shutdown and send-failed notifications, and `cfg`'s stream counts (`SCTP_INITMSG`).
fn configure(fd: &OwnedFd, cfg: &KernelSctpConfig) -> io::Result<()> {
    set_opt(fd, wire::SOL_SCTP, wire::SCTP_NODELAY, &1i32.to_ne_bytes())?;
    set_opt(fd, wire::SOL_SCTP, wire::SCTP_RECVRCVINFO, &1i32.to_ne_bytes())?;
    for kind in [wire::SCTP_ASSOC_CHANGE, wire::SCTP_SHUTDOWN_EVENT, wire::SCTP_SEND_FAILED_EVENT] {
        set_opt(fd, wire::SOL_SCTP, wire::SCTP_EVENT, &wire::sctp_event(kind, true))?;
    }
    let mut initmsg = [0u8; 8];
    initmsg[0..2].copy_from_slice(&cfg.streams_out.to_ne_bytes());
    initmsg[2..4].copy_from_slice(&cfg.streams_in_max.to_ne_bytes());
    set_opt(fd, wire::SOL_SCTP, wire::SCTP_INITMSG, &initmsg)
}

/// Both socket buffers at `bytes`: forced where the process may (CAP_NET_ADMIN), else as
/// far as `wmem_max` / `rmem_max` let them grow.
fn set_buffers(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    let value = i32::try_from(bytes).unwrap_or(i32::MAX).to_ne_bytes();
    for (forced, plain) in
        [(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF), (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF)]
    {
        if set_opt(fd, libc::SOL_SOCKET, forced, &value).is_err() {
            set_opt(fd, libc::SOL_SOCKET, plain, &value)?;
        }
    }
    Ok(())
}

/// One `sendmsg` of `data` with an `SCTP_SNDINFO` cmsg. `EAGAIN` is `Full`, `EMSGSIZE`
/// `TooLong`; other errors are the caller's to map.
fn send_with_info(
    fd: std::os::fd::RawFd,
    info: &MessageInfo,
    data: &[u8],
) -> Result<(), TransportError> {
    let mut control = [0u64; 4];
    // SAFETY: viewing a u64 array as bytes.
    let control_bytes =
        unsafe { std::slice::from_raw_parts_mut(control.as_mut_ptr().cast::<u8>(), 32) };
    let control_len = wire::write_sndinfo_cmsg(control_bytes, info);
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    // SAFETY: all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control_len;
    loop {
        // SAFETY: msg points at live iov, data and control.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => TransportError::Full,
            Some(libc::EMSGSIZE) => TransportError::TooLong,
            _ => TransportError::Io(e),
        });
    }
}

/// The errors `socket(2)` gives when the kernel has no SCTP module.
fn is_no_sctp(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT) | Some(libc::ESOCKTNOSUPPORT) | Some(libc::EAFNOSUPPORT)
    )
}

fn set_opt(fd: &OwnedFd, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: value is valid for its length.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `bind` the first address, `sctp_bindx(SCTP_BINDX_ADD_ADDR)` the rest (RFC 6458 §9.1).
fn bind_all(fd: &OwnedFd, addrs: &[SocketAddr]) -> io::Result<()> {
    let first = addrs[0];
    // SAFETY: all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = sockaddr::write(&first, &mut storage);
    // SAFETY: storage holds a valid sockaddr of len bytes.
    if unsafe {
        libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len)
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let port = local_addr(fd)?.port();
    for addr in &addrs[1..] {
        let mut addr = *addr;
        addr.set_port(port);
        let len = sockaddr::write(&addr, &mut storage);
        set_opt(
            fd,
            wire::SOL_SCTP,
            wire::SCTP_SOCKOPT_BINDX_ADD,
            sockaddr::storage_bytes(&storage, len),
        )?;
    }
    Ok(())
}

fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero sockaddr_storage is valid; getsockname writes at most len bytes.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    sockaddr::parse(sockaddr::storage_bytes(&storage, len))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "getsockname: unknown family"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: on a host without kernel SCTP, open() says so clearly instead of panicking; on a
    // host with it, open() succeeds. Method: open on loopback and check either outcome.
    #[test]
    fn kernel_sctp_open_reports_missing_sctp() {
        let cfg = KernelSctpConfig {
            local_addrs: vec!["127.0.0.1:0".parse().unwrap()],
            ..Default::default()
        };
        match KernelSctp::open(cfg) {
            Ok(sctp) => assert_ne!(sctp.local_addr().port(), 0),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
                assert!(e.to_string().contains("kernel has no SCTP"), "{e}");
            }
        }
    }

    // Goal: notifications map to the right events. Method: one parsed notification per kind.
    #[test]
    fn kernel_sctp_notification_events() {
        let peer: SocketAddr = "192.0.2.1:3863".parse().unwrap();
        let up =
            Notification::AssocChange { assoc: AssocId(1), state: AssocState::CommUp, error: 0 };
        let event = notification_event(up, peer);
        let up_at = |p: &SocketAddr| *p == peer;
        assert!(
            matches!(event, Some(TransportEvent::Up { assoc: AssocId(1), peer: p }) if up_at(&p))
        );
        let lost =
            Notification::AssocChange { assoc: AssocId(1), state: AssocState::CommLost, error: 0 };
        assert!(matches!(notification_event(lost, peer), Some(TransportEvent::Lost { .. })));
        let done = Notification::AssocChange {
            assoc: AssocId(1),
            state: AssocState::ShutdownComplete,
            error: 0,
        };
        assert!(matches!(notification_event(done, peer), Some(TransportEvent::Closed { .. })));
        assert!(notification_event(Notification::Shutdown { assoc: AssocId(1) }, peer).is_none());
    }
}
