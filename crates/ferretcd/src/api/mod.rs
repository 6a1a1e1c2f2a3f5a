//! The client APIs. [`http`] is the one client listener and what every
//! HTTP endpoint shares (response bodies, form parsing, the table from
//! errors to HTTP); [`v2`] is etcd's v2 HTTP API (keys, members, stats,
//! auth) and its route table; [`v3`] is etcd's v3 API over gRPC;
//! [`context`] is what every handler is given.
//! Dependencies go one way: `v2` uses `http` and `context`, `http` knows
//! no endpoint.

pub mod context;
pub mod http;
pub mod v2;
pub mod v3;
