//! One core's loop: transport batch in, cross-core queues drained, timers fired, replies out,
//! then one blocking wait. It runs at its own pace, never per event (TigerBeetle, glommio).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportEvent};

use super::bells::Bell;
use super::mesh::MeshPort;
use crate::proto::{CrossCore, Server, Stats};

/// Transport events handled per iteration before the loop looks at its queues and timers.
pub const EVENTS_PER_TURN_MAX: usize = 1_024;
/// Cross-core messages handled per plane per iteration.
pub const CROSS_CORE_PER_TURN_MAX: usize = 1_024;
/// Longest sleep while other cores may send us work and our transport has no doorbell (the
/// kernel backend): a sleeping core then looks at its queues at least this often.
pub const MESH_POLL_INTERVAL: StdDuration = StdDuration::from_micros(200);
/// Longest sleep at all: the stop flag (set by a signal handler) is looked at this often.
pub const STOP_POLL_INTERVAL: StdDuration = StdDuration::from_millis(50);
/// An iteration slower than this is logged as a stall, with its phase.
pub const STALL_THRESHOLD: StdDuration = StdDuration::from_millis(50);

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
}

impl<T: SctpTransport> Worker<T> {
    /// Runs until `stop` is set; then aborts nothing and returns (the transport's drop closes
    /// its sockets).
    pub fn run(mut self) -> std::io::Result<()> {
        let mut last_us = 0u64;
        let mut last_publish = StdInstant::now();
        // The start of the previous iteration if it did not sleep: the stall check measures it
        // from this iteration's clock read, so that one read per iteration is all the loop
        // costs (a clock read is a system call on hosts without a usable TSC, e.g. under
        // emulation or on some hypervisors).
        let mut unslept: Option<StdInstant> = None;
        // The last iteration that sent or received cross-core work.
        let mut last_mesh: Option<StdInstant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let now = StdInstant::now();
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

            let events = self.poll_transport(now, hs_now)?;
            let forwarded = self.drain_queues(hs_now);
            if self.server.poll_timeout().is_some_and(|t| t <= hs_now) {
                self.server.handle_timeout(hs_now);
            }
            let sent = self.flush(now);
            if forwarded + sent > 0 {
                last_mesh = Some(now);
            }
            if now.duration_since(last_publish) > StdDuration::from_millis(100) {
                *self.published.lock().expect("no thread panics holding it") = self.server.stats();
                last_publish = now;
            }
            let spinning = last_mesh.is_some_and(|t| now.duration_since(t) < self.mesh_spin);
            let busy = events > 0 || forwarded > 0 || spinning;
            if busy {
                self.transport.wait(now, Some(now))?;
                unslept = Some(now);
                continue;
            }
            let bell = &self.bells[self.core];
            bell.sleep();
            // Work queued between our drain and the flag would not ring: look once more.
            if self.control.has_pending() || self.data.has_pending() {
                bell.awake();
                self.transport.wait(now, Some(now))?;
                continue;
            }
            let until = self.deadline(now);
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
        self.transport.poll(now, EVENTS_PER_TURN_MAX, |event| match event {
            TransportEvent::Up { assoc, peer } => server.handle_up(assoc.0, peer),
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                server.handle_message(hs_now, assoc.0, data);
            }
            // ENRP (PPID 12) is the next wave; anything else is not ours.
            TransportEvent::Data { .. } => server.count_dropped(),
            TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                server.handle_closed(hs_now, assoc.0);
            }
            TransportEvent::SendFailed { .. } => server.count_dropped(),
            _ => {}
        })
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
        // Forward first: a refused forward becomes a local answer, sent with the others below.
        while let Some((core, message)) = self.server.poll_forward() {
            let port = if message.is_control() { &mut self.control } else { &mut self.data };
            match port.send(usize::from(core), message) {
                Ok(()) => {
                    self.nudge[usize::from(core)] = true;
                    forwarded += 1;
                }
                Err(message) => self.server.refuse(message),
            }
        }
        self.control.publish();
        self.data.publish();
        for (core, nudge) in self.nudge.iter_mut().enumerate() {
            if std::mem::take(nudge) {
                self.bells[core].nudge();
            }
        }
        while let Some(out) = self.server.poll_transmit() {
            let sent =
                self.transport.send(now, AssocId(out.assoc), StreamId(0), Ppid::ASAP, &out.bytes);
            if sent.is_err() {
                self.server.count_dropped();
            }
            self.server.recycle(out.bytes);
        }
        forwarded
    }

    fn deadline(&self, now: StdInstant) -> Option<StdInstant> {
        let server =
            self.server.poll_timeout().map(|t| self.epoch + StdDuration::from_micros(t.micros()));
        let transport = self.transport.next_deadline();
        let unbelled = self.control.cores() > 1 && !self.bells[self.core].is_installed();
        let mesh = unbelled.then(|| now + MESH_POLL_INTERVAL);
        let stop = Some(now + STOP_POLL_INTERVAL);
        [server, transport, mesh, stop].into_iter().flatten().min()
    }
}
