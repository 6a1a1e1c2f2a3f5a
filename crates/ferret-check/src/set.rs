//! The set checks.
//!
//! [`check_set`], for v2 in-order keys (`POST` in one directory): every
//! create the server acknowledged must be present at the end; every key
//! present must come from a create that was attempted (and not one that
//! definitely failed); unknown creates may be present or not. Creates are
//! identified by their (unique) value, because an unanswered `POST` never
//! learns its key name.
//!
//! [`check_adds`], for a v3 set of keys added with create-if-absent
//! transactions (`Txn(create_revision(key) == 0) then Put(key, value)`),
//! several clients racing to add the same element: every acknowledged add
//! (created, or answered "already present") is present at the end; the
//! value present is the one whose transaction said it created the key
//! (so at most one did); and nothing is present that no add attempted, or
//! that only a definitely failed or a "not created" transaction wrote.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::Status;

/// One attempted create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Create {
    pub value: String,
    pub status: Status,
    /// The key the server named (ok creates only).
    pub key: Option<String>,
}

/// What the set check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetReport {
    pub acknowledged: usize,
    pub unknown: usize,
    /// Unknown creates found at the end.
    pub unknown_present: usize,
    pub violations: Vec<String>,
}

/// `present`: (key, value) of every child of the directory at the end.
pub fn check_set(creates: &[Create], present: &[(String, String)]) -> SetReport {
    let mut report = SetReport::default();
    let mut attempted: BTreeMap<&str, &Create> = BTreeMap::new();
    for c in creates {
        if attempted.insert(&c.value, c).is_some() {
            report.violations.push(format!(
                "malformed history: value {:?} created twice",
                c.value
            ));
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in present {
        if let Some(other) = seen.insert(value, key) {
            report.violations.push(format!(
                "value {value:?} present twice, at {other} and {key}"
            ));
        }
        match attempted.get(value.as_str()) {
            None => report
                .violations
                .push(format!("{key} = {value:?} present but never attempted")),
            Some(c) if c.status == Status::Failed => report.violations.push(format!(
                "{key} = {value:?} present but its create definitely failed"
            )),
            Some(c) if c.status == Status::Unknown => report.unknown_present += 1,
            Some(c) => {
                if let Some(k) = &c.key {
                    if k != key {
                        report.violations.push(format!(
                            "{value:?} was acknowledged as {k} but is present as {key}"
                        ));
                    }
                }
            }
        }
    }
    let present_values: BTreeSet<&str> = present.iter().map(|(_, v)| v.as_str()).collect();
    for c in creates {
        match c.status {
            Status::Ok => {
                report.acknowledged += 1;
                if !present_values.contains(c.value.as_str()) {
                    report.violations.push(format!(
                        "acknowledged create {:?} ({}) lost",
                        c.value,
                        c.key.as_deref().unwrap_or("?")
                    ));
                }
            }
            Status::Unknown => report.unknown += 1,
            Status::Failed => {}
        }
    }
    report
}

/// One attempted create-if-absent of a key (its value unique to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    pub key: String,
    pub value: String,
    pub status: Status,
    /// For ok adds: `true` if the transaction's comparison held and it
    /// wrote `value`, `false` if it found the key present and wrote
    /// nothing.
    pub created: bool,
}

/// `present`: (key, value) of every key of the set at the end, read once.
pub fn check_adds(adds: &[Add], present: &[(String, String)]) -> SetReport {
    let mut report = SetReport::default();
    let mut by_value: BTreeMap<(&str, &str), &Add> = BTreeMap::new();
    for a in adds {
        if by_value.insert((&a.key, &a.value), a).is_some() {
            report.violations.push(format!(
                "malformed history: {} = {:?} added twice",
                a.key, a.value
            ));
        }
    }
    let mut now: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in present {
        if now.insert(key, value).is_some() {
            report
                .violations
                .push(format!("{key} listed twice in the final read"));
        }
        match by_value.get(&(key.as_str(), value.as_str())) {
            None => report
                .violations
                .push(format!("{key} = {value:?} present but never attempted")),
            Some(a) if a.status == Status::Failed => report.violations.push(format!(
                "{key} = {value:?} present but its add definitely failed"
            )),
            Some(a) if a.status == Status::Ok && !a.created => report.violations.push(format!(
                "{key} = {value:?} present but its transaction said the key existed and wrote nothing"
            )),
            Some(a) if a.status == Status::Unknown => report.unknown_present += 1,
            Some(_) => {}
        }
    }
    for a in adds {
        match a.status {
            Status::Ok => {
                report.acknowledged += 1;
                match now.get(a.key.as_str()) {
                    None => report.violations.push(format!(
                        "acknowledged add of {} ({}) lost: absent at the end",
                        a.key,
                        if a.created {
                            format!("created with {:?}", a.value)
                        } else {
                            "found present".to_string()
                        }
                    )),
                    Some(v) if a.created && *v != a.value => report.violations.push(format!(
                        "{}: the transaction that wrote {:?} said it created the key, but it holds {v:?}",
                        a.key, a.value
                    )),
                    Some(_) => {}
                }
            }
            Status::Unknown => report.unknown += 1,
            Status::Failed => {}
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(value: &str, status: Status, key: Option<&str>) -> Create {
        Create {
            value: value.into(),
            status,
            key: key.map(str::to_string),
        }
    }
    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn all_acknowledged_present_passes() {
        let creates = [
            c("a", Status::Ok, Some("/q/1")),
            c("b", Status::Unknown, None),
            c("c", Status::Unknown, None),
            c("d", Status::Failed, None),
        ];
        let r = check_set(&creates, &[p("/q/1", "a"), p("/q/5", "b")]);
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!((r.acknowledged, r.unknown, r.unknown_present), (1, 2, 1));
    }

    #[test]
    fn lost_acknowledged_create_fails() {
        let r = check_set(&[c("a", Status::Ok, Some("/q/1"))], &[]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("lost"));
    }

    #[test]
    fn present_but_never_attempted_or_failed_fails() {
        let r = check_set(
            &[c("d", Status::Failed, None)],
            &[p("/q/1", "x"), p("/q/2", "d")],
        );
        assert_eq!(r.violations.len(), 2, "{r:?}");
    }

    #[test]
    fn duplicated_or_moved_fails() {
        let r = check_set(
            &[c("a", Status::Ok, Some("/q/1"))],
            &[p("/q/1", "a"), p("/q/2", "a")],
        );
        assert!(!r.violations.is_empty(), "{r:?}");
    }

    fn add(key: &str, value: &str, status: Status, created: bool) -> Add {
        Add {
            key: key.into(),
            value: value.into(),
            status,
            created,
        }
    }

    #[test]
    fn racing_adds_with_one_creator_pass() {
        let adds = [
            add("/s/1", "a", Status::Ok, true),
            add("/s/1", "b", Status::Ok, false),
            add("/s/1", "c", Status::Unknown, false),
            add("/s/2", "d", Status::Unknown, false),
            add("/s/3", "e", Status::Failed, false),
            add("/s/4", "f", Status::Unknown, false),
        ];
        let r = check_adds(&adds, &[p("/s/1", "a"), p("/s/2", "d")]);
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!((r.acknowledged, r.unknown, r.unknown_present), (2, 3, 1));
    }

    #[test]
    fn lost_or_overwritten_adds_fail() {
        // "found present" but absent at the end.
        let r = check_adds(&[add("/s/1", "b", Status::Ok, false)], &[]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("lost"), "{r:?}");
        // Two creators of one key: the one not present was overwritten.
        let r = check_adds(
            &[
                add("/s/1", "a", Status::Ok, true),
                add("/s/1", "b", Status::Ok, true),
            ],
            &[p("/s/1", "b")],
        );
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("said it created"), "{r:?}");
    }

    #[test]
    fn values_nobody_may_have_written_fail() {
        let adds = [
            add("/s/1", "a", Status::Failed, false),
            add("/s/2", "b", Status::Ok, false),
            add("/s/2", "c", Status::Unknown, false),
        ];
        let r = check_adds(&adds, &[p("/s/1", "a"), p("/s/2", "b"), p("/s/3", "x")]);
        assert_eq!(r.violations.len(), 3, "{r:?}");
    }
}
