//! The server core of a ferretcd member: the state machines, the Raft log
//! that orders writes into them, the peer transport, and the handle the
//! client APIs use.
//!
//! The API layers never touch the store directly for writes: they build a
//! request, [`Server::propose`] it and wait for the outcome, which
//! arrives only after the entry is committed (durable on a quorum) and
//! applied. Local reads take the state lock briefly; linearizable reads
//! first pass [`Server::read_barrier`] (Raft ReadIndex); watches register a
//! sink in the store's hub.
//!
//! The public API is what the binary and the client APIs need: the handle
//! and its configuration, the log entry formats and outcomes, the state
//! machines, ids, the clock and the errors (re-exported below). Modules,
//! each depending only on the ones listed before it:
//! - [`ids`]: member and cluster ids, derived as etcd derives them.
//! - `clock`: the wall clock; only this layer reads it.
//! - [`entry`]: the formats: log entries (etcd's `InternalRaftRequest`),
//!   WAL metadata and snapshot payloads, versioned.
//! - [`apply`]: the state machines (v2 store, v3 store) and applying an
//!   entry to them.
//! - `raft_log`: raft-rs's `Storage` over the in-memory log.
//! - `inbox`: the Ready loop's bounded input queue, which wakes its poller.
//! - `peer_request`: lease queries a follower forwards to the leader, and
//!   their answers (the leader answers from its lessor).
//! - `peer_tls`: a peer connection's bytes, plain or under TLS (rustls),
//!   and which URLs and listeners speak TLS.
//! - `transport`: the peer streams, driven by the Raft thread, and the
//!   peer wire format (message streams and snapshot streams, to the byte).
//! - `snapshot_stream`: sending and receiving a snapshot (v2 store and v3
//!   backend) on a connection of its own, on threads of their own.
//! - `shared`: what the loop and the handles share; answers and errors.
//! - `raft_node`: the Ready loop.
//! - `server`: the [`Server`] handle: start, propose, read barrier, state.
//! - [`compactor`]: automatic compaction, proposed by the leader.

pub mod apply;
mod clock;
pub mod compactor;
pub mod entry;
pub mod ids;
mod inbox;
pub mod membership;
pub mod migrate;
mod peer_request;
pub mod peer_tls;
mod purge;
mod raft_log;
mod raft_node;
mod server;
mod shared;
mod snapshot_stream;
mod transport;

pub use apply::CLUSTER_VERSION;
pub use apply::{Applied, StateMachines, KEYS_PREFIX};
pub use clock::now_ns;
pub use entry::{InitialMember, WalMetadata};
pub use membership::Member;
pub use peer_tls::{PeerAddr, PeerTls};
pub use raft_node::StartError;
pub use server::{LeaseTtl, RenewOutcome, Server, ServerConfig, V3Settings};
pub use shared::{FollowerStats, Identity, LogPosition, ServerError};
pub use transport::TransportStats;
