//! The watch hub: which watcher gets which event, and catching up.
//!
//! Every watcher is in exactly one of three states, as in etcd's
//! `watchableStore`:
//!
//! - **synced**: it has every event up to the current revision. The apply
//!   path hands each revision's events straight to the synced watchers
//!   whose key or range they match ([`WatchHub::notify`]).
//! - **unsynced**: it starts in the past, or fell behind. The sync loop
//!   ([`WatchHub::sync`], every 100 ms) reads its events from the store by
//!   revision and sends them, at most [`MAX_REVS_PER_SEND`] revisions per
//!   send, until it has caught up; then it becomes synced.
//! - **victim**: a send failed because the watcher's stream was full (its
//!   client reads too slowly). The batch that did not fit is kept and
//!   retried by the sync loop; meanwhile writes never wait for it.
//!
//! Guarantees, for each watcher: events arrive in revision order; none
//! twice (each watcher's `min_rev` is the next revision it may receive;
//! every send raises it and nothing lowers it, not even a catch-up round
//! that reads from an older watcher's start); none missing (a watcher leaves a state only
//! once it has what that state owes it); all events of one revision in one
//! send (sends are split only at revision boundaries). A watcher whose
//! next revision was compacted away gets one batch with the compacted
//! revision and is removed.
//!
//! Locking: one mutex over the hub. The apply path publishes a revision
//! and then notifies under the mutex; the sync loop reads the store
//! *outside* the mutex, then delivers under it, reading under it only the
//! few revisions written meanwhile, so a slow catch-up never holds the
//! apply path back for long.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ferret_proto::mvccpb::{event::EventType, Event};

use crate::index::KeyRange;

/// Revisions sent to one watcher in one batch at most while catching up
/// (etcd's `watchBatchMaxRevs`).
pub const MAX_REVS_PER_SEND: i64 = 1000;
/// Unsynced watchers handled per sync round (etcd's `maxWatchersPerSync`).
pub const MAX_WATCHERS_PER_SYNC: usize = 512;
/// Revisions the sync loop may read while holding the hub's mutex to
/// finish a catch-up under a steady stream of writes.
const MAX_REVS_UNDER_LOCK: i64 = 64;

/// What a watcher's stream receives.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchBatch {
    /// The id the client's stream knows the watcher by.
    pub watch_id: i64,
    /// The store's revision when the batch was made (the response
    /// header's revision).
    pub revision: i64,
    pub events: Vec<Event>,
    /// Non-zero: the watcher's start was compacted away; it is removed.
    pub compact_revision: i64,
}

/// Where a watcher's batches go: the sending half of its stream. It must
/// not block; a full stream hands the batch back.
pub trait WatchSink: Send + Sync {
    fn try_send(&self, batch: WatchBatch) -> Result<(), WatchBatch>;
}

/// Reads events from the store for catching up.
pub trait EventSource {
    /// The published current revision.
    fn current_rev(&self) -> i64;
    /// Revisions below this are gone.
    fn compact_rev(&self) -> i64;
    /// Every event with main revision in `from..=to`, in revision order.
    fn events(&self, from: i64, to: i64) -> Vec<Event>;
}

/// What to watch.
#[derive(Clone)]
pub struct WatchSpec {
    pub key: Bytes,
    /// etcd's `range_end`: empty for one key, `"\0"` for every key from
    /// `key` on.
    pub range_end: Bytes,
    /// The first revision to send.
    pub start_rev: i64,
    pub no_put: bool,
    pub no_delete: bool,
    pub watch_id: i64,
}

/// A watcher's handle in the hub.
pub type WatcherKey = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Synced,
    Unsynced,
    Victim,
}

struct Watcher {
    spec: WatchSpec,
    /// The next revision this watcher may receive.
    min_rev: i64,
    sink: Arc<dyn WatchSink>,
    state: State,
    /// A victim's batch that did not fit.
    pending: Option<WatchBatch>,
}

impl Watcher {
    fn range(&self) -> KeyRange<'_> {
        KeyRange::new(&self.spec.key, &self.spec.range_end)
    }

    fn wants(&self, ev: &Event) -> bool {
        let put = ev.r#type == EventType::Put as i32;
        !((put && self.spec.no_put) || (!put && self.spec.no_delete))
    }
}

#[derive(Default)]
struct Hub {
    watchers: HashMap<WatcherKey, Watcher>,
    /// Synced single-key watchers by key.
    synced_keys: HashMap<Bytes, HashSet<WatcherKey>>,
    /// Synced range watchers by range start.
    synced_ranges: BTreeMap<(Bytes, WatcherKey), ()>,
    unsynced: HashSet<WatcherKey>,
    victims: HashSet<WatcherKey>,
    next_key: WatcherKey,
}

impl Hub {
    fn add_synced(&mut self, k: WatcherKey) {
        let w = self.watchers.get_mut(&k).expect("known watcher");
        w.state = State::Synced;
        if w.spec.range_end.is_empty() {
            self.synced_keys
                .entry(w.spec.key.clone())
                .or_default()
                .insert(k);
        } else {
            self.synced_ranges.insert((w.spec.key.clone(), k), ());
        }
    }

    fn remove_from_state(&mut self, k: WatcherKey) {
        let Some(w) = self.watchers.get(&k) else {
            return;
        };
        match w.state {
            State::Synced => {
                if w.spec.range_end.is_empty() {
                    if let Some(set) = self.synced_keys.get_mut(&w.spec.key) {
                        set.remove(&k);
                        if set.is_empty() {
                            self.synced_keys.remove(&w.spec.key);
                        }
                    }
                } else {
                    self.synced_ranges.remove(&(w.spec.key.clone(), k));
                }
            }
            State::Unsynced => {
                self.unsynced.remove(&k);
            }
            State::Victim => {
                self.victims.remove(&k);
            }
        }
    }

    fn set_state(&mut self, k: WatcherKey, s: State) {
        self.remove_from_state(k);
        match s {
            State::Synced => self.add_synced(k),
            State::Unsynced => {
                self.watchers.get_mut(&k).expect("known").state = State::Unsynced;
                self.unsynced.insert(k);
            }
            State::Victim => {
                self.watchers.get_mut(&k).expect("known").state = State::Victim;
                self.victims.insert(k);
            }
        }
    }

    /// Synced watchers interested in `key`.
    fn synced_for(&self, key: &[u8], out: &mut Vec<WatcherKey>) {
        if let Some(set) = self.synced_keys.get(key) {
            out.extend(set.iter().copied());
        }
        for ((start, k), ()) in self
            .synced_ranges
            .range(..=(Bytes::copy_from_slice(key), u64::MAX))
        {
            debug_assert!(&start[..] <= key);
            if let Some(w) = self.watchers.get(k) {
                if w.range().contains(key) {
                    out.push(*k);
                }
            }
        }
    }
}

/// Watchers of one member.
#[derive(Default)]
pub struct WatchHub {
    hub: Mutex<Hub>,
}

impl WatchHub {
    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a watcher. `current` must be the published revision, read by
    /// the caller *while no notification can interleave*: the store calls
    /// this through [`crate::Mvcc::watch`], which takes care of it.
    pub(crate) fn add(
        &self,
        spec: WatchSpec,
        sink: Arc<dyn WatchSink>,
        current: impl FnOnce() -> i64,
    ) -> WatcherKey {
        let mut hub = self.lock();
        let current = current();
        let k = hub.next_key;
        hub.next_key += 1;
        let start = spec.start_rev;
        // etcd: a watcher starting at 0 or in the future is synced.
        let synced = start > current || start == 0;
        let min_rev = if synced {
            start.max(current + 1)
        } else {
            start
        };
        hub.watchers.insert(
            k,
            Watcher {
                spec,
                min_rev,
                sink,
                state: State::Unsynced,
                pending: None,
            },
        );
        if synced {
            hub.add_synced(k);
        } else {
            hub.unsynced.insert(k);
        }
        k
    }

    /// Every watcher catches up from the store again (its backend was
    /// replaced by a snapshot).
    pub(crate) fn resync_all(&self) {
        let mut hub = self.lock();
        let keys: Vec<WatcherKey> = hub
            .watchers
            .iter()
            .filter(|(_, w)| w.state == State::Synced)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            hub.set_state(k, State::Unsynced);
        }
    }

    /// Removes a watcher; `false` if it was not there.
    pub fn cancel(&self, k: WatcherKey) -> bool {
        let mut hub = self.lock();
        hub.remove_from_state(k);
        hub.watchers.remove(&k).is_some()
    }

    pub fn len(&self) -> usize {
        self.lock().watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many watchers are not synced (unsynced or victims).
    pub fn lagging(&self) -> usize {
        let hub = self.lock();
        hub.unsynced.len() + hub.victims.len()
    }

    /// The events of revision `rev` (published before this call): every
    /// synced watcher that matches gets them in one batch.
    pub(crate) fn notify(&self, rev: i64, events: &[Event]) {
        let mut hub = self.lock();
        if hub.synced_keys.is_empty() && hub.synced_ranges.is_empty() {
            return;
        }
        let mut batches: Vec<(WatcherKey, Vec<Event>)> = Vec::new();
        let mut slot: HashMap<WatcherKey, usize> = HashMap::new();
        let mut interested = Vec::new();
        for ev in events {
            let Some(kv) = &ev.kv else { continue };
            interested.clear();
            hub.synced_for(&kv.key, &mut interested);
            for &k in &interested {
                let w = &hub.watchers[&k];
                if kv.mod_revision < w.min_rev || !w.wants(ev) {
                    continue;
                }
                let i = *slot.entry(k).or_insert_with(|| {
                    batches.push((k, Vec::new()));
                    batches.len() - 1
                });
                batches[i].1.push(ev.clone());
            }
        }
        for (k, events) in batches {
            let w = hub.watchers.get_mut(&k).expect("interested watchers exist");
            w.min_rev = rev + 1;
            let batch = WatchBatch {
                watch_id: w.spec.watch_id,
                revision: rev,
                events,
                compact_revision: 0,
            };
            if let Err(b) = w.sink.try_send(batch) {
                w.pending = Some(b);
                hub.set_state(k, State::Victim);
            }
        }
    }

    /// A progress notification: the store's revision, if the watcher is
    /// synced (a watcher still catching up gets events instead). `true` if
    /// one was sent.
    pub(crate) fn progress(&self, k: WatcherKey, current: i64) -> bool {
        let hub = self.lock();
        let Some(w) = hub.watchers.get(&k) else {
            return false;
        };
        if w.state != State::Synced {
            return false;
        }
        w.sink
            .try_send(WatchBatch {
                watch_id: w.spec.watch_id,
                revision: current,
                events: Vec::new(),
                compact_revision: 0,
            })
            .is_ok()
    }

    /// Whether the watcher is synced (all events up to the current
    /// revision sent).
    pub fn is_synced(&self, k: WatcherKey) -> bool {
        self.lock()
            .watchers
            .get(&k)
            .is_some_and(|w| w.state == State::Synced)
    }

    /// One round of catching up: victims first, then up to
    /// [`MAX_WATCHERS_PER_SYNC`] unsynced watchers. Returns whether work
    /// is left (the caller runs again soon rather than in 100 ms).
    pub fn sync(&self, src: &dyn EventSource) -> bool {
        self.retry_victims(src);
        self.sync_unsynced(src)
    }

    fn retry_victims(&self, src: &dyn EventSource) {
        let mut hub = self.lock();
        let victims: Vec<WatcherKey> = hub.victims.iter().copied().collect();
        let current = src.current_rev();
        for k in victims {
            let w = hub.watchers.get_mut(&k).expect("victims exist");
            let Some(batch) = w.pending.take() else {
                hub.set_state(k, State::Unsynced);
                continue;
            };
            match w.sink.try_send(batch) {
                Ok(()) => {
                    let next = if w.min_rev > current {
                        State::Synced
                    } else {
                        State::Unsynced
                    };
                    hub.set_state(k, next);
                }
                Err(b) => w.pending = Some(b),
            }
        }
    }

    fn sync_unsynced(&self, src: &dyn EventSource) -> bool {
        // Phase 1, under the lock: choose watchers, settle compacted ones.
        let (chosen, from) = {
            let mut hub = self.lock();
            if hub.unsynced.is_empty() {
                return !hub.victims.is_empty();
            }
            let compact = src.compact_rev();
            let current = src.current_rev();
            let mut chosen = Vec::new();
            let mut from = i64::MAX;
            let keys: Vec<WatcherKey> = hub.unsynced.iter().copied().collect();
            for k in keys {
                if chosen.len() == MAX_WATCHERS_PER_SYNC {
                    break;
                }
                let w = hub.watchers.get_mut(&k).expect("unsynced exist");
                if w.min_rev > current {
                    // Nothing to catch up (a future start).
                    hub.set_state(k, State::Synced);
                    continue;
                }
                if w.min_rev < compact {
                    // etcd sends the compaction notice with revision 0.
                    let b = WatchBatch {
                        watch_id: w.spec.watch_id,
                        revision: 0,
                        events: Vec::new(),
                        compact_revision: compact,
                    };
                    if w.sink.try_send(b).is_ok() {
                        hub.remove_from_state(k);
                        hub.watchers.remove(&k);
                    }
                    continue;
                }
                from = from.min(w.min_rev);
                chosen.push(k);
            }
            if chosen.is_empty() {
                return !hub.unsynced.is_empty() || !hub.victims.is_empty();
            }
            (chosen, from)
        };
        // Phase 2, without the lock: read the events.
        let target = src.current_rev();
        let upto = target.min(from + MAX_REVS_PER_SEND - 1);
        let mut events = src.events(from, upto);
        if src.compact_rev() > from {
            // Compacted while reading: the next round reports it.
            return true;
        }
        // Phase 3, under the lock: deliver.
        let mut hub = self.lock();
        let mut upto = upto;
        let current = src.current_rev();
        if upto == target && current > upto && current - upto <= MAX_REVS_UNDER_LOCK {
            events.extend(src.events(upto + 1, current));
            upto = current;
        }
        for k in chosen {
            let Some(w) = hub.watchers.get_mut(&k) else {
                continue; // cancelled meanwhile
            };
            if w.state != State::Unsynced {
                continue;
            }
            if w.min_rev > upto {
                // Ahead of this round's reads: a watcher added later with
                // an older start pulled `from` back. It has everything up
                // to its `min_rev`; lowering that would send revisions
                // twice. The next round's phase 1 syncs it if it is done.
                continue;
            }
            let mine: Vec<Event> = events
                .iter()
                .filter(|ev| {
                    ev.kv.as_ref().is_some_and(|kv| {
                        kv.mod_revision >= w.min_rev && w.range().contains(&kv.key)
                    }) && w.wants(ev)
                })
                .cloned()
                .collect();
            let caught_up = upto >= current;
            let old_min = w.min_rev;
            w.min_rev = upto + 1;
            if mine.is_empty() {
                if caught_up {
                    hub.set_state(k, State::Synced);
                }
                continue;
            }
            let batch = WatchBatch {
                watch_id: w.spec.watch_id,
                revision: current,
                events: mine,
                compact_revision: 0,
            };
            match w.sink.try_send(batch) {
                Ok(()) => {
                    if caught_up {
                        hub.set_state(k, State::Synced);
                    }
                }
                Err(_) => {
                    // Try again from the same place next round.
                    w.min_rev = old_min;
                }
            }
        }
        !hub.unsynced.is_empty() || !hub.victims.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_proto::mvccpb::KeyValue;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    /// A sink that accepts up to `room` batches until drained.
    #[derive(Default)]
    struct TestSink {
        got: Mutex<Vec<WatchBatch>>,
        room: AtomicUsize,
    }

    impl TestSink {
        fn new(room: usize) -> Arc<TestSink> {
            Arc::new(TestSink {
                got: Mutex::new(Vec::new()),
                room: AtomicUsize::new(room),
            })
        }
        fn take(&self) -> Vec<WatchBatch> {
            std::mem::take(&mut *self.got.lock().unwrap())
        }
        fn revs(&self) -> Vec<i64> {
            self.got
                .lock()
                .unwrap()
                .iter()
                .flat_map(|b| b.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision))
                .collect()
        }
    }

    impl WatchSink for TestSink {
        fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
            if self.room.load(Ordering::SeqCst) == 0 {
                return Err(b);
            }
            self.room.fetch_sub(1, Ordering::SeqCst);
            self.got.lock().unwrap().push(b);
            Ok(())
        }
    }

    /// A fake store: one put per revision on key k{rev % 3}.
    struct Log {
        events: Mutex<Vec<Event>>,
        current: AtomicI64,
        compact: AtomicI64,
    }

    impl Log {
        fn new() -> Log {
            Log {
                events: Mutex::new(Vec::new()),
                current: AtomicI64::new(1),
                compact: AtomicI64::new(0),
            }
        }
        fn put(&self, hub: &WatchHub, key: &str) -> i64 {
            let rev = self.current.fetch_add(1, Ordering::SeqCst) + 1;
            let ev = Event {
                r#type: EventType::Put as i32,
                kv: Some(KeyValue {
                    key: Bytes::copy_from_slice(key.as_bytes()),
                    mod_revision: rev,
                    ..Default::default()
                }),
                prev_kv: None,
            };
            self.events.lock().unwrap().push(ev.clone());
            hub.notify(rev, &[ev]);
            rev
        }
    }

    impl EventSource for Log {
        fn current_rev(&self) -> i64 {
            self.current.load(Ordering::SeqCst)
        }
        fn compact_rev(&self) -> i64 {
            self.compact.load(Ordering::SeqCst)
        }
        fn events(&self, from: i64, to: i64) -> Vec<Event> {
            self.events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| {
                    let r = e.kv.as_ref().unwrap().mod_revision;
                    r >= from && r <= to
                })
                .cloned()
                .collect()
        }
    }

    fn spec(key: &str, end: &str, start: i64) -> WatchSpec {
        WatchSpec {
            key: Bytes::copy_from_slice(key.as_bytes()),
            range_end: Bytes::copy_from_slice(end.as_bytes()),
            start_rev: start,
            no_put: false,
            no_delete: false,
            watch_id: 0,
        }
    }

    fn add(hub: &WatchHub, log: &Log, s: WatchSpec, sink: &Arc<TestSink>) -> WatcherKey {
        hub.add(s, sink.clone(), || log.current_rev())
    }

    #[test]
    fn synced_watchers_get_matching_events() {
        let hub = WatchHub::default();
        let log = Log::new();
        let one = TestSink::new(100);
        let prefix = TestSink::new(100);
        add(&hub, &log, spec("a1", "", 0), &one);
        add(&hub, &log, spec("a", "b", 0), &prefix);
        log.put(&hub, "a1");
        log.put(&hub, "a2");
        log.put(&hub, "b1");
        assert_eq!(one.revs(), vec![2]);
        assert_eq!(prefix.revs(), vec![2, 3]);
    }

    #[test]
    fn unsynced_watcher_catches_up_then_follows() {
        let hub = WatchHub::default();
        let log = Log::new();
        for _ in 0..5 {
            log.put(&hub, "k");
        }
        let sink = TestSink::new(100);
        let k = add(&hub, &log, spec("k", "", 3), &sink);
        assert!(!hub.is_synced(k));
        hub.sync(&log);
        assert!(hub.is_synced(k));
        log.put(&hub, "k");
        assert_eq!(sink.revs(), vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn catch_up_is_split_at_revision_boundaries() {
        let hub = WatchHub::default();
        let log = Log::new();
        for _ in 0..(MAX_REVS_PER_SEND + 10) {
            log.put(&hub, "k");
        }
        let sink = TestSink::new(100);
        add(&hub, &log, spec("k", "", 2), &sink);
        while hub.sync(&log) {}
        let batches = sink.take();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].events.len() as i64, MAX_REVS_PER_SEND);
        let all: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision))
            .collect();
        assert_eq!(all, (2..=MAX_REVS_PER_SEND + 11).collect::<Vec<_>>());
    }

    /// A watcher that is ahead of a catch-up round (a watcher added later
    /// with an older start pulled the round's reads back) keeps its place:
    /// the round must not send it the revisions after its reads again.
    #[test]
    fn a_watcher_ahead_of_the_round_gets_nothing_twice() {
        let hub = WatchHub::default();
        let log = Log::new();
        for _ in 0..(MAX_REVS_PER_SEND + 10) {
            log.put(&hub, "k");
        }
        let ahead = TestSink::new(100);
        add(&hub, &log, spec("k", "", 6), &ahead);
        hub.sync(&log); // `ahead` gets 6..=1005
        let behind = TestSink::new(100);
        add(&hub, &log, spec("k", "", 2), &behind);
        while hub.sync(&log) {}
        log.put(&hub, "k");
        let last = log.current_rev();
        assert_eq!(ahead.revs(), (6..=last).collect::<Vec<_>>());
        assert_eq!(behind.revs(), (2..=last).collect::<Vec<_>>());
    }

    /// Random puts, watchers added at random starts, streams that fill
    /// up and drain, and sync rounds in between: every watcher ends with
    /// exactly the revisions of its keys from its start on, in order.
    #[test]
    fn randomized_watchers_get_every_event_once_in_order() {
        for seed in 1..=20 {
            let mut rng = crate::tests::Rng::new(seed);
            let hub = WatchHub::default();
            let log = Log::new();
            let keys = ["a", "b", "c"];
            // (sink, key, range end, first revision it is owed)
            let mut watchers: Vec<(Arc<TestSink>, &str, &str, i64)> = Vec::new();
            for _ in 0..200 {
                match rng.below(10) {
                    0..=3 => {
                        let n = if rng.below(8) == 0 {
                            700
                        } else {
                            1 + rng.below(5)
                        };
                        for _ in 0..n {
                            log.put(&hub, keys[rng.below(3) as usize]);
                        }
                    }
                    4 | 5 => {
                        let cur = log.current_rev();
                        let start = match rng.below(4) {
                            0 => 0,
                            _ => 1 + rng.below(cur as u64 + 2) as i64,
                        };
                        let (key, end) = match rng.below(3) {
                            0 => ("a", ""),
                            1 => ("a", "c"),
                            _ => ("\0", "\0"),
                        };
                        let sink = TestSink::new(1 + rng.below(4) as usize);
                        add(&hub, &log, spec(key, end, start), &sink);
                        let owed = if start == 0 { cur + 1 } else { start };
                        watchers.push((sink, key, end, owed));
                    }
                    6 => {
                        for (sink, ..) in &watchers {
                            sink.room.store(rng.below(3) as usize, Ordering::SeqCst);
                        }
                    }
                    _ => {
                        hub.sync(&log);
                    }
                }
            }
            for (sink, ..) in &watchers {
                sink.room.store(usize::MAX / 2, Ordering::SeqCst);
            }
            while hub.sync(&log) {}
            log.put(&hub, "a");
            log.put(&hub, "b");
            let all = log.events(1, log.current_rev());
            for (i, (sink, key, end, owed)) in watchers.iter().enumerate() {
                let range = KeyRange::new(key.as_bytes(), end.as_bytes());
                let want: Vec<i64> = all
                    .iter()
                    .map(|e| e.kv.as_ref().unwrap())
                    .filter(|kv| kv.mod_revision >= *owed && range.contains(&kv.key))
                    .map(|kv| kv.mod_revision)
                    .collect();
                assert_eq!(sink.revs(), want, "seed {seed}, watcher {i}");
            }
        }
    }

    #[test]
    fn slow_watcher_becomes_victim_and_loses_nothing() {
        let hub = WatchHub::default();
        let log = Log::new();
        let sink = TestSink::new(1);
        let k = add(&hub, &log, spec("k", "", 0), &sink);
        log.put(&hub, "k"); // delivered
        log.put(&hub, "k"); // stream full: victim
        log.put(&hub, "k"); // not synced: left for catch-up
        assert!(!hub.is_synced(k));
        sink.room.store(100, Ordering::SeqCst);
        while hub.sync(&log) {}
        assert!(hub.is_synced(k));
        log.put(&hub, "k");
        assert_eq!(sink.revs(), vec![2, 3, 4, 5]);
    }

    #[test]
    fn compacted_start_is_reported_and_removed() {
        let hub = WatchHub::default();
        let log = Log::new();
        for _ in 0..5 {
            log.put(&hub, "k");
        }
        log.compact.store(4, Ordering::SeqCst);
        let sink = TestSink::new(10);
        add(&hub, &log, spec("k", "", 2), &sink);
        hub.sync(&log);
        let b = sink.take();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].compact_revision, 4);
        assert!(hub.is_empty());
    }

    #[test]
    fn filters_drop_events() {
        let hub = WatchHub::default();
        let log = Log::new();
        let sink = TestSink::new(10);
        let mut s = spec("k", "", 0);
        s.no_put = true;
        add(&hub, &log, s, &sink);
        log.put(&hub, "k");
        assert!(sink.take().is_empty());
    }

    #[test]
    fn cancel_stops_delivery() {
        let hub = WatchHub::default();
        let log = Log::new();
        let sink = TestSink::new(10);
        let k = add(&hub, &log, spec("k", "", 0), &sink);
        assert!(hub.cancel(k));
        assert!(!hub.cancel(k));
        log.put(&hub, "k");
        assert!(sink.take().is_empty());
    }

    #[test]
    fn future_start_waits_for_its_revision() {
        let hub = WatchHub::default();
        let log = Log::new();
        let sink = TestSink::new(10);
        add(&hub, &log, spec("k", "", 4), &sink);
        log.put(&hub, "k"); // 2
        log.put(&hub, "k"); // 3
        log.put(&hub, "k"); // 4
        assert_eq!(sink.revs(), vec![4]);
    }
}
