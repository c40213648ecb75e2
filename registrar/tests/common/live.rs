//! Live PEs and PUs for tests against a real registrar: `asap::Endpoint`s (the PE/PU
//! library's sans-IO core), all on one userspace SCTP-over-UDP socket, driven in the test's
//! thread. The library registers, matches answers, answers keep-alives and hunts; a test only
//! says what to do and waits for the events it expects.
//!
//! ```text
//!  test ─ register / resolve / deregister ─▶ endpoints[i] ─ poll_transmit ─▶ SCTP in UDP
//!  test ◀─ (i, Event) ◀─ run_until / serve ◀─ handle_up / _data / _closed ◀─┘
//! ```

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use asap::{Endpoint, EndpointConfig, Event, Failure, Resolution};
use codec::{ErrorCause, PoolHandle};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport, StreamId, TransportEvent};

/// The longest one `poll` sleeps, so that deadlines and timers are looked at often.
const WAIT_SLICE: Duration = Duration::from_millis(5);

/// `count` endpoints with one socket between them.
pub(crate) struct LiveEndpoints {
    transport: SctpUdpTransport,
    epoch: Instant,
    endpoints: Vec<Endpoint>,
    by_assoc: HashMap<AssocId, usize>,
    /// Endpoints that no longer hear ASAP (see [`Self::set_deaf`]).
    deaf: Vec<bool>,
    /// Events not yet taken by `run_until`, with the endpoint that raised each.
    events: Vec<(usize, Event)>,
}

impl LiveEndpoints {
    /// `count` endpoints on a socket with cookie secret byte `secret`, each with its home:
    /// the registrar whose userspace SCTP listens on 127.0.0.1:`udp_port`.
    pub(crate) fn connect(
        udp_port: u16,
        secret: u8,
        count: usize,
        config: &EndpointConfig,
    ) -> Self {
        let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
        let transport = SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [secret; 32])
            .expect("a client socket");
        let mut config = config.clone();
        config.hunt.registrars = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3863)];
        config.hunt.parallel_max = 1;
        let endpoints = (0..count).map(|i| Endpoint::new(config.clone(), i as u64)).collect();
        let mut live = Self {
            transport,
            epoch: Instant::now(),
            endpoints,
            by_assoc: HashMap::new(),
            deaf: vec![false; count],
            events: Vec::new(),
        };
        let now = live.now();
        live.endpoints.iter_mut().for_each(|e| e.start(now));
        live.run_until(Duration::from_secs(20), |events| {
            events.iter().filter(|(_, e)| matches!(e, Event::RegistrarFound { .. })).count()
                == count
        });
        live
    }

    /// The endpoints' time now.
    pub(crate) fn now(&self) -> asap::Instant {
        let micros = self.epoch.elapsed().as_micros();
        asap::Instant::from_micros(u64::try_from(micros).expect("a test runs for less than ages"))
    }

    /// Endpoint `i`, to call `register`, `resolve`, `deregister` on (then `run_until`).
    pub(crate) fn endpoint(&mut self, i: usize) -> &mut Endpoint {
        &mut self.endpoints[i]
    }

    /// A resolution of `pool_handle` by endpoint `i`, whose cache must be off (the tests set a
    /// zero stale-cache value), run until it is answered within `timeout`: the PE ids listed,
    /// or the cause it was refused with. A timed-out resolution panics.
    pub(crate) fn resolve_ids(
        &mut self,
        i: usize,
        pool_handle: PoolHandle,
        timeout: Duration,
    ) -> Result<BTreeSet<u32>, ErrorCause> {
        let now = self.now();
        let pending = self.endpoint(i).resolve(now, pool_handle).unwrap();
        assert_eq!(pending, Resolution::Pending, "nothing is cached");
        let answer = |e: &Event| match e {
            Event::Resolved { pool_handle: p, elements } if *p == pool_handle => {
                Some(Ok(elements.iter().map(|e| e.id.0).collect()))
            }
            Event::ResolutionFailed { pool_handle: p, failure } if *p == pool_handle => {
                match failure {
                    Failure::Refused(cause) => Some(Err(*cause)),
                    Failure::TimedOut => panic!("{pool_handle}: the resolution timed out"),
                }
            }
            _ => None,
        };
        let events =
            self.run_until(timeout, |events| events.iter().any(|(_, e)| answer(e).is_some()));
        events.iter().find_map(|(_, e)| answer(e)).expect("run_until returned on it")
    }

    /// From now on, endpoint `i` hears no ASAP: a hung application whose SCTP still
    /// acknowledges what arrives, so its PEs stop answering keep-alives.
    pub(crate) fn set_deaf(&mut self, i: usize) {
        self.deaf[i] = true;
    }

    /// Runs every endpoint until `done` holds for the events raised since the last call
    /// (they are then consumed), panicking after `timeout`.
    pub(crate) fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[(usize, Event)]) -> bool,
    ) -> Vec<(usize, Event)> {
        let deadline = Instant::now() + timeout;
        loop {
            self.turn();
            if done(&self.events) {
                return std::mem::take(&mut self.events);
            }
            assert!(Instant::now() < deadline, "timed out; events so far: {:?}", self.events);
        }
    }

    /// Runs every endpoint (answering keep-alives) for `duration`; returns what they raised.
    pub(crate) fn serve(&mut self, duration: Duration) -> Vec<(usize, Event)> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.turn();
        }
        std::mem::take(&mut self.events)
    }

    /// Shuts every association down gracefully and waits up to `timeout` for them to close.
    pub(crate) fn close(mut self, timeout: Duration) {
        let now = Instant::now();
        let mut open: Vec<AssocId> = self.by_assoc.keys().copied().collect();
        for &assoc in &open {
            let _ = self.transport.shutdown(now, assoc);
        }
        let until = now + timeout;
        while !open.is_empty() && Instant::now() < until {
            let now = Instant::now();
            self.transport.wait(now, Some(now + WAIT_SLICE)).unwrap();
            self.transport
                .poll(Instant::now(), 1_024, |e| {
                    if let TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } = e {
                        open.retain(|&a| a != assoc);
                    }
                })
                .unwrap();
        }
        assert!(open.is_empty(), "associations {open:?} still open after {timeout:?}");
        // Send the SHUTDOWN COMPLETEs of the last closes before the socket goes.
        let now = Instant::now();
        self.transport.wait(now, Some(now)).unwrap();
    }

    /// One turn: outputs out, wait for input (at most a slice), input in, timers, outputs.
    fn turn(&mut self) {
        self.outputs();
        let now = Instant::now();
        self.transport.wait(now, Some(now + WAIT_SLICE)).unwrap();
        let t = self.now();
        let (endpoints, by_assoc, deaf) = (&mut self.endpoints, &mut self.by_assoc, &self.deaf);
        self.transport
            .poll(Instant::now(), 1_024, |event| match event {
                TransportEvent::Up { assoc, peer } => {
                    if let Some(&i) = by_assoc.get(&assoc) {
                        endpoints[i].handle_up(t, assoc, peer);
                    }
                }
                TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                    match by_assoc.get(&assoc) {
                        Some(&i) if !deaf[i] => endpoints[i].handle_data(t, assoc, data),
                        _ => {}
                    }
                }
                TransportEvent::Lost { assoc } | TransportEvent::Closed { assoc } => {
                    if let Some(i) = by_assoc.remove(&assoc) {
                        endpoints[i].handle_closed(t, assoc);
                    }
                }
                _ => {}
            })
            .unwrap();
        for e in &mut self.endpoints {
            if e.poll_timeout().is_some_and(|at| at <= t) {
                e.handle_timeout(t);
            }
        }
        self.outputs();
    }

    /// Every endpoint's outputs, in the order `Endpoint` documents.
    fn outputs(&mut self) {
        let (os_now, now) = (Instant::now(), self.now());
        for (i, e) in self.endpoints.iter_mut().enumerate() {
            while let Some(out) = e.poll_transmit() {
                self.transport
                    .send(os_now, out.assoc, StreamId(0), Ppid::ASAP, &out.bytes)
                    .expect("the endpoint sends on its own associations");
            }
            while let Some(assoc) = e.poll_abort() {
                let _ = self.transport.abort(os_now, assoc);
                self.by_assoc.remove(&assoc);
            }
            while let Some(remote) = e.poll_connect() {
                match self.transport.connect(os_now, remote) {
                    Ok(assoc) => {
                        e.handle_connect_started(remote, assoc);
                        self.by_assoc.insert(assoc, i);
                    }
                    Err(_) => e.handle_connect_failed(now, remote),
                }
            }
            self.events.extend(std::iter::from_fn(|| e.poll_event()).map(|ev| (i, ev)));
        }
    }
}
