//! The apply path: log entries in, state machine results out.
//!
//! Consensus decides the order of entries; [`StateMachines::apply`]
//! executes them, one at a time, in that order, on every member. Two state
//! machines: the v2 store (in memory, snapshotted to files) and the v3
//! store (`ferret_mvcc`, in its own durable backend). After a restart each
//! resumes where its own durable state ends: the v2 store from its
//! snapshot, the v3 store from its backend's consistent index, which is
//! never behind the snapshot (the snapshot writer waits for the backend).
//! Applying is deterministic: the only clock read here is the local one
//! the lessor uses for expiry, which never changes replicated state.
//!
//! The state machines also own what the Ready loop needs of them beyond
//! applying: restoring from a snapshot file at a restart
//! ([`StateMachines::restore`]), installing a leader's snapshot
//! ([`StateMachines::install`]), a view to snapshot
//! ([`StateMachines::snapshot_view`]) and the entries a leader proposes
//! because time passed ([`StateMachines::due_proposals`]). The loop decides
//! when; this module decides what.

use std::sync::Arc;
use std::time::Instant;

use ferret_mvcc::{Applier, MvccError, Prepared, Restored, V3Request, V3Response};
use ferret_proto::etcdserverpb::{
    InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest, LeaseRevokeRequest,
};
use ferret_v2store::{Event, FrozenStore, Store, Write};

use crate::entry::{self, V2Op};

/// The cluster version a cluster of ferretcd members reports (etcd's API
/// level it implements), kept in the v2 store at `/0/version` as etcd
/// keeps it.
pub const CLUSTER_VERSION: &str = "3.4.0";

/// Lease revocations proposed per housekeeping round at most: half of
/// etcd's `leaseRevokeRate` (1000/s) per 500 ms round.
const LEASE_REVOKES_PER_ROUND: usize = ferret_mvcc::lease::LEASE_REVOKE_RATE / 2;

/// The namespaces of the v2 store, as etcd lays them out: membership under
/// `/0`, user keys under `/1` (v2 auth adds `/2` on first use).
pub const STORE_NAMESPACES: &[&str] = &["/0", "/1"];
/// The prefix the HTTP layer puts in front of every user key.
pub const KEYS_PREFIX: &[u8] = b"/1";

/// What applying an entry produced.
#[derive(Debug)]
pub enum Applied {
    V2(Result<Arc<Event>, ferret_v2store::Error>),
    /// v2 TTL expiry: how many nodes expired.
    Expired(usize),
    V3(Result<V3Response, MvccError>),
    /// A v3 entry the backend already held (replayed after a restart or a
    /// snapshot): applied before, nothing to do.
    Replayed,
    /// An entry this build cannot apply (logged; every member skips it
    /// alike).
    Invalid(String),
}

/// Why a snapshot could not be restored or installed. The member stops on
/// any of them: the data it would serve is not the cluster's.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the snapshot is undecodable: {0}")]
    Undecodable(String),
    #[error("the v2 store in the snapshot is corrupt: {0}")]
    V2(String),
    #[error("the v3 backend: {0}")]
    Backend(String),
}

/// A consistent view of the state machines for a snapshot file, taken
/// between two applies in O(1): the v2 store frozen copy-on-write. The v3
/// backend is not in it: it is durable on its own, and the file may be
/// written only once the backend holds every entry up to the snapshot.
pub struct SnapshotView {
    v2: FrozenStore,
}

impl SnapshotView {
    /// The snapshot file's payload. Slow (the whole v2 store): run it off
    /// the Ready loop, and drop the view soon, as while it lives every node
    /// the loop writes is copied.
    pub fn encode(self) -> Vec<u8> {
        entry::encode_snapshot(self.v2.encode())
    }
}

/// All state machines of a member.
pub struct StateMachines {
    pub v2: Store,
    pub v3: Applier,
    /// Index of the last applied log entry.
    pub applied_index: u64,
}

impl StateMachines {
    pub fn new(v3: Applier) -> Self {
        StateMachines {
            v2: Store::new(STORE_NAMESPACES),
            v3,
            applied_index: 0,
        }
    }

    /// Applies the entry at `index`. **Invariant: entries are applied in
    /// strictly increasing index order, each exactly once.**
    pub fn apply(&mut self, index: u64, req: &InternalRaftRequest) -> Applied {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        if let Some(r) = &req.v2 {
            self.v3.skip(index);
            return match entry::v2_op(r) {
                Ok(V2Op::Write(w)) => Applied::V2(self.v2.apply(&w)),
                Ok(V2Op::Expire(now)) => Applied::Expired(self.v2.delete_expired(now).len()),
                Err(e) => Applied::Invalid(e),
            };
        }
        let v3 = if let Some(r) = &req.range {
            V3Request::Range(r)
        } else if let Some(r) = &req.put {
            V3Request::Put(r)
        } else if let Some(r) = &req.delete_range {
            V3Request::DeleteRange(r)
        } else if let Some(r) = &req.txn {
            V3Request::Txn(r)
        } else if let Some(r) = &req.compaction {
            V3Request::Compaction(r)
        } else if let Some(r) = &req.lease_grant {
            V3Request::LeaseGrant(r)
        } else if let Some(r) = &req.lease_revoke {
            V3Request::LeaseRevoke(r)
        } else if let Some(r) = &req.alarm {
            V3Request::Alarm(r)
        } else if let Some(r) = &req.lease_checkpoint {
            V3Request::LeaseCheckpoint(r)
        } else {
            self.v3.skip(index);
            return Applied::Invalid("an entry with no request this member applies".into());
        };
        match self.v3.apply(index, v3, Instant::now()) {
            Some(r) => Applied::V3(r),
            None => Applied::Replayed,
        }
    }

    /// Records that the entry at `index` carried nothing for the state
    /// machines (a leader's empty entry, a configuration change).
    pub fn skip_to(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        self.v3.skip(index);
    }

    /// A restart: the state at the newest snapshot file, at `index`. The v2
    /// store comes from the file; the v3 store is its own backend, which
    /// must not be behind it (the snapshot writer waits for the backend).
    pub fn restore(&mut self, index: u64, data: &[u8]) -> Result<(), RestoreError> {
        let v2 = entry::decode_snapshot(data).map_err(RestoreError::Undecodable)?;
        self.v2
            .restore_in_place(&v2)
            .map_err(|e| RestoreError::V2(e.to_string()))?;
        let backend_index = self.v3.applied_index();
        if backend_index < index {
            // The backend file was lost or replaced by an older one: the
            // entries in between are gone from the log.
            return Err(RestoreError::Backend(format!(
                "it holds the log up to entry {backend_index}, but the newest snapshot \
                 covers up to {index} and the log before it is gone: the backend file \
                 is missing or older than the rest of the data dir"
            )));
        }
        self.applied_index = index;
        Ok(())
    }

    /// A snapshot from the leader, at `index`: `backend` (received and
    /// checked beside it) is renamed over the member's own and swapped in
    /// first, then the v2 store is restored from `data`. Entries between
    /// the snapshot and the backend's consistent index are then applied to
    /// the v2 store only.
    pub fn install(
        &mut self,
        index: u64,
        data: &[u8],
        backend: Prepared,
    ) -> Result<Restored, RestoreError> {
        // Decoded before anything changes.
        let v2 = entry::decode_snapshot(data).map_err(RestoreError::Undecodable)?;
        let restored = self
            .v3
            .install(backend)
            .map_err(|e| RestoreError::Backend(e.to_string()))?;
        // Tests: a crash with the backend installed and nothing else.
        ferret_mvcc::failpoint("snapshot-install-after-backend");
        if restored.consistent_index < index {
            // The receiver checks this before the backend is prepared.
            return Err(RestoreError::Backend(format!(
                "it holds the log up to entry {}, the snapshot covers up to {index}",
                restored.consistent_index
            )));
        }
        self.v2
            .restore_in_place(&v2)
            .map_err(|e| RestoreError::V2(e.to_string()))?;
        self.applied_index = index;
        Ok(restored)
    }

    /// A view to write a snapshot file from, in O(1) (see [`SnapshotView`]).
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            v2: self.v2.frozen(),
        }
    }

    /// The entries a leader proposes because time passed or the cluster
    /// lacks something, every housekeeping round: v2 TTL expiry (with the
    /// leader's clock, `now_ns`), the cluster version if missing, revoking
    /// the leases that ran out and, when checkpoints are on, checkpoints of
    /// remaining TTLs. Time enters the replicated state only through these.
    pub fn due_proposals(&self, now_ns: i64, now: Instant) -> Vec<InternalRaftRequest> {
        let mut due = Vec::new();
        if self.v2.next_expiry_ns().is_some_and(|t| t <= now_ns) {
            due.push(entry::v2_expire(now_ns));
        }
        due.extend(self.cluster_version_proposal(now_ns));
        let (expired, checkpoints) = {
            let mut le = self.v3.store().lessor();
            (
                le.expired(now, LEASE_REVOKES_PER_ROUND),
                le.due_checkpoints(now, ferret_mvcc::lease::MAX_CHECKPOINT_BATCH),
            )
        };
        due.extend(expired.into_iter().map(|id| InternalRaftRequest {
            lease_revoke: Some(LeaseRevokeRequest { id }),
            ..Default::default()
        }));
        if !checkpoints.is_empty() {
            due.push(InternalRaftRequest {
                lease_checkpoint: Some(LeaseCheckpointRequest {
                    checkpoints: checkpoints
                        .into_iter()
                        .map(|(id, remaining_ttl)| LeaseCheckpoint { id, remaining_ttl })
                        .collect(),
                }),
                ..Default::default()
            });
        }
        due
    }

    /// Setting the cluster version, if the cluster has none yet (a new
    /// cluster's leader proposes it at once, as etcd's does).
    pub fn cluster_version_proposal(&self, now_ns: i64) -> Option<InternalRaftRequest> {
        self.v2
            .get(b"/0/version", false, now_ns)
            .is_err()
            .then(|| entry::v2(&Write::put("/0/version", CLUSTER_VERSION, now_ns)))
    }
}
