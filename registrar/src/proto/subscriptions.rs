//! Live pool updates (RFC 5352 §2.2.5, the S bit): the pools each local association asked to
//! follow, and the pushes of a pool's new content to them.
//!
//! A subscription lives on the core of the association that asked for it, since only that
//! core can send on it. That core sees every change of the pool: in its own shard when it owns
//! the pool, in its read replica when another core does (the replica follows every change of
//! every other shard, ENRP's included). So a push needs no cross-core message of its own, and
//! a PU hears of a change no later than a resolution at its core would show it.
//!
//! The shard marks a watched pool as touched when a PE joins it, leaves it, or re-registers
//! with other content (a periodic re-registration with the same content pushes nothing).
//! Pushes are made when the caller collects what is to be sent
//! ([`Server::poll_transmit`](super::Server::poll_transmit)), so a burst of changes to one pool
//! in one turn of the core loop is one push per subscriber.

use codec::asap::{HandleResolutionResponse, HandleResolutionResponseRef};
use codec::error::ErrorCause;
use codec::param::CauseInfo;
use codec::PoolHandle;
use handlespace::shard_of;
use hashbrown::HashMap;

use super::asap::operational_error;
use super::convert::overall_policy;
use super::server::{Outgoing, Server};

/// PEs in one push: as many as a resolution may ask for at most
/// ([`crate::config::RESOLUTION_ITEMS_LIMIT`]), so that a push of PEs with many addresses
/// stays one message. A larger pool is pushed as its first ones.
pub(crate) const PUSH_ELEMENTS_MAX: usize = crate::config::RESOLUTION_ITEMS_LIMIT as usize;

/// Pools one association may follow; a subscription beyond it is answered without the A bit
/// (RFC 5352 §2.2.6: "it has resource issues and cannot supply this feature").
pub(crate) const SUBSCRIPTIONS_PER_ASSOC_MAX: usize = 1_024;

/// The subscriptions of one core's associations.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    /// Subscribed local associations by pool, in subscription order.
    by_pool: HashMap<PoolHandle, Vec<u32>>,
    /// The pools each local association follows.
    by_assoc: HashMap<u32, Vec<PoolHandle>>,
}

impl Subscriptions {
    /// Whether `assoc` may follow `pool` (it does already, or has room for one more).
    pub(crate) fn admits(&self, assoc: u32, pool: &PoolHandle) -> bool {
        self.by_assoc
            .get(&assoc)
            .is_none_or(|pools| pools.contains(pool) || pools.len() < SUBSCRIPTIONS_PER_ASSOC_MAX)
    }

    /// `assoc` follows `pool` from now on. True if the pool had no subscriber on this core
    /// before (the shard is to watch it).
    pub(crate) fn add(&mut self, assoc: u32, pool: PoolHandle) -> bool {
        let pools = self.by_assoc.entry(assoc).or_default();
        if pools.contains(&pool) {
            return false;
        }
        pools.push(pool);
        let subscribers = self.by_pool.entry(pool).or_default();
        subscribers.push(assoc);
        subscribers.len() == 1
    }

    /// The associations following `pool`.
    pub(crate) fn subscribers(&self, pool: &PoolHandle) -> &[u32] {
        self.by_pool.get(pool).map_or(&[], Vec::as_slice)
    }

    /// Ends every subscription to `pool` (it is gone: RFC 5352 §2.2.5, no further updates).
    pub(crate) fn end_pool(&mut self, pool: &PoolHandle) {
        for assoc in self.by_pool.remove(pool).unwrap_or_default() {
            if let Some(pools) = self.by_assoc.get_mut(&assoc) {
                pools.retain(|p| p != pool);
                if pools.is_empty() {
                    self.by_assoc.remove(&assoc);
                }
            }
        }
    }

    /// Ends the subscriptions of an association that closed. Returns the pools left with no
    /// subscriber on this core (the shard stops watching them).
    pub(crate) fn end_assoc(&mut self, assoc: u32) -> Vec<PoolHandle> {
        let mut unwatched = Vec::new();
        for pool in self.by_assoc.remove(&assoc).unwrap_or_default() {
            if let Some(subscribers) = self.by_pool.get_mut(&pool) {
                subscribers.retain(|&a| a != assoc);
                if subscribers.is_empty() {
                    self.by_pool.remove(&pool);
                    unwatched.push(pool);
                }
            }
        }
        unwatched
    }

    /// Subscriptions held (the gauge).
    pub(crate) fn len(&self) -> usize {
        self.by_pool.values().map(Vec::len).sum()
    }
}

impl Server {
    /// Local association `assoc` follows `pool` from now on.
    pub(crate) fn subscribe(&mut self, assoc: u32, pool: PoolHandle) {
        if self.subscriptions.add(assoc, pool) {
            self.shard.watched.insert(pool);
        }
        tracing::debug!(assoc, %pool, "pool update subscription");
    }

    /// A local association ended: so do its subscriptions.
    pub(crate) fn unsubscribe(&mut self, assoc: u32) {
        for pool in self.subscriptions.end_assoc(assoc) {
            self.shard.watched.remove(&pool);
        }
    }

    /// Pushes the current content of every touched pool to its subscribers: the whole pool
    /// (up to [`PUSH_ELEMENTS_MAX`] PEs) with the A bit, or, for a pool that is gone, Unknown
    /// Pool Handle, which ends its subscriptions (RFC 5352 §2.2.5).
    pub(crate) fn push_pool_updates(&mut self) {
        let mut touched = std::mem::take(&mut self.shard.touched);
        touched.sort_unstable();
        touched.dedup();
        for pool_handle in touched {
            let subscribers = self.subscriptions.subscribers(&pool_handle);
            if subscribers.is_empty() {
                continue;
            }
            let handlespace = if shard_of(&pool_handle, self.config.cores) == self.config.core {
                &self.shard.handlespace
            } else {
                self.shard.replica.as_ref().expect("a remote pool is followed in the replica")
            };
            let mut bytes = self.spare.pop().unwrap_or_default();
            let gone = match handlespace.pool(&pool_handle) {
                Some(pool) => {
                    let policy = overall_policy(pool.policy_type());
                    let response = HandleResolutionResponseRef {
                        accept_updates: true,
                        pool_handle: &pool_handle,
                        overall_policy: policy.as_ref(),
                        pool_elements: &[],
                    };
                    let elements = pool.elements().take(PUSH_ELEMENTS_MAX).map(|e| (e, e.home()));
                    response.emit_with_encoded(&mut bytes, elements);
                    false
                }
                None => {
                    let code = ErrorCause::UNKNOWN_POOL_HANDLE;
                    let response = HandleResolutionResponse {
                        accept_updates: false,
                        pool_handle,
                        overall_policy: None,
                        pool_elements: Vec::new(),
                        error: Some(operational_error(code, CauseInfo::None)),
                    };
                    bytes = response.emit_to_vec();
                    true
                }
            };
            for &assoc in subscribers {
                self.transmit.push_back(Outgoing { assoc, bytes: bytes.clone() });
                self.stats.subscription_pushes += 1;
            }
            tracing::trace!(pool = %pool_handle, gone, "pool update pushed");
            if gone {
                self.subscriptions.end_pool(&pool_handle);
                self.shard.watched.remove(&pool_handle);
            }
            self.recycle(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &[u8]) -> PoolHandle {
        PoolHandle::new(name).unwrap()
    }

    #[test]
    fn the_first_subscriber_of_a_pool_makes_it_watched_and_the_last_to_leave_unwatches_it() {
        let mut s = Subscriptions::default();
        assert!(s.add(1, pool(b"a")));
        assert!(!s.add(2, pool(b"a")));
        assert!(!s.add(1, pool(b"a")), "a second subscription of one association is the first");
        assert_eq!(s.subscribers(&pool(b"a")), &[1, 2]);
        assert!(s.end_assoc(1).is_empty());
        assert_eq!(s.end_assoc(2), vec![pool(b"a")]);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn an_association_follows_at_most_the_bound_of_pools() {
        let mut s = Subscriptions::default();
        for i in 0..SUBSCRIPTIONS_PER_ASSOC_MAX {
            let name = format!("p{i}");
            assert!(s.admits(7, &pool(name.as_bytes())));
            s.add(7, pool(name.as_bytes()));
        }
        assert!(!s.admits(7, &pool(b"one more")));
        assert!(s.admits(7, &pool(b"p0")), "one it follows already is admitted again");
        assert!(s.admits(8, &pool(b"one more")));
    }

    #[test]
    fn a_pool_that_ends_leaves_no_trace() {
        let mut s = Subscriptions::default();
        s.add(1, pool(b"a"));
        s.add(1, pool(b"b"));
        s.end_pool(&pool(b"a"));
        assert!(s.subscribers(&pool(b"a")).is_empty());
        assert_eq!(s.end_assoc(1), vec![pool(b"b")]);
        assert!(s.by_assoc.is_empty() && s.by_pool.is_empty());
    }
}
