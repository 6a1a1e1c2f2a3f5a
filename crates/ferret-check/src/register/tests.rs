//! Known histories: linearizable ones pass, non-linearizable ones fail.

use super::*;

const K: &str = "/r";

fn op(process: usize, t: (u64, u64), call: Call, ret: Ret, status: Status) -> Op {
    Op {
        process,
        key: K.into(),
        invoke_ns: t.0,
        complete_ns: t.1,
        call,
        ret,
        status,
    }
}
fn w(p: usize, t: (u64, u64), v: &str, index: u64) -> Op {
    op(
        p,
        t,
        Call::Write { value: v.into() },
        Ret::Written { index },
        Status::Ok,
    )
}
fn w_unknown(p: usize, t0: u64, v: &str) -> Op {
    op(
        p,
        (t0, 0),
        Call::Write { value: v.into() },
        Ret::None,
        Status::Unknown,
    )
}
fn r(p: usize, t: (u64, u64), v: Option<(&str, u64)>) -> Op {
    let ret = Ret::Value(v.map(|(v, i)| (v.to_string(), i)));
    op(p, t, Call::Read, ret, Status::Ok)
}
fn cas(p: usize, t: (u64, u64), prev: &str, v: &str, ret: Ret) -> Op {
    let call = Call::CasValue {
        prev: prev.into(),
        value: v.into(),
    };
    op(p, t, call, ret, Status::Ok)
}
fn casi(p: usize, t: (u64, u64), prev_index: u64, v: &str, ret: Ret) -> Op {
    let call = Call::CasIndex {
        prev_index,
        value: v.into(),
    };
    op(p, t, call, ret, Status::Ok)
}
/// A v3 swap by `mod_revision`, answered.
fn casr(p: usize, t: (u64, u64), prev_revision: u64, v: &str, ret: Ret) -> Op {
    let call = Call::CasRevision {
        prev_revision,
        value: v.into(),
    };
    op(p, t, call, ret, Status::Ok)
}
fn saw(v: Option<(&str, u64)>) -> Ret {
    Ret::UnchangedSaw(v.map(|(v, i)| (v.to_string(), i)))
}
fn check(ops: &[Op]) -> Verdict {
    check_key(ops, Budget::default())
}
fn assert_lin(ops: &[Op]) {
    assert_eq!(check(ops), Verdict::Linearizable, "{ops:#?}");
}
fn assert_violation(ops: &[Op]) {
    let v = check(ops);
    assert!(
        v.is_violation(),
        "expected a violation, got {v:?} for {ops:#?}"
    );
}

#[test]
fn empty_and_sequential_histories_are_linearizable() {
    assert_lin(&[]);
    assert_lin(&[
        r(0, (0, 1), None),
        w(0, (2, 3), "a", 5),
        r(1, (4, 5), Some(("a", 5))),
        cas(0, (6, 7), "a", "b", Ret::Written { index: 6 }),
        casi(1, (8, 9), 6, "c", Ret::Written { index: 9 }),
        casi(1, (10, 11), 6, "d", Ret::Unchanged),
        cas(0, (12, 13), "a", "e", Ret::Unchanged),
        r(0, (14, 15), Some(("c", 9))),
    ]);
}

#[test]
fn concurrent_reads_may_see_either_side_of_a_write() {
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        w(0, (2, 10), "b", 2),
        r(1, (3, 4), Some(("a", 1))),
        r(2, (5, 6), Some(("b", 2))),
        r(1, (7, 8), Some(("b", 2))),
    ]);
}

#[test]
fn stale_read_after_a_completed_write_is_a_violation() {
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        w(0, (2, 3), "b", 2),
        r(1, (4, 5), Some(("a", 1))),
    ]);
}

#[test]
fn reads_going_back_in_time_are_a_violation() {
    // Both reads overlap the write, but the second read started after the
    // first one saw the new value.
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        w(0, (2, 20), "b", 2),
        r(1, (3, 4), Some(("b", 2))),
        r(2, (5, 6), Some(("a", 1))),
    ]);
}

#[test]
fn read_of_a_value_never_written_is_a_violation() {
    assert_violation(&[w(0, (0, 1), "a", 1), r(1, (2, 3), Some(("zz", 1)))]);
    // Absent after a completed write is a value never written too.
    assert_violation(&[w(0, (0, 1), "a", 1), r(1, (2, 3), None)]);
}

#[test]
fn two_swaps_from_the_same_value_both_succeeding_is_a_violation() {
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        cas(1, (2, 10), "a", "b", Ret::Written { index: 2 }),
        cas(2, (3, 11), "a", "c", Ret::Written { index: 3 }),
    ]);
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        casi(1, (2, 10), 1, "b", Ret::Written { index: 2 }),
        casi(2, (3, 11), 1, "c", Ret::Written { index: 3 }),
    ]);
    // One succeeding and one failing is fine.
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        cas(1, (2, 10), "a", "b", Ret::Written { index: 2 }),
        cas(2, (3, 11), "a", "c", Ret::Unchanged),
    ]);
}

#[test]
fn a_swap_failing_although_its_condition_held_is_a_violation() {
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        cas(1, (2, 3), "a", "b", Ret::Unchanged),
    ]);
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        casi(1, (2, 3), 1, "b", Ret::Unchanged),
    ]);
}

#[test]
fn a_lost_acknowledged_write_is_a_violation() {
    // "b" was acknowledged, then reads see the older "a" forever.
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        w(1, (2, 3), "b", 2),
        r(2, (4, 5), Some(("a", 1))),
        r(0, (6, 7), Some(("a", 1))),
    ]);
}

#[test]
fn two_indexes_for_one_value_is_a_violation() {
    assert_violation(&[w(0, (0, 1), "a", 1), r(1, (2, 3), Some(("a", 7)))]);
}

#[test]
fn an_unknown_write_may_take_effect_late() {
    // The client gave up on "b" at once; it shows up much later.
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        w_unknown(1, 2, "b"),
        r(2, (3, 4), Some(("a", 1))),
        r(2, (100, 101), Some(("b", 2))),
    ]);
}

#[test]
fn an_unknown_write_may_never_take_effect() {
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        w_unknown(1, 2, "b"),
        r(2, (100, 101), Some(("a", 1))),
    ]);
}

#[test]
fn an_unknown_write_takes_effect_at_most_once() {
    // "b" seen, then "a" overwrote... no: "c" overwrote it; "b" cannot
    // come back.
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        w_unknown(1, 2, "b"),
        r(2, (3, 4), Some(("b", 2))),
        w(0, (5, 6), "c", 3),
        r(2, (7, 8), Some(("b", 2))),
    ]);
}

#[test]
fn an_unknown_write_cannot_take_effect_before_its_invocation() {
    assert_violation(&[
        w(0, (0, 1), "a", 1),
        r(2, (2, 3), Some(("b", 2))),
        w_unknown(1, 10, "b"),
    ]);
}

#[test]
fn an_unknown_swap_may_explain_a_later_read() {
    let unknown_cas = op(
        1,
        (2, 0),
        Call::CasValue {
            prev: "a".into(),
            value: "b".into(),
        },
        Ret::None,
        Status::Unknown,
    );
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        unknown_cas.clone(),
        r(2, (50, 51), Some(("b", 2))),
    ]);
    // ...but not if its condition never held.
    assert_violation(&[
        w(0, (0, 1), "c", 1),
        unknown_cas,
        r(2, (50, 51), Some(("b", 2))),
    ]);
}

#[test]
fn failed_ops_are_ignored() {
    let failed = op(
        1,
        (2, 3),
        Call::Write { value: "b".into() },
        Ret::None,
        Status::Failed,
    );
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        failed.clone(),
        r(2, (4, 5), Some(("a", 1))),
    ]);
    // A read of a failed write's value: it did not happen.
    assert_violation(&[w(0, (0, 1), "a", 1), failed, r(2, (4, 5), Some(("b", 2)))]);
}

#[test]
fn swap_by_index_of_an_unobserved_index_is_allowed() {
    // "b" came from an unknown write: its index was never seen, so a swap
    // from index 7 may have matched it.
    assert_lin(&[
        w(0, (0, 1), "a", 1),
        w_unknown(1, 2, "b"),
        casi(2, (10, 11), 7, "c", Ret::Written { index: 8 }),
    ]);
}

#[test]
fn the_search_reports_unknown_when_out_of_budget() {
    // Many concurrent unknown writes and a stale read at the end: the
    // search has to try every subset before proving the violation.
    let mut ops = vec![w(0, (0, 1), "a", 1)];
    for i in 0..40 {
        ops.push(w_unknown(i + 1, 2, &format!("u{i}")));
    }
    ops.push(w(0, (3, 4), "b", 100));
    ops.push(r(0, (5, 6), Some(("a", 1))));
    let v = check_key(
        &ops,
        Budget {
            configs_max: 1000,
            time_max: Duration::from_secs(10),
        },
    );
    assert!(
        matches!(&v, Verdict::Unknown(m) if m.contains("search budget exceeded")),
        "{v:?}"
    );
}

#[test]
fn check_history_splits_by_key() {
    let mut a = w(0, (0, 1), "a", 1);
    a.key = "/x".into();
    let mut b = r(1, (2, 3), Some(("a", 1)));
    b.key = "/y".into();
    let out = check_history(&[a, b], Budget::default());
    assert_eq!(out[0], ("/x".into(), Verdict::Linearizable));
    assert!(out[1].1.is_violation());
}

#[test]
fn v3_swap_from_revision_0_creates_only_an_absent_key() {
    assert_lin(&[
        casr(0, (0, 1), 0, "a", Ret::Written { index: 5 }),
        casr(1, (2, 3), 0, "b", saw(Some(("a", 5)))),
        casr(1, (4, 5), 5, "c", Ret::Written { index: 9 }),
        r(0, (6, 7), Some(("c", 9))),
    ]);
    // A v2 swap by index 0 never matches; a v3 one matches absence.
    assert_violation(&[casr(0, (0, 1), 0, "a", Ret::Unchanged)]);
    // Revision 0 never matches a present key.
    assert_violation(&[
        w(0, (0, 1), "a", 3),
        casr(1, (2, 3), 0, "b", Ret::Written { index: 4 }),
    ]);
}

#[test]
fn v3_swap_that_read_a_stale_value_is_a_violation() {
    // The failure branch runs at the swap's linearization point: it cannot
    // see "a" after "b" was acknowledged.
    assert_violation(&[
        w(0, (0, 1), "a", 3),
        w(0, (2, 3), "b", 4),
        casr(1, (4, 5), 7, "c", saw(Some(("a", 3)))),
    ]);
    // A failure branch that saw the very revision it compared with: the
    // comparison should have held.
    assert_violation(&[
        w(0, (0, 1), "a", 3),
        casr(1, (2, 3), 3, "c", saw(Some(("a", 3)))),
    ]);
    // What it saw is a read: a value never written is a violation.
    assert_violation(&[casr(1, (2, 3), 3, "c", saw(Some(("zz", 3))))]);
    assert_lin(&[
        w(0, (0, 1), "a", 3),
        w(0, (2, 10), "b", 4),
        casr(1, (4, 5), 7, "c", saw(Some(("a", 3)))),
    ]);
}

#[test]
fn v3_two_swaps_from_one_revision_both_succeeding_is_a_violation() {
    assert_violation(&[
        w(0, (0, 1), "a", 3),
        casr(1, (2, 10), 3, "b", Ret::Written { index: 4 }),
        casr(2, (3, 11), 3, "c", Ret::Written { index: 5 }),
    ]);
}

#[test]
fn v3_unknown_swap_of_an_unobserved_revision_may_explain_a_read() {
    let unknown = op(
        1,
        (2, 0),
        Call::CasRevision {
            prev_revision: 0,
            value: "b".into(),
        },
        Ret::None,
        Status::Unknown,
    );
    assert_lin(&[unknown.clone(), r(2, (50, 51), Some(("b", 7)))]);
    // ...but not when the key was present all along.
    assert_violation(&[
        w(0, (0, 1), "a", 3),
        unknown,
        r(2, (50, 51), Some(("b", 7))),
    ]);
}
