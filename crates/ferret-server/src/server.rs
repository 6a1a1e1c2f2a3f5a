//! The handle the API layers use on a running member.
//!
//! The HTTP layer never touches the store directly for writes: it builds a
//! [`Command`], [`Server::propose`]s it and waits for the outcome, which
//! arrives only after the entry is committed (durable on a quorum) and
//! applied. Local reads take the state lock briefly; linearizable reads
//! first pass [`Server::read_barrier`] (Raft ReadIndex); watches register a
//! sink in the store's hub.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::apply::{Command, Outcome, StateMachines};
use crate::clock::now_ns;
use crate::inbox::{self, InboxSender, QueueError};
use crate::raft_node::{self, InitialMember, Input, NodeConfig, StartError, WalMetadata};
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
}

/// Inputs waiting for the Ready loop. Bounded so a flood of requests is
/// refused ("too many requests") instead of growing memory; 16384 is a few
/// Ready rounds of work.
const INBOX_CAPACITY: usize = 16384;

/// A cheap, cloneable handle on a running member.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    inbox: InboxSender<Input>,
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
        let shared = Arc::new(Shared {
            state: RwLock::new(StateMachines::new()),
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
        Ok(Server { shared, inbox: tx })
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

    /// Orders `cmd` through the log and returns what applying it produced.
    pub async fn propose(&self, cmd: Command) -> Result<(Outcome, LogPosition), ServerError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::Propose { cmd, reply })?;
        match tokio::time::timeout(self.shared.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
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
