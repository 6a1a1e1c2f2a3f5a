//! The gRPC metrics of etcd's interceptors (go-grpc-prometheus and
//! etcd's byte counters), recorded on the way through the service:
//! a call is counted started when it arrives, and handled with its
//! status code when its response ends: at once for an answer without a
//! body (an error: the status is in the headers), else when the body's
//! trailers pass, or, if the client goes away first, as `Canceled`.
//! The response's message bytes count in
//! `etcd_network_client_grpc_sent_bytes_total`.
//!
//! [`METHODS`] is the table of served methods, in the order a lookup
//! tries them (the KV methods first: they are most of the traffic).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use super::limit::Framing;
use ferret_metrics::grpc::{GrpcMethod, GrpcMetrics};
use http_body::{Body, Frame, SizeHint};

const fn m(path: &'static str, kind: &'static str, preregistered: bool) -> GrpcMethod {
    GrpcMethod {
        path,
        kind,
        preregistered,
    }
}

/// Every served method. `preregistered`: etcd 3.4's interceptor lists it
/// at zero from the start (the services of `etcdserverpb`); etcd serves
/// Lock and Election outside it, so they appear once called.
pub static METHODS: [GrpcMethod; 46] = [
    m("/etcdserverpb.KV/Range", "unary", true),
    m("/etcdserverpb.KV/Put", "unary", true),
    m("/etcdserverpb.KV/Txn", "unary", true),
    m("/etcdserverpb.KV/DeleteRange", "unary", true),
    m("/etcdserverpb.KV/Compact", "unary", true),
    m("/etcdserverpb.Lease/LeaseKeepAlive", "bidi_stream", true),
    m("/etcdserverpb.Watch/Watch", "bidi_stream", true),
    m("/etcdserverpb.Lease/LeaseGrant", "unary", true),
    m("/etcdserverpb.Lease/LeaseRevoke", "unary", true),
    m("/etcdserverpb.Lease/LeaseTimeToLive", "unary", true),
    m("/etcdserverpb.Lease/LeaseLeases", "unary", true),
    m("/etcdserverpb.Maintenance/Alarm", "unary", true),
    m("/etcdserverpb.Maintenance/Status", "unary", true),
    m("/etcdserverpb.Maintenance/Defragment", "unary", true),
    m("/etcdserverpb.Maintenance/Hash", "unary", true),
    m("/etcdserverpb.Maintenance/HashKV", "unary", true),
    m("/etcdserverpb.Maintenance/Snapshot", "server_stream", true),
    m("/etcdserverpb.Maintenance/MoveLeader", "unary", true),
    m("/etcdserverpb.Cluster/MemberAdd", "unary", true),
    m("/etcdserverpb.Cluster/MemberRemove", "unary", true),
    m("/etcdserverpb.Cluster/MemberUpdate", "unary", true),
    m("/etcdserverpb.Cluster/MemberList", "unary", true),
    m("/etcdserverpb.Cluster/MemberPromote", "unary", true),
    m("/etcdserverpb.Auth/AuthEnable", "unary", true),
    m("/etcdserverpb.Auth/AuthDisable", "unary", true),
    m("/etcdserverpb.Auth/Authenticate", "unary", true),
    m("/etcdserverpb.Auth/UserAdd", "unary", true),
    m("/etcdserverpb.Auth/UserGet", "unary", true),
    m("/etcdserverpb.Auth/UserList", "unary", true),
    m("/etcdserverpb.Auth/UserDelete", "unary", true),
    m("/etcdserverpb.Auth/UserChangePassword", "unary", true),
    m("/etcdserverpb.Auth/UserGrantRole", "unary", true),
    m("/etcdserverpb.Auth/UserRevokeRole", "unary", true),
    m("/etcdserverpb.Auth/RoleAdd", "unary", true),
    m("/etcdserverpb.Auth/RoleGet", "unary", true),
    m("/etcdserverpb.Auth/RoleList", "unary", true),
    m("/etcdserverpb.Auth/RoleDelete", "unary", true),
    m("/etcdserverpb.Auth/RoleGrantPermission", "unary", true),
    m("/etcdserverpb.Auth/RoleRevokePermission", "unary", true),
    m("/v3lockpb.Lock/Lock", "unary", false),
    m("/v3lockpb.Lock/Unlock", "unary", false),
    m("/v3electionpb.Election/Campaign", "unary", false),
    m("/v3electionpb.Election/Proclaim", "unary", false),
    m("/v3electionpb.Election/Leader", "unary", false),
    m("/v3electionpb.Election/Observe", "server_stream", false),
    m("/v3electionpb.Election/Resign", "unary", false),
];

/// gRPC's `Canceled`: a call whose client went away before its end.
const CANCELED: usize = 1;
/// gRPC's `Unknown`: a body that ended without a status.
const UNKNOWN: usize = 2;

/// One call being served: what recording its end needs.
pub struct Call {
    metrics: &'static GrpcMetrics,
    method: usize,
    /// Set with `--metrics extensive` (the latency histogram).
    started: Option<Instant>,
}

impl Call {
    /// Counts a call of the method at `index` as started.
    pub fn start(metrics: &'static GrpcMetrics, method: usize) -> Call {
        metrics.started(method);
        Call {
            metrics,
            method,
            started: metrics.extensive().then(Instant::now),
        }
    }

    fn handled(&self, code: usize) {
        self.metrics
            .handled(self.method, code, self.started.map(|s| s.elapsed()));
    }

    /// The call's response: counted handled now if its status is in its
    /// headers, else once its body ends.
    pub fn respond(
        self,
        resp: http::Response<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        if let Some(code) = status(resp.headers()) {
            self.handled(code);
            return resp;
        }
        resp.map(|body| {
            tonic::body::Body::new(Metered {
                inner: body,
                call: Some(self),
                framing: Framing::default(),
            })
        })
    }
}

/// The `grpc-status` of a header or trailer map, if it has one.
fn status(h: &http::HeaderMap) -> Option<usize> {
    let v = h.get("grpc-status")?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(UNKNOWN),
    )
}

/// A response body that records its call's end and counts its message
/// bytes.
struct Metered {
    inner: tonic::body::Body,
    /// Until the call is counted handled.
    call: Option<Call>,
    /// The gRPC framing across data frames.
    framing: Framing,
}

impl Metered {
    /// Counts the message bytes `data` completes or continues.
    fn count(&mut self, data: &[u8]) {
        let Ok(bytes) = self.framing.walk(data, |_| Ok::<(), Infallible>(()));
        if bytes > 0 {
            ferret_metrics::get().grpc_sent_bytes.inc_by(bytes);
        }
    }

    fn end(&mut self, code: usize) {
        if let Some(call) = self.call.take() {
            call.handled(code);
        }
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    self.count(&data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = status(trailers).unwrap_or(UNKNOWN);
                    self.end(code);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let code = e.code() as usize;
                self.end(code);
            }
            Poll::Ready(None) => self.end(UNKNOWN),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // Dropped before its status went out: the client went away.
        self.end(CANCELED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_listed_once() {
        let mut paths: Vec<&str> = METHODS.iter().map(|m| m.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), METHODS.len());
    }
}
