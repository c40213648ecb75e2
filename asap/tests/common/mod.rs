//! A scripted registrar for the integration tests: codec messages on our SCTP-in-UDP
//! transport, in a thread. It answers Registration, Deregistration and Handle Resolution
//! (all PEs, in registration order), accepts the S flag and pushes the whole pool after each
//! change (a negative push when the pool empties), and records every Endpoint Unreachable.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codec::asap::{
    DeregistrationResponse, EndpointUnreachable, HandleResolutionResponse, Message,
    RegistrationResponse,
};
use codec::param::OperationalError;
use codec::{ErrorCause, PoolElement, PoolHandle};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, Ppid, SctpTransport as _, StreamId, TransportEvent};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A running scripted registrar.
pub struct Scripted {
    /// The UDP port its SCTP listens on (ASAP port 3863 inside).
    pub udp_port: u16,
    /// Every Endpoint Unreachable it received, in order.
    pub unreachable: Arc<Mutex<Vec<EndpointUnreachable>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a scripted registrar on 127.0.0.1, a free UDP port.
pub fn start() -> Scripted {
    start_with(true)
}

/// Starts one that accepts subscriptions (`subscriptions`) or, as RSPLIB's, never sets the A
/// flag and never pushes.
pub fn start_with(subscriptions: bool) -> Scripted {
    let stop = Arc::new(AtomicBool::new(false));
    let unreachable = Arc::new(Mutex::new(Vec::new()));
    let (port_out, port_in) = std::sync::mpsc::channel();
    let (flag, reports) = (Arc::clone(&stop), Arc::clone(&unreachable));
    let thread = std::thread::spawn(move || {
        let bind = SocketAddr::new(LOCALHOST, 0);
        let mut transport =
            SctpUdpTransport::bind(bind, SctpUdpConfig::default(), [7; 32]).unwrap();
        transport.listen(asap::hunt::ASAP_PORT).unwrap();
        port_out.send(transport.local_addr().port()).unwrap();
        let registrar = Registrar {
            transport,
            pools: Vec::new(),
            subscribers: Vec::new(),
            reports,
            subscriptions,
        };
        registrar.run(&flag);
    });
    let udp_port = port_in.recv().unwrap();
    Scripted { udp_port, unreachable, stop, thread: Some(thread) }
}

/// A client transport on 127.0.0.1 that reaches the scripted registrar.
pub fn client_transport(registrar_udp_port: u16) -> std::io::Result<SctpUdpTransport> {
    let udp = SctpUdpConfig { remote_udp_port: registrar_udp_port, ..Default::default() };
    SctpUdpTransport::bind(SocketAddr::new(LOCALHOST, 0), udp, rand::random())
}

/// The scripted registrar: one pool table, subscribers by association.
struct Registrar {
    transport: SctpUdpTransport,
    pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    subscribers: Vec<(AssocId, PoolHandle)>,
    reports: Arc<Mutex<Vec<EndpointUnreachable>>>,
    subscriptions: bool,
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
                let subscribed = self.subscriptions && h.subscribe && elements.is_some();
                if subscribed && !self.subscribers.contains(&(assoc, h.pool_handle)) {
                    self.subscribers.push((assoc, h.pool_handle));
                }
                self.send(assoc, &answer(h.pool_handle, subscribed, elements));
            }
            Message::EndpointUnreachable(u) => self.reports.lock().unwrap().push(u),
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
