//! A bounded single-producer single-consumer ring: the only way two cores talk.
//!
//! One queue exists for each ordered pair of cores, created at startup and kept for the life of
//! the process (glommio: channels/spsc_queue.rs). The producer and consumer indices live on
//! separate cache lines so that the two cores never write the same line.
//!
//! Both sides publish their index once per batch, not per item: the producer's pushes become
//! visible at [`Producer::publish`], and the consumer frees slots at [`Consumer::release`]. Each
//! side also caches the other's index and re-reads it only when it runs out. So a batch of n
//! messages costs a few cache-line transfers instead of 2n (the line the other core polls is
//! written once per batch).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// Creates a queue holding at most `capacity` items (rounded up to a power of two).
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "a zero-capacity queue can never carry a message");
    let capacity = capacity.next_power_of_two();
    let slots = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        mask: capacity - 1,
        slots,
    });
    (
        Producer { ring: ring.clone(), tail: 0, published: 0, head_cached: 0 },
        Consumer { ring, head: 0, released: 0, tail_cached: 0 },
    )
}

/// The sending half; owned by exactly one core.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Our own copy of the tail: only we write it.
    tail: usize,
    /// The tail the consumer can see (the last `publish`).
    published: usize,
    /// The last head we read: re-read only when the queue looks full.
    head_cached: usize,
}

/// The receiving half; owned by exactly one core.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    /// The head the producer can see (the last `release`).
    released: usize,
    /// The last tail we read: re-read only when we caught up with it.
    tail_cached: usize,
}

struct Ring<T> {
    /// Next slot to read; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Next slot to write; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is accessed by the producer only between its claim (tail) and publication,
// and by the consumer only after publication and before releasing it (head); the acquire/release
// pairs on head and tail order those accesses.
unsafe impl<T: Send> Sync for Ring<T> {}
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Send> Producer<T> {
    /// Pushes `value`, or hands it back when the queue is full (the caller turns that into an
    /// error cause for the peer; a full queue never blocks a core). The consumer sees it after
    /// the next [`Producer::publish`].
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.ring.mask + 1;
        if self.tail.wrapping_sub(self.head_cached) == capacity {
            self.head_cached = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cached) == capacity {
                return Err(value);
            }
        }
        let slot = &self.ring.slots[self.tail & self.ring.mask];
        // SAFETY: the slot is free (tail - head < capacity) and only this producer writes it.
        unsafe { (*slot.get()).write(value) };
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Makes every push so far visible to the consumer (one release store).
    pub fn publish(&mut self) {
        if self.published != self.tail {
            self.ring.tail.store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }

    /// How many items are queued, as last seen by the producer (an upper bound).
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.ring.head.load(Ordering::Acquire))
    }

    /// Whether the consumer has taken everything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> Consumer<T> {
    /// Whether nothing is queued (an acquire read of the producer's index).
    pub fn is_empty(&self) -> bool {
        self.ring.tail.load(Ordering::Acquire) == self.head
    }

    /// Pops the oldest published item, if any. Its slot is reused after the next
    /// [`Consumer::release`].
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_cached {
            self.tail_cached = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.tail_cached {
                return None;
            }
        }
        let slot = &self.ring.slots[self.head & self.ring.mask];
        // SAFETY: head < tail, so the producer published this slot and will not touch it until
        // we release head past it.
        let value = unsafe { (*slot.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        Some(value)
    }

    /// Hands every slot popped so far back to the producer (one release store).
    pub fn release(&mut self) {
        if self.released != self.head {
            self.ring.head.store(self.head, Ordering::Release);
            self.released = self.head;
        }
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Unpublished items are then dropped with the ring instead of leaking.
        self.ring.tail.store(self.tail, Ordering::Release);
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Popped items are the caller's now: the ring must not drop them again.
        self.ring.head.store(self.head, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut index = head;
        while index != tail {
            // SAFETY: slots in [head, tail) are initialised and no longer reachable elsewhere.
            unsafe { (*self.slots[index & self.mask].get()).assume_init_drop() };
            index = index.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the queue is bounded and FIFO. Method: fill to capacity, check the next push is
    // refused (boundary pair), then drain in order.
    #[test]
    fn bounded_fifo() {
        let (mut tx, mut rx) = channel::<u32>(4);
        for i in 0..4 {
            assert!(tx.push(i).is_ok());
        }
        assert_eq!(tx.push(99), Err(99));
        assert_eq!(rx.pop(), None, "nothing visible before publish");
        tx.publish();
        for i in 0..4 {
            assert_eq!(rx.pop(), Some(i));
        }
        assert_eq!(rx.pop(), None);
        assert_eq!(tx.push(5), Err(5), "slots come back only at release");
        rx.release();
        assert!(tx.push(5).is_ok());
        tx.publish();
        assert_eq!(rx.pop(), Some(5));
    }

    // Goal: no item is lost, duplicated or reordered across threads, and queued items are
    // dropped with the queue. Method: a producer thread sends 200 000 boxed sequence numbers
    // through a small queue while the consumer checks the sequence.
    #[test]
    fn cross_thread_sequence() {
        let (mut tx, mut rx) = channel::<Box<u64>>(64);
        let count = 200_000u64;
        let producer = std::thread::spawn(move || {
            let mut next = 0;
            while next < count {
                match tx.push(Box::new(next)) {
                    // Publish in uneven batches, as a core's turns would.
                    Ok(()) if next % 7 == 0 => {
                        tx.publish();
                        next += 1;
                    }
                    Ok(()) => next += 1,
                    Err(_) => {
                        tx.publish();
                        std::hint::spin_loop();
                    }
                }
            }
            tx.publish();
            tx
        });
        let mut expected = 0;
        while expected < count {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(*v, expected);
                    expected += 1;
                    if expected % 5 == 0 {
                        rx.release();
                    }
                }
                None => rx.release(),
            }
        }
        let mut tx = producer.join().unwrap();
        tx.push(Box::new(7)).unwrap();
        drop(rx);
        drop(tx);
    }
}
