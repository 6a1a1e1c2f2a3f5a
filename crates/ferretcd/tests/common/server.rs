//! Starting and stopping etcd-compatible servers for tests.
//!
//! A [`Server`] owns its child process and its temporary directory; dropping
//! it (also during a panic unwind) kills the process, reaps it and removes
//! the directory.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http;
use super::json;

/// Reserves `n` distinct free loopback ports (all held open at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create temp dir {}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Facts learnt about a running server after start-up, used to normalise
/// its responses.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// X-Etcd-Index once the server settled: indexes are compared relative to it.
    pub base: u64,
    /// X-Etcd-Cluster-Id of /v2/keys responses, if any.
    pub cluster_id: Option<String>,
    /// This member's id (from /v2/stats/self or /v2/members), if served.
    pub member_id: Option<String>,
    /// Index corrections for comparing with another server whose index ran
    /// apart from this one's (see [`Shift`]).
    pub shifts: Vec<Shift>,
}

/// From some point on, this server's indexes are `delta` higher than the
/// other server's for the same events.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shift {
    /// Node indexes (modifiedIndex, ...) above this are shifted.
    pub node_above: u64,
    /// Current-index values (X-Etcd-Index, an error's index) from this on are shifted.
    pub current_from: u64,
    pub delta: i64,
}

impl Identity {
    /// `v` relative to the base, corrections applied; `current` tells an
    /// index that names the store's current state from one naming a node.
    pub fn relative(&self, v: u64, current: bool) -> i64 {
        let shift: i64 = self
            .shifts
            .iter()
            .filter(|s| {
                if current {
                    v >= s.current_from
                } else {
                    v > s.node_above
                }
            })
            .map(|s| s.delta)
            .sum();
        v as i64 - self.base as i64 - shift
    }
}

pub struct Server {
    /// Human label for messages ("etcd", "ferretcd", "etcd#2").
    pub label: String,
    pub name: String,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub id: Identity,
    child: Option<Child>,
    log: PathBuf,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Server {
    /// Starts `binary` with etcd's single-member flags on fresh loopback
    /// ports and a fresh data dir, and waits until it serves requests.
    pub fn start(label: &str, binary: &Path, name: &str) -> Result<Server, String> {
        let dir = TempDir::new(&format!("ferret-diff-{}", label.replace('#', "")));
        let ports = free_ports(2);
        let client: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
        let peer: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
        let curl = format!("http://{client}");
        let purl = format!("http://{peer}");
        let data = dir.0.join("data");
        let log = dir.0.join("server.log");
        let logf = fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let child = Command::new(binary)
            .arg("--enable-v2")
            .args(["--name", name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &curl])
            .args(["--advertise-client-urls", &curl])
            .args(["--listen-peer-urls", &purl])
            .args(["--initial-advertise-peer-urls", &purl])
            .args(["--initial-cluster", &format!("{name}={purl}")])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut s = Server {
            label: label.to_string(),
            name: name.to_string(),
            client,
            peer,
            id: Identity::default(),
            child: Some(child),
            log,
            dir,
        };
        s.wait_ready(Duration::from_secs(30))?;
        Ok(s)
    }

    /// The process id, while the process runs (for resource measurements).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer)
    }

    /// The last lines of the server's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(st)) => Some(format!("exited with {st}")),
            _ => None,
        }
    }

    fn fail(&mut self, what: String) -> String {
        format!(
            "{} ({}): {what}\n--- last lines of its output ---\n{}",
            self.label,
            self.client_url(),
            self.log_tail(30)
        )
    }

    /// Bounded wait: /health answers {"health":"true"}, then the store index
    /// stops moving (etcd publishes its member attributes and cluster version
    /// through the store right after electing itself).
    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let t = Duration::from_millis(1000);
        let start = Instant::now();
        loop {
            if let Some(e) = self.exited() {
                return Err(self.fail(format!("exited before becoming ready: {e}")));
            }
            let last = match http::get(self.client, "/health", t) {
                Ok(r) if r.status == 200 && String::from_utf8_lossy(&r.body).contains("true") => {
                    break
                }
                Ok(r) => format!(
                    "GET /health -> {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
                Err(e) => e,
            };
            if start.elapsed() > limit {
                return Err(self.fail(format!("not healthy after {limit:?} (last: {last})")));
            }
            sleep(Duration::from_millis(50));
        }
        // Settle: cluster version decided (bounded) and the index stable.
        let settle_start = Instant::now();
        let mut prev: Option<u64> = None;
        let mut stable = 0;
        loop {
            if let Some(e) = self.exited() {
                return Err(self.fail(format!("exited while settling: {e}")));
            }
            let r = http::get(self.client, "/v2/keys/", t)
                .map_err(|e| self.fail(format!("GET /v2/keys/: {e}")))?;
            let idx: Option<u64> = r.header("X-Etcd-Index").and_then(|v| v.parse().ok());
            let Some(idx) = idx else {
                return Err(self.fail(format!(
                    "GET /v2/keys/ has no numeric X-Etcd-Index (status {}, headers {:?})",
                    r.status, r.headers
                )));
            };
            self.id.cluster_id = r.header("X-Etcd-Cluster-Id").map(str::to_string);
            let decided = http::get(self.client, "/version", t)
                .map(|v| !String::from_utf8_lossy(&v.body).contains("not_decided"))
                .unwrap_or(true);
            if prev == Some(idx) && (decided || settle_start.elapsed() > Duration::from_secs(5)) {
                stable += 1;
            } else {
                stable = 0;
            }
            prev = Some(idx);
            if stable >= 3 {
                self.id.base = idx;
                break;
            }
            if start.elapsed() > limit {
                return Err(self.fail(format!("store index did not settle after {limit:?}")));
            }
            sleep(Duration::from_millis(100));
        }
        self.id.member_id = self.find_member_id(t);
        Ok(())
    }

    fn find_member_id(&self, t: Duration) -> Option<String> {
        if let Ok(r) = http::get(self.client, "/v2/stats/self", t) {
            if let Some(d) = json::parse(&String::from_utf8_lossy(&r.body)) {
                if let Some(id) = d.value.get("id").and_then(|v| v.as_str()) {
                    if !id.is_empty() {
                        return Some(id.to_string());
                    }
                }
            }
        }
        let r = http::get(self.client, "/v2/members", t).ok()?;
        let d = json::parse(&String::from_utf8_lossy(&r.body))?;
        match d.value.get("members")? {
            json::Json::Arr(a) => a.first()?.get("id")?.as_str().map(str::to_string),
            _ => None,
        }
    }

    /// Advances the store index by `n` writes to a hidden key (hidden keys
    /// never show in listings or recursive watches) and moves the base.
    /// Used in etcd-vs-etcd mode so that the two servers' indexes differ,
    /// which exercises the index normalisation.
    pub fn pad_index(&mut self, n: usize) -> Result<(), String> {
        for i in 0..n {
            let req = http::Request {
                method: "PUT".into(),
                target: format!("/v2/keys/_ferret_diff_pad?value={i}").into_bytes(),
                ..Default::default()
            };
            let r = http::send(
                self.client,
                &req,
                http::BodyMode::Full,
                Duration::from_secs(5),
            )?;
            let idx = r.header("X-Etcd-Index").and_then(|v| v.parse().ok());
            match (r.status, idx) {
                (200 | 201, Some(idx)) => self.id.base = idx,
                _ => {
                    return Err(format!(
                        "padding write answered {} {:?}",
                        r.status, r.headers
                    ))
                }
            }
        }
        Ok(())
    }

    /// Kills and reaps the process (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the reference etcd lives: $ETCD_BIN, else `etcd` on PATH, else /usr/bin/etcd.
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
    let p = PathBuf::from("/usr/bin/etcd");
    p.is_file().then_some(p)
}
