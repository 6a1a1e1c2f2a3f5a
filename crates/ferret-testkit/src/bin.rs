//! The binaries under test, and the reference etcd.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A binary of this workspace, from the target directory and profile of
/// the running test (`target/<profile>/<name>`), built with cargo if it is
/// not there yet (as when only another package's tests were asked for).
pub fn workspace_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash>, or target/<profile>/<bin>.
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", name]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "cargo build -p {package} --bin {name} failed");
    }
    assert!(path.exists(), "no {name} at {}", path.display());
    path
}

/// The ferretcd binary of this build.
pub fn ferretcd() -> PathBuf {
    workspace_binary("ferretcd", "ferretcd")
}

/// etcd and the etcdctl beside it; `None` after a notice when they are
/// missing, which fails the test under CI (where .ci/run installs them).
pub fn etcd_tools() -> Option<(PathBuf, PathBuf)> {
    let found = find_etcd().and_then(|etcd| {
        let ctl = etcd.with_file_name("etcdctl");
        ctl.is_file().then_some((etcd, ctl))
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcd and etcdctl are missing, and CI needs them"
        );
        eprintln!("SKIPPED: no etcd and etcdctl (apt-get install etcd-server etcd-client)");
    }
    found
}

/// The reference etcd for a differential test (see [`find_etcd`]), or
/// `None` with a loud line naming `what` is skipped; under CI (`CI` set)
/// a missing etcd fails the test instead.
pub fn reference_etcd(what: &str) -> Option<PathBuf> {
    let found = find_etcd();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no etcd was found (set ETCD_BIN or install etcd)"
        );
        eprintln!("SKIPPED: etcd not found, so {what}");
    }
    found
}

/// Where the reference etcd lives: $ETCD_BIN, else `etcd` on PATH, else
/// /usr/bin/etcd.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join("etcd");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let p = Path::new("/usr/bin/etcd");
    p.is_file().then(|| p.to_path_buf())
}

/// Runs etcdctl (v3; no `ETCDCTL_*` variable from the environment)
/// against `endpoint` with `flags` (timeouts, `--user`) and then `args`:
/// its exit code and output (stdout, then stderr). Killed after 30 s.
pub fn etcdctl(ctl: &Path, endpoint: &str, flags: &[&str], args: &[&str]) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut p = crate::process::Proc(Some(
        Command::new(ctl)
            .env_clear()
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .args(flags)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", ctl.display())),
    ));
    let o = p
        .wait_output(std::time::Duration::from_secs(30))
        .unwrap_or_else(|| panic!("etcdctl {args:?} at {endpoint} hung"));
    let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code(), out)
}
