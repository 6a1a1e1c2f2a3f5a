//! etcd 3.4's v2 HTTP API: `/v2/keys` ([`keys`]), the member, stats,
//! version and health endpoints ([`info`]), v2 auth ([`auth`]), and the
//! table that routes a clean path to them and to `/metrics`, `/livez` and
//! `/readyz` ([`crate::api::metrics`]).

pub mod auth;
pub mod info;
pub mod keys;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::api::context::Api;
use crate::api::http::body::Body;
use crate::api::http::{wire, Routes};
use crate::api::metrics;

impl Routes for Api {
    fn access(&self) -> &crate::api::http::access::Access {
        &self.access
    }

    async fn route(&self, req: Request<Incoming>, path: Vec<u8>) -> Response<Body> {
        let method = req.method().clone();
        let server = &self.server;
        // etcd 3.4's JSON gateway, with or without --enable-v2.
        for prefix in [&b"/v3/"[..], b"/v3beta/"] {
            if let Some(rest) = path.strip_prefix(prefix) {
                let Some(gw) = self.gateway.get() else {
                    return wire::text_error(StatusCode::NOT_FOUND, "404 page not found");
                };
                let rest = format!("/{}", String::from_utf8_lossy(rest));
                return gw.handle(req, &rest).await;
            }
        }
        if !self.enable_v2 && path.starts_with(b"/v2") {
            // Without --enable-v2, etcd 3.4 registers no v2 handler: every
            // /v2 path is the mux's 404 (`/version`, `/health` stay).
            return wire::text_error(StatusCode::NOT_FOUND, "404 page not found");
        }
        if self.enable_ui {
            if let Some(resp) = crate::api::ui::serve(&path, &method) {
                return resp;
            }
        }
        if let Some((probe, only)) = metrics::Probe::of_path(&path) {
            return metrics::probe(server, &req, probe, only).await;
        }
        match path.as_slice() {
            b"/metrics" => metrics::metrics(server, &method).await,
            b"/version" => info::version(&method),
            b"/health" => info::health(server, &method),
            b"/v2/machines" => info::machines(server, &method),
            b"/v2/stats/store" => info::stats_store(server, &method),
            b"/v2/stats/self" => info::stats_self(server, &method, self.started_ns),
            b"/v2/stats/leader" => info::stats_leader(server, &method),
            p if p == b"/v2/members" || p.starts_with(b"/v2/members/") => {
                let rest = String::from_utf8_lossy(&p[b"/v2/members".len()..]).into_owned();
                info::members(
                    server,
                    req,
                    rest.trim_start_matches('/'),
                    crate::api::context::V2_MAX_BODY_BYTES,
                    self.client_cert_auth,
                )
                .await
            }
            p if p == b"/v2/keys" || p.starts_with(b"/v2/keys/") => {
                let key = p[b"/v2/keys".len()..].to_vec();
                keys::endpoint(self, req, &key).await
            }
            p if p.starts_with(b"/v2/auth/") => auth::http::handle(self, req, p).await,
            _ => wire::text_error(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }
}
