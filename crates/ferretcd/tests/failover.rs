//! Failover at the speed of a crash, on a 3-member cluster of `ferretcd`
//! processes with a long election timeout (5 s), so that which path
//! elected the new leader is plain:
//!
//! - a leader killed with SIGKILL is replaced through the fast path (its
//!   peer port refuses connections), long before the election timeout;
//! - a leader that is merely paused (SIGSTOP) refuses nothing: it is
//!   replaced only by the election timeout, as before.
//!
//! How fast the fast path is, against etcd, is measured by
//! `bench/failover.py` (BENCHMARKS.md), not here.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};

const ELECTION_MS: u64 = 5000;

fn cluster() -> Cluster {
    Cluster::start(Options {
        heartbeat_ms: 100,
        election_ms: ELECTION_MS,
        ..Default::default()
    })
}

/// Waits for a leader among `among` other than `old`; how long it took.
fn new_leader(c: &Cluster, old: usize, among: &[usize], limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(l) = c.current_leader() {
            if l != old && among.contains(&l) {
                return Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn a_killed_leader_is_replaced_before_the_election_timeout() {
    let mut c = cluster();
    let old = c.leader();
    c.put_ok(old, "before", "1");
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    c.kill(old);
    let took = new_leader(&c, old, &rest, Duration::from_secs(15)).expect("a new leader");
    assert!(
        took < Duration::from_millis(ELECTION_MS / 2),
        "a new leader after {took:?}: the fast path was not taken"
    );
    let noticed = rest.iter().any(|&i| {
        c.members[i]
            .log_text()
            .contains("the leader's process is gone")
    });
    assert!(noticed, "no follower noticed the leader's process was gone");
    let l = c.leader();
    c.put_ok(l, "after", "2");
    assert_eq!(c.value(l, "before").as_deref(), Some("1"));
}

#[test]
fn a_paused_leader_is_left_to_the_election_timeout() {
    let mut c = cluster();
    let old = c.leader();
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    c.pause(old);
    let took = new_leader(&c, old, &rest, Duration::from_secs(30)).expect("a new leader");
    c.resume(old);
    assert!(
        took >= Duration::from_millis(ELECTION_MS * 8 / 10),
        "a paused leader was replaced after {took:?}, before the election timeout"
    );
    for &i in &rest {
        assert!(
            !c.members[i]
                .log_text()
                .contains("the leader's process is gone"),
            "member {i} took a paused leader for a dead one"
        );
    }
}
