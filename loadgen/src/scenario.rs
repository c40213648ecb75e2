//! Scenarios: what load to offer, as a TOML file, with every knob also a command-line flag.
//!
//! Parsing rejects unknown fields, and validation names the field it rejects
//! (`pu.rate_per_s: must be > 0 in open loop`), so a typo never silently runs the defaults.
//! Every limit below is a named constant with its reason.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One load run, as written in `loadgen/scenarios/*.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    /// Timing, threads and bounds of the run itself.
    pub run: RunConfig,
    /// What to drive.
    pub target: TargetConfig,
    /// The pools PEs register into and PUs resolve.
    pub pools: PoolsConfig,
    /// Synthetic pool elements.
    pub pe: PeConfig,
    /// Synthetic pool users.
    pub pu: PuConfig,
}

/// Timing, threads and bounds of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Total run length, from the first registration to the last issued operation.
    pub duration_ms: u64,
    /// PUs start this long after PEs, so that pools are populated before they are resolved.
    pub warmup_ms: u64,
    /// After `duration_ms`, wait at most this long for operations in flight.
    pub drain_ms: u64,
    /// An operation with no response after this long completes as a timeout.
    pub op_timeout_ms: u64,
    /// Worker threads; associations are spread round-robin over them.
    pub workers: u16,
    /// Pin worker `i` to core `(pin_first_core + i) % cores`.
    pub pin: bool,
    /// First core used when `pin` is set.
    pub pin_first_core: u16,
    /// Per-worker bound on operations in flight (sizes the client's tables).
    pub in_flight_max: u32,
    /// Width of one throughput-over-time bucket.
    pub bucket_ms: u64,
    /// Seed for every random choice of the workload.
    pub seed: u64,
}

/// What to drive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    /// Which kind of target.
    pub kind: TargetKind,
    /// Where it listens. `None` means: start one ourselves on 127.0.0.1 (an ephemeral port).
    pub address: Option<String>,
    /// Server threads of an embedded target (echo server sockets sharing the port).
    pub server_threads: u16,
    /// Datagram size for the UDP targets, at least [`crate::wire::HEADER_LEN`].
    pub payload_bytes: u16,
    /// Largest SCTP packet (UDP payload) our SCTP sends to a registrar target, and the embedded
    /// registrar's too. Default 1200, as the registrar's `sctp_mtu`.
    pub sctp_mtu: u16,
    /// Whose SCTP a registrar target's PEs and PUs use: ours over UDP (RFC 6951; `address`
    /// is then the registrar's UDP encapsulation address) or the kernel's, one one-to-one
    /// socket per association as RSPLIB's library opens them (`address` is then the
    /// registrar's SCTP address, port 3863; needs a kernel with SCTP and a running registrar).
    pub client: ClientKind,
    /// Local IP addresses of a registrar target's clients, one per worker in turn (worker `w`
    /// binds entry `w % len`). Empty (the default): the registrar's own IP, as on loopback.
    /// An association is named by its addresses and SCTP ports, so one local address carries
    /// at most the 16 384 ephemeral ports' worth of associations to one registrar; a fill of
    /// more PEs spreads over workers with addresses of their own.
    pub client_addresses: Vec<std::net::IpAddr>,
}

/// The SCTP a registrar target's clients use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// One-to-one kernel SCTP sockets (`transport::kernel_sctp::KernelSctpOneToOne`).
    Kernel,
    /// Our userspace SCTP over UDP, one transport per worker.
    #[default]
    Userspace,
}

/// Kinds of target, alphabetical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// In-process stand-in registrar over UDP: pools in a hash map, no ASAP.
    Model,
    /// The real registrar over ASAP/SCTP/UDP (plugs in at `target::registrar`).
    Registrar,
    /// UDP echo server: the raw request/response ceiling of this host.
    UdpEcho,
}

impl TargetKind {
    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Model => "model",
            TargetKind::Registrar => "registrar",
            TargetKind::UdpEcho => "udp-echo",
        }
    }
}

/// The pools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolsConfig {
    /// Number of pools; PE `i` registers into pool `i % count`.
    pub count: u32,
    /// Pool handle of pool `n` is this prefix followed by `n`.
    pub handle_prefix: String,
    /// How PUs choose the pool to resolve.
    pub choice: PoolChoice,
}

/// How PUs choose the pool to resolve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PoolChoice {
    /// Every pool equally likely.
    Uniform,
    /// Pool `k` (from 1) with probability proportional to `1 / k^exponent`: a few hot pools.
    Zipf {
        /// Skew; 0 is uniform, around 1 is typical of real name lookups.
        exponent: f64,
    },
}

/// Synthetic pool elements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeConfig {
    /// Number of PEs over all workers.
    pub count: u32,
    /// PEs that share one association to the registrar, carried by one `asap::Endpoint`
    /// (RFC 5352 lets an ASAP endpoint register several PEs over its one association to its
    /// home registrar), 1..=[`PE_PER_ASSOCIATION_MAX`]. A worker's PEs are grouped in order:
    /// its `n`-th PE is on its association `n / per_association`. Default 1: each PE on an
    /// association of its own. A kernel (or an emulated VM's) sustains far fewer associations
    /// than a registrar holds PEs, so fills of hundreds of thousands of PEs share them.
    pub per_association: u32,
    /// A registered PE re-registers this often (RFC 5352 §3.1 registration life refresh).
    pub reregister_ms: u64,
    /// How long a PE stays registered before it deregisters (churn).
    pub lifetime: Lifetime,
    /// After deregistering, a PE waits this long and registers again.
    pub rejoin_ms: u64,
    /// Initial registrations are spread uniformly over this window, so that start-up is not
    /// one burst.
    pub ramp_ms: u64,
}

/// Distribution of a PE's registered lifetime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Lifetime {
    /// Exponential with this mean (memoryless churn).
    Exponential {
        /// Mean lifetime.
        mean_ms: u64,
    },
    /// Always exactly this long (0: deregister as soon as the registration is answered).
    Fixed {
        /// The lifetime.
        ms: u64,
    },
    /// Never deregisters: no churn.
    Forever,
    /// Uniform between the bounds.
    Uniform {
        /// Shortest lifetime.
        min_ms: u64,
        /// Longest lifetime.
        max_ms: u64,
    },
}

/// Synthetic pool users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PuConfig {
    /// PU associations over all workers.
    pub associations: u32,
    /// Open loop at a rate, or closed loop with a window.
    pub mode: LoopMode,
    /// Closed loop: resolutions in flight per association.
    pub window: u32,
    /// Open loop: total resolutions per second over all associations.
    pub rate_per_s: f64,
}

/// How PUs pace resolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LoopMode {
    /// `window` resolutions in flight per association; a new one as each completes.
    Closed,
    /// Poisson arrivals at `rate_per_s`, whatever the target does (latency includes queueing).
    Open,
}

/// A scenario that cannot be run, naming the field at fault.
#[derive(Debug)]
pub enum ScenarioError {
    /// The file could not be read.
    Io(String, std::io::Error),
    /// The TOML is malformed, has an unknown field or a value of the wrong type. The message
    /// from `toml` names the key and the line.
    Parse(toml::de::Error),
    /// The values do not make a runnable scenario.
    Invalid {
        /// Dotted path of the field, e.g. `"pu.rate_per_s"`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::Io(path.display().to_string(), e))?;
        Scenario::from_toml(&text)
    }

    /// Parses and validates scenario text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(ScenarioError::Parse)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The scenario as TOML, for reports.
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of numbers, strings and tagged enums cannot fail.
        toml::to_string_pretty(self).expect("scenario serializes")
    }

    /// Checks every bound and every relation between fields.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let run = &self.run;
        check(
            run.duration_ms > 0 && run.duration_ms <= DURATION_MS_MAX,
            "run.duration_ms",
            format!("must be in 1..={DURATION_MS_MAX}"),
        )?;
        check(run.warmup_ms < run.duration_ms, "run.warmup_ms", "must be below run.duration_ms")?;
        check(run.drain_ms <= DURATION_MS_MAX, "run.drain_ms", "too long")?;
        check(
            run.op_timeout_ms > 0 && run.op_timeout_ms <= 60_000,
            "run.op_timeout_ms",
            "must be in 1..=60000 (the histogram's range)",
        )?;
        check(
            run.workers > 0 && run.workers <= WORKERS_MAX,
            "run.workers",
            format!("must be in 1..={WORKERS_MAX}"),
        )?;
        check(
            run.in_flight_max > 0 && run.in_flight_max <= IN_FLIGHT_MAX,
            "run.in_flight_max",
            format!("must be in 1..={IN_FLIGHT_MAX}"),
        )?;
        check(
            run.bucket_ms >= BUCKET_MS_MIN,
            "run.bucket_ms",
            format!("must be at least {BUCKET_MS_MIN}"),
        )?;
        check(
            run.duration_ms.saturating_add(run.drain_ms) / run.bucket_ms <= BUCKETS_MAX,
            "run.bucket_ms",
            format!("gives more than {BUCKETS_MAX} buckets"),
        )?;
        let target = &self.target;
        check(
            target.server_threads > 0 && target.server_threads <= WORKERS_MAX,
            "target.server_threads",
            format!("must be in 1..={WORKERS_MAX}"),
        )?;
        check(
            usize::from(target.payload_bytes) >= crate::wire::HEADER_LEN
                && usize::from(target.payload_bytes) <= crate::wire::DATAGRAM_MAX,
            "target.payload_bytes",
            format!("must be in {}..={}", crate::wire::HEADER_LEN, crate::wire::DATAGRAM_MAX),
        )?;
        let mtus = transport::sctp_udp::MTU_RANGE;
        check(
            mtus.contains(&target.sctp_mtu),
            "target.sctp_mtu",
            format!("must be in {}..={}", mtus.start(), mtus.end()),
        )?;
        if let Some(address) = &target.address {
            check(
                address.parse::<std::net::SocketAddr>().is_ok(),
                "target.address",
                format!("{address:?} is not ip:port"),
            )?;
        }
        check(
            target.client_addresses.is_empty() || target.kind == TargetKind::Registrar,
            "target.client_addresses",
            "only a registrar target's clients bind addresses of their own",
        )?;
        if target.client == ClientKind::Kernel {
            check(
                target.kind == TargetKind::Registrar,
                "target.client",
                "kernel clients speak ASAP: target.kind must be registrar",
            )?;
            check(
                target.address.is_some(),
                "target.client",
                "kernel clients need target.address (the registrar's SCTP address, port 3863): \
                 the embedded registrar speaks SCTP over UDP only",
            )?;
        }
        self.validate_population()
    }

    fn validate_population(&self) -> Result<(), ScenarioError> {
        check(
            self.pools.count > 0 && self.pools.count <= POOLS_MAX,
            "pools.count",
            format!("must be in 1..={POOLS_MAX}"),
        )?;
        if let PoolChoice::Zipf { exponent } = self.pools.choice {
            check((0.0..=10.0).contains(&exponent), "pools.choice.exponent", "must be in 0..=10")?;
        }
        check(
            self.pe.count <= POOL_ELEMENTS_MAX,
            "pe.count",
            format!("must be at most {POOL_ELEMENTS_MAX}"),
        )?;
        check(
            (1..=PE_PER_ASSOCIATION_MAX).contains(&self.pe.per_association),
            "pe.per_association",
            format!("must be in 1..={PE_PER_ASSOCIATION_MAX} (the PEs one asap::Endpoint carries)"),
        )?;
        check(self.pe.reregister_ms > 0, "pe.reregister_ms", "must be > 0")?;
        match self.pe.lifetime {
            Lifetime::Exponential { mean_ms } => {
                check(mean_ms > 0, "pe.lifetime.mean_ms", "must be > 0")?
            }
            // 0: deregister as soon as registered (the tightest churn).
            Lifetime::Fixed { .. } => {}
            Lifetime::Forever => {}
            Lifetime::Uniform { min_ms, max_ms } => check(
                min_ms > 0 && min_ms <= max_ms,
                "pe.lifetime.min_ms",
                "must be in 1..=max_ms",
            )?,
        }
        let pu = &self.pu;
        check(
            pu.associations <= ASSOCIATIONS_MAX,
            "pu.associations",
            format!("must be at most {ASSOCIATIONS_MAX}"),
        )?;
        check(
            self.pe.count > 0 || pu.associations > 0,
            "pu.associations",
            "and pe.count are both 0: nothing to do",
        )?;
        match pu.mode {
            LoopMode::Closed => {
                check(
                    pu.window > 0 && pu.window <= WINDOW_MAX,
                    "pu.window",
                    format!("must be in 1..={WINDOW_MAX} in closed loop"),
                )?;
                // Each worker needs room for its share of windows plus one op per PE.
                let workers = u64::from(self.run.workers);
                let needed = u64::from(pu.associations).div_ceil(workers) * u64::from(pu.window)
                    + u64::from(self.pe.count).div_ceil(workers);
                check(
                    needed <= u64::from(self.run.in_flight_max),
                    "run.in_flight_max",
                    format!("is below the {needed} that pu.window and pe.count need per worker"),
                )?;
            }
            LoopMode::Open => {
                check(
                    pu.associations == 0 || (pu.rate_per_s > 0.0 && pu.rate_per_s <= RATE_MAX),
                    "pu.rate_per_s",
                    format!("must be in (0, {RATE_MAX}] in open loop"),
                )?;
            }
        }
        Ok(())
    }

    /// Applies the flags that were given on top of the file's values, then validates again.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ScenarioError> {
        macro_rules! set {
            ($flag:ident => $($field:tt)+) => {
                if let Some(v) = o.$flag.clone() {
                    self.$($field)+ = v;
                }
            };
        }
        set!(name => name);
        set!(duration_ms => run.duration_ms);
        set!(warmup_ms => run.warmup_ms);
        set!(drain_ms => run.drain_ms);
        set!(op_timeout_ms => run.op_timeout_ms);
        set!(workers => run.workers);
        set!(pin => run.pin);
        set!(pin_first_core => run.pin_first_core);
        set!(in_flight_max => run.in_flight_max);
        set!(bucket_ms => run.bucket_ms);
        set!(seed => run.seed);
        set!(target => target.kind);
        if let Some(address) = &o.address {
            self.target.address = Some(address.clone());
        }
        set!(server_threads => target.server_threads);
        set!(payload_bytes => target.payload_bytes);
        set!(sctp_mtu => target.sctp_mtu);
        set!(client => target.client);
        set!(client_addresses => target.client_addresses);
        set!(pools => pools.count);
        set!(handle_prefix => pools.handle_prefix);
        if let Some(exponent) = o.zipf {
            self.pools.choice = PoolChoice::Zipf { exponent };
        }
        set!(pe_count => pe.count);
        set!(pe_per_association => pe.per_association);
        set!(reregister_ms => pe.reregister_ms);
        set!(rejoin_ms => pe.rejoin_ms);
        set!(ramp_ms => pe.ramp_ms);
        if let Some(mean_ms) = o.lifetime_mean_ms {
            self.pe.lifetime =
                if mean_ms == 0 { Lifetime::Forever } else { Lifetime::Exponential { mean_ms } };
        }
        set!(associations => pu.associations);
        set!(mode => pu.mode);
        set!(window => pu.window);
        set!(rate_per_s => pu.rate_per_s);
        self.validate()
    }
}

/// Every scenario knob as an optional flag; a given flag wins over the file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Scenario name shown in reports.
    #[arg(long)]
    pub name: Option<String>,
    /// run.duration_ms: total run length
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// run.warmup_ms: PUs start this long after PEs
    #[arg(long)]
    pub warmup_ms: Option<u64>,
    /// run.drain_ms: longest wait for in-flight ops at the end
    #[arg(long)]
    pub drain_ms: Option<u64>,
    /// run.op_timeout_ms: an op with no answer by then is a timeout
    #[arg(long)]
    pub op_timeout_ms: Option<u64>,
    /// run.workers: worker threads
    #[arg(long)]
    pub workers: Option<u16>,
    /// run.pin: pin worker i to core pin_first_core + i
    #[arg(long)]
    pub pin: Option<bool>,
    /// run.pin_first_core: first core for --pin
    #[arg(long)]
    pub pin_first_core: Option<u16>,
    /// run.in_flight_max: per-worker bound on ops in flight
    #[arg(long)]
    pub in_flight_max: Option<u32>,
    /// run.bucket_ms: width of a throughput-over-time bucket
    #[arg(long)]
    pub bucket_ms: Option<u64>,
    /// run.seed: seed of every random choice
    #[arg(long)]
    pub seed: Option<u64>,
    /// target.kind: what to drive
    #[arg(long, value_enum)]
    pub target: Option<TargetKind>,
    /// target.address (ip:port); omit to start an embedded target
    #[arg(long)]
    pub address: Option<String>,
    /// target.server_threads: threads of an embedded echo server
    #[arg(long)]
    pub server_threads: Option<u16>,
    /// target.payload_bytes: datagram size of the UDP targets
    #[arg(long)]
    pub payload_bytes: Option<u16>,
    /// target.sctp_mtu: largest SCTP packet (UDP payload) to and of a registrar target
    #[arg(long)]
    pub sctp_mtu: Option<u16>,
    /// target.client: the SCTP of a registrar target's clients (kernel: one-to-one sockets to
    /// the registrar's SCTP address; userspace: ours over UDP)
    #[arg(long, value_enum)]
    pub client: Option<ClientKind>,
    /// target.client_addresses: local IPs of the clients, one per worker in turn
    /// (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub client_addresses: Option<Vec<std::net::IpAddr>>,
    /// pools.count: number of pools
    #[arg(long)]
    pub pools: Option<u32>,
    /// pools.handle_prefix: pool handle = prefix + index
    #[arg(long)]
    pub handle_prefix: Option<String>,
    /// pools.choice = zipf with this exponent
    #[arg(long)]
    pub zipf: Option<f64>,
    /// pe.count: synthetic pool elements
    #[arg(long)]
    pub pe_count: Option<u32>,
    /// pe.per_association: PEs sharing one association (and one asap::Endpoint), 1..=64
    #[arg(long)]
    pub pe_per_association: Option<u32>,
    /// pe.reregister_ms: re-registration period
    #[arg(long)]
    pub reregister_ms: Option<u64>,
    /// pe.rejoin_ms: pause between deregistering and registering again
    #[arg(long)]
    pub rejoin_ms: Option<u64>,
    /// pe.ramp_ms: spread first registrations over this window
    #[arg(long)]
    pub ramp_ms: Option<u64>,
    /// pe.lifetime = exponential with this mean (0 = forever)
    #[arg(long)]
    pub lifetime_mean_ms: Option<u64>,
    /// pu.associations: PU associations over all workers
    #[arg(long)]
    pub associations: Option<u32>,
    /// pu.mode: closed (window) or open (rate) loop
    #[arg(long, value_enum)]
    pub mode: Option<LoopMode>,
    /// pu.window: closed loop: resolutions in flight per association
    #[arg(long)]
    pub window: Option<u32>,
    /// pu.rate_per_s: open loop: total resolutions per second
    #[arg(long)]
    pub rate_per_s: Option<f64>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Io(path, e) => write!(f, "cannot read scenario {path}: {e}"),
            ScenarioError::Parse(e) => write!(f, "scenario: {e}"),
            ScenarioError::Invalid { field, reason } => write!(f, "scenario: {field}: {reason}"),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            duration_ms: 10_000,
            warmup_ms: 500,
            drain_ms: 1_000,
            op_timeout_ms: 1_000,
            workers: 1,
            pin: false,
            pin_first_core: 0,
            in_flight_max: 4_096,
            bucket_ms: 100,
            seed: 1,
        }
    }
}

impl Default for TargetConfig {
    fn default() -> TargetConfig {
        TargetConfig {
            kind: TargetKind::Model,
            address: None,
            server_threads: 1,
            payload_bytes: 64,
            sctp_mtu: 1_200,
            client: ClientKind::Userspace,
            client_addresses: Vec::new(),
        }
    }
}

impl Default for PoolsConfig {
    fn default() -> PoolsConfig {
        PoolsConfig {
            count: 10,
            handle_prefix: "loadgen-pool-".to_owned(),
            choice: PoolChoice::Uniform,
        }
    }
}

impl Default for PeConfig {
    fn default() -> PeConfig {
        PeConfig {
            count: 100,
            per_association: 1,
            reregister_ms: 30_000,
            lifetime: Lifetime::Forever,
            rejoin_ms: 100,
            ramp_ms: 200,
        }
    }
}

impl Default for PuConfig {
    fn default() -> PuConfig {
        PuConfig { associations: 8, mode: LoopMode::Closed, window: 4, rate_per_s: 10_000.0 }
    }
}

fn check(ok: bool, field: &'static str, reason: impl Into<String>) -> Result<(), ScenarioError> {
    if ok {
        Ok(())
    } else {
        Err(ScenarioError::Invalid { field, reason: reason.into() })
    }
}

/// One hour: a longer run is a soak test, which wants a different tool and a rotating report.
pub const DURATION_MS_MAX: u64 = 3_600_000;
/// Worker (and server) threads; far above any host we bench on, low enough to catch typos.
pub const WORKERS_MAX: u16 = 256;
/// Per-worker in-flight operations; sizes the client's slot table (32 B a slot: 32 MiB).
pub const IN_FLIGHT_MAX: u32 = 1 << 20;
/// Closed-loop window per association; SCTP streams rarely carry more usefully.
pub const WINDOW_MAX: u32 = 4_096;
/// Pools; matches the order of magnitude of a carrier deployment's pool count.
pub const POOLS_MAX: u32 = 1_000_000;
/// Pool elements; a million is the registrar's design point.
pub const POOL_ELEMENTS_MAX: u32 = 1_000_000;
/// PEs on one association: all that the `asap::Endpoint` on it carries.
pub const PE_PER_ASSOCIATION_MAX: u32 = asap::endpoint::POOL_ELEMENTS_MAX as u32;
// The registrar client marks a flow's PEs with operations in flight as bits of a `u64`.
const _: () = assert!(PE_PER_ASSOCIATION_MAX >= 1 && PE_PER_ASSOCIATION_MAX <= 64);
/// PU associations; above this, use more PEs per association in the real client.
pub const ASSOCIATIONS_MAX: u32 = 65_536;
/// Open-loop rate: 100 M/s, well past what one host can offer.
pub const RATE_MAX: f64 = 1e8;
/// Narrowest timeline bucket: below 10 ms the per-bucket counts are mostly noise.
pub const BUCKET_MS_MIN: u64 = 10;
/// Timeline buckets kept per op kind (an hour of 100 ms buckets), preallocated per worker.
pub const BUCKETS_MAX: u64 = 36_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(text: &str) -> &'static str {
        match Scenario::from_toml(text) {
            Err(ScenarioError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn committed_scenarios_parse() {
        // Goal: every scenario we ship is valid, the lab's too. Method: parse each file in
        // scenarios/ and ../lab/scenarios/.
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in [crate_dir.join("scenarios"), crate_dir.join("../lab/scenarios")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let scenario = Scenario::from_file(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!scenario.name.is_empty(), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 10);
        // The lab's fill for issue 14's largest points: the million, 64 to an association.
        let shared = Scenario::from_file(&crate_dir.join("../lab/scenarios/fill-shared.toml"));
        let shared = shared.unwrap();
        assert_eq!((shared.pe.count, shared.pe.per_association), (1_000_000, 64));
    }

    #[test]
    fn full_file_parses_every_field() {
        // Goal: each section and each enum spelling is accepted. Method: a file naming them all.
        let s = Scenario::from_toml(
            r#"
            name = "all"
            [run]
            duration_ms = 2000
            workers = 2
            [target]
            kind = "udp-echo"
            address = "127.0.0.1:9"
            [pools]
            count = 3
            choice = { dist = "zipf", exponent = 1.1 }
            [pe]
            count = 4
            lifetime = { dist = "uniform", min_ms = 10, max_ms = 20 }
            [pu]
            mode = "open"
            rate_per_s = 5.0
            "#,
        )
        .unwrap();
        assert_eq!(s.target.kind, TargetKind::UdpEcho);
        assert_eq!(s.pools.choice, PoolChoice::Zipf { exponent: 1.1 });
        assert_eq!(s.pe.lifetime, Lifetime::Uniform { min_ms: 10, max_ms: 20 });
        assert_eq!(s.pu.mode, LoopMode::Open);
        assert_eq!(s.run.warmup_ms, RunConfig::default().warmup_ms);
        // Round trip through our own TOML output.
        assert_eq!(Scenario::from_toml(&s.to_toml()).unwrap(), s);
    }

    #[test]
    fn parse_errors_name_the_field() {
        // Goal: a typo or a wrong type names the key. Method: check the toml error text.
        for (text, field) in [
            ("[pu]\nwindoww = 3", "windoww"),
            ("[pu]\nmode = \"sideways\"", "mode"),
            ("[run]\nworkers = \"two\"", "workers"),
            ("[pe]\nlifetime = { dist = \"gamma\" }", "lifetime"),
        ] {
            let message = Scenario::from_toml(text).unwrap_err().to_string();
            assert!(message.contains(field), "{message:?} should name {field}");
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        // Goal: each relation check names its field. Method: one bad value per check.
        assert_eq!(invalid_field("[run]\nworkers = 0"), "run.workers");
        assert_eq!(invalid_field("[run]\nduration_ms = 100\nwarmup_ms = 100"), "run.warmup_ms");
        assert_eq!(invalid_field("[pu]\nmode = \"open\"\nrate_per_s = 0.0"), "pu.rate_per_s");
        assert_eq!(invalid_field("[pu]\nwindow = 0"), "pu.window");
        assert_eq!(invalid_field("[pools]\ncount = 0"), "pools.count");
        assert_eq!(invalid_field("[target]\naddress = \"nowhere\""), "target.address");
        assert_eq!(invalid_field("[target]\npayload_bytes = 3"), "target.payload_bytes");
        assert_eq!(invalid_field("[target]\nsctp_mtu = 511"), "target.sctp_mtu");
        // Kernel clients: only to a registrar, and only to one already listening.
        let kernel = "[target]\nkind = \"registrar\"\nclient = \"kernel\"";
        assert_eq!(invalid_field(kernel), "target.client");
        let to_echo =
            "[target]\nkind = \"udp-echo\"\nclient = \"kernel\"\naddress = \"127.0.0.1:9\"";
        assert_eq!(invalid_field(to_echo), "target.client");
        let listening = format!("{kernel}\naddress = \"192.0.2.1:3863\"");
        let s = Scenario::from_toml(&listening).unwrap();
        assert_eq!(s.target.client, ClientKind::Kernel);
        assert_eq!(Scenario::from_toml(&s.to_toml()).unwrap(), s);
        // Client addresses: a registrar's clients only; they survive the round trip.
        let spread = "[target]\nkind = \"registrar\"\nclient_addresses = [\"192.0.2.7\", \"::1\"]";
        let s = Scenario::from_toml(spread).unwrap();
        assert_eq!(s.target.client_addresses.len(), 2);
        assert_eq!(Scenario::from_toml(&s.to_toml()).unwrap(), s);
        let echo = "[target]\nkind = \"udp-echo\"\nclient_addresses = [\"192.0.2.7\"]";
        assert_eq!(invalid_field(echo), "target.client_addresses");
        assert_eq!(
            invalid_field("[pe]\nlifetime = { dist = \"exponential\", mean_ms = 0 }"),
            "pe.lifetime.mean_ms"
        );
    }

    #[test]
    fn in_flight_bound_boundary_pair() {
        // Goal: the closed-loop capacity check passes at the limit and fails one below it.
        // Method: 1 worker, 4 associations × window 4 + 2 PEs = 18 slots needed.
        let base = "[pe]\ncount = 2\n[pu]\nassociations = 4\nwindow = 4\n[run]\nin_flight_max = ";
        assert!(Scenario::from_toml(&format!("{base}18")).is_ok());
        assert_eq!(invalid_field(&format!("{base}17")), "run.in_flight_max");
    }

    #[test]
    fn pe_per_association_boundary_pair() {
        // Goal: pe.per_association takes 1..=the PEs an asap::Endpoint carries, defaults to 1,
        // and a value past either end is refused naming the field, from a file or a flag.
        // Method: both ends and one past each, the error's text, and the flag.
        assert_eq!(Scenario::default().pe.per_association, 1);
        assert_eq!(Scenario::from_toml("[pe]\ncount = 5").unwrap().pe.per_association, 1);
        let max = asap::endpoint::POOL_ELEMENTS_MAX;
        for ok in [1, max] {
            let s = Scenario::from_toml(&format!("[pe]\nper_association = {ok}")).unwrap();
            assert_eq!(s.pe.per_association as usize, ok);
            assert_eq!(Scenario::from_toml(&s.to_toml()).unwrap(), s);
        }
        for bad in [0, max + 1] {
            let text = format!("[pe]\nper_association = {bad}");
            assert_eq!(invalid_field(&text), "pe.per_association");
            let message = Scenario::from_toml(&text).unwrap_err().to_string();
            assert!(message.contains("pe.per_association") && message.contains("1..=64"));
        }
        let mut s = Scenario::default();
        let flag = Overrides { pe_per_association: Some(64), ..Overrides::default() };
        s.apply(&flag).unwrap();
        assert_eq!(s.pe.per_association, 64);
        let flag = Overrides { pe_per_association: Some(65), ..Overrides::default() };
        let refused = s.apply(&flag);
        assert!(matches!(refused, Err(ScenarioError::Invalid { field: "pe.per_association", .. })));
    }

    #[test]
    fn overrides_win_and_are_validated() {
        // Goal: flags replace file values and a bad flag is rejected by the same checks.
        let mut s = Scenario::default();
        let o = Overrides { workers: Some(3), rate_per_s: Some(7.0), ..Overrides::default() };
        s.apply(&o).unwrap();
        assert_eq!((s.run.workers, s.pu.rate_per_s), (3, 7.0));
        let bad = Overrides { pools: Some(0), ..Overrides::default() };
        assert!(matches!(s.apply(&bad), Err(ScenarioError::Invalid { field: "pools.count", .. })));
    }
}
