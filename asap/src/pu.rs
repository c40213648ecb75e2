//! The pool user side: a handle resolution cache with a stale-cache value, selection over the
//! cached PEs, Endpoint Unreachable reports (at most one per failure of a PE), and failover
//! bookkeeping: the last ASAP Cookie of the current PE, echoed to the next one.
//!
//! Nothing here opens the PE↔PU data or control channel; the application does, and hands the
//! control messages it receives (PPID 11) to [`Failover::handle_control`].
//!
//! Cache boundary: an entry fetched at `t` with stale-cache value `s` is used for every
//! `now < t + s`; **at exactly `t + s` it is stale** and never used (a stale value of zero
//! means "never cache").

use codec::asap::{BusinessCard, CookieEcho, EndpointUnreachable, Message};
use codec::param::{Policy, UserTransport};
use codec::{DecodeError, DecodeErrorKind, PoolElement, PoolElementId, PoolHandle, TransportUse};

use crate::time::{Duration, Instant};

/// Pools one cache holds. A PU talks to a few pools; 256 bounds the linear lookups. When it is
/// full, the entry fetched longest ago makes room.
pub const CACHED_POOLS_MAX: usize = 256;

/// The stale-cache value unless configured: 1 s. RFC 5352 leaves it to the implementation;
/// shorter than the registrar's keep-alive period, so a removed PE leaves the cache soon.
pub const STALE_CACHE_DEFAULT: Duration = Duration::from_secs(1);

/// The PU's cache of handle resolutions.
#[derive(Debug)]
pub struct PoolUserCache {
    stale_after: Duration,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    pool_handle: PoolHandle,
    policy: Option<Policy>,
    fetched_at: Instant,
    elements: Vec<Cached>,
    cursor: usize,
}

#[derive(Debug)]
struct Cached {
    element: PoolElement,
    /// The user was handed this PE ([`PoolUserCache::select`]): a prerequisite for reporting it.
    selected: bool,
    /// Reported unreachable since this resolution; not selected again until the next one.
    reported: bool,
}

impl PoolUserCache {
    /// An empty cache whose entries go stale `stale_after` after they were fetched.
    pub fn new(stale_after: Duration) -> Self {
        Self { stale_after, entries: Vec::new() }
    }

    /// Stores a resolution fetched at `now`, replacing an older one of the same pool. PEs
    /// reported unreachable in the old entry start afresh: the registrar still lists them, so
    /// its keep-alive probe found them alive, and a new failure is a new event.
    pub fn insert(
        &mut self,
        now: Instant,
        pool_handle: PoolHandle,
        policy: Option<Policy>,
        elements: Vec<PoolElement>,
    ) {
        let elements = elements
            .into_iter()
            .map(|element| Cached { element, selected: false, reported: false })
            .collect();
        let entry = Entry { pool_handle, policy, fetched_at: now, elements, cursor: 0 };
        if let Some(old) = self.entries.iter_mut().find(|e| e.pool_handle == pool_handle) {
            *old = entry;
            return;
        }
        if self.entries.len() == CACHED_POOLS_MAX {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].fetched_at);
            self.entries.swap_remove(oldest.expect("the cache is full, so not empty"));
        }
        self.entries.push(entry);
        assert!(self.entries.len() <= CACHED_POOLS_MAX);
    }

    /// The cached PEs of `pool_handle` if the entry is fresh at `now` (C1, C4).
    pub fn lookup(&self, now: Instant, pool_handle: &PoolHandle) -> Option<Vec<PoolElement>> {
        let entry = self.fresh(now, pool_handle)?;
        Some(entry.elements.iter().map(|c| c.element.clone()).collect())
    }

    /// Whether a fresh entry exists at `now`.
    pub fn is_fresh(&self, now: Instant, pool_handle: &PoolHandle) -> bool {
        self.fresh(now, pool_handle).is_some()
    }

    /// Drops the entry of `pool_handle` (CachePurgeRequest, §6.4).
    pub fn purge(&mut self, pool_handle: &PoolHandle) {
        self.entries.retain(|e| e.pool_handle != *pool_handle);
    }

    /// Picks a PE from the fresh entry of `pool_handle`, skipping PEs reported unreachable.
    /// Least-used policies take the least loaded PE (earliest in the list on a tie); every
    /// other policy goes round robin over the list the registrar returned (which the
    /// registrar already ordered by the pool's policy).
    pub fn select(&mut self, now: Instant, pool_handle: &PoolHandle) -> Option<PoolElement> {
        let stale_after = self.stale_after;
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.pool_handle == *pool_handle && now < e.fetched_at + stale_after)?;
        let candidates = entry.elements.len();
        let least_used = entry
            .elements
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.reported)
            .filter_map(|(i, c)| load_of(&c.element.policy).map(|load| (load, i)));
        let pick = if is_least_used(entry.policy.as_ref(), &entry.elements) {
            least_used.min().map(|(_, i)| i)
        } else {
            (0..candidates)
                .map(|step| (entry.cursor + step) % candidates)
                .find(|&i| !entry.elements[i].reported)
        }?;
        entry.cursor = (pick + 1) % candidates;
        entry.elements[pick].selected = true;
        Some(entry.elements[pick].element.clone())
    }

    /// The Endpoint Unreachable to send for a PE the user could not reach, or `None` when it
    /// must not be sent: the PE was never handed to the user, or this failure was reported
    /// already. The PE is not selected again until the next resolution of its pool.
    pub fn report_unreachable(
        &mut self,
        pool_handle: &PoolHandle,
        pe_id: PoolElementId,
    ) -> Option<Message> {
        let entry = self.entries.iter_mut().find(|e| e.pool_handle == *pool_handle)?;
        let cached = entry.elements.iter_mut().find(|c| c.element.id == pe_id)?;
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
        //# It should be noted that an ASAP Endpoint MUST report
        //# no more than once each time it encounters such an event.
        //# Additionally, when processing a Transport.Failure Primitive
        //# (Section 6.9.2), the ASAP Endpoint MUST NOT send an
        //# ASAP_ENDPOINT_UNREACHABLE message unless the user has made a previous
        //# request to send data to the PE specified by the primitive.
        if !cached.selected || cached.reported {
            return None;
        }
        cached.reported = true;
        let report = EndpointUnreachable { pool_handle: *pool_handle, pe_id };
        Some(Message::EndpointUnreachable(report))
    }

    fn fresh(&self, now: Instant, pool_handle: &PoolHandle) -> Option<&Entry> {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
        //# C2)  Have a stale timeout timer associated with each cache entry.  If
        //# the cache entry is determined to be stale upon a cache hit, a
        //# handle resolution message SHOULD be sent so the cache can be
        //# updated.
        self.entries
            .iter()
            .find(|e| e.pool_handle == *pool_handle && now < e.fetched_at + self.stale_after)
    }
}

fn load_of(policy: &Policy) -> Option<u32> {
    match policy {
        Policy::LeastUsed { load }
        | Policy::LeastUsedDegradation { load, .. }
        | Policy::PriorityLeastUsed { load, .. }
        | Policy::RandomizedLeastUsed { load }
        | Policy::LeastUsedDpf { load, .. }
        | Policy::LeastUsedDegradationDpf { load, .. } => Some(*load),
        _ => None,
    }
}

/// Least used when the pool's overall policy says so (or, when the registrar sent none, the
/// first PE's does) and every PE carries a load.
fn is_least_used(overall: Option<&Policy>, elements: &[Cached]) -> bool {
    let policy = overall.or_else(|| elements.first().map(|c| &c.element.policy));
    policy.and_then(load_of).is_some()
        && elements.iter().all(|c| load_of(&c.element.policy).is_some())
}

/// A control message a PE sent its PU.
// Inline like codec's `Message`: a control message is handled at once.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// A Business Card (§2.2.13): the pool and the preferred failover order.
    BusinessCard(BusinessCard),
    /// An ASAP Cookie (§2.2.11), now the one to echo at failover.
    Cookie(Vec<u8>),
    /// Any other ASAP message, left to the caller.
    Other(Message),
}

/// Failover bookkeeping of one PU session with a pool: the current PE, the last cookie it
/// sent, and the failover order its last Business Card asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    pool_handle: PoolHandle,
    current: Option<PoolElementId>,
    cookie: Option<Vec<u8>>,
    preferred: Vec<PoolElementId>,
}

impl Failover {
    /// A session with `pool_handle`, not talking to any PE yet.
    pub fn new(pool_handle: PoolHandle) -> Self {
        Self { pool_handle, current: None, cookie: None, preferred: Vec::new() }
    }

    /// The pool.
    pub fn pool_handle(&self) -> PoolHandle {
        self.pool_handle
    }

    /// The PE being talked to.
    pub fn current(&self) -> Option<PoolElementId> {
        self.current
    }

    /// The cookie to echo at the next failover.
    pub fn cookie(&self) -> Option<&[u8]> {
        self.cookie.as_deref()
    }

    /// The failover order of the last Business Card, best first.
    pub fn preferred(&self) -> &[PoolElementId] {
        &self.preferred
    }

    /// Starts talking to `pe` (the first PE: no cookie to echo).
    pub fn connect(&mut self, pe: PoolElementId) {
        self.current = Some(pe);
    }

    /// One ASAP message from the current PE's control channel.
    pub fn handle_control(&mut self, bytes: &[u8]) -> Result<Control, DecodeError> {
        match Message::parse(bytes)? {
            Message::Cookie(c) if c.cookie.len() > crate::control::COOKIE_LEN_MAX => {
                // Kept in memory for the whole session: a peer must not make it large.
                Err(DecodeError { kind: DecodeErrorKind::TooMany, field: "Cookie", offset: 0 })
            }
            Message::Cookie(c) => {
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.8
                //# The PU's ASAP
                //# endpoint stores the Cookie parameter and discards an older cookie if
                //# it is previously stored.
                self.cookie = Some(c.cookie.clone());
                Ok(Control::Cookie(c.cookie))
            }
            Message::BusinessCard(card) => {
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.9
                //# BC2)  Unpack the message and populate a preferred list for failover
                //# order.
                self.preferred = card.pool_elements.iter().map(|pe| pe.id).collect();
                Ok(Control::BusinessCard(card))
            }
            other => Ok(Control::Other(other)),
        }
    }

    /// Starts talking to `pe` on a new association: the first PE of the session, or the
    /// next one after a failure. Returns the Cookie Echo to send as the first control message,
    /// if any: only at a failover, only with a cookie, and only to a PE whose SCTP transport
    /// carries control as well as data (a data-only PE has no control channel there).
    pub fn open(&mut self, pe: &PoolElement) -> Option<Vec<u8>> {
        if self.current.is_none() {
            self.connect(pe.id);
            return None;
        }
        let echo = self.fail_over(pe.id)?;
        let control = matches!(&pe.user_transport,
            UserTransport::Sctp(s) if s.transport_use == TransportUse::DATA_PLUS_CONTROL);
        control.then_some(echo)
    }

    /// Fails over to `next`: returns the Cookie Echo to send it as the first control message,
    /// when the failed PE gave a cookie. The cookie stays until `next` sends its own.
    pub fn fail_over(&mut self, next: PoolElementId) -> Option<Vec<u8>> {
        self.current = Some(next);
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.8
        //# If the PU's ASAP Endpoint detects a failure and initiates a failover
        //# to a different PE, it SHOULD send the latest received cookie
        //# parameter in an ASAP_COOKIE_ECHO message to the new PE as the first
        //# message on the control channel.
        let cookie = self.cookie.clone()?;
        Some(Message::CookieEcho(CookieEcho { cookie }).emit_to_vec())
    }
}

/// Encodes a Business Card (§2.2.13): our pool and the failover order we recommend.
pub fn business_card(pool_handle: PoolHandle, failover_order: &[PoolElement]) -> Vec<u8> {
    let card = BusinessCard { pool_handle, pool_elements: failover_order.to_vec() };
    Message::BusinessCard(card).emit_to_vec()
}

/// Decodes a Business Card; any other message is an `Unexpected` error.
pub fn parse_business_card(bytes: &[u8]) -> Result<BusinessCard, DecodeError> {
    match Message::parse(bytes)? {
        Message::BusinessCard(card) => Ok(card),
        _ => {
            Err(DecodeError { kind: DecodeErrorKind::Unexpected, field: "MessageType", offset: 0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, pool_element, pool_element_with};

    const STALE: Duration = Duration::from_micros(1_000);

    fn cache_with(ids: &[u32]) -> PoolUserCache {
        let mut c = PoolUserCache::new(STALE);
        let elements = ids.iter().map(|&id| pool_element(id)).collect();
        c.insert(Instant::from_micros(10_000), pool("p"), None, elements);
        c
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.3
    //= type=test
    //# C4)  If the cache entry is NOT stale, the endpoint SHOULD NOT send a
    //# handle resolution request but instead SHOULD use the entry from
    //# the cache.
    // Goal: the cache is used up to, and not at, the stale time (the boundary this crate
    // picked). Method: boundary pair at fetched + stale - 1 µs and fetched + stale.
    #[test]
    fn cache_is_stale_at_exactly_the_stale_time() {
        let c = cache_with(&[1]);
        let p = pool("p");
        assert!(c.lookup(Instant::from_micros(10_999), &p).is_some());
        assert!(c.lookup(Instant::from_micros(11_000), &p).is_none());
        assert!(c.is_fresh(Instant::from_micros(10_000), &p));
        assert!(!c.is_fresh(Instant::from_micros(11_001), &p));
    }

    // Goal: selection goes round robin over the returned list and skips a reported PE.
    // Method: select four times from three PEs, report one, select again.
    #[test]
    fn select_round_robin_skips_reported() {
        let mut c = cache_with(&[1, 2, 3]);
        let (now, p) = (Instant::from_micros(10_500), pool("p"));
        let ids: Vec<u32> = (0..4).map(|_| c.select(now, &p).unwrap().id.0).collect();
        assert_eq!(ids, [1, 2, 3, 1]);
        assert!(c.report_unreachable(&p, PoolElementId(2)).is_some());
        let ids: Vec<u32> = (0..3).map(|_| c.select(now, &p).unwrap().id.0).collect();
        assert_eq!(ids, [3, 1, 3]);
        assert!(c.select(Instant::from_micros(11_000), &p).is_none(), "stale");
    }

    // Goal: a least-used pool hands out the least loaded PE. Method: three loads.
    #[test]
    fn select_least_used_takes_the_least_load() {
        let mut c = PoolUserCache::new(STALE);
        let pes = [(1, 50), (2, 10), (3, 30)]
            .map(|(id, load)| pool_element_with(id, Policy::LeastUsed { load }));
        c.insert(Instant::ZERO, pool("p"), None, pes.to_vec());
        assert_eq!(c.select(Instant::ZERO, &pool("p")).unwrap().id.0, 2);
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
    //= type=test
    //# It should be noted that an ASAP Endpoint MUST report
    //# no more than once each time it encounters such an event.
    // Goal: Endpoint Unreachable goes out once per failure, and only for a PE the user was
    // handed. Method: report before and after selecting, twice, then after a new resolution.
    #[test]
    fn unreachable_reported_once_per_failure() {
        let mut c = cache_with(&[4]);
        let (now, p) = (Instant::from_micros(10_100), pool("p"));
        assert_eq!(c.report_unreachable(&p, PoolElementId(4)), None, "never handed out");
        c.select(now, &p).unwrap();
        let want = Message::EndpointUnreachable(EndpointUnreachable {
            pool_handle: p,
            pe_id: PoolElementId(4),
        });
        assert_eq!(c.report_unreachable(&p, PoolElementId(4)), Some(want.clone()));
        assert_eq!(c.report_unreachable(&p, PoolElementId(4)), None, "same failure");
        c.insert(now, p, None, vec![pool_element(4)]);
        c.select(now, &p).unwrap();
        assert_eq!(c.report_unreachable(&p, PoolElementId(4)), Some(want), "a new failure");
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.8
    //= type=test
    //# It is only important that the PU always stores
    //# the last received Cookie parameter and sends that back unmodified in
    //# case of a PE failure.
    // Goal: failover echoes the latest cookie of the failed PE to the next PE, unmodified.
    // Method: two cookies from PE 1, failover to PE 2; compare with codec's Cookie Echo.
    #[test]
    fn failover_echoes_the_last_cookie() {
        let mut f = Failover::new(pool("p"));
        f.connect(PoolElementId(1));
        assert_eq!(f.fail_over(PoolElementId(1)), None, "no cookie yet");
        for cookie in [b"old".to_vec(), b"state-42".to_vec()] {
            let bytes = Message::Cookie(codec::asap::Cookie { cookie: cookie.clone() });
            assert_eq!(f.handle_control(&bytes.emit_to_vec()), Ok(Control::Cookie(cookie)));
        }
        let echo = Message::CookieEcho(CookieEcho { cookie: b"state-42".to_vec() });
        assert_eq!(f.fail_over(PoolElementId(2)), Some(echo.emit_to_vec()));
        assert_eq!(f.current(), Some(PoolElementId(2)));
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.8
    //= type=test
    //# If the PU's ASAP Endpoint detects a failure and initiates a failover
    //# to a different PE, it SHOULD send the latest received cookie
    //# parameter in an ASAP_COOKIE_ECHO message to the new PE as the first
    //# message on the control channel.
    // Goal: `open` echoes nothing to the first PE, the last cookie to the next one when it
    // has a control channel, and nothing to a data-only one; an oversized cookie is dropped
    // and the one kept stays. Method: three opens with a cookie between them.
    #[test]
    fn open_echoes_the_cookie_first_after_failover_only_on_control_channels() {
        let with_use = |id, transport_use| {
            let mut pe = pool_element(id);
            let UserTransport::Sctp(s) = &mut pe.user_transport else { panic!() };
            s.transport_use = transport_use;
            pe
        };
        let mut f = Failover::new(pool("p"));
        assert_eq!(f.open(&with_use(1, TransportUse::DATA_PLUS_CONTROL)), None, "first PE");
        let cookie = Message::Cookie(codec::asap::Cookie { cookie: b"c1".to_vec() });
        f.handle_control(&cookie.emit_to_vec()).unwrap();
        let huge = vec![0; crate::control::COOKIE_LEN_MAX + 1];
        let huge = Message::Cookie(codec::asap::Cookie { cookie: huge });
        assert_eq!(f.handle_control(&huge.emit_to_vec()).unwrap_err().field, "Cookie");
        assert_eq!(f.cookie(), Some(&b"c1"[..]));
        let echo = Message::CookieEcho(CookieEcho { cookie: b"c1".to_vec() }).emit_to_vec();
        assert_eq!(f.open(&with_use(2, TransportUse::DATA_PLUS_CONTROL)), Some(echo));
        assert_eq!(f.open(&with_use(3, TransportUse::DATA_ONLY)), None, "no control channel");
        assert_eq!(f.current(), Some(PoolElementId(3)));
    }

    // Goal: a Business Card survives encode then decode, and sets the failover order.
    // Method: encode two PEs, decode, feed to a Failover; a non-card is an error.
    #[test]
    fn business_card_round_trip() {
        let order = [pool_element(9), pool_element(3)];
        let bytes = business_card(pool("p"), &order);
        let card = parse_business_card(&bytes).unwrap();
        assert_eq!(card, BusinessCard { pool_handle: pool("p"), pool_elements: order.to_vec() });
        let mut f = Failover::new(pool("p"));
        assert!(matches!(f.handle_control(&bytes), Ok(Control::BusinessCard(_))));
        assert_eq!(f.preferred(), [PoolElementId(9), PoolElementId(3)]);
        let echo = Message::CookieEcho(CookieEcho { cookie: vec![1] }).emit_to_vec();
        assert_eq!(parse_business_card(&echo).unwrap_err().kind, DecodeErrorKind::Unexpected);
    }
}
