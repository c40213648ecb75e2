//! The `registrar` binary: flags and a TOML file in, pinned workers running, a summary out.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use registrar::config::{Backend, Config};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// RSerPool registrar (ENRP server, ASAP side), thread-per-core.
///
/// Settings come from the built-in defaults, then --config FILE, then these flags.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Flags {
    /// TOML configuration file (every field of registrar/src/config.rs).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads, one pinned per core (0: all cores).
    #[arg(long)]
    workers: Option<usize>,
    /// SCTP implementation: userspace (SCTP over UDP, RFC 6951) or kernel.
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// UDP address of the userspace SCTP endpoint (RFC 6951; IANA port 9899).
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Option<SocketAddr>,
    /// Largest SCTP packet of the userspace backend (UDP payload bytes, 512-65507).
    #[arg(long)]
    sctp_mtu: Option<u16>,
    /// Upper bound on the SCTP retransmission timeout of the userspace backend (RTO.Max,
    /// 1000-60000 ms; default 60000): how late an association speaks again after a heal.
    #[arg(long)]
    sctp_rto_max_ms: Option<u32>,
    /// SCTP port of the ASAP service.
    #[arg(long)]
    asap_port: Option<u16>,
    /// Address for the kernel backend to bind (repeat for multi-homing).
    #[arg(long = "kernel-address", value_name = "IP")]
    kernel_addresses: Vec<IpAddr>,
    /// Registrar identifier, decimal or 0x-prefixed hex (0: random).
    #[arg(long, value_parser = parse_u32)]
    registrar_id: Option<u32>,
    /// Do not send ASAP Server Announces.
    #[arg(long)]
    no_announce: bool,
    /// Multicast group and port for ASAP Server Announces.
    #[arg(long, value_name = "GROUP:PORT")]
    announce_group: Option<SocketAddr>,
    /// Local IPv4 address announces leave from (default 127.0.0.1: never beyond the host).
    #[arg(long, value_name = "IP")]
    announce_interface: Option<std::net::Ipv4Addr>,
    /// Endpoint Keep Alive period in ms (spread ±50 %).
    #[arg(long)]
    keep_alive_interval_ms: Option<u64>,
    /// Endpoint Keep Alive Ack timeout in ms.
    #[arg(long)]
    keep_alive_timeout_ms: Option<u64>,
    /// Pool elements in the whole registrar.
    #[arg(long)]
    pool_elements_max: Option<u32>,
    /// µs a core keeps polling after cross-core traffic instead of sleeping (0: always sleep).
    #[arg(long)]
    mesh_spin_us: Option<u64>,
    /// Which clock a loop turn reads: auto (coarse on one worker where precise reads are
    /// system calls), precise, coarse.
    #[arg(long, value_enum)]
    clock: Option<registrar::config::TurnClockSetting>,
    /// Send runs of same-sized packets to one peer with UDP segmentation offload (never with
    /// kernel-SCTP peers: Linux's SCTP in UDP crashes on it).
    #[arg(long)]
    udp_gso: bool,
    /// Forward every handle resolution to its pool's core instead of answering it from the
    /// receiving core's read replica (saves memory on many cores).
    #[arg(long)]
    no_replicas: bool,
    /// Let the heap use transparent huge pages (`huge_pages`): fewer TLB misses, but every
    /// touched 2 MiB block resident (an idle registrar 40 MB instead of 14).
    #[arg(long)]
    huge_pages: bool,
    /// A peer registrar's ENRP address, IP:SCTP-port (repeat for several; the first to answer
    /// is the mentor). With the userspace backend it is reached in UDP on port 9899.
    #[arg(long = "peer", value_name = "IP:PORT")]
    peers: Vec<SocketAddr>,
    /// SCTP port of the ENRP service.
    #[arg(long)]
    enrp_port: Option<u16>,
    /// Do not speak ENRP (a registrar alone; PPID 12 is dropped).
    #[arg(long)]
    no_enrp: bool,
    /// PEER-HEARTBEAT-CYCLE in ms (RFC 5353 §4.2; default 30 000).
    #[arg(long)]
    enrp_heartbeat_ms: Option<u64>,
    /// MAX-TIME-LAST-HEARD in ms (default 61 000).
    #[arg(long)]
    enrp_max_time_last_heard_ms: Option<u64>,
    /// MAX-TIME-NO-RESPONSE in ms (default 5 000).
    #[arg(long)]
    enrp_max_time_no_response_ms: Option<u64>,
    /// How long a starting registrar waits for a ready mentor before serving alone, in ms.
    #[arg(long)]
    enrp_mentor_hunt_timeout_ms: Option<u64>,
    /// Announce our ENRP Presence on the multicast channel and peer with the registrars heard
    /// there (RSPLIB's -enrpannounce).
    #[arg(long)]
    enrp_multicast: bool,
    /// ENRP multicast group and port (default 239.0.0.51:9901).
    #[arg(long, value_name = "GROUP:PORT")]
    enrp_multicast_group: Option<SocketAddr>,
    /// Local IPv4 address the ENRP channel is joined and sent on (default 127.0.0.1).
    #[arg(long, value_name = "IP")]
    enrp_multicast_interface: Option<std::net::Ipv4Addr>,
    /// Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) over HTTP here
    /// (off by default; use a loopback address unless a scraper elsewhere needs it).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Serve the admin API (HTTP + JSON) and its status page here (off by default; loopback
    /// only unless admin.allow_non_loopback = true in the configuration file).
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,
    /// File whose first line is the admin API's bearer token (required with --admin).
    #[arg(long, value_name = "PATH")]
    admin_token_file: Option<PathBuf>,
    /// Serve RFC 5525's RSERPOOL-MIB (read-only) as an AgentX subagent of this master agent:
    /// a Unix socket path (net-snmp: /var/agentx/master) or tcp:HOST:PORT (off by default).
    #[arg(long, value_name = "SOCKET_OR_ADDR")]
    snmp_agentx: Option<String>,
    /// Stop by itself after this many seconds (for tests and load runs).
    #[arg(long)]
    run_seconds: Option<u64>,
    /// Log filter (tracing's EnvFilter syntax), e.g. info or registrar=debug.
    #[arg(long, default_value = "info")]
    log: String,
    /// Log lines as text, or as JSON objects one per line (for journald or a log shipper).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Print the effective configuration (defaults, then --config, then flags) as TOML and
    /// exit.
    #[arg(long)]
    print_config: bool,
    /// Write the man page (registrar.1) and bash, zsh and fish completions into DIR and exit
    /// (packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_docs: Option<PathBuf>,
    /// Check the effective configuration and exit: 0 and "configuration ok", or 2 and the
    /// field that is wrong.
    #[arg(long)]
    check_config: bool,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    // Before the first allocation of ours: `huge_pages` turns them back on once it is read.
    transparent_huge_pages(false);
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&flags.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs that go to files or journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match flags.log_format {
        LogFormat::Text => logs.with_ansi(ansi).init(),
        LogFormat::Json => logs.json().init(),
    }
    if let Some(dir) = &flags.generate_docs {
        return match generate_docs(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("registrar: --generate-docs {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    if flags.print_config || flags.check_config {
        return match configure(&flags) {
            Ok(config) if flags.print_config => {
                print!("{}", config.to_toml());
                ExitCode::SUCCESS
            }
            Ok(_) => {
                println!("configuration ok");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("registrar: {message}");
                ExitCode::from(2)
            }
        };
    }
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("registrar: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Flags) -> Result<(), String> {
    let config = configure(&flags)?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if config.huge_pages {
        transparent_huge_pages(true);
    }
    let running = registrar::io::start(&config).map_err(|e| e.to_string())?;
    let stop = running.stop_flag();
    ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::Relaxed))
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    eprintln!(
        "registrar ready: id=0x{:08x} workers={} backend={:?} udp={} asap_port={}",
        running.registrar_id.0,
        running.workers,
        config.backend,
        config.udp_encapsulation,
        config.asap_port
    );
    spawn_systemd_notifier(&running, config.enrp.enabled);
    if let Some(seconds) = flags.run_seconds {
        let stop = running.stop_flag();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let stats = running.wait().map_err(|e| e.to_string())?;
    eprint!("registrar stopped\n{}", registrar::report::summary(&stats));
    Ok(())
}

/// Whether the process's memory may come in transparent huge pages from here on, as far as
/// the host's THP setting allows (`huge_pages`, default off). Off, the heap stays in 4 KiB
/// pages: the tables and buffers the workers reserve at start are touched sparsely, and
/// under huge pages each touch of a 2 MiB-aligned block of mimalloc's arenas would make all
/// of it resident. PR_SET_THP_DISABLE (Linux 3.15) is looked at on every page fault of the
/// process, so it covers the arenas reserved before `main` too. Where the call fails (an
/// old kernel), the host's setting stands; nothing else depends on it.
fn transparent_huge_pages(allowed: bool) {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and changes no memory of ours.
    let _ =
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(!allowed), 0, 0, 0) };
}

fn configure(flags: &Flags) -> Result<Config, String> {
    let mut config = match &flags.config {
        Some(path) => Config::from_file(path).map_err(|e| e.0)?,
        None => Config::default(),
    };
    set(&mut config.workers, flags.workers);
    set(&mut config.backend, flags.backend);
    set(&mut config.udp_encapsulation, flags.udp);
    set(&mut config.sctp_mtu, flags.sctp_mtu);
    set(&mut config.sctp_rto_max_ms, flags.sctp_rto_max_ms);
    set(&mut config.asap_port, flags.asap_port);
    set(&mut config.registrar_id, flags.registrar_id);
    set(&mut config.announce.group, flags.announce_group);
    set(&mut config.announce.interface, flags.announce_interface);
    set(&mut config.timers.keep_alive_interval_ms, flags.keep_alive_interval_ms);
    set(&mut config.timers.keep_alive_timeout_ms, flags.keep_alive_timeout_ms);
    set(&mut config.limits.pool_elements_max, flags.pool_elements_max);
    set(&mut config.timers.mesh_spin_us, flags.mesh_spin_us);
    set(&mut config.timers.clock, flags.clock);
    set(&mut config.enrp_port, flags.enrp_port);
    set(&mut config.enrp.heartbeat_cycle_ms, flags.enrp_heartbeat_ms);
    set(&mut config.enrp.max_time_last_heard_ms, flags.enrp_max_time_last_heard_ms);
    set(&mut config.enrp.max_time_no_response_ms, flags.enrp_max_time_no_response_ms);
    set(&mut config.enrp.mentor_hunt_timeout_ms, flags.enrp_mentor_hunt_timeout_ms);
    if flags.metrics.is_some() {
        config.metrics.listen = flags.metrics;
    }
    if flags.admin.is_some() {
        config.admin.listen = flags.admin;
    }
    if flags.admin_token_file.is_some() {
        config.admin.token_file = flags.admin_token_file.clone();
    }
    if flags.snmp_agentx.is_some() {
        config.snmp.agentx = flags.snmp_agentx.clone();
    }
    set(&mut config.enrp.multicast_group, flags.enrp_multicast_group);
    set(&mut config.enrp.multicast_interface, flags.enrp_multicast_interface);
    if flags.enrp_multicast {
        config.enrp.multicast = true;
    }
    if !flags.peers.is_empty() {
        config.enrp.peers = flags.peers.clone();
    }
    if flags.no_enrp {
        config.enrp.enabled = false;
    }
    if flags.udp_gso {
        config.udp_gso = true;
    }
    if flags.huge_pages {
        config.huge_pages = true;
    }
    if flags.no_replicas {
        config.replicas = false;
    }
    if flags.no_announce {
        config.announce.enabled = false;
    }
    if !flags.kernel_addresses.is_empty() {
        config.kernel_addresses = flags.kernel_addresses.clone();
    }
    config.validate().map_err(|e| e.0)?;
    Ok(config)
}

/// Under systemd (`Type=notify`): `READY=1` once ENRP start-up is done (the mentor's
/// handlespace is in, or none answered before `enrp.mentor_hunt_timeout_ms`), then
/// `WATCHDOG=1` every half `WatchdogSec=` for as long as the process runs.
fn spawn_systemd_notifier(running: &registrar::core::Running, enrp: bool) {
    use registrar::io::systemd;
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let stats = running.stats_handle();
    let stop = running.stop_flag();
    let watchdog = systemd::watchdog_interval();
    std::thread::spawn(move || {
        let tick = std::time::Duration::from_millis(50);
        let mut ready = false;
        let mut next_ping = std::time::Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if !ready && (!enrp || stats.per_core().first().is_some_and(|s| s.enrp_ready == 1)) {
                ready = true;
                let _ = systemd::notify("READY=1\nSTATUS=serving");
            }
            if let Some(interval) = watchdog {
                if std::time::Instant::now() >= next_ping {
                    let _ = systemd::notify("WATCHDOG=1");
                    next_ping += interval;
                }
            }
            std::thread::sleep(tick);
        }
        let _ = systemd::notify("STOPPING=1");
    });
}

/// The man page and completions, generated from the flags above so that they never drift.
fn generate_docs(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let command = Flags::command().name("registrar");
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join("registrar.1"), page)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish]
    {
        clap_complete::generate_to(shell, &mut command.clone(), "registrar", dir)?;
    }
    Ok(())
}

/// A u32 in decimal or with a 0x prefix in hex (server ids are usually written in hex).
fn parse_u32(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("{e} (a 32-bit number, decimal or 0x-prefixed hex)"))
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}
