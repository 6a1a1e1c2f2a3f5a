//! The write-ahead log and snapshot files of a ferretcd member.
//!
//! The Raft driver hands this crate opaque records — log entries, the hard
//! state, snapshot markers — and acknowledges a client's write only after
//! [`Wal::sync`] returned. This crate knows nothing of raft-rs, HTTP or the
//! store. **Invariant: every record buffered before a successful `sync` is
//! recovered by `open` after any crash** (given a disk that keeps what it
//! fsynced); everything after the last successful sync may be lost, and is
//! then lost cleanly, never half-read.
//!
//! ```no_run
//! use ferret_wal::{EntryRecord, HardState, Wal};
//! # fn main() -> Result<(), ferret_wal::WalError> {
//! let dir = ferret_wal::wal_dir("/var/lib/ferretcd".as_ref());
//! let (mut wal, recovered) = if Wal::exists(&dir) {
//!     Wal::open(&dir)?
//! } else {
//!     (Wal::create(&dir, b"member and cluster ids")?, Default::default())
//! };
//! # let _ = recovered;
//! wal.append(&[EntryRecord { index: 1, term: 1, kind: 0, data: b"put a".to_vec() }])?;
//! wal.set_hard_state(&HardState { term: 1, vote: 1, commit: 1 })?;
//! wal.sync()?; // one write + one fdatasync: now it may be acknowledged
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! `<data-dir>/member/wal/` holds segments named
//! `{seq:016x}-{first_index:016x}.wal` (lowercase hex): `seq` counts
//! segments from 0 with no gap; `first_index` is one past the log's last
//! index when the segment was started (the lowest index it can hold).
//! `<data-dir>/member/snap/` holds snapshot files, see [`snap`]. With a
//! dedicated WAL directory (etcd's `--wal-dir`) the segments are in that
//! directory instead; [`relocate`] moves a WAL there, crash-safe.
//!
//! # Record framing (integers little-endian)
//!
//! A segment is a sequence of records, each:
//!
//! ```text
//! offset  size  field
//!      0     4  len: u32, payload length (excludes these 9 bytes); > 256 MiB is corruption
//!      4     4  crc: u32, CRC-32C (Castagnoli) of bytes 8..9+len (type and payload)
//!      8     1  type: u8 (0 is never valid, so zero-filled space never decodes)
//!      9   len  payload
//! ```
//!
//! Payloads by type:
//!
//! ```text
//! 1 segment header  36 bytes: magic "FERRETWL" [8], version u32 = 1, seq u64,
//!                   first_index u64, preamble_bytes u64 (file offset where the preamble ends)
//! 2 metadata        the bytes given to `create` (at most 1 MiB)
//! 3 entry           index u64, term u64, kind u8, data (len - 17 bytes)
//! 4 hard state      24 bytes: term u64, vote u64, commit u64
//! 5 snapshot marker 16 bytes: index u64, term u64
//! ```
//!
//! The header record is 45 bytes, so the metadata record starts at byte 45.
//! Each segment begins with a **preamble**: the header, the metadata, then
//! the hard state (if any was written) and the snapshot marker (if any), as
//! of the moment the segment was started. Every segment is thus readable
//! without those before it, which is what lets [`Wal::release_before`]
//! delete old segments. The body follows: entries, hard states and snapshot
//! markers in the order they were buffered.
//!
//! # Replay
//!
//! Records are applied in order across segments. An entry must have an
//! index above the snapshot marker and at most one past the last index; an
//! index at or below the last one replaces that entry and all after it
//! (Raft's conflict truncation). A snapshot marker drops the entries up to
//! its index and keeps those after it; it may leap past the log (a follower
//! installing a leader's snapshot). The writer refuses calls that break
//! these rules, so recovery reads a break as corruption.
//!
//! # Writing and its crash cases
//!
//! - `append`, `set_hard_state` and `mark_snapshot` only encode into a
//!   buffer; `sync` writes the buffer with one `write` and makes it durable
//!   with one `fdatasync` (group commit). A crash before the fdatasync
//!   returns leaves any prefix of those bytes, possibly with zero-filled or
//!   stale gaps: a **torn tail**, handled below.
//! - After a failed write or fdatasync the WAL refuses every later write
//!   ([`WalError::Poisoned`]): Linux may have dropped the dirty pages and
//!   marked them clean, so retrying could report durability that isn't
//!   there. The driver must stop; the next start recovers from disk.
//! - After a sync leaves the tail at or past the size limit (64 MiB by
//!   default), a new segment is written as `<name>.tmp`, fdatasynced,
//!   renamed, and the directory fsynced. So a `.wal` file always has a
//!   complete, durable preamble, and every segment but the last was fully
//!   synced before the next one existed.
//! - `create` builds the first segment in `<dir>.tmp`, fsyncs it, renames
//!   the directory and fsyncs its parent: no crash leaves a WAL without
//!   metadata.
//! - After a snapshot at `s` is saved and its marker synced,
//!   `release_before(s + 1)` releases, oldest first, every segment whose
//!   successor starts at or below `s + 1`: a rename to `<name>.tmp` and a
//!   directory fsync take it out of the log (a crash leaves a gapless
//!   suffix that still replays to the same log), then it is truncated a
//!   few MiB at a time and unlinked, so that freeing 64 MiB does not stall
//!   the WAL's fsyncs.
//!
//! # Recovery rules (`open`)
//!
//! 1. `.tmp` segments (interrupted rotations and releases) are deleted.
//! 2. Segment sequence numbers must be consecutive, or `Corrupt` names the
//!    file after the gap. Each segment's preamble must continue where the
//!    previous segment ended (first index, hard state, snapshot marker), or
//!    `Corrupt` names the previous segment at its end, where records are
//!    then missing (a cut at a record boundary decodes cleanly otherwise).
//! 3. A last segment that is empty or all zeros (a filesystem that kept the
//!    rename but not the data) is **deleted**, and the segment before it,
//!    which was fully synced before the rotation began, becomes the tail and
//!    is read strictly. If it is the only segment, that is `Corrupt` (no
//!    metadata survives; `create` never leaves this).
//! 4. Damage in a preamble, or anywhere in a segment that is not the last,
//!    is `Corrupt`.
//! 5. In the last segment, a record that does not decode (cut short,
//!    absurd length, unknown type, bad checksum, zero fill) is a **torn
//!    tail** only if no record decodes at any byte offset after it. Then the
//!    file is truncated there and fsynced, a warning is logged, and `open`
//!    succeeds with every record before it. If a valid record follows, the
//!    damaged bytes were written before something that reached the disk,
//!    possibly before an acknowledged sync: `Corrupt`, with the file, the
//!    offset of the damage, and where the valid record is.
//! 6. A record whose checksum is right but whose payload or order is wrong
//!    is `Corrupt` wherever it is.
//!
//! `Corrupt` is never repaired automatically; an operator decides. Two
//! consequences, both on the safe side: a torn write that persisted a later
//! page but not an earlier one reads as `Corrupt`; and a torn last entry
//! whose own data happens to contain a well-formed record also does.
//! Conversely a bit flip inside the very last record is indistinguishable
//! from a torn write and is truncated, as in etcd.
//!
//! # Bounds
//!
//! A record's payload is at most 256 MiB ([`RECORD_PAYLOAD_MAX_BYTES`]);
//! metadata at most 1 MiB; the unsynced buffer at most 512 MiB
//! ([`UNSYNCED_MAX_BYTES`]), so a segment is at most the rotation size plus
//! that, and recovery reads one segment into memory at a time. The scan of
//! rule 5 checksums at most 8 bytes per byte after the damage; past that
//! budget the damage is reported as `Corrupt` (unproven is not torn).
//!
//! # Failure seams
//!
//! Every disk-changing call goes through a [`FaultInjector`]; tests pass
//! [`FailNth`] in [`WalOptions`] to fail the n-th write, fdatasync, rename...

mod error;
pub mod etcd;
mod io;
mod record;
mod relocate;
mod replay;
mod segment;
pub mod snap;
mod wal;

pub use error::WalError;
pub use io::{FailNth, FaultInjector, IoOp, NoFaults};
pub use record::{EntryRecord, HardState, METADATA_MAX_BYTES, RECORD_PAYLOAD_MAX_BYTES};
pub use relocate::relocate;
pub use wal::{
    Recovered, Released, Wal, WalOptions, SEGMENT_SIZE_DEFAULT_BYTES, UNSYNCED_MAX_BYTES,
};

use std::path::{Path, PathBuf};

/// `<data-dir>/member/wal`, where a member's WAL lives (as in etcd).
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("wal")
}

/// `<data-dir>/member/snap`, where a member's snapshot files live.
pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap")
}

#[cfg(test)]
mod tests;
