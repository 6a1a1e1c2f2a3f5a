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

use ferret_mvcc::{Applier, AuthInfo, MvccError, Prepared, Restored, V3Request, V3Response};
use ferret_proto::etcdserverpb::{
    InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest, LeaseRevokeRequest, RequestHeader,
};
use ferret_v2store::{Event, FrozenStore, Store, Write};

use crate::entry::{self, V2Op};
use crate::membership::{self, Change, Member, MemberError, Membership};

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
    membership: Membership,
}

impl SnapshotView {
    /// The snapshot file's payload, with raft's configuration at the same
    /// index (the Ready loop's). Slow (the whole v2 store): run it off the
    /// Ready loop, and drop the view soon, as while it lives every node the
    /// loop writes is copied.
    pub fn encode(self, conf_state: &raft::eraftpb::ConfState) -> Vec<u8> {
        entry::encode_snapshot(self.v2.encode(), conf_state, &self.membership)
    }
}

/// All state machines of a member.
pub struct StateMachines {
    pub v2: Store,
    pub v3: Applier,
    /// The cluster's members (see [`crate::membership`]).
    pub membership: Membership,
    /// Index of the last applied log entry.
    pub applied_index: u64,
}

impl StateMachines {
    pub fn new(v3: Applier) -> Self {
        StateMachines {
            v2: Store::new(STORE_NAMESPACES),
            v3,
            membership: Membership::default(),
            applied_index: 0,
        }
    }

    /// Applies the configuration change at `index` if it stands on the
    /// membership (etcd's `ValidateConfigurationChange`): the membership
    /// changes, the v2 store gets etcd's `/0/members` records and the
    /// backend its rows. Answers the members after it. The caller hands
    /// an accepted change to raft-rs.
    pub fn apply_conf_change(
        &mut self,
        index: u64,
        change: &Change,
    ) -> Result<Vec<Member>, MemberError> {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        if let Err(e) = self.membership.validate(change) {
            self.v3.skip(index);
            return Err(e);
        }
        self.membership.apply(change);
        let id = change.id();
        let dir = format!("/0/members/{id:x}");
        let writes = match change {
            Change::Add(m) => vec![Write::create(
                format!("{dir}/raftAttributes"),
                Membership::raft_attributes_json(m),
                0,
            )],
            Change::Promote(_) | Change::Update { .. } => {
                let m = self.membership.get(id).cloned().unwrap_or_default();
                let mut w = Write::put(
                    format!("{dir}/raftAttributes"),
                    Membership::raft_attributes_json(&m),
                    0,
                );
                w.prev_exist = Some(true);
                vec![w]
            }
            Change::Remove(_) => {
                let mut del = Write::put(dir, "", 0);
                del.method = ferret_v2store::Method::Delete;
                del.recursive = true;
                del.dir = true;
                vec![
                    del,
                    Write::create(format!("/0/removed_members/{id:x}"), "", 0),
                ]
            }
        };
        for w in writes {
            if let Err(e) = self.v2.apply(&w) {
                // The records mirror the membership; only a v2 store that
                // lost them (restored from an old snapshot) disagrees.
                tracing::warn!(path = %String::from_utf8_lossy(&w.path), error = %e, "membership record in the v2 store");
            }
        }
        let (rows, removed) = self.membership.backend_rows(id);
        self.v3.record_members(index, rows, removed);
        Ok(self.membership.members())
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
            return match entry::v2_op(r) {
                Ok(V2Op::Write(w)) => {
                    let out = self.v2.apply(&w);
                    if out.is_ok() {
                        self.member_record_written(index, &w);
                    }
                    self.v3.skip(index);
                    Applied::V2(out)
                }
                Ok(V2Op::Expire(now)) => {
                    self.v3.skip(index);
                    Applied::Expired(self.v2.delete_expired(now).len())
                }
                Err(e) => {
                    self.v3.skip(index);
                    Applied::Invalid(e)
                }
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
        } else if ferret_mvcc::is_auth_request(req) {
            V3Request::Auth(req)
        } else {
            self.v3.skip(index);
            return Applied::Invalid("an entry with no request this member applies".into());
        };
        // Who sent it: the user and auth revision of its token, as the
        // receiving member put them in the header (etcd's
        // `authApplierV3.Apply`).
        let who = req
            .header
            .as_ref()
            .map_or_else(AuthInfo::default, |h| AuthInfo {
                user: h.username.clone(),
                revision: h.auth_revision,
            });
        match self.v3.apply_as(index, v3, &who, Instant::now()) {
            Some(r) => Applied::V3(r),
            None => Applied::Replayed,
        }
    }

    /// A v2 write to etcd's membership records changes the membership
    /// when it is how a member publishes its name and client URLs
    /// (`/0/members/<id>/attributes`, as etcd's `UpdateAttributes`), or
    /// how builds before runtime membership bootstrapped a member
    /// (creating `/0/members/<id>/raftAttributes`).
    fn member_record_written(&mut self, index: u64, w: &Write) {
        let Some(rest) = w.path.strip_prefix(b"/0/members/") else {
            return;
        };
        let text = String::from_utf8_lossy(rest);
        let Some((hex, leaf)) = text.split_once('/') else {
            return;
        };
        let Some(id) = crate::ids::parse_id(hex) else {
            return;
        };
        let changed = match leaf {
            "attributes" => match membership::parse_attributes(&w.value) {
                Some((name, urls)) => self.membership.set_attributes(id, name, urls),
                None => false,
            },
            "raftAttributes"
                if w.prev_exist == Some(false) && self.membership.get(id).is_none() =>
            {
                let restored = Membership::from_v2_records(&[(id, w.value.clone())], &[], &[]);
                if let Some(m) = restored.get(id) {
                    self.membership.apply(&Change::Add(m.clone()));
                }
                true
            }
            _ => false,
        };
        if changed {
            let (rows, removed) = self.membership.backend_rows(id);
            self.v3.record_members(index, rows, removed);
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
    /// Answers raft's configuration at the snapshot, if the snapshot
    /// carries it.
    pub fn restore(
        &mut self,
        index: u64,
        data: &[u8],
    ) -> Result<Option<raft::eraftpb::ConfState>, RestoreError> {
        let snap = entry::decode_snapshot(data).map_err(RestoreError::Undecodable)?;
        self.v2
            .restore_in_place(&snap.v2_store)
            .map_err(|e| RestoreError::V2(e.to_string()))?;
        self.membership = self.snapshot_membership(&snap);
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
        Ok(entry::snapshot_conf_state(&snap))
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
        let snap = entry::decode_snapshot(data).map_err(RestoreError::Undecodable)?;
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
            .restore_in_place(&snap.v2_store)
            .map_err(|e| RestoreError::V2(e.to_string()))?;
        self.membership = self.snapshot_membership(&snap);
        self.applied_index = index;
        Ok(restored)
    }

    /// The membership a snapshot carries; from the v2 store's records in
    /// snapshots of builds before runtime membership.
    fn snapshot_membership(&self, snap: &ferret_proto::ferretpb::Snapshot) -> Membership {
        if let Some(m) = &snap.membership {
            return Membership::from_proto(m);
        }
        membership_from_v2(&self.v2)
    }

    /// A view to write a snapshot file from, in O(1) (see [`SnapshotView`]).
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            v2: self.v2.frozen(),
            membership: self.membership.clone(),
        }
    }

    /// The entries a leader proposes because time passed or the cluster
    /// lacks something, every housekeeping round: v2 TTL expiry (with the
    /// leader's clock, `now_ns`), revoking
    /// the leases that ran out and, when checkpoints are on, checkpoints of
    /// remaining TTLs. Time enters the replicated state only through these.
    pub fn due_proposals(&self, now_ns: i64, now: Instant) -> Vec<InternalRaftRequest> {
        let mut due = Vec::new();
        if self.v2.next_expiry_ns().is_some_and(|t| t <= now_ns) {
            due.push(entry::v2_expire(now_ns));
        }
        let (expired, checkpoints) = {
            let mut le = self.v3.store().lessor();
            (
                le.expired(now, LEASE_REVOKES_PER_ROUND),
                le.due_checkpoints(now, ferret_mvcc::lease::MAX_CHECKPOINT_BATCH),
            )
        };
        // Revoked as root, as etcd's lessor revokes with `WithRoot`; at
        // the highest auth revision, so that no change of the auth store
        // in between makes it stale. A client's request never carries
        // this header: the API layer sets the header of every request it
        // proposes.
        due.extend(expired.into_iter().map(|id| InternalRaftRequest {
            header: Some(RequestHeader {
                id: 0,
                username: ferret_mvcc::auth::ROOT.to_string(),
                auth_revision: u64::MAX,
            }),
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

    /// The cluster version, once the cluster set it (`/0/version`).
    pub fn cluster_version(&self) -> Option<String> {
        let ev = self.v2.get(b"/0/version", false, 0).ok()?;
        let value = ev.node.value?;
        Some(String::from_utf8_lossy(&value).into_owned())
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

/// The membership etcd's records in a v2 store describe
/// (`/0/members/<id>/raftAttributes` and `attributes`,
/// `/0/removed_members/<id>`).
pub fn membership_from_v2(v2: &Store) -> Membership {
    let mut raft = Vec::new();
    let mut attrs = Vec::new();
    let mut removed = Vec::new();
    let id_of = |key: &[u8], prefix: &[u8]| {
        crate::ids::parse_id(&String::from_utf8_lossy(key.strip_prefix(prefix)?))
    };
    if let Ok(ev) = v2.get(b"/0/members", true, 0) {
        for dir in &ev.node.nodes {
            let Some(id) = id_of(&dir.key, b"/0/members/") else {
                continue;
            };
            for leaf in &dir.nodes {
                let value = leaf.value.clone().unwrap_or_default().to_vec();
                if leaf.key.ends_with(b"/raftAttributes") {
                    raft.push((id, value));
                } else if leaf.key.ends_with(b"/attributes") {
                    attrs.push((id, value));
                }
            }
        }
    }
    if let Ok(ev) = v2.get(b"/0/removed_members", true, 0) {
        removed.extend(
            ev.node
                .nodes
                .iter()
                .filter_map(|n| id_of(&n.key, b"/0/removed_members/")),
        );
    }
    Membership::from_v2_records(&raft, &attrs, &removed)
}
