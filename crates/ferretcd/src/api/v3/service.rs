//! The gRPC service of a member: the served services behind a fallback
//! that answers `UNIMPLEMENTED`, with a message, for every other path,
//! and the request message limit enforced as grpc-go enforces it.

use std::convert::Infallible;
use std::pin::Pin;
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
use super::metered::{Call, METHODS};
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

/// What a served method's tonic service returns.
type Served =
    Pin<Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// A call's response on its way, and the call's metrics
/// ([`super::metered`]) when it is a served method.
pub struct Answer {
    inner: Served,
    call: Option<Call>,
}

impl std::future::Future for Answer {
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Poll::Ready(Ok(resp)) = self.inner.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(match self.call.take() {
            Some(call) => call.respond(resp),
            None => resp,
        }))
    }
}

impl tower::Service<http::Request<Incoming>> for Grpc {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

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
        // The served method, and the service part of its path, with
        // both slashes.
        let served = METHODS.iter().position(|m| m.path == path);
        let service = match path.rfind('/') {
            Some(end) if served.is_some() => &path[..=end],
            _ => "",
        };
        // Counted from here on, as etcd's interceptors count the calls
        // they pass on (not a learner's refusals).
        let call = served
            .zip(ferret_metrics::grpc::get())
            .map(|(i, metrics)| Call::start(metrics, i));
        let inner = match service {
            "/etcdserverpb.KV/" => self.kv.call(req),
            "/etcdserverpb.Watch/" => self.watch.call(req),
            "/etcdserverpb.Lease/" => self.lease.call(req),
            "/etcdserverpb.Maintenance/" => self.maintenance.call(req),
            "/etcdserverpb.Cluster/" => self.cluster.call(req),
            "/v3lockpb.Lock/" => self.lock.call(req),
            "/v3electionpb.Election/" => self.election.call(req),
            "/etcdserverpb.Auth/" => self.auth.call(req),
            _ => {
                let method = path.trim_start_matches('/');
                let msg = format!("unknown service or method {method}");
                return answer_without_reading(req, V3Error::Unimplemented(msg));
            }
        };
        Answer { inner, call }
    }
}

/// Answers a call with `e` without serving it.
fn answer_without_reading(
    req: http::Request<Frames<Incoming>>,
    e: V3Error,
) -> <Grpc as tower::Service<http::Request<Incoming>>>::Future {
    let inner = Box::pin(async move {
        // Read the request to its end first: answering a stream the
        // client is still sending on makes HTTP/2 reset it, which gRPC
        // clients report as a protocol error instead of this status.
        use http_body_util::BodyExt;
        let _ = req.into_body().collect().await;
        Ok(Status::from(e).into_http())
    });
    Answer { inner, call: None }
}
