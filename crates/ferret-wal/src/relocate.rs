//! Moving a WAL to another directory: a member whose WAL is under its
//! data dir, started with a dedicated WAL directory (`--wal-dir`), such as
//! an etcd data dir converted in place, whose converted WAL is written
//! under the data dir.
//!
//! The target is often a mount point of its own (a separate disk), so it
//! cannot be renamed into place; the segments are copied into it one by
//! one instead. The steps, each durable before the next:
//!
//! 1. `from` is renamed `from.moving` (same file system), so that a start
//!    after a crash knows a move is under way and never reads two WALs;
//! 2. each segment of `from.moving` missing from `to` is copied to
//!    `to/<name>.tmp`, fsynced, and renamed `to/<name>`; then `to` is
//!    fsynced. A segment is only ever under its name complete, so a
//!    start after a crash redoes this step for the missing ones;
//! 3. `from.moving` is deleted.
//!
//! A WAL in both `from` and `to` is refused: which one is the member's is
//! not for this crate to guess.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::{Wal, WalError};

/// Moves the WAL in `from` to `to` (see the module docs), or finishes a
/// move a crash interrupted. Returns whether anything was moved.
pub fn relocate(from: &Path, to: &Path) -> Result<bool, WalError> {
    let moving = moving_dir(from);
    if !moving.exists() {
        if !Wal::exists(from) {
            return Ok(false);
        }
        if Wal::exists(to) {
            return Err(WalError::InvalidInput(format!(
                "there is a WAL in {} and another in {}: remove the one that is not this member's",
                from.display(),
                to.display()
            )));
        }
        fs::rename(from, &moving).map_err(|e| WalError::io("rename", from, e))?;
        sync_dir(&parent(from))?;
    }
    fs::create_dir_all(to).map_err(|e| WalError::io("create dir", to, e))?;
    for name in segment_names(&moving)? {
        let target = to.join(&name);
        if target.exists() {
            continue;
        }
        let tmp = to.join(format!("{name}.tmp"));
        let source = moving.join(&name);
        fs::copy(&source, &tmp).map_err(|e| WalError::io("copy", &source, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| WalError::io("fsync", &tmp, e))?;
        fs::rename(&tmp, &target).map_err(|e| WalError::io("rename", &tmp, e))?;
    }
    sync_dir(to)?;
    fs::remove_dir_all(&moving).map_err(|e| WalError::io("remove dir", &moving, e))?;
    sync_dir(&parent(from))?;
    Ok(true)
}

fn moving_dir(from: &Path) -> PathBuf {
    let mut name = from.as_os_str().to_owned();
    name.push(".moving");
    PathBuf::from(name)
}

fn parent(path: &Path) -> PathBuf {
    crate::io::parent_or_dot(path)
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync dir", dir, e))
}

/// The names of the segment files (`*.wal`) in `dir`.
fn segment_names(dir: &Path) -> Result<Vec<String>, WalError> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))? {
        let e = e.map_err(|e| WalError::io("read dir", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wal") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
