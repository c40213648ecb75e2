//! Goal: the hot path, Handle Resolution view parse plus Handle Resolution Response emit with
//! three PEs, allocates nothing. Method: a counting global allocator; the PEs and buffers are
//! built before counting starts. Only the test thread counts: the harness's threads may
//! allocate at any time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use codec::asap::{HandleResolution, HandleResolutionResponseRef, HandleResolutionView};
use codec::param::AddressList;
use codec::{Policy, PoolElement, PoolElementId, PoolHandle, RegistrarId, SctpTransport};
use codec::{TransportUse, UserTransport};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn pool_element(id: u32) -> PoolElement {
    let addresses =
        AddressList::from_slice(&["192.0.2.1".parse().unwrap(), "::1".parse().unwrap()]).unwrap();
    PoolElement {
        id: PoolElementId(id),
        home_registrar: RegistrarId(7),
        registration_life_ms: 30_000,
        user_transport: UserTransport::Sctp(SctpTransport {
            port: 8080,
            transport_use: TransportUse::DATA_ONLY,
            addresses,
        }),
        policy: Policy::LeastUsed { load: id },
        asap_transport: None,
    }
}

#[test]
fn hot_path_does_not_allocate() {
    let request = HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(b"EchoPool").unwrap(),
        items_wanted: Some(3),
    }
    .emit_to_vec();
    let pes = [pool_element(1), pool_element(2), pool_element(3)];
    let mut out = [0u8; 1024];

    let before = ALLOCATIONS.with(Cell::get);
    let mut written = 0;
    for _ in 0..100 {
        let view = HandleResolutionView::new_checked(&request[..]).unwrap();
        let handle = view.pool_handle();
        let wanted = view.items_wanted().unwrap() as usize;
        let selected = [&pes[0], &pes[1], &pes[2]];
        let response = HandleResolutionResponseRef {
            accept_updates: false,
            pool_handle: &handle,
            overall_policy: None,
            pool_elements: &selected[..wanted],
        };
        written = response.emit(&mut out);
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "the hot path allocated");
    assert!(written > 0);
    assert!(codec::asap::Message::parse(&out[..written]).is_ok());
}
