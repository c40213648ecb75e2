//! Every address, port, timer and limit of the registrar, with its default, in one place.
//!
//! Layering: built-in defaults, then a TOML file (`--config`), then command-line flags. Each
//! field is documented here once; the README's limits table is written from this file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The registrar's whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Registrar identifier (RFC 5353 §2.1); 0 means "pick a random non-zero one at start".
    pub registrar_id: u32,
    /// Worker threads, one pinned per core; 0 means "all cores".
    pub workers: usize,
    /// Which SCTP implementation carries ASAP and ENRP.
    pub backend: Backend,
    /// UDP address our userspace SCTP listens on (RFC 6951; IANA port 9899).
    pub udp_encapsulation: SocketAddr,
    /// Largest SCTP packet (the UDP payload) the userspace backend sends, 512-65 507. Default
    /// 1200: fits any path, tunnels included. Raise it where the path allows (loopback: 65 507,
    /// a 9000-byte jumbo-frame LAN: 8972) and more answers share one datagram; receive and
    /// send buffers grow to match (2 × 1024 × this many bytes per core).
    pub sctp_mtu: u16,
    /// Upper bound on the SCTP retransmission timeout (RTO.Max, RFC 9260 §16) of the
    /// userspace backend, 1 000-60 000 ms. Default 60 000 (the RFC's). The RTO doubles with
    /// each unanswered retransmission up to this, so after a partition or a pause an
    /// association is silent for up to this long after the network is back: ENRP peers heard
    /// again late are taken for dead (the fault lab). Lower it, as SIGTRAN deployments do,
    /// where peers must be back within a second or two of a heal.
    pub sctp_rto_max_ms: u32,
    /// Send runs of 8 or more same-sized SCTP packets to one peer as one UDP segmentation
    /// offload send (userspace backend). With many PUs or PEs behind one peer socket it more
    /// than halves the CPU per answer on loopback (BENCHMARKS.md). Default off: Linux's own
    /// SCTP in UDP crashes on receiving such datagrams (Debian's 6.1 kernel, seen in the lab
    /// VM), so turn it on only where no peer runs kernel SCTP.
    pub udp_gso: bool,
    /// SCTP port of the ASAP service (RFC 5352 §6: 3863).
    pub asap_port: u16,
    /// SCTP port of the ENRP service (RFC 5353: 9901).
    pub enrp_port: u16,
    /// Addresses the kernel-SCTP backend binds (several for multi-homing).
    pub kernel_addresses: Vec<IpAddr>,
    /// Each core keeps a read replica of the other cores' pools and answers handle resolutions
    /// from it, instead of forwarding each one to the pool's core and back. Writes stay with
    /// the pool's core, which updates the replicas before it answers. Default on; it costs
    /// memory (every core holds every PE's record; the PE's encoded parameter is shared), so
    /// turn it off for very large handlespaces on many cores.
    pub replicas: bool,
    /// Let the heap grow in transparent huge pages (2 MiB) where the host's THP setting
    /// allows them. Default off: the allocator reserves its arenas in 2 MiB-aligned blocks, so
    /// with huge pages every first touch of a block makes 2 MiB resident, and an idle
    /// one-worker registrar holds 40 MB instead of 14 (87 instead of 19 on two workers;
    /// BENCHMARKS.md). Turn it on for a very large handlespace on a host with memory to
    /// spare, where fewer TLB misses matter more than resident size.
    pub huge_pages: bool,
    /// Server Announce (RFC 5352 §3.6) settings.
    pub announce: Announce,
    /// ENRP (RFC 5353) with peer registrars.
    pub enrp: Enrp,
    /// The Prometheus endpoint.
    pub metrics: Metrics,
    /// The admin API and status page.
    pub admin: Admin,
    /// The SNMP AgentX subagent (RFC 2741) serving RFC 5525's RSERPOOL-MIB.
    pub snmp: Snmp,
    /// Timers.
    pub timers: Timers,
    /// Limits.
    pub limits: Limits,
}

/// SCTP backends.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The host kernel's SCTP (one-to-many sockets), where it exists.
    Kernel,
    /// Our own SCTP carried in UDP (RFC 6951): works on every host.
    Userspace,
}

/// ASAP Server Announce settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Announce {
    /// Send announces at all.
    pub enabled: bool,
    /// Multicast group and port (RFC 5352 §3.6 leaves it to configuration; RSPLIB uses
    /// 239.0.0.50:3863).
    pub group: SocketAddr,
    /// The announce period, T6 in RSPLIB's registrar (1 s).
    pub interval_ms: u64,
    /// Local interface address announces leave from (IP_MULTICAST_IF). Default 127.0.0.1, so
    /// that a registrar started without configuration never multicasts beyond the host.
    pub interface: Ipv4Addr,
}

/// The Prometheus endpoint (HTTP, text exposition format).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Address to serve `/metrics`, `/healthz` and `/readyz` on. Default none (off); give a
    /// loopback address unless a scraper elsewhere must reach it.
    pub listen: Option<SocketAddr>,
}

/// The admin API (HTTP + JSON) and status page (`src/io/admin.rs`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// Address to serve the admin API, its status page and `/healthz`, `/readyz` on. Default
    /// none (off). Only a loopback address, unless `allow_non_loopback` says otherwise.
    pub listen: Option<SocketAddr>,
    /// File whose first line is the bearer token every request must carry; required when
    /// `listen` is set. Read once at start.
    pub token_file: Option<std::path::PathBuf>,
    /// Let `listen` be a non-loopback address. The API is plain HTTP: the token crosses the
    /// network in clear, so put TLS in front (a reverse proxy) before turning this on.
    pub allow_non_loopback: bool,
}

/// The SNMP AgentX subagent (`src/io/agentx.rs`): read-only RSERPOOL-MIB (RFC 5525).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Snmp {
    /// The AgentX master agent to connect to: a Unix socket path (net-snmp's default is
    /// `/var/agentx/master`) or `tcp:HOST:PORT` / `HOST:PORT`. Default none (off). When the
    /// master is away the subagent retries every few seconds; the registrar never stops for it.
    pub agentx: Option<String>,
}

/// ENRP settings: peers and the RFC 5353 §4.2 thresholds, in milliseconds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Enrp {
    /// Speak ENRP at all (PPID 12 on `enrp_port`). Off: a registrar alone that drops ENRP.
    pub enabled: bool,
    /// Peer registrars' ENRP addresses (IP and SCTP port; in UDP on port 9899 with the
    /// userspace backend). The first to answer is the mentor (RFC 5353 §3.2.2.1).
    pub peers: Vec<SocketAddr>,
    /// Our ENRP address as peers reach it (Server Information). Default: the IP of
    /// `udp_encapsulation` (userspace) or the first `kernel_addresses` entry, with `enrp_port`.
    pub address: Option<SocketAddr>,
    /// PEER-HEARTBEAT-CYCLE: Presence to every peer this often (RFC default 30 s).
    pub heartbeat_cycle_ms: u64,
    /// MAX-TIME-LAST-HEARD: a peer silent this long is probed (RFC default 61 s).
    pub max_time_last_heard_ms: u64,
    /// MAX-TIME-NO-RESPONSE: a probe or request unanswered this long fails (RFC default 5 s).
    pub max_time_no_response_ms: u64,
    /// How long a starting registrar waits for a ready mentor before it serves alone.
    pub mentor_hunt_timeout_ms: u64,
    /// PEs per Handle Table Response page (1-256).
    pub table_page_elements_max: u32,
    /// Announce our Presence on the ENRP multicast channel and peer with the registrars
    /// heard there (RFC 5353 §3.1; RSPLIB's `-enrpannounce`). Off by default: a registrar
    /// peers only with registrars it was told of, unless the operator asks for discovery.
    pub multicast: bool,
    /// ENRP multicast group and port (RSPLIB's default, 239.0.0.51:9901).
    pub multicast_group: SocketAddr,
    /// Local interface address the channel is joined and sent on, as for the Server
    /// Announce: default 127.0.0.1, never beyond the host unless configured.
    pub multicast_interface: Ipv4Addr,
}

impl Default for Enrp {
    fn default() -> Self {
        Self {
            enabled: true,
            peers: Vec::new(),
            address: None,
            heartbeat_cycle_ms: 30_000,
            max_time_last_heard_ms: 61_000,
            max_time_no_response_ms: 5_000,
            mentor_hunt_timeout_ms: 15_000,
            table_page_elements_max: 256,
            multicast: false,
            multicast_group: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 51)), 9901),
            multicast_interface: Ipv4Addr::LOCALHOST,
        }
    }
}

/// Protocol timers (RFC 5352 §5, RFC 5353 §7), in milliseconds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Timers {
    /// Period of Endpoint Keep Alive to each owned PE; sent spread ±50 % (RFC 5352 §3.4).
    /// Default as RSPLIB's registrar (`-endpointkeepaliveinterval`, 5 s).
    pub keep_alive_interval_ms: u64,
    /// Time to wait for an Endpoint Keep Alive Ack before removing the PE.
    /// Default as RSPLIB's registrar (`-endpointkeepalivetimeout`, 5 s).
    pub keep_alive_timeout_ms: u64,
    /// Upper bound on a PE's requested registration lifetime; longer requests are clamped.
    pub registration_life_max_ms: u64,
    /// After a core last sent work to another core or received some, it keeps polling instead
    /// of sleeping for this many µs: the answer to a forwarded request is then picked up without
    /// a doorbell and a wake-up on both sides, which cost more than the work
    /// (`examples/core_scaling`: 2 cores at a quarter of their speed when they slept between
    /// cross-core messages). 0 always sleeps; choose 0 where the registrar shares its cores
    /// with other busy processes. A single worker never spins.
    pub mesh_spin_us: u64,
    /// Which clock a loop turn reads (`registrar::core::clock`): `auto` reads the coarse clock
    /// on a single worker where a precise read is a system call (measured at start: hosts
    /// whose clocksource the vDSO cannot read, such as an emulated HPET), `precise` always the
    /// precise one, `coarse` the coarse one on a single worker whatever a precise read costs.
    /// Several workers always read precisely (their cross-core spin is 50 µs).
    pub clock: TurnClockSetting,
}

/// [`Timers::clock`].
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TurnClockSetting {
    /// Coarse where precise reads are expensive, on a single worker.
    #[default]
    Auto,
    /// Always precise.
    Precise,
    /// Coarse on a single worker.
    Coarse,
}

/// Every table, slab and queue bound. A full one is an error cause to the peer, never a panic
/// or an unbounded allocation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Pools per registrar (all cores together).
    pub pools_max: u32,
    /// Pool elements per registrar (all cores together).
    pub pool_elements_max: u32,
    /// Pool elements in one pool.
    pub pool_elements_per_pool_max: u32,
    /// SCTP associations (PEs, PUs, peers) per core.
    pub sessions_per_core_max: u32,
    /// Depth of each cross-core queue (one per ordered pair of cores).
    pub cross_core_queue_depth: u32,
    /// Unreachable reports that remove a PE (RFC 5352 §3.5 MAX-BAD-PE-REPORT; RSPLIB: 3).
    pub bad_pe_reports_max: u32,
    /// Items a single Handle Resolution may return.
    pub resolution_items_max: u32,
    /// Items returned when a Handle Resolution names no count (RSPLIB's PUs ask for 3 when
    /// they name one; RFC 5352 §3.3 suggests all, which does not scale to large pools).
    pub resolution_items_default: u32,
}

/// RFC 9260 §16 RTO.Max.
pub const SCTP_RTO_MAX_MS_DEFAULT: u32 = 60_000;
/// `sctp_rto_max_ms` accepted: not below RTO.Min (1 s), not above the RFC's default.
pub const SCTP_RTO_MAX_MS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=60_000;

impl Default for Config {
    fn default() -> Self {
        Self {
            registrar_id: 0,
            workers: 0,
            backend: Backend::Userspace,
            udp_encapsulation: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9899),
            sctp_mtu: 1200,
            sctp_rto_max_ms: SCTP_RTO_MAX_MS_DEFAULT,
            udp_gso: false,
            asap_port: 3863,
            enrp_port: 9901,
            kernel_addresses: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
            replicas: true,
            huge_pages: false,
            announce: Announce::default(),
            enrp: Enrp::default(),
            metrics: Metrics::default(),
            admin: Admin::default(),
            snmp: Snmp::default(),
            timers: Timers::default(),
            limits: Limits::default(),
        }
    }
}

impl Default for Announce {
    fn default() -> Self {
        Self {
            enabled: true,
            group: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 0, 0, 50)), 3863),
            interval_ms: 1_000,
            interface: Ipv4Addr::LOCALHOST,
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            keep_alive_interval_ms: 5_000,
            keep_alive_timeout_ms: 5_000,
            registration_life_max_ms: 3_600_000,
            mesh_spin_us: 50,
            clock: TurnClockSetting::Auto,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pools_max: 100_000,
            pool_elements_max: 1_000_000,
            pool_elements_per_pool_max: 1_000_000,
            sessions_per_core_max: 65_536,
            cross_core_queue_depth: 4_096,
            bad_pe_reports_max: 3,
            resolution_items_max: 64,
            resolution_items_default: 3,
        }
    }
}

/// Most PEs one Handle Resolution Response may carry: with the codec's largest PE parameter for
/// pool users (16 IPv6 addresses, about 360 bytes) 128 of them stay well under 64 KiB, the
/// largest message our SCTP reassembles.
pub const RESOLUTION_ITEMS_LIMIT: u32 = 128;

/// A configuration that cannot be used, naming the field.
#[derive(Debug, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads a TOML file; errors name the file and the field.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// The configuration as TOML that [`from_toml`](Self::from_toml) reads back to the same
    /// value (`registrar --print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every field has a TOML form")
    }

    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)
            .map_err(|e| ConfigError(e.message().to_owned()))
            .map_err(|e| ConfigError(format!("invalid config: {}", e.0)))?;
        config.validate()?;
        Ok(config)
    }

    /// Our ENRP address as peers reach it.
    pub fn enrp_address(&self) -> SocketAddr {
        if let Some(address) = self.enrp.address {
            return address;
        }
        let ip = match self.backend {
            Backend::Userspace => self.udp_encapsulation.ip(),
            Backend::Kernel => {
                self.kernel_addresses.first().copied().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
        };
        SocketAddr::new(ip, self.enrp_port)
    }

    /// Worker threads to run: `workers`, or every core the process may use when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Settings that work but defeat themselves, each naming its field: timers below SCTP's
    /// RTO.Min (1 s), after which a lost packet is retransmitted, turn one loss into a failure
    /// (the fault lab's random-loss: live peers declared dead, PEs dropped at 10 % loss).
    pub fn warnings(&self) -> Vec<String> {
        const RTO_MIN_MS: u64 = 1_000;
        let mut out = Vec::new();
        let mut check = |field: &str, ms: u64| {
            if ms <= RTO_MIN_MS {
                out.push(format!(
                    "{field} = {ms} ms is not above SCTP's RTO.Min ({RTO_MIN_MS} ms): one lost \
                     packet, retransmitted after RTO.Min, makes a live peer look failed"
                ));
            }
        };
        if self.enrp.enabled {
            check("enrp.max_time_no_response_ms", self.enrp.max_time_no_response_ms);
        }
        check("timers.keep_alive_timeout_ms", self.timers.keep_alive_timeout_ms);
        out
    }

    /// Checks relationships between fields; each error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field: &str, why: &str| Err(ConfigError(format!("{field}: {why}")));
        if self.asap_port == 0 {
            return fail("asap_port", "must not be 0");
        }
        if !SCTP_RTO_MAX_MS_RANGE.contains(&self.sctp_rto_max_ms) {
            let (low, high) = (SCTP_RTO_MAX_MS_RANGE.start(), SCTP_RTO_MAX_MS_RANGE.end());
            return fail("sctp_rto_max_ms", &format!("must be in {low}..={high}"));
        }
        let mtus = transport::sctp_udp::MTU_RANGE;
        if !mtus.contains(&self.sctp_mtu) {
            let why = format!("must be in {}..={}", mtus.start(), mtus.end());
            return fail("sctp_mtu", &why);
        }
        if self.enrp_port == self.asap_port {
            return fail("enrp_port", "must differ from asap_port");
        }
        if self.timers.keep_alive_interval_ms == 0 {
            return fail("timers.keep_alive_interval_ms", "must be at least 1");
        }
        if self.timers.keep_alive_timeout_ms == 0 {
            return fail("timers.keep_alive_timeout_ms", "must be at least 1");
        }
        if self.announce.enabled && !self.announce.group.ip().is_multicast() {
            return fail("announce.group", "must be a multicast address");
        }
        let v4_group =
            matches!(self.enrp.multicast_group.ip(), IpAddr::V4(ip) if ip.is_multicast());
        if self.enrp.multicast && !v4_group {
            return fail("enrp.multicast_group", "must be an IPv4 multicast address");
        }
        if self.announce.interval_ms == 0 {
            return fail("announce.interval_ms", "must be at least 1");
        }
        if self.limits.cross_core_queue_depth == 0 {
            return fail("limits.cross_core_queue_depth", "must be at least 1");
        }
        if !(1..=RESOLUTION_ITEMS_LIMIT).contains(&self.limits.resolution_items_max) {
            let why = format!("must be 1 to {RESOLUTION_ITEMS_LIMIT}");
            return fail("limits.resolution_items_max", &why);
        }
        if self.limits.bad_pe_reports_max == 0 {
            return fail("limits.bad_pe_reports_max", "must be at least 1");
        }
        let enrp = &self.enrp;
        for (field, value) in [
            ("enrp.heartbeat_cycle_ms", enrp.heartbeat_cycle_ms),
            ("enrp.max_time_last_heard_ms", enrp.max_time_last_heard_ms),
            ("enrp.max_time_no_response_ms", enrp.max_time_no_response_ms),
        ] {
            if value == 0 {
                return fail(field, "must be at least 1");
            }
        }
        if enrp.max_time_last_heard_ms <= enrp.heartbeat_cycle_ms {
            return fail("enrp.max_time_last_heard_ms", "must exceed enrp.heartbeat_cycle_ms");
        }
        let page = enrp.table_page_elements_max as usize;
        if page == 0 || page > codec::POOL_ELEMENTS_PER_MESSAGE_MAX {
            let why = format!("must be in 1..={}", codec::POOL_ELEMENTS_PER_MESSAGE_MAX);
            return fail("enrp.table_page_elements_max", &why);
        }
        if enrp.peers.len() > crate::proto::enrp::PEERS_MAX {
            return fail("enrp.peers", "too many peers");
        }
        if let Some(master) = &self.snmp.agentx {
            let rest = master.strip_prefix("tcp:").or(master.strip_prefix("unix:"));
            if rest.unwrap_or(master).trim().is_empty() {
                return fail("snmp.agentx", "a Unix socket path or tcp:HOST:PORT, not empty");
            }
        }
        if let Some(listen) = self.admin.listen {
            if !listen.ip().is_loopback() && !self.admin.allow_non_loopback {
                let why = "not a loopback address (set admin.allow_non_loopback = true to allow)";
                return fail("admin.listen", why);
            }
            if self.admin.token_file.is_none() {
                return fail("admin.token_file", "required when admin.listen is set");
            }
        }
        if self.limits.pool_elements_per_pool_max > self.limits.pool_elements_max {
            return fail("limits.pool_elements_per_pool_max", "exceeds limits.pool_elements_max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the resolution size bound is a boundary pair (a larger answer could pass 64 KiB).
    #[test]
    fn resolution_items_bound() {
        let at = |n: u32| Config::from_toml(&format!("[limits]\nresolution_items_max = {n}\n"));
        assert!(at(RESOLUTION_ITEMS_LIMIT).is_ok());
        let e = at(RESOLUTION_ITEMS_LIMIT + 1).unwrap_err();
        assert!(e.0.contains("limits.resolution_items_max") && e.0.contains("128"), "{e}");
    }

    #[test]
    fn printed_configuration_reads_back_to_the_same_value() {
        let mut config = Config::default();
        config.enrp.peers = vec!["127.0.0.2:9901".parse().unwrap()];
        config.enrp.address = Some("127.0.0.1:9901".parse().unwrap());
        config.backend = Backend::Kernel;
        config.limits.pools_max = 7;
        let text = config.to_toml();
        assert!(text.contains("backend = \"kernel\""), "{text}");
        assert_eq!(Config::from_toml(&text).unwrap(), config);
        assert_eq!(Config::from_toml(&Config::default().to_toml()).unwrap(), Config::default());
    }

    // Goal: the defaults are valid and a TOML file overrides only what it names.
    #[test]
    fn toml_overrides_defaults() {
        let config =
            Config::from_toml("workers = 2\n[timers]\nkeep_alive_timeout_ms = 250\n").unwrap();
        assert_eq!(config.workers, 2);
        assert_eq!(config.timers.keep_alive_timeout_ms, 250);
        assert_eq!(config.timers.keep_alive_interval_ms, Timers::default().keep_alive_interval_ms);
        Config::default().validate().unwrap();
        assert!(config.replicas && !config.udp_gso, "replicas on, offload off by default");
        assert!(!config.huge_pages, "no huge pages by default");
        let switched =
            Config::from_toml("replicas = false\nudp_gso = true\nhuge_pages = true\n").unwrap();
        assert!(!switched.replicas && switched.udp_gso && switched.huge_pages);
    }

    // Goal: bad input names the field. Method: an unknown key, a wrong type, a bad relation.
    #[test]
    fn errors_name_the_field() {
        let unknown = Config::from_toml("wrokers = 2").unwrap_err();
        assert!(unknown.0.contains("wrokers"), "{unknown}");
        let typed = Config::from_toml("[timers]\nkeep_alive_timeout_ms = \"x\"").unwrap_err();
        assert!(typed.0.contains("invalid"), "{typed}");
        assert!(Config::default().warnings().is_empty(), "the defaults are consistent");
        let short = Config::from_toml("[timers]\nkeep_alive_timeout_ms = 800").unwrap();
        let warnings = short.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("timers.keep_alive_timeout_ms"), "{warnings:?}");
        let rto = Config::from_toml("sctp_rto_max_ms = 500").unwrap_err();
        assert!(rto.0.contains("sctp_rto_max_ms"), "{rto}");
        let mtu = Config::from_toml("sctp_mtu = 100").unwrap_err();
        assert!(mtu.0.contains("sctp_mtu"), "{mtu}");
        let relation = Config::from_toml("asap_port = 9901").unwrap_err();
        assert!(relation.0.contains("enrp_port"), "{relation}");
        let group = Config::from_toml("[announce]\ngroup = \"127.0.0.1:3863\"").unwrap_err();
        assert!(group.0.contains("announce.group"), "{group}");
    }

    // Goal: the admin API stays on loopback and never runs without a token file, unless told.
    // Method: each bad combination names its field; the allowed ones validate.
    #[test]
    fn admin_is_loopback_only_and_needs_a_token_file() {
        let wide = "[admin]\nlisten = \"0.0.0.0:8080\"\ntoken_file = \"/t\"\n";
        let error = Config::from_toml(wide).unwrap_err();
        assert!(error.0.contains("admin.listen") && error.0.contains("loopback"), "{error}");
        let allowed = format!("{wide}allow_non_loopback = true\n");
        assert!(Config::from_toml(&allowed).is_ok());
        let tokenless = Config::from_toml("[admin]\nlisten = \"127.0.0.1:8080\"").unwrap_err();
        assert!(tokenless.0.contains("admin.token_file"), "{tokenless}");
        let v6 = "[admin]\nlisten = \"[::1]:8080\"\ntoken_file = \"/t\"\n";
        assert_eq!(
            Config::from_toml(v6).unwrap().admin.listen,
            Some("[::1]:8080".parse().unwrap())
        );
        assert_eq!(Config::default().admin.listen, None, "off by default");
    }

    // Goal: the AgentX subagent is off by default, takes a socket path or a TCP address from
    // `[snmp]`, and an empty one is refused at start with the field named.
    #[test]
    fn snmp_agentx_is_off_by_default_and_never_empty() {
        assert_eq!(Config::default().snmp.agentx, None, "off by default");
        let on = Config::from_toml("[snmp]\nagentx = \"/var/agentx/master\"\n").unwrap();
        assert_eq!(on.snmp.agentx.as_deref(), Some("/var/agentx/master"));
        assert!(on.validate().is_ok());
        for empty in ["", "tcp:", " "] {
            let c = Config { snmp: Snmp { agentx: Some(empty.into()) }, ..Config::default() };
            let error = c.validate().unwrap_err();
            assert!(error.0.starts_with("snmp.agentx"), "{empty:?}: {error}");
        }
        assert!(Config::from_toml("[snmp]\nagent = \"x\"\n").is_err(), "unknown keys refused");
    }
}
