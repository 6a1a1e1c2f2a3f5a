//! Support for ferretcd's integration tests: the differential corpus
//! machinery (corpus, an order-preserving JSON reader, normalisation, the
//! servers under comparison). Processes, ports, clusters and the raw HTTP
//! client come from `ferret-testkit`.
#![allow(dead_code)]

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use ferret_testkit::{cluster, http};

pub mod corpus;
pub mod json;
pub mod normalize;
pub mod server;
