//! The associations of one core and the PEs registered over them, and the masquerade rule
//! (RFC 5355 §3.1) that ties a PE to the association that registered it.

use std::net::SocketAddr;

use codec::{PoolElementId, PoolHandle};
use handlespace::Handlespace;
use hashbrown::{HashMap, HashSet};

use super::cross_core::SessionId;

/// Live local associations, and this shard's PEs by the session (of any core) that registered
/// them, so that they can be dropped when it ends.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    /// Primary peer address of each live local association.
    peers: HashMap<u32, SocketAddr>,
    /// PEs of this core's shard by the session that registered them.
    by_session: HashMap<SessionId, HashSet<(PoolHandle, PoolElementId)>>,
    /// Local associations that carried ENRP (the ENRP core hears when they end).
    enrp: HashSet<u32>,
}

impl Sessions {
    /// A local association came up.
    pub(crate) fn open(&mut self, assoc: u32, peer: SocketAddr) {
        self.peers.insert(assoc, peer);
    }

    /// A local association ended; false if it was not known (already closed). The second
    /// value: whether it carried ENRP.
    pub(crate) fn close(&mut self, assoc: u32) -> (bool, bool) {
        (self.peers.remove(&assoc).is_some(), self.enrp.remove(&assoc))
    }

    /// Records that a local association carries ENRP.
    pub(crate) fn mark_enrp(&mut self, assoc: u32) {
        self.enrp.insert(assoc);
    }

    /// The primary peer address of a local association (unspecified if it is gone).
    pub(crate) fn peer(&self, assoc: u32) -> SocketAddr {
        self.peers.get(&assoc).copied().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Records that `session` registered a PE of this shard.
    pub(crate) fn link(&mut self, session: SessionId, pool_handle: PoolHandle, id: PoolElementId) {
        self.by_session.entry(session).or_default().insert((pool_handle, id));
    }

    /// Forgets that `session` registered the PE (it left, or another session took it).
    pub(crate) fn unlink(
        &mut self,
        session: SessionId,
        pool_handle: PoolHandle,
        id: PoolElementId,
    ) {
        if let Some(set) = self.by_session.get_mut(&session) {
            set.remove(&(pool_handle, id));
            if set.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    /// The PEs of this shard that `session` registered, forgotten here.
    pub(crate) fn take(
        &mut self,
        session: SessionId,
    ) -> Option<HashSet<(PoolHandle, PoolElementId)>> {
        self.by_session.remove(&session)
    }

    /// The masquerade rule (RFC 5355 §3.1): only the session that registered a PE may change
    /// it, or a session whose peer address is one of the PE's registered transport addresses
    /// (the same host, e.g. after its association restarted).
    pub(crate) fn may_modify(
        handlespace: &Handlespace,
        session: SessionId,
        peer: SocketAddr,
        pool_handle: &PoolHandle,
        id: PoolElementId,
    ) -> bool {
        let Some(element) = handlespace.element(pool_handle, id) else { return true };
        element.registrator() == session.to_u64() || element.addresses().contains(&peer.ip())
    }
}
