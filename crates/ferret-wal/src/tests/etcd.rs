//! etcd's WAL and snapshot files (`crate::etcd`): files built as etcd's
//! encoder writes them read back; a torn tail is tolerated, other damage
//! names the file; random damage never panics.

use std::fs;

use super::{Rng, TestDir};
use crate::etcd::{self, encode, EtcdFilesError};

/// A WAL of two files as etcd writes them: file 0 from index 0 (snapshot
/// marker 0), file 1 starting at index 4 with the chain carried over;
/// entries 1..=6, entry 5 written twice (a new leader's), hard state last.
fn write_wal(dir: &std::path::Path, preallocate: bool) -> Vec<std::path::PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let mut crc = 0u32;
    let mut f0 = encode::frame(&mut crc, etcd::RECORD_CRC, &[]);
    f0.extend(encode::frame(
        &mut crc,
        etcd::RECORD_METADATA,
        &encode::metadata(0xa, 0xc),
    ));
    f0.extend(encode::frame(
        &mut crc,
        etcd::RECORD_SNAPSHOT,
        &encode::snapshot_marker(0, 0),
    ));
    for i in 1..=3 {
        f0.extend(encode::frame(
            &mut crc,
            etcd::RECORD_ENTRY,
            &encode::entry(i, 1, 0, b"x"),
        ));
    }
    f0.extend(encode::frame(
        &mut crc,
        etcd::RECORD_STATE,
        &encode::hard_state(1, 0xa, 3),
    ));
    let mut f1 = encode::frame(&mut crc, etcd::RECORD_CRC, &[]);
    f1.extend(encode::frame(
        &mut crc,
        etcd::RECORD_METADATA,
        &encode::metadata(0xa, 0xc),
    ));
    f1.extend(encode::frame(
        &mut crc,
        etcd::RECORD_STATE,
        &encode::hard_state(1, 0xa, 3),
    ));
    for i in 4..=5 {
        f1.extend(encode::frame(
            &mut crc,
            etcd::RECORD_ENTRY,
            &encode::entry(i, 1, 0, b"old"),
        ));
    }
    f1.extend(encode::frame(
        &mut crc,
        etcd::RECORD_ENTRY,
        &encode::entry(5, 2, 1, b"new"),
    ));
    f1.extend(encode::frame(
        &mut crc,
        etcd::RECORD_ENTRY,
        &encode::entry(6, 2, 0, b""),
    ));
    f1.extend(encode::frame(
        &mut crc,
        etcd::RECORD_STATE,
        &encode::hard_state(2, 0xb, 6),
    ));
    if preallocate {
        f1.resize(f1.len() + 4096, 0);
    }
    let p0 = dir.join("0000000000000000-0000000000000000.wal");
    let p1 = dir.join("0000000000000001-0000000000000004.wal");
    fs::write(&p0, f0).unwrap();
    fs::write(&p1, f1).unwrap();
    vec![p0, p1]
}

#[test]
fn reads_a_wal_as_etcd_wrote_it() {
    let d = TestDir::new();
    let files = write_wal(&d.path, true);
    let w = etcd::read_wal(&d.path, 0, 0).unwrap();
    assert_eq!((w.member_id, w.cluster_id), (0xa, 0xc));
    assert_eq!(
        (w.hard_state.term, w.hard_state.vote, w.hard_state.commit),
        (2, 0xb, 6)
    );
    let got: Vec<_> = w
        .entries
        .iter()
        .map(|e| (e.index, e.term, e.kind))
        .collect();
    assert_eq!(
        got,
        [
            (1, 1, 0),
            (2, 1, 0),
            (3, 1, 0),
            (4, 1, 0),
            (5, 2, 1),
            (6, 2, 0)
        ]
    );
    assert_eq!(w.entries[4].data, b"new");
    assert_eq!(w.files, files);
    assert!(w.torn_tail.is_none());
}

#[test]
fn a_snapshot_marker_must_be_there() {
    let d = TestDir::new();
    write_wal(&d.path, false);
    let e = etcd::read_wal(&d.path, 3, 1).unwrap_err();
    assert!(
        e.to_string().contains("no snapshot marker at index 3"),
        "{e}"
    );
}

#[test]
fn a_torn_tail_is_where_reading_stops() {
    let d = TestDir::new();
    let files = write_wal(&d.path, false);
    let mut last = fs::read(&files[1]).unwrap();
    let full = last.len();
    // The last record (the hard state) cut in the middle.
    last.truncate(full - 5);
    fs::write(&files[1], &last).unwrap();
    let w = etcd::read_wal(&d.path, 0, 0).unwrap();
    assert_eq!(w.entries.len(), 6);
    assert_eq!(w.hard_state.commit, 3);
    assert!(w.torn_tail.is_some());
}

#[test]
fn damage_in_the_middle_names_the_file() {
    let d = TestDir::new();
    let files = write_wal(&d.path, false);
    let mut first = fs::read(&files[0]).unwrap();
    let n = first.len();
    first[n - 20] ^= 0x40;
    fs::write(&files[0], &first).unwrap();
    match etcd::read_wal(&d.path, 0, 0) {
        Err(EtcdFilesError::Corrupt { file, .. }) => assert_eq!(file, files[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn snapshot_files_read_and_check_their_crc() {
    let d = TestDir::new();
    fs::create_dir_all(&d.path).unwrap();
    let good = encode::snapshot_file(10, 2, &[1, 2], b"{\"Root\":{}}");
    fs::write(d.path.join("0000000000000002-000000000000000a.snap"), &good).unwrap();
    let mut bad = encode::snapshot_file(20, 3, &[1], b"{}");
    let n = bad.len();
    bad[n - 1] ^= 1;
    fs::write(d.path.join("0000000000000003-0000000000000014.snap"), &bad).unwrap();
    fs::write(d.path.join("0000000000000005.snap.db"), b"db").unwrap();
    let (s, skipped) = etcd::newest_snapshot(&d.path).unwrap();
    let s = s.unwrap();
    assert_eq!((s.index, s.term, s.voters.clone()), (10, 2, vec![1, 2]));
    assert_eq!(s.v2_json, b"{\"Root\":{}}");
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].to_string().contains("0000000000000014.snap"));
}

/// Random flips, bursts, cuts and garbage files: never a panic; either an
/// answer whose entries are a prefix of the real ones, or an error.
#[test]
fn random_damage_never_panics() {
    let d = TestDir::new();
    let files = write_wal(&d.path, true);
    let originals: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let mut rng = Rng::new(7);
    for round in 0..600 {
        for (f, o) in files.iter().zip(&originals) {
            fs::write(f, o).unwrap();
        }
        let k = rng.below(2) as usize;
        let mut bytes = originals[k].clone();
        match round % 4 {
            0 => {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(bytes.len() as u64) as usize;
                let end = (i + 1 + rng.below(64) as usize).min(bytes.len());
                for b in &mut bytes[i..end] {
                    *b = rng.next() as u8;
                }
            }
            2 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
            _ => {
                bytes = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            }
        }
        fs::write(&files[k], &bytes).unwrap();
        if let Ok(w) = etcd::read_wal(&d.path, 0, 0) {
            assert!(w.entries.len() <= 6);
            for (i, e) in w.entries.iter().enumerate() {
                assert_eq!(e.index, i as u64 + 1);
            }
        }
        let snap = d.path.join("0000000000000001-0000000000000001.snap");
        fs::write(&snap, &bytes).unwrap();
        let _ = etcd::read_snapshot(&snap);
        fs::remove_file(&snap).unwrap();
    }
}
