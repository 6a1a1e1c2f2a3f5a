//! Defragmentation while the store is written and read.

use std::time::Duration;

use super::{config, Harness};
use crate::Storage;

fn file(dir: &tempfile::TempDir) -> Storage {
    Storage::File(dir.path().join("db"))
}

#[test]
fn defragment_reclaims_space_while_writes_go_on_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::open(file(&dir), config());
    let value = "v".repeat(2000);
    for i in 0..3000 {
        h.put(&format!("k{:05}", i % 1000), &value);
    }
    let rev = h.rev();
    h.compact(rev).unwrap().wait(Duration::from_secs(30));
    h.m.flush().unwrap();
    let (before, in_use) = h.m.db_sizes().unwrap();
    assert!(
        before > 2 * in_use,
        "compaction freed space: {before} vs {in_use}"
    );

    let m = h.m.clone();
    let defrag = std::thread::spawn(move || m.defragment());
    // Writes and reads go on meanwhile.
    let mut n = 0;
    while !defrag.is_finished() || n < 50 {
        h.put(&format!("during{n:05}"), "x");
        assert_eq!(h.get("k00001").unwrap().value.len(), 2000);
        n += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
    let d = defrag.join().unwrap().expect("defragmented");
    assert!(d.size_after < d.size_before * 3 / 5, "{d:?}");
    assert!(!dir.path().join("db.defrag").exists());
    h.put("after", "y");
    h.m.flush().unwrap();
    let (after, in_use_after) = h.m.db_sizes().unwrap();
    assert!(
        after < before * 3 / 5 && after < in_use_after * 5 / 4,
        "the file shrank to about what is in use: {before} -> {after} ({in_use_after} in use, {n} writes during the defragmentation)"
    );
    let all = h.all(0);
    assert_eq!(all.len(), 1000 + n + 1);

    // What a restart reads is the same, up to the last write.
    let last = h.rev();
    drop(h);
    let h = Harness::open(file(&dir), config());
    assert_eq!(h.rev(), last);
    assert_eq!(h.all(0), all);
    assert_eq!(h.m.compact_rev(), rev);
}

#[test]
fn the_copy_of_an_interrupted_defragmentation_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = Harness::open(file(&dir), config());
        h.put("a", "1");
        h.m.flush().unwrap();
    }
    std::fs::write(dir.path().join("db.defrag"), b"half a copy").unwrap();
    let h = Harness::open(file(&dir), config());
    assert!(!dir.path().join("db.defrag").exists());
    assert_eq!(h.get("a").unwrap().value, &b"1"[..]);
}

#[test]
fn defragmenting_a_store_in_memory_does_nothing() {
    let mut h = Harness::memory();
    h.put("a", "1");
    let d = h.m.defragment().unwrap();
    assert_eq!(d.size_before, d.size_after);
    assert_eq!(h.get("a").unwrap().value, &b"1"[..]);
}
