//! Store paths: byte strings, rooted, cleaned as Go's `path.Clean` does
//! (`path.Clean(path.Join("/", p))`, from `ferret-gocompat`), and split and
//! joined by segment.

pub use ferret_gocompat::path::{clean_rooted as clean, is_clean_rooted as is_clean};

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
