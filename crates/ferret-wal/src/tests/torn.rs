//! Torn tails: what a crash in the middle of the last write leaves. Each is
//! repaired by truncation, and recovery returns exactly the records that
//! were whole before the damage.

use std::fs;

use super::*;
use crate::segment::file_name;

/// Writes `ops` one sync each into a single segment; returns the segment,
/// its bytes, the model after each op and the file length after each op.
fn single_segment(t: &TestDir, ops: &[Op]) -> (PathBuf, Vec<u8>, Vec<Model>, Vec<u64>) {
    let (models, lens) = build(&t.wal(), ops, u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let full = fs::read(&seg).unwrap();
    assert_eq!(full.len() as u64, *lens.last().unwrap());
    (seg, full, models, lens)
}

fn some_ops() -> Vec<Op> {
    let mut ops: Vec<Op> = (1..=6).map(|i| Op::Entry(entry(i, 1))).collect();
    ops.push(Op::Hard(hs(1, 1, 4)));
    ops.push(Op::Entry(entry(7, 1)));
    ops.push(Op::Snapshot(3, 1));
    ops.push(Op::Entry(entry(8, 1)));
    ops
}

#[test]
fn a_cut_at_every_byte_of_the_last_records_recovers_the_whole_ones() {
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, full, models, lens) = single_segment(&t, &ops);
    // Every offset from the start of the fifth-last record to the end.
    let from = lens[lens.len() - 5];
    for cut in from..=full.len() as u64 {
        fs::write(&seg, &full[..cut as usize]).unwrap();
        let k = lens.iter().rposition(|&l| l <= cut).unwrap();
        let (wal, rec) = Wal::open(&t.wal()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        models[k].assert_matches(&rec);
        assert_eq!(
            file_len(&seg),
            lens[k],
            "cut at {cut}: the torn bytes are truncated"
        );
        assert_eq!(
            wal.last_index(),
            models[k]
                .entries
                .last()
                .map_or(0, |e| e.index)
                .max(models[k].snapshot.map_or(0, |s| s.0))
        );
    }
}

#[test]
fn a_cut_inside_a_batch_keeps_the_records_before_it() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&[entry(1, 1)]).unwrap();
    wal.sync().unwrap();
    let seg = wal.segment_paths()[0].clone();
    let synced = file_len(&seg);
    // One group commit of several records.
    let ops: Vec<Op> = vec![
        Op::Entry(entry(2, 1)),
        Op::Entry(entry(3, 1)),
        Op::Hard(hs(1, 1, 3)),
        Op::Entry(entry(4, 2)),
    ];
    for op in &ops {
        op.buffer(&mut wal).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let full = fs::read(&seg).unwrap();
    let mut bounds = vec![synced];
    let mut models = vec![{
        let mut m = Model::default();
        m.apply(&Op::Entry(entry(1, 1)));
        m
    }];
    for op in &ops {
        bounds.push(bounds.last().unwrap() + op.bytes());
        let mut m = models.last().unwrap().clone();
        m.apply(op);
        models.push(m);
    }
    assert_eq!(*bounds.last().unwrap(), full.len() as u64);
    for cut in synced..=full.len() as u64 {
        fs::write(&seg, &full[..cut as usize]).unwrap();
        let k = bounds.iter().rposition(|&b| b <= cut).unwrap();
        let (_, rec) = Wal::open(&t.wal()).unwrap();
        models[k].assert_matches(&rec);
    }
}

#[test]
fn trailing_zeros_are_truncated() {
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, mut full, models, lens) = single_segment(&t, &ops);
    full.extend_from_slice(&[0u8; 4096]);
    fs::write(&seg, &full).unwrap();
    let (mut wal, rec) = Wal::open(&t.wal()).unwrap();
    models.last().unwrap().assert_matches(&rec);
    assert_eq!(file_len(&seg), *lens.last().unwrap());
    // The repaired WAL takes appends where the valid data ended.
    wal.append(&[entry(9, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.entries.last(), Some(&entry(9, 1)));
}

#[test]
fn zeros_replacing_the_last_record_are_truncated() {
    // A filesystem that extended the file but never wrote the data.
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, mut full, models, lens) = single_segment(&t, &ops);
    let start = lens[lens.len() - 2] as usize;
    full[start..].fill(0);
    fs::write(&seg, &full).unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models[models.len() - 2].assert_matches(&rec);
}

#[test]
fn a_bad_checksum_on_the_last_record_is_truncated() {
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, mut full, models, lens) = single_segment(&t, &ops);
    let start = lens[lens.len() - 2] as usize;
    full[start + 12] ^= 0x40; // inside the payload
    fs::write(&seg, &full).unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models[models.len() - 2].assert_matches(&rec);
    assert_eq!(file_len(&seg), start as u64);
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, mut full, models, _) = single_segment(&t, &ops);
    full.extend_from_slice(&[0xff; 100]);
    full.extend_from_slice(&[0x03; 9]);
    fs::write(&seg, &full).unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models.last().unwrap().assert_matches(&rec);
}

#[test]
fn an_absurd_length_in_the_last_record_is_a_torn_tail() {
    let t = TestDir::new();
    let ops = some_ops();
    let (seg, mut full, models, lens) = single_segment(&t, &ops);
    let start = lens[lens.len() - 2] as usize;
    full[start..start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&seg, &full).unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models[models.len() - 2].assert_matches(&rec);
}

#[test]
fn an_empty_last_segment_is_removed() {
    let t = TestDir::new();
    let (models, _) = build(&t.wal(), &some_ops(), 300);
    let segs = segments(&t.wal());
    assert!(segs.len() >= 2);
    let last =
        crate::segment::parse_name(segs.last().unwrap().file_name().unwrap().to_str().unwrap())
            .unwrap();
    // A crash right after a rotation's rename, on a filesystem that did not
    // keep the data.
    let empty = t.wal().join(file_name(last.0 + 1, 99));
    fs::write(&empty, b"").unwrap();
    let (mut wal, rec) = Wal::open(&t.wal()).unwrap();
    models.last().unwrap().assert_matches(&rec);
    assert!(!empty.exists());
    assert_eq!(segments(&t.wal()), segs);
    // The previous segment is the tail again.
    wal.append(&[entry(9, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    assert_eq!(rec.entries.last(), Some(&entry(9, 1)));
}

#[test]
fn an_all_zero_last_segment_is_removed() {
    let t = TestDir::new();
    let (models, _) = build(&t.wal(), &some_ops(), 300);
    let segs = segments(&t.wal());
    let last =
        crate::segment::parse_name(segs.last().unwrap().file_name().unwrap().to_str().unwrap())
            .unwrap();
    let zeroed = t.wal().join(file_name(last.0 + 1, 99));
    fs::write(&zeroed, vec![0u8; 4096]).unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models.last().unwrap().assert_matches(&rec);
    assert!(!zeroed.exists());
}

#[test]
fn an_empty_only_segment_is_corrupt() {
    let t = TestDir::new();
    drop(Wal::create(&t.wal(), META).unwrap());
    let seg = t.wal().join(file_name(0, 1));
    fs::write(&seg, b"").unwrap();
    let (file, offset, _) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!((file, offset), (seg, 0));
}

#[test]
fn a_leftover_tmp_segment_is_removed() {
    let t = TestDir::new();
    let (models, _) = build(&t.wal(), &some_ops(), u64::MAX);
    let tmp = t.wal().join(format!("{}.tmp", file_name(1, 9)));
    fs::write(&tmp, b"half a preamble").unwrap();
    let (_, rec) = Wal::open(&t.wal()).unwrap();
    models.last().unwrap().assert_matches(&rec);
    assert!(!tmp.exists());
}
