//! A blocking driver: runs an [`Endpoint`] over any [`transport::SctpTransport`] in the
//! caller's thread, with the OS clock. [`PoolElement`] and [`PoolUser`] are the paved paths.
//!
//! It does not listen for Server Announces (feed them with
//! [`Driver::endpoint_mut`]`().handle_announce` if you join the multicast group) and does not
//! run in the background: keep-alives are answered while a call of this module runs, so a PE
//! calls [`PoolElement::serve`] between its own work.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant as OsInstant;

use codec::param::{Policy, UserTransport};
use codec::{ErrorCause, PoolElementId, PoolHandle};
use transport::{Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use crate::endpoint::{
    Endpoint, EndpointConfig, EndpointError, Event, Failure, PeHandle, Resolution,
};
use crate::pe::PeConfig;
use crate::subscription::Updates;
use crate::time::Instant;

mod dump;
mod sctp;
pub use dump::{dump_handlespace, DumpFailure};
pub use sctp::{
    SctpPoolSession, SctpService, ServiceEvent, SessionNote, SERVICE_ASSOCIATIONS_MAX,
    SESSION_INBOX_MAX, SESSION_NOTES_MAX,
};

/// The longest one wait blocks, so that a caller's deadline is checked at least this often.
const WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// Transport events handled per poll.
const POLL_BUDGET: usize = 256;

/// Why a blocking call failed: each variant names what failed, and its `Display` is one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlockingError {
    /// A control message was not sent: it would break a cap (a cookie too long).
    Control(crate::control::ControlError),
    /// The endpoint refused the call (a table is full, an unknown PE).
    Endpoint(EndpointError),
    /// The OS refused.
    Io(io::Error),
    /// The server hunt reached none of these registrars before the deadline.
    NoRegistrar {
        /// The registrars configured (announced ones come and go).
        tried: Vec<SocketAddr>,
    },
    /// The pool's PEs offer no SCTP user transport ([`SctpPoolSession::connect`]).
    NoSctpPoolElement(PoolHandle),
    /// The pool's PEs offer no TCP user transport ([`PoolUser::connect_tcp`]).
    NoTcpPoolElement(PoolHandle),
    /// An [`SctpPoolSession`] has no association to a PE (never connected, or it failed).
    NotConnected,
    /// The SCTP association to a PE failed, or never came up.
    PoolElementFailed {
        /// The PE.
        pe: PoolElementId,
        /// How.
        why: PeFailure,
    },
    /// Every PE of the pool was reported unreachable since its last resolution.
    NoReachablePoolElement(PoolHandle),
    /// The registrar refused the registration with this RFC 5354 cause.
    RegistrationRefused {
        /// The pool.
        pool_handle: PoolHandle,
        /// Why.
        cause: ErrorCause,
    },
    /// The registrar refused the resolution with this cause (other than Unknown Pool Handle).
    ResolutionRefused {
        /// The pool.
        pool_handle: PoolHandle,
        /// Why.
        cause: ErrorCause,
    },
    /// A registrar was reached but did not answer in time.
    TimedOut,
    /// The transport refused.
    Transport(TransportError),
    /// The registrar knows no such pool.
    UnknownPool(PoolHandle),
    /// No PE of the pool took a TCP connection: `tried` PEs failed, the last with `last`.
    Unreachable {
        /// The pool.
        pool_handle: PoolHandle,
        /// PEs whose connect failed.
        tried: u32,
        /// The last connect error.
        last: io::Error,
    },
}

impl fmt::Display for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Control(e) => write!(f, "control channel: {e}"),
            Self::Endpoint(e) => write!(f, "endpoint: {e:?}"),
            Self::NoSctpPoolElement(p) => write!(f, "no PE of pool \"{p}\" offers SCTP"),
            Self::NotConnected => f.write_str("no association to a PE"),
            Self::PoolElementFailed { pe, why } => {
                write!(f, "PE 0x{:08x}: {}", pe.0, why.as_str())
            }
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::NoRegistrar { tried } => {
                let tried: Vec<String> = tried.iter().map(ToString::to_string).collect();
                let tried = tried.join(", ");
                write!(f, "no registrar reachable after the server hunt (tried {tried})")
            }
            Self::RegistrationRefused { pool_handle, cause } => write!(
                f,
                "registration in pool \"{pool_handle}\" refused by the registrar: {}",
                in_words(*cause)
            ),
            Self::ResolutionRefused { pool_handle, cause } => write!(
                f,
                "handle resolution of pool \"{pool_handle}\" refused by the registrar: {}",
                in_words(*cause)
            ),
            Self::NoTcpPoolElement(p) => write!(f, "no PE of pool \"{p}\" offers TCP"),
            Self::Unreachable { pool_handle, tried, last } => write!(
                f,
                "no PE of pool \"{pool_handle}\" took a TCP connection ({tried} tried, last: \
                 {last})"
            ),
            Self::NoReachablePoolElement(p) => write!(f, "no reachable PE left in pool {p}"),
            Self::TimedOut => f.write_str("the registrar did not answer in time"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::UnknownPool(p) => write!(f, "unknown pool handle {p}"),
        }
    }
}

impl std::error::Error for BlockingError {}

impl From<io::Error> for BlockingError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<TransportError> for BlockingError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

/// How an SCTP association to a PE failed ([`BlockingError::PoolElementFailed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeFailure {
    /// It was up, then aborted, lost or shut down.
    Lost,
    /// Connecting, nothing came back in time.
    NoAnswer,
    /// Connecting, the PE refused (an ABORT), or it has no address to connect to.
    Refused,
}

impl PeFailure {
    /// In words, for an error line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "association lost",
            Self::NoAnswer => "no answer to the association setup",
            Self::Refused => "association refused",
        }
    }
}

impl From<EndpointError> for BlockingError {
    fn from(e: EndpointError) -> Self {
        Self::Endpoint(e)
    }
}

/// An RFC 5354 cause in words, by its name in RFC 5354 §3.12, with its code:
/// `"Non-unique PE Identifier (cause 0x0004)"`; an unknown code is `"unknown cause"`.
pub fn in_words(cause: ErrorCause) -> String {
    format!("{} (cause 0x{:04x})", cause_name(cause), cause.0)
}

/// The RFC 5354 §3.12 name of a cause (Table 2).
pub fn cause_name(cause: ErrorCause) -> &'static str {
    match cause {
        ErrorCause::UNSPECIFIED => "Unspecified Error",
        ErrorCause::UNRECOGNIZED_PARAMETER => "Unrecognized Parameter",
        ErrorCause::UNRECOGNIZED_MESSAGE => "Unrecognized Message",
        ErrorCause::INVALID_VALUES => "Invalid Values",
        ErrorCause::NON_UNIQUE_PE_IDENTIFIER => "Non-unique PE Identifier",
        ErrorCause::INCONSISTENT_POOLING_POLICY => "Inconsistent Pooling Policy",
        ErrorCause::LACK_OF_RESOURCES => "Lack of Resources",
        ErrorCause::INCONSISTENT_TRANSPORT_TYPE => "Inconsistent Transport Type",
        ErrorCause::INCONSISTENT_DATA_CONTROL_CONFIGURATION => {
            "Inconsistent Data/Control Configuration"
        }
        ErrorCause::UNKNOWN_POOL_HANDLE => "Unknown Pool Handle",
        ErrorCause::REJECTED_SECURITY => "Rejected due to security considerations",
        _ => "unknown cause",
    }
}

/// A change of a followed pool ([`Driver::next_update`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolUpdate {
    /// The pool's PEs now.
    Changed {
        /// All of them, as the registrar listed them.
        elements: Vec<codec::PoolElement>,
        /// Pushed by the registrar or polled.
        updates: Updates,
    },
    /// The pool no longer exists; the subscription has ended.
    Gone,
}

/// A failed resolution (or subscription) of `pool_handle` as a blocking error.
pub(crate) fn resolution_failure(pool_handle: PoolHandle, failure: Failure) -> BlockingError {
    match failure {
        Failure::Refused(ErrorCause::UNKNOWN_POOL_HANDLE) => {
            BlockingError::UnknownPool(pool_handle)
        }
        Failure::Refused(cause) => BlockingError::ResolutionRefused { pool_handle, cause },
        Failure::TimedOut => BlockingError::TimedOut,
    }
}

/// Runs an [`Endpoint`] over a transport.
pub struct Driver<T: SctpTransport> {
    transport: T,
    endpoint: Endpoint,
    epoch: OsInstant,
    events: VecDeque<Event>,
}

impl<T: SctpTransport> Driver<T> {
    /// A driver whose endpoint draws its PE ids from `seed`.
    pub fn new(transport: T, config: EndpointConfig, seed: u64) -> Self {
        let endpoint = Endpoint::new(config, seed);
        Self { transport, endpoint, epoch: OsInstant::now(), events: VecDeque::new() }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, e.g. to feed it Server Announces.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The transport, e.g. for its counters.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The sans-IO time of `at`.
    pub fn instant(&self, at: OsInstant) -> Instant {
        Instant::from_micros(u64::try_from((at - self.epoch).as_micros()).unwrap_or(u64::MAX))
    }

    /// Events the driver saw that no blocking call consumed, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Registers a PE and waits until it is registered.
    pub fn register(
        &mut self,
        config: PeConfig,
        timeout: std::time::Duration,
    ) -> Result<PeHandle, BlockingError> {
        let now = self.instant(OsInstant::now());
        let pool_handle = config.pool_handle;
        let pe = self.endpoint.register(now, config)?;
        self.run_until(OsInstant::now() + timeout, |e| match e {
            Event::Registered { pe: p, .. } if *p == pe => Some(Ok(pe)),
            Event::RegistrationFailed { pe: p, failure } if *p == pe => Some(Err(match failure {
                Failure::Refused(cause) => {
                    BlockingError::RegistrationRefused { pool_handle, cause: *cause }
                }
                Failure::TimedOut => BlockingError::TimedOut,
            })),
            _ => None,
        })?
    }

    /// Deregisters a PE and waits for the registrar's answer.
    pub fn deregister(
        &mut self,
        pe: PeHandle,
        timeout: std::time::Duration,
    ) -> Result<(), BlockingError> {
        let now = self.instant(OsInstant::now());
        self.endpoint.deregister(now, pe)?;
        self.run_until(OsInstant::now() + timeout, |e| match e {
            Event::Deregistered { pe: p } if *p == pe => Some(()),
            _ => None,
        })
    }

    /// Resolves a pool handle, from the cache when fresh.
    pub fn resolve(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
    ) -> Result<Vec<codec::PoolElement>, BlockingError> {
        let now = self.instant(OsInstant::now());
        if let Resolution::Cached(elements) = self.endpoint.resolve(now, pool_handle)? {
            return Ok(elements);
        }
        self.run_until(OsInstant::now() + timeout, |e| match e {
            Event::Resolved { pool_handle: p, elements } if *p == pool_handle => {
                Some(Ok(elements.clone()))
            }
            Event::ResolutionFailed { pool_handle: p, failure } if *p == pool_handle => {
                Some(Err(resolution_failure(pool_handle, *failure)))
            }
            _ => None,
        })?
    }

    /// Follows `pool_handle` (see [`Endpoint::subscribe`]) and waits up to `timeout` for its
    /// first answer: the pool's PEs, and whether the registrar pushes changes or the endpoint
    /// polls. Later changes come from [`Self::next_update`].
    pub fn subscribe(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
    ) -> Result<(Vec<codec::PoolElement>, Updates), BlockingError> {
        let now = self.instant(OsInstant::now());
        self.endpoint.subscribe(now, pool_handle)?;
        let first = self.run_until(OsInstant::now() + timeout, |e| match e {
            Event::PoolChanged { pool_handle: p, elements, updates } if *p == pool_handle => {
                Some(Ok((elements.clone(), *updates)))
            }
            Event::SubscriptionFailed { pool_handle: p, failure } if *p == pool_handle => {
                Some(Err(resolution_failure(pool_handle, *failure)))
            }
            _ => None,
        });
        if !matches!(first, Ok(Ok(_))) {
            // Not followed after all: a later answer must not surface as a change.
            self.endpoint.unsubscribe(&pool_handle);
        }
        first?
    }

    /// The next change of a followed pool, waiting until `until`; `Ok(None)` when nothing
    /// changed by then. Other events stay for [`Self::take_events`].
    pub fn next_update(
        &mut self,
        pool_handle: &PoolHandle,
        until: OsInstant,
    ) -> Result<Option<PoolUpdate>, BlockingError> {
        loop {
            self.pump()?;
            let at = self.events.iter().position(|e| {
                matches!(e, Event::PoolChanged { pool_handle: p, .. }
                    | Event::PoolGone { pool_handle: p } if p == pool_handle)
            });
            if let Some(at) = at {
                return Ok(match self.events.remove(at) {
                    Some(Event::PoolChanged { elements, updates, .. }) => {
                        Some(PoolUpdate::Changed { elements, updates })
                    }
                    _ => Some(PoolUpdate::Gone),
                });
            }
            if OsInstant::now() >= until {
                return Ok(None);
            }
            self.turn(until)?;
        }
    }

    /// Runs the endpoint (answering keep-alives, re-registering) for `duration`.
    pub fn serve(&mut self, duration: std::time::Duration) -> Result<(), BlockingError> {
        let until = OsInstant::now() + duration;
        while OsInstant::now() < until {
            self.turn(until)?;
        }
        Ok(())
    }

    /// Turns until `wanted` picks an event (which is consumed) or `deadline` passes; then the
    /// error says whether a registrar was reached at all.
    pub fn run_until<R>(
        &mut self,
        deadline: OsInstant,
        mut wanted: impl FnMut(&Event) -> Option<R>,
    ) -> Result<R, BlockingError> {
        loop {
            self.pump()?;
            if let Some(at) = self.events.iter().position(|e| wanted(e).is_some()) {
                let event = self.events.remove(at).expect("position came from this deque");
                return Ok(wanted(&event).expect("it matched a moment ago"));
            }
            if OsInstant::now() >= deadline {
                return Err(self.deadline_error());
            }
            self.turn(deadline)?;
        }
    }

    /// One turn, for a driver of drivers (the async one): wait for input or the next timer
    /// (at most until `until`, and at most 10 ms), feed the endpoint, run its timers, act on
    /// its outputs; events are left for [`Self::take_events`].
    pub fn run_once(&mut self, until: OsInstant) -> Result<(), BlockingError> {
        self.turn(until)
    }

    /// Sends what the transport has queued, without waiting for input.
    pub fn flush(&mut self) -> Result<(), BlockingError> {
        let now = OsInstant::now();
        self.transport.wait(now, Some(now))?;
        Ok(())
    }

    /// Ends a [`Self::subscribe`] locally (see [`Endpoint::unsubscribe`]).
    pub fn unsubscribe(&mut self, pool_handle: &PoolHandle) {
        self.endpoint.unsubscribe(pool_handle);
    }

    /// The error for a wait that ran out: no home means the hunt found nobody.
    pub fn deadline_error(&self) -> BlockingError {
        if self.endpoint.home().is_some() {
            BlockingError::TimedOut
        } else {
            BlockingError::NoRegistrar { tried: self.endpoint.config().hunt.registrars.clone() }
        }
    }

    /// Starts a registration without waiting (its answer is an event).
    pub fn start_register(&mut self, config: PeConfig) -> Result<PeHandle, BlockingError> {
        let now = self.instant(OsInstant::now());
        let pe = self.endpoint.register(now, config)?;
        self.pump()?;
        Ok(pe)
    }

    /// Starts a deregistration without waiting (its answer is an event).
    pub fn start_deregister(&mut self, pe: PeHandle) -> Result<(), BlockingError> {
        let now = self.instant(OsInstant::now());
        self.endpoint.deregister(now, pe)?;
        self.pump()
    }

    /// Starts a resolution without waiting: the cached PEs when fresh, else `None` and the
    /// answer is an event.
    pub fn start_resolve(
        &mut self,
        pool_handle: PoolHandle,
    ) -> Result<Option<Vec<codec::PoolElement>>, BlockingError> {
        let now = self.instant(OsInstant::now());
        let resolution = self.endpoint.resolve(now, pool_handle)?;
        self.pump()?;
        Ok(match resolution {
            Resolution::Cached(elements) => Some(elements),
            Resolution::Pending => None,
        })
    }

    /// Starts a subscription without waiting (its answers are events).
    pub fn start_subscribe(&mut self, pool_handle: PoolHandle) -> Result<(), BlockingError> {
        let now = self.instant(OsInstant::now());
        self.endpoint.subscribe(now, pool_handle)?;
        self.pump()
    }

    /// One turn: wait for input or the next timer (at most until `until`), feed the endpoint,
    /// run its timers, and act on its outputs.
    fn turn(&mut self, until: OsInstant) -> Result<(), BlockingError> {
        self.pump()?;
        let os_now = OsInstant::now();
        let mut wake = until.min(os_now + WAIT_SLICE);
        if let Some(at) = self.endpoint.poll_timeout() {
            let at = self.epoch + std::time::Duration::from(at - Instant::ZERO);
            wake = wake.min(at);
        }
        if let Some(at) = self.transport.next_deadline() {
            wake = wake.min(at);
        }
        self.transport.wait(os_now, Some(wake.max(os_now)))?;
        let os_now = OsInstant::now();
        let now = self.instant(os_now);
        let (transport, endpoint) = (&mut self.transport, &mut self.endpoint);
        let mut failed = Vec::new();
        transport.poll(os_now, POLL_BUDGET, |event| match event {
            TransportEvent::Up { assoc, peer } => endpoint.handle_up(now, assoc, peer),
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                endpoint.handle_data(now, assoc, data);
            }
            TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                endpoint.handle_closed(now, assoc);
            }
            //= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.1
            //# In such a case, the ASAP Endpoint MUST NOT re-send the undeliverable
            //# message.  Instead, it SHOULD discard the message and start the ENRP
            //# Server Hunt procedure as described in Section 3.6.
            TransportEvent::SendFailed { assoc, .. } => failed.push(assoc),
            _ => {}
        })?;
        for assoc in failed {
            let _ = self.transport.abort(os_now, assoc);
            self.endpoint.handle_closed(now, assoc);
        }
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.pump()
    }

    /// Shuts down every association gracefully (SHUTDOWN, so that a registrar is not left
    /// retransmitting to a process that is gone) and waits up to `timeout` for them to end.
    pub fn close(&mut self, timeout: std::time::Duration) {
        let os_now = OsInstant::now();
        let mut open: Vec<transport::AssocId> = self.endpoint.associations().collect();
        for &assoc in &open {
            let _ = self.transport.shutdown(os_now, assoc);
        }
        let until = os_now + timeout;
        while !open.is_empty() && OsInstant::now() < until {
            let now = OsInstant::now();
            if self.transport.wait(now, Some((now + WAIT_SLICE).min(until))).is_err() {
                return;
            }
            let polled = self.transport.poll(OsInstant::now(), POLL_BUDGET, |event| match event {
                TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                    open.retain(|&a| a != assoc);
                }
                _ => {}
            });
            if polled.is_err() {
                return;
            }
        }
    }

    /// Acts on the endpoint's outputs in its documented order.
    fn pump(&mut self) -> Result<(), BlockingError> {
        let os_now = OsInstant::now();
        let now = self.instant(os_now);
        while let Some(t) = self.endpoint.poll_transmit() {
            let sent = self.transport.send(os_now, t.assoc, StreamId(0), Ppid::ASAP, &t.bytes);
            if let Err(TransportError::UnknownAssoc) = sent {
                self.endpoint.handle_closed(now, t.assoc);
            } else {
                sent.map_err(BlockingError::Transport)?;
            }
        }
        while let Some(assoc) = self.endpoint.poll_abort() {
            // Already gone is fine: the association is to end either way.
            let _ = self.transport.abort(os_now, assoc);
        }
        while let Some(remote) = self.endpoint.poll_connect() {
            self.connect(os_now, now, remote);
        }
        self.events.extend(std::iter::from_fn(|| self.endpoint.poll_event()));
        Ok(())
    }

    fn connect(&mut self, os_now: OsInstant, now: Instant, remote: SocketAddr) {
        match self.transport.connect(os_now, remote) {
            Ok(assoc) => self.endpoint.handle_connect_started(remote, assoc),
            Err(_) => self.endpoint.handle_connect_failed(now, remote),
        }
    }
}

/// A registered pool element: registers at construction, answers keep-alives and
/// re-registers while [`Self::serve`] runs, deregisters on [`Self::deregister`].
pub struct PoolElement<T: SctpTransport> {
    driver: Driver<T>,
    pe: PeHandle,
}

impl<T: SctpTransport> PoolElement<T> {
    /// Hunts for a registrar and registers `pe` there, waiting up to `timeout`.
    pub fn register(
        transport: T,
        config: EndpointConfig,
        pe: PeConfig,
        seed: u64,
        timeout: std::time::Duration,
    ) -> Result<Self, BlockingError> {
        let mut driver = Driver::new(transport, config, seed);
        let pe = driver.register(pe, timeout)?;
        Ok(Self { driver, pe })
    }

    /// The PE identifier.
    pub fn id(&self) -> PoolElementId {
        self.driver.endpoint().pool_element(self.pe).expect("our own handle").id()
    }

    /// Answers keep-alives and re-registers (at T4, or at a new home) for `duration`.
    pub fn serve(&mut self, duration: std::time::Duration) -> Result<(), BlockingError> {
        self.driver.serve(duration)
    }

    /// Changes the policy value; the re-registration leaves at once, its answer is awaited by
    /// the next [`Self::serve`].
    pub fn set_policy(&mut self, policy: Policy) -> Result<(), BlockingError> {
        let now = self.driver.instant(OsInstant::now());
        self.driver.endpoint_mut().set_policy(now, self.pe, policy)?;
        self.driver.pump()
    }

    /// Leaves the pool and waits for the registrar's answer.
    pub fn deregister(mut self, timeout: std::time::Duration) -> Result<(), BlockingError> {
        self.driver.deregister(self.pe, timeout)
    }

    /// The driver.
    pub fn driver_mut(&mut self) -> &mut Driver<T> {
        &mut self.driver
    }
}

/// A pool user: resolves pool handles through its home registrar, with a cache.
pub struct PoolUser<T: SctpTransport> {
    driver: Driver<T>,
}

impl<T: SctpTransport> PoolUser<T> {
    /// A PU that hunts for a registrar at its first resolution.
    pub fn new(transport: T, config: EndpointConfig, seed: u64) -> Self {
        Self { driver: Driver::new(transport, config, seed) }
    }

    /// The PEs of `pool_handle` (from the cache when fresh), waiting up to `timeout`.
    pub fn resolve(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
    ) -> Result<Vec<codec::PoolElement>, BlockingError> {
        self.driver.resolve(pool_handle, timeout)
    }

    /// One PE of `pool_handle` picked from a fresh resolution.
    pub fn select(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
    ) -> Result<codec::PoolElement, BlockingError> {
        self.driver.resolve(pool_handle, timeout)?;
        let now = self.driver.instant(OsInstant::now());
        let picked = self.driver.endpoint_mut().select(now, &pool_handle);
        picked.ok_or(BlockingError::NoReachablePoolElement(pool_handle))
    }

    /// A TCP connection to a PE of `pool_handle`, and the PE: PEs are tried in selection order
    /// (see [`Endpoint::select`]), each at most once per call; one whose connect fails is
    /// reported to the home registrar (Endpoint Unreachable, at most once per failure, §3.5)
    /// and the next is tried. PEs without a TCP user transport are skipped, not reported.
    /// `timeout` bounds the whole call, resolution included.
    pub fn connect_tcp(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
    ) -> Result<(TcpStream, codec::PoolElement), BlockingError> {
        self.connect_tcp_observed(pool_handle, timeout, |_, _| {})
    }

    /// [`Self::connect_tcp`], calling `failed` with each PE whose connect failed and why.
    pub fn connect_tcp_observed(
        &mut self,
        pool_handle: PoolHandle,
        timeout: std::time::Duration,
        mut failed: impl FnMut(&codec::PoolElement, &io::Error),
    ) -> Result<(TcpStream, codec::PoolElement), BlockingError> {
        let deadline = OsInstant::now() + timeout;
        let mut seen: Vec<PoolElementId> = Vec::new();
        let mut last: Option<io::Error> = None;
        let give_up = |tried: usize, last: Option<io::Error>| match last {
            Some(last) => {
                let tried = u32::try_from(tried).unwrap_or(u32::MAX);
                BlockingError::Unreachable { pool_handle, tried, last }
            }
            None => BlockingError::NoTcpPoolElement(pool_handle),
        };
        let mut tried = 0usize;
        // Each pass hands out a PE not seen in this call, so the loop ends within the
        // resolution's length (at most POOL_ELEMENTS_PER_MESSAGE_MAX) plus one.
        loop {
            let remaining = deadline.saturating_duration_since(OsInstant::now());
            if remaining.is_zero() {
                return Err(last.map_or(BlockingError::TimedOut, |l| give_up(tried, Some(l))));
            }
            let pe = match self.select(pool_handle, remaining) {
                Ok(pe) => pe,
                Err(BlockingError::NoReachablePoolElement(_)) => return Err(give_up(tried, last)),
                Err(e) => return Err(e),
            };
            if seen.contains(&pe.id) {
                return Err(give_up(tried, last));
            }
            seen.push(pe.id);
            let UserTransport::Tcp { port, address, .. } = pe.user_transport else { continue };
            match TcpStream::connect_timeout(&SocketAddr::new(address, port), remaining) {
                Ok(stream) => return Ok((stream, pe)),
                Err(e) => {
                    tried += 1;
                    failed(&pe, &e);
                    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
                    //# In either case, the ASAP Endpoint SHOULD report the
                    //# unavailability of the PE by sending an ASAP_ENDPOINT_UNREACHABLE
                    //# message to any ENRP server.
                    self.report_unreachable(&pool_handle, pe.id)?;
                    last = Some(e);
                }
            }
        }
    }

    /// Reports a PE the user could not reach (once per failure, §3.5).
    pub fn report_unreachable(
        &mut self,
        pool_handle: &PoolHandle,
        pe_id: PoolElementId,
    ) -> Result<bool, BlockingError> {
        let queued = self.driver.endpoint_mut().report_unreachable(pool_handle, pe_id);
        self.driver.pump()?;
        // Out now: the caller may go on without running the driver (connect_tcp does).
        self.driver.flush()?;
        Ok(queued)
    }

    /// The driver.
    pub fn driver_mut(&mut self) -> &mut Driver<T> {
        &mut self.driver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: each error is one line that names what failed: the registrars tried, the pool,
    // the RFC 5354 cause by its RFC name and code, the transport's reason. Method: format
    // one error of each kind and compare.
    #[test]
    fn errors_name_what_failed() {
        let pool = PoolHandle::new(b"echo").unwrap();
        let tried = vec!["127.0.0.1:3863".parse().unwrap(), "127.0.0.2:3863".parse().unwrap()];
        let cases = [
            (
                BlockingError::NoRegistrar { tried },
                "no registrar reachable after the server hunt (tried 127.0.0.1:3863, \
                 127.0.0.2:3863)",
            ),
            (BlockingError::UnknownPool(pool), "unknown pool handle echo"),
            (
                BlockingError::RegistrationRefused {
                    pool_handle: pool,
                    cause: ErrorCause::INCONSISTENT_POOLING_POLICY,
                },
                "registration in pool \"echo\" refused by the registrar: Inconsistent Pooling \
                 Policy (cause 0x0005)",
            ),
            (
                BlockingError::ResolutionRefused { pool_handle: pool, cause: ErrorCause(0x77) },
                "handle resolution of pool \"echo\" refused by the registrar: unknown cause \
                 (cause 0x0077)",
            ),
            (
                BlockingError::Transport(TransportError::Full),
                "transport: transport queue or table full",
            ),
            (
                BlockingError::Unreachable {
                    pool_handle: pool,
                    tried: 2,
                    last: io::Error::from(io::ErrorKind::ConnectionRefused),
                },
                "no PE of pool \"echo\" took a TCP connection (2 tried, last: connection refused)",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
