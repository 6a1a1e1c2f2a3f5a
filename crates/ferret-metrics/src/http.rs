//! etcd's v2 API metrics (`v2http/metrics.go`): requests received by
//! method (`GET`, `QGET` for a quorum read, `PUT`, `POST`, `DELETE`),
//! failures by method and HTTP status, and the time successful requests
//! took. etcd lists a method once it was seen, and so does this.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::histogram::{exponential_buckets, Histogram};

/// The methods of etcd's v2 `Request`, as its metrics name them.
pub const METHODS: [&str; 6] = ["GET", "QGET", "PUT", "POST", "DELETE", "HEAD"];

/// HTTP statuses a failure may carry: the v2 API's 400, 401, 403, 404,
/// 405, 409, 412, 500, 503 and anything else under 600.
const STATUS_MAX: usize = 600;

static HTTP: std::sync::LazyLock<HttpMetrics> = std::sync::LazyLock::new(HttpMetrics::new);

/// This process's v2 API metrics.
pub fn get() -> &'static HttpMetrics {
    &HTTP
}

#[derive(Debug)]
pub struct HttpMetrics {
    received: [AtomicU64; METHODS.len()],
    /// `failed[method * STATUS_MAX + status]`.
    failed: Box<[AtomicU64]>,
    /// etcd's `ExponentialBuckets(0.0005, 2, 13)`, per method.
    successful: [Histogram; METHODS.len()],
}

impl HttpMetrics {
    fn new() -> HttpMetrics {
        let buckets = exponential_buckets(0.0005, 2.0, 13);
        HttpMetrics {
            received: std::array::from_fn(|_| AtomicU64::new(0)),
            failed: (0..METHODS.len() * STATUS_MAX)
                .map(|_| AtomicU64::new(0))
                .collect(),
            successful: std::array::from_fn(|_| Histogram::new(&buckets)),
        }
    }

    /// The index of a method in [`METHODS`].
    pub fn method(name: &str) -> Option<usize> {
        METHODS.iter().position(|m| *m == name)
    }

    pub fn received(&self, method: usize) {
        self.received[method].fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, method: usize, status: u16) {
        let status = (status as usize).min(STATUS_MAX - 1);
        self.failed[method * STATUS_MAX + status].fetch_add(1, Ordering::Relaxed);
    }

    pub fn succeeded(&self, method: usize, seconds: f64) {
        self.successful[method].observe(seconds);
    }
}

#[derive(Debug)]
pub(crate) struct HttpCollector;

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = get();
        let failed: Vec<(usize, String, u64)> = h
            .failed
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then(|| (i / STATUS_MAX, (i % STATUS_MAX).to_string(), n))
            })
            .collect();
        if !failed.is_empty() {
            let mut family = encoder.encode_descriptor(
                "etcd_http_failed",
                "Counter of handle failures of requests (non-watches), by method (GET/PUT etc.) and code (400, 500 etc.).",
                None,
                MetricType::Counter,
            )?;
            for (m, code, n) in &failed {
                let set = [("code", code.as_str()), ("method", METHODS[*m])];
                ConstCounter::new(*n).encode(family.encode_family(&set)?)?;
            }
        }
        let seen: Vec<usize> = (0..METHODS.len())
            .filter(|m| h.received[*m].load(Ordering::Relaxed) > 0)
            .collect();
        if !seen.is_empty() {
            let mut family = encoder.encode_descriptor(
                "etcd_http_received",
                "Counter of requests received into the system (successfully parsed and authd).",
                None,
                MetricType::Counter,
            )?;
            for m in &seen {
                let n = h.received[*m].load(Ordering::Relaxed);
                ConstCounter::new(n).encode(family.encode_family(&[("method", METHODS[*m])])?)?;
            }
        }
        let succeeded: Vec<usize> = (0..METHODS.len())
            .filter(|m| h.successful[*m].count() > 0)
            .collect();
        if !succeeded.is_empty() {
            let mut family = encoder.encode_descriptor(
                "etcd_http_successful_duration_seconds",
                "Bucketed histogram of processing time (s) of successfully handled requests (non-watches), by method (GET/PUT etc.).",
                None,
                MetricType::Histogram,
            )?;
            for m in succeeded {
                h.successful[m].encode(family.encode_family(&[("method", METHODS[m])])?)?;
            }
        }
        Ok(())
    }
}
