//! What the Ready loop and the client-facing handles share, and the types
//! a request's answer is made of (its log position, its errors).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ferret_mvcc::Mvcc;

use crate::apply::StateMachines;
use crate::entry::IdGenerator;
use crate::transport::TransportStats;

/// Why a request did not produce an outcome.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ServerError {
    #[error("etcdserver: request timed out")]
    Timeout,
    /// A request timed out, having started around a change of leader.
    #[error("etcdserver: request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    /// A request timed out while this member was not connected to the
    /// leader (or, leading, to a quorum) since it started.
    #[error("etcdserver: request timed out, possibly due to connection lost")]
    TimeoutDueToConnectionLost,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: proposal dropped, not applied (leader changing)")]
    ProposalDropped,
    /// The encoded request is over `--max-request-bytes`.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// No leader is known (for what only a leader can do).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// What only the leader knows was asked of another member.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// A configuration change that does not stand on the membership.
    #[error(transparent)]
    Member(#[from] crate::membership::MemberError),
    /// etcd's strict reconfiguration check: the change would leave fewer
    /// started members than a quorum.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    /// A learner promoted before its log caught up with the leader's.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// etcd's strict reconfiguration check: this member has not been
    /// connected to enough voters to keep a quorum through the change.
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
}

/// Where the log stands, for the `X-Raft-Index` and `X-Raft-Term` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub commit_index: u64,
    pub term: u64,
}

/// Who this member is and which cluster it belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub member_id: u64,
    pub cluster_id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// What the leader measured of one follower, for `/v2/stats/leader`:
/// heartbeat round trips (milliseconds) and send outcomes.
#[derive(Debug, Clone, Default)]
pub struct FollowerStats {
    pub success: u64,
    pub fail: u64,
    pub current_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    sum_ms: f64,
    sum_sq_ms: f64,
}

impl FollowerStats {
    pub fn record_rtt(&mut self, ms: f64) {
        if self.success == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        if ms > self.max_ms {
            self.max_ms = ms;
        }
        self.success += 1;
        self.current_ms = ms;
        self.sum_ms += ms;
        self.sum_sq_ms += ms * ms;
    }

    pub fn average_ms(&self) -> f64 {
        if self.success == 0 {
            0.0
        } else {
            self.sum_ms / self.success as f64
        }
    }

    pub fn stddev_ms(&self) -> f64 {
        if self.success == 0 {
            return 0.0;
        }
        let n = self.success as f64;
        let mean = self.sum_ms / n;
        (self.sum_sq_ms / n - mean * mean).max(0.0).sqrt()
    }
}

/// What the Ready loop and the handles share: the state machines, where
/// the log and the leadership stand, this member's identity and the
/// measurements the stats endpoints report. The loop writes, handles read.
pub struct Shared {
    pub(crate) state: RwLock<StateMachines>,
    /// The v3 store: read without the state lock (it has its own).
    pub(crate) mvcc: Arc<Mvcc>,
    /// Proposal (and lease) ids, etcd's way.
    pub(crate) ids: IdGenerator,
    pub(crate) commit_index: AtomicU64,
    pub(crate) term: AtomicU64,
    /// 0 while there is no known leader.
    pub(crate) leader_id: AtomicU64,
    pub(crate) is_leader: AtomicBool,
    /// Started with an empty data dir and not verified yet (the amnesia
    /// guard, see `raft_node`).
    pub(crate) unverified: AtomicBool,
    /// This start proposed the member's attributes (so a peer that knows
    /// it as started may have learnt it from this start).
    pub(crate) publishing: AtomicBool,
    /// Whether this member is a learner in the membership it applied.
    pub(crate) is_learner: AtomicBool,
    pub(crate) leader_since_ns: AtomicI64,
    pub transport_stats: Arc<TransportStats>,
    pub(crate) followers: std::sync::Mutex<std::collections::HashMap<u64, FollowerStats>>,
    pub(crate) identity: RwLock<Identity>,
    pub(crate) request_timeout: Duration,
    /// `--strict-reconfig-check`.
    pub(crate) strict_reconfig: bool,
    /// Becomes true once this member's attributes are applied, i.e. it is
    /// a published member of the cluster; client traffic is served only
    /// from then on, as etcd does.
    pub(crate) ready: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn follower(&self, id: u64, f: impl FnOnce(&mut FollowerStats)) {
        let mut map = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(id).or_default());
    }

    pub(crate) fn state(&self) -> RwLockReadGuard<'_, StateMachines> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state_mut(&self) -> RwLockWriteGuard<'_, StateMachines> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}
