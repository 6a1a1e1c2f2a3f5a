//! The rules that entries and snapshot markers follow, applied twice: by the
//! writer before it buffers anything (a bad call is refused and nothing is
//! written) and by recovery (a record that breaks them was not written by
//! this crate, so it is corruption).

use std::collections::VecDeque;

use crate::{EntryRecord, HardState};

/// Where the log stands, without its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogPosition {
    /// The index of the last live entry, or the snapshot marker's index if
    /// that is higher (a follower that installed a snapshot past its log).
    /// The next entry may have any index up to `last_index + 1`.
    pub last_index: u64,
    /// `(index, term)` of the last snapshot marker.
    pub snapshot: Option<(u64, u64)>,
}

impl LogPosition {
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.map_or(0, |(index, _)| index)
    }

    /// An entry must come after the snapshot (entries up to it are compacted
    /// and can never be rewritten: they were committed) and may not leave a
    /// gap. An index at or below `last_index` is Raft's conflict truncation.
    pub fn check_entry(&self, index: u64) -> Result<(), String> {
        let snapshot_index = self.snapshot_index();
        if index <= snapshot_index {
            return Err(format!(
                "entry {index} is at or below the snapshot marker {snapshot_index}"
            ));
        }
        if index > self.last_index.saturating_add(1) {
            return Err(format!(
                "entry {index} leaves a gap after the last index {}",
                self.last_index
            ));
        }
        Ok(())
    }

    pub fn apply_entry(&mut self, index: u64) {
        self.last_index = index;
    }

    /// Snapshots only move forward: the state machine they capture never
    /// goes back.
    pub fn check_snapshot(&self, index: u64) -> Result<(), String> {
        let current = self.snapshot_index();
        if index < current {
            return Err(format!(
                "snapshot marker {index} is below the previous marker {current}"
            ));
        }
        Ok(())
    }

    pub fn apply_snapshot(&mut self, index: u64, term: u64) {
        self.snapshot = Some((index, term));
        self.last_index = self.last_index.max(index);
    }
}

/// The state rebuilt by reading segments in order.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub pos: LogPosition,
    pub metadata: Option<Vec<u8>>,
    pub hard_state: Option<HardState>,
    /// The live entries after the snapshot marker, contiguous by index.
    pub entries: VecDeque<EntryRecord>,
}

impl Replay {
    pub fn entry(&mut self, e: EntryRecord) -> Result<(), String> {
        self.pos.check_entry(e.index)?;
        // Truncation on conflict: the new entry replaces its index and all
        // that follow. Entries are contiguous, so popping from the back stops
        // at the first one below.
        while self
            .entries
            .back()
            .is_some_and(|last| last.index >= e.index)
        {
            self.entries.pop_back();
        }
        self.pos.apply_entry(e.index);
        self.entries.push_back(e);
        Ok(())
    }

    pub fn snapshot(&mut self, index: u64, term: u64) -> Result<(), String> {
        self.pos.check_snapshot(index)?;
        // Entries up to the snapshot are in the snapshot; those after it stay
        // (a snapshot taken locally at 50 while the log reaches 100 still
        // needs 51..=100, which were written before the marker).
        while self
            .entries
            .front()
            .is_some_and(|first| first.index <= index)
        {
            self.entries.pop_front();
        }
        self.pos.apply_snapshot(index, term);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> EntryRecord {
        EntryRecord {
            index,
            term,
            kind: 0,
            data: vec![],
        }
    }

    fn indexes_terms(r: &Replay) -> Vec<(u64, u64)> {
        r.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn conflict_truncates_the_suffix() {
        let mut r = Replay::default();
        for i in 1..=5 {
            r.entry(e(i, 1)).unwrap();
        }
        r.entry(e(3, 2)).unwrap();
        assert_eq!(indexes_terms(&r), vec![(1, 1), (2, 1), (3, 2)]);
        assert_eq!(r.pos.last_index, 3);
        r.entry(e(1, 3)).unwrap();
        assert_eq!(indexes_terms(&r), vec![(1, 3)]);
    }

    #[test]
    fn gaps_and_entries_below_the_snapshot_are_refused() {
        let mut r = Replay::default();
        assert!(r.entry(e(2, 1)).is_err());
        r.entry(e(1, 1)).unwrap();
        assert!(r.entry(e(3, 1)).is_err());
        r.snapshot(1, 1).unwrap();
        assert!(r.entry(e(1, 2)).is_err());
        assert!(r.snapshot(0, 1).is_err());
    }

    #[test]
    fn snapshot_keeps_later_entries_and_allows_a_leap() {
        let mut r = Replay::default();
        for i in 1..=10 {
            r.entry(e(i, 1)).unwrap();
        }
        r.snapshot(6, 1).unwrap();
        assert_eq!(r.entries.front().unwrap().index, 7);
        assert_eq!(r.entries.len(), 4);
        // A follower installs a snapshot far past its log, then continues.
        r.snapshot(100, 4).unwrap();
        assert!(r.entries.is_empty());
        assert_eq!(r.pos.last_index, 100);
        r.entry(e(101, 4)).unwrap();
        assert_eq!(indexes_terms(&r), vec![(101, 4)]);
    }
}
