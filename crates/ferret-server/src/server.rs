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
use crate::membership::{Change, Member};
use crate::peer_request::{self, LeaderAnswer, LeaderQuery};
use crate::peer_tls::{PeerAddr, PeerTls};
use crate::raft_node::{self, Input, NodeConfig, Outcome, StartError};
use crate::shared::{FollowerStats, Identity, LogPosition, ServerError, Shared};
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
    /// `--initial-cluster-state existing`: with an empty data dir, join
    /// the running cluster the other members of `initial_members` belong
    /// to (this member must have been added to it).
    pub join_existing: bool,
    pub client_urls: Vec<String>,
    /// Where to accept peer streams (https ones with TLS).
    pub peer_listen: Vec<PeerAddr>,
    /// `--peer-*` TLS: for https peer listeners and peer URLs.
    pub peer_tls: PeerTls,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    pub snapshot_count: u64,
    /// How long a proposal may wait for its outcome (etcd: 5 s plus two
    /// election timeouts).
    pub request_timeout: Duration,
    /// `--strict-reconfig-check`: refuse membership changes that could
    /// cost the quorum.
    pub strict_reconfig_check: bool,
    /// `--force-new-cluster`: a restart makes this member a cluster of its
    /// own, with its data (disaster recovery).
    pub force_new_cluster: bool,
    /// `--wal-dir`: the WAL's own directory (often another disk); `None`
    /// keeps it in `<data-dir>/member/wal`. A WAL found under the data dir
    /// is moved there at start (`ferret_wal::relocate`).
    pub wal_dir: Option<PathBuf>,
    /// `--unsafe-no-fsync`: WAL writes are not fdatasynced (a machine crash
    /// may lose acknowledged writes).
    pub unsafe_no_fsync: bool,
    pub v3: V3Settings,
}

impl ServerConfig {
    /// Where the member's WAL is: `--wal-dir`, else under the data dir.
    pub fn wal_path(&self) -> PathBuf {
        self.wal_dir
            .clone()
            .unwrap_or_else(|| ferret_wal::wal_dir(&self.data_dir))
    }
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
    /// `--auth-token-ttl` (for simple tokens).
    pub auth_token_ttl: Duration,
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
            auth_token_ttl: Duration::from_secs(300),
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

/// Where a member's v3 backend lives (ferret-mvcc's one definition, which
/// `ferretctl snapshot restore` writes to too).
pub fn backend_path(data_dir: &std::path::Path) -> PathBuf {
    ferret_mvcc::backend::path_in(data_dir)
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

/// etcd's `HealthInterval`: a peer counts as connected for a strict
/// reconfiguration check once its stream has been up this long.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

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
                addr: addr.host_port.clone(),
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
            is_learner: AtomicBool::new(false),
            unverified: AtomicBool::new(false),
            publishing: AtomicBool::new(false),
            leader_since_ns: AtomicI64::new(0),
            transport_stats: stats.clone(),
            followers: Default::default(),
            identity: RwLock::new(Identity {
                member_id: cfg.member_id,
                cluster_id: cfg.cluster_id,
                name: cfg.name.clone(),
                peer_urls: Vec::new(),
                client_urls: cfg.client_urls.clone(),
            }),
            request_timeout: cfg.request_timeout,
            strict_reconfig: cfg.strict_reconfig_check,
            ready: tokio::sync::watch::channel(false).0,
        });
        let heartbeat_ms = cfg.heartbeat.as_millis().max(1);
        let election_ticks = (cfg.election_timeout.as_millis() / heartbeat_ms).max(2) as usize;
        let wal_path = cfg.wal_path();
        if cfg.wal_dir.is_some() {
            let under_data_dir = ferret_wal::wal_dir(&cfg.data_dir);
            if ferret_wal::relocate(&under_data_dir, &wal_path)? {
                tracing::info!(
                    from = %under_data_dir.display(),
                    to = %wal_path.display(),
                    "moved the WAL to the dedicated WAL directory"
                );
            }
        }
        let node_cfg = NodeConfig {
            data_dir: cfg.data_dir.clone(),
            wal_dir: wal_path.clone(),
            unsafe_no_fsync: cfg.unsafe_no_fsync,
            heartbeat: cfg.heartbeat,
            election_ticks,
            snapshot_count: cfg.snapshot_count,
            name: cfg.name.clone(),
            client_urls: cfg.client_urls.clone(),
            lease_extend: cfg.election_timeout,
            join_peers: Vec::new(),
            force_new_cluster: cfg.force_new_cluster,
            peer_urls: cfg
                .initial_members
                .iter()
                .find(|m| m.name == cfg.name)
                .map(|m| m.peer_urls.clone())
                .unwrap_or_default(),
        };
        let mut node_cfg = node_cfg;
        let new_cluster = if cfg.join_existing && !ferret_wal::Wal::exists(&wal_path) {
            let (meta, peers) = join_running_cluster(&cfg)?;
            node_cfg.join_peers = peers;
            meta
        } else {
            WalMetadata {
                member_id: cfg.member_id,
                cluster_id: cfg.cluster_id,
                members: cfg.initial_members.clone(),
            }
        };
        let stats_for_transport = stats.clone();
        let peer_tls = cfg.peer_tls.clone();
        let (node, meta) = raft_node::start(
            node_cfg,
            new_cluster,
            shared.clone(),
            rx,
            tx.clone(),
            |meta, peers| {
                PeerNet::new(
                    poll,
                    meta.member_id,
                    meta.cluster_id,
                    peers,
                    listeners,
                    peer_tls,
                    stats_for_transport,
                )
            },
        )?;
        {
            let mut m = shared.identity.write().unwrap_or_else(|p| p.into_inner());
            m.member_id = meta.member_id;
            m.cluster_id = meta.cluster_id;
            let applied = shared
                .state()
                .membership
                .get(meta.member_id)
                .map(|x| x.peer_urls.clone());
            m.peer_urls = applied
                .or_else(|| {
                    let initial = meta.members.iter().find(|x| x.id == meta.member_id);
                    initial.map(|x| x.peer_urls.clone())
                })
                .or_else(|| {
                    let flags = cfg.initial_members.iter().find(|x| x.name == cfg.name);
                    flags.map(|x| x.peer_urls.clone())
                })
                .unwrap_or_default();
        }
        let single = meta.members.len() == 1 || cfg.force_new_cluster;
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
        let server = Server {
            shared,
            inbox: tx,
            max_request_bytes: cfg.v3.max_request_bytes,
        };
        if server.shared.unverified.load(Ordering::Acquire) {
            let guard = AmnesiaGuard::new(&server, &cfg);
            // One round at once: a member that lost its data is refused
            // before it serves anything, if a peer answers.
            let first = {
                let g = guard.clone();
                tokio::task::spawn_blocking(move || g.check())
                    .await
                    .unwrap_or(Verdict::Wait)
            };
            match first {
                Verdict::Refuse(why) => return Err(StartError::LostData(why)),
                Verdict::Verified => {
                    let _ = server.send(Input::Verified);
                }
                Verdict::Wait => {
                    tokio::spawn(guard.run(server.clone()));
                }
            }
        }
        tokio::spawn(watch_for_removal(server.clone(), cfg.peer_tls.clone()));
        Ok(server)
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
        // `--log-level debug`: each write, how long it took and how it
        // ended (the summary is made only when debug lines are written).
        let summary = tracing::enabled!(tracing::Level::DEBUG).then(|| entry::summary(&req));
        let queued = self.queue_proposal(req, limit);
        let timeout = self.shared.request_timeout;
        let server = self.clone();
        let start_ns = now_ns();
        let start = std::time::Instant::now();
        async move {
            // A request over the size limit is refused before it is a
            // proposal, as etcd refuses it before counting it.
            let queued = queued?;
            let _pending = PendingProposal::new();
            let outcome = match tokio::time::timeout(timeout, queued).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(ServerError::Stopped),
                Err(_) => Err(server.why_timed_out(start_ns, start)),
            };
            if let Some(request) = summary {
                match &outcome {
                    Ok(_) => tracing::debug!(
                        request,
                        took_us = start.elapsed().as_micros() as u64,
                        "write applied"
                    ),
                    Err(e) => tracing::debug!(
                        request,
                        took_us = start.elapsed().as_micros() as u64,
                        error = %e,
                        "write failed"
                    ),
                }
            }
            if outcome.is_err() {
                ferret_metrics::get().proposals_failed.inc();
            }
            outcome
        }
    }

    /// Sets the metrics that are states, not events, from this member's
    /// state (see `ferret_metrics`): what a scrape reports. Reads the
    /// database's sizes, which may wait for a backend commit: call it
    /// where blocking is allowed.
    pub fn sample_metrics(&self) {
        let m = ferret_metrics::get();
        let leader = self.shared.leader_id.load(Ordering::Acquire);
        m.has_leader.set(i64::from(leader != 0));
        m.is_leader
            .set(i64::from(self.shared.is_leader.load(Ordering::Acquire)));
        m.proposals_committed
            .set(self.shared.commit_index.load(Ordering::Acquire) as i64);
        m.proposals_applied
            .set(self.shared.state().applied_index as i64);
        let mvcc = self.mvcc();
        m.keys_total.set(mvcc.keys_total() as i64);
        m.watchers.set(mvcc.watchers() as i64);
        match mvcc.db_sizes() {
            Ok((size, in_use)) => {
                m.db_total_size.set(size as i64);
                m.db_total_size_in_use.set(in_use as i64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the database's size for /metrics"),
        }
    }

    /// etcd's `parseProposeCtxErr`: a proposal that timed out having
    /// started within two election timeouts before the current leader came
    /// is the previous leader's failure; one whose member was not
    /// connected to the leader (or, leading, to a quorum) since it started
    /// is a lost connection; otherwise a plain timeout.
    fn why_timed_out(&self, start_ns: i64, start: std::time::Instant) -> ServerError {
        // etcd's request timeout is 5 s and two election timeouts.
        let two_elections = self
            .shared
            .request_timeout
            .saturating_sub(Duration::from_secs(5));
        let elected = self.leader_since_ns();
        let lost = elected - two_elections.as_nanos() as i64;
        if start_ns > lost && start_ns < elected {
            return ServerError::TimeoutDueToLeaderFail;
        }
        let connected_since_start = |id: u64| {
            self.transport_stats()
                .active_since(id)
                .is_some_and(|t| t <= start)
        };
        let me = self.ids().1;
        match self.leader_id() {
            None => ServerError::Timeout,
            Some(l) if l == me => {
                let members = self.members();
                let connected = members
                    .iter()
                    .filter(|m| m.id == me || connected_since_start(m.id))
                    .count();
                if connected < members.len() / 2 + 1 {
                    ServerError::TimeoutDueToConnectionLost
                } else {
                    ServerError::Timeout
                }
            }
            Some(l) if !connected_since_start(l) => ServerError::TimeoutDueToConnectionLost,
            Some(_) => ServerError::Timeout,
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

    /// etcd's `AddMember`: with `--strict-reconfig-check`, a voter is
    /// added only if the started voters keep a quorum, and any member only
    /// if this member has been connected to every voter for
    /// [`HEALTH_INTERVAL`]. Answers the
    /// members once the change is applied.
    pub async fn add_member(&self, m: Member) -> Result<Vec<Member>, ServerError> {
        if self.shared.strict_reconfig {
            let voters: Vec<u64> = {
                let state = self.state();
                if !m.is_learner && !state.membership.ready_to_add_voter() {
                    return Err(ServerError::NotEnoughStartedMembers);
                }
                state.membership.voters().map(|v| v.id).collect()
            };
            // A learner too (etcd's `mayAddMember`).
            if self.connected_since(&voters) != voters.len() {
                return Err(ServerError::Unhealthy);
            }
        }
        self.change_membership(Change::Add(m)).await
    }

    /// etcd's `RemoveMember`: with `--strict-reconfig-check`, a voter is
    /// removed only if the started voters left keep a quorum and, unless
    /// it is down, the voters this member has been connected to for
    /// [`HEALTH_INTERVAL`] keep one without it.
    pub async fn remove_member(&self, id: u64) -> Result<Vec<Member>, ServerError> {
        if self.shared.strict_reconfig {
            let voters: Option<Vec<u64>> = {
                let state = self.state();
                let learner = state.membership.get(id).is_some_and(|m| m.is_learner);
                if learner {
                    None
                } else if !state.membership.ready_to_remove_voter(id) {
                    return Err(ServerError::NotEnoughStartedMembers);
                } else {
                    Some(state.membership.voters().map(|v| v.id).collect())
                }
            };
            let me = self.ids().1;
            let down = id != me && self.transport_stats().active_since(id).is_none();
            if let Some(voters) = voters.filter(|_| !down) {
                let active = self.connected_since(&voters);
                if active.saturating_sub(1) < 1 + (voters.len().saturating_sub(1)) / 2 {
                    return Err(ServerError::Unhealthy);
                }
            }
        }
        self.change_membership(Change::Remove(id)).await
    }

    /// etcd's `UpdateMember`: new peer URLs for a member.
    pub async fn update_member(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<Vec<Member>, ServerError> {
        self.change_membership(Change::Update { id, peer_urls })
            .await
    }

    /// etcd's `PromoteMember`: a learner becomes a voter once its log
    /// caught up with the leader's (the leader says; a follower asks it),
    /// and, with `--strict-reconfig-check`, if the started voters keep a
    /// quorum.
    pub async fn promote_member(&self, id: u64) -> Result<Vec<Member>, ServerError> {
        match self.ask_leader(LeaderQuery::LearnerReady(id)).await? {
            LeaderAnswer::LearnerReady(true) => {}
            LeaderAnswer::LearnerReady(false) => return Err(ServerError::LearnerNotReady),
            other => unreachable!("a learner readiness query answered {other:?}"),
        }
        if self.shared.strict_reconfig && !self.state().membership.ready_to_promote() {
            return Err(ServerError::NotEnoughStartedMembers);
        }
        self.change_membership(Change::Promote(id)).await
    }

    /// How many of `voters` count as connected for etcd's checks: this
    /// member, and the peers its stream has been up to for
    /// [`HEALTH_INTERVAL`].
    fn connected_since(&self, voters: &[u64]) -> usize {
        let me = self.ids().1;
        let since = std::time::Instant::now().checked_sub(HEALTH_INTERVAL);
        voters
            .iter()
            .filter(|&&id| {
                id == me
                    || self
                        .transport_stats()
                        .active_since(id)
                        .is_some_and(|t| since.is_some_and(|s| t < s))
            })
            .count()
    }

    /// Proposes a configuration change and waits until it is applied.
    async fn change_membership(&self, change: Change) -> Result<Vec<Member>, ServerError> {
        let id = self.shared.ids.next();
        let (reply, rx) = oneshot::channel();
        self.send(Input::ProposeConfChange { id, change, reply })?;
        match tokio::time::timeout(self.shared.request_timeout, rx).await {
            Ok(Ok(r)) => r.map(|(members, _)| members),
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
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
        match self.ask_leader(LeaderQuery::Renew(id)).await? {
            LeaderAnswer::Renewed { ttl } => Ok(RenewOutcome::Renewed(ttl)),
            LeaderAnswer::NotFound => Ok(RenewOutcome::NotFound),
            // The loop drops answers that do not fit (`LeaderAnswer::fits`).
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
            .ask_leader(LeaderQuery::TimeToLive { id, keys })
            .await?
        {
            LeaderAnswer::TimeToLive {
                ttl,
                granted_ttl,
                keys,
            } => Ok(Some(LeaseTtl {
                ttl,
                granted_ttl,
                keys,
            })),
            LeaderAnswer::NotFound => Ok(None),
            // The loop drops answers that do not fit (`LeaderAnswer::fits`).
            other => unreachable!("a time-to-live answered {other:?}"),
        }
    }

    /// Asks the leader's lessor, from its own lessor on the leader or over
    /// the peer stream from a follower, again and again until it answers,
    /// within the request timeout: while the leader is not promoted yet, a
    /// lease expired and is being revoked, a checkpoint is being cleared,
    /// the leader changes or a request is lost. Answers only
    /// [`LeaderAnswer::Renewed`], [`LeaderAnswer::TimeToLive`] or
    /// [`LeaderAnswer::NotFound`]. Fails with `NoLeader` if no leader was
    /// known the whole time, `Timeout` if one was.
    async fn ask_leader(&self, query: LeaderQuery) -> Result<LeaderAnswer, ServerError> {
        let deadline = tokio::time::Instant::now() + self.shared.request_timeout;
        let mut saw_leader = false;
        loop {
            let answer = if let (true, LeaderQuery::LearnerReady(id)) = (self.is_leader(), &query) {
                saw_leader = true;
                let (reply, rx) = oneshot::channel();
                self.send(Input::LearnerReady { id: *id, reply })?;
                match rx.await {
                    Ok(Ok(ready)) => LeaderAnswer::LearnerReady(ready),
                    // It stopped leading meanwhile.
                    Ok(Err(_)) => LeaderAnswer::NotLeader,
                    Err(_) => return Err(ServerError::Stopped),
                }
            } else if self.is_leader() {
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
                LeaderAnswer::Retry
            };
            match answer {
                LeaderAnswer::Renewed { .. }
                | LeaderAnswer::TimeToLive { .. }
                | LeaderAnswer::LearnerReady(_)
                | LeaderAnswer::NotFound => return Ok(answer),
                // The keys do not fit in one peer answer.
                LeaderAnswer::TooLarge => return Err(ServerError::RequestTooLarge),
                LeaderAnswer::Retry | LeaderAnswer::NotLeader => {}
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
        query: LeaderQuery,
        deadline: tokio::time::Instant,
    ) -> Result<LeaderAnswer, ServerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::Forward { query, reply })?;
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(FORWARD_ATTEMPT_TIMEOUT);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServerError::Stopped),
            // The Raft thread forgets it once this receiver is gone.
            Err(_) => Ok(LeaderAnswer::Retry),
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

    pub fn identity(&self) -> Identity {
        self.shared
            .identity
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The cluster's and this member's ids, for response headers (without
    /// copying the member's name and URLs, as [`Server::membership`] does).
    pub fn ids(&self) -> (u64, u64) {
        let m = self
            .shared
            .identity
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

    /// Whether this member is a learner (it serves only what etcd's
    /// learners serve).
    pub fn is_learner(&self) -> bool {
        self.shared.is_learner.load(Ordering::Acquire)
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

    /// The cluster's members as this member applied them, in id order. A
    /// member that has not published its attributes yet has no name and
    /// no client URLs, as in etcd.
    pub fn members(&self) -> Vec<Member> {
        self.state().membership.members()
    }
}

/// How long a member goes without a leader before it asks its peers
/// whether it was removed.
const REMOVAL_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// A member removed while it was down never applies its removal: its
/// peers no longer talk to it, and it would campaign forever. etcd's
/// peers answer such a member's streams "removed" (HTTP 410); a ferretcd
/// member without a leader asks its peers for the membership (the cluster
/// query of `transport`) and stops for good once one lists it as removed.
async fn watch_for_removal(server: Server, tls: PeerTls) {
    loop {
        tokio::time::sleep(REMOVAL_CHECK_INTERVAL).await;
        if server.leader_id().is_some() {
            continue;
        }
        let (cluster, me) = server.ids();
        let urls: Vec<String> = server
            .members()
            .into_iter()
            .filter(|m| m.id != me)
            .flat_map(|m| m.peer_urls)
            .collect();
        let tls = tls.clone();
        let removed = tokio::task::spawn_blocking(move || {
            urls.iter().any(|url| {
                let Some(addr) = PeerAddr::parse(url) else {
                    return false;
                };
                let Ok(body) = transport::query_cluster(&addr, &tls, JOIN_QUERY_TIMEOUT) else {
                    return false;
                };
                let Ok(info) =
                    <ferret_proto::ferretpb::ClusterInfo as ferret_proto::Message>::decode(
                        &body[..],
                    )
                else {
                    return false;
                };
                info.cluster_id == cluster
                    && info.membership.is_some_and(|m| m.removed.contains(&me))
            })
        })
        .await
        .unwrap_or(false);
        if removed {
            raft_node::exit_removed();
        }
    }
}

/// How often an unverified member asks its peers again.
const AMNESIA_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// What the peers say of a member that started with an empty data dir.
#[derive(Debug)]
enum Verdict {
    /// A quorum of members, it included, hold no committed data: the
    /// cluster is new.
    Verified,
    /// A peer knows this member as started: it lost its data.
    Refuse(String),
    /// Not known yet (peers down, or a cluster with data that this member
    /// never started in: it catches up and is verified once it published
    /// itself).
    Wait,
}

/// The amnesia guard's questions to the peers. A member whose data dir
/// was empty at start (and is not verified yet: `raft_node`'s marker)
/// neither votes nor campaigns until a quorum, itself included, is known
/// to hold no committed data (a new cluster), or until it has caught up
/// and its own publication is applied. If a peer knows it as a started
/// member, it lost its data: its start is refused, with how to bring it
/// back. etcd 3.4's own check (asking whether the member is bootstrapped
/// already) lets such a member vote when it and another start together,
/// and an acknowledged write can be lost.
#[derive(Clone)]
struct AmnesiaGuard {
    me: u64,
    cluster: u64,
    name: String,
    data_dir: PathBuf,
    own_urls: Vec<String>,
    peer_urls: Vec<String>,
    tls: PeerTls,
    voters: usize,
    /// Whether this start proposed its attributes yet.
    shared: Arc<Shared>,
}

impl AmnesiaGuard {
    fn new(server: &Server, cfg: &ServerConfig) -> AmnesiaGuard {
        let (cluster, me) = server.ids();
        let members = server.members();
        let mut peer_urls: Vec<String> = cfg
            .initial_members
            .iter()
            .filter(|m| m.name != cfg.name)
            .flat_map(|m| m.peer_urls.clone())
            .collect();
        for m in members.iter().filter(|m| m.id != me) {
            for u in &m.peer_urls {
                if !peer_urls.contains(u) {
                    peer_urls.push(u.clone());
                }
            }
        }
        let voters = members.iter().filter(|m| !m.is_learner).count();
        AmnesiaGuard {
            me,
            cluster,
            name: cfg.name.clone(),
            data_dir: cfg.data_dir.clone(),
            own_urls: server.identity().peer_urls,
            peer_urls,
            tls: cfg.peer_tls.clone(),
            voters: voters.max(cfg.initial_members.len()).max(1),
            shared: server.shared.clone(),
        }
    }

    /// One round of questions (blocking).
    fn check(&self) -> Verdict {
        let mut blank = 1; // itself
        for url in &self.peer_urls {
            let Some(addr) = PeerAddr::parse(url) else {
                continue;
            };
            let Ok(body) = transport::query_cluster(&addr, &self.tls, JOIN_QUERY_TIMEOUT) else {
                continue;
            };
            let Ok(info) =
                <ferret_proto::ferretpb::ClusterInfo as ferret_proto::Message>::decode(&body[..])
            else {
                continue;
            };
            if info.cluster_id != self.cluster || info.format != entry::CLUSTER_INFO_FORMAT {
                continue;
            }
            let membership =
                crate::membership::Membership::from_proto(&info.membership.unwrap_or_default());
            // Known as started before this start published anything: in
            // an earlier life, whose data is gone.
            if membership.get(self.me).is_some_and(|m| m.is_started())
                && !self.shared.publishing.load(Ordering::Acquire)
            {
                return Verdict::Refuse(lost_data_message(
                    self.me,
                    &self.name,
                    &self.own_urls,
                    &self.data_dir,
                    url,
                ));
            }
            if info.commit_index <= info.bootstrap_entries {
                blank += 1;
            }
        }
        if blank > self.voters / 2 {
            Verdict::Verified
        } else {
            Verdict::Wait
        }
    }

    /// Asks until the member is verified (by its peers, or by its own
    /// publication) or refused.
    async fn run(self, server: Server) {
        while server.shared.unverified.load(Ordering::Acquire) {
            tokio::time::sleep(AMNESIA_CHECK_INTERVAL).await;
            let g = self.clone();
            match tokio::task::spawn_blocking(move || g.check()).await {
                Ok(Verdict::Verified) => {
                    let _ = server.send(Input::Verified);
                    return;
                }
                Ok(Verdict::Refuse(why)) => {
                    tracing::error!("{why}");
                    std::process::exit(1);
                }
                Ok(Verdict::Wait) | Err(_) => {}
            }
        }
    }
}

/// Why a member that lost its data may not rejoin as it was, and how it
/// can come back.
fn lost_data_message(
    id: u64,
    name: &str,
    urls: &[String],
    data_dir: &std::path::Path,
    asked: &str,
) -> String {
    format!(
        "member {id:x} ({name}) has lost its data: its data dir {} was empty at start, but the \
         cluster (asked at {asked}) knows it as a started member. Rejoining as it was could \
         lose acknowledged writes, so it does not start. To bring it back: remove it \
         (etcdctl member remove {id:x}), add it again (etcdctl member add {name} \
         --peer-urls={}), empty {} and start it with --initial-cluster-state existing",
        data_dir.display(),
        urls.join(","),
        data_dir.display()
    )
}

/// How long a joining member waits for each peer's answer.
const JOIN_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A member started with `--initial-cluster-state existing` and an empty
/// data dir: asks the other members of `--initial-cluster` for the
/// cluster (etcd's `GetClusterFromRemotePeers`) and finds itself in it by
/// its peer URLs (etcd's `ValidateClusterAndAssignIDs`): its id is the
/// one `member add` gave it. Answers the WAL metadata to start with (no
/// initial members: the leader's log or snapshot brings the
/// configuration) and the members to stream to.
fn join_running_cluster(cfg: &ServerConfig) -> Result<(WalMetadata, raft_node::Peers), StartError> {
    let mut own: Vec<String> = cfg
        .initial_members
        .iter()
        .filter(|m| m.name == cfg.name)
        .flat_map(|m| m.peer_urls.clone())
        .collect();
    own.sort();
    let remote: Vec<String> = cfg
        .initial_members
        .iter()
        .filter(|m| m.name != cfg.name)
        .flat_map(|m| m.peer_urls.clone())
        .collect();
    let mut errors = Vec::new();
    for url in &remote {
        let Some(addr) = PeerAddr::parse(url) else {
            continue;
        };
        let body = match transport::query_cluster(&addr, &cfg.peer_tls, JOIN_QUERY_TIMEOUT) {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{url}: {e}"));
                continue;
            }
        };
        let info =
            match <ferret_proto::ferretpb::ClusterInfo as ferret_proto::Message>::decode(&body[..])
            {
                Ok(i) if i.format == entry::CLUSTER_INFO_FORMAT => i,
                Ok(i) => {
                    errors.push(format!("{url}: an answer in format {:?}", i.format));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{url}: {e}"));
                    continue;
                }
            };
        let membership =
            crate::membership::Membership::from_proto(&info.membership.unwrap_or_default());
        let me = membership.members().into_iter().find(|m| {
            let mut urls = m.peer_urls.clone();
            urls.sort();
            urls == own
        });
        let Some(me) = me else {
            return Err(StartError::CannotJoin(format!(
                "--initial-cluster-state existing: the cluster {:x} (asked at {url}) has no                  member with this member's peer URLs {own:?}; add it first (etcdctl member                  add {} --peer-urls={})",
                info.cluster_id,
                cfg.name,
                own.join(",")
            )));
        };
        if me.is_started() {
            return Err(StartError::LostData(lost_data_message(
                me.id,
                &cfg.name,
                &own,
                &cfg.data_dir,
                url,
            )));
        }
        tracing::info!(
            member_id = %format!("{:x}", me.id),
            cluster_id = %format!("{:x}", info.cluster_id),
            asked = %url,
            "found this member in the running cluster"
        );
        let peers = membership
            .members()
            .into_iter()
            .map(|m| (m.id, m.peer_urls))
            .collect();
        return Ok((
            WalMetadata {
                member_id: me.id,
                cluster_id: info.cluster_id,
                members: Vec::new(),
            },
            peers,
        ));
    }
    Err(StartError::CannotJoin(format!(
        "--initial-cluster-state existing: could not retrieve the cluster from any of the          other members of --initial-cluster ({})",
        if errors.is_empty() {
            "none given".to_string()
        } else {
            errors.join("; ")
        }
    )))
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
        auth_token_ttl: cfg.v3.auth_token_ttl,
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

/// etcd's `etcd_server_proposals_pending`: one for each proposal waiting
/// for its outcome, however the wait ends (answered, timed out, or the
/// caller gone).
struct PendingProposal;

impl PendingProposal {
    fn new() -> PendingProposal {
        ferret_metrics::get().proposals_pending.inc();
        PendingProposal
    }
}

impl Drop for PendingProposal {
    fn drop(&mut self) {
        ferret_metrics::get().proposals_pending.dec();
    }
}
