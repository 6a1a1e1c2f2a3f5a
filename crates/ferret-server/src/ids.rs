//! Member and cluster ids, derived the way etcd 3.4 derives them.
//!
//! etcd does not pick ids at random for the members named in
//! `--initial-cluster`: every member computes the same ids from the
//! configuration, so a freshly bootstrapped cluster agrees on them without
//! talking first.
//!
//! * A member id is the first 8 bytes (big-endian) of the SHA-1 of the
//!   member's peer URLs, sorted as strings and concatenated with no
//!   separator, followed by the initial cluster token. A member added at
//!   runtime ([`new_member_id`]) gets the same hash with an empty token and
//!   the current Unix time in seconds, in decimal, appended.
//! * The cluster id is the first 8 bytes (big-endian) of the SHA-1 of all
//!   member ids, sorted ascending, each written as 8 big-endian bytes.
//!
//! Ids are shown as lowercase hexadecimal with no zero padding.

use sha1::{Digest, Sha1};

/// First eight bytes of a SHA-1 digest, read as a big-endian integer.
fn sha1_prefix_u64(data: &[u8]) -> u64 {
    let digest = Sha1::digest(data);
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head)
}

/// The id etcd gives a member of the initial cluster, from its peer URLs
/// (in any order; they are sorted here) and the initial cluster token.
///
/// The URLs must be spelled as etcd prints them (for instance
/// `http://127.0.0.1:2380`, with no trailing slash), since the text itself is
/// hashed.
pub fn member_id(peer_urls: &[String], cluster_token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut input = urls.concat().into_bytes();
    input.extend_from_slice(cluster_token.as_bytes());
    sha1_prefix_u64(&input)
}

/// The id etcd gives a member added at runtime (`membership.NewMember`
/// with the time): its peer URLs as [`member_id`] hashes them, then
/// `cluster_name` (empty for `member add`) and `unix_secs` in decimal.
pub fn new_member_id(peer_urls: &[String], cluster_name: &str, unix_secs: i64) -> u64 {
    member_id(peer_urls, &format!("{cluster_name}{unix_secs}"))
}

/// The cluster id etcd derives from the ids of the initial members (in any
/// order; they are sorted here).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let input: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    sha1_prefix_u64(&input)
}

/// An id as etcd prints it: lowercase hexadecimal, no `0x`, no padding.
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

/// Parses an id printed by [`format_id`] (or by etcd).
pub fn parse_id(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    // Every expected value below was read from a real etcd 3.4.23 started on
    // loopback with the given peer URLs and token: the member id from
    // GET /v2/members and the cluster id from the X-Etcd-Cluster-Id header.

    #[test]
    fn single_member_with_token() {
        let m = member_id(&urls(&["http://127.0.0.1:24380"]), "tok");
        assert_eq!(format_id(m), "8f59cd1760a9c05d");
        assert_eq!(format_id(cluster_id(&[m])), "a8237a807b5f9915");
    }

    #[test]
    fn single_member_default_token() {
        let m = member_id(&urls(&["http://127.0.0.1:2380"]), "etcd-cluster");
        assert_eq!(format_id(m), "b71f75320dc06a6c");
        assert_eq!(format_id(cluster_id(&[m])), "1c45a069f3a1d796");

        let m = member_id(&urls(&["http://127.0.0.1:22380"]), "etcd-cluster");
        assert_eq!(format_id(m), "9e737febb6b99eee");
        assert_eq!(format_id(cluster_id(&[m])), "c8730d66636ff140");
    }

    #[test]
    fn other_token_and_empty_token() {
        let m = member_id(&urls(&["http://127.0.0.1:24380"]), "my-etcd-token-1");
        assert_eq!(format_id(m), "38d8117f6780d143");
        assert_eq!(format_id(cluster_id(&[m])), "c7de8900fa9cc9a5");

        let m = member_id(&urls(&["http://127.0.0.1:24380"]), "");
        assert_eq!(format_id(m), "a608d5d936bf5d40");
        assert_eq!(format_id(cluster_id(&[m])), "3b078d676b804620");
    }

    #[test]
    fn member_with_two_peer_urls_in_any_order() {
        let a = member_id(
            &urls(&["http://127.0.0.1:24381", "http://127.0.0.1:24382"]),
            "tok",
        );
        let b = member_id(
            &urls(&["http://127.0.0.1:24382", "http://127.0.0.1:24381"]),
            "tok",
        );
        assert_eq!(a, b);
        assert_eq!(format_id(a), "ddfc1c41caff48c0");
        assert_eq!(format_id(cluster_id(&[a])), "ec43b3c1e4656d6f");
    }

    #[test]
    fn two_members_id_without_padding() {
        let n1 = member_id(&urls(&["http://127.0.0.1:22380"]), "etcd-cluster");
        let n2 = member_id(&urls(&["http://127.0.0.1:22381"]), "etcd-cluster");
        // 15 hex digits: etcd does not pad.
        assert_eq!(format_id(n2), "a4081436d7aba43");
        assert_eq!(format_id(cluster_id(&[n2, n1])), "205193874c4a26c5");
    }

    #[test]
    fn three_members() {
        let token = "tok3";
        let a = member_id(&urls(&["http://127.0.0.1:25380"]), token);
        let b = member_id(&urls(&["http://127.0.0.1:25381"]), token);
        let c = member_id(&urls(&["http://127.0.0.1:25382"]), token);
        assert_eq!(format_id(a), "37089a6bff97bf77");
        assert_eq!(format_id(b), "b19e3bc6ffe4dbb0");
        assert_eq!(format_id(c), "2bd3f47c34347c04");
        assert_eq!(format_id(cluster_id(&[a, b, c])), "f3efe31bf2331ef6");
        assert_eq!(format_id(cluster_id(&[c, a, b])), "f3efe31bf2331ef6");

        let token = "etcd-cluster";
        let a = member_id(&urls(&["http://127.0.0.1:25380"]), token);
        let b = member_id(&urls(&["http://127.0.0.1:25381"]), token);
        let c = member_id(&urls(&["http://127.0.0.1:25382"]), token);
        assert_eq!(format_id(a), "82039f3eee02bfb3");
        assert_eq!(format_id(b), "5b672873e362e5b1");
        assert_eq!(format_id(c), "b37359a8a46987c7");
        assert_eq!(format_id(cluster_id(&[a, b, c])), "e0ad55a625dc0a70");
    }

    #[test]
    fn format_and_parse() {
        assert_eq!(format_id(0), "0");
        assert_eq!(format_id(0xab), "ab");
        assert_eq!(format_id(u64::MAX), "ffffffffffffffff");
        assert_eq!(parse_id("a4081436d7aba43"), Some(0x0a40_8143_6d7a_ba43));
        assert_eq!(parse_id("xyz"), None);
    }
}
