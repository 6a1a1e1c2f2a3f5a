//! Watches against the real store: catch-up from the backend and the
//! queue, then live events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferret_proto::mvccpb::event::EventType;

use super::{b, Harness};
use crate::watch::{WatchBatch, WatchSink, WatchSpec};

#[derive(Default)]
struct Sink(Mutex<Vec<WatchBatch>>);

impl WatchSink for Sink {
    fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
        self.0.lock().unwrap().push(b);
        Ok(())
    }
}

impl Sink {
    fn events(&self) -> Vec<(i32, String, i64)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.events.iter())
            .map(|e| {
                let kv = e.kv.as_ref().unwrap();
                (
                    e.r#type,
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    kv.mod_revision,
                )
            })
            .collect()
    }

    fn wait_for(&self, n: usize) -> Vec<(i32, String, i64)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let e = self.events();
            if e.len() >= n || Instant::now() > deadline {
                return e;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn spec(key: &str, end: &str, start: i64) -> WatchSpec {
    WatchSpec {
        key: b(key),
        range_end: b(end),
        start_rev: start,
        no_put: false,
        no_delete: false,
        watch_id: 1,
    }
}

const PUT: i32 = EventType::Put as i32;
const DEL: i32 = EventType::Delete as i32;

#[test]
fn watch_from_the_past_replays_then_follows() {
    let mut h = Harness::memory();
    h.put("a/1", "x"); // 2
    h.put("b", "x"); // 3
    h.del("a/1", ""); // 4
    h.m.flush().unwrap();
    h.put("a/2", "x"); // 5, still queued
    let sink = Arc::new(Sink::default());
    let k = h.m.watch(spec("a/", "a0", 2), sink.clone());
    assert_eq!(
        sink.wait_for(3),
        vec![
            (PUT, "a/1".into(), 2),
            (DEL, "a/1".into(), 4),
            (PUT, "a/2".into(), 5)
        ]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.m.watch_is_synced(k) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(h.m.watch_is_synced(k));
    h.put("a/3", "x"); // 6
    assert_eq!(sink.wait_for(4).last().unwrap(), &(PUT, "a/3".into(), 6));
}

#[test]
fn events_of_one_revision_arrive_together() {
    let mut h = Harness::memory();
    let sink = Arc::new(Sink::default());
    h.m.watch(spec("k", "l", 0), sink.clone());
    for i in 0..3 {
        h.put(&format!("k{i}"), "x");
    }
    h.del("k", "l");
    sink.wait_for(6);
    let batches = sink.0.lock().unwrap().clone();
    let last = batches.last().unwrap();
    assert_eq!(last.events.len(), 3);
    assert!(last
        .events
        .iter()
        .all(|e| e.kv.as_ref().unwrap().mod_revision == 5));
    assert_eq!(last.revision, 5);
}

#[test]
fn watching_during_writes_misses_nothing_and_repeats_nothing() {
    let mut h = Harness::memory();
    for i in 0..300 {
        h.put("k", &i.to_string());
    }
    let sink = Arc::new(Sink::default());
    h.m.watch(spec("k", "", 2), sink.clone());
    for i in 300..600 {
        h.put("k", &i.to_string());
    }
    let got = sink.wait_for(600);
    let revs: Vec<i64> = got.iter().map(|e| e.2).collect();
    assert_eq!(revs, (2..=601).collect::<Vec<_>>());
}

/// A deletion at exactly the compacted revision reaches a watcher that
/// starts there (etcd allows a watch from the compacted revision), also
/// after a restart, and is gone after the next compaction. etcd 3.4.23
/// dropped it (etcd-io/etcd#18274); the fault suite found the same miss.
#[test]
fn a_deletion_at_the_compacted_revision_reaches_a_watch_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = || crate::Storage::File(dir.path().join("db"));
    {
        let mut h = Harness::open(storage(), super::config());
        h.put("k/a", "1"); // 2
        h.put("k/b", "1"); // 3
        h.del("k/a", ""); // 4
        h.compact(4).unwrap().wait(Duration::from_secs(10));
        let sink = Arc::new(Sink::default());
        h.m.watch(spec("k/", "k0", 4), sink.clone());
        assert_eq!(sink.wait_for(1), vec![(DEL, "k/a".into(), 4)]);
        h.m.flush().unwrap();
    }
    let mut h = Harness::open(storage(), super::config());
    let sink = Arc::new(Sink::default());
    h.m.watch(spec("k/", "k0", 4), sink.clone());
    assert_eq!(sink.wait_for(1), vec![(DEL, "k/a".into(), 4)]);
    h.put("k/c", "1"); // 5
    h.compact(5).unwrap().wait(Duration::from_secs(10));
    let sink = Arc::new(Sink::default());
    h.m.watch(spec("k/", "k0", 5), sink.clone());
    assert_eq!(sink.wait_for(1), vec![(PUT, "k/c".into(), 5)]);
    assert_eq!(
        h.all(0),
        vec![("k/b".into(), "1".into()), ("k/c".into(), "1".into())]
    );
}
