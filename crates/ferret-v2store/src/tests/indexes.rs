//! The store index: one bump per successful write, none on failure.

use super::*;
use crate::{Method, Write};

/// Runs a write and checks the index moved by exactly `bump`.
fn bumps<T, E>(s: &mut Store, bump: u64, f: impl FnOnce(&mut Store) -> Result<T, E>) {
    let before = s.index();
    let ok = f(s).is_ok();
    assert_eq!(s.index(), before + bump, "ok={ok}");
    assert_eq!(ok, bump == 1);
}

#[test]
fn every_successful_write_bumps_once() {
    let mut s = store();
    bumps(&mut s, 1, |s| s.set(&k("/a/b/c"), false, b"v", perm(), NOW));
    bumps(&mut s, 1, |s| s.set(&k("/a/b/c"), false, b"w", perm(), NOW));
    bumps(&mut s, 1, |s| {
        s.create(&k("/n"), false, b"v", false, perm(), NOW)
    });
    bumps(&mut s, 1, |s| {
        s.create(&k("/q"), false, b"v", true, perm(), NOW)
    });
    bumps(&mut s, 1, |s| s.update(&k("/n"), b"x", perm(), NOW));
    bumps(&mut s, 1, |s| {
        s.compare_and_swap(&k("/n"), b"x", 0, b"y", perm(), NOW)
    });
    bumps(&mut s, 1, |s| s.set(&k("/n"), false, b"", refresh(5), NOW));
    bumps(&mut s, 1, |s| s.update(&k("/n"), b"", refresh(6), NOW));
    bumps(&mut s, 1, |s| s.compare_and_delete(&k("/n"), b"y", 0, NOW));
    bumps(&mut s, 1, |s| s.delete(&k("/a"), true, true, NOW));
    assert_eq!(s.index(), 10);
}

#[test]
fn failed_writes_never_bump() {
    let mut s = store();
    set(&mut s, "/f", "v");
    mkdir(&mut s, "/d/e");
    bumps(&mut s, 0, |s| s.set(&k("/f/x"), false, b"v", perm(), NOW));
    bumps(&mut s, 0, |s| s.set(&k("/d"), false, b"v", perm(), NOW));
    bumps(&mut s, 0, |s| {
        s.set(&k("/nope"), false, b"", refresh(5), NOW)
    });
    bumps(&mut s, 0, |s| {
        s.create(&k("/f"), false, b"v", false, perm(), NOW)
    });
    bumps(&mut s, 0, |s| {
        s.create(&k("/f"), false, b"v", true, perm(), NOW)
    });
    bumps(&mut s, 0, |s| s.update(&k("/nope"), b"v", perm(), NOW));
    bumps(&mut s, 0, |s| s.update(&k("/d"), b"v", perm(), NOW));
    bumps(&mut s, 0, |s| {
        s.compare_and_swap(&k("/f"), b"no", 0, b"v", perm(), NOW)
    });
    bumps(&mut s, 0, |s| {
        s.compare_and_swap(&k("/d"), b"no", 0, b"v", perm(), NOW)
    });
    bumps(&mut s, 0, |s| s.delete(&k("/d"), false, false, NOW));
    bumps(&mut s, 0, |s| s.delete(&k("/d"), true, false, NOW));
    bumps(&mut s, 0, |s| s.delete(&k("/nope"), false, false, NOW));
    bumps(&mut s, 0, |s| s.compare_and_delete(&k("/f"), b"no", 0, NOW));
    bumps(&mut s, 0, |s| s.delete(b"/1", true, true, NOW));
    assert_eq!(s.history().count(), 2);
}

#[test]
fn failed_writes_leave_the_tree_alone() {
    let mut s = store();
    set(&mut s, "/f", "v");
    let before = js(&s.get(b"/", true, NOW).unwrap());
    let _ = s.set(&k("/f/x/y"), false, b"v", perm(), NOW);
    let _ = s.create(&k("/f"), false, b"w", false, perm(), NOW);
    let _ = s.compare_and_swap(&k("/f"), b"no", 0, b"w", perm(), NOW);
    assert_eq!(js(&s.get(b"/", true, NOW).unwrap()), before);
}

#[test]
fn gets_and_watches_do_not_bump() {
    let mut s = store();
    set(&mut s, "/a", "1");
    let _ = s.get(&k("/a"), true, NOW);
    let _ = s.get(&k("/zz"), true, NOW);
    let _ = wait(&mut s, "/a", false, false, 0);
    assert_eq!(s.index(), 1);
}

#[test]
fn expiry_bumps_once_per_expired_node() {
    let mut s = store();
    s.set(&k("/a"), false, b"1", ttl(1), NOW).unwrap();
    s.set(&k("/b"), false, b"1", ttl(2), NOW).unwrap();
    s.set(&k("/c"), false, b"1", ttl(100), NOW).unwrap();
    let events = s.delete_expired(NOW + 5 * NS);
    assert_eq!(events.len(), 2);
    assert_eq!(s.index(), 5);
    assert_eq!(s.delete_expired(NOW + 5 * NS).len(), 0);
    assert_eq!(s.index(), 5);
}

#[test]
fn event_index_is_the_new_store_index() {
    let mut s = store();
    for i in 1..=5u64 {
        let e = set(&mut s, &format!("/k{i}"), "v");
        assert_eq!((e.index(), e.etcd_index, s.index()), (i, i, i));
    }
}

#[test]
fn history_holds_consecutive_indexes() {
    let mut s = store();
    set(&mut s, "/a", "1");
    s.set(&k("/a"), false, b"", refresh(3), NOW).unwrap();
    s.delete(&k("/a"), false, false, NOW).unwrap();
    s.create(&k("/q"), false, b"", true, ttl(1), NOW).unwrap();
    s.delete_expired(NOW + 2 * NS);
    let idx: Vec<u64> = s.history().map(|e| e.index()).collect();
    assert_eq!(idx, vec![1, 2, 3, 4, 5]);
}

fn write(method: Method, p: &str) -> Write {
    Write {
        method,
        path: k(p),
        value: Vec::new(),
        dir: false,
        prev_value: Vec::new(),
        prev_index: 0,
        prev_exist: None,
        recursive: false,
        refresh: false,
        expire_ns: None,
        time_ns: NOW,
    }
}

#[test]
fn apply_chooses_the_operation_like_etcd() {
    use crate::Action::*;
    let mut s = store();
    let put = |p: &str, v: &str| Write {
        value: v.into(),
        ..write(Method::Put, p)
    };
    let cases: Vec<(Write, crate::Action)> = vec![
        (put("/a", "1"), Set),
        (
            Write {
                prev_exist: Some(false),
                ..put("/b", "1")
            },
            Create,
        ),
        (
            Write {
                prev_exist: Some(true),
                ..put("/a", "2")
            },
            Update,
        ),
        (
            Write {
                prev_exist: Some(true),
                prev_value: b"2".to_vec(),
                ..put("/a", "3")
            },
            CompareAndSwap,
        ),
        (
            Write {
                prev_exist: Some(true),
                prev_index: 4,
                ..put("/a", "4")
            },
            CompareAndSwap,
        ),
        (
            Write {
                prev_value: b"4".to_vec(),
                ..put("/a", "5")
            },
            CompareAndSwap,
        ),
        (
            Write {
                prev_index: 6,
                ..put("/a", "6")
            },
            CompareAndSwap,
        ),
        (write(Method::Post, "/q"), Create),
        (
            Write {
                prev_value: b"1".to_vec(),
                ..write(Method::Delete, "/b")
            },
            CompareAndDelete,
        ),
        (write(Method::Delete, "/a"), Delete),
    ];
    for (i, (w, action)) in cases.into_iter().enumerate() {
        let e = s.apply(&w).unwrap_or_else(|err| panic!("case {i}: {err}"));
        assert_eq!(e.action, action, "case {i}");
    }
}

#[test]
fn apply_post_creates_in_order_key_under_dir() {
    let mut s = store();
    let e = s
        .apply(&Write {
            value: b"j".to_vec(),
            ..write(Method::Post, "/q")
        })
        .unwrap();
    assert_eq!(&*e.node.key, b"/1/q/00000000000000000001");
}

#[test]
fn apply_delete_dir_recursive() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let e = s
        .apply(&Write {
            recursive: true,
            ..write(Method::Delete, "/d")
        })
        .unwrap();
    assert!(e.node.dir);
}

#[test]
fn apply_uses_time_for_ttl_rendering() {
    let mut s = store();
    let w = Write {
        value: b"v".to_vec(),
        expire_ns: Some(NOW + 10 * NS),
        time_ns: NOW + 3 * NS,
        ..write(Method::Put, "/t")
    };
    assert_eq!(s.apply(&w).unwrap().node.ttl_s, 7);
}
