//! etcd's v3 API over gRPC: one module per service.
//!
//! - [`kv`]: `etcdserverpb.KV`; [`watch`]: `etcdserverpb.Watch`;
//!   [`lease`]: `etcdserverpb.Lease`; [`maintenance`]: `Alarm` of
//!   `etcdserverpb.Maintenance`.
//! - [`validate`]: etcd's request checks; [`quota`]: write costs against
//!   `--quota-backend-bytes`; [`error`]: the one table from errors to
//!   gRPC statuses.
//! - [`handle`]: what every service holds (the server, the settings) and
//!   the steps they share; [`service`]: the services behind one fallback:
//!   those ferretcd does not serve yet (Cluster, Maintenance, Auth, Lock,
//!   Election) answer `UNIMPLEMENTED` with a message naming the method, as
//!   does any unknown path: never a dropped connection; `limit`: the
//!   request message limit, with grpc-go's status and text.

pub mod error;
pub mod handle;
pub mod kv;
pub mod lease;
mod limit;
pub mod maintenance;
pub mod quota;
pub mod service;
pub mod validate;
pub mod watch;

pub use handle::{progress_interval, V3Config, GRPC_OVERHEAD_BYTES, V3};
pub use service::{service, Grpc};
