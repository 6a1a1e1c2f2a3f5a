//! The fault-injection suite, short and with fixed seeds, as CI runs it:
//! against ferretcd, against etcd 3.4 as a control that the checks are fair,
//! and against ferretcd with planted bugs that the checks must catch (stale
//! quorum reads through v2 and through v3; a start on a corrupted WAL), and
//! with serializable v3 reads, which the checker must reject as stale.
//!
//! Every run has all workloads (v2 and v3) at once unless it says
//! otherwise. Partitions run in a test of their own (seed 4), and so do
//! membership changes (seed 4 too). With the
//! default faults (kill, pause, wal, disk), seed 1 schedules a WAL bit flip
//! and seed 2 a torn WAL tail; both fill one member's disk where a tmpfs can
//! be mounted (as root; CI runs as root). The etcd control runs seed 1
//! (seed 2 under `--ignored`). The whole file takes about three minutes.
//!
//! Longer runs are behind `--ignored`: `soak` runs more seeds, longer, on
//! both servers (`FERRET_JEPSEN_SEEDS`, `FERRET_JEPSEN_DURATION`).
//!
//! The runs are serialised (one cluster at a time): they measure the
//! servers, not a contended machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const JEPSEN: &str = env!("CARGO_BIN_EXE_ferret-jepsen");
/// Seconds of workload per seed. 23 s is the shortest that keeps both
/// seeds' schedules whole: seed 1's WAL bit flip ends at 21.3 s (the fault
/// at 18.1 s held 1.2 s, plus 2 s of quiet) and seed 2's last fault at
/// 22.4 s; dropping a slot would also move the full-disk slot, which
/// replaces one drawn fault (at 20 s seed 2 loses its torn tail).
const DURATION_S: &str = "23";
const SEEDS: [u64; 2] = [1, 2];
/// The etcd control runs seed 1 by default (its job is to show the checks
/// are fair to a correct server); `etcd_passes_the_same_checks_seed_2`
/// (`--ignored`) runs the other.
const ETCD_SEEDS: [u64; 1] = [1];

/// The ferretcd binary next to `ferret-jepsen`, built if missing (when
/// only this package's tests were asked for).
fn ferretcd() -> PathBuf {
    ferret_testkit::bin::ferretcd()
}

/// Runs the suite; returns (exit code, stdout followed by stderr). The
/// progress lines and any reason for an early exit (a cluster that did not
/// start) go to stderr, so a failing assertion shows them too.
fn run(server: &[&str], extra: &[&str], env: &[(&str, &str)], seed: u64) -> (i32, String) {
    let mut cmd = Command::new(JEPSEN);
    cmd.args(server)
        .args(["--seed", &seed.to_string(), "--duration", DURATION_S])
        .args(extra)
        .env_remove("FERRETCD_UNSAFE_LOCAL_QUORUM_READS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ferret-jepsen");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str("--- stderr ---\n");
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    (out.status.code().unwrap_or(-1), text)
}

/// The lines that say the v3 checks ran (`ferret-jepsen`'s report).
const V3_CHECKS: [&str; 4] = [
    "v3 registers: linearizability of 3 keys",
    "v3 set: ",
    "v3 watch: 3 watchers",
    "v3 leases: ",
];

fn assert_v3_checked(seed: u64, out: &str) {
    for line in V3_CHECKS {
        assert!(out.contains(line), "seed {seed}: no {line:?}:\n{out}");
    }
}

#[test]
fn ferretcd_survives_kills_pauses_and_disk_faults() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let mut all = String::new();
    for seed in SEEDS {
        let (code, out) = run(&["--binary", bin.to_str().unwrap()], &[], &[], seed);
        assert!(
            out.contains("RESULT violations=0"),
            "seed {seed}: violations:\n{out}"
        );
        assert_eq!(code, 0, "seed {seed}");
        assert!(
            out.contains("  FullDisk ") || out.contains("full-disk fault skipped: "),
            "seed {seed}: no full-disk fault:\n{out}"
        );
        assert_v3_checked(seed, &out);
        all += &out;
    }
    for kind in ["WalTornTail", "WalBitFlip"] {
        assert!(
            all.contains(&format!("  {kind} ")),
            "no {kind} in either seed"
        );
    }
}

#[test]
fn etcd_passes_the_same_checks() {
    etcd_control(&ETCD_SEEDS);
}

/// The etcd control on seed 2 too (as the default run did before it was
/// cut to seed 1 for time): `cargo test --release -p ferret-jepsen --
/// --ignored`.
#[test]
#[ignore = "a minute: run with --ignored"]
fn etcd_passes_the_same_checks_seed_2() {
    etcd_control(&[2]);
}

fn etcd_control(seeds: &[u64]) {
    let etcd = Path::new("/usr/bin/etcd");
    if !etcd.exists() {
        if std::env::var_os("CI").is_some() {
            panic!("/usr/bin/etcd is missing, and CI needs the etcd control run");
        }
        eprintln!("\n!!!!!!!! SKIPPED: /usr/bin/etcd is missing: no etcd control run !!!!!!!!\n");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for &seed in seeds {
        let (code, out) = run(&["--etcd", "/usr/bin/etcd"], &[], &[], seed);
        assert!(out.contains("wal fault disabled on etcd"), "{out}");
        assert!(
            out.contains("RESULT violations=0"),
            "seed {seed}: violations:\n{out}"
        );
        assert_eq!(code, 0, "seed {seed}");
        assert_v3_checked(seed, &out);
    }
}

/// With the read barrier switched off, quorum reads are served from a
/// member's local state: a lagging follower, or a paused old leader that
/// has not yet heard of its successor, answers stale values.
#[test]
fn the_checker_catches_stale_quorum_reads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let (code, out) = run(
        &["--binary", bin.to_str().unwrap()],
        &["--faults", "pause", "--duration", "12", "--workloads", "v2"],
        &[("FERRETCD_UNSAFE_LOCAL_QUORUM_READS", "1")],
        7,
    );
    assert!(
        out.contains("VIOLATION linearizability violation"),
        "the planted bug was not caught:\n{out}"
    );
    assert_eq!(code, 1);
}

/// The same planted bug through v3: a linearizable `Range` takes the same
/// read barrier, which the switch turns off.
#[test]
fn the_checker_catches_stale_linearizable_v3_ranges() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let (code, out) = run(
        &["--binary", bin.to_str().unwrap()],
        &[
            "--faults",
            "pause",
            "--duration",
            "12",
            "--workloads",
            "v3-registers",
        ],
        &[("FERRETCD_UNSAFE_LOCAL_QUORUM_READS", "1")],
        7,
    );
    assert!(
        out.contains("VIOLATION v3 linearizability violation"),
        "the planted bug was not caught through v3:\n{out}"
    );
    assert_eq!(code, 1);
}

/// The control for the v3 register check: serializable ranges are served
/// from the member's own state, which lags (a follower by a heartbeat, a
/// member cut off by a partition by seconds); the checker must not accept
/// what they return as linearizable.
#[test]
fn the_checker_rejects_stale_serializable_v3_ranges() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let (code, out) = run(
        &["--binary", bin.to_str().unwrap()],
        &[
            "--faults",
            "partition",
            "--duration",
            "8",
            "--workloads",
            "v3-registers",
            "--v3-reads",
            "serializable",
        ],
        &[],
        4,
    );
    assert!(
        out.contains("(stale reads caught)")
            && out.contains("VIOLATION v3 linearizability violation"),
        "stale serializable reads were accepted:\n{out}"
    );
    assert_eq!(code, 1);
}

/// A server that starts on WAL damage: at its first restart this wrapper
/// drops the body of the last segment (as a WAL that "repairs" any damage
/// by truncating would), so the start after the bit flip succeeds; later
/// starts are left alone, so the restored member rejoins. The suite must
/// report the silent start. Seed 3 schedules one `Wal (bit flip)` in 8 s.
#[test]
fn the_suite_catches_a_silent_start_on_a_corrupted_wal() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    // Removed on drop, also when an assertion fails.
    let dir = ferret_testkit::dir::TempDir::new("ferret-jepsen-lenient");
    let wrapper = dir.path().join("lenient-ferretcd");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/sh
prev=; for a in "$@"; do [ "$prev" = --data-dir ] && dd=$a; prev=$a; done
seg=$(ls "$dd"/member/wal/*.wal 2>/dev/null | tail -n 1)
if [ -n "$seg" ] && [ ! -e "$dd.lenient" ]; then
    touch "$dd.lenient"
    pre=$(od -An -t u8 -j 37 -N 8 "$seg" | tr -d ' ')
    truncate -s "$pre" "$seg"
fi
exec {} "$@"
"#,
            bin.display()
        ),
    )
    .unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&wrapper, mode).unwrap();
    let (code, out) = run(
        &["--binary", wrapper.to_str().unwrap()],
        &["--faults", "wal", "--duration", "8"],
        &[],
        3,
    );
    drop(dir);
    // The lenient start loses acknowledged entries. Whether raft-rs then
    // panics (and ferretcd exits 1 without naming the damage) or the
    // member lingers as a silent start depends on timing; the suite must
    // report the WalBitFlip violation either way.
    assert!(
        out.contains("Wal (bit flip)")
            && (out.contains("VIOLATION WalBitFlip: SILENT START")
                || out.contains("VIOLATION WalBitFlip: m")),
        "the start on a corrupted WAL was not reported:\n{out}"
    );
    assert_eq!(code, 1);
}

/// Network partitions of the peer links (isolate the leader, a minority
/// split, one-way loss), short: the checks must hold through them and the
/// members converge after healing.
#[test]
fn ferretcd_survives_partitions() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let (code, out) = run(
        &["--binary", bin.to_str().unwrap()],
        &["--faults", "partition", "--duration", "12"],
        &[],
        4,
    );
    assert!(
        out.contains("IsolateLeader") || out.contains("SplitRandom") || out.contains("OneWayLoss"),
        "no partition was injected:\n{out}"
    );
    assert!(out.contains("violations: 0"), "violations:\n{out}");
    assert_eq!(code, 0, "partition run failed:\n{out}");
    assert_v3_checked(4, &out);
}

/// Membership changes: two members replaced as if their disks died
/// (removed, wiped, added back as learners, started empty to join,
/// promoted), one with a partition of another member held after the
/// removal and one with a kill of another member while the new learner
/// catches up (seed 4 draws both, and the leader as the target of both).
/// The checks must hold and every member must end up listing the run's
/// members, all voting.
#[test]
fn ferretcd_survives_membership_changes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let bin = ferretcd();
    let (code, out) = run(
        &["--binary", bin.to_str().unwrap()],
        &["--faults", "member", "--duration", "12"],
        &[],
        4,
    );
    for line in ["  Replace+Isolate ", "  Replace+Kill ", "promoted m"] {
        assert!(out.contains(line), "no {line:?}:\n{out}");
    }
    assert!(out.contains("RESULT violations=0"), "violations:\n{out}");
    assert_eq!(code, 0, "membership run failed:\n{out}");
    assert_v3_checked(4, &out);
}

/// Longer runs, all workloads and every fault, on ferretcd and (when
/// installed) etcd: `cargo test --release -p ferret-jepsen -- --ignored`.
/// `FERRET_JEPSEN_SEEDS` (a comma-separated list; default 11..=16) and
/// `FERRET_JEPSEN_DURATION` (seconds; default 60) size it.
#[test]
#[ignore = "minutes per seed: run with --ignored"]
fn soak() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let seeds: Vec<u64> = std::env::var("FERRET_JEPSEN_SEEDS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("a seed"))
                .collect()
        })
        .unwrap_or_else(|| (11..=16).collect());
    let duration = std::env::var("FERRET_JEPSEN_DURATION").unwrap_or_else(|_| "60".into());
    let bin = ferretcd();
    let mut servers = vec![vec!["--binary".to_string(), bin.display().to_string()]];
    if Path::new("/usr/bin/etcd").exists() {
        servers.push(vec!["--etcd".into(), "/usr/bin/etcd".into()]);
    }
    let mut failed = Vec::new();
    for server in &servers {
        let server: Vec<&str> = server.iter().map(String::as_str).collect();
        // Not `member` on etcd 3.4: after a partition heals it may refuse
        // every reconfiguration as "unhealthy cluster" for good (see
        // ferret-jepsen's `membership`).
        let faults = match server[0] {
            "--etcd" => "kill,pause,partition,wal,disk",
            _ => "kill,pause,partition,wal,disk,member",
        };
        for &seed in &seeds {
            let extra = ["--faults", faults, "--duration", &duration];
            let (code, out) = run(&server, &extra, &[], seed);
            if code != 0 || !out.contains("RESULT violations=0") {
                failed.push(format!("{} seed {seed}", server[1]));
            }
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}
