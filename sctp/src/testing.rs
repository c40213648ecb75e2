//! A deterministic packet simulator for endpoints (STYLE §7 item 5): one thread, a simulated
//! clock, loss, duplication, reordering and delay drawn from one printed `u64` seed, and a step
//! cap so a livelock fails instead of hanging. Test support only; it allocates freely.

use core::net::SocketAddr;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::{AssociationHandle, Endpoint, Event, Instant, MessageInfo};

/// SplitMix64: tiny, seedable, good enough for fault injection.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// Network faults.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Packets lost, per mille.
    pub loss_per_mille: u32,
    /// Packets delivered twice, per mille.
    pub duplicate_per_mille: u32,
    /// Shortest one-way delay.
    pub delay_min: Duration,
    /// Longest one-way delay; a spread reorders packets.
    pub delay_max: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            loss_per_mille: 0,
            duplicate_per_mille: 0,
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(5),
        }
    }
}

/// A received message as the simulator recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Association it arrived on.
    pub assoc: AssociationHandle,
    /// Stream, PPID, ordering.
    pub info: MessageInfo,
    /// The bytes.
    pub data: Vec<u8>,
}

/// One simulated host.
pub struct Node {
    /// Its endpoint.
    pub endpoint: Endpoint,
    /// Its UDP address.
    pub addr: SocketAddr,
    /// Every event it raised, in order.
    pub events: Vec<(Instant, Event)>,
    /// Every message it read, in order.
    pub received: Vec<Received>,
    /// While set, every packet to or from this node is dropped (until the instant, if any).
    pub silent: Option<Option<Instant>>,
    /// When false, the simulator does not read messages (to test flow control).
    pub reading: bool,
}

struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The simulated network.
pub struct Net {
    /// Hosts, indexed in the order added.
    pub nodes: Vec<Node>,
    /// Current simulated time.
    pub now: Instant,
    /// Faults applied to every packet.
    pub faults: Faults,
    /// The fault generator, from the seed.
    pub rng: Rng,
    /// Packets handed to the network so far.
    pub packets_sent: u64,
    /// Optional tap: sees every packet sent (time, from node, bytes). `SCTP_TRACE=1` in the
    /// environment sets it to [`print_packet`].
    pub trace: Option<fn(Instant, usize, &[u8])>,
    wire: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
}

impl Net {
    /// An empty network; prints the seed so a failure can be replayed.
    pub fn new(seed: u64, faults: Faults) -> Self {
        println!("sctp::testing seed = {seed:#018x}");
        let trace =
            std::env::var_os("SCTP_TRACE").map(|_| print_packet as fn(Instant, usize, &[u8]));
        Net {
            nodes: Vec::new(),
            now: Instant(1_000_000),
            faults,
            rng: Rng(seed),
            packets_sent: 0,
            trace,
            wire: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Adds a host; returns its index.
    pub fn add(&mut self, endpoint: Endpoint, addr: SocketAddr) -> usize {
        self.nodes.push(Node {
            endpoint,
            addr,
            events: Vec::new(),
            received: Vec::new(),
            silent: None,
            reading: true,
        });
        self.nodes.len() - 1
    }

    fn node_at(&self, addr: SocketAddr) -> Option<usize> {
        // Exact match: a packet sent to a stale UDP port is lost, as on a real network.
        self.nodes.iter().position(|n| n.addr == addr)
    }

    fn is_silent(&self, i: usize) -> bool {
        match self.nodes[i].silent {
            None => false,
            Some(None) => true,
            Some(Some(until)) => self.now < until,
        }
    }

    /// Moves packets out of every endpoint onto the wire, applying faults.
    fn collect(&mut self) {
        let mut buf = vec![0u8; 65_536];
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].endpoint.poll_transmit(self.now, &mut buf) {
                self.packets_sent += 1;
                if let Some(f) = self.trace {
                    f(self.now, i, &buf[..t.len]);
                }
                let Some(to) = self.node_at(t.remote) else {
                    continue;
                };
                if self.is_silent(i) || self.rng.chance(self.faults.loss_per_mille) {
                    continue;
                }
                let copies = if self.rng.chance(self.faults.duplicate_per_mille) { 2 } else { 1 };
                for _ in 0..copies {
                    let spread = self.faults.delay_max.saturating_sub(self.faults.delay_min);
                    let jitter = self.rng.below(spread.as_micros() as u64 + 1);
                    let at = self.now + self.faults.delay_min + Duration::from_micros(jitter);
                    self.seq += 1;
                    let from = self.nodes[i].addr;
                    let bytes = buf[..t.len].to_vec();
                    self.wire.push(Reverse(InFlight { at, seq: self.seq, to, from, bytes }));
                }
            }
        }
    }

    /// Drains events and reads messages on every node.
    fn drain_events(&mut self) {
        let now = self.now;
        for n in &mut self.nodes {
            while let Some(e) = n.endpoint.poll_event() {
                if let Event::DataReadable(h) = e {
                    if n.reading {
                        let ep = &mut n.endpoint;
                        let rx = &mut n.received;
                        while ep.read_message(h, |m, info| {
                            rx.push(Received { assoc: h, info, data: m.to_vec() })
                        }) {}
                    }
                }
                n.events.push((now, e));
            }
        }
    }

    /// Reads pending messages of every node that was not reading (after `reading` is set again).
    pub fn read_all(&mut self, h: AssociationHandle, node: usize) {
        let n = &mut self.nodes[node];
        let rx = &mut n.received;
        while n
            .endpoint
            .read_message(h, |m, info| rx.push(Received { assoc: h, info, data: m.to_vec() }))
        {
        }
    }

    /// One step: send, advance the clock to the next packet or timer (at most `max_advance`),
    /// deliver, fire timers, drain events.
    pub fn step(&mut self) {
        self.collect();
        let mut next = self.wire.peek().map(|Reverse(p)| p.at);
        for n in &self.nodes {
            if let Some(t) = n.endpoint.poll_timeout() {
                next = Some(next.map_or(t, |x: Instant| x.min(t)));
            }
        }
        let cap = self.now + Duration::from_secs(1);
        let target = next.unwrap_or(cap).min(cap).max(self.now);
        self.now = target;
        while self.wire.peek().is_some_and(|Reverse(p)| p.at <= self.now) {
            let Reverse(p) = self.wire.pop().expect("peeked");
            if self.is_silent(p.to) {
                continue;
            }
            let local = self.nodes[p.to].addr;
            self.nodes[p.to].endpoint.handle_packet(self.now, p.from, local, &p.bytes);
        }
        for n in &mut self.nodes {
            n.endpoint.handle_timeout(self.now);
        }
        self.drain_events();
        self.collect();
    }

    /// Steps until `done` holds; panics after `steps_max` steps (livelock guard).
    pub fn run_until(&mut self, steps_max: u32, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..steps_max {
            if done(self) {
                return;
            }
            self.step();
        }
        if !done(self) {
            for (i, n) in self.nodes.iter().enumerate() {
                let tail = &n.events[n.events.len().saturating_sub(8)..];
                println!("node {i}: received {}, last events {tail:?}", n.received.len());
            }
            panic!("step cap {steps_max} reached at {:?}", self.now);
        }
    }

    /// Steps until simulated time reaches `until`.
    pub fn run_to(&mut self, until: Instant, steps_max: u32) {
        self.run_until(steps_max, |n| n.now >= until);
    }

    /// True when node `i` raised an event matching `f`.
    pub fn has_event(&self, i: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.nodes[i].events.iter().any(|(_, e)| f(e))
    }

    /// When node `i` first raised an event matching `f`.
    pub fn event_time(&self, i: usize, f: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.nodes[i].events.iter().find(|(_, e)| f(e)).map(|(t, _)| *t)
    }
}

/// A `Net::trace` tap that prints each packet: time, sending node, tag and chunks
/// `(type, flags, value length)`.
pub fn print_packet(t: Instant, from: usize, p: &[u8]) {
    let (tag, chunks) = dissect(p);
    let c: Vec<_> = chunks.iter().map(|(ty, f, v)| (*ty, *f, v.len())).collect();
    println!("{:>12} node {from} tag {tag:08x} {c:?}", t.0);
}

/// Builds an SCTP packet from raw chunks `(type, flags, value)`, checksum set.
pub fn craft_packet(
    source_port: u16,
    target_port: u16,
    tag: u32,
    chunks: &[(u8, u8, &[u8])],
) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&source_port.to_be_bytes());
    p.extend_from_slice(&target_port.to_be_bytes());
    p.extend_from_slice(&tag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    for (ty, flags, value) in chunks {
        p.push(*ty);
        p.push(*flags);
        p.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        p.extend_from_slice(value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    crate::wire::seal(&mut p);
    p
}

/// Splits a packet into its verification tag and chunks `(type, flags, value)`.
pub fn dissect(packet: &[u8]) -> (u32, Vec<(u8, u8, Vec<u8>)>) {
    let hdr = crate::wire::CommonHeader::parse(packet).expect("a packet we built");
    let chunks = crate::wire::ChunkIter::new(packet)
        .map(|c| c.expect("a packet we built"))
        .map(|c| (c.ty.0, c.flags, c.value.to_vec()))
        .collect();
    (hdr.verification_tag, chunks)
}

/// `size_of` of one association's state, as the endpoint boxes it per association (memory
/// tests report it next to the heap they measure).
pub fn association_size() -> usize {
    core::mem::size_of::<crate::assoc::Association>()
}
