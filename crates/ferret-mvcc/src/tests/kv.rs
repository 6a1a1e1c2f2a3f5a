//! Put, DeleteRange and Range, with etcd's revision and version rules.

use ferret_proto::etcdserverpb::{range_request, DeleteRangeRequest, PutRequest, RangeRequest};

use super::{b, s, Harness};
use crate::MvccError;

#[test]
fn a_new_store_is_at_revision_one() {
    let h = Harness::memory();
    assert_eq!(h.rev(), 1);
    let r = h
        .range(RangeRequest {
            key: b("a"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.header.unwrap().revision, 1);
    assert_eq!(r.count, 0);
}

#[test]
fn puts_advance_revision_and_version() {
    let mut h = Harness::memory();
    assert_eq!(h.put("foo", "1").header.unwrap().revision, 2);
    assert_eq!(h.put("foo", "2").header.unwrap().revision, 3);
    assert_eq!(h.put("bar", "x").header.unwrap().revision, 4);
    let kv = h.get("foo").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(s(&kv.value), "2");
    assert_eq!(
        h.all(0),
        vec![("bar".into(), "x".into()), ("foo".into(), "2".into())]
    );
}

#[test]
fn delete_then_recreate_starts_a_new_generation() {
    let mut h = Harness::memory();
    h.put("k", "1"); // 2
    let d = h.del("k", "");
    assert_eq!((d.deleted, d.header.unwrap().revision), (1, 3));
    assert!(h.get("k").is_none());
    h.put("k", "2"); // 4
    let kv = h.get("k").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (4, 4, 1));
    // History: the key at each revision.
    assert_eq!(h.all(2), vec![("k".into(), "1".into())]);
    assert_eq!(h.all(3), vec![]);
    assert_eq!(h.all(4), vec![("k".into(), "2".into())]);
}

#[test]
fn deleting_nothing_keeps_the_revision() {
    let mut h = Harness::memory();
    h.put("a", "1");
    let d = h.del("zzz", "");
    assert_eq!((d.deleted, d.header.unwrap().revision), (0, 2));
    assert_eq!(h.rev(), 2);
}

#[test]
fn delete_range_with_prev_kv_and_from_key() {
    let mut h = Harness::memory();
    for k in ["a", "b", "c", "d"] {
        h.put(k, k);
    }
    let d = h
        .del_req(DeleteRangeRequest {
            key: b("b"),
            range_end: b("\0"),
            prev_kv: true,
        })
        .unwrap();
    assert_eq!(d.deleted, 3);
    assert_eq!(
        d.prev_kvs.iter().map(|kv| s(&kv.key)).collect::<Vec<_>>(),
        ["b", "c", "d"]
    );
    // One revision for the whole deletion.
    assert_eq!(h.rev(), 6);
    assert_eq!(h.all(0), vec![("a".into(), "a".into())]);
}

#[test]
fn put_options() {
    let mut h = Harness::memory();
    let r = h
        .put_req(PutRequest {
            key: b("k"),
            value: b("v1"),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.prev_kv.is_none());
    let r = h
        .put_req(PutRequest {
            key: b("k"),
            value: b("v2"),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s(&r.prev_kv.unwrap().value), "v1");
    // ignore_value keeps the value, bumps the revision and version.
    h.put_req(PutRequest {
        key: b("k"),
        ignore_value: true,
        ..Default::default()
    })
    .unwrap();
    let kv = h.get("k").unwrap();
    assert_eq!((s(&kv.value).as_str(), kv.version), ("v2", 3));
    assert_eq!(
        h.put_req(PutRequest {
            key: b("nope"),
            ignore_value: true,
            ..Default::default()
        }),
        Err(MvccError::KeyNotFound)
    );
    assert_eq!(
        h.put_req(PutRequest {
            key: b("k"),
            lease: 99,
            ..Default::default()
        }),
        Err(MvccError::LeaseNotFound)
    );
    // A failed request changes nothing.
    assert_eq!(h.rev(), 4);
}

#[test]
fn range_limit_count_and_more() {
    let mut h = Harness::memory();
    for i in 0..10 {
        h.put(&format!("k{i}"), &i.to_string());
    }
    let r = h
        .range(RangeRequest {
            key: b("k"),
            range_end: b("l"),
            limit: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 3);
    assert!(r.more);
    assert_eq!(r.count, 10);
    let r = h
        .range(RangeRequest {
            key: b("k"),
            range_end: b("l"),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(!r.more);
    let r = h
        .range(RangeRequest {
            key: b("k"),
            range_end: b("l"),
            count_only: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.kvs.is_empty());
    assert_eq!(r.count, 10);
    let r = h
        .range(RangeRequest {
            key: b("k1"),
            keys_only: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.kvs[0].value.is_empty());
    assert_eq!(r.kvs[0].version, 1);
}

#[test]
fn range_sorting_and_filters() {
    use range_request::{SortOrder, SortTarget};
    let mut h = Harness::memory();
    h.put("a", "3"); // 2
    h.put("b", "1"); // 3
    h.put("c", "2"); // 4
    h.put("a", "9"); // 5
    let keys = |r: ferret_proto::etcdserverpb::RangeResponse| {
        r.kvs.iter().map(|kv| s(&kv.key)).collect::<Vec<_>>()
    };
    let all = |order: SortOrder, target: SortTarget| RangeRequest {
        key: b("a"),
        range_end: b("z"),
        sort_order: order as i32,
        sort_target: target as i32,
        ..Default::default()
    };
    assert_eq!(
        keys(h.range(all(SortOrder::Descend, SortTarget::Key)).unwrap()),
        ["c", "b", "a"]
    );
    assert_eq!(
        keys(h.range(all(SortOrder::Ascend, SortTarget::Mod)).unwrap()),
        ["b", "c", "a"]
    );
    // A target other than KEY with order NONE sorts ascending.
    assert_eq!(
        keys(h.range(all(SortOrder::None, SortTarget::Value)).unwrap()),
        ["b", "c", "a"]
    );
    assert_eq!(
        keys(
            h.range(all(SortOrder::Descend, SortTarget::Version))
                .unwrap()
        ),
        ["a", "b", "c"]
    );
    // The count is taken before the revision filters.
    let r = h
        .range(RangeRequest {
            min_mod_revision: 4,
            ..all(SortOrder::None, SortTarget::Key)
        })
        .unwrap();
    assert_eq!(
        (keys(r.clone()), r.count),
        (vec!["a".to_string(), "c".to_string()], 3)
    );
    let r = h
        .range(RangeRequest {
            max_create_revision: 2,
            ..all(SortOrder::None, SortTarget::Key)
        })
        .unwrap();
    assert_eq!(keys(r), ["a"]);
    // Limit applies after sorting.
    let r = h
        .range(RangeRequest {
            limit: 1,
            ..all(SortOrder::Descend, SortTarget::Create)
        })
        .unwrap();
    assert_eq!((keys(r.clone()), r.more), (vec!["c".to_string()], true));
}

#[test]
fn range_revision_errors() {
    let mut h = Harness::memory();
    h.put("a", "1");
    assert_eq!(
        h.range(RangeRequest {
            key: b("a"),
            revision: 3,
            ..Default::default()
        }),
        Err(MvccError::FutureRev)
    );
    h.put("a", "2");
    h.compact(3).unwrap();
    assert_eq!(
        h.range(RangeRequest {
            key: b("a"),
            revision: 2,
            ..Default::default()
        }),
        Err(MvccError::Compacted)
    );
    let r = h
        .range(RangeRequest {
            key: b("a"),
            revision: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s(&r.kvs[0].value), "2");
    // The header carries the current revision, not the one read at.
    assert_eq!(r.header.unwrap().revision, 3);
}

#[test]
fn ranges_over_many_keys_cross_lock_chunks() {
    let mut h = Harness::memory();
    for i in 0..2500 {
        h.put(&format!("k{i:05}"), "v");
    }
    let r = h
        .range(RangeRequest {
            key: b("k"),
            range_end: b("l"),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 2500);
    assert!(r.kvs.windows(2).all(|w| w[0].key < w[1].key));
}

#[test]
fn reads_see_values_before_and_after_the_backend_commits() {
    let mut h = Harness::memory();
    for i in 0..100 {
        h.put(&format!("k{i}"), &i.to_string());
    }
    // Not necessarily committed yet: served from the queue.
    assert_eq!(h.all(0).len(), 100);
    h.m.flush().unwrap();
    assert_eq!(h.all(0).len(), 100);
    assert_eq!(s(&h.get("k42").unwrap().value), "42");
}
