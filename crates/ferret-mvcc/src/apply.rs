//! The write side: applying log entries to the store, as etcd's
//! `applierV3backend` does.
//!
//! One log entry is one [`WriteTxn`]: every change it makes shares the
//! main revision `current + 1`, with sub revisions counting from 0, and
//! the revision advances only if something changed. At the end the
//! entry's changes are sealed into a batch and queued for the backend
//! thread, then the revision is published, then watchers are notified.
//! Nothing here reads the clock: lease times are passed in.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    compare, request_op, response_op, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest,
    CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseCheckpointRequest,
    LeaseCheckpointResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use ferret_proto::etcdserverpb::{
    AuthDisableResponse, AuthEnableResponse, AuthRoleAddResponse, AuthRoleDeleteResponse,
    AuthRoleGetResponse, AuthRoleGrantPermissionResponse, AuthRoleListResponse,
    AuthRoleRevokePermissionResponse, AuthUserAddResponse, AuthUserChangePasswordResponse,
    AuthUserDeleteResponse, AuthUserGetResponse, AuthUserGrantRoleResponse, AuthUserListResponse,
    AuthUserRevokeRoleResponse, AuthenticateResponse, InternalRaftRequest,
};
use ferret_proto::mvccpb::{event::EventType, Event, KeyValue};
use ferret_proto::Message;

use crate::auth::{Access, AuthChanges, AuthError, AuthInfo};
use crate::backend::{self, Batch, Record};
use crate::error::MvccError;
use crate::index::KeyRange;
use crate::lease::MAX_LEASE_TTL;
use crate::revision::Revision;
use crate::store::{
    range, range_keys, CompactJob, Completion, Mvcc, ReadView, Restored, Values, PENDING_MAX_BYTES,
    RECORD_OVERHEAD_BYTES,
};

/// A v3 request carried by a log entry.
#[derive(Debug, Clone, Copy)]
pub enum V3Request<'a> {
    Range(&'a RangeRequest),
    Put(&'a PutRequest),
    DeleteRange(&'a DeleteRangeRequest),
    Txn(&'a TxnRequest),
    Compaction(&'a CompactionRequest),
    LeaseGrant(&'a LeaseGrantRequest),
    LeaseRevoke(&'a LeaseRevokeRequest),
    LeaseCheckpoint(&'a LeaseCheckpointRequest),
    Alarm(&'a AlarmRequest),
    /// One of the Auth service's requests (or `authenticate`), in its
    /// entry.
    Auth(&'a InternalRaftRequest),
}

/// Whether an entry carries an Auth service request.
pub fn is_auth_request(r: &InternalRaftRequest) -> bool {
    r.authenticate.is_some()
        || r.auth_enable.is_some()
        || r.auth_disable.is_some()
        || r.auth_user_add.is_some()
        || r.auth_user_delete.is_some()
        || r.auth_user_get.is_some()
        || r.auth_user_change_password.is_some()
        || r.auth_user_grant_role.is_some()
        || r.auth_user_revoke_role.is_some()
        || r.auth_user_list.is_some()
        || r.auth_role_list.is_some()
        || r.auth_role_add.is_some()
        || r.auth_role_delete.is_some()
        || r.auth_role_get.is_some()
        || r.auth_role_grant_permission.is_some()
        || r.auth_role_revoke_permission.is_some()
}

/// What applying an Auth service request produced.
#[derive(Debug, Clone)]
pub enum AuthResponse {
    Enable(AuthEnableResponse),
    Disable(AuthDisableResponse),
    /// With the user and the auth revision it was authenticated at (what
    /// a JWT carries); `token` is set for simple tokens only.
    Authenticate(AuthenticateResponse, String, u64),
    UserAdd(AuthUserAddResponse),
    UserDelete(AuthUserDeleteResponse),
    UserChangePassword(AuthUserChangePasswordResponse),
    UserGrantRole(AuthUserGrantRoleResponse),
    UserRevokeRole(AuthUserRevokeRoleResponse),
    UserGet(AuthUserGetResponse),
    UserList(AuthUserListResponse),
    RoleAdd(AuthRoleAddResponse),
    RoleDelete(AuthRoleDeleteResponse),
    RoleGet(AuthRoleGetResponse),
    RoleGrantPermission(AuthRoleGrantPermissionResponse),
    RoleRevokePermission(AuthRoleRevokePermissionResponse),
    RoleList(AuthRoleListResponse),
}

/// What applying a [`V3Request`] produced. Headers carry the revision;
/// the server fills in the cluster, member and term.
#[derive(Debug, Clone)]
pub enum V3Response {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    /// With the compaction's completion (for `physical: true`).
    Compaction(CompactionResponse, Completion),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseCheckpoint(LeaseCheckpointResponse),
    Alarm(AlarmResponse),
    Auth(AuthResponse),
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Completion(done: {})", self.is_done())
    }
}

/// Applies log entries; owned by the apply path (one per member).
pub struct Applier {
    m: Arc<Mvcc>,
    /// Entries at or below this are in the backend already (replayed after
    /// a restart): skipped.
    restored_index: u64,
    applied_index: u64,
}

impl Applier {
    pub fn new(m: Arc<Mvcc>, restored: &Restored) -> Applier {
        Applier {
            m,
            restored_index: restored.consistent_index,
            applied_index: restored.consistent_index,
        }
    }

    pub fn store(&self) -> &Arc<Mvcc> {
        &self.m
    }

    /// The last entry applied (or found applied in the backend).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Applies the entry at `index`. `None` if the backend held its
    /// effects already (a replay after a restart).
    pub fn apply(
        &mut self,
        index: u64,
        req: V3Request<'_>,
        now: Instant,
    ) -> Option<Result<V3Response, MvccError>> {
        self.apply_as(index, req, &AuthInfo::default(), now)
    }

    /// Applies the entry at `index` as sent by `who` (from the entry's
    /// header), whose permissions are checked first when auth is enabled
    /// (etcd's `authApplierV3`).
    pub fn apply_as(
        &mut self,
        index: u64,
        req: V3Request<'_>,
        who: &AuthInfo,
        now: Instant,
    ) -> Option<Result<V3Response, MvccError>> {
        if index <= self.restored_index {
            return None;
        }
        self.wait_for_room();
        let mut w = WriteTxn::new(&self.m);
        let out = match Self::refused(&self.m, req) {
            Some(e) => Err(e),
            None => match Self::permitted(&self.m, req, who) {
                Err(e) => Err(MvccError::Auth(e)),
                Ok(()) => match req {
                    V3Request::Auth(r) => w.auth(r, index, now).map(V3Response::Auth),
                    _ => Self::dispatch(&mut w, req, now),
                },
            },
        };
        let job = w.job.take();
        w.commit(index, job);
        self.applied_index = index;
        Some(out)
    }

    /// etcd's stacked appliers: a raised CORRUPT alarm refuses everything
    /// but alarm requests; a raised NOSPACE alarm refuses what would grow
    /// the database.
    fn refused(m: &Mvcc, req: V3Request<'_>) -> Option<MvccError> {
        let alarms = m.alarms();
        if alarms.is_active(AlarmType::Corrupt) && !matches!(req, V3Request::Alarm(_)) {
            return Some(MvccError::Corrupt);
        }
        if alarms.is_active(AlarmType::Nospace) {
            match req {
                V3Request::Put(_) | V3Request::LeaseGrant(_) => return Some(MvccError::NoSpace),
                V3Request::Txn(t) if !is_txn_readonly(t) => return Some(MvccError::NoSpace),
                _ => {}
            }
        }
        None
    }

    /// etcd's `authApplierV3`: what `who` must be allowed for `req`.
    fn permitted(m: &Mvcc, req: V3Request<'_>, who: &AuthInfo) -> Result<(), AuthError> {
        let auth = m.auth();
        if !auth.is_enabled() {
            return Ok(());
        }
        // Every key attached to a lease must be writable (etcd's
        // `checkLeasePuts`).
        let lease_keys = |id: i64| -> Result<(), AuthError> {
            if id == 0 {
                return Ok(());
            }
            let keys: Vec<Bytes> = match m.lessor().get(id) {
                Some(l) => l.keys.iter().cloned().collect(),
                None => return Ok(()),
            };
            for k in &keys {
                auth.check(who, k, &[], Access::Write)?;
            }
            Ok(())
        };
        match req {
            V3Request::Put(p) => {
                auth.check(who, &p.key, &[], Access::Write)?;
                lease_keys(p.lease)?;
                if p.prev_kv {
                    auth.check(who, &p.key, &[], Access::Read)?;
                }
                Ok(())
            }
            V3Request::Range(r) => auth.check(who, &r.key, &r.range_end, Access::Read),
            V3Request::DeleteRange(d) => {
                auth.check(who, &d.key, &d.range_end, Access::Write)?;
                if d.prev_kv {
                    auth.check(who, &d.key, &d.range_end, Access::Read)?;
                }
                Ok(())
            }
            V3Request::Txn(t) => auth.check_txn(who, t),
            V3Request::LeaseRevoke(r) => lease_keys(r.id),
            V3Request::Auth(r) => {
                let admin_only = r.auth_enable.is_some()
                    || r.auth_disable.is_some()
                    || r.auth_user_add.is_some()
                    || r.auth_user_delete.is_some()
                    || r.auth_user_change_password.is_some()
                    || r.auth_user_grant_role.is_some()
                    || r.auth_user_revoke_role.is_some()
                    || r.auth_role_add.is_some()
                    || r.auth_role_grant_permission.is_some()
                    || r.auth_role_revoke_permission.is_some()
                    || r.auth_role_delete.is_some()
                    || r.auth_user_list.is_some()
                    || r.auth_role_list.is_some();
                if admin_only {
                    return auth.check_admin(who);
                }
                // A user may read itself, and the roles it has.
                if let Some(g) = &r.auth_user_get {
                    if let Err(e) = auth.check_admin(who) {
                        if g.name != who.user {
                            return Err(e);
                        }
                    }
                }
                if let Some(g) = &r.auth_role_get {
                    if let Err(e) = auth.check_admin(who) {
                        if !auth.has_role(&who.user, &g.role) {
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            V3Request::Compaction(_)
            | V3Request::LeaseGrant(_)
            | V3Request::LeaseCheckpoint(_)
            | V3Request::Alarm(_) => Ok(()),
        }
    }

    fn dispatch(
        w: &mut WriteTxn<'_>,
        req: V3Request<'_>,
        now: Instant,
    ) -> Result<V3Response, MvccError> {
        match req {
            V3Request::Range(r) => w.range(r).map(V3Response::Range),
            V3Request::Put(r) => w.apply_put(r).map(V3Response::Put),
            V3Request::DeleteRange(r) => w.apply_delete_range(r).map(V3Response::DeleteRange),
            V3Request::Txn(r) => w.txn(r).map(V3Response::Txn),
            V3Request::Compaction(r) => w.compaction(r),
            V3Request::LeaseGrant(r) => w.lease_grant(r, now).map(V3Response::LeaseGrant),
            V3Request::LeaseRevoke(r) => w.lease_revoke(r).map(V3Response::LeaseRevoke),
            V3Request::LeaseCheckpoint(r) => {
                w.lease_checkpoint(r, now).map(V3Response::LeaseCheckpoint)
            }
            V3Request::Alarm(r) => Ok(V3Response::Alarm(w.alarm(r))),
            V3Request::Auth(_) => unreachable!("auth requests are applied by WriteTxn::auth"),
        }
    }

    /// Replaces the store's backend with one received from the leader;
    /// entries up to its consistent index are then skipped.
    pub fn install(&mut self, p: crate::snapshot::Prepared) -> Result<Restored, MvccError> {
        let r = self.m.install(p)?;
        self.restored_index = r.consistent_index;
        self.applied_index = r.consistent_index;
        Ok(r)
    }

    /// Records a configuration change at `index`: rows of etcd's
    /// `members` bucket to put (`Some`) or delete, and ids to add to
    /// `members_removed` (keys and values as the server layer encodes
    /// them). `false` if the backend held it already (a replay).
    pub fn record_members(
        &mut self,
        index: u64,
        members: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        removed: Vec<Vec<u8>>,
    ) -> bool {
        if index <= self.restored_index {
            return false;
        }
        let batch = Batch {
            index,
            members,
            members_removed: removed,
            ..Default::default()
        };
        let mut p = self.m.lock_pending();
        if !batch.is_empty() {
            if p.since.is_none() {
                p.since = Some(Instant::now());
            }
            p.queue.push(batch);
        }
        p.applied_index = index;
        self.applied_index = index;
        true
    }

    /// Records an entry with no v3 request (a v2 write, an empty entry).
    pub fn skip(&mut self, index: u64) {
        if index <= self.applied_index {
            return;
        }
        let mut p = self.m.lock_pending();
        p.applied_index = index;
        self.applied_index = index;
    }

    /// Bounded memory: when the backend falls this far behind, applying
    /// waits for it.
    fn wait_for_room(&self) {
        let mut p = self.m.lock_pending();
        if p.bytes < PENDING_MAX_BYTES {
            return;
        }
        tracing::warn!(
            queued_bytes = p.bytes,
            "the v3 backend is behind; applying waits for it"
        );
        p.flush_now = true;
        self.m.pending_cond.notify_all();
        while p.bytes >= PENDING_MAX_BYTES && !self.m.failed() {
            p = self
                .m
                .pending_cond
                .wait_timeout(p, std::time::Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Mvcc {
    /// A read-only transaction (no put or delete in any branch), served
    /// outside the log as etcd serves it.
    pub fn txn_readonly(&self, req: &TxnRequest) -> Result<TxnResponse, MvccError> {
        debug_assert!(is_txn_readonly(req));
        let mut w = WriteTxn::new(self);
        w.txn(req)
    }
}

/// etcd's `isTxnReadonly`: only ranges, in both branches (a nested txn
/// counts as a write).
pub fn is_txn_readonly(r: &TxnRequest) -> bool {
    r.success
        .iter()
        .chain(&r.failure)
        .all(|op| matches!(op.request, Some(request_op::Request::RequestRange(_))))
}

/// The changes of one log entry, and reads that see them.
struct WriteTxn<'a> {
    m: &'a Mvcc,
    /// The revision before this entry.
    begin_rev: i64,
    records: Vec<Record>,
    events: Vec<Event>,
    leases: Vec<(i64, Option<Bytes>)>,
    meta: Vec<(&'static [u8], Vec<u8>)>,
    alarms: Vec<(Vec<u8>, bool)>,
    auth: AuthChanges,
    job: Option<CompactJob>,
    view: Option<ReadView<'a>>,
}

impl<'a> WriteTxn<'a> {
    fn new(m: &'a Mvcc) -> WriteTxn<'a> {
        WriteTxn {
            m,
            begin_rev: m.current_rev(),
            records: Vec::new(),
            events: Vec::new(),
            leases: Vec::new(),
            meta: Vec::new(),
            alarms: Vec::new(),
            auth: AuthChanges::default(),
            job: None,
            view: None,
        }
    }

    /// The revision reads in this entry see: its own changes included.
    fn read_rev(&self) -> i64 {
        if self.records.is_empty() {
            self.begin_rev
        } else {
            self.begin_rev + 1
        }
    }

    fn next_rev(&self) -> Revision {
        Revision::new(self.begin_rev + 1, self.records.len() as i64)
    }

    fn view(&mut self) -> Result<&ReadView<'a>, MvccError> {
        if self.view.is_none() {
            self.view = Some(self.m.view()?);
        }
        Ok(self.view.as_ref().expect("just opened"))
    }

    /// Seals the entry: queue its changes, publish its revision, notify.
    fn commit(self, index: u64, job: Option<CompactJob>) {
        let changed = !self.records.is_empty();
        let rev = self.begin_rev + 1;
        let m = self.m;
        {
            let mut p = m.lock_pending();
            for r in &self.records {
                p.bytes += r.data.len() + RECORD_OVERHEAD_BYTES;
                p.records.insert(r.rev, r.clone());
            }
            let batch = Batch {
                index,
                records: self.records,
                leases: self.leases,
                meta: self.meta,
                alarms: self.alarms,
                auth: self.auth,
                ..Default::default()
            };
            if !batch.is_empty() {
                if p.since.is_none() {
                    p.since = Some(Instant::now());
                }
                p.queue.push(batch);
            }
            p.applied_index = index;
            let has_job = job.is_some();
            if let Some(j) = job {
                p.jobs.push_back(crate::store::Job::Compact(j));
            }
            if has_job || p.records.len() >= m.cfg.batch_limit {
                m.pending_cond.notify_all();
            }
        }
        if changed {
            m.current_rev
                .store(rev, std::sync::atomic::Ordering::Release);
            m.hub.notify(rev, &self.events);
        }
    }

    // ---- reads ----

    fn range(&mut self, r: &RangeRequest) -> Result<RangeResponse, MvccError> {
        self.view()?;
        let cur = self.read_rev();
        range(self, cur, r)
    }

    /// The key's current value, if it exists (this entry's changes
    /// included).
    fn current(&mut self, key: &[u8]) -> Result<Option<KeyValue>, MvccError> {
        self.view()?;
        let rr = range_keys(self, KeyRange::Single(key), self.read_rev(), 0, 0, false)?;
        Ok(rr.kvs.into_iter().next())
    }

    // ---- writes (etcd's storeTxnWrite) ----

    fn put(&mut self, key: &Bytes, value: Bytes, lease: i64) -> i64 {
        let rev = self.next_rev();
        let prev = self.m.index_write().put(key, rev, lease);
        let (created, version, old_lease) = match prev {
            Some(p) => (p.created, p.version, p.lease),
            None => (rev.main, 0, 0),
        };
        let kv = KeyValue {
            key: key.clone(),
            create_revision: created,
            mod_revision: rev.main,
            version: version + 1,
            value,
            lease,
        };
        self.records.push(Record {
            rev,
            tombstone: false,
            data: kv.encode_to_vec().into(),
        });
        if old_lease != 0 || lease != 0 {
            let mut le = self.m.lessor();
            if old_lease != 0 {
                le.detach(old_lease, key);
            }
            if lease != 0 && !le.attach(lease, key) {
                // Checked before applying; a lease revoked in between
                // cannot happen within one entry.
                tracing::error!(lease, "put attached to a lease that does not exist");
            }
        }
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        });
        rev.main
    }

    fn delete_range(&mut self, range: KeyRange<'_>) -> i64 {
        let rrev = self.read_rev();
        let mut keys: Vec<Bytes> = Vec::new();
        {
            let idx = self.m.index_read();
            idx.walk(range, rrev, None, usize::MAX, |k, _| {
                keys.push(Bytes::copy_from_slice(k));
                true
            });
        }
        for k in &keys {
            self.delete(k);
        }
        keys.len() as i64
    }

    fn delete(&mut self, key: &Bytes) {
        let rev = self.next_rev();
        let kv = KeyValue {
            key: key.clone(),
            ..Default::default()
        };
        self.records.push(Record {
            rev,
            tombstone: true,
            data: kv.encode_to_vec().into(),
        });
        let lease = {
            let mut idx = self.m.index_write();
            let lease = idx.key_index(key).map_or(0, |ki| ki.lease);
            let ok = idx.tombstone(key, rev);
            debug_assert!(ok, "deleting a key that exists");
            lease
        };
        if lease != 0 {
            self.m.lessor().detach(lease, key);
        }
        self.events.push(Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                mod_revision: rev.main,
                ..kv
            }),
            prev_kv: None,
        });
    }

    // ---- requests (etcd's applierV3backend) ----

    fn lease_exists(&self, id: i64) -> bool {
        self.m.lessor().get(id).is_some()
    }

    fn apply_put(&mut self, p: &PutRequest) -> Result<PutResponse, MvccError> {
        if p.lease != 0 && !self.lease_exists(p.lease) {
            return Err(MvccError::LeaseNotFound);
        }
        self.put_op(p)
    }

    /// A put whose lease was checked.
    fn put_op(&mut self, p: &PutRequest) -> Result<PutResponse, MvccError> {
        let mut value = p.value.clone();
        let mut lease = p.lease;
        let prev = if p.ignore_value || p.ignore_lease || p.prev_kv {
            self.current(&p.key)?
        } else {
            None
        };
        if p.ignore_value || p.ignore_lease {
            let Some(prev) = &prev else {
                return Err(MvccError::KeyNotFound);
            };
            if p.ignore_value {
                value = prev.value.clone();
            }
            if p.ignore_lease {
                lease = prev.lease;
            }
        }
        if crate::store::failpoint_armed("corrupt-apply") {
            // Tests: this member's key space silently differs from the
            // others' (a corruption the checks must find).
            value = Bytes::from([&value[..], b"~"].concat());
        }
        let rev = self.put(&p.key, value, lease);
        Ok(PutResponse {
            header: Some(header(rev)),
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn apply_delete_range(
        &mut self,
        d: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, MvccError> {
        let range = KeyRange::new(&d.key, &d.range_end);
        let prev_kvs = if d.prev_kv {
            self.view()?;
            range_keys(self, range, self.read_rev(), 0, 0, false)?.kvs
        } else {
            Vec::new()
        };
        let had_changes = !self.records.is_empty();
        let deleted = self.delete_range(range);
        let rev = if deleted != 0 || had_changes {
            self.begin_rev + 1
        } else {
            self.begin_rev
        };
        Ok(DeleteRangeResponse {
            header: Some(header(rev)),
            deleted,
            prev_kvs,
        })
    }

    fn txn(&mut self, rt: &TxnRequest) -> Result<TxnResponse, MvccError> {
        self.view()?;
        let write = !is_txn_readonly(rt);
        let mut path = Vec::new();
        self.compare_to_path(rt, &mut path)?;
        if write {
            self.check_requests(rt, &path, &mut 0, Check::Put)?;
        }
        self.check_requests(rt, &path, &mut 0, Check::Range)?;
        let mut resp = TxnResponse {
            header: Some(ResponseHeader::default()),
            succeeded: path[0],
            responses: Vec::new(),
        };
        self.apply_txn(rt, &path, &mut 0, &mut resp)?;
        let rev = self.read_rev();
        resp.header = Some(header(rev));
        Ok(resp)
    }

    /// The branch each txn takes, depth first (etcd's `compareToPath`),
    /// all evaluated before anything is applied.
    fn compare_to_path(&mut self, rt: &TxnRequest, path: &mut Vec<bool>) -> Result<(), MvccError> {
        let ok = self.apply_compares(&rt.compare)?;
        path.push(ok);
        let ops = if ok { &rt.success } else { &rt.failure };
        for op in ops {
            if let Some(request_op::Request::RequestTxn(t)) = &op.request {
                self.compare_to_path(t, path)?;
            }
        }
        Ok(())
    }

    fn apply_compares(&mut self, cmps: &[Compare]) -> Result<bool, MvccError> {
        for c in cmps {
            if !self.apply_compare(c)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn apply_compare(&mut self, c: &Compare) -> Result<bool, MvccError> {
        let range = KeyRange::new(&c.key, &c.range_end);
        let rr = match range_keys(self, range, self.read_rev(), 0, 0, false) {
            Ok(rr) => rr,
            Err(MvccError::Backend { .. }) => {
                return Err(MvccError::backend("read", "compare"));
            }
            Err(_) => return Ok(false),
        };
        if rr.kvs.is_empty() {
            if c.target == compare::CompareTarget::Value as i32 {
                // Comparing the value of a missing key always fails.
                return Ok(false);
            }
            return Ok(compare_kv(c, &KeyValue::default()));
        }
        Ok(rr.kvs.iter().all(|kv| compare_kv(c, kv)))
    }

    /// etcd's `checkRequests`: what would fail must fail before anything
    /// is applied.
    fn check_requests(
        &mut self,
        rt: &TxnRequest,
        path: &[bool],
        at: &mut usize,
        check: Check,
    ) -> Result<(), MvccError> {
        let ops = if path[*at] { &rt.success } else { &rt.failure };
        for op in ops {
            match &op.request {
                Some(request_op::Request::RequestTxn(t)) => {
                    *at += 1;
                    self.check_requests(t, path, at, check)?;
                }
                Some(request_op::Request::RequestPut(p)) if check == Check::Put => {
                    if p.ignore_value || p.ignore_lease {
                        let rr = range_keys(
                            self,
                            KeyRange::Single(&p.key),
                            self.read_rev(),
                            0,
                            0,
                            false,
                        )?;
                        if rr.kvs.is_empty() {
                            return Err(MvccError::KeyNotFound);
                        }
                    }
                    if p.lease != 0 && !self.lease_exists(p.lease) {
                        return Err(MvccError::LeaseNotFound);
                    }
                }
                Some(request_op::Request::RequestRange(r)) if check == Check::Range => {
                    if r.revision == 0 {
                        continue;
                    }
                    if r.revision > self.read_rev() {
                        return Err(MvccError::FutureRev);
                    }
                    if r.revision < self.m.compact_rev() {
                        return Err(MvccError::Compacted);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies the chosen branches (etcd's `applyTxn`).
    fn apply_txn(
        &mut self,
        rt: &TxnRequest,
        path: &[bool],
        at: &mut usize,
        resp: &mut TxnResponse,
    ) -> Result<(), MvccError> {
        let ops: &[RequestOp] = if path[*at] { &rt.success } else { &rt.failure };
        for op in ops {
            let r = match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    Some(response_op::Response::ResponseRange(self.range(r)?))
                }
                Some(request_op::Request::RequestPut(p)) => {
                    Some(response_op::Response::ResponsePut(self.put_op(p)?))
                }
                Some(request_op::Request::RequestDeleteRange(d)) => Some(
                    response_op::Response::ResponseDeleteRange(self.apply_delete_range(d)?),
                ),
                Some(request_op::Request::RequestTxn(t)) => {
                    *at += 1;
                    let mut nested = TxnResponse {
                        // etcd leaves a nested txn's header empty.
                        header: Some(ResponseHeader::default()),
                        succeeded: path[*at],
                        responses: Vec::new(),
                    };
                    self.apply_txn(t, path, at, &mut nested)?;
                    Some(response_op::Response::ResponseTxn(nested))
                }
                None => None,
            };
            resp.responses.push(ResponseOp { response: r });
        }
        Ok(())
    }

    fn compaction(&mut self, c: &CompactionRequest) -> Result<V3Response, MvccError> {
        let rev = c.revision;
        {
            let mut idx = self.m.index_write();
            if rev <= idx.compact_rev {
                return Err(MvccError::Compacted);
            }
            if rev > self.begin_rev {
                return Err(MvccError::FutureRev);
            }
            idx.compact_rev = rev;
        }
        self.meta
            .push((backend::SCHEDULED_COMPACT, backend::compact_rev_bytes(rev)));
        let done = Completion::default();
        self.job = Some(CompactJob {
            rev,
            done: done.clone(),
        });
        Ok(V3Response::Compaction(
            CompactionResponse {
                header: Some(header(self.begin_rev)),
            },
            done,
        ))
    }

    fn lease_grant(
        &mut self,
        r: &LeaseGrantRequest,
        now: Instant,
    ) -> Result<LeaseGrantResponse, MvccError> {
        if r.id == 0 {
            return Err(MvccError::LeaseNotFound);
        }
        if r.ttl > MAX_LEASE_TTL {
            return Err(MvccError::LeaseTtlTooLarge);
        }
        let mut le = self.m.lessor();
        if le.get(r.id).is_some() {
            return Err(MvccError::LeaseExists);
        }
        let l = le.grant(r.id, r.ttl, now);
        let (id, ttl, data) = (l.id, l.ttl, l.encode());
        drop(le);
        self.leases.push((id, Some(data)));
        Ok(LeaseGrantResponse {
            header: Some(header(self.begin_rev)),
            id,
            ttl,
            error: String::new(),
        })
    }

    fn lease_revoke(&mut self, r: &LeaseRevokeRequest) -> Result<LeaseRevokeResponse, MvccError> {
        let keys: Vec<Bytes> = match self.m.lessor().get(r.id) {
            None => return Err(MvccError::LeaseNotFound),
            Some(l) => l.keys.iter().cloned().collect(),
        };
        // In key order, so every member deletes identically.
        for k in &keys {
            if self
                .m
                .index_read()
                .key_index(k)
                .is_some_and(|ki| ki.is_live())
            {
                self.delete(k);
            }
        }
        self.m.lessor().remove(r.id);
        self.leases.push((r.id, None));
        Ok(LeaseRevokeResponse {
            header: Some(header(self.read_rev())),
        })
    }

    fn lease_checkpoint(
        &mut self,
        r: &LeaseCheckpointRequest,
        now: Instant,
    ) -> Result<LeaseCheckpointResponse, MvccError> {
        let persist = self.m.cfg.lease_checkpoint_persist;
        for c in &r.checkpoints {
            let mut le = self.m.lessor();
            if let Some(l) = le.checkpoint(c.id, c.remaining_ttl, now) {
                if persist {
                    let data = l.encode();
                    self.leases.push((c.id, Some(data)));
                }
            }
        }
        Ok(LeaseCheckpointResponse {
            header: Some(header(self.begin_rev)),
        })
    }
}

impl WriteTxn<'_> {
    fn alarm(&mut self, r: &AlarmRequest) -> AlarmResponse {
        let (alarms, change) = self.m.alarms().apply(r);
        if let Some((m, raised)) = change {
            self.alarms.push((m.encode_to_vec(), raised));
        }
        // etcd answers alarm requests without a header.
        AlarmResponse {
            header: None,
            alarms,
        }
    }
}

impl WriteTxn<'_> {
    /// Applies an Auth service request (etcd's `applierV3backend` auth
    /// methods over its `authStore`), its permission checked already.
    fn auth(
        &mut self,
        r: &InternalRaftRequest,
        index: u64,
        now: Instant,
    ) -> Result<AuthResponse, MvccError> {
        let m = self.m;
        let h = Some(header(self.begin_rev));
        let ch = &mut self.auth;
        let mut a = m.auth_write();
        let out = if let Some(q) = &r.authenticate {
            a.password_of(&q.name).map_err(|e| match e {
                AuthError::AuthNotEnabled => e,
                _ => AuthError::AuthFailed,
            })?;
            let rev = a.revision();
            let mut token = String::new();
            if !q.simple_token.is_empty() {
                token = format!("{}.{}", q.simple_token, index);
                m.tokens()
                    .assign(token.clone(), q.name.clone(), m.cfg.auth_token_ttl, now);
            }
            AuthResponse::Authenticate(
                AuthenticateResponse { header: h, token },
                q.name.clone(),
                rev,
            )
        } else if r.auth_enable.is_some() {
            a.enable(ch)?;
            AuthResponse::Enable(AuthEnableResponse { header: h })
        } else if r.auth_disable.is_some() {
            if a.disable(ch) {
                m.tokens().clear();
            }
            AuthResponse::Disable(AuthDisableResponse { header: h })
        } else if let Some(q) = &r.auth_user_add {
            a.user_add(q, ch)?;
            AuthResponse::UserAdd(AuthUserAddResponse { header: h })
        } else if let Some(q) = &r.auth_user_delete {
            a.user_delete(q, ch)?;
            m.tokens().invalidate_user(&q.name);
            AuthResponse::UserDelete(AuthUserDeleteResponse { header: h })
        } else if let Some(q) = &r.auth_user_change_password {
            a.user_change_password(q, ch)?;
            m.tokens().invalidate_user(&q.name);
            AuthResponse::UserChangePassword(AuthUserChangePasswordResponse { header: h })
        } else if let Some(q) = &r.auth_user_grant_role {
            a.user_grant_role(q, ch)?;
            AuthResponse::UserGrantRole(AuthUserGrantRoleResponse { header: h })
        } else if let Some(q) = &r.auth_user_revoke_role {
            a.user_revoke_role(q, ch)?;
            AuthResponse::UserRevokeRole(AuthUserRevokeRoleResponse { header: h })
        } else if let Some(q) = &r.auth_user_get {
            let roles = a.user_get(q)?;
            AuthResponse::UserGet(AuthUserGetResponse { header: h, roles })
        } else if r.auth_user_list.is_some() {
            AuthResponse::UserList(AuthUserListResponse {
                header: h,
                users: a.user_list(),
            })
        } else if let Some(q) = &r.auth_role_add {
            a.role_add(q, ch)?;
            AuthResponse::RoleAdd(AuthRoleAddResponse { header: h })
        } else if let Some(q) = &r.auth_role_delete {
            a.role_delete(q, ch)?;
            AuthResponse::RoleDelete(AuthRoleDeleteResponse { header: h })
        } else if let Some(q) = &r.auth_role_get {
            let perm = a.role_get(q)?;
            AuthResponse::RoleGet(AuthRoleGetResponse { header: h, perm })
        } else if let Some(q) = &r.auth_role_grant_permission {
            a.role_grant_permission(q, ch)?;
            AuthResponse::RoleGrantPermission(AuthRoleGrantPermissionResponse { header: h })
        } else if let Some(q) = &r.auth_role_revoke_permission {
            a.role_revoke_permission(q, ch)?;
            AuthResponse::RoleRevokePermission(AuthRoleRevokePermissionResponse { header: h })
        } else if r.auth_role_list.is_some() {
            AuthResponse::RoleList(AuthRoleListResponse {
                header: h,
                roles: a.role_list(),
            })
        } else {
            return Err(MvccError::Format("an auth entry with no request".into()));
        };
        Ok(out)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Put,
    Range,
}

impl Values for WriteTxn<'_> {
    fn key_value(&self, rev: Revision) -> Result<KeyValue, MvccError> {
        if rev.main == self.begin_rev + 1 {
            if let Some(r) = self.records.get(rev.sub as usize) {
                debug_assert_eq!(r.rev, rev);
                return KeyValue::decode(r.data.clone())
                    .map_err(|e| MvccError::backend("decode", e));
            }
        }
        self.view
            .as_ref()
            .expect("reads open the view first")
            .key_value(rev)
    }

    fn index(&self) -> &Mvcc {
        self.m
    }
}

fn header(revision: i64) -> ResponseHeader {
    ResponseHeader {
        revision,
        ..Default::default()
    }
}

/// etcd's `compareKV`.
fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    let int = |v: i64, want: Option<i64>| v.cmp(&want.unwrap_or(0));
    let result = match CompareTarget::try_from(c.target) {
        Ok(CompareTarget::Value) => {
            let want: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value[..].cmp(want)
        }
        Ok(CompareTarget::Create) => int(
            kv.create_revision,
            match c.target_union {
                Some(TargetUnion::CreateRevision(r)) => Some(r),
                _ => None,
            },
        ),
        Ok(CompareTarget::Mod) => int(
            kv.mod_revision,
            match c.target_union {
                Some(TargetUnion::ModRevision(r)) => Some(r),
                _ => None,
            },
        ),
        Ok(CompareTarget::Version) => int(
            kv.version,
            match c.target_union {
                Some(TargetUnion::Version(r)) => Some(r),
                _ => None,
            },
        ),
        Ok(CompareTarget::Lease) => int(
            kv.lease,
            match c.target_union {
                Some(TargetUnion::Lease(r)) => Some(r),
                _ => None,
            },
        ),
        Err(_) => std::cmp::Ordering::Equal,
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => result.is_eq(),
        Ok(CompareResult::NotEqual) => result.is_ne(),
        Ok(CompareResult::Greater) => result.is_gt(),
        Ok(CompareResult::Less) => result.is_lt(),
        Err(_) => true,
    }
}
