//! etcd used the way kube-apiserver uses it, on a 3-member cluster whose
//! members are killed (SIGKILL) and restarted, one at a time, all along:
//! **no acknowledged update may be lost, and no watch may have a gap**.
//!
//! The clients (tests/k8s/, all over etcd's gRPC API with failover across
//! the three members):
//!
//! - 4 writers: Create (`create_revision == 0`), GuaranteedUpdate
//!   (read, then a Txn guarded by `mod_revision`, retried from the Else
//!   branch's read on a conflict) and guarded Delete of 24 objects under
//!   `/registry/{pods,configmaps,services}/<ns>/<name>`, shared between
//!   writers; every value unique, with a per-object counter;
//! - 2 listers: paginated Ranges (`limit`, then the first page's revision
//!   from the last key + "\0"), checked page by page and against one Range
//!   at that revision;
//! - 6 reflectors: two of every key, one per resource prefix; list, then
//!   watch from the list's revision + 1 with `prev_kv` and
//!   `progress_notify`, resuming from the last revision + 1 after a stream
//!   error, listing again after a compaction;
//! - Events: leases with TTLs of 2-5 s, one or two keys each; half of them
//!   kept alive (at most 5 at once), the others left to expire;
//! - kube-apiserver's compactor, every few seconds, at the revision of the
//!   previous round.
//!
//! At the end (members all up, writers stopped): the leases left to expire
//! have their keys removed, a fence key is written under each prefix and
//! every reflector must receive it, every member must hold the same data,
//! and `k8s/check.rs` checks the whole history (its module docs list the
//! checks).
//!
//! Against: ferretcd (the default) or etcd 3.4 (`FERRET_DIFF_TARGET=etcd`,
//! which validates the test). Both run with
//! `--experimental-watch-progress-notify-interval=1s` when the binary
//! accepts it (a start is tried first; a refusal is reported and the run
//! goes on without).
//!
//! Knobs: `FERRET_K8S_SECS` (seconds of faults and load, 45 by default),
//! `FERRET_K8S_SEED` (the schedule's seed, printed; random by default),
//! `FERRET_K8S_COMPACT_SECS` (compaction interval, 4),
//! `FERRET_K8S_SNAPSHOT_COUNT` (`--snapshot-count` of every member; the
//! servers' default otherwise, which a run of the default length does not
//! reach). A report is written to `target/tmp/k8s_style-<target>.txt`, and
//! printed on failure.

mod k8s;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferret_proto::etcdserverpb::{PutRequest, RangeRequest};
use ferret_proto::mvccpb::KeyValue;
use ferret_testkit::cluster::{Cluster, Options};
use ferret_testkit::server::{Server, Spec};
use tokio::sync::watch;

use ferretcd::api::v3::concurrency::prefix_end;
use k8s::client::{call, range, Cursor, Pool, FAILOVER_PAUSE};
use k8s::history::{in_range, object_value, show, Op, OpKind, Outcome, Recorder};
use k8s::list::{first_difference, Span};
use k8s::rng::Rng;
use k8s::watch::{Reflector, WatchLog};

const KINDS: [&str; 3] = ["pods", "configmaps", "services"];
const NAMESPACES: [&str; 2] = ["default", "kube-system"];
const NAMES_PER_NAMESPACE: usize = 4;
const WRITERS: usize = 4;
const LISTERS: usize = 2;

/// The flag kube-apiserver's watch-cache bookmarks depend on, at a short
/// interval (etcd's minimum is 100 ms).
const PROGRESS_FLAG: &str = "--experimental-watch-progress-notify-interval=1s";

/// How long the end of the run waits for something that must happen
/// (a watcher to reach the fence, an expired lease's keys to go).
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

struct Config {
    label: &'static str,
    binary: PathBuf,
    secs: u64,
    seed: u64,
    compact_every: Duration,
    snapshot_count: Option<u64>,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: not a number: {e}")),
    )
}

impl Config {
    fn from_env() -> Config {
        let (label, binary) = match std::env::var("FERRET_DIFF_TARGET").as_deref() {
            Ok("etcd") => (
                "etcd",
                ferret_testkit::bin::find_etcd().expect(
                    "FERRET_DIFF_TARGET=etcd, but no etcd (set ETCD_BIN or install etcd-server)",
                ),
            ),
            Ok("ferretcd") | Err(_) => ("ferretcd", PathBuf::from(env!("CARGO_BIN_EXE_ferretcd"))),
            Ok(other) => panic!("FERRET_DIFF_TARGET must be `etcd` or `ferretcd`, not {other:?}"),
        };
        let seed = env_u64("FERRET_K8S_SEED").unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Config {
            label,
            binary,
            secs: env_u64("FERRET_K8S_SECS").unwrap_or(45),
            seed,
            compact_every: Duration::from_secs(env_u64("FERRET_K8S_COMPACT_SECS").unwrap_or(4)),
            snapshot_count: env_u64("FERRET_K8S_SNAPSHOT_COUNT"),
        }
    }
}

/// Whether `binary` starts with `flag` (a one-member cluster, stopped at
/// once): `Err` with its last log lines when it refuses it.
fn accepts_flag(binary: &Path, flag: &str) -> Result<(), String> {
    let ports = ferret_testkit::ports::free_ports(2);
    let mut s = Server::spawn(&Spec {
        label: "probe",
        binary,
        name: "probe",
        client: SocketAddr::from(([127, 0, 0, 1], ports[0])),
        peer: SocketAddr::from(([127, 0, 0, 1], ports[1])),
        initial_cluster: None,
        extra: &[flag],
    })?;
    s.wait_healthy(Duration::from_secs(30))
        .map_err(|_| s.log_tail(3))
}

fn runtime() -> tokio::runtime::Runtime {
    // The machine's two cores are shared with the three servers.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn span(name: &str, key: &[u8], range_end: &[u8]) -> Span {
    Span {
        name: name.into(),
        key: Bytes::copy_from_slice(key),
        range_end: Bytes::copy_from_slice(range_end),
    }
}

fn prefix_span(prefix: &str) -> Span {
    span(prefix, prefix.as_bytes(), &prefix_end(prefix.as_bytes()))
}

#[test]
fn k8s_style() {
    let cfg = Config::from_env();
    let started = Instant::now();
    let mut report: Vec<String> = vec![format!(
        "k8s_style against {} ({}): seed {} (FERRET_K8S_SEED), {} s of faults and load, \
         compaction every {:?}, snapshot count {}",
        cfg.label,
        cfg.binary.display(),
        cfg.seed,
        cfg.secs,
        cfg.compact_every,
        cfg.snapshot_count
            .map_or("(the server's default)".to_string(), |n| n.to_string())
    )];
    eprintln!("{}", report[0]);
    let mut rng = Rng::new(cfg.seed);

    let extra = match accepts_flag(&cfg.binary, PROGRESS_FLAG) {
        Ok(()) => {
            report.push(format!("{PROGRESS_FLAG}: accepted"));
            vec![PROGRESS_FLAG.to_string()]
        }
        Err(why) => {
            report.push(format!(
                "{PROGRESS_FLAG}: REFUSED by {}, the run goes on without it (no progress \
                 notifications within the run): {why}",
                cfg.label
            ));
            Vec::new()
        }
    };
    eprintln!("{}", report.last().unwrap());
    let mut cluster = Cluster::start(Options {
        binary: cfg.binary.clone(),
        size: 3,
        // etcd's defaults: the machine is shared, shorter timers make
        // elections out of scheduling delays.
        heartbeat_ms: 100,
        election_ms: 1000,
        snapshot_count: cfg.snapshot_count,
        extra,
        peer_tls: false,
        https_client: false,
    });
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cluster.client(i)).collect();
    let rt = runtime();
    // Channels are made (lazily connected) inside the runtime.
    let pool = Arc::new(rt.block_on(async { Pool::new(&addrs) }));
    let rec = Arc::new(Recorder::new());

    let (stop_load_tx, stop_load) = watch::channel(false);
    let (stop_watch_tx, stop_watch) = watch::channel(false);
    let (stop_keep_tx, stop_keep) = watch::channel(false);

    // Reflectors first: their histories start before the first write.
    let mut watch_spans = vec![span("all-0", b"\0", b"\0"), span("all-1", b"\0", b"\0")];
    watch_spans.extend(
        KINDS
            .iter()
            .map(|k| prefix_span(&format!("/registry/{k}/"))),
    );
    watch_spans.push(prefix_span("/registry/events/"));
    let mut reflectors = Vec::new();
    // Two reflectors (one of every key, one of a prefix) go away now and
    // then for longer than the compaction interval.
    let away = cfg.compact_every * 3;
    let disconnect = Some((Duration::from_secs(12), away));
    for (i, s) in watch_spans.iter().enumerate() {
        let max_seen = Arc::new(AtomicI64::new(0));
        let r = Reflector {
            name: s.name.clone(),
            span: s.clone(),
            pool: pool.clone(),
            rec: rec.clone(),
            first_member: i,
            stop: stop_watch.clone(),
            max_seen: max_seen.clone(),
            disconnect: if s.name == "all-1" || s.name == "/registry/services/" {
                disconnect
            } else {
                None
            },
        };
        reflectors.push((s.clone(), max_seen, rt.spawn(r.run())));
    }
    for (s, max_seen, _) in &reflectors {
        let t = Instant::now();
        while max_seen.load(Ordering::SeqCst) == 0 {
            assert!(
                t.elapsed() < SETTLE_LIMIT,
                "reflector {} never listed",
                s.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let objects: Arc<Vec<Bytes>> = Arc::new(
        KINDS
            .iter()
            .flat_map(|k| {
                NAMESPACES.iter().flat_map(move |ns| {
                    (0..NAMES_PER_NAMESPACE)
                        .map(move |n| Bytes::from(format!("/registry/{k}/{ns}/obj-{n}")))
                })
            })
            .collect(),
    );
    let mut load = Vec::new();
    for id in 0..WRITERS {
        let w = k8s::writer::Writer::new(
            id,
            pool.clone(),
            rec.clone(),
            objects.clone(),
            rng.fork(),
            stop_load.clone(),
        );
        load.push(rt.spawn(w.run()));
    }
    let mut list_spans = vec![prefix_span("/registry/"), prefix_span("/registry/events/")];
    list_spans.extend(
        KINDS
            .iter()
            .map(|k| prefix_span(&format!("/registry/{k}/"))),
    );
    for id in 0..LISTERS {
        load.push(rt.spawn(k8s::list::lister(
            id,
            pool.clone(),
            rec.clone(),
            list_spans.clone(),
            rng.fork(),
            stop_load.clone(),
        )));
    }
    load.push(rt.spawn(k8s::lease::granter(
        pool.clone(),
        rec.clone(),
        rng.fork(),
        stop_load.clone(),
    )));
    load.push(rt.spawn(k8s::compactor::compactor(
        pool.clone(),
        rec.clone(),
        cfg.compact_every,
        stop_load.clone(),
    )));
    let keepers: Vec<_> = (0..k8s::lease::KEEPERS)
        .map(|k| {
            rt.spawn(k8s::lease::keeper(
                k,
                pool.clone(),
                rec.clone(),
                stop_keep.clone(),
            ))
        })
        .collect();

    // Faults, on this thread, for the run's length.
    let until = Instant::now() + Duration::from_secs(cfg.secs);
    let faults = k8s::faults::inject(&mut cluster, &mut rng, &rec, until);
    let mut failures: Vec<String> = faults.failures.clone();
    for i in 0..3 {
        if !cluster.members[i].is_running() {
            cluster.restart(i);
        }
        if let Err(e) = cluster.try_wait_ready(i, SETTLE_LIMIT) {
            failures.push(format!("m{i} does not serve at the end: {e}"));
        }
    }
    let load_end_ms = rec.ms();
    stop_load_tx.send_replace(true);
    rt.block_on(async {
        for h in load {
            if tokio::time::timeout(SETTLE_LIMIT, h).await.is_err() {
                failures.push("a client task did not stop within 30 s".into());
            }
        }
    });

    // The leases left to expire must go.
    rt.block_on(wait_expired(&pool, &rec, &mut failures));

    // Fences: every reflector must receive the one under its range.
    let fences = rt.block_on(fences(&pool, &rec));
    for (s, max_seen, _) in &reflectors {
        let want = fences
            .iter()
            .filter(|(k, _)| in_range(k, &s.key, &s.range_end))
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(0);
        let t = Instant::now();
        while max_seen.load(Ordering::SeqCst) < want && t.elapsed() < SETTLE_LIMIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = max_seen.load(Ordering::SeqCst);
        if got < want {
            failures.push(format!(
                "watcher {} is stuck: it knows every event up to revision {got} only, {:?} \
                 after the fence it watches was written at revision {want}",
                s.name, SETTLE_LIMIT
            ));
        }
    }
    stop_keep_tx.send_replace(true);
    stop_watch_tx.send_replace(true);
    let logs: Vec<WatchLog> = rt.block_on(async {
        let mut logs = Vec::new();
        for (_, _, h) in reflectors {
            logs.push(h.await.expect("a reflector panicked"));
        }
        for k in keepers {
            let _ = k.await;
        }
        logs
    });

    // The final state, and every member holding it.
    let (final_rev, finals) = rt.block_on(final_state(&pool, &rec, &mut failures));
    rt.block_on(convergence(&pool, final_rev, &finals, &mut failures));

    let ops = rec.ops();
    let lists = rec.lists.lock().unwrap().clone();
    let leases = rec.leases();
    let outcome = k8s::check::check(&k8s::check::Input {
        ops: &ops,
        logs: &logs,
        lists: &lists,
        leases: &leases,
        finals: &finals,
    });
    failures.extend(rec.failures());
    failures.extend(outcome.failures);

    // The report.
    report.push(format!(
        "load for {load_end_ms} ms; final revision {final_rev}; {} kills:",
        faults.kills.len()
    ));
    report.extend(faults.kills.iter().map(|k| format!("  {k}")));
    let compactions = rec.compactions.lock().unwrap().clone();
    report.push(format!(
        "compactions: {} (last at revision {})",
        compactions.len(),
        compactions.last().map_or(0, |c| c.0)
    ));
    for log in &logs {
        let events: usize = log.segments.iter().map(|s| s.events.len()).sum();
        let progress: usize = log.segments.iter().map(|s| s.progress.len()).sum();
        let resumes: u64 = log.segments.iter().map(|s| s.resumes).sum();
        report.push(format!(
            "watcher {}: {} segments, {events} events, {progress} progress notifications, \
             {resumes} resumes; ends: {:?}",
            log.name,
            log.segments.len(),
            log.segments
                .iter()
                .map(|s| s.end.as_str())
                .collect::<Vec<_>>()
        ));
    }
    for log in &logs {
        for o in log
            .segments
            .iter()
            .flat_map(|s| &s.opens)
            .filter(|o| o.after_away)
        {
            report.push(format!(
                "  {} back after a disconnect at {} ms on m{}: from revision {}, newest \
                 compaction {} (answered at {} ms): {}",
                log.name,
                o.at_ms,
                o.member,
                o.start,
                o.compacted.0,
                o.compacted.1,
                if o.refused_compacted {
                    "refused as compacted".to_string()
                } else {
                    format!("served, {} events", o.events)
                }
            ));
        }
    }
    report.extend(outcome.notes);
    report.push("counts:".into());
    report.extend(rec.counts().iter().map(|(k, v)| format!("  {v:>7}  {k}")));
    report.push(format!(
        "{} failures; took {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    ));
    let text = format!(
        "{}\n{}",
        report.join("\n"),
        failures
            .iter()
            .map(|f| format!("FAILURE {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("k8s_style-{}.txt", cfg.label));
    let _ = std::fs::write(&path, &text);
    // The first two lines were printed at the start.
    eprintln!("{}\n(report: {})", report[2..].join("\n"), path.display());
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(60).collect();
        panic!(
            "k8s_style against {}: {} failures (seed {}); the first:\n{}\n(full report: {})",
            cfg.label,
            failures.len(),
            cfg.seed,
            shown
                .iter()
                .map(|f| format!("- {f}"))
                .collect::<Vec<_>>()
                .join("\n"),
            path.display()
        );
    }
}

/// Polls until the keys of every lease not kept alive are gone (they may
/// take a TTL plus an election longer than the TTL, since a new leader
/// renews every lease).
async fn wait_expired(pool: &Pool, rec: &Recorder, failures: &mut Vec<String>) {
    let mut cur = Cursor::new(0, pool.len());
    let t = Instant::now();
    let events = prefix_span("/registry/events/");
    loop {
        let r = range(
            pool,
            &cur,
            RangeRequest {
                key: events.key.clone(),
                range_end: events.range_end.clone(),
                keys_only: true,
                ..Default::default()
            },
        )
        .await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
                continue;
            }
        };
        let now = rec.ms();
        let present: Vec<Bytes> = r.kvs.into_iter().map(|kv| kv.key).collect();
        let left: Vec<String> = rec
            .leases()
            .iter()
            .filter(|l| !l.kept_at(now))
            .flat_map(|l| {
                l.keys
                    .iter()
                    .filter(|k| present.contains(k))
                    .map(move |k| (l, k))
            })
            .map(|(l, k)| format!("{} (lease {:x}, TTL {} s)", show(k), l.id, l.ttl_s))
            .collect();
        if left.is_empty() {
            rec.count_n(
                "ms waited for the last leases to expire",
                t.elapsed().as_millis() as u64,
            );
            return;
        }
        if t.elapsed() > SETTLE_LIMIT {
            failures.push(format!(
                "keys of leases left to expire are still there {SETTLE_LIMIT:?} after the load \
                 stopped: {left:?}"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes a fence key under each watched prefix (until one write of each
/// is acknowledged); answers (key, revision) of each.
async fn fences(pool: &Pool, rec: &Recorder) -> Vec<(Bytes, i64)> {
    let mut cur = Cursor::new(0, pool.len());
    let mut out = Vec::new();
    let mut n = 0;
    for kind in KINDS.iter().chain(&["events"]) {
        let key = Bytes::from(format!("/registry/{kind}/~fence"));
        loop {
            let token = format!("fence-{n}");
            n += 1;
            let value = object_value(&token, 0);
            let invoked_ms = rec.ms();
            let member = cur.member;
            let r = call(pool.kv(member).put(PutRequest {
                key: key.clone(),
                value: value.clone(),
                ..Default::default()
            }))
            .await;
            let mut op = Op {
                token,
                key: key.clone(),
                kind: OpKind::Fence,
                guard: 0,
                value,
                counter: 0,
                outcome: Outcome::Unknown,
                error: None,
                invoked_ms,
                completed_ms: rec.ms(),
                member,
            };
            match r {
                Ok(p) => {
                    let rev = p.header.map_or(0, |h| h.revision);
                    op.outcome = Outcome::Ok(rev);
                    rec.record(op);
                    out.push((key.clone(), rev));
                    break;
                }
                Err(e) => {
                    op.error = Some(e.to_string());
                    rec.record(op);
                    cur.fail_over();
                    tokio::time::sleep(FAILOVER_PAUSE).await;
                }
            }
        }
    }
    out
}

/// Every key, with one linearizable Range.
async fn final_state(
    pool: &Pool,
    rec: &Recorder,
    failures: &mut Vec<String>,
) -> (i64, BTreeMap<Bytes, KeyValue>) {
    let mut cur = Cursor::new(0, pool.len());
    for _ in 0..100 {
        let (floor, _) = rec.floor(None);
        let req = RangeRequest {
            key: Bytes::from_static(b"\0"),
            range_end: Bytes::from_static(b"\0"),
            ..Default::default()
        };
        match range(pool, &cur, req).await {
            Ok(r) => {
                rec.check_read("the final Range", cur.member, floor, r.header.as_ref());
                let rev = r.header.map_or(0, |h| h.revision);
                return (
                    rev,
                    r.kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect(),
                );
            }
            Err(_) => {
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
            }
        }
    }
    failures.push("no member answered the final Range".into());
    (0, BTreeMap::new())
}

/// Every member, read locally (serializable) at the final revision, holds
/// exactly the final state.
async fn convergence(
    pool: &Pool,
    rev: i64,
    finals: &BTreeMap<Bytes, KeyValue>,
    failures: &mut Vec<String>,
) {
    let want: Vec<KeyValue> = finals.values().cloned().collect();
    for m in 0..pool.len() {
        let t = Instant::now();
        loop {
            let req = RangeRequest {
                key: Bytes::from_static(b"\0"),
                range_end: Bytes::from_static(b"\0"),
                revision: rev,
                serializable: true,
                ..Default::default()
            };
            match call(pool.kv(m).range(req)).await {
                Ok(r) => {
                    if let Some(d) = first_difference(&want, &r.kvs) {
                        failures.push(format!(
                            "m{m} read locally at revision {rev} differs from the final state \
                             ({} keys there, {} on m{m}): {d} (final / m{m})",
                            want.len(),
                            r.kvs.len()
                        ));
                    }
                    break;
                }
                Err(e) if t.elapsed() > SETTLE_LIMIT => {
                    failures.push(format!(
                        "m{m} could not be read at revision {rev} within {SETTLE_LIMIT:?}: {e}"
                    ));
                    break;
                }
                // Not there yet (a future revision), or not serving yet.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
