//! The checker: five properties proven from a history alone (issue #16).
//!
//! 1. `no-lost-registration`: a registration acknowledged to a PE that then stayed alive and
//!    reachable is in every successful probe of every registrar that was itself undisturbed,
//!    from `converge` after the acknowledgement until the PE's first fault or deregistration.
//! 2. `departure-bound`: a PE that died, stopped or deregistered is absent from every probe
//!    later than `depart` after it went, at every registrar, until it comes back; at least one
//!    registrar must have been probed late enough to show it (no evidence is a failure).
//! 3. `no-stale-resolution`: no PU resolution returned a PE gone longer than `depart`.
//! 4. `one-takeover-winner`: each failure of a registrar (an incarnation's fault epoch) was
//!    taken over by at most one registrar.
//! 5. `failover-bound`: no PU saw its requests fail for longer than `failover`.
//!
//! A node is *disturbed* from a kill, stop or partition until the start, continue or heal that
//! undoes it, plus `converge`; a start alone disturbs for `converge` (the node is catching up).
//! Loss does not disturb: a registrar under random loss is still expected to be right.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::history::{Entry, Fault, Kind, Outcome};

/// The bounds the properties are checked against, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// How long a change takes to reach every registrar (and a started node to catch up).
    pub converge_ms: u64,
    /// How long a gone PE may still be listed.
    pub depart_ms: u64,
    /// The longest a PU's requests may fail in a row.
    pub failover_ms: u64,
}

impl Bounds {
    /// Parses `converge=MS,depart=MS,failover=MS` (any order, all three required).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (mut converge, mut depart, mut failover) = (None, None, None);
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("{part}: no '='"))?;
            let ms: u64 = value.parse().map_err(|e| format!("{key}: {e}"))?;
            match key {
                "converge" => converge = Some(ms),
                "depart" => depart = Some(ms),
                "failover" => failover = Some(ms),
                _ => return Err(format!("unknown bound {key:?}")),
            }
        }
        match (converge, depart, failover) {
            (Some(converge_ms), Some(depart_ms), Some(failover_ms)) => {
                Ok(Self { converge_ms, depart_ms, failover_ms })
            }
            _ => Err("bounds need converge=MS,depart=MS,failover=MS".to_owned()),
        }
    }
}

/// One property's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The property's name.
    pub property: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was judged and measured, in one line.
    pub summary: String,
    /// Each violation in one line (the first few are enough to debug).
    pub violations: Vec<String>,
}

impl Verdict {
    fn new(property: &'static str, summary: String, violations: Vec<String>) -> Self {
        Self { property, passed: violations.is_empty(), summary, violations }
    }
}

/// Checks every property of `history` (sorted by time, as [`crate::history::parse`] leaves it).
/// Times in the verdicts are milliseconds since the history's first entry.
pub fn check(history: &[Entry], bounds: &Bounds) -> Vec<Verdict> {
    let t0 = history.first().map_or(0, |e| e.t_us);
    let history: Vec<Entry> =
        history.iter().map(|e| Entry { t_us: e.t_us - t0, ..e.clone() }).collect();
    let model = Model::new(&history, bounds);
    vec![
        no_lost_registration(&model, bounds),
        departure_bound(&model, bounds),
        no_stale_resolution(&model, bounds),
        one_takeover_winner(&model),
        failover_bound(&model, bounds),
    ]
}

/// A PE's time alive: from its acknowledged registration to its first fault or deregistration.
#[derive(Clone, Debug)]
struct Life {
    pe: u32,
    process: String,
    registered_us: u64,
    /// When it went (`None`: alive at the end of the history).
    gone_us: Option<u64>,
    /// When its process was started or resumed after it went (`None`: never).
    back_us: Option<u64>,
}

/// What the checker derives from the history once.
struct Model<'a> {
    history: &'a [Entry],
    /// Per node: intervals `[from, until)` in which it is disturbed (convergence included).
    disturbed: BTreeMap<&'a str, Vec<(u64, u64)>>,
    lives: Vec<Life>,
    /// Successful probes per registrar node: (time, PEs).
    probes: BTreeMap<&'a str, Vec<(u64, &'a [u32])>>,
}

impl<'a> Model<'a> {
    fn new(history: &'a [Entry], bounds: &Bounds) -> Self {
        let converge = bounds.converge_ms * 1000;
        let mut disturbed: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        let mut open: BTreeMap<&str, u64> = BTreeMap::new();
        for e in history.iter().filter(|e| e.kind == Kind::Fault) {
            let Some(fault) = e.fault else { continue };
            let node = e.process.as_str();
            if fault.disturbs() {
                open.entry(node).or_insert(e.t_us);
            } else if fault.restores() {
                let from = open.remove(node).unwrap_or(e.t_us);
                disturbed.entry(node).or_default().push((from, e.t_us.saturating_add(converge)));
            }
        }
        for (node, from) in open {
            disturbed.entry(node).or_default().push((from, u64::MAX));
        }

        let mut lives: Vec<Life> = Vec::new();
        // Per process: index in `lives` of its PE's current life.
        let mut current: BTreeMap<&str, usize> = BTreeMap::new();
        for e in history {
            let node = e.process.as_str();
            match (e.kind, e.outcome, e.fault) {
                (Kind::Register, Outcome::Ok, _) => {
                    let Some(pe) = e.pe else { continue };
                    let same = current
                        .get(node)
                        .is_some_and(|&i| lives[i].pe == pe && lives[i].gone_us.is_none());
                    if !same {
                        current.insert(node, lives.len());
                        lives.push(Life {
                            pe,
                            process: e.process.clone(),
                            registered_us: e.t_us,
                            gone_us: None,
                            back_us: None,
                        });
                    }
                }
                (Kind::Deregister, Outcome::Invoke, _) => {
                    if let Some(&i) = current.get(node) {
                        lives[i].gone_us.get_or_insert(e.t_us);
                    }
                }
                (Kind::Fault, _, Some(f)) if f.disturbs() => {
                    if let Some(&i) = current.get(node) {
                        lives[i].gone_us.get_or_insert(e.t_us);
                    }
                }
                (Kind::Fault, _, Some(f)) if f.restores() => {
                    if let Some(&i) = current.get(node) {
                        if lives[i].gone_us.is_some() && lives[i].back_us.is_none() {
                            lives[i].back_us = Some(e.t_us);
                        }
                    }
                }
                _ => {}
            }
        }

        let mut probes: BTreeMap<&str, Vec<(u64, &[u32])>> = BTreeMap::new();
        for e in history.iter().filter(|e| e.kind == Kind::Probe && e.outcome == Outcome::Ok) {
            if let Some(r) = e.registrar.as_deref() {
                probes.entry(r).or_default().push((e.t_us, e.pes.as_slice()));
            }
        }
        Self { history, disturbed, lives, probes }
    }

    fn is_disturbed(&self, node: &str, t: u64) -> bool {
        self.disturbed
            .get(node)
            .is_some_and(|v| v.iter().any(|&(from, until)| from <= t && t < until))
    }
}

fn ms(us: u64) -> u64 {
    us / 1000
}

/// At most this many violations are listed per property.
const VIOLATIONS_SHOWN: usize = 8;

fn push(violations: &mut Vec<String>, count: &mut usize, line: String) {
    *count += 1;
    if violations.len() < VIOLATIONS_SHOWN {
        violations.push(line);
    }
}

fn no_lost_registration(m: &Model<'_>, bounds: &Bounds) -> Verdict {
    let converge = bounds.converge_ms * 1000;
    let (mut judged, mut count, mut violations) = (0u64, 0usize, Vec::new());
    let mut per_registrar: BTreeMap<&str, u64> = m.probes.keys().map(|r| (*r, 0)).collect();
    for life in &m.lives {
        let from = life.registered_us.saturating_add(converge);
        let until = life.gone_us.unwrap_or(u64::MAX);
        for (registrar, probes) in &m.probes {
            for &(t, pes) in probes.iter().filter(|(t, _)| from <= *t && *t < until) {
                if m.is_disturbed(registrar, t) {
                    continue;
                }
                judged += 1;
                *per_registrar.entry(registrar).or_default() += 1;
                if !pes.contains(&life.pe) {
                    let line = format!(
                        "PE {:#x} ({}) registered at {} ms, alive, missing at {registrar} at {} ms",
                        life.pe,
                        life.process,
                        ms(life.registered_us),
                        ms(t)
                    );
                    push(&mut violations, &mut count, line);
                }
            }
        }
    }
    if judged == 0 {
        violations.push("no probe could be judged: nothing proven".to_owned());
    }
    // Measured, not judged: how long a registration took to show at every registrar probed.
    let mut spread_ms = 0u64;
    for life in &m.lives {
        for probes in m.probes.values() {
            let until = life.gone_us.unwrap_or(u64::MAX);
            let seen = probes
                .iter()
                .find(|(t, pes)| *t >= life.registered_us && *t < until && pes.contains(&life.pe));
            if let Some((t, _)) = seen {
                spread_ms = spread_ms.max(ms(t - life.registered_us));
            }
        }
    }
    Verdict::new(
        "no-lost-registration",
        format!(
            "{} registrations, slowest reached every registrar in {spread_ms} ms, {judged} \
             judgements ({}), {count} missing",
            m.lives.len(),
            per_registrar.iter().map(|(r, n)| format!("{r}:{n}")).collect::<Vec<_>>().join(" ")
        ),
        violations,
    )
}

fn departure_bound(m: &Model<'_>, bounds: &Bounds) -> Verdict {
    let depart = bounds.depart_ms * 1000;
    let (mut departures, mut count, mut violations) = (0usize, 0usize, Vec::new());
    let (mut worst_ms, mut back_early) = (0u64, 0usize);
    for life in &m.lives {
        let Some(gone) = life.gone_us else { continue };
        departures += 1;
        let back = life.back_us.unwrap_or(u64::MAX);
        if back <= gone.saturating_add(depart) {
            // Back before the bound ran out: listed all along is allowed, nothing to prove.
            back_early += 1;
            continue;
        }
        let mut verified = 0usize;
        for (registrar, probes) in &m.probes {
            let after: Vec<_> = probes.iter().filter(|(t, _)| gone < *t && *t < back).collect();
            // Probes late enough to prove absence.
            if !after.iter().any(|(t, _)| *t > gone.saturating_add(depart)) {
                continue;
            }
            verified += 1;
            let last_seen = after.iter().rev().find(|(_, pes)| pes.contains(&life.pe));
            let left_at = match last_seen {
                Some((seen, _)) => after.iter().find(|(t, _)| t > seen).map(|(t, _)| *t),
                None => after.first().map(|(t, _)| *t),
            };
            if let Some(left) = left_at {
                worst_ms = worst_ms.max(ms(left - gone));
            }
            if let Some((seen, _)) = last_seen {
                if *seen > gone.saturating_add(depart) {
                    let line = format!(
                        "PE {:#x} ({}) gone at {} ms, still at {registrar} {} ms later",
                        life.pe,
                        life.process,
                        ms(gone),
                        ms(seen - gone)
                    );
                    push(&mut violations, &mut count, line);
                }
            }
        }
        if verified == 0 {
            let line = format!(
                "PE {:#x} ({}) gone at {} ms: no registrar probed after the bound",
                life.pe,
                life.process,
                ms(gone)
            );
            push(&mut violations, &mut count, line);
        }
    }
    Verdict::new(
        "departure-bound",
        format!(
            "{departures} departures ({back_early} back within the bound), slowest left \
             every registrar {worst_ms} ms after going (bound {} ms)",
            bounds.depart_ms
        ),
        violations,
    )
}

fn no_stale_resolution(m: &Model<'_>, bounds: &Bounds) -> Verdict {
    let depart = bounds.depart_ms * 1000;
    let (mut judged, mut count, mut violations) = (0usize, 0usize, Vec::new());
    for e in m.history.iter().filter(|e| e.kind == Kind::Resolve && e.outcome == Outcome::Ok) {
        judged += 1;
        for life in &m.lives {
            let Some(gone) = life.gone_us else { continue };
            let back = life.back_us.unwrap_or(u64::MAX);
            if gone.saturating_add(depart) < e.t_us && e.t_us < back && e.pes.contains(&life.pe) {
                let line = format!(
                    "{} resolved PE {:#x} at {} ms, {} ms after it went",
                    e.process,
                    life.pe,
                    ms(e.t_us),
                    ms(e.t_us - gone)
                );
                push(&mut violations, &mut count, line);
            }
        }
    }
    if judged == 0 {
        violations.push("no PU resolution in the history: nothing proven".to_owned());
    }
    Verdict::new(
        "no-stale-resolution",
        format!("{judged} PU resolutions, {count} returned a PE gone past the bound"),
        violations,
    )
}

fn one_takeover_winner(m: &Model<'_>) -> Verdict {
    // Registrar id -> node, from the starts that name an incarnation.
    let mut node_of: BTreeMap<&str, &str> = BTreeMap::new();
    for e in m.history.iter().filter(|e| e.fault == Some(Fault::Start)) {
        if let Some(id) = e.registrar.as_deref() {
            node_of.insert(id, e.process.as_str());
        }
    }
    let mut winners: BTreeMap<(&str, usize), BTreeSet<&str>> = BTreeMap::new();
    let mut takeovers = 0usize;
    for e in m.history.iter().filter(|e| e.kind == Kind::Takeover && e.outcome == Outcome::Ok) {
        let (Some(target), Some(winner)) = (e.target.as_deref(), e.registrar.as_deref()) else {
            continue;
        };
        takeovers += 1;
        // The epoch: how often the target had failed and come back by then, as its node's
        // disturbing faults and any registrar hearing it again (a peer wrongly declared
        // failed, under loss, is heard again without any fault of its own).
        let node = node_of.get(target).copied();
        let epoch = m
            .history
            .iter()
            .take_while(|f| f.t_us <= e.t_us)
            .filter(|f| {
                let fault =
                    node.is_some_and(|n| f.process == n) && f.fault.is_some_and(Fault::disturbs);
                let heard = f.kind == Kind::PeerUp && f.target.as_deref() == Some(target);
                fault || heard
            })
            .count();
        winners.entry((target, epoch)).or_default().insert(winner);
    }
    let mut violations = Vec::new();
    let mut count = 0;
    for ((target, epoch), won) in &winners {
        if won.len() > 1 {
            let won: Vec<_> = won.iter().copied().collect();
            let line =
                format!("registrar {target} (failure {epoch}) taken over by {}", won.join(" and "));
            push(&mut violations, &mut count, line);
        }
    }
    Verdict::new(
        "one-takeover-winner",
        format!("{takeovers} takeovers of {} registrar failures", winners.len()),
        violations,
    )
}

fn failover_bound(m: &Model<'_>, bounds: &Bounds) -> Verdict {
    let mut by_pu: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    let mut failovers = 0usize;
    for e in m.history {
        match e.kind {
            Kind::Request if e.outcome != Outcome::Invoke => {
                by_pu.entry(e.process.as_str()).or_default().push(e);
            }
            Kind::Failover => failovers += 1,
            _ => {}
        }
    }
    let (mut requests, mut count, mut violations) = (0usize, 0usize, Vec::new());
    let mut worst_ms = 0u64;
    let mut summary_pus = String::new();
    for (pu, entries) in &by_pu {
        requests += entries.len();
        let mut failing_since: Option<u64> = None;
        let mut longest = 0u64;
        let mut oks = 0usize;
        for e in entries {
            match e.outcome {
                Outcome::Fail => {
                    failing_since.get_or_insert(e.t_us);
                }
                _ => {
                    oks += 1;
                    if let Some(since) = failing_since.take() {
                        longest = longest.max(e.t_us - since);
                    }
                }
            }
        }
        if let (Some(since), Some(last)) = (failing_since, entries.last()) {
            longest = longest.max(last.t_us - since);
            if last.t_us - since <= bounds.failover_ms * 1000 {
                // Failing at the end: unproven, not excused.
                violations.push(format!("{pu}: still failing at the end of the history"));
                count += 1;
            }
        }
        worst_ms = worst_ms.max(ms(longest));
        let _ = write!(summary_pus, " {pu}:{}ms", ms(longest));
        if oks == 0 {
            push(&mut violations, &mut count, format!("{pu}: no request succeeded"));
        } else if longest > bounds.failover_ms * 1000 {
            let line = format!(
                "{pu}: requests failed for {} ms in a row (bound {} ms)",
                ms(longest),
                bounds.failover_ms
            );
            push(&mut violations, &mut count, line);
        }
    }
    if requests == 0 {
        violations.push("no PU request in the history: nothing proven".to_owned());
    }
    Verdict::new(
        "failover-bound",
        format!(
            "{requests} requests, {failovers} failovers, longest outage {worst_ms} ms (bound {} \
             ms; per PU{summary_pus})",
            bounds.failover_ms
        ),
        violations,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;
    const BOUNDS: Bounds = Bounds { converge_ms: 2_000, depart_ms: 5_000, failover_ms: 3_000 };

    fn register(t: u64, process: &str, pe: u32) -> Entry {
        Entry { pe: Some(pe), ..Entry::new(t, process, Kind::Register, Outcome::Ok) }
    }
    fn probe(t: u64, registrar: &str, pes: &[u32]) -> Entry {
        Entry {
            registrar: Some(registrar.into()),
            pes: pes.to_vec(),
            ..Entry::new(t, "probe", Kind::Probe, Outcome::Ok)
        }
    }
    fn resolve(t: u64, pes: &[u32]) -> Entry {
        Entry { pes: pes.to_vec(), ..Entry::new(t, "pu1", Kind::Resolve, Outcome::Ok) }
    }
    fn request(t: u64, outcome: Outcome) -> Entry {
        Entry { pe: Some(1), ..Entry::new(t, "pu1", Kind::Request, outcome) }
    }
    fn start(t: u64, node: &str, id: &str) -> Entry {
        Entry { registrar: Some(id.into()), ..Entry::fault(t, node, Fault::Start) }
    }
    fn takeover(t: u64, winner: &str, target: &str) -> Entry {
        Entry {
            registrar: Some(winner.into()),
            target: Some(target.into()),
            ..Entry::new(t, winner, Kind::Takeover, Outcome::Ok)
        }
    }

    /// A healthy run: PEs 1 and 2 registered, PE 2 killed at 10 s and gone from both
    /// registrars by 12 s, registrar r1 killed at 20 s and taken over once, the PU's requests
    /// fail for 1 s around the kill.
    fn healthy() -> Vec<Entry> {
        let mut h = vec![
            start(0, "r1", "0x1001"),
            start(0, "r2", "0x1002"),
            register(S, "pe1", 1),
            register(S, "pe2", 2),
        ];
        for s in 2..40 {
            let pes: &[u32] = if s < 12 { &[1, 2] } else { &[1] };
            if s < 20 {
                h.push(probe(s * S, "r1", pes));
            }
            h.push(probe(s * S, "r2", pes));
            h.push(resolve(s * S + 1, pes));
            let failing = (10..11).contains(&s);
            h.push(request(s * S + 2, if failing { Outcome::Fail } else { Outcome::Ok }));
        }
        h.push(Entry::fault(10 * S, "pe2", Fault::Kill));
        h.push(Entry::fault(20 * S, "r1", Fault::Kill));
        h.push(takeover(22 * S, "0x1002", "0x1001"));
        h.sort_by_key(|e| e.t_us);
        h
    }

    fn verdict(h: &[Entry], property: &str) -> Verdict {
        check(h, &BOUNDS).into_iter().find(|v| v.property == property).unwrap()
    }

    // Goal: a healthy history passes every property (so the failing tests below fail for
    // their one reason).
    #[test]
    fn healthy_history_passes_everything() {
        for v in check(&healthy(), &BOUNDS) {
            assert!(v.passed, "{}: {} {:?}", v.property, v.summary, v.violations);
        }
        let n = verdict(&healthy(), "no-lost-registration");
        assert!(n.summary.contains("reached every registrar in 1000 ms"), "{}", n.summary);
        let d = verdict(&healthy(), "departure-bound");
        assert!(d.summary.contains("left every registrar 2000 ms"), "{}", d.summary);
    }

    // Goal: an acknowledged registration of a live PE that vanishes from an undisturbed
    // registrar fails property 1.
    #[test]
    fn lost_registration_fails() {
        let mut h = healthy();
        h.push(probe(30 * S + 5, "r2", &[]));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "no-lost-registration");
        assert!(!v.passed);
        assert!(v.violations[0].contains("missing at r2"), "{:?}", v.violations);
    }

    // Goal: a registrar that is disturbed (here: killed) is not judged, but one merely
    // restarted is judged again once `converge` has passed.
    #[test]
    fn disturbed_registrar_is_excused_only_until_it_converged() {
        let mut h = healthy();
        h.push(start(30 * S, "r1", "0x1011"));
        h.push(probe(31 * S, "r1", &[])); // catching up: excused
        h.sort_by_key(|e| e.t_us);
        assert!(verdict(&h, "no-lost-registration").passed);
        h.push(probe(33 * S, "r1", &[])); // converged and still empty: lost
        h.sort_by_key(|e| e.t_us);
        assert!(!verdict(&h, "no-lost-registration").passed);
    }

    // Goal: a gone PE still listed by a registrar past the bound fails property 2.
    #[test]
    fn slow_departure_fails() {
        let mut h = healthy();
        h.push(probe(16 * S, "r2", &[1, 2]));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "departure-bound");
        assert!(!v.passed);
        assert!(v.violations[0].contains("still at r2 6000 ms later"), "{:?}", v.violations);
    }

    // Goal: a departure nobody probed late enough is unproven, and unproven fails.
    #[test]
    fn unverified_departure_fails() {
        let h: Vec<Entry> =
            healthy().into_iter().filter(|e| !(e.kind == Kind::Probe && e.t_us > 14 * S)).collect();
        let v = verdict(&h, "departure-bound");
        assert!(!v.passed);
        assert!(v.violations[0].contains("no registrar probed"), "{:?}", v.violations);
    }

    // Goal: a PE that restarts is not "gone" after its restart (a new life starts).
    #[test]
    fn restarted_pe_is_back() {
        let mut h = healthy();
        h.push(Entry::fault(25 * S, "pe2", Fault::Start));
        h.push(register(25 * S + 10, "pe2", 2));
        h.retain(|e| !(e.kind == Kind::Probe && e.t_us > 26 * S));
        h.push(probe(30 * S, "r2", &[1, 2]));
        h.push(resolve(30 * S, &[1, 2]));
        h.sort_by_key(|e| e.t_us);
        for v in check(&h, &BOUNDS) {
            assert!(v.passed, "{}: {:?}", v.property, v.violations);
        }
    }

    // Goal: a PE back (restarted) before the bound ran out has nothing to prove, while one
    // back after it still must have been seen gone.
    #[test]
    fn quick_restart_has_nothing_to_prove() {
        let mut h: Vec<Entry> =
            healthy().into_iter().filter(|e| !(e.kind == Kind::Probe && e.t_us > 14 * S)).collect();
        h.push(Entry::fault(13 * S, "pe2", Fault::Start));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "departure-bound");
        assert!(v.passed, "{:?}", v.violations);
        assert!(v.summary.contains("1 back within the bound"), "{}", v.summary);
        let mut late = healthy();
        late.retain(|e| !(e.kind == Kind::Probe && e.t_us > 14 * S));
        late.push(Entry::fault(16 * S, "pe2", Fault::Start));
        late.sort_by_key(|e| e.t_us);
        assert!(!verdict(&late, "departure-bound").passed);
    }

    // Goal: a PU handed a PE gone past the bound fails property 3 (and only a PU's
    // resolution counts there).
    #[test]
    fn stale_resolution_fails() {
        let mut h = healthy();
        h.push(resolve(18 * S, &[1, 2]));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "no-stale-resolution");
        assert!(!v.passed);
        assert!(v.violations[0].contains("8000 ms after it went"), "{:?}", v.violations);
        let h: Vec<Entry> = healthy().into_iter().filter(|e| e.kind != Kind::Resolve).collect();
        assert!(!verdict(&h, "no-stale-resolution").passed, "no evidence must not pass");
    }

    // Goal: two winners for one failure fail property 4; the same registrar failing again
    // (a later epoch) may be taken over again by someone else.
    #[test]
    fn two_takeover_winners_fail() {
        let mut h = healthy();
        h.push(start(30 * S, "r1", "0x1001"));
        h.push(Entry::fault(35 * S, "r1", Fault::Kill));
        h.push(takeover(37 * S, "0x1003", "0x1001"));
        h.sort_by_key(|e| e.t_us);
        assert!(verdict(&h, "one-takeover-winner").passed);
        h.push(takeover(38 * S, "0x1002", "0x1001"));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "one-takeover-winner");
        assert!(!v.passed);
        assert!(v.violations[0].contains("0x1002 and 0x1003"), "{:?}", v.violations);
    }

    // Goal: a live registrar wrongly declared failed twice (loss), heard again in between,
    // may be taken over by a different winner each time; without the hearing in between the
    // two winners are one failure's, and fail.
    #[test]
    fn peer_heard_again_starts_a_new_failure() {
        let mut h = healthy();
        h.push(takeover(30 * S, "0x1001", "0x1002"));
        h.push(takeover(33 * S, "0x1003", "0x1002"));
        h.sort_by_key(|e| e.t_us);
        assert!(!verdict(&h, "one-takeover-winner").passed);
        h.push(Entry {
            registrar: Some("0x1003".into()),
            target: Some("0x1002".into()),
            ..Entry::new(31 * S, "r3", Kind::PeerUp, Outcome::Ok)
        });
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "one-takeover-winner");
        assert!(v.passed, "{:?}", v.violations);
    }

    // Goal: a PU outage longer than the bound fails property 5, as does one that never ends.
    #[test]
    fn long_outage_fails() {
        let mut h = healthy();
        h.retain(|e| !(e.kind == Kind::Request && (10 * S..15 * S).contains(&e.t_us)));
        h.push(request(10 * S, Outcome::Fail));
        h.push(request(14 * S, Outcome::Fail));
        h.sort_by_key(|e| e.t_us);
        let v = verdict(&h, "failover-bound");
        assert!(!v.passed);
        assert!(v.violations[0].contains("failed for 5000 ms"), "{:?}", v.violations);
        let mut h = healthy();
        h.push(request(50 * S, Outcome::Fail));
        assert!(!verdict(&h, "failover-bound").passed);
    }

    // Goal: bounds parse in any order and a missing one is an error.
    #[test]
    fn bounds_parse() {
        let b = Bounds::parse("failover=3,converge=1,depart=2").unwrap();
        assert_eq!(b, Bounds { converge_ms: 1, depart_ms: 2, failover_ms: 3 });
        assert!(Bounds::parse("converge=1,depart=2").is_err());
        assert!(Bounds::parse("converge=1,depart=2,failover=x").is_err());
        assert!(Bounds::parse("converge=1,depart=2,failover=3,typo=4").is_err());
    }
}
