//! [`WakeTimer`]: the deadline of a blocking wait as a `timerfd` that is set only when the
//! deadline moves earlier.
//!
//! A wait with a timeout (`poll(2)`'s milliseconds, io_uring's timespec) makes the kernel read
//! the clock and start a high-resolution timer on every call, and stop it on every early
//! wake-up. On a host whose clocksource is not the TSC (the HPET of an emulated or some
//! virtualised hosts) each of those is an emulated device access: in the lab VM `read_hpet`
//! was the largest single symbol of the registrar's profile at one request in flight
//! (BENCHMARKS.md, issue 14). A registrar's deadlines rarely move earlier: the next PE expiry
//! stays put while requests come and go, and the periodic ones (stop flag, retries) move later
//! with every turn. So the timer stays armed across waits, the wait itself has no timeout, and
//! the fd joins the waited-on set; a wake-up at a deadline that has since moved later is one
//! spurious loop turn, after which the timer is set again.
//!
//! Deadlines are [`Instant`]s, which on Linux are `CLOCK_MONOTONIC`: the timer is set absolute
//! on that clock from an offset read once at creation (an `Instant`, then the clock, so that a
//! conversion errs late by the gap between the two reads, never early).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What a waiter should do with its timeout after [`WakeTimer::arm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// The deadline has passed: look without sleeping (a zero timeout).
    Now,
    /// Sleep without a timeout: the timer's fd becomes readable at the deadline, if any.
    Fd,
}

/// A `timerfd` on `CLOCK_MONOTONIC`, non-blocking.
#[derive(Debug)]
pub(crate) struct WakeTimer {
    fd: OwnedFd,
    /// The deadline the timer is set for, until its expiry is read.
    armed: Option<Instant>,
    /// `CLOCK_MONOTONIC` at `base` (read just after it).
    base: Instant,
    base_ns: u128,
    /// `timerfd_settime` calls so far.
    sets: u64,
}

impl WakeTimer {
    /// A disarmed timer; `nonblocking` for a fd that `poll(2)` watches and we read (io_uring
    /// reads a blocking one by polling it).
    pub(crate) fn new(nonblocking: bool) -> io::Result<Self> {
        let flags = libc::TFD_CLOEXEC | if nonblocking { libc::TFD_NONBLOCK } else { 0 };
        // SAFETY: no pointers; a negative result is an error we report.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let base = Instant::now();
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a live timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let base_ns = ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128;
        Ok(Self { fd, armed: None, base, base_ns, sets: 0 })
    }

    /// The fd to wait on beside the sockets.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether a deadline is set and its expiry not yet read.
    pub(crate) fn is_set(&self) -> bool {
        self.armed.is_some()
    }

    /// The expiry was read elsewhere (io_uring's posted read): forgets the deadline.
    pub(crate) fn forget(&mut self) {
        self.armed = None;
    }

    /// How many times the timer was set (a system call each).
    #[cfg(test)]
    pub(crate) fn sets(&self) -> u64 {
        self.sets
    }

    /// Makes the fd readable no later than `until` (`None`: no deadline; an earlier one still
    /// set stays, and wakes the waiter once). Sets the timer only if `until` is earlier than
    /// the deadline it is set for, or none is.
    pub(crate) fn arm(&mut self, now: Instant, until: Option<Instant>) -> io::Result<Timeout> {
        let Some(until) = until else { return Ok(Timeout::Fd) };
        if until <= now {
            return Ok(Timeout::Now);
        }
        if self.armed.is_some_and(|armed| armed <= until) {
            return Ok(Timeout::Fd);
        }
        let at = self.base_ns + until.saturating_duration_since(self.base).as_nanos();
        let at = Duration::from_nanos(u64::try_from(at).unwrap_or(u64::MAX));
        let value = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            // Never zero (which would disarm): `until` is after `now`, so `at` is past 0.
            it_value: libc::timespec {
                tv_sec: at.as_secs() as libc::time_t,
                tv_nsec: at.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `value` is a live itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &value,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.sets += 1;
        self.armed = Some(until);
        Ok(Timeout::Fd)
    }

    /// After a wait found the fd readable: reads the expiry so that the fd is quiet again, and
    /// forgets the deadline (the next [`Self::arm`] with one sets the timer).
    pub(crate) fn expired(&mut self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking timerfd; EAGAIN (not
        // expired after all, e.g. after a signal) leaves it as it was.
        let n = unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast::<libc::c_void>(), 8)
        };
        if n == 8 {
            self.armed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    }

    #[test]
    fn later_deadlines_keep_the_timer_and_earlier_ones_move_it() {
        let mut timer = WakeTimer::new(true).unwrap();
        let now = Instant::now();
        assert_eq!(timer.arm(now, None).unwrap(), Timeout::Fd);
        assert_eq!(timer.sets(), 0, "no deadline, nothing set");
        assert_eq!(timer.arm(now, Some(now)).unwrap(), Timeout::Now);
        assert_eq!(timer.sets(), 0, "a deadline that passed is a zero timeout, not a timer");
        let far = now + Duration::from_secs(60);
        timer.arm(now, Some(far)).unwrap();
        for later in 1..100 {
            timer.arm(now, Some(far + Duration::from_millis(later))).unwrap();
        }
        assert_eq!(timer.sets(), 1, "later deadlines leave the timer as it is");
        assert!(!readable(timer.fd(), 0));
        timer.arm(now, Some(now + Duration::from_millis(20))).unwrap();
        assert_eq!(timer.sets(), 2, "an earlier deadline moves it");
        let asked = Instant::now();
        assert!(readable(timer.fd(), 10_000), "fires at the earlier deadline");
        assert!(asked.elapsed() < Duration::from_secs(10));
        assert!(Instant::now() >= now + Duration::from_millis(20), "never before it");
        timer.expired();
        assert!(!readable(timer.fd(), 0), "quiet once read");
        timer.arm(now, Some(far)).unwrap();
        assert_eq!(timer.sets(), 3, "set again after it fired");
    }
}
