//! The timer table's set: sorted keys in runs of up to [`RUN_MAX`], for a set whose new keys
//! nearly always come last.
//!
//! Every PE's deadline is "now plus the same interval" (its keep-alive or its registration
//! life), so a new timer-table entry is almost always the largest. A `BTreeSet` splits a full
//! leaf in the middle even then, and its leaves stay about half full: 19.6 heap bytes per
//! one-word key (BENCHMARKS.md, "Memory per PE"). Here a key past the end of a full last run
//! starts a new run instead, so runs fill up, and the table costs about the key's 8 bytes; a
//! key inside a full run splits it in half, as a B-tree would. Order, and so the order timers
//! fire in, is exactly the `BTreeSet`'s.

use std::collections::BTreeMap;

/// Keys per run: a lookup is a B-tree descent over runs and a binary search in one, an
/// insertion or removal moves at most this many keys (2 KiB).
pub(crate) const RUN_MAX: usize = 256;

/// A set of distinct keys in ascending order.
#[derive(Debug)]
pub(crate) struct Runs<K> {
    /// Non-empty sorted runs, each under its first key; every key of a run is below the next
    /// run's first.
    runs: BTreeMap<K, Vec<K>>,
}

impl<K> Default for Runs<K> {
    fn default() -> Self {
        Self { runs: BTreeMap::new() }
    }
}

impl<K: Ord + Copy> Runs<K> {
    /// The number of keys: O(runs), for checks.
    pub(crate) fn len(&self) -> usize {
        self.runs.values().map(Vec::len).sum()
    }

    /// The smallest key.
    pub(crate) fn first(&self) -> Option<K> {
        self.runs.first_key_value().map(|(&first, _)| first)
    }

    /// Inserts `key`; returns whether it was not there.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        // The run that holds keys up to `key`, or the first run for a key below every run: one
        // descent, the only one unless the run is full.
        let Some((&start, run)) = self.runs.range_mut(..=key).next_back() else {
            return self.insert_before_all(key);
        };
        let Err(position) = run.binary_search(&key) else { return false };
        if run.len() < RUN_MAX {
            run.insert(position, key);
            return true;
        }
        let at_end = position == run.len();
        if at_end && self.runs.last_key_value().is_some_and(|(&last, _)| last == start) {
            // Past the end of the full last run: the usual case, a new run, so that runs fill.
            self.runs.insert(key, Self::new_run(key));
            return true;
        }
        let run = self.runs.get_mut(&start).expect("the run just found");
        let mut upper = run.split_off(RUN_MAX / 2);
        if position <= RUN_MAX / 2 {
            run.insert(position, key);
        } else {
            upper.insert(position - RUN_MAX / 2, key);
        }
        debug_assert!(run[0] == start);
        self.runs.insert(upper[0], upper);
        true
    }

    /// [`Self::insert`] of a key below every run's first (or into an empty set).
    fn insert_before_all(&mut self, key: K) -> bool {
        match self.runs.first_entry() {
            Some(entry) if entry.get().len() < RUN_MAX => {
                let mut run = entry.remove();
                run.insert(0, key);
                self.runs.insert(key, run);
            }
            _ => {
                self.runs.insert(key, Self::new_run(key));
            }
        }
        true
    }

    fn new_run(key: K) -> Vec<K> {
        let mut run = Vec::with_capacity(RUN_MAX);
        run.push(key);
        run
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: K) -> bool {
        let Some((&start, run)) = self.runs.range_mut(..=key).next_back() else { return false };
        let Ok(position) = run.binary_search(&key) else { return false };
        run.remove(position);
        if run.len() < run.capacity() / 4 {
            // A run its keys left (they moved on, to later deadlines) gives its room back.
            run.shrink_to(run.len() * 2);
        }
        if position == 0 {
            // The run's first key changed (or it emptied): it moves to its new name.
            let run = self.runs.remove(&start).expect("the run just found");
            if let Some(&first) = run.first() {
                self.runs.insert(first, run);
            }
        }
        true
    }

    /// The keys in ascending order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = K> + '_ {
        self.runs.values().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    // Goal: the set agrees with a `BTreeSet` under appends (the timer table's pattern), inserts
    // anywhere and removals anywhere, with runs that split and empty. Method: a fixed
    // pseudo-random sequence of operations, checking every answer and, every 64 steps, the
    // whole order and the run invariants.
    #[test]
    fn runs_agree_with_a_btree_set() {
        let mut runs = Runs::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next_large = 1_000_000u64;
        for step in 0..60_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                // Appends, as deadlines "now + interval" arrive.
                0..=3 => {
                    next_large += x % 3;
                    assert_eq!(runs.insert(next_large), model.insert(next_large));
                }
                // Anywhere, also below everything and already present.
                4 => {
                    let key = (x >> 8) % (next_large + 10);
                    assert_eq!(runs.insert(key), model.insert(key));
                }
                // Removal of a present key, of an absent one, and of the first.
                5 | 6 => {
                    let key = match model.range((x >> 8) % (next_large + 1)..).next() {
                        Some(&key) => key,
                        None => (x >> 8) % (next_large + 1),
                    };
                    assert_eq!(runs.remove(key), model.remove(&key));
                }
                _ => {
                    let first = model.first().copied();
                    assert_eq!(runs.first(), first);
                    if let Some(first) = first {
                        assert!(runs.remove(first) && model.remove(&first));
                    }
                }
            }
            assert_eq!(runs.len(), model.len());
            assert_eq!(runs.first(), model.first().copied());
            if step % 64 == 0 {
                assert!(runs.iter().eq(model.iter().copied()));
                for (&start, run) in &runs.runs {
                    assert!(!run.is_empty() && run.len() <= RUN_MAX && run[0] == start);
                    assert!(run.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }
    }

    // Goal: appends fill runs to the top, which is the point of the structure. Method: 10 000
    // increasing keys; every run but the last is full.
    #[test]
    fn appends_fill_their_runs() {
        let mut runs = Runs::default();
        for key in 0..10_000u64 {
            assert!(runs.insert(key * 3));
        }
        let lengths: Vec<usize> = runs.runs.values().map(Vec::len).collect();
        assert_eq!(lengths.len(), 10_000usize.div_ceil(RUN_MAX));
        assert!(lengths[..lengths.len() - 1].iter().all(|&l| l == RUN_MAX));
    }
}
