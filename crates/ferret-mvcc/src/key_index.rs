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
//! **Compaction at `c`** keeps, in the first generation that ends at or
//! after `c` (or the live one), only the largest revision `<= c` and those
//! after it, and drops every generation that ended (was tombstoned) before
//! `c`: no read at a revision `>= c` and no watch from `c` can reach what
//! it removes. A tombstone at exactly `c` is kept, alone in its
//! generation, until a later compaction: a watcher that starts at the
//! compacted revision `c` (which etcd allows) must still see that
//! deletion. A key left with only an empty generation is removed from the
//! index altogether.
//!
//! ```text
//! compact(2): {2.0, 3.0(t)} {4.0, 5.0(t)} {}
//! compact(4): {4.0, 5.0(t)} {}
//! compact(5): {5.0(t)} {}   -> the tombstone stays for watchers from 5
//! compact(6): {}            -> the key is removed
//! ```
//!
//! This is etcd's `keyIndex` (mvcc/key_index.go), whose comment is the
//! best specification of these rules. etcd 3.4.23 dropped a tombstone at
//! exactly `c`, so a watcher from `c` missed that deletion; etcd fixed it
//! (etcd-io/etcd#18274, backported to 3.4 and 3.5) by the rule above,
//! which ferretcd follows (the fault suite found the same miss). The
//! revisions a hash counts ([`KeyIndex::keep`]) still leave that
//! tombstone out, so HashKV stays equal to etcd 3.4.23's.

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
    /// The lease the key's live revision is attached to (0 for none or
    /// when the key does not exist): a put needs it to detach the old
    /// lease without reading the backend.
    pub lease: i64,
    revs: Revs,
}

/// A key's generations, in one of two forms.
///
/// Most keys of a large key space exist with one revision in the index: a
/// key put once, a key restored from the backend, or any live key after a
/// compaction. [`Revs::One`] holds that shape without an allocation, so
/// the index costs about half as much per key; every other shape is the
/// general [`Revs::Generations`]. Compaction returns a key to `One` when
/// it can, and nothing outside this module sees the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Revs {
    /// One live generation holding one revision, `rev`.
    One {
        ver: i64,
        created: Revision,
        rev: Revision,
    },
    /// Every generation; the last one is empty when the key does not
    /// exist now.
    Generations(Vec<Generation>),
}

impl Default for KeyIndex {
    /// A key with no revision (only an empty generation).
    fn default() -> Self {
        KeyIndex {
            lease: 0,
            revs: Revs::Generations(vec![Generation::default()]),
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
    /// A key created by a put at `rev`.
    pub fn new(rev: Revision, lease: i64) -> KeyIndex {
        KeyIndex::restored(rev, rev, 1, lease)
    }

    /// An index restored from the backend: the key's latest revision,
    /// with its create revision and version as the stored value says.
    pub fn restored(created: Revision, modified: Revision, ver: i64, lease: i64) -> KeyIndex {
        KeyIndex {
            lease,
            revs: Revs::One {
                ver,
                created,
                rev: modified,
            },
        }
    }

    /// An index restored from a tombstone whose key has no earlier
    /// revision left: one a compaction at exactly its revision kept (see
    /// the module documentation). Indexed, so a compaction that runs again
    /// at that revision (resumed after a restart) keeps it too.
    pub fn restored_tombstone(rev: Revision) -> KeyIndex {
        KeyIndex {
            lease: 0,
            revs: Revs::Generations(vec![
                Generation {
                    ver: 1,
                    created: rev,
                    revs: vec![rev],
                },
                Generation::default(),
            ]),
        }
    }

    /// Only an empty generation: the key has no revision left.
    pub fn is_empty(&self) -> bool {
        match &self.revs {
            Revs::One { .. } => false,
            Revs::Generations(gens) => gens.len() == 1 && gens[0].is_empty(),
        }
    }

    /// The key exists at the latest revision.
    pub fn is_live(&self) -> bool {
        match &self.revs {
            Revs::One { .. } => true,
            Revs::Generations(gens) => gens.last().is_some_and(|g| !g.is_empty()),
        }
    }

    /// The last revision that touched the key (put or tombstone), the
    /// zero revision if none.
    pub fn modified(&self) -> Revision {
        match &self.revs {
            Revs::One { rev, .. } => *rev,
            Revs::Generations(gens) => gens
                .iter()
                .rev()
                .find_map(|g| g.revs.last().copied())
                .unwrap_or_default(),
        }
    }

    /// Records a put at `rev`, which must be above every revision so far.
    pub fn put(&mut self, rev: Revision, lease: i64) {
        let modified = self.modified();
        assert!(
            rev > modified,
            "put at {rev} after {modified} breaks revision order"
        );
        if self.is_empty() {
            *self = KeyIndex::new(rev, lease);
            return;
        }
        self.lease = lease;
        let g = self
            .generations_mut()
            .last_mut()
            .expect("a key index has a generation");
        if g.revs.is_empty() {
            g.created = rev;
        }
        g.revs.push(rev);
        g.ver += 1;
    }

    /// Records a deletion at `rev`; `false` (and no change) if the key
    /// does not exist now.
    pub fn tombstone(&mut self, rev: Revision) -> bool {
        if !self.is_live() {
            return false;
        }
        self.put(rev, 0);
        self.generations_mut().push(Generation::default());
        true
    }

    /// The key as of revision `at`: `None` if it did not exist then.
    pub fn get(&self, at: i64) -> Option<Found> {
        match &self.revs {
            Revs::One { ver, created, rev } => (rev.main <= at).then_some(Found {
                modified: *rev,
                created: *created,
                version: *ver,
            }),
            Revs::Generations(gens) => {
                let g = find_generation(gens, at)?;
                // The last revision at or below `at`.
                let n = g.revs.iter().rposition(|r| r.main <= at)?;
                Some(Found {
                    modified: g.revs[n],
                    created: g.created,
                    version: g.ver - (g.revs.len() - n - 1) as i64,
                })
            }
        }
    }

    /// Compacts at `at` (see the module documentation). Every revision
    /// `<= at` that a read at `at` can still reach is added to `keep`.
    pub fn compact(&mut self, at: i64, keep: &mut Vec<Revision>) {
        if self.is_empty() {
            return;
        }
        let Revs::Generations(gens) = &mut self.revs else {
            // One live revision: nothing to drop, and kept if `at` reaches it.
            return self.keep(at, keep);
        };
        let (gen_idx, rev_idx) = compact_point(gens, at);
        let g = &mut gens[gen_idx];
        if let Some(i) = rev_idx {
            // The largest revision `<= at`: a tombstone only if it is at
            // `at` itself, kept for watchers from `at`.
            g.revs.drain(..i);
            keep.push(g.revs[0]);
        }
        gens.drain(..gen_idx);
        if let [g] = gens.as_slice() {
            if let [rev] = g.revs.as_slice() {
                self.revs = Revs::One {
                    ver: g.ver,
                    created: g.created,
                    rev: *rev,
                };
            }
        }
    }

    /// The revisions `<= at` that a hash at compaction revision `at`
    /// counts, without compacting: the revision the key has at `at` if it
    /// exists then (which is how `crate::hash` gathers them, through
    /// [`crate::index::Index::walk`]). That is what compaction keeps but
    /// for a tombstone at `at` itself, which etcd's hash leaves out.
    pub fn keep(&self, at: i64, keep: &mut Vec<Revision>) {
        if self.is_empty() {
            return;
        }
        let gens = match &self.revs {
            Revs::One { rev, .. } => {
                if rev.main <= at {
                    keep.push(*rev);
                }
                return;
            }
            Revs::Generations(gens) => gens,
        };
        let (gen_idx, rev_idx) = compact_point(gens, at);
        let g = &gens[gen_idx];
        if let Some(i) = rev_idx {
            let is_tomb = i == g.revs.len() - 1 && gen_idx != gens.len() - 1;
            if !is_tomb {
                keep.push(g.revs[i]);
            }
        }
    }

    /// Every revision above `since` (main), for each main revision only
    /// the one with the largest sub revision.
    pub fn since(&self, since: i64) -> Vec<Revision> {
        let gens = match &self.revs {
            Revs::One { rev, .. } => {
                return if rev.main >= since {
                    vec![*rev]
                } else {
                    vec![]
                };
            }
            Revs::Generations(gens) => gens,
        };
        let mut out: Vec<Revision> = Vec::new();
        for g in gens {
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

    /// The general form, converting a [`Revs::One`] to it.
    fn generations_mut(&mut self) -> &mut Vec<Generation> {
        if let Revs::One { ver, created, rev } = self.revs {
            self.revs = Revs::Generations(vec![Generation {
                ver,
                created,
                revs: vec![rev],
            }]);
        }
        match &mut self.revs {
            Revs::Generations(gens) => gens,
            Revs::One { .. } => unreachable!("converted above"),
        }
    }
}

/// The generation `at` falls in, `None` if the key did not exist at `at`
/// (before its first revision, or between a tombstone and the next put).
fn find_generation(gens: &[Generation], at: i64) -> Option<&Generation> {
    let last = gens.len() - 1;
    for (i, g) in gens.iter().enumerate().rev() {
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

/// The first generation that ends at or after `at` (or the last one), and
/// in it the index of the largest revision `<= at`, if any.
fn compact_point(gens: &[Generation], at: i64) -> (usize, Option<usize>) {
    let mut gen_idx = 0;
    while gen_idx < gens.len() - 1 {
        let tomb = gens[gen_idx]
            .revs
            .last()
            .expect("finished generations are non-empty");
        if tomb.main >= at {
            break;
        }
        gen_idx += 1;
    }
    let rev_idx = gens[gen_idx].revs.iter().rposition(|r| r.main <= at);
    (gen_idx, rev_idx)
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

    /// The generations, whichever form the index is in.
    fn generations(ki: &KeyIndex) -> Vec<Generation> {
        ki.clone().generations_mut().clone()
    }

    fn gens(ki: &KeyIndex) -> Vec<Vec<i64>> {
        generations(ki)
            .iter()
            .map(|g| g.revs.iter().map(|r| r.main).collect())
            .collect()
    }

    fn is_one(ki: &KeyIndex) -> bool {
        matches!(ki.revs, Revs::One { .. })
    }

    #[test]
    fn generations_follow_puts_and_tombstones() {
        let ki = example();
        assert_eq!(gens(&ki), vec![vec![1, 2, 3], vec![4, 5], vec![]]);
        assert_eq!(ki.modified(), r(5));
        assert!(!ki.is_live());
        assert_eq!(generations(&ki)[1].created, r(4));
        assert_eq!(generations(&ki)[1].ver, 2);
    }

    #[test]
    fn tombstone_of_a_missing_key_is_refused() {
        let mut ki = example();
        assert!(!ki.tombstone(r(6)));
        assert_eq!(ki.modified(), r(5));
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
        assert_eq!(gens(&ki), vec![vec![5], vec![]]);
        assert_eq!(keep, vec![r(5)], "a tombstone at the compaction is kept");

        keep.clear();
        ki.compact(6, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty(), "an older tombstone is never kept");

        let mut ki = example();
        keep.clear();
        ki.compact(6, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty());
    }

    #[test]
    fn compaction_at_tombstone_keeps_it_for_watchers_until_the_next() {
        let mut keep = Vec::new();
        let mut ki = example();
        ki.compact(3, &mut keep);
        assert_eq!(gens(&ki), vec![vec![3], vec![4, 5], vec![]]);
        assert_eq!(
            keep,
            vec![r(3)],
            "the deletion at 3 stays for a watch from 3"
        );
        assert_eq!(ki.get(3), None);
        assert_eq!(ki.get(4).unwrap().version, 1);
        // Compacting at 3 again (resumed) keeps it still; at 4 drops it.
        keep.clear();
        ki.compact(3, &mut keep);
        assert_eq!(keep, vec![r(3)]);
        keep.clear();
        ki.compact(4, &mut keep);
        assert_eq!(gens(&ki), vec![vec![4, 5], vec![]]);
        assert_eq!(keep, vec![r(4)]);
    }

    #[test]
    fn a_restored_tombstone_reads_as_deleted_and_compacts_away() {
        let mut ki = KeyIndex::restored_tombstone(r(5));
        assert!(!ki.is_live() && !ki.is_empty());
        assert_eq!(ki.get(5), None);
        assert_eq!(ki.modified(), r(5));
        let mut keep = Vec::new();
        ki.keep(5, &mut keep);
        assert!(keep.is_empty(), "hashes leave the tombstone out");
        ki.compact(5, &mut keep);
        assert_eq!(keep, vec![r(5)]);
        ki.put(r(7), 0);
        assert_eq!(ki.get(7).unwrap().version, 1);
        assert_eq!(ki.get(7).unwrap().created, r(7));
        keep.clear();
        ki.compact(6, &mut keep);
        assert_eq!(gens(&ki), vec![vec![7]]);
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
    fn keep_matches_compact_but_for_a_tombstone_at_the_revision() {
        for at in 0..8 {
            let ki = example();
            let mut k1 = Vec::new();
            ki.keep(at, &mut k1);
            let mut ki2 = example();
            let mut k2 = Vec::new();
            ki2.compact(at, &mut k2);
            // 3 and 5 are the example's tombstones.
            k2.retain(|r| !(r.main == at && (at == 3 || at == 5)));
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

    #[test]
    fn single_revision_keys_take_the_compact_form() {
        let mut ki = KeyIndex::new(r(3), 9);
        assert!(is_one(&ki));
        assert_eq!(gens(&ki), vec![vec![3]]);
        ki.put(r(4), 9);
        assert!(!is_one(&ki), "two revisions need the general form");
        let mut keep = Vec::new();
        ki.compact(4, &mut keep);
        assert!(is_one(&ki), "compaction returns a live key to it");
        assert_eq!(keep, vec![r(4)]);
        let f = ki.get(4).unwrap();
        assert_eq!((f.created, f.modified, f.version), (r(3), r(4), 2));
        assert!(ki.tombstone(r(5)));
        keep.clear();
        ki.compact(6, &mut keep);
        assert!(ki.is_empty() && keep.is_empty());
        ki.put(r(7), 0);
        assert!(is_one(&ki), "a key created again takes it again");
        assert_eq!(ki.get(7).unwrap().version, 1);
    }

    /// Random puts, deletions and compactions give the same answers
    /// whether the index may use the compact form or never does.
    #[test]
    fn both_forms_answer_alike() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let mut a = KeyIndex::default();
            let mut b = KeyIndex::default();
            let mut main = 1;
            let mut compacted = 0;
            for _ in 0..12 {
                main += 1;
                let rev = Revision::new(main, next(2) as i64);
                match next(4) {
                    0 | 1 => {
                        a.put(rev, main);
                        b.put(rev, main);
                    }
                    2 => assert_eq!(a.tombstone(rev), b.tombstone(rev)),
                    _ => {
                        compacted = 1 + next(main as u64) as i64;
                        let (mut ka, mut kb) = (Vec::new(), Vec::new());
                        a.compact(compacted, &mut ka);
                        b.compact(compacted, &mut kb);
                        assert_eq!(ka, kb);
                    }
                }
                // `b` never keeps the compact form.
                b.generations_mut();
                assert_eq!(gens(&a), gens(&b));
                assert_eq!(a.is_live(), b.is_live());
                assert_eq!(a.is_empty(), b.is_empty());
                assert_eq!(a.modified(), b.modified());
                assert_eq!(a.lease, b.lease);
                for at in compacted..=main + 1 {
                    assert_eq!(a.get(at), b.get(at), "at {at}");
                    assert_eq!(a.since(at), b.since(at));
                    let (mut ka, mut kb) = (Vec::new(), Vec::new());
                    a.keep(at, &mut ka);
                    b.keep(at, &mut kb);
                    assert_eq!(ka, kb);
                    // What `crate::hash` relies on: a key keeps the
                    // revision it has at `at`, if it exists then.
                    let here: Vec<Revision> = a.get(at).map(|f| f.modified).into_iter().collect();
                    assert_eq!(ka, here, "keep at {at}");
                }
            }
        }
    }
}
