//! [`Wire`]: a PE's encoded Pool Element parameter, shared by the shard, the read replicas, the
//! ENRP announcements and the changes in flight between them. An element keeps one only when
//! its fields do not re-make the bytes exactly ([`crate::PoolElement`]); a registration
//! always carries one, so that the check has the bytes to compare with.
//!
//! It was an `Arc<[u8]>`: a 16-byte fat pointer in every element slot and copy, and a block of
//! two 8-byte counts and the bytes, 72 bytes for the common 56-byte parameter, which malloc
//! rounds up to 80. Nothing here needs a weak count or a 64-bit length, so a `Wire` is a thin
//! pointer to a block of a 4-byte count, a 4-byte length and the bytes: 64 bytes for the
//! common parameter (BENCHMARKS.md, "Memory per PE"). One element per PE per copy, so this is
//! paid a million times at a million PEs.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// The block's header; the bytes follow it.
#[repr(C)]
struct Header {
    count: AtomicU32,
    len: u32,
}

/// Immutable shared bytes behind a thin pointer, with an atomic count (`Arc<[u8]>`'s
/// semantics without its weak count). Cloning shares; the block is freed with the last clone.
pub struct Wire {
    ptr: NonNull<Header>,
}

// SAFETY: the bytes are never written after `Wire::new`, and the count is atomic, as in
// `Arc<[u8]>`, which is `Send` and `Sync`.
unsafe impl Send for Wire {}
// SAFETY: as above.
unsafe impl Sync for Wire {}

/// Clones beyond this abort, as `Arc` does near `isize::MAX`: a count must never wrap.
const COUNT_MAX: u32 = u32::MAX / 2;

impl Wire {
    /// The block for `len` bytes: the header, then the bytes.
    fn layout(len: usize) -> Layout {
        let (layout, offset) = Layout::new::<Header>()
            .extend(Layout::array::<u8>(len).expect("a length that fits a u32"))
            .expect("a length that fits a u32");
        debug_assert_eq!(offset, std::mem::size_of::<Header>());
        layout.pad_to_align()
    }

    /// A copy of `bytes` in a block of its own.
    ///
    /// # Panics
    /// If `bytes` is 4 GiB or longer (an encoded parameter is at most 64 KiB).
    pub fn new(bytes: &[u8]) -> Self {
        let len = u32::try_from(bytes.len()).expect("an encoded parameter is under 4 GiB");
        let layout = Self::layout(bytes.len());
        // SAFETY: the layout is not zero-sized (it holds the header).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else { handle_alloc_error(layout) };
        // SAFETY: `raw` is a fresh block of `layout`: the header fits at its start, aligned, and
        // `len` bytes after it; `bytes` cannot overlap a fresh block.
        unsafe {
            ptr.as_ptr().write(Header { count: AtomicU32::new(1), len });
            let data = raw.add(std::mem::size_of::<Header>());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        }
        Self { ptr }
    }

    fn header(&self) -> &Header {
        // SAFETY: the block lives while any `Wire` points at it, and the header is never
        // written but through its atomic count.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether two `Wire`s share one block.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }
}

impl Deref for Wire {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let len = self.header().len as usize;
        // SAFETY: `len` initialised bytes follow the header in the live block, never written
        // after `new`.
        unsafe {
            let data = self.ptr.as_ptr().cast::<u8>().add(std::mem::size_of::<Header>());
            std::slice::from_raw_parts(data, len)
        }
    }
}

impl Clone for Wire {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a new reference is made from an existing one, so the block
        // is already visible to this thread.
        let before = self.header().count.fetch_add(1, Ordering::Relaxed);
        if before > COUNT_MAX {
            std::process::abort();
        }
        Self { ptr: self.ptr }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        // Release, then Acquire before freeing, as `Arc`'s drop: every other owner's last use
        // happens before the block goes.
        if self.header().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let layout = Self::layout(self.header().len as usize);
        // SAFETY: this was the last reference; the block was allocated with this layout.
        unsafe { dealloc(self.ptr.as_ptr().cast::<u8>(), layout) }
    }
}

impl From<&[u8]> for Wire {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

impl From<Vec<u8>> for Wire {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(&bytes)
    }
}

impl AsRef<[u8]> for Wire {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Wire {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Wire {}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a `Wire` is a thin pointer that gives back its bytes, shares them on clone and
    // frees them with the last clone, also across threads. Method: sizes, contents, the count
    // through clones and drops (under Miri, `cargo +nightly miri test -p handlespace wire`, it
    // also checks every access), and many clones dropped on other threads.
    #[test]
    fn wire_shares_its_bytes_and_frees_them_with_the_last_clone() {
        assert_eq!(std::mem::size_of::<Wire>(), 8);
        assert_eq!(std::mem::size_of::<Option<Wire>>(), 8);
        assert_eq!(Wire::layout(56).size(), 64, "the common parameter fills 64 bytes");
        for len in [0, 1, 3, 56, 57, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let wire = Wire::from(&bytes[..]);
            assert_eq!(&wire[..], &bytes[..]);
            let copy = wire.clone();
            assert!(Wire::ptr_eq(&wire, &copy));
            assert_eq!(wire.header().count.load(Ordering::Relaxed), 2);
            drop(wire);
            assert_eq!(copy.header().count.load(Ordering::Relaxed), 1);
            assert_eq!(&copy[..], &bytes[..]);
            assert_eq!(copy, Wire::from(bytes.clone()), "equal bytes, another block");
        }
        let wire = Wire::from(&b"shared"[..]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let mine: Vec<Wire> = (0..100).map(|_| wire.clone()).collect();
                std::thread::spawn(move || mine.iter().map(|w| w.len()).sum::<usize>())
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 600);
        }
        assert_eq!(wire.header().count.load(Ordering::Relaxed), 1, "every clone dropped");
    }
}
