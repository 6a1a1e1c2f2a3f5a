//! What ferretcd's test suites share, written once: free loopback ports
//! ([`ports`]), temporary directories ([`dir`]), child processes that are
//! killed and reaped when dropped, also during a panic ([`process`]),
//! finding the binaries under test and the reference etcd ([`bin`]), one
//! member of ferretcd or etcd ([`server`]), a multi-member process cluster
//! ([`cluster`]), a raw HTTP/1.1 client that sends requests byte for
//! byte as given ([`http`]), and test certificates: a CA, server and
//! client certificates, expired ones and CRLs, as PEM files ([`certs`]),
//! and a headless Chromium driven over WebDriver for the dashboard's
//! browser tests ([`browser`]).
//!
//! Every process a test starts through this crate is stopped by a `Drop`
//! guard. What is particular to one suite (corpora, normalisation,
//! readiness rules of its own) stays in that suite.
//!
//! Used only by tests (as a dev-dependency) and by the fault-injection
//! tool `ferret-jepsen`, which is a test suite itself.

pub mod bin;
pub mod browser;
pub mod certs;
pub mod cluster;
pub mod dir;
pub mod http;
pub mod ports;
pub mod process;
pub mod server;
