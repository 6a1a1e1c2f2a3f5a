//! What the clients did and were told, recorded as it happens and checked
//! after the run (`check.rs`), plus the few checks that can only be made
//! at the moment (a linearizable read must see every write acknowledged
//! before it started).
//!
//! Every value a client writes is unique: it carries a token naming the
//! writer and the attempt (`token=w2-117;counter=5;...`), so any event or
//! read names the one attempt that produced it, and an attempt whose
//! outcome was unknown is resolved by whether its token ever shows up.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use ferret_proto::etcdserverpb::ResponseHeader;
use ferret_proto::mvccpb::KeyValue;

/// kube-apiserver's compactor's key (outside `/registry/`, as in a real
/// cluster, where it sits at the root of etcd's key space).
pub const COMPACT_KEY: &[u8] = b"compact_rev_key";

/// The bytes after the token and counter in an object's value: kube
/// objects are small documents, not a few bytes.
const PAD: usize = 120;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A Txn `create_revision == 0` → Put (counter 0).
    Create,
    /// A Txn `mod_revision == guard` → Put (the read counter + 1).
    Update,
    /// A Txn `mod_revision == guard` → DeleteRange.
    Delete,
    /// An event key created with a lease.
    LeasePut { lease: i64 },
    /// A plain Put that closes the run: every watcher must reach it.
    Fence,
    /// The compactor's Txn on [`COMPACT_KEY`].
    CompactKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied at this revision.
    Ok(i64),
    /// Definitely not applied (a compare that failed, an unknown lease).
    Failed,
    /// No answer: it may have been applied, at any time after `invoked_ms`.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    /// Unique per attempt (also for deletes, which carry no value).
    pub token: String,
    pub key: Bytes,
    pub kind: OpKind,
    /// The `mod_revision` compared against (0 for a create).
    pub guard: i64,
    /// What a put wrote (empty for deletes).
    pub value: Bytes,
    pub counter: u64,
    pub outcome: Outcome,
    /// Why the outcome is unknown or failed.
    pub error: Option<String>,
    pub invoked_ms: u64,
    pub completed_ms: u64,
    pub member: usize,
}

/// An object's value: its token, its counter, padding.
pub fn object_value(token: &str, counter: u64) -> Bytes {
    Bytes::from(format!(
        "token={token};counter={counter};pad={}",
        "k".repeat(PAD)
    ))
}

/// The counter written in an object's value.
pub fn counter_of(value: &[u8]) -> Option<u64> {
    field(value, "counter=")?.parse().ok()
}

fn field<'a>(value: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(value).ok()?;
    let rest = text.split(';').find_map(|f| f.strip_prefix(name))?;
    Some(rest)
}

/// The token that names the attempt which wrote `value` under `key`: the
/// compactor writes a bare revision, so its token is that revision.
pub fn token_of(key: &[u8], value: &[u8]) -> Option<String> {
    if key == COMPACT_KEY {
        return Some(format!("compact:{}", String::from_utf8_lossy(value)));
    }
    field(value, "token=").map(str::to_string)
}

/// One paginated list (or a reflector's list), kept to compare with the
/// state the watch history gives at the same revision.
#[derive(Clone, Debug)]
pub struct ListSnapshot {
    pub who: String,
    pub key: Bytes,
    pub range_end: Bytes,
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
}

/// A lease and what was done with it.
#[derive(Clone, Debug)]
pub struct LeaseRec {
    pub id: i64,
    /// The TTL the server granted.
    pub ttl_s: i64,
    /// When the grant was sent: the lease cannot expire before this + TTL.
    pub granted_ms: u64,
    /// Kept alive from its grant on.
    pub kept: bool,
    /// Which keep-alive client renews it (each starts on its own member,
    /// as the apiservers of a cluster each talk to one).
    pub keeper: usize,
    /// When keep-alives stopped, for a kept lease released before the end
    /// (it must then expire like the others).
    pub released_ms: Option<u64>,
    /// When the newest keep-alive that was answered with a TTL was sent:
    /// the lease cannot expire before this + TTL.
    pub renewed_ms: u64,
    /// The keys put with it (acknowledged or not: see the op log).
    pub keys: Vec<Bytes>,
}

impl LeaseRec {
    /// Whether the run keeps this lease alive at `ms`.
    pub fn kept_at(&self, ms: u64) -> bool {
        self.kept && self.released_ms.is_none_or(|r| ms < r)
    }
}

pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
    /// The highest acknowledged revision: a linearizable read that starts
    /// later must answer at least this revision.
    max_acked: AtomicI64,
    /// The same, per key.
    key_acked: Mutex<HashMap<Bytes, i64>>,
    failures: Mutex<Vec<String>>,
    counts: Mutex<BTreeMap<String, u64>>,
    pub lists: Mutex<Vec<ListSnapshot>>,
    pub leases: Mutex<Vec<LeaseRec>>,
    /// (revision, when) of every compaction that was answered.
    pub compactions: Mutex<Vec<(i64, u64)>>,
}

/// At most this many failures are kept (the first ones say the most).
const FAILURES_KEPT: usize = 2000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
            max_acked: AtomicI64::new(0),
            key_acked: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
            counts: Mutex::new(BTreeMap::new()),
            lists: Mutex::new(Vec::new()),
            leases: Mutex::new(Vec::new()),
            compactions: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since the run started (every time in the report).
    pub fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn record(&self, op: Op) {
        if let Outcome::Ok(rev) = op.outcome {
            self.max_acked.fetch_max(rev, Ordering::SeqCst);
            let mut k = lock(&self.key_acked);
            let e = k.entry(op.key.clone()).or_insert(0);
            *e = (*e).max(rev);
        }
        let what = match (&op.kind, &op.outcome) {
            (_, Outcome::Ok(_)) => "acknowledged",
            (_, Outcome::Failed) => "failed",
            (_, Outcome::Unknown) => "unknown outcome",
        };
        self.count(&format!("ops {:?} {what}", kind_name(op.kind)));
        lock(&self.ops).push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        lock(&self.ops).clone()
    }

    /// What a linearizable read starting now must at least see: the
    /// highest acknowledged revision overall and on `key`.
    pub fn floor(&self, key: Option<&[u8]>) -> (i64, i64) {
        let all = self.max_acked.load(Ordering::SeqCst);
        let on_key = key.map_or(0, |k| lock(&self.key_acked).get(k).copied().unwrap_or(0));
        (all, on_key)
    }

    /// A linearizable read answered at `header`'s revision must not be
    /// older than a write acknowledged before it started.
    pub fn check_read(
        &self,
        what: &str,
        member: usize,
        floor: i64,
        header: Option<&ResponseHeader>,
    ) {
        let rev = header.map_or(0, |h| h.revision);
        if rev < floor {
            self.fail(format!(
                "stale read: {what} on m{member} answered at revision {rev}, but revision {floor} \
                 was acknowledged before the read started"
            ));
        }
    }

    pub fn fail(&self, msg: String) {
        let msg = format!("[{:>6} ms] {msg}", self.ms());
        let mut f = lock(&self.failures);
        if f.len() < FAILURES_KEPT {
            f.push(msg);
        }
    }

    pub fn failures(&self) -> Vec<String> {
        lock(&self.failures).clone()
    }

    pub fn count(&self, what: &str) {
        self.count_n(what, 1);
    }

    pub fn count_n(&self, what: &str, n: u64) {
        *lock(&self.counts).entry(what.to_string()).or_insert(0) += n;
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    pub fn push_list(&self, l: ListSnapshot) {
        lock(&self.lists).push(l);
    }

    /// The newest compaction answered so far: (revision, when).
    pub fn compacted(&self) -> (i64, u64) {
        lock(&self.compactions).last().copied().unwrap_or((0, 0))
    }

    pub fn leases(&self) -> Vec<LeaseRec> {
        lock(&self.leases).clone()
    }

    pub fn with_leases<T>(&self, f: impl FnOnce(&mut Vec<LeaseRec>) -> T) -> T {
        f(&mut lock(&self.leases))
    }
}

/// An attempt, for messages.
pub fn op_text(op: &Op) -> String {
    format!(
        "{} {} {} (counter {}, guard {}, sent to m{} at {} ms, answered at {} ms: {:?}{})",
        kind_name(op.kind),
        show(&op.key),
        op.token,
        op.counter,
        op.guard,
        op.member,
        op.invoked_ms,
        op.completed_ms,
        op.outcome,
        op.error
            .as_ref()
            .map_or(String::new(), |e| format!(", {e}"))
    )
}

pub fn kind_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Create => "create",
        OpKind::Update => "update",
        OpKind::Delete => "delete",
        OpKind::LeasePut { .. } => "lease put",
        OpKind::Fence => "fence",
        OpKind::CompactKey => "compact key",
    }
}

/// A key for messages.
pub fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Whether `key` is in the watched or listed range `[start, end)`
/// (etcd's rules: an empty end is the one key, `"\0"` is every key from
/// `start` on).
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        return key == start;
    }
    if end == [0] {
        return key >= start;
    }
    key >= start && key < end
}
