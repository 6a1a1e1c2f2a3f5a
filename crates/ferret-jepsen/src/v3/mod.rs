//! The v3 workloads: etcd's KV, Watch and Lease services over gRPC, on a
//! tokio runtime of their own while the nemesis runs on the main thread.
//!
//! - **registers** (`v3-registers`): [`keys::REGISTERS`] keys read with `Range`
//!   (linearizable; serializable with `--v3-reads serializable`, a control
//!   whose stale reads the checker must reject), written with `Put` and
//!   swapped with `Txn(mod_revision == r) then Put else Range`; checked for
//!   linearizability.
//! - **set** (`v3-set`): keys under `set/` added with
//!   `Txn(create_revision == 0) then Put`, clients racing for the same
//!   elements; read once at the end and checked.
//! - **watch** (`v3-watch`): watchers of the whole prefix from the first
//!   revision, changing members on faults and on purpose, falling behind
//!   a compactor that compacts every few seconds; a writer of three-key
//!   transactions and deletions, so revisions hold several events; after
//!   the run, a reference stream from past the last compaction. Checked for
//!   order, uniqueness, atomicity and gaps against every acknowledged write
//!   and every other stream, by revision.
//! - **leases** (`v3-lease`): keys attached to leases, kept alive through
//!   any member, revoked or left to expire, read all along; checked: never
//!   gone while kept alive.
//!
//! Everything is written under [`keys::PREFIX`], and nothing else writes v3 keys,
//! so every revision of the run has an event under the watched prefix: a
//! watcher must see every revision from where it started (the watch check
//! is `dense`).
//!
//! After the cluster is healed: the clients stop; a last put (the barrier)
//! gives the revision every watcher must reach; every member's own view of
//! the prefix at that revision must be the same; the set is read.

pub mod conn;
mod keys;
mod kv;
mod lease;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferret_check::lease::check_leases;
use ferret_check::register::{check_history, Budget, Verdict};
use ferret_check::set::{check_adds, Add};
use ferret_check::watch_v3::{check_watches_v3, Claim, Watcher};
use ferret_check::{Call, Op, Status};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use conn::Conns;
use kv::{BatchLog, Counts, RegisterLog, SetLog};
use lease::LeaseLog;
use watch::{Churn, CompactLog};

use crate::workload::Clock;

/// How many clients of each of the other workloads.
const SET_CLIENTS: usize = 2;
const LEASE_CLIENTS: usize = 4;
const WATCHERS: usize = 3;

/// Which v3 workloads run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Workloads {
    pub registers: bool,
    pub set: bool,
    pub watch: bool,
    pub lease: bool,
}

impl Workloads {
    pub const ALL: Workloads = Workloads {
        registers: true,
        set: true,
        watch: true,
        lease: true,
    };

    pub fn any(&self) -> bool {
        self.registers || self.set || self.watch || self.lease
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.registers, "v3-registers"),
            (self.set, "v3-set"),
            (self.watch, "v3-watch"),
            (self.lease, "v3-lease"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

pub struct Settings {
    pub workloads: Workloads,
    /// Register clients (the v2 workload's `--clients`).
    pub clients: usize,
    pub serializable_reads: bool,
    pub seed: u64,
}

/// The v3 workloads while they run.
pub struct Running {
    rt: Runtime,
    addrs: Arc<Vec<SocketAddr>>,
    settings: Settings,
    stop_clients: Arc<AtomicBool>,
    stop_watchers: Arc<AtomicBool>,
    start_revision: u64,
    registers: Vec<JoinHandle<RegisterLog>>,
    sets: Vec<JoinHandle<SetLog>>,
    leases: Vec<JoinHandle<LeaseLog>>,
    batch: Option<JoinHandle<BatchLog>>,
    compactor: Option<JoinHandle<CompactLog>>,
    watchers: Vec<(JoinHandle<Watcher>, Arc<AtomicU64>)>,
}

/// Starts the workloads of `settings` against the members at `addrs`.
pub fn start(
    settings: Settings,
    addrs: Arc<Vec<SocketAddr>>,
    clock: Arc<Clock>,
) -> Result<Running, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("v3-workload")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let start_revision = rt.block_on(async {
        let mut conns = Conns::new(addrs.clone());
        let mut last = String::new();
        for _ in 0..50 {
            match kv::current_revision(&mut conns, 0).await {
                Ok(r) => return Ok(r as u64),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("no v3 Range answered by m0: {last}"))
    })?;
    let w = settings.workloads;
    let seed = settings.seed;
    let stop_clients = Arc::new(AtomicBool::new(false));
    let stop_watchers = Arc::new(AtomicBool::new(false));
    let conns = || Conns::new(addrs.clone());
    let mut r = Running {
        addrs: addrs.clone(),
        stop_clients: stop_clients.clone(),
        stop_watchers: stop_watchers.clone(),
        start_revision,
        registers: Vec::new(),
        sets: Vec::new(),
        leases: Vec::new(),
        batch: None,
        compactor: None,
        watchers: Vec::new(),
        rt,
        settings,
    };
    if w.registers {
        for id in 0..r.settings.clients {
            r.registers.push(r.rt.spawn(kv::register_client(
                id,
                seed,
                conns(),
                clock.clone(),
                stop_clients.clone(),
                r.settings.serializable_reads,
            )));
        }
    }
    if w.set {
        let next_element = Arc::new(AtomicU64::new(0));
        for id in 0..SET_CLIENTS {
            r.sets.push(r.rt.spawn(kv::set_client(
                id,
                seed,
                conns(),
                next_element.clone(),
                stop_clients.clone(),
            )));
        }
    }
    if w.lease {
        for id in 0..LEASE_CLIENTS {
            r.leases.push(r.rt.spawn(lease::lease_client(
                id,
                seed,
                conns(),
                clock.clone(),
                stop_clients.clone(),
            )));
        }
    }
    if w.watch {
        r.batch = Some(r.rt.spawn(kv::batch_writer(seed, conns(), stop_clients.clone())));
        r.compactor = Some(r.rt.spawn(watch::compactor(seed, conns(), stop_clients.clone())));
        for n in 0..WATCHERS {
            let reached = Arc::new(AtomicU64::new(0));
            let h = r.rt.spawn(watch::watcher(
                format!("w{n}"),
                seed.wrapping_add(n as u64),
                conns(),
                start_revision + 1,
                Churn::OnPurpose,
                stop_watchers.clone(),
                stop_clients.clone(),
                reached.clone(),
            ));
            r.watchers.push((h, reached));
        }
    }
    Ok(r)
}

/// Everything the v3 workloads recorded, and what the end of the run found.
pub struct Results {
    settings: Settings,
    ops: Vec<Op>,
    adds: Vec<Add>,
    final_set: Option<Result<Vec<(String, String)>, String>>,
    claims: Vec<Claim>,
    watchers: Vec<Watcher>,
    reference: Option<Watcher>,
    reference_from: u64,
    barrier: Option<u64>,
    compactions: CompactLog,
    batches: Counts,
    leases: Vec<LeaseLog>,
    /// What went wrong at the end itself (no barrier, no convergence).
    problems: Vec<String>,
}

impl Running {
    /// Tells the clients to stop (the watchers go on until `finish`).
    pub fn stop_clients(&self) {
        self.stop_clients.store(true, Ordering::Relaxed);
    }

    /// After healing: waits for the clients, writes the barrier, checks
    /// convergence, lets the watchers catch up, reads the reference stream
    /// and the set.
    pub fn finish(self) -> Results {
        self.stop_clients();
        let Running {
            rt,
            addrs,
            settings,
            stop_watchers,
            start_revision,
            registers,
            sets,
            leases,
            batch,
            compactor,
            watchers,
            ..
        } = self;
        rt.block_on(async move {
            let t0 = Instant::now();
            let phase = |what: &str| eprintln!("v3: {what} after {:.1?}", t0.elapsed());
            let mut res = Results {
                settings,
                ops: Vec::new(),
                adds: Vec::new(),
                final_set: None,
                claims: Vec::new(),
                watchers: Vec::new(),
                reference: None,
                reference_from: 0,
                barrier: None,
                compactions: CompactLog::default(),
                batches: Counts::default(),
                leases: Vec::new(),
                problems: Vec::new(),
            };
            for h in registers {
                let log = h.await.expect("register client");
                res.ops.extend(log.ops);
                res.claims.extend(log.claims);
            }
            for h in sets {
                let log = h.await.expect("set client");
                res.adds.extend(log.adds);
                res.claims.extend(log.claims);
            }
            for h in leases {
                let mut log = h.await.expect("lease client");
                res.claims.append(&mut log.claims);
                res.leases.push(log);
            }
            if let Some(h) = batch {
                let log = h.await.expect("batch writer");
                res.batches = log.counts;
                res.claims.extend(log.claims);
            }
            if let Some(h) = compactor {
                res.compactions = h.await.expect("compactor");
            }
            phase("clients stopped");
            let mut conns = Conns::new(addrs.clone());
            match kv::barrier(&mut conns, Duration::from_secs(30)).await {
                Ok((rev, claim)) => {
                    res.barrier = Some(rev as u64);
                    res.claims.push(claim);
                    if let Err(e) = kv::convergence(&mut conns, rev, Duration::from_secs(20)).await
                    {
                        res.problems.push(format!("v3 convergence: {e}"));
                    }
                }
                Err(e) => res.problems.push(format!("v3 barrier: {e}")),
            }
            phase("barrier and convergence");
            let barrier = res.barrier.unwrap_or(u64::MAX);
            if !watchers.is_empty() {
                let deadline = Instant::now() + Duration::from_secs(15);
                while Instant::now() < deadline
                    && watchers
                        .iter()
                        .any(|(_, r)| r.load(Ordering::Relaxed) < barrier)
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                stop_watchers.store(true, Ordering::Relaxed);
                for (h, _) in watchers {
                    res.watchers.push(h.await.expect("watcher"));
                }
                phase("watchers caught up");
                // The reference: one more stream, after everything, from
                // past the last compaction asked for.
                let from = res
                    .compactions
                    .attempted
                    .iter()
                    .max()
                    .map_or(start_revision + 1, |c| c + 1);
                res.reference_from = from;
                let stop = Arc::new(AtomicBool::new(false));
                let reached = Arc::new(AtomicU64::new(0));
                let h = tokio::spawn(watch::watcher(
                    "reference".to_string(),
                    res.settings.seed,
                    Conns::new(addrs.clone()),
                    from,
                    Churn::OnlyOnFailure,
                    stop.clone(),
                    stop.clone(),
                    reached.clone(),
                ));
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline && reached.load(Ordering::Relaxed) < barrier {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                stop.store(true, Ordering::Relaxed);
                res.reference = Some(h.await.expect("reference watcher"));
                phase("reference stream read");
            }
            if res.settings.workloads.set {
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut i = 0;
                let set = loop {
                    match kv::final_set(&mut conns, i % addrs.len()).await {
                        Ok(s) => break Ok(s),
                        Err(e) if Instant::now() > deadline => break Err(e),
                        Err(_) => {
                            i += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                };
                res.final_set = Some(set);
            }
            res
        })
    }
}

/// What the checks of the v3 workloads found.
#[derive(Default)]
pub struct Checked {
    /// Rows of the operations table: (name, ok, failed, unknown).
    pub rows: Vec<(String, usize, usize, usize)>,
    /// Lines for the report, after the table.
    pub lines: Vec<String>,
    pub violations: Vec<String>,
    pub inconclusive: Vec<String>,
    /// Known limitations of the server that the run met.
    pub notes: Vec<String>,
}

impl Results {
    pub fn check(&self) -> Checked {
        let mut c = Checked {
            violations: self.problems.clone(),
            ..Default::default()
        };
        let w = self.settings.workloads;
        let count = |f: &dyn Fn(&Call) -> bool, s: Status| {
            self.ops
                .iter()
                .filter(|o| f(&o.call) && o.status == s)
                .count()
        };
        if w.registers {
            type Row<'a> = (&'a str, &'a dyn Fn(&Call) -> bool);
            let read = if self.settings.serializable_reads {
                "v3 range (serializable)"
            } else {
                "v3 range"
            };
            let rows: [Row; 3] = [
                (read, &|c| matches!(c, Call::Read)),
                ("v3 put", &|c| matches!(c, Call::Write { .. })),
                ("v3 txn mod_revision swap", &|c| {
                    matches!(c, Call::CasRevision { .. })
                }),
            ];
            for (name, f) in rows {
                c.rows.push((
                    name.to_string(),
                    count(f, Status::Ok),
                    count(f, Status::Failed),
                    count(f, Status::Unknown),
                ));
            }
            let started = Instant::now();
            let verdicts = check_history(&self.ops, Budget::default());
            let mut stale = false;
            for (k, v) in &verdicts {
                match v {
                    Verdict::Linearizable => {}
                    Verdict::Violation(m) => {
                        stale = true;
                        c.violations
                            .push(format!("v3 linearizability violation on {k}: {m}"))
                    }
                    Verdict::Unknown(m) => c.inconclusive.push(format!("v3 {k}: unknown: {m}")),
                }
            }
            c.lines.push(format!(
                "v3 registers: linearizability of {} keys in {:.2?}",
                verdicts.len(),
                started.elapsed()
            ));
            if self.settings.serializable_reads {
                c.lines.push(format!(
                    "v3 registers read with serializable ranges (the stale-read control): {}",
                    if stale {
                        "the checker rejected the history (stale reads caught)"
                    } else {
                        "the history passed: no stale read was observed"
                    }
                ));
            }
        }
        if w.set {
            let n = |s: Status| self.adds.iter().filter(|a| a.status == s).count();
            c.rows.push((
                "v3 txn create-if-absent".into(),
                n(Status::Ok),
                n(Status::Failed),
                n(Status::Unknown),
            ));
            match &self.final_set {
                Some(Ok(present)) => {
                    let r = check_adds(&self.adds, present);
                    let created = self
                        .adds
                        .iter()
                        .filter(|a| a.status == Status::Ok && a.created)
                        .count();
                    c.lines.push(format!(
                        "v3 set: {} acknowledged adds ({created} created, {} found present), \
                         {} unknown of which {} present; {} keys at the end",
                        r.acknowledged,
                        r.acknowledged - created,
                        r.unknown,
                        r.unknown_present,
                        present.len()
                    ));
                    c.violations
                        .extend(r.violations.iter().map(|v| format!("v3 set: {v}")));
                }
                Some(Err(e)) => c
                    .violations
                    .push(format!("v3 set: the final read failed: {e}")),
                None => {}
            }
        }
        if w.watch {
            let b = self.batches;
            c.rows
                .push(("v3 txn 3 keys / delete".into(), b.ok, b.failed, b.unknown));
            let k = self.compactions.counts;
            c.rows
                .push(("v3 compaction".into(), k.ok, k.failed, k.unknown));
            let mut all: Vec<Watcher> = self.watchers.clone();
            all.extend(self.reference.clone());
            let r = check_watches_v3(&all, &self.claims, true, self.barrier);
            let reference_events: usize = self.reference.iter().map(events_of).sum();
            c.lines.push(format!(
                "v3 watch: {} watchers, {} events in {} responses, {} resumes, {} after a compaction \
                 ({} compactions acknowledged, the last at revision {}); reference stream from \
                 revision {}: {} events; {} acknowledged revisions compared",
                self.watchers.len(),
                r.events - reference_events,
                r.responses,
                r.resumes,
                r.compacted,
                self.compactions.acknowledged.len(),
                self.compactions.acknowledged.last().unwrap_or(&0),
                self.reference_from,
                reference_events,
                self.claims.len()
            ));
            c.violations
                .extend(r.violations.iter().map(|v| format!("v3 watch: {v}")));
        }
        if w.lease {
            let mut grants = Counts::default();
            let mut puts = Counts::default();
            let mut revokes = Counts::default();
            let (mut renewed, mut gone, mut no_conn) = (0, 0, 0);
            let mut refused: BTreeMap<&str, usize> = BTreeMap::new();
            let mut keys = Vec::new();
            for l in &self.leases {
                for (sum, part) in [
                    (&mut grants, l.grants),
                    (&mut puts, l.puts),
                    (&mut revokes, l.revokes),
                ] {
                    sum.ok += part.ok;
                    sum.failed += part.failed;
                    sum.unknown += part.unknown;
                }
                renewed += l.keepalives.renewed;
                gone += l.keepalives.gone;
                no_conn += l.keepalives.failed;
                for (m, n) in &l.keepalives.refused {
                    *refused.entry(m).or_default() += n;
                }
                keys.extend(l.keys.iter().cloned());
            }
            c.rows.push((
                "v3 lease grant".into(),
                grants.ok,
                grants.failed,
                grants.unknown,
            ));
            c.rows.push((
                "v3 put with lease".into(),
                puts.ok,
                puts.failed,
                puts.unknown,
            ));
            c.rows.push((
                "v3 lease revoke".into(),
                revokes.ok,
                revokes.failed,
                revokes.unknown,
            ));
            let r = check_leases(&keys);
            c.lines.push(format!(
                "v3 leases: {} keys, {} reads; {} expired (at most {} ms after the last promise), \
                 {} revoked; keep-alives: {renewed} renewed, {gone} answered TTL 0, \
                 {no_conn} found no connection, {} refused or unanswered",
                r.keys,
                r.probes,
                r.expired,
                r.expiry_late_ms_max,
                r.revoked,
                refused.values().sum::<usize>()
            ));
            for (m, n) in &refused {
                c.lines
                    .push(format!("  keep-alive refused or unanswered {n}x: {m}"));
            }
            let no_leader: usize = refused
                .iter()
                .filter(|(m, _)| m.contains("etcdserver: no leader"))
                .map(|(_, n)| n)
                .sum();
            if no_leader > 0 {
                c.notes.push(format!(
                    "{no_leader} keep-alives answered \"etcdserver: no leader\" (a member that had \
                     no leader, or could not reach it, when asked); each round went on to the next \
                     member"
                ));
            }
            c.violations
                .extend(r.violations.iter().map(|v| format!("v3 lease: {v}")));
        }
        c
    }
}

fn events_of(w: &Watcher) -> usize {
    w.segments
        .iter()
        .flat_map(|s| s.responses.iter())
        .map(|r| r.events.len())
        .sum()
}
