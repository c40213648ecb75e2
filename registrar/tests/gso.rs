//! The registrar with UDP segmentation offload on (`udp_gso`).
//!
//! Goal: answers sent as one segmentation-offload batch reach a userspace SCTP peer as the
//! separate SCTP packets they are, each on its own association. Method: the registrar
//! in-process with 1 worker and `udp_gso`; one client socket opens 24 associations and sends a
//! Handle Resolution on each at once, so the registrar answers 24 same-sized packets to one
//! peer in one turn (runs of 8 or more go as one send); every association must get its answer.

mod common;

use std::collections::HashSet;
use std::time::Instant;

use codec::asap::{HandleResolution, Message};
use codec::{ErrorCause, PoolHandle};
use transport::{Ppid, SctpTransport, StreamId, TransportEvent};

const ASSOCIATIONS: usize = 24;

#[test]
fn batched_answers_reach_every_association() {
    let port = common::free_udp_port();
    let config = registrar::config::Config { udp_gso: true, ..common::in_process(1, port) };
    let running = registrar::io::start(&config).expect("registrar starts");
    let (mut client, assocs) = common::client_with_associations(port, 5, ASSOCIATIONS);

    let handle = PoolHandle::new(b"no-such-pool").unwrap();
    let request = HandleResolution { subscribe: false, pool_handle: handle, items_wanted: None };
    let bytes = Message::HandleResolution(request).emit_to_vec();
    for assoc in &assocs {
        client.send(Instant::now(), *assoc, StreamId(0), Ppid::ASAP, &bytes).unwrap();
    }
    let mut answered = HashSet::new();
    common::pump(&mut client, |e| {
        if let TransportEvent::Data { assoc, data, .. } = e {
            let Ok(Message::HandleResolutionResponse(r)) = Message::parse(data) else {
                panic!("not a Handle Resolution Response: {data:02x?}");
            };
            assert_eq!(r.error.unwrap().causes[0].code, ErrorCause::UNKNOWN_POOL_HANDLE);
            assert!(answered.insert(*assoc), "one answer per association");
        }
        answered.len() == ASSOCIATIONS
    });
    assert_eq!(running.stop().unwrap().resolutions, ASSOCIATIONS as u64);
}
