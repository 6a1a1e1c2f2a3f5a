//! `v3electionpb.Election`: Campaign, Proclaim, Leader, Observe and
//! Resign, as etcd 3.4 serves them (its `v3election` package over its
//! client's `concurrency.Election`).
//!
//! A candidate's key is `<name>/<lease in hex>`, put with its lease; the
//! leader is the key of `<name>/` created first. Campaign waits until every
//! older candidate's key is gone; Proclaim and Resign act only while the
//! leader key still has the create revision Campaign answered with.
//! etcd's quirks are kept: a Proclaim or Resign whose leader key names no
//! lease grants a session lease first, as etcd's session does.

use std::pin::Pin;

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    request_op, DeleteRangeRequest, RequestOp, ResponseHeader, TxnRequest,
};
use ferret_proto::mvccpb::event::EventType;
use ferret_proto::v3electionpb::{
    election_server::Election, CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest,
    LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest, ResignResponse,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::concurrency::{
    created_at, first_created, op_get, op_put, prefix_end, prefix_of, range, range_kvs,
    session_key, session_lease, txn, wait_deletes, CleanupOnDrop, Watching,
};
use super::error::V3Error;
use super::handle::V3;

pub struct ElectionService(pub V3);

/// Leader responses queued for an observer.
const OBSERVE_QUEUE: usize = 16;

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

/// etcd's `Election.Proclaim`: a new value for the leader key, if it is
/// still the one created at `rev`.
async fn proclaim(
    v3: &V3,
    key: &Bytes,
    rev: i64,
    lease: i64,
    value: Bytes,
) -> Result<Option<ResponseHeader>, Status> {
    let resp = txn(
        v3,
        TxnRequest {
            compare: vec![created_at(key, rev)],
            success: vec![op_put(key, value, lease)],
            failure: vec![],
        },
    )
    .await?;
    if !resp.succeeded {
        return Err(V3Error::ElectionNotLeader.into());
    }
    Ok(resp.header)
}

/// etcd's `Election.Resign`: deletes the leader key if it is still the
/// one created at `rev`.
async fn resign(v3: &V3, key: &Bytes, rev: i64) -> Result<Option<ResponseHeader>, Status> {
    let resp = txn(
        v3,
        TxnRequest {
            compare: vec![created_at(key, rev)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(
                    DeleteRangeRequest {
                        key: key.clone(),
                        ..Default::default()
                    },
                )),
            }],
            failure: vec![],
        },
    )
    .await?;
    Ok(resp.header)
}

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let v3 = &self.0.on_behalf_of(req.metadata());
        let r = req.into_inner();
        let lease = session_lease(v3, r.lease).await?;
        let prefix = prefix_of(&r.name);
        let key = session_key(&prefix, lease);
        let resp = txn(
            v3,
            TxnRequest {
                compare: vec![created_at(&key, 0)],
                success: vec![op_put(&key, r.value.clone(), lease)],
                failure: vec![op_get(&key)],
            },
        )
        .await?;
        let mut rev = resp.header.as_ref().map_or(0, |h| h.revision);
        if !resp.succeeded {
            if let Some(kv) = range_kvs(&resp.responses, 0)?.first() {
                rev = kv.create_revision;
                if kv.value != r.value {
                    if let Err(e) = proclaim(v3, &key, rev, lease, r.value.clone()).await {
                        let _ = resign(v3, &key, rev).await;
                        return Err(e);
                    }
                }
            }
        }
        // A client that goes away while waiting resigns; a wait that
        // fails otherwise leaves the key, as etcd leaves it.
        let leave = {
            let (v3, key) = (v3.clone(), key.clone());
            CleanupOnDrop::new(async move {
                let _ = resign(&v3, &key, rev).await;
            })
        };
        let waited = wait_deletes(v3, &prefix, rev - 1).await;
        leave.disarm();
        waited?;
        Ok(Response::new(CampaignResponse {
            header: resp.header,
            leader: Some(LeaderKey {
                name: r.name,
                key,
                rev,
                lease,
            }),
        }))
    }

    async fn proclaim(
        &self,
        req: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let v3 = self.0.on_behalf_of(req.metadata());
        let r = req.into_inner();
        let leader = r.leader.ok_or(V3Error::MissingLeaderKey)?;
        let lease = session_lease(&v3, leader.lease).await?;
        let header = proclaim(&v3, &leader.key, leader.rev, lease, r.value).await?;
        Ok(Response::new(ProclaimResponse { header }))
    }

    async fn leader(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let v3 = self.0.on_behalf_of(req.metadata());
        let r = req.into_inner();
        let resp = range(&v3, first_created(&prefix_of(&r.name))).await?;
        let kv = resp
            .kvs
            .into_iter()
            .next()
            .ok_or(V3Error::ElectionNoLeader)?;
        Ok(Response::new(LeaderResponse {
            header: resp.header,
            kv: Some(kv),
        }))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        req: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let v3 = self.0.on_behalf_of(req.metadata());
        let prefix = prefix_of(&req.into_inner().name);
        let (tx, rx) = mpsc::channel(OBSERVE_QUEUE);
        tokio::spawn(async move {
            tokio::select! {
                _ = observe(&v3, &prefix, &tx) => {}
                _ = tx.closed() => {}
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn resign(
        &self,
        req: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let v3 = self.0.on_behalf_of(req.metadata());
        let r = req.into_inner();
        let leader = r.leader.ok_or(V3Error::MissingLeaderKey)?;
        session_lease(&v3, leader.lease).await?;
        let header = resign(&v3, &leader.key, leader.rev).await?;
        Ok(Response::new(ResignResponse { header }))
    }
}

/// etcd's `Election.observe`: the current leader, then each new value of
/// its key until it is deleted, then the next leader (waiting for one if
/// there is none). Returns when a read or a watch fails or the observer
/// went away; etcd then ends the stream without an error.
async fn observe(v3: &V3, prefix: &[u8], tx: &mpsc::Sender<Result<LeaderResponse, Status>>) {
    loop {
        let Ok(resp) = range(v3, first_created(prefix)).await else {
            return;
        };
        let (header, kv) = match resp.kvs.into_iter().next() {
            Some(kv) => (resp.header, kv),
            None => {
                // Wait for the first put under the prefix.
                let from = resp.header.as_ref().map_or(0, |h| h.revision);
                let mut w =
                    Watching::start(v3, Bytes::copy_from_slice(prefix), prefix_end(prefix), from);
                loop {
                    let Ok((_, events)) = w.next_batch().await else {
                        return;
                    };
                    let put = events
                        .into_iter()
                        .find(|e| e.r#type == EventType::Put as i32)
                        .and_then(|e| e.kv);
                    if let Some(kv) = put {
                        break (v3.header_exact(kv.mod_revision), kv);
                    }
                }
            }
        };
        let next = header.as_ref().map_or(0, |h| h.revision) + 1;
        let key = kv.key.clone();
        let sent = LeaderResponse {
            header,
            kv: Some(kv),
        };
        if tx.send(Ok(sent)).await.is_err() {
            return;
        }
        // Every new value of the leader key, until it is deleted.
        let mut w = Watching::start(v3, key, Bytes::new(), next);
        'leader: loop {
            let Ok((rev, events)) = w.next_batch().await else {
                return;
            };
            for ev in events {
                if ev.r#type == EventType::Delete as i32 {
                    break 'leader;
                }
                let resp = LeaderResponse {
                    header: v3.header_exact(rev),
                    kv: ev.kv,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        }
    }
}
