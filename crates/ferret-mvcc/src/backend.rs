//! The durable backend: a redb database with etcd's buckets as tables.
//!
//! # Tables
//!
//! Every table maps bytes to bytes; names and encodings are etcd's, so a
//! member's data converts to etcd's own snapshot format by copying.
//!
//! ```text
//! table  key                                   value
//! key    revision (17 bytes, 18 for a          mvccpb.KeyValue (protobuf); a
//!        tombstone; see crate::revision)       tombstone's holds only the key
//! meta   "consistent_index"                    u64 big-endian: the last log entry
//!                                              whose effects are all in this commit
//!        "scheduledCompactRev"                 revision key of {main: rev}
//!        "finishedCompactRev"                  revision key of {main: rev}
//!        "ferretcd_backend_format"             "ferretcd.backend/1"
//! lease  lease id, i64 big-endian              leasepb.Lease (protobuf)
//! alarm  etcdserverpb.AlarmMember (protobuf)   empty
//! members          member id, lowercase hex    the member as etcd's JSON
//!                  (etcd's `types.ID` text)    (`{"id":..,"peerURLs":..}`)
//! members_removed  member id, lowercase hex    "removed"
//! auth       "authEnabled"                     one byte: 1 enabled, 0 disabled
//!            "authRevision"                    u64 big-endian: the auth revision
//! authUsers  user name                         authpb.User (protobuf; `password`
//!                                              the bcrypt hash)
//! authRoles  role name                         authpb.Role (protobuf)
//! ```
//!
//! The three auth tables are etcd's buckets of the same names and
//! encodings (see [`crate::auth`]), written by applying auth entries in
//! the same commit as the consistent index. A store that never changed
//! its auth state has no `authRevision` (etcd writes 1 at creation; the
//! store reads a missing one as 1).
//!
//! The two membership tables are etcd's buckets of the same names. This
//! crate stores their bytes as the server layer gives them (which writes
//! them when it applies a configuration change); it does not read them.
//!
//! # Commits
//!
//! The apply path never writes redb. It seals each log entry's changes in
//! a [`Batch`] and queues it; the backend thread ([`crate::store`]) writes
//! every queued batch in one write transaction, with the consistent index
//! of the last one, and commits durably. So the consistent index and the
//! data it covers are always committed together: after a crash, the
//! member replays the write-ahead log from the entry after it. The WAL is
//! the point of durability; this commit only bounds the replay.

use std::collections::HashSet;
use std::path::PathBuf;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::error::MvccError;
use crate::revision::{Revision, REV_KEY_LEN};

pub(crate) const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("key");
pub(crate) const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
pub(crate) const LEASE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lease");
pub(crate) const ALARM: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alarm");
pub(crate) const MEMBERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("members");
pub(crate) const MEMBERS_REMOVED: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("members_removed");
pub(crate) const AUTH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("auth");
pub(crate) const AUTH_USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("authUsers");
pub(crate) const AUTH_ROLES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("authRoles");

/// Every table, the small ones first and `key` last: a copy of the
/// backend (a snapshot for a follower, a defragmentation) goes in this
/// order, and a defragmentation relies on it (see `crate::defrag`).
pub(crate) const TABLES: [TableDefinition<&[u8], &[u8]>; 9] = [
    META,
    LEASE,
    ALARM,
    MEMBERS,
    MEMBERS_REMOVED,
    AUTH,
    AUTH_USERS,
    AUTH_ROLES,
    KV,
];

pub(crate) const CONSISTENT_INDEX: &[u8] = b"consistent_index";
pub(crate) const SCHEDULED_COMPACT: &[u8] = b"scheduledCompactRev";
pub(crate) const FINISHED_COMPACT: &[u8] = b"finishedCompactRev";
pub(crate) const FORMAT_KEY: &[u8] = b"ferretcd_backend_format";
const FORMAT: &[u8] = b"ferretcd.backend/1";

/// Where a member's backend lives in its data dir.
pub fn path_in(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("v3").join("backend.redb")
}

/// Where the database lives.
pub enum Storage {
    /// A file (created if missing).
    File(PathBuf),
    /// In memory, for tests.
    Memory,
    /// Any redb storage backend: tests pass one that fails on purpose.
    Custom(Box<dyn redb::StorageBackend>),
}

/// Memory redb may use to cache pages (its write buffer takes at most
/// half). Reads beyond it go to the OS page cache, which holds the file
/// anyway; 32 MiB holds the upper levels of every tree. The cache fills
/// to its size under any large load, so it is a fixed part of a member's
/// memory: 128 MiB was a quarter of it with 1M keys (BENCHMARKS.md).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

pub(crate) fn open(storage: Storage) -> Result<Database, MvccError> {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    let db = match storage {
        Storage::File(path) => b.create(&path).map_err(|e| MvccError::backend("open", e))?,
        Storage::Memory => b
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| MvccError::backend("open", e))?,
        Storage::Custom(backend) => b
            .create_with_backend(DynBackend(backend))
            .map_err(|e| MvccError::backend("open", e))?,
    };
    // Create the tables and check the format marker.
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    {
        tx.open_table(KV)
            .map_err(|e| MvccError::backend("table", e))?;
        tx.open_table(LEASE)
            .map_err(|e| MvccError::backend("table", e))?;
        tx.open_table(ALARM)
            .map_err(|e| MvccError::backend("table", e))?;
        tx.open_table(MEMBERS)
            .map_err(|e| MvccError::backend("table", e))?;
        tx.open_table(MEMBERS_REMOVED)
            .map_err(|e| MvccError::backend("table", e))?;
        for t in [AUTH, AUTH_USERS, AUTH_ROLES] {
            tx.open_table(t)
                .map_err(|e| MvccError::backend("table", e))?;
        }
        let mut meta = tx
            .open_table(META)
            .map_err(|e| MvccError::backend("table", e))?;
        let existing = meta
            .get(FORMAT_KEY)
            .map_err(|e| MvccError::backend("read", e))?
            .map(|v| v.value().to_vec());
        match existing {
            None => {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|e| MvccError::backend("write", e))?;
            }
            Some(v) if v == FORMAT => {}
            Some(v) => {
                return Err(MvccError::Format(format!(
                    "the backend was written in format {:?}; this ferretcd reads {:?}",
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(FORMAT)
                )))
            }
        }
    }
    tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    Ok(db)
}

/// A boxed storage backend, as redb takes a sized one.
#[derive(Debug)]
struct DynBackend(Box<dyn redb::StorageBackend>);

impl redb::StorageBackend for DynBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
}

/// One change of the key space: a revision and its stored value.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub rev: Revision,
    pub tombstone: bool,
    /// The encoded `mvccpb.KeyValue`.
    pub data: Bytes,
}

/// The changes one log entry made to the backend, sealed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    /// The log index of the entry.
    pub index: u64,
    /// In increasing revision order.
    pub records: Vec<Record>,
    /// Lease puts (encoded `leasepb.Lease`) and deletions.
    pub leases: Vec<(i64, Option<Bytes>)>,
    pub meta: Vec<(&'static [u8], Vec<u8>)>,
    /// Alarm raised (`true`) or cleared, as the encoded `AlarmMember`.
    pub alarms: Vec<(Vec<u8>, bool)>,
    /// Membership rows: put (`Some`) or deleted, in the `members` table,
    /// then ids added to `members_removed`.
    pub members: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub members_removed: Vec<Vec<u8>>,
    /// Rows of the auth tables.
    pub auth: crate::auth::AuthChanges,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.leases.is_empty()
            && self.meta.is_empty()
            && self.alarms.is_empty()
            && self.members.is_empty()
            && self.members_removed.is_empty()
            && self.auth.auth.is_empty()
            && self.auth.users.is_empty()
            && self.auth.roles.is_empty()
    }
}

pub(crate) fn compact_rev_bytes(rev: i64) -> Vec<u8> {
    Revision::new(rev, 0).to_key(false).as_bytes().to_vec()
}

fn rev_from_meta(v: &[u8]) -> Option<i64> {
    Revision::from_key(v).map(|(r, _)| r.main)
}

/// Writes batches in one durable transaction, recording `applied_index`
/// as the consistent index.
pub(crate) fn flush(db: &Database, batches: &[Batch], applied_index: u64) -> Result<(), MvccError> {
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    {
        let mut kv = tx
            .open_table(KV)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut lease = tx
            .open_table(LEASE)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut meta = tx
            .open_table(META)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut alarm = tx
            .open_table(ALARM)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut members = tx
            .open_table(MEMBERS)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut removed = tx
            .open_table(MEMBERS_REMOVED)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut auth = tx
            .open_table(AUTH)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut users = tx
            .open_table(AUTH_USERS)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut roles = tx
            .open_table(AUTH_ROLES)
            .map_err(|e| MvccError::backend("table", e))?;
        for b in batches {
            for (k, v) in &b.auth.auth {
                auth.insert(*k, &v[..])
                    .map_err(|e| MvccError::backend("write", e))?;
            }
            for (table, rows) in [(&mut users, &b.auth.users), (&mut roles, &b.auth.roles)] {
                for (k, v) in rows {
                    match v {
                        Some(v) => table.insert(&k[..], &v[..]).map(|_| ()),
                        None => table.remove(&k[..]).map(|_| ()),
                    }
                    .map_err(|e| MvccError::backend("write", e))?;
                }
            }
            for (k, v) in &b.members {
                match v {
                    Some(v) => members.insert(&k[..], &v[..]).map(|_| ()),
                    None => members.remove(&k[..]).map(|_| ()),
                }
                .map_err(|e| MvccError::backend("write", e))?;
            }
            for k in &b.members_removed {
                removed
                    .insert(&k[..], &b"removed"[..])
                    .map_err(|e| MvccError::backend("write", e))?;
            }
            for (k, raised) in &b.alarms {
                if *raised {
                    alarm
                        .insert(&k[..], &[][..])
                        .map_err(|e| MvccError::backend("write", e))?;
                } else {
                    alarm
                        .remove(&k[..])
                        .map_err(|e| MvccError::backend("write", e))?;
                }
            }
            for r in &b.records {
                kv.insert(r.rev.to_key(r.tombstone).as_bytes(), &r.data[..])
                    .map_err(|e| MvccError::backend("write", e))?;
            }
            for (id, l) in &b.leases {
                let k = id.to_be_bytes();
                match l {
                    Some(v) => {
                        lease
                            .insert(&k[..], &v[..])
                            .map_err(|e| MvccError::backend("write", e))?;
                    }
                    None => {
                        lease
                            .remove(&k[..])
                            .map_err(|e| MvccError::backend("write", e))?;
                    }
                }
            }
            for (k, v) in &b.meta {
                meta.insert(*k, &v[..])
                    .map_err(|e| MvccError::backend("write", e))?;
            }
        }
        meta.insert(CONSISTENT_INDEX, &applied_index.to_be_bytes()[..])
            .map_err(|e| MvccError::backend("write", e))?;
    }
    // etcd's etcd_disk_backend_commit_duration_seconds: the commit (its
    // writes to the file and the fsync), as etcd times bbolt's Commit.
    let started = std::time::Instant::now();
    let committed = tx.commit().map_err(|e| MvccError::backend("commit", e));
    ferret_metrics::get()
        .backend_commit
        .observe(started.elapsed().as_secs_f64());
    committed
}

/// What the `meta` table says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub consistent_index: u64,
    pub scheduled_compact: Option<i64>,
    pub finished_compact: Option<i64>,
}

pub(crate) fn read_meta(tx: &redb::ReadTransaction) -> Result<Meta, MvccError> {
    let meta = tx
        .open_table(META)
        .map_err(|e| MvccError::backend("table", e))?;
    let get = |k: &[u8]| -> Result<Option<Vec<u8>>, MvccError> {
        Ok(meta
            .get(k)
            .map_err(|e| MvccError::backend("read", e))?
            .map(|v| v.value().to_vec()))
    };
    let consistent_index = match get(CONSISTENT_INDEX)? {
        None => 0,
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| MvccError::Format("meta consistent_index is not 8 bytes".into()))?,
        ),
    };
    Ok(Meta {
        consistent_index,
        scheduled_compact: get(SCHEDULED_COMPACT)?.and_then(|v| rev_from_meta(&v)),
        finished_compact: get(FINISHED_COMPACT)?.and_then(|v| rev_from_meta(&v)),
    })
}

/// Deletes the records not in `keep` among the next `limit` records from
/// `from` with a main revision up to `upto`, in one transaction (as
/// etcd's compaction scans `--experimental-compaction-batch-limit` keys a
/// batch); also writes `finishedCompactRev` when the scan reaches `upto`.
/// Returns the revision to resume from, `None` when done.
///
/// Every chunk's transaction is durable, as each of etcd's compaction
/// batches is a bbolt commit. Non-durable chunks were tried: redb keeps a
/// non-durable commit's pages in its write buffer, so the backend thread's
/// next durable commit wrote all of them before its fsync, and the WAL's
/// fsyncs waited behind those bursts, most of all near the end of the
/// range (put p99 during a 512 MiB compaction 2.7-2.9x the steady p99, max
/// 44-55 ms; with a small fsync per chunk 1.5-1.8x, max 21 ms, and the
/// compaction 10% slower). A compaction cut short by a crash is resumed
/// from `scheduledCompactRev` at start either way (deleting again what is
/// gone is harmless).
/// Copies about `max_bytes` of table `def`, from after key `after` (from
/// its start if `None`), out of `from` into `to`, in one write transaction,
/// `durable` or not (the caller commits durably at the end). The last key
/// copied if the table has more, `None` once it is done.
pub(crate) fn copy_chunk(
    from: &redb::ReadTransaction,
    to: &Database,
    def: TableDefinition<&[u8], &[u8]>,
    after: Option<&[u8]>,
    max_bytes: usize,
    durable: bool,
) -> Result<Option<Vec<u8>>, MvccError> {
    let src = from
        .open_table(def)
        .map_err(|e| MvccError::backend("table", e))?;
    let range = match after {
        Some(k) => src.range::<&[u8]>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
        None => src.range::<&[u8]>(..),
    }
    .map_err(|e| MvccError::backend("read", e))?;
    let mut tx = to
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    if !durable {
        tx.set_durability(redb::Durability::None)
            .map_err(|e| MvccError::backend("durability", e))?;
    }
    let mut bytes = 0;
    let mut last: Option<Vec<u8>> = None;
    {
        let mut dst = tx
            .open_table(def)
            .map_err(|e| MvccError::backend("table", e))?;
        for item in range {
            let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
            dst.insert(k.value(), v.value())
                .map_err(|e| MvccError::backend("write", e))?;
            bytes += k.value().len() + v.value().len();
            if bytes >= max_bytes {
                last = Some(k.value().to_vec());
                break;
            }
        }
    }
    tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    Ok(last)
}

pub(crate) fn compact_chunk(
    db: &Database,
    from: Revision,
    upto: i64,
    keep: &HashSet<Revision>,
    limit: usize,
) -> Result<Option<Revision>, MvccError> {
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    let resume;
    {
        let mut kv = tx
            .open_table(KV)
            .map_err(|e| MvccError::backend("table", e))?;
        let start = from.to_key(false);
        let end = Revision::new(upto + 1, 0).to_key(false);
        // Where this chunk ends: the record `limit` records on, if any.
        let chunk_end: Option<Vec<u8>> = kv
            .range::<&[u8]>(start.as_bytes()..end.as_bytes())
            .map_err(|e| MvccError::backend("read", e))?
            .nth(limit)
            .transpose()
            .map_err(|e| MvccError::backend("read", e))?
            .map(|(k, _)| k.value().to_vec());
        let upper = chunk_end.as_deref().unwrap_or(end.as_bytes());
        // Removes in one pass over the leaves, not a descent per record.
        kv.retain_in::<&[u8], _>(start.as_bytes()..upper, |k, _| {
            Revision::from_key(k).is_none_or(|(rev, _)| keep.contains(&rev))
        })
        .map_err(|e| MvccError::backend("write", e))?;
        resume = match chunk_end {
            Some(k) => Some(Revision::from_key(&k).map(|(rev, _)| rev).ok_or_else(|| {
                MvccError::Format(format!(
                    "the key table holds a key that is no revision: {k:?}"
                ))
            })?),
            None => None,
        };
        if resume.is_none() {
            let mut meta = tx
                .open_table(META)
                .map_err(|e| MvccError::backend("table", e))?;
            meta.insert(FINISHED_COMPACT, &compact_rev_bytes(upto)[..])
                .map_err(|e| MvccError::backend("write", e))?;
        }
    }
    tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    Ok(resume)
}

/// The bytes of the database's pages in use (allocated: not free), as
/// bbolt's size in use is its size less its free pages. Waits for the
/// backend thread's transaction, if one is open (redb reports its
/// statistics in a write transaction).
pub(crate) fn allocated_bytes(db: &Database) -> Result<u64, MvccError> {
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    let stats = tx.stats().map_err(|e| MvccError::backend("stats", e))?;
    let allocated = stats.allocated_pages() * stats.page_size() as u64;
    tx.abort().map_err(|e| MvccError::backend("abort", e))?;
    Ok(allocated)
}

/// The auth state the backend holds.
pub(crate) fn read_auth(tx: &redb::ReadTransaction) -> Result<crate::auth::AuthStore, MvccError> {
    use ferret_proto::authpb::{Role, User};
    use ferret_proto::Message;
    let auth = tx
        .open_table(AUTH)
        .map_err(|e| MvccError::backend("table", e))?;
    let get = |k: &[u8]| -> Result<Option<Vec<u8>>, MvccError> {
        Ok(auth
            .get(k)
            .map_err(|e| MvccError::backend("read", e))?
            .map(|v| v.value().to_vec()))
    };
    let enabled = get(crate::auth::ENABLED_KEY)?.is_some_and(|v| v == [1]);
    let revision = match get(crate::auth::REVISION_KEY)? {
        None => 0,
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| MvccError::Format("auth authRevision is not 8 bytes".into()))?,
        ),
    };
    let mut users = Vec::new();
    let t = tx
        .open_table(AUTH_USERS)
        .map_err(|e| MvccError::backend("table", e))?;
    for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
        let (_, v) = item.map_err(|e| MvccError::backend("read", e))?;
        users.push(
            User::decode(v.value())
                .map_err(|e| MvccError::Format(format!("undecodable user: {e}")))?,
        );
    }
    let mut roles = Vec::new();
    let t = tx
        .open_table(AUTH_ROLES)
        .map_err(|e| MvccError::backend("table", e))?;
    for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
        let (_, v) = item.map_err(|e| MvccError::backend("read", e))?;
        roles.push(
            Role::decode(v.value())
                .map_err(|e| MvccError::Format(format!("undecodable role: {e}")))?,
        );
    }
    Ok(crate::auth::AuthStore::restore(
        enabled, revision, users, roles,
    ))
}

/// Number of records in the `kv` table (tests).
#[allow(dead_code)]
pub(crate) fn kv_len(db: &Database) -> u64 {
    let tx = db.begin_read().expect("read");
    let t = tx.open_table(KV).expect("table");
    t.len().expect("len")
}

pub(crate) const _ASSERT_REV_LEN: () = assert!(REV_KEY_LEN == 17);
