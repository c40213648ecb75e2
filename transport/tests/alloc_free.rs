//! Allocation counts on the steady-state path (STYLE.md §5: after startup the hot path does not
//! allocate). A counting global allocator measures one thread's allocations between two marks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::{DatagramEndpoint, Ppid, SctpTransport, StreamId, TransportEvent, UdpRing};
use transport::{UdpRingConfig, UdpSocketBatch};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
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

const DEADLINE: Duration = Duration::from_secs(10);

/// Sends `count` datagrams from `tx` to `rx` and receives them; returns allocations made.
fn datagram_round<D: DatagramEndpoint>(tx: &mut D, rx: &mut D, count: usize) -> u64 {
    let before = allocations();
    let to = rx.local_addr();
    for i in 0..count {
        tx.send_to(to, &(i as u32).to_be_bytes()).unwrap();
    }
    tx.submit_and_wait(Some(Duration::ZERO)).unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got < count && start.elapsed() < DEADLINE {
        rx.submit_and_wait(Some(Duration::from_millis(5))).unwrap();
        got += rx.recv_batch(usize::MAX, |_, _| {});
        tx.submit_and_wait(Some(Duration::ZERO)).unwrap();
    }
    assert_eq!(got, count);
    allocations() - before
}

// Goal: both UDP endpoints move datagrams without allocating. Method: a warm-up round, then
// 3 rounds of 500 datagrams counted.
#[test]
fn datagram_endpoints_do_not_allocate() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let mut tx = UdpRing::bind(addr, UdpRingConfig::default()).unwrap();
    let mut rx = UdpRing::bind(addr, UdpRingConfig::default()).unwrap();
    datagram_round(&mut tx, &mut rx, 500);
    let ring: u64 = (0..3).map(|_| datagram_round(&mut tx, &mut rx, 500)).sum();
    let mut tx = UdpSocketBatch::bind(addr, UdpRingConfig::default()).unwrap();
    let mut rx = UdpSocketBatch::bind(addr, UdpRingConfig::default()).unwrap();
    datagram_round(&mut tx, &mut rx, 500);
    let batch: u64 = (0..3).map(|_| datagram_round(&mut tx, &mut rx, 500)).sum();
    assert_eq!((ring, batch), (0, 0));
}

// Goal: measure allocations per request/response pair through SctpTransport over the io_uring
// endpoint (the goal is 0). Method: warm up with 200 pairs, then count 1000 pairs,
// window 32. The transport's own share must be zero; the total is printed, and bounded loosely
// so that a regression in either crate shows.
#[test]
fn sctp_udp_allocations_per_pair() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let mut server = SctpUdpTransport::bind(addr, SctpUdpConfig::default(), [1; 32]).unwrap();
    let cfg = SctpUdpConfig { remote_udp_port: server.local_addr().port(), ..Default::default() };
    let mut client = SctpUdpTransport::bind(addr, cfg, [2; 32]).unwrap();
    server.listen(5000).unwrap();
    let assoc = client.connect(Instant::now(), "127.0.0.1:5000".parse().unwrap()).unwrap();
    let mut up = false;
    let start = Instant::now();
    while !up && start.elapsed() < DEADLINE {
        let now = Instant::now();
        client.poll(now, 64, |e| up |= matches!(e, TransportEvent::Up { .. })).unwrap();
        server.poll(now, 64, |_| {}).unwrap();
        server.wait(now, Some(now)).unwrap();
        client.wait(now, Some(now + Duration::from_millis(1))).unwrap();
    }
    assert!(up);
    run_pairs(&mut client, &mut server, assoc, 200);
    let before = allocations();
    run_pairs(&mut client, &mut server, assoc, 1000);
    let per_pair = (allocations() - before) as f64 / 1000.0;
    println!("allocations per request/response pair (transport + sctp): {per_pair:.3}");
    // Measured 0.000 at the time of writing; a little slack for rare paths (retransmission).
    assert!(per_pair < 0.01, "{per_pair} allocations per pair");
}

/// `pairs` request/response exchanges with up to 32 requests outstanding.
fn run_pairs(
    client: &mut SctpUdpTransport,
    server: &mut SctpUdpTransport,
    assoc: transport::AssocId,
    pairs: u32,
) {
    const WINDOW: u32 = 32;
    let request = [0x5au8; 100];
    let (mut sent, mut answered) = (0u32, 0u32);
    // Fixed-size scratch for the server's replies: no allocation.
    let mut replies = [(transport::AssocId(0), 0u32); 256];
    let start = Instant::now();
    while answered < pairs {
        assert!(start.elapsed() < DEADLINE, "stuck at {answered}/{pairs}");
        let now = Instant::now();
        while sent < pairs && sent - answered < WINDOW {
            client.send(now, assoc, StreamId(0), Ppid::ASAP, &request).unwrap();
            sent += 1;
        }
        client.wait(now, Some(now)).unwrap();
        let mut n = 0;
        server
            .poll(now, 256, |e| {
                if let TransportEvent::Data { assoc, .. } = e {
                    replies[n] = (assoc, 0);
                    n += 1;
                }
            })
            .unwrap();
        for (a, _) in &replies[..n] {
            server.send(now, *a, StreamId(0), Ppid::ASAP, &request).unwrap();
        }
        server.wait(now, Some(now)).unwrap();
        client
            .poll(now, 256, |e| answered += u32::from(matches!(e, TransportEvent::Data { .. })))
            .unwrap();
    }
}
