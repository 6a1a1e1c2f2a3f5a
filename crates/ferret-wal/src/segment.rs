//! Segment file names and directory listing.

use std::fs;
use std::path::{Path, PathBuf};

use crate::WalError;

pub(crate) const SEGMENT_SUFFIX: &str = ".wal";
/// A segment is written under this suffix, fsynced, then renamed: a file
/// with the `.wal` suffix is always complete, and a leftover `.tmp` is an
/// interrupted rotation that `open` removes.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// `{seq:016x}-{first_index:016x}.wal`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub seq: u64,
    pub first_index: u64,
    pub path: PathBuf,
}

impl Segment {
    pub fn new(dir: &Path, seq: u64, first_index: u64) -> Self {
        Segment {
            seq,
            first_index,
            path: dir.join(file_name(seq, first_index)),
        }
    }

    pub fn tmp_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(TMP_SUFFIX);
        PathBuf::from(name)
    }
}

pub(crate) fn file_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}{SEGMENT_SUFFIX}")
}

fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `(seq, first_index)` from a segment file name; `None` for other names.
pub(crate) fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    let (seq, first) = stem.split_once('-')?;
    Some((parse_hex16(seq)?, parse_hex16(first)?))
}

#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Sorted by sequence number.
    pub segments: Vec<Segment>,
    /// Leftovers of interrupted rotations.
    pub tmp_files: Vec<PathBuf>,
}

pub(crate) fn list(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("read dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::debug!(dir = %dir.display(), "ignoring a file with a non-UTF-8 name");
            continue;
        };
        if let Some((seq, first_index)) = parse_name(name) {
            listing.segments.push(Segment {
                seq,
                first_index,
                path: entry.path(),
            });
        } else if name
            .strip_suffix(TMP_SUFFIX)
            .is_some_and(|stem| parse_name(stem).is_some())
        {
            listing.tmp_files.push(entry.path());
        } else {
            tracing::debug!(file = %entry.path().display(), "ignoring a file that is not a WAL segment");
        }
    }
    listing.segments.sort_by_key(|s| s.seq);
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = file_name(0x1f, 0xabc);
        assert_eq!(n, "000000000000001f-0000000000000abc.wal");
        assert_eq!(parse_name(&n), Some((0x1f, 0xabc)));
        assert_eq!(
            parse_name("000000000000001f-0000000000000abc.wal.tmp"),
            None
        );
        assert_eq!(parse_name("1f-abc.wal"), None);
        assert_eq!(parse_name("000000000000001g-0000000000000abc.wal"), None);
        assert_eq!(parse_name("+00000000000001f-0000000000000abc.wal"), None);
    }
}
