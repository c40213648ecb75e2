//! One handlespace (one shard): pools, pool elements, selection, ownership and timers.

use std::collections::BTreeMap;
use std::ops::Bound;

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use hashbrown::HashMap;
use rand::Rng;

use crate::checksum::{element_sum, handle_sum, ChecksumAccumulator};
use crate::element::{KeepAlive, PoolElement, Protocol, Registration, Removed, Settings, Stored};
use crate::error::{RegistrationError, ResolveError};
use crate::limits::Config;
use crate::policy::{stride, Family, Fenwick, Ordered, Policy, SLOTS_MAX, SLOT_BITS};
use crate::time::Instant;
use crate::timers::Runs;

/// "No deadline" for the per-element deadline fields.
const NEVER: u64 = u64::MAX;

/// Pools and pool elements of one shard, with selection state, ownership checksums and timers.
///
/// Inputs are method calls carrying `now` and, for selection, an injected `Rng`. Outputs are
/// return values plus [`Handlespace::expire`], which the registrar calls when
/// [`Handlespace::next_timeout`] has passed. Nothing here blocks, reads a clock or does I/O.
#[derive(Debug)]
pub struct Handlespace {
    own: RegistrarId,
    config: Config,
    pools: HashMap<PoolHandle, u32>,
    pool_slots: Vec<Option<Pool>>,
    pool_free: Vec<u32>,
    elements: Vec<Option<PoolElement>>,
    element_free: Vec<u32>,
    element_count: u32,
    /// (pool slot, PE id) -> element slot. Ordered, so that table pages group PEs by pool and a
    /// cursor stays valid across insertions and removals.
    index: BTreeMap<(u32, u32), u32>,
    /// The timer table: one [`TimerKey`] per PE, at the earlier of its lifetime and keep-alive
    /// deadlines rounded up to the millisecond; its first entry is `next_timeout`. Runs, not a
    /// `BTreeSet`: new keys come last, and runs then fill (`timers.rs`).
    timers: Runs<TimerKey>,
    owners: HashMap<RegistrarId, Owner>,
    /// Elements that keep their parameter as registered (their fields do not re-make it).
    parameters_kept: u32,
    scratch: Vec<u32>,
}

/// The outcome of an accepted registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A new PE (and, if `pool_created`, a new pool).
    Created {
        /// Whether this PE created its pool (RFC 5352 §3.1 rule 1).
        pool_created: bool,
    },
    /// A re-registration (rule 3): attributes replaced, ownership moved to the new home.
    Updated {
        /// The home registrar before this registration.
        previous_home: RegistrarId,
    },
}

/// What an Endpoint Unreachable report did.
#[derive(Clone, Debug)]
pub enum Unreachable {
    /// Counted; the PE stays. Holds the count so far.
    Counted(u8),
    /// The count reached MAX-BAD-PE-REPORT and the PE was removed.
    Removed(Removed),
}

/// A fired timer. Not `Copy`: an expiry cannot be duplicated and then lost (STYLE.md §3).
#[derive(Clone, Debug)]
pub enum Expiry {
    /// Send an ASAP Endpoint Keep Alive to this owned PE; its keep-alive timeout now runs.
    KeepAliveDue {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        id: PoolElementId,
        /// The opaque registrator handle given at registration.
        registrator: u64,
        /// Set on the first keep-alive after a takeover: the Home ENRP server changed (the H bit
        /// of RFC 5352 §2.2.10).
        home_changed: bool,
    },
    /// An owned PE did not answer a keep-alive in time and was removed.
    KeepAliveTimedOut(Removed),
    /// The Registration Life ran out and the PE was removed.
    LifetimeExpired(Removed),
}

/// A resumable position in a table walk (ENRP Handle Table Response, M bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCursor {
    after: Option<(u32, u32)>,
}

/// One entry of a table page.
#[derive(Clone, Copy, Debug)]
pub struct TableEntry<'a> {
    /// The PE's pool.
    pub pool_handle: &'a PoolHandle,
    /// The PE.
    pub element: &'a PoolElement,
}

/// A read-only view of one pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolView<'a> {
    pool: &'a Pool,
    elements: &'a [Option<PoolElement>],
}

/// The answer to a handle resolution: the selected PEs, best first, each at most once.
#[derive(Debug)]
pub struct Resolution<'a> {
    pool: PoolView<'a>,
    picked: &'a [u32],
}

#[derive(Debug)]
struct Pool {
    handle: PoolHandle,
    handle_sum: u32,
    policy: Policy,
    policy_type: PolicyType,
    protocol: Protocol,
    transport_use: TransportUse,
    members: Vec<u32>,
    selector: Selector,
}

#[derive(Debug)]
enum Selector {
    /// RR: the head's position in `members`.
    Cursor(u32),
    Ordered(Ordered),
    Uniform,
    Weighted(Fenwick),
}

#[derive(Clone, Copy, Debug, Default)]
struct Owner {
    count: u32,
    sum: ChecksumAccumulator,
}

impl Handlespace {
    /// An empty handlespace for registrar `own` (whose PEs get keep-alive timers).
    pub fn new(own: RegistrarId, config: Config) -> Self {
        let limits = &config.limits;
        assert!(limits.pool_handle_length_max > 0);
        assert!(config.max_bad_pe_reports > 0);
        // The u8 report counter saturates at 255, so the threshold must be exceedable.
        assert!(config.max_bad_pe_reports < u8::MAX);
        // Ordered indexes pack the element slot into 24 bits.
        assert!(limits.pool_elements_max <= SLOTS_MAX);
        // Sequence renumbering leaves room for 2^10 selections per operation.
        assert!(limits.items_per_resolution_max <= 1 << 10);
        // Allocate the dense tables at startup (STYLE.md §5); untouched capacity costs no RSS.
        Self {
            own,
            config,
            pools: HashMap::with_capacity(limits.pools_max as usize),
            pool_slots: Vec::with_capacity(limits.pools_max as usize),
            pool_free: Vec::new(),
            elements: Vec::with_capacity(limits.pool_elements_max as usize),
            element_free: Vec::new(),
            element_count: 0,
            index: BTreeMap::new(),
            timers: Runs::default(),
            owners: HashMap::new(),
            parameters_kept: 0,
            scratch: Vec::new(),
        }
    }

    /// The configuration this handlespace was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pools in the handlespace.
    pub fn pool_count(&self) -> u32 {
        u32::try_from(self.pools.len()).expect("bounded by Limits::pools_max, a u32")
    }

    /// Pool elements in the handlespace.
    pub fn element_count(&self) -> u32 {
        self.element_count
    }

    /// Pool elements that keep their Pool Element parameter as registered, because their
    /// fields do not re-make it byte for byte ([`PoolElement::keeps_parameter`]); each holds a
    /// block for it. Nearly none do: this counts the exceptions.
    pub fn parameters_kept(&self) -> u32 {
        self.parameters_kept
    }

    /// Registers or re-registers a PE, applying RFC 5352 §3.1 rules 1-5.
    ///
    /// Used for ASAP registrations (`home` = this registrar) and for ENRP Handle Updates and
    /// Handle Table Responses (`home` = the owning peer). On error nothing changed.
    pub fn register(
        &mut self,
        now: Instant,
        registration: Registration,
    ) -> Result<Registered, RegistrationError> {
        let policy = self.validate(&registration)?;
        let Some(&pool_slot) = self.pools.get(&registration.pool_handle) else {
            //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
            //# If the named pool does not exist in the handlespace, the ENRP server MUST create a
            //# new pool with that handle in the handlespace and add the PE to the pool as its
            //# first PE.
            let limits = &self.config.limits;
            if self.pools.len() >= limits.pools_max as usize {
                return Err(RegistrationError::LackOfResources);
            }
            self.check_element_capacity(registration.home)?;
            let pool_slot = self.create_pool(&registration, policy);
            self.insert_element(now, pool_slot, registration);
            return Ok(Registered::Created { pool_created: true });
        };
        let pool = self.pool_slots[pool_slot as usize].as_ref().expect("indexed pools exist");
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# before adding the PE to the pool, the server MUST check if the policy type, transport
        //# type, and transport usage indicated by the registering PE is consistent with those of
        //# the pool.  If different, the ENRP server MUST reject the registration.
        if pool.policy_type != registration.policy.policy_type {
            return Err(RegistrationError::InconsistentPoolingPolicy);
        }
        if pool.protocol != registration.transport.protocol {
            return Err(RegistrationError::InconsistentTransportType);
        }
        if pool.transport_use != registration.transport.transport_use {
            return Err(RegistrationError::InconsistentDataControlConfiguration);
        }
        match self.index.get(&(pool_slot, registration.id.0)) {
            Some(&slot) => {
                if !self.owners.contains_key(&registration.home)
                    && self.owners.len() >= self.config.limits.registrars_max as usize
                {
                    return Err(RegistrationError::LackOfResources);
                }
                let previous_home = self.reregister(now, slot, registration);
                Ok(Registered::Updated { previous_home })
            }
            None => {
                let limits = &self.config.limits;
                if pool.members.len() >= limits.pool_elements_per_pool_max as usize {
                    return Err(RegistrationError::LackOfResources);
                }
                self.check_element_capacity(registration.home)?;
                self.insert_element(now, pool_slot, registration);
                Ok(Registered::Created { pool_created: false })
            }
        }
    }

    /// Removes a PE (ASAP Deregistration, ENRP Handle Update DEL_PE). `None` if unknown.
    pub fn deregister(&mut self, pool_handle: &PoolHandle, id: PoolElementId) -> Option<Removed> {
        let slot = self.slot_of(pool_handle, id)?;
        Some(self.remove_element(slot))
    }

    /// Selects up to `items` PEs of a pool by its policy (RFC 5356), each at most once, best first.
    ///
    /// `items` is capped at [`Limits::items_per_resolution_max`](crate::Limits) and at the pool
    /// size. Selection updates policy state (round robin head, degradation counters).
    pub fn resolve<R: Rng + ?Sized>(
        &mut self,
        pool_handle: &PoolHandle,
        items: u32,
        rng: &mut R,
    ) -> Result<Resolution<'_>, ResolveError> {
        let &pool_slot = self.pools.get(pool_handle).ok_or(ResolveError::UnknownPoolHandle)?;
        let pool = self.pool_slots[pool_slot as usize].as_mut().expect("indexed pools exist");
        let items = items.min(self.config.limits.items_per_resolution_max) as usize;
        let items = items.min(pool.members.len());
        self.scratch.clear();
        select(pool, &mut self.elements, items, rng, &mut self.scratch);
        assert!(self.scratch.len() <= items);
        let pool = self.pool_slots[pool_slot as usize].as_ref().expect("indexed pools exist");
        Ok(Resolution { pool: PoolView { pool, elements: &self.elements }, picked: &self.scratch })
    }

    /// Records an ASAP Endpoint Keep Alive Ack: the PE's next keep-alive is due one interval from
    /// now. Returns false if the PE is unknown or not owned here.
    pub fn handle_keep_alive_ack(
        &mut self,
        now: Instant,
        pool_handle: &PoolHandle,
        id: PoolElementId,
    ) -> bool {
        let Some(slot) = self.slot_of(pool_handle, id) else {
            return false;
        };
        let element = self.elements[slot as usize].as_ref().expect("indexed elements exist");
        if element.keep_alive == KeepAlive::Idle {
            return false;
        }
        // A pending takeover announcement keeps its H bit until it is actually sent.
        let state = match element.keep_alive {
            KeepAlive::DueHomeChanged => KeepAlive::DueHomeChanged,
            _ => KeepAlive::Due,
        };
        let due = now.saturating_add(self.config.keep_alive_interval);
        self.arm_keep_alive(slot, state, due);
        true
    }

    /// Counts an ASAP Endpoint Unreachable report and removes the PE once the count exceeds
    /// MAX-BAD-PE-REPORT. `None` if the PE is unknown.
    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
    //# If the counter exceeds the protocol threshold MAX-BAD-PE-REPORT, the ENRP server SHOULD
    //# remove the PE from its handlespace.
    // RSPLIB removes when the counter reaches the threshold (`>=`); the RFC says "exceeds", and
    // we follow the RFC: with the default of 3, the fourth report removes the PE.
    pub fn report_unreachable(
        &mut self,
        pool_handle: &PoolHandle,
        id: PoolElementId,
    ) -> Option<Unreachable> {
        let slot = self.slot_of(pool_handle, id)?;
        let element = self.elements[slot as usize].as_mut().expect("indexed elements exist");
        element.unreachable_reports = element.unreachable_reports.saturating_add(1);
        let reports = element.unreachable_reports;
        if reports > self.config.max_bad_pe_reports {
            return Some(Unreachable::Removed(self.remove_element(slot)));
        }
        Some(Unreachable::Counted(reports))
    }

    /// The earliest pending deadline, if any, rounded up to the millisecond: timers have
    /// millisecond resolution (RFC 5354's Registration Life is in milliseconds), so a deadline is
    /// due from the first whole millisecond at or after it. O(log n).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.first().map(TimerKey::due)
    }

    /// Fires timers due at or before `now` (see [`Handlespace::next_timeout`]), at most `budget`
    /// of them, appending to `out` in deadline order (by millisecond; within one, by slot).
    /// Each fired timer costs O(log n). Call again if `out` grew by `budget`.
    pub fn expire(&mut self, now: Instant, budget: usize, out: &mut Vec<Expiry>) {
        for _ in 0..budget {
            let Some(key) = self.timers.first() else { return };
            if key.due() > now {
                return;
            }
            self.fire(now, key, out);
        }
    }

    /// Fires the timer-table entry `key` (due at `now`).
    fn fire(&mut self, now: Instant, key: TimerKey, out: &mut Vec<Expiry>) {
        let slot = key.slot();
        let element = self.elements[slot as usize].as_ref().expect("timers name live slots");
        let at = element.deadline();
        assert_eq!(TimerKey::new(at, slot), key);
        if element.lifetime_at == at {
            out.push(Expiry::LifetimeExpired(self.remove_element(slot)));
            return;
        }
        assert_eq!(element.keep_alive_at, at);
        match element.keep_alive {
            KeepAlive::Due | KeepAlive::DueHomeChanged => {
                let pool = self.pool_slots[element.pool as usize].as_ref().expect("live");
                out.push(Expiry::KeepAliveDue {
                    pool_handle: pool.handle,
                    id: element.id,
                    registrator: element.registrator,
                    home_changed: element.keep_alive == KeepAlive::DueHomeChanged,
                });
                let timeout = now.saturating_add(self.config.keep_alive_timeout);
                self.arm_keep_alive(slot, KeepAlive::Waiting, timeout);
            }
            KeepAlive::Waiting => {
                out.push(Expiry::KeepAliveTimedOut(self.remove_element(slot)));
            }
            KeepAlive::Idle => unreachable!("an idle keep-alive has no deadline"),
        }
    }

    /// The RFC 5353 §3.6.2 PE checksum over the PEs `registrar` owns. O(1).
    pub fn pe_checksum(&self, registrar: RegistrarId) -> u16 {
        self.checksum_accumulator(registrar).finish()
    }

    /// The unfolded checksum sum for `registrar`, to merge across shards.
    pub fn checksum_accumulator(&self, registrar: RegistrarId) -> ChecksumAccumulator {
        self.owners.get(&registrar).map_or(ChecksumAccumulator::EMPTY, |owner| owner.sum)
    }

    /// PEs owned by `registrar`.
    pub fn owned_count(&self, registrar: RegistrarId) -> u32 {
        self.owners.get(&registrar).map_or(0, |owner| owner.count)
    }

    /// The PE checksum recomputed from scratch, by the literal RFC algorithm. O(n); for checks.
    pub fn pe_checksum_from_scratch(&self, registrar: RegistrarId) -> u16 {
        crate::checksum::pe_checksum_from_scratch(self.index.values().filter_map(|&slot| {
            let element = self.elements[slot as usize].as_ref().expect("indexed elements exist");
            let pool = self.pool_slots[element.pool as usize].as_ref().expect("live pool");
            (element.home == registrar).then_some((&pool.handle, element.id))
        }))
    }

    /// Moves every PE owned by `source` to `target` (ENRP takeover, RFC 5353 §3.9). If `target`
    /// is this registrar, each taken PE gets a keep-alive due now with the home-changed flag, so
    /// the next [`expire`](Self::expire) announces the new home. Returns the PEs moved. O(n).
    pub fn take_over(&mut self, now: Instant, source: RegistrarId, target: RegistrarId) -> u32 {
        let Some(owner) = self.owners.remove(&source) else {
            return 0;
        };
        if source == target {
            self.owners.insert(source, owner);
            return 0;
        }
        let moved = owner.count;
        let entry = self.owners.entry(target).or_default();
        entry.count += owner.count;
        entry.sum = entry.sum.merge(owner.sum);
        for slot in 0..self.elements.len() {
            let slot_u32 = u32::try_from(slot).expect("bounded by pool_elements_max, a u32");
            let Some(element) = self.elements[slot].as_mut() else {
                continue;
            };
            if element.home != source {
                continue;
            }
            element.home = target;
            if target == self.own {
                self.arm_keep_alive(slot_u32, KeepAlive::DueHomeChanged, now);
            } else if source == self.own {
                self.arm_keep_alive(slot_u32, KeepAlive::Idle, Instant::MAX);
            }
        }
        moved
    }

    /// One page of a table walk: up to `max` PEs (of `owner` only, if given), grouped by pool, in
    /// a stable order. Returns the cursor for the next page when more PEs remain (the M bit of an
    /// ENRP Handle Table Response), `None` when this page is the last.
    ///
    /// PEs added or removed between pages are not guaranteed to appear or not; the Handle Updates
    /// sent for those changes cover them, as in RFC 5353 §3.7.
    pub fn table_page<'a>(
        &'a self,
        owner: Option<RegistrarId>,
        from: TableCursor,
        max: usize,
        out: &mut Vec<TableEntry<'a>>,
    ) -> Option<TableCursor> {
        assert!(max > 0);
        let range = match from.after {
            None => self.index.range(..),
            Some(key) => self.index.range((Bound::Excluded(key), Bound::Unbounded)),
        };
        let mut taken = 0;
        let mut last = None;
        for (&key, &slot) in range {
            let element = self.elements[slot as usize].as_ref().expect("indexed elements exist");
            if owner.is_some_and(|owner| owner != element.home) {
                continue;
            }
            if taken == max {
                return Some(TableCursor { after: last });
            }
            let pool = self.pool_slots[key.0 as usize].as_ref().expect("live pool");
            out.push(TableEntry { pool_handle: &pool.handle, element });
            taken += 1;
            last = Some(key);
        }
        None
    }

    /// A pool by handle.
    pub fn pool(&self, pool_handle: &PoolHandle) -> Option<PoolView<'_>> {
        let &slot = self.pools.get(pool_handle)?;
        let pool = self.pool_slots[slot as usize].as_ref().expect("indexed pools exist");
        Some(PoolView { pool, elements: &self.elements })
    }

    /// All pools, in no particular order.
    pub fn pools(&self) -> impl Iterator<Item = PoolView<'_>> {
        self.pool_slots
            .iter()
            .flatten()
            .map(move |pool| PoolView { pool, elements: &self.elements })
    }

    /// A PE by pool handle and identifier.
    pub fn element(&self, pool_handle: &PoolHandle, id: PoolElementId) -> Option<&PoolElement> {
        let slot = self.slot_of(pool_handle, id)?;
        self.elements[slot as usize].as_ref()
    }

    /// Checks internal invariants; O(n). For tests and after batches in debug builds.
    pub fn check_invariants(&self) {
        let live = self.elements.iter().flatten().count();
        assert_eq!(live, self.element_count as usize);
        assert_eq!(self.index.len(), live);
        let members: usize = self.pools().map(|pool| pool.len()).sum();
        assert_eq!(members, live);
        let owned: u64 = self.owners.values().map(|owner| u64::from(owner.count)).sum();
        assert_eq!(owned, live as u64);
        let timed = self.elements.iter().flatten().filter(|e| e.deadline() != NEVER).count();
        assert_eq!(self.timers.len(), timed, "one timer-table entry per PE with a deadline");
        let kept = self.elements.iter().flatten().filter(|e| e.keeps_parameter()).count();
        assert_eq!(kept, self.parameters_kept as usize);
        for pool in self.pool_slots.iter().flatten() {
            assert!(!pool.members.is_empty(), "empty pools are deleted");
            for (position, &slot) in pool.members.iter().enumerate() {
                let element = self.elements[slot as usize].as_ref().expect("members are live");
                assert_eq!(element.member_position as usize, position);
            }
            if let Selector::Ordered(ordered) = &pool.selector {
                // Every member has its place, and every set entry is its member's place.
                assert_eq!(ordered.places.len(), pool.members.len());
                for (&(key, packed), slot) in ordered.set.iter().zip(ordered.slots()) {
                    let position = position_of(&self.elements, slot) as usize;
                    let sequence = packed >> crate::policy::SLOT_BITS;
                    assert_eq!(ordered.places[position], (key, sequence));
                }
            }
        }
    }
}

impl Handlespace {
    fn validate(&self, registration: &Registration) -> Result<Policy, RegistrationError> {
        let limits = &self.config.limits;
        let handle_length = registration.pool_handle.as_bytes().len();
        if handle_length > usize::from(limits.pool_handle_length_max) {
            return Err(RegistrationError::InvalidValues);
        }
        let addresses = registration.transport.addresses.len();
        if addresses == 0 || addresses > usize::from(limits.addresses_per_transport_max) {
            return Err(RegistrationError::InvalidValues);
        }
        Policy::from_type(registration.policy.policy_type).ok_or(RegistrationError::InvalidValues)
    }

    fn check_element_capacity(&self, home: RegistrarId) -> Result<(), RegistrationError> {
        let limits = &self.config.limits;
        if self.element_count >= limits.pool_elements_max {
            return Err(RegistrationError::LackOfResources);
        }
        if !self.owners.contains_key(&home) && self.owners.len() >= limits.registrars_max as usize {
            return Err(RegistrationError::LackOfResources);
        }
        Ok(())
    }

    fn slot_of(&self, pool_handle: &PoolHandle, id: PoolElementId) -> Option<u32> {
        let &pool_slot = self.pools.get(pool_handle)?;
        self.index.get(&(pool_slot, id.0)).copied()
    }

    fn create_pool(&mut self, registration: &Registration, policy: Policy) -> u32 {
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# When a new pool is created, the overall member selection policy of the pool MUST be
        //# set to the policy type indicated by the first PE, the overall pool transport type
        //# MUST be set to the transport type indicated by the PE, and the overall pool
        //# data/control channel configuration MUST be set to what is indicated in the
        //# Transport Use field of the User Transport parameter by the registering PE.
        let selector = match policy.family() {
            Family::Cursor => Selector::Cursor(0),
            Family::Ordered => Selector::Ordered(Ordered::default()),
            Family::Uniform => Selector::Uniform,
            Family::Weighted => Selector::Weighted(Fenwick::default()),
        };
        let pool = Pool {
            handle: registration.pool_handle,
            handle_sum: handle_sum(registration.pool_handle.as_bytes()),
            policy,
            policy_type: registration.policy.policy_type,
            protocol: registration.transport.protocol,
            transport_use: registration.transport.transport_use,
            members: Vec::new(),
            selector,
        };
        let slot = match self.pool_free.pop() {
            Some(slot) => {
                assert!(self.pool_slots[slot as usize].is_none());
                self.pool_slots[slot as usize] = Some(pool);
                slot
            }
            None => {
                self.pool_slots.push(Some(pool));
                u32::try_from(self.pool_slots.len() - 1).expect("bounded by pools_max, a u32")
            }
        };
        self.pools.insert(registration.pool_handle, slot);
        slot
    }

    fn insert_element(&mut self, now: Instant, pool_slot: u32, registration: Registration) {
        let slot = match self.element_free.pop() {
            Some(slot) => slot,
            None => {
                self.elements.push(None);
                u32::try_from(self.elements.len() - 1).expect("bounded by pool_elements_max")
            }
        };
        assert!(self.elements[slot as usize].is_none());
        let pool = self.pool_slots[pool_slot as usize].as_mut().expect("caller checked");
        let mut element = PoolElement {
            lifetime_at: NEVER,
            keep_alive_at: NEVER,
            registrator: registration.registrator,
            // Replaced by `store` below, once the fields it checks against are set.
            stored: Stored::PLACEHOLDER,
            id: registration.id,
            home: registration.home,
            pool: pool_slot,
            member_position: u32::try_from(pool.members.len()).expect("bounded by limits"),
            settings: Settings::compact(&registration.policy),
            degradation: 0,
            port: registration.transport.port,
            transport_use: registration.transport.transport_use,
            protocol: registration.transport.protocol,
            policy: pool.policy,
            unreachable_reports: 0,
            keep_alive: KeepAlive::Idle,
        };
        element.store(&registration.transport.addresses, registration.wire);
        self.parameters_kept += u32::from(element.keeps_parameter());
        maintain(pool, &mut self.elements);
        pool.members.push(slot);
        selector_insert(pool, &mut element, slot);
        let owner = self.owners.entry(element.home).or_default();
        owner.count += 1;
        owner.sum.add_raw(element_sum(pool.handle_sum, element.id));
        let previous = self.index.insert((pool_slot, element.id.0), slot);
        assert!(previous.is_none());
        // Both deadlines are set before the single timer-table insert (one B-tree operation).
        element.lifetime_at = now.saturating_add(registration.lifetime).micros();
        if element.home == self.own {
            element.keep_alive = KeepAlive::Due;
            element.keep_alive_at = now.saturating_add(self.config.keep_alive_interval).micros();
        }
        if element.deadline() != NEVER {
            self.timers.insert(TimerKey::new(element.deadline(), slot));
        }
        self.elements[slot as usize] = Some(element);
        self.element_count += 1;
    }

    fn reregister(&mut self, now: Instant, slot: u32, registration: Registration) -> RegistrarId {
        let pool_slot = self.elements[slot as usize].as_ref().expect("indexed elements exist").pool;
        let pool = self.pool_slots[pool_slot as usize].as_mut().expect("live pool");
        maintain(pool, &mut self.elements);
        let element = self.elements[slot as usize].as_mut().expect("indexed elements exist");
        let block = element_sum(pool.handle_sum, element.id);
        let previous_home = element.home;
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# If the re-registration is accepted after the test, the ENRP server SHOULD replace the
        //# attributes of the existing PE with the information carried in the received
        //# ASAP_REGISTRATION message.
        selector_remove(pool, element, slot);
        element.settings = Settings::compact(&registration.policy);
        //= https://www.rfc-editor.org/rfc/rfc5356#section-5.2.2
        //# When a pool element entry is added or updated by registration or re-registration,
        //# this counter MUST be set to 0.
        element.degradation = 0;
        element.unreachable_reports = 0;
        element.port = registration.transport.port;
        element.registrator = registration.registrator;
        selector_reinsert(pool, element, slot);
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
        //# If this is a re-registration, the ENRP server MUST take over ownership of this PE,
        //# regardless of whether the PE was previously owned by this server or by another
        element.home = registration.home;
        // Last: the check that decides whether the bytes are kept reads the fields set above.
        self.parameters_kept -= u32::from(element.keeps_parameter());
        element.store(&registration.transport.addresses, registration.wire);
        self.parameters_kept += u32::from(element.keeps_parameter());
        if previous_home != registration.home {
            let old = self.owners.get_mut(&previous_home).expect("every PE has an owner entry");
            old.count -= 1;
            old.sum.sub_raw(block);
            if old.count == 0 {
                self.owners.remove(&previous_home);
            }
            let new = self.owners.entry(registration.home).or_default();
            new.count += 1;
            new.sum.add_raw(block);
        }
        let lifetime_at = now.saturating_add(registration.lifetime).micros();
        let (keep_alive, keep_alive_at) = if registration.home == self.own {
            let due = now.saturating_add(self.config.keep_alive_interval);
            (KeepAlive::Due, due.micros())
        } else {
            (KeepAlive::Idle, NEVER)
        };
        self.retime(slot, |element| {
            element.lifetime_at = lifetime_at;
            element.keep_alive = keep_alive;
            element.keep_alive_at = keep_alive_at;
        });
        previous_home
    }

    fn remove_element(&mut self, slot: u32) -> Removed {
        self.retime(slot, |element| {
            element.lifetime_at = NEVER;
            element.keep_alive = KeepAlive::Idle;
            element.keep_alive_at = NEVER;
        });
        let element = self.elements[slot as usize].take().expect("callers pass live slots");
        self.element_free.push(slot);
        self.element_count -= 1;
        self.parameters_kept -= u32::from(element.keeps_parameter());
        let pool_slot = element.pool;
        let pool = self.pool_slots[pool_slot as usize].as_mut().expect("live pool");
        selector_remove(pool, &element, slot);
        let position = element.member_position as usize;
        match &mut pool.selector {
            Selector::Weighted(fenwick) => fenwick.swap_remove(position),
            Selector::Ordered(ordered) => ordered.swap_remove(element.member_position),
            Selector::Cursor(_) | Selector::Uniform => {}
        }
        assert_eq!(pool.members.swap_remove(position), slot);
        if let Some(&moved) = pool.members.get(position) {
            let moved = self.elements[moved as usize].as_mut().expect("members are live");
            moved.member_position = element.member_position;
        }
        if let Selector::Cursor(head) = &mut pool.selector {
            if *head as usize >= pool.members.len() {
                *head = 0;
            }
        }
        let removed = self.index.remove(&(pool_slot, element.id.0));
        assert_eq!(removed, Some(slot));
        let owner = self.owners.get_mut(&element.home).expect("every PE has an owner entry");
        owner.count -= 1;
        owner.sum.sub_raw(element_sum(pool.handle_sum, element.id));
        if owner.count == 0 {
            self.owners.remove(&element.home);
        }
        let pool_handle = pool.handle;
        if pool.members.is_empty() {
            self.pools.remove(&pool_handle);
            self.pool_slots[pool_slot as usize] = None;
            self.pool_free.push(pool_slot);
        }
        Removed {
            pool_handle,
            id: element.id,
            home: element.home,
            registrator: element.registrator,
            element,
        }
    }

    /// Sets the keep-alive state of `slot` and its deadline; `KeepAlive::Idle` clears it.
    fn arm_keep_alive(&mut self, slot: u32, state: KeepAlive, at: Instant) {
        self.retime(slot, |element| {
            element.keep_alive = state;
            element.keep_alive_at = if state == KeepAlive::Idle { NEVER } else { at.micros() };
        });
    }

    /// Applies `change` to the deadlines of `slot` and moves its one timer-table entry to the
    /// new earlier deadline. O(log n).
    fn retime(&mut self, slot: u32, change: impl FnOnce(&mut PoolElement)) {
        let element = self.elements[slot as usize].as_mut().expect("callers pass live slots");
        let before = element.deadline();
        change(element);
        let after = element.deadline();
        assert!(element.keep_alive != KeepAlive::Idle || element.keep_alive_at == NEVER);
        let (before, after) = (TimerKey::new(before, slot), TimerKey::new(after, slot));
        if before == after {
            return;
        }
        if before != TimerKey::NEVER {
            let removed = self.timers.remove(before);
            assert!(removed);
        }
        if after != TimerKey::NEVER {
            let inserted = self.timers.insert(after);
            debug_assert!(inserted);
        }
    }
}

/// A timer-table entry packed into one word: the deadline in whole milliseconds (rounded up) in
/// the top 40 bits, the element slot in the low 24 ([`SLOT_BITS`]). As a `(deadline µs, slot)`
/// pair the table cost 34 bytes per PE (BENCHMARKS.md, "Memory per PE"). 2^40 ms is 34 years
/// from the caller's epoch; later deadlines are clamped to just below it (and fire then, early:
/// the registrar's epoch is its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey(u64);

impl TimerKey {
    /// The key of a deadline of [`NEVER`]: not in the table.
    const NEVER: Self = Self(u64::MAX);
    /// The last millisecond a real deadline can be clamped to (below `NEVER`'s).
    const MILLIS_MAX: u64 = (1 << (64 - SLOT_BITS)) - 2;

    fn new(deadline_micros: u64, slot: u32) -> Self {
        if deadline_micros == NEVER {
            return Self::NEVER;
        }
        debug_assert!(slot < SLOTS_MAX);
        let millis = deadline_micros.div_ceil(1_000).min(Self::MILLIS_MAX);
        Self(millis << SLOT_BITS | u64::from(slot))
    }

    /// When the entry is due: its millisecond.
    fn due(self) -> Instant {
        Instant::from_micros((self.0 >> SLOT_BITS) * 1_000)
    }

    fn slot(self) -> u32 {
        (self.0 & ((1 << SLOT_BITS) - 1)) as u32
    }
}

impl<'a> PoolView<'a> {
    /// The pool handle.
    pub fn handle(&self) -> &'a PoolHandle {
        &self.pool.handle
    }

    /// The pool's policy, set by its first PE.
    pub fn policy_type(&self) -> PolicyType {
        self.pool.policy_type
    }

    /// The pool's transport protocol, set by its first PE.
    pub fn protocol(&self) -> Protocol {
        self.pool.protocol
    }

    /// The pool's transport use, set by its first PE.
    pub fn transport_use(&self) -> TransportUse {
        self.pool.transport_use
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.pool.members.len()
    }

    /// Always false: a pool is deleted with its last PE.
    pub fn is_empty(&self) -> bool {
        self.pool.members.is_empty()
    }

    /// Members, in no particular order.
    pub fn elements(&self) -> impl Iterator<Item = &'a PoolElement> + 'a {
        let elements = self.elements;
        self.pool
            .members
            .iter()
            .map(move |&slot| elements[slot as usize].as_ref().expect("members are live"))
    }
}

impl<'a> Resolution<'a> {
    /// The resolved pool.
    pub fn pool(&self) -> PoolView<'a> {
        self.pool
    }

    /// Selected PEs.
    pub fn len(&self) -> usize {
        self.picked.len()
    }

    /// Whether nothing was selectable (e.g. every weight is 0).
    pub fn is_empty(&self) -> bool {
        self.picked.is_empty()
    }

    /// Selected PEs, best first.
    pub fn elements(&self) -> impl Iterator<Item = &'a PoolElement> + 'a {
        let elements = self.pool.elements;
        self.picked
            .iter()
            .map(move |&slot| elements[slot as usize].as_ref().expect("picked are live"))
    }
}

/// Selects `items` (<= members) distinct PEs into `out` and updates the policy state.
fn select<R: Rng + ?Sized>(
    pool: &mut Pool,
    elements: &mut [Option<PoolElement>],
    items: usize,
    rng: &mut R,
    out: &mut Vec<u32>,
) {
    let count = pool.members.len();
    assert!(items <= count);
    if items == 0 {
        return;
    }
    maintain(pool, elements);
    match &mut pool.selector {
        //= https://www.rfc-editor.org/rfc/rfc5356#section-4.1.2
        //# On reception of a handle resolution request, the ENRP server SHOULD return the pool
        //# elements from the circular list, starting with head.  Then the head SHOULD be
        //# advanced by one element.
        Selector::Cursor(head) => {
            let start = *head as usize;
            out.extend((0..items).map(|i| pool.members[(start + i) % count]));
            *head = u32::try_from((start + 1) % count).expect("bounded by the member count");
        }
        //= https://www.rfc-editor.org/rfc/rfc5356#section-4.3.2
        //# The ENRP server selects, at most, the requested number of pool elements from the
        //# list of pool elements.  Each element MUST NOT be reported more than once
        Selector::Uniform => {
            // Floyd's algorithm: `items` distinct positions, uniformly, in O(items^2) with
            // items <= items_per_resolution_max.
            for upper in (count - items)..count {
                let candidate = pool.members[rng.random_range(0..=upper)];
                let pick = if out.contains(&candidate) { pool.members[upper] } else { candidate };
                out.push(pick);
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc5356#section-4.4.2
        //# The probability of selecting a pool element should be the ratio of the weight of
        //# that pool element to the sum of weights.
        Selector::Weighted(fenwick) => {
            for draw in 0..items {
                if fenwick.total() == 0 {
                    break;
                }
                let position = fenwick.find(rng.random_range(0..fenwick.total()));
                out.push(pool.members[position]);
                // Zeroing a picked weight draws the next item without replacement; the last
                // draw needs no zeroing, which makes a one-item answer a single tree descent.
                if draw + 1 < items {
                    fenwick.set(position, 0);
                }
            }
            let degrades = pool.policy.degrades();
            for &slot in out.iter() {
                let element = elements[slot as usize].as_mut().expect("members are live");
                if degrades {
                    element.degradation = element.degradation.saturating_add(1);
                }
                let weight = pool.policy.weight(&element.settings, element.degradation);
                let position = element.member_position as usize;
                if fenwick.value(position) != weight {
                    fenwick.set(position, weight);
                }
            }
        }
        Selector::Ordered(ordered) => {
            out.extend(ordered.slots().take(items));
            if pool.policy == Policy::WeightedRoundRobin {
                select_weighted_round_robin(ordered, elements, out);
                return;
            }
            let degrades = pool.policy.degrades();
            for &slot in out.iter() {
                let element = elements[slot as usize].as_mut().expect("members are live");
                let removed = ordered.remove(element.member_position, slot);
                assert!(removed);
                if degrades {
                    element.degradation = element.degradation.saturating_add(1);
                }
                let key = pool.policy.order_key(&element.settings, element.degradation);
                // A fresh sequence number sends the PE behind its equals: round robin among ties.
                ordered.place(element.member_position, key, slot, true);
            }
        }
    }
}

/// WRR as stride scheduling: the PE with the smallest pass is the head; selecting it advances
/// its pass by 2^40 / weight. Over any window each PE is head in proportion to its weight, and its
/// turns are spread evenly (RFC 5356 §4.2.2's two bullets). As with RR, only the head advances.
fn select_weighted_round_robin(
    ordered: &mut Ordered,
    elements: &mut [Option<PoolElement>],
    picked: &[u32],
) {
    let Some(&head) = picked.first() else { return };
    let element = elements[head as usize].as_ref().expect("members are live");
    let position = element.member_position;
    let removed = ordered.remove(position, head);
    assert!(removed);
    let pass = ordered.key(position);
    ordered.pass_now = pass;
    ordered.place(position, pass + stride(element.settings.value), head, true);
    if ordered.needs_renormalise() {
        // Rare (after ~2^22 rounds): shift every pass down by the smallest, O(n log n).
        ordered.renormalise(|slot| position_of(elements, slot));
    }
}

fn selector_insert(pool: &mut Pool, element: &mut PoolElement, slot: u32) {
    match &mut pool.selector {
        Selector::Cursor(_) | Selector::Uniform => {}
        Selector::Weighted(fenwick) => {
            // The member was just pushed; the tree catches up to the member list here.
            assert_eq!(element.member_position as usize + 1, pool.members.len());
            fenwick.push(pool.policy.weight(&element.settings, element.degradation));
        }
        Selector::Ordered(ordered) => ordered_insert(pool.policy, ordered, element, slot),
    }
}

fn selector_reinsert(pool: &mut Pool, element: &mut PoolElement, slot: u32) {
    match &mut pool.selector {
        Selector::Cursor(_) | Selector::Uniform => {}
        Selector::Weighted(fenwick) => {
            let weight = pool.policy.weight(&element.settings, element.degradation);
            fenwick.set(element.member_position as usize, weight);
        }
        Selector::Ordered(ordered) => ordered_insert(pool.policy, ordered, element, slot),
    }
}

fn ordered_insert(policy: Policy, ordered: &mut Ordered, element: &PoolElement, slot: u32) {
    let position = element.member_position;
    if policy == Policy::WeightedRoundRobin {
        // A joining PE starts at the current pass: it neither waits a full round nor
        // monopolises the head to catch up. Weight 0 never enters the set.
        let indexed = element.settings.value != 0;
        ordered.place(position, ordered.pass_now, slot, indexed);
    } else {
        let key = policy.order_key(&element.settings, element.degradation);
        ordered.place(position, key, slot, true);
    }
}

/// The member position of the element in `slot`.
fn position_of(elements: &[Option<PoolElement>], slot: u32) -> u32 {
    elements[slot as usize].as_ref().expect("members are live").member_position
}

/// Takes the element out of an ordered index. The Weighted family keeps its slot: on removal the
/// caller mirrors the member list's swap-remove, on re-registration the weight is overwritten.
fn selector_remove(pool: &mut Pool, element: &PoolElement, slot: u32) {
    match &mut pool.selector {
        Selector::Cursor(_) | Selector::Uniform | Selector::Weighted(_) => {}
        Selector::Ordered(ordered) => {
            ordered.remove(element.member_position, slot);
        }
    }
}

/// Compacts an ordered index's sequence numbers to 0..n, in order, before they can overflow
/// their 40 bits. Runs once per ~2^40 selections of a pool; O(n log n).
fn maintain(pool: &mut Pool, elements: &mut [Option<PoolElement>]) {
    let Selector::Ordered(ordered) = &mut pool.selector else {
        return;
    };
    if !ordered.needs_renumber() {
        return;
    }
    ordered.renumber(|slot| position_of(elements, slot));
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    // Goal: pin the per-PE footprint the 1 000 000-PE memory budget was computed with (the
    // element table and every read replica hold one slot per PE).
    #[test]
    fn pool_element_stays_88_bytes() {
        assert_eq!(std::mem::size_of::<PoolElement>(), 88);
        assert_eq!(std::mem::size_of::<Option<PoolElement>>(), 88);
        assert_eq!(std::mem::size_of::<Stored>(), 16);
    }

    // Goal: one IPv4 address is stored in the element, anything else in its own block, and
    // both read back as registered, in order. Method: register each list, read it back.
    #[test]
    fn addresses_read_back_as_registered() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let lists = [vec![v4], vec![v6], vec![v6, v4], vec![v4, v6, "10.0.0.2".parse().unwrap()]];
        for list in lists {
            let mut hs = Handlespace::new(RegistrarId(1), Config::default());
            let mut r = registration(1, PolicyType::ROUND_ROBIN, 0, 0);
            r.transport.addresses = list.clone().into();
            let pool_element = codec::PoolElement {
                id: r.id,
                home_registrar: r.home,
                registration_life_ms: 1_000,
                user_transport: codec::UserTransport::Sctp(codec::SctpTransport {
                    port: r.transport.port,
                    transport_use: r.transport.transport_use,
                    addresses: codec::param::AddressList::from_slice(&list).unwrap(),
                }),
                policy: codec::Policy::RoundRobin,
                asap_transport: None,
            };
            r.wire = pool_element.encode().into();
            hs.register(Instant::default(), r).unwrap();
            let element = hs.element(&PoolHandle::new(b"p").unwrap(), PoolElementId(1)).unwrap();
            let stored = element.addresses();
            assert_eq!(stored.to_vec(), list);
            assert_eq!(stored.len(), list.len());
            assert!(list.iter().all(|ip| stored.contains(ip)));
            assert!(!stored.contains(&"10.9.9.9".parse().unwrap()));
            let compact = list.len() == 1 && list[0].is_ipv4();
            assert_eq!(matches!(element.stored, Stored::Compact { .. }), compact);
            assert!(!element.keeps_parameter(), "re-made, compact or not");
            assert_eq!(element.registration_life_ms(), 1_000);
        }
    }

    fn registration(id: u32, policy_type: PolicyType, load: u32, weight: u32) -> Registration {
        Registration {
            pool_handle: PoolHandle::new(b"p").unwrap(),
            id: PoolElementId(id),
            home: RegistrarId(1),
            policy: crate::PolicySettings { policy_type, load, weight, ..Default::default() },
            transport: crate::TransportInfo {
                protocol: Protocol::Sctp,
                port: 1,
                transport_use: TransportUse::DATA_ONLY,
                addresses: Box::new(["10.0.0.1".parse().unwrap()]),
            },
            lifetime: crate::Duration::INFINITE,
            registrator: 0,
            wire: crate::Wire::from(&[][..]),
        }
    }

    fn ordered(hs: &mut Handlespace) -> &mut Ordered {
        let pool = hs.pool_slots[0].as_mut().unwrap();
        match &mut pool.selector {
            Selector::Ordered(ordered) => ordered,
            _ => panic!("not an ordered pool"),
        }
    }

    fn ids(hs: &mut Handlespace, items: u32) -> Vec<u32> {
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let handle = PoolHandle::new(b"p").unwrap();
        hs.resolve(&handle, items, &mut rng).unwrap().elements().map(|pe| pe.id().0).collect()
    }

    // Goal: sequence renumbering (once per ~2^40 selections) keeps the order and round robin
    // among ties. Method: jump the sequence counter to the threshold, then select.
    #[test]
    fn sequence_renumbering_preserves_order() {
        let mut hs = Handlespace::new(RegistrarId(1), Config::default());
        for (id, load) in [(1, 5), (2, 5), (3, 0)] {
            hs.register(Instant::default(), registration(id, PolicyType::LEAST_USED, load, 0))
                .unwrap();
        }
        ordered(&mut hs).sequence_next = crate::policy::SEQUENCE_RENUMBER;
        assert_eq!(ids(&mut hs, 3), [3, 1, 2]);
        assert!(ordered(&mut hs).sequence_next < 10, "renumbered");
        assert_eq!(ids(&mut hs, 2), [3, 1]);
        assert_eq!(ids(&mut hs, 3), [3, 2, 1], "ties still rotate");
        hs.check_invariants();
    }

    // Goal: WRR pass renormalisation (once per ~2^22 rounds) keeps the shares.
    // Method: start the pool's pass just past the threshold, then select a few rounds.
    #[test]
    fn pass_renormalisation_keeps_shares() {
        let mut hs = Handlespace::new(RegistrarId(1), Config::default());
        for (id, weight) in [(1, 1), (2, 2)] {
            let r = registration(id, PolicyType::WEIGHTED_ROUND_ROBIN, 0, weight);
            hs.register(Instant::default(), r).unwrap();
        }
        // Shift both passes past the threshold, as ~2^22 rounds would have.
        let shift = crate::policy::PASS_RENORMALISE;
        let entries: Vec<_> = std::mem::take(&mut ordered(&mut hs).set).into_iter().collect();
        for (pass, packed) in entries {
            ordered(&mut hs).set.insert((pass + shift, packed));
        }
        for place in &mut ordered(&mut hs).places {
            place.0 += shift;
        }
        ordered(&mut hs).pass_now = shift + 1;
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[ids(&mut hs, 1)[0] as usize] += 1;
        }
        assert!(ordered(&mut hs).pass_now < crate::policy::PASS_RENORMALISE);
        assert!((counts[1] - 100i32).abs() <= 2 && (counts[2] - 200i32).abs() <= 2);
    }
}
