//! The event history: `waitIndex` replay and its 1000-event window.

use super::*;
use crate::{Action, Code, HISTORY_CAPACITY};

#[test]
fn replay_returns_first_matching_event_since_index() {
    let mut s = store();
    set(&mut s, "/a", "1"); // 1
    set(&mut s, "/b", "1"); // 2
    set(&mut s, "/a", "2"); // 3
    assert_eq!(ready(&mut s, "/a", false, 1).index(), 1);
    assert_eq!(ready(&mut s, "/a", false, 2).index(), 3);
    assert_eq!(ready(&mut s, "/b", false, 1).index(), 2);
    assert_eq!(s.watcher_count(), 0, "an answered watch is not registered");
}

#[test]
fn replay_without_match_waits() {
    let mut s = store();
    set(&mut s, "/a", "1");
    set(&mut s, "/b", "1");
    let (rec, _) = wait(&mut s, "/a", false, false, 2);
    assert_eq!(s.watcher_count(), 1);
    set(&mut s, "/a", "2");
    assert_eq!(rec.seen(), ["set /1/a@3"]);
}

#[test]
fn replay_sets_etcd_index_to_current_index() {
    // etcd clones the event and stamps the current index (X-Etcd-Index).
    let mut s = store();
    set(&mut s, "/a", "1");
    set(&mut s, "/b", "1");
    set(&mut s, "/c", "1");
    let e = ready(&mut s, "/a", false, 1);
    assert_eq!((e.index(), e.etcd_index), (1, 3));
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/a","value":"1","modifiedIndex":1,"createdIndex":1}}"#
    );
    // The history itself is untouched.
    assert_eq!(s.history().next().unwrap().etcd_index, 1);
}

#[test]
fn replay_non_recursive_ignores_children() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let (_rec, _) = wait(&mut s, "/d", false, false, 1);
}

#[test]
fn replay_recursive_matches_children_on_a_segment_boundary() {
    let mut s = store();
    set(&mut s, "/dx", "1"); // 1
    set(&mut s, "/d/x/y", "1"); // 2
    assert_eq!(ready(&mut s, "/d", true, 1).index(), 2);
    assert_eq!(ready(&mut s, "", true, 1).index(), 1);
    let e = match s
        .watch(b"/", true, false, 1, Rec::default().boxed())
        .unwrap()
    {
        WatchStart::Ready(e) => e,
        WatchStart::Waiting(_) => panic!("root watch should match"),
    };
    assert_eq!(e.index(), 1);
}

#[test]
fn replay_includes_hidden_keys() {
    // etcd's history scan does not filter hidden keys.
    let mut s = store();
    set(&mut s, "/_h", "1");
    assert_eq!(ready(&mut s, "", true, 1).index(), 1);
}

#[test]
fn replay_skips_refresh_events() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap(); // 1
    s.set(&k("/t"), false, b"", refresh(9), NOW).unwrap(); // 2
    let (rec, _) = wait(&mut s, "/t", false, false, 2);
    set(&mut s, "/t", "w");
    assert_eq!(rec.seen(), ["set /1/t@3"]);
}

#[test]
fn replay_deleted_dir_answers_watch_below_it() {
    let mut s = store();
    set(&mut s, "/d/x", "1"); // 1
    s.delete(&k("/d"), true, true, NOW).unwrap(); // 2
    let e = ready(&mut s, "/d/x/deeper", false, 2);
    assert_eq!((e.action, &*e.node.key), (Action::Delete, &b"/1/d"[..]));
}

#[test]
fn replay_deleted_dir_matches_raw_prefix_like_etcd() {
    // etcd compares `strings.HasPrefix(key, prevNode.Key)`: no boundary.
    let mut s = store();
    mkdir(&mut s, "/d"); // 1
    s.delete(&k("/d"), true, false, NOW).unwrap(); // 2
    assert_eq!(ready(&mut s, "/dx", false, 2).index(), 2);
}

#[test]
fn replay_deleted_key_does_not_answer_below_it() {
    let mut s = store();
    set(&mut s, "/f", "1"); // 1
    s.delete(&k("/f"), false, false, NOW).unwrap(); // 2
    let _ = wait(&mut s, "/f/x", false, false, 2);
}

#[test]
fn replay_expired_dir_answers_watch_below_it() {
    let mut s = store();
    s.set(&k("/d"), true, b"", ttl(1), NOW).unwrap(); // 1
    set(&mut s, "/d/x", "1"); // 2
    s.delete_expired(NOW + NS); // 3
    let e = ready(&mut s, "/d/x", false, 3);
    assert_eq!((e.action, e.index()), (Action::Expire, 3));
}

#[test]
fn future_index_waits() {
    let mut s = store();
    set(&mut s, "/a", "1");
    let (rec, _) = wait(&mut s, "/a", false, false, 5);
    for v in ["2", "3", "4"] {
        set(&mut s, "/a", v);
    }
    assert_eq!(rec.len(), 0, "events before the wait index are not sent");
    set(&mut s, "/a", "5");
    assert_eq!(rec.seen(), ["set /1/a@5"]);
}

#[test]
fn history_keeps_the_last_1000_events() {
    let mut s = store();
    for i in 0..1005 {
        set(&mut s, "/k", &i.to_string());
    }
    assert_eq!(s.history().count(), HISTORY_CAPACITY);
    assert_eq!(s.history().next().unwrap().index(), 6);
    assert_eq!(ready(&mut s, "/k", false, 6).index(), 6);
}

#[test]
fn history_cleared_is_401_with_exact_cause() {
    let mut s = store();
    for i in 0..1005 {
        set(&mut s, "/k", &i.to_string());
    }
    let err = match s.watch(&k("/k"), false, false, 5, Rec::default().boxed()) {
        Err(e) => e,
        Ok(_) => panic!("expected 401"),
    };
    assert_eq!(err.code, Code::EventIndexCleared);
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [6/5]","index":1005}"#
    );
    assert_eq!(s.watcher_count(), 0);
}

#[test]
fn history_cleared_for_stream_watch_too() {
    let mut s = store();
    for i in 0..1001 {
        set(&mut s, "/k", &i.to_string());
    }
    let rec = Rec::default();
    let err = s.watch(&k("/k"), true, true, 1, rec.boxed()).err().unwrap();
    assert_eq!(err.cause, "the requested history has been cleared [2/1]");
    assert_eq!((rec.len(), s.watcher_count()), (0, 0));
}

#[test]
fn history_window_counts_refresh_events() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    for _ in 0..1000 {
        s.set(&k("/t"), false, b"", refresh(5), NOW).unwrap();
    }
    let err = s
        .watch(&k("/t"), false, false, 1, Rec::default().boxed())
        .err()
        .unwrap();
    assert_eq!(err.cause, "the requested history has been cleared [2/1]");
}
