//! The Raft log in memory: what raft-rs reads through its `Storage` trait.
//!
//! It holds the entries after the last snapshot, the last snapshot's
//! metadata, the hard state and the configuration. Durability is not its
//! job: the Ready loop writes the same entries and hard state to the WAL,
//! and restores this from the WAL and the newest snapshot file at start.
//!
//! A snapshot raft-rs asks for to send a lagging follower is only its
//! metadata: the snapshot-sender thread reads the data (the v2 store from
//! the snapshot file, the v3 backend from redb) and streams it, so the
//! Raft thread never reads a snapshot from disk
//! (`crate::snapshot_stream`).

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

#[derive(Default)]
pub struct RaftLog {
    hard_state: HardState,
    conf_state: ConfState,
    /// The newest snapshot's metadata; its data is on disk. Entries it
    /// covers may still be kept (so a follower slightly behind gets
    /// entries, not a whole snapshot).
    snapshot: SnapshotMetadata,
    /// Index and term of the entry just before `entries[0]`: the point up
    /// to which the log is compacted.
    offset_index: u64,
    offset_term: u64,
    /// Entries after the offset, consecutive.
    entries: Vec<Entry>,
    /// raft-rs asked for a snapshot for a member the newest one's
    /// configuration does not name (added since): the Ready loop takes a
    /// fresh one (that member would refuse this one).
    fresh_snapshot_wanted: std::cell::Cell<bool>,
}

impl RaftLog {
    pub fn new(conf_state: ConfState) -> Self {
        RaftLog {
            conf_state,
            ..Default::default()
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.index
    }

    fn first(&self) -> u64 {
        self.offset_index + 1
    }

    fn last(&self) -> u64 {
        self.offset_index + self.entries.len() as u64
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// raft's configuration at the start (the snapshot's, or the initial
    /// one), or after the last configuration change applied.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Whether a fresh snapshot is wanted (see `fresh_snapshot_wanted`);
    /// asking clears it.
    pub fn take_fresh_snapshot_wanted(&self) -> bool {
        self.fresh_snapshot_wanted.replace(false)
    }

    /// Records raft's configuration after a configuration change applied.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    /// Appends entries, replacing any conflicting suffix (a new leader
    /// overwrote uncommitted entries).
    pub fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else {
            return;
        };
        assert!(
            first.index >= self.first() && first.index <= self.last() + 1,
            "append at {} outside [{}, {}]",
            first.index,
            self.first(),
            self.last() + 1
        );
        let keep = (first.index - self.first()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
    }

    /// Installs a snapshot from the leader (or the newest snapshot file at
    /// start), whose file is saved already: everything up to its index is
    /// in it; later entries survive only if the log agrees with the
    /// snapshot at its index.
    pub fn apply_snapshot(&mut self, meta: SnapshotMetadata) {
        let (index, term) = (meta.index, meta.term);
        if self.term_of(index) == Some(term) {
            let keep_from = (index + 1 - self.first()) as usize;
            self.entries.drain(..keep_from.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.offset_index = index;
        self.offset_term = term;
        self.conf_state = meta.get_conf_state().clone();
        if self.hard_state.commit < index {
            self.hard_state.commit = index;
        }
        if self.hard_state.term < term {
            self.hard_state.term = term;
        }
        self.snapshot = meta;
    }

    /// Records a snapshot taken locally of state already in the log.
    pub fn set_snapshot(&mut self, meta: SnapshotMetadata) {
        self.snapshot = meta;
    }

    /// Takes out the entries before `index`, never past the newest
    /// snapshot (what is dropped must be recoverable from it), and returns
    /// them: freeing 100k entries is milliseconds the caller may spend on
    /// another thread.
    #[must_use = "the entries taken out are returned to be dropped"]
    pub fn compact_to(&mut self, index: u64) -> Vec<Entry> {
        let index = index.min(self.snapshot_index() + 1);
        if index <= self.first() {
            return Vec::new();
        }
        let term = self.term_of(index - 1).unwrap_or(self.offset_term);
        let drop = (index - self.first()) as usize;
        // The kept entries move to a new vector (a few thousand), not the
        // dropped ones.
        let kept = self.entries.split_off(drop.min(self.entries.len()));
        self.offset_index = index - 1;
        self.offset_term = term;
        std::mem::replace(&mut self.entries, kept)
    }

    pub fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.offset_index {
            return Some(self.offset_term);
        }
        if idx < self.first() || idx > self.last() {
            return None;
        }
        Some(self.entries[(idx - self.first()) as usize].term)
    }
}

impl Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let from = (low - self.first()) as usize;
        let to = (high - self.first()) as usize;
        let mut out = Vec::with_capacity(to - from);
        let mut size = 0u64;
        for e in &self.entries[from..to] {
            size += protobuf::Message::compute_size(e) as u64;
            // Always at least one entry, as raft-rs requires.
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.offset_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// The newest snapshot's metadata, without data: the snapshot sender
    /// reads and streams the data off the Raft thread.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() < request_index || self.snapshot_index() == 0 {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let cs = self.snapshot.get_conf_state();
        if !cs.voters.contains(&to) && !cs.learners.contains(&to) {
            // raft-rs refuses a snapshot whose configuration lacks it.
            self.fresh_snapshot_wanted.set(true);
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snap = Snapshot::default();
        snap.set_metadata(self.snapshot.clone());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn append_replaces_conflicting_suffix() {
        let mut log = RaftLog::default();
        log.append(&[ent(1, 1), ent(2, 1), ent(3, 1)]);
        log.append(&[ent(2, 2)]);
        assert_eq!(log.last_index().unwrap(), 2);
        assert_eq!(log.term(2).unwrap(), 2);
        assert_eq!(log.term(1).unwrap(), 1);
    }

    #[test]
    fn snapshot_compacts_and_answers_terms() {
        let mut log = RaftLog::default();
        log.append(&[ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
        log.set_snapshot(SnapshotMetadata {
            index: 3,
            term: 2,
            ..Default::default()
        });
        assert_eq!(
            log.first_index().unwrap(),
            1,
            "a local snapshot keeps entries"
        );
        let dropped = log.compact_to(100);
        let dropped: Vec<u64> = dropped.iter().map(|e| e.index).collect();
        assert_eq!(dropped, [1, 2, 3], "the entries taken out are returned");
        assert_eq!(
            log.first_index().unwrap(),
            4,
            "compaction stops at the snapshot"
        );
        assert_eq!(log.term(3).unwrap(), 2);
        assert!(log.term(2).is_err());
        assert!(log
            .entries(2, 4, None, GetEntriesContext::empty(false))
            .is_err());
        assert_eq!(log.snapshot_index(), 3);
    }

    #[test]
    fn a_snapshot_to_send_is_its_metadata_only() {
        let mut log = RaftLog::default();
        assert!(log.snapshot(0, 2).is_err(), "none yet");
        log.append(&[ent(1, 1), ent(2, 1), ent(3, 2)]);
        log.set_snapshot(SnapshotMetadata {
            index: 3,
            term: 2,
            conf_state: Some(ConfState {
                voters: vec![1, 2],
                learners: vec![4],
                ..Default::default()
            })
            .into(),
            ..Default::default()
        });
        let snap = log.snapshot(2, 2).unwrap();
        assert_eq!(snap.get_metadata().index, 3);
        assert!(snap.data.is_empty(), "the sender thread reads the data");
        assert!(log.snapshot(4, 2).is_err(), "not that new yet");
        assert!(log.snapshot(2, 4).is_ok(), "a learner gets it");
        // A member added since: that snapshot would be refused, so a
        // fresh one is wanted.
        assert!(!log.take_fresh_snapshot_wanted());
        assert!(log.snapshot(2, 5).is_err());
        assert!(log.take_fresh_snapshot_wanted());
        assert!(!log.take_fresh_snapshot_wanted(), "asking clears it");
    }

    #[test]
    fn leader_snapshot_replaces_the_log() {
        let mut log = RaftLog::default();
        log.append(&[ent(1, 1), ent(2, 1)]);
        log.apply_snapshot(SnapshotMetadata {
            index: 10,
            term: 3,
            ..Default::default()
        });
        assert_eq!(log.first_index().unwrap(), 11);
        assert_eq!(log.last_index().unwrap(), 10);
        assert_eq!(log.hard_state().commit, 10);
    }
}
