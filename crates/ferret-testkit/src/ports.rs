//! Free loopback ports for the servers a test starts.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The ports tests take: below Linux's ephemeral range (32768-60999), so
/// the kernel never hands one of them to an outgoing connection between
/// the probe and the server's bind, and clear of etcd's 2379/2380 and of
/// the benchmark's 17379-18384.
const FIRST: u16 = 20000;
const COUNT: usize = 12000;

/// Reserves `n` distinct free loopback ports, probed by binding them (all
/// held at once, then released for the server to bind).
///
/// Each test process starts at its own offset, chosen once, and moves only
/// forward; a port is never handed out twice by one process, so a killed
/// member's ports stay its own until it restarts, and two tests starting
/// servers at the same moment never get the same port. Another process on
/// the machine can still take a port between probe and bind: the cluster
/// restarts a member whose port was busy.
pub fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SEED: OnceLock<usize> = OnceLock::new();
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(0);
        (std::process::id() as usize * 7919 + nanos) % COUNT
    });
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    for _ in 0..COUNT {
        if out.len() == n {
            break;
        }
        let port = FIRST + ((seed + NEXT.fetch_add(1, Ordering::SeqCst)) % COUNT) as u16;
        if given.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            out.push(port);
            held.push(l);
        }
    }
    assert_eq!(
        out.len(),
        n,
        "no {n} free ports in {FIRST}-{}",
        FIRST as usize + COUNT - 1
    );
    given.extend(out.iter().copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_outside_the_ephemeral_range() {
        let a = free_ports(4);
        let b = free_ports(4);
        let all: BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|&p| p < 32768));
        for p in all {
            TcpListener::bind(("127.0.0.1", p)).expect("a handed-out port is free");
        }
    }
}
