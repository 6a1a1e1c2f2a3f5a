//! The persistent B-tree of directory children, against std's `BTreeMap`.

use std::collections::{BTreeMap, HashSet};

use crate::name::Name;
use crate::pmap::PMap;

/// xorshift64*: the same sequence every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Key `i`: short names, and every seventh one longer than a `Name` holds
/// inline.
fn name(i: u64) -> Vec<u8> {
    if i.is_multiple_of(7) {
        format!("{i:05}-a-name-longer-than-twenty-two-bytes").into_bytes()
    } else {
        format!("{i:05}").into_bytes()
    }
}

/// What a map should hold.
type Model = BTreeMap<Vec<u8>, u64>;

fn assert_same(m: &PMap<u64>, want: &Model) {
    m.check();
    assert_eq!(m.len(), want.len());
    let got: Vec<(Vec<u8>, u64)> = m.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
    let want_entries: Vec<(Vec<u8>, u64)> = want.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(got, want_entries);
}

#[test]
fn random_writes_match_a_btreemap_and_leave_every_clone_as_it_was() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut m: PMap<u64> = PMap::new();
    let mut want: Model = BTreeMap::new();
    let mut clones: Vec<(PMap<u64>, Model)> = Vec::new();
    // Phases that grow, churn and shrink the map, so that splits, borrows
    // from both siblings, merges and the root's growth and shrinking all
    // happen, with clones taken all along.
    for (round, insert_percent) in [(0, 90), (1, 50), (2, 10), (3, 60), (4, 0)] {
        for step in 0..6_000u64 {
            let k = name(rng.below(3_000));
            let r = rng.below(100);
            if r < insert_percent {
                assert_eq!(m.insert(Name::new(&k), step), want.insert(k, step));
            } else if r < insert_percent + (100 - insert_percent) / 2 {
                assert_eq!(m.remove(&k), want.remove(&k));
            } else {
                if let Some(v) = m.get_mut(&k) {
                    *v += 1_000_000;
                }
                if let Some(v) = want.get_mut(&k) {
                    *v += 1_000_000;
                }
                assert_eq!(m.get(&k), want.get(&k));
                assert_eq!(m.contains_key(&k), want.contains_key(&k));
            }
            if step % 500 == 0 {
                m.check();
                clones.push((m.clone(), want.clone()));
            }
        }
        assert_same(&m, &want);
        for (c, w) in &clones {
            assert_same(c, w);
        }
        // Drop the older clones now and then, so the live map's nodes go
        // from shared to unique again.
        if round % 2 == 1 {
            clones.drain(..clones.len() / 2);
        }
    }
    for (c, w) in &clones {
        assert_same(c, w);
    }
}

#[test]
fn a_map_built_from_sorted_entries_is_a_valid_tree_of_any_size() {
    // Around each height's capacity (11, 143, 1727, 20735) and below.
    let mut sizes: Vec<u64> = (0..400).collect();
    for c in [1727u64, 20735] {
        sizes.extend([c - 1, c, c + 1]);
    }
    sizes.extend([5_000, 50_000]);
    for n in sizes {
        let entries: BTreeMap<Vec<u8>, u64> = (0..n).map(|i| (name(i), i)).collect();
        let mut m = PMap::from_sorted(entries.iter().map(|(k, v)| (Name::new(k), *v)));
        assert_same(&m, &entries);
        // It stays a valid tree under writes.
        let mut want = entries.clone();
        for i in (0..n).step_by(3) {
            assert_eq!(m.remove(&name(i)), want.remove(&name(i)));
        }
        for i in n..n + 20 {
            m.insert(Name::new(&name(i)), i);
            want.insert(name(i), i);
        }
        assert_same(&m, &want);
    }
}

/// Nodes of `live` that `frozen` does not hold.
fn copied(live: &PMap<u64>, frozen: &PMap<u64>) -> usize {
    let old: HashSet<usize> = frozen.node_addresses().into_iter().collect();
    live.node_addresses()
        .iter()
        .filter(|a| !old.contains(a))
        .count()
}

#[test]
fn a_write_under_a_clone_copies_only_the_nodes_on_its_path() {
    let n = 100_000;
    let mut m: PMap<u64> = PMap::new();
    for i in 0..n {
        m.insert(Name::new(&name(i)), i);
    }
    let height = {
        // Nodes on the path to any key: the root's count of levels.
        let mut h = 0;
        let mut size = 1usize;
        while size < m.len() {
            size *= 6;
            h += 1;
        }
        h
    };
    let frozen = m.clone();
    assert_eq!(copied(&m, &frozen), 0);

    *m.get_mut(&name(500)).unwrap() = 0;
    let after_one = copied(&m, &frozen);
    assert!(
        after_one >= 1 && after_one <= height,
        "{after_one} > {height}"
    );
    // The same path again: nothing more to copy.
    *m.get_mut(&name(501)).unwrap() = 0;
    m.insert(Name::new(&name(502)), 0);
    assert!(copied(&m, &frozen) <= after_one + 1);

    // Removing may rebalance: each level copies at most the node and one
    // sibling.
    let before = copied(&m, &frozen);
    m.remove(&name(90_000)).unwrap();
    assert!(copied(&m, &frozen) <= before + 2 * height);

    assert_eq!(frozen.get(&name(500)), Some(&500));
    assert_eq!(frozen.get(&name(90_000)), Some(&90_000));
    assert_eq!(frozen.len(), n as usize);
    frozen.check();
    m.check();
}

#[test]
fn without_a_clone_writes_copy_nothing() {
    let mut m: PMap<u64> = PMap::new();
    for i in 0..10_000 {
        m.insert(Name::new(&name(i)), i);
    }
    let before: HashSet<usize> = m.node_addresses().into_iter().collect();
    for i in 0..10_000 {
        *m.get_mut(&name(i)).unwrap() += 1;
    }
    let after: HashSet<usize> = m.node_addresses().into_iter().collect();
    assert_eq!(before, after);
}

#[test]
fn a_clone_can_be_read_and_dropped_on_another_thread() {
    let mut m: PMap<u64> = PMap::new();
    for i in 0..20_000 {
        m.insert(Name::new(&name(i)), i);
    }
    let frozen = m.clone();
    let reader = std::thread::spawn(move || {
        let sum: u64 = frozen.iter().map(|(_, v)| *v).sum();
        frozen.check();
        sum
    });
    for i in 0..20_000u64 {
        if i.is_multiple_of(2) {
            m.remove(&name(i));
        } else {
            *m.get_mut(&name(i)).unwrap() = 0;
        }
    }
    assert_eq!(reader.join().unwrap(), (0..20_000).sum::<u64>());
    assert_eq!(m.len(), 10_000);
    assert!(m.iter().all(|(_, v)| *v == 0));
    m.check();
}
