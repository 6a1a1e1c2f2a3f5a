//! Support for the v3 (gRPC) tests: `v3_differential.rs` and
//! `v3_clients.rs`.
//!
//! - `server`: starting the reference etcd and the candidate (thin; meant
//!   to move into the shared test-kit crate);
//! - `corpus`: the corpus format of tests/corpus_v3 (parser, variables);
//! - `request`: corpus requests to protobuf messages;
//! - `render`: responses to normalised text;
//! - `runner`: runs a corpus file against two servers and compares;
//! - `coordination`: the Lock and Election scenario;
//! - `auth`: the v3 auth scenario.
#![allow(dead_code)]

pub mod auth;
pub mod coordination;
pub mod corpus;
pub mod gateway;
pub mod membership;
pub mod render;
pub mod request;
pub mod runner;
pub mod server;

/// A tokio runtime on two threads (the machine's two cores are shared).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The candidate to compare with (from `FERRET_DIFF_TARGET` /
/// `FERRET_DIFF_CANDIDATE`; `FERRET_DIFF_TARGET=etcd` compares etcd with a
/// second etcd, which validates the harness and its corpus).
pub fn candidate(_test: &str, etcd: &std::path::Path) -> Option<server::Target> {
    Some(server::Target::from_env(
        etcd,
        std::path::Path::new(env!("CARGO_BIN_EXE_ferretcd")),
    ))
}

/// Starts the reference and the candidate at once, with the same flags.
pub fn start_pair(
    etcd: &std::path::Path,
    target: &server::Target,
    flags: &[String],
) -> (server::Server, server::Server) {
    let (r, c) = std::thread::scope(|s| {
        let r = s.spawn(|| server::Server::start("etcd", etcd, flags));
        let c = s.spawn(|| target.start(flags));
        (r.join().unwrap(), c.join().unwrap())
    });
    let r = r.unwrap_or_else(|e| panic!("the reference failed to start: {e}"));
    let c = c.unwrap_or_else(|e| panic!("the candidate failed to start: {e}"));
    (r, c)
}
