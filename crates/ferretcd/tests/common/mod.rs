//! Shared support for ferretcd's integration tests: a raw HTTP client,
//! an order-preserving JSON reader, server process management and the
//! differential corpus machinery.
#![allow(dead_code)]

pub mod cluster;
pub mod corpus;
pub mod http;
pub mod json;
pub mod normalize;
pub mod server;
