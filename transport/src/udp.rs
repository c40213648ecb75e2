//! [`UdpRing`]: one UDP socket driven by one io_uring, owned by one core.
//!
//! ```text
//!  send_to / send_buffer ──► send pool (free → queued) ──submit──► SendMsg SQEs ──► kernel
//!  recv_batch ◄── ready queue ◄── reap CQEs ◄── multishot RecvMsgMulti into a buffer ring
//!                     │                          (or a batch of plain RecvMsg SQEs)
//!                     └── recycle buffer ──► buffer ring tail (or re-posted RecvMsg)
//! ```
//!
//! Ownership: a buffer handed to the kernel belongs to its operation until the CQE arrives.
//! Send slots go free → queued → in flight → free (on the CQE); receive buffers go kernel →
//! ready → kernel (recycled after the callback). `Drop` cancels the receives and waits, bounded,
//! for every CQE; if some never arrive, the buffers are leaked rather than freed under the kernel.
//!
//! SQE `user_data` is a slab index: `0..send_buffers_count` are send slots; the range from
//! [`USER_DATA_INTERNAL_MIN`] up is reserved for receive and cancel operations.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use crate::datagram::{
    DatagramEndpoint, DatagramStats, Doorbell, RecvMode, SendError, UdpRingConfig,
};
use crate::sockaddr;
use crate::wake_timer::{Timeout, WakeTimer};

/// First `user_data` value reserved for internal operations; send slots sit below it.
pub const USER_DATA_INTERNAL_MIN: u64 = u64::MAX - 0x1_0000 - 0xff;
/// The multishot receive.
const USER_DATA_RECV_MULTI: u64 = u64::MAX;
/// Cancel operations issued at shutdown (their CQEs are ignored).
const USER_DATA_CANCEL: u64 = u64::MAX - 1;
/// The doorbell's eventfd read.
const USER_DATA_DOORBELL: u64 = u64::MAX - 2;
/// The read kept posted on the wait's timer (`submit_and_wait_until`).
const USER_DATA_TIMER: u64 = u64::MAX - 3;
/// Plain receive `i` is `USER_DATA_RECV_PLAIN + i`, for `i < 2^16`.
const USER_DATA_RECV_PLAIN: u64 = USER_DATA_INTERNAL_MIN;

const _: () = assert!(USER_DATA_RECV_PLAIN + 0x1_0000 < USER_DATA_TIMER);
const _: () = assert!(USER_DATA_TIMER < USER_DATA_DOORBELL);
const _: () = assert!(USER_DATA_DOORBELL < USER_DATA_CANCEL);
const _: () = assert!((u16::MAX as u64) < USER_DATA_INTERNAL_MIN);

/// Buffer group id of the receive buffer ring (one ring per `IoUring`, so any constant works).
const BUFFER_GROUP: u16 = 0;
/// Header the kernel writes before name and payload in a multishot recvmsg buffer.
/// `struct io_uring_recvmsg_out { u32 namelen, controllen, payloadlen, flags }` (linux/io_uring.h).
const RECVMSG_OUT_LEN: usize = 16;
/// How long `Drop` waits for outstanding CQEs before leaking their buffers.
const DROP_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on `EBUSY`/`EAGAIN` retries inside one submit.
const SUBMIT_RETRIES_MAX: u32 = 64;
/// A segmentation-offload send is `GSO_USER_DATA + batch index`; single sends are their slot
/// index (below 2^16), internal operations sit above `USER_DATA_INTERNAL_MIN`.
const GSO_USER_DATA: u64 = 1 << 32;
/// Segmentation-offload sends in flight at once (each holds its own iovec array).
const GSO_BATCHES: usize = 64;
/// Most datagrams in one segmentation-offload send: the kernel's `UDP_MAX_SEGMENTS`.
const GSO_SEGMENTS_MAX: usize = crate::datagram::GSO_SEGMENTS_MAX as usize;
/// Largest UDP payload of one IPv4 datagram; a segmentation-offload send is one datagram to
/// the kernel until it is cut, so its whole payload must fit too.
const GSO_BYTES_MAX: usize = 65_507;

const _: () = assert!(GSO_USER_DATA + GSO_BATCHES as u64 <= USER_DATA_INTERNAL_MIN);
const _: () = assert!((u16::MAX as u64) < GSO_USER_DATA);

/// A per-core io_uring UDP endpoint. See the module docs for the life of each buffer.
pub struct UdpRing {
    // Field order is drop order: the ring (and its registered buffer ring) goes before the memory
    // its operations point into.
    ring: IoUring,
    state: State,
}

/// Everything except the ring, so that CQE handling can borrow both halves.
struct State {
    socket: UdpSocket,
    local: SocketAddr,
    cfg: UdpRingConfig,
    recv: Recv,
    send: SendPool,
    /// Received datagrams not yet delivered; each holds a distinct receive buffer, so its length
    /// never exceeds `recv_buffers_count` (allocated once).
    ready: VecDeque<Ready>,
    stats: DatagramStats,
    /// Whether any memory may still be referenced by the kernel after a failed drain.
    leak_on_drop: bool,
    /// The eventfd another thread rings to end our wait, once asked for.
    doorbell: Option<DoorbellState>,
    /// The deadline of `submit_and_wait_until`, once one was asked for.
    timer: Option<TimerState>,
}

/// A [`WakeTimer`] with an 8-byte read posted in the ring while it is set: the read completes
/// when the timer fires, which ends the wait as a receive would. A wait then needs no timeout
/// of its own, whose high-resolution timer the kernel would start and stop on every call.
struct TimerState {
    timer: WakeTimer,
    /// Where the posted read lands; leaked on purpose, as the doorbell's sink.
    sink: &'static mut u64,
    posted: bool,
}

/// An eventfd with an 8-byte read kept posted in the ring.
struct DoorbellState {
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
    /// Where the posted read lands. Leaked on purpose (8 bytes per ring, once): the kernel may
    /// write it until the read's CQE, which a drop that times out never sees.
    sink: &'static mut u64,
    armed: bool,
}

struct Ready {
    buffer_id: u16,
    from: SocketAddr,
    offset: u32,
    len: u32,
}

enum Recv {
    Multi(MultiRecv),
    Plain(PlainRecv),
}

struct MultiRecv {
    /// `count` buffers of `stride` bytes: recvmsg_out header, name, then payload.
    buffers: Vec<u8>,
    stride: usize,
    /// Page-aligned, mmap'd ring of `count` `io_uring_buf` entries shared with the kernel.
    ring_entries: *mut BufRingEntry,
    ring_bytes: usize,
    mask: u16,
    tail: u16,
    /// Template the kernel reads for name and control lengths (must stay put while armed).
    msghdr: Box<libc::msghdr>,
    armed: bool,
}

struct PlainRecv {
    buffers: Vec<u8>,
    stride: usize,
    slots: Box<[PlainSlot]>,
    /// Slots to post at the next submit (fresh, or recycled after delivery).
    to_post: Vec<u16>,
    in_flight: u32,
}

struct PlainSlot {
    name: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
}

struct SendPool {
    buffers: Vec<u8>,
    stride: usize,
    slots: Box<[SendSlot]>,
    free: Vec<u16>,
    /// Slots written by the caller, to be pushed as SQEs at the next submit, in order.
    queued: Vec<u16>,
    /// Send operations in flight (a segmentation-offload send counts once).
    in_flight: u32,
    /// Segmentation-offload sends: boxed, so the msghdr, iovecs and control message the kernel
    /// reads stay put until the completion.
    gso: Box<[GsoBatch]>,
    gso_free: Vec<u16>,
    /// Most datagrams per segmentation-offload send; below 2 it is off.
    gso_segments_max: usize,
    /// Fewest datagrams worth one segmentation-offload send; shorter runs go one by one.
    gso_segments_min: usize,
}

struct SendSlot {
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
}

/// One send of several same-sized datagrams to one peer (`UDP_SEGMENT`): the member slots'
/// buffers as one iovec array, the segment size as a control message.
struct GsoBatch {
    msg: libc::msghdr,
    iovs: [libc::iovec; GSO_SEGMENTS_MAX],
    /// `cmsghdr` plus a `u16`, 8-byte aligned.
    control: [u64; 4],
    /// The slots whose buffers this send carries, freed on its completion.
    members: Vec<u16>,
}

/// A send buffer lent to the caller for writing a datagram in place (zero copy).
/// Dropping it without [`SendBuffer::commit`] returns it to the pool.
pub struct SendBuffer<'a> {
    ring: &'a mut UdpRing,
    slot: u16,
}

/// The ring with the cheapest setup this kernel accepts. SINGLE_ISSUER (6.0: one thread per
/// ring, our design) lets the kernel skip locking. COOP_TASKRUN (5.19) stops the kernel from
/// interrupting a running worker to post a receive completion: our loop enters the kernel
/// every turn anyway, and completions are posted then. Older kernels reject a flag with
/// EINVAL, so each is dropped in turn.
fn build_ring(entries: u32) -> io::Result<IoUring> {
    let attempts: [fn(&mut io_uring::Builder); 3] = [
        |b| {
            b.setup_single_issuer().setup_coop_taskrun();
        },
        |b| {
            b.setup_single_issuer();
        },
        |_| {},
    ];
    let mut last = None;
    for configure in attempts {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(entries * 2);
        configure(&mut builder);
        match builder.build(entries) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            other => return other,
        }
    }
    Err(last.expect("at least one attempt"))
}

impl UdpRing {
    /// Binds a UDP socket to `addr` (with `SO_REUSEPORT` if configured), sets up the ring and
    /// every buffer, and arms the receive path. All allocation happens here.
    pub fn bind(addr: SocketAddr, cfg: UdpRingConfig) -> io::Result<Self> {
        cfg.assert_valid();
        let socket = bind_socket(addr, &cfg)?;
        let local = socket.local_addr()?;
        let mut send = SendPool::new(&cfg);
        if send.gso_segments_max > 1 && !supports_gso(&socket) {
            send.gso_segments_max = 0;
        }
        let ring = build_ring(cfg.ring_entries)?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring lacks EXT_ARG"));
        }
        let recv = match cfg.recv_mode {
            RecvMode::Plain => Recv::Plain(PlainRecv::new(&cfg)),
            RecvMode::Multishot => Recv::Multi(MultiRecv::new(&ring, &cfg)?),
            RecvMode::Auto => match MultiRecv::new(&ring, &cfg) {
                Ok(multi) => Recv::Multi(multi),
                Err(_) => Recv::Plain(PlainRecv::new(&cfg)),
            },
        };
        let state = State {
            socket,
            local,
            send,
            ready: VecDeque::with_capacity(usize::from(cfg.recv_buffers_count)),
            recv,
            cfg,
            stats: DatagramStats::default(),
            leak_on_drop: false,
            doorbell: None,
            timer: None,
        };
        let mut this = Self { ring, state };
        this.submit_and_wait(Some(Duration::ZERO))?;
        Ok(this)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.local
    }

    /// Whether receives use the multishot buffer-ring path (false: plain `RecvMsg` batch).
    pub fn is_multishot(&self) -> bool {
        matches!(self.state.recv, Recv::Multi(_))
    }

    /// Counters since `bind`.
    pub fn stats(&self) -> &DatagramStats {
        &self.state.stats
    }

    /// Steers packets of this port's `SO_REUSEPORT` group by SCTP verification tag
    /// (`tag % cores` = index of the socket in bind order) instead of by 4-tuple hash. Call once,
    /// on any socket of the group. See [`crate::reuseport`]'s docs for what the SCTP stack on
    /// each core must then guarantee.
    pub fn steer_by_verification_tag(&self, cores: u32) -> io::Result<()> {
        crate::reuseport::steer_by_verification_tag(self.state.socket.as_raw_fd(), cores)
    }

    /// Send buffers neither queued nor in flight.
    pub fn send_buffers_free(&self) -> usize {
        self.state.send.free.len()
    }

    /// Copies `data` into a free send buffer; it goes out at the next submit.
    pub fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        if data.len() > self.state.send.stride {
            return Err(SendError::TooLong);
        }
        let mut buffer = self.send_buffer().ok_or(SendError::QueueFull)?;
        buffer.as_mut_slice()[..data.len()].copy_from_slice(data);
        buffer.commit(to, data.len());
        Ok(())
    }

    /// The doorbell that ends this ring's `submit_and_wait` from another thread (created on
    /// first use; later calls share it).
    pub fn doorbell(&mut self) -> io::Result<Doorbell> {
        if let Some(d) = &self.state.doorbell {
            return Ok(Doorbell::new(d.fd.clone()));
        }
        // SAFETY: eventfd takes no pointers; a negative result is an error we report.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = std::sync::Arc::new(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
        let sink = Box::leak(Box::new(0u64));
        self.state.doorbell = Some(DoorbellState { fd: fd.clone(), sink, armed: false });
        Ok(Doorbell::new(fd))
    }

    /// Lends a free send buffer (`send_buffer_size` bytes) for writing a datagram in place.
    pub fn send_buffer(&mut self) -> Option<SendBuffer<'_>> {
        let slot = self.state.send.free.pop()?;
        Some(SendBuffer { ring: self, slot })
    }

    /// One system call: pushes queued sends and receive re-posts as SQEs, submits, and waits
    /// for at least one CQE or `wait` (`None`: forever, `Some(ZERO)`: no wait). Then reaps.
    pub fn submit_and_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        self.push_pending()?;
        let (ring, state) = (&mut self.ring, &mut self.state);
        let ready_now = !state.ready.is_empty() || !ring.completion().is_empty();
        let wait = if ready_now { Some(Duration::ZERO) } else { wait };
        let mut retries = 0;
        loop {
            let result = match wait {
                Some(d) if d.is_zero() => ring.submit(),
                Some(d) => {
                    let ts = Timespec::from(d);
                    let args = SubmitArgs::new().timespec(&ts);
                    ring.submitter().submit_with_args(1, &args)
                }
                None => ring.submit_and_wait(1),
            };
            match result {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => break,
                Err(e) if is_busy(&e) && retries < SUBMIT_RETRIES_MAX => {
                    retries += 1;
                    state.stats.submit_busy_retries += 1;
                    state.reap(ring);
                }
                Err(e) => return Err(e),
            }
        }
        self.state.reap(&mut self.ring);
        Ok(())
    }

    /// As [`Self::submit_and_wait`], waiting until `until` (`None`: no limit) on a timer kept
    /// set across calls (see `TimerState`); a plain timeout if the timer cannot be made.
    pub fn submit_and_wait_until(
        &mut self,
        now: Instant,
        until: Option<Instant>,
    ) -> io::Result<()> {
        let Some(deadline) = until else { return self.submit_and_wait(None) };
        if deadline <= now {
            return self.submit_and_wait(Some(Duration::ZERO));
        }
        if self.state.timer.is_none() {
            // Blocking: io_uring waits on a blocking timerfd's read by polling it.
            match WakeTimer::new(false) {
                Ok(timer) => {
                    let sink = Box::leak(Box::new(0u64));
                    self.state.timer = Some(TimerState { timer, sink, posted: false });
                }
                Err(_) => return self.submit_and_wait(Some(deadline - now)),
            }
        }
        let timer = self.state.timer.as_mut().expect("made above");
        match timer.timer.arm(now, Some(deadline))? {
            Timeout::Now => self.submit_and_wait(Some(Duration::ZERO)),
            // `push_pending` posts the read if it is not in the ring yet.
            Timeout::Fd => self.submit_and_wait(None),
        }
    }

    /// Delivers up to `min(budget, batch_budget)` received datagrams to `f(from, payload)`, in
    /// arrival order, recycling each buffer after its callback. Returns how many.
    pub fn recv_batch(&mut self, budget: usize, mut f: impl FnMut(SocketAddr, &[u8])) -> usize {
        let budget = budget.min(self.state.cfg.batch_budget);
        // Completions may have arrived since the last submit: reaping costs no system call.
        if self.state.ready.len() < budget && !self.ring.completion().is_empty() {
            self.state.reap(&mut self.ring);
        }
        let mut delivered = 0;
        while delivered < budget {
            let Some(ready) = self.state.ready.pop_front() else {
                break;
            };
            let payload = self.state.recv.payload(&ready);
            f(ready.from, payload);
            self.state.recv.recycle(ready.buffer_id);
            delivered += 1;
        }
        self.state.stats.datagrams_received += delivered as u64;
        delivered
    }

    /// Pushes queued sends and receive (re)arms as SQEs; a full SQ is submitted first.
    fn push_pending(&mut self) -> io::Result<()> {
        let fd = Fd(self.state.socket.as_raw_fd());
        let mut i = 0;
        while i < self.state.send.queued.len() {
            let run = self.state.send.gso_run(i);
            let batch = if run > 1 { self.state.send.gso_free.pop() } else { None };
            let (sqe, sent) = match batch {
                Some(batch) => {
                    let msg = self.state.send.fill_gso(batch, i, run);
                    let user_data = GSO_USER_DATA + u64::from(batch);
                    (opcode::SendMsg::new(fd, msg).build().user_data(user_data), run)
                }
                None => {
                    let slot = self.state.send.queued[i];
                    let msg = &self.state.send.slots[usize::from(slot)].msg as *const libc::msghdr;
                    (opcode::SendMsg::new(fd, msg).build().user_data(u64::from(slot)), 1)
                }
            };
            if let Err(e) = self.push(&sqe) {
                if let Some(batch) = batch {
                    self.state.send.gso[usize::from(batch)].members.clear();
                    self.state.send.gso_free.push(batch);
                }
                // Keep the unpushed tail queued, in order, for the next submit.
                self.state.send.queued.drain(..i);
                return Err(e);
            }
            self.state.send.in_flight += 1;
            i += sent;
        }
        self.state.send.queued.clear();
        if let Some(timer) = self.state.timer.as_mut().filter(|t| !t.posted && t.timer.is_set()) {
            let sqe = read_into(timer.timer.fd(), &mut *timer.sink, USER_DATA_TIMER);
            self.push(&sqe)?;
            self.state.timer.as_mut().expect("looked at above").posted = true;
        }
        if let Some(bell) = self.state.doorbell.as_mut().filter(|b| !b.armed) {
            let sqe = read_into(bell.fd.as_raw_fd(), &mut *bell.sink, USER_DATA_DOORBELL);
            self.push(&sqe)?;
            self.state.doorbell.as_mut().expect("looked at above").armed = true;
        }
        match &mut self.state.recv {
            Recv::Multi(multi) if !multi.armed => {
                let msg = &*multi.msghdr as *const libc::msghdr;
                let sqe = opcode::RecvMsgMulti::new(fd, msg, BUFFER_GROUP)
                    .build()
                    .user_data(USER_DATA_RECV_MULTI);
                multi.armed = true;
                self.state.stats.recv_rearms += 1;
                if let Err(e) = self.push(&sqe) {
                    if let Recv::Multi(multi) = &mut self.state.recv {
                        multi.armed = false;
                    }
                    return Err(e);
                }
            }
            Recv::Multi(_) => {}
            Recv::Plain(_) => self.push_plain_recvs()?,
        }
        Ok(())
    }

    fn push_plain_recvs(&mut self) -> io::Result<()> {
        let fd = Fd(self.state.socket.as_raw_fd());
        while let Recv::Plain(plain) = &mut self.state.recv {
            let Some(slot) = plain.to_post.pop() else {
                break;
            };
            let entry = &mut plain.slots[usize::from(slot)];
            entry.msg.msg_namelen = sockaddr::NAME_LEN as libc::socklen_t;
            entry.msg.msg_flags = 0;
            let sqe = opcode::RecvMsg::new(fd, &mut entry.msg)
                .build()
                .user_data(USER_DATA_RECV_PLAIN + u64::from(slot));
            plain.in_flight += 1;
            if let Err(e) = self.push(&sqe) {
                if let Recv::Plain(plain) = &mut self.state.recv {
                    plain.in_flight -= 1;
                    plain.to_post.push(slot);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Pushes one SQE; when the SQ is full, submits what is there (reaping on EBUSY) and retries.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        let mut retries = 0;
        loop {
            // SAFETY: every pointer in `sqe` refers to memory owned by `self.state` that stays
            // allocated and unmoved until the operation's CQE (see the module docs).
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.state.stats.sq_full_submits += 1;
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if is_busy(&e) && retries < SUBMIT_RETRIES_MAX => {
                    retries += 1;
                    self.state.stats.submit_busy_retries += 1;
                    self.state.reap(&mut self.ring);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for UdpRing {
    fn drop(&mut self) {
        // A posted doorbell read completes once the eventfd is non-zero.
        if let Some(bell) = &self.state.doorbell {
            Doorbell::new(bell.fd.clone()).ring();
        }
        // Cancel the receives, then wait (bounded) until no operation holds our memory.
        let cancel = match &self.state.recv {
            Recv::Multi(m) if m.armed => Some(USER_DATA_RECV_MULTI),
            _ => None,
        };
        let plain = match &self.state.recv {
            Recv::Plain(p) => p.slots.len() as u64,
            Recv::Multi(_) => 0,
        };
        let targets_len = u64::from(cancel.is_some()) + plain;
        let target = |i: u64| match cancel {
            Some(user_data) => user_data,
            None => USER_DATA_RECV_PLAIN + i,
        };
        let mut next = 0;
        let deadline = Instant::now() + DROP_DRAIN_TIMEOUT;
        while self.state.in_flight() > 0 && Instant::now() < deadline {
            while next < targets_len {
                let sqe =
                    opcode::AsyncCancel::new(target(next)).build().user_data(USER_DATA_CANCEL);
                // SAFETY: a cancel SQE points at no memory.
                if unsafe { self.ring.submission().push(&sqe) }.is_err() {
                    break;
                }
                next += 1;
            }
            let ts = Timespec::from(Duration::from_millis(50));
            let _ = self.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts));
            self.state.reap(&mut self.ring);
        }
        if self.state.in_flight() > 0 {
            self.state.leak_on_drop = true;
        }
    }
}

/// An 8-byte read of `fd` into `sink`, kept posted: the doorbell's and the wait timer's. The
/// sink is leaked memory, so the kernel may write it until the CQE whatever becomes of the ring.
fn read_into(fd: std::os::fd::RawFd, sink: &mut u64, user_data: u64) -> squeue::Entry {
    let target: *mut u64 = sink;
    opcode::Read::new(Fd(fd), target.cast::<u8>(), 8).build().user_data(user_data)
}

impl State {
    /// Operations whose memory the kernel may still touch.
    fn in_flight(&self) -> u32 {
        let recv = match &self.recv {
            Recv::Multi(m) => u32::from(m.armed),
            Recv::Plain(p) => p.in_flight,
        };
        let bell = self.doorbell.as_ref().map_or(0, |b| u32::from(b.armed));
        self.send.in_flight + recv + bell
    }

    /// Drains every CQE: frees send slots, queues received datagrams, notes ended multishots.
    fn reap(&mut self, ring: &mut IoUring) {
        let mut cq = ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let user_data = cqe.user_data();
            if user_data < USER_DATA_INTERNAL_MIN {
                self.complete_send(user_data, cqe.result());
            } else if user_data == USER_DATA_RECV_MULTI {
                self.complete_multi(&cqe);
            } else if user_data == USER_DATA_CANCEL {
                // The cancelled operation reports on its own CQE.
            } else if user_data == USER_DATA_TIMER {
                // Fired (or failed, e.g. cancelled at teardown): set it again at the next wait
                // with a deadline.
                if let Some(timer) = self.timer.as_mut() {
                    timer.posted = false;
                    timer.timer.forget();
                }
            } else if user_data == USER_DATA_DOORBELL {
                // Rung (or failed): either way the wait it was posted for is over; re-post it
                // at the next submit.
                if let Some(bell) = self.doorbell.as_mut() {
                    bell.armed = false;
                }
            } else {
                self.complete_plain(user_data - USER_DATA_RECV_PLAIN, cqe.result());
            }
        }
    }

    fn complete_send(&mut self, user_data: u64, result: i32) {
        if user_data >= GSO_USER_DATA {
            return self.complete_gso((user_data - GSO_USER_DATA) as u16, result);
        }
        assert!(user_data < self.send.slots.len() as u64);
        assert!(self.send.in_flight > 0);
        self.send.in_flight -= 1;
        self.send.free.push(user_data as u16);
        if result >= 0 {
            self.stats.datagrams_sent += 1;
        } else {
            self.stats.send_errors += 1;
        }
    }

    fn complete_gso(&mut self, batch: u16, result: i32) {
        assert!(self.send.in_flight > 0);
        self.send.in_flight -= 1;
        let gso = &mut self.send.gso[usize::from(batch)];
        let carried = gso.members.len() as u64;
        self.send.free.append(&mut gso.members);
        self.send.gso_free.push(batch);
        self.stats.gso_sends += 1;
        self.stats.gso_datagrams += carried;
        if result >= 0 {
            self.stats.datagrams_sent += carried;
        } else {
            self.stats.send_errors += carried;
            // A segment too long for the path, or a kernel or device without the offload: the
            // datagrams are lost (SCTP retransmits them) and later sends go one by one.
            if [libc::EINVAL, libc::EIO, libc::EOPNOTSUPP, libc::EMSGSIZE].contains(&-result) {
                self.send.gso_segments_max = 0;
            }
        }
    }

    fn complete_multi(&mut self, cqe: &cqueue::Entry) {
        let Recv::Multi(multi) = &mut self.recv else {
            unreachable!("multishot CQE in plain mode")
        };
        if !cqueue::more(cqe.flags()) {
            multi.armed = false;
        }
        let Some(buffer_id) = cqueue::buffer_select(cqe.flags()) else {
            // No buffer: an error such as ENOBUFS (every buffer is ready or being read).
            self.stats.recv_errors += 1;
            return;
        };
        assert!(buffer_id <= multi.mask);
        if cqe.result() < 0 {
            self.stats.recv_errors += 1;
            multi.recycle(buffer_id);
            return;
        }
        let start = usize::from(buffer_id) * multi.stride;
        let len = (cqe.result() as usize).min(multi.stride);
        let buffer = &multi.buffers[start..start + len];
        let parsed = io_uring::types::RecvMsgOut::parse(buffer, &multi.msghdr);
        let from = parsed.as_ref().ok().and_then(|out| sockaddr::parse(out.name_data()));
        match (parsed, from) {
            (Ok(out), Some(from)) if !out.is_payload_truncated() => {
                let offset = RECVMSG_OUT_LEN + sockaddr::NAME_LEN;
                let len = out.payload_data().len() as u32;
                self.ready.push_back(Ready { buffer_id, from, offset: offset as u32, len });
            }
            _ => {
                self.stats.recv_truncated += 1;
                multi.recycle(buffer_id);
            }
        }
    }

    fn complete_plain(&mut self, slot: u64, result: i32) {
        let Recv::Plain(plain) = &mut self.recv else {
            unreachable!("plain CQE in multishot mode")
        };
        assert!(slot < plain.slots.len() as u64);
        assert!(plain.in_flight > 0);
        plain.in_flight -= 1;
        let buffer_id = slot as u16;
        let entry = &plain.slots[usize::from(buffer_id)];
        let from = sockaddr::parse(sockaddr::storage_bytes(&entry.name, entry.msg.msg_namelen));
        match from {
            Some(from) if result >= 0 && entry.msg.msg_flags & libc::MSG_TRUNC == 0 => {
                let len = result as u32;
                self.ready.push_back(Ready { buffer_id, from, offset: 0, len });
            }
            _ => {
                if result < 0 {
                    self.stats.recv_errors += 1;
                } else {
                    self.stats.recv_truncated += 1;
                }
                // A cancelled receive at shutdown is not re-posted: it would outlive the ring.
                if result != -libc::ECANCELED {
                    plain.to_post.push(buffer_id);
                }
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.leak_on_drop {
            // The kernel may still write into these: leaking is the only safe choice.
            mem::forget(mem::take(&mut self.send.buffers));
            mem::forget(mem::take(&mut self.send.slots));
            mem::forget(mem::take(&mut self.send.gso));
            match &mut self.recv {
                Recv::Multi(m) => {
                    mem::forget(mem::take(&mut m.buffers));
                    m.ring_entries = std::ptr::null_mut();
                }
                Recv::Plain(p) => {
                    mem::forget(mem::take(&mut p.buffers));
                    mem::forget(mem::take(&mut p.slots));
                }
            }
        }
    }
}

impl Recv {
    fn payload(&self, ready: &Ready) -> &[u8] {
        let (buffers, stride) = match self {
            Recv::Multi(m) => (&m.buffers, m.stride),
            Recv::Plain(p) => (&p.buffers, p.stride),
        };
        let start = usize::from(ready.buffer_id) * stride + ready.offset as usize;
        let end = start + ready.len as usize;
        assert!(end <= (usize::from(ready.buffer_id) + 1) * stride);
        &buffers[start..end]
    }

    fn recycle(&mut self, buffer_id: u16) {
        match self {
            Recv::Multi(m) => m.recycle(buffer_id),
            Recv::Plain(p) => p.to_post.push(buffer_id),
        }
    }
}

/// `len` zero bytes, every page of them touched now: the buffers are faulted in at `bind`
/// (static allocation) instead of page by page under load, where a first touch of a 64 KiB
/// buffer costs a page fault and zeroing inside the receive path.
fn resident_zeroed(len: usize) -> Vec<u8> {
    const PAGE: usize = 4096;
    let mut buffer = vec![0u8; len];
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `offset < len`, inside the allocation. Volatile, so that the store of a zero
        // into memory the allocator already zeroed is not optimised away.
        unsafe { std::ptr::write_volatile(buffer.as_mut_ptr().add(offset), 0) };
    }
    buffer
}

impl MultiRecv {
    fn new(ring: &IoUring, cfg: &UdpRingConfig) -> io::Result<Self> {
        let count = cfg.recv_buffers_count;
        let stride = RECVMSG_OUT_LEN + sockaddr::NAME_LEN + cfg.recv_buffer_size as usize;
        let ring_bytes = usize::from(count) * mem::size_of::<BufRingEntry>();
        // SAFETY: anonymous private mapping; checked for MAP_FAILED below.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: all-zero msghdr is valid.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { mem::zeroed() });
        msghdr.msg_namelen = sockaddr::NAME_LEN as libc::socklen_t;
        let mut this = Self {
            buffers: resident_zeroed(usize::from(count) * stride),
            stride,
            ring_entries: mapped.cast(),
            ring_bytes,
            mask: count - 1,
            tail: 0,
            msghdr,
            armed: false,
        };
        // SAFETY: the mapping is page-aligned, `count` entries long, and lives (in `this`) until
        // after the ring is dropped: `UdpRing` declares `ring` before `state`.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                this.ring_entries as u64,
                count,
                BUFFER_GROUP,
                0,
            )?;
        }
        for id in 0..count {
            this.recycle(id);
        }
        Ok(this)
    }

    /// Hands buffer `id` back to the kernel by appending it at the ring's tail.
    fn recycle(&mut self, id: u16) {
        assert!(id <= self.mask);
        let start = usize::from(id) * self.stride;
        // SAFETY: the index is masked into the mapping; the kernel reads entries only below the
        // tail we publish afterwards.
        unsafe {
            let entry = &mut *self.ring_entries.add(usize::from(self.tail & self.mask));
            entry.set_addr(self.buffers.as_mut_ptr().add(start) as u64);
            entry.set_len(self.stride as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field overlays entry 0's reserved field; the kernel reads it
        // concurrently, so publish with a release store.
        unsafe {
            let tail = BufRingEntry::tail(self.ring_entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        if !self.ring_entries.is_null() {
            // SAFETY: the mapping came from mmap with this length; the ring is already closed.
            unsafe { libc::munmap(self.ring_entries.cast(), self.ring_bytes) };
        }
    }
}

impl PlainRecv {
    fn new(cfg: &UdpRingConfig) -> Self {
        let count = usize::from(cfg.recv_buffers_count);
        let stride = cfg.recv_buffer_size as usize;
        let mut buffers = resident_zeroed(count * stride);
        let mut slots: Box<[PlainSlot]> = (0..count)
            // SAFETY: all-zero sockaddr_storage, iovec and msghdr are valid values.
            .map(|_| unsafe { mem::zeroed::<PlainSlot>() })
            .collect();
        for (i, slot) in slots.iter_mut().enumerate() {
            // The slots are boxed and never move again, so these self-pointers stay valid.
            slot.iov.iov_base = buffers[i * stride..].as_mut_ptr().cast();
            slot.iov.iov_len = stride;
            slot.msg.msg_name = (&mut slot.name as *mut libc::sockaddr_storage).cast();
            slot.msg.msg_iov = &mut slot.iov;
            slot.msg.msg_iovlen = 1;
        }
        let to_post = (0..count as u16).rev().collect();
        Self { buffers, stride, slots, to_post, in_flight: 0 }
    }
}

impl SendPool {
    fn new(cfg: &UdpRingConfig) -> Self {
        let count = usize::from(cfg.send_buffers_count);
        let stride = cfg.send_buffer_size as usize;
        let slots: Box<[SendSlot]> = (0..count)
            // SAFETY: all-zero sockaddr_storage, iovec and msghdr are valid values.
            .map(|_| unsafe { mem::zeroed::<SendSlot>() })
            .collect();
        // No batch memory (64 iovec arrays) where the offload is off: no run ever takes one.
        let batches = if cfg.gso_segments_max > 1 { GSO_BATCHES } else { 0 };
        let gso = (0..batches)
            .map(|_| GsoBatch {
                // SAFETY: all-zero msghdr and iovecs are valid values.
                msg: unsafe { mem::zeroed() },
                iovs: unsafe { mem::zeroed() },
                control: [0; 4],
                members: Vec::with_capacity(GSO_SEGMENTS_MAX),
            })
            .collect();
        Self {
            buffers: resident_zeroed(count * stride),
            stride,
            slots,
            free: (0..count as u16).rev().collect(),
            queued: Vec::with_capacity(count),
            in_flight: 0,
            gso,
            gso_free: (0..batches as u16).rev().collect(),
            gso_segments_max: usize::from(cfg.gso_segments_max),
            gso_segments_min: usize::from(cfg.gso_segments_min).max(2),
        }
    }

    /// How many queued slots from `queued[first]` on can share one segmentation-offload send:
    /// same peer, same length (the last may be shorter), within the kernel's bounds.
    fn gso_run(&self, first: usize) -> usize {
        let max = self.gso_segments_max.min(GSO_SEGMENTS_MAX);
        if max < 2 {
            return 1;
        }
        let lead = &self.slots[usize::from(self.queued[first])];
        let (size, name_len) = (lead.iov.iov_len, lead.msg.msg_namelen as usize);
        let mut run = 1;
        let mut bytes = size;
        while run < max && first + run < self.queued.len() {
            let next = &self.slots[usize::from(self.queued[first + run])];
            let len = next.iov.iov_len;
            let same_peer = next.msg.msg_namelen as usize == name_len
                && sockaddr::storage_bytes(&next.addr, next.msg.msg_namelen)
                    == sockaddr::storage_bytes(&lead.addr, lead.msg.msg_namelen);
            if !same_peer || len > size || len == 0 || bytes + len > GSO_BYTES_MAX {
                break;
            }
            run += 1;
            bytes += len;
            if len < size {
                break;
            }
        }
        if size == 0 || run < self.gso_segments_min {
            1
        } else {
            run
        }
    }

    /// Points GSO batch `batch` at the `run` queued slots from `queued[first]` on and returns
    /// its msghdr for the SQE. The batch is boxed and never moves, so its self-pointers hold.
    fn fill_gso(&mut self, batch: u16, first: usize, run: usize) -> *const libc::msghdr {
        let gso = &mut self.gso[usize::from(batch)];
        assert!(gso.members.is_empty() && run <= GSO_SEGMENTS_MAX);
        let lead = &self.slots[usize::from(self.queued[first])];
        let size = u16::try_from(lead.iov.iov_len).expect("a segment fits a UDP datagram");
        for (k, &slot) in self.queued[first..first + run].iter().enumerate() {
            gso.iovs[k] = self.slots[usize::from(slot)].iov;
            gso.members.push(slot);
        }
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure size computations.
        let (space, len) = unsafe {
            (
                libc::CMSG_SPACE(mem::size_of::<u16>() as u32),
                libc::CMSG_LEN(mem::size_of::<u16>() as u32),
            )
        };
        assert!(space as usize <= mem::size_of_val(&gso.control));
        gso.msg.msg_name = lead.msg.msg_name;
        gso.msg.msg_namelen = lead.msg.msg_namelen;
        gso.msg.msg_iov = gso.iovs.as_mut_ptr();
        gso.msg.msg_iovlen = run;
        gso.msg.msg_control = gso.control.as_mut_ptr().cast();
        gso.msg.msg_controllen = space as usize;
        // SAFETY: `control` is 8-byte aligned and at least CMSG_SPACE(2) bytes (asserted), so
        // the first header and its data lie inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&gso.msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = len as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
        }
        &gso.msg
    }
}

impl SendBuffer<'_> {
    /// The whole send buffer (`send_buffer_size` bytes) to write a datagram into.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let pool = &mut self.ring.state.send;
        let start = usize::from(self.slot) * pool.stride;
        &mut pool.buffers[start..start + pool.stride]
    }

    /// Queues the first `len` bytes for `to`; they go out at the next submit.
    pub fn commit(self, to: SocketAddr, len: usize) {
        let pool = &mut self.ring.state.send;
        assert!(len <= pool.stride);
        let slot_index = self.slot;
        let start = usize::from(slot_index) * pool.stride;
        let base = pool.buffers[start..].as_mut_ptr();
        let slot = &mut pool.slots[usize::from(slot_index)];
        let addr_len = sockaddr::write(&to, &mut slot.addr);
        slot.iov.iov_base = base.cast();
        slot.iov.iov_len = len;
        slot.msg.msg_name = (&mut slot.addr as *mut libc::sockaddr_storage).cast();
        slot.msg.msg_namelen = addr_len;
        slot.msg.msg_iov = &mut slot.iov;
        slot.msg.msg_iovlen = 1;
        pool.queued.push(slot_index);
        mem::forget(self);
    }
}

impl Drop for SendBuffer<'_> {
    fn drop(&mut self) {
        self.ring.state.send.free.push(self.slot);
    }
}

impl DatagramEndpoint for UdpRing {
    fn doorbell(&mut self) -> io::Result<Option<Doorbell>> {
        UdpRing::doorbell(self).map(Some)
    }
    fn receive_truncated(&self) -> u64 {
        self.state.stats.recv_truncated
    }
    fn local_addr(&self) -> SocketAddr {
        UdpRing::local_addr(self)
    }
    fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        UdpRing::send_to(self, to, data)
    }
    fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> Result<bool, SendError> {
        let mut buffer = self.send_buffer().ok_or(SendError::QueueFull)?;
        match fill(buffer.as_mut_slice()) {
            Some((to, len)) => {
                buffer.commit(to, len);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn submit_and_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        UdpRing::submit_and_wait(self, wait)
    }
    fn submit_and_wait_until(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        UdpRing::submit_and_wait_until(self, now, until)
    }
    fn recv_batch(&mut self, budget: usize, f: impl FnMut(SocketAddr, &[u8])) -> usize {
        UdpRing::recv_batch(self, budget, f)
    }
}

fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN))
}

/// Creates the socket with the configured options; shared with the fallback endpoint.
/// Whether this kernel knows `UDP_SEGMENT` (Linux 4.18): setting a segment size of 0 (off) is
/// accepted exactly where the option exists.
fn supports_gso(socket: &UdpSocket) -> bool {
    let off: libc::c_int = 0;
    // SAFETY: a valid socket, and a pointer to an int of the length we pass.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&off as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    result == 0
}

pub(crate) fn bind_socket(addr: SocketAddr, cfg: &UdpRingConfig) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if cfg.reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Forcing needs CAP_NET_ADMIN; without it the kernel caps the request at rmem_max.
    if socket.set_recv_buffer_size(cfg.socket_recv_buffer_bytes).is_err() {
        socket.set_recv_buffer_size(cfg.socket_recv_buffer_bytes)?;
    }
    socket.set_send_buffer_size(cfg.socket_send_buffer_bytes)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(20);
    const DEADLINE: Duration = Duration::from_secs(10);

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Runs `ring` until `count` datagrams arrived or the deadline passed; returns them.
    fn receive(ring: &mut UdpRing, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < count && start.elapsed() < DEADLINE {
            ring.submit_and_wait(Some(STEP)).unwrap();
            ring.recv_batch(usize::MAX, |from, bytes| got.push((from, bytes.to_vec())));
        }
        got
    }

    fn flush(ring: &mut UdpRing) {
        let start = Instant::now();
        while ring.state.send.in_flight > 0 || !ring.state.send.queued.is_empty() {
            assert!(start.elapsed() < DEADLINE);
            ring.submit_and_wait(Some(STEP)).unwrap();
        }
    }

    fn config(mode: RecvMode) -> UdpRingConfig {
        UdpRingConfig { recv_mode: mode, ..UdpRingConfig::default() }
    }

    // Goal: a wait with a deadline ends at it, on a timer that later deadlines leave set, and a
    // datagram still ends the wait before it. Method: wait until +30 ms, then a hundred times
    // with deadlines that move later, each ended by a datagram sent to ourselves.
    #[test]
    fn waits_until_a_deadline_on_a_timer_kept_set() {
        let mut ring = UdpRing::bind(loopback(), config(RecvMode::Auto)).unwrap();
        let start = Instant::now();
        let first = start + Duration::from_millis(30);
        while Instant::now() < first {
            assert!(start.elapsed() < DEADLINE);
            ring.submit_and_wait_until(Instant::now(), Some(first)).unwrap();
        }
        let sets = |ring: &UdpRing| ring.state.timer.as_ref().map(|t| t.timer.sets());
        let after_first = sets(&ring).expect("a timer was made");
        assert!(after_first >= 1);
        let to = ring.local_addr();
        for i in 0..100u64 {
            let now = Instant::now();
            ring.send_to(to, b"wake").unwrap();
            ring.submit_and_wait_until(now, Some(now + DEADLINE + Duration::from_millis(i)))
                .unwrap();
            let mut got = 0;
            while got == 0 {
                assert!(start.elapsed() < 2 * DEADLINE, "the datagram ends the wait");
                got = ring.recv_batch(usize::MAX, |_, _| {});
                if got == 0 {
                    ring.submit_and_wait(Some(STEP)).unwrap();
                }
            }
        }
        assert_eq!(sets(&ring), Some(after_first + 1), "set once for all the later deadlines");
    }

    // Goal: io_uring with multishot recvmsg and a buffer ring works on this kernel, and both
    // receive paths echo. Method: A sends 10 datagrams to B, B echoes each, A checks them.
    #[test]
    fn udp_ring_echo_loopback() {
        for mode in [RecvMode::Multishot, RecvMode::Plain] {
            let mut a = UdpRing::bind(loopback(), config(mode)).unwrap();
            let mut b = UdpRing::bind(loopback(), config(mode)).unwrap();
            assert_eq!(a.is_multishot(), mode == RecvMode::Multishot);
            for i in 0..10u8 {
                a.send_to(b.local_addr(), &[i; 100]).unwrap();
            }
            flush(&mut a);
            let got = receive(&mut b, 10);
            assert_eq!(got.len(), 10);
            for (from, bytes) in &got {
                assert_eq!(*from, a.local_addr());
                b.send_to(*from, bytes).unwrap();
            }
            flush(&mut b);
            let echoed = receive(&mut a, 10);
            let mut firsts: Vec<u8> = echoed.iter().map(|(_, b)| b[0]).collect();
            firsts.sort();
            assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
            assert!(echoed.iter().all(|(from, _)| *from == b.local_addr()));
        }
    }

    // Goal: a batch of 1000 datagrams goes out with one submit (several, when the SQ fills) and
    // every one arrives exactly once, with fewer receive buffers than datagrams, so buffers are
    // recycled and the multishot receive is re-armed after ENOBUFS. Method: count by index.
    #[test]
    fn udp_ring_batch_1000_recycles_buffers() {
        for mode in [RecvMode::Multishot, RecvMode::Plain] {
            let small = UdpRingConfig { recv_buffers_count: 64, ..config(mode) };
            let mut rx = UdpRing::bind(loopback(), small).unwrap();
            let mut tx = UdpRing::bind(loopback(), config(mode)).unwrap();
            for i in 0..1000u32 {
                tx.send_to(rx.local_addr(), &i.to_be_bytes()).unwrap();
            }
            flush(&mut tx);
            assert_eq!(tx.stats().datagrams_sent, 1000);
            assert_eq!(tx.send_buffers_free(), 1024);
            let got = receive(&mut rx, 1000);
            let mut seen = vec![false; 1000];
            for (_, bytes) in &got {
                let i = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
                assert!(!seen[i], "datagram {i} delivered twice");
                seen[i] = true;
            }
            assert_eq!(got.len(), 1000, "mode {mode:?}");
            assert_eq!(rx.stats().datagrams_received, 1000);
            if mode == RecvMode::Multishot {
                // 1000 datagrams into 64 buffers: the multishot ran out (ENOBUFS) and re-armed.
                assert!(rx.stats().recv_rearms >= 2, "{:?}", rx.stats());
            }
        }
    }

    // Goal: a full submission queue is submitted, not an error. Method: a 4-entry SQ and 100
    // queued sends; the SQ must fill many times, and every datagram still arrives.
    #[test]
    fn udp_ring_sq_full_submits_and_retries() {
        let tiny = UdpRingConfig { ring_entries: 4, ..UdpRingConfig::default() };
        let mut tx = UdpRing::bind(loopback(), tiny).unwrap();
        let mut rx = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        for i in 0..100u8 {
            tx.send_to(rx.local_addr(), &[i]).unwrap();
        }
        flush(&mut tx);
        assert!(tx.stats().sq_full_submits >= 100 / 4 - 1);
        assert_eq!(receive(&mut rx, 100).len(), 100);
    }

    /// `count` datagrams of `len` bytes, each starting with its index in `first..`.
    fn queue(tx: &mut UdpRing, to: SocketAddr, first: u32, count: u32, len: usize) {
        for i in first..first + count {
            let mut bytes = vec![0xab; len];
            bytes[..4].copy_from_slice(&i.to_be_bytes());
            tx.send_to(to, &bytes).unwrap();
        }
    }

    fn indices(got: &[(SocketAddr, Vec<u8>)]) -> Vec<(u32, usize)> {
        got.iter().map(|(_, b)| (u32::from_be_bytes(b[..4].try_into().unwrap()), b.len())).collect()
    }

    // Goal: consecutive datagrams to one peer of one size leave as one segmentation-offload
    // send, and arrive as the datagrams they were, in order. Method: to peer A 10 × 100 bytes
    // then one of 50 (a shorter last segment joins), then 5 × 100 to peer B (another peer: a
    // new send), then 3 × 100 to A; then 65 × 8 bytes to A (the kernel's 64-segment bound),
    // then 3 × 30 000 bytes to A (two fit the 65 507-byte bound, the third goes alone).
    #[test]
    fn udp_ring_gso_batches_runs_to_one_peer() {
        let big = UdpRingConfig {
            send_buffer_size: 30_000,
            recv_buffer_size: 30_000,
            gso_segments_max: 64,
            gso_segments_min: 2,
            ..Default::default()
        };
        let mut tx = UdpRing::bind(loopback(), big.clone()).unwrap();
        let mut a = UdpRing::bind(loopback(), big.clone()).unwrap();
        let mut b = UdpRing::bind(loopback(), big).unwrap();
        let offload = tx.state.send.gso_segments_max > 1;
        queue(&mut tx, a.local_addr(), 0, 10, 100);
        queue(&mut tx, a.local_addr(), 10, 1, 50);
        queue(&mut tx, b.local_addr(), 100, 5, 100);
        queue(&mut tx, a.local_addr(), 11, 3, 100);
        flush(&mut tx);
        let mut want: Vec<(u32, usize)> = (0..10).map(|i| (i, 100)).collect();
        want.push((10, 50));
        want.extend((11..14).map(|i| (i, 100)));
        assert_eq!(indices(&receive(&mut a, 14)), want);
        assert_eq!(indices(&receive(&mut b, 5)), (100..105).map(|i| (i, 100)).collect::<Vec<_>>());
        assert_eq!(tx.stats().datagrams_sent, 19);
        if offload {
            assert_eq!((tx.stats().gso_sends, tx.stats().gso_datagrams), (3, 19));
        }

        queue(&mut tx, a.local_addr(), 200, 65, 8);
        flush(&mut tx);
        assert_eq!(indices(&receive(&mut a, 65)), (200..265).map(|i| (i, 8)).collect::<Vec<_>>());
        queue(&mut tx, a.local_addr(), 300, 3, 30_000);
        flush(&mut tx);
        assert_eq!(
            indices(&receive(&mut a, 3)),
            (300..303).map(|i| (i, 30_000)).collect::<Vec<_>>()
        );
        assert_eq!(tx.stats().datagrams_sent, 19 + 65 + 3);
        if offload {
            // 64 of the 65 in one send (the 65th alone); 2 of the 3 large ones in one send.
            assert_eq!((tx.stats().gso_sends, tx.stats().gso_datagrams), (5, 19 + 64 + 2));
        }
        assert_eq!(tx.stats().send_errors, 0);
    }

    // Goal: the offload is off by default (kernel SCTP peers crash on it), and when on, runs
    // shorter than `gso_segments_min` go one by one (boundary pair at the default 8). Method: 8
    // datagrams with the defaults; then with it on, 7 datagrams to one peer, then 8.
    #[test]
    fn udp_ring_gso_short_runs_go_one_by_one() {
        let on = UdpRingConfig { gso_segments_max: 64, ..UdpRingConfig::default() };
        let mut tx = UdpRing::bind(loopback(), on).unwrap();
        let mut rx = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        let mut off = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        queue(&mut off, rx.local_addr(), 100, 8, 40);
        flush(&mut off);
        assert_eq!(receive(&mut rx, 8).len(), 8);
        assert_eq!(off.stats().gso_sends, 0, "off by default");
        if tx.state.send.gso_segments_max < 2 {
            return; // No segmentation offload on this kernel: nothing to tell apart.
        }
        queue(&mut tx, rx.local_addr(), 0, 7, 40);
        flush(&mut tx);
        assert_eq!(receive(&mut rx, 7).len(), 7);
        assert_eq!(tx.stats().gso_sends, 0);
        queue(&mut tx, rx.local_addr(), 7, 8, 40);
        flush(&mut tx);
        assert_eq!(indices(&receive(&mut rx, 8)), (7..15).map(|i| (i, 40)).collect::<Vec<_>>());
        assert_eq!((tx.stats().gso_sends, tx.stats().gso_datagrams), (1, 8));
    }

    // Goal: a failed segmentation-offload send frees every slot it carried, counts each of its
    // datagrams as a send error, and turns the offload off for later sends. Method: complete a
    // two-datagram batch with EINVAL by hand.
    #[test]
    fn udp_ring_gso_failure_turns_it_off() {
        let on = UdpRingConfig { gso_segments_max: 64, ..UdpRingConfig::default() };
        let mut tx = UdpRing::bind(loopback(), on).unwrap();
        let free = tx.state.send.free.len();
        let batch = tx.state.send.gso_free.pop().unwrap();
        let members = [tx.state.send.free.pop().unwrap(), tx.state.send.free.pop().unwrap()];
        tx.state.send.gso[usize::from(batch)].members.extend(members);
        tx.state.send.in_flight += 1;
        tx.state.complete_send(GSO_USER_DATA + u64::from(batch), -libc::EINVAL);
        assert_eq!(tx.state.send.free.len(), free);
        assert_eq!(tx.state.send.gso_free.len(), GSO_BATCHES);
        assert_eq!(tx.state.send.in_flight, 0);
        assert_eq!(tx.stats().send_errors, 2);
        assert_eq!(tx.state.send.gso_segments_max, 0);
        // Later runs go one datagram per send, and still arrive.
        let rx_cfg = UdpRingConfig::default();
        let mut rx = UdpRing::bind(loopback(), rx_cfg).unwrap();
        queue(&mut tx, rx.local_addr(), 0, 4, 16);
        flush(&mut tx);
        assert_eq!(receive(&mut rx, 4).len(), 4);
        assert_eq!(tx.stats().gso_sends, 1, "only the failed one");
    }

    // Goal: the send pool bound holds, at and just past the limit. Method: 4 buffers; the
    // fifth send fails with QueueFull until completions free a buffer; a lent buffer dropped
    // without commit returns to the pool; an oversize datagram is TooLong.
    #[test]
    fn udp_ring_send_pool_bounds() {
        let cfg =
            UdpRingConfig { send_buffers_count: 4, send_buffer_size: 64, ..Default::default() };
        let mut tx = UdpRing::bind(loopback(), cfg).unwrap();
        let to = tx.local_addr();
        assert_eq!(tx.send_to(to, &[0; 65]), Err(SendError::TooLong));
        assert!(tx.send_to(to, &[0; 64]).is_ok());
        drop(tx.send_buffer().unwrap());
        assert_eq!(tx.send_buffers_free(), 3);
        for _ in 0..3 {
            tx.send_to(to, b"x").unwrap();
        }
        assert_eq!(tx.send_to(to, b"x"), Err(SendError::QueueFull));
        assert!(tx.send_buffer().is_none());
        flush(&mut tx);
        assert_eq!(tx.send_buffers_free(), 4);
        let mut slot = tx.send_buffer().unwrap();
        slot.as_mut_slice()[..3].copy_from_slice(b"abc");
        slot.commit(to, 3);
        flush(&mut tx);
        let got = receive(&mut tx, 5);
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].1, b"abc");
    }

    // Goal: datagrams longer than a receive buffer are dropped and counted, never delivered
    // cut short. Method: 64-byte receive buffers, one 65-byte and one 64-byte datagram.
    #[test]
    fn udp_ring_drops_truncated() {
        for mode in [RecvMode::Multishot, RecvMode::Plain] {
            let cfg = UdpRingConfig { recv_buffer_size: 64, ..config(mode) };
            let mut rx = UdpRing::bind(loopback(), cfg).unwrap();
            let mut tx = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
            tx.send_to(rx.local_addr(), &[1; 65]).unwrap();
            tx.send_to(rx.local_addr(), &[2; 64]).unwrap();
            flush(&mut tx);
            let got = receive(&mut rx, 1);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].1, vec![2; 64]);
            assert_eq!(rx.stats().recv_truncated, 1);
        }
    }

    // Goal: with SO_REUSEPORT, two rings (two cores) share one port and the kernel steers each
    // 4-tuple to exactly one of them. Method: 32 senders on distinct source ports send 4
    // datagrams each; every sender's datagrams all land on the same ring, none twice.
    #[test]
    fn udp_ring_reuse_port_steers_by_4_tuple() {
        let mut a = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        let mut b = UdpRing::bind(a.local_addr(), UdpRingConfig::default()).unwrap();
        let senders: Vec<UdpSocket> =
            (0..32).map(|_| UdpSocket::bind(loopback()).unwrap()).collect();
        for s in &senders {
            for _ in 0..4 {
                s.send_to(b"x", a.local_addr()).unwrap();
            }
        }
        let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
        let start = Instant::now();
        while on_a.len() + on_b.len() < 128 && start.elapsed() < DEADLINE {
            a.submit_and_wait(Some(Duration::from_millis(5))).unwrap();
            b.submit_and_wait(Some(Duration::ZERO)).unwrap();
            a.recv_batch(usize::MAX, |from, _| on_a.push(from));
            b.recv_batch(usize::MAX, |from, _| on_b.push(from));
        }
        assert_eq!(on_a.len() + on_b.len(), 128);
        for s in &senders {
            let from = s.local_addr().unwrap();
            let (in_a, in_b) = (on_a.contains(&from), on_b.contains(&from));
            assert!(in_a != in_b, "{from} split across rings");
        }
    }

    // Goal: with the steering program attached, a packet whose verification tag is t goes to
    // socket t % 2 of the group, whatever its 4-tuple; tag 0 (INIT) falls back to the hash.
    // Method: one sender (one 4-tuple) sends tags 1..=20; even tags must land on the first ring
    // bound, odd tags on the second.
    #[test]
    fn udp_ring_steers_by_verification_tag() {
        let mut a = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        let mut b = UdpRing::bind(a.local_addr(), UdpRingConfig::default()).unwrap();
        b.steer_by_verification_tag(2).unwrap();
        let sender = UdpSocket::bind(loopback()).unwrap();
        for tag in 0..=20u32 {
            let mut packet = [0u8; 12];
            packet[4..8].copy_from_slice(&tag.to_be_bytes());
            sender.send_to(&packet, a.local_addr()).unwrap();
        }
        let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
        let start = Instant::now();
        while on_a.len() + on_b.len() < 21 && start.elapsed() < DEADLINE {
            a.submit_and_wait(Some(Duration::from_millis(5))).unwrap();
            b.submit_and_wait(Some(Duration::ZERO)).unwrap();
            let tag = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            a.recv_batch(usize::MAX, |_, p| on_a.push(tag(p)));
            b.recv_batch(usize::MAX, |_, p| on_b.push(tag(p)));
        }
        assert_eq!(on_a.len() + on_b.len(), 21);
        assert!(on_a.iter().filter(|t| **t != 0).all(|t| t % 2 == 0), "{on_a:?}");
        assert!(on_b.iter().filter(|t| **t != 0).all(|t| t % 2 == 1), "{on_b:?}");
    }

    // Goal: SO_REUSEPORT lets two rings (two cores) bind one port. Method: bind twice.
    #[test]
    fn udp_ring_reuse_port() {
        let a = UdpRing::bind(loopback(), UdpRingConfig::default()).unwrap();
        let b = UdpRing::bind(a.local_addr(), UdpRingConfig::default()).unwrap();
        assert_eq!(a.local_addr(), b.local_addr());
    }
}
