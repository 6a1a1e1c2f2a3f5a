//! Fuzzes the reader: any input may be refused, none may panic or hang.
//!
//! The meta checksums are recomputed first (a fuzzer would rarely find a
//! valid FNV-64a), so that the page sizes, roots and high-water marks it
//! invents reach the tree walk. Seed the corpus with small databases from
//! the writer (any file the tests write, e.g. a `Writer` with 1024-byte
//! pages) for faster coverage.
#![no_main]

use std::hash::Hasher;

use ferret_bbolt::Db;
use libfuzzer_sys::fuzz_target;

/// FNV-1a, 64 bits: bbolt's meta checksum.
fn fnv64a(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// Recomputes the checksum of the meta at `page_offset`, if it is there.
fn fix_meta(data: &mut [u8], page_offset: usize) {
    let meta = page_offset + 16;
    if data.len() >= meta + 64 {
        let checksum = fnv64a(&data[meta..meta + 56]);
        data[meta + 56..meta + 64].copy_from_slice(&checksum.to_le_bytes());
    }
}

fuzz_target!(|input: &[u8]| {
    let mut data = input.to_vec();
    fix_meta(&mut data, 0);
    if data.len() >= 28 {
        let page_size = u32::from_le_bytes(data[24..28].try_into().unwrap()) as usize;
        fix_meta(&mut data, page_size);
    }
    let Ok(db) = Db::open(&data[..]) else {
        return;
    };
    let _ = db.check();
    let root = db.root();
    for entry in root.entries() {
        let Ok(entry) = entry else {
            break;
        };
        let _ = root.get(&entry.key);
        if let Ok(Some(bucket)) = root.bucket(&entry.key) {
            for entry in bucket.entries() {
                if entry.is_err() {
                    break;
                }
            }
            let _ = bucket.get(&entry.key);
        }
    }
});
