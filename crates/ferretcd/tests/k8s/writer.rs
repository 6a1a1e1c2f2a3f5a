//! Writers: kube-apiserver's `Create`, `GuaranteedUpdate` and `Delete`
//! (k8s.io/apiserver/pkg/storage/etcd3/store.go) on objects under
//! `/registry/<kind>/<namespace>/<name>`.
//!
//! - create: `Txn(create_revision(key) == 0).Then(Put(key, obj))`;
//! - update: read the object, then `Txn(mod_revision(key) == read
//!   mod_revision).Then(Put(key, counter + 1)).Else(Get(key))`; on a
//!   conflict the `Else` answer is the new state and the update is tried
//!   again from it, as GuaranteedUpdate does;
//! - delete: `Txn(mod_revision(key) == read).Then(Delete(key)).Else(Get(key))`.
//!
//! Several writers share every object, so conflicts happen. A call that
//! gets no answer is recorded with an unknown outcome and the writer goes
//! on with another object: the token in the value tells later whether it
//! was applied.

use std::sync::Arc;

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    compare::{CompareResult, CompareTarget, TargetUnion},
    request_op, response_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, TxnResponse,
};
use ferret_proto::mvccpb::KeyValue;
use tokio::sync::watch;

use super::client::{call, range, CallError, Cursor, Pool, FAILOVER_PAUSE};
use super::history::{counter_of, object_value, show, Op, OpKind, Outcome, Recorder};
use super::rng::Rng;

/// Attempts of one update (reads that failed and conflicts included)
/// before the writer gives up and takes another object.
const ATTEMPTS_MAX: usize = 8;

pub fn compare_eq(key: &Bytes, target: CompareTarget, value: i64) -> Compare {
    let union = match target {
        CompareTarget::Create => TargetUnion::CreateRevision(value),
        CompareTarget::Mod => TargetUnion::ModRevision(value),
        CompareTarget::Version => TargetUnion::Version(value),
        other => panic!("no integer compare on {other:?}"),
    };
    Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.clone(),
        range_end: Bytes::new(),
        target_union: Some(union),
    }
}

pub fn put_op(key: &Bytes, value: Bytes, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.clone(),
            value,
            lease,
            ..Default::default()
        })),
    }
}

pub fn get_op(key: &Bytes) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.clone(),
            ..Default::default()
        })),
    }
}

fn delete_op(key: &Bytes) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.clone(),
                ..Default::default()
            },
        )),
    }
}

/// The key-value the `Else(Get(key))` branch of a failed Txn answered.
pub fn else_kv(r: TxnResponse) -> Option<KeyValue> {
    match r.responses.into_iter().next()?.response? {
        response_op::Response::ResponseRange(rr) => rr.kvs.into_iter().next(),
        _ => None,
    }
}

/// An object as last seen: absent, or its key-value.
type State = Option<KeyValue>;

pub struct Writer {
    pub id: usize,
    pub pool: Arc<Pool>,
    pub rec: Arc<Recorder>,
    pub objects: Arc<Vec<Bytes>>,
    pub rng: Rng,
    pub stop: watch::Receiver<bool>,
    cur: Cursor,
    seq: u64,
}

impl Writer {
    pub fn new(
        id: usize,
        pool: Arc<Pool>,
        rec: Arc<Recorder>,
        objects: Arc<Vec<Bytes>>,
        rng: Rng,
        stop: watch::Receiver<bool>,
    ) -> Writer {
        let cur = Cursor::new(id, pool.len());
        Writer {
            id,
            pool,
            rec,
            objects,
            rng,
            stop,
            cur,
            seq: 0,
        }
    }

    pub async fn run(mut self) {
        while !*self.stop.borrow() {
            let i = self.rng.below(self.objects.len() as u64) as usize;
            let key = self.objects[i].clone();
            self.guaranteed_update(&key).await;
            // Now and then another member, so every member serves writes
            // (and reads) from every writer.
            if self.rng.chance(1, 16) {
                self.cur.shuffle(&mut self.rng);
            }
            tokio::time::sleep(self.rng.millis(0, 10)).await;
        }
    }

    /// A linearizable read of one object.
    async fn get(&self, key: &Bytes) -> Result<State, CallError> {
        let (floor, key_floor) = self.rec.floor(Some(key));
        let r = range(
            &self.pool,
            &self.cur,
            RangeRequest {
                key: key.clone(),
                ..Default::default()
            },
        )
        .await?;
        self.rec.check_read(
            &format!("get {}", show(key)),
            self.cur.member,
            floor,
            r.header.as_ref(),
        );
        let kv = r.kvs.into_iter().next();
        if let Some(kv) = &kv {
            if kv.mod_revision < key_floor {
                self.rec.fail(format!(
                    "stale read: get {} on m{} answered mod_revision {}, but a write of it at \
                     revision {key_floor} was acknowledged before the read started",
                    show(key),
                    self.cur.member,
                    kv.mod_revision
                ));
            }
        }
        Ok(kv)
    }

    async fn guaranteed_update(&mut self, key: &Bytes) {
        let mut known: Option<State> = None;
        for _ in 0..ATTEMPTS_MAX {
            let state = match known.take() {
                Some(s) => s,
                None => match self.get(key).await {
                    Ok(s) => s,
                    Err(e) => {
                        self.rec.count(&format!("writer read error: {}", e.kind()));
                        self.cur.fail_over();
                        tokio::time::sleep(FAILOVER_PAUSE).await;
                        continue;
                    }
                },
            };
            let token = format!("w{}-{}", self.id, self.seq);
            self.seq += 1;
            let (kind, guard, counter, value, txn) = match &state {
                None => {
                    let value = object_value(&token, 0);
                    let txn = TxnRequest {
                        compare: vec![compare_eq(key, CompareTarget::Create, 0)],
                        success: vec![put_op(key, value.clone(), 0)],
                        failure: vec![get_op(key)],
                    };
                    (OpKind::Create, 0, 0, value, txn)
                }
                Some(kv) if self.rng.chance(1, 12) => {
                    let txn = TxnRequest {
                        compare: vec![compare_eq(key, CompareTarget::Mod, kv.mod_revision)],
                        success: vec![delete_op(key)],
                        failure: vec![get_op(key)],
                    };
                    (OpKind::Delete, kv.mod_revision, 0, Bytes::new(), txn)
                }
                Some(kv) => {
                    let Some(c) = counter_of(&kv.value) else {
                        self.rec.fail(format!(
                            "read {} = {:?}: not a value any writer wrote",
                            show(key),
                            String::from_utf8_lossy(&kv.value)
                        ));
                        return;
                    };
                    let value = object_value(&token, c + 1);
                    let txn = TxnRequest {
                        compare: vec![compare_eq(key, CompareTarget::Mod, kv.mod_revision)],
                        success: vec![put_op(key, value.clone(), 0)],
                        failure: vec![get_op(key)],
                    };
                    (OpKind::Update, kv.mod_revision, c + 1, value, txn)
                }
            };
            let invoked_ms = self.rec.ms();
            let member = self.cur.member;
            let r = call(self.pool.kv(member).txn(txn)).await;
            let mut op = Op {
                token,
                key: key.clone(),
                kind,
                guard,
                value,
                counter,
                outcome: Outcome::Unknown,
                error: None,
                invoked_ms,
                completed_ms: self.rec.ms(),
                member,
            };
            match r {
                Ok(resp) if resp.succeeded => {
                    op.outcome = Outcome::Ok(resp.header.map_or(0, |h| h.revision));
                    self.rec.record(op);
                    return;
                }
                Ok(resp) => {
                    // A conflict: retry from the state the Else branch read.
                    op.outcome = Outcome::Failed;
                    op.error = Some("compare failed".into());
                    self.rec.record(op);
                    self.rec.count("writer conflicts");
                    known = Some(else_kv(resp));
                }
                Err(e) if e.is_definite_refusal() => {
                    op.outcome = Outcome::Failed;
                    op.error = Some(e.to_string());
                    self.rec.record(op);
                    return;
                }
                Err(e) => {
                    self.rec.count(&format!("writer txn error: {}", e.kind()));
                    op.error = Some(e.to_string());
                    self.rec.record(op);
                    self.cur.fail_over();
                    return;
                }
            }
        }
        self.rec.count("updates given up after too many attempts");
    }
}
