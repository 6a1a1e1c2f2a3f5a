//! Store paths: byte strings, rooted, cleaned as Go's `path.Clean` does.

/// `path.Clean(path.Join("/", p))`: rooted, no empty or `.` segments, `..`
/// resolved (never above the root), no trailing slash except for the root.
pub fn clean(p: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len() + 1);
    for seg in p.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if let Some(pos) = out.iter().rposition(|b| *b == b'/') {
                    out.truncate(pos);
                }
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(seg);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Whether a cleaned path is already clean (avoids a copy on the hot path).
pub fn is_clean(p: &[u8]) -> bool {
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

/// Splits a cleaned path into (parent, name): `/a/b` → (`/a`, `b`),
/// `/a` → (`/`, `a`).
pub fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let pos = p.iter().rposition(|b| *b == b'/').unwrap_or(0);
    let parent = if pos == 0 { &p[..1] } else { &p[..pos] };
    (parent, &p[pos + 1..])
}

/// Joins a cleaned directory path and a child name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if dir != b"/" {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// The segments of a cleaned path (none for the root).
pub fn segments(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|b| *b == b'/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        let cases: &[(&str, &str)] = &[
            ("", "/"),
            ("/", "/"),
            ("a", "/a"),
            ("/a/", "/a"),
            ("//a//b/", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../a", "/a"),
            ("/a/b/..", "/a"),
            ("/1/foo/", "/1/foo"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "clean({input:?})");
            assert!(is_clean(want.as_bytes()));
        }
        assert!(!is_clean(b"/a/"));
        assert!(!is_clean(b"/a//b"));
        assert!(!is_clean(b"a"));
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split(b"/a/b"), (&b"/a"[..], &b"b"[..]));
        assert_eq!(split(b"/a"), (&b"/"[..], &b"a"[..]));
        assert_eq!(join(b"/", b"a"), b"/a");
        assert_eq!(join(b"/a", b"b"), b"/a/b");
        assert_eq!(segments(b"/").count(), 0);
        assert_eq!(
            segments(b"/a/b").collect::<Vec<_>>(),
            vec![&b"a"[..], &b"b"[..]]
        );
    }
}
