//! The reader on corrupt input: targeted corruptions give errors that
//! name the page, and thousands of seeded random mutations of valid files
//! never make it panic or hang (a hang would stop the test).

use std::hash::Hasher;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ferret_bbolt::{Db, Error, Writer, WriterOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PAGE_SIZE: usize = 1024;

/// A small file with every page kind: metas, freelist, an empty and an
/// inline bucket, a bucket of three levels with overflow values.
fn valid_file(page_size: u32) -> Vec<u8> {
    let mut writer =
        Writer::with_options(Cursor::new(Vec::new()), WriterOptions { page_size }).unwrap();
    writer.begin_bucket(b"empty").unwrap();
    writer.end_bucket().unwrap();
    writer.begin_bucket(b"inline").unwrap();
    writer.put(b"a", b"1").unwrap();
    writer.put(b"b", b"2").unwrap();
    writer.end_bucket().unwrap();
    writer.begin_bucket(b"tree").unwrap();
    for i in 0u32..300 {
        let key = format!("key-{i:05}-{}", "k".repeat((i % 40) as usize));
        let value_len = if i % 97 == 0 { 3000 } else { (i % 50) as usize };
        writer
            .put(key.as_bytes(), &vec![i as u8; value_len])
            .unwrap();
    }
    writer.end_bucket().unwrap();
    writer.finish().unwrap().into_inner()
}

/// How far a reader got into a mutated file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    NotOpened,
    CheckFailed,
    CheckPassed,
}

/// Everything a reader can be asked; errors are fine, panics are not.
fn exercise(bytes: &[u8]) -> Outcome {
    let Ok(db) = Db::open(bytes) else {
        return Outcome::NotOpened;
    };
    let outcome = match db.check() {
        Ok(_) => Outcome::CheckPassed,
        Err(_) => Outcome::CheckFailed,
    };
    // A database that passed the check reads without an error.
    let passed = outcome == Outcome::CheckPassed;
    let must_read = |result: Result<(), ferret_bbolt::Error>| {
        if let Err(error) = result {
            assert!(!passed, "check passed, then: {error}");
        }
    };
    let root = db.root();
    for entry in root.entries() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                must_read(Err(error));
                break;
            }
        };
        must_read(
            root.get(&entry.key)
                .map(|found| assert!(found.is_some() || !passed)),
        );
        match root.bucket(&entry.key) {
            Ok(Some(bucket)) => {
                for entry in bucket.entries() {
                    if let Err(error) = entry {
                        must_read(Err(error));
                        break;
                    }
                }
                must_read(bucket.get(b"key-00150-").map(drop));
                must_read(bucket.get(b"zzz").map(drop));
            }
            Ok(None) => {}
            Err(error) => must_read(Err(error)),
        }
    }
    outcome
}

/// Rewrites the checksum of the meta in `page` (if the page is whole),
/// so that a mutated meta passes validation and its fields get used.
fn fix_meta_checksum(bytes: &mut [u8], page: usize, page_size: usize) {
    let start = page * page_size + 16;
    if bytes.len() < start + 64 {
        return;
    }
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(&bytes[start..start + 56]);
    let hash = hasher.finish();
    bytes[start + 56..start + 64].copy_from_slice(&hash.to_le_bytes());
}

fn interesting_u64(rng: &mut StdRng, pages: u64) -> u64 {
    match rng.gen_range(0..12) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => pages.wrapping_sub(1),
        5 => pages,
        6 => pages + 1,
        7 => 0xFFFF,
        8 => u64::from(u32::MAX),
        9 => u64::MAX,
        10 => rng.gen_range(0..pages + 4),
        _ => rng.gen(),
    }
}

/// One to four random changes: bytes, header or element fields set to
/// values near the edges, pages copied over others, truncation.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>, page_size: usize) {
    let pages = (bytes.len() / page_size) as u64;
    for _ in 0..rng.gen_range(1..=4) {
        if bytes.len() < 8 {
            return;
        }
        let page = rng.gen_range(0..pages.max(1)) as usize;
        match rng.gen_range(0..10) {
            0 | 1 => {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = rng.gen();
            }
            2 | 3 => {
                // A field of the page header or of one of its elements.
                let element = rng.gen_range(0..6usize);
                let field = [0usize, 4, 8, 12][rng.gen_range(0..4)];
                let at = page * page_size + element * 16 + field;
                let value = interesting_u64(rng, pages);
                let width = [2usize, 4, 8][rng.gen_range(0..3)];
                if at + width <= bytes.len() {
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            4 | 5 => {
                // A meta field (root, freelist, pgid, txid, page size).
                let meta = rng.gen_range(0..2usize);
                let at = meta * page_size + 16 + [8usize, 16, 32, 40, 48][rng.gen_range(0..5)];
                let value = interesting_u64(rng, pages);
                let width = if at == meta * page_size + 24 { 4 } else { 8 };
                if at + width <= bytes.len() {
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            6 => {
                let from = rng.gen_range(0..pages.max(1)) as usize * page_size;
                let to = page * page_size;
                if from + page_size <= bytes.len() && to + page_size <= bytes.len() {
                    bytes.copy_within(from..from + page_size, to);
                }
            }
            7 => {
                let len = rng.gen_range(0..bytes.len());
                bytes.truncate(len);
            }
            _ => {
                let at = rng.gen_range(0..bytes.len());
                let end = (at + rng.gen_range(1..64)).min(bytes.len());
                rng.fill(&mut bytes[at..end]);
            }
        }
    }
    if rng.gen_bool(0.7) {
        fix_meta_checksum(bytes, 0, page_size);
        fix_meta_checksum(bytes, 1, page_size);
    }
}

fn run_mutations(page_size: u32, seed: u64, iterations: u32) {
    let valid = valid_file(page_size);
    assert_eq!(exercise(&valid), Outcome::CheckPassed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = std::collections::BTreeMap::new();
    for iteration in 0..iterations {
        let mut bytes = valid.clone();
        mutate(&mut rng, &mut bytes, page_size as usize);
        match catch_unwind(AssertUnwindSafe(|| exercise(&bytes))) {
            Ok(outcome) => *outcomes.entry(outcome).or_insert(0u32) += 1,
            Err(_) => {
                let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("bbolt-panic-{page_size}-{seed}-{iteration}.db"));
                std::fs::write(&path, &bytes).unwrap();
                panic!(
                    "the reader panicked on mutation {iteration} (seed {seed}); input in {path:?}"
                );
            }
        }
    }
    println!("page size {page_size}: {outcomes:?}");
    // The mutations reach every depth: some files are refused at once,
    // some are caught by the check, some stay valid.
    for outcome in [
        Outcome::NotOpened,
        Outcome::CheckFailed,
        Outcome::CheckPassed,
    ] {
        assert!(
            outcomes.get(&outcome).copied().unwrap_or(0) >= iterations / 20,
            "{outcomes:?}"
        );
    }
}

/// `FERRET_BBOLT_MUTATIONS=N` runs N mutations per page size (and a seed
/// from `FERRET_BBOLT_SEED`) for a longer local search.
#[test]
fn random_mutations_never_panic() {
    let iterations = std::env::var("FERRET_BBOLT_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok());
    let seed: u64 = std::env::var("FERRET_BBOLT_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    run_mutations(1024, seed * 2 + 1, iterations.unwrap_or(3000));
    run_mutations(4096, seed * 2 + 2, iterations.unwrap_or(1500));
}

#[test]
fn random_pages_behind_valid_metas_never_panic() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..2000 {
        let pages = rng.gen_range(2..24u64);
        let mut bytes = vec![0u8; pages as usize * PAGE_SIZE];
        rng.fill(&mut bytes[..]);
        // Plausible headers: ids that match, leaf or branch flags, small counts.
        for page in 0..pages {
            let at = page as usize * PAGE_SIZE;
            if rng.gen_bool(0.8) {
                bytes[at..at + 8].copy_from_slice(&page.to_le_bytes());
                let flags: u16 = [1, 2, 0x10, 2][rng.gen_range(0..4)];
                bytes[at + 8..at + 10].copy_from_slice(&flags.to_le_bytes());
                let count: u16 = rng.gen_range(0..80);
                bytes[at + 10..at + 12].copy_from_slice(&count.to_le_bytes());
                let overflow: u32 = rng.gen_range(0..3);
                bytes[at + 12..at + 16].copy_from_slice(&overflow.to_le_bytes());
            }
        }
        for meta in 0..2usize {
            let at = meta * PAGE_SIZE + 16;
            bytes[at..at + 4].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&2u32.to_le_bytes());
            bytes[at + 8..at + 12].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
            let root = rng.gen_range(0..pages + 1);
            bytes[at + 16..at + 24].copy_from_slice(&root.to_le_bytes());
            let freelist = if rng.gen_bool(0.5) {
                u64::MAX
            } else {
                rng.gen_range(0..pages)
            };
            bytes[at + 32..at + 40].copy_from_slice(&freelist.to_le_bytes());
            bytes[at + 40..at + 48].copy_from_slice(&pages.to_le_bytes());
            fix_meta_checksum(&mut bytes, meta, PAGE_SIZE);
        }
        exercise(&bytes);
    }
}

// ---------------------------------------------------------------------
// Targeted corruptions and the errors they give.

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The root page of top-level bucket number `index` (not inline).
fn bucket_root(bytes: &[u8], index: usize) -> usize {
    let root_page = u64_at(bytes, 16 + 16) as usize * PAGE_SIZE;
    let element = root_page + 16 + 16 * index;
    let value = element + u32_at(bytes, element + 4) as usize + u32_at(bytes, element + 8) as usize;
    u64_at(bytes, value) as usize
}

fn expect_corrupt(result: Result<impl std::fmt::Debug, Error>, page: u64, words: &str) {
    match result {
        Err(Error::Corrupt { pgid, detail }) => {
            assert_eq!(pgid, page, "{detail}");
            assert!(detail.contains(words), "{detail:?} lacks {words:?}");
        }
        other => panic!("expected corruption of page {page}, got {other:?}"),
    }
}

fn tree_entries(bytes: &[u8]) -> Result<usize, Error> {
    let db = Db::open(bytes)?;
    let bucket = db.bucket(b"tree")?.expect("tree bucket");
    let mut count = 0;
    for entry in bucket.entries() {
        entry?;
        count += 1;
    }
    Ok(count)
}

#[test]
fn errors_name_the_page() {
    let valid = valid_file(PAGE_SIZE as u32);
    assert_eq!(tree_entries(&valid).unwrap(), 300);
    let tree = bucket_root(&valid, 2);
    let tree_page = tree * PAGE_SIZE;
    assert_eq!(
        valid[tree_page + 8],
        0x01,
        "the tree bucket's root is a branch"
    );

    // A branch child pointing back at the branch: a cycle.
    let mut bytes = valid.clone();
    bytes[tree_page + 16 + 8..tree_page + 16 + 16].copy_from_slice(&(tree as u64).to_le_bytes());
    expect_corrupt(tree_entries(&bytes), tree as u64, "reached twice");
    expect_corrupt(
        Db::open(&bytes[..]).unwrap().check(),
        tree as u64,
        "more than once",
    );

    // The first leaf (page 3 holds the tree's first keys: the empty and
    // inline buckets take no page): a key past the page's end.
    let leaf = 3 * PAGE_SIZE;
    assert_eq!(valid[leaf + 8], 0x02);
    let mut bytes = valid.clone();
    bytes[leaf + 16 + 4..leaf + 16 + 8].copy_from_slice(&5000u32.to_le_bytes());
    expect_corrupt(tree_entries(&bytes), 3, "past the page");

    // Overflow pages past the high-water mark.
    let mut bytes = valid.clone();
    bytes[leaf + 12..leaf + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    expect_corrupt(tree_entries(&bytes), 3, "past the high-water mark");

    // The second key made the first one again: the order is broken.
    // (Page 3 holds one value on overflow pages; the next leaf has more.)
    let leaf_pgid = 3 + 1 + u32_at(&valid, leaf + 12) as u64;
    let leaf = leaf_pgid as usize * PAGE_SIZE;
    assert_eq!(valid[leaf + 8], 0x02);
    assert!(valid[leaf + 10] >= 2);
    let mut bytes = valid.clone();
    let first_pos = u32_at(&bytes, leaf + 16 + 4);
    let first_len = u32_at(&bytes, leaf + 16 + 8);
    bytes[leaf + 32 + 4..leaf + 32 + 8].copy_from_slice(&(first_pos - 16).to_le_bytes());
    bytes[leaf + 32 + 8..leaf + 32 + 12].copy_from_slice(&first_len.to_le_bytes());
    expect_corrupt(
        tree_entries(&bytes),
        leaf_pgid,
        "element 1: key not above the previous key",
    );

    // An empty key (bbolt never writes one).
    let mut bytes = valid.clone();
    bytes[leaf + 16 + 8..leaf + 16 + 12].copy_from_slice(&0u32.to_le_bytes());
    expect_corrupt(tree_entries(&bytes), leaf_pgid, "element 0: empty key");

    // A page whose header names another page.
    let leaf = 3 * PAGE_SIZE;
    let mut bytes = valid.clone();
    bytes[leaf..leaf + 8].copy_from_slice(&4u64.to_le_bytes());
    expect_corrupt(tree_entries(&bytes), 3, "says page 4");

    // The freelist lists a page in use.
    let mut bytes = valid.clone();
    let freelist = 2 * PAGE_SIZE;
    bytes[freelist + 10..freelist + 12].copy_from_slice(&1u16.to_le_bytes());
    bytes[freelist + 16..freelist + 24].copy_from_slice(&3u64.to_le_bytes());
    expect_corrupt(Db::open(&bytes[..]).unwrap().check(), 3, "freelist");

    // A page nothing reaches and the freelist does not list.
    let mut bytes = valid.clone();
    bytes.extend_from_slice(&vec![0u8; PAGE_SIZE]);
    let pages = (bytes.len() / PAGE_SIZE) as u64;
    for meta in 0..2 {
        let at = meta * PAGE_SIZE + 16 + 40;
        bytes[at..at + 8].copy_from_slice(&pages.to_le_bytes());
        fix_meta_checksum(&mut bytes, meta, PAGE_SIZE);
    }
    expect_corrupt(
        Db::open(&bytes[..]).unwrap().check(),
        pages - 1,
        "neither reachable nor free",
    );

    // Meta 0 torn: meta 1 (txid 1) is used; both torn: not a database.
    let mut bytes = valid.clone();
    bytes[16 + 20] ^= 1;
    let db = Db::open(&bytes[..]).unwrap();
    assert_eq!(db.meta().txid, 1);
    assert_eq!(tree_entries(&bytes).unwrap(), 300);
    bytes[PAGE_SIZE + 16 + 20] ^= 1;
    let error = Db::open(&bytes[..]).unwrap_err();
    assert!(matches!(error, Error::NoValidMeta { .. }), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");

    // A file cut short of its high-water mark.
    let error = Db::open(&valid[..valid.len() - PAGE_SIZE]).unwrap_err();
    assert!(error.to_string().contains("high-water mark"), "{error}");
}
