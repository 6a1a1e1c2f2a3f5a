//! Support for ferretctl's integration tests: finding the binaries,
//! starting and stopping servers (etcd, ferretcd) with Drop guards,
//! running a command line tool, and normalising outputs for comparison.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const ETCD: &str = "/usr/bin/etcd";
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// The ferretctl binary cargo built for this test run.
pub fn ferretctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferretctl"))
}

/// ferretcd from the same target directory and profile as ferretctl;
/// built with cargo if it is not there (as after `cargo test -p ferretctl`).
pub fn ferretcd() -> PathBuf {
    let ctl = ferretctl();
    let dir = ctl.parent().expect("ferretctl has a directory");
    let path = dir.join("ferretcd");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "ferretcd"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build -p ferretcd");
        assert!(st.success(), "cargo build -p ferretcd failed");
    }
    assert!(path.exists(), "no ferretcd at {}", path.display());
    path
}

/// Whether the reference etcd and etcdctl are installed. Without them a
/// test fails under CI (which installs them) and is skipped loudly
/// elsewhere.
pub fn reference_available(test: &str) -> bool {
    let ok = Path::new(ETCD).exists() && Path::new(ETCDCTL).exists();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {ETCD} or {ETCDCTL} is missing, and CI is set: install etcd-server and etcd-client");
        }
        eprintln!("\n========================================================================");
        eprintln!("SKIPPED {test}: {ETCD} or {ETCDCTL} is not installed");
        eprintln!("(apt-get install etcd-server etcd-client to run it)");
        eprintln!("========================================================================\n");
    }
    ok
}

/// Free loopback ports in 29000-29999 (the range these tests may use),
/// probed by binding. Each test process starts at its own offset, chosen
/// once; within the process offsets only move forward, so two tests running
/// at once never get the same port (a probed port is free again until its
/// server binds it). Choosing the offset per call let two calls overlap.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SEED: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        (std::process::id() as usize * 7919
            + SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as usize)
            % 1000
    });
    let mut out = Vec::new();
    let mut held = Vec::new();
    for _ in 0..2000 {
        if out.len() == n {
            break;
        }
        let off = (seed + NEXT.fetch_add(1, Ordering::SeqCst)) % 1000;
        let port = 29000 + off as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            out.push(port);
            held.push(l);
        }
    }
    assert_eq!(out.len(), n, "no free ports in 29000-29999");
    out
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process killed and reaped on drop (also when a test panics).
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGINT and waits (bounded) for the process to end; returns
    /// its output. Used for watches, which etcdctl ends with exit 0 on ^C.
    pub fn interrupt(&mut self) -> Output {
        let mut c = self.0.take().expect("process still running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait_with_output().expect("collect output")
    }

    pub fn wait_output(&mut self, limit: Duration) -> Option<Output> {
        let c = self.0.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return self.0.take().map(|c| c.wait_with_output().unwrap());
            }
            sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A single-member etcd or ferretcd on loopback ports, stopped on drop.
pub struct Server {
    pub label: String,
    pub client_url: String,
    pub peer_url: String,
    pub name: String,
    proc: Proc,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    pub fn start_etcd(name: &str) -> Server {
        Server::start("etcd", Path::new(ETCD), name)
    }

    pub fn start_ferretcd(name: &str) -> Server {
        Server::start("ferretcd", &ferretcd(), name)
    }

    pub fn start(label: &str, bin: &Path, name: &str) -> Server {
        let ports = free_ports(2);
        let curl = format!("http://127.0.0.1:{}", ports[0]);
        let purl = format!("http://127.0.0.1:{}", ports[1]);
        let cluster = format!("{name}={purl}");
        let mut s = Server::spawn(label, bin, name, &curl, &purl, &cluster, "new");
        s.wait_ready();
        s
    }

    /// Starts one member of a cluster (does not wait for it to serve).
    pub fn spawn(
        label: &str,
        bin: &Path,
        name: &str,
        curl: &str,
        purl: &str,
        cluster: &str,
        state: &str,
    ) -> Server {
        let dir = TempDir::new(&format!("ferretctl-{label}-{name}"));
        let log = dir.0.join("server.log");
        let logf = fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("--enable-v2")
            .args(["--name", name])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args([
                "--listen-client-urls",
                curl,
                "--advertise-client-urls",
                curl,
            ])
            .args([
                "--listen-peer-urls",
                purl,
                "--initial-advertise-peer-urls",
                purl,
            ])
            .args([
                "--initial-cluster",
                cluster,
                "--initial-cluster-state",
                state,
            ])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Server {
            label: label.to_string(),
            client_url: curl.to_string(),
            peer_url: purl.to_string(),
            name: name.to_string(),
            proc: Proc(Some(child)),
            log,
            _dir: dir,
        }
    }

    pub fn log_tail(&self) -> String {
        let t = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits (bounded) until /health says true and a v2 read answers.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let healthy = http_get(&self.client_url, "/health")
                .is_some_and(|(code, body)| code == 200 && body.contains("true"));
            if healthy
                && http_get(&self.client_url, "/v2/keys/?quorum=true")
                    .is_some_and(|(c, _)| c == 200)
            {
                // Let start-up writes (member attributes, cluster version) settle.
                sleep(Duration::from_millis(300));
                return;
            }
            if let Some(c) = self.proc.0.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("{} exited with {st}:\n{}", self.label, self.log_tail());
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} at {} not ready in 30 s:\n{}",
                self.label,
                self.client_url,
                self.log_tail()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// The number of watchers the server reports (/v2/stats/store).
    pub fn watchers(&self) -> u64 {
        http_get(&self.client_url, "/v2/stats/store")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("watchers").and_then(|w| w.as_u64()))
            .unwrap_or(0)
    }

    /// Waits (bounded) until the server holds a new watcher: more than
    /// `before`, or than the fewest seen meanwhile (a watcher of an earlier,
    /// interrupted watch may be dropped by the server at the same time).
    pub fn wait_watchers_above(&self, before: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut fewest = before;
        loop {
            let now = self.watchers();
            if now > fewest || Instant::now() > deadline {
                return;
            }
            fewest = fewest.min(now);
            sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(&mut self) {
        self.proc.kill();
    }
}

/// A bare GET (the tests' own probe, independent of ferretctl).
pub fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    http_get_full(base, path).map(|(c, _, b)| (c, b))
}

/// The store's current index (X-Etcd-Index of a read of the root).
pub fn current_index(base: &str) -> u64 {
    let (_, head, _) = http_get_full(base, "/v2/keys/").expect("read the root");
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("x-etcd-index")
                .then(|| v.trim().parse().ok())?
        })
        .expect("X-Etcd-Index header")
}

/// The member id of a single-member server.
pub fn member_id(base: &str) -> String {
    let (_, body) = http_get(base, "/v2/members").expect("list members");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["members"][0]["id"].as_str().unwrap().to_string()
}

/// GET returning (status, head, body).
pub fn http_get_full(base: &str, path: &str) -> Option<(u16, String, String)> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, head.to_string(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// How to run one of the two tools.
#[derive(Clone, Debug)]
pub struct Tool {
    pub bin: PathBuf,
    pub label: &'static str,
}

impl Tool {
    pub fn etcdctl() -> Tool {
        Tool {
            bin: PathBuf::from(ETCDCTL),
            label: "etcdctl",
        }
    }

    pub fn ferretctl() -> Tool {
        Tool {
            bin: ferretctl(),
            label: "ferretctl",
        }
    }

    pub fn command(&self, endpoint: &str, args: &[String]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("ETCDCTL_API", "2")
            .env("ETCDCTL_ENDPOINTS", endpoint)
            .env_remove("ETCDCTL_USERNAME")
            .env_remove("ETCDCTL_ENDPOINT")
            .env_remove("ETCDCTL_PEERS");
        c
    }

    /// Runs the tool to completion (bounded by 30 s) with `stdin`.
    pub fn run(&self, endpoint: &str, args: &[String], stdin: Option<&str>) -> Run {
        let mut c = self.command(endpoint, args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        {
            let mut sin = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                let _ = sin.write_all(s.as_bytes());
            }
        }
        let mut p = Proc(Some(child));
        let out = p
            .wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {:?} did not finish in 30 s", self.label, args));
        Run::from(out)
    }

    /// Starts the tool in the background (watches).
    pub fn spawn(&self, endpoint: &str, args: &[String]) -> Proc {
        let mut c = self.command(endpoint, args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Proc(Some(c.spawn().unwrap()))
    }
}

/// What one run printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }
}

pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// What differs between two servers and two tools for the same run, to
/// be taken out before comparing: index base, URLs, member ids, times,
/// TTL countdowns, the tool's name and version.
pub struct Normaliser {
    /// Indexes from this one on are printed relative to it.
    pub base: u64,
    /// (text, placeholder) pairs replaced first.
    pub literal: Vec<(String, String)>,
}

impl Normaliser {
    pub fn apply(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (from, to) in &self.literal {
            t = t.replace(from, to);
        }
        t = t.replace("etcdctl", "ferretctl");
        let lines: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with("stty: "))
            .map(|l| self.line(l))
            .collect();
        let mut out = lines.join("\n");
        if t.ends_with('\n') && !lines.is_empty() {
            out.push('\n');
        }
        out
    }

    fn rel(&self, n: u64) -> String {
        if n >= self.base {
            format!("i{}", n - self.base)
        } else {
            n.to_string()
        }
    }

    fn line(&self, l: &str) -> String {
        let mut l = l.to_string();
        for prefix in [
            "Created-Index: ",
            "Modified-Index: ",
            "Index: ",
            "ETCD_WATCH_MODIFIED_INDEX=",
        ] {
            if let Some(rest) = l.strip_prefix(prefix) {
                if let Ok(n) = rest.trim().parse::<u64>() {
                    l = format!("{prefix}{}", self.rel(n));
                }
            }
        }
        if let Some(rest) = l.strip_prefix("TTL: ") {
            if rest != "0" {
                l = "TTL: <ttl>".into();
            }
        }
        l = replace_numbers_after(&l, "\"createdIndex\":", |n| self.rel(n));
        l = replace_numbers_after(&l, "\"modifiedIndex\":", |n| self.rel(n));
        l = replace_numbers_after(&l, "\"ttl\":", |_| "<ttl>".into());
        // "Compare failed ([1 != 46])" compares indexes; "([a != b])" values.
        if let Some(i) = l.find("([") {
            let left: String = l[i + 2..].chars().take_while(|c| *c != ' ').collect();
            if left.parse::<u64>().is_ok() {
                l = replace_numbers_after(&l, " != ", |n| self.rel(n));
            }
        }
        // In-order keys are the creating index, zero-padded to 20 digits.
        let mut key = String::new();
        let mut digits = String::new();
        for c in l.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if digits.len() == 20 {
                key.push_str(&format!("<{}>", self.rel(digits.parse().unwrap_or(0))));
            } else {
                key.push_str(&digits);
            }
            digits.clear();
            if c != '\0' {
                key.push(c);
            }
        }
        l = key;
        // An error's trailing "[index]".
        if l.ends_with(']') {
            if let Some(open) = l.rfind(" [") {
                if let Ok(n) = l[open + 2..l.len() - 1].parse::<u64>() {
                    l = format!("{} [{}]", &l[..open], self.rel(n));
                }
            }
        }
        // Expiration times.
        while let Some(i) = l.find("\"expiration\":\"") {
            let start = i + 14;
            let end = l[start..].find('"').map(|e| start + e).unwrap_or(l.len());
            l = format!(
                "{}\"expiration\":<time>{}",
                &l[..i],
                &l[(end + 1).min(l.len())..]
            );
        }
        // Member ids: 16 hex digits (etcd prints them without leading zeros).
        let mut out = String::new();
        let mut word = String::new();
        for c in l.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_hexdigit() {
                word.push(c);
                continue;
            }
            if (12..=16).contains(&word.len()) && word.chars().any(|c| c.is_ascii_alphabetic()) {
                out.push_str("<id>");
            } else {
                out.push_str(&word);
            }
            word.clear();
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }
}

fn replace_numbers_after(l: &str, marker: &str, f: impl Fn(u64) -> String) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(n) = digits.parse::<u64>() {
            out.push_str(&f(n));
            rest = &rest[digits.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// A unified-ish diff of two texts for failure messages.
pub fn show_diff(a_label: &str, a: &str, b_label: &str, b: &str) -> String {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    let mut s = String::new();
    for i in 0..al.len().max(bl.len()) {
        let x = al.get(i).copied();
        let y = bl.get(i).copied();
        if x == y {
            s.push_str(&format!("    {}\n", x.unwrap_or("")));
        } else {
            if let Some(x) = x {
                s.push_str(&format!("  - {a_label}: {x}\n"));
            }
            if let Some(y) = y {
                s.push_str(&format!("  + {b_label}: {y}\n"));
            }
        }
    }
    s
}
