//! One core's loop: transport batch in, cross-core queues drained, timers fired, replies out,
//! then one blocking wait. It runs at its own pace, never per event (TigerBeetle, glommio).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use hashbrown::{HashMap, HashSet};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use super::bells::Bell;
use super::mesh::MeshPort;
use crate::io::management::{self, CoreState, Mailbox};
use crate::proto::{CrossCore, Server, SessionId, Stats};

/// Transport events handled per iteration before the loop looks at its queues and timers.
pub const EVENTS_PER_TURN_MAX: usize = 1_024;
/// Cross-core messages handled per plane per iteration.
pub const CROSS_CORE_PER_TURN_MAX: usize = 1_024;
/// Control-plane messages that must arrive (replica updates) held for all cores when their
/// queues are full. Past this, the core stops reading its network until the others catch up:
/// backpressure onto the peers (SCTP retransmits), never a lost update.
pub const BACKLOG_MAX: usize = 65_536;
/// Longest sleep while other cores may send us work and our transport has no doorbell (the
/// kernel backend): a sleeping core then looks at its queues at least this often.
pub const MESH_POLL_INTERVAL: StdDuration = StdDuration::from_micros(200);
/// Longest sleep at all: the stop flag (set by a signal handler) is looked at this often.
pub const STOP_POLL_INTERVAL: StdDuration = StdDuration::from_millis(50);
/// An iteration slower than this is logged as a stall, with its phase.
pub const STALL_THRESHOLD: StdDuration = StdDuration::from_millis(50);

/// The shortest time between two warnings that the transport dropped input for its length.
const TOO_LONG_LOG_EVERY: StdDuration = StdDuration::from_secs(10);
/// A turn whose transport delivered fewer events than this read it dry, and the core sleeps
/// (one request in flight: one event a turn); a turn with this many or more spins once more.
pub const EVENTS_DRY_MAX: usize = 8;
/// Messages the transport refused for want of room (`Full`: the kernel socket's send buffer,
/// an association's send queue), held in order for the next turns; one beyond is dropped and
/// counted. A registrar's answers are small, so this is a few MB at most.
pub const UNSENT_MAX: usize = 65_536;
/// How soon a core with refused messages tries them again when nothing wakes it sooner: the
/// kernel frees send buffer as the peers' SACKs arrive, and a socket that cannot be sent on
/// does not wake a wait for reading.
pub const UNSENT_RETRY: StdDuration = StdDuration::from_millis(1);

/// Everything a worker thread owns.
pub struct Worker<T: SctpTransport> {
    /// This core's index.
    pub core: usize,
    /// This core's transport (its own sockets and io_uring).
    pub transport: T,
    /// This core's ASAP server and handlespace shard.
    pub server: Server,
    /// Control-plane queues (registrations, keep-alives, session ends).
    pub control: MeshPort<CrossCore>,
    /// Data-plane queues (handle resolutions and their answers).
    pub data: MeshPort<CrossCore>,
    /// Set by the signal handler; the loop exits at the next iteration.
    pub stop: Arc<AtomicBool>,
    /// Where the worker publishes its counters (read by the dump and the tests).
    pub published: Arc<Mutex<Stats>>,
    /// The instant that handlespace time 0 stands for; shared by every core so that
    /// cross-core messages agree on time.
    pub epoch: StdInstant,
    /// Every core's sleep flag and doorbell, indexed by core.
    pub bells: Arc<[Bell]>,
    /// Cores we queued work for in this iteration (to nudge each once).
    pub nudge: Vec<bool>,
    /// How long the core keeps polling instead of sleeping after its last cross-core message
    /// (`Config::mesh_spin_us`).
    pub mesh_spin: StdDuration,
    /// Per target core, control-plane messages waiting for room in its queue, in order
    /// (`BACKLOG_MAX` in all).
    pub backlog: Vec<VecDeque<CrossCore>>,
    /// The ENRP multicast channel, on the ENRP core when it is on.
    pub presence: Option<crate::io::presence::PresenceChannel>,
    /// Requests of the admin API for this core (`io/management.rs`), looked at once a turn.
    pub mailbox: Arc<Mailbox>,
    /// Set by the admin API's drain: registrations arriving here are refused.
    pub draining: bool,
    /// Associations a drain hands off, to shut down once the mailbox is answered.
    pub shutdowns: Vec<u32>,
    /// Associations up on this core (for the admin API's session counts).
    pub associations: HashSet<u32>,
    /// Messages the transport refused with `Full`, waiting for room.
    pub unsent: Outbox,
    /// The turn's clock read (coarse on a single worker where precise reads are system calls).
    pub clock: super::clock::TurnClock,
}

/// Messages the transport refused with `Full` (`UNSENT_MAX`), oldest first: an answer the
/// transport has no room for now (a kernel socket's EAGAIN under a burst, an association's
/// full send queue) waits for the next turns instead of being lost, so the PE is not left to
/// time out and retry. A new message for an association with messages waiting queues behind
/// them, so that each association's messages keep their order; other associations' messages
/// go on, so that one peer that stopped reading does not hold up the rest.
#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<Unsent>,
    /// Messages waiting, by association.
    held: HashMap<u32, u32>,
}

/// Refusals (`Full`) after which one retry pass stops: when the refusal is the whole
/// socket's (the kernel backend's shared send buffer), trying every waiting message each
/// turn would be a system call each for nothing.
const RETRY_REFUSALS_MAX: usize = 8;

impl Outbox {
    /// Offers `message` to `transmit` unless older ones of its association wait; `done` gets
    /// every message that leaves the box, and whether it was dropped (refused otherwise than
    /// `Full`, or the box full).
    fn send(
        &mut self,
        message: Unsent,
        transmit: impl FnOnce(&Unsent) -> Result<(), TransportError>,
        mut done: impl FnMut(Unsent, bool),
    ) {
        // The common case, nothing waiting, costs one length check, not a hash lookup.
        if !self.held.is_empty() && self.held.contains_key(&message.assoc) {
            return self.hold(message, &mut done);
        }
        match transmit(&message) {
            Err(TransportError::Full) => self.hold(message, &mut done),
            sent => done(message, sent.is_err()),
        }
    }

    /// Offers the waiting messages to `transmit`, oldest first; an association refused with
    /// `Full` keeps the rest of its messages for the next pass, and the pass ends after
    /// `RETRY_REFUSALS_MAX` refusals.
    fn retry(
        &mut self,
        mut transmit: impl FnMut(&Unsent) -> Result<(), TransportError>,
        mut done: impl FnMut(Unsent, bool),
    ) {
        let mut refused: Vec<u32> = Vec::new();
        for _ in 0..self.queue.len() {
            let Some(message) = self.queue.pop_front() else { break };
            if refused.len() >= RETRY_REFUSALS_MAX || refused.contains(&message.assoc) {
                self.queue.push_back(message);
                continue;
            }
            match transmit(&message) {
                Err(TransportError::Full) => {
                    refused.push(message.assoc);
                    self.queue.push_back(message);
                }
                // Refused otherwise (its association closed meanwhile): nobody to answer.
                sent => {
                    self.release(message.assoc);
                    done(message, sent.is_err());
                }
            }
        }
    }

    /// Whether messages wait.
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn hold(&mut self, message: Unsent, done: &mut impl FnMut(Unsent, bool)) {
        if self.queue.len() < UNSENT_MAX {
            *self.held.entry(message.assoc).or_default() += 1;
            self.queue.push_back(message);
        } else {
            done(message, true);
        }
    }

    fn release(&mut self, assoc: u32) {
        if let hashbrown::hash_map::Entry::Occupied(mut entry) = self.held.entry(assoc) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// Hands `message` to the transport on stream 0.
fn transmit<T: SctpTransport>(
    transport: &mut T,
    now: StdInstant,
    message: &Unsent,
) -> Result<(), TransportError> {
    transport.send(now, AssocId(message.assoc), StreamId(0), message.ppid(), message.bytes())
}

/// A message that left the outbox: counted if dropped, its buffer back to the server's pool.
fn finish(server: &mut Server, message: Unsent, dropped: bool) {
    if dropped {
        server.count_dropped();
    }
    if let Payload::Asap(bytes) = message.payload {
        server.recycle(bytes);
    }
}

/// A message waiting for room in the transport.
pub struct Unsent {
    assoc: u32,
    payload: Payload,
}

/// An ASAP message (its buffer goes back to the server's pool once sent) or an ENRP one
/// (shared with the other peers it goes to).
enum Payload {
    Asap(Vec<u8>),
    Enrp(Arc<[u8]>),
}

impl Unsent {
    fn ppid(&self) -> Ppid {
        match self.payload {
            Payload::Asap(_) => Ppid::ASAP,
            Payload::Enrp(_) => Ppid::ENRP,
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.payload {
            Payload::Asap(bytes) => bytes,
            Payload::Enrp(bytes) => bytes,
        }
    }
}

impl<T: SctpTransport> Worker<T> {
    /// Runs until `stop` is set; then aborts nothing and returns (the transport's drop closes
    /// its sockets).
    pub fn run(mut self) -> std::io::Result<()> {
        let mut last_us = 0u64;
        // Published at once, so that readers (the metrics, readiness) see this core's state
        // from its first iteration instead of zeros for 100 ms.
        *self.published.lock().expect("no thread panics holding it") = self.server.stats();
        let mut last_publish = StdInstant::now();
        // Whether this core did work its published counters do not show yet.
        let mut unpublished = false;
        // The start of the previous iteration if it did not sleep: the stall check measures it
        // from this iteration's clock read, so that one read per iteration is all the loop
        // costs (a clock read is a system call on hosts without a usable TSC, e.g. under
        // emulation or on some hypervisors).
        let mut unslept: Option<StdInstant> = None;
        // The last iteration that sent or received cross-core work.
        let mut last_mesh: Option<StdInstant> = None;
        // The deadline the last wait was given: a turn whose clock reads coarse reads precisely
        // when it is near, so that the deadline is seen to pass (and not waited for again, a
        // spin until the coarse clock's next tick).
        let mut last_until: Option<StdInstant> = None;
        // What the transport dropped for its length, as last counted, and when that was last
        // logged: a peer whose packets exceed our MTU loses every message and hears nothing,
        // so the operator is told (at most every `TOO_LONG_LOG_EVERY`), not only a counter.
        let mut too_long = self.transport.input_dropped();
        let mut too_long_logged: Option<StdInstant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let mut now = self.clock.now(false);
            if self.clock.is_coarse() && self.clock.is_near(now, last_until) {
                now = self.clock.now(true);
            }
            let now_us = u64::try_from(now.duration_since(self.epoch).as_micros())
                .expect("584 000 years of uptime");
            assert!(now_us >= last_us, "monotonic clock went backwards");
            last_us = now_us;
            let hs_now = handlespace::Instant::from_micros(now_us);
            if let Some(overrun) = unslept.take().map(|start| now.duration_since(start)) {
                if overrun > STALL_THRESHOLD {
                    tracing::warn!(
                        core = self.core,
                        overrun_us = overrun.as_micros() as u64,
                        "iteration overran its budget"
                    );
                }
            }

            // Queues before the network: a replica update published before its registration's
            // answer left the owning core is applied before a resolution that followed that
            // answer is read.
            let forwarded = self.drain_queues(hs_now);
            let backlogged = self.backlog.iter().map(VecDeque::len).sum::<usize>();
            let events =
                if backlogged < BACKLOG_MAX { self.poll_transport(now, hs_now)? } else { 0 };
            let dropped = self.transport.input_dropped();
            if dropped != too_long {
                self.server.count_too_long(dropped.wrapping_sub(too_long));
                too_long = dropped;
                unpublished = true;
                if too_long_logged.is_none_or(|t| now.duration_since(t) >= TOO_LONG_LOG_EVERY) {
                    too_long_logged = Some(now);
                    tracing::warn!(
                        core = self.core,
                        total = dropped,
                        "dropped input longer than the transport's receive buffers (a peer's \
                         packets exceed sctp_mtu, or its messages the maximum message size); \
                         that peer gets no answers"
                    );
                }
            }
            // The admin API's one cost while nobody uses it: a relaxed load of a clean line.
            if self.mailbox.is_pending() {
                self.serve_mailbox(hs_now);
                unpublished = true;
            }
            if let Some(presence) = self.presence.as_mut() {
                let server = &mut self.server;
                presence.poll(now, |from, bytes| server.handle_enrp_multicast(hs_now, from, bytes));
            }
            if self.server.poll_timeout().is_some_and(|t| t <= hs_now) {
                self.server.handle_timeout(hs_now);
                unpublished = true;
            }
            let sent = self.flush(now);
            if forwarded + sent > 0 {
                last_mesh = Some(now);
            }
            unpublished |= events > 0 || forwarded + sent > 0;
            let spinning = last_mesh.is_some_and(|t| now.duration_since(t) < self.mesh_spin);
            // A transport that delivered only a few events was read dry: going to sleep now
            // saves the spin turn's clock read, zero-timeout wait and empty read (three of the
            // eight system calls per request at one request in flight, issue 14). A turn with
            // more spins once more, as under load the next events are on their way: sleeping
            // after every turn that read less than a full batch cost core_scaling 3-6 %
            // (BENCHMARKS.md, host A/B of 2026-12-03).
            let busy = events >= EVENTS_DRY_MAX || forwarded > 0 || spinning || backlogged > 0;
            // Every 100 ms while busy, and before going idle after work: a reader (the
            // metrics, the admin API) then sees a quiet core's counters complete, not up to
            // 100 ms old. Going idle costs a system call anyway; this adds one lock and copy.
            let stale = now.duration_since(last_publish) > StdDuration::from_millis(100);
            if stale || (unpublished && !busy) {
                *self.published.lock().expect("no thread panics holding it") = self.server.stats();
                last_publish = now;
                unpublished = false;
            }
            if busy {
                self.transport.wait(now, Some(now))?;
                unslept = Some(now);
                last_until = Some(now);
                continue;
            }
            let bell = &self.bells[self.core];
            bell.sleep();
            // Work queued between our drain and the flag would not ring: look once more.
            if self.control.has_pending() || self.data.has_pending() || self.mailbox.is_pending() {
                bell.awake();
                self.transport.wait(now, Some(now))?;
                last_until = Some(now);
                continue;
            }
            let until = self.deadline(now);
            last_until = until;
            let waited = self.transport.wait(now, until);
            self.bells[self.core].awake();
            waited?;
        }
        let stats = self.server.stats();
        *self.published.lock().expect("no thread panics holding it") = stats;
        tracing::info!(
            core = self.core,
            sessions = stats.sessions_opened,
            registrations = stats.registrations,
            resolutions = stats.resolutions,
            "worker stopped"
        );
        Ok(())
    }

    fn poll_transport(
        &mut self,
        now: StdInstant,
        hs_now: handlespace::Instant,
    ) -> std::io::Result<usize> {
        let server = &mut self.server;
        let (core, draining) = (self.core as u16, self.draining);
        let associations = &mut self.associations;
        self.transport.poll(now, EVENTS_PER_TURN_MAX, |event| match event {
            TransportEvent::Up { assoc, peer } => {
                if !associations.insert(assoc.0) {
                    // Up again without a close: the peer came back with the same addresses
                    // and ports and restarted the association (RFC 9260 §5.2.4), a PE whose
                    // host or process restarted.
                    tracing::info!(assoc = assoc.0, %peer, "association restarted by its peer");
                }
                server.handle_up(assoc.0, peer);
            }
            TransportEvent::Data { assoc, ppid, data, .. }
                if ppid == Ppid::ASAP
                    && draining
                    && refuse_registration(server, core, assoc.0, data) => {}
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                server.handle_message(hs_now, assoc.0, data);
            }
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ENRP => {
                server.handle_enrp_message(hs_now, assoc.0, data);
            }
            // Anything else is not ours.
            TransportEvent::Data { .. } => server.count_dropped(),
            TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                associations.remove(&assoc.0);
                server.handle_closed(hs_now, assoc.0);
            }
            TransportEvent::SendFailed { .. } => server.count_dropped(),
            _ => {}
        })
    }

    /// Answers the admin API's request, if one waits: at most one per turn, so that its cost
    /// (a snapshot is bounded by `management::ELEMENTS_PER_ANSWER_MAX`) is one turn's.
    fn serve_mailbox(&mut self, now: handlespace::Instant) {
        let state = CoreState {
            core: u16::try_from(self.core).expect("fewer cores than u16::MAX (checked at start)"),
            associations: self.associations.len() as u64,
            draining: &mut self.draining,
            shutdowns: &mut self.shutdowns,
        };
        management::serve(&self.mailbox, &mut self.server, state, now);
        // A drain's hand-off: each PE's association ends with a SHUTDOWN (its PEs stay).
        let wall = StdInstant::now();
        for assoc in std::mem::take(&mut self.shutdowns) {
            if let Err(error) = self.transport.shutdown(wall, AssocId(assoc)) {
                tracing::debug!(assoc, %error, "hand-off: shutdown refused");
            }
        }
    }

    fn drain_queues(&mut self, now: handlespace::Instant) -> usize {
        let server = &mut self.server;
        // Control first, so that a flood of resolutions cannot starve keep-alives.
        let control = self.control.drain(CROSS_CORE_PER_TURN_MAX, |_, m| {
            server.handle_cross_core(now, m);
        });
        let data = self.data.drain(CROSS_CORE_PER_TURN_MAX, |_, m| {
            server.handle_cross_core(now, m);
        });
        control + data
    }

    /// Sends what the server queued; returns how many messages went to other cores.
    fn flush(&mut self, now: StdInstant) -> usize {
        let mut forwarded = 0;
        // What waited for room goes first, in order.
        for (core, backlog) in self.backlog.iter_mut().enumerate() {
            let sent = retry_backlog(&mut self.control, core, backlog);
            self.nudge[core] |= sent > 0;
            forwarded += sent;
        }
        // Forward before transmitting: a refused forward becomes a local answer, sent with the
        // others below, and replica updates are published before the answers they go with.
        while let Some((core, message)) = self.server.poll_forward() {
            let target = usize::from(core);
            let ports = (&mut self.control, &mut self.data);
            match route(ports, target, &mut self.backlog[target], message) {
                Routed::Sent => {
                    self.nudge[target] = true;
                    forwarded += 1;
                }
                Routed::Held => {}
                Routed::Refused(message) => self.server.refuse(message),
            }
        }
        self.control.publish();
        self.data.publish();
        for (core, nudge) in self.nudge.iter_mut().enumerate() {
            if std::mem::take(nudge) {
                self.bells[core].nudge();
            }
        }
        self.send_unsent(now);
        while let Some(out) = self.server.poll_transmit() {
            self.send(now, Unsent { assoc: out.assoc, payload: Payload::Asap(out.bytes) });
        }
        while let Some(out) = self.server.poll_transmit_enrp() {
            self.send(now, Unsent { assoc: out.assoc, payload: Payload::Enrp(out.bytes) });
        }
        while let Some(bytes) = self.server.poll_multicast() {
            if let Some(presence) = self.presence.as_ref() {
                presence.send(&bytes);
            }
        }
        let hs_now = self.handlespace_now(now);
        while let Some(address) = self.server.poll_connect() {
            let connected = match self.server.enrp_local_port() {
                Some(port) => self.transport.connect_from(now, port, address),
                None => self.transport.connect(now, address),
            };
            let assoc = match connected {
                Ok(assoc) => Some(assoc.0),
                Err(error) => {
                    tracing::debug!(%address, %error, "connect to a peer failed");
                    None
                }
            };
            self.server.handle_connecting(hs_now, address, assoc);
        }
        while let Some(address) = self.server.poll_connect_pe() {
            let assoc = self.transport.connect(now, address).ok().map(|a| a.0);
            self.server.handle_connecting_pe(address, assoc);
        }
        forwarded
    }

    fn handlespace_now(&self, now: StdInstant) -> handlespace::Instant {
        let micros = u64::try_from(now.duration_since(self.epoch).as_micros())
            .expect("584 000 years of uptime");
        handlespace::Instant::from_micros(micros)
    }

    /// Sends one message, or queues it behind the refused ones (see [`Outbox`]).
    fn send(&mut self, now: StdInstant, message: Unsent) {
        let (transport, server) = (&mut self.transport, &mut self.server);
        self.unsent.send(
            message,
            |m| transmit(transport, now, m),
            |m, dropped| finish(server, m, dropped),
        );
    }

    /// Sends the refused messages, oldest first, until the transport refuses again.
    fn send_unsent(&mut self, now: StdInstant) {
        let (transport, server) = (&mut self.transport, &mut self.server);
        self.unsent.retry(|m| transmit(transport, now, m), |m, dropped| finish(server, m, dropped));
    }

    fn deadline(&self, now: StdInstant) -> Option<StdInstant> {
        let server =
            self.server.poll_timeout().map(|t| self.epoch + StdDuration::from_micros(t.micros()));
        let transport = self.transport.next_deadline();
        let unbelled = self.control.cores() > 1 && !self.bells[self.core].is_installed();
        let mesh = unbelled.then(|| now + MESH_POLL_INTERVAL);
        let stop = Some(now + STOP_POLL_INTERVAL);
        let retry = (!self.unsent.is_empty()).then(|| now + UNSENT_RETRY);
        [server, transport, mesh, stop, retry].into_iter().flatten().min()
    }
}

/// While draining: answers an ASAP Registration with a rejection carrying Lack of Resources
/// (RFC 5354 §3.12.7: the registrar has no room for it, which is what a draining registrar
/// means; a PE then registers with another registrar, RFC 5352 §3.1) and returns true; returns
/// false for every other message, which goes its normal way.
fn refuse_registration(server: &mut Server, core: u16, assoc: u32, data: &[u8]) -> bool {
    if data.first() != Some(&codec::asap::MessageType::REGISTRATION.0) {
        return false;
    }
    let Ok(message @ codec::asap::Message::Registration(_)) = codec::asap::Message::parse(data)
    else {
        // Malformed: the normal path answers it with its error cause.
        return false;
    };
    server.stats.registrations_rejected += 1;
    server.refuse_request(SessionId { core, assoc }, message);
    true
}

/// What became of a message for another core.
#[derive(Debug)]
enum Routed {
    /// In the target's queue.
    Sent,
    /// In the backlog for the target, behind earlier messages (it must arrive).
    Held,
    /// Not sent: the caller answers it (Lack of Resources) or drops it.
    Refused(CrossCore),
}

/// Queues `message` for core `target` on its plane. Control messages to one core keep their
/// order: while some wait in `backlog`, a new one waits behind them if it must arrive and is
/// refused otherwise.
fn route(
    (control, data): (&mut MeshPort<CrossCore>, &mut MeshPort<CrossCore>),
    target: usize,
    backlog: &mut VecDeque<CrossCore>,
    message: CrossCore,
) -> Routed {
    let sent = if !message.is_control() {
        data.send(target, message)
    } else if backlog.is_empty() {
        control.send(target, message)
    } else {
        Err(message)
    };
    match sent {
        Ok(()) => Routed::Sent,
        Err(message) if message.must_arrive() => {
            backlog.push_back(message);
            Routed::Held
        }
        Err(message) => Routed::Refused(message),
    }
}

/// Moves what fits of `backlog` into core `target`'s control queue, in order; returns how many.
fn retry_backlog(
    control: &mut MeshPort<CrossCore>,
    target: usize,
    backlog: &mut VecDeque<CrossCore>,
) -> usize {
    let mut sent = 0;
    while let Some(message) = backlog.pop_front() {
        if let Err(message) = control.send(target, message) {
            backlog.push_front(message);
            break;
        }
        sent += 1;
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mesh::mesh;
    use crate::proto::{ReplicaUpdate, SessionId};

    fn remove(id: u32) -> CrossCore {
        let pool_handle = codec::PoolHandle::new(b"P").expect("a valid handle");
        let id = codec::PoolElementId(id);
        CrossCore::Replica(ReplicaUpdate::Remove { pool_handle, id })
    }

    fn answer() -> CrossCore {
        CrossCore::Transmit {
            assoc: 1,
            bytes: vec![codec::asap::MessageType::REGISTRATION_RESPONSE.0],
        }
    }

    // Goal: a replica update is never lost to a full queue, and control messages to one core
    // keep their order. Method: a 1-deep mesh; fill core 1's control queue, then route an
    // update (held), an answer (refused: it may not overtake the update), another update
    // (held), and a data-plane message (sent: the data queue is separate); core 1 drains one
    // message per turn while core 0 retries; core 1 must see the updates in order.
    #[test]
    fn backlog_keeps_updates_in_order() {
        let mut ports = mesh::<CrossCore>(2, 1);
        let mut data = mesh::<CrossCore>(2, 1);
        let (mut control0, mut control1) = (ports.remove(0), ports.remove(0));
        let mut data0 = data.remove(0);
        let mut backlog = VecDeque::new();
        let mut route0 = |m| route((&mut control0, &mut data0), 1, &mut backlog, m);
        assert!(matches!(route0(remove(1)), Routed::Sent));
        assert!(matches!(route0(remove(2)), Routed::Held));
        assert!(matches!(route0(answer()), Routed::Refused(CrossCore::Transmit { .. })));
        assert!(matches!(route0(remove(3)), Routed::Held));
        let session = SessionId { core: 0, assoc: 1 };
        let pool_handle = codec::PoolHandle::new(b"P").expect("a valid handle");
        let request =
            codec::asap::HandleResolution { subscribe: false, pool_handle, items_wanted: None };
        assert!(matches!(route0(CrossCore::Resolve { session, request }), Routed::Sent));
        assert_eq!(backlog.len(), 2);

        let mut seen = Vec::new();
        for _turn in 0..4 {
            control0.publish();
            control1.drain(1, |_, m| match m {
                CrossCore::Replica(ReplicaUpdate::Remove { id, .. }) => seen.push(id.0),
                other => panic!("unexpected {other:?}"),
            });
            retry_backlog(&mut control0, 1, &mut backlog);
        }
        assert_eq!(seen, [1, 2, 3]);
        assert!(backlog.is_empty());
    }

    fn asap(assoc: u32, byte: u8) -> Unsent {
        Unsent { assoc, payload: Payload::Asap(vec![byte]) }
    }

    /// A transport with room for `room` more messages, which knows no association 9.
    struct Link {
        room: usize,
        wire: Vec<u8>,
        finished: Vec<(u8, bool)>,
    }

    impl Link {
        /// Offers `message` (or, with `None`, the waiting ones) through `outbox`.
        fn offer(&mut self, outbox: &mut Outbox, message: Option<Unsent>) {
            let (room, wire, finished) = (&mut self.room, &mut self.wire, &mut self.finished);
            let mut transmit = |u: &Unsent| match (u.assoc, *room) {
                (9, _) => Err(TransportError::UnknownAssoc),
                (_, 0) => Err(TransportError::Full),
                _ => {
                    *room -= 1;
                    wire.push(u.bytes()[0]);
                    Ok(())
                }
            };
            let done = |u: Unsent, dropped: bool| finished.push((u.bytes()[0], dropped));
            match message {
                Some(m) => outbox.send(m, transmit, done),
                None => outbox.retry(&mut transmit, done),
            }
        }
    }

    // Goal: an answer the transport refuses for want of room (`Full`, a kernel socket's
    // EAGAIN) is sent later, in its association's order, not dropped; other associations'
    // messages are not held up; other refusals and a full box drop and count. Method: two
    // answers on association 1 while the transport has no room (held); with room back, a
    // third on 1 must not overtake them while one on 2 goes at once; a retry with room for
    // one; one for an unknown association (9: dropped at once); a retry with room for all.
    #[test]
    fn outbox_holds_refused_answers_in_order() {
        let mut outbox = Outbox::default();
        let mut link = Link { room: 0, wire: Vec::new(), finished: Vec::new() };
        link.offer(&mut outbox, Some(asap(1, 1)));
        link.offer(&mut outbox, Some(asap(1, 2)));
        link.room = 5;
        link.offer(&mut outbox, Some(asap(1, 3)));
        assert!(link.wire.is_empty(), "the new one waits behind its association's");
        link.offer(&mut outbox, Some(asap(2, 5)));
        assert_eq!(link.wire, [5], "another association's goes on");
        link.room = 1;
        link.offer(&mut outbox, None);
        assert_eq!(link.wire, [5, 1]);
        link.offer(&mut outbox, Some(asap(9, 4)));
        link.room = 5;
        link.offer(&mut outbox, None);
        assert_eq!(link.wire, [5, 1, 2, 3], "in order, none lost");
        assert_eq!(link.finished, [(5, false), (1, false), (4, true), (2, false), (3, false)]);
        assert!(outbox.is_empty() && outbox.held.is_empty());

        // A full box drops (and counts) what it cannot hold.
        let mut full = Outbox::default();
        let mut sink = |_: Unsent, _: bool| {};
        for _ in 0..UNSENT_MAX {
            full.hold(asap(1, 0), &mut sink);
        }
        let mut dropped = Vec::new();
        full.send(asap(1, 7), |_| Ok(()), |u, d| dropped.push((u.bytes()[0], d)));
        assert_eq!(dropped, [(7, true)]);
    }
}
