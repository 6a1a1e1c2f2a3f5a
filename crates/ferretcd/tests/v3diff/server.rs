//! Starting and stopping the servers the v3 tests talk to: a reference
//! etcd 3.4 and a candidate (ferretcd, or a second etcd), each a
//! single-member cluster with etcd's flags on free loopback ports.
//!
//! Deliberately thin and free of any comparison logic: it is meant to move
//! into the shared test-kit crate. A [`Server`] owns its child process and
//! its temporary directory; dropping it (also while a panic unwinds) kills
//! and reaps the process and removes the directory.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reserves `n` distinct free loopback ports: all are bound to port 0 at
/// once (so the kernel hands out distinct ones), then released for the
/// server to bind.
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

/// Which binary a test runs as the candidate.
#[derive(Clone, Debug)]
pub enum Target {
    /// The workspace's ferretcd (the default).
    Ferretcd(PathBuf),
    /// `FERRET_DIFF_TARGET=etcd`: a second reference etcd; every comparison
    /// must then be identical, which validates the harness.
    Etcd(PathBuf),
    /// `FERRET_DIFF_CANDIDATE=http://127.0.0.1:PORT`: a server somebody
    /// already started (for debugging); never started nor stopped here.
    Running(SocketAddr),
}

impl Target {
    /// From `FERRET_DIFF_CANDIDATE` / `FERRET_DIFF_TARGET`; `ferretcd` is
    /// the binary cargo built for this test.
    pub fn from_env(etcd: &Path, ferretcd: &Path) -> Target {
        if let Ok(url) = std::env::var("FERRET_DIFF_CANDIDATE") {
            let hostport = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            let addr = hostport.parse().unwrap_or_else(|e| {
                panic!("FERRET_DIFF_CANDIDATE={url:?}: not http://IP:PORT: {e}")
            });
            return Target::Running(addr);
        }
        match std::env::var("FERRET_DIFF_TARGET").as_deref() {
            Ok("etcd") => Target::Etcd(etcd.to_path_buf()),
            Ok("ferretcd") | Err(_) => Target::Ferretcd(ferretcd.to_path_buf()),
            Ok(other) => panic!("FERRET_DIFF_TARGET must be `etcd` or `ferretcd`, not {other:?}"),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Target::Ferretcd(_) => "ferretcd".into(),
            Target::Etcd(_) => "etcd#2".into(),
            Target::Running(a) => format!("candidate@{a}"),
        }
    }

    pub fn is_ferretcd(&self) -> bool {
        matches!(self, Target::Ferretcd(_))
    }

    /// Starts the candidate (a no-op handle for [`Target::Running`]).
    pub fn start(&self, extra_args: &[String]) -> Result<Server, String> {
        match self {
            Target::Ferretcd(bin) | Target::Etcd(bin) => {
                Server::start(&self.label(), bin, extra_args)
            }
            Target::Running(addr) => Ok(Server::attached(&self.label(), *addr)),
        }
    }
}

/// A running server process (or an attached, externally run one).
pub struct Server {
    /// Human label for messages ("etcd", "ferretcd", "etcd#2").
    pub label: String,
    pub client: SocketAddr,
    pub peer: Option<SocketAddr>,
    child: Option<Child>,
    log: Option<PathBuf>,
    // Declared last: removed after the process is gone.
    _dir: Option<TempDir>,
}

impl Server {
    /// Starts `binary` as a fresh single-member cluster named `default`
    /// (etcd's flags), plus `extra_args`, and waits until its client port
    /// accepts connections. Whether it *serves* is for the caller to probe.
    pub fn start(label: &str, binary: &Path, extra_args: &[String]) -> Result<Server, String> {
        let dir = TempDir::new(&format!("ferret-v3-{}", label.replace('#', "")));
        let ports = free_ports(2);
        let client: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
        let peer: SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
        let curl = format!("http://{client}");
        let purl = format!("http://{peer}");
        let log = dir.0.join("server.log");
        let logf = fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let child = Command::new(binary)
            .args(["--name", "default"])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(["--listen-client-urls", &curl])
            .args(["--advertise-client-urls", &curl])
            .args(["--listen-peer-urls", &purl])
            .args(["--initial-advertise-peer-urls", &purl])
            .args(["--initial-cluster", &format!("default={purl}")])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut s = Server {
            label: label.to_string(),
            client,
            peer: Some(peer),
            child: Some(child),
            log: Some(log),
            _dir: Some(dir),
        };
        s.wait_listening(Duration::from_secs(30))?;
        Ok(s)
    }

    /// A handle on a server this test did not start.
    pub fn attached(label: &str, client: SocketAddr) -> Server {
        Server {
            label: label.to_string(),
            client,
            peer: None,
            child: None,
            log: None,
            _dir: None,
        }
    }

    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// The last lines of the server's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(log) = &self.log else {
            return "(not started by this test)".into();
        };
        let text = fs::read_to_string(log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Why the process is gone, if it is.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(st)) => Some(format!("exited with {st}")),
            _ => None,
        }
    }

    /// Bounded wait until the client port accepts a TCP connection.
    fn wait_listening(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.exited() {
                return Err(format!(
                    "{} exited before listening: {e}\n--- its output ---\n{}",
                    self.label,
                    self.log_tail(30)
                ));
            }
            if TcpStream::connect_timeout(&self.client, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "{} not listening on {} after {limit:?}\n--- its output ---\n{}",
                    self.label,
                    self.client,
                    self.log_tail(30)
                ));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Kills and reaps the process (idempotent; nothing for attached servers).
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

/// Where the reference etcd lives: $ETCD_BIN, else `etcd` on PATH, else
/// /usr/bin/etcd.
pub fn find_etcd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    find_on_path("etcd").or_else(|| {
        let p = PathBuf::from("/usr/bin/etcd");
        p.is_file().then_some(p)
    })
}

/// `name` in a directory of $PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

/// The reference etcd, or `None` after announcing a skip; panics when `CI`
/// is set, where a missing reference must not pass silently.
pub fn require_etcd(test: &str) -> Option<PathBuf> {
    if let Some(p) = find_etcd() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: the reference `etcd` binary was not found (set ETCD_BIN, put etcd on PATH \
             or install Debian's etcd-server); it is required when CI is set"
        );
    }
    skip_notice(
        test,
        "reference `etcd` binary not found; install it (apt-get install etcd-server) or set ETCD_BIN",
    );
    None
}

/// A skip that shows in a passing run: written past libtest's capture.
pub fn skip_notice(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n=====================================================================\n  \
         SKIPPED {test}: {why}\n\
         =====================================================================\n"
    );
}
