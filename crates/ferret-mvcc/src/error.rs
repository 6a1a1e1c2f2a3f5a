//! The MVCC layer's errors. The gRPC layer maps each to etcd's exact
//! status and message, once, at the edge.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// A read or compaction below the compacted revision.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// A read or compaction above the current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("lease not found")]
    LeaseNotFound,
    #[error("lease already exists")]
    LeaseExists,
    #[error("too large lease TTL")]
    LeaseTtlTooLarge,
    /// A NOSPACE alarm is raised: writes that grow the database are refused.
    #[error("mvcc: database space exceeded")]
    NoSpace,
    /// A CORRUPT alarm is raised: nothing is served.
    #[error("corrupt cluster")]
    Corrupt,
    /// Renewing or asking the remaining TTL of a lease needs the leader.
    #[error("not a primary lessor")]
    NotPrimary,
    /// An auth check or change failed (etcd's `auth.Err*`).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The backend failed: the member must stop (the WAL recovers it).
    #[error("backend {op}: {detail}")]
    Backend { op: &'static str, detail: String },
    /// A defragmentation or a snapshot for a client failed; the member
    /// goes on.
    #[error("{0}")]
    Maintenance(String),
    /// The backend holds data this build cannot read.
    #[error("backend format: {0}")]
    Format(String),
}

impl MvccError {
    pub(crate) fn backend(op: &'static str, e: impl std::fmt::Display) -> MvccError {
        MvccError::Backend {
            op,
            detail: e.to_string(),
        }
    }
}
