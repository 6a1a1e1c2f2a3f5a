//! The crate's one error type.

/// Everything that can go wrong writing, reading or checking a bbolt file
/// or an etcd snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    // --- reading: the file is not what it claims ---
    /// Neither meta page is valid (both are described).
    #[error("not a bbolt database: meta page 0: {meta0}; meta page 1: {meta1}")]
    NoValidMeta { meta0: String, meta1: String },
    /// A page (or an inline bucket's page, inside the value of an element
    /// of page `pgid`) breaks the format; `detail` gives the offset.
    #[error("corrupt bbolt database: page {pgid}: {detail}")]
    Corrupt { pgid: u64, detail: String },

    // --- writing: the caller broke the writer's contract ---
    /// bbolt refuses empty keys and empty bucket names (`ErrKeyRequired`,
    /// `ErrBucketNameRequired`).
    #[error("empty key or bucket name: bbolt requires at least one byte")]
    EmptyKey,
    #[error("key of {len_bytes} bytes: bbolt's limit is {max_bytes}")]
    KeyTooLarge { len_bytes: usize, max_bytes: usize },
    #[error("value of {len_bytes} bytes: bbolt's limit is {max_bytes}")]
    ValueTooLarge { len_bytes: usize, max_bytes: usize },
    /// Keys of a bucket, and bucket names, must come in strictly
    /// ascending byte order: the writer builds the B+tree bottom-up.
    #[error("out of order: {what} {key:?} does not come after the previous one")]
    OutOfOrder { what: &'static str, key: String },
    /// A call that needs an open bucket came without one, or `begin_bucket`
    /// or `finish` came while one was open.
    #[error("writer misuse: {0}")]
    Misuse(&'static str),
    #[error("page size {0}: the writer takes a power of two from 1024 to 65536")]
    InvalidPageSize(u32),
    /// An earlier I/O error left the output half-written.
    #[error("the writer failed earlier; its output is incomplete")]
    WriterFailed,

    // --- etcd's snapshot trailer ---
    /// The file's size is not 32 more than a multiple of 512, so it has no
    /// SHA-256 trailer (etcdctl restore then wants `--skip-hash-check`).
    #[error("snapshot of {len_bytes} bytes has no sha256 trailer (size % 512 != 32)")]
    MissingSha256 { len_bytes: u64 },
    #[error("snapshot sha256 mismatch: the trailer says {stored}, the data hashes to {computed}")]
    Sha256Mismatch { stored: String, computed: String },
}

impl Error {
    pub(crate) fn corrupt(pgid: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            pgid,
            detail: detail.into(),
        }
    }
}
