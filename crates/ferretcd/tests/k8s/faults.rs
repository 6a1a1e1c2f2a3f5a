//! The faults: every few seconds a random member is killed with SIGKILL,
//! left down for a moment and started again on its data directory; the
//! next kill waits until it serves again, so at most one member is down
//! at a time and the cluster keeps its quorum.
//!
//! Runs on the test's own thread (the cluster's calls are blocking) while
//! the clients run on the tokio runtime.

use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::cluster::Cluster;

use super::history::Recorder;
use super::rng::Rng;

/// How long a restarted member may take to serve again.
const READY_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct FaultLog {
    /// One line per kill.
    pub kills: Vec<String>,
    pub failures: Vec<String>,
}

/// Kills and restarts members until `until`.
pub fn inject(cluster: &mut Cluster, rng: &mut Rng, rec: &Recorder, until: Instant) -> FaultLog {
    let mut log = FaultLog::default();
    let size = cluster.members.len() as u64;
    loop {
        let pause = rng.millis(2000, 5000);
        let now = Instant::now();
        if now + pause >= until {
            sleep(until.saturating_duration_since(now));
            return log;
        }
        sleep(pause);
        let victim = rng.below(size) as usize;
        let leader = cluster.current_leader().ok();
        let down = rng.millis(300, 2500);
        let killed_ms = rec.ms();
        cluster.kill(victim);
        sleep(down);
        cluster.restart(victim);
        let started = Instant::now();
        match cluster.try_wait_ready(victim, READY_LIMIT) {
            Ok(()) => log.kills.push(format!(
                "at {killed_ms} ms: killed m{victim}{}, down for {} ms, serving {} ms after its restart",
                if leader == Some(victim) { " (the leader)" } else { "" },
                down.as_millis(),
                started.elapsed().as_millis()
            )),
            Err(e) => {
                log.failures.push(format!(
                    "m{victim}, killed at {killed_ms} ms{} and restarted, did not serve again: {e}\n\
                     --- last lines of its log ---\n{}",
                    if leader == Some(victim) { " (the leader)" } else { "" },
                    cluster.members[victim].log_tail(30)
                ));
                // Another kill could take the quorum away: no more faults.
                return log;
            }
        }
    }
}
