//! etcd's v3 store for ferretcd: multi-version keys over a durable
//! backend, a watch hub and a lessor.
//!
//! # The model (etcd's)
//!
//! Every change of the key space happens at a **revision**: a store-wide
//! counter that starts at 1 and advances by one for each log entry that
//! changes something. Every key records, per revision, its value, the
//! revision that created it (`create_revision`), the last one that
//! modified it (`mod_revision`), its `version` (puts since creation) and
//! its lease. Reads may ask for any revision since the last compaction.
//!
//! - [`revision`]: `(main, sub)` revisions and their byte form.
//! - [`key_index`], [`index`]: for every key, the revisions that hold its
//!   values, in generations (creation to deletion); in memory.
//! - [`backend`]: redb tables with etcd's bucket names and encodings:
//!   values by revision, leases, metadata including the consistent index.
//! - [`store`]: the shared store, the backend thread that commits in
//!   batches, compaction, and reads ([`Mvcc::range`], [`ReadView`]).
//! - [`apply`]: applying log entries ([`Applier`]): Put, DeleteRange,
//!   Txn, Compaction, lease grant/revoke/checkpoint, with etcd's rules.
//! - [`lease`]: the lessor (replicated leases, leader-local expiry).
//! - [`watch`]: the watch hub (synced, unsynced, victims).
//! - [`auth`]: etcd's v3 auth store (users, roles, key-range
//!   permissions, the auth revision) and this member's simple tokens.
//! - [`hash`]: hashes of the store (etcd's HashKV, byte for byte, and
//!   Hash) for comparing members.
//!
//! # Invariants
//!
//! - **Applying is deterministic.** The same entries give the same keys,
//!   revisions, leases and backend contents on every member. The apply
//!   path is given the local clock only to set the lessor's local expiry
//!   times (a grant, a checkpoint), which no replicated state depends on:
//!   lease expiry is the leader's local business and enters the log only
//!   as a revocation.
//! - **The consistent index is committed with the data it covers.** After
//!   a crash, replaying the log from the entry after it gives the same
//!   store as if nothing had happened.
//! - **Reads never wait for the disk or for a write**, and a published
//!   revision's data is always readable (see [`store`]).
//! - **A watcher receives every event at or after its start revision,
//!   in order, once, all of a revision together**, unless the start was
//!   compacted away, which it is told (see [`watch`]).

pub mod alarm;
pub mod apply;
pub mod auth;
pub mod backend;
pub mod defrag;
pub mod error;
pub mod etcd_snapshot;
pub mod hash;
pub mod index;
pub mod key_index;
pub mod lease;
pub mod restore;
pub mod revision;
pub mod snapshot;
pub mod store;
pub mod watch;

pub use alarm::Alarms;
pub use apply::{is_auth_request, is_txn_readonly, Applier, AuthResponse, V3Request, V3Response};
pub use auth::{Access, AuthError, AuthInfo, AuthStore};
pub use backend::Storage;
pub use error::MvccError;
pub use etcd_snapshot::{EtcdSnapshot, ExtraBucket};
pub use hash::KvHash;
pub use index::KeyRange;
pub use lease::{Lessor, Renewal, MAX_LEASE_TTL};
pub use restore::{restore_etcd_snapshot, RestoreSummary};
pub use revision::Revision;
pub use snapshot::{Prepared, SnapshotReader, SnapshotWriter};
pub use store::{failpoint, Completion, Defragmented, Mvcc, MvccConfig, ReadView, Restored};
pub use watch::{WatchBatch, WatchSink, WatchSpec, WatcherKey};

#[cfg(test)]
mod tests;
