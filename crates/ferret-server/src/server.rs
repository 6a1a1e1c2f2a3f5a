//! The handle the API layers use on a running member.
//!
//! The API layers never touch the stores directly for writes: they build
//! an entry (etcd's `InternalRaftRequest`: a v2 request, or a v3 one),
//! [`Server::propose`] it and wait for the outcome, which
//! arrives only after the entry is committed (durable on a quorum) and
//! applied. Local reads take the state lock briefly; linearizable reads
//! first pass [`Server::read_barrier`] (Raft ReadIndex); watches register a
//! sink in a store's hub (v2 or v3).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ferret_mvcc::{Applier, Mvcc, MvccConfig, Storage};
use ferret_proto::etcdserverpb::{InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest};
use tokio::sync::oneshot;

use crate::apply::{Applied, StateMachines};
use crate::clock::now_ns;
use crate::entry::{self, IdGenerator, InitialMember, WalMetadata};
use crate::inbox::{self, InboxSender, QueueError};
use crate::peer_request::{self, LeaseAnswer, LeaseQuery};
use crate::raft_node::{self, Input, NodeConfig, Outcome, StartError};
use crate::shared::{FollowerStats, LogPosition, MemberInfo, Membership, ServerError, Shared};
use crate::transport::{self, PeerNet, TransportStats};

/// How to start a member.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// This member and the initial cluster, used only when the data dir is
    /// new; a restart takes them from the WAL.
    pub member_id: u64,
    pub cluster_id: u64,
    pub initial_members: Vec<InitialMember>,
    /// `--initial-cluster-state existing`: the data dir must already hold
    /// this member (joining a running cluster needs runtime membership
    /// changes, which ferretcd does not support yet).
    pub join_existing: bool,
    pub client_urls: Vec<String>,
    /// Addresses (`host:port`) to accept peer streams on.
    pub peer_listen: Vec<String>,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    pub snapshot_count: u64,
    /// How long a proposal may wait for its outcome (etcd: 5 s plus two
    /// election timeouts).
    pub request_timeout: Duration,
    pub v3: V3Settings,
}

/// The v3 store's settings, from etcd's flags.
#[derive(Debug, Clone)]
pub struct V3Settings {
    /// `--max-request-bytes`: the largest encoded proposal.
    pub max_request_bytes: usize,
    /// `--backend-batch-interval`, `--backend-batch-limit`.
    pub batch_interval: Duration,
    pub batch_limit: usize,
    /// `--experimental-compaction-batch-limit`.
    pub compaction_batch_limit: usize,
    /// `--experimental-enable-lease-checkpoint` (at etcd's 5-minute
    /// interval) and `--experimental-enable-lease-checkpoint-persist`.
    pub lease_checkpoint: bool,
    pub lease_checkpoint_persist: bool,
}

impl Default for V3Settings {
    fn default() -> Self {
        V3Settings {
            max_request_bytes: 1_572_864,
            batch_interval: Duration::from_millis(100),
            batch_limit: 10_000,
            compaction_batch_limit: 1000,
            lease_checkpoint: false,
            lease_checkpoint_persist: false,
        }
    }
}

/// What a keep-alive achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewOutcome {
    /// Renewed; the lease's TTL, seconds.
    Renewed(i64),
    /// No such lease (or it expired and was revoked).
    NotFound,
}

/// A lease's remaining time, as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTtl {
    /// Seconds left (truncated, as etcd).
    pub ttl: i64,
    pub granted_ttl: i64,
    /// Attached keys, sorted (only if asked for).
    pub keys: Vec<bytes::Bytes>,
}

/// Where a member's v3 backend lives.
pub fn backend_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("v3").join("backend.redb")
}

/// Inputs waiting for the Ready loop. Bounded so a flood of requests is
/// refused ("too many requests") instead of growing memory; 16384 is a few
/// Ready rounds of work.
const INBOX_CAPACITY: usize = 16384;

/// How long a lease query waits before asking again when the leader said
/// "retry" (or there is none): etcd's renewal waits for a revocation in
/// flight the same way, on a channel instead.
const LEASE_RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// A lease query forwarded to the leader and not answered within this is
/// asked again (a stream can lose a request without breaking, when the
/// leader restarts; the answer normally takes one round trip).
const FORWARD_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// A cheap, cloneable handle on a running member.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    inbox: InboxSender<Input>,
    max_request_bytes: usize,
}

/// A planted bug for the fault-injection suite (`ferret-jepsen`) to catch:
/// with `FERRETCD_UNSAFE_LOCAL_QUORUM_READS=1` in the environment at start,
/// `quorum=true` reads skip the ReadIndex barrier and may be stale. Read
/// once, at start. Never set it in production.
static UNSAFE_LOCAL_QUORUM_READS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

impl Server {
    /// Opens the data dir (creating a new cluster member, or restarting
    /// from the WAL and snapshot), starts the Raft thread and the peer
    /// listeners. Must run inside a tokio runtime.
    pub async fn start(cfg: ServerConfig) -> Result<Server, StartError> {
        let unsafe_reads = *UNSAFE_LOCAL_QUORUM_READS.get_or_init(|| {
            std::env::var("FERRETCD_UNSAFE_LOCAL_QUORUM_READS").as_deref() == Ok("1")
        });
        if unsafe_reads {
            tracing::warn!(
                "!!! FERRETCD_UNSAFE_LOCAL_QUORUM_READS=1: quorum reads skip the read barrier \
                 and MAY BE STALE; a debug switch for testing the checker, never for use !!!"
            );
        }
        let (poll, rx, tx) = inbox::channel(INBOX_CAPACITY).map_err(StartError::PeerNet)?;
        let mut listeners = Vec::new();
        for addr in &cfg.peer_listen {
            let l = transport::bind(addr).map_err(|error| StartError::PeerListen {
                addr: addr.clone(),
                error,
            })?;
            listeners.push(l);
        }
        let stats = Arc::new(TransportStats::default());
        let (mvcc, applier) = open_v3(&cfg)?;
        let shared = Arc::new(Shared {
            state: RwLock::new(StateMachines::new(applier)),
            mvcc,
            ids: IdGenerator::new(cfg.member_id, (now_ns() / 1_000_000) as u64),
            commit_index: AtomicU64::new(0),
            term: AtomicU64::new(0),
            leader_id: AtomicU64::new(0),
            is_leader: AtomicBool::new(false),
            leader_since_ns: AtomicI64::new(0),
            transport_stats: stats.clone(),
            followers: Default::default(),
            membership: RwLock::new(Membership {
                member_id: cfg.member_id,
                cluster_id: cfg.cluster_id,
                name: cfg.name.clone(),
                peer_urls: Vec::new(),
                client_urls: cfg.client_urls.clone(),
            }),
            request_timeout: cfg.request_timeout,
            ready: tokio::sync::watch::channel(false).0,
        });
        let heartbeat_ms = cfg.heartbeat.as_millis().max(1);
        let election_ticks = (cfg.election_timeout.as_millis() / heartbeat_ms).max(2) as usize;
        let node_cfg = NodeConfig {
            data_dir: cfg.data_dir.clone(),
            heartbeat: cfg.heartbeat,
            election_ticks,
            snapshot_count: cfg.snapshot_count,
            join_existing: cfg.join_existing,
            name: cfg.name.clone(),
            client_urls: cfg.client_urls.clone(),
            lease_extend: cfg.election_timeout,
        };
        let new_cluster = WalMetadata {
            member_id: cfg.member_id,
            cluster_id: cfg.cluster_id,
            members: cfg.initial_members.clone(),
        };
        let stats_for_transport = stats.clone();
        let (node, meta) = raft_node::start(
            node_cfg,
            new_cluster,
            shared.clone(),
            rx,
            tx.clone(),
            |meta| {
                let peers: Vec<(u64, Vec<String>)> = meta
                    .members
                    .iter()
                    .map(|m| (m.id, m.peer_urls.clone()))
                    .collect();
                PeerNet::new(
                    poll,
                    meta.member_id,
                    meta.cluster_id,
                    &peers,
                    listeners,
                    stats_for_transport,
                )
            },
        )?;
        {
            let mut m = shared.membership.write().unwrap_or_else(|p| p.into_inner());
            m.member_id = meta.member_id;
            m.cluster_id = meta.cluster_id;
            m.peer_urls = meta
                .members
                .iter()
                .find(|x| x.id == meta.member_id)
                .map(|x| x.peer_urls.clone())
                .unwrap_or_default();
        }
        let single = meta.members.len() == 1;
        std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || {
                // A member whose Raft loop died can never answer again; a
                // process that lingers looks alive to supervisors and
                // clients. Exit so it is restarted (the WAL recovers it).
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.run(single)));
                if outcome.is_err() {
                    tracing::error!("the raft loop panicked; exiting");
                    std::process::exit(1);
                }
            })
            .map_err(StartError::Thread)?;
        Ok(Server {
            shared,
            inbox: tx,
            max_request_bytes: cfg.v3.max_request_bytes,
        })
    }

    /// Waits until this member has published itself to the cluster (its
    /// name and client URLs are applied), which needs a leader.
    pub async fn wait_ready(&self) {
        let mut rx = self.shared.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Stops the Raft loop (after it syncs the WAL).
    pub fn stop(&self) {
        let _ = self.inbox.send(Input::Stop);
    }

    /// Orders a request through the log and returns what applying it
    /// produced. The request is encoded and queued here, before the
    /// returned future is first polled, off the Raft thread; one over
    /// `--max-request-bytes` is refused, as etcd refuses a v3 request.
    ///
    /// Not an `async fn`: the future holds only the reply channel, not the
    /// request (an `InternalRaftRequest` is over a kilobyte, and every
    /// `async fn` layer a gRPC call passes through would keep its own copy
    /// in a future that tonic boxes and moves).
    pub fn propose(
        &self,
        req: InternalRaftRequest,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        self.propose_checked(req, true)
    }

    /// A v2 write through the log. etcd 3.4's v2 API does not apply
    /// `--max-request-bytes` (only its HTTP form limit), and neither does
    /// this.
    pub fn propose_v2(
        &self,
        w: &ferret_v2store::Write,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        self.propose_checked(entry::v2(w), false)
    }

    fn propose_checked(
        &self,
        req: InternalRaftRequest,
        limit: bool,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        let queued = self.queue_proposal(req, limit);
        let timeout = self.shared.request_timeout;
        async move {
            match tokio::time::timeout(timeout, queued?).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(ServerError::Stopped),
                Err(_) => Err(ServerError::Timeout),
            }
        }
    }

    /// Encodes `req` with a fresh id and hands it to the Raft loop; the
    /// receiver gets what applying it produced.
    fn queue_proposal(
        &self,
        req: InternalRaftRequest,
        limit: bool,
    ) -> Result<oneshot::Receiver<Outcome>, ServerError> {
        let id = self.shared.ids.next();
        let data = entry::encode(&entry::with_id(req, id));
        if limit && data.len() > self.max_request_bytes {
            return Err(ServerError::RequestTooLarge);
        }
        let (reply, rx) = oneshot::channel();
        self.send(Input::Propose { id, data, reply })?;
        Ok(rx)
    }

    /// A linearizable read barrier (Raft ReadIndex): returns once this
    /// member has applied everything committed before the call.
    pub async fn read_barrier(&self) -> Result<(), ServerError> {
        if UNSAFE_LOCAL_QUORUM_READS.get() == Some(&true) {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Input::ReadIndex { reply })?;
        match tokio::time::timeout(self.shared.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
    }

    /// Asks this member, if it leads, to hand leadership to member `to`;
    /// whether and when that happens shows in [`Server::leader_id`].
    pub fn transfer_leader(&self, to: u64) -> Result<(), ServerError> {
        self.send(Input::TransferLeader { to })
    }

    /// A v3 request through the log.
    pub fn propose_v3(
        &self,
        req: InternalRaftRequest,
    ) -> impl Future<Output = Result<Applied, ServerError>> + Send + 'static {
        let applied = self.propose(req);
        async move { applied.await.map(|(a, _)| a) }
    }

    /// The v3 store.
    pub fn mvcc(&self) -> &Arc<Mvcc> {
        &self.shared.mvcc
    }

    /// A fresh id, unique across the cluster (etcd's request ids; lease
    /// grants without an id use one).
    pub fn next_request_id(&self) -> u64 {
        self.shared.ids.next()
    }

    pub fn request_timeout(&self) -> Duration {
        self.shared.request_timeout
    }

    /// A keep-alive. Only the leader tracks expiry, so only the leader
    /// renews: a follower forwards it to the leader over the peer stream
    /// and waits for the answer (etcd's `LeaseRenew`).
    pub async fn lease_renew(&self, id: i64) -> Result<RenewOutcome, ServerError> {
        match self.lease_query(LeaseQuery::Renew(id)).await? {
            LeaseAnswer::Renewed { ttl } => Ok(RenewOutcome::Renewed(ttl)),
            LeaseAnswer::NotFound => Ok(RenewOutcome::NotFound),
            // The loop drops answers that do not fit (`LeaseAnswer::fits`).
            other => unreachable!("a renewal answered {other:?}"),
        }
    }

    /// A lease's remaining time, as the leader sees it (a follower asks
    /// the leader); `None` if it does not exist.
    pub async fn lease_time_to_live(
        &self,
        id: i64,
        keys: bool,
    ) -> Result<Option<LeaseTtl>, ServerError> {
        match self
            .lease_query(LeaseQuery::TimeToLive { id, keys })
            .await?
        {
            LeaseAnswer::TimeToLive {
                ttl,
                granted_ttl,
                keys,
            } => Ok(Some(LeaseTtl {
                ttl,
                granted_ttl,
                keys,
            })),
            LeaseAnswer::NotFound => Ok(None),
            // The loop drops answers that do not fit (`LeaseAnswer::fits`).
            other => unreachable!("a time-to-live answered {other:?}"),
        }
    }

    /// Asks the leader's lessor, from its own lessor on the leader or over
    /// the peer stream from a follower, again and again until it answers,
    /// within the request timeout: while the leader is not promoted yet, a
    /// lease expired and is being revoked, a checkpoint is being cleared,
    /// the leader changes or a request is lost. Answers only
    /// [`LeaseAnswer::Renewed`], [`LeaseAnswer::TimeToLive`] or
    /// [`LeaseAnswer::NotFound`]. Fails with `NoLeader` if no leader was
    /// known the whole time, `Timeout` if one was.
    async fn lease_query(&self, query: LeaseQuery) -> Result<LeaseAnswer, ServerError> {
        let deadline = tokio::time::Instant::now() + self.shared.request_timeout;
        let mut saw_leader = false;
        loop {
            let answer = if self.is_leader() {
                saw_leader = true;
                let (answer, clear) = {
                    let mut le = self.mvcc().lessor();
                    // Local: no wire, no bound on the keys listed.
                    peer_request::answer(&mut le, &query, std::time::Instant::now(), usize::MAX)
                };
                if let Some(id) = clear {
                    self.propose(InternalRaftRequest {
                        lease_checkpoint: Some(LeaseCheckpointRequest {
                            checkpoints: vec![LeaseCheckpoint {
                                id,
                                remaining_ttl: 0,
                            }],
                        }),
                        ..Default::default()
                    })
                    .await?;
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ServerError::Timeout);
                    }
                    continue;
                }
                answer
            } else if self.leader_id().is_some() {
                saw_leader = true;
                self.forward(query.clone(), deadline).await?
            } else {
                LeaseAnswer::Retry
            };
            match answer {
                LeaseAnswer::Renewed { .. }
                | LeaseAnswer::TimeToLive { .. }
                | LeaseAnswer::NotFound => return Ok(answer),
                // The keys do not fit in one peer answer.
                LeaseAnswer::TooLarge => return Err(ServerError::RequestTooLarge),
                LeaseAnswer::Retry | LeaseAnswer::NotLeader => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(if saw_leader {
                    ServerError::Timeout
                } else {
                    ServerError::NoLeader
                });
            }
            tokio::time::sleep(LEASE_RETRY_INTERVAL.min(deadline - now)).await;
        }
    }

    /// One attempt at asking the leader through the Raft thread; a lost
    /// request or answer is "retry" after [`FORWARD_ATTEMPT_TIMEOUT`].
    async fn forward(
        &self,
        query: LeaseQuery,
        deadline: tokio::time::Instant,
    ) -> Result<LeaseAnswer, ServerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::Forward { query, reply })?;
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(FORWARD_ATTEMPT_TIMEOUT);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServerError::Stopped),
            // The Raft thread forgets it once this receiver is gone.
            Err(_) => Ok(LeaseAnswer::Retry),
        }
    }

    fn send(&self, input: Input) -> Result<(), ServerError> {
        self.inbox.try_send(input).map_err(|e| match e {
            QueueError::Full => ServerError::TooManyRequests,
            QueueError::Closed => ServerError::Stopped,
        })
    }

    pub fn state(&self) -> RwLockReadGuard<'_, StateMachines> {
        self.shared.state()
    }

    pub fn state_mut(&self) -> RwLockWriteGuard<'_, StateMachines> {
        self.shared.state_mut()
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            commit_index: self.shared.commit_index.load(Ordering::Acquire),
            term: self.shared.term.load(Ordering::Acquire),
        }
    }

    pub fn membership(&self) -> Membership {
        self.shared
            .membership
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The cluster's and this member's ids, for response headers (without
    /// copying the member's name and URLs, as [`Server::membership`] does).
    pub fn ids(&self) -> (u64, u64) {
        let m = self
            .shared
            .membership
            .read()
            .unwrap_or_else(|p| p.into_inner());
        (m.cluster_id, m.member_id)
    }

    /// The id of the current leader, if one is known.
    pub fn leader_id(&self) -> Option<u64> {
        match self.shared.leader_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.shared.is_leader.load(Ordering::Acquire)
    }

    /// When this member last became leader, Unix ns.
    pub fn leader_since_ns(&self) -> i64 {
        self.shared.leader_since_ns.load(Ordering::Acquire)
    }

    /// The leader's measurements of its followers, by id.
    pub fn follower_stats(&self) -> std::collections::HashMap<u64, FollowerStats> {
        self.shared
            .followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn transport_stats(&self) -> &TransportStats {
        &self.shared.transport_stats
    }

    /// The cluster's members, from the replicated store (`/0/members`), in
    /// id order. A member that has not published its attributes yet has no
    /// name and no client URLs, as in etcd.
    pub fn members(&self) -> Vec<MemberInfo> {
        let state = self.state();
        let Ok(ev) = state.v2.get(b"/0/members", true, now_ns()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for dir in &ev.node.nodes {
            let id_hex =
                String::from_utf8_lossy(&dir.key[b"/0/members/".len().min(dir.key.len())..])
                    .into_owned();
            let Ok(id) = u64::from_str_radix(&id_hex, 16) else {
                continue;
            };
            let mut m = MemberInfo {
                id,
                name: String::new(),
                peer_urls: Vec::new(),
                client_urls: Vec::new(),
            };
            for attr in &dir.nodes {
                let value: serde_json::Value = attr
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice(v).ok())
                    .unwrap_or_default();
                let strings = |field: &str| -> Vec<String> {
                    value[field]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                if attr.key.ends_with(b"/raftAttributes") {
                    m.peer_urls = strings("peerURLs");
                } else if attr.key.ends_with(b"/attributes") {
                    m.name = value["name"].as_str().unwrap_or_default().to_string();
                    m.client_urls = strings("clientURLs");
                }
            }
            out.push(m);
        }
        out.sort_by_key(|m| m.id);
        out
    }
}

/// Opens the v3 store (creating it on a new member) and its applier.
fn open_v3(cfg: &ServerConfig) -> Result<(Arc<Mvcc>, Applier), StartError> {
    let path = backend_path(&cfg.data_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Backend(format!("{}: {e}", dir.display())))?;
    }
    // etcd's minLeaseTTL: 1.5 election timeouts, rounded up to a second.
    let min_ttl = (cfg.election_timeout.as_secs_f64() * 1.5).ceil().max(1.0) as i64;
    let mcfg = MvccConfig {
        min_lease_ttl: min_ttl,
        lease_checkpoint_interval: cfg
            .v3
            .lease_checkpoint
            .then_some(ferret_mvcc::lease::DEFAULT_CHECKPOINT_INTERVAL),
        lease_checkpoint_persist: cfg.v3.lease_checkpoint_persist,
        batch_interval: cfg.v3.batch_interval,
        batch_limit: cfg.v3.batch_limit,
        compaction_batch_limit: cfg.v3.compaction_batch_limit,
        on_fatal: Arc::new(|e| {
            // Nothing the backend lost was acknowledged only by it (the
            // WAL is the point of durability): stopping is safe, and the
            // next start replays the log into the backend.
            tracing::error!(error = %e, "the v3 backend failed; stopping");
            std::process::exit(1);
        }),
    };
    let (m, restored) = Mvcc::open(Storage::File(path.clone()), mcfg)
        .map_err(|e| StartError::Backend(format!("{}: {e}", path.display())))?;
    tracing::info!(
        path = %path.display(),
        consistent_index = restored.consistent_index,
        revision = restored.current_rev,
        compacted = restored.compact_rev,
        keys = restored.keys,
        leases = restored.leases,
        "opened the v3 backend"
    );
    let a = Applier::new(m.clone(), &restored);
    Ok((m, a))
}
