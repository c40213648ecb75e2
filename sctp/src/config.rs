//! Endpoint limits and protocol parameters, each with its named default in one place (STYLE §5).

use core::time::Duration;

/// Everything an [`Endpoint`](crate::Endpoint) needs to know up front. Every queue and table the
/// endpoint keeps is bounded by a field here.
///
/// | field | default | RFC 9260 name / why |
/// |---|---|---|
/// | `cookie_lifetime` | 60 s | Valid.Cookie.Life, §16 |
/// | `rto_initial` / `rto_min` / `rto_max` | 1 s / 1 s / 60 s | RTO.Initial/Min/Max; as Linux's `net.sctp.rto_min` (a 200 ms floor retransmits every lone message a delaying peer SACKs after 200 ms) |
/// | `max_init_retransmits` | 8 | Max.Init.Retransmits |
/// | `path_max_retrans` | 5 | Path.Max.Retrans |
/// | `assoc_max_retrans` | 10 | Association.Max.Retrans |
/// | `hb_interval` | 30 s | HB.interval |
/// | `delayed_ack` | 200 ms | §6.2 (zero: SACK every packet at once) |
/// | `max_message_size` | 64 KiB | largest user message, sent or received |
/// | `associations_max` | 4096 | per endpoint (per core) |
/// | `send_buffer_bytes_max` | 256 KiB | queued + in flight per association |
/// | `reassembly_bytes_max` | 256 KiB | received, not yet read, per association |
/// | `rwnd` | = reassembly_bytes_max | advertised receive window |
/// | `num_ostreams` / `max_instreams` | 16 / 16 | INIT OS / MIS |
/// | `mtu` | 1200 | largest SCTP packet = UDP payload (RFC 6951 §5.6: the IP MTU minus 8) |
/// | `responses_max` | 256 | stateless replies (INIT ACK, ABORT) queued at once; more are dropped |
/// | `events_max` | 65 536 | events queued before the caller polls them |
/// | `tag_steering` | none | tags that name the owning core (see [`TagSteering`]) |
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// How long a State Cookie stays valid after we issue it (Valid.Cookie.Life).
    pub cookie_lifetime: Duration,
    /// RTO before any RTT measurement (RTO.Initial).
    pub rto_initial: Duration,
    /// Lower bound on the RTO (RTO.Min).
    pub rto_min: Duration,
    /// Upper bound on the RTO (RTO.Max).
    pub rto_max: Duration,
    /// INIT / COOKIE ECHO retransmissions before the setup fails (Max.Init.Retransmits).
    pub max_init_retransmits: u32,
    /// Consecutive unanswered retransmissions/heartbeats before a path is inactive.
    pub path_max_retrans: u32,
    /// Consecutive unanswered retransmissions/heartbeats before the association is lost.
    pub assoc_max_retrans: u32,
    /// Idle time between heartbeats, added to the RTO (HB.interval). Zero disables heartbeats.
    pub hb_interval: Duration,
    /// Longest delay of a SACK (§6.2: at most 500 ms). Zero acknowledges every packet at once.
    pub delayed_ack: Duration,
    /// Largest user message in bytes, both for `send` and for reassembly.
    pub max_message_size: u32,
    /// Most associations this endpoint holds at once.
    pub associations_max: u32,
    /// Most user bytes queued or in flight per association; `send` returns `Full` above it.
    pub send_buffer_bytes_max: u32,
    /// Most received user bytes held per association (reassembly plus unread messages).
    pub reassembly_bytes_max: u32,
    /// Advertised receive window (a_rwnd) when the receive buffer is empty.
    pub rwnd: u32,
    /// Outbound streams we ask for (OS in INIT).
    pub num_ostreams: u16,
    /// Inbound streams we accept (MIS in INIT).
    pub max_instreams: u16,
    /// Largest SCTP packet we send, in bytes (the UDP payload).
    pub mtu: u16,
    /// Stateless replies queued at once (INIT ACK, ABORT, SHUTDOWN COMPLETE); more are dropped.
    pub responses_max: u32,
    /// Events queued before the caller polls them; more are dropped and counted.
    pub events_max: u32,
    /// Verification tags that name the core owning the association (see [`TagSteering`]).
    /// Default `None`: tags are plain random.
    pub tag_steering: Option<TagSteering>,
}

/// One endpoint per core behind one UDP port, with packets steered to a core by the
/// verification tag they carry (`tag % cores`, RFC 6951 §5 puts the tag at bytes 4..8 of the
/// UDP payload; `transport::reuseport` has the kernel side).
///
/// Every endpoint of the group must be created with the same cookie secret: an INIT reaches
/// whichever core the kernel's 4-tuple hash picks (its tag is 0), and that core answers with a
/// tag of the *next core in turn*, so that the COOKIE ECHO, which carries that tag, lands on and
/// opens the association on that core. New associations are thereby spread round robin over the
/// cores whatever their 4-tuple: all associations of one peer host arrive from one UDP port
/// (kernel SCTP encapsulates everything from port 9899), which a 4-tuple hash would pin to one
/// core. Associations this endpoint opens (`connect`) take a tag of its own core.
///
/// Limit: a restarted peer's INIT for an association living on another core is not recognised
/// as a restart there; the peer gets a new association and the old one ends on its own
/// (the peer aborts it as out of the blue, or heartbeats fail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagSteering {
    /// Cores in the group (the modulus), at least 1.
    pub cores: u32,
    /// This endpoint's core, below `cores`.
    pub core: u32,
}

impl EndpointConfig {
    /// Worst-case time from the moment an idle peer goes silent until `CommunicationLost`.
    ///
    /// Heartbeats go out every `RTO + hb_interval`; each unanswered one counts an error, and the
    /// association fails when the count exceeds `assoc_max_retrans`. The RTO is at most `rto_max`
    /// and one interval may already be running when the peer goes silent, hence `+ 2`.
    pub fn failure_detection_bound(&self) -> Duration {
        (self.hb_interval + self.rto_max) * (self.assoc_max_retrans + 2)
    }

    /// Panics on a configuration that cannot work (programmer error, checked at startup).
    pub(crate) fn validate(&self) {
        assert!(self.max_message_size >= MESSAGE_SIZE_MIN, "max_message_size below 64 KiB");
        assert!(self.reassembly_bytes_max >= self.max_message_size, "a message must fit");
        assert!(self.send_buffer_bytes_max >= self.max_message_size, "a message must fit");
        assert!(self.rwnd >= MTU_MIN as u32, "rwnd below one packet");
        assert!(self.mtu >= MTU_MIN && self.mtu as usize <= crate::wire::PACKET_BYTES_MAX);
        assert!(self.rto_min <= self.rto_initial && self.rto_initial <= self.rto_max);
        assert!(self.num_ostreams > 0 && self.max_instreams > 0);
        assert!(self.associations_max > 0 && self.associations_max <= crate::ASSOCIATIONS_LIMIT);
        assert!(self.responses_max > 0 && self.events_max > 0);
        assert!(self.delayed_ack <= Duration::from_millis(500), "RFC 9260 §6.2: at most 500 ms");
        if let Some(t) = self.tag_steering {
            assert!(
                t.cores >= 1 && t.core < t.cores,
                "tag_steering: core {} of {}",
                t.core,
                t.cores
            );
        }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            cookie_lifetime: Duration::from_secs(60),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_secs(1),
            rto_max: Duration::from_secs(60),
            max_init_retransmits: 8,
            path_max_retrans: 5,
            assoc_max_retrans: 10,
            hb_interval: Duration::from_secs(30),
            delayed_ack: Duration::from_millis(200),
            max_message_size: 64 * 1024,
            associations_max: 4096,
            send_buffer_bytes_max: 256 * 1024,
            reassembly_bytes_max: 256 * 1024,
            rwnd: 256 * 1024,
            num_ostreams: 16,
            max_instreams: 16,
            mtu: 1200,
            responses_max: 256,
            events_max: 65_536,
            tag_steering: None,
        }
    }
}

/// The issue requires messages of at least 64 KiB.
pub const MESSAGE_SIZE_MIN: u32 = 64 * 1024;
/// Smallest packet budget we support: an INIT ACK with our largest cookie must fit.
pub const MTU_MIN: u16 = 512;
