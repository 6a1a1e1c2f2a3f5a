//! `etcdserverpb.KV`: Range, Put, DeleteRange, Txn, Compact.
//!
//! Writes are proposed through the log and answered once applied; ranges
//! and read-only txns are served from the local store, after a ReadIndex
//! barrier unless serializable, as etcd 3.4 serves them.

use std::time::Duration;

use ferret_mvcc::{is_txn_readonly, V3Response};
use ferret_proto::etcdserverpb::{
    kv_server::Kv, request_op, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, InternalRaftRequest, PutRequest, PutResponse, RangeRequest, RangeResponse,
    TxnRequest, TxnResponse,
};
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::{unexpected, V3};
use super::{quota, validate};

pub struct KvService(pub V3);

/// etcd's `isTxnSerializable`: only serializable ranges.
fn is_txn_serializable(r: &TxnRequest) -> bool {
    r.success.iter().chain(&r.failure).all(
        |op| matches!(&op.request, Some(request_op::Request::RequestRange(rr)) if rr.serializable),
    )
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let (md, _, r) = req.into_parts();
        // etcd's interceptor: a learner serves only serializable reads.
        if !r.serializable && self.0.server.is_learner() {
            return Err(V3Error::NotSupportedForLearner.into());
        }
        validate::check_range(&r)?;
        if !r.serializable {
            self.0.server.read_barrier().await.map_err(V3Error::from)?;
        }
        // etcd's `doSerialize`.
        let caller = self.0.caller(&md).await?;
        self.0.check_range(&caller, &r.key, &r.range_end)?;
        let mut resp = self.0.read(|m| m.range(&r), r.range_end.is_empty())?;
        self.0.check_still_current(&caller)?;
        self.0.fill(&mut resp.header);
        Ok(Response::new(resp))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let (md, _, r) = req.into_parts();
        validate::check_put(&r)?;
        self.0.check_quota(quota::cost_put(&r)).await?;
        let caller = self.0.caller(&md).await?;
        let resp = match self
            .0
            .propose(
                InternalRaftRequest {
                    put: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::Put(mut p) => {
                self.0.fill(&mut p.header);
                p
            }
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(resp))
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let (md, _, r) = req.into_parts();
        validate::check_delete(&r)?;
        let caller = self.0.caller(&md).await?;
        let resp = match self
            .0
            .propose(
                InternalRaftRequest {
                    delete_range: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::DeleteRange(mut d) => {
                self.0.fill(&mut d.header);
                d
            }
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(resp))
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let (md, _, r) = req.into_parts();
        validate::check_txn(&r, self.0.cfg.max_txn_ops)?;
        // After the request check, so the overlap check is never quadratic
        // in a request that is too large anyway.
        validate::check_intervals(&r.success)?;
        validate::check_intervals(&r.failure)?;
        if is_txn_readonly(&r) {
            if !is_txn_serializable(&r) {
                self.0.server.read_barrier().await.map_err(V3Error::from)?;
            }
            let caller = self.0.caller(&md).await?;
            self.0.check_read(&caller, |a, who| a.check_txn(who, &r))?;
            let mut resp = self.0.read(|m| m.txn_readonly(&r), false)?;
            self.0.check_still_current(&caller)?;
            self.0.fill(&mut resp.header);
            return Ok(Response::new(resp));
        }
        self.0.check_quota(quota::cost_txn(&r)).await?;
        let caller = self.0.caller(&md).await?;
        let resp = match self
            .0
            .propose(
                InternalRaftRequest {
                    txn: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::Txn(mut t) => {
                self.0.fill(&mut t.header);
                t
            }
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(resp))
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let (md, _, r) = req.into_parts();
        let physical = r.physical;
        // Anyone may compact (etcd 3.4 checks nothing but the token).
        let caller = self.0.caller(&md).await?;
        let (mut resp, done) = match self
            .0
            .propose(
                InternalRaftRequest {
                    compaction: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::Compaction(c, done) => (c, done),
            other => return Err(unexpected(other)),
        };
        if physical {
            // etcd answers a physical compaction once the backend dropped
            // the compacted revisions, however long that takes (a GiB of
            // revisions: a minute or more), or not at all if the client
            // goes first. A client that goes drops this future; the blocking
            // wait in flight then ends within a second.
            while !done.is_done() {
                let d = done.clone();
                let _ = tokio::task::spawn_blocking(move || d.wait(Duration::from_secs(1))).await;
            }
        }
        self.0.fill(&mut resp.header);
        Ok(Response::new(resp))
    }
}
