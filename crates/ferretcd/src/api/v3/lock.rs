//! `v3lockpb.Lock`: Lock and Unlock, as etcd 3.4 serves them (its
//! `v3lock` package over its client's `concurrency.Mutex`).
//!
//! Lock puts the session's key `<name>/<lease in hex>` (with that lease)
//! if it is not there, and holds the lock once no key under `<name>/` was
//! created before it: it waits for each older key's deletion, newest
//! first. A client that goes away while waiting has its key deleted.
//! Unlock deletes the key the lock was answered with.

use bytes::Bytes;
use ferret_proto::etcdserverpb::TxnRequest;
use ferret_proto::v3lockpb::{
    lock_server::Lock, LockRequest, LockResponse, UnlockRequest, UnlockResponse,
};
use tonic::{Request, Response, Status};

use super::concurrency::{
    created_at, delete, first_created, op_get, op_put, op_range, prefix_of, range_kvs, session_key,
    session_lease, txn, wait_deletes, CleanupOnDrop,
};
use super::handle::V3;

pub struct LockService(pub V3);

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, req: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let v3 = &self.0.on_behalf_of(req.metadata());
        let r = req.into_inner();
        let lease = session_lease(v3, r.lease).await?;
        let prefix = prefix_of(&r.name);
        let key = session_key(&prefix, lease);
        // Put the key unless this session holds it already; either way,
        // read the oldest key of the prefix in the same txn.
        let resp = txn(
            v3,
            TxnRequest {
                compare: vec![created_at(&key, 0)],
                success: vec![
                    op_put(&key, Bytes::new(), lease),
                    op_range(first_created(&prefix)),
                ],
                failure: vec![op_get(&key), op_range(first_created(&prefix))],
            },
        )
        .await?;
        let mut my_rev = resp.header.as_ref().map_or(0, |h| h.revision);
        if !resp.succeeded {
            my_rev = range_kvs(&resp.responses, 0)?
                .first()
                .map_or(my_rev, |kv| kv.create_revision);
        }
        let owner = range_kvs(&resp.responses, 1)?;
        if owner.first().is_none_or(|kv| kv.create_revision == my_rev) {
            return Ok(Response::new(LockResponse {
                header: resp.header,
                key,
            }));
        }
        // Wait for every older waiter; if the client goes away first,
        // leave the queue (etcd unlocks with a fresh context).
        let leave = {
            let (v3, key) = (v3.clone(), key.clone());
            CleanupOnDrop::new(async move {
                let _ = delete(&v3, key).await;
            })
        };
        let header = wait_deletes(v3, &prefix, my_rev - 1).await?;
        leave.disarm();
        Ok(Response::new(LockResponse { header, key }))
    }

    async fn unlock(
        &self,
        req: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let v3 = self.0.on_behalf_of(req.metadata());
        let header = delete(&v3, req.into_inner().key).await?;
        Ok(Response::new(UnlockResponse { header }))
    }
}
