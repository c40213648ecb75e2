//! One association (the TCB of RFC 9260): state, send queue, receive tracking, timers.
//!
//! The endpoint routes packets here after the verification-tag check and handles INIT and
//! COOKIE ECHO itself (they may arrive before any association exists). All buffers here grow up
//! to their configured bound once and are then reused, so the steady state does not allocate.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;

use crate::config::EndpointConfig;
use crate::cookie::{CookieState, ADDRESSES_MAX};
use crate::endpoint::{BufferPool, Event, EventQueue, MessageInfo, Responses};
use crate::time::{Instant, NEVER};
use crate::wire::{
    self, cause, data_flag, padded, param, Chunk, ChunkType, CommonHeader, DataHeader, Init, Sack,
    Writer, DATA_HEADER_LEN, HEADER_LEN, SACK_HEADER_LEN,
};
use crate::AssociationHandle;

/// Association states (§4), in the RFC's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    CookieWait,
    CookieEchoed,
    Established,
    ShutdownPending,
    ShutdownSent,
    ShutdownReceived,
    ShutdownAckSent,
    Closed,
}

/// The association's timers, an index into its fixed timer table (STYLE §3).
#[derive(Debug, PartialEq, Eq)]
enum Timer {
    T1Init = 0,
    T1Cookie = 1,
    T2Shutdown = 2,
    T3Rtx = 3,
    Heartbeat = 4,
    DelayedAck = 5,
}

const TIMER_COUNT: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    /// Queued, never sent.
    Unsent,
    /// Sent and counted in flight.
    InFlight,
    /// Waiting to be sent again (T3 or fast retransmit); not counted in flight.
    Retransmit,
    /// Acknowledged by a gap block; kept until the cumulative ack passes it.
    GapAcked,
}

/// One DATA chunk we own until the peer's cumulative ack passes it. Its bytes live in the
/// association's byte ring at `offset` (absolute, so ring trimming does not renumber). 32
/// bytes, so a send queue's first allocation of 4 takes 128 (issue 14).
#[derive(Clone, Copy, Debug)]
struct TxChunk {
    tsn: u32,
    stream: u16,
    ssn: u16,
    ppid: u32,
    flags: u8,
    /// The low 32 bits of the absolute offset. Offsets are only subtracted from each other
    /// (wrapping), which is exact because the ring holds at most `send_buffer_bytes_max`, a
    /// `u32`, bytes.
    offset: u32,
    len: u32,
    state: TxState,
    sent_at: Instant,
    /// Transmissions, saturating: only whether it is 0, 1 or more matters (§6.3.1 C5).
    sent_count: u8,
    /// Miss indications (§7.2.4); `FAST_DONE` once fast-retransmitted.
    misses: u8,
}

const FAST_DONE: u8 = u8::MAX;

/// One received DATA chunk waiting for reassembly or for its turn in stream order.
#[derive(Debug)]
struct RxChunk {
    tsn: u32,
    stream: u16,
    ssn: u16,
    ppid: u32,
    flags: u8,
    buf: Vec<u8>,
}

/// A complete message waiting for the user to read it.
#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) info: MessageInfo,
    pub(crate) buf: Vec<u8>,
}

/// Control chunks waiting to go out. Fixed-size storage so queuing them never allocates.
#[derive(Debug, Default)]
struct Control {
    init: bool,
    cookie_echo: bool,
    cookie_ack: bool,
    shutdown: bool,
    shutdown_ack: bool,
    heartbeat: bool,
    sack_now: bool,
}

/// Heartbeat Info we echo back, at most this long; Linux sends 48 bytes. Held in a pooled
/// buffer from the HEARTBEAT's arrival until the HEARTBEAT ACK is written.
const HEARTBEAT_INFO_MAX: usize = 256;
/// Error causes queued for one ERROR chunk, at most this many bytes.
const ERROR_BYTES_MAX: usize = 256;
/// TSNs tracked above the cumulative TSN; a DATA chunk further ahead is dropped.
pub(crate) const RX_TSN_WINDOW: u32 = 4096;
const RX_BITMAP_WORDS: usize = (RX_TSN_WINDOW / 64) as usize;
type RxBitmap = [u64; RX_BITMAP_WORDS];
/// Received chunks plus unread messages held at once. Each holds a pooled buffer of at least
/// `mtu` bytes, so this bounds memory when a peer sends tiny messages, which the byte window
/// alone does not: 1024 × 1200 B ≈ 1.2 MiB per association at worst.
const RX_HELD_MAX: usize = 1024;
/// DATA chunks queued or unacknowledged per association (about 40 B each): bounds the send
/// queue's metadata when the user sends tiny messages.
const TX_CHUNKS_MAX: usize = 4096;
/// Duplicate TSNs reported in one SACK.
const DUP_TSNS_MAX: usize = 16;
/// Gap blocks reported in one SACK at most; the packet's room may lower it.
const GAP_BLOCKS_MAX: usize = 64;
/// Room kept free in each DATA-carrying packet for a bundled SACK with a few gap blocks.
const SACK_RESERVE: usize = SACK_HEADER_LEN + 4 * 4;

/// The association.
#[derive(Debug)]
pub(crate) struct Association {
    pub(crate) handle: AssociationHandle,
    pub(crate) state: State,
    pub(crate) local_port: u16,
    pub(crate) remote_port: u16,
    /// Primary path: peer IP and its UDP encapsulation port (RFC 6951 §5.4).
    pub(crate) remote: SocketAddr,
    /// Peer addresses: the packet source first, then INIT/INIT ACK address parameters.
    pub(crate) addresses: Vec<IpAddr>,
    /// How many of `addresses` the endpoint has put in its lookup table.
    pub(crate) addresses_mapped: usize,
    pub(crate) local_tag: u32,
    pub(crate) peer_tag: u32,
    pub(crate) local_tie_tag: u32,
    pub(crate) peer_tie_tag: u32,
    /// Deadlines by `Timer`; `NEVER` when stopped (8 bytes a timer where `Option<Instant>`
    /// takes 16, issue 14).
    timers: [Instant; TIMER_COUNT],
    ctl: Control,
    /// The Heartbeat Info to echo while a HEARTBEAT ACK is queued; otherwise empty, holding no
    /// buffer (a pooled one, given back once written: 2 × 256 bytes inline cost every idle
    /// association that much, issue 14).
    heartbeat_ack: Vec<u8>,
    /// Error causes for the next ERROR chunk while any are queued; a pooled buffer likewise.
    errors: Vec<u8>,
    /// The peer's cookie to echo, while in COOKIE-ECHOED.
    cookie: Vec<u8>,
    init_retransmits: u32,
    // Send side.
    initial_tsn: u32,
    next_tsn: u32,
    /// Highest TSN the peer acknowledged cumulatively.
    acked_tsn: u32,
    tx: VecDeque<TxChunk>,
    tx_bytes: VecDeque<u8>,
    tx_bytes_base: u64,
    /// Index into `tx` of the first `Unsent` chunk.
    tx_unsent: usize,
    tx_retransmit_count: usize,
    out_ssn: Vec<u16>,
    out_streams: u16,
    in_flight: u32,
    peer_rwnd: u32,
    cwnd: u32,
    ssthresh: u32,
    partial_bytes_acked: u32,
    fast_recovery_exit: Option<u32>,
    fast_retransmit_now: bool,
    counters: Counters,
    /// The last SACK advertised less than one packet of window.
    peer_window_closed: bool,
    /// A SACK arrived since the last T3 expiry.
    sack_since_t3: bool,
    /// Only a DATA chunk first sent at or after this time may give an RTT sample. Moved to the
    /// time of each sample (§6.3.1 C4: at most one per round trip) and of each retransmission
    /// (C5: no sample from a chunk sent before a retransmission of it or of a lower TSN).
    rtt_gate: Instant,
    srtt_us: Option<u64>,
    rttvar_us: u64,
    rto: Duration,
    error_count: u32,
    path_error_count: u32,
    pub(crate) path_active: bool,
    heartbeat_nonce: u64,
    heartbeat_outstanding: bool,
    last_sent: Instant,
    // Receive side.
    /// Cumulative TSN received.
    rx_cum_tsn: u32,
    rx_highest_tsn: u32,
    /// TSNs received above `rx_cum_tsn`, a ring of `RX_TSN_WINDOW` bits indexed by TSN.
    /// Allocated when a TSN first arrives out of order and then kept, so loss and reordering
    /// never allocate again; in order, only `rx_cum_tsn` moves. 512 bytes inline cost every
    /// association that much, though most never see a gap (issue 14).
    rx_bitmap: Option<Box<RxBitmap>>,
    /// Duplicate TSNs for the next SACK, big-endian as they go on the wire, at most
    /// DUP_TSNS_MAX: a pooled buffer while any are queued, else empty and unallocated (72
    /// bytes inline cost every association that much, issue 14).
    dup_tsns: Vec<u8>,
    rx: Vec<RxChunk>,
    rx_bytes: u32,
    in_ssn: Vec<u16>,
    in_streams: u16,
    pub(crate) ready: VecDeque<Ready>,
    readable_signalled: bool,
    data_packets_unacked: u32,
    /// Set by DATA in the packet being processed; counted once per packet in `after_packet`.
    data_in_packet: bool,
    /// Messages `on_data` put straight on `ready` in the packet being processed (at most
    /// RX_HELD_MAX); `deliver` announces them, or `close` drops them as it drops `rx`.
    ready_in_packet: u16,
    last_a_rwnd: u32,
    /// Set when the association ended and its terminal event is queued.
    pub(crate) terminal_queued: bool,
}

/// What the endpoint should do after a chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Borrowed endpoint pieces an association works with.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a EndpointConfig,
    pub(crate) events: &'a mut EventQueue,
    pub(crate) pool: &'a mut BufferPool,
    pub(crate) responses: &'a mut Responses,
}

impl Association {
    /// An active open: CLOSED → COOKIE-WAIT, INIT queued, T1-init running (§5.1 A).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect(
        cfg: &EndpointConfig,
        now: Instant,
        handle: AssociationHandle,
        remote: SocketAddr,
        ports: (u16, u16),
        local_tag: u32,
        local_tsn: u32,
    ) -> Self {
        let mut a = Association::blank(cfg, handle, remote, ports, local_tag, local_tsn);
        a.ctl.init = true;
        a.start(Timer::T1Init, now);
        a
    }

    /// A passive open from a valid cookie: straight to ESTABLISHED, COOKIE ACK queued (§5.1 D).
    pub(crate) fn from_cookie(
        cfg: &EndpointConfig,
        now: Instant,
        handle: AssociationHandle,
        remote: SocketAddr,
        c: &CookieState,
    ) -> Self {
        let ports = (c.local_port, c.remote_port);
        let mut a = Association::blank(cfg, handle, remote, ports, c.local_tag, c.local_tsn);
        a.adopt_cookie(cfg, now, c);
        a.ctl.cookie_ack = true;
        a
    }

    fn blank(
        cfg: &EndpointConfig,
        handle: AssociationHandle,
        remote: SocketAddr,
        ports: (u16, u16),
        local_tag: u32,
        local_tsn: u32,
    ) -> Self {
        assert_ne!(local_tag, 0, "§5.3.1: tags are never zero");
        let mtu = u32::from(cfg.mtu);
        // Sized to the peer's addresses at setup (`adopt_addresses`), not to ADDRESSES_MAX + 1:
        // most peers have one, and 9 × 17 bytes per association add up (issue 14).
        let addresses = vec![remote.ip()];
        Association {
            handle,
            state: State::CookieWait,
            local_port: ports.0,
            remote_port: ports.1,
            remote,
            addresses,
            addresses_mapped: 0,
            local_tag,
            peer_tag: 0,
            local_tie_tag: 0,
            peer_tie_tag: 0,
            timers: [NEVER; TIMER_COUNT],
            ctl: Control::default(),
            heartbeat_ack: Vec::new(),
            errors: Vec::new(),
            cookie: Vec::new(),
            init_retransmits: 0,
            initial_tsn: local_tsn,
            next_tsn: local_tsn,
            acked_tsn: local_tsn.wrapping_sub(1),
            tx: VecDeque::new(),
            tx_bytes: VecDeque::new(),
            tx_bytes_base: 0,
            tx_unsent: 0,
            tx_retransmit_count: 0,
            out_ssn: Vec::new(),
            out_streams: cfg.num_ostreams,
            in_flight: 0,
            peer_rwnd: 0,
            // §7.2.1: min(4*MTU, max(2*MTU, 4380)).
            cwnd: (4 * mtu).min((2 * mtu).max(4380)),
            ssthresh: u32::MAX,
            partial_bytes_acked: 0,
            fast_recovery_exit: None,
            fast_retransmit_now: false,
            counters: Counters::default(),
            peer_window_closed: false,
            sack_since_t3: false,
            rtt_gate: Instant(0),
            srtt_us: None,
            rttvar_us: 0,
            rto: cfg.rto_initial,
            error_count: 0,
            path_error_count: 0,
            path_active: true,
            heartbeat_nonce: u64::from(local_tag) << 32,
            heartbeat_outstanding: false,
            last_sent: Instant(0),
            rx_cum_tsn: 0,
            rx_highest_tsn: 0,
            rx_bitmap: None,
            dup_tsns: Vec::new(),
            rx: Vec::new(),
            rx_bytes: 0,
            in_ssn: Vec::new(),
            in_streams: cfg.max_instreams,
            ready: VecDeque::new(),
            readable_signalled: false,
            data_packets_unacked: 0,
            data_in_packet: false,
            ready_in_packet: 0,
            last_a_rwnd: cfg.rwnd,
            terminal_queued: false,
        }
    }

    /// Takes the peer's parameters from a cookie and enters ESTABLISHED.
    fn adopt_cookie(&mut self, cfg: &EndpointConfig, now: Instant, c: &CookieState) {
        self.peer_tag = c.peer_tag;
        self.local_tie_tag = 0;
        self.peer_tie_tag = 0;
        self.addresses.truncate(1);
        self.addresses_mapped = 0;
        self.adopt_addresses(&c.addresses);
        self.set_peer(cfg, c.peer_tsn, c.peer_rwnd, c.out_streams, c.in_streams);
        self.establish(now);
    }

    /// Adds the INIT / INIT ACK address parameters not yet known; the list keeps no spare room.
    fn adopt_addresses(&mut self, addrs: &[Option<IpAddr>; ADDRESSES_MAX]) {
        for a in addrs.iter().flatten() {
            if !self.addresses.contains(a) {
                self.addresses.push(*a);
            }
        }
        self.addresses.shrink_to_fit();
    }

    /// Sizes the per-stream tables and the receive tracking once the peer is known.
    fn set_peer(&mut self, cfg: &EndpointConfig, peer_tsn: u32, rwnd: u32, os: u16, is: u16) {
        assert!(os > 0 && is > 0, "zero streams are rejected when parsing");
        self.out_streams = os;
        self.in_streams = is;
        // Keep SSNs already given to messages queued before the association came up.
        self.out_ssn.resize(usize::from(os), 0);
        self.in_ssn.clear();
        self.in_ssn.resize(usize::from(is), 0);
        self.peer_rwnd = rwnd;
        // §7.2.1: the initial ssthresh MAY be arbitrarily high; use the peer's window.
        self.ssthresh = rwnd.max(4 * u32::from(cfg.mtu));
        self.rx_cum_tsn = peer_tsn.wrapping_sub(1);
        self.rx_highest_tsn = self.rx_cum_tsn;
        if let Some(b) = &mut self.rx_bitmap {
            b.fill(0);
        }
    }

    fn establish(&mut self, now: Instant) {
        self.state = State::Established;
        self.stop(Timer::T1Init);
        self.stop(Timer::T1Cookie);
        self.init_retransmits = 0;
        self.cookie = Vec::new();
        self.last_sent = now;
    }

    /// INIT collision, case B/D in COOKIE-WAIT or COOKIE-ECHOED, or restart (case A): the
    /// association (re)starts from the cookie's parameters (§5.2.4).
    pub(crate) fn restart_from_cookie(&mut self, ctx: &mut Ctx<'_>, now: Instant, c: &CookieState) {
        let fresh = Association::blank(
            ctx.cfg,
            self.handle,
            self.remote,
            (c.local_port, c.remote_port),
            c.local_tag,
            c.local_tsn,
        );
        let unacked = self.tx.iter().filter(|c| c.flags & data_flag::END != 0).count();
        if unacked > 0 {
            // The peer lost its state: what it had not acknowledged is gone.
            let e = Event::SendFailed { assoc: self.handle, messages: unacked as u32 };
            ctx.events.push(e);
        }
        self.recycle_buffers(ctx.pool);
        *self = fresh;
        self.adopt_cookie(ctx.cfg, now, c);
        self.ctl.cookie_ack = true;
        self.arm_heartbeat(ctx.cfg, now);
    }

    /// Case B or D of Table 12 when a TCB exists.
    pub(crate) fn collide(&mut self, ctx: &mut Ctx<'_>, now: Instant, c: &CookieState) {
        let connecting = matches!(self.state, State::CookieWait | State::CookieEchoed);
        if connecting {
            let queued = self.tx.len();
            assert!(self.in_flight == 0, "no DATA leaves before ESTABLISHED");
            self.adopt_cookie(ctx.cfg, now, c);
            // Messages queued before the association came up keep their TSNs and SSNs: they were
            // numbered from our initial TSN, which the cookie carries unchanged (§5.2.1).
            assert_eq!(self.tx.len(), queued);
            ctx.events.push(Event::Connected(self.handle));
            self.arm_heartbeat(ctx.cfg, now);
        } else {
            self.peer_tag = c.peer_tag;
        }
        self.ctl.cookie_ack = true;
    }

    /// The tie-tags an INIT ACK must carry when an INIT arrives for this association (§5.2.2).
    pub(crate) fn tie_tags(&self) -> (u32, u32) {
        match self.state {
            State::CookieWait | State::ShutdownAckSent => (0, 0),
            _ => (self.local_tag, self.peer_tag),
        }
    }

    /// Our INIT parameters, reused in the INIT ACK during an INIT collision (§5.2.1).
    pub(crate) fn init_params(&self) -> (u32, u32) {
        (self.local_tag, self.initial_tsn)
    }

    /// §9.2: an INIT in SHUTDOWN-ACK-SENT makes us resend SHUTDOWN ACK.
    pub(crate) fn resend_shutdown_ack(&mut self) {
        assert_eq!(self.state, State::ShutdownAckSent);
        self.ctl.shutdown_ack = true;
    }

    /// §5.2.4 A in SHUTDOWN-ACK-SENT: resend SHUTDOWN ACK plus "Cookie Received While Shutting
    /// Down".
    pub(crate) fn cookie_while_shutting_down(&mut self, pool: &mut BufferPool) {
        self.ctl.shutdown_ack = true;
        self.queue_error(pool, cause::COOKIE_WHILE_SHUTTING_DOWN, &[]);
    }

    /// Handles one chunk of a packet whose tag was verified.
    pub(crate) fn handle_chunk(&mut self, ctx: &mut Ctx<'_>, now: Instant, c: Chunk<'_>) -> Flow {
        if self.state == State::Closed {
            return Flow::Stop;
        }
        match c.ty {
            ChunkType::DATA => self.on_data(ctx, c),
            ChunkType::SACK => self.on_sack(ctx, now, c.value),
            ChunkType::INIT_ACK => self.on_init_ack(ctx, now, c.value),
            ChunkType::COOKIE_ACK => self.on_cookie_ack(ctx, now),
            ChunkType::HEARTBEAT => self.on_heartbeat(ctx, c.value),
            ChunkType::HEARTBEAT_ACK => self.on_heartbeat_ack(ctx, now, c.value),
            ChunkType::ABORT => {
                self.on_abort(ctx, c.value);
                Flow::Stop
            }
            ChunkType::SHUTDOWN => self.on_shutdown(ctx, now, c.value),
            ChunkType::SHUTDOWN_ACK => self.on_shutdown_ack(ctx),
            ChunkType::SHUTDOWN_COMPLETE => self.on_shutdown_complete(ctx),
            ChunkType::ERROR => self.on_error(ctx, now, c.value),
            // INIT and COOKIE ECHO are the endpoint's; a second one inside a packet is ignored.
            ChunkType::INIT | ChunkType::COOKIE_ECHO => Flow::Continue,
            _ => self.on_unknown(ctx, c),
        }
    }

    /// §3.2: an unrecognised chunk type is handled by its upper two bits.
    fn on_unknown(&mut self, ctx: &mut Ctx<'_>, c: Chunk<'_>) -> Flow {
        let action = wire::UnknownAction::from_top_bits(u16::from(c.ty.0 >> 6));
        if action.reports() {
            self.queue_error(ctx.pool, cause::UNRECOGNIZED_CHUNK, c.raw);
        }
        if action.skips() {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    /// Work after all chunks of a packet: deliver messages, progress shutdown, schedule SACK.
    pub(crate) fn after_packet(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if core::mem::take(&mut self.data_in_packet) {
            self.data_packets_unacked += 1;
        }
        self.deliver(ctx);
        self.progress_shutdown(now);
        if self.data_packets_unacked > 0 && !self.ctl.sack_now {
            // §6.2: SACK at least every second packet with DATA, and within the delay.
            if self.data_packets_unacked >= 2 || ctx.cfg.delayed_ack.is_zero() {
                self.ctl.sack_now = true;
            } else if self.timers[Timer::DelayedAck as usize] == NEVER {
                self.timers[Timer::DelayedAck as usize] = now + ctx.cfg.delayed_ack;
            }
        }
        if self.state == State::ShutdownSent && self.ctl.sack_now {
            // §9.2: in SHUTDOWN-SENT, answer DATA with SHUTDOWN and restart T2.
            self.ctl.shutdown = true;
            self.start_t2(now);
        }
    }

    // ----- Receiving -----

    fn on_data(&mut self, ctx: &mut Ctx<'_>, c: Chunk<'_>) -> Flow {
        if !matches!(self.state, State::Established | State::ShutdownPending | State::ShutdownSent)
        {
            return Flow::Continue;
        }
        let Ok((h, payload)) = DataHeader::parse(c.value) else {
            return Flow::Stop;
        };
        if payload.is_empty() {
            // §6.2: DATA without user data: the RFC says ABORT with "No User Data".
            self.queue_error(ctx.pool, cause::NO_USER_DATA, &h.tsn.to_be_bytes());
            return Flow::Continue;
        }
        self.data_in_packet = true;
        if c.flags & data_flag::IMMEDIATE != 0 {
            self.ctl.sack_now = true;
        }
        let offset = h.tsn.wrapping_sub(self.rx_cum_tsn);
        if offset == 0 || offset > u32::MAX / 2 || self.rx_bit(h.tsn) {
            // Already received: report it and SACK at once (§6.2).
            if self.dup_tsns.len() < 4 * DUP_TSNS_MAX {
                if self.dup_tsns.capacity() == 0 {
                    self.dup_tsns = ctx.pool.take(4 * DUP_TSNS_MAX);
                }
                self.dup_tsns.extend_from_slice(&h.tsn.to_be_bytes());
            }
            self.ctl.sack_now = true;
            return Flow::Continue;
        }
        if offset > RX_TSN_WINDOW {
            return Flow::Continue;
        }
        if h.stream >= self.in_streams {
            // §6.5: acknowledge but do not deliver; report Invalid Stream Identifier.
            let mut info = [0u8; 4];
            info[..2].copy_from_slice(&h.stream.to_be_bytes());
            self.queue_error(ctx.pool, cause::INVALID_STREAM, &info);
            self.mark_received(h.tsn);
            return Flow::Continue;
        }
        let len = payload.len() as u32;
        let before_highest = tsn_lt(h.tsn, self.rx_highest_tsn);
        let fits = self.rx_bytes + len <= ctx.cfg.reassembly_bytes_max;
        // §6.2: with a full window, still accept TSNs below the highest received: they fill
        // holes the peer is allowed to fill. Twice the window is the hard bound.
        let overdraft_ok =
            before_highest && self.rx_bytes + len <= 2 * ctx.cfg.reassembly_bytes_max;
        if !(fits || overdraft_ok) || self.rx.len() + self.ready.len() >= RX_HELD_MAX {
            // §6.2: no room (a zero window probe, typically): drop it, but SACK at once so the
            // sender learns the window and does not count the probe as a failure (§6.1 A).
            self.ctl.sack_now = true;
            return Flow::Continue;
        }
        let mut buf = ctx.pool.take(payload.len());
        buf.extend_from_slice(payload);
        let whole = data_flag::BEGIN | data_flag::END;
        let unordered = c.flags & data_flag::UNORDERED != 0;
        let stream = usize::from(h.stream);
        if self.rx.is_empty()
            && c.flags & whole == whole
            && (unordered || h.ssn == self.in_ssn[stream])
        {
            // A whole message, its turn, nothing held before it: `deliver` would move it to
            // `ready` at once, so put it there now. A peer exchanging small messages in order
            // then never gives `rx` storage (160 bytes per association kept, issue 14).
            if !unordered {
                self.in_ssn[stream] = self.in_ssn[stream].wrapping_add(1);
            }
            let info = MessageInfo { stream: h.stream, ppid: h.ppid, unordered };
            self.ready.push_back(Ready { info, buf });
            self.ready_in_packet += 1;
        } else {
            let (tsn, ssn, ppid, flags) = (h.tsn, h.ssn, h.ppid, c.flags);
            let chunk = RxChunk { tsn, stream: h.stream, ssn, ppid, flags, buf };
            let base = self.rx_cum_tsn.wrapping_sub(1 << 30);
            let at = self
                .rx
                .binary_search_by_key(&h.tsn.wrapping_sub(base), |r| r.tsn.wrapping_sub(base))
                .unwrap_or_else(|i| i);
            self.rx.insert(at, chunk);
        }
        self.rx_bytes += len;
        self.mark_received(h.tsn);
        if tsn_lt(self.rx_cum_tsn, self.rx_highest_tsn) {
            // A gap: SACK at once so the sender's fast retransmit works (§6.2, §6.7).
            self.ctl.sack_now = true;
        }
        Flow::Continue
    }

    fn rx_bit(&self, tsn: u32) -> bool {
        let Some(b) = &self.rx_bitmap else { return false };
        let i = (tsn % RX_TSN_WINDOW) as usize;
        b[i / 64] & (1 << (i % 64)) != 0
    }

    /// Records a TSN and advances the cumulative TSN over any now-contiguous run. A TSN
    /// above `rx_cum_tsn + 1` takes a bit (the first one allocates the bitmap); the next
    /// in-order TSN takes none, and each bit the cumulative TSN passes is cleared, freeing it
    /// for the TSN one window ahead.
    fn mark_received(&mut self, tsn: u32) {
        if tsn_lt(self.rx_highest_tsn, tsn) {
            self.rx_highest_tsn = tsn;
        }
        if tsn != self.rx_cum_tsn.wrapping_add(1) {
            // The bit of `rx_cum_tsn + 1` is never set, so the cumulative TSN stays.
            let b = self.rx_bitmap.get_or_insert_with(|| Box::new([0; RX_BITMAP_WORDS]));
            let i = (tsn % RX_TSN_WINDOW) as usize;
            b[i / 64] |= 1 << (i % 64);
            return;
        }
        self.rx_cum_tsn = tsn;
        if let Some(b) = &mut self.rx_bitmap {
            loop {
                let i = (self.rx_cum_tsn.wrapping_add(1) % RX_TSN_WINDOW) as usize;
                if b[i / 64] & (1 << (i % 64)) == 0 {
                    break;
                }
                b[i / 64] &= !(1 << (i % 64));
                self.rx_cum_tsn = self.rx_cum_tsn.wrapping_add(1);
            }
        }
        assert!(!tsn_lt(self.rx_highest_tsn, self.rx_cum_tsn));
    }

    /// Moves every complete, deliverable message from `rx` to `ready` (§6.5, §6.6, §6.9).
    fn deliver(&mut self, ctx: &mut Ctx<'_>) {
        // Messages `on_data` put on `ready` in this packet count as delivered now.
        let before = self.ready.len() - usize::from(core::mem::take(&mut self.ready_in_packet));
        let mut i = 0;
        while i < self.rx.len() {
            let first = &self.rx[i];
            if first.flags & data_flag::BEGIN == 0 {
                i += 1;
                continue;
            }
            let mut j = i;
            let complete = loop {
                if self.rx[j].flags & data_flag::END != 0 {
                    break true;
                }
                let next = self.rx.get(j + 1);
                match next {
                    Some(n)
                        if n.tsn == self.rx[j].tsn.wrapping_add(1)
                            && n.stream == first.stream
                            && n.flags & data_flag::BEGIN == 0 =>
                    {
                        j += 1
                    }
                    _ => break false,
                }
            };
            let ordered = first.flags & data_flag::UNORDERED == 0;
            let stream = usize::from(first.stream);
            if !complete || (ordered && first.ssn != self.in_ssn[stream]) {
                i = j + 1;
                continue;
            }
            self.take_message(ctx.pool, i, j);
            if ordered {
                self.in_ssn[stream] = self.in_ssn[stream].wrapping_add(1);
                // An earlier message of this stream may wait before `i`: rescan.
                i = 0;
            }
        }
        if self.ready.len() > before && !self.readable_signalled {
            self.readable_signalled = true;
            ctx.events.push(Event::DataReadable(self.handle));
        }
    }

    /// Joins `rx[i..=j]` into one message on `ready`.
    fn take_message(&mut self, pool: &mut BufferPool, i: usize, j: usize) {
        let first = &self.rx[i];
        let info = MessageInfo {
            stream: first.stream,
            ppid: first.ppid,
            unordered: first.flags & data_flag::UNORDERED != 0,
        };
        let buf = if i == j {
            self.rx.remove(i).buf
        } else {
            let total: usize = self.rx[i..=j].iter().map(|r| r.buf.len()).sum();
            let mut joined = pool.take(total);
            for r in self.rx.drain(i..=j) {
                joined.extend_from_slice(&r.buf);
                pool.give(r.buf);
            }
            joined
        };
        self.ready.push_back(Ready { info, buf });
    }

    /// Pops the next message for the reader; frees its window share.
    pub(crate) fn pop_ready(&mut self) -> Option<Ready> {
        let r = self.ready.pop_front()?;
        self.rx_bytes -= r.buf.len() as u32;
        if self.ready.is_empty() {
            self.readable_signalled = false;
        }
        // A window update: when the window was nearly closed, tell the peer soon (§6.2).
        Some(r)
    }

    /// True once reading reopened a window we advertised as nearly closed: a SACK then tells
    /// the peer at once, so it need not wait for a probe (§6.2 window update).
    pub(crate) fn window_reopened(&mut self, cfg: &EndpointConfig) -> bool {
        let reopened = self.last_a_rwnd < cfg.rwnd / 4 && self.a_rwnd(cfg) >= cfg.rwnd / 2;
        if reopened && self.established_like() {
            self.ctl.sack_now = true;
            self.last_a_rwnd = self.a_rwnd(cfg);
        }
        reopened
    }

    fn a_rwnd(&self, cfg: &EndpointConfig) -> u32 {
        if self.rx.len() + self.ready.len() >= RX_HELD_MAX {
            return 0; // out of buffers, whatever the byte count says
        }
        cfg.rwnd.saturating_sub(self.rx_bytes)
    }

    fn on_sack(&mut self, ctx: &mut Ctx<'_>, now: Instant, value: &[u8]) -> Flow {
        let Ok(sack) = Sack::parse(value) else {
            return Flow::Stop;
        };
        if !matches!(
            self.state,
            State::Established
                | State::ShutdownPending
                | State::ShutdownReceived
                | State::ShutdownSent
        ) {
            return Flow::Continue;
        }
        self.process_ack(ctx, now, sack.cum_tsn_ack, Some(sack));
        Flow::Continue
    }

    /// SACK and SHUTDOWN processing (§6.2.1, §6.3.2, §7.2).
    fn process_ack(&mut self, ctx: &mut Ctx<'_>, now: Instant, cum: u32, sack: Option<Sack<'_>>) {
        if tsn_lt(cum, self.acked_tsn) {
            return; // §6.2.1 D i): an old SACK.
        }
        let highest_sent = match self.tx_unsent.checked_sub(1).and_then(|k| self.tx.get(k)) {
            Some(c) => c.tsn,
            None => self.acked_tsn,
        };
        if tsn_lt(highest_sent, cum) {
            return; // Acks data we never sent: a protocol violation; ignore the chunk.
        }
        let mtu = u32::from(ctx.cfg.mtu);
        let flight_before = self.in_flight;
        let cum_advanced = tsn_lt(self.acked_tsn, cum);
        let mut newly_acked: u32 = 0;
        // The newest chunk this SACK newly acks, sent once: the RTT sample (§6.3.1).
        let mut newest: Option<Instant> = None;
        // Cumulatively acked chunks leave the queue.
        while let Some(front) = self.tx.front() {
            if tsn_lt(cum, front.tsn) {
                break;
            }
            let c = self.tx.pop_front().expect("front exists");
            self.tx_unsent = self.tx_unsent.saturating_sub(1);
            match c.state {
                TxState::InFlight => {
                    self.in_flight -= c.len;
                    newly_acked += c.len;
                    newest = newest_sent_once(newest, &c);
                }
                TxState::Retransmit => {
                    self.tx_retransmit_count -= 1;
                    newly_acked += c.len;
                }
                // Unsent cannot happen: cum <= highest_sent was checked and sent chunks precede
                // unsent ones; treat it like an already-acked chunk all the same.
                TxState::GapAcked | TxState::Unsent => {}
            }
            let drop_to = c.offset.wrapping_add(c.len).wrapping_sub(self.tx_bytes_base as u32);
            self.tx_bytes.drain(..drop_to as usize);
            self.tx_bytes_base += u64::from(drop_to);
        }
        self.acked_tsn = cum;
        // Gap blocks.
        let mut highest_gap_acked: Option<u32> = None;
        if let Some(sack) = sack {
            let mut gaps = sack.gaps().peekable();
            for k in 0..self.tx_unsent.min(self.tx.len()) {
                let c = self.tx[k];
                let off = c.tsn.wrapping_sub(cum);
                while let Some(&(_, end)) = gaps.peek() {
                    if u32::from(end) < off {
                        gaps.next();
                    } else {
                        break;
                    }
                }
                let in_gap =
                    gaps.peek().is_some_and(|&(s, e)| u32::from(s) <= off && off <= u32::from(e));
                if in_gap {
                    match c.state {
                        TxState::InFlight => {
                            self.in_flight -= c.len;
                            newly_acked += c.len;
                            newest = newest_sent_once(newest, &c);
                        }
                        TxState::Retransmit => self.tx_retransmit_count -= 1,
                        _ => {}
                    }
                    self.tx[k].state = TxState::GapAcked;
                    highest_gap_acked = Some(c.tsn);
                } else if c.state == TxState::GapAcked {
                    // Renege (§6.2.1): the peer dropped it; send it again.
                    self.tx[k].state = TxState::Retransmit;
                    self.tx_retransmit_count += 1;
                }
            }
            // §6.2.1: rwnd = a_rwnd - bytes outstanding.
            self.peer_rwnd = sack.a_rwnd.saturating_sub(self.in_flight);
            self.peer_window_closed = sack.a_rwnd < mtu;
            self.sack_since_t3 = true;
        }
        if let Some(sent) = newest {
            self.rtt_sample(ctx.cfg, now, sent);
        }
        // Fast retransmit (§7.2.4): a TSN missing below the highest acked TSN.
        if let Some(high) = highest_gap_acked {
            if newly_acked > 0 {
                self.count_misses(ctx.cfg, high);
            }
        }
        if let Some(exit) = self.fast_recovery_exit {
            if !tsn_lt(cum, exit) {
                self.fast_recovery_exit = None;
            }
        }
        if cum_advanced && self.fast_recovery_exit.is_none() {
            self.grow_cwnd(mtu, flight_before, newly_acked);
        }
        if newly_acked > 0 {
            self.error_count = 0;
            self.path_error_count = 0;
            self.path_active = true;
        }
        // §6.3.2 R2/R3.
        if self.in_flight == 0 {
            self.stop(Timer::T3Rtx);
        } else if cum_advanced {
            self.timers[Timer::T3Rtx as usize] = now + self.rto;
        }
        let _ = ctx;
    }

    fn count_misses(&mut self, cfg: &EndpointConfig, highest: u32) {
        let mtu = u32::from(cfg.mtu);
        let mut any = false;
        for k in 0..self.tx_unsent.min(self.tx.len()) {
            let c = &mut self.tx[k];
            if !tsn_lt(c.tsn, highest) {
                break;
            }
            if c.state != TxState::InFlight || c.misses == FAST_DONE {
                continue;
            }
            c.misses += 1;
            if c.misses >= 3 {
                c.misses = FAST_DONE;
                c.state = TxState::Retransmit;
                self.in_flight -= c.len;
                self.tx_retransmit_count += 1;
                any = true;
            }
        }
        if any {
            self.counters.fast_retransmits += 1;
            self.fast_retransmit_now = true;
            if self.fast_recovery_exit.is_none() {
                // §7.2.3/§7.2.4: halve and enter Fast Recovery until everything now
                // outstanding is acked.
                self.ssthresh = (self.cwnd / 2).max(4 * mtu);
                self.cwnd = self.ssthresh;
                self.partial_bytes_acked = 0;
                self.fast_recovery_exit = Some(self.next_tsn.wrapping_sub(1));
            }
        }
    }

    /// §7.2.1 slow start and §7.2.2 congestion avoidance.
    fn grow_cwnd(&mut self, mtu: u32, flight_before: u32, acked: u32) {
        let fully_used = flight_before + mtu >= self.cwnd;
        if self.cwnd <= self.ssthresh {
            if fully_used {
                self.cwnd += acked.min(mtu);
            }
        } else {
            self.partial_bytes_acked += acked;
            if self.partial_bytes_acked >= self.cwnd && fully_used {
                self.partial_bytes_acked -= self.cwnd;
                self.cwnd += mtu;
            }
        }
    }

    /// RTT measurement (§6.3.1 C4, C5) from the newest chunk a SACK newly acknowledges, `sent`
    /// being its only transmission. Not from the oldest: when the SACK for a chunk is lost, the
    /// next SACK may answer a later message, and timing the old chunk against it would measure
    /// the application's pause between messages (seconds at a keep-alive's pace), not a round
    /// trip; C2 would then make the RTO three times that pause.
    fn rtt_sample(&mut self, cfg: &EndpointConfig, now: Instant, sent: Instant) {
        if sent < self.rtt_gate {
            return;
        }
        self.rtt_gate = now;
        self.update_rto(cfg, now.saturating_since(sent));
    }

    /// §6.3.1 C2/C3.
    fn update_rto(&mut self, cfg: &EndpointConfig, r: Duration) {
        let r = crate::time::duration_us(r);
        let (srtt, rttvar) = match self.srtt_us {
            None => (r, r / 2),
            Some(srtt) => {
                let rttvar = (3 * self.rttvar_us + srtt.abs_diff(r)) / 4;
                ((7 * srtt + r) / 8, rttvar)
            }
        };
        self.srtt_us = Some(srtt);
        self.rttvar_us = rttvar;
        // G, the clock granularity, is 1 µs here.
        let rto = Duration::from_micros(srtt + (4 * rttvar).max(1));
        self.rto = rto.clamp(cfg.rto_min, cfg.rto_max);
    }

    fn on_init_ack(&mut self, ctx: &mut Ctx<'_>, now: Instant, value: &[u8]) -> Flow {
        if self.state != State::CookieWait {
            return Flow::Continue; // §5.2.3
        }
        let Ok(init) = Init::parse(value) else {
            return Flow::Stop;
        };
        // An ABORT refusing this INIT ACK carries its Initiate Tag: adopt it first. With a zero
        // tag no ABORT can reach the peer, and `abort_with` closes quietly.
        self.peer_tag = init.initiate_tag;
        if init.initiate_tag == 0 || init.outbound_streams == 0 || init.inbound_streams == 0 {
            self.abort_with(ctx, cause::INVALID_MANDATORY_PARAMETER);
            return Flow::Stop;
        }
        let mut report = ReportBuf::default();
        let mut addrs = [None; ADDRESSES_MAX];
        let parsed = parse_init_params(init.params, &mut addrs, &mut report);
        let Ok(Some(cookie)) = parsed else {
            // §5.1: a missing State Cookie is a missing mandatory parameter.
            self.abort_with(ctx, cause::MISSING_MANDATORY_PARAMETER);
            return Flow::Stop;
        };
        if HEADER_LEN + padded(4 + cookie.len()) > usize::from(ctx.cfg.mtu) {
            self.abort_with(ctx, cause::OUT_OF_RESOURCE);
            return Flow::Stop;
        }
        self.peer_tag = init.initiate_tag;
        self.adopt_addresses(&addrs);
        let os = ctx.cfg.num_ostreams.min(init.inbound_streams);
        let is = ctx.cfg.max_instreams.min(init.outbound_streams);
        self.set_peer(ctx.cfg, init.initial_tsn, init.a_rwnd, os, is);
        self.cookie.clear();
        self.cookie.extend_from_slice(cookie);
        if report.len > 0 {
            self.queue_error(ctx.pool, cause::UNRECOGNIZED_PARAMETERS, &report.bytes[..report.len]);
        }
        self.state = State::CookieEchoed;
        self.stop(Timer::T1Init);
        self.init_retransmits = 0;
        self.ctl.cookie_echo = true;
        self.start(Timer::T1Cookie, now);
        Flow::Continue
    }

    fn on_cookie_ack(&mut self, ctx: &mut Ctx<'_>, now: Instant) -> Flow {
        if self.state == State::CookieEchoed {
            self.establish(now);
            ctx.events.push(Event::Connected(self.handle));
            self.arm_heartbeat(ctx.cfg, now);
        }
        Flow::Continue
    }

    fn on_heartbeat(&mut self, ctx: &mut Ctx<'_>, value: &[u8]) -> Flow {
        // §8.3: echo the Heartbeat Info parameter unchanged; a later HEARTBEAT replaces it.
        if value.len() <= HEARTBEAT_INFO_MAX {
            if value.is_empty() {
                release(ctx.pool, &mut self.heartbeat_ack);
                return Flow::Continue;
            }
            if self.heartbeat_ack.capacity() == 0 {
                self.heartbeat_ack = ctx.pool.take(HEARTBEAT_INFO_MAX);
            }
            self.heartbeat_ack.clear();
            self.heartbeat_ack.extend_from_slice(value);
        }
        Flow::Continue
    }

    fn on_heartbeat_ack(&mut self, ctx: &mut Ctx<'_>, now: Instant, value: &[u8]) -> Flow {
        // Our info: TLV header, nonce (8), send time (8).
        if value.len() != 20 || wire::be16(value, 0) != param::HEARTBEAT_INFO {
            return Flow::Continue;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&value[4..12]);
        if u64::from_be_bytes(b) != self.heartbeat_nonce || !self.heartbeat_outstanding {
            return Flow::Continue;
        }
        b.copy_from_slice(&value[12..20]);
        let sent = Instant(u64::from_be_bytes(b));
        self.heartbeat_outstanding = false;
        self.error_count = 0;
        self.path_error_count = 0;
        self.path_active = true;
        self.update_rto(ctx.cfg, now.saturating_since(sent));
        Flow::Continue
    }

    fn on_abort(&mut self, ctx: &mut Ctx<'_>, value: &[u8]) {
        for cause in wire::ParamIter::new(value).map_while(Result::ok) {
            ctx.events.push(Event::PeerError { assoc: self.handle, cause: cause.ty });
        }
        // In SHUTDOWN-ACK-SENT both sides have delivered and acknowledged everything; the peer
        // only forgot us early (a late duplicate of ours drew an out-of-the-blue ABORT after
        // its SHUTDOWN COMPLETE was sent). Nothing was lost, so this is a normal close.
        let terminal = if self.state == State::ShutdownAckSent {
            Event::Closed(self.handle)
        } else {
            Event::CommunicationLost(self.handle)
        };
        self.close(ctx, terminal);
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>, now: Instant, value: &[u8]) -> Flow {
        if value.len() < 4 {
            return Flow::Stop;
        }
        match self.state {
            State::Established | State::ShutdownPending | State::ShutdownReceived => {
                self.process_ack(ctx, now, wire::be32(value, 0), None);
                self.state = State::ShutdownReceived;
            }
            State::ShutdownSent => {
                // §9.2: SHUTDOWN crossing ours: answer SHUTDOWN ACK at once.
                self.process_ack(ctx, now, wire::be32(value, 0), None);
                self.state = State::ShutdownAckSent;
                self.ctl.shutdown = false;
                self.ctl.shutdown_ack = true;
                self.start_t2(now);
            }
            _ => {}
        }
        Flow::Continue
    }

    fn on_shutdown_ack(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if matches!(self.state, State::ShutdownSent | State::ShutdownAckSent) {
            // §9.2: stop T2, send SHUTDOWN COMPLETE, close. The endpoint sends it statelessly.
            ctx.responses.shutdown_complete(
                self.remote,
                self.local_port,
                self.remote_port,
                self.peer_tag,
            );
            self.close(ctx, Event::Closed(self.handle));
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn on_shutdown_complete(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if self.state == State::ShutdownAckSent {
            self.close(ctx, Event::Closed(self.handle));
        }
        Flow::Stop
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_>, now: Instant, value: &[u8]) -> Flow {
        for c in wire::ParamIter::new(value).map_while(Result::ok) {
            ctx.events.push(Event::PeerError { assoc: self.handle, cause: c.ty });
            if c.ty == cause::STALE_COOKIE && self.state == State::CookieEchoed {
                // §5.2.6: start over with a fresh INIT (we do not send Cookie Preservative).
                self.state = State::CookieWait;
                self.stop(Timer::T1Cookie);
                self.ctl.cookie_echo = false;
                self.ctl.init = true;
                self.start(Timer::T1Init, now);
            }
        }
        Flow::Continue
    }

    // ----- User calls -----

    /// Queues a message, fragmented to the packet budget (§6.9). The caller checked the state.
    pub(crate) fn send(
        &mut self,
        cfg: &EndpointConfig,
        stream: u16,
        ppid: u32,
        unordered: bool,
        data: &[u8],
    ) -> Result<(), crate::SendError> {
        use crate::SendError;
        if !matches!(self.state, State::CookieWait | State::CookieEchoed | State::Established) {
            return Err(SendError::Closed);
        }
        if data.is_empty() || data.len() > cfg.max_message_size as usize {
            return Err(SendError::TooLarge);
        }
        let streams = if self.out_ssn.is_empty() { cfg.num_ostreams } else { self.out_streams };
        if stream >= streams {
            return Err(SendError::InvalidStream);
        }
        let frag = fragment_len(cfg);
        let pieces = data.len().div_ceil(frag);
        if self.tx_bytes.len() + data.len() > cfg.send_buffer_bytes_max as usize
            || self.tx.len() + pieces > TX_CHUNKS_MAX
        {
            return Err(SendError::Full);
        }
        if self.out_ssn.is_empty() {
            self.out_ssn.resize(usize::from(cfg.num_ostreams), 0);
        }
        let ssn = if unordered { 0 } else { self.out_ssn[usize::from(stream)] };
        if !unordered {
            self.out_ssn[usize::from(stream)] = ssn.wrapping_add(1);
        }
        let mut offset = self.tx_bytes_base + self.tx_bytes.len() as u64;
        for (i, piece) in data.chunks(frag).enumerate() {
            let mut flags = if unordered { data_flag::UNORDERED } else { 0 };
            if i == 0 {
                flags |= data_flag::BEGIN;
            }
            if i + 1 == pieces {
                flags |= data_flag::END;
            }
            self.tx.push_back(TxChunk {
                tsn: self.next_tsn,
                stream,
                ssn,
                ppid,
                flags,
                offset: offset as u32,
                len: piece.len() as u32,
                state: TxState::Unsent,
                sent_at: Instant(0),
                sent_count: 0,
                misses: 0,
            });
            self.next_tsn = self.next_tsn.wrapping_add(1);
            offset += piece.len() as u64;
        }
        self.tx_bytes.extend(data);
        Ok(())
    }

    /// User SHUTDOWN (§9.2): wait for outstanding data, then SHUTDOWN.
    pub(crate) fn shutdown(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        match self.state {
            State::Established => {
                self.state = State::ShutdownPending;
                self.progress_shutdown(now);
            }
            State::CookieWait | State::CookieEchoed => {
                // Nothing to flush; the peer has (at most) a cookie. Tell it and close.
                self.abort_with(ctx, cause::USER_ABORT);
            }
            _ => {}
        }
    }

    fn progress_shutdown(&mut self, now: Instant) {
        let drained = self.tx.is_empty();
        match self.state {
            State::ShutdownPending if drained => {
                self.state = State::ShutdownSent;
                self.ctl.shutdown = true;
                self.stop(Timer::T3Rtx);
                self.start_t2(now);
            }
            State::ShutdownReceived if drained => {
                self.state = State::ShutdownAckSent;
                self.ctl.shutdown_ack = true;
                self.stop(Timer::T3Rtx);
                self.start_t2(now);
            }
            _ => {}
        }
    }

    /// User ABORT or a fatal protocol error: ABORT goes out, the association closes.
    pub(crate) fn abort_with(&mut self, ctx: &mut Ctx<'_>, code: u16) {
        if self.peer_tag != 0 {
            ctx.responses.abort(
                self.remote,
                self.local_port,
                self.remote_port,
                self.peer_tag,
                code,
            );
        }
        self.close(ctx, Event::Closed(self.handle));
    }

    /// Enters CLOSED and queues the terminal event; the endpoint frees the slot once the
    /// event is polled.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, terminal: Event) {
        if self.state == State::Closed {
            return;
        }
        let unsent = self.tx.iter().filter(|c| c.flags & data_flag::END != 0).count();
        if unsent > 0 {
            ctx.events.push(Event::SendFailed { assoc: self.handle, messages: unsent as u32 });
        }
        self.state = State::Closed;
        self.timers = [NEVER; TIMER_COUNT];
        self.ctl = Control::default();
        release(ctx.pool, &mut self.heartbeat_ack);
        release(ctx.pool, &mut self.errors);
        release(ctx.pool, &mut self.dup_tsns);
        self.tx.clear();
        self.tx_bytes.clear();
        self.tx_unsent = 0;
        self.tx_retransmit_count = 0;
        self.in_flight = 0;
        for r in self.rx.drain(..) {
            ctx.pool.give(r.buf);
        }
        // Closed mid-packet: what this packet completed had not been delivered yet.
        for _ in 0..core::mem::take(&mut self.ready_in_packet) {
            if let Some(r) = self.ready.pop_back() {
                ctx.pool.give(r.buf);
            }
        }
        self.terminal_queued = true;
        ctx.events.push(terminal);
    }

    /// Returns every pooled buffer; called when the slot is freed.
    pub(crate) fn recycle_buffers(&mut self, pool: &mut BufferPool) {
        release(pool, &mut self.heartbeat_ack);
        release(pool, &mut self.errors);
        release(pool, &mut self.dup_tsns);
        for r in self.rx.drain(..) {
            pool.give(r.buf);
        }
        for r in self.ready.drain(..) {
            pool.give(r.buf);
        }
    }

    // ----- Timers -----

    /// Earliest deadline in the timer table.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.iter().copied().filter(|&t| t != NEVER).min()
    }

    fn start(&mut self, t: Timer, now: Instant) {
        self.timers[t as usize] = now + self.rto;
    }

    fn stop(&mut self, t: Timer) {
        self.timers[t as usize] = NEVER;
    }

    fn start_t2(&mut self, now: Instant) {
        self.timers[Timer::T2Shutdown as usize] = now + self.rto;
    }

    pub(crate) fn arm_heartbeat(&mut self, cfg: &EndpointConfig, now: Instant) {
        if cfg.hb_interval.is_zero() {
            return;
        }
        // §8.3: once per RTO plus HB.interval on an idle path. We leave out the jitter: the
        // caller's timing is already noisy and determinism makes the failure bound exact.
        self.timers[Timer::Heartbeat as usize] = now + self.rto + cfg.hb_interval;
    }

    /// Runs every expired timer.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        for t in 0..TIMER_COUNT {
            if self.state == State::Closed {
                return;
            }
            let at = self.timers[t];
            if at == NEVER || at > now {
                continue;
            }
            self.timers[t] = NEVER;
            match t {
                0 | 1 => self.expire_t1(ctx, now, t == 0),
                2 => self.expire_t2(ctx, now),
                3 => self.expire_t3(ctx, now),
                4 => self.expire_heartbeat(ctx, now),
                _ => self.ctl.sack_now = true,
            }
        }
    }

    fn expire_t1(&mut self, ctx: &mut Ctx<'_>, now: Instant, init: bool) {
        self.init_retransmits += 1;
        if self.init_retransmits > ctx.cfg.max_init_retransmits {
            self.close(ctx, Event::CommunicationLost(self.handle));
            return;
        }
        self.back_off(ctx.cfg);
        if init {
            self.ctl.init = true;
            self.start(Timer::T1Init, now);
        } else {
            self.ctl.cookie_echo = true;
            self.start(Timer::T1Cookie, now);
        }
    }

    fn expire_t2(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if self.count_error(ctx) {
            return;
        }
        self.back_off(ctx.cfg);
        match self.state {
            State::ShutdownSent => self.ctl.shutdown = true,
            State::ShutdownAckSent => self.ctl.shutdown_ack = true,
            _ => return,
        }
        self.start_t2(now);
    }

    /// §6.3.3: T3-rtx expiry.
    fn expire_t3(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        // §6.1 A: an unanswered zero window probe does not count as an error while the peer
        // keeps sending SACKs; its interval still backs off exponentially below.
        self.counters.t3_expirations += 1;
        let probing = self.peer_window_closed && core::mem::take(&mut self.sack_since_t3);
        if !probing && self.count_error(ctx) {
            return;
        }
        let mtu = u32::from(ctx.cfg.mtu);
        self.ssthresh = (self.cwnd / 2).max(4 * mtu);
        self.cwnd = mtu;
        self.partial_bytes_acked = 0;
        self.fast_recovery_exit = None;
        self.back_off(ctx.cfg);
        self.rtt_gate = now;
        for c in self.tx.iter_mut().take(self.tx_unsent) {
            if c.state == TxState::InFlight {
                c.state = TxState::Retransmit;
                self.in_flight -= c.len;
                self.tx_retransmit_count += 1;
            }
        }
        assert_eq!(self.in_flight, 0, "every in-flight chunk is marked");
    }

    fn expire_heartbeat(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if !matches!(self.state, State::Established | State::ShutdownPending) {
            return;
        }
        if self.heartbeat_outstanding {
            if self.count_error(ctx) {
                return;
            }
            self.back_off(ctx.cfg);
        }
        // A path busy with DATA needs no heartbeat: T3 covers it.
        if self.in_flight == 0 {
            self.heartbeat_nonce = self.heartbeat_nonce.wrapping_add(1);
            self.heartbeat_outstanding = true;
            self.ctl.heartbeat = true;
        }
        self.arm_heartbeat(ctx.cfg, now);
    }

    /// Counts one unanswered retransmission or heartbeat (§8.1, §8.2); returns true when the
    /// association has failed and closed.
    fn count_error(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.error_count += 1;
        self.path_error_count += 1;
        if self.path_error_count > ctx.cfg.path_max_retrans && self.path_active {
            // §8.2: the only path is inactive; we keep using it (nothing else to use).
            self.path_active = false;
            ctx.events.push(Event::PathInactive(self.handle));
        }
        if self.error_count > ctx.cfg.assoc_max_retrans {
            // §8.1: report and abort.
            if self.peer_tag != 0 {
                let (r, l, p, t) = (self.remote, self.local_port, self.remote_port, self.peer_tag);
                ctx.responses.abort(r, l, p, t, 0);
            }
            self.close(ctx, Event::CommunicationLost(self.handle));
            return true;
        }
        false
    }

    fn back_off(&mut self, cfg: &EndpointConfig) {
        self.rto = (self.rto * 2).min(cfg.rto_max);
    }

    // ----- Sending -----

    /// True when `poll_transmit` has something to write.
    pub(crate) fn wants_transmit(&self) -> bool {
        if self.state == State::Closed {
            return false;
        }
        let c = &self.ctl;
        c.init
            || c.cookie_echo
            || c.cookie_ack
            || c.shutdown
            || c.shutdown_ack
            || c.heartbeat
            || !self.heartbeat_ack.is_empty()
            || !self.errors.is_empty()
            || c.sack_now
            || self.can_send_data()
    }

    fn data_allowed(&self) -> bool {
        matches!(self.state, State::Established | State::ShutdownPending | State::ShutdownReceived)
    }

    fn can_send_data(&self) -> bool {
        if !self.data_allowed() {
            return false;
        }
        if self.tx_retransmit_count > 0 && (self.fast_retransmit_now || self.in_flight < self.cwnd)
        {
            return true;
        }
        let Some(next) = self.tx.get(self.tx_unsent) else {
            return false;
        };
        self.in_flight < self.cwnd && (self.peer_rwnd >= next.len || self.in_flight == 0)
    }

    /// Writes the next packet; `None` when there is nothing to send.
    pub(crate) fn poll_transmit(
        &mut self,
        cfg: &EndpointConfig,
        pool: &mut BufferPool,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<usize> {
        if !self.wants_transmit() {
            return None;
        }
        let mut w = Writer::new(buf, usize::from(cfg.mtu));
        let vtag = if self.ctl.init { 0 } else { self.peer_tag };
        let header = CommonHeader {
            source_port: self.local_port,
            target_port: self.remote_port,
            verification_tag: vtag,
        };
        header.emit(&mut w);
        if self.ctl.init {
            // §6.10: INIT is never bundled.
            self.ctl.init = false;
            self.write_init(cfg, &mut w);
        } else {
            self.write_control(cfg, pool, now, &mut w);
            if self.data_allowed() {
                self.write_data(now, &mut w);
            }
            self.write_trailing_control(now, &mut w);
        }
        if w.len() == HEADER_LEN {
            return None;
        }
        let n = w.len();
        wire::seal(&mut buf[..n]);
        self.last_sent = now;
        Some(n)
    }

    fn write_init(&mut self, cfg: &EndpointConfig, w: &mut Writer<'_>) {
        let start = w.begin_chunk(ChunkType::INIT, 0);
        Init {
            initiate_tag: self.local_tag,
            a_rwnd: cfg.rwnd,
            outbound_streams: cfg.num_ostreams,
            inbound_streams: cfg.max_instreams,
            initial_tsn: self.initial_tsn,
            params: &[],
        }
        .emit_fixed(w);
        // Supported Address Types: IPv4 and IPv6 (§3.3.2.1.4).
        let p = w.begin_tlv(param::SUPPORTED_ADDRESS_TYPES);
        w.put_u16(param::IPV4);
        w.put_u16(param::IPV6);
        w.end_tlv(p);
        w.end_chunk(start);
    }

    fn write_control(
        &mut self,
        cfg: &EndpointConfig,
        pool: &mut BufferPool,
        now: Instant,
        w: &mut Writer<'_>,
    ) {
        if self.ctl.cookie_echo && w.room() >= padded(4 + self.cookie.len()) {
            self.ctl.cookie_echo = false;
            let s = w.begin_chunk(ChunkType::COOKIE_ECHO, 0);
            w.put_slice(&self.cookie);
            w.end_chunk(s);
        }
        if self.ctl.cookie_ack {
            self.ctl.cookie_ack = false;
            let s = w.begin_chunk(ChunkType::COOKIE_ACK, 0);
            w.end_chunk(s);
        }
        if !self.errors.is_empty() && w.room() >= padded(4 + self.errors.len()) {
            let s = w.begin_chunk(ChunkType::ERROR, 0);
            w.put_slice(&self.errors);
            w.end_chunk(s);
            release(pool, &mut self.errors);
        }
        let hb = self.heartbeat_ack.len();
        if hb > 0 && w.room() >= padded(4 + hb) {
            let s = w.begin_chunk(ChunkType::HEARTBEAT_ACK, 0);
            w.put_slice(&self.heartbeat_ack);
            w.end_chunk(s);
            release(pool, &mut self.heartbeat_ack);
        }
        if self.ctl.shutdown_ack && w.room() >= 4 {
            self.ctl.shutdown_ack = false;
            let s = w.begin_chunk(ChunkType::SHUTDOWN_ACK, 0);
            w.end_chunk(s);
        }
        let bundle = self.data_packets_unacked > 0 && self.can_send_data();
        if (self.ctl.sack_now || bundle) && self.established_like() {
            self.write_sack(cfg, pool, now, w);
        }
    }

    fn established_like(&self) -> bool {
        !matches!(self.state, State::CookieWait | State::CookieEchoed | State::Closed)
    }

    /// A SACK with as many gap blocks as fit (§3.3.4, §6.2).
    fn write_sack(
        &mut self,
        cfg: &EndpointConfig,
        pool: &mut BufferPool,
        _now: Instant,
        w: &mut Writer<'_>,
    ) {
        if w.room() < SACK_HEADER_LEN {
            return;
        }
        let room_blocks = (w.room() - SACK_HEADER_LEN) / 4;
        let s = w.begin_chunk(ChunkType::SACK, 0);
        w.put_u32(self.rx_cum_tsn);
        self.last_a_rwnd = self.a_rwnd(cfg);
        w.put_u32(self.last_a_rwnd);
        let counts_at = w.len();
        w.put_u32(0); // gap and duplicate counts, patched below
        let mut gaps: u16 = 0;
        let max_gaps = room_blocks.min(GAP_BLOCKS_MAX);
        let span = self.rx_highest_tsn.wrapping_sub(self.rx_cum_tsn);
        let mut off = 1;
        while off <= span && usize::from(gaps) < max_gaps {
            if !self.rx_bit(self.rx_cum_tsn.wrapping_add(off)) {
                off += 1;
                continue;
            }
            let start = off;
            while off < span && self.rx_bit(self.rx_cum_tsn.wrapping_add(off + 1)) {
                off += 1;
            }
            w.put_u16(start as u16);
            w.put_u16(off as u16);
            gaps += 1;
            off += 1;
        }
        let dups = (self.dup_tsns.len() / 4).min((w.room() / 4).saturating_sub(1));
        w.put_slice(&self.dup_tsns[..4 * dups]);
        release(pool, &mut self.dup_tsns);
        w.patch_u16(counts_at, gaps);
        w.patch_u16(counts_at + 2, dups as u16);
        w.end_chunk(s);
        self.ctl.sack_now = false;
        self.data_packets_unacked = 0;
        self.stop(Timer::DelayedAck);
    }

    fn write_data(&mut self, now: Instant, w: &mut Writer<'_>) {
        let fast = self.fast_retransmit_now;
        self.fast_retransmit_now = false;
        if self.tx_retransmit_count > 0 {
            for k in 0..self.tx_unsent.min(self.tx.len()) {
                if self.tx_retransmit_count == 0 || (!fast && self.in_flight >= self.cwnd) {
                    break;
                }
                if self.tx[k].state != TxState::Retransmit {
                    continue;
                }
                if w.room() < padded(DATA_HEADER_LEN + self.tx[k].len as usize) {
                    break;
                }
                self.tx_retransmit_count -= 1;
                self.emit_data(now, k, w);
            }
        }
        while let Some(c) = self.tx.get(self.tx_unsent) {
            let fits_window = self.peer_rwnd >= c.len || self.in_flight == 0;
            if self.in_flight >= self.cwnd || !fits_window {
                break;
            }
            if w.room() < padded(DATA_HEADER_LEN + c.len as usize) {
                break;
            }
            let k = self.tx_unsent;
            self.tx_unsent += 1;
            self.emit_data(now, k, w);
        }
    }

    fn emit_data(&mut self, now: Instant, k: usize, w: &mut Writer<'_>) {
        let c = self.tx[k];
        let s = w.begin_chunk(ChunkType::DATA, c.flags);
        w.put_u32(c.tsn);
        w.put_u16(c.stream);
        w.put_u16(c.ssn);
        w.put_u32(c.ppid);
        let from = c.offset.wrapping_sub(self.tx_bytes_base as u32) as usize;
        let (a, b) = self.tx_bytes.as_slices();
        let to = from + c.len as usize;
        if to <= a.len() {
            w.put_slice(&a[from..to]);
        } else if from >= a.len() {
            w.put_slice(&b[from - a.len()..to - a.len()]);
        } else {
            w.put_slice(&a[from..]);
            w.put_slice(&b[..to - a.len()]);
        }
        w.end_chunk(s);
        if c.sent_count > 0 {
            self.counters.retransmitted_chunks += 1;
            self.rtt_gate = now; // §6.3.1 C5
        }
        self.counters.data_chunks_sent += 1;
        let t = &mut self.tx[k];
        t.state = TxState::InFlight;
        t.sent_at = now;
        t.sent_count = t.sent_count.saturating_add(1);
        self.in_flight += c.len;
        self.peer_rwnd = self.peer_rwnd.saturating_sub(c.len);
        // §6.3.2 R1.
        if self.timers[Timer::T3Rtx as usize] == NEVER {
            self.timers[Timer::T3Rtx as usize] = now + self.rto;
        }
    }

    fn write_trailing_control(&mut self, now: Instant, w: &mut Writer<'_>) {
        if self.ctl.shutdown && w.room() >= 8 {
            self.ctl.shutdown = false;
            let s = w.begin_chunk(ChunkType::SHUTDOWN, 0);
            w.put_u32(self.rx_cum_tsn);
            w.end_chunk(s);
        }
        if self.ctl.heartbeat && w.room() >= 24 {
            self.ctl.heartbeat = false;
            let s = w.begin_chunk(ChunkType::HEARTBEAT, 0);
            let p = w.begin_tlv(param::HEARTBEAT_INFO);
            w.put_slice(&self.heartbeat_nonce.to_be_bytes());
            w.put_slice(&now.0.to_be_bytes());
            w.end_tlv(p);
            w.end_chunk(s);
        }
    }

    /// Queues an error cause for the next ERROR chunk; drops it when the buffer is full.
    fn queue_error(&mut self, pool: &mut BufferPool, code: u16, info: &[u8]) {
        let need = padded(4 + info.len());
        let at = self.errors.len();
        if at + need > ERROR_BYTES_MAX || 4 + info.len() > usize::from(u16::MAX) {
            return;
        }
        if self.errors.capacity() == 0 {
            self.errors = pool.take(ERROR_BYTES_MAX);
        }
        self.errors.extend_from_slice(&code.to_be_bytes());
        self.errors.extend_from_slice(&((4 + info.len()) as u16).to_be_bytes());
        self.errors.extend_from_slice(info);
        self.errors.resize(at + need, 0);
    }

    /// Moves the send ring's absolute origin, so that a test sees offsets cross 2^32.
    #[cfg(test)]
    pub(crate) fn rebase_tx_bytes(&mut self, base: u64) {
        assert!(self.tx.is_empty() && self.tx_bytes.is_empty(), "only while nothing is queued");
        self.tx_bytes_base = base;
    }

    /// Unsent plus unacknowledged user bytes (for tests and flow control by the caller).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.tx_bytes.len()
    }

    /// A snapshot of the transmission state and counters.
    pub(crate) fn stats(&self) -> AssociationStats {
        AssociationStats {
            rto_us: crate::time::duration_us(self.rto),
            srtt_us: self.srtt_us,
            cwnd_bytes: self.cwnd,
            in_flight_bytes: self.in_flight,
            peer_rwnd_bytes: self.peer_rwnd,
            error_count: self.error_count,
            data_chunks_sent: self.counters.data_chunks_sent,
            retransmitted_chunks: self.counters.retransmitted_chunks,
            fast_retransmits: self.counters.fast_retransmits,
            t3_expirations: self.counters.t3_expirations,
        }
    }
}

/// Per-association transmission state and counters, for diagnostics and snapshot tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssociationStats {
    /// Current retransmission timeout.
    pub rto_us: u64,
    /// Smoothed RTT, once measured.
    pub srtt_us: Option<u64>,
    /// Congestion window.
    pub cwnd_bytes: u32,
    /// Bytes sent and not yet acknowledged (or marked for retransmission).
    pub in_flight_bytes: u32,
    /// The peer's receive window as we estimate it.
    pub peer_rwnd_bytes: u32,
    /// Consecutive unanswered retransmissions or heartbeats.
    pub error_count: u32,
    /// DATA chunks sent, first transmissions and retransmissions.
    pub data_chunks_sent: u64,
    /// DATA chunks sent again.
    pub retransmitted_chunks: u64,
    /// Fast retransmit events (§7.2.4).
    pub fast_retransmits: u64,
    /// T3-rtx expirations (§6.3.3).
    pub t3_expirations: u64,
}

/// The counters of [`AssociationStats`]; its other fields are read from the association's
/// state when a snapshot is taken, so they are not kept twice (40 bytes, issue 14).
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    data_chunks_sent: u64,
    retransmitted_chunks: u64,
    fast_retransmits: u64,
    t3_expirations: u64,
}

/// Gives a control buffer back to the pool, leaving `v` empty and unallocated.
fn release(pool: &mut BufferPool, v: &mut Vec<u8>) {
    if v.capacity() > 0 {
        pool.give(core::mem::take(v));
    }
}

/// Largest user-data piece per DATA chunk: a packet minus headers and a reserved SACK.
pub(crate) fn fragment_len(cfg: &EndpointConfig) -> usize {
    let n = usize::from(cfg.mtu) - HEADER_LEN - DATA_HEADER_LEN - SACK_RESERVE;
    n & !3
}

/// The later of `newest` and the send time of `c`, when `c` was sent exactly once (§6.3.1 C5).
fn newest_sent_once(newest: Option<Instant>, c: &TxChunk) -> Option<Instant> {
    if c.sent_count != 1 {
        return newest;
    }
    Some(newest.map_or(c.sent_at, |n| n.max(c.sent_at)))
}

/// `a < b` in serial number arithmetic (RFC 1982, as §1.6 requires for TSNs).
pub(crate) fn tsn_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < (1 << 31)
}

/// Parameters an INIT or INIT ACK told us to report (Unrecognized Parameter), bounded.
#[derive(Debug)]
pub(crate) struct ReportBuf {
    pub(crate) bytes: [u8; REPORT_BYTES_MAX],
    pub(crate) len: usize,
}

/// Bytes of unrecognized parameters we echo back; more are silently left out.
pub(crate) const REPORT_BYTES_MAX: usize = 128;

impl Default for ReportBuf {
    fn default() -> Self {
        ReportBuf { bytes: [0; REPORT_BYTES_MAX], len: 0 }
    }
}

/// Why an INIT or INIT ACK must be refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InitRefusal {
    /// Host Name Address (§5.1.2: ABORT with Unresolvable Address).
    HostName,
    /// A malformed parameter list.
    Malformed,
}

/// Walks INIT / INIT ACK parameters: keeps addresses, returns the State Cookie if present,
/// applies the unknown-parameter rules of §3.2.1 and collects what must be reported.
pub(crate) fn parse_init_params<'a>(
    params: &'a [u8],
    addrs: &mut [Option<IpAddr>; ADDRESSES_MAX],
    report: &mut ReportBuf,
) -> Result<Option<&'a [u8]>, InitRefusal> {
    let mut cookie = None;
    let mut n = 0;
    for p in wire::ParamIter::new(params) {
        let p = p.map_err(|_| InitRefusal::Malformed)?;
        match p.ty {
            param::IPV4 if p.value.len() == 4 => {
                let ip = IpAddr::from([p.value[0], p.value[1], p.value[2], p.value[3]]);
                if n < ADDRESSES_MAX {
                    addrs[n] = Some(ip);
                    n += 1;
                }
            }
            param::IPV6 if p.value.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(p.value);
                if n < ADDRESSES_MAX {
                    addrs[n] = Some(IpAddr::from(o));
                    n += 1;
                }
            }
            param::STATE_COOKIE => cookie = Some(p.value),
            param::HOST_NAME => return Err(InitRefusal::HostName),
            param::COOKIE_PRESERVATIVE | param::SUPPORTED_ADDRESS_TYPES => {}
            param::IPV4 | param::IPV6 => return Err(InitRefusal::Malformed),
            ty => {
                let action = wire::UnknownAction::from_top_bits(ty >> 14);
                if action.reports() {
                    // Kept as received (padded); the INIT ACK wraps each one in an Unrecognized
                    // Parameter, the ERROR cause 8 carries them as they are.
                    let need = padded(p.raw.len());
                    if report.len + need + 4 <= REPORT_BYTES_MAX {
                        let b = &mut report.bytes[report.len..report.len + need];
                        b.fill(0);
                        b[..p.raw.len()].copy_from_slice(p.raw);
                        report.len += need;
                    }
                }
                if !action.skips() {
                    break;
                }
            }
        }
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: serial-number comparison holds across the 2^32 wrap (RFC 1982).
    #[test]
    fn tsn_serial_compare() {
        assert!(tsn_lt(1, 2));
        assert!(!tsn_lt(2, 1));
        assert!(!tsn_lt(5, 5));
        assert!(tsn_lt(u32::MAX, 0));
        assert!(tsn_lt(u32::MAX - 10, 5));
    }

    fn tlv(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
        v.extend_from_slice(value);
        while v.len() & 3 != 0 {
            v.push(0);
        }
        v
    }

    // Goal: the four unknown-parameter actions of §3.2.1, with the parameters Linux sends
    // (ECN 0x8000 skip, Forward-TSN 0xc000 skip+report), plus a stop (0x0123) and a
    // stop+report (0x4123) that end the walk before the address behind them.
    #[test]
    fn init_params_unknown_bits() {
        let addr = tlv(param::IPV4, &[10, 0, 0, 2]);
        let cases: [(u16, bool, bool); 4] = [
            (0x8000, true, false),
            (0xc000, true, true),
            (0x0123, false, false),
            (0x4123, false, true),
        ];
        for (ty, seen_addr, reported) in cases {
            let mut bytes = tlv(ty, &[]);
            bytes.extend_from_slice(&addr);
            let mut addrs = [None; ADDRESSES_MAX];
            let mut report = ReportBuf::default();
            let r = parse_init_params(&bytes, &mut addrs, &mut report);
            assert_eq!(r, Ok(None), "type {ty:#x}");
            assert_eq!(addrs[0].is_some(), seen_addr, "type {ty:#x}");
            assert_eq!(report.len > 0, reported, "type {ty:#x}");
        }
    }
}
