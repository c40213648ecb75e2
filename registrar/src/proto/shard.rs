//! One core's handlespace shard and its read replica of the other cores' shards. Every change
//! to the shard is published once, as a [`ShardChange`], and consumed by whoever needs it: the
//! other cores' replicas and, for the PEs this registrar owns, ENRP Handle Updates (quinn's
//! `EndpointEvent` shape; REVIEW.md §3).

use std::collections::VecDeque;

use codec::{PoolElementId, PoolHandle, RegistrarId};
use handlespace::{
    Handlespace, Instant, Registered, Registration as HsRegistration, RegistrationError, Removed,
};
use hashbrown::HashSet;

use super::cross_core::ReplicaUpdate;

/// One change to a core's shard, in the order it happened.
#[derive(Clone, Debug)]
pub enum ShardChange {
    /// A PE was registered or re-registered (from ASAP, or from an ENRP peer).
    Upserted(Box<HsRegistration>),
    /// A PE left the shard (deregistration, timeout, expiry, report, session end, peer update).
    Removed {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        id: PoolElementId,
        /// Its home registrar when it left.
        home: RegistrarId,
        /// Its encoded Pool Element parameter, for a PE this registrar announces (its own, with
        /// ENRP on): a Handle Update DEL_PE carries it (§3.3.2). Nobody else reads it, and the
        /// element may have kept only its fields, so it is made only then.
        wire: Option<handlespace::Wire>,
    },
    /// Every PE homed at `source` moved to `target` (ENRP takeover).
    TakenOver {
        /// The registrar taken over.
        source: RegistrarId,
        /// Its successor.
        target: RegistrarId,
    },
}

impl ShardChange {
    /// The same change in the replicas' vocabulary.
    pub(crate) fn to_replica(&self) -> ReplicaUpdate {
        match self {
            Self::Upserted(registration) => ReplicaUpdate::Upsert(registration.clone()),
            Self::Removed { pool_handle, id, .. } => {
                ReplicaUpdate::Remove { pool_handle: *pool_handle, id: *id }
            }
            Self::TakenOver { source, target } => {
                ReplicaUpdate::TakeOver { source: *source, target: *target }
            }
        }
    }
}

/// A core's shard, its replica, and the changes not yet published.
#[derive(Debug)]
pub(crate) struct Shard {
    /// The pools this core owns (`shard_of(pool_handle) == core`); only this core writes them.
    pub(crate) handlespace: Handlespace,
    /// Read replica of every other core's shard: no timers, no sessions; written only by
    /// [`ReplicaUpdate`]s from the owners.
    pub(crate) replica: Option<Handlespace>,
    /// Pools the replica could not hold in full (its limits): their resolutions are forwarded.
    replica_skipped: HashSet<PoolHandle>,
    /// Whether anybody consumes changes (replicas or ENRP); if not, none are recorded.
    publish: bool,
    /// Whether ENRP announces this registrar's own PEs (`own`'s), whose removals then carry
    /// their parameter.
    announce: bool,
    own: RegistrarId,
    changes: VecDeque<ShardChange>,
    /// Pools a local association subscribed to (`subscriptions.rs`), in the shard or the
    /// replica; empty on a core nobody subscribed at, which then pays nothing.
    pub(crate) watched: HashSet<PoolHandle>,
    /// Watched pools whose content changed since the last push, possibly repeated.
    pub(crate) touched: Vec<PoolHandle>,
}

impl Shard {
    /// An empty shard of registrar `own`, with a replica if `replica`; records changes if
    /// either that or `announce`: ENRP runs (on this core or another), and its Handle Updates
    /// announce `own`'s PEs.
    pub(crate) fn new(
        own: RegistrarId,
        config: handlespace::Config,
        replica: bool,
        announce: bool,
    ) -> Self {
        // The replica's PEs are homed at this registrar, but its `own` is the id no registrar
        // has (RFC 5353 §2.1), so that it arms no keep-alive; and replicated PEs have an
        // infinite life, so that it arms no timer at all: only the owner expires them.
        Self {
            handlespace: Handlespace::new(own, config),
            replica: replica.then(|| Handlespace::new(RegistrarId(0), config)),
            replica_skipped: HashSet::new(),
            publish: announce || replica,
            announce,
            own,
            changes: VecDeque::new(),
            watched: HashSet::new(),
            touched: Vec::new(),
        }
    }

    /// Registers or re-registers a PE in the shard, and records the change.
    pub(crate) fn register(
        &mut self,
        now: Instant,
        registration: HsRegistration,
    ) -> Result<Registered, RegistrationError> {
        let published = self.publish.then(|| {
            // Infinite in the copies: only the owner expires a PE (see `new`).
            let mut copy = registration.clone();
            copy.lifetime = handlespace::Duration::INFINITE;
            copy.registrator = 0;
            copy
        });
        let watched = self.watched.contains(&registration.pool_handle);
        let before = watched.then(|| fingerprint(&self.handlespace, &registration));
        let pool_handle = registration.pool_handle;
        let id = registration.id;
        let outcome = self.handlespace.register(now, registration)?;
        if let Some(before) = before {
            self.touch_if_changed(pool_handle, id, before, false);
        }
        if let Some(copy) = published {
            self.changes.push_back(ShardChange::Upserted(Box::new(copy)));
        }
        Ok(outcome)
    }

    /// Removes a PE from the shard, and records the change.
    pub(crate) fn deregister(
        &mut self,
        pool_handle: &PoolHandle,
        id: PoolElementId,
    ) -> Option<Removed> {
        let removed = self.handlespace.deregister(pool_handle, id)?;
        self.removed(&removed);
        Some(removed)
    }

    /// Records that a PE left the shard by itself (a timer or an unreachable report).
    pub(crate) fn removed(&mut self, removed: &Removed) {
        if self.watched.contains(&removed.pool_handle) {
            self.touched.push(removed.pool_handle);
        }
        if self.publish {
            let (pool_handle, id, home) = (removed.pool_handle, removed.id, removed.home);
            let announced = self.announce && home == self.own;
            let wire = announced.then(|| removed.element.to_wire());
            self.changes.push_back(ShardChange::Removed { pool_handle, id, home, wire });
        }
    }

    /// Moves every PE of `source` to `target`, and records the change. Returns PEs moved.
    pub(crate) fn take_over(
        &mut self,
        now: Instant,
        source: RegistrarId,
        target: RegistrarId,
    ) -> u32 {
        let moved = self.handlespace.take_over(now, source, target);
        if moved > 0 {
            // The PEs' home registrar is part of what a push carries.
            self.touched.extend(self.watched.iter().copied());
        }
        if self.publish && moved > 0 {
            self.changes.push_back(ShardChange::TakenOver { source, target });
        }
        moved
    }

    /// The oldest change not yet published.
    pub(crate) fn poll_change(&mut self) -> Option<ShardChange> {
        self.changes.pop_front()
    }

    /// Applies another core's change to the read replica. The owner applied the same changes
    /// in the same order, so each one succeeds unless the replica's own limits are reached;
    /// then the pool leaves the replica for good and its resolutions go to the owner.
    pub(crate) fn apply_replica(&mut self, now: Instant, update: ReplicaUpdate) {
        let Some(replica) = self.replica.as_mut() else {
            return;
        };
        match update {
            ReplicaUpdate::Upsert(registration) => {
                let pool_handle = registration.pool_handle;
                if self.replica_skipped.contains(&pool_handle) {
                    return;
                }
                let watched = self.watched.contains(&pool_handle);
                let before = watched.then(|| fingerprint(replica, &registration));
                let id = registration.id;
                let result = replica.register(now, *registration);
                if let Some(before) = before {
                    self.touch_if_changed(pool_handle, id, before, true);
                }
                let replica = self.replica.as_mut().expect("checked above");
                if let Err(error) = result {
                    tracing::warn!(pool = %pool_handle, ?error, "pool left the read replica");
                    let ids: Vec<PoolElementId> = replica
                        .pool(&pool_handle)
                        .map(|pool| pool.elements().map(|e| e.id()).collect())
                        .unwrap_or_default();
                    for id in ids {
                        replica.deregister(&pool_handle, id);
                    }
                    self.replica_skipped.insert(pool_handle);
                }
            }
            ReplicaUpdate::Remove { pool_handle, id } => {
                if replica.deregister(&pool_handle, id).is_some()
                    && self.watched.contains(&pool_handle)
                {
                    self.touched.push(pool_handle);
                }
            }
            ReplicaUpdate::TakeOver { source, target } => {
                if replica.take_over(now, source, target) > 0 {
                    self.touched.extend(self.watched.iter().copied());
                }
            }
        }
    }
}

/// What a subscriber sees of one PE: its encoded parameter and its home (`None`: absent).
type Fingerprint = Option<(Vec<u8>, RegistrarId)>;

fn fingerprint(handlespace: &Handlespace, registration: &HsRegistration) -> Fingerprint {
    let element = handlespace.element(&registration.pool_handle, registration.id)?;
    Some((element.wire().into_owned(), element.home()))
}

impl Shard {
    /// Marks a watched pool touched if the PE's parameter or home differs from `before`.
    fn touch_if_changed(
        &mut self,
        pool_handle: PoolHandle,
        id: PoolElementId,
        before: Fingerprint,
        in_replica: bool,
    ) {
        let handlespace = match (in_replica, self.replica.as_ref()) {
            (true, Some(replica)) => replica,
            _ => &self.handlespace,
        };
        let after = handlespace.element(&pool_handle, id).map(|e| (e.wire(), e.home()));
        let same = match (&before, after) {
            (Some((wire, home)), Some((now, now_home))) => wire[..] == now[..] && *home == now_home,
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.touched.push(pool_handle);
        }
    }
}
