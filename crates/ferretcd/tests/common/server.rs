//! The servers of the differential test: a member from the test kit plus
//! what is learnt about it after start-up to normalise its answers.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::server::Server as Process;

use super::http;
use super::json;

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

/// A server under comparison: its process (a test-kit member, stopped on
/// drop) and what is known about it.
pub struct Server {
    proc: Process,
    pub id: Identity,
}

impl Deref for Server {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.proc
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.proc
    }
}

impl Server {
    /// Starts `binary` with etcd's single-member flags on fresh loopback
    /// ports and a fresh data dir, and waits until it serves requests.
    pub fn start(label: &str, binary: &Path, name: &str) -> Result<Server, String> {
        let mut s = Server {
            proc: Process::start(label, binary, name)?,
            id: Identity::default(),
        };
        s.settle(Duration::from_secs(30))?;
        Ok(s)
    }

    /// Bounded wait, once `/health` says true: the store index stops moving
    /// (etcd publishes its member attributes and cluster version through
    /// the store right after electing itself).
    fn settle(&mut self, limit: Duration) -> Result<(), String> {
        let t = Duration::from_millis(1000);
        let start = Instant::now();
        // Settle: cluster version decided (bounded) and the index stable.
        let settle_start = Instant::now();
        let mut prev: Option<u64> = None;
        let mut stable = 0;
        loop {
            if let Some(e) = self.exited() {
                return Err(self.fail(&format!("exited while settling: {e}")));
            }
            let r = http::get(self.client, "/v2/keys/", t)
                .map_err(|e| self.fail(&format!("GET /v2/keys/: {e}")))?;
            let idx: Option<u64> = r.header("X-Etcd-Index").and_then(|v| v.parse().ok());
            let Some(idx) = idx else {
                return Err(self.fail(&format!(
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
                return Err(self.fail(&format!("store index did not settle after {limit:?}")));
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
}
