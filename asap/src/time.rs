//! Sans-IO time: [`Instant`] and [`Duration`] as plain values, and [`TimerTable`], the fixed
//! table of deadlines each state machine keeps (timers as data, STYLE.md §3).
//!
//! Nothing here reads a clock. The driver (e.g. [`crate::blocking`]) turns its own clock into
//! an [`Instant`] once per turn and hands it in.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Add, Sub};

/// A point in time: microseconds from an arbitrary epoch chosen by the driver.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Self = Self(0);

    /// The instant `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Self {
        Self(us)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time.
    pub const ZERO: Self = Self(0);
    /// The longest span; `Instant + MAX` saturates at the end of time.
    pub const MAX: Self = Self(u64::MAX);

    /// `us` microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Self(us)
    }

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000))
    }

    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000))
    }

    /// Whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// `self * factor`, saturating.
    pub const fn saturating_mul(self, factor: u64) -> Self {
        Self(self.0.saturating_mul(factor))
    }

    /// `self - other`, or zero.
    pub const fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }
}

/// Saturates at the end of time, so a deadline of "never" can be written `now + Duration::MAX`.
impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.0))
    }
}

/// Saturates at zero: time does not run backwards in the sans-IO core.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({}us)", self.0)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({}us)", self.0)
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_micros(d.0)
    }
}

/// A timer enum usable as an index into a [`TimerTable`].
pub trait TimerKind: Copy + Eq + fmt::Debug + 'static {
    /// Every timer, in index order.
    const ALL: &'static [Self];
    /// The timer's slot in the table.
    fn index(self) -> usize;
}

/// One optional deadline per timer of `T`: `N` must be `T::ALL.len()` (asserted in `new`).
///
/// An expired timer is *taken* from the table ([`Self::take_expired`]), so one expiry is handled
/// exactly once and cannot be copied out and then lost.
pub struct TimerTable<T: TimerKind, const N: usize> {
    deadlines: [Option<Instant>; N],
    kind: PhantomData<T>,
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// A table with every timer stopped.
    pub fn new() -> Self {
        assert_eq!(T::ALL.len(), N, "one slot per timer");
        Self { deadlines: [None; N], kind: PhantomData }
    }

    /// Starts (or restarts) `timer` to fire at `at`.
    pub fn set(&mut self, timer: T, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: T) {
        self.deadlines[timer.index()] = None;
    }

    /// When `timer` fires, if it runs.
    pub fn deadline(&self, timer: T) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest deadline of the table.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Stops and returns one timer whose deadline is at or before `now` (a deadline fires at
    /// exactly its instant), earliest first.
    pub fn take_expired(&mut self, now: Instant) -> Option<T> {
        let (timer, _) = T::ALL
            .iter()
            .filter_map(|&t| self.deadlines[t.index()].map(|at| (t, at)))
            .filter(|&(_, at)| at <= now)
            .min_by_key(|&(_, at)| at)?;
        self.stop(timer);
        Some(timer)
    }
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TimerKind, const N: usize> fmt::Debug for TimerTable<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for &t in T::ALL {
            map.entry(&t, &self.deadlines[t.index()]);
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Two {
        A,
        B,
    }

    impl TimerKind for Two {
        const ALL: &'static [Self] = &[Self::A, Self::B];
        fn index(self) -> usize {
            self as usize
        }
    }

    // Goal: a timer fires at exactly its deadline, not a microsecond before, and only once.
    // Method: a boundary pair around one deadline, then a second take after it fired.
    #[test]
    fn timer_fires_at_its_deadline_once() {
        let mut t: TimerTable<Two, 2> = TimerTable::new();
        t.set(Two::B, Instant::from_micros(100));
        t.set(Two::A, Instant::from_micros(200));
        assert_eq!(t.next_timeout(), Some(Instant::from_micros(100)));
        assert_eq!(t.take_expired(Instant::from_micros(99)), None);
        assert_eq!(t.take_expired(Instant::from_micros(100)), Some(Two::B));
        assert_eq!(t.take_expired(Instant::from_micros(100)), None);
        assert_eq!(t.next_timeout(), Some(Instant::from_micros(200)));
    }

    // Goal: time arithmetic saturates instead of wrapping or panicking.
    // Method: add past the end of time, subtract a later instant.
    #[test]
    fn arithmetic_saturates() {
        let end = Instant::from_micros(u64::MAX - 1) + Duration::from_secs(5);
        assert_eq!(end.as_micros(), u64::MAX);
        assert_eq!(Instant::from_micros(5) - Instant::from_micros(9), Duration::ZERO);
        assert_eq!(Duration::from_millis(3).as_micros(), 3_000);
    }
}
