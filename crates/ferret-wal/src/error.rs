//! The one error type of this crate, for the WAL and the snapshot files.
//!
//! The split that matters to the caller is between errors that leave the
//! files as they were (`InvalidInput`, `TooLarge`, `AlreadyExists`,
//! `NotFound`: fix the call and go on) and errors after which nothing written
//! since the last successful `sync` may be trusted (`Io` from a write, a sync
//! or a rotation, then `Poisoned` for every later write): the Raft driver must
//! stop the member and let the next start recover from disk, as etcd does
//! when its WAL fails.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A system call failed. `op` names the step ("write", "fdatasync",
    /// "fsync dir", "rename", ...) so an operator can tell a full disk from a
    /// permission problem without reading code.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Bytes on disk that are not what this crate wrote and that are not
    /// explained by a crash in the middle of the last write. Never repaired
    /// automatically: dropping them could drop acknowledged writes.
    #[error("corrupt file {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// `create` found a WAL already there.
    #[error("a WAL already exists in {}", .0.display())]
    AlreadyExists(PathBuf),

    /// `open` found no segment.
    #[error("no WAL in {}", .0.display())]
    NotFound(PathBuf),

    /// The call breaks a rule of the log (entry indexes out of order, a
    /// snapshot marker going backwards, releasing past the durable snapshot).
    /// Nothing was buffered or written.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A record or snapshot larger than the format allows. Nothing was
    /// buffered or written.
    #[error("{what} of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        what: &'static str,
        len_bytes: u64,
        max_bytes: u64,
    },

    /// An earlier write, sync or rotation failed; after a failed fsync the
    /// kernel may have dropped the dirty pages and marked them clean, so no
    /// retry can tell what reached the disk. Restart and recover.
    #[error("the WAL refuses writes after an earlier failure: {0}")]
    Poisoned(String),
}

impl WalError {
    /// A system call that failed because its file is not there (a
    /// deletion finds its work already done).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        WalError::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
