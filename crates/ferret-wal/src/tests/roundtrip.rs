//! Writing and reading back, rotation, release, and the rules `append`,
//! `mark_snapshot` and `release_before` enforce.

use std::fs;

use super::*;
use crate::segment::file_name;

#[test]
fn create_then_open_an_empty_wal() {
    let t = TestDir::new();
    assert!(!Wal::exists(&t.wal()), "no directory yet");
    let wal = Wal::create(&t.wal(), META).unwrap();
    assert!(Wal::exists(&t.wal()));
    assert_eq!(wal.segment_paths(), vec![t.wal().join(file_name(0, 1))]);
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    Model::default().assert_matches(&rec);
    assert!(!t.path.join("member/wal.tmp").exists());
}

#[test]
fn create_refuses_an_existing_wal_and_open_a_missing_one() {
    let t = TestDir::new();
    assert!(matches!(Wal::open(&t.wal()), Err(WalError::Io { .. })));
    fs::create_dir_all(t.wal()).unwrap();
    assert!(!Wal::exists(&t.wal()), "an empty directory is no WAL");
    assert!(matches!(Wal::open(&t.wal()), Err(WalError::NotFound(_))));
    fs::remove_dir(t.wal()).unwrap();
    drop(Wal::create(&t.wal(), META).unwrap());
    assert!(matches!(
        Wal::create(&t.wal(), META),
        Err(WalError::AlreadyExists(_))
    ));
}

#[test]
fn create_removes_the_leftover_of_an_interrupted_create() {
    let t = TestDir::new();
    let tmp = t.path.join("member/wal.tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join(file_name(0, 1)), b"half").unwrap();
    drop(Wal::create(&t.wal(), META).unwrap());
    assert!(!tmp.exists());
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.metadata, META);
}

#[test]
fn metadata_over_the_limit_is_refused() {
    let t = TestDir::new();
    let big = vec![0u8; crate::METADATA_MAX_BYTES + 1];
    assert!(matches!(
        Wal::create(&t.wal(), &big),
        Err(WalError::TooLarge { .. })
    ));
    assert!(!Wal::exists(&t.wal()));
}

#[test]
fn many_entries_in_batches_round_trip() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    let mut model = Model::default();
    for batch in 0..50u64 {
        let entries: Vec<_> = (batch * 40 + 1..=batch * 40 + 40)
            .map(|i| entry(i, 1))
            .collect();
        wal.append(&entries).unwrap();
        wal.set_hard_state(&hs(1, 1, batch * 40)).unwrap();
        wal.sync().unwrap();
        for e in entries {
            model.apply(&Op::Entry(e));
        }
        model.apply(&Op::Hard(hs(1, 1, batch * 40)));
    }
    assert_eq!(wal.last_index(), 2000);
    drop(wal);
    let (wal, rec) = Wal::open(&t.wal()).unwrap();
    model.assert_matches(&rec);
    assert_eq!(wal.last_index(), 2000);
}

#[test]
fn unsynced_records_are_not_recovered() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&[entry(1, 1)]).unwrap();
    wal.sync().unwrap();
    wal.append(&[entry(2, 1)]).unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.entries, vec![entry(1, 1)]);
}

#[test]
fn conflict_truncation_is_replayed() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&(1..=10).map(|i| entry(i, 1)).collect::<Vec<_>>())
        .unwrap();
    wal.sync().unwrap();
    // A new leader in term 2 overwrites from index 6 on.
    wal.append(&(6..=8).map(|i| entry(i, 2)).collect::<Vec<_>>())
        .unwrap();
    wal.sync().unwrap();
    // And a later one from 8 on, in the same batch as a new entry.
    wal.append(&[entry(8, 3), entry(9, 3)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_index(), 9);
    drop(wal);
    let (mut wal, rec) = Wal::open(&t.wal()).unwrap();
    let got: Vec<_> = rec.entries.iter().map(|e| (e.index, e.term)).collect();
    let mut want: Vec<_> = (1..=5).map(|i| (i, 1)).collect();
    want.extend([(6, 2), (7, 2), (8, 3), (9, 3)]);
    assert_eq!(got, want);
    // The reopened writer knows where the log ends.
    assert!(matches!(
        wal.append(&[entry(11, 3)]),
        Err(WalError::InvalidInput(_))
    ));
    wal.append(&[entry(10, 3)]).unwrap();
}

#[test]
fn append_refuses_gaps_and_entries_below_the_snapshot_and_buffers_nothing() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    assert!(matches!(
        wal.append(&[entry(2, 1)]),
        Err(WalError::InvalidInput(_))
    ));
    // A good entry then a gap in one call: the whole call is refused.
    assert!(matches!(
        wal.append(&[entry(1, 1), entry(3, 1)]),
        Err(WalError::InvalidInput(_))
    ));
    wal.append(&[entry(1, 1), entry(2, 1), entry(3, 1)])
        .unwrap();
    wal.mark_snapshot(2, 1).unwrap();
    assert!(matches!(
        wal.append(&[entry(2, 2)]),
        Err(WalError::InvalidInput(_))
    ));
    assert!(matches!(
        wal.mark_snapshot(1, 1),
        Err(WalError::InvalidInput(_))
    ));
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.snapshot, Some((2, 1)));
    assert_eq!(rec.entries, vec![entry(3, 1)]);
}

#[test]
fn oversized_entry_is_refused() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    let mut e = entry(1, 1);
    e.data = vec![0; crate::RECORD_PAYLOAD_MAX_BYTES];
    assert!(matches!(wal.append(&[e]), Err(WalError::TooLarge { .. })));
    wal.append(&[entry(1, 1)]).unwrap();
}

#[test]
fn hard_state_and_snapshot_marker_are_recovered() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&(1..=10).map(|i| entry(i, 2)).collect::<Vec<_>>())
        .unwrap();
    wal.set_hard_state(&hs(2, 3, 4)).unwrap();
    wal.mark_snapshot(4, 2).unwrap();
    wal.set_hard_state(&hs(2, 3, 9)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.hard_state, Some(hs(2, 3, 9)));
    assert_eq!(rec.snapshot, Some((4, 2)));
    assert_eq!(rec.entries.first().map(|e| e.index), Some(5));
    assert_eq!(rec.entries.len(), 6);
}

#[test]
fn snapshot_past_the_log_then_new_entries() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&(1..=5).map(|i| entry(i, 1)).collect::<Vec<_>>())
        .unwrap();
    wal.mark_snapshot(100, 3).unwrap();
    assert_eq!(wal.last_index(), 100);
    wal.append(&[entry(101, 3)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.snapshot, Some((100, 3)));
    assert_eq!(rec.entries, vec![entry(101, 3)]);
}

#[test]
fn rotation_spreads_the_log_over_named_segments() {
    let t = TestDir::new();
    let mut wal = Wal::create_with(&t.wal(), META, options(2048)).unwrap();
    let mut model = Model::default();
    for i in 1..=400u64 {
        let e = entry(i, 1 + i / 100);
        wal.append(std::slice::from_ref(&e)).unwrap();
        model.apply(&Op::Entry(e));
        if i % 5 == 0 {
            wal.set_hard_state(&hs(1 + i / 100, 1, i)).unwrap();
            model.apply(&Op::Hard(hs(1 + i / 100, 1, i)));
            wal.sync().unwrap();
        }
    }
    let paths = wal.segment_paths();
    assert!(paths.len() >= 8, "{} segments", paths.len());
    assert_eq!(paths, segments(&t.wal()));
    // Names: consecutive seq; first index one past the log at the cut, which
    // here is always a multiple of 5 plus one.
    for (seq, p) in paths.iter().enumerate() {
        let name = p.file_name().unwrap().to_str().unwrap();
        let (s, first) = crate::segment::parse_name(name).unwrap();
        assert_eq!(s, seq as u64);
        assert_eq!((first - 1) % 5, 0, "{name}");
        assert!(
            file_len(p) <= 2048 + 5 * 200,
            "{name} is {} bytes",
            file_len(p)
        );
    }
    drop(wal);
    let (mut wal, rec) = Wal::open_with(&t.wal(), options(2048)).unwrap();
    model.assert_matches(&rec);
    // Appending continues in the tail, and the next open sees it all.
    wal.append(&[entry(401, 5)]).unwrap();
    wal.sync().unwrap();
    model.apply(&Op::Entry(entry(401, 5)));
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    model.assert_matches(&rec);
}

#[test]
fn conflict_across_a_segment_boundary() {
    let t = TestDir::new();
    let mut wal = Wal::create_with(&t.wal(), META, options(256)).unwrap();
    for i in 1..=30 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    assert!(wal.segment_paths().len() > 3);
    // Rewrite from 3: the new entries are in the tail, the old ones in the
    // first segment.
    wal.append(&[entry(3, 2), entry(4, 2)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    let got: Vec<_> = rec.entries.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(got, vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
}

#[test]
fn release_before_deletes_exactly_the_segments_below_the_snapshot() {
    let t = TestDir::new();
    let mut wal = Wal::create_with(&t.wal(), META, options(1024)).unwrap();
    let mut model = Model::default();
    for i in 1..=200u64 {
        let op = Op::Entry(entry(i, 1));
        op.buffer(&mut wal).unwrap();
        model.apply(&op);
        if i % 4 == 0 {
            wal.set_hard_state(&hs(1, 1, i)).unwrap();
            model.apply(&Op::Hard(hs(1, 1, i)));
            wal.sync().unwrap();
        }
    }
    let before: Vec<(u64, u64)> = wal
        .segment_paths()
        .iter()
        .map(|p| crate::segment::parse_name(p.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    assert!(before.len() > 5);

    // Releasing past the durable snapshot marker is refused...
    assert!(matches!(
        wal.release_before(2),
        Err(WalError::InvalidInput(_))
    ));
    // ...also while the marker is only buffered.
    wal.mark_snapshot(120, 1).unwrap();
    assert!(matches!(
        wal.release_before(121),
        Err(WalError::InvalidInput(_))
    ));
    wal.sync().unwrap();
    model.apply(&Op::Snapshot(120, 1));
    assert!(matches!(
        wal.release_before(122),
        Err(WalError::InvalidInput(_))
    ));
    wal.release_before(121).unwrap();

    // Segment k goes iff segment k+1 starts at or below 121.
    let keep_from = (0..before.len() - 1)
        .find(|&k| before[k + 1].1 > 121)
        .unwrap_or(before.len() - 1);
    let after = segments(&t.wal());
    assert_eq!(after.len(), before.len() - keep_from);
    assert_eq!(after, wal.segment_paths());
    assert_eq!(
        after[0].file_name().unwrap().to_str().unwrap(),
        file_name(before[keep_from].0, before[keep_from].1)
    );
    assert!(
        before[keep_from].1 <= 121,
        "kept segment {:?} must reach back to 121",
        before[keep_from]
    );

    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    model.assert_matches(&rec);
    assert_eq!(rec.entries.first().unwrap().index, 121);
}

#[test]
fn release_of_everything_but_the_tail_keeps_metadata_hard_state_and_marker() {
    let t = TestDir::new();
    let mut wal = Wal::create_with(&t.wal(), META, options(600)).unwrap();
    for i in 1..=50 {
        wal.append(&[entry(i, 4)]).unwrap();
        wal.sync().unwrap();
    }
    wal.set_hard_state(&hs(4, 2, 50)).unwrap();
    wal.mark_snapshot(50, 4).unwrap();
    wal.sync().unwrap();
    // Force a rotation so the marker is in a preamble, then release all.
    while wal.segment_paths().len() < 2 || file_len(wal.segment_paths().last().unwrap()) > 200 {
        wal.set_hard_state(&hs(4, 2, 50)).unwrap();
        wal.sync().unwrap();
    }
    wal.release_before(51).unwrap();
    assert_eq!(segments(&t.wal()).len(), 1);
    drop(wal);
    let (mut wal, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.metadata, META);
    assert_eq!(rec.hard_state, Some(hs(4, 2, 50)));
    assert_eq!(rec.snapshot, Some((50, 4)));
    assert!(rec.entries.is_empty());
    wal.append(&[entry(51, 4)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.entries, vec![entry(51, 4)]);
}

#[test]
fn release_keeps_segments_whose_entries_the_snapshot_does_not_cover() {
    let t = TestDir::new();
    let mut wal = Wal::create_with(&t.wal(), META, options(400)).unwrap();
    for i in 1..=40 {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    let n = wal.segment_paths().len();
    wal.mark_snapshot(1, 1).unwrap();
    wal.sync().unwrap();
    // Segment 1 starts above 2, so segment 0 still holds index 2.
    wal.release_before(2).unwrap();
    assert_eq!(wal.segment_paths().len(), n);
}
