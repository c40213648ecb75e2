//! The peer list (RFC 5353 §3.4): every known registrar, the association we reach it on, when
//! it was last heard, and whether it is still monitored.

use std::net::SocketAddr;

use codec::RegistrarId;
use handlespace::Instant;
use std::collections::BTreeMap;

use crate::proto::SessionId;

/// Peers kept at most. A registrar's operational scope has a handful; the bound keeps a
/// hostile stream of invented server ids from growing the table.
pub const PEERS_MAX: usize = 256;

/// What we know of one peer.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The association its messages arrive on and ours leave on, if one is up.
    pub session: Option<SessionId>,
    /// Its ENRP transport (from its Server Information or our configuration).
    pub address: Option<SocketAddr>,
    /// `peer_last_heard` (§4.1).
    pub last_heard: Instant,
    /// Set while a Presence with the reply-required flag is unanswered (§3.4.3): the instant
    /// after which the peer is dead.
    pub probe_deadline: Option<Instant>,
    /// Monitored (§3.5.1 "active"); false once another registrar's takeover arbitration for it
    /// has been acknowledged, or we declared it dead.
    pub active: bool,
    /// The PE checksum it last announced (§3.6.1).
    pub checksum: Option<u16>,
}

/// The peer list, keyed by server id.
#[derive(Debug, Default)]
pub struct Peers {
    by_id: BTreeMap<RegistrarId, Peer>,
}

impl Peers {
    /// A peer by id.
    pub fn get(&self, id: RegistrarId) -> Option<&Peer> {
        self.by_id.get(&id)
    }

    /// A peer by id, mutably.
    pub fn get_mut(&mut self, id: RegistrarId) -> Option<&mut Peer> {
        self.by_id.get_mut(&id)
    }

    /// The peer, added first if it is new (§3.4.1) and the table has room; `None` if full.
    /// Returns whether it was new.
    pub fn hear(&mut self, now: Instant, id: RegistrarId) -> Option<(&mut Peer, bool)> {
        let new = !self.by_id.contains_key(&id);
        if new && self.by_id.len() >= PEERS_MAX {
            return None;
        }
        let peer = self.by_id.entry(id).or_insert_with(|| Peer {
            session: None,
            address: None,
            last_heard: now,
            probe_deadline: None,
            active: true,
            checksum: None,
        });
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.4.3
        //# the value of this variable MUST be updated to the current local time every time a
        //# message of any type (point-to-point or announcement) is received from the
        //# corresponding peer.
        peer.last_heard = now;
        peer.probe_deadline = None;
        Some((peer, new))
    }

    /// Forgets a peer (taken over, §3.5.2).
    pub fn remove(&mut self, id: RegistrarId) -> Option<Peer> {
        self.by_id.remove(&id)
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = (RegistrarId, &Peer)> {
        self.by_id.iter().map(|(id, peer)| (*id, peer))
    }

    /// Every peer, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (RegistrarId, &mut Peer)> {
        self.by_id.iter_mut().map(|(id, peer)| (*id, peer))
    }

    /// Ids of the monitored peers, sorted (for deterministic output).
    pub fn active_ids(&self) -> Vec<RegistrarId> {
        let mut ids: Vec<RegistrarId> =
            self.by_id.iter().filter(|(_, p)| p.active).map(|(id, _)| *id).collect();
        ids.sort_unstable_by_key(|id| id.0);
        ids
    }

    /// Ids of every peer, sorted.
    pub fn ids(&self) -> Vec<RegistrarId> {
        let mut ids: Vec<RegistrarId> = self.by_id.keys().copied().collect();
        ids.sort_unstable_by_key(|id| id.0);
        ids
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no peer.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
