//! Clients with failover over the three members, done by hand as
//! kube-apiserver's etcd client does it through its balancer: every task
//! sticks to one member and moves to the next one when a call fails.
//!
//! One lazily connected channel per member, shared by every task (as one
//! `clientv3.Client` is shared by an apiserver's storage): a killed member
//! fails its calls at once (connection refused or reset), and the channel
//! reconnects by itself once the member is back.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use ferret_proto::etcdserverpb::{
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient, RangeRequest,
    RangeResponse,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::rng::Rng;

/// How long a unary call may take before its outcome is unknown: above
/// the servers' own request timeout (5 s + two election timeouts of 1 s),
/// so a slow write is answered "request timed out" rather than cut.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a task waits before trying the next member.
pub const FAILOVER_PAUSE: Duration = Duration::from_millis(100);

/// etcd's `compacted` error text (`mvcc.ErrCompacted` over gRPC).
const COMPACTED: &str = "required revision has been compacted";

/// One channel per member.
pub struct Pool {
    channels: Vec<Channel>,
}

impl Pool {
    pub fn new(addrs: &[SocketAddr]) -> Pool {
        let channels = addrs
            .iter()
            .map(|a| {
                Endpoint::from_shared(format!("http://{a}"))
                    .expect("endpoint URL")
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .connect_lazy()
            })
            .collect();
        Pool { channels }
    }

    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn kv(&self, m: usize) -> KvClient<Channel> {
        KvClient::new(self.channels[m].clone())
    }

    pub fn watch(&self, m: usize) -> WatchClient<Channel> {
        WatchClient::new(self.channels[m].clone())
    }

    pub fn lease(&self, m: usize) -> LeaseClient<Channel> {
        LeaseClient::new(self.channels[m].clone())
    }
}

/// The member a task talks to, and the failover rule.
#[derive(Clone, Copy, Debug)]
pub struct Cursor {
    pub member: usize,
    members: usize,
}

impl Cursor {
    pub fn new(first: usize, members: usize) -> Cursor {
        Cursor {
            member: first % members,
            members,
        }
    }

    /// Moves to the next member (after a failed call).
    pub fn fail_over(&mut self) {
        self.member = (self.member + 1) % self.members;
    }

    /// Moves to a random member (to spread a task's calls over the cluster).
    pub fn shuffle(&mut self, rng: &mut Rng) {
        self.member = rng.below(self.members as u64) as usize;
    }
}

/// Why a call gave no answer.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The server (or the transport) answered with an error status.
    Status(Status),
    /// Nothing within [`RPC_TIMEOUT`].
    Timeout,
}

impl CallError {
    /// `mvcc: required revision has been compacted`.
    pub fn is_compacted(&self) -> bool {
        matches!(self, CallError::Status(st) if st.message().contains(COMPACTED))
    }

    /// A definite answer that the request was not applied: the server's
    /// apply refused it (an unknown lease). Anything else leaves a write's
    /// outcome unknown.
    pub fn is_definite_refusal(&self) -> bool {
        matches!(self, CallError::Status(st) if st.message().contains("requested lease not found"))
    }

    /// A short text for counting errors by kind: the status code and the
    /// message up to its first colon-separated detail.
    pub fn kind(&self) -> String {
        match self {
            CallError::Timeout => "client timeout".into(),
            CallError::Status(st) => {
                let msg = st.message();
                // Transport errors carry addresses and OS details: keep the
                // first words only, so counts group them.
                let short: String = msg.chars().take(60).collect();
                format!("{:?}: {short}", st.code())
            }
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => write!(f, "no answer within {RPC_TIMEOUT:?}"),
            CallError::Status(st) => write!(f, "{:?}: {}", st.code(), st.message()),
        }
    }
}

/// A unary call bounded by [`RPC_TIMEOUT`].
pub async fn call<T>(
    fut: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(RPC_TIMEOUT, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(st)) => Err(CallError::Status(st)),
        Err(_) => Err(CallError::Timeout),
    }
}

/// A streaming request carrying kube-apiserver's `WithRequireLeader`
/// metadata: a member without a leader refuses (or ends) the stream
/// instead of leaving it silent.
pub fn require_leader<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("hasleader", MetadataValue::from_static("true"));
    req
}

/// A linearizable Range on the cursor's member.
pub async fn range(
    pool: &Pool,
    cur: &Cursor,
    req: RangeRequest,
) -> Result<RangeResponse, CallError> {
    call(pool.kv(cur.member).range(req)).await
}
