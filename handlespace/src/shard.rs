//! Sharding: which core owns a pool, and a set of per-shard handlespaces with a merged view.

use codec::{PoolHandle, RegistrarId};

use crate::checksum::ChecksumAccumulator;
use crate::handlespace::{Handlespace, PoolView};
use crate::limits::Config;

/// The shard that owns `pool_handle`, out of `shards`.
///
/// A pure, stable function (FNV-1a, 64 bit, over the handle bytes): the same handle maps to the
/// same shard in every process and every run, so cross-core forwarding and dumps agree. Not keyed:
/// a peer could aim many pools at one shard, which only costs balance, and the per-shard
/// [`Limits`](crate::Limits) still hold.
pub fn shard_of(pool_handle: &PoolHandle, shards: u16) -> u16 {
    assert!(shards > 0, "at least one shard");
    if shards == 1 {
        return 0; // one core: nothing to route, so no hash on the hot path
    }
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in pool_handle.as_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    u16::try_from(hash % u64::from(shards)).expect("less than shards, a u16")
}

/// One handlespace per shard. On the registrar each core owns one shard and this type is only
/// assembled for tests and dumps; it exists so that both use the same routing.
#[derive(Debug)]
pub struct ShardedHandlespace {
    shards: Vec<Handlespace>,
}

impl ShardedHandlespace {
    /// `shards` empty handlespaces, each with `config` (limits are per shard).
    pub fn new(own: RegistrarId, config: Config, shards: u16) -> Self {
        assert!(shards > 0, "at least one shard");
        Self { shards: (0..shards).map(|_| Handlespace::new(own, config)).collect() }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> u16 {
        u16::try_from(self.shards.len()).expect("built from a u16")
    }

    /// Shard `index`.
    pub fn shard(&self, index: u16) -> &Handlespace {
        &self.shards[usize::from(index)]
    }

    /// Shard `index`, mutably.
    pub fn shard_mut(&mut self, index: u16) -> &mut Handlespace {
        &mut self.shards[usize::from(index)]
    }

    /// The shard owning `pool_handle`, mutably.
    pub fn for_handle_mut(&mut self, pool_handle: &PoolHandle) -> &mut Handlespace {
        let index = shard_of(pool_handle, self.shard_count());
        self.shard_mut(index)
    }

    /// The shard owning `pool_handle`.
    pub fn for_handle(&self, pool_handle: &PoolHandle) -> &Handlespace {
        self.shard(shard_of(pool_handle, self.shard_count()))
    }

    /// Pool elements in all shards.
    pub fn element_count(&self) -> u64 {
        self.shards.iter().map(|shard| u64::from(shard.element_count())).sum()
    }

    /// Pools in all shards.
    pub fn pool_count(&self) -> u64 {
        self.shards.iter().map(|shard| u64::from(shard.pool_count())).sum()
    }

    /// The PE checksum of `registrar` over all shards: the one's complement sum is associative,
    /// so merging per-shard accumulators equals computing over the whole handlespace.
    pub fn pe_checksum(&self, registrar: RegistrarId) -> u16 {
        self.shards
            .iter()
            .fold(ChecksumAccumulator::EMPTY, |sum, shard| {
                sum.merge(shard.checksum_accumulator(registrar))
            })
            .finish()
    }

    /// Every pool of every shard, sorted by pool handle: the merged view for dumps.
    pub fn pools_sorted(&self) -> Vec<PoolView<'_>> {
        let mut pools: Vec<PoolView<'_>> =
            self.shards.iter().flat_map(|shard| shard.pools()).collect();
        pools.sort_by(|a, b| a.handle().as_bytes().cmp(b.handle().as_bytes()));
        pools
    }
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: shard_of is stable across processes (a fixed value pins the hash) and in range.
    // Method: known FNV-1a vectors, and a sweep of shard counts.
    #[test]
    fn shard_of_is_stable_and_in_range() {
        let handle = PoolHandle::new(b"a").unwrap();
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(shard_of(&handle, u16::MAX), (0xaf63_dc4c_8601_ec8c_u64 % 65_535) as u16);
        for shards in 1..64 {
            assert!(shard_of(&handle, shards) < shards);
        }
    }
}
