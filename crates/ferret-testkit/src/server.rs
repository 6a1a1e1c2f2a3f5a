//! One etcd-compatible server process (ferretcd or etcd): a member started
//! with etcd's flags, its output in a log file, its data in a temporary
//! directory. Dropping it (also during a panic unwind) kills and reaps the
//! process, then removes the directory.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::dir::TempDir;
use crate::http;
use crate::ports::free_ports;
use crate::process::Proc;

/// How to start one member.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    /// For messages and the temporary directory's name ("etcd", "ferretcd").
    pub label: &'a str,
    pub binary: &'a Path,
    pub name: &'a str,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    /// `--initial-cluster`; `None` for a cluster of this member alone.
    pub initial_cluster: Option<&'a str>,
    /// Extra flags, after etcd's cluster flags.
    pub extra: &'a [&'a str],
}

pub struct Server {
    pub label: String,
    pub name: String,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    proc: Proc,
    log: PathBuf,
    // Declared last: removed after the process is gone.
    dir: TempDir,
}

impl Server {
    /// Starts `binary` as a new single-member cluster on fresh loopback
    /// ports and waits (at most 30 s) until `/health` says true.
    pub fn start(label: &str, binary: &Path, name: &str) -> Result<Server, String> {
        Server::start_with(label, binary, name, &[])
    }

    /// [`Server::start`] with extra flags.
    pub fn start_with(
        label: &str,
        binary: &Path,
        name: &str,
        extra: &[&str],
    ) -> Result<Server, String> {
        let ports = free_ports(2);
        let mut s = Server::spawn(&Spec {
            label,
            binary,
            name,
            client: SocketAddr::from(([127, 0, 0, 1], ports[0])),
            peer: SocketAddr::from(([127, 0, 0, 1], ports[1])),
            initial_cluster: None,
            extra,
        })?;
        s.wait_healthy(Duration::from_secs(30))?;
        Ok(s)
    }

    /// Starts a member (`--initial-cluster-state new`, `--enable-v2`, which
    /// etcd 3.4 needs and ferretcd accepts) and returns at once.
    pub fn spawn(spec: &Spec) -> Result<Server, String> {
        let dir = TempDir::new(&format!(
            "ferret-{}-{}",
            spec.label.replace(['#', '/', ' '], ""),
            spec.name
        ));
        let log = dir.0.join("server.log");
        let logf = fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let curl = format!("http://{}", spec.client);
        let purl = format!("http://{}", spec.peer);
        let alone = format!("{}={purl}", spec.name);
        let child = Command::new(spec.binary)
            .arg("--enable-v2")
            .args(["--name", spec.name])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(["--listen-client-urls", &curl])
            .args(["--advertise-client-urls", &curl])
            .args(["--listen-peer-urls", &purl])
            .args(["--initial-advertise-peer-urls", &purl])
            .args(["--initial-cluster", spec.initial_cluster.unwrap_or(&alone)])
            .args(["--initial-cluster-state", "new"])
            .args(spec.extra)
            .env_remove("FERRETCD_LOG")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", spec.binary.display()))?;
        Ok(Server {
            label: spec.label.to_string(),
            name: spec.name.to_string(),
            client: spec.client,
            peer: spec.peer,
            proc: Proc(Some(child)),
            log,
            dir,
        })
    }

    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer)
    }

    /// The process id, while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server's output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<String> {
        self.proc.exited().map(|st| format!("exited with {st}"))
    }

    /// `what`, with the label, the address and the end of the log.
    pub fn fail(&self, what: &str) -> String {
        format!(
            "{} ({}): {what}\n--- last lines of its output ---\n{}",
            self.label,
            self.client_url(),
            self.log_tail(30)
        )
    }

    /// Bounded wait until `/health` answers 200 with `true`.
    pub fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.exited() {
                return Err(self.fail(&format!("exited before becoming ready: {e}")));
            }
            let last = match http::get(self.client, "/health", Duration::from_millis(1000)) {
                Ok(r) if r.status == 200 && String::from_utf8_lossy(&r.body).contains("true") => {
                    return Ok(())
                }
                Ok(r) => format!(
                    "GET /health -> {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
                Err(e) => e,
            };
            if start.elapsed() > limit {
                return Err(self.fail(&format!("not healthy after {limit:?} (last: {last})")));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Kills and reaps the process (idempotent).
    pub fn stop(&mut self) {
        self.proc.kill();
    }
}
