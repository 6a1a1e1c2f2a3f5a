//! The v3 watch check: etcd's watch guarantees, by revision.
//!
//! etcd documents four properties of a watch stream (`api/v3rpc` and
//! "Watch API guarantees" in its docs), which this module checks on what
//! each watcher received:
//!
//! - **ordered**: events arrive in increasing revision order;
//! - **unique**: an event (a revision and a key) never arrives twice, also
//!   not across a reconnect;
//! - **atomic**: the events of one revision arrive in one response, all of
//!   them (a transaction that writes three keys is one revision);
//! - **reliable**: no event between the revision a watcher started from
//!   and the last one it received is missing.
//!
//! A watcher that loses its stream (a member killed, paused, partitioned)
//! resumes on another member from the revision after the last event it
//! received; one told that its start revision was compacted
//! (`compact_revision`, the stream canceled) resumes from that revision.
//! Each stream is a [`Segment`] that says which of the two it was, and the
//! check follows the concatenation: a resume must start exactly where the
//! previous stream stopped, a compaction must not be declared below that
//! (resuming there would replay events), and only
//! the revisions below a declared compaction may be missing. The compaction
//! revision itself may arrive partly or not at all: compacting at `C` keeps
//! each key's last version up to `C` but drops a deletion at `C`.
//!
//! # What "missing" is measured against
//!
//! Every source that says what one revision contains is a **claim** that
//! this is all of it: an acknowledged write (a `Put` is the only change of
//! its revision; a `Txn` changes exactly the keys it wrote), and what each
//! watcher received of that revision (once the revision ends, as a new
//! revision or the end of the stream). All claims of a revision must
//! agree, which catches a watcher that got part of a transaction, an event
//! with a wrong value, and two writes acknowledged at one revision. The
//! caller adds a reference stream read after the run (from revision 1, or
//! from past the last compaction) as one more watcher, so every revision
//! it covers has a complete claim.
//!
//! When the workload writes only under the watched prefix, every revision
//! has at least one event there (`dense`): then a segment must hold every
//! revision from its start to its last event, whatever the claims know.
//! Without it, a segment must hold every revision some claim knows in that
//! range.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A `Put` or a `Delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Put,
    Delete,
}

/// One event: a change of one key at one revision.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event {
    pub revision: u64,
    pub key: String,
    pub kind: Kind,
    /// The value written by a put; `None` for a delete.
    pub value: Option<String>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.value) {
            (Kind::Put, Some(v)) => write!(f, "put {}={v:?}", self.key),
            (Kind::Put, None) => write!(f, "put {}", self.key),
            (Kind::Delete, _) => write!(f, "delete {}", self.key),
        }
    }
}

/// One `WatchResponse` that carried events, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub events: Vec<Event>,
}

/// Why a stream started where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The watcher's first stream, from the revision it chose.
    Initial,
    /// After a lost stream: from the last revision received + 1 (or from
    /// the previous stream's start if it received nothing).
    Resume,
    /// The previous stream was told its start revision was compacted and
    /// canceled with `compact_revision`; this one starts from it.
    Compacted,
}

/// One stream of one watcher: its start revision and what it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: Start,
    pub from_revision: u64,
    pub responses: Vec<Response>,
}

/// One watcher of the keys starting with `prefix`, over all its streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    pub name: String,
    pub prefix: String,
    pub segments: Vec<Segment>,
}

/// The complete contents of one revision, per some source (an
/// acknowledged write): `events` are all the changes of `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub revision: u64,
    pub events: Vec<Event>,
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub events: usize,
    pub responses: usize,
    /// Streams resumed after a lost stream, and after a compaction.
    pub resumes: usize,
    pub compacted: usize,
    pub violations: Vec<String>,
}

/// Violations reported per watcher before the rest are only counted: one
/// bug usually shows as many.
const VIOLATIONS_PER_WATCHER_MAX: usize = 12;

/// Checks `watchers` against each other and against `claims`.
///
/// `dense`: every revision has an event under every watcher's prefix (the
/// workload writes nothing elsewhere). `until`: every watcher must have
/// received the events up to this revision (the run's last write, made
/// after healing, which every watcher was given time to see).
pub fn check_watches_v3(
    watchers: &[Watcher],
    claims: &[Claim],
    dense: bool,
    until: Option<u64>,
) -> Report {
    let mut report = Report::default();
    // revision -> distinct contents -> the first source that said so.
    let mut contents: BTreeMap<u64, BTreeMap<Vec<Event>, String>> = BTreeMap::new();
    let mut claim = |revision: u64, mut events: Vec<Event>, source: String| {
        events.sort();
        contents
            .entry(revision)
            .or_default()
            .entry(events)
            .or_insert(source);
    };
    for c in claims {
        claim(c.revision, c.events.clone(), c.source.clone());
    }
    for w in watchers {
        let mut problems = Vec::new();
        check_one(w, dense, until, &mut report, &mut problems, &mut claim);
        let n = problems.len();
        report.violations.extend(
            problems
                .into_iter()
                .take(VIOLATIONS_PER_WATCHER_MAX)
                .map(|p| format!("watcher {}: {p}", w.name)),
        );
        if n > VIOLATIONS_PER_WATCHER_MAX {
            report.violations.push(format!(
                "watcher {}: ... and {} more",
                w.name,
                n - VIOLATIONS_PER_WATCHER_MAX
            ));
        }
    }
    // Claims that disagree about a revision.
    let mut disagreements = 0;
    for (rev, versions) in &contents {
        if versions.len() < 2 {
            continue;
        }
        disagreements += 1;
        if disagreements > VIOLATIONS_PER_WATCHER_MAX {
            continue;
        }
        let said: Vec<String> = versions
            .iter()
            .map(|(events, who)| {
                let list: Vec<String> = events.iter().map(|e| e.to_string()).collect();
                format!("{who}: [{}]", list.join(", "))
            })
            .collect();
        report.violations.push(format!(
            "revision {rev} has different contents per source: {}",
            said.join("; ")
        ));
    }
    if disagreements > VIOLATIONS_PER_WATCHER_MAX {
        report.violations.push(format!(
            "... and {} more revisions with different contents per source",
            disagreements - VIOLATIONS_PER_WATCHER_MAX
        ));
    }
    // Without density, a gap is a revision some claim knows.
    if !dense {
        for w in watchers {
            let mut problems = Vec::new();
            for (s, seg) in w.segments.iter().enumerate() {
                let got: BTreeSet<u64> = seg
                    .responses
                    .iter()
                    .flat_map(|r| r.events.iter().map(|e| e.revision))
                    .collect();
                let (Some(&first), Some(&last)) = (got.first(), got.last()) else {
                    continue;
                };
                let from = expected_first(seg).min(first);
                for (&rev, versions) in contents.range(from..=last) {
                    let mine = versions
                        .keys()
                        .any(|evs| evs.iter().any(|e| e.key.starts_with(&w.prefix)));
                    if mine && !got.contains(&rev) && !optional(seg, rev) {
                        problems.push(format!(
                            "stream {s} (from {}) missed revision {rev}, known from {}",
                            seg.from_revision,
                            versions.values().next().expect("one version")
                        ));
                    }
                }
            }
            report.violations.extend(
                problems
                    .into_iter()
                    .take(VIOLATIONS_PER_WATCHER_MAX)
                    .map(|p| format!("watcher {}: {p}", w.name)),
            );
        }
    }
    report
}

/// The first revision a segment must hold.
fn expected_first(seg: &Segment) -> u64 {
    seg.from_revision
}

/// Whether `rev` may be missing or partial in `seg`: the compaction
/// revision a compacted stream restarts from.
fn optional(seg: &Segment, rev: u64) -> bool {
    seg.start == Start::Compacted && rev == seg.from_revision
}

/// The per-watcher checks; records the watcher's complete revisions as
/// claims.
fn check_one(
    w: &Watcher,
    dense: bool,
    until: Option<u64>,
    report: &mut Report,
    problems: &mut Vec<String>,
    claim: &mut impl FnMut(u64, Vec<Event>, String),
) {
    let mut seen: BTreeSet<(u64, &str)> = BTreeSet::new();
    // Where the next stream must start: after the last event received,
    // else where the previous stream started.
    let mut next: Option<u64> = None;
    let mut last_overall: Option<u64> = None;
    for (s, seg) in w.segments.iter().enumerate() {
        match (seg.start, next) {
            (Start::Initial, _) if s > 0 => {
                problems.push(format!("stream {s} is marked initial but is not the first"))
            }
            (Start::Resume, Some(n)) if seg.from_revision != n => problems.push(format!(
                "stream {s} resumed from revision {}, not {n} (after the last revision received)",
                seg.from_revision
            )),
            // etcd declares a compaction only for a start revision below
            // it; resuming from one at or below where the previous stream
            // stopped would replay what it received.
            (Start::Compacted, Some(n)) if seg.from_revision < n => problems.push(format!(
                "stream {s}: compaction declared at revision {} for a watch from {n}, which was not compacted away",
                seg.from_revision
            )),
            (Start::Compacted, _) => report.compacted += 1,
            (Start::Resume, _) => report.resumes += 1,
            _ => {}
        }
        next = Some(seg.from_revision);
        // The segment's revisions, each with the response(s) it came in.
        let mut revs: BTreeMap<u64, (Vec<Event>, BTreeSet<usize>)> = BTreeMap::new();
        let mut prev: Option<u64> = None;
        for (ri, resp) in seg.responses.iter().enumerate() {
            report.responses += 1;
            for e in &resp.events {
                report.events += 1;
                if !e.key.starts_with(&w.prefix) {
                    problems.push(format!(
                        "stream {s}: event at revision {} for {}, outside the watched prefix",
                        e.revision, e.key
                    ));
                }
                if e.revision < seg.from_revision {
                    problems.push(format!(
                        "stream {s}: event at revision {} before its start revision {}",
                        e.revision, seg.from_revision
                    ));
                }
                if let Some(p) = prev {
                    if e.revision < p {
                        problems.push(format!(
                            "stream {s}: revision {} arrived after revision {p} (out of order)",
                            e.revision
                        ));
                    }
                }
                prev = Some(prev.map_or(e.revision, |p| p.max(e.revision)));
                if !seen.insert((e.revision, e.key.as_str())) {
                    problems.push(format!(
                        "stream {s}: {} at revision {} delivered twice",
                        e.key, e.revision
                    ));
                }
                let slot = revs.entry(e.revision).or_default();
                slot.0.push(e.clone());
                slot.1.insert(ri);
            }
        }
        for (rev, (events, responses)) in &revs {
            if responses.len() > 1 {
                problems.push(format!(
                    "stream {s}: revision {rev} split across {} responses (not atomic)",
                    responses.len()
                ));
            }
            if !optional(seg, *rev) {
                claim(
                    *rev,
                    events.clone(),
                    format!("watcher {} stream {s}", w.name),
                );
            }
        }
        let Some(&last) = revs.keys().next_back() else {
            continue;
        };
        if dense {
            let mut from = expected_first(seg);
            if optional(seg, from) && !revs.contains_key(&from) {
                from += 1;
            }
            let missing: Vec<u64> = (from..=last).filter(|r| !revs.contains_key(r)).collect();
            for run in runs(&missing) {
                problems.push(format!(
                    "stream {s} (from {}, last event at {last}) missed {run}",
                    seg.from_revision
                ));
            }
        }
        next = Some(last + 1);
        last_overall = Some(last);
    }
    if let Some(u) = until {
        if last_overall.is_none_or(|l| l < u) {
            problems.push(format!(
                "never received revision {u}, the run's last write (last received: {})",
                last_overall.map_or("none".to_string(), |l| l.to_string())
            ));
        }
    }
}

/// Consecutive numbers as "revision N" or "revisions N..=M".
fn runs(sorted: &[u64]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            format!("revision {}", sorted[i])
        } else {
            format!("revisions {}..={}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: u64, key: &str, value: &str) -> Event {
        Event {
            revision,
            key: key.into(),
            kind: Kind::Put,
            value: Some(value.into()),
        }
    }
    fn del(revision: u64, key: &str) -> Event {
        Event {
            revision,
            key: key.into(),
            kind: Kind::Delete,
            value: None,
        }
    }
    fn resp(events: Vec<Event>) -> Response {
        Response { events }
    }
    fn seg(start: Start, from: u64, responses: Vec<Response>) -> Segment {
        Segment {
            start,
            from_revision: from,
            responses,
        }
    }
    fn watcher(name: &str, segments: Vec<Segment>) -> Watcher {
        Watcher {
            name: name.into(),
            prefix: "/p/".into(),
            segments,
        }
    }
    fn claim(revision: u64, events: Vec<Event>) -> Claim {
        Claim {
            revision,
            events,
            source: format!("ack@{revision}"),
        }
    }
    fn check(ws: &[Watcher], claims: &[Claim]) -> Report {
        check_watches_v3(ws, claims, true, None)
    }

    #[test]
    fn a_complete_stream_with_a_resume_and_a_compaction_passes() {
        let w = watcher(
            "w",
            vec![
                seg(
                    Start::Initial,
                    2,
                    vec![
                        resp(vec![put(2, "/p/a", "1")]),
                        resp(vec![put(3, "/p/a", "2"), put(3, "/p/b", "x")]),
                    ],
                ),
                // Lost stream, resumed after 3.
                seg(Start::Resume, 4, vec![resp(vec![put(4, "/p/a", "3")])]),
                // Lost again with nothing received; told 9 was compacted.
                seg(Start::Resume, 5, vec![]),
                // Revision 9 was a deletion, dropped by the compaction.
                seg(Start::Compacted, 9, vec![resp(vec![put(10, "/p/c", "z")])]),
            ],
        );
        let r = check(
            &[w],
            &[
                claim(3, vec![put(3, "/p/b", "x"), put(3, "/p/a", "2")]),
                claim(9, vec![del(9, "/p/b")]),
            ],
        );
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!((r.events, r.resumes, r.compacted), (5, 2, 1));
    }

    #[test]
    fn a_gap_a_duplicate_and_disorder_fail() {
        let gap = watcher(
            "w",
            vec![seg(
                Start::Initial,
                2,
                vec![
                    resp(vec![put(2, "/p/a", "1")]),
                    resp(vec![put(5, "/p/a", "2")]),
                ],
            )],
        );
        let r = check(&[gap], &[]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("missed revisions 3..=4"), "{r:?}");

        let late_start = watcher(
            "w",
            vec![seg(
                Start::Initial,
                2,
                vec![resp(vec![put(3, "/p/a", "1")])],
            )],
        );
        assert!(check(&[late_start], &[]).violations[0].contains("missed revision 2"));

        let dup = watcher(
            "w",
            vec![
                seg(Start::Initial, 2, vec![resp(vec![put(2, "/p/a", "1")])]),
                seg(Start::Resume, 3, vec![resp(vec![put(2, "/p/a", "1")])]),
            ],
        );
        let r = check(&[dup], &[]);
        assert!(
            r.violations.iter().any(|v| v.contains("delivered twice")),
            "{r:?}"
        );

        let disorder = watcher(
            "w",
            vec![seg(
                Start::Initial,
                2,
                vec![
                    resp(vec![put(3, "/p/a", "1")]),
                    resp(vec![put(2, "/p/a", "0")]),
                ],
            )],
        );
        let r = check(&[disorder], &[]);
        assert!(
            r.violations.iter().any(|v| v.contains("out of order")),
            "{r:?}"
        );
    }

    #[test]
    fn a_resume_from_the_wrong_revision_fails() {
        let skipped = watcher(
            "w",
            vec![
                seg(Start::Initial, 2, vec![resp(vec![put(2, "/p/a", "1")])]),
                seg(Start::Resume, 5, vec![resp(vec![put(5, "/p/a", "2")])]),
            ],
        );
        let r = check(&[skipped], &[]);
        assert!(r.violations[0].contains("not 3"), "{r:?}");
        // A compaction may skip revisions, but only forwards.
        let early = watcher(
            "w",
            vec![
                seg(Start::Initial, 2, vec![resp(vec![put(4, "/p/a", "1")])]),
                seg(Start::Compacted, 3, vec![]),
            ],
        );
        let r = check(&[early], &[]);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("not compacted away")),
            "{r:?}"
        );
    }

    #[test]
    fn a_split_or_partial_transaction_fails() {
        let split = watcher(
            "w",
            vec![seg(
                Start::Initial,
                3,
                vec![
                    resp(vec![put(3, "/p/a", "1")]),
                    resp(vec![put(3, "/p/b", "2")]),
                ],
            )],
        );
        let r = check(&[split], &[]);
        assert!(
            r.violations.iter().any(|v| v.contains("not atomic")),
            "{r:?}"
        );
        // Only one of the transaction's two puts arrived.
        let partial = watcher(
            "w",
            vec![seg(
                Start::Initial,
                3,
                vec![resp(vec![put(3, "/p/a", "1")])],
            )],
        );
        let r = check(
            &[partial],
            &[claim(3, vec![put(3, "/p/a", "1"), put(3, "/p/b", "2")])],
        );
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("different contents"), "{r:?}");
    }

    #[test]
    fn a_wrong_value_or_two_writes_at_one_revision_fail() {
        let w = watcher(
            "w",
            vec![seg(
                Start::Initial,
                3,
                vec![resp(vec![put(3, "/p/a", "x")])],
            )],
        );
        let r = check(&[w], &[claim(3, vec![put(3, "/p/a", "1")])]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        let r = check(
            &[],
            &[
                claim(3, vec![put(3, "/p/a", "1")]),
                claim(3, vec![put(3, "/p/b", "2")]),
            ],
        );
        assert_eq!(r.violations.len(), 1, "{r:?}");
    }

    #[test]
    fn a_watcher_that_never_caught_up_fails() {
        let w = watcher(
            "w",
            vec![seg(
                Start::Initial,
                2,
                vec![resp(vec![put(2, "/p/a", "1")])],
            )],
        );
        let r = check_watches_v3(std::slice::from_ref(&w), &[], true, Some(2));
        assert!(r.violations.is_empty(), "{r:?}");
        let r = check_watches_v3(&[w], &[], true, Some(7));
        assert!(
            r.violations[0].contains("never received revision 7"),
            "{r:?}"
        );
    }

    #[test]
    fn without_density_only_known_revisions_are_required() {
        let w = watcher(
            "w",
            vec![seg(
                Start::Initial,
                2,
                vec![
                    resp(vec![put(2, "/p/a", "1")]),
                    resp(vec![put(6, "/p/a", "2")]),
                ],
            )],
        );
        let r = check_watches_v3(std::slice::from_ref(&w), &[], false, None);
        assert!(r.violations.is_empty(), "{r:?}");
        let r = check_watches_v3(&[w], &[claim(4, vec![put(4, "/p/b", "3")])], false, None);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("missed revision 4"), "{r:?}");
    }
}
