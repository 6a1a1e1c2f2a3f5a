//! `etcdserverpb.Maintenance`: `Alarm` (listing and disarming alarms, so a
//! member that hit `--quota-backend-bytes` can be brought back once space
//! is freed), `Status` (version, database sizes, Raft position, leader,
//! alarms), `Defragment`, `Snapshot` (in etcd's format), `HashKV`, `Hash`
//! and `MoveLeader`: all of etcd 3.4's.

use std::pin::Pin;

use ferret_mvcc::{AuthError, V3Response};
use ferret_proto::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest,
    DefragmentResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    InternalRaftRequest, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest, SnapshotResponse,
    StatusRequest, StatusResponse,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::{unexpected, V3};
use crate::api::v2::info::ETCD_SERVER_VERSION;

pub struct MaintenanceService(pub V3);

/// etcd's blob size (`snapshotSendBufferSize`).
const SNAPSHOT_BLOB_BYTES: usize = 32 * 1024;

/// Sends a written snapshot as etcd does, hashing it on the way; stops
/// when the client is gone.
fn stream_snapshot(
    snap: ferret_mvcc::EtcdSnapshot,
    tx: tokio::sync::mpsc::Sender<Result<SnapshotResponse, Status>>,
) {
    use sha2::Digest;
    use std::io::Read;
    let ferret_mvcc::EtcdSnapshot {
        mut file,
        size,
        consistent_index,
    } = snap;
    let started = std::time::Instant::now();
    tracing::info!(
        total_bytes = size,
        consistent_index,
        "sending database snapshot to client"
    );
    let mut hash = sha2::Sha256::new();
    let mut sent = 0u64;
    while sent < size {
        let mut blob = vec![0u8; SNAPSHOT_BLOB_BYTES.min((size - sent) as usize)];
        if let Err(e) = file.read_exact(&mut blob) {
            let _ = tx.blocking_send(Err(V3Error::Maintenance(format!("snapshot: {e}")).into()));
            return;
        }
        hash.update(&blob);
        sent += blob.len() as u64;
        let resp = SnapshotResponse {
            header: None,
            remaining_bytes: size - sent,
            blob: blob.into(),
        };
        if tx.blocking_send(Ok(resp)).is_err() {
            tracing::info!(sent_bytes = sent, "snapshot client went away");
            return;
        }
    }
    let sha = hash.finalize();
    let last = SnapshotResponse {
        header: None,
        remaining_bytes: 0,
        blob: sha.to_vec().into(),
    };
    if tx.blocking_send(Ok(last)).is_ok() {
        tracing::info!(
            total_bytes = size,
            took_ms = started.elapsed().as_millis() as u64,
            "successfully sent database snapshot to client"
        );
    }
}

/// etcd's `authMaintenanceServer.isAuthenticated`: Defragment, Snapshot,
/// Hash and HashKV are for users with the root role when auth is on.
/// etcd returns the auth store's own error there, not its gRPC form, so
/// clients see `Unknown` and `auth: permission denied`.
async fn admin_only<T>(v3: &V3, req: &Request<T>) -> Result<(), Status> {
    let caller = match v3.caller(req.metadata()).await {
        Ok(c) => c,
        Err(V3Error::InvalidAuthToken) => {
            return Err(Status::unknown(AuthError::InvalidToken.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let who = caller.unwrap_or_default();
    v3.server
        .mvcc()
        .auth()
        .check_admin(&who)
        .map_err(|e| Status::unknown(e.to_string()))
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let (md, _, r) = req.into_parts();
        let caller = self.0.caller(&md).await?;
        match self
            .0
            .propose(
                InternalRaftRequest {
                    alarm: Some(r),
                    ..Default::default()
                },
                &caller,
            )
            .await?
        {
            // As etcd: the answer carries no header.
            V3Response::Alarm(a) => Ok(Response::new(a)),
            other => Err(unexpected(other)),
        }
    }

    /// etcd's `maintenanceServer.Status`, field for field.
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let v3 = &self.0;
        let (db_size, db_size_in_use) = v3.read(|m| m.db_sizes(), false)?;
        let position = v3.server.position();
        let leader = v3.server.leader_id().unwrap_or(0);
        let mut errors = Vec::new();
        if leader == 0 {
            errors.push("etcdserver: no leader".to_string());
        }
        let alarms = v3.server.mvcc().alarms().get(AlarmType::None as i32);
        // Go's `proto.CompactTextString` of each `AlarmMember`, as etcd
        // lists them (the trailing space included).
        errors.extend(alarms.iter().map(|a| {
            let name = AlarmType::try_from(a.alarm)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| a.alarm.to_string());
            format!("memberID:{} alarm:{name} ", a.member_id)
        }));
        Ok(Response::new(StatusResponse {
            header: v3.header(0),
            version: ETCD_SERVER_VERSION.to_string(),
            db_size: db_size as i64,
            leader,
            raft_index: position.commit_index,
            raft_term: position.term,
            raft_applied_index: v3.server.state().applied_index,
            errors,
            db_size_in_use: db_size_in_use as i64,
            is_learner: v3.server.is_learner(),
        }))
    }

    /// etcd's `maintenanceServer.Defragment`: answers (without a header,
    /// as etcd's) once this member's backend file is rewritten without
    /// its free pages. Unlike etcd's, the member serves reads and writes
    /// meanwhile (`ferret_mvcc::defrag`).
    async fn defragment(
        &self,
        req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        admin_only(&self.0, &req).await?;
        let server = self.0.server.clone();
        tracing::info!("starting defragment");
        let done = tokio::task::spawn_blocking(move || server.mvcc().defragment())
            .await
            .map_err(|e| V3Error::Internal(format!("defragment task: {e}")))?;
        match done {
            Ok(_) => {
                tracing::info!("finished defragment");
                Ok(Response::new(DefragmentResponse { header: None }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to defragment");
                Err(V3Error::from(e).into())
            }
        }
    }

    /// etcd's `maintenanceServer.Hash`: every table but the consistent
    /// index (see `ferret_mvcc::hash`); the header's revision is the one
    /// the hashed data had reached.
    async fn hash(&self, req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        admin_only(&self.0, &req).await?;
        let v3 = &self.0;
        let (hash, rev) = v3.read(|m| m.hash(), false)?;
        Ok(Response::new(HashResponse {
            header: v3.header(rev),
            hash,
        }))
    }

    /// etcd's `maintenanceServer.HashKV`: the hash of the key space at a
    /// revision, the same as etcd's for the same writes; the header's
    /// revision is the current one.
    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        admin_only(&self.0, &req).await?;
        let v3 = &self.0;
        let rev = req.into_inner().revision;
        let h = v3.read(|m| m.hash_kv(rev), false)?;
        Ok(Response::new(HashKvResponse {
            header: v3.header(h.current_rev),
            hash: h.hash,
            compact_revision: h.compact_rev,
        }))
    }

    type SnapshotStream = SnapshotStream;

    /// etcd's `maintenanceServer.Snapshot`: the backend in etcd's own
    /// format (a bbolt file, `ferret_mvcc::etcd_snapshot`), in blobs of
    /// 32 KiB with the bytes still to come, then the file's SHA-256 as the
    /// last blob with none to come, as etcd streams it. The file is
    /// written first (off the async runtime), then streamed; a client that
    /// goes away stops the stream.
    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        admin_only(&self.0, &req).await?;
        let server = self.0.server.clone();
        let snap = tokio::task::spawn_blocking(move || {
            let cluster = (
                "cluster".to_string(),
                vec![(
                    b"clusterVersion".to_vec(),
                    ferret_server::CLUSTER_VERSION.as_bytes().to_vec(),
                )],
            );
            server.mvcc().etcd_snapshot(vec![cluster])
        })
        .await
        .map_err(|e| V3Error::Internal(format!("snapshot task: {e}")))?
        .map_err(V3Error::from)?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::task::spawn_blocking(move || stream_snapshot(snap, tx));
        Ok(Response::new(
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)) as SnapshotStream,
        ))
    }

    /// etcd's `maintenanceServer.MoveLeader`: only the leader moves its
    /// leadership, to a voting member, and answers once the transferee
    /// leads (an answer without a header, as etcd's). etcd waits as long
    /// as the client's deadline allows; this waits at most the request
    /// timeout (`5 s + 2 × --election-timeout`, etcd's proposal bound).
    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        let server = &self.0.server;
        let target = req.into_inner().target_id;
        let (_, me) = server.ids();
        if server.leader_id() != Some(me) {
            return Err(V3Error::NotLeader.into());
        }
        // A learner cannot lead: etcd refuses it as it refuses a stranger.
        if !server
            .members()
            .iter()
            .any(|m| m.id == target && !m.is_learner)
        {
            return Err(V3Error::BadLeaderTransferee.into());
        }
        let start = std::time::Instant::now();
        server.transfer_leader(target).map_err(V3Error::from)?;
        while server.leader_id() != Some(target) {
            if start.elapsed() > server.request_timeout() {
                return Err(V3Error::LeaderTransferTimeout.into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tracing::info!(
            transferee = %ferret_server::ids::format_id(target),
            took_ms = start.elapsed().as_millis() as u64,
            "leadership transfer finished"
        );
        Ok(Response::new(MoveLeaderResponse { header: None }))
    }
}
