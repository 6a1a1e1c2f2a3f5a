//! Unit tests of the store against etcd 3.4's v2 behaviour.

use std::sync::{Arc, Mutex};

use crate::{Error, Event, Store, TtlOptions, WatchSink, WatchStart, WatcherId};

mod frozen;
mod history;
mod indexes;
mod json;
mod pmap;
mod snapshot;
mod tree;
mod ttl;
mod watch;

/// An arbitrary "now": 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000 * NS;
pub const NS: i64 = 1_000_000_000;

/// A store laid out as etcd's: `/0` for membership, `/1` for user keys.
pub fn store() -> Store {
    Store::new(&["/0", "/1"])
}

/// A user key: `k("/foo")` is `/1/foo`.
pub fn k(p: &str) -> Vec<u8> {
    format!("/1{p}").into_bytes()
}

pub fn perm() -> TtlOptions {
    TtlOptions::default()
}

/// A TTL of `secs` seconds from [`NOW`].
pub fn ttl(secs: i64) -> TtlOptions {
    TtlOptions {
        expire_ns: Some(NOW + secs * NS),
        refresh: false,
    }
}

/// A refresh to `secs` seconds from [`NOW`].
pub fn refresh(secs: i64) -> TtlOptions {
    TtlOptions {
        expire_ns: Some(NOW + secs * NS),
        refresh: true,
    }
}

/// The event's JSON as the HTTP layer writes it (`/1` stripped), without
/// the trailing newline.
pub fn js(e: &Event) -> String {
    e.to_json_string(b"/1").trim_end().to_string()
}

/// The error's JSON, without the trailing newline.
pub fn ejs(e: &Error) -> String {
    String::from_utf8(e.to_json())
        .unwrap()
        .trim_end()
        .to_string()
}

pub fn set(s: &mut Store, p: &str, v: &str) -> Arc<Event> {
    s.set(&k(p), false, v.as_bytes(), perm(), NOW).unwrap()
}

pub fn mkdir(s: &mut Store, p: &str) -> Arc<Event> {
    s.set(&k(p), true, b"", perm(), NOW).unwrap()
}

/// A sink that records what it is sent; `accept == false` refuses.
#[derive(Clone, Default)]
pub struct Rec {
    pub events: Arc<Mutex<Vec<Arc<Event>>>>,
    pub refuse: bool,
}

impl Rec {
    pub fn refusing() -> Rec {
        Rec {
            refuse: true,
            ..Rec::default()
        }
    }

    pub fn boxed(&self) -> Box<dyn WatchSink> {
        Box::new(self.clone())
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// `action key@modifiedIndex` of every received event.
    pub fn seen(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}@{}",
                    e.action.as_str(),
                    String::from_utf8_lossy(&e.node.key),
                    e.index()
                )
            })
            .collect()
    }
}

impl WatchSink for Rec {
    fn send(&self, event: &Arc<Event>) -> bool {
        self.events.lock().unwrap().push(event.clone());
        !self.refuse
    }
}

/// Starts a watch on a user key and expects it to wait.
pub fn wait(s: &mut Store, p: &str, recursive: bool, stream: bool, since: u64) -> (Rec, WatcherId) {
    let rec = Rec::default();
    match s
        .watch(&k(p), recursive, stream, since, rec.boxed())
        .unwrap()
    {
        WatchStart::Waiting(id) => (rec, id),
        WatchStart::Ready(e) => panic!("expected to wait, got {}", js(&e)),
    }
}

/// Starts a watch on a user key and expects an answer from the history.
pub fn ready(s: &mut Store, p: &str, recursive: bool, since: u64) -> Arc<Event> {
    match s
        .watch(&k(p), recursive, false, since, Rec::default().boxed())
        .unwrap()
    {
        WatchStart::Ready(e) => e,
        WatchStart::Waiting(_) => panic!("expected a history answer"),
    }
}
