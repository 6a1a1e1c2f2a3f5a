//! Operating ferretcd as etcd is operated: `--wal-dir` (also on an etcd
//! data dir converted in place), `--unsafe-no-fsync`, the one warning
//! naming the flags given that have no effect, and what `--version` and
//! `/version` say.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::bin::find_etcd;
use ferret_testkit::dir::TempDir;
use ferret_testkit::http::{self, BodyMode, Request};
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

const FERRETCD: &str = env!("CARGO_BIN_EXE_ferretcd");

/// A single member's flags, with the data dir and ports given.
fn flags(data: &Path, client: SocketAddr, peer: u16) -> Vec<String> {
    let c = format!("http://{client}");
    let p = format!("http://127.0.0.1:{peer}");
    vec![
        "--enable-v2".into(),
        "--name".into(),
        "n1".into(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
        "--listen-client-urls".into(),
        c.clone(),
        "--advertise-client-urls".into(),
        c,
        "--listen-peer-urls".into(),
        p.clone(),
        "--initial-advertise-peer-urls".into(),
        p.clone(),
        "--initial-cluster".into(),
        format!("n1={p}"),
    ]
}

/// A process started with `args`, its output in `log`, killed on drop.
struct Running {
    proc: Proc,
    client: SocketAddr,
    log: PathBuf,
}

impl Running {
    fn start(binary: &Path, args: &[String], client: SocketAddr, log: PathBuf) -> Running {
        let f = fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .args(args)
            .env_remove("FERRETCD_LOG")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let mut r = Running {
            proc: Proc(Some(child)),
            client,
            log,
        };
        r.wait_healthy();
        r
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http::get(self.client, "/health", Duration::from_millis(500))
                .is_ok_and(|r| r.status == 200 && String::from_utf8_lossy(&r.body).contains("true"))
            {
                return;
            }
            if let Some(st) = self.proc.exited() {
                panic!("exited with {st}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "not healthy:\n{}", self.log());
            sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and a bounded wait for the process to end.
    fn stop(&mut self) {
        self.proc.terminate();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.proc.exited().is_none() {
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.log());
            sleep(Duration::from_millis(20));
        }
    }

    fn put(&self, key: &str, value: &str) {
        let r = http::send(
            self.client,
            &Request {
                method: "PUT".into(),
                target: format!("/v2/keys/{key}").into_bytes(),
                headers: vec![(
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body: Some(format!("value={value}").into_bytes()),
            },
            BodyMode::Full,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(r.status == 200 || r.status == 201, "{r:?}");
    }

    fn get(&self, key: &str) -> String {
        let r = http::get(
            self.client,
            &format!("/v2/keys/{key}?quorum=true"),
            Duration::from_secs(5),
        )
        .unwrap();
        String::from_utf8_lossy(&r.body).into_owned()
    }
}

/// The names of the `*.wal` files under `dir`, at any depth.
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(wal_files(&p));
        } else if p.extension().is_some_and(|x| x == "wal") {
            found.push(p);
        }
    }
    found
}

#[test]
fn the_wal_lives_in_wal_dir_across_restarts() {
    let dir = TempDir::new("ferretcd-waldir");
    let data = dir.0.join("data");
    let wal = dir.0.join("wal");
    let ports = free_ports(2);
    let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let mut args = flags(&data, client, ports[1]);
    args.extend(["--wal-dir".to_string(), wal.to_string_lossy().into_owned()]);
    let mut m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("1.log"));
    m.put("k", "before");
    m.stop();
    let mut m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("2.log"));
    assert!(
        m.get("k").contains("\"value\":\"before\""),
        "{}",
        m.get("k")
    );
    m.put("k", "after");
    m.stop();
    let in_wal_dir = wal_files(&wal);
    assert!(!in_wal_dir.is_empty(), "no WAL segment in --wal-dir");
    assert!(
        in_wal_dir.iter().all(|p| p.parent() == Some(wal.as_path())),
        "{in_wal_dir:?}"
    );
    assert_eq!(
        wal_files(&data),
        Vec::<PathBuf>::new(),
        "a WAL under the data dir"
    );
    let m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("3.log"));
    assert!(m.get("k").contains("\"value\":\"after\""), "{}", m.get("k"));
}

#[test]
fn an_etcd_data_dir_with_wal_dir_converts_in_place() {
    let Some(etcd) = find_etcd() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs etcd");
        eprintln!("SKIPPED: no etcd");
        return;
    };
    let dir = TempDir::new("ferretcd-waldir-etcd");
    let data = dir.0.join("data");
    let wal = dir.0.join("wal");
    let ports = free_ports(2);
    let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let mut args = flags(&data, client, ports[1]);
    args.extend(["--wal-dir".to_string(), wal.to_string_lossy().into_owned()]);
    let mut e = Running::start(&etcd, &args, client, dir.0.join("etcd.log"));
    e.put("k", "from-etcd");
    e.stop();
    let etcd_segments: Vec<(PathBuf, Vec<u8>)> = wal_files(&wal)
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(!etcd_segments.is_empty(), "etcd wrote no WAL in --wal-dir");
    assert!(!data.join("member").join("wal").exists());

    let mut f = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("f1.log"));
    assert!(
        f.get("k").contains("\"value\":\"from-etcd\""),
        "{}\n{}",
        f.get("k"),
        f.log()
    );
    f.put("k", "from-ferretcd");
    f.stop();
    // ferretcd's WAL is beside etcd's, in a directory of its own; etcd's
    // segments are as etcd left them.
    assert!(!wal_files(&wal.join("ferretcd")).is_empty());
    assert!(!data.join("ferretcd").join("member").join("wal").exists());
    for (p, bytes) in &etcd_segments {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    let f = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("f2.log"));
    assert!(f.get("k").contains("\"value\":\"from-ferretcd\""));
}

#[test]
fn unsafe_no_fsync_is_accepted_with_a_warning() {
    let dir = TempDir::new("ferretcd-nofsync");
    let ports = free_ports(2);
    let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let mut args = flags(&dir.0.join("data"), client, ports[1]);
    args.push("--unsafe-no-fsync".into());
    let mut m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("1.log"));
    m.put("k", "v");
    assert!(m.get("k").contains("\"value\":\"v\""));
    let log = m.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" W |") && l.contains("--unsafe-no-fsync"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("without fdatasync"), "{log}");
    m.stop();
    // What was written is read back after a clean stop.
    let m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("2.log"));
    assert!(m.get("k").contains("\"value\":\"v\""));
}

#[test]
fn one_warning_names_the_flags_without_effect() {
    let dir = TempDir::new("ferretcd-noeffect");
    let ports = free_ports(2);
    let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let mut args = flags(&dir.0.join("data"), client, ports[1]);
    args.extend(
        [
            "--max-wals",
            "5",
            "--initial-election-tick-advance=true",
            "--experimental-backend-bbolt-freelist-type",
            "array",
            "--snapshot-count",
            "100",
        ]
        .map(String::from),
    );
    let log_path = dir.0.join("1.log");
    let f = fs::File::create(&log_path).unwrap();
    let child = Command::new(FERRETCD)
        .args(&args)
        .env("ETCD_GRPC_KEEPALIVE_MIN_TIME", "5s")
        .env_remove("FERRETCD_LOG")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let mut m = Running {
        proc: Proc(Some(child)),
        client,
        log: log_path,
    };
    m.wait_healthy();
    let log = m.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("no effect")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let w = warnings[0];
    for named in [
        "--max-wals (",
        "--initial-election-tick-advance (",
        "--experimental-backend-bbolt-freelist-type (",
        "ETCD_GRPC_KEEPALIVE_MIN_TIME (",
    ] {
        assert!(w.contains(named), "{named} not in {w}");
    }
    // A flag that acts is not named.
    assert!(!w.contains("snapshot-count"), "{w}");

    // Without such flags, no such warning.
    drop(m);
    let dir = TempDir::new("ferretcd-noeffect");
    let args = flags(&dir.0.join("data"), client, ports[1]);
    let m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("2.log"));
    assert!(!m.log().contains("no effect"), "{}", m.log());
}

#[test]
fn version_names_ferretcd_and_the_etcd_it_serves() {
    let out = Command::new(FERRETCD).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("ferretcd Version: {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(lines[1], "etcd Version: 3.4.23");

    let dir = TempDir::new("ferretcd-version");
    let ports = free_ports(2);
    let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let args = flags(&dir.0.join("data"), client, ports[1]);
    let m = Running::start(Path::new(FERRETCD), &args, client, dir.0.join("1.log"));
    let r = http::get(m.client, "/version", Duration::from_secs(5)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["etcdserver"], "3.4.23");
    assert_eq!(v["etcdcluster"], "3.4.0");
    assert_eq!(v["ferretcd"], env!("CARGO_PKG_VERSION"));
    // Go's clients decode /version into a struct of etcd's two keys
    // (client's `GetVersion`, etcd's `version.Versions`); encoding/json
    // ignores the extra key.
}
