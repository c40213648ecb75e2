//! Handlespace synchronisation between peers: Handle Updates in (§3.3), table downloads served
//! and received (§3.2.3), auditing by PE checksum and mark-and-sweep re-synchronisation (§3.6).

use codec::enrp::{
    HandleTableRequest, HandleTableResponse, HandleTableResponseRef, HandleUpdate, Servers,
    UpdateAction,
};
use codec::{PoolElement, PoolElementId, PoolHandle, RegistrarId};
use handlespace::{
    ChecksumAccumulator, Duration, Handlespace, Instant, Registration as HsRegistration,
    TableCursor, TableEntry,
};
use std::collections::BTreeSet;

use super::{Enrp, Init, PeerOp, NO_SESSION};
use crate::proto::convert::{policy_settings, transport_info};
use crate::proto::SessionId;

/// The whole handlespace as the ENRP core sees it: its own shard, and its read replica of the
/// other cores' shards (with one core, the shard alone).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    parts: [Option<&'a Handlespace>; 2],
}

/// Where a table walk over a [`View`] stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewCursor {
    part: usize,
    inner: TableCursor,
}

impl<'a> View<'a> {
    /// A view of `shard` and, with several cores, the `replica` of the others.
    pub fn new(shard: &'a Handlespace, replica: Option<&'a Handlespace>) -> Self {
        Self { parts: [Some(shard), replica] }
    }

    /// The RFC 5353 §3.6.2 PE checksum of the PEs homed at `owner`.
    pub fn checksum(&self, owner: RegistrarId) -> u16 {
        self.parts
            .iter()
            .flatten()
            .fold(ChecksumAccumulator::EMPTY, |sum, hs| sum.merge(hs.checksum_accumulator(owner)))
            .finish()
    }

    /// PEs homed at `owner`.
    pub fn owned_count(&self, owner: RegistrarId) -> u32 {
        self.parts.iter().flatten().map(|hs| hs.owned_count(owner)).sum()
    }

    /// Every PE homed at `owner`, as (pool, id).
    pub fn owned(&self, owner: RegistrarId) -> BTreeSet<(PoolHandle, PoolElementId)> {
        let mut out = BTreeSet::new();
        // Ordered (a BTreeSet): everything ENRP sends follows from its inputs alone, so a
        // simulation seed replays exactly.
        let mut page = Vec::new();
        for hs in self.parts.iter().flatten() {
            let mut cursor = TableCursor::default();
            loop {
                page.clear();
                let next = hs.table_page(Some(owner), cursor, 4_096, &mut page);
                out.extend(page.iter().map(|e| (*e.pool_handle, e.element.id())));
                match next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
        }
        out
    }

    /// One page of up to `max` PEs (of `owner` only, if given) from `from`; the cursor of the
    /// next page if more remain.
    pub fn page(
        &self,
        owner: Option<RegistrarId>,
        from: ViewCursor,
        max: usize,
        out: &mut Vec<TableEntry<'a>>,
    ) -> Option<ViewCursor> {
        let mut cursor = from;
        while cursor.part < self.parts.len() {
            let Some(hs) = self.parts[cursor.part] else {
                cursor = ViewCursor { part: cursor.part + 1, inner: TableCursor::default() };
                continue;
            };
            let room = max - out.len();
            if room == 0 {
                return Some(cursor);
            }
            match hs.table_page(owner, cursor.inner, room, out) {
                Some(inner) => return Some(ViewCursor { part: cursor.part, inner }),
                None => {
                    cursor = ViewCursor { part: cursor.part + 1, inner: TableCursor::default() }
                }
            }
        }
        None
    }
}

/// A download we serve (§3.2.3 step 2): where the next page starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Download {
    own_children_only: bool,
    cursor: ViewCursor,
    expires: Instant,
}

/// A re-synchronisation we run with a peer (§3.6.3): the PEs still marked.
#[derive(Debug)]
pub(super) struct Resync {
    marked: BTreeSet<(PoolHandle, PoolElementId)>,
    pub(super) deadline: Instant,
}

/// A PE a re-synchronisation with `owner` left marked: removed at `due` if `owner` is still
/// its home then.
#[derive(Debug)]
pub(super) struct Sweep {
    pub(super) due: Instant,
    pool_handle: PoolHandle,
    id: PoolElementId,
    owner: RegistrarId,
}

impl Enrp {
    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.3
    //# Upon the reception of this message, the mentor peer MUST start a download session in
    //# which a copy of the current handlespace data maintained by the mentor peer is sent to
    //# the initiating server in one or more ENRP_HANDLE_TABLE_RESPONSE messages.
    pub(super) fn on_table_request(
        &mut self,
        now: Instant,
        session: SessionId,
        sender: RegistrarId,
        r: HandleTableRequest,
        view: &View<'_>,
    ) {
        let servers = Servers { sender: self.own, receiver: sender };
        let mut bytes = Vec::new();
        if !self.is_ready() {
            //# the mentor peer MUST reject the request by the initiating server and respond
            //# with an ENRP_HANDLE_TABLE_RESPONSE message with the R flag set to '1', and with
            //# no pool entries included in the response.
            let refusal = HandleTableResponseRef { more_to_send: false, reject: true, servers };
            refusal.emit_with_encoded::<handlespace::PoolElement>(&mut bytes, []);
            return self.send(session, bytes.into());
        }
        let cursor = match self.downloads.remove(&session) {
            Some(d) if d.own_children_only == r.own_children_only && now < d.expires => d.cursor,
            _ => ViewCursor::default(),
        };
        let owner = r.own_children_only.then_some(self.own);
        let mut page = Vec::new();
        let mut next = view.page(owner, cursor, self.config.table_page_elements_max, &mut page);
        let fitting = entries_within(&page, PAGE_BYTES_MAX);
        if fitting < page.len() {
            // PEs with many addresses: fewer per page, so that the page stays one message our
            // SCTP (and a peer's) reassembles.
            page.clear();
            next = view.page(owner, cursor, fitting, &mut page);
        }
        // As encoded at registration (ASAP, or a peer's update): kept, or re-made from fields.
        let entries = page.iter().map(|e| (e.pool_handle, e.element, e.element.home()));
        //# the mentor peer MUST set the M flag to '1' in the outbound
        //# ENRP_HANDLE_TABLE_RESPONSE if there is more data to be transferred and MUST keep
        //# track of the progress of the current download session.
        let response =
            HandleTableResponseRef { more_to_send: next.is_some(), reject: false, servers };
        response.emit_with_encoded(&mut bytes, entries);
        if let Some(cursor) = next {
            let expires = now + self.config.max_time_last_heard;
            let own_children_only = r.own_children_only;
            self.downloads.insert(session, Download { own_children_only, cursor, expires });
        }
        self.send(session, bytes.into());
    }

    pub(super) fn on_table_response(
        &mut self,
        now: Instant,
        session: SessionId,
        sender: RegistrarId,
        r: HandleTableResponse,
    ) {
        let downloading = matches!(self.init, Init::Downloading { mentor, .. } if mentor == sender);
        if r.reject {
            if downloading {
                // §3.2.3: ask again (the next Presence of any peer starts it), or serve alone
                // once the start-up deadline has passed.
                self.init = Init::Hunting { until: self.hunt_until };
            }
            return;
        }
        //# every time the initiating server receives an ENRP_HANDLE_TABLE_RESPONSE message, it
        //# MUST transfer the data entries carried in the message into its local handlespace
        //# database
        for entry in r.pools {
            for element in entry.pool_elements {
                if let Some(resync) = self.resyncs.get_mut(&sender) {
                    resync.marked.remove(&(entry.pool_handle, element.id));
                }
                self.upsert(sender, entry.pool_handle, element);
            }
        }
        let resyncing = self.resyncs.contains_key(&sender);
        if r.more_to_send && (downloading || resyncing) {
            //# If the M flag is set to '1' ... the initiating server MUST send another
            //# ENRP_HANDLE_TABLE_REQUEST message to the mentor peer
            self.request_table(session, sender, !downloading);
            let deadline = now + self.config.max_time_no_response;
            if downloading {
                self.init = Init::Downloading { mentor: sender, deadline };
            } else if let Some(resync) = self.resyncs.get_mut(&sender) {
                resync.deadline = deadline;
            }
            return;
        }
        if downloading {
            tracing::info!(mentor = sender.0, "handlespace download complete");
            self.init = Init::Ready;
        } else if let Some(resync) = self.resyncs.remove(&sender) {
            //= https://www.rfc-editor.org/rfc/rfc5353#section-3.6.3
            //# the ENRP server SHOULD check whether there are still PE entries that remain
            //# "marked" in its local handlespace.  If so, the ENRP server SHOULD silently
            //# remove those "marked" entries.
            //
            // Not at once: "not mine" from the peer is not "gone". Found by the one-hour soak:
            // r2 had just re-homed three PEs to r3 on r3's claims; r1, which had not heard
            // those claims yet, re-synchronised with r2, found them unlisted, and removed PEs
            // alive at r3 for a second. They are removed after MAX-TIME-LAST-HEARD, within
            // which every live peer speaks (its claims, or a Presence whose checksum makes us
            // re-synchronise with it), and only if the peer is still their home then.
            let mut marked: Vec<_> = resync.marked.into_iter().collect();
            marked
                .sort_unstable_by_key(|(pool, id)| (*pool.as_bytes().first().unwrap_or(&0), id.0));
            let swept = marked.len();
            let due = now + self.config.max_time_last_heard;
            for (pool_handle, id) in marked {
                self.sweeps.push_back(Sweep { due, pool_handle, id, owner: sender });
            }
            tracing::info!(
                peer = sender.0,
                swept,
                "re-synchronisation complete (unlisted PEs go after MAX-TIME-LAST-HEARD unless claimed)"
            );
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.3.1
    //# When a peer receives this ENRP_HANDLE_UPDATE message, it MUST take the following
    //# actions:
    pub(super) fn on_handle_update(&mut self, sender: RegistrarId, u: HandleUpdate) {
        self.stats.updates_received += 1;
        if let Some(resync) = self.resyncs.get_mut(&sender) {
            // Newer than the table being downloaded: the sweep must not undo it.
            resync.marked.remove(&(u.pool_handle, u.pool_element.id));
        }
        match u.action {
            UpdateAction::ADD_PE => self.upsert(sender, u.pool_handle, u.pool_element),
            //= https://www.rfc-editor.org/rfc/rfc5353#section-3.3.2
            //# When a peer receives this ENRP_HANDLE_UPDATE message, it MUST first find the
            //# pool and the PE in its own handlespace, and then remove the PE from its local
            //# handlespace.
            UpdateAction::DEL_PE => {
                let (pool_handle, id) = (u.pool_handle, u.pool_element.id);
                let home = match u.pool_element.home_registrar {
                    RegistrarId(0) => sender,
                    home => home,
                };
                self.apply(PeerOp::Remove { pool_handle, id, home });
            }
            other => {
                tracing::debug!(peer = sender.0, action = ?other, "unknown update action");
                self.stats.decode_errors += 1;
            }
        }
    }

    /// A PE learned from a peer goes to its pool's shard, homed where the peer says (the
    /// sender if it says nothing), kept until that home removes it: only the home expires it.
    fn upsert(&mut self, sender: RegistrarId, pool_handle: PoolHandle, mut element: PoolElement) {
        let home = match element.home_registrar {
            RegistrarId(0) => sender,
            home => home,
        };
        let (Some(policy), Some(transport)) =
            (policy_settings(&element.policy), transport_info(&element.user_transport))
        else {
            tracing::debug!(peer = sender.0, pool = %pool_handle, "PE with an unusable policy");
            self.stats.decode_errors += 1;
            return;
        };
        element.home_registrar = home;
        // Kept whole, ASAP Transport included: ENRP passes it on (downloads), ASAP answers
        // leave it out.
        let registration = HsRegistration {
            pool_handle,
            id: element.id,
            home,
            policy,
            transport,
            lifetime: Duration::INFINITE,
            registrator: NO_SESSION,
            wire: element.encode().into(),
        };
        let may_rehome = !self.displaced.contains_key(&sender);
        self.apply(PeerOp::Upsert { registration: Box::new(registration), may_rehome });
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.6.1
    //# When an ENRP server (server A) receives a PE checksum (carried in an arrived
    //# ENRP_PRESENCE) from a peer ENRP server (server B), server A SHOULD compare the PE
    //# checksum found in the ENRP_PRESENCE with its own internal PE checksum of server B
    pub(super) fn audit(&mut self, now: Instant, peer: RegistrarId, view: &View<'_>) {
        if matches!(self.init, Init::Listing { .. } | Init::Downloading { .. }) {
            // The download from the mentor brings every owner's PEs: a re-synchronisation now
            // would fetch them a second time (found in the lab: the joiner applied each PE of
            // its mentor twice). The first Presence after it audits as usual.
            return;
        }
        let Some(announced) = self.peers.get(peer).and_then(|p| p.checksum) else { return };
        if announced == view.checksum(peer) || self.resyncs.contains_key(&peer) {
            return;
        }
        if self.sweeps.iter().any(|s| s.owner == peer) {
            // Our checksum of the peer still counts the PEs waiting to be swept: another
            // table now would tell nothing new.
            return;
        }
        let Some(session) = self.peers.get(peer).and_then(|p| p.session) else { return };
        tracing::info!(peer = peer.0, "PE checksum mismatch: re-synchronising");
        self.stats.resyncs += 1;
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.6.3
        //# The ENRP server SHOULD first "mark" every PE it knows about that is owned by the
        //# peer in its local handlespace database;
        let marked = view.owned(peer);
        let deadline = now + self.config.max_time_no_response;
        self.resyncs.insert(peer, Resync { marked, deadline });
        //# The ENRP server SHOULD then send an ENRP_HANDLE_TABLE_REQUEST message with the W
        //# flag set to '1' to the peer to request a complete list of PEs owned by the peer;
        self.request_table(session, peer, true);
    }

    /// Re-synchronisations whose peer went silent are abandoned (the next Presence audits
    /// again), and stale download sessions are dropped.
    pub(super) fn check_syncs(&mut self, now: Instant) {
        while self.sweeps.front().is_some_and(|s| s.due <= now) {
            let Sweep { pool_handle, id, owner, .. } = self.sweeps.pop_front().expect("checked");
            // Removes nothing that moved to another home meanwhile (`apply_peer_op`).
            self.apply(PeerOp::Remove { pool_handle, id, home: owner });
        }
        self.resyncs.retain(|_, r| now < r.deadline);
        self.downloads.retain(|_, d| now < d.expires);
        self.displaced.retain(|_, until| until.is_none_or(|until| now < until));
    }
}

/// Bytes of PE parameters (with their pool entries) one Handle Table Response carries at most:
/// room under 64 KiB, the largest message our SCTP reassembles, for the headers.
pub(super) const PAGE_BYTES_MAX: usize = 60_000;

/// How many of `page`'s first entries fit in `budget` bytes once encoded (at least one, so
/// that a download always moves on).
fn entries_within(page: &[TableEntry<'_>], budget: usize) -> usize {
    let mut used = 0;
    for (i, entry) in page.iter().enumerate() {
        // The PE parameter as stored, and at most a pool handle parameter before it.
        let cost = entry.element.parameter().buffer_len() + 8 + entry.pool_handle.as_bytes().len();
        used += cost;
        if used > budget {
            return i.max(1);
        }
    }
    page.len()
}
