//! Restart and crash recovery: the consistent index and the data it
//! covers, replay after a crash, restored leases and compactions.

use std::time::Duration;

use ferret_proto::etcdserverpb::PutRequest;

use super::{b, config, s, Harness};
use crate::{Storage, V3Request};

fn file(dir: &tempfile::TempDir) -> Storage {
    Storage::File(dir.path().join("db"))
}

#[test]
fn a_clean_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (rev, all, index) = {
        let mut h = Harness::open(file(&dir), config());
        h.put("a", "1");
        h.put("b", "2");
        h.del("a", "");
        h.put("c", "3");
        h.grant(5, 100).unwrap();
        h.put_req(PutRequest {
            key: b("l"),
            value: b("v"),
            lease: 5,
            ..Default::default()
        })
        .unwrap();
        h.compact(3).unwrap().wait(Duration::from_secs(10));
        (h.rev(), h.all(0), h.index)
    };
    let h = Harness::open(file(&dir), config());
    assert_eq!(h.index, index, "the consistent index is the last entry");
    assert_eq!(h.rev(), rev);
    assert_eq!(h.all(0), all);
    assert_eq!(
        h.all(3),
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    assert_eq!(h.m.compact_rev(), 3);
    let kv = h.get("b").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (3, 3, 1));
    let le = h.m.lessor();
    let l = le.get(5).expect("lease restored");
    assert_eq!(l.ttl, 100);
    assert_eq!(l.keys.iter().map(|k| s(k)).collect::<Vec<_>>(), ["l"]);
}

#[test]
fn a_crash_before_the_backend_commit_is_replayed_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.batch_interval = Duration::from_secs(3600);
    // The "log": every entry applied, as the WAL would hold it.
    let puts: Vec<PutRequest> = (0..20)
        .map(|i| PutRequest {
            key: b(&format!("k{}", i % 7)),
            value: b(&i.to_string()),
            ..Default::default()
        })
        .collect();
    let (flushed_at, all, rev) = {
        let mut h = Harness::open(file(&dir), cfg.clone());
        for p in &puts[..8] {
            h.put_req(p.clone()).unwrap();
        }
        h.m.flush().unwrap();
        let flushed_at = h.index;
        for p in &puts[8..] {
            h.put_req(p.clone()).unwrap();
        }
        let out = (flushed_at, h.all(0), h.rev());
        h.m.crash();
        out
    };
    let mut h = Harness::open(file(&dir), cfg);
    assert_eq!(h.index, flushed_at);
    assert!(h.rev() < rev);
    // Replaying the whole log: entries up to the consistent index are
    // skipped, the rest applied again.
    for (i, p) in puts.iter().enumerate() {
        let out =
            h.a.apply(i as u64 + 1, V3Request::Put(p), std::time::Instant::now());
        assert_eq!(out.is_none(), (i as u64) < flushed_at, "entry {}", i + 1);
    }
    assert_eq!(h.rev(), rev);
    assert_eq!(h.all(0), all);
}

#[test]
fn an_interrupted_compaction_finishes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = Harness::open(file(&dir), config());
        for i in 0..30 {
            h.put("k", &i.to_string());
        }
        h.m.flush().unwrap();
        // Schedule a compaction and crash right away; the scheduled
        // revision may or may not have been committed.
        let _ = h.compact(20).unwrap();
        h.m.flush().unwrap();
        h.m.crash();
    }
    let h = Harness::open(file(&dir), config());
    assert_eq!(h.m.compact_rev(), 20);
    // The backend thread finishes it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::backend::kv_len(&h.m.db()) > 12 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        crate::backend::kv_len(&h.m.db()),
        12,
        "revisions 20..=31 stay"
    );
    assert_eq!(s(&h.get("k").unwrap().value), "29");
}

#[test]
fn non_v3_entries_advance_the_consistent_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = Harness::open(file(&dir), config());
        h.put("a", "1"); // entry 1
        h.a.skip(2);
        h.a.skip(3);
        h.index = 3;
        h.m.flush().unwrap();
    }
    let h = Harness::open(file(&dir), config());
    assert_eq!(h.index, 3);
}
