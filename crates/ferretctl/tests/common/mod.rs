//! Support for ferretctl's integration tests: the two servers (etcd,
//! ferretcd) as these tests start them, running a command line tool, and
//! normalising outputs for comparison. Ports, temporary directories,
//! process guards and the raw HTTP client come from `ferret-testkit`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use ferret_testkit::{dir::TempDir, ports::free_ports, process::Proc};

use ferret_testkit::http;

pub const ETCD: &str = "/usr/bin/etcd";
pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// The ferretctl binary cargo built for this test run.
pub fn ferretctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferretctl"))
}

/// ferretcd from the same target directory and profile as ferretctl;
/// built with cargo if it is not there (as after `cargo test -p ferretctl`).
pub fn ferretcd() -> PathBuf {
    ferret_testkit::bin::ferretcd()
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

/// A single-member etcd or ferretcd on loopback ports, stopped on drop.
pub struct Server {
    pub label: String,
    pub client_url: String,
    pub peer_url: String,
    pub name: String,
    proc: ferret_testkit::server::Server,
}

impl Server {
    pub fn start_etcd(name: &str) -> Server {
        Server::start("etcd", Path::new(ETCD), name)
    }

    pub fn start_ferretcd(name: &str) -> Server {
        Server::start("ferretcd", &ferretcd(), name)
    }

    pub fn start(label: &str, bin: &Path, name: &str) -> Server {
        Server::start_with(label, bin, name, &[])
    }

    /// [`Server::start`] with extra flags.
    pub fn start_with(label: &str, bin: &Path, name: &str, extra: &[&str]) -> Server {
        let proc = ferret_testkit::server::Server::start_with(label, bin, name, extra)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut s = Server {
            label: label.to_string(),
            client_url: proc.client_url(),
            peer_url: proc.peer_url(),
            name: name.to_string(),
            proc,
        };
        s.wait_ready();
        s
    }

    pub fn log_tail(&self) -> String {
        self.proc.log_tail(20)
    }

    /// Waits (bounded) until a quorum read answers, then lets start-up
    /// writes (member attributes, cluster version) settle.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get(&self.client_url, "/v2/keys/?quorum=true").is_some_and(|(c, _)| c == 200) {
                sleep(Duration::from_millis(300));
                return;
            }
            if let Some(e) = self.proc.exited() {
                panic!("{} {e}:\n{}", self.label, self.log_tail());
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
        watchers(&self.client_url)
    }

    /// See [`wait_watchers_above`].
    pub fn wait_watchers_above(&self, before: u64) {
        wait_watchers_above(&self.client_url, before)
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }
}

/// The number of watchers the server at `base` reports (/v2/stats/store).
pub fn watchers(base: &str) -> u64 {
    http_get(base, "/v2/stats/store")
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("watchers").and_then(|w| w.as_u64()))
        .unwrap_or(0)
}

/// Waits (bounded) until the server at `base` holds a new watcher: more
/// than `before`, or than the fewest seen meanwhile (a watcher of an
/// earlier, interrupted watch may be dropped by the server at the same
/// time).
pub fn wait_watchers_above(base: &str, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fewest = before;
    loop {
        let now = watchers(base);
        if now > fewest || Instant::now() > deadline {
            return;
        }
        fewest = fewest.min(now);
        sleep(Duration::from_millis(10));
    }
}

/// A bare GET (the tests' own probe, independent of ferretctl): status
/// and body, or `None` if nothing was answered.
pub fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    let addr = base.trim_start_matches("http://").parse().ok()?;
    let r = http::get(addr, path, Duration::from_secs(3)).ok()?;
    Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}

/// The store's current index (X-Etcd-Index of a read of the root).
pub fn current_index(base: &str) -> u64 {
    let addr = base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let r = http::get(addr, "/v2/keys/", Duration::from_secs(3)).expect("read the root");
    r.header("X-Etcd-Index")
        .and_then(|v| v.parse().ok())
        .expect("X-Etcd-Index header")
}

/// The member id of a single-member server.
pub fn member_id(base: &str) -> String {
    let (_, body) = http_get(base, "/v2/members").expect("list members");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["members"][0]["id"].as_str().unwrap().to_string()
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
