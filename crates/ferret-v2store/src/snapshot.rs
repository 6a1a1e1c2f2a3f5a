//! Snapshots of the store: its whole durable state as bytes, and back.
//!
//! Raft snapshots the state machine every `--snapshot-count` entries and
//! sends a snapshot to a member that fell too far behind. A snapshot holds
//! what etcd's `store.Save` holds: the node tree (values, directories,
//! created/modified indexes, expiry times), the current index, the event
//! history (so `waitIndex` replay keeps working after a restart or a
//! snapshot install), the read-only namespaces and the stats counters. It
//! does not hold the waiting watchers, which belong to live connections,
//! nor the TTL index, which is rebuilt from the tree.
//!
//! # Format, version 1
//!
//! Integers are unsigned LEB128 varints (`varint`: 7 bits a byte, low
//! group first, high bit set on every byte but the last, at most 10 bytes,
//! minimal: a multi-byte varint never ends in `0x00`) except expiry times,
//! which are 8-byte little-endian two's complement (`i64le`; they are all
//! near 2^60, where a varint would not save anything). `zigzag` is a signed
//! integer mapped to a varint as `(n << 1) ^ (n >> 63)`. `bytes` is a
//! varint length followed by that many bytes.
//!
//! ```text
//! snapshot  = header index namespaces stats history tree     (nothing after)
//! header    = "FRTSNAP" 0x01              7 bytes of magic, version byte
//! index     = varint                      the current index
//! namespaces= varint count, count × bytes the read-only paths ("/" among
//!                                         them), each a clean path
//! stats     = 15 × varint                 getsSuccess getsFail setsSuccess
//!                                         setsFail deleteSuccess deleteFail
//!                                         updateSuccess updateFail
//!                                         createSuccess createFail
//!                                         compareAndSwapSuccess
//!                                         compareAndSwapFail
//!                                         compareAndDeleteSuccess
//!                                         compareAndDeleteFail expireCount
//! history   = varint count (<= 1000), count × event, oldest first
//! event     = u8 action                   1 create, 2 set, 3 update,
//!                                         4 delete, 5 compareAndSwap,
//!                                         6 compareAndDelete, 7 expire
//!             u8 flags                    bit 0 refresh, bit 1 prevNode
//!                                         follows; other bits 0
//!             varint etcd_index
//!             view                        the node
//!             [view]                      the previous node, if bit 1
//! view      = u8 flags                    bit 0 dir, bit 1 value follows,
//!                                         bit 2 expiration follows
//!             bytes key                   a clean path
//!             [bytes value]
//!             [i64le expiration]          Unix ns, >= 2000-01-01
//!             zigzag ttl                  seconds, as rendered
//!             varint modified_index
//!             varint created_index
//!             varint count, count × view  listed children (history events
//!                                         never carry any; nesting is
//!                                         capped at 64)
//! tree      = node                        the root, unnamed
//! node      = u8 flags                    bit 0 directory, bit 1 expiry
//!                                         follows; other bits 0
//!             varint created_index
//!             varint modified_index
//!             [i64le expiry]              Unix ns, >= 2000-01-01
//!             file: bytes value
//!             dir:  varint count, count × (bytes name, node), names in
//!                   strictly increasing byte order (depth first, pre-order)
//! ```
//!
//! A key `/1/a` holding `x`, created and modified at index 3, permanent, is
//! the child entry `01 61  00 03 03 01 78` under the directory `1`.
//!
//! # Validation
//!
//! Decoding checks everything and returns [`SnapshotError`] rather than
//! panicking: magic and version; every length and count against the bytes
//! left (so a corrupt count cannot allocate); varints for overflow and
//! minimality; flags for unknown bits; names (non-empty, no `/`, not `.` or
//! `..`, strictly increasing, hence unique); the root (a permanent
//! directory at index 0); `created <= modified <= current index` for every
//! node; expiry times not before 2000 (earlier means "no TTL" and is never
//! stored); the history (at most 1000 events, no `get`, indexes strictly
//! increasing and at most the current index, clean keys); the current
//! index (below 2^63, so that later writes cannot overflow); the namespaces
//! (clean paths, the root among them); and that nothing follows. Equal
//! stores give equal bytes. The tree is encoded and decoded without
//! recursion, so a deep tree cannot overflow the stack here.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::event::{Action, Event, NodeView};
use crate::name::Name;
use crate::path;
use crate::pmap::PMap;
use crate::store::{Content, Node, Stats, Store, MIN_EXPIRE_NS};
use crate::watch::{History, HISTORY_CAPACITY};

/// The first 7 bytes of every snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 7] = b"FRTSNAP";
/// The format version this build writes and reads.
pub const SNAPSHOT_VERSION: u8 = 1;

/// Why a snapshot could not be decoded. A truncated snapshot is usually
/// reported as [`SnapshotError::Truncated`], but may be reported as corrupt
/// when the cut leaves a well-formed but inconsistent prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a store snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported store snapshot version {0}")]
    UnsupportedVersion(u8),
    #[error("store snapshot truncated at byte {0}")]
    Truncated(usize),
    #[error("corrupt store snapshot at byte {offset}: {what}")]
    Corrupt { offset: usize, what: &'static str },
}

type Result<T> = std::result::Result<T, SnapshotError>;

const FLAG_DIR: u8 = 1;
const FLAG_EXPIRY: u8 = 2;
const EVENT_REFRESH: u8 = 1;
const EVENT_PREV: u8 = 2;
const VIEW_DIR: u8 = 1;
const VIEW_VALUE: u8 = 2;
const VIEW_EXPIRATION: u8 = 4;
/// The fewest bytes a tree child can take: name length, one name byte,
/// flags, two indexes, value length.
const MIN_CHILD_BYTES: usize = 6;
/// The fewest bytes a view can take: flags, key length, ttl, two indexes,
/// child count.
const MIN_VIEW_BYTES: usize = 6;
/// The fewest bytes an event can take: action, flags, index, one view.
const MIN_EVENT_BYTES: usize = 3 + MIN_VIEW_BYTES;
const MAX_VIEW_DEPTH: usize = 64;
/// No real store gets near it, and the next writes must not overflow.
const MAX_INDEX: u64 = i64::MAX as u64;

/// The store's durable state at one index, frozen: [`FrozenStore::encode`]
/// gives exactly the bytes [`Store::snapshot`] gave when
/// [`Store::frozen`] took it, however the store changed since.
///
/// Taking one does no work per key: the tree's directories are persistent
/// B-trees (`pmap.rs`), so the view shares every node with the store and
/// the store copies a node only when it writes to one the view still holds
/// (the nodes on a written key's path: O(depth × log(children)) for the
/// first write there, nothing for later ones). The rest is copied or
/// shared: the index, the stats counters' values, the history's (at most
/// 1000) event pointers, the read-only paths. Watchers are not part of a
/// snapshot, and the TTL index follows from the tree.
///
/// It is `Send + Sync + 'static`, so the Raft loop can take one between two
/// applies and hand it to a thread that encodes and writes it. While it is
/// alive, the first write to each B-tree node it shares copies that node
/// (a leaf with its up to 11 values), and the view keeps the old one: drop
/// it as soon as it is encoded. Dropping it frees the old nodes the store
/// has replaced since, on whichever thread drops it.
///
/// ```
/// use ferret_v2store::{Store, TtlOptions};
///
/// let perm = TtlOptions::default();
/// let mut store = Store::new(&["/0", "/1"]);
/// store.set(b"/1/a", false, b"old", perm, 0).unwrap();
///
/// // The Ready loop, between two applies: no work per key.
/// let view = store.frozen();
/// let index = view.index();
/// let writer = std::thread::spawn(move || {
///     let data = view.encode();
///     // ... write and fsync the file, then tell the loop `index` is durable.
///     data
/// });
/// // Meanwhile the loop goes on applying.
/// store.set(b"/1/a", false, b"new", perm, 0).unwrap();
///
/// let data = writer.join().unwrap();
/// let restored = Store::from_snapshot(&data).unwrap();
/// assert_eq!(restored.index(), index);
/// let a = restored.get(b"/1/a", false, 0).unwrap();
/// assert_eq!(a.node.value.as_deref(), Some(&b"old"[..]));
/// ```
#[derive(Clone)]
pub struct FrozenStore {
    root: Node,
    current_index: u64,
    read_only: Arc<[Box<[u8]>]>,
    /// In snapshot order (see [`counters`]).
    stats: [u64; 15],
    history: History,
}

impl FrozenStore {
    /// The index of the last write the view holds.
    pub fn index(&self) -> u64 {
        self.current_index
    }

    /// The view in the format of this module.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        put_varint(&mut out, self.current_index);
        put_varint(&mut out, self.read_only.len() as u64);
        for p in self.read_only.iter() {
            put_bytes(&mut out, p);
        }
        for c in self.stats {
            put_varint(&mut out, c);
        }
        let events: Vec<&Arc<Event>> = self.history.events().collect();
        put_varint(&mut out, events.len() as u64);
        for e in events {
            put_event(&mut out, e);
        }
        put_tree(&mut out, &self.root);
        out
    }
}

impl Store {
    /// A frozen view of the store's durable state, for encoding elsewhere
    /// while the store goes on (see [`FrozenStore`]). O(1) in the number of
    /// keys.
    pub fn frozen(&self) -> FrozenStore {
        FrozenStore {
            root: self.root.clone(),
            current_index: self.current_index,
            read_only: Arc::clone(&self.read_only),
            stats: counters(&self.stats).map(|c| c.load(Ordering::Relaxed)),
            history: self.history.clone(),
        }
    }

    /// The store's durable state in the format of this module: everything
    /// but the waiting watchers (and the TTL index, which follows from the
    /// tree). Takes well under a second for a million keys; the Raft loop
    /// should take [`Store::frozen`] and encode it on another thread.
    pub fn snapshot(&self) -> Vec<u8> {
        self.frozen().encode()
    }

    /// A store from a snapshot, with no waiting watchers.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Store> {
        let d = decode(bytes)?;
        Ok(Store {
            root: d.root,
            current_index: d.current_index,
            read_only: d.read_only.into(),
            ttl_index: d.ttl_index,
            history: d.history,
            hub: Default::default(),
            stats: d.stats,
        })
    }

    /// Replaces the store's data, history and stats with a snapshot's,
    /// keeping its waiting watchers: a follower installing the leader's
    /// snapshot keeps serving the watches of its clients. On error the
    /// store is left untouched.
    ///
    /// etcd's `Recovery` unmarshals into the live store, which keeps the
    /// hub's (unexported) watcher lists, so its watchers survive too, but
    /// they silently miss every change the snapshot skipped over. Here each
    /// waiting watcher is caught up first: it is sent the events of the
    /// installed history after the old index (and from its `waitIndex`)
    /// that match it by the rules of a `waitIndex` replay, which is what it
    /// would get by re-watching from its index, and a non-stream watcher is
    /// then done. A watcher whose next event is older than the installed
    /// history cannot be answered correctly and is dropped: its response
    /// ends as a slow watcher's does, and re-watching from its index gets
    /// error 401. The others keep waiting and get later events as usual.
    ///
    /// Meant for moving forward (a snapshot at or past the store's index);
    /// after installing an older one, stream watchers may see indexes again.
    pub fn restore_in_place(&mut self, bytes: &[u8]) -> Result<()> {
        let d = decode(bytes)?;
        let seen_up_to = self.current_index;
        self.root = d.root;
        self.current_index = d.current_index;
        self.read_only = d.read_only.into();
        self.ttl_index = d.ttl_index;
        self.history = d.history;
        self.stats = d.stats;
        self.hub
            .catch_up(&self.history, seen_up_to, self.current_index);
        Ok(())
    }
}

/// The counters in snapshot order (the order of `/v2/stats/store`).
fn counters(s: &Stats) -> [&AtomicU64; 15] {
    [
        &s.gets_success,
        &s.gets_fail,
        &s.sets_success,
        &s.sets_fail,
        &s.delete_success,
        &s.delete_fail,
        &s.update_success,
        &s.update_fail,
        &s.create_success,
        &s.create_fail,
        &s.compare_and_swap_success,
        &s.compare_and_swap_fail,
        &s.compare_and_delete_success,
        &s.compare_and_delete_fail,
        &s.expire_count,
    ]
}

// ----- encoding ----------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_event(out: &mut Vec<u8>, e: &Event) {
    out.push(action_code(e.action));
    let mut flags = 0;
    if e.refresh {
        flags |= EVENT_REFRESH;
    }
    if e.prev_node.is_some() {
        flags |= EVENT_PREV;
    }
    out.push(flags);
    put_varint(out, e.etcd_index);
    put_view(out, &e.node);
    if let Some(prev) = &e.prev_node {
        put_view(out, prev);
    }
}

fn put_view(out: &mut Vec<u8>, v: &NodeView) {
    let mut flags = 0;
    if v.dir {
        flags |= VIEW_DIR;
    }
    if v.value.is_some() {
        flags |= VIEW_VALUE;
    }
    if v.expiration_ns.is_some() {
        flags |= VIEW_EXPIRATION;
    }
    out.push(flags);
    put_bytes(out, &v.key);
    if let Some(value) = &v.value {
        put_bytes(out, value);
    }
    if let Some(exp) = v.expiration_ns {
        out.extend_from_slice(&exp.to_le_bytes());
    }
    put_varint(out, ((v.ttl_s << 1) ^ (v.ttl_s >> 63)) as u64);
    put_varint(out, v.modified_index);
    put_varint(out, v.created_index);
    put_varint(out, v.nodes.len() as u64);
    for n in &v.nodes {
        put_view(out, n);
    }
}

/// Flags, indexes, expiry, and the value of a file or the child count of
/// a directory.
fn put_node_head(out: &mut Vec<u8>, n: &Node) {
    let mut flags = 0;
    if matches!(n.content, Content::Dir(_)) {
        flags |= FLAG_DIR;
    }
    if n.expire_ns.is_some() {
        flags |= FLAG_EXPIRY;
    }
    out.push(flags);
    put_varint(out, n.created_index);
    put_varint(out, n.modified_index);
    if let Some(exp) = n.expire_ns {
        out.extend_from_slice(&exp.to_le_bytes());
    }
    match &n.content {
        Content::File(v) => put_bytes(out, v),
        Content::Dir(children) => put_varint(out, children.len() as u64),
    }
}

/// The tree depth first, with a stack of child iterators (no recursion).
fn put_tree(out: &mut Vec<u8>, root: &Node) {
    put_node_head(out, root);
    let mut stack = Vec::new();
    if let Content::Dir(children) = &root.content {
        stack.push(children.iter());
    }
    while let Some(it) = stack.last_mut() {
        match it.next() {
            None => {
                stack.pop();
            }
            Some((name, child)) => {
                put_bytes(out, name);
                put_node_head(out, child);
                if let Content::Dir(children) = &child.content {
                    stack.push(children.iter());
                }
            }
        }
    }
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Get => 0,
        Action::Create => 1,
        Action::Set => 2,
        Action::Update => 3,
        Action::Delete => 4,
        Action::CompareAndSwap => 5,
        Action::CompareAndDelete => 6,
        Action::Expire => 7,
    }
}

// ----- decoding ----------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn corrupt(&self, offset: usize, what: &'static str) -> SnapshotError {
        SnapshotError::Corrupt { offset, what }
    }

    fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(SnapshotError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(SnapshotError::Truncated(self.buf.len()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(self.corrupt(start, "varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(self.corrupt(start, "varint not minimal"));
                }
                return Ok(v);
            }
        }
        Err(self.corrupt(start, "varint longer than 10 bytes"))
    }

    fn i64le(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        if n > self.left() as u64 {
            return Err(SnapshotError::Truncated(self.buf.len()));
        }
        self.take(n as usize)
    }

    /// A count of items of at least `min_bytes` each, checked against the
    /// bytes left so that no corrupt count can make us allocate.
    fn count(&mut self, min_bytes: usize) -> Result<usize> {
        let n = self.varint()?;
        if n > (self.left() / min_bytes) as u64 {
            return Err(SnapshotError::Truncated(self.buf.len()));
        }
        Ok(n as usize)
    }

    fn expiry(&mut self) -> Result<i64> {
        let at = self.pos;
        let exp = self.i64le()?;
        if exp < MIN_EXPIRE_NS {
            return Err(self.corrupt(at, "expiry time before 2000"));
        }
        Ok(exp)
    }

    fn clean_path(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        let p = self.bytes()?;
        if !path::is_clean(p) {
            return Err(self.corrupt(at, "path not clean"));
        }
        Ok(p)
    }
}

/// Everything a snapshot restores.
struct Decoded {
    root: Node,
    current_index: u64,
    read_only: Vec<Box<[u8]>>,
    ttl_index: TtlIndex,
    history: History,
    stats: Stats,
}

/// The store's TTL index: (expiry, path) in expiry order.
type TtlIndex = BTreeSet<(i64, Box<[u8]>)>;

fn decode(buf: &[u8]) -> Result<Decoded> {
    if buf.len() < SNAPSHOT_MAGIC.len() {
        return Err(if SNAPSHOT_MAGIC.starts_with(buf) {
            SnapshotError::Truncated(buf.len())
        } else {
            SnapshotError::BadMagic
        });
    }
    if &buf[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let mut r = Reader {
        buf,
        pos: SNAPSHOT_MAGIC.len(),
    };
    let version = r.u8()?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let at = r.pos;
    let current_index = r.varint()?;
    if current_index > MAX_INDEX {
        return Err(r.corrupt(at, "index past 2^63"));
    }

    let at = r.pos;
    let n = r.count(1)?;
    let mut read_only = Vec::with_capacity(n);
    for _ in 0..n {
        read_only.push(Box::<[u8]>::from(r.clean_path()?));
    }
    if !read_only.iter().any(|p| &**p == b"/") {
        return Err(r.corrupt(at, "the root is not read-only"));
    }

    let stats = Stats::default();
    for c in counters(&stats) {
        c.store(r.varint()?, Ordering::Relaxed);
    }

    let history = decode_history(&mut r, current_index)?;
    let (root, ttl_index) = decode_tree(&mut r, current_index)?;
    if r.left() != 0 {
        return Err(r.corrupt(r.pos, "bytes after the end"));
    }
    Ok(Decoded {
        root,
        current_index,
        read_only,
        ttl_index,
        history,
        stats,
    })
}

fn decode_history(r: &mut Reader<'_>, current_index: u64) -> Result<History> {
    let at = r.pos;
    let n = r.count(MIN_EVENT_BYTES)?;
    if n > HISTORY_CAPACITY {
        return Err(r.corrupt(at, "history longer than its capacity"));
    }
    let mut events = VecDeque::with_capacity(n);
    let mut last_index = None;
    for _ in 0..n {
        let at = r.pos;
        let e = decode_event(r, current_index)?;
        if last_index.is_some_and(|last| e.index() <= last) {
            return Err(r.corrupt(at, "history indexes not increasing"));
        }
        last_index = Some(e.index());
        events.push_back(Arc::new(e));
    }
    Ok(History::from_events(events))
}

fn decode_event(r: &mut Reader<'_>, current_index: u64) -> Result<Event> {
    let at = r.pos;
    let action = match r.u8()? {
        1 => Action::Create,
        2 => Action::Set,
        3 => Action::Update,
        4 => Action::Delete,
        5 => Action::CompareAndSwap,
        6 => Action::CompareAndDelete,
        7 => Action::Expire,
        _ => return Err(r.corrupt(at, "unknown event action")),
    };
    let flags = r.u8()?;
    if flags & !(EVENT_REFRESH | EVENT_PREV) != 0 {
        return Err(r.corrupt(at + 1, "unknown event flags"));
    }
    let etcd_index = r.varint()?;
    if etcd_index > current_index {
        return Err(r.corrupt(at, "event index past the current index"));
    }
    let node = decode_view(r, current_index, 0)?;
    let prev_node = if flags & EVENT_PREV != 0 {
        Some(decode_view(r, current_index, 0)?)
    } else {
        None
    };
    Ok(Event {
        action,
        node,
        prev_node,
        etcd_index,
        refresh: flags & EVENT_REFRESH != 0,
    })
}

fn decode_view(r: &mut Reader<'_>, current_index: u64, depth: usize) -> Result<NodeView> {
    let at = r.pos;
    if depth > MAX_VIEW_DEPTH {
        return Err(r.corrupt(at, "node views nested too deep"));
    }
    let flags = r.u8()?;
    if flags & !(VIEW_DIR | VIEW_VALUE | VIEW_EXPIRATION) != 0 {
        return Err(r.corrupt(at, "unknown node view flags"));
    }
    let key = r.clean_path()?.into();
    let value = if flags & VIEW_VALUE != 0 {
        Some(r.bytes()?.into())
    } else {
        None
    };
    let expiration_ns = if flags & VIEW_EXPIRATION != 0 {
        Some(r.expiry()?)
    } else {
        None
    };
    let z = r.varint()?;
    let ttl_s = (z >> 1) as i64 ^ -((z & 1) as i64);
    let modified_index = r.varint()?;
    let created_index = r.varint()?;
    if modified_index > current_index || created_index > current_index {
        return Err(r.corrupt(at, "node view index past the current index"));
    }
    let n = r.count(MIN_VIEW_BYTES)?;
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(decode_view(r, current_index, depth + 1)?);
    }
    Ok(NodeView {
        key,
        value,
        dir: flags & VIEW_DIR != 0,
        expiration_ns,
        ttl_s,
        nodes,
        modified_index,
        created_index,
    })
}

/// A node's fields before its children are known.
struct Head {
    created_index: u64,
    modified_index: u64,
    expire_ns: Option<i64>,
}

impl Head {
    fn node(self, content: Content) -> Node {
        Node {
            created_index: self.created_index,
            modified_index: self.modified_index,
            expire_ns: self.expire_ns,
            content,
        }
    }
}

/// What follows a node's head.
enum Body<'a> {
    File(&'a [u8]),
    /// A directory and its number of children.
    Dir(usize),
}

fn decode_node_head<'a>(r: &mut Reader<'a>, current_index: u64) -> Result<(Head, Body<'a>)> {
    let at = r.pos;
    let flags = r.u8()?;
    if flags & !(FLAG_DIR | FLAG_EXPIRY) != 0 {
        return Err(r.corrupt(at, "unknown node flags"));
    }
    let created_index = r.varint()?;
    let modified_index = r.varint()?;
    if created_index > modified_index || modified_index > current_index {
        return Err(r.corrupt(at, "node indexes out of order"));
    }
    let expire_ns = if flags & FLAG_EXPIRY != 0 {
        Some(r.expiry()?)
    } else {
        None
    };
    let body = if flags & FLAG_DIR != 0 {
        Body::Dir(r.count(MIN_CHILD_BYTES)?)
    } else {
        Body::File(r.bytes()?)
    };
    let head = Head {
        created_index,
        modified_index,
        expire_ns,
    };
    Ok((head, body))
}

/// A directory being decoded.
struct Frame {
    head: Head,
    /// `None` for the root.
    name: Option<Name>,
    /// Children still to read.
    remaining: usize,
    /// Where its children start in the pending list.
    first_child: usize,
    /// The length of its path in the path buffer (0 for the root).
    path_len: usize,
}

/// The tree, depth first with an explicit stack (no recursion), and the
/// TTL index built on the way. Finished children wait in one shared list
/// and become their directory's map, in bulk, when it ends.
fn decode_tree(r: &mut Reader<'_>, current_index: u64) -> Result<(Node, TtlIndex)> {
    let at = r.pos;
    let (head, body) = decode_node_head(r, current_index)?;
    let Body::Dir(n) = body else {
        return Err(r.corrupt(at, "the root is not a directory"));
    };
    if head.created_index != 0 || head.modified_index != 0 || head.expire_ns.is_some() {
        return Err(r.corrupt(at, "the root has an index or an expiry"));
    }
    let mut stack = vec![Frame {
        head,
        name: None,
        remaining: n,
        first_child: 0,
        path_len: 0,
    }];
    let mut pending: Vec<(Name, Node)> = Vec::new();
    let mut path: Vec<u8> = Vec::new();
    let mut ttl: Vec<(i64, Box<[u8]>)> = Vec::new();
    loop {
        let top = stack.last_mut().expect("the root frame is popped last");
        if top.remaining == 0 {
            let f = stack.pop().expect("not empty");
            // Names were checked strictly increasing: the map is built in
            // bulk.
            let children = PMap::from_sorted(pending.drain(f.first_child..));
            let node = f.head.node(Content::Dir(children));
            match f.name {
                None => return Ok((node, ttl.into_iter().collect())),
                Some(name) => pending.push((name, node)),
            }
            continue;
        }
        top.remaining -= 1;
        let at = r.pos;
        let name = r.bytes()?;
        if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return Err(r.corrupt(at, "invalid node name"));
        }
        if pending.len() > top.first_child {
            let (prev, _) = pending.last().expect("not empty");
            if **prev >= *name {
                return Err(r.corrupt(at, "names not in strictly increasing order"));
            }
        }
        path.truncate(top.path_len);
        path.push(b'/');
        path.extend_from_slice(name);
        let (head, body) = decode_node_head(r, current_index)?;
        if let Some(exp) = head.expire_ns {
            ttl.push((exp, path.as_slice().into()));
        }
        match body {
            Body::File(value) => {
                pending.push((name.into(), head.node(Content::File(value.into()))))
            }
            Body::Dir(n) => stack.push(Frame {
                head,
                name: Some(name.into()),
                remaining: n,
                first_child: pending.len(),
                path_len: path.len(),
            }),
        }
    }
}
