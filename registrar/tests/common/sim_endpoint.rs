//! An `asap::Endpoint` (the PE/PU library's sans-IO core) on one node of the simulated SCTP
//! network (`sctp::testing::Net`): the simulations' PEs and PUs are the library's, so no test
//! writes its own registration or keep-alive answering.
//!
//! ```text
//!  Net node: Connected / Lost / Closed, received ASAP ─▶ handle_up / _closed / _data
//!  Net node: send, abort, connect                     ◀─ poll_transmit / _abort / _connect
//!  SimEndpoint::events                                ◀─ poll_event
//! ```
//!
//! Registrars are named by their simulated IP and SCTP port; every node's UDP port is
//! [`SIM_UDP_PORT`].

use std::net::SocketAddr;

use asap::{Endpoint, EndpointConfig, Event};
use sctp::testing::Net;
use sctp::{AssociationHandle, Event as SctpEvent, Instant};
use transport::AssocId;

/// The UDP port of every simulated node.
pub(crate) const SIM_UDP_PORT: u16 = 9899;
const ASAP_PPID: u32 = 11;

/// One endpoint on one node.
pub(crate) struct SimEndpoint {
    /// The node it runs on.
    pub(crate) node: usize,
    /// The endpoint; calls on it go through [`Self::endpoint_mut`], so the next turn knows
    /// its deadline may have moved.
    endpoint: Endpoint,
    /// What the endpoint told its user, oldest first; the test takes what it wants.
    pub(crate) events: Vec<Event>,
    /// When set, the endpoint no longer runs (a hung application: its SCTP still
    /// acknowledges, but nothing reads, answers or sends ASAP; a library that only stopped
    /// hearing would still re-register, by T4 or after its home's silence, and stay).
    pub(crate) deaf: bool,
    events_seen: usize,
    received_seen: usize,
    /// The endpoint's `poll_timeout` as of the end of the last turn, unless something touched
    /// the endpoint since (`None` in `Some`: no timer). A simulation turns every endpoint at
    /// every step, and most steps bring an endpoint nothing: recomputing its deadline each
    /// time was a quarter of the ENRP simulation's run time.
    deadline: Option<Option<asap::Instant>>,
    /// Local SCTP ports of this node's associations: `ports.start + attempt % 1 000`.
    ports: u16,
    attempts: u16,
}

impl SimEndpoint {
    /// An endpoint on `node` whose associations leave from ports `local_ports ..
    /// local_ports + 1 000`.
    pub(crate) fn new(node: usize, config: EndpointConfig, seed: u64, local_ports: u16) -> Self {
        Self {
            node,
            endpoint: Endpoint::new(config, seed),
            events: Vec::new(),
            deaf: false,
            deadline: None,
            events_seen: 0,
            received_seen: 0,
            ports: local_ports,
            attempts: 0,
        }
    }

    /// The endpoint, to read.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, to call (register, resolve, ...); turn it next so its outputs leave.
    pub(crate) fn endpoint_mut(&mut self) -> &mut Endpoint {
        self.deadline = None;
        &mut self.endpoint
    }

    /// The endpoint's time for the network's.
    pub(crate) fn instant(t: Instant) -> asap::Instant {
        asap::Instant::from_micros(t.micros())
    }

    /// One turn at `net.now`: the node's SCTP events and messages in, due timers, every
    /// output out, in the order `Endpoint` documents.
    pub(crate) fn turn(&mut self, net: &mut Net) {
        let now = Self::instant(net.now);
        let node = &net.nodes[self.node];
        if self.deaf {
            self.events_seen = node.events.len();
            self.received_seen = node.received.len();
            return;
        }
        let idle = node.events.len() == self.events_seen
            && node.received.len() == self.received_seen
            && self.deadline.is_some_and(|at| at.is_none_or(|at| now < at));
        if idle {
            return;
        }
        self.deadline = None;
        let events: Vec<SctpEvent> =
            node.events[self.events_seen..].iter().map(|(_, e)| *e).collect();
        self.events_seen = node.events.len();
        for e in events {
            match e {
                SctpEvent::Connected(h) => {
                    let remote = net.nodes[self.node].endpoint.remote(h);
                    let peer = remote.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                    self.endpoint.handle_up(now, AssocId(h.0), peer);
                }
                SctpEvent::CommunicationLost(h) | SctpEvent::Closed(h) => {
                    self.endpoint.handle_closed(now, AssocId(h.0));
                }
                _ => {}
            }
        }
        let node = &net.nodes[self.node];
        let received = node.received[self.received_seen..].to_vec();
        self.received_seen = node.received.len();
        for m in received.iter().filter(|m| m.info.ppid == ASAP_PPID) {
            self.endpoint.handle_data(now, AssocId(m.assoc.0), &m.data);
        }
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.outputs(net);
    }

    fn outputs(&mut self, net: &mut Net) {
        let (t, now) = (net.now, Self::instant(net.now));
        let sctp = &mut net.nodes[self.node].endpoint;
        while let Some(out) = self.endpoint.poll_transmit() {
            let h = AssociationHandle(out.assoc.0);
            // A send on an association that just failed is lost; the endpoint hears of the
            // failure as an event and hunts.
            let _ = sctp.send(t, h, 0, ASAP_PPID, false, &out.bytes);
        }
        while let Some(assoc) = self.endpoint.poll_abort() {
            sctp.abort(t, AssociationHandle(assoc.0));
        }
        while let Some(registrar) = self.endpoint.poll_connect() {
            let udp = SocketAddr::new(registrar.ip(), SIM_UDP_PORT);
            let port = self.ports + self.attempts % 1_000;
            self.attempts = self.attempts.wrapping_add(1);
            match sctp.connect(t, udp, port, registrar.port()) {
                Ok(h) => self.endpoint.handle_connect_started(registrar, AssocId(h.0)),
                Err(_) => self.endpoint.handle_connect_failed(now, registrar),
            }
        }
        self.events.extend(std::iter::from_fn(|| self.endpoint.poll_event()));
        self.deadline = Some(self.endpoint.poll_timeout());
    }
}
