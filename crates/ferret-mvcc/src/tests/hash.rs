//! HashKV and Hash: etcd's bytes, the same with or without the backend's
//! commit, compaction's rule, and errors.

use std::time::Duration;

use ferret_proto::mvccpb::KeyValue;
use prost::Message;

use super::{b, config, Harness};
use crate::{MvccError, Revision, Storage};

/// The bytes etcd's `hashByRev` feeds its CRC for a put record.
fn put_record(crc: u32, main: i64, key: &str, value: &str, created: i64, version: i64) -> u32 {
    let kv = KeyValue {
        key: b(key),
        create_revision: created,
        mod_revision: main,
        version,
        value: b(value),
        lease: 0,
    };
    let crc = crc32c::crc32c_append(crc, Revision::new(main, 0).to_key(false).as_bytes());
    crc32c::crc32c_append(crc, &kv.encode_to_vec())
}

/// A tombstone: its key carries the mark, its value only the key.
fn tombstone_record(crc: u32, main: i64, key: &str) -> u32 {
    let kv = KeyValue {
        key: b(key),
        ..Default::default()
    };
    let crc = crc32c::crc32c_append(crc, Revision::new(main, 0).to_key(true).as_bytes());
    crc32c::crc32c_append(crc, &kv.encode_to_vec())
}

#[test]
fn hash_kv_is_etcds_crc_of_the_key_table() {
    let mut h = Harness::memory();
    h.put("a", "1"); // 2
    h.put("a", "2"); // 3
    h.del("a", ""); // 4
    h.put("b", "x"); // 5
    let mut want = crc32c::crc32c(b"key");
    want = put_record(want, 2, "a", "1", 2, 1);
    want = put_record(want, 3, "a", "2", 2, 2);
    want = tombstone_record(want, 4, "a");
    want = put_record(want, 5, "b", "x", 5, 1);
    let got = h.m.hash_kv(0).unwrap();
    assert_eq!(got.hash, want);
    assert_eq!((got.current_rev, got.compact_rev), (5, -1));
    // At an older revision, only what came before it.
    let mut at3 = crc32c::crc32c(b"key");
    at3 = put_record(at3, 2, "a", "1", 2, 1);
    at3 = put_record(at3, 3, "a", "2", 2, 2);
    assert_eq!(h.m.hash_kv(3).unwrap().hash, at3);
    // A negative revision hashes nothing but the table's name, as etcd.
    assert_eq!(h.m.hash_kv(-1).unwrap().hash, crc32c::crc32c(b"key"));
    assert_eq!(h.m.hash_kv(6), Err(MvccError::FutureRev));
}

#[test]
fn committed_or_not_the_hash_is_the_same() {
    // A long batch interval keeps the records uncommitted.
    let slow = crate::MvccConfig {
        batch_interval: Duration::from_secs(3600),
        ..config()
    };
    let mut h = Harness::open(Storage::Memory, slow);
    for i in 0..50 {
        h.put(&format!("k{}", i % 7), &format!("v{i}"));
        if i % 10 == 9 {
            h.del(&format!("k{}", i % 7), "");
        }
    }
    let before = h.m.hash_kv(0).unwrap();
    let older = h.m.hash_kv(20).unwrap();
    let (whole, _) = h.m.hash().unwrap();
    h.m.flush().unwrap();
    assert_eq!(h.m.hash_kv(0).unwrap(), before);
    assert_eq!(h.m.hash_kv(20).unwrap(), older);
    assert_eq!(h.m.hash().unwrap().0, whole);
    // Another store given the same writes hashes alike.
    let mut other = Harness::memory();
    for i in 0..50 {
        other.put(&format!("k{}", i % 7), &format!("v{i}"));
        if i % 10 == 9 {
            other.del(&format!("k{}", i % 7), "");
        }
    }
    assert_eq!(other.m.hash_kv(0).unwrap(), before);
    other.m.flush().unwrap();
    assert_eq!(other.m.hash().unwrap().0, whole);
    // ... and a different write hashes otherwise.
    other.put("k0", "different");
    h.put("k0", "v0");
    assert_ne!(
        other.m.hash_kv(0).unwrap().hash,
        h.m.hash_kv(0).unwrap().hash
    );
}

#[test]
fn after_a_compaction_what_it_removes_is_not_hashed() {
    let mut h = Harness::memory();
    h.put("a", "1"); // 2
    h.put("a", "2"); // 3
    h.put("b", "1"); // 4
    h.del("b", ""); // 5
    h.put("c", "1"); // 6
    let done = h.compact(5).unwrap();
    // What a compaction at 6 keeps of revisions <= 5: a@3 (b's tombstone
    // at 5 ends its generation, so nothing of b); then c@6, above it.
    let mut want = crc32c::crc32c(b"key");
    want = put_record(want, 3, "a", "2", 2, 2);
    want = put_record(want, 6, "c", "1", 6, 1);
    // The same whether the compaction's removal has run or not.
    let early = h.m.hash_kv(0).unwrap();
    assert!(done.wait(Duration::from_secs(10)));
    let late = h.m.hash_kv(0).unwrap();
    assert_eq!(early, late);
    assert_eq!(late.hash, want);
    assert_eq!((late.current_rev, late.compact_rev), (6, 5));
    // At or below the compacted revision: etcd's error.
    assert_eq!(h.m.hash_kv(5), Err(MvccError::Compacted));
    assert_eq!(h.m.hash_kv(2), Err(MvccError::Compacted));
}
