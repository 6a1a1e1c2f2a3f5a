//! The watcher hub: who is woken by which write, streams, removal.

use super::*;

#[test]
fn non_recursive_watcher_sees_its_key() {
    let mut s = store();
    let (rec, _) = wait(&mut s, "/a", false, false, 0);
    set(&mut s, "/b", "1");
    set(&mut s, "/a", "1");
    assert_eq!(rec.seen(), ["set /1/a@2"]);
}

#[test]
fn non_recursive_watcher_of_dir_ignores_children() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let (rec, _) = wait(&mut s, "/d", false, false, 0);
    set(&mut s, "/d/x", "1");
    assert_eq!(rec.len(), 0);
    assert_eq!(s.watcher_count(), 1);
}

#[test]
fn recursive_watcher_sees_descendants() {
    let mut s = store();
    let (rec, _) = wait(&mut s, "/d", true, false, 0);
    set(&mut s, "/d/x/y", "1");
    assert_eq!(rec.seen(), ["set /1/d/x/y@1"]);
}

#[test]
fn recursive_watcher_ignores_sibling_with_common_prefix() {
    let mut s = store();
    let (rec, _) = wait(&mut s, "/d", true, false, 0);
    set(&mut s, "/dx", "1");
    assert_eq!(rec.len(), 0);
}

#[test]
fn every_ancestor_is_notified() {
    let mut s = store();
    let (root, _) = s_wait_root(&mut s);
    let (ns, _) = wait(&mut s, "", true, false, 0);
    let (a, _) = wait(&mut s, "/a", true, false, 0);
    let (ab, _) = wait(&mut s, "/a/b", true, false, 0);
    let (abc, _) = wait(&mut s, "/a/b/c", false, false, 0);
    set(&mut s, "/a/b/c", "1");
    for r in [&root, &ns, &a, &ab, &abc] {
        assert_eq!(r.seen(), ["set /1/a/b/c@1"]);
    }
    assert_eq!(s.watcher_count(), 0);
}

fn s_wait_root(s: &mut Store) -> (Rec, WatcherId) {
    let rec = Rec::default();
    match s.watch(b"/", true, false, 0, rec.boxed()).unwrap() {
        WatchStart::Waiting(id) => (rec, id),
        WatchStart::Ready(_) => panic!("expected to wait"),
    }
}

#[test]
fn hidden_key_does_not_notify_recursive_ancestor() {
    let mut s = store();
    let (ns, _) = wait(&mut s, "", true, false, 0);
    let (d, _) = wait(&mut s, "/d", true, false, 0);
    set(&mut s, "/_h", "1");
    set(&mut s, "/d/_h/x", "1");
    assert_eq!((ns.len(), d.len()), (0, 0));
    set(&mut s, "/d/v", "1");
    assert_eq!(d.seen(), ["set /1/d/v@3"]);
}

#[test]
fn hidden_key_notifies_its_own_watcher() {
    let mut s = store();
    let (h, _) = wait(&mut s, "/_h", false, false, 0);
    set(&mut s, "/_h", "1");
    assert_eq!(h.seen(), ["set /1/_h@1"]);
}

#[test]
fn recursive_watcher_inside_hidden_dir_sees_children() {
    let mut s = store();
    let (h, _) = wait(&mut s, "/_h", true, false, 0);
    set(&mut s, "/_h/x", "1");
    assert_eq!(h.seen(), ["set /1/_h/x@1"]);
}

#[test]
fn delete_of_dir_wakes_watchers_of_children() {
    let mut s = store();
    set(&mut s, "/d/x/y", "1"); // 1
    set(&mut s, "/d/z", "1"); // 2
    let (y, _) = wait(&mut s, "/d/x/y", false, false, 0);
    let (x, _) = wait(&mut s, "/d/x", false, false, 0);
    let (z, _) = wait(&mut s, "/d/z", false, false, 0);
    let (d, _) = wait(&mut s, "/d", false, false, 0);
    let (other, _) = wait(&mut s, "/e", false, false, 0);
    s.delete(&k("/d"), true, true, NOW).unwrap();
    for r in [&y, &x, &z, &d] {
        assert_eq!(r.seen(), ["delete /1/d@3"]);
    }
    assert_eq!(other.len(), 0);
    assert_eq!(s.watcher_count(), 1);
}

#[test]
fn delete_of_dir_wakes_watchers_of_hidden_children() {
    let mut s = store();
    set(&mut s, "/d/_h", "1");
    let (h, _) = wait(&mut s, "/d/_h", false, false, 0);
    s.delete(&k("/d"), true, true, NOW).unwrap();
    assert_eq!(h.seen(), ["delete /1/d@2"]);
}

#[test]
fn delete_of_key_notifies_recursive_ancestors_only() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let (rd, _) = wait(&mut s, "/d", true, false, 0);
    let (nd, _) = wait(&mut s, "/d", false, false, 0);
    s.delete(&k("/d/x"), false, false, NOW).unwrap();
    assert_eq!(rd.seen(), ["delete /1/d/x@2"]);
    assert_eq!(nd.len(), 0);
}

#[test]
fn expire_of_dir_wakes_watchers_of_children() {
    let mut s = store();
    s.set(&k("/d"), true, b"", ttl(1), NOW).unwrap();
    set(&mut s, "/d/x", "1");
    let (x, _) = wait(&mut s, "/d/x", false, false, 0);
    s.delete_expired(NOW + NS);
    assert_eq!(x.seen(), ["expire /1/d@3"]);
}

#[test]
fn compare_and_delete_wakes_the_key_watcher() {
    let mut s = store();
    set(&mut s, "/k", "v");
    let (rec, _) = wait(&mut s, "/k", false, true, 0);
    s.compare_and_delete(&k("/k"), b"v", 0, NOW).unwrap();
    assert_eq!(rec.seen(), ["compareAndDelete /1/k@2"]);
}

#[test]
fn non_stream_watcher_fires_once() {
    let mut s = store();
    let (rec, _) = wait(&mut s, "/a", false, false, 0);
    assert_eq!(s.watcher_count(), 1);
    set(&mut s, "/a", "1");
    set(&mut s, "/a", "2");
    assert_eq!(rec.seen(), ["set /1/a@1"]);
    assert_eq!(s.watcher_count(), 0);
}

#[test]
fn stream_watcher_receives_several_events() {
    let mut s = store();
    let (rec, _) = wait(&mut s, "/d", true, true, 0);
    set(&mut s, "/d/a", "1");
    s.update(&k("/d/a"), b"2", perm(), NOW).unwrap();
    s.compare_and_swap(&k("/d/a"), b"2", 0, b"3", perm(), NOW)
        .unwrap();
    s.create(&k("/d/q"), false, b"", true, perm(), NOW).unwrap();
    assert_eq!(
        rec.seen(),
        [
            "set /1/d/a@1",
            "update /1/d/a@2",
            "compareAndSwap /1/d/a@3",
            "create /1/d/q/00000000000000000004@4"
        ]
    );
    assert_eq!(s.watcher_count(), 1);
}

#[test]
fn stream_watcher_gets_a_key_delete_once() {
    let mut s = store();
    set(&mut s, "/k", "v");
    let (rec, _) = wait(&mut s, "/k", false, true, 0);
    s.delete(&k("/k"), false, false, NOW).unwrap();
    assert_eq!(rec.seen(), ["delete /1/k@2"]);
}

#[test]
fn stream_watcher_gets_a_dir_delete_once() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let (rec, _) = wait(&mut s, "/d", true, true, 0);
    let (child, _) = wait(&mut s, "/d/x", true, true, 0);
    s.delete(&k("/d"), true, true, NOW).unwrap();
    assert_eq!(rec.seen(), ["delete /1/d@2"]);
    assert_eq!(child.seen(), ["delete /1/d@2"]);
}

#[test]
fn stream_watch_answered_from_history_is_not_registered() {
    // As etcd: the first matching past event answers the watch, stream or
    // not, and the watcher is not registered for later events.
    let mut s = store();
    set(&mut s, "/d/a", "1"); // 1
    set(&mut s, "/x", "1"); // 2
    set(&mut s, "/d/b", "1"); // 3
    let rec = Rec::default();
    match s.watch(&k("/d"), true, true, 1, rec.boxed()).unwrap() {
        WatchStart::Ready(e) => assert_eq!(e.index(), 1),
        WatchStart::Waiting(_) => panic!("answered from the history"),
    }
    assert_eq!(s.watcher_count(), 0);
    set(&mut s, "/d/c", "1"); // 4
    assert_eq!(rec.len(), 0);
}

#[test]
fn refusing_sink_is_dropped() {
    let mut s = store();
    let rec = Rec::refusing();
    let id = match s.watch(&k("/a"), false, true, 0, rec.boxed()).unwrap() {
        WatchStart::Waiting(id) => id,
        WatchStart::Ready(_) => panic!(),
    };
    set(&mut s, "/a", "1");
    assert_eq!(rec.len(), 1);
    assert_eq!(s.watcher_count(), 0);
    set(&mut s, "/a", "2");
    assert_eq!(rec.len(), 1);
    assert!(!s.unwatch(id));
}

#[test]
fn unwatch_removes_only_that_watcher() {
    let mut s = store();
    let (a, ida) = wait(&mut s, "/k", false, true, 0);
    let (b, _) = wait(&mut s, "/k", false, true, 0);
    assert_eq!(s.watcher_count(), 2);
    assert!(s.unwatch(ida));
    assert!(!s.unwatch(ida));
    assert_eq!(s.watcher_count(), 1);
    set(&mut s, "/k", "1");
    assert_eq!((a.len(), b.len()), (0, 1));
}

#[test]
fn unwatch_after_firing_is_false() {
    let mut s = store();
    let (_, id) = wait(&mut s, "/k", false, false, 0);
    set(&mut s, "/k", "1");
    assert!(!s.unwatch(id));
}

#[test]
fn stale_id_does_not_remove_a_new_watcher_on_the_same_path() {
    let mut s = store();
    let (_, old) = wait(&mut s, "/k", false, false, 0);
    assert!(s.unwatch(old));
    let (rec, _) = wait(&mut s, "/k", false, false, 0);
    assert!(!s.unwatch(old));
    assert_eq!(s.watcher_count(), 1);
    set(&mut s, "/k", "1");
    assert_eq!(rec.len(), 1);
}

#[test]
fn watcher_count_in_stats() {
    let mut s = store();
    let _ = wait(&mut s, "/a", false, false, 0);
    let _ = wait(&mut s, "/b", true, true, 0);
    assert_eq!(s.watcher_count(), 2);
    assert!(String::from_utf8(s.stats_json())
        .unwrap()
        .ends_with(r#""watchers":2}"#));
}

#[test]
fn watch_path_is_cleaned() {
    let mut s = store();
    let rec = Rec::default();
    s.watch(b"/1//a/", false, false, 0, rec.boxed()).unwrap();
    set(&mut s, "/a", "1");
    assert_eq!(rec.len(), 1);
}
