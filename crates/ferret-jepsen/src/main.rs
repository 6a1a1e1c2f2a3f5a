//! `ferret-jepsen`: a fault-injection suite for ferretcd (or etcd 3.4).
//!
//! It starts a cluster of server processes on loopback, runs concurrent
//! clients (register reads with `quorum=true`, writes, compare-and-swap by
//! value and by index, in-order creates) and watchers against random
//! members, while a nemesis kills (SIGKILL) and pauses (SIGSTOP) the leader
//! and random members, and partitions peer links through per-member TCP
//! proxies (`proxy`), on a schedule derived from `--seed`. After healing it
//! checks convergence (every member's local listing of `/` equal after a
//! quorum write barrier), then runs `ferret-check`'s checkers on the
//! recorded history. It prints one table and exits 1 on any violation.
//!
//! ```text
//! ferret-jepsen [--binary PATH | --etcd PATH] [--members 3|5] [--clients N]
//!               [--duration SECS] [--seed N] [--dir PATH]
//! ```

mod cluster;
mod http;
mod proxy;
mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use cluster::{Cluster, Flavor};
use ferret_check::register::{check_history, Budget, Verdict};
use ferret_check::set::check_set;
use ferret_check::watch::{check_watches, Modification};
use ferret_check::{Call, Ret, Status};
use workload::{Clock, CLIENT_TIMEOUT, KEYS, QUEUE};

/// splitmix64: the only source of randomness, so a seed replays the same
/// fault schedule and the same client choices.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Args {
    binary: PathBuf,
    flavor: Flavor,
    members: usize,
    clients: usize,
    duration: Duration,
    seed: u64,
    dir: Option<PathBuf>,
    faults: Vec<FaultKind>,
}

fn usage(msg: &str) -> ! {
    eprintln!("ferret-jepsen: {msg}");
    eprintln!(
        "usage: ferret-jepsen [--binary PATH | --etcd PATH] [--members 3|5] [--clients N] \
         [--duration SECS] [--seed N] [--dir PATH] [--faults kill,pause,partition|none]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let exe = std::env::current_exe().expect("current exe");
    let mut a = Args {
        binary: exe.with_file_name("ferretcd"),
        flavor: Flavor::Ferretcd,
        members: 3,
        clients: 5,
        duration: Duration::from_secs(30),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        dir: None,
        faults: vec![
            FaultKind::KillLeader,
            FaultKind::KillRandom,
            FaultKind::PauseLeader,
            FaultKind::PauseRandom,
        ],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--binary" => a.binary = val().into(),
            "--etcd" => {
                a.binary = val().into();
                a.flavor = Flavor::Etcd;
            }
            "--members" => {
                a.members = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--members: a number"))
            }
            "--clients" => {
                a.clients = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--clients: a number"))
            }
            "--duration" => {
                a.duration = Duration::from_secs(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("--duration: seconds")),
                )
            }
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage("--seed: a number")),
            "--dir" => a.dir = Some(val().into()),
            "--faults" => {
                a.faults = val()
                    .split(',')
                    .flat_map(|f| match f {
                        "kill" => vec![FaultKind::KillLeader, FaultKind::KillRandom],
                        "pause" => vec![FaultKind::PauseLeader, FaultKind::PauseRandom],
                        "partition" => vec![
                            FaultKind::IsolateLeader,
                            FaultKind::SplitRandom,
                            FaultKind::OneWayLoss,
                        ],
                        "none" => vec![],
                        other => usage(&format!("unknown fault {other:?}")),
                    })
                    .collect()
            }
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if !(1..=7).contains(&a.members) {
        usage("--members must be 1..=7");
    }
    a
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    KillLeader,
    KillRandom,
    PauseLeader,
    PauseRandom,
    /// Every peer link to and from the leader blackholed.
    IsolateLeader,
    /// A random minority cut off from the majority.
    SplitRandom,
    /// One directed peer link blackholed (two-way on etcd, see `proxy`).
    OneWayLoss,
}

/// One scheduled fault: when it starts (from the start of the workload),
/// how long it holds, and which member it picks when not the leader.
#[derive(Clone, Debug)]
struct Fault {
    at: Duration,
    kind: FaultKind,
    hold: Duration,
    pick: u64,
}

/// The nemesis schedule for `seed`: a fault every few seconds, each held
/// longer than the election timeout, with quiet time in between so the
/// cluster makes progress.
fn schedule(seed: u64, duration: Duration, kinds: &[FaultKind]) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut t = Duration::from_millis(2000 + rng.below(1000));
    if kinds.is_empty() {
        return out;
    }
    loop {
        let hold = Duration::from_millis(1000 + rng.below(2000));
        if t + hold + Duration::from_secs(2) > duration {
            return out;
        }
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        out.push(Fault {
            at: t,
            kind,
            hold,
            pick: rng.next_u64(),
        });
        t += hold + Duration::from_millis(1500 + rng.below(2000));
    }
}

fn run_nemesis(
    cluster: &mut Cluster,
    plan: &[Fault],
    start: Instant,
    counts: &mut BTreeMap<String, usize>,
) {
    for f in plan {
        let now = start.elapsed();
        if f.at > now {
            sleep(f.at - now);
        }
        let n = cluster.members.len();
        let target = match f.kind {
            FaultKind::KillLeader | FaultKind::PauseLeader | FaultKind::IsolateLeader => {
                match cluster.leader() {
                    Some(l) => l,
                    None => {
                        eprintln!(
                            "[{:>6.1}s] nemesis: no single leader; skipping {:?}",
                            start.elapsed().as_secs_f64(),
                            f.kind
                        );
                        continue;
                    }
                }
            }
            _ => (f.pick % n as u64) as usize,
        };
        let name = cluster.members[target].name.clone();
        // The members cut off from the rest (partitions).
        let mut side = vec![target];
        if f.kind == FaultKind::SplitRandom && n >= 5 && f.pick % 2 == 0 {
            side.push((target + 1 + (f.pick / 7) as usize % (n - 1)) % n);
        }
        eprintln!(
            "[{:>6.1}s] nemesis: {:?} {name} for {:?}",
            start.elapsed().as_secs_f64(),
            f.kind,
            f.hold
        );
        match f.kind {
            FaultKind::KillLeader | FaultKind::KillRandom => cluster.kill(target),
            FaultKind::PauseLeader | FaultKind::PauseRandom => cluster.pause(target),
            FaultKind::IsolateLeader | FaultKind::SplitRandom => {
                for &a in &side {
                    for b in (0..n).filter(|b| !side.contains(b)) {
                        cluster.links.block(a, b);
                        cluster.links.block(b, a);
                    }
                }
            }
            FaultKind::OneWayLoss => {
                let other = (target + 1 + (f.pick / 7) as usize % (n - 1)) % n;
                cluster.links.block(target, other);
            }
        }
        *counts.entry(format!("{:?}", f.kind)).or_default() += 1;
        sleep(f.hold);
        match f.kind {
            FaultKind::KillLeader | FaultKind::KillRandom => {
                if let Err(e) = cluster.spawn(target) {
                    eprintln!("nemesis: restart {name}: {e}");
                }
            }
            FaultKind::PauseLeader | FaultKind::PauseRandom => cluster.resume(target),
            FaultKind::IsolateLeader | FaultKind::SplitRandom | FaultKind::OneWayLoss => {
                cluster.links.heal()
            }
        }
        eprintln!(
            "[{:>6.1}s] nemesis: healed {name}",
            start.elapsed().as_secs_f64()
        );
    }
}

/// After healing: a quorum write barrier, then every member's local
/// recursive listing of `/` must be the same. Returns a violation if they
/// never agree.
fn convergence(cluster: &mut Cluster) -> Result<(), String> {
    for i in 0..cluster.members.len() {
        cluster.wait_healthy(i, Duration::from_secs(30))?;
    }
    let addrs: Vec<SocketAddr> = cluster.members.iter().map(|m| m.client).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let barrier = loop {
        let form = "value=barrier";
        match http::request(
            addrs[0],
            "PUT",
            "/v2/keys/jepsen/barrier",
            Some(form),
            CLIENT_TIMEOUT,
        ) {
            Ok(r) if r.status == 200 || r.status == 201 => {
                let v: serde_json::Value =
                    serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
                break v["node"]["modifiedIndex"].as_u64().unwrap_or(0);
            }
            other if Instant::now() > deadline => {
                return Err(format!("barrier write never succeeded: {other:?}"))
            }
            _ => sleep(Duration::from_millis(200)),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut views = Vec::new();
        for a in &addrs {
            let r = http::request(
                *a,
                "GET",
                "/v2/keys/?recursive=true&sorted=true",
                None,
                CLIENT_TIMEOUT,
            );
            let view = r
                .ok()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok());
            views.push(view.map(|v| v["node"].clone()));
        }
        let caught_up = views.iter().all(|v| {
            v.as_ref()
                .is_some_and(|n| n["nodes"].as_array().is_some_and(|_| true))
        });
        if caught_up && views.windows(2).all(|w| w[0] == w[1]) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let sizes: Vec<usize> = views
                .iter()
                .map(|v| v.as_ref().map_or(0, |v| v.to_string().len()))
                .collect();
            return Err(format!(
                "members never converged after the barrier at index {barrier} (listing sizes {sizes:?})"
            ));
        }
        sleep(Duration::from_millis(200));
    }
}

/// The final contents of the queue directory: (key, value) of each child.
fn final_queue(addrs: &[SocketAddr]) -> Result<Vec<(String, String)>, String> {
    let target = format!("/v2/keys{QUEUE}?recursive=true&sorted=true&quorum=true");
    let r = http::request(addrs[0], "GET", &target, None, CLIENT_TIMEOUT)
        .map_err(|e| format!("{e:?}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
    if v["errorCode"].as_u64() == Some(100) {
        return Ok(Vec::new());
    }
    Ok(v["node"]["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    (
                        n["key"].as_str().unwrap_or("").to_string(),
                        n["value"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let flavor = match args.flavor {
        Flavor::Ferretcd => "ferretcd",
        Flavor::Etcd => "etcd",
    };
    println!(
        "ferret-jepsen: seed {} | {} {} members ({}) | {} clients | {:?}",
        args.seed,
        args.members,
        flavor,
        args.binary.display(),
        args.clients,
        args.duration
    );
    if std::env::var("FERRETCD_UNSAFE_LOCAL_QUORUM_READS").as_deref() == Ok("1") {
        println!("!!! FERRETCD_UNSAFE_LOCAL_QUORUM_READS=1 is set: the servers are expected to be UNSAFE !!!");
    }
    let plan = schedule(args.seed, args.duration, &args.faults);
    println!("fault schedule ({} faults):", plan.len());
    for f in &plan {
        println!(
            "  at {:>5.1}s {:?} for {:.1}s (pick {})",
            f.at.as_secs_f64(),
            f.kind,
            f.hold.as_secs_f64(),
            f.pick % 1000
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "ferret-jepsen-{}-{}",
            std::process::id(),
            args.seed
        ))
    });
    let mut cluster = match Cluster::start(&args.binary, args.flavor, args.members, &dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferret-jepsen: the cluster did not start: {e}");
            std::process::exit(2);
        }
    };
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(cluster.members.iter().map(|m| m.client).collect());
    let clock = Arc::new(Clock(Instant::now()));
    let stop = Arc::new(AtomicBool::new(false));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..args.clients)
        .map(|id| {
            let (a, c, s, seed) = (addrs.clone(), clock.clone(), stop.clone(), args.seed);
            thread::spawn(move || workload::client(id, seed, a, c, s))
        })
        .collect();
    let watchers: Vec<_> = KEYS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let (a, s, seed) = (
                addrs.clone(),
                stop_watch.clone(),
                args.seed.wrapping_add(i as u64),
            );
            thread::spawn(move || workload::watcher(k, seed, a, s))
        })
        .collect();
    let mut faults = BTreeMap::new();
    let work_start = Instant::now();
    run_nemesis(&mut cluster, &plan, work_start, &mut faults);
    let left = args.duration.saturating_sub(work_start.elapsed());
    sleep(left);
    eprintln!("[{:>6.1}s] healing", work_start.elapsed().as_secs_f64());
    let mut violations: Vec<String> = Vec::new();
    if let Err(e) = cluster.heal_processes() {
        violations.push(format!("heal: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<_> = clients
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    if let Err(e) = convergence(&mut cluster) {
        violations.push(format!("convergence: {e}"));
    }
    // Let the watchers catch up with the healed cluster, then stop them.
    sleep(Duration::from_secs(2));
    stop_watch.store(true, Ordering::Relaxed);
    let watches: Vec<_> = watchers
        .into_iter()
        .map(|h| h.join().expect("watcher thread"))
        .collect();
    let queue = final_queue(&addrs);
    eprintln!("[{:>6.1}s] checking", work_start.elapsed().as_secs_f64());

    let ops: Vec<_> = logs.iter().flat_map(|l| l.ops.iter().cloned()).collect();
    let creates: Vec<_> = logs
        .iter()
        .flat_map(|l| l.creates.iter().cloned())
        .collect();
    let count = |s: Status| {
        ops.iter().filter(|o| o.status == s).count()
            + creates.iter().filter(|c| c.status == s).count()
    };
    let check_start = Instant::now();
    let verdicts = check_history(&ops, Budget::default());
    let check_time = check_start.elapsed();
    let mut inconclusive = Vec::new();
    for (k, v) in &verdicts {
        match v {
            Verdict::Linearizable => {}
            Verdict::Violation(m) => {
                violations.push(format!("linearizability violation on {k}: {m}"))
            }
            Verdict::Unknown(m) => inconclusive.push(format!("{k}: unknown: {m}")),
        }
    }
    match &queue {
        Ok(present) => {
            let r = check_set(&creates, present);
            violations.extend(r.violations.iter().map(|v| format!("set: {v}")));
        }
        Err(e) => violations.push(format!("set: final read of {QUEUE} failed: {e}")),
    }
    let acked: Vec<Modification> = ops
        .iter()
        .filter_map(|o| match (&o.status, &o.ret) {
            (Status::Ok, Ret::Written { index }) => Some(Modification {
                key: o.key.clone(),
                index: *index,
                value: o.written_value().map(str::to_string),
            }),
            _ => None,
        })
        .collect();
    let wr = check_watches(&watches, &acked);
    violations.extend(wr.violations.iter().map(|v| format!("watch: {v}")));

    let kinds = |f: &dyn Fn(&Call) -> bool, s: Status| {
        ops.iter().filter(|o| f(&o.call) && o.status == s).count()
    };
    println!();
    println!("==================== ferret-jepsen results ====================");
    println!(
        "{:<26}{:>8}{:>8}{:>8}",
        "operations", "ok", "failed", "unknown"
    );
    type Row<'a> = (&'a str, &'a dyn Fn(&Call) -> bool);
    let rows: [Row; 4] = [
        ("read (quorum)", &|c| matches!(c, Call::Read)),
        ("write", &|c| matches!(c, Call::Write { .. })),
        ("cas prevValue", &|c| matches!(c, Call::CasValue { .. })),
        ("cas prevIndex", &|c| matches!(c, Call::CasIndex { .. })),
    ];
    for (name, f) in rows {
        println!(
            "  {:<24}{:>8}{:>8}{:>8}",
            name,
            kinds(f, Status::Ok),
            kinds(f, Status::Failed),
            kinds(f, Status::Unknown)
        );
    }
    let cs = |s: Status| creates.iter().filter(|c| c.status == s).count();
    println!(
        "  {:<24}{:>8}{:>8}{:>8}",
        "create (POST)",
        cs(Status::Ok),
        cs(Status::Failed),
        cs(Status::Unknown)
    );
    println!(
        "  {:<24}{:>8}{:>8}{:>8}",
        "total",
        count(Status::Ok),
        count(Status::Failed),
        count(Status::Unknown)
    );
    println!("  watch events received: {}", wr.events);
    println!("faults injected:");
    if faults.is_empty() {
        println!("  none");
    }
    for (k, n) in &faults {
        println!("  {k:<24}{n:>8}");
    }
    println!("checks: linearizability of {} keys in {:.2?}; set of {} creates; {} watchers; convergence of {} members",
        verdicts.len(), check_time, creates.len(), watches.len(), args.members);
    for m in &inconclusive {
        println!("  inconclusive: {m}");
    }
    println!("violations: {}", violations.len());
    for v in &violations {
        println!("  VIOLATION {v}");
    }
    println!(
        "seed to replay: --seed {} --duration {} --clients {} --members {}",
        args.seed,
        args.duration.as_secs(),
        args.clients,
        args.members
    );
    println!(
        "total time {:.1?}; data and logs in {}",
        started.elapsed(),
        dir.display()
    );
    println!(
        "RESULT violations={} inconclusive={}",
        violations.len(),
        inconclusive.len()
    );
    drop(cluster);
    if violations.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(0);
    }
    std::process::exit(1);
}
