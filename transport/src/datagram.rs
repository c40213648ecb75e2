//! The small interface both UDP endpoints implement ([`crate::udp::UdpRing`] on io_uring,
//! [`crate::udp_batch::UdpSocketBatch`] on `recvmmsg`/`sendmmsg`), and their one config struct.
//!
//! The contract, in loop order: queue sends with `send_to` (a copy into a preallocated send
//! buffer, nothing leaves yet), then `submit_and_wait` (one system call: queued sends go out,
//! and it returns when at least one completion is ready or the wait elapsed), then `recv_batch`
//! (drains received datagrams up to a budget and recycles their buffers).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A UDP endpoint that batches sends and receives.
pub trait DatagramEndpoint {
    /// The address the socket is bound to (with the port the kernel chose for port 0).
    fn local_addr(&self) -> SocketAddr;
    /// Copies `data` into a free send buffer; it goes out at the next `submit_and_wait`.
    fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError>;
    /// Lends a free send buffer to `fill`, which writes one datagram at its start and returns
    /// the destination and length, or `None` to hand the buffer back unused. Returns whether a
    /// datagram was queued; `Err(QueueFull)` (without calling `fill`) when no buffer is free.
    /// This is the zero-copy path for a sans-IO stack's `poll_transmit`.
    fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> Result<bool, SendError>;
    /// Submits queued sends and waits for at least one completion, or for `wait` to elapse
    /// (`None`: no limit; `Some(Duration::ZERO)`: submit only).
    fn submit_and_wait(&mut self, wait: Option<Duration>) -> io::Result<()>;
    /// As [`Self::submit_and_wait`] with the wait ending at `until` (`None`: no limit), `now`
    /// being the caller's clock. io_uring keeps a timer armed across calls instead of a
    /// timeout on each (see `WakeTimer`); the default converts to a timeout.
    fn submit_and_wait_until(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        self.submit_and_wait(until.map(|t| t.saturating_duration_since(now)))
    }
    /// Calls `f(from, payload)` for up to `budget` received datagrams; returns how many.
    fn recv_batch(&mut self, budget: usize, f: impl FnMut(SocketAddr, &[u8])) -> usize;

    /// A doorbell that wakes this endpoint's `submit_and_wait` from another thread, where the
    /// endpoint supports one (io_uring: an eventfd read kept armed in the ring). `None`: the
    /// caller must bound its waits instead.
    fn doorbell(&mut self) -> io::Result<Option<Doorbell>> {
        Ok(None)
    }

    /// Datagrams dropped since `bind` because they were longer than a receive buffer
    /// ([`DatagramStats::recv_truncated`]); 0 for an endpoint that cannot tell.
    fn receive_truncated(&self) -> u64 {
        0
    }
}

/// Why a datagram was not queued. Neither error is fatal: the caller drops or retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Every send buffer is queued or in flight; submit and reap, then retry.
    QueueFull,
    /// The datagram is longer than `UdpRingConfig::send_buffer_size`.
    TooLong,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueFull => f.write_str("all send buffers are in use"),
            Self::TooLong => f.write_str("datagram longer than a send buffer"),
        }
    }
}

impl std::error::Error for SendError {}

/// How the io_uring endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
    /// Multishot `RecvMsgMulti` if the kernel accepts a provided-buffer ring, else `Plain`.
    Auto,
    /// Always multishot; `bind` fails if the kernel lacks buffer rings.
    Multishot,
    /// A batch of single-shot `RecvMsg` operations, one per receive buffer.
    Plain,
}

/// The kernel's `UDP_MAX_SEGMENTS`: most datagrams one segmentation-offload send may carry.
pub const GSO_SEGMENTS_MAX: u16 = 64;

/// Every bound of a UDP endpoint, with its default. Memory is allocated once, in `bind`:
/// `recv_buffers_count * recv_buffer_size + send_buffers_count * send_buffer_size` bytes,
/// plus one page-aligned buffer ring of `16 * recv_buffers_count` bytes.
#[derive(Debug, Clone)]
pub struct UdpRingConfig {
    /// Submission queue entries (the completion queue is twice as large). Default 256.
    pub ring_entries: u32,
    /// Receive buffers; a power of two for the buffer ring. Default 1024.
    pub recv_buffers_count: u16,
    /// Payload bytes per receive buffer; longer datagrams are dropped and counted
    /// (`recv_truncated`). Default 2048: an SCTP packet sized to a 1500-byte path MTU fits.
    /// Must cover the peer's path MTU minus 28: a kernel SCTP peer on loopback sends up to
    /// 65 507-byte packets (lo's MTU is 64 KiB), so loopback interop needs 65 507.
    pub recv_buffer_size: u32,
    /// Send buffers (sends queued or in flight at once). Default 1024.
    pub send_buffers_count: u16,
    /// Bytes per send buffer (largest datagram). Default 2048.
    pub send_buffer_size: u32,
    /// Datagrams one `recv_batch` call may deliver when the caller passes a larger budget.
    /// Default 256.
    pub batch_budget: usize,
    /// `SO_RCVBUF` to request (forced if the process may). Default 4 MiB.
    pub socket_recv_buffer_bytes: usize,
    /// `SO_SNDBUF` to request. Default 4 MiB.
    pub socket_send_buffer_bytes: usize,
    /// Set `SO_REUSEPORT`, so each core can bind the same port. Default true.
    pub reuse_port: bool,
    /// Receive path. Default `Auto`.
    pub recv_mode: RecvMode,
    /// Most datagrams one send may carry with UDP segmentation offload (`UDP_SEGMENT`, Linux
    /// 4.18): consecutive queued datagrams to one peer of one size (the last may be shorter)
    /// go to the kernel as one buffer, so the kernel's per-datagram send work (and, on
    /// loopback, the receive path up to the peer's socket) is paid once per batch. It turns
    /// itself off on hosts without it and after a failed batch (e.g. a segment longer than the
    /// path MTU). Default 0, off: Linux's own SCTP in UDP crashes on receiving such datagrams
    /// (Debian's 6.1 kernel: `kernel BUG` in `sctp_inq_pop`, seen in the lab VM), so turn it on
    /// ([`GSO_SEGMENTS_MAX`], 64) only where no peer is kernel SCTP: our own stack, usrsctp,
    /// plain UDP sockets.
    pub gso_segments_max: u16,
    /// Fewest datagrams worth one segmentation-offload send; shorter runs go one by one.
    /// Default 8: on loopback, batches of 2-4 answers raised the round-trip latency of a
    /// closed-loop load by a few µs (15 % less throughput with 4 PUs × 8 in flight), while runs
    /// of 8 and more cut the registrar's CPU per answer by more than half with 64 quiet PUs
    /// (BENCHMARKS.md).
    pub gso_segments_min: u16,
}

impl Default for UdpRingConfig {
    fn default() -> Self {
        Self {
            ring_entries: 256,
            recv_buffers_count: 1024,
            recv_buffer_size: 2048,
            send_buffers_count: 1024,
            send_buffer_size: 2048,
            batch_budget: 256,
            socket_recv_buffer_bytes: 4 << 20,
            socket_send_buffer_bytes: 4 << 20,
            reuse_port: true,
            recv_mode: RecvMode::Auto,
            gso_segments_max: 0,
            gso_segments_min: 8,
        }
    }
}

impl UdpRingConfig {
    /// Panics on a config no endpoint can run with: a programmer error, not an input error.
    pub(crate) fn assert_valid(&self) {
        assert!(self.ring_entries >= 2);
        assert!(self.ring_entries <= 32_768);
        assert!(self.recv_buffers_count.is_power_of_two());
        assert!(self.recv_buffers_count <= 32_768);
        assert!(self.recv_buffer_size >= 1);
        assert!(self.send_buffers_count >= 1);
        assert!(self.send_buffer_size >= 1);
        assert!(self.batch_budget >= 1);
        assert!(self.gso_segments_max <= GSO_SEGMENTS_MAX, "the kernel's UDP_MAX_SEGMENTS");
    }
}

/// Counters of one endpoint (per core; sum them when reading).
#[derive(Debug, Clone, Default)]
pub struct DatagramStats {
    /// Datagrams delivered by `recv_batch`.
    pub datagrams_received: u64,
    /// Send completions with a non-negative result.
    pub datagrams_sent: u64,
    /// Send completions with an error (for UDP on loopback, mostly `ECONNREFUSED`).
    pub send_errors: u64,
    /// Datagrams dropped because they were longer than a receive buffer.
    pub recv_truncated: u64,
    /// Receive completions with an error (including multishot `ENOBUFS`).
    pub recv_errors: u64,
    /// Times the multishot receive was re-armed after it ended.
    pub recv_rearms: u64,
    /// Times a full submission queue forced an early submit.
    pub sq_full_submits: u64,
    /// Times `io_uring_enter` returned `EBUSY`/`EAGAIN` and completions were reaped first.
    pub submit_busy_retries: u64,
    /// Sends that carried several datagrams with UDP segmentation offload.
    pub gso_sends: u64,
    /// Datagrams carried by those sends (also counted in `datagrams_sent` or `send_errors`).
    pub gso_datagrams: u64,
}

/// Whichever UDP endpoint this host supports: io_uring when it can be set up, else the
/// `recvmmsg`/`sendmmsg` fallback. One type, so `SctpUdpTransport<AnyDatagramEndpoint>` runs
/// everywhere.
// One per core, built once and never moved on the hot path: boxing would only add a pointer hop.
#[allow(clippy::large_enum_variant)]
pub enum AnyDatagramEndpoint {
    /// [`crate::UdpRing`].
    Ring(crate::UdpRing),
    /// [`crate::UdpSocketBatch`].
    Batch(crate::UdpSocketBatch),
}

impl AnyDatagramEndpoint {
    /// Binds a `UdpRing`; if io_uring is unavailable (`ENOSYS`, `EPERM` under seccomp or
    /// `io_uring_disabled`, `Unsupported`), binds a `UdpSocketBatch` instead. Socket errors such
    /// as `EADDRINUSE` are returned as they are.
    pub fn bind(addr: SocketAddr, cfg: UdpRingConfig) -> io::Result<Self> {
        match crate::UdpRing::bind(addr, cfg.clone()) {
            Ok(ring) => Ok(Self::Ring(ring)),
            Err(e) if io_uring_unavailable(&e) => {
                Ok(Self::Batch(crate::UdpSocketBatch::bind(addr, cfg)?))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the io_uring endpoint is in use.
    pub fn is_io_uring(&self) -> bool {
        matches!(self, Self::Ring(_))
    }
}

fn io_uring_unavailable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES))
}

impl DatagramEndpoint for AnyDatagramEndpoint {
    fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Ring(r) => r.local_addr(),
            Self::Batch(b) => b.local_addr(),
        }
    }
    fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        match self {
            Self::Ring(r) => r.send_to(to, data),
            Self::Batch(b) => b.send_to(to, data),
        }
    }
    fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> Result<bool, SendError> {
        match self {
            Self::Ring(r) => DatagramEndpoint::send_in_place(r, fill),
            Self::Batch(b) => b.send_in_place(fill),
        }
    }
    fn submit_and_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Ring(r) => r.submit_and_wait(wait),
            Self::Batch(b) => b.submit_and_wait(wait),
        }
    }
    fn submit_and_wait_until(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        match self {
            Self::Ring(r) => r.submit_and_wait_until(now, until),
            Self::Batch(b) => b.submit_and_wait_until(now, until),
        }
    }
    fn receive_truncated(&self) -> u64 {
        match self {
            Self::Ring(r) => r.stats().recv_truncated,
            Self::Batch(b) => b.stats().recv_truncated,
        }
    }
    fn recv_batch(&mut self, budget: usize, f: impl FnMut(SocketAddr, &[u8])) -> usize {
        match self {
            Self::Ring(r) => r.recv_batch(budget, f),
            Self::Batch(b) => b.recv_batch(budget, f),
        }
    }
    fn doorbell(&mut self) -> io::Result<Option<Doorbell>> {
        match self {
            Self::Ring(r) => DatagramEndpoint::doorbell(r),
            Self::Batch(b) => b.doorbell(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: on this host (io_uring available) the automatic choice is io_uring, and it moves a
    // datagram. Method: bind, send to self, receive within a bounded loop.
    #[test]
    fn any_endpoint_prefers_io_uring() {
        let addr = "127.0.0.1:0".parse().unwrap();
        let mut e = AnyDatagramEndpoint::bind(addr, UdpRingConfig::default()).unwrap();
        assert!(e.is_io_uring());
        let to = e.local_addr();
        e.send_to(to, b"hi").unwrap();
        let mut got = 0;
        for _ in 0..100 {
            e.submit_and_wait(Some(Duration::from_millis(10))).unwrap();
            got += e.recv_batch(8, |_, bytes| assert_eq!(bytes, b"hi"));
            if got == 1 {
                break;
            }
        }
        assert_eq!(got, 1);
        assert!(io_uring_unavailable(&io::Error::from_raw_os_error(libc::ENOSYS)));
        assert!(!io_uring_unavailable(&io::Error::from_raw_os_error(libc::EADDRINUSE)));
    }
}

/// Wakes a sleeping endpoint from another thread: one 8-byte `write` to an eventfd that the
/// endpoint's io_uring has a read posted on. Cheap to clone; ring it only when the owner may be
/// asleep (the owner publishes that), since each ring is a system call.
#[derive(Clone, Debug)]
pub struct Doorbell {
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl Doorbell {
    pub(crate) fn new(fd: std::sync::Arc<std::os::fd::OwnedFd>) -> Self {
        Self { fd }
    }

    /// Wakes the endpoint (or makes its next wait return at once). Never blocks: a full
    /// counter (2^64 - 2 rings unread) already means "wake up".
    pub fn ring(&self) {
        use std::os::fd::AsRawFd;
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own a handle to.
        let _ = unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast::<libc::c_void>(), 8)
        };
    }
}
