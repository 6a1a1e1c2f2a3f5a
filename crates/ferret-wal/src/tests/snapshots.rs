//! Snapshot files: round trip, damage detection, fallback, purge, leftovers.

use std::fs;
use std::sync::Arc;

use super::*;
use crate::snap::{self, load_newest, purge, save_snapshot, SNAPSHOT_HEADER_BYTES};
use crate::{FailNth, IoOp};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn save_then_load_the_newest() {
    let t = TestDir::new();
    assert_eq!(load_newest(&t.snap()).unwrap(), None, "no directory yet");
    let p = save_snapshot(&t.snap(), 10, 2, b"ten").unwrap();
    assert_eq!(p, t.snap().join("0000000000000002-000000000000000a.snap"));
    assert_eq!(fs::read(&p).unwrap().len(), SNAPSHOT_HEADER_BYTES + 3);
    save_snapshot(&t.snap(), 30, 3, b"thirty").unwrap();
    save_snapshot(&t.snap(), 20, 3, b"twenty").unwrap();
    assert_eq!(
        load_newest(&t.snap()).unwrap(),
        Some((30, 3, b"thirty".to_vec()))
    );
    save_snapshot(&t.snap(), 40, 3, b"").unwrap();
    assert_eq!(load_newest(&t.snap()).unwrap(), Some((40, 3, vec![])));
}

#[test]
fn the_header_is_laid_out_as_documented() {
    let t = TestDir::new();
    let p = save_snapshot(&t.snap(), 0x0102, 0x0304, b"data").unwrap();
    let b = fs::read(p).unwrap();
    assert_eq!(&b[0..8], b"FERRSNAP");
    assert_eq!(&b[8..12], &1u32.to_le_bytes());
    assert_eq!(&b[12..20], &0x0102u64.to_le_bytes());
    assert_eq!(&b[20..28], &0x0304u64.to_le_bytes());
    assert_eq!(&b[28..36], &4u64.to_le_bytes());
    assert_eq!(&b[36..40], &crc32c::crc32c(b"data").to_le_bytes());
    assert_eq!(&b[40..44], &crc32c::crc32c(&b[0..40]).to_le_bytes());
    assert_eq!(&b[44..], b"data");
}

#[test]
fn any_damage_to_the_only_snapshot_is_an_error_naming_it() {
    let t = TestDir::new();
    let p = save_snapshot(&t.snap(), 5, 1, b"some state").unwrap();
    let good = fs::read(&p).unwrap();
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        fs::write(&p, &bad).unwrap();
        match load_newest(&t.snap()) {
            Err(WalError::Corrupt { file, .. }) => assert_eq!(file, p, "byte {at}"),
            other => panic!("byte {at}: {other:?}"),
        }
    }
    for len in [0, 10, SNAPSHOT_HEADER_BYTES, good.len() - 1] {
        fs::write(&p, &good[..len]).unwrap();
        assert!(
            matches!(load_newest(&t.snap()), Err(WalError::Corrupt { .. })),
            "cut at {len}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    fs::write(&p, &longer).unwrap();
    assert!(matches!(
        load_newest(&t.snap()),
        Err(WalError::Corrupt { .. })
    ));
    // Nothing was renamed: there was no older one to fall back to.
    assert_eq!(names(&t.snap()), vec![snap::file_name(5, 1)]);
}

#[test]
fn a_file_renamed_to_another_index_is_caught() {
    let t = TestDir::new();
    let p = save_snapshot(&t.snap(), 5, 1, b"five").unwrap();
    fs::rename(&p, t.snap().join(snap::file_name(6, 1))).unwrap();
    assert!(matches!(
        load_newest(&t.snap()),
        Err(WalError::Corrupt { offset: 12, .. })
    ));
}

#[test]
fn a_damaged_newest_falls_back_to_an_older_valid_one() {
    let t = TestDir::new();
    save_snapshot(&t.snap(), 5, 1, b"five").unwrap();
    let newest = save_snapshot(&t.snap(), 9, 1, b"nine").unwrap();
    let mut b = fs::read(&newest).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    fs::write(&newest, &b).unwrap();
    assert_eq!(
        load_newest(&t.snap()).unwrap(),
        Some((5, 1, b"five".to_vec()))
    );
    // The damaged one is set aside, so purge cannot keep it instead of the
    // valid one.
    assert_eq!(
        names(&t.snap()),
        vec![
            snap::file_name(5, 1),
            format!("{}.broken", snap::file_name(9, 1))
        ]
    );
    purge(&t.snap(), 1).unwrap();
    assert_eq!(
        load_newest(&t.snap()).unwrap(),
        Some((5, 1, b"five".to_vec()))
    );
}

#[test]
fn purge_keeps_the_newest_and_removes_leftovers() {
    let t = TestDir::new();
    for i in 1..=6u64 {
        save_snapshot(&t.snap(), i * 10, 1 + i / 3, format!("s{i}").as_bytes()).unwrap();
    }
    let tmp = t.snap().join(format!("{}.tmp", snap::file_name(70, 3)));
    fs::write(&tmp, b"half").unwrap();
    fs::write(t.snap().join("notes.txt"), b"operator's").unwrap();
    // A leftover is ignored by loading.
    assert_eq!(load_newest(&t.snap()).unwrap().unwrap().0, 60);
    assert!(matches!(
        purge(&t.snap(), 0),
        Err(WalError::InvalidInput(_))
    ));
    purge(&t.snap(), 2).unwrap();
    assert_eq!(
        names(&t.snap()),
        vec![
            snap::file_name(50, 2),
            snap::file_name(60, 3),
            "notes.txt".to_string()
        ]
    );
    purge(&t.snap(), 5).unwrap();
    assert_eq!(names(&t.snap()).len(), 3);
    // Purging a directory that does not exist is a no-op.
    purge(&t.path.join("nowhere"), 1).unwrap();
}

#[test]
fn a_failed_save_leaves_no_snapshot() {
    for op in [IoOp::Write, IoOp::SyncData, IoOp::Rename] {
        let t = TestDir::new();
        save_snapshot(&t.snap(), 5, 1, b"five").unwrap();
        let faults = FailNth::new(op, 0);
        let r = snap::save_snapshot_with(
            &t.snap(),
            9,
            1,
            b"nine",
            faults as Arc<dyn crate::FaultInjector>,
        );
        assert!(matches!(r, Err(WalError::Io { .. })), "{op:?}");
        assert_eq!(
            load_newest(&t.snap()).unwrap(),
            Some((5, 1, b"five".to_vec())),
            "{op:?}"
        );
        purge(&t.snap(), 1).unwrap();
        assert_eq!(names(&t.snap()), vec![snap::file_name(5, 1)], "{op:?}");
    }
}
