//! Registration rules, limits, ownership and checksums, timers, unreachable reports, table pages
//! and sharding.

mod common;

use codec::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use common::*;
use handlespace::{
    shard_of, Config, Duration, Expiry, Handlespace, Limits, Protocol, Registered,
    RegistrationError, ShardedHandlespace, TableCursor, Unreachable,
};

fn rr() -> handlespace::PolicySettings {
    policy(PolicyType::ROUND_ROBIN)
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# If different, the ENRP server MUST reject the registration.
#[test]
fn inconsistent_policy_transport_and_use_are_rejected_with_their_causes() {
    let mut hs = handlespace();
    let first = hs.register(at(0), registration("p", 1, rr())).unwrap();
    assert_eq!(first, Registered::Created { pool_created: true });

    let err = hs.register(at(0), registration("p", 2, policy(PolicyType::RANDOM))).unwrap_err();
    assert_eq!((err, err.cause_code()), (RegistrationError::InconsistentPoolingPolicy, 0x5));

    let mut tcp = registration("p", 2, rr());
    tcp.transport.protocol = Protocol::Tcp;
    let err = hs.register(at(0), tcp).unwrap_err();
    assert_eq!((err, err.cause_code()), (RegistrationError::InconsistentTransportType, 0x7));

    let mut control = registration("p", 2, rr());
    control.transport.transport_use = TransportUse::DATA_PLUS_CONTROL;
    let err = hs.register(at(0), control).unwrap_err();
    assert_eq!(
        (err, err.cause_code()),
        (RegistrationError::InconsistentDataControlConfiguration, 0x8)
    );
    // The same tests apply to a re-registration (rule 3).
    let err = hs.register(at(0), registration("p", 1, policy(PolicyType::RANDOM))).unwrap_err();
    assert_eq!(err, RegistrationError::InconsistentPoolingPolicy);
    assert_eq!(hs.element_count(), 1);
    hs.check_invariants();
}

// Goal: an unknown policy type and a bad address count are Invalid Values (0x3).
// Method: boundary pairs on the address count (0 / 1, max / max + 1).
#[test]
fn invalid_values() {
    let mut hs = handlespace();
    let err =
        hs.register(at(0), registration("p", 1, policy(PolicyType(0x4000_0099)))).unwrap_err();
    assert_eq!((err, err.cause_code()), (RegistrationError::InvalidValues, 0x3));
    let max = usize::from(Limits::default().addresses_per_transport_max);
    for (count, ok) in [(0, false), (1, true), (max, true), (max + 1, false)] {
        let mut r = registration("p", 1, rr());
        r.transport.addresses = vec!["10.0.0.1".parse().unwrap(); count].into_boxed_slice();
        assert_eq!(hs.register(at(0), r).is_ok(), ok, "{count} addresses");
    }
}

// Goal: every limit returns Lack of Resources (0x6) exactly at its bound and never panics.
// Method: boundary pairs for pools, PEs in total, PEs per pool and registrars.
#[test]
fn limits_are_errors_at_the_bound() {
    let limits = Limits {
        pools_max: 2,
        pool_elements_max: 4,
        pool_elements_per_pool_max: 3,
        registrars_max: 2,
        pool_handle_length_max: 4,
        ..Limits::default()
    };
    let mut hs = Handlespace::new(OWN, Config { limits, ..Config::default() });
    assert!(hs.register(at(0), registration("aaaa", 1, rr())).is_ok());
    assert_eq!(
        hs.register(at(0), registration("aaaaa", 1, rr())).unwrap_err(),
        RegistrationError::InvalidValues
    );
    for id in 2..=3 {
        hs.register(at(0), registration("aaaa", id, rr())).unwrap();
    }
    let lack = Err(RegistrationError::LackOfResources);
    assert_eq!(hs.register(at(0), registration("aaaa", 4, rr())), lack);
    hs.register(at(0), registration("b", 1, rr())).unwrap();
    assert_eq!(hs.register(at(0), registration("c", 1, rr())), lack, "pools_max");
    assert_eq!(hs.register(at(0), registration("b", 2, rr())), lack, "pool_elements_max");
    hs.deregister(&handle("b"), PoolElementId(1)).unwrap();
    let mut peer = registration("b", 1, rr());
    peer.home = PEER;
    hs.register(at(0), peer).unwrap();
    let mut third = registration("aaaa", 1, rr());
    third.home = RegistrarId(3);
    assert_eq!(hs.register(at(0), third), lack, "registrars_max");
    // A failed registration left nothing behind.
    assert_eq!(hs.pool_count(), 2);
    hs.check_invariants();
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.1
//= type=test
//# If this is a re-registration, the ENRP server MUST take over ownership of this PE,
//# regardless of whether the PE was previously owned by this server or by another
#[test]
fn reregistration_replaces_attributes_and_moves_ownership() {
    let mut hs = handlespace();
    let mut peer = registration("p", 1, rr());
    peer.home = PEER;
    hs.register(at(0), peer).unwrap();
    assert_eq!((hs.owned_count(PEER), hs.owned_count(OWN)), (1, 0));
    assert_eq!(hs.next_timeout(), None, "a peer's PE with infinite life has no timer");
    let mut own = registration("p", 1, rr());
    own.transport.port = 4711;
    own.wire = handlespace::Wire::from(&b"new"[..]);
    let outcome = hs.register(at(10_000), own).unwrap();
    assert_eq!(outcome, Registered::Updated { previous_home: PEER });
    assert_eq!((hs.owned_count(PEER), hs.owned_count(OWN)), (0, 1));
    let pe = hs.element(&handle("p"), PoolElementId(1)).unwrap();
    assert_eq!((pe.port(), &pe.wire()[..]), (4711, &b"new"[..]));
    assert_eq!(hs.pe_checksum(OWN), hs.pe_checksum_from_scratch(OWN));
    assert_eq!(hs.pe_checksum(PEER), 0xffff);
    assert_eq!(hs.next_timeout(), Some(at(10_000 + 5_000_000)), "now owned: keep-alive due");
}

// Goal: the keep-alive cycle: due after the interval, then a timeout that an ack cancels, and a
// missing ack removes the PE. Boundary pair: expire at deadline - 1 does nothing, at deadline
// fires.
#[test]
fn keep_alive_due_ack_and_timeout() {
    let mut hs = handlespace();
    hs.register(at(0), registration("p", 1, rr())).unwrap();
    let interval = 5_000_000;
    let mut out = Vec::new();
    hs.expire(at(interval - 1), 16, &mut out);
    assert!(out.is_empty());
    hs.expire(at(interval), 16, &mut out);
    assert!(matches!(out.as_slice(), [Expiry::KeepAliveDue { registrator: 1, .. }]));
    out.clear();
    assert_eq!(hs.next_timeout(), Some(at(2 * interval)));
    assert!(hs.handle_keep_alive_ack(at(interval + 7_000), &handle("p"), PoolElementId(1)));
    assert_eq!(hs.next_timeout(), Some(at(2 * interval + 7_000)));
    hs.expire(at(2 * interval + 7_000), 16, &mut out);
    hs.expire(at(3 * interval + 6_999), 16, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(hs.element_count(), 1);
    hs.expire(at(3 * interval + 7_000), 16, &mut out);
    assert!(matches!(&out[1], Expiry::KeepAliveTimedOut(removed) if removed.id.0 == 1));
    assert_eq!((hs.element_count(), hs.pool_count(), hs.next_timeout()), (0, 0, None));
    hs.check_invariants();
}

// Goal: registration life expiry removes a PE at its deadline (boundary pair), re-registration
// pushes the deadline, and the budget bounds work per call.
#[test]
fn lifetime_expiry_and_budget() {
    let mut hs = handlespace();
    for id in 1..=3 {
        let mut r = registration("p", id, rr());
        r.home = PEER;
        r.lifetime = Duration::from_millis(100);
        hs.register(at(0), r).unwrap();
    }
    let mut again = registration("p", 3, rr());
    again.home = PEER;
    again.lifetime = Duration::from_millis(100);
    hs.register(at(50_000), again).unwrap();
    let mut out = Vec::new();
    hs.expire(at(99_999), 16, &mut out);
    assert!(out.is_empty());
    hs.expire(at(100_000), 1, &mut out);
    assert_eq!(out.len(), 1, "budget 1");
    hs.expire(at(100_000), 16, &mut out);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|e| matches!(e, Expiry::LifetimeExpired(_))));
    assert_eq!(hs.next_timeout(), Some(at(150_000)));
}

// Goal: timers have millisecond resolution: a deadline inside a millisecond fires at the end of
// that millisecond, never before its deadline, and those of one millisecond fire together in
// one call. Method: deadlines spread over three milliseconds, registered out of order, expired
// one microsecond at a time with budget 1 (the rest then waits for the next call) and 16.
#[test]
fn deadlines_fire_at_the_end_of_their_millisecond() {
    for budget in [1, 16] {
        let mut hs = handlespace();
        // PE id -> registration time (µs); every lifetime is 1 ms, so deadlines are 1 000 later.
        let times = [(1, 1_900), (2, 1_001), (3, 1_500), (4, 2_300), (5, 1_000), (6, 2_000)];
        for (id, t) in times {
            let mut r = registration("p", id, rr());
            r.home = PEER;
            r.lifetime = Duration::from_millis(1);
            hs.register(at(t), r).unwrap();
        }
        let mut fired = Vec::new();
        for now in 1_990..=3_400 {
            let next = hs.next_timeout();
            let mut out = Vec::new();
            hs.expire(at(now), budget, &mut out);
            assert!(out.len() <= budget);
            for expiry in out {
                let Expiry::LifetimeExpired(removed) = expiry else { panic!("only lifetimes") };
                assert!(next.is_some_and(|next| next <= at(now)), "announced by next_timeout");
                fired.push((removed.id.0, now));
            }
        }
        fired.sort_unstable();
        // PE 5's deadline (2 000) ends a millisecond, PE 2's (2 001) and PE 6's (3 000) begin
        // and end the next one; with budget 1 one PE fires per call, in slot order.
        let expected = if budget == 1 {
            [(1, 3_000), (2, 3_001), (3, 3_002), (4, 4_000), (5, 2_000), (6, 3_003)]
        } else {
            [(1, 3_000), (2, 3_000), (3, 3_000), (4, 4_000), (5, 2_000), (6, 3_000)]
        };
        let expected: Vec<_> = expected.into_iter().filter(|&(_, t)| t <= 3_400).collect();
        assert_eq!(fired, expected, "budget {budget}");
        assert_eq!(hs.next_timeout(), Some(at(4_000)), "PE 4's, rounded up");
        hs.check_invariants();
    }
}

//= https://www.rfc-editor.org/rfc/rfc5352#section-3.5
//= type=test
//# If the counter exceeds the protocol threshold MAX-BAD-PE-REPORT, the ENRP server SHOULD
//# remove the PE from its handlespace.
// Boundary pair: MAX-BAD-PE-REPORT reports keep the PE, the next one removes it.
#[test]
fn unreachable_reports_remove_past_threshold() {
    let mut hs = handlespace();
    hs.register(at(0), registration("p", 1, rr())).unwrap();
    let h = handle("p");
    assert!(matches!(hs.report_unreachable(&h, PoolElementId(1)), Some(Unreachable::Counted(1))));
    assert!(matches!(hs.report_unreachable(&h, PoolElementId(1)), Some(Unreachable::Counted(2))));
    assert!(matches!(hs.report_unreachable(&h, PoolElementId(1)), Some(Unreachable::Counted(3))));
    assert!(matches!(hs.report_unreachable(&h, PoolElementId(1)), Some(Unreachable::Removed(_))));
    assert!(hs.report_unreachable(&h, PoolElementId(1)).is_none());
    assert_eq!(Config::default().max_bad_pe_reports, 3, "RSPLIB's default");
}

// Goal: takeover moves count and checksum, arms an immediate keep-alive with the home-changed
// flag for each taken PE, and the checksum equals the from-scratch value throughout.
#[test]
fn takeover_moves_ownership_and_announces() {
    let mut hs = handlespace();
    for id in 1..=5 {
        let mut r = registration(if id % 2 == 0 { "even" } else { "odd" }, id, rr());
        r.home = PEER;
        hs.register(at(0), r).unwrap();
    }
    let before = hs.pe_checksum(PEER);
    assert_eq!(before, hs.pe_checksum_from_scratch(PEER));
    assert_eq!(hs.take_over(at(100), PEER, OWN), 5);
    assert_eq!(hs.pe_checksum(OWN), before);
    assert_eq!(hs.pe_checksum(OWN), hs.pe_checksum_from_scratch(OWN));
    assert_eq!(hs.owned_count(PEER), 0);
    let mut out = Vec::new();
    // Due at once, that is at the next whole millisecond (timers have millisecond resolution).
    hs.expire(at(999), 16, &mut out);
    assert!(out.is_empty());
    hs.expire(at(1_000), 16, &mut out);
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|e| matches!(e, Expiry::KeepAliveDue { home_changed: true, .. })));
}

// Goal: table pages walk a registrar's PEs exactly once, grouped by pool, and the returned
// cursor is `Some` exactly when more PEs remain (the M bit). Boundary pair: a page size equal to
// the owned count ends with `None`; one less needs a second page.
#[test]
fn table_pages_resume_and_flag_more() {
    let mut hs = handlespace();
    for id in 1..=6 {
        let mut r = registration(["a", "b", "c"][id as usize % 3], id, rr());
        if id == 6 {
            r.home = PEER;
        }
        hs.register(at(0), r).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(hs.table_page(Some(OWN), TableCursor::default(), 5, &mut out), None);
    assert_eq!(out.len(), 5);
    let mut seen = Vec::new();
    let mut cursor = TableCursor::default();
    loop {
        let mut page = Vec::new();
        let next = hs.table_page(Some(OWN), cursor, 2, &mut page);
        seen.extend(page.iter().map(|e| (e.pool_handle.as_bytes().to_vec(), e.element.id().0)));
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut pools: Vec<_> = seen.iter().map(|(p, _)| p.clone()).collect();
    pools.dedup();
    assert_eq!(pools.len(), 3, "grouped by pool");
    let mut all = Vec::new();
    assert_eq!(hs.table_page(None, TableCursor::default(), 6, &mut all), None);
    assert_eq!(all.len(), 6);
}

// Goal: sharding routes each pool to shard_of, per-shard counts sum to the total, and the merged
// checksum equals the single-handlespace checksum.
#[test]
fn sharded_counts_and_checksum_merge() {
    let mut sharded = ShardedHandlespace::new(OWN, Config::default(), 4);
    let mut single = handlespace();
    for i in 0..200u32 {
        let pool = format!("pool-{}", i % 37);
        let r = registration(&pool, i, rr());
        sharded.for_handle_mut(&r.pool_handle).register(at(0), r.clone()).unwrap();
        single.register(at(0), r).unwrap();
    }
    let per_shard: u64 = (0..4).map(|s| u64::from(sharded.shard(s).element_count())).sum();
    assert_eq!(per_shard, 200);
    assert_eq!(sharded.element_count(), 200);
    assert_eq!(sharded.pe_checksum(OWN), single.pe_checksum(OWN));
    let dump = sharded.pools_sorted();
    assert_eq!(dump.len(), 37);
    for view in &dump {
        let home = shard_of(view.handle(), 4);
        assert!(sharded.shard(home).pool(view.handle()).is_some());
    }
    assert!(dump.windows(2).all(|w| w[0].handle().as_bytes() < w[1].handle().as_bytes()));
    let _: &PoolHandle = dump[0].handle();
}
