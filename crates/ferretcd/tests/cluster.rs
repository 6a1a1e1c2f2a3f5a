//! Multi-process cluster tests on loopback: three `ferretcd` processes with
//! fast timers (heartbeat 50 ms, election timeout 500 ms), killed, stopped,
//! restarted and fed damaged files, checking that the cluster keeps serving
//! and never loses an acknowledged write.
//!
//! Every test starts its own cluster on its own ports and data dirs, so the
//! tests run in parallel; every wait polls with a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::cluster::{json_str, poll, text, Cluster, Options, CLIENT_TIMEOUT};
use common::http::{self, BodyMode, Request, Response};
use common::json::{self, Json};

const SETTLE: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(20);

fn start() -> Cluster {
    Cluster::start(Options::default())
}

fn is_ok(r: &Response) -> bool {
    r.status == 200 || r.status == 201
}

/// Polls member `i`'s local (serializable) view until `key` has `want`:
/// a member applies a committed write a moment after the member that
/// answered it.
fn await_value(c: &Cluster, i: usize, key: &str, want: Option<&str>) {
    poll(
        &format!("m{i} sees {key} = {want:?}"),
        SETTLE,
        EVERY,
        || match c.value(i, key) {
            v if v.as_deref() == want => Ok(()),
            v => Err(format!("{v:?}")),
        },
    )
}

/// The nodes of a directory listing, key -> value (`None` for a directory).
fn listing(body: &str) -> BTreeMap<String, Option<String>> {
    let doc = json::parse(body).unwrap_or_else(|| panic!("not JSON: {body}"));
    let mut out = BTreeMap::new();
    if let Some(Json::Arr(nodes)) = doc.value.get("node").and_then(|n| n.get("nodes")) {
        for n in nodes {
            let key = n
                .get("key")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            let value = n.get("value").and_then(Json::as_str).map(str::to_string);
            out.insert(key, value);
        }
    }
    out
}

/// A linearizable listing of directory `dir` on member `i`.
fn quorum_listing(c: &Cluster, i: usize, dir: &str) -> BTreeMap<String, Option<String>> {
    let r = c.request(
        i,
        "GET",
        &format!("/v2/keys/{dir}?recursive=true&sorted=true&quorum=true"),
        None,
    );
    assert_eq!(
        r.status,
        200,
        "quorum listing of {dir} on m{i}: {}",
        text(&r)
    );
    listing(&text(&r))
}

/// A watch on member `i`, started in a thread; returns once the response
/// head arrived (the watch is registered), with a handle on the body.
fn watch(c: &Cluster, i: usize, target: &str) -> thread::JoinHandle<Result<Response, String>> {
    let addr = c.client(i);
    let req = Request {
        method: "GET".into(),
        target: target.as_bytes().to_vec(),
        ..Default::default()
    };
    let (head_tx, head_rx) = mpsc::channel();
    let h = thread::spawn(move || {
        http::send_notify(addr, &req, BodyMode::Full, SETTLE, Some(head_tx), None)
    });
    head_rx
        .recv_timeout(SETTLE)
        .unwrap_or_else(|_| panic!("watch {target} on m{i}: no response head"));
    h
}

fn join_watch(h: thread::JoinHandle<Result<Response, String>>, what: &str) -> String {
    let r = h
        .join()
        .expect("watch thread")
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.status, 200, "{what}: {}", text(&r));
    text(&r)
}

/// The etcd tutorial's steps, each step's write and read on different
/// members.
#[test]
fn tutorial_across_members() {
    let c = start();

    // Set via m0, read via m1 (local) and m2 (linearizable).
    let r = c.put(0, "message", "Hello world");
    assert_eq!(r.status, 201, "{}", text(&r));
    await_value(&c, 1, "message", Some("Hello world"));
    let r = c.qget(2, "message");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        json_str(&text(&r), &["node", "value"]).as_deref(),
        Some("Hello world"),
        "quorum GET on m2 sees the write acknowledged by m0 at once: {}",
        text(&r)
    );

    // A directory and a key in it via m1, listed via m0.
    let r = c.request(1, "PUT", "/v2/keys/dir?dir=true", None);
    assert_eq!(r.status, 201, "mkdir: {}", text(&r));
    c.put_ok(1, "dir/a", "in a dir");
    poll("m0 lists /dir/a", SETTLE, EVERY, || {
        let r = c.get(0, "dir");
        let l = listing(&text(&r));
        match l.get("/dir/a") {
            Some(Some(v)) if v == "in a dir" => Ok(()),
            _ => Err(text(&r)),
        }
    });

    // A recursive watch on m2, woken by a write on m0.
    let w = watch(&c, 2, "/v2/keys/watched?wait=true&recursive=true");
    c.put_ok(0, "watched/deep/key", "woken");
    let body = join_watch(w, "watch on m2");
    assert_eq!(
        json_str(&body, &["action"]).as_deref(),
        Some("set"),
        "{body}"
    );
    assert_eq!(
        json_str(&body, &["node", "key"]).as_deref(),
        Some("/watched/deep/key"),
        "{body}"
    );
    assert_eq!(
        json_str(&body, &["node", "value"]).as_deref(),
        Some("woken")
    );

    // Compare-and-swap via m1, seen on m2; a failed one is refused.
    c.put_ok(1, "cas", "one");
    let r = c.request(1, "PUT", "/v2/keys/cas?prevValue=one", Some("value=two"));
    assert_eq!(r.status, 200, "CAS: {}", text(&r));
    assert_eq!(
        json_str(&text(&r), &["action"]).as_deref(),
        Some("compareAndSwap")
    );
    await_value(&c, 2, "cas", Some("two"));
    let r = c.request(2, "PUT", "/v2/keys/cas?prevValue=one", Some("value=three"));
    assert_eq!(r.status, 412, "stale CAS refused: {}", text(&r));
    assert!(text(&r).contains(r#""errorCode":101"#), "{}", text(&r));
    await_value(&c, 0, "cas", Some("two"));

    // A key with ttl=1 via m0: a watcher on m1 sees it expire, then it is
    // gone on every member.
    let r = c.request(0, "PUT", "/v2/keys/ttl", Some("value=short&ttl=1"));
    assert_eq!(r.status, 201, "{}", text(&r));
    let idx = json::parse(&text(&r))
        .and_then(|d| d.value.get("node")?.get("modifiedIndex")?.as_u64())
        .expect("modifiedIndex");
    let w = watch(
        &c,
        1,
        &format!("/v2/keys/ttl?wait=true&waitIndex={}", idx + 1),
    );
    let body = join_watch(w, "expiry watch on m1");
    assert_eq!(
        json_str(&body, &["action"]).as_deref(),
        Some("expire"),
        "{body}"
    );
    for i in 0..3 {
        await_value(&c, i, "ttl", None);
    }
}

/// SIGKILL the leader: the survivors elect a new one within 5 election
/// timeouts and keep taking writes; the killed member restarts and catches
/// up.
#[test]
fn leader_killed_new_leader_and_catch_up() {
    let mut c = start();
    let old = c.leader();
    c.put_ok(old, "before", "1");

    let killed_at = Instant::now();
    c.kill(old);
    let new = poll("a new leader", SETTLE, Duration::from_millis(5), || {
        c.current_leader()
    });
    let took = killed_at.elapsed();
    println!(
        "new leader m{new} {:?} after SIGKILL of leader m{old}",
        took
    );
    assert!(
        took < 5 * c.opts.election(),
        "new leader after {took:?}, more than 5 election timeouts"
    );

    let survivors = c.live();
    for n in 0..20 {
        let via = survivors[n % survivors.len()];
        c.put_ok(via, &format!("during/{n}"), &format!("v{n}"));
    }

    c.restart(old);
    c.wait_ready(old);
    for n in 0..20 {
        await_value(&c, old, &format!("during/{n}"), Some(&format!("v{n}")));
    }
    assert_eq!(c.value(old, "before").as_deref(), Some("1"));
    let r = c.qget(old, "during/19");
    assert_eq!(r.status, 200, "{}", text(&r));
}

/// A follower that missed more than the leader keeps in its log catches up
/// from a snapshot. ferretcd, like etcd, keeps 5000 entries after each
/// snapshot for slow followers, so with `--snapshot-count 20` the leader
/// must apply more than 5000 entries while the follower is down before it
/// has to send a snapshot: 200 keys are written, each many times.
#[test]
fn lagging_member_catches_up_by_snapshot() {
    let mut c = Cluster::start(Options {
        snapshot_count: Some(20),
        ..Options::default()
    });
    let l = c.leader();
    let f = c.follower_of(l);
    c.put_ok(l, "snap/first", "x");
    c.kill(f);
    // Writes go to the leader (a follower would forward them).

    const KEYS: usize = 200;
    const ROUNDS: usize = 27; // 5400 writes, past the 5000 kept entries
    let leader = c.client(l);
    let started = Instant::now();
    thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for round in 0..ROUNDS {
                    for k in (t..KEYS).step_by(8) {
                        let req = Request {
                            method: "PUT".into(),
                            target: format!("/v2/keys/snap/k{k:03}").into_bytes(),
                            headers: vec![(
                                "Content-Type".into(),
                                "application/x-www-form-urlencoded".into(),
                            )],
                            body: Some(format!("value=r{round}").into_bytes()),
                        };
                        // Retried (the same value) should an election
                        // under load make one fail.
                        poll(&format!("PUT k{k} round {round}"), SETTLE, EVERY, || {
                            let r = http::send(leader, &req, BodyMode::Full, CLIENT_TIMEOUT)?;
                            if is_ok(&r) {
                                Ok(())
                            } else {
                                Err(format!("{} {}", r.status, text(&r)))
                            }
                        });
                    }
                }
            });
        }
    });
    println!(
        "{} writes in {:?} with m{f} down",
        KEYS * ROUNDS,
        started.elapsed()
    );

    c.restart(f);
    c.wait_ready(f);
    let last = format!("snap/k{:03}", KEYS - 1);
    await_value(&c, f, &last, Some(&format!("r{}", ROUNDS - 1)));
    let target = "/v2/keys/snap?recursive=true&sorted=true";
    let want = text(&c.request(l, "GET", target, None));
    assert_eq!(listing(&want).len(), KEYS + 1, "{want}");
    poll(
        &format!("m{f}'s listing equals the leader's"),
        SETTLE,
        EVERY,
        || {
            let got = text(&c.request(f, "GET", target, None));
            if got == want {
                Ok(())
            } else {
                Err(format!("{} bytes vs {}", got.len(), want.len()))
            }
        },
    );
    let log = c.members[f].last_start_log();
    assert!(
        log.contains("installed a snapshot"),
        "m{f} caught up without installing a snapshot; its log:\n{log}"
    );
}

/// With 2 of 3 members down, the survivor (the former leader) steps down:
/// writes and quorum reads time out with etcd's error 300, local reads
/// still answer, /health turns false (503 `{"health":"false"}`, as etcd
/// 3.4). One member back, and writes succeed again.
#[test]
fn minority_cannot_write() {
    let mut c = start();
    let s = c.leader();
    c.put_ok(s, "k", "before");
    let others: Vec<usize> = (0..3).filter(|&i| i != s).collect();
    let killed_at = Instant::now();
    for &i in &others {
        c.kill(i);
    }

    // CheckQuorum: the leader steps down after an election timeout without
    // hearing from a quorum.
    poll("/health false on the survivor", SETTLE, EVERY, || {
        let r = http::get(c.client(s), "/health", Duration::from_secs(2))?;
        if r.status == 503 && text(&r).contains(r#"{"health":"false"}"#) {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, text(&r)))
        }
    });
    println!(
        "/health false {:?} after the quorum was lost",
        killed_at.elapsed()
    );
    let (state, _, leader) = c.stats(s).expect("stats");
    assert_eq!(state, "StateFollower");
    assert_eq!(leader, "", "no leader known");

    let timeout = c.opts.request_timeout();
    let (write, qread) = thread::scope(|sc| {
        let timed = |method: &'static str, target: &'static str, form: Option<&'static str>| {
            let c = &c;
            sc.spawn(move || {
                let t = Instant::now();
                let r = c.request(s, method, target, form);
                (r, t.elapsed())
            })
        };
        let w = timed("PUT", "/v2/keys/k", Some("value=lost"));
        let q = timed("GET", "/v2/keys/k?quorum=true", None);
        // Local reads are answered meanwhile, at once.
        let t = Instant::now();
        let r = c.get(s, "k");
        assert_eq!(r.status, 200, "plain GET on the survivor: {}", text(&r));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(
            json_str(&text(&r), &["node", "value"]).as_deref(),
            Some("before")
        );
        (w.join().unwrap(), q.join().unwrap())
    });
    for (what, (r, took)) in [("write", write), ("quorum GET", qread)] {
        println!("{what} on the minority: {} after {took:?}", r.status);
        assert_eq!(r.status, 500, "{what}: {}", text(&r));
        assert!(
            text(&r).contains(r#""errorCode":300"#)
                && text(&r).contains("etcdserver: request timed out"),
            "{what}: {}",
            text(&r)
        );
        assert!(
            took + Duration::from_millis(500) >= timeout,
            "{what} failed after {took:?}, before the request timeout {timeout:?}"
        );
    }

    c.restart(others[0]);
    c.wait_ready(others[0]);
    c.wait_ready(s);
    poll("a write on the survivor", SETTLE, EVERY, || {
        let r = c.put(s, "k", "after");
        if is_ok(&r) {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, text(&r)))
        }
    });
    let r = c.qget(others[0], "k");
    assert_eq!(
        json_str(&text(&r), &["node", "value"]).as_deref(),
        Some("after")
    );
}

/// SIGKILL every member at once, restart them all: every acknowledged write
/// is there. With `--snapshot-count 25`, each member restarts from its
/// newest snapshot plus the WAL entries after it.
#[test]
fn whole_cluster_restart_keeps_acknowledged_writes() {
    let mut c = Cluster::start(Options {
        snapshot_count: Some(25),
        ..Options::default()
    });
    for n in 0..100 {
        c.put_ok(n % 3, &format!("all/k{n:03}"), &format!("v{n}"));
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.restart(i);
    }
    c.wait_all();
    c.leader();
    for i in 0..3 {
        let log = c.members[i].last_start_log();
        assert!(
            log.contains("restored the state from a snapshot"),
            "m{i} restarted without a snapshot:\n{log}"
        );
        let l = quorum_listing(&c, i, "all");
        let want: BTreeMap<String, Option<String>> = (0..100)
            .map(|n| (format!("/all/k{n:03}"), Some(format!("v{n}"))))
            .collect();
        assert_eq!(l, want, "m{i} after the restart");
        let r = c.qget(i, "all/k099");
        assert_eq!(
            json_str(&text(&r), &["node", "value"]).as_deref(),
            Some("v99")
        );
    }
}

/// What became of one write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    /// 200 or 201: must survive.
    Acked,
    /// Never reached a member (connection refused): must not appear.
    Failed,
    /// Timed out, cut off, or an error status: may or may not have happened.
    Unknown,
}

/// Four writers through random members for ~4 s; the leader is SIGKILLed
/// after 1.5 s and restarted after 3 s. Every acknowledged key is on every
/// member afterwards, and no key whose write never reached a member.
/// Writers give up on a request after 2 s (the outcome is then unknown),
/// so they keep writing through the new leader instead of waiting out the
/// request timeout of proposals lost with the old one.
#[test]
fn member_killed_during_writes_loses_nothing_acknowledged() {
    // Snapshots every 100 entries: members restart from a snapshot and the
    // WAL after it.
    let mut c = Cluster::start(Options {
        snapshot_count: Some(100),
        ..Options::default()
    });
    let addrs: Vec<SocketAddr> = (0..3).map(|i| c.client(i)).collect();
    let begin = Instant::now();
    let results: Vec<(String, Fate)> = thread::scope(|s| {
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let addrs = &addrs;
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1).wrapping_mul(0xA076_1D64);
                    let mut out = Vec::new();
                    let mut n = 0;
                    while begin.elapsed() < Duration::from_secs(4) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let addr = addrs[(rng % 3) as usize];
                        let key = format!("w{t}-{n:05}");
                        n += 1;
                        let req = Request {
                            method: "PUT".into(),
                            target: format!("/v2/keys/load/{key}").into_bytes(),
                            headers: vec![(
                                "Content-Type".into(),
                                "application/x-www-form-urlencoded".into(),
                            )],
                            body: Some(b"value=x".to_vec()),
                        };
                        let sent = http::send(addr, &req, BodyMode::Full, Duration::from_secs(2));
                        let fate = match sent {
                            Ok(r) if is_ok(&r) => Fate::Acked,
                            Ok(_) => Fate::Unknown,
                            Err(e) if e.starts_with("connect ") => {
                                sleep(Duration::from_millis(5));
                                Fate::Failed
                            }
                            Err(_) => Fate::Unknown,
                        };
                        out.push((format!("/load/{key}"), fate));
                    }
                    out
                })
            })
            .collect();
        sleep(Duration::from_millis(1500).saturating_sub(begin.elapsed()));
        let l = c.leader();
        c.kill(l);
        println!("killed leader m{l} at {:?}", begin.elapsed());
        sleep(Duration::from_millis(3000).saturating_sub(begin.elapsed()));
        c.restart(l);
        println!("restarted m{l} at {:?}", begin.elapsed());
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect()
    });
    c.wait_all();
    c.leader();
    let count = |f: Fate| results.iter().filter(|r| r.1 == f).count();
    println!(
        "writes: {} acked, {} failed (refused), {} unknown, in {:?}",
        count(Fate::Acked),
        count(Fate::Failed),
        count(Fate::Unknown),
        begin.elapsed()
    );
    assert!(count(Fate::Acked) > 0, "no write succeeded");

    // Settled: every member's linearizable view is the same.
    let views = poll("the same keys on every member", SETTLE, EVERY, || {
        let v: Vec<BTreeSet<String>> = (0..3)
            .map(|i| quorum_listing(&c, i, "load").into_keys().collect())
            .collect();
        if v[0] == v[1] && v[1] == v[2] {
            Ok(v)
        } else {
            Err(format!(
                "{} / {} / {} keys",
                v[0].len(),
                v[1].len(),
                v[2].len()
            ))
        }
    });
    let fates: BTreeMap<&str, Fate> = results.iter().map(|(k, f)| (k.as_str(), *f)).collect();
    for (i, view) in views.iter().enumerate() {
        let missing: Vec<&&str> = fates
            .iter()
            .filter(|(k, f)| **f == Fate::Acked && !view.contains(**k))
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty(),
            "m{i} lacks {} acknowledged keys: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        let phantom: Vec<&String> = view
            .iter()
            .filter(|k| fates.get(k.as_str()).is_none_or(|f| *f == Fate::Failed))
            .collect();
        assert!(
            phantom.is_empty(),
            "m{i} holds keys never sent or refused: {phantom:?}"
        );
    }
}

/// SIGTERM stops a member with exit status 0; it restarts with its data.
#[test]
fn sigterm_stops_cleanly_and_restarts_with_data() {
    let mut c = start();
    let l = c.leader();
    c.put_ok(l, "kept", "yes");
    let f = c.follower_of(l);
    await_value(&c, f, "kept", Some("yes"));
    for i in [f, l] {
        let t = Instant::now();
        let st = c.stop(i);
        println!("m{i} exited {st} {:?} after SIGTERM", t.elapsed());
        assert_eq!(
            st.code(),
            Some(0),
            "m{i} exit status after SIGTERM: {st}\n{}",
            c.members[i].log_tail(20)
        );
        c.restart(i);
        c.wait_ready(i);
        assert_eq!(c.value(i, "kept").as_deref(), Some("yes"), "m{i}");
    }
    c.leader();
    c.put_ok(f, "after", "restart");
}

/// `/v2/members` and `/v2/machines` list the three members everywhere;
/// every member tells the same cluster id.
#[test]
fn members_machines_and_cluster_id() {
    let c = start();
    let want: BTreeSet<(String, Vec<String>, Vec<String>)> = c
        .members
        .iter()
        .map(|m| (m.name.clone(), vec![m.peer_url()], vec![m.client_url()]))
        .collect();
    let urls = |m: &Json, f: &str| -> Vec<String> {
        match m.get(f) {
            Some(Json::Arr(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut ids = BTreeSet::new();
    for i in 0..3 {
        // Each member publishes its name and client URLs once it has a
        // leader; another member may apply that a moment later.
        poll(&format!("m{i} lists every member"), SETTLE, EVERY, || {
            let r = c.request(i, "GET", "/v2/members", None);
            let body = text(&r);
            let doc = json::parse(&body).ok_or(format!("not JSON: {body}"))?;
            let Some(Json::Arr(ms)) = doc.value.get("members") else {
                return Err(body);
            };
            let got: BTreeSet<_> = ms
                .iter()
                .map(|m| {
                    (
                        m.get("name")
                            .and_then(Json::as_str)
                            .unwrap_or("")
                            .to_string(),
                        urls(m, "peerURLs"),
                        urls(m, "clientURLs"),
                    )
                })
                .collect();
            if r.status == 200 && got == want && ms.len() == 3 {
                Ok(())
            } else {
                Err(body)
            }
        });
        let r = c.request(i, "GET", "/v2/machines", None);
        assert_eq!(r.status, 200);
        let got: BTreeSet<String> = text(&r).split(", ").map(str::to_string).collect();
        let want_urls: BTreeSet<String> = c.members.iter().map(|m| m.client_url()).collect();
        assert_eq!(got, want_urls, "/v2/machines on m{i}");
        for target in ["/v2/keys/", "/v2/members"] {
            let r = c.request(i, "GET", target, None);
            let id = r
                .header("X-Etcd-Cluster-Id")
                .unwrap_or_else(|| panic!("no X-Etcd-Cluster-Id on {target} of m{i}"));
            assert!(!id.is_empty() && id != "0", "cluster id {id:?}");
            ids.insert(id.to_string());
        }
    }
    assert_eq!(ids.len(), 1, "cluster ids: {ids:?}");
}

fn wal_files(c: &Cluster, i: usize) -> Vec<PathBuf> {
    let dir = c.members[i].data_dir.join("member").join("wal");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// A byte flipped in the middle of a WAL segment stops the start with an
/// error naming the file and the offset; a torn tail (the last bytes cut)
/// is truncated and the member starts.
#[test]
fn corrupt_wal_refuses_to_start_torn_tail_recovers() {
    let mut c = start();
    let l = c.leader();
    for n in 0..60 {
        c.put_ok(l, &format!("wal/k{n:02}"), &format!("value number {n}"));
    }
    let (bad, torn) = {
        let f: Vec<usize> = (0..3).filter(|&i| i != l).collect();
        (f[0], f[1])
    };
    for i in [bad, torn] {
        await_value(&c, i, "wal/k59", Some("value number 59"));
    }

    // A flipped byte in the middle of the (only) segment.
    let st = c.stop(bad);
    assert!(st.success(), "{st}");
    let files = wal_files(&c, bad);
    let seg = files.last().expect("a WAL segment").clone();
    let mut bytes = fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    fs::write(&seg, &bytes).unwrap();
    c.restart(bad);
    let st = c
        .wait_exit(bad, SETTLE)
        .unwrap_or_else(|| panic!("m{bad} still runs on a corrupt WAL"));
    assert!(!st.success(), "m{bad} exit status on a corrupt WAL: {st}");
    let log = c.members[bad].last_start_log();
    let line = log
        .lines()
        .find(|l| l.contains("corrupt"))
        .unwrap_or_else(|| panic!("no line about corruption in m{bad}'s log:\n{log}"));
    println!("m{bad} ({} of {} bytes flipped): {line}", at, bytes.len());
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(line.contains(&name), "the error names {name}: {line}");
    let offset: u64 = line
        .split("at byte ")
        .nth(1)
        .and_then(|s| s.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the error gives a byte offset: {line}"));
    assert!(
        offset <= at as u64,
        "offset {offset} is at or before the damage at {at}: {line}"
    );

    // A torn tail: the last bytes of the last segment cut off.
    let st = c.stop(torn);
    assert!(st.success(), "{st}");
    let seg = wal_files(&c, torn).last().expect("a WAL segment").clone();
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    c.restart(torn);
    c.wait_ready(torn);
    let log = c.members[torn].last_start_log();
    assert!(
        log.contains("torn"),
        "m{torn}'s log tells about the torn tail:\n{log}"
    );
    await_value(&c, torn, "wal/k59", Some("value number 59"));
    c.put_ok(torn, "wal/after", "torn tail");
    let r = c.qget(l, "wal/after");
    assert_eq!(r.status, 200, "{}", text(&r));
}

/// A leader frozen with SIGSTOP is replaced; once it runs again it learns
/// of the new term. A `quorum=true` GET sent to it right after it resumes
/// (while it may still believe it leads) never returns the value it knew
/// before the pause: it answers the new value, or, when the read was taken
/// while it still led and then dropped as it stepped down, times out with
/// error 300 (as etcd 3.4's v2 quorum GET, a log entry, would).
#[test]
fn paused_leader_is_replaced_and_reads_no_stale_value() {
    let mut c = start();
    let old = c.leader();
    c.put_ok(old, "p", "before");
    c.pause(old);
    let new = c.leader();
    assert_ne!(new, old);
    c.put_ok(new, "p", "after");
    c.resume(old);
    let t = Instant::now();
    let r = c.qget(old, "p");
    let took = t.elapsed();
    println!(
        "quorum GET on the resumed old leader: {} after {took:?}",
        r.status
    );
    match r.status {
        200 => assert_eq!(
            json_str(&text(&r), &["node", "value"]).as_deref(),
            Some("after"),
            "stale quorum GET on the resumed old leader: {}",
            text(&r)
        ),
        500 => assert!(text(&r).contains(r#""errorCode":300"#), "{}", text(&r)),
        s => panic!("quorum GET on the resumed old leader: {s} {}", text(&r)),
    }
    assert_eq!(c.leader(), new, "the resumed member does not take over");
    let r = c.qget(old, "p");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        json_str(&text(&r), &["node", "value"]).as_deref(),
        Some("after")
    );
    await_value(&c, old, "p", Some("after"));
}
