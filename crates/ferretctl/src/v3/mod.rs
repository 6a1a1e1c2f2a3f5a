//! etcdctl v3 (`ETCDCTL_API=3`, the default of etcdctl 3.4): the command
//! tree, flags and help of Debian's etcdctl 3.4.23, speaking etcd's gRPC
//! API.
//!
//! Code map:
//! - `cli`: cobra's command tree and pflag's flags, etcdctl's help.

pub mod cli;

/// The etcdctl version ferretctl answers to.
pub const VERSION: &str = "3.4.23";
/// The API version etcdctl 3.4 prints.
pub const API_VERSION: &str = "3.4";
