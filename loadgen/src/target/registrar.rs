//! The real registrar as a target: ASAP (codec) over our userspace SCTP in UDP (RFC 6951), one
//! association per simulated PE and per PU association. A kernel-SCTP registrar (RSPLIB's, or
//! ours on its kernel backend) is reached through the kernel's own RFC 6951 encapsulation
//! (`sysctl net.sctp.udp_port=9899`), as `lab/run-bench.sh` does.
//!
//! ```text
//!  Workload ─ Op ─▶ RegistrarClient::submit ─ ASAP bytes ─▶ SctpTransport ─▶ registrar
//!  Workload ◀─ Completion ◀─ poll ◀─ responses matched by (association, kind, pool, PE) ◀─┘
//! ```
//!
//! Responses are matched per association on (kind, pool handle, PE id), not FIFO: the registrar
//! shards pools over cores, so answers for different pools can overtake each other.
//! Keep-alives from the registrar are answered at once and reported as `KeepAlive` completions.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use codec::asap::{
    Deregistration, EndpointKeepAliveAck, HandleResolution, HandleResolutionResponseView, Message,
    Registration,
};
use codec::param::{AddressList, ParameterType, SctpTransport as SctpParam};
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportEvent};

use crate::client::{Client, Launcher, RunningTarget, SubmitError, Target, WorkerPlan};
use crate::op::{AssociationId, Completion, ErrorCause, Op, OpKind, Outcome};
use crate::scenario::Scenario;

/// SCTP port of the registrar's ASAP service (RFC 5352 §6).
pub const ASAP_PORT: u16 = 3863;
/// How long `connect` waits for every association of a worker to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Transport events handled per `poll` batch.
const EVENTS_PER_BATCH: usize = 1_024;

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
/// ASAP SCTP port is 3863 inside it).
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
        let cfg = SctpUdpConfig {
            remote_udp_port: self.address.port(),
            ..SctpUdpConfig::with_mtu(scenario.target.sctp_mtu)
        };
        let bind = SocketAddr::new(self.address.ip(), 0);
        let transport = SctpUdpTransport::bind(bind, cfg, rand_secret())?;
        let registrar = SocketAddr::new(self.address.ip(), ASAP_PORT);
        Ok(Box::new(RegistrarClient::connect(transport, registrar, scenario, plan)?))
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

/// One worker's associations to the registrar.
pub struct RegistrarClient<T: SctpTransport> {
    transport: T,
    by_id: HashMap<AssociationId, AssocId>,
    by_assoc: HashMap<AssocId, AssociationId>,
    /// Operations sent and not yet answered, per association, oldest first.
    pending: HashMap<AssocId, VecDeque<Op>>,
    in_flight: u32,
    in_flight_max: u32,
    op_timeout: Duration,
    prefix: String,
    registration_life_ms: u32,
    /// The address our PEs register as their user transport: the IP the client is bound to
    /// (RSPLIB's registrar refuses loopback addresses from a non-loopback association).
    pe_address: IpAddr,
    /// Keep-alives to acknowledge after the current event batch.
    acks: Vec<(AssocId, AssociationId, PoolHandle, PoolElementId)>,
    /// Responses decoded in the current event batch.
    responses: Vec<(AssocId, Answer)>,
    lost: Vec<AssocId>,
    /// Reused for every pool handle and every request we emit: the hot path allocates nothing.
    scratch: Vec<u8>,
}

/// What one response from the registrar answers, reduced to what matching needs.
#[derive(Clone, Copy, Debug)]
struct Answer {
    kind: OpKind,
    /// The pool the response names (`None`: it names none we can read, so it answers the
    /// oldest operation); `Some(None)` is a pool handle that is not one of ours.
    pool: Option<Option<u32>>,
    /// The PE identifier on the wire, for (de)registration responses.
    element: Option<u32>,
    outcome: Outcome,
}

impl Answer {
    /// An answer nothing can be attributed to: it fails the oldest operation.
    const UNDECODABLE: Self = Self {
        kind: OpKind::Resolve,
        pool: None,
        element: None,
        outcome: Outcome::Fail(ErrorCause::Protocol),
    };

    /// The fast path for the hot message: a Handle Resolution Response read through the
    /// codec's zero-copy view (TLV framing, the pool handle, a count of Pool Element
    /// parameters), no allocation. `None` sends it down the owned parse: any answer carrying
    /// an Operational Error, and anything malformed, so that errors are reported by cause.
    fn resolution(prefix: &str, data: &[u8]) -> Option<Self> {
        let view = HandleResolutionResponseView::new_checked(data).ok()?;
        let (mut handle, mut elements) = (None, 0usize);
        for parameter in view.parameters() {
            let parameter = parameter.ok()?;
            match parameter.parameter_type() {
                ParameterType::POOL_HANDLE => {
                    handle = Some(PoolHandle::new(parameter.value()).ok()?);
                }
                ParameterType::POOL_ELEMENT => elements += 1,
                ParameterType::OPERATIONAL_ERROR => return None,
                _ => {}
            }
        }
        let outcome =
            if elements > 0 { Outcome::Succeed } else { Outcome::Fail(ErrorCause::Protocol) };
        Some(Self {
            kind: OpKind::Resolve,
            pool: Some(pool_index(prefix, &handle?)),
            element: None,
            outcome,
        })
    }

    /// Any other response, from the owned parse.
    fn of_message(prefix: &str, message: &Message) -> Self {
        let pool = |h: &PoolHandle| Some(pool_index(prefix, h));
        match message {
            Message::RegistrationResponse(r) => Self {
                kind: OpKind::Register,
                pool: pool(&r.pool_handle),
                element: Some(r.pe_id.0),
                outcome: outcome_of(r.reject, r.error.as_ref()),
            },
            Message::DeregistrationResponse(r) => Self {
                kind: OpKind::Deregister,
                pool: pool(&r.pool_handle),
                element: Some(r.pe_id.0),
                outcome: outcome_of(false, r.error.as_ref()),
            },
            Message::HandleResolutionResponse(r) => Self {
                kind: OpKind::Resolve,
                pool: pool(&r.pool_handle),
                element: None,
                outcome: match (&r.error, r.pool_elements.is_empty()) {
                    (None, false) => Outcome::Succeed,
                    (Some(e), _) => Outcome::Fail(first_cause(e)),
                    (None, true) => Outcome::Fail(ErrorCause::Protocol),
                },
            },
            _ => Self::UNDECODABLE,
        }
    }
}

impl<T: SctpTransport> RegistrarClient<T> {
    /// Opens every association of `plan` and waits until all are up.
    pub fn connect(
        mut transport: T,
        registrar: SocketAddr,
        scenario: &Scenario,
        plan: &WorkerPlan,
    ) -> anyhow::Result<Self> {
        let ids: Vec<AssociationId> = plan
            .pool_elements
            .iter()
            .map(|pe| pe.association)
            .chain(plan.pool_users.iter().copied())
            .collect();
        let mut by_id = HashMap::new();
        let mut by_assoc = HashMap::new();
        let now = Instant::now();
        for id in &ids {
            let assoc = transport
                .connect(now, registrar)
                .map_err(|e| anyhow::anyhow!("connect to the registrar at {registrar}: {e}"))?;
            by_id.insert(*id, assoc);
            by_assoc.insert(assoc, *id);
        }
        let mut up = 0usize;
        let deadline = now + CONNECT_TIMEOUT;
        while up < ids.len() {
            let now = Instant::now();
            anyhow::ensure!(
                now < deadline,
                "only {up} of {} associations to the registrar at {registrar} came up",
                ids.len()
            );
            let mut lost = 0;
            transport.poll(now, EVENTS_PER_BATCH, |e| match e {
                TransportEvent::Up { .. } => up += 1,
                TransportEvent::Lost { .. } | TransportEvent::Closed { .. } => lost += 1,
                _ => {}
            })?;
            anyhow::ensure!(lost == 0, "the registrar at {registrar} refused associations");
            transport.wait(now, Some(now + Duration::from_millis(5)))?;
        }
        let reregister_ms = scenario.pe.reregister_ms.max(1_000);
        Ok(Self {
            transport,
            by_id,
            by_assoc,
            pending: HashMap::new(),
            in_flight: 0,
            in_flight_max: plan.in_flight_max,
            op_timeout: Duration::from_millis(scenario.run.op_timeout_ms),
            prefix: scenario.pools.handle_prefix.clone(),
            pe_address: registrar.ip(),
            registration_life_ms: u32::try_from(reregister_ms.saturating_mul(3))
                .unwrap_or(u32::MAX),
            acks: Vec::new(),
            responses: Vec::new(),
            lost: Vec::new(),
            scratch: Vec::with_capacity(256),
        })
    }

    /// `prefix` + decimal `pool`, formatted in the scratch buffer (see `op::pool_handle`).
    fn handle_of(&mut self, pool: u32) -> Option<PoolHandle> {
        use std::io::Write;
        self.scratch.clear();
        self.scratch.extend_from_slice(self.prefix.as_bytes());
        write!(self.scratch, "{pool}").expect("writing to a Vec cannot fail");
        PoolHandle::new(&self.scratch).ok()
    }

    fn encode(&mut self, op: &Op) -> Option<Message> {
        let handle = self.handle_of(op.pool)?;
        Some(match op.kind {
            OpKind::Register => Message::Registration(Registration {
                pool_handle: handle,
                pool_element: PoolElement {
                    id: wire_id(op.element),
                    home_registrar: RegistrarId(0),
                    registration_life_ms: self.registration_life_ms,
                    user_transport: codec::UserTransport::Sctp(SctpParam {
                        port: 10_000 + (op.element % 50_000) as u16,
                        transport_use: TransportUse::DATA_ONLY,
                        addresses: AddressList::from_slice(&[self.pe_address])?,
                    }),
                    policy: Policy::RoundRobin,
                    asap_transport: None,
                },
            }),
            OpKind::Deregister => Message::Deregistration(Deregistration {
                pool_handle: handle,
                pe_id: wire_id(op.element),
            }),
            OpKind::Resolve => Message::HandleResolution(HandleResolution {
                subscribe: false,
                pool_handle: handle,
                items_wanted: Some(3),
            }),
            OpKind::KeepAlive => return None,
        })
    }

    /// Reads one batch of events into `responses`, `acks` and `lost`.
    fn read_events(&mut self, now: Instant) -> anyhow::Result<usize> {
        let (by_assoc, acks, responses, lost, prefix) =
            (&self.by_assoc, &mut self.acks, &mut self.responses, &mut self.lost, &self.prefix);
        let n = self.transport.poll(now, EVENTS_PER_BATCH, |event| match event {
            TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                if let Some(answer) = Answer::resolution(prefix, data) {
                    responses.push((assoc, answer));
                    return;
                }
                match Message::parse(data) {
                    Ok(Message::EndpointKeepAlive(k)) => {
                        if let (Some(id), Some(pe)) = (by_assoc.get(&assoc), k.pe_id) {
                            acks.push((assoc, *id, k.pool_handle, pe));
                        }
                    }
                    Ok(message) => responses.push((assoc, Answer::of_message(prefix, &message))),
                    // Undecodable: fails the oldest operation on the association (see complete).
                    Err(_) => responses.push((assoc, Answer::UNDECODABLE)),
                }
            }
            TransportEvent::Lost { assoc } | TransportEvent::Closed { assoc } => lost.push(assoc),
            _ => {}
        })?;
        Ok(n)
    }

    fn settle(&mut self, now: Instant, completions: &mut Vec<Completion>) {
        for (assoc, id, handle, pe) in self.acks.drain(..) {
            let ack = Message::EndpointKeepAliveAck(EndpointKeepAliveAck {
                pool_handle: handle,
                pe_id: pe,
            });
            let sent = self.transport.send(now, assoc, StreamId(0), Ppid::ASAP, &ack.emit_to_vec());
            let op = Op {
                kind: OpKind::KeepAlive,
                association: id,
                pool: pool_index(&self.prefix, &handle).unwrap_or(0),
                element: pe.0.wrapping_sub(1),
                issued_at: now,
            };
            let outcome =
                if sent.is_ok() { Outcome::Succeed } else { Outcome::Fail(ErrorCause::Transport) };
            completions.push(Completion { op, end: now, outcome });
        }
        let mut responses = std::mem::take(&mut self.responses);
        for (assoc, answer) in responses.drain(..) {
            self.complete(now, assoc, answer, completions);
        }
        self.responses = responses;
        for assoc in std::mem::take(&mut self.lost) {
            if let Some(ops) = self.pending.remove(&assoc) {
                for op in ops {
                    self.in_flight -= 1;
                    completions.push(Completion {
                        op,
                        end: now,
                        outcome: Outcome::Fail(ErrorCause::Transport),
                    });
                }
            }
            if let Some(id) = self.by_assoc.remove(&assoc) {
                self.by_id.remove(&id);
            }
        }
    }

    fn complete(
        &mut self,
        now: Instant,
        assoc: AssocId,
        answer: Answer,
        out: &mut Vec<Completion>,
    ) {
        let Answer { kind, pool, element, outcome } = answer;
        let Some(queue) = self.pending.get_mut(&assoc) else { return };
        let matches = |op: &Op| {
            op.kind == kind
                && pool.is_none_or(|p| p == Some(op.pool))
                && element.is_none_or(|e| e == wire_id(op.element).0)
        };
        // An answer we cannot attribute fails the oldest operation, so that nothing hangs.
        let position = if pool.is_some() { queue.iter().position(matches) } else { Some(0) };
        if let Some(op) = position.and_then(|i| queue.remove(i)) {
            self.in_flight -= 1;
            out.push(Completion { op, end: now, outcome });
        }
    }

    fn expire(&mut self, now: Instant, out: &mut Vec<Completion>) {
        for queue in self.pending.values_mut() {
            while queue.front().is_some_and(|op| now.duration_since(op.issued_at) > self.op_timeout)
            {
                let op = queue.pop_front().expect("front exists");
                self.in_flight -= 1;
                out.push(Completion { op, end: now, outcome: Outcome::Fail(ErrorCause::Timeout) });
            }
        }
    }
}

impl<T: SctpTransport> Client for RegistrarClient<T> {
    fn submit(&mut self, now: Instant, op: Op) -> Result<(), SubmitError> {
        if self.in_flight >= self.in_flight_max {
            return Err(SubmitError::Full);
        }
        let assoc = *self.by_id.get(&op.association).ok_or(SubmitError::Unavailable)?;
        let message = self.encode(&op).ok_or(SubmitError::Unavailable)?;
        self.scratch.resize(message.buffer_len(), 0);
        let length = message.emit(&mut self.scratch);
        self.transport
            .send(now, assoc, StreamId(0), Ppid::ASAP, &self.scratch[..length])
            .map_err(|_| SubmitError::Unavailable)?;
        self.pending.entry(assoc).or_default().push_back(op);
        self.in_flight += 1;
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
            self.settle(now, completions);
            self.expire(now, completions);
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
}

/// The PE identifier on the wire for workload element `element`: shifted by one, because
/// RSPLIB treats identifier 0 as "undefined" and rejects it.
fn wire_id(element: u32) -> PoolElementId {
    PoolElementId(element.wrapping_add(1))
}

fn outcome_of(reject: bool, error: Option<&codec::param::OperationalError>) -> Outcome {
    match (reject, error) {
        (_, Some(e)) => Outcome::Fail(first_cause(e)),
        (true, None) => Outcome::Fail(ErrorCause::Protocol),
        (false, None) => Outcome::Succeed,
    }
}

fn first_cause(e: &codec::param::OperationalError) -> ErrorCause {
    e.causes.first().map_or(ErrorCause::Protocol, |c| ErrorCause::Asap(c.code.0))
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

/// Kept for the fallback path of `quickstart auto`: a registrar target that cannot be started
/// for lack of wiring. The real target is wired, so nothing returns it any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotWired;

impl std::fmt::Display for NotWired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the registrar target is not wired")
    }
}

impl std::error::Error for NotWired {}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::asap::HandleResolutionResponse;
    use codec::param::{Cause, CauseInfo, OperationalError};

    fn response(handle: &str, elements: u32, error: Option<u16>) -> Vec<u8> {
        Message::HandleResolutionResponse(HandleResolutionResponse {
            accept_updates: false,
            pool_handle: PoolHandle::new(handle.as_bytes()).unwrap(),
            overall_policy: Some(Policy::RoundRobin),
            pool_elements: (1..=elements).map(codec::testing::sample_pool_element).collect(),
            error: error.map(|code| OperationalError {
                causes: vec![Cause { code: codec::ErrorCause(code), info: CauseInfo::None }],
            }),
        })
        .emit_to_vec()
    }

    // Goal: the zero-copy fast path reads what the owned parse reads, and leaves to it every
    // answer that carries an error. Method: responses with PEs, without, with an error, for a
    // foreign pool, and truncated, through both paths.
    #[test]
    fn resolution_fast_path_agrees_with_the_owned_parse() {
        let owned = |bytes: &[u8]| Answer::of_message("pool", &Message::parse(bytes).unwrap());
        for (bytes, pool, outcome) in [
            (response("pool7", 3, None), Some(Some(7)), Outcome::Succeed),
            (response("pool0", 0, None), Some(Some(0)), Outcome::Fail(ErrorCause::Protocol)),
            (response("other", 1, None), Some(None), Outcome::Succeed),
        ] {
            let fast = Answer::resolution("pool", &bytes).expect("fast path");
            let slow = owned(&bytes);
            for a in [fast, slow] {
                assert_eq!(
                    (a.kind, a.pool, a.element, a.outcome),
                    (OpKind::Resolve, pool, None, outcome)
                );
            }
        }
        let unknown = response("pool3", 0, Some(0x9));
        assert!(Answer::resolution("pool", &unknown).is_none(), "errors take the owned parse");
        assert_eq!(owned(&unknown).outcome, Outcome::Fail(ErrorCause::Asap(0x9)));
        let good = response("pool1", 2, None);
        assert!(Answer::resolution("pool", &good[..good.len() - 4]).is_none(), "truncated");
    }
}
