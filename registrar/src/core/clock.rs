//! The one place that reads the OS clock.
//!
//! Each core reads monotonic time once per loop iteration and hands it to the sans-IO code as a
//! value. Time going backwards is a broken host, not an input error, so it crashes (TigerBeetle:
//! src/time.zig `monotonic_guard`).

use std::time::Instant as StdInstant;

/// A per-core monotonic clock in microseconds since the clock was made.
pub struct Clock {
    epoch: StdInstant,
    last_us: u64,
}

impl Clock {
    /// Starts the clock at zero.
    pub fn new() -> Self {
        Self { epoch: StdInstant::now(), last_us: 0 }
    }

    /// Microseconds since the epoch; never less than the previous reading.
    pub fn now_us(&mut self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).expect("584 000 years of uptime");
        assert!(now >= self.last_us, "monotonic clock went backwards: {now} < {}", self.last_us);
        self.last_us = now;
        now
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
