//! `faultlab`: the fault lab's clients, each appending JSON lines (see `faults::history`) to
//! its own history file, one line per operation, flushed as it happens (a `kill -9` loses
//! nothing already done).
//!
//! - `faultlab pe`: one PE kept registered (re-registering, failing over to another
//!   registrar) with a TCP echo service that answers each line with the PE's id;
//!   deregisters on SIGTERM.
//! - `faultlab pu`: a PU that every interval resolves the pool and asks one PE (rotating),
//!   failing over to the next PE in the same request when one does not answer.
//! - `faultlab probe`: the observer: resolves the pool at each named registrar separately
//!   (one association each, no cache) every interval.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use asap::blocking::{BlockingError, Driver, PoolUser};
use asap::{EndpointConfig, Event, Failure, PeConfig};
use clap::{Args, Parser, Subcommand};
use codec::param::{Policy, UserTransport};
use codec::{PoolElementId, PoolHandle, TransportUse};
use faults::{Entry, Kind, Outcome};
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};
use transport::SctpTransport as _;

/// The fault lab's PE, PU and probe clients.
#[derive(Parser, Debug)]
#[command(name = "faultlab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A PE with an echo service, registered until SIGTERM or --run-seconds.
    Pe(PeArgs),
    /// A PU asking the pool's PEs, with failover.
    Pu(PuArgs),
    /// Resolves the pool at each registrar separately.
    Probe(ProbeArgs),
}

/// Options every client takes.
#[derive(Args, Debug)]
struct Common {
    /// History file (appended to).
    #[arg(long)]
    history: PathBuf,
    /// The process name written in every entry.
    #[arg(long)]
    name: String,
    /// Pool handle.
    #[arg(long)]
    pool: String,
    /// Local UDP address of our SCTP stack (its IP is also the PE's service address).
    #[arg(long)]
    udp: SocketAddr,
    /// Per-request timeout.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Stop after this long.
    #[arg(long, default_value_t = 120)]
    run_seconds: u64,
    /// Upper bound of our SCTP's retransmission timeout (RTO.Max), as the registrar's
    /// `--sctp-rto-max-ms` (default: the stack's, 60 s).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1000..=60_000))]
    rto_max_ms: Option<u64>,
}

#[derive(Args, Debug)]
struct PeArgs {
    #[command(flatten)]
    common: Common,
    /// A registrar's ASAP address; repeat for several.
    #[arg(long = "registrar", required = true)]
    registrars: Vec<SocketAddr>,
    /// PE identifier (hex with 0x, or decimal).
    #[arg(long, value_parser = parse_u32)]
    id: u32,
    /// TCP port of the echo service.
    #[arg(long)]
    echo_port: u16,
    /// Registration life.
    #[arg(long, default_value_t = 6000)]
    lifetime_ms: u64,
    /// How long the home may be silent before the PE re-registers to check it.
    #[arg(long, default_value_t = 3000)]
    home_silence_ms: u64,
}

#[derive(Args, Debug)]
struct PuArgs {
    #[command(flatten)]
    common: Common,
    /// A registrar's ASAP address; repeat for several.
    #[arg(long = "registrar", required = true)]
    registrars: Vec<SocketAddr>,
    /// Time between requests.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// How long a resolution is used from the cache (RFC 5351 stale_cache_value).
    #[arg(long, default_value_t = 1000)]
    stale_cache_ms: u64,
}

#[derive(Args, Debug)]
struct ProbeArgs {
    #[command(flatten)]
    common: Common,
    /// NAME=IP:PORT of a registrar to probe; repeat for each.
    #[arg(long = "target", required = true, value_parser = parse_target)]
    targets: Vec<(String, SocketAddr)>,
    /// Time between probes of one registrar.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
}

fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|e| e.to_string()),
        None => s.parse().map_err(|e: std::num::ParseIntError| e.to_string()),
    }
}

fn parse_target(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("want NAME=IP:PORT")?;
    Ok((name.to_owned(), addr.parse().map_err(|e| format!("{addr}: {e}"))?))
}

/// An append-only history file shared by a client's threads.
#[derive(Clone)]
struct History {
    file: Arc<Mutex<File>>,
    name: String,
}

impl History {
    fn open(common: &Common) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&common.history)
            .with_context(|| format!("cannot open {}", common.history.display()))?;
        Ok(Self { file: Arc::new(Mutex::new(file)), name: common.name.clone() })
    }

    fn entry(&self, kind: Kind, outcome: Outcome) -> Entry {
        Entry::new(now_us(), &self.name, kind, outcome)
    }

    /// Appends one line; a full disk must not go unnoticed, so errors end the client.
    fn log(&self, entry: &Entry) {
        let mut line = serde_json::to_string(entry).expect("an entry always serializes");
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("faultlab: cannot write the history: {e}");
            std::process::exit(3);
        }
    }
}

fn now_us() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

fn pool_handle(pool: &str) -> anyhow::Result<PoolHandle> {
    PoolHandle::new(pool.as_bytes()).map_err(|e| anyhow::anyhow!("pool handle {pool:?}: {e:?}"))
}

fn transport(common: &Common, listen: bool) -> anyhow::Result<SctpUdpTransport> {
    let mut config = SctpUdpConfig::default();
    if let Some(ms) = common.rto_max_ms {
        config.endpoint.rto_max = Duration::from_millis(ms).max(config.endpoint.rto_initial);
    }
    let mut t = SctpUdpTransport::bind(common.udp, config, rand::random())
        .with_context(|| format!("cannot bind UDP {}", common.udp))?;
    if listen {
        let port = t.local_addr().port();
        t.listen(port).map_err(|e| anyhow::anyhow!("cannot listen on SCTP port {port}: {e}"))?;
    }
    Ok(t)
}

fn endpoint_config(registrars: Vec<SocketAddr>, timeout_ms: u64) -> EndpointConfig {
    let timeout = asap::Duration::from_millis(timeout_ms);
    let mut config = EndpointConfig::default();
    config.hunt.registrars = registrars;
    config.hunt.hunt_timeout_initial = timeout.min(config.hunt.hunt_timeout_initial);
    config.request_timeout = timeout;
    config.registration_timeout = timeout;
    config.deregistration_timeout = timeout;
    config
}

/// Set by SIGINT or SIGTERM.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("cannot install the signal handler")?;
    Ok(stop)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Pe(args) => pe(&args),
        Command::Pu(args) => pu(&args),
        Command::Probe(args) => probe(&args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultlab: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Answers each line on each connection with the PE's id in hex.
fn echo_service(address: SocketAddr, id: u32) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(address).with_context(|| format!("cannot bind TCP {address}"))?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(reader) = stream.try_clone() else { return };
                let mut stream = stream;
                for line in BufReader::new(reader).lines() {
                    if line.is_err() || writeln!(stream, "{id:#x}").is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

fn pe(args: &PeArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let history = History::open(c)?;
    let stop = stop_flag()?;
    let pool = pool_handle(&c.pool)?;
    echo_service(SocketAddr::new(c.udp.ip(), args.echo_port), args.id)?;
    let user_transport = UserTransport::Tcp {
        port: args.echo_port,
        transport_use: TransportUse::DATA_ONLY,
        address: c.udp.ip(),
    };
    let mut config = PeConfig::new(pool, user_transport, Policy::RoundRobin);
    config.id = Some(PoolElementId(args.id));
    config.registration_life = asap::Duration::from_millis(args.lifetime_ms);
    let mut endpoint = endpoint_config(args.registrars.clone(), c.timeout_ms);
    endpoint.home_silence = asap::Duration::from_millis(args.home_silence_ms);
    // Strictly in the order given: the first registrar listed that answers is home.
    endpoint.hunt.parallel_max = 1;
    let mut driver = Driver::new(transport(c, true)?, endpoint, rand::random());
    let log = |kind, outcome, registrar: Option<String>, detail: Option<String>| {
        let mut e = history.entry(kind, outcome);
        e.pool = Some(c.pool.clone());
        e.pe = Some(args.id);
        e.registrar = registrar;
        e.detail = detail;
        history.log(&e);
    };
    log(Kind::Register, Outcome::Invoke, None, None);
    let now = driver.instant(Instant::now());
    let mut handle = driver
        .endpoint_mut()
        .register(now, config.clone())
        .map_err(|e| anyhow::anyhow!("cannot register: {e:?}"))?;
    let mut home: Option<SocketAddr> = None;
    let until = Instant::now() + Duration::from_secs(c.run_seconds);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        driver.serve(Duration::from_millis(50)).context("PE stopped")?;
        for event in driver.take_events() {
            // Every endpoint event on stderr (the lab keeps it in NODE.log), to debug a run.
            eprintln!("{} {event:?}", now_us());
            match event {
                Event::RegistrarFound { peer, .. } => home = Some(peer),
                Event::Registered { pe, .. } if pe == handle => {
                    log(Kind::Register, Outcome::Ok, home.map(|h| h.to_string()), None);
                }
                Event::RegistrationFailed { pe, failure } if pe == handle => {
                    let why = match failure {
                        Failure::Refused(cause) => asap::blocking::in_words(cause),
                        Failure::TimedOut => "timed out".to_owned(),
                    };
                    log(Kind::Register, Outcome::Fail, home.map(|h| h.to_string()), Some(why));
                    // Keep trying: a PE in a fault lab outlives its registrars' faults.
                    log(Kind::Register, Outcome::Invoke, None, None);
                    let now = driver.instant(Instant::now());
                    handle = driver
                        .endpoint_mut()
                        .register(now, config.clone())
                        .map_err(|e| anyhow::anyhow!("cannot register: {e:?}"))?;
                }
                _ => {}
            }
        }
    }
    log(Kind::Deregister, Outcome::Invoke, None, None);
    let left = driver.deregister(handle, Duration::from_millis(c.timeout_ms));
    driver.close(Duration::from_millis(300));
    match left {
        Ok(()) => log(Kind::Deregister, Outcome::Ok, home.map(|h| h.to_string()), None),
        Err(e) => log(Kind::Deregister, Outcome::Fail, None, Some(e.to_string())),
    }
    Ok(())
}

/// One request to one PE: its id, from its answer.
fn ask(pe: &codec::PoolElement, timeout: Duration) -> Result<u32, String> {
    let UserTransport::Tcp { port, address, .. } = pe.user_transport else {
        return Err("not TCP".to_owned());
    };
    let mut stream = TcpStream::connect_timeout(&SocketAddr::new(address, port), timeout)
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.write_all(b"ping\n").map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    parse_u32(line.trim()).map_err(|e| format!("answer {line:?}: {e}"))
}

fn pu(args: &PuArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let history = History::open(c)?;
    let stop = stop_flag()?;
    let pool = pool_handle(&c.pool)?;
    let mut config = endpoint_config(args.registrars.clone(), c.timeout_ms);
    config.stale_cache = asap::Duration::from_millis(args.stale_cache_ms);
    let mut user = PoolUser::new(transport(c, false)?, config, rand::random());
    let timeout = Duration::from_millis(c.timeout_ms);
    let pe_timeout = Duration::from_millis(500).min(timeout);
    let until = Instant::now() + Duration::from_secs(c.run_seconds);
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let next = Instant::now() + Duration::from_millis(args.interval_ms);
        let resolved = user.resolve(pool, timeout);
        let mut e = history.entry(Kind::Resolve, Outcome::Ok);
        e.pool = Some(c.pool.clone());
        match &resolved {
            Ok(pes) => e.pes = pes.iter().map(|p| p.id.0).collect(),
            Err(err) => {
                e.outcome = Outcome::Fail;
                e.detail = Some(err.to_string());
            }
        }
        history.log(&e);
        let mut request = history.entry(Kind::Request, Outcome::Fail);
        request.pool = Some(c.pool.clone());
        if let Ok(pes) = resolved {
            turn = turn.wrapping_add(1);
            let mut failed: Vec<(u32, String)> = Vec::new();
            for k in 0..pes.len() {
                let pe = &pes[(turn + k) % pes.len()];
                match ask(pe, pe_timeout) {
                    Ok(id) => {
                        request.outcome = Outcome::Ok;
                        request.pe = Some(id);
                        break;
                    }
                    Err(why) => failed.push((pe.id.0, why)),
                }
            }
            for (id, why) in &failed {
                let _ = user.report_unreachable(&pool, PoolElementId(*id));
                let mut f = history.entry(Kind::Failover, Outcome::Ok);
                f.pool = Some(c.pool.clone());
                f.pe = Some(*id);
                f.target = request.pe.map(|p| format!("{p:#x}"));
                f.detail = Some(why.clone());
                history.log(&f);
            }
            if request.outcome == Outcome::Fail {
                request.detail = Some(format!("{} PEs, none answered", pes.len()));
            }
        } else {
            request.detail = Some("no resolution".to_owned());
        }
        history.log(&request);
        user.driver_mut().serve(next.saturating_duration_since(Instant::now()))?;
    }
    user.driver_mut().close(Duration::from_millis(300));
    Ok(())
}

fn probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let history = History::open(c)?;
    let stop = stop_flag()?;
    let pool = pool_handle(&c.pool)?;
    let timeout = Duration::from_millis(c.timeout_ms);
    let until = Instant::now() + Duration::from_secs(c.run_seconds);
    let mut threads = Vec::new();
    for (name, address) in &args.targets {
        let mut config = endpoint_config(vec![*address], c.timeout_ms);
        config.hunt.parallel_max = 1;
        config.stale_cache = asap::Duration::ZERO;
        config.items_wanted = Some(64);
        config.request_attempts_max = 1;
        let mut udp = c.udp;
        udp.set_port(0);
        let (history, stop, name) = (history.clone(), Arc::clone(&stop), name.clone());
        let (interval, pool_name) = (Duration::from_millis(args.interval_ms), c.pool.clone());
        // The transport is not Send: each thread binds its own.
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let transport = SctpUdpTransport::bind(udp, SctpUdpConfig::default(), rand::random())
                .with_context(|| format!("cannot bind UDP {udp}"))?;
            let mut user = PoolUser::new(transport, config, rand::random());
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                let next = Instant::now() + interval;
                let mut e = history.entry(Kind::Probe, Outcome::Ok);
                e.pool = Some(pool_name.clone());
                e.registrar = Some(name.clone());
                match user.resolve(pool, timeout) {
                    Ok(pes) => {
                        e.pes = pes.iter().map(|p| p.id.0).collect();
                        e.pes.sort_unstable();
                    }
                    // The registrar answered: it knows no PE of the pool.
                    Err(BlockingError::UnknownPool(_)) => e.detail = Some("unknown pool".into()),
                    Err(err) => {
                        e.outcome = Outcome::Fail;
                        e.detail = Some(err.to_string());
                    }
                }
                e.t_us = now_us();
                history.log(&e);
                let _ = user.driver_mut().serve(next.saturating_duration_since(Instant::now()));
            }
            user.driver_mut().close(Duration::from_millis(300));
            Ok(())
        }));
    }
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("a probe thread panicked"))??;
    }
    Ok(())
}
