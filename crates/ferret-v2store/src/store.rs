//! The v2 store: a tree of directories and keys, versioned by one index.
//!
//! **Invariant: the store never reads the clock.** Every operation that
//! needs the time takes it as an argument (`now_ns`): writes get the time
//! stamped on the request when it entered the cluster, expiry gets the
//! leader's time carried by a sync entry, reads get the serving member's
//! clock. Replaying the same log on any member gives the same tree, the same
//! indexes and the same history.
//!
//! **Invariant: every successful write increments `current_index` by one
//! and records exactly one event** whose node's modified index is the new
//! index, so the history holds consecutive indexes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Code, Error};
use crate::event::{Action, Event, NodeView};
use crate::path;
use crate::pmap::PMap;
use crate::watch::{History, Hub, WatchSink, WatchStart, WatcherId};

/// Expiry times before 2000-01-01T00:00:00Z mean "no TTL", as in etcd
/// (a zero or garbage expiration must never expire a key at once).
pub const MIN_EXPIRE_NS: i64 = 946_684_800 * 1_000_000_000;

const NS_PER_S: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) created_index: u64,
    pub(crate) modified_index: u64,
    /// Unix nanoseconds; `None` for a permanent node.
    pub(crate) expire_ns: Option<i64>,
    pub(crate) content: Content,
}

#[derive(Debug, Clone)]
pub(crate) enum Content {
    File(Box<[u8]>),
    /// Children by name. A B-tree keeps names in byte order, which is the
    /// order of etcd's `sorted=true` listings, so listings are always sorted;
    /// a persistent one, so that [`Store::frozen`] can share the tree.
    Dir(PMap<Node>),
}

impl Node {
    fn file(value: &[u8], index: u64, expire_ns: Option<i64>) -> Node {
        Node {
            created_index: index,
            modified_index: index,
            expire_ns,
            content: Content::File(value.into()),
        }
    }

    fn dir(index: u64, expire_ns: Option<i64>) -> Node {
        Node {
            created_index: index,
            modified_index: index,
            expire_ns,
            content: Content::Dir(PMap::new()),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir(_))
    }

    fn value(&self) -> &[u8] {
        match &self.content {
            Content::File(v) => v,
            Content::Dir(_) => b"",
        }
    }

    fn children(&self) -> Option<&PMap<Node>> {
        match &self.content {
            Content::Dir(c) => Some(c),
            Content::File(_) => None,
        }
    }

    fn children_mut(&mut self) -> Option<&mut PMap<Node>> {
        match &mut self.content {
            Content::Dir(c) => Some(c),
            Content::File(_) => None,
        }
    }

    /// Expiration and remaining TTL as etcd computes them: the TTL is the
    /// time left rounded up to whole seconds (1..n while alive).
    fn expiration_and_ttl(&self, now_ns: i64) -> (Option<i64>, i64) {
        match self.expire_ns {
            None => (None, 0),
            Some(exp) => {
                let left = exp.saturating_sub(now_ns);
                let mut ttl = left / NS_PER_S;
                if left % NS_PER_S > 0 {
                    ttl += 1;
                }
                (Some(exp), ttl)
            }
        }
    }

    /// The node as clients see it (etcd's `Repr`). With `recursive`, a
    /// directory carries its whole visible subtree; hidden children
    /// (`_name`) are never listed.
    fn view(&self, path: &[u8], recursive: bool, now_ns: i64) -> NodeView {
        let (expiration_ns, ttl_s) = self.expiration_and_ttl(now_ns);
        let mut v = NodeView {
            key: path.into(),
            value: None,
            dir: self.is_dir(),
            expiration_ns,
            ttl_s,
            nodes: Vec::new(),
            modified_index: self.modified_index,
            created_index: self.created_index,
        };
        match &self.content {
            Content::File(value) => v.value = Some(value.clone()),
            Content::Dir(children) if recursive => {
                v.nodes = list(children, path, true, now_ns);
            }
            Content::Dir(_) => {}
        }
        v
    }

    /// The node as a `get` returns it: a directory always lists its
    /// children, recursing into them only with `recursive`.
    fn view_for_get(&self, path: &[u8], recursive: bool, now_ns: i64) -> NodeView {
        let mut v = self.view(path, false, now_ns);
        if let Content::Dir(children) = &self.content {
            v.nodes = list(children, path, recursive, now_ns);
        }
        v
    }
}

fn list(children: &PMap<Node>, dir_path: &[u8], recursive: bool, now_ns: i64) -> Vec<NodeView> {
    children
        .iter()
        .filter(|(name, _)| name.first() != Some(&b'_'))
        .map(|(name, child)| child.view(&path::join(dir_path, name), recursive, now_ns))
        .collect()
}

/// Counters of operations, as `/v2/stats/store` reports them.
#[derive(Debug, Default)]
pub struct Stats {
    pub gets_success: AtomicU64,
    pub gets_fail: AtomicU64,
    pub sets_success: AtomicU64,
    pub sets_fail: AtomicU64,
    pub delete_success: AtomicU64,
    pub delete_fail: AtomicU64,
    pub update_success: AtomicU64,
    pub update_fail: AtomicU64,
    pub create_success: AtomicU64,
    pub create_fail: AtomicU64,
    pub compare_and_swap_success: AtomicU64,
    pub compare_and_swap_fail: AtomicU64,
    pub compare_and_delete_success: AtomicU64,
    pub compare_and_delete_fail: AtomicU64,
    pub expire_count: AtomicU64,
}

fn count<T>(r: &Result<T, Error>, ok: &AtomicU64, fail: &AtomicU64) {
    match r {
        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
        Err(_) => fail.fetch_add(1, Ordering::Relaxed),
    };
}

/// What a write may do to a node's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtlOptions {
    /// The new absolute expiry (Unix ns); `None` makes the node permanent.
    pub expire_ns: Option<i64>,
    /// Keep the value, only reset the TTL, and notify no watcher.
    pub refresh: bool,
}

impl TtlOptions {
    fn expire(self) -> Option<i64> {
        self.expire_ns.filter(|e| *e >= MIN_EXPIRE_NS)
    }
}

/// The etcd v2 store. See the module documentation for its invariants.
pub struct Store {
    pub(crate) root: Node,
    pub(crate) current_index: u64,
    /// Paths that no write may touch: the root and the namespaces. Shared
    /// with frozen views, and never changed but by a restore.
    pub(crate) read_only: Arc<[Box<[u8]>]>,
    /// Nodes with a TTL, ordered by expiry time, for the expiry sweep.
    pub(crate) ttl_index: BTreeSet<(i64, Box<[u8]>)>,
    pub(crate) history: History,
    pub(crate) hub: Hub,
    pub(crate) stats: Stats,
}

impl Store {
    /// A store with the given namespace directories under the root (etcd
    /// uses `/0` for membership and `/1` for user keys).
    pub fn new(namespaces: &[&str]) -> Store {
        let mut root = Node::dir(0, None);
        let mut read_only: Vec<Box<[u8]>> = vec![b"/".as_slice().into()];
        for ns in namespaces {
            let p = path::clean(ns.as_bytes());
            let (_, name) = path::split(&p);
            root.children_mut()
                .expect("root is a directory")
                .insert(name.into(), Node::dir(0, None));
            read_only.push(p.into());
        }
        Store {
            root,
            current_index: 0,
            read_only: read_only.into(),
            ttl_index: BTreeSet::new(),
            history: History::default(),
            hub: Hub::default(),
            stats: Stats::default(),
        }
    }

    /// The index of the last write.
    pub fn index(&self) -> u64 {
        self.current_index
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of waiting watchers.
    pub fn watcher_count(&self) -> usize {
        self.hub.count()
    }

    /// Whether any node has a TTL (the leader proposes expiry sweeps only
    /// then).
    pub fn has_ttl_keys(&self) -> bool {
        !self.ttl_index.is_empty()
    }

    /// The earliest expiry time of any node, Unix ns.
    pub fn next_expiry_ns(&self) -> Option<i64> {
        self.ttl_index.first().map(|(t, _)| *t)
    }

    fn is_read_only(&self, p: &[u8]) -> bool {
        self.read_only.iter().any(|r| &**r == p)
    }

    fn read_only_error(&self) -> Error {
        Error::new(Code::RootReadOnly, "/", self.current_index)
    }

    /// Finds a node, with etcd's errors: 104 naming the first file on the
    /// way, 100 naming the first missing path.
    fn lookup(&self, p: &[u8]) -> Result<&Node, Error> {
        let mut cur = &self.root;
        let mut end = 0;
        for seg in path::segments(p) {
            let children = cur.children().ok_or_else(|| {
                Error::new(Code::NotDir, lossy(parent_of(p, end)), self.current_index)
            })?;
            let seg_end = end + 1 + seg.len();
            cur = children.get(seg).ok_or_else(|| {
                Error::new(Code::KeyNotFound, lossy(&p[..seg_end]), self.current_index)
            })?;
            end = seg_end;
        }
        Ok(cur)
    }

    fn lookup_mut(&mut self, p: &[u8]) -> Result<&mut Node, Error> {
        // Check with the shared walk first so errors are built in one place.
        self.lookup(p)?;
        let mut cur = &mut self.root;
        for seg in path::segments(p) {
            cur = cur
                .children_mut()
                .and_then(|c| c.get_mut(seg))
                .expect("lookup found the path");
        }
        Ok(cur)
    }

    // ----- reads -------------------------------------------------------

    /// `GET`: the node, and for a directory its children.
    pub fn get(&self, p: &[u8], recursive: bool, now_ns: i64) -> Result<Event, Error> {
        let p = clean(p);
        let r = self.lookup(&p).map(|n| {
            let mut e = Event::new(Action::Get, &p, n.modified_index, n.created_index);
            e.node = n.view_for_get(&p, recursive, now_ns);
            e.etcd_index = self.current_index;
            e
        });
        count(&r, &self.stats.gets_success, &self.stats.gets_fail);
        r
    }

    // ----- writes ------------------------------------------------------

    /// `PUT` with `prevExist=false`, and `POST` (`unique`: the key is the
    /// directory `p` plus the new index, zero-padded to 20 digits).
    pub fn create(
        &mut self,
        p: &[u8],
        dir: bool,
        value: &[u8],
        unique: bool,
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_create(
            p,
            dir,
            value,
            unique,
            false,
            ttl.expire(),
            Action::Create,
            now_ns,
        );
        count(&r, &self.stats.create_success, &self.stats.create_fail);
        let e = r?;
        Ok(self.publish(e))
    }

    /// `PUT`: create or replace a key (never a directory).
    pub fn set(
        &mut self,
        p: &[u8],
        dir: bool,
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_set(p, dir, value, ttl, now_ns);
        count(&r, &self.stats.sets_success, &self.stats.sets_fail);
        Ok(self.publish_write(r?, ttl.refresh))
    }

    fn internal_set(
        &mut self,
        p: &[u8],
        dir: bool,
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Event, Error> {
        let p = clean(p);
        // The look-up gives etcd's errors; only a refresh needs the value.
        let existing = match self.lookup(&p) {
            Ok(n) if ttl.refresh => Some(n.value().to_vec()),
            Ok(_) => None,
            Err(e) if e.code == Code::KeyNotFound && !ttl.refresh => None,
            Err(e) => return Err(e),
        };
        let value = match (&existing, ttl.refresh) {
            (Some(v), true) => v.as_slice(),
            _ => value,
        };
        self.internal_create(
            &p,
            dir,
            value,
            false,
            true,
            ttl.expire(),
            Action::Set,
            now_ns,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn internal_create(
        &mut self,
        p: &[u8],
        dir: bool,
        value: &[u8],
        unique: bool,
        replace: bool,
        expire_ns: Option<i64>,
        action: Action,
        now_ns: i64,
    ) -> Result<Event, Error> {
        let curr = self.current_index;
        let next = curr + 1;
        let p = if unique {
            let mut u = p.to_vec();
            u.extend_from_slice(format!("/{next:020}").as_bytes());
            path::clean(&u)
        } else {
            clean(p).into_owned()
        };
        if self.is_read_only(&p) {
            return Err(Error::new(Code::RootReadOnly, "/", curr));
        }
        let (dir_path, name) = path::split(&p);

        // Walk to the parent, creating missing directories on the way.
        let mut parent = &mut self.root;
        let mut end = 0;
        for seg in path::segments(dir_path) {
            let children = parent.children_mut().expect("walk visits directories");
            end += 1 + seg.len();
            if !children.contains_key(seg) {
                children.insert(seg.into(), Node::dir(next, None));
            }
            let child = children.get_mut(seg).expect("present");
            if !child.is_dir() {
                // etcd counts a failed walk as a failed set, whatever the
                // operation (only `create` gets here: `set` looks first).
                self.stats.sets_fail.fetch_add(1, Ordering::Relaxed);
                return Err(Error::new(Code::NotDir, lossy(&dir_path[..end]), curr));
            }
            parent = child;
        }
        let children = parent.children_mut().expect("parent is a directory");

        let mut e = Event::new(action, &p, next, next);
        let mut removed_ttl = None;
        // One walk down the directory for both the check and the write.
        let old = children.get_mut(name);
        if let Some(old) = &old {
            if !replace {
                return Err(Error::new(Code::NodeExist, lossy(&p), curr));
            }
            if old.is_dir() {
                return Err(Error::new(Code::NotFile, lossy(&p), curr));
            }
            e.prev_node = Some(old.view(&p, false, now_ns));
            removed_ttl = old.expire_ns;
        }
        let node = if dir {
            e.node.dir = true;
            Node::dir(next, expire_ns)
        } else {
            e.node.value = Some(value.into());
            Node::file(value, next, expire_ns)
        };
        let (expiration_ns, ttl_s) = node.expiration_and_ttl(now_ns);
        e.node.expiration_ns = expiration_ns;
        e.node.ttl_s = ttl_s;
        match old {
            Some(old) => *old = node,
            None => {
                children.insert(name.into(), node);
            }
        }

        if let Some(old_exp) = removed_ttl {
            self.ttl_index.remove(&(old_exp, p.clone().into()));
        }
        if let Some(exp) = expire_ns {
            self.ttl_index.insert((exp, p.clone().into()));
        }
        self.current_index = next;
        e.etcd_index = next;
        Ok(e)
    }

    /// `PUT` with `prevExist=true`: change an existing key's value, or an
    /// existing directory's TTL.
    pub fn update(
        &mut self,
        p: &[u8],
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_update(p, value, ttl, now_ns);
        count(&r, &self.stats.update_success, &self.stats.update_fail);
        Ok(self.publish_write(r?, ttl.refresh))
    }

    fn internal_update(
        &mut self,
        p: &[u8],
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Event, Error> {
        let p = clean(p);
        if self.is_read_only(&p) {
            return Err(self.read_only_error());
        }
        let curr = self.current_index;
        let next = curr + 1;
        let n = self.lookup_mut(&p)?;
        if n.is_dir() && !value.is_empty() {
            return Err(Error::new(Code::NotFile, lossy(&p), curr));
        }
        let mut e = Event::new(Action::Update, &p, next, n.created_index);
        e.prev_node = Some(n.view(&p, false, now_ns));
        match &mut n.content {
            // etcd leaves a directory's modified index alone on update.
            Content::Dir(_) => e.node.dir = true,
            Content::File(v) => {
                if !ttl.refresh {
                    *v = value.into();
                }
                n.modified_index = next;
                e.node.value = Some(v.clone());
            }
        }
        let old_exp = retime(n, &mut e, ttl.expire(), now_ns);
        Ok(self.finish_rewrite(&p, e, old_exp, ttl.expire(), next))
    }

    /// `PUT` with `prevValue` and/or `prevIndex`.
    pub fn compare_and_swap(
        &mut self,
        p: &[u8],
        prev_value: &[u8],
        prev_index: u64,
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_cas(p, prev_value, prev_index, value, ttl, now_ns);
        count(
            &r,
            &self.stats.compare_and_swap_success,
            &self.stats.compare_and_swap_fail,
        );
        Ok(self.publish_write(r?, ttl.refresh))
    }

    fn internal_cas(
        &mut self,
        p: &[u8],
        prev_value: &[u8],
        prev_index: u64,
        value: &[u8],
        ttl: TtlOptions,
        now_ns: i64,
    ) -> Result<Event, Error> {
        let p = clean(p);
        if self.is_read_only(&p) {
            return Err(self.read_only_error());
        }
        let curr = self.current_index;
        let next = curr + 1;
        let n = self.lookup_mut(&p)?;
        if n.is_dir() {
            return Err(Error::new(Code::NotFile, lossy(&p), curr));
        }
        compare(n, prev_value, prev_index, curr)?;
        let mut e = Event::new(Action::CompareAndSwap, &p, next, n.created_index);
        e.prev_node = Some(n.view(&p, false, now_ns));
        if let Content::File(v) = &mut n.content {
            if !ttl.refresh {
                *v = value.into();
            }
            e.node.value = Some(v.clone());
        }
        n.modified_index = next;
        let old_exp = retime(n, &mut e, ttl.expire(), now_ns);
        Ok(self.finish_rewrite(&p, e, old_exp, ttl.expire(), next))
    }

    /// `DELETE`: a key, an empty directory (`dir`), or a whole subtree
    /// (`recursive`).
    pub fn delete(
        &mut self,
        p: &[u8],
        dir: bool,
        recursive: bool,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_delete(p, dir || recursive, recursive, now_ns);
        count(&r, &self.stats.delete_success, &self.stats.delete_fail);
        r
    }

    fn internal_delete(
        &mut self,
        p: &[u8],
        dir: bool,
        recursive: bool,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let p = clean(p);
        if self.is_read_only(&p) {
            return Err(self.read_only_error());
        }
        let curr = self.current_index;
        let next = curr + 1;
        let n = self.lookup(&p)?;
        if let Some(children) = n.children() {
            if !dir {
                return Err(Error::new(Code::NotFile, lossy(&p), curr));
            }
            if !children.is_empty() && !recursive {
                return Err(Error::new(Code::DirNotEmpty, lossy(&p), curr));
            }
        }
        let mut e = Event::new(Action::Delete, &p, next, n.created_index);
        e.prev_node = Some(n.view(&p, false, now_ns));
        e.node.dir = n.is_dir();
        e.etcd_index = next;
        self.current_index = next;
        let e = Arc::new(e);
        self.remove_subtree(&p, &e);
        Ok(self.publish_arc(e))
    }

    /// `DELETE` with `prevValue` and/or `prevIndex` (keys only).
    pub fn compare_and_delete(
        &mut self,
        p: &[u8],
        prev_value: &[u8],
        prev_index: u64,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let r = self.internal_cad(p, prev_value, prev_index, now_ns);
        count(
            &r,
            &self.stats.compare_and_delete_success,
            &self.stats.compare_and_delete_fail,
        );
        r
    }

    fn internal_cad(
        &mut self,
        p: &[u8],
        prev_value: &[u8],
        prev_index: u64,
        now_ns: i64,
    ) -> Result<Arc<Event>, Error> {
        let p = clean(p);
        let curr = self.current_index;
        let n = self.lookup(&p)?;
        if n.is_dir() {
            return Err(Error::new(Code::NotFile, lossy(&p), curr));
        }
        compare(n, prev_value, prev_index, curr)?;
        let next = curr + 1;
        let mut e = Event::new(Action::CompareAndDelete, &p, next, n.created_index);
        e.prev_node = Some(n.view(&p, false, now_ns));
        e.etcd_index = next;
        self.current_index = next;
        let e = Arc::new(e);
        self.remove_subtree(&p, &e);
        Ok(self.publish_arc(e))
    }

    /// Expires every node whose expiry time is at or before `cutoff_ns`,
    /// one `expire` event each, oldest first. Called when a sync entry
    /// proposed by the leader is applied, with the leader's time.
    pub fn delete_expired(&mut self, cutoff_ns: i64) -> Vec<Arc<Event>> {
        let mut events = Vec::new();
        while let Some((exp, p)) = self.ttl_index.first().cloned() {
            if exp > cutoff_ns {
                break;
            }
            let Ok(n) = self.lookup(&p) else {
                // Invariant: the TTL index names only live nodes.
                debug_assert!(false, "TTL index names a missing node");
                self.ttl_index.remove(&(exp, p));
                continue;
            };
            let next = self.current_index + 1;
            let mut e = Event::new(Action::Expire, &p, next, n.created_index);
            e.prev_node = Some(n.view(&p, false, cutoff_ns));
            e.node.dir = n.is_dir();
            e.etcd_index = next;
            self.current_index = next;
            let e = Arc::new(e);
            self.remove_subtree(&p, &e);
            self.stats.expire_count.fetch_add(1, Ordering::Relaxed);
            events.push(self.publish_arc(e));
        }
        events
    }

    // ----- watches -----------------------------------------------------

    /// Starts a watch on `p`. `since_index` 0 means "the next change". A
    /// matching event already in the history answers at once; otherwise
    /// the watcher waits and its events go to `sink`.
    pub fn watch(
        &mut self,
        p: &[u8],
        recursive: bool,
        stream: bool,
        since_index: u64,
        sink: Box<dyn WatchSink>,
    ) -> Result<WatchStart, Error> {
        let p = clean(p);
        let since = if since_index == 0 {
            self.current_index + 1
        } else {
            since_index
        };
        let mut past = self.history.scan(&p, recursive, since).map_err(|mut e| {
            e.index = self.current_index;
            e
        })?;
        // A matching past event answers the watch, stream or not. etcd then
        // leaves a stream watcher unregistered: it gets that one event and
        // nothing more. The reference is the specification, so we do the
        // same (the API layer keeps such a stream open and silent).
        if let Some(e) = past.next() {
            // etcd answers with a copy stamped with the current index (the
            // `X-Etcd-Index` of the response), not the event's.
            let mut e = Event::clone(e);
            e.etcd_index = self.current_index;
            return Ok(WatchStart::Ready(Arc::new(e)));
        }
        let since = since.max(self.current_index + 1);
        Ok(WatchStart::Waiting(
            self.hub.add(&p, recursive, stream, since, sink),
        ))
    }

    /// Removes a waiting watcher (its client went away). Returns whether it
    /// was still registered.
    pub fn unwatch(&mut self, w: WatcherId) -> bool {
        self.hub.remove(w)
    }

    // ----- internals ---------------------------------------------------

    fn publish(&mut self, e: Event) -> Arc<Event> {
        self.publish_arc(Arc::new(e))
    }

    fn publish_arc(&mut self, e: Arc<Event>) -> Arc<Event> {
        self.history.push(e.clone());
        self.hub.notify(&e);
        e
    }

    /// Publishes a write, or only records it when it is a TTL refresh
    /// (refreshes wake no watcher).
    fn publish_write(&mut self, e: Event, refresh: bool) -> Arc<Event> {
        if refresh {
            self.record_refresh(e)
        } else {
            self.publish(e)
        }
    }

    /// The end of an update or compare-and-swap: the TTL index follows the
    /// node's new expiry and the store index moves to `next`.
    fn finish_rewrite(
        &mut self,
        p: &[u8],
        mut e: Event,
        old_exp: Option<i64>,
        new_exp: Option<i64>,
        next: u64,
    ) -> Event {
        self.move_ttl(p, old_exp, new_exp);
        self.current_index = next;
        e.etcd_index = next;
        e
    }

    fn record_refresh(&mut self, mut e: Event) -> Arc<Event> {
        e.refresh = true;
        let e = Arc::new(e);
        self.history.push(e.clone());
        e
    }

    fn move_ttl(&mut self, p: &[u8], old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(o) = old {
            self.ttl_index.remove(&(o, p.into()));
        }
        if let Some(n) = new {
            self.ttl_index.insert((n, p.into()));
        }
    }

    /// Detaches the node at `p` and everything below it, drops their TTL
    /// entries, and wakes the watchers of every removed path below `p`
    /// (watchers of `p` itself and its ancestors are woken by `publish`).
    fn remove_subtree(&mut self, p: &[u8], e: &Arc<Event>) {
        let (parent, name) = path::split(p);
        let parent = self
            .lookup_mut(parent)
            .expect("parent of a live node exists");
        let node = parent
            .children_mut()
            .and_then(|c| c.remove(name))
            .expect("node exists");
        let mut removed = Vec::new();
        collect_paths(&node, p, &mut removed);
        for (path, exp) in removed {
            if let Some(exp) = exp {
                self.ttl_index.remove(&(exp, path.clone().into()));
            }
            if path != p {
                self.hub.notify_path(e, &path, true);
            }
        }
    }

    /// JSON of `/v2/stats/store`, fields in etcd's order.
    pub fn stats_json(&self) -> Vec<u8> {
        let s = &self.stats;
        let fields: [(&str, u64); 16] = [
            ("getsSuccess", s.gets_success.load(Ordering::Relaxed)),
            ("getsFail", s.gets_fail.load(Ordering::Relaxed)),
            ("setsSuccess", s.sets_success.load(Ordering::Relaxed)),
            ("setsFail", s.sets_fail.load(Ordering::Relaxed)),
            ("deleteSuccess", s.delete_success.load(Ordering::Relaxed)),
            ("deleteFail", s.delete_fail.load(Ordering::Relaxed)),
            ("updateSuccess", s.update_success.load(Ordering::Relaxed)),
            ("updateFail", s.update_fail.load(Ordering::Relaxed)),
            ("createSuccess", s.create_success.load(Ordering::Relaxed)),
            ("createFail", s.create_fail.load(Ordering::Relaxed)),
            (
                "compareAndSwapSuccess",
                s.compare_and_swap_success.load(Ordering::Relaxed),
            ),
            (
                "compareAndSwapFail",
                s.compare_and_swap_fail.load(Ordering::Relaxed),
            ),
            (
                "compareAndDeleteSuccess",
                s.compare_and_delete_success.load(Ordering::Relaxed),
            ),
            (
                "compareAndDeleteFail",
                s.compare_and_delete_fail.load(Ordering::Relaxed),
            ),
            ("expireCount", s.expire_count.load(Ordering::Relaxed)),
            ("watchers", self.hub.count() as u64),
        ];
        let mut out = Vec::with_capacity(512);
        out.push(b'{');
        for (i, (name, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            crate::json::write_u64(&mut out, *v);
        }
        out.push(b'}');
        out
    }

    /// Every event of the history, oldest first (for snapshots and tests).
    pub fn history(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.history.events()
    }
}

/// Gives a rewritten node its new expiry and puts expiration and TTL in the
/// event; returns the old expiry.
fn retime(n: &mut Node, e: &mut Event, expire: Option<i64>, now_ns: i64) -> Option<i64> {
    let old = n.expire_ns;
    n.expire_ns = expire;
    let (expiration_ns, ttl_s) = n.expiration_and_ttl(now_ns);
    e.node.expiration_ns = expiration_ns;
    e.node.ttl_s = ttl_s;
    old
}

fn collect_paths(n: &Node, p: &[u8], out: &mut Vec<(Vec<u8>, Option<i64>)>) {
    if let Some(children) = n.children() {
        for (name, child) in children {
            collect_paths(child, &path::join(p, name), out);
        }
    }
    out.push((p.to_vec(), n.expire_ns));
}

/// etcd's compare: an empty `prev_value` and a zero `prev_index` match
/// anything. The cause names what did not match.
fn compare(n: &Node, prev_value: &[u8], prev_index: u64, curr: u64) -> Result<(), Error> {
    let index_ok = prev_index == 0 || n.modified_index == prev_index;
    let value_ok = prev_value.is_empty() || n.value() == prev_value;
    let cause = match (value_ok, index_ok) {
        (true, true) => return Ok(()),
        (true, false) => format!("[{} != {}]", prev_index, n.modified_index),
        (false, true) => format!("[{} != {}]", lossy(prev_value), lossy(n.value())),
        (false, false) => format!(
            "[{} != {}] [{} != {}]",
            lossy(prev_value),
            lossy(n.value()),
            prev_index,
            n.modified_index
        ),
    };
    Err(Error::new(Code::TestFailed, cause, curr))
}

fn clean(p: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if path::is_clean(p) {
        std::borrow::Cow::Borrowed(p)
    } else {
        std::borrow::Cow::Owned(path::clean(p))
    }
}

/// The path of the directory that ends at byte `end` of `p` (the root when
/// `end` is 0).
fn parent_of(p: &[u8], end: usize) -> &[u8] {
    if end == 0 {
        b"/"
    } else {
        &p[..end]
    }
}

/// Bytes as text for an error cause, one U+FFFD per invalid byte as Go's
/// JSON encoder reads them (std's lossy conversion would merge a truncated
/// sequence into one).
fn lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = &after[1..];
            }
        }
    }
}
