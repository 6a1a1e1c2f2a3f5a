//! Go's `path.Clean`, and the cleaning `net/http`'s `ServeMux` applies to
//! request paths (which etcd's client library copies as
//! `pathutil.CanonicalURLPath`). Byte strings in, byte strings out; the
//! `_str` forms are the same functions for `&str`.

/// Go's `path.Clean`: no empty or `.` segments, `..` resolved (never above
/// the root of a rooted path, kept at the start of a relative one), no
/// trailing slash except for the root; `.` for an empty result.
pub fn clean(p: &[u8]) -> Vec<u8> {
    match p.first() {
        None => b".".to_vec(),
        Some(&first) => clean_segments(p, first == b'/'),
    }
}

/// [`clean`] of a `&str`.
pub fn clean_str(p: &str) -> String {
    into_string(clean(p.as_bytes()))
}

/// `path.Clean("/" + p)`: always rooted. This is how etcd's v2 store
/// cleans keys.
pub fn clean_rooted(p: &[u8]) -> Vec<u8> {
    clean_segments(p, true)
}

/// Whether `p` is its own [`clean_rooted`] (spares a copy on hot paths).
pub fn is_clean_rooted(p: &[u8]) -> bool {
    if p == b"/" {
        return true;
    }
    if p.first() != Some(&b'/') || p.last() == Some(&b'/') {
        return false;
    }
    p[1..]
        .split(|b| *b == b'/')
        .all(|seg| !matches!(seg, b"" | b"." | b".."))
}

/// `net/http`'s `cleanPath` (etcd's `pathutil.CanonicalURLPath`): rooted,
/// cleaned, a trailing slash kept.
pub fn clean_url_path(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b"/".to_vec();
    }
    let mut np = clean_rooted(p);
    if p.ends_with(b"/") && np != b"/" {
        np.push(b'/');
    }
    np
}

/// [`clean_url_path`] of a `&str`.
pub fn clean_url_path_str(p: &str) -> String {
    into_string(clean_url_path(p.as_bytes()))
}

/// Go's algorithm, segment by segment. `floor` is how much of `out` is
/// leading `..` segments of a relative path, which no later `..` removes.
fn clean_segments(p: &[u8], rooted: bool) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len() + 1);
    let mut floor = 0;
    for seg in p.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if out.len() > floor {
                    let cut = out[floor..]
                        .iter()
                        .rposition(|b| *b == b'/')
                        .map_or(floor, |i| floor + i);
                    out.truncate(cut);
                } else if !rooted {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(b"..");
                    floor = out.len();
                }
            }
            _ => {
                if rooted || !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(seg);
            }
        }
    }
    if out.is_empty() {
        out.push(if rooted { b'/' } else { b'.' });
    }
    out
}

fn into_string(b: Vec<u8>) -> String {
    // Cleaning cuts valid UTF-8 only at '/', so it stays valid.
    String::from_utf8(b).expect("a cleaned str is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's own table for `path.Clean` (src/path/path_test.go).
    #[test]
    fn clean_like_go() {
        let cases: &[(&str, &str)] = &[
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("/../a/./b/..", "/a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_str(input), *want, "clean({input:?})");
        }
    }

    #[test]
    fn clean_rooted_is_clean_of_slash_plus() {
        let cases: &[(&str, &str)] = &[
            ("", "/"),
            ("/", "/"),
            ("a", "/a"),
            ("/a/", "/a"),
            ("//a//b/", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../a", "/a"),
            ("../a", "/a"),
            ("/a/b/..", "/a"),
            ("/1/foo/", "/1/foo"),
        ];
        for (input, want) in cases {
            assert_eq!(
                clean_rooted(input.as_bytes()),
                want.as_bytes(),
                "clean_rooted({input:?})"
            );
            assert!(is_clean_rooted(want.as_bytes()));
        }
        assert!(!is_clean_rooted(b"/a/"));
        assert!(!is_clean_rooted(b"/a//b"));
        assert!(!is_clean_rooted(b"/a/./b"));
        assert!(!is_clean_rooted(b"a"));
        // Bytes that are not UTF-8 are just bytes.
        assert_eq!(clean_rooted(b"/a/\xff/../b"), b"/a/b");
    }

    #[test]
    fn url_paths_keep_their_trailing_slash() {
        assert_eq!(clean_url_path(b""), b"/");
        assert_eq!(clean_url_path(b"/v2/keys/a/"), b"/v2/keys/a/");
        assert_eq!(clean_url_path(b"/v2//keys/../a"), b"/v2/a");
        assert_eq!(clean_url_path(b"/.."), b"/");
        assert_eq!(clean_url_path(b"/../"), b"/");
        assert_eq!(clean_url_path_str("foo//bar/"), "/foo/bar/");
    }
}
