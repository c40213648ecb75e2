//! Unit tests per policy, with the boundary pairs the issue lists: weight 0, equal loads,
//! load 0xffffffff, saturating degradation, priority ties, pool of one, items > pool size.

mod common;

use codec::PolicyType;
use common::*;
use handlespace::PolicySettings;

fn weighted(policy_type: PolicyType, weight: u32) -> PolicySettings {
    PolicySettings { weight, ..policy(policy_type) }
}

fn loaded(policy_type: PolicyType, load: u32, load_degradation: u32) -> PolicySettings {
    PolicySettings { load, load_degradation, ..policy(policy_type) }
}

fn all_policies() -> Vec<PolicyType> {
    handlespace::policy::SUPPORTED.to_vec()
}

// Goal: for every policy, a pool of one answers that one PE, and asking for more items than the
// pool holds returns each PE exactly once (RFC 5356: "Each element MUST NOT be reported more
// than once").
// Method: pools of 1 and 5 with neutral settings (weight 1, load 0), items 1, 5 and 9.
#[test]
fn every_policy_pool_of_one_and_items_beyond_pool_size() {
    for policy_type in all_policies() {
        let neutral = PolicySettings { weight: 1, priority: 1, ..policy(policy_type) };
        let mut r = rng(1);
        let mut hs = pool_of(&[neutral]);
        assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1], "{policy_type:?}");
        assert_eq!(resolve_ids(&mut hs, 9, &mut r), [1], "{policy_type:?}");
        let mut hs = pool_of(&[neutral; 5]);
        for items in [1, 5, 9] {
            let mut ids = resolve_ids(&mut hs, items, &mut r);
            assert_eq!(ids.len(), (items as usize).min(5), "{policy_type:?}");
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), (items as usize).min(5), "{policy_type:?} repeated a PE");
        }
    }
}

// Goal: items = 0 answers nothing, and a pool that does not exist is Unknown Pool Handle (0x9).
#[test]
fn zero_items_and_unknown_pool() {
    let mut hs = pool_of(&[policy(PolicyType::ROUND_ROBIN)]);
    assert!(resolve_ids(&mut hs, 0, &mut rng(1)).is_empty());
    let err = hs.resolve(&handle("nope"), 1, &mut rng(1)).unwrap_err();
    assert_eq!(err.cause_code(), 0x9);
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-4.1.2
//= type=test
//# the ENRP server SHOULD return the pool elements from the circular list, starting with head.
//# Then the head SHOULD be advanced by one element.
#[test]
fn round_robin_rotates_head_by_one() {
    let mut hs = pool_of(&[policy(PolicyType::ROUND_ROBIN); 3]);
    let mut r = rng(1);
    assert_eq!(resolve_ids(&mut hs, 2, &mut r), [1, 2]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut r), [2, 3]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut r), [3, 1]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1]);
}

// Goal: WRR gives each PE a share equal to its weight share, spreads turns evenly, and never
// selects weight 0 (boundary pair: weight 0 vs weight 1).
#[test]
fn weighted_round_robin_shares_and_weight_zero() {
    let w = |weight| weighted(PolicyType::WEIGHTED_ROUND_ROBIN, weight);
    let mut hs = pool_of(&[w(0), w(1), w(3)]);
    let mut r = rng(1);
    let mut counts = [0u32; 4];
    let mut longest_run = 0;
    let mut run = 0;
    let mut last = 0;
    for _ in 0..400 {
        let id = resolve_ids(&mut hs, 1, &mut r)[0];
        counts[id as usize] += 1;
        run = if id == last { run + 1 } else { 1 };
        longest_run = longest_run.max(run);
        last = id;
    }
    assert_eq!(counts, [0, 0, 100, 300]);
    assert!(longest_run <= 3, "turns are interleaved, not bunched: run {longest_run}");
}

// Goal: WRAND never picks weight 0, always picks the only positive weight, and items beyond the
// positive-weight PEs stop early rather than return weight-0 PEs.
#[test]
fn weighted_random_weight_zero_boundary() {
    let w = |weight| weighted(PolicyType::WEIGHTED_RANDOM, weight);
    let mut hs = pool_of(&[w(0), w(1), w(0)]);
    let mut r = rng(7);
    for _ in 0..100 {
        assert_eq!(resolve_ids(&mut hs, 3, &mut r), [2]);
    }
    let mut hs = pool_of(&[w(0)]);
    assert!(resolve_ids(&mut hs, 1, &mut r).is_empty());
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-4.5.2
//= type=test
//# The ENRP server MUST select the pool elements with the highest priorities.  They MUST be
//# reported in decreasing order.  If multiple pool elements have the same priority, they may be
//# listed in any order.
#[test]
fn priority_orders_and_rotates_ties() {
    let p = |priority| PolicySettings { priority, ..policy(PolicyType::PRIORITY) };
    let mut hs = pool_of(&[p(1), p(9), p(9), p(u32::MAX), p(0)]);
    let mut r = rng(1);
    assert_eq!(resolve_ids(&mut hs, 5, &mut r), [4, 2, 3, 1, 5]);
    // The tie between 2 and 3 rotates once 4 is out of the way of a 1-item answer.
    let mut hs = pool_of(&[p(9), p(9)]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [2]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1]);
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-5.1.2
//= type=test
//# If there is a choice of equal-loaded pool elements, round robin selection SHOULD be made
//# among these elements.  The returned list of pool elements MUST be sorted in ascending order
//# by load value.
#[test]
fn least_used_sorted_and_round_robin_among_equal_loads() {
    let l = |load| loaded(PolicyType::LEAST_USED, load, 0);
    let mut hs = pool_of(&[l(u32::MAX), l(5), l(5), l(0)]);
    let mut r = rng(1);
    assert_eq!(resolve_ids(&mut hs, 4, &mut r), [4, 2, 3, 1]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut r), [4, 2]);
    let mut hs = pool_of(&[l(5), l(5), l(5)]);
    let firsts: Vec<u32> = (0..6).map(|_| resolve_ids(&mut hs, 1, &mut r)[0]).collect();
    assert_eq!(firsts, [1, 2, 3, 1, 2, 3]);
    // Load 0xffffffff still gets selected when it is all there is.
    let mut hs = pool_of(&[l(u32::MAX)]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1]);
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-5.2.2
//= type=test
//# When an entry is selected for being returned to a pool user, the internal degradation
//# counter MUST be incremented by 1.
#[test]
fn least_used_degradation_counts_and_saturates() {
    let mut hs = pool_of(&[
        loaded(PolicyType::LEAST_USED_DEGRADATION, 0, 10),
        loaded(PolicyType::LEAST_USED_DEGRADATION, 25, 10),
    ]);
    let mut r = rng(1);
    // Keys: PE1 = 0,10,20,30; PE2 = 25. PE1 is picked three times, then PE2 (25 < 30).
    let picks: Vec<u32> = (0..4).map(|_| resolve_ids(&mut hs, 1, &mut r)[0]).collect();
    assert_eq!(picks, [1, 1, 1, 2]);
    let pe1 = hs.element(&handle("p"), codec::PoolElementId(1)).unwrap();
    assert_eq!(pe1.degradation_counter(), 3);
    // Every returned entry increments, not just the first.
    resolve_ids(&mut hs, 2, &mut r);
    let pe2 = hs.element(&handle("p"), codec::PoolElementId(2)).unwrap();
    assert_eq!(pe2.degradation_counter(), 2);
    // Re-registration resets the counter.
    hs.register(at(1), registration("p", 1, loaded(PolicyType::LEAST_USED_DEGRADATION, 0, 10)))
        .unwrap();
    let pe1 = hs.element(&handle("p"), codec::PoolElementId(1)).unwrap();
    assert_eq!(pe1.degradation_counter(), 0);
}

// Goal: with maximal load and load degradation the sort key stays exact (no overflow panic) and a
// saturated PE still loses against any less degraded one.
#[test]
fn degradation_key_at_u32_max_does_not_overflow() {
    for policy_type in [
        PolicyType::LEAST_USED_DEGRADATION,
        PolicyType::PRIORITY_LEAST_USED_DEGRADATION,
        PolicyType::LEAST_USED_DEGRADATION_DPF,
    ] {
        let max = PolicySettings {
            load: u32::MAX,
            load_degradation: u32::MAX,
            load_dpf: u32::MAX,
            distance: u32::MAX,
            ..policy(policy_type)
        };
        let mut hs = pool_of(&[max, max]);
        let mut r = rng(1);
        for _ in 0..100 {
            assert_eq!(resolve_ids(&mut hs, 2, &mut r).len(), 2);
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-5.3.2
//= type=test
//# Their sums of load + degradation SHOULD be the lowest possible ones within the pool.
#[test]
fn priority_least_used_uses_load_plus_degradation() {
    // The RFC's example: A at 50 % + 10 % beats B at 50 % + 50 %.
    let half = u32::MAX / 2;
    let mut hs = pool_of(&[
        loaded(PolicyType::PRIORITY_LEAST_USED, half, u32::MAX / 2),
        loaded(PolicyType::PRIORITY_LEAST_USED, half, u32::MAX / 10),
    ]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut rng(1)), [2, 1]);
    // PLU without degradation does not count selections: the answer is stable.
    assert_eq!(resolve_ids(&mut hs, 1, &mut rng(1)), [2]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut rng(1)), [2]);
}

// Goal: PLUD adds the counter on top of PLU's static sum.
#[test]
fn priority_least_used_degradation_moves_on() {
    let mut hs = pool_of(&[
        loaded(PolicyType::PRIORITY_LEAST_USED_DEGRADATION, 0, 10),
        loaded(PolicyType::PRIORITY_LEAST_USED_DEGRADATION, 15, 10),
    ]);
    let mut r = rng(1);
    // Keys: PE1 = 10, 20, ...; PE2 = 25, 35, ...
    let picks: Vec<u32> = (0..4).map(|_| resolve_ids(&mut hs, 1, &mut r)[0]).collect();
    assert_eq!(picks, [1, 1, 2, 1]);
}

//= https://www.rfc-editor.org/rfc/rfc5356#section-5.4.2
//= type=test
//# The ENRP server SHOULD behave like WRAND, having every PE's weight set to (0xffffffff --
//# load value provided by the pool element).
// Boundary pair: load 0xffffffff (weight 0, never) against 0xfffffffe (weight 1, always when
// alone with it).
#[test]
fn randomized_least_used_full_load_is_never_selected() {
    let l = |load| loaded(PolicyType::RANDOMIZED_LEAST_USED, load, 0);
    let mut hs = pool_of(&[l(u32::MAX), l(u32::MAX - 1)]);
    let mut r = rng(3);
    for _ in 0..200 {
        assert_eq!(resolve_ids(&mut hs, 2, &mut r), [2]);
    }
    let mut hs = pool_of(&[l(u32::MAX)]);
    assert!(resolve_ids(&mut hs, 1, &mut r).is_empty());
}

// Goal: the randomized degradation variants lower a PE's weight with each selection until it is
// never chosen, and re-registration restores it.
#[test]
fn randomized_degradation_variants_decay() {
    for policy_type in [
        PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION,
        PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
    ] {
        let quarter = u32::MAX / 4 + 1;
        let mut hs = pool_of(&[loaded(policy_type, 0, quarter)]);
        let mut r = rng(5);
        let mut answers = 0;
        for _ in 0..10 {
            answers += resolve_ids(&mut hs, 1, &mut r).len();
        }
        // RLUD: 4 x quarter >= full, so 4 answers; RPLUD starts one quarter lower: 3.
        let expected =
            if policy_type == PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION { 4 } else { 3 };
        assert_eq!(answers, expected, "{policy_type:?}");
        hs.register(at(1), registration("p", 1, loaded(policy_type, 0, quarter))).unwrap();
        assert_eq!(resolve_ids(&mut hs, 1, &mut r), [1]);
    }
}

// Goal: RPLU subtracts the load degradation from the unload weight.
#[test]
fn randomized_priority_least_used_weights() {
    let mut hs = pool_of(&[
        loaded(PolicyType::RANDOMIZED_PRIORITY_LEAST_USED, u32::MAX / 2, u32::MAX / 2 + 1),
        loaded(PolicyType::RANDOMIZED_PRIORITY_LEAST_USED, 0, 0),
    ]);
    let mut r = rng(1);
    for _ in 0..100 {
        assert_eq!(resolve_ids(&mut hs, 2, &mut r), [2]);
    }
}

// Goal: LU-DPF prefers the near PE at equal load and the far PE once the near one's load
// exceeds the distance penalty (distance and DPF are values supplied by the registrar).
#[test]
fn least_used_dpf_trades_load_against_distance() {
    let pe = |load, distance| PolicySettings {
        load,
        load_dpf: 1_000,
        distance,
        ..policy(PolicyType::LEAST_USED_DPF)
    };
    let mut hs = pool_of(&[pe(0, 100), pe(0, 10)]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut rng(1)), [2, 1]);
    // Penalties 100 000 vs 10 000: a load gap of 90 001 flips the order.
    let mut hs = pool_of(&[pe(0, 100), pe(90_001, 10)]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut rng(1)), [1, 2]);
    let mut hs = pool_of(&[pe(0, 100), pe(89_999, 10)]);
    assert_eq!(resolve_ids(&mut hs, 2, &mut rng(1)), [2, 1]);
}

// Goal: LUD-DPF degrades like LUD and penalises like LU-DPF.
#[test]
fn least_used_degradation_dpf_combines_both() {
    let pe = |distance| PolicySettings {
        load: 0,
        load_degradation: 50,
        load_dpf: 1,
        distance,
        ..policy(PolicyType::LEAST_USED_DEGRADATION_DPF)
    };
    let mut hs = pool_of(&[pe(120), pe(0)]);
    let mut r = rng(1);
    // Keys: PE1 = 120 + 50n, PE2 = 50n: PE2 three times (0, 50, 100), then PE1 (120 < 150).
    let picks: Vec<u32> = (0..4).map(|_| resolve_ids(&mut hs, 1, &mut r)[0]).collect();
    assert_eq!(picks, [2, 2, 2, 1]);
}

// Goal: WRAND-DPF lowers the weight of distant PEs but keeps a non-zero weight selectable, and
// weight 0 stays never (boundary pair).
#[test]
fn weighted_random_dpf_penalises_distance() {
    let pe = |weight, distance| PolicySettings {
        weight,
        weight_dpf: u32::MAX,
        distance,
        ..policy(PolicyType::WEIGHTED_RANDOM_DPF)
    };
    // Distance 1 at factor 1.0 removes the whole weight; the floor keeps it at 1, against 999.
    let mut hs = pool_of(&[pe(1_000, 1), pe(1_000, 0), pe(0, 0)]);
    let mut r = rng(11);
    let mut counts = [0u32; 4];
    for _ in 0..10_000 {
        counts[resolve_ids(&mut hs, 1, &mut r)[0] as usize] += 1;
    }
    assert_eq!(counts[3], 0);
    assert!(counts[1] > 0 && counts[1] < 50, "{counts:?}");
}

// Goal: the uniform random policy covers every PE and repeats none within one answer.
#[test]
fn random_covers_all() {
    let mut hs = pool_of(&[policy(PolicyType::RANDOM); 4]);
    let mut r = rng(2);
    let mut seen = [false; 5];
    for _ in 0..200 {
        for id in resolve_ids(&mut hs, 2, &mut r) {
            seen[id as usize] = true;
        }
    }
    assert_eq!(seen, [false, true, true, true, true]);
}

// Goal: RSPLIB's two priority DPF policies (0xb0002004/5) sort by PLU's and PLUD's sums plus the
// distance penalty.
#[test]
fn priority_least_used_dpf_variants() {
    use handlespace::policy::{PRIORITY_LEAST_USED_DEGRADATION_DPF, PRIORITY_LEAST_USED_DPF};
    assert!(handlespace::policy::is_supported(PRIORITY_LEAST_USED_DPF));
    let pe = |policy_type, load_degradation, distance| PolicySettings {
        load: 100,
        load_degradation,
        load_dpf: 1,
        distance,
        ..policy(policy_type)
    };
    // PLU-DPF keys: 100 + 50 + 0 = 150 against 100 + 0 + 60 = 160; static, so stable.
    let mut hs = pool_of(&[pe(PRIORITY_LEAST_USED_DPF, 0, 60), pe(PRIORITY_LEAST_USED_DPF, 50, 0)]);
    let mut r = rng(1);
    assert_eq!(resolve_ids(&mut hs, 2, &mut r), [2, 1]);
    assert_eq!(resolve_ids(&mut hs, 1, &mut r), [2]);
    // PLUD-DPF: PE2 degrades by 50 per pick (150, 200), PE1 by 0 (160): 2, then 1 for good.
    let plud = PRIORITY_LEAST_USED_DEGRADATION_DPF;
    let mut hs = pool_of(&[pe(plud, 0, 60), pe(plud, 50, 0)]);
    let picks: Vec<u32> = (0..3).map(|_| resolve_ids(&mut hs, 1, &mut r)[0]).collect();
    assert_eq!(picks, [2, 1, 1]);
}
