//! Linearizability of one key used as a register, by a Wing–Gong–Lowe
//! search.
//!
//! # The model
//!
//! The register holds "absent" or one value. Values are unique per key, so
//! the state is just "which write's value is current", and the
//! `modifiedIndex` (v3: `mod_revision`) of a value is whatever any ok answer
//! said it was (the write's own answer, or a read of it). Two different
//! indexes for one value are a violation by themselves. A value whose index
//! nobody observed (it was written by an unknown write and never read)
//! matches any `prevIndex` or `prev_revision` other than 0: the checker
//! cannot tell, and must not report what it cannot prove.
//!
//! A v3 swap ([`Call::CasRevision`]) compares `mod_revision`, which is 0
//! for an absent key and never 0 for a present one; its failure branch may
//! read the key ([`Ret::UnchangedSaw`]), which constrains the state at the
//! swap's linearization point as a read does.
//!
//! # The search
//!
//! Operations are linearized one at a time. An operation may be linearized
//! next if it was invoked before every not-yet-linearized *ok* operation
//! completed (otherwise some ok operation really preceded it). Unknown
//! operations complete at the end of time: they never constrain others, and
//! need not be linearized at all (not linearizing one means it never took
//! effect). The search succeeds when every ok operation is linearized.
//! Configurations `(set of linearized operations, register state)` already
//! explored are memoised (Lowe's improvement), which makes the search
//! polynomial on histories with bounded concurrency.
//!
//! The search is bounded by a [`Budget`] (configurations explored and
//! wall-clock time); when it runs out the verdict is
//! [`Verdict::Unknown`], never a guess.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::history::{Call, Op, Ret, Status};

/// Limits on one key's search.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Distinct configurations memoised before giving up. Each costs about
    /// `ops / 8` bytes plus overhead: 2 million configurations of a
    /// 2000-operation key are about 600 MB, the most a test machine spares.
    pub configs_max: usize,
    pub time_max: Duration,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            configs_max: 1_000_000,
            time_max: Duration::from_secs(60),
        }
    }
}

/// The outcome of checking one key (or a whole history).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// A proof that no linearization exists, in words.
    Violation(String),
    /// The search ran out of budget (or the history is malformed).
    Unknown(String),
}

impl Verdict {
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::Violation(_))
    }
}

/// Checks every key of `ops` separately; returns the verdict of each key,
/// in key order.
pub fn check_history(ops: &[Op], budget: Budget) -> Vec<(String, Verdict)> {
    let mut keys: Vec<&str> = ops.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let mine: Vec<Op> = ops.iter().filter(|o| o.key == k).cloned().collect();
            (k.to_string(), check_key(&mine, budget))
        })
        .collect()
}

/// The register state: 0 = absent, `v + 1` = value number `v`.
type State = u32;
const ABSENT: State = 0;

/// An operation in the form the search works on: values numbered.
#[derive(Clone, Debug)]
struct Prepared {
    invoke_ns: u64,
    complete_ns: u64,
    ok: bool,
    step: Step,
    /// Position in the caller's slice, for messages.
    original: usize,
}

#[derive(Clone, Debug)]
enum Step {
    /// A read that saw this state.
    Read(State),
    /// Sets the state (a write, or a swap known or assumed to succeed).
    Write(State),
    /// Swap by value that succeeded (or is unknown): needs `prev` current.
    CasValue {
        prev: State,
        to: State,
    },
    /// Swap by value that failed: needs `prev` not current.
    CasValueUnchanged {
        prev: State,
    },
    CasIndex {
        prev_index: u64,
        to: State,
    },
    CasIndexUnchanged {
        prev_index: u64,
    },
    /// v3 swap by `mod_revision` that succeeded (or is unknown).
    CasRevision {
        prev_revision: u64,
        to: State,
    },
    /// v3 swap by `mod_revision` that failed, having read `saw` (when its
    /// failure branch read the key).
    CasRevisionUnchanged {
        prev_revision: u64,
        saw: Option<State>,
    },
}

/// Checks the history of one key. Every op must be on the same key.
pub fn check_key(ops: &[Op], budget: Budget) -> Verdict {
    let prepared = match prepare(ops) {
        Ok(p) => p,
        Err(v) => return v,
    };
    search(&prepared.ops, &prepared.index_of, budget, ops)
}

struct PreparedHistory {
    ops: Vec<Prepared>,
    /// `index_of[state]`: the `modifiedIndex` of that value, if observed.
    index_of: Vec<Option<u64>>,
}

fn prepare(ops: &[Op]) -> Result<PreparedHistory, Verdict> {
    let mut number: HashMap<&str, State> = HashMap::new();
    let mut writers: HashMap<&str, usize> = HashMap::new();
    // State numbers: every written value, in order of appearance.
    for (i, op) in ops.iter().enumerate() {
        if op.status == Status::Failed {
            continue;
        }
        if let Some(v) = op.written_value() {
            if let Some(j) = writers.insert(v, i) {
                return Err(Verdict::Unknown(format!(
                    "malformed history: value {v:?} written by ops {j} and {i}"
                )));
            }
            let n = number.len() as State + 1;
            number.entry(v).or_insert(n);
        }
    }
    let mut index_of: Vec<Option<u64>> = vec![None; number.len() + 1];
    let mut observe = |state: State, index: u64, who: usize| -> Result<(), Verdict> {
        match index_of[state as usize] {
            Some(i) if i != index => Err(Verdict::Violation(format!(
                "op {who} saw modifiedIndex {index} for a value another answer put at {i}"
            ))),
            _ => {
                index_of[state as usize] = Some(index);
                Ok(())
            }
        }
    };
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let ok = match op.status {
            Status::Failed => continue,
            Status::Ok => true,
            Status::Unknown => false,
        };
        let state_of = |v: &str| number.get(v).copied();
        let step = match (&op.call, ok, &op.ret) {
            (Call::Read, false, _) => continue, // an unanswered read tells nothing
            (Call::Read, true, Ret::Value(None)) => Step::Read(ABSENT),
            (Call::Read, true, Ret::Value(Some((v, index)))) => {
                let Some(s) = state_of(v) else {
                    return Err(Verdict::Violation(format!(
                        "op {i} (process {}) read {v:?}, a value never written to {}",
                        op.process, op.key
                    )));
                };
                observe(s, *index, i)?;
                Step::Read(s)
            }
            (Call::Write { value }, _, ret) => {
                let s = state_of(value).expect("numbered");
                if let (true, Ret::Written { index }) = (ok, ret) {
                    observe(s, *index, i)?;
                }
                Step::Write(s)
            }
            (Call::CasValue { prev, value }, _, ret) => {
                let to = state_of(value).expect("numbered");
                // A prev never written can never be current: use a state
                // number no value has.
                let prev = state_of(prev).unwrap_or(State::MAX);
                match (ok, ret) {
                    (true, Ret::Unchanged) => Step::CasValueUnchanged { prev },
                    (true, Ret::Written { index }) => {
                        observe(to, *index, i)?;
                        Step::CasValue { prev, to }
                    }
                    (false, _) => Step::CasValue { prev, to },
                    (true, r) => {
                        return Err(Verdict::Unknown(format!(
                            "malformed history: op {i} is a swap answered {r:?}"
                        )))
                    }
                }
            }
            (Call::CasIndex { prev_index, value }, _, ret) => {
                let to = state_of(value).expect("numbered");
                let prev_index = *prev_index;
                match (ok, ret) {
                    (true, Ret::Unchanged) => Step::CasIndexUnchanged { prev_index },
                    (true, Ret::Written { index }) => {
                        observe(to, *index, i)?;
                        Step::CasIndex { prev_index, to }
                    }
                    (false, _) => Step::CasIndex { prev_index, to },
                    (true, r) => {
                        return Err(Verdict::Unknown(format!(
                            "malformed history: op {i} is a swap answered {r:?}"
                        )))
                    }
                }
            }
            (
                Call::CasRevision {
                    prev_revision,
                    value,
                },
                _,
                ret,
            ) => {
                let to = state_of(value).expect("numbered");
                let prev_revision = *prev_revision;
                match (ok, ret) {
                    (true, Ret::Unchanged) => Step::CasRevisionUnchanged {
                        prev_revision,
                        saw: None,
                    },
                    (true, Ret::UnchangedSaw(None)) => Step::CasRevisionUnchanged {
                        prev_revision,
                        saw: Some(ABSENT),
                    },
                    (true, Ret::UnchangedSaw(Some((v, index)))) => {
                        let Some(s) = state_of(v) else {
                            return Err(Verdict::Violation(format!(
                                "op {i} (process {}) is a swap that read {v:?}, a value never written to {}",
                                op.process, op.key
                            )));
                        };
                        observe(s, *index, i)?;
                        Step::CasRevisionUnchanged {
                            prev_revision,
                            saw: Some(s),
                        }
                    }
                    (true, Ret::Written { index }) => {
                        observe(to, *index, i)?;
                        Step::CasRevision { prev_revision, to }
                    }
                    (false, _) => Step::CasRevision { prev_revision, to },
                    (true, r) => {
                        return Err(Verdict::Unknown(format!(
                            "malformed history: op {i} is a swap answered {r:?}"
                        )))
                    }
                }
            }
            (Call::Read, true, r) => {
                return Err(Verdict::Unknown(format!(
                    "malformed history: op {i} is a read answered {r:?}"
                )))
            }
        };
        out.push(Prepared {
            invoke_ns: op.invoke_ns,
            complete_ns: if ok { op.complete_ns } else { u64::MAX },
            ok,
            step,
            original: i,
        });
    }
    // Search order: by invocation, so the candidates are a prefix.
    out.sort_by_key(|p| (p.invoke_ns, p.complete_ns));
    Ok(PreparedHistory { ops: out, index_of })
}

/// Applies `step` to `state`: the next state, or `None` if the operation
/// cannot take effect (or answer as it did) in that state.
fn apply(step: &Step, state: State, index_of: &[Option<u64>]) -> Option<State> {
    // Whether the current value's index may be `p` (unknown index: maybe).
    let index_may_be =
        |p: u64| -> bool { state != ABSENT && index_of[state as usize].is_none_or(|i| i == p) };
    let index_may_differ =
        |p: u64| -> bool { state == ABSENT || index_of[state as usize].is_none_or(|i| i != p) };
    // v3: an absent key has mod_revision 0, a present one never has.
    let revision_may_be = |p: u64| -> bool {
        if p == 0 {
            state == ABSENT
        } else {
            index_may_be(p)
        }
    };
    let revision_may_differ = |p: u64| -> bool {
        if p == 0 {
            state != ABSENT
        } else {
            index_may_differ(p)
        }
    };
    match *step {
        Step::Read(s) => (s == state).then_some(state),
        Step::Write(s) => Some(s),
        Step::CasValue { prev, to } => (prev == state).then_some(to),
        Step::CasValueUnchanged { prev } => (prev != state).then_some(state),
        Step::CasIndex { prev_index, to } => index_may_be(prev_index).then_some(to),
        Step::CasIndexUnchanged { prev_index } => index_may_differ(prev_index).then_some(state),
        Step::CasRevision { prev_revision, to } => revision_may_be(prev_revision).then_some(to),
        Step::CasRevisionUnchanged { prev_revision, saw } => {
            (saw.is_none_or(|s| s == state) && revision_may_differ(prev_revision)).then_some(state)
        }
    }
}

fn search(ops: &[Prepared], index_of: &[Option<u64>], budget: Budget, original: &[Op]) -> Verdict {
    let n = ops.len();
    let ok_total = ops.iter().filter(|o| o.ok).count();
    if ok_total == 0 {
        return Verdict::Linearizable;
    }
    let words = n.div_ceil(64);
    let started = Instant::now();
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Depth-first: each frame is a configuration and the candidates left
    // to try from it.
    struct Frame {
        done: Vec<u64>,
        state: State,
        ok_done: usize,
        candidates: Vec<usize>,
    }
    let is_done = |done: &[u64], i: usize| done[i / 64] >> (i % 64) & 1 == 1;
    let candidates_of = |done: &[u64]| -> Vec<usize> {
        // The earliest completion among pending ok operations bounds the
        // invocations that may go next.
        let mut bound = u64::MAX;
        for (i, o) in ops.iter().enumerate() {
            if o.ok && !is_done(done, i) {
                bound = bound.min(o.complete_ns);
            }
        }
        let mut c: Vec<usize> = (0..n)
            .take_while(|&i| ops[i].invoke_ns <= bound)
            .filter(|&i| !is_done(done, i))
            .collect();
        // Try ok operations first, earliest completion first: the order a
        // linearizable history usually follows.
        c.sort_by_key(|&i| (!ops[i].ok, ops[i].complete_ns));
        // The stack pops from the end.
        c.reverse();
        c
    };
    let root = vec![0u64; words];
    let mut stack = vec![Frame {
        candidates: candidates_of(&root),
        done: root,
        state: ABSENT,
        ok_done: 0,
    }];
    let mut deepest = 0usize;
    let mut stuck_at: Option<usize> = None;
    let mut steps: u64 = 0;
    while let Some(top) = stack.last_mut() {
        let Some(i) = top.candidates.pop() else {
            stack.pop();
            continue;
        };
        steps += 1;
        if steps & 4095 == 0 && started.elapsed() > budget.time_max {
            return Verdict::Unknown(format!(
                "search budget exceeded: {:?} of search ({} configurations)",
                budget.time_max,
                seen.len()
            ));
        }
        let Some(next_state) = apply(&ops[i].step, top.state, index_of) else {
            continue;
        };
        let mut done = top.done.clone();
        done[i / 64] |= 1 << (i % 64);
        let ok_done = top.ok_done + usize::from(ops[i].ok);
        if ok_done == ok_total {
            return Verdict::Linearizable;
        }
        if !seen.insert((done.clone(), next_state)) {
            continue;
        }
        if seen.len() > budget.configs_max {
            return Verdict::Unknown(format!(
                "search budget exceeded: {} configurations",
                budget.configs_max
            ));
        }
        if ok_done > deepest {
            deepest = ok_done;
            // The ok operation that must come next by real time.
            stuck_at = (0..n)
                .filter(|&j| ops[j].ok && !is_done(&done, j))
                .min_by_key(|&j| ops[j].complete_ns);
        }
        stack.push(Frame {
            candidates: candidates_of(&done),
            done,
            state: next_state,
            ok_done,
        });
    }
    let first = (0..n)
        .filter(|&j| ops[j].ok)
        .min_by_key(|&j| ops[j].complete_ns);
    let j = stuck_at.or(first).expect("some ok op");
    let op = &original[ops[j].original];
    Verdict::Violation(format!(
        "no linearization of {} ({} ok ops, {} unknown): at best {deepest} ok ops linearize, \
         then op {} cannot: process {} {:?} -> {:?} [{} .. {} ns]",
        op.key,
        ok_total,
        n - ok_total,
        ops[j].original,
        op.process,
        op.call,
        op.ret,
        op.invoke_ns,
        op.complete_ns
    ))
}

#[cfg(test)]
mod tests;
