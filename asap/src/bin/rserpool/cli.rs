//! The command line: global options, the four subcommands, and the checks clap cannot express
//! (which policy value goes with which policy).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::{Args, Parser, Subcommand, ValueEnum};
use codec::param::Policy;
use codec::PoolHandle;

/// The ASAP port a registrar listens on unless told otherwise (RFC 5352 §8.2).
const ASAP_PORT: u16 = asap::hunt::ASAP_PORT;

/// The ENRP port a registrar listens on unless told otherwise (RFC 5353 §5.3).
const ENRP_PORT: u16 = 9901;

/// RSerPool pool elements and pool users from the shell, over SCTP in UDP (RFC 6951).
///
/// Every subcommand reaches the registrars of --registrar with its own SCTP stack on the UDP
/// socket --udp; a registrar at IP X is reached in UDP at X:--registrar-udp-port.
#[derive(Parser, Debug)]
#[command(name = "rserpool", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Global {
    /// A registrar's ASAP address, IP[:SCTP-PORT] (port 3863 when left out); repeat for
    /// several, all before or all after the subcommand (the server hunt tries up to three
    /// at once, the first to answer is home) [default: 127.0.0.1:3863].
    #[arg(long = "registrar", value_name = "IP:PORT", value_parser = parse_registrar,
          global = true)]
    pub(crate) registrars: Vec<SocketAddr>,
    /// Local UDP address our SCTP stack binds.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0", global = true)]
    pub(crate) udp: SocketAddr,
    /// UDP port registrars receive SCTP on (RFC 6951; IANA 9899).
    #[arg(long, value_name = "PORT", default_value_t = transport::sctp_udp::SCTP_UDP_PORT,
          global = true)]
    pub(crate) registrar_udp_port: u16,
    /// How long each request (registration, resolution, deregistration, PE exchange) waits.
    #[arg(long, value_name = "MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000), global = true)]
    pub(crate) timeout_ms: u64,
    /// Registrars the server hunt tries at once (1: strictly in the order given, so the
    /// first listed that answers is home).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=3), global = true)]
    pub(crate) hunt_parallel: u16,
    /// How long a PE's home registrar may send nothing before the PE re-registers early to
    /// check it is alive (a dead home is then left within this plus --timeout-ms).
    #[arg(long, value_name = "MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000), global = true)]
    pub(crate) home_silence_ms: u64,
    /// SCTP stack: ours in UDP (RFC 6951), or the kernel's where it has SCTP (then --udp
    /// gives only the local IP).
    #[arg(long, value_enum, default_value_t = BackendName::Userspace, global = true)]
    pub(crate) backend: BackendName,
}

/// SCTP stacks the tool can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendName {
    /// The kernel's SCTP (RFC 6458 sockets), as RSPLIB uses.
    Kernel,
    /// Our SCTP in UDP (RFC 6951); works where the kernel has no SCTP.
    Userspace,
}

impl Global {
    /// The registrars to hunt, with the default when none was given.
    pub(crate) fn registrars(&self) -> Vec<SocketAddr> {
        if self.registrars.is_empty() {
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ASAP_PORT)]
        } else {
            self.registrars.clone()
        }
    }

    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }
}

/// The subcommands.
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Run a pool element: an echo, discard or daytime server (TCP and UDP, or SCTP with the
    /// ASAP control channel) registered in a pool until Ctrl-C, SIGTERM or --run-seconds.
    Pe(PeArgs),
    /// Keep a registration alive without running a service (for tests).
    Register(RegisterArgs),
    /// One handle resolution: the pool's PEs as a table or JSON.
    Resolve(ResolveArgs),
    /// A pool user: sends each stdin line to a PE of the pool and prints its reply, failing
    /// over to another PE when one stops answering.
    Terminal(TerminalArgs),
    /// A pool user over TCP: connects to a PE of the pool (failing over to the next PE when a
    /// connect fails, and reporting the failed one), then copies stdin to it and its replies
    /// to stdout until both sides are done.
    Connect(ConnectArgs),
    /// A registrar's whole handlespace, read over ENRP as a peer would (like RSPLIB's
    /// hsdump): the first --registrar, at its ENRP port.
    Dump(DumpArgs),
    /// Follow a pool: one line per PE added, changed or removed, and one when the pool is
    /// gone (live updates where the registrar pushes them, else polling).
    Watch(WatchArgs),
    /// A registrar's state, counters and ENRP peers, read from its admin API (--admin).
    Status(StatusArgs),
}

/// The registrar's admin API (its `--admin` and `--admin-token-file`).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminArgs {
    /// The registrar's admin API, HOST:PORT (its --admin); `dump` then reads the API instead
    /// of ENRP.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) admin: Option<String>,
    /// File whose first line is the admin API's bearer token (the registrar's
    /// --admin-token-file).
    #[arg(long, value_name = "PATH")]
    pub(crate) admin_token_file: Option<std::path::PathBuf>,
}

/// `rserpool status`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `rserpool connect`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct ConnectArgs {
    /// Pool handle to connect to.
    #[arg(value_name = "POOL", value_parser = parse_pool)]
    pub(crate) pool: PoolHandle,
}

/// `rserpool dump`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct DumpArgs {
    /// SCTP port of the registrar's ENRP service.
    #[arg(long, value_name = "PORT", default_value_t = ENRP_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) enrp_port: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
}

/// `rserpool watch`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct WatchArgs {
    /// Pool handle to follow.
    #[arg(value_name = "POOL", value_parser = parse_pool)]
    pub(crate) pool: PoolHandle,
    /// Print one JSON document a line instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Exit 0 after this many lines (the PEs present at the start count, one line each).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Exit 0 after this long.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) duration_ms: Option<u64>,
}

/// `rserpool pe`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct PeArgs {
    #[command(flatten)]
    pub(crate) registration: Registration,
    /// The service the PE runs.
    #[arg(long, value_enum, default_value_t = Service::Echo)]
    pub(crate) service: Service,
    /// TCP and UDP port of the service, or its SCTP port (over UDP: its UDP port too) with
    /// --transport sctp (0: any free port, printed at start).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
}

/// `rserpool register`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    pub(crate) registration: Registration,
    /// Port registered as the PE's user transport (nothing listens there).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) port: u16,
}

/// What `pe` and `register` register.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct Registration {
    /// Pool handle to join.
    #[arg(long, value_name = "NAME", value_parser = parse_pool)]
    pub(crate) pool: PoolHandle,
    /// PE identifier, decimal or 0x-hex (default: random).
    #[arg(long, value_name = "N", value_parser = parse_u32)]
    pub(crate) id: Option<u32>,
    /// Member selection policy (RFC 5356).
    #[arg(long, value_enum, default_value_t = PolicyName::Rr)]
    pub(crate) policy: PolicyName,
    /// Weight, for --policy wrr or wrand [default: 1].
    #[arg(long, value_name = "N")]
    pub(crate) weight: Option<u32>,
    /// Priority, for --policy priority [default: 0].
    #[arg(long, value_name = "N")]
    pub(crate) priority: Option<u32>,
    /// Load, for --policy lu or rlu: 0 (idle) to 4294967295 (full), or a percentage like 25%
    /// [default: 0].
    #[arg(long, value_name = "N|P%", value_parser = parse_load)]
    pub(crate) load: Option<u32>,
    /// Registration life sent to the registrar; the PE re-registers before it runs out.
    #[arg(long, value_name = "MS", default_value_t = 90_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) lifetime_ms: u32,
    /// Deregister and exit after this many seconds.
    #[arg(long, value_name = "S")]
    pub(crate) run_seconds: Option<u64>,
    /// Address registered for the user transport.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) address: IpAddr,
    /// Protocol registered as the user transport.
    #[arg(long, value_enum, default_value_t = UserProtocol::Tcp)]
    pub(crate) transport: UserProtocol,
}

impl Registration {
    /// The policy with its value, or why the flags do not fit together (naming the flag).
    pub(crate) fn policy(&self) -> Result<Policy, String> {
        let name = self.policy;
        let misplaced = |flag: &str, fits: &str| {
            format!("--{flag} applies only to --policy {fits}, not --policy {}", name.as_str())
        };
        let allowed: (bool, bool, bool) = match name {
            PolicyName::Rr | PolicyName::Random => (false, false, false),
            PolicyName::Wrr | PolicyName::Wrand => (true, false, false),
            PolicyName::Priority => (false, true, false),
            PolicyName::Lu | PolicyName::Rlu => (false, false, true),
        };
        if self.weight.is_some() && !allowed.0 {
            return Err(misplaced("weight", "wrr or wrand"));
        }
        if self.priority.is_some() && !allowed.1 {
            return Err(misplaced("priority", "priority"));
        }
        if self.load.is_some() && !allowed.2 {
            return Err(misplaced("load", "lu or rlu"));
        }
        let weight = self.weight.unwrap_or(1);
        let load = self.load.unwrap_or(0);
        Ok(match name {
            PolicyName::Rr => Policy::RoundRobin,
            PolicyName::Random => Policy::Random,
            PolicyName::Wrr => Policy::WeightedRoundRobin { weight },
            PolicyName::Wrand => Policy::WeightedRandom { weight },
            PolicyName::Priority => Policy::Priority { priority: self.priority.unwrap_or(0) },
            PolicyName::Lu => Policy::LeastUsed { load },
            PolicyName::Rlu => Policy::RandomizedLeastUsed { load },
        })
    }
}

/// `rserpool resolve`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct ResolveArgs {
    /// Pool handle to resolve.
    #[arg(value_name = "POOL", value_parser = parse_pool)]
    pub(crate) pool: PoolHandle,
    /// PEs to ask for (the registrar's default when left out).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub(crate) items: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `rserpool terminal`.
#[derive(Args, Debug, PartialEq, Eq)]
pub(crate) struct TerminalArgs {
    /// Pool handle to use.
    #[arg(value_name = "POOL", value_parser = parse_pool)]
    pub(crate) pool: PoolHandle,
    /// Send lines without waiting for replies (a discard pool).
    #[arg(long)]
    pub(crate) no_reply: bool,
    /// How long one line may spend failing over before the terminal gives up.
    #[arg(long, value_name = "MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub(crate) failover_ms: u64,
    /// UDP port SCTP PEs receive SCTP in UDP on (0: the PE's SCTP port, as `rserpool` PEs
    /// bind; 9899 for a kernel with net.sctp.udp_port=9899). Not used with --backend kernel.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) pe_udp_port: u16,
}

/// Services a PE can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Service {
    /// RFC 867: the time as one line (TCP: at connect, then close; UDP: per datagram).
    Daytime,
    /// RFC 863: reads and drops.
    Discard,
    /// RFC 862: sends back what it receives.
    Echo,
}

impl Service {
    /// The name on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Daytime => "daytime",
            Self::Discard => "discard",
            Self::Echo => "echo",
        }
    }
}

/// Policies a PE can register with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PolicyName {
    /// Least used (takes --load).
    Lu,
    /// Priority (takes --priority).
    Priority,
    /// Random.
    Random,
    /// Randomized least used (takes --load).
    Rlu,
    /// Round robin.
    Rr,
    /// Weighted random (takes --weight).
    Wrand,
    /// Weighted round robin (takes --weight).
    Wrr,
}

impl PolicyName {
    /// The name on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Lu => "lu",
            Self::Priority => "priority",
            Self::Random => "random",
            Self::Rlu => "rlu",
            Self::Rr => "rr",
            Self::Wrand => "wrand",
            Self::Wrr => "wrr",
        }
    }
}

/// User transports a PE can register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum UserProtocol {
    /// SCTP with the ASAP control channel (RFC 5354 §3.3, transport use data plus control):
    /// cookies to the PU, Cookie Echo and Business Card from it, as RSPLIB's PEs.
    Sctp,
    /// TCP (RFC 5354 §3.5).
    Tcp,
    /// UDP (RFC 5354 §3.6).
    Udp,
}

fn parse_pool(s: &str) -> Result<PoolHandle, String> {
    PoolHandle::new(s.as_bytes()).map_err(|e| match e {
        codec::types::PoolHandleError::Empty => "a pool handle cannot be empty".to_owned(),
        codec::types::PoolHandleError::TooLong => format!(
            "a pool handle is at most {} bytes, this one has {}",
            codec::POOL_HANDLE_LENGTH_MAX,
            s.len()
        ),
    })
}

fn parse_registrar(s: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = s.parse::<SocketAddr>() {
        return Ok(address);
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, ASAP_PORT)),
        Err(_) => Err("expected IP or IP:PORT (e.g. 127.0.0.1:3863 or [::1]:3863)".to_owned()),
    }
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse::<u32>(),
    };
    parsed.map_err(|_| "expected a 32-bit number, decimal or 0x-hex".to_owned())
}

fn parse_load(s: &str) -> Result<u32, String> {
    let Some(percent) = s.strip_suffix('%') else {
        return s.parse::<u32>().map_err(|_| "expected 0 to 4294967295, or 0% to 100%".to_owned());
    };
    match percent.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => {
            // In range by the guard, so the product fits u32 after rounding.
            Ok((p / 100.0 * f64::from(u32::MAX)).round() as u32)
        }
        _ => Err("a percentage is 0% to 100%".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rserpool").chain(args.iter().copied()))
    }

    fn registration(args: &[&str]) -> Registration {
        let mut all = vec!["register", "--pool", "p", "--port", "7"];
        all.extend_from_slice(args);
        match parse(&all).expect("valid").command {
            Command::Register(r) => r.registration,
            other => panic!("not register: {other:?}"),
        }
    }

    // Goal: the defaults are the documented ones. Method: parse a bare `resolve`.
    #[test]
    fn global_defaults() {
        let cli = parse(&["resolve", "echo"]).unwrap();
        assert_eq!(cli.global.registrars(), ["127.0.0.1:3863".parse::<SocketAddr>().unwrap()]);
        assert_eq!(cli.global.udp, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        assert_eq!(cli.global.registrar_udp_port, 9899);
        assert_eq!(cli.global.timeout_ms, 5_000);
        let Command::Resolve(r) = cli.command else { panic!() };
        assert_eq!(r.pool, PoolHandle::new(b"echo").unwrap());
        assert_eq!((r.items, r.json), (None, false));
    }

    // Goal: --registrar repeats, takes a bare IP, and global flags go after the subcommand.
    // (clap keeps the occurrences of one level only: all before or all after the subcommand.)
    #[test]
    fn registrars_repeat_and_default_the_port() {
        let cli = parse(&[
            "resolve",
            "p",
            "--registrar",
            "127.0.0.2",
            "--registrar",
            "[::1]:4000",
            "--registrar-udp-port",
            "9900",
            "--json",
            "--items",
            "5",
        ])
        .unwrap();
        let want: Vec<SocketAddr> =
            vec!["127.0.0.2:3863".parse().unwrap(), "[::1]:4000".parse().unwrap()];
        assert_eq!(cli.global.registrars(), want);
        assert_eq!(cli.global.registrar_udp_port, 9900);
        let Command::Resolve(r) = cli.command else { panic!() };
        assert_eq!((r.items, r.json), (Some(5), true));
    }

    // Goal: bad input is clap's error naming the flag. Method: one bad value per flag.
    #[test]
    fn bad_values_name_their_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--registrar", "nowhere", "resolve", "p"], "--registrar"),
            (&["--udp", "1.2.3.4", "resolve", "p"], "--udp"),
            (&["--timeout-ms", "0", "resolve", "p"], "--timeout-ms"),
            (&["resolve", "p", "--items", "0"], "--items"),
            (&["resolve", ""], "pool handle cannot be empty"),
            (&["pe", "--pool", "p", "--service", "chargen"], "--service"),
            (&["pe", "--pool", "p", "--policy", "lud"], "--policy"),
            (&["pe", "--pool", "p", "--id", "0x1g"], "--id"),
            (&["pe", "--pool", "p", "--load", "120%"], "--load"),
            (&["pe", "--pool", "p", "--lifetime-ms", "0"], "--lifetime-ms"),
            (&["register", "--pool", "p"], "--port"),
            (&["register", "--pool", "p", "--port", "0"], "--port"),
            (&["pe", "--port", "7"], "--pool"),
            (&["terminal"], "POOL"),
        ];
        for (args, flag) in cases {
            let e = parse(args).expect_err(&format!("{args:?} must fail"));
            assert!(e.to_string().contains(flag), "{args:?}: {e}");
        }
        let long = "x".repeat(65);
        let e = parse(&["resolve", &long]).unwrap_err();
        assert!(e.to_string().contains("at most 64 bytes"), "{e}");
    }

    // Goal: each policy name maps to its RFC 5356 policy with its value, and a value flag
    // for another policy is refused naming the flag.
    #[test]
    fn policies_and_their_values() {
        assert_eq!(registration(&[]).policy(), Ok(Policy::RoundRobin));
        assert_eq!(registration(&["--policy", "random"]).policy(), Ok(Policy::Random));
        let wrand = registration(&["--policy", "wrand", "--weight", "3"]).policy();
        assert_eq!(wrand, Ok(Policy::WeightedRandom { weight: 3 }));
        let wrr = registration(&["--policy", "wrr"]).policy();
        assert_eq!(wrr, Ok(Policy::WeightedRoundRobin { weight: 1 }));
        let priority = registration(&["--policy", "priority", "--priority", "9"]).policy();
        assert_eq!(priority, Ok(Policy::Priority { priority: 9 }));
        let lu = registration(&["--policy", "lu", "--load", "50%"]).policy();
        assert_eq!(lu, Ok(Policy::LeastUsed { load: 0x8000_0000 }));
        let rlu = registration(&["--policy", "rlu", "--load", "7"]).policy();
        assert_eq!(rlu, Ok(Policy::RandomizedLeastUsed { load: 7 }));
        let full = registration(&["--policy", "lu", "--load", "100%"]).policy();
        assert_eq!(full, Ok(Policy::LeastUsed { load: u32::MAX }));

        let e = registration(&["--weight", "3"]).policy().unwrap_err();
        assert_eq!(e, "--weight applies only to --policy wrr or wrand, not --policy rr");
        let e = registration(&["--policy", "wrr", "--load", "3"]).policy().unwrap_err();
        assert!(e.starts_with("--load applies only"), "{e}");
        let e = registration(&["--policy", "lu", "--priority", "3"]).policy().unwrap_err();
        assert!(e.starts_with("--priority applies only"), "{e}");
    }

    // Goal: the PE flags land where they belong. Method: parse a full `pe` line.
    #[test]
    fn pe_flags() {
        let cli = parse(&[
            "pe",
            "--pool",
            "echo",
            "--service",
            "daytime",
            "--port",
            "7000",
            "--id",
            "0x2a",
            "--lifetime-ms",
            "4000",
            "--run-seconds",
            "3",
            "--transport",
            "udp",
        ])
        .unwrap();
        let Command::Pe(pe) = cli.command else { panic!() };
        assert_eq!(pe.service, Service::Daytime);
        assert_eq!(pe.port, 7000);
        let r = pe.registration;
        assert_eq!(r.pool, PoolHandle::new(b"echo").unwrap());
        assert_eq!((r.id, r.lifetime_ms, r.run_seconds), (Some(42), 4_000, Some(3)));
        assert_eq!(r.transport, UserProtocol::Udp);
        assert_eq!(r.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    // Goal: the SCTP flags parse and default as documented: userspace backend, TCP PEs unless
    // --transport sctp, the terminal reaching SCTP PEs at their SCTP port in UDP.
    #[test]
    fn sctp_flags() {
        let cli = parse(&["pe", "--pool", "p", "--transport", "sctp", "--backend", "kernel"]);
        let cli = cli.unwrap();
        assert_eq!(cli.global.backend, BackendName::Kernel);
        let Command::Pe(pe) = cli.command else { panic!() };
        assert_eq!(pe.registration.transport, UserProtocol::Sctp);
        let cli = parse(&["terminal", "p"]).unwrap();
        assert_eq!(cli.global.backend, BackendName::Userspace);
        let Command::Terminal(t) = cli.command else { panic!() };
        assert_eq!(t.pe_udp_port, 0);
        assert_eq!(registration(&[]).transport, UserProtocol::Tcp);
        let e = parse(&["--backend", "dpdk", "resolve", "p"]).unwrap_err();
        assert!(e.to_string().contains("--backend"), "{e}");
    }

    // Goal: clap's own consistency checks pass for this command definition.
    #[test]
    fn command_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
