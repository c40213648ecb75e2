//! Pool member selection policies (RFC 5356 and RSPLIB's private ones) and the per-pool structures
//! that make each selection O(log n) or better.
//!
//! Every policy falls in one of four families, by the data structure it needs:
//!
//! | family     | structure                        | policies                                    |
//! |------------|----------------------------------|---------------------------------------------|
//! | `Cursor`   | head index into the member list  | RR                                          |
//! | `Uniform`  | the dense member list            | RAND                                        |
//! | `Weighted` | Fenwick tree of member weights   | WRAND, RLU, RLUD, RPLU, RPLUD, WRAND-DPF    |
//! | `Ordered`  | B-tree of (key, sequence, slot)  | WRR, PRIO, LU, LUD, PLU, PLUD, all LU-DPFs  |
//!
//! The `Ordered` sequence number breaks ties in round robin order, as RFC 5356 §5.1.2 asks
//! ("If there is a choice of equal-loaded pool elements, round robin selection SHOULD be made").

use std::collections::BTreeSet;

use codec::PolicyType;

use crate::element::Settings;

/// Full load, and the scale of the DPF factors (RFC 5356 §3.1: 0xffffffff is 100 %).
pub(crate) const LOAD_MAX: u64 = 0xffff_ffff;

/// RSPLIB private: Priority Least Used with Distance Penalty Factor (not yet a codec constant).
pub const PRIORITY_LEAST_USED_DPF: PolicyType = PolicyType(0xb000_2004);
/// RSPLIB private: Priority Least Used with Degradation and Distance Penalty Factor (not yet a
/// codec constant).
pub const PRIORITY_LEAST_USED_DEGRADATION_DPF: PolicyType = PolicyType(0xb000_2005);

/// WRR pass increment for weight 1. 2^40 keeps the stride exact to 1/256 for the largest u32
/// weight while leaving 2^23 weight-1 picks of headroom per renormalisation.
const STRIDE_UNIT: u64 = 1 << 40;

/// Passes are renormalised (shifted down) once the smallest exceeds this.
pub(crate) const PASS_RENORMALISE: u64 = 1 << 62;

/// A policy the handlespace knows how to select with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    LeastUsed,
    LeastUsedDegradation,
    LeastUsedDegradationDpf,
    LeastUsedDpf,
    Priority,
    PriorityLeastUsed,
    PriorityLeastUsedDegradation,
    PriorityLeastUsedDegradationDpf,
    PriorityLeastUsedDpf,
    Random,
    RandomizedLeastUsed,
    RandomizedLeastUsedDegradation,
    RandomizedPriorityLeastUsed,
    RandomizedPriorityLeastUsedDegradation,
    RoundRobin,
    WeightedRandom,
    WeightedRandomDpf,
    WeightedRoundRobin,
}

/// The data structure family a policy selects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Cursor,
    Ordered,
    Uniform,
    Weighted,
}

impl Policy {
    pub(crate) fn from_type(policy_type: PolicyType) -> Option<Self> {
        Some(match policy_type {
            PolicyType::ROUND_ROBIN => Self::RoundRobin,
            PolicyType::WEIGHTED_ROUND_ROBIN => Self::WeightedRoundRobin,
            PolicyType::RANDOM => Self::Random,
            PolicyType::WEIGHTED_RANDOM => Self::WeightedRandom,
            PolicyType::PRIORITY => Self::Priority,
            PolicyType::LEAST_USED => Self::LeastUsed,
            PolicyType::LEAST_USED_DEGRADATION => Self::LeastUsedDegradation,
            PolicyType::PRIORITY_LEAST_USED => Self::PriorityLeastUsed,
            PolicyType::RANDOMIZED_LEAST_USED => Self::RandomizedLeastUsed,
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => Self::RandomizedPriorityLeastUsed,
            PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => Self::RandomizedLeastUsedDegradation,
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION => Self::PriorityLeastUsedDegradation,
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => {
                Self::RandomizedPriorityLeastUsedDegradation
            }
            PolicyType::WEIGHTED_RANDOM_DPF => Self::WeightedRandomDpf,
            PolicyType::LEAST_USED_DPF => Self::LeastUsedDpf,
            PolicyType::LEAST_USED_DEGRADATION_DPF => Self::LeastUsedDegradationDpf,
            PRIORITY_LEAST_USED_DPF => Self::PriorityLeastUsedDpf,
            PRIORITY_LEAST_USED_DEGRADATION_DPF => Self::PriorityLeastUsedDegradationDpf,
            _ => return None,
        })
    }

    #[inline]
    pub(crate) fn policy_type(self) -> PolicyType {
        match self {
            Self::RoundRobin => PolicyType::ROUND_ROBIN,
            Self::WeightedRoundRobin => PolicyType::WEIGHTED_ROUND_ROBIN,
            Self::Random => PolicyType::RANDOM,
            Self::WeightedRandom => PolicyType::WEIGHTED_RANDOM,
            Self::Priority => PolicyType::PRIORITY,
            Self::LeastUsed => PolicyType::LEAST_USED,
            Self::LeastUsedDegradation => PolicyType::LEAST_USED_DEGRADATION,
            Self::PriorityLeastUsed => PolicyType::PRIORITY_LEAST_USED,
            Self::RandomizedLeastUsed => PolicyType::RANDOMIZED_LEAST_USED,
            Self::RandomizedPriorityLeastUsed => PolicyType::RANDOMIZED_PRIORITY_LEAST_USED,
            Self::RandomizedLeastUsedDegradation => PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION,
            Self::PriorityLeastUsedDegradation => PolicyType::PRIORITY_LEAST_USED_DEGRADATION,
            Self::RandomizedPriorityLeastUsedDegradation => {
                PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
            }
            Self::WeightedRandomDpf => PolicyType::WEIGHTED_RANDOM_DPF,
            Self::LeastUsedDpf => PolicyType::LEAST_USED_DPF,
            Self::LeastUsedDegradationDpf => PolicyType::LEAST_USED_DEGRADATION_DPF,
            Self::PriorityLeastUsedDpf => PRIORITY_LEAST_USED_DPF,
            Self::PriorityLeastUsedDegradationDpf => PRIORITY_LEAST_USED_DEGRADATION_DPF,
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Self::RoundRobin => Family::Cursor,
            Self::Random => Family::Uniform,
            Self::WeightedRandom
            | Self::WeightedRandomDpf
            | Self::RandomizedLeastUsed
            | Self::RandomizedLeastUsedDegradation
            | Self::RandomizedPriorityLeastUsed
            | Self::RandomizedPriorityLeastUsedDegradation => Family::Weighted,
            Self::WeightedRoundRobin
            | Self::Priority
            | Self::LeastUsed
            | Self::LeastUsedDegradation
            | Self::LeastUsedDegradationDpf
            | Self::LeastUsedDpf
            | Self::PriorityLeastUsed
            | Self::PriorityLeastUsedDegradation
            | Self::PriorityLeastUsedDegradationDpf
            | Self::PriorityLeastUsedDpf => Family::Ordered,
        }
    }

    /// Whether selecting a PE increments its degradation counter.
    //= https://www.rfc-editor.org/rfc/rfc5356#section-5.2.2
    //# When an entry is selected for being returned to a pool user, the internal degradation
    //# counter MUST be incremented by 1.
    // RSPLIB increments only the first `MaxIncrement` entries of an answer (default 0 or 1); the
    // RFC says every returned entry, and we follow the RFC.
    pub(crate) fn degrades(self) -> bool {
        matches!(
            self,
            Self::LeastUsedDegradation
                | Self::LeastUsedDegradationDpf
                | Self::PriorityLeastUsedDegradation
                | Self::PriorityLeastUsedDegradationDpf
                | Self::RandomizedLeastUsedDegradation
                | Self::RandomizedPriorityLeastUsedDegradation
        )
    }

    /// Ordered family: the sort key, smallest selected first. Not used for WRR (its key is state).
    ///
    /// Sums are exact in u64: load + (2^32-1) x (2^32-1) + load degradation <= 2^64 - 1. Only the
    /// DPF penalty can exceed that, and saturates.
    pub(crate) fn order_key(self, s: &Settings, degradation: u32) -> u64 {
        let load = u64::from(s.load);
        let load_degradation = u64::from(s.load_degradation);
        let degraded = u64::from(degradation) * load_degradation;
        let penalty = u64::from(s.distance) * u64::from(s.dpf);
        match self {
            //= https://www.rfc-editor.org/rfc/rfc5356#section-4.5.2
            //# The ENRP server MUST select the pool elements with the highest priorities.
            Self::Priority => u64::from(u32::MAX - s.value),
            Self::LeastUsed => load,
            //= https://www.rfc-editor.org/rfc/rfc5356#section-5.2.2
            //# the selected pool element entries SHOULD have the lowest possible sum of load
            //# value + degradation counter * load degradation value.
            Self::LeastUsedDegradation => load + degraded,
            //= https://www.rfc-editor.org/rfc/rfc5356#section-5.3.2
            //# Their sums of load + degradation SHOULD be the lowest possible ones within the pool.
            Self::PriorityLeastUsed => load + load_degradation,
            Self::PriorityLeastUsedDegradation => load + load_degradation + degraded,
            // RSPLIB's definition: load + distance x (load DPF / 0xffffffff) x 0xffffffff, i.e.
            // load + distance x load DPF, clamped to full load. We keep the unclamped sum
            // (saturating in u64) so that PEs beyond full load still sort by their penalty.
            Self::LeastUsedDpf => load.saturating_add(penalty),
            // RSPLIB scales one side of this comparison by MAX_LOADDPF and the other by MAX_LOAD
            // (leastUsedDegradationDPFComparison); its own definition, LUD plus the LU-DPF
            // penalty, scales both the same way, and we follow the definition.
            Self::LeastUsedDegradationDpf => (load + degraded).saturating_add(penalty),
            // The two priority DPF variants: PLU and PLUD plus the same penalty.
            Self::PriorityLeastUsedDpf => (load + load_degradation).saturating_add(penalty),
            Self::PriorityLeastUsedDegradationDpf => {
                (load + load_degradation + degraded).saturating_add(penalty)
            }
            Self::WeightedRoundRobin
            | Self::RoundRobin
            | Self::Random
            | Self::WeightedRandom
            | Self::WeightedRandomDpf
            | Self::RandomizedLeastUsed
            | Self::RandomizedLeastUsedDegradation
            | Self::RandomizedPriorityLeastUsed
            | Self::RandomizedPriorityLeastUsedDegradation => {
                unreachable!("order_key called for a policy outside the Ordered family")
            }
        }
    }

    /// Weighted family: the selection weight; 0 means "never selected".
    pub(crate) fn weight(self, s: &Settings, degradation: u32) -> u64 {
        let load = u64::from(s.load);
        let load_degradation = u64::from(s.load_degradation);
        let degraded = u64::from(degradation) * load_degradation;
        match self {
            //= https://www.rfc-editor.org/rfc/rfc5356#section-3.2
            //# A weight of 0 denotes that the pool element is not capable of providing any
            //# service
            Self::WeightedRandom => u64::from(s.value),
            //= https://www.rfc-editor.org/rfc/rfc5356#section-5.4.2
            //# The ENRP server SHOULD behave like WRAND, having every PE's weight set to
            //# (0xffffffff -- load value provided by the pool element).
            // RSPLIB floors this weight at 1 ("PE would never be selected"); the definition gives a
            // fully loaded PE weight 0, and we follow the definition: it is never selected.
            Self::RandomizedLeastUsed => LOAD_MAX - load,
            // The randomized variants subtract what their LU counterpart adds, floored at 0 (same
            // reasoning as RLU above).
            Self::RandomizedLeastUsedDegradation => LOAD_MAX.saturating_sub(load + degraded),
            Self::RandomizedPriorityLeastUsed => LOAD_MAX.saturating_sub(load + load_degradation),
            Self::RandomizedPriorityLeastUsedDegradation => {
                LOAD_MAX.saturating_sub(load + load_degradation + degraded)
            }
            Self::WeightedRandomDpf => {
                // weight x (1 - distance x weight DPF / 0xffffffff), computed exactly in u128. A PE
                // with non-zero weight stays selectable (floor 1, as RSPLIB); weight 0 stays 0.
                let weight = u128::from(s.value);
                let factor = u128::from(s.distance) * u128::from(s.dpf);
                let penalty = weight * factor / u128::from(LOAD_MAX);
                let value = weight.saturating_sub(penalty);
                let value = u64::try_from(value).expect("bounded by weight, a u32");
                if s.value > 0 {
                    value.max(1)
                } else {
                    0
                }
            }
            Self::RoundRobin
            | Self::Random
            | Self::WeightedRoundRobin
            | Self::Priority
            | Self::LeastUsed
            | Self::LeastUsedDegradation
            | Self::LeastUsedDegradationDpf
            | Self::LeastUsedDpf
            | Self::PriorityLeastUsed
            | Self::PriorityLeastUsedDegradation
            | Self::PriorityLeastUsedDegradationDpf
            | Self::PriorityLeastUsedDpf => {
                unreachable!("weight called for a policy outside the Weighted family")
            }
        }
    }
}

/// Every policy type the handlespace selects with: the nine of RFC 5356, then RSPLIB's private
/// ones, in that order (tests and benches sweep this list).
pub const SUPPORTED: [PolicyType; 18] = [
    PolicyType::ROUND_ROBIN,
    PolicyType::WEIGHTED_ROUND_ROBIN,
    PolicyType::RANDOM,
    PolicyType::WEIGHTED_RANDOM,
    PolicyType::PRIORITY,
    PolicyType::LEAST_USED,
    PolicyType::LEAST_USED_DEGRADATION,
    PolicyType::PRIORITY_LEAST_USED,
    PolicyType::RANDOMIZED_LEAST_USED,
    PolicyType::RANDOMIZED_PRIORITY_LEAST_USED,
    PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION,
    PolicyType::PRIORITY_LEAST_USED_DEGRADATION,
    PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
    PolicyType::WEIGHTED_RANDOM_DPF,
    PolicyType::LEAST_USED_DPF,
    PolicyType::LEAST_USED_DEGRADATION_DPF,
    PRIORITY_LEAST_USED_DPF,
    PRIORITY_LEAST_USED_DEGRADATION_DPF,
];

/// Whether the handlespace can select with `policy_type` (the nine RFC 5356 policies and RSPLIB's
/// private ones). A registration with any other type is rejected as Invalid Values.
pub fn is_supported(policy_type: PolicyType) -> bool {
    Policy::from_type(policy_type).is_some()
}

/// WRR stride: how far a PE's pass advances per selection. Weight 0 is never in the set.
///
/// Rounded up: with rounding down, w strides of a weight-w PE end just short of one weight-1
/// stride, and the heavier PE would win the tie and take one extra turn in a row.
pub(crate) fn stride(weight: u32) -> u64 {
    assert!(weight > 0);
    STRIDE_UNIT.div_ceil(u64::from(weight))
}

/// A Fenwick (binary indexed) tree over the pool's dense member list: weighted sampling in
/// O(log n), weight changes in O(log n), append and swap-remove in O(log n).
#[derive(Debug, Default)]
pub(crate) struct Fenwick {
    /// `tree[i - 1]` holds the sum of `values` over `(i - lowbit(i), i]` (1-based).
    tree: Vec<u64>,
    values: Vec<u64>,
    total: u64,
}

impl Fenwick {
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn value(&self, position: usize) -> u64 {
        self.values[position]
    }

    pub(crate) fn push(&mut self, value: u64) {
        let i = self.values.len() + 1;
        let low = i & i.wrapping_neg();
        let node = value + self.prefix(i - 1) - self.prefix(i - low);
        self.values.push(value);
        self.tree.push(node);
        self.total += value;
        debug_assert_eq!(self.prefix(self.values.len()), self.total);
    }

    pub(crate) fn set(&mut self, position: usize, value: u64) {
        let old = self.values[position];
        self.values[position] = value;
        // Modular arithmetic is exact here: every true node sum is non-negative and fits.
        let delta = value.wrapping_sub(old);
        self.total = self.total.wrapping_add(delta);
        let mut i = position + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] = self.tree[i - 1].wrapping_add(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Mirrors `Vec::swap_remove` on the member list.
    pub(crate) fn swap_remove(&mut self, position: usize) {
        let last = self.values.len() - 1;
        if position != last {
            self.set(position, self.values[last]);
        }
        // The last node covers only ranges ending at itself, so dropping it leaves the rest exact.
        self.total -= self.values[last];
        self.values.pop();
        self.tree.pop();
    }

    /// The position whose cumulative weight range contains `target`; `target < total`.
    pub(crate) fn find(&self, target: u64) -> usize {
        assert!(target < self.total);
        let len = self.tree.len();
        let mut position = 0;
        let mut remaining = target;
        let mut step = if len == 0 { 0 } else { 1 << (usize::BITS - 1 - len.leading_zeros()) };
        while step > 0 {
            let next = position + step;
            if next <= len && self.tree[next - 1] <= remaining {
                position = next;
                remaining -= self.tree[next - 1];
            }
            step >>= 1;
        }
        assert!(position < len);
        position
    }

    fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0u64;
        while i > 0 {
            sum = sum.wrapping_add(self.tree[i - 1]);
            i &= i - 1;
        }
        sum
    }
}

/// Bits of an ordered entry's second word that hold the element slot; the rest is the sequence.
pub(crate) const SLOT_BITS: u32 = 24;
/// Element slots an ordered index can name; `Limits::pool_elements_max` must not exceed it.
pub(crate) const SLOTS_MAX: u32 = 1 << SLOT_BITS;
/// Sequences are renumbered (compacted to 0..n) before they reach 2^40, leaving room for the
/// sequences one operation consumes (at most `items_per_resolution_max` <= 2^10).
pub(crate) const SEQUENCE_RENUMBER: u64 = (1 << 40) - (1 << 11);

/// An ordered index: (key, sequence << 24 | slot), smallest first. Packing sequence and slot into
/// one word keeps an entry at 16 bytes.
///
/// Each member's key and sequence, what finds its entry in the set, are kept here by the
/// member's position in the pool's member list (in step with it, as the Weighted family's
/// Fenwick tree is), not in the element: only the pools of this family pay for them, and the
/// element slot, held once per PE by the shard and by every read replica, stays 16 bytes
/// smaller.
#[derive(Debug, Default)]
pub(crate) struct Ordered {
    pub(crate) set: BTreeSet<(u64, u64)>,
    /// `(key, sequence)` by member position. A weight-0 WRR member has one, and no entry in
    /// `set`.
    pub(crate) places: Vec<(u64, u64)>,
    pub(crate) sequence_next: u64,
    /// WRR only: the pass a joining PE starts at (the pass of the latest head).
    pub(crate) pass_now: u64,
}

impl Ordered {
    pub(crate) fn next_sequence(&mut self) -> u64 {
        let sequence = self.sequence_next;
        assert!(sequence < 1 << (u64::BITS - SLOT_BITS), "renumbered before overflow");
        self.sequence_next += 1;
        sequence
    }

    /// The key of the member at `position`.
    pub(crate) fn key(&self, position: u32) -> u64 {
        self.places[position as usize].0
    }

    /// Gives the member at `position` (the next one, or one already placed) `key` and a fresh
    /// sequence; enters it into the set if `indexed`.
    pub(crate) fn place(&mut self, position: u32, key: u64, slot: u32, indexed: bool) {
        let place = (key, self.next_sequence());
        match (position as usize).cmp(&self.places.len()) {
            std::cmp::Ordering::Less => self.places[position as usize] = place,
            std::cmp::Ordering::Equal => self.places.push(place),
            std::cmp::Ordering::Greater => unreachable!("members are placed in order"),
        }
        if indexed {
            self.insert(place.0, place.1, slot);
        }
    }

    fn insert(&mut self, key: u64, sequence: u64, slot: u32) {
        assert!(slot < SLOTS_MAX);
        let inserted = self.set.insert((key, sequence << SLOT_BITS | u64::from(slot)));
        assert!(inserted);
    }

    /// Takes the member at `position` out of the set; whether it was there (a weight-0 WRR PE
    /// is not). Its place stays until [`Self::swap_remove`] or the next [`Self::place`].
    pub(crate) fn remove(&mut self, position: u32, slot: u32) -> bool {
        let (key, sequence) = self.places[position as usize];
        self.set.remove(&(key, sequence << SLOT_BITS | u64::from(slot)))
    }

    /// Mirrors `Vec::swap_remove` on the member list.
    pub(crate) fn swap_remove(&mut self, position: u32) {
        self.places.swap_remove(position as usize);
    }

    /// Compacts the sequences to 0..n in the set's order; `position` names each slot's member.
    pub(crate) fn renumber(&mut self, position: impl Fn(u32) -> u32) {
        let entries: Vec<(u64, u32)> =
            self.set.iter().map(|&(key, packed)| (key, unpack(packed))).collect();
        self.set.clear();
        self.sequence_next = 0;
        for (key, slot) in entries {
            let sequence = self.next_sequence();
            self.places[position(slot) as usize].1 = sequence;
            self.insert(key, sequence, slot);
        }
    }

    /// WRR: shifts every pass in the set down by the smallest, keeping the order.
    pub(crate) fn renormalise(&mut self, position: impl Fn(u32) -> u32) {
        let base = self.set.first().map_or(0, |&(pass, _)| pass);
        let entries: Vec<_> = std::mem::take(&mut self.set).into_iter().collect();
        for (pass, packed) in entries {
            self.places[position(unpack(packed)) as usize].0 = pass - base;
            self.set.insert((pass - base, packed));
        }
        self.pass_now -= base.min(self.pass_now);
    }

    /// The element slots in order, smallest key first.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.set.iter().map(|&(_, packed)| unpack(packed))
    }

    /// Whether sequences must be compacted before the next operation.
    pub(crate) fn needs_renumber(&self) -> bool {
        self.sequence_next >= SEQUENCE_RENUMBER
    }

    /// WRR: whether passes must be shifted down before they can overflow.
    pub(crate) fn needs_renormalise(&self) -> bool {
        self.pass_now > PASS_RENORMALISE
    }
}

/// The element slot of a set entry's second word.
fn unpack(packed: u64) -> u32 {
    u32::try_from(packed & u64::from(SLOTS_MAX - 1)).expect("masked to 24 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the Fenwick tree agrees with a plain array under pushes, sets and swap-removes.
    // Method: a fixed pseudo-random sequence, checking `find` against a linear scan.
    #[test]
    fn fenwick_matches_linear_scan() {
        let mut fenwick = Fenwick::default();
        let mut plain: Vec<u64> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..2_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 4 {
                0 | 1 => {
                    fenwick.push(x % 7);
                    plain.push(x % 7);
                }
                2 if !plain.is_empty() => {
                    let p = (x as usize / 4) % plain.len();
                    fenwick.set(p, step % 5);
                    plain[p] = step % 5;
                }
                _ if !plain.is_empty() => {
                    let p = (x as usize / 4) % plain.len();
                    fenwick.swap_remove(p);
                    plain.swap_remove(p);
                }
                _ => {}
            }
            assert_eq!(fenwick.total(), plain.iter().sum::<u64>());
            if fenwick.total() > 0 {
                let target = x % fenwick.total();
                let mut acc = 0;
                let expected = plain.iter().position(|v| {
                    acc += v;
                    acc > target
                });
                assert_eq!(Some(fenwick.find(target)), expected);
            }
        }
    }
}
