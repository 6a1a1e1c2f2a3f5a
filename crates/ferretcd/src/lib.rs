//! ferretcd: an etcd-compatible, strongly consistent key-value store.
//!
//! Layers, each depending only on the ones below it:
//! - [`api`]: the client HTTP API (v2 keys, members, stats, health).
//! - [`server`]: the server core: the log that orders writes, the apply
//!   path, the state machines (the v2 store from `ferret-store`).
//! - [`config`] and [`ids`]: etcd's flags and etcd's member/cluster ids.

pub mod api;
pub mod config;
pub mod ids;
pub mod server;
