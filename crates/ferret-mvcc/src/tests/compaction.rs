//! Compaction: what stays readable, what leaves the backend, and errors.

use std::time::Duration;

use ferret_proto::etcdserverpb::RangeRequest;

use super::{b, s, Harness};
use crate::{backend, MvccError};

#[test]
fn compaction_keeps_reads_at_or_after_it() {
    let mut h = Harness::memory();
    h.put("a", "1"); // 2
    h.put("a", "2"); // 3
    h.put("b", "1"); // 4
    h.del("b", ""); // 5
    h.put("c", "1"); // 6
    let before: Vec<_> = (5..=6).map(|r| h.all(r)).collect();
    let done = h.compact(5).unwrap();
    assert!(done.wait(Duration::from_secs(10)));
    assert_eq!((5..=6).map(|r| h.all(r)).collect::<Vec<_>>(), before);
    assert_eq!(h.m.compact_rev(), 5);
    for rev in 1..5 {
        assert_eq!(
            h.range(RangeRequest {
                key: b("a"),
                revision: rev,
                ..Default::default()
            }),
            Err(MvccError::Compacted),
            "at {rev}"
        );
    }
    // Versions survive compaction.
    assert_eq!(h.get("a").unwrap().version, 2);
}

#[test]
fn compaction_errors() {
    let mut h = Harness::memory();
    h.put("a", "1");
    h.put("a", "2"); // 3
    assert_eq!(h.compact(4).err(), Some(MvccError::FutureRev));
    h.compact(2).unwrap().wait(Duration::from_secs(10));
    assert_eq!(h.compact(2).err(), Some(MvccError::Compacted));
    assert_eq!(h.compact(1).err(), Some(MvccError::Compacted));
    h.compact(3).unwrap();
    // A compaction is an entry without a new revision.
    assert_eq!(h.rev(), 3);
}

#[test]
fn physical_compaction_removes_superseded_revisions() {
    let mut h = Harness::memory();
    for i in 0..50 {
        h.put("hot", &i.to_string()); // 2..=51
    }
    h.put("gone", "x"); // 52
    h.del("gone", ""); // 53
    h.put("cold", "x"); // 54
    h.m.flush().unwrap();
    assert_eq!(backend::kv_len(&h.m.db()), 53);
    let done = h.compact(54).unwrap();
    assert!(done.wait(Duration::from_secs(10)));
    // Left: the latest "hot" (51) and "cold" (54).
    assert_eq!(backend::kv_len(&h.m.db()), 2);
    assert_eq!(s(&h.get("hot").unwrap().value), "49");
    assert_eq!(h.all(0).len(), 2);
}

#[test]
fn compaction_in_small_batches() {
    let mut cfg = super::config();
    cfg.compaction_batch_limit = 3;
    let mut h = Harness::open(crate::Storage::Memory, cfg);
    for i in 0..40 {
        h.put(&format!("k{}", i % 4), &i.to_string());
    }
    let done = h.compact(h.rev()).unwrap();
    assert!(done.wait(Duration::from_secs(10)));
    assert_eq!(backend::kv_len(&h.m.db()), 4);
    // Writes during and after compaction are unaffected.
    h.put("k0", "after");
    assert_eq!(s(&h.get("k0").unwrap().value), "after");
}

#[test]
fn watchers_get_compacted_revision() {
    use crate::watch::{WatchBatch, WatchSink, WatchSpec};
    use std::sync::{Arc, Mutex};
    struct Sink(Mutex<Vec<WatchBatch>>);
    impl WatchSink for Sink {
        fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
            self.0.lock().unwrap().push(b);
            Ok(())
        }
    }
    let mut h = Harness::memory();
    for i in 0..5 {
        h.put("k", &i.to_string());
    }
    h.compact(4).unwrap().wait(Duration::from_secs(10));
    let sink = Arc::new(Sink(Mutex::new(Vec::new())));
    h.m.watch(
        WatchSpec {
            key: b("k"),
            range_end: b(""),
            start_rev: 2,
            no_put: false,
            no_delete: false,
            watch_id: 7,
        },
        sink.clone(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].watch_id, got[0].compact_revision), (7, 4));
}

#[test]
fn a_first_compaction_at_zero_is_taken_once() {
    // etcd's compacted revision starts at -1: compacting at 0 succeeds
    // once, then it is "compacted" like any revision at or below it.
    let mut h = Harness::memory();
    h.put("a", "1");
    h.put("a", "2");
    assert_eq!(h.m.compact_rev(), -1);
    h.compact(0).unwrap().wait(Duration::from_secs(10));
    assert_eq!(h.m.compact_rev(), 0);
    assert_eq!(h.compact(0).err(), Some(MvccError::Compacted));
    // Nothing was removed: every revision still reads.
    for rev in 1..=3 {
        assert!(h
            .range(RangeRequest {
                key: b("a"),
                revision: rev,
                ..Default::default()
            })
            .is_ok());
    }
    h.compact(1).unwrap();
}
