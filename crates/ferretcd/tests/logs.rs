//! ferretcd's logs against etcd 3.4's: zap's JSON keys and capnslog's
//! lines, the start-up lines tools wait for in each, `--log-level`,
//! `--log-outputs` (files with zap, etcd's refusal with capnslog), and
//! `READY=1` to systemd's notify socket.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::bin::find_etcd;
use ferret_testkit::dir::TempDir;
use ferret_testkit::http;
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;
use regex::Regex;

const FERRETCD: &str = env!("CARGO_BIN_EXE_ferretcd");

/// One member started with etcd's single-member flags plus `extra`, its
/// stdout and stderr in files of its own.
struct Member {
    proc: Proc,
    client: SocketAddr,
    dir: TempDir,
}

impl Member {
    fn start(binary: &Path, extra: &[&str], env: &[(&str, &str)]) -> Member {
        let dir = TempDir::new("ferretcd-logs");
        let ports = free_ports(2);
        let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
        let c = format!("http://{client}");
        let p = format!("http://127.0.0.1:{}", ports[1]);
        let child = Command::new(binary)
            .args(["--name", "n1", "--data-dir"])
            .arg(dir.0.join("data"))
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args(["--initial-cluster", &format!("n1={p}")])
            .args(extra)
            .env_remove("FERRETCD_LOG")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.0.join("stdout")).unwrap())
            .stderr(fs::File::create(dir.0.join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        Member {
            proc: Proc(Some(child)),
            client,
            dir,
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.0.join("stderr")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        fs::read_to_string(self.dir.0.join("stdout")).unwrap_or_default()
    }

    fn healthy(&self) -> bool {
        http::get(self.client, "/health", Duration::from_millis(500))
            .is_ok_and(|r| r.status == 200 && String::from_utf8_lossy(&r.body).contains("true"))
    }

    /// Waits (bounded) until `/health` says true and the output holds
    /// `line` (the last start-up line, logged just after).
    fn wait_for(&mut self, line: &str, output: impl Fn(&Member) -> String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.healthy() && output(self).contains(line) {
                return;
            }
            if let Some(st) = self.proc.exited() {
                panic!("exited with {st}:\n{}{}", self.stderr(), self.stdout());
            }
            assert!(
                Instant::now() < deadline,
                "no {line:?} after 30 s:\n{}",
                output(self)
            );
            sleep(Duration::from_millis(50));
        }
    }
}

/// The JSON objects of zap's lines, checking each line's shape: etcd's
/// four keys first, in order, `ts` in ISO 8601 with milliseconds.
fn zap_lines(text: &str) -> Vec<serde_json::Value> {
    let head = Regex::new(
        r#"^\{"level":"(debug|info|warn|error)","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})","caller":"[^"]+","msg":""#,
    )
    .unwrap();
    text.lines()
        // etcd's gRPC library writes its own warnings beside zap's lines.
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            assert!(head.is_match(l), "not zap's shape: {l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect()
}

fn with_msg<'a>(lines: &'a [serde_json::Value], msg: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["msg"] == msg)
        .unwrap_or_else(|| panic!("no line with msg {msg:?} in {lines:#?}"))
}

fn keys(line: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = line.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// The zap lines tools wait for, with their fields.
const ZAP_START_LINES: &[&str] = &[
    "serving client traffic insecurely; this is strongly discouraged!",
    "published local member to cluster through raft",
    "enabled capabilities for version",
];

#[test]
fn zap_writes_etcds_json_and_start_up_lines() {
    let mut m = Member::start(Path::new(FERRETCD), &["--logger", "zap"], &[]);
    m.wait_for("enabled capabilities for version", Member::stderr);
    let out = m.stderr();
    let lines = zap_lines(&out);
    assert!(lines.len() > 3, "{out}");
    let serving = with_msg(&lines, ZAP_START_LINES[0]);
    assert_eq!(serving["address"], m.client.to_string());
    let published = with_msg(&lines, ZAP_START_LINES[1]);
    let id = published["local-member-id"].as_str().unwrap().to_string();
    assert_eq!(
        published["local-member-attributes"],
        format!("{{Name:n1 ClientURLs:[http://{}]}}", m.client)
    );
    assert_eq!(
        published["request-path"],
        format!("/0/members/{id}/attributes")
    );
    assert!(published["cluster-id"].as_str().is_some());
    assert_eq!(
        with_msg(&lines, ZAP_START_LINES[2])["cluster-version"],
        "3.4"
    );
    // No capnslog text leaks into zap's lines.
    assert!(!out.contains("capnslog"), "{out}");
    assert!(!out.contains("ready to serve client requests"), "{out}");

    let Some(etcd) = find_etcd() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs etcd");
        eprintln!("SKIPPED the comparison with etcd: no etcd");
        return;
    };
    let mut e = Member::start(&etcd, &["--logger", "zap"], &[]);
    e.wait_for("enabled capabilities for version", Member::stderr);
    let theirs = zap_lines(&e.stderr());
    for msg in ZAP_START_LINES {
        assert_eq!(
            keys(with_msg(&lines, msg)),
            keys(with_msg(&theirs, msg)),
            "{msg}"
        );
    }
    assert_eq!(
        published["publish-timeout"],
        with_msg(&theirs, ZAP_START_LINES[1])["publish-timeout"]
    );
}

#[test]
fn capnslog_writes_etcds_start_up_lines() {
    let mut m = Member::start(Path::new(FERRETCD), &[], &[]);
    // Both: the Raft thread and the listeners' task log independently.
    m.wait_for("enabled capabilities for version", Member::stderr);
    m.wait_for("ready to serve client requests", Member::stderr);
    let ours = m.stderr();
    let line = Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [DIWE] \| [^ :]+: ").unwrap();
    for l in ours.lines() {
        assert!(line.is_match(l), "not capnslog's shape: {l}");
    }
    // The lines harnesses wait for, as etcd writes them (its own address,
    // name and cluster id in place of ours).
    let wanted = |client: SocketAddr| {
        [
            r" I \| [^:]+: ready to serve client requests$".to_string(),
            format!(
                r" I \| [^:]+: published \{{Name:n1 ClientURLs:\[http://{client}\]\}} to cluster [0-9a-f]+$"
            ),
            format!(
                r" [IN] \| [^:]+: serving insecure client requests on {client}, this is strongly discouraged!$"
            ),
            r" I \| [^:]+: enabled capabilities for version 3\.4$".to_string(),
        ]
    };
    for re in wanted(m.client) {
        let re = Regex::new(&re).unwrap();
        assert!(ours.lines().any(|l| re.is_match(l)), "no {re} in:\n{ours}");
    }
    let Some(etcd) = find_etcd() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs etcd");
        eprintln!("SKIPPED the comparison with etcd: no etcd");
        return;
    };
    let mut e = Member::start(&etcd, &[], &[]);
    e.wait_for("enabled capabilities for version", Member::stderr);
    e.wait_for("ready to serve client requests", Member::stderr);
    let theirs = e.stderr();
    for re in wanted(e.client) {
        let re = Regex::new(&re).unwrap();
        assert!(
            theirs.lines().any(|l| re.is_match(l)),
            "etcd: no {re} in:\n{theirs}"
        );
    }
}

/// The capnslog letters of the lines a member wrote.
fn letters(text: &str) -> Vec<char> {
    text.lines()
        .filter_map(|l| l.split(" | ").next()?.chars().last())
        .collect()
}

#[test]
fn log_levels_filter_and_debug_shows_raft() {
    let mut m = Member::start(Path::new(FERRETCD), &["--log-level", "debug"], &[]);
    m.wait_for("enabled capabilities for version", Member::stderr);
    let debug = m.stderr();
    assert!(
        debug.lines().any(|l| l.contains(" D | raft: ")),
        "no raft debug line:\n{debug}"
    );
    drop(m);
    let mut m = Member::start(Path::new(FERRETCD), &["--log-level", "warn"], &[]);
    // Nothing at info is written: wait for health, then a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.healthy() {
        assert!(Instant::now() < deadline, "{}", m.stderr());
        assert!(m.proc.exited().is_none(), "{}", m.stderr());
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));
    let warn = m.stderr();
    assert!(
        letters(&warn).iter().all(|&c| c == 'W' || c == 'E'),
        "{warn}"
    );
    // And the same member's zap lines at error: none at start.
    drop(m);
    let m = Member::start(
        Path::new(FERRETCD),
        &["--log-level", "error", "--logger", "zap"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.healthy() {
        assert!(Instant::now() < deadline, "{}", m.stderr());
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));
    assert!(
        zap_lines(&m.stderr()).iter().all(|l| l["level"] == "error"),
        "{}",
        m.stderr()
    );
}

#[test]
fn zap_writes_to_files_and_stdout() {
    let logs = TempDir::new("ferretcd-logfiles");
    let a = logs.0.join("a.log");
    let b = logs.0.join("b.log");
    let outputs = format!("{},{},stdout", a.display(), b.display());
    let mut m = Member::start(
        Path::new(FERRETCD),
        &["--logger", "zap", "--log-outputs", &outputs],
        &[],
    );
    m.wait_for("enabled capabilities for version", Member::stdout);
    // Every output has every line (the files may trail stdout by a line
    // written meanwhile).
    let read = |p: &PathBuf| fs::read_to_string(p).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(read(&a).contains("enabled capabilities") && read(&b).contains("enabled capabilities"))
    {
        assert!(Instant::now() < deadline, "{}", read(&a));
        sleep(Duration::from_millis(20));
    }
    for text in [read(&a), read(&b), m.stdout()] {
        let lines = zap_lines(&text);
        for msg in ZAP_START_LINES {
            with_msg(&lines, msg);
        }
    }
    assert_eq!(m.stderr(), "", "nothing on stderr");
}

/// Runs a start that is refused, returning its exit code and stderr.
fn refused(binary: &Path, args: &[&str]) -> (Option<i32>, String) {
    let dir = TempDir::new("ferretcd-logs-refused");
    let out = Command::new(binary)
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .args(args)
        .env_remove("FERRETCD_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !dir.0.join("data").exists(),
        "{args:?}: the data dir was made"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn log_outputs_are_refused_as_etcd_refuses_them() {
    let cases: &[&[&str]] = &[
        // capnslog takes no file.
        &["--log-outputs", "/tmp/ferretcd-x.log"],
        &["--log-outputs", "stderr,stdout"],
        &[
            "--logger",
            "zap",
            "--log-outputs",
            "default,/tmp/ferretcd-x.log",
        ],
        &[
            "--logger",
            "zap",
            "--log-outputs",
            "/nonexistent-ferretcd-dir/x.log",
        ],
    ];
    let etcd = find_etcd();
    if etcd.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI needs etcd");
        eprintln!("SKIPPED the comparison with etcd: no etcd");
    }
    for args in cases {
        let (code, ours) = refused(Path::new(FERRETCD), args);
        assert_eq!(code, Some(1), "{args:?}: {ours}");
        assert_eq!(ours.lines().count(), 1, "{args:?}: {ours}");
        assert!(ours.contains("error verifying flags, "), "{ours}");
        let Some(etcd) = &etcd else { continue };
        let (code, theirs) = refused(etcd, args);
        assert_eq!(code, Some(1), "etcd {args:?}: {theirs}");
        // etcd's line is its logger's: a time, `E | etcdmain: `, then the
        // message ferretcd prints.
        let message = theirs
            .lines()
            .find_map(|l| l.split_once("etcdmain: ").map(|(_, m)| m))
            .unwrap_or_else(|| panic!("etcd {args:?}: {theirs}"));
        assert_eq!(
            ours.trim_end(),
            message.replace("'etcd --help'", "'ferretcd --help'"),
            "{args:?}"
        );
    }
}

#[test]
fn systemd_hears_ready_once_clients_are_served() {
    let dir = TempDir::new("ferretcd-notify");
    let path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let m = Member::start(
        Path::new(FERRETCD),
        &[],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut buf = [0u8; 256];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification: {e}\n{}", m.stderr()));
    assert_eq!(&buf[..n], b"READY=1\n");
    // Sent once the member serves.
    assert!(m.healthy(), "READY=1 came before the member served");
    assert!(m.stderr().contains("ready to serve client requests"));
}
