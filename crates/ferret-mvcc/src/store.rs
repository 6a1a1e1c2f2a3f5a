//! The store: the index, the backend, unwritten batches, and reads.
//!
//! # Who touches what
//!
//! - The **apply path** ([`crate::Applier`], on the Raft thread) changes
//!   the index and the lessor, seals each entry's changes into a
//!   [`Batch`], queues it in `pending`, and only then publishes the new
//!   revision. It never waits for the disk.
//! - The **backend thread** writes queued batches to redb (every
//!   `batch_interval`, or sooner when `batch_limit` changes wait) in one
//!   durable transaction with the consistent index, then drops them from
//!   the queue; it also runs compactions.
//! - **Readers** (any thread) open a [`ReadView`]: the published revision
//!   (read first) and a redb read transaction. A record the view's
//!   revision covers is still queued in `pending`, or committed: looked up
//!   in the queue, then in the view's transaction, then in a fresh one
//!   (when the backend thread committed it after the view began), so it is
//!   found whichever way the backend thread moves meanwhile, and redb's
//!   read transactions never block its writer. The
//!   index is read under its read lock in chunks of
//!   [`crate::index::KEYS_PER_LOCK`] keys, so a large range never holds
//!   the apply path back for long.
//! - The **sync thread** catches up lagging watchers (see
//!   [`crate::watch`]).
//!
//! **Invariant: a published revision's data is readable.** A batch is
//! queued before its revision is published, and leaves the queue only
//! after redb committed it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_proto::etcdserverpb::{range_request, RangeRequest, RangeResponse, ResponseHeader};
use ferret_proto::mvccpb::{event::EventType, Event, KeyValue};
use ferret_proto::{leasepb, Message};
use parking_lot::{RwLockReadGuard, RwLockWriteGuard};
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::alarm::Alarms;
use crate::auth::{AuthStore, SimpleTokens};
use crate::backend::{self, Batch, Record, Storage};
use crate::error::MvccError;
use crate::index::{Index, KeyRange, COMPACT_KEYS_PER_LOCK, KEYS_PER_LOCK, NEVER_COMPACTED};
use crate::key_index::KeyIndex;
use crate::lease::Lessor;
use crate::revision::Revision;
use crate::watch::{EventSource, WatchHub, WatchSink, WatchSpec, WatcherKey};

/// How the store behaves; etcd's flags where they exist.
#[derive(Clone)]
pub struct MvccConfig {
    /// ceil(1.5 × election timeout) in seconds (etcd's `minLeaseTTL`).
    pub min_lease_ttl: i64,
    /// `--experimental-enable-lease-checkpoint`: checkpoint every this long.
    pub lease_checkpoint_interval: Option<Duration>,
    /// `--experimental-enable-lease-checkpoint-persist`.
    pub lease_checkpoint_persist: bool,
    /// `--backend-batch-interval` (etcd: 100 ms): the longest a change
    /// waits before the backend thread commits it.
    pub batch_interval: Duration,
    /// `--backend-batch-limit` (etcd: 10000): commit sooner once this many
    /// changes wait.
    pub batch_limit: usize,
    /// `--experimental-compaction-batch-limit` (etcd: 1000): revisions
    /// scanned per backend transaction while compacting.
    pub compaction_batch_limit: usize,
    /// `--auth-token-ttl` (etcd: 300 s): a simple token unused this long
    /// is forgotten.
    pub auth_token_ttl: Duration,
    /// Called (from a background thread) when the backend fails; the
    /// member must stop.
    pub on_fatal: Arc<dyn Fn(&MvccError) + Send + Sync>,
}

impl Default for MvccConfig {
    fn default() -> Self {
        MvccConfig {
            min_lease_ttl: 2,
            lease_checkpoint_interval: None,
            lease_checkpoint_persist: false,
            batch_interval: Duration::from_millis(100),
            batch_limit: 10_000,
            compaction_batch_limit: 1000,
            auth_token_ttl: Duration::from_secs(300),
            on_fatal: Arc::new(|e| {
                tracing::error!(error = %e, "the v3 backend failed");
            }),
        }
    }
}

/// Unwritten changes bigger than this make the apply path wait for the
/// backend thread: memory stays bounded when the disk falls behind.
pub const PENDING_MAX_BYTES: usize = 256 * 1024 * 1024;
/// What a queued record costs beyond its bytes (map node, revision).
pub(crate) const RECORD_OVERHEAD_BYTES: usize = 64;

/// The compactor's pause between two chunks of the backend's revisions
/// (etcd 3.4's, after each `--experimental-compaction-batch-limit`
/// records).
pub const COMPACTION_PAUSE: Duration = Duration::from_millis(10);

/// A chunk that took longer than [`COMPACTION_PAUSE`] (with the queued
/// writes let through after it) is followed by a pause this many times
/// its length: the compactor takes at most a third
/// of the time where its chunks are costly. They are where a compaction
/// deletes scattered revisions among ones it keeps (the newest revisions
/// of the keys written since): each chunk then rewrites most of its
/// leaves. In a 1 GiB compaction, the last 2% of the chunks took 10-20 ms
/// each and, 10 ms apart, held every member's WAL fsync back (puts 8-10
/// ms late for the 1.5 s they lasted, a third of the window's slow puts).
pub const COMPACTION_PAUSE_PER_CHUNK_TIME: u32 = 2;

/// The pause after a chunk of the backend's compaction that took `chunk`.
fn compaction_pause(chunk: Duration) -> Duration {
    COMPACTION_PAUSE.max(chunk * COMPACTION_PAUSE_PER_CHUNK_TIME)
}

/// The compactor's pause between two chunks of the index
/// ([`COMPACT_KEYS_PER_LOCK`] keys): without it, it takes the index lock
/// back as soon as an entry's apply released it, and every take of the
/// apply path waits a chunk and a wake-up (applies of 30-80 ms, put p99
/// 25× its steady value, with three members compacting 100k keys on two
/// cores; 14 ms instead of 136 with the pause). 100k keys take about a
/// second. Only while the index is in use ([`INDEX_IN_USE_WINDOW`]): an
/// idle store compacts without pausing.
pub const INDEX_COMPACTION_PAUSE: Duration = Duration::from_micros(100);

/// The index counts as in use if an apply or a read took it within this.
const INDEX_IN_USE_WINDOW: Duration = Duration::from_millis(50);

/// A compaction's completion, for `physical: true` requests.
#[derive(Clone, Default)]
pub struct Completion(Arc<(Mutex<bool>, Condvar)>);

impl Completion {
    pub(crate) fn done(&self) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.0 .1.notify_all();
    }

    pub fn is_done(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout`; `true` once done.
    pub fn wait(&self, timeout: Duration) -> bool {
        let g = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .0
             .1
            .wait_timeout_while(g, timeout, |done| !*done)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

pub(crate) struct CompactJob {
    pub rev: i64,
    pub done: Completion,
}

/// What a defragmentation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defragmented {
    pub size_before: u64,
    pub size_after: u64,
    pub took: Duration,
}

/// The new file's name, next to the database's.
pub(crate) fn defrag_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".defrag");
    db.with_file_name(name)
}

/// A left-over copy of an interrupted defragmentation (the database
/// itself is intact): removed at start.
pub(crate) fn remove_leftover(db: &Path) -> Result<(), MvccError> {
    let p = defrag_path(db);
    match std::fs::remove_file(&p) {
        Ok(()) => {
            tracing::warn!(path = %p.display(), "removed the copy of an interrupted defragmentation");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MvccError::backend("remove", e)),
    }
}

/// Why a defragmentation stopped early.
pub(crate) enum Stop {
    /// The defragmentation failed; the member goes on with the old file.
    Failed(MvccError),
    /// The old database failed: the member must stop.
    Fatal(MvccError),
}

/// A defragmentation's outcome, once there is one.
type DefragOutcome = Mutex<Option<Result<Defragmented, MvccError>>>;

/// A defragmentation asked for, and its outcome once done.
#[derive(Clone, Default)]
pub(crate) struct DefragJob(Arc<(DefragOutcome, Condvar)>);

impl DefragJob {
    pub(crate) fn done(&self, r: Result<Defragmented, MvccError>) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.0 .1.notify_all();
    }

    /// Waits for the outcome.
    pub(crate) fn wait(&self) -> Result<Defragmented, MvccError> {
        let mut g = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.0 .1.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Work for the backend thread besides committing batches, in order.
pub(crate) enum Job {
    Compact(CompactJob),
    Defrag(DefragJob),
}

impl Job {
    /// The job will not run (the backend was replaced, or failed).
    pub(crate) fn abandon(self, why: &MvccError) {
        match self {
            Job::Compact(j) => j.done.done(),
            Job::Defrag(j) => j.done(Err(why.clone())),
        }
    }
}

#[derive(Default)]
pub(crate) struct Pending {
    /// Sealed batches the backend thread has not taken yet, in log order.
    pub queue: Vec<Batch>,
    /// Every record not yet committed to redb, by revision: what readers
    /// look up before redb. Records leave only after their commit.
    pub records: BTreeMap<Revision, Record>,
    /// The last log entry applied; its changes, if any, are queued.
    pub applied_index: u64,
    /// The consistent index redb last committed.
    pub flushed_index: u64,
    /// Memory held by `records`, approximately.
    pub bytes: usize,
    /// When the oldest uncommitted change was queued.
    pub since: Option<Instant>,
    pub jobs: VecDeque<Job>,
    /// Someone waits for everything applied so far to be committed.
    pub flush_now: bool,
    pub stop: bool,
    /// Tests: stop without writing what is queued, as a crash would.
    pub abandon: bool,
}

/// The store of one member.
pub struct Mvcc {
    /// Replaced whole when a snapshot from the leader is installed.
    pub(crate) db: RwLock<Arc<Database>>,
    /// parking_lot's lock, not std's: it is eventually fair, and the
    /// compactor hands it over with `unlock_fair` between chunks (see
    /// [`INDEX_COMPACTION_PAUSE`]); std's let the compactor take it back
    /// at once, chunk after chunk.
    pub(crate) index: parking_lot::RwLock<Index>,
    /// When the index was last taken other than by the compactor,
    /// nanoseconds after `epoch`: the compactor pauses between chunks only
    /// while others use the index.
    index_used_ns: std::sync::atomic::AtomicU64,
    epoch: Instant,
    pub(crate) pending: Mutex<Pending>,
    /// Signals the backend thread (work queued) and waiters (work done).
    pub(crate) pending_cond: Condvar,
    /// The published revision: everything at or below it is readable.
    pub(crate) current_rev: AtomicI64,
    pub(crate) lessor: Mutex<Lessor>,
    pub(crate) alarms: Mutex<Alarms>,
    /// The v3 auth state (replicated, see [`crate::auth`]).
    pub(crate) auth: RwLock<AuthStore>,
    /// This member's simple tokens (not replicated).
    pub(crate) tokens: Mutex<SimpleTokens>,
    /// The database file's size after the last commit, bytes.
    db_size: std::sync::atomic::AtomicU64,
    /// The file, if any (for its size).
    pub(crate) path: Option<std::path::PathBuf>,
    /// Bumped when a snapshot replaces the backend: work started against
    /// the old one (a batch write, a compaction) must not touch the new.
    pub(crate) generation: std::sync::atomic::AtomicU64,
    pub(crate) hub: WatchHub,
    pub(crate) cfg: MvccConfig,
    /// Signals the sync thread (a watcher needs catching up).
    sync_wake: (Mutex<bool>, Condvar),
    failed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What [`Mvcc::open`] found in the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// The last log entry whose effects the backend holds: replay the log
    /// after it.
    pub consistent_index: u64,
    pub current_rev: i64,
    pub compact_rev: i64,
    pub keys: usize,
    pub leases: usize,
}

impl Mvcc {
    /// Opens (or creates) the store, rebuilds the index and the lessor
    /// from the backend, and starts the backend and sync threads.
    pub fn open(storage: Storage, cfg: MvccConfig) -> Result<(Arc<Mvcc>, Restored), MvccError> {
        let path = match &storage {
            Storage::File(p) => Some(p.clone()),
            _ => None,
        };
        if let Some(p) = &path {
            remove_leftover(p)?;
        }
        let db = backend::open(storage)?;
        let lessor = Lessor::new(cfg.min_lease_ttl, cfg.lease_checkpoint_interval);
        let m = Arc::new(Mvcc {
            db: RwLock::new(Arc::new(db)),
            index: parking_lot::RwLock::new(Index::default()),
            pending: Mutex::new(Pending::default()),
            pending_cond: Condvar::new(),
            current_rev: AtomicI64::new(1),
            lessor: Mutex::new(lessor),
            alarms: Mutex::new(Alarms::default()),
            auth: RwLock::new(AuthStore::default()),
            tokens: Mutex::new(SimpleTokens::default()),
            db_size: std::sync::atomic::AtomicU64::new(0),
            path,
            generation: std::sync::atomic::AtomicU64::new(0),
            hub: WatchHub::default(),
            cfg,
            sync_wake: (Mutex::new(false), Condvar::new()),
            index_used_ns: std::sync::atomic::AtomicU64::new(0),
            epoch: Instant::now(),
            failed: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let restored = m.restore()?;
        m.update_db_size();
        let b = m.clone();
        let s = m.clone();
        let mut threads = m.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.push(
            std::thread::Builder::new()
                .name("mvcc-backend".into())
                .spawn(move || b.backend_loop())
                .map_err(|e| MvccError::backend("thread", e))?,
        );
        threads.push(
            std::thread::Builder::new()
                .name("mvcc-watch-sync".into())
                .spawn(move || s.sync_loop())
                .map_err(|e| MvccError::backend("thread", e))?,
        );
        drop(threads);
        Ok((m, restored))
    }

    /// Rebuilds the index, the lessor and the alarms from the backend
    /// (etcd's `restore`) and makes them the store's.
    fn restore(&self) -> Result<Restored, MvccError> {
        let loaded = Loaded::from_db(
            &self.db(),
            self.cfg.min_lease_ttl,
            self.cfg.lease_checkpoint_interval,
        )?;
        Ok(self.take(loaded))
    }

    /// Makes a loaded backend the store's own: index, lessor, alarms,
    /// revisions, and a compaction to finish if one was interrupted.
    pub(crate) fn take(&self, l: Loaded) -> Restored {
        let restored = l.restored;
        *self.index_write() = l.index;
        *self.lessor() = l.lessor;
        *self.alarms() = l.alarms;
        let was_enabled = self.auth().is_enabled();
        *self.auth_write() = l.auth;
        if was_enabled && !self.auth().is_enabled() {
            self.tokens().clear();
        }
        self.current_rev
            .store(restored.current_rev, Ordering::Release);
        let mut p = self.lock_pending();
        p.applied_index = restored.consistent_index;
        p.flushed_index = restored.consistent_index;
        if let Some(s) = l.unfinished_compaction {
            // Interrupted: finish it (etcd does the same).
            p.jobs.push_back(Job::Compact(CompactJob {
                rev: s,
                done: Completion::default(),
            }));
        }
        restored
    }

    /// Queues a defragmentation for the backend thread.
    pub(crate) fn queue_defrag(&self, job: DefragJob) {
        let mut p = self.lock_pending();
        if self.failed() {
            drop(p);
            return job.done(Err(MvccError::Maintenance(
                "defragment: the backend failed".into(),
            )));
        }
        p.jobs.push_back(Job::Defrag(job));
        self.pending_cond.notify_all();
    }

    /// The database (replaced when a snapshot is installed).
    pub(crate) fn db(&self) -> Arc<Database> {
        self.db.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn index_read(&self) -> RwLockReadGuard<'_, Index> {
        self.note_index_use();
        self.index.read()
    }

    pub(crate) fn index_write(&self) -> RwLockWriteGuard<'_, Index> {
        self.note_index_use();
        self.index.write()
    }

    fn note_index_use(&self) {
        self.index_used_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Whether anyone but the compactor took the index lately.
    fn index_in_use(&self) -> bool {
        let last = Duration::from_nanos(self.index_used_ns.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last) < INDEX_IN_USE_WINDOW
    }

    /// How the store was opened (a received snapshot is read in with the
    /// same lease settings).
    pub fn config(&self) -> &MvccConfig {
        &self.cfg
    }

    pub fn lessor(&self) -> MutexGuard<'_, Lessor> {
        self.lessor.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn alarms(&self) -> MutexGuard<'_, Alarms> {
        self.alarms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The v3 auth state, to check permissions against.
    pub fn auth(&self) -> std::sync::RwLockReadGuard<'_, AuthStore> {
        self.auth.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn auth_write(&self) -> std::sync::RwLockWriteGuard<'_, AuthStore> {
        self.auth.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The last log entry applied to the store (or found applied in the
    /// backend).
    pub fn applied_index(&self) -> u64 {
        self.lock_pending().applied_index
    }

    /// This member's simple tokens.
    pub fn tokens(&self) -> MutexGuard<'_, SimpleTokens> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database's size on disk after the last commit, bytes (what
    /// `--quota-backend-bytes` is checked against, and `dbSize`): the
    /// blocks its file occupies. redb grows its file sparsely, ahead of
    /// need (to about twice what it holds), so the file's length would
    /// overstate it; the blocks, like a bbolt file's length, count the
    /// pages written, free ones included.
    pub fn db_size(&self) -> u64 {
        self.db_size.load(Ordering::Acquire)
    }

    pub(crate) fn update_db_size(&self) {
        use std::os::unix::fs::MetadataExt;
        let size = match &self.path {
            Some(p) => std::fs::metadata(p)
                .map(|m| (m.blocks() * 512).min(m.len()))
                .unwrap_or(0),
            None => backend::allocated_bytes(&self.db()).unwrap_or(0),
        };
        self.db_size.store(size, Ordering::Release);
    }

    /// The published revision.
    pub fn current_rev(&self) -> i64 {
        self.current_rev.load(Ordering::Acquire)
    }

    pub fn compact_rev(&self) -> i64 {
        self.index_read().compact_rev
    }

    /// The consistent index redb last committed.
    pub fn flushed_index(&self) -> u64 {
        self.lock_pending().flushed_index
    }

    /// Whether the backend failed (the member must stop).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    fn fail(&self, e: &MvccError) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            (self.cfg.on_fatal)(e);
        }
    }

    /// A view for reads at or below the published revision.
    pub fn view(&self) -> Result<ReadView<'_>, MvccError> {
        // The revision first: everything it covers is queued or committed
        // by now, and stays findable (see `ReadView::record`).
        let rev = self.current_rev();
        let tx = self
            .db()
            .begin_read()
            .map_err(|e| MvccError::backend("begin", e))?;
        let kv = tx
            .open_table(backend::KV)
            .map_err(|e| MvccError::backend("table", e))?;
        Ok(ReadView { m: self, rev, kv })
    }

    /// etcd's Range, outside the log (a serializable read, or a
    /// linearizable one after the read barrier).
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        let view = self.view()?;
        range(&view, view.rev, req)
    }

    /// Size of the database after the last commit ([`Mvcc::db_size`]) and
    /// the part of it in use, bytes (etcd's `dbSize` and `dbSizeInUse`).
    /// May wait for the backend thread's commit: call it where blocking is
    /// allowed.
    pub fn db_sizes(&self) -> Result<(u64, u64), MvccError> {
        let in_use = backend::allocated_bytes(&self.db())?;
        let size = self.db_size();
        // The size is the file's after the last commit; a commit since
        // may have allocated more: never report more in use than there is.
        Ok((size, if size > 0 { in_use.min(size) } else { in_use }))
    }

    /// Waits until the backend committed every change applied so far.
    pub fn flush(&self) -> Result<(), MvccError> {
        let mut p = self.lock_pending();
        let target = p.applied_index;
        p.flush_now = true;
        self.pending_cond.notify_all();
        while p.flushed_index < target && !p.stop {
            if self.failed() {
                return Err(MvccError::backend("flush", "the backend failed"));
            }
            p = self
                .pending_cond
                .wait_timeout(p, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Adds a watcher; see [`crate::watch`].
    pub fn watch(&self, spec: WatchSpec, sink: Arc<dyn WatchSink>) -> WatcherKey {
        let start = spec.start_rev;
        // `current_rev` is read under the hub's lock: no notification can
        // slip between reading it and registering the watcher.
        let k = self.hub.add(spec, sink, || self.current_rev());
        if start != 0 && start <= self.current_rev() {
            self.wake_sync();
        }
        k
    }

    pub fn cancel_watch(&self, k: WatcherKey) -> bool {
        self.hub.cancel(k)
    }

    /// A progress notification for a synced watcher.
    pub fn watch_progress(&self, k: WatcherKey) -> bool {
        let rev = self.current_rev();
        self.hub.progress(k, rev)
    }

    pub fn watch_is_synced(&self, k: WatcherKey) -> bool {
        self.hub.is_synced(k)
    }

    pub fn watchers(&self) -> usize {
        self.hub.len()
    }

    /// Keys that exist now (etcd's `etcd_debugging_mvcc_keys_total`).
    pub fn keys_total(&self) -> usize {
        self.index_read().live_keys()
    }

    pub(crate) fn wake_sync(&self) {
        let (m, c) = &self.sync_wake;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        c.notify_one();
    }

    /// Stops the background threads without writing what is queued: what
    /// a crash leaves (tests).
    #[doc(hidden)]
    pub fn crash(&self) {
        self.lock_pending().abandon = true;
        self.close();
    }

    /// Stops the background threads after writing what is queued.
    pub fn close(&self) {
        self.lock_pending().stop = true;
        self.pending_cond.notify_all();
        self.wake_sync();
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    // ---- the backend thread ----

    fn backend_loop(self: Arc<Self>) {
        loop {
            let (batches, applied, job, stop, target) = {
                let mut p = self.lock_pending();
                loop {
                    let waiting = !p.queue.is_empty() || p.applied_index > p.flushed_index;
                    if waiting && p.since.is_none() {
                        p.since = Some(Instant::now());
                    }
                    let due = waiting
                        && (p.flush_now
                            || p.stop
                            || p.records.len() >= self.cfg.batch_limit
                            || p.bytes >= PENDING_MAX_BYTES / 2
                            || p.since
                                .is_some_and(|s| s.elapsed() >= self.cfg.batch_interval));
                    if due || !p.jobs.is_empty() || p.stop {
                        break;
                    }
                    let wait = p
                        .since
                        .map(|s| self.cfg.batch_interval.saturating_sub(s.elapsed()))
                        .unwrap_or(self.cfg.batch_interval)
                        .max(Duration::from_millis(1));
                    p = self
                        .pending_cond
                        .wait_timeout(p, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if p.abandon {
                    return;
                }
                let batches = std::mem::take(&mut p.queue);
                let target = Target::now(&self);
                (batches, p.applied_index, p.jobs.pop_front(), p.stop, target)
            };
            if let Err(e) = self.write(&target, batches, applied) {
                self.fail(&e);
                return;
            }
            match job {
                None => {}
                Some(Job::Compact(job)) => {
                    if let Err(e) = self.compact_job(&target, &job) {
                        self.fail(&e);
                        return;
                    }
                    job.done.done();
                }
                Some(Job::Defrag(job)) => match self.defrag_job(&target) {
                    Ok(d) => job.done(Ok(d)),
                    Err(Stop::Failed(e)) => {
                        tracing::warn!(error = %e, "failed to defragment");
                        job.done(Err(match e {
                            MvccError::Maintenance(_) => e,
                            e => MvccError::Maintenance(format!("defragment: {e}")),
                        }));
                    }
                    Err(Stop::Fatal(e)) => {
                        job.done(Err(MvccError::Maintenance(format!("defragment: {e}"))));
                        self.fail(&e);
                        return;
                    }
                },
            }
            if stop {
                let p = self.lock_pending();
                if p.queue.is_empty() && p.jobs.is_empty() {
                    return;
                }
            }
        }
    }

    /// Commits batches taken from the queue, then drops their records
    /// from `pending`. `target` is the database they were taken for.
    pub(crate) fn write(
        &self,
        target: &Target,
        batches: Vec<Batch>,
        applied: u64,
    ) -> Result<(), MvccError> {
        if batches.is_empty() && applied <= self.lock_pending().flushed_index {
            return Ok(());
        }
        debug_assert!(batches.windows(2).all(|w| w[0].index < w[1].index));
        debug_assert!(batches.last().is_none_or(|b| b.index <= applied));
        failpoint("before-backend-commit");
        backend::flush(&target.db, &batches, applied)?;
        if !target.current(self) {
            // A snapshot replaced the backend meanwhile; these batches
            // belonged to the old one.
            return Ok(());
        }
        self.update_db_size();
        let last = batches
            .iter()
            .rev()
            .find_map(|b| b.records.last())
            .map(|r| r.rev);
        let written = {
            let mut p = self.lock_pending();
            if !target.current(self) {
                return Ok(());
            }
            let written = match last {
                Some(last) => {
                    let rest = p.records.split_off(&Revision::new(last.main, last.sub + 1));
                    std::mem::replace(&mut p.records, rest)
                }
                None => BTreeMap::new(),
            };
            for r in written.values() {
                p.bytes -= r.data.len() + RECORD_OVERHEAD_BYTES;
            }
            p.flushed_index = applied;
            if p.applied_index <= applied && p.queue.is_empty() {
                p.flush_now = false;
                p.since = None;
            } else {
                p.since = Some(Instant::now());
            }
            self.pending_cond.notify_all();
            written
        };
        // Freed outside the lock.
        drop(written);
        Ok(())
    }

    /// A compaction at `job.rev`: the index first, a chunk of keys per
    /// lock, then the backend, a chunk of revisions per transaction. It
    /// pauses after each chunk ([`INDEX_COMPACTION_PAUSE`],
    /// [`COMPACTION_PAUSE`]) so that the members' writes keep their
    /// latency while it runs: it is background work, and on a machine
    /// whose cores are busy, a compactor that never pauses takes them from
    /// the apply path and the WAL (BENCHMARKS.md, "put p99 around a
    /// compaction").
    fn compact_job(&self, target: &Target, job: &CompactJob) -> Result<(), MvccError> {
        let started = Instant::now();
        let mut keep = Vec::new();
        let mut resume: Option<Box<[u8]>> = None;
        loop {
            // Not `index_write`: the compactor's own use is not a reason
            // for it to pause.
            let mut idx = self.index.write();
            if !target.current(self) {
                return Ok(()); // the backend was replaced
            }
            resume = idx.compact_some(job.rev, resume.as_deref(), COMPACT_KEYS_PER_LOCK, &mut keep);
            RwLockWriteGuard::unlock_fair(idx);
            if resume.is_none() {
                break;
            }
            if self.index_in_use() {
                std::thread::sleep(INDEX_COMPACTION_PAUSE);
            }
        }
        let keep: HashSet<Revision> = keep.into_iter().collect();
        // Every revision up to the compaction must be in redb first.
        let (batches, applied) = {
            let mut p = self.lock_pending();
            if !target.current(self) {
                return Ok(());
            }
            (std::mem::take(&mut p.queue), p.applied_index)
        };
        self.write(target, batches, applied)?;
        let mut from = Revision::new(0, 0);
        loop {
            let chunk = Instant::now();
            match backend::compact_chunk(
                &target.db,
                from,
                job.rev,
                &keep,
                self.cfg.compaction_batch_limit.max(1),
            )? {
                None => break,
                Some(next) => from = next,
            }
            // Let queued changes through between chunks.
            let due = {
                let mut p = self.lock_pending();
                if !target.current(self) {
                    return Ok(());
                }
                let due = !p.queue.is_empty()
                    && p.since
                        .is_some_and(|s| s.elapsed() >= self.cfg.batch_interval);
                due.then(|| (std::mem::take(&mut p.queue), p.applied_index))
            };
            if let Some((b, a)) = due {
                self.write(target, b, a)?;
            }
            std::thread::sleep(compaction_pause(chunk.elapsed()));
        }
        tracing::info!(
            revision = job.rev,
            kept = keep.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "finished compaction"
        );
        Ok(())
    }

    // ---- the sync thread ----

    fn sync_loop(self: Arc<Self>) {
        loop {
            if self.lock_pending().stop {
                return;
            }
            let more = self.hub.sync(&*self);
            let wait = if more {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(100)
            };
            let (m, c) = &self.sync_wake;
            let g = m.lock().unwrap_or_else(|p| p.into_inner());
            let (mut g, _) = c
                .wait_timeout_while(g, wait, |woken| !*woken)
                .unwrap_or_else(|p| p.into_inner());
            *g = false;
        }
    }
}

impl EventSource for Mvcc {
    fn current_rev(&self) -> i64 {
        Mvcc::current_rev(self)
    }

    fn compact_rev(&self) -> i64 {
        Mvcc::compact_rev(self)
    }

    fn events(&self, from: i64, to: i64) -> Vec<Event> {
        match self.view().and_then(|v| v.events(from, to)) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "reading events for watchers failed");
                Vec::new()
            }
        }
    }
}

/// The database the backend thread works on, and its generation: taken
/// under the queue's lock with the batches it writes.
pub(crate) struct Target {
    pub(crate) db: Arc<Database>,
    generation: u64,
}

impl Target {
    fn now(m: &Mvcc) -> Target {
        Target {
            db: m.db(),
            generation: m.generation.load(Ordering::Acquire),
        }
    }

    pub(crate) fn current(&self, m: &Mvcc) -> bool {
        m.generation.load(Ordering::Acquire) == self.generation
    }
}

/// A named point where tests may kill the process
/// (`FERRETCD_FAILPOINT=<name>` aborts when the point is reached). Public
/// for the server core's own points; not an API.
#[doc(hidden)]
pub fn failpoint(name: &str) {
    if failpoint_armed(name) {
        eprintln!("FERRETCD_FAILPOINT {name}: aborting");
        std::process::abort();
    }
}

/// Whether `FERRETCD_FAILPOINT=<name>` was set at start. Besides the
/// points that abort ([`failpoint`]), `corrupt-apply` makes this member
/// store every put's value with a `~` appended: a member whose data
/// differs from the others', for the corruption checks' tests.
pub fn failpoint_armed(name: &str) -> bool {
    static FAILPOINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let armed = FAILPOINT.get_or_init(|| std::env::var("FERRETCD_FAILPOINT").ok());
    armed.as_deref() == Some(name)
}

/// A backend read into memory: what a store is made of besides the
/// database itself.
pub(crate) struct Loaded {
    pub index: Index,
    pub lessor: Lessor,
    pub alarms: Alarms,
    pub auth: AuthStore,
    pub restored: Restored,
    pub unfinished_compaction: Option<i64>,
}

impl Loaded {
    pub(crate) fn from_db(
        db: &Database,
        min_lease_ttl: i64,
        checkpoint_interval: Option<Duration>,
    ) -> Result<Loaded, MvccError> {
        let tx = db
            .begin_read()
            .map_err(|e| MvccError::backend("begin", e))?;
        let meta = backend::read_meta(&tx)?;
        let mut index = Index::default();
        let mut current = 1i64;
        {
            let kv = tx
                .open_table(backend::KV)
                .map_err(|e| MvccError::backend("table", e))?;
            for item in kv.iter().map_err(|e| MvccError::backend("read", e))? {
                let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
                let Some((rev, tombstone)) = Revision::from_key(k.value()) else {
                    return Err(MvccError::Format(format!(
                        "the key table holds a key that is no revision: {:?}",
                        k.value()
                    )));
                };
                let head = KvHead::decode(v.value()).map_err(|e| {
                    MvccError::Format(format!("revision {rev}: undecodable value: {e}"))
                })?;
                current = current.max(rev.main);
                if tombstone {
                    if index.key_index_mut(&head.key).is_none() {
                        // Its key's earlier revisions were compacted: a
                        // compaction at exactly this revision kept it.
                        index.restore(&head.key, KeyIndex::restored_tombstone(rev));
                    } else {
                        index.tombstone(&head.key, rev);
                    }
                    continue;
                }
                match index.key_index(&head.key) {
                    // Through the index, which counts the keys that exist.
                    Some(ki) if !ki.is_empty() => {
                        index.put(&head.key, rev, head.lease);
                    }
                    _ => index.restore(
                        &head.key,
                        KeyIndex::restored(
                            Revision::new(head.create_revision, 0),
                            rev,
                            head.version,
                            head.lease,
                        ),
                    ),
                }
            }
        }
        let mut lessor = Lessor::new(min_lease_ttl, checkpoint_interval);
        {
            let t = tx
                .open_table(backend::LEASE)
                .map_err(|e| MvccError::backend("table", e))?;
            for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
                let (_, v) = item.map_err(|e| MvccError::backend("read", e))?;
                let l = leasepb::Lease::decode(v.value())
                    .map_err(|e| MvccError::Format(format!("undecodable lease: {e}")))?;
                lessor.restore(l);
            }
        }
        for (key, ki) in index.iter() {
            if ki.is_live() && ki.lease != 0 && !lessor.attach(ki.lease, key) {
                tracing::error!(
                    lease = ki.lease,
                    key = %String::from_utf8_lossy(key),
                    "a key is attached to a lease that does not exist"
                );
            }
        }
        let mut alarms = Alarms::default();
        {
            let t = tx
                .open_table(backend::ALARM)
                .map_err(|e| MvccError::backend("table", e))?;
            for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
                let (k, _) = item.map_err(|e| MvccError::backend("read", e))?;
                let m = ferret_proto::etcdserverpb::AlarmMember::decode(k.value())
                    .map_err(|e| MvccError::Format(format!("undecodable alarm: {e}")))?;
                alarms.restore(m);
            }
        }
        let auth = backend::read_auth(&tx)?;
        let compact = meta
            .scheduled_compact
            .or(meta.finished_compact)
            .unwrap_or(NEVER_COMPACTED);
        current = current.max(compact);
        index.compact_rev = compact;
        let keys = index.iter().filter(|(_, ki)| ki.is_live()).count();
        let unfinished_compaction = meta
            .scheduled_compact
            .filter(|s| meta.finished_compact != Some(*s));
        let restored = Restored {
            consistent_index: meta.consistent_index,
            current_rev: current,
            compact_rev: compact,
            keys,
            leases: lessor.len(),
        };
        Ok(Loaded {
            index,
            lessor,
            alarms,
            auth,
            restored,
            unfinished_compaction,
        })
    }
}

/// The fields of a stored `KeyValue` the index needs, decoded without
/// copying the value.
struct KvHead {
    key: Bytes,
    create_revision: i64,
    version: i64,
    lease: i64,
}

impl KvHead {
    fn decode(mut buf: &[u8]) -> Result<KvHead, String> {
        use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
        let mut h = KvHead {
            key: Bytes::new(),
            create_revision: 0,
            version: 0,
            lease: 0,
        };
        while !buf.is_empty() {
            let (tag, wt) = decode_key(&mut buf).map_err(|e| e.to_string())?;
            match (tag, wt) {
                (1, WireType::LengthDelimited) => {
                    let len = decode_varint(&mut buf).map_err(|e| e.to_string())? as usize;
                    if len > buf.len() {
                        return Err("the key overruns the value".into());
                    }
                    h.key = Bytes::copy_from_slice(&buf[..len]);
                    buf = &buf[len..];
                }
                (2, WireType::Varint) => {
                    h.create_revision = decode_varint(&mut buf).map_err(|e| e.to_string())? as i64
                }
                (4, WireType::Varint) => {
                    h.version = decode_varint(&mut buf).map_err(|e| e.to_string())? as i64
                }
                (6, WireType::Varint) => {
                    h.lease = decode_varint(&mut buf).map_err(|e| e.to_string())? as i64
                }
                _ => skip_field(wt, tag, &mut buf, DecodeContext::default())
                    .map_err(|e| e.to_string())?,
            }
        }
        Ok(h)
    }
}

/// Reads at or below one revision: uncommitted records, then redb.
pub struct ReadView<'a> {
    m: &'a Mvcc,
    /// The published revision when the view was opened.
    pub rev: i64,
    kv: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl ReadView<'_> {
    /// The stored bytes of a revision at or below the view's.
    ///
    /// A record is in `pending` until redb committed it, so: not in
    /// `pending` means committed. The view's transaction may predate that
    /// commit; then a fresh transaction has it. (Absent from both, it was
    /// compacted away after the caller found it in the index.)
    pub(crate) fn record(
        &self,
        rev: Revision,
        tombstone: bool,
    ) -> Result<Option<Bytes>, MvccError> {
        if let Some(r) = self.m.lock_pending().records.get(&rev) {
            return Ok(Some(r.data.clone()));
        }
        let key = rev.to_key(tombstone);
        if let Some(g) = self
            .kv
            .get(key.as_bytes())
            .map_err(|e| MvccError::backend("read", e))?
        {
            return Ok(Some(Bytes::copy_from_slice(g.value())));
        }
        let tx = self
            .m
            .db()
            .begin_read()
            .map_err(|e| MvccError::backend("begin", e))?;
        let kv = tx
            .open_table(backend::KV)
            .map_err(|e| MvccError::backend("table", e))?;
        let v = kv
            .get(key.as_bytes())
            .map_err(|e| MvccError::backend("read", e))?;
        Ok(v.map(|g| Bytes::copy_from_slice(g.value())))
    }

    pub(crate) fn key_value(&self, rev: Revision) -> Result<KeyValue, MvccError> {
        match self.record(rev, false)? {
            Some(data) => KeyValue::decode(data).map_err(|e| MvccError::backend("decode", e)),
            // Compacted between the index walk and this read.
            None => Err(MvccError::Compacted),
        }
    }

    /// Every event with a main revision in `from..=to`, in order.
    pub fn events(&self, from: i64, to: i64) -> Result<Vec<Event>, MvccError> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let lo = Revision::new(from, 0);
        let hi = Revision::new(to + 1, 0);
        // Uncommitted records and a transaction taken together: every
        // revision in range is in one of them.
        let (queued, kv) = {
            let p = self.m.lock_pending();
            let queued: Vec<Record> = p.records.range(lo..hi).map(|(_, r)| r.clone()).collect();
            let tx = self
                .m
                .db()
                .begin_read()
                .map_err(|e| MvccError::backend("begin", e))?;
            let kv = tx
                .open_table(backend::KV)
                .map_err(|e| MvccError::backend("table", e))?;
            (queued, kv)
        };
        let mut last: Option<Revision> = None;
        for item in kv
            .range::<&[u8]>(lo.to_key(false).as_bytes()..hi.to_key(false).as_bytes())
            .map_err(|e| MvccError::backend("read", e))?
        {
            let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
            let Some((rev, tomb)) = Revision::from_key(k.value()) else {
                continue;
            };
            out.push(to_event(rev, tomb, Bytes::copy_from_slice(v.value()))?);
            last = Some(rev);
        }
        for r in queued {
            // Committed records are newer than nothing uncommitted: any
            // queued record at or below the last committed one is a copy.
            if last.is_some_and(|l| r.rev <= l) {
                continue;
            }
            out.push(to_event(r.rev, r.tombstone, r.data)?);
        }
        Ok(out)
    }
}

fn to_event(rev: Revision, tombstone: bool, data: Bytes) -> Result<Event, MvccError> {
    let mut kv = KeyValue::decode(data).map_err(|e| MvccError::backend("decode", e))?;
    let ty = if tombstone {
        kv.mod_revision = rev.main;
        EventType::Delete
    } else {
        EventType::Put
    };
    Ok(Event {
        r#type: ty as i32,
        kv: Some(kv),
        prev_kv: None,
    })
}

/// Something that can look up values by revision: a read view, or a write
/// transaction that also sees its own changes.
pub(crate) trait Values {
    fn key_value(&self, rev: Revision) -> Result<KeyValue, MvccError>;
    fn index(&self) -> &Mvcc;
}

impl Values for ReadView<'_> {
    fn key_value(&self, rev: Revision) -> Result<KeyValue, MvccError> {
        ReadView::key_value(self, rev)
    }
    fn index(&self) -> &Mvcc {
        self.m
    }
}

/// The result of mvcc's range (etcd's `RangeResult`).
pub(crate) struct RangeResult {
    pub kvs: Vec<KeyValue>,
    pub count: usize,
    pub rev: i64,
}

/// etcd's `rangeKeys`: the keys of a range as of `rev` (0: `cur`), with
/// values for at most `limit` of them (0: all), and how many there are.
pub(crate) fn range_keys(
    src: &dyn Values,
    range: KeyRange<'_>,
    cur: i64,
    rev: i64,
    limit: usize,
    count_only: bool,
) -> Result<RangeResult, MvccError> {
    if rev > cur {
        return Err(MvccError::FutureRev);
    }
    let rev = if rev <= 0 { cur } else { rev };
    let m = src.index();
    let mut revs: Vec<Revision> = Vec::new();
    let mut resume: Option<Box<[u8]>> = None;
    loop {
        let idx = m.index_read();
        if rev < idx.compact_rev {
            return Err(MvccError::Compacted);
        }
        resume = idx.walk(range, rev, resume.as_deref(), KEYS_PER_LOCK, |_, f| {
            revs.push(f.modified);
            true
        });
        if resume.is_none() {
            break;
        }
    }
    let count = revs.len();
    if count_only || count == 0 {
        return Ok(RangeResult {
            kvs: Vec::new(),
            count,
            rev: cur,
        });
    }
    let n = if limit == 0 { count } else { limit.min(count) };
    let mut kvs = Vec::with_capacity(n);
    for r in &revs[..n] {
        kvs.push(src.key_value(*r)?);
    }
    Ok(RangeResult {
        kvs,
        count,
        rev: cur,
    })
}

/// etcd's `applierV3backend.Range`: limits, filters and sorting on top of
/// [`range_keys`].
pub(crate) fn range(
    src: &dyn Values,
    cur: i64,
    r: &RangeRequest,
) -> Result<RangeResponse, MvccError> {
    use range_request::{SortOrder, SortTarget};
    let mut limit = r.limit;
    let order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
    let target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
    if order != SortOrder::None
        || r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0
    {
        // Fetch everything; sort and truncate afterwards.
        limit = 0;
    }
    if limit > 0 {
        // One more, to tell whether there is more.
        limit += 1;
    }
    let range = KeyRange::new(&r.key, &r.range_end);
    let mut rr = range_keys(
        src,
        range,
        cur,
        r.revision,
        limit.max(0) as usize,
        r.count_only,
    )?;
    if r.max_mod_revision != 0 {
        rr.kvs.retain(|kv| kv.mod_revision <= r.max_mod_revision);
    }
    if r.min_mod_revision != 0 {
        rr.kvs.retain(|kv| kv.mod_revision >= r.min_mod_revision);
    }
    if r.max_create_revision != 0 {
        rr.kvs
            .retain(|kv| kv.create_revision <= r.max_create_revision);
    }
    if r.min_create_revision != 0 {
        rr.kvs
            .retain(|kv| kv.create_revision >= r.min_create_revision);
    }
    let order = if target != SortTarget::Key && order == SortOrder::None {
        // Results come in key order; another target sorts ascending.
        SortOrder::Ascend
    } else {
        order
    };
    if order != SortOrder::None {
        let key_of = |kv: &KeyValue| -> SortKey {
            match target {
                SortTarget::Key => SortKey::Bytes(kv.key.clone()),
                SortTarget::Version => SortKey::Int(kv.version),
                SortTarget::Create => SortKey::Int(kv.create_revision),
                SortTarget::Mod => SortKey::Int(kv.mod_revision),
                SortTarget::Value => SortKey::Bytes(kv.value.clone()),
            }
        };
        // Go's sort.Sort is not stable; for equal keys etcd's order is
        // that of its pdqsort, which for up to 12 elements is an
        // insertion sort: stable, equal elements in key order, in both
        // directions. A stable sort gives the same.
        let mut keyed: Vec<(SortKey, KeyValue)> =
            rr.kvs.drain(..).map(|kv| (key_of(&kv), kv)).collect();
        if order == SortOrder::Descend {
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
        } else {
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        rr.kvs = keyed.into_iter().map(|(_, kv)| kv).collect();
    }
    let mut more = false;
    if r.limit > 0 && rr.kvs.len() > r.limit as usize {
        rr.kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in &mut rr.kvs {
            kv.value = Bytes::new();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: rr.rev,
            ..Default::default()
        }),
        kvs: rr.kvs,
        more,
        count: rr.count as i64,
    })
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Int(i64),
    Bytes(Bytes),
}
