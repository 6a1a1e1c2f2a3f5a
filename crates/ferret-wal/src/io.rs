//! Every call that changes the disk goes through [`Io`], which asks a
//! [`FaultInjector`] first. Production uses [`NoFaults`]; tests plug in
//! [`FailNth`] to make the n-th write, fsync, rename, ... fail, which is how
//! the "refuse writes after a failed sync" rule and the cleanup of half-made
//! files are tested without a broken disk.
//!
//! Reads are not routed here: a failed read already surfaces as an error and
//! changes nothing, so there is nothing to simulate.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::WalError;

/// The kinds of disk-changing calls, as a fault injector sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// Creating (or truncating to zero) a file.
    Create,
    /// `write(2)` of a buffer; an injected failure first writes half of the
    /// buffer, as a real short write followed by an error would.
    Write,
    /// `fdatasync(2)` of a file.
    SyncData,
    /// `fsync(2)` of a directory, which makes creations, renames and
    /// deletions in it durable.
    SyncDir,
    Rename,
    /// `ftruncate(2)`, used to cut a torn tail.
    Truncate,
    Remove,
    CreateDir,
}

/// Decides, before each disk-changing call, whether it should fail.
pub trait FaultInjector: Send + Sync + fmt::Debug {
    /// `Err` makes the call fail with that error instead of running.
    fn check(&self, op: IoOp, path: &Path) -> io::Result<()>;
}

/// The production injector: nothing fails on purpose.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFaults;

impl FaultInjector for NoFaults {
    fn check(&self, _op: IoOp, _path: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// Fails the `n`-th call (counting from 0) of one kind, once; every other
/// call succeeds. Failing only once proves that the WAL refuses further
/// writes on its own, not because the disk keeps failing.
#[derive(Debug)]
pub struct FailNth {
    op: IoOp,
    calls_left: AtomicU64,
}

impl FailNth {
    pub fn new(op: IoOp, n: u64) -> Arc<Self> {
        Arc::new(FailNth {
            op,
            calls_left: AtomicU64::new(n),
        })
    }

    /// Whether the failure has been injected yet.
    pub fn fired(&self) -> bool {
        self.calls_left.load(Ordering::SeqCst) == u64::MAX
    }
}

impl FaultInjector for FailNth {
    fn check(&self, op: IoOp, path: &Path) -> io::Result<()> {
        if op != self.op {
            return Ok(());
        }
        // u64::MAX means "already fired"; it is never decremented from there.
        let before = self
            .calls_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                u64::MAX => None,
                0 => Some(u64::MAX),
                _ => Some(left - 1),
            });
        match before {
            Ok(0) => Err(io::Error::other(format!(
                "injected failure of {op:?} on {}",
                path.display()
            ))),
            _ => Ok(()),
        }
    }
}

/// The disk-changing calls of this crate, each checked against the injector
/// and each mapping its error to [`WalError::Io`] with the path.
#[derive(Clone)]
pub(crate) struct Io {
    faults: Arc<dyn FaultInjector>,
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io").field("faults", &self.faults).finish()
    }
}

impl Io {
    pub(crate) fn new(faults: Arc<dyn FaultInjector>) -> Self {
        Io { faults }
    }

    fn check(&self, op: IoOp, name: &'static str, path: &Path) -> Result<(), WalError> {
        self.faults
            .check(op, path)
            .map_err(|e| WalError::io(name, path, e))
    }

    /// Creates `path` for writing, truncating any old file of that name.
    pub(crate) fn create_file(&self, path: &Path) -> Result<File, WalError> {
        self.check(IoOp::Create, "create", path)?;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| WalError::io("create", path, e))
    }

    pub(crate) fn write_all(
        &self,
        file: &mut File,
        path: &Path,
        buf: &[u8],
    ) -> Result<(), WalError> {
        if let Err(e) = self.faults.check(IoOp::Write, path) {
            // A short write, then the error: the torn bytes a crash would leave.
            let _ = file.write_all(&buf[..buf.len() / 2]);
            return Err(WalError::io("write", path, e));
        }
        file.write_all(buf)
            .map_err(|e| WalError::io("write", path, e))
    }

    pub(crate) fn sync_data(&self, file: &File, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::SyncData, "fdatasync", path)?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync", path, e))
    }

    /// Makes the directory entries of `dir` durable (a created, renamed or
    /// removed file is not, until its directory is fsynced).
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<(), WalError> {
        self.check(IoOp::SyncDir, "fsync dir", dir)?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io("fsync dir", dir, e))
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<(), WalError> {
        self.check(IoOp::Rename, "rename", from)?;
        fs::rename(from, to).map_err(|e| WalError::io("rename", from, e))
    }

    pub(crate) fn truncate(
        &self,
        file: &File,
        path: &Path,
        len_bytes: u64,
    ) -> Result<(), WalError> {
        self.check(IoOp::Truncate, "truncate", path)?;
        file.set_len(len_bytes)
            .map_err(|e| WalError::io("truncate", path, e))
    }

    pub(crate) fn remove_file(&self, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::Remove, "remove", path)?;
        fs::remove_file(path).map_err(|e| WalError::io("remove", path, e))
    }

    pub(crate) fn remove_dir_all(&self, path: &Path) -> Result<(), WalError> {
        self.check(IoOp::Remove, "remove dir", path)?;
        fs::remove_dir_all(path).map_err(|e| WalError::io("remove dir", path, e))
    }

    /// Creates `dir` and any missing parent, fsyncing the parent of each one
    /// created so the new entries survive a crash.
    pub(crate) fn create_dir_all(&self, dir: &Path) -> Result<(), WalError> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        self.check(IoOp::CreateDir, "create dir", dir)?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            // Lost a race with another creator: the directory is there, fine.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(WalError::io("create dir", dir, e)),
        }
        self.sync_dir(&parent_or_dot(dir))
    }
}

/// The directory holding `path`; `.` for a bare file name.
pub(crate) fn parent_or_dot(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}
