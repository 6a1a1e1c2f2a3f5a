//! Writer → reader round trips on seeded random data, and the writer's
//! refusals.

use std::io::Cursor;

use ferret_bbolt::{
    strip_sha256, verify_sha256_file, Db, Error, FileSource, Writer, WriterOptions, MAX_KEY_SIZE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Buckets = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes[..]);
    bytes
}

/// A value length: mostly small, some over a page, a few up to 100 KiB
/// (overflow pages).
fn value_len(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..100) {
        0..=79 => rng.gen_range(0..100),
        80..=94 => rng.gen_range(100..6000),
        _ => rng.gen_range(6000..=100 * 1024),
    }
}

/// `count` distinct sorted keys of 1..=max_len bytes with their values.
fn random_entries(
    rng: &mut StdRng,
    count: usize,
    max_key_len: usize,
    value_len: impl Fn(&mut StdRng) -> usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys = std::collections::BTreeSet::new();
    while keys.len() < count {
        let len = rng.gen_range(1..=max_key_len);
        keys.insert(random_bytes(rng, len));
    }
    keys.into_iter()
        .map(|key| {
            let len = value_len(rng);
            (key, random_bytes(rng, len))
        })
        .collect()
}

/// Buckets of every shape: empty, inline-sized, random keys up to 1000
/// bytes with values up to 100 KiB, and one deep enough for 3+ levels.
fn random_buckets(rng: &mut StdRng, bucket_count: usize) -> Buckets {
    let mut names = std::collections::BTreeSet::new();
    while names.len() < bucket_count {
        let len = rng.gen_range(1..40);
        names.insert(random_bytes(rng, len));
    }
    names
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let count = rng.gen_range(1..400);
            let entries = match index % 5 {
                0 => Vec::new(),
                1 => random_entries(rng, count % 8, 20, |rng| rng.gen_range(0..40)),
                2 => random_entries(rng, count, 1000, value_len),
                3 => random_entries(rng, count % 60, 16, value_len),
                // Long keys: a few per leaf and per branch page, so the
                // tree grows 3+ levels.
                _ => random_entries(rng, 300, 1000, |rng| rng.gen_range(0..200)),
            };
            (name, entries)
        })
        .collect()
}

fn write(buckets: &Buckets, options: WriterOptions) -> Vec<u8> {
    let mut writer = Writer::with_options(Cursor::new(Vec::new()), options).unwrap();
    for (name, entries) in buckets {
        writer.begin_bucket(name).unwrap();
        for (key, value) in entries {
            writer.put(key, value).unwrap();
        }
        writer.end_bucket().unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Reads everything back and compares; returns the check report.
fn assert_reads_back(bytes: &[u8], buckets: &Buckets) -> ferret_bbolt::CheckReport {
    let db = Db::open(bytes).unwrap();
    let report = db.check().unwrap();
    let names: Vec<_> = buckets.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(db.bucket_names().unwrap(), names);
    assert_eq!(report.buckets, buckets.len() as u64);
    let total_keys: usize = buckets.iter().map(|(_, entries)| entries.len()).sum();
    assert_eq!(report.keys, total_keys as u64);

    let mut rng = StdRng::seed_from_u64(99);
    for (name, entries) in buckets {
        let bucket = db.bucket(name).unwrap().expect("bucket written");
        let read: Vec<_> = bucket
            .entries()
            .map(|entry| {
                let entry = entry.unwrap();
                assert!(!entry.is_bucket);
                (entry.key, entry.value)
            })
            .collect();
        assert!(read == *entries, "bucket {name:?} differs");
        // Point lookups: every 7th key, and keys that are not there.
        for (key, value) in entries.iter().step_by(7) {
            let entry = bucket.get(key).unwrap().expect("key written");
            assert_eq!(&entry.value, value);
        }
        for _ in 0..20 {
            let len = rng.gen_range(1..30);
            let key = random_bytes(&mut rng, len);
            let expected = entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
            assert_eq!(
                bucket.get(&key).unwrap().map(|e| e.value).as_ref(),
                expected
            );
        }
        let mut missing = name.clone();
        missing.push(0);
        assert!(db.bucket(&missing).unwrap().is_none() || names.contains(&missing));
    }
    report
}

#[test]
fn random_buckets_round_trip() {
    let mut rng = StdRng::seed_from_u64(1);
    let buckets = random_buckets(&mut rng, 30);
    let bytes = write(&buckets, WriterOptions::default());
    assert_eq!(bytes.len() % 4096, 0);
    let report = assert_reads_back(&bytes, &buckets);
    assert!(report.max_depth >= 3, "{report:?}");
    assert_eq!(report.free_pages, 0);
    assert_eq!(report.pages * 4096, bytes.len() as u64);

    // Small buckets are inline, big ones are not.
    let db = Db::open(&bytes[..]).unwrap();
    for (name, entries) in &buckets {
        let size: usize = 16
            + entries
                .iter()
                .map(|(k, v)| 16 + k.len() + v.len())
                .sum::<usize>();
        assert_eq!(db.bucket(name).unwrap().unwrap().is_inline(), size <= 1024);
    }
}

#[test]
fn deep_tree_of_small_keys() {
    // 40,000 keys of 8 bytes: ~240 per leaf, ~170 per branch page: the
    // bucket's root is a branch over branches.
    let entries: Vec<_> = (0u64..40_000)
        .map(|i| {
            (
                i.to_be_bytes().to_vec(),
                (i % 7).to_le_bytes()[..(i % 5) as usize].to_vec(),
            )
        })
        .collect();
    let buckets = vec![(b"key".to_vec(), entries)];
    let bytes = write(&buckets, WriterOptions::default());
    let report = assert_reads_back(&bytes, &buckets);
    assert_eq!(report.max_depth, 3, "{report:?}");
}

#[test]
fn other_page_sizes_round_trip() {
    for page_size in [1024, 16384, 65536] {
        let mut rng = StdRng::seed_from_u64(u64::from(page_size));
        let buckets = random_buckets(&mut rng, 10);
        let bytes = write(&buckets, WriterOptions { page_size });
        assert_eq!(Db::open(&bytes[..]).unwrap().meta().page_size, page_size);
        assert_reads_back(&bytes, &buckets);
    }
}

#[test]
fn many_buckets_make_a_root_bucket_with_branches() {
    // 400 buckets with 300-byte names: the root bucket needs branch pages.
    let mut rng = StdRng::seed_from_u64(3);
    let mut buckets: Buckets = (0u32..400)
        .map(|i| {
            let mut name = i.to_be_bytes().to_vec();
            name.extend(random_bytes(&mut rng, 296));
            let entries = random_entries(&mut rng, (i % 3) as usize, 8, |_| 10);
            (name, entries)
        })
        .collect();
    buckets.sort();
    let bytes = write(&buckets, WriterOptions::default());
    let report = assert_reads_back(&bytes, &buckets);
    assert!(report.max_depth >= 2, "{report:?}");
}

#[test]
fn empty_database_and_largest_keys() {
    let bytes = write(&Vec::new(), WriterOptions::default());
    assert_eq!(bytes.len(), 4 * 4096); // metas, freelist, empty root leaf
    let db = Db::open(&bytes[..]).unwrap();
    assert!(db.bucket_names().unwrap().is_empty());
    assert_eq!(db.check().unwrap().pages, 4);

    // Keys of bbolt's maximum size: branch pages overflow and still hold
    // two children each.
    let entries: Vec<_> = (0u8..20)
        .map(|i| {
            let mut key = vec![i; MAX_KEY_SIZE];
            key[0] = i;
            (key, vec![i; 3])
        })
        .collect();
    let buckets = vec![(vec![b'k'; MAX_KEY_SIZE], entries)];
    let bytes = write(&buckets, WriterOptions::default());
    assert_reads_back(&bytes, &buckets);
}

#[test]
fn snapshot_file_round_trip() {
    let mut rng = StdRng::seed_from_u64(5);
    let buckets = random_buckets(&mut rng, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let mut writer = Writer::new(file).unwrap();
    for (name, entries) in &buckets {
        writer.begin_bucket(name).unwrap();
        for (key, value) in entries {
            writer.put(key, value).unwrap();
        }
        writer.end_bucket().unwrap();
    }
    let (mut file, hash) = writer.finish_snapshot().unwrap();

    let len_bytes = verify_sha256_file(&mut file).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(len_bytes + 32, bytes.len() as u64);
    assert_eq!(&bytes[len_bytes as usize..], &hash);
    assert_eq!(strip_sha256(&bytes).unwrap().len() as u64, len_bytes);

    let db = Db::open(FileSource::with_len(file, len_bytes)).unwrap();
    db.check().unwrap();
    for (name, entries) in &buckets {
        let bucket = db.bucket(name).unwrap().unwrap();
        let read: Vec<_> = bucket
            .entries()
            .map(|e| e.map(|e| (e.key, e.value)).unwrap())
            .collect();
        assert!(read == *entries);
    }
}

#[test]
fn writer_refuses_what_bbolt_refuses() {
    let mut writer = Writer::new(Cursor::new(Vec::new())).unwrap();
    assert!(matches!(writer.put(b"a", b""), Err(Error::Misuse(_))));
    assert!(matches!(writer.begin_bucket(b""), Err(Error::EmptyKey)));
    writer.begin_bucket(b"b").unwrap();
    assert!(matches!(writer.begin_bucket(b"c"), Err(Error::Misuse(_))));
    assert!(matches!(writer.put(b"", b"v"), Err(Error::EmptyKey)));
    assert!(matches!(
        writer.put(&vec![1; MAX_KEY_SIZE + 1], b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    writer.put(b"k2", b"v").unwrap();
    assert!(matches!(
        writer.put(b"k2", b"v"),
        Err(Error::OutOfOrder { .. })
    ));
    assert!(matches!(
        writer.put(b"k1", b"v"),
        Err(Error::OutOfOrder { .. })
    ));
    writer.put(b"k3", b"v").unwrap();
    writer.end_bucket().unwrap();
    assert!(matches!(writer.end_bucket(), Err(Error::Misuse(_))));
    assert!(matches!(
        writer.begin_bucket(b"a"),
        Err(Error::OutOfOrder { .. })
    ));
    assert!(matches!(
        writer.begin_bucket(b"b"),
        Err(Error::OutOfOrder { .. })
    ));
    writer.begin_bucket(b"c").unwrap();
    writer.end_bucket().unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    // The refused calls changed nothing.
    let db = Db::open(&bytes[..]).unwrap();
    let keys: Vec<_> = db
        .bucket(b"b")
        .unwrap()
        .unwrap()
        .entries()
        .map(|e| e.unwrap().key)
        .collect();
    assert_eq!(keys, [b"k2".to_vec(), b"k3".to_vec()]);
    assert!(matches!(
        Writer::with_options(Cursor::new(Vec::new()), WriterOptions { page_size: 1000 }),
        Err(Error::InvalidPageSize(1000))
    ));
    let mut open = Writer::new(Cursor::new(Vec::new())).unwrap();
    open.begin_bucket(b"x").unwrap();
    assert!(matches!(open.finish(), Err(Error::Misuse(_))));
}
