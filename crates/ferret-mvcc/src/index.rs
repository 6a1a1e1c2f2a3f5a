//! The key index: every key's [`KeyIndex`], in key order, in memory.
//!
//! Values live in the backend, keyed by revision; the index says which
//! revision holds a key's value at a given revision. It is rebuilt from
//! the backend at start.
//!
//! The index is shared: the apply path writes it, reads and the compactor
//! take it briefly (see [`crate::store`] for the locking). It also holds
//! the compacted revision, so a reader checks the compaction and collects
//! revisions under one lock.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::key_index::{Found, KeyIndex};
use crate::revision::Revision;

/// Which keys a request names, from etcd's `key`/`range_end` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// `range_end` empty: exactly `key`.
    Single(&'a [u8]),
    /// `[start, end)`; no `end` (`range_end` is `"\0"`) means every key
    /// from `start` on.
    Span {
        start: &'a [u8],
        end: Option<&'a [u8]>,
    },
}

impl<'a> KeyRange<'a> {
    /// etcd's reading of `key` and `range_end` (`mkGteRange`: a range end
    /// of one zero byte means "to the end").
    pub fn new(key: &'a [u8], range_end: &'a [u8]) -> KeyRange<'a> {
        match range_end {
            [] => KeyRange::Single(key),
            [0] => KeyRange::Span {
                start: key,
                end: None,
            },
            end => KeyRange::Span {
                start: key,
                end: Some(end),
            },
        }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        match *self {
            KeyRange::Single(key) => k == key,
            KeyRange::Span { start, end } => k >= start && end.is_none_or(|e| k < e),
        }
    }

    /// A span whose end is at or before its start holds nothing.
    fn is_empty(&self) -> bool {
        match *self {
            KeyRange::Single(_) => false,
            KeyRange::Span { start, end } => end.is_some_and(|e| e <= start),
        }
    }
}

/// How many keys one lock acquisition may visit when a reader walks a
/// large range or the compactor walks the index: about 0.1 ms of work, so
/// a big range never holds the apply path back for longer.
pub const KEYS_PER_LOCK: usize = 1000;

/// How many keys the compactor compacts per hold of the index's write
/// lock. Applying one entry takes the lock a few times, and the compactor
/// hands it over fairly after each chunk, so an entry may wait a chunk
/// per take: at about 2 µs a key, 32 keys keep that well under a
/// millisecond an entry (chunks of 1000 keys made applies take 30-70 ms
/// when three members compacted 100k keys on two cores).
pub const COMPACT_KEYS_PER_LOCK: usize = 32;

/// A key as it was before a put: what the put's new revision inherits
/// (create revision, version) and the lease it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub created: i64,
    pub version: i64,
    pub lease: i64,
}

pub struct Index {
    keys: BTreeMap<Box<[u8]>, KeyIndex>,
    /// Keys that exist now (not deleted): etcd's
    /// `etcd_debugging_mvcc_keys_total`, kept by `put`, `tombstone` and
    /// `restore` (compaction removes only deleted keys).
    live: usize,
    /// Reads below this revision are refused: compaction may have removed
    /// what they need (etcd's `compactMainRev`). [`NEVER_COMPACTED`] until
    /// the first compaction.
    pub compact_rev: i64,
}

/// The compacted revision of a store never compacted: -1 as etcd's, so
/// that a first compaction at revision 0 is taken (and a second refused).
pub const NEVER_COMPACTED: i64 = -1;

impl Default for Index {
    fn default() -> Self {
        Index {
            keys: BTreeMap::new(),
            live: 0,
            compact_rev: NEVER_COMPACTED,
        }
    }
}

impl Index {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys that exist now.
    pub fn live_keys(&self) -> usize {
        self.live
    }

    pub fn key_index(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.keys.get(key)
    }

    /// The key as of revision `at`.
    pub fn get(&self, key: &[u8], at: i64) -> Option<Found> {
        self.keys.get(key)?.get(at)
    }

    /// Records a put of `key` at `rev` and returns the key as it was just
    /// before (its live generation's create revision and version, and its
    /// lease), or `None` if it did not exist. One lookup: a put is the
    /// commonest write, and each lookup in a large index costs a few cache
    /// misses.
    pub fn put(&mut self, key: &[u8], rev: Revision, lease: i64) -> Option<Previous> {
        match self.keys.get_mut(key) {
            Some(ki) => {
                let prev = ki.get(rev.main).map(|f| Previous {
                    created: f.created.main,
                    version: f.version,
                    lease: ki.lease,
                });
                if !ki.is_live() {
                    self.live += 1;
                }
                ki.put(rev, lease);
                prev
            }
            None => {
                self.keys.insert(key.into(), KeyIndex::new(rev, lease));
                self.live += 1;
                None
            }
        }
    }

    /// Inserts an index restored from the backend.
    pub fn restore(&mut self, key: &[u8], ki: KeyIndex) {
        let live = ki.is_live();
        if let Some(old) = self.keys.insert(key.into(), ki) {
            self.live -= usize::from(old.is_live());
        }
        self.live += usize::from(live);
    }

    pub fn key_index_mut(&mut self, key: &[u8]) -> Option<&mut KeyIndex> {
        self.keys.get_mut(key)
    }

    /// Records a deletion; `false` if the key does not exist now.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> bool {
        let deleted = self.keys.get_mut(key).is_some_and(|ki| ki.tombstone(rev));
        self.live -= usize::from(deleted);
        deleted
    }

    /// Visits, in key order, every key of `range` that exists at `at`,
    /// starting after `resume` if given, until `visit` returns false or
    /// `budget` keys were looked at. Returns the last key looked at if the
    /// budget ran out first (to resume from), else `None`.
    pub fn walk(
        &self,
        range: KeyRange<'_>,
        at: i64,
        resume: Option<&[u8]>,
        budget: usize,
        mut visit: impl FnMut(&[u8], Found) -> bool,
    ) -> Option<Box<[u8]>> {
        if range.is_empty() {
            return None;
        }
        let (start, end) = match range {
            KeyRange::Single(k) => {
                if resume.is_none() {
                    if let Some(f) = self.get(k, at) {
                        visit(k, f);
                    }
                }
                return None;
            }
            KeyRange::Span { start, end } => (start, end),
        };
        let lower = match resume {
            Some(r) => Bound::Excluded(r),
            None => Bound::Included(start),
        };
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let mut last: Option<&[u8]> = None;
        for (seen, (k, ki)) in self
            .keys
            .range::<[u8], (Bound<&[u8]>, Bound<&[u8]>)>((lower, upper))
            .enumerate()
        {
            if seen == budget {
                // Resume after the last key looked at.
                return last.map(Box::from);
            }
            last = Some(k);
            if let Some(f) = ki.get(at) {
                if !visit(k, f) {
                    return None;
                }
            }
        }
        None
    }

    /// Compacts up to `budget` keys at `at`, starting after `resume`;
    /// revisions `<= at` still readable go to `keep`. Returns where to
    /// resume, `None` once every key was done.
    pub fn compact_some(
        &mut self,
        at: i64,
        resume: Option<&[u8]>,
        budget: usize,
        keep: &mut Vec<Revision>,
    ) -> Option<Box<[u8]>> {
        let lower = match resume {
            Some(r) => Bound::Excluded(r),
            None => Bound::Unbounded,
        };
        let mut emptied: Vec<Box<[u8]>> = Vec::new();
        let mut next = None;
        let mut last: Option<&Box<[u8]>> = None;
        for (seen, (k, ki)) in self
            .keys
            .range_mut::<[u8], (Bound<&[u8]>, Bound<&[u8]>)>((lower, Bound::Unbounded))
            .enumerate()
        {
            if seen == budget {
                // Resume after the last key compacted.
                next = last.cloned();
                break;
            }
            last = Some(k);
            ki.compact(at, keep);
            if ki.is_empty() {
                emptied.push(k.clone());
            }
        }
        for k in emptied {
            self.keys.remove(&k);
        }
        next
    }

    /// Every key with its index, in key order (tests and consistency checks).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &KeyIndex)> {
        self.keys.iter().map(|(k, v)| (&**k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: i64) -> Revision {
        Revision::new(m, 0)
    }

    fn idx() -> Index {
        let mut i = Index::default();
        i.put(b"a", r(2), 0);
        i.put(b"b", r(3), 0);
        i.put(b"c", r(4), 0);
        i.put(b"b", r(5), 0);
        assert!(i.tombstone(b"a", r(6)));
        i
    }

    fn keys(i: &Index, range: KeyRange<'_>, at: i64) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        i.walk(range, at, None, usize::MAX, |k, f| {
            out.push((String::from_utf8_lossy(k).into_owned(), f.modified.main));
            true
        });
        out
    }

    #[test]
    fn live_keys_follow_puts_deletes_restores_and_compactions() {
        let mut i = idx();
        // a deleted; b and c exist.
        assert_eq!(i.live_keys(), 2);
        assert!(!i.tombstone(b"a", r(7)));
        assert_eq!(i.live_keys(), 2);
        i.put(b"a", r(8), 0);
        assert_eq!(i.live_keys(), 3);
        i.restore(b"d", KeyIndex::restored_tombstone(r(9)));
        i.restore(b"e", KeyIndex::restored(r(10), r(10), 1, 0));
        assert_eq!(i.live_keys(), 4);
        // Replacing a live key by a restored tombstone.
        i.restore(b"e", KeyIndex::restored_tombstone(r(11)));
        assert_eq!(i.live_keys(), 3);
        let mut keep = Vec::new();
        i.compact_some(11, None, usize::MAX, &mut keep);
        assert_eq!(i.live_keys(), 3);
        assert_eq!(i.iter().filter(|(_, ki)| ki.is_live()).count(), 3);
    }

    #[test]
    fn a_put_returns_the_key_as_it_was() {
        let mut i = Index::default();
        assert_eq!(i.put(b"k", r(2), 7), None);
        let second = i.put(b"k", Revision::new(3, 1), 0);
        assert_eq!(
            second,
            Some(Previous {
                created: 2,
                version: 1,
                lease: 7
            })
        );
        let third = i.put(b"k", r(4), 0).expect("the key exists");
        assert_eq!((third.created, third.version, third.lease), (2, 2, 0));
        assert!(i.tombstone(b"k", r(5)));
        // A put after a delete starts a new generation: nothing to inherit.
        assert_eq!(i.put(b"k", r(6), 0), None);
        let f = i.get(b"k", 6).expect("put at 6");
        assert_eq!((f.created.main, f.version), (6, 1));
    }

    #[test]
    fn key_ranges_read_like_etcd() {
        assert_eq!(KeyRange::new(b"a", b""), KeyRange::Single(b"a"));
        assert_eq!(
            KeyRange::new(b"a", b"\0"),
            KeyRange::Span {
                start: b"a",
                end: None
            }
        );
        assert!(KeyRange::new(b"a", b"c").contains(b"b"));
        assert!(!KeyRange::new(b"a", b"c").contains(b"c"));
        assert!(KeyRange::new(b"\0", b"\0").contains(b"zzz"));
    }

    #[test]
    fn walk_at_revisions() {
        let i = idx();
        let all = KeyRange::new(b"\0", b"\0");
        assert_eq!(keys(&i, all, 6), vec![("b".into(), 5), ("c".into(), 4)]);
        assert_eq!(
            keys(&i, all, 4),
            vec![("a".into(), 2), ("b".into(), 3), ("c".into(), 4)]
        );
        assert_eq!(
            keys(&i, KeyRange::new(b"b", b"c"), 6),
            vec![("b".into(), 5)]
        );
        assert_eq!(keys(&i, KeyRange::new(b"a", b""), 6), vec![]);
        assert_eq!(keys(&i, KeyRange::new(b"a", b""), 5), vec![("a".into(), 2)]);
        assert_eq!(
            keys(&i, KeyRange::new(b"c", b"a"), 6),
            vec![],
            "end before start"
        );
    }

    #[test]
    fn walk_resumes_across_budgets() {
        let mut i = Index::default();
        for n in 0..25u8 {
            i.put(&[b'k', n], r(n as i64 + 2), 0);
        }
        let mut got = Vec::new();
        let mut resume: Option<Box<[u8]>> = None;
        loop {
            resume = i.walk(
                KeyRange::new(b"k", b"l"),
                100,
                resume.as_deref(),
                7,
                |k, _| {
                    got.push(k[1]);
                    true
                },
            );
            if resume.is_none() {
                break;
            }
        }
        assert_eq!(got, (0..25).collect::<Vec<u8>>());
    }

    #[test]
    fn compaction_removes_dead_keys_in_chunks() {
        let mut i = idx();
        let mut keep = Vec::new();
        let mut resume: Option<Box<[u8]>> = None;
        loop {
            resume = i.compact_some(6, resume.as_deref(), 1, &mut keep);
            if resume.is_none() {
                break;
            }
        }
        keep.sort();
        assert_eq!(keep, vec![r(4), r(5), r(6)]);
        assert!(
            !i.key_index(b"a").unwrap().is_live(),
            "a was deleted at 6; the tombstone stays for watchers from 6"
        );
        assert_eq!(i.len(), 3);
        i.compact_some(7, None, 100, &mut keep);
        assert!(i.key_index(b"a").is_none(), "gone at the next compaction");
        assert_eq!(i.len(), 2);
    }
}
