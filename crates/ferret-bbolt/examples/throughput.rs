//! Measures the writer (and the reader) on an etcd-like key bucket:
//! `cargo run --release -p ferret-bbolt --example throughput -- [MiB] [value bytes]`
//! (default 200 MiB of 256-byte values under 17-byte revision keys).

use std::time::Instant;

use ferret_bbolt::{append_sha256, Db, FileSource, Writer};

fn main() -> Result<(), ferret_bbolt::Error> {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let total_mib = args.next().unwrap_or(200);
    let value_len = args.next().unwrap_or(256);
    let entry_bytes = 17 + value_len;
    let entries = (total_mib << 20) / entry_bytes;
    let value: Vec<u8> = (0..value_len).map(|i| (i * 31 % 251) as u8).collect();

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("throughput.db");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;

    let started = Instant::now();
    let mut writer = Writer::new(file)?;
    writer.begin_bucket(b"key")?;
    let mut key = [0u8; 17];
    key[8] = b'_';
    for revision in 0..entries as u64 {
        key[..8].copy_from_slice(&revision.to_be_bytes());
        writer.put(&key, &value)?;
    }
    writer.end_bucket()?;
    let mut file = writer.finish()?;
    let write_secs = started.elapsed().as_secs_f64();
    let file_bytes = file.metadata()?.len();

    let started = Instant::now();
    append_sha256(&mut file)?;
    let hash_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let db = Db::open(FileSource::with_len(file, file_bytes))?;
    let mut read = 0usize;
    for entry in db.bucket(b"key")?.expect("written").entries() {
        read += entry?.value.len();
    }
    let read_secs = started.elapsed().as_secs_f64();
    assert_eq!(read, entries * value_len);

    let mib = |bytes: u64, secs: f64| bytes as f64 / (1 << 20) as f64 / secs;
    let data_bytes = (entries * entry_bytes) as u64;
    println!(
        "{entries} entries, {:.0} MiB of keys and values, file {:.0} MiB",
        data_bytes as f64 / (1 << 20) as f64,
        file_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "write {write_secs:.2} s: {:.0} MiB/s of data, {:.0} MiB/s of file",
        mib(data_bytes, write_secs),
        mib(file_bytes, write_secs)
    );
    println!(
        "sha256 trailer {hash_secs:.2} s: {:.0} MiB/s",
        mib(file_bytes, hash_secs)
    );
    println!(
        "read back {read_secs:.2} s: {:.0} MiB/s of data",
        mib(data_bytes, read_secs)
    );
    Ok(())
}
