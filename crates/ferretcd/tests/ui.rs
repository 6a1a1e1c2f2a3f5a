//! Browser tests of the dashboard every member serves at `/ui/`, in a
//! headless Chromium driven over WebDriver (`ferret_testkit::browser`),
//! on a 3-member ferretcd cluster each. They rely only on what
//! `ui-contract.md` guarantees: element ids, `data-*` attributes and the
//! texts it names.
//!
//! - `cluster_view_and_failover`: the page loads; the three members, the
//!   one leader (the cluster's) and `#leader`; the leader is killed and,
//!   within 3 s, the page (served by a member that was not the leader)
//!   names another one; the timeline has a leader event.
//! - `keys_create_edit_delete`: a key created, opened, edited and deleted
//!   in the page, each step checked with etcdctl; the v2 browser, and a
//!   v2 key created, edited and deleted in it.
//! - `watch_shows_events`: a prefix watched in the page; two puts and a
//!   delete by etcdctl appear as three events, and a key outside the
//!   prefix does not.
//! - `auth_login`: with auth on, a login form; a wrong password's error;
//!   root's login; alice, who may read only `a/`, lists `a/` and is
//!   refused `b/`.
//! - `key_list_pages_through_100k_keys`: 100,000 keys (written as
//!   transactions of 128 puts, 8 at a time); 50 listed, `#kv-next` shows
//!   the next 50.
//! - `ui_path_and_disabled`: `/ui` leads to `/ui/`; `--enable-ui=false`
//!   makes `/ui/` a 404.
//! - `page_over_https`: members with `--auto-tls` and an https client URL
//!   beside the http one; the page over https shows every member healthy
//!   (their status asked over https) and writes a key etcdctl then reads.
//! - `charts_follow_the_load`: with `--metrics=extensive`, puts at 40/s
//!   show as a Put rate within 40% of the rate sent; latency, fsync and
//!   peer round-trip charts get values; the Put rate falls to 0 after.
//! - `edits_never_overwrite_what_changed_meanwhile`: a create of an
//!   existing key, a save and a delete of a key changed since it was
//!   opened (v3 and v2) are refused and write nothing; a binary value is
//!   edited as hex, and bad hex is refused.
//! - `v2_auth_in_the_page`: with v2 auth on and the guest role revoked,
//!   the v2 tree asks for credentials; a wrong password is refused; bob
//!   lists `/app` and writes in it (root reads it back), and a write
//!   outside it is refused and not made.
//!
//! Screenshots go to `target/ui-screenshots/<test>-<step>.png` (CI keeps
//! them). Without chromium and chromedriver (or etcd's tools) each test is
//! skipped with a loud line; under CI it fails instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::bin::etcd_tools;
use ferret_testkit::browser::{self, Browser};
use ferret_testkit::cluster::{text, Cluster, Options};
use ferret_testkit::http;
use serde_json::{json, Value};

/// How soon after the leader's death the page must name another one.
const FAILOVER_SHOWN_WITHIN: Duration = Duration::from_secs(3);

/// What a browser test needs: a browser and etcdctl (`None`: skipped).
fn tools() -> Option<PathBuf> {
    if !browser::available() {
        return None;
    }
    etcd_tools().map(|(_, ctl)| ctl)
}

/// etcdctl (v3) against `endpoint`, as `user` if given: whether it
/// succeeded, and its output (stdout, then stderr). Killed after 30 s.
fn etcdctl_try(ctl: &Path, endpoint: &str, user: Option<&str>, args: &[&str]) -> (bool, String) {
    let user = user.map(|u| format!("--user={u}"));
    let mut flags = vec!["--dial-timeout=2s", "--command-timeout=10s"];
    flags.extend(user.as_deref());
    let (code, out) = ferret_testkit::bin::etcdctl(ctl, endpoint, &flags, args);
    (code == Some(0), out)
}

/// etcdctl that must succeed; its output.
fn etcdctl(ctl: &Path, endpoint: &str, user: Option<&str>, args: &[&str]) -> String {
    let (ok, out) = etcdctl_try(ctl, endpoint, user, args);
    assert!(ok, "etcdctl {args:?} at {endpoint}: {out}");
    out
}

/// `etcdctl get <key> --print-value-only`: the value, `None` if absent.
fn ctl_value(ctl: &Path, endpoint: &str, key: &str) -> Option<String> {
    let out = etcdctl(ctl, endpoint, None, &["get", key, "--print-value-only"]);
    let v = out.strip_suffix('\n').unwrap_or(&out);
    (!out.is_empty()).then(|| v.to_string())
}

/// Polls etcdctl (10 s at most) until `key` holds `want` (`None`: absent).
fn await_value(ctl: &Path, endpoint: &str, key: &str, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = ctl_value(ctl, endpoint, key);
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "etcdctl get {key}: {got:?}, not {want:?} after 10 s"
        );
        sleep(Duration::from_millis(100));
    }
}

/// A row of `#members`, read in one go (the table is redrawn every second).
#[derive(Debug, Clone)]
struct Row {
    id: String,
    name: String,
    role: String,
    health: String,
    behind: String,
    client_urls: String,
    peer_urls: String,
    /// Where the page asked for its status (`data-status-url`).
    status_url: String,
}

fn rows(b: &Browser) -> Result<Vec<Row>, String> {
    let v = b.try_eval(
        "return Array.from(document.querySelectorAll('#members tr[data-member-id]')).map(r => {
           const cell = c => { const e = r.querySelector(c); return e ? e.innerText.trim() : null; };
           return { id: r.getAttribute('data-member-id'), name: r.getAttribute('data-name'),
                    status_url: r.getAttribute('data-status-url'),
                    role: cell('.role'), health: cell('.health'), behind: cell('.behind'),
                    client: cell('.client-urls'), peer: cell('.peer-urls') };
         });",
        vec![],
    )?;
    let field = |r: &Value, f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(v.as_array()
        .ok_or_else(|| format!("rows: {v}"))?
        .iter()
        .map(|r| Row {
            id: field(r, "id"),
            name: field(r, "name"),
            role: field(r, "role"),
            health: field(r, "health"),
            behind: field(r, "behind"),
            client_urls: field(r, "client"),
            peer_urls: field(r, "peer"),
            status_url: field(r, "status_url"),
        })
        .collect())
}

/// The names of the rows whose role is `leader`.
fn leaders(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.role == "leader")
        .map(|r| r.name.clone())
        .collect()
}

/// The first number in a text (`#kv-count`'s "100 keys", say).
fn first_number(s: &str) -> Option<u64> {
    let digits: String = s
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.parse().ok()
}

/// The member ids as the cluster reports them (`/v2/stats/self`), by name.
fn member_ids(c: &Cluster) -> Vec<(String, u64)> {
    c.live()
        .into_iter()
        .map(|i| {
            let (_, id, _) = c.stats(i).expect("stats");
            let id = u64::from_str_radix(&id, 16).unwrap_or_else(|e| panic!("id {id}: {e}"));
            (c.members[i].name.clone(), id)
        })
        .collect()
}

#[test]
fn cluster_view_and_failover() {
    if tools().is_none() {
        return;
    }
    let mut c = Cluster::start(Options::default());
    let b = Browser::start("cluster");

    // 1. The page, as member 0 serves it.
    b.goto(&format!("{}/ui/", c.members[0].client_url()));
    b.wait_exists("#members");
    b.screenshot("loaded");

    // 2. Three members, one leader: the cluster's.
    let leader = c.leader();
    let leader_name = c.members[leader].name.clone();
    let ids = member_ids(&c);
    let seen = b.wait_until(
        "three healthy members in #members, one of them leader",
        b.timeout(),
        |b| {
            let rows = rows(b)?;
            let names: BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            if rows.len() != 3 || names != BTreeSet::from(["m0", "m1", "m2"]) {
                return Err(format!("rows {rows:?}"));
            }
            if rows.iter().any(|r| r.health != "healthy") {
                return Err(format!("not all healthy: {rows:?}"));
            }
            if leaders(&rows) != [leader_name.clone()] {
                return Err(format!("leaders {:?}: {rows:?}", leaders(&rows)));
            }
            Ok(rows)
        },
    );
    for r in &seen {
        let role_ok = if r.name == leader_name {
            r.role == "leader"
        } else {
            r.role == "follower"
        };
        assert!(role_ok, "{r:?} (leader {leader_name})");
        let want = ids.iter().find(|(n, _)| *n == r.name).expect("a member").1;
        assert!(
            r.id.len() <= 16 && r.id.chars().all(|ch| ch.is_ascii_hexdigit()),
            "data-member-id is hex: {r:?}"
        );
        assert_eq!(
            u64::from_str_radix(&r.id, 16).ok(),
            Some(want),
            "{r:?}: the member's id is {want:x}"
        );
        let m = c.members.iter().find(|m| m.name == r.name).unwrap();
        assert!(r.client_urls.contains(&m.client_url()), "{r:?}");
        assert!(r.peer_urls.contains(&m.peer_url()), "{r:?}");
        assert!(
            r.behind.parse::<u64>().is_ok(),
            ".behind is a number: {r:?}"
        );
    }
    b.wait_text("#leader", &leader_name);
    for chart in [
        "#chart-requests",
        "#chart-latency",
        "#chart-fsync",
        "#chart-peer-rtt",
    ] {
        b.wait_exists(&format!("svg{chart}"));
    }

    // 3. The page from a member that is not the leader; the leader dies.
    let page = c.follower_of(leader);
    if page != 0 {
        b.goto(&format!("{}/ui/", c.members[page].client_url()));
        b.wait_text("#leader", &leader_name);
    }
    b.screenshot("before-failover");
    let killed = Instant::now();
    c.kill(leader);
    let new_leader = b.wait_until(
        &format!("another member than {leader_name} shown as leader"),
        FAILOVER_SHOWN_WITHIN.saturating_sub(killed.elapsed()),
        |b| {
            let shown = b.try_eval(
                "const e = document.querySelector('#leader'); return e ? e.innerText.trim() : null;",
                vec![],
            )?;
            let shown = shown.as_str().unwrap_or("").to_string();
            if shown.is_empty() || shown == leader_name {
                return Err(format!("#leader {shown:?}"));
            }
            let rows = rows(b)?;
            if leaders(&rows) != [shown.clone()] {
                return Err(format!("#leader {shown:?}, rows {rows:?}"));
            }
            Ok(shown)
        },
    );
    eprintln!(
        "cluster_view_and_failover: {new_leader} shown as leader {:?} after {leader_name} was killed",
        killed.elapsed()
    );
    b.screenshot("failover");
    let now = c.leader();
    assert_eq!(
        c.members[now].name, new_leader,
        "the page's leader is the cluster's"
    );
    // The dead member is shown as such, and the change is in the timeline.
    b.wait_until(
        &format!("{leader_name} shown unreachable and unhealthy"),
        b.timeout(),
        |b| {
            let rows = rows(b)?;
            match rows.iter().find(|r| r.name == leader_name) {
                Some(r) if r.role == "unreachable" && r.health == "unhealthy" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    b.wait_exists("#timeline li[data-kind=\"leader\"]");
    b.screenshot("after-failover");
}

#[test]
fn keys_create_edit_delete() {
    let Some(ctl) = tools() else { return };
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    let b = Browser::start("keys");
    b.goto(&format!("{ep}/ui/"));

    // Create.
    b.type_into("#kv-new-key", "ui/one");
    b.type_into("#kv-new-value", "first value");
    b.click("#kv-create");
    b.wait_text_contains("#status", "created ui/one");
    await_value(&ctl, &ep, "ui/one", Some("first value"));

    // Open it from the list, edit, save.
    b.type_into("#kv-prefix", "ui/");
    b.click("#kv-search");
    let item = "#kv-list li[data-key=\"ui/one\"]";
    b.click(item);
    b.wait_value("#kv-value", "first value");
    b.wait_until("#kv-meta to say something", b.timeout(), |b| {
        b.try_eval(
            "const e = document.querySelector('#kv-meta'); return e ? e.innerText.trim() : '';",
            vec![],
        )
        .and_then(|v| match v.as_str() {
            Some(t) if !t.is_empty() => Ok(()),
            _ => Err("empty".into()),
        })
    });
    b.type_into("#kv-value", "second value");
    b.click("#kv-save");
    b.wait_text_contains("#status", "saved ui/one");
    await_value(&ctl, &ep, "ui/one", Some("second value"));
    // Opened again: the new value, the old one in its history.
    b.click("#kv-search");
    b.click(item);
    b.wait_value("#kv-value", "second value");
    b.wait_until("#kv-history to list \"first value\"", b.timeout(), |b| {
        let v = b.try_eval(
            "return Array.from(document.querySelectorAll('#kv-history li')).map(e => e.innerText);",
            vec![],
        )?;
        if v.to_string().contains("first value") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    b.screenshot("edited");

    // Delete.
    b.click("#kv-delete");
    b.wait_text_contains("#status", "deleted ui/one");
    await_value(&ctl, &ep, "ui/one", None);
    b.screenshot("deleted");

    // The v2 keys: a directory, then what is in it.
    c.put_ok(0, "/v2dir/leaf", "v2 value");
    b.type_into("#v2-path", "/");
    b.click("#v2-open");
    b.wait_attr("#v2-list li[data-key=\"/v2dir\"]", "data-dir", "true");
    b.type_into("#v2-path", "/v2dir");
    b.click("#v2-open");
    b.wait_attr("#v2-list li[data-key=\"/v2dir/leaf\"]", "data-dir", "false");
    b.screenshot("v2");

    // v2 create, edit, delete, each checked through the v2 API.
    b.type_into("#v2-new-key", "/v2dir/made");
    b.type_into("#v2-new-value", "made in the page");
    b.click("#v2-create");
    b.wait_text_contains("#status", "v2 created /v2dir/made");
    assert_eq!(
        c.value(0, "/v2dir/made").as_deref(),
        Some("made in the page")
    );
    b.click("#v2-list li[data-key=\"/v2dir/made\"]");
    b.wait_value("#v2-edit", "made in the page");
    b.type_into("#v2-edit", "edited in the page");
    b.click("#v2-save");
    b.wait_text_contains("#status", "v2 saved /v2dir/made");
    assert_eq!(
        c.value(0, "/v2dir/made").as_deref(),
        Some("edited in the page")
    );
    b.click("#v2-delete");
    b.wait_text_contains("#status", "v2 deleted /v2dir/made");
    b.wait_gone("#v2-list li[data-key=\"/v2dir/made\"]");
    assert_eq!(c.value(0, "/v2dir/made"), None);
    b.screenshot("v2-edited");
}

#[test]
fn watch_shows_events() {
    let Some(ctl) = tools() else { return };
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    let b = Browser::start("watch");
    b.goto(&format!("{ep}/ui/"));

    b.type_into("#watch-prefix", "w/");
    b.click("#watch-start");
    b.wait_text("#watch-state", "watching w/");
    // "watching" may be shown as the request leaves: give the stream a
    // moment to be set up on the server before writing.
    sleep(Duration::from_millis(500));
    etcdctl(&ctl, &ep, None, &["put", "w/a", "1"]);
    etcdctl(&ctl, &ep, None, &["put", "wx", "outside the prefix"]);
    etcdctl(&ctl, &ep, None, &["put", "w/b", "2"]);
    etcdctl(&ctl, &ep, None, &["del", "w/a"]);

    b.wait_count("#watch-events li", 3);
    let types = b.attrs("#watch-events li", "data-type");
    let keys = b.attrs("#watch-events li", "data-key");
    let texts: Vec<String> = b
        .texts("#watch-events li")
        .iter()
        .map(|t| browser::squash(t))
        .collect();
    // Newest first.
    assert_eq!(
        types,
        [
            Some("DELETE".into()),
            Some("PUT".into()),
            Some("PUT".into())
        ],
        "{texts:?}"
    );
    assert_eq!(
        keys,
        [Some("w/a".into()), Some("w/b".into()), Some("w/a".into())],
        "{texts:?}"
    );
    assert_eq!(texts, ["DELETE w/a", "PUT w/b = 2", "PUT w/a = 1"]);
    b.screenshot("events");

    b.click("#watch-stop");
    b.wait_text("#watch-state", "stopped");
    // Nothing more after the stop.
    etcdctl(&ctl, &ep, None, &["put", "w/c", "3"]);
    sleep(Duration::from_millis(500));
    assert_eq!(b.count("#watch-events li"), 3);
}

#[test]
fn auth_login() {
    let Some(ctl) = tools() else { return };
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    let root = Some("root:rootpw");
    etcdctl(&ctl, &ep, None, &["put", "a/x", "for alice"]);
    etcdctl(&ctl, &ep, None, &["put", "b/y", "not for alice"]);
    etcdctl(&ctl, &ep, None, &["user", "add", "root:rootpw"]);
    etcdctl(&ctl, &ep, None, &["user", "add", "alice:alicepw"]);
    etcdctl(&ctl, &ep, None, &["role", "add", "a-reader"]);
    etcdctl(
        &ctl,
        &ep,
        None,
        &[
            "role",
            "grant-permission",
            "a-reader",
            "read",
            "--prefix=true",
            "a/",
        ],
    );
    etcdctl(
        &ctl,
        &ep,
        None,
        &["user", "grant-role", "alice", "a-reader"],
    );
    etcdctl(&ctl, &ep, None, &["auth", "enable"]);
    let (ok, out) = etcdctl_try(&ctl, &ep, None, &["get", "a/x"]);
    assert!(!ok, "auth is on: {out}");
    assert_eq!(
        etcdctl(&ctl, &ep, root, &["get", "b/y", "--print-value-only"]),
        "not for alice\n"
    );

    let b = Browser::start("auth");
    b.goto(&format!("{ep}/ui/"));
    b.wait_visible("#login");
    b.screenshot("login");

    // A wrong password: the server's error, still the form.
    b.type_into("#login-user", "root");
    b.type_into("#login-password", "wrong");
    b.click("#login-submit");
    let err = b.wait_until("#login-error to say why", b.timeout(), |b| {
        let v = b.try_eval(
            "const e = document.querySelector('#login-error'); return e ? e.innerText.trim() : '';",
            vec![],
        )?;
        match v.as_str() {
            Some(t) if !t.is_empty() => Ok(t.to_string()),
            _ => Err("empty".into()),
        }
    });
    eprintln!("auth_login: a wrong password says {err:?}");
    assert!(
        err.contains("authentication failed"),
        "the server's error (etcd: \"authentication failed, invalid user ID or password\"): {err:?}"
    );
    assert!(b.visible("#login"));
    b.screenshot("wrong-password");

    // root.
    b.type_into("#login-user", "root");
    b.type_into("#login-password", "rootpw");
    b.click("#login-submit");
    b.wait_hidden("#login");
    b.wait_text("#whoami", "root");
    b.wait_count("#members tr[data-member-id]", 3);
    b.wait_until("a leader in #members", b.timeout(), |b| {
        let rows = rows(b)?;
        if leaders(&rows).len() == 1 {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    b.screenshot("root");

    // alice reads a/ and nothing else.
    b.click("#logout");
    b.wait_visible("#login");
    b.type_into("#login-user", "alice");
    b.type_into("#login-password", "alicepw");
    b.click("#login-submit");
    b.wait_hidden("#login");
    b.wait_text("#whoami", "alice");
    b.type_into("#kv-prefix", "a/");
    b.click("#kv-search");
    b.wait_exists("#kv-list li[data-key=\"a/x\"]");
    b.type_into("#kv-prefix", "b/");
    b.click("#kv-search");
    b.wait_text_contains("#status", "permission denied");
    assert_eq!(b.count("#kv-list li[data-key=\"b/y\"]"), 0);
    b.screenshot("alice");
}

/// Writes `n` keys `<prefix><6 digits>` through the v3 API: transactions
/// of 128 puts (etcd's --max-txn-ops), 8 at a time.
fn load_keys(endpoint: &str, prefix: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = etcd_client::Client::connect([endpoint], None)
            .await
            .expect("etcd-client connect");
        let batches: Vec<Vec<usize>> = (0..n)
            .collect::<Vec<_>>()
            .chunks(128)
            .map(<[usize]>::to_vec)
            .collect();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let queue = queue.clone();
            let mut kv = client.kv_client();
            let prefix = prefix.to_string();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(batch) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let ops: Vec<etcd_client::TxnOp> = batch
                        .iter()
                        .map(|i| etcd_client::TxnOp::put(format!("{prefix}{i:06}"), "v", None))
                        .collect();
                    kv.txn(etcd_client::Txn::new().and_then(ops))
                        .await
                        .expect("a transaction of puts");
                }
            }));
        }
        for t in tasks {
            t.await.expect("a loader task");
        }
    });
}

/// Waits until `#kv-count` says `n` keys were listed.
fn wait_listed(b: &Browser, n: u64) {
    b.wait_until(&format!("#kv-count to say {n}"), b.timeout(), |b| {
        let t = b.try_eval(
            "const e = document.querySelector('#kv-count'); return e ? e.innerText : '';",
            vec![],
        )?;
        let t = t.as_str().unwrap_or("").to_string();
        if first_number(&t) == Some(n) {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
}

#[test]
fn key_list_pages_through_100k_keys() {
    let Some(ctl) = tools() else { return };
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    let start = Instant::now();
    load_keys(&ep, "big/", 100_000);
    eprintln!(
        "key_list_pages_through_100k_keys: 100000 keys written in {:?}",
        start.elapsed()
    );
    // RangeResponse.count is every match, whatever the limit.
    let count = etcdctl(
        &ctl,
        &ep,
        None,
        &["get", "big/", "--prefix", "--limit=1", "-w", "json"],
    );
    let count: Value = serde_json::from_str(&count).expect("json");
    assert_eq!(count["count"], json!(100_000), "{count}");

    let b = Browser::start("keys-100k");
    b.goto(&format!("{ep}/ui/"));
    b.type_into("#kv-prefix", "big/");
    b.click("#kv-search");
    let page = |from: usize| -> Vec<Option<String>> {
        (from..from + 50)
            .map(|i| Some(format!("big/{i:06}")))
            .collect()
    };
    b.wait_count("#kv-list li[data-key]", 50);
    b.wait_exists("#kv-list li[data-key=\"big/000000\"]");
    assert_eq!(b.attrs("#kv-list li[data-key]", "data-key"), page(0));
    wait_listed(&b, 50);
    b.screenshot("first-page");

    b.click("#kv-next");
    b.wait_exists("#kv-list li[data-key=\"big/000050\"]");
    b.wait_count("#kv-list li[data-key]", 50);
    assert_eq!(b.attrs("#kv-list li[data-key]", "data-key"), page(50));
    wait_listed(&b, 100);
    b.screenshot("second-page");
}

#[test]
fn ui_path_and_disabled() {
    if tools().is_none() {
        return;
    }
    let c = Cluster::start(Options::default());
    let b = Browser::start("paths");
    b.goto(&format!("{}/ui", c.members[0].client_url()));
    b.wait_until("/ui to lead to /ui/", b.timeout(), |b| {
        let url = b.url();
        if url.ends_with("/ui/") {
            Ok(())
        } else {
            Err(url)
        }
    });
    b.wait_exists("#members");
    drop(c);

    let off = Cluster::start(Options {
        size: 1,
        extra: vec!["--enable-ui=false".into()],
        ..Options::default()
    });
    let r = http::get(off.client(0), "/ui/", Duration::from_secs(5)).expect("GET /ui/");
    assert_eq!(
        (r.status, text(&r).trim_end()),
        (404, "404 page not found"),
        "/ui/ with --enable-ui=false is as any unknown path"
    );
    b.goto(&format!("{}/ui/", off.members[0].client_url()));
    assert!(
        b.page_text().contains("404 page not found"),
        "{}",
        b.page_text()
    );
}

#[test]
fn page_over_https() {
    let Some(ctl) = tools() else { return };
    // Each member listens on an http client URL (for the harness and
    // etcdctl) and an https one with a certificate of its own
    // (`--auto-tls`), and advertises both.
    let c = Cluster::start(Options {
        https_client: true,
        extra: vec!["--auto-tls".into()],
        ..Options::default()
    });
    let ep = c.members[0].client_url();
    let https = c.members[0]
        .https_client_url()
        .expect("an https client URL");
    let b = Browser::start_accepting_any_certificate("https");
    b.goto(&format!("{https}/ui/"));
    b.wait_exists("#members");
    assert!(b.url().starts_with("https://"), "{}", b.url());

    // Every member healthy, the leader the cluster's: the other members'
    // status came over https (a page over https may not fetch http).
    let leader = c.members[c.leader()].name.clone();
    let seen = b.wait_until(
        "three healthy members over https, one of them leader",
        b.timeout(),
        |b| {
            let rows = rows(b)?;
            if rows.len() != 3 || rows.iter().any(|r| r.health != "healthy") {
                return Err(format!("rows {rows:?}"));
            }
            if leaders(&rows) != [leader.clone()] {
                return Err(format!("leaders {:?}: {rows:?}", leaders(&rows)));
            }
            Ok(rows)
        },
    );
    // Chromium lets an https page fetch http from loopback, so a healthy
    // row alone does not show the scheme: the row says where it asked.
    for (r, m) in seen.iter().zip(&c.members) {
        let want = m.https_client_url().unwrap();
        assert!(r.client_urls.contains(&want), "{r:?} lacks {want}");
        assert_eq!(r.status_url, want, "{r:?}");
    }

    // A write through the page, over TLS, seen by etcdctl over http.
    b.type_into("#kv-new-key", "tls/made");
    b.type_into("#kv-new-value", "over https");
    b.click("#kv-create");
    b.wait_text_contains("#status", "created tls/made");
    await_value(&ctl, &ep, "tls/made", Some("over https"));
    b.screenshot("members");

    // The https port speaks only TLS: plain HTTP gets no page.
    let addr = c.members[0].https_client.unwrap();
    if let Ok(r) = http::get(addr, "/ui/", Duration::from_secs(5)) {
        assert_ne!(r.status, 200, "plain HTTP on the https port: {}", text(&r));
    }
}

/// The value of `chart`'s series `series` in its legend (`data-last`):
/// `None` before it has one.
fn chart_value(b: &Browser, chart: &str, series: &str) -> Result<Option<f64>, String> {
    let v = b.try_eval(
        "const e = document.querySelector(`#chart-${arguments[0]} text.legend[data-series=\"${arguments[1]}\"]`);
         return e ? e.getAttribute('data-last') : null;",
        vec![json!(chart), json!(series)],
    )?;
    match v.as_str() {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|e| format!("{chart}/{series}: {t:?}: {e}")),
    }
}

#[test]
fn charts_follow_the_load() {
    if tools().is_none() {
        return;
    }
    // Latency needs etcd's extensive metrics (the gRPC histograms).
    let c = Cluster::start(Options {
        extra: vec!["--metrics=extensive".into()],
        ..Options::default()
    });
    // The leader's page: only the leader times peer round trips.
    let leader = c.leader();
    let ep = c.members[leader].client_url();
    let peers: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| c.members[i].name.clone())
        .collect();
    let b = Browser::start("charts");
    b.goto(&format!("{ep}/ui/"));
    b.wait_exists("#chart-requests");

    // Puts at a steady rate, one at a time, to the member that served the
    // page (its /metrics is what the page charts).
    const RATE: f64 = 40.0;
    const LOAD: Duration = Duration::from_secs(9);
    let load = {
        let ep = ep.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async {
                let mut client = etcd_client::Client::connect([ep], None)
                    .await
                    .expect("etcd-client connect");
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < LOAD {
                    tick.tick().await;
                    client
                        .put(format!("load/{n}"), "v", None)
                        .await
                        .expect("put");
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
    };

    // The Put rate the page shows, every half second, while the load runs.
    let mut puts = Vec::new();
    let until = Instant::now() + LOAD;
    while Instant::now() < until {
        if let Ok(Some(v)) = chart_value(&b, "requests", "Put") {
            puts.push(v);
        }
        sleep(Duration::from_millis(500));
    }
    let sent = load.join().expect("the load thread");
    b.screenshot("under-load");
    let shown = puts.iter().copied().fold(0.0, f64::max);
    assert!(
        shown > 0.6 * sent && shown < 1.4 * sent,
        "the page's Put rate {shown:.1}/s against {sent:.1}/s sent (all shown: {puts:?})"
    );

    // The latency, fsync and peer round-trip charts have values, in ms.
    for (chart, series) in [
        ("latency", "p50"),
        ("latency", "p99"),
        ("fsync", "p99"),
        ("peer-rtt", peers[0].as_str()),
        ("peer-rtt", peers[1].as_str()),
    ] {
        b.wait_until(
            &format!("#chart-{chart} {series} to have a value"),
            b.timeout(),
            |b| match chart_value(b, chart, series)? {
                Some(ms) if ms > 0.0 && ms < 1000.0 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
    assert_eq!(b.text("#charts-note").as_deref().map(str::trim), Some(""));

    // And the Put rate falls back to 0 once the load stopped.
    b.wait_until(
        "the Put rate to fall to 0",
        b.timeout(),
        |b| match chart_value(b, "requests", "Put")? {
            Some(v) if v.abs() < 1e-9 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // A follower's page says why its round-trip chart is empty.
    let follower = c.follower_of(leader);
    b.goto(&format!("{}/ui/", c.members[follower].client_url()));
    b.wait_text_contains(
        "#charts-note",
        "peer round trips are measured by the leader",
    );
}

/// A v2 request to `c`'s member 0 with a JSON or form body, as `user`
/// (`name:password`, basic auth) if given.
fn v2_call(
    c: &Cluster,
    method: &str,
    target: &str,
    user: Option<&str>,
    body: Option<(&str, &str)>,
) -> http::Response {
    use base64::Engine as _;
    let mut headers = Vec::new();
    if let Some(u) = user {
        let b64 = base64::engine::general_purpose::STANDARD.encode(u);
        headers.push(("Authorization".to_string(), format!("Basic {b64}")));
    }
    if let Some((ctype, _)) = body {
        headers.push(("Content-Type".to_string(), ctype.to_string()));
    }
    let req = http::Request {
        method: method.into(),
        target: target.as_bytes().to_vec(),
        headers,
        body: body.map(|(_, b)| b.as_bytes().to_vec()),
    };
    http::send(
        c.client(0),
        &req,
        http::BodyMode::Full,
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

#[test]
fn v2_auth_in_the_page() {
    if tools().is_none() {
        return;
    }
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    // v2 auth: root; bob may read /app (to list it) and read and write
    // /app/* (keys under it: `/app/*` is not `/app` itself); the guest role
    // (which may do anything by default) may do nothing.
    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";
    let root = Some("root:rootpw");
    // Method, target, user, body.
    type Step<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<(&'a str, &'a str)>,
    );
    let steps: [Step; 6] = [
        ("PUT", "/v2/keys/app/x", None, Some((FORM, "value=for bob"))),
        (
            "PUT",
            "/v2/keys/other/y",
            None,
            Some((FORM, "value=not for bob")),
        ),
        (
            "PUT",
            "/v2/auth/users/root",
            None,
            Some((JSON, r#"{"user":"root","password":"rootpw"}"#)),
        ),
        (
            "PUT",
            "/v2/auth/roles/app",
            None,
            Some((
                JSON,
                r#"{"role":"app","permissions":{"kv":{"read":["/app","/app/*"],"write":["/app/*"]}}}"#,
            )),
        ),
        (
            "PUT",
            "/v2/auth/users/bob",
            None,
            Some((JSON, r#"{"user":"bob","password":"bobpw","roles":["app"]}"#)),
        ),
        ("PUT", "/v2/auth/enable", None, None),
    ];
    for (method, target, user, body) in steps {
        let r = v2_call(&c, method, target, user, body);
        assert!(
            r.status < 300,
            "{method} {target}: {} {}",
            r.status,
            text(&r)
        );
    }
    let r = v2_call(
        &c,
        "PUT",
        "/v2/auth/roles/guest",
        root,
        Some((
            JSON,
            r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#,
        )),
    );
    assert_eq!(r.status, 200, "{}", text(&r));

    let b = Browser::start("v2-auth");
    b.goto(&format!("{ep}/ui/"));
    // Without credentials, the v2 tree is refused and the v2 login shows.
    b.wait_visible("#v2-login");
    b.wait_text_contains("#status", "The request requires user authentication");

    // bob, with a wrong password: still refused.
    b.type_into("#v2-user", "bob");
    b.type_into("#v2-password", "wrong");
    b.click("#v2-login-submit");
    b.wait_text("#v2-whoami", "as bob");
    b.type_into("#v2-path", "/app");
    b.click("#v2-open");
    b.wait_text_contains(
        "#status",
        "v2 /app: The request requires user authentication",
    );
    assert!(b.visible("#v2-login"));

    // bob, with his password: /app is listed, the login hides.
    b.type_into("#v2-user", "bob");
    b.type_into("#v2-password", "bobpw");
    b.click("#v2-login-submit");
    b.wait_attr("#v2-list li[data-key=\"/app/x\"]", "data-dir", "false");
    b.wait_hidden("#v2-login");

    // A key made in the page is bob's write, as root reads it.
    b.type_into("#v2-new-key", "/app/made");
    b.type_into("#v2-new-value", "by bob");
    b.click("#v2-create");
    b.wait_text_contains("#status", "v2 created /app/made");
    let r = v2_call(&c, "GET", "/v2/keys/app/made", root, None);
    assert_eq!(
        json_value(&text(&r))["node"]["value"],
        json!("by bob"),
        "{}",
        text(&r)
    );
    b.screenshot("bob");

    // Outside /app bob is refused, and nothing is written there.
    b.type_into("#v2-new-key", "/other/made");
    b.type_into("#v2-new-value", "by bob");
    b.click("#v2-create");
    b.wait_text_contains(
        "#status",
        "v2 /other/made: The request requires user authentication",
    );
    let r = v2_call(&c, "GET", "/v2/keys/other/made", root, None);
    assert_eq!(r.status, 404, "{}", text(&r));
}

fn json_value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// One etcd-client call against `endpoint`, on a runtime of its own.
fn with_client<T>(
    endpoint: &str,
    f: impl AsyncFnOnce(&mut etcd_client::Client) -> Result<T, etcd_client::Error>,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None)
            .await
            .expect("etcd-client connect");
        f(&mut client).await.expect("an etcd-client call")
    })
}

/// A key's value as bytes (`None`: absent).
fn value_bytes(endpoint: &str, key: &str) -> Option<Vec<u8>> {
    let key = key.to_string();
    with_client(endpoint, async move |c| {
        let r = c.get(key, None).await?;
        Ok(r.kvs().first().map(|kv| kv.value().to_vec()))
    })
}

#[test]
fn edits_never_overwrite_what_changed_meanwhile() {
    let Some(ctl) = tools() else { return };
    let c = Cluster::start(Options::default());
    let ep = c.members[0].client_url();
    let b = Browser::start("conflicts");
    b.goto(&format!("{ep}/ui/"));

    // Creating a key that exists leaves it as it is.
    etcdctl(&ctl, &ep, None, &["put", "c/one", "first"]);
    b.type_into("#kv-new-key", "c/one");
    b.type_into("#kv-new-value", "would overwrite");
    b.click("#kv-create");
    b.wait_text_contains("#status", "c/one exists already");
    assert_eq!(ctl_value(&ctl, &ep, "c/one").as_deref(), Some("first"));

    // Opened, changed by someone else, then saved in the page: refused.
    b.type_into("#kv-prefix", "c/");
    b.click("#kv-search");
    b.click("#kv-list li[data-key=\"c/one\"]");
    b.wait_value("#kv-value", "first");
    etcdctl(&ctl, &ep, None, &["put", "c/one", "changed elsewhere"]);
    b.type_into("#kv-value", "stale edit");
    b.click("#kv-save");
    b.wait_text_contains("#status", "c/one changed since it was opened");
    assert_eq!(
        ctl_value(&ctl, &ep, "c/one").as_deref(),
        Some("changed elsewhere")
    );
    // ... and so is a delete; opened again, both go through.
    b.click("#kv-delete");
    b.wait_text_contains("#status", "c/one changed since it was opened");
    b.click("#kv-list li[data-key=\"c/one\"]");
    b.wait_value("#kv-value", "changed elsewhere");
    b.type_into("#kv-value", "fresh edit");
    b.click("#kv-save");
    b.wait_text_contains("#status", "saved c/one");
    await_value(&ctl, &ep, "c/one", Some("fresh edit"));

    // A value that is not UTF-8 is shown and edited as hex.
    with_client(&ep, async |c| {
        c.put("c/bin", vec![0xff, 0x00, 0x41], None).await.map(drop)
    });
    b.click("#kv-search");
    b.click("#kv-list li[data-key=\"c/bin\"]");
    b.wait_value("#kv-value", "0xff0041");
    b.type_into("#kv-value", "not hex");
    b.click("#kv-save");
    b.wait_text_contains("#status", "it is edited as hex");
    assert_eq!(value_bytes(&ep, "c/bin"), Some(vec![0xff, 0x00, 0x41]));
    b.type_into("#kv-value", "0xfe01");
    b.click("#kv-save");
    b.wait_text_contains("#status", "saved c/bin");
    assert_eq!(value_bytes(&ep, "c/bin"), Some(vec![0xfe, 0x01]));
    b.screenshot("binary");

    // v2: a save after someone else's write is etcd's "Compare failed".
    c.put_ok(0, "/cv2/k", "first");
    b.type_into("#v2-path", "/cv2");
    b.click("#v2-open");
    b.click("#v2-list li[data-key=\"/cv2/k\"]");
    b.wait_value("#v2-edit", "first");
    c.put_ok(0, "/cv2/k", "changed elsewhere");
    b.type_into("#v2-edit", "stale edit");
    b.click("#v2-save");
    b.wait_text_contains("#status", "v2 /cv2/k: Compare failed");
    assert_eq!(c.value(0, "/cv2/k").as_deref(), Some("changed elsewhere"));
    b.click("#v2-delete");
    b.wait_text_contains("#status", "v2 /cv2/k: Compare failed");
    assert_eq!(c.value(0, "/cv2/k").as_deref(), Some("changed elsewhere"));
}
