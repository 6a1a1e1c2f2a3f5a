//! `etcdserverpb.Lease`: Grant, Revoke, KeepAlive, TimeToLive, Leases.
//!
//! Grant and Revoke go through the log. Keep-alives and TimeToLive need
//! the leader's clock: a follower forwards them to the leader over the
//! peer connection (etcd forwards them over its peer HTTP API).

use std::pin::Pin;

use ferret_mvcc::V3Response;
use ferret_proto::etcdserverpb::{
    lease_server::Lease, InternalRaftRequest, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, ResponseHeader,
};
use ferret_server::{LeaseTtl, RenewOutcome};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::error::V3Error;
use super::handle::{unexpected, V3};
use super::quota;

pub struct LeaseService(pub V3);

/// Keep-alive answers queued per stream before the stream stops reading
/// requests (a client that does not read its answers slows only itself).
const KEEPALIVE_QUEUE: usize = 16;

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let (md, _, mut r) = req.into_parts();
        self.0.check_quota(quota::LEASE_OVERHEAD_BYTES).await?;
        let caller = self.0.caller(&md).await?;
        // No id given: choose one, positive (etcd does the same).
        while r.id == 0 {
            r.id = (self.0.server.next_request_id() & ((1 << 63) - 1)) as i64;
        }
        let resp = match self
            .0
            .propose(
                InternalRaftRequest {
                    lease_grant: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::LeaseGrant(mut g) => {
                self.0.fill(&mut g.header);
                g
            }
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(resp))
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let (md, _, r) = req.into_parts();
        // Every key attached to the lease must be writable (checked at
        // apply, as etcd's `checkLeasePuts`).
        let caller = self.0.caller(&md).await?;
        let resp = match self
            .0
            .propose(
                InternalRaftRequest {
                    lease_revoke: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            V3Response::LeaseRevoke(mut g) => {
                self.0.fill(&mut g.header);
                g
            }
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(resp))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(KEEPALIVE_QUEUE);
        let v3 = self.0.clone();
        tokio::spawn(async move {
            loop {
                let r = match inbound.message().await {
                    Ok(Some(r)) => r,
                    // The client closed its side, or went away.
                    Ok(None) | Err(_) => return,
                };
                // The header is taken before renewing, so its revision is
                // never after a revocation that the renewal raced with.
                let mut header = Some(ResponseHeader::default());
                v3.fill(&mut header);
                let ttl = match v3.server.lease_renew(r.id).await {
                    Ok(RenewOutcome::Renewed(ttl)) => ttl,
                    // etcd answers an unknown or expired lease with TTL 0.
                    Ok(RenewOutcome::NotFound) => 0,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(V3Error::from(e)))).await;
                        return;
                    }
                };
                let resp = LeaseKeepAliveResponse {
                    header,
                    id: r.id,
                    ttl,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let r = req.into_inner();
        let mut resp = match self
            .0
            .server
            .lease_time_to_live(r.id, r.keys)
            .await
            .map_err(V3Error::from)?
        {
            Some(LeaseTtl {
                ttl,
                granted_ttl,
                keys,
            }) => LeaseTimeToLiveResponse {
                header: Some(ResponseHeader::default()),
                id: r.id,
                ttl,
                granted_ttl,
                keys,
            },
            // Not an error: TTL -1.
            None => LeaseTimeToLiveResponse {
                header: Some(ResponseHeader::default()),
                id: r.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            },
        };
        self.0.fill(&mut resp.header);
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        _req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let ids = self
            .0
            .server
            .mvcc()
            .lessor()
            .ids_by_expiry(std::time::Instant::now());
        let mut resp = LeaseLeasesResponse {
            header: Some(ResponseHeader::default()),
            leases: ids.into_iter().map(|id| LeaseStatus { id }).collect(),
        };
        self.0.fill(&mut resp.header);
        Ok(Response::new(resp))
    }
}
