//! etcd's v3 API over gRPC: one module per service.
//!
//! - [`kv`]: `etcdserverpb.KV`; [`watch`]: `etcdserverpb.Watch`;
//!   [`lease`]: `etcdserverpb.Lease`; [`maintenance`]: `Alarm` and
//!   `Status` of `etcdserverpb.Maintenance`; [`cluster`]: `MemberList` of
//!   `etcdserverpb.Cluster`; [`lock`]: `v3lockpb.Lock`; [`election`]:
//!   `v3electionpb.Election`, both built of [`concurrency`]'s steps over
//!   the KV, Lease and watch handlers, as etcd builds them of its client.
//! - [`auth`]: `etcdserverpb.Auth`; [`token`]: simple and JWT tokens.
//! - [`validate`]: etcd's request checks; [`quota`]: write costs against
//!   `--quota-backend-bytes`; [`error`]: the one table from errors to
//!   gRPC statuses.
//! - [`handle`]: what every service holds (the server, the settings) and
//!   the steps they share; [`service`]: the services behind one fallback:
//!   the methods ferretcd does not serve yet (of Maintenance) answer `UNIMPLEMENTED` with a
//!   message naming the method, as
//!   does any unknown path: never a dropped connection; `limit`: the
//!   request message limit, with grpc-go's status and text; [`metered`]:
//!   the gRPC metrics (calls started and handled, bytes), recorded as
//!   calls pass the service.

pub mod auth;
pub mod cluster;
pub mod concurrency;
pub mod election;
pub mod error;
pub mod handle;
pub mod kv;
pub mod lease;
mod limit;
pub mod lock;
pub mod maintenance;
pub mod metered;
pub mod quota;
pub mod service;
pub mod token;
pub mod validate;
pub mod watch;

pub use handle::{progress_interval, V3Config, GRPC_OVERHEAD_BYTES, V3};
pub use service::{service, Grpc};
