//! Time as a value: microseconds from an arbitrary epoch chosen by the caller.
//!
//! The handlespace never reads a clock (STYLE.md §3, "Time is a value"); the registrar's core loop
//! reads it once per iteration and passes it in.

/// A point in time, in microseconds from an arbitrary epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

/// A span of time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Instant {
    /// The latest representable instant; a deadline at `MAX` never fires.
    pub const MAX: Self = Self(u64::MAX);

    /// Makes an instant from microseconds since the caller's epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the caller's epoch.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// `self + duration`, clamped to [`Instant::MAX`] (which means "never").
    pub const fn saturating_add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self(0);
    /// Forever: a registration lifetime of `INFINITE` arms no expiry timer.
    pub const INFINITE: Self = Self(u64::MAX);

    /// Makes a duration from microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Makes a duration from milliseconds (the unit of RFC 5354 Registration Life).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// Makes a duration from seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// The duration in microseconds.
    pub const fn micros(self) -> u64 {
        self.0
    }
}

/// Saturating: a deadline past the end of time is the end of time (`Instant::MAX`, "never").
impl core::ops::Add<Duration> for Instant {
    type Output = Self;

    fn add(self, duration: Duration) -> Self {
        self.saturating_add(duration)
    }
}

/// Saturating: the sum of two durations past `u64::MAX` µs is `Duration::INFINITE`.
impl core::ops::Add for Duration {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}
