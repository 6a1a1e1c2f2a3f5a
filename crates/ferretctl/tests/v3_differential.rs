//! Differential test of etcdctl v3: every command line of the corpus is
//! run by Debian's etcdctl 3.4 (v3 by default) against a fresh etcd and by
//! `ETCDCTL_API=3 ferretctl` against a fresh ferretcd, in the same order;
//! stdout, stderr and exit codes must agree once the cluster and member
//! ids, the endpoint and clientv3's log lines (time, client id) are
//! normalised. Revisions need no normalising: both servers start empty and
//! see the same requests.
//!
//! The corpus grows with the commands ferretctl implements; a command not
//! implemented yet has no line here (it refuses with a clear error).

mod common;

use common::{reference_available, Run, Server};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferret_testkit::process::Proc;

/// A corpus line: the arguments (split as a shell would, by the test's
/// `split`) and what goes to stdin.
struct Line {
    args: &'static str,
    stdin: Option<&'static str>,
    /// A command that runs until interrupted (`watch`): stopped with
    /// SIGINT after this many milliseconds.
    interrupt_ms: Option<u64>,
}

const fn run(args: &'static str) -> Line {
    Line {
        args,
        stdin: None,
        interrupt_ms: None,
    }
}

const fn run_in(args: &'static str, stdin: &'static str) -> Line {
    Line {
        args,
        stdin: Some(stdin),
        interrupt_ms: None,
    }
}

/// A command run until SIGINT after `ms` milliseconds.
const fn run_for(args: &'static str, ms: u64) -> Line {
    Line {
        args,
        stdin: None,
        interrupt_ms: Some(ms),
    }
}

/// get, put and del: their flags, output formats and errors.
const KV: &[Line] = &[
    // put: arguments, stdin, flags
    run("put foo bar"),
    run("put foo2 'b\"az'"),
    run("put"),
    run_in("put fromstdin", "value from stdin"),
    run_in("put emptystdin", ""),
    run("put foo bar2 --prev-kv"),
    run("put foo --ignore-value --prev-kv"),
    run("put foo x --ignore-value"),
    run("put nokey --ignore-value"),
    run("put foo x --lease zz"),
    run("put foo x --lease 1234"),
    run("put '' x"),
    run("put -w fields foo f1 --prev-kv"),
    run("put -w table foo t1"),
    run("put --hex --prev-kv foo h1"),
    run("put pre/a 1"),
    run("put pre/b 2"),
    run("put pre/c 3"),
    run("put prf 4"),
    run("put 'sp ace' 'v\nline'"),
    run("put -w json foo j1"),
    run("put -w json foo j2 --prev-kv"),
    run("put -w json 'a<b>&c' 'v\u{2028}\x01'"),
    // get: ranges, prefixes, sorting, limits, revisions, formats
    run("get foo"),
    run("get nokey"),
    run("get"),
    run("get foo fop"),
    run("get pre/ pre0"),
    run("get --prefix pre"),
    run("get --prefix pre/ --limit 2"),
    run("get --prefix ''"),
    run("get --from-key pre/b"),
    run("get --from-key ''"),
    run("get --prefix --from-key pre"),
    run("get --prefix pre/ x"),
    run("get --prefix pre/ --keys-only"),
    run("get --prefix pre/ --print-value-only"),
    run("get --prefix pre/ --print-value-only -w fields"),
    run("get --prefix pre/ --sort-by=VALUE --order=DESCEND"),
    run("get --prefix pre/ --sort-by=create --order=descend"),
    run("get --prefix pre/ --sort-by=MODIFY"),
    run("get --prefix pre/ --sort-by=VERSION --order=ASCEND"),
    run("get --prefix pre/ --sort-by=KEY --order=DESCEND"),
    run("get --prefix pre/ --sort-by=nope"),
    run("get --prefix pre/ --order=up"),
    run("get foo --rev 2"),
    run("get foo --rev 1"),
    run("get foo --rev 1000"),
    run("get foo --consistency s"),
    run("get foo --consistency x"),
    run("get foo -w fields"),
    run("get --prefix pre/ -w fields --limit 1"),
    run("get foo -w table"),
    run("get foo -w json"),
    run("get --prefix pre/ -w json"),
    run("get --prefix pre/ -w json --keys-only --limit 1"),
    run("get nokey -w json"),
    run("get 'a<b>&c' -w json"),
    run("get foo -w xml"),
    run("get foo --hex"),
    run("get 'sp ace'"),
    run("get 'sp ace' --hex --print-value-only"),
    run("get foo --limit x"),
    run("get foo --prefix=maybe"),
    // del
    run("del"),
    run("del a b c"),
    run("del nokey"),
    run("del --prefix --from-key a"),
    run("del pre/a --prev-kv"),
    run("del --prefix pre/ x"),
    run("del --prefix pre/ --prev-kv -w fields"),
    run("del prf -w json --prev-kv"),
    run("del nokey -w json"),
    run("del --from-key 'sp ace'"),
    run("get --prefix ''"),
    run("del --prefix ''"),
    run("get --from-key ''"),
];

/// txn: comparisons, both branches, every format, and the errors of its
/// input.
const TXN: &[Line] = &[
    run("put foo bar"),
    run("put k1 v1"),
    run_in(
        "txn",
        "mod(\"foo\") > \"0\"\n\nput foo txn1\nget foo\n\ndel foo\n\n",
    ),
    run_in(
        "txn",
        "value(\"foo\") = \"nope\"\n\nput foo x\n\nget foo\nget --prefix k\n\n",
    ),
    run_in(
        "txn -i",
        "ver(\"k1\") = \"1\"\n\nput k1 v2 --prev-kv\ndel k1 --prev-kv\n\nget k1\n\n",
    ),
    run_in("txn --interactive", "\n\n\n"),
    run_in(
        "txn",
        "c(\"k1\") > \"0\"\nm(\"k1\") < \"1000\"\nval(`k1`) != \"z\"\n\nget k1\n\n\n",
    ),
    run_in(
        "txn -w json",
        "create(\"foo\") > \"0\"\n\nput foo j\nget foo\n\ndel foo\n\n",
    ),
    run_in(
        "txn -w fields",
        "version(\"foo\") > \"0\"\n\nput foo f --prev-kv\nget foo\ndel nokey\n\n\n",
    ),
    run_in("txn -w table", "\n\n\n"),
    run_in("txn", "mod(foo) > \"0\"\n\n\n"),
    run_in("txn", "mod(\"foo\") > 0\n\n\n"),
    run_in("txn", "nothing\n\n\n"),
    run_in("txn", "bogus(\"foo\") = \"1\"\n\n\n"),
    run_in("txn", "ver(\"foo\") = \"x\"\n\n\n"),
    run_in("txn", "mod(\"foo\") > \"0\""),
    run_in("txn", "mod(\"foo\") > \"0\"\n\nput foo x"),
    run_in("txn", ""),
    run_in("txn", "\n\nfoo bar\n\n\n"),
    run_in("txn", "\n\nput\n\n\n"),
    run_in("txn", "\n\nput onlykey\n\n\n"),
    run_in("txn", "\n\nget\n\n\n"),
    run_in("txn", "\n\nget --prefix k --limit 1 -w json\n\n\n"),
    run_in("txn", "\n\nget --prefix k --limit 1\n\n\n"),
    run_in(
        "txn",
        "\n\nput \"sp ace\" \"two words\"\nget \"sp ace\"\n\n\n",
    ),
    run_in("txn", "\n\nput 'q1' v\n\n\n"),
    run_in("txn", "\n\ng k1\np k2 v\nd k2 --prev-kv\n\n\n"),
    run_in("txn", "\n\ndel --prefix --from-key k\n\n\n"),
    run_in("txn", "\n\nput k3 v --lease zz\n\n\n"),
    run_in("txn", "\n\nput --foo\n\n\n"),
    run_in("txn", "\n\nget k1 --limit x\n\n\n"),
    run_in("txn", "\n\ndel k1 --prefix=maybe\n\n\n"),
    run("txn extra"),
    run_in("txn", "\n\nput k4 v\n\n\n"),
    run("get --prefix k"),
];

/// watch: history from a revision, ranges, prefixes, previous values,
/// every format, a command per event, and the argument errors.
const WATCH: &[Line] = &[
    run("put w/a 1"),
    run("put w/b 2"),
    run("put w/a 3"),
    run("del w/b"),
    run("put wz 4"),
    run_for("watch --rev 1 --prefix w/", 1500),
    run_for("watch --rev 1 w/a --prev-kv", 1500),
    run_for("watch --rev 1 w/a w/c", 1500),
    run_for("watch --rev 1 --prefix w/ -w json", 1500),
    run_for("watch --rev 1 --prefix w/ -w fields --prev-kv", 1500),
    run_for("watch --rev 1 --prefix w/ --hex", 1500),
    run_for("watch --rev 1 --prefix ''", 1500),
    run_for(
        "watch --rev 1 --prefix w/ -- sh -c 'echo $ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE'",
        1500,
    ),
    run("watch --rev 1 --prefix w/ -- false"),
    run("watch --rev 1 --prefix w/ -- /nonexistent/cmd"),
    run("watch --rev 1 --prefix w/ -w table"),
    run("watch"),
    run("watch w/a --"),
    run("watch --prefix"),
    run("watch a b --prefix"),
    run_for("watch a b c", 800),
    run("watch --rev x a"),
];

/// Words of `line` as a shell splits them (single and double quotes; `\n`
/// inside quotes is a newline).
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                let q = c;
                while let Some(d) = chars.next() {
                    if d == q {
                        break;
                    }
                    if d == '\\' && q == '"' {
                        match chars.next() {
                            Some('n') => cur.push('\n'),
                            Some(e) => cur.push(e),
                            None => {}
                        }
                        continue;
                    }
                    if d == '\\' && chars.peek() == Some(&'n') {
                        chars.next();
                        cur.push('\n');
                        continue;
                    }
                    cur.push(d);
                }
            }
            ' ' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// One side: a tool and the server it talks to.
struct Side {
    label: &'static str,
    bin: PathBuf,
    api3: bool,
    endpoint: String,
}

impl Side {
    fn run_line(&self, line: &Line) -> Run {
        let args = split(line.args);
        match line.interrupt_ms {
            None => self.run(&args, line.stdin),
            Some(ms) => {
                let mut c = Command::new(&self.bin);
                c.args(&args)
                    .env("ETCDCTL_ENDPOINTS", &self.endpoint)
                    .env_remove("ETCDCTL_API")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                if self.api3 {
                    c.env("ETCDCTL_API", "3");
                }
                let mut p = Proc(Some(c.spawn().expect("spawn")));
                std::thread::sleep(Duration::from_millis(ms));
                Run::from(p.interrupt())
            }
        }
    }

    fn run(&self, args: &[String], stdin: Option<&str>) -> Run {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("ETCDCTL_ENDPOINTS", &self.endpoint)
            .env_remove("ETCDCTL_API")
            .env_remove("ETCDCTL_USER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.api3 {
            c.env("ETCDCTL_API", "3");
        }
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        {
            let mut sin = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                let _ = sin.write_all(s.as_bytes());
            }
        }
        let mut p = Proc(Some(child));
        let out = p
            .wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {args:?} did not finish in 30 s", self.label));
        Run::from(out)
    }

    /// The cluster and member ids, from a `-w fields` header.
    fn ids(&self) -> (String, String) {
        let r = self.run(
            &["get".into(), "x".into(), "-w".into(), "fields".into()],
            None,
        );
        let field = |name: &str| {
            r.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("\"{name}\" : ")))
                .unwrap_or_else(|| panic!("{}: no {name} in {:?}", self.label, r))
                .to_string()
        };
        (field("ClusterID"), field("MemberID"))
    }
}

/// Replaces what may differ between the two sides.
struct Normaliser {
    endpoint: String,
    cluster_id: String,
    member_id: String,
}

impl Normaliser {
    fn apply(&self, s: &str) -> String {
        let mut out = s.replace(&self.endpoint, "ENDPOINT");
        out = out.replace(&self.cluster_id, "CLUSTER_ID");
        out = out.replace(&self.member_id, "MEMBER_ID");
        let lines: Vec<String> = out
            .split('\n')
            .map(|l| {
                if l.starts_with("{\"level\":\"warn\"") {
                    // clientv3's zap line: its time and client id vary.
                    let ts_end = l.find("\",\"caller\"").unwrap_or(0);
                    let mut l = format!("{{\"level\":\"warn\",\"ts\":\"TS{}", &l[ts_end..]);
                    if let Some(a) = l.find("endpoint://client-") {
                        if let Some(b) = l[a..]
                            .find('/')
                            .and_then(|i| l[a + i + 2..].find('/').map(|j| a + i + 2 + j))
                        {
                            l.replace_range(a..b, "endpoint://client-ID");
                        }
                    }
                    l
                } else {
                    l.to_string()
                }
            })
            .collect();
        lines.join("\n")
    }
}

fn differential(test: &str, corpus: &[Line]) {
    if !reference_available(test) {
        return;
    }
    let etcd = Server::start_etcd("v3diff");
    let ferret = Server::start_ferretcd("v3diff");
    let host = |url: &str| url.trim_start_matches("http://").to_string();
    let sides = [
        Side {
            label: "etcdctl/etcd",
            bin: PathBuf::from("/usr/bin/etcdctl"),
            api3: false,
            endpoint: host(&etcd.client_url),
        },
        Side {
            label: "ferretctl/ferretcd",
            bin: common::ferretctl(),
            api3: true,
            endpoint: host(&ferret.client_url),
        },
    ];
    let norms: Vec<Normaliser> = sides
        .iter()
        .map(|s| {
            let (cluster_id, member_id) = s.ids();
            Normaliser {
                endpoint: s.endpoint.clone(),
                cluster_id,
                member_id,
            }
        })
        .collect();
    let mut diffs = Vec::new();
    for line in corpus {
        // Both sides at once: each server sees its lines in order.
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let handles: Vec<_> = sides
                .iter()
                .map(|s| scope.spawn(move || s.run_line(line)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a side's run"))
                .collect()
        });
        let norm: Vec<(String, String, i32)> = runs
            .iter()
            .zip(&norms)
            .map(|(r, n)| (n.apply(&r.stdout), n.apply(&r.stderr), r.code))
            .collect();
        if norm[0] != norm[1] {
            diffs.push(format!(
                "`{}`:\n--- {} (exit {}):\n{}{}--- {} (exit {}):\n{}{}",
                line.args,
                sides[0].label,
                norm[0].2,
                norm[0].0,
                norm[0].1,
                sides[1].label,
                norm[1].2,
                norm[1].0,
                norm[1].1
            ));
        }
    }
    drop(etcd);
    drop(ferret);
    assert!(
        diffs.is_empty(),
        "{test}: {} of {} lines differ:\n\n{}",
        diffs.len(),
        corpus.len(),
        diffs.join("\n")
    );
}

#[test]
fn get_put_del_match_etcdctl() {
    differential("etcdctl v3 get/put/del", KV);
}

#[test]
fn txn_matches_etcdctl() {
    differential("etcdctl v3 txn", TXN);
}

#[test]
fn watch_matches_etcdctl() {
    differential("etcdctl v3 watch", WATCH);
}

#[test]
fn split_as_a_shell() {
    assert_eq!(split("put a 'b c'"), ["put", "a", "b c"]);
    assert_eq!(split("put '' x"), ["put", "", "x"]);
    assert_eq!(split("put x 'v\\nl'"), ["put", "x", "v\nl"]);
    assert_eq!(split("put x \"q\\\"\""), ["put", "x", "q\""]);
}
