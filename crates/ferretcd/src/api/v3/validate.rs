//! The checks etcd makes on a KV request before proposing it
//! (`v3rpc/key.go`), in etcd's order, with etcd's quirks.

use ferret_proto::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use super::error::V3Error;

pub fn check_range(r: &RangeRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    Ok(())
}

pub fn check_put(r: &PutRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(V3Error::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(V3Error::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete(r: &DeleteRangeRequest) -> Result<(), V3Error> {
    if r.key.is_empty() {
        return Err(V3Error::EmptyKey);
    }
    Ok(())
}

/// etcd's `checkTxnRequest`. `--max-txn-ops` bounds the largest of the
/// compare, success and failure lists (not their sum); a nested txn gets
/// what its parent left of the budget.
pub fn check_txn(r: &TxnRequest, max_ops: i64) -> Result<(), V3Error> {
    let opc = r.compare.len().max(r.success.len()).max(r.failure.len()) as i64;
    if opc > max_ops {
        return Err(V3Error::TooManyOps);
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(V3Error::EmptyKey);
    }
    for op in r.success.iter().chain(&r.failure) {
        check_op(op, max_ops - opc)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_ops: i64) -> Result<(), V3Error> {
    match &op.request {
        Some(request_op::Request::RequestRange(r)) => check_range(r),
        Some(request_op::Request::RequestPut(r)) => check_put(r),
        Some(request_op::Request::RequestDeleteRange(r)) => check_delete(r),
        Some(request_op::Request::RequestTxn(t)) => check_txn(t, max_ops),
        // An empty op: etcd answers "key not found".
        None => Err(V3Error::KeyNotFound),
    }
}

/// A key interval as etcd's `adt` package orders them: an empty end is
/// +infinity, a point `k` is `[k, k + "\0")`.
#[derive(Debug, Clone)]
struct Interval {
    begin: Vec<u8>,
    /// `None`: +infinity.
    end: Option<Vec<u8>>,
}

impl Interval {
    fn point(k: &[u8]) -> Interval {
        let mut end = k.to_vec();
        end.push(0);
        Interval {
            begin: k.to_vec(),
            end: Some(end),
        }
    }

    fn of_delete(key: &[u8], range_end: &[u8]) -> Interval {
        if range_end.is_empty() {
            Interval::point(key)
        } else {
            // etcd builds `[key, range_end)` literally: a "from key" end of
            // "\0" makes an empty interval there, which overlaps nothing.
            Interval {
                begin: key.to_vec(),
                end: Some(range_end.to_vec()),
            }
        }
    }

    fn intersects(&self, o: &Interval) -> bool {
        let lt = |a: &[u8], b: &Option<Vec<u8>>| match b {
            None => true,
            Some(b) => a < &b[..],
        };
        lt(&self.begin, &o.end) && lt(&o.begin, &self.end)
    }
}

/// etcd's `checkIntervals`: no key may be put twice in one branch, nor put
/// where the same branch deletes; puts of one key in the success and the
/// failure branch of a nested txn are fine (only one runs).
pub fn check_intervals(ops: &[RequestOp]) -> Result<(), V3Error> {
    intervals(ops).map(|_| ())
}

fn intervals(ops: &[RequestOp]) -> Result<(Vec<Vec<u8>>, Vec<Interval>), V3Error> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(request_op::Request::RequestDeleteRange(d)) => {
                Some(Interval::of_delete(&d.key, &d.range_end))
            }
            _ => None,
        })
        .collect();
    let hits = |dels: &[Interval], k: &[u8]| {
        let p = Interval::point(k);
        dels.iter().any(|d| d.intersects(&p))
    };
    let mut puts: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        let Some(request_op::Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = intervals(&t.success)?;
        let (puts_else, dels_else) = intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || hits(&dels, k) {
                return Err(V3Error::DuplicateKey);
            }
            puts.push(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) {
                return Err(V3Error::DuplicateKey);
            }
            if hits(&dels, k) {
                return Err(V3Error::DuplicateKey);
            }
            puts.push(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(request_op::Request::RequestPut(p)) = &op.request else {
            continue;
        };
        let k = p.key.to_vec();
        if puts.contains(&k) || hits(&dels, &k) {
            return Err(V3Error::DuplicateKey);
        }
        puts.push(k);
    }
    Ok((puts, dels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                ..Default::default()
            })),
        }
    }

    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    range_end: Bytes::copy_from_slice(end.as_bytes()),
                    ..Default::default()
                },
            )),
        }
    }

    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestTxn(TxnRequest {
                compare: vec![],
                success,
                failure,
            })),
        }
    }

    #[test]
    fn duplicate_puts_and_puts_in_deletes() {
        assert_eq!(
            check_intervals(&[put("a"), put("a")]),
            Err(V3Error::DuplicateKey)
        );
        assert_eq!(
            check_intervals(&[del("a", "c"), put("b")]),
            Err(V3Error::DuplicateKey)
        );
        assert_eq!(
            check_intervals(&[put("b"), del("a", "c")]),
            Err(V3Error::DuplicateKey)
        );
        assert!(check_intervals(&[del("a", "c"), put("c")]).is_ok());
        assert!(check_intervals(&[del("a", ""), del("a", "")]).is_ok());
        assert!(check_intervals(&[put("a"), put("b")]).is_ok());
        // etcd's quirk: a from-key delete ("\0") overlaps no put.
        assert!(check_intervals(&[del("a", "\0"), put("b")]).is_ok());
    }

    #[test]
    fn nested_branches() {
        // The same key in both branches of a nested txn is fine...
        assert!(check_intervals(&[txn(vec![put("a")], vec![put("a")])]).is_ok());
        // ...but not alongside a put of it at the outer level.
        assert_eq!(
            check_intervals(&[txn(vec![put("a")], vec![]), put("a")]),
            Err(V3Error::DuplicateKey)
        );
        assert_eq!(
            check_intervals(&[txn(vec![del("a", "")], vec![]), put("a")]),
            Err(V3Error::DuplicateKey)
        );
        assert_eq!(
            check_intervals(&[txn(vec![put("a"), put("a")], vec![])]),
            Err(V3Error::DuplicateKey)
        );
    }

    #[test]
    fn max_txn_ops_bounds_the_largest_list() {
        let t = TxnRequest {
            compare: vec![],
            success: vec![put("a"), put("b")],
            failure: vec![put("c"), put("d")],
        };
        assert!(check_txn(&t, 2).is_ok());
        assert_eq!(check_txn(&t, 1), Err(V3Error::TooManyOps));
        // A nested txn gets what is left of the budget.
        let outer = TxnRequest {
            compare: vec![],
            success: vec![txn(vec![put("x"), put("y")], vec![])],
            failure: vec![],
        };
        assert_eq!(check_txn(&outer, 2), Err(V3Error::TooManyOps));
        assert!(check_txn(&outer, 3).is_ok());
        let empty = TxnRequest {
            compare: vec![],
            success: vec![RequestOp { request: None }],
            failure: vec![],
        };
        assert_eq!(check_txn(&empty, 128), Err(V3Error::KeyNotFound));
    }
}
