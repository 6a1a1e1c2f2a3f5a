//! The WAL: creation, recovery, group-committed appends, rotation, release.
//! The format and the recovery rules are specified in the crate docs.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::io::{parent_or_dot, FaultInjector, Io, NoFaults};
use crate::record::{self, EntryRecord, FrameError, HardState, Record, SegmentHeader};
use crate::replay::{LogPosition, Replay};
use crate::segment::{self, Segment};
use crate::{WalError, METADATA_MAX_BYTES, RECORD_PAYLOAD_MAX_BYTES};

/// The default size past which the tail segment is closed and a new one
/// started: etcd's 64 MiB. Large enough that rotation (three fsyncs) is rare,
/// small enough that `release_before` frees space in useful steps and a
/// segment is read into memory whole during recovery.
pub const SEGMENT_SIZE_DEFAULT_BYTES: u64 = 64 << 20;

/// The most bytes `append`, `set_hard_state` and `mark_snapshot` may buffer
/// before `sync`. A driver syncs once per Raft `Ready`, whose entries raft
/// bounds (max size per message × max in-flight messages, a few MiB); this
/// bound only stops a driver that forgot to sync from eating all memory. It
/// also bounds how far a segment can grow past the rotation size.
pub const UNSYNCED_MAX_BYTES: usize = 512 << 20;

/// How much checksumming recovery may spend, per byte after the damage, to
/// prove that nothing valid follows a damaged record. Past this budget the
/// damage is reported as corruption: unproven is not torn.
const SCAN_CRC_BYTES_PER_BYTE: usize = 8;

/// Tuning and test seams for [`Wal::create_with`] and [`Wal::open_with`].
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Rotate once the tail segment reaches this size (checked after each
    /// sync, so a segment ends on a sync boundary).
    pub segment_size_max_bytes: u64,
    /// Consulted before every disk-changing call; tests make calls fail.
    pub faults: Arc<dyn FaultInjector>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_max_bytes: SEGMENT_SIZE_DEFAULT_BYTES,
            faults: Arc::new(NoFaults),
        }
    }
}

/// Segment files taken out of the log by [`Wal::detach_before`], not yet
/// deleted.
#[must_use = "the files stay on disk until `remove` runs"]
#[derive(Debug)]
pub struct Released {
    io: Io,
    dir: PathBuf,
    /// Oldest first.
    segments: Vec<Segment>,
}

impl Released {
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// This release, then `newer` (detached after it), as one.
    pub fn then(mut self, newer: Released) -> Released {
        self.segments.extend(newer.segments);
        self
    }

    /// Deletes the files oldest first. Each leaves the log by a rename to
    /// its `.tmp` name (which `open` deletes) and a directory fsync: a
    /// crash leaves a gapless suffix of segments (a gap is what `open`
    /// refuses). A file already gone counts as deleted. On an error,
    /// returns it with what is left, the file that failed first: delete
    /// that before any newer release ([`Released::then`]), or a gap
    /// follows.
    ///
    /// Then its space is freed gently ([`free_gently`]): this runs beside
    /// the WAL's own fsyncs, and a 64 MiB unlink at once stalls them. A
    /// failure there only leaves a `.tmp` file for the next `open`.
    pub fn remove(self) -> Result<(), (WalError, Released)> {
        self.remove_paced(&AtomicBool::new(false))
    }

    /// [`Released::remove`], freeing the space without pauses once
    /// `hurry` is set (the member is stopping: it should not wait seconds
    /// for a gentleness nobody needs any more).
    pub fn remove_paced(mut self, hurry: &AtomicBool) -> Result<(), (WalError, Released)> {
        while let Some(seg) = self.segments.first() {
            let doomed = seg.tmp_path();
            match self.io.rename(&seg.path, &doomed) {
                Ok(()) => {}
                // Renamed or deleted by an attempt that failed later on.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err((e, self)),
            }
            // Only a durable rename takes it out of the log.
            if let Err(e) = self.io.sync_dir(&self.dir) {
                return Err((e, self));
            }
            let seg = self.segments.remove(0);
            if let Err(e) = free_gently(&self.io, &doomed, hurry) {
                tracing::warn!(file = %doomed.display(), error = %e, "could not delete a released WAL segment; the next start deletes it");
            }
            tracing::info!(file = %seg.path.display(), "released WAL segment");
        }
        Ok(())
    }
}

/// How much of a released segment one truncation frees, and the pause
/// after each ([`free_gently`]).
const FREE_STEP_BYTES: u64 = 256 << 10;
const FREE_STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Deletes a file that is out of the log, freeing its blocks a little at
/// a time. On this project's test machine (ext4 mounted with `discard`)
/// an unlink and a directory fsync of a 64 MiB segment made a concurrent
/// fdatasync wait 27-47 ms; truncating 4 MiB at a time with 5 ms pauses
/// still let one wait 6-11 ms, and under a v3 load with a compaction
/// running, every member's WAL fsync took 12-22 ms for the 300 ms it
/// lasted (put p99 of that second 40 ms). 256 KiB at a time keeps the
/// slowest under 2 ms, for about 1.5 s of deletion in the background
/// (`bench/unlink-stall.py`). No directory fsync: an unlink lost to a
/// crash leaves the `.tmp` name, which `open` deletes.
fn free_gently(io: &Io, path: &Path, hurry: &AtomicBool) -> Result<(), WalError> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WalError::io("open", path, e)),
    };
    let mut len = file
        .metadata()
        .map_err(|e| WalError::io("stat", path, e))?
        .len();
    while len > 0 {
        len = len.saturating_sub(FREE_STEP_BYTES);
        io.truncate(&file, path, len)?;
        if len > 0 && !hurry.load(Ordering::Relaxed) {
            std::thread::sleep(FREE_STEP_PAUSE);
        }
    }
    drop(file);
    match io.remove_file(path) {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// What `open` read back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The blob given to `create` (member id, cluster, initial members...).
    pub metadata: Vec<u8>,
    /// The last hard state written, if any.
    pub hard_state: Option<HardState>,
    /// `(index, term)` of the last snapshot marker, if any.
    pub snapshot: Option<(u64, u64)>,
    /// The live log after the snapshot marker: entries with index above it,
    /// contiguous and in order, each conflict truncation applied.
    pub entries: Vec<EntryRecord>,
}

/// The state the records written so far describe (without the entries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LogState {
    pos: LogPosition,
    hard_state: Option<HardState>,
}

/// An open write-ahead log, positioned for appending. One writer per
/// directory; the caller keeps it on one thread (or behind a lock).
/// Dropping it discards whatever was buffered and not synced.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    io: Io,
    segment_size_max_bytes: u64,
    /// Repeated in every segment's preamble, so any suffix of segments is
    /// self-contained after `release_before`.
    metadata: Vec<u8>,
    /// Live segments, oldest first; the last is the tail being appended to.
    segments: Vec<Segment>,
    tail: File,
    /// Bytes in the tail file; all of them were fsynced.
    tail_bytes: u64,
    /// Records encoded by `append` & co. and not yet written: the group
    /// commit that `sync` turns into one write and one fdatasync.
    unsynced: Vec<u8>,
    /// The log as the buffered records leave it (what the next call is
    /// checked against).
    pending: LogState,
    /// The log as of the last successful sync: what a rotated segment's
    /// preamble repeats, and what bounds `release_before`.
    durable: LogState,
    /// Set by the first failed write, sync or rotation; every later write is
    /// refused with it.
    poisoned: Option<String>,
    /// `--unsafe-no-fsync`: `sync` writes without the `fdatasync`, as
    /// etcd's `SetUnsafeNoFsync` (see [`Wal::set_unsafe_no_fsync`]).
    unsafe_no_fsync: bool,
}

impl Wal {
    /// Whether `dir` holds at least one segment. A missing or unreadable
    /// directory is "no".
    pub fn exists(dir: &Path) -> bool {
        segment::list(dir).is_ok_and(|l| !l.segments.is_empty())
    }

    /// Creates a WAL in `dir` (`<data-dir>/member/wal`) with the default
    /// options.
    pub fn create(dir: &Path, metadata: &[u8]) -> Result<Wal, WalError> {
        Wal::create_with(dir, metadata, WalOptions::default())
    }

    /// Creates a WAL. The first segment is written in a sibling `<dir>.tmp`
    /// directory, fsynced, and the directory renamed into place and its
    /// parent fsynced: a crash leaves either no WAL or a complete one, never
    /// a WAL without its metadata.
    pub fn create_with(dir: &Path, metadata: &[u8], options: WalOptions) -> Result<Wal, WalError> {
        if metadata.len() > METADATA_MAX_BYTES {
            return Err(WalError::TooLarge {
                what: "metadata",
                len_bytes: metadata.len() as u64,
                max_bytes: METADATA_MAX_BYTES as u64,
            });
        }
        if Wal::exists(dir) {
            return Err(WalError::AlreadyExists(dir.to_path_buf()));
        }
        let io = Io::new(options.faults.clone());
        let tmp_dir = sibling_tmp_dir(dir);
        if tmp_dir.exists() {
            tracing::warn!(dir = %tmp_dir.display(), "removing the leftover of an interrupted WAL creation");
            io.remove_dir_all(&tmp_dir)?;
        }
        io.create_dir_all(&tmp_dir)?;
        let state = LogState::default();
        let first = Segment::new(&tmp_dir, 0, 1);
        let bytes = preamble(&first, metadata, &state);
        drop(write_segment_file(&io, &tmp_dir, &first, &bytes)?);
        io.rename(&tmp_dir, dir)?;
        io.sync_dir(&parent_or_dot(dir))?;

        let first = Segment::new(dir, 0, 1);
        let tail = open_for_append(&first.path, bytes.len() as u64)?;
        tracing::info!(dir = %dir.display(), "created WAL");
        Ok(Wal {
            dir: dir.to_path_buf(),
            io,
            segment_size_max_bytes: options.segment_size_max_bytes,
            metadata: metadata.to_vec(),
            segments: vec![first],
            tail,
            tail_bytes: bytes.len() as u64,
            unsynced: Vec::new(),
            pending: state,
            durable: state,
            poisoned: None,
            unsafe_no_fsync: false,
        })
    }

    /// Opens the WAL in `dir` with the default options.
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        Wal::open_with(dir, WalOptions::default())
    }

    /// Replays every segment, repairs a torn tail (see the crate docs for
    /// exactly what is repaired and what is refused) and positions the WAL
    /// for appending after the last valid record.
    pub fn open_with(dir: &Path, options: WalOptions) -> Result<(Wal, Recovered), WalError> {
        let io = Io::new(options.faults.clone());
        let listing = segment::list(dir)?;
        if listing.segments.is_empty() {
            return Err(WalError::NotFound(dir.to_path_buf()));
        }
        if !listing.tmp_files.is_empty() {
            for tmp in &listing.tmp_files {
                tracing::warn!(file = %tmp.display(), "removing a segment file an interrupted rotation or release left behind");
                io.remove_file(tmp)?;
            }
            io.sync_dir(dir)?;
        }
        let mut segments = listing.segments;
        for pair in segments.windows(2) {
            if pair[1].seq != pair[0].seq.wrapping_add(1) {
                return Err(WalError::corrupt(
                    &pair[1].path,
                    0,
                    format!(
                        "segment sequence jumps from {:#x} to {:#x}: a segment is missing",
                        pair[0].seq, pair[1].seq
                    ),
                ));
            }
        }

        // A rotation is write tmp, fsync, rename, fsync dir, so an empty or
        // zero-filled segment should not survive a crash; if a filesystem
        // leaves one anyway, it holds nothing and is removed. The segment
        // before it was fully synced before the rotation began, so it is
        // then read strictly (no torn tail allowed).
        let mut tail_known_complete = false;
        let last = segments.last().expect("checked non-empty").clone();
        let last_bytes = fs::read(&last.path).map_err(|e| WalError::io("read", &last.path, e))?;
        let mut last_bytes = Some(last_bytes);
        if last_bytes
            .as_ref()
            .is_some_and(|b| b.iter().all(|&x| x == 0))
        {
            if segments.len() == 1 {
                return Err(WalError::corrupt(
                    &last.path,
                    0,
                    "the only segment is empty: no metadata to recover",
                ));
            }
            tracing::warn!(file = %last.path.display(), "removing an empty last segment (crash during rotation)");
            io.remove_file(&last.path)?;
            io.sync_dir(dir)?;
            segments.pop();
            last_bytes = None;
            tail_known_complete = true;
        }

        let mut replay = Replay::default();
        let count = segments.len();
        let mut tail_valid_bytes = 0u64;
        let mut prev: Option<(PathBuf, u64)> = None;
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == count;
            let already_read = if is_last { last_bytes.take() } else { None };
            let bytes = match already_read {
                Some(b) => b,
                None => fs::read(&seg.path).map_err(|e| WalError::io("read", &seg.path, e))?,
            };
            let tail_may_be_torn = is_last && !tail_known_complete;
            let valid = replay_segment(seg, &bytes, prev.as_ref(), tail_may_be_torn, &mut replay)?;
            prev = Some((seg.path.clone(), bytes.len() as u64));
            if is_last {
                tail_valid_bytes = valid.end as u64;
                if let Some(reason) = valid.torn {
                    tracing::warn!(
                        file = %seg.path.display(),
                        offset = valid.end,
                        dropped_bytes = bytes.len() - valid.end,
                        %reason,
                        "truncating a torn write at the end of the WAL"
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&seg.path)
                        .map_err(|e| WalError::io("open", &seg.path, e))?;
                    io.truncate(&f, &seg.path, tail_valid_bytes)?;
                    io.sync_data(&f, &seg.path)?;
                }
            }
        }

        let tail_seg = segments.last().expect("non-empty");
        let tail = open_for_append(&tail_seg.path, tail_valid_bytes)?;
        let metadata = replay.metadata.clone().unwrap_or_default();
        let state = LogState {
            pos: replay.pos,
            hard_state: replay.hard_state,
        };
        let recovered = Recovered {
            metadata: metadata.clone(),
            hard_state: replay.hard_state,
            snapshot: replay.pos.snapshot,
            entries: replay.entries.into(),
        };
        tracing::info!(
            dir = %dir.display(),
            segments = segments.len(),
            entries = recovered.entries.len(),
            last_index = state.pos.last_index,
            "opened WAL"
        );
        let wal = Wal {
            dir: dir.to_path_buf(),
            io,
            segment_size_max_bytes: options.segment_size_max_bytes,
            metadata,
            segments,
            tail,
            tail_bytes: tail_valid_bytes,
            unsynced: Vec::new(),
            pending: state,
            durable: state,
            poisoned: None,
            unsafe_no_fsync: false,
        };
        Ok((wal, recovered))
    }

    /// Buffers entries; they are durable only once `sync` returns. Each entry
    /// must come after the snapshot marker and leave no gap; an index at or
    /// below the last one truncates the log there (Raft's conflict rule).
    /// A refused call buffers nothing.
    pub fn append(&mut self, entries: &[EntryRecord]) -> Result<(), WalError> {
        self.check_usable()?;
        let mut pos = self.pending.pos;
        let mut added_bytes = 0usize;
        for e in entries {
            let payload_bytes = record::entry_payload_bytes(e);
            if payload_bytes > RECORD_PAYLOAD_MAX_BYTES {
                return Err(WalError::TooLarge {
                    what: "entry",
                    len_bytes: payload_bytes as u64,
                    max_bytes: RECORD_PAYLOAD_MAX_BYTES as u64,
                });
            }
            pos.check_entry(e.index).map_err(WalError::InvalidInput)?;
            pos.apply_entry(e.index);
            added_bytes += record::FRAME_HEADER_BYTES + payload_bytes;
        }
        self.reserve(added_bytes)?;
        for e in entries {
            record::encode_entry(&mut self.unsynced, e);
        }
        self.pending.pos = pos;
        Ok(())
    }

    /// Buffers a hard state; recovery returns the last one written.
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<(), WalError> {
        self.check_usable()?;
        self.reserve(record::FRAME_HEADER_BYTES + 24)?;
        record::encode_hard_state(&mut self.unsynced, hs);
        self.pending.hard_state = Some(*hs);
        Ok(())
    }

    /// Buffers a snapshot marker: the snapshot file at `(index, term)` is
    /// saved (call after `snap::save_snapshot` returned), so entries up to
    /// `index` are no longer needed. Markers never go backwards.
    pub fn mark_snapshot(&mut self, index: u64, term: u64) -> Result<(), WalError> {
        self.check_usable()?;
        self.pending
            .pos
            .check_snapshot(index)
            .map_err(WalError::InvalidInput)?;
        self.reserve(record::FRAME_HEADER_BYTES + 16)?;
        record::encode_snapshot(&mut self.unsynced, index, term);
        self.pending.pos.apply_snapshot(index, term);
        Ok(())
    }

    /// Writes everything buffered with one `write` and makes it durable with
    /// one `fdatasync`, then rotates if the tail passed the size limit.
    /// After `Ok`, every buffered record survives any crash. After `Err`,
    /// the records may or may not be on disk and the WAL refuses all further
    /// writes: the caller must stop and recover by reopening.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let path = self.tail_path().to_path_buf();
        let result = self
            .io
            .write_all(&mut self.tail, &path, &self.unsynced)
            .and_then(|()| {
                if self.unsafe_no_fsync {
                    return Ok(());
                }
                // etcd's etcd_disk_wal_fsync_duration_seconds: the fsync alone.
                let started = std::time::Instant::now();
                let synced = self.io.sync_data(&self.tail, &path);
                ferret_metrics::get()
                    .wal_fsync
                    .observe(started.elapsed().as_secs_f64());
                synced
            });
        self.poison_on_error(result)?;
        self.tail_bytes += self.unsynced.len() as u64;
        self.unsynced.clear();
        self.durable = self.pending;
        if self.tail_bytes >= self.segment_size_max_bytes {
            let result = self.rotate();
            self.poison_on_error(result)?;
        }
        Ok(())
    }

    /// `--unsafe-no-fsync`: from now on `sync` writes its records without
    /// the `fdatasync`, as etcd's WAL does with the flag, so a crash of
    /// the machine (not of the process: the page cache has the records)
    /// may lose entries that Raft took as persisted. Segment rotation and
    /// directory changes still fsync: they are rare.
    pub fn set_unsafe_no_fsync(&mut self) {
        self.unsafe_no_fsync = true;
    }

    /// Deletes the oldest segments whose live entries are all below `index`,
    /// which requires a durable snapshot marker at `index - 1` or later (else
    /// `InvalidInput`): after a snapshot at `s`, `release_before(s + 1)`.
    /// Segment `k` qualifies when segment `k + 1` was cut at first index
    /// `<= index`: everything live in `k` is below that. The tail is never
    /// deleted. [`Wal::detach_before`] then [`Released::remove`].
    /// On an error, the segments not deleted go back into the log, so a
    /// later call retries them.
    pub fn release_before(&mut self, index: u64) -> Result<(), WalError> {
        self.detach_before(index)?.remove().map_err(|(e, left)| {
            self.segments.splice(0..0, left.segments);
            e
        })
    }

    /// The first half of [`Wal::release_before`]: takes the segments out of
    /// the log and returns their files, for the caller to delete where
    /// waiting on the disk holds nothing up (unlinking a 64 MiB segment and
    /// fsyncing the directory took 200 ms under load, in the Ready loop).
    /// Files a crash leaves before their deletion are a gapless run older
    /// than the snapshot: `open` reads them as the oldest part of the log,
    /// and the next release deletes them.
    pub fn detach_before(&mut self, index: u64) -> Result<Released, WalError> {
        self.check_usable()?;
        // Entries below `index` are all in the snapshot iff `index - 1` is
        // at or below the durable marker.
        let snapshot_index = self.durable.pos.snapshot_index();
        if index > snapshot_index.saturating_add(1) {
            return Err(WalError::InvalidInput(format!(
                "cannot release entries below {index}: the durable snapshot marker is at {snapshot_index}"
            )));
        }
        let n = self
            .segments
            .windows(2)
            .take_while(|w| w[1].first_index <= index)
            .count();
        Ok(Released {
            io: self.io.clone(),
            dir: self.dir.clone(),
            segments: self.segments.drain(..n).collect(),
        })
    }

    /// The directory the WAL lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last index of the log, counting buffered entries (or the
    /// snapshot marker's index if that is higher).
    pub fn last_index(&self) -> u64 {
        self.pending.pos.last_index
    }

    /// The live segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    fn tail_path(&self) -> &Path {
        &self.segments.last().expect("a WAL always has a tail").path
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.poisoned {
            Some(why) => Err(WalError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn reserve(&self, added_bytes: usize) -> Result<(), WalError> {
        let total = self.unsynced.len().saturating_add(added_bytes);
        if total > UNSYNCED_MAX_BYTES {
            return Err(WalError::TooLarge {
                what: "unsynced batch",
                len_bytes: total as u64,
                max_bytes: UNSYNCED_MAX_BYTES as u64,
            });
        }
        Ok(())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, WalError>) -> Result<T, WalError> {
        if let Err(e) = &result {
            tracing::error!(error = %e, "WAL write failed; refusing further writes");
            self.poisoned = Some(e.to_string());
        }
        result
    }

    /// Starts a new tail segment whose preamble repeats the metadata, the
    /// hard state and the snapshot marker, so the older segments can go.
    fn rotate(&mut self) -> Result<(), WalError> {
        let prev = self.segments.last().expect("a WAL always has a tail");
        let next = Segment::new(
            &self.dir,
            prev.seq.wrapping_add(1),
            self.durable.pos.last_index.saturating_add(1),
        );
        let bytes = preamble(&next, &self.metadata, &self.durable);
        let file = write_segment_file(&self.io, &self.dir, &next, &bytes)?;
        tracing::info!(file = %next.path.display(), "started WAL segment");
        self.tail = file;
        self.tail_bytes = bytes.len() as u64;
        self.segments.push(next);
        Ok(())
    }
}

/// `<parent>/<name>.tmp` for `<parent>/<name>`.
fn sibling_tmp_dir(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(segment::TMP_SUFFIX);
    PathBuf::from(name)
}

/// The header, metadata, hard state and snapshot marker that open a segment.
fn preamble(seg: &Segment, metadata: &[u8], state: &LogState) -> Vec<u8> {
    let mut rest = Vec::new();
    record::encode_metadata(&mut rest, metadata);
    if let Some(hs) = &state.hard_state {
        record::encode_hard_state(&mut rest, hs);
    }
    if let Some((index, term)) = state.pos.snapshot {
        record::encode_snapshot(&mut rest, index, term);
    }
    let header = SegmentHeader {
        seq: seg.seq,
        first_index: seg.first_index,
        preamble_bytes: (record::SEGMENT_HEADER_RECORD_BYTES + rest.len()) as u64,
    };
    let mut out = Vec::with_capacity(header.preamble_bytes as usize);
    record::encode_segment_header(&mut out, &header);
    out.extend_from_slice(&rest);
    debug_assert_eq!(out.len() as u64, header.preamble_bytes);
    out
}

/// Write under a `.tmp` name, fdatasync, rename, fsync the directory: the
/// segment has its final name only once its preamble is durable.
fn write_segment_file(io: &Io, dir: &Path, seg: &Segment, bytes: &[u8]) -> Result<File, WalError> {
    let tmp = seg.tmp_path();
    let mut f = io.create_file(&tmp)?;
    io.write_all(&mut f, &tmp, bytes)?;
    io.sync_data(&f, &tmp)?;
    io.rename(&tmp, &seg.path)?;
    io.sync_dir(dir)?;
    Ok(f)
}

fn open_for_append(path: &Path, at_bytes: u64) -> Result<File, WalError> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open", path, e))?;
    f.seek(SeekFrom::Start(at_bytes))
        .map_err(|e| WalError::io("seek", path, e))?;
    Ok(f)
}

/// How much of a segment is valid.
struct Valid {
    end: usize,
    /// Why the bytes from `end` on were judged a torn write, if any are.
    torn: Option<String>,
}

/// Reads one segment into `replay`. `prev` is the segment read before it
/// (path and length), `None` for the oldest one present (earlier ones may
/// have been released); `tail_may_be_torn` says damage at its end may be an
/// interrupted last write.
fn replay_segment(
    seg: &Segment,
    bytes: &[u8],
    prev: Option<&(PathBuf, u64)>,
    tail_may_be_torn: bool,
    replay: &mut Replay,
) -> Result<Valid, WalError> {
    let path = &seg.path;
    let is_first = prev.is_none();
    let corrupt = |offset: usize, reason: String| WalError::corrupt(path, offset as u64, reason);
    // A preamble repeats the state at the end of the previous segment. A
    // mismatch most likely means records are missing at the end of that
    // segment (a cut at a record boundary), so that file is named, at its end.
    let short_prev = |reason: String| match prev {
        Some((prev_path, prev_len)) => WalError::corrupt(
            prev_path,
            *prev_len,
            format!("{reason} (next segment: {})", path.display()),
        ),
        None => corrupt(0, reason),
    };

    // The preamble: fsynced before the segment got its name, so any damage
    // in it is corruption, whichever segment it is.
    let (header, mut pos) = match record::decode(bytes, 0) {
        Ok((Record::SegmentHeader(h), end)) => (h, end),
        Ok((other, _)) => {
            return Err(corrupt(
                0,
                format!("expected a segment header, found {}", kind_name(&other)),
            ))
        }
        Err(e) => return Err(corrupt(0, format!("segment header: {e}"))),
    };
    if header.seq != seg.seq || header.first_index != seg.first_index {
        return Err(corrupt(
            0,
            format!(
                "header says seq {:#x}, first index {:#x}; the file name says seq {:#x}, first index {:#x}",
                header.seq, header.first_index, seg.seq, seg.first_index
            ),
        ));
    }
    if header.preamble_bytes > bytes.len() as u64 {
        return Err(corrupt(
            bytes.len(),
            format!(
                "file ends inside its {}-byte preamble",
                header.preamble_bytes
            ),
        ));
    }
    let preamble_end = header.preamble_bytes as usize;
    if is_first {
        // Entries before this segment were released: the log resumes here.
        replay.pos.last_index = header.first_index.saturating_sub(1);
    } else if header.first_index != replay.pos.last_index.saturating_add(1) {
        return Err(short_prev(format!(
            "the log ends at index {} here but the next segment starts at {}",
            replay.pos.last_index, header.first_index
        )));
    }
    let mut preamble_hs = None;
    let mut preamble_snapshot = None;
    let mut saw_metadata = false;
    while pos < preamble_end {
        let (rec, next) =
            record::decode(bytes, pos).map_err(|e| corrupt(pos, format!("preamble: {e}")))?;
        if next > preamble_end {
            return Err(corrupt(
                pos,
                "record crosses the end of the preamble".into(),
            ));
        }
        match rec {
            Record::Metadata(m) if !saw_metadata => {
                saw_metadata = true;
                match &replay.metadata {
                    None => replay.metadata = Some(m.to_vec()),
                    Some(prev) if prev.as_slice() == m => {}
                    Some(_) => {
                        return Err(corrupt(
                            pos,
                            "metadata differs from the previous segment's".into(),
                        ))
                    }
                }
            }
            Record::HardState(hs)
                if saw_metadata && preamble_hs.is_none() && preamble_snapshot.is_none() =>
            {
                preamble_hs = Some(hs)
            }
            Record::Snapshot { index, term } if saw_metadata && preamble_snapshot.is_none() => {
                preamble_snapshot = Some((index, term))
            }
            other => {
                return Err(corrupt(
                    pos,
                    format!("unexpected {} in the preamble", kind_name(&other)),
                ))
            }
        }
        pos = next;
    }
    if !saw_metadata {
        return Err(corrupt(pos, "preamble has no metadata".into()));
    }
    if is_first {
        replay.hard_state = preamble_hs;
        if let Some((index, term)) = preamble_snapshot {
            replay.snapshot(index, term).map_err(|r| corrupt(pos, r))?;
        }
    } else if preamble_hs != replay.hard_state || preamble_snapshot != replay.pos.snapshot {
        return Err(short_prev(
            "the hard state or snapshot marker here differs from the next segment's preamble"
                .into(),
        ));
    }

    // The body.
    while pos < bytes.len() {
        let (rec, next) = match record::decode(bytes, pos) {
            Ok(ok) => ok,
            Err(e) => return judge_damage(path, bytes, pos, e, tail_may_be_torn),
        };
        match rec {
            Record::Entry {
                index,
                term,
                kind,
                data,
            } => {
                let entry = EntryRecord {
                    index,
                    term,
                    kind,
                    data: data.to_vec(),
                };
                replay.entry(entry).map_err(|r| corrupt(pos, r))?;
            }
            Record::HardState(hs) => replay.hard_state = Some(hs),
            Record::Snapshot { index, term } => {
                replay.snapshot(index, term).map_err(|r| corrupt(pos, r))?
            }
            other => {
                return Err(corrupt(
                    pos,
                    format!("unexpected {} after the preamble", kind_name(&other)),
                ))
            }
        }
        pos = next;
    }
    Ok(Valid {
        end: bytes.len(),
        torn: None,
    })
}

/// A record at `pos` failed to decode. It is a torn write, and the segment
/// ends at `pos`, only if this is the last segment, no checksum vouches for
/// the bad bytes, and no valid record starts anywhere after `pos`: a valid
/// record later means something written after the damage reached the disk,
/// so the damaged bytes had been written (and maybe synced) before.
fn judge_damage(
    path: &Path,
    bytes: &[u8],
    pos: usize,
    err: FrameError,
    tail_may_be_torn: bool,
) -> Result<Valid, WalError> {
    let corrupt = |reason: String| WalError::corrupt(path, pos as u64, reason);
    if !tail_may_be_torn {
        return Err(corrupt(err.to_string()));
    }
    if err.checksum_ok() {
        return Err(corrupt(err.to_string()));
    }
    match find_record_after(bytes, pos) {
        Scan::Nothing => Ok(Valid {
            end: pos,
            torn: Some(err.to_string()),
        }),
        Scan::Found(at) => Err(corrupt(format!(
            "{err}; yet a valid record follows at byte {at}"
        ))),
        Scan::OverBudget => Err(corrupt(format!(
            "{err}; could not rule out valid records after it within the scan budget"
        ))),
    }
}

enum Scan {
    Nothing,
    Found(usize),
    OverBudget,
}

/// Looks for a record that decodes at any offset after `pos`. Cheap checks
/// (room for a header, a known type, a plausible length) filter offsets
/// before any checksum is computed, and the checksummed bytes are budgeted.
fn find_record_after(bytes: &[u8], pos: usize) -> Scan {
    let mut budget = (bytes.len() - pos)
        .saturating_mul(SCAN_CRC_BYTES_PER_BYTE)
        .saturating_add(1 << 16);
    let mut at = pos + 1;
    while at + record::FRAME_HEADER_BYTES <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let typ = bytes[at + 8];
        let fits = len <= bytes.len() - at - record::FRAME_HEADER_BYTES;
        if fits && record::is_known_type(typ) {
            if budget < len + 1 {
                return Scan::OverBudget;
            }
            budget -= len + 1;
            if record::decode(bytes, at).is_ok() {
                return Scan::Found(at);
            }
        }
        at += 1;
    }
    Scan::Nothing
}

fn kind_name(r: &Record<'_>) -> &'static str {
    match r {
        Record::SegmentHeader(_) => "segment header",
        Record::Metadata(_) => "metadata record",
        Record::Entry { .. } => "entry record",
        Record::HardState(_) => "hard state record",
        Record::Snapshot { .. } => "snapshot marker",
    }
}
