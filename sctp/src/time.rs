//! Time as a value: the caller reads its clock once per loop iteration and passes it in.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: microseconds since an arbitrary epoch chosen by the caller.
///
/// The crate never reads a clock; every `handle_*`/`poll_*` call takes `now` (STYLE §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// A deadline that never comes: a stopped timer. A deadline that saturates here
/// (`Instant + Duration`) means never anyway, so no `Option` (and its 8 more bytes) is needed.
pub(crate) const NEVER: Instant = Instant(u64::MAX);

impl Instant {
    /// Microseconds since the caller's epoch.
    pub fn micros(self) -> u64 {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later (time never goes negative here).
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        // Saturate: a deadline past the end of u64 µs (584 000 years) is simply "never".
        Instant(self.0.saturating_add(duration_us(rhs)))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_us(rhs)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

/// A `Duration` in whole microseconds, saturating at `u64::MAX`.
pub(crate) fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
