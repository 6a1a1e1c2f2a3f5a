//! Defragmentation without stopping the member.
//!
//! redb, like etcd's bbolt, never returns a freed page to the file
//! system: after a compaction the file keeps its size and the space is
//! only reused. etcd's `Defragment` copies the database into a new file
//! while holding the backend's write lock, so the member serves no write
//! (and, in 3.4, no read) for the seconds a large database takes.
//!
//! ferretcd copies on the backend thread ([`crate::store`]), the only
//! writer of the database, from one read transaction (a consistent copy
//! that never blocks anyone), in chunks of about [`CHUNK_BYTES`]:
//!
//! 1. The small tables first, then `key` ([`crate::backend::TABLES`]'s
//!    order).
//! 2. Between two chunks, the batches the apply path queued meanwhile are
//!    committed as usual, to the old database (readers and the
//!    consistent index move on), and journaled for the new one, which
//!    gets them once the copy is complete ([`Journal`] says why then).
//!    The copy's read transaction precedes every such batch, so the copy
//!    followed by the journal is the old database. Should the journal
//!    grow past [`JOURNAL_MAX_BYTES`], it goes into the copy early, once
//!    the copy has reached `key`: the tables before it are complete, and
//!    `key` is append-only between compactions (a batch adds revisions
//!    the copy does not hold), while compactions wait in the backend
//!    thread's queue behind the defragmentation.
//! 3. A pause after each chunk, as the compactor's, keeps the member's
//!    write latency while it runs.
//! 4. The new file is committed durably, then renamed over the old one
//!    and swapped in under the queue's lock, so no batch is taken in
//!    between. Readers that began on the old database finish on it (its
//!    file is unlinked, not gone); a record they miss there is looked up
//!    in the current database, which has everything the old one had.
//!
//! A crash before the rename leaves `<db>.defrag` behind, deleted at the
//! next start; after it, the new file is complete and durable, and the
//! WAL replays what came after its consistent index, as after any
//! restart. A failure writing the new file (a full disk) fails only the
//! defragmentation; a failure writing the old one stops the member as
//! any backend failure does.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, TableHandle};

use crate::backend::{self, Batch, Storage};
use crate::error::MvccError;
use crate::store::{defrag_path, Defragmented, Mvcc, Stop, Target, PENDING_MAX_BYTES};

/// About how much one chunk of the copy carries.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Every this many bytes copied, a chunk is committed durably: the copy's
/// pages reach the disk a little at a time instead of in one flush at the
/// end, which would hold the WAL's fsyncs back meanwhile.
pub const SYNC_EVERY_BYTES: usize = 16 * 1024 * 1024;

/// A chunk is followed by a pause this many times its length (at least
/// [`MIN_PAUSE`]): the copy takes at most about a third of a core, which
/// the member's writes need more (BENCHMARKS.md, "defragment").
pub const PAUSE_PER_CHUNK_TIME: u32 = 2;
pub const MIN_PAUSE: Duration = Duration::from_millis(5);

impl Mvcc {
    /// Defragments the backend and returns once the space is reclaimed;
    /// the member keeps serving meanwhile. A store in memory has nothing
    /// to reclaim.
    pub fn defragment(&self) -> Result<Defragmented, MvccError> {
        let job = crate::store::DefragJob::default();
        self.queue_defrag(job.clone());
        job.wait()
    }

    /// The backend thread's part (see the module documentation).
    pub(crate) fn defrag_job(&self, target: &Target) -> Result<Defragmented, Stop> {
        let started = Instant::now();
        let size_before = self.db_size();
        let Some(path) = self.path.clone() else {
            return Ok(Defragmented {
                size_before,
                size_after: size_before,
                took: started.elapsed(),
            });
        };
        tracing::info!(path = %path.display(), current_db_size_bytes = size_before, "defragmenting");
        let tmp = defrag_path(&path);
        let new = match self.copy_into(target, &tmp) {
            Ok(Ok(new)) => new,
            Ok(Err(why)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Stop::Failed(MvccError::Maintenance(format!(
                    "defragment: {why}"
                ))));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        {
            // Under the queue's lock: the backend thread (this one) takes
            // batches and the database together under it, and a
            // snapshot's install replaces the database under it.
            let _p = self.lock_pending();
            if !target.current(self) {
                drop(new);
                let _ = std::fs::remove_file(&tmp);
                return Err(Stop::Failed(MvccError::Maintenance(
                    "defragment: the backend was replaced by a snapshot from the leader meanwhile"
                        .into(),
                )));
            }
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Stop::Failed(MvccError::backend("rename", e))
            })?;
            if let Some(dir) = path.parent() {
                // The rename is durable before anything is committed to
                // the new file under its new name.
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Stop::Fatal(MvccError::backend("sync dir", e)))?;
            }
            *self.db.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        }
        self.update_db_size();
        let done = Defragmented {
            size_before,
            size_after: self.db_size(),
            took: started.elapsed(),
        };
        tracing::info!(
            path = %path.display(),
            current_db_size_bytes_diff = done.size_after as i64 - done.size_before as i64,
            current_db_size_bytes = done.size_after,
            took_ms = done.took.as_millis() as u64,
            "defragmented"
        );
        Ok(done)
    }

    /// Copies the database into a new file at `tmp`, keeping it up to
    /// date with what is committed meanwhile; `Err` with the reason if it
    /// was given up (the database replaced, the member stopping).
    fn copy_into(
        &self,
        target: &Target,
        tmp: &Path,
    ) -> Result<Result<Database, &'static str>, Stop> {
        let rtx: ReadTransaction = target
            .db
            .begin_read()
            .map_err(|e| Stop::Fatal(MvccError::backend("begin", e)))?;
        if tmp.exists() {
            std::fs::remove_file(tmp).map_err(|e| Stop::Failed(MvccError::backend("remove", e)))?;
        }
        let new = backend::open(Storage::File(tmp.to_path_buf())).map_err(Stop::Failed)?;
        let mut journal = Journal::default();
        let mut copied = 0;
        for def in backend::TABLES {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let chunk = Instant::now();
                copied += CHUNK_BYTES;
                let durable = copied % SYNC_EVERY_BYTES == 0;
                after =
                    backend::copy_chunk(&rtx, &new, def, after.as_deref(), CHUNK_BYTES, durable)
                        .map_err(Stop::Failed)?;
                if let Err(why) = self.write_old(target, &mut journal)? {
                    return Ok(Err(why));
                }
                // Only in `key`, the last table: the tables before it are
                // complete, and `key` is append-only meanwhile.
                if journal.bytes > JOURNAL_MAX_BYTES && def.name() == backend::KV.name() {
                    tracing::warn!(
                        bytes = journal.bytes,
                        "defragmenting: writes came faster than the copy; applying them to the copy early"
                    );
                    journal.replay(&new)?;
                }
                if after.is_none() {
                    break;
                }
                std::thread::sleep(MIN_PAUSE.max(chunk.elapsed() * PAUSE_PER_CHUNK_TIME));
            }
        }
        drop(rtx);
        journal.replay(&new)?;
        // Durably, before the rename makes it the database.
        let tx = new
            .begin_write()
            .map_err(|e| Stop::Failed(MvccError::backend("begin", e)))?;
        tx.commit()
            .map_err(|e| Stop::Failed(MvccError::backend("commit", e)))?;
        Ok(Ok(new))
    }

    /// Commits what waits in the queue, if it is due, to the old database,
    /// and keeps it in `journal` for the new one; `Err` with the reason if
    /// the copy must be given up.
    fn write_old(
        &self,
        target: &Target,
        journal: &mut Journal,
    ) -> Result<Result<(), &'static str>, Stop> {
        let due: Option<(Vec<Batch>, u64)> = {
            let mut p = self.lock_pending();
            if !target.current(self) {
                return Ok(Err(
                    "the backend was replaced by a snapshot from the leader meanwhile",
                ));
            }
            if p.stop {
                // What is queued is committed by the backend thread's
                // loop, which stops next.
                return Ok(Err("the member is stopping"));
            }
            let waiting = !p.queue.is_empty() || p.applied_index > p.flushed_index;
            let due = waiting
                && (p.flush_now
                    || p.records.len() >= self.cfg.batch_limit
                    || p.bytes >= PENDING_MAX_BYTES / 2
                    || p.since
                        .is_some_and(|s| s.elapsed() >= self.cfg.batch_interval));
            due.then(|| (std::mem::take(&mut p.queue), p.applied_index))
        };
        let Some((batches, applied)) = due else {
            return Ok(Ok(()));
        };
        journal.add(&batches, applied);
        self.write(target, batches, applied).map_err(Stop::Fatal)?;
        Ok(Ok(()))
    }
}

/// Journaled writes beyond this (their records' bytes) go into the copy
/// before it is complete, which bounds the memory a defragmentation holds
/// under a heavy write load, at the cost of a less compact file.
pub const JOURNAL_MAX_BYTES: usize = PENDING_MAX_BYTES / 2;

/// The batches committed to the old database while the copy runs, for
/// the new one. They are applied after the copy rather than as they come:
/// the copy then always appends to the end of each tree, which redb packs
/// into full pages, where inserting the copy's older revisions below newer
/// ones would split pages in half (a defragmented file a third larger, in
/// `bench/compare.sh` v3defrag before this).
#[derive(Default)]
struct Journal {
    batches: Vec<Batch>,
    applied: u64,
    bytes: usize,
}

impl Journal {
    fn add(&mut self, batches: &[Batch], applied: u64) {
        self.bytes += batches
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| r.data.len() + 32)
            .sum::<usize>();
        self.batches.extend(batches.iter().cloned());
        self.applied = applied;
    }

    fn replay(&mut self, new: &Database) -> Result<(), Stop> {
        if self.applied == 0 {
            return Ok(());
        }
        backend::flush(new, &self.batches, self.applied).map_err(Stop::Failed)?;
        *self = Journal::default();
        Ok(())
    }
}
