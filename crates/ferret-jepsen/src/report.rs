//! What the nemesis did, and what it saw go wrong.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct Report {
    /// Faults injected, by kind (the WAL fault by variant).
    pub counts: BTreeMap<String, usize>,
    /// One line per fault worth a word: what was damaged and how the
    /// member took it.
    pub notes: Vec<String>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn count(&mut self, kind: &str) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
    }
}
