//! The async driver (feature `tokio`) end to end over loopback, against a small scripted
//! registrar made of codec messages on our SCTP-in-UDP transport.
//!
//! Goal: a PE registers and deregisters, a PU resolves and subscribes, every push reaches
//! the subscription, the pool's end ends it, an unknown pool and an absent registrar are the
//! typed errors. Method: the scripted registrar (a thread) answers Registration,
//! Deregistration and Handle Resolution, accepts the S flag and pushes the whole pool after
//! each change (a negative push when the pool empties); the endpoints run under
//! `asap::tokio::AsyncEndpoint` on a current-thread runtime, each await bounded.
#![cfg(feature = "tokio")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asap::blocking::{BlockingError, PoolUpdate};
use asap::tokio::AsyncEndpoint;
use asap::{EndpointConfig, PeConfig, Updates};
use codec::asap::{
    DeregistrationResponse, HandleResolutionResponse, Message, RegistrationResponse,
};
use codec::param::{OperationalError, Policy, UserTransport};
use codec::{ErrorCause, PoolElement, PoolElementId, PoolHandle, TransportUse};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport as _, StreamId, TransportEvent};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const STEP: Duration = Duration::from_secs(5);

/// The scripted registrar: one pool table, subscribers by association.
struct Registrar {
    transport: SctpUdpTransport,
    pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    subscribers: Vec<(AssocId, PoolHandle)>,
}

impl Registrar {
    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            self.transport.wait(now, Some(now + Duration::from_millis(5))).unwrap();
            let mut inbox = Vec::new();
            self.transport
                .poll(Instant::now(), 64, |e| match e {
                    TransportEvent::Data { assoc, ppid, data, .. } if ppid == Ppid::ASAP => {
                        inbox.push((assoc, Message::parse(data).expect("the endpoint sends ASAP")));
                    }
                    TransportEvent::Closed { assoc } | TransportEvent::Lost { assoc } => {
                        inbox.push((
                            assoc,
                            Message::Error(codec::asap::Error {
                                error: OperationalError::single(ErrorCause::UNSPECIFIED),
                            }),
                        ));
                    }
                    _ => {}
                })
                .unwrap();
            for (assoc, message) in inbox {
                self.handle(assoc, message);
            }
        }
    }

    fn handle(&mut self, assoc: AssocId, message: Message) {
        match message {
            Message::Registration(r) => {
                let pool_handle = r.pool_handle;
                let pe_id = r.pool_element.id;
                match self.pools.iter_mut().find(|(p, _)| *p == pool_handle) {
                    Some((_, elements)) => {
                        elements.retain(|e| e.id != pe_id);
                        elements.push(r.pool_element);
                    }
                    None => self.pools.push((pool_handle, vec![r.pool_element])),
                }
                let answer =
                    RegistrationResponse { reject: false, pool_handle, pe_id, error: None };
                self.send(assoc, &Message::RegistrationResponse(answer));
                self.push(pool_handle);
            }
            Message::Deregistration(d) => {
                for (p, elements) in &mut self.pools {
                    if *p == d.pool_handle {
                        elements.retain(|e| e.id != d.pe_id);
                    }
                }
                let answer = DeregistrationResponse {
                    pool_handle: d.pool_handle,
                    pe_id: d.pe_id,
                    error: None,
                };
                self.send(assoc, &Message::DeregistrationResponse(answer));
                self.push(d.pool_handle);
                self.pools.retain(|(_, elements)| !elements.is_empty());
            }
            Message::HandleResolution(h) => {
                let elements = self.elements(&h.pool_handle);
                let subscribed = h.subscribe && elements.is_some();
                if subscribed && !self.subscribers.contains(&(assoc, h.pool_handle)) {
                    self.subscribers.push((assoc, h.pool_handle));
                }
                self.send(assoc, &answer(h.pool_handle, subscribed, elements));
            }
            // A closed association ends its subscriptions.
            Message::Error(_) => self.subscribers.retain(|(a, _)| *a != assoc),
            _ => {}
        }
    }

    fn elements(&self, pool_handle: &PoolHandle) -> Option<Vec<PoolElement>> {
        let found = self.pools.iter().find(|(p, e)| p == pool_handle && !e.is_empty());
        found.map(|(_, e)| e.clone())
    }

    /// The pool's whole list to each subscriber; a negative push ends them when it emptied.
    fn push(&mut self, pool_handle: PoolHandle) {
        let elements = self.elements(&pool_handle);
        let message = answer(pool_handle, true, elements.clone());
        let subscribers: Vec<AssocId> =
            self.subscribers.iter().filter(|(_, p)| *p == pool_handle).map(|(a, _)| *a).collect();
        for assoc in subscribers {
            self.send(assoc, &message);
        }
        if elements.is_none() {
            self.subscribers.retain(|(_, p)| *p != pool_handle);
        }
    }

    fn send(&mut self, assoc: AssocId, message: &Message) {
        let bytes = message.emit_to_vec();
        self.transport.send(Instant::now(), assoc, StreamId(0), Ppid::ASAP, &bytes).unwrap();
    }
}

fn answer(pool_handle: PoolHandle, accept: bool, elements: Option<Vec<PoolElement>>) -> Message {
    let error =
        elements.is_none().then(|| OperationalError::single(ErrorCause::UNKNOWN_POOL_HANDLE));
    Message::HandleResolutionResponse(HandleResolutionResponse {
        accept_updates: accept,
        pool_handle,
        overall_policy: None,
        pool_elements: elements.unwrap_or_default(),
        error,
    })
}

/// Starts the scripted registrar; returns its UDP port and the flag that stops it.
fn start_registrar() -> (u16, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (port_out, port_in) = std::sync::mpsc::channel();
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let bind = SocketAddr::new(LOCALHOST, 0);
        let mut transport =
            SctpUdpTransport::bind(bind, SctpUdpConfig::default(), [7; 32]).unwrap();
        transport.listen(asap::hunt::ASAP_PORT).unwrap();
        port_out.send(transport.local_addr().port()).unwrap();
        let registrar = Registrar { transport, pools: Vec::new(), subscribers: Vec::new() };
        registrar.run(&flag);
    });
    (port_in.recv().unwrap(), stop, thread)
}

fn endpoint(registrar_udp_port: u16, seed: u64) -> AsyncEndpoint {
    let mut config = EndpointConfig::default();
    config.hunt.registrars = vec![SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)];
    config.hunt.hunt_timeout_initial = asap::Duration::from_millis(500);
    config.request_timeout = asap::Duration::from_millis(1_000);
    config.request_attempts_max = 1;
    let make = move || {
        let udp = SctpUdpConfig { remote_udp_port: registrar_udp_port, ..Default::default() };
        SctpUdpTransport::bind(SocketAddr::new(LOCALHOST, 0), udp, rand::random())
    };
    AsyncEndpoint::spawn(make, config, seed).unwrap()
}

fn pe(id: u32) -> PeConfig {
    let transport = UserTransport::Tcp {
        port: 7_000 + id as u16,
        transport_use: TransportUse::DATA_ONLY,
        address: LOCALHOST,
    };
    let mut config = PeConfig::new(pool(), transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(id));
    config
}

fn pool() -> PoolHandle {
    PoolHandle::new(b"async").unwrap()
}

fn ids(elements: &[PoolElement]) -> Vec<u32> {
    let mut ids: Vec<u32> = elements.iter().map(|e| e.id.0).collect();
    ids.sort_unstable();
    ids
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {STEP:?}"))
}

async fn next_ids(subscription: &mut asap::tokio::Subscription) -> Vec<u32> {
    match bounded("push", subscription.changed()).await {
        Some(PoolUpdate::Changed { elements, updates }) => {
            assert_eq!(updates, Updates::Pushed);
            ids(&elements)
        }
        other => panic!("wanted a change, got {other:?}"),
    }
}

#[test]
fn register_resolve_subscribe_and_deregister() {
    let (port, stop, registrar) = start_registrar();
    runtime().block_on(async {
        let pes = endpoint(port, 1);
        let user = endpoint(port, 2);
        let one = bounded("register 1", pes.register(pe(1), STEP)).await.unwrap();
        let resolved = bounded("resolve", user.resolve(pool(), STEP)).await.unwrap();
        assert_eq!(ids(&resolved), [1]);

        let mut followed = bounded("subscribe", user.subscribe(pool(), STEP)).await.unwrap();
        assert_eq!((ids(&followed.elements), followed.updates), (vec![1], Updates::Pushed));
        let two = bounded("register 2", pes.register(pe(2), STEP)).await.unwrap();
        assert_eq!(next_ids(&mut followed).await, [1, 2]);
        bounded("deregister 1", pes.deregister(one, STEP)).await.unwrap();
        assert_eq!(next_ids(&mut followed).await, [2]);
        bounded("deregister 2", pes.deregister(two, STEP)).await.unwrap();
        assert_eq!(bounded("gone", followed.changed()).await, Some(PoolUpdate::Gone));

        let unknown = bounded("resolve gone pool", user.resolve(pool(), STEP)).await;
        assert!(
            matches!(unknown, Err(BlockingError::UnknownPool(p)) if p == pool()),
            "{unknown:?}"
        );
        let refused = bounded("subscribe gone pool", user.subscribe(pool(), STEP)).await;
        assert!(matches!(refused, Err(BlockingError::UnknownPool(_))), "{:?}", refused.err());
        pes.close().await;
        user.close().await;
    });
    stop.store(true, Ordering::Relaxed);
    registrar.join().unwrap();
}

#[test]
fn no_registrar_is_a_typed_error() {
    // A UDP port of our own that never answers stands where the registrar would be.
    let silent = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    runtime().block_on(async {
        let user = endpoint(port, 3);
        let got = bounded("resolve", user.resolve(pool(), Duration::from_millis(700))).await;
        match got {
            Err(BlockingError::NoRegistrar { tried }) => {
                assert_eq!(tried, [SocketAddr::new(LOCALHOST, asap::hunt::ASAP_PORT)]);
            }
            other => panic!("wanted NoRegistrar, got {other:?}"),
        }
        user.close().await;
    });
}
