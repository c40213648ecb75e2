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
    /// Local associations that carried an ASAP Registration: PEs, the ones a drain hands off.
    registering: HashSet<u32>,
    /// Local associations closed by a drain (see [`Sessions::hand_off`]): when they end, their
    /// PEs stay until a peer re-homes them or their keep-alives fail.
    handed_off: HashSet<u32>,
}

impl Sessions {
    /// A local association came up.
    pub(crate) fn open(&mut self, assoc: u32, peer: SocketAddr) {
        self.peers.insert(assoc, peer);
    }

    /// A local association ended; false if it was not known (already closed). The second
    /// value: whether it carried ENRP.
    pub(crate) fn close(&mut self, assoc: u32) -> (bool, bool) {
        self.registering.remove(&assoc);
        (self.peers.remove(&assoc).is_some(), self.enrp.remove(&assoc))
    }

    /// Records that a local association carried a Registration (a PE's).
    pub(crate) fn mark_registering(&mut self, assoc: u32) {
        if self.peers.contains_key(&assoc) {
            self.registering.insert(assoc);
        }
    }

    /// A drain: the live local associations that carried a Registration and no ENRP, in
    /// order, each marked so that its end removes nothing ([`Sessions::take_handed_off`]).
    pub(crate) fn hand_off(&mut self) -> Vec<u32> {
        let mut out: Vec<u32> =
            self.registering.iter().copied().filter(|a| !self.enrp.contains(a)).collect();
        out.sort_unstable();
        self.handed_off.extend(out.iter().copied());
        out
    }

    /// Whether `assoc` was handed off by a drain (forgotten here).
    pub(crate) fn take_handed_off(&mut self, assoc: u32) -> bool {
        self.handed_off.remove(&assoc)
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

/// Associations this core opened to PEs' ASAP endpoints, for keep-alives to PEs no association
/// here registered (taken over from a failed peer, RFC 5353 §3.5.2), by the PE's address.
#[derive(Debug, Default)]
pub(crate) struct PeLinks {
    by_address: HashMap<SocketAddr, PeLink>,
    by_assoc: HashMap<u32, SocketAddr>,
    connects: std::collections::VecDeque<SocketAddr>,
}

#[derive(Debug, Default)]
struct PeLink {
    /// Set once the association is up.
    up: Option<u32>,
    /// Keep-alives waiting for it to come up.
    waiting: Vec<Vec<u8>>,
}

/// Associations to PEs at most per core, and keep-alives queued per association: a takeover
/// of a large peer re-homes many PEs, and each needs only its next keep-alive through.
const PE_LINKS_MAX: usize = 4_096;
const PE_LINK_WAITING_MAX: usize = 64;

impl PeLinks {
    /// Queues `bytes` for the PE at `address`: on its association if it is up, behind it if it
    /// is starting, or on a new one. False when the bounds are reached (the keep-alive is lost).
    pub(crate) fn send(&mut self, address: SocketAddr, bytes: Vec<u8>) -> bool {
        if !self.by_address.contains_key(&address) {
            if self.by_address.len() >= PE_LINKS_MAX {
                return false;
            }
            self.by_address.insert(address, PeLink::default());
            self.connects.push_back(address);
        }
        let link = self.by_address.get_mut(&address).expect("inserted above");
        if link.waiting.len() >= PE_LINK_WAITING_MAX {
            return false;
        }
        link.waiting.push(bytes);
        true
    }

    /// The next PE address to open an association to.
    pub(crate) fn poll_connect(&mut self) -> Option<SocketAddr> {
        self.connects.pop_front()
    }

    /// The association opened for `address`, or `None` if it could not be started (what
    /// waited for it is dropped and counted by the caller: returned).
    pub(crate) fn connecting(&mut self, address: SocketAddr, assoc: Option<u32>) -> usize {
        match assoc {
            Some(assoc) => {
                self.by_assoc.insert(assoc, address);
                0
            }
            None => self.by_address.remove(&address).map_or(0, |l| l.waiting.len()),
        }
    }

    /// An association came up: if it is one of ours, what waited for it, to send on it.
    pub(crate) fn up(&mut self, assoc: u32) -> Vec<Vec<u8>> {
        let Some(address) = self.by_assoc.get(&assoc) else { return Vec::new() };
        let Some(link) = self.by_address.get_mut(address) else { return Vec::new() };
        link.up = Some(assoc);
        std::mem::take(&mut link.waiting)
    }

    /// Moves what waits on links that are up into `out` (association, bytes).
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<(u32, Vec<u8>)>) {
        for link in self.by_address.values_mut() {
            if let Some(assoc) = link.up {
                out.extend(link.waiting.drain(..).map(|b| (assoc, b)));
            }
        }
    }

    /// An association ended: forget the link (the next keep-alive opens a new one).
    pub(crate) fn closed(&mut self, assoc: u32) {
        if let Some(address) = self.by_assoc.remove(&assoc) {
            self.by_address.remove(&address);
        }
    }
}
