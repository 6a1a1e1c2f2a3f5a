//! The etcd v2 key-value store, as a pure data structure.
//!
//! A tree of directories and keys under one index that every write bumps,
//! a ring of the last 1000 events for `waitIndex` replay, a hub of waiting
//! watchers, and an index of TTLs. It knows nothing of HTTP, consensus or
//! disks, and it never reads the clock: the same sequence of writes gives
//! the same store on every member. Its durable state can be frozen in O(1)
//! ([`Store::frozen`]: the tree's directories are persistent B-trees that
//! the view shares) and encoded on another thread while it goes on.
//!
//! Paths are byte strings, rooted and cleaned like Go's `path.Clean`. The
//! server keeps user keys under the `/1` namespace as etcd does, so errors
//! and events carry full paths and the HTTP layer strips the prefix.

pub mod error;
pub mod event;
mod name;
pub mod path;
mod pmap;
pub mod request;
pub mod snapshot;
pub mod store;
pub mod watch;

/// Go's JSON output, which events and statistics are written in; a
/// module of this crate so the store's code names it `crate::json`.
pub(crate) use ferret_gocompat::json;

pub use error::{Code, Error};
pub use event::{Action, Event, NodeView};
pub use request::{Method, Write};
pub use snapshot::{FrozenStore, SnapshotError, SNAPSHOT_VERSION};
pub use store::{Store, TtlOptions, MIN_EXPIRE_NS};
pub use watch::{WatchSink, WatchStart, WatcherId, HISTORY_CAPACITY};

#[cfg(test)]
mod tests;
