//! What every v3 service holds: the server, the settings from etcd's
//! flags, and the steps they share (headers, proposing, local reads, the
//! quota check).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferret_mvcc::{Access, AuthError, AuthInfo, Mvcc, MvccError, V3Response};
use ferret_proto::etcdserverpb::{
    alarm_request, AlarmRequest, AlarmType, InternalRaftRequest, RequestHeader, ResponseHeader,
};
use ferret_server::{Applied, Server};
use tonic::Status;

use super::error::V3Error;
use super::token::{simple_token_index, TokenProvider};

/// Who sent a request: the user and auth revision of its token, if it
/// sent one (etcd's `AuthInfoFromCtx`; `None` is etcd's nil `AuthInfo`).
pub type Caller = Option<AuthInfo>;

/// What the v3 services need to know beyond the server.
#[derive(Debug)]
pub struct V3Config {
    /// `--auth-token`: how v3 auth tokens are made and read.
    pub tokens: TokenProvider,
    /// `--bcrypt-cost` (4 to 31; etcd's default 10).
    pub bcrypt_cost: u32,
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
    /// `--client-cert-auth`: a call without a token is made by the user
    /// its TLS client certificate names (common name).
    pub client_cert_auth: bool,
}

/// etcd's `grpcOverheadBytes`.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// The handle every v3 service holds.
#[derive(Clone)]
pub struct V3 {
    pub server: Server,
    pub cfg: Arc<V3Config>,
    /// The metadata (the auth token) of the call a Lock or Election step
    /// runs for: its KV and Lease calls carry it, as etcd's in-process
    /// client passes the caller's context on. `None` in the services.
    pub on_behalf: Option<Arc<tonic::metadata::MetadataMap>>,
}

impl V3 {
    /// This handle, for the steps of a call with metadata `md` (see
    /// [`V3::on_behalf`]).
    pub fn on_behalf_of(&self, md: &tonic::metadata::MetadataMap) -> V3 {
        V3 {
            on_behalf: Some(Arc::new(md.clone())),
            ..self.clone()
        }
    }

    /// A request to another service's handler, with the metadata of the
    /// call this handle acts for.
    pub fn request<T>(&self, t: T) -> tonic::Request<T> {
        match &self.on_behalf {
            Some(md) => tonic::Request::from_parts((**md).clone(), tonic::Extensions::default(), t),
            None => tonic::Request::new(t),
        }
    }
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

    /// etcd's `AuthInfoFromCtx`: the caller named by the request's
    /// `token` metadata (etcd's clientv3) or `authorization` (the JSON
    /// gateway's `Authorization` header); a token that names nobody is
    /// `invalid auth token`. Without a token, and with
    /// `--client-cert-auth`, etcd's `AuthInfoFromTLS`: the user named by
    /// the common name the client's certificate proved (never for the
    /// JSON gateway's calls, which carry `grpcgateway-accept`).
    pub async fn caller(&self, md: &tonic::metadata::MetadataMap) -> Result<Caller, V3Error> {
        let Some(token) = md.get("token").or_else(|| md.get("authorization")) else {
            if !self.cfg.client_cert_auth || md.contains_key("grpcgateway-accept") {
                return Ok(None);
            }
            let Some(cn) = md.get(crate::api::http::VERIFIED_CN) else {
                return Ok(None);
            };
            let user = cn.to_str().map_err(|_| V3Error::InvalidAuthToken)?;
            return Ok(Some(AuthInfo {
                user: user.to_string(),
                revision: self.server.mvcc().auth().revision(),
            }));
        };
        let token = token.to_str().map_err(|_| V3Error::InvalidAuthToken)?;
        let m = self.server.mvcc();
        match &self.cfg.tokens {
            TokenProvider::Nop => Err(V3Error::InvalidAuthToken),
            TokenProvider::Jwt(j) => j.info(token).map(Some).ok_or(V3Error::InvalidAuthToken),
            TokenProvider::Simple => {
                let index = simple_token_index(token).ok_or(V3Error::InvalidAuthToken)?;
                // A token issued through another member names an entry
                // this member may not have applied yet (etcd's
                // `indexWaiter`).
                let deadline = tokio::time::Instant::now() + self.server.request_timeout();
                while m.applied_index() < index {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(V3Error::InvalidAuthToken);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let user = m
                    .tokens()
                    .user_of(token, m.config().auth_token_ttl, std::time::Instant::now())
                    .ok_or(V3Error::InvalidAuthToken)?;
                Ok(Some(AuthInfo {
                    user,
                    revision: m.auth().revision(),
                }))
            }
        }
    }

    /// etcd's `doSerialize`: a local read by `caller`, checked by `check`
    /// first and refused afterwards if the auth store changed meanwhile.
    pub fn check_read(
        &self,
        caller: &Caller,
        check: impl FnOnce(&ferret_mvcc::AuthStore, &AuthInfo) -> Result<(), AuthError>,
    ) -> Result<(), V3Error> {
        let empty = AuthInfo::default();
        let who = caller.as_ref().unwrap_or(&empty);
        check(&self.server.mvcc().auth(), who).map_err(V3Error::from)
    }

    /// The second half of `doSerialize`: a read whose token's auth
    /// revision is no longer the store's is refused.
    pub fn check_still_current(&self, caller: &Caller) -> Result<(), V3Error> {
        match caller {
            Some(who)
                if who.revision != 0 && who.revision != self.server.mvcc().auth().revision() =>
            {
                Err(AuthError::OldRevision.into())
            }
            _ => Ok(()),
        }
    }

    /// A range read by `caller`: etcd's `IsRangePermitted`.
    pub fn check_range(&self, caller: &Caller, key: &[u8], end: &[u8]) -> Result<(), V3Error> {
        self.check_read(caller, |a, who| a.check(who, key, end, Access::Read))
    }

    /// etcd's `IsAdminPermitted` (a nil caller is no user).
    pub fn check_admin(&self, caller: &Caller) -> Result<(), V3Error> {
        self.check_read(caller, |a, who| a.check_admin(who))
    }

    /// Proposes a v3 request by `caller` and waits for what applying it
    /// gave. The request is queued before the future is first polled, and
    /// the future does not hold it (see `Server::propose`).
    pub fn propose(
        &self,
        mut req: InternalRaftRequest,
        caller: &Caller,
    ) -> impl Future<Output = Result<V3Response, V3Error>> + Send + 'static {
        // Every client request carries a header with its caller, empty
        // for none: only the leader's own lease revocations carry root
        // (`StateMachines::due_proposals`).
        let (username, auth_revision) = match caller {
            Some(who) => (who.user.clone(), who.revision),
            None => (String::new(), 0),
        };
        req.header = Some(RequestHeader {
            id: 0,
            username,
            auth_revision,
        });
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
