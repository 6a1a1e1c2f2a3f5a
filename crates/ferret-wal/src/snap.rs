//! Snapshot files in `<data-dir>/member/snap/`: one file per snapshot, named
//! `{term:016x}-{index:016x}.snap` (etcd's naming), holding the state
//! machine's serialized state as an opaque blob.
//!
//! # File format (integers little-endian)
//!
//! ```text
//! offset  size  field
//!      0     8  magic "FERRSNAP"
//!      8     4  format version: u32 = 1
//!     12     8  index: u64  (the last log index the snapshot includes)
//!     20     8  term: u64   (the term of that entry)
//!     28     8  data length: u64
//!     36     4  CRC-32C of the data
//!     40     4  CRC-32C of bytes 0..40 (the header above)
//!     44     n  data
//! ```
//!
//! The file must be exactly `44 + data length` bytes, and its index and
//! term must match its name. The header has its own checksum so a damaged
//! length is reported as such before the data is looked at.
//!
//! # Crash cases
//!
//! - Saving writes `<name>.tmp`, fdatasyncs it, renames it to `<name>` and
//!   fsyncs the directory. A crash leaves either the complete file under its
//!   name or a `.tmp` leftover, which loading ignores and `purge` removes.
//! - A damaged newest snapshot is an error naming the file, unless an older
//!   valid one exists: then it is logged, renamed to `<name>.broken` (so
//!   `purge` never counts it among the ones to keep, nor deletes the
//!   evidence) and the older one is returned. The caller must still check
//!   that the WAL reaches back to the snapshot it got (the WAL may have
//!   released entries up to the newer one).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::io::{FaultInjector, Io, NoFaults};
use crate::WalError;

const MAGIC: [u8; 8] = *b"FERRSNAP";
const VERSION: u32 = 1;
/// Bytes before the data.
pub const SNAPSHOT_HEADER_BYTES: usize = 44;
/// The largest snapshot this crate writes or reads. It is loaded into memory
/// whole, so the bound is about memory: 8 GiB is four times etcd's default
/// 2 GiB backend quota.
pub const SNAPSHOT_MAX_BYTES: u64 = 8 << 30;

const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".tmp";
const BROKEN_SUFFIX: &str = ".broken";

/// `{term:016x}-{index:016x}.snap`
pub fn file_name(index: u64, term: u64) -> String {
    format!("{term:016x}-{index:016x}{SUFFIX}")
}

/// `(index, term)` from a snapshot file name.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (term, index) = stem.split_once('-')?;
    let hex16 = |s: &str| {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((hex16(index)?, hex16(term)?))
}

fn header(index: u64, term: u64, data: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut h = [0u8; SNAPSHOT_HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&index.to_le_bytes());
    h[20..28].copy_from_slice(&term.to_le_bytes());
    h[28..36].copy_from_slice(&(data.len() as u64).to_le_bytes());
    h[36..40].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let header_crc = crc32c::crc32c(&h[0..40]);
    h[40..44].copy_from_slice(&header_crc.to_le_bytes());
    h
}

/// Saves a snapshot durably and returns its path.
pub fn save_snapshot(dir: &Path, index: u64, term: u64, data: &[u8]) -> Result<PathBuf, WalError> {
    save_snapshot_with(dir, index, term, data, Arc::new(NoFaults))
}

/// [`save_snapshot`] with a fault injector, for tests.
pub fn save_snapshot_with(
    dir: &Path,
    index: u64,
    term: u64,
    data: &[u8],
    faults: Arc<dyn FaultInjector>,
) -> Result<PathBuf, WalError> {
    if data.len() as u64 > SNAPSHOT_MAX_BYTES {
        return Err(WalError::TooLarge {
            what: "snapshot",
            len_bytes: data.len() as u64,
            max_bytes: SNAPSHOT_MAX_BYTES,
        });
    }
    let io = Io::new(faults);
    io.create_dir_all(dir)?;
    let path = dir.join(file_name(index, term));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", file_name(index, term)));
    let mut f = io.create_file(&tmp)?;
    io.write_all(&mut f, &tmp, &header(index, term, data))?;
    io.write_all(&mut f, &tmp, data)?;
    io.sync_data(&f, &tmp)?;
    drop(f);
    io.rename(&tmp, &path)?;
    io.sync_dir(dir)?;
    tracing::info!(file = %path.display(), index, term, bytes = data.len(), "saved snapshot");
    Ok(path)
}

/// Reads and verifies one snapshot file.
fn read_snapshot(path: &Path, index: u64, term: u64) -> Result<Vec<u8>, WalError> {
    let corrupt = |offset: usize, reason: &str| WalError::corrupt(path, offset as u64, reason);
    let len = fs::metadata(path)
        .map_err(|e| WalError::io("stat", path, e))?
        .len();
    if len < SNAPSHOT_HEADER_BYTES as u64 {
        return Err(corrupt(0, "file shorter than the snapshot header"));
    }
    if len > SNAPSHOT_HEADER_BYTES as u64 + SNAPSHOT_MAX_BYTES {
        return Err(corrupt(0, "file larger than the snapshot size limit"));
    }
    let mut bytes = fs::read(path).map_err(|e| WalError::io("read", path, e))?;
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(corrupt(0, "file shorter than the snapshot header"));
    }
    let (h, data) = bytes.split_at(SNAPSHOT_HEADER_BYTES);
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[at..at + 8]);
        u64::from_le_bytes(a)
    };
    if h[0..8] != MAGIC {
        return Err(corrupt(0, "bad snapshot magic"));
    }
    if u32_at(40) != crc32c::crc32c(&h[0..40]) {
        return Err(corrupt(40, "snapshot header checksum mismatch"));
    }
    if u32_at(8) != VERSION {
        return Err(corrupt(8, "unsupported snapshot format version"));
    }
    if u64_at(12) != index || u64_at(20) != term {
        return Err(corrupt(12, "index or term differs from the file name"));
    }
    if u64_at(28) != data.len() as u64 {
        return Err(corrupt(
            28,
            &format!(
                "header says {} data bytes, the file holds {}",
                u64_at(28),
                data.len()
            ),
        ));
    }
    if u32_at(36) != crc32c::crc32c(data) {
        return Err(corrupt(
            SNAPSHOT_HEADER_BYTES,
            "snapshot data checksum mismatch",
        ));
    }
    bytes.drain(..SNAPSHOT_HEADER_BYTES);
    Ok(bytes)
}

/// Snapshot files in `dir`, newest (highest index, then term) first.
fn list_newest_first(dir: &Path) -> Result<Vec<(u64, u64, PathBuf)>, WalError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WalError::io("read dir", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("read dir", dir, e))?;
        if let Some((index, term)) = entry.file_name().to_str().and_then(parse_name) {
            found.push((index, term, entry.path()));
        }
    }
    found.sort_by_key(|&(index, term, _)| std::cmp::Reverse((index, term)));
    Ok(found)
}

/// The newest valid snapshot as `(index, term, data)`, or `None` if there is
/// none (or no directory). See the module docs for damaged files.
pub fn load_newest(dir: &Path) -> Result<Option<(u64, u64, Vec<u8>)>, WalError> {
    let io = Io::new(Arc::new(NoFaults));
    let mut damaged: Vec<(PathBuf, WalError)> = Vec::new();
    for (index, term, path) in list_newest_first(dir)? {
        match read_snapshot(&path, index, term) {
            Ok(data) => {
                for (bad, err) in &damaged {
                    tracing::error!(file = %bad.display(), error = %err, "skipping a damaged snapshot for an older valid one; renaming it .broken");
                    let mut broken = bad.as_os_str().to_owned();
                    broken.push(BROKEN_SUFFIX);
                    io.rename(bad, Path::new(&broken))?;
                }
                if !damaged.is_empty() {
                    io.sync_dir(dir)?;
                }
                return Ok(Some((index, term, data)));
            }
            Err(e @ WalError::Corrupt { .. }) => damaged.push((path, e)),
            Err(e) => return Err(e),
        }
    }
    match damaged.into_iter().next() {
        Some((_, newest_err)) => Err(newest_err),
        None => Ok(None),
    }
}

/// The data of the snapshot at exactly (`index`, `term`), checked.
pub fn load(dir: &Path, index: u64, term: u64) -> Result<Vec<u8>, WalError> {
    read_snapshot(&dir.join(file_name(index, term)), index, term)
}

/// Deletes all but the newest `keep` snapshots (`keep >= 1`) and any `.tmp`
/// leftovers of interrupted saves. Not to be run concurrently with
/// `save_snapshot` on the same directory.
pub fn purge(dir: &Path, keep: usize) -> Result<(), WalError> {
    if keep == 0 {
        return Err(WalError::InvalidInput(
            "purge must keep at least one snapshot".into(),
        ));
    }
    let io = Io::new(Arc::new(NoFaults));
    let mut removed = false;
    for (_, _, path) in list_newest_first(dir)?.into_iter().skip(keep) {
        io.remove_file(&path)?;
        tracing::info!(file = %path.display(), "purged snapshot");
        removed = true;
    }
    if dir.is_dir() {
        for entry in fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))? {
            let entry = entry.map_err(|e| WalError::io("read dir", dir, e))?;
            let is_tmp = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(TMP_SUFFIX))
                .is_some_and(|stem| parse_name(stem).is_some());
            if is_tmp {
                tracing::warn!(file = %entry.path().display(), "removing the leftover of an interrupted snapshot save");
                io.remove_file(&entry.path())?;
                removed = true;
            }
        }
    }
    if removed {
        io.sync_dir(dir)?;
    }
    Ok(())
}
