//! Hashes of the store, for checking that members hold the same data
//! (etcd's `Maintenance.HashKV` and `Maintenance.Hash`).
//!
//! **HashKV at a revision** is etcd 3.4's `hashByRev`, byte for byte: a
//! CRC-32C (Castagnoli) over the table name `key`, then over every
//! revision key and stored value of the `key` table up to the revision,
//! in key order, leaving out the revisions at or below the compacted
//! revision that a compaction at the hashed revision would not keep
//! (those a scheduled compaction may still be removing). The table's keys
//! and values are etcd's own encodings, so the same writes give the same
//! hash on etcd and on ferretcd; a member whose data differs gives
//! another.
//!
//! **Hash** covers every table of the backend except the consistent index
//! (each member's own position in its log), as etcd's covers its bbolt
//! file; ferretcd's tables are not etcd's buckets, so only members of one
//! ferretcd cluster compare.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::backend;
use crate::backend::Record;
use crate::error::MvccError;
use crate::index::{KeyRange, KEYS_PER_LOCK};
use crate::revision::Revision;
use crate::store::Mvcc;

/// What `HashKV` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvHash {
    pub hash: u32,
    /// The store's revision when the hash was taken (the header's).
    pub current_rev: i64,
    /// The compacted revision then; -1 before the first compaction, as
    /// etcd answers.
    pub compact_rev: i64,
}

/// The tables [`Mvcc::hash`] covers, in name order.
const HASHED_TABLES: [TableDefinition<&[u8], &[u8]>; 7] = [
    backend::ALARM,
    backend::AUTH,
    backend::AUTH_ROLES,
    backend::AUTH_USERS,
    backend::KV,
    backend::LEASE,
    backend::META,
];

impl Mvcc {
    /// etcd's `HashByRev`: the hash of the `key` table at `rev` (0: the
    /// current revision; a negative one hashes no revision, as in etcd).
    /// A revision at or below the compacted one is
    /// [`MvccError::Compacted`], one above the current revision
    /// [`MvccError::FutureRev`]. Reads a snapshot: applies go on.
    pub fn hash_kv(&self, rev: i64) -> Result<KvHash, MvccError> {
        // Uncommitted records and a read transaction, taken together: every
        // revision up to the current one is in one of them (see
        // `ReadView::events`). The compacted revision is read after the
        // transaction began: a compaction the transaction shows the
        // deletions of is then one this hash knows of.
        let (queued, tx, current_rev) = {
            let p = self.lock_pending();
            let tx = self
                .db()
                .begin_read()
                .map_err(|e| MvccError::backend("begin", e))?;
            let current = self.current_rev();
            let upper = Revision::new(current + 1, 0);
            let queued: Vec<Record> = p.records.range(..upper).map(|(_, r)| r.clone()).collect();
            (queued, tx, current)
        };
        let compact_rev = self.compact_rev();
        if rev > 0 && rev <= compact_rev {
            return Err(MvccError::Compacted);
        }
        if rev > current_rev {
            return Err(MvccError::FutureRev);
        }
        // A negative revision hashes no revision, as in etcd.
        let rev = match rev {
            0 => current_rev,
            r if r < 0 => 0,
            r => r,
        };
        let keep = self.keep_at(rev);
        let upper = Revision::new(rev + 1, 0);
        let lower = Revision::new(compact_rev + 1, 0);
        let hashed =
            |r: Revision| r < upper && (r >= lower || keep.is_empty() || keep.contains(&r));
        let mut crc = crc32c::crc32c(b"key");
        let kv = tx
            .open_table(backend::KV)
            .map_err(|e| MvccError::backend("table", e))?;
        let mut last: Option<Revision> = None;
        for item in kv
            .range::<&[u8]>(..upper.to_key(false).as_bytes())
            .map_err(|e| MvccError::backend("read", e))?
        {
            let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
            let Some((r, _)) = Revision::from_key(k.value()) else {
                continue;
            };
            last = Some(r);
            if hashed(r) {
                crc = crc32c::crc32c_append(crc, k.value());
                crc = crc32c::crc32c_append(crc, v.value());
            }
        }
        for r in queued {
            // Queued records are newer than every committed one; one at or
            // below the last committed is a copy of a committed record.
            if last.is_some_and(|l| r.rev <= l) || !hashed(r.rev) {
                continue;
            }
            crc = crc32c::crc32c_append(crc, r.rev.to_key(r.tombstone).as_bytes());
            crc = crc32c::crc32c_append(crc, &r.data);
        }
        Ok(KvHash {
            hash: crc,
            current_rev,
            compact_rev,
        })
    }

    /// etcd's `Hash`: everything applied so far is committed, then every
    /// table is hashed (its name, then its keys and values in key order),
    /// but for the consistent index. Returns the hash and the revision the
    /// committed data had reached.
    pub fn hash(&self) -> Result<(u32, i64), MvccError> {
        self.flush()?;
        let (tx, rev) = {
            let p = self.lock_pending();
            let tx = self
                .db()
                .begin_read()
                .map_err(|e| MvccError::backend("begin", e))?;
            // Uncommitted records are the newest: the committed data ends
            // just below the oldest of them.
            let rev = match p.records.keys().next() {
                Some(r) => r.main - 1,
                None => self.current_rev(),
            };
            (tx, rev)
        };
        let mut crc = 0;
        for def in HASHED_TABLES {
            let t = tx
                .open_table(def)
                .map_err(|e| MvccError::backend("table", e))?;
            crc = crc32c::crc32c_append(crc, def.name().as_bytes());
            for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
                let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
                if def.name() == backend::META.name() && k.value() == backend::CONSISTENT_INDEX {
                    continue;
                }
                crc = crc32c::crc32c_append(crc, k.value());
                crc = crc32c::crc32c_append(crc, v.value());
            }
        }
        Ok((crc, rev))
    }

    /// The revisions a compaction at `at` would keep: the revision each
    /// key that exists at `at` has there (a key deleted by then keeps
    /// nothing, not even its tombstone). Gathered `KEYS_PER_LOCK` keys per
    /// hold of the index lock, so that applies are not held up; what a key
    /// keeps at `at` depends only on its revisions up to `at`, which later
    /// applies and compactions at or below `at` leave as they are, so the
    /// chunks add up to one consistent set.
    fn keep_at(&self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        let every_key = KeyRange::Span {
            start: &[],
            end: None,
        };
        let mut resume: Option<Box<[u8]>> = None;
        loop {
            resume = self.index_read().walk(
                every_key,
                at,
                resume.as_deref(),
                KEYS_PER_LOCK,
                |_, found| {
                    keep.insert(found.modified);
                    true
                },
            );
            if resume.is_none() {
                return keep;
            }
        }
    }
}
