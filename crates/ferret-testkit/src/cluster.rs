//! A multi-process ferretcd cluster on loopback.
//!
//! [`Cluster::start`] runs N `ferretcd` processes on free 127.0.0.1 ports,
//! each with its own data dir and log file under one temporary directory,
//! with fast timers. Members can be killed (SIGKILL), stopped (SIGTERM),
//! paused (SIGSTOP) and restarted with the same flags and data dir.
//! Dropping the cluster kills every process and removes the directory; when
//! the drop happens during a panic (a failed assertion), the last lines of
//! every member's log are printed first.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_gocompat::url::escape_query;

use crate::bin;
use crate::dir::TempDir;
use crate::http::{self, BodyMode, Request, Response};
use crate::ports::free_ports;
use crate::process::Proc;

/// Whether a log says a listener could not bind its port.
fn port_was_busy(log: &str) -> bool {
    log.contains("Address already in use")
}

/// How long one client request may take: above ferretcd's request timeout
/// (5 s + 2 election timeouts), so a timed-out write is answered, not cut.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a member whose port was busy is started again (see
/// [`Cluster::wait_ready`]).
const BUSY_PORT_RETRIES: usize = 10;

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ferretcd binary (by default, this build's).
    pub binary: PathBuf,
    pub size: usize,
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub snapshot_count: Option<u64>,
    /// More flags for every member, after the ones above (the binary may
    /// be etcd itself, which takes the same flags).
    pub extra: Vec<String>,
    /// Peer URLs are https (the `--peer-*` TLS flags go in `extra`).
    pub peer_tls: bool,
    /// Each member also listens on, and advertises after its http client
    /// URL, an https one (`Member::https_client`; the client TLS flags,
    /// `--auto-tls` say, go in `extra`). The harness itself keeps to http.
    pub https_client: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            binary: bin::ferretcd(),
            size: 3,
            heartbeat_ms: 50,
            election_ms: 500,
            snapshot_count: None,
            extra: Vec::new(),
            peer_tls: false,
            https_client: false,
        }
    }
}

impl Options {
    /// The time ferretcd gives a request before answering "request timed out".
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(5) + 2 * Duration::from_millis(self.election_ms)
    }

    pub fn election(&self) -> Duration {
        Duration::from_millis(self.election_ms)
    }
}

/// One member: its addresses, files, and process when it runs.
pub struct Member {
    pub name: String,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    proc: Proc,
    paused: bool,
    /// How many times the process was started (the log is appended to).
    pub starts: usize,
    /// A member added at runtime: the `--initial-cluster` it starts with
    /// (`--initial-cluster-state existing`).
    pub join: Option<String>,
    /// Its peer URL is https.
    pub peer_tls: bool,
    /// Its https client address, with `Options::https_client`.
    pub https_client: Option<SocketAddr>,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Its https client URL, with `Options::https_client`.
    pub fn https_client_url(&self) -> Option<String> {
        self.https_client.map(|a| format!("https://{a}"))
    }

    pub fn peer_url(&self) -> String {
        let scheme = if self.peer_tls { "https" } else { "http" };
        format!("{scheme}://{}", self.peer)
    }

    /// Whether a process was started and not yet killed or stopped.
    pub fn is_running(&self) -> bool {
        self.proc.is_running()
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// The whole log, over every start.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log written by the latest start only.
    pub fn last_start_log(&self) -> String {
        let text = self.log_text();
        let marker = format!("=== cluster test: start #{} ", self.starts);
        match text.rfind(&marker) {
            Some(at) => text[at..].to_string(),
            None => text,
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

pub struct Cluster {
    pub opts: Options,
    pub members: Vec<Member>,
    initial_cluster: String,
    // Declared last: removed after the processes are gone.
    dir: TempDir,
}

/// The text of a response body.
pub fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A field of a JSON body, as a string (for `"state"`, `"value"`, ...).
pub fn json_str(body: &str, path: &[&str]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut v = &doc;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().map(str::to_string)
}

/// Polls `f` every `every` until it returns `Some`, or panics with `what`
/// and the last value seen after `limit`.
pub fn poll<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() > limit => {
                panic!("{what}: not done after {limit:?} (last: {last})")
            }
            Err(_) => sleep(every),
        }
    }
}

impl Cluster {
    /// Starts a cluster and waits until every member serves and one leads.
    pub fn start(opts: Options) -> Cluster {
        // A free port can be taken by someone else between `free_ports` and
        // the bind: then start again on other ports.
        let mut last = String::new();
        for _ in 0..3 {
            let mut c = Cluster::spawn(opts.clone());
            match c.wait_all_ready(Duration::from_secs(30)) {
                Ok(()) => {
                    c.leader();
                    return c;
                }
                Err(e) => {
                    let bind_failed = c.members.iter().any(|m| port_was_busy(&m.log_text()));
                    if !bind_failed {
                        c.dump_logs();
                        panic!("cluster did not start: {e}");
                    }
                    last = e;
                }
            }
        }
        panic!("cluster did not start (ports taken three times): {last}");
    }

    fn spawn(opts: Options) -> Cluster {
        let dir = TempDir::new("ferret-cluster");
        let ports = free_ports(3 * opts.size);
        let mut members = Vec::new();
        for i in 0..opts.size {
            let name = format!("m{i}");
            let https = opts.https_client.then(|| ports[3 * i + 2]);
            members.push(Member {
                client: format!("127.0.0.1:{}", ports[3 * i]).parse().unwrap(),
                peer: format!("127.0.0.1:{}", ports[3 * i + 1]).parse().unwrap(),
                https_client: https.map(|p| format!("127.0.0.1:{p}").parse().unwrap()),
                data_dir: dir.0.join(format!("{name}.etcd")),
                log: dir.0.join(format!("{name}.log")),
                name,
                proc: Proc(None),
                paused: false,
                starts: 0,
                join: None,
                peer_tls: opts.peer_tls,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            opts,
            members,
            initial_cluster,
            dir,
        };
        for i in 0..c.members.len() {
            c.spawn_member(i);
        }
        c
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub fn client(&self, i: usize) -> SocketAddr {
        self.members[i].client
    }

    fn spawn_member(&mut self, i: usize) {
        self.spawn_member_with(i, &[], &[]);
    }

    /// A new member slot (free ports, a data dir, a log), not started: for
    /// a member to add at runtime. `start_joining` starts it.
    pub fn new_member(&mut self) -> usize {
        let i = self.members.len();
        let ports = free_ports(3);
        let name = format!("m{i}");
        let https = self.opts.https_client.then(|| ports[2]);
        self.members.push(Member {
            client: format!("127.0.0.1:{}", ports[0]).parse().unwrap(),
            peer: format!("127.0.0.1:{}", ports[1]).parse().unwrap(),
            https_client: https.map(|p| format!("127.0.0.1:{p}").parse().unwrap()),
            data_dir: self.dir.0.join(format!("{name}.etcd")),
            log: self.dir.0.join(format!("{name}.log")),
            name,
            proc: Proc(None),
            paused: false,
            starts: 0,
            join: None,
            peer_tls: self.opts.peer_tls,
        });
        i
    }

    /// Starts member `i` with `--initial-cluster-state existing` and
    /// `initial_cluster` (the running members and itself), to join the
    /// running cluster it was added to; restarts keep those flags.
    pub fn start_joining(&mut self, i: usize, initial_cluster: &str) {
        self.members[i].join = Some(initial_cluster.to_string());
        self.spawn_member(i);
    }

    /// The `--initial-cluster` every member started with.
    pub fn initial_cluster(&self) -> &str {
        &self.initial_cluster
    }

    /// Empties member `i`'s data dir (it must be stopped): its disk died.
    pub fn wipe(&mut self, i: usize) {
        assert!(!self.members[i].proc.is_running(), "wipe a running member");
        let _ = fs::remove_dir_all(&self.members[i].data_dir);
    }

    fn spawn_member_with(&mut self, i: usize, env: &[(&str, &str)], args: &[&str]) {
        let opts = self.opts.clone();
        let m = &mut self.members[i];
        let (ic, state) = match &m.join {
            Some(ic) => (ic.clone(), "existing"),
            None => (self.initial_cluster.clone(), "new"),
        };
        assert!(!m.proc.is_running(), "{} is already running", m.name);
        m.starts += 1;
        let mut logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", m.log.display()));
        use std::io::Write;
        let _ = writeln!(
            logf,
            "=== cluster test: start #{} of {} ===",
            m.starts, m.name
        );
        let (mut curl, purl) = (m.client_url(), m.peer_url());
        if let Some(https) = m.https_client_url() {
            curl = format!("{curl},{https}");
        }
        let mut cmd = Command::new(&opts.binary);
        // As etcd 3.4, ferretcd serves the v2 API only with --enable-v2.
        cmd.arg("--enable-v2")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &curl])
            .args(["--advertise-client-urls", &curl])
            .args(["--listen-peer-urls", &purl])
            .args(["--initial-advertise-peer-urls", &purl])
            .args(["--initial-cluster", &ic])
            .args(["--initial-cluster-state", state])
            .args(["--heartbeat-interval", &opts.heartbeat_ms.to_string()])
            .args(["--election-timeout", &opts.election_ms.to_string()]);
        if let Some(n) = opts.snapshot_count {
            cmd.args(["--snapshot-count", &n.to_string()]);
        }
        cmd.args(&opts.extra);
        cmd.args(args);
        cmd.envs(env.iter().copied());
        let child = cmd
            .env_remove("FERRETCD_LOG")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("clone log handle"))
            .stderr(logf)
            .spawn()
            .expect("spawn ferretcd");
        m.proc = Proc(Some(child));
        m.paused = false;
    }

    /// Whether member `i`'s process has exited (reaping it), with its status.
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let m = &mut self.members[i];
        m.proc.exited()
    }

    /// Waits until member `i` answers `/health` with `{"health":"true"}`
    /// (ferretcd answers clients only once it is published, which needs a
    /// leader).
    ///
    /// A member that exits because one of its ports is busy is started
    /// again (a few times, 200 ms apart): while it was down, a short-lived
    /// socket of another process on this machine may have taken its port.
    pub fn wait_ready(&mut self, i: usize) {
        if let Err(e) = self.try_wait_ready(i, Duration::from_secs(30)) {
            panic!("{e}");
        }
    }

    /// [`Cluster::wait_ready`] within `limit`, answering why not instead of
    /// panicking (a test that restarts members on purpose reports a member
    /// that stopped itself, and goes on).
    pub fn try_wait_ready(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut busy = 0;
        loop {
            if let Some(st) = self.exited(i) {
                if port_was_busy(&self.members[i].last_start_log()) && busy < BUSY_PORT_RETRIES {
                    busy += 1;
                    eprintln!(
                        "{}: a port is busy ({st}); starting it again",
                        self.members[i].name
                    );
                    sleep(Duration::from_millis(200));
                    self.spawn_member(i);
                    continue;
                }
                return Err(format!(
                    "{} exited ({st}) before it was ready",
                    self.members[i].name
                ));
            }
            if !self.members[i].proc.is_running() {
                return Err(format!("{} is not running", self.members[i].name));
            }
            let last = match http::get(self.client(i), "/health", Duration::from_secs(1)) {
                Ok(r) if r.status == 200 && text(&r).contains("\"true\"") => return Ok(()),
                Ok(r) => format!("/health -> {} {}", r.status, text(&r)),
                Err(e) => e,
            };
            if start.elapsed() > limit {
                return Err(format!(
                    "{} not ready after {limit:?} (last: {last})",
                    self.members[i].name
                ));
            }
            sleep(Duration::from_millis(25));
        }
    }

    fn wait_all_ready(&mut self, limit: Duration) -> Result<(), String> {
        for i in 0..self.members.len() {
            if self.members[i].is_running() {
                self.try_wait_ready(i, limit)?;
            }
        }
        Ok(())
    }

    /// Waits until every running member is ready.
    pub fn wait_all(&mut self) {
        if let Err(e) = self.wait_all_ready(Duration::from_secs(30)) {
            panic!("{e}");
        }
    }

    /// Members whose process runs and is not paused.
    pub fn live(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].proc.is_running() && !self.members[i].paused)
            .collect()
    }

    /// `/v2/stats/self` of member `i`: (state, id, leader id).
    pub fn stats(&self, i: usize) -> Result<(String, String, String), String> {
        let r = http::get(self.client(i), "/v2/stats/self", Duration::from_secs(1))?;
        let body = text(&r);
        let field = |p: &[&str]| {
            json_str(&body, p).ok_or_else(|| format!("no {p:?} in /v2/stats/self: {body}"))
        };
        Ok((
            field(&["state"])?,
            field(&["id"])?,
            field(&["leaderInfo", "leader"])?,
        ))
    }

    /// One poll: the leader if exactly one live member says StateLeader and
    /// every live member names it as leader.
    pub fn current_leader(&self) -> Result<usize, String> {
        let live = self.live();
        let mut leaders = Vec::new();
        let mut stats = Vec::new();
        for &i in &live {
            let s = self.stats(i)?;
            if s.0 == "StateLeader" {
                leaders.push(i);
            }
            stats.push(s);
        }
        let [l] = leaders[..] else {
            return Err(format!("leaders among live members {live:?}: {leaders:?}"));
        };
        let lid = &stats[live.iter().position(|&i| i == l).unwrap()].1;
        if let Some(s) = stats.iter().find(|s| &s.2 != lid) {
            return Err(format!("{} names leader {:?}, not {lid}", s.1, s.2));
        }
        Ok(l)
    }

    /// Polls the live members until exactly one leads and all agree on it.
    pub fn leader(&self) -> usize {
        poll(
            "a single leader",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || self.current_leader(),
        )
    }

    /// A live member other than the leader `l`.
    pub fn follower_of(&self, l: usize) -> usize {
        *self.live().iter().find(|&&i| i != l).expect("a follower")
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, i: usize) {
        self.members[i].proc.kill();
        self.members[i].paused = false;
    }

    fn signal(&self, i: usize, send: impl Fn(&Proc) -> bool, what: &str) {
        let pid = self.members[i].pid().expect("member runs");
        assert!(send(&self.members[i].proc), "{what} {pid} failed");
    }

    /// SIGTERM, then waits (at most 10 s) for the process to exit; returns
    /// its exit status.
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        if self.members[i].paused {
            self.resume(i);
        }
        self.signal(i, Proc::terminate, "SIGTERM");
        let start = Instant::now();
        loop {
            if let Some(st) = self.exited(i) {
                return st;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let name = self.members[i].name.clone();
                self.kill(i);
                panic!("{name} did not exit within 10 s of SIGTERM");
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOP: the process stays, frozen.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, Proc::pause, "SIGSTOP");
        self.members[i].paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, Proc::resume, "SIGCONT");
        self.members[i].paused = false;
    }

    /// Starts member `i` again with the same flags and data dir (it must
    /// have been killed or stopped). Does not wait for it to be ready.
    pub fn restart(&mut self, i: usize) {
        self.spawn_member(i);
    }

    /// Like [`Cluster::restart`], with these environment variables for
    /// this start only (a failpoint, say: `FERRETCD_FAILPOINT=<name>`).
    pub fn restart_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        self.spawn_member_with(i, env, &[]);
    }

    /// Like [`Cluster::restart`], with these flags added for this start
    /// only (`--force-new-cluster`, say).
    pub fn restart_with_args(&mut self, i: usize, args: &[&str]) {
        self.spawn_member_with(i, &[], args);
    }

    /// Waits (at most `limit`) for member `i` to exit, returning its status.
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = self.exited(i) {
                return Some(st);
            }
            sleep(Duration::from_millis(20));
        }
        None
    }

    /// Any request to member `i`; `Err` when no response arrived.
    pub fn try_request(
        &self,
        i: usize,
        method: &str,
        target: &str,
        form: Option<&str>,
    ) -> Result<Response, String> {
        let mut req = Request {
            method: method.into(),
            target: target.as_bytes().to_vec(),
            ..Default::default()
        };
        if let Some(f) = form {
            req.headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            req.body = Some(f.as_bytes().to_vec());
        }
        http::send(self.client(i), &req, BodyMode::Full, CLIENT_TIMEOUT)
    }

    /// Like [`Cluster::try_request`], panicking when nothing is answered.
    pub fn request(&self, i: usize, method: &str, target: &str, form: Option<&str>) -> Response {
        self.try_request(i, method, target, form)
            .unwrap_or_else(|e| panic!("{method} {target} on m{i}: {e}"))
    }

    /// PUT `/v2/keys/<key>` with `value=<value>` on member `i`.
    pub fn put(&self, i: usize, key: &str, value: &str) -> Response {
        self.request(
            i,
            "PUT",
            &format!("/v2/keys/{}", key.trim_start_matches('/')),
            Some(&format!("value={}", escape_query(value))),
        )
    }

    /// PUT that must succeed (200 or 201).
    pub fn put_ok(&self, i: usize, key: &str, value: &str) -> Response {
        let r = self.put(i, key, value);
        assert!(
            r.status == 200 || r.status == 201,
            "PUT {key} on m{i}: {} {}",
            r.status,
            text(&r)
        );
        r
    }

    /// A local (serializable) GET on member `i`.
    pub fn get(&self, i: usize, key: &str) -> Response {
        self.request(
            i,
            "GET",
            &format!("/v2/keys/{}", key.trim_start_matches('/')),
            None,
        )
    }

    /// A linearizable (`quorum=true`) GET on member `i`.
    pub fn qget(&self, i: usize, key: &str) -> Response {
        self.request(
            i,
            "GET",
            &format!("/v2/keys/{}?quorum=true", key.trim_start_matches('/')),
            None,
        )
    }

    /// The value of `key` read locally on member `i`, `None` if absent.
    pub fn value(&self, i: usize, key: &str) -> Option<String> {
        let r = self.get(i, key);
        match r.status {
            200 => json_str(&text(&r), &["node", "value"]),
            404 => None,
            s => panic!("GET {key} on m{i}: {s} {}", text(&r)),
        }
    }

    /// Prints the last lines of every member's log on stderr.
    pub fn dump_logs(&self) {
        for m in &self.members {
            eprintln!(
                "--- {} ({}, {}), last lines of {} ---\n{}",
                m.name,
                m.client_url(),
                if m.proc.is_running() {
                    "running"
                } else {
                    "not running"
                },
                m.log.display(),
                m.log_tail(40)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}
