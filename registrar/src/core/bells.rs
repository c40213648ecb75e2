//! Waking a core that sleeps in its transport's wait when another core queues work for it.
//!
//! Each core publishes whether it is about to sleep and a doorbell (an eventfd its io_uring
//! reads). A producer rings only a core that says it sleeps, so a busy mesh costs no system
//! calls. The sleeper sets its flag, then looks at its queues once more before it sleeps; the
//! producer pushes, then reads the flag. With a full fence between the store and the load on
//! each side, at least one of them sees the other (Dekker), so no message waits for a timeout.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::OnceLock;

use transport::Doorbell;

/// One core's published sleep state and doorbell.
#[derive(Default)]
pub struct Bell {
    sleeping: AtomicBool,
    doorbell: OnceLock<Doorbell>,
}

impl Bell {
    /// Publishes this core's doorbell (once, at startup).
    pub fn install(&self, doorbell: Doorbell) {
        let _ = self.doorbell.set(doorbell);
    }

    /// Whether the core can be woken (its transport has a doorbell).
    pub fn is_installed(&self) -> bool {
        self.doorbell.get().is_some()
    }

    /// The owner is about to sleep. Call [`Bell::awake`] after the wait, and re-check the
    /// queues between the two (the fence orders that check after this store).
    pub fn sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The owner is awake again.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// A producer queued work for this core: wake it if it sleeps.
    pub fn nudge(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(doorbell) = self.doorbell.get() {
                doorbell.ring();
            }
        }
    }
}
