//! `rserpool pe` and `rserpool register`: one PE kept registered (answering keep-alives,
//! re-registering every T4, hunting for another registrar when its home fails) until a signal
//! or `--run-seconds`, then deregistered. One stdout line per event.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant as OsInstant;

use anyhow::Context as _;
use asap::blocking::{in_words, Driver};
use asap::{Event, Failure, PeConfig, PeHandle};
use codec::param::{AddressList, SctpTransport, UserTransport};
use codec::{PoolHandle, TransportUse};

use crate::cli::{Global, Registration, Service, UserProtocol};
use crate::format::id_hex;
use crate::net::{self, Registrars};
use crate::say;

/// How long the driver runs between looks at the stop flag and the run deadline.
const SLICE: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs a PE: `service` (if any) on `port`, registered with `registration`.
pub(crate) fn run(
    global: &Global,
    registration: &Registration,
    service: Option<Service>,
    port: u16,
) -> anyhow::Result<()> {
    let policy = registration.policy().map_err(anyhow::Error::msg)?;
    let stop = stop_flag()?;
    let pe_id = Arc::new(AtomicU32::new(0));
    let port = match service {
        Some(service) if registration.transport == UserProtocol::Sctp => {
            let bound = crate::service::start_sctp(
                service,
                global,
                registration.address,
                port,
                Arc::clone(&pe_id),
            )
            .with_context(|| {
                format!("cannot bind {} on sctp {}", service.as_str(), show(registration, port))
            })?;
            say(format_args!(
                "serving {} on sctp {} with the ASAP control channel",
                service.as_str(),
                show(registration, bound)
            ));
            bound
        }
        Some(service) => {
            let bound =
                crate::service::start(service, registration.address, port).with_context(|| {
                    format!("cannot bind {} on {}", service.as_str(), show(registration, port))
                })?;
            say(format_args!(
                "serving {} on tcp+udp {}",
                service.as_str(),
                show(registration, bound)
            ));
            bound
        }
        None => port,
    };
    let mut config = PeConfig::new(registration.pool, user_transport(registration, port), policy);
    config.id = registration.id.map(codec::PoolElementId);
    config.registration_life = asap::Duration::from_millis(u64::from(registration.lifetime_ms));
    let run_until =
        registration.run_seconds.map(|s| OsInstant::now() + std::time::Duration::from_secs(s));

    let mut pe = Pe {
        driver: Driver::new(
            net::transport(global, true)?,
            net::endpoint_config(global),
            rand::random(),
        ),
        handle: PeHandle(0),
        pool: registration.pool,
        registrars: Registrars::new(global),
        registered: false,
    };
    let now = pe.driver.instant(OsInstant::now());
    pe.handle =
        pe.driver.endpoint_mut().register(now, config).map_err(|e| {
            anyhow::anyhow!("cannot register in pool \"{}\": {e:?}", registration.pool)
        })?;
    // Known from here on (the endpoint picks it at `register`); the SCTP service's cookies
    // carry it.
    pe_id.store(pe.id(), Ordering::Relaxed);
    let registered_by = OsInstant::now() + global.timeout();
    while !pe.registered {
        pe.turn()?;
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if OsInstant::now() >= registered_by {
            return Err(anyhow::anyhow!(pe.late(global)));
        }
    }
    while !stop.load(Ordering::Relaxed) && run_until.is_none_or(|at| OsInstant::now() < at) {
        pe.turn()?;
    }
    pe.leave(global)
}

/// A PE and what the tool knows about its registrars.
struct Pe {
    driver: Driver<net::Backend>,
    handle: PeHandle,
    pool: PoolHandle,
    registrars: Registrars,
    /// Registered at least once.
    registered: bool,
}

impl Pe {
    /// Runs the driver for one slice and reports what happened.
    fn turn(&mut self) -> anyhow::Result<()> {
        self.driver.serve(SLICE).context("PE stopped")?;
        for event in self.driver.take_events() {
            self.report(&event)?;
        }
        Ok(())
    }

    /// One line per event; a registration that failed for good ends the PE.
    fn report(&mut self, event: &Event) -> anyhow::Result<()> {
        let rehoming = self.registered && self.registrars.home().is_none();
        // Looked up before `observe`, which forgets a lost registrar.
        let lost = match event {
            Event::RegistrarLost { assoc } => self.registrars.peer(*assoc),
            _ => None,
        };
        self.registrars.observe(event);
        let id = self.id();
        match event {
            Event::RegistrarFound { assoc, .. } if rehoming => {
                let peer = self.registrars.peer(*assoc).map(|p| p.to_string());
                say(format_args!("home changed to {}", peer.unwrap_or_default()));
            }
            Event::HomeChanged { registrar, assoc, .. } => {
                let at = self.registrars.peer(*assoc).map(|p| format!(" at {p}"));
                let at = at.unwrap_or_default();
                say(format_args!("home changed to registrar {}{at}", id_hex(registrar.0)));
            }
            Event::RegistrarLost { .. } => {
                let lost = lost.map_or_else(|| "home registrar".to_owned(), |p| p.to_string());
                say(format_args!("registrar lost: {lost}; hunting for another"));
            }
            Event::Registered { pe, .. } if *pe == self.handle => {
                self.registered = true;
                let assoc =
                    self.driver.endpoint().pool_element(self.handle).and_then(|p| p.assoc());
                let at = assoc.and_then(|a| self.registrars.peer(a)).or(self.registrars.home());
                let at = at.map_or_else(|| "the home registrar".to_owned(), |a| a.to_string());
                say(format_args!("registered PE {} in pool \"{}\" at {at}", id_hex(id), self.pool));
            }
            Event::RegistrationFailed { pe, failure } if *pe == self.handle => {
                let at = self.registrars.home().map(|h| format!(" at {h}")).unwrap_or_default();
                return Err(anyhow::anyhow!(match failure {
                    Failure::Refused(cause) => format!(
                        "registration of PE {} in pool \"{}\" refused{at}: {}",
                        id_hex(id),
                        self.pool,
                        in_words(*cause)
                    ),
                    Failure::TimedOut => format!(
                        "registration of PE {} in pool \"{}\" timed out{at}; gave up",
                        id_hex(id),
                        self.pool
                    ),
                }));
            }
            _ => {}
        }
        Ok(())
    }

    /// Why the first registration did not happen in time.
    fn late(&self, global: &Global) -> String {
        match self.registrars.home() {
            None => net::no_registrar(global),
            Some(home) => format!(
                "registrar {home} did not answer the registration of PE {} in pool \"{}\" \
                 within {} ms",
                id_hex(self.id()),
                self.pool,
                global.timeout_ms
            ),
        }
    }

    /// Deregisters and says so.
    fn leave(mut self, global: &Global) -> anyhow::Result<()> {
        let id = self.id();
        let left = self.driver.deregister(self.handle, global.timeout());
        for event in self.driver.take_events() {
            self.registrars.observe(&event);
        }
        self.driver.close(std::time::Duration::from_millis(500));
        left.map_err(|e| {
            anyhow::anyhow!(
                "deregistration of PE {} from pool \"{}\" failed: {e}",
                id_hex(id),
                self.pool
            )
        })?;
        say(format_args!("deregistered PE {} from pool \"{}\"", id_hex(id), self.pool));
        Ok(())
    }

    fn id(&self) -> u32 {
        self.driver.endpoint().pool_element(self.handle).map_or(0, |p| p.id().0)
    }
}

/// The user transport registered: SCTP, TCP or UDP at `--address:port`.
fn user_transport(registration: &Registration, port: u16) -> UserTransport {
    let address = registration.address;
    match registration.transport {
        //= https://www.rfc-editor.org/rfc/rfc5354#section-3.3
        //# This field represents how the pool element intends this transport
        //# address to be used.
        // Data plus control: the PU sends Cookie Echo and Business Card on the association
        // it opened for data, as RSPLIB's PUs do.
        UserProtocol::Sctp => UserTransport::Sctp(SctpTransport {
            port,
            transport_use: TransportUse::DATA_PLUS_CONTROL,
            addresses: AddressList::from_slice(&[address]).expect("one address fits the list"),
        }),
        UserProtocol::Tcp => {
            UserTransport::Tcp { port, transport_use: TransportUse::DATA_ONLY, address }
        }
        UserProtocol::Udp => UserTransport::Udp { port, address },
    }
}

fn show(registration: &Registration, port: u16) -> SocketAddr {
    SocketAddr::new(registration.address, port)
}

/// Set by SIGINT, SIGTERM or SIGHUP; a second signal exits at once.
pub(crate) fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
    .context("cannot install the signal handler")?;
    Ok(stop)
}
