//! Txn: compares, branches, nesting, and what a txn's reads see.

use ferret_proto::etcdserverpb::{
    compare, request_op, response_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};

use super::{b, s, Harness};
use crate::MvccError;

fn cmp(
    key: &str,
    target: compare::CompareTarget,
    result: compare::CompareResult,
    u: compare::TargetUnion,
) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b(key),
        range_end: Default::default(),
        target_union: Some(u),
    }
}

fn put(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: b(key),
            value: b(value),
            ..Default::default()
        })),
    }
}

fn get(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: b(key),
            ..Default::default()
        })),
    }
}

fn del(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: b(key),
                ..Default::default()
            },
        )),
    }
}

#[test]
fn compare_and_swap_on_mod_revision() {
    use compare::{CompareResult::*, CompareTarget::*, TargetUnion};
    let mut h = Harness::memory();
    h.put("k", "1"); // 2
    let t = |rev| TxnRequest {
        compare: vec![cmp("k", Mod, Equal, TargetUnion::ModRevision(rev))],
        success: vec![put("k", "swapped")],
        failure: vec![get("k")],
    };
    let r = h.txn(t(1)).unwrap();
    assert!(!r.succeeded);
    assert_eq!(
        r.header.unwrap().revision,
        2,
        "a failed CAS changes nothing"
    );
    match &r.responses[0].response {
        Some(response_op::Response::ResponseRange(rr)) => assert_eq!(s(&rr.kvs[0].value), "1"),
        other => panic!("{other:?}"),
    }
    let r = h.txn(t(2)).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.header.unwrap().revision, 3);
    assert_eq!(s(&h.get("k").unwrap().value), "swapped");
}

#[test]
fn compares_on_every_target() {
    use compare::{CompareResult::*, CompareTarget::*, TargetUnion};
    let mut h = Harness::memory();
    h.put("k", "b"); // 2
    h.put("k", "b"); // 3, version 2
    let check = |h: &mut Harness, c: Compare| {
        h.txn(TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    };
    assert!(check(
        &mut h,
        cmp("k", Value, Equal, TargetUnion::Value(b("b")))
    ));
    assert!(check(
        &mut h,
        cmp("k", Value, Greater, TargetUnion::Value(b("a")))
    ));
    assert!(check(
        &mut h,
        cmp("k", Value, Less, TargetUnion::Value(b("c")))
    ));
    assert!(check(
        &mut h,
        cmp("k", Value, NotEqual, TargetUnion::Value(b("x")))
    ));
    assert!(check(
        &mut h,
        cmp("k", Version, Equal, TargetUnion::Version(2))
    ));
    assert!(check(
        &mut h,
        cmp("k", Create, Equal, TargetUnion::CreateRevision(2))
    ));
    assert!(check(
        &mut h,
        cmp("k", Mod, Greater, TargetUnion::ModRevision(2))
    ));
    assert!(check(&mut h, cmp("k", Lease, Equal, TargetUnion::Lease(0))));
    // A missing key: version/create/mod are 0, and a value compare fails.
    assert!(check(
        &mut h,
        cmp("nope", Version, Equal, TargetUnion::Version(0))
    ));
    assert!(check(
        &mut h,
        cmp("nope", Create, Equal, TargetUnion::CreateRevision(0))
    ));
    assert!(!check(
        &mut h,
        cmp("nope", Value, Equal, TargetUnion::Value(b("")))
    ));
    assert!(!check(
        &mut h,
        cmp("nope", Value, NotEqual, TargetUnion::Value(b("x")))
    ));
}

#[test]
fn compare_over_a_range_needs_every_key() {
    use compare::{CompareResult::*, CompareTarget::*, TargetUnion};
    let mut h = Harness::memory();
    h.put("a1", "x");
    h.put("a2", "x");
    let mut c = cmp("a", Value, Equal, TargetUnion::Value(b("x")));
    c.range_end = b("b");
    assert!(
        h.txn(TxnRequest {
            compare: vec![c.clone()],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    );
    h.put("a3", "y");
    assert!(
        !h.txn(TxnRequest {
            compare: vec![c],
            ..Default::default()
        })
        .unwrap()
        .succeeded
    );
}

#[test]
fn writes_in_one_txn_share_a_revision_and_reads_see_them() {
    let mut h = Harness::memory();
    h.put("a", "0"); // 2
    let r = h
        .txn(TxnRequest {
            compare: vec![],
            success: vec![put("a", "1"), put("b", "2"), get("a"), del("b"), get("b")],
            failure: vec![],
        })
        .unwrap();
    assert_eq!(r.header.unwrap().revision, 3);
    let rs = &r.responses;
    match &rs[0].response {
        Some(response_op::Response::ResponsePut(p)) => assert_eq!(p.header.unwrap().revision, 3),
        other => panic!("{other:?}"),
    }
    match &rs[2].response {
        Some(response_op::Response::ResponseRange(rr)) => {
            assert_eq!(s(&rr.kvs[0].value), "1");
            assert_eq!(rr.kvs[0].mod_revision, 3);
            assert_eq!(rr.header.unwrap().revision, 3);
        }
        other => panic!("{other:?}"),
    }
    match &rs[4].response {
        Some(response_op::Response::ResponseRange(rr)) => assert!(rr.kvs.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.rev(), 3);
    assert!(h.get("b").is_none());
    assert_eq!(h.all(3), vec![("a".into(), "1".into())]);
}

#[test]
fn nested_txns_follow_their_own_compares() {
    use compare::{CompareResult::*, CompareTarget::*, TargetUnion};
    let mut h = Harness::memory();
    h.put("k", "1");
    let inner = |v: &str| TxnRequest {
        compare: vec![cmp("k", Value, Equal, TargetUnion::Value(b(v)))],
        success: vec![put("inner", "yes")],
        failure: vec![put("inner", "no")],
    };
    let r = h
        .txn(TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(inner("1"))),
                },
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(inner("2"))),
                },
            ],
            failure: vec![],
        })
        .unwrap();
    match (&r.responses[0].response, &r.responses[1].response) {
        (
            Some(response_op::Response::ResponseTxn(a)),
            Some(response_op::Response::ResponseTxn(b2)),
        ) => {
            assert!(a.succeeded);
            assert!(!b2.succeeded);
            // etcd leaves a nested txn's header empty.
            assert_eq!(a.header.unwrap().revision, 0);
        }
        other => panic!("{other:?}"),
    }
    // Both puts happened, in order, at one revision.
    let kv = h.get("inner").unwrap();
    assert_eq!((s(&kv.value).as_str(), kv.version), ("no", 2));
}

#[test]
fn a_txn_that_would_fail_changes_nothing() {
    let mut h = Harness::memory();
    h.put("k", "1");
    let r = h.txn(TxnRequest {
        compare: vec![],
        success: vec![
            put("a", "1"),
            RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: b("k"),
                    lease: 77,
                    ..Default::default()
                })),
            },
        ],
        failure: vec![],
    });
    assert_eq!(r, Err(MvccError::LeaseNotFound));
    assert!(h.get("a").is_none());
    assert_eq!(h.rev(), 2);
    let r = h.txn(TxnRequest {
        compare: vec![],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: b("k"),
                revision: 9,
                ..Default::default()
            })),
        }],
        failure: vec![],
    });
    assert_eq!(r, Err(MvccError::FutureRev));
}

#[test]
fn read_only_txn_outside_the_log() {
    let mut h = Harness::memory();
    h.put("k", "1");
    let t = TxnRequest {
        compare: vec![],
        success: vec![get("k")],
        failure: vec![put("x", "y")],
    };
    assert!(!crate::is_txn_readonly(&t));
    let t = TxnRequest {
        compare: vec![],
        success: vec![get("k")],
        failure: vec![get("k")],
    };
    assert!(crate::is_txn_readonly(&t));
    let r = h.m.txn_readonly(&t).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.header.unwrap().revision, 2);
}
