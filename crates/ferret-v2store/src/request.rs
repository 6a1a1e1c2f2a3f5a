//! A v2 write as it travels through the log, and how the store applies it.
//!
//! The HTTP layer turns a request into a [`Write`]; consensus orders the
//! writes; every member applies them with [`Store::apply`]. Everything the
//! outcome depends on is in the write itself, time included.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::Event;
use crate::store::{Store, TtlOptions};

/// The kind of a v2 write, after etcd's `Method` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Put,
    Post,
    Delete,
}

/// One v2 write. Field meanings follow etcd's `etcdserverpb.Request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    pub method: Method,
    /// Full store path, namespace included (`/1/foo`).
    pub path: Vec<u8>,
    pub value: Vec<u8>,
    pub dir: bool,
    /// Compare value; empty means "don't compare".
    pub prev_value: Vec<u8>,
    /// Compare index; 0 means "don't compare".
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    pub recursive: bool,
    pub refresh: bool,
    /// Absolute expiry (Unix ns) computed from `ttl` when the request was
    /// received; `None` for no TTL.
    pub expire_ns: Option<i64>,
    /// The time the request entered the cluster (Unix ns); used only to
    /// render the remaining TTL in the resulting event.
    pub time_ns: i64,
}

impl Write {
    /// A plain `PUT` of a key (etcd's set), no TTL, no conditions.
    pub fn put(path: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, time_ns: i64) -> Write {
        Write {
            method: Method::Put,
            path: path.into(),
            value: value.into(),
            dir: false,
            prev_value: Vec::new(),
            prev_index: 0,
            prev_exist: None,
            recursive: false,
            refresh: false,
            expire_ns: None,
            time_ns,
        }
    }

    /// A `PUT` with `prevExist=false`: creates the key, fails if it exists.
    pub fn create(path: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, time_ns: i64) -> Write {
        Write {
            prev_exist: Some(false),
            ..Write::put(path, value, time_ns)
        }
    }

    fn ttl(&self) -> TtlOptions {
        TtlOptions {
            expire_ns: self.expire_ns,
            refresh: self.refresh,
        }
    }
}

impl Store {
    /// Applies one write, choosing the operation as etcd's v2 applier does.
    pub fn apply(&mut self, w: &Write) -> Result<Arc<Event>, Error> {
        let now = w.time_ns;
        match w.method {
            Method::Post => self.create(&w.path, w.dir, &w.value, true, w.ttl(), now),
            Method::Put => match w.prev_exist {
                Some(true) if w.prev_index == 0 && w.prev_value.is_empty() => {
                    self.update(&w.path, &w.value, w.ttl(), now)
                }
                Some(true) => self.compare_and_swap(
                    &w.path,
                    &w.prev_value,
                    w.prev_index,
                    &w.value,
                    w.ttl(),
                    now,
                ),
                Some(false) => self.create(&w.path, w.dir, &w.value, false, w.ttl(), now),
                None if w.prev_index > 0 || !w.prev_value.is_empty() => self.compare_and_swap(
                    &w.path,
                    &w.prev_value,
                    w.prev_index,
                    &w.value,
                    w.ttl(),
                    now,
                ),
                None => self.set(&w.path, w.dir, &w.value, w.ttl(), now),
            },
            Method::Delete => {
                if w.prev_index > 0 || !w.prev_value.is_empty() {
                    self.compare_and_delete(&w.path, &w.prev_value, w.prev_index, now)
                } else {
                    self.delete(&w.path, w.dir, w.recursive, now)
                }
            }
        }
    }
}
