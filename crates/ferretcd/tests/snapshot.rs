//! `Maintenance.Snapshot` in etcd's format, checked with etcd's own tools:
//! a snapshot that Debian's etcdctl 3.4 saves from ferretcd passes
//! `etcdctl snapshot status`, and `etcdctl snapshot restore` turns it into
//! a data dir on which etcd 3.4 starts and answers as ferretcd did: the
//! same keys, values, create and mod revisions, versions, leases, the
//! same current and compacted revisions, users and roles. And `ferretctl snapshot
//! restore` makes a new 3-member ferretcd cluster of the same snapshot
//! that answers as the old one did.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferret_testkit::bin::{etcd_tools, ferretcd, workspace_binary};
use ferret_testkit::cluster::{Cluster, Options};
use ferret_testkit::dir::TempDir;
use ferret_testkit::ports::free_ports;
use ferret_testkit::server::{Server, Spec};

/// Runs etcdctl (v3) against `endpoint`; its stdout, or a panic with
/// what it printed.
fn ctl(etcdctl: &Path, endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(etcdctl)
        .env_clear()
        .args(["--endpoints", endpoint, "--command-timeout", "20s"])
        .args(args)
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Restores `snapshot` with `restorer` (etcdctl or ferretctl: the same
/// command and flags) into a new data dir under `dir`, and starts
/// `binary` (etcd or ferretcd) on it as a new one-member cluster.
fn restore_and_start(
    restorer: &Path,
    snapshot: &Path,
    dir: &Path,
    binary: &Path,
    label: &str,
) -> Server {
    let ports = free_ports(2);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let data = dir.join(format!("{label}.restored"));
    let out = Command::new(restorer)
        .env_clear()
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(snapshot)
        .arg("--data-dir")
        .arg(&data)
        .args(["--name", "restored"])
        .args(["--initial-cluster", &format!("restored={peer}")])
        .args(["--initial-advertise-peer-urls", &peer])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} snapshot restore: {}",
        restorer.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let initial = format!("restored={peer}");
    let mut s = Server::spawn(&Spec {
        label,
        binary,
        name: "restored",
        client: std::net::SocketAddr::from(([127, 0, 0, 1], ports[0])),
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], ports[1])),
        initial_cluster: Some(&initial),
        extra: &["--data-dir", data.to_str().unwrap()],
    })
    .unwrap();
    s.wait_healthy(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.log_tail(30)));
    s
}

/// What a v3 client sees of a server: every key with its revisions and
/// lease, the current revision, old values, the compaction, the leases.
fn observe(etcdctl: &Path, endpoint: &str, old_rev: i64, compacted: i64) -> Vec<String> {
    let all = json(&ctl(
        etcdctl,
        endpoint,
        &["get", "", "--from-key", "-w", "json"],
    ));
    let mut out = vec![
        format!("kvs {}", all["kvs"]),
        format!("revision {}", all["header"]["revision"]),
    ];
    let old = json(&ctl(
        etcdctl,
        endpoint,
        &[
            "get",
            "k",
            "--prefix",
            "-w",
            "json",
            "--rev",
            &old_rev.to_string(),
        ],
    ));
    out.push(format!("at {old_rev}: {}", old["kvs"]));
    let below = Command::new(etcdctl)
        .env_clear()
        .args(["--endpoints", endpoint, "get", "k1", "--rev"])
        .arg((compacted - 1).to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&below.stderr);
    out.push(format!(
        "below the compaction: {}",
        err.lines().last().unwrap_or_default()
    ));
    out.push(format!(
        "leases: {}",
        ctl(etcdctl, endpoint, &["lease", "list"]).trim()
    ));
    for args in [
        &["user", "list"][..],
        &["user", "get", "alice"],
        &["role", "get", "reader"],
    ] {
        out.push(format!("{args:?}: {}", ctl(etcdctl, endpoint, args).trim()));
    }
    out
}

#[test]
fn a_snapshot_saved_from_ferretcd_restores_into_etcd() {
    let Some((etcd, etcdctl)) = etcd_tools() else {
        return;
    };
    let f = Server::start("ferretcd", &ferretcd(), "snapsrc").expect("start ferretcd");
    let ep = f.client.to_string();
    let e = |args: &[&str]| ctl(&etcdctl, &ep, args);

    for i in 0..40 {
        e(&["put", &format!("k{i}"), &format!("v{i}")]);
    }
    let old_rev = json(&e(&["put", "k1", "again", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    e(&["del", "k2"]);
    let big = "x".repeat(100_000); // bbolt overflow pages
    e(&["put", "big", &big]);
    let lease = e(&["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    e(&["put", "leased", "v", "--lease", &lease]);
    add_users(&etcdctl, &ep);
    let compacted = old_rev - 10;
    e(&["compaction", &compacted.to_string()]);
    e(&["put", "k3", "after"]);

    let dir = TempDir::new("ferret-snapshot-test");
    let file = dir.path().join("snap.db");
    let file_s = file.to_str().unwrap();
    e(&["snapshot", "save", file_s]);
    let status = json(&ctl(
        &etcdctl,
        &ep,
        &["snapshot", "status", file_s, "-w", "json"],
    ));
    let current = json(&e(&["get", "k3", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    assert_eq!(status["revision"].as_i64(), Some(current), "{status}");
    // Every revision from the compaction on, and the kept ones below it.
    assert!(status["totalKey"].as_i64().unwrap() > 40, "{status}");

    // Restore as etcd's tools do, then start etcd 3.4 on it.
    let r = restore_and_start(&etcdctl, &file, dir.path(), &etcd, "etcd");

    let seen_f = observe(&etcdctl, &ep, old_rev, compacted);
    let seen_r = observe(&etcdctl, &r.client.to_string(), old_rev, compacted);
    assert_eq!(seen_f.len(), seen_r.len());
    for (f, r) in seen_f.iter().zip(&seen_r) {
        assert!(f == r, "ferretcd: {:.3000}\netcd:     {:.3000}", f, r);
    }
    assert!(seen_f[0].contains(&lease_dec(&lease)), "{}", seen_f[0]);
}

/// A lease id as etcdctl prints it (hex) in the JSON's decimal.
fn lease_dec(hex: &str) -> String {
    i64::from_str_radix(hex, 16).unwrap().to_string()
}

/// Writes the keys `observe` looks at; returns (an old revision, the
/// compaction).
/// Users and roles, as [`observe`] reads them (auth stays off: every
/// other request needs none).
fn add_users(etcdctl: &Path, ep: &str) {
    let e = |args: &[&str]| ctl(etcdctl, ep, args);
    e(&["user", "add", "alice:alicepw"]);
    e(&["role", "add", "reader"]);
    e(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "k",
        "--prefix",
    ]);
    e(&["user", "grant-role", "alice", "reader"]);
}

fn write_history(etcdctl: &Path, ep: &str) -> (i64, i64) {
    let e = |args: &[&str]| ctl(etcdctl, ep, args);
    for i in 0..30 {
        e(&["put", &format!("k{i}"), &format!("v{i}")]);
    }
    let old_rev = json(&e(&["put", "k1", "again", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    e(&["del", "k2"]);
    e(&["put", "big", &"y".repeat(50_000)]);
    let lease = e(&["lease", "grant", "600"]);
    let lease = lease.split_whitespace().nth(1).unwrap().to_string();
    e(&["put", "leased", "v", "--lease", &lease]);
    add_users(etcdctl, ep);
    let compacted = old_rev - 5;
    e(&["compaction", &compacted.to_string()]);
    e(&["put", "k3", "after"]);
    (old_rev, compacted)
}

#[test]
fn a_snapshot_restores_into_a_new_ferretcd_cluster() {
    let Some((_, etcdctl)) = etcd_tools() else {
        return;
    };
    let ferretctl = workspace_binary("ferretctl", "ferretctl");
    let mut c = Cluster::start(Options::default());
    c.wait_all();
    let ep = c.members[0].client.to_string();
    let (old_rev, compacted) = write_history(&etcdctl, &ep);
    let before = observe(&etcdctl, &ep, old_rev, compacted);

    let dir = TempDir::new("ferret-snapshot-restore");
    let file = dir.path().join("snap.db");
    ctl(&etcdctl, &ep, &["snapshot", "save", file.to_str().unwrap()]);

    // The cluster's disks are gone; each member is restored from the file.
    for i in 0..c.members.len() {
        c.kill(i);
        c.wipe(i);
    }
    for i in 0..c.members.len() {
        let m = &c.members[i];
        let out = Command::new(&ferretctl)
            .arg("snapshot")
            .arg("restore")
            .arg(&file)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--name", &m.name])
            .args(["--initial-cluster", c.initial_cluster()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ferretctl snapshot restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for i in 0..c.members.len() {
        c.restart(i);
    }
    c.wait_all();
    for i in 0..c.members.len() {
        let ep = c.members[i].client.to_string();
        let after = observe(&etcdctl, &ep, old_rev, compacted);
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert!(
                b == a,
                "member {i}:\nbefore: {:.3000}\nafter:  {:.3000}",
                b,
                a
            );
        }
    }
    // The new cluster goes on from the snapshot's revision.
    let next = json(&ctl(&etcdctl, &ep, &["put", "new", "1", "-w", "json"]));
    let last = json(&ctl(&etcdctl, &ep, &["get", "k3", "-w", "json"]))["kvs"][0]["mod_revision"]
        .as_i64()
        .unwrap();
    assert!(
        next["header"]["revision"].as_i64().unwrap() > last,
        "{next}"
    );
}

/// Moving from etcd: a snapshot etcd 3.4 saved, restored with ferretctl,
/// gives a ferretcd that answers as that etcd did.
#[test]
fn a_snapshot_saved_from_etcd_restores_into_ferretcd() {
    let Some((etcd, etcdctl)) = etcd_tools() else {
        return;
    };
    let ferretctl = workspace_binary("ferretctl", "ferretctl");
    let src = Server::start("etcd", &etcd, "etcdsrc").expect("start etcd");
    let ep = src.client.to_string();
    let (old_rev, compacted) = write_history(&etcdctl, &ep);
    let before = observe(&etcdctl, &ep, old_rev, compacted);
    let dir = TempDir::new("ferret-snapshot-from-etcd");
    let file = dir.path().join("snap.db");
    ctl(&etcdctl, &ep, &["snapshot", "save", file.to_str().unwrap()]);

    let f = restore_and_start(&ferretctl, &file, dir.path(), &ferretcd(), "ferretcd");
    let after = observe(&etcdctl, &f.client.to_string(), old_rev, compacted);
    for (b, a) in before.iter().zip(&after) {
        assert!(b == a, "etcd:     {:.3000}\nferretcd: {:.3000}", b, a);
    }
}

/// Runs etcdctl and answers whether it succeeded and what it printed.
fn ctl_try(etcdctl: &Path, endpoint: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(etcdctl)
        .env_clear()
        .args(["--endpoints", endpoint, "--command-timeout", "20s"])
        .args(args)
        .output()
        .expect("run etcdctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// v3 auth travels in a snapshot: users (with their bcrypt hashes),
/// roles, permissions and the enabled flag saved from ferretcd (by root
/// only) work on etcd 3.4 started on the restored snapshot.
#[test]
fn a_snapshot_with_v3_auth_restores_into_etcd() {
    let Some((etcd, etcdctl)) = etcd_tools() else {
        return;
    };
    let f = Server::start("ferretcd", &ferretcd(), "authsnap").expect("start ferretcd");
    let ep = f.client.to_string();
    let e = |args: &[&str]| ctl(&etcdctl, &ep, args);
    e(&["user", "add", "root:rootpw"]);
    e(&["user", "add", "alice:alicepw"]);
    e(&["role", "add", "reader"]);
    e(&["role", "grant-permission", "reader", "read", "foo"]);
    e(&["user", "grant-role", "alice", "reader"]);
    e(&["auth", "enable"]);
    e(&["--user", "root:rootpw", "put", "foo", "bar"]);

    let dir = TempDir::new("ferret-auth-snapshot-test");
    let file = dir.path().join("snap.db");
    let file_s = file.to_str().unwrap();
    let (ok, text) = ctl_try(
        &etcdctl,
        &ep,
        &["--user", "alice:alicepw", "snapshot", "save", file_s],
    );
    assert!(!ok && text.contains("auth: permission denied"), "{text}");
    e(&["--user", "root:rootpw", "snapshot", "save", file_s]);

    let r = restore_and_start(&etcdctl, &file, dir.path(), &etcd, "etcd");
    let rep = r.client.to_string();
    let got = ctl(&etcdctl, &rep, &["--user", "alice:alicepw", "get", "foo"]);
    assert_eq!(got, "foo\nbar\n");
    let (ok, text) = ctl_try(
        &etcdctl,
        &rep,
        &["--user", "alice:alicepw", "put", "foo", "x"],
    );
    assert!(
        !ok && text.contains("etcdserver: permission denied"),
        "{text}"
    );
    let (ok, text) = ctl_try(&etcdctl, &rep, &["get", "foo"]);
    assert!(
        !ok && text.contains("etcdserver: user name is empty"),
        "{text}"
    );
    let users = ctl(&etcdctl, &rep, &["--user", "root:rootpw", "user", "list"]);
    assert_eq!(users, "alice\nroot\n");
}
