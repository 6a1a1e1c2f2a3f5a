//! ferretcd: an etcd-compatible, strongly consistent key-value store.
//!
//! This crate is the `ferretcd` program around the server core
//! (`ferret-server`): the client APIs ([`api`]) and etcd's flags
//! ([`config`]). Layers, each depending only on the ones below it:
//! - [`api`]: the client listener ([`api::http`]: HTTP/1.1, and HTTP/2
//!   handed to gRPC), etcd's v2 API ([`api::v2`]: keys, members, stats,
//!   health, v2 auth) and its v3 gRPC services ([`api::v3`]: KV, Watch,
//!   Lease, Maintenance's alarms).
//! - [`corrupt`]: etcd's corruption checks (at start, and the leader's
//!   periodic one), from the members' `HashKV`.
//! - [`config`]: etcd's flags, environment variables and config file.
//! - [`logging`]: etcd's two log shapes (capnslog lines, zap's JSON), the
//!   start-up lines tools wait for; [`systemd`]: `READY=1` for systemd.
//! - `ferret_server`: the log that orders writes, the apply path, the state
//!   machines (the v2 store from `ferret-v2store`, the v3 store from
//!   `ferret-mvcc`).

pub mod api;
pub mod config;
pub mod corrupt;
pub mod logging;
pub mod systemd;
