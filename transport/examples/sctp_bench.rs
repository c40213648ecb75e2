//! sctp_bench: issue 5's benchmark. Request/response pairs per second over our userspace SCTP
//! (`SctpUdpTransport` on io_uring UDP, loopback) with 1 and 100 associations and windows 1 and
//! 32, each as a ratio to the raw UDP request/response ceiling measured by this tool in the same
//! run, plus allocations per pair and server CPU time per pair.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/main/target cargo run --release -p transport --example sctp_bench \
//!     [SECS=3] [REPEATS=3] [WARM_MS=500]
//! ```
//!
//! Method (STYLE.md §8):
//! - two threads, server pinned to core 0 and client to core 1 (`core_affinity`); the main
//!   thread only sets the phase (set-up, warm-up, measure, stop) and sleeps;
//! - window W = requests in flight per association (or per raw flow): the client sends W per
//!   association at the start of the warm-up, and one new request per reply;
//! - SCTP: one client `SctpUdpTransport` with N associations to the server's SCTP port 5000
//!   (the 2nd and later get ephemeral local SCTP ports), so every association shares one UDP
//!   socket pair, as in production. Messages: 64-byte payload, PPID 11 (ASAP), stream 0; the
//!   server echoes 64 bytes on the same association;
//! - raw UDP: the same `UdpRing` endpoints (same config) and the same loop shape, N flows over
//!   one client socket and one server socket, each flow named by a 4-byte id in the 64-byte
//!   datagram: the closest equivalent of N associations multiplexed on one UDP socket pair;
//! - each run uses fresh endpoints, WARM_MS of warm-up, then SECS measured; raw and SCTP runs
//!   alternate, REPEATS times; the table gives medians (ratio: median of the per-repeat ratios);
//! - allocations: a counting global allocator, per thread, client plus server, over the
//!   measured interval only, divided by pairs;
//! - server CPU: `getrusage(RUSAGE_THREAD)` user + system of the server thread over its
//!   measured interval, divided by the pairs it answered in that interval.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{AssocId, DatagramEndpoint, SendError, UdpRing, UdpRingConfig};
use transport::{Ppid, SctpTransport, StreamId, TransportError, TransportEvent};

// ---- counting allocator ------------------------------------------------------------------

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Backtraces still to print for allocations in the measured interval (see `TRACE_ENV`).
    static TRACE_LEFT: Cell<u32> = const { Cell::new(0) };
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

/// `SCTP_BENCH_TRACE_ALLOCS=N` prints the backtraces of the first N allocations each thread
/// makes in its measured interval (slow; for finding them, not for measuring).
const TRACE_ENV: &str = "SCTP_BENCH_TRACE_ALLOCS";

fn trace_allocation() {
    let left = TRACE_LEFT.try_with(Cell::get).unwrap_or(0);
    if left == 0 || IN_TRACE.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    IN_TRACE.with(|c| c.set(true));
    TRACE_LEFT.with(|c| c.set(left - 1));
    let bt = std::backtrace::Backtrace::force_capture();
    eprintln!("allocation in measured interval, thread {:?}:\n{bt}", thread::current().name());
    IN_TRACE.with(|c| c.set(false));
}

// SAFETY: forwards to the system allocator; only counts (realloc and alloc_zeroed use the
// default methods, which call `alloc`, so they count too).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        trace_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// User plus system CPU time of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage struct, which we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a zeroed rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD)");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---- phases ------------------------------------------------------------------------------

const SETUP: u8 = 0;
const WARM: u8 = 1;
const MEASURE: u8 = 2;
const STOP: u8 = 3;

const MESSAGE_LEN: usize = 64;
const SCTP_PORT: u16 = 5000;
const POLL_BUDGET: usize = 256;
/// Bounded sleep in every wait, so each thread sees phase changes within 1 ms.
const WAIT: Duration = Duration::from_millis(1);
/// Any phase taking longer than this means something is stuck: the bench fails instead.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One request or reply per UDP datagram.
    Raw,
    /// Raw UDP with the bundling SCTP does within one association: consecutive requests
    /// (replies) of one flow produced in one loop iteration are packed, 64 bytes each, into
    /// datagrams of at most `BUNDLE_MAX` records (1152 bytes, under the SCTP MTU of 1200).
    /// Never across flows, as SCTP never bundles chunks of two associations in one packet.
    RawBundled,
    Sctp,
}

const BUNDLE_MAX: usize = 18;

#[derive(Clone, Copy)]
struct Case {
    assocs: u32,
    window: u32,
}

/// What one side counted between its own MEASURE and STOP observations.
#[derive(Default, Clone, Copy)]
struct Interval {
    pairs: u64,
    elapsed: Duration,
    cpu: Duration,
    allocs: u64,
    datagrams_in: u64,
}

/// Tracks the phase from inside a loop and snapshots counters at MEASURE and STOP.
struct Meter {
    start: Option<(u64, Instant, Duration, u64, u64)>,
    result: Option<Interval>,
}

impl Meter {
    fn new() -> Self {
        Self { start: None, result: None }
    }
    /// Returns false once the run is over.
    fn step(&mut self, phase: u8, pairs: u64, datagrams_in: u64) -> bool {
        match phase {
            MEASURE if self.start.is_none() => {
                let trace = std::env::var(TRACE_ENV).ok().and_then(|v| v.parse().ok());
                self.start =
                    Some((pairs, Instant::now(), thread_cpu(), allocations(), datagrams_in));
                TRACE_LEFT.with(|c| c.set(trace.unwrap_or(0)));
            }
            STOP => {
                TRACE_LEFT.with(|c| c.set(0));
                let (p0, t0, c0, a0, d0) = self.start.expect("STOP seen before MEASURE");
                self.result = Some(Interval {
                    pairs: pairs - p0,
                    elapsed: t0.elapsed(),
                    cpu: thread_cpu() - c0,
                    allocs: allocations() - a0,
                    datagrams_in: datagrams_in - d0,
                });
                return false;
            }
            _ => {}
        }
        true
    }
}

fn ring_config() -> UdpRingConfig {
    // 100 associations × window 32 = 3200 requests may be queued at the start of a run.
    UdpRingConfig { send_buffers_count: 4096, ..UdpRingConfig::default() }
}

fn sctp_config() -> SctpUdpConfig {
    SctpUdpConfig { udp: ring_config(), ..SctpUdpConfig::default() }
}

fn pin(core: usize) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let ok = ids.get(core).is_some_and(|&id| core_affinity::set_for_current(id));
    if !ok {
        eprintln!("warning: could not pin to core {core}");
    }
}

// ---- raw UDP -----------------------------------------------------------------------------

fn raw_server(phase: &AtomicU8, port_tx: mpsc::Sender<SocketAddr>) -> Interval {
    pin(0);
    let mut ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), ring_config()).unwrap();
    port_tx.send(ring.local_addr()).unwrap();
    let mut replies = [(SocketAddr::from(([0, 0, 0, 0], 0)), [0u8; 4]); POLL_BUDGET];
    let mut answered = 0u64;
    let mut meter = Meter::new();
    let mut reply = [0xa5u8; MESSAGE_LEN];
    while meter.step(phase.load(Ordering::Relaxed), answered, ring.stats().datagrams_received) {
        ring.submit_and_wait(Some(WAIT)).unwrap();
        let mut n = 0;
        ring.recv_batch(POLL_BUDGET, |from, bytes| {
            replies[n] = (from, bytes[..4].try_into().unwrap());
            n += 1;
        });
        for (from, flow) in &replies[..n] {
            reply[..4].copy_from_slice(flow);
            send_retrying(&mut ring, *from, &reply);
        }
        answered += n as u64;
    }
    meter.result.unwrap()
}

fn send_retrying(ring: &mut UdpRing, to: SocketAddr, data: &[u8]) {
    for _ in 0..1000 {
        match ring.send_to(to, data) {
            Ok(()) => return,
            Err(SendError::QueueFull) => ring.submit_and_wait(Some(Duration::ZERO)).unwrap(),
            Err(e) => panic!("send_to: {e}"),
        }
    }
    panic!("send buffers stayed full");
}

fn raw_client(phase: &AtomicU8, server: SocketAddr, case: Case) -> Interval {
    pin(1);
    let mut ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), ring_config()).unwrap();
    let mut flows = [0u32; POLL_BUDGET];
    let mut request = [0x5au8; MESSAGE_LEN];
    let mut answered = 0u64;
    let mut meter = Meter::new();
    while phase.load(Ordering::Relaxed) == SETUP {
        thread::sleep(Duration::from_micros(100));
    }
    for flow in 0..case.assocs {
        request[..4].copy_from_slice(&flow.to_be_bytes());
        for _ in 0..case.window {
            send_retrying(&mut ring, server, &request);
        }
    }
    loop {
        let p = phase.load(Ordering::Relaxed);
        if !meter.step(p, answered, ring.stats().datagrams_received) {
            break;
        }
        ring.submit_and_wait(Some(WAIT)).unwrap();
        let mut n = 0;
        ring.recv_batch(POLL_BUDGET, |_, bytes| {
            flows[n] = u32::from_be_bytes(bytes[..4].try_into().unwrap());
            n += 1;
        });
        answered += n as u64;
        for flow in &flows[..n] {
            request[..4].copy_from_slice(&flow.to_be_bytes());
            send_retrying(&mut ring, server, &request);
        }
    }
    meter.result.unwrap()
}

/// Packs 64-byte records for one destination into one datagram.
struct Packer {
    buf: [u8; MESSAGE_LEN * BUNDLE_MAX],
    records: usize,
    to: SocketAddr,
}

impl Packer {
    fn new() -> Self {
        Self { buf: [0; MESSAGE_LEN * BUNDLE_MAX], records: 0, to: ([0, 0, 0, 0], 0).into() }
    }
    fn push(&mut self, ring: &mut UdpRing, to: SocketAddr, flow: [u8; 4], fill: u8) {
        let other_flow = self.buf[..4] != flow;
        if self.records > 0 && (self.records == BUNDLE_MAX || self.to != to || other_flow) {
            self.flush(ring);
        }
        self.to = to;
        let rec = &mut self.buf[self.records * MESSAGE_LEN..(self.records + 1) * MESSAGE_LEN];
        rec[..4].copy_from_slice(&flow);
        rec[4..].fill(fill);
        self.records += 1;
    }
    fn flush(&mut self, ring: &mut UdpRing) {
        if self.records > 0 {
            let len = self.records * MESSAGE_LEN;
            send_retrying(ring, self.to, &self.buf[..len]);
            self.records = 0;
        }
    }
}

fn bundled_server(phase: &AtomicU8, port_tx: mpsc::Sender<SocketAddr>) -> Interval {
    pin(0);
    let mut ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), ring_config()).unwrap();
    port_tx.send(ring.local_addr()).unwrap();
    // Records of one receive batch: at most POLL_BUDGET datagrams of BUNDLE_MAX records.
    let mut got = [(SocketAddr::from(([0, 0, 0, 0], 0)), [0u8; 4]); POLL_BUDGET * BUNDLE_MAX];
    let mut packer = Packer::new();
    let mut answered = 0u64;
    let mut meter = Meter::new();
    while meter.step(phase.load(Ordering::Relaxed), answered, ring.stats().datagrams_received) {
        ring.submit_and_wait(Some(WAIT)).unwrap();
        let mut n = 0;
        ring.recv_batch(POLL_BUDGET, |from, bytes| {
            for rec in bytes.chunks_exact(MESSAGE_LEN) {
                got[n] = (from, rec[..4].try_into().unwrap());
                n += 1;
            }
        });
        for (from, flow) in &got[..n] {
            packer.push(&mut ring, *from, *flow, 0xa5);
        }
        packer.flush(&mut ring);
        answered += n as u64;
    }
    meter.result.unwrap()
}

fn bundled_client(phase: &AtomicU8, server: SocketAddr, case: Case) -> Interval {
    pin(1);
    let mut ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), ring_config()).unwrap();
    let mut flows = [[0u8; 4]; POLL_BUDGET * BUNDLE_MAX];
    let mut packer = Packer::new();
    let mut answered = 0u64;
    let mut meter = Meter::new();
    while phase.load(Ordering::Relaxed) == SETUP {
        thread::sleep(Duration::from_micros(100));
    }
    for flow in 0..case.assocs {
        for _ in 0..case.window {
            packer.push(&mut ring, server, flow.to_be_bytes(), 0x5a);
        }
    }
    packer.flush(&mut ring);
    loop {
        let p = phase.load(Ordering::Relaxed);
        if !meter.step(p, answered, ring.stats().datagrams_received) {
            break;
        }
        ring.submit_and_wait(Some(WAIT)).unwrap();
        let mut n = 0;
        ring.recv_batch(POLL_BUDGET, |_, bytes| {
            for rec in bytes.chunks_exact(MESSAGE_LEN) {
                flows[n] = rec[..4].try_into().unwrap();
                n += 1;
            }
        });
        answered += n as u64;
        for flow in &flows[..n] {
            packer.push(&mut ring, server, *flow, 0x5a);
        }
        packer.flush(&mut ring);
    }
    meter.result.unwrap()
}

/// `SCTP_BENCH_PACKETS=1`: count received SCTP packets by content (diagnostic; off in
/// measured runs, where it costs one predictable branch per datagram).
const PACKETS_ENV: &str = "SCTP_BENCH_PACKETS";

/// Received SCTP packets by content, for the diagnostic.
#[derive(Default, Clone, Copy)]
struct PacketCounts {
    with_data: u64,
    without_data: u64,
    data_chunks: u64,
}

/// A `UdpRing` that can look into received SCTP packets (chunk types only).
struct Inspect {
    ring: UdpRing,
    on: bool,
    counts: PacketCounts,
}

impl Inspect {
    fn bind(cfg: UdpRingConfig) -> Self {
        let ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
        let on = std::env::var(PACKETS_ENV).is_ok_and(|v| v == "1");
        Self { ring, on, counts: PacketCounts::default() }
    }
}

fn count_chunks(counts: &mut PacketCounts, packet: &[u8]) {
    let (mut at, mut data) = (12, 0);
    while at + 4 <= packet.len() {
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        data += u64::from(packet[at] == 0);
        at += len.max(4).next_multiple_of(4);
    }
    counts.data_chunks += data;
    if data > 0 {
        counts.with_data += 1;
    } else {
        counts.without_data += 1;
    }
}

impl DatagramEndpoint for Inspect {
    fn local_addr(&self) -> SocketAddr {
        self.ring.local_addr()
    }
    fn send_to(&mut self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        self.ring.send_to(to, data)
    }
    fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> Result<bool, SendError> {
        DatagramEndpoint::send_in_place(&mut self.ring, fill)
    }
    fn submit_and_wait(&mut self, wait: Option<Duration>) -> std::io::Result<()> {
        self.ring.submit_and_wait(wait)
    }
    fn recv_batch(&mut self, budget: usize, mut f: impl FnMut(SocketAddr, &[u8])) -> usize {
        let (on, counts) = (self.on, &mut self.counts);
        self.ring.recv_batch(budget, |from, bytes| {
            if on {
                count_chunks(counts, bytes);
            }
            f(from, bytes)
        })
    }
}

// ---- SCTP over UDP -----------------------------------------------------------------------

fn sctp_server(phase: &AtomicU8, port_tx: mpsc::Sender<SocketAddr>) -> Interval {
    pin(0);
    let cfg = sctp_config();
    let udp = Inspect::bind(cfg.udp.clone());
    let mut t = SctpUdpTransport::with_datagram_endpoint(udp, cfg, [1; 32]);
    t.listen(SCTP_PORT).unwrap();
    port_tx.send(t.local_addr()).unwrap();
    let mut replies = [AssocId(0); POLL_BUDGET];
    let reply = [0xa5u8; MESSAGE_LEN];
    let mut answered = 0u64;
    let mut meter = Meter::new();
    loop {
        let p = phase.load(Ordering::Relaxed);
        let received = t.datagram_endpoint().ring.stats().datagrams_received;
        if !meter.step(p, answered, received) {
            break;
        }
        let now = Instant::now();
        let mut n = 0;
        t.poll(now, POLL_BUDGET, |e| {
            if let TransportEvent::Data { assoc, .. } = e {
                replies[n] = assoc;
                n += 1;
            }
        })
        .unwrap();
        for &a in &replies[..n] {
            t.send(now, a, StreamId(0), Ppid::ASAP, &reply).expect("server send");
        }
        answered += n as u64;
        t.wait(now, Some(now + WAIT)).unwrap();
    }
    let c = t.datagram_endpoint().counts;
    if t.datagram_endpoint().on {
        eprintln!(
            "server received (whole run): {} packets with DATA ({} DATA chunks, {:.1} per \
             packet), {} without DATA",
            c.with_data,
            c.data_chunks,
            c.data_chunks as f64 / c.with_data.max(1) as f64,
            c.without_data
        );
    }
    meter.result.unwrap()
}

fn sctp_client(phase: &AtomicU8, ready: &AtomicU8, server: SocketAddr, case: Case) -> Interval {
    pin(1);
    let cfg = SctpUdpConfig { remote_udp_port: server.port(), ..sctp_config() };
    let udp = Inspect::bind(cfg.udp.clone());
    let mut t = SctpUdpTransport::with_datagram_endpoint(udp, cfg, [2; 32]);
    let remote = SocketAddr::new(server.ip(), SCTP_PORT);
    let start = Instant::now();
    let mut assocs = Vec::with_capacity(case.assocs as usize);
    for _ in 0..case.assocs {
        assocs.push(t.connect(start, remote).expect("connect"));
    }
    let mut up = 0;
    while up < case.assocs {
        assert!(start.elapsed() < SETUP_TIMEOUT, "only {up}/{} associations up", case.assocs);
        let now = Instant::now();
        t.poll(now, POLL_BUDGET, |e| match e {
            TransportEvent::Up { .. } => up += 1,
            TransportEvent::Lost { .. } => panic!("association lost during set-up"),
            _ => {}
        })
        .unwrap();
        t.wait(now, Some(now + WAIT)).unwrap();
    }
    ready.store(1, Ordering::Release);
    while phase.load(Ordering::Relaxed) == SETUP {
        let now = Instant::now();
        t.poll(now, POLL_BUDGET, |_| {}).unwrap();
        t.wait(now, Some(now + WAIT)).unwrap();
    }
    let request = [0x5au8; MESSAGE_LEN];
    let now = Instant::now();
    // Requests the stack refused (Full); retried before new ones. Capacity fixed up front.
    let mut owed: Vec<AssocId> = Vec::with_capacity((case.assocs * case.window) as usize + 256);
    for &a in &assocs {
        for _ in 0..case.window {
            send_or_owe(&mut t, now, a, &request, &mut owed);
        }
    }
    let mut replies = [AssocId(0); POLL_BUDGET];
    let mut answered = 0u64;
    let mut meter = Meter::new();
    loop {
        let p = phase.load(Ordering::Relaxed);
        let received = t.datagram_endpoint().ring.stats().datagrams_received;
        if !meter.step(p, answered, received) {
            break;
        }
        let now = Instant::now();
        let mut n = 0;
        t.poll(now, POLL_BUDGET, |e| match e {
            TransportEvent::Data { assoc, .. } => {
                replies[n] = assoc;
                n += 1;
            }
            TransportEvent::Lost { .. } | TransportEvent::Closed { .. } => {
                panic!("association ended during the run")
            }
            _ => {}
        })
        .unwrap();
        answered += n as u64;
        for _ in 0..owed.len() {
            let a = owed.pop().unwrap();
            send_or_owe(&mut t, now, a, &request, &mut owed);
        }
        for &a in &replies[..n] {
            send_or_owe(&mut t, now, a, &request, &mut owed);
        }
        t.wait(now, Some(now + WAIT)).unwrap();
    }
    meter.result.unwrap()
}

fn send_or_owe(
    t: &mut SctpUdpTransport<Inspect>,
    now: Instant,
    a: AssocId,
    data: &[u8],
    owed: &mut Vec<AssocId>,
) {
    match t.send(now, a, StreamId(0), Ppid::ASAP, data) {
        Ok(()) => {}
        Err(TransportError::Full) => owed.push(a),
        Err(e) => panic!("client send: {e}"),
    }
}

// ---- driver ------------------------------------------------------------------------------

struct Run {
    client: Interval,
    server: Interval,
}

impl Run {
    fn pairs_per_sec(&self) -> f64 {
        self.client.pairs as f64 / self.client.elapsed.as_secs_f64()
    }
    fn allocs_per_pair(&self) -> f64 {
        (self.client.allocs + self.server.allocs) as f64 / self.client.pairs.max(1) as f64
    }
    fn server_cpu_us_per_pair(&self) -> f64 {
        self.server.cpu.as_secs_f64() * 1e6 / self.server.pairs.max(1) as f64
    }
    fn server_datagrams_per_pair(&self) -> f64 {
        self.server.datagrams_in as f64 / self.server.pairs.max(1) as f64
    }
    fn client_cpu_us_per_pair(&self) -> f64 {
        self.client.cpu.as_secs_f64() * 1e6 / self.client.pairs.max(1) as f64
    }
}

fn run(kind: Kind, case: Case, warm: Duration, secs: Duration) -> Run {
    let phase = Arc::new(AtomicU8::new(SETUP));
    let ready = Arc::new(AtomicU8::new(0));
    let (port_tx, port_rx) = mpsc::channel();
    let server = {
        let phase = phase.clone();
        thread::spawn(move || match kind {
            Kind::Raw => raw_server(&phase, port_tx),
            Kind::RawBundled => bundled_server(&phase, port_tx),
            Kind::Sctp => sctp_server(&phase, port_tx),
        })
    };
    let server_addr = port_rx.recv_timeout(SETUP_TIMEOUT).expect("server bound");
    let client = {
        let (phase, ready) = (phase.clone(), ready.clone());
        thread::spawn(move || match kind {
            Kind::Raw => {
                ready.store(1, Ordering::Release);
                raw_client(&phase, server_addr, case)
            }
            Kind::RawBundled => {
                ready.store(1, Ordering::Release);
                bundled_client(&phase, server_addr, case)
            }
            Kind::Sctp => sctp_client(&phase, &ready, server_addr, case),
        })
    };
    let start = Instant::now();
    while ready.load(Ordering::Acquire) == 0 {
        assert!(start.elapsed() < SETUP_TIMEOUT, "set-up did not finish");
        assert!(!client.is_finished(), "client ended during set-up");
        thread::sleep(Duration::from_millis(1));
    }
    phase.store(WARM, Ordering::Relaxed);
    thread::sleep(warm);
    phase.store(MEASURE, Ordering::Relaxed);
    thread::sleep(secs);
    phase.store(STOP, Ordering::Relaxed);
    let client = client.join().expect("client thread");
    let server = server.join().expect("server thread");
    Run { client, server }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let warm_ms: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(500);
    let (secs, warm) = (Duration::from_secs_f64(secs), Duration::from_millis(warm_ms));
    let cases = [
        Case { assocs: 1, window: 1 },
        Case { assocs: 1, window: 32 },
        Case { assocs: 100, window: 1 },
        Case { assocs: 100, window: 32 },
    ];
    // results[case][repeat] = [raw, raw bundled, sctp]
    let mut results: Vec<Vec<[Run; 3]>> = cases.iter().map(|_| Vec::new()).collect();
    for rep in 0..repeats {
        for (i, &case) in cases.iter().enumerate() {
            let raw = run(Kind::Raw, case, warm, secs);
            let bundled = run(Kind::RawBundled, case, warm, secs);
            let sctp = run(Kind::Sctp, case, warm, secs);
            eprintln!(
                "repeat {} | {:>3} assoc w{:>2} | pairs/s raw {:>8.0} bundled {:>8.0} sctp {:>8.0} \
                 | ratio {:.3} (bundled {:.3}) | allocs sctp client {} server {} pairs {} \
                 | server µs/pair raw {:.2} bundled {:.2} sctp {:.2} \
                 | client µs/pair raw {:.2} bundled {:.2} sctp {:.2} \
                 | server datagrams in/pair bundled {:.3} sctp {:.3}",
                rep + 1,
                case.assocs,
                case.window,
                raw.pairs_per_sec(),
                bundled.pairs_per_sec(),
                sctp.pairs_per_sec(),
                sctp.pairs_per_sec() / raw.pairs_per_sec(),
                sctp.pairs_per_sec() / bundled.pairs_per_sec(),
                sctp.client.allocs,
                sctp.server.allocs,
                sctp.client.pairs,
                raw.server_cpu_us_per_pair(),
                bundled.server_cpu_us_per_pair(),
                sctp.server_cpu_us_per_pair(),
                raw.client_cpu_us_per_pair(),
                bundled.client_cpu_us_per_pair(),
                sctp.client_cpu_us_per_pair(),
                bundled.server_datagrams_per_pair(),
                sctp.server_datagrams_per_pair(),
            );
            results[i].push([raw, bundled, sctp]);
        }
    }
    println!(
        "\n{MESSAGE_LEN}-byte messages, PPID 11, loopback, server on core 0, client on core 1; \
         {:.1} s measured after {} ms warm-up; median of {repeats} runs (ratios: median of the \
         per-repeat ratios); allocs/pair counts client + server threads.\n",
        secs.as_secs_f64(),
        warm.as_millis()
    );
    println!(
        "| case | pairs/s SCTP | pairs/s raw UDP | ratio SCTP/raw | allocs/pair SCTP (raw) | \
         server CPU µs/pair SCTP (raw) | pairs/s raw UDP bundled | ratio SCTP/bundled | \
         server datagrams in/pair SCTP (bundled) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (case, runs) in cases.iter().zip(&results) {
        let m = |f: &dyn Fn(&[Run; 3]) -> f64| median(runs.iter().map(f).collect());
        println!(
            "| {} assoc, window {} | {:.0} | {:.0} | {:.2} | {:.1e} ({:.0}) | {:.2} ({:.2}) | \
             {:.0} | {:.2} | {:.3} ({:.3}) |",
            case.assocs,
            case.window,
            m(&|r| r[2].pairs_per_sec()),
            m(&|r| r[0].pairs_per_sec()),
            m(&|r| r[2].pairs_per_sec() / r[0].pairs_per_sec()),
            m(&|r| r[2].allocs_per_pair()),
            m(&|r| r[0].allocs_per_pair()),
            m(&|r| r[2].server_cpu_us_per_pair()),
            m(&|r| r[0].server_cpu_us_per_pair()),
            m(&|r| r[1].pairs_per_sec()),
            m(&|r| r[2].pairs_per_sec() / r[1].pairs_per_sec()),
            m(&|r| r[2].server_datagrams_per_pair()),
            m(&|r| r[1].server_datagrams_per_pair()),
        );
    }
}
