//! The gRPC service of a member: the served services behind a fallback
//! that answers `UNIMPLEMENTED`, with a message, for every other path,
//! and the request message limit enforced as grpc-go enforces it.

use std::convert::Infallible;
use std::task::{Context, Poll};

use ferret_proto::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use ferret_proto::v3electionpb::election_server::ElectionServer;
use ferret_proto::v3lockpb::lock_server::LockServer;
use hyper::body::Incoming;
use tonic::body::Body;
use tonic::Status;

use super::auth::AuthService;
use super::cluster::ClusterService;
use super::election::ElectionService;
use super::error::V3Error;
use super::handle::{GRPC_OVERHEAD_BYTES, V3};
use super::kv::KvService;
use super::lease::LeaseService;
use super::limit::Frames;
use super::lock::LockService;
use super::maintenance::MaintenanceService;
use super::watch::WatchService;

/// The gRPC services of a member, behind the fallback that answers
/// `UNIMPLEMENTED` for everything else.
pub fn service(v3: V3) -> Grpc {
    let max_in = v3.cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    // The message limit is enforced on the way in (`limit::Frames`, with
    // grpc-go's status and text); tonic's own check only backs it up.
    Grpc {
        kv: KvServer::new(KvService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        watch: WatchServer::new(WatchService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        maintenance: MaintenanceServer::new(MaintenanceService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        cluster: ClusterServer::new(ClusterService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        lease: LeaseServer::new(LeaseService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        lock: LockServer::new(LockService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        election: ElectionServer::new(ElectionService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        auth: AuthServer::new(AuthService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
        server: v3.server,
        max_message_bytes: max_in,
    }
}

/// Served paths go to their service by the path's service prefix (a
/// comparison of a few bytes: a router's path matching, its parameters
/// and its extra future cost the put path a few percent of the leader's
/// CPU); everything else is answered `UNIMPLEMENTED`, with a message.
#[derive(Clone)]
pub struct Grpc {
    kv: KvServer<KvService>,
    watch: WatchServer<WatchService>,
    maintenance: MaintenanceServer<MaintenanceService>,
    lease: LeaseServer<LeaseService>,
    cluster: ClusterServer<ClusterService>,
    lock: LockServer<LockService>,
    election: ElectionServer<ElectionService>,
    auth: AuthServer<AuthService>,
    /// To ask whether this member is a learner.
    server: ferret_server::Server,
    /// The largest request message accepted.
    max_message_bytes: usize,
}

impl tower::Service<http::Request<Incoming>> for Grpc {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>,
    >;

    /// Always ready: tonic's generated services are.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        let max = self.max_message_bytes;
        let req = req.map(|b| Frames::new(b, max));
        let path = req.uri().path();
        // etcd's interceptors: a learner serves only Status and
        // serializable Ranges (the KV service checks the latter).
        if self.server.is_learner()
            && path != "/etcdserverpb.Maintenance/Status"
            && path != "/etcdserverpb.KV/Range"
        {
            return answer_without_reading(req, V3Error::NotSupportedForLearner);
        }
        // The service part of a served method's path, with both slashes.
        let service = match path.rfind('/') {
            Some(end) if is_served(path) => &path[..=end],
            _ => "",
        };
        match service {
            "/etcdserverpb.KV/" => return self.kv.call(req),
            "/etcdserverpb.Watch/" => return self.watch.call(req),
            "/etcdserverpb.Lease/" => return self.lease.call(req),
            "/etcdserverpb.Maintenance/" => return self.maintenance.call(req),
            "/etcdserverpb.Cluster/" => return self.cluster.call(req),
            "/v3lockpb.Lock/" => return self.lock.call(req),
            "/v3electionpb.Election/" => return self.election.call(req),
            "/etcdserverpb.Auth/" => return self.auth.call(req),
            _ => {}
        }
        let method = path.trim_start_matches('/');
        let msg = format!("unknown service or method {method}");
        answer_without_reading(req, V3Error::Unimplemented(msg))
    }
}

/// Answers a call with `e` without serving it.
fn answer_without_reading(
    req: http::Request<Frames<Incoming>>,
    e: V3Error,
) -> <Grpc as tower::Service<http::Request<Incoming>>>::Future {
    Box::pin(async move {
        // Read the request to its end first: answering a stream the
        // client is still sending on makes HTTP/2 reset it, which gRPC
        // clients report as a protocol error instead of this status.
        use http_body_util::BodyExt;
        let _ = req.into_body().collect().await;
        Ok(Status::from(e).into_http())
    })
}

fn is_served(path: &str) -> bool {
    const METHODS: &[&str] = &[
        "/etcdserverpb.KV/Range",
        "/etcdserverpb.KV/Put",
        "/etcdserverpb.KV/DeleteRange",
        "/etcdserverpb.KV/Txn",
        "/etcdserverpb.KV/Compact",
        "/etcdserverpb.Watch/Watch",
        "/etcdserverpb.Lease/LeaseGrant",
        "/etcdserverpb.Lease/LeaseRevoke",
        "/etcdserverpb.Lease/LeaseKeepAlive",
        "/etcdserverpb.Lease/LeaseTimeToLive",
        "/etcdserverpb.Lease/LeaseLeases",
        "/etcdserverpb.Maintenance/Alarm",
        "/etcdserverpb.Maintenance/Status",
        "/etcdserverpb.Maintenance/Defragment",
        "/etcdserverpb.Maintenance/Hash",
        "/etcdserverpb.Maintenance/HashKV",
        "/etcdserverpb.Maintenance/Snapshot",
        "/etcdserverpb.Maintenance/MoveLeader",
        "/etcdserverpb.Cluster/MemberAdd",
        "/etcdserverpb.Cluster/MemberRemove",
        "/etcdserverpb.Cluster/MemberUpdate",
        "/etcdserverpb.Cluster/MemberList",
        "/etcdserverpb.Cluster/MemberPromote",
        "/v3lockpb.Lock/Lock",
        "/v3lockpb.Lock/Unlock",
        "/v3electionpb.Election/Campaign",
        "/v3electionpb.Election/Proclaim",
        "/v3electionpb.Election/Leader",
        "/v3electionpb.Election/Observe",
        "/v3electionpb.Election/Resign",
        "/etcdserverpb.Auth/AuthEnable",
        "/etcdserverpb.Auth/AuthDisable",
        "/etcdserverpb.Auth/Authenticate",
        "/etcdserverpb.Auth/UserAdd",
        "/etcdserverpb.Auth/UserGet",
        "/etcdserverpb.Auth/UserList",
        "/etcdserverpb.Auth/UserDelete",
        "/etcdserverpb.Auth/UserChangePassword",
        "/etcdserverpb.Auth/UserGrantRole",
        "/etcdserverpb.Auth/UserRevokeRole",
        "/etcdserverpb.Auth/RoleAdd",
        "/etcdserverpb.Auth/RoleGet",
        "/etcdserverpb.Auth/RoleList",
        "/etcdserverpb.Auth/RoleDelete",
        "/etcdserverpb.Auth/RoleGrantPermission",
        "/etcdserverpb.Auth/RoleRevokePermission",
    ];
    METHODS.contains(&path)
}
