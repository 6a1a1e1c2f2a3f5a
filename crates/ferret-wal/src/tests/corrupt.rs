//! Damage that a crash cannot explain: `open` stops with `Corrupt`, naming
//! the file and the offset, and repairs nothing.

use std::fs;

use super::*;
use crate::segment::file_name;

fn ops(n: u64) -> Vec<Op> {
    (1..=n).map(|i| Op::Entry(entry(i, 1))).collect()
}

#[test]
fn a_flipped_bit_in_a_middle_record() {
    let t = TestDir::new();
    let (_, lens) = build(&t.wal(), &ops(10), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let mut full = fs::read(&seg).unwrap();
    let record_start = lens[4] as usize;
    full[record_start + 20] ^= 0x01;
    fs::write(&seg, &full).unwrap();
    let (file, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(file, seg);
    assert_eq!(offset, record_start as u64);
    assert!(reason.contains("checksum"), "{reason}");
    assert!(
        reason.contains(&format!("valid record follows at byte {}", lens[5])),
        "{reason}"
    );
    // Nothing was repaired.
    assert_eq!(fs::read(&seg).unwrap(), full);
}

#[test]
fn a_flipped_bit_in_a_middle_length_field() {
    let t = TestDir::new();
    let (_, lens) = build(&t.wal(), &ops(10), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let full = fs::read(&seg).unwrap();
    let record_start = lens[6] as usize;
    for bit in 0..32 {
        let mut damaged = full.clone();
        damaged[record_start + bit / 8] ^= 1 << (bit % 8);
        fs::write(&seg, &damaged).unwrap();
        let (_, offset, _) = expect_corrupt(Wal::open(&t.wal()));
        assert_eq!(offset, record_start as u64, "bit {bit}");
    }
}

#[test]
fn a_bad_checksum_followed_by_valid_records_in_the_last_segment() {
    let t = TestDir::new();
    let (_, lens) = build(&t.wal(), &ops(5), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let mut full = fs::read(&seg).unwrap();
    let record_start = lens[3] as usize;
    full[record_start + 4] ^= 0xff; // the stored CRC itself
    fs::write(&seg, &full).unwrap();
    let (_, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(offset, record_start as u64);
    assert!(reason.contains("valid record follows"), "{reason}");
}

#[test]
fn zeros_in_the_middle_are_corruption() {
    let t = TestDir::new();
    let (_, lens) = build(&t.wal(), &ops(6), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let mut full = fs::read(&seg).unwrap();
    full[lens[2] as usize..lens[4] as usize].fill(0);
    fs::write(&seg, &full).unwrap();
    let (_, offset, _) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(offset, lens[2]);
}

#[test]
fn a_bad_segment_header() {
    let t = TestDir::new();
    build(&t.wal(), &ops(3), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let full = fs::read(&seg).unwrap();
    // The magic, the version, the seq: each is caught at offset 0.
    for at in [9, 17, 21] {
        let mut damaged = full.clone();
        damaged[at] ^= 0x10;
        fs::write(&seg, &damaged).unwrap();
        let (file, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
        assert_eq!((file.as_path(), offset), (seg.as_path(), 0), "{reason}");
    }
}

#[test]
fn a_header_that_disagrees_with_the_file_name() {
    let t = TestDir::new();
    build(&t.wal(), &ops(3), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let renamed = t.wal().join(file_name(0, 2));
    fs::rename(&seg, &renamed).unwrap();
    let (file, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!((file, offset), (renamed, 0));
    assert!(reason.contains("file name"), "{reason}");
}

#[test]
fn damage_in_the_preamble_of_the_last_segment() {
    let t = TestDir::new();
    let mut wal = Wal::create(&t.wal(), META).unwrap();
    wal.append(&[entry(1, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let seg = t.wal().join(file_name(0, 1));
    let mut full = fs::read(&seg).unwrap();
    // The metadata record starts right after the 45-byte header record.
    full[45 + 9] ^= 0x01;
    fs::write(&seg, &full).unwrap();
    let (_, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(offset, 45);
    assert!(reason.contains("preamble"), "{reason}");
    // Cut inside the preamble: never a torn tail either.
    fs::write(&seg, &full[..50]).unwrap();
    expect_corrupt(Wal::open(&t.wal()));
}

#[test]
fn a_missing_segment_in_the_sequence() {
    let t = TestDir::new();
    build(&t.wal(), &ops(40), 400);
    let segs = segments(&t.wal());
    assert!(segs.len() >= 4);
    fs::remove_file(&segs[2]).unwrap();
    let (file, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!((file, offset), (segs[3].clone(), 0));
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn a_torn_end_of_a_segment_that_is_not_the_last() {
    let t = TestDir::new();
    build(&t.wal(), &ops(40), 400);
    let segs = segments(&t.wal());
    let full = fs::read(&segs[1]).unwrap();
    let cut = full.len() - 5;
    fs::write(&segs[1], &full[..cut]).unwrap();
    let (file, offset, _) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(file, segs[1]);
    assert!(offset < cut as u64);
    // A flipped bit in the last record of a middle segment, too.
    let mut flipped = full.clone();
    let last_byte = flipped.len() - 1;
    flipped[last_byte] ^= 0x80;
    fs::write(&segs[1], &flipped).unwrap();
    let (file, _, _) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(file, segs[1]);
}

#[test]
fn a_foreign_segment_that_does_not_continue_the_log() {
    // Two WALs' segments mixed: the second one's index range does not follow.
    let t = TestDir::new();
    build(&t.wal(), &ops(40), 400);
    let other = TestDir::new();
    build(&other.wal(), &ops(80), 400);
    let segs = segments(&t.wal());
    let theirs = segments(&other.wal());
    let last = segs.last().unwrap().clone();
    // Put their segment with the next seq under our name scheme: the header
    // disagrees with the name, or the indexes do not follow.
    let (seq, _) = crate::segment::parse_name(last.file_name().unwrap().to_str().unwrap()).unwrap();
    let pick = theirs
        .iter()
        .find(|p| {
            crate::segment::parse_name(p.file_name().unwrap().to_str().unwrap())
                .unwrap()
                .0
                == seq + 1
        })
        .unwrap();
    let copied = t.wal().join(pick.file_name().unwrap());
    fs::copy(pick, &copied).unwrap();
    let (_, _, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert!(reason.contains(copied.to_str().unwrap()), "{reason}");
}

#[test]
fn a_segment_cut_at_a_record_boundary_is_named() {
    let t = TestDir::new();
    build(&t.wal(), &ops(40), 400);
    let segs = segments(&t.wal());
    let full = fs::read(&segs[1]).unwrap();
    // Walk the records to find where the last one starts, and cut there.
    let (mut pos, mut last_start) = (0, 0);
    while pos < full.len() {
        last_start = pos;
        pos = crate::record::decode(&full, pos).unwrap().1;
    }
    fs::write(&segs[1], &full[..last_start]).unwrap();
    let (file, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(
        (file, offset),
        (segs[1].clone(), last_start as u64),
        "{reason}"
    );
}

#[test]
fn a_valid_record_that_breaks_the_log_rules() {
    // Well-formed bytes that this writer would never produce: an entry that
    // leaves a gap. Appended as a proper record at the very end.
    let t = TestDir::new();
    build(&t.wal(), &ops(3), u64::MAX);
    let seg = t.wal().join(file_name(0, 1));
    let mut full = fs::read(&seg).unwrap();
    let at = full.len() as u64;
    crate::record::encode_entry(&mut full, &entry(9, 1));
    fs::write(&seg, &full).unwrap();
    let (_, offset, reason) = expect_corrupt(Wal::open(&t.wal()));
    assert_eq!(offset, at);
    assert!(reason.contains("gap"), "{reason}");
}
