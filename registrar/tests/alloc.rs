//! The resolution path of the sans-IO server does not allocate once warm (STYLE §5).
//!
//! Goal: request bytes in, answer bytes out, zero heap allocations per Handle Resolution on
//! one core. Method: a counting global allocator; register 10 PEs, warm up, then count over
//! 10 000 resolutions whose answer buffers are handed back as the core loop does. Only the test
//! thread's allocations count: the test harness's own threads may allocate at any time (they
//! did, 4 times, when the host was busy).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use codec::asap::{HandleResolution, Message, Registration};
use codec::param::{AddressList, SctpTransport};
use codec::UserTransport;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{Duration, Instant};
use registrar::proto::{Server, ServerConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it never allocates.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn resolution_path_allocates_nothing_when_warm() {
    let mut server = Server::new(ServerConfig {
        registrar_id: RegistrarId(1),
        core: 0,
        cores: 1,
        handlespace: handlespace::Config::default(),
        resolution_items_default: 3,
        registration_life_max: Duration::from_micros(3_600_000_000),
        remove_on_session_loss: true,
        seed: 3,
        replicas: true,
        enrp: None,
    });
    let now = Instant::from_micros(0);
    server.handle_up(1, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5000));
    let pool = PoolHandle::new(b"EchoPool").unwrap();
    for id in 1..=10 {
        let pe = PoolElement {
            id: PoolElementId(id),
            home_registrar: RegistrarId(0),
            registration_life_ms: 600_000,
            user_transport: UserTransport::Sctp(SctpTransport {
                port: 7,
                transport_use: TransportUse::DATA_ONLY,
                addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap(),
            }),
            policy: Policy::Random,
            asap_transport: None,
        };
        let r = Message::Registration(Registration { pool_handle: pool, pool_element: pe });
        server.handle_message(now, 1, &r.emit_to_vec());
        while let Some(out) = server.poll_transmit() {
            server.recycle(out.bytes);
        }
    }
    let request = Message::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: pool,
        items_wanted: Some(3),
    })
    .emit_to_vec();
    let resolve = |server: &mut Server| {
        server.handle_message(now, 1, &request);
        let out = server.poll_transmit().expect("an answer");
        assert!(out.bytes.len() > 100, "three PEs in the answer");
        server.recycle(out.bytes);
    };
    for _ in 0..1_000 {
        resolve(&mut server);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTED.with(|c| c.set(true));
    for _ in 0..10_000 {
        resolve(&mut server);
    }
    COUNTED.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "allocations over 10 000 warm resolutions");
    assert_eq!(server.stats().resolutions, 11_000);
}
