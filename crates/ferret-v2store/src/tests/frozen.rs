//! Frozen views: what a view encodes never changes after it is taken.

use super::snapshot::{dump, rich, same_behaviour};
use super::*;
use crate::FrozenStore;

/// Writes of every kind on a [`rich`] store: overwrites, new keys and
/// directories, in-order keys, TTL changes and refreshes, compare-and-swap
/// and -delete, deletes of keys and of whole directories, expiry of keys
/// and of a directory with a child, failed writes and reads (which move the
/// stats), and enough churn to replace the whole history.
fn write_everything(s: &mut Store) {
    set(s, "/a", "changed");
    set(s, "/new/deep/key", "new");
    mkdir(s, "/newdir");
    s.create(&k("/q"), false, b"job", true, perm(), NOW)
        .unwrap();
    s.set(&k("/t2"), false, b"", refresh(500), NOW).unwrap();
    s.update(&k("/d/x"), b"updated", ttl(3), NOW).unwrap();
    s.compare_and_swap(&k("/bin"), b"", 0, b"swapped", perm(), NOW)
        .unwrap();
    s.compare_and_delete(&k("/a"), b"changed", 0, NOW).unwrap();
    s.delete(&k("/d/y/z"), false, false, NOW).unwrap();
    s.delete(&k("/_hd"), true, true, NOW).unwrap();
    s.delete(&k("/empty"), true, false, NOW).unwrap();
    s.get(&k("/missing"), false, NOW).unwrap_err();
    s.get(&k("/d"), true, NOW).unwrap();
    s.create(&k("/new"), false, b"", false, perm(), NOW)
        .unwrap_err();
    // /t1, /t2, /tdir (with its child) and /d/x expire.
    assert!(s.delete_expired(NOW + 1_000 * NS).len() >= 4);
    for i in 0..1_100 {
        set(s, &format!("/churn/{}", i % 13), &format!("v{i}"));
    }
    s.delete(&k("/churn"), true, true, NOW).unwrap();
    s.delete(&k("/d"), true, true, NOW).unwrap();
}

#[test]
fn a_frozen_view_is_send_sync_and_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<FrozenStore>();
}

#[test]
fn a_view_encodes_what_snapshot_gave_when_it_was_taken_whatever_the_store_did_since() {
    for churn in [false, true] {
        let mut s = rich(churn);
        let before = s.snapshot();
        let view = s.frozen();
        assert_eq!(view.index(), s.index());
        assert_eq!(view.encode(), before, "churn {churn}: at once");
        write_everything(&mut s);
        assert!(!s.has_ttl_keys());
        assert_eq!(view.encode(), before, "churn {churn}: after the writes");
        // A store that never saw the writes gives the same bytes.
        let untouched = rich(churn);
        assert_eq!(view.encode(), untouched.snapshot(), "churn {churn}");
        assert_eq!(view.index(), untouched.index());
        assert_ne!(s.snapshot(), before);
    }
}

#[test]
fn a_restored_view_is_the_store_it_was_taken_from() {
    for churn in [false, true] {
        let mut s = rich(churn);
        let view = s.frozen();
        write_everything(&mut s);

        let mut restored = Store::from_snapshot(&view.encode()).unwrap();
        let mut untouched = rich(churn);
        assert_eq!(dump(&restored), dump(&untouched), "churn {churn}");
        same_behaviour(&mut restored, &mut untouched);

        // Installed in place on the store that moved on, too.
        s.restore_in_place(&view.encode()).unwrap();
        let mut untouched = rich(churn);
        assert_eq!(dump(&s), dump(&untouched), "churn {churn}: in place");
        same_behaviour(&mut s, &mut untouched);
    }
}

#[test]
fn a_view_survives_the_store_being_restored_from_another_snapshot() {
    let mut s = rich(true);
    let before = s.snapshot();
    let view = s.frozen();
    s.restore_in_place(&store().snapshot()).unwrap();
    assert_eq!(s.index(), 0);
    set(&mut s, "/a", "after the restore");
    assert_eq!(view.encode(), before);
}

#[test]
fn taking_a_view_changes_nothing() {
    let mut s = rich(true);
    let stats = s.stats_json();
    let bytes = s.snapshot();
    let views: Vec<FrozenStore> = (0..3).map(|_| s.frozen()).collect();
    assert_eq!(s.stats_json(), stats, "no counter moved");
    assert_eq!(s.snapshot(), bytes);
    drop(views);
    set(&mut s, "/x", "1");
    let mut other = rich(true);
    set(&mut other, "/x", "1");
    assert_eq!(dump(&s), dump(&other));
}

/// A random write on a store of a few hundred keys in nested directories,
/// some with TTLs, and now and then an expiry sweep or a recursive delete.
fn random_write(s: &mut Store, r: u64, step: u64) {
    let key = format!("/d{}/k{}", r % 5, (r / 5) % 300);
    let dir = format!("/d{}", r % 5);
    let now = NOW + (step as i64) * NS / 10;
    match (r / 1_500) % 20 {
        0..=9 => {
            s.set(&k(&key), false, step.to_string().as_bytes(), perm(), now)
                .unwrap();
        }
        10..=12 => {
            let _ = s.delete(&k(&key), false, false, now);
        }
        13 | 14 => {
            let ttl = TtlOptions {
                expire_ns: Some(now + ((r % 7) as i64 + 1) * NS),
                refresh: false,
            };
            s.set(&k(&key), false, b"ttl", ttl, now).unwrap();
        }
        15 => {
            s.create(&k(&dir), false, b"job", true, perm(), now)
                .unwrap();
        }
        16 | 17 => {
            s.delete_expired(now);
        }
        18 => {
            let _ = s.compare_and_swap(&k(&key), b"", step.saturating_sub(3), b"cas", perm(), now);
        }
        _ => {
            if r.is_multiple_of(4) {
                let _ = s.delete(&k(&dir), true, true, now);
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn many_views_alive_at_once_each_keep_their_moment() {
    let mut rng = Rng(42);
    let mut s = store();
    let mut views: Vec<(FrozenStore, Vec<u8>)> = Vec::new();
    for step in 0..6_000 {
        random_write(&mut s, rng.next(), step);
        if step % 150 == 0 {
            views.push((s.frozen(), s.snapshot()));
        }
        // Drop one now and then, oldest, newest or in between.
        if step % 700 == 699 {
            let i = (rng.next() as usize) % views.len();
            views.remove(i);
        }
    }
    assert!(views.len() > 20);
    for (view, bytes) in &views {
        assert_eq!(&view.encode(), bytes, "view at index {}", view.index());
        let restored = Store::from_snapshot(bytes).unwrap();
        assert_eq!(restored.snapshot(), *bytes);
    }
}

#[test]
fn a_view_of_a_big_directory_keeps_its_moment_under_writes_everywhere() {
    let mut s = store();
    for i in 0..20_000 {
        set(&mut s, &format!("/big/{i:06}"), "v");
    }
    for i in 0..500 {
        set(&mut s, &format!("/tree/{}/{}/{i}", i % 7, i % 11), "v");
    }
    let bytes = s.snapshot();
    let view = s.frozen();
    let mut rng = Rng(7);
    for step in 0..20_000 {
        let i = rng.next() % 25_000;
        if i.is_multiple_of(3) {
            let _ = s.delete(&k(&format!("/big/{i:06}")), false, false, NOW);
        } else {
            set(&mut s, &format!("/big/{i:06}"), &step.to_string());
        }
    }
    s.delete(&k("/tree/3"), true, true, NOW).unwrap();
    assert_eq!(view.encode(), bytes);
}

#[test]
fn a_view_is_encoded_and_dropped_on_another_thread_while_the_store_moves_on() {
    let mut s = store();
    for i in 0..5_000 {
        set(&mut s, &format!("/k/{i}"), "v");
    }
    let bytes = s.snapshot();
    let view = s.frozen();
    let encoder = std::thread::spawn(move || {
        let mut encoded = view.encode();
        for _ in 0..5 {
            assert_eq!(view.encode(), encoded);
            encoded = view.encode();
        }
        drop(view);
        encoded
    });
    let mut rng = Rng(3);
    for step in 0..20_000 {
        random_write(&mut s, rng.next(), step);
        let i = rng.next() % 5_000;
        if i.is_multiple_of(2) {
            let _ = s.delete(&k(&format!("/k/{i}")), false, false, NOW);
        } else {
            set(&mut s, &format!("/k/{i}"), "w");
        }
    }
    assert_eq!(encoder.join().unwrap(), bytes);
    // The store is whole after the view's nodes were freed over there.
    let now = s.snapshot();
    let restored = Store::from_snapshot(&now).unwrap();
    assert_eq!(dump(&restored), dump(&s));
}
