//! Go's `net/url` escaping: what etcd's server decodes and what etcd's
//! client library encodes.

use crate::strconv::quote;

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte. A bad escape is
/// Go's `invalid URL escape "%zz"` (at most three bytes quoted).
pub fn query_unescape(s: impl AsRef<[u8]>) -> Result<Vec<u8>, String> {
    unescape(s.as_ref(), true)
}

/// Go's `url.PathUnescape` as applied to a request path (`+` stays `+`).
pub fn path_unescape(s: impl AsRef<[u8]>) -> Result<Vec<u8>, String> {
    unescape(s.as_ref(), false)
}

fn unescape(s: &[u8], plus_is_space: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        let bad = &s[i..(i + 3).min(s.len())];
                        return Err(format!("invalid URL escape {}", quote(bad)));
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn escape(s: &[u8], keep: &[u8], space_as_plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `url.URL.EscapedPath` of a path it built itself (no raw form):
/// letters, digits and `-_.~$&+,/:;=@` as they are, every other byte as
/// `%XX`. This is also the `Location` of `ServeMux`'s redirects.
pub fn escape_path(p: impl AsRef<[u8]>) -> String {
    escape(p.as_ref(), b"-_.~$&+,/:;=@", false)
}

/// Go's `url.QueryEscape`: letters, digits and `-_.~` as they are, space
/// as `+`, every other byte as `%XX`.
pub fn escape_query(s: impl AsRef<[u8]>) -> String {
    escape(s.as_ref(), b"-_.~", true)
}

/// Go's `url.Values.Encode`: keys sorted (stably), each `key=value`
/// query-escaped, joined by `&`.
pub fn encode_values(pairs: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", escape_query(k), escape_query(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_as_go() {
        assert_eq!(query_unescape("a+b%21").unwrap(), b"a b!");
        assert_eq!(path_unescape("a+b%2f").unwrap(), b"a+b/");
        assert_eq!(
            query_unescape("x%zz").unwrap_err(),
            "invalid URL escape \"%zz\""
        );
        assert_eq!(
            query_unescape("%4").unwrap_err(),
            "invalid URL escape \"%4\""
        );
        assert_eq!(
            query_unescape(b"%\x07").unwrap_err(),
            "invalid URL escape \"%\\a\""
        );
        assert_eq!(
            query_unescape(b"%\xff").unwrap_err(),
            "invalid URL escape \"%\\xff\""
        );
    }

    #[test]
    fn escapes_as_go() {
        assert_eq!(escape_path("/v2/keys/a b!"), "/v2/keys/a%20b%21");
        // etcd 3.4's redirect: Location: /v2/keys/a%21b%27c%28d%29e%2Af
        assert_eq!(
            escape_path(b"/v2/keys/a!b'c(d)e*f"),
            "/v2/keys/a%21b%27c%28d%29e%2Af"
        );
        assert_eq!(escape_path("/$&+,:;=@~"), "/$&+,:;=@~");
        assert_eq!(escape_path(b"/\xff?"), "/%FF%3F");
        assert_eq!(escape_query("a b&c/"), "a+b%26c%2F");
        assert_eq!(
            encode_values(&[("value", "a b&c".into()), ("ttl", "5".into())]),
            "ttl=5&value=a+b%26c"
        );
    }
}
