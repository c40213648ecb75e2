//! The associations of one core and the PEs registered over them, and the masquerade rule
//! (RFC 5355 §3.1) that ties a PE to the association that registered it.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use codec::{PoolElementId, PoolHandle};
use handlespace::Handlespace;
use hashbrown::hash_map::Entry;
use hashbrown::{HashMap, HashSet};

use super::cross_core::SessionId;

/// Live local associations, and this shard's PEs by the session (of any core) that registered
/// them, so that they can be dropped when it ends.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    /// Primary peer address of each live local association, and whether it carried an ASAP
    /// Registration (a PE's: the associations a drain hands off).
    peers: HashMap<u32, Peer>,
    /// The IPv6 peer addresses `peers` points at, by index.
    peers_v6: Slots<SocketAddrV6>,
    /// PEs of this core's shard by the session that registered them.
    by_session: HashMap<SessionId, SessionElements>,
    /// The sets of two or more PEs that `by_session` entries point at, by index.
    sets: Slots<Members>,
    /// The pools `by_session` names.
    pool_keys: PoolKeys,
    /// Local associations that carried ENRP (the ENRP core hears when they end).
    enrp: HashSet<u32>,
    /// Local associations closed by a drain (see [`Sessions::hand_off`]): when they end, their
    /// PEs stay until a peer re-homes them or their keep-alives fail.
    handed_off: HashSet<u32>,
}

impl Sessions {
    /// A local association came up.
    pub(crate) fn open(&mut self, assoc: u32, peer: SocketAddr) {
        let record = match peer {
            SocketAddr::V4(addr) => Peer::v4(addr),
            SocketAddr::V6(addr) => Peer::v6(self.peers_v6.insert(addr), addr.port()),
        };
        if let Some(old) = self.peers.insert(assoc, record) {
            self.forget_peer(old);
        }
    }

    /// A local association ended; false if it was not known (already closed). The second
    /// value: whether it carried ENRP.
    pub(crate) fn close(&mut self, assoc: u32) -> (bool, bool) {
        let known = self.peers.remove(&assoc).map(|old| self.forget_peer(old)).is_some();
        (known, self.enrp.remove(&assoc))
    }

    /// Frees what a removed peer record pointed at.
    fn forget_peer(&mut self, peer: Peer) {
        if let Some(index) = peer.v6_index() {
            self.peers_v6.remove(index);
        }
    }

    /// Records that a local association carried a Registration (a PE's).
    pub(crate) fn mark_registering(&mut self, assoc: u32) {
        if let Some(peer) = self.peers.get_mut(&assoc) {
            peer.mark_registering();
        }
    }

    /// A drain: the live local associations that carried a Registration and no ENRP, in
    /// order, each marked so that its end removes nothing ([`Sessions::take_handed_off`]).
    pub(crate) fn hand_off(&mut self) -> Vec<u32> {
        let mut out: Vec<u32> = (self.peers.iter())
            .filter(|(assoc, peer)| peer.registering() && !self.enrp.contains(*assoc))
            .map(|(&assoc, _)| assoc)
            .collect();
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
        let Some(peer) = self.peers.get(&assoc) else { return SocketAddr::from(([0, 0, 0, 0], 0)) };
        match peer.v6_index() {
            None => SocketAddr::V4(peer.addr_v4()),
            Some(index) => SocketAddr::V6(*self.peers_v6.get(index)),
        }
    }

    /// Records that `session` registered a PE of this shard.
    pub(crate) fn link(&mut self, session: SessionId, pool_handle: PoolHandle, id: PoolElementId) {
        let key = self.pool_keys.acquire(pool_handle);
        let added = match self.by_session.entry(session) {
            Entry::Vacant(vacant) => {
                vacant.insert(SessionElements::one((key, id)));
                true
            }
            Entry::Occupied(mut occupied) => {
                let elements = occupied.get_mut();
                match elements.set() {
                    Some(set) => self.sets.get_mut(set).insert((key, id)),
                    None if elements.only() == (key, id) => false,
                    None => {
                        let members = Members::Few(vec![elements.only(), (key, id)]);
                        *elements = SessionElements::many(self.sets.insert(members));
                        true
                    }
                }
            }
        };
        if !added {
            // Linked already: the entry holds its reference from then.
            self.pool_keys.release(key);
        }
    }

    /// Forgets that `session` registered the PE (it left, or another session took it).
    pub(crate) fn unlink(
        &mut self,
        session: SessionId,
        pool_handle: PoolHandle,
        id: PoolElementId,
    ) {
        let Some(key) = self.pool_keys.get(&pool_handle) else { return };
        let Some(elements) = self.by_session.get_mut(&session) else { return };
        match elements.set() {
            None if elements.only() == (key, id) => {
                self.by_session.remove(&session);
            }
            None => return,
            Some(set) => {
                let members = self.sets.get_mut(set);
                if !members.remove(&(key, id)) {
                    return;
                }
                assert!(!members.is_empty(), "a set holds two or more");
                if members.len() == 1 {
                    let only = self.sets.remove(set).into_vec()[0];
                    *elements = SessionElements::one(only);
                }
            }
        }
        self.pool_keys.release(key);
    }

    /// The PEs of this shard that `session` registered, forgotten here, in no order.
    pub(crate) fn take(&mut self, session: SessionId) -> Option<Vec<(PoolHandle, PoolElementId)>> {
        let elements = self.by_session.remove(&session)?;
        let elements = match elements.set() {
            None => vec![elements.only()],
            Some(set) => self.sets.remove(set).into_vec(),
        };
        let taken = elements
            .into_iter()
            .map(|(key, id)| {
                let pool_handle = self.pool_keys.handle(key);
                self.pool_keys.release(key);
                (pool_handle, id)
            })
            .collect();
        Some(taken)
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

/// The PEs of a session of two or more: a vector while there are few (a scan of at most
/// [`Members::FEW_MAX`] 8-byte entries), a hash set beyond. Sessions that carry several PEs
/// mostly carry a few dozen (RSPLIB's library and loadgen put up to 64 on one association),
/// and a hash set of 64 entries is 128 buckets, 18 bytes per PE where the vector takes 8.
#[derive(Debug)]
enum Members {
    Few(Vec<(PoolKey, PoolElementId)>),
    Many(HashSet<(PoolKey, PoolElementId)>),
}

impl Members {
    /// The most a vector holds; one more and the members move to a hash set, for good. Small
    /// in the unit tests, so that their model test crosses it.
    const FEW_MAX: usize = if cfg!(test) { 4 } else { 128 };

    /// Adds `member`; whether it was not there.
    fn insert(&mut self, member: (PoolKey, PoolElementId)) -> bool {
        match self {
            Self::Few(few) if few.contains(&member) => false,
            Self::Few(few) if few.len() < Self::FEW_MAX => {
                few.push(member);
                true
            }
            Self::Few(few) => {
                let mut many: HashSet<_> = few.drain(..).collect();
                many.insert(member);
                *self = Self::Many(many);
                true
            }
            Self::Many(many) => many.insert(member),
        }
    }

    /// Takes `member` out; whether it was there.
    fn remove(&mut self, member: &(PoolKey, PoolElementId)) -> bool {
        match self {
            Self::Few(few) => match few.iter().position(|m| m == member) {
                Some(position) => {
                    few.swap_remove(position);
                    true
                }
                None => false,
            },
            Self::Many(many) => many.remove(member),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Few(few) => few.len(),
            Self::Many(many) => many.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members, in no order.
    fn into_vec(self) -> Vec<(PoolKey, PoolElementId)> {
        match self {
            Self::Few(few) => few,
            Self::Many(many) => many.into_iter().collect(),
        }
    }
}

/// Values named by a `u32` index that stays theirs while they live (the rare IPv6 peer, the
/// rare session of two or more PEs), so that a record can hold 4 bytes instead of a pointer;
/// freed indexes are reused.
#[derive(Debug)]
struct Slots<T> {
    /// By index; `None` is free.
    entries: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self { entries: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slots<T> {
    fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.entries[index as usize];
                assert!(slot.is_none(), "a free index holds nothing");
                *slot = Some(value);
                index
            }
            None => {
                let index = u32::try_from(self.entries.len()).expect("one per association");
                self.entries.push(Some(value));
                index
            }
        }
    }

    fn get(&self, index: u32) -> &T {
        self.entries[index as usize].as_ref().expect("a live index")
    }

    fn get_mut(&mut self, index: u32) -> &mut T {
        self.entries[index as usize].as_mut().expect("a live index")
    }

    fn remove(&mut self, index: u32) -> T {
        let value = self.entries[index as usize].take().expect("a live index");
        self.free.push(index);
        value
    }
}

/// A live local association's peer address as kept per association, 8 bytes: an IPv4 peer
/// (nearly every PE) in place, an IPv6 one as an index into `Sessions::peers_v6`, the port,
/// and the "carried a Registration" flag. One per PE association, so 12-byte map buckets, where
/// a `SocketAddr` and a separate set took 36 bytes and more (BENCHMARKS.md, "Memory per PE").
#[derive(Clone, Copy, Debug)]
struct Peer {
    /// The IPv4 address, or the IPv6 index (big-endian) if `flags` has [`Peer::V6`].
    word: [u8; 4],
    port: u16,
    flags: u8,
}

impl Peer {
    const REGISTERING: u8 = 1;
    const V6: u8 = 2;

    fn v4(addr: SocketAddrV4) -> Self {
        Self { word: addr.ip().octets(), port: addr.port(), flags: 0 }
    }

    fn v6(index: u32, port: u16) -> Self {
        Self { word: index.to_be_bytes(), port, flags: Self::V6 }
    }

    fn v6_index(self) -> Option<u32> {
        (self.flags & Self::V6 != 0).then(|| u32::from_be_bytes(self.word))
    }

    fn addr_v4(self) -> SocketAddrV4 {
        SocketAddrV4::new(self.word.into(), self.port)
    }

    fn registering(&self) -> bool {
        self.flags & Self::REGISTERING != 0
    }

    fn mark_registering(&mut self) {
        self.flags |= Self::REGISTERING;
    }
}

/// The PEs of this shard one session registered, by pool key and id, 8 bytes. Nearly every PE
/// has an association of its own, so one PE is kept inline and only two or more get a set, in
/// `Sessions::sets`, which the entry names by index; as a set of one with its 65-byte handle, a
/// PE cost 372 bytes here, the largest part of its memory (BENCHMARKS.md, "Memory per PE");
/// inline and keyed, its map entry is 16 bytes. Never empty: the session's entry goes with its
/// last PE, and a set left with one PE turns back into one inline.
#[derive(Clone, Copy, Debug)]
struct SessionElements {
    /// The one PE's pool, or [`SessionElements::MANY`]: `id` is then the set's index.
    key: PoolKey,
    id: u32,
}

impl SessionElements {
    /// The key no pool has: the entry names a set.
    const MANY: PoolKey = PoolKey(u32::MAX);

    fn one((key, id): (PoolKey, PoolElementId)) -> Self {
        assert!(key != Self::MANY, "keys stay below u32::MAX");
        Self { key, id: id.0 }
    }

    fn many(set: u32) -> Self {
        Self { key: Self::MANY, id: set }
    }

    /// The index of the set, if two or more.
    fn set(self) -> Option<u32> {
        (self.key == Self::MANY).then_some(self.id)
    }

    /// The one PE (only if not a set).
    fn only(self) -> (PoolKey, PoolElementId) {
        debug_assert!(self.key != Self::MANY);
        (self.key, PoolElementId(self.id))
    }
}

/// A pool handle interned by [`PoolKeys`]: session entries name a pool by these 4 bytes rather
/// than by its 65-byte handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PoolKey(u32);

/// The pool handles that `by_session` names, each counted once per PE that names it; a handle
/// is forgotten with the last such PE and its key is reused. One entry per pool, not per PE.
#[derive(Debug, Default)]
struct PoolKeys {
    by_handle: HashMap<PoolHandle, PoolKey>,
    /// By key: the handle and how many session entries hold the key (0: the key is free).
    slots: Vec<(PoolHandle, u32)>,
    free: Vec<PoolKey>,
}

impl PoolKeys {
    /// The key of `pool_handle`, held once more.
    fn acquire(&mut self, pool_handle: PoolHandle) -> PoolKey {
        if let Some(&key) = self.by_handle.get(&pool_handle) {
            let slot = &mut self.slots[key.0 as usize];
            assert!(slot.1 > 0, "a known handle is held");
            slot.1 = slot.1.checked_add(1).expect("held at most once per PE, a u32");
            return key;
        }
        let key = match self.free.pop() {
            Some(key) => {
                assert_eq!(self.slots[key.0 as usize].1, 0, "a free key is held by none");
                self.slots[key.0 as usize] = (pool_handle, 1);
                key
            }
            None => {
                let key = PoolKey(u32::try_from(self.slots.len()).expect("a key per pool, a u32"));
                assert!(key != SessionElements::MANY, "a key per pool, below u32::MAX");
                self.slots.push((pool_handle, 1));
                key
            }
        };
        self.by_handle.insert(pool_handle, key);
        key
    }

    /// The key, if some session entry holds it.
    fn get(&self, pool_handle: &PoolHandle) -> Option<PoolKey> {
        self.by_handle.get(pool_handle).copied()
    }

    /// The handle of a held key.
    fn handle(&self, key: PoolKey) -> PoolHandle {
        let (pool_handle, held) = self.slots[key.0 as usize];
        assert!(held > 0, "only held keys name a pool");
        pool_handle
    }

    /// Held once less; the last release forgets the handle.
    fn release(&mut self, key: PoolKey) {
        let slot = &mut self.slots[key.0 as usize];
        assert!(slot.1 > 0, "released at most as often as acquired");
        slot.1 -= 1;
        if slot.1 == 0 {
            let removed = self.by_handle.remove(&slot.0);
            assert_eq!(removed, Some(key));
            self.free.push(key);
        }
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
    /// Keep-alives sent on it that the PE has not answered anything since: if the association
    /// ends before it does, they go again once on a new one. An association kept from an
    /// earlier takeover can outlive its PE process: when the PE restarts at the same address
    /// its new stack aborts the old association as out of the blue (RFC 9260 §8.4), taking
    /// the keep-alive with it, and a lost H-flagged keep-alive is a live PE dropped after the
    /// keep-alive timeout (found by the fault lab's soak, RELIABILITY.md bug 12).
    sent: Vec<Vec<u8>>,
    /// This link is the one retry of a link that ended unanswered.
    retried: bool,
}

/// Associations to PEs at most per core, and keep-alives queued per association: a takeover
/// of a large peer re-homes many PEs, and each needs only its next keep-alive through.
const PE_LINKS_MAX: usize = 4_096;
const PE_LINK_WAITING_MAX: usize = 64;

impl PeLink {
    /// Keeps copies of keep-alives going out on the link until the PE answers on it (the
    /// latest [`PE_LINK_WAITING_MAX`]; a keep-alive is a few dozen bytes, and links are only
    /// used for PEs taken over from a failed peer).
    fn remember(&mut self, out: &[Vec<u8>]) {
        for bytes in out {
            if self.sent.len() >= PE_LINK_WAITING_MAX {
                self.sent.remove(0);
            }
            self.sent.push(bytes.clone());
        }
    }
}

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
        let out = std::mem::take(&mut link.waiting);
        link.remember(&out);
        out
    }

    /// Moves what waits on links that are up into `out` (association, bytes).
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<(u32, Vec<u8>)>) {
        for link in self.by_address.values_mut() {
            if let Some(assoc) = link.up {
                let waiting = std::mem::take(&mut link.waiting);
                link.remember(&waiting);
                out.extend(waiting.into_iter().map(|b| (assoc, b)));
            }
        }
    }

    /// Whether any link exists (so that the hot path skips [`heard`](Self::heard)).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_assoc.is_empty()
    }

    /// The PE answered on `assoc`: what was sent on it arrived.
    pub(crate) fn heard(&mut self, assoc: u32) {
        let Some(address) = self.by_assoc.get(&assoc) else { return };
        if let Some(link) = self.by_address.get_mut(address) {
            link.sent.clear();
            link.retried = false;
        }
    }

    /// An association ended: forget the link (the next keep-alive opens a new one). If it
    /// ended with keep-alives the PE never answered (or never sent, the association never
    /// came up), they go again on a new association, once: returns true then.
    pub(crate) fn closed(&mut self, assoc: u32) -> bool {
        let Some(address) = self.by_assoc.remove(&assoc) else { return false };
        let Some(mut link) = self.by_address.remove(&address) else { return false };
        if link.retried || (link.sent.is_empty() && link.waiting.is_empty()) {
            return false;
        }
        let mut again = std::mem::take(&mut link.sent);
        again.append(&mut link.waiting);
        again.truncate(PE_LINK_WAITING_MAX);
        let retry = PeLink { up: None, waiting: again, sent: Vec::new(), retried: true };
        self.by_address.insert(address, retry);
        self.connects.push_back(address);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the compact peer record gives back the address it was given, IPv4 or IPv6, keeps
    /// the Registration flag, and stays 8 bytes. Method: open, mark and close associations,
    /// then read `peer` and a drain's `hand_off`.
    #[test]
    fn peers_keep_their_addresses_and_the_registering_mark() {
        assert_eq!(std::mem::size_of::<Peer>(), 8);
        assert_eq!(std::mem::size_of::<(u32, Peer)>(), 12, "the map's bucket");
        assert_eq!(std::mem::size_of::<(SessionId, SessionElements)>(), 16, "the map's bucket");
        let mut sessions = Sessions::default();
        let v4: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1%3]:4001".parse().unwrap();
        sessions.open(1, v4);
        sessions.open(2, v6);
        sessions.open(3, v4);
        sessions.open(4, v4);
        assert_eq!((sessions.peer(1), sessions.peer(2)), (v4, v6));
        assert_eq!(sessions.peer(9), SocketAddr::from(([0, 0, 0, 0], 0)), "unknown");
        sessions.mark_registering(2);
        sessions.mark_registering(3);
        sessions.mark_registering(4);
        sessions.mark_registering(9);
        sessions.mark_enrp(4);
        assert_eq!(sessions.close(3), (true, false));
        assert_eq!(sessions.close(3), (false, false), "closed twice");
        assert_eq!(sessions.hand_off(), vec![2], "registering, open, not ENRP");
        assert_eq!(sessions.peer(2), v6, "a hand-off keeps the peer until it closes");

        // IPv6 entries are freed with their association and reused, also when an association
        // id is opened again without a close.
        let other: SocketAddr = "[2001:db8::2]:4002".parse().unwrap();
        assert_eq!(sessions.close(2), (true, false));
        sessions.open(5, other);
        sessions.open(5, v6);
        sessions.open(6, other);
        assert_eq!((sessions.peer(5), sessions.peer(6)), (v6, other));
        assert_eq!(
            sessions.peers_v6.entries.iter().flatten().count(),
            2,
            "one entry per live peer"
        );
        sessions.open(6, v4);
        assert_eq!(sessions.peer(6), v4);
        assert_eq!(sessions.close(5), (true, false));
        assert!(sessions.peers_v6.entries.iter().all(Option::is_none), "none left");
        assert!(sessions.peers_v6.entries.len() <= 2, "freed entries are reused");
    }

    fn element(name: &str, id: u32) -> (PoolHandle, PoolElementId) {
        (PoolHandle::new(name.as_bytes()).unwrap(), PoolElementId(id))
    }

    /// Goal: the inline single PE and the set behave as one set. Method: link and unlink
    /// through every transition (none, one, the same one again, two, back to one, none) and
    /// compare what `take` returns.
    #[test]
    fn session_elements_behave_as_a_set() {
        let mut sessions = Sessions::default();
        let session = SessionId { core: 1, assoc: 9 };
        let (a, b) = (element("pool-a", 1), element("pool-b", 2));
        sessions.unlink(session, a.0, a.1);
        assert!(sessions.take(session).is_none(), "unlinking from nothing adds nothing");

        sessions.link(session, a.0, a.1);
        sessions.link(session, a.0, a.1);
        assert_eq!(sessions.take(session), Some(vec![a]), "linked twice, held once");

        sessions.link(session, a.0, a.1);
        sessions.unlink(session, b.0, b.1);
        sessions.unlink(session, a.0, a.1);
        assert!(sessions.take(session).is_none(), "the last PE takes the entry with it");

        sessions.link(session, a.0, a.1);
        sessions.link(session, b.0, b.1);
        let mut both = sessions.take(session).unwrap();
        both.sort_unstable();
        assert_eq!(both, vec![a, b]);

        sessions.link(session, a.0, a.1);
        sessions.link(session, b.0, b.1);
        sessions.unlink(session, a.0, a.1);
        assert_eq!(sessions.take(session), Some(vec![b]));
        sessions.link(session, a.0, a.1);
        sessions.link(session, b.0, b.1);
        sessions.unlink(session, a.0, a.1);
        sessions.unlink(session, b.0, b.1);
        assert!(sessions.take(session).is_none(), "a set emptied takes the entry with it");
        assert!(sessions.by_session.is_empty());
        assert!(sessions.pool_keys.by_handle.is_empty(), "no PE left, no handle kept");
    }

    /// Goal: the interned, inline bookkeeping is the plain map of sets it replaced, and keeps
    /// no handle that no PE names. Method: 20 000 random links, unlinks and takes over a few
    /// sessions, pools and ids (so that every transition recurs), from a fixed seed, against a
    /// model; after each step the keys' counts must equal the PEs that name them.
    #[test]
    fn session_elements_match_a_map_of_sets() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        use std::collections::{BTreeSet, HashMap as Model};

        let mut rng = SmallRng::seed_from_u64(14);
        let mut sessions = Sessions::default();
        let mut model: Model<SessionId, BTreeSet<(PoolHandle, PoolElementId)>> = Model::new();
        let pools = ["a", "b", "c", "d", "e"].map(|n| PoolHandle::new(n.as_bytes()).unwrap());
        for step in 0..20_000 {
            let session = SessionId { core: rng.random_range(0..2), assoc: rng.random_range(0..4) };
            let element =
                (pools[rng.random_range(0..pools.len())], PoolElementId(rng.random_range(0..3)));
            match rng.random_range(0..10) {
                0..=4 => {
                    sessions.link(session, element.0, element.1);
                    model.entry(session).or_default().insert(element);
                }
                5..=8 => {
                    sessions.unlink(session, element.0, element.1);
                    if let Some(set) = model.get_mut(&session) {
                        set.remove(&element);
                        if set.is_empty() {
                            model.remove(&session);
                        }
                    }
                }
                _ => {
                    let taken = sessions.take(session).map(|v| v.into_iter().collect());
                    assert_eq!(taken, model.remove(&session), "step {step}: take");
                }
            }
            let mut held: Model<PoolHandle, u32> = Model::new();
            for (pool_handle, _) in model.values().flatten() {
                *held.entry(*pool_handle).or_default() += 1;
            }
            assert_eq!(sessions.by_session.len(), model.len(), "step {step}: sessions");
            let sets = model.values().filter(|set| set.len() > 1).count();
            let live = sessions.sets.entries.iter().flatten().count();
            assert_eq!(live, sets, "step {step}: one set per session of two or more");
            let all = sessions.sets.entries.len();
            assert_eq!(live + sessions.sets.free.len(), all, "step {step}: free");
            assert_eq!(sessions.pool_keys.by_handle.len(), held.len(), "step {step}: handles");
            for (pool_handle, count) in held {
                let key = sessions.pool_keys.get(&pool_handle).expect("a named pool has a key");
                assert_eq!(sessions.pool_keys.slots[key.0 as usize], (pool_handle, count));
            }
        }
    }
}
