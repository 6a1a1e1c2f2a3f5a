//! `PMap`: a directory's children, in a persistent (copy-on-write) B-tree.
//!
//! Cloning a map costs one reference count, whatever its size. A write to a
//! map that shares nodes with a clone copies only the nodes on the way to
//! the written key, one per level (5 to 7 levels for 100,000 keys, 7 to 9
//! for 10 million) of at most 11 entries each, and the clone keeps the old
//! ones. That is what lets [`crate::Store::frozen`] take a consistent view
//! of the whole tree in O(1) and lets the store go on changing while
//! another thread encodes the view.
//!
//! A node that nobody else holds is written in place. Finding that out
//! costs one load of its reference count (`writable`; `Arc::make_mut`
//! would take an atomic compare-and-swap for it), so while no view is alive
//! a write costs about what a std `BTreeMap` write costs. The layout is
//! std's: B = 6, so 5 to 11 entries per node (the root: 1 to 11), keys and
//! values in separate arrays inside the node and searched linearly, so a
//! lookup compares inline [`Name`]s without following a pointer but at each
//! level; nodes split where std's split, so they fill as std's do.
//!
//! An insert or a remove goes down once, comparing keys. When the leaf
//! must split (insert) or cannot spare an entry (remove), only the part of
//! the way that the split or the loss climbs is walked again, by the child
//! indexes taken, and rebalanced on the way back as a B-tree does (borrow
//! from a sibling or merge with it), so a map that shrank does not stay
//! tall. Nothing here recurses deeper than the tree's height.

use std::cmp::Ordering;
use std::fmt;
use std::mem;
use std::sync::atomic::{fence, Ordering as AtomicOrdering};
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::name::Name;

/// The B-tree's minimum degree, as std's `BTreeMap`.
const B: usize = 6;
/// Entries a node holds at most.
const CAP: usize = 2 * B - 1;
/// Entries a node other than the root holds at least.
const MIN: usize = B - 1;
/// Children an internal node has at most.
const EDGES: usize = CAP + 1;

/// A leaf, or the entries of an internal node: `keys[i]` holds `vals[i]`.
#[derive(Clone)]
struct Entries<V> {
    keys: ArrayVec<Name, CAP>,
    vals: ArrayVec<V, CAP>,
}

/// An internal node: `edges[i]` holds the keys below `entries.keys[i]`,
/// `edges[i + 1]` those above it.
#[derive(Clone)]
struct Internal<V> {
    entries: Entries<V>,
    edges: ArrayVec<Edge<V>, EDGES>,
}

/// A pointer to a node. Every leaf is at the same depth, so the children of
/// one node are all leaves or all internal.
enum Edge<V> {
    Leaf(Arc<Entries<V>>),
    Internal(Arc<Internal<V>>),
}

impl<V> Clone for Edge<V> {
    fn clone(&self) -> Self {
        match self {
            Edge::Leaf(l) => Edge::Leaf(Arc::clone(l)),
            Edge::Internal(n) => Edge::Internal(Arc::clone(n)),
        }
    }
}

/// An ordered map from [`Name`] to `V`, cheap to clone. See the module
/// documentation.
pub(crate) struct PMap<V> {
    root: Option<Edge<V>>,
    len: usize,
}

impl<V> Clone for PMap<V> {
    /// O(1): the clone shares every node.
    fn clone(&self) -> Self {
        PMap {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<V> Default for PMap<V> {
    fn default() -> Self {
        PMap::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for PMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Where `key` is in `keys` (`Ok`), or the index it would be inserted at.
/// Linear, as std's B-tree: for 11 inline keys it beats a binary search.
fn search(keys: &[Name], key: &[u8]) -> Result<usize, usize> {
    for (i, k) in keys.iter().enumerate() {
        match k.as_bytes().cmp(key) {
            Ordering::Less => {}
            Ordering::Equal => return Ok(i),
            Ordering::Greater => return Err(i),
        }
    }
    Err(keys.len())
}

impl<V> Entries<V> {
    fn new() -> Self {
        Entries {
            keys: ArrayVec::new(),
            vals: ArrayVec::new(),
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn insert(&mut self, i: usize, key: Name, val: V) {
        self.keys.insert(i, key);
        self.vals.insert(i, val);
    }

    fn push(&mut self, key: Name, val: V) {
        self.keys.push(key);
        self.vals.push(val);
    }

    fn remove(&mut self, i: usize) -> (Name, V) {
        (self.keys.remove(i), self.vals.remove(i))
    }

    fn pop(&mut self) -> (Name, V) {
        let key = self.keys.pop().expect("a node to take from is not empty");
        let val = self.vals.pop().expect("keys and values pair up");
        (key, val)
    }

    fn replace(&mut self, i: usize, key: Name, val: V) -> (Name, V) {
        (
            mem::replace(&mut self.keys[i], key),
            mem::replace(&mut self.vals[i], val),
        )
    }

    /// Splits a full node around entry `middle`: keeps the entries before
    /// it and returns it, which goes up, and the entries after it.
    fn split(&mut self, middle: usize) -> (Name, V, Entries<V>) {
        debug_assert_eq!(self.len(), CAP);
        // Popped from the end and put back in order: cheaper than a drain.
        let mut upper = Entries::new();
        while self.len() > middle + 1 {
            let (k, v) = self.pop();
            upper.push(k, v);
        }
        upper.keys.reverse();
        upper.vals.reverse();
        let (key, val) = self.pop();
        (key, val, upper)
    }

    /// Inserts at `i`, splitting a full node (see [`split_point`]): then
    /// returns the entry that goes up and the new node right of it.
    fn insert_or_split(&mut self, i: usize, key: Name, val: V) -> Option<(Name, V, Entries<V>)> {
        if self.len() < CAP {
            self.insert(i, key, val);
            return None;
        }
        let (middle, at) = split_point(i);
        let (up_key, up_val, mut upper) = self.split(middle);
        match at {
            Ok(at) => self.insert(at, key, val),
            Err(at) => upper.insert(at, key, val),
        }
        Some((up_key, up_val, upper))
    }
}

/// Where a full node splits when an entry is inserted at `i`: the index of
/// the entry that goes up, and where the new one goes (`Ok` in the lower
/// node, `Err` in the upper one). std's rule: both halves end with 5 or 6
/// entries, and an append (at `i == CAP`, as in keys written in order)
/// leaves 6 behind rather than 5, so an in-order load fills nodes to 6/11.
fn split_point(i: usize) -> (usize, Result<usize, usize>) {
    match i {
        0..MIN => (MIN - 1, Ok(i)),
        MIN => (MIN, Ok(i)),
        B => (MIN, Err(0)),
        _ => (B, Err(i - B - 1)),
    }
}

/// The node behind `arc`, writable: copied first if another map holds it
/// too (what `Arc::make_mut` does), but without its atomic
/// compare-and-swap on the path where the node is ours alone, which is
/// every node of every write while no view is alive.
#[inline]
fn writable<T: Clone>(arc: &mut Arc<T>) -> &mut T {
    if Arc::strong_count(arc) != 1 {
        copy(arc);
    }
    // Pairs with the release decrement of the last other holder, so that
    // its reads of the node happen before our writes.
    fence(AtomicOrdering::Acquire);
    // SAFETY: the count is 1 and `arc` is borrowed mutably, so no other
    // `Arc` points at the node and none can be made; and no `Weak` exists
    // (this module never makes one), so nothing can upgrade to a second
    // holder either. That is `Arc::get_mut`'s condition. `Arc::as_ptr`
    // keeps the allocation's write permission.
    unsafe { &mut *(Arc::as_ptr(arc) as *mut T) }
}

/// Replaces a shared node with a copy of its own.
#[cold]
#[inline(never)]
fn copy<T: Clone>(arc: &mut Arc<T>) {
    *arc = Arc::new(T::clone(arc));
}

/// An entry that goes up into a parent after its child split, and the new
/// node right of it.
type Split<V> = (Name, V, Edge<V>);

impl<V> Edge<V> {
    fn len(&self) -> usize {
        match self {
            Edge::Leaf(l) => l.len(),
            Edge::Internal(n) => n.entries.len(),
        }
    }
}

impl<V: Clone> Edge<V> {
    /// The node's entries and, for an internal node, its children, made
    /// writable: copied first if another map shares the node.
    fn open(&mut self) -> (&mut Entries<V>, Option<&mut ArrayVec<Edge<V>, EDGES>>) {
        match self {
            Edge::Leaf(l) => (writable(l), None),
            Edge::Internal(n) => {
                let n = writable(n);
                (&mut n.entries, Some(&mut n.edges))
            }
        }
    }

    /// Inserts a key that is not in the tree at the place found on the way
    /// down: `route` holds the child taken at each internal node below
    /// this one, and `at` the index in the leaf. Returns the split that
    /// goes up when this node was full.
    fn insert_routed(&mut self, route: &[u8], at: usize, key: Name, val: V) -> Option<Split<V>> {
        match self {
            Edge::Leaf(l) => {
                debug_assert!(route.is_empty());
                let (k, v, upper) = writable(l).insert_or_split(at, key, val)?;
                Some((k, v, Edge::Leaf(Arc::new(upper))))
            }
            Edge::Internal(n) => {
                let n = writable(n);
                let i = usize::from(route[0]);
                let (key, val, edge) = n.edges[i].insert_routed(&route[1..], at, key, val)?;
                // `edges[i]` split: the entry goes at `i`, the new node
                // right of it.
                if n.entries.len() < CAP {
                    n.entries.insert(i, key, val);
                    n.edges.insert(i + 1, edge);
                    return None;
                }
                let (middle, side) = split_point(i);
                let (up_key, up_val, mut upper_entries) = n.entries.split(middle);
                let mut upper_edges: ArrayVec<Edge<V>, EDGES> =
                    n.edges.drain(middle + 1..).collect();
                match side {
                    Ok(at) => {
                        n.entries.insert(at, key, val);
                        n.edges.insert(at + 1, edge);
                    }
                    Err(at) => {
                        upper_entries.insert(at, key, val);
                        upper_edges.insert(at + 1, edge);
                    }
                }
                let upper = Internal {
                    entries: upper_entries,
                    edges: upper_edges,
                };
                Some((up_key, up_val, Edge::Internal(Arc::new(upper))))
            }
        }
    }

    /// Removes the entry found on the way down: `route` holds the child
    /// taken at each internal node below this one, and `at` the index of
    /// the entry in the node where the route ends. This node may be left
    /// with fewer than [`MIN`] entries (its parent fixes that).
    fn remove_routed(&mut self, route: &[u8], at: usize) -> V {
        match self {
            Edge::Leaf(l) => {
                debug_assert!(route.is_empty());
                writable(l).remove(at).1
            }
            Edge::Internal(n) => {
                let n = writable(n);
                let Some((&i, route)) = route.split_first() else {
                    // The entry is here. Its predecessor, the last entry of
                    // the subtree left of it, takes its place.
                    let (k, v) = n.edges[at].pop_last();
                    let (_, old) = n.entries.replace(at, k, v);
                    n.fix_child(at);
                    return old;
                };
                let i = usize::from(i);
                let old = n.edges[i].remove_routed(route, at);
                n.fix_child(i);
                old
            }
        }
    }

    /// Removes the last entry below this node (which is not empty).
    fn pop_last(&mut self) -> (Name, V) {
        match self {
            Edge::Leaf(l) => writable(l).pop(),
            Edge::Internal(n) => {
                let n = writable(n);
                let last = n.edges.len() - 1;
                let kv = n.edges[last].pop_last();
                n.fix_child(last);
                kv
            }
        }
    }
}

impl<V: Clone> Internal<V> {
    /// Brings `edges[i]` back to at least [`MIN`] entries after a removal:
    /// takes one from a sibling that can spare it, or merges with a sibling.
    fn fix_child(&mut self, i: usize) {
        if self.edges[i].len() >= MIN {
            return;
        }
        if i > 0 && self.edges[i - 1].len() > MIN {
            self.rotate_right(i - 1);
        } else if i + 1 < self.edges.len() && self.edges[i + 1].len() > MIN {
            self.rotate_left(i);
        } else if i > 0 {
            self.merge(i - 1);
        } else {
            self.merge(i);
        }
    }

    /// Moves the last entry of `edges[j]` up to entry `j`, and entry `j`
    /// down to the front of `edges[j + 1]`.
    fn rotate_right(&mut self, j: usize) {
        let (lower, upper) = self.edges.split_at_mut(j + 1);
        let (left, left_edges) = lower[j].open();
        let (right, right_edges) = upper[0].open();
        let (k, v) = left.pop();
        let (k, v) = self.entries.replace(j, k, v);
        right.insert(0, k, v);
        if let (Some(from), Some(to)) = (left_edges, right_edges) {
            to.insert(0, from.pop().expect("internal nodes have edges"));
        }
    }

    /// Moves the first entry of `edges[j + 1]` up to entry `j`, and entry
    /// `j` down to the end of `edges[j]`.
    fn rotate_left(&mut self, j: usize) {
        let (lower, upper) = self.edges.split_at_mut(j + 1);
        let (left, left_edges) = lower[j].open();
        let (right, right_edges) = upper[0].open();
        let (k, v) = right.remove(0);
        let (k, v) = self.entries.replace(j, k, v);
        left.push(k, v);
        if let (Some(to), Some(from)) = (left_edges, right_edges) {
            to.push(from.remove(0));
        }
    }

    /// Merges entry `j` and `edges[j + 1]` into `edges[j]`. Only called
    /// when the two hold at most `2 * MIN - 1` entries, so they fit.
    fn merge(&mut self, j: usize) {
        let (k, v) = self.entries.remove(j);
        let right = self.edges.remove(j + 1);
        let (left, left_edges) = self.edges[j].open();
        left.push(k, v);
        match right {
            Edge::Leaf(r) => {
                let r = Arc::unwrap_or_clone(r);
                left.keys.extend(r.keys);
                left.vals.extend(r.vals);
            }
            Edge::Internal(r) => {
                let r = Arc::unwrap_or_clone(r);
                left.keys.extend(r.entries.keys);
                left.vals.extend(r.entries.vals);
                left_edges
                    .expect("siblings have the same height")
                    .extend(r.edges);
            }
        }
    }
}

impl<V> PMap<V> {
    pub(crate) const fn new() -> Self {
        PMap { root: None, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        let mut edge = self.root.as_ref()?;
        loop {
            match edge {
                Edge::Leaf(l) => return search(&l.keys, key).ok().map(|i| &l.vals[i]),
                Edge::Internal(n) => match search(&n.entries.keys, key) {
                    Ok(i) => return Some(&n.entries.vals[i]),
                    Err(i) => edge = &n.edges[i],
                },
            }
        }
    }

    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> Iter<'_, V> {
        let mut it = Iter {
            stack: Vec::new(),
            leaf: [].iter().zip([].iter()),
            left: self.len,
        };
        if let Some(root) = &self.root {
            it.descend(root);
        }
        it
    }

    /// A map of `entries`, whose keys must be strictly increasing, built
    /// bottom-up with nodes as full as the B-tree allows (as std's
    /// `BTreeMap` builds one from sorted input): no node is copied or
    /// split on the way.
    pub(crate) fn from_sorted(mut entries: impl ExactSizeIterator<Item = (Name, V)>) -> Self {
        let len = entries.len();
        if len == 0 {
            return PMap::new();
        }
        let mut height = 0;
        while capacity(height) < len {
            height += 1;
        }
        let root = build(&mut entries, len, height, true);
        debug_assert!(entries.next().is_none(), "the length was exact");
        PMap {
            root: Some(root),
            len,
        }
    }
}

impl<V: Clone> PMap<V> {
    /// The value of `key`, writable. The nodes on the way are copied first
    /// if another map shares them (also when the key is missing).
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let mut edge = self.root.as_mut()?;
        loop {
            match edge {
                Edge::Leaf(l) => {
                    let l = writable(l);
                    return search(&l.keys, key).ok().map(|i| &mut l.vals[i]);
                }
                Edge::Internal(n) => {
                    let n = writable(n);
                    match search(&n.entries.keys, key) {
                        Ok(i) => return Some(&mut n.entries.vals[i]),
                        Err(i) => edge = &mut n.edges[i],
                    }
                }
            }
        }
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, key: Name, val: V) -> Option<V> {
        // One loop down, which replaces or inserts into a leaf with room.
        // A full leaf splits, and the split goes up to the deepest node on
        // the way that has room: only that part is walked again, by the
        // route taken, without comparing keys.
        let mut edge = match &mut self.root {
            Some(root) => root,
            None => {
                let mut leaf = Entries::new();
                leaf.push(key, val);
                self.root = Some(Edge::Leaf(Arc::new(leaf)));
                self.len = 1;
                return None;
            }
        };
        let mut route = Route::new();
        let mut room = None;
        let at = loop {
            match edge {
                Edge::Leaf(l) => {
                    let l = writable(l);
                    match search(&l.keys, &key) {
                        Ok(i) => return Some(mem::replace(&mut l.vals[i], val)),
                        Err(i) if l.len() < CAP => {
                            l.insert(i, key, val);
                            self.len += 1;
                            return None;
                        }
                        Err(i) => break i,
                    }
                }
                Edge::Internal(n) => {
                    let n = writable(n);
                    match search(&n.entries.keys, &key) {
                        Ok(i) => return Some(mem::replace(&mut n.entries.vals[i], val)),
                        Err(i) => {
                            if n.entries.len() < CAP {
                                room = Some(route.len());
                            }
                            route.push(i as u8);
                            edge = &mut n.edges[i];
                        }
                    }
                }
            }
        };
        self.len += 1;
        let root = self.root.as_mut().expect("not empty");
        let Some(depth) = room else {
            // Every node on the way is full: the root splits too.
            let (key, val, right) = root
                .insert_routed(&route, at, key, val)
                .expect("a full path splits up to the root");
            let left = self.root.take().expect("the root was there");
            let mut entries = Entries::new();
            entries.push(key, val);
            let mut edges = ArrayVec::new();
            edges.push(left);
            edges.push(right);
            self.root = Some(Edge::Internal(Arc::new(Internal { entries, edges })));
            return None;
        };
        let split = follow(root, &route[..depth]).insert_routed(&route[depth..], at, key, val);
        debug_assert!(split.is_none(), "a node with room takes the split below it");
        None
    }

    /// Removes `key`; returns its value. The nodes on the way are copied
    /// first if another map shares them.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        // One loop down, which removes from a leaf that can spare an entry.
        // Otherwise the loss may go up to the deepest node on the way that
        // can spare one (or the root): only that part is walked again, by
        // the route taken, rebalancing on the way back.
        let mut edge = self.root.as_mut()?;
        let mut route = Route::new();
        let mut spare = 0;
        let at = loop {
            match edge {
                Edge::Leaf(l) => {
                    let i = search(&l.keys, key).ok()?;
                    if l.len() > MIN || route.is_empty() {
                        let (_, old) = writable(l).remove(i);
                        self.len -= 1;
                        if self.len == 0 {
                            self.root = None;
                        }
                        return Some(old);
                    }
                    break i;
                }
                Edge::Internal(n) => {
                    let n = writable(n);
                    if n.entries.len() > MIN {
                        spare = route.len();
                    }
                    match search(&n.entries.keys, key) {
                        Ok(i) => break i,
                        Err(i) => {
                            route.push(i as u8);
                            edge = &mut n.edges[i];
                        }
                    }
                }
            }
        };
        self.len -= 1;
        let root = self.root.as_mut().expect("not empty");
        if spare > 0 {
            return Some(follow(root, &route[..spare]).remove_routed(&route[spare..], at));
        }
        let old = root.remove_routed(&route, at);
        // The root may have lost its last entry: the tree gets shorter.
        match root {
            Edge::Leaf(l) if l.len() == 0 => self.root = None,
            Edge::Internal(n) if n.entries.len() == 0 => {
                let only = n.edges[0].clone();
                self.root = Some(only);
            }
            _ => {}
        }
        Some(old)
    }
}

/// The child indexes taken on the way down from the root. No tree gets
/// near 32 levels: that would take more than 6^31 entries.
type Route = ArrayVec<u8, 32>;

/// The node reached from `edge` by `route`, every node on the way writable
/// (they already are: this only goes down again a way just taken).
fn follow<'a, V: Clone>(mut edge: &'a mut Edge<V>, route: &[u8]) -> &'a mut Edge<V> {
    for &i in route {
        match edge {
            Edge::Internal(n) => edge = &mut writable(n).edges[usize::from(i)],
            Edge::Leaf(_) => unreachable!("a route ends at or above the leaves"),
        }
    }
    edge
}

/// Entries a tree of this height holds at most (a leaf has height 0).
fn capacity(height: u32) -> usize {
    EDGES.saturating_pow(height + 1) - 1
}

/// Entries a subtree of this height, not the root, holds at least.
fn min_entries(height: u32) -> usize {
    (MIN + 1).saturating_pow(height + 1) - 1
}

/// A subtree of `height` holding the next `len` entries, which must be
/// between [`min_entries`] (unless `root`) and [`capacity`]. An internal
/// node gets as few children as can hold them, so nodes come out nearly
/// full, but at least [`B`] (2 for the root) so that it has [`MIN`] entries;
/// its entries are shared out evenly among them.
fn build<V>(
    entries: &mut impl Iterator<Item = (Name, V)>,
    len: usize,
    height: u32,
    root: bool,
) -> Edge<V> {
    debug_assert!(len <= capacity(height) && (root || len >= min_entries(height)));
    let mut take = || entries.next().expect("as many entries as the length");
    if height == 0 {
        let mut leaf = Entries::new();
        for _ in 0..len {
            let (k, v) = take();
            leaf.push(k, v);
        }
        return Edge::Leaf(Arc::new(leaf));
    }
    let below = capacity(height - 1);
    let children = (len + 1).div_ceil(below + 1).max(if root { 2 } else { B });
    let in_children = len - (children - 1);
    let (each, extra) = (in_children / children, in_children % children);
    let mut node = Internal {
        entries: Entries::new(),
        edges: ArrayVec::new(),
    };
    for c in 0..children {
        let child_len = each + usize::from(c < extra);
        node.edges
            .push(build(entries, child_len, height - 1, false));
        if c + 1 < children {
            let (k, v) = entries.next().expect("as many entries as the length");
            node.entries.push(k, v);
        }
    }
    Edge::Internal(Arc::new(node))
}

impl<'a, V> IntoIterator for &'a PMap<V> {
    type Item = (&'a Name, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

/// The entries of a [`PMap`] in key order.
pub(crate) struct Iter<'a, V> {
    /// The internal nodes above the current leaf, each with the index of
    /// its next entry.
    stack: Vec<(&'a Internal<V>, usize)>,
    leaf: std::iter::Zip<std::slice::Iter<'a, Name>, std::slice::Iter<'a, V>>,
    left: usize,
}

impl<'a, V> Iter<'a, V> {
    /// Goes down the leftmost path from `edge` to a leaf.
    fn descend(&mut self, mut edge: &'a Edge<V>) {
        loop {
            match edge {
                Edge::Leaf(l) => {
                    self.leaf = l.keys.iter().zip(l.vals.iter());
                    return;
                }
                Edge::Internal(n) => {
                    self.stack.push((n, 0));
                    edge = &n.edges[0];
                }
            }
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Name, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(kv) = self.leaf.next() {
            self.left -= 1;
            return Some(kv);
        }
        loop {
            let top = self.stack.last_mut()?;
            let (node, i) = (top.0, top.1);
            if i < node.entries.len() {
                top.1 += 1;
                self.descend(&node.edges[i + 1]);
                self.left -= 1;
                return Some((&node.entries.keys[i], &node.entries.vals[i]));
            }
            self.stack.pop();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

#[cfg(test)]
impl<V> PMap<V> {
    /// Checks every invariant of the B-tree; panics naming the broken one.
    pub(crate) fn check(&self) {
        fn walk<V>(e: &Edge<V>, root: bool, depth: usize, leaf_depth: &mut Option<usize>) -> usize {
            let (entries, edges) = match e {
                Edge::Leaf(l) => (&**l, None),
                Edge::Internal(n) => (&n.entries, Some(&n.edges)),
            };
            assert_eq!(entries.keys.len(), entries.vals.len());
            assert!(entries.len() <= CAP);
            assert!(
                entries.len() >= if root { 1 } else { MIN },
                "underfull node"
            );
            assert!(
                entries.keys.windows(2).all(|w| w[0] < w[1]),
                "keys in order"
            );
            match edges {
                None => {
                    assert_eq!(*leaf_depth.get_or_insert(depth), depth, "leaves level");
                    entries.len()
                }
                Some(edges) => {
                    assert_eq!(edges.len(), entries.len() + 1);
                    entries.len()
                        + edges
                            .iter()
                            .map(|c| walk(c, false, depth + 1, leaf_depth))
                            .sum::<usize>()
                }
            }
        }
        let n = match &self.root {
            None => 0,
            Some(r) => walk(r, true, 0, &mut None),
        };
        assert_eq!(n, self.len, "length");
        let keys: Vec<&Name> = self.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), self.len);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "in-order keys");
    }

    /// The address of every node, to see which ones two maps share.
    pub(crate) fn node_addresses(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut todo: Vec<&Edge<V>> = self.root.iter().collect();
        while let Some(e) = todo.pop() {
            match e {
                Edge::Leaf(l) => out.push(Arc::as_ptr(l) as usize),
                Edge::Internal(n) => {
                    out.push(Arc::as_ptr(n) as usize);
                    todo.extend(n.edges.iter());
                }
            }
        }
        out
    }
}
