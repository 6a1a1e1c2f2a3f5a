//! Moving a whole backend to a follower that fell too far behind.
//!
//! The leader reads its backend in one redb read transaction (a
//! consistent copy that never blocks its writer) and hands it out in
//! chunks of about [`CHUNK_BYTES`] ([`SnapshotReader`]); the follower
//! writes the chunks into a new database file as they arrive
//! ([`SnapshotWriter`]), so neither side holds the database in memory.
//! Once complete, the follower builds its index from the new file off the
//! apply path ([`SnapshotWriter::finish`]) and then swaps it in, which
//! takes a moment ([`Mvcc::install`]).
//!
//! The copy's consistent index may be past the Raft snapshot it travels
//! with: the follower then applies the entries in between to its v2 store
//! only (the v3 applier skips entries at or below the consistent index),
//! as etcd does.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use ferret_proto::ferretpb::{BackendChunk, BackendEntry};
use ferret_proto::Message;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::backend;
use crate::error::MvccError;
use crate::store::{Loaded, Mvcc, Restored};

/// About how much of the backend one chunk carries.
pub const CHUNK_BYTES: usize = 1024 * 1024;

fn table(name: &str) -> Option<TableDefinition<'static, &'static [u8], &'static [u8]>> {
    backend::TABLES.iter().copied().find(|t| {
        use redb::TableHandle;
        t.name() == name
    })
}

/// Reads a consistent copy of the backend, chunk by chunk.
pub struct SnapshotReader {
    tx: redb::ReadTransaction,
    consistent_index: u64,
    /// The table being read and the last key sent from it.
    table: usize,
    after: Option<Vec<u8>>,
    /// For etcd_disk_backend_snapshot_duration_seconds, which etcd
    /// observes when a backend snapshot is closed (sent or abandoned).
    started: std::time::Instant,
}

impl Drop for SnapshotReader {
    fn drop(&mut self) {
        ferret_metrics::get()
            .backend_snapshot
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Mvcc {
    /// A copy of the backend as of now: everything applied so far is
    /// committed first.
    pub fn snapshot_reader(&self) -> Result<SnapshotReader, MvccError> {
        let (tx, consistent_index) = self.read_all_applied()?;
        Ok(SnapshotReader {
            tx,
            consistent_index,
            table: 0,
            after: None,
            started: std::time::Instant::now(),
        })
    }

    /// A read transaction holding everything applied so far (committed
    /// first), and its consistent index: what every copy of the whole
    /// backend reads from.
    pub(crate) fn read_all_applied(&self) -> Result<(redb::ReadTransaction, u64), MvccError> {
        self.flush()?;
        let tx = self
            .db()
            .begin_read()
            .map_err(|e| MvccError::backend("begin", e))?;
        let consistent_index = backend::read_meta(&tx)?.consistent_index;
        Ok((tx, consistent_index))
    }

    /// Replaces the store's backend with a prepared copy: the database
    /// (its file renamed over this store's), index, leases, alarms and
    /// revisions. Changes not yet written are dropped (the copy is newer);
    /// watchers catch up from the new store.
    pub fn install(&self, p: Prepared) -> Result<Restored, MvccError> {
        let Prepared { db, path, loaded } = p;
        {
            // Hold the queue and the index while swapping: the backend
            // thread takes batches and the database together under the
            // queue's lock, so nothing queued before this point reaches
            // the new database; compaction chunks check the generation
            // under the index lock.
            let mut pending = self.lock_pending();
            let mut index = self.index_write();
            self.generation.fetch_add(1, Ordering::AcqRel);
            pending.queue.clear();
            pending.records.clear();
            pending.bytes = 0;
            pending.since = None;
            let replaced = MvccError::Maintenance(
                "defragment: the backend was replaced by a snapshot from the leader meanwhile"
                    .into(),
            );
            for job in pending.jobs.drain(..) {
                job.abandon(&replaced);
            }
            if let (Some(from), Some(to)) = (&path, &self.path) {
                std::fs::rename(from, to).map_err(|e| MvccError::backend("rename", e))?;
            }
            *self.db.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(db);
            *index = Index::default();
        }
        let restored = self.take(loaded);
        self.update_db_size();
        self.hub.resync_all();
        self.wake_sync();
        Ok(restored)
    }
}

use crate::index::Index;

impl SnapshotReader {
    /// The last log entry whose effects the copy holds.
    pub fn consistent_index(&self) -> u64 {
        self.consistent_index
    }

    /// The next chunk, encoded; `None` once every table was sent.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, MvccError> {
        while self.table < backend::TABLES.len() {
            let def = backend::TABLES[self.table];
            let t = self
                .tx
                .open_table(def)
                .map_err(|e| MvccError::backend("table", e))?;
            let range = match &self.after {
                Some(k) => t.range::<&[u8]>((
                    std::ops::Bound::Excluded(k.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => t.range::<&[u8]>(..),
            }
            .map_err(|e| MvccError::backend("read", e))?;
            let mut chunk = BackendChunk {
                table: {
                    use redb::TableHandle;
                    def.name().to_string()
                },
                entries: Vec::new(),
            };
            let mut bytes = 0;
            for item in range {
                let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
                bytes += k.value().len() + v.value().len() + 8;
                chunk.entries.push(BackendEntry {
                    key: Bytes::copy_from_slice(k.value()),
                    value: Bytes::copy_from_slice(v.value()),
                });
                if bytes >= CHUNK_BYTES {
                    break;
                }
            }
            match chunk.entries.last() {
                Some(last) if bytes >= CHUNK_BYTES => {
                    self.after = Some(last.key.to_vec());
                }
                _ => {
                    // This table is done.
                    self.table += 1;
                    self.after = None;
                    if chunk.entries.is_empty() {
                        continue;
                    }
                }
            }
            return Ok(Some(chunk.encode_to_vec()));
        }
        Ok(None)
    }
}

/// Writes received chunks into a new database file.
pub struct SnapshotWriter {
    db: Database,
    path: Option<PathBuf>,
    entries: u64,
}

/// A received backend, read into memory, ready to [`Mvcc::install`].
pub struct Prepared {
    db: Database,
    path: Option<PathBuf>,
    loaded: Loaded,
}

impl Prepared {
    /// What the copy holds.
    pub fn restored(&self) -> Restored {
        self.loaded.restored
    }
}

impl SnapshotWriter {
    /// A new, empty database at `path` (replacing whatever is there), or
    /// in memory for tests.
    pub fn create(path: Option<&Path>) -> Result<SnapshotWriter, MvccError> {
        let storage = match path {
            Some(p) => {
                if p.exists() {
                    std::fs::remove_file(p).map_err(|e| MvccError::backend("remove", e))?;
                }
                backend::Storage::File(p.to_path_buf())
            }
            None => backend::Storage::Memory,
        };
        Ok(SnapshotWriter {
            db: backend::open(storage)?,
            path: path.map(Path::to_path_buf),
            entries: 0,
        })
    }

    /// Writes one chunk (not durably yet: [`SnapshotWriter::finish`]).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), MvccError> {
        let chunk = BackendChunk::decode(chunk)
            .map_err(|e| MvccError::Format(format!("snapshot chunk: {e}")))?;
        let def = table(&chunk.table).ok_or_else(|| {
            MvccError::Format(format!("snapshot chunk of unknown table {:?}", chunk.table))
        })?;
        let mut tx = self
            .db
            .begin_write()
            .map_err(|e| MvccError::backend("begin", e))?;
        tx.set_durability(Durability::None)
            .map_err(|e| MvccError::backend("durability", e))?;
        {
            let mut t = tx
                .open_table(def)
                .map_err(|e| MvccError::backend("table", e))?;
            for e in &chunk.entries {
                t.insert(&e.key[..], &e.value[..])
                    .map_err(|e| MvccError::backend("write", e))?;
            }
        }
        tx.commit().map_err(|e| MvccError::backend("commit", e))?;
        self.entries += chunk.entries.len() as u64;
        Ok(())
    }

    /// Commits durably and reads the copy into memory (index, leases):
    /// the slow part of installing, done before the swap.
    pub fn finish(
        self,
        min_lease_ttl: i64,
        checkpoint_interval: Option<std::time::Duration>,
    ) -> Result<Prepared, MvccError> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| MvccError::backend("begin", e))?;
        tx.commit().map_err(|e| MvccError::backend("commit", e))?;
        let loaded = Loaded::from_db(&self.db, min_lease_ttl, checkpoint_interval)?;
        tracing::info!(
            entries = self.entries,
            consistent_index = loaded.restored.consistent_index,
            revision = loaded.restored.current_rev,
            "received a backend snapshot"
        );
        Ok(Prepared {
            db: self.db,
            path: self.path,
            loaded,
        })
    }
}
