//! kube-apiserver's compactor (k8s.io/apiserver/pkg/storage/etcd3/
//! compact.go), every `interval` instead of every 5 minutes:
//!
//! ```text
//! Txn(version(compact_rev_key) == my compact time)
//!   .Then(Put(compact_rev_key, <revision seen last time>))
//!   .Else(Get(compact_rev_key))
//! ```
//!
//! then, when the Txn succeeded, `Compact(<revision seen last time>)`: so
//! each compaction drops the history older than one interval. When the
//! compare fails (another compactor won), it learns the compact time and
//! tries again next interval.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferret_proto::etcdserverpb::{compare::CompareTarget, CompactionRequest, TxnRequest};
use tokio::sync::watch;

use super::client::{call, Cursor, Pool};
use super::history::{Op, OpKind, Outcome, Recorder, COMPACT_KEY};
use super::writer::{compare_eq, else_kv, get_op, put_op};

pub async fn compactor(
    pool: Arc<Pool>,
    rec: Arc<Recorder>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let key = Bytes::from_static(COMPACT_KEY);
    let mut cur = Cursor::new(1, pool.len());
    let mut compact_time = 0i64;
    let mut rev = 0i64;
    let mut attempt = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let value = Bytes::from(rev.to_string());
        let txn = TxnRequest {
            compare: vec![compare_eq(&key, CompareTarget::Version, compact_time)],
            success: vec![put_op(&key, value.clone(), 0)],
            failure: vec![get_op(&key)],
        };
        let invoked_ms = rec.ms();
        let member = cur.member;
        let r = call(pool.kv(member).txn(txn)).await;
        attempt += 1;
        let mut op = Op {
            token: format!("compact:{rev}#{attempt}"),
            key: key.clone(),
            kind: OpKind::CompactKey,
            guard: compact_time,
            value,
            counter: 0,
            outcome: Outcome::Unknown,
            error: None,
            invoked_ms,
            completed_ms: rec.ms(),
            member,
        };
        let t = match r {
            Ok(t) => t,
            Err(e) => {
                rec.count(&format!("compactor txn error: {}", e.kind()));
                op.error = Some(e.to_string());
                rec.record(op);
                cur.fail_over();
                continue;
            }
        };
        let current = t.header.map_or(0, |h| h.revision);
        if !t.succeeded {
            op.outcome = Outcome::Failed;
            rec.record(op);
            compact_time = else_kv(t).map_or(0, |kv| kv.version);
            rev = current;
            rec.count("compactor lost its compare (an earlier attempt was applied)");
            continue;
        }
        op.outcome = Outcome::Ok(current);
        rec.record(op);
        compact_time += 1;
        if rev != 0 {
            let req = CompactionRequest {
                revision: rev,
                physical: false,
            };
            match call(pool.kv(member).compact(req)).await {
                Ok(_) => {
                    rec.compactions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((rev, rec.ms()));
                    rec.count("compactions");
                }
                Err(e) => {
                    rec.count(&format!("compaction error: {}", e.kind()));
                    cur.fail_over();
                }
            }
        }
        rev = current;
    }
}
