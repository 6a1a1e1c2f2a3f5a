//! `snapshot save` and `snapshot status`, compared with Debian's etcdctl
//! 3.4: each tool saves a snapshot of its own server (etcd, ferretcd)
//! holding the same keys, and the other's; both tools' `status` of every
//! file must be the same in every format; the errors must agree. zap's
//! log lines are compared once their times, the download's duration and
//! size (the servers' files differ), the endpoint and the directory are
//! normalised.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{reference_available, Proc, Run, Server, TempDir};

/// Runs `bin` with `args` in v3 mode, against `endpoint` unless the
/// arguments name their own.
fn run(bin: &Path, endpoint: &str, args: &[String]) -> Run {
    let mut c = Command::new(bin);
    c.args(args)
        .env("ETCDCTL_API", "3")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("ETCDCTL_COMMAND_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !args.iter().any(|a| a.starts_with("--endpoints")) {
        c.env("ETCDCTL_ENDPOINTS", endpoint);
    }
    let mut p = Proc(Some(c.spawn().expect("spawn")));
    Run::from(
        p.wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {args:?} did not finish in 30 s", bin.display())),
    )
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Replaces the value after `marker` up to the next `,` or `}`.
fn replace_after(l: &str, marker: &str, with: &str) -> String {
    match l.find(marker) {
        Some(i) => {
            let rest = &l[i + marker.len()..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            format!("{}{with}{}", &l[..i + marker.len()], &rest[end..])
        }
        None => l.to_string(),
    }
}

fn normalise(text: &str, endpoint: &str, dir: &str) -> String {
    text.replace(dir, "DIR")
        .replace(endpoint, "ENDPOINT")
        .lines()
        .map(|l| {
            if !l.starts_with("{\"level\":") {
                return l.to_string();
            }
            let l = replace_after(l, "\"ts\":", "TS");
            let l = replace_after(&l, "\"took\":", "TOOK");
            replace_after(&l, "\"size\":", "SIZE")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshot_save_and_status_match_etcdctl() {
    if !reference_available("snapshot save/status") {
        return;
    }
    let dir = TempDir::new("v3snap");
    let d = dir.path().display().to_string();
    let etcd = Server::start_etcd("v3snap");
    let ferret = Server::start_ferretcd("v3snap");
    let host = |s: &Server| s.client_url.trim_start_matches("http://").to_string();
    let sides = [
        (Path::new(common::ETCDCTL).to_path_buf(), host(&etcd), "e"),
        (common::ferretctl(), host(&ferret), "f"),
    ];
    for (bin, ep, _) in &sides {
        for args in ["put a 1", "put b 2", "put a 3", "del b", "put c 4"] {
            assert_eq!(run(bin, ep, &words(args)).code, 0, "{args}");
        }
    }
    let mut diffs = Vec::new();
    // The same command line on both sides; `X` is the side's letter.
    let lines = [
        "snapshot save DIR/X.db",
        "snapshot save",
        "snapshot save a b",
        "snapshot save DIR/nodir/x.db",
        "snapshot save --endpoints ENDPOINT,127.0.0.1:1 DIR/m.db",
        "snapshot save -w xml DIR/w.db",
        "snapshot save --endpoints 127.0.0.1:1 --command-timeout 1s DIR/dead.db",
        "snapshot status",
        "snapshot status a b",
        "snapshot status DIR/missing.db",
        "snapshot status DIR/junk",
        "snapshot status -w xml DIR/X.db",
        "snapshot status -w protobuf DIR/X.db",
    ];
    std::fs::write(dir.path().join("junk"), "not a database\n").expect("junk");
    for line in lines {
        let outs: Vec<(String, String, i32)> = sides
            .iter()
            .map(|(bin, ep, x)| {
                let args: Vec<String> = words(line)
                    .iter()
                    .map(|w| {
                        w.replace("DIR", &d)
                            .replace("X.db", &format!("{x}.db"))
                            .replace("ENDPOINT", ep)
                    })
                    .collect();
                let r = run(bin, ep, &args);
                let n = |t: &str| normalise(&t.replace(&format!("{x}.db"), "X.db"), ep, &d);
                (n(&r.stdout), n(&r.stderr), r.code)
            })
            .collect();
        if outs[0] != outs[1] {
            diffs.push(format!(
                "`{line}`:\n--- etcdctl:\n{:?}\n--- ferretctl:\n{:?}",
                outs[0], outs[1]
            ));
        }
    }
    // Each tool saves the other's server too.
    let cross = [
        (&sides[1].0, &sides[0].1, "fe.db"),
        (&sides[0].0, &sides[1].1, "ef.db"),
    ];
    for (bin, ep, file) in cross {
        let r = run(bin, ep, &words(&format!("snapshot save {d}/{file}")));
        assert_eq!(r.code, 0, "{file}: {r:?}");
        assert_eq!(r.stdout, format!("Snapshot saved at {d}/{file}\n"));
    }
    for file in ["e.db", "f.db", "fe.db", "ef.db"] {
        assert!(!dir.path().join(format!("{file}.part")).exists());
        for w in ["simple", "json", "table", "fields"] {
            let args = words(&format!("snapshot status -w {w} {d}/{file}"));
            let e = run(&sides[0].0, &sides[0].1, &args);
            let f = run(&sides[1].0, &sides[1].1, &args);
            assert_eq!(e.code, 0, "{file} {w}: {e:?}");
            if e != f {
                diffs.push(format!("status -w {w} {file}:\n{e:?}\n{f:?}"));
            }
        }
    }
    // The snapshot restores into a ferretcd data dir.
    let restored = dir.path().join("restored");
    let r = run(
        &sides[1].0,
        &sides[1].1,
        &words(&format!(
            "snapshot restore {d}/e.db --data-dir {}",
            restored.display()
        )),
    );
    assert_eq!(r.code, 0, "restore: {r:?}");
    drop((etcd, ferret));
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
}
