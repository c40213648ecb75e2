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
//! scaling efficiency `rate(N) / (N × rate(1))`, twice: with pools chosen uniformly (the
//! figure), and, as a control, with each core resolving only pools it owns (no cross-core
//! traffic at all), which separates the cost of forwarding from everything else.

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
    for (choice, replicas, what) in [
        (Choice::Uniform, true, "pools chosen uniformly, answered from read replicas (default)"),
        (Choice::Uniform, false, "pools chosen uniformly, no replicas: (N-1)/N of requests cross"),
        (Choice::Local, false, "control: each core resolves only its own pools, nothing crosses"),
    ] {
        println!("{what}");
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cores_max];
        for _ in 0..repeats {
            for cores in 1..=cores_max {
                let measure = Duration::from_secs(seconds);
                let rate = run(cores, choice, replicas, measure).expect("run");
                println!(
                    "  {cores} core(s): {rate:>12.0} resolutions/s  (cache line core 0 <-> 1 \
                     round trip {:.0} ns)",
                    cache_line_round_trip_ns()
                );
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
            println!(
                "{n:>5}  {rate:>23.0}  {:>8.2}  {:>10.2}",
                rate / one,
                rate / (n as f64 * one)
            );
        }
    }
}

/// The round trip of one cache line between cores 0 and 1 (two pinned threads bouncing an
/// atomic), a noise control: on this VM it moved between ~45 ns and ~380 ns within a session
/// as the hypervisor placed the two vCPUs, and cross-core forwarding slowed with it.
fn cache_line_round_trip_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const ROUNDS: u64 = 200_000;
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.len() < 2 {
        return f64::NAN;
    }
    let line = std::sync::Arc::new(AtomicU64::new(0));
    let (other, far) = (line.clone(), ids[1]);
    let echo = std::thread::spawn(move || {
        core_affinity::set_for_current(far);
        for i in 0..ROUNDS {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let near = std::thread::spawn(move || {
        core_affinity::set_for_current(ids[0]);
        let start = Instant::now();
        for i in 0..ROUNDS {
            line.store(2 * i + 1, Ordering::Release);
            while line.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
        start.elapsed()
    });
    let elapsed = near.join().expect("no panic");
    echo.join().expect("no panic");
    elapsed.as_nanos() as f64 / ROUNDS as f64
}

/// Which pools the synthetic PUs resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    /// Any pool, uniformly.
    Uniform,
    /// Only pools on the resolving core's shard.
    Local,
}

/// One measured run with `cores` workers, with or without read replicas; returns resolutions per second.
fn run(cores: usize, choice: Choice, replicas: bool, measure: Duration) -> io::Result<f64> {
    let defaults = Config::default();
    let config = Config {
        workers: cores,
        replicas,
        announce: Announce { enabled: false, ..defaults.announce.clone() },
        // No keep-alives during the run: the synthetic PEs do not answer them.
        timers: Timers { keep_alive_interval_ms: 3_600_000, ..defaults.timers.clone() },
        ..defaults
    };
    let running = registrar::core::start(&config, move |core| {
        Synthetic::new(core as u32, cores as u32, choice)
    })?;
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
    /// The pools this core's PUs resolve.
    targets: Vec<u32>,
    /// Receives nothing: its io_uring wait and eventfd doorbell are how an idle core sleeps.
    idle: UdpRing,
    rng: u64,
}

impl Synthetic {
    fn new(core: u32, cores: u32, choice: Choice) -> io::Result<Self> {
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
            targets: (0..POOLS)
                .filter(|&p| {
                    let shards = u16::try_from(cores).expect("few cores");
                    let own = handlespace::shard::shard_of(&pool(p), shards) == core as u16;
                    choice == Choice::Uniform || own
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
        self.targets[(self.rng % self.targets.len() as u64) as usize]
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
