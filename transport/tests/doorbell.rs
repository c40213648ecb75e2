//! The doorbell ends a sleeping io_uring wait from another thread.
//!
//! Goal: a core asleep in `submit_and_wait` wakes when another thread rings, long before its
//! timeout, and the bell is re-armed for the next sleep. Method: wait with a 20 s timeout while a
//! thread rings after 50 ms, twice in a row; each wait must end within 10 s (a generous bound:
//! this checks wake-up, not speed). A ring-free wait of 100 ms must still time out.

use std::time::{Duration, Instant};

use transport::{DatagramEndpoint, UdpRing, UdpRingConfig};

#[test]
fn doorbell_wakes_a_sleeping_ring() {
    let mut ring = UdpRing::bind("127.0.0.1:0".parse().unwrap(), UdpRingConfig::default()).unwrap();
    let bell = ring.doorbell().unwrap();
    // First submit posts the bell's read.
    ring.submit_and_wait(Some(Duration::ZERO)).unwrap();
    for round in 0..2 {
        let ringer = {
            let bell = bell.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                bell.ring();
            })
        };
        let start = Instant::now();
        ring.submit_and_wait(Some(Duration::from_secs(20))).unwrap();
        ringer.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(10), "round {round}: not woken");
    }
    let start = Instant::now();
    ring.submit_and_wait(Some(Duration::from_millis(100))).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(90), "a silent bell must not wake us");
    assert!(DatagramEndpoint::doorbell(&mut ring).unwrap().is_some());
}
