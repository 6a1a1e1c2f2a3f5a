//! An in-process benchmark of the v2 store's hot operations, to compare
//! builds of the store with each other on one machine (not with etcd:
//! `ferret-bench` does that over HTTP).
//!
//! ```text
//! cargo run --release -p ferret-v2store --example store_bench [-- --keys N --hot N --ops N --reps N]
//! ```
//!
//! Phases, each the best of `--reps` runs:
//! - `set` overwrites random keys of a store of `--hot` keys, `get` reads
//!   random keys of it (`--ops` each);
//! - `load` sets `--keys` new keys of 256 bytes in key order into one
//!   directory (as `ferret-bench put --sequential-keys` does) and reports
//!   how much the process grew;
//! - on that store: `frozen` is the time to take a [`FrozenStore`], what the
//!   Raft loop waits for; `encode` encodes it (on another thread in the
//!   server); `snapshot` is `Store::snapshot`, both at once; `restore` is
//!   `Store::from_snapshot`;
//! - `set, view held` overwrites `--ops / 10` random keys of the big store
//!   while a frozen view is alive, so that each write copies the nodes on
//!   its path the first time; `set, no view` the same keys without one;
//! - `loop` plays the Raft loop: `--ops / 10` random overwrites, with a
//!   snapshot started before the first, taken with `frozen` and encoded on
//!   a thread; it reports how long writes waited (the first one waits for
//!   the view), longest and percentiles.
//!
//! Memory is read from `/proc/self/status` (VmRSS, and VmHWM, the peak).
//! Each phase is a function of its own, so that
//! `valgrind --tool=callgrind` with `callgrind_annotate --inclusive=yes`
//! gives instruction counts per phase.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ferret_v2store::{FrozenStore, Store, TtlOptions};

const NOW_NS: i64 = 1_700_000_000_000_000_000;
const VALUE_BYTES: usize = 256;
const PERM: TtlOptions = TtlOptions {
    expire_ns: None,
    refresh: false,
};

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
            "--keys" => a.keys = v.max(1),
            "--hot" => a.hot = v.max(1),
            "--ops" => a.ops = v.max(10),
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

    /// `n` random numbers below `below`.
    fn picks(&mut self, n: usize, below: usize) -> Vec<usize> {
        (0..n)
            .map(|_| (self.next() % below as u64) as usize)
            .collect()
    }
}

/// `/1/bench/` and an 8-digit key number.
fn key(n: usize) -> Vec<u8> {
    format!("/1/bench/{n:08}").into_bytes()
}

/// The keys of `0..n`, precomputed so that formatting is not timed.
fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(key).collect()
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

/// Runs `f` `reps` times and returns the best time divided by `ops`, in ns.
fn best_ns(reps: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    best
}

#[inline(never)]
fn phase_set(s: &mut Store, keys: &[Vec<u8>], picks: &[usize], value: &[u8]) {
    for &i in picks {
        black_box(s.set(&keys[i], false, value, PERM, NOW_NS).unwrap());
    }
}

#[inline(never)]
fn phase_get(s: &Store, keys: &[Vec<u8>], picks: &[usize]) {
    for &i in picks {
        black_box(s.get(&keys[i], false, NOW_NS).unwrap());
    }
}

#[inline(never)]
fn phase_load(s: &mut Store, keys: &[Vec<u8>], value: &[u8]) {
    for k in keys {
        black_box(s.set(k, false, value, PERM, NOW_NS).unwrap());
    }
}

#[inline(never)]
fn phase_frozen(s: &Store) -> FrozenStore {
    s.frozen()
}

#[inline(never)]
fn phase_encode(f: &FrozenStore) -> Vec<u8> {
    f.encode()
}

#[inline(never)]
fn phase_snapshot(s: &Store) -> Vec<u8> {
    s.snapshot()
}

#[inline(never)]
fn phase_restore(bytes: &[u8]) -> Store {
    Store::from_snapshot(bytes).unwrap()
}

/// Overwrites while an encoder thread works on a view taken just before:
/// each write's time (the first one includes taking the view), sorted, and
/// the encoder's time.
#[inline(never)]
fn phase_loop(
    s: &mut Store,
    keys: &[Vec<u8>],
    picks: &[usize],
    value: &[u8],
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let view = s.frozen();
    let encoder = std::thread::spawn(move || {
        let t = Instant::now();
        black_box(view.encode());
        t.elapsed()
    });
    let mut waits = Vec::with_capacity(picks.len());
    let mut t = started;
    for &i in picks {
        black_box(s.set(&keys[i], false, value, PERM, NOW_NS).unwrap());
        let now = Instant::now();
        waits.push(now - t);
        t = now;
    }
    waits.sort();
    (waits, encoder.join().unwrap())
}

fn main() {
    let a = parse_args();
    let value = vec![b'v'; VALUE_BYTES];
    let mut rng = Rng(1);

    // ----- set and get on `hot` keys -------------------------------------
    let hot_keys = keys(a.hot);
    let mut s = Store::new(&["/0", "/1"]);
    phase_load(&mut s, &hot_keys, &value);
    let picks = rng.picks(a.ops, a.hot);
    let set_ns = best_ns(a.reps, a.ops, || {
        phase_set(&mut s, &hot_keys, &picks, &value)
    });
    let get_ns = best_ns(a.reps, a.ops, || phase_get(&s, &hot_keys, &picks));
    println!(
        "set             {set_ns:8.0} ns/op  ({} random overwrites of {} keys)",
        a.ops, a.hot
    );
    println!(
        "get             {get_ns:8.0} ns/op  ({} random reads of {} keys)",
        a.ops, a.hot
    );
    drop((s, hot_keys, picks));

    // ----- load `keys` keys ----------------------------------------------
    let big_keys = keys(a.keys);
    let rss_before = rss_mib();
    let mut s = Store::new(&["/0", "/1"]);
    let load_ns = best_ns(1, a.keys, || phase_load(&mut s, &big_keys, &value));
    println!(
        "load            {load_ns:8.0} ns/op  ({} new keys of {VALUE_BYTES} B in key order; process grew {:.1} MiB)",
        a.keys,
        rss_mib() - rss_before
    );

    // ----- frozen view, encode, snapshot, restore -------------------------
    let frozen_ns = best_ns(a.reps, 1, || drop(black_box(phase_frozen(&s))));
    let view = phase_frozen(&s);
    let mut bytes = Vec::new();
    let encode_ns = best_ns(a.reps, 1, || bytes = phase_encode(&view));
    drop(view);
    let snapshot_ns = best_ns(a.reps, 1, || bytes = phase_snapshot(&s));
    println!("frozen          {:8.3} ms", frozen_ns / 1e6);
    println!(
        "encode          {:8.1} ms  ({:.1} MiB)",
        encode_ns / 1e6,
        bytes.len() as f64 / (1024.0 * 1024.0)
    );
    println!("snapshot        {:8.1} ms", snapshot_ns / 1e6);
    let restore_ns = best_ns(a.reps, 1, || drop(black_box(phase_restore(&bytes))));
    println!("restore         {:8.1} ms", restore_ns / 1e6);
    drop(bytes);

    // ----- writes while a view is held -------------------------------------
    let n = a.ops / 10;
    let picks = rng.picks(n, a.keys);
    let view = phase_frozen(&s);
    let held_ns = best_ns(1, n, || phase_set(&mut s, &big_keys, &picks, &value));
    drop(view);
    let free_ns = best_ns(1, n, || phase_set(&mut s, &big_keys, &picks, &value));
    println!(
        "set, view held  {held_ns:8.0} ns/op  ({n} random overwrites of {} keys)",
        a.keys
    );
    println!("set, no view    {free_ns:8.0} ns/op  (the same overwrites again)");

    // ----- the Raft loop's view of a snapshot --------------------------------
    let picks = rng.picks(n, a.keys);
    let (waits, encoder) = phase_loop(&mut s, &big_keys, &picks, &value);
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "loop            {:8.3} ms longest write of {n} while a snapshot was taken; p50 {:.4} p99 {:.4} p99.9 {:.3} ms; {} over 1 ms (encoder thread: {:.1} ms)",
        at(1.0),
        at(0.5),
        at(0.99),
        at(0.999),
        waits.iter().filter(|w| w.as_secs_f64() > 1e-3).count(),
        encoder.as_secs_f64() * 1e3
    );
    println!("peak RSS        {:8.1} MiB (VmHWM)", hwm_mib());
}
