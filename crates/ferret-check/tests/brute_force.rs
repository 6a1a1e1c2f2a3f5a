//! The register search against a brute-force checker on small random
//! histories: both must give the same verdict on every history.
//!
//! Histories are made by running a real register (so they start
//! linearizable), then often corrupting one answer; the brute force tries
//! every ordering of every subset of the unknown operations.

use std::collections::HashMap;

use ferret_check::{check_key, Budget, Call, Op, Ret, Status, Verdict};

/// splitmix64: small, deterministic, good enough to pick test cases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn random_history(rng: &mut Rng) -> Vec<Op> {
    let n = 1 + rng.below(6) as usize;
    // (invoke, complete, linearization point, call, unknown, takes effect)
    let mut plan = Vec::new();
    for i in 0..n {
        let invoke = rng.below(60);
        let complete = invoke + 1 + rng.below(30);
        let point = invoke + rng.below(complete - invoke + 1);
        let call = match rng.below(5) {
            0 => Call::Read,
            1 => Call::Write {
                value: format!("v{i}"),
            },
            2 => Call::CasValue {
                prev: format!("v{}", rng.below(n as u64)),
                value: format!("v{i}"),
            },
            3 => Call::CasIndex {
                prev_index: 1 + rng.below(4),
                value: format!("v{i}"),
            },
            _ => Call::CasRevision {
                prev_revision: rng.below(4),
                value: format!("v{i}"),
            },
        };
        let unknown = rng.chance(25);
        let effect = !unknown || rng.chance(50);
        plan.push((invoke, complete, point, call, unknown, effect));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| plan[i].2);
    let mut state: Option<(String, u64)> = None;
    let mut index = 0;
    let mut rets = vec![Ret::None; n];
    for i in order {
        let (_, _, _, call, _, effect) = &plan[i];
        if !effect {
            continue;
        }
        let mut write = |v: &str, state: &mut Option<(String, u64)>| {
            index += 1;
            *state = Some((v.to_string(), index));
            Ret::Written { index }
        };
        rets[i] = match call {
            Call::Read => Ret::Value(state.clone()),
            Call::Write { value } => write(value, &mut state),
            Call::CasValue { prev, value } => {
                if state.as_ref().map(|s| &s.0) == Some(prev) {
                    write(value, &mut state)
                } else {
                    Ret::Unchanged
                }
            }
            Call::CasIndex { prev_index, value } => {
                if state.as_ref().map(|s| s.1) == Some(*prev_index) {
                    write(value, &mut state)
                } else {
                    Ret::Unchanged
                }
            }
            // v3: an absent key's mod_revision is 0.
            Call::CasRevision {
                prev_revision,
                value,
            } => {
                if state.as_ref().map_or(0, |s| s.1) == *prev_revision {
                    write(value, &mut state)
                } else if rng.chance(50) {
                    Ret::UnchangedSaw(state.clone())
                } else {
                    Ret::Unchanged
                }
            }
        };
    }
    let mut ops: Vec<Op> = plan
        .into_iter()
        .zip(rets)
        .enumerate()
        .map(|(i, ((invoke, complete, _, call, unknown, _), ret))| Op {
            process: i,
            key: "/k".into(),
            invoke_ns: invoke,
            complete_ns: complete,
            call,
            ret: if unknown { Ret::None } else { ret },
            status: if unknown { Status::Unknown } else { Status::Ok },
        })
        .collect();
    if rng.chance(40) {
        // Corrupt one ok answer.
        let i = rng.below(n as u64) as usize;
        if ops[i].status == Status::Ok {
            ops[i].ret = match &ops[i].ret {
                Ret::Value(_) => {
                    if rng.chance(30) {
                        Ret::Value(None)
                    } else {
                        let j = rng.below(n as u64);
                        Ret::Value(Some((format!("v{j}"), 1 + rng.below(4))))
                    }
                }
                Ret::Written { .. } => Ret::Unchanged,
                Ret::Unchanged => Ret::Written {
                    index: 1 + rng.below(5),
                },
                Ret::UnchangedSaw(_) => {
                    if rng.chance(50) {
                        Ret::Written {
                            index: 1 + rng.below(5),
                        }
                    } else {
                        let j = rng.below(n as u64);
                        Ret::UnchangedSaw(Some((format!("v{j}"), 1 + rng.below(4))))
                    }
                }
                Ret::None => Ret::None,
            };
        }
    }
    ops
}

/// Tries every sequence of a subset of the operations that contains every
/// ok operation and respects real-time order.
fn brute_force(ops: &[Op]) -> bool {
    // The modifiedIndex of each value, from every ok answer.
    let mut index_of: HashMap<String, u64> = HashMap::new();
    for op in ops {
        let seen = match (&op.status, &op.call, &op.ret) {
            (Status::Ok, Call::Read, Ret::Value(Some((v, i)))) => Some((v.clone(), *i)),
            (Status::Ok, _, Ret::UnchangedSaw(Some((v, i)))) => Some((v.clone(), *i)),
            (Status::Ok, _, Ret::Written { index }) => {
                Some((op.written_value().unwrap().to_string(), *index))
            }
            _ => None,
        };
        if let Some((v, i)) = seen {
            if index_of.insert(v, i).is_some_and(|old| old != i) {
                return false;
            }
        }
    }
    let mut used = vec![false; ops.len()];
    let mut seq = Vec::new();
    fn valid(ops: &[Op], seq: &[usize], index_of: &HashMap<String, u64>) -> bool {
        for (a, &i) in seq.iter().enumerate() {
            for &j in &seq[a + 1..] {
                // j placed after i, but j completed before i was invoked.
                if ops[j].effective_complete_ns() < ops[i].invoke_ns {
                    return false;
                }
            }
        }
        let mut state: Option<String> = None;
        for &i in seq {
            let op = &ops[i];
            let unknown = op.status == Status::Unknown;
            let idx_matches = |state: &Option<String>, p: u64| match state {
                None => false,
                Some(v) => index_of.get(v).is_none_or(|&i| i == p),
            };
            let idx_differs = |state: &Option<String>, p: u64| match state {
                None => true,
                Some(v) => index_of.get(v).is_none_or(|&i| i != p),
            };
            match (&op.call, &op.ret) {
                (Call::Read, _) if unknown => {}
                (Call::Read, Ret::Value(v)) => {
                    if state.as_deref() != v.as_ref().map(|v| v.0.as_str()) {
                        return false;
                    }
                }
                (Call::Write { value }, _) => state = Some(value.clone()),
                (Call::CasValue { prev, value }, r) => {
                    let holds = state.as_deref() == Some(prev.as_str());
                    match r {
                        Ret::Unchanged if !unknown => {
                            if holds {
                                return false;
                            }
                        }
                        _ => {
                            if !holds {
                                return false;
                            }
                            state = Some(value.clone());
                        }
                    }
                }
                (Call::CasIndex { prev_index, value }, r) => match r {
                    Ret::Unchanged if !unknown => {
                        if !idx_differs(&state, *prev_index) {
                            return false;
                        }
                    }
                    _ => {
                        if !idx_matches(&state, *prev_index) {
                            return false;
                        }
                        state = Some(value.clone());
                    }
                },
                (
                    Call::CasRevision {
                        prev_revision,
                        value,
                    },
                    r,
                ) => {
                    let p = *prev_revision;
                    // An absent key's mod_revision is 0, a present one's never.
                    let (may_be, may_differ) = if p == 0 {
                        (state.is_none(), state.is_some())
                    } else {
                        (idx_matches(&state, p), idx_differs(&state, p))
                    };
                    match r {
                        Ret::Unchanged if !unknown => {
                            if !may_differ {
                                return false;
                            }
                        }
                        Ret::UnchangedSaw(saw) if !unknown => {
                            if !may_differ || state.as_deref() != saw.as_ref().map(|s| s.0.as_str())
                            {
                                return false;
                            }
                        }
                        _ => {
                            if !may_be {
                                return false;
                            }
                            state = Some(value.clone());
                        }
                    }
                }
                _ => return false,
            }
        }
        true
    }
    fn go(
        ops: &[Op],
        used: &mut Vec<bool>,
        seq: &mut Vec<usize>,
        index_of: &HashMap<String, u64>,
    ) -> bool {
        let all_ok_in = ops
            .iter()
            .enumerate()
            .all(|(i, o)| o.status != Status::Ok || used[i]);
        if all_ok_in && valid(ops, seq, index_of) {
            return true;
        }
        for i in 0..ops.len() {
            if !used[i] {
                used[i] = true;
                seq.push(i);
                if go(ops, used, seq, index_of) {
                    return true;
                }
                seq.pop();
                used[i] = false;
            }
        }
        false
    }
    go(ops, &mut used, &mut seq, &index_of)
}

#[test]
fn search_agrees_with_brute_force_on_random_small_histories() {
    let mut rng = Rng(0x5eed);
    let (mut linearizable, mut violations) = (0, 0);
    for case in 0..3000 {
        let ops = random_history(&mut rng);
        let expected = brute_force(&ops);
        let got = check_key(&ops, Budget::default());
        match (&got, expected) {
            (Verdict::Linearizable, true) => linearizable += 1,
            (Verdict::Violation(_), false) => violations += 1,
            _ => panic!("case {case}: search says {got:?}, brute force says {expected}: {ops:#?}"),
        }
    }
    // Both kinds must be well represented, or the test proves little.
    assert!(
        linearizable > 500 && violations > 300,
        "{linearizable} / {violations}"
    );
}
