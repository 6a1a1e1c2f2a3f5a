//! The watch check: each watcher saw every modification of its key once,
//! in index order, with no gap.
//!
//! The reference is the key's modifications known from the whole run: the
//! acknowledged writes (their `modifiedIndex`) and every event any watcher
//! received. A watcher follows from a `waitIndex`; within the range it
//! covered (from its start index to the last event it received) it must
//! have received every known modification, each once, in increasing index
//! order, and with the value every other source agrees on. A watcher that
//! was told "event index cleared" (401: the server's history window moved
//! past it) starts a new segment: the gap was declared, not hidden.

use std::collections::BTreeMap;

/// One event received by a watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub index: u64,
    pub action: String,
    pub value: Option<String>,
}

/// A stretch of events received without a declared gap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// The first `waitIndex` asked for.
    pub from_index: u64,
    pub events: Vec<Event>,
}

/// One watcher of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watcher {
    pub name: String,
    pub key: String,
    pub segments: Vec<Segment>,
}

/// An acknowledged modification of a key: its `modifiedIndex` and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    pub key: String,
    pub index: u64,
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    pub events: usize,
    pub violations: Vec<String>,
}

type Known<'a> = BTreeMap<&'a str, BTreeMap<u64, (Option<&'a str>, String)>>;

/// Records that `key` was modified at `index` to `value`, per `who`;
/// disagreeing sources are a violation.
fn learn<'a>(
    known: &mut Known<'a>,
    report: &mut WatchReport,
    (key, index, value): (&'a str, u64, Option<&'a str>),
    who: String,
) {
    let m = known.entry(key).or_default();
    match m.get(&index) {
        Some((v, first)) if *v != value => report.violations.push(format!(
            "{key} at index {index}: {first} says {v:?}, {who} says {value:?}"
        )),
        Some(_) => {}
        None => {
            m.insert(index, (value, who));
        }
    }
}

pub fn check_watches(watchers: &[Watcher], acknowledged: &[Modification]) -> WatchReport {
    let mut report = WatchReport::default();
    // key -> index -> (value, who said so)
    let mut known: Known = BTreeMap::new();
    for a in acknowledged {
        let what = (a.key.as_str(), a.index, a.value.as_deref());
        learn(
            &mut known,
            &mut report,
            what,
            "an acknowledged write".into(),
        );
    }
    for w in watchers {
        for (s, seg) in w.segments.iter().enumerate() {
            for e in &seg.events {
                report.events += 1;
                let who = format!("watcher {} segment {s}", w.name);
                let what = (w.key.as_str(), e.index, e.value.as_deref());
                learn(&mut known, &mut report, what, who);
            }
        }
    }
    for w in watchers {
        let mut last_seen = 0;
        for (s, seg) in w.segments.iter().enumerate() {
            let Some(last) = seg.events.last() else {
                continue;
            };
            let mut prev: Option<u64> = None;
            for e in &seg.events {
                if e.index < seg.from_index {
                    report.violations.push(format!(
                        "watcher {} segment {s}: event {} before its waitIndex {}",
                        w.name, e.index, seg.from_index
                    ));
                }
                if let Some(p) = prev {
                    if e.index == p {
                        report.violations.push(format!(
                            "watcher {} segment {s}: event {} delivered twice",
                            w.name, e.index
                        ));
                    } else if e.index < p {
                        report.violations.push(format!(
                            "watcher {} segment {s}: event {} after event {p}",
                            w.name, e.index
                        ));
                    }
                }
                if e.index <= last_seen && prev.is_none() {
                    report.violations.push(format!(
                        "watcher {} segment {s}: event {} again after a reconnect (had {last_seen})",
                        w.name, e.index
                    ));
                }
                prev = Some(e.index);
            }
            last_seen = last_seen.max(last.index);
            let got: std::collections::BTreeSet<u64> = seg.events.iter().map(|e| e.index).collect();
            if let Some(m) = known.get(w.key.as_str()) {
                for (&i, (_, who)) in m.range(seg.from_index..=last.index) {
                    if !got.contains(&i) {
                        report.violations.push(format!(
                            "watcher {} segment {s} (from {} to {}): missed index {i} (known from {who})",
                            w.name, seg.from_index, last.index
                        ));
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, value: &str) -> Event {
        Event {
            index,
            action: "set".into(),
            value: Some(value.into()),
        }
    }
    fn watcher(from: u64, events: Vec<Event>) -> Watcher {
        Watcher {
            name: "w".into(),
            key: "/k".into(),
            segments: vec![Segment {
                from_index: from,
                events,
            }],
        }
    }
    fn ack(index: u64, value: &str) -> Modification {
        Modification {
            key: "/k".into(),
            index,
            value: Some(value.into()),
        }
    }

    #[test]
    fn complete_in_order_stream_passes() {
        let w = watcher(3, vec![ev(3, "a"), ev(7, "b"), ev(9, "c")]);
        let r = check_watches(&[w], &[ack(3, "a"), ack(7, "b"), ack(12, "later")]);
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!(r.events, 3);
    }

    #[test]
    fn gap_duplicate_disorder_and_wrong_value_fail() {
        let gap = watcher(3, vec![ev(3, "a"), ev(9, "c")]);
        let r = check_watches(&[gap], &[ack(7, "b")]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("missed index 7"));

        let dup = watcher(3, vec![ev(3, "a"), ev(3, "a")]);
        assert_eq!(check_watches(&[dup], &[]).violations.len(), 1);

        let disorder = watcher(3, vec![ev(7, "b"), ev(3, "a")]);
        assert_eq!(check_watches(&[disorder], &[]).violations.len(), 1);

        let wrong = watcher(3, vec![ev(3, "zz")]);
        assert_eq!(check_watches(&[wrong], &[ack(3, "a")]).violations.len(), 1);
    }

    #[test]
    fn a_gap_another_watcher_saw_is_caught() {
        let a = watcher(1, vec![ev(2, "x"), ev(5, "y")]);
        let mut b = watcher(1, vec![ev(2, "x"), ev(4, "unacked"), ev(5, "y")]);
        b.name = "b".into();
        let r = check_watches(&[a, b], &[]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
    }

    #[test]
    fn a_reconnect_that_replays_an_event_fails() {
        let mut w = watcher(1, vec![ev(2, "x")]);
        w.segments.push(Segment {
            from_index: 1,
            events: vec![ev(2, "x"), ev(3, "y")],
        });
        let r = check_watches(&[w], &[]);
        assert!(!r.violations.is_empty(), "{r:?}");
    }
}
