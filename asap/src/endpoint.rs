//! [`Endpoint`]: one PE/PU ASAP endpoint, sans-IO. It ties the hunt, the links to registrars,
//! the PE state machines and the PU cache together.

use std::collections::VecDeque;
use std::net::SocketAddr;

use codec::asap::{HandleResolution, HandleResolutionResponse, Message};
use codec::param::Policy;
use codec::{DecodeError, ErrorCause, PoolElement, PoolElementId, PoolHandle, RegistrarId};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use transport::AssocId;

use crate::hunt::{Hunt, HuntConfig, PARALLEL_MAX};
use crate::link::{Link, LinkEvent, Request};
use crate::pe::{PeConfig, PeOutcome, PeState, PoolElementFsm};
use crate::pu::{PoolUserCache, STALE_CACHE_DEFAULT};
use crate::subscription::{
    Answer, Answered, SubscriptionError, SubscriptionState, Subscriptions, Timing, Updates,
};
use crate::time::{Duration, Instant};

/// PEs one endpoint hosts. A process registers in a few pools; 64 bounds every per-PE scan.
pub const POOL_ELEMENTS_MAX: usize = 64;

/// Pools whose resolution may wait at once (unsent, or sent and unanswered).
pub const RESOLUTIONS_MAX: usize = 256;

/// PEs a subscription asks for when the configuration names no number: all a message can
/// carry (the registrar's default is a handful, a watcher wants the whole pool).
pub const SUBSCRIPTION_ITEMS_WANTED: u32 = codec::POOL_ELEMENTS_PER_MESSAGE_MAX as u32;

/// How often an accepted subscription is probed unless configured: 30 s, the ENRP peer
/// heartbeat cycle (RFC 5353 §4.2), so that a PU notices a dead home about as soon as the
/// registrars notice each other.
pub const SUBSCRIPTION_PROBE_DEFAULT: Duration = Duration::from_secs(30);

/// How long a PE's home may be silent unless configured: 15 s, three periods of our
/// registrar's Endpoint Keep Alive (5 s, spread ±50 %, RFC 5352 §3.4), so that a home that
/// is alive always speaks up in time.
///
/// Why it exists (regression "a PE hunting A and B didn't re-register at B within 15 s after
/// A was killed"): a registered PE sends nothing to its home until T4 (70 s for a 90 s life),
/// a killed home sends no keep-alives, and SCTP's heartbeats take minutes to declare the
/// association dead; so the PE sat at its dead home for up to a minute. After this much
/// silence the PE re-registers (RFC 5352 §3.1: "At any time, a registered PE MAY wish to
/// re-register"): a live home answers, a dead one times out at T2 and the hunt follows.
pub const HOME_SILENCE_DEFAULT: Duration = Duration::from_secs(15);

/// Associations to registrars kept up: the home, plus registrars that connect to us to take
/// our PEs over (§3.4, KA2.4), plus room for the hunt's winner before the old home is gone.
pub const LINKS_MAX: usize = PARALLEL_MAX + 2;

/// How an endpoint behaves; the defaults are RFC 5352 §7.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Registrars and the hunt's timers.
    pub hunt: HuntConfig,
    /// T1-ENRPrequest: how long a Handle Resolution waits (15 s).
    pub request_timeout: Duration,
    /// T2-registration (30 s).
    pub registration_timeout: Duration,
    /// T3-deregistration (30 s).
    pub deregistration_timeout: Duration,
    /// MAX-REG-ATTEMPT: registration timeouts in a row before the PE gives up (2).
    pub registration_attempts_max: u32,
    /// MAX-REQUEST-RETRANSMIT: Handle Resolution timeouts before the user hears (2).
    pub request_attempts_max: u32,
    /// stale_cache_value (§7.2): how long a resolution is used from the cache.
    pub stale_cache: Duration,
    /// PEs asked for in a Handle Resolution (RSPLIB's option); `None` leaves it to the
    /// registrar.
    pub items_wanted: Option<u32>,
    /// How often a subscription the registrar accepted is sent again (30 s), so that a home
    /// gone silent is noticed by the request's timeout (see [`crate::subscription`]).
    pub subscription_probe: Duration,
    /// How long a PE's home may send nothing (no keep-alive, no answer) before the PE
    /// re-registers early to find out whether it is still there (15 s; `Duration::MAX`:
    /// never). Without it, a killed home is noticed only at T4.
    pub home_silence: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-7.1
        //# T1-ENRPrequest -  A timer started when a request is sent by ASAP to
        //# the ENRP server (providing application information is queued).
        //# Normally set to 15 seconds.
        Self {
            hunt: HuntConfig::default(),
            request_timeout: Duration::from_secs(15),
            registration_timeout: Duration::from_secs(30),
            deregistration_timeout: Duration::from_secs(30),
            registration_attempts_max: 2,
            request_attempts_max: 2,
            stale_cache: STALE_CACHE_DEFAULT,
            items_wanted: None,
            subscription_probe: SUBSCRIPTION_PROBE_DEFAULT,
            home_silence: HOME_SILENCE_DEFAULT,
        }
    }
}

/// A PE of an endpoint (an index into its PE table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeHandle(pub u32);

/// Bytes for the driver to send on an association (stream 0, PPID 11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The association.
    pub assoc: AssocId,
    /// One ASAP message.
    pub bytes: Vec<u8>,
}

/// What the user hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The PE left its pool.
    Deregistered {
        /// The PE.
        pe: PeHandle,
    },
    /// A registrar took the PE over (a keep-alive with the H flag, §3.4 KA2.4).
    HomeChanged {
        /// The PE.
        pe: PeHandle,
        /// The new home registrar.
        registrar: RegistrarId,
        /// The association to it.
        assoc: AssocId,
    },
    /// A subscribed pool's current PEs: the first answer to [`Endpoint::subscribe`], each
    /// push of the registrar, or each poll's answer where the registrar does not push.
    PoolChanged {
        /// The pool.
        pool_handle: PoolHandle,
        /// All its PEs, as the registrar listed them (at most
        /// [`codec::POOL_ELEMENTS_PER_MESSAGE_MAX`]).
        elements: Vec<PoolElement>,
        /// Pushed by the registrar, or polled because it did not accept the subscription.
        updates: Updates,
    },
    /// A subscribed pool no longer exists at the home registrar (a negative push or poll);
    /// the subscription has ended.
    PoolGone {
        /// The pool.
        pool_handle: PoolHandle,
    },
    /// The hunt found a home registrar.
    RegistrarFound {
        /// The association to it.
        assoc: AssocId,
        /// Its address.
        peer: SocketAddr,
    },
    /// The home registrar's association failed or timed out; a hunt runs.
    RegistrarLost {
        /// The association that ended.
        assoc: AssocId,
    },
    /// The PE is registered (first time, or at a new home after a failover).
    Registered {
        /// The PE.
        pe: PeHandle,
        /// Its identifier.
        id: PoolElementId,
    },
    /// The PE is not registered and has stopped trying.
    RegistrationFailed {
        /// The PE.
        pe: PeHandle,
        /// Why.
        failure: Failure,
    },
    /// A Handle Resolution failed.
    ResolutionFailed {
        /// The pool.
        pool_handle: PoolHandle,
        /// Why (Unknown Pool Handle is `Refused(ErrorCause::UNKNOWN_POOL_HANDLE)`).
        failure: Failure,
    },
    /// A Handle Resolution was answered (and cached).
    Resolved {
        /// The pool.
        pool_handle: PoolHandle,
        /// Its PEs as the registrar listed them.
        elements: Vec<PoolElement>,
    },
    /// A subscription's first answer was negative (the pool is unknown, say): no
    /// subscription exists.
    SubscriptionFailed {
        /// The pool.
        pool_handle: PoolHandle,
        /// Why.
        failure: Failure,
    },
    /// A resolution of [`Endpoint::resolve_uncached`] was answered (not cached; see
    /// `driven.rs`).
    ResolvedUncached {
        /// The pool.
        pool_handle: PoolHandle,
        /// How many PEs the registrar listed (they are not decoded).
        pool_elements: u32,
    },
}

/// Why a registration or resolution failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The registrar said no, with this RFC 5354 cause.
    Refused(ErrorCause),
    /// No answer after the configured number of attempts.
    TimedOut,
}

/// What [`Endpoint::resolve`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A fresh cache entry.
    Cached(Vec<PoolElement>),
    /// A Handle Resolution is on its way; [`Event::Resolved`] or [`Event::ResolutionFailed`]
    /// follows.
    Pending,
}

/// Why the endpoint refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// [`POOL_ELEMENTS_MAX`] PEs exist already.
    TooManyPoolElements,
    /// [`RESOLUTIONS_MAX`] resolutions wait already.
    TooManyResolutions,
    /// [`crate::subscription::SUBSCRIPTIONS_MAX`] pools are followed already.
    TooManySubscriptions,
    /// No such PE.
    UnknownPoolElement,
    /// The home's link has [`crate::link::PENDING_REQUESTS_MAX`] requests waiting (a call that
    /// sends at once, see `driven.rs`).
    Busy,
    /// No home registrar is up (a call that sends at once, see `driven.rs`).
    NoHome,
}

/// One ASAP endpoint (PE, PU or both), sans-IO.
///
/// Inputs: [`Self::handle_up`], [`Self::handle_data`], [`Self::handle_closed`],
/// [`Self::handle_timeout`], [`Self::handle_announce`], the connect reports
/// [`Self::handle_connect_started`] / [`Self::handle_connect_failed`], and the user calls
/// ([`Self::register`], [`Self::resolve`], ...).
///
/// After any input, drain the outputs **in this order**, each until it returns `None`:
/// 1. [`Self::poll_transmit`]: send first, so keep-alive Acks leave before anything else;
/// 2. [`Self::poll_abort`]: then abort, so losing hunt attempts are gone before new ones;
/// 3. [`Self::poll_connect`]: open associations for the hunt, and report each with
///    `handle_connect_started` (or `_failed`) before the next input;
/// 4. [`Self::poll_event`]: what the user hears;
///
/// then sleep until [`Self::poll_timeout`] (or input) and call [`Self::handle_timeout`].
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    rng: SmallRng,
    hunt: Hunt,
    links: Vec<Link>,
    home: Option<AssocId>,
    pes: Vec<PoolElementFsm>,
    cache: PoolUserCache,
    resolutions: Vec<Wanted>,
    subscriptions: Subscriptions,
    aborts: VecDeque<AssocId>,
    events: VecDeque<Event>,
    /// Uncached resolutions sent and not answered, oldest first (see `driven.rs`).
    uncached: VecDeque<(AssocId, PoolHandle)>,
    /// Reused by `drain_link`; empty between calls.
    link_events: Vec<LinkEvent>,
}

/// A pool the user wants resolved.
#[derive(Debug)]
struct Wanted {
    pool_handle: PoolHandle,
    sent: bool,
    timeouts: u32,
}

impl Endpoint {
    /// An endpoint with its randomness (PE ids) seeded from `seed`.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        let hunt = Hunt::new(config.hunt.clone());
        let cache = PoolUserCache::new(config.stale_cache);
        Self {
            config,
            rng: SmallRng::seed_from_u64(seed),
            hunt,
            links: Vec::new(),
            home: None,
            pes: Vec::new(),
            cache,
            resolutions: Vec::new(),
            subscriptions: Subscriptions::new(),
            aborts: VecDeque::new(),
            events: VecDeque::new(),
            uncached: VecDeque::new(),
            link_events: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The association to the home registrar, if one is up.
    pub fn home(&self) -> Option<AssocId> {
        self.home
    }

    /// The PE behind `pe`.
    pub fn pool_element(&self, pe: PeHandle) -> Option<&PoolElementFsm> {
        self.pes.get(pe.0 as usize)
    }

    /// The hunt, e.g. for the registrars it knows.
    pub fn hunt(&self) -> &Hunt {
        &self.hunt
    }

    /// The PU cache.
    pub fn cache(&self) -> &PoolUserCache {
        &self.cache
    }

    /// Finds a home registrar if there is none (a running hunt goes on).
    pub fn start(&mut self, now: Instant) {
        if self.home.is_none() {
            self.hunt.start(now);
        }
    }

    /// Registers a new PE: now if a home registrar is up, else once the hunt found one.
    pub fn register(&mut self, now: Instant, config: PeConfig) -> Result<PeHandle, EndpointError> {
        if self.pes.len() >= POOL_ELEMENTS_MAX {
            return Err(EndpointError::TooManyPoolElements);
        }
        let fsm = PoolElementFsm::new(config, &mut self.rng);
        let handle = PeHandle(u32::try_from(self.pes.len()).expect("bounded by POOL_ELEMENTS_MAX"));
        for link in &mut self.links {
            link.answer_for(fsm.config().pool_handle, fsm.id());
        }
        self.pes.push(fsm);
        self.serve_waiting(now);
        Ok(handle)
    }

    /// Deregisters a PE (§3.2) over the association it registered on, or the home's.
    pub fn deregister(&mut self, now: Instant, pe: PeHandle) -> Result<(), EndpointError> {
        let fsm = self.pes.get_mut(pe.0 as usize).ok_or(EndpointError::UnknownPoolElement)?;
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.2
        //# When de-registering, the PE SHOULD use the SCTP association that was
        //# used for registration with its Home ENRP server.
        let assoc = fsm.assoc().or(self.home);
        let link = self.links.iter_mut().find(|l| Some(l.assoc()) == assoc);
        fsm.deregister(now, link, self.config.deregistration_timeout);
        self.serve_waiting(now);
        Ok(())
    }

    /// Changes a PE's policy or its value (load, weight, priority); a registered PE
    /// re-registers with it.
    pub fn set_policy(
        &mut self,
        now: Instant,
        pe: PeHandle,
        policy: Policy,
    ) -> Result<(), EndpointError> {
        let fsm = self.pes.get_mut(pe.0 as usize).ok_or(EndpointError::UnknownPoolElement)?;
        let assoc = fsm.assoc().or(self.home);
        let link = self.links.iter_mut().find(|l| Some(l.assoc()) == assoc);
        let sent = fsm.set_policy(now, policy, link, self.config.registration_timeout);
        if sent.is_err() {
            // The link is full of requests; wait for a home to take it.
            fsm.handle_link_lost(assoc.expect("a link was found, so an association"));
        }
        self.serve_waiting(now);
        Ok(())
    }

    /// Resolves a pool handle: from the cache when fresh (C1, C4), else by a Handle
    /// Resolution to the home registrar (NR1-NR4; hunting first if there is none, NR2).
    pub fn resolve(
        &mut self,
        now: Instant,
        pool_handle: PoolHandle,
    ) -> Result<Resolution, EndpointError> {
        if let Some(elements) = self.cache.lookup(now, &pool_handle) {
            return Ok(Resolution::Cached(elements));
        }
        if !self.resolutions.iter().any(|w| w.pool_handle == pool_handle) {
            if self.resolutions.len() >= RESOLUTIONS_MAX {
                return Err(EndpointError::TooManyResolutions);
            }
            self.resolutions.push(Wanted { pool_handle, sent: false, timeouts: 0 });
        }
        self.serve_waiting(now);
        Ok(Resolution::Pending)
    }

    /// Follows `pool_handle`: a Handle Resolution with the S flag goes to the home registrar
    /// (after a hunt if there is none), and again to every later home. Each answer and push
    /// is an [`Event::PoolChanged`] and refreshes the cache; a negative one ends the
    /// subscription ([`Event::PoolGone`], or [`Event::SubscriptionFailed`] for the first).
    /// Where the registrar does not set the A flag, the endpoint polls every stale-cache
    /// interval instead. Following a pool already followed changes nothing.
    pub fn subscribe(
        &mut self,
        now: Instant,
        pool_handle: PoolHandle,
    ) -> Result<(), EndpointError> {
        match self.subscriptions.add(pool_handle) {
            Ok(_) => {}
            Err(SubscriptionError::Full) => return Err(EndpointError::TooManySubscriptions),
        }
        self.serve_waiting(now);
        Ok(())
    }

    /// Stops following `pool_handle`. ASAP has no message to cancel a subscription, so the
    /// registrar keeps pushing until the association ends; those pushes are ignored.
    pub fn unsubscribe(&mut self, pool_handle: &PoolHandle) -> bool {
        self.subscriptions.remove(pool_handle)
    }

    /// The pools followed and where each subscription stands.
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    /// Picks a PE of a freshly cached pool (see [`PoolUserCache::select`]).
    pub fn select(&mut self, now: Instant, pool_handle: &PoolHandle) -> Option<PoolElement> {
        self.cache.select(now, pool_handle)
    }

    /// The user could not reach a PE it was handed: reports it to the home registrar (§3.5),
    /// once per failure. Returns whether a report was queued.
    pub fn report_unreachable(&mut self, pool_handle: &PoolHandle, pe_id: PoolElementId) -> bool {
        let Some(home) = self.home else { return false };
        let Some(report) = self.cache.report_unreachable(pool_handle, pe_id) else {
            return false;
        };
        let link = self.links.iter_mut().find(|l| l.assoc() == home);
        link.expect("the home has a link").send(&report);
        true
    }
}

/// Inputs from the driver, and the outputs it polls.
impl Endpoint {
    /// The driver started the hunt's association to `remote` as `assoc`.
    pub fn handle_connect_started(&mut self, remote: SocketAddr, assoc: AssocId) {
        self.hunt.handle_connect_started(remote, assoc);
    }

    /// The driver could not start an association to `remote`.
    pub fn handle_connect_failed(&mut self, now: Instant, remote: SocketAddr) {
        self.hunt.handle_connect_failed(now, remote);
    }

    /// The associations this endpoint holds to registrars (for a driver that shuts them
    /// down gracefully before it goes away).
    pub fn associations(&self) -> impl Iterator<Item = AssocId> + '_ {
        self.links.iter().map(Link::assoc)
    }

    /// `assoc` to `peer` is up: the hunt's winner becomes the home; a registrar that opened
    /// an association to us (to take our PEs over) gets a link too.
    pub fn handle_up(&mut self, now: Instant, assoc: AssocId, peer: SocketAddr) {
        if self.links.iter().any(|l| l.assoc() == assoc) {
            return;
        }
        let won = self.hunt.handle_up(assoc);
        // The last slot is the hunt's: a hunt runs only without a home, so its winner fits.
        let room = if won { LINKS_MAX } else { LINKS_MAX - 1 };
        if self.links.len() >= room {
            self.aborts.push_back(assoc);
            return;
        }
        let mut link = Link::new(assoc, peer);
        for pe in self.pes.iter().filter(|pe| *pe.state() != PeState::Deregistered) {
            link.answer_for(pe.config().pool_handle, pe.id());
        }
        self.links.push(link);
        assert!(self.links.len() <= LINKS_MAX);
        if won {
            //= https://www.rfc-editor.org/rfc/rfc5352#section-3.6
            //# SH6)  The PE or PU shall pick one of the ENRP servers with which it
            //# was able to establish an association or connection, and send all
            //# subsequent ENRP request messages to this new Home ENRP server.
            self.home = Some(assoc);
            self.subscriptions.handle_home_changed(assoc);
            self.events.push_back(Event::RegistrarFound { assoc, peer });
            self.serve_waiting(now);
        }
    }

    /// One ASAP message (PPID 11) on `assoc`.
    pub fn handle_data(&mut self, now: Instant, assoc: AssocId, bytes: &[u8]) {
        if self.handle_uncached_answer(now, assoc, bytes)
            || self.handle_outcome_answer(now, assoc, bytes)
        {
            return;
        }
        let Some(link) = self.links.iter_mut().find(|l| l.assoc() == assoc) else { return };
        link.handle_data(now, bytes);
        self.drain_link(now, assoc);
    }

    /// `assoc` closed or failed.
    pub fn handle_closed(&mut self, now: Instant, assoc: AssocId) {
        self.hunt.handle_closed(now, assoc);
        self.drop_link(now, assoc);
    }

    /// A Server Announce datagram from `source` (the multicast channel, §3.6). Anything else
    /// is ignored.
    pub fn handle_announce(
        &mut self,
        now: Instant,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        if let Message::ServerAnnounce(announce) = Message::parse(bytes)? {
            self.hunt.handle_announce(now, source, &announce);
        }
        Ok(())
    }

    /// Runs every timer due at `now`: the hunt's T5 and T7, request timeouts, T4.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hunt.handle_timeout(now);
        let assocs: Vec<AssocId> = self.links.iter().map(Link::assoc).collect();
        for assoc in assocs {
            if let Some(link) = self.links.iter_mut().find(|l| l.assoc() == assoc) {
                link.handle_timeout(now);
                self.drain_link(now, assoc);
            }
        }
        if self.silence_deadline().is_some_and(|at| at <= now) {
            self.probe_home(now);
        }
        let timeout = self.config.registration_timeout;
        for pe in &mut self.pes {
            if pe.poll_timeout().is_some_and(|at| at <= now) {
                let assoc = pe.assoc().or(self.home);
                let link = self.links.iter_mut().find(|l| Some(l.assoc()) == assoc);
                if pe.handle_timeout(now, link, timeout).is_err() {
                    pe.handle_link_lost(assoc.expect("a link was found, so an association"));
                }
            }
        }
        self.serve_waiting(now);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.links.iter_mut().find_map(|l| {
            let assoc = l.assoc();
            l.poll_transmit().map(|bytes| Transmit { assoc, bytes })
        })
    }

    /// The next association to abort.
    pub fn poll_abort(&mut self) -> Option<AssocId> {
        self.aborts.pop_front().or_else(|| self.hunt.poll_abort())
    }

    /// The next registrar to open an association to (the hunt's).
    pub fn poll_connect(&mut self) -> Option<SocketAddr> {
        self.hunt.poll_connect()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let links = self.links.iter().filter_map(Link::poll_timeout).min();
        let pes = self.pes.iter().filter_map(PoolElementFsm::poll_timeout).min();
        let polls = self.subscriptions.poll_timeout();
        let silence = self.silence_deadline();
        [self.hunt.poll_timeout(), links, pes, polls, silence].into_iter().flatten().min()
    }

    /// When the home's silence calls for a probe: with PEs registered there and nothing
    /// asked of it (a pending request has its own deadline), `home_silence` after it last
    /// spoke.
    fn silence_deadline(&self) -> Option<Instant> {
        let home = self.home?;
        let link = self.links.iter().find(|l| l.assoc() == home)?;
        let registered_there =
            self.pes.iter().any(|pe| *pe.state() == PeState::Registered { assoc: home });
        if !registered_there || link.has_pending() {
            return None;
        }
        Some(link.last_heard()? + self.config.home_silence)
    }

    /// Re-registers every PE registered at the silent home: the answers show it alive, a
    /// timeout starts the hunt (see [`HOME_SILENCE_DEFAULT`]).
    fn probe_home(&mut self, now: Instant) {
        let Some(home) = self.home else { return };
        let Some(link) = self.links.iter_mut().find(|l| l.assoc() == home) else { return };
        let timeout = self.config.registration_timeout;
        for pe in &mut self.pes {
            if *pe.state() == (PeState::Registered { assoc: home }) {
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
                //# At any time, a registered PE MAY wish to re-register to either update
                //# its member selection Policy Value or registration expiration time.
                if pe.register(now, link, timeout).is_err() {
                    // The link is full of requests, whose own timeouts will tell.
                    break;
                }
            }
        }
    }

    /// Sends what waits for a home: PE registrations and deregistrations, resolutions; with
    /// no home, starts a hunt if anything waits.
    fn serve_waiting(&mut self, now: Instant) {
        let waiting = self.pes.iter().any(PoolElementFsm::wants_link)
            || self.resolutions.iter().any(|w| !w.sent)
            || self.subscriptions.due(now).next().is_some();
        let Some(home) = self.home else {
            if waiting {
                self.hunt.start(now);
            }
            return;
        };
        let link = self.links.iter_mut().find(|l| l.assoc() == home).expect("home has a link");
        let c = &self.config;
        for pe in self.pes.iter_mut().filter(|pe| pe.wants_link()) {
            if pe.is_leaving() {
                pe.deregister(now, Some(link), c.deregistration_timeout);
            } else if pe.register(now, link, c.registration_timeout).is_err() {
                break;
            }
        }
        for w in self.resolutions.iter_mut().filter(|w| !w.sent) {
            let request = Message::HandleResolution(HandleResolution {
                subscribe: false,
                pool_handle: w.pool_handle,
                items_wanted: c.items_wanted,
            });
            if link.request(now, &request, c.request_timeout).is_err() {
                break;
            }
            w.sent = true;
        }
        let due: Vec<PoolHandle> = self.subscriptions.due(now).collect();
        for pool_handle in due {
            //= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.5
            //# The 'S' bit, if set to '1', requests the Home ENRP server to send
            //# updates to this Pool dynamically when the Pool changes for the
            //# lifetime of the SCTP association.
            // The whole pool, not the registrar's default handful: the user follows all of it.
            let items_wanted = c.items_wanted.or(Some(SUBSCRIPTION_ITEMS_WANTED));
            let request = Message::HandleResolution(HandleResolution {
                subscribe: true,
                pool_handle,
                items_wanted,
            });
            if link.request(now, &request, c.request_timeout).is_err() {
                break;
            }
            self.subscriptions.handle_sent(&pool_handle, home);
        }
    }

    fn drain_link(&mut self, now: Instant, assoc: AssocId) {
        // A buffer kept between calls: one allocation per answer was a tenth of what a load
        // generator's PE spends per registration. (A nested call finds it taken and
        // allocates.)
        let mut events = std::mem::take(&mut self.link_events);
        if let Some(link) = self.links.iter_mut().find(|l| l.assoc() == assoc) {
            events.extend(std::iter::from_fn(|| link.poll_event()));
        }
        for event in events.drain(..) {
            self.handle_link_event(now, assoc, event);
        }
        self.link_events = events;
    }

    fn handle_link_event(&mut self, now: Instant, assoc: AssocId, event: LinkEvent) {
        match event {
            LinkEvent::Registered(r) => {
                let Some(i) = self.pe_index(&r.pool_handle, r.pe_id) else { return };
                let outcome = self.pes[i].handle_registration_response(now, &r);
                self.pe_outcome(now, assoc, i, outcome);
            }
            LinkEvent::Deregistered(r) => {
                let Some(i) = self.pe_index(&r.pool_handle, r.pe_id) else { return };
                let outcome = self.pes[i].handle_deregistration_response();
                self.pe_outcome(now, assoc, i, outcome);
            }
            LinkEvent::Resolved(r) if self.take_uncached(assoc, &r.pool_handle) => {
                self.report_uncached(r);
            }
            LinkEvent::TimedOut(Request::Resolution { pool_handle })
                if self.take_uncached(assoc, &pool_handle) =>
            {
                self.uncached_timed_out(now, assoc, pool_handle);
            }
            LinkEvent::Resolved(r) => self.handle_resolved(now, assoc, r, true),
            LinkEvent::Unsolicited(Message::HandleResolutionResponse(r)) => {
                //= https://www.rfc-editor.org/rfc/rfc5352#section-2.2.6
                //# The ASAP_HANDLE_RESOLUTION_RESPONSE message is sent in response by
                //# the Home ENRP server of the PU or PE that sent an
                //# ASAP_HANDLE_RESOLUTION message or is sent periodically upon Pool
                //# changes if the PU has requested Dynamic updates.
                self.handle_resolved(now, assoc, r, false);
            }
            LinkEvent::TimedOut(request) => self.handle_request_timeout(now, assoc, request),
            LinkEvent::KeptAlive { server_id, pool_handle, pe_id, home } => {
                let Some(i) = self.pe_index(&pool_handle, pe_id) else { return };
                if self.pes[i].handle_keep_alive(assoc, server_id, home) {
                    self.home = Some(assoc);
                    self.subscriptions.handle_home_changed(assoc);
                    self.serve_waiting(now);
                    let pe = PeHandle(i as u32);
                    self.events.push_back(Event::HomeChanged { pe, registrar: server_id, assoc });
                }
            }
            LinkEvent::Unsolicited(Message::DeregistrationResponse(r)) => {
                // Our registration ran out at the registrar (§3.2) while we thought it alive
                // (a late re-registration): register again, the PE did not ask to leave.
                let Some(i) = self.pe_index(&r.pool_handle, r.pe_id) else { return };
                if matches!(self.pes[i].state(), PeState::Registered { .. }) {
                    self.pes[i].handle_link_lost(assoc);
                    self.serve_waiting(now);
                }
            }
            // An ASAP Error answers something we sent that the registrar could not parse; the
            // request it belonged to times out and is retried. Undecodable input and other
            // unsolicited messages need nothing from a PE or PU.
            LinkEvent::Errored(_) | LinkEvent::Undecodable(_) | LinkEvent::Unsolicited(_) => {}
        }
    }

    fn pe_outcome(&mut self, now: Instant, assoc: AssocId, i: usize, outcome: PeOutcome) {
        let pe = PeHandle(i as u32);
        let event = match outcome {
            PeOutcome::Quiet => return,
            PeOutcome::Registered => Event::Registered { pe, id: self.pes[i].id() },
            PeOutcome::Refused(cause) => {
                Event::RegistrationFailed { pe, failure: Failure::Refused(cause) }
            }
            PeOutcome::GaveUp => Event::RegistrationFailed { pe, failure: Failure::TimedOut },
            PeOutcome::Deregistered => {
                let (pool_handle, id) = (self.pes[i].config().pool_handle, self.pes[i].id());
                self.links.iter_mut().for_each(|l| l.forget(pool_handle, id));
                Event::Deregistered { pe }
            }
            PeOutcome::Rehunt => return self.fail_home(now, assoc),
        };
        self.events.push_back(event);
    }

    /// A Handle Resolution Response on `assoc`: the answer to a request of ours (`solicited`)
    /// or a push. It serves the user's resolution of the pool if one waits, and the pool's
    /// subscription if that lives on `assoc`; a push for neither is dropped.
    fn handle_resolved(
        &mut self,
        now: Instant,
        assoc: AssocId,
        r: HandleResolutionResponse,
        solicited: bool,
    ) {
        let pool_handle = r.pool_handle;
        let wanted = solicited && self.resolutions.iter().any(|w| w.pool_handle == pool_handle);
        let timing =
            Timing { poll: self.config.stale_cache, probe: self.config.subscription_probe };
        let answer = Answer { positive: r.error.is_none(), accepted: r.accept_updates };
        let answered = self.subscriptions.handle_answer(now, assoc, &pool_handle, answer, timing);
        if !wanted && answered == Answered::Ignored {
            return;
        }
        self.resolutions.retain(|w| w.pool_handle != pool_handle);
        if let Some(error) = &r.error {
            let cause = error.causes.first().map_or(ErrorCause::UNSPECIFIED, |c| c.code);
            let failure = Failure::Refused(cause);
            self.cache.purge(&pool_handle);
            if wanted {
                self.events.push_back(Event::ResolutionFailed { pool_handle, failure });
            }
            match answered {
                Answered::Ended { established: true } => {
                    self.events.push_back(Event::PoolGone { pool_handle });
                }
                Answered::Ended { established: false } => {
                    self.events.push_back(Event::SubscriptionFailed { pool_handle, failure });
                }
                Answered::Ignored | Answered::Changed(_) => {}
            }
            return;
        }
        // A push replaces the cached list and makes it fresh again, like any answer.
        self.cache.insert(now, pool_handle, r.overall_policy, r.pool_elements.clone());
        if let Answered::Changed(updates) = answered {
            let elements = r.pool_elements.clone();
            self.events.push_back(Event::PoolChanged { pool_handle, elements, updates });
        }
        if wanted {
            self.events.push_back(Event::Resolved { pool_handle, elements: r.pool_elements });
        }
    }

    fn handle_request_timeout(&mut self, now: Instant, assoc: AssocId, request: Request) {
        match request {
            Request::Registration { pool_handle, pe_id }
            | Request::Deregistration { pool_handle, pe_id } => {
                let Some(i) = self.pe_index(&pool_handle, pe_id) else { return };
                let attempts_max = self.config.registration_attempts_max;
                let outcome = self.pes[i].handle_request_timeout(attempts_max);
                self.pe_outcome(now, assoc, i, outcome);
            }
            Request::Resolution { pool_handle } => {
                // A subscription's request is sent again at the next home, without limit: the
                // user asked to follow the pool for as long as the endpoint runs.
                let subscribed = self.subscriptions.state(&pool_handle)
                    == Some(SubscriptionState::Requested { assoc });
                self.subscriptions.handle_request_timeout(&pool_handle, assoc);
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.2
                //# This should be repeated up to MAX-REQUEST-RETRANSMIT times.  After
                //# that, an Error.Report notification should be generated to inform the
                //# ASAP User, and the ENRP request message associated with the T1-
                //# ENRPrequest timer should be discarded.
                let attempts_max = self.config.request_attempts_max;
                let w = self.resolutions.iter_mut().find(|w| w.pool_handle == pool_handle);
                if w.is_none() && !subscribed {
                    return;
                }
                if let Some(w) = w {
                    w.timeouts = w.timeouts.saturating_add(1);
                    w.sent = false;
                    if w.timeouts >= attempts_max {
                        self.resolutions.retain(|w| w.pool_handle != pool_handle);
                        let failure = Failure::TimedOut;
                        self.events.push_back(Event::ResolutionFailed { pool_handle, failure });
                    }
                }
                //# In parallel, the ASAP Endpoint should begin the
                //# ENRP server hunt procedures described in Section 3.6.
                self.fail_home(now, assoc);
            }
        }
    }

    /// The registrar on `assoc` did not answer in time: drop it and hunt for another (§3.6:
    /// "when it fails to communicate with its Home ENRP server (i.e., timed out on an ENRP
    /// request), a PE or PU MUST establish a new Home ENRP server").
    fn fail_home(&mut self, now: Instant, assoc: AssocId) {
        if self.links.iter().any(|l| l.assoc() == assoc) {
            self.aborts.push_back(assoc);
        }
        self.drop_link(now, assoc);
    }

    fn drop_link(&mut self, now: Instant, assoc: AssocId) {
        let Some(at) = self.links.iter().position(|l| l.assoc() == assoc) else { return };
        let link = self.links.swap_remove(at);
        self.fail_uncached(assoc);
        for request in link.into_pending() {
            if let Request::Resolution { pool_handle } = request {
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.1
                //# After finding a
                //# new Home ENRP server, the ASAP Endpoint should re-send the request.
                let w = self.resolutions.iter_mut().find(|w| w.pool_handle == pool_handle);
                w.into_iter().for_each(|w| w.sent = false);
            }
        }
        self.pes.iter_mut().for_each(|pe| pe.handle_link_lost(assoc));
        self.subscriptions.handle_link_lost(assoc);
        if self.home == Some(assoc) {
            self.home = None;
            self.events.push_back(Event::RegistrarLost { assoc });
            self.hunt.start(now);
        }
        self.serve_waiting(now);
    }

    fn pe_index(&self, pool_handle: &PoolHandle, pe_id: PoolElementId) -> Option<usize> {
        self.pes.iter().position(|pe| pe.config().pool_handle == *pool_handle && pe.id() == pe_id)
    }
}

mod driven;
#[cfg(test)]
mod tests;
