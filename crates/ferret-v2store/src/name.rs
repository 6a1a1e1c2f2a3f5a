//! `Name`: one path segment, the key of a directory's children map.
//!
//! Short names (the usual case) are stored inline, so the B-tree compares
//! them without following a pointer. With `Box<[u8]>` keys every comparison
//! of a lookup was a likely cache miss: in a directory of 100,000 keys, a
//! lookup costs about 30 comparisons, and `Store::lookup` was a sixth of a
//! loaded follower's Raft-thread CPU (perf, BENCHMARKS.md). Names compare,
//! hash and borrow exactly as the byte strings they hold.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Bytes held inline; 22 keeps a `Name` at 24 bytes, the size of the
/// `Box<[u8]>` it replaces plus its allocation header.
const INLINE: usize = 22;

#[derive(Clone)]
pub(crate) enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Name {
    pub(crate) fn new(s: &[u8]) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s);
            Name::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(s.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..*len as usize],
            Name::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for Name {
    fn from(s: &[u8]) -> Name {
        Name::new(s)
    }
}

impl Deref for Name {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_name_is_as_small_as_the_box_it_replaces_with_its_header() {
        assert_eq!(std::mem::size_of::<Name>(), 24);
    }

    #[test]
    fn names_order_and_compare_as_their_bytes() {
        let samples: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"ab".to_vec(),
            vec![b'x'; INLINE - 1],
            vec![b'x'; INLINE],
            vec![b'x'; INLINE + 1],
            [vec![b'x'; INLINE], vec![0]].concat(),
            vec![0xff; 40],
            b"00012345".to_vec(),
        ];
        for a in &samples {
            assert_eq!(Name::new(a).as_bytes(), a.as_slice());
            assert_eq!(Name::from(a.as_slice()).as_bytes(), &a[..]);
            for b in &samples {
                assert_eq!(Name::new(a).cmp(&Name::new(b)), a.cmp(b), "{a:?} {b:?}");
                assert_eq!(Name::new(a) == Name::new(b), a == b);
            }
        }
        let map: BTreeMap<Name, usize> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| (Name::new(s), i))
            .collect();
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(map.get(s.as_slice()), Some(&i));
        }
        let mut sorted = samples.clone();
        sorted.sort();
        let keys: Vec<&[u8]> = map.keys().map(|k| k.as_bytes()).collect();
        assert_eq!(
            keys,
            sorted.iter().map(|s| s.as_slice()).collect::<Vec<_>>()
        );
    }
}
