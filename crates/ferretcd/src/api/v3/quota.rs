//! The space a write may take (etcd's `backendQuota` costs): a write whose
//! cost would take the database past `--quota-backend-bytes` raises the
//! NOSPACE alarm and is refused.

use ferret_proto::etcdserverpb::{request_op, PutRequest, RequestOp, TxnRequest};

/// etcd's per-key overhead estimate.
const KV_OVERHEAD_BYTES: u64 = 256;
/// etcd's per-lease overhead estimate.
pub const LEASE_OVERHEAD_BYTES: u64 = 64;

pub fn cost_put(r: &PutRequest) -> u64 {
    KV_OVERHEAD_BYTES + r.key.len() as u64 + r.value.len() as u64
}

fn cost_op(op: &RequestOp) -> u64 {
    match &op.request {
        Some(request_op::Request::RequestPut(p)) => cost_put(p),
        _ => 0,
    }
}

/// The larger branch's puts (nested txns cost nothing, as in etcd).
pub fn cost_txn(r: &TxnRequest) -> u64 {
    let success: u64 = r.success.iter().map(cost_op).sum();
    let failure: u64 = r.failure.iter().map(cost_op).sum();
    success.max(failure)
}
