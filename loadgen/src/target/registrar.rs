//! The real registrar as a target: every association is one [`asap::Endpoint`] (the PE/PU
//! library's sans-IO core), carrying `pe.per_association` synthetic PEs (one by default) or
//! the resolutions of a PU association, all of a worker's associations carried by one
//! userspace SCTP-over-UDP transport (RFC 6951). A kernel-SCTP registrar (RSPLIB's, or ours
//! on its kernel backend) is reached through the kernel's own RFC 6951 encapsulation
//! (`sysctl net.sctp.udp_port=9899`), as `lab/run-bench.sh` does.
//!
//! ```text
//!  Workload ─ Op ─▶ submit ─ register / register_now / deregister / resolve_uncached ─▶ Endpoint
//!  Endpoint ─ poll_transmit ─▶ SctpTransport ─▶ registrar ─▶ handle_data ─▶ Endpoint
//!  Workload ◀─ Completion ◀─ poll ◀─ poll_event (resolutions), PE state (registrations) ◀─┘
//! ```
//!
//! Loadgen encodes and decodes no ASAP itself: the endpoints build every request, match every
//! answer (per pool handle and PE id, so answers for different pools may overtake each other),
//! time requests out and acknowledge the registrar's keep-alives (each Ack sent is counted as a
//! `KeepAlive` completion). One message goes on the wire per operation: PEs re-register when
//! the workload says (`register_now`; the endpoint's own T4 is off, and so is its probe of a
//! silent home), and resolutions bypass the PU cache (`resolve_uncached`).
//!
//! With `target.client = "kernel"` the same endpoints sit on one-to-one kernel SCTP sockets
//! instead ([`KernelSctpOneToOne`], one per association, as RSPLIB's library opens them),
//! straight to the registrar's SCTP address: what a deployment of RSPLIB PEs and PUs offers.
//!
//! PEs that share an association (`pe.per_association` > 1) share its endpoint, as RFC 5352
//! allows: each keeps its own registration, timers and operation, and the endpoint answers
//! each one's keep-alives; when the association fails or its home is replaced, every PE on it
//! fails the operation it had in flight (as `transport`) and the endpoint registers them
//! again at the new home, as it does for one.
//!
//! Departures from the client loadgen had before: a resolution or deregistration that times
//! out makes its endpoint replace its home registrar (RFC 5352 §3.6, §3.7.2), so the
//! association is aborted and opened again, and its other operations in flight fail as
//! `transport`; a Deregistration Response carrying an error counts as a success, since the PE
//! is out of the pool either way (§3.2: a registrar without the PE "SHOULD consider the
//! de-registration granted"); timeouts are found by a sweep every 10 ms, so they are reported
//! up to 10 ms late.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use asap::pe::PeState;
use asap::{Endpoint, EndpointConfig, Event, Failure, PeConfig, PeHandle};
use codec::asap::{EndpointKeepAliveAckView, MessageType};
use codec::param::{AddressList, ParameterType, SctpTransport as SctpParam};
use codec::{MessageView, Policy, PoolElementId, PoolHandle, TransportUse};
use transport::kernel_sctp::{KernelSctpConfig, KernelSctpOneToOne};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

use crate::client::{
    Client, Launcher, PoolElementPlan, RunningTarget, SubmitError, Target, WorkerPlan,
};
use crate::op::{AssociationId, Completion, ErrorCause, Op, OpKind, Outcome};
use crate::scenario::{ClientKind, Scenario};

/// SCTP port of the registrar's ASAP service (RFC 5352 §6).
pub const ASAP_PORT: u16 = 3863;
/// How long `connect` waits for one more of a worker's associations to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Handshakes a worker has under way at once while it connects.
const CONNECTS_IN_FLIGHT_MAX: usize = 128;
/// Transport events handled per `poll` batch.
const EVENTS_PER_BATCH: usize = 1_024;
/// Pools whose handles a client formats once at start (65 bytes each, so 4 MiB per worker at
/// most); resolutions of pools past it format their handle each time.
const POOL_HANDLES_CACHED: u32 = 65_536;
/// How often `poll` runs the timers of the endpoints that may have one due: those hunting for
/// their registrar, and those whose oldest operation is older than the operation timeout.
/// Requests time out up to this much late.
const TIMER_SWEEP: Duration = Duration::from_millis(10);
/// How often every endpoint is asked, whatever loadgen knows of it (a request the endpoint
/// sent on its own, e.g. a deregistration again at a new home). Asking all of them every
/// sweep cost churn 7 % of loadgen's instructions (2 000 endpoints per worker).
const TIMER_SWEEP_ALL: Duration = Duration::from_secs(1);

/// Starts the real registrar in-process on 127.0.0.1 with an ephemeral UDP port.
pub struct RegistrarLauncher;

impl Launcher for RegistrarLauncher {
    fn launch(&self, scenario: &Scenario) -> anyhow::Result<Box<dyn RunningTarget>> {
        let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let defaults = registrar::config::Config::default();
        // Room for every PE of the scenario twice over, so that a correct run never sees 0x6.
        let elements = scenario.pe.count.saturating_mul(2).max(1_024);
        let config = registrar::config::Config {
            udp_encapsulation: address,
            sctp_mtu: scenario.target.sctp_mtu,
            workers: usize::from(scenario.target.server_threads),
            announce: registrar::config::Announce { enabled: false, ..defaults.announce.clone() },
            limits: registrar::config::Limits {
                pool_elements_max: elements,
                pool_elements_per_pool_max: elements,
                ..defaults.limits.clone()
            },
            ..defaults
        };
        let running = registrar::io::start(&config)?;
        Ok(Box::new(EmbeddedRegistrar {
            address,
            target: RegistrarTarget { address },
            running: Some(running),
        }))
    }
}

/// A client for a registrar already listening at `address`: its SCTP-over-UDP address (the
/// ASAP SCTP port is 3863 inside it) for userspace clients, its SCTP address for kernel ones.
pub fn connect(address: SocketAddr) -> anyhow::Result<Box<dyn Target>> {
    Ok(Box::new(RegistrarTarget { address }))
}

/// The registrar we started; dropping it stops every worker thread.
struct EmbeddedRegistrar {
    address: SocketAddr,
    target: RegistrarTarget,
    running: Option<registrar::core::Running>,
}

impl RunningTarget for EmbeddedRegistrar {
    fn address(&self) -> SocketAddr {
        self.address
    }

    fn target(&self) -> &dyn Target {
        &self.target
    }
}

impl Drop for EmbeddedRegistrar {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            match running.stop() {
                Ok(stats) => eprintln!("loadgen: registrar stopped: {stats:?}"),
                Err(e) => eprintln!("loadgen: registrar stopped with an error: {e}"),
            }
        }
    }
}

/// The registrar at one address.
pub struct RegistrarTarget {
    address: SocketAddr,
}

impl Target for RegistrarTarget {
    fn name(&self) -> &str {
        "registrar"
    }

    fn connect(&self, scenario: &Scenario, plan: &WorkerPlan) -> anyhow::Result<Box<dyn Client>> {
        // This worker's local address: its turn of `client_addresses`, else the registrar's.
        let addresses = &scenario.target.client_addresses;
        let local = match addresses.len() {
            0 => self.address.ip(),
            n => addresses[usize::from(plan.worker) % n],
        };
        if scenario.target.client == ClientKind::Kernel {
            // One one-to-one kernel socket per association, each bound to the local address
            // (as the userspace transport is), straight to the registrar's SCTP port.
            let cfg = KernelSctpConfig {
                local_addrs: vec![SocketAddr::new(local, 0)],
                ..KernelSctpConfig::default()
            };
            let transport = KernelSctpOneToOne::open(cfg)?;
            return Ok(Box::new(RegistrarClient::connect(
                transport,
                self.address,
                local,
                scenario,
                plan,
            )?));
        }
        let mut cfg = SctpUdpConfig {
            remote_udp_port: self.address.port(),
            ..SctpUdpConfig::with_mtu(scenario.target.sctp_mtu)
        };
        // One association per `pe.per_association` PEs and per PU association of this worker,
        // with room for the ones a re-hunt opens while the old one closes: a fill of many PEs
        // (issue 14's memory figures) would otherwise stop at the endpoint's default table.
        let flows = u32::try_from(plan.associations()).unwrap_or(u32::MAX);
        cfg.endpoint.associations_max = cfg
            .endpoint
            .associations_max
            .max(flows.saturating_add(flows / 8))
            .min(sctp::ASSOCIATIONS_LIMIT);
        let transport = SctpUdpTransport::bind(SocketAddr::new(local, 0), cfg, rand_secret())?;
        let registrar = SocketAddr::new(self.address.ip(), ASAP_PORT);
        Ok(Box::new(RegistrarClient::connect(transport, registrar, local, scenario, plan)?))
    }
}

fn rand_secret() -> [u8; 32] {
    // The cookie secret of a client endpoint only authenticates cookies it issues as a
    // listener, which a load generator never is; a fresh hash state still gives distinct bytes.
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// One worker's associations to the registrar: one [`Endpoint`] each.
pub struct RegistrarClient<T: SctpTransport> {
    transport: T,
    /// The sans-IO time of the endpoints is microseconds since this instant.
    epoch: Instant,
    flows: Vec<Flow>,
    /// The worker's PEs in plan order; each PE flow owns a run of them.
    pes: Vec<PeSlot>,
    /// Associations of the flows that came up (`TransportEvent::Up`), re-hunts included.
    associations_opened: u64,
    by_id: HashMap<AssociationId, usize>,
    by_assoc: HashMap<AssocId, usize>,
    in_flight: u32,
    in_flight_max: u32,
    op_timeout: Duration,
    prefix: String,
    registration_life: asap::Duration,
    /// The address our PEs register as their user transport: the IP the client is bound to
    /// (RSPLIB's registrar refuses loopback addresses from a non-loopback association).
    pe_address: IpAddr,
    /// Flows that had input since their outputs were last drained (a flow may appear twice).
    touched: Vec<usize>,
    /// Associations whose send failed in the current event batch.
    failed: Vec<AssocId>,
    next_sweep: Instant,
    next_sweep_all: Instant,
    /// Pool handles of pools `0..POOL_HANDLES_CACHED`, formatted once: formatting a decimal
    /// per operation cost more than a tenth of what loadgen does per resolution.
    pool_handles: Vec<PoolHandle>,
    /// Reused for every pool handle we format past the cached ones.
    scratch: Vec<u8>,
}

/// One association and the endpoint on it.
struct Flow {
    id: AssociationId,
    endpoint: Endpoint,
    role: Role,
}

impl Flow {
    /// Whether a timer of the endpoint may be due: it hunts, or an operation on it has
    /// waited the operation timeout (the endpoint sent its request no earlier than the
    /// operation was issued, so its deadline is no earlier either).
    fn may_time_out(&self, now: Instant, op_timeout: Duration) -> bool {
        if self.endpoint.home().is_none() {
            return true;
        }
        let oldest = match &self.role {
            Role::Pe { oldest, .. } => *oldest,
            Role::Pu { pending } => pending.front().map(|op| op.issued_at),
        };
        oldest.is_some_and(|at| now.saturating_duration_since(at) >= op_timeout)
    }
}

enum Role {
    /// Synthetic PEs `first..first + count` of the client's `pes`, all on this association
    /// and registered by its endpoint. Bit `k` of `busy` is set while PE `first + k` has an
    /// operation in flight, so that only those are looked at when the endpoint had input;
    /// `oldest` is when the oldest of those operations was issued, kept here so that the
    /// timer sweep reads no PE (it visits every flow every 10 ms).
    Pe { first: u32, count: u32, busy: u64, oldest: Option<Instant> },
    /// A PU association: resolutions in flight, oldest first.
    Pu { pending: VecDeque<Op> },
}

/// One synthetic PE: the workload has at most one operation of a PE in flight.
struct PeSlot {
    plan: PoolElementPlan,
    /// Its handle at the flow's endpoint, from its first registration on.
    handle: Option<PeHandle>,
    op: Option<Op>,
}

impl<T: SctpTransport> RegistrarClient<T> {
    /// Starts one endpoint per association of `plan` and waits until each has its home.
    pub fn connect(
        transport: T,
        registrar: SocketAddr,
        local: IpAddr,
        scenario: &Scenario,
        plan: &WorkerPlan,
    ) -> anyhow::Result<Self> {
        let op_timeout = Duration::from_millis(scenario.run.op_timeout_ms);
        let config = endpoint_config(registrar, op_timeout);
        let (flows, pes) = plan_flows(plan, &config);
        let by_id: HashMap<AssociationId, usize> =
            flows.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        // The planner numbers each association once, and its PEs are consecutive.
        assert_eq!(by_id.len(), flows.len(), "an association is planned twice");
        assert_eq!(flows.len(), plan.associations());
        let reregister_ms = scenario.pe.reregister_ms.max(1_000);
        let epoch = Instant::now();
        let mut client = Self {
            transport,
            epoch,
            touched: (0..flows.len()).collect(),
            flows,
            pes,
            associations_opened: 0,
            by_id,
            by_assoc: HashMap::new(),
            in_flight: 0,
            in_flight_max: plan.in_flight_max,
            op_timeout,
            prefix: scenario.pools.handle_prefix.clone(),
            registration_life: asap::Duration::from_millis(reregister_ms.saturating_mul(3)),
            // The PEs' user transport is on the address their associations come from.
            pe_address: local,
            failed: Vec::new(),
            next_sweep: epoch,
            next_sweep_all: epoch,
            pool_handles: Vec::new(),
            scratch: Vec::with_capacity(64),
        };
        let cached = scenario.pools.count.min(POOL_HANDLES_CACHED);
        let handles: Option<Vec<PoolHandle>> = (0..cached).map(|p| client.format(p)).collect();
        client.pool_handles =
            handles.ok_or_else(|| anyhow::anyhow!("pools.handle_prefix makes no pool handle"))?;
        client.wait_for_homes(registrar)?;
        Ok(client)
    }

    fn wait_for_homes(&mut self, registrar: SocketAddr) -> anyhow::Result<()> {
        // Handshakes go out CONNECTS_IN_FLIGHT_MAX at a time: thousands of INITs at once
        // overflow the peer's socket buffer (a kernel registrar's encapsulation socket drops
        // them), and each lost one waits out a doubling RTO from 1 s.
        let (mut started, mut up) = (0, 0);
        let mut progress = Instant::now();
        let mut sink = Vec::new();
        loop {
            let now = Instant::now();
            let at = self.instant(now);
            while started < self.flows.len() && started - up < CONNECTS_IN_FLIGHT_MAX {
                self.flows[started].endpoint.start(at);
                self.touched.push(started);
                started += 1;
            }
            let lost = self.read_events(now)?;
            anyhow::ensure!(lost == 0, "the registrar at {registrar} refused associations");
            self.settle(now, &mut sink);
            let homed = self.flows.iter().filter(|f| f.endpoint.home().is_some()).count();
            if homed == self.flows.len() {
                return Ok(());
            }
            if homed > up {
                (up, progress) = (homed, now);
            }
            anyhow::ensure!(
                now.duration_since(progress) < CONNECT_TIMEOUT,
                "only {up} of {} associations to the registrar at {registrar} came up \
                 (none more for {} s)",
                self.flows.len(),
                CONNECT_TIMEOUT.as_secs()
            );
            self.transport.wait(now, Some(now + Duration::from_millis(5)))?;
        }
    }

    /// The endpoints' time for `at`.
    fn instant(&self, at: Instant) -> asap::Instant {
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        asap::Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The pool handle of pool index `pool` (see `op::pool_handle`).
    fn handle_of(&mut self, pool: u32) -> Option<PoolHandle> {
        match self.pool_handles.get(pool as usize) {
            Some(handle) => Some(*handle),
            None => self.format(pool),
        }
    }

    /// `prefix` + decimal `pool`, formatted in the scratch buffer.
    fn format(&mut self, pool: u32) -> Option<PoolHandle> {
        use std::io::Write;
        self.scratch.clear();
        self.scratch.extend_from_slice(self.prefix.as_bytes());
        write!(self.scratch, "{pool}").expect("writing to a Vec cannot fail");
        PoolHandle::new(&self.scratch).ok()
    }

    /// What PE `plan` registers: its pool, its wire id, a port of its own, round robin, and
    /// no T4 of the endpoint's (the workload re-registers).
    fn pe_config(&mut self, plan: &PoolElementPlan) -> Option<PeConfig> {
        let pool_handle = self.handle_of(plan.pool)?;
        let user_transport = codec::UserTransport::Sctp(SctpParam {
            port: 10_000 + (plan.element % 50_000) as u16,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[self.pe_address])?,
        });
        let mut config = PeConfig::new(pool_handle, user_transport, Policy::RoundRobin);
        config.id = Some(wire_id(plan.element));
        config.registration_life = self.registration_life;
        config.reregistration = Some(asap::Duration::MAX);
        Some(config)
    }

    /// The index into `pes` of PE `element` of flow `i`; `None` on a PU flow, or when the
    /// PE is not on it.
    fn pe_of(&self, i: usize, element: u32) -> Option<usize> {
        let Role::Pe { first, count, .. } = self.flows[i].role else { return None };
        let run = first as usize..(first + count) as usize;
        // At most `PE_PER_ASSOCIATION_MAX` to look at, and one by default.
        let at = self.pes[run.clone()].iter().position(|pe| pe.plan.element == element)?;
        Some(run.start + at)
    }

    /// Hands `op` to its flow's endpoint (for PE `pe` of `pes` when it is a PE's), which
    /// queues the one message it sends. Inlined, as it was before PEs shared flows: called
    /// once, per operation.
    #[inline(always)]
    fn start(
        &mut self,
        now: Instant,
        i: usize,
        pe: Option<usize>,
        op: &Op,
    ) -> Result<(), SubmitError> {
        let now = self.instant(now);
        let pe_config = match pe {
            Some(s) if op.kind == OpKind::Register && self.pes[s].handle.is_none() => {
                let plan = self.pes[s].plan;
                Some(self.pe_config(&plan).ok_or(SubmitError::Unavailable)?)
            }
            _ => None,
        };
        let pool_handle = match op.kind {
            OpKind::Resolve => Some(self.handle_of(op.pool).ok_or(SubmitError::Unavailable)?),
            _ => None,
        };
        let flow = &mut self.flows[i];
        let endpoint = &mut flow.endpoint;
        let sent = match (&flow.role, pe, op.kind) {
            (Role::Pe { .. }, Some(s), OpKind::Register) => {
                let slot = &mut self.pes[s];
                match (slot.handle, pe_config) {
                    (Some(handle), _) => endpoint.register_now(now, handle),
                    (None, Some(config)) => endpoint.register(now, config).map(|handle| {
                        slot.handle = Some(handle);
                    }),
                    (None, None) => unreachable!("a first registration has its configuration"),
                }
            }
            (Role::Pe { .. }, Some(s), OpKind::Deregister) => match self.pes[s].handle {
                Some(handle) => endpoint.deregister(now, handle),
                None => return Err(SubmitError::Unavailable),
            },
            (Role::Pu { .. }, None, OpKind::Resolve) => {
                // Checked above: a resolution has its pool handle.
                endpoint.resolve_uncached(now, pool_handle.expect("formatted above"))
            }
            _ => return Err(SubmitError::Unavailable),
        };
        sent.map_err(|_| SubmitError::Unavailable)?;
        match (&mut flow.role, pe) {
            (Role::Pe { first, busy, oldest, .. }, Some(s)) => {
                let slot = &mut self.pes[s];
                assert!(slot.op.is_none(), "the workload has one op of a PE in flight");
                slot.op = Some(*op);
                *busy |= 1 << (s - *first as usize);
                *oldest = Some(oldest.map_or(op.issued_at, |at| at.min(op.issued_at)));
            }
            (Role::Pu { pending }, _) => pending.push_back(*op),
            (Role::Pe { .. }, None) => unreachable!("only a PE's op starts on a PE flow"),
        }
        Ok(())
    }

    /// Feeds one batch of transport events to the endpoints; returns how many associations
    /// were lost or closed.
    fn read_events(&mut self, now: Instant) -> anyhow::Result<usize> {
        let t = self.instant(now);
        let (flows, by_assoc, touched, failed) =
            (&mut self.flows, &mut self.by_assoc, &mut self.touched, &mut self.failed);
        let (mut lost, mut opened) = (0, 0);
        self.transport.poll(now, EVENTS_PER_BATCH, |event| {
            let (assoc, i) = match event {
                TransportEvent::Up { assoc, .. }
                | TransportEvent::Data { assoc, .. }
                | TransportEvent::Lost { assoc }
                | TransportEvent::Closed { assoc }
                | TransportEvent::SendFailed { assoc, .. } => match by_assoc.get(&assoc) {
                    Some(&i) => (assoc, i),
                    None => return,
                },
                _ => return,
            };
            let endpoint = &mut flows[i].endpoint;
            match event {
                TransportEvent::Up { peer, .. } => {
                    opened += 1;
                    endpoint.handle_up(t, assoc, peer);
                }
                TransportEvent::Data { ppid, data, .. } if ppid == Ppid::ASAP => {
                    endpoint.handle_data(t, assoc, data);
                }
                TransportEvent::Lost { .. } | TransportEvent::Closed { .. } => {
                    lost += 1;
                    by_assoc.remove(&assoc);
                    endpoint.handle_closed(t, assoc);
                }
                //= https://www.rfc-editor.org/rfc/rfc5352#section-3.7.1
                //# In such a case, the ASAP Endpoint MUST NOT re-send the undeliverable
                //# message.  Instead, it SHOULD discard the message and start the ENRP
                //# Server Hunt procedure as described in Section 3.6.
                TransportEvent::SendFailed { .. } => failed.push(assoc),
                _ => return,
            }
            touched.push(i);
        })?;
        self.associations_opened += opened;
        for assoc in std::mem::take(&mut self.failed) {
            let _ = self.transport.abort(now, assoc);
            if let Some(i) = self.by_assoc.remove(&assoc) {
                self.flows[i].endpoint.handle_closed(t, assoc);
                self.touched.push(i);
            }
        }
        Ok(lost)
    }

    /// Runs the endpoints' timers that are due, at most every [`TIMER_SWEEP`].
    fn sweep_timers(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + TIMER_SWEEP;
        let all = now >= self.next_sweep_all;
        if all {
            self.next_sweep_all = now + TIMER_SWEEP_ALL;
        }
        let t = self.instant(now);
        for (i, flow) in self.flows.iter_mut().enumerate() {
            if !all && !flow.may_time_out(now, self.op_timeout) {
                continue;
            }
            if flow.endpoint.poll_timeout().is_some_and(|at| at <= t) {
                flow.endpoint.handle_timeout(t);
                self.touched.push(i);
            }
        }
    }

    /// Drains the outputs of every touched endpoint, in the order `Endpoint` documents.
    fn settle(&mut self, now: Instant, completions: &mut Vec<Completion>) {
        let mut touched = std::mem::take(&mut self.touched);
        let t = self.instant(now);
        for &i in &touched {
            self.drain(i, now, t, completions);
        }
        touched.clear();
        self.touched = touched;
    }

    fn drain(
        &mut self,
        i: usize,
        now: Instant,
        t: asap::Instant,
        completions: &mut Vec<Completion>,
    ) {
        let flow = &mut self.flows[i];
        while let Some(transmit) = flow.endpoint.poll_transmit() {
            let sent =
                self.transport.send(now, transmit.assoc, StreamId(0), Ppid::ASAP, &transmit.bytes);
            match sent {
                Err(TransportError::UnknownAssoc) => flow.endpoint.handle_closed(t, transmit.assoc),
                _ if !is_keep_alive_ack(&transmit.bytes) => {}
                // The endpoint answered a keep-alive: the seam reports each as a completion.
                sent => {
                    let op = keep_alive_op(flow, &self.pes, &transmit.bytes, now);
                    let outcome = match sent {
                        Ok(()) => Outcome::Succeed,
                        Err(_) => Outcome::Fail(ErrorCause::Transport),
                    };
                    completions.push(Completion { op, end: now, outcome });
                }
            }
            flow.endpoint.recycle(transmit);
        }
        while let Some(assoc) = flow.endpoint.poll_abort() {
            // Already gone is fine: the association is to end either way.
            let _ = self.transport.abort(now, assoc);
            self.by_assoc.remove(&assoc);
        }
        while let Some(remote) = flow.endpoint.poll_connect() {
            match self.transport.connect(now, remote) {
                Ok(assoc) => {
                    flow.endpoint.handle_connect_started(remote, assoc);
                    self.by_assoc.insert(assoc, i);
                }
                Err(_) => flow.endpoint.handle_connect_failed(t, remote),
            }
        }
        let Flow { endpoint, role, .. } = flow;
        let mut done = 0;
        while let Some(event) = endpoint.poll_event() {
            if let Role::Pu { pending } = role {
                let names = PoolNames { prefix: &self.prefix, handles: &self.pool_handles };
                let timeout = self.op_timeout;
                done += complete_resolution(pending, names, event, now, timeout, completions);
            }
        }
        if let Role::Pe { first, busy, oldest, .. } = role {
            // Only the PEs with an op in flight: the others have nothing to complete. Those
            // that go on waiting make the flow's oldest anew.
            *oldest = None;
            for s in busy_pes(*first, *busy) {
                let slot = &mut self.pes[s];
                // A PE's bit is set with its op, after its registration gave it a handle.
                let op = slot.op.as_ref().expect("a busy PE has its op");
                let handle = slot.handle.expect("a busy PE has registered");
                let state = endpoint.pool_element(handle).map(|fsm| fsm.state());
                let Some(outcome) = state.and_then(|s| pe_outcome(op, s, now, self.op_timeout))
                else {
                    *oldest = Some(oldest.map_or(op.issued_at, |at| at.min(op.issued_at)));
                    continue;
                };
                let op = slot.op.take().expect("checked above");
                *busy &= !(1 << (s - *first as usize));
                completions.push(Completion { op, end: now, outcome });
                done += 1;
            }
        }
        // Each completion ends one op counted in by `submit`.
        self.in_flight = self.in_flight.checked_sub(done).expect("completed ops were in flight");
    }
}

impl<T: SctpTransport> Client for RegistrarClient<T> {
    fn submit(&mut self, now: Instant, op: Op) -> Result<(), SubmitError> {
        if self.in_flight >= self.in_flight_max {
            return Err(SubmitError::Full);
        }
        let i = *self.by_id.get(&op.association).ok_or(SubmitError::Unavailable)?;
        if self.flows[i].endpoint.home().is_none() {
            return Err(SubmitError::Unavailable);
        }
        let pe = match op.kind {
            OpKind::Register | OpKind::Deregister => {
                Some(self.pe_of(i, op.element).ok_or(SubmitError::Unavailable)?)
            }
            OpKind::KeepAlive | OpKind::Resolve => None,
        };
        self.start(now, i, pe, &op)?;
        self.in_flight += 1;
        // Send now, as the registrar may be waiting; events wait for the next `poll`.
        let flow = &mut self.flows[i];
        while let Some(transmit) = flow.endpoint.poll_transmit() {
            let sent =
                self.transport.send(now, transmit.assoc, StreamId(0), Ppid::ASAP, &transmit.bytes);
            if sent.is_err() {
                // Its request times out at the endpoint, which reports it.
                self.touched.push(i);
            }
            flow.endpoint.recycle(transmit);
        }
        Ok(())
    }

    fn poll(
        &mut self,
        now: Instant,
        deadline: Instant,
        completions: &mut Vec<Completion>,
    ) -> anyhow::Result<()> {
        let start = completions.len();
        let mut now = now;
        loop {
            self.read_events(now)?;
            self.sweep_timers(now);
            self.settle(now, completions);
            if completions.len() > start || now >= deadline {
                // Flush the acks and anything submitted, without sleeping.
                self.transport.wait(now, Some(now))?;
                return Ok(());
            }
            self.transport.wait(now, Some(deadline))?;
            now = Instant::now();
        }
    }

    fn in_flight(&self) -> u32 {
        self.in_flight
    }

    fn associations_opened(&self) -> u64 {
        self.associations_opened
    }
}

/// The endpoint config of every flow: the one registrar, and the run's operation timeout for
/// every request, tried once (the workload decides what happens next), and no re-registration
/// the workload did not ask for.
fn endpoint_config(registrar: SocketAddr, op_timeout: Duration) -> EndpointConfig {
    let timeout = asap::Duration::from(op_timeout);
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![registrar];
    config.hunt.parallel_max = 1;
    config.request_timeout = timeout;
    config.registration_timeout = timeout;
    config.deregistration_timeout = timeout;
    config.request_attempts_max = 1;
    config.registration_attempts_max = 1;
    config.items_wanted = Some(3);
    // The endpoint re-registers every PE at a home that said nothing for `home_silence`
    // (15 s), to find out whether it died. A registrar whose keep-alives are rarer than that
    // (lab/guest-memory.sh runs them every 300 s) then got every PE's Registration again
    // every 15 s, unasked and uncounted: 1 333 a second at 20 000 PEs during a fill paced at
    // 250. With one attempt per registration a probe's timeout gives up without hunting
    // anyway, so loadgen loses nothing by leaving it off.
    config.home_silence = asap::Duration::MAX;
    config
}

/// Completes the resolution an endpoint event answers, the oldest in flight for its pool;
/// returns how many it completed (0 or 1).
fn complete_resolution(
    pending: &mut VecDeque<Op>,
    names: PoolNames<'_>,
    event: Event,
    now: Instant,
    op_timeout: Duration,
    out: &mut Vec<Completion>,
) -> u32 {
    let (pool_handle, outcome) = match event {
        Event::ResolvedUncached { pool_handle, pool_elements: 0 } => {
            (pool_handle, Outcome::Fail(ErrorCause::Protocol))
        }
        Event::ResolvedUncached { pool_handle, .. } => (pool_handle, Outcome::Succeed),
        Event::ResolutionFailed { pool_handle, failure: Failure::Refused(cause) } => {
            (pool_handle, Outcome::Fail(ErrorCause::Asap(cause.0)))
        }
        Event::ResolutionFailed { pool_handle, failure: Failure::TimedOut } => {
            (pool_handle, Outcome::Fail(ErrorCause::Timeout))
        }
        _ => return 0,
    };
    let Some(at) = pending.iter().position(|op| names.is(op.pool, &pool_handle)) else { return 0 };
    // `at` came from this deque; answers mostly come in order, and pop_front is cheaper.
    let op = if at == 0 { pending.pop_front() } else { pending.remove(at) };
    let op = op.expect("position is in the deque");
    out.push(Completion { op, end: now, outcome: lost_early(outcome, &op, now, op_timeout) });
    1
}

/// The outcome of a PE's operation once its state machine has left the state the operation
/// put it in (a renewal's answer raises no event, see `asap`'s `driven.rs`); `None` while
/// it waits.
fn pe_outcome(op: &Op, state: &PeState, now: Instant, op_timeout: Duration) -> Option<Outcome> {
    let outcome = match (op.kind, state) {
        (OpKind::Register, PeState::Registering { .. })
        | (OpKind::Deregister, PeState::Deregistering { .. }) => return None,
        (OpKind::Register, PeState::Registered { .. })
        | (OpKind::Deregister, PeState::Deregistered) => Outcome::Succeed,
        (_, PeState::Refused { cause }) => Outcome::Fail(ErrorCause::Asap(cause.0)),
        (_, PeState::GaveUp) => Outcome::Fail(ErrorCause::Timeout),
        // The association went, or the request timed out and the endpoint hunts again.
        (_, PeState::Unregistered) => Outcome::Fail(ErrorCause::Timeout),
        _ => Outcome::Fail(ErrorCause::Protocol),
    };
    Some(lost_early(outcome, op, now, op_timeout))
}

/// A "timeout" before the operation's time was up is an association that went away.
fn lost_early(outcome: Outcome, op: &Op, now: Instant, op_timeout: Duration) -> Outcome {
    match outcome {
        Outcome::Fail(ErrorCause::Timeout)
            if now.saturating_duration_since(op.issued_at) < op_timeout =>
        {
            Outcome::Fail(ErrorCause::Transport)
        }
        other => other,
    }
}

/// Whether `bytes`, which an endpoint sends, is an Endpoint Keep Alive Ack.
fn is_keep_alive_ack(bytes: &[u8]) -> bool {
    MessageView::new_checked(bytes)
        .is_ok_and(|m| m.message_type() == MessageType::ENDPOINT_KEEP_ALIVE_ACK.0)
}

/// The completion's op for the keep-alive `flow`'s endpoint answered with `ack`: it names
/// the PE the Ack names (read only when the association carries more than one).
fn keep_alive_op(flow: &Flow, pes: &[PeSlot], ack: &[u8], now: Instant) -> Op {
    let (pool, element) = match flow.role {
        Role::Pe { first, count, .. } => {
            let run = &pes[first as usize..(first + count) as usize];
            let pe = match run {
                [only] => only,
                _ => {
                    let acked = acked_pe(ack);
                    // The endpoint answers keep-alives for its own PEs only (KA1); the first
                    // PE stands in should that ever change.
                    run.iter().find(|pe| Some(wire_id(pe.plan.element)) == acked).unwrap_or(&run[0])
                }
            };
            (pe.plan.pool, pe.plan.element)
        }
        Role::Pu { .. } => (0, 0),
    };
    Op { kind: OpKind::KeepAlive, association: flow.id, pool, element, issued_at: now }
}

/// The PE identifier an Endpoint Keep Alive Ack names, read from the view (no allocation).
fn acked_pe(ack: &[u8]) -> Option<PoolElementId> {
    let view = EndpointKeepAliveAckView::new_checked(ack).ok()?;
    let parameter = view
        .parameters()
        .filter_map(Result::ok)
        .find(|p| p.parameter_type() == ParameterType::PE_IDENTIFIER)?;
    let value: [u8; 4] = parameter.value().try_into().ok()?;
    Some(PoolElementId(u32::from_be_bytes(value)))
}

/// The flows of `plan`: one per run of PEs that share an association, then one per PU
/// association; and the PEs, in plan order.
fn plan_flows(plan: &WorkerPlan, config: &EndpointConfig) -> (Vec<Flow>, Vec<PeSlot>) {
    let endpoint = |id: AssociationId| Endpoint::new(config.clone(), u64::from(id.0));
    let mut flows: Vec<Flow> = Vec::with_capacity(plan.associations());
    let mut pes = Vec::with_capacity(plan.pool_elements.len());
    for &pe in &plan.pool_elements {
        let at = u32::try_from(pes.len()).expect("pe.count is a u32");
        pes.push(PeSlot { plan: pe, handle: None, op: None });
        match flows.last_mut() {
            Some(Flow { id, role: Role::Pe { count, .. }, .. }) if *id == pe.association => {
                *count += 1;
                // Validated: pe.per_association is at most what an endpoint (and `busy`) holds.
                assert!(*count as usize <= asap::endpoint::POOL_ELEMENTS_MAX);
            }
            _ => flows.push(Flow {
                id: pe.association,
                endpoint: endpoint(pe.association),
                role: Role::Pe { first: at, count: 1, busy: 0, oldest: None },
            }),
        }
    }
    for &id in &plan.pool_users {
        flows.push(Flow {
            id,
            endpoint: endpoint(id),
            role: Role::Pu { pending: VecDeque::new() },
        });
    }
    (flows, pes)
}

/// The indices into the client's `pes` of a flow's PEs whose bits are set in `busy`.
fn busy_pes(first: u32, busy: u64) -> impl Iterator<Item = usize> {
    let mut bits = busy;
    std::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let k = bits.trailing_zeros();
        bits &= bits - 1;
        Some((first + k) as usize)
    })
}

/// The PE identifier on the wire for workload element `element`: shifted by one, because
/// RSPLIB treats identifier 0 as "undefined" and rejects it.
fn wire_id(element: u32) -> PoolElementId {
    PoolElementId(element.wrapping_add(1))
}

/// How pool indices and pool handles map onto each other.
#[derive(Clone, Copy)]
struct PoolNames<'a> {
    prefix: &'a str,
    /// The handles of the first pools, by index.
    handles: &'a [PoolHandle],
}

impl PoolNames<'_> {
    /// Whether `handle` names pool `pool`.
    fn is(&self, pool: u32, handle: &PoolHandle) -> bool {
        match self.handles.get(pool as usize) {
            Some(ours) => ours == handle,
            None => pool_index(self.prefix, handle) == Some(pool),
        }
    }
}

/// The pool index inside a handle made by [`crate::op::pool_handle`]; `None` when it is not one
/// of ours.
fn pool_index(prefix: &str, handle: &PoolHandle) -> Option<u32> {
    let bytes = handle.as_bytes();
    bytes
        .strip_prefix(prefix.as_bytes())
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::asap::{EndpointKeepAlive, EndpointKeepAliveAck, Message, RegistrationResponse};
    use codec::ErrorCause as Cause;

    fn op(kind: OpKind, pool: u32, issued_at: Instant) -> Op {
        Op { kind, association: AssociationId(3), pool, element: 7, issued_at }
    }

    fn handle(name: &str) -> PoolHandle {
        PoolHandle::new(name.as_bytes()).unwrap()
    }

    /// No cached handles: every pool is told by parsing its handle.
    const NAMES: PoolNames<'static> = PoolNames { prefix: "pool", handles: &[] };

    // Goal: the cached handle table and the parse agree on which handle names which pool.
    // Method: pools 0-2 cached, then the same questions with no table.
    #[test]
    fn pool_names_agree_cached_or_parsed() {
        let table = [handle("pool0"), handle("pool1"), handle("pool2")];
        for handles in [&table[..], &[]] {
            let names = PoolNames { prefix: "pool", handles };
            assert!(names.is(1, &handle("pool1")));
            assert!(!names.is(1, &handle("pool2")));
            assert!(!names.is(2, &handle("other2")));
            assert!(names.is(70_000, &handle("pool70000")), "past the table: parsed");
            assert!(!names.is(70_000, &handle("pool7000")));
        }
    }

    // Goal: an endpoint's resolution event completes the oldest resolution of its pool, with
    // the outcome the old client gave (PEs: success; none: protocol; a cause: that cause; a
    // timeout before the op's time was up: the association went). Method: three ops, two for
    // pool 1, events out of order, one for a pool nothing waits for.
    #[test]
    fn resolution_events_complete_the_oldest_op_of_their_pool() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(1);
        let mut pending: VecDeque<Op> = [
            op(OpKind::Resolve, 1, t0),
            op(OpKind::Resolve, 2, t0),
            op(OpKind::Resolve, 1, t0 + Duration::from_millis(1)),
        ]
        .into();
        let refused = Failure::Refused(Cause::UNKNOWN_POOL_HANDLE);
        let resolved = |name, pool_elements| Event::ResolvedUncached {
            pool_handle: handle(name),
            pool_elements,
        };
        let events = [
            resolved("pool9", 1),
            resolved("pool1", 3),
            Event::ResolutionFailed { pool_handle: handle("pool2"), failure: refused },
            resolved("pool1", 0),
        ];
        let mut out = Vec::new();
        for e in events {
            complete_resolution(&mut pending, NAMES, e, t0, timeout, &mut out);
        }
        let got: Vec<_> = out.iter().map(|c| (c.op.pool, c.op.issued_at, c.outcome)).collect();
        let late = t0 + Duration::from_millis(1);
        assert_eq!(
            got,
            [
                (1, t0, Outcome::Succeed),
                (2, t0, Outcome::Fail(ErrorCause::Asap(0x9))),
                (1, late, Outcome::Fail(ErrorCause::Protocol)),
            ]
        );
        assert!(pending.is_empty());

        let mut pending: VecDeque<Op> = [op(OpKind::Resolve, 4, t0)].into();
        let timed_out =
            || Event::ResolutionFailed { pool_handle: handle("pool4"), failure: Failure::TimedOut };
        let early = t0 + Duration::from_millis(999);
        complete_resolution(&mut pending, NAMES, timed_out(), early, timeout, &mut out);
        assert_eq!(out[3].outcome, Outcome::Fail(ErrorCause::Transport), "lost before its time");
        pending.push_back(op(OpKind::Resolve, 4, t0));
        complete_resolution(&mut pending, NAMES, timed_out(), t0 + timeout, timeout, &mut out);
        assert_eq!(out[4].outcome, Outcome::Fail(ErrorCause::Timeout));
    }

    // Goal: a PE operation completes when the PE state machine leaves the state the operation
    // put it in, and not before. Method: every (kind, state) pair the client can meet.
    #[test]
    fn pe_operations_complete_by_state() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(1);
        let assoc = AssocId(1);
        let register = op(OpKind::Register, 0, t0);
        let deregister = op(OpKind::Deregister, 0, t0);
        let outcome = |op: &Op, state: PeState, now| pe_outcome(op, &state, now, timeout);
        let waiting = PeState::Registering { assoc, renewal: true };
        assert_eq!(outcome(&register, waiting, t0), None);
        assert_eq!(outcome(&deregister, PeState::Deregistering { assoc }, t0), None);
        assert_eq!(outcome(&register, PeState::Registered { assoc }, t0), Some(Outcome::Succeed));
        assert_eq!(outcome(&deregister, PeState::Deregistered, t0), Some(Outcome::Succeed));
        let refused = PeState::Refused { cause: Cause::LACK_OF_RESOURCES };
        assert_eq!(outcome(&register, refused, t0), Some(Outcome::Fail(ErrorCause::Asap(0x6))));
        let gave_up = outcome(&register, PeState::GaveUp, t0 + timeout);
        assert_eq!(gave_up, Some(Outcome::Fail(ErrorCause::Timeout)));
        let lost = outcome(&deregister, PeState::Unregistered, t0);
        assert_eq!(lost, Some(Outcome::Fail(ErrorCause::Transport)));
    }

    /// What the scripted registrar does next.
    enum Script {
        Closed(AssocId),
        Data(AssocId, Vec<u8>),
        Lost(AssocId),
        Up(AssocId),
    }

    /// A transport through which a test plays the registrar: an association comes up as
    /// soon as it is started, sends are kept, and the test queues what arrives.
    #[derive(Default)]
    struct Scripted {
        assocs: u32,
        sent: Vec<(AssocId, Vec<u8>)>,
        script: VecDeque<Script>,
    }

    const REGISTRAR: SocketAddr =
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), ASAP_PORT);

    impl SctpTransport for Scripted {
        fn listen(&mut self, _: u16) -> Result<(), TransportError> {
            Ok(())
        }
        fn connect(&mut self, _: Instant, _: SocketAddr) -> Result<AssocId, TransportError> {
            self.assocs += 1;
            self.script.push_back(Script::Up(AssocId(self.assocs)));
            Ok(AssocId(self.assocs))
        }
        fn send(
            &mut self,
            _: Instant,
            assoc: AssocId,
            _: StreamId,
            _: Ppid,
            data: &[u8],
        ) -> Result<(), TransportError> {
            self.sent.push((assoc, data.to_vec()));
            Ok(())
        }
        fn shutdown(&mut self, _: Instant, _: AssocId) -> Result<(), TransportError> {
            Ok(())
        }
        fn abort(&mut self, _: Instant, assoc: AssocId) -> Result<(), TransportError> {
            self.script.push_back(Script::Closed(assoc));
            Ok(())
        }
        fn peer_addresses(
            &mut self,
            _: AssocId,
            _: &mut [SocketAddr],
        ) -> Result<usize, TransportError> {
            Ok(0)
        }
        fn poll(
            &mut self,
            _: Instant,
            budget: usize,
            mut on_event: impl FnMut(TransportEvent<'_>),
        ) -> std::io::Result<usize> {
            let mut delivered = 0;
            while delivered < budget {
                let Some(next) = self.script.pop_front() else { break };
                on_event(match &next {
                    Script::Closed(assoc) => TransportEvent::Closed { assoc: *assoc },
                    Script::Data(assoc, data) => TransportEvent::Data {
                        assoc: *assoc,
                        stream: StreamId(0),
                        ppid: Ppid::ASAP,
                        data,
                    },
                    Script::Lost(assoc) => TransportEvent::Lost { assoc: *assoc },
                    Script::Up(assoc) => TransportEvent::Up { assoc: *assoc, peer: REGISTRAR },
                });
                delivered += 1;
            }
            Ok(delivered)
        }
        fn wait(&mut self, _: Instant, _: Option<Instant>) -> std::io::Result<()> {
            Ok(())
        }
        fn next_deadline(&self) -> Option<Instant> {
            None
        }
    }

    /// The PE identifiers of the Registrations sent on `assoc`.
    fn registrations(sent: &[(AssocId, Vec<u8>)], assoc: AssocId) -> Vec<u32> {
        let parsed = sent.iter().filter(|(a, _)| *a == assoc).map(|(_, b)| Message::parse(b));
        parsed
            .filter_map(|m| match m {
                Ok(Message::Registration(r)) => Some(r.pool_element.id.0),
                _ => None,
            })
            .collect()
    }

    /// Polls `client` until it hands out completions or 100 polls went by.
    fn poll_some(client: &mut RegistrarClient<Scripted>) -> Vec<Completion> {
        let mut out = Vec::new();
        for _ in 0..100 {
            let now = Instant::now();
            client.poll(now, now + Duration::from_millis(1), &mut out).unwrap();
            if !out.is_empty() {
                break;
            }
        }
        out
    }

    /// A client over a scripted transport whose `pes` PEs all share one association.
    fn scripted_client(pes: u32) -> RegistrarClient<Scripted> {
        let s = Scenario::from_toml(&format!(
            "[run]\nop_timeout_ms = 60000\n[target]\nkind = \"registrar\"\n\
             [pe]\ncount = {pes}\nper_association = {pes}\n[pu]\nassociations = 0"
        ))
        .unwrap();
        let plan = &crate::workload::plan_workers(&s)[0];
        let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        RegistrarClient::connect(Scripted::default(), REGISTRAR, local, &s, plan).unwrap()
    }

    // Goal: PEs that share an association each keep their own op: an answer completes only
    // the PE it names, a keep-alive names the PE it probed, and when the association is lost
    // every PE with an op in flight fails it as `transport` (one that finished is left alone),
    // after which the endpoint registers all of them again on the new association, which is
    // counted as opened. Method: 3 PEs on one association (pe.per_association = 3) over a
    // scripted transport playing the registrar.
    #[test]
    fn pes_sharing_an_association_complete_and_fail_each_their_own_op() {
        let mut client = scripted_client(3);
        assert_eq!((client.flows.len(), client.associations_opened()), (1, 1));
        let t0 = Instant::now();
        let at = |element: u32| t0 + Duration::from_millis(u64::from(element));
        for element in 0..3 {
            let op = Op {
                kind: OpKind::Register,
                association: AssociationId(0),
                pool: element,
                element,
                issued_at: at(element),
            };
            client.submit(at(element), op).unwrap();
        }
        let (first, second) = (AssocId(1), AssocId(2));
        assert_eq!(registrations(&client.transport.sent, first), [1, 2, 3]);
        assert_eq!(client.in_flight(), 3);

        // The registrar answers PE 0 (wire id 1) only.
        let answer = RegistrationResponse {
            reject: false,
            pool_handle: handle("loadgen-pool-0"),
            pe_id: PoolElementId(1),
            error: None,
        };
        let answer = Message::RegistrationResponse(answer).emit_to_vec();
        client.transport.script.push_back(Script::Data(first, answer));
        let done = poll_some(&mut client);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].op.element, done[0].outcome), (0, Outcome::Succeed));
        assert_eq!(client.in_flight(), 2);
        // The timer sweep looks at the flow once the oldest op still waiting (PE 1's) may
        // have timed out, and not before.
        let timeout = client.op_timeout;
        let flow = &client.flows[0];
        assert!(flow.may_time_out(at(1) + timeout, timeout));
        assert!(!flow.may_time_out(at(1) + timeout - Duration::from_micros(1), timeout));

        // A keep-alive probing PE 2 (wire id 3) is answered and named after it.
        let probe = EndpointKeepAlive {
            home: false,
            server_id: codec::RegistrarId(7),
            pool_handle: handle("loadgen-pool-2"),
            pe_id: Some(PoolElementId(3)),
        };
        let probe = Message::EndpointKeepAlive(probe).emit_to_vec();
        client.transport.script.push_back(Script::Data(first, probe));
        let done = poll_some(&mut client);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].op.kind, done[0].op.element), (OpKind::KeepAlive, 2));
        assert_eq!(done[0].op.pool, 2);
        let (_, ack) = client.transport.sent.last().unwrap();
        assert_eq!(acked_pe(ack), Some(PoolElementId(3)));

        // The association is lost: PEs 1 and 2 fail as transport, PE 0 had nothing in flight.
        client.transport.script.push_back(Script::Lost(first));
        let mut done = poll_some(&mut client);
        done.sort_by_key(|c| c.op.element);
        let failed: Vec<_> = done.iter().map(|c| (c.op.element, c.outcome)).collect();
        let transport = Outcome::Fail(ErrorCause::Transport);
        assert_eq!(failed, [(1, transport), (2, transport)]);
        assert_eq!(client.in_flight(), 0);

        // The endpoint finds its home again on a new association and re-registers all three.
        for _ in 0..100 {
            if registrations(&client.transport.sent, second).len() == 3 {
                break;
            }
            poll_some(&mut client);
        }
        let mut again = registrations(&client.transport.sent, second);
        again.sort_unstable();
        assert_eq!(again, [1, 2, 3]);
        assert_eq!(client.associations_opened(), 2);
    }

    // Goal (regression: a fill against a registrar with keep-alives every 300 s had every
    // PE re-register every 15 s, unasked): registered PEs send nothing the workload did not
    // ask for while their home is silent. Method: 2 PEs on one association, registered and
    // answered, then the client polled 20 s and 40 s later with nothing from the registrar.
    #[test]
    fn registered_pes_stay_quiet_while_their_home_is_silent() {
        let mut client = scripted_client(2);
        let t0 = Instant::now();
        for element in 0..2 {
            let association = AssociationId(0);
            let op =
                Op { kind: OpKind::Register, association, pool: element, element, issued_at: t0 };
            client.submit(t0, op).unwrap();
        }
        for pe_id in [1, 2] {
            let pool_handle = handle(&format!("loadgen-pool-{}", pe_id - 1));
            let pe_id = PoolElementId(pe_id);
            let answer = RegistrationResponse { reject: false, pool_handle, pe_id, error: None };
            let answer = Message::RegistrationResponse(answer).emit_to_vec();
            client.transport.script.push_back(Script::Data(AssocId(1), answer));
        }
        let mut done = Vec::new();
        while done.len() < 2 {
            done.extend(poll_some(&mut client));
        }
        assert!(done.iter().all(|c| c.outcome == Outcome::Succeed));
        let sent = client.transport.sent.len();
        for later in [20, 40] {
            // A deadline already past (in real time) makes poll return after one round.
            let now = Instant::now() + Duration::from_secs(later);
            client.poll(now, Instant::now(), &mut Vec::new()).unwrap();
        }
        assert_eq!(client.transport.sent.len(), sent, "nothing sent unasked");
    }

    // Goal: only a Keep Alive Ack counts as an answered keep-alive. Method: an Ack, a
    // Deregistration of the same PE, and bytes that are no message.
    #[test]
    fn only_keep_alive_acks_are_counted() {
        let ack = EndpointKeepAliveAck { pool_handle: handle("pool1"), pe_id: PoolElementId(8) };
        assert!(is_keep_alive_ack(&Message::EndpointKeepAliveAck(ack).emit_to_vec()));
        let d =
            codec::asap::Deregistration { pool_handle: handle("pool1"), pe_id: PoolElementId(8) };
        assert!(!is_keep_alive_ack(&Message::Deregistration(d).emit_to_vec()));
        assert!(!is_keep_alive_ack(&[0x08, 0, 0]));
    }
}
