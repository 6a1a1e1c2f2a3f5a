//! Where the v3 workloads write: every key under one prefix.

use bytes::Bytes;

/// Every key the v3 workloads write starts with this.
pub const PREFIX: &str = "/jepsen3/";
/// Under [`PREFIX`]: the set's keys, the batch writer's, the leased keys.
pub const SET: &str = "set/";
pub const BATCH: &str = "batch/";
pub const LEASES: &str = "lease/";
/// How many register keys.
pub const REGISTERS: usize = 3;

/// The register keys.
pub fn register_key(k: usize) -> String {
    format!("{PREFIX}r{k}")
}

/// The end of the range of keys starting with `prefix` (its last byte + 1).
pub fn prefix_end(prefix: &str) -> Bytes {
    let mut b = prefix.as_bytes().to_vec();
    let last = b.last_mut().expect("a non-empty prefix");
    assert!(
        *last < 0xff,
        "the prefix ends in a byte that can be incremented"
    );
    *last += 1;
    Bytes::from(b)
}
