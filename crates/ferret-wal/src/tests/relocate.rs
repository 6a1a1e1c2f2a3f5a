//! Moving a WAL to a dedicated directory, and finishing a move a crash
//! interrupted.

use super::*;
use crate::relocate;

/// A WAL of several segments (tiny rotation size) holding entries 1..=n.
fn wal_with(dir: &Path, n: u64) {
    let mut wal = Wal::create_with(dir, META, options(256)).unwrap();
    for i in 1..=n {
        wal.append(&[entry(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
}

fn entries_in(dir: &Path) -> Vec<u64> {
    let (_, rec) = Wal::open(dir).unwrap();
    rec.entries.iter().map(|e| e.index).collect()
}

#[test]
fn a_wal_moves_to_its_dedicated_dir() {
    let t = TestDir::new();
    let to = t.path.join("dedicated");
    wal_with(&t.wal(), 20);
    assert!(relocate(&t.wal(), &to).unwrap());
    assert!(!t.wal().exists());
    assert!(!t.path.join("member").join("wal.moving").exists());
    assert_eq!(entries_in(&to), (1..=20).collect::<Vec<_>>());
    // Nothing left to move.
    assert!(!relocate(&t.wal(), &to).unwrap());
}

#[test]
fn an_interrupted_move_is_finished() {
    let t = TestDir::new();
    let to = t.path.join("dedicated");
    wal_with(&t.wal(), 20);
    // A crash after step 1 and part of step 2: one segment copied, one
    // half-copied under its .tmp name.
    let moving = t.path.join("member").join("wal.moving");
    fs::rename(t.wal(), &moving).unwrap();
    fs::create_dir_all(&to).unwrap();
    let mut names: Vec<String> = fs::read_dir(&moving)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    fs::copy(moving.join(&names[0]), to.join(&names[0])).unwrap();
    let half = fs::read(moving.join(&names[1])).unwrap();
    fs::write(
        to.join(format!("{}.tmp", names[1])),
        &half[..half.len() / 2],
    )
    .unwrap();
    assert!(relocate(&t.wal(), &to).unwrap());
    assert!(!moving.exists());
    assert_eq!(entries_in(&to), (1..=20).collect::<Vec<_>>());
}

#[test]
fn two_wals_are_refused() {
    let t = TestDir::new();
    let to = t.path.join("dedicated");
    wal_with(&t.wal(), 3);
    wal_with(&to, 2);
    assert!(matches!(
        relocate(&t.wal(), &to),
        Err(WalError::InvalidInput(_))
    ));
    // Both left as they were.
    assert_eq!(entries_in(&t.wal()), vec![1, 2, 3]);
    assert_eq!(entries_in(&to), vec![1, 2]);
}
