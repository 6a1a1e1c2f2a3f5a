//! Revisions and their byte form.
//!
//! A revision is `(main, sub)`: every change of the key space made by one
//! log entry shares the entry's `main` revision, and the changes within it
//! count `sub` from 0. The backend keys its `kv` table by revision in
//! etcd's own byte form, so a table scan is a walk in revision order:
//!
//! ```text
//! offset size
//!      0    8  main, big-endian
//!      8    1  '_'
//!      9    8  sub, big-endian
//!     17    1  't', only for a tombstone (a deletion)
//! ```

use std::fmt;

/// Length of a revision key without the tombstone mark.
pub const REV_KEY_LEN: usize = 17;
/// Length of a revision key with the tombstone mark.
pub const TOMBSTONE_KEY_LEN: usize = 18;
const TOMBSTONE_MARK: u8 = b't';

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// The key of this revision in the backend's `kv` table.
    pub fn to_key(self, tombstone: bool) -> RevKey {
        let mut b = [0u8; TOMBSTONE_KEY_LEN];
        b[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        b[8] = b'_';
        b[9..17].copy_from_slice(&(self.sub as u64).to_be_bytes());
        if tombstone {
            b[17] = TOMBSTONE_MARK;
        }
        RevKey {
            bytes: b,
            len: if tombstone {
                TOMBSTONE_KEY_LEN as u8
            } else {
                REV_KEY_LEN as u8
            },
        }
    }

    /// Reads a backend key; `None` if it is not a revision key.
    pub fn from_key(k: &[u8]) -> Option<(Revision, bool)> {
        let tombstone = match k.len() {
            REV_KEY_LEN => false,
            TOMBSTONE_KEY_LEN if k[17] == TOMBSTONE_MARK => true,
            _ => return None,
        };
        if k[8] != b'_' {
            return None;
        }
        let main = u64::from_be_bytes(k[..8].try_into().ok()?) as i64;
        let sub = u64::from_be_bytes(k[9..17].try_into().ok()?) as i64;
        Some((Revision { main, sub }, tombstone))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.main, self.sub)
    }
}

/// A revision in its backend byte form, on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevKey {
    bytes: [u8; TOMBSTONE_KEY_LEN],
    len: u8,
}

impl RevKey {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for RevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Revision::from_key(self.as_bytes()) {
            Some((r, true)) => write!(f, "{r}t"),
            Some((r, false)) => write!(f, "{r}"),
            None => write!(f, "{:?}", self.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_revision_order_and_round_trip() {
        let revs = [
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(2, 0),
            Revision::new(256, 3),
        ];
        let keys: Vec<RevKey> = revs.iter().map(|r| r.to_key(false)).collect();
        for w in keys.windows(2) {
            assert!(w[0].as_bytes() < w[1].as_bytes());
        }
        for (r, k) in revs.iter().zip(&keys) {
            assert_eq!(Revision::from_key(k.as_bytes()), Some((*r, false)));
        }
        let t = Revision::new(5, 2).to_key(true);
        assert_eq!(t.as_bytes().len(), 18);
        assert_eq!(
            Revision::from_key(t.as_bytes()),
            Some((Revision::new(5, 2), true))
        );
        // etcd's exact bytes.
        assert_eq!(
            Revision::new(2, 1).to_key(false).as_bytes(),
            b"\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\x01"
        );
        assert_eq!(Revision::from_key(b"short"), None);
        assert_eq!(Revision::from_key(&[0u8; 17]), None);
    }
}
