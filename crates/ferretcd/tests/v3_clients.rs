//! The v3 API driven by real clients, against the reference etcd and the
//! candidate (chosen as in v3_differential.rs: `FERRET_DIFF_TARGET=etcd`
//! for a second etcd, `FERRET_DIFF_CANDIDATE=http://IP:PORT` for a running
//! server). Each client runs the same scenario against both servers on a
//! fresh pair; its transcript is normalised per server (revisions relative
//! to the start, lease ids by first appearance, cluster/member ids and
//! terms as aliases, log timestamps and addresses) and compared line by
//! line, remaining TTLs within 1 s.
//!
//! - `etcd_client_crate`: the Rust `etcd-client` crate (0.21, tonic 0.14):
//!   put/get/delete/txn/watch/lease grant, keep-alive, time-to-live,
//!   revoke/compact.
//! - `etcdctl`: Debian's etcdctl 3.4 (v3 API by default): put, get with
//!   --prefix/--rev/--limit/--sort-by/-w json, del, txn from stdin, watch
//!   (killed after the writes), lease grant/revoke/timetolive/list/
//!   keep-alive --once, compaction, member list, endpoint hashkv, lock. Exit
//!   code, stdout and stderr compared.
//! - `python_etcd3gw`: python's `etcd3gw` (2.7), a client of the JSON
//!   gateway, through v3diff/etcd3gw_transcript.py, with the same
//!   interpreter (.ci/run installs it into the same venv);
//! - `python_etcd3`: the python `etcd3` package (0.12, with protobuf
//!   3.20.x: newer protobuf refuses its generated code) running
//!   v3diff/etcd3_transcript.py. The interpreter is `$FERRET_ETCD3_PYTHON`,
//!   else target/py-etcd3/bin/python (made by .ci/run:
//!   `python3 -m venv target/py-etcd3 && target/py-etcd3/bin/pip install
//!   etcd3==0.12.0 protobuf==3.20.3`), else `python3` if it can import
//!   etcd3. Without one the test is skipped loudly, or fails when `CI` is
//!   set.

mod v3diff;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, EventType, GetOptions,
    LeaseGrantOptions, LeaseTimeToLiveOptions, LockOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};
use regex::Regex;

use v3diff::render::{show_bytes, Norm};
use v3diff::runner::Clients;
use v3diff::server::{self, Server};
use v3diff::{candidate, runtime, start_pair};

/// Compares two transcripts line by line; numbers after `remaining(`,
/// `remaining: ` and `"TTL":` (a lease's remaining seconds) may differ by 1.
fn compare_transcripts(test: &str, cand: &str, a: &str, b: &str) {
    if std::env::var_os("FERRET_DIFF_VERBOSE").is_some() {
        eprintln!("--- {test}: etcd transcript ---\n{a}");
    }
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let mut diffs = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied(), lb.get(i).copied());
        match (x, y) {
            (Some(x), Some(y)) if lines_match(x, y) => {}
            _ => diffs.push(format!(
                "  line {}:\n    etcd:     {}\n    {cand}: {}",
                i + 1,
                x.unwrap_or("(none)"),
                y.unwrap_or("(none)")
            )),
        }
    }
    if diffs.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "{test}: {} transcript lines identical (etcd vs {cand})",
            la.len()
        );
        return;
    }
    panic!(
        "{test}: {} line(s) differ (etcd vs {cand})\n{}\n--- etcd transcript ---\n{a}\n--- {cand} transcript ---\n{b}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn lines_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let re = Regex::new(r#"(remaining\(|remaining: |"TTL":|"ttl":)(-?\d+)"#).unwrap();
    let (ca, cb): (Vec<_>, Vec<_>) = (re.captures_iter(a).collect(), re.captures_iter(b).collect());
    if ca.len() != cb.len() || ca.is_empty() {
        return false;
    }
    for (x, y) in ca.iter().zip(&cb) {
        let (p, q): (i64, i64) = (x[2].parse().unwrap(), y[2].parse().unwrap());
        if p < 0 || q < 0 || (p - q).abs() > 1 {
            return false;
        }
    }
    re.replace_all(a, "$1N") == re.replace_all(b, "$1N")
}

/// Starts a pair and answers each server's client address, or `None`
/// after a skip.
fn pair(test: &str) -> Option<(Server, Server)> {
    let etcd = server::require_etcd(test)?;
    let target = candidate(test, &etcd)?;
    let (r, c) = start_pair(&etcd, &target, &[]);
    let rt = runtime();
    rt.block_on(async {
        let limit = Duration::from_secs(30);
        for s in [&r, &c] {
            Clients::new(s.client)
                .wait_serving(limit)
                .await
                .unwrap_or_else(|e| panic!("{test}: {}: {e}", s.label));
        }
    });
    Some((r, c))
}

// ---- (a) the etcd-client crate ----------------------------------------------

struct Transcript {
    lines: Vec<String>,
    norm: Norm,
}

impl Transcript {
    fn push(&mut self, what: &str, r: Result<String, etcd_client::Error>) {
        let text = match r {
            Ok(t) => t,
            Err(etcd_client::Error::GRpcStatus(st)) => {
                format!("error {:?}: {}", st.code(), st.message())
            }
            Err(e) => format!("error {e}"),
        };
        self.lines.push(format!("{what}: {text}"));
    }

    fn kv(&mut self, kv: &etcd_client::KeyValue) -> String {
        format!(
            "{}={} create={} mod={} version={} lease={}",
            show_bytes(kv.key()),
            show_bytes(kv.value()),
            self.norm.rev(kv.create_revision()),
            self.norm.rev(kv.mod_revision()),
            kv.version(),
            self.norm.lease(kv.lease())
        )
    }

    fn kvs(&mut self, kvs: &[etcd_client::KeyValue]) -> String {
        let v: Vec<String> = kvs.iter().map(|k| self.kv(k)).collect();
        format!("[{}]", v.join(", "))
    }

    fn header(&mut self, h: Option<&etcd_client::ResponseHeader>) -> String {
        match h {
            Some(h) => format!(
                "{} {} revision={} {}",
                self.norm.cluster(h.cluster_id()),
                self.norm.member(h.member_id()),
                self.norm.rev(h.revision()),
                self.norm.term(h.raft_term())
            ),
            None => "(no header)".into(),
        }
    }
}

async fn etcd_client_scenario(addr: std::net::SocketAddr) -> String {
    let mut c = Client::connect([format!("http://{addr}")], None)
        .await
        .expect("etcd-client connect");
    let base = c
        .get(
            "\0",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await
        .expect("first get")
        .header()
        .map_or(0, |h| h.revision());
    let mut t = Transcript {
        lines: Vec::new(),
        norm: Norm::new(base, &[4242]),
    };

    // KV.
    let r = c.put("ec/a", "1", None).await;
    let r = r.map(|r| t.header(r.header()));
    t.push("put ec/a", r);
    let r = c.put("ec/b", "2", None).await.map(|r| t.header(r.header()));
    t.push("put ec/b", r);
    let r = c
        .put("ec/a", "11", Some(PutOptions::new().with_prev_key()))
        .await
        .map(|r| {
            let h = t.header(r.header());
            let p = r.prev_key().map(|k| t.kv(k)).unwrap_or_default();
            format!("{h} prev={p}")
        });
    t.push("put ec/a prev_kv", r);
    let r = c.get("ec/a", None).await.map(|r| {
        let h = t.header(r.header());
        format!("{h} {} count={}", t.kvs(r.kvs()), r.count())
    });
    t.push("get ec/a", r);
    let r = c
        .get(
            "ec/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_limit(1)
                    .with_sort(SortTarget::Mod, SortOrder::Descend),
            ),
        )
        .await
        .map(|r| format!("{} more={} count={}", t.kvs(r.kvs()), r.more(), r.count()));
    t.push("get ec/ prefix limit 1 by mod desc", r);
    let r = c
        .get("ec/a", Some(GetOptions::new().with_revision(base + 1)))
        .await
        .map(|r| t.kvs(r.kvs()));
    t.push("get ec/a at B+1", r);
    let r = c
        .get(
            "ec/",
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .map(|r| t.kvs(r.kvs()));
    t.push("get keys only", r);
    let r = c
        .get("ec/a", Some(GetOptions::new().with_revision(base + 1000)))
        .await
        .map(|r| t.kvs(r.kvs()));
    t.push("get future revision", r);
    let r = c.put("", "x", None).await.map(|_| "ok".to_string());
    t.push("put empty key", r);
    let r = c
        .delete(
            "ec/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .map(|r| format!("deleted={} prev={}", r.deleted(), t.kvs(r.prev_kvs())));
    t.push("delete prefix", r);
    let r = c
        .delete("ec/none", None)
        .await
        .map(|r| format!("{} deleted={}", t.header(r.header()), r.deleted()));
    t.push("delete nothing", r);

    // Txn.
    let _ = c.put("ec/t", "v1", None).await;
    for (what, value) in [("txn match", "v1"), ("txn mismatch", "zz")] {
        let txn = Txn::new()
            .when([
                Compare::value("ec/t", CompareOp::Equal, value),
                Compare::version("ec/t", CompareOp::Greater, 0),
            ])
            .and_then([
                TxnOp::put("ec/t", "v2", None),
                TxnOp::get("ec/t", None),
                TxnOp::delete("ec/gone", None),
            ])
            .or_else([TxnOp::get("ec/t", None)]);
        let r = c.txn(txn).await.map(|r| {
            let h = t.header(r.header());
            let ops: Vec<String> = r
                .op_responses()
                .iter()
                .map(|o| match o {
                    TxnOpResponse::Put(p) => format!("put {}", t.header(p.header())),
                    TxnOpResponse::Get(g) => format!("get {}", t.kvs(g.kvs())),
                    TxnOpResponse::Delete(d) => format!("delete deleted={}", d.deleted()),
                    TxnOpResponse::Txn(_) => "txn".into(),
                })
                .collect();
            format!("{h} succeeded={} [{}]", r.succeeded(), ops.join("; "))
        });
        t.push(what, r);
    }
    let txn = Txn::new().and_then([TxnOp::put("ec/d", "1", None), TxnOp::put("ec/d", "2", None)]);
    let r = c.txn(txn).await.map(|r| r.succeeded().to_string());
    t.push("txn duplicate key", r);

    // Watch: a prefix with prev_kv, then a replay from the past.
    match c
        .watch(
            "ec/w/",
            Some(WatchOptions::new().with_prefix().with_prev_key()),
        )
        .await
    {
        Err(e) => t.push("watch", Err(e)),
        Ok(mut ws) => {
            let _ = c.put("ec/w/a", "1", None).await;
            let _ = c.put("ec/w/a", "2", None).await;
            let _ = c.delete("ec/w/a", None).await;
            let mut seen = 0;
            while seen < 3 {
                match tokio::time::timeout(Duration::from_secs(5), ws.message()).await {
                    Ok(Ok(Some(m))) => {
                        let evs: Vec<String> = m
                            .events()
                            .iter()
                            .map(|e| {
                                let ty = match e.event_type() {
                                    EventType::Put => "PUT",
                                    EventType::Delete => "DELETE",
                                };
                                let kv = e.kv().map(|k| t.kv(k)).unwrap_or_default();
                                let p = e.prev_kv().map(|k| t.kv(k)).unwrap_or_default();
                                format!("{ty} {kv} prev={p}")
                            })
                            .collect();
                        seen += evs.len();
                        let line = format!(
                            "id={} created={} canceled={} events={evs:?}",
                            m.watch_id(),
                            m.created(),
                            m.canceled()
                        );
                        t.lines.push(format!("watch message: {line}"));
                    }
                    other => {
                        t.lines
                            .push(format!("watch ended: {:?}", other.map(|o| o.is_ok())));
                        break;
                    }
                }
            }
            let r = ws.cancel(0).await.map(|_| "sent".to_string());
            t.push("watch cancel", r);
            if let Ok(Ok(Some(m))) =
                tokio::time::timeout(Duration::from_secs(5), ws.message()).await
            {
                t.lines.push(format!(
                    "watch cancel answer: id={} canceled={}",
                    m.watch_id(),
                    m.canceled()
                ));
            }
        }
    }

    // Leases.
    let grant = c.lease_grant(60, None).await;
    let id = grant.as_ref().map(|g| g.id()).unwrap_or(0);
    let r = grant.map(|g| format!("id={} ttl={}", t.norm.lease(g.id()), g.ttl()));
    t.push("lease grant", r);
    let r = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
        .await
        .map(|g| format!("id={} ttl={}", t.norm.lease(g.id()), g.ttl()));
    t.push("lease grant id=4242", r);
    let r = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
        .await
        .map(|g| g.id().to_string());
    t.push("lease grant id=4242 again", r);
    let r = c
        .put("ec/l", "1", Some(PutOptions::new().with_lease(id)))
        .await
        .map(|r| t.header(r.header()));
    t.push("put with lease", r);
    match c.lease_keep_alive(id).await {
        Err(e) => t.push("keep alive", Err(e)),
        Ok((mut keeper, mut stream)) => {
            let r = keeper.keep_alive().await.map(|_| "sent".to_string());
            t.push("keep alive send", r);
            let r = match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
                Ok(r) => r.map(|m| {
                    m.map(|m| format!("id={} ttl={}", t.norm.lease(m.id()), m.ttl()))
                        .unwrap_or_else(|| "stream ended".into())
                }),
                Err(_) => Ok("no answer in 5 s".into()),
            };
            t.push("keep alive answer", r);
        }
    }
    let r = c
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .map(|r| {
            let mut keys: Vec<String> = r.keys().iter().map(|k| show_bytes(k)).collect();
            keys.sort();
            format!(
                "id={} remaining: {} granted={} keys={keys:?}",
                t.norm.lease(r.id()),
                r.ttl(),
                r.granted_ttl()
            )
        });
    t.push("time to live", r);
    let r = c.leases().await.map(|r| {
        let ids: Vec<String> = r.leases().iter().map(|l| t.norm.lease(l.id())).collect();
        format!("{ids:?}")
    });
    t.push("leases", r);
    let r = c.lease_revoke(id).await.map(|r| t.header(r.header()));
    t.push("revoke", r);
    let r = c
        .get("ec/l", None)
        .await
        .map(|r| format!("{}", r.kvs().len()));
    t.push("leased key after revoke", r);
    let r = c.lease_revoke(id).await.map(|_| "ok".to_string());
    t.push("revoke again", r);
    let r = c
        .lease_time_to_live(id, None)
        .await
        .map(|r| format!("remaining: {} granted={}", r.ttl(), r.granted_ttl()));
    t.push("time to live after revoke", r);
    let _ = c.lease_revoke(4242).await;

    // Lock and election, on a lease of the scenario's choosing (the keys
    // carry its id).
    let _ = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x5151)))
        .await;
    let r = c
        .lock("ec-lock", Some(LockOptions::new().with_lease(0x5151)))
        .await
        .map(|r| format!("{} at {}", show_bytes(r.key()), t.header(r.header())));
    t.push("lock", r);
    let r = c.unlock("ec-lock/5151").await.map(|r| t.header(r.header()));
    t.push("unlock", r);
    let r = c.campaign("ec-el", "me", 0x5151).await.map(|r| {
        let l = r.leader().map(|l| show_bytes(l.key())).unwrap_or_default();
        format!("{l} at {}", t.header(r.header()))
    });
    t.push("campaign", r);
    let r = c
        .leader("ec-el")
        .await
        .map(|r| t.kvs(r.kv().map(std::slice::from_ref).unwrap_or_default()));
    t.push("leader", r);
    let r = c.leader("ec-none").await.map(|r| t.header(r.header()));
    t.push("leader of an election without candidates", r);
    let _ = c.lease_revoke(0x5151).await;

    // Compaction.
    let r1 = c
        .put("ec/c", "1", None)
        .await
        .map(|r| r.header().map_or(0, |h| h.revision()));
    let r1 = r1.unwrap_or(0);
    let _ = c.put("ec/c", "2", None).await;
    let r = c
        .compact(r1 + 1, Some(CompactionOptions::new().with_physical()))
        .await
        .map(|r| t.header(r.header()));
    t.push("compact", r);
    let r = c
        .get("ec/c", Some(GetOptions::new().with_revision(r1)))
        .await
        .map(|r| t.kvs(r.kvs()));
    t.push("get compacted", r);
    let r = c.compact(r1, None).await.map(|_| "ok".to_string());
    t.push("compact again", r);
    t.lines.join("\n")
}

#[test]
fn etcd_client_crate() {
    let test = "v3 clients: etcd-client crate";
    let Some((r, c)) = pair(test) else { return };
    let rt = runtime();
    let (a, b) = rt.block_on(async {
        tokio::join!(
            etcd_client_scenario(r.client),
            etcd_client_scenario(c.client)
        )
    });
    compare_transcripts(test, &c.label, &a, &b);
}

// ---- (b) Debian's etcdctl ----------------------------------------------------

/// One etcdctl invocation of the scenario. In arguments and stdin,
/// `{base+N}` is the server's revision at the start plus N, `{rev}` and
/// `{rev+N}` the last `"revision"` a `-w json` output showed (plus N), and
/// `{lease}` the id (hexadecimal) of the lease the last `lease grant` gave.
enum Ctl {
    Run(&'static str),
    Stdin(&'static str, &'static str),
    /// `watch ARGS` in the background while `writes` run, then stopped.
    Watch(&'static str, &'static [&'static str]),
}

const ETCDCTL_SCENARIO: &[Ctl] = &[
    Ctl::Run("put k1 v1"),
    Ctl::Run("put k1 v2 --prev-kv"),
    Ctl::Run("put k2 v3 -w json"),
    Ctl::Run("put k3 v4"),
    Ctl::Run("get k1"),
    Ctl::Run("get k --prefix"),
    Ctl::Run("get k --prefix -w json"),
    Ctl::Run("get k --prefix --keys-only"),
    Ctl::Run("get k --prefix --limit=2 --keys-only -w json"),
    Ctl::Run("get k --prefix --limit=1 -w json"),
    Ctl::Run("get k --prefix --sort-by=MODIFY --order=DESCEND"),
    Ctl::Run("get k --prefix --sort-by=VALUE --order=ASCEND --print-value-only"),
    Ctl::Run("get k1 --rev={base+1}"),
    Ctl::Run("get k1 --rev={base+1} -w json"),
    Ctl::Run("get k1 --rev={base+1000}"),
    Ctl::Run("get --from-key k2"),
    Ctl::Run("get k9"),
    Ctl::Run("get k1 --consistency=s"),
    Ctl::Run("del k2 --prev-kv"),
    Ctl::Run("del k --prefix -w json"),
    Ctl::Run("del nothing"),
    Ctl::Run("put t 1"),
    Ctl::Stdin("txn", "value(\"t\") = \"1\"\n\nput t 2\nget t\n\nget t\n\n"),
    Ctl::Stdin("txn", "value(\"t\") = \"1\"\n\nput t 3\n\nget t\n\n"),
    Ctl::Stdin("txn -w json", "mod(\"t\") > \"0\"\n\ndel t\n\n\n"),
    Ctl::Watch(
        "watch --prefix w/ --prev-kv",
        &["put w/a 1", "put w/a 2", "del w/a"],
    ),
    Ctl::Watch("watch w/b -w json --rev={base+1}", &["put w/b 1"]),
    Ctl::Run("lease grant 60"),
    Ctl::Run("put lk v --lease={lease}"),
    Ctl::Run("get lk -w json"),
    Ctl::Run("lease timetolive {lease}"),
    Ctl::Run("lease timetolive {lease} --keys"),
    Ctl::Run("lease timetolive {lease} --keys -w json"),
    Ctl::Run("lease list"),
    Ctl::Run("lease keep-alive --once {lease}"),
    Ctl::Run("lease revoke {lease}"),
    Ctl::Run("get lk"),
    Ctl::Run("lease revoke {lease}"),
    Ctl::Run("lease timetolive {lease}"),
    Ctl::Run("lease keep-alive --once {lease}"),
    Ctl::Run("put lk v --lease=1234abcd"),
    Ctl::Run("lease grant 1"),
    Ctl::Run("lease revoke {lease}"),
    Ctl::Run("put c 1 -w json"),
    Ctl::Run("put c 2 -w json"),
    Ctl::Run("get c --rev={rev}"),
    Ctl::Run("compaction {rev}"),
    Ctl::Run("compaction {rev}"),
    Ctl::Run("get c --rev={base+2}"),
    Ctl::Run("put c 3 -w json"),
    Ctl::Run("compaction --physical {rev}"),
    Ctl::Run("compaction {rev+1000}"),
    Ctl::Run("get c -w json"),
    Ctl::Run("member list"),
    Ctl::Run("member list -w json"),
    // The same writes give the same hash on both (the scenario's
    // lease-bearing revision is compacted away by now).
    Ctl::Run("endpoint hashkv"),
    Ctl::Run("endpoint hashkv --rev={rev}"),
    // etcdctl locks on the client side (KV, Lease and Watch): it runs the
    // command with the lock held, then releases it.
    Ctl::Run("lock mylock echo held"),
    // Defragmentation: etcdctl's line, then the data is all still there.
    Ctl::Run("defrag"),
    Ctl::Run("defrag --cluster"),
    Ctl::Run("get --from-key 0 -w json"),
];

struct CtlRun<'a> {
    etcdctl: &'a Path,
    endpoint: String,
    addr: String,
    /// The peer address (`member list` shows it), if the server has one.
    peer: Option<String>,
    base: i64,
    rev: i64,
    lease_hex: Option<String>,
    norm: Norm,
}

impl CtlRun<'_> {
    fn expand(&self, s: &str) -> String {
        let re = Regex::new(r"\{(base|rev)(?:\+(\d+))?\}").unwrap();
        let s = re.replace_all(s, |c: &regex::Captures| {
            let from = if &c[1] == "base" { self.base } else { self.rev };
            let plus: i64 = c.get(2).map_or(0, |n| n.as_str().parse().unwrap());
            (from + plus).to_string()
        });
        s.replace("{lease}", self.lease_hex.as_deref().unwrap_or("0"))
    }

    fn command(&self, args: &str) -> Command {
        let mut cmd = Command::new(self.etcdctl);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .arg("--command-timeout=10s")
            .args(self.expand(args).split_whitespace());
        cmd
    }

    fn run(&mut self, args: &str, stdin: Option<&str>) -> String {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etcdctl");
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("etcdctl stdin");
        drop(input);
        let out = child.wait_with_output().expect("etcdctl output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(c) = Regex::new(r"lease ([0-9a-f]+) granted")
            .unwrap()
            .captures(&stdout)
        {
            self.lease_hex = Some(c[1].to_string());
        }
        if let Some(c) = Regex::new(r#""revision":(\d+)"#).unwrap().captures(&stdout) {
            self.rev = c[1].parse().unwrap();
        }
        format!(
            "$ etcdctl {args}\nexit: {}\nstdout:\n{}stderr:\n{}",
            out.status.code().map_or("signal".into(), |c| c.to_string()),
            self.normalise(&stdout),
            self.normalise(&String::from_utf8_lossy(&out.stderr))
        )
    }

    fn watch(&mut self, args: &str, writes: &[&str]) -> String {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etcdctl watch");
        // Long enough for etcdctl to connect and create its watcher.
        std::thread::sleep(Duration::from_millis(1000));
        let mut text = String::new();
        for w in writes {
            text.push_str(&self.run(w, None));
        }
        std::thread::sleep(Duration::from_millis(1000));
        let _ = child.kill();
        let out = child.wait_with_output().expect("etcdctl watch output");
        format!(
            "$ etcdctl {args} (stopped after the writes)\nstdout:\n{}stderr:\n{}{text}",
            self.normalise(&String::from_utf8_lossy(&out.stdout)),
            self.normalise(&String::from_utf8_lossy(&out.stderr))
        )
    }

    /// Ids, revisions, terms, timestamps and addresses to stable text.
    fn normalise(&mut self, s: &str) -> String {
        let mut s = s.replace(&self.addr, "ADDR");
        if let Some(peer) = &self.peer {
            s = s.replace(peer, "PEER");
        }
        let ts = Regex::new(r#""ts":"[^"]*""#).unwrap();
        s = ts.replace_all(&s, r#""ts":"T""#).into_owned();
        let client = Regex::new(r"client-[0-9a-f-]{36}").unwrap();
        s = client.replace_all(&s, "client-ID").into_owned();
        let caller = Regex::new(r#""caller":"[^"]*""#).unwrap();
        s = caller.replace_all(&s, r#""caller":"C""#).into_owned();
        let fields = Regex::new(
            r#""(cluster_id|member_id|raft_term|revision|create_revision|mod_revision|compact_revision|ID|id|lease)":(-?\d+)"#,
        )
        .unwrap();
        let norm = &mut self.norm;
        s = fields
            .replace_all(&s, |c: &regex::Captures| {
                // Ids are uint64 in JSON: wider than i64.
                let v: i128 = c[2].parse().unwrap();
                let shown = match &c[1] {
                    "cluster_id" => norm.cluster(v as u64),
                    "member_id" => norm.member(v as u64),
                    "raft_term" => norm.term(v as u64),
                    "ID" | "id" | "lease" => norm.lease(v as i64),
                    _ => norm.rev(v as i64),
                };
                format!("\"{}\":\"{shown}\"", &c[1])
            })
            .into_owned();
        // Member ids at the start of `member list` lines: etcd prints them
        // without leading zeros, and they follow from the (free) ports.
        let member = Regex::new(r"(?m)^[0-9a-f]{1,16}(, (?:started|unstarted), )").unwrap();
        s = member.replace_all(&s, "MEMBER$1").into_owned();
        // Hexadecimal lease ids (grant, revoke, timetolive, list, keep-alive).
        let hex = Regex::new(r"\b[0-9a-f]{16}\b").unwrap();
        s = hex
            .replace_all(&s, |c: &regex::Captures| {
                let v = u64::from_str_radix(&c[0], 16).unwrap() as i64;
                norm.lease(v)
            })
            .into_owned();
        let compacted = Regex::new(r"compacted revision (\d+)").unwrap();
        compacted
            .replace_all(&s, |c: &regex::Captures| {
                format!("compacted revision {}", norm.rev(c[1].parse().unwrap()))
            })
            .into_owned()
    }
}

#[test]
fn etcdctl() {
    etcdctl_transcripts("v3 clients: etcdctl", ETCDCTL_SCENARIO);
}

/// v3 auth as an operator sets it up with etcdctl: users, roles and
/// permissions (a key, a prefix, from a key), `auth enable`, then the
/// same commands as several users, allowed and denied (reads, writes,
/// a txn, a watch, a lease, admin commands), a bad password, a changed
/// password, a deleted user, and `auth disable`.
const ETCDCTL_AUTH_SCENARIO: &[Ctl] = &[
    Ctl::Run("auth enable"),
    Ctl::Run("user add root:rootpw"),
    Ctl::Run("user grant-role root root"),
    Ctl::Run("role add reader"),
    Ctl::Run("role add writer"),
    Ctl::Run("role add reader"),
    Ctl::Run("role grant-permission reader read foo"),
    Ctl::Run("role grant-permission reader read --prefix=true pub/"),
    Ctl::Run("role grant-permission writer readwrite --from-key=true w"),
    Ctl::Run("role grant-permission writer write foo"),
    Ctl::Run("user add alice:alicepw"),
    Ctl::Run("user add bob:bobpw"),
    Ctl::Run("user grant-role alice reader"),
    Ctl::Run("user grant-role bob writer"),
    Ctl::Run("user grant-role bob nosuchrole"),
    Ctl::Run("role get reader"),
    Ctl::Run("role get writer -w json"),
    Ctl::Run("user get alice"),
    Ctl::Run("user list"),
    Ctl::Run("role list"),
    Ctl::Run("put foo before"),
    Ctl::Run("auth enable"),
    Ctl::Run("put foo after"),
    Ctl::Run("get foo"),
    Ctl::Run("--user root:rootpw put foo v1"),
    Ctl::Run("--user root:rootpw put pub/a 1"),
    Ctl::Run("--user alice:alicepw get foo"),
    Ctl::Run("--user alice:alicepw get pub/ --prefix"),
    Ctl::Run("--user alice:alicepw get pu --prefix"),
    Ctl::Run("--user alice:alicepw put foo v2"),
    Ctl::Run("--user alice:wrong get foo"),
    Ctl::Run("--user nobody:pw get foo"),
    Ctl::Run("--user bob:bobpw put foo v3"),
    Ctl::Run("--user bob:bobpw get foo"),
    Ctl::Run("--user bob:bobpw put x 1"),
    Ctl::Run("--user bob:bobpw put zz 1"),
    Ctl::Run("--user bob:bobpw get w --from-key"),
    Ctl::Run("--user bob:bobpw del zz"),
    Ctl::Stdin(
        "--user bob:bobpw txn",
        "value(\"foo\") = \"v3\"\n\nput zz 2\n\nput x 2\n\n",
    ),
    Ctl::Stdin(
        "--user alice:alicepw txn",
        "value(\"foo\") = \"v3\"\n\nget foo\n\nget pub/a\n\n",
    ),
    Ctl::Watch("--user alice:alicepw watch secret", &[]),
    Ctl::Run("--user alice:alicepw user list"),
    Ctl::Run("--user alice:alicepw user get alice"),
    Ctl::Run("--user alice:alicepw user get bob"),
    Ctl::Run("--user alice:alicepw role get reader"),
    Ctl::Run("--user alice:alicepw role get writer"),
    Ctl::Run("--user alice:alicepw member list"),
    Ctl::Run("--user alice:alicepw endpoint hashkv"),
    Ctl::Run("--user root:rootpw lease grant 60"),
    Ctl::Run("--user root:rootpw put wlease v --lease={lease}"),
    Ctl::Run("--user alice:alicepw lease revoke {lease}"),
    Ctl::Run("--user bob:bobpw lease revoke {lease}"),
    Ctl::Run("--user root:rootpw role revoke-permission writer foo"),
    Ctl::Run("--user root:rootpw role revoke-permission writer foo"),
    Ctl::Run("--user bob:bobpw put foo v4"),
    Ctl::Run("--user root:rootpw user revoke-role alice writer"),
    Ctl::Run("--user root:rootpw user revoke-role root root"),
    Ctl::Run("--user root:rootpw user delete root"),
    Ctl::Run("--user root:rootpw role delete root"),
    Ctl::Run("--user root:rootpw user passwd alice --interactive=false"),
    Ctl::Stdin(
        "--user root:rootpw user passwd alice --interactive=false",
        "newpw\n",
    ),
    Ctl::Run("--user alice:alicepw get foo"),
    Ctl::Run("--user alice:newpw get foo"),
    Ctl::Run("--user root:rootpw role delete reader"),
    Ctl::Run("--user alice:newpw get foo"),
    Ctl::Run("--user root:rootpw user delete bob"),
    Ctl::Run("--user bob:bobpw get foo"),
    Ctl::Run("--user root:rootpw auth disable"),
    Ctl::Run("get foo"),
    Ctl::Run("user list"),
    Ctl::Run("--user root:rootpw get foo"),
];

#[test]
fn etcdctl_auth() {
    etcdctl_transcripts("v3 clients: etcdctl auth", ETCDCTL_AUTH_SCENARIO);
}

/// Runs `scenario` with Debian's etcdctl against a fresh etcd and a fresh
/// candidate, and compares the normalised transcripts.
fn etcdctl_transcripts(test: &str, scenario: &[Ctl]) {
    let Some(etcdctl) = server::find_on_path("etcdctl") else {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: etcdctl not found (Debian's etcd-client); required when CI is set");
        }
        server::skip_notice(test, "etcdctl not found (apt-get install etcd-client)");
        return;
    };
    let Some((r, c)) = pair(test) else { return };
    let rt = runtime();
    let bases: Vec<i64> = rt.block_on(async {
        let mut v = Vec::new();
        for s in [&r, &c] {
            v.push(
                Clients::new(s.client)
                    .wait_serving(Duration::from_secs(5))
                    .await
                    .unwrap(),
            );
        }
        v
    });
    // Both in parallel: the watch steps sleep.
    let texts: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = [&r, &c]
            .into_iter()
            .zip(bases)
            .map(|(s, base)| {
                let etcdctl = &etcdctl;
                sc.spawn(move || {
                    let mut run = CtlRun {
                        etcdctl,
                        endpoint: s.client_url(),
                        addr: s.client.to_string(),
                        peer: s.peer.map(|p| p.to_string()),
                        base,
                        rev: base,
                        lease_hex: None,
                        norm: Norm::new(base, &[]),
                    };
                    let mut out = String::new();
                    for step in scenario {
                        out.push_str(&match step {
                            Ctl::Run(a) => run.run(a, None),
                            Ctl::Stdin(a, input) => run.run(a, Some(input)),
                            Ctl::Watch(a, w) => run.watch(a, w),
                        });
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    compare_transcripts(test, &c.label, &texts[0], &texts[1]);
}

// ---- (c) python etcd3 ---------------------------------------------------------

/// An interpreter that can `import etcd3`, as the module docs say.
fn etcd3_python() -> Option<PathBuf> {
    python_with("etcd3")
}

/// An interpreter that can import `module`: `$FERRET_ETCD3_PYTHON`, the
/// venv .ci/run makes, or the system's.
fn python_with(module: &str) -> Option<PathBuf> {
    let can_import = |p: &Path| {
        Command::new(p)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(p) = std::env::var_os("FERRET_ETCD3_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-etcd3/bin/python");
    if venv.is_file() && can_import(&venv) {
        return Some(venv);
    }
    let sys = PathBuf::from("python3");
    can_import(&sys).then_some(sys)
}

/// Python's `etcd3gw` (2.7), a client of the JSON gateway: the same
/// transcript from etcd and the candidate (v3diff/etcd3gw_transcript.py).
#[test]
fn python_etcd3gw() {
    let test = "v3 clients: python etcd3gw";
    let Some(python) = python_with("etcd3gw") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test}: no python with the etcd3gw package (.ci/run installs it into \
                 target/py-etcd3); required when CI is set"
            );
        }
        server::skip_notice(
            test,
            "no python with the etcd3gw package: target/py-etcd3/bin/pip install etcd3gw==2.7.0",
        );
        return;
    };
    let Some((r, c)) = pair(test) else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v3diff/etcd3gw_transcript.py");
    let texts: Vec<String> = [&r, &c]
        .into_iter()
        .map(|s| {
            let out = Command::new(&python)
                .arg(&script)
                .arg(s.client.ip().to_string())
                .arg(s.client.port().to_string())
                .output()
                .expect("run the etcd3gw script");
            format!(
                "{}{}exit: {:?}\n",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status.code()
            )
        })
        .collect();
    compare_transcripts(test, &c.label, &texts[0], &texts[1]);
}

#[test]
fn python_etcd3() {
    let test = "v3 clients: python etcd3";
    let Some(python) = etcd3_python() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test}: no python with the etcd3 package (.ci/run makes target/py-etcd3; \
                 or set FERRET_ETCD3_PYTHON); required when CI is set"
            );
        }
        server::skip_notice(
            test,
            "no python with the etcd3 package: python3 -m venv target/py-etcd3 && \
             target/py-etcd3/bin/pip install etcd3==0.12.0 protobuf==3.20.3",
        );
        return;
    };
    let Some((r, c)) = pair(test) else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v3diff/etcd3_transcript.py");
    let texts: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = [&r, &c]
            .into_iter()
            .map(|s| {
                let (python, script) = (&python, &script);
                sc.spawn(move || {
                    let out = Command::new(python)
                        .arg(script)
                        .arg(s.client.ip().to_string())
                        .arg(s.client.port().to_string())
                        .output()
                        .expect("run the etcd3 script");
                    format!(
                        "{}exit: {:?}\n",
                        String::from_utf8_lossy(&out.stdout),
                        out.status.code()
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    compare_transcripts(test, &c.label, &texts[0], &texts[1]);
}
