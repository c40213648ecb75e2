//! `rserpool watch POOL`: follows a pool with a subscription (RFC 5352 §2.2.5, the S flag)
//! and prints one line per PE added, changed (re-registered with other content) or removed,
//! found by diffing each pushed list against the last, and one line when the pool is gone.
//! The PEs present at the start are printed as added. Where the registrar does not accept
//! the subscription (no A flag), the endpoint polls at the stale-cache interval and says so on
//! stderr. Registrar losses and new homes go to stderr too; the subscription follows the home.
//! When the pool is gone, the PEs last seen are printed as removed before the pool's line.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use asap::blocking::{Driver, PoolUpdate};
use asap::{Event, Updates};
use codec::{PoolElement, PoolHandle};
use serde_json::json;

use crate::cli::{Global, WatchArgs};
use crate::format::{element_json, endpoints, id_hex, policy_text, transport_name};
use crate::net::{self, Registrars};
use crate::say;

/// How long one wait for a change lasts before the stop flag and the limits are looked at.
const SLICE: Duration = Duration::from_millis(50);

/// Runs the watch until the pool is gone, `--count` lines, `--duration-ms`, or a signal.
pub(crate) fn run(global: &Global, args: &WatchArgs) -> anyhow::Result<()> {
    let stop = crate::pe::stop_flag()?;
    let until = args.duration_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    let config = net::endpoint_config(global);
    let poll_ms = config.stale_cache.as_millis();
    let mut driver = Driver::new(net::transport(global, false)?, config, rand::random());
    let mut registrars = Registrars::new(global);
    let first = driver.subscribe(args.pool, global.timeout());
    observe(&mut driver, &mut registrars);
    let (elements, updates) = match first {
        Ok(first) => first,
        Err(e) => {
            driver.close(Duration::from_millis(500));
            return Err(net::resolution_error(e, &args.pool, registrars.home(), global));
        }
    };
    let mut watch = Watch { pool: args.pool, json: args.json, known: BTreeMap::new(), lines: 0 };
    let mut polled = false;
    note_updates(&mut polled, updates, &registrars, poll_ms);
    watch.apply(&elements);
    let done = |w: &Watch| {
        args.count.is_some_and(|n| w.lines >= n)
            || until.is_some_and(|at| Instant::now() >= at)
            || stop.load(Ordering::Relaxed)
    };
    while !done(&watch) {
        let slice_end = until.map_or(Instant::now() + SLICE, |at| at.min(Instant::now() + SLICE));
        let update = driver
            .next_update(&args.pool, slice_end)
            .map_err(|e| anyhow::anyhow!("watch of pool \"{}\" stopped: {e}", args.pool));
        observe(&mut driver, &mut registrars);
        match update? {
            None => {}
            Some(PoolUpdate::Changed { elements, updates }) => {
                note_updates(&mut polled, updates, &registrars, poll_ms);
                watch.apply(&elements);
            }
            Some(PoolUpdate::Gone) => {
                watch.gone();
                break;
            }
        }
    }
    driver.close(Duration::from_millis(500));
    Ok(())
}

/// What the watch has printed: the PEs it last saw, and how many lines.
struct Watch {
    pool: PoolHandle,
    json: bool,
    known: BTreeMap<u32, PoolElement>,
    lines: u64,
}

impl Watch {
    /// Prints the difference between the last list and `elements`, which becomes the last.
    fn apply(&mut self, elements: &[PoolElement]) {
        let now: BTreeMap<u32, PoolElement> =
            elements.iter().map(|e| (e.id.0, e.clone())).collect();
        let removed: Vec<PoolElement> =
            self.known.values().filter(|e| !now.contains_key(&e.id.0)).cloned().collect();
        for e in &removed {
            self.line("removed", e);
        }
        for e in now.values() {
            match self.known.get(&e.id.0) {
                None => self.line("added", e),
                Some(old) if old != e => self.line("changed", e),
                Some(_) => {}
            }
        }
        self.known = now;
    }

    fn line(&mut self, what: &str, e: &PoolElement) {
        self.lines += 1;
        if self.json {
            let doc =
                json!({ "event": what, "pool": self.pool.to_string(), "pe": element_json(e) });
            say(doc);
        } else {
            say(format_args!(
                "{what} {} {} {} {} home {}",
                id_hex(e.id.0),
                transport_name(&e.user_transport),
                endpoints(&e.user_transport),
                policy_text(&e.policy),
                id_hex(e.home_registrar.0)
            ));
        }
    }

    /// The pool is gone: its last PEs are removed, then the pool. (The registrar's negative
    /// push carries no list, so the PEs it still had are the ones last seen.)
    fn gone(&mut self) {
        for e in std::mem::take(&mut self.known).values() {
            self.line("removed", e);
        }
        self.lines += 1;
        if self.json {
            say(json!({ "event": "gone", "pool": self.pool.to_string() }));
        } else {
            say(format_args!("gone pool \"{}\"", self.pool));
        }
    }
}

/// Says on stderr, once per switch, that the registrar did not accept the subscription.
fn note_updates(polled: &mut bool, updates: Updates, registrars: &Registrars, poll_ms: u64) {
    let now_polled = updates == Updates::Polled;
    if now_polled && !*polled {
        let at =
            registrars.home().map_or_else(|| "the home registrar".to_owned(), |h| h.to_string());
        eprintln!(
            "registrar {at} does not push pool updates (no A flag); polling every {poll_ms} ms"
        );
    }
    *polled = now_polled;
}

/// Registrar losses and new homes, on stderr.
fn observe(driver: &mut Driver<crate::net::Backend>, registrars: &mut Registrars) {
    for event in driver.take_events() {
        let lost = match &event {
            Event::RegistrarLost { assoc } => registrars.peer(*assoc),
            _ => None,
        };
        let rehoming = registrars.lost_home();
        registrars.observe(&event);
        match event {
            Event::RegistrarLost { .. } => {
                let lost = lost.map_or_else(|| "home registrar".to_owned(), |p| p.to_string());
                eprintln!("registrar lost: {lost}; hunting for another");
            }
            Event::RegistrarFound { .. } if rehoming => {
                if let Some(home) = registrars.home() {
                    eprintln!("home changed to {home}; subscribing there");
                }
            }
            _ => {}
        }
    }
}
