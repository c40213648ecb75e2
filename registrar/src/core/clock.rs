//! The one place that reads the OS clock.
//!
//! Each core reads monotonic time once per loop iteration and hands it to the sans-IO code as a
//! value. Time going backwards is a broken host, not an input error, so it crashes (TigerBeetle:
//! src/time.zig `monotonic_guard`).
//!
//! [`TurnClock`] is that read. Where a precise clock read is a system call (no clocksource the
//! vDSO can read: the emulated HPET of the lab VM, some hypervisors) it is one of the four
//! system calls a request costs at one request in flight (issue 14), so a single-worker
//! registrar there reads `CLOCK_MONOTONIC_COARSE` instead, which the vDSO serves from the last
//! timer tick, and reads precisely only when a deadline is within a tick, or when the core
//! spins on cross-core work (whose 50 µs window a tick would stretch).

use std::time::{Duration, Instant as StdInstant};

/// Mean cost of a precise read above which the coarse clock is used (a vDSO read of the TSC
/// costs tens of nanoseconds; a system call to the emulated HPET, microseconds).
pub const PRECISE_READ_EXPENSIVE: Duration = Duration::from_nanos(400);

/// Coarse clock resolutions above this (HZ below 100) keep the precise clock.
pub const COARSE_RESOLUTION_MAX: Duration = Duration::from_millis(10);

/// Which clock a [`TurnClock`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockChoice {
    /// The coarse clock if precise reads are expensive here (measured at start), else precise.
    Auto,
    /// Always the precise clock.
    Precise,
    /// The coarse clock, however cheap precise reads are (tests).
    Coarse,
}

/// A core's clock: precise `Instant`s, or the coarse clock's ticks placed on the same
/// timeline, never decreasing.
#[derive(Debug)]
pub struct TurnClock {
    /// `Some`: reading coarse, with its resolution (one tick).
    coarse: Option<Duration>,
    /// An `Instant` and `CLOCK_MONOTONIC` read just after it: a coarse reading `c` stands for
    /// `base + (c - base_ns)`, which errs early by the gap between the two reads, as a coarse
    /// reading errs early by up to a tick: never late.
    base: StdInstant,
    base_ns: u64,
    last: StdInstant,
}

impl TurnClock {
    /// A clock as `choice` says.
    pub fn new(choice: ClockChoice) -> Self {
        let base = StdInstant::now();
        let base_ns = read_ns(libc::CLOCK_MONOTONIC).unwrap_or(0);
        let resolution = coarse_resolution().filter(|r| *r <= COARSE_RESOLUTION_MAX);
        let coarse = match choice {
            ClockChoice::Precise => None,
            ClockChoice::Coarse => resolution,
            ClockChoice::Auto => {
                resolution.filter(|_| precise_read_cost() > PRECISE_READ_EXPENSIVE)
            }
        };
        let coarse =
            coarse.filter(|_| base_ns > 0 && read_ns(libc::CLOCK_MONOTONIC_COARSE).is_some());
        Self { coarse, base, base_ns, last: base }
    }

    /// Whether this clock reads coarse.
    pub fn is_coarse(&self) -> bool {
        self.coarse.is_some()
    }

    /// The coarse clock's resolution, if it reads coarse.
    pub fn tick(&self) -> Option<Duration> {
        self.coarse
    }

    /// Now: precise if `precise` or the clock does not read coarse, else the coarse clock's
    /// last tick (up to one tick early). Never less than the previous reading.
    pub fn now(&mut self, precise: bool) -> StdInstant {
        let read = match (self.coarse, precise) {
            (Some(_), false) => match read_ns(libc::CLOCK_MONOTONIC_COARSE) {
                Some(ns) => self.base + Duration::from_nanos(ns.saturating_sub(self.base_ns)),
                None => StdInstant::now(),
            },
            _ => StdInstant::now(),
        };
        // A coarse reading after a precise one may be up to a tick behind it: time stands
        // still until the coarse clock passes it, it does not go back.
        let now = read.max(self.last);
        self.last = now;
        now
    }

    /// Whether `deadline` is near enough to `now` (a coarse reading) that the turn must read
    /// precisely to see it pass: within two ticks.
    pub fn is_near(&self, now: StdInstant, deadline: Option<StdInstant>) -> bool {
        match (self.coarse, deadline) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(tick), Some(deadline)) => deadline <= now + 2 * tick,
        }
    }
}

fn read_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?)
}

fn coarse_resolution() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live timespec.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } != 0 {
        return None;
    }
    let ns = u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?;
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// The mean cost of a precise clock read, over a few hundred reads (well under a millisecond
/// where they are cheap, a few milliseconds where each is a system call).
fn precise_read_cost() -> Duration {
    const READS: u32 = 256;
    let start = StdInstant::now();
    let mut last = start;
    for _ in 0..READS {
        last = std::hint::black_box(StdInstant::now());
    }
    last.duration_since(start) / READS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_readings_trail_precise_ones_by_at_most_a_tick_and_never_go_back() {
        let mut clock = TurnClock::new(ClockChoice::Coarse);
        let Some(tick) = clock.tick() else {
            // No coarse clock here (or a resolution above COARSE_RESOLUTION_MAX): nothing
            // to check but that it then reads precisely.
            let a = clock.now(false);
            assert!(clock.now(false) >= a);
            return;
        };
        let mut previous = clock.now(true);
        let end = StdInstant::now() + 20 * tick;
        let mut readings = 0u32;
        while StdInstant::now() < end {
            let precise_before = StdInstant::now();
            let coarse = clock.now(false);
            let precise_after = StdInstant::now();
            assert!(coarse >= previous, "never back");
            // The base's two reads are not at the same instant: allow a millisecond.
            assert!(coarse <= precise_after.max(previous) + Duration::from_millis(1), "not ahead");
            assert!(
                coarse + tick + Duration::from_millis(1) >= precise_before,
                "a tick behind at most"
            );
            previous = coarse;
            if readings.is_multiple_of(64) {
                previous = clock.now(true);
            }
            readings += 1;
        }
        assert!(readings > 100);
        let now = clock.now(false);
        assert!(clock.is_near(now, Some(now + tick)));
        assert!(!clock.is_near(now, Some(now + 3 * tick)));
        assert!(!clock.is_near(now, None));
    }

    #[test]
    fn a_precise_clock_is_always_near() {
        let mut clock = TurnClock::new(ClockChoice::Precise);
        assert!(!clock.is_coarse());
        let now = clock.now(false);
        assert!(clock.is_near(now, None), "a precise clock needs no extra read: every one is");
    }
}
