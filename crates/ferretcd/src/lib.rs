//! ferretcd: an etcd-compatible, strongly consistent key-value store.
//!
//! Layers, each depending only on the ones below it:
//! - [`api`]: the client HTTP API (v2 keys, members, stats, health).
//! - [`auth`]: etcd's v2 auth (users, roles, access checks), kept in the
//!   v2 store and served under `/v2/auth`.
//! - [`server`]: the server core: the log that orders writes, the apply
//!   path, the state machines (the v2 store from `ferret-store`).
//! - [`config`] and [`ids`]: etcd's flags and etcd's member/cluster ids.

pub mod api;
pub mod auth;
pub mod config;
pub mod ids;
pub mod server;
