//! The endpoint: one per core, owning every association in a slab, routing packets, answering
//! INIT statelessly, handling out-of-the-blue packets and keeping the timer heap.

use core::net::{IpAddr, SocketAddr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::assoc::{
    parse_init_params, Association, AssociationStats, Ctx, Flow, InitRefusal, ReportBuf, State,
};
use crate::config::EndpointConfig;
use crate::cookie::{CookieState, TagSource, ADDRESSES_MAX, COOKIE_LEN_MAX};
use crate::time::{Instant, NEVER};
use crate::wire::{
    self, cause, padded, param, ChunkIter, ChunkType, CommonHeader, Init, Writer, FLAG_T,
    PACKET_BYTES_MAX,
};

/// Names one association of one endpoint: the slab index in the low 20 bits, a generation in
/// the high 12, so a handle kept after `Closed` does not reach the slot's next occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssociationHandle(pub u32);

impl AssociationHandle {
    fn new(index: u32, generation: u32) -> Self {
        assert!(index < crate::ASSOCIATIONS_LIMIT);
        AssociationHandle(index | (generation & GENERATION_MASK) << INDEX_BITS)
    }

    /// The slab index.
    pub fn index(self) -> usize {
        (self.0 & (crate::ASSOCIATIONS_LIMIT - 1)) as usize
    }

    fn generation(self) -> u32 {
        self.0 >> INDEX_BITS
    }
}

const INDEX_BITS: u32 = 20;
const GENERATION_MASK: u32 = (1 << (32 - INDEX_BITS)) - 1;

/// What happened, pulled with [`Endpoint::poll_event`]. Variants in alphabetical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Closed: graceful shutdown completed, or we aborted. Terminal: the handle dies once this is
    /// polled.
    Closed(AssociationHandle),
    /// Lost: the peer aborted, retransmissions or heartbeats went unanswered past
    /// `assoc_max_retrans`, or the setup timed out. Terminal, like `Closed`.
    CommunicationLost(AssociationHandle),
    /// The association is up (COOKIE ACK received, or a valid COOKIE ECHO accepted).
    Connected(AssociationHandle),
    /// At least one message can be read; read until `read_message` returns false. Raised again
    /// only after the queue was emptied.
    DataReadable(AssociationHandle),
    /// The only path exceeded `path_max_retrans` (§8.2); it is used anyway.
    PathInactive(AssociationHandle),
    /// The peer reported an error cause in an ERROR or ABORT chunk (§3.3.10 codes).
    PeerError {
        /// Which association.
        assoc: AssociationHandle,
        /// The cause code.
        cause: u16,
    },
    /// The peer restarted (§5.2.4 A): new tags and TSNs, unacknowledged data dropped.
    Restarted(AssociationHandle),
    /// The association ended with messages not (fully) acknowledged.
    SendFailed {
        /// Which association.
        assoc: AssociationHandle,
        /// How many messages.
        messages: u32,
    },
}

impl Event {
    fn terminal(&self) -> Option<AssociationHandle> {
        match *self {
            Event::Closed(h) | Event::CommunicationLost(h) => Some(h),
            _ => None,
        }
    }
}

/// Where a received message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Stream identifier.
    pub stream: u16,
    /// Payload Protocol Identifier, host order (ASAP 11, ENRP 12).
    pub ppid: u32,
    /// Sent unordered.
    pub unordered: bool,
}

/// One packet written by [`Endpoint::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination: the peer IP and its UDP encapsulation port.
    pub remote: SocketAddr,
    /// Bytes written at the start of the caller's buffer.
    pub len: usize,
}

/// Why `connect` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// An association with this peer address and ports exists.
    Exists,
    /// `associations_max` reached.
    TooMany,
    /// Port zero.
    InvalidPort,
}

/// Why `send` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The handle is stale, or the association is shutting down or closed.
    Closed,
    /// `send_buffer_bytes_max` would be exceeded; retry after acknowledgements.
    Full,
    /// The stream is not below the negotiated outbound stream count.
    InvalidStream,
    /// Empty, or larger than `max_message_size`.
    TooLarge,
}

/// Counters, per endpoint; the caller sums them over cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets dropped: bad checksum, bad framing, bad tag, bundling violations.
    pub packets_dropped: u64,
    /// COOKIE ECHOs whose cookie failed authentication or was stale.
    pub cookies_rejected: u64,
    /// INIT ACKs sent (each from a stateless INIT).
    pub init_acks_sent: u64,
    /// Stateless replies dropped because `responses_max` were queued.
    pub responses_dropped: u64,
    /// Non-terminal events dropped because `events_max` were queued.
    pub events_dropped: u64,
}

/// The sans-IO SCTP endpoint.
///
/// Drive it like this, once per loop iteration with one `now`:
/// 1. `handle_packet` for every received datagram, then `handle_timeout(now)`;
/// 2. `poll_transmit` until it returns `None` (send the batch);
/// 3. `poll_event` until `None`, calling `read_message` on `DataReadable`;
/// 4. sleep until `poll_timeout()` or the next datagram.
///
/// `send`, `shutdown` and `abort` may come at any point; they queue work for step 2.
pub struct Endpoint {
    cfg: EndpointConfig,
    cookie_key: [u8; 32],
    tags: TagSource,
    /// Under tag steering, the core whose tag the next new association gets (round robin).
    steer_next: u32,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: u32,
    by_addr: HashMap<(IpAddr, u16, u16), AssociationHandle>,
    listening: Vec<u16>,
    timers: BinaryHeap<Reverse<(Instant, AssociationHandle)>>,
    transmit_queue: VecDeque<AssociationHandle>,
    responses: Responses,
    events: EventQueue,
    pool: BufferPool,
    stats: Stats,
}

/// Which core a new association's tag names under tag steering.
#[derive(Clone, Copy)]
enum TagOwner {
    /// This endpoint's core: associations we open, and restarts of ours.
    ThisCore,
    /// The cores in turn: new associations from a peer's INIT (spreads them).
    NextInTurn,
}

struct Slot {
    generation: u32,
    assoc: Option<Box<Association>>,
    /// Earliest deadline of this slot present in the timer heap; `NEVER` for none (8 bytes a
    /// slot less than an `Option`, issue 14).
    heap_deadline: Instant,
    queued: bool,
}

impl Endpoint {
    /// An endpoint with all its tables sized from `config`. `cookie_secret` keys the cookie MAC
    /// and the tag generator; it must be random and stay secret.
    pub fn new(config: EndpointConfig, cookie_secret: [u8; 32]) -> Self {
        config.validate();
        let n = config.associations_max as usize;
        Endpoint {
            tags: match config.tag_steering {
                Some(t) => TagSource::for_core(&cookie_secret, t.core),
                None => TagSource::new(&cookie_secret),
            },
            steer_next: config.tag_steering.map_or(0, |t| t.core),
            cookie_key: cookie_secret,
            slots: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
            live: 0,
            // Usually one key per association; multi-homed peers add a few (grows at setup only).
            by_addr: HashMap::with_capacity(2 * n),
            listening: Vec::with_capacity(LISTEN_PORTS_MAX),
            // Two entries per association: its current deadline and one stale one.
            timers: BinaryHeap::with_capacity(2 * n + 16),
            transmit_queue: VecDeque::with_capacity(n),
            responses: Responses::new(config.responses_max as usize),
            events: EventQueue::new(config.events_max as usize),
            pool: BufferPool::new(&config),
            stats: Stats::default(),
            cfg: config,
        }
    }

    /// Accept associations on `sctp_port`. At most `LISTEN_PORTS_MAX` ports.
    pub fn listen(&mut self, sctp_port: u16) {
        assert!(self.listening.len() < LISTEN_PORTS_MAX, "listen ports are bounded");
        if !self.listening.contains(&sctp_port) {
            self.listening.push(sctp_port);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.responses_dropped = self.responses.dropped;
        s.events_dropped = self.events.dropped;
        s
    }

    /// Associations in the slab (including closed ones whose terminal event is not polled yet).
    pub fn association_count(&self) -> usize {
        self.live as usize
    }

    /// Stateless replies queued.
    pub fn responses_queued(&self) -> usize {
        self.responses.queue.len()
    }

    /// Active open (§5.1 A): INIT goes out on the next `poll_transmit`.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_sctp_port: u16,
        remote_sctp_port: u16,
    ) -> Result<AssociationHandle, ConnectError> {
        if local_sctp_port == 0 || remote_sctp_port == 0 {
            return Err(ConnectError::InvalidPort);
        }
        let key = (remote.ip(), local_sctp_port, remote_sctp_port);
        if self.by_addr.contains_key(&key) {
            return Err(ConnectError::Exists);
        }
        let tag = self.local_tag(TagOwner::ThisCore);
        let tsn = self.tags.next_nonzero();
        let ports = (local_sctp_port, remote_sctp_port);
        let handle = self
            .insert(|cfg, h| Association::connect(cfg, now, h, remote, ports, tag, tsn))
            .ok_or(ConnectError::TooMany)?;
        self.by_addr.insert(key, handle);
        self.touch(handle);
        Ok(handle)
    }

    /// Queues a message. Data is copied; the call never blocks.
    pub fn send(
        &mut self,
        _now: Instant,
        assoc: AssociationHandle,
        stream: u16,
        ppid: u32,
        unordered: bool,
        data: &[u8],
    ) -> Result<(), SendError> {
        let cfg = &self.cfg;
        let a = live_assoc(&mut self.slots, assoc).ok_or(SendError::Closed)?;
        a.send(cfg, stream, ppid, unordered, data)?;
        self.touch(assoc);
        Ok(())
    }

    /// Graceful close (§9.2): queued data is delivered first.
    pub fn shutdown(&mut self, now: Instant, assoc: AssociationHandle) {
        self.with_assoc(assoc, |a, ctx| a.shutdown(ctx, now));
    }

    /// Immediate close (§9.1): ABORT with "User-Initiated Abort", queued data dropped.
    pub fn abort(&mut self, _now: Instant, assoc: AssociationHandle) {
        self.with_assoc(assoc, |a, ctx| a.abort_with(ctx, cause::USER_ABORT));
    }

    /// Calls `f` with the next received message of `assoc`; false when there is none.
    pub fn read_message(
        &mut self,
        assoc: AssociationHandle,
        f: impl FnOnce(&[u8], MessageInfo),
    ) -> bool {
        let Some(a) = slot_assoc(&mut self.slots, assoc) else {
            return false;
        };
        let Some(r) = a.pop_ready() else { return false };
        let window_update = a.window_reopened(&self.cfg);
        f(&r.buf, r.info);
        self.pool.give(r.buf);
        if window_update {
            self.touch(assoc);
        }
        true
    }

    /// Peer addresses: the packet source first, then the INIT / INIT ACK address parameters.
    pub fn remote_addresses(&self, assoc: AssociationHandle) -> &[IpAddr] {
        match self.slots.get(assoc.index()) {
            Some(s) if s.generation == assoc.generation() => {
                s.assoc.as_ref().map_or(&[], |a| &a.addresses)
            }
            _ => &[],
        }
    }

    /// The UDP address packets of `assoc` go to (peer IP and encapsulation port).
    pub fn remote(&self, assoc: AssociationHandle) -> Option<SocketAddr> {
        let s = self.slots.get(assoc.index())?;
        (s.generation == assoc.generation()).then_some(())?;
        s.assoc.as_ref().map(|a| a.remote)
    }

    /// The peer's SCTP port on `assoc` (its UDP port is in [`remote`](Self::remote)).
    pub fn remote_port(&self, assoc: AssociationHandle) -> Option<u16> {
        let s = self.slots.get(assoc.index())?;
        (s.generation == assoc.generation()).then_some(())?;
        s.assoc.as_ref().map(|a| a.remote_port)
    }

    /// Transmission state and counters of `assoc`.
    pub fn association_stats(&self, assoc: AssociationHandle) -> Option<AssociationStats> {
        let s = self.slots.get(assoc.index())?;
        (s.generation == assoc.generation()).then_some(())?;
        s.assoc.as_ref().map(|a| a.stats())
    }

    /// User bytes queued or unacknowledged on `assoc`.
    pub fn buffered_bytes(&self, assoc: AssociationHandle) -> usize {
        match self.slots.get(assoc.index()) {
            Some(s) if s.generation == assoc.generation() => {
                s.assoc.as_ref().map_or(0, |a| a.buffered_bytes())
            }
            _ => 0,
        }
    }

    /// Earliest timer deadline, or `None`. May be earlier than needed (a cancelled timer);
    /// calling `handle_timeout` then is harmless.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each live association fires at most once per call, plus the stale entries present
        // now: a bound, so a timer re-armed at `now` cannot loop forever.
        let mut budget = self.timers.len() + self.live as usize;
        while let Some(&Reverse((t, h))) = self.timers.peek() {
            if t > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(h.index()) else {
                continue;
            };
            if slot.generation != h.generation() || slot.heap_deadline != t {
                continue; // stale entry
            }
            slot.heap_deadline = NEVER;
            self.with_assoc(h, |a, ctx| a.handle_timeout(ctx, now));
        }
    }

    /// Writes the next packet into `buf` (CRC32c set); `None` when nothing is pending.
    /// `buf` must hold at least `mtu` bytes (a programmer error otherwise).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        assert!(buf.len() >= usize::from(self.cfg.mtu), "poll_transmit needs an mtu-sized buffer");
        while let Some(r) = self.responses.queue.pop_front() {
            let len = usize::from(r.len);
            if len <= buf.len() {
                buf[..len].copy_from_slice(&r.bytes[..len]);
                return Some(Transmit { remote: r.remote, len });
            }
        }
        while let Some(h) = self.transmit_queue.pop_front() {
            let slot = &mut self.slots[h.index()];
            if slot.generation != h.generation() {
                continue;
            }
            slot.queued = false;
            let Some(a) = slot.assoc.as_mut() else {
                continue;
            };
            let Some(len) = a.poll_transmit(&self.cfg, &mut self.pool, now, buf) else {
                continue;
            };
            let remote = a.remote;
            self.touch(h);
            return Some(Transmit { remote, len });
        }
        None
    }

    /// The next event. Polling a terminal event (`Closed`, `CommunicationLost`) frees the
    /// association's slot: read its remaining messages before that.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.queue.pop_front()?;
        if let Some(h) = e.terminal() {
            self.free(h);
        }
        Some(e)
    }

    /// Feeds one received SCTP packet (a UDP payload) from `remote` (IP and UDP source port).
    /// `local`, the address it arrived on, is not kept: an association has one path, and a
    /// [`Transmit`] names only the remote.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        _local: SocketAddr,
        packet: &[u8],
    ) {
        if packet.len() > PACKET_BYTES_MAX || !wire::checksum_ok(packet) {
            self.stats.packets_dropped += 1;
            return;
        }
        let Ok(hdr) = CommonHeader::parse(packet) else {
            self.stats.packets_dropped += 1;
            return;
        };
        // Every chunk must frame correctly, or nothing in the packet is trusted.
        let mut count = 0usize;
        let mut first = None;
        let mut has_abort = false;
        for c in ChunkIter::new(packet) {
            let Ok(c) = c else {
                self.stats.packets_dropped += 1;
                return;
            };
            if count == 0 {
                first = Some(c);
            }
            count += 1;
            has_abort |= c.ty == ChunkType::ABORT;
        }
        let Some(first) = first else {
            self.stats.packets_dropped += 1;
            return;
        };
        if hdr.source_port == 0 || hdr.target_port == 0 {
            self.stats.packets_dropped += 1;
            return;
        }
        let found = self.by_addr.get(&(remote.ip(), hdr.target_port, hdr.source_port)).copied();
        match first.ty {
            ChunkType::INIT => {
                // §6.10: INIT is alone in its packet; §8.5.1: with tag zero.
                if count == 1 && hdr.verification_tag == 0 {
                    self.on_init(now, remote, &hdr, first.value, found);
                } else {
                    self.stats.packets_dropped += 1;
                }
                return;
            }
            ChunkType::COOKIE_ECHO => {
                if let Some(h) = self.on_cookie_echo(now, remote, &hdr, first.value, found) {
                    self.run_chunks(now, h, packet, 1);
                }
                return;
            }
            _ => {}
        }
        let Some(h) = found else {
            self.out_of_the_blue(remote, &hdr, first.ty, has_abort);
            return;
        };
        let Some(a) = live_assoc(&mut self.slots, h) else {
            // Unreachable: `touch` unmaps an association when it closes. Drop, do not panic.
            self.stats.packets_dropped += 1;
            return;
        };
        // §8.5 and §8.5.1: the tag rules.
        let t_bit = first.flags & FLAG_T != 0;
        let tag_ok = match first.ty {
            ChunkType::ABORT | ChunkType::SHUTDOWN_COMPLETE if t_bit => {
                hdr.verification_tag == a.peer_tag
            }
            _ => hdr.verification_tag == a.local_tag,
        };
        if !tag_ok {
            self.stats.packets_dropped += 1;
            return;
        }
        // RFC 6951 §5.4: remember the peer's encapsulation port from each verified packet.
        if a.remote.ip() == remote.ip() {
            a.remote = remote;
        }
        self.run_chunks(now, h, packet, 0);
    }

    // ----- Internals -----

    fn run_chunks(&mut self, now: Instant, h: AssociationHandle, packet: &[u8], skip: usize) {
        self.with_assoc(h, |a, ctx| {
            for c in ChunkIter::new(packet).skip(skip) {
                let c = c.expect("framing was checked before dispatch");
                if a.handle_chunk(ctx, now, c) == Flow::Stop {
                    break;
                }
            }
            a.after_packet(ctx, now);
        });
    }

    /// Runs `f` on a live association with the endpoint's shared pieces, then reschedules it.
    fn with_assoc(&mut self, h: AssociationHandle, f: impl FnOnce(&mut Association, &mut Ctx<'_>)) {
        let Some(a) = live_assoc(&mut self.slots, h) else {
            return;
        };
        let mut ctx = Ctx {
            cfg: &self.cfg,
            events: &mut self.events,
            pool: &mut self.pool,
            responses: &mut self.responses,
        };
        f(a, &mut ctx);
        self.touch(h);
    }

    /// A fresh local verification tag. Under tag steering it names `owner`'s core; otherwise
    /// it is plain random.
    fn local_tag(&mut self, owner: TagOwner) -> u32 {
        let Some(steer) = self.cfg.tag_steering else { return self.tags.next_nonzero() };
        let core = match owner {
            TagOwner::ThisCore => steer.core,
            TagOwner::NextInTurn => {
                let next = self.steer_next;
                self.steer_next = (next + 1) % steer.cores;
                next
            }
        };
        self.tags.next_steered(steer.cores, core)
    }

    /// After any change: queue for transmit, register the next deadline, unmap when closed.
    fn touch(&mut self, h: AssociationHandle) {
        let Some(slot) = self.slots.get_mut(h.index()) else {
            return;
        };
        if slot.generation != h.generation() {
            return;
        }
        let Some(a) = slot.assoc.as_mut() else { return };
        let (lport, rport) = (a.local_port, a.remote_port);
        if a.state == State::Closed {
            for ip in a.addresses.iter().chain([&a.remote.ip()]) {
                if self.by_addr.get(&(*ip, lport, rport)) == Some(&h) {
                    self.by_addr.remove(&(*ip, lport, rport));
                }
            }
            return;
        }
        if a.addresses_mapped != a.addresses.len() {
            // Every peer address finds this association, so a multi-homed peer (a wildcard-bound
            // Linux server) sending from a second address is not out of the blue. An address
            // already used by another association with the same ports stays with that one.
            for ip in &a.addresses {
                self.by_addr.entry((*ip, lport, rport)).or_insert(h);
            }
            a.addresses_mapped = a.addresses.len();
        }
        if a.wants_transmit() && !slot.queued {
            slot.queued = true;
            self.transmit_queue.push_back(h);
        }
        if let Some(next) = a.next_timeout() {
            // `next` is never NEVER, so a slot without a heap entry always gets one.
            if slot.heap_deadline > next {
                slot.heap_deadline = next;
                if self.timers.len() == self.timers.capacity() {
                    self.compact_timers();
                }
                self.timers.push(Reverse((next, h)));
            }
        }
    }

    /// Rebuilds the heap from live deadlines, dropping stale entries. Runs only when the heap
    /// reaches its preallocated capacity, so it never grows past it in practice.
    fn compact_timers(&mut self) {
        self.timers.clear();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            slot.heap_deadline = NEVER;
            let Some(a) = slot.assoc.as_ref() else {
                continue;
            };
            if let Some(next) = a.next_timeout() {
                slot.heap_deadline = next;
                let h = AssociationHandle::new(i as u32, slot.generation);
                self.timers.push(Reverse((next, h)));
            }
        }
    }

    fn insert(
        &mut self,
        make: impl FnOnce(&EndpointConfig, AssociationHandle) -> Association,
    ) -> Option<AssociationHandle> {
        if self.live >= self.cfg.associations_max {
            return None;
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    assoc: None,
                    heap_deadline: NEVER,
                    queued: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        assert!(slot.assoc.is_none());
        assert!(!slot.queued, "a free slot is in no transmit turn");
        let h = AssociationHandle::new(index, slot.generation);
        slot.assoc = Some(Box::new(make(&self.cfg, h)));
        slot.heap_deadline = NEVER;
        self.live += 1;
        Some(h)
    }

    fn free(&mut self, h: AssociationHandle) {
        let Some(slot) = self.slots.get_mut(h.index()) else {
            return;
        };
        if slot.generation != h.generation() {
            return;
        }
        let Some(mut a) = slot.assoc.take() else {
            return;
        };
        assert_eq!(a.state, State::Closed, "only closed associations are freed");
        a.recycle_buffers(&mut self.pool);
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        slot.heap_deadline = NEVER;
        // An association freed while it waits in `transmit_queue` leaves its stale handle
        // there, which `poll_transmit` skips by generation without touching the slot. Left set,
        // `queued` would keep every later occupant of the slot out of the queue: it would
        // never send (RELIABILITY.md bug 5: COOKIE ECHOs never answered).
        slot.queued = false;
        self.live -= 1;
        self.free.push(h.index() as u32);
    }

    fn listens(&self, port: u16) -> bool {
        self.listening.contains(&port)
    }

    /// INIT (§5.1 B, §5.2.1, §5.2.2): answered with an INIT ACK and a cookie, keeping no state.
    fn on_init(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        hdr: &CommonHeader,
        value: &[u8],
        found: Option<AssociationHandle>,
    ) {
        let (lport, rport) = (hdr.target_port, hdr.source_port);
        let Ok(init) = Init::parse(value) else {
            self.stats.packets_dropped += 1;
            return;
        };
        if init.initiate_tag == 0 {
            // §3.3.2: "the receiver MUST silently discard the packet".
            self.stats.packets_dropped += 1;
            return;
        }
        let tag = init.initiate_tag;
        if found.is_none() && !self.listens(lport) {
            // §8.4 (3): ABORT with the INIT's Initiate Tag, T bit clear.
            self.responses.abort(remote, lport, rport, tag, 0);
            return;
        }
        if init.outbound_streams == 0 || init.inbound_streams == 0 {
            self.responses.abort(remote, lport, rport, tag, cause::INVALID_MANDATORY_PARAMETER);
            return;
        }
        let mut addrs = [None; ADDRESSES_MAX];
        let mut report = ReportBuf::default();
        match parse_init_params(init.params, &mut addrs, &mut report) {
            Ok(_) => {}
            Err(InitRefusal::HostName) => {
                self.responses.abort(remote, lport, rport, tag, cause::UNRESOLVABLE_ADDRESS);
                return;
            }
            Err(InitRefusal::Malformed) => {
                self.stats.packets_dropped += 1;
                return;
            }
        }
        let (local_tag, local_tsn, ties) = match found.and_then(|h| slot_assoc(&mut self.slots, h))
        {
            None => {
                // A new association: under steering its tag names the next core in turn, which
                // the COOKIE ECHO then reaches (see `TagSteering`).
                let t = self.local_tag(TagOwner::NextInTurn);
                (t, self.tags.next_nonzero(), (0, 0))
            }
            Some(a) => match a.state {
                State::CookieWait | State::CookieEchoed => {
                    let (t, s) = a.init_params();
                    (t, s, a.tie_tags())
                }
                State::ShutdownAckSent => {
                    a.resend_shutdown_ack();
                    let h = a.handle;
                    self.touch(h);
                    return;
                }
                _ => {
                    // A restart of an association of ours: it stays on this core.
                    let ties = a.tie_tags();
                    let t = self.local_tag(TagOwner::ThisCore);
                    (t, self.tags.next_nonzero(), ties)
                }
            },
        };
        let state = CookieState {
            created: now,
            local_tag,
            peer_tag: tag,
            local_tsn,
            peer_tsn: init.initial_tsn,
            peer_rwnd: init.a_rwnd,
            out_streams: self.cfg.num_ostreams.min(init.inbound_streams),
            in_streams: self.cfg.max_instreams.min(init.outbound_streams),
            local_port: lport,
            remote_port: rport,
            local_tie_tag: ties.0,
            peer_tie_tag: ties.1,
            addresses: addrs,
        };
        let mut cookie = [0u8; COOKIE_LEN_MAX];
        let cookie_len = state.seal(&self.cookie_key, &mut cookie);
        let ack = Init {
            initiate_tag: local_tag,
            a_rwnd: self.cfg.rwnd,
            outbound_streams: self.cfg.num_ostreams,
            inbound_streams: self.cfg.max_instreams,
            initial_tsn: local_tsn,
            params: &[],
        };
        let sent = self.responses.push(remote, lport, rport, tag, |w| {
            let s = w.begin_chunk(ChunkType::INIT_ACK, 0);
            ack.emit_fixed(w);
            let p = w.begin_tlv(param::STATE_COOKIE);
            w.put_slice(&cookie[..cookie_len]);
            w.end_tlv(p);
            for p in wire::ParamIter::new(&report.bytes[..report.len]).map_while(Result::ok) {
                let u = w.begin_tlv(param::UNRECOGNIZED);
                w.put_slice(p.raw);
                w.end_tlv(u);
            }
            w.end_chunk(s);
        });
        if sent {
            self.stats.init_acks_sent += 1;
        }
    }

    /// COOKIE ECHO (§5.1.5, §5.2.4). Returns the association to process bundled chunks with.
    fn on_cookie_echo(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        hdr: &CommonHeader,
        value: &[u8],
        found: Option<AssociationHandle>,
    ) -> Option<AssociationHandle> {
        let (lport, rport) = (hdr.target_port, hdr.source_port);
        let Some(c) = CookieState::open(&self.cookie_key, value) else {
            self.stats.cookies_rejected += 1;
            return None;
        };
        if c.local_port != lport || c.remote_port != rport || hdr.verification_tag != c.local_tag {
            self.stats.cookies_rejected += 1;
            return None;
        }
        let age = now.saturating_since(c.created);
        let stale = age > self.cfg.cookie_lifetime || c.created > now;
        let Some(h) = found else {
            if stale {
                self.stale_cookie(remote, lport, rport, c.peer_tag, age);
                return None;
            }
            if !self.listens(lport) {
                self.responses.abort(remote, lport, rport, c.peer_tag, 0);
                return None;
            }
            let Some(h) = self.insert(|cfg, h| Association::from_cookie(cfg, now, h, remote, &c))
            else {
                self.responses.abort(remote, lport, rport, c.peer_tag, cause::OUT_OF_RESOURCE);
                return None;
            };
            self.by_addr.insert((remote.ip(), lport, rport), h);
            self.events.push(Event::Connected(h));
            self.with_assoc(h, |a, ctx| a.arm_heartbeat(ctx.cfg, now));
            return Some(h);
        };
        let a = live_assoc(&mut self.slots, h)?;
        let local_match = c.local_tag == a.local_tag;
        let peer_match = c.peer_tag == a.peer_tag;
        if stale && !(local_match && peer_match) {
            self.stale_cookie(remote, lport, rport, c.peer_tag, age);
            return None;
        }
        // An authenticated cookie for this association: a restarted peer may come from a new
        // UDP port (RFC 6951 §5.4), so replies follow it.
        if a.remote.ip() == remote.ip() {
            a.remote = remote;
        }
        let ties_match = c.local_tie_tag == a.local_tag && c.peer_tie_tag == a.peer_tag;
        if !local_match && !peer_match && ties_match && c.local_tie_tag != 0 {
            // Table 12 (A): the peer restarted.
            if a.state == State::ShutdownAckSent {
                a.cookie_while_shutting_down(&mut self.pool);
                self.touch(h);
                return None;
            }
            self.with_assoc(h, |a, ctx| {
                a.restart_from_cookie(ctx, now, &c);
                ctx.events.push(Event::Restarted(a.handle));
            });
            return Some(h);
        }
        if local_match {
            // Table 12 (B) and (D): collision or duplicate.
            self.with_assoc(h, |a, ctx| a.collide(ctx, now, &c));
            return Some(h);
        }
        // Table 12 (C) and every case not in the table: silently discard.
        self.stats.cookies_rejected += 1;
        None
    }

    /// §5.2.6 / §5.2.4 step 3: ERROR "Stale Cookie" with the staleness in µs.
    fn stale_cookie(
        &mut self,
        remote: SocketAddr,
        lport: u16,
        rport: u16,
        tag: u32,
        age: core::time::Duration,
    ) {
        self.stats.cookies_rejected += 1;
        let staleness = u32::try_from(age.saturating_sub(self.cfg.cookie_lifetime).as_micros())
            .unwrap_or(u32::MAX);
        self.responses.push(remote, lport, rport, tag, |w| {
            let s = w.begin_chunk(ChunkType::ERROR, 0);
            let p = w.begin_tlv(cause::STALE_COOKIE);
            w.put_u32(staleness);
            w.end_tlv(p);
            w.end_chunk(s);
        });
    }

    /// §8.4: a packet that belongs to no association.
    fn out_of_the_blue(
        &mut self,
        remote: SocketAddr,
        hdr: &CommonHeader,
        first: ChunkType,
        has_abort: bool,
    ) {
        let (lport, rport, tag) = (hdr.target_port, hdr.source_port, hdr.verification_tag);
        self.stats.packets_dropped += 1;
        if has_abort {
            return; // (2)
        }
        match first {
            ChunkType::SHUTDOWN_ACK => {
                // (5): SHUTDOWN COMPLETE with the T bit, reflecting the tag.
                self.responses.push(remote, lport, rport, tag, |w| {
                    let s = w.begin_chunk(ChunkType::SHUTDOWN_COMPLETE, FLAG_T);
                    w.end_chunk(s);
                });
            }
            // (6), (7): discard.
            ChunkType::SHUTDOWN_COMPLETE | ChunkType::COOKIE_ACK | ChunkType::ERROR => {}
            _ => {
                // (8): ABORT with the T bit, reflecting the tag.
                self.responses.push(remote, lport, rport, tag, |w| {
                    let s = w.begin_chunk(ChunkType::ABORT, FLAG_T);
                    w.end_chunk(s);
                });
            }
        }
    }
}

/// Most ports one endpoint listens on.
pub const LISTEN_PORTS_MAX: usize = 64;

fn live_assoc(slots: &mut [Slot], h: AssociationHandle) -> Option<&mut Association> {
    let a = slot_assoc(slots, h)?;
    (a.state != State::Closed).then_some(a)
}

fn slot_assoc(slots: &mut [Slot], h: AssociationHandle) -> Option<&mut Association> {
    let slot = slots.get_mut(h.index())?;
    if slot.generation != h.generation() {
        return None;
    }
    slot.assoc.as_deref_mut()
}

/// Events waiting for the caller; non-terminal ones beyond the bound are dropped and counted.
pub(crate) struct EventQueue {
    queue: VecDeque<Event>,
    max: usize,
    dropped: u64,
}

impl EventQueue {
    fn new(max: usize) -> Self {
        EventQueue { queue: VecDeque::with_capacity(max.min(4096)), max, dropped: 0 }
    }

    pub(crate) fn push(&mut self, e: Event) {
        // Terminal events always go in: the slot is freed only when one is polled, and there is
        // at most one per association, so they are bounded by `associations_max`.
        if self.queue.len() >= self.max && e.terminal().is_none() {
            self.dropped += 1;
            return;
        }
        self.queue.push_back(e);
    }
}

/// A stateless reply built at once and queued as bytes.
struct Response {
    remote: SocketAddr,
    len: u16,
    bytes: [u8; RESPONSE_BYTES_MAX],
}

/// The longest stateless reply: an INIT ACK with the largest cookie and reported parameters.
// Each reported parameter gains a 4-byte Unrecognized Parameter header: at most double.
const RESPONSE_BYTES_MAX: usize =
    12 + 4 + 16 + 4 + COOKIE_LEN_MAX + 2 * crate::assoc::REPORT_BYTES_MAX;
const _: () = assert!(RESPONSE_BYTES_MAX <= crate::config::MTU_MIN as usize);

/// Replies that need no association: INIT ACK, OOTB ABORT, SHUTDOWN COMPLETE, stale cookie.
pub(crate) struct Responses {
    queue: VecDeque<Response>,
    max: usize,
    dropped: u64,
}

impl Responses {
    fn new(max: usize) -> Self {
        Responses { queue: VecDeque::with_capacity(max), max, dropped: 0 }
    }

    /// Builds a packet with `body` as its chunks; false when the queue is full (the reply is
    /// dropped: under an INIT flood we answer what we can and keep memory bounded).
    fn push(
        &mut self,
        remote: SocketAddr,
        lport: u16,
        rport: u16,
        tag: u32,
        body: impl FnOnce(&mut Writer<'_>),
    ) -> bool {
        if self.queue.len() >= self.max {
            self.dropped += 1;
            return false;
        }
        let mut r = Response { remote, len: 0, bytes: [0; RESPONSE_BYTES_MAX] };
        let mut w = Writer::new(&mut r.bytes, RESPONSE_BYTES_MAX);
        CommonHeader { source_port: lport, target_port: rport, verification_tag: tag }.emit(&mut w);
        body(&mut w);
        let n = w.len();
        wire::seal(&mut r.bytes[..n]);
        r.len = n as u16;
        self.queue.push_back(r);
        true
    }

    /// ABORT with the T bit clear and an optional error cause (`code` 0: none).
    pub(crate) fn abort(
        &mut self,
        remote: SocketAddr,
        lport: u16,
        rport: u16,
        tag: u32,
        code: u16,
    ) {
        self.push(remote, lport, rport, tag, |w| {
            let s = w.begin_chunk(ChunkType::ABORT, 0);
            if code != 0 {
                let p = w.begin_tlv(code);
                w.end_tlv(p);
            }
            w.end_chunk(s);
        });
    }

    /// SHUTDOWN COMPLETE with the T bit clear (§9.2).
    pub(crate) fn shutdown_complete(
        &mut self,
        remote: SocketAddr,
        lport: u16,
        rport: u16,
        tag: u32,
    ) {
        self.push(remote, lport, rport, tag, |w| {
            let s = w.begin_chunk(ChunkType::SHUTDOWN_COMPLETE, 0);
            w.end_chunk(s);
        });
    }
}

/// Reusable byte buffers for received chunks and messages, so the steady state does not
/// allocate. Small buffers hold one chunk; large ones hold reassembled messages.
pub(crate) struct BufferPool {
    small: Vec<Vec<u8>>,
    large: Vec<Vec<u8>>,
    small_capacity: usize,
}

/// Free small buffers kept; beyond this they are released.
const POOL_SMALL_MAX: usize = 4096;
/// Free large (reassembly) buffers kept.
const POOL_LARGE_MAX: usize = 64;

impl BufferPool {
    fn new(cfg: &EndpointConfig) -> Self {
        BufferPool {
            small: Vec::with_capacity(POOL_SMALL_MAX),
            large: Vec::with_capacity(POOL_LARGE_MAX),
            small_capacity: usize::from(cfg.mtu),
        }
    }

    /// An empty buffer with room for at least `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Vec<u8> {
        let from = if len <= self.small_capacity { &mut self.small } else { &mut self.large };
        match from.pop() {
            Some(mut v) => {
                v.clear();
                v.reserve(len);
                v
            }
            None => Vec::with_capacity(len.max(self.small_capacity)),
        }
    }

    /// Returns a buffer for reuse.
    pub(crate) fn give(&mut self, v: Vec<u8>) {
        if v.capacity() <= self.small_capacity {
            if self.small.len() < POOL_SMALL_MAX {
                self.small.push(v);
            }
        } else if self.large.len() < POOL_LARGE_MAX {
            self.large.push(v);
        }
    }
}

/// The padded length of a TLV with `value` bytes (for callers sizing replies).
#[allow(dead_code)]
const fn tlv_len(value: usize) -> usize {
    padded(4 + value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a DATA chunk's 32-bit ring offset stays right when the absolute offset crosses
    // 2^32 (4 GiB sent on one association). Method: the sender's ring origin moved to just below
    // 2^32, then whole and fragmented messages sent across it and compared byte for byte.
    #[test]
    fn send_ring_offsets_cross_four_gib() {
        let (a_addr, b_addr) = ("10.0.0.1:9899".parse().unwrap(), "10.0.0.2:9899".parse().unwrap());
        let mut a = Endpoint::new(EndpointConfig::default(), [1; 32]);
        let mut b = Endpoint::new(EndpointConfig::default(), [2; 32]);
        b.listen(5000);
        let mut now = Instant(1_000_000);
        let ha = a.connect(now, b_addr, 4000, 5000).unwrap();
        let mut buf = [0u8; 1500];
        let mut pump = |now: Instant, a: &mut Endpoint, b: &mut Endpoint| {
            for _ in 0..4 {
                while let Some(t) = a.poll_transmit(now, &mut buf) {
                    b.handle_packet(now, a_addr, b_addr, &buf[..t.len]);
                }
                while let Some(t) = b.poll_transmit(now, &mut buf) {
                    a.handle_packet(now, b_addr, a_addr, &buf[..t.len]);
                }
            }
        };
        pump(now, &mut a, &mut b);
        assert_eq!(a.poll_event(), Some(Event::Connected(ha)));
        a.slots[ha.index()].assoc.as_mut().unwrap().rebase_tx_bytes(u64::from(u32::MAX) - 2_500);
        let mut sent = 0u64;
        for i in 0..12u32 {
            let len = [700, 3_000, 1][i as usize % 3];
            let message: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
            a.send(now, ha, 0, 11, false, &message).unwrap();
            sent += len as u64;
            pump(now, &mut a, &mut b);
            let mut got = Vec::new();
            while let Some(e) = b.poll_event() {
                if let Event::DataReadable(hb) = e {
                    while b.read_message(hb, |m, _| got.push(m.to_vec())) {}
                }
            }
            assert_eq!(got, vec![message], "message {i}");
            now = Instant(now.0 + 250_000); // past the delayed SACK, so the ring is trimmed
            a.handle_timeout(now);
            b.handle_timeout(now);
            pump(now, &mut a, &mut b);
        }
        assert!(sent > 2_500, "the offsets crossed 2^32");
        assert_eq!(a.buffered_bytes(ha), 0, "every byte acknowledged and trimmed");
    }
}
