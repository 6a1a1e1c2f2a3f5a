//! go-grpc-prometheus's server metrics, as etcd 3.4 registers them:
//! `grpc_server_started_total` and `grpc_server_handled_total` (labels
//! `grpc_type`, `grpc_service`, `grpc_method`, and `grpc_code` for the
//! latter), and with `--metrics extensive` the
//! `grpc_server_handling_seconds` histogram.
//!
//! The served methods are a fixed table ([`GrpcMethod`]), handed over
//! once at start ([`install`]); each method has its counters in place, so
//! recording a call is one atomic increment, found by the method's index.
//! etcd's interceptor pre-registers every method of its own services with
//! every code at zero; methods that are served but not pre-registered
//! (etcd's Lock and Election services) appear once called.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::histogram::{Histogram, DEFAULT_BUCKETS};

/// One served gRPC method.
#[derive(Debug)]
pub struct GrpcMethod {
    /// `/etcdserverpb.KV/Range`: what the request's path is.
    pub path: &'static str,
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub kind: &'static str,
    /// Listed at zero from the start, as etcd's interceptor lists it.
    pub preregistered: bool,
}

impl GrpcMethod {
    fn service(&self) -> &'static str {
        let p = self.path.trim_start_matches('/');
        p.split_once('/').map_or(p, |(s, _)| s)
    }

    fn method(&self) -> &'static str {
        self.path.rsplit_once('/').map_or(self.path, |(_, m)| m)
    }
}

/// gRPC's status codes by number, as grpc-go's `codes.Code.String()`
/// spells them.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The counters of every served method.
#[derive(Debug)]
pub struct GrpcMetrics {
    methods: &'static [GrpcMethod],
    started: Box<[AtomicU64]>,
    /// `handled[method][code]`.
    handled: Box<[[AtomicU64; 17]]>,
    /// With `--metrics extensive` only: per method.
    handling: Option<Box<[Histogram]>>,
}

static GRPC: OnceLock<GrpcMetrics> = OnceLock::new();

/// Installs the table of served methods (once; later calls are ignored).
/// `extensive`: `--metrics extensive`, which adds the latency histogram.
pub fn install(methods: &'static [GrpcMethod], extensive: bool) {
    let _ = GRPC.set(GrpcMetrics {
        methods,
        started: methods.iter().map(|_| AtomicU64::new(0)).collect(),
        handled: methods
            .iter()
            .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            .collect(),
        handling: extensive.then(|| {
            methods
                .iter()
                .map(|_| Histogram::new(&DEFAULT_BUCKETS))
                .collect()
        }),
    });
}

/// The installed table, if any.
pub fn get() -> Option<&'static GrpcMetrics> {
    GRPC.get()
}

impl GrpcMetrics {
    /// The index of the method a request path names.
    pub fn index(&self, path: &str) -> Option<usize> {
        self.methods.iter().position(|m| m.path == path)
    }

    /// Whether latencies are recorded (`--metrics extensive`).
    pub fn extensive(&self) -> bool {
        self.handling.is_some()
    }

    pub fn started(&self, method: usize) {
        self.started[method].fetch_add(1, Ordering::Relaxed);
    }

    /// A call of `method` ended with `code` (an unknown code counts as
    /// Unknown, as grpc-go maps it) after `elapsed`.
    pub fn handled(&self, method: usize, code: usize, elapsed: Option<Duration>) {
        let code = if code < CODE_NAMES.len() { code } else { 2 };
        self.handled[method][code].fetch_add(1, Ordering::Relaxed);
        if let (Some(h), Some(d)) = (&self.handling, elapsed) {
            h[method].observe(d.as_secs_f64());
        }
    }

    /// Calls of `method` that ended with `code`.
    pub fn handled_count(&self, method: usize, code: usize) -> u64 {
        self.handled[method][code].load(Ordering::Relaxed)
    }

    fn listed(&self, i: usize) -> bool {
        self.methods[i].preregistered || self.started[i].load(Ordering::Relaxed) > 0
    }
}

/// Encodes the installed table, when there is one.
#[derive(Debug)]
pub(crate) struct GrpcCollector;

impl Collector for GrpcCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(g) = GRPC.get() else {
            return Ok(());
        };
        let labels = |m: &GrpcMethod| {
            [
                ("grpc_method", m.method()),
                ("grpc_service", m.service()),
                ("grpc_type", m.kind),
            ]
        };
        {
            let mut family = encoder.encode_descriptor(
                "grpc_server_handled",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                None,
                MetricType::Counter,
            )?;
            for (i, m) in g.methods.iter().enumerate() {
                if !g.listed(i) {
                    continue;
                }
                let [a, b, c] = labels(m);
                for (code, name) in CODE_NAMES.iter().enumerate() {
                    let set = [("grpc_code", *name), a, b, c];
                    let n = g.handled[i][code].load(Ordering::Relaxed);
                    ConstCounter::new(n).encode(family.encode_family(&set)?)?;
                }
            }
        }
        if let Some(h) = &g.handling {
            let mut family = encoder.encode_descriptor(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                None,
                MetricType::Histogram,
            )?;
            for (i, m) in g.methods.iter().enumerate() {
                if g.listed(i) {
                    h[i].encode(family.encode_family(&labels(m))?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            None,
            MetricType::Counter,
        )?;
        for (i, m) in g.methods.iter().enumerate() {
            if g.listed(i) {
                let n = g.started[i].load(Ordering::Relaxed);
                ConstCounter::new(n).encode(family.encode_family(&labels(m))?)?;
            }
        }
        Ok(())
    }
}
