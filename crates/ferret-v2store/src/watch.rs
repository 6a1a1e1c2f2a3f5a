//! The event history and the watcher hub.
//!
//! The history is a ring of the last [`HISTORY_CAPACITY`] events; a watch
//! with a `waitIndex` inside it is answered from it, one older than it gets
//! error 401. Waiting watchers are kept per path; a write notifies the
//! watchers of its key and of every ancestor directory (those that asked
//! for `recursive`), and a delete also the watchers of every node under the
//! deleted directory.
//!
//! The store is pure, so delivery goes through [`WatchSink`], which the
//! server implements with a bounded channel. A waiting watcher is one small
//! entry here and one parked task there: no CPU, a few hundred bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::error::{Code, Error};
use crate::event::{Action, Event};

/// Events kept for `waitIndex` replay; etcd keeps 1000 and clients rely on
/// the 401 "outdated and cleared" error past that.
pub const HISTORY_CAPACITY: usize = 1000;

/// Where a watcher's events go.
pub trait WatchSink: Send + Sync {
    /// Delivers one event without blocking. Returns `false` when the
    /// receiver is gone or too far behind; the hub then drops the watcher
    /// (and the sink with it, which ends the receiver's stream).
    fn send(&self, event: &Arc<Event>) -> bool;
}

/// Identifies a registered watcher, for [`crate::Store::unwatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatcherId {
    pub(crate) path: u64,
    pub(crate) id: u64,
}

/// The answer to a watch request.
pub enum WatchStart {
    /// A matching event was already in the history; a non-stream watch is
    /// done with it.
    Ready(Arc<Event>),
    /// The watcher waits; its events arrive through its sink.
    Waiting(WatcherId),
}

/// Cloned by [`crate::Store::frozen`]: at most 1000 reference counts.
#[derive(Default, Clone)]
pub(crate) struct History {
    events: VecDeque<Arc<Event>>,
}

impl History {
    /// A history holding `events`, which must be in index order and at most
    /// [`HISTORY_CAPACITY`] (the snapshot decoder checks both).
    pub(crate) fn from_events(events: VecDeque<Arc<Event>>) -> History {
        debug_assert!(events.len() <= HISTORY_CAPACITY);
        History { events }
    }

    pub(crate) fn push(&mut self, e: Arc<Event>) {
        if self.events.len() == HISTORY_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn start_index(&self) -> u64 {
        self.events.front().map_or(0, |e| e.index())
    }

    fn last_index(&self) -> u64 {
        self.events.back().map_or(0, |e| e.index())
    }

    /// Matching events with index >= `since`, oldest first. Fails with 401
    /// when `since` is older than the history.
    pub(crate) fn scan<'a>(
        &'a self,
        key: &'a [u8],
        recursive: bool,
        since: u64,
    ) -> Result<impl Iterator<Item = &'a Arc<Event>> + 'a, Error> {
        let start = self.start_index();
        if since < start {
            return Err(Error::new(
                Code::EventIndexCleared,
                format!("the requested history has been cleared [{start}/{since}]"),
                0,
            ));
        }
        let skip = if since > self.last_index() {
            self.events.len()
        } else {
            self.events.partition_point(|e| e.index() < since)
        };
        Ok(self
            .events
            .iter()
            .skip(skip)
            .filter(move |e| history_matches(e, key, recursive)))
    }

    pub(crate) fn events(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.events.iter()
    }

    /// Events with index >= `since`, oldest first.
    fn events_from(&self, since: u64) -> impl Iterator<Item = &Arc<Event>> {
        let skip = self.events.partition_point(|e| e.index() < since);
        self.events.iter().skip(skip)
    }
}

/// Whether a past event answers a watch on `key`, by etcd's rules.
fn history_matches(e: &Event, key: &[u8], recursive: bool) -> bool {
    if e.refresh {
        return false;
    }
    let ekey: &[u8] = &e.node.key;
    let mut ok = ekey == key;
    if recursive && !ok {
        ok = if key.ends_with(b"/") {
            ekey.starts_with(key)
        } else {
            ekey.len() > key.len() && ekey.starts_with(key) && ekey[key.len()] == b'/'
        };
    }
    if !ok && matches!(e.action, Action::Delete | Action::Expire) {
        // A deleted directory answers watches on anything below it. etcd
        // compares raw prefixes here (no `/` boundary); so do we.
        if let Some(prev) = &e.prev_node {
            ok = prev.dir && key.starts_with(&prev.key);
        }
    }
    ok
}

struct Entry {
    id: u64,
    recursive: bool,
    stream: bool,
    since_index: u64,
    sink: Box<dyn WatchSink>,
}

#[derive(Default)]
pub(crate) struct Hub {
    /// Waiting watchers by the path they watch.
    by_path: HashMap<Box<[u8]>, Vec<Entry>>,
    /// Path ids for [`WatcherId`], so unwatch needs no path copy.
    path_ids: HashMap<u64, Box<[u8]>>,
    path_id_of: HashMap<Box<[u8]>, u64>,
    next_id: u64,
    count: usize,
}

impl Hub {
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn add(
        &mut self,
        path: &[u8],
        recursive: bool,
        stream: bool,
        since_index: u64,
        sink: Box<dyn WatchSink>,
    ) -> WatcherId {
        self.next_id += 1;
        let id = self.next_id;
        let path_id = match self.path_id_of.get(path) {
            Some(p) => *p,
            None => {
                self.path_ids.insert(id, path.into());
                self.path_id_of.insert(path.into(), id);
                id
            }
        };
        self.by_path.entry(path.into()).or_default().push(Entry {
            id,
            recursive,
            stream,
            since_index,
            sink,
        });
        self.count += 1;
        WatcherId { path: path_id, id }
    }

    pub(crate) fn remove(&mut self, w: WatcherId) -> bool {
        let Some(path) = self.path_ids.get(&w.path) else {
            return false;
        };
        let Some(list) = self.by_path.get_mut(path) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| e.id != w.id);
        let removed = before - list.len();
        self.count -= removed;
        if list.is_empty() {
            let path = path.clone();
            self.forget_path(&path);
        }
        removed > 0
    }

    fn forget_path(&mut self, path: &[u8]) {
        self.by_path.remove(path);
        if let Some(pid) = self.path_id_of.remove(path) {
            self.path_ids.remove(&pid);
        }
    }

    /// Brings the waiting watchers up to date after the store under them was
    /// replaced by a snapshot (see [`crate::Store::restore_in_place`]).
    ///
    /// A watcher has seen every event up to `seen_up_to` (the index before
    /// the restore). It is sent the events of `history` from
    /// `max(since_index, seen_up_to + 1)` on that match it by the rules of a
    /// `waitIndex` replay, exactly what it would get by re-watching from its
    /// index on the restored store; a non-stream watcher is done after one.
    /// A watcher whose next event fell out of the restored history (the
    /// gap was longer than [`HISTORY_CAPACITY`]) cannot be answered
    /// correctly and is dropped, which ends its response as a slow watcher's
    /// does; re-watching from its index then gets error 401.
    pub(crate) fn catch_up(&mut self, history: &History, seen_up_to: u64, current_index: u64) {
        let start = history.start_index();
        let mut emptied = Vec::new();
        for (path, list) in self.by_path.iter_mut() {
            let before = list.len();
            list.retain(|w| {
                let from = w.since_index.max(seen_up_to.saturating_add(1));
                if from > current_index {
                    return true; // nothing happened that it waits for
                }
                if history.events.is_empty() || from < start {
                    return false; // its events are gone
                }
                for e in history.events_from(from) {
                    if history_matches(e, path, w.recursive) && !(w.sink.send(e) && w.stream) {
                        return false;
                    }
                }
                true
            });
            self.count -= before - list.len();
            if list.is_empty() {
                emptied.push(path.clone());
            }
        }
        for path in emptied {
            self.forget_path(&path);
        }
    }

    /// Notifies the watchers of the event's key and of each ancestor.
    pub(crate) fn notify(&mut self, e: &Arc<Event>) {
        if self.by_path.is_empty() {
            return;
        }
        let key: &[u8] = &e.node.key;
        self.notify_path(e, b"/", false);
        for (i, b) in key.iter().enumerate().skip(1) {
            if *b == b'/' {
                self.notify_path(e, &key[..i], false);
            }
        }
        if key.len() > 1 {
            self.notify_path(e, key, false);
        }
    }

    /// Notifies the watchers of one path; `deleted` says the path itself was
    /// removed, which wakes non-recursive watchers of it too.
    pub(crate) fn notify_path(&mut self, e: &Arc<Event>, path: &[u8], deleted: bool) {
        let Some(list) = self.by_path.get_mut(path) else {
            return;
        };
        let key: &[u8] = &e.node.key;
        let original = key == path;
        if !original && is_hidden(path, key) {
            return;
        }
        let before = list.len();
        list.retain(|w| {
            let wants = (w.recursive || original || deleted) && e.index() >= w.since_index;
            if !wants {
                return true;
            }
            let delivered = w.sink.send(e);
            delivered && w.stream
        });
        self.count -= before - list.len();
        if list.is_empty() {
            self.forget_path(path);
        }
    }
}

/// Whether `key`, seen from a watcher of `watch_path`, passes through a
/// hidden (`_`-prefixed) node below the watched path.
fn is_hidden(watch_path: &[u8], key: &[u8]) -> bool {
    if watch_path.len() > key.len() {
        return false;
    }
    let after = &key[watch_path.len()..];
    // etcd cleans "/" + after; "/_" can only appear at a segment start.
    let mut prev_slash = true;
    for b in after {
        if *b == b'_' && prev_slash {
            return true;
        }
        prev_slash = *b == b'/';
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_below_watch_path() {
        assert!(is_hidden(b"/1", b"/1/_hidden"));
        assert!(is_hidden(b"/1", b"/1/a/_b/c"));
        assert!(!is_hidden(b"/1", b"/1/a_b"));
        assert!(!is_hidden(b"/1/_a", b"/1/_a"));
        assert!(!is_hidden(b"/1/_a", b"/1/_a/b"));
    }
}
