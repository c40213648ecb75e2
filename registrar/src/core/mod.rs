//! Per-core loops, shards and cross-core queues. The only code that reads the OS clock.

pub mod bells;
pub mod clock;
pub mod mesh;
pub mod runtime;
pub mod spsc;
pub mod worker;

pub use runtime::{start, Running, StatsHandle};
