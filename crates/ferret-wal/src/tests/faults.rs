//! Injected I/O failures: after a failed write, sync or rotation the WAL
//! refuses everything, and reopening recovers every record synced before.

use super::*;
use crate::{FailNth, FaultInjector, IoOp};
use std::sync::atomic::{AtomicU64, Ordering};

/// Fails the `n`-th rename of a `.wal` file (a release's; a rotation
/// renames a `.tmp` file), once.
#[derive(Debug)]
struct FailNthSegmentRename(AtomicU64);

impl FailNthSegmentRename {
    fn new(n: u64) -> Arc<Self> {
        Arc::new(FailNthSegmentRename(AtomicU64::new(n)))
    }
}

impl FaultInjector for FailNthSegmentRename {
    fn check(&self, op: IoOp, path: &Path) -> std::io::Result<()> {
        if op != IoOp::Rename || path.extension().is_none_or(|x| x != "wal") {
            return Ok(());
        }
        match self.0.fetch_sub(1, Ordering::SeqCst) {
            0 => Err(std::io::Error::other(
                "injected failure of a segment rename",
            )),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failed_sync_poisons_the_wal() {
    let t = TestDir::new();
    // fdatasync #0 is create's; #1 and #2 succeed; #3 fails.
    let faults = FailNth::new(IoOp::SyncData, 3);
    let mut wal = Wal::create_with(&t.wal(), META, options_with(u64::MAX, faults.clone())).unwrap();
    let mut model = Model::default();
    for i in 1..=2 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
        model.apply(&Op::Entry(entry(i, 1)));
    }
    let synced = model.clone();
    wal.append(&[entry(3, 1)]).unwrap();
    model.apply(&Op::Entry(entry(3, 1)));
    assert!(matches!(
        wal.sync(),
        Err(WalError::Io {
            op: "fdatasync",
            ..
        })
    ));
    assert!(faults.fired());
    // The disk works again, but the WAL must not: what reached it is unknown.
    assert!(matches!(
        wal.append(&[entry(4, 1)]),
        Err(WalError::Poisoned(_))
    ));
    assert!(matches!(
        wal.set_hard_state(&hs(1, 1, 1)),
        Err(WalError::Poisoned(_))
    ));
    assert!(matches!(
        wal.mark_snapshot(1, 1),
        Err(WalError::Poisoned(_))
    ));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned(_))));
    assert!(matches!(wal.release_before(1), Err(WalError::Poisoned(_))));
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    // The failed batch may or may not have reached the disk; the synced ones did.
    assert!(synced.same_as(&rec) || model.same_as(&rec), "{rec:?}");
}

#[test]
fn a_failed_write_leaves_a_torn_tail_that_open_repairs() {
    let t = TestDir::new();
    // write #0 is create's preamble; #1..=#3 succeed; #4 writes half and fails.
    let faults = FailNth::new(IoOp::Write, 4);
    let mut wal = Wal::create_with(&t.wal(), META, options_with(u64::MAX, faults)).unwrap();
    let mut model = Model::default();
    for i in 1..=3 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
        model.apply(&Op::Entry(entry(i, 1)));
    }
    wal.append(&[entry(4, 1), entry(5, 1)]).unwrap();
    assert!(matches!(wal.sync(), Err(WalError::Io { op: "write", .. })));
    assert!(matches!(
        wal.append(&[entry(4, 1)]),
        Err(WalError::Poisoned(_))
    ));
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    // Half of two records: the first one whole, the second torn.
    model.apply(&Op::Entry(entry(4, 1)));
    let half = (Op::Entry(entry(4, 1)).bytes() + Op::Entry(entry(5, 1)).bytes()) / 2;
    assert!(half >= Op::Entry(entry(4, 1)).bytes());
    model.assert_matches(&rec);
}

#[test]
fn a_failed_rotation_poisons_and_leaves_nothing_behind() {
    let t = TestDir::new();
    // Renames #0 and #1 are create's (segment, then directory); #2 is the
    // first rotation's.
    let faults = FailNth::new(IoOp::Rename, 2);
    let mut wal = Wal::create_with(&t.wal(), META, options_with(300, faults)).unwrap();
    let mut model = Model::default();
    let mut failed = false;
    for i in 1..=20 {
        wal.append(&[entry(i, 1)]).unwrap();
        let r = wal.sync();
        // A rotation runs after the batch is durable: the batch counts.
        model.apply(&Op::Entry(entry(i, 1)));
        if r.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert!(matches!(wal.sync(), Err(WalError::Poisoned(_))));
    drop(wal);
    assert!(std::fs::read_dir(t.wal()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .ends_with(".tmp")));
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    model.assert_matches(&rec);
    assert!(!std::fs::read_dir(t.wal()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .ends_with(".tmp")));
}

#[test]
fn a_failed_create_can_be_retried() {
    for op in [
        IoOp::Create,
        IoOp::Write,
        IoOp::SyncData,
        IoOp::SyncDir,
        IoOp::Rename,
        IoOp::CreateDir,
    ] {
        for n in 0..4 {
            let t = TestDir::new();
            let faults = FailNth::new(op, n);
            let r = Wal::create_with(&t.wal(), META, options_with(u64::MAX, faults.clone()));
            assert_eq!(r.is_err(), faults.fired(), "{op:?} #{n}");
            if r.is_err() {
                // A failed create leaves no WAL, or (if only the final
                // directory fsync failed) a complete one.
                if Wal::exists(&t.wal()) {
                    Wal::open(&t.wal()).unwrap();
                } else {
                    drop(Wal::create(&t.wal(), META).unwrap());
                }
            }
            let (_, rec) = Wal::open(&t.wal()).unwrap();
            assert_eq!(rec.metadata, META);
        }
    }
}

#[test]
fn a_failed_repair_is_reported_and_the_next_open_repairs() {
    let t = TestDir::new();
    let (models, _) = build(
        &t.wal(),
        &[Op::Entry(entry(1, 1)), Op::Entry(entry(2, 1))],
        u64::MAX,
    );
    let seg = segments(&t.wal())[0].clone();
    let full = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &full[..full.len() - 3]).unwrap();
    let faults = FailNth::new(IoOp::Truncate, 0);
    assert!(matches!(
        Wal::open_with(&t.wal(), options_with(u64::MAX, faults)),
        Err(WalError::Io { op: "truncate", .. })
    ));
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models[1].assert_matches(&rec);
}

/// For each kind of call and each position, fail that call in a workload
/// with rotations, stop at the first error as the driver must, reopen, and
/// check that recovery holds every record synced before the failure and
/// nothing that was never buffered (redb-style crash testing with
/// deterministic fault points).
#[test]
fn every_failure_point_keeps_every_synced_record() {
    let mut rng = Rng::new(7);
    let ops = workload(&mut rng, 40);
    let mut runs = 0;
    for op_kind in [
        IoOp::Write,
        IoOp::SyncData,
        IoOp::SyncDir,
        IoOp::Rename,
        IoOp::Create,
    ] {
        for n in 0.. {
            let t = TestDir::new();
            let faults = FailNth::new(op_kind, n);
            let opts = options_with(350, faults.clone());
            let Ok(mut wal) = Wal::create_with(&t.wal(), META, opts) else {
                continue;
            };
            // models[k]: after k ops; synced: how many ops a sync confirmed.
            let mut models = vec![Model::default()];
            let mut synced = 0;
            let mut failed = false;
            let mut i = 0;
            while i < ops.len() {
                let batch = (1 + (i % 3)).min(ops.len() - i);
                for op in &ops[i..i + batch] {
                    op.buffer(&mut wal).unwrap();
                    let mut m = models.last().unwrap().clone();
                    m.apply(op);
                    models.push(m);
                }
                i += batch;
                match wal.sync() {
                    Ok(()) => synced = i,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            drop(wal);
            if !failed {
                assert!(!faults.fired());
                break; // n is past the last call of this kind
            }
            runs += 1;
            let (_, rec) = Wal::open(&t.wal()).unwrap_or_else(|e| panic!("{op_kind:?} #{n}: {e}"));
            let ok = (synced..models.len()).any(|k| models[k].same_as(&rec));
            assert!(
                ok,
                "{op_kind:?} #{n}: recovered {} entries; synced {synced} ops",
                rec.entries.len()
            );
            assert!(n < 1000, "runaway");
        }
    }
    assert!(runs > 50, "only {runs} failure points exercised");
}

#[test]
fn a_failed_release_can_be_retried() {
    let t = TestDir::new();
    // The release's rename #0 succeeds, #1 fails once.
    let faults = FailNthSegmentRename::new(1);
    let mut wal = synced_with_snapshot(&t, faults, 60);
    let before = wal.segment_paths().len();
    assert!(before > 3);
    assert!(matches!(
        wal.release_before(61),
        Err(WalError::Io { op: "rename", .. })
    ));
    assert_eq!(
        wal.segment_paths(),
        segments(&t.wal()),
        "the list follows the disk"
    );
    assert_eq!(wal.segment_paths().len(), before - 1);
    wal.release_before(61).unwrap();
    assert_eq!(segments(&t.wal()).len(), 1);
    assert!(
        fs::read_dir(t.wal()).unwrap().all(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "wal")),
        "a release leaves nothing behind"
    );
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.snapshot, Some((60, 1)));
    assert!(rec.entries.is_empty());
}

#[test]
fn what_a_detached_release_fails_to_delete_goes_before_the_next_one() {
    let t = TestDir::new();
    // The release's rename #0 succeeds, #1 fails once.
    let faults = FailNthSegmentRename::new(1);
    let mut wal = synced_with_snapshot(&t, faults, 30);
    let first = wal.detach_before(31).unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        wal.segment_paths(),
        segments(&t.wal())[segments(&t.wal()).len() - 1..]
    );
    let Err((e, left)) = first.remove() else {
        panic!("the second removal was to fail")
    };
    assert!(matches!(e, WalError::Io { op: "rename", .. }));
    assert!(!left.is_empty());
    for i in 31..=60 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    wal.mark_snapshot(60, 1).unwrap();
    wal.sync().unwrap();
    // The leftovers first, then the newer release: no gap at any point.
    left.then(wal.detach_before(61).unwrap()).remove().unwrap();
    assert_eq!(wal.segment_paths(), segments(&t.wal()));
    assert_eq!(segments(&t.wal()).len(), 1);
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.snapshot, Some((60, 1)));
    assert!(rec.entries.is_empty());
}

#[test]
fn a_release_whose_unlink_fails_still_releases_and_open_deletes_the_leftover() {
    let t = TestDir::new();
    let faults = FailNth::new(IoOp::Remove, 0);
    let mut wal = synced_with_snapshot(&t, faults.clone(), 30);
    // The first segment's unlink fails after it left the log: the release
    // goes on, and the file stays under its `.tmp` name.
    wal.release_before(31).unwrap();
    assert!(faults.fired());
    assert_eq!(wal.segment_paths(), segments(&t.wal()));
    let leftovers: Vec<PathBuf> = fs::read_dir(t.wal())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.snapshot, Some((30, 1)));
    assert!(rec.entries.is_empty());
    assert!(!leftovers[0].exists(), "open deletes the leftover");
}

/// A WAL of 300-byte segments holding entries 1..=`last`, synced, with a
/// snapshot marker at `last`: every segment but the tail is releasable.
fn synced_with_snapshot(t: &TestDir, faults: Arc<dyn FaultInjector>, last: u64) -> Wal {
    let mut wal = Wal::create_with(&t.wal(), META, options_with(300, faults)).unwrap();
    for i in 1..=last {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    wal.mark_snapshot(last, 1).unwrap();
    wal.sync().unwrap();
    wal
}

#[test]
fn unsafe_no_fsync_skips_the_fdatasync_of_a_sync() {
    let t = TestDir::new();
    // fdatasync #0 is create's; every later one would fail.
    let faults = FailNth::new(IoOp::SyncData, 1);
    let mut wal = Wal::create_with(&t.wal(), META, options_with(u64::MAX, faults.clone())).unwrap();
    wal.set_unsafe_no_fsync();
    for i in 1..=3 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    assert!(!faults.fired(), "a sync called fdatasync");
    drop(wal);
    // The records were written all the same.
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.entries.len(), 3);
}
