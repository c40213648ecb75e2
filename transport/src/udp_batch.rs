//! [`UdpSocketBatch`]: the same [`DatagramEndpoint`] without io_uring, for hosts where
//! `io_uring_setup` is unavailable (old kernels, `io_uring_disabled`, seccomp'd containers).
//! One `sendmmsg` flushes queued sends; `poll` waits; one `recvmmsg` fills the receive buffers.
//! Same config, same bounds, same preallocation as [`crate::UdpRing`].

use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::datagram::{DatagramEndpoint, DatagramStats, SendError, UdpRingConfig};
use crate::sockaddr;

/// A batching UDP endpoint on plain system calls.
pub struct UdpSocketBatch {
    socket: UdpSocket,
    local: SocketAddr,
    cfg: UdpRingConfig,
    recv: Batch,
    /// Received datagrams `next_ready..recv_filled` are waiting for `recv_batch`.
    recv_filled: usize,
    next_ready: usize,
    send: Batch,
    /// Sends `0..send_queued` are written and wait for the next `sendmmsg`.
    send_queued: usize,
    stats: DatagramStats,
}

/// Preallocated `mmsghdr`s with their names, iovecs and buffers (boxed: they point at each other).
struct Batch {
    buffers: Vec<u8>,
    stride: usize,
    names: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

impl UdpSocketBatch {
    /// Binds a non-blocking UDP socket with the configured options and allocates every buffer.
    pub fn bind(addr: SocketAddr, cfg: UdpRingConfig) -> io::Result<Self> {
        cfg.assert_valid();
        let socket = crate::udp::bind_socket(addr, &cfg)?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let recv = Batch::new(usize::from(cfg.recv_buffers_count), cfg.recv_buffer_size as usize);
        let send = Batch::new(usize::from(cfg.send_buffers_count), cfg.send_buffer_size as usize);
        let stats = DatagramStats::default();
        Ok(Self {
            socket,
            local,
            cfg,
            recv,
            recv_filled: 0,
            next_ready: 0,
            send,
            send_queued: 0,
            stats,
        })
    }

    /// Counters since `bind`.
    pub fn stats(&self) -> &DatagramStats {
        &self.stats
    }

    fn flush_sends(&mut self) -> io::Result<()> {
        let mut sent = 0;
        while sent < self.send_queued {
            let headers = &mut self.send.headers[sent..self.send_queued];
            // SAFETY: headers point at this batch's names, iovecs and buffers, all alive.
            let n = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    headers.len() as u32,
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // The socket buffer is full: keep the rest for the next flush.
                    Some(libc::EAGAIN) => break,
                    // A per-datagram error (e.g. ECONNREFUSED) drops that datagram only.
                    _ => {
                        self.stats.send_errors += 1;
                        sent += 1;
                        continue;
                    }
                }
            }
            sent += n as usize;
            self.stats.datagrams_sent += n as u64;
        }
        // Move any unsent tail to the front, preserving order.
        let rest = self.send_queued - sent;
        for i in 0..rest {
            self.send.move_entry(sent + i, i);
        }
        self.send_queued = rest;
        Ok(())
    }

    fn fill_receives(&mut self) -> io::Result<()> {
        assert_eq!(self.next_ready, self.recv_filled);
        for (i, header) in self.recv.headers.iter_mut().enumerate() {
            header.msg_hdr.msg_namelen = sockaddr::NAME_LEN as libc::socklen_t;
            header.msg_hdr.msg_flags = 0;
            self.recv.iovecs[i].iov_len = self.recv.stride;
        }
        let headers = &mut self.recv.headers;
        // SAFETY: as in flush_sends; MSG_DONTWAIT on a non-blocking socket never sleeps.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                headers.as_mut_ptr(),
                headers.len() as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        self.next_ready = 0;
        self.recv_filled = 0;
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(()),
                _ => Err(e),
            };
        }
        self.recv_filled = n as usize;
        Ok(())
    }
}

impl DatagramEndpoint for UdpSocketBatch {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn receive_truncated(&self) -> u64 {
        self.stats.recv_truncated
    }

    fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        if data.len() > self.send.stride {
            return Err(SendError::TooLong);
        }
        if self.send_queued == self.send.headers.len() {
            return Err(SendError::QueueFull);
        }
        let i = self.send_queued;
        let start = i * self.send.stride;
        self.send.buffers[start..start + data.len()].copy_from_slice(data);
        let name_len = sockaddr::write(&to, &mut self.send.names[i]);
        self.send.headers[i].msg_hdr.msg_namelen = name_len;
        self.send.iovecs[i].iov_len = data.len();
        self.send_queued += 1;
        Ok(())
    }

    fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> Result<bool, SendError> {
        if self.send_queued == self.send.headers.len() {
            return Err(SendError::QueueFull);
        }
        let i = self.send_queued;
        let start = i * self.send.stride;
        let Some((to, len)) = fill(&mut self.send.buffers[start..start + self.send.stride]) else {
            return Ok(false);
        };
        assert!(len <= self.send.stride);
        let name_len = sockaddr::write(&to, &mut self.send.names[i]);
        self.send.headers[i].msg_hdr.msg_namelen = name_len;
        self.send.iovecs[i].iov_len = len;
        self.send_queued += 1;
        Ok(true)
    }

    fn submit_and_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        self.flush_sends()?;
        if self.next_ready < self.recv_filled {
            return Ok(());
        }
        let timeout_ms = match wait {
            None => -1,
            // Rounded up: a sub-millisecond wait must sleep, not spin on poll(0) until it passes.
            Some(d) => d.as_micros().div_ceil(1_000).min(i32::MAX as u128) as i32,
        };
        let mut pfd =
            libc::pollfd { fd: self.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) { Ok(()) } else { Err(e) };
        }
        if n > 0 {
            self.fill_receives()?;
        }
        Ok(())
    }

    fn recv_batch(&mut self, budget: usize, mut f: impl FnMut(SocketAddr, &[u8])) -> usize {
        let budget = budget.min(self.cfg.batch_budget);
        let mut delivered = 0;
        while delivered < budget {
            if self.next_ready == self.recv_filled {
                if self.fill_receives().is_err() {
                    self.stats.recv_errors += 1;
                    break;
                }
                if self.recv_filled == 0 {
                    break;
                }
            }
            let i = self.next_ready;
            self.next_ready += 1;
            let header = &self.recv.headers[i];
            let len = header.msg_len as usize;
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.recv_truncated += 1;
                continue;
            }
            let name = sockaddr::storage_bytes(&self.recv.names[i], header.msg_hdr.msg_namelen);
            let Some(from) = sockaddr::parse(name) else {
                self.stats.recv_errors += 1;
                continue;
            };
            let start = i * self.recv.stride;
            f(from, &self.recv.buffers[start..start + len.min(self.recv.stride)]);
            delivered += 1;
        }
        self.stats.datagrams_received += delivered as u64;
        delivered
    }
}

impl Batch {
    fn new(count: usize, stride: usize) -> Self {
        let mut buffers = vec![0u8; count * stride];
        // SAFETY: all-zero sockaddr_storage, iovec and mmsghdr are valid values.
        let mut names: Box<[libc::sockaddr_storage]> =
            (0..count).map(|_| unsafe { mem::zeroed() }).collect();
        let mut iovecs: Box<[libc::iovec]> = (0..count).map(|_| unsafe { mem::zeroed() }).collect();
        let mut headers: Box<[libc::mmsghdr]> =
            (0..count).map(|_| unsafe { mem::zeroed() }).collect();
        for i in 0..count {
            iovecs[i].iov_base = buffers[i * stride..].as_mut_ptr().cast();
            iovecs[i].iov_len = stride;
            headers[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
        }
        Self { buffers, stride, names, iovecs, headers }
    }

    /// Copies queued entry `from` into slot `to` (`to < from`), keeping the pointers fixed.
    fn move_entry(&mut self, from: usize, to: usize) {
        assert!(to < from);
        let len = self.iovecs[from].iov_len;
        self.buffers.copy_within(from * self.stride..from * self.stride + len, to * self.stride);
        self.iovecs[to].iov_len = len;
        self.names[to] = self.names[from];
        self.headers[to].msg_hdr.msg_namelen = self.headers[from].msg_hdr.msg_namelen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    // Goal: the fallback endpoint moves a batch of 1000 datagrams, each exactly once, with
    // fewer receive buffers than datagrams. Method: count by index, bounded by a deadline.
    #[test]
    fn udp_batch_1000_over_loopback() {
        let cfg = UdpRingConfig { recv_buffers_count: 64, ..UdpRingConfig::default() };
        let mut rx = UdpSocketBatch::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
        let mut tx =
            UdpSocketBatch::bind("127.0.0.1:0".parse().unwrap(), UdpRingConfig::default()).unwrap();
        for i in 0..1000u32 {
            tx.send_to(rx.local_addr(), &i.to_be_bytes()).unwrap();
        }
        tx.submit_and_wait(Some(Duration::ZERO)).unwrap();
        assert_eq!(tx.stats().datagrams_sent, 1000);
        let mut seen = vec![false; 1000];
        let mut count = 0;
        let start = Instant::now();
        while count < 1000 && start.elapsed() < Duration::from_secs(10) {
            rx.submit_and_wait(Some(Duration::from_millis(20))).unwrap();
            count += rx.recv_batch(usize::MAX, |from, bytes| {
                assert_eq!(from, tx.local_addr());
                let i = u32::from_be_bytes(bytes.try_into().unwrap()) as usize;
                assert!(!seen[i]);
                seen[i] = true;
            });
        }
        assert_eq!(count, 1000);
    }

    // Goal: the send queue bound holds at and past the limit. Method: 2 buffers, 3 sends.
    #[test]
    fn udp_batch_send_queue_full() {
        let cfg = UdpRingConfig { send_buffers_count: 2, ..UdpRingConfig::default() };
        let mut tx = UdpSocketBatch::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
        let to = tx.local_addr();
        tx.send_to(to, b"a").unwrap();
        tx.send_to(to, b"b").unwrap();
        assert_eq!(tx.send_to(to, b"c"), Err(SendError::QueueFull));
        tx.submit_and_wait(Some(Duration::ZERO)).unwrap();
        tx.send_to(to, b"c").unwrap();
    }
}
