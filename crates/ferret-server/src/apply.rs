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

use std::sync::Arc;
use std::time::Instant;

use ferret_mvcc::{Applier, MvccError, V3Request, V3Response};
use ferret_proto::etcdserverpb::InternalRaftRequest;
use ferret_v2store::{Event, Store};

use crate::entry::{self, V2Op};

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
}
