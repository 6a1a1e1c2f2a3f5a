//! What every v3 service holds: the server, the settings from etcd's
//! flags, and the steps they share (headers, proposing, local reads, the
//! quota check).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferret_mvcc::{Mvcc, MvccError, V3Response};
use ferret_proto::etcdserverpb::{
    alarm_request, AlarmRequest, AlarmType, InternalRaftRequest, ResponseHeader,
};
use ferret_server::{Applied, Server};
use tonic::Status;

use super::error::V3Error;

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
        (h.cluster_id, h.member_id) = self.server.ids();
        h.raft_term = self.server.position().term;
        if h.revision == 0 {
            h.revision = self.server.mvcc().current_rev();
        }
    }

    /// A header at exactly `revision` (etcd's `newResponseHeader`).
    pub fn header_exact(&self, revision: i64) -> Option<ResponseHeader> {
        let (cluster_id, member_id) = self.server.ids();
        Some(ResponseHeader {
            cluster_id,
            member_id,
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

    /// Proposes a v3 request and waits for what applying it gave. The
    /// request is queued before the future is first polled, and the future
    /// does not hold it (see `Server::propose`).
    pub fn propose(
        &self,
        req: InternalRaftRequest,
    ) -> impl Future<Output = Result<V3Response, V3Error>> + Send + 'static {
        let applied = self.server.propose_v3(req);
        async move {
            match applied.await? {
                Applied::V3(r) => r.map_err(V3Error::from),
                other => {
                    tracing::error!(outcome = ?other, "a v3 proposal was applied as something else");
                    Err(V3Error::Internal("unexpected outcome of a proposal".into()))
                }
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
            member_id: self.server.ids().1,
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

/// The log answered a request with another request's response: a bug.
pub(super) fn unexpected(r: V3Response) -> Status {
    tracing::error!(response = ?r, "a v3 proposal was answered with the wrong response");
    V3Error::Internal("unexpected response to a proposal".into()).into()
}

/// How often a watcher that asked for progress notifications gets one
/// when it had no events (etcd: 10 minutes, plus up to 10% jitter, which
/// ferretcd leaves out so tests can rely on the interval;
/// `--experimental-watch-progress-notify-interval`).
pub fn progress_interval(configured: Option<Duration>) -> Duration {
    configured.unwrap_or(Duration::from_secs(600))
}
