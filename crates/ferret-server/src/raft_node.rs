//! The Raft member: one thread running the Ready loop.
//!
//! Everything that changes the replicated state passes through
//! [`RaftNode::on_ready`], in this order, each step for a reason:
//!
//! 1. **Send the messages that need no local write**: the leader's appends
//!    and heartbeats go out before it writes the same entries to its own
//!    log, so replication overlaps the leader's fsync (Raft thesis §10.2.1).
//!    A `MsgSnapshot` never goes on a message stream: a snapshot-sender
//!    thread streams it, with the v2 store and the v3 backend, on a
//!    connection of its own (`crate::snapshot_stream`), and reports the
//!    outcome through the inbox once the follower acknowledged it.
//! 2. **Install a snapshot** sent by the leader, before any entry after it.
//!    Its v3 backend arrived first: the receiver thread wrote and indexed
//!    it, and the loop keeps it (by snapshot index) from the moment it
//!    steps the snapshot's message into raft-rs. The backend is installed
//!    first (renamed over the member's own and swapped in; the v3 applier
//!    then skips entries up to the copy's consistent index, which may be
//!    past the snapshot), then the v2 store is restored, then the snapshot
//!    file is saved and the WAL marked. A snapshot whose backend did not
//!    arrive is never installed (the member stops: nothing is lost, the
//!    leader has it all).
//! 3. **Apply entries committed earlier**: they are durable on a quorum
//!    already, so they need not wait for this round's fsync.
//! 4. **Persist new entries and the hard state**: all of them appended to
//!    the WAL, then one fsync (group commit: every proposal that arrived
//!    since the last round shares it).
//! 5. **Send the messages that must follow the write**: votes and a
//!    follower's acknowledgements promise that the entries are on disk.
//! 6. **Advance**: raft-rs then reports what our own write committed (on a
//!    single member, or when we were the last vote needed); apply it.
//!
//! A write is answered in step 3 or 6, when its entry is applied, which is
//! after it is durable on a quorum. Nothing is acknowledged earlier.
//!
//! Between rounds the loop handles what the network and the inbox bring:
//! raft messages (stepped), lease queries from followers (answered at once
//! from the lessor, when this member leads: `crate::peer_request`), its
//! own clients' lease queries for the leader (forwarded on the stream to
//! the leader, and answered when the leader's answer comes back), received
//! snapshots (kept, and their message stepped), and what the background
//! threads report. Nothing here waits for the disk or for another member:
//! sending and receiving snapshots, writing snapshot files and flushing
//! the v3 backend happen on threads of their own.

// raft-rs messages are rust-protobuf structs, built field by field as
// raft-rs's own examples do.
#![allow(clippy::field_reassign_with_default)]
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferret_mvcc::{Mvcc, Prepared};
use ferret_proto::etcdserverpb::{InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest};
use ferret_v2store::Write;
use ferret_wal::{EntryRecord, HardState as WalHardState, Wal};
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, MessageType,
    Snapshot, SnapshotMetadata,
};
use raft::{RawNode, SnapshotStatus, StateRole};
use tokio::sync::oneshot;

use crate::apply::{Applied, RestoreError};
use crate::clock::now_ns;
use crate::entry::{self, WalMetadata};
use crate::inbox::{Inbox, InboxSender};
use crate::membership::{Change, Member, RaftChange};
use crate::peer_request::{self, LeaderAnswer, LeaderQuery, PeerAnswer, PeerRequest};
use crate::purge::Purger;
use crate::raft_log::RaftLog;
use crate::shared::{LogPosition, ServerError, Shared};
use crate::snapshot_stream::{self, Received};
use crate::transport::{NetEvent, PeerNet, FRAME_PEER_ANSWER, FRAME_PEER_REQUEST};

/// An entry whose apply took longer counts in `etcd_server_slow_apply_total`
/// (etcd's default `--experimental-warning-apply-duration`, a flag
/// ferretcd refuses).
const SLOW_APPLY: Duration = Duration::from_millis(100);

/// What the Ready loop's inbox carries.
pub enum Input {
    /// An encoded entry (see [`crate::entry`]) with its proposal id.
    Propose {
        id: u64,
        data: Vec<u8>,
        reply: Reply,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
    /// A configuration change, with its proposal id; the reply is the
    /// members once it is applied, or why it did not stand.
    ProposeConfChange {
        id: u64,
        change: Change,
        reply: ConfReply,
    },
    /// Whether learner `id` caught up with the leader (etcd's
    /// `isLearnerReady`): only the leader knows; `NotLeader` elsewhere.
    LearnerReady {
        id: u64,
        reply: oneshot::Sender<Result<bool, ServerError>>,
    },
    /// The peers confirmed that this new member's cluster is new too
    /// (see `crate::server`'s amnesia guard): it may vote from now on.
    Verified,
    /// A snapshot file written by the background writer (or why not).
    SnapshotSaved {
        index: u64,
        term: u64,
        conf_state: ConfState,
        result: Result<(), String>,
    },
    /// A lease query for the leader, from a client of this member (a
    /// follower): sent on the stream to the leader; the reply is the
    /// leader's answer, or "retry" if it cannot be asked now.
    Forward {
        query: LeaderQuery,
        reply: ForwardReply,
    },
    /// A snapshot sender finished: `ok` once the follower acknowledged
    /// that it wrote everything.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    /// A snapshot receiver finished (its thread deleted what it wrote if
    /// it failed).
    SnapshotReceived(Result<Box<Received>, String>),
    /// A member vouched that `id`, at `peer_urls`, is one of the cluster's
    /// members (this member has not applied its addition yet): this member
    /// streams with it from now on, both ways.
    Vouched {
        id: u64,
        peer_urls: Vec<String>,
    },
    /// Hand leadership to member `to` (etcd's MoveLeader): raft-rs sends it
    /// what it lacks, then asks it to campaign at once. Ignored unless this
    /// member leads.
    TransferLeader {
        to: u64,
    },
    Stop,
}

pub type Reply = oneshot::Sender<Outcome>;

/// What a proposal's reply carries: what applying it produced, and where in
/// the log it was.
pub type Outcome = Result<(Applied, LogPosition), ServerError>;
pub type ForwardReply = oneshot::Sender<Result<LeaderAnswer, ServerError>>;
/// What a configuration change's reply carries: the members after it.
pub type ConfReply = oneshot::Sender<Result<(Vec<Member>, LogPosition), ServerError>>;
type ReadReply = oneshot::Sender<Result<(), ServerError>>;

/// Inputs handled before one Ready round; bounds the latency a burst adds
/// to the round and the size of one group commit.
const MAX_INPUTS_PER_READY: usize = 4096;

/// Entries kept after a snapshot so a follower slightly behind catches up
/// from the log instead of a whole snapshot (etcd keeps 5000).
const SNAPSHOT_CATCH_UP_ENTRIES: u64 = 5000;

/// A batch of reads whose read index has not come back after this is
/// asked for again (etcd's readIndexRetryTime).
const READ_INDEX_RETRY: Duration = Duration::from_millis(500);

/// After the leader's process is gone, the first follower (by id)
/// campaigns after this, each next one this much later, if no leader
/// came meanwhile: time for the others to learn it too (their own
/// reconnection is refused within a backoff step).
const FAILOVER_FIRST: Duration = Duration::from_millis(20);
const FAILOVER_STEP: Duration = Duration::from_millis(100);

/// A member that applied its own removal stops after this many heartbeat
/// intervals, so the entry's commit reaches the others first (etcd waits
/// ten ticks).
const REMOVED_STOP_TICKS: u32 = 10;

/// etcd's `readyPercent`: a learner whose log matches at least this share
/// of the leader's may be promoted.
const LEARNER_READY_SHARE: f64 = 0.9;

/// Snapshot files kept on disk (etcd keeps 5).
const SNAPSHOTS_KEPT: usize = 5;

/// How long a leader waits before proposing a missing cluster version
/// again (etcd's `monitorVersionInterval`).
const VERSION_RETRY: Duration = Duration::from_secs(4);

/// How often housekeeping runs (publishing attributes, TTL expiry, dropping
/// waiters whose client gave up).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

/// Lease queries forwarded to the leader and not answered yet, at most
/// (all go to one peer, the leader); more are refused as "too many
/// requests". An answer takes one round trip, so this is thousands of
/// keep-alives per round trip, far beyond what the client side sends.
const MAX_FORWARDS_IN_FLIGHT: usize = 4096;

/// A refused stranger (see `ask_about_stranger`) is asked about at most
/// this often, at most this many at a time, with this timeout per peer.
const STRANGER_ASK_EVERY: Duration = Duration::from_secs(5);
const MAX_STRANGERS_ASKED: usize = 16;
const STRANGER_ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// A lease whose checkpoint the leader proposed to clear (so a follower's
/// keep-alive can renew it) is not proposed again for this long: the
/// asker retries every few tens of milliseconds meanwhile.
const CHECKPOINT_CLEAR_INTERVAL: Duration = Duration::from_secs(1);
/// Leases remembered for that, at most (beyond, clearing is proposed
/// again on every retry, which is harmless).
const MAX_CHECKPOINT_CLEARS: usize = 4096;

/// The file a snapshot's v3 backend is received into, next to the
/// member's backend (which it replaces when installed).
pub fn received_backend_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("v3").join("backend.redb.recv")
}

/// Members to stream to: id and peer URLs.
pub type Peers = Vec<(u64, Vec<String>)>;

/// Everything the Ready loop needs to start.
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// The WAL's directory: `<data-dir>/member/wal`, or `--wal-dir`.
    pub wal_dir: PathBuf,
    /// `--unsafe-no-fsync` (see `ferret_wal::Wal::set_unsafe_no_fsync`).
    pub unsafe_no_fsync: bool,
    pub heartbeat: Duration,
    pub election_ticks: usize,
    pub snapshot_count: u64,
    pub name: String,
    pub client_urls: Vec<String>,
    /// How long a new leader extends every lease (etcd: the election
    /// timeout).
    pub lease_extend: Duration,
    /// A member joining a running cluster: the members it was told of.
    pub join_peers: Peers,
    /// `--force-new-cluster`: on a restart, this member alone becomes the
    /// cluster, with its data.
    pub force_new_cluster: bool,
    /// Its own peer URLs (for `--force-new-cluster` of a member the
    /// configuration somehow lacks).
    pub peer_urls: Vec<String>,
}

/// A lease query sent to the leader, waiting for its answer.
struct Forward {
    /// The leader it was sent to: only its answer counts.
    to: u64,
    query: LeaderQuery,
    reply: ForwardReply,
}

/// A snapshot coming from the leader.
enum Receive {
    Idle,
    /// A receiver thread reads a snapshot stream (one at a time: a second
    /// stream is refused, and its sender reports a failure).
    Receiving,
    /// Received whole and stepped into raft-rs, which took it: installed
    /// when its Ready carries the snapshot at this index and term.
    Held {
        index: u64,
        term: u64,
        prepared: Box<Prepared>,
    },
}

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("write-ahead log: {0}")]
    Wal(#[from] ferret_wal::WalError),
    #[error("cannot read the write-ahead log: {0}")]
    Metadata(String),
    #[error("the v3 backend: {0}")]
    Backend(String),
    #[error("snapshot {0}")]
    Snapshot(String),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("cannot listen for peers on {addr}: {error}")]
    PeerListen { addr: String, error: std::io::Error },
    #[error("peer network: {0}")]
    PeerNet(std::io::Error),
    #[error("cannot start the raft thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    CannotJoin(String),
    /// The amnesia guard: a member that lost its data may not rejoin as it
    /// was.
    #[error("{0}")]
    LostData(String),
}

pub struct RaftNode {
    node: RawNode<RaftLog>,
    wal: Wal,
    snap_dir: PathBuf,
    inbox: Inbox<Input>,
    net: PeerNet,
    shared: Arc<Shared>,
    member_id: u64,
    heartbeat: Duration,
    snapshot_count: u64,
    /// Index of the newest snapshot taken or installed.
    snapshot_index: u64,
    /// A snapshot being written by the background writer, if any.
    snapshot_in_flight: Option<u64>,
    /// Deletes the WAL segments and frees the log entries a snapshot made
    /// obsolete (see `on_snapshot_saved`).
    purger: Purger,
    /// For the background snapshot writer to report back.
    inbox_tx: InboxSender<Input>,
    /// Ids of read batches (ReadIndex contexts), never reused while it runs.
    next_read_id: u64,
    /// Clients waiting for their entry to be applied, by proposal id.
    waiters: HashMap<u64, Reply>,
    /// Proposals raft-rs refused for want of a leader; proposed again once
    /// there is one (their clients still wait, within their timeout).
    stalled: Vec<(u64, Vec<u8>)>,
    /// Configuration changes waiting to be applied, by proposal id.
    conf_waiters: HashMap<u64, ConfReply>,
    /// Configuration changes proposed while there was no leader.
    stalled_conf: Vec<(u64, ConfChange)>,
    /// Set when this member applied its own removal: when it stops.
    removed_at: Option<Instant>,
    /// Started with an empty data dir and not verified yet: it neither
    /// votes nor campaigns (see [`RaftNode::verify`]).
    unverified: bool,
    /// Its marker file.
    marker: PathBuf,
    /// The leader whose process is gone, and when this member campaigns
    /// if no other leader came by then (see `on_peer_gone`).
    failover: Option<(u64, Instant)>,
    /// How many entries bootstrapped this member's log (its initial
    /// members; 0 for a member that joined).
    bootstrap_entries: u64,
    /// Batches of reads waiting for their read index, by request id, with
    /// when it was last asked for.
    reads_pending: HashMap<u64, (Instant, Vec<ReadReply>)>,
    /// Reads that arrived since the last round: they will share one
    /// ReadIndex request (one heartbeat round to a quorum), as etcd batches
    /// its linearizable reads, instead of one each.
    reads_next: Vec<ReadReply>,
    /// Reads whose read index is known, waiting for it to be applied.
    reads_ready: Vec<(u64, ReadReply)>,
    name: String,
    client_urls: Vec<String>,
    /// The proposal id of this start's attribute publication, once applied.
    published: bool,
    publish_attempt: Option<(u64, Instant)>,
    /// When this leader last proposed the cluster version, which it does
    /// again only after [`VERSION_RETRY`] if the cluster still has none:
    /// proposing it every round would write it twice whenever the first
    /// proposal takes a round to apply (a slow disk), and shift every
    /// index after it.
    version_proposed: Option<Instant>,
    /// Whether `enabled capabilities for version` was logged (once per
    /// start, as etcd's).
    capabilities_logged: bool,
    last_housekeeping: Instant,
    /// When the last heartbeat to each follower left, to time its response.
    heartbeat_sent: HashMap<u64, Instant>,
    /// Ids whose refused streams made this member ask its peers about
    /// them, and when (asked at most every [`STRANGER_ASK_EVERY`]).
    strangers_asked: HashMap<u64, Instant>,
    /// The v3 store, for the leader's lease duties and snapshots.
    mvcc: Arc<Mvcc>,
    lease_extend: Duration,
    /// Whether this member led at the end of the last round.
    leading: bool,
    /// Lease queries forwarded to the leader, by request id (at most
    /// [`MAX_FORWARDS_IN_FLIGHT`]).
    forwards: HashMap<u64, Forward>,
    next_forward_id: u64,
    /// Leases whose checkpoint clearing this leader proposed, and when.
    checkpoint_clears: HashMap<i64, Instant>,
    /// Peers a snapshot-sender thread is sending a snapshot to.
    snapshot_senders: HashSet<u64>,
    /// The snapshot being received, or received and not installed yet.
    receive: Receive,
    /// Where a received backend is written ([`received_backend_path`]).
    recv_path: PathBuf,
    /// Network events made by the loop itself (a snapshot that could not
    /// be sent), handled at the start of the next round: raft-rs must not
    /// hear of them between `ready()` and `advance()`.
    deferred: Vec<NetEvent>,
}

fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

/// Forwards raft-rs's log lines to `tracing`, with their key-value pairs
/// (`term=2 raft_id=1`) in one `raft` field: the term, indexes and peers
/// an operator reads a Raft line for (`--log-level debug`).
struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        // Built only when the line is written: tracing evaluates a field's
        // value after its level check.
        let kv = || raft_kv(record, values);
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", raft = %kv(), "{}", record.msg())
            }
            slog::Level::Warning => {
                tracing::warn!(target: "raft", raft = %kv(), "{}", record.msg())
            }
            slog::Level::Info => tracing::info!(target: "raft", raft = %kv(), "{}", record.msg()),
            _ => tracing::debug!(target: "raft", raft = %kv(), "{}", record.msg()),
        }
        Ok(())
    }
}

/// A raft-rs line's key-value pairs, the record's then the logger's, as
/// `key=value` separated by spaces.
fn raft_kv(record: &slog::Record, values: &slog::OwnedKVList) -> String {
    use slog::KV;
    struct Pairs(String);
    impl slog::Serializer for Pairs {
        fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
            use std::fmt::Write;
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{key}={val}");
            Ok(())
        }
    }
    let mut pairs = Pairs(String::new());
    let _ = record.kv().serialize(record, &mut pairs);
    let _ = values.serialize(record, &mut pairs);
    pairs.0
}

/// The marker of a member that started with an empty data dir and is not
/// verified yet (see [`RaftNode::verify`]): created before its WAL, so a
/// crash in between leaves a member that is still unverified.
pub fn unverified_marker(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("unverified")
}

/// Creates the marker durably: the file, then its directory entry.
fn create_marker(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path)?.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn snap_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("member").join("snap")
}

/// The bootstrap entries of a new cluster: one configuration change
/// adding each initial member, in id order, at term 1, as etcd bootstraps
/// (applying them records the members). Every member writes identical
/// entries, and a member that joins later replays them from the leader.
fn bootstrap_entries(meta: &WalMetadata) -> Vec<Entry> {
    let mut members = meta.members.clone();
    members.sort_by_key(|m| m.id);
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let change = Change::Add(Member {
                id: m.id,
                peer_urls: m.peer_urls.clone(),
                ..Default::default()
            });
            let mut e = Entry::default();
            e.index = i as u64 + 1;
            e.term = 1;
            e.set_entry_type(EntryType::EntryConfChange);
            e.data = conf_change(0, &change)
                .write_to_bytes()
                .unwrap_or_default()
                .into();
            e
        })
        .collect()
}

/// The raft-rs `ConfChange` that carries `change`, with proposal id `id`.
pub(crate) fn conf_change(id: u64, change: &Change) -> ConfChange {
    let (kind, context) = change.encode();
    let mut cc = ConfChange::default();
    cc.id = id;
    cc.node_id = change.id();
    cc.set_change_type(match kind {
        RaftChange::AddNode | RaftChange::UpdateNode => ConfChangeType::AddNode,
        RaftChange::AddLearnerNode => ConfChangeType::AddLearnerNode,
        RaftChange::RemoveNode => ConfChangeType::RemoveNode,
    });
    cc.context = context.into();
    cc
}

/// The change a `ConfChange` entry carries.
fn decode_conf_change(data: &[u8]) -> Result<(ConfChange, Change), String> {
    let cc = ConfChange::parse_from_bytes(data).map_err(|e| e.to_string())?;
    let kind = match cc.get_change_type() {
        ConfChangeType::AddNode => RaftChange::AddNode,
        ConfChangeType::AddLearnerNode => RaftChange::AddLearnerNode,
        ConfChangeType::RemoveNode => RaftChange::RemoveNode,
    };
    let change = Change::decode(kind, cc.node_id, &cc.context)?;
    Ok((cc, change))
}

/// `--force-new-cluster`, as etcd's `restartAsStandaloneNode`: the
/// entries after the commit index are dropped; configuration changes that
/// remove every other member (and add this one if the configuration lacks
/// it) are appended at the commit index's term and committed at once, in
/// the WAL before anything runs. Applying them leaves this member alone in
/// the membership and in raft's configuration, with all its data; it then
/// elects itself.
fn force_new_cluster(
    log: &mut RaftLog,
    wal: &mut Wal,
    entries: &[Entry],
    me: u64,
    cfg: &NodeConfig,
) -> Result<(), StartError> {
    let mut hs = log.hard_state().clone();
    let commit = hs.commit;
    let cs = log.conf_state();
    let mut ids: std::collections::BTreeSet<u64> =
        cs.voters.iter().chain(&cs.learners).copied().collect();
    for e in entries.iter().filter(|e| e.index <= commit) {
        if e.get_entry_type() != EntryType::EntryConfChange {
            continue;
        }
        match decode_conf_change(&e.data) {
            Ok((_, Change::Add(m))) => {
                ids.insert(m.id);
            }
            Ok((_, Change::Remove(id))) => {
                ids.remove(&id);
            }
            _ => {}
        }
    }
    let mut changes = Vec::new();
    if !ids.contains(&me) {
        changes.push(Change::Add(Member {
            id: me,
            peer_urls: cfg.peer_urls.clone(),
            ..Default::default()
        }));
    }
    changes.extend(
        ids.iter()
            .filter(|&&id| id != me)
            .map(|&id| Change::Remove(id)),
    );
    let forced: Vec<Entry> = changes
        .iter()
        .enumerate()
        .map(|(i, change)| {
            let mut e = Entry::default();
            e.index = commit + 1 + i as u64;
            e.term = hs.term;
            e.set_entry_type(EntryType::EntryConfChange);
            e.data = conf_change(0, change)
                .write_to_bytes()
                .unwrap_or_default()
                .into();
            e
        })
        .collect();
    let dropped = entries.iter().filter(|e| e.index > commit).count();
    if let Some(last) = forced.last() {
        log.append(&forced);
        wal.append(&forced.iter().map(to_wal).collect::<Vec<_>>())?;
        hs.commit = last.index;
    }
    wal.set_hard_state(&WalHardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
    })?;
    wal.sync()?;
    log.set_hard_state(hs);
    tracing::warn!(
        commit_index = commit,
        discarded_uncommitted_entries = dropped,
        removed = ?ids.iter().filter(|&&id| id != me).map(|id| format!("{id:x}")).collect::<Vec<_>>(),
        "--force-new-cluster: forcing a restart of this member as a cluster of its own"
    );
    Ok(())
}

/// Whether this member's own attributes were published: in the snapshot
/// restored, or by an entry of the log.
fn published_before(shared: &Shared, me: u64, entries: &[Entry]) -> bool {
    if shared
        .state()
        .membership
        .get(me)
        .is_some_and(|m| m.is_started())
    {
        return true;
    }
    let path = format!("/0/members/{me:x}/attributes");
    entries.iter().any(|e| {
        e.get_entry_type() == EntryType::EntryNormal
            && entry::decode(&e.data)
                .ok()
                .and_then(|r| r.v2)
                .is_some_and(|v2| v2.path.as_deref() == Some(path.as_bytes()))
    })
}

fn remove_marker(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete the unverified marker")
        }
    }
}

fn to_wal(e: &Entry) -> EntryRecord {
    EntryRecord {
        index: e.index,
        term: e.term,
        kind: e.get_entry_type() as u8,
        data: e.data.to_vec(),
    }
}

fn from_wal(r: &EntryRecord) -> Entry {
    let mut e = Entry::default();
    e.index = r.index;
    e.term = r.term;
    e.set_entry_type(match r.kind {
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => EntryType::EntryNormal,
    });
    e.data = r.data.clone().into();
    e
}

fn conf_state(meta: &WalMetadata) -> ConfState {
    let mut cs = ConfState::default();
    cs.voters = meta.members.iter().map(|m| m.id).collect();
    cs
}

/// Opens (or creates) the member's data directory and returns the node,
/// ready to run, with its state machines restored.
pub fn start(
    cfg: NodeConfig,
    new_cluster: WalMetadata,
    shared: Arc<Shared>,
    inbox: Inbox<Input>,
    inbox_tx: InboxSender<Input>,
    make_net: impl FnOnce(&WalMetadata, &[(u64, Vec<String>)]) -> std::io::Result<PeerNet>,
) -> Result<(RaftNode, WalMetadata), StartError> {
    let wal_path = cfg.wal_dir.clone();
    let snap_path = snap_dir(&cfg.data_dir);
    std::fs::create_dir_all(&snap_path).map_err(|e| StartError::Snapshot(e.to_string()))?;
    // A backend being received when the member stopped: nothing refers
    // to it (it is renamed over the member's backend only when installed),
    // and the leader sends the snapshot again.
    let recv_path = received_backend_path(&cfg.data_dir);
    match std::fs::remove_file(&recv_path) {
        Ok(()) => tracing::warn!(
            path = %recv_path.display(),
            "deleted a snapshot backend whose receive was interrupted"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StartError::Backend(format!("{}: {e}", recv_path.display()))),
    }
    let mut log;
    let wal;
    let meta: WalMetadata;
    let mut applied = 0;
    let mut snapshot_index = 0;
    if Wal::exists(&wal_path) {
        let (mut w, rec) = Wal::open(&wal_path)?;
        meta = entry::decode_wal_metadata(&rec.metadata)
            .map_err(|e| StartError::Metadata(format!("{}: {e}", wal_path.display())))?;
        log = RaftLog::new(conf_state(&meta));
        if let Some((index, term, data)) = ferret_wal::snap::load_newest(&snap_path)? {
            let restored_conf = shared
                .state_mut()
                .restore(index, &data)
                .map_err(|e| match e {
                    RestoreError::Backend(e) => StartError::Backend(e),
                    e => StartError::Snapshot(format!("at index {index}: {e}")),
                })?;
            let mut snap = SnapshotMetadata::default();
            snap.index = index;
            snap.term = term;
            // Snapshots of builds before runtime membership carry none:
            // their configuration was the initial one.
            snap.set_conf_state(restored_conf.unwrap_or_else(|| conf_state(&meta)));
            log.apply_snapshot(snap);
            applied = index;
            snapshot_index = index;
            tracing::info!(index, term, "restored the state from a snapshot");
        }
        let entries: Vec<Entry> = rec
            .entries
            .iter()
            .filter(|r| r.index > snapshot_index)
            .map(from_wal)
            .collect();
        if let Some(first) = entries.first() {
            if first.index > snapshot_index + 1 {
                return Err(StartError::Metadata(format!(
                    "the write-ahead log starts at entry {} but the newest snapshot ends at {}",
                    first.index, snapshot_index
                )));
            }
        }
        log.append(&entries);
        let marker = unverified_marker(&cfg.data_dir);
        if marker.exists() && published_before(&shared, meta.member_id, &entries) {
            // It published itself in an earlier life of this data dir: its
            // data is its own.
            remove_marker(&marker);
        }
        if let Some(hs) = rec.hard_state {
            let mut h = HardState::default();
            h.term = hs.term;
            h.vote = hs.vote;
            h.commit = hs.commit.max(snapshot_index);
            log.set_hard_state(h);
        }
        tracing::info!(
            member_id = %format!("{:x}", meta.member_id),
            entries = entries.len(),
            commit = log.hard_state().commit,
            "restarted from the write-ahead log; bootstrap flags are ignored"
        );
        if cfg.force_new_cluster {
            force_new_cluster(&mut log, &mut w, &entries, meta.member_id, &cfg)?;
            remove_marker(&unverified_marker(&cfg.data_dir));
        }
        if cfg.unsafe_no_fsync {
            w.set_unsafe_no_fsync();
        }
        wal = w;
    } else {
        // A new member: of a new cluster (its first entries add the
        // initial members), or joining a running one (`new_cluster` holds
        // no members then: the log the leader sends, or its snapshot,
        // brings the configuration).
        meta = new_cluster;
        if meta.members.len() != 1 {
            // A member with peers whose data dir is empty: it may be one
            // that lost its data. It votes only once verified.
            create_marker(&unverified_marker(&cfg.data_dir))
                .map_err(|e| StartError::Snapshot(format!("the unverified marker: {e}")))?;
        }
        let metadata = entry::encode_wal_metadata(&meta);
        let mut w = Wal::create(&wal_path, &metadata)?;
        let entries = bootstrap_entries(&meta);
        let mut hs = HardState::default();
        hs.term = if entries.is_empty() { 0 } else { 1 };
        hs.commit = entries.len() as u64;
        w.append(&entries.iter().map(to_wal).collect::<Vec<_>>())?;
        w.set_hard_state(&WalHardState {
            term: hs.term,
            vote: 0,
            commit: hs.commit,
        })?;
        w.sync()?;
        log = RaftLog::new(conf_state(&meta));
        log.append(&entries);
        log.set_hard_state(hs);
        if cfg.unsafe_no_fsync {
            w.set_unsafe_no_fsync();
        }
        wal = w;
        if meta.members.is_empty() {
            tracing::info!(
                member_id = %format!("{:x}", meta.member_id),
                cluster_id = %format!("{:x}", meta.cluster_id),
                "joining a running cluster"
            );
        } else {
            tracing::info!(
                member_id = %format!("{:x}", meta.member_id),
                cluster_id = %format!("{:x}", meta.cluster_id),
                members = meta.members.len(),
                "bootstrapped a new cluster"
            );
        }
    }
    let raft_cfg = raft::Config {
        id: meta.member_id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: 1,
        applied,
        // Batches of appends per message and in flight per follower:
        // pipelining without unbounded memory.
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    raft_cfg.validate()?;
    let node = RawNode::new(&raft_cfg, log, &logger())?;
    // The peers to stream to: the initial members, the members of the
    // snapshot restored, and those a joining member was told of; applying
    // the log adds and removes them from here on.
    let mut peers: HashMap<u64, Vec<String>> = HashMap::new();
    for m in &meta.members {
        peers.insert(m.id, m.peer_urls.clone());
    }
    for m in shared.state().membership.members() {
        peers.insert(m.id, m.peer_urls);
    }
    for (id, urls) in &cfg.join_peers {
        peers.insert(*id, urls.clone());
    }
    let mut peers: Vec<(u64, Vec<String>)> = peers.into_iter().collect();
    peers.sort_by_key(|p| p.0);
    let net = make_net(&meta, &peers).map_err(StartError::PeerNet)?;
    let mvcc = shared.state().v3.store().clone();
    let unverified = unverified_marker(&cfg.data_dir).exists();
    shared.unverified.store(unverified, Ordering::Release);
    if unverified {
        tracing::warn!(
            "this member started with an empty data dir: it will not vote until its peers \
             confirm the cluster is new, or until it has caught up and published itself"
        );
    }
    let learner = shared
        .state()
        .membership
        .get(meta.member_id)
        .is_some_and(|m| m.is_learner);
    shared.is_learner.store(learner, Ordering::Release);
    shared
        .commit_index
        .store(node.store().hard_state().commit, Ordering::Release);
    let rn = RaftNode {
        node,
        wal,
        snap_dir: snap_path,
        inbox,
        net,
        shared,
        member_id: meta.member_id,
        heartbeat: cfg.heartbeat,
        snapshot_count: cfg.snapshot_count.max(1),
        snapshot_index,
        snapshot_in_flight: None,
        purger: Purger::start().map_err(StartError::Thread)?,
        inbox_tx,
        next_read_id: 1,
        waiters: HashMap::new(),
        stalled: Vec::new(),
        conf_waiters: HashMap::new(),
        stalled_conf: Vec::new(),
        removed_at: None,
        unverified,
        marker: unverified_marker(&cfg.data_dir),
        failover: None,
        bootstrap_entries: meta.members.len() as u64,
        reads_pending: HashMap::new(),
        reads_next: Vec::new(),
        reads_ready: Vec::new(),
        name: cfg.name,
        client_urls: cfg.client_urls,
        published: false,
        publish_attempt: None,
        version_proposed: None,
        capabilities_logged: false,
        last_housekeeping: Instant::now(),
        heartbeat_sent: HashMap::new(),
        strangers_asked: HashMap::new(),
        mvcc,
        lease_extend: cfg.lease_extend,
        leading: false,
        forwards: HashMap::new(),
        next_forward_id: 1,
        checkpoint_clears: HashMap::new(),
        snapshot_senders: HashSet::new(),
        receive: Receive::Idle,
        recv_path,
        deferred: Vec::new(),
    };
    Ok((rn, meta))
}

impl RaftNode {
    /// Runs the loop until a `Stop` input or until every sender is gone.
    pub fn run(mut self, single_member: bool) {
        if single_member {
            // Alone, there is nobody to wait for: lead at once rather than
            // after an election timeout.
            if let Err(e) = self.node.campaign() {
                tracing::warn!(error = %e, "could not campaign");
            }
        }
        let mut next_tick = Instant::now() + self.heartbeat;
        let mut events = Vec::new();
        'run: loop {
            // Sleep until peer traffic, an input or the next tick; the
            // network does its ready socket work before returning.
            let mut wait = if self.deferred.is_empty() {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Some((_, at)) = self.failover {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            self.net.wait(wait, &mut self.inbox, &mut events);
            events.append(&mut self.deferred);
            for event in events.drain(..) {
                self.on_net(event);
            }
            for _ in 0..MAX_INPUTS_PER_READY {
                match self.inbox.try_recv() {
                    Some(input) => {
                        if !self.handle(input) {
                            break 'run;
                        }
                    }
                    None => break,
                }
            }
            if self.inbox.disconnected() {
                break 'run;
            }
            let now = Instant::now();
            if now >= next_tick {
                // An unverified member never campaigns: its election
                // timer does not run. A removed member's raft is done: it
                // only waits to stop (see `on_net`).
                if self.removed_at.is_none()
                    && (!self.unverified || self.node.raft.state == StateRole::Leader)
                {
                    self.node.tick();
                }
                next_tick += self.heartbeat;
                if next_tick < now {
                    next_tick = now + self.heartbeat;
                }
            }
            self.maybe_failover();
            if now.duration_since(self.last_housekeeping) >= HOUSEKEEPING_INTERVAL {
                self.last_housekeeping = now;
                self.housekeeping();
            }
            if !self.reads_next.is_empty() {
                let batch = std::mem::take(&mut self.reads_next);
                let id = self.next_read_id;
                self.next_read_id += 1;
                self.reads_pending.insert(id, (Instant::now(), batch));
                self.node.read_index(read_ctx(self.member_id, id));
            }
            self.on_ready();
            if self
                .removed_at
                .is_some_and(|at| at.elapsed() >= self.heartbeat * REMOVED_STOP_TICKS)
            {
                self.stop_removed();
            }
        }
        // Everything acknowledged is synced already; this makes the last
        // hard state durable too.
        if let Err(e) = self.wal.sync() {
            tracing::error!(error = %e, "final write-ahead log sync failed");
        }
        self.purger.stop();
        tracing::info!("raft loop stopped");
    }

    /// A peer's port refused a connection. If the peer is the leader, its
    /// process is gone (a slow, paused or partitioned leader does not
    /// refuse; it is left to the election timeout, as before): there is
    /// no lease to respect any more, so this follower forgets it at once
    /// (it will grant pre-votes and votes), and the voters campaign in id
    /// order, [`FAILOVER_FIRST`] and then [`FAILOVER_STEP`] apart, each
    /// only if no leader came meanwhile. PreVote and the log comparison
    /// are unchanged: a candidate without every committed entry still
    /// loses. etcd waits out its election timeout instead.
    fn on_peer_gone(&mut self, id: u64) {
        let raft = &mut self.node.raft;
        if id == 0
            || id != raft.leader_id
            || raft.state != StateRole::Follower
            || self.unverified
            || self.failover.is_some_and(|(dead, _)| dead == id)
        {
            return;
        }
        let voters: Vec<u64> = {
            let mut v: Vec<u64> = raft.prs().conf().voters().ids().iter().collect();
            v.sort_unstable();
            v.retain(|&v| v != id);
            v
        };
        let Some(rank) = voters.iter().position(|&v| v == self.member_id) else {
            return;
        };
        raft.election_elapsed = raft.election_elapsed.max(raft.election_timeout());
        let at = Instant::now() + FAILOVER_FIRST + FAILOVER_STEP * rank as u32;
        self.failover = Some((id, at));
        tracing::warn!(
            leader = %format!("{id:x}"),
            rank,
            "the leader's process is gone (its peer port refuses connections); electing another now"
        );
    }

    /// Campaigns if this member's failover turn came and no leader did.
    fn maybe_failover(&mut self) {
        let Some((dead, at)) = self.failover else {
            return;
        };
        let raft = &self.node.raft;
        if raft.leader_id != 0 && raft.leader_id != dead {
            self.failover = None;
            return;
        }
        if Instant::now() < at {
            return;
        }
        self.failover = None;
        if raft.state == StateRole::Follower || raft.state == StateRole::PreCandidate {
            if let Err(e) = self.node.campaign() {
                tracing::warn!(error = %e, "could not campaign");
            }
        }
    }

    /// The amnesia guard lifts: a member that started with an empty data
    /// dir is a full member once its peers confirmed that the cluster is
    /// new (no member holds committed data), or once it has caught up from
    /// a leader and its own publication is applied. Until then it neither
    /// votes nor campaigns: had it lost its data, its vote could elect a
    /// member lacking writes it had acknowledged.
    fn verify(&mut self, why: &str) {
        if !self.unverified {
            return;
        }
        self.unverified = false;
        self.shared.unverified.store(false, Ordering::Release);
        remove_marker(&self.marker);
        tracing::info!(reason = why, "this member may vote");
    }

    /// This member applied its own removal and waited for the others to
    /// learn it was committed: it stops for good, as etcd's does.
    fn stop_removed(&mut self) -> ! {
        if let Err(e) = self.wal.sync() {
            tracing::error!(error = %e, "final write-ahead log sync failed");
        }
        if let Err(e) = self.mvcc.flush() {
            tracing::error!(error = %e, "final v3 backend commit failed");
        }
        exit_removed();
    }

    /// Handles one input; `false` means stop.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Propose { id, data, reply } => {
                self.waiters.insert(id, reply);
                self.propose(id, data);
            }
            Input::ReadIndex { reply } => self.reads_next.push(reply),
            Input::ProposeConfChange { id, change, reply } => {
                self.conf_waiters.insert(id, reply);
                self.propose_conf(id, conf_change(id, &change));
            }
            Input::LearnerReady { id, reply } => {
                let _ = reply.send(self.learner_ready(id));
            }
            Input::Verified => self.verify("its peers confirmed the cluster is new"),
            Input::SnapshotSaved {
                index,
                term,
                conf_state,
                result,
            } => self.on_snapshot_saved(index, term, conf_state, result),
            Input::Forward { query, reply } => self.forward(query, reply),
            Input::SnapshotSent { to, ok } => {
                self.snapshot_senders.remove(&to);
                self.on_net(NetEvent::SnapshotSent { to, ok });
            }
            Input::SnapshotReceived(result) => self.on_snapshot_received(result),
            Input::TransferLeader { to } => {
                tracing::info!(
                    transferee = %crate::ids::format_id(to),
                    "leadership transfer starting"
                );
                self.node.transfer_leader(to);
            }
            Input::Vouched { id, peer_urls } => {
                tracing::info!(member = %format!("{id:x}"), "a member vouched for a member this member has not applied yet: its streams are admitted");
                self.net.add_peer(id, &peer_urls);
            }
            Input::Stop => return false,
        }
        true
    }

    /// Handles what the peer network reports.
    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Step(m) => {
                if self.removed_at.is_some() {
                    // This member applied its own removal (kept out of its
                    // raft, see `apply_conf_entry`): it takes no part any
                    // longer; the others elect a leader among themselves.
                    tracing::debug!(from = %format!("{:x}", m.from), "message dropped: this member was removed");
                    return;
                }
                if self.unverified
                    && matches!(
                        m.get_msg_type(),
                        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
                    )
                {
                    // Not unless verified: it may have forgotten a vote or
                    // an acknowledged entry (no answer is a lost message).
                    tracing::debug!(from = %format!("{:x}", m.from), "vote request ignored: not verified");
                    return;
                }
                if m.get_msg_type() == MessageType::MsgHeartbeatResponse {
                    if let Some(sent) = self.heartbeat_sent.remove(&m.from) {
                        let rtt = sent.elapsed().as_secs_f64();
                        self.shared.follower(m.from, |f| f.record_rtt(rtt * 1000.0));
                        if let Some(p) = ferret_metrics::peers::peer(m.from) {
                            p.round_trip(rtt);
                        }
                    }
                }
                if let Err(e) = self.node.step(m) {
                    tracing::debug!(error = %e, "raft refused a message");
                }
            }
            NetEvent::SnapshotSent { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.node.report_snapshot(to, status);
            }
            NetEvent::Refused(id) => self.on_peer_gone(id),
            NetEvent::Stranger(id) => self.ask_about_stranger(id),
            NetEvent::Unreachable(id) => {
                self.shared.follower(id, |f| f.fail += 1);
                if let Some(p) = ferret_metrics::peers::peer(id) {
                    p.send_failed();
                }
                self.node.report_unreachable(id);
                // Requests on a broken stream may be lost: ask again.
                self.fail_forwards(|to| to == id);
            }
            NetEvent::PeerRequest { from, request } => self.answer_peer(from, request),
            NetEvent::PeerAnswer { from, answer } => match self.forwards.remove(&answer.id) {
                Some(f) if f.to == from && answer.answer.fits(&f.query) => {
                    let _ = f.reply.send(Ok(answer.answer));
                }
                // Ids are ours: an answer from another member, or one
                // that does not fit the question, is a bug somewhere; the
                // asker asks again.
                Some(f) => {
                    tracing::warn!(
                        from = %format!("{from:x}"),
                        asked = %format!("{:x}", f.to),
                        query = ?f.query,
                        answer = ?answer.answer,
                        "a peer answer that does not fit its request dropped"
                    );
                    let _ = f.reply.send(Ok(LeaderAnswer::Retry));
                }
                // Its asker gave up (timed out) already.
                None => {}
            },
            NetEvent::ClusterQuery(stream) => {
                let info = ferret_proto::ferretpb::ClusterInfo {
                    format: entry::CLUSTER_INFO_FORMAT.into(),
                    cluster_id: self.net.cluster_id(),
                    membership: Some(self.shared.state().membership.to_proto()),
                    commit_index: self.node.raft.raft_log.committed,
                    bootstrap_entries: self.bootstrap_entries,
                    unverified: self.unverified,
                };
                let body = ferret_proto::Message::encode_to_vec(&info);
                let spawned = std::thread::Builder::new()
                    .name("cluster-query".into())
                    .spawn(move || {
                        if let Err(e) = crate::transport::answer_cluster_query(stream, &body) {
                            tracing::debug!(error = %e, "could not answer a cluster query");
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "could not answer a cluster query");
                }
            }
            NetEvent::SnapshotStream {
                from,
                stream,
                buffered,
            } => self.receive_snapshot(from, stream, buffered),
        }
    }

    /// A stream from `id`, not a member as this member applied the
    /// membership, was refused. If this member lags behind the member's
    /// addition (and `id` may lead now), the others have applied it: ask
    /// them, off the loop, and admit `id` if one says it is a member.
    fn ask_about_stranger(&mut self, id: u64) {
        let now = Instant::now();
        self.strangers_asked
            .retain(|_, at| now.duration_since(*at) < STRANGER_ASK_EVERY);
        if self.strangers_asked.len() >= MAX_STRANGERS_ASKED
            || self.strangers_asked.contains_key(&id)
        {
            return;
        }
        self.strangers_asked.insert(id, now);
        let addrs: Vec<crate::peer_tls::PeerAddr> = self
            .net
            .peers()
            .into_iter()
            .flat_map(|p| self.net.peer_addrs(p))
            .collect();
        let cluster_id = self.net.cluster_id();
        let tls = self.net.tls().clone();
        let tx = self.inbox_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("stranger-check".into())
            .spawn(move || {
                for addr in addrs {
                    let Ok(body) =
                        crate::transport::query_cluster(&addr, &tls, STRANGER_ASK_TIMEOUT)
                    else {
                        continue;
                    };
                    let Ok(info) =
                        <ferret_proto::ferretpb::ClusterInfo as ferret_proto::Message>::decode(
                            &body[..],
                        )
                    else {
                        continue;
                    };
                    if info.format != entry::CLUSTER_INFO_FORMAT || info.cluster_id != cluster_id {
                        continue;
                    }
                    let membership = crate::membership::Membership::from_proto(
                        &info.membership.unwrap_or_default(),
                    );
                    if let Some(m) = membership.members().into_iter().find(|m| m.id == id) {
                        let _ = tx.send(Input::Vouched {
                            id,
                            peer_urls: m.peer_urls,
                        });
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not ask the peers about a stranger");
        }
    }

    /// A lease query from a client of this member, for the leader.
    fn forward(&mut self, query: LeaderQuery, reply: ForwardReply) {
        let leader = self.node.raft.leader_id;
        if leader == 0 || leader == self.member_id {
            // No leader to ask, or this member leads now and its handle
            // answers from the lessor itself: the handle asks again.
            let _ = reply.send(Ok(LeaderAnswer::Retry));
            return;
        }
        if self.forwards.len() >= MAX_FORWARDS_IN_FLIGHT {
            let _ = reply.send(Err(ServerError::TooManyRequests));
            return;
        }
        let id = self.next_forward_id;
        self.next_forward_id += 1;
        let request = PeerRequest { id, query };
        if self
            .net
            .send_peer(leader, FRAME_PEER_REQUEST, |b| request.encode_into(b))
        {
            self.forwards.insert(
                id,
                Forward {
                    to: leader,
                    query: request.query,
                    reply,
                },
            );
        } else {
            // Not connected to the leader (yet): the network reports it
            // unreachable; the handle asks again in a moment.
            let _ = reply.send(Ok(LeaderAnswer::Retry));
        }
    }

    /// Answers "retry" to the forwarded queries sent to members `lost`
    /// selects: their stream broke, or another member leads now.
    fn fail_forwards(&mut self, lost: impl Fn(u64) -> bool) {
        let ids: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| lost(f.to))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(f) = self.forwards.remove(&id) {
                let _ = f.reply.send(Ok(LeaderAnswer::Retry));
            }
        }
    }

    /// A follower's lease query: answered at once from the lessor if this
    /// member leads (etcd's leader answers its `leasehttp` handler the
    /// same way), else "not leader". An answer that cannot be queued (the
    /// stream to the asker is down) is dropped: the asker asks again.
    fn answer_peer(&mut self, from: u64, request: PeerRequest) {
        let answer = if self.node.raft.state != StateRole::Leader {
            LeaderAnswer::NotLeader
        } else if let LeaderQuery::LearnerReady(id) = request.query {
            LeaderAnswer::LearnerReady(self.learner_ready(id).unwrap_or(false))
        } else {
            let (answer, clear) = {
                let mut le = self.mvcc.lessor();
                peer_request::answer(
                    &mut le,
                    &request.query,
                    Instant::now(),
                    peer_request::MAX_ANSWER_BYTES,
                )
            };
            if let Some(id) = clear {
                self.clear_checkpoint(id);
            }
            answer
        };
        let reply = PeerAnswer {
            id: request.id,
            answer,
        };
        self.net
            .send_peer(from, FRAME_PEER_ANSWER, |b| reply.encode_into(b));
    }

    /// Proposes clearing a lease's checkpointed remaining TTL, so that a
    /// keep-alive can renew it (etcd's lessor proposes the same), unless
    /// that was proposed just now.
    fn clear_checkpoint(&mut self, id: i64) {
        let now = Instant::now();
        if let Some(at) = self.checkpoint_clears.get(&id) {
            if now.duration_since(*at) < CHECKPOINT_CLEAR_INTERVAL {
                return;
            }
        }
        if self.checkpoint_clears.len() < MAX_CHECKPOINT_CLEARS
            || self.checkpoint_clears.contains_key(&id)
        {
            self.checkpoint_clears.insert(id, now);
        }
        self.propose_internal(InternalRaftRequest {
            lease_checkpoint: Some(LeaseCheckpointRequest {
                checkpoints: vec![LeaseCheckpoint {
                    id,
                    remaining_ttl: 0,
                }],
            }),
            ..Default::default()
        });
    }

    /// raft-rs wants a snapshot sent to a follower: a thread of its own
    /// streams it (one per peer at a time) and reports through the inbox.
    fn send_snapshot(&mut self, msg: Message) {
        let to = msg.to;
        if self.snapshot_senders.contains(&to) {
            // raft-rs sends a peer one snapshot until it hears how it
            // went; a second one while the first is on its way (after a
            // change of term) waits for the first to finish.
            self.deferred.push(NetEvent::SnapshotSent { to, ok: false });
            return;
        }
        let index = msg.get_snapshot().get_metadata().index;
        let job = snapshot_stream::Outgoing {
            msg,
            addrs: self.net.peer_addrs(to),
            tls: self.net.tls().clone(),
            cluster_id: self.net.cluster_id(),
            self_id: self.member_id,
            snap_dir: self.snap_dir.clone(),
            mvcc: self.mvcc.clone(),
        };
        let tx = self.inbox_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-send".into())
            .spawn(move || {
                let started = Instant::now();
                let to_hex = format!("{to:x}");
                let ok = match snapshot_stream::send(job) {
                    Ok(sent) => {
                        tracing::info!(
                            to = %to_hex,
                            index,
                            consistent_index = sent.consistent_index,
                            frames = sent.frames,
                            bytes = sent.bytes,
                            backend_chunks = sent.backend_chunks,
                            took_ms = started.elapsed().as_millis() as u64,
                            "sent a snapshot"
                        );
                        true
                    }
                    Err(e) => {
                        tracing::warn!(to = %to_hex, index, error = %e, "could not send a snapshot");
                        false
                    }
                };
                // Blocking send: raft-rs must hear of it (it sends this
                // peer nothing else until then).
                let _ = tx.send(Input::SnapshotSent { to, ok });
            });
        match spawned {
            Ok(_) => {
                self.snapshot_senders.insert(to);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start a snapshot sender");
                self.deferred.push(NetEvent::SnapshotSent { to, ok: false });
            }
        }
    }

    /// A peer opened a snapshot stream: a receiver thread reads it, unless
    /// a snapshot is being received or waits to be installed (then the
    /// stream is closed, and its sender reports a failure to raft-rs,
    /// which tries again later).
    fn receive_snapshot(
        &mut self,
        from: u64,
        stream: crate::peer_tls::PeerSocket,
        buffered: Vec<u8>,
    ) {
        if !matches!(self.receive, Receive::Idle) {
            tracing::info!(
                from = %format!("{from:x}"),
                "refused a snapshot stream: another snapshot is being received"
            );
            return;
        }
        let path = self.recv_path.clone();
        let self_id = self.member_id;
        let cfg = self.mvcc.config();
        let (min_ttl, checkpoint_interval) = (cfg.min_lease_ttl, cfg.lease_checkpoint_interval);
        let tx = self.inbox_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-recv".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    snapshot_stream::receive(
                        stream,
                        buffered,
                        from,
                        self_id,
                        &path,
                        min_ttl,
                        checkpoint_interval,
                    )
                    .map(Box::new)
                }))
                .unwrap_or_else(|_| {
                    let _ = std::fs::remove_file(&path);
                    Err("the snapshot receiver panicked".into())
                });
                // Blocking send: the loop must learn the receive is over.
                let _ = tx.send(Input::SnapshotReceived(result));
            });
        match spawned {
            Ok(_) => self.receive = Receive::Receiving,
            Err(e) => tracing::warn!(error = %e, "could not start a snapshot receiver"),
        }
    }

    /// A snapshot arrived whole (backend written, checked, indexed, and
    /// acknowledged to the leader): keep the backend and step the message
    /// into raft-rs. If raft-rs does not take it (it is not newer than
    /// what this member has committed, or matches its log), drop it.
    fn on_snapshot_received(&mut self, result: Result<Box<Received>, String>) {
        let r = match result {
            Ok(r) => *r,
            Err(e) => {
                tracing::warn!(error = %e, "a snapshot stream failed");
                self.receive = Receive::Idle;
                return;
            }
        };
        let meta = r.msg.get_snapshot().get_metadata();
        let (index, term) = (meta.index, meta.term);
        tracing::info!(
            from = %format!("{:x}", r.msg.from),
            index,
            term,
            consistent_index = r.prepared.restored().consistent_index,
            bytes = r.bytes,
            "received a snapshot"
        );
        self.receive = Receive::Held {
            index,
            term,
            prepared: Box::new(r.prepared),
        };
        if let Err(e) = self.node.step(r.msg) {
            tracing::debug!(error = %e, "raft refused a snapshot");
        }
        let taken = self
            .node
            .raft
            .raft_log
            .unstable_snapshot()
            .as_ref()
            .is_some_and(|s| s.get_metadata().index == index && s.get_metadata().term == term);
        if !taken {
            tracing::info!(index, term, "raft-rs did not need the received snapshot");
            self.discard_received();
        }
    }

    /// Drops a received backend that will not be installed, and its file.
    fn discard_received(&mut self) {
        if let Receive::Held { prepared, .. } = std::mem::replace(&mut self.receive, Receive::Idle)
        {
            drop(prepared);
            if let Err(e) = std::fs::remove_file(&self.recv_path) {
                tracing::warn!(path = %self.recv_path.display(), error = %e, "cannot delete a received backend");
            }
        }
    }

    fn propose(&mut self, id: u64, data: Vec<u8>) {
        if self.node.raft.leader_id == 0 {
            // No leader to forward to (an election is under way): keep it
            // and try again when there is one.
            self.stalled.push((id, data));
            return;
        }
        if let Err(e) = self.node.propose(Vec::new(), data) {
            // raft-rs refused it with a leader known (a leadership transfer
            // under way): it was not appended, so saying so is exact.
            tracing::debug!(error = %e, "proposal dropped");
            if let Some(w) = self.waiters.remove(&id) {
                let _ = w.send(Err(ServerError::ProposalDropped));
            }
        }
    }

    /// Proposes a configuration change. raft-rs takes one at a time: one
    /// proposed while another is not applied yet becomes an empty entry,
    /// and its client waits out its timeout, as etcd's does.
    fn propose_conf(&mut self, id: u64, cc: ConfChange) {
        if self.node.raft.leader_id == 0 {
            self.stalled_conf.push((id, cc));
            return;
        }
        if let Err(e) = self.node.propose_conf_change(Vec::new(), cc) {
            tracing::debug!(error = %e, "configuration change dropped");
            if let Some(w) = self.conf_waiters.remove(&id) {
                let _ = w.send(Err(ServerError::ProposalDropped));
            }
        }
    }

    /// etcd's `isLearnerReady`, on the leader: the learner's log matches
    /// at least [`LEARNER_READY_SHARE`] of the leader's. An id raft-rs does
    /// not track is "ready": applying the promotion says what it is.
    fn learner_ready(&self, id: u64) -> Result<bool, ServerError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ServerError::NotLeader);
        }
        let prs = self.node.raft.prs();
        let Some(learner) = prs.get(id) else {
            return Ok(true);
        };
        let leader = prs.get(self.member_id).map_or(0, |p| p.matched);
        Ok(learner.matched as f64 >= leader as f64 * LEARNER_READY_SHARE)
    }

    /// One Ready round; see the module documentation for the order.
    fn on_ready(&mut self) {
        if !self.node.has_ready() {
            return;
        }
        let mut rd = self.node.ready();
        let mut new_leader = None;
        if let Some(ss) = rd.ss() {
            let previous = self.shared.leader_id.swap(ss.leader_id, Ordering::AcqRel);
            if previous != ss.leader_id {
                self.shared
                    .leader_since_ns
                    .store(now_ns(), Ordering::Release);
                tracing::info!(leader = %format!("{:x}", ss.leader_id), "leader changed");
                // Queries sent to the old leader will not be answered.
                let leader = ss.leader_id;
                self.fail_forwards(|to| to != leader);
            }
            let leading = ss.raft_state == StateRole::Leader;
            self.shared.is_leader.store(leading, Ordering::Release);
            let metrics = ferret_metrics::get();
            metrics.has_leader.set(i64::from(ss.leader_id != 0));
            metrics.is_leader.set(i64::from(leading));
            if previous != ss.leader_id && ss.leader_id != 0 {
                // etcd counts a change to a known leader, not its loss.
                metrics.leader_changes_seen.inc();
            }
            if !leading {
                // Leases stop expiring here at once; a new leader promotes
                // only once it applied its first entry (below).
                self.on_role_change(false);
            }
            // Proposing is not allowed between ready() and advance(): note
            // the change and act on it at the end of the round.
            if previous != ss.leader_id && ss.leader_id != 0 {
                new_leader = Some(leading);
            }
        }
        // 1. Messages that may precede our own write.
        self.send(rd.take_messages());
        // 2. A snapshot from the leader.
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone());
        }
        // 3. Entries committed by earlier rounds.
        self.apply(rd.take_committed_entries());
        // 4. Persist entries and hard state, one fsync for all.
        if !rd.entries().is_empty() {
            let records: Vec<EntryRecord> = rd.entries().iter().map(to_wal).collect();
            fatal_on_err(self.wal.append(&records).map(|_| ()), "append");
            self.node.mut_store().append(rd.entries());
        }
        if let Some(hs) = rd.hs() {
            let whs = WalHardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            };
            fatal_on_err(self.wal.set_hard_state(&whs), "hard state");
            self.node.mut_store().set_hard_state(hs.clone());
            self.shared.commit_index.store(hs.commit, Ordering::Release);
            self.shared.term.store(hs.term, Ordering::Release);
        }
        // Sync when entries, the term or the vote changed (raft-rs's
        // must_sync, etcd's mustSync). A commit-index-only change stays
        // buffered until the next sync: the commit index is recomputed
        // after a restart, and followers see such a change every round,
        // so syncing it would double their fsyncs.
        if rd.must_sync() {
            fatal_on_err(self.wal.sync(), "sync");
        }
        // 5. Messages that promise the write is durable.
        self.send(rd.take_persisted_messages());
        for rs in rd.take_read_states() {
            if let Some(id) = read_id(self.member_id, &rs.request_ctx) {
                if let Some((_, batch)) = self.reads_pending.remove(&id) {
                    self.reads_ready
                        .extend(batch.into_iter().map(|reply| (rs.index, reply)));
                }
            }
        }
        // 6. Advance; apply what our own write committed.
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.node.store().hard_state().clone();
            hs.commit = commit;
            self.node.mut_store().set_hard_state(hs);
            self.shared.commit_index.store(commit, Ordering::Release);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        self.release_reads();
        self.maybe_snapshot();
        if let Some(leading) = new_leader {
            self.on_new_leader(leading);
        }
    }

    fn send(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut stream = Vec::with_capacity(msgs.len());
        for m in msgs {
            match m.get_msg_type() {
                MessageType::MsgSnapshot => {
                    self.send_snapshot(m);
                    continue;
                }
                MessageType::MsgHeartbeat => {
                    self.heartbeat_sent.entry(m.to).or_insert(now);
                }
                _ => {}
            }
            stream.push(m);
        }
        self.net.send(stream);
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut answered = Vec::new();
        let mut conf_answers = Vec::new();
        let mut first_of_term = false;
        {
            let shared = self.shared.clone();
            let mut state = shared.state_mut();
            for e in &entries {
                if e.index <= state.applied_index {
                    continue;
                }
                if e.get_entry_type() == EntryType::EntryNormal && e.data.is_empty() {
                    // A leader's first entry of its term: everything from
                    // earlier terms is applied now.
                    first_of_term = true;
                }
                if e.get_entry_type() == EntryType::EntryConfChange {
                    conf_answers.extend(self.apply_conf_entry(&mut state, e));
                    continue;
                }
                let decoded = match e.get_entry_type() {
                    EntryType::EntryNormal if !e.data.is_empty() => match entry::decode(&e.data) {
                        Ok(req) => Some(req),
                        Err(err) => {
                            // Every member holds the same bytes, so every
                            // member skips it alike.
                            tracing::error!(index = e.index, error = %err, "undecodable log entry skipped");
                            None
                        }
                    },
                    _ => None,
                };
                match decoded {
                    None => state.skip_to(e.index),
                    Some(req) => {
                        let started = Instant::now();
                        let outcome = state.apply(e.index, &req);
                        if started.elapsed() > SLOW_APPLY {
                            ferret_metrics::get().slow_apply.inc();
                        }
                        if let Applied::Invalid(why) = &outcome {
                            tracing::error!(index = e.index, error = %why, "log entry skipped");
                        }
                        // Ids carry the proposing member's id, so only the
                        // proposer finds a waiter.
                        let id = entry::id_of(&req);
                        if id != 0 {
                            if self.publish_attempt.is_some_and(|(p, _)| p == id) {
                                self.published = true;
                                self.log_published();
                                self.shared.ready.send_replace(true);
                            }
                            if let Some(w) = self.waiters.remove(&id) {
                                answered.push((w, outcome));
                            }
                        }
                    }
                }
            }
        }
        if self.unverified
            && self
                .shared
                .state()
                .membership
                .get(self.member_id)
                .is_some_and(|m| m.is_started())
        {
            self.verify("it caught up and published itself");
        }
        if !self.capabilities_logged {
            self.log_capabilities();
        }
        if first_of_term && self.node.raft.state == StateRole::Leader {
            // As etcd: lease expiry starts once the new leader applied all
            // entries of earlier terms (revocations the old leader proposed
            // included).
            self.on_role_change(true);
        }
        let pos = LogPosition {
            commit_index: self.shared.commit_index.load(Ordering::Acquire),
            term: self.node.raft.term,
        };
        for (w, outcome) in answered {
            let _ = w.send(Ok((outcome, pos)));
        }
        for (w, outcome) in conf_answers {
            let _ = w.send(outcome.map(|members| (members, pos)));
        }
    }

    /// Applies a configuration change entry: to the membership (which
    /// decides whether it stands, alike on every member), then, if it
    /// does, to raft-rs and to the peer network. Returns the waiting
    /// client's reply and its answer, if the change is this member's.
    fn apply_conf_entry(
        &mut self,
        state: &mut crate::apply::StateMachines,
        e: &Entry,
    ) -> Option<(ConfReply, Result<Vec<Member>, ServerError>)> {
        let (cc, change) = match decode_conf_change(&e.data) {
            Ok(c) => c,
            Err(err) => {
                // Every member holds the same bytes and skips it alike.
                tracing::error!(index = e.index, error = %err, "undecodable configuration change skipped");
                state.skip_to(e.index);
                return None;
            }
        };
        let outcome = state.apply_conf_change(e.index, &change);
        match &outcome {
            Ok(_) => {
                // This member's own removal stays out of raft-rs: a leader
                // without progress for itself panics in raft-rs when it
                // next counts a write, its own included (on_persist_entries
                // and maybe_commit unwrap it), and the entries of this very
                // Ready are persisted after they are applied. The member
                // takes no part any more (see `on_net` and the tick) and
                // stops; the others apply the removal to their raft.
                let self_removal = matches!(change, Change::Remove(id) if id == self.member_id);
                if !matches!(change, Change::Update { .. }) && !self_removal {
                    match self.node.apply_conf_change(&cc) {
                        Ok(cs) => self.node.mut_store().set_conf_state(cs),
                        Err(err) => {
                            tracing::error!(index = e.index, error = %err, "raft refused a configuration change")
                        }
                    }
                }
                match &change {
                    Change::Add(m) => self.net.add_peer(m.id, &m.peer_urls),
                    Change::Update { id, peer_urls } => self.net.add_peer(*id, peer_urls),
                    Change::Remove(id) if *id == self.member_id => {
                        tracing::warn!(
                            index = e.index,
                            "this member was removed from the cluster; stopping"
                        );
                        self.removed_at = Some(Instant::now());
                    }
                    Change::Remove(id) => self.net.remove_peer(*id),
                    Change::Promote(_) => {}
                }
                let learner = state
                    .membership
                    .get(self.member_id)
                    .is_some_and(|m| m.is_learner);
                self.shared.is_learner.store(learner, Ordering::Release);
                tracing::info!(
                    index = e.index,
                    change = %change,
                    "applied a configuration change"
                );
            }
            Err(err) => {
                tracing::info!(index = e.index, change = %change, error = %err, "a configuration change did not stand");
            }
        }
        let w = self.conf_waiters.remove(&cc.id)?;
        Some((w, outcome.map_err(ServerError::Member)))
    }

    fn release_reads(&mut self) {
        if self.reads_ready.is_empty() {
            return;
        }
        let applied = self.shared.state().applied_index;
        let mut i = 0;
        while i < self.reads_ready.len() {
            if self.reads_ready[i].0 <= applied {
                let (_, reply) = self.reads_ready.swap_remove(i);
                let _ = reply.send(Ok(()));
            } else {
                i += 1;
            }
        }
    }

    /// Installs a snapshot raft-rs took from the leader: the v3 backend
    /// received with it first, then the v2 store; the caller's step 2.
    fn install_snapshot(&mut self, snap: Snapshot) {
        let meta = snap.get_metadata().clone();
        let prepared = match std::mem::replace(&mut self.receive, Receive::Idle) {
            Receive::Held {
                index,
                term,
                prepared,
            } if index == meta.index && term == meta.term => prepared,
            other => {
                // raft-rs gets snapshots only from the snapshot stream,
                // with their backend: this cannot happen. Stopping is
                // safe (the leader has it all); installing the v2 store
                // with a stale v3 store is not.
                let held = match &other {
                    Receive::Held { index, .. } => Some(*index),
                    _ => None,
                };
                tracing::error!(
                    index = meta.index,
                    held = ?held,
                    "a snapshot from the leader arrived without the v3 backend it needs; stopping"
                );
                std::process::exit(1);
            }
        };
        // The state machines install it (the received backend first);
        // any failure stops the member: the leader still has it all.
        let installed = self
            .shared
            .state_mut()
            .install(meta.index, &snap.data, *prepared);
        let restored = match installed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(index = meta.index, error = %e, "cannot install a snapshot from the leader; stopping");
                std::process::exit(1);
            }
        };
        // The snapshot file first, then the WAL marker: a crash between the
        // two leaves a snapshot the WAL does not yet point past, which is
        // harmless.
        fatal_on_err(
            ferret_wal::snap::save_snapshot(&self.snap_dir, meta.index, meta.term, &snap.data),
            "snapshot save",
        );
        fatal_on_err(
            self.wal.mark_snapshot(meta.index, meta.term),
            "snapshot mark",
        );
        fatal_on_err(self.wal.sync(), "sync");
        self.node.mut_store().apply_snapshot(meta.clone());
        self.snapshot_index = meta.index;
        self.sync_peers();
        self.shared
            .commit_index
            .fetch_max(meta.index, Ordering::AcqRel);
        tracing::info!(
            index = meta.index,
            term = meta.term,
            consistent_index = restored.consistent_index,
            revision = restored.current_rev,
            keys = restored.keys,
            leases = restored.leases,
            "installed a snapshot from the leader"
        );
    }

    /// Streams to exactly the members the membership names (after a
    /// snapshot replaced it).
    fn sync_peers(&mut self) {
        let members = self.shared.state().membership.members();
        let learner = members
            .iter()
            .any(|m| m.id == self.member_id && m.is_learner);
        self.shared.is_learner.store(learner, Ordering::Release);
        for id in self.net.peers() {
            if !members.iter().any(|m| m.id == id) {
                self.net.remove_peer(id);
            }
        }
        for m in &members {
            self.net.add_peer(m.id, &m.peer_urls);
        }
    }

    /// Every `snapshot_count` applied entries: snapshot the state machines,
    /// compact the in-memory log and release WAL segments.
    fn maybe_snapshot(&mut self) {
        let applied = self.shared.state().applied_index;
        // A member added since the newest snapshot needs one that names it.
        let wanted =
            self.node.store().take_fresh_snapshot_wanted() && applied > self.snapshot_index;
        if self.snapshot_in_flight.is_some()
            || (applied < self.snapshot_index + self.snapshot_count && !wanted)
        {
            return;
        }
        let Some(term) = self.node.store().term_of(applied) else {
            return;
        };
        // A view of the state machines, taken in O(1) between two
        // applies (the v2 tree is shared copy-on-write), so the loop goes
        // on at once. Encoding it, writing and fsyncing the file run on a
        // thread of their own.
        let view = self.shared.state().snapshot_view();
        // raft's configuration at the same index: every configuration
        // change applied so far, and none after.
        let conf_state = self.node.raft.prs().conf().to_conf_state();
        self.snapshot_in_flight = Some(applied);
        let dir = self.snap_dir.clone();
        let tx = self.inbox_tx.clone();
        let mvcc = self.mvcc.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                // The v3 backend first: once the WAL points past this
                // snapshot, the entries before it are gone, so the backend
                // must hold them all (its consistent index >= `applied`).
                let data = view.encode(&conf_state);
                let result = mvcc.flush().map_err(|e| e.to_string()).and_then(|()| {
                    ferret_wal::snap::save_snapshot(&dir, applied, term, &data)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
                // Blocking send: the loop must learn the outcome, and it
                // drains its inbox continuously.
                drop(data);
                let _ = tx.send(Input::SnapshotSaved {
                    index: applied,
                    term,
                    conf_state,
                    result,
                });
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the snapshot writer");
            self.snapshot_in_flight = None;
        }
    }

    /// The snapshot file is durable: only now may the WAL point past it,
    /// the in-memory log be compacted and old segments go.
    fn on_snapshot_saved(
        &mut self,
        index: u64,
        term: u64,
        conf_state: ConfState,
        result: Result<(), String>,
    ) {
        self.snapshot_in_flight = None;
        if let Err(e) = result {
            // Nothing depends on the file yet; the next trigger retries.
            tracing::warn!(index, error = %e, "could not save a snapshot");
            return;
        }
        if index <= self.snapshot_index {
            // A leader's snapshot was installed meanwhile; this one is older.
            return;
        }
        fatal_on_err(self.wal.mark_snapshot(index, term), "snapshot mark");
        fatal_on_err(self.wal.sync(), "sync");
        let mut meta = SnapshotMetadata::default();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(conf_state);
        self.node.mut_store().set_snapshot(meta);
        let compact_to = index.saturating_sub(SNAPSHOT_CATCH_UP_ENTRIES);
        if compact_to > 1 {
            // Not in the loop: see `purge`.
            let entries = self.node.mut_store().compact_to(compact_to);
            match self.wal.detach_before(compact_to) {
                Ok(released) => self.purger.purge(entries, released),
                Err(e) => tracing::warn!(error = %e, "could not release old WAL segments"),
            }
        }
        if let Err(e) = ferret_wal::snap::purge(&self.snap_dir, SNAPSHOTS_KEPT) {
            tracing::warn!(error = %e, "could not purge old snapshots");
        }
        self.snapshot_index = index;
        tracing::info!(index, term, "saved a snapshot");
    }

    /// Periodic work: publish this member's attributes, propose TTL expiry
    /// and the cluster version as leader, retry stalled proposals and
    /// unanswered read indexes, forget clients that gave up.
    fn housekeeping(&mut self) {
        self.waiters.retain(|_, w| !w.is_closed());
        self.conf_waiters.retain(|_, w| !w.is_closed());
        self.forwards.retain(|_, f| !f.reply.is_closed());
        self.checkpoint_clears
            .retain(|_, at| at.elapsed() < CHECKPOINT_CLEAR_INTERVAL);
        self.reads_pending.retain(|_, (_, batch)| {
            batch.retain(|w| !w.is_closed());
            !batch.is_empty()
        });
        self.reads_ready.retain(|(_, w)| !w.is_closed());
        let has_leader = self.node.raft.leader_id != 0;
        if !has_leader {
            return;
        }
        // etcd retries an unanswered ReadIndex after 500 ms too.
        let overdue: Vec<u64> = self
            .reads_pending
            .iter()
            .filter(|(_, (asked, _))| asked.elapsed() >= READ_INDEX_RETRY)
            .map(|(id, _)| *id)
            .collect();
        self.ask_read_index_again(&overdue);
        for (id, cc) in std::mem::take(&mut self.stalled_conf) {
            if self.conf_waiters.contains_key(&id) {
                self.propose_conf(id, cc);
            }
        }
        if !self.stalled.is_empty() {
            let stalled = std::mem::take(&mut self.stalled);
            for (id, data) in stalled {
                if self.waiters.contains_key(&id) {
                    self.propose(id, data);
                }
            }
        }
        if !self.published {
            // Again after the request timeout, as etcd publishes: sooner,
            // a slow disk would see the attributes written twice.
            let due = self
                .publish_attempt
                .is_none_or(|(_, at)| at.elapsed() > self.shared.request_timeout);
            if due {
                self.publish_attributes();
            }
        }
        if self.node.raft.state == StateRole::Leader {
            if self
                .version_proposed
                .is_none_or(|at| at.elapsed() >= VERSION_RETRY)
            {
                self.propose_cluster_version();
            }
            let due = self.shared.state().due_proposals(now_ns(), Instant::now());
            for req in due {
                self.propose_internal(req);
            }
        }
    }

    /// Leadership came or went: only a leader tracks lease expiry. A new
    /// leader gives every lease its full TTL plus the election timeout
    /// (etcd 3.4's default), so no lease expires for want of a leader.
    fn on_role_change(&mut self, leading: bool) {
        if leading == self.leading {
            return;
        }
        self.leading = leading;
        let mut le = self.mvcc.lessor();
        if leading {
            le.promote(Instant::now(), self.lease_extend);
        } else {
            le.demote();
        }
    }

    /// Right when a leader is known: the leader sets the cluster version if
    /// the cluster has none, and a member not yet published publishes
    /// itself. Doing both at once, in this order, gives a new cluster the
    /// same first indexes as etcd's.
    fn on_new_leader(&mut self, leading: bool) {
        if leading {
            self.propose_cluster_version();
        }
        if !self.published {
            self.publish_attributes();
        }
        // Read requests waiting for a read index die with the leader that
        // was to answer them (raft-rs drops them on a step-down, a dead
        // leader never answers). Asking the new leader again is safe: a
        // read index from any leader is linearizable.
        let ids: Vec<u64> = self.reads_pending.keys().copied().collect();
        self.ask_read_index_again(&ids);
    }

    /// Asks for the read index of pending batches again. A batch's request
    /// or its answer can be lost (a peer stream breaks, a leader steps
    /// down); raft-rs does not retry, and the batch's reads would wait for
    /// their timeout. Asking again is safe: the answer is at least as new.
    fn ask_read_index_again(&mut self, ids: &[u64]) {
        let now = Instant::now();
        for id in ids {
            if let Some((asked, _)) = self.reads_pending.get_mut(id) {
                *asked = now;
                self.node.read_index(read_ctx(self.member_id, *id));
            }
        }
    }

    fn propose_internal(&mut self, req: InternalRaftRequest) -> u64 {
        let id = self.shared.ids.next();
        let data = entry::encode(&entry::with_id(req, id));
        if let Err(e) = self.node.propose(Vec::new(), data) {
            tracing::debug!(error = %e, "internal proposal dropped");
        }
        id
    }

    /// etcd's line once its attributes are applied, which tools and test
    /// harnesses wait for: zap's message and fields, and capnslog's
    /// `published {Name:.. ClientURLs:[..]} to cluster <id>` (in
    /// ferretcd's `capnslog_msg` field; see `ferretcd::logging`).
    fn log_published(&self) {
        let attributes = format!(
            "{{Name:{} ClientURLs:[{}]}}",
            self.name,
            self.client_urls.join(" ")
        );
        let cluster_id = crate::ids::format_id(self.net.cluster_id());
        // etcd publishes with its request timeout, and names it as Go
        // prints a duration (`7s`, `5.5s`).
        let timeout = self.shared.request_timeout.as_secs_f64();
        tracing::info!(
            local_member_id = %crate::ids::format_id(self.member_id),
            local_member_attributes = %attributes,
            request_path = %format!("/0/members/{:x}/attributes", self.member_id),
            cluster_id = %cluster_id,
            publish_timeout = %format!("{timeout}s"),
            capnslog_msg = %format!("published {attributes} to cluster {cluster_id}"),
            "published local member to cluster through raft"
        );
    }

    /// etcd's `enabled capabilities for version 3.4`, once the cluster
    /// version is known here (set by the leader, or restored at start).
    fn log_capabilities(&mut self) {
        let Some(version) = self.shared.state().cluster_version() else {
            return;
        };
        self.capabilities_logged = true;
        // etcd names the major and minor version only.
        let major_minor: String = version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        tracing::info!(
            cluster_version = %major_minor,
            capnslog_msg = %format!("enabled capabilities for version {major_minor}"),
            "enabled capabilities for version"
        );
    }

    /// The leader sets the cluster version if the cluster has none yet.
    fn propose_cluster_version(&mut self) {
        let version = self.shared.state().cluster_version_proposal(now_ns());
        if let Some(req) = version {
            self.propose_internal(req);
            self.version_proposed = Some(Instant::now());
        }
    }

    fn publish_attributes(&mut self) {
        // Before the proposal leaves: see the amnesia guard (`server`).
        self.shared.publishing.store(true, Ordering::Release);
        let value = serde_json::json!({"name": self.name, "clientURLs": self.client_urls});
        let cmd = internal_put(
            format!("/0/members/{:x}/attributes", self.member_id),
            value.to_string(),
        );
        let id = self.propose_internal(cmd);
        self.publish_attempt = Some((id, Instant::now()));
    }
}

/// A removed member stops for good, as etcd's does: these two lines, and
/// exit status 0 (etcd's process exits normally once its server stopped).
pub fn exit_removed() -> ! {
    tracing::error!("the member has been permanently removed from the cluster");
    tracing::warn!("the data-dir used by this member must be removed");
    std::process::exit(0);
}

fn fatal_on_err<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            // Nothing unsynced was acknowledged; stopping is safe, going
            // on is not (the WAL may be missing what Raft believes is
            // persisted).
            tracing::error!(error = %e, "write-ahead log {what} failed; stopping");
            std::process::exit(1);
        }
    }
}

/// The context of a ReadIndex request: the member's id, then the batch's.
/// The leader keeps pending requests by context and ignores one whose
/// context is already pending, so contexts must be unique cluster-wide: with
/// the batch id alone, two members' batches with the same number collided
/// and the second one's reads waited for their timeout (the unexplained
/// `errorCode 300` answers of the quorum GET benchmark).
fn read_ctx(member_id: u64, id: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&member_id.to_le_bytes());
    ctx.extend_from_slice(&id.to_le_bytes());
    ctx
}

/// The batch id of a read state for one of this member's requests.
fn read_id(member_id: u64, ctx: &[u8]) -> Option<u64> {
    let (member, id) = ctx.split_at_checked(8)?;
    if member != member_id.to_le_bytes() {
        return None;
    }
    Some(u64::from_le_bytes(id.try_into().ok()?))
}

fn internal_put(path: String, value: String) -> InternalRaftRequest {
    entry::v2(&Write::put(path, value, now_ns()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_contexts_are_unique_across_members() {
        assert_ne!(read_ctx(1, 57), read_ctx(2, 57));
        assert_eq!(read_id(1, &read_ctx(1, 57)), Some(57));
        assert_eq!(read_id(2, &read_ctx(1, 57)), None);
        assert_eq!(read_id(1, &57u64.to_le_bytes()), None);
        assert_eq!(read_id(1, b""), None);
    }
}
