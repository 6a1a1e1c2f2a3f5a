//! etcd's snapshot file: a bbolt database followed by the 32-byte
//! SHA-256 of the database's bytes.
//!
//! `etcdctl snapshot save` appends the hash; `etcdctl snapshot restore`
//! takes a file whose size is 32 more than a multiple of 512 to carry one
//! (a bbolt file is whole pages, and pages are multiples of 512), checks
//! it and cuts it off; any other size has no hash, which restore accepts
//! only with `--skip-hash-check`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::reader::{Db, FileSource};

/// The length of the trailer.
pub const SHA256_LEN: usize = 32;

/// Whether a snapshot of `len_bytes` carries a SHA-256 trailer, by
/// etcd's rule (`hasChecksum`: size % 512 == 32).
pub fn has_sha256_trailer(len_bytes: u64) -> bool {
    len_bytes % 512 == SHA256_LEN as u64
}

/// The SHA-256 of everything `reader` yields.
pub fn sha256_of(mut reader: impl Read) -> io::Result<[u8; SHA256_LEN]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// Hashes `file` from its start to its end and appends the hash, making
/// a finished database an etcd snapshot; returns the hash.
pub fn append_sha256<F: Read + Write + Seek>(file: &mut F) -> Result<[u8; SHA256_LEN], Error> {
    file.seek(SeekFrom::Start(0))?;
    let hash = sha256_of(&mut *file)?;
    file.seek(SeekFrom::End(0))?;
    file.write_all(&hash)?;
    file.flush()?;
    Ok(hash)
}

/// Checks and strips the trailer of a snapshot in memory, as etcdctl
/// restore does: returns the database's bytes. A file without a trailer
/// is [`Error::MissingSha256`] (the caller may still open it as a plain
/// bbolt file), a wrong hash [`Error::Sha256Mismatch`].
pub fn strip_sha256(snapshot: &[u8]) -> Result<&[u8], Error> {
    let len_bytes = snapshot.len() as u64;
    if !has_sha256_trailer(len_bytes) {
        return Err(Error::MissingSha256 { len_bytes });
    }
    let (db, stored) = snapshot.split_at(snapshot.len() - SHA256_LEN);
    let computed: [u8; SHA256_LEN] = Sha256::digest(db).into();
    compare(stored, &computed)?;
    Ok(db)
}

/// [`strip_sha256`] for a file: checks the trailer and returns the
/// database's length, for [`crate::FileSource::with_len`].
pub fn verify_sha256_file(file: &mut File) -> Result<u64, Error> {
    let len_bytes = file.metadata()?.len();
    if !has_sha256_trailer(len_bytes) {
        return Err(Error::MissingSha256 { len_bytes });
    }
    let db_len_bytes = len_bytes - SHA256_LEN as u64;
    file.seek(SeekFrom::Start(0))?;
    let computed = sha256_of((&mut *file).take(db_len_bytes))?;
    let mut stored = [0u8; SHA256_LEN];
    file.read_exact(&mut stored)?;
    compare(&stored, &computed)?;
    Ok(db_len_bytes)
}

/// Opens an etcd snapshot file for reading after checking its trailer
/// ([`verify_sha256_file`]); the database is the file less the trailer.
/// A file without a trailer is [`Error::MissingSha256`]: open it with
/// `Db::open(FileSource::new(file)?)` if that is acceptable.
pub fn open_snapshot_file(mut file: File) -> Result<Db<FileSource>, Error> {
    let db_len_bytes = verify_sha256_file(&mut file)?;
    Db::open(FileSource::with_len(file, db_len_bytes))
}

fn compare(stored: &[u8], computed: &[u8; SHA256_LEN]) -> Result<(), Error> {
    if stored == computed {
        return Ok(());
    }
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Err(Error::Sha256Mismatch {
        stored: hex(stored),
        computed: hex(computed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_is_checked_and_stripped() {
        let db = vec![7u8; 1024];
        let mut file = io::Cursor::new(db.clone());
        let hash = append_sha256(&mut file).unwrap();
        let snapshot = file.into_inner();
        assert_eq!(snapshot.len(), 1024 + SHA256_LEN);
        assert_eq!(&snapshot[1024..], &hash);
        assert_eq!(strip_sha256(&snapshot).unwrap(), &db[..]);

        let mut bad = snapshot.clone();
        bad[3] ^= 1;
        assert!(matches!(
            strip_sha256(&bad),
            Err(Error::Sha256Mismatch { .. })
        ));
        assert!(matches!(
            strip_sha256(&db),
            Err(Error::MissingSha256 { len_bytes: 1024 })
        ));
    }
}
