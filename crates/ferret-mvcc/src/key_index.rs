//! The revisions of one key: its generations.
//!
//! A key's life is a sequence of **generations**. A generation starts with
//! the put that creates the key and ends with the tombstone that deletes
//! it; the tombstone is the generation's last revision, and a new, empty
//! generation follows it. So a key always has at least one generation, and
//! the last one is empty exactly when the key does not exist now.
//!
//! ```text
//! put(1.0) put(2.0) tombstone(3.0) put(4.0) tombstone(5.0) on "foo":
//!     generations: {1.0, 2.0, 3.0(t)} {4.0, 5.0(t)} {}
//! ```
//!
//! **Compaction at `c`** keeps, in the generation alive at `c`, only the
//! largest revision `<= c` and those after it, and drops every generation
//! that ended (was tombstoned) at or before `c`: no read at a revision
//! `>= c` can reach what it removes. A tombstone is never kept by itself:
//! a generation left holding only its tombstone is dropped too. A key left
//! with only an empty generation is removed from the index altogether.
//!
//! ```text
//! compact(2): {2.0, 3.0(t)} {4.0, 5.0(t)} {}
//! compact(4): {4.0, 5.0(t)} {}
//! compact(5): {}            -> the key is removed
//! ```
//!
//! This is etcd's `keyIndex` (mvcc/key_index.go), whose comment is the
//! best specification of these rules; ferretcd keeps its behaviour.

use crate::revision::Revision;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation {
    /// Number of puts in this generation so far (the version of the last).
    pub ver: i64,
    /// The revision that created the key in this generation.
    pub created: Revision,
    /// Every revision of the generation, ascending; the last one of a
    /// finished generation is its tombstone.
    pub revs: Vec<Revision>,
}

impl Generation {
    fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIndex {
    /// The last revision that touched the key (put or tombstone).
    pub modified: Revision,
    /// The lease the key's live revision is attached to (0 for none or
    /// when the key does not exist): a put needs it to detach the old
    /// lease without reading the backend.
    pub lease: i64,
    pub generations: Vec<Generation>,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            modified: Revision::default(),
            lease: 0,
            generations: vec![Generation::default()],
        }
    }
}

/// What [`KeyIndex::get`] finds at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The revision holding the key's value at the asked revision.
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

impl KeyIndex {
    /// An index restored from the backend: the key's latest revision,
    /// with its create revision and version as the stored value says.
    pub fn restored(created: Revision, modified: Revision, ver: i64, lease: i64) -> KeyIndex {
        KeyIndex {
            modified,
            lease,
            generations: vec![Generation {
                ver,
                created,
                revs: vec![modified],
            }],
        }
    }

    /// Only an empty generation: the key has no revision left.
    pub fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].is_empty()
    }

    /// The key exists at the latest revision.
    pub fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.is_empty())
    }

    /// Records a put at `rev`, which must be above every revision so far.
    pub fn put(&mut self, rev: Revision, lease: i64) {
        assert!(
            rev > self.modified,
            "put at {rev} after {} breaks revision order",
            self.modified
        );
        let g = self
            .generations
            .last_mut()
            .expect("a key index has a generation");
        if g.revs.is_empty() {
            g.created = rev;
        }
        g.revs.push(rev);
        g.ver += 1;
        self.modified = rev;
        self.lease = lease;
    }

    /// Records a deletion at `rev`; `false` (and no change) if the key
    /// does not exist now.
    pub fn tombstone(&mut self, rev: Revision) -> bool {
        if !self.is_live() {
            return false;
        }
        self.put(rev, 0);
        self.generations.push(Generation::default());
        true
    }

    /// The key as of revision `at`: `None` if it did not exist then.
    pub fn get(&self, at: i64) -> Option<Found> {
        let g = self.find_generation(at)?;
        // The last revision at or below `at`.
        let n = g.revs.iter().rposition(|r| r.main <= at)?;
        Some(Found {
            modified: g.revs[n],
            created: g.created,
            version: g.ver - (g.revs.len() - n - 1) as i64,
        })
    }

    /// The generation `at` falls in, `None` if the key did not exist at
    /// `at` (before its first revision, or between a tombstone and the
    /// next put).
    fn find_generation(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len() - 1;
        for (i, g) in self.generations.iter().enumerate().rev() {
            if g.is_empty() {
                continue;
            }
            if i != last {
                let tomb = g.revs.last().expect("non-empty").main;
                if tomb <= at {
                    return None;
                }
            }
            if g.revs[0].main <= at {
                return Some(g);
            }
        }
        None
    }

    /// Compacts at `at` (see the module documentation). Every revision
    /// `<= at` that a read at `at` can still reach is added to `keep`.
    pub fn compact(&mut self, at: i64, keep: &mut Vec<Revision>) {
        if self.is_empty() {
            return;
        }
        let (gen_idx, rev_idx) = self.compact_point(at);
        let last = self.generations.len() - 1;
        let mut drop_to = gen_idx;
        let g = &mut self.generations[gen_idx];
        if !g.is_empty() {
            if let Some(i) = rev_idx {
                g.revs.drain(..i);
                if gen_idx != last && g.revs.len() == 1 {
                    // Only the tombstone is left: the generation ended at
                    // or before `at`, nothing in it is readable.
                    drop_to += 1;
                } else {
                    keep.push(g.revs[0]);
                }
            }
        }
        self.generations.drain(..drop_to);
    }

    /// The revisions `<= at` that compaction at `at` would keep, without
    /// compacting (for hashing the store at a revision).
    pub fn keep(&self, at: i64, keep: &mut Vec<Revision>) {
        if self.is_empty() {
            return;
        }
        let (gen_idx, rev_idx) = self.compact_point(at);
        let g = &self.generations[gen_idx];
        if let Some(i) = rev_idx {
            let is_tomb = i == g.revs.len() - 1 && gen_idx != self.generations.len() - 1;
            if !is_tomb {
                keep.push(g.revs[i]);
            }
        }
    }

    /// The first generation that ends after `at` (or the last one), and in
    /// it the index of the largest revision `<= at`, if any.
    fn compact_point(&self, at: i64) -> (usize, Option<usize>) {
        let mut gen_idx = 0;
        while gen_idx < self.generations.len() - 1 {
            let g = &self.generations[gen_idx];
            let tomb = g.revs.last().expect("finished generations are non-empty");
            if tomb.main > at {
                break;
            }
            gen_idx += 1;
        }
        let rev_idx = self.generations[gen_idx]
            .revs
            .iter()
            .rposition(|r| r.main <= at);
        (gen_idx, rev_idx)
    }

    /// Every revision above `since` (main), for each main revision only
    /// the one with the largest sub revision.
    pub fn since(&self, since: i64) -> Vec<Revision> {
        let mut out: Vec<Revision> = Vec::new();
        for g in &self.generations {
            for r in &g.revs {
                if r.main < since {
                    continue;
                }
                match out.last_mut() {
                    Some(last) if last.main == r.main => *last = *r,
                    _ => out.push(*r),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// put(1) put(2) tomb(3) put(4) tomb(5), etcd's example.
    fn example() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(r(1), 0);
        ki.put(r(2), 0);
        assert!(ki.tombstone(r(3)));
        ki.put(r(4), 0);
        assert!(ki.tombstone(r(5)));
        ki
    }

    fn gens(ki: &KeyIndex) -> Vec<Vec<i64>> {
        ki.generations
            .iter()
            .map(|g| g.revs.iter().map(|r| r.main).collect())
            .collect()
    }

    #[test]
    fn generations_follow_puts_and_tombstones() {
        let ki = example();
        assert_eq!(gens(&ki), vec![vec![1, 2, 3], vec![4, 5], vec![]]);
        assert_eq!(ki.modified, r(5));
        assert!(!ki.is_live());
        assert_eq!(ki.generations[1].created, r(4));
        assert_eq!(ki.generations[1].ver, 2);
    }

    #[test]
    fn tombstone_of_a_missing_key_is_refused() {
        let mut ki = example();
        assert!(!ki.tombstone(r(6)));
        assert_eq!(ki.modified, r(5));
    }

    #[test]
    #[should_panic(expected = "breaks revision order")]
    fn put_below_modified_panics() {
        let mut ki = example();
        ki.put(r(4), 0);
    }

    #[test]
    fn get_at_each_revision() {
        let ki = example();
        let at = |rev| {
            ki.get(rev)
                .map(|f| (f.modified.main, f.created.main, f.version))
        };
        assert_eq!(at(0), None);
        assert_eq!(at(1), Some((1, 1, 1)));
        assert_eq!(at(2), Some((2, 1, 2)));
        assert_eq!(at(3), None, "deleted at 3");
        assert_eq!(at(4), Some((4, 4, 1)));
        assert_eq!(at(5), None);
        assert_eq!(at(100), None);
    }

    #[test]
    fn get_sees_sub_revisions() {
        let mut ki = KeyIndex::default();
        ki.put(Revision::new(2, 0), 0);
        ki.put(Revision::new(2, 3), 0);
        let f = ki.get(2).unwrap();
        assert_eq!(f.modified, Revision::new(2, 3));
        assert_eq!(f.version, 2);
    }

    #[test]
    fn compaction_follows_etcd_example() {
        let mut keep = Vec::new();
        let mut ki = example();
        ki.compact(2, &mut keep);
        assert_eq!(gens(&ki), vec![vec![2, 3], vec![4, 5], vec![]]);
        assert_eq!(keep, vec![r(2)]);

        keep.clear();
        ki.compact(4, &mut keep);
        assert_eq!(gens(&ki), vec![vec![4, 5], vec![]]);
        assert_eq!(keep, vec![r(4)]);

        keep.clear();
        ki.compact(5, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty(), "a tombstone is never kept");

        let mut ki = example();
        keep.clear();
        ki.compact(6, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty());
    }

    #[test]
    fn compaction_at_tombstone_drops_generation() {
        let mut keep = Vec::new();
        let mut ki = example();
        ki.compact(3, &mut keep);
        assert_eq!(gens(&ki), vec![vec![4, 5], vec![]]);
        assert!(keep.is_empty());
    }

    #[test]
    fn compaction_before_first_revision_keeps_everything() {
        let mut keep = Vec::new();
        let mut ki = KeyIndex::default();
        ki.put(r(5), 0);
        ki.put(r(7), 0);
        ki.compact(4, &mut keep);
        assert_eq!(gens(&ki), vec![vec![5, 7]]);
        assert!(keep.is_empty());
        ki.compact(6, &mut keep);
        assert_eq!(gens(&ki), vec![vec![5, 7]]);
        assert_eq!(keep, vec![r(5)]);
        // Reads at or after the compaction are unchanged.
        assert_eq!(ki.get(6).unwrap().modified, r(5));
        assert_eq!(ki.get(6).unwrap().version, 1);
        assert_eq!(ki.get(7).unwrap().version, 2);
    }

    #[test]
    fn compaction_of_live_key_keeps_latest_and_versions() {
        let mut keep = Vec::new();
        let mut ki = KeyIndex::default();
        for m in 1..=5 {
            ki.put(r(m), 0);
        }
        ki.compact(3, &mut keep);
        assert_eq!(gens(&ki), vec![vec![3, 4, 5]]);
        assert_eq!(ki.get(3).unwrap().version, 3);
        assert_eq!(ki.get(5).unwrap().version, 5);
        assert_eq!(ki.get(5).unwrap().created, r(1));
    }

    #[test]
    fn keep_matches_compact() {
        for at in 0..8 {
            let ki = example();
            let mut k1 = Vec::new();
            ki.keep(at, &mut k1);
            let mut ki2 = example();
            let mut k2 = Vec::new();
            ki2.compact(at, &mut k2);
            assert_eq!(k1, k2, "at {at}");
        }
    }

    #[test]
    fn restored_index_reads_like_the_original() {
        let ki = KeyIndex::restored(r(2), r(9), 4, 7);
        let f = ki.get(9).unwrap();
        assert_eq!((f.created, f.version), (r(2), 4));
        assert_eq!(ki.get(8), None);
        assert_eq!(ki.lease, 7);
    }

    #[test]
    fn since_keeps_largest_sub() {
        let mut ki = KeyIndex::default();
        ki.put(Revision::new(2, 0), 0);
        ki.put(Revision::new(2, 1), 0);
        ki.tombstone(Revision::new(3, 0));
        ki.put(Revision::new(4, 0), 0);
        assert_eq!(
            ki.since(2),
            vec![
                Revision::new(2, 1),
                Revision::new(3, 0),
                Revision::new(4, 0)
            ]
        );
        assert_eq!(ki.since(4), vec![Revision::new(4, 0)]);
    }
}
