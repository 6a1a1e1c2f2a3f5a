//! The wire and storage formats of ferretcd.
//!
//! - [`etcdserverpb`], [`mvccpb`], [`authpb`], [`leasepb`], [`v3lockpb`],
//!   [`v3electionpb`]: etcd 3.4's API, generated from its own `.proto`
//!   files (`proto/etcd`), with tonic clients and servers. Every `bytes`
//!   field is a [`bytes::Bytes`].
//! - [`ferretpb`]: ferretcd's own versioned envelopes (`proto/ferretcd`).
//! - A log entry's data is etcd's [`etcdserverpb::InternalRaftRequest`].
//!
//! Generated code is not checked in: `build.rs` compiles the files with
//! `protox` (no `protoc` needed).

#![allow(clippy::all, clippy::pedantic)]

pub mod codec;
pub mod cork;

pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}
pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
}
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}
pub mod leasepb {
    include!(concat!(env!("OUT_DIR"), "/leasepb.rs"));
}
pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
}
pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
}
pub mod ferretpb {
    include!(concat!(env!("OUT_DIR"), "/ferretpb.rs"));
}
/// The `google.api` option types etcd's files import (`gogoproto` defines
/// only extensions, which prost leaves out).
pub mod google {
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
}

/// Every compiled file as a `FileDescriptorSet` (encoded), options
/// included: the grpc-gateway routes are the `google.api.http` options.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

pub use prost::Message;
