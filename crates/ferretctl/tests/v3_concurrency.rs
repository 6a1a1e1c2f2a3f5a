//! `lock` and `elect` between two parties: a lock held by one tool makes
//! the other wait until it is released, an interrupted wait is canceled,
//! and `elect -l` follows campaigners as they come and resign. etcdctl
//! and ferretctl are crossed (each holding what the other waits for), on
//! ferretcd and on etcd, since both use clientv3's recipes on the same
//! keys (`<name>/<lease id in hex>`).

mod common;

use common::{reference_available, Proc, Server};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Etcdctl,
    Ferretctl,
}

impl Tool {
    fn bin(self) -> PathBuf {
        match self {
            Tool::Etcdctl => PathBuf::from(common::ETCDCTL),
            Tool::Ferretctl => common::ferretctl(),
        }
    }

    fn command(self, endpoint: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin());
        c.args(args)
            .env("ETCDCTL_API", "3")
            .env("ETCDCTL_ENDPOINTS", endpoint)
            .env_remove("ETCDCTL_USER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs to the end (at most 20 s): stdout, stderr, exit code.
    fn run(self, endpoint: &str, args: &[&str]) -> (String, String, i32) {
        let child = self.command(endpoint, args).spawn().expect("spawn");
        let out = Proc(Some(child))
            .wait_output(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{self:?} {args:?} did not finish in 20 s"));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn start(self, endpoint: &str, args: &[&str]) -> Running {
        let mut child = self.command(endpoint, args).spawn().expect("spawn");
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Running {
            what: format!("{self:?} {args:?}"),
            proc: Proc(Some(child)),
            stdout,
        }
    }
}

/// A tool left running, its stdout collected as it comes.
struct Running {
    what: String,
    proc: Proc,
    stdout: Arc<Mutex<String>>,
}

impl Running {
    fn printed(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits (at most 10 s) until what it printed satisfies `ok`.
    fn wait_printed(&self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.printed();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{}: printed {s:?}, not what was waited for",
                self.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn still_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// Sends `sig` and waits (at most 10 s) for the end: stdout, stderr
    /// and exit code.
    fn stop(self, sig: libc::c_int) -> (String, String, i32) {
        self.proc.signal(sig);
        self.finish()
    }

    fn finish(self) -> (String, String, i32) {
        self.finish_within(Duration::from_secs(10))
    }

    fn finish_within(mut self, limit: Duration) -> (String, String, i32) {
        let out = self
            .proc
            .wait_output(limit)
            .unwrap_or_else(|| panic!("{}: still running after {limit:?}", self.what));
        std::thread::sleep(Duration::from_millis(100));
        let code = out.status.code().unwrap_or(-1);
        (
            self.printed(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            code,
        )
    }
}

fn endpoint(s: &Server) -> String {
    s.client_url.trim_start_matches("http://").to_string()
}

/// One holder, one waiter running a command under the lock once the
/// holder is interrupted.
fn lock_handed_over(ep: &str, holder: Tool, waiter: Tool, name: &str) {
    let case = format!("{holder:?} holds {name}, {waiter:?} waits");
    let h = holder.start(ep, &["lock", name]);
    let held = h.wait_printed(|s| s.lines().count() >= 2);
    let held_key = held.lines().next().unwrap_or_default().to_string();
    assert!(
        held_key.starts_with(&format!("{name}/")),
        "{case}: {held:?}"
    );
    let mut w = waiter.start(
        ep,
        &["lock", name, "--", "sh", "-c", "echo got $ETCD_LOCK_KEY"],
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert!(w.still_running(), "{case}: the waiter did not wait");
    assert_eq!(w.printed(), "", "{case}: the waiter ran its command");
    let (out, err, code) = h.stop(libc::SIGINT);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (held.as_str(), "", 0),
        "{case}"
    );
    let (out, err, code) = w.finish();
    assert_eq!((err.as_str(), code), ("", 0), "{case}: {out:?}");
    let got = out.trim_end().strip_prefix("got ").unwrap_or_default();
    assert!(
        got.starts_with(&format!("{name}/")) && got != held_key,
        "{case}: {out:?}"
    );
    // Both keys are gone.
    let (keys, _, code) = Tool::Ferretctl.run(ep, &["get", "--prefix", &format!("{name}/")]);
    assert_eq!((keys.as_str(), code), ("", 0), "{case}");
}

#[test]
fn locks_are_handed_over_between_etcdctl_and_ferretctl() {
    let test = "v3 lock between two parties";
    if !reference_available(test) {
        return;
    }
    // ferretcd's cases and etcd's at once, each server's in order.
    both(
        || {
            let ferret = Server::start_ferretcd("v3conc-lock");
            let ep = endpoint(&ferret);
            lock_handed_over(&ep, Tool::Ferretctl, Tool::Ferretctl, "ff");
            lock_handed_over(&ep, Tool::Etcdctl, Tool::Ferretctl, "ef");
            lock_handed_over(&ep, Tool::Ferretctl, Tool::Etcdctl, "fe");
        },
        || {
            let etcd = Server::start_etcd("v3conc-lock");
            let ep = endpoint(&etcd);
            lock_handed_over(&ep, Tool::Etcdctl, Tool::Ferretctl, "ef");
            lock_handed_over(&ep, Tool::Ferretctl, Tool::Etcdctl, "fe");
        },
    );
}

/// Runs `a` and `b` at once (on servers of their own); a panic in
/// either is the test's.
fn both(a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = scope.spawn(b);
        for h in [a, b] {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
}

/// A wait for a lock cut by SIGINT or SIGTERM: `context canceled`, exit
/// 1, its key deleted; as etcdctl's.
#[test]
fn an_interrupted_wait_for_a_lock_is_canceled() {
    let test = "v3 lock wait interrupted";
    if !reference_available(test) {
        return;
    }
    let ferret = Server::start_ferretcd("v3conc-cancel");
    let etcd = Server::start_etcd("v3conc-cancel");
    // Each server's cases in order, the two servers at once.
    let cases = |server: &Server, tool: Tool| -> Vec<(String, String, i32)> {
        let mut seen = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let ep = endpoint(server);
            let h = Tool::Ferretctl.start(&ep, &["lock", "c"]);
            let held = h.wait_printed(|s| s.lines().count() >= 2);
            let w = tool.start(&ep, &["lock", "c"]);
            std::thread::sleep(Duration::from_millis(1200));
            let waited = w.stop(sig);
            let (keys, _, _) = Tool::Ferretctl.run(&ep, &["get", "--prefix", "c/", "--keys-only"]);
            assert_eq!(
                keys.trim_end(),
                held.trim_end(),
                "{tool:?}: the waiter's key is left"
            );
            let (_, _, code) = h.stop(libc::SIGTERM);
            assert_eq!(code, 0);
            seen.push(waited);
        }
        seen
    };
    let (on_etcd, on_ferret) = std::thread::scope(|scope| {
        let cases = &cases;
        let e = scope.spawn(|| cases(&etcd, Tool::Etcdctl));
        let f = scope.spawn(|| cases(&ferret, Tool::Ferretctl));
        let join = |h: std::thread::ScopedJoinHandle<'_, Vec<(String, String, i32)>>| {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        (join(e), join(f))
    });
    // As the cases ran one after the other: etcd's SIGINT, ferretcd's,
    // then SIGTERM.
    let seen = [
        on_etcd[0].clone(),
        on_ferret[0].clone(),
        on_etcd[1].clone(),
        on_ferret[1].clone(),
    ];
    assert_eq!(seen[0], seen[1], "SIGINT");
    assert_eq!(seen[2], seen[3], "SIGTERM");
    assert_eq!(
        seen[1],
        (String::new(), "Error: context canceled\n".to_string(), 1)
    );
}

/// `elect -l` (ferretctl) prints each leader as campaigners (etcdctl and
/// ferretctl) come and resign; a campaigner waiting for the leader is
/// elected once it resigns.
fn observed(ep: &str, observer: Tool, first: Tool, second: Tool) {
    let case = format!("{observer:?} observes {first:?} then {second:?}");
    let o = observer.start(ep, &["elect", "-l", "el"]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(o.printed(), "", "{case}: no leader yet");
    let c1 = first.start(ep, &["elect", "el", "p1"]);
    let leader1 = c1.wait_printed(|s| s.lines().count() >= 2);
    assert!(
        leader1.starts_with("el/") && leader1.ends_with("\np1\n"),
        "{case}: {leader1:?}"
    );
    o.wait_printed(|s| s == leader1);
    let mut c2 = second.start(ep, &["elect", "el", "p2"]);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(c2.still_running(), "{case}");
    assert_eq!(c2.printed(), "", "{case}: elected while another leads");
    let (_, err, code) = c1.stop(libc::SIGINT);
    assert_eq!((err.as_str(), code), ("", 0), "{case}");
    let leader2 = c2.wait_printed(|s| s.lines().count() >= 2);
    assert!(
        leader2.ends_with("\np2\n") && leader2 != leader1,
        "{case}: {leader2:?}"
    );
    let both = format!("{leader1}{leader2}");
    o.wait_printed(|s| s == both);
    let (_, err, code) = c2.stop(libc::SIGTERM);
    assert_eq!((err.as_str(), code), ("", 0), "{case}");
    let (out, err, code) = o.stop(libc::SIGINT);
    assert_eq!((out, err.as_str(), code), (both, "", 0), "{case}");
    let (keys, _, _) = Tool::Ferretctl.run(ep, &["get", "--prefix", "el/"]);
    assert_eq!(keys, "", "{case}: keys left");
}

#[test]
fn elect_listen_follows_the_leaders() {
    let test = "v3 elect between parties";
    if !reference_available(test) {
        return;
    }
    both(
        || {
            let ferret = Server::start_ferretcd("v3conc-elect");
            let ep = endpoint(&ferret);
            observed(&ep, Tool::Ferretctl, Tool::Etcdctl, Tool::Ferretctl);
            observed(&ep, Tool::Etcdctl, Tool::Ferretctl, Tool::Etcdctl);
        },
        || {
            let etcd = Server::start_etcd("v3conc-elect");
            let ep = endpoint(&etcd);
            observed(&ep, Tool::Ferretctl, Tool::Ferretctl, Tool::Etcdctl);
        },
    );
}

/// `watch -i`: watches added line by line while keys change, and
/// `progress`, print as etcdctl's do (one watch's events at a time).
#[test]
fn interactive_watches_follow_their_lines() {
    let test = "v3 watch -i, line by line";
    if !reference_available(test) {
        return;
    }
    let ferret = Server::start_ferretcd("v3conc-watch");
    let etcd = Server::start_etcd("v3conc-watch");
    // Both sides at once, each on its own server.
    let side = |server: &Server, tool: Tool| -> (String, String, i32) {
        let ep = endpoint(server);
        let mut c = tool.command(&ep, &["watch", "-i"]);
        c.stdin(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        let mut sin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let r = Running {
            what: format!("{tool:?} watch -i"),
            proc: Proc(Some(child)),
            stdout: Arc::new(Mutex::new(String::new())),
        };
        let sink = Arc::clone(&r.stdout);
        std::thread::spawn(move || {
            let mut pipe = stdout;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        use std::io::Write;
        let mut say = |line: &str| {
            sin.write_all(line.as_bytes()).expect("write stdin");
            sin.flush().expect("flush stdin");
            std::thread::sleep(Duration::from_millis(500));
        };
        let put = |k: &str, v: &str| {
            let (_, _, code) = Tool::Ferretctl.run(&ep, &["put", k, v]);
            assert_eq!(code, 0);
            std::thread::sleep(Duration::from_millis(300));
        };
        say("watch a\n");
        put("a", "1");
        say("watch --prefix b --prev-kv\n");
        put("b1", "2");
        put("a", "3");
        put("b1", "4");
        say("watch c -- sh -c \"echo ran $ETCD_WATCH_KEY\"\n");
        put("c", "5");
        say("bogus\n");
        say("progress\n");
        r.wait_printed(|s| s.matches("progress notify").count() == 3);
        let (out, err, code) = r.stop(libc::SIGINT);
        drop(sin);
        (out, err, code)
    };
    let outputs: Vec<(String, String, i32)> = std::thread::scope(|scope| {
        let side = &side;
        let handles = [(&etcd, Tool::Etcdctl), (&ferret, Tool::Ferretctl)]
            .map(|(server, tool)| scope.spawn(move || side(server, tool)));
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert_eq!(outputs[0], outputs[1]);
    assert!(outputs[1].0.contains("ran \"c\""), "{:?}", outputs[1]);
}

/// A lock held or an election won whose session lease is revoked ends
/// as etcdctl's does: `session expired` (`elect: session expired`), exit 1,
/// once the next keep-alive finds the lease gone (a third of the TTL
/// after the last: 1 s for `lock --ttl 3`, 20 s for `elect`'s 60 s).
#[test]
fn a_revoked_session_ends_the_lock_and_the_campaign() {
    let test = "v3 lock/elect session revoked";
    if !reference_available(test) {
        return;
    }
    let ferret = Server::start_ferretcd("v3conc-expire");
    let etcd = Server::start_etcd("v3conc-expire");
    // The four cases (two servers, a lock and a campaign on keys of their
    // own) at once: `elect` alone waits 20 s for its next keep-alive.
    let cases: Vec<(&Server, Tool, &[&str])> = [(&etcd, Tool::Etcdctl), (&ferret, Tool::Ferretctl)]
        .into_iter()
        .flat_map(|(server, tool)| {
            [&["lock", "--ttl", "3", "rv"][..], &["elect", "ev", "p"][..]]
                .map(|args| (server, tool, args))
        })
        .collect();
    let seen: Vec<(&str, String, i32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(server, tool, args)| {
                scope.spawn(move || {
                    let ep = endpoint(server);
                    let r = tool.start(&ep, args);
                    let held = r.wait_printed(|s| s.lines().count() >= 2);
                    let first = held.lines().next().unwrap_or_default();
                    let id = first.rsplit('/').next().unwrap_or_default();
                    let (_, _, code) = tool.run(&ep, &["lease", "revoke", id]);
                    assert_eq!(code, 0, "{tool:?}: revoke {id}");
                    let (_, err, code) = r.finish_within(Duration::from_secs(30));
                    (args[0], err, code)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert_eq!(seen[..2], seen[2..]);
    assert_eq!(seen[2].1, "Error: session expired\n");
}
