//! etcd's v3 API over gRPC: one module per service.
//!
//! - [`kv`]: `etcdserverpb.KV`; [`watch`]: `etcdserverpb.Watch`;
//!   [`lease`]: `etcdserverpb.Lease`.
//! - [`validate`]: etcd's request checks; [`quota`]: write costs against
//!   `--quota-backend-bytes`; [`error`]: the one table from errors to
//!   gRPC statuses.
//! - Services ferretcd does not serve yet (Cluster, Maintenance, Auth,
//!   Lock, Election) answer `UNIMPLEMENTED` with a message naming the
//!   method, as does any unknown path: never a dropped connection.

pub mod error;
pub mod kv;
pub mod lease;
mod limit;
pub mod quota;
pub mod validate;
pub mod watch;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ferret_mvcc::{Mvcc, MvccError, V3Response};
use ferret_proto::etcdserverpb::{
    alarm_request, kv_server::KvServer, lease_server::LeaseServer, watch_server::WatchServer,
    AlarmRequest, AlarmType, InternalRaftRequest, ResponseHeader,
};
use ferret_server::{Applied, Server};
use hyper::body::Incoming;
use tonic::body::Body;
use tonic::Status;

use error::V3Error;

/// What the v3 services need to know beyond the server.
#[derive(Debug, Clone)]
pub struct V3Config {
    /// `--max-txn-ops`.
    pub max_txn_ops: i64,
    /// `--max-request-bytes`: the largest encoded proposal; the gRPC layer
    /// accepts messages up to this plus 512 KiB (etcd's
    /// `grpcOverheadBytes`).
    pub max_request_bytes: usize,
    /// `--quota-backend-bytes` resolved (0 → 2 GiB); `None`: no quota.
    pub quota_bytes: Option<u64>,
    /// `--experimental-watch-progress-notify-interval`.
    pub progress_interval: Duration,
}

/// etcd's `grpcOverheadBytes`.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The handle every v3 service holds.
#[derive(Clone)]
pub struct V3 {
    pub server: Server,
    pub cfg: Arc<V3Config>,
}

impl V3 {
    /// etcd's `header.fill`: cluster, member and term, and the current
    /// revision unless the response set one.
    pub fn fill(&self, h: &mut Option<ResponseHeader>) {
        let h = h.get_or_insert_with(ResponseHeader::default);
        let m = self.server.membership();
        h.cluster_id = m.cluster_id;
        h.member_id = m.member_id;
        h.raft_term = self.server.position().term;
        if h.revision == 0 {
            h.revision = self.server.mvcc().current_rev();
        }
    }

    /// A header at exactly `revision` (etcd's `newResponseHeader`).
    pub fn header_exact(&self, revision: i64) -> Option<ResponseHeader> {
        let m = self.server.membership();
        Some(ResponseHeader {
            cluster_id: m.cluster_id,
            member_id: m.member_id,
            revision,
            raft_term: self.server.position().term,
        })
    }

    /// A filled header at `revision` (0: the current one).
    pub fn header(&self, revision: i64) -> Option<ResponseHeader> {
        let mut h = Some(ResponseHeader {
            revision,
            ..Default::default()
        });
        self.fill(&mut h);
        h
    }

    /// Proposes a v3 request and waits for what applying it gave.
    pub async fn propose(&self, req: InternalRaftRequest) -> Result<V3Response, V3Error> {
        match self.server.propose_v3(req).await? {
            Applied::V3(r) => r.map_err(V3Error::from),
            other => {
                tracing::error!(outcome = ?other, "a v3 proposal was applied as something else");
                Err(V3Error::Internal("unexpected outcome of a proposal".into()))
            }
        }
    }

    /// Runs a local read. A read that may touch many keys runs where it
    /// may block its thread without holding up other requests.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Mvcc) -> Result<T, MvccError>,
        small: bool,
    ) -> Result<T, V3Error> {
        let m = self.server.mvcc();
        if small {
            f(m).map_err(V3Error::from)
        } else {
            tokio::task::block_in_place(|| f(m)).map_err(V3Error::from)
        }
    }

    /// etcd's `quotaAlarmer.check`: a write that would take the database
    /// past the quota raises the NOSPACE alarm and is refused.
    pub async fn check_quota(&self, cost: u64) -> Result<(), V3Error> {
        let Some(quota) = self.cfg.quota_bytes else {
            return Ok(());
        };
        let size = self.server.mvcc().db_size();
        if size + cost < quota {
            return Ok(());
        }
        let alarm = AlarmRequest {
            action: alarm_request::AlarmAction::Activate as i32,
            member_id: self.server.membership().member_id,
            alarm: AlarmType::Nospace as i32,
        };
        // Raising the alarm is best effort, as in etcd; the write is
        // refused either way.
        let _ = self
            .server
            .propose_v3(InternalRaftRequest {
                alarm: Some(alarm),
                ..Default::default()
            })
            .await;
        Err(V3Error::NoSpace)
    }
}

/// The gRPC services of a member, behind the fallback that answers
/// `UNIMPLEMENTED` for everything else.
pub fn service(v3: V3) -> Grpc {
    let max_in = v3.cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
    // The message limit is enforced on the way in (`limit::Frames`, with
    // grpc-go's status and text); tonic's own check only backs it up.
    let routes = tonic::service::Routes::new(
        KvServer::new(kv::KvService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        WatchServer::new(watch::WatchService(v3.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        LeaseServer::new(lease::LeaseService(v3))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX),
    );
    Grpc {
        routes,
        max_message_bytes: max_in,
    }
}

/// Services of etcd's API that ferretcd does not serve yet, by path prefix.
const NOT_YET: &[&str] = &[
    "/etcdserverpb.Cluster/",
    "/etcdserverpb.Maintenance/",
    "/etcdserverpb.Auth/",
    "/v3lockpb.Lock/",
    "/v3electionpb.Election/",
];

/// Served paths: the routes; everything else: `UNIMPLEMENTED`, with a
/// message.
#[derive(Clone)]
pub struct Grpc {
    routes: tonic::service::Routes,
    /// The largest request message accepted.
    max_message_bytes: usize,
}

impl tower::Service<http::Request<Incoming>> for Grpc {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::Response<Body>, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<Body>>::poll_ready(&mut self.routes, cx)
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        let max = self.max_message_bytes;
        let req = req.map(|b| Body::new(limit::Frames::new(b, max)));
        let path = req.uri().path().to_string();
        let method = path.trim_start_matches('/');
        let refusal = if NOT_YET.iter().any(|p| path.starts_with(p)) {
            Some(format!(
                "ferretcd does not serve {method} yet (the Cluster, Maintenance, Auth, Lock and Election services come in a later release)"
            ))
        } else if !is_served(&path) {
            Some(format!("unknown service or method {method}"))
        } else {
            None
        };
        if let Some(msg) = refusal {
            return Box::pin(async move {
                // Read the request to its end first: answering a stream
                // the client is still sending on makes HTTP/2 reset it,
                // which gRPC clients report as a protocol error instead of
                // this status.
                use http_body_util::BodyExt;
                let _ = req.into_body().collect().await;
                Ok(Status::from(V3Error::Unimplemented(msg)).into_http())
            });
        }
        let fut = tower::Service::call(&mut self.routes, req);
        Box::pin(fut)
    }
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
    ];
    METHODS.contains(&path)
}

/// Progress notifications every `interval` (etcd adds up to 10% jitter;
/// ferretcd does not, so tests can rely on the interval).
pub fn progress_interval(configured: Option<Duration>) -> Duration {
    watch::progress_interval(configured)
}
