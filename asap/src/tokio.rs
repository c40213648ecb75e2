//! An async API on tokio (feature `tokio`) over the same sans-IO [`crate::Endpoint`]:
//! register and deregister PEs, resolve pools, follow them.
//!
//! **How it runs, and why.** The endpoint and its SCTP stack run in a thread of their own,
//! under the [`crate::blocking::Driver`]; the async calls are messages to that thread, and
//! each call's future resolves when the driver sees its answer. Our SCTP is the userspace one
//! carried in UDP over an io_uring ring (transport's `SctpUdpTransport`): its wait is one
//! `io_uring_enter`, which a tokio reactor cannot share, and a second UDP stack written for
//! tokio would be a second copy of the transport to keep right. One thread per endpoint is
//! the honest price: it also answers keep-alives and re-registers while no task polls
//! anything. A call wakes the thread through the transport's doorbell where it has one (the
//! io_uring one does), else within the driver's 10 ms wait slice.
//!
//! It does **not** need a tokio runtime of its own choosing: only tokio's channels are used,
//! so the futures run on any executor. Changes of a followed pool come through a
//! [`tokio::sync::watch`] channel: a slow reader sees the latest list, not every
//! intermediate one (what a diffing watcher wants), and never misses the pool's end.
//!
//! ```text
//!   task: register/resolve/subscribe ─▶ command channel + doorbell ─▶ driver thread
//!   task ◀── oneshot (answer) / watch (pool updates) ◀── events of the Endpoint
//! ```

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant as OsInstant};

use ::tokio::sync::{oneshot, watch};
use codec::{PoolElement, PoolHandle};
use transport::{Doorbell, SctpTransport};

use crate::blocking::{BlockingError, Driver, PoolUpdate};
use crate::endpoint::{EndpointConfig, Event, Failure, PeHandle};
use crate::pe::PeConfig;
use crate::subscription::Updates;

/// Longest a driver turn waits when no call is pending, so that a closed command channel is
/// noticed without a doorbell.
const IDLE_SLICE: Duration = Duration::from_millis(50);

/// Calls waiting for their answer at once; past it a call fails at once with
/// [`BlockingError::Io`] of kind `WouldBlock`. Bounds the driver thread's scans.
pub const PENDING_CALLS_MAX: usize = 1_024;

/// One endpoint run by a thread of its own; its methods are async and take `&self`, so one
/// endpoint serves many tasks. Dropping it (or [`Self::close`]) shuts its associations down.
pub struct AsyncEndpoint {
    commands: Option<mpsc::Sender<Command>>,
    doorbell: Option<Doorbell>,
    thread: Option<JoinHandle<()>>,
}

/// A followed pool: the first list, then each change.
pub struct Subscription {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// Its PEs when the subscription started.
    pub elements: Vec<PoolElement>,
    /// Pushed by the registrar, or polled because it did not accept the subscription.
    pub updates: Updates,
    changes: watch::Receiver<Option<PoolUpdate>>,
}

impl Subscription {
    /// The next change (the latest, when several came since the last call); `None` once the
    /// endpoint is gone. After [`PoolUpdate::Gone`] nothing more comes.
    pub async fn changed(&mut self) -> Option<PoolUpdate> {
        loop {
            self.changes.changed().await.ok()?;
            if let Some(update) = self.changes.borrow_and_update().clone() {
                return Some(update);
            }
        }
    }
}

enum Command {
    // Boxed: a PE's configuration is large, and every other command is small.
    Register(Box<PeConfig>, OsInstant, oneshot::Sender<Result<PeHandle, BlockingError>>),
    Deregister(PeHandle, OsInstant, oneshot::Sender<Result<(), BlockingError>>),
    Resolve(PoolHandle, OsInstant, oneshot::Sender<Result<Vec<PoolElement>, BlockingError>>),
    Subscribe(PoolHandle, OsInstant, oneshot::Sender<Result<Subscription, BlockingError>>),
    Close(oneshot::Sender<()>),
}

impl AsyncEndpoint {
    /// Starts the endpoint's thread. `make_transport` runs in that thread (a transport need
    /// not be `Send`); its error is returned here.
    pub fn spawn<T, F>(make_transport: F, config: EndpointConfig, seed: u64) -> io::Result<Self>
    where
        T: SctpTransport + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let (commands, inbox) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("asap-endpoint".to_owned()).spawn(move || {
                let mut transport = match make_transport() {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let doorbell = match transport.doorbell() {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(doorbell));
                Runner::new(Driver::new(transport, config, seed), inbox).run();
            })?;
        // The thread sends exactly once before it does anything else.
        let doorbell = started
            .recv()
            .map_err(|_| io::Error::other("the endpoint thread ended before it started"))??;
        Ok(Self { commands: Some(commands), doorbell, thread: Some(thread) })
    }

    /// Registers a PE and waits up to `timeout` for the registrar's answer. The PE stays
    /// registered (keep-alives answered, re-registrations sent) until deregistered or closed.
    pub async fn register(
        &self,
        config: PeConfig,
        timeout: Duration,
    ) -> Result<PeHandle, BlockingError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Register(Box::new(config), OsInstant::now() + timeout, reply))?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Deregisters a PE and waits up to `timeout` for the registrar's answer.
    pub async fn deregister(&self, pe: PeHandle, timeout: Duration) -> Result<(), BlockingError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Deregister(pe, OsInstant::now() + timeout, reply))?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// The PEs of a pool, from the cache when fresh, waiting up to `timeout`.
    pub async fn resolve(
        &self,
        pool_handle: PoolHandle,
        timeout: Duration,
    ) -> Result<Vec<PoolElement>, BlockingError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Resolve(pool_handle, OsInstant::now() + timeout, reply))?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Follows a pool (see [`crate::Endpoint::subscribe`]), waiting up to `timeout` for the
    /// first answer. Dropping the [`Subscription`] stops following it.
    pub async fn subscribe(
        &self,
        pool_handle: PoolHandle,
        timeout: Duration,
    ) -> Result<Subscription, BlockingError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Subscribe(pool_handle, OsInstant::now() + timeout, reply))?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Shuts the associations down (gracefully, up to 500 ms) and ends the thread.
    pub async fn close(mut self) {
        let (reply, done) = oneshot::channel();
        if self.send(Command::Close(reply)).is_ok() {
            let _ = done.await;
        }
        self.commands = None;
        // The thread has answered Close and is returning; joining it does not block for long.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn send(&self, command: Command) -> Result<(), BlockingError> {
        let commands = self.commands.as_ref().ok_or_else(gone)?;
        commands.send(command).map_err(|_| gone())?;
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
        Ok(())
    }
}

impl Drop for AsyncEndpoint {
    fn drop(&mut self) {
        // A closed channel tells the thread to shut down; it is not joined here, since drop
        // may run inside an async task that must not block.
        self.commands = None;
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
    }
}

fn gone() -> BlockingError {
    BlockingError::Io(io::Error::other("the endpoint thread has ended"))
}

/// The driver thread: calls in, events out.
struct Runner<T: SctpTransport> {
    driver: Driver<T>,
    inbox: mpsc::Receiver<Command>,
    calls: VecDeque<Call>,
    follows: Vec<(PoolHandle, watch::Sender<Option<PoolUpdate>>)>,
}

/// A call waiting for its answer, with its deadline.
enum Call {
    Register {
        pe: PeHandle,
        pool_handle: PoolHandle,
        deadline: OsInstant,
        reply: oneshot::Sender<Result<PeHandle, BlockingError>>,
    },
    Deregister {
        pe: PeHandle,
        deadline: OsInstant,
        reply: oneshot::Sender<Result<(), BlockingError>>,
    },
    Resolve {
        pool_handle: PoolHandle,
        deadline: OsInstant,
        reply: oneshot::Sender<Result<Vec<PoolElement>, BlockingError>>,
    },
    Subscribe {
        pool_handle: PoolHandle,
        deadline: OsInstant,
        reply: oneshot::Sender<Result<Subscription, BlockingError>>,
    },
}

impl Call {
    fn deadline(&self) -> OsInstant {
        match self {
            Self::Register { deadline, .. }
            | Self::Deregister { deadline, .. }
            | Self::Resolve { deadline, .. }
            | Self::Subscribe { deadline, .. } => *deadline,
        }
    }

    /// Fails the call with `error`.
    fn fail(self, error: BlockingError) {
        // A caller that stopped waiting dropped its receiver; nobody is left to tell.
        let _ = match self {
            Self::Register { reply, .. } => reply.send(Err(error)).is_ok(),
            Self::Deregister { reply, .. } => reply.send(Err(error)).is_ok(),
            Self::Resolve { reply, .. } => reply.send(Err(error)).is_ok(),
            Self::Subscribe { reply, .. } => reply.send(Err(error)).is_ok(),
        };
    }
}

impl<T: SctpTransport> Runner<T> {
    fn new(driver: Driver<T>, inbox: mpsc::Receiver<Command>) -> Self {
        Self { driver, inbox, calls: VecDeque::new(), follows: Vec::new() }
    }

    fn run(mut self) {
        loop {
            if let Err(reply) = self.take_commands() {
                self.driver.close(Duration::from_millis(500));
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
                return;
            }
            let slice_end = OsInstant::now() + IDLE_SLICE;
            let next = self.calls.iter().map(Call::deadline).min();
            let until = next.map_or(slice_end, |at| at.min(slice_end));
            if let Err(e) = self.driver.run_once(until) {
                // The transport failed: every waiting call hears why, and the thread ends.
                let why = e.to_string();
                for call in self.calls.drain(..) {
                    call.fail(BlockingError::Io(io::Error::other(why.clone())));
                }
                return;
            }
            for event in self.driver.take_events() {
                self.dispatch(event);
            }
            self.expire();
        }
    }

    /// Starts every queued command. `Err` when the endpoint is to close: with the reply to
    /// send once closed, or `None` when the handle was dropped.
    fn take_commands(&mut self) -> Result<(), Option<oneshot::Sender<()>>> {
        loop {
            let command = match self.inbox.try_recv() {
                Ok(c) => c,
                Err(mpsc::TryRecvError::Empty) => return Ok(()),
                Err(mpsc::TryRecvError::Disconnected) => return Err(None),
            };
            if let Command::Close(reply) = command {
                return Err(Some(reply));
            }
            self.start(command);
            assert!(self.calls.len() <= PENDING_CALLS_MAX);
        }
    }

    fn start(&mut self, command: Command) {
        let full = self.calls.len() >= PENDING_CALLS_MAX;
        let busy =
            || BlockingError::Io(io::Error::new(io::ErrorKind::WouldBlock, "too many calls"));
        match command {
            Command::Register(config, deadline, reply) if !full => {
                let pool_handle = config.pool_handle;
                match self.driver.start_register(*config) {
                    Ok(pe) => {
                        self.calls.push_back(Call::Register { pe, pool_handle, deadline, reply });
                    }
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            Command::Deregister(pe, deadline, reply) if !full => {
                match self.driver.start_deregister(pe) {
                    Ok(()) => self.calls.push_back(Call::Deregister { pe, deadline, reply }),
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            Command::Resolve(pool_handle, deadline, reply) if !full => {
                match self.driver.start_resolve(pool_handle) {
                    Ok(Some(cached)) => drop(reply.send(Ok(cached))),
                    Ok(None) => {
                        self.calls.push_back(Call::Resolve { pool_handle, deadline, reply })
                    }
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            Command::Subscribe(pool_handle, deadline, reply) if !full => {
                match self.driver.start_subscribe(pool_handle) {
                    Ok(()) => {
                        self.calls.push_back(Call::Subscribe { pool_handle, deadline, reply })
                    }
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            Command::Register(_, _, reply) => drop(reply.send(Err(busy()))),
            Command::Deregister(_, _, reply) => drop(reply.send(Err(busy()))),
            Command::Resolve(_, _, reply) => drop(reply.send(Err(busy()))),
            Command::Subscribe(_, _, reply) => drop(reply.send(Err(busy()))),
            // `take_commands` handles it before calling here.
            Command::Close(reply) => drop(reply.send(())),
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Registered { pe, .. } => {
                let call = self.take(|c| matches!(c, Call::Register { pe: p, .. } if *p == pe));
                if let Some(Call::Register { reply, .. }) = call {
                    let _ = reply.send(Ok(pe));
                }
            }
            Event::RegistrationFailed { pe, failure } => {
                let call = self.take(|c| matches!(c, Call::Register { pe: p, .. } if *p == pe));
                if let Some(call @ Call::Register { pool_handle, .. }) = call {
                    call.fail(match failure {
                        Failure::Refused(cause) => {
                            BlockingError::RegistrationRefused { pool_handle, cause }
                        }
                        Failure::TimedOut => BlockingError::TimedOut,
                    });
                }
            }
            Event::Deregistered { pe } => {
                let call = self.take(|c| matches!(c, Call::Deregister { pe: p, .. } if *p == pe));
                if let Some(Call::Deregister { reply, .. }) = call {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::Resolved { pool_handle, elements } => {
                for call in self.take_resolves(&pool_handle) {
                    if let Call::Resolve { reply, .. } = call {
                        let _ = reply.send(Ok(elements.clone()));
                    }
                }
            }
            Event::ResolutionFailed { pool_handle, failure } => {
                for call in self.take_resolves(&pool_handle) {
                    call.fail(resolution_failure(pool_handle, failure));
                }
            }
            Event::SubscriptionFailed { pool_handle, failure } => {
                let call = self.take(
                    |c| matches!(c, Call::Subscribe { pool_handle: p, .. } if *p == pool_handle),
                );
                if let Some(call) = call {
                    call.fail(resolution_failure(pool_handle, failure));
                }
            }
            Event::PoolChanged { pool_handle, elements, updates } => {
                self.pool_changed(pool_handle, elements, updates);
            }
            Event::PoolGone { pool_handle } => {
                if let Some(at) = self.follows.iter().position(|(p, _)| *p == pool_handle) {
                    let (_, sender) = self.follows.swap_remove(at);
                    sender.send_replace(Some(PoolUpdate::Gone));
                }
            }
            // Hunts, homes and takeovers are the driver's business, not a call's.
            _ => {}
        }
    }

    fn pool_changed(
        &mut self,
        pool_handle: PoolHandle,
        elements: Vec<PoolElement>,
        updates: Updates,
    ) {
        if let Some(at) = self.follows.iter().position(|(p, _)| *p == pool_handle) {
            let sender = &self.follows[at].1;
            if sender.is_closed() {
                // The Subscription was dropped: stop following.
                self.follows.swap_remove(at);
                self.driver.unsubscribe(&pool_handle);
            } else {
                sender.send_replace(Some(PoolUpdate::Changed { elements, updates }));
            }
            return;
        }
        let call =
            self.take(|c| matches!(c, Call::Subscribe { pool_handle: p, .. } if *p == pool_handle));
        let Some(Call::Subscribe { reply, .. }) = call else { return };
        let (sender, changes) = watch::channel(None);
        let subscription = Subscription { pool_handle, elements, updates, changes };
        if reply.send(Ok(subscription)).is_ok() {
            self.follows.push((pool_handle, sender));
        } else {
            // The caller gave up waiting.
            self.driver.unsubscribe(&pool_handle);
        }
    }

    /// Takes the oldest call that `wanted` picks.
    fn take(&mut self, wanted: impl Fn(&Call) -> bool) -> Option<Call> {
        let at = self.calls.iter().position(wanted)?;
        self.calls.remove(at)
    }

    /// Takes every resolution call of `pool_handle`: one answer serves them all.
    fn take_resolves(&mut self, pool_handle: &PoolHandle) -> Vec<Call> {
        let (taken, kept): (VecDeque<Call>, VecDeque<Call>) = self
            .calls
            .drain(..)
            .partition(|c| matches!(c, Call::Resolve { pool_handle: p, .. } if p == pool_handle));
        self.calls = kept;
        taken.into()
    }

    /// Fails every call whose deadline has passed, with the error the blocking driver gives.
    fn expire(&mut self) {
        let now = OsInstant::now();
        let (expired, kept): (VecDeque<Call>, VecDeque<Call>) =
            self.calls.drain(..).partition(|c| c.deadline() <= now);
        self.calls = kept;
        for call in expired {
            if let Call::Subscribe { pool_handle, .. } = &call {
                self.driver.unsubscribe(pool_handle);
            }
            call.fail(self.driver.deadline_error());
        }
    }
}

fn resolution_failure(pool_handle: PoolHandle, failure: Failure) -> BlockingError {
    crate::blocking::resolution_failure(pool_handle, failure)
}
