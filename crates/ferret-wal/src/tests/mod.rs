//! Tests of the WAL and the snapshot files against an independent model of
//! what recovery must return. Helpers here; one module per concern.

mod corrupt;
mod etcd;
mod faults;
mod fuzz;
mod relocate;
mod roundtrip;
mod snapshots;
mod torn;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{
    EntryRecord, FaultInjector, HardState, NoFaults, Recovered, Wal, WalError, WalOptions,
};

pub(crate) const META: &[u8] = b"member=1 cluster=7";

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "ferret-wal-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }

    pub fn wal(&self) -> PathBuf {
        crate::wal_dir(&self.path)
    }

    pub fn snap(&self) -> PathBuf {
        crate::snap_dir(&self.path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub(crate) fn options(segment_size_max_bytes: u64) -> WalOptions {
    WalOptions {
        segment_size_max_bytes,
        faults: Arc::new(NoFaults),
    }
}

pub(crate) fn options_with(
    segment_size_max_bytes: u64,
    faults: Arc<dyn FaultInjector>,
) -> WalOptions {
    WalOptions {
        segment_size_max_bytes,
        faults,
    }
}

pub(crate) fn entry(index: u64, term: u64) -> EntryRecord {
    EntryRecord {
        index,
        term,
        kind: (index % 3) as u8,
        // Varying lengths, so record boundaries are not periodic.
        data: format!("value-{index}-{term}-{}", "x".repeat((index % 13) as usize)).into_bytes(),
    }
}

pub(crate) fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

/// One record's worth of work.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Entry(EntryRecord),
    Hard(HardState),
    Snapshot(u64, u64),
}

impl Op {
    /// Encoded size on disk (frame header + payload), from the documented
    /// format, not from the encoder.
    pub fn bytes(&self) -> u64 {
        9 + match self {
            Op::Entry(e) => 17 + e.data.len() as u64,
            Op::Hard(_) => 24,
            Op::Snapshot(..) => 16,
        }
    }

    pub fn buffer(&self, wal: &mut Wal) -> Result<(), WalError> {
        match self {
            Op::Entry(e) => wal.append(std::slice::from_ref(e)),
            Op::Hard(h) => wal.set_hard_state(h),
            Op::Snapshot(i, t) => wal.mark_snapshot(*i, *t),
        }
    }
}

/// What recovery must return, computed independently of the crate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Model {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<(u64, u64)>,
    pub entries: Vec<EntryRecord>,
}

impl Model {
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Entry(e) => {
                self.entries.retain(|x| x.index < e.index);
                self.entries.push(e.clone());
            }
            Op::Hard(h) => self.hard_state = Some(*h),
            Op::Snapshot(i, t) => {
                self.entries.retain(|x| x.index > *i);
                self.snapshot = Some((*i, *t));
            }
        }
    }

    pub fn assert_matches(&self, r: &Recovered) {
        assert_eq!(r.metadata, META);
        assert_eq!(r.hard_state, self.hard_state, "hard state");
        assert_eq!(r.snapshot, self.snapshot, "snapshot marker");
        let got: Vec<_> = r.entries.iter().map(|e| (e.index, e.term)).collect();
        let want: Vec<_> = self.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(got, want, "entries");
        assert_eq!(r.entries, self.entries, "entry contents");
    }

    pub fn same_as(&self, r: &Recovered) -> bool {
        r.metadata == META
            && r.hard_state == self.hard_state
            && r.snapshot == self.snapshot
            && r.entries == self.entries
    }
}

/// A deterministic generator (xorshift64*), so every failure reproduces.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A workload that follows the log's rules: mostly new entries, some
/// conflict rewrites, hard states and snapshot markers.
pub(crate) fn workload(rng: &mut Rng, len: usize) -> Vec<Op> {
    let (mut last, mut term, mut snap) = (0u64, 1u64, 0u64);
    let mut ops = Vec::with_capacity(len);
    while ops.len() < len {
        match rng.below(10) {
            0 => ops.push(Op::Hard(hs(term, 1, snap.max(last / 2)))),
            1 if last > snap + 3 => {
                // A new leader overwrites an uncommitted suffix.
                term += 1;
                last -= rng.below(3) + 1;
                last = last.max(snap + 1);
                let mut e = entry(last, term);
                e.data.truncate(rng.below(e.data.len() as u64 + 1) as usize);
                ops.push(Op::Entry(e));
            }
            2 if last > snap => {
                snap += rng.below(last - snap) + 1;
                ops.push(Op::Snapshot(snap, term));
            }
            _ => {
                last += 1;
                ops.push(Op::Entry(entry(last, term)));
            }
        }
    }
    ops
}

/// Creates a WAL and writes `ops`, one sync per op. Returns the model state
/// and the tail file's length after each op (index 0: before any).
pub(crate) fn build(dir: &Path, ops: &[Op], segment_size_max_bytes: u64) -> (Vec<Model>, Vec<u64>) {
    let mut wal = Wal::create_with(dir, META, options(segment_size_max_bytes)).unwrap();
    let mut models = vec![Model::default()];
    let mut lens = vec![file_len(wal.segment_paths().last().unwrap())];
    for op in ops {
        op.buffer(&mut wal).unwrap();
        wal.sync().unwrap();
        let mut m = models.last().unwrap().clone();
        m.apply(op);
        models.push(m);
        lens.push(file_len(wal.segment_paths().last().unwrap()));
    }
    (models, lens)
}

pub(crate) fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

pub(crate) fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

pub(crate) fn expect_corrupt(r: Result<(Wal, Recovered), WalError>) -> (PathBuf, u64, String) {
    match r {
        Err(WalError::Corrupt {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, rec)) => panic!(
            "expected Corrupt, got a recovery of {} entries",
            rec.entries.len()
        ),
    }
}
