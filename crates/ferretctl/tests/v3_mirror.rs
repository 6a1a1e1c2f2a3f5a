//! `make-mirror`, the online route from etcd to ferretcd and back: both
//! tools (Debian's etcdctl 3.4 and ferretctl) mirror each server to the
//! other at once, each under a prefix of its own; keys written before
//! and while mirroring (puts, a delete, an overwrite) arrive; after 30 s
//! each prints the count of keys mirrored; SIGINT stops them. The
//! argument errors are compared with etcdctl's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{reference_available, Proc, Run, Server};

fn command(bin: &Path, endpoint: &str, args: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(args.split_whitespace())
        .env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", endpoint)
        .env_remove("ETCDCTL_COMMAND_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(bin: &Path, endpoint: &str, args: &str) -> Run {
    let mut p = Proc(Some(command(bin, endpoint, args).spawn().expect("spawn")));
    Run::from(
        p.wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{args}: did not finish in 30 s")),
    )
}

fn ok(bin: &Path, endpoint: &str, args: &str) {
    let r = run(bin, endpoint, args);
    assert_eq!(r.code, 0, "{args}: {r:?}");
}

/// `get --prefix` of `prefix`: its keys and values, one per line.
fn keys(bin: &Path, endpoint: &str, prefix: &str) -> String {
    let r = run(bin, endpoint, &format!("get --prefix {prefix}"));
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

fn signal_of(o: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal()
}

#[test]
fn make_mirror_between_etcd_and_ferretcd_both_ways() {
    if !reference_available("make-mirror") {
        return;
    }
    let etcd = Server::start_etcd("v3mirror");
    let ferret = Server::start_ferretcd("v3mirror");
    let e = etcd.client_url.trim_start_matches("http://").to_string();
    let f = ferret.client_url.trim_start_matches("http://").to_string();
    let etcdctl = PathBuf::from(common::ETCDCTL);
    let ferretctl = common::ferretctl();

    // The argument errors, as etcdctl's.
    for args in [
        "make-mirror",
        "make-mirror a b",
        "make-mirror -w xml DEST",
        "make-mirror --dest-prefix x --no-dest-prefix DEST",
    ] {
        let a = args.replace("DEST", &f);
        let want = run(&etcdctl, &e, &a);
        let got = run(&ferretctl, &e, &a);
        assert_eq!(got, want, "{args}");
    }

    // Before mirroring.
    for (bin, ep, p) in [(&etcdctl, &e, "src/e/"), (&ferretctl, &f, "src/f/")] {
        ok(bin, ep, &format!("put {p}k1 v1"));
        ok(bin, ep, &format!("put {p}k2 v2"));
    }
    let started = Instant::now();
    // (tool, source, destination, flags, where to look, what to expect)
    let mirrors = [
        (&ferretctl, &e, &f, "--prefix src/e/ --dest-prefix A/", "A/"),
        (&etcdctl, &e, &f, "--prefix src/e/ --dest-prefix B/", "B/"),
        (&ferretctl, &f, &e, "--prefix src/f/ --dest-prefix C/", "C/"),
        (&etcdctl, &f, &e, "--prefix src/f/ --dest-prefix D/", "D/"),
        (&ferretctl, &e, &f, "--prefix src/e/ --no-dest-prefix", "k"),
        (
            &ferretctl,
            &f,
            &e,
            "--prefix src/ --dest-prefix all/",
            "all/f/",
        ),
    ];
    let mut procs: Vec<Proc> = mirrors
        .iter()
        .map(|(bin, src, dst, flags, _)| {
            Proc(Some(
                command(bin, src, &format!("make-mirror {flags} {dst}"))
                    .spawn()
                    .expect("spawn"),
            ))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // While mirroring: a new key, a delete, an overwrite, in a txn too.
    for (bin, ep, p) in [(&etcdctl, &e, "src/e/"), (&ferretctl, &f, "src/f/")] {
        ok(bin, ep, &format!("put {p}k3 v3"));
        ok(bin, ep, &format!("del {p}k1"));
        ok(bin, ep, &format!("put {p}k2 v2b"));
    }
    // The count is printed after 30 s.
    let until = started + Duration::from_millis(31_500);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let outs: Vec<Output> = procs.iter_mut().map(|p| p.interrupt()).collect();
    for ((bin, src, dst, flags, look), o) in mirrors.iter().zip(&outs) {
        let what = format!("{} make-mirror {flags} ({src} to {dst})", bin.display());
        assert_eq!(signal_of(o), Some(libc::SIGINT), "{what}: {o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{what}");
        // 2 keys copied, then 3 events.
        assert_eq!(String::from_utf8_lossy(&o.stdout), "5\n", "{what}");
        let got = keys(&ferretctl, dst, look);
        // `--no-dest-prefix`: the keys lose their prefix.
        let p = if *look == "k" { "" } else { look };
        let want = format!("{p}k2\nv2b\n{p}k3\nv3\n");
        assert_eq!(got, want, "{what}");
    }
    drop((etcd, ferret));
}
