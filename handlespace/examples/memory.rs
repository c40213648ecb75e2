//! Resident bytes per PE for 1 000 000 PEs in one handlespace.
//!
//! Method: a counting global allocator tracks live heap bytes (as requested from the allocator,
//! without its per-block overhead). We build 1 000 000 PEs in 1 000 pools of 1 000, each with one
//! IPv4 address and a shared 64-byte wire blob (the registrar would hold one blob per PE; its size
//! is the encoded PE parameter, so it is reported separately), and divide the live bytes by the
//! PE count. "Beyond transport addresses" subtracts each PE's address list (17 bytes per
//! `IpAddr`). We also print the change in RSS from /proc/self/statm, which includes allocator
//! overhead and fragmentation.
//!
//! Run: `cargo run --release -p handlespace --example memory [policy-number]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use handlespace::{
    Config, Duration, Handlespace, Instant, Limits, PolicySettings, Protocol, Registration,
    TransportInfo,
};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PES: u32 = 1_000_000;
const POOL_SIZE: u32 = 1_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn main() {
    let policies = [
        PolicyType::ROUND_ROBIN,
        PolicyType::WEIGHTED_RANDOM,
        PolicyType::LEAST_USED,
        PolicyType::WEIGHTED_ROUND_ROBIN,
    ];
    for policy_type in policies {
        measure(policy_type);
    }
}

fn measure(policy_type: PolicyType) {
    let wire = handlespace::Wire::from(&[0u8; 64][..]);
    let limits = Limits { pool_elements_max: PES, ..Limits::default() };
    let live_before = LIVE.load(Ordering::Relaxed);
    let rss_before = rss_bytes();
    let mut hs = Handlespace::new(RegistrarId(1), Config { limits, ..Config::default() });
    let mut address_bytes = 0usize;
    for id in 0..PES {
        let pool = format!("pool-{:04}", id / POOL_SIZE);
        let addresses: Box<[std::net::IpAddr]> = Box::new(["10.0.0.1".parse().unwrap()]);
        address_bytes += std::mem::size_of_val(&*addresses);
        let registration = Registration {
            pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
            id: PoolElementId(id),
            home: RegistrarId(1),
            policy: PolicySettings {
                policy_type,
                weight: 1 + id % 7,
                load: id,
                ..PolicySettings::new()
            },
            transport: TransportInfo {
                protocol: Protocol::Sctp,
                port: 9,
                transport_use: TransportUse::DATA_ONLY,
                addresses,
            },
            lifetime: Duration::from_secs(30),
            registrator: u64::from(id),
            wire: wire.clone(),
        };
        hs.register(Instant::from_micros(0), registration).unwrap();
    }
    let live = LIVE.load(Ordering::Relaxed) - live_before;
    let rss = rss_bytes().saturating_sub(rss_before);
    let pes = f64::from(PES);
    println!(
        "{policy_type:?}: {} PEs, heap {:.1} B/PE, beyond addresses {:.1} B/PE, \
         RSS delta {:.1} B/PE, \
         + wire blob (not counted, shared here) ~{} B/PE in a registrar",
        hs.element_count(),
        live as f64 / pes,
        (live - address_bytes) as f64 / pes,
        rss as f64 / pes,
        16 + wire.len(),
    );
    drop(hs);
}
