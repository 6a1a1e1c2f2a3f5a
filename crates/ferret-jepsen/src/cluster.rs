//! The cluster under test: N server processes (ferretcd or etcd) on
//! loopback, each with its own data dir and log file, that the nemesis can
//! kill (SIGKILL), pause (SIGSTOP), resume and restart with the same flags.
//! One member may keep its data dir on a small tmpfs (`disk`), for the
//! full-disk fault; the tmpfs is unmounted when the cluster is dropped.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Arc;

use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

use crate::disk::Tmpfs;
pub use crate::flavor::Flavor;
use crate::http;
use crate::proxy::{self, Links};

/// Raft timers for the run: fast, so a 30 s run sees several elections.
pub const HEARTBEAT_MS: u64 = 50;
pub const ELECTION_MS: u64 = 500;

pub struct Member {
    pub name: String,
    pub client: SocketAddr,
    /// Where the member listens for peers.
    pub peer: SocketAddr,
    /// What it advertises: its inbound proxy (see [`crate::proxy`]).
    pub peer_proxy: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    proc: Proc,
    pub paused: bool,
    /// Started with `--initial-cluster-state existing`: the member was
    /// added at runtime (the membership fault), so it joins the running
    /// cluster instead of bootstrapping one.
    pub join: bool,
}

pub struct Cluster {
    pub binary: PathBuf,
    pub members: Vec<Member>,
    pub links: Arc<Links>,
    initial_cluster: String,
    /// The member on a tmpfs, if any. Dropped after `Drop::drop` killed
    /// the processes, so the unmount finds nothing holding the tmpfs.
    pub full_disk: Option<FullDisk>,
}

/// A member whose data dir is on a tmpfs of its own.
pub struct FullDisk {
    pub member: usize,
    /// Where the nemesis writes the file that fills the tmpfs.
    pub filler: PathBuf,
    /// Held for its `Drop`, which unmounts.
    pub _mount: Tmpfs,
}

impl Cluster {
    /// Starts `size` members under `dir` and waits until all serve. With
    /// `tmpfs = Some((i, bytes))`, member `i`'s data dir is on a tmpfs of
    /// that size mounted at `<dir>/m<i>.disk`.
    pub fn start(
        binary: &Path,
        flavor: Flavor,
        size: usize,
        dir: &Path,
        tmpfs: Option<(usize, u64)>,
    ) -> Result<Cluster, String> {
        crate::disk::unmount_stale(dir);
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let ports = free_ports(3 * size);
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client: SocketAddr::from(([127, 0, 0, 1], ports[3 * i])),
                peer: SocketAddr::from(([127, 0, 0, 1], ports[3 * i + 1])),
                peer_proxy: SocketAddr::from(([127, 0, 0, 1], ports[3 * i + 2])),
                data_dir: dir.join(format!("m{i}.data")),
                log: dir.join(format!("m{i}.log")),
                proc: Proc(None),
                paused: false,
                join: false,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer_proxy))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            binary: binary.to_path_buf(),
            members,
            links: Arc::new(Links::default()),
            initial_cluster,
            full_disk: None,
        };
        if let Some((i, bytes)) = tmpfs {
            let mount = Tmpfs::mount(&dir.join(format!("m{i}.disk")), bytes)
                .map_err(|e| format!("tmpfs for m{i}: {e}"))?;
            c.members[i].data_dir = mount.path.join("data");
            c.full_disk = Some(FullDisk {
                member: i,
                filler: mount.path.join("filler"),
                _mount: mount,
            });
        }
        for (i, m) in c.members.iter().enumerate() {
            proxy::start(c.links.clone(), flavor, i, m.peer_proxy, m.peer)
                .map_err(|e| format!("proxy for {}: {e}", m.name))?;
        }
        for i in 0..size {
            c.spawn(i)?;
        }
        for i in 0..size {
            c.wait_healthy(i, Duration::from_secs(30))?;
        }
        c.learn_ids(Duration::from_secs(10))?;
        Ok(c)
    }

    /// Tells the proxies which member id is which member (`/v2/members`).
    ///
    /// A member serves clients once its attributes (name, client URLs) are
    /// committed, but member 0 may not have applied that entry yet when the
    /// other member first answers `/health`: until it has, it lists that
    /// member without a name, as etcd does. So this asks again, for up to
    /// `limit`, until every member is named.
    fn learn_ids(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match self.member_ids() {
                Ok(ids) => {
                    self.links.set_ids(ids);
                    return Ok(());
                }
                Err(e) if start.elapsed() > limit => return Err(e),
                Err(_) => sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Member id -> member index, from member 0's `/v2/members`; an error
    /// unless it names every member.
    fn member_ids(&self) -> Result<HashMap<u64, usize>, String> {
        let r = http::request(
            self.members[0].client,
            "GET",
            "/v2/members",
            None,
            Duration::from_secs(5),
        )
        .map_err(|e| format!("/v2/members: {e:?}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("/v2/members: {e}"))?;
        let mut ids = HashMap::new();
        for m in v["members"].as_array().into_iter().flatten() {
            let (Some(id), Some(name)) = (m["id"].as_str(), m["name"].as_str()) else {
                continue;
            };
            let id = u64::from_str_radix(id, 16).map_err(|e| format!("member id {id}: {e}"))?;
            if let Some(i) = self.members.iter().position(|x| x.name == name) {
                ids.insert(id, i);
            }
        }
        if ids.len() != self.members.len() {
            return Err(format!(
                "/v2/members names {} of {} members: {}",
                ids.len(),
                self.members.len(),
                r.body
            ));
        }
        Ok(ids)
    }

    pub fn spawn(&mut self, i: usize) -> Result<(), String> {
        let m = &mut self.members[i];
        assert!(!m.proc.is_running(), "{} already runs", m.name);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| format!("open {}: {e}", m.log.display()))?;
        let (curl, purl) = (format!("http://{}", m.client), format!("http://{}", m.peer));
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args(["--listen-peer-urls", &purl])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://{}", m.peer_proxy),
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                if m.join { "existing" } else { "new" },
            ])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
            .args(["--election-timeout", &ELECTION_MS.to_string()])
            // Both serve the v2 API only with it, as etcd 3.4 does.
            .arg("--enable-v2");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        m.proc = Proc(Some(child));
        m.paused = false;
        Ok(())
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].proc.is_running()
    }

    /// Whether member `i`'s process exited on its own (reaping it).
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let m = &mut self.members[i];
        m.proc.exited()
    }

    /// Whether member `i` answers `/health` with `true` right now.
    pub fn healthy(&self, i: usize) -> bool {
        http::request(
            self.members[i].client,
            "GET",
            "/health",
            None,
            Duration::from_secs(1),
        )
        .is_ok_and(|r| r.status == 200 && r.body.contains("true"))
    }

    pub fn wait_healthy(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.exited(i) {
                return Err(format!(
                    "{} exited ({st}): {}",
                    self.members[i].name,
                    self.log_tail(i, 20)
                ));
            }
            let last = match http::request(
                self.members[i].client,
                "GET",
                "/health",
                None,
                Duration::from_secs(1),
            ) {
                Ok(r) if r.status == 200 && r.body.contains("true") => return Ok(()),
                Ok(r) => format!("{} {}", r.status, r.body),
                Err(e) => format!("{e:?}"),
            };
            if start.elapsed() > limit {
                return Err(format!(
                    "{} not healthy after {limit:?}: {last}",
                    self.members[i].name
                ));
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self, i: usize) {
        self.members[i].proc.kill();
        self.members[i].paused = false;
    }

    /// Empties member `i`'s data dir (it must be stopped): its disk died.
    pub fn wipe(&mut self, i: usize) {
        assert!(!self.members[i].proc.is_running(), "wipe a running member");
        let _ = fs::remove_dir_all(&self.members[i].data_dir);
    }

    pub fn pause(&mut self, i: usize) {
        self.members[i].proc.pause();
        self.members[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.members[i].proc.resume();
        self.members[i].paused = false;
    }

    /// The member that says it leads, if exactly one live member does.
    pub fn leader(&self) -> Option<usize> {
        let mut leaders = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if !m.proc.is_running() || m.paused {
                continue;
            }
            if let Ok(r) = http::request(
                m.client,
                "GET",
                "/v2/stats/self",
                None,
                Duration::from_millis(500),
            ) {
                if r.body.contains("\"StateLeader\"") {
                    leaders.push(i);
                }
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// The length of member `i`'s log file, to read what a start adds.
    pub fn log_len(&self, i: usize) -> u64 {
        fs::metadata(&self.members[i].log).map_or(0, |m| m.len())
    }

    /// Member `i`'s log from byte `from` on.
    pub fn log_since(&self, i: usize, from: u64) -> String {
        let bytes = fs::read(&self.members[i].log).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default()).into_owned()
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Heals every process fault: resumes paused members, restarts dead ones.
    pub fn heal_processes(&mut self) -> Result<(), String> {
        self.links.heal();
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.resume(i);
            }
            if let Some(st) = self.exited(i) {
                eprintln!("{} had exited ({st}); restarting", self.members[i].name);
            }
            if !self.is_running(i) {
                self.spawn(i)?;
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.links.stop();
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.resume(i);
            }
            self.kill(i);
        }
    }
}
