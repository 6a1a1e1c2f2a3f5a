//! An in-process benchmark of the v2 store's hot operations, to compare
//! builds of the store with each other on one machine (not with etcd:
//! `ferret-bench` does that over HTTP).
//!
//! ```text
//! cargo run --release -p ferret-store --example store_bench [-- --keys N --hot N --ops N --reps N]
//! ```
//!
//! Phases, each reported in ns per operation (the best of `--reps` runs):
//! `set` overwrites random keys of a store of `--hot` keys, `get` reads
//! random keys of it; `load` sets `--keys` new keys of 256 bytes in key
//! order into one directory (as `ferret-bench put --sequential-keys` does),
//! and reports how much the process grew; `snapshot` encodes that store and
//! `restore` decodes it. Memory is read from `/proc/self/status` (VmRSS,
//! and VmHWM, the peak).

use std::hint::black_box;
use std::time::Instant;

use ferret_store::{Store, TtlOptions};

const NOW_NS: i64 = 1_700_000_000_000_000_000;
const VALUE_BYTES: usize = 256;

struct Args {
    keys: usize,
    hot: usize,
    ops: usize,
    reps: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        keys: 1_000_000,
        hot: 100_000,
        ops: 1_000_000,
        reps: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--keys" => a.keys = v,
            "--hot" => a.hot = v,
            "--ops" => a.ops = v,
            "--reps" => a.reps = v.max(1),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// splitmix64: a fixed sequence of random numbers, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `/1/bench/` and an 8-digit key number, written into `buf`.
fn key(buf: &mut Vec<u8>, n: usize) -> &[u8] {
    buf.clear();
    buf.extend_from_slice(b"/1/bench/");
    buf.extend_from_slice(format!("{n:08}").as_bytes());
    buf
}

/// The keys of `0..n`, precomputed so that formatting is not timed.
fn keys(n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    (0..n).map(|i| key(&mut buf, i).to_vec()).collect()
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    status_kib("VmRSS:") as f64 / 1024.0
}

fn hwm_mib() -> f64 {
    status_kib("VmHWM:") as f64 / 1024.0
}

/// Runs `f` `reps` times and returns the best time in ns, divided by `ops`.
fn best_ns_per_op(reps: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    best
}

fn main() {
    let a = parse_args();
    let value = vec![b'v'; VALUE_BYTES];
    let perm = TtlOptions::default();

    // ----- hot set and get on `hot` keys --------------------------------
    let hot_keys = keys(a.hot);
    let mut s = Store::new(&["/0", "/1"]);
    for k in &hot_keys {
        s.set(k, false, &value, perm, NOW_NS).unwrap();
    }
    let mut rng = Rng(1);
    let picks: Vec<usize> = (0..a.ops).map(|_| rng.below(a.hot)).collect();
    let set_ns = best_ns_per_op(a.reps, a.ops, || {
        for &i in &picks {
            black_box(s.set(&hot_keys[i], false, &value, perm, NOW_NS).unwrap());
        }
    });
    let get_ns = best_ns_per_op(a.reps, a.ops, || {
        for &i in &picks {
            black_box(s.get(&hot_keys[i], false, NOW_NS).unwrap());
        }
    });
    println!(
        "set   {set_ns:8.0} ns/op  ({} random overwrites of {} keys)",
        a.ops, a.hot
    );
    println!(
        "get   {get_ns:8.0} ns/op  ({} random reads of {} keys)",
        a.ops, a.hot
    );
    drop(s);
    drop(hot_keys);
    drop(picks);

    // ----- load `keys` keys, snapshot and restore -------------------------
    let mut buf = Vec::new();
    let rss_before = rss_mib();
    let mut s = Store::new(&["/0", "/1"]);
    let t = Instant::now();
    for i in 0..a.keys {
        s.set(key(&mut buf, i), false, &value, perm, NOW_NS)
            .unwrap();
    }
    let load_ns = t.elapsed().as_nanos() as f64 / a.keys as f64;
    let store_mib = rss_mib() - rss_before;
    println!(
        "load  {load_ns:8.0} ns/op  ({} new keys of {VALUE_BYTES} B in key order; process grew {store_mib:.1} MiB)",
        a.keys
    );

    let mut bytes = Vec::new();
    let snap_ns = best_ns_per_op(a.reps, 1, || bytes = black_box(s.snapshot()));
    println!(
        "snapshot {:8.1} ms  (Store::snapshot, {:.1} MiB)",
        snap_ns / 1e6,
        bytes.len() as f64 / (1024.0 * 1024.0)
    );
    drop(s);

    let restore_ns = best_ns_per_op(a.reps, 1, || {
        black_box(Store::from_snapshot(&bytes).unwrap());
    });
    println!(
        "restore  {:8.1} ms  (Store::from_snapshot)",
        restore_ns / 1e6
    );
    println!("peak RSS {:8.1} MiB (VmHWM)", hwm_mib());
}
