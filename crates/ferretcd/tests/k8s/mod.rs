//! Support for `k8s_style.rs`: etcd used as kube-apiserver uses it.
//!
//! - `client`: per-member gRPC channels and the failover rule;
//! - `history`: what clients did and were told, the unique values;
//! - `writer`: Create / GuaranteedUpdate / Delete on `/registry/...`;
//! - `list`: paginated lists at a fixed revision, and the lister;
//! - `watch`: reflectors (list, then watch from the next revision,
//!   resume after errors, list again after a compaction);
//! - `lease`: event keys with leases, kept alive or left to expire;
//! - `compactor`: kube-apiserver's compactor;
//! - `faults`: kill -9 and restart, one member at a time;
//! - `check`: the checks made after the run;
//! - `rng`: the seeded schedule.

pub mod check;
pub mod client;
pub mod compactor;
pub mod faults;
pub mod history;
pub mod lease;
pub mod list;
pub mod rng;
pub mod watch;
pub mod writer;
