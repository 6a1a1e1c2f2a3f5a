//! "Swap the binary": ferretcd started on a data dir etcd 3.4 wrote
//! converts it in place and carries on as the same member, with the same
//! data, revisions, leases, auth, membership, member id and cluster id.
//!
//! Each test fills etcd (Debian's 3.4) through etcdctl with keys,
//! overwrites, deletes, a lease with keys, users and roles with auth
//! enabled, and a compaction; records what etcdctl answers (every key's
//! value, create and mod revisions, version and lease; the current and
//! compacted revisions; users, roles, members, leases); stops etcd; starts
//! ferretcd with the same flags on the same data dir; compares what
//! etcdctl answers now; writes through ferretcd; stops it; checks that
//! etcd's files under `member/` are byte for byte what etcd left; and
//! starts etcd again on them (the rollback), which answers as before.
//!
//! - `sigkill_replays_the_wal_tail`: etcd with a 10 s backend batch
//!   interval and `--snapshot-count 25`, killed with SIGKILL: its bbolt
//!   file is behind its WAL (the entries after its consistent index are
//!   replayed through ferretcd's apply path) and a `.snap` file holds the
//!   v2 store (converted).
//! - `sigterm_single_member`: etcd's defaults, stopped with SIGTERM.
//! - `three_member_cluster`: three etcd members stopped, each started
//!   again as ferretcd with its own flags: each converts its own data dir
//!   and the cluster forms again with the same ids; every member answers
//!   as etcd's did.
//! - `a_dir_etcdctl_restored_converts`: `etcdctl snapshot restore`'s
//!   layout converts too.
//! - `refuses_a_running_etcd_and_leaves_no_trace`: a conversion is
//!   refused while etcd runs on the data dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::bin::{etcd_tools, ferretcd};
use ferret_testkit::dir::TempDir;
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;
use sha2::{Digest, Sha256};

const ROOT: &str = "root:rootpw";

/// One member's flags: the same for etcd and ferretcd.
#[derive(Clone)]
struct MemberSpec {
    name: String,
    data: PathBuf,
    client: u16,
    peer: u16,
    initial_cluster: String,
    extra: Vec<String>,
}

impl MemberSpec {
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }
}

struct Running {
    proc: Proc,
    log: PathBuf,
}

impl Running {
    fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn start(binary: &Path, m: &MemberSpec, label: &str) -> Running {
    let log = m.data.with_extension(format!("{label}.log"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let curl = m.endpoint();
    let purl = format!("http://127.0.0.1:{}", m.peer);
    let child = Command::new(binary)
        .args(["--name", &m.name])
        .arg("--data-dir")
        .arg(&m.data)
        .args(["--listen-client-urls", &curl])
        .args(["--advertise-client-urls", &curl])
        .args(["--listen-peer-urls", &purl])
        .args(["--initial-advertise-peer-urls", &purl])
        .args(["--initial-cluster", &m.initial_cluster])
        .args(["--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", "migrate-test"])
        .args(&m.extra)
        .env_remove("FERRETCD_LOG")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    Running {
        proc: Proc(Some(child)),
        log,
    }
}

fn wait_healthy(r: &mut Running, m: &MemberSpec) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], m.client));
    loop {
        if let Some(st) = r.proc.exited() {
            panic!("{} exited with {st}:\n{}", m.name, r.log_tail());
        }
        if let Ok(resp) = ferret_testkit::http::get(addr, "/health", Duration::from_millis(1000)) {
            if resp.status == 200 && String::from_utf8_lossy(&resp.body).contains("true") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy in 30 s:\n{}",
            m.name,
            r.log_tail()
        );
        sleep(Duration::from_millis(100));
    }
}

/// Stops a process with `sig` and waits for it.
fn stop(r: &mut Running, sig: libc::c_int) {
    r.proc.signal(sig);
    let deadline = Instant::now() + Duration::from_secs(20);
    while r.proc.exited().is_none() {
        assert!(Instant::now() < deadline, "did not stop:\n{}", r.log_tail());
        sleep(Duration::from_millis(20));
    }
}

fn ctl_try(
    etcdctl: &Path,
    endpoint: &str,
    user: Option<&str>,
    args: &[&str],
) -> Result<String, String> {
    let mut c = Command::new(etcdctl);
    c.env_clear().env("ETCDCTL_API", "3").args([
        "--endpoints",
        endpoint,
        "--command-timeout",
        "20s",
    ]);
    if let Some(u) = user {
        c.args(["--user", u]);
    }
    let out = c.args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn ctl(etcdctl: &Path, endpoint: &str, user: Option<&str>, args: &[&str]) -> String {
    ctl_try(etcdctl, endpoint, user, args)
        .unwrap_or_else(|e| panic!("etcdctl {args:?} at {endpoint}: {e}"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Keys, overwrites, deletes, a lease, users and roles with auth on, and
/// a compaction; answers the lease id and the compacted revision.
fn fill(etcdctl: &Path, ep: &str) -> (String, i64) {
    let c = |args: &[&str]| ctl(etcdctl, ep, None, args);
    for i in 0..12 {
        c(&["put", &format!("k{i:02}"), &format!("v{i}")]);
    }
    for i in 0..6 {
        c(&["put", &format!("k{i:02}"), &format!("w{i}")]);
    }
    c(&["del", "k10"]);
    c(&["put", "k10", "again"]);
    c(&["del", "k11"]);
    let compact = json(&c(&["get", "k00", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    c(&["compaction", &compact.to_string()]);
    let lease = c(&["lease", "grant", "600"]);
    // "lease 694d7c5c1b8cbe04 granted with TTL(600s)"
    let id = lease.split_whitespace().nth(1).unwrap().to_string();
    c(&["put", "leased1", "x", "--lease", &id]);
    c(&["put", "leased2", "y", "--lease", &id]);
    c(&["user", "add", "root:rootpw"]);
    c(&["user", "add", "alice:alicepw"]);
    c(&["role", "add", "reader"]);
    c(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "k",
        "--prefix",
    ]);
    c(&["user", "grant-role", "alice", "reader"]);
    c(&["auth", "enable"]);
    let r = |args: &[&str]| ctl(etcdctl, ep, Some(ROOT), args);
    r(&["put", "after-auth", "1"]);
    r(&["put", "k01", "last"]);
    r(&["user", "add", "bob:bobpw"]);
    (id, compact)
}

/// What etcdctl answers, normalised only for what may differ across a
/// restart (raft terms, TTLs counting down).
fn observe(etcdctl: &Path, ep: &str, lease: &str, compacted: i64) -> BTreeMap<String, String> {
    let r = |args: &[&str]| ctl(etcdctl, ep, Some(ROOT), args);
    let mut out = BTreeMap::new();
    let all = json(&r(&["get", "", "--from-key", "-w", "json"]));
    out.insert("kvs".into(), all["kvs"].to_string());
    out.insert("revision".into(), all["header"]["revision"].to_string());
    out.insert("cluster_id".into(), all["header"]["cluster_id"].to_string());
    let old = json(&r(&[
        "get",
        "k",
        "--prefix",
        "-w",
        "json",
        "--rev",
        &compacted.to_string(),
    ]));
    out.insert("at compacted".into(), old["kvs"].to_string());
    let below = ctl_try(
        etcdctl,
        ep,
        Some(ROOT),
        &[
            "get",
            "k",
            "--prefix",
            "--rev",
            &(compacted - 1).to_string(),
        ],
    );
    out.insert(
        "below compacted".into(),
        format!("{}", below.is_err_and(|e| e.contains("compacted"))),
    );
    out.insert("users".into(), r(&["user", "list"]));
    out.insert("roles".into(), r(&["role", "list"]));
    out.insert("alice".into(), r(&["user", "get", "alice"]));
    out.insert("reader".into(), r(&["role", "get", "reader"]));
    let ttl = json(&r(&["lease", "timetolive", lease, "--keys", "-w", "json"]));
    // etcd lists a lease's keys in Go's map order: sorted here.
    let mut keys: Vec<String> = ttl["keys"]
        .as_array()
        .map(|a| a.iter().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    keys.sort();
    out.insert(
        "lease".into(),
        format!("{} {} {}", ttl["id"], ttl["granted-ttl"], keys.join(",")),
    );
    let leases = json(&r(&["lease", "list", "-w", "json"]));
    out.insert("leases".into(), leases["leases"].to_string());
    let members = json(&r(&["member", "list", "-w", "json"]));
    let mut ms: Vec<String> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {}",
                m["ID"], m["name"], m["peerURLs"], m["clientURLs"]
            )
        })
        .collect();
    ms.sort();
    out.insert("members".into(), ms.join("\n"));
    out.insert(
        "members cluster_id".into(),
        members["header"]["cluster_id"].to_string(),
    );
    // The passwords: alice's from the backend, bob's added after auth was
    // enabled (in the log, plain text in etcd 3.4's entry).
    let alice = ctl_try(
        etcdctl,
        ep,
        Some("alice:alicepw"),
        &["get", "k00", "--print-value-only"],
    );
    out.insert("alice reads".into(), format!("{alice:?}"));
    let bob = ctl_try(etcdctl, ep, Some("bob:bobpw"), &["get", "k00"]);
    out.insert(
        "bob authenticates".into(),
        format!("{}", bob.is_err_and(|e| e.contains("permission denied"))),
    );
    let wrong = ctl_try(etcdctl, ep, Some("bob:wrong"), &["get", "k00"]);
    out.insert(
        "a wrong password".into(),
        format!(
            "{}",
            wrong.is_err_and(|e| e.contains("authentication failed"))
        ),
    );
    out
}

/// Every file under `dir` with its SHA-256.
fn digest(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

fn specs(dir: &Path, n: usize, extra: &[&str]) -> Vec<MemberSpec> {
    let ports = free_ports(2 * n);
    let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let cluster: Vec<String> = (0..n)
        .map(|i| format!("{}=http://127.0.0.1:{}", names[i], ports[2 * i + 1]))
        .collect();
    (0..n)
        .map(|i| MemberSpec {
            name: names[i].clone(),
            data: dir.join(&names[i]),
            client: ports[2 * i],
            peer: ports[2 * i + 1],
            initial_cluster: cluster.join(","),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

/// The whole scenario on `n` members.
fn scenario(n: usize, extra: &[&str], sig: libc::c_int, expect_snap: bool) {
    let Some((etcd, etcdctl)) = etcd_tools() else {
        return;
    };
    let dir = TempDir::new("ferret-migrate");
    let members = specs(dir.path(), n, extra);
    let eps: Vec<String> = members.iter().map(|m| m.endpoint()).collect();
    let mut running: Vec<Running> = members.iter().map(|m| start(&etcd, m, "etcd")).collect();
    for (r, m) in running.iter_mut().zip(&members) {
        wait_healthy(r, m);
    }
    let (lease, compacted) = fill(&etcdctl, &eps[0]);
    // Every member applied everything before it is stopped.
    let want_rev = json(&ctl(
        &etcdctl,
        &eps[0],
        Some(ROOT),
        &["get", "k00", "-w", "json"],
    ))["header"]["revision"]
        .clone();
    let before: Vec<_> = eps
        .iter()
        .map(|ep| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = json(&ctl(
                    &etcdctl,
                    ep,
                    Some(ROOT),
                    &["get", "k00", "-w", "json", "--consistency", "s"],
                ));
                if got["header"]["revision"] == want_rev || Instant::now() > deadline {
                    break;
                }
                sleep(Duration::from_millis(50));
            }
            observe(&etcdctl, ep, &lease, compacted)
        })
        .collect();
    // What is compared says something: etcd answered all of it.
    let b = &before[0];
    eprintln!("etcd answered: {b:#?}");
    for (k, want) in [
        ("below compacted", "true"),
        ("bob authenticates", "true"),
        ("a wrong password", "true"),
        ("alice reads", "Ok(\"w0\\n\")"),
    ] {
        assert_eq!(b[k], want, "etcd's answer: {k}");
    }
    assert!(b["lease"].contains("bGVhc2VkMQ=="), "{}", b["lease"]);
    assert_eq!(b["members"].lines().count(), n);
    for r in &mut running {
        stop(r, sig);
    }
    drop(running);
    let etcd_files: Vec<_> = members
        .iter()
        .map(|m| digest(&m.data.join("member")))
        .collect();
    if expect_snap {
        assert!(
            etcd_files[0]
                .keys()
                .any(|p| p.extension().is_some_and(|x| x == "snap")),
            "etcd wrote no snapshot file: {:?}",
            etcd_files[0].keys()
        );
    }

    // A conversion a crash interrupted is thrown away and done again.
    let leftover = members[0].data.join("ferretcd.converting");
    std::fs::create_dir_all(leftover.join("member")).unwrap();
    std::fs::write(leftover.join("member").join("junk"), b"half").unwrap();
    // ferretcd on the same data dirs, with the same flags.
    let mut running: Vec<Running> = members
        .iter()
        .map(|m| start(&ferretcd(), m, "ferretcd"))
        .collect();
    for (r, m) in running.iter_mut().zip(&members) {
        wait_healthy(r, m);
    }
    for (i, ep) in eps.iter().enumerate() {
        let after = observe(&etcdctl, ep, &lease, compacted);
        for (k, v) in &before[i] {
            assert_eq!(
                after.get(k),
                Some(v),
                "member {i}: {k} differs after the conversion\n{}",
                running[i].log_tail()
            );
        }
        assert!(
            running[i].log_tail().contains("converted etcd's data dir")
                || std::fs::read_to_string(&running[i].log)
                    .unwrap()
                    .contains("converted etcd's data dir")
        );
    }
    // It carries on: writes, and the other members see them.
    ctl(
        &etcdctl,
        &eps[0],
        Some(ROOT),
        &["put", "new-on-ferretcd", "1"],
    );
    for ep in &eps {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = ctl(
                &etcdctl,
                ep,
                Some(ROOT),
                &[
                    "get",
                    "new-on-ferretcd",
                    "--consistency",
                    "s",
                    "--print-value-only",
                ],
            );
            if got.trim() == "1" {
                break;
            }
            assert!(Instant::now() < deadline, "{ep} did not get the new key");
            sleep(Duration::from_millis(50));
        }
    }
    // A restart of a converted member does not convert again.
    stop(&mut running[0], libc::SIGTERM);
    running[0] = start(&ferretcd(), &members[0], "ferretcd");
    wait_healthy(&mut running[0], &members[0]);
    let got = ctl(
        &etcdctl,
        &eps[0],
        Some(ROOT),
        &["get", "new-on-ferretcd", "--print-value-only"],
    );
    assert_eq!(got.trim(), "1");
    for r in &mut running {
        stop(r, libc::SIGTERM);
    }
    drop(running);

    // etcd's files are untouched, and etcd starts on them again.
    for (i, m) in members.iter().enumerate() {
        assert_eq!(
            digest(&m.data.join("member")),
            etcd_files[i],
            "member {i}: etcd's files changed"
        );
        assert!(m.data.join("ferretcd").join("member").join("wal").is_dir());
        assert!(!m.data.join("ferretcd").join("member").join("junk").exists());
        assert!(!m.data.join("ferretcd.converting").exists());
    }
    let mut running: Vec<Running> = members
        .iter()
        .map(|m| start(&etcd, m, "etcd-again"))
        .collect();
    for (r, m) in running.iter_mut().zip(&members) {
        wait_healthy(r, m);
    }
    let again = observe(&etcdctl, &eps[0], &lease, compacted);
    for k in ["kvs", "revision", "users", "members", "cluster_id"] {
        assert_eq!(
            again.get(k),
            before[0].get(k),
            "etcd after the rollback: {k}"
        );
    }
    for r in &mut running {
        stop(r, libc::SIGTERM);
    }
}

#[test]
fn sigkill_replays_the_wal_tail() {
    scenario(
        1,
        &["--backend-batch-interval", "10s", "--snapshot-count", "25"],
        libc::SIGKILL,
        true,
    );
}

#[test]
fn sigterm_single_member() {
    scenario(1, &[], libc::SIGTERM, false);
}

#[test]
fn three_member_cluster() {
    scenario(3, &["--snapshot-count", "30"], libc::SIGTERM, true);
}

#[test]
fn refuses_a_running_etcd_and_leaves_no_trace() {
    let Some((etcd, _)) = etcd_tools() else {
        return;
    };
    let dir = TempDir::new("ferret-migrate-running");
    let m = &specs(dir.path(), 1, &[])[0];
    let mut e = start(&etcd, m, "etcd");
    wait_healthy(&mut e, m);
    // The same flags: the conversion comes before any listener.
    let mut f = start(&ferretcd(), m, "ferretcd");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = f.proc.exited() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "ferretcd did not stop:\n{}",
            f.log_tail()
        );
        sleep(Duration::from_millis(20));
    };
    let text = f.log_tail();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("member/snap/db") && text.contains("etcd is still running"),
        "{text}"
    );
    assert!(!m.data.join("ferretcd").exists());
    assert!(!m.data.join("ferretcd.converting").exists());
    stop(&mut e, libc::SIGTERM);
}

/// `etcdctl snapshot restore` writes the same layout (a snapshot file at
/// the bootstrap's index, no entries after it): ferretcd converts it too.
#[test]
fn a_dir_etcdctl_restored_converts() {
    let Some((etcd, etcdctl)) = etcd_tools() else {
        return;
    };
    let dir = TempDir::new("ferret-migrate-restored");
    let m = specs(dir.path(), 1, &[]).remove(0);
    let ep = m.endpoint();
    let mut e = start(&etcd, &m, "etcd");
    wait_healthy(&mut e, &m);
    for i in 0..5 {
        ctl(&etcdctl, &ep, None, &["put", &format!("k{i}"), "v"]);
    }
    ctl(&etcdctl, &ep, None, &["put", "k1", "w"]);
    let want = json(&ctl(
        &etcdctl,
        &ep,
        None,
        &["get", "", "--from-key", "-w", "json"],
    ));
    let snap = dir.path().join("backup.db");
    ctl(
        &etcdctl,
        &ep,
        None,
        &["snapshot", "save", snap.to_str().unwrap()],
    );
    stop(&mut e, libc::SIGTERM);
    let restored = MemberSpec {
        data: dir.path().join("restored"),
        ..m.clone()
    };
    let out = Command::new(&etcdctl)
        .env_clear()
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&restored.data)
        .args(["--name", &m.name])
        .args(["--initial-cluster", &m.initial_cluster])
        .args(["--initial-cluster-token", "migrate-test"])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{}", m.peer),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut f = start(&ferretcd(), &restored, "ferretcd");
    wait_healthy(&mut f, &restored);
    let got = json(&ctl(
        &etcdctl,
        &ep,
        None,
        &["get", "", "--from-key", "-w", "json"],
    ));
    assert_eq!(got["kvs"], want["kvs"], "{}", f.log_tail());
    assert_eq!(got["header"]["revision"], want["header"]["revision"]);
    let members = ctl(&etcdctl, &ep, None, &["member", "list"]);
    assert!(
        members.contains(&format!("http://127.0.0.1:{}", m.peer)),
        "{members}"
    );
    stop(&mut f, libc::SIGTERM);
}
