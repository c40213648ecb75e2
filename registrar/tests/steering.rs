//! Associations spread over the cores by SCTP verification tag, whatever their UDP 4-tuple.
//!
//! Goal: every association of a peer that sends from one UDP port (as kernel SCTP does, from
//! 9899, for every PE and PU of its host) is not pinned to the one core the 4-tuple hash picks;
//! the registrar's cores take turns, and every association works wherever it landed. Method:
//! the registrar in-process with 2 workers; one client socket opens 8 associations, resolves a
//! pool on each (answers cross cores, since pools shard by handle), then the per-core session
//! counters must read 4 and 4.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use codec::asap::{HandleResolution, Message};
use codec::PoolHandle;
use transport::{Ppid, SctpTransport, StreamId, TransportEvent};

const ASSOCIATIONS: usize = 8;
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn associations_from_one_udp_port_spread_over_the_cores() {
    let port = common::free_udp_port();
    let config = common::in_process(2, port);
    let running = registrar::io::start(&config).expect("registrar starts");

    let (mut client, assocs) = common::client_with_associations(port, 3, ASSOCIATIONS);
    let start = Instant::now();

    for (i, assoc) in assocs.iter().enumerate() {
        let handle = PoolHandle::new(format!("pool-{i}").as_bytes()).unwrap();
        let request =
            HandleResolution { subscribe: false, pool_handle: handle, items_wanted: None };
        let bytes = Message::HandleResolution(request).emit_to_vec();
        client.send(Instant::now(), *assoc, StreamId(0), Ppid::ASAP, &bytes).unwrap();
    }
    let mut answered = HashSet::new();
    common::pump(&mut client, |e| {
        if let TransportEvent::Data { assoc, data, .. } = e {
            // Nothing is registered: each answer is Unknown Pool Handle, from the pool's core.
            assert!(matches!(Message::parse(data), Ok(Message::HandleResolutionResponse(_))));
            answered.insert(*assoc);
        }
        answered.len() == ASSOCIATIONS
    });

    while running.stats().sessions_opened < ASSOCIATIONS as u64 {
        assert!(start.elapsed() < DEADLINE, "sessions never published");
        std::thread::sleep(Duration::from_millis(20));
    }
    let per_core: Vec<u64> = running.stats_per_core().iter().map(|s| s.sessions_opened).collect();
    assert_eq!(per_core, vec![4, 4], "sessions per core");
    running.stop().unwrap();
}
