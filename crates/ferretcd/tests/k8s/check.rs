//! The checks made after the run, on what `history.rs` and the watchers
//! recorded. Pure: nothing here talks to a server.
//!
//! 1. **Every event is a write some client attempted**, at the revision
//!    it was acknowledged at (or any, if its outcome is unknown; never one
//!    that definitely failed), with the value written, a version and
//!    `prev_kv` that match the compare it was guarded by. A delete is a
//!    client's guarded delete or the expiry of a lease the run did not
//!    keep alive.
//! 2. **No watcher has a gap, a duplicate or a reordering**: revisions
//!    never go back, no (revision, key) comes twice, no attempt twice;
//!    every acknowledged write in the watched range between the segment's
//!    first revision and the newest one it knows (event or progress
//!    notification) was received; a watcher of every key sees every
//!    revision of that interval; nothing arrives at or below a revision a
//!    progress notification already covered.
//! 3. **Watchers agree**: where watchers' histories overlap they hold the
//!    same events (they were served by different members).
//! 4. **Counters are a chain**: in the history, an update's counter is the
//!    previous version's + 1, a create's is 0; so no update was lost
//!    between two others.
//! 5. **Lists are snapshots of that history**: every list (a lister's or
//!    a reflector's) equals the state the watch history gives at its
//!    revision.
//! 6. **Final state**: every object's value is its last acknowledged
//!    write, or a later write whose outcome was unknown; kept-alive keys
//!    are there; keys of leases left to expire are not; a kept-alive key
//!    never vanished, and no lease expired before its TTL.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use ferret_proto::mvccpb::{event::EventType, Event, KeyValue};

use super::history::{
    counter_of, in_range, kind_name, op_text, show, token_of, LeaseRec, ListSnapshot, Op, OpKind,
    Outcome,
};
use super::list::kv_text;
use super::watch::{Segment, WatchLog};

/// At most this many failures of one kind are spelled out per watcher
/// segment; the rest are counted.
const SAME_KIND_SHOWN: usize = 5;

pub struct Input<'a> {
    pub ops: &'a [Op],
    pub logs: &'a [WatchLog],
    pub lists: &'a [ListSnapshot],
    pub leases: &'a [LeaseRec],
    /// Every key at the end, after the run (one linearizable Range).
    pub finals: &'a BTreeMap<Bytes, KeyValue>,
}

#[derive(Default)]
pub struct Outcomes {
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

/// What an event was.
#[derive(Clone, Copy, Debug)]
enum Cause {
    Op(usize),
    LeaseExpiry(i64),
}

/// An event as compared between watchers and with lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sig {
    key: Bytes,
    put: bool,
    kv: String,
}

fn sig(ev: &Event) -> Sig {
    let kv = ev.kv.clone().unwrap_or_default();
    Sig {
        key: kv.key.clone(),
        put: ev.r#type == EventType::Put as i32,
        kv: if ev.r#type == EventType::Put as i32 {
            kv_text(&kv)
        } else {
            format!("{} deleted at {}", show(&kv.key), kv.mod_revision)
        },
    }
}

fn same_sigs(a: &[(Sig, Event)], b: &[(Sig, Event)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0)
}

/// The history the watchers of every key agree on, by revision.
type Reference = BTreeMap<i64, Vec<(Sig, Event)>>;

fn ev_text(ev: &Event) -> String {
    let kv = ev.kv.clone().unwrap_or_default();
    let t = if ev.r#type == EventType::Put as i32 {
        "PUT"
    } else {
        "DELETE"
    };
    let prev = ev.prev_kv.as_ref().map_or(String::new(), |p| {
        format!(" prev_kv.mod={}", p.mod_revision)
    });
    format!("{t} {}{prev}", kv_text(&kv))
}

struct Index<'a> {
    input: &'a Input<'a>,
    /// Puts by the token their value carries.
    puts: HashMap<String, Vec<usize>>,
    deletes: HashMap<Bytes, Vec<usize>>,
    leases: HashMap<i64, &'a LeaseRec>,
    lease_of_key: HashMap<Bytes, i64>,
}

impl<'a> Index<'a> {
    fn new(input: &'a Input<'a>) -> Index<'a> {
        let mut puts: HashMap<String, Vec<usize>> = HashMap::new();
        let mut deletes: HashMap<Bytes, Vec<usize>> = HashMap::new();
        for (i, op) in input.ops.iter().enumerate() {
            if op.kind == OpKind::Delete {
                deletes.entry(op.key.clone()).or_default().push(i);
            } else if let Some(t) = token_of(&op.key, &op.value) {
                puts.entry(t).or_default().push(i);
            }
        }
        let mut lease_of_key = HashMap::new();
        for l in input.leases {
            for k in &l.keys {
                lease_of_key.insert(k.clone(), l.id);
            }
        }
        Index {
            input,
            puts,
            deletes,
            leases: input.leases.iter().map(|l| (l.id, l)).collect(),
            lease_of_key,
        }
    }

    fn op(&self, i: usize) -> &'a Op {
        &self.input.ops[i]
    }

    /// Which attempt (or lease expiry) an event is, or why none.
    fn identify(&self, ev: &Event) -> Result<Cause, String> {
        let Some(kv) = ev.kv.as_ref() else {
            return Err("an event without a key-value".into());
        };
        let rev = kv.mod_revision;
        if ev.r#type == EventType::Put as i32 {
            let Some(token) = token_of(&kv.key, &kv.value) else {
                return Err("a value no client wrote".into());
            };
            let cands: Vec<usize> = self
                .puts
                .get(&token)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i| self.op(i).key == kv.key && self.op(i).value == kv.value)
                .collect();
            let chosen = cands
                .iter()
                .copied()
                .find(|&i| self.op(i).outcome == Outcome::Ok(rev))
                .or_else(|| {
                    cands
                        .iter()
                        .copied()
                        .find(|&i| self.op(i).outcome == Outcome::Unknown)
                });
            let Some(i) = chosen else {
                return Err(match cands.first().map(|&i| self.op(i)) {
                    None => "a value no client wrote".into(),
                    Some(op) => format!(
                        "written by attempt {} ({}), whose outcome was {:?}",
                        op.token,
                        kind_name(op.kind),
                        op.outcome
                    ),
                });
            };
            let op = self.op(i);
            match op.kind {
                OpKind::Create | OpKind::LeasePut { .. }
                    if kv.version != 1 || kv.create_revision != rev =>
                {
                    return Err(format!(
                        "attempt {} created the key, but version {} create_revision {}",
                        op.token, kv.version, kv.create_revision
                    ));
                }
                OpKind::LeasePut { lease } if kv.lease != lease => {
                    return Err(format!(
                        "attempt {} put it with lease {lease:x}, the event has lease {:x}",
                        op.token, kv.lease
                    ));
                }
                OpKind::Update => {
                    if let Some(p) = &ev.prev_kv {
                        if p.mod_revision != op.guard {
                            return Err(format!(
                                "attempt {} was guarded by mod_revision {}, but prev_kv has \
                                 mod_revision {}",
                                op.token, op.guard, p.mod_revision
                            ));
                        }
                    }
                    if kv.version < 2 {
                        return Err(format!("update {} at version {}", op.token, kv.version));
                    }
                }
                _ => {}
            }
            return Ok(Cause::Op(i));
        }
        let cands: Vec<usize> = self
            .deletes
            .get(&kv.key)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| {
                ev.prev_kv
                    .as_ref()
                    .is_none_or(|p| p.mod_revision == self.op(i).guard)
            })
            .collect();
        let chosen = cands
            .iter()
            .copied()
            .find(|&i| self.op(i).outcome == Outcome::Ok(rev))
            .or_else(|| {
                cands
                    .iter()
                    .copied()
                    .find(|&i| self.op(i).outcome == Outcome::Unknown)
            });
        if let Some(i) = chosen {
            return Ok(Cause::Op(i));
        }
        if let Some(&l) = self.lease_of_key.get(&kv.key) {
            return Ok(Cause::LeaseExpiry(l));
        }
        Err("a delete no client attempted (or only at another revision)".into())
    }
}

/// Failures of one kind, the first few spelled out.
struct Capped<'o> {
    out: &'o mut Vec<String>,
    shown: HashMap<&'static str, usize>,
    hidden: BTreeMap<&'static str, usize>,
}

impl<'o> Capped<'o> {
    fn new(out: &'o mut Vec<String>) -> Capped<'o> {
        Capped {
            out,
            shown: HashMap::new(),
            hidden: BTreeMap::new(),
        }
    }

    fn push(&mut self, kind: &'static str, msg: String) {
        let n = self.shown.entry(kind).or_insert(0);
        if *n < SAME_KIND_SHOWN {
            *n += 1;
            self.out.push(msg);
        } else {
            *self.hidden.entry(kind).or_insert(0) += 1;
        }
    }

    fn finish(self, whose: &str) {
        for (kind, n) in self.hidden {
            self.out
                .push(format!("{whose}: {n} more failures of the kind \"{kind}\""));
        }
    }
}

/// The revisions the watchers of every key cover: one interval per segment.
struct Coverage(Vec<(i64, i64)>);

impl Coverage {
    fn covers(&self, rev: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= rev && rev <= b)
    }

    /// Whether one segment covers all of `[a, b]`.
    fn covers_all(&self, a: i64, b: i64) -> bool {
        self.0.iter().any(|&(x, y)| x <= a && b <= y)
    }
}

pub fn check(input: &Input) -> Outcomes {
    let idx = Index::new(input);
    let mut out = Outcomes::default();
    let all_keys = |log: &WatchLog| log.span.key[..] == [0] && log.span.range_end[..] == [0];

    // 1, 2: every segment on its own.
    for log in input.logs {
        for (si, s) in log.segments.iter().enumerate() {
            check_segment(&idx, log, si, s, all_keys(log), &mut out.failures);
        }
    }

    // 3: the reference history, from the watchers of every key.
    let mut reference: BTreeMap<i64, Vec<(Sig, Event)>> = BTreeMap::new();
    let mut first_seen: HashMap<(i64, Bytes), (u64, Event)> = HashMap::new();
    let mut spans = Vec::new();
    for log in input.logs.iter().filter(|l| all_keys(l)) {
        for (si, s) in log.segments.iter().enumerate() {
            spans.push((s.start(), s.max_seen));
            let mut by_rev: BTreeMap<i64, Vec<(Sig, Event)>> = BTreeMap::new();
            for seen in &s.events {
                let kv = seen.ev.kv.clone().unwrap_or_default();
                by_rev
                    .entry(kv.mod_revision)
                    .or_default()
                    .push((sig(&seen.ev), seen.ev.clone()));
                let e = first_seen
                    .entry((kv.mod_revision, kv.key.clone()))
                    .or_insert((seen.at_ms, seen.ev.clone()));
                if seen.at_ms < e.0 {
                    e.0 = seen.at_ms;
                }
            }
            for (rev, mut evs) in by_rev {
                evs.sort_by(|a, b| a.0.cmp(&b.0));
                match reference.get(&rev) {
                    Some(r) if !same_sigs(r, &evs) => out.failures.push(format!(
                        "watchers of every key disagree at revision {rev}: {} segment {si} got \
                         {:?}, another got {:?}",
                        log.name,
                        evs.iter().map(|s| &s.0.kv).collect::<Vec<_>>(),
                        r.iter().map(|s| &s.0.kv).collect::<Vec<_>>()
                    )),
                    Some(_) => {}
                    None => {
                        reference.insert(rev, evs);
                    }
                }
            }
        }
    }
    let coverage = Coverage(spans);
    for log in input.logs.iter().filter(|l| !all_keys(l)) {
        for (si, s) in log.segments.iter().enumerate() {
            compare_with_reference(log, si, s, &reference, &coverage, &mut out.failures);
        }
    }

    // 4: counters.
    check_counters(&idx, &reference, &coverage, &mut out.failures);

    // 5: lists.
    check_lists(input, &mut out);

    // 6: final state and leases.
    check_final(&idx, &reference, &coverage, &mut out);
    check_lease_expiries(&idx, &first_seen, &mut out.failures);

    let covered_acks = input
        .ops
        .iter()
        .filter_map(|o| match o.outcome {
            Outcome::Ok(r) => Some(r),
            _ => None,
        })
        .fold((0, 0), |(c, n), r| (c + coverage.covers(r) as usize, n + 1));
    out.notes.push(format!(
        "acknowledged writes inside the history of a watcher of every key: {} of {}",
        covered_acks.0, covered_acks.1
    ));
    let unknown: Vec<&Op> = input
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Unknown)
        .collect();
    let applied = unknown
        .iter()
        .filter(|o| {
            o.kind != OpKind::Delete
                && first_seen.values().any(|(_, ev)| {
                    ev.kv
                        .as_ref()
                        .is_some_and(|kv| kv.key == o.key && kv.value == o.value)
                })
        })
        .count();
    out.notes.push(format!(
        "writes with an unknown outcome: {} ({} puts among them seen applied in the history)",
        unknown.len(),
        applied
    ));
    out
}

fn check_segment(
    idx: &Index,
    log: &WatchLog,
    si: usize,
    s: &Segment,
    all_keys: bool,
    out: &mut Vec<String>,
) {
    let whose = format!(
        "watcher {} segment {si} (from revision {})",
        log.name,
        s.start()
    );
    let mut f = Capped::new(out);
    let mut prev = s.list_rev;
    let mut pairs: HashSet<(i64, Bytes)> = HashSet::new();
    let mut ops_seen: HashSet<usize> = HashSet::new();
    let mut revs: HashSet<i64> = HashSet::new();
    let mut progress_max = i64::MIN;
    let mut progress_from = 0;
    let mut p = 0;
    for (i, seen) in s.events.iter().enumerate() {
        while p < s.progress.len() && s.progress[p].events_before <= i {
            if s.progress[p].revision > progress_max {
                progress_max = s.progress[p].revision;
                progress_from = s.progress[p].member;
            }
            p += 1;
        }
        let Some(kv) = seen.ev.kv.as_ref() else {
            f.push("no kv", format!("{whose}: event #{i} has no key-value"));
            continue;
        };
        let rev = kv.mod_revision;
        let at = format!(
            "{whose}: event #{i} ({}, from m{} at {} ms)",
            ev_text(&seen.ev),
            seen.member,
            seen.at_ms
        );
        if rev < s.start() {
            f.push(
                "before start",
                format!("{at}: before the revision the watch started from"),
            );
        }
        if rev < prev {
            f.push(
                "reordered",
                format!("{at}: revision {rev} after an event at revision {prev}"),
            );
        }
        if rev <= progress_max {
            f.push(
                "after progress",
                format!(
                    "{at}: arrived after a progress notification at revision {progress_max} \
                     (from m{progress_from}) said every event up to it was sent"
                ),
            );
        }
        if !in_range(&kv.key, &log.span.key, &log.span.range_end) {
            f.push(
                "out of range",
                format!("{at}: key outside the watched range"),
            );
        }
        if !pairs.insert((rev, kv.key.clone())) {
            f.push(
                "duplicate",
                format!("{at}: duplicate (same revision and key again)"),
            );
        }
        match idx.identify(&seen.ev) {
            Ok(Cause::Op(o)) => {
                if !ops_seen.insert(o) {
                    f.push(
                        "duplicate",
                        format!("{at}: attempt {} seen twice", idx.op(o).token),
                    );
                }
            }
            Ok(Cause::LeaseExpiry(_)) => {}
            Err(why) => f.push("unexplained", format!("{at}: {why}")),
        }
        revs.insert(rev);
        prev = prev.max(rev);
    }
    let end = s.max_seen;
    for (o, op) in idx.input.ops.iter().enumerate() {
        let Outcome::Ok(r) = op.outcome else { continue };
        if r < s.start() || r > end || !in_range(&op.key, &log.span.key, &log.span.range_end) {
            continue;
        }
        if !ops_seen.contains(&o) {
            f.push(
                "gap",
                format!(
                    "{whose}: gap: {} acknowledged at revision {r} never arrived, though the \
                     watcher knows every event up to revision {end}",
                    op_text(op)
                ),
            );
        }
    }
    if all_keys {
        let holes: Vec<i64> = (s.start()..=end).filter(|r| !revs.contains(r)).collect();
        if !holes.is_empty() {
            f.push(
                "gap",
                format!(
                    "{whose}: gap: {} revisions between {} and {end} never arrived, the first: {:?}",
                    holes.len(),
                    s.start(),
                    &holes[..holes.len().min(10)]
                ),
            );
        }
    }
    f.finish(&whose);
}

fn compare_with_reference(
    log: &WatchLog,
    si: usize,
    s: &Segment,
    reference: &Reference,
    coverage: &Coverage,
    out: &mut Vec<String>,
) {
    let whose = format!("watcher {} segment {si}", log.name);
    let mut f = Capped::new(out);
    let mut mine: BTreeMap<i64, Vec<Sig>> = BTreeMap::new();
    for seen in &s.events {
        let rev = seen.ev.kv.as_ref().map_or(0, |kv| kv.mod_revision);
        mine.entry(rev).or_default().push(sig(&seen.ev));
    }
    let empty = Vec::new();
    // A segment may end before it saw anything (its start compacted while
    // its member was down): then it covers no revision.
    let mut revs: Vec<i64> = if s.max_seen >= s.start() {
        reference
            .range(s.start()..=s.max_seen)
            .map(|(r, _)| *r)
            .collect()
    } else {
        Vec::new()
    };
    revs.extend(mine.keys().copied());
    revs.sort();
    revs.dedup();
    for rev in revs {
        if !coverage.covers(rev) {
            continue;
        }
        let mut want: Vec<Sig> = reference
            .get(&rev)
            .unwrap_or(&empty)
            .iter()
            .filter(|x| in_range(&x.0.key, &log.span.key, &log.span.range_end))
            .map(|x| x.0.clone())
            .collect();
        want.sort();
        let mut got = mine.get(&rev).cloned().unwrap_or_default();
        got.sort();
        if want != got {
            f.push(
                "disagrees",
                format!(
                    "{whose}: at revision {rev} it received {:?}, the watchers of every key {:?}",
                    got.iter().map(|s| &s.kv).collect::<Vec<_>>(),
                    want.iter().map(|s| &s.kv).collect::<Vec<_>>()
                ),
            );
        }
    }
    f.finish(&whose);
}

/// Whether `key` is an object the writers update (not an event key, a
/// fence or the compactor's key).
fn is_object(idx: &Index, key: &[u8]) -> bool {
    !idx.lease_of_key.contains_key(key)
        && key.starts_with(b"/registry/")
        && !key.ends_with(b"/~fence")
}

fn check_counters(idx: &Index, reference: &Reference, coverage: &Coverage, out: &mut Vec<String>) {
    let mut f = Capped::new(out);
    // key -> (revision, present, counter, version)
    let mut last: HashMap<Bytes, (i64, bool, u64, i64)> = HashMap::new();
    for (&rev, evs) in reference {
        for (s, ev) in evs {
            if !is_object(idx, &s.key) {
                continue;
            }
            let kv = ev.kv.clone().unwrap_or_default();
            let (counter, version) = if s.put {
                (counter_of(&kv.value).unwrap_or(u64::MAX), kv.version)
            } else {
                (0, 0)
            };
            if let Some(&(prev_rev, present, prev_counter, prev_version)) = last.get(&s.key) {
                if coverage.covers_all(prev_rev, rev) && s.put {
                    let (want_counter, want_version) = if present {
                        (prev_counter + 1, prev_version + 1)
                    } else {
                        (0, 1)
                    };
                    if counter != want_counter || version != want_version {
                        f.push(
                            "counter",
                            format!(
                                "lost update: {} at revision {rev} has counter {counter} version \
                                 {version}, but after revision {prev_rev} (counter \
                                 {prev_counter}, version {prev_version}, present {present}) it \
                                 must be counter {want_counter} version {want_version}: {}",
                                show(&s.key),
                                s.kv
                            ),
                        );
                    }
                }
            }
            last.insert(s.key.clone(), (rev, s.put, counter, version));
        }
    }
    f.finish("the history of every key");
}

fn check_lists(input: &Input, out: &mut Outcomes) {
    // Segments of watchers of every key, each with its list: the state at
    // any revision of the segment is that list plus its events.
    let segs: Vec<&Segment> = input
        .logs
        .iter()
        .filter(|l| l.span.key[..] == [0] && l.span.range_end[..] == [0])
        .flat_map(|l| &l.segments)
        .collect();
    let mut compared = 0;
    let mut f = Capped::new(&mut out.failures);
    let mut lists: Vec<&ListSnapshot> = input.lists.iter().collect();
    lists.sort_by_key(|l| l.revision);
    for seg in segs {
        let mut state: BTreeMap<Bytes, KeyValue> = seg
            .list
            .iter()
            .map(|kv| (kv.key.clone(), kv.clone()))
            .collect();
        let mut applied = 0;
        for l in lists
            .iter()
            .filter(|l| l.revision >= seg.list_rev && l.revision <= seg.max_seen)
        {
            while applied < seg.events.len() {
                let ev = &seg.events[applied].ev;
                let Some(kv) = ev.kv.as_ref() else { break };
                if kv.mod_revision > l.revision {
                    break;
                }
                if ev.r#type == EventType::Put as i32 {
                    state.insert(kv.key.clone(), kv.clone());
                } else {
                    state.remove(&kv.key);
                }
                applied += 1;
            }
            let want: Vec<KeyValue> = state
                .values()
                .filter(|kv| in_range(&kv.key, &l.key, &l.range_end))
                .cloned()
                .collect();
            compared += 1;
            if let Some(d) = super::list::first_difference(&want, &l.kvs) {
                f.push(
                    "list",
                    format!(
                        "{}: the list of {}.. at revision {} ({} keys) is not the state the watch \
                         history gives at that revision ({} keys): {d} (history / list)",
                        l.who,
                        show(&l.key),
                        l.revision,
                        l.kvs.len(),
                        want.len()
                    ),
                );
            }
        }
    }
    f.finish("lists");
    out.notes.push(format!(
        "lists compared with the watch history: {compared} comparisons of {} lists",
        input.lists.len()
    ));
}

fn check_final(idx: &Index, reference: &Reference, coverage: &Coverage, out: &mut Outcomes) {
    let ops = idx.input.ops;
    let finals = idx.input.finals;
    let mut by_key: BTreeMap<Bytes, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| is_object(idx, &o.key)) {
        by_key.entry(op.key.clone()).or_default().push(op);
    }
    let (mut at_ack, mut later, mut absent) = (0, 0, 0);
    for (key, kops) in &by_key {
        let last_ok = kops
            .iter()
            .filter_map(|o| match o.outcome {
                Outcome::Ok(r) => Some((r, *o)),
                _ => None,
            })
            .max_by_key(|(r, _)| *r);
        let fin = finals.get(key);
        let unknown = |pred: &dyn Fn(&Op) -> bool| {
            kops.iter()
                .any(|o| o.outcome == Outcome::Unknown && pred(o))
        };
        match (fin, last_ok) {
            (None, None) => absent += 1,
            (Some(kv), None) => {
                if unknown(&|o| o.value == kv.value) {
                    later += 1;
                } else {
                    out.failures.push(format!(
                        "final state: {} = {} but no write of it was acknowledged, and no \
                         write with an unknown outcome wrote that",
                        show(key),
                        kv_text(kv)
                    ));
                }
            }
            (None, Some((r, op))) => {
                if op.kind == OpKind::Delete {
                    absent += 1;
                } else if unknown(&|o| o.kind == OpKind::Delete && o.guard >= r) {
                    absent += 1;
                    later += 1;
                } else {
                    out.failures.push(format!(
                        "lost update: {} is gone at the end, but its last acknowledged write \
                         ({}) at revision {r} was not a delete, and no later delete of it has \
                         an unknown outcome",
                        show(key),
                        op_text(op)
                    ));
                }
            }
            (Some(kv), Some((r, op))) => {
                if kv.mod_revision < r {
                    out.failures.push(format!(
                        "lost update: {} ends at mod_revision {} ({}), older than its write {} \
                         acknowledged at revision {r}",
                        show(key),
                        kv.mod_revision,
                        kv_text(kv),
                        op_text(op)
                    ));
                } else if kv.mod_revision == r {
                    if op.value != kv.value {
                        out.failures.push(format!(
                            "final state: {} at revision {r} is {}, but the write acknowledged \
                             at that revision was {}",
                            show(key),
                            kv_text(kv),
                            op_text(op)
                        ));
                    } else {
                        at_ack += 1;
                    }
                } else if !unknown(&|o| o.value == kv.value) {
                    out.failures.push(format!(
                        "final state: {} = {} is newer than its last acknowledged write ({} at \
                         revision {r}), but no write with an unknown outcome wrote it",
                        show(key),
                        kv_text(kv),
                        op_text(op)
                    ));
                } else {
                    later += 1;
                    // Whatever came after the last acknowledged write must
                    // be writes with unknown outcomes.
                    if coverage.covers_all(r, kv.mod_revision) {
                        for (&rev, evs) in reference.range(r + 1..=kv.mod_revision) {
                            for (s, ev) in evs.iter().filter(|(s, _)| s.key == *key) {
                                let unknown_op = matches!(
                                    idx.identify(ev),
                                    Ok(Cause::Op(o)) if idx.op(o).outcome == Outcome::Unknown
                                );
                                if !unknown_op {
                                    out.failures.push(format!(
                                        "final state: after the last acknowledged write of {} \
                                         (revision {r}), revision {rev} holds {} which is no \
                                         write with an unknown outcome",
                                        show(key),
                                        s.kv
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out.notes.push(format!(
        "objects at the end: {at_ack} at their last acknowledged write, {later} at a later \
         write whose outcome was unknown, {absent} absent as their last acknowledged write \
         (or none) says"
    ));

    // Event keys.
    let end_ms = u64::MAX;
    let (mut kept_there, mut expired_gone) = (0, 0);
    for l in idx.input.leases {
        for key in &l.keys {
            let acked = ops
                .iter()
                .any(|o| o.key == *key && matches!(o.outcome, Outcome::Ok(_)));
            let fin = finals.get(key);
            if l.kept_at(end_ms) {
                if acked && fin.is_none() {
                    out.failures.push(format!(
                        "a kept-alive key vanished: {} (lease {:x}, TTL {} s, granted at {} ms, \
                         last renewed by a keep-alive sent at {} ms) is gone at the end",
                        show(key),
                        l.id,
                        l.ttl_s,
                        l.granted_ms,
                        l.renewed_ms
                    ));
                } else if fin.is_some() {
                    kept_there += 1;
                }
            } else if let Some(kv) = fin {
                out.failures.push(format!(
                    "an expired key is still there: {} (lease {:x}, TTL {} s, granted at {} ms, \
                     keep-alives stopped at {:?} ms, last renewed at {} ms): {}",
                    show(key),
                    l.id,
                    l.ttl_s,
                    l.granted_ms,
                    l.released_ms,
                    l.renewed_ms,
                    kv_text(kv)
                ));
            } else if acked {
                expired_gone += 1;
            }
        }
    }
    out.notes.push(format!(
        "event keys at the end: {kept_there} kept alive and present, {expired_gone} of expired \
         leases gone"
    ));
}

fn check_lease_expiries(
    idx: &Index,
    first_seen: &HashMap<(i64, Bytes), (u64, Event)>,
    out: &mut Vec<String>,
) {
    for ((rev, key), (at_ms, ev)) in first_seen {
        if ev.r#type != EventType::Delete as i32 {
            continue;
        }
        let Ok(Cause::LeaseExpiry(id)) = idx.identify(ev) else {
            continue;
        };
        let Some(l) = idx.leases.get(&id) else {
            continue;
        };
        if l.kept && l.released_ms.is_none_or(|r| *at_ms < r) {
            out.push(format!(
                "a kept-alive key vanished: {} deleted at revision {rev} (seen at {at_ms} ms) \
                 while lease {id:x} (TTL {} s, granted at {} ms) was kept alive; the last \
                 keep-alive answered with a TTL was sent at {} ms",
                show(key),
                l.ttl_s,
                l.granted_ms,
                l.renewed_ms
            ));
        } else if *at_ms < l.renewed_ms + 1000 * l.ttl_s as u64 {
            out.push(format!(
                "a lease expired early: {} deleted at revision {rev} (seen at {at_ms} ms), but \
                 lease {id:x} (TTL {} s) was granted or renewed by a request sent at {} ms",
                show(key),
                l.ttl_s,
                l.renewed_ms
            ));
        }
    }
}

/// The checks on small made-up histories: each planted fault must be
/// reported, and the clean history must pass.
#[cfg(test)]
mod checker_tests {
    use super::*;
    use crate::k8s::history::object_value;
    use crate::k8s::list::Span;
    use crate::k8s::watch::{Progress, Seen};

    const KEY: &[u8] = b"/registry/pods/default/obj-0";

    fn kv(rev: i64, create: i64, version: i64, token: &str, counter: u64) -> KeyValue {
        KeyValue {
            key: Bytes::from_static(KEY),
            create_revision: create,
            mod_revision: rev,
            version,
            value: object_value(token, counter),
            lease: 0,
        }
    }

    fn put(kv: KeyValue, prev: Option<KeyValue>) -> Seen {
        Seen {
            ev: Event {
                r#type: EventType::Put as i32,
                kv: Some(kv),
                prev_kv: prev,
            },
            at_ms: 0,
            member: 0,
        }
    }

    fn op(token: &str, kind: OpKind, guard: i64, counter: u64, rev: i64) -> Op {
        Op {
            token: token.into(),
            key: Bytes::from_static(KEY),
            kind,
            guard,
            value: object_value(token, counter),
            counter,
            outcome: Outcome::Ok(rev),
            error: None,
            invoked_ms: 0,
            completed_ms: 0,
            member: 0,
        }
    }

    /// Create at 2, updates at 3 and 4; one watcher of every key.
    struct Case {
        ops: Vec<Op>,
        events: Vec<Seen>,
        progress: Vec<Progress>,
        finals: BTreeMap<Bytes, KeyValue>,
    }

    fn clean() -> Case {
        let (a, b, c) = (
            kv(2, 2, 1, "w0-0", 0),
            kv(3, 2, 2, "w0-1", 1),
            kv(4, 2, 3, "w1-0", 2),
        );
        Case {
            ops: vec![
                op("w0-0", OpKind::Create, 0, 0, 2),
                op("w0-1", OpKind::Update, 2, 1, 3),
                op("w1-0", OpKind::Update, 3, 2, 4),
            ],
            events: vec![
                put(a.clone(), None),
                put(b.clone(), Some(a)),
                put(c.clone(), Some(b)),
            ],
            progress: Vec::new(),
            finals: [(c.key.clone(), c)].into_iter().collect(),
        }
    }

    fn run(c: &Case) -> Vec<String> {
        run_with_leases(c, &[])
    }

    /// The case, seen by one watcher of every key from revision 2.
    fn run_with_leases(c: &Case, leases: &[LeaseRec]) -> Vec<String> {
        let seg = Segment {
            list_rev: 1,
            list: Vec::new(),
            events: c.events.clone(),
            progress: c.progress.clone(),
            max_seen: c
                .events
                .iter()
                .map(|s| s.ev.kv.as_ref().unwrap().mod_revision)
                .chain(c.progress.iter().map(|p| p.revision))
                .max()
                .unwrap_or(1),
            end: String::new(),
            resumes: 0,
            opens: Vec::new(),
        };
        let logs = [WatchLog {
            name: "all".into(),
            span: Span {
                name: "all".into(),
                key: Bytes::from_static(b"\0"),
                range_end: Bytes::from_static(b"\0"),
            },
            segments: vec![seg],
        }];
        check(&Input {
            ops: &c.ops,
            logs: &logs,
            lists: &[],
            leases,
            finals: &c.finals,
        })
        .failures
    }

    fn assert_reports(c: &Case, what: &str) {
        let f = run(c);
        assert!(
            f.iter().any(|m| m.contains(what)),
            "expected a failure containing {what:?}, got {f:#?}"
        );
    }

    #[test]
    fn a_clean_history_passes() {
        let f = run(&clean());
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn a_missing_event_is_a_gap() {
        let mut c = clean();
        c.events.remove(1);
        assert_reports(&c, "gap: update");
        assert_reports(&c, "revisions between");
    }

    #[test]
    fn a_repeated_event_is_reported() {
        let mut c = clean();
        let again = c.events[1].clone();
        c.events.insert(2, again);
        assert_reports(&c, "duplicate");
    }

    #[test]
    fn events_out_of_order_are_reported() {
        let mut c = clean();
        c.events.swap(1, 2);
        assert_reports(&c, "after an event at revision");
    }

    #[test]
    fn an_event_after_a_progress_notification_covering_it_is_reported() {
        let mut c = clean();
        c.progress.push(Progress {
            events_before: 2,
            revision: 4,
            member: 1,
        });
        assert_reports(&c, "arrived after a progress notification at revision 4");
    }

    #[test]
    fn a_final_state_older_than_an_acknowledged_write_is_a_lost_update() {
        let mut c = clean();
        let b = c.events[1].ev.kv.clone().unwrap();
        c.finals.insert(b.key.clone(), b);
        assert_reports(&c, "lost update");
    }

    #[test]
    fn two_updates_from_the_same_read_are_a_lost_update() {
        // The second update was guarded by revision 2 as the first one, so
        // it must have failed; here both were applied.
        let mut c = clean();
        let b = c.events[1].ev.kv.clone().unwrap();
        let bad = kv(4, 2, 3, "w1-0", 1);
        c.ops[2] = op("w1-0", OpKind::Update, 2, 1, 4);
        c.events[2] = put(bad.clone(), Some(b));
        c.finals.insert(bad.key.clone(), bad);
        assert_reports(&c, "lost update");
    }

    #[test]
    fn an_event_of_a_failed_attempt_is_reported() {
        let mut c = clean();
        c.ops[1].outcome = Outcome::Failed;
        assert_reports(&c, "whose outcome was Failed");
    }

    #[test]
    fn a_kept_alive_key_that_vanishes_is_reported() {
        let mut c = clean();
        let ev = Bytes::from_static(b"/registry/events/default/ev-0-0");
        let mut e = kv(5, 5, 1, "e0-0", 0);
        e.key = ev.clone();
        e.lease = 7;
        c.ops.push(Op {
            key: ev.clone(),
            value: e.value.clone(),
            kind: OpKind::LeasePut { lease: 7 },
            ..op("e0-0", OpKind::Create, 0, 0, 5)
        });
        c.events.push(put(e.clone(), None));
        let mut gone = e.clone();
        gone.mod_revision = 6;
        gone.value = Bytes::new();
        c.events.push(Seen {
            ev: Event {
                r#type: EventType::Delete as i32,
                kv: Some(gone),
                prev_kv: None,
            },
            at_ms: 9000,
            member: 0,
        });
        let lease = LeaseRec {
            id: 7,
            ttl_s: 5,
            granted_ms: 0,
            kept: true,
            keeper: 0,
            released_ms: None,
            renewed_ms: 8000,
            keys: vec![ev],
        };
        let f = run_with_leases(&c, &[lease]);
        assert!(
            f.iter().any(|m| m.contains("a kept-alive key vanished")),
            "{f:#?}"
        );
    }
}
