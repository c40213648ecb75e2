//! The RFC 5353 §3.6.2 PE checksum, kept incrementally.
//!
//! Each PE contributes the byte block "pool handle, zero-padded to a 32-bit boundary, then the PE
//! identifier (4 octets, network order)"; the checksum is the RFC 1071 Internet checksum over the
//! blocks of all PEs a registrar owns. Every block is a multiple of 4 bytes long, so each one
//! starts on a 16-bit word boundary and the one's complement sum over the concatenation equals the
//! sum of the per-block word sums. We therefore keep, per registrar, the plain (unfolded) u64 sum
//! of 16-bit big-endian words: adding or removing a PE is one integer add or subtract, exact and
//! order-independent, and [`ChecksumAccumulator::finish`] folds the carries and complements.
//!
//! A u64 cannot overflow: a block has at most 17 words of at most 0xffff, so 2^64 / (17 x 2^16)
//! is about 1.6 x 10^13 PEs.
//!
//! Byte order: the result is the u16 whose big-endian bytes are the RFC 1071 checksum, so the codec
//! writes it with `to_be_bytes`. RSPLIB sums host-order words and is therefore byte-swapped on
//! little-endian hosts relative to this; interoperating registrars compare checksums only among
//! themselves, so the registrar may need a compatibility switch (see the crate report).

use codec::{PoolElementId, PoolHandle};

/// A running, unfolded one's complement sum of PE blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumAccumulator(u64);

impl ChecksumAccumulator {
    /// The sum over no PEs.
    pub const EMPTY: Self = Self(0);

    /// Adds one PE's block.
    pub fn add(&mut self, handle: &PoolHandle, id: PoolElementId) {
        self.0 += element_sum(handle_sum(handle.as_bytes()), id);
    }

    /// The sum over the union of two disjoint PE sets (e.g. two shards).
    pub fn merge(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }

    /// The 16-bit PE checksum: carries folded, then complemented (RFC 1071).
    pub fn finish(self) -> u16 {
        let mut sum = self.0;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !u16::try_from(sum).expect("folded to 16 bits by the loop above")
    }

    pub(crate) fn add_raw(&mut self, sum: u64) {
        self.0 += sum;
    }

    pub(crate) fn sub_raw(&mut self, sum: u64) {
        assert!(self.0 >= sum, "removing a PE that was never added to this accumulator");
        self.0 -= sum;
    }
}

/// Sum of the big-endian 16-bit words of a pool handle, zero-padded.
pub(crate) fn handle_sum(handle: &[u8]) -> u32 {
    handle
        .chunks(2)
        .map(|pair| u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0)))
        .sum()
}

/// Sum of one PE block's words, given its pool's [`handle_sum`].
pub(crate) fn element_sum(handle_sum: u32, id: PoolElementId) -> u64 {
    u64::from(handle_sum) + u64::from(id.0 >> 16) + u64::from(id.0 & 0xffff)
}

/// The checksum computed literally as RFC 5353 §3.6.2 describes: build the byte blocks, run the
/// RFC 1071 algorithm over their concatenation. For tests and for re-synchronisation checks.
pub fn pe_checksum_from_scratch<'a>(
    blocks: impl IntoIterator<Item = (&'a PoolHandle, PoolElementId)>,
) -> u16 {
    let mut bytes = Vec::new();
    for (handle, id) in blocks {
        bytes.extend_from_slice(handle.as_bytes());
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&id.0.to_be_bytes());
    }
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum & 0xffff).expect("masked to 16 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the incremental accumulator equals the literal RFC computation, including handles of
    // odd length (padding) and removal.
    // Method: add blocks in one order, remove some, compare with the from-scratch byte version.
    #[test]
    fn accumulator_matches_literal_rfc_1071() {
        let handles: Vec<PoolHandle> = [&b"a"[..], b"ab", b"abc", b"abcd", b"\xff\xff\xff"]
            .iter()
            .map(|h| PoolHandle::new(h).unwrap())
            .collect();
        let mut all = Vec::new();
        let mut acc = ChecksumAccumulator::EMPTY;
        for (i, h) in handles.iter().enumerate() {
            for id in [0u32, 1, 0xffff_ffff, 0x1234_5678 + i as u32] {
                acc.add(h, PoolElementId(id));
                all.push((h, PoolElementId(id)));
            }
        }
        assert_eq!(acc.finish(), pe_checksum_from_scratch(all.iter().copied()));
        let (h, id) = all.pop().unwrap();
        acc.sub_raw(element_sum(handle_sum(h.as_bytes()), id));
        assert_eq!(acc.finish(), pe_checksum_from_scratch(all.iter().copied()));
        assert_eq!(ChecksumAccumulator::EMPTY.finish(), 0xffff);
    }
}
