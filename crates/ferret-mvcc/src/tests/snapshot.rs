//! Moving a backend to a follower: chunks out, chunks in, install.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::PutRequest;

use super::{b, config, Harness};
use crate::watch::{WatchBatch, WatchSink, WatchSpec};
use crate::{SnapshotWriter, Storage, V3Request};

#[derive(Default)]
struct Sink(Mutex<Vec<WatchBatch>>);

impl WatchSink for Sink {
    fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
        self.0.lock().unwrap().push(b);
        Ok(())
    }
}

#[test]
fn a_follower_takes_the_leaders_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Harness::memory();
    let big = "x".repeat(3000);
    for i in 0..1200 {
        leader.put(&format!("k{:04}", i % 900), &big); // > 1 MiB: several chunks
    }
    leader.del("k0000", "k0010");
    leader.grant(42, 300).unwrap();
    leader
        .put_req(PutRequest {
            key: b("leased"),
            value: b("v"),
            lease: 42,
            ..Default::default()
        })
        .unwrap();
    leader.compact(600).unwrap().wait(Duration::from_secs(10));

    let mut follower = Harness::open(Storage::File(dir.path().join("db")), config());
    follower.put("stale", "old");
    let sink = Arc::new(Sink::default());
    follower.m.watch(
        WatchSpec {
            key: b("leased"),
            range_end: b(""),
            start_rev: 0,
            no_put: false,
            no_delete: false,
            watch_id: 3,
        },
        sink.clone(),
    );

    let mut reader = leader.m.snapshot_reader().unwrap();
    assert_eq!(reader.consistent_index(), leader.index);
    let mut writer = SnapshotWriter::create(Some(&dir.path().join("db.tmp"))).unwrap();
    let mut chunks = 0;
    while let Some(c) = reader.next_chunk().unwrap() {
        assert!(c.len() < 2 * 1024 * 1024, "chunks stay small");
        writer.push(&c).unwrap();
        chunks += 1;
    }
    assert!(chunks > 3);
    let prepared = writer.finish(2, None).unwrap();
    let restored = follower.a.install(prepared).unwrap();
    assert_eq!(restored.consistent_index, leader.index);
    assert_eq!(follower.rev(), leader.rev());
    assert_eq!(follower.all(0), leader.all(0));
    assert_eq!(follower.all(600), leader.all(600));
    assert_eq!(follower.m.compact_rev(), 600);
    assert_eq!(follower.m.lessor().get(42).unwrap().keys.len(), 1);
    assert!(
        !dir.path().join("db.tmp").exists(),
        "renamed over the old file"
    );

    // Entries up to the copy's consistent index are skipped, later ones apply.
    let p = PutRequest {
        key: b("leased"),
        value: b("w"),
        lease: 42,
        ..Default::default()
    };
    assert!(follower
        .a
        .apply(leader.index, V3Request::Put(&p), Instant::now())
        .is_none());
    follower.index = leader.index;
    follower.put_req(p).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.0.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !sink.0.lock().unwrap().is_empty(),
        "watchers survive the install"
    );

    // And the new file is what a restart opens.
    let all = follower.all(0);
    drop(follower);
    let again = Harness::open(Storage::File(dir.path().join("db")), config());
    assert_eq!(again.all(0), all);
}
