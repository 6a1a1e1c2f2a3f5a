//! The metrics of a ferretcd member, under etcd 3.4's names, labels,
//! types, help texts and histogram buckets, so that etcd's dashboards and
//! alert rules work unchanged.
//!
//! This crate sits at the bottom of the crate graph: the crates that do
//! the work record here where the work happens (`ferret-wal` its fsyncs,
//! `ferret-mvcc` its backend commits and snapshots, `ferret-server` the
//! Raft loop, proposals and the peer transport, `ferretcd` the gRPC and v2
//! HTTP requests), and `ferretcd` renders [`render`] on `/metrics`.
//!
//! **Recording is cheap**: every handle is an atomic (prometheus-client's
//! `Counter` and `Gauge`, and [`Histogram`], whose buckets are atomics),
//! found without a lock or an allocation; per-label handles (gRPC methods,
//! peers, v2 methods) sit in fixed tables indexed by number.
//! What is a state rather than an event (database size, key and watcher
//! counts, commit and apply indexes, leadership) is not recorded at all:
//! the scraper sets those gauges from the member's state just before
//! rendering.
//!
//! There is one set of metrics per process ([`get`]), as in etcd (Go's
//! default registry): a process runs one member. Tests that run several
//! members in one process see their sum.
//!
//! Registration and the text encoding are prometheus-client's; its
//! OpenMetrics text is rewritten into the Prometheus text format 0.0.4
//! that etcd serves ([`text`]).

pub mod grpc;
pub mod histogram;
pub mod http;
pub mod peers;
mod process;
pub mod text;

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use histogram::Histogram;

/// The etcd server version ferretcd serves, reported as
/// `etcd_server_version{server_version=...}`; set once at start.
static SERVER_VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Every metric that is not per label (see [`grpc`], [`peers`], [`http`]
/// for those), each under etcd's name.
#[derive(Debug)]
pub struct Metrics {
    // etcd_server_*
    pub has_leader: Gauge,
    pub is_leader: Gauge,
    pub leader_changes_seen: Counter,
    pub proposals_committed: Gauge,
    pub proposals_applied: Gauge,
    pub proposals_pending: Gauge,
    pub proposals_failed: Counter,
    pub slow_apply: Counter,
    pub quota_backend_bytes: Gauge,
    // etcd_disk_*: etcd's buckets.
    pub wal_fsync: Histogram,
    pub backend_commit: Histogram,
    pub backend_snapshot: Histogram,
    // etcd_mvcc_* and etcd_debugging_mvcc_*
    pub db_total_size: Gauge,
    pub db_total_size_in_use: Gauge,
    pub keys_total: Gauge,
    pub watchers: Gauge,
    // etcd_network_client_grpc_*
    pub grpc_sent_bytes: Counter<u64, AtomicU64>,
    pub grpc_received_bytes: Counter<u64, AtomicU64>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    has_leader: Gauge::default(),
    is_leader: Gauge::default(),
    leader_changes_seen: Counter::default(),
    proposals_committed: Gauge::default(),
    proposals_applied: Gauge::default(),
    proposals_pending: Gauge::default(),
    proposals_failed: Counter::default(),
    slow_apply: Counter::default(),
    quota_backend_bytes: Gauge::default(),
    // etcd: ExponentialBuckets(0.001, 2, 14), 1 ms to 8 s.
    wal_fsync: Histogram::new(&histogram::exponential_buckets(0.001, 2.0, 14)),
    backend_commit: Histogram::new(&histogram::exponential_buckets(0.001, 2.0, 14)),
    // etcd: ExponentialBuckets(.01, 2, 17), 10 ms to 655 s.
    backend_snapshot: Histogram::new(&histogram::exponential_buckets(0.01, 2.0, 17)),
    db_total_size: Gauge::default(),
    db_total_size_in_use: Gauge::default(),
    keys_total: Gauge::default(),
    watchers: Gauge::default(),
    grpc_sent_bytes: Counter::default(),
    grpc_received_bytes: Counter::default(),
});

/// This process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Sets the etcd version `etcd_server_version` reports (once).
pub fn set_server_version(version: &str) {
    let _ = SERVER_VERSION.set(version.to_string());
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::default();
    r.register_collector(Box::new(Fixed));
    r.register_collector(Box::new(grpc::GrpcCollector));
    r.register_collector(Box::new(peers::PeerCollector));
    r.register_collector(Box::new(http::HttpCollector));
    r.register_collector(Box::new(process::ProcessCollector));
    r
});

/// Every metric, in the Prometheus text format 0.0.4 etcd serves
/// (`text/plain; version=0.0.4; charset=utf-8`).
pub fn render() -> String {
    let mut open_metrics = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug
    // in a collector here, and a scrape without the rest is no answer.
    prometheus_client::encoding::text::encode_registry(&mut open_metrics, &REGISTRY)
        .expect("encoding metrics into a String");
    text::to_prometheus_text(&open_metrics)
}

/// The media type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// [`Metrics`]' fields, with etcd's help texts written as they are (the
/// registry's own `register` would append a period).
#[derive(Debug)]
struct Fixed;

impl Collector for Fixed {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = get();
        let gauges: [(&str, &str, &Gauge); 11] = [
            (
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
                &m.has_leader,
            ),
            (
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
                &m.is_leader,
            ),
            (
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
                &m.proposals_committed,
            ),
            (
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
                &m.proposals_applied,
            ),
            (
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
                &m.proposals_pending,
            ),
            (
                "etcd_server_quota_backend_bytes",
                "Current backend storage quota size in bytes.",
                &m.quota_backend_bytes,
            ),
            (
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
                &m.db_total_size,
            ),
            (
                "etcd_mvcc_db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
                &m.db_total_size_in_use,
            ),
            (
                "etcd_debugging_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
                &m.db_total_size,
            ),
            (
                "etcd_debugging_mvcc_keys_total",
                "Total number of keys.",
                &m.keys_total,
            ),
            (
                "etcd_debugging_mvcc_watcher_total",
                "Total number of watchers.",
                &m.watchers,
            ),
        ];
        for (name, help, g) in gauges {
            g.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        let counters: [(&str, &str, &Counter); 3] = [
            (
                "etcd_server_leader_changes_seen",
                "The number of leader changes seen.",
                &m.leader_changes_seen,
            ),
            (
                "etcd_server_proposals_failed",
                "The total number of failed proposals seen.",
                &m.proposals_failed,
            ),
            (
                "etcd_server_slow_apply",
                "The total number of slow apply requests (likely overloaded from slow disk).",
                &m.slow_apply,
            ),
        ];
        for (name, help, c) in counters {
            c.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let grpc_bytes: [(&str, &str, &Counter); 2] = [
            (
                "etcd_network_client_grpc_received_bytes",
                "The total number of bytes received from grpc clients.",
                &m.grpc_received_bytes,
            ),
            (
                "etcd_network_client_grpc_sent_bytes",
                "The total number of bytes sent to grpc clients.",
                &m.grpc_sent_bytes,
            ),
        ];
        for (name, help, c) in grpc_bytes {
            c.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let histograms: [(&str, &str, &Histogram); 3] = [
            (
                "etcd_disk_wal_fsync_duration_seconds",
                "The latency distributions of fsync called by WAL.",
                &m.wal_fsync,
            ),
            (
                "etcd_disk_backend_commit_duration_seconds",
                "The latency distributions of commit called by backend.",
                &m.backend_commit,
            ),
            (
                "etcd_disk_backend_snapshot_duration_seconds",
                "The latency distribution of backend snapshots.",
                &m.backend_snapshot,
            ),
        ];
        for (name, help, h) in histograms {
            h.encode(e.encode_descriptor(name, help, None, MetricType::Histogram)?)?;
        }
        if let Some(v) = SERVER_VERSION.get() {
            let mut family = e.encode_descriptor(
                "etcd_server_version",
                "Which version is running. 1 for 'server_version' label with current version.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(1i64)
                .encode(family.encode_family(&[("server_version", v.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scrape_has_etcds_families() {
        super::set_server_version("3.4.23");
        super::get().leader_changes_seen.inc();
        super::get().wal_fsync.observe(0.003);
        let text = super::render();
        if std::env::var_os("FERRET_METRICS_PRINT").is_some() {
            eprintln!("{text}");
        }
        for line in [
            "# TYPE etcd_server_leader_changes_seen_total counter\n",
            "etcd_server_leader_changes_seen_total 1\n",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 1\n",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "etcd_server_version{server_version=\"3.4.23\"} 1\n",
            "# TYPE process_cpu_seconds_total counter\n",
            "# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("# EOF"));
    }
}
