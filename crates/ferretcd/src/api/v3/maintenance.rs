//! `etcdserverpb.Maintenance`: only `Alarm` so far (listing and disarming
//! alarms, so a member that hit `--quota-backend-bytes` can be brought
//! back once space is freed). The other methods come with the Cluster,
//! Maintenance and Auth work; until then they answer `UNIMPLEMENTED`.

use std::pin::Pin;

use ferret_mvcc::V3Response;
use ferret_proto::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, DefragmentRequest,
    DefragmentResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    InternalRaftRequest, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest, SnapshotResponse,
    StatusRequest, StatusResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::{unexpected, V3};

pub struct MaintenanceService(pub V3);

fn not_yet(method: &str) -> Status {
    V3Error::Unimplemented(format!(
        "ferretcd does not serve etcdserverpb.Maintenance/{method} yet (it comes with the Cluster, Maintenance and Auth work)"
    ))
    .into()
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let r = req.into_inner();
        match self
            .0
            .propose(InternalRaftRequest {
                alarm: Some(r),
                ..Default::default()
            })
            .await?
        {
            // As etcd: the answer carries no header.
            V3Response::Alarm(a) => Ok(Response::new(a)),
            other => Err(unexpected(other)),
        }
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Err(not_yet("Status"))
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(not_yet("Defragment"))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(not_yet("Hash"))
    }

    async fn hash_kv(&self, _: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        Err(not_yet("HashKV"))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(not_yet("Snapshot"))
    }

    async fn move_leader(
        &self,
        _: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(not_yet("MoveLeader"))
    }
}
