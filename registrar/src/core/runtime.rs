//! Starts one pinned worker per core, plus the announce thread, and stops them.

use super::clock::{ClockChoice, TurnClock};
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use codec::asap::ServerAnnounce;
use codec::param::{AddressList, SctpTransport as SctpTransportParam};
use codec::{RegistrarId, TransportUse, UserTransport};
use transport::SctpTransport;

use super::bells::Bell;
use super::mesh::mesh;
use super::worker::Worker;
use crate::config::Config;
use crate::io::management::{Mailbox, Management};
use crate::proto::{Server, ServerConfig, Stats};

/// Where the cores publish their counters, for readers on other threads (the metrics).
#[derive(Clone)]
pub struct StatsHandle(Arc<[Arc<Mutex<Stats>>]>);

impl StatsHandle {
    /// Each core's latest counters, by core.
    pub fn per_core(&self) -> Vec<Stats> {
        self.0.iter().map(|s| *s.lock().unwrap_or_else(|p| p.into_inner())).collect()
    }
}

/// A running registrar.
pub struct Running {
    /// The registrar id in use (random when the configuration said 0).
    pub registrar_id: RegistrarId,
    /// Worker threads.
    pub workers: usize,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    stats: Vec<Arc<Mutex<Stats>>>,
}

impl Running {
    /// The stop flag, for a signal handler.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Counters summed over all cores (published every 100 ms by each core).
    pub fn stats(&self) -> Stats {
        let mut sum = Stats::default();
        for s in &self.stats {
            add(&mut sum, &s.lock().expect("no thread panics holding it"));
        }
        sum
    }

    /// A reader of the cores' counters for another thread.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.stats.clone().into())
    }

    /// Each core's counters, by core (published every 100 ms by each core).
    pub fn stats_per_core(&self) -> Vec<Stats> {
        StatsHandle(self.stats.clone().into()).per_core()
    }

    /// Stops every thread and waits for it; returns the final counters.
    pub fn stop(self) -> io::Result<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Waits until the stop flag is set (by a signal) and every thread has ended.
    pub fn wait(self) -> io::Result<Stats> {
        let mut first_error = None;
        for thread in self.threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => first_error = first_error.or(Some(io::Error::other("a worker panicked"))),
            }
        }
        let mut sum = Stats::default();
        for s in &self.stats {
            add(&mut sum, &s.lock().unwrap_or_else(|p| p.into_inner()));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sum),
        }
    }
}

/// Starts the registrar: one worker per core, each calling `make_transport(core)` on its own
/// thread (io_uring instances belong to the thread that uses them). Returns once every worker
/// has its transport, or the first startup error (a busy port, say) with every thread stopped.
pub fn start<T, F>(config: &Config, make_transport: F) -> io::Result<Running>
where
    T: SctpTransport + 'static,
    F: Fn(usize) -> io::Result<T> + Send + Sync + 'static,
{
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.0))?;
    // Read before any thread starts: a missing or unreadable token file is a start-up error.
    let admin_token = match (&config.admin.listen, &config.admin.token_file) {
        (Some(_), Some(path)) => Some(crate::io::admin::load_token(path)?),
        _ => None,
    };
    let started = StdInstant::now();
    let cores = config.worker_count();
    let cores_u16 = u16::try_from(cores)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "workers: at most 65535"))?;
    let registrar_id = match config.registrar_id {
        0 => RegistrarId(rand::random::<u32>().max(1)),
        id => RegistrarId(id),
    };
    let depth = config.limits.cross_core_queue_depth as usize;
    let mut control = mesh(cores, depth);
    let mut data = mesh(cores, depth);
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = StdInstant::now();
    let make_transport = Arc::new(make_transport);
    let pin_to = core_affinity::get_core_ids().unwrap_or_default();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let bells: Arc<[Bell]> = (0..cores).map(|_| Bell::default()).collect();
    let mesh_spin = std::time::Duration::from_micros(config.timers.mesh_spin_us);
    // Several workers read precisely: a coarse tick would stretch their 50 µs mesh spin.
    let clock_choice = match (cores, config.timers.clock) {
        (1, crate::config::TurnClockSetting::Auto) => ClockChoice::Auto,
        (1, crate::config::TurnClockSetting::Coarse) => ClockChoice::Coarse,
        _ => ClockChoice::Precise,
    };
    let mut threads = Vec::new();
    let mut stats = Vec::new();
    let mailboxes: Arc<[Arc<Mailbox>]> = (0..cores).map(|_| Arc::new(Mailbox::default())).collect();
    for core in (0..cores).rev() {
        let server = Server::new(server_config(config, registrar_id, core as u16, cores_u16));
        let (control, data) =
            (control.pop().expect("one port per core"), data.pop().expect("one port per core"));
        let published = Arc::new(Mutex::new(Stats::default()));
        stats.push(published.clone());
        let (stop, make_transport, ready) =
            (stop.clone(), make_transport.clone(), ready_tx.clone());
        let bells = bells.clone();
        let mailbox = mailboxes[core].clone();
        let presence = if core == usize::from(crate::proto::ENRP_CORE) {
            crate::io::presence::PresenceChannel::open(config)?
        } else {
            None
        };
        let pin = pin_to.get(core % pin_to.len().max(1)).copied();
        let thread = std::thread::Builder::new().name(format!("registrar-core-{core}")).spawn(
            move || {
                if let Some(id) = pin {
                    core_affinity::set_for_current(id);
                }
                let mut transport = match make_transport(core) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready.send(Err(format!("core {core}: {e}")));
                        return Err(e);
                    }
                };
                match transport.doorbell() {
                    Ok(Some(doorbell)) => bells[core].install(doorbell),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(core, error = %e, "no doorbell; polling the queues"),
                }
                let _ = ready.send(Ok(()));
                drop(ready);
                let nudge = vec![false; bells.len()];
                let backlog = (0..bells.len()).map(|_| VecDeque::new()).collect();
                let clock = TurnClock::new(clock_choice);
                if let Some(tick) = clock.tick() {
                    tracing::info!(
                        core,
                        tick_us = tick.as_micros() as u64,
                        "loop turns read the coarse clock (precise reads are system calls here)"
                    );
                }
                Worker {
                    core,
                    transport,
                    server,
                    control,
                    data,
                    stop,
                    published,
                    epoch,
                    bells,
                    nudge,
                    mesh_spin,
                    backlog,
                    presence,
                    mailbox,
                    draining: false,
                    shutdowns: Vec::new(),
                    associations: hashbrown::HashSet::new(),
                    unsent: super::worker::Outbox::default(),
                    clock,
                }
                .run()
            },
        )?;
        threads.push(thread);
    }
    drop(ready_tx);
    stats.reverse();
    let mut running = Running { registrar_id, workers: cores, stop, threads, stats };
    for _ in 0..cores {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                running.stop.store(true, Ordering::Relaxed);
                let _ = running.wait();
                return Err(io::Error::other(message));
            }
            Err(_) => break,
        }
    }
    // Set by the admin API's drain: a draining registrar stops announcing itself.
    let draining = Arc::new(AtomicBool::new(false));
    if config.announce.enabled {
        let stop = running.stop.clone();
        running.threads.push(spawn_announcer(config, registrar_id, stop, draining.clone())?);
    }
    if let Some(listen) = config.metrics.listen {
        let handle = StatsHandle(running.stats.clone().into());
        let context = crate::io::metrics::Context { registrar_id, enrp: config.enrp.enabled };
        let thread = crate::io::metrics::spawn(listen, handle, context, running.stop.clone())
            .map_err(|e| io::Error::new(e.kind(), format!("metrics.listen {listen}: {e}")))?;
        running.threads.push(thread);
    }
    if let Some(master) = &config.snmp.agentx {
        let context = crate::io::agentx::Context {
            config: config.clone(),
            registrar_id,
            started,
            management: Management::new(mailboxes.clone(), bells.clone()),
        };
        let master = crate::io::agentx::Master::parse(master);
        let stop = running.stop.clone();
        let thread = crate::io::agentx::spawn(master, context, stop)
            .inspect_err(|_| running.stop.store(true, Ordering::Relaxed))?;
        running.threads.push(thread);
    }
    if let (Some(listen), Some(token)) = (config.admin.listen, admin_token) {
        let context = crate::io::admin::Context {
            config: config.clone(),
            registrar_id,
            started,
            stats: StatsHandle(running.stats.clone().into()),
            management: Management::new(mailboxes, bells),
            token,
            draining,
        };
        let stop = running.stop.clone();
        let thread = crate::io::admin::spawn(listen, context, stop).map_err(|e| {
            running.stop.store(true, Ordering::Relaxed);
            io::Error::new(e.kind(), format!("admin.listen {listen}: {e}"))
        })?;
        running.threads.push(thread);
    }
    Ok(running)
}

fn server_config(
    config: &Config,
    registrar_id: RegistrarId,
    core: u16,
    cores: u16,
) -> ServerConfig {
    let mut handlespace = handlespace::Config::default();
    let limits = &config.limits;
    // Each shard gets the whole bound: a pool lives on one shard, and handle hashing does not
    // promise an even split, so a smaller per-shard share could refuse a legal registration.
    handlespace.limits.pools_max = limits.pools_max;
    handlespace.limits.pool_elements_max = limits.pool_elements_max;
    handlespace.limits.pool_elements_per_pool_max = limits.pool_elements_per_pool_max;
    handlespace.limits.items_per_resolution_max = limits.resolution_items_max;
    handlespace.max_bad_pe_reports = u8::try_from(limits.bad_pe_reports_max).unwrap_or(u8::MAX);
    let ms = |v: u64| handlespace::Duration::from_micros(v.saturating_mul(1_000));
    handlespace.keep_alive_interval = ms(config.timers.keep_alive_interval_ms);
    handlespace.keep_alive_timeout = ms(config.timers.keep_alive_timeout_ms);
    ServerConfig {
        registrar_id,
        core,
        cores,
        handlespace,
        resolution_items_default: config.limits.resolution_items_default,
        registration_life_max: ms(config.timers.registration_life_max_ms),
        remove_on_session_loss: true,
        seed: rand::random(),
        replicas: config.replicas,
        enrp: config.enrp.enabled.then(|| enrp_config(config)),
    }
}

/// The ENRP server's settings from the registrar's.
fn enrp_config(config: &Config) -> crate::proto::enrp::EnrpConfig {
    let ms = handlespace::Duration::from_millis;
    let enrp = &config.enrp;
    let mut c = crate::proto::enrp::EnrpConfig::new(config.enrp_address(), enrp.peers.clone());
    c.heartbeat_cycle = ms(enrp.heartbeat_cycle_ms);
    c.max_time_last_heard = ms(enrp.max_time_last_heard_ms);
    c.max_time_no_response = ms(enrp.max_time_no_response_ms);
    c.mentor_hunt_timeout = ms(enrp.mentor_hunt_timeout_ms);
    c.table_page_elements_max = enrp.table_page_elements_max as usize;
    c.multicast = enrp.multicast;
    c.one_association_table = config.backend == crate::config::Backend::Kernel;
    c
}

/// The ASAP Server Announce thread (RFC 5352 §3.6): one datagram per interval, off the cores.
fn spawn_announcer(
    config: &Config,
    registrar_id: RegistrarId,
    stop: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let IpAddr::V4(group) = config.announce.group.ip() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "announce.group: IPv4 only"));
    };
    let addresses: Vec<IpAddr> = match config.backend {
        crate::config::Backend::Userspace => vec![config.udp_encapsulation.ip()],
        crate::config::Backend::Kernel => config.kernel_addresses.clone(),
    };
    let addresses: Vec<IpAddr> = addresses.into_iter().filter(|ip| !ip.is_unspecified()).collect();
    let transports = match AddressList::from_slice(&addresses) {
        // RSPLIB sends no transport and means the announce's source address; with a wildcard
        // bind we do the same.
        None => Vec::new(),
        Some(_) if addresses.is_empty() => Vec::new(),
        Some(addresses) => vec![UserTransport::Sctp(SctpTransportParam {
            port: config.asap_port,
            transport_use: TransportUse::DATA_ONLY,
            addresses,
        })],
    };
    let announce = ServerAnnounce { server_id: registrar_id, transports }.emit_to_vec();
    let multicast = transport::multicast::MulticastConfig {
        group,
        port: config.announce.group.port(),
        interface: config.announce.interface,
        ..Default::default()
    };
    let sender = transport::multicast::MulticastSender::open(&multicast)?;
    let interval = StdDuration::from_millis(config.announce.interval_ms);
    std::thread::Builder::new().name("registrar-announce".into()).spawn(move || {
        let mut next = StdInstant::now();
        while !stop.load(Ordering::Relaxed) {
            if StdInstant::now() >= next {
                // A draining registrar is not to be found by hunts: it stays silent.
                let silent = draining.load(Ordering::Relaxed);
                if let Err(e) = if silent { Ok(()) } else { sender.send(&announce) } {
                    tracing::debug!(error = %e, "server announce not sent");
                }
                next += interval;
            }
            std::thread::sleep(StdDuration::from_millis(20).min(interval));
        }
        Ok(())
    })
}

/// Adds one core's counters to `sum` (gauges add up to the registrar's; ENRP's are the ENRP
/// core's).
pub(crate) fn add(sum: &mut Stats, s: &Stats) {
    sum.registrations += s.registrations;
    sum.registrations_rejected += s.registrations_rejected;
    sum.deregistrations += s.deregistrations;
    sum.resolutions += s.resolutions;
    sum.keep_alives_sent += s.keep_alives_sent;
    sum.keep_alive_timeouts += s.keep_alive_timeouts;
    sum.lifetime_expiries += s.lifetime_expiries;
    sum.unreachable_removals += s.unreachable_removals;
    sum.session_removals += s.session_removals;
    sum.handed_off += s.handed_off;
    sum.decode_errors += s.decode_errors;
    sum.dropped += s.dropped;
    sum.too_long += s.too_long;
    sum.sessions_opened += s.sessions_opened;
    sum.replica_resolutions += s.replica_resolutions;
    sum.replica_updates += s.replica_updates;
    sum.shard_elements += s.shard_elements;
    sum.shard_pools += s.shard_pools;
    sum.replica_elements += s.replica_elements;
    sum.shard_sum = sum.shard_sum.merge(s.shard_sum);
    sum.replica_sum = sum.replica_sum.merge(s.replica_sum);
    sum.peer_upserts += s.peer_upserts;
    sum.peer_removals += s.peer_removals;
    sum.peer_rejected += s.peer_rejected;
    sum.peer_claims_refused += s.peer_claims_refused;
    sum.keep_alives_unroutable += s.keep_alives_unroutable;
    // ENRP runs on one core (the others report zeros).
    if s.enrp != crate::proto::enrp::EnrpStats::default() {
        sum.enrp = s.enrp;
    }
    sum.enrp_peers += s.enrp_peers;
    sum.enrp_ready += s.enrp_ready;
    sum.subscriptions += s.subscriptions;
    sum.subscription_pushes += s.subscription_pushes;
    sum.subscriptions_refused += s.subscriptions_refused;
}
