//! The client APIs. [`http`] is the one client listener and what every
//! HTTP endpoint shares (response bodies, form parsing, the table from
//! errors to HTTP); [`v2`] is etcd's v2 HTTP API (keys, members, stats,
//! auth) and its route table; [`v3`] is etcd's v3 API over gRPC;
//! [`gateway`] is etcd's JSON gateway to it (`/v3/...`), a gRPC client of
//! the member's own listener; [`context`] is what every handler is given;
//! [`metrics`] serves `/metrics`, `/livez` and `/readyz`, and the
//! `--listen-metrics-urls` listener's routes; [`ui`] serves the
//! dashboard's static files at `/ui/`.
//! Dependencies go one way: `v2` uses `http`, `gateway`, `metrics` and
//! `context`, `metrics` uses `http` and `v2::info` (`/health`),
//! `gateway` uses `http`, `http` knows no endpoint.

pub mod context;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod ui;
pub mod v2;
pub mod v3;
