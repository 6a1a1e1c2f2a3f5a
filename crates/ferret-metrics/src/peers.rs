//! etcd's per-peer network metrics (`rafthttp`): bytes sent to and
//! received from each peer, failed sends, and the round trip time of
//! the leader's heartbeats, labelled with the peer's id in hex (`To` or
//! `From`, as etcd labels them).
//!
//! A peer's counters live in a fixed table of slots, claimed on first
//! use and never freed: finding them is a scan of a few slots with no
//! lock (a cluster has a handful of members), so the transport can count
//! every write. The table holds [`MAX_PEERS`] ids; a member that saw
//! more peers than that in its lifetime counts the rest in no slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::histogram::{exponential_buckets, Histogram};

/// Peer ids the table holds over a member's life (members come and go;
/// a cluster has up to seven at once).
pub const MAX_PEERS: usize = 64;

/// One peer's counters.
#[derive(Debug)]
pub struct Peer {
    id: u64,
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
    sent_failures: AtomicU64,
    /// etcd's `ExponentialBuckets(0.0001, 2, 16)`.
    rtt: Histogram,
}

impl Peer {
    pub fn sent(&self, bytes: usize) {
        self.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn send_failed(&self) {
        self.sent_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn round_trip(&self, seconds: f64) {
        self.rtt.observe(seconds);
    }
}

static SLOTS: [OnceLock<Peer>; MAX_PEERS] = [const { OnceLock::new() }; MAX_PEERS];

/// The counters of peer `id` (claimed on first use), or `None` once the
/// table is full.
pub fn peer(id: u64) -> Option<&'static Peer> {
    for slot in &SLOTS {
        let p = slot.get_or_init(|| Peer {
            id,
            sent_bytes: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            sent_failures: AtomicU64::new(0),
            rtt: Histogram::new(&exponential_buckets(0.0001, 2.0, 16)),
        });
        if p.id == id {
            return Some(p);
        }
    }
    None
}

#[derive(Debug)]
pub(crate) struct PeerCollector;

impl Collector for PeerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let peers: Vec<(String, &Peer)> = SLOTS
            .iter()
            .map_while(|s| s.get())
            .map(|p| (format!("{:x}", p.id), p))
            .collect();
        if peers.is_empty() {
            // As etcd: a family without label values is not listed.
            return Ok(());
        }
        type Count = fn(&Peer) -> u64;
        let counters: [(&str, &str, &str, Count); 3] = [
            (
                "etcd_network_peer_received_bytes",
                "The total number of bytes received from peers.",
                "From",
                |p| p.received_bytes.load(Ordering::Relaxed),
            ),
            (
                "etcd_network_peer_sent_bytes",
                "The total number of bytes sent to peers.",
                "To",
                |p| p.sent_bytes.load(Ordering::Relaxed),
            ),
            (
                "etcd_network_peer_sent_failures",
                "The total number of send failures from peers.",
                "To",
                |p| p.sent_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, label, count) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (id, p) in &peers {
                let set = [(label, id.as_str())];
                ConstCounter::new(count(p)).encode(family.encode_family(&set)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "etcd_network_peer_round_trip_time_seconds",
            "Round-Trip-Time histogram between peers",
            None,
            MetricType::Histogram,
        )?;
        for (id, p) in &peers {
            let set = [("To", id.as_str())];
            p.rtt.encode(family.encode_family(&set)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_keeps_its_slot() {
        let a = peer(0xaa01).unwrap() as *const Peer;
        let b = peer(0xbb02).unwrap() as *const Peer;
        assert_ne!(a, b);
        assert_eq!(peer(0xaa01).unwrap() as *const Peer, a);
    }
}
