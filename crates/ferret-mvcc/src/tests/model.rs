//! Randomized: the store against a naive model of etcd's semantics (every
//! key's full history in a map), for puts, range deletes, txns,
//! compactions and historical reads, with a restart in the middle.

use std::collections::BTreeMap;
use std::time::Duration;

use ferret_proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};

use super::{b, config, Harness, Rng};
use crate::{MvccError, Storage};

#[derive(Clone, Debug, PartialEq)]
struct Kv {
    value: String,
    create: i64,
    modr: i64,
    version: i64,
}

#[derive(Default)]
struct Model {
    rev: i64,
    compact: i64,
    /// Each key's states, as (revision, state after it).
    history: BTreeMap<String, Vec<(i64, Option<Kv>)>>,
}

impl Model {
    fn at(&self, key: &str, rev: i64) -> Option<Kv> {
        self.history
            .get(key)?
            .iter()
            .rev()
            .find(|(r, _)| *r <= rev)
            .and_then(|(_, s)| s.clone())
    }

    fn snapshot(&self, rev: i64) -> Vec<(String, Kv)> {
        self.history
            .keys()
            .filter_map(|k| self.at(k, rev).map(|kv| (k.clone(), kv)))
            .collect()
    }

    fn put(&mut self, key: &str, value: &str, rev: i64) {
        let prev = self.at(key, rev);
        let kv = match prev {
            Some(p) => Kv {
                value: value.into(),
                create: p.create,
                modr: rev,
                version: p.version + 1,
            },
            None => Kv {
                value: value.into(),
                create: rev,
                modr: rev,
                version: 1,
            },
        };
        self.history
            .entry(key.into())
            .or_default()
            .push((rev, Some(kv)));
    }

    fn delete(&mut self, key: &str, rev: i64) {
        self.history
            .entry(key.into())
            .or_default()
            .push((rev, None));
    }
}

fn key(rng: &mut Rng) -> String {
    format!("k{}", rng.below(12))
}

fn check(h: &Harness, m: &Model, rng: &mut Rng) {
    assert_eq!(h.rev(), m.rev);
    for rev in [
        m.rev,
        m.compact.max(1) + rng.below((m.rev - m.compact.max(1) + 1) as u64) as i64,
    ] {
        let got: Vec<(String, Kv)> = h
            .range(RangeRequest {
                key: b("\0"),
                range_end: b("\0"),
                revision: rev,
                ..Default::default()
            })
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| {
                (
                    String::from_utf8(kv.key.to_vec()).unwrap(),
                    Kv {
                        value: String::from_utf8(kv.value.to_vec()).unwrap(),
                        create: kv.create_revision,
                        modr: kv.mod_revision,
                        version: kv.version,
                    },
                )
            })
            .collect();
        assert_eq!(
            got,
            m.snapshot(rev),
            "at revision {rev} (current {})",
            m.rev
        );
    }
    if m.compact > 1 {
        assert_eq!(
            h.range(RangeRequest {
                key: b("k"),
                revision: m.compact - 1,
                ..Default::default()
            }),
            Err(MvccError::Compacted)
        );
    }
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let storage = || Storage::File(dir.path().join("db"));
    let mut h = Harness::open(storage(), config());
    let mut m = Model {
        rev: 1,
        ..Default::default()
    };
    let mut rng = Rng::new(seed);
    for step in 0..steps {
        match rng.below(10) {
            0..=3 => {
                let (k, v) = (key(&mut rng), format!("v{step}"));
                h.put(&k, &v);
                m.rev += 1;
                m.put(&k, &v, m.rev);
            }
            4 => {
                let (a, z) = (key(&mut rng), key(&mut rng));
                let (a, z) = if a <= z { (a, z) } else { (z, a) };
                let doomed: Vec<String> = m
                    .snapshot(m.rev)
                    .into_iter()
                    .map(|(k, _)| k)
                    .filter(|k| *k >= a && *k < z)
                    .collect();
                let d = h
                    .del_req(DeleteRangeRequest {
                        key: b(&a),
                        range_end: b(&z),
                        ..Default::default()
                    })
                    .unwrap();
                assert_eq!(d.deleted as usize, doomed.len());
                if !doomed.is_empty() {
                    m.rev += 1;
                    for k in doomed {
                        m.delete(&k, m.rev);
                    }
                }
            }
            5..=7 => {
                // CAS on mod revision, sometimes stale.
                let k = key(&mut rng);
                let cur = m.at(&k, m.rev).map_or(0, |kv| kv.modr);
                let want = if rng.below(2) == 0 { cur } else { cur + 1 };
                let other = key(&mut rng);
                let t = TxnRequest {
                    compare: vec![Compare {
                        result: compare::CompareResult::Equal as i32,
                        target: compare::CompareTarget::Mod as i32,
                        key: b(&k),
                        range_end: Default::default(),
                        target_union: Some(compare::TargetUnion::ModRevision(want)),
                    }],
                    success: vec![
                        RequestOp {
                            request: Some(request_op::Request::RequestPut(PutRequest {
                                key: b(&k),
                                value: b(&format!("cas{step}")),
                                ..Default::default()
                            })),
                        },
                        RequestOp {
                            request: Some(request_op::Request::RequestPut(PutRequest {
                                key: b(&other),
                                value: b(&format!("side{step}")),
                                ..Default::default()
                            })),
                        },
                    ],
                    failure: vec![],
                };
                let r = h.txn(t).unwrap();
                assert_eq!(r.succeeded, want == cur);
                if r.succeeded {
                    m.rev += 1;
                    m.put(&k, &format!("cas{step}"), m.rev);
                    m.put(&other, &format!("side{step}"), m.rev);
                }
            }
            8 => {
                if m.rev > m.compact + 3 && rng.below(3) == 0 {
                    let at =
                        m.compact.max(1) + 1 + rng.below((m.rev - m.compact.max(1)) as u64) as i64;
                    let at = at.min(m.rev);
                    let done = h.compact(at).unwrap();
                    if rng.below(2) == 0 {
                        assert!(done.wait(Duration::from_secs(10)));
                    }
                    m.compact = at;
                }
            }
            _ => {
                if rng.below(8) == 0 {
                    // Restart (clean) and go on.
                    let index = h.index;
                    drop(h);
                    h = Harness::open(storage(), config());
                    assert_eq!(h.index, index);
                }
            }
        }
        check(&h, &m, &mut rng);
    }
}

#[test]
fn random_histories_match_the_model() {
    for seed in 1..=6 {
        run(seed, 400);
    }
}
