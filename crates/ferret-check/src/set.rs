//! The set check for in-order keys (`POST` in one directory).
//!
//! Every create the server acknowledged must be present at the end; every
//! key present must come from a create that was attempted (and not one that
//! definitely failed); unknown creates may be present or not. Creates are
//! identified by their (unique) value, because an unanswered `POST` never
//! learns its key name.

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
}
