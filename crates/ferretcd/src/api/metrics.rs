//! `/metrics`, `/livez` and `/readyz`, on every client URL and on
//! `--listen-metrics-urls` (with `/health`, as etcd's metrics listener).
//!
//! `/metrics` is `ferret_metrics`' registry in the Prometheus text format
//! etcd serves, after the gauges that are states are sampled from the
//! member ([`ferret_server::Server::sample_metrics`]).
//!
//! `/livez` and `/readyz` are the probes etcd added in 3.4.29 and 3.5.11
//! (`etcdhttp/health.go`), with their checks:
//! - `/livez`: `serializable_read` (a local Range of one key, keys only);
//! - `/readyz`: `data_corruption` (no CORRUPT alarm), `serializable_read`
//!   and `linearizable_read` (the same Range after a ReadIndex barrier).
//!
//! Each check also has its own path (`/readyz/linearizable_read`). Only
//! GET is allowed. All checks pass: `200`, `ok\n` (with `?verbose`, one
//! `[+]<check> ok` line per check first). A check fails: `503` through Go's
//! `http.Error`, a `[+]`/`[-]<check> failed: <error>` line per check and an
//! empty line. `?exclude=<check>` (repeatable) leaves a check out of the
//! root path's run; excluding a check that does not exist is ignored (etcd
//! logs a warning). etcd runs them in Go's map order, which varies; here
//! they run in the order listed above.

use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use ferret_proto::etcdserverpb::{AlarmType, RangeRequest};
use ferret_server::Server;

use crate::api::http::body::Body;
use crate::api::http::form::Form;
use crate::api::http::{wire, Routes};

/// `/metrics`.
pub async fn metrics(server: &Server, method: &Method) -> Response<Body> {
    // etcd's promhttp handler serves any method.
    let _ = method;
    let server = server.clone();
    // Sampling reads the database's sizes, which may wait for a commit.
    let text = tokio::task::spawn_blocking(move || {
        server.sample_metrics();
        ferret_metrics::render()
    })
    .await;
    match text {
        Ok(text) => {
            let mut resp = Response::new(Body::full(text));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(ferret_metrics::CONTENT_TYPE),
            );
            resp
        }
        Err(e) => wire::text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("An error has occurred while serving metrics:\n\n{e}"),
        ),
    }
}

/// The kinds of probe, with their checks in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Livez,
    Readyz,
}

impl Probe {
    fn checks(self) -> &'static [Check] {
        match self {
            Probe::Livez => &[Check::SerializableRead],
            Probe::Readyz => &[
                Check::DataCorruption,
                Check::SerializableRead,
                Check::LinearizableRead,
            ],
        }
    }

    /// The probe and check a path names: `/livez`, `/readyz/<check>`.
    pub fn of_path(path: &[u8]) -> Option<(Probe, Option<Check>)> {
        let (probe, rest) = if let Some(rest) = path.strip_prefix(b"/livez") {
            (Probe::Livez, rest)
        } else {
            (Probe::Readyz, path.strip_prefix(b"/readyz")?)
        };
        if rest.is_empty() {
            return Some((probe, None));
        }
        let name = rest.strip_prefix(b"/")?;
        let check = probe
            .checks()
            .iter()
            .copied()
            .find(|c| c.name().as_bytes() == name)?;
        Some((probe, Some(check)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    DataCorruption,
    SerializableRead,
    LinearizableRead,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::DataCorruption => "data_corruption",
            Check::SerializableRead => "serializable_read",
            Check::LinearizableRead => "linearizable_read",
        }
    }

    /// Runs the check: `Err` with etcd's words for what failed.
    async fn run(self, server: &Server) -> Result<(), String> {
        let read = |server: &Server| {
            let req = RangeRequest {
                key: b"\0".to_vec().into(),
                keys_only: true,
                limit: 1,
                serializable: true,
                ..Default::default()
            };
            server
                .mvcc()
                .range(&req)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match self {
            Check::DataCorruption => {
                let corrupt = server.mvcc().alarms().get(AlarmType::Corrupt as i32);
                if corrupt.is_empty() {
                    Ok(())
                } else {
                    Err("alarm activated: CORRUPT".to_string())
                }
            }
            Check::SerializableRead => read(server),
            Check::LinearizableRead => {
                server.read_barrier().await.map_err(|e| e.to_string())?;
                read(server)
            }
        }
    }
}

/// Serves `/livez`, `/readyz` and their check paths.
pub async fn probe(
    server: &Server,
    req: &Request<Incoming>,
    probe: Probe,
    only: Option<Check>,
) -> Response<Body> {
    if req.method() != Method::GET {
        return wire::method_not_allowed("GET");
    }
    let mut query = Form::default();
    // Go's Query() keeps what it could parse; so does this.
    let _ = query.parse_into(req.uri().query().unwrap_or("").as_bytes());
    let checks: Vec<Check> = match only {
        Some(c) => vec![c],
        None => {
            let excluded: Vec<&[u8]> = query.all("exclude").collect();
            let missing: Vec<String> = excluded
                .iter()
                .filter(|e| {
                    !e.is_empty() && !probe.checks().iter().any(|c| c.name().as_bytes() == **e)
                })
                .map(|e| format!("{:?}", String::from_utf8_lossy(e)))
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    missing_health_checks = %missing.join(","),
                    "some health checks cannot be excluded"
                );
            }
            probe
                .checks()
                .iter()
                .copied()
                .filter(|c| !excluded.contains(&c.name().as_bytes()))
                .collect()
        }
    };
    let mut reason = String::new();
    let mut failed = false;
    for c in checks {
        match c.run(server).await {
            Ok(()) => reason.push_str(&format!("[+]{} ok\n", c.name())),
            Err(e) => {
                failed = true;
                reason.push_str(&format!("[-]{} failed: {e}\n", c.name()));
            }
        }
    }
    if failed {
        tracing::error!(reason = %reason, "Health check error");
        // http.Error adds its newline after the reason's own.
        return wire::text_error(StatusCode::SERVICE_UNAVAILABLE, &reason);
    }
    let body = if query.has("verbose") {
        format!("{reason}ok\n")
    } else {
        "ok\n".to_string()
    };
    let mut resp = Response::new(Body::full(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, wire::TEXT);
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The endpoints of a `--listen-metrics-urls` listener: `/metrics`,
/// `/health`, `/livez`, `/readyz`; anything else is Go's 404.
pub struct MetricsRoutes {
    pub server: Server,
}

impl Routes for MetricsRoutes {
    async fn route(&self, req: Request<Incoming>, path: Vec<u8>) -> Response<Body> {
        match path.as_slice() {
            b"/metrics" => metrics(&self.server, req.method()).await,
            b"/health" => crate::api::v2::info::health(&self.server, req.method()),
            p => match Probe::of_path(p) {
                Some((probe_kind, only)) => probe(&self.server, &req, probe_kind, only).await,
                None => wire::text_error(StatusCode::NOT_FOUND, "404 page not found"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_paths_name_a_probe_and_maybe_a_check() {
        assert_eq!(Probe::of_path(b"/livez"), Some((Probe::Livez, None)));
        assert_eq!(
            Probe::of_path(b"/readyz/linearizable_read"),
            Some((Probe::Readyz, Some(Check::LinearizableRead)))
        );
        assert_eq!(
            Probe::of_path(b"/livez/serializable_read"),
            Some((Probe::Livez, Some(Check::SerializableRead)))
        );
        assert_eq!(Probe::of_path(b"/livez/data_corruption"), None);
        assert_eq!(Probe::of_path(b"/livezz"), None);
        assert_eq!(Probe::of_path(b"/readyz/"), None);
    }
}
