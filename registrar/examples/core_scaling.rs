//! How the registrar's own work scales from 1 to N cores, with the kernel's network stack and
//! the load generator taken out of the measurement.
//!
//! On a host with few cores, a load run cannot show scaling: the load generator and the
//! kernel's packet work share the cores the registrar would scale onto (BENCHMARKS.md). This
//! runs the real per-core loops (`registrar::core::start`: workers pinned one per core,
//! `Server`, handlespace shards, the cross-core queues) over a synthetic in-memory transport on
//! each core: its associations register PEs, then keep `WINDOW` Handle Resolutions in flight
//! each, for pools chosen uniformly, so that with N cores (N-1)/N of all requests are forwarded
//! to the pool's core and answered back. Throughput is the registrar's own resolution counter.
//! A core with nothing to do sleeps as the real one does: in an io_uring wait (of an idle UDP
//! ring) that another core's doorbell ends.
//!
//! `cargo run --release -p registrar --example core_scaling -- [SECONDS] [REPEATS] [MAX_CORES]`
//! prints resolutions/s per core count (runs alternate 1, 2, ..., median of REPEATS) and the
//! scaling efficiency `rate(N) / (N × rate(1))`.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use codec::asap::{HandleResolution, Message, MessageType, Registration};
use codec::param::{AddressList, SctpTransport as SctpParam};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use registrar::config::{Announce, Config, Timers};
use transport::{
    AssocId, Doorbell, Ppid, SctpTransport, StreamId, TransportError, TransportEvent, UdpRing,
    UdpRingConfig,
};

// As the registrar binary: per-thread heaps, cheap frees of another core's allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pools in the handlespace (spread over the cores by handle hash).
const POOLS: u32 = 64;
/// PEs per pool.
const PES_PER_POOL: u32 = 8;
/// Synthetic associations (PUs and PEs) per core.
const ASSOCIATIONS_PER_CORE: u32 = 16;
/// Resolutions in flight per association.
const WINDOW: u32 = 8;
/// Warm-up before each measurement (registration, caches, queues).
const WARM_UP: Duration = Duration::from_millis(1_000);

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("numeric argument"));
    let seconds = args.next().unwrap_or(3);
    let repeats = args.next().unwrap_or(3) as usize;
    let cores_max = args.next().unwrap_or(2).max(1) as usize;
    let host = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "core_scaling: {POOLS} pools x {PES_PER_POOL} PEs, {ASSOCIATIONS_PER_CORE} associations \
         per core x window {WINDOW}, {seconds} s per run, {repeats} repeats, host cores {host}"
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cores_max];
    for _ in 0..repeats {
        for cores in 1..=cores_max {
            let rate = run(cores, Duration::from_secs(seconds)).expect("run");
            println!("  {cores} core(s): {rate:>12.0} resolutions/s");
            rates[cores - 1].push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let one = median(&mut rates[0]);
    println!("cores  resolutions/s (median)  speed-up  efficiency");
    for (i, r) in rates.iter_mut().enumerate() {
        let (n, rate) = (i + 1, median(r));
        println!("{n:>5}  {rate:>23.0}  {:>8.2}  {:>10.2}", rate / one, rate / (n as f64 * one));
    }
}

/// One measured run with `cores` workers; returns resolutions per second.
fn run(cores: usize, measure: Duration) -> io::Result<f64> {
    let defaults = Config::default();
    let config = Config {
        workers: cores,
        announce: Announce { enabled: false, ..defaults.announce.clone() },
        // No keep-alives during the run: the synthetic PEs do not answer them.
        timers: Timers { keep_alive_interval_ms: 3_600_000, ..defaults.timers.clone() },
        ..defaults
    };
    let running =
        registrar::core::start(&config, move |core| Synthetic::new(core as u32, cores as u32))?;
    std::thread::sleep(WARM_UP);
    let (t0, r0) = (Instant::now(), running.stats().resolutions);
    std::thread::sleep(measure);
    let (t1, r1) = (Instant::now(), running.stats().resolutions);
    let stats = running.stop()?;
    let expected = u64::from(POOLS * PES_PER_POOL);
    assert_eq!(stats.registrations, expected, "every PE registered: {stats:?}");
    assert_eq!(stats.decode_errors + stats.dropped, 0, "no errors: {stats:?}");
    Ok((r1 - r0) as f64 / (t1 - t0).as_secs_f64())
}

/// One core's synthetic peers: `ASSOCIATIONS_PER_CORE` associations that come up at once,
/// register this core's share of the PEs, then keep `WINDOW` resolutions in flight each.
struct Synthetic {
    core: u32,
    up_sent: bool,
    /// Requests to deliver at the next `poll`: (association, message bytes).
    ready: VecDeque<(u32, Vec<u8>)>,
    /// Emptied message buffers, reused.
    spare: Vec<Vec<u8>>,
    /// Registration responses still to come (the windows open when they are in).
    registrations_pending: u32,
    /// One encoded Handle Resolution per pool, made once: the load costs a copy per request.
    requests: Vec<Vec<u8>>,
    /// Receives nothing: its io_uring wait and eventfd doorbell are how an idle core sleeps.
    idle: UdpRing,
    rng: u64,
}

impl Synthetic {
    fn new(core: u32, cores: u32) -> io::Result<Self> {
        let idle =
            UdpRing::bind("127.0.0.1:0".parse().expect("address"), UdpRingConfig::default())?;
        let mut this = Self {
            core,
            up_sent: false,
            ready: VecDeque::new(),
            spare: Vec::new(),
            registrations_pending: 0,
            requests: (0..POOLS)
                .map(|p| {
                    let request = HandleResolution {
                        subscribe: false,
                        pool_handle: pool(p),
                        items_wanted: Some(3),
                    };
                    Message::HandleResolution(request).emit_to_vec()
                })
                .collect(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ u64::from(core),
            idle,
        };
        // PE e is registered by core e % cores, over its associations in turn.
        for e in (core..POOLS * PES_PER_POOL).step_by(cores as usize) {
            let assoc = (e / cores) % ASSOCIATIONS_PER_CORE;
            let message = Message::Registration(Registration {
                pool_handle: pool(e % POOLS),
                pool_element: element(e + 1),
            });
            this.ready.push_back((assoc, message.emit_to_vec()));
            this.registrations_pending += 1;
        }
        Ok(this)
    }

    fn next_pool(&mut self) -> u32 {
        // xorshift64: cheap and deterministic.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % u64::from(POOLS)) as u32
    }

    fn queue_resolution(&mut self, assoc: u32) {
        let pool = self.next_pool() as usize;
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(&self.requests[pool]);
        self.ready.push_back((assoc, bytes));
    }
}

fn pool(i: u32) -> PoolHandle {
    PoolHandle::new(format!("pool-{i}").as_bytes()).expect("short handle")
}

fn element(id: u32) -> PoolElement {
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(0),
        registration_life_ms: 3_600_000,
        user_transport: UserTransport::Sctp(SctpParam {
            port: 10_000 + (id % 50_000) as u16,
            transport_use: TransportUse::DATA_ONLY,
            addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))])
                .expect("one address"),
        }),
        policy: Policy::RoundRobin,
        asap_transport: None,
    }
}

impl SctpTransport for Synthetic {
    fn listen(&mut self, _port: u16) -> Result<(), TransportError> {
        Ok(())
    }

    fn connect(&mut self, _now: Instant, _remote: SocketAddr) -> Result<AssocId, TransportError> {
        Err(TransportError::Full)
    }

    fn send(
        &mut self,
        _now: Instant,
        assoc: AssocId,
        _stream: StreamId,
        _ppid: Ppid,
        data: &[u8],
    ) -> Result<(), TransportError> {
        match data.first().map(|&t| MessageType(t)) {
            Some(MessageType::REGISTRATION_RESPONSE) => {
                self.registrations_pending -= 1;
                if self.registrations_pending == 0 {
                    // This core's PEs are in: open every association's window.
                    for a in 0..ASSOCIATIONS_PER_CORE {
                        (0..WINDOW).for_each(|_| self.queue_resolution(a));
                    }
                }
            }
            Some(MessageType::HANDLE_RESOLUTION_RESPONSE) => self.queue_resolution(assoc.0),
            other => panic!("core {}: unexpected message {other:?}", self.core),
        }
        Ok(())
    }

    fn shutdown(&mut self, _now: Instant, _assoc: AssocId) -> Result<(), TransportError> {
        Ok(())
    }

    fn abort(&mut self, _now: Instant, _assoc: AssocId) -> Result<(), TransportError> {
        Ok(())
    }

    fn peer_addresses(
        &mut self,
        _assoc: AssocId,
        _out: &mut [SocketAddr],
    ) -> Result<usize, TransportError> {
        Ok(0)
    }

    fn poll(
        &mut self,
        _now: Instant,
        budget: usize,
        mut on_event: impl FnMut(TransportEvent<'_>),
    ) -> io::Result<usize> {
        let mut delivered = 0;
        if !self.up_sent {
            self.up_sent = true;
            let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9899);
            for a in 0..ASSOCIATIONS_PER_CORE {
                on_event(TransportEvent::Up { assoc: AssocId(a), peer });
                delivered += 1;
            }
        }
        while delivered < budget {
            let Some((assoc, bytes)) = self.ready.pop_front() else { break };
            on_event(TransportEvent::Data {
                assoc: AssocId(assoc),
                stream: StreamId(0),
                ppid: Ppid::ASAP,
                data: &bytes,
            });
            self.spare.push(bytes);
            delivered += 1;
        }
        Ok(delivered)
    }

    fn wait(&mut self, now: Instant, until: Option<Instant>) -> io::Result<()> {
        let wait = match until {
            _ if !self.ready.is_empty() => Some(Duration::ZERO),
            Some(until) => Some(until.saturating_duration_since(now)),
            None => None,
        };
        self.idle.submit_and_wait(wait)
    }

    fn doorbell(&mut self) -> io::Result<Option<Doorbell>> {
        self.idle.doorbell().map(Some)
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}
