//! Registrar discovery and the ENRP server hunt (RFC 5352 §3.6).
//!
//! The hunt keeps a configured list of registrar addresses plus those learned from Server
//! Announce messages (each expires T7 after its last announce), tries up to
//! [`HuntConfig::parallel_max`] of them at once, and takes the first association that comes up.
//! When a round's T5 expires without one, it aborts the round's attempts, doubles T5 (capped
//! at RETRAN-MAX) and starts the next round with the next addresses in the list; so rounds are
//! spaced T5, 2·T5, 4·T5, … apart, capped. An attempt that fails early is replaced at once by an
//! address not yet tried in this round (SH4); with none left the round waits for T5.
//!
//! A registrar that refused a registration for lack of resources (a draining or full one) is
//! avoided for a while ([`Hunt::avoid`]): rounds leave it out as long as another registrar is
//! known, so that the PE finds a home that takes it.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use codec::asap::ServerAnnounce;
use codec::param::UserTransport;
use transport::AssocId;

use crate::time::{Duration, Instant, TimerKind, TimerTable};

/// The IANA ASAP port (RFC 5352 §8.2), for a Server Announce without transports.
pub const ASAP_PORT: u16 = 3863;

/// Registrars learned from announces. An operational scope has a handful of registrars; 64
/// bounds the list against a flood of forged announces.
pub const LEARNED_REGISTRARS_MAX: usize = 64;

/// Registrars avoided at once; beyond it the one whose avoidance ends first is forgotten.
pub const AVOIDED_REGISTRARS_MAX: usize = 16;

/// The most associations a hunt may try at once.
//= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
//# An ASAP Endpoint MUST NOT establish more than three associations or
//# connections.
pub const PARALLEL_MAX: usize = 3;

/// How the hunt runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HuntConfig {
    /// Registrars to try, in order (IP and SCTP port).
    pub registrars: Vec<SocketAddr>,
    /// Attempts at once, 1 to [`PARALLEL_MAX`].
    pub parallel_max: usize,
    /// T5-Serverhunt at the start (RFC default 10 s).
    pub hunt_timeout_initial: Duration,
    /// RETRAN-MAX, the cap on T5's doubling (RFC default 60 s).
    pub hunt_timeout_max: Duration,
    /// T7-ENRPoutdate: how long an announced registrar is kept (RFC default 5 s).
    pub announce_timeout: Duration,
}

impl Default for HuntConfig {
    fn default() -> Self {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-7.1
        //# T5-Serverhunt -  This timer is used during the ENRP Server Hunt
        //# procedure and is normally set to 10 seconds.
        Self {
            registrars: Vec::new(),
            parallel_max: PARALLEL_MAX,
            hunt_timeout_initial: Duration::from_secs(10),
            hunt_timeout_max: Duration::from_secs(60),
            announce_timeout: Duration::from_secs(5),
        }
    }
}

/// The hunt's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuntTimer {
    /// T5-Serverhunt of the running round.
    ServerHunt,
}

impl TimerKind for HuntTimer {
    const ALL: &'static [Self] = &[Self::ServerHunt];
    fn index(self) -> usize {
        self as usize
    }
}

/// The hunt.
#[derive(Debug)]
pub struct Hunt {
    config: HuntConfig,
    learned: Vec<Learned>,
    attempts: Vec<Attempt>,
    /// Addresses tried in the running round, so SH4 picks a different one.
    tried: Vec<SocketAddr>,
    hunting: bool,
    /// Where the next round starts in the candidate list (SH5.2: a different set).
    cursor: usize,
    hunt_timeout: Duration,
    timers: TimerTable<HuntTimer, 1>,
    connects: VecDeque<SocketAddr>,
    aborts: VecDeque<AssocId>,
    /// Registrars left out of rounds until the instant given (see [`Hunt::avoid`]).
    avoided: Vec<(SocketAddr, Instant)>,
}

#[derive(Debug)]
struct Learned {
    address: SocketAddr,
    expires_at: Instant,
}

#[derive(Debug)]
struct Attempt {
    remote: SocketAddr,
    assoc: Option<AssocId>,
}

impl Hunt {
    /// A hunt that has not started.
    pub fn new(config: HuntConfig) -> Self {
        assert!(config.parallel_max >= 1, "a hunt tries at least one registrar");
        assert!(config.parallel_max <= PARALLEL_MAX, "SH1: no more than three");
        let hunt_timeout = config.hunt_timeout_initial;
        Self {
            config,
            learned: Vec::new(),
            attempts: Vec::new(),
            tried: Vec::new(),
            hunting: false,
            cursor: 0,
            hunt_timeout,
            timers: TimerTable::new(),
            connects: VecDeque::new(),
            aborts: VecDeque::new(),
            avoided: Vec::new(),
        }
    }

    /// Leaves `remote` out of the hunt's rounds until `until`, unless no other registrar is
    /// known then: a registrar that refused a registration for lack of resources (draining,
    /// or full) should not win the next hunt only because it answers first.
    pub fn avoid(&mut self, now: Instant, remote: SocketAddr, until: Instant) {
        self.avoided.retain(|&(a, end)| a != remote && now < end);
        if self.avoided.len() >= AVOIDED_REGISTRARS_MAX {
            let first = (0..self.avoided.len()).min_by_key(|&i| self.avoided[i].1);
            first.map(|i| self.avoided.swap_remove(i));
        }
        self.avoided.push((remote, until));
        assert!(self.avoided.len() <= AVOIDED_REGISTRARS_MAX);
    }

    /// Whether a registrar other than `remote`, and not avoided, is known at `now`: somewhere
    /// else to go.
    pub fn has_alternative(&self, now: Instant, remote: SocketAddr) -> bool {
        self.candidates(now).iter().any(|&c| c != remote && !self.is_avoided(now, c))
    }

    fn is_avoided(&self, now: Instant, remote: SocketAddr) -> bool {
        self.avoided.iter().any(|&(a, end)| a == remote && now < end)
    }

    /// The candidates a round takes from: the avoided ones left out, unless that leaves none.
    fn round_candidates(&self, now: Instant) -> Vec<SocketAddr> {
        let all = self.candidates(now);
        let open: Vec<SocketAddr> =
            all.iter().copied().filter(|&c| !self.is_avoided(now, c)).collect();
        if open.is_empty() {
            all
        } else {
            open
        }
    }

    /// Whether a hunt is running.
    pub fn is_hunting(&self) -> bool {
        self.hunting
    }

    /// T5 for the next round.
    pub fn hunt_timeout(&self) -> Duration {
        self.hunt_timeout
    }

    /// Every registrar known at `now`: configured first, then learned ones not yet expired.
    pub fn candidates(&self, now: Instant) -> Vec<SocketAddr> {
        let mut out = self.config.registrars.clone();
        for l in self.learned.iter().filter(|l| now < l.expires_at) {
            if !out.contains(&l.address) {
                out.push(l.address);
            }
        }
        out
    }

    /// Starts a hunt (at startup, or when the home registrar failed); a running hunt goes on.
    pub fn start(&mut self, now: Instant) {
        if self.hunting {
            return;
        }
        self.hunting = true;
        self.start_round(now);
    }

    /// A Server Announce from `source` (its IP packet's source address).
    pub fn handle_announce(&mut self, now: Instant, source: SocketAddr, announce: &ServerAnnounce) {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
        //# If no
        //# transport parameters are included in the ASAP_SERVER_ANNOUNCE
        //# message, the SCTP transport protocol is assumed to be used and the
        //# source IP address and the IANA-registered ASAP port number is used
        //# for communication with the ENRP server.
        let mut addresses: Vec<SocketAddr> = Vec::new();
        for t in &announce.transports {
            // We speak ASAP over SCTP only, so TCP (and other) transports are not for us.
            if let UserTransport::Sctp(s) = t {
                addresses
                    .extend(s.addresses.as_slice().iter().map(|&ip| SocketAddr::new(ip, s.port)));
            }
        }
        if announce.transports.is_empty() {
            addresses.push(SocketAddr::new(source.ip(), ASAP_PORT));
        }
        let expires_at = now + self.config.announce_timeout;
        for address in addresses.into_iter().filter(|a| !is_unspecified(a.ip())) {
            //# it SHOULD insert all new included transport addresses into its list of
            //# ENRP server addresses and start a T7-ENRPoutdate timer for each
            //# address.  For all already-known, included transport addresses, the
            //# T7-ENRPoutdate timer MUST be restarted for each address.
            if let Some(known) = self.learned.iter_mut().find(|l| l.address == address) {
                known.expires_at = expires_at;
            } else if self.learned.len() < LEARNED_REGISTRARS_MAX {
                self.learned.push(Learned { address, expires_at });
            }
        }
        assert!(self.learned.len() <= LEARNED_REGISTRARS_MAX);
        // A hunt that had nobody to try can try the newcomer now.
        if self.hunting && self.attempts.is_empty() {
            self.refill(now);
        }
    }

    /// The driver started the association for `remote` as `assoc`.
    pub fn handle_connect_started(&mut self, remote: SocketAddr, assoc: AssocId) {
        if let Some(a) = self.attempts.iter_mut().find(|a| a.remote == remote && a.assoc.is_none())
        {
            a.assoc = Some(assoc);
        } else {
            // Started after its round ended: not wanted any more.
            self.aborts.push_back(assoc);
        }
    }

    /// The driver could not even start the association for `remote`: try another (SH4).
    pub fn handle_connect_failed(&mut self, now: Instant, remote: SocketAddr) {
        if let Some(i) = self.attempts.iter().position(|a| a.remote == remote && a.assoc.is_none())
        {
            self.attempts.remove(i);
            self.refill(now);
        }
    }

    /// `assoc` is up. Returns whether it won the hunt: then the other attempts are aborted
    /// and T5 goes back to its initial value.
    pub fn handle_up(&mut self, assoc: AssocId) -> bool {
        if !self.attempts.iter().any(|a| a.assoc == Some(assoc)) {
            return false;
        }
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
        //# SH3)  If the ASAP Endpoint establishes an association or connection
        //# it MUST stop its T5-Serverhunt timer.  The ASAP Endpoint SHOULD
        //# also reset the T5-Serverhunt timer to its initial value and then
        //# proceed to step SH6.
        self.timers.stop(HuntTimer::ServerHunt);
        self.hunt_timeout = self.config.hunt_timeout_initial;
        self.abort_attempts(Some(assoc));
        self.hunting = false;
        true
    }

    /// `assoc` failed or closed. An attempt of the hunt is replaced by another (SH4).
    pub fn handle_closed(&mut self, now: Instant, assoc: AssocId) {
        if let Some(i) = self.attempts.iter().position(|a| a.assoc == Some(assoc)) {
            self.attempts.remove(i);
            self.refill(now);
        }
    }

    /// Fires T5 and expires learned registrars at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
        //# If a T7-ENRPoutdate timer
        //# for a transport address expires, the corresponding address is deleted
        //# from the managed list of transport addresses of the PU or PE.
        self.learned.retain(|l| now < l.expires_at);
        self.avoided.retain(|&(_, end)| now < end);
        if self.timers.take_expired(now) != Some(HuntTimer::ServerHunt) {
            return;
        }
        //# SH5)  If the T5-Serverhunt timer expires, the following should be
        //# performed:
        //# SH5.1)  The ASAP Endpoint MUST double the value of the T5-
        //# Serverhunt timer.  Note that this doubling is capped at the
        //# value RETRAN.max.
        self.hunt_timeout = self.hunt_timeout.saturating_mul(2).min(self.config.hunt_timeout_max);
        //# SH5.2)  The ASAP Endpoint SHOULD stop the establishment of
        //# associations and connections with the transport addresses
        //# selected in step SH1.
        self.abort_attempts(None);
        //# SH5.2)  The ASAP Endpoint SHOULD repeat trying to establish an
        //# association or connection by proceeding to step SH1.
        self.start_round(now);
    }

    /// The next T5 or T7 deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t7 = self.learned.iter().map(|l| l.expires_at).min();
        [self.timers.next_timeout(), t7].into_iter().flatten().min()
    }

    /// An address to open an association to.
    pub fn poll_connect(&mut self) -> Option<SocketAddr> {
        self.connects.pop_front()
    }

    /// An association to abort (a losing or stale attempt).
    pub fn poll_abort(&mut self) -> Option<AssocId> {
        self.aborts.pop_front()
    }

    fn start_round(&mut self, now: Instant) {
        //# SH1)  The PE or PU SHOULD try to establish an association or
        //# connection, with no more than three ENRP servers.
        //# SH2)  The ASAP Endpoint shall start a T5-Serverhunt timer.
        self.tried.clear();
        let candidates = self.round_candidates(now);
        if !candidates.is_empty() {
            self.cursor %= candidates.len();
        }
        self.timers.set(HuntTimer::ServerHunt, now + self.hunt_timeout);
        let start = self.cursor;
        self.refill(now);
        // The next round starts after the addresses this one began with (SH5.2: a different
        // set), wrapping round a short list.
        self.cursor = start + self.tried.len();
    }

    /// Tops the round up to `parallel_max` attempts with addresses not tried in this round.
    fn refill(&mut self, now: Instant) {
        let candidates = self.round_candidates(now);
        let n = candidates.len();
        for step in 0..n {
            if self.attempts.len() >= self.config.parallel_max {
                break;
            }
            let remote = candidates[(self.cursor + step) % n];
            if self.tried.contains(&remote) {
                continue;
            }
            self.tried.push(remote);
            self.attempts.push(Attempt { remote, assoc: None });
            self.connects.push_back(remote);
        }
        assert!(self.attempts.len() <= self.config.parallel_max);
    }

    fn abort_attempts(&mut self, keep: Option<AssocId>) {
        for a in self.attempts.drain(..) {
            match a.assoc {
                Some(assoc) if Some(assoc) != keep => self.aborts.push_back(assoc),
                Some(_) => {}
                // Not started yet: drop the queued connect.
                None => self.connects.retain(|&r| r != a.remote),
            }
        }
    }
}

fn is_unspecified(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::param::{AddressList, SctpTransport};
    use codec::{RegistrarId, TransportUse};

    const T5: Duration = Duration::from_micros(1_000);
    const CAP: Duration = Duration::from_micros(4_000);
    const T7: Duration = Duration::from_micros(500);

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 3863))
    }

    fn hunt(registrars: &[SocketAddr]) -> Hunt {
        Hunt::new(HuntConfig {
            registrars: registrars.to_vec(),
            parallel_max: 3,
            hunt_timeout_initial: T5,
            hunt_timeout_max: CAP,
            announce_timeout: T7,
        })
    }

    fn connects(h: &mut Hunt) -> Vec<SocketAddr> {
        std::iter::from_fn(|| h.poll_connect()).collect()
    }

    /// Starts each queued connect as association `first`, `first + 1`, ...
    fn start_all(h: &mut Hunt, first: u32) -> Vec<AssocId> {
        let remotes = connects(h);
        let mut out = Vec::new();
        for (i, remote) in remotes.into_iter().enumerate() {
            let assoc = AssocId(first + i as u32);
            h.handle_connect_started(remote, assoc);
            out.push(assoc);
        }
        out
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
    //= type=test
    //# SH1)  The PE or PU SHOULD try to establish an association or
    //# connection, with no more than three ENRP servers.
    // Goal: a hunt tries three registrars at once, the first one up wins and the others are
    // aborted. Method: five configured; the second attempt comes up.
    #[test]
    fn three_in_parallel_first_up_wins() {
        let mut h = hunt(&[addr(1), addr(2), addr(3), addr(4), addr(5)]);
        h.start(Instant::ZERO);
        assert_eq!(connects(&mut h), [addr(1), addr(2), addr(3)]);
        for (i, a) in [addr(1), addr(2), addr(3)].into_iter().enumerate() {
            h.handle_connect_started(a, AssocId(i as u32));
        }
        assert!(h.handle_up(AssocId(1)));
        let aborted: Vec<_> = std::iter::from_fn(|| h.poll_abort()).collect();
        assert_eq!(aborted, [AssocId(0), AssocId(2)]);
        assert!(!h.is_hunting());
        assert_eq!(h.poll_timeout(), None, "T5 stopped");
        assert!(!h.handle_up(AssocId(0)), "a loser is not a winner later");
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
    //= type=test
    //# SH4)  If an association or connection establishment fails, the ASAP
    //# Endpoint SHOULD try to establish an association or connection
    //# using a different transport address.
    // Goal: a failed attempt is replaced at once by an address not tried in this round.
    // Method: four configured, three tried; one fails.
    #[test]
    fn failed_attempt_replaced_by_a_different_address() {
        let mut h = hunt(&[addr(1), addr(2), addr(3), addr(4)]);
        h.start(Instant::ZERO);
        let assocs = start_all(&mut h, 0);
        h.handle_closed(Instant::ZERO, assocs[0]);
        assert_eq!(connects(&mut h), [addr(4)]);
        h.handle_closed(Instant::ZERO, assocs[1]);
        assert_eq!(connects(&mut h), [], "every address was tried in this round");
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
    //= type=test
    //# SH5.1)  The ASAP Endpoint MUST double the value of the T5-
    //# Serverhunt timer.  Note that this doubling is capped at the
    //# value RETRAN.max.
    // Goal: rounds start T5, 2·T5, 4·T5 apart and then stay at the cap. Method: every attempt
    // fails at once; boundary pairs (deadline - 1 µs: no connect; deadline: connects) for
    // rounds 2 to 5, with T5 = 1 ms and the cap 4 ms.
    #[test]
    fn back_off_doubles_to_the_cap() {
        let mut h = hunt(&[addr(1)]);
        h.start(Instant::ZERO);
        let mut round_start = Instant::ZERO;
        for (round, gap_us) in [1_000, 2_000, 4_000, 4_000].into_iter().enumerate() {
            assert_eq!(h.poll_connect(), Some(addr(1)), "round {round} starts");
            h.handle_connect_started(addr(1), AssocId(round as u32));
            h.handle_closed(round_start, AssocId(round as u32));
            let due = round_start + Duration::from_micros(gap_us);
            assert_eq!(h.poll_timeout(), Some(due));
            h.handle_timeout(Instant::from_micros(due.as_micros() - 1));
            assert_eq!(connects(&mut h), [], "the next round must not start before {due:?}");
            h.handle_timeout(due);
            round_start = due;
        }
        assert_eq!(h.poll_connect(), Some(addr(1)));
        assert_eq!(h.hunt_timeout(), CAP);
    }

    // Goal: a round that times out aborts its attempts and moves to the next addresses
    // (SH5.2: a different set). Method: four configured, three parallel, one T5 expiry.
    #[test]
    fn timed_out_round_aborts_and_rotates() {
        let mut h = hunt(&[addr(1), addr(2), addr(3), addr(4)]);
        h.start(Instant::ZERO);
        let assocs = start_all(&mut h, 0);
        h.handle_timeout(Instant::ZERO + T5);
        let aborted: Vec<_> = std::iter::from_fn(|| h.poll_abort()).collect();
        assert_eq!(aborted, assocs);
        assert_eq!(connects(&mut h), [addr(4), addr(1), addr(2)]);
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
    //= type=test
    //# If a T7-ENRPoutdate timer
    //# for a transport address expires, the corresponding address is deleted
    //# from the managed list of transport addresses of the PU or PE.
    // Goal: announced registrars join the list and leave it T7 after their last announce;
    // an announce without transports means the source address and the ASAP port.
    // Method: two announces, a refresh, and a boundary pair at the expiry.
    #[test]
    fn announced_registrars_expire_after_t7() {
        let mut h = hunt(&[]);
        let sctp = UserTransport::Sctp(SctpTransport {
            port: 4000,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&["10.0.0.7".parse().unwrap()]).unwrap(),
        });
        let with = ServerAnnounce { server_id: RegistrarId(1), transports: vec![sctp] };
        let bare = ServerAnnounce { server_id: RegistrarId(2), transports: vec![] };
        let source = SocketAddr::from(([10, 0, 0, 8], 9999));
        h.handle_announce(Instant::ZERO, source, &with);
        h.handle_announce(Instant::from_micros(100), source, &bare);
        let both = [SocketAddr::from(([10, 0, 0, 7], 4000)), addr(8)];
        assert_eq!(h.candidates(Instant::from_micros(499)), both);
        h.handle_timeout(Instant::from_micros(499));
        assert_eq!(h.poll_timeout(), Some(Instant::from_micros(500)));
        h.handle_timeout(Instant::from_micros(500));
        assert_eq!(h.candidates(Instant::from_micros(500)), [addr(8)]);
        h.handle_announce(Instant::from_micros(599), source, &bare);
        assert_eq!(h.candidates(Instant::from_micros(1_098)), [addr(8)], "refreshed");
        assert_eq!(h.candidates(Instant::from_micros(1_099)), []);
    }

    // Goal: a hunt with nobody to try takes an announced registrar as soon as it is heard.
    // Method: start with an empty list, then one announce.
    #[test]
    fn hunt_waits_for_an_announce() {
        let mut h = hunt(&[]);
        h.start(Instant::ZERO);
        assert_eq!(connects(&mut h), []);
        let bare = ServerAnnounce { server_id: RegistrarId(2), transports: vec![] };
        h.handle_announce(Instant::from_micros(10), addr(8), &bare);
        assert_eq!(connects(&mut h), [addr(8)]);
    }
}
