//! Snapshots: round trips, installing on a live store, corrupt input.

use super::*;
use crate::{Code, SnapshotError, SNAPSHOT_VERSION};

/// Hidden keys of [`rich`], which a listing of `/` does not show.
const HIDDEN: &[&str] = &["/_hidden", "/d/_h", "/_hd", "/_hd/x"];

/// A store with some of everything: namespaces, nested and empty dirs,
/// hidden keys and dirs, in-order keys, TTLs on keys and dirs, binary
/// values, and a history with refresh, expire, delete, CAS and CAD events
/// and failed operations in the stats. With `churn`, more than 1000 writes,
/// so the history has lost its oldest events.
pub(super) fn rich(churn: bool) -> Store {
    let mut s = store();
    s.set(b"/0/members/m1", false, b"peer", perm(), NOW)
        .unwrap();
    set(&mut s, "/a", "1");
    set(&mut s, "/d/x", "x");
    set(&mut s, "/d/y/z", "deep");
    set(&mut s, "/d/_h", "hidden in d");
    set(&mut s, "/_hidden", "h");
    mkdir(&mut s, "/_hd");
    set(&mut s, "/_hd/x", "x");
    mkdir(&mut s, "/empty");
    s.set(&k("/bin"), false, b"\xff\x00\"<>\n", perm(), NOW)
        .unwrap();
    for _ in 0..3 {
        s.create(&k("/q"), false, b"job", true, perm(), NOW)
            .unwrap();
    }
    s.set(&k("/t1"), false, b"short", ttl(5), NOW).unwrap();
    s.set(&k("/t2"), false, b"long", ttl(100), NOW).unwrap();
    s.set(&k("/tdir"), true, b"", ttl(50), NOW).unwrap();
    set(&mut s, "/tdir/child", "c");
    s.set(&k("/gone"), false, b"soon", ttl(1), NOW).unwrap();
    s.set(&k("/t2"), false, b"", refresh(200), NOW).unwrap();
    s.update(&k("/a"), b"2", perm(), NOW).unwrap();
    s.compare_and_swap(&k("/a"), b"2", 0, b"3", perm(), NOW)
        .unwrap();
    s.compare_and_swap(&k("/a"), b"nope", 0, b"4", perm(), NOW)
        .unwrap_err();
    set(&mut s, "/cad", "v");
    s.compare_and_delete(&k("/cad"), b"v", 0, NOW).unwrap();
    set(&mut s, "/rm/a", "1");
    s.delete(&k("/rm"), true, true, NOW).unwrap();
    s.get(&k("/missing"), false, NOW).unwrap_err();
    s.create(&k("/a"), false, b"x", false, perm(), NOW)
        .unwrap_err();
    assert_eq!(s.delete_expired(NOW + 2 * NS).len(), 1);
    assert!(s.history().any(|e| e.refresh));
    assert!(s.history().any(|e| e.action == crate::Action::Expire));
    if churn {
        for i in 0..1200 {
            set(&mut s, &format!("/churn/{}", i % 7), &i.to_string());
        }
    }
    assert!(s.has_ttl_keys());
    s
}

/// Everything visible about a store but its watchers, as text: the stats,
/// the index, the next expiry, the history, and (after which the gets
/// count) the tree listing and each hidden key.
pub(super) fn dump(s: &Store) -> Vec<String> {
    let stats = String::from_utf8(s.stats_json()).unwrap();
    let mut out = vec![
        stats[..stats.find(",\"watchers\"").unwrap()].to_string(),
        format!("index {} next expiry {:?}", s.index(), s.next_expiry_ns()),
    ];
    out.extend(s.history().map(|e| e.to_json_string(b"")));
    let later = NOW + 3 * NS;
    out.push(s.get(b"/", true, later).unwrap().to_json_string(b""));
    for h in HIDDEN {
        out.push(match s.get(&k(h), true, later) {
            Ok(e) => e.to_json_string(b""),
            Err(e) => ejs(&e),
        });
    }
    out
}

fn round_trip(s: &Store) -> Store {
    let bytes = s.snapshot();
    let r = Store::from_snapshot(&bytes).unwrap();
    assert_eq!(r.snapshot(), bytes, "equal stores give equal bytes");
    r
}

/// The same writes on both stores give the same events (or errors).
pub(super) fn same_behaviour(a: &mut Store, b: &mut Store) {
    type Op = fn(&mut Store) -> Vec<Result<Arc<Event>, Error>>;
    let ops: &[Op] = &[
        |s| vec![s.set(&k("/a"), false, b"after", perm(), NOW)],
        |s| vec![s.create(&k("/q"), false, b"next", true, perm(), NOW)],
        |s| vec![s.create(&k("/d/x"), false, b"dup", false, perm(), NOW)],
        |s| vec![s.set(&k("/t2"), false, b"", refresh(300), NOW)],
        |s| vec![s.update(&k("/tdir"), b"", ttl(7), NOW)],
        |s| vec![s.delete(&k("/_hd"), true, true, NOW)],
        |s| vec![s.delete(b"/1", true, true, NOW)],
        |s| vec![s.compare_and_delete(&k("/bin"), b"", 9999, NOW)],
        |s| {
            s.delete_expired(NOW + 10 * NS)
                .into_iter()
                .map(Ok)
                .collect()
        },
        |s| vec![s.set(&k("/t1"), false, b"back", ttl(1), NOW)],
        |s| {
            s.delete_expired(NOW + 1000 * NS)
                .into_iter()
                .map(Ok)
                .collect()
        },
        |s| vec![s.get(b"/", true, NOW).map(Arc::new)],
    ];
    for (i, op) in ops.iter().enumerate() {
        let text = |rs: Vec<Result<Arc<Event>, Error>>| -> Vec<String> {
            rs.iter()
                .map(|r| match r {
                    Ok(e) => e.to_json_string(b""),
                    Err(e) => ejs(e),
                })
                .collect()
        };
        assert_eq!(text(op(a)), text(op(b)), "op {i}");
    }
    assert!(!a.has_ttl_keys() && !b.has_ttl_keys());
    assert_eq!(dump(a), dump(b));
}

#[test]
fn round_trip_of_a_rich_store() {
    for churn in [false, true] {
        let mut a = rich(churn);
        let mut b = round_trip(&a);
        assert_eq!(dump(&a), dump(&b), "churn {churn}");
        assert_eq!(a.history().count(), b.history().count());
        assert!(a.next_expiry_ns().is_some());
        same_behaviour(&mut a, &mut b);
    }
}

#[test]
fn round_trip_of_a_new_store() {
    let mut a = store();
    let mut b = round_trip(&a);
    assert_eq!(b.index(), 0);
    assert_eq!(b.history().count(), 0);
    assert_eq!(dump_tree(&b), dump_tree(&a));
    // The namespaces stay read-only.
    let e = b.delete(b"/1", true, true, NOW).unwrap_err();
    assert_eq!(e.code, Code::RootReadOnly);
    set(&mut a, "/x", "1");
    set(&mut b, "/x", "1");
    assert_eq!(dump_tree(&a), dump_tree(&b));
}

fn dump_tree(s: &Store) -> String {
    s.get(b"/", true, NOW).unwrap().to_json_string(b"")
}

#[test]
fn history_replay_works_after_restore() {
    let a = rich(true);
    let mut b = round_trip(&a);
    let last = b.index();
    let e = ready(&mut b, "/churn/3", false, last - 20);
    assert_eq!(e.etcd_index, last);
    assert!(e.index() >= last - 20);
    let err = b
        .watch(&k("/a"), false, false, 1, Rec::default().boxed())
        .err()
        .expect("401 for a cleared index");
    assert_eq!(err.code, Code::EventIndexCleared);
    assert_eq!(err.index, last);
}

#[test]
fn the_format_is_pinned() {
    let mut s = store();
    set(&mut s, "/a", "x");
    let mut want = b"FRTSNAP\x01".to_vec();
    want.push(1); // index
    want.extend_from_slice(b"\x03\x01/\x02/0\x02/1"); // namespaces
    want.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // stats
    want.extend_from_slice(b"\x01\x02\x00\x01"); // one set event, etcd index 1
    want.extend_from_slice(b"\x02\x04/1/a\x01x\x00\x01\x01\x00"); // its node
    want.extend_from_slice(b"\x01\x00\x00\x02"); // root, 2 children
    want.extend_from_slice(b"\x010\x01\x00\x00\x00"); // /0, empty
    want.extend_from_slice(b"\x011\x01\x00\x00\x01"); // /1, 1 child
    want.extend_from_slice(b"\x01a\x00\x01\x01\x01x"); // /1/a
    assert_eq!(s.snapshot(), want);
    assert_eq!(SNAPSHOT_VERSION, 1);
}

#[test]
fn expiry_times_are_fixed_width() {
    let mut s = store();
    s.set(&k("/t"), false, b"v", ttl(1), NOW).unwrap();
    let b = s.snapshot();
    let exp = (NOW + NS).to_le_bytes();
    assert!(b.windows(8).any(|w| w == exp));
    let r = Store::from_snapshot(&b).unwrap();
    assert_eq!(r.next_expiry_ns(), Some(NOW + NS));
}

// ----- restore_in_place --------------------------------------------------

/// A leader and a follower that stopped applying at `behind` writes.
fn leader_and_follower(behind: usize, more: usize) -> (Store, Store) {
    let mut leader = store();
    let mut follower = store();
    for i in 0..behind {
        set(&mut leader, "/base", &i.to_string());
        set(&mut follower, "/base", &i.to_string());
    }
    for i in 0..more {
        set(&mut leader, &format!("/more/{}", i % 3), "m");
    }
    (leader, follower)
}

#[test]
fn restore_in_place_keeps_a_waiting_watcher() {
    let (mut leader, mut follower) = leader_and_follower(5, 10);
    let (rec, _) = wait(&mut follower, "/next", false, false, 0);
    let (srec, _) = wait(&mut follower, "/base", true, true, 0);
    follower.restore_in_place(&leader.snapshot()).unwrap();
    assert_eq!(follower.index(), 15);
    assert_eq!(dump(&follower), dump(&leader));
    assert_eq!(follower.watcher_count(), 2);
    assert_eq!(rec.len(), 0);

    let e = set(&mut follower, "/next", "1");
    set(&mut leader, "/next", "1");
    assert_eq!(rec.seen(), ["set /1/next@16"]);
    assert_eq!(js(&rec.events.lock().unwrap()[0]), js(&e));
    set(&mut follower, "/base", "again");
    set(&mut follower, "/base", "and again");
    assert_eq!(srec.seen(), ["set /1/base@17", "set /1/base@18"]);
    assert_eq!(follower.watcher_count(), 1, "the stream stays");
}

#[test]
fn restore_in_place_catches_watchers_up_on_skipped_events() {
    let (leader, mut follower) = leader_and_follower(5, 10);
    // /more/1 changed at 7, 10 and 13 while the follower was behind.
    let (once, _) = wait(&mut follower, "/more/1", false, false, 0);
    let (stream, _) = wait(&mut follower, "/more", true, true, 0);
    let (later, _) = wait(&mut follower, "/more/2", false, false, 13);
    follower.restore_in_place(&leader.snapshot()).unwrap();
    assert_eq!(once.seen(), ["set /1/more/1@7"]);
    assert_eq!(stream.len(), 10);
    assert_eq!(later.seen(), ["set /1/more/2@14"]);
    assert_eq!(follower.watcher_count(), 1);
    set(&mut follower, "/more/x", "1");
    assert_eq!(stream.seen().last().unwrap(), "set /1/more/x@16");
    // What a re-watch from the same index would have answered.
    let mut fresh = Store::from_snapshot(&leader.snapshot()).unwrap();
    assert_eq!(js(&once.events.lock().unwrap()[0]), {
        let mut e = Event::clone(&ready(&mut fresh, "/more/1", false, 6));
        e.etcd_index = 7;
        js(&e)
    });
}

#[test]
fn restore_in_place_drops_watchers_whose_events_are_gone() {
    // The follower waits from index 6; the leader's history starts later.
    let (leader, mut follower) = leader_and_follower(5, 1500);
    let (rec, _) = wait(&mut follower, "/base", false, false, 0);
    let (far, _) = wait(&mut follower, "/base", false, false, 3000);
    follower.restore_in_place(&leader.snapshot()).unwrap();
    assert_eq!(rec.len(), 0);
    assert_eq!(follower.watcher_count(), 1, "only the one still ahead");
    let err = follower
        .watch(&k("/base"), false, false, 6, Rec::default().boxed())
        .err()
        .unwrap();
    assert_eq!(err.code, Code::EventIndexCleared);
    for i in 0..1500 {
        set(&mut follower, "/base", &i.to_string());
    }
    assert_eq!(far.seen(), ["set /1/base@3000"]);
}

#[test]
fn restore_in_place_of_bad_bytes_changes_nothing() {
    let (leader, mut follower) = leader_and_follower(5, 10);
    let (rec, _) = wait(&mut follower, "/base", false, false, 0);
    let before = follower.snapshot();
    let mut bytes = leader.snapshot();
    bytes.pop();
    assert!(follower.restore_in_place(&bytes).is_err());
    assert_eq!(follower.snapshot(), before);
    assert_eq!(follower.watcher_count(), 1);
    set(&mut follower, "/base", "x");
    assert_eq!(rec.seen(), ["set /1/base@6"]);
}

// ----- corrupt input -----------------------------------------------------

#[test]
fn every_truncation_is_an_error() {
    let bytes = rich(false).snapshot();
    for cut in 0..bytes.len() {
        let r = Store::from_snapshot(&bytes[..cut]);
        assert!(r.is_err(), "cut at {cut} of {}", bytes.len());
    }
    assert_eq!(
        Store::from_snapshot(b"FRT").err(),
        Some(SnapshotError::Truncated(3))
    );
}

#[test]
fn header_and_trailer_are_checked() {
    let bytes = rich(false).snapshot();
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(
        Store::from_snapshot(&bad).err(),
        Some(SnapshotError::BadMagic)
    );
    assert_eq!(
        Store::from_snapshot(b"").err(),
        Some(SnapshotError::Truncated(0))
    );
    assert_eq!(
        Store::from_snapshot(b"{}").err(),
        Some(SnapshotError::BadMagic)
    );
    let mut bad = bytes.clone();
    bad[7] = 2;
    assert_eq!(
        Store::from_snapshot(&bad).err(),
        Some(SnapshotError::UnsupportedVersion(2))
    );
    let mut bad = bytes.clone();
    bad.push(0);
    assert!(matches!(
        Store::from_snapshot(&bad),
        Err(SnapshotError::Corrupt {
            what: "bytes after the end",
            ..
        })
    ));
}

/// The pinned one-key snapshot with `f` applied, decoded.
fn tweak(f: impl FnOnce(&mut Vec<u8>)) -> Result<Store, SnapshotError> {
    let mut s = store();
    set(&mut s, "/a", "x");
    let mut b = s.snapshot();
    f(&mut b);
    Store::from_snapshot(&b)
}

fn corrupt_what(r: Result<Store, SnapshotError>) -> &'static str {
    match r {
        Err(SnapshotError::Corrupt { what, .. }) => what,
        Err(e) => panic!("expected corrupt, got {e}"),
        Ok(_) => panic!("expected corrupt, got a store"),
    }
}

#[test]
fn invariants_are_checked() {
    let len = tweak(|_| {}).unwrap().snapshot().len();
    // The tail is `01 '1' 01 00 00 01` (dir /1, one child) then
    // `01 'a' 00 01 01 01 'x'` (key /1/a). Rename /1 to "0", a duplicate.
    let one = len - 12;
    assert_eq!(
        corrupt_what(tweak(|b| b[one] = b'0')),
        "names not in strictly increasing order"
    );
    assert_eq!(
        corrupt_what(tweak(|b| b[len - 6] = b'/')),
        "invalid node name"
    );
    // The key's modified index past the current index.
    assert_eq!(
        corrupt_what(tweak(|b| b[len - 3] = 2)),
        "node indexes out of order"
    );
    // Unknown node flags on the key.
    assert_eq!(
        corrupt_what(tweak(|b| b[len - 5] = 4)),
        "unknown node flags"
    );
    // The current index 1 written in two bytes.
    assert_eq!(
        corrupt_what(tweak(|b| {
            b.splice(8..9, [0x81, 0x00]);
        })),
        "varint not minimal"
    );
    // The event action 0 (get): after the header, the index, 9 bytes of
    // namespaces, 15 of stats and the event count.
    let ev = 8 + 1 + 9 + 15 + 1;
    assert_eq!(corrupt_what(tweak(|b| b[ev] = 0)), "unknown event action");
    // A history longer than 1000 events.
    let mut s = store();
    for i in 0..1000 {
        set(&mut s, "/a", &i.to_string());
    }
    let mut b = s.snapshot();
    let at = 8 + 2 + 9 + 16; // 1000 (index, setsSuccess) takes 2 bytes
    assert_eq!(&b[at..at + 2], &[0xe8, 0x07]);
    b[at] = 0xe9;
    assert_eq!(
        corrupt_what(Store::from_snapshot(&b)),
        "history longer than its capacity"
    );
}

/// xorshift64*: deterministic, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_corruption_never_panics() {
    let bytes = rich(false).snapshot();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for round in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            if round % 2 == 0 {
                b[i] ^= 1 << rng.below(8);
            } else {
                b[i] = rng.next() as u8;
            }
        }
        if round % 10 == 0 {
            b.truncate(rng.below(b.len() + 1));
        }
        if let Ok(mut s) = Store::from_snapshot(&b) {
            // A snapshot that still decodes gives a usable store.
            decoded += 1;
            let _ = s.get(b"/", true, NOW);
            let _ = s.set(&k("/a"), false, b"v", ttl(1), NOW);
            let _ = s.delete_expired(i64::MAX);
            let _ = s.watch(b"/", true, true, 1, Rec::default().boxed());
            assert_eq!(
                Store::from_snapshot(&s.snapshot()).unwrap().index(),
                s.index()
            );
        }
    }
    // Values and names can change and still decode; most flips cannot.
    assert!(decoded > 0 && decoded < 20_000, "decoded {decoded}");
    eprintln!("{decoded} of 20000 corrupted snapshots still decoded");
}

#[test]
fn random_garbage_after_the_header_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let mut b = b"FRTSNAP\x01".to_vec();
        for _ in 0..rng.below(64) {
            b.push(if rng.below(2) == 0 {
                rng.below(4) as u8
            } else {
                rng.next() as u8
            });
        }
        let _ = Store::from_snapshot(&b);
    }
}

#[test]
fn a_deep_tree_round_trips() {
    let mut s = store();
    let deep = "/d".repeat(200);
    set(&mut s, &deep, "bottom");
    let r = round_trip(&s);
    assert_eq!(
        r.get(&k(&deep), false, NOW).unwrap().node.value.as_deref(),
        Some(&b"bottom"[..])
    );
}
