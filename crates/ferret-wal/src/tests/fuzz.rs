//! Random damage to a generated WAL: byte flips, bursts and cuts. Whatever
//! the damage, `open` must not panic and must return either a clean prefix
//! of what was written (damage at the tail) or `Corrupt` (damage anywhere a
//! valid record still follows, or outside the last segment's body).

use std::fs;

use super::*;

struct Generated {
    _dir: TestDir,
    segs: Vec<(PathBuf, Vec<u8>)>,
    /// models[k]: the state after k ops.
    models: Vec<Model>,
    /// For the last segment: (start offset, op count once it is whole) of
    /// each record written after its preamble.
    tail_records: Vec<(u64, u64, usize)>,
    tail_body_start: u64,
}

fn generate(seed: u64, segment_size_max_bytes: u64) -> Generated {
    let dir = TestDir::new();
    let mut rng = Rng::new(seed);
    let ops = workload(&mut rng, 60);
    let (models, lens) = build(&dir.wal(), &ops, segment_size_max_bytes);
    let paths = segments(&dir.wal());
    let segs: Vec<_> = paths
        .iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect();
    // Records in the tail: the ops after the last rotation. A rotation
    // follows a sync, so the tail's length grows by exactly one op's bytes
    // per op from the moment it appears.
    let mut tail_records = Vec::new();
    let mut tail_body_start = 0;
    for k in (1..lens.len()).rev() {
        if lens[k] < lens[k - 1] || lens[k] - lens[k - 1] != ops[k - 1].bytes() {
            // Op k-1 rotated: the tail begins after it with a preamble.
            tail_body_start = lens[k];
            break;
        }
        tail_records.push((lens[k - 1], lens[k], k));
    }
    if tail_body_start == 0 {
        tail_body_start = lens[0];
    }
    tail_records.reverse();
    Generated {
        _dir: dir,
        segs,
        models,
        tail_records,
        tail_body_start,
    }
}

/// The ops that must be recovered if the tail is damaged from `offset` on.
fn ops_before(g: &Generated, offset: u64) -> usize {
    let first_op = g
        .tail_records
        .first()
        .map_or(g.models.len() - 1, |r| r.2 - 1);
    g.tail_records
        .iter()
        .filter(|r| r.1 <= offset)
        .map(|r| r.2)
        .max()
        .unwrap_or(first_op)
}

fn restore(g: &Generated) {
    for (p, bytes) in &g.segs {
        fs::write(p, bytes).unwrap();
    }
}

#[test]
fn random_damage_yields_a_clean_prefix_or_corrupt() {
    let mut rng = Rng::new(2024);
    let mut outcomes = [0usize; 3]; // clean whole, clean prefix, corrupt
    for (seed, seg_size) in [(1u64, u64::MAX), (2, 700), (3, 1500)] {
        let g = generate(seed, seg_size);
        let last_seg = g.segs.len() - 1;
        for _ in 0..150 {
            restore(&g);
            let s = rng.below(g.segs.len() as u64) as usize;
            let (path, orig) = &g.segs[s];
            let mut bytes = orig.clone();
            let mut damaged: Vec<u64> = Vec::new();
            let cut = match rng.below(3) {
                0 => {
                    // Flip 1-3 random bytes.
                    for _ in 0..1 + rng.below(3) {
                        let at = rng.below(bytes.len() as u64) as usize;
                        bytes[at] ^= 1 + rng.below(255) as u8;
                        damaged.push(at as u64);
                    }
                    None
                }
                1 => {
                    // A burst of random bytes.
                    let at = rng.below(bytes.len() as u64) as usize;
                    let len = (1 + rng.below(64) as usize).min(bytes.len() - at);
                    for (i, b) in bytes.iter_mut().enumerate().skip(at).take(len) {
                        let old = *b;
                        *b = rng.next() as u8;
                        if *b != old {
                            damaged.push(i as u64);
                        }
                    }
                    None
                }
                _ => {
                    let at = rng.below(bytes.len() as u64 + 1) as usize;
                    bytes.truncate(at);
                    Some(at as u64)
                }
            };
            fs::write(path, &bytes).unwrap();
            let cut = cut.filter(|&at| at < orig.len() as u64);
            let first_damage = cut.or_else(|| damaged.iter().copied().min());
            let result = Wal::open(g.segs[0].0.parent().unwrap());
            if cut == Some(0) && s == last_seg && last_seg > 0 {
                // An empty last segment is removed; the one before is the tail.
                let (_, rec) = result.unwrap();
                g.models[ops_before(&g, 0)].assert_matches(&rec);
                outcomes[1] += 1;
                continue;
            }
            match (result, first_damage) {
                (Ok((_, rec)), None) => {
                    g.models.last().unwrap().assert_matches(&rec);
                    outcomes[0] += 1;
                }
                (Ok((_, rec)), Some(at)) => {
                    // Only tail damage in the last segment's body is repaired,
                    // and then to exactly the records whole before it.
                    assert_eq!(
                        s, last_seg,
                        "damage at {at} in a non-last segment was repaired"
                    );
                    assert!(
                        at >= g.tail_body_start,
                        "damage at {at} in the preamble was repaired"
                    );
                    let k = ops_before(&g, at);
                    assert!(
                        g.models[k].same_as(&rec),
                        "seed {seed}: damage at {at}: expected the first {k} ops, got {} entries",
                        rec.entries.len()
                    );
                    // No undamaged record may follow the damage.
                    if cut.is_none() {
                        let later_intact = g
                            .tail_records
                            .iter()
                            .any(|r| r.0 > at && !damaged.iter().any(|&d| d >= r.0 && d < r.1));
                        assert!(
                            !later_intact,
                            "seed {seed}: an intact record after byte {at} was dropped"
                        );
                    }
                    outcomes[1] += 1;
                }
                (
                    Err(WalError::Corrupt {
                        file,
                        offset,
                        reason,
                    }),
                    Some(at),
                ) => {
                    assert_eq!(
                        &file, path,
                        "seed {seed}: damage at {at}: {offset} {reason}"
                    );
                    // A clean cut of the last segment's body is always a torn tail.
                    if let Some(at) = cut {
                        assert!(
                            s != last_seg || at < g.tail_body_start,
                            "seed {seed}: a cut at {at} of the tail was called corrupt"
                        );
                    }
                    outcomes[2] += 1;
                }
                (Err(e), _) => {
                    panic!("seed {seed}: unexpected {e} (damage {first_damage:?} in segment {s})")
                }
            }
        }
    }
    // The mix is deterministic; make sure every outcome was exercised.
    assert!(outcomes.iter().skip(1).all(|&n| n > 10), "{outcomes:?}");
}
