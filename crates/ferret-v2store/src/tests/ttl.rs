//! TTLs: rendering, the expiry sweep, refresh, and the TTL index.

use super::*;
use crate::{Action, Code, TtlOptions, MIN_EXPIRE_NS};

fn expire_at(ns: i64) -> TtlOptions {
    TtlOptions {
        expire_ns: Some(ns),
        refresh: false,
    }
}

fn ttl_at(s: &Store, p: &str, now: i64) -> i64 {
    s.get(&k(p), false, now).unwrap().node.ttl_s
}

#[test]
fn ttl_is_rounded_up_to_whole_seconds() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", expire_at(NOW + 10 * NS), NOW)
        .unwrap();
    assert_eq!(ttl_at(&s, "/t", NOW), 10);
    assert_eq!(ttl_at(&s, "/t", NOW + 1), 10);
    assert_eq!(ttl_at(&s, "/t", NOW + NS), 9);
    assert_eq!(ttl_at(&s, "/t", NOW + 9 * NS + 1), 1);
    assert_eq!(ttl_at(&s, "/t", NOW + 10 * NS), 0);
}

#[test]
fn ttl_of_a_fractional_expiry_rounds_up() {
    let mut s = store();
    let e = s
        .set(&k("/t"), false, b"v", expire_at(NOW + 1_500_000_000), NOW)
        .unwrap();
    assert_eq!(e.node.ttl_s, 2);
}

#[test]
fn ttl_past_expiry_before_the_sweep_is_negative() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(1), NOW).unwrap();
    assert_eq!(ttl_at(&s, "/t", NOW + 2_500_000_000), -1);
    assert!(js(&s.get(&k("/t"), false, NOW + 2_500_000_000).unwrap()).contains(r#""ttl":-1,"#));
}

#[test]
fn ttl_event_renders_expiration_and_ttl() {
    let mut s = store();
    let e = s
        .create(
            &k("/t"),
            false,
            b"v",
            false,
            expire_at(NOW + 5 * NS + 250_000_000),
            NOW,
        )
        .unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"create","node":{"key":"/t","value":"v","expiration":"2023-11-14T22:13:25.25Z","ttl":6,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn dir_with_ttl_renders_it_in_listings() {
    let mut s = store();
    s.set(&k("/d"), true, b"", ttl(30), NOW).unwrap();
    s.set(&k("/d/x"), false, b"1", ttl(20), NOW).unwrap();
    let e = s.get(&k(""), true, NOW).unwrap();
    assert_eq!(
        js(&e),
        concat!(
            r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"expiration":"2023-11-14T22:13:50Z","ttl":30,"nodes":["#,
            r#"{"key":"/d/x","value":"1","expiration":"2023-11-14T22:13:40Z","ttl":20,"modifiedIndex":2,"createdIndex":2}"#,
            r#"],"modifiedIndex":1,"createdIndex":1}]}}"#
        )
    );
}

#[test]
fn expiry_before_2000_means_permanent() {
    let mut s = store();
    let e = s
        .set(&k("/t"), false, b"v", expire_at(MIN_EXPIRE_NS - 1), NOW)
        .unwrap();
    assert_eq!((e.node.expiration_ns, e.node.ttl_s), (None, 0));
    let e = s
        .create(&k("/u"), false, b"v", false, expire_at(0), NOW)
        .unwrap();
    assert_eq!(e.node.expiration_ns, None);
    assert!(!s.has_ttl_keys());
    assert!(s.delete_expired(NOW).is_empty());
}

#[test]
fn expire_events_come_in_expiry_order() {
    let mut s = store();
    s.set(&k("/c"), false, b"3", ttl(3), NOW).unwrap(); // 1
    s.set(&k("/a"), false, b"1", ttl(1), NOW).unwrap(); // 2
    s.set(&k("/b"), false, b"2", ttl(2), NOW).unwrap(); // 3
    let events = s.delete_expired(NOW + 3 * NS);
    let seen: Vec<(String, u64)> = events
        .iter()
        .map(|e| (String::from_utf8_lossy(&e.node.key).into_owned(), e.index()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/1/a".to_string(), 4),
            ("/1/b".to_string(), 5),
            ("/1/c".to_string(), 6)
        ]
    );
    assert!(events.iter().all(|e| e.action == Action::Expire));
}

#[test]
fn expire_event_json() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(1), NOW).unwrap();
    let e = s.delete_expired(NOW + NS).pop().unwrap();
    assert_eq!(e.etcd_index, 2);
    assert_eq!(
        js(&e),
        r#"{"action":"expire","node":{"key":"/t","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/t","value":"v","expiration":"2023-11-14T22:13:21Z","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn delete_expired_respects_the_cutoff() {
    let mut s = store();
    s.set(&k("/a"), false, b"1", ttl(1), NOW).unwrap();
    s.set(&k("/b"), false, b"2", ttl(2), NOW).unwrap();
    assert!(s.delete_expired(NOW + NS - 1).is_empty());
    assert_eq!(
        s.delete_expired(NOW + NS).len(),
        1,
        "expiry == cutoff expires"
    );
    assert!(s.get(&k("/a"), false, NOW).is_err());
    assert!(s.get(&k("/b"), false, NOW).is_ok());
    assert_eq!(s.next_expiry_ns(), Some(NOW + 2 * NS));
    assert_eq!(
        s.stats()
            .expire_count
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn next_expiry_is_the_earliest() {
    let mut s = store();
    assert_eq!(s.next_expiry_ns(), None);
    s.set(&k("/a"), false, b"1", ttl(9), NOW).unwrap();
    s.set(&k("/b"), false, b"1", ttl(4), NOW).unwrap();
    s.set(&k("/c"), false, b"1", ttl(7), NOW).unwrap();
    assert_eq!(s.next_expiry_ns(), Some(NOW + 4 * NS));
    assert!(s.has_ttl_keys());
}

#[test]
fn update_without_ttl_makes_key_permanent() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    let e = s.update(&k("/t"), b"w", perm(), NOW).unwrap();
    assert_eq!((e.node.expiration_ns, e.node.ttl_s), (None, 0));
    assert_eq!(e.prev_node.as_ref().unwrap().ttl_s, 5);
    assert!(!s.has_ttl_keys());
    assert!(s.delete_expired(NOW + 10 * NS).is_empty());
    assert!(s.get(&k("/t"), false, NOW).is_ok());
}

#[test]
fn update_can_add_and_move_a_ttl() {
    let mut s = store();
    set(&mut s, "/t", "v");
    s.update(&k("/t"), b"v", ttl(5), NOW).unwrap();
    assert_eq!(s.next_expiry_ns(), Some(NOW + 5 * NS));
    s.update(&k("/t"), b"v", ttl(8), NOW).unwrap();
    assert_eq!(s.next_expiry_ns(), Some(NOW + 8 * NS));
    assert!(s.delete_expired(NOW + 5 * NS).is_empty());
    assert_eq!(s.delete_expired(NOW + 8 * NS).len(), 1);
}

#[test]
fn cas_without_ttl_makes_key_permanent() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    s.compare_and_swap(&k("/t"), b"v", 0, b"w", perm(), NOW)
        .unwrap();
    assert!(!s.has_ttl_keys());
}

#[test]
fn set_replacing_a_ttl_key_drops_its_ttl() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    set(&mut s, "/t", "w");
    assert!(!s.has_ttl_keys());
    assert!(s.delete_expired(NOW + 10 * NS).is_empty());
}

#[test]
fn set_replacing_a_ttl_key_with_another_ttl() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    s.set(&k("/t"), false, b"w", ttl(9), NOW).unwrap();
    assert_eq!(s.next_expiry_ns(), Some(NOW + 9 * NS));
    assert!(s.delete_expired(NOW + 6 * NS).is_empty());
}

#[test]
fn ttl_index_emptied_by_deletes() {
    let mut s = store();
    s.set(&k("/a"), false, b"v", ttl(5), NOW).unwrap();
    s.delete(&k("/a"), false, false, NOW).unwrap();
    assert!(!s.has_ttl_keys());
    s.set(&k("/b"), false, b"v", ttl(5), NOW).unwrap();
    s.compare_and_delete(&k("/b"), b"v", 0, NOW).unwrap();
    assert!(!s.has_ttl_keys());
    s.set(&k("/d"), true, b"", ttl(5), NOW).unwrap();
    s.set(&k("/d/e/f"), false, b"v", ttl(6), NOW).unwrap();
    s.set(&k("/d/g"), false, b"v", ttl(7), NOW).unwrap();
    s.delete(&k("/d"), true, true, NOW).unwrap();
    assert!(!s.has_ttl_keys());
    assert_eq!(s.next_expiry_ns(), None);
}

#[test]
fn dir_ttl_expires_its_children() {
    let mut s = store();
    s.set(&k("/d"), true, b"", ttl(2), NOW).unwrap(); // 1
    s.set(&k("/d/x"), false, b"1", ttl(5), NOW).unwrap(); // 2
    set(&mut s, "/d/sub/y", "2"); // 3
    let events = s.delete_expired(NOW + 2 * NS);
    assert_eq!(events.len(), 1);
    assert_eq!(
        js(&events[0]),
        r#"{"action":"expire","node":{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"expiration":"2023-11-14T22:13:22Z","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert_eq!(
        s.get(&k("/d/x"), false, NOW).unwrap_err().code,
        Code::KeyNotFound
    );
    assert!(!s.has_ttl_keys(), "the child's TTL went with it");
    assert!(s.delete_expired(NOW + 10 * NS).is_empty());
}

#[test]
fn dir_ttl_can_be_set_by_update() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    s.update(&k("/d"), b"", ttl(3), NOW).unwrap();
    let events = s.delete_expired(NOW + 3 * NS);
    assert_eq!(events.len(), 1);
    assert!(events[0].node.dir);
    assert!(s.get(&k("/d/x"), false, NOW).is_err());
}

// ----- refresh --------------------------------------------------------

#[test]
fn refresh_by_set_keeps_value_and_resets_ttl() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    let e = s
        .set(&k("/t"), false, b"ignored", refresh(50), NOW)
        .unwrap();
    assert!(e.refresh);
    assert_eq!(e.node.value.as_deref(), Some(&b"v"[..]));
    assert_eq!(e.node.ttl_s, 50);
    assert_eq!(e.prev_node.as_ref().unwrap().ttl_s, 5);
    let n = s.get(&k("/t"), false, NOW).unwrap().node;
    assert_eq!((n.value.as_deref(), n.ttl_s), (Some(&b"v"[..]), 50));
    assert!(s.delete_expired(NOW + 10 * NS).is_empty());
    assert_eq!(s.next_expiry_ns(), Some(NOW + 50 * NS));
}

#[test]
fn refresh_by_update_keeps_value() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    let e = s.update(&k("/t"), b"", refresh(20), NOW).unwrap();
    assert!(e.refresh);
    assert_eq!(e.action, Action::Update);
    assert_eq!(
        js(&e),
        r#"{"action":"update","node":{"key":"/t","value":"v","expiration":"2023-11-14T22:13:40Z","ttl":20,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/t","value":"v","expiration":"2023-11-14T22:13:25Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn refresh_by_cas_keeps_value() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    let e = s
        .compare_and_swap(&k("/t"), b"v", 0, b"", refresh(20), NOW)
        .unwrap();
    assert!(e.refresh);
    assert_eq!(e.node.value.as_deref(), Some(&b"v"[..]));
    assert_eq!(
        s.get(&k("/t"), false, NOW).unwrap().node.value.as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn refresh_of_missing_key_is_100() {
    let mut s = store();
    let err = s.set(&k("/t"), false, b"", refresh(5), NOW).unwrap_err();
    assert_eq!((err.code, err.cause.as_str()), (Code::KeyNotFound, "/1/t"));
    assert_eq!(s.index(), 0);
}

#[test]
fn refresh_does_not_notify_watchers() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    let (rec, _) = wait(&mut s, "/t", false, false, 0);
    let (rrec, _) = wait(&mut s, "", true, true, 0);
    s.set(&k("/t"), false, b"", refresh(50), NOW).unwrap();
    s.update(&k("/t"), b"", refresh(60), NOW).unwrap();
    assert_eq!((rec.len(), rrec.len()), (0, 0));
    assert_eq!(s.watcher_count(), 2);
    set(&mut s, "/t", "w");
    assert_eq!(rec.seen(), ["set /1/t@4"]);
}

#[test]
fn refresh_is_recorded_in_history() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(5), NOW).unwrap();
    s.set(&k("/t"), false, b"", refresh(50), NOW).unwrap();
    let last = s.history().last().unwrap().clone();
    assert!(last.refresh);
    assert_eq!(last.index(), 2);
}
