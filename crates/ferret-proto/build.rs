//! Compiles etcd 3.4's .proto files and ferretcd's own into Rust (prost
//! messages, tonic clients and servers). `protox` parses the files, so no
//! `protoc` binary is needed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "etcd/etcdserver/etcdserverpb/rpc.proto",
    "etcd/etcdserver/etcdserverpb/raft_internal.proto",
    "etcd/etcdserver/etcdserverpb/etcdserver.proto",
    "etcd/mvcc/mvccpb/kv.proto",
    "etcd/auth/authpb/auth.proto",
    "etcd/lease/leasepb/lease.proto",
    "etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto",
    "etcd/etcdserver/api/v3election/v3electionpb/v3election.proto",
    "ferretcd/ferretpb.proto",
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("proto");
    let fds = protox::compile(PROTOS, [&root]).expect("the .proto files compile");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(
        out.join("file_descriptor_set.bin"),
        prost::Message::encode_to_vec(&fds),
    )
    .unwrap();
    tonic_prost_build::configure()
        // Keys and values as `bytes::Bytes`: a value fanned out to many
        // watchers, or cached between the store and a response, is shared,
        // not copied.
        .bytes(".")
        // Buffers that start at 1 KiB, not tonic's 8 KiB (src/codec.rs).
        .codec_path("crate::codec::SmallBufferCodec")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)
        .expect("code generation");
    println!("cargo:rerun-if-changed=proto");
}
