//! A stand-in registrar over loadgen's UDP framing: one thread, pools in a hash map, keep-alives
//! to registered PEs. It is **not** ASAP and proves nothing about the registrar; it exists so
//! that the PE/PU workload (registration, churn, keep-alives, resolution of populated and empty
//! pools) runs end to end before the real registrar is wired in, and so that `quickstart` works
//! today.
//!
//! Semantics, after RFC 5352 §3: a registration adds or refreshes a PE (a full table answers
//! Lack of Resources, 0x6); a deregistration removes it; a resolution of a pool with no PE
//! answers Unknown Pool Handle (0x9); every [`KEEP_ALIVE_INTERVAL`] each registered PE gets a
//! keep-alive, and its answer is not checked.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Launcher, RunningTarget, Target};
use crate::op::OpKind;
use crate::scenario::Scenario;
use crate::target::udp::{reuse_port_socket, UdpTarget};
use crate::wire::{Header, DATAGRAM_MAX, HEADER_LEN, REQUEST, RESPONSE};

/// Starts the model registrar.
pub struct ModelLauncher;

impl Launcher for ModelLauncher {
    fn launch(&self, scenario: &Scenario) -> anyhow::Result<Box<dyn RunningTarget>> {
        // Room for every PE the scenario has, twice over, so a correct run never sees 0x6.
        let elements_max = (scenario.pe.count as usize).saturating_mul(2).max(1_024);
        Ok(Box::new(ModelServer::start(elements_max)?))
    }
}

/// The running model registrar.
pub struct ModelServer {
    address: SocketAddr,
    target: UdpTarget,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Binds 127.0.0.1 on an ephemeral port and starts the thread.
    pub fn start(elements_max: usize) -> anyhow::Result<ModelServer> {
        let socket = reuse_port_socket("127.0.0.1:0".parse()?)?;
        let address = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("model-registrar".to_owned())
                .spawn(move || Model::new(elements_max).serve(&socket, &stop))?
        };
        Ok(ModelServer {
            address,
            target: UdpTarget::new("model", address),
            stop,
            thread: Some(thread),
        })
    }
}

impl RunningTarget for ModelServer {
    fn address(&self) -> SocketAddr {
        self.address
    }
    fn target(&self) -> &dyn Target {
        &self.target
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Model {
    /// PE identifier → (pool, where its keep-alives go).
    elements: HashMap<u32, (u32, SocketAddr)>,
    /// Pool → PEs registered in it.
    pools: HashMap<u32, u32>,
    elements_max: usize,
}

impl Model {
    fn new(elements_max: usize) -> Model {
        Model {
            elements: HashMap::with_capacity(elements_max),
            pools: HashMap::new(),
            elements_max,
        }
    }

    fn serve(mut self, socket: &UdpSocket, stop: &AtomicBool) {
        let mut buffer = [0u8; DATAGRAM_MAX];
        let mut keep_alive_at = Instant::now() + KEEP_ALIVE_INTERVAL;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= keep_alive_at {
                keep_alive_at += KEEP_ALIVE_INTERVAL;
                self.send_keep_alives(socket);
            }
            let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let Ok(header) = Header::parse(&buffer[..len]) else {
                continue;
            };
            if header.flags != REQUEST {
                continue; // A keep-alive ACK.
            }
            let status = self.handle(&header, peer);
            Header { flags: RESPONSE, status, ..header }.emit(&mut buffer[..len]);
            let _ = socket.send_to(&buffer[..len], peer);
        }
    }

    /// Applies one request; returns the status to answer with.
    fn handle(&mut self, header: &Header, peer: SocketAddr) -> u16 {
        match header.kind {
            OpKind::Register => {
                let full = self.elements.len() >= self.elements_max;
                match self.elements.get_mut(&header.element) {
                    Some(entry) => {
                        if entry.0 != header.pool {
                            return INVALID_VALUES; // A PE id moving pools: refuse, as ASAP would.
                        }
                        entry.1 = peer;
                    }
                    None if full => return LACK_OF_RESOURCES,
                    None => {
                        self.elements.insert(header.element, (header.pool, peer));
                        *self.pools.entry(header.pool).or_insert(0) += 1;
                    }
                }
                0
            }
            OpKind::Deregister => {
                if let Some((pool, _)) = self.elements.remove(&header.element) {
                    // Registering a PE counts it in its pool; the count is removed at zero.
                    let count = self.pools.get_mut(&pool).expect("a registered PE's pool exists");
                    *count -= 1;
                    if *count == 0 {
                        self.pools.remove(&pool);
                    }
                }
                0
            }
            OpKind::Resolve => {
                if self.pools.contains_key(&header.pool) {
                    0
                } else {
                    UNKNOWN_POOL_HANDLE
                }
            }
            OpKind::KeepAlive => 0,
        }
    }

    fn send_keep_alives(&self, socket: &UdpSocket) {
        let mut buffer = [0u8; HEADER_LEN];
        for (&element, &(pool, peer)) in &self.elements {
            let header = Header {
                token: 0,
                kind: OpKind::KeepAlive,
                flags: REQUEST,
                status: 0,
                pool,
                element,
            };
            header.emit(&mut buffer);
            let _ = socket.send_to(&buffer, peer);
        }
    }
}

/// How often the model sends each registered PE a keep-alive. RFC 5352 leaves the period to
/// the registrar; one second makes them visible in a 10 s run.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
const INVALID_VALUES: u16 = 0x0003;
const LACK_OF_RESOURCES: u16 = 0x0006;
const UNKNOWN_POOL_HANDLE: u16 = 0x0009;
