//! Times a snapshot and a restore of a store holding a million keys.
//!
//! `cargo run --release -p ferret-store --example snapshot_1m [keys]`
//!
//! The keys are spread over 1000 directories under `/1`, with 40-byte
//! values; one in ten has a TTL, so the TTL index is rebuilt too.

use std::time::Instant;

use ferret_store::{Store, TtlOptions};

const NOW: i64 = 1_700_000_000_000_000_000;

fn main() {
    let keys: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of keys"))
        .unwrap_or(1_000_000);

    let t = Instant::now();
    let mut s = Store::new(&["/0", "/1"]);
    let mut path = Vec::with_capacity(64);
    for i in 0..keys {
        path.clear();
        path.extend_from_slice(format!("/1/dir{:04}/key{:08}", i % 1000, i).as_bytes());
        let value = format!("value-{i:034}");
        let ttl = TtlOptions {
            expire_ns: (i % 10 == 0).then_some(NOW + (i as i64 + 1) * 1_000_000_000),
            refresh: false,
        };
        s.set(&path, false, value.as_bytes(), ttl, NOW)
            .expect("set");
    }
    println!("built {keys} keys in {:.3} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let bytes = s.snapshot();
    let encode = t.elapsed();

    let t = Instant::now();
    let restored = Store::from_snapshot(&bytes).expect("decode");
    let decode = t.elapsed();

    let t = Instant::now();
    let mut live = Store::new(&["/0", "/1"]);
    live.restore_in_place(&bytes).expect("restore in place");
    let in_place = t.elapsed();

    println!(
        "snapshot: {} bytes ({:.1} MB, {:.1} bytes/key)",
        bytes.len(),
        bytes.len() as f64 / 1e6,
        bytes.len() as f64 / keys as f64
    );
    println!("encode:           {:.3} s", encode.as_secs_f64());
    println!("decode:           {:.3} s", decode.as_secs_f64());
    println!("restore_in_place: {:.3} s", in_place.as_secs_f64());

    assert_eq!(restored.index(), s.index());
    assert_eq!(restored.next_expiry_ns(), s.next_expiry_ns());
    assert!(
        restored.snapshot() == bytes,
        "the restored store re-encodes the same"
    );
    assert!(live.snapshot() == bytes);

    let t = Instant::now();
    drop(restored);
    println!("drop:             {:.3} s", t.elapsed().as_secs_f64());
}
