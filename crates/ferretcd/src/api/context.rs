//! What every client API handler is given.

use ferret_server::Server;

/// Everything a request handler needs.
pub struct Api {
    pub server: Server,
    /// Requests whose body exceeds this get a clear error (etcd's
    /// `--max-request-bytes`, default 1.5 MiB).
    pub max_request_bytes: u64,
    /// When this member started, Unix ns (for `/v2/stats/self`).
    pub started_ns: i64,
}
