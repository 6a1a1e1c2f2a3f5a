//! `ETCDCTL_API=3 ferretctl defrag --data-dir`: offline defragmentation of
//! a ferretcd data directory (its backend is redb, not etcd's bbolt, so
//! etcdctl cannot do it and nothing is compared with etcdctl here).
//!
//! While the member runs, the command waits for the database's lock and
//! says so, as etcdctl does; once the member is stopped, it defragments,
//! and the member started again on the directory has every key.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::Duration;

use ferret_testkit::process::Proc;
use ferret_testkit::server::Server;

/// Runs `ferretctl` (v3) against `endpoint`, bounded by 60 s.
fn ferretctl(endpoint: &str, args: &[&str]) -> Output {
    let child = Command::new(common::ferretctl())
        .args(args)
        .env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferretctl");
    Proc(Some(child))
        .wait_output(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("ferretctl {args:?} did not finish in 60 s"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts ferretcd again on `data`, with the flags and ports it had.
fn restart(server: &Server, data: &Path) -> Proc {
    let curl = server.client_url();
    let purl = server.peer_url();
    let child = Command::new(common::ferretcd())
        .args(["--name", &server.name])
        .arg("--data-dir")
        .arg(data)
        .args(["--listen-client-urls", &curl])
        .args(["--advertise-client-urls", &curl])
        .args(["--listen-peer-urls", &purl])
        .args(["--initial-advertise-peer-urls", &purl])
        .args(["--initial-cluster", &format!("{}={purl}", server.name)])
        .env_remove("FERRETCD_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferretcd");
    Proc(Some(child))
}

#[test]
fn defrag_data_dir_waits_for_the_member_then_defragments() {
    let mut server =
        Server::start("ferretcd", &common::ferretcd(), "defrag").unwrap_or_else(|e| panic!("{e}"));
    let endpoint = server.client.to_string();
    let data = server.dir().join("data");
    let value = "v".repeat(10_000);
    for i in 0..50 {
        let out = ferretctl(&endpoint, &["put", &format!("k{i}"), &value]);
        assert!(out.status.success(), "put: {}", text(&out.stderr));
    }
    let out = ferretctl(&endpoint, &["del", "--prefix", "k1"]);
    assert!(out.status.success(), "del: {}", text(&out.stderr));
    // Compacted (through the gateway), so that there is space to reclaim.
    let req = ferret_testkit::http::Request {
        method: "POST".into(),
        target: b"/v3/kv/compaction".to_vec(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(b"{\"revision\":\"52\",\"physical\":true}".to_vec()),
    };
    let r = ferret_testkit::http::send(
        server.client,
        &req,
        ferret_testkit::http::BodyMode::Full,
        Duration::from_secs(10),
    )
    .expect("compaction");
    assert_eq!(r.status, 200, "{}", text(&r.body));

    // The member holds the database: the command waits, and says so.
    let data_arg = data.display().to_string();
    let child = Command::new(common::ferretctl())
        .args(["defrag", "--data-dir", &data_arg])
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferretctl");
    let mut waiting = Proc(Some(child));
    sleep(Duration::from_millis(1800));
    assert!(
        waiting.exited().is_none(),
        "defrag --data-dir did not wait for the running member"
    );
    let out = waiting.interrupt();
    let db = data.join("member").join("v3").join("backend.redb");
    assert_eq!(
        text(&out.stderr),
        format!(
            "waiting for etcd to close and release its lock on {:?}. To defrag a running etcd instance, omit --data-dir.\n",
            db.display().to_string()
        )
    );

    // Stopped: defragmented, silently, as etcdctl.
    server.stop();
    let blocks = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&db).expect("the backend").blocks()
    };
    let before = blocks();
    let out = ferretctl(&endpoint, &["defrag", "--data-dir", &data_arg]);
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), String::new(), String::new())
    );
    let after = blocks();
    eprintln!("backend: {before} blocks before, {after} after");
    assert!(after < before, "{before} blocks before, {after} after");

    // The member starts again on it and has every key it had.
    let mut again = restart(&server, &data);
    let mut keys = String::new();
    for _ in 0..100 {
        let out = ferretctl(&endpoint, &["get", "--prefix", "k", "--keys-only"]);
        if out.status.success() {
            keys = text(&out.stdout);
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let mut expected: Vec<String> = (0..50)
        .map(|i| format!("k{i}"))
        .filter(|k| !k.starts_with("k1"))
        .collect();
    expected.sort();
    let got: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(got, expected, "keys after the restart");
    again.kill();
}

#[test]
fn defrag_data_dir_refuses_a_directory_without_a_ferretcd_backend() {
    let dir = ferret_testkit::dir::TempDir::new("ferretctl-defrag-empty");
    let arg = dir.path().display().to_string();
    let out = ferretctl("127.0.0.1:1", &["defrag", "--data-dir", &arg]);
    let db = dir.path().join("member").join("v3").join("backend.redb");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "Failed to defragment etcd data[{arg}] (no ferretcd backend at {:?}: not a ferretcd data directory)\n",
            db.display().to_string()
        )
    );
    assert!(!db.exists(), "nothing is created");
}
