//! The server core: state machines, the log that orders writes into them,
//! and the handle the API layers use.
//!
//! The HTTP layer never touches the store directly for writes: it builds a
//! [`Command`], [`Server::propose`]s it and waits for the outcome, which
//! arrives only after the entry is committed and applied. Reads take the
//! state lock briefly; watches register a sink in the store's hub.

pub mod apply;
mod local_log;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

pub use apply::{Command, Outcome, StateMachines, KEYS_PREFIX};

/// Why a proposal did not produce an outcome.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ServerError {
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
}

/// Where the log stands, for the `X-Raft-Index` and `X-Raft-Term` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub commit_index: u64,
    pub term: u64,
}

/// Who this member is and which cluster it belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub member_id: u64,
    pub cluster_id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// Knobs of the server core.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long a proposal may wait for its outcome (etcd: 5 s plus two
    /// election timeouts).
    pub request_timeout: Duration,
    /// How often the leader checks for expired TTLs (etcd: 500 ms).
    pub expiry_interval: Duration,
}

pub(crate) struct Proposal {
    pub cmd: Command,
    pub reply: oneshot::Sender<(Outcome, LogPosition)>,
}

/// Proposals waiting for the log task. Bounded so a flood of writes queues
/// at the HTTP layer (where each waits with a timeout) instead of growing
/// memory without limit; 4096 is a few ms of work at full speed.
const PROPOSAL_QUEUE_CAPACITY: usize = 4096;

struct Shared {
    state: RwLock<StateMachines>,
    commit_index: AtomicU64,
    term: AtomicU64,
    membership: Membership,
    options: ServerOptions,
}

/// A cheap, cloneable handle on a running member.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    proposals: mpsc::Sender<Proposal>,
}

impl Server {
    /// Starts a single-member server: applies the bootstrap entries of a new
    /// cluster and spawns the log task. Must run inside a tokio runtime.
    pub fn start(membership: Membership, options: ServerOptions) -> Server {
        let (tx, rx) = mpsc::channel(PROPOSAL_QUEUE_CAPACITY);
        let shared = Arc::new(Shared {
            state: RwLock::new(StateMachines::new()),
            commit_index: AtomicU64::new(0),
            term: AtomicU64::new(0),
            membership,
            options,
        });
        let server = Server {
            shared: shared.clone(),
            proposals: tx,
        };
        local_log::bootstrap(&server);
        tokio::spawn(local_log::run(server.clone(), rx));
        server
    }

    /// Orders `cmd` through the log and returns what applying it produced.
    pub async fn propose(&self, cmd: Command) -> Result<(Outcome, LogPosition), ServerError> {
        let (reply, rx) = oneshot::channel();
        let deadline = self.shared.options.request_timeout;
        let send = self.proposals.send(Proposal { cmd, reply });
        let outcome = async {
            send.await.map_err(|_| ServerError::Stopped)?;
            rx.await.map_err(|_| ServerError::Stopped)
        };
        tokio::time::timeout(deadline, outcome)
            .await
            .map_err(|_| ServerError::Timeout)?
    }

    /// A linearizable read barrier: returns once every write acknowledged
    /// before the call is applied locally. A single member applies before
    /// it acknowledges, so the barrier is immediate.
    pub async fn read_barrier(&self) -> Result<(), ServerError> {
        Ok(())
    }

    pub fn state(&self) -> RwLockReadGuard<'_, StateMachines> {
        self.shared.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state_mut(&self) -> RwLockWriteGuard<'_, StateMachines> {
        self.shared.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            commit_index: self.shared.commit_index.load(Ordering::Acquire),
            term: self.shared.term.load(Ordering::Acquire),
        }
    }

    pub fn membership(&self) -> &Membership {
        &self.shared.membership
    }

    pub fn options(&self) -> &ServerOptions {
        &self.shared.options
    }

    /// The id of the current leader (this member, while it runs alone).
    pub fn leader_id(&self) -> Option<u64> {
        Some(self.shared.membership.member_id)
    }
}

/// The wall clock in Unix nanoseconds. Only the server layer reads it; the
/// state machines get time through commands.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
